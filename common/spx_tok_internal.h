/* spx_tok_internal.h: shared internals of the tokenizer files (not a public API).
 *
 * spx_tokenizer.c      tokenizer objects: load, from_vocab, free, accessors, streaming decode
 * spx_tok_encode.c     the encode pipeline (added tokens, normalizers, pre-tokenizers, model)
 * spx_tok_json.c       tokenizer.json: model, added tokens, BOS/EOS (cJSON); spx_tok_json.h
 * spx_tok_json_pipe.c  tokenizer.json: normalizer, pre_tokenizer, post_processor, decoder
 * spx_tok_bpe.c        BPE merges by rank (heap over adjacent pairs), hash maps, merge queue
 * spx_tok_bytelevel.c  GPT-2 byte<->unicode mapping and the hand-written GPT-2 regex splitter
 * spx_tok_unicode.c    UTF-8 decoding and the \p{L} / \p{N} / \s approximation
 * spx_tok_llama2c.c    llama2.c tokenizer .bin reader and the score-driven SentencePiece encoder
 * spx_tokenizer_spx.c  the tokenizer stored in .spx metadata
 * spx_tokens_file.c    raw token files, text input, whole-file reads */
#ifndef SPX_TOK_INTERNAL_H
#define SPX_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "spx_tokenizer.h"

/* Read a whole file into a malloc'ed buffer with one extra NUL byte (not counted in *len).
 * I/O errors are SPX_E_IO naming the path. */
int spx_tok_read_file(spx_ctx *ctx, const char *path, unsigned char **buf, size_t *len);

/* ---- string -> id hash map (open addressing, FNV-1a) ---- */
typedef struct spx_tok_map {
    size_t cap;            /* power of two */
    size_t count;
    uint32_t *slot_id;     /* [cap] id, UINT32_MAX when empty */
    const char *const *keys;   /* key i = keys[id] with key_lens[id] (borrowed) */
    const uint32_t *key_lens;
} spx_tok_map;

uint64_t spx_tok_hash(const void *p, size_t n);
/* Build a map over n borrowed keys (NULL keys are skipped); on duplicate keys the lowest id wins
 * (llama2.c's bsearch over a sorted copy may find either: real vocabularies have none). */
int spx_tok_map_build(spx_ctx *ctx, spx_tok_map *m, const char *const *keys, const uint32_t *lens,
                      uint32_t n);
/* id of key, or -1 */
int64_t spx_tok_map_get(const spx_tok_map *m, const char *key, size_t len);
void spx_tok_map_free(spx_tok_map *m);

/* ---- (left id, right id) -> (rank, merged id) map for BPE merges ---- */
typedef struct spx_tok_pairmap {
    size_t cap;            /* power of two */
    size_t count;
    uint64_t *keys;        /* [cap] left << 32 | right, UINT64_MAX when empty */
    uint32_t *rank;        /* [cap] */
    uint32_t *merged;      /* [cap] */
} spx_tok_pairmap;

int spx_tok_pairmap_init(spx_ctx *ctx, spx_tok_pairmap *m, size_t expected);
/* Insert or overwrite (a later duplicate merge wins, like the HF loader's HashMap). */
int spx_tok_pairmap_put(spx_ctx *ctx, spx_tok_pairmap *m, uint32_t a, uint32_t b, uint32_t rank,
                        uint32_t merged);
/* 1 and (*rank, *merged) when present, else 0 */
int spx_tok_pairmap_get(const spx_tok_pairmap *m, uint32_t a, uint32_t b, uint32_t *rank,
                        uint32_t *merged);
void spx_tok_pairmap_free(spx_tok_pairmap *m);

/* ---- merge queue shared by both encoders: min-heap on (key, pos) ---- */
typedef struct spx_tok_qent {
    uint64_t key;          /* BPE: merge rank; SPM: order-reversed score bits */
    uint32_t pos;          /* index of the left symbol (symbols keep their order) */
    uint32_t id;           /* id of the merged token */
} spx_tok_qent;

