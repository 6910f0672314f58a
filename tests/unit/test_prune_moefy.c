/* test_prune_moefy.c: MoEfication of a whole model (prune/spx_moefy_run.h) on a synthetic ReLU
 * Llama (`spx synth --act relu`: each token's MLP input carries one of 4 planted clusters and each
 * cluster drives its own neurons, MoEfication's home turf):
 *   - the moe router's held-out recall of the oracle top-k is well above the random recall k/E, for
 *     the parameter and the co-activation split; dsti and lte beat random choice of the same size;
 *   - token subsampling, determinism of the written file, the file layout (spx.gate.* keys, router
 *     tensors, permuted rows/columns equal to the original's, other tensors verbatim);
 *   - the permutation leaves the dense model unchanged through the runtime, and the written file
 *     with every expert selected (top_k = E) computes the dense logits in the gated runtime;
 *   - errors: E not dividing ffn, an already gated input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_convert.h"
#include "spx_forward.h"
#include "spx_moefy_run.h"
#include "spx_synth.h"
#include "spx_test.h"

#define NS 16u
#define SL 64u

static int make_model(const char *dir, const char *spx)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_synth_opts so;
    spx_synth_opts_init(&so);
    so.act = SPX_ACT_RELU;
    so.ffn_dim = 128;
    so.n_layers = 2;
    if (spx_synth_write(&ctx, &so, dir, NULL) < 0)
        return -1;
    spx_convert_opts co = SPX_CONVERT_OPTS_INIT;
    co.input = dir;
    co.output = spx;
    return spx_convert(&ctx, &co, NULL);
}

static double run(const spx_model *m, spx_moefy_opts *o, const uint32_t *win, spx_moefy_result **res,
                  const char *label)
{
    spx_ctx ctx = SPX_CTX_INIT;
    double worst = 1e9;
    CHECK_RC(spx_moefy_model(&ctx, m, win, NS, SL, o, res), 0);
    if (!*res)
        return 0;
    for (uint32_t l = 0; l < (*res)->n_layers; l++) {
        const spx_moefy_layer *L = &(*res)->layers[l];
        fprintf(stderr, "%-12s block %u: recall %.4f random %.4f sel %.3f mass %.3f loss %.4g -> %.4g (%u epochs)\n",
                label, l, L->eval.recall, L->eval.random_recall, L->eval.sel_frac, L->eval.mass_cov,
                L->train.init_heldout_loss, L->train.heldout_loss, L->train.epochs);
        CHECK(spx_moefy_is_perm(L->perm, (*res)->ffn));
        CHECK(L->eval.tokens == (*res)->heldout);
        CHECK(L->train.heldout_loss < L->train.init_heldout_loss);
        worst = fmin(worst, L->eval.recall - L->eval.random_recall);
        if (o->gate.kind == SPX_ROUTER_MOE)
            CHECK_MSG(L->eval.recall > 2.0 * L->eval.random_recall, "%s block %u: recall %.4f", label, l,
                      L->eval.recall);
        else
            CHECK_MSG(L->eval.recall > L->eval.random_recall + 0.1, "%s block %u: recall %.4f vs random %.4f", label,
                      l, L->eval.recall, L->eval.random_recall);
    }
    return worst;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *b = NULL;
    long sz;
    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        b = malloc((size_t)sz);
        if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
            free(b);
            b = NULL;
        }
        *n = (size_t)sz;
    }
    fclose(f);
    return b;
}

/* The written file: metadata, router shapes, permuted rows/columns, verbatim tensors. */
static void check_file(const char *in_path, const char *out_path, const spx_moefy_result *res)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_file *in = NULL, *out = NULL;
    CHECK_RC(spx_file_open(&ctx, in_path, 0, &in), 0);
    CHECK_RC(spx_file_open(&ctx, out_path, SPX_OPEN_VERIFY_DATA, &out), 0);
    if (!in || !out)
        goto done;
    const char *kind = NULL;
    size_t klen = 0;
    uint32_t E = 0, k = 0;
    int inorm = 0;
    CHECK_RC(spx_meta_get_str(&ctx, out, "spx.gate.kind", &kind, &klen), 0);
    CHECK(kind && strcmp(kind, "moe") == 0);
    CHECK_RC(spx_meta_get_u32(&ctx, out, "spx.gate.experts", &E), 0);
    CHECK_RC(spx_meta_get_u32(&ctx, out, "spx.gate.top_k", &k), 0);
    CHECK_RC(spx_meta_get_bool(&ctx, out, "spx.gate.input_norm", &inorm), 0);
    CHECK(E == 8 && k == 2 && inorm == 1);
    CHECK(spx_file_meta_find(out, "spx.gate.tau") == NULL);
    CHECK(spx_file_tensor_count(out) == spx_file_tensor_count(in) + 4 * res->n_layers);
    const uint32_t f = res->ffn, d = 64;
    for (uint32_t l = 0; l < res->n_layers; l++) {
        char name[96];
        const uint32_t *perm = res->layers[l].perm;
        static const char *const rn[4] = {"w1", "b1", "w2", "b2"};
        const uint64_t shp[4][2] = {{E, d}, {E, 0}, {E, E}, {E, 0}};
        for (int i = 0; i < 4; i++) {
            snprintf(name, sizeof name, "blk.%u.ffn_router.%s", l, rn[i]);
            const spx_tensor *t = spx_file_find(out, name);
            CHECK_MSG(t && t->role == SPX_ROLE_ROUTER && t->dtype == SPX_DTYPE_F32 && t->layer == l &&
                          t->dims[0] == shp[i][0] && t->dims[1] == shp[i][1] && t->ndim == (shp[i][1] ? 2 : 1),
                      "%s", name);
        }
        snprintf(name, sizeof name, "blk.%u.ffn_router.w1", l);
        const spx_tensor *tw = spx_file_find(out, name);
        if (tw)
            CHECK(memcmp(spx_file_data(out, tw), res->layers[l].router->w1, (size_t)E * d * sizeof(float)) == 0);
        static const char *const pn[3] = {"ffn_gate", "ffn_up", "ffn_down"};
        for (int i = 0; i < 3; i++) {
            spx_tensor_name(name, sizeof name, (int)l, pn[i], "weight");
            const spx_tensor *a = spx_file_find(in, name), *b = spx_file_find(out, name);
            if (!a || !b) {
                CHECK_MSG(0, "%s missing", name);
                continue;
            }
            const float *A = spx_file_data(in, a), *B = spx_file_data(out, b);
            int same = a->dims[0] == b->dims[0] && a->dims[1] == b->dims[1] && b->role == a->role;
            for (uint32_t r = 0; same && r < (i < 2 ? f : d); r++)
                for (uint32_t c = 0; c < (i < 2 ? d : f); c++)
                    same &= i < 2 ? B[(size_t)r * d + c] == A[(size_t)perm[r] * d + c]
                                  : B[(size_t)r * f + c] == A[(size_t)r * f + perm[c]];
            CHECK_MSG(same, "%s is not the permuted original", name);
        }
        spx_tensor_name(name, sizeof name, (int)l, "attn_q", "weight");
        const spx_tensor *qa = spx_file_find(in, name), *qb = spx_file_find(out, name);
        CHECK(qa && qb && qa->data_crc32 == qb->data_crc32 && qa->data_size == qb->data_size);
    }
