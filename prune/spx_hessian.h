/* spx_hessian.h: per-linear-layer input statistics for one-shot pruning.
 *
 * One accumulator per linear layer input (layers that share an input, e.g. q/k/v or gate/up,
 * can share one). It keeps, over the calibration sequences seen so far (n of them):
 *   H     [cols x cols] fp32, H = (2/n) * sum_s X_s X_s^T       (SparseGPT's Hessian)
 *   colsq [cols]        fp64, colsq_j = (1/n) * sum_s ||X_s[:, j]||^2  (Wanda's scaler_row)
 * where X_s is [cols x T_s] (the tokens of sequence s). Both are running means updated exactly
 * like the references do per sequence (batch b = 1):
 *   H     <- H * n/(n+b);     n += b;  H     += (2/n) X X^T          (IST-DASLab/sparsegpt)
 *   colsq <- colsq * n/(n+b);          colsq += ||X_j||^2 / n        (locuslab/wanda, new n)
 * A chunk of b sequences stacked into one [T_total x cols] buffer gets the same result in one
 * BLAS call: ssyrk with beta = n/(n+b) and alpha = 2/(n+b). This equals b single-sequence updates
 * exactly in real arithmetic (both give (2/n_final) * sum of all X X^T); in floating point the two
 * differ only by rounding. Use chunks of several thousand tokens: ssyrk runs near the GEMM rate.
 *
 * H is fp32 (as in the reference, which accumulates in float32) to halve memory (c^2 * 4 bytes:
 * 485 MB at c = 11008) and run at the sgemm rate; the SparseGPT inverse is done in double.
 * Only the UPPER triangle of H (row-major, element (i, j) with j >= i) is maintained; call
 * spx_hessian_symmetrize() if a full matrix is wanted. colsq is accumulated in double from
 * the fp32 inputs. Mathematically colsq == diag(H)/2; it is kept separately so that a Wanda-only
 * accumulator (no SPX_HESSIAN_FULL) needs O(cols) memory and O(T * cols) work. */
#ifndef SPX_HESSIAN_H
#define SPX_HESSIAN_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

#define SPX_HESSIAN_FULL 1u     /* keep H (cols x cols): SparseGPT */
#define SPX_HESSIAN_COLSQ 2u    /* keep colsq (cols): Wanda */

typedef struct spx_hessian spx_hessian;

/* flags: SPX_HESSIAN_FULL and/or SPX_HESSIAN_COLSQ (at least one). cols >= 1. */
int spx_hessian_new(spx_ctx *ctx, size_t cols, unsigned flags, spx_hessian **out);
void spx_hessian_free(spx_hessian *h);

/* Add one calibration sequence X [tokens x cols] fp32 row-major (one token per row), weight 1.
 * tokens may be 0 (the sequence still counts: the running mean is rescaled).
 * SPX_E_NUMERIC (accumulator unchanged) when X holds a NaN or Inf. */
int spx_hessian_add(spx_ctx *ctx, spx_hessian *h, const float *X, size_t tokens);

/* Add `nseq` sequences stacked into X [tokens x cols] (tokens = their total length) in one
 * update; equivalent to nseq calls of spx_hessian_add up to rounding. nseq >= 1. */
int spx_hessian_add_chunk(spx_ctx *ctx, spx_hessian *h, const float *X, size_t tokens,
                          uint64_t nseq);

/* Reset to the empty state (n = 0), keeping the allocation. */
void spx_hessian_reset(spx_hessian *h);

/* Mirror the upper triangle of H into the lower one (H becomes a full symmetric matrix).
 * The accumulator keeps working afterwards (it only ever writes the upper triangle). */
void spx_hessian_symmetrize(spx_hessian *h);

size_t spx_hessian_cols(const spx_hessian *h);
uint64_t spx_hessian_count(const spx_hessian *h);          /* n: sequences added */
uint64_t spx_hessian_tokens(const spx_hessian *h);         /* tokens added */
/* [cols x cols] row-major, upper triangle valid; NULL without SPX_HESSIAN_FULL.
 * Mutable so that a driver may hand it to a consumer that overwrites it. */
float *spx_hessian_matrix(spx_hessian *h);
const double *spx_hessian_colsq(const spx_hessian *h);    /* [cols]; NULL without SPX_HESSIAN_COLSQ */

#endif
