/* test_verify_ppl.c: perplexity protocol and greedy generation on a small random model.
 *
 * spx_forward itself is checked against a double reference in test_verify_forward.c; here the
 * windowing (W = N / C windows, C-1 predictions each, remainder dropped), the double-precision
 * log-softmax and the greedy loop are checked against straightforward recomputations:
 *  - nll_sum equals the sum, recomputed in double from full-window logits, of
 *    log(sum exp l) - l[target] (relative 1e-6: the evaluator runs the window in chunks of
 *    max_batch tokens, which changes fp32 rounding at the 1e-7 level);
 *  - a model whose classifier is all zeros has ppl == vocab exactly (uniform prediction);
 *  - spx_generate equals argmax of a full recomputation of the growing sequence at every step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_arch.h"
#include "spx_forward.h"
#include "spx_format.h"
#include "spx_generate.h"
#include "spx_model.h"
#include "spx_ppl.h"
#include "spx_test.h"

static uint64_t g_seed = 777;

static int add_rand(spx_writer *w, int layer, const char *base, uint64_t d0, uint64_t d1, double scale, double offset)
{
    char name[96];
    size_t numel = (size_t)d0 * (d1 ? d1 : 1);
    uint64_t dims[2] = {d0, d1};
    float *v = malloc(numel * sizeof(float));
    int rc;
    spx_tensor_name(name, sizeof name, layer, base, "weight");
    for (size_t i = 0; i < numel; i++)
        v[i] = (float)(offset + scale * spx_test_normal(&g_seed));
    rc = spx_writer_add_f32(w, name, SPX_ROLE_OTHER, SPX_NO_INDEX, SPX_NO_INDEX, SPX_DTYPE_F32, v, d1 ? 2 : 1, dims);
    free(v);
    return rc;
}

/* Small GQA model; zero_head: untied classifier of zeros. */
static int write_model(const char *path, const spx_model_config *c, int zero_head)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    uint64_t d = c->dim, f = c->ffn_dim, hq = (uint64_t)c->n_heads * c->head_dim, hk = (uint64_t)c->n_kv_heads * c->head_dim;
    int rc = spx_writer_open(&ctx, path, "spx-test", &w);
    if (rc == 0)
        rc = spx_config_to_meta(w, c);
    if (rc == 0)
        rc = add_rand(w, -1, "token_embd", c->vocab_size, d, 1.0, 0.0);
    if (rc == 0)
        rc = add_rand(w, -1, "output_norm", d, 0, 0.1, 1.0);
    if (rc == 0 && !c->tied_embeddings)
        rc = add_rand(w, -1, "output", c->vocab_size, d, zero_head ? 0.0 : 0.5, 0.0);
    for (int l = 0; rc == 0 && l < (int)c->n_layers; l++) {
        double s = 2.0 / sqrt((double)d);
        if (rc == 0) rc = add_rand(w, l, "attn_norm", d, 0, 0.1, 1.0);
        if (rc == 0) rc = add_rand(w, l, "ffn_norm", d, 0, 0.1, 1.0);
        if (rc == 0) rc = add_rand(w, l, "attn_q", hq, d, s, 0.0);
        if (rc == 0) rc = add_rand(w, l, "attn_k", hk, d, s, 0.0);
        if (rc == 0) rc = add_rand(w, l, "attn_v", hk, d, s, 0.0);
        if (rc == 0) rc = add_rand(w, l, "attn_output", d, hq, s, 0.0);
        if (rc == 0) rc = add_rand(w, l, "ffn_gate", f, d, s, 0.0);
        if (rc == 0) rc = add_rand(w, l, "ffn_up", f, d, s, 0.0);
        if (rc == 0) rc = add_rand(w, l, "ffn_down", d, f, 1.0 / sqrt((double)f), 0.0);
    }
    if (rc == 0)
        rc = spx_writer_finish(w);
    if (rc != 0)
        fprintf(stderr, "write_model: %s %s\n", ctx.msg, w ? spx_writer_ctx(w)->msg : "");
    spx_writer_free(w);
    return rc;
}

static void config(spx_model_config *c)
{
    spx_config_init_llama(c);
    c->vocab_size = 41;
    c->context_length = 64;
    c->dim = 24;
    c->ffn_dim = 40;
    c->n_layers = 2;
    c->n_heads = 6;
    c->n_kv_heads = 2;
    c->head_dim = 4;
    c->rope_dim = 4;
    c->tied_embeddings = 1;
    c->bos_id = 1;
    c->eos_id = -1;
}

