/* spx_kmeans_init.c: restart seeds, the exact nearest-centroid rule and k-means++ initialisation. */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_kmeans.h"
#include "spx_kmeans_core.h"

/* ---- seeds ----------------------------------------------------------------------------------- */

uint64_t spx_kmeans_restart_seed(uint64_t seed, uint32_t restart)
{
    uint64_t st = seed ^ (0xD1B54A32D192ED03ull * ((uint64_t)restart + 1u));
    return spx_rng_splitmix64(&st);
}

/* ---- distances ------------------------------------------------------------------------------- */

double spx_kmeans_dist2(const float *x, const float *c, uint32_t d)
{
    double s = 0.0;
    for (uint32_t t = 0; t < d; t++) {
        double v = (double)x[t] - (double)c[t];
        s += v * v;
    }
    return s;
}

static double row_norm2(const float *x, uint32_t d)
{
    double s = 0.0;
    for (uint32_t t = 0; t < d; t++)
        s += (double)x[t] * (double)x[t];
    return s;
}

size_t spx_km_row_norms(const float *X, size_t n, uint32_t d, double *out)
{
    for (size_t i = 0; i < n; i++) {
        /* a float squared cannot overflow a double, so the sum is finite iff the row is */
        out[i] = row_norm2(X + i * d, d);
        if (!isfinite(out[i]))
            return i;
    }
    return n;
}

int spx_km_assign_core(const float *C, const double *cn, uint32_t k, uint32_t d, const float *X,
                       const double *xn, size_t n, uint32_t *labels, float *G, double *fe,
                       size_t *bad_row)
{
    /* Round-off bound of f_j = ||c_j||^2 - 2 g_j (dist2 minus the row constant ||x||^2), where
     * g_j is sgemm's fp32 x.c_j: |g_j - x.c_j| <= gam_d * sum|x_t c_t| <= gam_d ||x|| ||c_j|| for
     * ANY summation order, with or without FMA; gam_d = d u / (1 - d u), u = 2^-24 (Higham,
     * Accuracy and Stability, 3.1). The double parts (||c||^2, the combination, and the reference
     * dist2 itself) add at most (d + 4) 2^-53 (||x|| + ||c||)^2 <= 2 (d + 4) 2^-53 (||x||^2 + ||c||^2);
     * we take twice that. With E = the bound for the largest centroid norm (valid for every j),
     * the centroids with f_j <= min f + 2E are candidates: a single candidate is certainly the
     * argmin of the exact rule; several are resolved with the exact double dist2 (ties -> lowest). */
    const double u = 1.0 / 16777216.0;
    const double du = (double)(d + 2u) * u;
    const double gam = du / (1.0 - du);
    const double gam2 = 4.0 * (double)(d + 4u) / 9007199254740992.0;
    double *f = fe, cmax = 0.0;
    for (uint32_t j = 0; j < k; j++)
        if (cn[j] > cmax)
            cmax = cn[j];
    const double scmax = sqrt(cmax);
    for (size_t r0 = 0; r0 < n; r0 += SPX_KM_CHUNK) {
        size_t m = n - r0 < SPX_KM_CHUNK ? n - r0 : SPX_KM_CHUNK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)k, (int)d, 1.0f, X + r0 * d,
                    (int)d, C, (int)d, 0.0f, G, (int)k);
        for (size_t i = 0; i < m; i++) {
            size_t row = r0 + i;
            const float *x = X + row * d;
            double xv = xn ? xn[row] : row_norm2(x, d);
            if (!isfinite(xv)) {
                if (bad_row)
                    *bad_row = row;
                return SPX_E_NUMERIC;
            }
            const float *g = G + i * k;
            /* independent lanes and branch-free counting: this loop runs n k times per iteration */
            for (uint32_t j = 0; j < k; j++)
                f[j] = cn[j] - 2.0 * (double)g[j];
            double m0 = INFINITY, m1 = INFINITY;
            uint32_t j2 = 0;
            for (; j2 + 1 < k; j2 += 2) {
                m0 = f[j2] < m0 ? f[j2] : m0;
                m1 = f[j2 + 1] < m1 ? f[j2 + 1] : m1;
            }
            if (j2 < k)
                m0 = f[j2] < m0 ? f[j2] : m0;
            double thr = (m0 < m1 ? m0 : m1) + 2.0 * (2.0 * gam * sqrt(xv) * scmax + gam2 * (xv + cmax));
            uint32_t first = 0, ncand = 0;
            for (uint32_t j = 0; j < k; j++)
                ncand += (uint32_t)(f[j] <= thr);
            if (ncand == 0) { /* fp32 overflow in sgemm (|values| ~ 1e19): decide all in double */
                thr = INFINITY;
                ncand = k;
            }
            while (f[first] > thr)
                first++;
            if (ncand > 1) {
                double best = INFINITY;
                uint32_t lab = first;
                for (uint32_t j = first; j < k; j++) {
                    if (f[j] > thr)
                        continue;
                    double dd = spx_kmeans_dist2(x, C + (size_t)j * d, d);
                    if (dd < best) { /* strict: ties keep the lowest index */
                        best = dd;
                        lab = j;
                    }
                }
                first = lab;
            }
            labels[row] = first;
        }
    }
    return 0;
}

