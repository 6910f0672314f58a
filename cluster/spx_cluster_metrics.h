/* spx_cluster_metrics.h: agreement between two labelings (clustering quality against a ground
 * truth). Labels are arbitrary uint32 values (not necessarily dense); the contingency table is
 * built sparsely by sorting label pairs, so memory is O(n) whatever the number of labels. */
#ifndef SPX_CLUSTER_METRICS_H
#define SPX_CLUSTER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

/* Adjusted Rand index (Hubert & Arabie 1985), in double:
 *   ARI = (sum_ij C(n_ij,2) - E) / ((sum_i C(a_i,2) + sum_j C(b_j,2)) / 2 - E),
 *   E = sum_i C(a_i,2) * sum_j C(b_j,2) / C(n,2).
 * 1 for identical partitions (up to renaming); when the denominator is 0 (both partitions are a
 * single cluster, or both all singletons) the result is 1, as in scikit-learn. Symmetric in a, b.
 * SPX_E_ARG for n == 0 or NULL pointers. */
int spx_cluster_ari(const uint32_t *a, const uint32_t *b, size_t n, double *ari, spx_ctx *ctx);

/* Purity of `pred` against `truth`: (1/n) sum over predicted clusters of the size of their
 * largest truth class. In (0, 1]; 1 when each predicted cluster holds a single class. */
int spx_cluster_purity(const uint32_t *pred, const uint32_t *truth, size_t n, double *purity,
                       spx_ctx *ctx);

#endif
