/* spx_prune_common.c: option validation, sparsity report, reconstruction error. */
#include "spx_prune_types.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>

#include "spx_ckd.h"

int spx_prune_opts_check(spx_ctx *ctx, const spx_prune_opts *o, size_t cols, int sparsegpt)
{
    int rc = 0;
    if (!o)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "prune: NULL options");
    if (cols == 0 || cols > (size_t)INT_MAX)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "prune: cols %zu out of range [1, %d]", cols, INT_MAX);
    if (o->nm_m != 0) {
        if (o->nm_m < 2 || o->nm_m > 255 || o->nm_n < 1 || o->nm_n >= o->nm_m)
            SPX_FAIL(ctx, rc, SPX_E_ARG,
                     "prune: N:M pattern %d:%d invalid (need 1 <= N < M <= 255, N = weights kept)",
                     o->nm_n, o->nm_m);
        if (cols % (size_t)o->nm_m != 0)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "prune: cols %zu is not a multiple of M = %d", cols, o->nm_m);
    } else {
        if (o->nm_n != 0)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "prune: nm_n = %d without nm_m", o->nm_n);
        if (!(o->sparsity >= 0.0 && o->sparsity < 1.0))
            SPX_FAIL(ctx, rc, SPX_E_ARG, "prune: sparsity %g not in [0, 1)", o->sparsity);
    }
    if (sparsegpt) {
        if (o->blocksize < 1)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "prune: blocksize %d < 1", o->blocksize);
        if (o->nm_m != 0 && o->blocksize % o->nm_m != 0)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "prune: blocksize %d is not a multiple of M = %d",
                     o->blocksize, o->nm_m);
        if (!(o->percdamp >= 0.0 && o->percdamp <= 1e6))
            SPX_FAIL(ctx, rc, SPX_E_ARG, "prune: percdamp %g not in [0, 1e6]", o->percdamp);
        if (o->max_retries < 0 || o->max_retries > 10000)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "prune: max_retries %d not in [0, 10000]", o->max_retries);
        if (!(o->retry_damp >= 0.0 && o->retry_damp <= 1e6) || (o->max_retries > 0 && o->retry_damp == 0.0))
            SPX_FAIL(ctx, rc, SPX_E_ARG, "prune: retry_damp %g must be in (0, 1e6] when retrying",
                     o->retry_damp);
    }
done:
    return rc;
}

void spx_prune_report_count(spx_prune_report *rep, const float *W, size_t rows, size_t cols)
{
    uint64_t z = 0, n = (uint64_t)rows * (uint64_t)cols;
    for (uint64_t k = 0; k < n; k++)
        z += W[k] == 0.0f;
    rep->numel = n;
    rep->zeros = z;
    rep->sparsity = n ? (double)z / (double)n : 0.0;
}

/* sum_k a[k] * b[k] in double */
static double dot_d(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t k = 0; k < n; k++)
        s += (double)a[k] * (double)b[k];
    return s;
}

int spx_prune_recon_error(spx_ctx *ctx, const float *W, const float *Wp, size_t rows, size_t cols,
                          const float *H, double *out)
{
    int rc = 0;
    const size_t RB = 512;  /* rows per chunk (H is packed once per chunk): 2 * RB * cols floats */
    float *D = NULL, *M = NULL;
    double num = 0.0, den = 0.0;
    size_t bytes;

    *out = 0.0;
    if (rows == 0 || cols == 0 || cols > (size_t)INT_MAX)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "recon error: bad shape %zu x %zu", rows, cols);
    if (spx_ckd_mul3_size(RB, cols, sizeof(float), &bytes) != 0)
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "recon error: size overflows");
    D = malloc(bytes);
    M = malloc(bytes);
    if (!D || !M)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "recon error: out of memory");
    for (size_t r0 = 0; r0 < rows; r0 += RB) {
        size_t rb = rows - r0 < RB ? rows - r0 : RB, n = rb * cols;
        const float *w = W + r0 * cols, *wp = Wp + r0 * cols;
        /* M = W_chunk H: tr(W H W^T) restricted to these rows = <W_chunk, M> */
        cblas_ssymm(CblasRowMajor, CblasRight, CblasUpper, (int)rb, (int)cols, 1.0f, H, (int)cols,
                    w, (int)cols, 0.0f, M, (int)cols);
        den += dot_d(w, M, n);
        for (size_t k = 0; k < n; k++)
            D[k] = w[k] - wp[k];
        cblas_ssymm(CblasRowMajor, CblasRight, CblasUpper, (int)rb, (int)cols, 1.0f, H, (int)cols,
                    D, (int)cols, 0.0f, M, (int)cols);
        num += dot_d(D, M, n);
    }
    if (!(den > 0.0) || !isfinite(den) || !isfinite(num))
        SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "recon error: tr(W H W^T) = %g, tr(D H D^T) = %g", den, num);
    *out = num / den;
done:
    free(D);
    free(M);
    return rc;
}
