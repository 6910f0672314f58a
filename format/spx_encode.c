/* spx_encode.c: sparse encodings (spec section 7): encode from dense fp32, validate the invariants
 * of a stored blob, decode any encoding/dtype back to dense fp32.
 *
 * Blob sub-arrays (rows x cols matrix, S = dtype size, B = ceil(cols/8)):
 *   bitmask: values[nnz] | mask u8[rows][B] | row_offsets i64[rows]
 *   nm:      values[rows][cols/M*N] | mask u8[rows][B]
 *   csr16/32: values[nnz] | col_idx u16/u32[nnz] | row_ptr u64[rows+1]
 * Offsets of the sub-arrays come from spx_encoding_layout. Messages name blob-relative byte offsets;
 * the reader prefixes the file, tensor and absolute offset. */
#include <stdlib.h>

#include "spx_ckd.h"
#include "spx_format_int.h"
#include "spx_half.h"

static float load_val(const unsigned char *p, int dtype, uint64_t i)
{
    uint32_t u;
    float f;
    switch (dtype) {
    case SPX_DTYPE_F32:
        u = spx_rd32(p + 4 * i);
        memcpy(&f, &u, 4);
        return f;
    case SPX_DTYPE_F16: return spx_f16_to_f32(spx_rd16(p + 2 * i));
    case SPX_DTYPE_BF16: return spx_bf16_to_f32(spx_rd16(p + 2 * i));
    case SPX_DTYPE_I32: return (float)(int32_t)spx_rd32(p + 4 * i);
    default: return (float)p[i]; /* U8 */
    }
}

static void store_val(unsigned char *p, int dtype, uint64_t i, float v)
{
    uint32_t u;
    switch (dtype) {
    case SPX_DTYPE_F32:
        memcpy(&u, &v, 4);
        spx_wr32(p + 4 * i, u);
        break;
    case SPX_DTYPE_F16: spx_wr16(p + 2 * i, spx_f32_to_f16(v)); break;
    default: spx_wr16(p + 2 * i, spx_f32_to_bf16(v)); break; /* BF16 */
    }
}

/* Bits [start, start+len) of a mask row (len <= 32), bit 0 = column `start`. */
static uint32_t get_bits(const unsigned char *row, uint64_t start, unsigned len)
{
    uint64_t b0 = start >> 3, b1 = (start + len - 1) >> 3, acc = 0;
    for (uint64_t b = b1 + 1; b-- > b0;)
        acc = (acc << 8) | row[b];
    acc >>= (start & 7);
    return (uint32_t)(acc & ((len == 32) ? 0xffffffffu : ((1u << len) - 1)));
}

static int check_pad(spx_ctx *ctx, const unsigned char *b, uint64_t from, uint64_t to, const char *what)
{
    uint64_t first = 0;
    if (to > from && !spx_all_zero(b + from, to - from, &first))
        return spx_err_set(ctx, SPX_E_GAP, "nonzero padding byte 0x%02x at blob offset %llu (before the %s)",
                           b[from + first], (unsigned long long)(from + first), what);
    return 0;
}

/* Padding bits of a mask row: the columns >= cols of its last byte must be zero. */
static int check_row_pad(spx_ctx *ctx, const unsigned char *row, uint64_t r, uint64_t cols, uint64_t moff)
{
    uint64_t nb = (cols + 7) / 8;
    unsigned used = (unsigned)(cols & 7);
    if (used && (row[nb - 1] >> used))
        return spx_err_set(ctx, SPX_E_SPARSE, "bitmask row %llu has padding bits set beyond column %llu "
                           "(blob offset %llu)", (unsigned long long)r, (unsigned long long)cols,
                           (unsigned long long)(moff + r * nb + nb - 1));
    return 0;
}

static int validate_bitmask(spx_ctx *ctx, const spx_tensor *t, const unsigned char *b, const uint64_t off[3])
{
    uint64_t rows = t->dims[0], cols = t->dims[1], nb = (cols + 7) / 8, sum = 0;
    int rc;
    if ((rc = check_pad(ctx, b, t->nnz * spx_dtype_size(t->dtype), off[1], "bitmask")) < 0 ||
        (rc = check_pad(ctx, b, off[1] + rows * nb, off[2], "row_offsets")) < 0)
        return rc;
    for (uint64_t r = 0; r < rows; r++) {
        const unsigned char *row = b + off[1] + r * nb;
        uint64_t ro = spx_rd64(b + off[2] + 8 * r), cnt = 0;
        if (ro != sum)
            return spx_err_set(ctx, SPX_E_SPARSE, "row_offsets[%llu] = %lld but rows before it hold %llu "
                               "values (blob offset %llu)", (unsigned long long)r, (long long)ro,
                               (unsigned long long)sum, (unsigned long long)(off[2] + 8 * r));
        if ((rc = check_row_pad(ctx, row, r, cols, off[1])) < 0)
            return rc;
        for (uint64_t k = 0; k < nb; k++)
            cnt += (uint64_t)__builtin_popcount(row[k]);
        sum += cnt;
    }
    if (sum != t->nnz)
        return spx_err_set(ctx, SPX_E_SPARSE, "bitmask has %llu bits set but nnz is %llu",
                           (unsigned long long)sum, (unsigned long long)t->nnz);
    return 0;
}

