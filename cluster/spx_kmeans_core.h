/* spx_kmeans_core.h: internal pieces shared by spx_kmeans.c, spx_kmeans_init.c and spx_balanced.c
 * (not part of the public API). */
#ifndef SPX_KMEANS_CORE_H
#define SPX_KMEANS_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "spx_rng.h"

/* Rows per sgemm block: the block of dot products is [SPX_KM_CHUNK x k] floats. */
#define SPX_KM_CHUNK 1024u

/* Random numbers: common/spx_rng.h (xoshiro256** seeded by splitmix64, identical everywhere). */

/* ||row||^2 in double for rows [n x d] -> out [n]; returns the index of the first non-finite row,
 * or n when every row is finite. */
size_t spx_km_row_norms(const float *X, size_t n, uint32_t d, double *out);

/* The pinned assignment rule (spx_kmeans.h) on X [n x d] against C [k x d] with cn [k] = ||c||^2.
 * xn [n] = ||x||^2 may be NULL (then computed per row). G is scratch [min(n, SPX_KM_CHUNK) x k] floats,
 * fe scratch [k] doubles. Returns 0, or SPX_E_NUMERIC when a row of X is non-finite (*bad_row set). */
int spx_km_assign_core(const float *C, const double *cn, uint32_t k, uint32_t d, const float *X,
                       const double *xn, size_t n, uint32_t *labels, float *G, double *fe,
                       size_t *bad_row);

/* k-means++ with precomputed xn [n]; see spx_kmeans_init_pp. */
int spx_km_init_pp(const float *X, const double *xn, size_t n, uint32_t d, uint32_t k, uint64_t seed,
                   float *centers);

#endif
