/* spx_expand.c: the Sparse Expansion driver (see spx_expand.h). */
#include "spx_expand.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_cluster_metrics.h"
#include "spx_forward.h"
#include "spx_hessian.h"
#include "spx_kmeans.h"
#include "spx_mem.h"
#include "spx_moe.h"
#include "spx_pca.h"
#include "spx_route.h"
#include "spx_sparsegpt.h"

/* Rows captured by a hook during one pass: [n x width]. */
typedef struct acts {
    float *buf;
    size_t n, cap, width;
    spx_ctx *ctx;
    int rc;
} acts;

static void acts_add(acts *a, const float *x, size_t n)
{
    if (a->rc < 0)
        return;
    if (a->n + n > a->cap) {
        a->rc = spx_err_set(a->ctx, SPX_E_INTERNAL, "expand: more activations than calibration tokens");
        return;
    }
    memcpy(a->buf + a->n * a->width, x, n * a->width * sizeof(float));
    a->n += n;
}
static void hook_mlp_in(void *ud, uint32_t l, const float *x, size_t n) { (void)l; acts_add(ud, x, n); }

/* Run block `layer` over all windows; capture=NULL: advance X in place; else capture the chosen
 * input (0: MLP input, 1: intermediate activation) on scratch copies. */
static int pass(spx_ctx *ctx, const spx_model *m, spx_state *st, uint32_t layer, float *X, float *scratch,
                uint32_t nsamples, uint32_t seqlen, acts *cap, int which)
{
    size_t per = (size_t)seqlen * m->cfg.dim;
    spx_forward_hooks h;
    memset(&h, 0, sizeof h);
    h.ud = cap;
    if (which == 0)
        h.mlp_input = hook_mlp_in;
    else
        h.mlp_hidden = hook_mlp_in;
    if (cap)
        cap->n = 0;
    for (uint32_t s = 0; s < nsamples; s++) {
        float *x = X + (size_t)s * per;
        if (cap) {
            memcpy(scratch, x, per * sizeof(float));
            x = scratch;
        }
        spx_state_reset(st);
        int rc = spx_block_forward(ctx, m, st, layer, x, seqlen, cap ? &h : NULL);
        if (rc < 0)
            return rc;
        if (cap && cap->rc < 0)
            return cap->rc;
    }
    return 0;
}

/* A fitted router: buffers owned here until handed to a moe. */
typedef struct fitted {
    uint32_t pca_dim, k, in_dim;
    float *mean, *proj, *centroids;
    uint32_t *labels;           /* [N] */
    uint32_t *sizes;            /* [k] */
    double inertia;
    uint64_t reseeds;
} fitted;

static void fitted_free(fitted *f)
{
    free(f->mean);
    free(f->proj);
    free(f->centroids);
    free(f->labels);
    free(f->sizes);
    memset(f, 0, sizeof *f);
}

static float *dup_floats(const float *p, size_t n)
{
    float *q = malloc(n ? n * sizeof(float) : 1);
    if (q && n)
        memcpy(q, p, n * sizeof(float));
    return q;
}

