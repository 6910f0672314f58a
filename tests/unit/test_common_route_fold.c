/* test_common_route_fold.c: the projection-free route (spx_route_fold.h) gives exactly the labels
 * of spx_router_assign: on random routers and inputs, on PCA-like routers (orthonormal rows) with
 * inputs on the bisector of two centroids (exact and near ties, which must fall back), and on
 * NaN/Inf inputs. Also: fallbacks stay rare on ordinary inputs, and when folding is refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_rng.h"
#include "spx_route.h"
#include "spx_route_fold.h"
#include "spx_test.h"

typedef struct router_buf {
    float *mean, *proj, *cen;
    spx_router r;
} router_buf;

/* proj rows orthonormal (Gram-Schmidt in double, rounded to fp32) when ortho, else uniform */
static void router_make(router_buf *b, uint32_t in, uint32_t p, uint32_t k, int ortho, spx_rng *rng)
{
    b->mean = malloc(in * sizeof(float));
    b->proj = malloc((size_t)p * in * sizeof(float));
    b->cen = malloc((size_t)k * p * sizeof(float));
    double *q = malloc((size_t)p * in * sizeof(double));
    for (uint32_t i = 0; i < in; i++)
        b->mean[i] = (float)spx_rng_normal(rng);
    for (uint32_t j = 0; j < p; j++) {
        double *v = q + (size_t)j * in, nrm = 0;
        for (uint32_t i = 0; i < in; i++)
            v[i] = ortho ? spx_rng_normal(rng) : spx_rng_uniform(rng) - 0.5;
        for (uint32_t jj = 0; ortho && jj < j; jj++) {
            const double *w = q + (size_t)jj * in;
            double d = 0;
            for (uint32_t i = 0; i < in; i++)
                d += v[i] * w[i];
            for (uint32_t i = 0; i < in; i++)
                v[i] -= d * w[i];
        }
        for (uint32_t i = 0; ortho && i < in; i++)
            nrm += v[i] * v[i];
        for (uint32_t i = 0; i < in; i++) {
            if (ortho)
                v[i] /= sqrt(nrm);
            b->proj[(size_t)j * in + i] = (float)v[i];
        }
    }
    for (size_t i = 0; i < (size_t)k * p; i++)
        b->cen[i] = (float)(2.0 * spx_rng_normal(rng));
    free(q);
    b->r = (spx_router){in, p, k, b->mean, b->proj, b->cen};
}

static void router_drop(router_buf *b)
{
    free(b->mean);
    free(b->proj);
    free(b->cen);
}

/* labels of n tokens both ways; returns the fallbacks */
static size_t compare(const router_buf *b, const spx_router_fold *f, const float *X, size_t n, const char *what)
{
    float *Y = malloc(n * b->r.pca_dim * sizeof(float));
    uint32_t *want = malloc(n * sizeof(uint32_t)), *got = malloc(n * sizeof(uint32_t));
    size_t bad = 0, fb;
    spx_router_assign(&b->r, X, n, Y, want);
    memset(got, 0xff, n * sizeof(uint32_t));
    fb = spx_router_fold_assign(&b->r, f, X, n, Y, got);
    for (size_t t = 0; t < n; t++)
        bad += want[t] != got[t];
    CHECK_MSG(bad == 0, "%s: %zu of %zu labels differ", what, bad, n);
    free(Y);
    free(want);
    free(got);
    return fb;
}

