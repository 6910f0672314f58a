/* test_cluster_pca.c: streaming PCA against a naive double-precision two-pass covariance.
 * (The NumPy eigh comparison is tests/scripts/cluster_ref.sh.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_pca.h"
#include "spx_test.h"

/* X = offset + Z diag(sd) R, Z ~ N(0,1), R a random rotation-like mixing (Householder product):
 * covariance spectrum sd^2 with well-separated values. */
static void make_data(float *X, size_t n, uint32_t d, double offset, uint64_t seed)
{
    uint64_t s = seed;
    double *R = calloc((size_t)d * d, sizeof(double)), *v = malloc(d * sizeof(double));
    double *z = malloc(d * sizeof(double)), *mu = malloc(d * sizeof(double));
    for (uint32_t i = 0; i < d; i++)
        R[(size_t)i * d + i] = 1.0;
    for (int h = 0; h < 3; h++) { /* R <- R (I - 2 v v^T) */
        double nn = 0;
        for (uint32_t t = 0; t < d; t++) {
            v[t] = spx_test_normal(&s);
            nn += v[t] * v[t];
        }
        for (uint32_t t = 0; t < d; t++)
            v[t] /= sqrt(nn);
        for (uint32_t i = 0; i < d; i++) {
            double dot = 0;
            for (uint32_t t = 0; t < d; t++)
                dot += R[(size_t)i * d + t] * v[t];
            for (uint32_t t = 0; t < d; t++)
                R[(size_t)i * d + t] -= 2.0 * dot * v[t];
        }
    }
    for (uint32_t t = 0; t < d; t++)
        mu[t] = offset * (1.0 + spx_test_uniform(&s));
    for (size_t i = 0; i < n; i++) {
        for (uint32_t t = 0; t < d; t++)
            z[t] = spx_test_normal(&s) * (10.0 / (1.0 + 0.5 * t)); /* sd 10, 6.7, 5, 4, ... */
        for (uint32_t t = 0; t < d; t++) {
            double acc = mu[t];
            for (uint32_t u = 0; u < d; u++)
                acc += z[u] * R[(size_t)u * d + t];
            X[i * d + t] = (float)acc;
        }
    }
    free(R);
    free(v);
    free(z);
    free(mu);
}

/* naive two-pass sample covariance in double */
static void naive_cov(const float *X, size_t n, uint32_t d, double *mean, double *cov)
{
    memset(mean, 0, d * sizeof(double));
    memset(cov, 0, (size_t)d * d * sizeof(double));
    for (size_t i = 0; i < n; i++)
        for (uint32_t t = 0; t < d; t++)
            mean[t] += X[i * d + t];
    for (uint32_t t = 0; t < d; t++)
        mean[t] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (uint32_t a = 0; a < d; a++)
            for (uint32_t b = 0; b < d; b++)
                cov[(size_t)a * d + b] += ((double)X[i * d + a] - mean[a]) * ((double)X[i * d + b] - mean[b]);
    for (size_t i = 0; i < (size_t)d * d; i++)
        cov[i] /= (double)(n - 1);
}

