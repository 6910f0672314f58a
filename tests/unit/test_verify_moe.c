/* test_verify_moe.c: expanded MLPs (routed expert copies, Sparse Expansion) in the runtime, on
 * small random models written through the writer API.
 *
 *  1. K = 1 experts holding the dense weights give logits bit-identical (memcmp) to the dense
 *     model: batched, token by token and in chunks. The single expert's group holds every token
 *     and runs in place, exactly as the dense path.
 *  2. K = 3 with PCA routers (and one router without PCA), some experts stored sparse: logits
 *     match a naive double reference that routes every token with spx_router_assign and applies
 *     the chosen experts densely, rel < 1e-5 per position (fp32 runtime with <= 48-term dot
 *     products over two blocks: expected ~1e-6; a wrong expert gives ~1e-1). The routing hook's
 *     labels equal spx_router_assign on the captured router inputs exactly (same fp32 inputs,
 *     same function); token-by-token decode equals the batched run (rel < 1e-5: sgemv vs sgemm
 *     rounding); an in-memory moe attached with spx_moe_attach gives bit-identical logits to the
 *     file; FLOP estimates and parameter counts match counts made here from the tensors.
 *  3. Malformed files fail with the named error code and a message naming the tensor/key. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_forward.h"
#include "spx_kernels.h"
#include "spx_model.h"
#include "spx_moe.h"
#include "spx_ppl.h"
#include "spx_rng.h"
#include "spx_route.h"
#include "spx_test.h"
#include "test_verify_moe_build.h"
#include "test_verify_moe_util.h"

#define NTOK 13
#define TOL 1e-5

static spx_router router_of(const tmv_model *m, uint32_t l, const char *base, uint32_t in_dim)
{
    char n[96];
    spx_router r;
    tmv_tensor *t;
    memset(&r, 0, sizeof r);
    r.in_dim = in_dim;
    snprintf(n, sizeof n, "blk.%u.%s.router.centroids", l, base);
    t = tmv_find(m, "%s", n);
    r.k = (uint32_t)t->dims[0];
    r.centroids = t->data;
    snprintf(n, sizeof n, "blk.%u.%s.router.proj", l, base);
    if ((t = tmv_find(m, "%s", n)) != NULL) {
        r.pca_dim = (uint32_t)t->dims[0];
        r.proj = t->data;
        snprintf(n, sizeof n, "blk.%u.%s.router.mean", l, base);
        r.mean = tmv_get(m, n);
    }
    return r;
}

/* Reference MLP of an expanded block: route a (rounded to fp32) -> gate/up expert, route h -> down. */
static void ref_mlp_moe(void *ud, const tmv_model *m, uint32_t l, size_t t, const double *a, double *y)
{
    const uint32_t D = m->c.dim, F = m->c.ffn_dim;
    spx_router ru = router_of(m, l, "ffn_up", D), rd = router_of(m, l, "ffn_down", F);
    float *af = malloc(F * sizeof(float)), *scratch = malloc(F * sizeof(float));
    double *h = malloc(F * sizeof(double));
    uint32_t e, f;
    char sfx[16];
    (void)ud, (void)t;
    for (uint32_t i = 0; i < D; i++)
        af[i] = (float)a[i];
    spx_router_assign(&ru, af, 1, scratch, &e);
    snprintf(sfx, sizeof sfx, ".%u", e);
    tmv_ffn_hidden(m, l, sfx, a, h);
    for (uint32_t i = 0; i < F; i++)
        af[i] = (float)h[i];
    spx_router_assign(&rd, af, 1, scratch, &f);
    snprintf(sfx, sizeof sfx, ".%u", f);
    tmv_ffn_down(m, l, sfx, h, y);
    free(af), free(scratch), free(h);
}

/* ---- captures ------------------------------------------------------------------------------- */

