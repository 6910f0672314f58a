/* spx_sgpt_select.c: the unstructured SparseGPT threshold of one block, on the kernel pool.
 *
 * Exact k-th smallest (0-based) of the block's scores by radix selection on the IEEE bits (for
 * floats >= +0, including +Inf, the unsigned bit patterns sort like the values): three histogram
 * passes over 11 + 11 + 10 bits, O(n) and branch-light, instead of a comparison introselect. The
 * value at rank k is unique, so it equals spx_prune_kth_float's and the masks are bitwise the
 * same. Each pass counts chunks of rows in parallel into one histogram per part; the counts are
 * integers, so the merged histogram (and the threshold) does not depend on the split. */
#include "spx_sgpt_select.h"

#include <string.h>

#include "spx_kernels.h"

#define SPX_SEL_BINS SPX_SGPT_SEL_BINS

typedef struct sel_job {
    const float *S;
    size_t rows, nb, chunk;
    int pass;
    uint32_t prefix, pmask;
    size_t *hist;        /* [nparts][SPX_SEL_BINS] */
    uint32_t *maxbits;   /* [nparts] */
} sel_job;

static const unsigned sel_shift[3] = {21, 10, 0}, sel_width[3] = {11, 11, 10};

static void sel_task(void *arg, unsigned part, unsigned nparts)
{
    sel_job *j = arg;
    size_t *h = j->hist + (size_t)part * SPX_SEL_BINS;
    const unsigned sh = sel_shift[j->pass];
    const uint32_t bm = (1u << sel_width[j->pass]) - 1u;
    uint32_t mx = 0;
    memset(h, 0, SPX_SEL_BINS * sizeof *h);
    for (size_t r0 = (size_t)part * j->chunk; r0 < j->rows; r0 += (size_t)nparts * j->chunk) {
        size_t r1 = r0 + j->chunk < j->rows ? r0 + j->chunk : j->rows;
        const float *a = j->S + r0 * j->nb;
        size_t n = (r1 - r0) * j->nb;
        if (j->pass == 0) {
            for (size_t i = 0; i < n; i++) {
                uint32_t u;
                memcpy(&u, &a[i], sizeof u);
                mx = u > mx ? u : mx;
                h[u >> sh]++;
            }
        } else {
            for (size_t i = 0; i < n; i++) {
                uint32_t u;
                memcpy(&u, &a[i], sizeof u);
                if ((u & j->pmask) == j->prefix)
                    h[(u >> sh) & bm]++;
            }
        }
    }
    j->maxbits[part] = mx;
}

int spx_sgpt_kth(const float *S, size_t rows, size_t nb, size_t k, size_t chunk, unsigned nparts, size_t *hist,
                 uint32_t *maxbits, float *out)
{
    sel_job j = {S, rows, nb, chunk ? chunk : rows, 0, 0, 0, hist, maxbits};
    if (nparts < 1)
        nparts = 1;
    for (int p = 0; p < 3; p++) {
        const size_t nbins = (size_t)1 << sel_width[p];
        const uint32_t bm = (uint32_t)nbins - 1u;
        j.pass = p;
        spx_kern_pool_run(nparts, sel_task, &j);
        for (unsigned q = 1; q < nparts; q++)   /* merge into part 0's histogram */
            for (size_t b = 0; b < nbins; b++)
                hist[b] += hist[(size_t)q * SPX_SEL_BINS + b];
        if (p == 0) {
            uint32_t mx = 0;
            for (unsigned q = 0; q < nparts; q++)
                mx = maxbits[q] > mx ? maxbits[q] : mx;
            if (mx > 0x7f800000u)
                return 0;   /* sign bit set or NaN: the caller uses the comparison select */
        }
        size_t bin = 0;
        while (k >= hist[bin]) {   /* rank k lies in this pass's bins: terminates below nbins */
            k -= hist[bin];
            bin++;
        }
        j.prefix |= (uint32_t)bin << sel_shift[p];
        j.pmask |= bm << sel_shift[p];
    }
    memcpy(out, &j.prefix, sizeof *out);
    return 1;
}
