/* spx_verify.c: the comparison engine of `spx verify` (protocol in spx_verify.h). */
#include "spx_verify.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_forward.h"

const char *const spx_verify_linear_names[SPX_VERIFY_N_LINEARS] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

#define HEAD_CHUNK 64u   /* positions per classifier call: bounds the logits buffers */

/* Hook capture: copies of the inputs the runtime shows to the hooks, [C x width] each. */
typedef struct capture {
    float *x;     /* attn_input    [C x dim] */
    float *a;     /* attn_out_input [C x q_dim] */
    float *m;     /* mlp_input     [C x dim] */
    float *h;     /* mlp_hidden    [C x ffn_dim] */
    size_t dim, q_dim, ffn_dim;
} capture;

static void cap_attn_in(void *ud, uint32_t layer, const float *x, size_t n)
{
    const capture *c = ud;
    (void)layer;
    if (c->x)
        memcpy(c->x, x, n * c->dim * sizeof(float));
}

static void cap_attn_out_in(void *ud, uint32_t layer, const float *a, size_t n)
{
    const capture *c = ud;
    (void)layer;
    if (c->a)
        memcpy(c->a, a, n * c->q_dim * sizeof(float));
}

static void cap_mlp_in(void *ud, uint32_t layer, const float *x, size_t n)
{
    const capture *c = ud;
    (void)layer;
    if (c->m)
        memcpy(c->m, x, n * c->dim * sizeof(float));
}

static void cap_mlp_hidden(void *ud, uint32_t layer, const float *h, size_t n)
{
    const capture *c = ud;
    (void)layer;
    if (c->h)
        memcpy(c->h, h, n * c->ffn_dim * sizeof(float));
}

/* Sums of squares behind one relative error: num = sum (c - r)^2, den = sum r^2. */
typedef struct sq_acc {
    double num, den;
} sq_acc;

static double rel_of(const sq_acc *s)
{
    if (s->num == 0.0)
        return 0.0;
    return s->den > 0.0 ? sqrt(s->num / s->den) : INFINITY;
}

/* All working memory of one comparison. */
typedef struct verifier {
    const spx_model *cand, *ref;
    spx_state *sc, *sr;
    uint32_t C, dim, vocab, n_layers;
    float *xr, *xin, *xc;            /* [C x dim] reference stream, block input copy, candidate stream */
    float *attn_r, *attn_c;          /* [C x dim] attention sublayer outputs */
    float *lin_r, *lin_c;            /* [C x max_rows] per-linear outputs */
    float *lr, *lc;                  /* [HEAD_CHUNK x vocab] logits */
    capture cap_r, cap_c;
    unsigned char *lin_cmp;          /* [n_layers x N_LINEARS] 1: compare this linear */
    sq_acc *acc;                     /* [n_layers x (3 + N_LINEARS)]: attn, mlp, block, linears */
    double *kl;                      /* [windows x (C-1)] per-position KL for the percentile */
} verifier;

static const spx_linear *layer_linear(const spx_layer *L, int i)
{
    switch (i) {
    case 0: return &L->q;
    case 1: return &L->k;
    case 2: return &L->v;
    case 3: return &L->o;
    case 4: return &L->gate;
    case 5: return &L->up;
    default: return &L->down;
    }
}

/* A per-linear comparison needs both layers present with one shape (dense fp32 or packed). */
static int linear_comparable(const spx_linear *c, const spx_linear *r)
{
    return spx_linear_present(c) && spx_linear_present(r) && c->rows == r->rows && c->cols == r->cols;
}

/* 1 when the weights differ; packed layers are compared as their fp32 values. When that cannot be
 * done (out of memory) the layer is reported as differing: computing its figures is harmless. */
static int linear_differs(const spx_linear *c, const spx_linear *r)
{
    spx_ctx tmp = SPX_CTX_INIT;
    int differ = 1;
    (void)spx_linear_weights_differ(&tmp, c, r, &differ);
    return differ;
}

static float *alloc_f(spx_ctx *ctx, size_t a, size_t b, const char *what, int *rc)
{
    size_t n;
    float *p;
    if (spx_ckd_mul3_size(a, b, sizeof(float), &n)) {
        *rc = spx_err_set(ctx, SPX_E_OVERFLOW, "verify: size of %s overflows (%zu x %zu)", what, a, b);
        return NULL;
    }
    p = malloc(n ? n : 1);
    if (!p)
        *rc = spx_err_set(ctx, SPX_E_NOMEM, "verify: out of memory for %s (%zu bytes)", what, n);
    return p;
}

