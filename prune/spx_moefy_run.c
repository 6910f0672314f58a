/* spx_moefy_run.c: the block-by-block MoEfication driver (see spx_moefy_run.h). */
#include "spx_moefy_run.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spx_ckd.h"
#include "spx_forward.h"
#include "spx_mem.h"
#include "spx_rng.h"

void spx_moefy_opts_init(spx_moefy_opts *o, int kind)
{
    memset(o, 0, sizeof *o);
    o->experts = 8;
    o->split = SPX_SPLIT_PARAM;
    o->kmeans_init = 10;
    o->gate.kind = kind;
    o->gate.top_k = 2;
    o->gate.tau = 0.9;
    o->gate.threshold = 0.5;
    o->input_norm = 1;
    o->hidden = SPX_ROUTER_DSTI_HIDDEN;
    o->max_tokens = 65536;
    o->lte_cover = 0.9;
    spx_router_train_opts_init(&o->train, kind);
}

void spx_moefy_result_free(spx_moefy_result *r)
{
    if (!r)
        return;
    for (uint32_t l = 0; r->layers && l < r->n_layers; l++) {
        free(r->layers[l].perm);
        spx_router_free(r->layers[l].router);
    }
    free(r->layers);
    free(r);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#define CAP_CHUNK 256u

typedef struct capture {
    spx_ctx *ctx;
    int rc;
    uint32_t dim, ffn, E, B;
    const uint32_t *keep_pos;  /* [N] position of each kept token inside its window */
    const size_t *keep_off;    /* [nsamples + 1] kept tokens of window s: [keep_off[s], keep_off[s+1]) */
    uint32_t win;              /* window being run */
    float *M;                  /* [N x dim] FFN inputs, or NULL */
    float *mass;               /* [N x E] activation mass per expert, or NULL */
    float *norms;              /* [N x E] expert output norms (dsti), or NULL */
    const uint32_t *owner;     /* [ffn] expert of each original neuron */
    const uint32_t *perm;      /* [ffn] new -> old */
    const float *Wd;           /* [dim x ffn] ffn_down with permuted columns (dsti) */
    float *Ab;                 /* [CAP_CHUNK x ffn] scratch */
    float *Yb;                 /* [CAP_CHUNK x dim] scratch */
    double *acc;               /* [E] scratch */
    spx_coact *coact;          /* co-activation pass, or NULL */
} capture;

static int kept_range(capture *c, size_t n, size_t *k0, size_t *k1)
{
    *k0 = c->keep_off[c->win];
    *k1 = c->keep_off[c->win + 1];
    if (*k1 > *k0 && c->keep_pos[*k1 - 1] >= n) {
        c->rc = spx_err_set(c->ctx, SPX_E_INTERNAL, "moefy: kept position %u beyond the %zu tokens of a window",
                            c->keep_pos[*k1 - 1], n);
        return -1;
    }
    return 0;
}

static void hook_input(void *ud, uint32_t layer, const float *x, size_t n)
{
    capture *c = ud;
    size_t k0, k1;
    (void)layer;
    if (!c->M || c->rc < 0 || kept_range(c, n, &k0, &k1) < 0)
        return;
    for (size_t k = k0; k < k1; k++)
        memcpy(c->M + k * c->dim, x + (size_t)c->keep_pos[k] * c->dim, c->dim * sizeof(float));
}

static void hidden_norms(capture *c, const float *h, size_t k0, size_t k1)
{
    const size_t f = c->ffn;
    for (size_t r0 = k0; r0 < k1; r0 += CAP_CHUNK) {
        size_t nb = k1 - r0 < CAP_CHUNK ? k1 - r0 : CAP_CHUNK;
        for (size_t r = 0; r < nb; r++) {
            const float *a = h + (size_t)c->keep_pos[r0 + r] * f;
            for (size_t i = 0; i < f; i++)
                c->Ab[r * f + i] = a[c->perm[i]];
        }
        for (uint32_t e = 0; e < c->E; e++) {
            /* Yb [nb x dim] = Ab[:, block e] Wd[:, block e]^T: the expert's contribution to the output */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)c->dim, (int)c->B, 1.0f,
                        c->Ab + (size_t)e * c->B, (int)f, c->Wd + (size_t)e * c->B, (int)f, 0.0f, c->Yb, (int)c->dim);
            for (size_t r = 0; r < nb; r++) {
                double s = 0.0;
                for (uint32_t t = 0; t < c->dim; t++)
                    s += (double)c->Yb[r * c->dim + t] * (double)c->Yb[r * c->dim + t];
                c->norms[(r0 + r) * c->E + e] = (float)sqrt(s);
            }
        }
    }
}

