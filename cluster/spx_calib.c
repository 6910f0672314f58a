/* spx_calib.c: calibration window sampling (see spx_calib.h for the rules). */
#include "spx_calib.h"

#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_rng.h"

static int alloc_windows(spx_ctx *ctx, const spx_calib_opts *o, uint32_t **out)
{
    size_t cnt;
    if (o->nsamples == 0 || o->seqlen == 0)
        return spx_err_set(ctx, SPX_E_ARG, "calibration: nsamples and seqlen must be positive");
    if (spx_ckd_mul_size(o->nsamples, o->seqlen, &cnt) || spx_ckd_mul_size(cnt, sizeof(uint32_t), &cnt))
        return spx_err_set(ctx, SPX_E_OVERFLOW, "calibration: %u x %u tokens overflows", o->nsamples, o->seqlen);
    *out = malloc(cnt);
    if (!*out)
        return spx_err_set(ctx, SPX_E_NOMEM, "calibration: cannot allocate %zu bytes of windows", cnt);
    return 0;
}

int spx_calib_windows(spx_ctx *ctx, const uint32_t *ids, size_t n, const spx_calib_opts *o, uint32_t **out)
{
    int rc;
    spx_pyrandom pr;
    *out = NULL;
    /* randint(0, n - seqlen - 1) needs n >= seqlen + 1 */
    if (n < (size_t)o->seqlen + 1)
        return spx_err_set(ctx, SPX_E_DATA,
                           "calibration data has %zu tokens; need at least seqlen+1 = %u (use a smaller --seqlen or more text)",
                           n, o->seqlen + 1);
    if ((rc = alloc_windows(ctx, o, out)) < 0)
        return rc;
    spx_pyrandom_seed(&pr, o->seed);
    for (uint32_t s = 0; s < o->nsamples; s++) {
        int64_t i = spx_pyrandom_randint(&pr, 0, (int64_t)(n - o->seqlen - 1));
        memcpy(*out + (size_t)s * o->seqlen, ids + i, (size_t)o->seqlen * sizeof(uint32_t));
    }
    return 0;
}

int spx_calib_windows_docs(spx_ctx *ctx, const uint32_t *ids, const size_t *doc_off, size_t ndocs,
                           const spx_calib_opts *o, uint32_t **out, int *fell_back)
{
    int rc;
    spx_pyrandom pr;
    size_t longest = 0;
    *out = NULL;
    *fell_back = 0;
    if (ndocs == 0)
        return spx_err_set(ctx, SPX_E_DATA, "calibration: no documents");
    for (size_t d = 0; d < ndocs; d++) {
        if (doc_off[d + 1] < doc_off[d])
            return spx_err_set(ctx, SPX_E_ARG, "calibration: document %zu has a negative length", d);
        size_t len = doc_off[d + 1] - doc_off[d];
        if (len > longest)
            longest = len;
    }
    if (longest <= o->seqlen) {
        /* the anchors would loop forever here; use the concatenation instead */
        *fell_back = 1;
        return spx_calib_windows(ctx, ids + doc_off[0], doc_off[ndocs] - doc_off[0], o, out);
    }
    if ((rc = alloc_windows(ctx, o, out)) < 0)
        return rc;
    spx_pyrandom_seed(&pr, o->seed);
    for (uint32_t s = 0; s < o->nsamples; s++) {
        size_t d, len;
        do { /* terminates: at least one document is long enough */
            d = (size_t)spx_pyrandom_randint(&pr, 0, (int64_t)ndocs - 1);
            len = doc_off[d + 1] - doc_off[d];
        } while (len <= o->seqlen);
        int64_t i = spx_pyrandom_randint(&pr, 0, (int64_t)(len - o->seqlen - 1));
        memcpy(*out + (size_t)s * o->seqlen, ids + doc_off[d] + i, (size_t)o->seqlen * sizeof(uint32_t));
    }
    return 0;
}

int spx_calib_range(spx_ctx *ctx, size_t n, double lo, double hi, size_t *start, size_t *end)
{
    if (!(lo >= 0.0 && lo < hi && hi <= 1.0))
        return spx_err_set(ctx, SPX_E_ARG, "range %g:%g is not a sub-range of 0:1", lo, hi);
    *start = (size_t)((double)n * lo);
    *end = (size_t)((double)n * hi);
    if (*end > n)
        *end = n;
    return 0;
}

int spx_calib_parse_range(spx_ctx *ctx, const char *s, double *lo, double *hi)
{
    char *end;
    *lo = strtod(s, &end);
    if (end == s || *end != ':')
        return spx_err_set(ctx, SPX_E_ARG, "range '%s' is not of the form A:B (fractions, e.g. 0:0.95)", s);
    const char *b = end + 1;
    *hi = strtod(b, &end);
    if (end == b || *end)
        return spx_err_set(ctx, SPX_E_ARG, "range '%s' is not of the form A:B (fractions, e.g. 0:0.95)", s);
    size_t a0, a1;
    return spx_calib_range(ctx, 100, *lo, *hi, &a0, &a1);
}