static int fit_router(spx_ctx *ctx, const float *X, size_t N, uint32_t d, uint32_t k, uint32_t pdim,
                      const spx_expand_opts *o, fitted *f)
{
    int rc = 0;
    spx_pca *pca = NULL;
    spx_kmeans_result *km = NULL;
    float *Y = NULL;
    memset(f, 0, sizeof *f);
    f->k = k;
    f->in_dim = d;
    f->labels = calloc(N ? N : 1, sizeof *f->labels);
    f->sizes = calloc(k, sizeof *f->sizes);
    if (!f->labels || !f->sizes)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "expand: out of memory");
    if (k == 1) {
        /* a single expert: no clustering; one centroid at the origin of the input space */
        f->centroids = calloc(d, sizeof(float));
        if (!f->centroids)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "expand: out of memory");
        f->sizes[0] = (uint32_t)N;
        goto done;
    }
    f->pca_dim = o->pca ? pdim : 0;
    uint32_t rdim = f->pca_dim ? f->pca_dim : d;
    if (f->pca_dim) {
        SPX_TRY(rc, spx_pca_fit(X, N, d, f->pca_dim, &pca, ctx));
        f->mean = dup_floats(pca->mean, d);
        f->proj = dup_floats(pca->P, (size_t)f->pca_dim * d);
        if (!f->mean || !f->proj)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "expand: out of memory");
    }
    Y = malloc(N * rdim * sizeof(float));
    if (!Y)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "expand: cannot allocate %zu x %u routing features", N, rdim);
    spx_router r = {d, f->pca_dim, k, f->mean, f->proj, NULL};
    spx_router_project(&r, X, N, Y);
    spx_kmeans_opts ko = SPX_KMEANS_OPTS_INIT;
    ko.k = k;
    ko.n_init = o->kmeans_init;
    ko.seed = o->seed;
    ko.max_fit_points = o->max_fit_points;
    SPX_TRY(rc, spx_kmeans_fit(Y, N, rdim, &ko, &km, ctx));
    f->centroids = dup_floats(km->centroids, (size_t)k * rdim);
    if (!f->centroids)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "expand: out of memory");
    f->inertia = km->inertia;
    f->reseeds = km->reseeds_total;
    r.centroids = f->centroids;
    /* the runtime's rule defines the clusters, so runtime routing reproduces them exactly */
    spx_router_nearest(&r, Y, N, f->labels);
    for (size_t t = 0; t < N; t++)
        f->sizes[f->labels[t]]++;
done:
    if (rc < 0)
        fitted_free(f);
    spx_pca_free(pca);
    spx_kmeans_free(km);
    free(Y);
    return rc;
}

/* Hessian of the rows of X [N x cols] labelled c, added window by window (label c < 0: all rows). */
static int cluster_hessian(spx_ctx *ctx, const float *X, size_t cols, const uint32_t *labels, int64_t c,
                           uint32_t nsamples, uint32_t seqlen, float *gather, spx_hessian **out)
{
    int rc = 0;
    spx_hessian *h = NULL;
    SPX_TRY(rc, spx_hessian_new(ctx, cols, 1u /* full */, &h));
    for (uint32_t s = 0; s < nsamples; s++) {
        size_t cnt = 0, base = (size_t)s * seqlen;
        for (uint32_t t = 0; t < seqlen; t++)
            if (c < 0 || labels[base + t] == (uint32_t)c)
                memcpy(gather + cnt++ * cols, X + (base + t) * cols, cols * sizeof(float));
        if (cnt)
            SPX_TRY(rc, spx_hessian_add(ctx, h, gather, cnt));
    }
    spx_hessian_symmetrize(h);
    *out = h;
    h = NULL;
done:
    spx_hessian_free(h);
    return rc;
}

/* SparseGPT copy of W [rows x cols] with H; returns the pruned copy and its relative error. When
 * *stale, H is factored first (into *inv, reusing its buffer: the experts of one loop have the same
 * cols) and *stale cleared: gate and up share the factor of their common Hessian. */
static int prune_copy(spx_ctx *ctx, const float *W, size_t rows, size_t cols, spx_hessian *h,
                      spx_sparsegpt_inv **inv, int *stale, const spx_prune_opts *p, float **out,
                      double *err, int *retries)
{
    int rc = 0;
    spx_prune_report rep;
    memset(&rep, 0, sizeof rep);
    float *Wc = dup_floats(W, rows * cols);
    if (!Wc)
        return spx_err_set(ctx, SPX_E_NOMEM, "expand: out of memory");
    if (*stale) {
        SPX_TRY(rc, spx_prune_opts_check(ctx, p, cols, 1));
        if (*inv)
            SPX_TRY(rc, spx_sparsegpt_refactor(ctx, spx_hessian_matrix(h), cols, p, *inv));
        else
            SPX_TRY(rc, spx_sparsegpt_factor(ctx, spx_hessian_matrix(h), cols, p, inv));
        *stale = 0;
    }
    SPX_TRY(rc, spx_sparsegpt_sweep(ctx, Wc, rows, cols, *inv, p, &rep));
    SPX_TRY(rc, spx_prune_recon_error(ctx, W, Wc, rows, cols, spx_hessian_matrix(h), err));
    *retries += rep.retries;
    *out = Wc;
    Wc = NULL;
done:
    free(Wc);
    return rc;
}

