/* test_verify_gate.c: gated neuron experts (MoEfication "moe", DSTI "dsti", LTE "lte") in the
 * runtime, on small random models written through the writer API (E = 6 experts of 8 neurons).
 *
 * For each kind: router scores (spx_gate_scores on the captured router input) match a double
 * reimplementation, rel < 1e-5 per token (fp32 with <= 32-term dot products: ~1e-7 expected);
 * the selection seen through the mlp_hidden hook (blocks with a nonzero activation) equals both
 * spx_gate_select on those scores and a naive reimplementation of each rule on the double scores
 * (exact; the random data have no near-ties); logits match a naive double forward that computes
 * the dense FFN hidden state and zeroes the unselected experts' activations, rel < 1e-5 (a wrong
 * block or a missed expert gives ~1e-2 or more); the work counters equal the reference's count;
 * token-by-token decode equals the batched run (rel < 1e-5). With every expert selected
 * (top_k = E, tau = 1, threshold = 0) the logits equal the dense model's (rel < 1e-5: the down
 * projection is summed per block). Overrides: topk, oracle (true top-k by activation mass) and
 * random (k distinct experts per token, reproducible, batching-independent). Selection rules on
 * hand-made ties; malformed files fail with named errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_forward.h"
#include "spx_model.h"
#include "spx_moe.h"
#include "spx_ppl.h"
#include "spx_test.h"
#include "test_verify_moe_util.h"

#define NTOK 13
#define TOL 1e-5
#define E 6
#define NL 2

/* ---- building gated models ------------------------------------------------------------------ */

typedef struct gspec {
    int kind;
    int gated, act, bias;
    uint32_t hidden, top_k;
    double tau, threshold;
    int input_norm;
    const char *kind_str;         /* metadata override (NULL: the kind's name) */
    uint32_t experts_meta;        /* 0: E */
    int omit_param;               /* leave out top_k / tau / threshold */
} gspec;

static int write_meta(spx_writer *w, void *ud)
{
    const gspec *g = ud;
    const char *k = g->kind_str ? g->kind_str : spx_gate_kind_name(g->kind);
    int rc = spx_writer_meta_str(w, "spx.gate.kind", k, strlen(k));
    if (!rc)
        rc = spx_writer_meta_u32(w, "spx.gate.experts", g->experts_meta ? g->experts_meta : E);
    if (!rc)
        rc = spx_writer_meta_bool(w, "spx.gate.input_norm", g->input_norm);
    if (!rc && !g->omit_param) {
        if (g->kind == SPX_GATE_MOE)
            rc = spx_writer_meta_u32(w, "spx.gate.top_k", g->top_k);
        else if (g->kind == SPX_GATE_DSTI)
            rc = spx_writer_meta_f32(w, "spx.gate.tau", (float)g->tau);
        else
            rc = spx_writer_meta_f32(w, "spx.gate.threshold", (float)g->threshold);
    }
    return rc;
}

static void build_gated(tmv_model *m, const gspec *g)
{
    spx_model_config c;
    tmv_seed = 999;
    tmv_config(&c, g->gated, g->act, g->bias);
    tmv_build(m, &c);
    for (uint32_t l = 0; l < NL; l++) {
        double s1 = g->input_norm ? 1.0 : 1.0 / sqrt((double)c.dim);
        uint32_t h = g->kind == SPX_GATE_LTE ? E : g->hidden;
        tmv_add(m, SPX_ROLE_ROUTER, l, SPX_NO_INDEX, h, c.dim, s1, 0.0, "blk.%u.ffn_router.w1", l);
        tmv_add(m, SPX_ROLE_ROUTER, l, SPX_NO_INDEX, h, 0, 0.1, 0.0, "blk.%u.ffn_router.b1", l);
        if (g->kind != SPX_GATE_LTE) {
            tmv_add(m, SPX_ROLE_ROUTER, l, SPX_NO_INDEX, E, h, 1.0 / sqrt((double)h), 0.0, "blk.%u.ffn_router.w2", l);
            tmv_add(m, SPX_ROLE_ROUTER, l, SPX_NO_INDEX, E, 0, 0.1, 0.0, "blk.%u.ffn_router.b2", l);
        }
    }
}

/* ---- naive reference ------------------------------------------------------------------------ */

enum { SEL_RULE, SEL_TOPK, SEL_ORACLE, SEL_GIVEN };

