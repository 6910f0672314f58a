/* spx_sgpt_select.h: the unstructured threshold of one SparseGPT block (internal to
 * prune/spx_sparsegpt.c; see spx_sgpt_select.c). */
#ifndef SPX_SGPT_SELECT_H
#define SPX_SGPT_SELECT_H

#include <stddef.h>
#include <stdint.h>

/* Histogram scratch entries spx_sgpt_kth needs per part. */
#define SPX_SGPT_SEL_BINS 2048u

/* The k-th smallest (0-based, k < rows * nb) of the scores S [rows x nb] into *out, counted in
 * chunks of `chunk` rows over `nparts` parts of the kernel pool. hist: nparts x SPX_SGPT_SEL_BINS
 * entries, maxbits: nparts entries. Returns 1, or 0 (*out unset) when a score is negative or NaN
 * (the caller then uses a comparison select). */
int spx_sgpt_kth(const float *S, size_t rows, size_t nb, size_t k, size_t chunk, unsigned nparts, size_t *hist,
                 uint32_t *maxbits, float *out);

#endif
