/* spx_format.h: the .spx container, version 1 (public API of libspx_format).
 *
 * specs/spx-format.md is normative; this comment is a summary. All integers little-endian.
 *
 * File layout
 *   [header: 128 bytes at offset 0]
 *   [tensor data blobs, each starting at a multiple of `alignment`, gaps zero-filled]
 *   [metadata section, starts at a multiple of 8]
 *   [tensor table: tensor_count records of 192 bytes, starts at a multiple of 8]
 *   end of file == file_size (nothing after the table)
 *
 * Header (128 bytes)
 *   OFF SIZE FIELD
 *     0    8 magic              89 53 50 58 0D 0A 1A 0A  ("\x89SPX\r\n\x1a\n")
 *     8    2 major              1 (unknown major -> SPX_E_VERSION)
 *    10    2 minor              0 (unknown minor is accepted)
 *    12    4 header_size        128
 *    16    8 required_features  bit set the reader must understand (unknown bit -> SPX_E_FEATURE)
 *    24    8 optional_features  bit set a reader may ignore
 *    32    8 file_size          total file length in bytes
 *    40    4 alignment          power of two >= 64; every tensor data offset is a multiple of it
 *    44    4 tensor_count
 *    48    8 table_offset       offset of the tensor table
 *    56    8 meta_offset        offset of the metadata section
 *    64    8 meta_size          length of the metadata section in bytes
 *    72    4 table_crc32        CRC-32 (zlib crc32, seed 0) of the tensor table bytes
 *    76    4 meta_crc32         CRC-32 of the metadata section bytes
 *    80   32 writer             NUL-padded ASCII name and version of the writing program
 *   112   12 reserved           zero (nonzero -> SPX_E_RESERVED)
 *   124    4 header_crc32       CRC-32 of bytes 0..123
 *
 * Tensor record (192 bytes)
 *     0   96 name       UTF-8, NUL-terminated, NUL-padded, non-empty, unique
 *    96    1 dtype      spx_dtype of the stored values
 *    97    1 encoding   spx_encoding
 *    98    1 ndim       1..4
 *    99    1 nm_n       N of N:M (nonzeros kept per group), 0 unless encoding == NM
 *   100    1 nm_m       M of N:M, 0 unless encoding == NM
 *   101    1 reserved   zero
 *   102    2 role       spx_role
 *   104   32 dims[4]    u64 each, PyTorch order (dims[0] outermost; for a Linear weight [out, in]);
 *                       entries at index >= ndim are zero
 *   136    8 data_offset
 *   144    8 data_size
 *   152    8 nnz        number of stored values (dense: product of dims)
 *   160    4 data_crc32 CRC-32 of the data_size bytes at data_offset
 *   164    4 layer      block index, 0xFFFFFFFF when the tensor belongs to no block
 *   168    4 expert     expert index, 0xFFFFFFFF when not an expert tensor
 *   172   20 reserved   zero
 *
 * Metadata section: u32 count, then `count` entries in strictly ascending key order (bytewise):
 *   u16 key_len, key bytes (1..255, [a-z0-9_.], no leading/trailing/doubled dot), u8 type, value.
 *   Scalar value types: U32 I32 U64 I64 F32 F64 (fixed width), BOOL (1 byte, 0 or 1),
 *   STR (u32 len + bytes, UTF-8, no NUL), ARR (u8 elem type (scalar or STR), u64 count, elements).
 *
 * Sparse encodings (2-D tensors only; rows = dims[0], cols = dims[1]); sub-arrays inside one data
 * blob, each starting at a multiple of 64 bytes from the blob start, gaps zero:
 *   BITMASK: values[nnz] (dtype) | bitmask u8[rows][ceil(cols/8)] | row_offsets i64[rows]
 *            (compressed-tensors sparse-bitmask: column 8k+j is bit j of byte k of the row;
 *            row_offsets = exclusive prefix sum of per-row popcounts)
 *   NM:      values[rows][cols/M*N] (dtype) | bitmask u8[rows][ceil(cols/8)]; cols % M == 0 and
 *            every group of M columns has exactly N bits set (nnz == rows*cols/M*N)
 *   CSR16:   values[nnz] | col_idx u16[nnz] | row_ptr u64[rows+1]   (cols <= 65536)
 *   CSR32:   values[nnz] | col_idx u32[nnz] | row_ptr u64[rows+1]
 *            row_ptr[0]=0, nondecreasing, row_ptr[rows]=nnz, col_idx strictly ascending per row < cols.
 */
#ifndef SPX_FORMAT_H
#define SPX_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