static void verifier_free(verifier *v)
{
    spx_state_free(v->sc);
    spx_state_free(v->sr);
    free(v->xr);
    free(v->xin);
    free(v->xc);
    free(v->attn_r);
    free(v->attn_c);
    free(v->lin_r);
    free(v->lin_c);
    free(v->lr);
    free(v->lc);
    free(v->cap_r.x);
    free(v->cap_r.a);
    free(v->cap_r.m);
    free(v->cap_r.h);
    free(v->cap_c.a);
    free(v->acc);
    free(v->lin_cmp);
    free(v->kl);
}

static int check_models(spx_ctx *ctx, const spx_model *cand, const spx_model *ref)
{
    const spx_model_config *c = &cand->cfg, *r = &ref->cfg;
    if (c->dim != r->dim)
        return spx_err_set(ctx, SPX_E_SHAPE, "verify: candidate hidden size %u differs from the reference's %u", c->dim,
                           r->dim);
    if (c->vocab_size != r->vocab_size)
        return spx_err_set(ctx, SPX_E_SHAPE, "verify: candidate vocabulary %u differs from the reference's %u",
                           c->vocab_size, r->vocab_size);
    if (c->n_layers != r->n_layers)
        return spx_err_set(ctx, SPX_E_SHAPE, "verify: candidate has %u blocks, the reference %u", c->n_layers,
                           r->n_layers);
    return 0;
}

static int verifier_init(spx_ctx *ctx, verifier *v, const spx_model *cand, const spx_model *ref, uint32_t C,
                         uint64_t windows, int per_linear)
{
    int rc = 0;
    const spx_model_config *rf = &ref->cfg, *cc = &cand->cfg;
    size_t max_rows = rf->dim, nkl;
    memset(v, 0, sizeof *v);
    v->cand = cand;
    v->ref = ref;
    v->C = C;
    v->dim = rf->dim;
    v->vocab = rf->vocab_size;
    v->n_layers = rf->n_layers;
    SPX_TRY(rc, spx_state_new(ctx, cand, C, C, &v->sc));
    SPX_TRY(rc, spx_state_new(ctx, ref, C, C, &v->sr));
    if ((size_t)rf->n_heads * rf->head_dim > max_rows)
        max_rows = (size_t)rf->n_heads * rf->head_dim;
    if (rf->ffn_dim > max_rows)
        max_rows = rf->ffn_dim;
    v->cap_r.dim = v->cap_c.dim = v->dim;
    v->cap_r.q_dim = (size_t)rf->n_heads * rf->head_dim;
    v->cap_c.q_dim = (size_t)cc->n_heads * cc->head_dim;
    v->cap_r.ffn_dim = rf->ffn_dim;
    v->cap_c.ffn_dim = cc->ffn_dim;
#define ALLOC(field, a, b) do { if (!(v->field = alloc_f(ctx, (a), (b), #field, &rc))) goto done; } while (0)
    ALLOC(xr, C, v->dim);
    ALLOC(xin, C, v->dim);
    ALLOC(xc, C, v->dim);
    ALLOC(attn_r, C, v->dim);
    ALLOC(attn_c, C, v->dim);
    ALLOC(lr, HEAD_CHUNK, v->vocab);
    ALLOC(lc, HEAD_CHUNK, v->vocab);
    ALLOC(cap_r.a, C, v->cap_r.q_dim);
    ALLOC(cap_c.a, C, v->cap_c.q_dim);
    if (per_linear) {
        ALLOC(lin_r, C, max_rows);
        ALLOC(lin_c, C, max_rows);
        ALLOC(cap_r.x, C, v->dim);
        ALLOC(cap_r.m, C, v->dim);
        ALLOC(cap_r.h, C, v->cap_r.ffn_dim);
    }
#undef ALLOC
    v->acc = calloc((size_t)v->n_layers * (3 + SPX_VERIFY_N_LINEARS), sizeof *v->acc);
    if (!v->acc)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "verify: out of memory for the per-layer sums");
    if (spx_ckd_mul_size((size_t)windows, (size_t)C - 1, &nkl) || nkl > SIZE_MAX / sizeof(double))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "verify: %llu windows x %u positions overflow", (unsigned long long)windows,
                 C - 1);
    v->kl = malloc(nkl * sizeof(double));
    if (!v->kl)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "verify: out of memory for %zu per-position KL values", nkl);
    v->lin_cmp = calloc((size_t)v->n_layers * SPX_VERIFY_N_LINEARS, 1);
    if (!v->lin_cmp)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "verify: out of memory");
    /* which linears differ is a property of the weights: decided once. An expert MLP (routed
     * copies or permuted gated neurons) has no single W_c comparable with W_r: only its block
     * figures are reported. */
    for (uint32_t l = 0; per_linear && l < v->n_layers; l++) {
        int experts = cand->layers[l].moe || cand->layers[l].gating || ref->layers[l].moe || ref->layers[l].gating;
        for (int i = 0; i < (experts ? 4 : SPX_VERIFY_N_LINEARS); i++) {
            const spx_linear *lc = layer_linear(&cand->layers[l], i), *lr = layer_linear(&ref->layers[l], i);
            v->lin_cmp[(size_t)l * SPX_VERIFY_N_LINEARS + (size_t)i] =
                (unsigned char)(linear_comparable(lc, lr) && linear_differs(lc, lr));
        }
    }
