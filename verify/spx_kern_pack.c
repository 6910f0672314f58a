/* spx_kern_pack.c: build the packed kernel layouts (spx_kern_int.h) from a .spx tensor or from a
 * dense fp32 matrix.
 *
 * Both sources are read through one row interface: `src_row` gives the stored entries of a row as
 * (column, raw value bits in the kmat dtype), ascending in column. Each layout is then built in
 * two passes over the rows (count, then fill), so no dense copy of the matrix is ever made. */
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_half.h"
#include "spx_kern_int.h"

/* ---- row source ------------------------------------------------------------------------------ */

typedef struct src {
    const char *name;           /* for messages */
    uint32_t rows, cols;
    int dtype;                  /* of the raw bits produced */
    size_t esz;                 /* bytes per value */
    /* tensor source */
    const unsigned char *b;     /* blob, NULL for a dense fp32 source */
    int enc;                    /* spx_encoding */
    int nm_n, nm_m;
    uint64_t off[3];
    /* dense fp32 source */
    const float *w;
} src;

/* Little-endian unsigned integer of n = 2, 4 or 8 bytes (any alignment). */
static uint64_t rd_le(const unsigned char *p, size_t n)
{
    switch (n) {
    case 2: return (uint64_t)p[0] | (uint64_t)p[1] << 8;
    case 4: return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24;
    default: {
        uint64_t v = 0;
        for (size_t i = n; i-- > 0;)
            v = (v << 8) | p[i];
        return v;
    }
    }
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* fp32 -> raw bits of `dtype` (round to nearest even). */
static uint32_t round_bits(float f, int dtype)
{
    switch (dtype) {
    case SPX_DTYPE_F16: return spx_f32_to_f16(f);
    case SPX_DTYPE_BF16: return spx_f32_to_bf16(f);
    default: return f32_bits(f);
    }
}

/* Nonzero test on raw bits: +0 and -0 are zeros. */
static int bits_nonzero(uint32_t v, size_t esz)
{
    return esz == 4 ? (v & 0x7FFFFFFFu) != 0 : (v & 0x7FFFu) != 0;
}

/* Entries of row r into cidx/raw (capacity cols); returns the count. */
static uint32_t src_row(const src *s, uint32_t r, uint32_t *cidx, uint32_t *raw)
{
    uint32_t n = 0;
    const uint64_t cols = s->cols;
    if (!s->b) {
        const float *wr = s->w + (size_t)r * cols;
        for (uint32_t c = 0; c < s->cols; c++) {
            uint32_t v = round_bits(wr[c], s->dtype);
            if (bits_nonzero(v, s->esz)) {
                cidx[n] = c;
                raw[n++] = v;
            }
        }
        return n;
    }
    const unsigned char *vals = s->b + s->off[0];
    if (s->enc == SPX_ENC_DENSE) {
        for (uint32_t c = 0; c < s->cols; c++) {
            uint32_t v = (uint32_t)rd_le(vals + ((uint64_t)r * cols + c) * s->esz, s->esz);
            if (bits_nonzero(v, s->esz)) {
                cidx[n] = c;
                raw[n++] = v;
            }
        }
        return n;
    }
    if (s->enc == SPX_ENC_BITMASK || s->enc == SPX_ENC_NM) {
        uint64_t nb = (cols + 7) / 8;
        const unsigned char *mrow = s->b + s->off[1] + (uint64_t)r * nb;
        uint64_t vi = s->enc == SPX_ENC_NM ? (uint64_t)r * (cols / (uint64_t)s->nm_m * (uint64_t)s->nm_n)
                                           : rd_le(s->b + s->off[2] + 8 * (uint64_t)r, 8);
        for (uint64_t k = 0; k < nb; k++) {
            for (unsigned bits = mrow[k]; bits; bits &= bits - 1) {
                cidx[n] = (uint32_t)(8 * k + (unsigned)__builtin_ctz(bits));
                raw[n++] = (uint32_t)rd_le(vals + vi++ * s->esz, s->esz);
            }
        }
        return n;
    }
    /* CSR16 / CSR32 */
    size_t isz = s->enc == SPX_ENC_CSR32 ? 4 : 2;
    uint64_t k0 = rd_le(s->b + s->off[2] + 8 * (uint64_t)r, 8), k1 = rd_le(s->b + s->off[2] + 8 * ((uint64_t)r + 1), 8);
    for (uint64_t k = k0; k < k1; k++) {
        cidx[n] = (uint32_t)rd_le(s->b + s->off[1] + k * isz, isz);
        raw[n++] = (uint32_t)rd_le(vals + k * s->esz, s->esz);
    }
    return n;
}

/* ---- allocation helpers ---------------------------------------------------------------------- */

/* 64-byte aligned array of (n + SPX_KPAD) elements of esz bytes: all zero, or (full == 0) only
 * the padding after the n elements zeroed, for arrays whose n elements the builder writes in full
 * (zeroing those first doubled the memory traffic of loading an expanded model). */
static int alloc_arr_mode(spx_ctx *ctx, const src *s, const char *what, uint64_t n, size_t esz, int full, void **out)
{
    uint64_t cnt, bytes;
    if (spx_ckd_add_u64(n, SPX_KPAD, &cnt) || spx_ckd_mul_u64(cnt, esz, &bytes) ||
        spx_ckd_align_u64(bytes, 64, &bytes) || bytes > SIZE_MAX)
        return spx_err_set(ctx, SPX_E_OVERFLOW, "tensor '%s': %s array of %llu elements is too large",
                           s->name, what, (unsigned long long)n);
    void *p = aligned_alloc(64, (size_t)bytes);
    if (!p)
        return spx_err_set(ctx, SPX_E_NOMEM, "tensor '%s': out of memory for the packed %s (%llu bytes)",
                           s->name, what, (unsigned long long)bytes);
    if (full)
        memset(p, 0, (size_t)bytes);
    else   /* n * esz <= bytes: checked above */
        memset((unsigned char *)p + (size_t)n * esz, 0, (size_t)bytes - (size_t)n * esz);
    *out = p;
    return 0;
}

static int alloc_arr(spx_ctx *ctx, const src *s, const char *what, uint64_t n, size_t esz, void **out)
{
    return alloc_arr_mode(ctx, s, what, n, esz, 1, out);
}

/* every element written by the caller */
static int alloc_arr_filled(spx_ctx *ctx, const src *s, const char *what, uint64_t n, size_t esz, void **out)
{
    return alloc_arr_mode(ctx, s, what, n, esz, 0, out);
}

static void put_val(void *vals, size_t esz, uint64_t i, uint32_t v)
{
    unsigned char *p = (unsigned char *)vals + i * esz;
    if (esz == 4) {
        memcpy(p, &v, 4);
    } else {
        uint16_t h = (uint16_t)v;
        memcpy(p, &h, 2);
    }
}

/* ---- layout builders ------------------------------------------------------------------------- */

/* A dense tensor blob already holds the DENSE layout's bytes on a little-endian host. */
static int dense_bytes_match(const src *s)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return s->b && s->enc == SPX_ENC_DENSE;
#else
    (void)s;
    return 0;
#endif
}

