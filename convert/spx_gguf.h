/* spx_gguf.h: GGUF (llama.cpp) files: a validating reader, a streaming writer, and the
 * GGUF -> .spx conversion used by `spx convert MODEL.gguf`.
 *
 * GGUF v3 layout (all integers little-endian; v2 is identical, v1 used 32-bit counts and is
 * rejected; a big-endian file is reported as SPX_E_BYTESWAPPED):
 *   OFF SIZE FIELD
 *     0    4 magic "GGUF"
 *     4    4 version (2 or 3)
 *     8    8 tensor_count
 *    16    8 kv_count
 *    24  ... kv_count x {string key, u32 value_type, value}
 *        ... tensor_count x {string name, u32 n_dims, u64 ne[n_dims] (innermost first), u32 ggml_type,
 *            u64 offset (relative to the data section, a multiple of the alignment)}
 *        ... zero padding to a multiple of the alignment (general.alignment, u32 power of two,
 *            default 32): the data section starts here
 *   string = u64 length + bytes (no NUL); value types 0..12: U8 I8 U16 I16 U32 I32 F32 BOOL
 *   STRING ARRAY U64 I64 F64; ARRAY = u32 element type + u64 count + elements.
 *
 * The reader validates everything before handing out a pointer: every count and string length
 * against the bytes that remain (so no allocation is sized by an unchecked field), checked size
 * arithmetic, keys non-empty and unique, bools 0/1, no nested arrays (SPX_E_UNSUPPORTED),
 * general.alignment a U32 power of two, n_dims 1..4, nonzero dims whose product does not overflow,
 * known tensor types (F32, F16, BF16, Q8_0; other ggml quantizations are SPX_E_UNSUPPORTED and ids
 * ggml does not define SPX_E_GGUF), Q8_0 rows a multiple of 32, unique tensor names of 1..63 bytes,
 * aligned offsets, data ranges inside the file and not overlapping, nothing after the last tensor
 * but its alignment padding. Errors name the file, the field/key/tensor and the byte offset:
 *   SPX_E_BAD_MAGIC, SPX_E_BYTESWAPPED, SPX_E_VERSION, SPX_E_TRUNCATED (a field or tensor runs past
 *   the end), SPX_E_TRAILING, SPX_E_DUP_KEY, SPX_E_DUP_NAME, SPX_E_NAME, SPX_E_ALIGN, SPX_E_DIMS,
 *   SPX_E_OVERFLOW, SPX_E_OVERLAP, SPX_E_SHAPE, SPX_E_UNSUPPORTED, SPX_E_GGUF (anything else).
 *
 * Tensor dims: GGUF ne[0] is the innermost (contiguous) dimension, so a PyTorch [out, in] matrix
 * has ne = {in, out}. Q8_0 stores blocks of 32 values: f16 scale d, then 32 int8 q; value = d * q.
 * llama.cpp's converter permutes the rows of attn_q/attn_k inside each head to interleaved rotary
 * pairs (2j, 2j+1); .spx keeps the Hugging Face rotate_half order (j, j + head_dim/2). */
#ifndef SPX_GGUF_H
#define SPX_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "spx_convert.h"
#include "spx_error.h"

#define SPX_GGUF_ALIGN_DEFAULT 32
#define SPX_GGUF_NAME_MAX 63          /* tensor name bytes (llama.cpp: < GGML_MAX_NAME = 64) */
#define SPX_GGUF_KEY_MAX 65535
#define SPX_GGUF_MAX_DIMS 4
#define SPX_GGUF_ALIGN_MAX (1u << 24)
#define SPX_GGUF_Q8_0_BLOCK 32        /* values per Q8_0 block */
#define SPX_GGUF_Q8_0_BYTES 34        /* f16 scale + 32 int8 */

typedef enum spx_gguf_vtype {
    SPX_GGUF_U8 = 0, SPX_GGUF_I8 = 1, SPX_GGUF_U16 = 2, SPX_GGUF_I16 = 3, SPX_GGUF_U32 = 4,
    SPX_GGUF_I32 = 5, SPX_GGUF_F32 = 6, SPX_GGUF_BOOL = 7, SPX_GGUF_STRING = 8, SPX_GGUF_ARRAY = 9,
    SPX_GGUF_U64 = 10, SPX_GGUF_I64 = 11, SPX_GGUF_F64 = 12, SPX_GGUF_VTYPE_COUNT = 13
} spx_gguf_vtype;

