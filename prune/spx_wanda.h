/* spx_wanda.h: Wanda (locuslab/wanda) and magnitude pruning of one linear layer.
 * Neither updates the kept weights; pruned weights are set to exactly 0.
 * W [rows x cols] fp32 row-major (rows = outputs, cols = inputs), pruned in place.
 * Pattern (unstructured / N:M "keep N of M") as in spx_prune_types.h. */
#ifndef SPX_WANDA_H
#define SPX_WANDA_H

#include <stddef.h>

#include "spx_error.h"
#include "spx_prune_types.h"

/* Wanda: score S_ij = |W_ij| * sqrt(colsq_j), colsq = the running mean of per-sequence
 * ||X[:, j]||^2 (spx_hessian_colsq(); the reference's scaler_row). Scores are computed in double.
 * Unstructured: per output row, exactly floor(cols * sparsity) weights with the smallest scores
 * are pruned; ties go by column index (lower first), as the reference's stable sort does.
 * N:M: per row, in each group of nm_m consecutive inputs the nm_m - nm_n smallest scores are
 * pruned (ties: lower index first). rep may be NULL.
 * SPX_E_NUMERIC (W untouched) for NaN/Inf in W or a negative/non-finite colsq. */
int spx_wanda_prune(spx_ctx *ctx, float *W, size_t rows, size_t cols, const double *colsq,
                    const spx_prune_opts *o, spx_prune_report *rep);

/* Magnitude (the SparseGPT/Wanda baseline). Unstructured: one threshold over the whole matrix,
 * thresh = sorted(|W|)[floor(rows * cols * sparsity)], and every |W_ij| <= thresh is pruned (so
 * slightly more than the fraction when values tie). N:M: per row, in each group the
 * nm_m - nm_n smallest |W| are pruned (ties: lower index first). Memory: one copy of |W| (fp32)
 * for the unstructured threshold. rep may be NULL. SPX_E_NUMERIC for NaN/Inf in W. */
int spx_magnitude_prune(spx_ctx *ctx, float *W, size_t rows, size_t cols, const spx_prune_opts *o,
                        spx_prune_report *rep);

#endif