static void hook_hidden(void *ud, uint32_t layer, const float *h, size_t n)
{
    capture *c = ud;
    size_t k0, k1;
    const size_t f = c->ffn;
    (void)layer;
    if (c->rc < 0 || kept_range(c, n, &k0, &k1) < 0)
        return;
    if (c->coact) {
        for (size_t r0 = k0; r0 < k1 && c->rc == 0; r0 += CAP_CHUNK) {
            size_t nb = k1 - r0 < CAP_CHUNK ? k1 - r0 : CAP_CHUNK;
            for (size_t r = 0; r < nb; r++)
                memcpy(c->Ab + r * f, h + (size_t)c->keep_pos[r0 + r] * f, f * sizeof(float));
            c->rc = spx_coact_add(c->ctx, c->coact, c->Ab, nb, f);
        }
    }
    if (c->mass) {
        for (size_t k = k0; k < k1; k++) {
            const float *a = h + (size_t)c->keep_pos[k] * f;
            memset(c->acc, 0, c->E * sizeof(double));
            for (size_t j = 0; j < f; j++)
                c->acc[c->owner[j]] += fabs((double)a[j]);
            for (uint32_t e = 0; e < c->E; e++)
                c->mass[k * c->E + e] = (float)c->acc[e];
        }
    }
    if (c->norms)
        hidden_norms(c, h, k0, k1);
}

/* Run block `layer` over every window; in place (advance) or on a scratch copy. */
static int run_pass(spx_ctx *ctx, const spx_model *m, spx_state *st, uint32_t layer, float *X, float *scratch,
                    uint32_t nsamples, uint32_t seqlen, capture *c, int advance)
{
    size_t per = (size_t)seqlen * m->cfg.dim;
    spx_forward_hooks hooks = {.ud = c, .mlp_input = hook_input, .mlp_hidden = hook_hidden};
    for (uint32_t s = 0; s < nsamples; s++) {
        float *x = X + (size_t)s * per;
        if (!advance) {
            memcpy(scratch, x, per * sizeof(float));
            x = scratch;
        }
        c->win = s;
        spx_state_reset(st);
        int rc = spx_block_forward(ctx, m, st, layer, x, seqlen, &hooks);
        if (rc < 0)
            return rc;
        if (c->rc < 0)
            return c->rc;
    }
    return 0;
}

/* Knuth's selection sampling: N of the T = nsamples * seqlen tokens, uniformly, in order. */
static void select_tokens(uint64_t seed, uint32_t nsamples, uint32_t seqlen, size_t N, uint32_t *pos, size_t *off)
{
    spx_rng g;
    size_t T = (size_t)nsamples * seqlen, k = 0;
    spx_rng_seed(&g, seed ^ 0x6d6f65667955ull);
    for (uint32_t s = 0; s < nsamples; s++) {
        off[s] = k;
        for (uint32_t t = 0; t < seqlen; t++) {
            size_t i = (size_t)s * seqlen + t;
            if (N >= T || (double)(T - i) * spx_rng_uniform(&g) < (double)(N - k))
                pos[k++] = t;
            if (k == N)
                break;
        }
    }
    off[nsamples] = k;
}

typedef struct log_bridge {
    const spx_moefy_opts *o;
    uint32_t layer;
} log_bridge;

static void log_epoch(void *ud, const spx_router_epoch *e)
{
    const log_bridge *b = ud;
    b->o->log(b->o->log_ud, b->layer, e);
}