typedef struct gref {
    gspec g;
    int mode;
    uint32_t k;
    const uint8_t (*given)[NTOK][E];   /* [layer][token][expert] for SEL_GIVEN */
    uint64_t run;                      /* blocks selected */
    uint8_t sel[NL][NTOK][E];          /* the reference's selections */
} gref;

static void ref_scores(const tmv_model *m, uint32_t l, const gspec *g, const double *a, double *s)
{
    const uint32_t D = m->c.dim, h = g->kind == SPX_GATE_LTE ? E : g->hidden;
    double x[64], hid[64], nrm = 0;
    char n[96];
    for (uint32_t i = 0; i < D; i++)
        nrm += a[i] * a[i];
    for (uint32_t i = 0; i < D; i++)
        x[i] = g->input_norm ? a[i] / sqrt(nrm) : a[i];
    snprintf(n, sizeof n, "blk.%u.ffn_router.w1", l);
    const float *w1 = tmv_get(m, n);
    snprintf(n, sizeof n, "blk.%u.ffn_router.b1", l);
    tmv_mv(w1, tmv_get(m, n), x, h, D, hid);
    if (g->kind == SPX_GATE_LTE) {
        for (uint32_t e = 0; e < E; e++)
            s[e] = 1.0 / (1.0 + exp(-hid[e]));
        return;
    }
    for (uint32_t i = 0; i < h; i++)
        hid[i] = g->kind == SPX_GATE_MOE ? tanh(hid[i]) : (hid[i] > 0 ? hid[i] : 0);
    snprintf(n, sizeof n, "blk.%u.ffn_router.w2", l);
    const float *w2 = tmv_get(m, n);
    snprintf(n, sizeof n, "blk.%u.ffn_router.b2", l);
    tmv_mv(w2, tmv_get(m, n), hid, E, h, s);
    if (g->kind == SPX_GATE_DSTI)
        for (uint32_t e = 0; e < E; e++)
            s[e] = fabs(s[e]);
}

/* k largest, ties to the lower index: repeated strict-maximum scans. */
static void naive_topk(const double *s, uint32_t k, uint8_t *sel)
{
    memset(sel, 0, E);
    for (uint32_t r = 0; r < k; r++) {
        int best = -1;
        for (int e = 0; e < E; e++)
            if (!sel[e] && (best < 0 || s[e] > s[best]))
                best = e;
        sel[best] = 1;
    }
}

static void naive_select(const gspec *g, const double *s, uint8_t *sel)
{
    if (g->kind == SPX_GATE_MOE) {
        naive_topk(s, g->top_k, sel);
    } else if (g->kind == SPX_GATE_DSTI) {
        /* order by repeated strict-maximum scans, then add experts until tau * total is reached */
        uint8_t taken[E] = {0};
        int order[E];
        double total = 0, cum = 0, tau = (double)(float)g->tau;
        for (int r = 0; r < E; r++) {
            int best = -1;
            for (int e = 0; e < E; e++)
                if (!taken[e] && (best < 0 || s[e] > s[best]))
                    best = e;
            taken[best] = 1;
            order[r] = best;
            total += s[best];
        }
        memset(sel, 0, E);
        for (int r = 0; r < E; r++) {
            cum += s[order[r]];
            sel[order[r]] = 1;
            if (cum >= tau * total)
                break;
        }
    } else {
        int any = 0, best = 0;
        for (int e = 0; e < E; e++) {
            sel[e] = s[e] >= (double)(float)g->threshold;
            any |= sel[e];
            if (s[e] > s[best])
                best = e;
        }
        if (!any)
            sel[best] = 1;
    }
}

static void ref_mlp_gate(void *ud, const tmv_model *m, uint32_t l, size_t t, const double *a, double *y)
{
    gref *r = ud;
    const uint32_t F = m->c.ffn_dim, B = F / E;
    double *h = malloc(F * sizeof(double)), s[E];
    uint8_t *sel = r->sel[l][t];
    tmv_ffn_hidden(m, l, "", a, h);
    if (r->mode == SEL_GIVEN) {
        memcpy(sel, r->given[l][t], E);
    } else if (r->mode == SEL_ORACLE) {
        for (int e = 0; e < E; e++) {
            s[e] = 0;
            for (uint32_t j = 0; j < B; j++)
                s[e] += fabs(h[(uint32_t)e * B + j]);
        }
        naive_topk(s, r->k, sel);
    } else {
        ref_scores(m, l, &r->g, a, s);
        if (r->mode == SEL_TOPK)
            naive_topk(s, r->k, sel);
        else
            naive_select(&r->g, s, sel);
    }
    for (int e = 0; e < E; e++) {
        r->run += sel[e];
        if (!sel[e])
            for (uint32_t j = 0; j < B; j++)
                h[(uint32_t)e * B + j] = 0;
    }
    tmv_ffn_down(m, l, "", h, y);
    free(h);
}

