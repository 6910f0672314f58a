/* test_verify_engine.c: the comparison engine of `spx verify` on small random models.
 *
 * Checks, each against an independent derivation:
 *  - identical models: every error exactly 0, KL exactly 0, top-1 1, ppl ratio exactly 1 (both
 *    runs are the same fp32 computation, so any nonzero value is a bug);
 *  - candidate = reference with ffn_down of block 1 scaled by s: the MLP output of block 1 is
 *    exactly s times the reference's (it is linear in W_down and its input is the reference's), so
 *    mlp_rel(1) = |s - 1| and the per-linear ffn_down figure = |s - 1|; every attention error and
 *    the errors of block 0 are exactly 0 (block 0's weights are identical and each block gets the
 *    reference's input); no other linear is reported. Tolerance 1e-5: the MLP output is recovered
 *    as X_out - (X_in + attn) from fp32 residuals, an fp32 rounding of ~1e-7 relative to |X|;
 *  - candidate with attn_output of block 0 scaled by s: attn_rel(0) = |s - 1| (same reasoning);
 *  - logit figures vs a recomputation from spx_forward logits of each model run separately:
 *    KL(ref || cand) from p = exp(l - logsumexp l) in double, nearest-rank 99.9th percentile,
 *    argmax agreement, ppl from spx_ppl_eval. Tolerance 1e-6 relative: the engine runs the
 *    classifier in chunks of 64 positions, which may change fp32 GEMM rounding at 1e-7;
 *  - spx_verify_position against a naive computation on random logits; the percentile rule;
 *  - errors: mismatched hidden size (SPX_E_SHAPE), too few tokens and out-of-range ids
 *    (SPX_E_DATA), bad window length (SPX_E_ARG);
 *  - thresholds and baseline decisions (messages name the figure), report save/load round trip. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_arch.h"
#include "spx_forward.h"
#include "spx_format.h"
#include "spx_model.h"
#include "spx_ppl.h"
#include "spx_test.h"
#include "spx_verify.h"
#include "spx_verify_report.h"

typedef struct tspec {
    int layer;
    const char *base;
    uint64_t d0, d1;   /* dims; d1 == 0: 1-D */
    double sc, off;    /* values off + sc * N(0, 1) */
} tspec;

/* Write a random model; tensor `scale_name` (may be NULL) is multiplied by `scale`. The same
 * seed gives the same weights, so two files differ only in that tensor. */
static int write_model(const char *path, const spx_model_config *c, const char *scale_name, double scale)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    uint64_t seed = 4242;
    const uint64_t d = c->dim, f = c->ffn_dim, hq = (uint64_t)c->n_heads * c->head_dim,
                   hk = (uint64_t)c->n_kv_heads * c->head_dim;
    tspec spec[64];
    int ns = 0, rc;
    spec[ns++] = (tspec){-1, "token_embd", c->vocab_size, d, 1.0, 0.0};
    spec[ns++] = (tspec){-1, "output_norm", d, 0, 0.1, 1.0};
    for (int l = 0; l < (int)c->n_layers; l++) {
        double s = 2.0 / sqrt((double)d);
        spec[ns++] = (tspec){l, "attn_norm", d, 0, 0.1, 1.0};
        spec[ns++] = (tspec){l, "ffn_norm", d, 0, 0.1, 1.0};
        spec[ns++] = (tspec){l, "attn_q", hq, d, s, 0.0};
        spec[ns++] = (tspec){l, "attn_k", hk, d, s, 0.0};
        spec[ns++] = (tspec){l, "attn_v", hk, d, s, 0.0};
        spec[ns++] = (tspec){l, "attn_output", d, hq, s, 0.0};
        spec[ns++] = (tspec){l, "ffn_gate", f, d, s, 0.0};
        spec[ns++] = (tspec){l, "ffn_up", f, d, s, 0.0};
        spec[ns++] = (tspec){l, "ffn_down", d, f, 1.0 / sqrt((double)f), 0.0};
    }
    rc = spx_writer_open(&ctx, path, "spx-test", &w);
    if (rc == 0)
        rc = spx_config_to_meta(w, c);
    for (int i = 0; rc == 0 && i < ns; i++) {
        char name[96];
        size_t numel = (size_t)spec[i].d0 * (spec[i].d1 ? spec[i].d1 : 1);
        uint64_t dims[2] = {spec[i].d0, spec[i].d1};
        float *v = malloc(numel * sizeof(float));
        spx_tensor_name(name, sizeof name, spec[i].layer, spec[i].base, "weight");
        for (size_t k = 0; k < numel; k++) {
            v[k] = (float)(spec[i].off + spec[i].sc * spx_test_normal(&seed));
            if (scale_name && strcmp(scale_name, name) == 0)
                v[k] = (float)((double)v[k] * scale);
        }
        rc = spx_writer_add_f32(w, name, SPX_ROLE_OTHER, SPX_NO_INDEX, SPX_NO_INDEX, SPX_DTYPE_F32, v,
                                spec[i].d1 ? 2 : 1, dims);
        free(v);
    }
    if (rc == 0)
        rc = spx_writer_finish(w);
    if (rc != 0)
        fprintf(stderr, "write_model: %s %s\n", ctx.msg, w ? spx_writer_ctx(w)->msg : "");
    spx_writer_free(w);
    return rc;
}