typedef struct cap {
    uint32_t dim, ffn;
    float *m[2], *h[2];           /* per layer [NTOK x dim] / [NTOK x ffn] */
    uint32_t lab[2][2][NTOK];     /* [layer][which][token] */
    size_t nm[2], nh[2], nl[2][2];
} cap;

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

static void cap_route(void *ud, uint32_t layer, int which, const uint32_t *labels, size_t n)
{
    cap *c = ud;
    memcpy(c->lab[layer][which] + c->nl[layer][which], labels, n * sizeof(uint32_t));
    c->nl[layer][which] += n;
}

static void cap_init(cap *c, uint32_t dim, uint32_t ffn)
{
    memset(c, 0, sizeof *c);
    c->dim = dim;
    c->ffn = ffn;
    for (int l = 0; l < 2; l++) {
        c->m[l] = malloc(NTOK * dim * sizeof(float));
        c->h[l] = malloc(NTOK * ffn * sizeof(float));
    }
}

static void cap_free(cap *c)
{
    for (int l = 0; l < 2; l++)
        free(c->m[l]), free(c->h[l]);
}

/* ---- 1. K = 1 is the dense model, bit for bit ----------------------------------------------- */

static void run_logits(spx_model *model, const uint32_t *tok, uint32_t batch, int one_by_one, float *lg)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_state *st = NULL;
    const uint32_t V = model->cfg.vocab_size;
    CHECK_RC(spx_state_new(&ctx, model, NTOK, batch, &st), 0);
    if (!st)
        return;
    if (one_by_one)
        for (int i = 0; i < NTOK; i++)
            CHECK_RC(spx_forward(&ctx, model, st, tok + i, 1, lg + (size_t)i * V, NULL), 0);
    else
        CHECK_RC(spx_forward(&ctx, model, st, tok, NTOK, lg, NULL), 0);
    spx_state_free(st);
}

static void test_k1(int gated, int act, int bias)
{
    spx_ctx ctx = SPX_CTX_INIT;
    tmv_model *dm = calloc(1, sizeof *dm), *xm = calloc(1, sizeof *xm);
    const char *pd = spx_test_path(spx_test_tmpdir(), "dense.spx"), *px = spx_test_path(spx_test_tmpdir(), "k1.spx");
    xspec xs = {gated, act, bias, 1, 4, 0, 1, 0};
    xmeta meta = {1, 1, "pca_nearest_centroid", 0};
    spx_model *md = NULL, *mx = NULL;
    spx_config_init_llama(&dm->c);
    tmv_seed = 4242;
    tmv_config(&dm->c, gated, act, bias);
    tmv_build(dm, &dm->c);
    build_expanded(xm, &xs);
    CHECK_RC(tmv_write(dm, pd, NULL, NULL, NULL), 0);
    CHECK_RC(tmv_write(xm, px, NULL, write_meta, &meta), 0);
    CHECK_RC(spx_model_open(&ctx, pd, SPX_MODEL_VERIFY_DATA, &md), 0);
    CHECK_RC(spx_model_open(&ctx, px, SPX_MODEL_VERIFY_DATA, &mx), 0);
    if (!md || !mx) {
        fprintf(stderr, "k1: %s\n", ctx.msg);
    } else {
        const size_t V = md->cfg.vocab_size;
        float *a = malloc(NTOK * V * sizeof(float)), *b = malloc(NTOK * V * sizeof(float));
        uint32_t tok[NTOK];
        for (int i = 0; i < NTOK; i++)
            tok[i] = (uint32_t)(spx_test_rand(&tmv_seed) % V);
        CHECK(mx->layers[0].moe && mx->layers[1].moe && !mx->layers[0].up.w);
        run_logits(md, tok, 16, 0, a);
        run_logits(mx, tok, 16, 0, b);
        CHECK_MSG(memcmp(a, b, NTOK * V * sizeof(float)) == 0, "K=1 batched logits differ (gated %d)", gated);
        run_logits(md, tok, 16, 1, a);
        run_logits(mx, tok, 16, 1, b);
        CHECK_MSG(memcmp(a, b, NTOK * V * sizeof(float)) == 0, "K=1 decode logits differ (gated %d)", gated);
        run_logits(md, tok, 4, 0, a);
        run_logits(mx, tok, 4, 0, b);
        CHECK_MSG(memcmp(a, b, NTOK * V * sizeof(float)) == 0, "K=1 chunked logits differ (gated %d)", gated);
        free(a), free(b);
    }
    spx_model_free(md);
    spx_model_free(mx);
    tmv_free(dm), tmv_free(xm);
    free(dm), free(xm);
}