static int give_router(spx_ctx *ctx, spx_moe *moe, int which, fitted *f)
{
    int rc = spx_moe_set_router(ctx, moe, which, f->pca_dim, f->mean, f->proj, f->centroids);
    f->mean = f->proj = f->centroids = NULL; /* ownership moved, also on failure */
    return rc;
}

static int copy_router(spx_ctx *ctx, spx_moe *moe, int which, const spx_router *r)
{
    uint32_t rdim = spx_router_rdim(r);
    float *mean = r->pca_dim ? dup_floats(r->mean, r->in_dim) : NULL;
    float *proj = r->pca_dim ? dup_floats(r->proj, (size_t)r->pca_dim * r->in_dim) : NULL;
    float *cen = dup_floats(r->centroids, (size_t)r->k * rdim);
    if ((r->pca_dim && (!mean || !proj)) || !cen) {
        free(mean);
        free(proj);
        free(cen);
        return spx_err_set(ctx, SPX_E_NOMEM, "expand: out of memory");
    }
    return spx_moe_set_router(ctx, moe, which, r->pca_dim, mean, proj, cen);
}

static int set_expert(spx_ctx *ctx, spx_linear *l, uint32_t rows, uint32_t cols, float *w, const float *bias)
{
    float *b = NULL;
    if (bias && !(b = dup_floats(bias, rows))) {
        free(w);
        return spx_err_set(ctx, SPX_E_NOMEM, "expand: out of memory");
    }
    spx_linear_init_owned(l, rows, cols, w, b);
    return 0;
}

static uint32_t default_pca(uint32_t in, uint32_t asked)
{
    uint32_t p = asked ? asked : in / 32;
    if (!asked && p < 8)
        p = 8;
    return p > in ? in : p;
}

static int score_truth(spx_ctx *ctx, const uint32_t *windows, size_t N, uint32_t mod, const uint32_t *labels,
                       spx_expand_layer_info *info)
{
    int rc = 0;
    uint32_t *truth = malloc(N * sizeof *truth);
    if (!truth)
        return spx_err_set(ctx, SPX_E_NOMEM, "expand: out of memory");
    for (size_t t = 0; t < N; t++)
        truth[t] = windows[t] % mod;
    SPX_TRY(rc, spx_cluster_ari(labels, truth, N, &info->ari_up, ctx));
    SPX_TRY(rc, spx_cluster_purity(labels, truth, N, &info->purity_up, ctx));
done:
    free(truth);
    return rc;
}

/* --max-memory: the transient buffers of one expert's SparseGPT (Hessian [cols x cols] fp32, factor
 * [cols x cols] fp64 at its peak, sweep buffers [rows x blocksize]) go to *iter (released after the
 * expert), the expert's pruned copy [rows x cols] to *kept (the model owns it). */
static int reserve_expert(spx_ctx *ctx, unsigned long long *iter, unsigned long long *kept, size_t rows, size_t cols,
                          const spx_expand_opts *o, uint32_t l, const char *which, uint32_t c)
{
    int rc = spx_mem_reserve(ctx, iter, (unsigned long long)cols * cols * 12u + (unsigned long long)rows *
                             (unsigned)o->p.blocksize * 13u,
                             "Hessian and SparseGPT factor of blk.%u.%s expert %u (%zu x %zu)", l, which, c, cols, cols);
    if (rc == 0)
        rc = spx_mem_reserve(ctx, kept, (unsigned long long)rows * cols * sizeof(float),
                             "pruned copy of blk.%u.%s expert %u (%zu x %zu fp32)", l, which, c, rows, cols);
    return rc;
}