static void config(spx_model_config *c, uint32_t dim)
{
    spx_config_init_llama(c);
    c->vocab_size = 37;
    c->context_length = 64;
    c->dim = dim;
    c->ffn_dim = 40;
    c->n_layers = 2;
    c->n_heads = 6;
    c->n_kv_heads = 2;
    c->head_dim = dim / 6;
    c->rope_dim = dim / 6;
    c->tied_embeddings = 1;
}

static spx_model *open_model(const char *path)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model *m = NULL;
    if (spx_model_open(&ctx, path, 0, &m) != 0)
        fprintf(stderr, "open %s: %s\n", path, ctx.msg);
    return m;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Independent recomputation of the logit figures (see the file comment). */
static void check_logit_figures(spx_model *cand, spx_model *ref, const uint32_t *tok, size_t n, uint32_t C,
                                const spx_verify_result *r)
{
    spx_ctx ctx = SPX_CTX_INIT;
    const uint32_t V = ref->cfg.vocab_size;
    const size_t W = n / C;
    spx_state *sc = NULL, *sr = NULL;
    float *lc = malloc((size_t)C * V * sizeof(float)), *lr = malloc((size_t)C * V * sizeof(float));
    double *kl = malloc(W * (C - 1) * sizeof(double)), kl_sum = 0, kl_max = 0;
    size_t agree = 0, cnt = 0;
    spx_ppl_result pc, pr;
    CHECK_RC(spx_state_new(&ctx, cand, C, C, &sc), 0);
    CHECK_RC(spx_state_new(&ctx, ref, C, C, &sr), 0);
    for (size_t w = 0; w < W; w++) {
        spx_state_reset(sc);
        spx_state_reset(sr);
        CHECK_RC(spx_forward(&ctx, cand, sc, tok + w * C, C, lc, NULL), 0);
        CHECK_RC(spx_forward(&ctx, ref, sr, tok + w * C, C, lr, NULL), 0);
        for (uint32_t p = 0; p + 1 < C; p++) {
            const float *a = lr + (size_t)p * V, *b = lc + (size_t)p * V;
            double za = 0, zb = 0, k = 0;
            uint32_t ia = 0, ib = 0;
            for (uint32_t j = 0; j < V; j++) {
                za += exp((double)a[j]);
                zb += exp((double)b[j]);
                if (a[j] > a[ia]) ia = j;
                if (b[j] > b[ib]) ib = j;
            }
            for (uint32_t j = 0; j < V; j++) {
                double pa = exp((double)a[j]) / za, pb = exp((double)b[j]) / zb;
                k += pa * log(pa / pb);
            }
            kl[cnt++] = k;
            kl_sum += k;
            if (k > kl_max)
                kl_max = k;
            agree += ia == ib;
        }
    }
    qsort(kl, cnt, sizeof *kl, cmp_d);
    CHECK(r->positions == cnt && r->windows == W && r->ctx == C && r->dropped == n - W * C);
    CHECK_NEAR(r->kl_mean, kl_sum / (double)cnt, 1e-6 * (kl_sum / (double)cnt) + 1e-12);
    CHECK_NEAR(r->kl_max, kl_max, 1e-6 * kl_max + 1e-12);
    CHECK_NEAR(r->kl_p999, kl[(size_t)ceil(0.999 * (double)cnt) - 1], 1e-6 * kl_max + 1e-12);
    CHECK_NEAR(r->top1, (double)agree / (double)cnt, 1e-12);
    CHECK_RC(spx_ppl_eval(&ctx, cand, sc, tok, n, C, 0, NULL, &pc), 0);
    CHECK_RC(spx_ppl_eval(&ctx, ref, sr, tok, n, C, 0, NULL, &pr), 0);
    CHECK_NEAR(r->ppl_cand, pc.ppl, 1e-6 * pc.ppl);
    CHECK_NEAR(r->ppl_ref, pr.ppl, 1e-6 * pr.ppl);
    CHECK_NEAR(r->ppl_ratio, pc.ppl / pr.ppl, 1e-6 * pc.ppl / pr.ppl);
    fprintf(stderr, "  kl mean %.6g max %.6g p999 %.6g top1 %.4f ppl %.4f/%.4f\n", r->kl_mean, r->kl_max, r->kl_p999,
            r->top1, r->ppl_cand, r->ppl_ref);
    spx_state_free(sc);
    spx_state_free(sr);
    free(lc);
    free(lr);
    free(kl);
}

