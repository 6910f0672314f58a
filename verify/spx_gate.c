/* spx_gate.c: gated neuron experts (MoEfication / DSTI / LTE): building, selection, forward
 * (spx_moe.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_moe.h"
#include "spx_ops.h"
#include "spx_rng.h"

static const char *const kind_names[] = {"moe", "dsti", "lte"};

const char *spx_gate_kind_name(int kind)
{
    return kind >= 0 && kind <= SPX_GATE_LTE ? kind_names[kind] : "?";
}

int spx_gate_kind_parse(const char *s)
{
    for (int k = 0; k <= SPX_GATE_LTE; k++)
        if (strcmp(s, kind_names[k]) == 0)
            return k;
    return -1;
}

int spx_gate_alloc(spx_ctx *ctx, int kind, uint32_t n_experts, uint32_t dim, uint32_t ffn, uint32_t hidden,
                   spx_gate **out)
{
    spx_gate *g;
    *out = NULL;
    if (kind < 0 || kind > SPX_GATE_LTE)
        return spx_err_set(ctx, SPX_E_ARG, "gate: unknown kind %d", kind);
    if (!n_experts || !dim || !ffn || !hidden || ffn % n_experts)
        return spx_err_set(ctx, SPX_E_ARG, "gate: %u experts must divide ffn %u (dim %u, hidden %u nonzero)", n_experts,
                           ffn, dim, hidden);
    if (kind == SPX_GATE_LTE && hidden != n_experts)
        return spx_err_set(ctx, SPX_E_ARG, "gate: an lte router has one unit per expert (hidden %u, %u experts)",
                           hidden, n_experts);
    g = calloc(1, sizeof *g);
    if (!g)
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
    g->kind = kind;
    g->n_experts = n_experts;
    g->block = ffn / n_experts;
    g->dim = dim;
    g->hidden = hidden;
    g->top_k = 1;
    g->tau = 1.0f;
    g->threshold = 0.5f;
    *out = g;
    return 0;
}

int spx_gate_set_router(spx_ctx *ctx, spx_gate *g, float *w1, float *b1, float *w2, float *b2)
{
    int two = g->kind != SPX_GATE_LTE;
    if (!w1 || !b1 || (two ? (!w2 || !b2) : (w2 || b2))) {
        free(w1);
        free(b1);
        free(w2);
        free(b2);
        return spx_err_set(ctx, SPX_E_ARG, "gate: a %s router needs w1, b1%s", spx_gate_kind_name(g->kind),
                           two ? ", w2 and b2" : " and no second layer");
    }
    spx_linear_release(&g->w1);
    spx_linear_release(&g->w2);
    spx_linear_init_owned(&g->w1, g->hidden, g->dim, w1, b1);
    if (two)
        spx_linear_init_owned(&g->w2, g->n_experts, g->hidden, w2, b2);
    return 0;
}

void spx_gate_free(spx_gate *g)
{
    if (!g)
        return;
    spx_linear_release(&g->w1);
    spx_linear_release(&g->w2);
    free(g->down_packed);
    free(g);
}

static int check_lin(spx_ctx *ctx, uint32_t layer, const char *what, const spx_linear *l, uint32_t rows, uint32_t cols)
{
    if (!l->w || !l->bias || l->rows != rows || l->cols != cols)
        return spx_err_set(ctx, SPX_E_SHAPE, "gate attach: block %u: %s is %s [%u x %u]%s, want [%u x %u] with bias",
                           layer, what, l->w ? "shaped" : "missing", l->rows, l->cols, l->bias ? "" : " without bias",
                           rows, cols);
    return 0;
}

int spx_gate_attach(spx_ctx *ctx, spx_model *m, uint32_t layer, spx_gate *g)
{
    int rc = 0;
    const spx_model_config *c = &m->cfg;
    spx_layer *L;
    uint32_t E, B;
    float *packed = NULL;
    if (layer >= c->n_layers || !g)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "gate attach: layer %u out of range (%u layers) or no gate", layer, c->n_layers);
    L = &m->layers[layer];
    E = g->n_experts;
    B = g->block;
    if (L->moe)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "gate attach: block %u is expanded (routed expert copies)", layer);
    /* the neuron blocks are row slices of the fp32 matrices: packed (KMAT) layers go back to fp32 */
    SPX_TRY(rc, spx_linear_to_f32(ctx, &L->gate));
    SPX_TRY(rc, spx_linear_to_f32(ctx, &L->up));
    SPX_TRY(rc, spx_linear_to_f32(ctx, &L->down));
    if (g->dim != c->dim || (uint64_t)E * B != c->ffn_dim || !L->up.w || !L->down.w || (c->gated && !L->gate.w))
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "gate attach: block %u: %u experts x %u neurons, dim %u do not fit ffn %u, "
                 "dim %u, or the dense FFN is absent", layer, E, B, g->dim, c->ffn_dim, c->dim);
    if (g->kind == SPX_GATE_MOE && (g->top_k < 1 || g->top_k > E))
        SPX_FAIL(ctx, rc, SPX_E_ARG, "gate attach: block %u: top_k %u not in 1..%u", layer, g->top_k, E);
    if (g->kind == SPX_GATE_DSTI && !(g->tau > 0.0f && g->tau <= 1.0f))
        SPX_FAIL(ctx, rc, SPX_E_ARG, "gate attach: block %u: tau %g not in (0, 1]", layer, (double)g->tau);
    if (g->kind == SPX_GATE_LTE && !isfinite(g->threshold))
        SPX_FAIL(ctx, rc, SPX_E_ARG, "gate attach: block %u: threshold is not finite", layer);
    SPX_TRY(rc, check_lin(ctx, layer, "router w1", &g->w1, g->hidden, c->dim));
    if (g->kind != SPX_GATE_LTE)
        SPX_TRY(rc, check_lin(ctx, layer, "router w2", &g->w2, E, g->hidden));
    else if (g->w2.w)
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "gate attach: block %u: an lte router has no second layer", layer);
    packed = malloc((size_t)c->dim * c->ffn_dim * sizeof(float));
    if (!packed)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "gate attach: out of memory for the packed down projection");
    /* D_e [dim x B] = down[:, e B .. e B + B) so each expert's columns are contiguous */
    for (uint32_t e = 0; e < E; e++)
        for (uint32_t i = 0; i < c->dim; i++)
            memcpy(packed + ((size_t)e * c->dim + i) * B, L->down.w + (size_t)i * c->ffn_dim + (size_t)e * B,
                   B * sizeof(float));
    free(g->down_packed);
    g->down_packed = packed;
    packed = NULL;
    if (L->gating != g)
        spx_gate_free(L->gating);
    L->gating = g;
