/* spx_safetensors.h: validating safetensors reader (single files and sharded sets).
 *
 * File layout (little-endian):
 *   OFF      SIZE  FIELD
 *     0         8  N: u64 length of the JSON header (rejected when > 100,000,000 or > size - 8)
 *     8         N  UTF-8 JSON object, optionally padded with spaces:
 *                  {"name": {"dtype": "F16", "shape": [d0, ...], "data_offsets": [begin, end]}, ...,
 *                   "__metadata__": {"key": "string value", ...}}
 *   8+N       ...  data buffer; a tensor's bytes are [8+N+begin, 8+N+end)
 *
 * The reader checks, before any tensor is touched: valid UTF-8 and JSON; no duplicate keys anywhere;
 * every entry has exactly dtype/shape/data_offsets; shape entries are non-negative integers
 * (<= 2^53, the exact range of a JSON number; cJSON reads numbers as doubles, so "2.0" or "2e0"
 * pass as 2) whose product times the dtype width equals end-begin
 * (checked arithmetic); begin <= end; all tensors sorted by offset cover the data buffer from 0 with
 * no hole and no overlap; the last end is the end of the file (no trailing bytes). Known dtypes that
 * spx cannot convert (integers, FP8, FP4...) are valid here: the converter rejects them when used.
 * Unknown dtype strings are SPX_E_UNSUPPORTED (the width is unknown, so the file cannot be checked).
 * Errors are SPX_E_SAFETENSORS naming the file, the tensor and the byte offset.
 *
 * The file is mmap'ed read-only; data pointers point into the map (possibly unaligned). A
 * little-endian host is assumed (as everywhere in spx). */
#ifndef SPX_SAFETENSORS_H
#define SPX_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

#define SPX_ST_HEADER_MAX 100000000ull
#define SPX_ST_MAX_DIMS 8

typedef enum spx_st_dtype {
    SPX_ST_BOOL = 0,
    SPX_ST_U8,
    SPX_ST_I8,
    SPX_ST_I16,
    SPX_ST_U16,
    SPX_ST_I32,
    SPX_ST_U32,
    SPX_ST_I64,
    SPX_ST_U64,
    SPX_ST_F16,
    SPX_ST_BF16,
    SPX_ST_F32,
    SPX_ST_F64,
    SPX_ST_F8_E4M3,
    SPX_ST_F8_E5M2,
    SPX_ST_F8_E8M0,
    SPX_ST_F4,
    SPX_ST_F6_E2M3,
    SPX_ST_F6_E3M2,
    SPX_ST_C64,
    SPX_ST_DTYPE_COUNT
} spx_st_dtype;

/* "F16" etc.; "?" for out-of-range values. */
const char *spx_st_dtype_name(int dtype);
/* Width in bits (sub-byte types: 4 or 6), 0 when unknown. */
unsigned spx_st_dtype_bits(int dtype);
/* Parse a dtype string of `len` bytes; -1 when unknown. */
int spx_st_dtype_parse(const char *s, size_t len);

typedef struct spx_st_tensor {
    const char *name;               /* NUL-terminated, owned by the spx_st_file */
    int dtype;                      /* spx_st_dtype */
    uint32_t ndim;                  /* 0 for a scalar */
    uint64_t shape[SPX_ST_MAX_DIMS];
    uint64_t numel;                 /* product of shape (1 for a scalar) */
    uint64_t begin, end;            /* data_offsets, relative to the data buffer */
    uint64_t file_offset;           /* 8 + N + begin: absolute byte offset in the file */
} spx_st_tensor;

typedef struct spx_st_file spx_st_file;

/* mmap and validate `path`. */
int spx_st_open(spx_ctx *ctx, const char *path, spx_st_file **out);
/* Validate a caller-owned buffer (must outlive the result); `label` names it in messages. */
int spx_st_open_mem(spx_ctx *ctx, const void *buf, size_t len, const char *label, spx_st_file **out);
void spx_st_free(spx_st_file *f);

const char *spx_st_path(const spx_st_file *f);
uint64_t spx_st_header_len(const spx_st_file *f);     /* N */
/* Tensors in ascending data-offset order (which for valid files is also file order). */
size_t spx_st_count(const spx_st_file *f);
const spx_st_tensor *spx_st_tensor_at(const spx_st_file *f, size_t i);
const spx_st_tensor *spx_st_find(const spx_st_file *f, const char *name);   /* NULL if absent */
/* Pointer to the tensor's end-begin bytes inside the map (never NULL; may be unaligned). */
const void *spx_st_data(const spx_st_file *f, const spx_st_tensor *t);
/* __metadata__ entries in header order; NULL when i is out of range / key absent. */
size_t spx_st_meta_count(const spx_st_file *f);
const char *spx_st_meta_key(const spx_st_file *f, size_t i);
const char *spx_st_meta_value(const spx_st_file *f, size_t i);
const char *spx_st_meta_find(const spx_st_file *f, const char *key);

/* Decode a tensor of dtype F32/F16/BF16/F64 into `out` (numel floats). F64 values outside the
 * F32 range become infinities (the caller's finiteness check reports them). Other dtypes:
 * SPX_E_UNSUPPORTED naming the tensor and its dtype. */
int spx_st_to_f32(spx_ctx *ctx, const spx_st_file *f, const spx_st_tensor *t, float *out);

/* ---- sharded sets (spx_st_index.c) ----------------------------------------------------------
 * A set is either one .safetensors file or the shards named by a model.safetensors.index.json:
 *   {"metadata": {...}, "weight_map": {"tensor name": "model-00001-of-00002.safetensors", ...}}
 * Shard names must be plain file names in the index's directory (no '/', not "." or ".."). Each
 * shard is opened once; every tensor listed must exist in its shard, every tensor of a shard must
 * be listed (with that shard), and no name may appear in two shards. Errors: SPX_E_JSON for JSON
 * syntax, SPX_E_SAFETENSORS for everything else, naming the index file (and shard). */

typedef struct spx_st_set spx_st_set;

/* `path`: an index when its name ends in ".json", else a single .safetensors file. */
int spx_st_set_open(spx_ctx *ctx, const char *path, spx_st_set **out);
void spx_st_set_free(spx_st_set *s);

size_t spx_st_set_shard_count(const spx_st_set *s);
const spx_st_file *spx_st_set_shard(const spx_st_set *s, size_t i);
/* All tensors of all shards, sorted by name. *file (optional) receives the shard holding it. */
size_t spx_st_set_count(const spx_st_set *s);
const spx_st_tensor *spx_st_set_tensor(const spx_st_set *s, size_t i, const spx_st_file **file);
/* Index of `name` in the sorted list, or -1. */
long spx_st_set_index_of(const spx_st_set *s, const char *name);

#endif