/* ---- the CLI on an expanded file ----------------------------------------------------------- */

/* spx ppl --json (same perplexity as spx_ppl_eval, ffn_fraction 1, the FLOP figures of
 * spx_model_flops), spx inspect (experts section) and spx run --dump-logits (bit-identical to
 * spx_forward) on the expanded file. */
static void test_cli(spx_model *model, const char *path)
{
    spx_ctx ctx = SPX_CTX_INIT;
    const char *spx = spx_test_env("SPX");
    const char *ptok = spx_test_path(spx_test_tmpdir(), "tok.u32"), *pdump = spx_test_path(spx_test_tmpdir(), "lg.f32");
    static char out[1 << 16];
    char cmd[2048];
    const size_t V = model->cfg.vocab_size;
    uint32_t tok[40];
    uint64_t s = 5;
    spx_state *st = NULL;
    spx_model *km = NULL;   /* the CLI runs the packed kernels (SPX_MODEL_KERNELS): compare bits with those */
    spx_ppl_result r;
    spx_flops fl;
    float *lg = malloc(5 * V * sizeof(float)), *dump = malloc(5 * V * sizeof(float));
    FILE *fp;
    if (!spx || !*spx) {
        fprintf(stderr, "SPX is not set: CLI checks skipped\n");
        goto done;
    }
    CHECK_RC(spx_model_open(&ctx, path, SPX_MODEL_KERNELS, &km), 0);
    if (!km)
        goto done;
    for (int i = 0; i < 40; i++)
        tok[i] = (uint32_t)(spx_test_rand(&s) % V);
    CHECK(tmv_write_tokens(ptok, tok, 40) == 0);
    CHECK_RC(spx_state_new(&ctx, km, 13, 13, &st), 0);
    if (!st)
        goto done;
    CHECK_RC(spx_ppl_eval(&ctx, km, st, tok, 40, 13, 0, NULL, &r), 0);
    spx_model_flops(model, &fl);
    snprintf(cmd, sizeof cmd, "'%s' ppl '%s' --tokens '%s' --ctx 13 --json", spx, path, ptok);
    CHECK(tmv_sh(cmd, out, sizeof out) == 0);
    CHECK_NEAR(tmv_json_num(out, "ppl"), r.ppl, 1e-9 * r.ppl);
    CHECK(tmv_json_num(out, "ffn_fraction") == 1.0);
    CHECK(tmv_json_num(out, "expanded") == fl.expanded);
    CHECK(tmv_json_num(out, "router") == fl.router);
    CHECK(tmv_json_num(out, "single_sparse") == fl.sparse);
    CHECK(tmv_json_num(out, "dense") == fl.dense);
    fprintf(stderr, "cli: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' inspect '%s'", spx, path);
    CHECK(tmv_sh(cmd, out, sizeof out) == 0);
    CHECK(strstr(out, "experts (spx.expand.experts = 3, routing pca_nearest_centroid):") != NULL);
    CHECK_MSG(strstr(out, "blk.1  up: K 3, pca 4, sizes 5 4 4  down: K 3, pca 3, sizes 5 4 4") != NULL, "%s",
              strstr(out, "experts (") ? strstr(out, "experts (") : out);
    snprintf(cmd, sizeof cmd, "'%s' run '%s' --prompt-ids 1,2,3,4,5 --steps 0 --dump-logits '%s'", spx, path, pdump);
    CHECK(tmv_sh(cmd, out, sizeof out) == 0);
    spx_state_reset(st);
    CHECK_RC(spx_forward(&ctx, km, st, (const uint32_t[]){1, 2, 3, 4, 5}, 5, lg, NULL), 0);
    fp = fopen(pdump, "rb");
    CHECK(fp && fread(dump, sizeof(float), 5 * V, fp) == 5 * V);
    if (fp)
        fclose(fp);
    CHECK(memcmp(dump, lg, 5 * V * sizeof(float)) == 0);
done:
    spx_state_free(st);
    spx_model_free(km);
    free(lg), free(dump);
}

