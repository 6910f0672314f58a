/* spx_model_experts.c: loading expanded and gated blocks from a .spx file (conventions in
 * specs/spx-format.md, "Expanded MLPs (Sparse Expansion)" and "Gated neuron experts"), and the
 * per-token work estimates of spx_moe.h. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_moe.h"

#define NAME_CAP (SPX_NAME_MAX + 32)

static const spx_tensor *findf(const spx_file *f, char *name, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Look up the tensor named by fmt; the name stays in `name` (NAME_CAP bytes) for messages. */
static const spx_tensor *findf(const spx_file *f, char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, NAME_CAP, fmt, ap);
    va_end(ap);
    return spx_file_find(f, name);
}

int spx_file_block_expanded(const spx_file *f, uint32_t layer)
{
    char name[NAME_CAP];
    return findf(f, name, "blk.%u.ffn_up.router.centroids", layer) != NULL;
}

static int shape_err(spx_ctx *ctx, const spx_file *f, const spx_tensor *t, const char *want)
{
    return spx_err_set(ctx, SPX_E_SHAPE, "%s: tensor '%s' has shape [%llu%s%llu] (ndim %u), expected %s",
                       spx_file_path(f), t->name, (unsigned long long)t->dims[0], t->ndim > 1 ? ", " : "",
                       t->ndim > 1 ? (unsigned long long)t->dims[1] : 0ull, (unsigned)t->ndim, want);
}

/* ---- expanded blocks ------------------------------------------------------------------------ */

typedef struct router_desc {
    const spx_tensor *mean, *proj, *cent;
    uint32_t pca_dim, k;
} router_desc;

/* Tensors and sizes of router `base` (ffn_up / ffn_down) of block l over in_dim inputs. */
static int router_shapes(spx_ctx *ctx, const spx_file *f, uint32_t l, const char *base, uint32_t in_dim,
                         router_desc *r)
{
    char nc[NAME_CAP], nm[NAME_CAP], np[NAME_CAP], want[64];
    uint32_t rdim;
    r->cent = findf(f, nc, "blk.%u.%s.router.centroids", l, base);
    r->mean = findf(f, nm, "blk.%u.%s.router.mean", l, base);
    r->proj = findf(f, np, "blk.%u.%s.router.proj", l, base);
    if (!r->cent)
        return spx_err_set(ctx, SPX_E_MISSING, "%s: block %u is expanded (blk.%u.ffn_up.router.centroids) but '%s' is "
                           "missing", spx_file_path(f), l, l, nc);
    if (!r->mean != !r->proj)
        return spx_err_set(ctx, SPX_E_MISSING, "%s: '%s' is present without '%s'", spx_file_path(f),
                           r->mean ? nm : np, r->mean ? np : nm);
    r->pca_dim = 0;
    if (r->proj) {
        if (r->proj->ndim != 2 || r->proj->dims[1] != in_dim || r->proj->dims[0] < 1 || r->proj->dims[0] > in_dim) {
            snprintf(want, sizeof want, "[p, %u] with 1 <= p <= %u", in_dim, in_dim);
            return shape_err(ctx, f, r->proj, want);
        }
        r->pca_dim = (uint32_t)r->proj->dims[0];
        if (r->mean->ndim != 1 || r->mean->dims[0] != in_dim) {
            snprintf(want, sizeof want, "[%u]", in_dim);
            return shape_err(ctx, f, r->mean, want);
        }
    }
    rdim = r->pca_dim ? r->pca_dim : in_dim;
    if (r->cent->ndim != 2 || r->cent->dims[1] != rdim || r->cent->dims[0] < 1 ||
        r->cent->dims[0] > SPX_MOE_MAX_EXPERTS) {
        snprintf(want, sizeof want, "[K, %u] with 1 <= K <= %u", rdim, SPX_MOE_MAX_EXPERTS);
        return shape_err(ctx, f, r->cent, want);
    }
    r->k = (uint32_t)r->cent->dims[0];
    return 0;
}

