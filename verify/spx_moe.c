/* spx_moe.c: routed expert copies (Sparse Expansion): building, attaching, forward (spx_moe.h). */
#include "spx_moe.h"

#include <stdlib.h>
#include <string.h>

#include "spx_kernels.h"
#include "spx_ops.h"

static void router_init(spx_router *r, uint32_t in_dim, uint32_t k)
{
    memset(r, 0, sizeof *r);
    r->in_dim = in_dim;
    r->k = k;
}

int spx_moe_alloc(spx_ctx *ctx, uint32_t k_up, uint32_t k_down, uint32_t dim, uint32_t ffn, spx_moe **out)
{
    int rc = 0;
    spx_moe *moe = NULL;
    *out = NULL;
    if (k_up < 1 || k_up > SPX_MOE_MAX_EXPERTS || k_down < 1 || k_down > SPX_MOE_MAX_EXPERTS)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "moe: expert counts %u (gate/up) and %u (down) must be in 1..%u", k_up, k_down,
                 SPX_MOE_MAX_EXPERTS);
    if (!dim || !ffn)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "moe: dim and ffn must be nonzero");
    moe = calloc(1, sizeof *moe);
    if (!moe)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    moe->k_up = k_up;
    moe->k_down = k_down;
    moe->gate = calloc(k_up, sizeof *moe->gate);
    moe->up = calloc(k_up, sizeof *moe->up);
    moe->down = calloc(k_down, sizeof *moe->down);
    if (!moe->gate || !moe->up || !moe->down)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    router_init(&moe->r_up, dim, k_up);
    router_init(&moe->r_down, ffn, k_down);
    *out = moe;
    moe = NULL;
done:
    spx_moe_free(moe);
    return rc;
}

int spx_moe_set_router(spx_ctx *ctx, spx_moe *moe, int which, uint32_t pca_dim, float *mean, float *proj,
                       float *centroids)
{
    int rc = 0;
    spx_router *r;
    float **slot;
    if (which != 0 && which != 1)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "moe: router %d does not exist (0: up, 1: down)", which);
    r = which ? &moe->r_down : &moe->r_up;
    if (pca_dim > r->in_dim)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "moe: %u PCA components for a %u-dimensional input", pca_dim, r->in_dim);
    if (!centroids || (pca_dim ? (!mean || !proj) : (mean || proj)))
        SPX_FAIL(ctx, rc, SPX_E_ARG, "moe: router needs centroids, and mean and proj exactly when pca_dim > 0");
    slot = moe->owned + 3 * which;
    for (int i = 0; i < 3; i++)
        free(slot[i]);
    slot[0] = mean;
    slot[1] = proj;
    slot[2] = centroids;
    r->pca_dim = pca_dim;
    r->mean = mean;
    r->proj = proj;
    r->centroids = centroids;
done:
    if (rc < 0) {
        free(mean);
        free(proj);
        free(centroids);
    }
    return rc;
}

void spx_moe_free(spx_moe *moe)
{
    if (!moe)
        return;
    for (uint32_t e = 0; e < moe->k_up; e++) {
        if (moe->gate)
            spx_linear_release(&moe->gate[e]);
        if (moe->up)
            spx_linear_release(&moe->up[e]);
    }
    for (uint32_t e = 0; moe->down && e < moe->k_down; e++)
        spx_linear_release(&moe->down[e]);
    free(moe->gate);
    free(moe->up);
    free(moe->down);
    for (int i = 0; i < 6; i++)
        free(moe->owned[i]);
    spx_router_fold_free(moe->fold[0]);
    spx_router_fold_free(moe->fold[1]);
    free(moe);
}

static int check_router(spx_ctx *ctx, uint32_t layer, const char *which, const spx_router *r, uint32_t in_dim,
                        uint32_t k)
{
    if (r->in_dim != in_dim || r->k != k || !r->centroids || r->pca_dim > in_dim ||
        (r->pca_dim && (!r->mean || !r->proj)))
        return spx_err_set(ctx, SPX_E_ARG, "moe attach: block %u: the %s router is incomplete or sized for input %u "
                           "and %u experts (want %u and %u)", layer, which, r->in_dim, r->k, in_dim, k);
    return 0;
}