static int validate_nm(spx_ctx *ctx, const spx_tensor *t, const unsigned char *b, const uint64_t off[3])
{
    uint64_t rows = t->dims[0], cols = t->dims[1], nb = (cols + 7) / 8;
    unsigned n = t->nm_n, m = t->nm_m;
    int rc;
    if ((rc = check_pad(ctx, b, t->nnz * spx_dtype_size(t->dtype), off[1], "bitmask")) < 0)
        return rc;
    for (uint64_t r = 0; r < rows; r++) {
        const unsigned char *row = b + off[1] + r * nb;
        if ((rc = check_row_pad(ctx, row, r, cols, off[1])) < 0)
            return rc;
        for (uint64_t c = 0; c < cols; c += m) {
            int cnt = __builtin_popcount(get_bits(row, c, m));
            if ((unsigned)cnt != n)
                return spx_err_set(ctx, SPX_E_SPARSE, "N:M group at row %llu, columns %llu..%llu has %d "
                                   "bits set, expected N = %u (blob offset %llu)", (unsigned long long)r,
                                   (unsigned long long)c, (unsigned long long)(c + m - 1), cnt, n,
                                   (unsigned long long)(off[1] + r * nb + c / 8));
        }
    }
    return 0;
}

static uint64_t col_at(const unsigned char *idx, int wide, uint64_t k)
{
    return wide ? spx_rd32(idx + 4 * k) : spx_rd16(idx + 2 * k);
}

static int validate_csr(spx_ctx *ctx, const spx_tensor *t, const unsigned char *b, const uint64_t off[3])
{
    uint64_t rows = t->dims[0], cols = t->dims[1], prev = 0;
    int wide = t->encoding == SPX_ENC_CSR32, rc;
    const unsigned char *idx = b + off[1], *ptr = b + off[2];
    if ((rc = check_pad(ctx, b, t->nnz * spx_dtype_size(t->dtype), off[1], "col_idx")) < 0 ||
        (rc = check_pad(ctx, b, off[1] + t->nnz * (wide ? 4u : 2u), off[2], "row_ptr")) < 0)
        return rc;
    if (spx_rd64(ptr) != 0)
        return spx_err_set(ctx, SPX_E_SPARSE, "row_ptr[0] = %llu, expected 0 (blob offset %llu)",
                           (unsigned long long)spx_rd64(ptr), (unsigned long long)off[2]);
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t end = spx_rd64(ptr + 8 * (r + 1));
        if (end < prev || end > t->nnz)
            return spx_err_set(ctx, SPX_E_SPARSE, "row_ptr[%llu] = %llu is %s (blob offset %llu)",
                               (unsigned long long)(r + 1), (unsigned long long)end,
                               end < prev ? "smaller than the previous entry" : "larger than nnz",
                               (unsigned long long)(off[2] + 8 * (r + 1)));
        for (uint64_t k = prev; k < end; k++) {
            uint64_t c = col_at(idx, wide, k);
            if (c >= cols || (k > prev && c <= col_at(idx, wide, k - 1)))
                return spx_err_set(ctx, SPX_E_SPARSE, "col_idx[%llu] = %llu in row %llu is %s (blob offset %llu)",
                                   (unsigned long long)k, (unsigned long long)c, (unsigned long long)r,
                                   c >= cols ? "out of range" : "not strictly ascending",
                                   (unsigned long long)(off[1] + k * (wide ? 4u : 2u)));
        }
        prev = end;
    }
    if (prev != t->nnz)
        return spx_err_set(ctx, SPX_E_SPARSE, "row_ptr[%llu] = %llu, expected nnz %llu",
                           (unsigned long long)rows, (unsigned long long)prev, (unsigned long long)t->nnz);
    return 0;
}