/* Router data into moe (in place from the map when F32, else owned decoded copies). */
static int router_load(spx_ctx *ctx, const spx_file *f, const router_desc *d, spx_moe *moe, int which)
{
    int rc = 0;
    spx_router *r = which ? &moe->r_down : &moe->r_up;
    float **slot = moe->owned + 3 * which;
    uint32_t rdim = d->pca_dim ? d->pca_dim : r->in_dim;
    r->pca_dim = d->pca_dim;
    if (d->proj) {
        SPX_TRY(rc, spx_tensor_load_f32(ctx, f, d->mean, r->in_dim, 0, &r->mean, &slot[0]));
        SPX_TRY(rc, spx_tensor_load_f32(ctx, f, d->proj, (uint64_t)d->pca_dim * r->in_dim, 0, &r->proj, &slot[1]));
    }
    SPX_TRY(rc, spx_tensor_load_f32(ctx, f, d->cent, (uint64_t)d->k * rdim, 0, &r->centroids, &slot[2]));
done:
    return rc;
}

static int expert_load(spx_ctx *ctx, const spx_model *m, uint32_t l, const char *base, uint32_t e, uint32_t k,
                       uint32_t rows, uint32_t cols, int copy, spx_linear *lin)
{
    char nw[NAME_CAP], nb[NAME_CAP];
    const spx_tensor *w = findf(m->file, nw, "blk.%u.%s.%u.weight", l, base, e);
    const spx_tensor *b = findf(m->file, nb, "blk.%u.%s.%u.bias", l, base, e);
    if (!w)
        return spx_err_set(ctx, SPX_E_MISSING, "%s: expanded block %u: expert tensor '%s' is missing (%u experts)",
                           spx_file_path(m->file), l, nw, k);
    if (!b && m->cfg.ffn_bias)
        return spx_err_set(ctx, SPX_E_MISSING, "%s: expanded block %u: expert bias '%s' is missing (spx.ffn.bias)",
                           spx_file_path(m->file), l, nb);
    return spx_linear_load(ctx, m->file, w, b, rows, cols, copy, lin);
}

/* spx.expand.* metadata of an expanded file: experts (required), expert_count and routing. */
static int expand_meta(spx_ctx *ctx, const spx_model *m, uint32_t *experts)
{
    int rc = 0;
    char key[SPX_ARCH_NAME_MAX + 32];
    const char *routing = NULL;
    size_t len = 0;
    uint32_t count;
    SPX_TRY(rc, spx_meta_get_u32(ctx, m->file, "spx.expand.experts", experts));
    snprintf(key, sizeof key, "%s.expert_count", m->cfg.arch);
    if (spx_file_meta_find(m->file, key)) {
        SPX_TRY(rc, spx_meta_get_u32(ctx, m->file, key, &count));
        if (count != *experts)
            SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: expert count mismatch: %s = %u but spx.expand.experts = %u",
                     spx_file_path(m->file), key, count, *experts);
    }
    if (spx_file_meta_find(m->file, "spx.expand.routing")) {
        SPX_TRY(rc, spx_meta_get_str(ctx, m->file, "spx.expand.routing", &routing, &len));
        if (strcmp(routing, "pca_nearest_centroid") != 0)
            SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: spx.expand.routing '%s' is not supported (pca_nearest_centroid)",
                     spx_file_path(m->file), routing);
    }
done:
    return rc;
}

int spx_model_load_moe(spx_ctx *ctx, spx_model *m, uint32_t l, int copy)
{
    int rc = 0;
    const spx_model_config *c = &m->cfg;
    const spx_file *f = m->file;
    static const char *const dense[] = {"ffn_gate", "ffn_up", "ffn_down"};
    char name[NAME_CAP];
    router_desc ru, rd;
    uint32_t experts = 0;
    spx_moe *moe = NULL;
    for (int i = 0; i < 3; i++)
        if (findf(f, name, "blk.%u.%s.weight", l, dense[i]))
            SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: block %u is expanded (blk.%u.ffn_up.router.centroids) but also holds "
                     "the dense '%s'", spx_file_path(f), l, l, name);
    if (findf(f, name, "blk.%u.ffn_router.w1", l))
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: block %u is both expanded and gated ('%s')", spx_file_path(f), l, name);
    SPX_TRY(rc, expand_meta(ctx, m, &experts));
    SPX_TRY(rc, router_shapes(ctx, f, l, "ffn_up", c->dim, &ru));
    SPX_TRY(rc, router_shapes(ctx, f, l, "ffn_down", c->ffn_dim, &rd));
    if (ru.k != experts || rd.k != experts)
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: expert count mismatch in block %u: %u gate/up and %u down centroids, "
                 "spx.expand.experts = %u", spx_file_path(f), l, ru.k, rd.k, experts);
    SPX_TRY(rc, spx_moe_alloc(ctx, ru.k, rd.k, c->dim, c->ffn_dim, &moe));
    SPX_TRY(rc, router_load(ctx, f, &ru, moe, 0));
    SPX_TRY(rc, router_load(ctx, f, &rd, moe, 1));
    for (uint32_t e = 0; e < moe->k_up; e++) {
        if (c->gated)
            SPX_TRY(rc, expert_load(ctx, m, l, "ffn_gate", e, moe->k_up, c->ffn_dim, c->dim, copy, &moe->gate[e]));
        SPX_TRY(rc, expert_load(ctx, m, l, "ffn_up", e, moe->k_up, c->ffn_dim, c->dim, copy, &moe->up[e]));
    }
    for (uint32_t e = 0; e < moe->k_down; e++)
        SPX_TRY(rc, expert_load(ctx, m, l, "ffn_down", e, moe->k_down, c->dim, c->ffn_dim, copy, &moe->down[e]));
    SPX_TRY(rc, spx_moe_fold_routers(ctx, moe, l));
    spx_moe_free(m->layers[l].moe);
    m->layers[l].moe = moe;
    moe = NULL;
