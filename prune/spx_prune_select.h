/* spx_prune_select.h: selection helpers shared by the pruning kernels (internal to prune/).
 * Deterministic (no randomness, no pointer-order dependence) and O(n) expected, with an
 * O(n log n) fallback so adversarial inputs cannot make them quadratic. */
#ifndef SPX_PRUNE_SELECT_H
#define SPX_PRUNE_SELECT_H

#include <stddef.h>
#include <stdint.h>

/* A score with its column index: the total order is (s, i), so ties break by index. */
typedef struct spx_prune_pair {
    double s;
    uint32_t i;
} spx_prune_pair;

/* Value of rank k (0-based) of a[0..n), i.e. sorted(a)[k]; a is permuted. Requires k < n and
 * no NaN in a. */
float spx_prune_kth_float(float *a, size_t n, size_t k);

/* Reorder p[0..n) so that p[0..k) are the k smallest by (s, i) (in unspecified order). k <= n. */
void spx_prune_select_pairs(spx_prune_pair *p, size_t n, size_t k);

/* N:M within one group: keep[j] = 1 for the `keep` largest of s[0..m) and 0 for the m - keep
 * smallest, ties broken by index (the lower index is pruned first). m <= 255. */
void spx_prune_nm_group(const double *s, int m, int keep, uint8_t *keepmask);

#endif