int spx_encoding_validate(spx_ctx *ctx, const spx_tensor *t, const void *blob)
{
    uint64_t size, off[3];
    int rc = spx_encoding_layout(ctx, t, &size, off);
    if (rc < 0)
        return rc;
    if (size != t->data_size)
        return spx_err_set(ctx, SPX_E_SIZE, "data_size %llu differs from the layout size %llu",
                           (unsigned long long)t->data_size, (unsigned long long)size);
    switch (t->encoding) {
    case SPX_ENC_BITMASK: return validate_bitmask(ctx, t, blob, off);
    case SPX_ENC_NM: return validate_nm(ctx, t, blob, off);
    case SPX_ENC_CSR16: case SPX_ENC_CSR32: return validate_csr(ctx, t, blob, off);
    default: return 0;
    }
}

int spx_decode_f32(spx_ctx *ctx, const spx_tensor *t, const void *blob, float *out)
{
    const unsigned char *b = blob;
    uint64_t off[3], size, numel, rows = t->dims[0], cols = t->dims[1];
    int rc = spx_encoding_validate(ctx, t, blob);
    if (rc < 0)
        return rc;
    spx_encoding_layout(ctx, t, &size, off);
    spx_tensor_numel(ctx, t, &numel);
    if (t->encoding == SPX_ENC_DENSE) {
        for (uint64_t i = 0; i < numel; i++)
            out[i] = load_val(b, t->dtype, i);
        return 0;
    }
    memset(out, 0, (size_t)numel * sizeof *out);
    if (t->encoding == SPX_ENC_BITMASK || t->encoding == SPX_ENC_NM) {
        uint64_t nb = (cols + 7) / 8, per_row = t->encoding == SPX_ENC_NM ? cols / t->nm_m * t->nm_n : 0;
        for (uint64_t r = 0; r < rows; r++) {
            const unsigned char *row = b + off[1] + r * nb;
            uint64_t vi = t->encoding == SPX_ENC_NM ? r * per_row : spx_rd64(b + off[2] + 8 * r);
            for (uint64_t k = 0; k < nb; k++) {
                for (unsigned bits = row[k]; bits; bits &= bits - 1)
                    out[r * cols + 8 * k + (unsigned)__builtin_ctz(bits)] = load_val(b, t->dtype, vi++);
            }
        }
        return 0;
    }
    int wide = t->encoding == SPX_ENC_CSR32;
    for (uint64_t r = 0; r < rows; r++) {
        uint64_t k0 = spx_rd64(b + off[2] + 8 * r), k1 = spx_rd64(b + off[2] + 8 * (r + 1));
        for (uint64_t k = k0; k < k1; k++)
            out[r * cols + col_at(b + off[1], wide, k)] = load_val(b, t->dtype, k);
    }
    return 0;
}

/* Check the arguments, count what will be stored and fill `t` (a fresh descriptor) and the layout. */
static int analyze(spx_ctx *ctx, const float *w, uint64_t rows, uint64_t cols, int enc, int dtype,
                   int nm_n, int nm_m, spx_tensor *t, uint64_t *size, uint64_t off[3])
{
    uint64_t numel, nnz = 0;
    memset(t, 0, sizeof *t);
    if (!w || rows == 0 || cols == 0)
        return spx_err_set(ctx, SPX_E_ARG, "spx_encode: empty matrix (%llu x %llu)",
                           (unsigned long long)rows, (unsigned long long)cols);
    if (spx_ckd_mul_u64(rows, cols, &numel) || numel > SIZE_MAX / sizeof(float))
        return spx_err_set(ctx, SPX_E_OVERFLOW, "spx_encode: %llu x %llu matrix is too large",
                           (unsigned long long)rows, (unsigned long long)cols);
    if (dtype != SPX_DTYPE_F32 && dtype != SPX_DTYPE_F16 && dtype != SPX_DTYPE_BF16)
        return spx_err_set(ctx, SPX_E_ARG, "spx_encode: dtype %s cannot hold encoded weights", spx_dtype_name(dtype));
    if (enc < 0 || enc >= SPX_ENC_COUNT)
        return spx_err_set(ctx, SPX_E_ARG, "spx_encode: unknown encoding %d", enc);
    t->ndim = 2;
    t->dims[0] = rows;
    t->dims[1] = cols;
    t->dtype = (uint8_t)dtype;
    t->encoding = (uint8_t)enc;
    if (enc == SPX_ENC_NM) {
        if (nm_n < 1 || nm_n > nm_m || nm_m > 32)
            return spx_err_set(ctx, SPX_E_ENCODING, "N:M = %d:%d is not within 1 <= N <= M <= 32", nm_n, nm_m);
        if (cols % (uint64_t)nm_m)
            return spx_err_set(ctx, SPX_E_ENCODING, "cols %llu is not a multiple of M = %d",
                               (unsigned long long)cols, nm_m);
        t->nm_n = (uint8_t)nm_n;
        t->nm_m = (uint8_t)nm_m;
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t c = 0; c < cols; c += (uint64_t)nm_m) {
                int cnt = 0;
                for (int j = 0; j < nm_m; j++)
                    cnt += w[r * cols + c + (uint64_t)j] != 0.0f;
                if (cnt > nm_n)
                    return spx_err_set(ctx, SPX_E_SPARSE, "row %llu, columns %llu..%llu: %d nonzeros exceed N = %d "
                                       "of the %d:%d pattern", (unsigned long long)r, (unsigned long long)c,
                                       (unsigned long long)(c + (uint64_t)nm_m - 1), cnt, nm_n, nm_n, nm_m);
            }
        nnz = rows * (cols / (uint64_t)nm_m) * (uint64_t)nm_n;
    } else if (enc == SPX_ENC_DENSE) {
        nnz = numel;
    } else {
        for (uint64_t i = 0; i < numel; i++)
            nnz += w[i] != 0.0f;
    }
    t->nnz = nnz;
    int rc = spx_encoding_layout(ctx, t, size, off);
    if (rc == 0)
        t->data_size = *size;
    return rc;
}