static void check_compare(const char *dir)
{
    enum { N = 70, C = 16 };
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model_config cfg;
    spx_verify_opts o = SPX_VERIFY_OPTS_INIT;
    spx_verify_result r;
    uint32_t tok[N];
    uint64_t seed = 99;
    const char *pr = spx_test_path(dir, "ref.spx"), *pd = spx_test_path(dir, "down.spx"),
               *po = spx_test_path(dir, "attn.spx"), *pw = spx_test_path(dir, "wide.spx");
    spx_model *ref, *down, *attn, *wide;
    config(&cfg, 24);
    CHECK_RC(write_model(pr, &cfg, NULL, 1.0), 0);
    CHECK_RC(write_model(pd, &cfg, "blk.1.ffn_down.weight", 1.25), 0);
    CHECK_RC(write_model(po, &cfg, "blk.0.attn_output.weight", 0.5), 0);
    config(&cfg, 36);
    CHECK_RC(write_model(pw, &cfg, NULL, 1.0), 0);
    ref = open_model(pr);
    down = open_model(pd);
    attn = open_model(po);
    wide = open_model(pw);
    if (!ref || !down || !attn || !wide) {
        spx_test_failures++;
        goto out;
    }
    for (int i = 0; i < N; i++)
        tok[i] = (uint32_t)(spx_test_rand(&seed) % cfg.vocab_size);
    o.ctx = C;

    /* identical */
    CHECK_RC(spx_verify_compare(&ctx, ref, ref, tok, N, &o, &r), 0);
    CHECK(r.kl_mean == 0 && r.kl_max == 0 && r.kl_p999 == 0 && r.top1 == 1.0 && r.ppl_ratio == 1.0);
    for (uint32_t l = 0; l < r.n_layers; l++) {
        CHECK(r.layers[l].attn_rel == 0 && r.layers[l].mlp_rel == 0 && r.layers[l].block_rel == 0);
        for (int i = 0; i < SPX_VERIFY_N_LINEARS; i++)
            CHECK(!r.layers[l].linear_cmp[i]);
    }
    spx_verify_result_free(&r);

    /* ffn_down of block 1 scaled by 1.25 */
    fprintf(stderr, "ffn_down x1.25:\n");
    CHECK_RC(spx_verify_compare(&ctx, down, ref, tok, N, &o, &r), 0);
    CHECK(r.n_layers == 2);
    CHECK(r.layers[0].attn_rel == 0 && r.layers[0].mlp_rel == 0 && r.layers[0].block_rel == 0);
    CHECK(r.layers[1].attn_rel == 0);
    CHECK_NEAR(r.layers[1].mlp_rel, 0.25, 1e-5);
    CHECK(r.layers[1].block_rel > 0 && r.layers[1].block_rel < 0.25);
    for (int i = 0; i < SPX_VERIFY_N_LINEARS; i++) {
        CHECK(!r.layers[0].linear_cmp[i]);
        CHECK(r.layers[1].linear_cmp[i] == (i == 6));
    }
    CHECK_NEAR(r.layers[1].linear_rel[6], 0.25, 1e-5);
    CHECK(r.kl_mean > 0 && r.top1 <= 1.0);
    check_logit_figures(down, ref, tok, N, C, &r);
    spx_verify_result_free(&r);

    /* attn_output of block 0 scaled by 0.5; per-linear figures off */
    fprintf(stderr, "attn_output x0.5:\n");
    o.per_linear = 0;
    CHECK_RC(spx_verify_compare(&ctx, attn, ref, tok, N, &o, &r), 0);
    CHECK_NEAR(r.layers[0].attn_rel, 0.5, 1e-5);
    CHECK(r.layers[0].mlp_rel > 0);
    CHECK(r.layers[1].attn_rel == 0 && r.layers[1].mlp_rel == 0 && r.layers[1].block_rel == 0);
    for (int i = 0; i < SPX_VERIFY_N_LINEARS; i++)
        CHECK(!r.layers[0].linear_cmp[i]);
    check_logit_figures(attn, ref, tok, N, C, &r);
    spx_verify_result_free(&r);
    o.per_linear = 1;

    /* --max-windows */
    o.max_windows = 2;
    CHECK_RC(spx_verify_compare(&ctx, down, ref, tok, N, &o, &r), 0);
    CHECK(r.windows == 2 && r.positions == 2 * (C - 1) && r.dropped == N - 2 * C);
    spx_verify_result_free(&r);
    o.max_windows = 0;

    /* errors */
    CHECK_RC(spx_verify_compare(&ctx, wide, ref, tok, N, &o, &r), SPX_E_SHAPE);
    CHECK(strstr(ctx.msg, "hidden size") != NULL);
    CHECK_RC(spx_verify_compare(&ctx, down, ref, tok, C - 1, &o, &r), SPX_E_DATA);
    tok[5] = cfg.vocab_size;
    CHECK_RC(spx_verify_compare(&ctx, down, ref, tok, N, &o, &r), SPX_E_DATA);
    CHECK(strstr(ctx.msg, "index 5") != NULL);
    tok[5] = 0;
    o.ctx = 1;
    CHECK_RC(spx_verify_compare(&ctx, down, ref, tok, N, &o, &r), SPX_E_ARG);
out:
    spx_model_free(ref);
    spx_model_free(down);
    spx_model_free(attn);
    spx_model_free(wide);
}