done:
    spx_moe_free(moe);
    return rc;
}

/* "blk.{l}.ffn_{gate,up,down}.{e}.<anything>" -> layer, which (0 gate, 1 up, 2 down), e. */
static int parse_expert_name(const char *s, uint32_t *layer, int *which, uint32_t *e)
{
    static const char *const bases[] = {"ffn_gate.", "ffn_up.", "ffn_down."};
    unsigned long long v = 0;
    const char *p = s + 4;
    if (strncmp(s, "blk.", 4) != 0 || *p < '0' || *p > '9')
        return 0;
    for (; *p >= '0' && *p <= '9' && v <= 0xFFFFFFFFull; p++)
        v = v * 10 + (unsigned)(*p - '0');
    if (*p++ != '.' || v > 0xFFFFFFFFull)
        return 0;
    *layer = (uint32_t)v;
    for (*which = 0; *which < 3; (*which)++)
        if (strncmp(p, bases[*which], strlen(bases[*which])) == 0)
            break;
    if (*which == 3)
        return 0;
    p += strlen(bases[*which]);
    if (*p < '0' || *p > '9')
        return 0;
    for (v = 0; *p >= '0' && *p <= '9' && v <= 0xFFFFFFFFull; p++)
        v = v * 10 + (unsigned)(*p - '0');
    if (*p != '.' || v > 0xFFFFFFFFull)
        return 0;
    *e = (uint32_t)v;
    return 1;
}

int spx_file_check_unrouted(spx_ctx *ctx, const spx_file *f, uint32_t n_layers)
{
    for (uint32_t i = 0; i < spx_file_tensor_count(f); i++) {
        const spx_tensor *t = spx_file_tensor(f, i);
        uint32_t l, e;
        int which;
        if (parse_expert_name(t->name, &l, &which, &e) && l < n_layers && !spx_file_block_expanded(f, l))
            return spx_err_set(ctx, SPX_E_MISSING, "%s: tensor '%s' is an expert of block %u, which has no router "
                               "(blk.%u.ffn_up.router.centroids missing)", spx_file_path(f), t->name, l, l);
    }
    return 0;
}

/* Expert indices beyond a block's expert count are errors (the runtime would ignore them). */
static int check_stray_experts(spx_ctx *ctx, const spx_model *m)
{
    for (uint32_t i = 0; i < spx_file_tensor_count(m->file); i++) {
        const spx_tensor *t = spx_file_tensor(m->file, i);
        uint32_t l, e, k;
        int which;
        const spx_moe *moe;
        if (!parse_expert_name(t->name, &l, &which, &e) || l >= m->cfg.n_layers || !(moe = m->layers[l].moe))
            continue;
        k = which == 2 ? moe->k_down : moe->k_up;
        if (e >= k)
            return spx_err_set(ctx, SPX_E_SHAPE, "%s: expert count mismatch: tensor '%s' has expert index %u but block "
                               "%u has %u experts (spx.expand.experts)", spx_file_path(m->file), t->name, e, l, k);
    }
    return 0;
}

/* ---- gated blocks --------------------------------------------------------------------------- */

