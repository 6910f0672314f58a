/* spx_st_write.h: streaming safetensors writer (single file or sharded set + index).
 *
 * File layout written (the Hugging Face reference layout):
 *   u64 LE N | N bytes of JSON header, padded with spaces so N % 8 == 0 | tensor bytes
 *   header = {"__metadata__":{"k":"v",...},"name":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...}
 *   __metadata__ is present only when metadata is given. Tensors appear in the header and in the
 *   data in bytewise-ascending name order; data_offsets are contiguous from 0 with no gaps.
 *
 * Because the header precedes the data, the whole tensor list (name, dtype, shape) is declared
 * up front; the bytes are then streamed tensor by tensor in the declared (sorted) order:
 * spx_st_writer_next() names the tensor expected next, spx_st_writer_write() appends bytes to it
 * (any chunking; a chunk never crosses into the next tensor), spx_st_writer_add() writes one
 * whole tensor and checks its name. Nothing appears at the target paths until
 * spx_st_writer_finish() succeeds (temporary files next to the targets, then rename).
 *
 * Sharded sets: shards are named <prefix>-00001-of-0000N.safetensors (5 digits as Hugging Face
 * does), tensors are packed greedily in name order and a new shard starts when the next tensor
 * would push the current one past max_shard_bytes (a tensor larger than the limit gets a shard
 * of its own). <prefix>.safetensors.index.json is
 *   {"metadata":{"total_size":<sum of tensor bytes>},"weight_map":{"name":"shard file",...}}.
 * Every shard carries the same __metadata__.
 */
#ifndef SPX_ST_WRITE_H
#define SPX_ST_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

#define SPX_ST_MAX_DIMS 8          /* ndim 0 (a scalar) .. 8 */
#define SPX_ST_MAX_HEADER 100000000u   /* the reference reader rejects larger headers */

/* One declared tensor. dtype is a safetensors dtype string: BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16
 * F16 BF16 I32 U32 F32 F64 I64 U64. shape[0..ndim) in PyTorch order. */
typedef struct spx_st_spec {
    const char *name;
    const char *dtype;
    uint32_t ndim;
    uint64_t shape[SPX_ST_MAX_DIMS];
} spx_st_spec;

/* One __metadata__ entry (string to string, as the format requires). */
typedef struct spx_st_kv {
    const char *key;
    const char *value;
} spx_st_kv;

typedef struct spx_st_writer spx_st_writer;

/* Bytes per element of a safetensors dtype string, 0 when unknown (sub-byte types unsupported). */
size_t spx_st_dtype_bytes(const char *dtype);

/* Declare `n` tensors (copied; need not be sorted) and the optional metadata, create the
 * temporary file next to `path` and write the header. Errors: SPX_E_ARG (empty/duplicate/reserved
 * name, unknown dtype, ndim > 8, duplicate metadata key), SPX_E_OVERFLOW (size products),
 * SPX_E_LIMIT (header over 100 MB), SPX_E_IO. */
int spx_st_writer_open(spx_ctx *ctx, const char *path, const spx_st_spec *specs, size_t n,
                       const spx_st_kv *meta, size_t n_meta, spx_st_writer **out);

/* Same for a sharded set in directory `dir` (must exist); prefix is usually "model".
 * max_shard_bytes counts tensor bytes only (headers excluded) and must be > 0. */
int spx_st_writer_open_sharded(spx_ctx *ctx, const char *dir, const char *prefix,
                               uint64_t max_shard_bytes, const spx_st_spec *specs, size_t n,
                               const spx_st_kv *meta, size_t n_meta, spx_st_writer **out);

/* Name of the tensor whose bytes come next (NULL when every tensor is complete). *index (may be
 * NULL) receives that tensor's position in the caller's `specs` array; *remaining (may be NULL)
 * the bytes still expected for it. */
const char *spx_st_writer_next(const spx_st_writer *w, size_t *index, uint64_t *remaining);

/* Append len bytes to the current tensor; len must not exceed what the tensor still expects
 * (SPX_E_ARG naming the tensor). A zero-length write is allowed. */
int spx_st_writer_write(spx_ctx *ctx, spx_st_writer *w, const void *data, size_t len);

/* Write the whole of tensor `name`, which must be the next one and not yet started (SPX_E_ARG
 * naming the expected tensor otherwise); len must equal its byte size. */
int spx_st_writer_add(spx_ctx *ctx, spx_st_writer *w, const char *name, const void *data, size_t len);

/* Check every tensor is complete (SPX_E_ARG naming the first incomplete one), flush, fsync,
 * rename the file(s) into place and (sharded) write the index. The writer is spent afterwards. */
int spx_st_writer_finish(spx_ctx *ctx, spx_st_writer *w);

/* Frees; removes temporary files when finish did not succeed. Accepts NULL. */
void spx_st_writer_free(spx_st_writer *w);

/* Number of shard files (1 for a single file) and total tensor bytes. */
uint32_t spx_st_writer_shard_count(const spx_st_writer *w);
uint64_t spx_st_writer_data_bytes(const spx_st_writer *w);
/* Total bytes of every file written (headers included; the index is not counted). */
uint64_t spx_st_writer_file_bytes(const spx_st_writer *w);

/* Convenience drivers: `fill` is called once per tensor in write order with the tensor's
 * position in `specs`; it must write exactly that tensor's bytes through spx_st_writer_write or
 * spx_st_writer_add and return 0 or a negative code (with ctx set). */
typedef int (*spx_st_fill_fn)(spx_ctx *ctx, void *ud, size_t index, const spx_st_spec *spec,
                              spx_st_writer *w);
int spx_st_write_file(spx_ctx *ctx, const char *path, const spx_st_spec *specs, size_t n,
                      const spx_st_kv *meta, size_t n_meta, spx_st_fill_fn fill, void *ud,
                      uint64_t *file_bytes);
int spx_st_write_sharded(spx_ctx *ctx, const char *dir, const char *prefix, uint64_t max_shard_bytes,
                         const spx_st_spec *specs, size_t n, const spx_st_kv *meta, size_t n_meta,
                         spx_st_fill_fn fill, void *ud, uint32_t *n_shards, uint64_t *file_bytes);

/* Write `len` bytes to `path` through a temporary file next to it + fsync + rename. */
int spx_st_write_blob(spx_ctx *ctx, const char *path, const void *data, size_t len);

#endif
