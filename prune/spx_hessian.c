/* spx_hessian.c: running-mean Hessian (X X^T) and column sum-of-squares accumulators. */
#include "spx_hessian.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_prune_mem.h"

struct spx_hessian {
    size_t cols;
    unsigned flags;
    uint64_t n;        /* sequences (running-mean weight) */
    uint64_t tokens;   /* tokens seen, for reporting */
    float *H;          /* [cols x cols] upper triangle, or NULL */
    double *colsq;     /* [cols], or NULL */
    double *scratch;   /* [cols] per-chunk column sums of squares */
};

int spx_hessian_new(spx_ctx *ctx, size_t cols, unsigned flags, spx_hessian **out)
{
    int rc = 0;
    spx_hessian *h = NULL;
    size_t hbytes = 0;

    *out = NULL;
    if (cols == 0 || cols > (size_t)INT_MAX)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "hessian: cols %zu out of range [1, %d]", cols, INT_MAX);
    if ((flags & (SPX_HESSIAN_FULL | SPX_HESSIAN_COLSQ)) == 0 ||
        (flags & ~(SPX_HESSIAN_FULL | SPX_HESSIAN_COLSQ)) != 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "hessian: invalid flags 0x%x", flags);
    if ((flags & SPX_HESSIAN_FULL) && spx_ckd_mul3_size(cols, cols, sizeof(float), &hbytes) != 0)
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "hessian: %zu x %zu matrix size overflows", cols, cols);
    h = calloc(1, sizeof *h);
    if (!h)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "hessian: out of memory");
    h->cols = cols;
    h->flags = flags;
    if (flags & SPX_HESSIAN_FULL) {
        h->H = spx_prune_alloc_big(hbytes);
        if (!h->H)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "hessian: cannot allocate %zu bytes for %zu x %zu H",
                     hbytes, cols, cols);
        memset(h->H, 0, hbytes);
    }
    if (flags & SPX_HESSIAN_COLSQ) {
        h->colsq = calloc(cols, sizeof(double));
        if (!h->colsq)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "hessian: out of memory");
    }
    h->scratch = calloc(cols, sizeof(double));
    if (!h->scratch)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "hessian: out of memory");
    *out = h;
    h = NULL;
done:
    spx_hessian_free(h);
    return rc;
}

void spx_hessian_free(spx_hessian *h)
{
    if (!h)
        return;
    free(h->H);
    free(h->colsq);
    free(h->scratch);
    free(h);
}

/* One pass over X: reject NaN/Inf (before anything is modified) and, when wanted, sum the
 * squares of every column into h->scratch in double. */
static int scan_chunk(spx_ctx *ctx, spx_hessian *h, const float *X, size_t tokens)
{
    size_t c = h->cols;
    int want = h->colsq != NULL;
    if (want)
        memset(h->scratch, 0, c * sizeof(double));
    for (size_t t = 0; t < tokens; t++) {
        const float *x = X + t * c;
        float bad = 0.0f;
        for (size_t j = 0; j < c; j++)
            bad += x[j] * 0.0f;   /* NaN iff some x[j] is NaN or Inf (branch-free, vectorizes) */
        if (isnan(bad)) {
            for (size_t j = 0; j < c; j++)
                if (!isfinite(x[j]))
                    return spx_err_set(ctx, SPX_E_NUMERIC,
                                       "hessian: input token %zu, feature %zu is %s", t, j,
                                       isnan(x[j]) ? "NaN" : "Inf");
        }
        if (want) {
            double *s = h->scratch;
            for (size_t j = 0; j < c; j++)
                s[j] += (double)x[j] * (double)x[j];
        }
    }
    return 0;
}

int spx_hessian_add_chunk(spx_ctx *ctx, spx_hessian *h, const float *X, size_t tokens,
                          uint64_t nseq)
{
    int rc = 0;
    size_t c;
    uint64_t n_new, tok_new;
    double beta, alpha;

    if (!h)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "hessian: NULL accumulator");
    c = h->cols;
    if (nseq == 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "hessian: a chunk must hold at least one sequence");
    if (tokens > 0 && !X)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "hessian: NULL input with %zu tokens", tokens);
    {
        size_t bytes;
        if (spx_ckd_mul3_size(tokens, c, sizeof(float), &bytes) != 0)
            SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "hessian: %zu tokens x %zu features overflows",
                     tokens, c);
    }
    if (spx_ckd_add_u64(h->n, nseq, &n_new) != 0 || spx_ckd_add_u64(h->tokens, tokens, &tok_new) != 0)
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "hessian: sequence count overflows");
    SPX_TRY(rc, scan_chunk(ctx, h, X, tokens));

    beta = (double)h->n / (double)n_new;    /* H <- H * n/(n+b) */
    alpha = 1.0 / (double)n_new;            /* + (1/(n+b)) * sum: 2/(n+b) for H */
    if (h->colsq) {
        for (size_t j = 0; j < c; j++)
            h->colsq[j] = h->colsq[j] * beta + h->scratch[j] * alpha;
    }
    if (h->H) {
        if (tokens == 0) {
            for (size_t i = 0; i < c; i++)
                for (size_t j = i; j < c; j++)
                    h->H[i * c + j] = (float)((double)h->H[i * c + j] * beta);
        } else {
            /* Row-major X [tokens x c]: op(A) = A^T is c x tokens, so C = alpha A^T A + beta C.
             * BLAS dimensions are int: feed tokens in pieces of at most 2^30 rows. */
            size_t done_tok = 0;
            float b = (float)beta;
            while (done_tok < tokens) {
                size_t k = tokens - done_tok;
                if (k > ((size_t)1 << 30))
                    k = (size_t)1 << 30;
                cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)c, (int)k,
                            (float)(2.0 * alpha), X + done_tok * c, (int)c, b, h->H, (int)c);
                done_tok += k;
                b = 1.0f;
            }
        }
    }
    h->n = n_new;
    h->tokens = tok_new;
done:
    return rc;
}

int spx_hessian_add(spx_ctx *ctx, spx_hessian *h, const float *X, size_t tokens)
{
    return spx_hessian_add_chunk(ctx, h, X, tokens, 1);
}

void spx_hessian_reset(spx_hessian *h)
{
    if (!h)
        return;
    h->n = 0;
    h->tokens = 0;
    if (h->H)
        memset(h->H, 0, h->cols * h->cols * sizeof(float));
    if (h->colsq)
        memset(h->colsq, 0, h->cols * sizeof(double));
}

void spx_hessian_symmetrize(spx_hessian *h)
{
    if (!h || !h->H)
        return;
    size_t c = h->cols, T = 64;   /* 64 x 64 tiles keep both sides in cache */
    for (size_t i0 = 0; i0 < c; i0 += T)
        for (size_t j0 = i0; j0 < c; j0 += T)
            for (size_t i = i0; i < i0 + T && i < c; i++)
                for (size_t j = (j0 > i + 1 ? j0 : i + 1); j < j0 + T && j < c; j++)
                    h->H[j * c + i] = h->H[i * c + j];
}

size_t spx_hessian_cols(const spx_hessian *h) { return h ? h->cols : 0; }
uint64_t spx_hessian_count(const spx_hessian *h) { return h ? h->n : 0; }
uint64_t spx_hessian_tokens(const spx_hessian *h) { return h ? h->tokens : 0; }
float *spx_hessian_matrix(spx_hessian *h) { return h ? h->H : NULL; }
const double *spx_hessian_colsq(const spx_hessian *h) { return h ? h->colsq : NULL; }