static int build_dense(spx_ctx *ctx, const src *s, spx_kmat *m, uint32_t *cidx, uint32_t *raw)
{
    int rc = 0;
    uint64_t numel = (uint64_t)s->rows * s->cols;
    SPX_TRY(rc, alloc_arr_mode(ctx, s, "values", numel, s->esz, !dense_bytes_match(s), &m->vals));
    if (dense_bytes_match(s)) {   /* plain copy: load time matters for big models */
        memcpy(m->vals, s->b + s->off[0], (size_t)numel * s->esz);
    } else {
        for (uint32_t r = 0; r < s->rows; r++) {
            uint32_t n = src_row(s, r, cidx, raw);
            for (uint32_t k = 0; k < n; k++)
                put_val(m->vals, s->esz, (uint64_t)r * s->cols + cidx[k], raw[k]);
        }
    }
    m->nnz = numel;
    m->bytes = (size_t)numel * s->esz;
done:
    return rc;
}

/* Row pointers for BITMASK/CSR: first pass counts entries. */
static int count_rows(spx_ctx *ctx, const src *s, spx_kmat *m, uint32_t *cidx, uint32_t *raw)
{
    int rc = 0;
    void *mem = NULL;
    SPX_TRY(rc, alloc_arr(ctx, s, "row pointers", (uint64_t)s->rows + 1, sizeof(uint64_t), &mem));
    m->ptr = mem;
    m->ptr[0] = 0;
    for (uint32_t r = 0; r < s->rows; r++)
        m->ptr[r + 1] = m->ptr[r] + src_row(s, r, cidx, raw);
    m->nnz = m->ptr[s->rows];
done:
    return rc;
}

