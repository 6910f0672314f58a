/* spx_balanced.h: balanced (equal-size) k-means, for MoEfication-style expert splits of FFN
 * neurons (ParamSplit: rows of W_in, one per neuron, L2-normalized, clustered into k groups of
 * exactly n/k neurons).
 *
 * Algorithm (deterministic; a faster alternative to the min-cost-flow KMeansConstrained used by
 * MoEfication and to the auction solver of its faster variant):
 *   1. Optionally L2-normalize every row (zero rows stay zero); k-means++ centers (spx_kmeans.h).
 *   2. Balanced assignment for the current centers, with D_ij = ||c_j||^2 - 2 x_i.c_j (sgemm; the
 *      ||x_i||^2 term is the same for every assignment of point i):
 *      - first iteration: greedy by regret: points sorted by (second-best - best distance),
 *        largest first (ties -> lower index), each takes its nearest cluster that is not full;
 *      - then pairwise exchange: for every cluster pair (a, b), members of a sorted by the gain
 *        D_ia - D_ib of moving to b and members of b by D_jb - D_ja, swapped in order while the
 *        summed gain is > 0. This is the exact optimum of the two-cluster subproblem; sweeps over
 *        all pairs repeat until no swap (at most 100 sweeps).
 *   3. Centers = means of their n/k points (double accumulation).
 *   4. Repeat 2 (exchange only, warm-started from the previous labels, so the objective never
 *      increases) and 3 until the labels stop changing or max_iter.
 * Restarts (n_init, seeds as spx_kmeans) keep the lowest inertia. The result is exchange-optimal
 * for its centroids (no single swap between two clusters lowers the sum of squared distances),
 * not necessarily the global optimum of the balanced problem. */
#ifndef SPX_BALANCED_H
#define SPX_BALANCED_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_kmeans.h"

typedef struct spx_balanced_opts {
    uint32_t k;          /* clusters; n % k must be 0 */
    uint32_t n_init;     /* restarts; default 10 (KMeansConstrained's default) */
    uint32_t max_iter;   /* assignment/update rounds per restart; default 300 */
    uint64_t seed;       /* default 0 */
    int normalize;       /* 1 (default): cluster the L2-normalized rows (MoEfication ParamSplit) */
} spx_balanced_opts;

#define SPX_BALANCED_OPTS_INIT {16u, 10u, 300u, 0u, 1}

/* Fit on X [n x d]. The result uses spx_kmeans_result: centroids [k x d] (in normalized space when
 * normalize), labels [n], sizes [k] (all n/k), inertia = fit_inertia (on the clustered rows),
 * n_iter, best_init, init_centers, converged; reseeds = 0. Errors: SPX_E_ARG (n % k != 0, k == 0,
 * n == 0, NULL), SPX_E_NUMERIC (NaN/Inf: names row and column), SPX_E_NOMEM, SPX_E_OVERFLOW. */
int spx_balanced_fit(const float *X, size_t n, uint32_t d, const spx_balanced_opts *opts,
                     spx_kmeans_result **out, spx_ctx *ctx);

#endif