/* --max-memory: routing features [N x rdim] + labels [N] and, with PCA, its covariance [d x d]
 * fp64 and the projection. */
static int reserve_fit(spx_ctx *ctx, unsigned long long *held, size_t N, uint32_t d, uint32_t pdim,
                       const spx_expand_opts *o, uint32_t l, const char *which)
{
    unsigned long long rdim = o->pca ? pdim : d;
    unsigned long long b = (unsigned long long)N * (rdim + 1u) * 4u;
    if (o->pca)
        b += (unsigned long long)d * d * 8u + (unsigned long long)pdim * d * 4u;
    return spx_mem_reserve(ctx, held, b, "k-means data of blk.%u %s (%zu tokens x %llu)", l, which, N, rdim);
}

static int expand_block(spx_ctx *ctx, spx_model *m, spx_state *st, uint32_t l, float *X, float *scratch,
                        const uint32_t *windows, uint32_t nsamples, uint32_t seqlen, const spx_expand_opts *o,
                        spx_expand_layer_info *info, unsigned long long *kept)
{
    int rc = 0;
    unsigned long long held = 0, iter = 0, fit = 0;
    const spx_model_config *cfg = &m->cfg;
    spx_layer *L = &m->layers[l];
    uint32_t K = o->clusters, dim = cfg->dim, ffn = cfg->ffn_dim;
    size_t N = (size_t)nsamples * seqlen;
    acts cap = {NULL, 0, N, dim, ctx, 0};
    fitted fu, fd;
    spx_moe *moe1 = NULL, *moe2 = NULL;
    float *gather = NULL, *dg = NULL, *du = NULL, *dd = NULL, *bg = NULL, *bu = NULL, *bd = NULL;
    spx_hessian *h = NULL;
    spx_sparsegpt_inv *inv = NULL;   /* one factor buffer per expert loop, refactored per expert */
    int stale = 1;
    double wsum = 0;
    memset(&fu, 0, sizeof fu);
    memset(&fd, 0, sizeof fd);
    info->layer = l;
    info->k = K;
    info->ari_up = info->purity_up = NAN;
    /* dense originals [3 x ffn x dim], captured activations [N x ffn], one window's gather buffer */
    SPX_TRY(rc, spx_mem_reserve(ctx, &held, ((unsigned long long)(cfg->gated ? 3 : 2) * dim + N + seqlen) * ffn * 4u,
                                "dense MLP copies and captured activations of blk.%u (%zu tokens x %u)", l, N, ffn));
    /* dense originals: the moe takes the layer's linears away */
    dg = cfg->gated ? dup_floats(L->gate.w, (size_t)ffn * dim) : NULL;
    du = dup_floats(L->up.w, (size_t)ffn * dim);
    dd = dup_floats(L->down.w, (size_t)dim * ffn);
    bg = L->gate.bias ? dup_floats(L->gate.bias, ffn) : NULL;
    bu = L->up.bias ? dup_floats(L->up.bias, ffn) : NULL;
    bd = L->down.bias ? dup_floats(L->down.bias, dim) : NULL;
    cap.buf = malloc(N * ffn * sizeof(float));  /* large enough for both passes */
    gather = malloc((size_t)seqlen * ffn * sizeof(float));
    if ((cfg->gated && !dg) || !du || !dd || !cap.buf || !gather)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "expand: block %u: out of memory (%zu calibration tokens)", l, N);

    /* 1-3: gate/up */
    SPX_TRY(rc, pass(ctx, m, st, l, X, scratch, nsamples, seqlen, &cap, 0));
    SPX_TRY(rc, reserve_fit(ctx, &fit, N, dim, default_pca(dim, o->pca_dim_up), o, l, "MLP input"));
    SPX_TRY(rc, fit_router(ctx, cap.buf, N, dim, K, default_pca(dim, o->pca_dim_up), o, &fu));
    spx_mem_release(ctx, &fit);
    info->pca_up = fu.pca_dim;
    info->inertia_up = fu.inertia;
    info->reseeds += fu.reseeds;
    SPX_TRY(rc, spx_moe_alloc(ctx, K, 1, dim, ffn, &moe1));
    wsum = 0;
    for (uint32_t c = 0; c < K; c++) {
        float *w = NULL;
        double e;
        int64_t sel = fu.sizes[c] ? (int64_t)c : -1;
        info->fallbacks += fu.sizes[c] ? 0u : 1u;
        if (cfg->gated)
            SPX_TRY(rc, reserve_expert(ctx, &iter, kept, ffn, dim, o, l, "ffn_gate", c));
        SPX_TRY(rc, reserve_expert(ctx, &iter, kept, ffn, dim, o, l, "ffn_up", c));
        SPX_TRY(rc, cluster_hessian(ctx, cap.buf, dim, fu.labels, sel, nsamples, seqlen, gather, &h));
        if (cfg->gated) {
            SPX_TRY(rc, prune_copy(ctx, dg, ffn, dim, h, &inv, &stale, &o->p, &w, &e, &info->retries));
            SPX_TRY(rc, set_expert(ctx, &moe1->gate[c], ffn, dim, w, bg));
            info->recon_gate += e * fu.sizes[c];
        }
        SPX_TRY(rc, prune_copy(ctx, du, ffn, dim, h, &inv, &stale, &o->p, &w, &e, &info->retries));
        SPX_TRY(rc, set_expert(ctx, &moe1->up[c], ffn, dim, w, bu));
        info->recon_up += e * fu.sizes[c];
        wsum += fu.sizes[c];
        spx_hessian_free(h);
        h = NULL;
        stale = 1;   /* the next expert's reservation covers the kept factor buffer again */
        spx_mem_release(ctx, &iter);
    }
    spx_sparsegpt_inv_free(inv);   /* unaccounted from here on: the loop's buffer goes */
    inv = NULL;
    info->recon_gate /= wsum;
    info->recon_up /= wsum;
    SPX_TRY(rc, spx_mem_reserve(ctx, kept, (unsigned long long)dim * ffn * 4u,
                                "dense ffn_down copy of blk.%u (%u x %u fp32)", l, dim, ffn));
    {
        float *w = dup_floats(dd, (size_t)dim * ffn);
        if (!w)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "expand: out of memory");
        SPX_TRY(rc, set_expert(ctx, &moe1->down[0], dim, ffn, w, bd));
    }
    {
        fitted one = {0, 1, ffn, NULL, NULL, calloc(ffn, sizeof(float)), NULL, NULL, 0, 0};
        if (!one.centroids)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "expand: out of memory");
        SPX_TRY(rc, give_router(ctx, moe1, 1, &one));
    }
    SPX_TRY(rc, copy_router(ctx, moe1, 0, &(spx_router){dim, fu.pca_dim, K, fu.mean, fu.proj, fu.centroids}));
    SPX_TRY(rc, spx_moe_attach(ctx, m, l, moe1));
    moe1 = NULL; /* the model owns it */

    /* 4-5: down, on the activations of the routed pruned gate/up experts */
    cap.width = ffn;
    SPX_TRY(rc, pass(ctx, m, st, l, X, scratch, nsamples, seqlen, &cap, 1));
    SPX_TRY(rc, reserve_fit(ctx, &fit, N, ffn, default_pca(ffn, o->pca_dim_down), o, l, "ffn_down input"));
    SPX_TRY(rc, fit_router(ctx, cap.buf, N, ffn, K, default_pca(ffn, o->pca_dim_down), o, &fd));
    spx_mem_release(ctx, &fit);
    info->pca_down = fd.pca_dim;
    info->inertia_down = fd.inertia;
    info->reseeds += fd.reseeds;
    SPX_TRY(rc, spx_moe_alloc(ctx, K, K, dim, ffn, &moe2));
    wsum = 0;
    for (uint32_t c = 0; c < K; c++) {
        float *w = NULL;
        double e;
        int64_t sel = fd.sizes[c] ? (int64_t)c : -1;
        info->fallbacks += fd.sizes[c] ? 0u : 1u;
        SPX_TRY(rc, reserve_expert(ctx, &iter, kept, dim, ffn, o, l, "ffn_down", c));
        SPX_TRY(rc, cluster_hessian(ctx, cap.buf, ffn, fd.labels, sel, nsamples, seqlen, gather, &h));
        SPX_TRY(rc, prune_copy(ctx, dd, dim, ffn, h, &inv, &stale, &o->p, &w, &e, &info->retries));
        SPX_TRY(rc, set_expert(ctx, &moe2->down[c], dim, ffn, w, bd));
        info->recon_down += e * fd.sizes[c];
        wsum += fd.sizes[c];
        spx_hessian_free(h);
        h = NULL;
        stale = 1;   /* the next expert's reservation covers the kept factor buffer again */
        spx_mem_release(ctx, &iter);
    }
    spx_sparsegpt_inv_free(inv);   /* unaccounted from here on: the loop's buffer goes */
    inv = NULL;
    info->recon_down /= wsum;
    /* move the gate/up experts over from the installed moe */
    for (uint32_t c = 0; c < K; c++) {
        moe2->gate[c] = L->moe->gate[c];
        moe2->up[c] = L->moe->up[c];
        memset(&L->moe->gate[c], 0, sizeof(spx_linear));
        memset(&L->moe->up[c], 0, sizeof(spx_linear));
    }
    SPX_TRY(rc, copy_router(ctx, moe2, 0, &L->moe->r_up));
    SPX_TRY(rc, give_router(ctx, moe2, 1, &fd));
    if (o->truth_mod)
        SPX_TRY(rc, score_truth(ctx, windows, N, o->truth_mod, fu.labels, info));
    info->sizes_up = fu.sizes;
    info->sizes_down = fd.sizes;
    info->labels_up = fu.labels;
    info->labels_down = fd.labels;
    fu.sizes = fd.sizes = NULL;
    fu.labels = fd.labels = NULL;
    SPX_TRY(rc, spx_moe_attach(ctx, m, l, moe2));
    moe2 = NULL;

    /* 6: the block's routed, pruned output feeds the next block */
    SPX_TRY(rc, pass(ctx, m, st, l, X, scratch, nsamples, seqlen, NULL, 0));