done:
    free(packed);
    return rc;
}

/* ---- selection ------------------------------------------------------------------------------ */

void spx_gate_scores(const spx_gate *g, const float *X, size_t n, float *work, float *S)
{
    const size_t dim = g->dim, E = g->n_experts, h = g->hidden;
    const float *in = X;
    float *xn = work, *hid = work + n * dim;
    if (g->input_norm) {
        for (size_t t = 0; t < n; t++) {
            double ss = 0.0, scale;
            for (size_t i = 0; i < dim; i++)
                ss += (double)X[t * dim + i] * (double)X[t * dim + i];
            scale = ss > 0.0 ? 1.0 / sqrt(ss) : 0.0;
            for (size_t i = 0; i < dim; i++)
                xn[t * dim + i] = (float)((double)X[t * dim + i] * scale);
        }
        in = xn;
    }
    if (g->kind == SPX_GATE_LTE) {
        spx_linear_forward(&g->w1, in, n, S);
        for (size_t i = 0; i < n * E; i++)
            S[i] = 1.0f / (1.0f + expf(-S[i]));
        return;
    }
    spx_linear_forward(&g->w1, in, n, hid);
    for (size_t i = 0; i < n * h; i++)
        hid[i] = g->kind == SPX_GATE_MOE ? tanhf(hid[i]) : (hid[i] > 0.0f ? hid[i] : 0.0f);
    spx_linear_forward(&g->w2, hid, n, S);
    if (g->kind == SPX_GATE_DSTI)
        for (size_t i = 0; i < n * E; i++)
            S[i] = fabsf(S[i]);
}