int spx_kmeans_assign(const float *centroids, uint32_t k, uint32_t d, const float *X, size_t n,
                      uint32_t *labels)
{
    int rc = 0;
    float *G = NULL;
    double *cn = NULL, *fe = NULL;
    size_t gsz;
    if (n == 0)
        return 0;
    if (!centroids || !X || !labels || k == 0 || d == 0 || k > INT_MAX || d > INT_MAX)
        return SPX_E_ARG;
    /* sgemm block rows: fewer for small n (the router assigns one token at a time) */
    if (spx_ckd_mul_size(n < SPX_KM_CHUNK ? n : SPX_KM_CHUNK, k, &gsz) != 0 ||
        spx_ckd_mul_size(gsz, sizeof(float), &gsz) != 0)
        return SPX_E_OVERFLOW;
    G = malloc(gsz);
    cn = malloc((size_t)k * sizeof(double));
    fe = malloc(2u * (size_t)k * sizeof(double));
    if (!G || !cn || !fe) {
        rc = SPX_E_NOMEM;
        goto done;
    }
    if (spx_km_row_norms(centroids, k, d, cn) != k) {
        rc = SPX_E_NUMERIC;
        goto done;
    }
    rc = spx_km_assign_core(centroids, cn, k, d, X, NULL, n, labels, G, fe, NULL);
done:
    free(G);
    free(cn);
    free(fe);
    return rc;
}

/* ---- k-means++ --------------------------------------------------------------------------------- */

/* Squared distances (fp32 sgemm expansion, clamped at 0, summed in double) of every row to each
 * of the T candidate rows cand [T x d]: pot[t] = sum_i min(closest_i, D_it). With `update` (and
 * T == 1) also closest_i = min(closest_i, D_i0). These
 * distances only drive sampling, so the fp32 round-off of the expansion is harmless. */
static void pp_scan(const float *X, const double *xn, size_t n, uint32_t d, const float *cand,
                    const double *candn, uint32_t T, float *G, double *closest, double *pot,
                    int update)
{
    for (uint32_t t = 0; t < T; t++)
        pot[t] = 0.0;
    for (size_t r0 = 0; r0 < n; r0 += SPX_KM_CHUNK) {
        size_t m = n - r0 < SPX_KM_CHUNK ? n - r0 : SPX_KM_CHUNK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)T, (int)d, 1.0f, X + r0 * d,
                    (int)d, cand, (int)d, 0.0f, G, (int)T);
        for (size_t i = 0; i < m; i++) {
            size_t row = r0 + i;
            for (uint32_t t = 0; t < T; t++) {
                double v = xn[row] - 2.0 * (double)G[i * T + t] + candn[t];
                if (v < 0.0)
                    v = 0.0;
                if (v > closest[row])
                    v = closest[row];
                if (update)
                    closest[row] = v;
                pot[t] += v;
            }
        }
    }
}