done:
    fitted_free(&fu);
    fitted_free(&fd);
    spx_moe_free(moe1);
    spx_moe_free(moe2);
    spx_hessian_free(h);
    spx_sparsegpt_inv_free(inv);
    free(cap.buf);
    free(gather);
    free(dg);
    free(du);
    free(dd);
    free(bg);
    free(bu);
    free(bd);
    spx_mem_release(ctx, &held);
    spx_mem_release(ctx, &iter);
    spx_mem_release(ctx, &fit);
    return rc;
}

int spx_expand_model(spx_ctx *ctx, spx_model *m, const uint32_t *windows, uint32_t nsamples, uint32_t seqlen,
                     const spx_expand_opts *o, spx_expand_layer_info **infos)
{
    int rc = 0;
    const spx_model_config *cfg = &m->cfg;
    spx_state *st = NULL;
    float *X = NULL, *scratch = NULL;
    spx_expand_layer_info *inf = NULL;
    size_t per, total;
    /* --max-memory: activations + state for the run; the experts stay with the model, so their
     * reservation (`kept`) is carried over to the caller's context and never released here */
    unsigned long long held = 0, kept = 0;
    *infos = NULL;
    if (o->clusters < 1 || o->clusters > 64)
        return spx_err_set(ctx, SPX_E_ARG, "expand: --clusters must be in 1..64, got %u", o->clusters);
    if (!windows || !nsamples || !seqlen)
        return spx_err_set(ctx, SPX_E_ARG, "expand: needs calibration data");
    if ((size_t)nsamples * seqlen < o->clusters)
        return spx_err_set(ctx, SPX_E_ARG, "expand: %u calibration tokens cannot form %u clusters",
                           nsamples * seqlen, o->clusters);
    inf = calloc(cfg->n_layers, sizeof *inf);
    if (spx_ckd_mul_size(seqlen, cfg->dim, &per) || spx_ckd_mul3_size(per, nsamples, sizeof(float), &total))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "expand: calibration activations: size overflow");
    SPX_TRY(rc, spx_mem_reserve(ctx, &held, (unsigned long long)total + per * sizeof(float),
                                "calibration activations (%u windows x %u tokens x dim %u fp32)", nsamples, seqlen,
                                cfg->dim));
    SPX_TRY(rc, spx_mem_reserve(ctx, &held, spx_mem_state_bytes(cfg, seqlen, seqlen),
                                "forward state of a %u-token window", seqlen));
    X = malloc(total);
    scratch = malloc(per * sizeof(float));
    if (!inf || !X || !scratch)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "expand: cannot allocate %zu bytes of calibration activations", total);
    for (uint32_t s = 0; s < nsamples; s++)
        SPX_TRY(rc, spx_embed(ctx, m, windows + (size_t)s * seqlen, seqlen, X + (size_t)s * per));
    SPX_TRY(rc, spx_state_new(ctx, m, seqlen, seqlen, &st));
    for (uint32_t l = 0; l < cfg->n_layers; l++) {
        rc = expand_block(ctx, m, st, l, X, scratch, windows, nsamples, seqlen, o, &inf[l], &kept);
        if (rc < 0) {
            if (rc != SPX_E_LIMIT)   /* the budget message names the block already */
                spx_err_prefix(ctx, "block %u: ", l);
            goto done;
        }
        spx_progress_report(&o->progress, "expand: block", l + 1, cfg->n_layers);
    }
    *infos = inf;
    inf = NULL;