static void check_ppl(spx_model *m)
{
    enum { N = 50, C = 8 };
    spx_ctx ctx = SPX_CTX_INIT;
    spx_state *st = NULL, *full = NULL;
    uint32_t tok[N];
    const uint32_t V = m->cfg.vocab_size;
    float *lg = malloc((size_t)C * V * sizeof(float));
    spx_ppl_result r;
    double want = 0;
    for (int i = 0; i < N; i++)
        tok[i] = (uint32_t)(spx_test_rand(&g_seed) % V);
    CHECK_RC(spx_state_new(&ctx, m, 16, 3, &st), 0);    /* windows run in chunks of 3 tokens */
    CHECK_RC(spx_state_new(&ctx, m, C, C, &full), 0);
    for (uint32_t w = 0; w < N / C; w++) {
        spx_state_reset(full);
        CHECK_RC(spx_forward(&ctx, m, full, tok + w * C, C, lg, NULL), 0);
        for (uint32_t p = 0; p + 1 < C; p++) {
            double s = 0;
            for (uint32_t j = 0; j < V; j++)
                s += exp((double)lg[p * V + j]);
            want += log(s) - (double)lg[p * V + tok[w * C + p + 1]];
        }
    }
    CHECK_RC(spx_ppl_eval(&ctx, m, st, tok, N, C, 0, NULL, &r), 0);
    CHECK(r.windows == N / C);
    CHECK(r.tokens == (N / C) * (C - 1));
    CHECK(r.dropped == N % C);
    CHECK(r.ctx == C);
    CHECK_NEAR(r.nll_sum, want, 1e-6 * want);
    CHECK_NEAR(r.nll_mean, r.nll_sum / (double)r.tokens, 1e-15);
    CHECK_NEAR(r.ppl, exp(want / (double)r.tokens), 1e-6 * r.ppl);
    fprintf(stderr, "random model: ppl %.6f over %llu predictions (expected %.6f)\n", r.ppl,
            (unsigned long long)r.tokens, exp(want / (double)r.tokens));

    CHECK_RC(spx_ppl_eval(&ctx, m, st, tok, N, C, 2, NULL, &r), 0);
    CHECK(r.windows == 2 && r.tokens == 2 * (C - 1) && r.dropped == N - 2 * C);
    CHECK_RC(spx_ppl_eval(&ctx, m, st, tok, C - 1, C, 0, NULL, &r), SPX_E_DATA);
    CHECK_RC(spx_ppl_eval(&ctx, m, st, tok, N, 17, 0, NULL, &r), SPX_E_ARG);
    CHECK_RC(spx_ppl_eval(&ctx, m, st, tok, N, 1, 0, NULL, &r), SPX_E_ARG);
    tok[C + 3] = V;
    CHECK_RC(spx_ppl_eval(&ctx, m, st, tok, N, C, 0, NULL, &r), SPX_E_ARG);
    spx_state_free(st);
    spx_state_free(full);
    free(lg);
}

