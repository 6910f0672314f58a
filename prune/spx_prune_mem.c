/* spx_prune_mem.c: huge-page friendly allocation for cols^2 buffers. */
#include "spx_prune_mem.h"

#include <stdlib.h>
#include <sys/mman.h>

void *spx_prune_alloc_big(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    if (bytes < 2 * huge)
        return malloc(bytes ? bytes : 1);
    if (posix_memalign(&p, huge, bytes) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    /* advisory only: failure (no THP support) leaves ordinary pages */
    (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}