/* ---- 2. K = 3 against the reference --------------------------------------------------------- */

static double expected_router_flops(const tmv_model *m, uint32_t l, const char *base, uint32_t in_dim)
{
    spx_router r = router_of(m, l, base, in_dim);
    double f = 3.0 * r.k * (r.pca_dim ? r.pca_dim : in_dim);
    return f + (r.pca_dim ? 2.0 * r.pca_dim * in_dim + in_dim : 0.0);
}

static double tensor_nnz(const tmv_tensor *t)
{
    double n = 0;
    size_t numel = (size_t)t->dims[0] * t->dims[1];
    if (t->enc == SPX_ENC_DENSE)
        return (double)numel;
    for (size_t i = 0; i < numel; i++)
        n += t->data[i] != 0.0f;
    return n;
}

static void check_flops_params(const spx_model *model, const tmv_model *xm, uint32_t K)
{
    spx_flops fl;
    double dense = 0, sparse = 0, router = 0;
    uint64_t params = 0;
    for (int i = 0; i < xm->n; i++) {
        const tmv_tensor *t = &xm->t[i];
        params += t->dims[0] * (t->ndim == 2 ? t->dims[1] : 1);
        if (t->ndim != 2 || t->role == SPX_ROLE_ROUTER || t->role == SPX_ROLE_EMBEDDING || t->role == SPX_ROLE_NORM)
            continue;
        if (t->expert == SPX_NO_INDEX) {
            dense += 2.0 * (double)t->dims[0] * (double)t->dims[1];
            sparse += 2.0 * tensor_nnz(t);
        } else {
            if (t->expert == 0)
                dense += 2.0 * (double)t->dims[0] * (double)t->dims[1];
            sparse += 2.0 * tensor_nnz(t) / K;
        }
    }
    for (uint32_t l = 0; l < xm->c.n_layers; l++)
        router += expected_router_flops(xm, l, "ffn_up", xm->c.dim) +
                  expected_router_flops(xm, l, "ffn_down", xm->c.ffn_dim);
    spx_model_flops(model, &fl);
    CHECK_NEAR(fl.dense, dense, 1e-9 * dense);
    CHECK_NEAR(fl.sparse, sparse, 1e-9 * sparse);
    CHECK_NEAR(fl.router, router, 1e-9 * router);
    CHECK_NEAR(fl.expanded, sparse + router, 1e-9 * sparse);
    CHECK(fl.sparse < fl.dense);
    CHECK(spx_model_param_count(model) == params);
}