/* ---- captures ------------------------------------------------------------------------------- */

typedef struct cap {
    uint32_t dim, ffn;
    float m[NL][NTOK * 64], h[NL][NTOK * 64];
    uint8_t sel[NL][NTOK][E];
    size_t nm[NL], nh[NL], ns[NL];
} cap;

static void cap_gate(void *ud, uint32_t layer, const uint8_t *sel, size_t n, uint32_t n_experts)
{
    cap *c = ud;
    CHECK(n_experts == E && c->ns[layer] + n <= NTOK);
    memcpy(c->sel[layer][c->ns[layer]], sel, n * E);
    c->ns[layer] += n;
}

static void cap_mlp_in(void *ud, uint32_t layer, const float *x, size_t n)
{
    cap *c = ud;
    memcpy(c->m[layer] + c->nm[layer] * c->dim, x, n * c->dim * sizeof(float));
    c->nm[layer] += n;
}

static void cap_hidden(void *ud, uint32_t layer, const float *h, size_t n)
{
    cap *c = ud;
    memcpy(c->h[layer] + c->nh[layer] * c->ffn, h, n * c->ffn * sizeof(float));
    c->nh[layer] += n;
}

/* The captured selection, checked against the hidden states: unselected blocks are zero. */
static void cap_selection(const cap *c, uint8_t sel[NL][NTOK][E])
{
    const uint32_t B = c->ffn / E;
    memcpy(sel, c->sel, sizeof c->sel);
    for (int l = 0; l < NL; l++) {
        CHECK(c->ns[l] == NTOK);
        for (int t = 0; t < NTOK; t++)
            for (int e = 0; e < E; e++)
                for (uint32_t j = 0; j < B && !sel[l][t][e]; j++)
                    CHECK(c->h[l][(size_t)t * c->ffn + (uint32_t)e * B + j] == 0.0f);
    }
}

/* Batched run with captures; returns logits (malloc'ed) and the state's counters. */
static float *run(spx_model *model, const uint32_t *tok, cap *cp, int one_by_one, uint64_t *run_blocks,
                  double *frac)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_state *st = NULL;
    const size_t V = model->cfg.vocab_size;
    float *lg = malloc(NTOK * V * sizeof(float));
    spx_forward_hooks hooks = {cp, NULL, NULL, cap_mlp_in, cap_hidden};
    if (cp) {
        memset(cp->nm, 0, sizeof cp->nm);
        memset(cp->nh, 0, sizeof cp->nh);
        memset(cp->ns, 0, sizeof cp->ns);
    }
    CHECK_RC(spx_state_new(&ctx, model, NTOK, 16, &st), 0);
    if (!st)
        return lg;
    if (cp)
        spx_state_set_gate_hook(st, cap_gate, cp);
    if (one_by_one)
        for (int i = 0; i < NTOK; i++)
            CHECK_RC(spx_forward_hooked(&ctx, model, st, tok + i, 1, lg + (size_t)i * V, NULL, cp ? &hooks : NULL), 0);
    else
        CHECK_RC(spx_forward_hooked(&ctx, model, st, tok, NTOK, lg, NULL, cp ? &hooks : NULL), 0);
    if (run_blocks)
        *run_blocks = st->ffn_blocks_run;
    if (frac)
        *frac = spx_state_ffn_fraction(st);
    CHECK(st->ffn_blocks_total == (spx_model_has_gating(model) ? (uint64_t)NTOK * NL * E : 0));
    CHECK(st->ffn_neurons_total == (uint64_t)NTOK * NL * model->cfg.ffn_dim);
    spx_state_free(st);
    return lg;
}

static spx_model *open_gated(const tmv_model *m, const gspec *g, const char *name)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model *model = NULL;
    const char *p = spx_test_path(spx_test_tmpdir(), name);
    gspec gg = *g;
    CHECK_RC(tmv_write(m, p, NULL, write_meta, &gg), 0);
    CHECK_RC(spx_model_open(&ctx, p, SPX_MODEL_VERIFY_DATA, &model), 0);
    if (!model)
        fprintf(stderr, "open %s: %s\n", name, ctx.msg);
    return model;
}

static void make_tokens(uint32_t *tok, uint32_t V)
{
    uint64_t s = 31337;
    for (int i = 0; i < NTOK; i++)
        tok[i] = (uint32_t)(spx_test_rand(&s) % V);
}