static void check_random(uint32_t in, uint32_t p, uint32_t k, int ortho, uint64_t seed)
{
    spx_rng rng;
    router_buf b;
    spx_router_fold *f = NULL;
    const size_t n = 2000;
    float *X = malloc(n * in * sizeof(float));
    char what[96];
    spx_rng_seed(&rng, seed);
    router_make(&b, in, p, k, ortho, &rng);
    CHECK(spx_router_fold_new(&b.r, &f) == 0 && f);
    /* x = mean + P^T g + noise: projections spread over the centroids' scale */
    for (size_t t = 0; t < n; t++) {
        float *x = X + t * in;
        for (uint32_t i = 0; i < in; i++)
            x[i] = b.mean[i] + (float)(0.3 * spx_rng_normal(&rng));
        for (uint32_t j = 0; j < p; j++) {
            double g = 2.0 * spx_rng_normal(&rng) / (ortho ? 1.0 : 0.3 * sqrt((double)in));
            for (uint32_t i = 0; i < in; i++)
                x[i] += (float)(g * b.proj[(size_t)j * in + i]);
        }
    }
    snprintf(what, sizeof what, "random %ux%u k %u%s", p, in, k, ortho ? " orthonormal" : "");
    size_t fb = f ? compare(&b, f, X, n, what) : 0;
    fprintf(stderr, "%s: %zu of %zu tokens fell back\n", what, fb, n);
    CHECK_MSG(fb * 100 <= n, "%s: %zu fallbacks (> 1%%)", what, fb);

    /* ties: y on the bisector of centroids 0 and 1 (x = mean + P^T (C0 + C1) / 2 + e * (C1 - C0)
     * directions), from an exact tie outwards; all labels still agree, the ties fall back */
    if (ortho && f) {
        const size_t m = 64;
        float *T = malloc(m * in * sizeof(float));
        for (size_t t = 0; t < m; t++) {
            double eps = t == 0 ? 0.0 : ldexp(1.0, -40 + (int)(t % 40)) * (t % 2 ? 1 : -1);
            for (uint32_t i = 0; i < in; i++) {
                double s = b.mean[i];
                for (uint32_t j = 0; j < p; j++) {
                    double c0 = b.cen[j], c1 = b.cen[(size_t)p + j];
                    s += (0.5 * (c0 + c1) + eps * (c1 - c0)) * (double)b.proj[(size_t)j * in + i];
                }
                T[t * in + i] = (float)s;
            }
        }
        size_t fbt = compare(&b, f, T, m, "bisector");
        fprintf(stderr, "  bisector tokens: %zu of %zu fell back\n", fbt, m);
        CHECK_MSG(fbt >= 16, "bisector: only %zu near ties fell back", fbt);   /* |eps| <= 2^-24 at least */
        free(T);
    }
    /* non-finite inputs fall back and agree */
    if (f) {
        float *Z = malloc(3 * in * sizeof(float));
        memcpy(Z, X, 3 * in * sizeof(float));
        Z[in / 2] = NAN;
        Z[in + 1] = INFINITY;
        Z[2 * in] = -INFINITY;
        CHECK(compare(&b, f, Z, 3, "non-finite") == 3);
        free(Z);
    }
    spx_router_fold_free(f);
    router_drop(&b);
    free(X);
}

int spx_test_main(void)
{
    check_random(768, 64, 8, 1, 11);
    check_random(2048, 64, 8, 1, 12);
    check_random(333, 40, 20, 1, 13);    /* in_dim not a multiple of 8; centroid groups of 8, 8 and 4 */
    check_random(100, 16, 2, 0, 14);     /* arbitrary (not orthonormal) projection */
    {
        spx_rng rng;
        router_buf b;
        spx_router_fold *f = (spx_router_fold *)&rng;
        spx_rng_seed(&rng, 16);
        router_make(&b, 64, 16, 9, 1, &rng);   /* 2k > pca_dim */
        CHECK(!spx_router_fold_worth(&b.r));
        CHECK(spx_router_fold_new(&b.r, &f) == -1 && f == NULL);
        b.r.k = 1;                                /* one expert: nothing to decide */
        CHECK(!spx_router_fold_worth(&b.r));
        b.r.k = 8;                                /* u beyond what fp32 holds: refused */
        CHECK(spx_router_fold_worth(&b.r));
        for (size_t i = 0; i < 8 * 16; i++)
            b.cen[i] = 3e37f;
        CHECK(spx_router_fold_new(&b.r, &f) == -1 && f == NULL);
        b.r.pca_dim = 0;                          /* routing without PCA */
        CHECK(!spx_router_fold_worth(&b.r));
        CHECK(!spx_router_fold_worth(NULL));
        router_drop(&b);
        spx_router_fold_free(NULL);
    }
    return 0;
}