static int build_bitmask(spx_ctx *ctx, const src *s, spx_kmat *m, uint32_t *cidx, uint32_t *raw)
{
    int rc = 0;
    void *mem = NULL;
    SPX_TRY(rc, count_rows(ctx, s, m, cidx, raw));
    SPX_TRY(rc, alloc_arr_filled(ctx, s, "values", m->nnz, s->esz, &m->vals));
    SPX_TRY(rc, alloc_arr(ctx, s, "bitmask", (uint64_t)s->rows * m->nb16, sizeof(uint16_t), &mem));
    m->mask = mem;
    for (uint32_t r = 0; r < s->rows; r++) {
        uint32_t n = src_row(s, r, cidx, raw);
        uint16_t *mr = m->mask + (size_t)r * m->nb16;
        for (uint32_t k = 0; k < n; k++) {
            mr[cidx[k] / 16] = (uint16_t)(mr[cidx[k] / 16] | (1u << (cidx[k] % 16)));
            put_val(m->vals, s->esz, m->ptr[r] + k, raw[k]);
        }
    }
    m->bytes = (size_t)(m->nnz * s->esz + (uint64_t)s->rows * m->nb16 * 2);
done:
    return rc;
}

static int build_csr(spx_ctx *ctx, const src *s, spx_kmat *m, uint32_t *cidx, uint32_t *raw)
{
    int rc = 0;
    void *mem = NULL;
    if (s->cols > SPX_KL_CSR_MAX_COLS)
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "tensor '%s': %u columns do not fit the u16 indices of the CSR kernel layout",
                 s->name, s->cols);
    SPX_TRY(rc, count_rows(ctx, s, m, cidx, raw));
    SPX_TRY(rc, alloc_arr_filled(ctx, s, "values", m->nnz, s->esz, &m->vals));
    SPX_TRY(rc, alloc_arr_filled(ctx, s, "column indices", m->nnz, sizeof(uint16_t), &mem));
    m->col = mem;
    for (uint32_t r = 0; r < s->rows; r++) {
        uint32_t n = src_row(s, r, cidx, raw);
        for (uint32_t k = 0; k < n; k++) {
            m->col[m->ptr[r] + k] = (uint16_t)cidx[k];
            put_val(m->vals, s->esz, m->ptr[r] + k, raw[k]);
        }
    }
    m->bytes = (size_t)(m->nnz * (s->esz + 2) + ((uint64_t)s->rows + 1) * 8);
done:
    return rc;
}

static int build_nm24(spx_ctx *ctx, const src *s, spx_kmat *m, uint32_t *cidx, uint32_t *raw)
{
    int rc = 0;
    void *mem = NULL;
    const uint64_t slots = (uint64_t)m->nb32 * 16;
    if (s->cols % 4)
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "tensor '%s': %u columns are not a multiple of 4 (2:4 layout)", s->name, s->cols);
    SPX_TRY(rc, alloc_arr(ctx, s, "values", (uint64_t)s->rows * slots, s->esz, &m->vals));
    SPX_TRY(rc, alloc_arr(ctx, s, "2:4 positions", (uint64_t)s->rows * m->nb32, sizeof(uint32_t), &mem));
    m->code = mem;
    for (uint32_t r = 0; r < s->rows; r++) {
        uint32_t n = src_row(s, r, cidx, raw), k = 0;
        uint32_t *cr = m->code + (size_t)r * m->nb32;
        for (uint32_t g = 0; g < s->cols / 4; g++) {
            /* entries of group g (columns 4g..4g+3), then pad with unused positions to exactly 2 */
            uint32_t pos[4], val[4], cnt = 0, used = 0;
            while (k < n && cidx[k] / 4 == g) {
                if (cnt == 2)
                    SPX_FAIL(ctx, rc, SPX_E_SPARSE, "tensor '%s': row %u, columns %u..%u hold more than 2 values "
                             "(2:4 layout)", s->name, r, 4 * g, 4 * g + 3);
                pos[cnt] = cidx[k] % 4;
                val[cnt++] = raw[k++];
                used |= 1u << pos[cnt - 1];
            }
            for (uint32_t p = 0; cnt < 2; p++) {
                if (!(used & (1u << p))) {
                    pos[cnt] = p;
                    val[cnt++] = 0;
                    used |= 1u << p;
                }
            }
            if (pos[0] > pos[1]) {   /* keep slots in column order */
                uint32_t t = pos[0]; pos[0] = pos[1]; pos[1] = t;
                t = val[0]; val[0] = val[1]; val[1] = t;
            }
            uint32_t b = g / 8, slot = 2 * (g % 8);
            for (uint32_t j = 0; j < 2; j++) {
                cr[b] |= pos[j] << (2 * (slot + j));
                put_val(m->vals, s->esz, (uint64_t)r * slots + (uint64_t)b * 16 + slot + j, val[j]);
            }
        }
    }
    m->nnz = (uint64_t)s->rows * (s->cols / 2);
    m->bytes = (size_t)((uint64_t)s->rows * (slots * s->esz + (uint64_t)m->nb32 * 4));
