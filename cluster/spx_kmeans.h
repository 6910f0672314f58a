/* spx_kmeans.h: Euclidean k-means (k-means++ init, Lloyd iterations, restarts) for Sparse
 * Expansion input clustering, and the exact nearest-centroid rule the runtime router uses.
 *
 * A driver calls, per MLP layer, on the calibration activations X [n x d] fp32 row-major
 * (usually the PCA projection of the layer input, see spx_pca.h):
 *     spx_kmeans_opts o = SPX_KMEANS_OPTS_INIT;  o.k = 16;  o.n_init = 100;
 *     spx_kmeans_result *km;  rc = spx_kmeans_fit(Y, n, dp, &o, &km, ctx);
 *     ... km->centroids [k x dp], km->labels [n] pick each token's expert ...
 * and at inference spx_kmeans_assign(km->centroids, k, dp, y, 1, &label).
 *
 * Assignment rule (pinned: the fit's final labels and the router use it):
 *     label(x) = argmin_j dist2(x, c_j), ties -> lowest j,
 *     dist2(x, c) = sum_{t=0..d-1} ((double)x_t - (double)c_t)^2 summed in double in order t.
 * It is computed fast with sgemm (||x||^2 - 2 x.c + ||c||^2) plus a rigorous round-off bound;
 * only rows whose best candidates are closer than that bound are re-checked in double with the
 * formula above, so the result equals the naive double loop exactly (ties included). The bound
 * grows with ||x|| ||c||: cluster centered data (PCA output) or rows far from the origin are
 * mostly decided by the slower double re-check (still exact).
 *
 * Lloyd iteration (as scikit-learn's "lloyd"): assign with the current centers, recompute
 * each center as the mean of its points (double accumulation), stop when the labels did not
 * change (strict convergence) or when the total squared center shift
 * sum_j ||c_j_new - c_j_old||^2 <= tol * mean_t var(X[:, t]) (sklearn's tol scaled by the mean
 * per-feature variance of the fitting data), or after max_iter iterations. After the loop the
 * labels are recomputed with spx_kmeans_assign on the final centroids (so they always agree).
 *
 * Empty clusters (as sklearn): when an update leaves cluster j empty, its center is re-seeded
 * at the point farthest (double distance) from its own center, taken from a cluster with at
 * least two points (ties -> lowest point index); the point moves to j. Counted in `reseeds`.
 *
 * Determinism: same X, options and seed -> byte-identical result (own PRNG: splitmix64 seeding
 * xoshiro256**; restart r uses the stream seeded by (seed, r); ties broken by index). OpenBLAS
 * must run the same kernel (same CPU type) for bit equality across machines.
 */
#ifndef SPX_KMEANS_H
#define SPX_KMEANS_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

typedef struct spx_kmeans_opts {
    uint32_t k;                 /* clusters (>= 1, <= number of fitting points) */
    uint32_t n_init;            /* restarts, the lowest inertia wins (ties -> first); default 10 */
    uint32_t max_iter;          /* Lloyd iterations per restart; default 300 */
    double tol;                 /* relative center-shift tolerance (see above); default 1e-4; 0 = strict */
    uint64_t seed;              /* PRNG seed; default 0 */
    size_t max_fit_points;      /* 0 = fit on all n points; else fit on a deterministic random subset
                                 * of this many points, then assign all n */
    const float *init_centers;  /* optional [k x d]: skip k-means++ and start every restart from these
                                 * (n_init is then treated as 1) */
} spx_kmeans_opts;

#define SPX_KMEANS_OPTS_INIT {16u, 10u, 300u, 1e-4, 0u, 0u, NULL}

typedef struct spx_kmeans_result {
    uint32_t k, d;
    size_t n;                   /* points assigned (all input rows) */
    size_t n_fit;               /* points the centroids were fitted on (<= n) */
    float *centroids;           /* [k x d] */
    float *init_centers;        /* [k x d] starting centers of the winning restart */
    uint32_t *labels;           /* [n] == spx_kmeans_assign(centroids, X) */
    uint64_t *sizes;            /* [k] points per cluster in `labels` (0 possible: see n_empty) */
    double inertia;             /* sum over all n points of dist2(x, c_label), double */
    double fit_inertia;         /* same over the fitting points (the restart criterion) */
    uint32_t n_iter;            /* Lloyd iterations of the winning restart */
    uint32_t best_init;         /* index of the winning restart */
    uint64_t reseeds;           /* empty-cluster re-seeds in the winning restart */
    uint64_t reseeds_total;     /* over all restarts */
    uint32_t n_empty;           /* clusters with size 0 in the final labels */
    uint64_t min_size;          /* smallest cluster size (tiny clusters hurt per-cluster pruning) */
    int converged;              /* 1 when the winning restart stopped before max_iter */
} spx_kmeans_result;

/* Fit k-means on X [n x d]. Errors: SPX_E_ARG (NULL pointers, k == 0, d == 0, n < k, number of
 * fitting points < k, n > UINT32_MAX), SPX_E_NUMERIC (NaN/Inf in X or init_centers: the message
 * names the row and column), SPX_E_NOMEM, SPX_E_OVERFLOW. *out belongs to the caller. */
int spx_kmeans_fit(const float *X, size_t n, uint32_t d, const spx_kmeans_opts *opts,
                   spx_kmeans_result **out, spx_ctx *ctx);
void spx_kmeans_free(spx_kmeans_result *r);

/* Nearest centroid for each row of X [n x d] (rule above) -> labels [n].
 * Returns 0, SPX_E_ARG (NULL pointer with n > 0, k or d zero), SPX_E_NUMERIC (a non-finite value in
 * X or the centroids; labels are then unspecified), SPX_E_NOMEM or SPX_E_OVERFLOW. */
int spx_kmeans_assign(const float *centroids, uint32_t k, uint32_t d, const float *X, size_t n,
                      uint32_t *labels);

/* Greedy k-means++ (as sklearn: 2 + floor(ln k) candidates per step, the one that lowers the
 * potential most wins) on X [n x d] with the given seed -> centers [k x d]. When every point is
 * already at distance 0 of a chosen center, candidates are drawn uniformly. This is the
 * initialisation spx_kmeans_fit uses for restart r with seed spx_kmeans_restart_seed(seed, r). */
int spx_kmeans_init_pp(const float *X, size_t n, uint32_t d, uint32_t k, uint64_t seed,
                       float *centers, spx_ctx *ctx);
uint64_t spx_kmeans_restart_seed(uint64_t seed, uint32_t restart);

/* dist2 of the rule above (double, summed in index order). */
double spx_kmeans_dist2(const float *x, const float *c, uint32_t d);

#endif
