/* spx_calib.h: calibration windows drawn from token data, reproducing the anchors' samplers.
 *
 * Stream mode (default; the anchors' WikiText-2 loader): the whole text is one token stream;
 * random.seed(seed), then per sample i = random.randint(0, n - seqlen - 1), window = ids[i, i+seqlen).
 * Document mode (the anchors' C4 loader): per sample, draw documents with random.randint(0, ndocs-1)
 * until one has more than seqlen tokens, then i = random.randint(0, len - seqlen - 1) inside it.
 * Where the anchors loop forever when no document is long enough, spx checks first and falls
 * back to stream mode over the concatenated documents (reported in *fell_back).
 * Random numbers come from spx_pyrandom, so with identical token ids the windows are identical
 * to the reference scripts' windows. */
#ifndef SPX_CALIB_H
#define SPX_CALIB_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

typedef struct spx_calib_opts {
    uint32_t nsamples;   /* windows to draw (default 128) */
    uint32_t seqlen;     /* tokens per window (default min(2048, model context)) */
    uint64_t seed;       /* default 0 */
} spx_calib_opts;

#define SPX_CALIB_OPTS_INIT {128u, 2048u, 0u}

/* Stream mode. *out is [nsamples x seqlen], malloc'd, owned by the caller. */
int spx_calib_windows(spx_ctx *ctx, const uint32_t *ids, size_t n, const spx_calib_opts *o,
                      uint32_t **out);

/* Document mode: documents are ids[doc_off[d], doc_off[d+1]) for d < ndocs. */
int spx_calib_windows_docs(spx_ctx *ctx, const uint32_t *ids, const size_t *doc_off, size_t ndocs,
                           const spx_calib_opts *o, uint32_t **out, int *fell_back);

/* Select the fraction [lo, hi) of a token stream (for disjoint calibration/evaluation splits):
 * start = floor(n*lo), end = floor(n*hi). 0 <= lo < hi <= 1, else SPX_E_ARG. */
int spx_calib_range(spx_ctx *ctx, size_t n, double lo, double hi, size_t *start, size_t *end);

/* Parse "A:B" fractions, e.g. "0:0.95". Returns 0 or SPX_E_ARG. */
int spx_calib_parse_range(spx_ctx *ctx, const char *s, double *lo, double *hi);

#endif