done:
    return rc;
}

static sq_acc *acc_at(const verifier *v, uint32_t layer, int k)
{
    return &v->acc[(size_t)layer * (3 + SPX_VERIFY_N_LINEARS) + (size_t)k];
}

/* y_c, y_r [count] in fp32 -> sums of squares in double */
static void acc_add(sq_acc *s, const float *yc, const float *yr, size_t count)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < count; i++) {
        double d = (double)yc[i] - (double)yr[i];
        num += d * d;
        den += (double)yr[i] * (double)yr[i];
    }
    s->num += num;
    s->den += den;
}

/* Per-linear figures of block `l` on the reference's captured inputs. */
static void compare_linears(verifier *v, uint32_t l)
{
    const size_t C = v->C;
    const spx_layer *Lc = &v->cand->layers[l], *Lr = &v->ref->layers[l];
    for (int i = 0; i < SPX_VERIFY_N_LINEARS; i++) {
        const spx_linear *lc = layer_linear(Lc, i), *lr = layer_linear(Lr, i);
        const float *x;
        if (!v->lin_cmp[(size_t)l * SPX_VERIFY_N_LINEARS + (size_t)i])
            continue;
        x = i < 3 ? v->cap_r.x : i == 3 ? v->cap_r.a : i < 6 ? v->cap_r.m : v->cap_r.h;
        spx_linear_forward(lr, x, C, v->lin_r);
        spx_linear_forward(lc, x, C, v->lin_c);
        acc_add(acc_at(v, l, 3 + i), v->lin_c, v->lin_r, C * lr->rows);
    }
}

/* Block l on both models from the reference's input; accumulates attn/mlp/block errors and
 * leaves the reference's output in v->xr. */
static int compare_block(spx_ctx *ctx, verifier *v, uint32_t l, int per_linear)
{
    int rc = 0;
    const size_t C = v->C, count = C * v->dim;
    spx_forward_hooks hr, hc;
    double num_m = 0.0, den_m = 0.0, num_b = 0.0, den_b = 0.0;
    memset(&hr, 0, sizeof hr);
    memset(&hc, 0, sizeof hc);
    hr.ud = &v->cap_r;
    hr.attn_out_input = cap_attn_out_in;
    hc.ud = &v->cap_c;
    hc.attn_out_input = cap_attn_out_in;
    if (per_linear) {
        hr.attn_input = cap_attn_in;
        hr.mlp_input = cap_mlp_in;
        hr.mlp_hidden = cap_mlp_hidden;
    }
    memcpy(v->xin, v->xr, count * sizeof(float));
    memcpy(v->xc, v->xr, count * sizeof(float));
    SPX_TRY(rc, spx_block_forward(ctx, v->ref, v->sr, l, v->xr, C, &hr));
    SPX_TRY(rc, spx_block_forward(ctx, v->cand, v->sc, l, v->xc, C, &hc));
    /* the attention sublayer output is what the block added through attn_output: recompute it
     * from the captured input with each model's own layer (the same call the block made) */
    spx_linear_forward(&v->ref->layers[l].o, v->cap_r.a, C, v->attn_r);
    spx_linear_forward(&v->cand->layers[l].o, v->cap_c.a, C, v->attn_c);
    acc_add(acc_at(v, l, 0), v->attn_c, v->attn_r, count);
    for (size_t i = 0; i < count; i++) {
        double x0 = (double)v->xin[i];
        double br = (double)v->xr[i] - x0, bc = (double)v->xc[i] - x0;
        /* mlp = X_out - (X_in + attn), X_in + attn rounded to fp32 as the runtime's residual add */
        double mr = (double)v->xr[i] - (double)(v->xin[i] + v->attn_r[i]);
        double mc = (double)v->xc[i] - (double)(v->xin[i] + v->attn_c[i]);
        num_m += (mc - mr) * (mc - mr);
        den_m += mr * mr;
        num_b += (bc - br) * (bc - br);
        den_b += br * br;
    }
    acc_at(v, l, 1)->num += num_m;
    acc_at(v, l, 1)->den += den_m;
    acc_at(v, l, 2)->num += num_b;
    acc_at(v, l, 2)->den += den_b;
    if (per_linear)
        compare_linears(v, l);
done:
    return rc;
}

