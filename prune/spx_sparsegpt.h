/* spx_sparsegpt.h: SparseGPT one-shot pruning of one linear layer (IST-DASLab/sparsegpt,
 * arXiv 2301.00774), with the damping retry of Sparse-Expansion.
 *
 * W [rows x cols] fp32 row-major (rows = outputs, cols = inputs) is pruned in place using the
 * Hessian H [cols x cols] of the layer's inputs (e.g. spx_hessian_matrix()). Two stages, so that
 * layers sharing one input (q/k/v, gate/up) factor H once:
 *
 *  1. spx_sparsegpt_factor: H is read, never modified (copied into a double work matrix).
 *     - dead inputs: diag(H)_i == 0  ->  H_ii = 1 (and the sweep zeroes W[:, i]);
 *     - damping: H += (percdamp + k * retry_damp) * mean(diag H) * I, k = 0, 1, ... max_retries;
 *       k grows while the Cholesky factorization fails or yields NaN/Inf;
 *     - U = upper Cholesky factor of H^-1 (H^-1 = U^T U), computed in double by the shortcut of
 *       spx_sparsegpt_inv_chol, stored as fp32 for the sweep.
 *  2. spx_sparsegpt_sweep: column blocks of `blocksize`:
 *     - unstructured: at block start, on the already-updated weights, score = w^2 / U_ii^2 and one
 *       threshold over all rows x block columns: thresh = sorted(scores)[floor(numel * sparsity)],
 *       prune score <= thresh;
 *     - N:M: at every block column a with a % M == 0, per row, the M - N smallest scores of
 *       columns a..a+M-1 (current weights) are pruned (ties: lower index first);
 *     - per column i: err = w_i / U_ii on pruned entries (0 elsewhere), the rest of the block row
 *       w[i+1:] -= err * U[i, i+1:], w_i = 0 on pruned entries;
 *     - after the block, lazy update of the later columns with one sgemm:
 *       W[:, i2:] -= Err[:, i1:i2] @ U[i1:i2, i2:].
 *
 * Memory: the factor holds cols^2 doubles of work (U, cols^2 floats, is written at its start and
 * the buffer is kept for spx_sparsegpt_refactor); the sweep needs 4 * rows * blocksize floats. Threads: OpenBLAS's (trmm, syrk, sgemm) and the kernel pool (sweep). */
#ifndef SPX_SPARSEGPT_H
#define SPX_SPARSEGPT_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_prune_types.h"

typedef struct spx_sparsegpt_inv {
    size_t cols;       /* 0 after a failed refactor: the factor is then unusable */
    float *U;          /* [cols x cols] row-major: upper Cholesky factor of the damped H^-1; lower = 0;
                        * points into work */
    void *work;        /* [work_cap] doubles: the factor's double work matrix, then U (fp32) */
    size_t work_cap;
    uint8_t *dead;     /* [cols] 1 where diag(H) == 0 */
    uint64_t ndead;
    int retries;       /* damping retries that were needed */
    double damp;       /* total damping added to diag(H) (absolute) */
} spx_sparsegpt_inv;

/* In place, double: A [n x n] row-major symmetric positive definite (only the upper triangle,
 * j >= i, is read) becomes U, the upper Cholesky factor of A^-1 (A^-1 = U^T U, U_ii > 0), with
 * the strict lower triangle set to 0.
 * Shortcut (n^3/3 + n^3/3 flops instead of chol -> inverse -> chol, n^3 flops): let J be the
 * index reversal (J = J^T = J^-1). Factor the reversed matrix J A J = L L^T (L lower),
 * so A = (J L J)(J L^T J) = R R^T with R = J L J UPPER triangular. Then
 *   A^-1 = R^-T R^-1 = (R^-1)^T (R^-1),   R^-1 = J L^-1 J upper with positive diagonal,
 * and by uniqueness of the Cholesky factorization U = J L^-1 J. L^-1 comes straight from
 * spx_cholinv_upper (factor and triangular inverse in one recursion). In row-major
 * storage J M J is just the reversed flat array (index i*n+j <-> n*n-1-(i*n+j)), and a row-major
 * lower triangle is a column-major upper one, so the BLAS calls run column-major without
 * transposition copies.
 * Returns SPX_E_CHOLESKY when A is not numerically positive definite or U is not finite (A is
 * then overwritten with intermediate values), SPX_E_NOMEM for its O(n) scratch. */
int spx_sparsegpt_inv_chol(spx_ctx *ctx, double *A, size_t n);

/* Stage 1. H [cols x cols] row-major, upper triangle read, not modified. o: percdamp,
 * retry_damp, max_retries (the pattern fields are not used). *out is owned by the caller.
 * SPX_E_NUMERIC for NaN/Inf in H or mean(diag) <= 0; SPX_E_CHOLESKY after max_retries. */
int spx_sparsegpt_factor(spx_ctx *ctx, const float *H, size_t cols, const spx_prune_opts *o,
                         spx_sparsegpt_inv **out);
/* Stage 1 again into an existing factor f (of any cols), for the next Hessian of a run: f's work
 * buffer is reused when it holds cols^2 doubles, so the factor touches no fresh pages. On this
 * class of VM a first touch costs ~8 ms per 75 MB with transparent huge pages and ~240 ms
 * without (cols = 3072), against ~125 ms of arithmetic. On failure f->cols is 0 (f may be
 * refactored again or freed). */
int spx_sparsegpt_refactor(spx_ctx *ctx, const float *H, size_t cols, const spx_prune_opts *o,
                           spx_sparsegpt_inv *f);
/* Bytes held by f's work buffer (0 for NULL): what --max-memory accounting reserves for it. */
size_t spx_sparsegpt_inv_bytes(const spx_sparsegpt_inv *f);
void spx_sparsegpt_inv_free(spx_sparsegpt_inv *f);

/* Stage 2: prune W [rows x cols] in place with a factor of matching cols (may be called for
 * several layers with the same factor). rep (may be NULL) gets counts, loss, and the factor's
 * retries/damp/dead. SPX_E_NUMERIC (W untouched) when W holds NaN/Inf. */
int spx_sparsegpt_sweep(spx_ctx *ctx, float *W, size_t rows, size_t cols,
                        const spx_sparsegpt_inv *f, const spx_prune_opts *o, spx_prune_report *rep);

/* Both stages: factor(H) then sweep(W). H is not modified. */
int spx_sparsegpt_prune(spx_ctx *ctx, float *W, size_t rows, size_t cols, const float *H,
                        const spx_prune_opts *o, spx_prune_report *rep);

#endif