done:
    return rc;
}

static int build_panel(spx_ctx *ctx, const src *s, spx_kmat *m, uint32_t *cidx, uint32_t *raw)
{
    int rc = 0;
    void *mem = NULL;
    uint64_t *cur = NULL, nptr, pos = 0;
    const uint64_t ld = (uint64_t)s->rows + 1;
    if (spx_ckd_mul_u64(m->npan, ld, &nptr))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "tensor '%s': panel pointers overflow", s->name);
    SPX_TRY(rc, alloc_arr(ctx, s, "panel pointers", nptr, sizeof(uint64_t), &mem));
    m->ptr = mem;
    /* pass 1: counts per (panel, row) into ptr[p][r+1], then prefix sums in panel-major order */
    for (uint32_t r = 0; r < s->rows; r++) {
        uint32_t n = src_row(s, r, cidx, raw);
        for (uint32_t k = 0; k < n; k++)
            m->ptr[(uint64_t)(cidx[k] / SPX_KL_PANEL_COLS) * ld + r + 1]++;
    }
    for (uint32_t p = 0; p < m->npan; p++) {
        uint64_t *pp = m->ptr + (uint64_t)p * ld;
        pp[0] = pos;
        for (uint32_t r = 0; r < s->rows; r++)
            pp[r + 1] = (pos += pp[r + 1]);
    }
    m->nnz = pos;
    SPX_TRY(rc, alloc_arr_filled(ctx, s, "values", m->nnz, s->esz, &m->vals));
    SPX_TRY(rc, alloc_arr_filled(ctx, s, "panel indices", m->nnz, 1, &mem));
    m->pidx = mem;
    SPX_TRY(rc, alloc_arr(ctx, s, "panel cursors", m->npan, sizeof(uint64_t), &mem));
    cur = mem;
    /* pass 2: a row's entries go to its panels in column order */
    for (uint32_t r = 0; r < s->rows; r++) {
        uint32_t n = src_row(s, r, cidx, raw);
        for (uint32_t p = 0; p < m->npan; p++)
            cur[p] = m->ptr[(uint64_t)p * ld + r];
        for (uint32_t k = 0; k < n; k++) {
            uint32_t p = cidx[k] / SPX_KL_PANEL_COLS;
            m->pidx[cur[p]] = (uint8_t)(cidx[k] % SPX_KL_PANEL_COLS);
            put_val(m->vals, s->esz, cur[p]++, raw[k]);
        }
    }
    m->bytes = (size_t)(m->nnz * (s->esz + 1) + nptr * 8);
done:
    free(cur);
    return rc;
}

/* ---- entry points ------------------------------------------------------------------------------ */

static int pack(spx_ctx *ctx, const src *s, int layout, spx_kmat **out)
{
    int rc = 0;
    spx_kmat *m = NULL;
    uint32_t *cidx = NULL, *raw = NULL;
    *out = NULL;
    if (layout <= SPX_KL_AUTO || layout >= SPX_KL_COUNT)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "tensor '%s': unknown kernel layout %d", s->name, layout);
    if (!(m = calloc(1, sizeof *m)) || !(cidx = malloc(((size_t)s->cols + 1) * sizeof *cidx)) ||
        !(raw = malloc(((size_t)s->cols + 1) * sizeof *raw)))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "tensor '%s': out of memory for packing", s->name);
    m->rows = s->rows;
    m->cols = s->cols;
    m->layout = layout;
    m->dtype = s->dtype;
    m->nb16 = (uint32_t)(((uint64_t)s->cols + 15) / 16);
    m->nb32 = (uint32_t)(((uint64_t)s->cols + 31) / 32);
    m->npan = (uint32_t)(((uint64_t)s->cols + SPX_KL_PANEL_COLS - 1) / SPX_KL_PANEL_COLS);
    switch (layout) {
    case SPX_KL_DENSE: SPX_TRY(rc, build_dense(ctx, s, m, cidx, raw)); break;
    case SPX_KL_BITMASK: SPX_TRY(rc, build_bitmask(ctx, s, m, cidx, raw)); break;
    case SPX_KL_NM24: SPX_TRY(rc, build_nm24(ctx, s, m, cidx, raw)); break;
    case SPX_KL_CSR: SPX_TRY(rc, build_csr(ctx, s, m, cidx, raw)); break;
    default: SPX_TRY(rc, build_panel(ctx, s, m, cidx, raw)); break;
    }
    *out = m;
    m = NULL;