/* Targets Y [N x E] from the captured mass / norms (see spx_moefy_run.h). */
static void make_targets(const spx_moefy_opts *o, const float *mass, const float *norms, size_t N, size_t n_tr,
                         uint32_t E, spx_router_item *it, float *Y)
{
    if (o->gate.kind == SPX_ROUTER_DSTI) {
        memcpy(Y, norms, N * E * sizeof(float));
    } else if (o->gate.kind == SPX_ROUTER_MOE) {
        float mx = 0.0f;
        for (size_t i = 0; i < n_tr * E; i++)
            mx = mass[i] > mx ? mass[i] : mx;
        for (size_t i = 0; i < N * E; i++) {
            float y = mx > 0.0f ? mass[i] / mx : 0.0f;
            Y[i] = y > 1.0f ? 1.0f : y;
        }
    } else {
        for (size_t t = 0; t < N; t++) {
            const float *m = mass + t * E;
            double tot = 0.0, cum = 0.0;
            for (uint32_t e = 0; e < E; e++) {
                it[e].s = m[e];
                it[e].i = e;
                tot += (double)m[e];
                Y[t * E + e] = 0.0f;
            }
            if (tot <= 0.0)
                continue;
            spx_router_sort(it, E);
            for (uint32_t j = 0; j < E; j++) {
                Y[t * E + it[j].i] = 1.0f;
                cum += (double)it[j].s;
                if (cum >= o->lte_cover * tot)
                    break;
            }
        }
    }
}

static int check_opts(spx_ctx *ctx, const spx_model_config *c, const spx_moefy_opts *o)
{
    const spx_router_rule *g = &o->gate;
    if (o->experts == 0 || c->ffn_dim % o->experts != 0)
        return spx_err_set(ctx, SPX_E_ARG, "--experts %u must divide the FFN width %u", o->experts, c->ffn_dim);
    if (g->kind < SPX_ROUTER_MOE || g->kind > SPX_ROUTER_LTE)
        return spx_err_set(ctx, SPX_E_ARG, "unknown router kind %d", g->kind);
    if (g->kind == SPX_ROUTER_MOE && (g->top_k < 1 || g->top_k > o->experts))
        return spx_err_set(ctx, SPX_E_ARG, "--top-k %u must be in 1..%u (experts)", g->top_k, o->experts);
    if (g->kind == SPX_ROUTER_DSTI && !(g->tau > 0.0 && g->tau <= 1.0))
        return spx_err_set(ctx, SPX_E_ARG, "--tau must be in (0, 1]");
    if (g->kind == SPX_ROUTER_LTE && !(g->threshold > 0.0 && g->threshold < 1.0))
        return spx_err_set(ctx, SPX_E_ARG, "--threshold must be in (0, 1)");
    if (!(o->lte_cover > 0.0 && o->lte_cover <= 1.0) || o->max_tokens < 2 || o->split < 0 || o->split > 1)
        return spx_err_set(ctx, SPX_E_ARG, "moefy: bad options (lte cover, max tokens >= 2, split)");
    return 0;
}

/* Calibration must see the dense FFNs: refuse gated or expanded inputs. */
static int check_dense(spx_ctx *ctx, const spx_model *m)
{
    const char *path = spx_file_path(m->file);
    if (spx_file_meta_find(m->file, "spx.gate.kind"))
        return spx_err_set(ctx, SPX_E_UNSUPPORTED, "%s is already gated (spx.gate.kind): moefy a dense model", path);
    for (uint32_t i = 0; i < spx_file_tensor_count(m->file); i++)
        if (strstr(spx_file_tensor(m->file, i)->name, ".ffn_router."))
            return spx_err_set(ctx, SPX_E_UNSUPPORTED, "%s: tensor '%s' is a router: moefy a dense model", path,
                               spx_file_tensor(m->file, i)->name);
    for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
        const spx_layer *L = &m->layers[l];
        if (!L->up.w || !L->down.w || (m->cfg.gated && !L->gate.w))
            return spx_err_set(ctx, SPX_E_UNSUPPORTED, "%s: block %u has no dense FFN (expanded model?)", path, l);
    }
    return 0;
}