/* The ggml tensor types spx reads and writes (ggml.h numbering). */
typedef enum spx_ggml_type {
    SPX_GGML_F32 = 0,
    SPX_GGML_F16 = 1,
    SPX_GGML_Q8_0 = 8,
    SPX_GGML_BF16 = 30
} spx_ggml_type;

typedef struct spx_gguf spx_gguf;

/* One metadata entry. Scalars are decoded into v; strings and arrays point into the buffer. */
typedef struct spx_gguf_kv {
    const char *key;                  /* NUL-terminated copy (owned by the spx_gguf) */
    uint64_t off;                     /* file offset of the key's length prefix (messages) */
    uint32_t type;                    /* spx_gguf_vtype */
    uint32_t elem_type;               /* ARRAY: element type (never ARRAY) */
    uint64_t count;                   /* STRING: bytes; ARRAY: elements */
    union {
        uint64_t u;                   /* unsigned integers, BOOL */
        int64_t i;                    /* signed integers */
        double f;                     /* F32 (widened), F64 */
    } v;
    const unsigned char *raw;         /* STRING: its bytes; ARRAY: the first element */
} spx_gguf_kv;

typedef struct spx_gguf_tensor {
    char name[SPX_GGUF_NAME_MAX + 1]; /* NUL-terminated */
    uint32_t n_dims;                  /* 1..4 */
    uint64_t ne[SPX_GGUF_MAX_DIMS];   /* GGUF order (ne[0] innermost); entries >= n_dims are 1 */
    uint32_t type;                    /* spx_ggml_type */
    uint64_t offset;                  /* relative to the data section */
    uint64_t size;                    /* bytes of data */
    uint64_t numel;
    uint64_t info_off;                /* file offset of the tensor info record (messages) */
    const void *data;                 /* inside the buffer */
} spx_gguf_tensor;

/* mmap `path` read-only and validate it (see above). */
int spx_gguf_open(spx_ctx *ctx, const char *path, spx_gguf **out);
/* Same on a caller-owned buffer that must outlive the result; `label` names it in messages. */
int spx_gguf_open_mem(spx_ctx *ctx, const void *buf, size_t len, const char *label, spx_gguf **out);
void spx_gguf_free(spx_gguf *g);

const char *spx_gguf_path(const spx_gguf *g);
uint32_t spx_gguf_version(const spx_gguf *g);
uint64_t spx_gguf_alignment(const spx_gguf *g);
uint64_t spx_gguf_data_offset(const spx_gguf *g);   /* file offset of the data section */
size_t spx_gguf_kv_count(const spx_gguf *g);
const spx_gguf_kv *spx_gguf_kv_at(const spx_gguf *g, size_t i);
const spx_gguf_kv *spx_gguf_find_kv(const spx_gguf *g, const char *key);   /* NULL if absent */
size_t spx_gguf_tensor_count(const spx_gguf *g);
const spx_gguf_tensor *spx_gguf_tensor_at(const spx_gguf *g, size_t i);
const spx_gguf_tensor *spx_gguf_find_tensor(const spx_gguf *g, const char *name);

/* Typed getters: 0, SPX_E_MISSING when absent, SPX_E_GGUF when the type does not fit (integers of
 * any width convert when the value is in range; floats accept F32/F64). Messages name key + offset. */
int spx_gguf_get_u64(spx_ctx *ctx, const spx_gguf *g, const char *key, uint64_t *out);
int spx_gguf_get_u32(spx_ctx *ctx, const spx_gguf *g, const char *key, uint32_t *out);
int spx_gguf_get_f64(spx_ctx *ctx, const spx_gguf *g, const char *key, double *out);
/* STRING value: *s points into the buffer (not NUL-terminated), *len bytes. */
int spx_gguf_get_str(spx_ctx *ctx, const spx_gguf *g, const char *key, const char **s, uint64_t *len);

/* Numeric array elements (caller checks i < kv->count; integer, float or bool arrays). */
double spx_gguf_arr_f64(const spx_gguf_kv *kv, uint64_t i);
int64_t spx_gguf_arr_i64(const spx_gguf_kv *kv, uint64_t i);
/* Every element of a STRING array: strs[i] points into the buffer, lens[i] bytes (arrays of
 * kv->count entries supplied by the caller). */