done:
    spx_kmat_free(m);
    free(cidx);
    free(raw);
    return rc;
}

static int check_dims(spx_ctx *ctx, const char *name, uint64_t rows, uint64_t cols, int dtype)
{
    if (rows == 0 || cols == 0 || rows > INT32_MAX || cols > INT32_MAX)
        return spx_err_set(ctx, SPX_E_SHAPE, "tensor '%s': shape [%llu, %llu] is outside 1..2^31-1 (kernel layouts)",
                           name, (unsigned long long)rows, (unsigned long long)cols);
    if (dtype != SPX_DTYPE_F32 && dtype != SPX_DTYPE_F16 && dtype != SPX_DTYPE_BF16)
        return spx_err_set(ctx, SPX_E_DTYPE, "tensor '%s': dtype %s is not a weight dtype (F32, F16, BF16)",
                           name, spx_dtype_name(dtype));
    return 0;
}

int spx_kmat_from_tensor(spx_ctx *ctx, const spx_tensor *t, const void *blob, int layout_hint, spx_kmat **out)
{
    int rc = 0;
    src s;
    uint64_t size;
    *out = NULL;
    memset(&s, 0, sizeof s);
    s.name = t->name;
    if (t->ndim != 2)
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "tensor '%s': ndim %u, kernel layouts need a 2-D matrix", t->name, (unsigned)t->ndim);
    SPX_TRY(rc, check_dims(ctx, t->name, t->dims[0], t->dims[1], t->dtype));
    if (!blob)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "tensor '%s': no data", t->name);
    if ((rc = spx_encoding_validate(ctx, t, blob)) < 0) {
        spx_err_prefix(ctx, "tensor '%s': ", t->name);
        goto done;
    }
    spx_encoding_layout(ctx, t, &size, s.off);
    s.rows = (uint32_t)t->dims[0];
    s.cols = (uint32_t)t->dims[1];
    s.dtype = t->dtype;
    s.esz = spx_dtype_size(t->dtype);
    s.b = blob;
    s.enc = t->encoding;
    s.nm_n = t->nm_n;
    s.nm_m = t->nm_m;
    if (layout_hint == SPX_KL_AUTO) {
        double density = (double)t->nnz / ((double)s.rows * (double)s.cols);
        if (t->encoding == SPX_ENC_DENSE)
            layout_hint = SPX_KL_DENSE;
        else if (t->encoding == SPX_ENC_NM && t->nm_n == 2 && t->nm_m == 4)
            layout_hint = SPX_KL_NM24;
        else if (density <= SPX_KL_AUTO_CSR_DENSITY && s.cols <= SPX_KL_CSR_MAX_COLS)
            layout_hint = SPX_KL_CSR;
        else if (density > SPX_KL_AUTO_DENSE_DENSITY)
            layout_hint = SPX_KL_DENSE;
        else
            layout_hint = SPX_KL_BITMASK;
    }
    SPX_TRY(rc, pack(ctx, &s, layout_hint, out));
done:
    return rc;
}

int spx_kmat_from_dense(spx_ctx *ctx, const float *w, uint32_t rows, uint32_t cols, int layout, int dtype,
                        spx_kmat **out)
{
    int rc = 0;
    src s;
    *out = NULL;
    memset(&s, 0, sizeof s);
    s.name = "(dense matrix)";
    SPX_TRY(rc, check_dims(ctx, s.name, rows, cols, dtype));
    if (!w)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "spx_kmat_from_dense: no data");
    s.rows = rows;
    s.cols = cols;
    s.dtype = dtype;
    s.esz = spx_dtype_size(dtype);
    s.w = w;
    SPX_TRY(rc, pack(ctx, &s, layout, out));
done:
    return rc;
}

void spx_kmat_free(spx_kmat *m)
{
    if (!m)
        return;
    free(m->vals);
    free(m->mask);
    free(m->code);
    free(m->col);
    free(m->pidx);
    free(m->ptr);
    free(m);
}