/* Index drawn with probability closest_i / pot (first i whose running sum exceeds r*pot, so
 * zero-weight points are never drawn); uniform when pot == 0. */
static size_t pp_sample(spx_rng *rng, const double *closest, size_t n, double pot)
{
    if (!(pot > 0.0))
        return (size_t)spx_rng_below(rng, n);
    double r = spx_rng_uniform(rng) * pot, acc = 0.0;
    size_t last_pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (closest[i] > 0.0) {
            acc += closest[i];
            last_pos = i;
            if (acc > r)
                return i;
        }
    }
    return last_pos; /* r rounded up to the total */
}

int spx_km_init_pp(const float *X, const double *xn, size_t n, uint32_t d, uint32_t k, uint64_t seed,
                   float *centers)
{
    int rc = 0;
    uint32_t T = 2u + (uint32_t)floor(log((double)k));
    spx_rng rng;
    double *closest = malloc(n * sizeof(double));
    float *cand = malloc((size_t)T * d * sizeof(float));
    float *G = malloc((size_t)SPX_KM_CHUNK * T * sizeof(float));
    double *candn = malloc((size_t)T * sizeof(double));
    double *pot = malloc((size_t)T * sizeof(double));
    if (!closest || !cand || !G || !candn || !pot) {
        rc = SPX_E_NOMEM;
        goto done;
    }
    spx_rng_seed(&rng, seed);
    size_t first = (size_t)spx_rng_below(&rng, n);
    memcpy(centers, X + first * d, (size_t)d * sizeof(float));
    for (size_t i = 0; i < n; i++)
        closest[i] = INFINITY;
    double pot0;
    candn[0] = xn[first];
    pp_scan(X, xn, n, d, centers, candn, 1, G, closest, &pot0, 1);
    for (uint32_t c = 1; c < k; c++) {
        for (uint32_t t = 0; t < T; t++) {
            size_t idx = pp_sample(&rng, closest, n, pot0);
            memcpy(cand + (size_t)t * d, X + idx * d, (size_t)d * sizeof(float));
            candn[t] = xn[idx];
        }
        pp_scan(X, xn, n, d, cand, candn, T, G, closest, pot, 0);
        uint32_t best = 0;
        for (uint32_t t = 1; t < T; t++)
            if (pot[t] < pot[best])
                best = t;
        memcpy(centers + (size_t)c * d, cand + (size_t)best * d, (size_t)d * sizeof(float));
        pp_scan(X, xn, n, d, cand + (size_t)best * d, candn + best, 1, G, closest, &pot0, 1);
    }
done:
    free(closest);
    free(cand);
    free(G);
    free(candn);
    free(pot);
    return rc;
}

int spx_kmeans_init_pp(const float *X, size_t n, uint32_t d, uint32_t k, uint64_t seed,
                       float *centers, spx_ctx *ctx)
{
    int rc = 0;
    double *xn = NULL;
    size_t bad;
    if (!X || !centers || k == 0 || d == 0 || n < k || k > INT_MAX || d > INT_MAX)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "k-means++: invalid arguments (n=%zu, d=%u, k=%u)", n, d, k);
    xn = malloc(n * sizeof(double));
    if (!xn)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "k-means++: out of memory for %zu row norms", n);
    bad = spx_km_row_norms(X, n, d, xn);
    if (bad != n)
        SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "k-means++: row %zu of the input has a NaN or Inf", bad);
    rc = spx_km_init_pp(X, xn, n, d, k, seed, centers);
    if (rc < 0)
        SPX_FAIL(ctx, rc, rc, "k-means++: out of memory (n=%zu, d=%u, k=%u)", n, d, k);
done:
    free(xn);
    return rc;
}