/* ord[0..E) = expert indices by descending score, ties in ascending index (stable bottom-up merge
 * sort starting from the identity; ord has room for 2 E). */
static void sort_desc(const float *s, uint32_t E, uint32_t *ord)
{
    uint32_t *a = ord, *b = ord + E, *t;
    for (uint32_t i = 0; i < E; i++)
        a[i] = i;
    for (uint32_t w = 1; w < E; w *= 2) {
        for (uint32_t lo = 0; lo < E; lo += 2 * w) {
            uint32_t mid = lo + w < E ? lo + w : E, hi = lo + 2 * w < E ? lo + 2 * w : E;
            uint32_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                b[k++] = s[a[j]] > s[a[i]] ? a[j++] : a[i++];
            while (i < mid)
                b[k++] = a[i++];
            while (j < hi)
                b[k++] = a[j++];
        }
        t = a;
        a = b;
        b = t;
    }
    if (a != ord)
        memcpy(ord, a, E * sizeof *ord);
}

void spx_gate_topk(const float *s, uint32_t E, uint32_t k, uint32_t *ord, uint8_t *sel)
{
    sort_desc(s, E, ord);
    memset(sel, 0, E);
    for (uint32_t i = 0; i < k && i < E; i++)
        sel[ord[i]] = 1;
}

uint32_t spx_gate_select(const spx_gate *g, const float *s, uint32_t *ord, uint8_t *sel)
{
    const uint32_t E = g->n_experts;
    uint32_t cnt = 0;
    if (g->kind == SPX_GATE_MOE) {
        spx_gate_topk(s, E, g->top_k, ord, sel);
        return g->top_k < E ? g->top_k : E;
    }
    memset(sel, 0, E);
    if (g->kind == SPX_GATE_DSTI) {
        double total = 0.0, cum = 0.0, target;
        sort_desc(s, E, ord);
        for (uint32_t i = 0; i < E; i++)
            total += (double)s[ord[i]];
        target = (double)g->tau * total;
        for (uint32_t i = 0; i < E; i++) {
            cum += (double)s[ord[i]];
            sel[ord[i]] = 1;
            cnt++;
            if (cum >= target)
                break;
        }
        return cnt;
    }
    for (uint32_t e = 0; e < E; e++)
        if (s[e] >= g->threshold) {
            sel[e] = 1;
            cnt++;
        }
    if (!cnt) {
        uint32_t best = 0;
        for (uint32_t e = 1; e < E; e++)
            if (s[e] > s[best])
                best = e;
        sel[best] = 1;
        cnt = 1;
    }
    return cnt;
}

uint32_t spx_gate_override_k(const spx_gate_override *o, uint32_t E)
{
    double k = o->amount >= 1.0 ? o->amount : floor(o->amount * (double)E + 0.5);
    if (k < 1.0)
        k = 1.0;
    return k >= (double)E ? E : (uint32_t)k;
}

int spx_model_set_gate_override(spx_ctx *ctx, spx_model *m, int mode, double amount, uint64_t seed)
{
    if (mode < SPX_GATE_MODE_ROUTER || mode > SPX_GATE_MODE_RANDOM)
        return spx_err_set(ctx, SPX_E_ARG, "gate override: unknown mode %d", mode);
    if (mode != SPX_GATE_MODE_ROUTER &&
        !(amount > 0.0 && amount < 1.0) && !(amount >= 1.0 && amount <= 4294967295.0 && amount == floor(amount)))
        return spx_err_set(ctx, SPX_E_ARG, "gate override: amount %g is neither an integer k >= 1 nor a fraction in "
                           "(0, 1)", amount);
    m->gate_override.mode = mode;
    m->gate_override.amount = amount;
    m->gate_override.seed = seed;
    return 0;
}