/* The same experts built in memory on the dense model with spx_moe_alloc / set_router / attach. */
static spx_model *attach_in_memory(const char *dense_path, const tmv_model *xm)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model *m = NULL;
    const spx_model_config *c = &xm->c;
    CHECK_RC(spx_model_open(&ctx, dense_path, 0, &m), 0);
    if (!m)
        return NULL;
    for (uint32_t l = 0; l < c->n_layers; l++) {
        spx_moe *moe = NULL;
        spx_router ru = router_of(xm, l, "ffn_up", c->dim), rd = router_of(xm, l, "ffn_down", c->ffn_dim);
        const spx_router *rs[2] = {&ru, &rd};
        CHECK_RC(spx_moe_alloc(&ctx, ru.k, rd.k, c->dim, c->ffn_dim, &moe), 0);
        if (!moe)
            break;
        for (int w = 0; w < 2; w++) {
            const spx_router *r = rs[w];
            size_t rdim = r->pca_dim ? r->pca_dim : r->in_dim;
            float *mean = NULL, *proj = NULL, *cent = malloc(r->k * rdim * sizeof(float));
            memcpy(cent, r->centroids, r->k * rdim * sizeof(float));
            if (r->pca_dim) {
                mean = malloc(r->in_dim * sizeof(float));
                proj = malloc((size_t)r->pca_dim * r->in_dim * sizeof(float));
                memcpy(mean, r->mean, r->in_dim * sizeof(float));
                memcpy(proj, r->proj, (size_t)r->pca_dim * r->in_dim * sizeof(float));
            }
            CHECK_RC(spx_moe_set_router(&ctx, moe, w, r->pca_dim, mean, proj, cent), 0);
        }
        for (int b = c->gated ? 0 : 1; b < 3; b++) {
            static const char *const base[3] = {"ffn_gate", "ffn_up", "ffn_down"};
            uint32_t k = b == 2 ? rd.k : ru.k;
            spx_linear *dst = b == 0 ? moe->gate : b == 1 ? moe->up : moe->down;
            for (uint32_t e = 0; e < k; e++) {
                const tmv_tensor *t = tmv_find(xm, "blk.%u.%s.%u.weight", l, base[b], e);
                const tmv_tensor *tb = tmv_find(xm, "blk.%u.%s.%u.bias", l, base[b], e);
                size_t numel = (size_t)t->dims[0] * t->dims[1];
                float *w = malloc(numel * sizeof(float)), *bias = NULL;
                memcpy(w, t->data, numel * sizeof(float));
                if (tb) {
                    bias = malloc(t->dims[0] * sizeof(float));
                    memcpy(bias, tb->data, t->dims[0] * sizeof(float));
                }
                spx_linear_init_owned(&dst[e], (uint32_t)t->dims[0], (uint32_t)t->dims[1], w, bias);
            }
        }
        CHECK_RC(spx_moe_attach(&ctx, m, l, moe), 0);
        CHECK(!m->layers[l].up.w && m->layers[l].moe == moe);
    }
    return m;
}