static void check_nll(void)
{
    float big[3] = {1000.0f, 0.0f, -1000.0f};
    float flat[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    CHECK_NEAR(spx_ppl_nll(big, 3, 0), 0.0, 1e-12);         /* exp(-1000) vanishes, no overflow */
    CHECK_NEAR(spx_ppl_nll(big, 3, 1), 1000.0, 1e-9);
    CHECK_NEAR(spx_ppl_nll(big, 3, 2), 2000.0, 1e-9);
    CHECK_NEAR(spx_ppl_nll(flat, 4, 3), log(4.0), 1e-15);
    big[1] = NAN;
    CHECK(isnan(spx_ppl_nll(big, 3, 0)));
    {
        float v[5] = {1.0f, 3.0f, 3.0f, NAN, 2.0f};
        float w[3] = {NAN, -1.0f, -2.0f};
        CHECK(spx_argmax(v, 5) == 1);
        CHECK(spx_argmax(w, 3) == 1);
    }
}

typedef struct gen_rec {
    uint32_t ids[64];
    size_t n, stop_after;
} gen_rec;

static int rec_token(void *ud, uint32_t id, const char *piece, size_t len)
{
    gen_rec *g = ud;
    (void)len;
    CHECK(piece == NULL);
    g->ids[g->n++] = id;
    return g->stop_after && g->n >= g->stop_after;
}

static void check_generate(spx_model *m)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_state *st = NULL, *full = NULL;
    const uint32_t V = m->cfg.vocab_size;
    uint32_t seq[40] = {1, 7, 9};
    size_t np = 3, got = 0;
    float *last = malloc(V * sizeof(float));
    gen_rec g;
    memset(&g, 0, sizeof g);
    CHECK_RC(spx_state_new(&ctx, m, 40, 8, &st), 0);
    CHECK_RC(spx_state_new(&ctx, m, 40, 40, &full), 0);
    CHECK_RC(spx_generate(&ctx, m, st, NULL, seq, np, 12, rec_token, &g, &got), 0);
    CHECK(got == 12 && g.n == 12);
    for (size_t k = 0; k < g.n && k < 12; k++) {   /* full recomputation of the growing sequence */
        spx_state_reset(full);
        CHECK_RC(spx_forward(&ctx, m, full, seq, np + k, NULL, last), 0);
        seq[np + k] = spx_argmax(last, V);
        CHECK_MSG(seq[np + k] == g.ids[k], "step %zu: generate %u, recomputed %u", k, g.ids[k], seq[np + k]);
    }
    /* the callback stops generation */
    memset(&g, 0, sizeof g);
    g.stop_after = 3;
    spx_state_reset(st);
    CHECK_RC(spx_generate(&ctx, m, st, NULL, seq, np, 12, rec_token, &g, &got), 0);
    CHECK(got == 3);
    /* a full cache ends generation: 3 prompt + 4 cached positions -> 5 tokens reported */
    {
        spx_state *small = NULL;
        memset(&g, 0, sizeof g);
        CHECK_RC(spx_state_new(&ctx, m, 7, 8, &small), 0);
        CHECK_RC(spx_generate(&ctx, m, small, NULL, seq, np, 12, rec_token, &g, &got), 0);
        CHECK(got == 5);
        CHECK(memcmp(g.ids, seq + np, 5 * sizeof(uint32_t)) == 0);
        spx_state_free(small);
    }
    /* EOS stops without being reported */
    {
        spx_model_config saved = m->cfg;
        m->cfg.eos_id = (int32_t)seq[np + 4];
        size_t first = 4;
        for (size_t k = 0; k < 4 && first == 4; k++)
            if (seq[np + k] == seq[np + 4])
                first = k;
        memset(&g, 0, sizeof g);
        spx_state_reset(st);
        CHECK_RC(spx_generate(&ctx, m, st, NULL, seq, np, 12, rec_token, &g, &got), 0);
        CHECK(got == first);
        m->cfg = saved;
    }
    spx_state_reset(st);
    CHECK_RC(spx_generate(&ctx, m, st, NULL, seq, 0, 12, NULL, NULL, &got), SPX_E_ARG);
    spx_state_free(st);
    spx_state_free(full);
    free(last);
}

int spx_test_main(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model_config c;
    spx_model *m = NULL;
    const char *path = spx_test_path(spx_test_tmpdir(), "m.spx");
    enum { N = 40, C = 10 };
    uint32_t tok[N];
    spx_state *st = NULL;
    spx_ppl_result r;

    check_nll();
    config(&c);
    CHECK_RC(write_model(path, &c, 0), 0);
    CHECK_RC(spx_model_open(&ctx, path, 0, &m), 0);
    if (m) {
        check_ppl(m);
        check_generate(m);
    }
    spx_model_free(m);
    m = NULL;

    /* all-zero classifier: every prediction is uniform, ppl == vocab exactly */
    c.tied_embeddings = 0;
    CHECK_RC(write_model(path, &c, 1), 0);
    CHECK_RC(spx_model_open(&ctx, path, 0, &m), 0);
    if (m) {
        for (int i = 0; i < N; i++)
            tok[i] = (uint32_t)(spx_test_rand(&g_seed) % c.vocab_size);
        CHECK_RC(spx_state_new(&ctx, m, C, C, &st), 0);
        CHECK_RC(spx_ppl_eval(&ctx, m, st, tok, N, C, 0, NULL, &r), 0);
        CHECK_NEAR(r.ppl, (double)c.vocab_size, 1e-9);
        CHECK(r.tokens == (N / C) * (C - 1));
    }
    spx_state_free(st);
    spx_model_free(m);
    return 0;
}