done:
    spx_file_free(in);
    spx_file_free(out);
}

/* max |a - b| / max |a| over n values */
static double rel_diff(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)a[i]));
    }
    return num / den;
}

/* logits [SL x vocab] of the first window */
static int logits_of(spx_model *m, const uint32_t *win, float *logits)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_state *st = NULL;
    int rc = spx_state_new(&ctx, m, SL, SL, &st);
    if (rc == 0)
        rc = spx_forward(&ctx, m, st, win, SL, logits, NULL);
    spx_state_free(st);
    return rc;
}

static void check_runtime(const char *dense, const char *all_path, const spx_moefy_result *res, const uint32_t *win)
{
    /* fp32 forward: the permutation only reorders the sums over neurons in sgemm, so logits agree
     * to round-off (measured ~1e-7 relative to the largest logit); bound 1e-5. */
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model *m0 = NULL, *m1 = NULL, *mg = NULL;
    CHECK_RC(spx_model_open(&ctx, dense, 0, &m0), 0);
    CHECK_RC(spx_model_open(&ctx, dense, SPX_MODEL_COPY_WEIGHTS, &m1), 0);
    if (!m0 || !m1)
        goto done;
    const size_t V = m0->cfg.vocab_size, f = m0->cfg.ffn_dim, d = m0->cfg.dim;
    float *L0 = malloc(SL * V * sizeof(float)), *L1 = malloc(SL * V * sizeof(float));
    float *tmp = malloc(f * d * sizeof(float));
    for (uint32_t l = 0; l < res->n_layers; l++) {
        spx_layer *L = &m1->layers[l];
        const uint32_t *p = res->layers[l].perm;
        spx_moefy_permute_rows(L->gate.w, f, d, p, tmp);
        memcpy(L->gate.owned, tmp, f * d * sizeof(float));
        spx_moefy_permute_rows(L->up.w, f, d, p, tmp);
        memcpy(L->up.owned, tmp, f * d * sizeof(float));
        spx_moefy_permute_cols(L->down.w, d, f, p, tmp);
        memcpy(L->down.owned, tmp, f * d * sizeof(float));
    }
    CHECK_RC(logits_of(m0, win, L0), 0);
    CHECK_RC(logits_of(m1, win, L1), 0);
    double r1 = rel_diff(L0, L1, SL * V);
    fprintf(stderr, "runtime logits, permuted dense model vs dense: rel %.3g\n", r1);
    CHECK(r1 < 1e-5);
    /* the written file with top_k = E (every expert runs) through the gated runtime */
    CHECK_RC(spx_model_open(&ctx, all_path, 0, &mg), 0);
    if (mg) {
        CHECK_RC(logits_of(mg, win, L1), 0);
        double r2 = rel_diff(L0, L1, SL * V);
        fprintf(stderr, "runtime logits, gated file with top_k = E vs dense: rel %.3g\n", r2);
        CHECK(r2 < 1e-5);
    }
    free(L0);
    free(L1);
    free(tmp);
done:
    spx_model_free(m0);
    spx_model_free(m1);
    spx_model_free(mg);
}