/* ---- 1. each kind against the reference ----------------------------------------------------- */

static void test_kind(const gspec *g)
{
    spx_ctx ctx = SPX_CTX_INIT;
    tmv_model *m = calloc(1, sizeof *m);
    cap *cp = calloc(1, sizeof *cp);
    gref *ref = calloc(1, sizeof *ref);
    uint8_t (*seen)[NTOK][E] = calloc(NL, sizeof *seen);
    spx_model *model;
    uint32_t tok[NTOK];
    build_gated(m, g);
    model = open_gated(m, g, "gated.spx");
    if (model) {
        const size_t V = model->cfg.vocab_size, D = model->cfg.dim;
        double *lref = malloc(NTOK * V * sizeof(double)), frac, e;
        uint64_t runb;
        float *lg, *lg1, *work = malloc(NTOK * (D + 64) * sizeof(float)), sc[NTOK * E];
        uint32_t ord[2 * E];
        uint8_t sel[E];
        cp->dim = model->cfg.dim;
        cp->ffn = model->cfg.ffn_dim;
        make_tokens(tok, (uint32_t)V);
        lg = run(model, tok, cp, 0, &runb, &frac);
        ref->g = *g;
        ref->mode = SEL_RULE;
        tmv_forward(m, tok, NTOK, ref_mlp_gate, ref, lref);
        e = tmv_rel(lg, lref, NTOK, V);
        fprintf(stderr, "%s: logits vs reference rel %.3g, ffn fraction %.3f\n", spx_gate_kind_name(g->kind), e, frac);
        CHECK_MSG(e < TOL, "%s: logits rel err %g", spx_gate_kind_name(g->kind), e);
        CHECK(runb == ref->run);
        CHECK_NEAR(frac, (double)ref->run / (NTOK * NL * E), 1e-15);
        CHECK(frac < 1.0 && frac > 0.0);
        cap_selection(cp, seen);
        CHECK_MSG(memcmp(seen, ref->sel, sizeof ref->sel) == 0, "%s: selection differs from the naive rule",
                  spx_gate_kind_name(g->kind));
        for (uint32_t l = 0; l < NL; l++) {
            const spx_gate *gt = model->layers[l].gating;
            spx_gate_scores(gt, cp->m[l], NTOK, work, sc);
            for (int t = 0; t < NTOK; t++) {
                double a[64], s[E], num = 0, den = 0;
                for (size_t i = 0; i < D; i++)
                    a[i] = cp->m[l][(size_t)t * D + i];
                ref_scores(m, l, g, a, s);
                for (int x = 0; x < E; x++) {
                    num += (sc[t * E + x] - s[x]) * (sc[t * E + x] - s[x]);
                    den += s[x] * s[x];
                }
                CHECK_MSG(sqrt(num / den) < TOL, "%s: scores rel err %g", spx_gate_kind_name(g->kind), sqrt(num / den));
                spx_gate_select(gt, sc + t * E, ord, sel);
                CHECK(memcmp(sel, seen[l][t], E) == 0);
            }
        }
        lg1 = run(model, tok, NULL, 1, NULL, NULL);
        e = tmv_rel_ff(lg1, lg, NTOK, V);
        CHECK_MSG(e < TOL, "%s: decode vs batched rel err %g", spx_gate_kind_name(g->kind), e);
        free(lg), free(lg1), free(lref), free(work);
    }
    (void)ctx;
    spx_model_free(model);
    tmv_free(m);
    free(m), free(cp), free(ref), free(seen);
}

/* ---- 2. every expert selected == the dense model; in-memory attach == file ------------------ */