int spx_verify_position(const float *lr, const float *lc, uint32_t vocab, uint32_t target, spx_verify_pos *out,
                        int *which)
{
    double mr, mc, sr = 0.0, sc = 0.0, lser, lsec, kl = 0.0;
    uint32_t ar = 0, ac = 0;
    for (uint32_t j = 0; j < vocab; j++) {
        if (!isfinite(lr[j])) {
            *which = 0;
            return SPX_E_NUMERIC;
        }
        if (!isfinite(lc[j])) {
            *which = 1;
            return SPX_E_NUMERIC;
        }
        if (lr[j] > lr[ar])
            ar = j;
        if (lc[j] > lc[ac])
            ac = j;
    }
    mr = (double)lr[ar];
    mc = (double)lc[ac];
    for (uint32_t j = 0; j < vocab; j++) {
        sr += exp((double)lr[j] - mr);
        sc += exp((double)lc[j] - mc);
    }
    lser = mr + log(sr);
    lsec = mc + log(sc);
    for (uint32_t j = 0; j < vocab; j++) {
        double lpr = (double)lr[j] - lser, lpc = (double)lc[j] - lsec;
        kl += exp(lpr) * (lpr - lpc);
    }
    out->kl = kl > 0.0 ? kl : 0.0;
    out->top_ref = ar;
    out->top_cand = ac;
    out->nll_ref = target < vocab ? lser - (double)lr[target] : 0.0;
    out->nll_cand = target < vocab ? lsec - (double)lc[target] : 0.0;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double spx_verify_percentile(double *v, size_t n, double q)
{
    size_t k;
    qsort(v, n, sizeof *v, cmp_double);
    k = (size_t)ceil(q * (double)n);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

/* Running sums over all compared positions. */
typedef struct logit_acc {
    double kl_sum, kl_max, nll_r, nll_c;
    uint64_t agree, count;
} logit_acc;

/* Candidate's own forward on window `win`, then both classifiers in chunks and the per-position
 * statistics of positions 0..C-2. v->xr holds the reference's final residual stream. */
static int compare_logits(spx_ctx *ctx, verifier *v, const uint32_t *win, uint64_t w, logit_acc *a)
{
    int rc = 0;
    const uint32_t C = v->C;
    SPX_TRY(rc, spx_embed(ctx, v->cand, win, C, v->xc));
    for (uint32_t l = 0; l < v->n_layers; l++)
        SPX_TRY(rc, spx_block_forward(ctx, v->cand, v->sc, l, v->xc, C, NULL));
    for (uint32_t off = 0; off + 1 < C; off += HEAD_CHUNK) {
        uint32_t nb = C - 1 - off < HEAD_CHUNK ? C - 1 - off : HEAD_CHUNK;
        spx_head(v->ref, v->xr + (size_t)off * v->dim, nb, v->lr);
        spx_head(v->cand, v->xc + (size_t)off * v->dim, nb, v->lc);
        for (uint32_t i = 0; i < nb; i++) {
            uint32_t p = off + i;
            spx_verify_pos s;
            int which = 0;
            if (spx_verify_position(v->lr + (size_t)i * v->vocab, v->lc + (size_t)i * v->vocab, v->vocab, win[p + 1],
                                    &s, &which) < 0)
                SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "verify: the %s model produced a non-finite logit at window %llu "
                         "position %u", which ? "candidate" : "reference", (unsigned long long)w, p);
            v->kl[a->count] = s.kl;
            a->kl_sum += s.kl;
            if (s.kl > a->kl_max)
                a->kl_max = s.kl;
            a->nll_r += s.nll_ref;
            a->nll_c += s.nll_cand;
            a->agree += s.top_ref == s.top_cand;
            a->count++;
        }
    }
done:
    return rc;
}

int spx_verify_compare(spx_ctx *ctx, const spx_model *cand, const spx_model *ref, const uint32_t *tokens,
                       size_t n, const spx_verify_opts *opts, spx_verify_result *out)
{
    int rc = 0;
    verifier v;
    logit_acc la = {0};
    uint64_t windows;
    const uint32_t C = opts->ctx;
    spx_verify_result r;
    memset(&v, 0, sizeof v);
    memset(&r, 0, sizeof r);
    SPX_TRY(rc, check_models(ctx, cand, ref));
    if (C < 2 || C > INT32_MAX)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "verify: window length %u must be in 2..2^31-1", C);
    if (n < C)
        SPX_FAIL(ctx, rc, SPX_E_DATA, "verify: %zu tokens are fewer than one window of %u", n, C);
    windows = n / C;
    if (opts->max_windows && windows > opts->max_windows)
        windows = opts->max_windows;
    for (size_t i = 0; i < windows * C; i++)
        if (tokens[i] >= ref->cfg.vocab_size)
            SPX_FAIL(ctx, rc, SPX_E_DATA, "verify: token id %u at index %zu is out of range (vocabulary size %u)",
                     tokens[i], i, ref->cfg.vocab_size);
    SPX_TRY(rc, verifier_init(ctx, &v, cand, ref, C, windows, opts->per_linear));
    for (uint64_t w = 0; w < windows; w++) {
        const uint32_t *win = tokens + w * C;
        spx_state_reset(v.sr);
        spx_state_reset(v.sc);
        SPX_TRY(rc, spx_embed(ctx, ref, win, C, v.xr));
        for (uint32_t l = 0; l < v.n_layers; l++)
            SPX_TRY(rc, compare_block(ctx, &v, l, opts->per_linear));
        SPX_TRY(rc, compare_logits(ctx, &v, win, w, &la));
        spx_progress_report(&opts->progress, "verify", w + 1, windows);
    }
    r.layers = calloc(v.n_layers ? v.n_layers : 1, sizeof *r.layers);
    if (!r.layers)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "verify: out of memory");
    r.n_layers = v.n_layers;
    for (uint32_t l = 0; l < v.n_layers; l++) {
        spx_verify_layer *L = &r.layers[l];
        L->attn_rel = rel_of(acc_at(&v, l, 0));
        L->mlp_rel = rel_of(acc_at(&v, l, 1));
        L->block_rel = rel_of(acc_at(&v, l, 2));
        for (int i = 0; i < SPX_VERIFY_N_LINEARS; i++) {
            L->linear_cmp[i] = v.lin_cmp[(size_t)l * SPX_VERIFY_N_LINEARS + (size_t)i];
            L->linear_rel[i] = L->linear_cmp[i] ? rel_of(acc_at(&v, l, 3 + i)) : 0.0;
        }
    }
    r.ctx = C;
    r.windows = windows;
    r.positions = la.count;
    r.dropped = (uint64_t)n - windows * C;
    r.kl_mean = la.kl_sum / (double)la.count;
    r.kl_max = la.kl_max;
    r.kl_p999 = spx_verify_percentile(v.kl, (size_t)la.count, 0.999);
    r.top1 = (double)la.agree / (double)la.count;
    r.nll_ref = la.nll_r / (double)la.count;
    r.nll_cand = la.nll_c / (double)la.count;
    r.ppl_ref = exp(r.nll_ref);
    r.ppl_cand = exp(r.nll_cand);
    r.ppl_ratio = exp(r.nll_cand - r.nll_ref);
    *out = r;
    r.layers = NULL;
done:
    free(r.layers);
    verifier_free(&v);
    return rc;
}

void spx_verify_result_free(spx_verify_result *r)
{
    if (!r)
        return;
    free(r->layers);
    memset(r, 0, sizeof *r);
}
