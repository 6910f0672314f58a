/* test_common_route.c: nearest-centroid routing (common/spx_route.h).
 *
 * spx_router_project / spx_router_nearest are vectorised with a fixed 8-lane double summation so
 * that the expansion stage and the runtime (and the generic and AVX-512 builds) agree bit for bit.
 * Checked on random routers (in_dim with a tail, pca_dim not a multiple of the 4-row block):
 *   - the projection equals, bit for bit, a scalar loop written with the same lane order;
 *   - it agrees with a plain double dot product to 1e-12 relative to sum |p (x - mean)| (double
 *     rounding over <= 300 terms: ~300 * 1.1e-16 = 3e-14, before the final fp32 rounding, which
 *     is compared with a 1-ulp allowance);
 *   - labels equal a brute-force double argmin with the lowest index on ties (an exact tie is
 *     planted: a duplicated centroid), and assign == project + nearest. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_route.h"
#include "spx_test.h"

static uint64_t g_seed = 0x7a7a1234ull;

/* Scalar emulation of the lane order: lane l sums i % 8 == l in increasing i, then the fixed tree. */
static float lane_dot(const float *p, const float *x, const float *mean, uint32_t n)
{
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (uint32_t i = 0; i < n; i++)
        a[i % 8] += (double)p[i] * ((double)x[i] - (double)mean[i]);
    return (float)(((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])));
}

static void check_router(uint32_t in, uint32_t pca, uint32_t k, size_t n)
{
    const uint32_t rdim = pca ? pca : in;
    float *mean = malloc(in * sizeof *mean), *proj = malloc((size_t)(pca ? pca : 1) * in * sizeof *proj);
    float *cent = malloc((size_t)k * rdim * sizeof *cent), *X = malloc(n * in * sizeof *X);
    float *Y = malloc(n * rdim * sizeof *Y), *S = malloc(n * rdim * sizeof *S);
    uint32_t *lab = malloc(n * sizeof *lab), *lab2 = malloc(n * sizeof *lab2);
    int bad_bits = 0, bad_ref = 0, bad_lab = 0;
    for (uint32_t i = 0; i < in; i++)
        mean[i] = (float)(0.1 * spx_test_normal(&g_seed));
    for (size_t i = 0; i < (size_t)pca * in; i++)
        proj[i] = (float)spx_test_normal(&g_seed);
    for (size_t i = 0; i < n * in; i++)
        X[i] = (float)spx_test_normal(&g_seed);
    spx_router r = {in, pca, k, pca ? mean : NULL, pca ? proj : NULL, cent};
    spx_router_project(&r, X, n, Y);
    for (size_t t = 0; t < n && pca; t++) {
        for (uint32_t j = 0; j < pca; j++) {
            const float *p = proj + (size_t)j * in, *x = X + t * in;
            double ref = 0.0, mag = 0.0;
            for (uint32_t i = 0; i < in; i++) {
                double v = (double)p[i] * ((double)x[i] - (double)mean[i]);
                ref += v;
                mag += fabs(v);
            }
            float y = Y[t * pca + j];
            bad_bits += y != lane_dot(p, x, mean, in);
            bad_ref += fabs((double)y - ref) > 1e-12 * mag + fabs(ref) * 0x1p-23;
        }
    }
    if (!pca)
        bad_bits += memcmp(X, Y, n * in * sizeof *X) != 0;
    /* centroids: some tokens' projections, plus an exact duplicate of centroid 1 at index k-1 */
    for (uint32_t c = 0; c < k; c++)
        for (uint32_t i = 0; i < rdim; i++)
            cent[(size_t)c * rdim + i] = c == k - 1 && k > 2 ? cent[rdim + i]
                                                             : Y[(size_t)(c % n) * rdim + i] + (float)(0.3 * spx_test_normal(&g_seed));
    spx_router_nearest(&r, Y, n, lab);
    for (size_t t = 0; t < n; t++) {
        double best = INFINITY;
        uint32_t arg = 0;
        for (uint32_t c = 0; c < k; c++) {
            double d = 0.0;
            for (uint32_t i = 0; i < rdim; i++) {
                double diff = (double)Y[t * rdim + i] - (double)cent[(size_t)c * rdim + i];
                d += diff * diff;
            }
            if (d < best * (1 - 1e-12)) {   /* lowest index among (near-)ties */
                best = d;
                arg = c;
            }
        }
        bad_lab += lab[t] != arg;
        bad_lab += k > 2 && lab[t] == k - 1;   /* the duplicate never wins over centroid 1 */
    }
    spx_router_assign(&r, X, n, S, lab2);
    CHECK(memcmp(lab, lab2, n * sizeof *lab) == 0);
    CHECK_MSG(bad_bits == 0, "in %u pca %u: %d projections differ from the lane-order loop", in, pca, bad_bits);
    CHECK_MSG(bad_ref == 0, "in %u pca %u: %d projections off the double reference", in, pca, bad_ref);
    CHECK_MSG(bad_lab == 0, "in %u pca %u k %u: %d labels differ from the brute-force argmin", in, pca, k, bad_lab);
    free(mean), free(proj), free(cent), free(X), free(Y), free(S), free(lab), free(lab2);
}

int spx_test_main(void)
{
    check_router(300, 7, 8, 40);    /* tail of 4, a partial block of 3 rows */
    check_router(64, 24, 8, 33);
    check_router(2048, 64, 8, 5);
    check_router(13, 13, 3, 20);    /* pca == in_dim, only the tail */
    check_router(37, 0, 5, 20);     /* no PCA: route in the input space (37: a distance tail) */
    check_router(8, 1, 1, 3);       /* one expert */
    return 0;
}