static void test_against_naive(void)
{
    const size_t n = 5000;
    const uint32_t d = 24, k = 6;
    spx_ctx ctx = SPX_CTX_INIT;
    float *X = malloc(n * d * sizeof(float)), *Y = malloc(n * k * sizeof(float));
    double *mean = malloc(d * sizeof(double)), *cov = malloc((size_t)d * d * sizeof(double));
    make_data(X, n, d, 300.0, 11);
    naive_cov(X, n, d, mean, cov);
    spx_pca *p = NULL, *q = NULL, *full = NULL;
    spx_pca_acc *acc = NULL;
    CHECK_RC(spx_pca_fit(X, n, d, k, &p, &ctx), 0);
    /* streaming with uneven chunks, including a 1-row chunk */
    CHECK_RC(spx_pca_acc_new(d, &acc, &ctx), 0);
    size_t cuts[] = {0, 1, 1000, 1001, 3777, n};
    for (int c = 0; c + 1 < (int)(sizeof cuts / sizeof cuts[0]); c++)
        CHECK_RC(spx_pca_acc_add(acc, X + cuts[c] * d, cuts[c + 1] - cuts[c], &ctx), 0);
    CHECK(spx_pca_acc_rows(acc) == n);
    CHECK_RC(spx_pca_acc_finish(acc, k, &q, &ctx), 0);
    CHECK_RC(spx_pca_acc_finish(acc, d, &full, &ctx), 0);
    if (!p || !q || !full)
        goto out;
    double tr = 0;
    for (uint32_t t = 0; t < d; t++) {
        /* mean: fp32 output of a double mean -> half an fp32 ulp */
        CHECK_NEAR(p->mean[t], mean[t], 1e-7 * fabs(mean[t]));
        CHECK_NEAR(q->mean[t], mean[t], 1e-7 * fabs(mean[t]));
        tr += cov[(size_t)t * d + t];
    }
    /* total variance and the full spectrum's sum: double round-off only (offset 300 vs sd ~10
     * costs ~1e3 of cancellation in the naive formula, so 1e-10 relative) */
    CHECK_NEAR(p->total_var, tr, 1e-10 * tr);
    double sum_full = 0;
    for (uint32_t c = 0; c < d; c++)
        sum_full += full->explained_var[c];
    CHECK_NEAR(sum_full, tr, 1e-10 * tr);
    double lmax = p->explained_var[0];
    for (uint32_t c = 0; c < k; c++) {
        const float *v = p->P + (size_t)c * d;
        /* eigen-residual ||cov v - lambda v|| with the fp32 v: fp32 rounding of v gives ~1e-7 lmax */
        double res = 0, nv = 0, rq = 0;
        uint32_t big = 0;
        for (uint32_t a = 0; a < d; a++) {
            double cv = 0;
            for (uint32_t b = 0; b < d; b++)
                cv += cov[(size_t)a * d + b] * v[b];
            res += (cv - p->explained_var[c] * v[a]) * (cv - p->explained_var[c] * v[a]);
            nv += (double)v[a] * v[a];
            rq += cv * v[a];
            if (fabs(v[a]) > fabs(v[big]))
                big = a;
        }
        CHECK_NEAR(sqrt(res), 0.0, 1e-6 * lmax);
        CHECK_NEAR(nv, 1.0, 1e-6);
        CHECK_NEAR(rq, p->explained_var[c], 1e-6 * lmax);
        CHECK(v[big] > 0.0f); /* sign convention */
        if (c > 0)
            CHECK(p->explained_var[c] < p->explained_var[c - 1]);
        /* streaming == one-shot up to double round-off; the full fit has the same top k */
        CHECK_NEAR(q->explained_var[c], p->explained_var[c], 1e-11 * lmax);
        CHECK_NEAR(full->explained_var[c], p->explained_var[c], 1e-11 * lmax);
        for (uint32_t a = 0; a < d; a++) {
            CHECK_NEAR(q->P[(size_t)c * d + a], v[a], 1e-6);
            CHECK_NEAR(full->P[(size_t)c * d + a], v[a], 1e-6);
        }
        for (uint32_t e = 0; e < c; e++) { /* orthogonality of the fp32 rows */
            double dot = 0;
            for (uint32_t a = 0; a < d; a++)
                dot += (double)v[a] * p->P[(size_t)e * d + a];
            CHECK_NEAR(dot, 0.0, 1e-6);
        }
    }
    /* planted spectrum: sd_t = 10 / (1 + t/2); sample estimate within 10% at n = 5000 */
    for (uint32_t c = 0; c < k; c++) {
        double want = (10.0 / (1.0 + 0.5 * c)) * (10.0 / (1.0 + 0.5 * c));
        CHECK_MSG(fabs(p->explained_var[c] / want - 1.0) < 0.1, "component %u: %g vs planted %g", c,
                  p->explained_var[c], want);
    }
    /* projection vs a naive double loop with the same fp32 mean and P: the fp32 difference is exact
     * to 2^-24 and the fp32 dot product of d terms adds <= d 2^-24 |x - mean| |v| */
    CHECK_RC(spx_pca_project(p, X, n, Y, &ctx), 0);
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double nx = 0;
        for (uint32_t a = 0; a < d; a++)
            nx += ((double)X[i * d + a] - p->mean[a]) * ((double)X[i * d + a] - p->mean[a]);
        for (uint32_t c = 0; c < k; c++) {
            double y = 0;
            for (uint32_t a = 0; a < d; a++)
                y += ((double)X[i * d + a] - (double)p->mean[a]) * (double)p->P[(size_t)c * d + a];
            double err = fabs(Y[i * k + c] - y) / (sqrt(nx) + 1e-30);
            if (err > worst)
                worst = err;
        }
    }
    CHECK_MSG(worst < 4.0 * d / 16777216.0, "projection relative error %g", worst);
out:
    spx_pca_free(p);
    spx_pca_free(q);
    spx_pca_free(full);
    spx_pca_acc_free(acc);
    free(X);
    free(Y);
    free(mean);
    free(cov);
}

static void test_errors(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    float X[40 * 4];
    uint64_t s = 1;
    for (int i = 0; i < 160; i++)
        X[i] = (float)spx_test_normal(&s);
    spx_pca *p = NULL;
    spx_pca_acc *acc = NULL;
    CHECK_RC(spx_pca_fit(X, 40, 4, 5, &p, &ctx), SPX_E_ARG);
    CHECK_RC(spx_pca_fit(X, 40, 4, 0, &p, &ctx), SPX_E_ARG);
    CHECK_RC(spx_pca_fit(X, 1, 4, 2, &p, &ctx), SPX_E_ARG);
    CHECK_RC(spx_pca_fit(X, 40, 0, 1, &p, &ctx), SPX_E_ARG);
    CHECK(p == NULL);
    /* NaN in the second chunk: the message names the global row; the accumulator is unchanged */
    CHECK_RC(spx_pca_acc_new(4, &acc, &ctx), 0);
    CHECK_RC(spx_pca_acc_add(acc, X, 10, &ctx), 0);
    X[13 * 4 + 2] = NAN;
    CHECK_RC(spx_pca_acc_add(acc, X + 10 * 4, 30, &ctx), SPX_E_NUMERIC);
    CHECK_MSG(strstr(ctx.msg, "row 13 column 2") != NULL, "message: %s", ctx.msg);
    CHECK(spx_pca_acc_rows(acc) == 10);
    CHECK_RC(spx_pca_acc_finish(acc, 2, &p, &ctx), 0);
    spx_pca_free(p);
    spx_pca_acc_free(acc);
    spx_pca_free(NULL);
    spx_pca_acc_free(NULL);
}

int spx_test_main(void)
{
    test_against_naive();
    test_errors();
    return 0;
}
