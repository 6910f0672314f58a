/* spx_tokenizer.h: tokenizers used by `spx ppl`, `spx run` and calibration.
 *
 * Two families are supported:
 *  - Hugging Face tokenizer.json with model.type "BPE" (SentencePiece-style metaspace + byte
 *    fallback, e.g. Llama/stories260K, and GPT-2 style byte-level, e.g. SmolLM);
 *  - llama2.c tokenizer .bin files (pieces + scores) with llama2.c's score-driven encoder, also
 *    used for GGUF-style `tokenizer.ggml.model`=="llama" metadata in .spx files.
 *
 * Raw token files (u16/u32 little endian) and text input (with '\r' removed) are handled here too.
 * Errors: SPX_E_LLAMA2C (llama2.c .bin), SPX_E_JSON (tokenizer.json syntax), SPX_E_TOKENIZER
 * (malformed tokenizer content), SPX_E_UNSUPPORTED (valid but unsupported: model/normalizer/
 * pre-tokenizer types, named in the message), SPX_E_DATA (token files, text files).
 *
 * Known limits (documented approximations):
 *  - NFC normalizers are treated as identity (input text is assumed to be NFC already).
 *  - Added tokens are matched in the raw text, also those with normalized=true.
 *  - "truncation" and "padding" in tokenizer.json are ignored; BPE dropout is rejected.
 *  - As in HF, a character with no piece, no byte fallback and no unk_token is dropped.
 *  - Decoding skips special tokens (HF skip_special_tokens=True).
 *  - The GPT-2 pre-tokenizer regex classes \p{L} and \p{N} are approximated by a table of Unicode
 *    ranges (ASCII exact; Latin-1, Latin Extended, IPA, Greek, Cyrillic, Armenian, Hebrew, Arabic,
 *    Devanagari..., Hangul, kana, CJK as letters; common digit blocks, superscripts, fractions and
 *    Roman numerals as numbers); rare scripts may be classified as "other". \s is the Unicode
 *    White_Space set.
 */
#ifndef SPX_TOKENIZER_H
#define SPX_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_format.h"

/* ---- llama2.c vocabulary (spx_tok_llama2c.c) ----------------------------------------------- */

/* A piece table. pieces[i] is NUL-terminated (lens[i] excludes the NUL; pieces may contain
 * other NUL bytes only through lens). In llama2.c .bin files pieces use ' ', not U+2581. */
typedef struct spx_vocab {
    uint32_t n;           /* number of pieces */
    char **pieces;        /* [n] owned strings */
    uint32_t *lens;       /* [n] byte lengths */
    float *scores;        /* [n] merge scores (higher merges first) */
    uint32_t max_len;     /* max_token_length from the file header (or max of lens) */
} spx_vocab;

/* Read a llama2.c tokenizer .bin: u32 max_token_length, then n_vocab times
 * {f32 score, i32 len, len bytes}. n_vocab comes from the checkpoint header. Every length is
 * validated against the file size; errors (SPX_E_LLAMA2C, SPX_E_IO) name path, token index and
 * byte offset. Trailing bytes after n_vocab entries are an error too. */
int spx_llama2c_vocab_read(spx_ctx *ctx, const char *path, uint32_t n_vocab, spx_vocab **out);
/* Same on a memory buffer; `label` names it in messages. */
int spx_llama2c_vocab_parse(spx_ctx *ctx, const unsigned char *buf, size_t len, const char *label,
                            uint32_t n_vocab, spx_vocab **out);
/* Build a vocab from copies of the given pieces (lens[i] bytes each) and scores. */
int spx_vocab_create(spx_ctx *ctx, uint32_t n, const char *const *pieces, const uint32_t *lens,
                     const float *scores, spx_vocab **out);
void spx_vocab_free(spx_vocab *v);

/* ---- tokenizer (spx_tokenizer.c and spx_tok_*.c) ------------------------------------------- */

typedef struct spx_tokenizer spx_tokenizer;

/* Parse a Hugging Face tokenizer.json held in memory (len bytes, need not be NUL-terminated).
 * `label` names the source in messages (e.g. the file path). */
int spx_tokenizer_load_json(spx_ctx *ctx, const char *json, size_t len, const char *label,
                            spx_tokenizer **out);

/* Load a tokenizer.json file (by content: a file starting with '{' after whitespace). llama2.c
 * .bin tokenizers need n_vocab from the checkpoint: use spx_llama2c_vocab_read +
 * spx_tokenizer_from_vocab for those. */
int spx_tokenizer_load_file(spx_ctx *ctx, const char *path, spx_tokenizer **out);