int spx_encode_size(spx_ctx *ctx, const float *w, uint64_t rows, uint64_t cols, int enc, int dtype,
                    int nm_n, int nm_m, uint64_t *size)
{
    spx_tensor t;
    uint64_t off[3];
    return analyze(ctx, w, rows, cols, enc, dtype, nm_n, nm_m, &t, size, off);
}

int spx_encode(spx_ctx *ctx, const float *w, uint64_t rows, uint64_t cols, int enc, int dtype,
               int nm_n, int nm_m, spx_tensor *t, void **out, size_t *out_size)
{
    spx_tensor d;
    uint64_t size, off[3], vi = 0;
    unsigned char *b = NULL;
    int rc = 0;
    *out = NULL;
    *out_size = 0;
    SPX_TRY(rc, analyze(ctx, w, rows, cols, enc, dtype, nm_n, nm_m, &d, &size, off));
    if (size > SIZE_MAX || !(b = calloc(size ? (size_t)size : 1, 1)))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "spx_encode: cannot allocate %llu bytes", (unsigned long long)size);
    uint64_t nb = (cols + 7) / 8;
    for (uint64_t r = 0; r < rows; r++) {
        const float *wr = w + r * cols;
        unsigned char *mrow = b + off[1] + r * nb;
        switch (enc) {
        case SPX_ENC_DENSE:
            for (uint64_t c = 0; c < cols; c++)
                store_val(b, dtype, vi++, wr[c]);
            break;
        case SPX_ENC_BITMASK:
            spx_wr64(b + off[2] + 8 * r, vi);
            for (uint64_t c = 0; c < cols; c++)
                if (wr[c] != 0.0f) {
                    mrow[c >> 3] |= (unsigned char)(1u << (c & 7));
                    store_val(b, dtype, vi++, wr[c]);
                }
            break;
        case SPX_ENC_NM:
            for (uint64_t c0 = 0; c0 < cols; c0 += (uint64_t)nm_m) {
                int need = nm_n; /* nonzeros first count against N; fillers are the lowest zero columns */
                for (int j = 0; j < nm_m; j++)
                    need -= wr[c0 + (uint64_t)j] != 0.0f;
                for (uint64_t c = c0; c < c0 + (uint64_t)nm_m; c++) {
                    int keep = wr[c] != 0.0f;
                    if (!keep && need > 0) {
                        keep = 1;
                        need--;
                    }
                    if (keep) {
                        mrow[c >> 3] |= (unsigned char)(1u << (c & 7));
                        store_val(b, dtype, vi++, wr[c] != 0.0f ? wr[c] : 0.0f);
                    }
                }
            }
            break;
        default: /* CSR16 / CSR32: row_ptr[r] = values before row r */
            spx_wr64(b + off[2] + 8 * r, vi);
            for (uint64_t c = 0; c < cols; c++)
                if (wr[c] != 0.0f) {
                    if (enc == SPX_ENC_CSR16)
                        spx_wr16(b + off[1] + 2 * vi, (uint16_t)c);
                    else
                        spx_wr32(b + off[1] + 4 * vi, (uint32_t)c);
                    store_val(b, dtype, vi++, wr[c]);
                }
            if (r + 1 == rows)
                spx_wr64(b + off[2] + 8 * rows, vi);
            break;
        }
    }
    t->encoding = d.encoding;
    t->dtype = d.dtype;
    t->nnz = d.nnz;
    t->nm_n = d.nm_n;
    t->nm_m = d.nm_m;
    t->ndim = 2;
    memcpy(t->dims, d.dims, sizeof t->dims);
    t->data_size = size;
    *out = b;
    *out_size = (size_t)size;
    b = NULL;
done:
    free(b);
    return rc;
}