typedef struct gate_meta {
    int kind, input_norm;
    uint32_t experts, top_k;
    double tau, threshold;
} gate_meta;

static int gate_meta_read(spx_ctx *ctx, const spx_model *m, gate_meta *gm)
{
    int rc = 0;
    const char *path = spx_file_path(m->file), *kind = NULL;
    size_t len = 0;
    memset(gm, 0, sizeof *gm);
    SPX_TRY(rc, spx_meta_get_str(ctx, m->file, "spx.gate.kind", &kind, &len));
    gm->kind = spx_gate_kind_parse(kind);
    if (gm->kind < 0)
        SPX_FAIL(ctx, rc, SPX_E_META, "%s: metadata key 'spx.gate.kind' has unknown value '%s' (moe, dsti, lte)", path,
                 kind);
    SPX_TRY(rc, spx_meta_get_u32(ctx, m->file, "spx.gate.experts", &gm->experts));
    if (!gm->experts || m->cfg.ffn_dim % gm->experts)
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: spx.gate.experts = %u does not divide the FFN width %u", path, gm->experts,
                 m->cfg.ffn_dim);
    if (spx_file_meta_find(m->file, "spx.gate.input_norm"))
        SPX_TRY(rc, spx_meta_get_bool(ctx, m->file, "spx.gate.input_norm", &gm->input_norm));
    if (gm->kind == SPX_GATE_MOE) {
        SPX_TRY(rc, spx_meta_get_u32(ctx, m->file, "spx.gate.top_k", &gm->top_k));
        if (gm->top_k < 1 || gm->top_k > gm->experts)
            SPX_FAIL(ctx, rc, SPX_E_META, "%s: spx.gate.top_k = %u not in 1..%u", path, gm->top_k, gm->experts);
    } else if (gm->kind == SPX_GATE_DSTI) {
        SPX_TRY(rc, spx_meta_get_f64(ctx, m->file, "spx.gate.tau", &gm->tau));
        if (!(gm->tau > 0.0 && gm->tau <= 1.0))
            SPX_FAIL(ctx, rc, SPX_E_META, "%s: spx.gate.tau = %g not in (0, 1]", path, gm->tau);
    } else {
        SPX_TRY(rc, spx_meta_get_f64(ctx, m->file, "spx.gate.threshold", &gm->threshold));
        if (!isfinite(gm->threshold))
            SPX_FAIL(ctx, rc, SPX_E_META, "%s: spx.gate.threshold is not finite", path);
    }
done:
    return rc;
}

/* A router linear blk.{l}.ffn_router.{w,b}{i}: weight [rows x cols] (rows 0: any in 1..65536),
 * bias [rows]; both required. */
static int router_linear(spx_ctx *ctx, const spx_model *m, uint32_t l, int i, uint32_t rows, uint32_t cols,
                         spx_linear *lin)
{
    char nw[NAME_CAP], nb[NAME_CAP], want[64];
    const spx_tensor *w = findf(m->file, nw, "blk.%u.ffn_router.w%d", l, i);
    const spx_tensor *b = findf(m->file, nb, "blk.%u.ffn_router.b%d", l, i);
    if (!w || !b)
        return spx_err_set(ctx, SPX_E_MISSING, "%s: gated block %u: router tensor '%s' is missing",
                           spx_file_path(m->file), l, w ? nb : nw);
    if (!rows) {
        if (w->ndim != 2 || w->dims[0] < 1 || w->dims[0] > 65536) {
            snprintf(want, sizeof want, "[h, %u] with 1 <= h <= 65536", cols);
            return shape_err(ctx, m->file, w, want);
        }
        rows = (uint32_t)w->dims[0];
    }
    return spx_linear_load(ctx, m->file, w, b, rows, cols, 0, lin);
}