int spx_test_main(void)
{
    const char *tmp = spx_test_tmpdir();
    const char *dir = spx_test_path(tmp, "synth");
    char dense[4096], out1[4096], out2[4096], all[4096];
    snprintf(dense, sizeof dense, "%s", spx_test_path(tmp, "dense.spx"));
    snprintf(out1, sizeof out1, "%s", spx_test_path(tmp, "moe1.spx"));
    snprintf(out2, sizeof out2, "%s", spx_test_path(tmp, "moe2.spx"));
    snprintf(all, sizeof all, "%s", spx_test_path(tmp, "all.spx"));
    CHECK(make_model(dir, dense) == 0);
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model *m = NULL;
    CHECK_RC(spx_model_open(&ctx, dense, 0, &m), 0);
    if (!m)
        return 0;
    uint32_t *win = malloc(NS * SL * sizeof(uint32_t));
    uint64_t s = 5;
    for (size_t i = 0; i < NS * SL; i++)
        win[i] = (uint32_t)(spx_test_rand(&s) % m->cfg.vocab_size);

    spx_moefy_opts o;
    spx_moefy_result *r1 = NULL, *r2 = NULL, *r = NULL;
    spx_moefy_opts_init(&o, SPX_ROUTER_MOE);
    o.experts = 8;
    o.gate.top_k = 2;
    run(m, &o, win, &r1, "moe/param");
    if (r1)
        CHECK(r1->tokens == NS * SL && r1->heldout == NS * SL / 10);
    run(m, &o, win, &r2, "moe/param");
    if (r1 && r2) {
        CHECK_RC(spx_moefy_write(&ctx, m, out1, r1, &o, NULL, NULL), 0);
        CHECK_RC(spx_moefy_write(&ctx, m, out2, r2, &o, NULL, NULL), 0);
        size_t n1 = 0, n2 = 0;
        uint8_t *b1 = slurp(out1, &n1), *b2 = slurp(out2, &n2);
        CHECK_MSG(b1 && b2 && n1 == n2 && memcmp(b1, b2, n1) == 0, "two runs wrote different files");
        free(b1);
        free(b2);
        check_file(dense, out1, r1);
        spx_moefy_opts oa = o;
        oa.gate.top_k = oa.experts;
        CHECK_RC(spx_moefy_write(&ctx, m, all, r1, &oa, NULL, NULL), 0);
        check_runtime(dense, all, r1, win);
    }
    spx_moefy_result_free(r2);
    r2 = NULL;

    o.split = SPX_SPLIT_COACT;
    run(m, &o, win, &r, "moe/coact");
    spx_moefy_result_free(r);
    r = NULL;
    o.split = SPX_SPLIT_PARAM;
    o.max_tokens = 500;
    CHECK_RC(spx_moefy_model(&ctx, m, win, NS, SL, &o, &r), 0);
    if (r)
        CHECK(r->tokens == 500 && r->heldout == 50);
    spx_moefy_result_free(r);
    r = NULL;

    spx_moefy_opts_init(&o, SPX_ROUTER_DSTI);
    o.experts = 8;
    run(m, &o, win, &r, "dsti");
    spx_moefy_result_free(r);
    r = NULL;
    spx_moefy_opts_init(&o, SPX_ROUTER_LTE);
    o.experts = 8;
    run(m, &o, win, &r, "lte");
    spx_moefy_result_free(r);
    r = NULL;

    /* errors */
    o.experts = 7;
    CHECK_RC(spx_moefy_model(&ctx, m, win, NS, SL, &o, &r), SPX_E_ARG);
    spx_model *g = NULL;
    if (r1) {
        CHECK_RC(spx_model_open(&ctx, out1, 0, &g), 0);
        o.experts = 8;
        if (g)
            CHECK_RC(spx_moefy_model(&ctx, g, win, NS, SL, &o, &r), SPX_E_UNSUPPORTED);
    }
    CHECK(r == NULL);
    spx_model_free(g);
    spx_moefy_result_free(r1);
    spx_model_free(m);
    free(win);
    return 0;
}
