/* test_prune_hessian.c: the running-mean Hessian / column-norm accumulator against a naive
 * double-precision replay of the references' per-sequence recurrences. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_hessian.h"
#include "spx_test.h"

/* Naive reference, double, literally the per-sequence rules of sparsegpt.py / wanda:
 *   H *= n/(n+1); n += 1; H += (2/n) X X^T;   colsq *= (n-1)/n ... += ||X_j||^2 / n */
static void naive_add(double *H, double *cq, size_t c, uint64_t *n, const float *X, size_t T)
{
    double f = (double)*n / (double)(*n + 1);
    *n += 1;
    for (size_t i = 0; i < c * c; i++)
        H[i] *= f;
    for (size_t j = 0; j < c; j++)
        cq[j] *= f;
    for (size_t t = 0; t < T; t++) {
        const float *x = X + t * c;
        for (size_t i = 0; i < c; i++) {
            for (size_t j = 0; j < c; j++)
                H[i * c + j] += 2.0 / (double)*n * (double)x[i] * (double)x[j];
            cq[i] += (double)x[i] * (double)x[i] / (double)*n;
        }
    }
}

/* relative Frobenius distance over the upper triangle */
static double rel_upper(const float *A, const double *B, size_t c)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < c; i++)
        for (size_t j = i; j < c; j++) {
            double d = (double)A[i * c + j] - B[i * c + j];
            num += d * d;
            den += B[i * c + j] * B[i * c + j];
        }
    return sqrt(num / den);
}

static double rel_vec(const double *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num / den);
}

static void fill(float *X, size_t n, uint64_t *rng)
{
    for (size_t i = 0; i < n; i++)
        X[i] = (float)(spx_test_normal(rng) + 0.3);   /* non-zero mean: large off-diagonals */
}

/* sequences of lengths len[0..ns) over c features, checked three ways */
static void check_case(size_t c, const size_t *len, size_t ns, uint64_t seed)
{
    spx_ctx ctx = SPX_CTX_INIT;
    uint64_t rng = seed, n = 0;
    size_t total = 0, off = 0;
    for (size_t s = 0; s < ns; s++)
        total += len[s];
    float *X = malloc((total ? total : 1) * c * sizeof(float));
    double *H = calloc(c * c, sizeof(double)), *cq = calloc(c, sizeof(double));
    spx_hessian *h1 = NULL, *h2 = NULL, *h3 = NULL;
    fill(X, total * c, &rng);
    for (size_t s = 0; s < ns; s++) {
        naive_add(H, cq, c, &n, X + off * c, len[s]);
        off += len[s];
    }
    CHECK_RC(spx_hessian_new(&ctx, c, SPX_HESSIAN_FULL | SPX_HESSIAN_COLSQ, &h1), 0);
    CHECK_RC(spx_hessian_new(&ctx, c, SPX_HESSIAN_FULL | SPX_HESSIAN_COLSQ, &h2), 0);
    CHECK_RC(spx_hessian_new(&ctx, c, SPX_HESSIAN_COLSQ, &h3), 0);
    if (!h1 || !h2 || !h3)
        goto out;
    /* h1: one sequence at a time; h2: first half as one chunk, rest as a second chunk */
    off = 0;
    for (size_t s = 0; s < ns; s++) {
        CHECK_RC(spx_hessian_add(&ctx, h1, X + off * c, len[s]), 0);
        off += len[s];
    }
    size_t half = ns / 2, t_half = 0;
    for (size_t s = 0; s < half; s++)
        t_half += len[s];
    if (half)
        CHECK_RC(spx_hessian_add_chunk(&ctx, h2, X, t_half, half), 0);
    CHECK_RC(spx_hessian_add_chunk(&ctx, h2, X + t_half * c, total - t_half, ns - half), 0);
    CHECK_RC(spx_hessian_add_chunk(&ctx, h3, X, total, ns), 0);

    CHECK(spx_hessian_count(h1) == ns && spx_hessian_count(h2) == ns);
    CHECK(spx_hessian_tokens(h1) == total && spx_hessian_tokens(h2) == total);
    CHECK(spx_hessian_matrix(h3) == NULL && spx_hessian_colsq(h3) != NULL);
    /* fp32 accumulation (ssyrk) of sums of <= a few hundred products, then fp32 rescaling per
     * chunk: relative rounding ~1e-7 * sqrt(terms); 2e-6 leaves a 10x margin. */
    double e1 = rel_upper(spx_hessian_matrix(h1), H, c), e2 = rel_upper(spx_hessian_matrix(h2), H, c);
    fprintf(stderr, "c %zu: H rel err per-seq %.2e chunked %.2e\n", c, e1, e2);
    CHECK_MSG(e1 < 2e-6, "per-sequence H rel err %g (c %zu)", e1, c);
    CHECK_MSG(e2 < 2e-6, "chunked H rel err %g (c %zu)", e2, c);
    /* colsq is accumulated in double from fp32 inputs: only the order of the scalings differs */
    double q1 = rel_vec(spx_hessian_colsq(h1), cq, c), q2 = rel_vec(spx_hessian_colsq(h2), cq, c),
           q3 = rel_vec(spx_hessian_colsq(h3), cq, c);
    CHECK_MSG(q1 < 1e-12 && q2 < 1e-12 && q3 < 1e-12, "colsq rel err %g %g %g", q1, q2, q3);
    /* colsq == diag(H)/2 */
    for (size_t j = 0; j < c; j++)
        CHECK_NEAR(spx_hessian_colsq(h1)[j], 0.5 * spx_hessian_matrix(h1)[j * c + j],
                   2e-6 * spx_hessian_colsq(h1)[j] + 1e-30);
    /* symmetrize mirrors the upper triangle exactly */
    spx_hessian_symmetrize(h1);
    {
        const float *M = spx_hessian_matrix(h1);
        size_t bad = 0;
        for (size_t i = 0; i < c; i++)
            for (size_t j = 0; j < i; j++)
                bad += M[i * c + j] != M[j * c + i];
        CHECK(bad == 0);
    }
out:
    spx_hessian_free(h1);
    spx_hessian_free(h2);
    spx_hessian_free(h3);
    free(X);
    free(H);
    free(cq);
}