/* A llama2.c-style tokenizer over `*vocab`: takes ownership of *vocab (sets it to NULL, also on
 * failure, where it is freed). bos_id/eos_id: -1 when unknown (llama2.c uses 1 and 2). The
 * default for add_bos is 1 when bos_id >= 0. */
int spx_tokenizer_from_vocab(spx_ctx *ctx, spx_vocab **vocab, int bos_id, int eos_id,
                             spx_tokenizer **out);

/* Tokenizer stored in .spx metadata: `tokenizer.huggingface.json` (STR), else
 * `tokenizer.ggml.model`=="llama" with `tokenizer.ggml.tokens` (ARR of STR, U+2581 mapped to ' '),
 * `tokenizer.ggml.scores` (ARR of F32) and optional `tokenizer.ggml.bos_token_id` /
 * `tokenizer.ggml.eos_token_id`. SPX_E_MISSING when the file has no tokenizer. */
int spx_tokenizer_from_spx(spx_ctx *ctx, const spx_file *f, spx_tokenizer **out);

void spx_tokenizer_free(spx_tokenizer *tok);

/* Encode len bytes of UTF-8 text (invalid UTF-8 bytes are handled as single bytes through byte
 * fallback / byte-level mapping). add_bos: -1 the tokenizer's default (HF: the post-processor's
 * tokens before and after the text, e.g. BOS for Llama, none for GPT-2 style; llama2.c: BOS when
 * bos_id >= 0), 0 no special tokens, 1 BOS only (the post-processor's leading tokens, else
 * bos_id; SPX_E_TOKENIZER when there is none). llama2.c tokenizers add their dummy-prefix " "
 * token before non-empty text, as llama2.c does; merges never cross the BOS token.
 * *ids (malloc'ed, caller frees; non-NULL even when *n == 0) receives *n token ids. */
int spx_tokenizer_encode(spx_ctx *ctx, const spx_tokenizer *tok, const char *text, size_t len,
                         int add_bos, uint32_t **ids, size_t *n);

/* Streaming decode: the bytes that token `id` contributes to the text when it follows `prev_id`
 * (-1 at the start). Handles <0xXX> byte tokens, U+2581 -> ' ', byte-level mapping, and strips
 * the leading space of the first piece after BOS (or at the start) the way llama2.c / the HF
 * Strip decoder do. Special tokens (BOS/EOS/added special tokens) contribute nothing.
 * Writes up to cap-1 bytes and a NUL into buf (when cap > 0); returns the number of bytes of
 * the piece (like snprintf: a return >= cap means truncation), or a negative code for an
 * out-of-range id. Byte-level and byte-fallback tokens may yield partial UTF-8 sequences that
 * the next tokens complete. */
int spx_tokenizer_decode(const spx_tokenizer *tok, int prev_id, uint32_t id, char *buf, size_t cap);

/* Decode a whole id sequence to text (malloc'ed, NUL-terminated; *len excludes the NUL). */
int spx_tokenizer_decode_all(spx_ctx *ctx, const spx_tokenizer *tok, const uint32_t *ids, size_t n,
                             char **text, size_t *len);

uint32_t spx_tokenizer_vocab_size(const spx_tokenizer *tok);
int spx_tokenizer_bos_id(const spx_tokenizer *tok);   /* -1 when none */
int spx_tokenizer_eos_id(const spx_tokenizer *tok);   /* -1 when none */
/* Token id of an exact piece string as stored in the vocabulary (-1 when absent). */
int spx_tokenizer_piece_id(const spx_tokenizer *tok, const char *piece, size_t len);

/* ---- token and text files (spx_tokens_file.c) ---------------------------------------------- */

/* Read a raw little-endian token file of u16 (width 2) or u32 (width 4) ids. The file size must
 * be a multiple of width (SPX_E_DATA naming path and byte offset of the partial id). */
int spx_tokens_read(spx_ctx *ctx, const char *path, int width, uint32_t **ids, size_t *n);
/* Write ids as raw little-endian u16/u32 (temp file + rename). With width 2 every id must be
 * < 65536 (SPX_E_ARG naming the index). */
int spx_tokens_write(spx_ctx *ctx, const char *path, int width, const uint32_t *ids, size_t n);
/* Read a text file, removing every '\r' byte; a NUL byte is rejected (SPX_E_DATA with its
 * offset). *text is NUL-terminated; *len excludes the NUL. */
int spx_text_read(spx_ctx *ctx, const char *path, char **text, size_t *len);

#endif