/* Random mode: k distinct experts by a partial Fisher-Yates shuffle, the generator keyed by
 * (seed, sequence, layer, position) so the draw of a token does not depend on batching. */
static void select_random(uint64_t seed, uint64_t seq, uint32_t layer, uint64_t pos, uint32_t E, uint32_t k,
                          uint32_t *ord, uint8_t *sel)
{
    spx_rng r;
    uint64_t key = seed;
    key = key * 0x9E3779B97F4A7C15ull ^ seq;
    key = key * 0x9E3779B97F4A7C15ull ^ layer;
    key = key * 0x9E3779B97F4A7C15ull ^ pos;
    spx_rng_seed(&r, key);
    memset(sel, 0, E);
    for (uint32_t i = 0; i < E; i++)
        ord[i] = i;
    for (uint32_t i = 0; i < k; i++) {
        uint32_t j = i + (uint32_t)spx_rng_below(&r, E - i), t = ord[i];
        ord[i] = ord[j];
        ord[j] = t;
        sel[ord[i]] = 1;
    }
}

/* ---- forward -------------------------------------------------------------------------------- */

/* A B-row slice of a dense [ffn x dim] linear: rows e B .. e B + B (weights and bias). */
static spx_linear block_rows(const spx_linear *l, uint32_t e, uint32_t B)
{
    spx_linear v;
    memset(&v, 0, sizeof v);
    v.rows = B;
    v.cols = l->cols;
    v.w = l->w + (size_t)e * B * l->cols;
    v.bias = l->bias ? l->bias + (size_t)e * B : NULL;
    return v;
}

/* Selection of every token into ex->sel [n x E]; returns the number of selected blocks. For the
 * oracle, s->up holds the dense hidden state [n x ffn] afterwards. */
static uint64_t select_all(const spx_model *model, spx_state *s, uint32_t layer, size_t n)
{
    const spx_model_config *c = &model->cfg;
    const spx_layer *L = &model->layers[layer];
    const spx_gate *g = L->gating;
    const spx_gate_override *ov = &model->gate_override;
    const uint32_t E = g->n_experts, B = g->block, k = spx_gate_override_k(ov, E);
    spx_expert_scratch *ex = &s->ex;
    uint64_t run = 0;
    switch (ov->mode) {
    case SPX_GATE_MODE_RANDOM:
        for (size_t t = 0; t < n; t++)
            select_random(ov->seed, s->seq, layer, (uint64_t)s->pos + t, E, k, ex->ord, ex->sel + t * E);
        return (uint64_t)n * k;
    case SPX_GATE_MODE_ORACLE:
        if (c->gated)
            spx_linear_forward(&L->gate, s->xn, n, s->gate);
        spx_linear_forward(&L->up, s->xn, n, s->up);
        spx_ops_act(c->act, c->gated, s->gate, s->up, n * c->ffn_dim);
        for (size_t t = 0; t < n; t++) {
            for (uint32_t e = 0; e < E; e++) {
                const float *h = s->up + t * c->ffn_dim + (size_t)e * B;
                double mass = 0.0;
                for (uint32_t j = 0; j < B; j++)
                    mass += fabs((double)h[j]);
                ex->sc[t * E + e] = (float)mass;
            }
            spx_gate_topk(ex->sc + t * E, E, k, ex->ord, ex->sel + t * E);
        }
        return (uint64_t)n * k;
    default:
        spx_gate_scores(g, s->xn, n, ex->a, ex->sc);
        for (size_t t = 0; t < n; t++) {
            if (ov->mode == SPX_GATE_MODE_TOPK) {
                spx_gate_topk(ex->sc + t * E, E, k, ex->ord, ex->sel + t * E);
                run += k;
            } else {
                run += spx_gate_select(g, ex->sc + t * E, ex->ord, ex->sel + t * E);
            }
        }
        return run;
    }
}

