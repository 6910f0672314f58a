/* spx_pca.h: principal component analysis of calibration activations (Sparse Expansion reduces
 * each MLP input to dim/32 components before k-means).
 *
 * Convention (pinned, the runtime router uses it):  y = P (x - mean),  P [k x d] fp32 row-major,
 * rows = unit principal directions in descending order of variance; computed as the fp32
 * difference x - mean followed by the dot products (spx_pca_project does exactly this via sgemm).
 * Sign: each row's largest-|value| entry (ties -> lowest index) is positive, so the result is
 * reproducible and independent of the eigensolver's arbitrary signs.
 *
 * Fitting is streaming: memory is O(d^2), never O(n d). Rows arrive in chunks of any size; each
 * block of rows is centered on its own mean, its scatter S_b = sum (x - mean_b)(x - mean_b)^T is
 * accumulated with cblas_dsyrk, and blocks are merged with the pairwise update of Chan, Golub &
 * LeVeque:  M2 = M2_a + S_b + (n_a n_b / (n_a + n_b)) delta delta^T,
 *           mean = mean_a + (n_b / (n_a + n_b)) delta,  delta = mean_b - mean_a.
 * Centering each block first avoids the cancellation of E[x x^T] - mean mean^T when the mean is
 * large (LLM hidden states have large per-channel offsets).
 * Precision: everything (means, centered blocks, dsyrk, merge, eigensolver) is double; only the
 * outputs mean and P are rounded to fp32. dsyrk costs n d^2 flops (d=768, n=32768: ~0.15 s);
 * we accept ~2-4x the ssyrk time for a covariance whose relative error is ~1e-15 instead of
 * ~1e-6, which keeps nearly-degenerate directions stable. Results depend on the chunking only at
 * round-off level (1e-15 relative).
 * Covariance = M2 / (n - 1) (NumPy/sklearn sample covariance); the top k eigenpairs come from
 * LAPACKE_dsyevr (range 'I'). */
#ifndef SPX_PCA_H
#define SPX_PCA_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

typedef struct spx_pca {
    uint32_t d, k;
    uint64_t n;               /* rows fitted */
    float *mean;              /* [d] */
    float *P;                 /* [k x d] components, descending variance */
    double *explained_var;    /* [k] eigenvalues of the covariance, descending */
    double total_var;         /* trace of the covariance (explained ratio = explained_var / total_var) */
} spx_pca;

typedef struct spx_pca_acc spx_pca_acc; /* streaming accumulator (opaque): d, n, mean [d], M2 [d x d] */

/* New accumulator for rows of dimension d (memory: 8 d^2 + a block buffer of at most 16 MiB). */
int spx_pca_acc_new(uint32_t d, spx_pca_acc **out, spx_ctx *ctx);
/* Add rows X [n x d]. SPX_E_NUMERIC names the global row index (rows counted over all calls) and
 * column of a NaN/Inf; the accumulator is then unchanged. */
int spx_pca_acc_add(spx_pca_acc *acc, const float *X, size_t n, spx_ctx *ctx);
uint64_t spx_pca_acc_rows(const spx_pca_acc *acc);
/* Top k components (1 <= k <= d) of everything added so far (needs >= 2 rows); acc is unchanged
 * and may keep growing. Extra memory: 8 d^2 + 8 d k bytes. */
int spx_pca_acc_finish(const spx_pca_acc *acc, uint32_t k, spx_pca **out, spx_ctx *ctx);
void spx_pca_acc_free(spx_pca_acc *acc);

/* One-shot fit on X [n x d] (new + add + finish). */
int spx_pca_fit(const float *X, size_t n, uint32_t d, uint32_t k, spx_pca **out, spx_ctx *ctx);
/* Y [n x k] = (X [n x d] - mean) P^T. */
int spx_pca_project(const spx_pca *p, const float *X, size_t n, float *Y, spx_ctx *ctx);
void spx_pca_free(spx_pca *p);

#endif
