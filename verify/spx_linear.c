/* spx_linear.c: dense fp32 linear layers over OpenBLAS. */
#include "spx_linear.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"

/* Dense F32 data can be used straight from the map only on a little-endian host (the format is
 * little-endian) and when the pointer is float-aligned (the format guarantees 64). */
static int usable_in_place(const spx_tensor *t, const void *data)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return t->encoding == SPX_ENC_DENSE && t->dtype == SPX_DTYPE_F32 && ((uintptr_t)data % sizeof(float)) == 0;
#else
    (void)t;
    (void)data;
    return 0;
#endif
}

int spx_tensor_load_f32(spx_ctx *ctx, const spx_file *f, const spx_tensor *t, uint64_t numel,
                        int copy, const float **ptr, float **owned)
{
    int rc = 0;
    uint64_t have = 0;
    float *buf = NULL;
    size_t bytes;
    const void *data;
    *ptr = NULL;
    *owned = NULL;
    SPX_TRY(rc, spx_tensor_numel(ctx, t, &have));
    if (have != numel)
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: tensor '%s' has %llu elements, the model needs %llu",
                 spx_file_path(f), t->name, (unsigned long long)have, (unsigned long long)numel);
    if (numel > SIZE_MAX || spx_ckd_mul_size((size_t)numel, sizeof(float), &bytes))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "%s: tensor '%s' too large for this host", spx_file_path(f), t->name);
    data = spx_file_data(f, t);
    if (!data)
        SPX_FAIL(ctx, rc, SPX_E_INTERNAL, "%s: no data for tensor '%s'", spx_file_path(f), t->name);
    if (!copy && usable_in_place(t, data)) {
        *ptr = (const float *)data;
        goto done;
    }
    buf = malloc(bytes ? bytes : 1);
    if (!buf)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory for tensor '%s' (%zu bytes)", spx_file_path(f), t->name, bytes);
    if (usable_in_place(t, data))
        memcpy(buf, data, bytes);
    else
        SPX_TRY(rc, spx_decode_f32(ctx, t, data, buf));
    *ptr = buf;
    *owned = buf;
    buf = NULL;
done:
    free(buf);
    return rc;
}

int spx_linear_load(spx_ctx *ctx, const spx_file *f, const spx_tensor *t, const spx_tensor *b,
                    uint32_t rows, uint32_t cols, int copy, spx_linear *l)
{
    int rc = 0;
    memset(l, 0, sizeof *l);
    if (t->ndim != 2 || t->dims[0] != rows || t->dims[1] != cols)
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: tensor '%s' has shape [%llu, %llu] (ndim %u), expected [%u, %u]",
                 spx_file_path(f), t->name, (unsigned long long)t->dims[0],
                 (unsigned long long)(t->ndim > 1 ? t->dims[1] : 0), (unsigned)t->ndim, rows, cols);
    if (b && (b->ndim != 1 || b->dims[0] != rows))
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: bias '%s' has shape [%llu] (ndim %u), expected [%u]",
                 spx_file_path(f), b->name, (unsigned long long)b->dims[0], (unsigned)b->ndim, rows);
    l->kind = SPX_LINEAR_DENSE;
    l->rows = rows;
    l->cols = cols;
    SPX_TRY(rc, spx_tensor_load_f32(ctx, f, t, (uint64_t)rows * cols, copy, &l->w, &l->owned));
    l->nnz = t->nnz;
    if (b)
        SPX_TRY(rc, spx_tensor_load_f32(ctx, f, b, rows, copy, &l->bias, &l->bias_owned));
done:
    if (rc < 0)
        spx_linear_release(l);
    return rc;
}

void spx_linear_init_owned(spx_linear *l, uint32_t rows, uint32_t cols, float *w, float *bias)
{
    memset(l, 0, sizeof *l);
    l->kind = SPX_LINEAR_DENSE;
    l->rows = rows;
    l->cols = cols;
    l->w = w;
    l->owned = w;
    l->bias = bias;
    l->bias_owned = bias;
    l->nnz = 0;
    for (size_t i = 0; i < (size_t)rows * cols; i++)
        l->nnz += w[i] != 0.0f;
}

void spx_linear_release(spx_linear *l)
{
    if (!l)
        return;
    free(l->owned);
    free(l->bias_owned);
    memset(l, 0, sizeof *l);
}

void spx_linear_forward(const spx_linear *l, const float *X, size_t n, float *Y)
{
    const blasint rows = (blasint)l->rows, cols = (blasint)l->cols;
    if (n == 0)
        return;
    if (n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, l->w, cols, X, 1, 0.0f, Y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)n, rows, cols, 1.0f, X, cols,
                    l->w, cols, 0.0f, Y, rows);
    if (l->bias) {
        for (size_t i = 0; i < n; i++) {
            float *y = Y + i * l->rows;
            for (uint32_t r = 0; r < l->rows; r++)
                y[r] += l->bias[r];
        }
    }
}