static void test_k3(const xspec *xs)
{
    spx_ctx ctx = SPX_CTX_INIT;
    tmv_model *xm = calloc(1, sizeof *xm), *dm = calloc(1, sizeof *dm);
    const char *px = spx_test_path(spx_test_tmpdir(), "k3.spx"), *pd = spx_test_path(spx_test_tmpdir(), "k3d.spx");
    xmeta meta = {xs->K, xs->K, "pca_nearest_centroid", 1};
    spx_model *model = NULL, *mem = NULL;
    spx_state *st = NULL;
    cap cp, cp1;
    spx_forward_hooks hooks = {&cp, NULL, NULL, cap_mlp_in, cap_hidden};
    uint32_t tok[NTOK];
    build_expanded(xm, xs);
    tmv_seed = 4242;
    tmv_build(dm, &xm->c);
    cap_init(&cp, xm->c.dim, xm->c.ffn_dim);
    cap_init(&cp1, xm->c.dim, xm->c.ffn_dim);
    CHECK_RC(tmv_write(xm, px, NULL, write_meta, &meta), 0);
    CHECK_RC(tmv_write(dm, pd, NULL, NULL, NULL), 0);
    CHECK_RC(spx_model_open(&ctx, px, SPX_MODEL_VERIFY_DATA, &model), 0);
    if (!model) {
        fprintf(stderr, "k3: %s\n", ctx.msg);
        goto done;
    }
    {
        const size_t V = model->cfg.vocab_size;
        float *lg = malloc(NTOK * V * sizeof(float)), *lg1 = malloc(NTOK * V * sizeof(float));
        float *lg2 = malloc(NTOK * V * sizeof(float)), *scratch = malloc(NTOK * 64 * sizeof(float));
        double *ref = malloc(NTOK * V * sizeof(double)), e;
        uint32_t want[NTOK];
        for (int i = 0; i < NTOK; i++)
            tok[i] = (uint32_t)(spx_test_rand(&tmv_seed) % V);
        CHECK_RC(spx_state_new(&ctx, model, NTOK, 16, &st), 0);
        spx_state_set_route_hook(st, cap_route, &cp);
        CHECK_RC(spx_forward_hooked(&ctx, model, st, tok, NTOK, lg, NULL, &hooks), 0);
        CHECK(spx_state_ffn_fraction(st) == 1.0);
        tmv_forward(xm, tok, NTOK, ref_mlp_moe, NULL, ref);
        e = tmv_rel(lg, ref, NTOK, V);
        fprintf(stderr, "K=%u (gated %d, p %u/%u): batched vs reference max rel err %.3g\n", xs->K, xs->gated,
                xs->p_up, xs->p_down, e);
        CHECK_MSG(e < TOL, "K=3 logits rel err %g", e);

        /* routing hook == spx_router_assign on the captured inputs; every router is used */
        for (uint32_t l = 0; l < 2; l++) {
            const spx_moe *moe = model->layers[l].moe;
            CHECK(cp.nl[l][0] == NTOK && cp.nl[l][1] == NTOK);
            spx_router_assign(&moe->r_up, cp.m[l], NTOK, scratch, want);
            CHECK(memcmp(want, cp.lab[l][0], sizeof want) == 0);
            spx_router_assign(&moe->r_down, cp.h[l], NTOK, scratch, want);
            CHECK(memcmp(want, cp.lab[l][1], sizeof want) == 0);
            for (int w = 0; w < 2; w++) {
                int distinct = 0, seen[3] = {0, 0, 0};
                for (int t = 0; t < NTOK; t++)
                    seen[cp.lab[l][w][t]] = 1;
                for (int k = 0; k < 3; k++)
                    distinct += seen[k];
                CHECK_MSG(distinct >= 2, "layer %u router %d sent every token to one expert", l, w);
            }
        }

        /* token by token */
        spx_state_free(st);
        st = NULL;
        CHECK_RC(spx_state_new(&ctx, model, NTOK, 16, &st), 0);
        spx_state_set_route_hook(st, cap_route, &cp1);
        for (int i = 0; i < NTOK; i++)
            CHECK_RC(spx_forward(&ctx, model, st, tok + i, 1, lg1 + (size_t)i * V, NULL), 0);
        e = tmv_rel_ff(lg1, lg, NTOK, V);
        CHECK_MSG(e < TOL, "decode vs batched rel err %g", e);
        CHECK(memcmp(cp1.lab, cp.lab, sizeof cp.lab) == 0);

        /* in-memory moe == file */
        mem = attach_in_memory(pd, xm);
        if (mem) {
            run_logits(mem, tok, 16, 0, lg2);
            CHECK_MSG(memcmp(lg2, lg, NTOK * V * sizeof(float)) == 0, "attached moe differs from the file's");
        }
        check_flops_params(model, xm, xs->K);
        if (xs->gated)
            test_cli(model, px);
        free(lg), free(lg1), free(lg2), free(scratch), free(ref);
    }
done:
    spx_state_free(st);
    spx_model_free(model);
    spx_model_free(mem);
    cap_free(&cp), cap_free(&cp1);
    tmv_free(xm), tmv_free(dm);
    free(xm), free(dm);
}

/* ---- 3. malformed files --------------------------------------------------------------------- */

typedef void (*mutate_fn)(tmv_model *m, xmeta *meta);