static void check_errors(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_hessian *h = NULL;
    float X[3 * 4] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    CHECK_RC(spx_hessian_new(&ctx, 0, SPX_HESSIAN_FULL, &h), SPX_E_ARG);
    CHECK_RC(spx_hessian_new(&ctx, 4, 0, &h), SPX_E_ARG);
    CHECK_RC(spx_hessian_new(&ctx, 4, 8, &h), SPX_E_ARG);
    CHECK_RC(spx_hessian_new(&ctx, SIZE_MAX / 2, SPX_HESSIAN_FULL, &h), SPX_E_ARG);
    CHECK_RC(spx_hessian_new(&ctx, 4, SPX_HESSIAN_FULL | SPX_HESSIAN_COLSQ, &h), 0);
    if (!h)
        return;
    CHECK_RC(spx_hessian_add(&ctx, h, X, 3), 0);
    float before[16];
    memcpy(before, spx_hessian_matrix(h), sizeof before);
    double cq_before = spx_hessian_colsq(h)[2];
    X[6] = NAN;
    CHECK_RC(spx_hessian_add(&ctx, h, X, 3), SPX_E_NUMERIC);
    CHECK(strstr(ctx.msg, "token 1, feature 2") != NULL);
    X[6] = INFINITY;
    CHECK_RC(spx_hessian_add(&ctx, h, X, 3), SPX_E_NUMERIC);
    /* a rejected chunk leaves the accumulator unchanged */
    CHECK(spx_hessian_count(h) == 1 && spx_hessian_tokens(h) == 3);
    CHECK(memcmp(before, spx_hessian_matrix(h), sizeof before) == 0);
    CHECK(spx_hessian_colsq(h)[2] == cq_before);
    CHECK_RC(spx_hessian_add_chunk(&ctx, h, X, 3, 0), SPX_E_ARG);
    CHECK_RC(spx_hessian_add(&ctx, h, NULL, 3), SPX_E_ARG);
    CHECK_RC(spx_hessian_add(&ctx, h, X, SIZE_MAX / 2), SPX_E_OVERFLOW);
    /* an empty sequence still counts: the running mean halves */
    CHECK_RC(spx_hessian_add(&ctx, h, NULL, 0), 0);
    CHECK(spx_hessian_count(h) == 2);
    CHECK_NEAR(spx_hessian_matrix(h)[0], 0.5 * before[0], 1e-6 * before[0]);
    spx_hessian_reset(h);
    CHECK(spx_hessian_count(h) == 0 && spx_hessian_matrix(h)[5] == 0.0f && spx_hessian_colsq(h)[1] == 0.0);
    spx_hessian_free(h);
    spx_hessian_free(NULL);
}

int spx_test_main(void)
{
    size_t a[] = {7, 13, 0, 20, 31};
    check_case(37, a, 5, 1);
    size_t b[] = {1};
    check_case(1, b, 1, 2);
    /* large enough for OpenBLAS's threaded, blocked ssyrk path */
    size_t c[] = {700, 300, 512, 1000};
    check_case(300, c, 4, 3);
    check_errors();
    return 0;
}