static int check_expert(spx_ctx *ctx, uint32_t layer, const char *base, uint32_t e, const spx_linear *l, uint32_t rows,
                        uint32_t cols, int want)
{
    if (!want) {
        if (spx_linear_present(l))
            return spx_err_set(ctx, SPX_E_SHAPE, "moe attach: block %u: %s expert %u given for a non-gated FFN",
                               layer, base, e);
        return 0;
    }
    if (!spx_linear_present(l) || l->rows != rows || l->cols != cols)
        return spx_err_set(ctx, SPX_E_SHAPE, "moe attach: block %u: %s expert %u is %s [%u x %u], want [%u x %u]",
                           layer, base, e, spx_linear_present(l) ? "shaped" : "missing", l->rows, l->cols, rows, cols);
    return 0;
}

int spx_moe_fold_routers(spx_ctx *ctx, spx_moe *moe, uint32_t layer)
{
    int rc = 0;
    for (int w = 0; w < 2; w++) {
        const spx_router *r = w ? &moe->r_down : &moe->r_up;
        spx_router_fold_free(moe->fold[w]);   /* the routers may have changed since */
        moe->fold[w] = NULL;
        if (spx_router_fold_worth(r) && spx_router_fold_new(r, &moe->fold[w]) == -2)   /* -1: exact route only */
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "block %u: out of memory folding the %s router", layer,
                     w ? "down" : "gate/up");
    }
done:
    return rc;
}

int spx_moe_attach(spx_ctx *ctx, spx_model *m, uint32_t layer, spx_moe *moe)
{
    int rc = 0;
    const spx_model_config *c = &m->cfg;
    spx_layer *L;
    if (layer >= c->n_layers || !moe)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "moe attach: layer %u out of range (%u layers) or no moe", layer, c->n_layers);
    SPX_TRY(rc, check_router(ctx, layer, "gate/up", &moe->r_up, c->dim, moe->k_up));
    SPX_TRY(rc, check_router(ctx, layer, "down", &moe->r_down, c->ffn_dim, moe->k_down));
    for (uint32_t e = 0; e < moe->k_up; e++) {
        SPX_TRY(rc, check_expert(ctx, layer, "ffn_gate", e, &moe->gate[e], c->ffn_dim, c->dim, c->gated));
        SPX_TRY(rc, check_expert(ctx, layer, "ffn_up", e, &moe->up[e], c->ffn_dim, c->dim, 1));
    }
    for (uint32_t e = 0; e < moe->k_down; e++)
        SPX_TRY(rc, check_expert(ctx, layer, "ffn_down", e, &moe->down[e], c->dim, c->ffn_dim, 1));
    SPX_TRY(rc, spx_moe_fold_routers(ctx, moe, layer));
    L = &m->layers[layer];
    if (L->moe == moe)
        goto done;
    spx_linear_release(&L->gate);
    spx_linear_release(&L->up);
    spx_linear_release(&L->down);
    spx_moe_free(L->moe);
    spx_gate_free(L->gating);
    L->gating = NULL;
    L->moe = moe;
done:
    return rc;
}

/* ---- forward -------------------------------------------------------------------------------- */

/* Stable counting sort of labels[n] (< k): idx lists the tokens of expert e, in token order, at
 * idx[start[e] .. start[e+1]). */
static void group(const uint32_t *lab, size_t n, uint32_t k, uint32_t *start, uint32_t *idx)
{
    uint32_t fill[SPX_MOE_MAX_EXPERTS];
    memset(start, 0, (k + 1) * sizeof *start);
    for (size_t t = 0; t < n; t++)
        start[lab[t] + 1]++;
    for (uint32_t e = 0; e < k; e++) {
        start[e + 1] += start[e];
        fill[e] = start[e];
    }
    for (size_t t = 0; t < n; t++)
        idx[fill[lab[t]]++] = (uint32_t)t;
}

static void gather(const float *X, size_t cols, const uint32_t *idx, size_t ne, float *out)
{
    for (size_t i = 0; i < ne; i++)
        memcpy(out + i * cols, X + (size_t)idx[i] * cols, cols * sizeof(float));
}

static void scatter(const float *Y, size_t cols, const uint32_t *idx, size_t ne, float *out)
{
    for (size_t i = 0; i < ne; i++)
        memcpy(out + (size_t)idx[i] * cols, Y + i * cols, cols * sizeof(float));
}