static void m_none(tmv_model *m, xmeta *meta) { (void)m, (void)meta; }
static void m_centroid_dims(tmv_model *m, xmeta *meta)
{
    (void)meta;
    tmv_remove(m, "blk.0.ffn_up.router.centroids");
    tmv_add(m, SPX_ROLE_ROUTER, 0, SPX_NO_INDEX, 3, 5, 1.0, 0.0, "blk.0.ffn_up.router.centroids");
}
static void m_meta_count(tmv_model *m, xmeta *meta) { (void)m, meta->experts = 4, meta->arch_count = 4; }
static void m_arch_count(tmv_model *m, xmeta *meta) { (void)m, meta->arch_count = 2; }
static void m_no_meta(tmv_model *m, xmeta *meta) { (void)m, meta->experts = 0; }
static void m_routing(tmv_model *m, xmeta *meta) { (void)m, meta->routing = "kmeans_cosine"; }
static void m_extra_expert(tmv_model *m, xmeta *meta)
{
    (void)meta;
    tmv_add(m, SPX_ROLE_MLP, 0, 3, m->c.dim, m->c.ffn_dim, 0.1, 0.0, "blk.0.ffn_down.3.weight");
}
static void m_dense_left(tmv_model *m, xmeta *meta)
{
    (void)meta;
    tmv_add(m, SPX_ROLE_MLP, 0, SPX_NO_INDEX, m->c.ffn_dim, m->c.dim, 0.1, 0.0, "blk.0.ffn_up.weight");
}
static void m_no_mean(tmv_model *m, xmeta *meta) { (void)meta, tmv_remove(m, "blk.1.ffn_down.router.mean"); }
static void m_expert_shape(tmv_model *m, xmeta *meta)
{
    (void)meta;
    tmv_remove(m, "blk.1.ffn_gate.2.weight");
    tmv_add(m, SPX_ROLE_MLP, 1, 2, m->c.ffn_dim - 1, m->c.dim, 0.1, 0.0, "blk.1.ffn_gate.2.weight");
}
static void m_too_many(tmv_model *m, xmeta *meta)
{
    tmv_remove(m, "blk.0.ffn_up.router.centroids");
    tmv_add(m, SPX_ROLE_ROUTER, 0, SPX_NO_INDEX, 257, 4, 1.0, 0.0, "blk.0.ffn_up.router.centroids");
    meta->experts = meta->arch_count = 257;
}
static void m_unrouted(tmv_model *m, xmeta *meta)
{
    (void)meta;
    tmv_remove(m, "blk.1.ffn_up.router.centroids");
}

static void bad_case(const char *label, mutate_fn mut, const char *skip, int want, const char *needle)
{
    spx_ctx ctx = SPX_CTX_INIT;
    tmv_model *m = calloc(1, sizeof *m);
    xspec xs = {1, SPX_ACT_SILU, 0, 3, 4, 3, 0, 0};
    xmeta meta = {3, 3, "pca_nearest_centroid", 0};
    const char *p = spx_test_path(spx_test_tmpdir(), "bad.spx");
    spx_model *model = NULL;
    build_expanded(m, &xs);
    mut(m, &meta);
    CHECK_RC(tmv_write(m, p, skip, write_meta, &meta), 0);
    CHECK_RC(spx_model_open(&ctx, p, 0, &model), want);
    CHECK_MSG(strstr(ctx.msg, needle) != NULL, "%s: message '%s' does not name '%s'", label, ctx.msg, needle);
    fprintf(stderr, "%s: %s\n", label, ctx.msg);
    CHECK(model == NULL);
    spx_model_free(model);
    tmv_free(m);
    free(m);
}

