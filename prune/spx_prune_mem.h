/* spx_prune_mem.h: allocation of the large pruning buffers (internal to prune/).
 * Hessians and inverse factors are cols^2 elements (0.5-1 GB at cols = 11008) and are written
 * once right after allocation. On this VM a 4 KiB page fault costs enough that faulting them in
 * took ~20% of a SparseGPT factorization; with transparent huge pages in "madvise" mode, asking
 * for huge pages cuts the fault count 512x (and TLB misses in potrf/syrk). */
#ifndef SPX_PRUNE_MEM_H
#define SPX_PRUNE_MEM_H

#include <stddef.h>

/* Like malloc (free with free(); realloc allowed). Buffers of >= 4 MiB are 2 MiB-aligned and
 * advised as huge-page candidates; smaller ones come from malloc. NULL when out of memory. */
void *spx_prune_alloc_big(size_t bytes);

#endif