static void check_position(void)
{
    uint64_t seed = 5;
    float a[50], b[50];
    for (int t = 0; t < 20; t++) {
        spx_verify_pos s;
        int which = -1;
        double za = 0, zb = 0, kl = 0;
        uint32_t ia = 0, ib = 0;
        for (int j = 0; j < 50; j++)
            a[j] = (float)(3.0 * spx_test_normal(&seed));
        a[7] = a[3] = 40.0f;   /* tie: the lowest index wins */
        for (int j = 0; j < 50; j++)
            b[j] = t == 0 ? a[j] : (float)(3.0 * spx_test_normal(&seed));
        for (int j = 0; j < 50; j++) {
            za += exp((double)a[j] - 40.0);
            zb += exp((double)b[j] - 40.0);
            if (a[j] > a[ia]) ia = (uint32_t)j;
            if (b[j] > b[ib]) ib = (uint32_t)j;
        }
        for (int j = 0; j < 50; j++) {
            double pa = exp((double)a[j] - 40.0) / za, pb = exp((double)b[j] - 40.0) / zb;
            kl += pa * (log(pa) - log(pb));
        }
        CHECK_RC(spx_verify_position(a, b, 50, 11, &s, &which), 0);
        CHECK(s.top_ref == 3 && ia == 3 && s.top_cand == ib);
        CHECK_NEAR(s.kl, t == 0 ? 0.0 : kl, 1e-9 * (kl + 1));
        CHECK_NEAR(s.nll_ref, 40.0 + log(za) - (double)a[11], 1e-9);
        CHECK_NEAR(s.nll_cand, 40.0 + log(zb) - (double)b[11], 1e-9);
        if (t == 0)
            CHECK(s.kl == 0.0);
    }
    b[9] = NAN;
    {
        spx_verify_pos s;
        int which = -1;
        CHECK_RC(spx_verify_position(a, b, 50, 0, &s, &which), SPX_E_NUMERIC);
        CHECK(which == 1);
    }
}