#define SPX_MAGIC_BYTES "\x89SPX\r\n\x1a\n"
#define SPX_VERSION_MAJOR 1
#define SPX_VERSION_MINOR 0
#define SPX_HEADER_SIZE 128
#define SPX_RECORD_SIZE 192
#define SPX_NAME_MAX 96          /* bytes in the name field, including the terminating NUL */
#define SPX_MAX_DIMS 4
#define SPX_ALIGN_DEFAULT 64
#define SPX_SUBALIGN 64          /* alignment of sub-arrays inside a sparse blob */
#define SPX_NO_INDEX 0xFFFFFFFFu
#define SPX_MAX_TENSORS (1u << 24)
#define SPX_META_MAX_BYTES (64u << 20)   /* metadata section cap (tokenizers are a few MB) */
#define SPX_META_MAX_KEY 255

/* Feature flags. No required feature is defined in v1.0; readers reject any unknown one. */
#define SPX_FEATURE_REQUIRED_KNOWN 0ull
#define SPX_FEATURE_OPTIONAL_KNOWN 0ull

typedef enum spx_dtype {
    SPX_DTYPE_F32 = 0,
    SPX_DTYPE_F16 = 1,
    SPX_DTYPE_BF16 = 2,
    SPX_DTYPE_I32 = 3,
    SPX_DTYPE_U8 = 4,
    SPX_DTYPE_COUNT
} spx_dtype;

typedef enum spx_encoding {
    SPX_ENC_DENSE = 0,
    SPX_ENC_BITMASK = 1,
    SPX_ENC_NM = 2,
    SPX_ENC_CSR16 = 3,
    SPX_ENC_CSR32 = 4,
    SPX_ENC_COUNT
} spx_encoding;

/* What a tensor is for. Informational for generic readers; the runtime keys off names. */
typedef enum spx_role {
    SPX_ROLE_OTHER = 0,
    SPX_ROLE_EMBEDDING = 1,
    SPX_ROLE_NORM = 2,
    SPX_ROLE_ATTN = 3,      /* q, k, v, o projections and their biases */
    SPX_ROLE_MLP = 4,       /* gate, up, down projections and their biases */
    SPX_ROLE_OUTPUT = 5,    /* classifier */
    SPX_ROLE_ROUTER = 6,    /* centroids, PCA projections, gating networks */
    SPX_ROLE_PROBE = 7,     /* verification probes */
    SPX_ROLE_COUNT
} spx_role;

typedef enum spx_meta_type {
    SPX_META_U32 = 0,
    SPX_META_I32 = 1,
    SPX_META_U64 = 2,
    SPX_META_I64 = 3,
    SPX_META_F32 = 4,
    SPX_META_F64 = 5,
    SPX_META_BOOL = 6,
    SPX_META_STR = 7,
    SPX_META_ARR = 8,
    SPX_META_TYPE_COUNT
} spx_meta_type;

/* Decoded header (native integers). */
typedef struct spx_header {
    uint16_t major, minor;
    uint32_t header_size;
    uint64_t required_features, optional_features;
    uint64_t file_size;
    uint32_t alignment;
    uint32_t tensor_count;
    uint64_t table_offset;
    uint64_t meta_offset, meta_size;
    uint32_t table_crc32, meta_crc32;
    char writer[33];              /* NUL-terminated copy of the writer field */
    uint32_t header_crc32;
} spx_header;

/* Decoded tensor record. `name` is NUL-terminated. */
typedef struct spx_tensor {
    char name[SPX_NAME_MAX];
    uint8_t dtype;                /* spx_dtype */
    uint8_t encoding;             /* spx_encoding */
    uint8_t ndim;
    uint8_t nm_n, nm_m;
    uint16_t role;                /* spx_role */
    uint64_t dims[SPX_MAX_DIMS];
    uint64_t data_offset, data_size;
    uint64_t nnz;
    uint32_t data_crc32;
    uint32_t layer, expert;       /* SPX_NO_INDEX when not applicable */
} spx_tensor;

/* ---- helpers shared by writer and reader -------------------------------------------------- */

const char *spx_dtype_name(int dtype);        /* "F32", ... or "?" */
const char *spx_encoding_name(int enc);       /* "dense", "bitmask", "nm", "csr16", "csr32" or "?" */
const char *spx_role_name(int role);
const char *spx_meta_type_name(int type);    /* "U32", ..., "ARR" or "?" */
size_t spx_dtype_size(int dtype);             /* bytes per element, 0 if unknown */
/* Parse "f32"/"F32"/"f16"/"bf16"... returns dtype or -1. */
int spx_dtype_parse(const char *s);

