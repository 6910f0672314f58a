/* spx_moefy.c: equal-size neuron experts for an FFN (see spx_moefy.h). */
#include "spx_moefy.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_balanced.h"
#include "spx_ckd.h"

const char *spx_moefy_split_name(int kind)
{
    return kind == SPX_SPLIT_PARAM ? "param" : kind == SPX_SPLIT_COACT ? "coact" : "?";
}

int spx_moefy_split_parse(const char *s)
{
    if (!s)
        return -1;
    if (strcmp(s, "param") == 0)
        return SPX_SPLIT_PARAM;
    if (strcmp(s, "coact") == 0)
        return SPX_SPLIT_COACT;
    return -1;
}

int spx_moefy_perm_from_labels(spx_ctx *ctx, const uint32_t *labels, size_t n, uint32_t k, uint32_t *perm)
{
    int rc = 0;
    size_t *start = NULL;
    if (!labels || !perm || k == 0 || n % k != 0)
        return spx_err_set(ctx, SPX_E_ARG, "expert split: %zu neurons cannot form %u equal experts", n, k);
    start = calloc((size_t)k + 1, sizeof *start);
    if (!start)
        return spx_err_set(ctx, SPX_E_NOMEM, "expert split: out of memory");
    for (size_t i = 0; i < n; i++) {
        if (labels[i] >= k)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "expert split: label %u of neuron %zu out of range (%u experts)",
                     labels[i], i, k);
        start[labels[i] + 1]++;
    }
    for (uint32_t e = 0; e < k; e++)
        if (start[e + 1] != n / k)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "expert split: expert %u has %zu neurons, want %zu", e, start[e + 1], n / k);
    for (uint32_t e = 0; e < k; e++)
        start[e + 1] += start[e];
    /* stable counting sort: original index ascending inside each expert */
    for (size_t i = 0; i < n; i++)
        perm[start[labels[i]]++] = (uint32_t)i;
done:
    free(start);
    return rc;
}

int spx_moefy_is_perm(const uint32_t *perm, size_t n)
{
    unsigned char *seen = calloc(n ? n : 1, 1);
    int ok = seen != NULL && perm != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        if (perm[i] >= n || seen[perm[i]])
            ok = 0;
        else
            seen[perm[i]] = 1;
    }
    free(seen);
    return ok;
}

void spx_moefy_permute_rows(const float *src, size_t rows, size_t cols, const uint32_t *perm, float *dst)
{
    for (size_t i = 0; i < rows; i++)
        memcpy(dst + i * cols, src + (size_t)perm[i] * cols, cols * sizeof(float));
}

void spx_moefy_permute_cols(const float *src, size_t rows, size_t cols, const uint32_t *perm, float *dst)
{
    for (size_t r = 0; r < rows; r++) {
        const float *s = src + r * cols;
        float *d = dst + r * cols;
        for (size_t i = 0; i < cols; i++)
            d[i] = s[perm[i]];
    }
}

/* Balanced k-means on X [n x d] (rows L2-normalized by the fit) -> perm. */
static int split_rows(spx_ctx *ctx, const float *X, uint32_t n, uint32_t d, const spx_moefy_split_opts *o,
                      uint32_t **perm, spx_moefy_split_info *info)
{
    int rc = 0;
    spx_kmeans_result *km = NULL;
    uint32_t *p = NULL;
    spx_balanced_opts bo = SPX_BALANCED_OPTS_INIT;
    *perm = NULL;
    if (!X || o->experts == 0 || n == 0 || n % o->experts != 0)
        return spx_err_set(ctx, SPX_E_ARG, "expert split: %u neurons cannot form %u equal experts", n, o->experts);
    bo.k = o->experts;
    bo.n_init = o->n_init ? o->n_init : 10u;
    bo.max_iter = o->max_iter ? o->max_iter : 300u;
    bo.seed = o->seed;
    bo.normalize = 1;
    p = malloc((size_t)n * sizeof *p);
    if (!p)
        return spx_err_set(ctx, SPX_E_NOMEM, "expert split: out of memory");
    if (o->experts == 1) {
        /* one expert owns everything: the identity (k-means with k = 1 is trivial) */
        for (uint32_t i = 0; i < n; i++)
            p[i] = i;
    } else {
        SPX_TRY(rc, spx_balanced_fit(X, n, d, &bo, &km, ctx));
        SPX_TRY(rc, spx_moefy_perm_from_labels(ctx, km->labels, n, o->experts, p));
        if (info) {
            info->inertia = km->inertia;
            info->n_iter = km->n_iter;
        }
    }
    *perm = p;
    p = NULL;
done:
    spx_kmeans_free(km);
    free(p);
    return rc;
}

int spx_moefy_split_param(spx_ctx *ctx, const float *W, uint32_t ffn, uint32_t dim, const spx_moefy_split_opts *o,
                          uint32_t **perm, spx_moefy_split_info *info)
{
    if (info)
        memset(info, 0, sizeof *info);
    if (!o || !perm)
        return spx_err_set(ctx, SPX_E_ARG, "expert split: NULL argument");
    return split_rows(ctx, W, ffn, dim, o, perm, info);
}

