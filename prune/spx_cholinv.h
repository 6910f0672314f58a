/* spx_cholinv.h: inverse of the Cholesky factor of a symmetric positive definite matrix, in
 * place and in double, by a recursion whose flops run almost entirely in dtrmm and dsyrk.
 *
 * A [n x n] column-major with leading dimension lda, upper triangle read (A = U^T U, U upper).
 * On success the upper triangle holds Z = U^-1 (upper, positive diagonal); the strict lower
 * triangle is not touched. Same result as LAPACK dpotrf('U') followed by dtrtri('U', 'N'), with
 * the same 2n^3/3 flops, but LAPACK's triangular solves (dtrsm) run well below the GEMM rate on
 * this class of CPU, while the recursion needs none:
 *
 *   A = [A11 A12; . A22], m = split:
 *     Z11 = cholinv(A11)                         recursion
 *     U12 = Z11^T A12                            dtrmm   (= U11^-T A12, the usual dtrsm)
 *     S   = A22 - U12^T U12                      dsyrk   (Schur complement = U22^T U22)
 *     Z22 = cholinv(S)                           recursion
 *     Z12 = -Z11 U12 Z22                         2 x dtrmm
 *
 * Blocks of SPX_CHOLINV_BASE or fewer columns use dpotrf + dtrtri. The one numerical difference
 * from dtrsm is that U12 is formed with the computed inverse Z11, whose error grows with
 * kappa(U11) = sqrt(kappa(A11)); on damped Hessian-like matrices (kappa ~1e4-1e5) the result is
 * within 1e-14 of a long double reference (test_prune_cholinv).
 * Returns 0, or SPX_E_CHOLESKY naming the leading minor that is not positive definite (A is then
 * left with intermediate values). n, lda <= INT_MAX, lda >= n. */
#ifndef SPX_CHOLINV_H
#define SPX_CHOLINV_H

#include <stddef.h>

#include "spx_error.h"

#define SPX_CHOLINV_BASE 128

int spx_cholinv_upper(spx_ctx *ctx, double *A, size_t n, size_t lda);

#endif