void spx_gguf_arr_strs(const spx_gguf_kv *kv, const char **strs, uint64_t *lens);

const char *spx_ggml_type_name(uint32_t type);      /* "F32", "Q4_K", ... or "unknown" */
const char *spx_gguf_vtype_name(uint32_t type);     /* "UINT32", ... or "unknown" */

/* Decode tensor t (F32, F16, BF16 or Q8_0) to row-major fp32 (numel values). */
void spx_gguf_to_f32(const spx_gguf_tensor *t, float *out);

/* 1 when `path` looks like a GGUF file: it starts with "GGUF" or is named *.gguf. */
int spx_gguf_sniff(const char *path);

/* ---- GGUF -> .spx (spx_gguf_import.c) ------------------------------------------------------
 * Called by spx_convert for GGUF inputs (general.architecture "llama" only). Config from the
 * llama.* keys (embedding_length, feed_forward_length, block_count, attention.head_count(_kv),
 * attention.key_length, attention.layer_norm_rms_epsilon, rope.freq_base, rope.dimension_count
 * (== head dim), rope.scaling.type none|linear + factor, context_length), vocab from
 * token_embd.weight, tied embeddings when output.weight is absent, q/k/v/output and FFN biases
 * when present. attn_q/attn_k rows (and biases) are un-permuted to rotate_half order. Dtypes:
 * F32/F16/BF16 kept (or converted to opts.dtype), Q8_0 dequantized exactly to F32 (or opts.dtype).
 * Tokenizer: tokenizer.huggingface.json copied verbatim when present, else tokenizer.ggml.model
 * "llama" (tokens, scores, token_type, bos/eos ids) copied as the same keys; other tokenizer
 * models are left out with a note. Refused: MoE files (llama.expert_count > 0), rope_freqs.weight
 * (llama3 frequency factors), YaRN scaling, partial rotary. `rep` must be zeroed by the caller. */
int spx_gguf_convert(spx_ctx *ctx, const spx_convert_opts *o, spx_convert_report *rep);

/* ---- writer (spx_gguf_write.c) --------------------------------------------------------------
 * Collect metadata and tensor descriptions, then stream the data in the same order: GGUF v3,
 * alignment 32, every tensor padded with zeros to the alignment. The file appears at `path` only
 * after spx_gguf_writer_finish (temporary file next to it + rename). */
typedef struct spx_gguf_writer spx_gguf_writer;

int spx_gguf_writer_open(spx_ctx *ctx, const char *path, spx_gguf_writer **out);
int spx_gguf_writer_kv_u32(spx_gguf_writer *w, const char *key, uint32_t v);
int spx_gguf_writer_kv_i32(spx_gguf_writer *w, const char *key, int32_t v);
int spx_gguf_writer_kv_f32(spx_gguf_writer *w, const char *key, float v);
int spx_gguf_writer_kv_bool(spx_gguf_writer *w, const char *key, int v);
int spx_gguf_writer_kv_str(spx_gguf_writer *w, const char *key, const char *s, size_t len);
/* Array of fixed-width elements (elem_type a scalar vtype; `data` holds native values). */
int spx_gguf_writer_kv_arr(spx_gguf_writer *w, const char *key, uint32_t elem_type, const void *data,
                           uint64_t count);
int spx_gguf_writer_kv_arr_str(spx_gguf_writer *w, const char *key, const char *const *strs,
                               const uint64_t *lens, uint64_t count);
/* Declare a tensor: dims in PyTorch order (dims[0] outermost), written reversed as GGUF ne. */
int spx_gguf_writer_tensor(spx_gguf_writer *w, const char *name, uint32_t type, uint32_t ndim,
                           const uint64_t *dims);
/* Write the header, metadata and tensor infos (after the last declaration). */
int spx_gguf_writer_begin_data(spx_gguf_writer *w);
/* Data of the next declared tensor, exactly its size in bytes. */
int spx_gguf_writer_data(spx_gguf_writer *w, const void *data, size_t size);
int spx_gguf_writer_finish(spx_gguf_writer *w, uint64_t *file_bytes);
void spx_gguf_writer_free(spx_gguf_writer *w);   /* removes the temporary file if unfinished */
spx_ctx *spx_gguf_writer_ctx(spx_gguf_writer *w);

#endif
