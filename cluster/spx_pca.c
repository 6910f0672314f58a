/* spx_pca.c: streaming PCA (block-centered dsyrk + Chan merge, dsyevr). See spx_pca.h. */
#include <cblas.h>
#include <lapacke.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_pca.h"

#define SPX_PCA_BLOCK_BYTES ((size_t)16 << 20) /* block buffer budget */

struct spx_pca_acc {
    uint32_t d;
    uint64_t n;        /* rows merged so far */
    size_t block;      /* rows per dsyrk block */
    double *mean;      /* [d] running mean */
    double *M2;        /* [d x d] row-major, upper triangle: sum of centered outer products */
    double *buf;       /* [block x d] centered block */
    double *bmean;     /* [d] block mean */
};

void spx_pca_acc_free(spx_pca_acc *acc)
{
    if (!acc)
        return;
    free(acc->mean);
    free(acc->M2);
    free(acc->buf);
    free(acc->bmean);
    free(acc);
}

void spx_pca_free(spx_pca *p)
{
    if (!p)
        return;
    free(p->mean);
    free(p->P);
    free(p->explained_var);
    free(p);
}

uint64_t spx_pca_acc_rows(const spx_pca_acc *acc)
{
    return acc ? acc->n : 0;
}

int spx_pca_acc_new(uint32_t d, spx_pca_acc **out, spx_ctx *ctx)
{
    int rc = 0;
    spx_pca_acc *a = NULL;
    size_t dd;
    if (out)
        *out = NULL;
    if (!out || d == 0 || d > INT_MAX)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "pca: invalid dimension %u", d);
    if (spx_ckd_mul3_size(d, d, sizeof(double), &dd) != 0)
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "pca: covariance size overflows for d=%u", d);
    a = calloc(1, sizeof *a);
    if (!a)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "pca: out of memory");
    a->d = d;
    a->block = SPX_PCA_BLOCK_BYTES / ((size_t)d * sizeof(double));
    if (a->block < 16)
        a->block = 16;
    if (a->block > 4096)
        a->block = 4096;
    a->mean = calloc(d, sizeof(double));
    a->M2 = calloc(1, dd);
    a->buf = malloc(a->block * d * sizeof(double));
    a->bmean = malloc((size_t)d * sizeof(double));
    if (!a->mean || !a->M2 || !a->buf || !a->bmean)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "pca: out of memory for a %ux%u covariance", d, d);
    *out = a;
    a = NULL;
done:
    spx_pca_acc_free(a);
    return rc;
}

/* Merge one block X [m x d] (already checked finite) into the accumulator. */
static void acc_block(spx_pca_acc *a, const float *X, size_t m)
{
    uint32_t d = a->d;
    for (uint32_t t = 0; t < d; t++)
        a->bmean[t] = 0.0;
    for (size_t i = 0; i < m; i++)
        for (uint32_t t = 0; t < d; t++)
            a->bmean[t] += (double)X[i * d + t];
    for (uint32_t t = 0; t < d; t++)
        a->bmean[t] /= (double)m;
    for (size_t i = 0; i < m; i++)
        for (uint32_t t = 0; t < d; t++)
            a->buf[i * d + t] = (double)X[i * d + t] - a->bmean[t];
    /* M2 += Xc^T Xc, Xc [m x d] row-major */
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)m, 1.0, a->buf, (int)d, 1.0, a->M2,
                (int)d);
    double na = (double)a->n, nb = (double)m, nt = na + nb;
    for (uint32_t t = 0; t < d; t++)
        a->bmean[t] -= a->mean[t]; /* delta */
    if (a->n > 0)
        cblas_dsyr(CblasRowMajor, CblasUpper, (int)d, na * nb / nt, a->bmean, 1, a->M2, (int)d);
    for (uint32_t t = 0; t < d; t++)
        a->mean[t] += a->bmean[t] * (nb / nt);
    a->n += m;
}

int spx_pca_acc_add(spx_pca_acc *acc, const float *X, size_t n, spx_ctx *ctx)
{
    int rc = 0;
    if (!acc || (!X && n > 0))
        SPX_FAIL(ctx, rc, SPX_E_ARG, "pca: NULL accumulator or data");
    uint32_t d = acc->d;
    size_t nd;
    if (spx_ckd_mul_size(n, d, &nd) != 0)
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "pca: %zu rows of dimension %u overflow", n, d);
    for (size_t i = 0; i < nd; i++)
        if (!isfinite(X[i]))
            SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "pca: input row %llu column %zu is %s",
                     (unsigned long long)(acc->n + i / d), i % d, isnan(X[i]) ? "NaN" : "Inf");
    for (size_t r0 = 0; r0 < n; r0 += acc->block) {
        size_t m = n - r0 < acc->block ? n - r0 : acc->block;
        acc_block(acc, X + r0 * d, m);
    }
done:
    return rc;
}