static void test_all_selected(gspec g)
{
    spx_ctx ctx = SPX_CTX_INIT;
    tmv_model *m = calloc(1, sizeof *m), *dm = calloc(1, sizeof *dm);
    spx_model *model, *dense = NULL;
    const char *pd = spx_test_path(spx_test_tmpdir(), "dense.spx");
    uint32_t tok[NTOK];
    g.top_k = E;
    g.tau = 1.0;
    g.threshold = 0.0;
    build_gated(m, &g);
    tmv_seed = 999;
    tmv_build(dm, &m->c);
    model = open_gated(m, &g, "all.spx");
    CHECK_RC(tmv_write(dm, pd, NULL, NULL, NULL), 0);
    CHECK_RC(spx_model_open(&ctx, pd, 0, &dense), 0);
    if (model && dense) {
        const size_t V = model->cfg.vocab_size;
        double frac, *dd = malloc(NTOK * V * sizeof(double)), e;
        float *a, *b;
        make_tokens(tok, (uint32_t)V);
        a = run(model, tok, NULL, 0, NULL, &frac);
        b = run(dense, tok, NULL, 0, NULL, NULL);
        for (size_t i = 0; i < NTOK * V; i++)
            dd[i] = b[i];
        e = tmv_rel(a, dd, NTOK, V);
        fprintf(stderr, "%s all experts vs dense: rel %.3g\n", spx_gate_kind_name(g.kind), e);
        CHECK_MSG(e < TOL, "%s: all experts vs dense rel err %g", spx_gate_kind_name(g.kind), e);
        CHECK(frac == 1.0);
        free(a), free(b), free(dd);

        /* the same gate built in memory and attached to the dense model */
        for (uint32_t l = 0; l < NL; l++) {
            spx_gate *gt = NULL;
            const spx_gate *fg = model->layers[l].gating;
            uint32_t h = fg->hidden;
            float *w1 = malloc((size_t)h * fg->dim * sizeof(float)), *b1 = malloc(h * sizeof(float));
            float *w2 = NULL, *b2 = NULL;
            memcpy(w1, fg->w1.w, (size_t)h * fg->dim * sizeof(float));
            memcpy(b1, fg->w1.bias, h * sizeof(float));
            if (g.kind != SPX_GATE_LTE) {
                w2 = malloc((size_t)E * h * sizeof(float));
                b2 = malloc(E * sizeof(float));
                memcpy(w2, fg->w2.w, (size_t)E * h * sizeof(float));
                memcpy(b2, fg->w2.bias, E * sizeof(float));
            }
            CHECK_RC(spx_gate_alloc(&ctx, g.kind, E, dense->cfg.dim, dense->cfg.ffn_dim, h, &gt), 0);
            if (!gt)
                break;
            CHECK_RC(spx_gate_set_router(&ctx, gt, w1, b1, w2, b2), 0);
            gt->top_k = fg->top_k;
            gt->tau = fg->tau;
            gt->threshold = fg->threshold;
            gt->input_norm = fg->input_norm;
            CHECK_RC(spx_gate_attach(&ctx, dense, l, gt), 0);
        }
        a = run(model, tok, NULL, 0, NULL, NULL);
        b = run(dense, tok, NULL, 0, NULL, NULL);
        CHECK_MSG(memcmp(a, b, NTOK * V * sizeof(float)) == 0, "attached gate differs from the file's");
        free(a), free(b);
    }
    spx_model_free(model);
    spx_model_free(dense);
    tmv_free(m), tmv_free(dm);
    free(m), free(dm);
}

/* spx ppl --json on a gated file: ffn_fraction and perplexity as computed in-process, for the
 * file's rule and an override; usage errors exit 2. */
