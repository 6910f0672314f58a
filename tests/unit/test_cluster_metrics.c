/* test_cluster_metrics.c: ARI and purity on hand-computed cases and against a dense
 * contingency-table implementation on random labelings (the NumPy/Python comparison is in
 * tests/scripts/cluster_ref.sh). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_cluster_metrics.h"
#include "spx_test.h"

/* straightforward dense reference (labels < L) */
static double ref_ari(const uint32_t *a, const uint32_t *b, size_t n, uint32_t L)
{
    double *tab = calloc((size_t)L * L, sizeof(double)), *ra = calloc(L, sizeof(double)),
           *cb = calloc(L, sizeof(double));
    for (size_t i = 0; i < n; i++) {
        tab[(size_t)a[i] * L + b[i]] += 1;
        ra[a[i]] += 1;
        cb[b[i]] += 1;
    }
    double sij = 0, sa = 0, sb = 0;
    for (size_t i = 0; i < (size_t)L * L; i++)
        sij += tab[i] * (tab[i] - 1) / 2;
    for (uint32_t i = 0; i < L; i++) {
        sa += ra[i] * (ra[i] - 1) / 2;
        sb += cb[i] * (cb[i] - 1) / 2;
    }
    double e = sa * sb / ((double)n * (double)(n - 1) / 2);
    free(tab);
    free(ra);
    free(cb);
    return (sij - e) / ((sa + sb) / 2 - e);
}

static double ref_purity(const uint32_t *p, const uint32_t *t, size_t n, uint32_t L)
{
    double *tab = calloc((size_t)L * L, sizeof(double)), tot = 0;
    for (size_t i = 0; i < n; i++)
        tab[(size_t)p[i] * L + t[i]] += 1;
    for (uint32_t i = 0; i < L; i++) {
        double m = 0;
        for (uint32_t j = 0; j < L; j++)
            if (tab[(size_t)i * L + j] > m)
                m = tab[(size_t)i * L + j];
        tot += m;
    }
    free(tab);
    return tot / (double)n;
}

int spx_test_main(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    double v = 0;
    /* scikit-learn's documented values */
    uint32_t a[] = {0, 0, 1, 1}, b1[] = {1, 1, 0, 0}, b2[] = {0, 0, 1, 2}, b3[] = {0, 1, 0, 1},
             b4[] = {0, 1, 2, 3}, z[] = {7, 7, 7, 7};
    CHECK_RC(spx_cluster_ari(a, b1, 4, &v, &ctx), 0);
    CHECK_NEAR(v, 1.0, 1e-15);
    CHECK_RC(spx_cluster_ari(a, b2, 4, &v, &ctx), 0);
    CHECK_NEAR(v, 0.5714285714285714, 1e-15);
    CHECK_RC(spx_cluster_ari(b2, a, 4, &v, &ctx), 0);
    CHECK_NEAR(v, 0.5714285714285714, 1e-15);
    CHECK_RC(spx_cluster_ari(a, b3, 4, &v, &ctx), 0);
    CHECK_NEAR(v, -0.5, 1e-15);
    CHECK_RC(spx_cluster_ari(z, b4, 4, &v, &ctx), 0);
    CHECK_NEAR(v, 0.0, 1e-15);
    CHECK_RC(spx_cluster_ari(z, z, 4, &v, &ctx), 0); /* degenerate: both one cluster */
    CHECK_NEAR(v, 1.0, 0);
    CHECK_RC(spx_cluster_ari(b4, b4, 4, &v, &ctx), 0); /* degenerate: both all singletons */
    CHECK_NEAR(v, 1.0, 0);
    /* purity */
    CHECK_RC(spx_cluster_purity(b2, a, 4, &v, &ctx), 0);
    CHECK_NEAR(v, 1.0, 0);
    CHECK_RC(spx_cluster_purity(a, b2, 4, &v, &ctx), 0);
    CHECK_NEAR(v, 0.75, 0);
    CHECK_RC(spx_cluster_purity(z, b3, 4, &v, &ctx), 0);
    CHECK_NEAR(v, 0.5, 0);
    /* sparse labels: huge values behave like small ones */
    uint32_t big[] = {0xFFFFFFFFu, 0xFFFFFFFFu, 5u, 5u};
    CHECK_RC(spx_cluster_ari(big, b2, 4, &v, &ctx), 0);
    CHECK_NEAR(v, 0.5714285714285714, 1e-15);
    /* random labelings vs the dense reference: relative 1e-12 (sums of integers, then one
     * division: only the final rounding differs) */
    uint64_t s = 17;
    const size_t n = 3000;
    uint32_t *p = malloc(n * sizeof(uint32_t)), *t = malloc(n * sizeof(uint32_t));
    for (int rep = 0; rep < 5; rep++) {
        uint32_t L = 2u + (uint32_t)rep * 3u;
        for (size_t i = 0; i < n; i++) {
            t[i] = (uint32_t)(spx_test_rand(&s) % L);
            p[i] = spx_test_uniform(&s) < 0.3 * rep ? (uint32_t)(spx_test_rand(&s) % L) : (t[i] + 1) % L;
        }
        double want = ref_ari(p, t, n, L);
        CHECK_RC(spx_cluster_ari(p, t, n, &v, &ctx), 0);
        CHECK_NEAR(v, want, 1e-12 * fabs(want) + 1e-15);
        want = ref_purity(p, t, n, L);
        CHECK_RC(spx_cluster_purity(p, t, n, &v, &ctx), 0);
        CHECK_NEAR(v, want, 1e-15);
    }
    free(p);
    free(t);
    CHECK_RC(spx_cluster_ari(a, b1, 0, &v, &ctx), SPX_E_ARG);
    CHECK_RC(spx_cluster_purity(NULL, b1, 4, &v, &ctx), SPX_E_ARG);
    return 0;
}