int spx_moefy_model(spx_ctx *ctx, const spx_model *m, const uint32_t *windows, uint32_t nsamples, uint32_t seqlen,
                    const spx_moefy_opts *o, spx_moefy_result **out)
{
    int rc = 0;
    const spx_model_config *cfg = &m->cfg;
    const uint32_t E = o->experts, d = cfg->dim, f = cfg->ffn_dim;
    const int dsti = o->gate.kind == SPX_ROUTER_DSTI;
    spx_moefy_result *res = NULL;
    spx_state *st = NULL;
    float *X = NULL, *scratch = NULL, *Y = NULL, *Wd = NULL;
    uint32_t *owner = NULL, *keep_pos = NULL;
    size_t *keep_off = NULL, per, total, N, n_ho, n_tr;
    spx_router_item *items = NULL;
    spx_coact *coact = NULL;
    uint32_t cur = UINT32_MAX;   /* block being processed (error messages) */
    unsigned long long held = 0, coact_held = 0;   /* --max-memory reservations */
    capture c;
    memset(&c, 0, sizeof c);
    *out = NULL;
    SPX_TRY(rc, check_opts(ctx, cfg, o));
    SPX_TRY(rc, check_dense(ctx, m));
    if (!windows || nsamples == 0 || seqlen == 0)
        return spx_err_set(ctx, SPX_E_ARG, "moefy needs calibration windows");
    if (spx_ckd_mul_size(seqlen, d, &per) || spx_ckd_mul_size(per, nsamples, &total) ||
        total > SIZE_MAX / sizeof(float))
        return spx_err_set(ctx, SPX_E_OVERFLOW, "calibration activations: size overflow");
    N = (size_t)nsamples * seqlen;
    N = N < o->max_tokens ? N : (size_t)o->max_tokens;
    if (N < 2)
        return spx_err_set(ctx, SPX_E_ARG, "moefy: need at least 2 calibration tokens");
    n_ho = (size_t)floor((double)N * o->train.holdout);
    n_tr = N - n_ho;
    /* --max-memory: activations X + scratch, the captured router inputs M [N x d], expert masses,
     * norms and targets [N x E] each, DSTI's permuted down [d x f], the capture chunks, the state */
    SPX_TRY(rc, spx_mem_reserve(ctx, &held, ((unsigned long long)total + per) * 4u,
                                "calibration activations (%u windows x %u tokens x dim %u fp32)", nsamples, seqlen, d));
    SPX_TRY(rc, spx_mem_reserve(ctx, &held, (unsigned long long)N * (d + (dsti ? 3u : 2u) * E + 2u) * 4u +
                                    (dsti ? (unsigned long long)d * f * 4u : 0) + (unsigned long long)CAP_CHUNK * (f + d) * 4u,
                                "router training data (%zu tokens x (dim %u + %u experts))", N, d, E));
    SPX_TRY(rc, spx_mem_reserve(ctx, &held, spx_mem_state_bytes(cfg, seqlen, seqlen),
                                "forward state of a %u-token window", seqlen));
    res = calloc(1, sizeof *res);
    if (res)
        res->layers = calloc(cfg->n_layers, sizeof *res->layers);
    X = malloc(total * sizeof(float));
    scratch = malloc(per * sizeof(float));
    keep_pos = malloc(N * sizeof *keep_pos);
    keep_off = malloc(((size_t)nsamples + 1) * sizeof *keep_off);
    c.M = malloc(N * d * sizeof(float));
    c.mass = malloc(N * E * sizeof(float));
    c.norms = dsti ? malloc(N * E * sizeof(float)) : NULL;
    Y = malloc(N * E * sizeof(float));
    owner = malloc((size_t)f * sizeof *owner);
    Wd = dsti ? malloc((size_t)d * f * sizeof(float)) : NULL;
    c.Ab = malloc((size_t)CAP_CHUNK * f * sizeof(float));
    c.Yb = malloc((size_t)CAP_CHUNK * d * sizeof(float));
    c.acc = malloc((size_t)E * sizeof(double));
    items = malloc((size_t)E * sizeof *items);
    if (!res || !res->layers || !X || !scratch || !keep_pos || !keep_off || !c.M || !c.mass || (dsti && !c.norms) ||
        !Y || !owner || (dsti && !Wd) || !c.Ab || !c.Yb || !c.acc || !items)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "moefy: out of memory for %zu calibration tokens", N);
    res->n_layers = cfg->n_layers;
    res->ffn = f;
    res->experts = E;
    res->tokens = N;
    res->heldout = n_ho;
    select_tokens(o->seed, nsamples, seqlen, N, keep_pos, keep_off);
    for (uint32_t s = 0; s < nsamples; s++)
        SPX_TRY(rc, spx_embed(ctx, m, windows + (size_t)s * seqlen, seqlen, X + (size_t)s * per));
    SPX_TRY(rc, spx_state_new(ctx, m, seqlen, seqlen, &st));
    c.ctx = ctx;
    c.dim = d;
    c.ffn = f;
    c.E = E;
    c.B = f / E;
    c.keep_pos = keep_pos;
    c.keep_off = keep_off;
    c.owner = owner;
    c.Wd = Wd;
    for (uint32_t l = 0; l < cfg->n_layers; l++) {
        const spx_layer *L = &m->layers[l];
        spx_moefy_layer *R = &res->layers[l];
        const float *Win = cfg->gated ? L->gate.w : L->up.w;
        spx_moefy_split_opts so = {E, o->kmeans_init, 300u, o->seed + l};
        double t0 = now_s();
        cur = l;
        R->layer = l;
        if (o->split == SPX_SPLIT_COACT) {
            capture cc = c;
            SPX_TRY(rc, spx_mem_reserve(ctx, &coact_held, (unsigned long long)f * f * 8u,
                                        "co-activation matrix of blk.%u (%u x %u)", l, f, f));
            SPX_TRY(rc, spx_coact_new(ctx, f, cfg->act == SPX_ACT_RELU ? 0.0f : 1.0f, &coact));
            cc.M = cc.mass = cc.norms = NULL;
            cc.coact = coact;
            SPX_TRY(rc, run_pass(ctx, m, st, l, X, scratch, nsamples, seqlen, &cc, 0));
            SPX_TRY(rc, spx_moefy_split_coact(ctx, coact, &so, &R->perm, &R->split));
            spx_coact_free(coact);
            coact = NULL;
            spx_mem_release(ctx, &coact_held);
        } else {
            SPX_TRY(rc, spx_moefy_split_param(ctx, Win, f, d, &so, &R->perm, &R->split));
        }
        R->split_seconds = now_s() - t0;
        c.perm = R->perm;
        for (uint32_t i = 0; i < f; i++)
            owner[R->perm[i]] = i / c.B;
        if (dsti)
            spx_moefy_permute_cols(L->down.w, d, f, R->perm, Wd);
        SPX_TRY(rc, run_pass(ctx, m, st, l, X, scratch, nsamples, seqlen, &c, 1));
        make_targets(o, c.mass, c.norms, N, n_tr, E, items, Y);
        SPX_TRY(rc, spx_router_new(ctx, o->gate.kind, d, E, o->hidden, o->input_norm, &R->router));
        if (dsti)
            spx_router_init_random(R->router, o->seed + l);
        else
            SPX_TRY(rc, spx_router_init_centers(ctx, R->router, Win, R->perm, f));
        log_bridge lb = {o, l};
        spx_router_train_opts to = o->train;
        to.seed = o->seed + l;
        to.loss.tau = o->gate.threshold;
        to.log = o->log ? log_epoch : NULL;
        to.log_ud = &lb;
        SPX_TRY(rc, spx_router_train(ctx, R->router, c.M, Y, N, &to, &R->train));
        size_t e0 = n_ho ? n_tr : 0;
        SPX_TRY(rc, spx_router_evaluate(ctx, R->router, &o->gate, c.M + e0 * d, c.mass + e0 * E, N - e0, &R->eval));
        spx_progress_report(&o->progress, "moefy: block", l + 1, cfg->n_layers);
    }
    *out = res;
    res = NULL;
done:
    if (rc < 0 && cur != UINT32_MAX && rc != SPX_E_LIMIT)
        spx_err_prefix(ctx, "block %u: ", cur);
    spx_mem_release(ctx, &held);
    spx_mem_release(ctx, &coact_held);
    spx_moefy_result_free(res);
    spx_coact_free(coact);
    spx_state_free(st);
    free(X);
    free(scratch);
    free(keep_pos);
    free(keep_off);
    free(c.M);
    free(c.mass);
    free(c.norms);
    free(Y);
    free(owner);
    free(Wd);
    free(c.Ab);
    free(c.Yb);
    free(c.acc);
    free(items);
    return rc;
}