int spx_expert_reserve(spx_ctx *ctx, const spx_model *model, spx_state *s, uint32_t layer, size_t n)
{
    int rc = 0;
    const spx_layer *L = &model->layers[layer];
    const size_t dim = model->cfg.dim, ffn = model->cfg.ffn_dim, wide = dim > ffn ? dim : ffn;
    spx_expert_scratch *ex = &s->ex;
    size_t in = 0, a = 0, b = 0, y = 0, e = 0;
    if (L->moe) {
        in = a = wide;   /* router projection (rdim <= in_dim) and gathered rows; gate / down outputs */
        b = ffn;         /* up outputs */
    } else if (L->gating) {
        const spx_gate *g = L->gating;
        size_t B = g->block, h = g->hidden;
        in = dim;                      /* gathered rows */
        a = dim + (h > B ? h : B);     /* router work (normalised input + hidden); gate block outputs */
        b = B;                         /* block hidden */
        y = dim;                       /* block down outputs */
        e = g->n_experts;              /* scores, selection */
        SPX_TRY(rc, spx_ops_reserve(ctx, (void **)&ex->ord, &ex->ord_cap, 2 * e, sizeof(uint32_t)));
    } else {
        goto done;
    }
    SPX_TRY(rc, spx_ops_reserve(ctx, (void **)&ex->in, &ex->in_cap, n * in, sizeof(float)));
    SPX_TRY(rc, spx_ops_reserve(ctx, (void **)&ex->a, &ex->a_cap, n * a, sizeof(float)));
    SPX_TRY(rc, spx_ops_reserve(ctx, (void **)&ex->b, &ex->b_cap, n * b, sizeof(float)));
    SPX_TRY(rc, spx_ops_reserve(ctx, (void **)&ex->y, &ex->y_cap, n * y, sizeof(float)));
    SPX_TRY(rc, spx_ops_reserve(ctx, (void **)&ex->sc, &ex->sc_cap, n * e, sizeof(float)));
    SPX_TRY(rc, spx_ops_reserve(ctx, (void **)&ex->sel, &ex->sel_cap, n * e, 1));
    SPX_TRY(rc, spx_ops_reserve(ctx, (void **)&ex->lab, &ex->lab_cap, n, sizeof(uint32_t)));
    SPX_TRY(rc, spx_ops_reserve(ctx, (void **)&ex->idx, &ex->idx_cap, n, sizeof(uint32_t)));
done:
    return rc;
}

/* Routing on the kernel pool. Folded routers (spx_route_fold.h: k dot products per token) are
 * split by tokens once a call reads SPX_ROUTE_PAR_BYTES of folded vectors; a single token runs on
 * the caller (splitting its 24-64 KiB of cold vectors over 2 threads measured no faster: the pool
 * hand-off costs what the second core saves). Without a fold the projection reads the router's
 * [pca_dim x in_dim] fp32 matrix once per call (512 KiB for pca 64 x ffn 2048), so from
 * SPX_ROUTE_PAR_BYTES up it is split: by blocks of 4 projection rows for one token, by tokens for
 * several. Every projection row is computed by the same code whatever the split (spx_route.c sums
 * each row in a fixed lane order), so the labels are the same bits. */
#define SPX_ROUTE_PAR_BYTES (256u * 1024u)

typedef struct route_job {
    const spx_router *r;
    const spx_router_fold *fold;
    const float *X;   /* [n x in_dim] */
    size_t n;
    float *Y;         /* [n x pca_dim] */
    uint32_t *labels; /* [n] (fold only) */
} route_job;

static void route_task(void *arg, unsigned part, unsigned nparts)
{
    const route_job *j = arg;
    const spx_router *r = j->r;
    if (j->n == 1 && !j->fold) {
        uint32_t blocks = (r->pca_dim + 3) / 4;
        uint32_t j0 = 4 * (uint32_t)((uint64_t)blocks * part / nparts);
        uint32_t j1 = 4 * (uint32_t)((uint64_t)blocks * (part + 1) / nparts);
        spx_router sub = *r;
        if (j1 > r->pca_dim)
            j1 = r->pca_dim;
        if (j1 <= j0)
            return;
        sub.pca_dim = j1 - j0;
        sub.proj = r->proj + (size_t)j0 * r->in_dim;
        spx_router_project(&sub, j->X, 1, j->Y + j0);
    } else {   /* by tokens */
        size_t t0 = j->n * part / nparts, t1 = j->n * (part + 1) / nparts;
        if (t1 <= t0)
            return;
        if (j->fold)
            spx_router_fold_assign(r, j->fold, j->X + t0 * r->in_dim, t1 - t0, j->Y + t0 * r->pca_dim,
                                   j->labels + t0);
        else
            spx_router_project(r, j->X + t0 * r->in_dim, t1 - t0, j->Y + t0 * r->pca_dim);
    }
}

