/* spx_sgpt_rows.h: the in-block pass of the SparseGPT sweep on a range of rows (internal to
 * prune/spx_sparsegpt.c; vectorised over 16 rows, see spx_sgpt_rows.c). */
#ifndef SPX_SGPT_ROWS_H
#define SPX_SGPT_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "spx_prune_types.h"

/* Bytes of the 64-byte aligned scratch spx_sgpt_rows needs for blocks of nb columns. */
size_t spx_sgpt_rows_scratch(size_t nb);

/* OBS updates of rows [r0, r1) of one block of nb columns: Wb [rows x nb] current weights (pruned
 * in place), mask [rows x nb] (1 = prune; unstructured decisions are read, N:M decisions are made
 * here on the current weights and written), Ub [nb x nb] the block of the upper inverse factor.
 * Writes Err [rows x nb] (w / U[a][a] where pruned, else 0) and rowloss[r] = sum of err^2 in
 * fp64; returns the number of weights pruned. */
uint64_t spx_sgpt_rows(const spx_prune_opts *o, const float *Ub, size_t nb, float *Wb, float *Err, uint8_t *mask,
                       size_t r0, size_t r1, double *rowloss, void *scratch);

#endif