static void test_malformed(void)
{
    bad_case("missing expert", m_none, "blk.1.ffn_up.2.weight", SPX_E_MISSING, "blk.1.ffn_up.2.weight");
    bad_case("missing down router", m_none, "blk.1.ffn_down.router.centroids", SPX_E_MISSING,
             "blk.1.ffn_down.router.centroids");
    bad_case("centroid dims", m_centroid_dims, NULL, SPX_E_SHAPE, "blk.0.ffn_up.router.centroids");
    bad_case("metadata count", m_meta_count, NULL, SPX_E_SHAPE, "spx.expand.experts");
    bad_case("arch count", m_arch_count, NULL, SPX_E_SHAPE, "llama.expert_count");
    bad_case("no metadata", m_no_meta, NULL, SPX_E_MISSING, "spx.expand.experts");
    bad_case("routing", m_routing, NULL, SPX_E_UNSUPPORTED, "kmeans_cosine");
    bad_case("extra expert", m_extra_expert, NULL, SPX_E_SHAPE, "blk.0.ffn_down.3.weight");
    bad_case("dense left", m_dense_left, NULL, SPX_E_SHAPE, "blk.0.ffn_up.weight");
    bad_case("proj without mean", m_no_mean, NULL, SPX_E_MISSING, "blk.1.ffn_down.router.mean");
    bad_case("expert shape", m_expert_shape, NULL, SPX_E_SHAPE, "blk.1.ffn_gate.2.weight");
    bad_case("too many experts", m_too_many, NULL, SPX_E_SHAPE, "blk.0.ffn_up.router.centroids");
    bad_case("unrouted experts", m_unrouted, NULL, SPX_E_MISSING, "blk.1.ffn_up.router.centroids");
}

/* API misuse: named errors, ownership kept as documented (ASan checks the frees). */
static void test_api(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_moe *moe = NULL;
    spx_model *m = NULL;
    tmv_model *dm = calloc(1, sizeof *dm);
    const char *pd = spx_test_path(spx_test_tmpdir(), "api.spx");
    CHECK_RC(spx_moe_alloc(&ctx, 0, 1, 8, 8, &moe), SPX_E_ARG);
    CHECK_RC(spx_moe_alloc(&ctx, 1, 257, 8, 8, &moe), SPX_E_ARG);
    CHECK(moe == NULL);
    CHECK_RC(spx_moe_alloc(&ctx, 2, 2, 32, 48, &moe), 0);
    CHECK_RC(spx_moe_set_router(&ctx, moe, 0, 33, malloc(4), malloc(4), malloc(4)), SPX_E_ARG);
    CHECK_RC(spx_moe_set_router(&ctx, moe, 1, 0, malloc(4), NULL, malloc(4)), SPX_E_ARG);
    CHECK_RC(spx_moe_set_router(&ctx, moe, 0, 0, NULL, NULL, calloc(2 * 32, sizeof(float))), 0);
    tmv_seed = 4242;
    tmv_config(&dm->c, 1, SPX_ACT_SILU, 0);
    tmv_build(dm, &dm->c);
    CHECK_RC(tmv_write(dm, pd, NULL, NULL, NULL), 0);
    CHECK_RC(spx_model_open(&ctx, pd, 0, &m), 0);
    if (m) {
        CHECK_RC(spx_moe_attach(&ctx, m, 0, moe), SPX_E_ARG);   /* down router has no centroids */
        CHECK(m->layers[0].moe == NULL && m->layers[0].up.w != NULL);
        CHECK_RC(spx_moe_attach(&ctx, m, 5, moe), SPX_E_ARG);
    }
    spx_moe_free(moe);
    spx_moe_free(NULL);
    spx_model_free(m);
    tmv_free(dm);
    free(dm);
}

int spx_test_main(void)
{
    xspec a = {1, SPX_ACT_SILU, 0, 3, 4, 3, 0, 1};
    xspec b = {0, SPX_ACT_GELU, 1, 3, 0, 5, 0, 1};
    test_k1(1, SPX_ACT_SILU, 0);
    test_k1(0, SPX_ACT_GELU, 1);
    test_k3(&a);
    test_k3(&b);
    test_malformed();
    test_api();
    return 0;
}