/* Reusable work arrays for one encode call (symbols of a word as a linked list + the queue). */
typedef struct spx_tok_work {
    uint32_t *sym_id, *sym_prev, *sym_next;   /* [cap] UINT32_MAX = none */
    uint8_t *sym_dead;                        /* [cap] */
    size_t n, cap;
    spx_tok_qent *q;
    size_t qn, qcap;
    char *tmp;                                /* concatenation buffer */
    size_t tmp_cap;
} spx_tok_work;

void spx_tok_work_free(spx_tok_work *w);
/* Reset to zero symbols with room for at least `need`. */
int spx_tok_work_reserve(spx_ctx *ctx, spx_tok_work *w, size_t need);
int spx_tok_work_add(spx_ctx *ctx, spx_tok_work *w, uint32_t id);
int spx_tok_q_push(spx_ctx *ctx, spx_tok_work *w, uint64_t key, uint32_t pos, uint32_t id);
/* 1 and *out when non-empty */
int spx_tok_q_pop(spx_tok_work *w, spx_tok_qent *out);
/* Unlink symbol r (the right neighbour of l) after l absorbed it. */
void spx_tok_work_merge(spx_tok_work *w, uint32_t l, uint32_t r, uint32_t merged_id);

/* ---- HF BPE model (spx_tok_bpe.c) ---- */
typedef struct spx_bpe {
    spx_tok_map vocab;     /* model vocabulary piece -> id (keys borrowed from the tokenizer) */
    spx_tok_pairmap merges;
    int32_t byte_id[256];  /* "<0xXX>" ids when byte_fallback, else -1 */
    int byte_fallback;
    int fuse_unk;
    int ignore_merges;
    int64_t unk_id;        /* -1 when none */
} spx_bpe;

/* Append the ids of one pre-tokenized word (bytes in vocabulary space). */
int spx_bpe_encode_word(spx_ctx *ctx, const spx_bpe *b, spx_tok_work *w, const char *word,
                        size_t len, uint32_t **ids, size_t *n, size_t *cap);

/* ---- UTF-8 and character classes (spx_tok_unicode.c) ---- */
/* Decode one code point at s[0..n). Returns its byte length (1..4); invalid or truncated
 * sequences return 1 with *cp = 0xFFFFFFFF (an "invalid byte" that callers treat as a lone
 * byte). n must be > 0. */
size_t spx_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);
/* Encode cp into out[4]; returns the length. */
size_t spx_utf8_put(uint32_t cp, unsigned char *out);
int spx_uni_is_letter(uint32_t cp);
int spx_uni_is_number(uint32_t cp);
int spx_uni_is_space(uint32_t cp);

/* ---- llama2.c score-based encoder (spx_tok_llama2c.c) ---- */
typedef struct spx_spm {
    spx_vocab *vocab;      /* owned */
    spx_tok_map map;       /* piece -> id */
    int32_t byte_id[256];  /* id of "<0xXX>" piece (llama2.c: byte + 3), -1 when absent */
} spx_spm;

int spx_spm_init(spx_ctx *ctx, spx_spm *s, spx_vocab *vocab);
void spx_spm_free(spx_spm *s);
/* Append the llama2.c `encode` ids of text (with its dummy-prefix " " token when text is
 * non-empty) to *ids (grown with realloc; *n, *cap updated). */
int spx_spm_encode(spx_ctx *ctx, const spx_spm *s, spx_tok_work *w, const char *text, size_t len,
                   uint32_t **ids, size_t *n, size_t *cap);