void spx_moe_route(const spx_router *r, const spx_router_fold *fold, const float *X, size_t n, float *Y,
                   uint32_t *labels)
{
    unsigned np = (unsigned)spx_kern_threads();
    if (r->k == 1) {   /* one centroid is the nearest of every input (NaN included): nothing to compute */
        memset(labels, 0, n * sizeof *labels);
        return;
    }
    size_t cap = fold || n > 1 ? n : (r->pca_dim + 3) / 4;   /* parts: tokens, or row blocks */
    size_t work = fold ? (size_t)fold->k * r->in_dim * sizeof(float) * n
                       : (size_t)r->pca_dim * r->in_dim * sizeof(float);
    if (fold && (np < 2 || n < 2 || work < SPX_ROUTE_PAR_BYTES)) {
        spx_router_fold_assign(r, fold, X, n, Y, labels);
        return;
    }
    if (r->pca_dim == 0 || np < 2 || work < SPX_ROUTE_PAR_BYTES) {
        spx_router_assign(r, X, n, Y, labels);
        return;
    }
    if (np > cap)
        np = (unsigned)cap;
    route_job j = {r, fold, X, n, Y, labels};
    spx_kern_pool_run(np, route_task, &j);
    if (!fold)
        spx_router_nearest(r, Y, n, labels);
}

/* ---- decode: gate/up expert fused with the down routing ---------------------------------------
 * One token's down routing reads k x ffn folded floats that the weights streamed since the last
 * token have evicted (~4 us per block on one core). Fused, each pool thread computes its rows of
 * gate/up, the activation, and the fold's partial sums over those same rows, so the router data is
 * fetched by every thread alongside its weights and the caller only adds k + 1 partials per part.
 * Rows go to threads in blocks of 8 (the fold's blocks); every row and activation is computed by
 * the same kernels as spx_linear_forward's (any split gives the same bits), and the label is exact
 * whatever the split (spx_route_fold.h). */
#define SPX_FUSE_MAX_PARTS 8u

typedef struct fused_job {
    const spx_linear *gate, *up;   /* gate NULL for a non-gated FFN */
    const spx_router *r;
    const spx_router_fold *f;
    const float *x;                /* [dim] */
    float *g, *h;                  /* [ffn]: gate outputs; up outputs, then the hidden activation */
    int act, gated;
    double *acc;                   /* [parts x (k + 1)] */
} fused_job;

static void fused_task(void *arg, unsigned part, unsigned nparts)
{
    const fused_job *j = arg;
    const uint32_t nblk = j->f->nblk, ffn = j->up->rows;
    const uint32_t b0 = (uint32_t)((uint64_t)nblk * part / nparts);
    const uint32_t b1 = (uint32_t)((uint64_t)nblk * (part + 1) / nparts);
    const uint32_t r0 = 8 * b0, r1 = 8 * b1 < ffn ? 8 * b1 : ffn;
    if (r0 < r1) {
        if (j->gate)
            spx_linear_forward_rows(j->gate, j->x, j->g, r0, r1);
        spx_linear_forward_rows(j->up, j->x, j->h, r0, r1);
        spx_ops_act(j->act, j->gated, j->g + r0, j->h + r0, r1 - r0);
    }
    spx_router_fold_part(j->r, j->f, j->h, b0, b1, j->acc + (size_t)part * (j->r->k + 1));
}

/* s->up = act(gate_e x) * up_e x for one token and, when it can be fused, the down label; returns
 * 1 when it ran fused (label written), 0 when the caller must run the expert and route itself. */