/* Number of elements (product of dims) with overflow check. */
int spx_tensor_numel(spx_ctx *ctx, const spx_tensor *t, uint64_t *out);

/* Exact byte length of the blob implied by (dims, dtype, encoding, nnz, nm_n, nm_m), and the
 * offsets of each sub-array inside it (off[0] values, off[1] mask/col_idx, off[2] row_offsets/row_ptr;
 * unused entries are 0). Fails with SPX_E_DTYPE/SPX_E_DIMS (also on size overflow)/SPX_E_ENCODING. */
int spx_encoding_layout(spx_ctx *ctx, const spx_tensor *t, uint64_t *size, uint64_t off[3]);

/* ---- sparse encodings (format/spx_encode.c) ------------------------------------------------ */

/* Encode a dense row-major fp32 matrix [rows, cols] into `enc` storing values as `dtype`.
 * Fills t->encoding, dtype, nnz, nm_n/nm_m, dims/ndim (2) and returns a malloc'd blob in *out
 * with its length in *out_size. For NM, every group of m columns must have at most n nonzeros
 * (zeros are stored as explicit values when a group has fewer than n); otherwise SPX_E_SPARSE. */
int spx_encode(spx_ctx *ctx, const float *w, uint64_t rows, uint64_t cols, int enc, int dtype,
               int nm_n, int nm_m, spx_tensor *t, void **out, size_t *out_size);

/* Size in bytes `spx_encode` would produce (to pick the smallest encoding). Returns 0 and sets
 * *size, or a negative code when the encoding cannot represent the matrix. */
int spx_encode_size(spx_ctx *ctx, const float *w, uint64_t rows, uint64_t cols, int enc, int dtype,
                    int nm_n, int nm_m, uint64_t *size);

/* Check every invariant of the encoding of `t` on `blob` (data_size bytes). Dense always passes. */
int spx_encoding_validate(spx_ctx *ctx, const spx_tensor *t, const void *blob);

/* Decode any encoding/dtype to dense row-major fp32: out has numel elements. Validates first. */
int spx_decode_f32(spx_ctx *ctx, const spx_tensor *t, const void *blob, float *out);

/* ---- writer (format/spx_writer.c) ---------------------------------------------------------- */

typedef struct spx_writer spx_writer;

/* Creates `path`.tmp.<pid>.<n> next to `path`; nothing appears at `path` until spx_writer_finish
 * succeeds (then an atomic rename). `writer_name` goes into the header (truncated to 32 bytes). */
int spx_writer_open(spx_ctx *ctx, const char *path, const char *writer_name, spx_writer **out);

/* Metadata: any order, keys sorted at finish; duplicate key -> SPX_E_DUP_KEY. */
int spx_writer_meta_u32(spx_writer *w, const char *key, uint32_t v);
int spx_writer_meta_i32(spx_writer *w, const char *key, int32_t v);
int spx_writer_meta_u64(spx_writer *w, const char *key, uint64_t v);
int spx_writer_meta_i64(spx_writer *w, const char *key, int64_t v);
int spx_writer_meta_f32(spx_writer *w, const char *key, float v);
int spx_writer_meta_f64(spx_writer *w, const char *key, double v);
int spx_writer_meta_bool(spx_writer *w, const char *key, int v);
int spx_writer_meta_str(spx_writer *w, const char *key, const char *v, size_t len);
/* Arrays of a scalar type: `data` holds `count` native values of elem_type's width. */
int spx_writer_meta_arr(spx_writer *w, const char *key, int elem_type, const void *data, uint64_t count);
/* Array of strings. lens may be NULL (then strlen is used). */
int spx_writer_meta_arr_str(spx_writer *w, const char *key, const char *const *strs,
                            const size_t *lens, uint64_t count);

/* Append one tensor. `desc` supplies name, dtype, encoding, ndim, dims, nnz, nm_n, nm_m, role,
 * layer, expert; data_offset/size/crc are computed. `size` must equal the layout size. The blob is
 * written immediately (streaming): the writer keeps only the 192-byte records in memory. */
int spx_writer_add(spx_writer *w, const spx_tensor *desc, const void *data, size_t size);

/* Convenience: dense tensor from fp32 data, stored as `dtype` (F32/F16/BF16), any ndim. */
int spx_writer_add_f32(spx_writer *w, const char *name, int role, uint32_t layer, uint32_t expert,
                       int dtype, const float *data, int ndim, const uint64_t *dims);