static void test_cli(spx_model *model, const char *path)
{
    spx_ctx ctx = SPX_CTX_INIT;
    const char *spx = spx_test_env("SPX"), *ptok = spx_test_path(spx_test_tmpdir(), "tok.u32");
    static char out[1 << 14];
    char cmd[2048];
    uint32_t tok[40];
    uint64_t s = 9;
    spx_state *st = NULL;
    spx_ppl_result r;
    if (!spx || !*spx) {
        fprintf(stderr, "SPX is not set: CLI checks skipped\n");
        return;
    }
    for (int i = 0; i < 40; i++)
        tok[i] = (uint32_t)(spx_test_rand(&s) % model->cfg.vocab_size);
    CHECK(tmv_write_tokens(ptok, tok, 40) == 0);
    CHECK_RC(spx_state_new(&ctx, model, 13, 13, &st), 0);
    if (!st)
        return;
    CHECK_RC(spx_model_set_gate_override(&ctx, model, SPX_GATE_MODE_ROUTER, 0, 0), 0);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            CHECK_RC(spx_model_set_gate_override(&ctx, model, SPX_GATE_MODE_RANDOM, 2, 3), 0);
        spx_state_clear_counters(st);
        st->seq = 0;
        CHECK_RC(spx_ppl_eval(&ctx, model, st, tok, 40, 13, 0, NULL, &r), 0);
        snprintf(cmd, sizeof cmd, "'%s' ppl '%s' --tokens '%s' --ctx 13 --json%s", spx, path, ptok,
                 pass ? " --gate-mode random --gate-k 2 --gate-seed 3" : "");
        CHECK(tmv_sh(cmd, out, sizeof out) == 0);
        fprintf(stderr, "cli: %s", out);
        CHECK_NEAR(tmv_json_num(out, "ppl"), r.ppl, 1e-9 * r.ppl);
        CHECK_NEAR(tmv_json_num(out, "ffn_fraction"), spx_state_ffn_fraction(st), 1e-9);
        CHECK(strstr(out, "flops_per_token") == NULL);
    }
    CHECK_NEAR(spx_state_ffn_fraction(st), 2.0 / E, 1e-15);
    CHECK_RC(spx_model_set_gate_override(&ctx, model, SPX_GATE_MODE_ROUTER, 0, 0), 0);
    snprintf(cmd, sizeof cmd, "'%s' ppl '%s' --tokens '%s' --ctx 13 --gate-mode oracle 2>/dev/null", spx, path, ptok);
    CHECK(tmv_sh(cmd, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "'%s' ppl '%s' --tokens '%s' --ctx 13 --gate-k 2 2>/dev/null", spx, path, ptok);
    CHECK(tmv_sh(cmd, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "'%s' ppl '%s' --tokens '%s' --ctx 13 --gate-mode topk --gate-k 2.5 2>/dev/null", spx,
             path, ptok);
    CHECK(tmv_sh(cmd, out, sizeof out) == 2);
    spx_state_free(st);
}

/* ---- 3. run-time overrides ------------------------------------------------------------------ */

static void test_overrides(const gspec *g)
{
    spx_ctx ctx = SPX_CTX_INIT;
    tmv_model *m = calloc(1, sizeof *m);
    cap *cp = calloc(1, sizeof *cp);
    gref *ref = calloc(1, sizeof *ref);
    uint8_t (*seen)[NTOK][E] = calloc(NL, sizeof *seen);
    spx_model *model;
    uint32_t tok[NTOK];
    build_gated(m, g);
    model = open_gated(m, g, "ovr.spx");
    if (model) {
        const size_t V = model->cfg.vocab_size;
        double *lref = malloc(NTOK * V * sizeof(double)), frac, e;
        uint64_t runb;
        float *lg, *lg2;
        static const int modes[2] = {SPX_GATE_MODE_TOPK, SPX_GATE_MODE_ORACLE};
        cp->dim = model->cfg.dim;
        cp->ffn = model->cfg.ffn_dim;
        make_tokens(tok, (uint32_t)V);
        for (int i = 0; i < 2; i++) {
            CHECK_RC(spx_model_set_gate_override(&ctx, model, modes[i], 2, 0), 0);
            lg = run(model, tok, cp, 0, &runb, &frac);
            memset(ref, 0, sizeof *ref);
            ref->g = *g;
            ref->mode = i == 0 ? SEL_TOPK : SEL_ORACLE;
            ref->k = 2;
            tmv_forward(m, tok, NTOK, ref_mlp_gate, ref, lref);
            e = tmv_rel(lg, lref, NTOK, V);
            fprintf(stderr, "override %s k=2: rel %.3g\n", i == 0 ? "topk" : "oracle", e);
            CHECK_MSG(e < TOL, "override %d: rel err %g", modes[i], e);
            CHECK(frac == 2.0 / E && runb == (uint64_t)2 * NTOK * NL);
            cap_selection(cp, seen);
            CHECK(memcmp(seen, ref->sel, sizeof ref->sel) == 0);
            free(lg);
        }
        /* random: k distinct per token; reproducible; seed-dependent; batching-independent */
        CHECK_RC(spx_model_set_gate_override(&ctx, model, SPX_GATE_MODE_RANDOM, 0.5, 5), 0);
        CHECK(spx_gate_override_k(&model->gate_override, E) == 3);
        lg = run(model, tok, cp, 0, &runb, &frac);
        CHECK(frac == 0.5);
        cap_selection(cp, seen);
        for (int l = 0; l < NL; l++)
            for (int t = 0; t < NTOK; t++) {
                int cnt = 0;
                for (int x = 0; x < E; x++)
                    cnt += seen[l][t][x];
                CHECK(cnt == 3);
            }
        memset(ref, 0, sizeof *ref);
        ref->g = *g;
        ref->mode = SEL_GIVEN;
        ref->given = (const uint8_t(*)[NTOK][E])seen;
        tmv_forward(m, tok, NTOK, ref_mlp_gate, ref, lref);
        e = tmv_rel(lg, lref, NTOK, V);
        CHECK_MSG(e < TOL, "random: rel err %g", e);
        lg2 = run(model, tok, NULL, 0, NULL, NULL);
        CHECK(memcmp(lg, lg2, NTOK * V * sizeof(float)) == 0);
        free(lg2);
        lg2 = run(model, tok, NULL, 1, NULL, NULL);
        e = tmv_rel_ff(lg2, lg, NTOK, V);
        CHECK_MSG(e < TOL, "random: decode vs batched rel err %g", e);
        free(lg2);
        CHECK_RC(spx_model_set_gate_override(&ctx, model, SPX_GATE_MODE_RANDOM, 3, 6), 0);
        lg2 = run(model, tok, NULL, 0, NULL, NULL);
        CHECK(memcmp(lg, lg2, NTOK * V * sizeof(float)) != 0);
        free(lg), free(lg2);
        CHECK_RC(spx_model_set_gate_override(&ctx, model, 9, 2, 0), SPX_E_ARG);
        CHECK_RC(spx_model_set_gate_override(&ctx, model, SPX_GATE_MODE_TOPK, 1.5, 0), SPX_E_ARG);
        CHECK_RC(spx_model_set_gate_override(&ctx, model, SPX_GATE_MODE_TOPK, 0, 0), SPX_E_ARG);
        CHECK_RC(spx_model_set_gate_override(&ctx, model, SPX_GATE_MODE_ROUTER, 0, 0), 0);
        CHECK_RC(spx_model_set_gate_override(&ctx, model, SPX_GATE_MODE_TOPK, 100, 0), 0);
        CHECK(spx_gate_override_k(&model->gate_override, E) == E);
        if (g->kind == SPX_GATE_MOE)
            test_cli(model, spx_test_path(spx_test_tmpdir(), "ovr.spx"));
        free(lref);
    }
    spx_model_free(model);
    tmv_free(m);
    free(m), free(cp), free(ref), free(seen);
}

/* ---- 4. selection rules on hand-made scores ------------------------------------------------- */

static int mask_is(const uint8_t *sel, uint32_t n, const char *want)
{
    for (uint32_t i = 0; i < n; i++)
        if (sel[i] != (uint8_t)(want[i] - '0'))
            return 0;
    return 1;
}

static void test_rules(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_gate *g = NULL;
    uint32_t ord[8];
    uint8_t sel[4];
    const float s1[4] = {1, 3, 3, 2}, s2[4] = {0, 2, 0, 1}, s3[4] = {0.2f, 0.7f, 0.5f, 0.1f}, s4[4] = {0.2f, 0.3f, 0.3f, 0.1f};
    const float z[4] = {0, 0, 0, 0};
    spx_gate_topk(s1, 4, 2, ord, sel);
    CHECK(mask_is(sel, 4, "0110"));
    spx_gate_topk(s1, 4, 3, ord, sel);
    CHECK(mask_is(sel, 4, "0111"));
    spx_gate_topk(z, 4, 1, ord, sel);
    CHECK(mask_is(sel, 4, "1000"));
    CHECK_RC(spx_gate_alloc(&ctx, SPX_GATE_DSTI, 4, 8, 8, 3, &g), 0);
    if (g) {
        g->tau = 0.5f;
        CHECK(spx_gate_select(g, s1, ord, sel) == 2 && mask_is(sel, 4, "0110"));
        g->tau = 0.7f;   /* 3 + 3 = 6 < 6.3: one more, the 2 */
        CHECK(spx_gate_select(g, s1, ord, sel) == 3 && mask_is(sel, 4, "0111"));
        g->tau = 1.0f;
        CHECK(spx_gate_select(g, s1, ord, sel) == 4);
        CHECK(spx_gate_select(g, s2, ord, sel) == 2 && mask_is(sel, 4, "0101"));
        CHECK(spx_gate_select(g, z, ord, sel) == 1 && mask_is(sel, 4, "1000"));
        g->kind = SPX_GATE_LTE;
        g->threshold = 0.5f;
        CHECK(spx_gate_select(g, s3, ord, sel) == 2 && mask_is(sel, 4, "0110"));
        g->threshold = 0.9f;
        CHECK(spx_gate_select(g, s4, ord, sel) == 1 && mask_is(sel, 4, "0100"));
        g->kind = SPX_GATE_MOE;
        g->top_k = 1;
        CHECK(spx_gate_select(g, s1, ord, sel) == 1 && mask_is(sel, 4, "0100"));
    }
    spx_gate_free(g);
    g = NULL;
    CHECK_RC(spx_gate_alloc(&ctx, SPX_GATE_MOE, 5, 8, 48, 5, &g), SPX_E_ARG);
    CHECK_RC(spx_gate_alloc(&ctx, SPX_GATE_LTE, 6, 8, 48, 5, &g), SPX_E_ARG);
    CHECK_RC(spx_gate_alloc(&ctx, SPX_GATE_LTE, 6, 8, 48, 6, &g), 0);
    if (g)
        CHECK_RC(spx_gate_set_router(&ctx, g, malloc(4), malloc(4), malloc(4), malloc(4)), SPX_E_ARG);
    spx_gate_free(g);
    spx_gate_free(NULL);
    CHECK(spx_gate_kind_parse("dsti") == SPX_GATE_DSTI && spx_gate_kind_parse("top") == -1);
}

/* ---- 5. malformed files --------------------------------------------------------------------- */

static void bad_case(const char *label, gspec g, const char *skip, const char *add, int want, const char *needle)
{
    spx_ctx ctx = SPX_CTX_INIT;
    tmv_model *m = calloc(1, sizeof *m);
    const char *p = spx_test_path(spx_test_tmpdir(), "bad.spx");
    spx_model *model = NULL;
    build_gated(m, &g);
    if (add) {   /* replace `add` by a tensor one row short */
        tmv_tensor *t = tmv_find(m, "%s", add);
        if (t)
            t->dims[0]--;
        else
            tmv_add(m, SPX_ROLE_ROUTER, 0, SPX_NO_INDEX, E, E, 1.0, 0.0, "%s", add);
    }
    CHECK_RC(tmv_write(m, p, skip, g.kind_str && !*g.kind_str ? NULL : write_meta, &g), 0);
    CHECK_RC(spx_model_open(&ctx, p, 0, &model), want);
    CHECK_MSG(strstr(ctx.msg, needle) != NULL, "%s: message '%s' does not name '%s'", label, ctx.msg, needle);
    fprintf(stderr, "%s: %s\n", label, ctx.msg);
    spx_model_free(model);
    tmv_free(m);
    free(m);
}

static void test_malformed(const gspec *moe, const gspec *lte)
{
    gspec g = *moe;
    bad_case("missing b2", g, "blk.1.ffn_router.b2", NULL, SPX_E_MISSING, "blk.1.ffn_router.b2");
    bad_case("w2 shape", g, NULL, "blk.0.ffn_router.w2", SPX_E_SHAPE, "blk.0.ffn_router.w2");
    g.kind_str = "topk";
    bad_case("kind", g, NULL, NULL, SPX_E_META, "spx.gate.kind");
    g.kind_str = "";
    bad_case("no metadata", g, NULL, NULL, SPX_E_MISSING, "spx.gate.kind");
    g = *moe;
    g.experts_meta = 5;
    bad_case("experts", g, NULL, NULL, SPX_E_SHAPE, "spx.gate.experts");
    g = *moe;
    g.omit_param = 1;
    bad_case("no top_k", g, NULL, NULL, SPX_E_MISSING, "spx.gate.top_k");
    g = *moe;
    g.top_k = E + 1;
    bad_case("top_k range", g, NULL, NULL, SPX_E_META, "spx.gate.top_k");
    g = *lte;
    bad_case("lte w2", g, NULL, "blk.0.ffn_router.w2", SPX_E_SHAPE, "blk.0.ffn_router.w2");
    g.kind = SPX_GATE_DSTI;
    g.kind_str = "dsti";
    g.tau = 0.0;
    g.hidden = 16;
    bad_case("tau range", g, NULL, NULL, SPX_E_META, "spx.gate.tau");
}

int spx_test_main(void)
{
    /* kind, gated, act, bias, hidden, top_k, tau, threshold, input_norm */
    const gspec moe = {SPX_GATE_MOE, 0, SPX_ACT_RELU, 1, E, 2, 0, 0, 1, NULL, 0, 0};
    const gspec dsti = {SPX_GATE_DSTI, 1, SPX_ACT_SILU, 0, 16, 0, 0.6, 0, 0, NULL, 0, 0};
    const gspec lte = {SPX_GATE_LTE, 1, SPX_ACT_GELU, 0, E, 0, 0, 0.5, 0, NULL, 0, 0};
    test_rules();
    test_kind(&moe);
    test_kind(&dsti);
    test_kind(&lte);
    test_all_selected(moe);
    test_all_selected(dsti);
    test_all_selected(lte);
    test_overrides(&moe);
    test_overrides(&dsti);
    test_malformed(&moe, &lte);
    return 0;
}
