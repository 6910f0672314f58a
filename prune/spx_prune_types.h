/* spx_prune_types.h: options and report shared by the one-shot pruning kernels
 * (SparseGPT, Wanda, magnitude). Every kernel works on ONE linear layer:
 *   W [rows x cols] fp32 row-major, rows = output features, cols = input features,
 * modified in place. A driver calls a kernel once per linear layer.
 *
 * Pattern selection:
 *   nm_m == 0  unstructured: `sparsity` is the fraction to prune, in [0, 1).
 *   nm_m  > 0  N:M semi-structured: in every group of nm_m consecutive inputs of a row,
 *              nm_n weights are KEPT and nm_m - nm_n are pruned. This is the .spx NM
 *              convention (nm_n = nonzeros kept per group): "2:4" keeps 2 of every 4.
 *              The reference scripts' prunen:prunem counts PRUNED weights instead
 *              (prunen = nm_m - nm_n); for 2:4 and 4:8 both spellings coincide.
 *              Requires 1 <= nm_n < nm_m <= 255, cols % nm_m == 0 and, for SparseGPT,
 *              blocksize % nm_m == 0 (groups never straddle a block).
 *
 * Ties: where the reference leaves the order of equal scores unspecified (torch.topk),
 * spx breaks ties by column index: among equal scores the lower column index is pruned first.
 * Where the reference uses a threshold with `<=` (magnitude and SparseGPT unstructured),
 * spx does the same, so every weight tied with the threshold is pruned. */
#ifndef SPX_PRUNE_TYPES_H
#define SPX_PRUNE_TYPES_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

typedef struct spx_prune_opts {
    double sparsity;    /* unstructured fraction to prune, [0, 1); ignored when nm_m > 0.
                         * 0 prunes nothing (the reference's `<= sorted[0]` would still prune the
                         * minimum: spx treats 0 as "leave the layer dense"). */
    int nm_n;           /* N:M: weights KEPT per group of nm_m (0 with nm_m == 0: unstructured) */
    int nm_m;           /* N:M group size, 0 = unstructured */
    int blocksize;      /* SparseGPT column block (lazy updates, unstructured mask scope): 128 */
    double percdamp;    /* SparseGPT: damping = percdamp * mean(diag H) added to diag H: 0.01 */
    double retry_damp;  /* SparseGPT: added again (times mean(diag H)) on every retry when the
                         * Cholesky route fails or yields NaN/Inf (Sparse-Expansion rule, which
                         * adds percdamp again: the default 0.01 equals it). Must be > 0 when
                         * max_retries > 0. */
    int max_retries;    /* SparseGPT: damping retries before SPX_E_CHOLESKY: 8 */
} spx_prune_opts;

#define SPX_PRUNE_OPTS_INIT {0.5, 0, 0, 128, 0.01, 0.01, 8}

typedef struct spx_prune_report {
    uint64_t numel;     /* rows * cols */
    uint64_t pruned;    /* weights selected by the mask (set to exactly 0) */
    uint64_t zeros;     /* weights equal to 0 after pruning (>= pruned: dead inputs, zeros in W) */
    double sparsity;    /* zeros / numel */
    /* SparseGPT only (0 for the other methods): */
    int retries;        /* damping retries used */
    double damp;        /* total damping added to diag(H), absolute */
    uint64_t dead;      /* inputs with diag(H) == 0 (their W columns were zeroed) */
    double loss;        /* the reference's OBS error estimate: sum over pruned (w/U_ii)^2 / 2 */
} spx_prune_report;

/* Validate `o` for a layer with `cols` inputs (SPX_E_ARG with the offending field).
 * `sparsegpt` != 0 also checks the SparseGPT-only fields. */
int spx_prune_opts_check(spx_ctx *ctx, const spx_prune_opts *o, size_t cols, int sparsegpt);

/* Count zeros of W [rows x cols] and fill numel, zeros, sparsity of `rep` (other fields untouched). */
void spx_prune_report_count(spx_prune_report *rep, const float *W, size_t rows, size_t cols);

/* Relative reconstruction error of a pruned layer from the Hessian of its inputs:
 *   ||W X - W' X||_F^2 / ||W X||_F^2 = tr((W-W') H (W-W')^T) / tr(W H W^T)
 * with H = X X^T up to a positive scale (the ratio does not depend on it), e.g. the matrix of an
 * spx_hessian accumulator. W, Wp [rows x cols]; H [cols x cols] row-major, only the upper triangle
 * (j >= i) is read. Accumulates in double. SPX_E_NUMERIC when tr(W H W^T) <= 0. */
int spx_prune_recon_error(spx_ctx *ctx, const float *W, const float *Wp, size_t rows, size_t cols,
                          const float *H, double *out);

#endif