static int gate_load(spx_ctx *ctx, spx_model *m, uint32_t l, const gate_meta *gm)
{
    int rc = 0;
    const spx_model_config *c = &m->cfg;
    char name[NAME_CAP];
    spx_gate *g = NULL;
    spx_linear w1, w2;
    memset(&w1, 0, sizeof w1);
    memset(&w2, 0, sizeof w2);
    SPX_TRY(rc, router_linear(ctx, m, l, 1, gm->kind == SPX_GATE_LTE ? gm->experts : 0, c->dim, &w1));
    if (gm->kind != SPX_GATE_LTE)
        SPX_TRY(rc, router_linear(ctx, m, l, 2, gm->experts, w1.rows, &w2));
    else if (findf(m->file, name, "blk.%u.ffn_router.w2", l) || findf(m->file, name, "blk.%u.ffn_router.b2", l))
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: gated block %u: an lte router has one layer, '%s' is not expected",
                 spx_file_path(m->file), l, name);
    SPX_TRY(rc, spx_gate_alloc(ctx, gm->kind, gm->experts, c->dim, c->ffn_dim, w1.rows, &g));
    g->w1 = w1;
    g->w2 = w2;
    memset(&w1, 0, sizeof w1);
    memset(&w2, 0, sizeof w2);
    g->top_k = gm->top_k ? gm->top_k : 1;
    g->tau = gm->kind == SPX_GATE_DSTI ? (float)gm->tau : 1.0f;
    g->threshold = (float)gm->threshold;
    g->input_norm = gm->input_norm;
    SPX_TRY(rc, spx_gate_attach(ctx, m, l, g));
    g = NULL;
done:
    spx_linear_release(&w1);
    spx_linear_release(&w2);
    spx_gate_free(g);
    return rc;
}

int spx_model_load_experts_finish(spx_ctx *ctx, spx_model *m, int copy)
{
    int rc = 0, have_meta = 0;
    char name[NAME_CAP];
    gate_meta gm;
    (void)copy;   /* router weights are never modified in place */
    SPX_TRY(rc, check_stray_experts(ctx, m));
    for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
        if (!findf(m->file, name, "blk.%u.ffn_router.w1", l))
            continue;
        if (!have_meta)
            SPX_TRY(rc, gate_meta_read(ctx, m, &gm));
        have_meta = 1;
        SPX_TRY(rc, gate_load(ctx, m, l, &gm));
    }
done:
    return rc;
}

/* ---- work estimates ------------------------------------------------------------------------- */

static double lin_dense(const spx_linear *l)
{
    return spx_linear_present(l) ? 2.0 * (double)l->rows * (double)l->cols : 0.0;
}

static double lin_sparse(const spx_linear *l)
{
    return spx_linear_present(l) ? 2.0 * (double)l->nnz : 0.0;
}

static double router_flops(const spx_router *r)
{
    double rdim = (double)spx_router_rdim(r), f = 3.0 * (double)r->k * rdim;
    if (r->pca_dim)
        f += 2.0 * (double)r->pca_dim * (double)r->in_dim + (double)r->in_dim;
    return f;
}

/* Mean of the experts' figures: mean over e of fn(l[e]). */
static double mean_experts(const spx_linear *l, uint32_t k, double (*fn)(const spx_linear *))
{
    double s = 0.0;
    for (uint32_t e = 0; e < k; e++)
        s += fn(&l[e]);
    return k ? s / (double)k : 0.0;
}

void spx_model_flops(const spx_model *m, spx_flops *out)
{
    memset(out, 0, sizeof *out);
    out->dense = lin_dense(&m->output);
    out->sparse = lin_sparse(&m->output);
    for (uint32_t i = 0; i < m->cfg.n_layers; i++) {
        const spx_layer *L = &m->layers[i];
        const spx_linear *lin[7] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
        for (int j = 0; j < 7; j++) {
            out->dense += lin_dense(lin[j]);
            out->sparse += lin_sparse(lin[j]);
        }
        if (L->moe) {
            const spx_moe *moe = L->moe;
            out->dense += lin_dense(&moe->gate[0]) + lin_dense(&moe->up[0]) + lin_dense(&moe->down[0]);
            out->sparse += mean_experts(moe->gate, moe->k_up, lin_sparse) +
                           mean_experts(moe->up, moe->k_up, lin_sparse) +
                           mean_experts(moe->down, moe->k_down, lin_sparse);
            out->router += router_flops(&moe->r_up) + router_flops(&moe->r_down);
        }
    }
    out->expanded = out->sparse + out->router;
}

int spx_model_has_moe(const spx_model *m)
{
    for (uint32_t i = 0; i < m->cfg.n_layers; i++)
        if (m->layers[i].moe)
            return 1;
    return 0;
}

int spx_model_has_gating(const spx_model *m)
{
    for (uint32_t i = 0; i < m->cfg.n_layers; i++)
        if (m->layers[i].gating)
            return 1;
    return 0;
}