void spx_gate_mlp(const spx_model *model, spx_state *s, uint32_t layer, size_t n, const spx_forward_hooks *hooks)
{
    const spx_model_config *c = &model->cfg;
    const spx_layer *L = &model->layers[layer];
    const spx_gate *g = L->gating;
    const uint32_t E = g->n_experts, B = g->block;
    const size_t dim = c->dim, ffn = c->ffn_dim;
    const int oracle = model->gate_override.mode == SPX_GATE_MODE_ORACLE;
    const int want_h = hooks && hooks->mlp_hidden;
    spx_expert_scratch *ex = &s->ex;
    uint64_t run;

    run = select_all(model, s, layer, n);
    if (s->gate_hook)
        s->gate_hook(s->gate_ud, layer, ex->sel, n, E);
    s->ffn_blocks_run += run;
    s->ffn_blocks_total += (uint64_t)n * E;
    s->ffn_neurons_run += run * B;
    s->ffn_neurons_total += (uint64_t)n * ffn;

    /* y = b_down + sum over selected e (ascending) of D_e h[block e] */
    for (size_t t = 0; t < n; t++) {
        if (L->down.bias)
            memcpy(s->tmp + t * dim, L->down.bias, dim * sizeof(float));
        else
            memset(s->tmp + t * dim, 0, dim * sizeof(float));
    }
    if (want_h && !oracle)
        memset(s->up, 0, n * ffn * sizeof(float));
    for (uint32_t e = 0; e < E; e++) {
        spx_linear dn;
        size_t ne = 0;
        for (size_t t = 0; t < n; t++)
            if (ex->sel[t * E + e])
                ex->idx[ne++] = (uint32_t)t;
        if (!ne)
            continue;
        if (oracle) {
            for (size_t i = 0; i < ne; i++)
                memcpy(ex->b + i * B, s->up + (size_t)ex->idx[i] * ffn + (size_t)e * B, B * sizeof(float));
        } else {
            const float *in = s->xn;
            spx_linear up = block_rows(&L->up, e, B);
            if (ne < n) {
                for (size_t i = 0; i < ne; i++)
                    memcpy(ex->in + i * dim, s->xn + (size_t)ex->idx[i] * dim, dim * sizeof(float));
                in = ex->in;
            }
            if (c->gated) {
                spx_linear gt = block_rows(&L->gate, e, B);
                spx_linear_forward(&gt, in, ne, ex->a);
            }
            spx_linear_forward(&up, in, ne, ex->b);
            spx_ops_act(c->act, c->gated, ex->a, ex->b, ne * B);
            if (want_h)
                for (size_t i = 0; i < ne; i++)
                    memcpy(s->up + (size_t)ex->idx[i] * ffn + (size_t)e * B, ex->b + i * B, B * sizeof(float));
        }
        memset(&dn, 0, sizeof dn);
        dn.rows = c->dim;
        dn.cols = B;
        dn.w = g->down_packed + (size_t)e * dim * B;
        spx_linear_forward(&dn, ex->b, ne, ex->y);
        for (size_t i = 0; i < ne; i++) {
            float *y = s->tmp + (size_t)ex->idx[i] * dim;
            const float *ye = ex->y + i * dim;
            for (size_t j = 0; j < dim; j++)
                y[j] += ye[j];
        }
    }
    if (want_h) {
        if (oracle)   /* the dense h with the unselected blocks zeroed, as fed to down */
            for (size_t t = 0; t < n; t++)
                for (uint32_t e = 0; e < E; e++)
                    if (!ex->sel[t * E + e])
                        memset(s->up + t * ffn + (size_t)e * B, 0, B * sizeof(float));
        hooks->mlp_hidden(hooks->ud, layer, s->up, n);
    }
}