int spx_coact_new(spx_ctx *ctx, uint32_t ffn, float theta, spx_coact **out)
{
    size_t cc, cb;
    spx_coact *c;
    *out = NULL;
    if (ffn == 0 || ffn > (uint32_t)INT32_MAX || !(theta >= 0.0f) || !isfinite(theta))
        return spx_err_set(ctx, SPX_E_ARG, "co-activation: need 0 < ffn < 2^31 and a finite theta >= 0");
    if (spx_ckd_mul3_size(ffn, ffn, sizeof(float), &cc) || spx_ckd_mul3_size(SPX_COACT_CHUNK, ffn, sizeof(float), &cb))
        return spx_err_set(ctx, SPX_E_OVERFLOW, "co-activation matrix of %u neurons: size overflow", ffn);
    c = calloc(1, sizeof *c);
    if (!c)
        return spx_err_set(ctx, SPX_E_NOMEM, "co-activation: out of memory");
    c->ffn = ffn;
    c->theta = theta;
    c->C = calloc(1, cc);
    c->B = malloc(cb);
    if (!c->C || !c->B) {
        spx_coact_free(c);
        return spx_err_set(ctx, SPX_E_NOMEM, "co-activation: cannot allocate %zu bytes for %u neurons", cc, ffn);
    }
    *out = c;
    return 0;
}

void spx_coact_free(spx_coact *c)
{
    if (!c)
        return;
    free(c->C);
    free(c->B);
    free(c);
}

int spx_coact_add(spx_ctx *ctx, spx_coact *c, const float *A, size_t n, size_t lda)
{
    const size_t f = c->ffn;
    if (n > 0 && (!A || lda < f))
        return spx_err_set(ctx, SPX_E_ARG, "co-activation: bad activation matrix (lda %zu < %zu)", lda, f);
    if (c->tokens >= SPX_COACT_MAX_TOKENS)
        return 0;
    if (n > SPX_COACT_MAX_TOKENS - c->tokens)
        n = (size_t)(SPX_COACT_MAX_TOKENS - c->tokens);
    for (size_t r0 = 0; r0 < n; r0 += SPX_COACT_CHUNK) {
        size_t nb = n - r0 < SPX_COACT_CHUNK ? n - r0 : SPX_COACT_CHUNK;
        for (size_t r = 0; r < nb; r++) {
            const float *a = A + (r0 + r) * lda;
            float *b = c->B + r * f;
            double mean = 0.0;
            for (size_t j = 0; j < f; j++) {
                if (!isfinite(a[j]))
                    return spx_err_set(ctx, SPX_E_NUMERIC, "co-activation: non-finite activation at token %zu, neuron %zu",
                                       (size_t)c->tokens + r0 + r, j);
                mean += fabs((double)a[j]);
            }
            double thr = (double)c->theta * mean / (double)f;
            for (size_t j = 0; j < f; j++)
                b[j] = fabs((double)a[j]) > thr ? 1.0f : 0.0f;
        }
        /* C += B^T B (upper triangle); 0/1 products summed over < 2^24 tokens are exact in fp32 */
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)f, (int)nb, 1.0f, c->B, (int)f, 1.0f, c->C, (int)f);
    }
    c->tokens += n;
    return 0;
}

int spx_moefy_split_coact(spx_ctx *ctx, const spx_coact *c, const spx_moefy_split_opts *o, uint32_t **perm,
                          spx_moefy_split_info *info)
{
    int rc = 0;
    const size_t f = c ? c->ffn : 0;
    float *S = NULL;
    double *inv = NULL;
    uint32_t dead = 0;
    if (info)
        memset(info, 0, sizeof *info);
    if (!c || !o || !perm)
        return spx_err_set(ctx, SPX_E_ARG, "co-activation split: NULL argument");
    *perm = NULL;
    if (c->tokens == 0)
        return spx_err_set(ctx, SPX_E_ARG, "co-activation split: no calibration token was accumulated");
    S = malloc(f * f * sizeof *S);   /* size checked by spx_coact_new */
    inv = malloc(f * sizeof *inv);
    if (!S || !inv)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "co-activation split: out of memory");
    for (size_t i = 0; i < f; i++) {
        double cii = (double)c->C[i * f + i];
        inv[i] = cii > 0.0 ? 1.0 / sqrt(cii) : 0.0;
        dead += cii > 0.0 ? 0u : 1u;
    }
    for (size_t i = 0; i < f; i++)
        for (size_t j = i; j < f; j++) {
            float v = (float)((double)c->C[i * f + j] * inv[i] * inv[j]);
            S[i * f + j] = v;
            S[j * f + i] = v;
        }
    SPX_TRY(rc, split_rows(ctx, S, c->ffn, c->ffn, o, perm, info));
    if (info) {
        info->tokens = c->tokens;
        info->dead = dead;
    }
done:
    free(S);
    free(inv);
    return rc;
}