done:
    spx_expand_infos_free(inf, cfg->n_layers);
    free(X);
    free(scratch);
    spx_state_free(st);
    spx_mem_release(ctx, &held);
    return rc;
}

void spx_expand_infos_free(spx_expand_layer_info *infos, uint32_t n)
{
    if (!infos)
        return;
    for (uint32_t i = 0; i < n; i++) {
        free(infos[i].sizes_up);
        free(infos[i].sizes_down);
        free(infos[i].labels_up);
        free(infos[i].labels_down);
    }
    free(infos);
}

typedef struct route_check {
    const spx_expand_layer_info *infos;
    size_t base;                /* first token of the window being run */
    uint64_t agree, total;
} route_check;

static void route_hook(void *ud, uint32_t layer, int which, const uint32_t *labels, size_t n)
{
    route_check *rc = ud;
    const uint32_t *want = which ? rc->infos[layer].labels_down : rc->infos[layer].labels_up;
    for (size_t t = 0; t < n; t++)
        rc->agree += labels[t] == want[rc->base + t];
    rc->total += n;
}

int spx_expand_check_routing(spx_ctx *ctx, const char *path, const uint32_t *windows, uint32_t nsamples,
                             uint32_t seqlen, const spx_expand_layer_info *infos, uint64_t *agree, uint64_t *total)
{
    int rc = 0;
    spx_model *m = NULL;
    spx_state *st = NULL;
    float *X = NULL;
    route_check chk = {infos, 0, 0, 0};
    SPX_TRY(rc, spx_model_open(ctx, path, 0, &m));
    SPX_TRY(rc, spx_state_new(ctx, m, seqlen, seqlen, &st));
    X = malloc((size_t)seqlen * m->cfg.dim * sizeof(float));
    if (!X)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "expand: out of memory");
    spx_state_set_route_hook(st, route_hook, &chk);
    for (uint32_t s = 0; s < nsamples; s++) {
        chk.base = (size_t)s * seqlen;
        SPX_TRY(rc, spx_embed(ctx, m, windows + chk.base, seqlen, X));
        for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
            spx_state_reset(st);
            SPX_TRY(rc, spx_block_forward(ctx, m, st, l, X, seqlen, NULL));
        }
    }
    *agree = chk.agree;
    *total = chk.total;
done:
    free(X);
    spx_state_free(st);
    spx_model_free(m);
    return rc;
}