static int fused_up(const spx_model *model, spx_state *s, const spx_moe *moe, uint32_t e, uint32_t *label)
{
    const spx_model_config *c = &model->cfg;
    const spx_linear *G = c->gated ? &moe->gate[e] : NULL, *U = &moe->up[e];
    const spx_router_fold *f = moe->fold[1];
    double acc[SPX_FUSE_MAX_PARTS * (SPX_MOE_MAX_EXPERTS + 1)];   /* fold->k <= 256 */
    unsigned np = (unsigned)spx_kern_threads();
    if (!f || !spx_linear_rows_native(U) || (G && !spx_linear_rows_native(G)))
        return 0;
    if (np > SPX_FUSE_MAX_PARTS)
        np = SPX_FUSE_MAX_PARTS;
    if (np > f->nblk)
        np = f->nblk;
    if (spx_kmat_bytes(U->km) + (G ? spx_kmat_bytes(G->km) : 0) < spx_kern_min_parallel())
        np = 1;
    fused_job j = {G, U, &moe->r_down, f, s->xn, s->gate, s->up, c->act, c->gated, acc};
    spx_kern_pool_run(np, fused_task, &j);
    spx_router_fold_finish(&moe->r_down, f, s->up, acc, np, s->ex.in, label);
    s->moe_fused++;
    return 1;
}

/* gate/up experts: h = act(gate_e m) * up_e m into s->up [n x ffn], tokens grouped by ex->lab. A
 * group with every token runs in place on s->xn / s->gate / s->up, exactly as the dense path does. */
static void up_experts(const spx_model *model, spx_state *s, const spx_moe *moe, size_t n)
{
    const spx_model_config *c = &model->cfg;
    const size_t dim = c->dim, ffn = c->ffn_dim;
    spx_expert_scratch *ex = &s->ex;
    uint32_t start[SPX_MOE_MAX_EXPERTS + 1];
    group(ex->lab, n, moe->k_up, start, ex->idx);
    for (uint32_t e = 0; e < moe->k_up; e++) {
        const uint32_t *idx = ex->idx + start[e];
        size_t ne = start[e + 1] - start[e];
        if (ne == 0)
            continue;
        if (ne == n) {
            if (c->gated)
                spx_linear_forward(&moe->gate[e], s->xn, n, s->gate);
            spx_linear_forward(&moe->up[e], s->xn, n, s->up);
            spx_ops_act(c->act, c->gated, s->gate, s->up, n * ffn);
        } else {
            gather(s->xn, dim, idx, ne, ex->in);
            if (c->gated)
                spx_linear_forward(&moe->gate[e], ex->in, ne, ex->a);
            spx_linear_forward(&moe->up[e], ex->in, ne, ex->b);
            spx_ops_act(c->act, c->gated, ex->a, ex->b, ne * ffn);
            scatter(ex->b, ffn, idx, ne, s->up);
        }
    }
}

void spx_moe_mlp(const spx_model *model, spx_state *s, uint32_t layer, size_t n, const spx_forward_hooks *hooks)
{
    const spx_model_config *c = &model->cfg;
    const spx_moe *moe = model->layers[layer].moe;
    const size_t dim = c->dim, ffn = c->ffn_dim;
    spx_expert_scratch *ex = &s->ex;
    uint32_t start[SPX_MOE_MAX_EXPERTS + 1], down_label = 0;
    int fused = 0;

    spx_moe_route(&moe->r_up, moe->fold[0], s->xn, n, ex->in, ex->lab);
    if (s->route_hook)
        s->route_hook(s->route_ud, layer, 0, ex->lab, n);
    if (n == 1)
        fused = fused_up(model, s, moe, ex->lab[0], &down_label);
    if (!fused)
        up_experts(model, s, moe, n);
    if (hooks && hooks->mlp_hidden)
        hooks->mlp_hidden(hooks->ud, layer, s->up, n);

    /* down: y = down_f h into s->tmp [n x dim] */
    if (fused)
        ex->lab[0] = down_label;
    else
        spx_moe_route(&moe->r_down, moe->fold[1], s->up, n, ex->in, ex->lab);
    if (s->route_hook)
        s->route_hook(s->route_ud, layer, 1, ex->lab, n);
    group(ex->lab, n, moe->k_down, start, ex->idx);
    for (uint32_t e = 0; e < moe->k_down; e++) {
        const uint32_t *idx = ex->idx + start[e];
        size_t ne = start[e + 1] - start[e];
        if (ne == 0)
            continue;
        if (ne == n) {
            spx_linear_forward(&moe->down[e], s->up, n, s->tmp);
        } else {
            gather(s->up, ffn, idx, ne, ex->in);
            spx_linear_forward(&moe->down[e], ex->in, ne, ex->a);
            scatter(ex->a, dim, idx, ne, s->tmp);
        }
    }
}