int spx_pca_acc_finish(const spx_pca_acc *acc, uint32_t k, spx_pca **out, spx_ctx *ctx)
{
    int rc = 0;
    spx_pca *p = NULL;
    double *A = NULL, *w = NULL, *Z = NULL;
    lapack_int *isuppz = NULL;
    if (out)
        *out = NULL;
    if (!acc || !out)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "pca: NULL argument");
    uint32_t d = acc->d;
    if (k == 0 || k > d)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "pca: %u components requested for dimension %u", k, d);
    if (acc->n < 2)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "pca: %llu rows, need at least 2", (unsigned long long)acc->n);
    size_t dd = (size_t)d * d;
    p = calloc(1, sizeof *p);
    A = malloc(dd * sizeof(double));
    w = malloc((size_t)d * sizeof(double));
    Z = malloc((size_t)d * k * sizeof(double));
    isuppz = malloc(2u * (size_t)k * sizeof(lapack_int));
    if (!p || !A || !w || !Z || !isuppz)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "pca: out of memory for the eigendecomposition (d=%u)", d);
    p->d = d;
    p->k = k;
    p->n = acc->n;
    p->mean = malloc((size_t)d * sizeof(float));
    p->P = malloc((size_t)k * d * sizeof(float));
    p->explained_var = malloc((size_t)k * sizeof(double));
    if (!p->mean || !p->P || !p->explained_var)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "pca: out of memory");
    double scale = 1.0 / ((double)acc->n - 1.0);
    p->total_var = 0.0;
    for (uint32_t i = 0; i < d; i++) {
        for (uint32_t j = i; j < d; j++)
            A[(size_t)i * d + j] = acc->M2[(size_t)i * d + j] * scale;
        p->total_var += A[(size_t)i * d + i];
    }
    /* Row-major upper == column-major lower: call the column-major solver on the same array so
     * LAPACKE does not make a transposed copy. Eigenvalues come out ascending; Z [d x k] col-major. */
    lapack_int found = 0;
    lapack_int info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'V', 'I', 'L', (lapack_int)d, A, (lapack_int)d,
                                     0.0, 0.0, (lapack_int)(d - k + 1), (lapack_int)d, 0.0, &found, w, Z,
                                     (lapack_int)d, isuppz);
    if (info != 0 || found != (lapack_int)k)
        SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "pca: dsyevr failed (info=%d, %d of %u eigenpairs)", (int)info,
                 (int)found, k);
    for (uint32_t c = 0; c < k; c++) {
        const double *v = Z + (size_t)(k - 1 - c) * d; /* descending order */
        uint32_t big = 0;
        for (uint32_t t = 1; t < d; t++)
            if (fabs(v[t]) > fabs(v[big]))
                big = t;
        double sgn = v[big] < 0.0 ? -1.0 : 1.0;
        for (uint32_t t = 0; t < d; t++)
            p->P[(size_t)c * d + t] = (float)(sgn * v[t]);
        p->explained_var[c] = w[k - 1 - c];
    }
    for (uint32_t t = 0; t < d; t++)
        p->mean[t] = (float)acc->mean[t];
    *out = p;
    p = NULL;
done:
    spx_pca_free(p);
    free(A);
    free(w);
    free(Z);
    free(isuppz);
    return rc;
}

int spx_pca_fit(const float *X, size_t n, uint32_t d, uint32_t k, spx_pca **out, spx_ctx *ctx)
{
    int rc = 0;
    spx_pca_acc *acc = NULL;
    if (out)
        *out = NULL;
    SPX_TRY(rc, spx_pca_acc_new(d, &acc, ctx));
    SPX_TRY(rc, spx_pca_acc_add(acc, X, n, ctx));
    SPX_TRY(rc, spx_pca_acc_finish(acc, k, out, ctx));
done:
    spx_pca_acc_free(acc);
    return rc;
}

int spx_pca_project(const spx_pca *p, const float *X, size_t n, float *Y, spx_ctx *ctx)
{
    int rc = 0;
    float *buf = NULL;
    size_t block = 1024; /* rows per sgemm; fewer for small n (one token at a time when routing) */
    if (!p || ((!X || !Y) && n > 0))
        SPX_FAIL(ctx, rc, SPX_E_ARG, "pca project: NULL argument");
    if (n == 0)
        goto done;
    uint32_t d = p->d, k = p->k;
    size_t nd;
    if (spx_ckd_mul_size(n, d, &nd) != 0)
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "pca project: %zu rows overflow", n);
    if (n < block)
        block = n;
    buf = malloc(block * d * sizeof(float));
    if (!buf)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "pca project: out of memory");
    for (size_t r0 = 0; r0 < n; r0 += block) {
        size_t m = n - r0 < block ? n - r0 : block;
        for (size_t i = 0; i < m; i++)
            for (uint32_t t = 0; t < d; t++)
                buf[i * d + t] = X[(r0 + i) * d + t] - p->mean[t];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)k, (int)d, 1.0f, buf, (int)d, p->P,
                    (int)d, 0.0f, Y + r0 * k, (int)k);
    }
done:
    free(buf);
    return rc;
}