static void check_percentile(void)
{
    double v[1000], one = 4.0, few[3] = {3, 1, 2};
    for (int i = 0; i < 1000; i++)
        v[i] = (double)(999 - i);
    /* nearest rank: ceil(0.999 * 1000) = 999th smallest = 998 */
    CHECK(spx_verify_percentile(v, 1000, 0.999) == 998.0);
    CHECK(spx_verify_percentile(&one, 1, 0.999) == 4.0);
    CHECK(spx_verify_percentile(few, 3, 0.999) == 3.0);
    CHECK(spx_verify_percentile(few, 3, 0.5) == 2.0);
}

static void check_decisions(const char *dir)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_verify_result r;
    spx_verify_layer layers[1];
    spx_verify_limits lim = {NAN, NAN, NAN};
    spx_verify_failures f;
    spx_verify_report rep;
    spx_verify_baseline b;
    const char *path = spx_test_path(dir, "base.json");
    memset(&r, 0, sizeof r);
    memset(layers, 0, sizeof layers);
    memset(&f, 0, sizeof f);
    memset(&rep, 0, sizeof rep);
    r.ctx = 8;
    r.windows = 3;
    r.positions = 21;
    r.kl_mean = 0.1;
    r.kl_max = 0.9;
    r.top1 = 0.8;
    r.ppl_ratio = 5.93;
    r.n_layers = 1;
    r.layers = layers;
    spx_verify_check_limits(&r, &lim, &f);
    CHECK(f.n == 0);
    lim.max_ppl_ratio = 1.5;
    lim.max_kl = 0.2;
    lim.min_top1 = 0.9;
    spx_verify_check_limits(&r, &lim, &f);
    CHECK(f.n == 2);
    CHECK(strcmp(f.msg[0], "ppl ratio 5.93 > --max-ppl-ratio 1.5") == 0);
    CHECK(strstr(f.msg[1], "top-1 agreement 0.8000 < --min-top1 0.9") != NULL);

    rep.candidate = "c.spx";
    rep.reference = "r.spx";
    rep.data = "t.txt";
    rep.cmp = &r;
    rep.limits = &lim;
    rep.failures = &f;
    CHECK_RC(spx_verify_report_save(&ctx, &rep, path), 0);
    CHECK_RC(spx_verify_baseline_load(&ctx, path, &b), 0);
    CHECK(b.ctx == 8 && b.positions == 21 && b.ppl_ratio == 5.93 && b.kl_mean == 0.1 && b.top1 == 0.8);
    memset(&f, 0, sizeof f);
    spx_verify_check_baseline(&r, &b, 0.01, 0.005, &f);
    CHECK(f.n == 0);
    r.ppl_ratio = 5.93 * 1.009;   /* within 1% */
    r.top1 = 0.796;               /* within 0.5 pp */
    spx_verify_check_baseline(&r, &b, 0.01, 0.005, &f);
    CHECK(f.n == 0);
    r.ppl_ratio = 5.93 * 1.02;
    r.kl_mean = 0.1 * 1.02;
    r.top1 = 0.79;
    spx_verify_check_baseline(&r, &b, 0.01, 0.005, &f);
    CHECK(f.n == 3);
    CHECK(strncmp(f.msg[0], "ppl ratio", 9) == 0 && strncmp(f.msg[1], "kl mean", 7) == 0 &&
          strncmp(f.msg[2], "top-1 agreement", 15) == 0);
    memset(&f, 0, sizeof f);
    r.positions = 20;
    spx_verify_check_baseline(&r, &b, 0.01, 0.005, &f);
    CHECK(f.n == 1 && strstr(f.msg[0], "setup differs") != NULL);
    /* zero baseline KL tolerates rounding noise below 1e-9 nats */
    memset(&f, 0, sizeof f);
    r.positions = 21;
    r.ppl_ratio = b.ppl_ratio;
    r.top1 = b.top1;
    b.kl_mean = 0;
    r.kl_mean = 1e-12;
    spx_verify_check_baseline(&r, &b, 0.01, 0.005, &f);
    CHECK(f.n == 0);

    /* a report without figures is not a baseline */
    rep.cmp = NULL;
    CHECK_RC(spx_verify_report_save(&ctx, &rep, path), 0);
    CHECK_RC(spx_verify_baseline_load(&ctx, path, &b), SPX_E_JSON);
    CHECK_RC(spx_verify_baseline_load(&ctx, spx_test_path(dir, "missing.json"), &b), SPX_E_IO);
}

int spx_test_main(void)
{
    const char *dir = spx_test_tmpdir();
    check_position();
    check_percentile();
    check_compare(dir);
    check_decisions(dir);
    return 0;
}