/* ---- GPT-2 byte-level (spx_tok_bytelevel.c) ---- */
/* Code point the GPT-2 byte<->unicode table assigns to byte b. */
uint32_t spx_bytelevel_cp(unsigned char b);
/* Byte for a mapped code point, or -1 when cp is not in the table. */
int spx_bytelevel_byte(uint32_t cp);
/* End (exclusive byte offset) of the GPT-2 pre-tokenizer regex match starting at s[i] (i < n):
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
size_t spx_gpt2_match(const unsigned char *s, size_t n, size_t i);

/* ---- the tokenizer object (spx_tokenizer.c, filled by spx_tok_json.c / from_vocab) ---- */
enum { SPX_TOK_KIND_HF = 1, SPX_TOK_KIND_SPM = 2 };
enum { SPX_NORM_PREPEND = 1, SPX_NORM_REPLACE = 2 };
enum { SPX_PRE_METASPACE = 1, SPX_PRE_BYTELEVEL = 2, SPX_PRE_DIGITS = 3 };
enum { SPX_PREPEND_ALWAYS = 0, SPX_PREPEND_FIRST = 1, SPX_PREPEND_NEVER = 2 };

typedef struct spx_tok_norm {
    int kind;              /* SPX_NORM_* */
    char *a;               /* Prepend: text; Replace: pattern (non-empty) */
    size_t alen;
    char *b;               /* Replace: content */
    size_t blen;
} spx_tok_norm;

typedef struct spx_tok_pre {
    int kind;              /* SPX_PRE_* */
    char rep[8];           /* Metaspace replacement (one UTF-8 character) */
    size_t rep_len;
    int prepend;           /* Metaspace SPX_PREPEND_* */
    int split;             /* Metaspace: split on the replacement */
    int add_prefix_space;  /* ByteLevel */
    int use_regex;         /* ByteLevel */
    int individual;        /* Digits: individual_digits */
} spx_tok_pre;

typedef struct spx_tok_added {
    uint32_t id;
    char *content;         /* owned */
    size_t len;
    int special, lstrip, rstrip, single_word;
} spx_tok_added;

typedef struct spx_tok_replace {
    char *from, *to;       /* owned */
    size_t from_len, to_len;
} spx_tok_replace;

struct spx_tokenizer {
    int kind;                  /* SPX_TOK_KIND_* */
    uint32_t n_vocab;          /* max id + 1 */
    const char **pieces;       /* [n_vocab] borrowed: text of each id (NULL for unused ids) */
    uint32_t *piece_lens;      /* [n_vocab] */
    uint8_t *special;          /* [n_vocab] 1 for special tokens (decode to nothing) */
    int bos_id, eos_id;        /* -1 when unknown */
    int default_add_bos;       /* what add_bos = -1 means for the prefix */

    /* HF BPE */
    char **model_pieces;       /* [n_vocab] owned model-vocabulary strings (NULL when absent) */
    uint32_t *model_lens;      /* [n_vocab] */
    spx_bpe bpe;
    spx_tok_norm *norms;
    size_t n_norms;
    spx_tok_pre *pres;
    size_t n_pres;
    spx_tok_added *added;      /* sorted by decreasing length (longest match first) */
    size_t n_added;
    uint32_t *prefix, *suffix; /* post-processor special tokens around a single sequence */
    size_t n_prefix, n_suffix;
    /* decoder */
    spx_tok_replace *dec_replace;
    size_t n_dec_replace;
    int dec_byte_fallback;     /* <0xXX> -> byte */
    int dec_bytelevel;         /* GPT-2 byte-level unmapping */
    char dec_strip[8];         /* character stripped at the start (Strip / Metaspace decoders) */
    size_t dec_strip_len;
    size_t dec_strip_n;        /* how many leading ones (0: none) */

    /* llama2.c */
    spx_spm spm;
};

/* Fill an allocated, zeroed tokenizer from a parsed tokenizer.json (spx_tok_json.c). */
int spx_tok_json_parse(spx_ctx *ctx, spx_tokenizer *t, const char *json, size_t len, const char *label);

/* Append one id to a growable array. */
int spx_tok_push(spx_ctx *ctx, uint32_t **ids, size_t *n, size_t *cap, uint32_t id);

#endif