/* Write metadata, table and header, fsync, rename into place. The writer is spent afterwards
 * (free it with spx_writer_free). */
int spx_writer_finish(spx_writer *w);

/* Frees; if finish did not succeed the temporary file is removed. Accepts NULL. */
void spx_writer_free(spx_writer *w);

/* The context the writer reports errors into (owned by the writer). */
spx_ctx *spx_writer_ctx(spx_writer *w);

/* ---- reader (format/spx_reader.c) ---------------------------------------------------------- */

typedef struct spx_file spx_file;

#define SPX_OPEN_VERIFY_DATA 1u   /* also check every tensor's data CRC and encoding invariants */

/* mmap `path` read-only and validate header, table and metadata (never touching tensor data
 * unless SPX_OPEN_VERIFY_DATA). Errors name the file, field/tensor and byte offset. */
int spx_file_open(spx_ctx *ctx, const char *path, unsigned flags, spx_file **out);
/* Same on a caller-owned buffer that must outlive the spx_file (fuzzing, tests). */
int spx_file_open_mem(spx_ctx *ctx, const void *buf, size_t len, const char *label, unsigned flags,
                      spx_file **out);
void spx_file_free(spx_file *f);

/* Check all tensor CRCs and encoding invariants; the first failure is reported. */
int spx_file_verify_data(spx_ctx *ctx, const spx_file *f);

const spx_header *spx_file_header(const spx_file *f);
const char *spx_file_path(const spx_file *f);
uint32_t spx_file_tensor_count(const spx_file *f);
const spx_tensor *spx_file_tensor(const spx_file *f, uint32_t i);
const spx_tensor *spx_file_find(const spx_file *f, const char *name);   /* NULL if absent */
const void *spx_file_data(const spx_file *f, const spx_tensor *t);     /* pointer into the map */
/* Hint that t's data will not be read again soon (e.g. a runtime packed it into its own layout):
 * for a file map the whole pages inside the tensor are dropped from the resident set (they are
 * clean file pages; a later read faults them in again from the file, so this never changes what
 * is read). No-op for spx_file_open_mem buffers. Advisory: failures are ignored. */
void spx_file_release(const spx_file *f, const spx_tensor *t);
/* The same for any n bytes at p inside a clean, read-only FILE mapping (whole pages only; never
 * call it on heap or written memory, whose contents it would discard). Advisory. */
void spx_release_mapped(const void *p, size_t n);

/* Metadata entries, sorted by key. */
typedef struct spx_meta {
    const char *key;          /* NUL-terminated (owned by the spx_file) */
    uint8_t type;             /* spx_meta_type */
    uint8_t elem_type;        /* for ARR */
    uint64_t count;           /* for ARR: element count; for STR: byte length */
    union {
        uint64_t u;
        int64_t i;
        double f;             /* F32 values widened */
    } v;
    const char *str;          /* STR: NUL-terminated copy owned by the spx_file */
    const unsigned char *raw; /* ARR: first element inside the map (may be unaligned) */
    const uint64_t *str_off;  /* ARR of STR: offsets of each element's u32 length prefix from raw */
} spx_meta;

size_t spx_file_meta_count(const spx_file *f);
const spx_meta *spx_file_meta(const spx_file *f, size_t i);
const spx_meta *spx_file_meta_find(const spx_file *f, const char *key);

/* Typed getters: 0 on success, SPX_E_MISSING if absent, SPX_E_META if the type does not fit
 * (integer types convert when the value is in range; floats accept F32/F64). Message names the key. */
int spx_meta_get_u32(spx_ctx *ctx, const spx_file *f, const char *key, uint32_t *out);
int spx_meta_get_u64(spx_ctx *ctx, const spx_file *f, const char *key, uint64_t *out);
int spx_meta_get_i64(spx_ctx *ctx, const spx_file *f, const char *key, int64_t *out);
int spx_meta_get_f64(spx_ctx *ctx, const spx_file *f, const char *key, double *out);
int spx_meta_get_bool(spx_ctx *ctx, const spx_file *f, const char *key, int *out);
int spx_meta_get_str(spx_ctx *ctx, const spx_file *f, const char *key, const char **out, size_t *len);
/* Array element access (no bounds beyond count; caller checks index < m->count). */
double spx_meta_arr_f64(const spx_meta *m, uint64_t i);    /* numeric element as double */
int64_t spx_meta_arr_i64(const spx_meta *m, uint64_t i);   /* integer element */
const char *spx_meta_arr_str(const spx_meta *m, uint64_t i, uint32_t *len); /* not NUL-terminated */

#endif
