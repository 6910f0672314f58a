/* test_verify_moe_route.c: how the runtime routes expanded MLPs (verify/spx_moe.c).
 *
 *  1. spx_moe_route splits large projections over the kernel pool and folds routers
 *     (spx_route_fold.h): labels (and projections, without a fold) equal spx_router_assign's bit for
 *     bit for 1-3 threads; a K = 1 router gives label 0 without routing, NaN inputs included.
 *  2. Decode on the packed kernels runs a gate/up expert fused with the down routing when both
 *     linears are native kernels: logits, labels and hidden activations equal those of the unfused
 *     path (the same model with its down folds removed, routed by spx_router_assign) bit for bit,
 *     for 1-3 threads with every product split; MLPs of experts stored dense fp32 (BLAS) run unfused
 *     in the same decode, and the fused count says both kinds ran. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_forward.h"
#include "spx_kernels.h"
#include "spx_model.h"
#include "spx_moe.h"
#include "spx_rng.h"
#include "spx_route.h"
#include "spx_test.h"
#include "test_verify_moe_build.h"
#include "test_verify_moe_util.h"

#define NTOK 13

/* spx_moe_route splits large projections over the kernel pool (rows of the projection for one
 * token, tokens for several): projections and labels must equal spx_router_assign's bit for bit
 * for every thread count, including pca_dim not a multiple of the 4-row block. */
static void test_route_split(uint32_t in_dim, uint32_t pca, uint32_t K)
{
    size_t nmax = 5;
    float *mean = malloc(in_dim * sizeof(float)), *proj = malloc((size_t)pca * in_dim * sizeof(float));
    float *cen = malloc((size_t)K * pca * sizeof(float)), *X = malloc(nmax * in_dim * sizeof(float));
    float *Y1 = malloc(nmax * pca * sizeof(float)), *Y2 = malloc(nmax * pca * sizeof(float));
    uint32_t lab1[5], lab2[5];
    spx_rng rng;
    int saved = spx_kern_threads();
    spx_rng_seed(&rng, 0x1234567ull + in_dim + pca);
    for (size_t i = 0; i < in_dim; i++)
        mean[i] = (float)(spx_rng_uniform(&rng) - 0.5);
    for (size_t i = 0; i < (size_t)pca * in_dim; i++)
        proj[i] = (float)(spx_rng_uniform(&rng) - 0.5);
    for (size_t i = 0; i < nmax * in_dim; i++)
        X[i] = (float)(spx_rng_uniform(&rng) - 0.5);
    if (K == 1)
        X[in_dim + 3] = NAN;   /* label 0 all the same */
    for (size_t i = 0; i < (size_t)K * pca; i++)
        cen[i] = (float)(spx_rng_uniform(&rng) - 0.5);
    spx_router r = {in_dim, pca, K, mean, proj, cen};
    spx_router_fold *fold = NULL;
    CHECK(spx_router_fold_worth(&r) == (K >= 2 && 2 * K <= pca));
    if (spx_router_fold_worth(&r))
        CHECK(spx_router_fold_new(&r, &fold) == 0 && fold);
    for (size_t n = 1; n <= nmax; n += 4) {
        spx_router_assign(&r, X, n, Y1, lab1);
        for (int t = 1; t <= 3; t++) {
            spx_kern_set_threads(t);
            memset(Y2, 0xff, nmax * pca * sizeof(float));
            spx_moe_route(&r, NULL, X, n, Y2, lab2);
            CHECK_MSG(K == 1 || memcmp(Y1, Y2, n * pca * sizeof(float)) == 0,   /* K = 1: no projection */
                      "route %ux%u n %zu threads %d: projection differs", pca, in_dim, n, t);
            CHECK_MSG(memcmp(lab1, lab2, n * sizeof(uint32_t)) == 0, "route n %zu threads %d: labels differ", n, t);
            if (fold) {   /* the folded route (split by tokens when large): the same labels */
                memset(lab2, 0xff, sizeof lab2);
                spx_moe_route(&r, fold, X, n, Y2, lab2);
                CHECK_MSG(memcmp(lab1, lab2, n * sizeof(uint32_t)) == 0, "folded route n %zu threads %d: labels differ",
                          n, t);
            }
        }
    }
    spx_router_fold_free(fold);
    spx_kern_set_threads(saved);
    free(mean);
    free(proj);
    free(cen);
    free(X);
    free(Y1);
    free(Y2);
}

/* logits [NTOK x V], hidden activations [2 layers][NTOK x ffn] and labels of a token-by-token
 * decode (the hidden hook runs before the block's down routing, so nl[layer][1] is its token) */
typedef struct decode_out {
    float *lg, *h;
    uint32_t lab[2][2][NTOK];
    size_t nl[2][2];
    uint32_t ffn;
} decode_out;

static void out_hidden(void *ud, uint32_t layer, const float *h, size_t n)
{
    decode_out *o = ud;
    memcpy(o->h + ((size_t)layer * NTOK + o->nl[layer][1]) * o->ffn, h, n * o->ffn * sizeof(float));
}

static void out_route(void *ud, uint32_t layer, int which, const uint32_t *labels, size_t n)
{
    decode_out *o = ud;
    memcpy(o->lab[layer][which] + o->nl[layer][which], labels, n * sizeof(uint32_t));
    o->nl[layer][which] += n;
}

/* one decode into *o; returns the count of MLPs that ran fused */
static uint64_t decode(const spx_model *model, const uint32_t *tok, decode_out *o)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_state *st = NULL;
    spx_forward_hooks hk = {0};
    const size_t V = model->cfg.vocab_size;
    uint64_t fused = 0;
    hk.ud = o;
    hk.mlp_hidden = out_hidden;
    memset(o->nl, 0, sizeof o->nl);
    CHECK_RC(spx_state_new(&ctx, model, NTOK, 1, &st), 0);
    if (!st)
        return 0;
    spx_state_set_route_hook(st, out_route, o);
    for (int i = 0; i < NTOK; i++)
        CHECK_RC(spx_forward_hooked(&ctx, model, st, tok + i, 1, o->lg + (size_t)i * V, NULL, &hk), 0);
    fused = st->moe_fused;
    spx_state_free(st);
    return fused;
}

static void test_fused_decode(const xspec *xs)
{
    spx_ctx ctx = SPX_CTX_INIT;
    tmv_model *xm = calloc(1, sizeof *xm);
    const char *px = spx_test_path(spx_test_tmpdir(), "fused.spx");
    xmeta meta = {xs->K, xs->K, "pca_nearest_centroid", 0};
    spx_model *model = NULL;
    uint32_t tok[NTOK];
    const int saved = spx_kern_threads();
    const size_t saved_min = spx_kern_min_parallel();
    build_expanded(xm, xs);
    for (uint32_t l = 0; l < 2; l++)   /* experts 1 and 2 packed as kernels (bitmask), 0 dense fp32 (BLAS) */
        for (int b = 0; b < 2; b++) {
            tmv_tensor *t = tmv_find(xm, "blk.%u.%s.2.weight", l, b ? "ffn_up" : "ffn_gate");
            if (t)
                sparsify(t, SPX_ENC_BITMASK);
        }
    CHECK_RC(tmv_write(xm, px, NULL, write_meta, &meta), 0);
    CHECK_RC(spx_model_open(&ctx, px, SPX_MODEL_KERNELS, &model), 0);
    if (!model) {
        fprintf(stderr, "fused: %s\n", ctx.msg);
        goto done;
    }
    {
        const size_t V = model->cfg.vocab_size, F = model->cfg.ffn_dim;
        decode_out a = {0}, b = {0};
        a.ffn = b.ffn = (uint32_t)F;
        a.lg = malloc(NTOK * V * sizeof(float));
        b.lg = malloc(NTOK * V * sizeof(float));
        a.h = malloc(2 * NTOK * F * sizeof(float));
        b.h = malloc(2 * NTOK * F * sizeof(float));
        for (int i = 0; i < NTOK; i++)
            tok[i] = (uint32_t)(spx_test_rand(&tmv_seed) % V);
        for (uint32_t l = 0; l < model->cfg.n_layers; l++)
            CHECK(model->layers[l].moe && model->layers[l].moe->fold[1]);
        spx_kern_set_min_parallel(0);   /* split even these small products */
        for (int t = 1; t <= 3; t++) {
            spx_router_fold *keep[2];
            spx_kern_set_threads(t);
            uint64_t fa = decode(model, tok, &a);
            for (uint32_t l = 0; l < 2; l++) {   /* without the down folds nothing can fuse */
                keep[l] = model->layers[l].moe->fold[1];
                model->layers[l].moe->fold[1] = NULL;
            }
            uint64_t fb = decode(model, tok, &b);
            for (uint32_t l = 0; l < 2; l++)
                model->layers[l].moe->fold[1] = keep[l];
            fprintf(stderr, "fused decode (gated %d, bias %d), %d threads: %llu of %d MLPs fused\n", xs->gated,
                    xs->bias, t, (unsigned long long)fa, 2 * NTOK);
            CHECK_MSG(fa > 0 && fa < 2 * NTOK, "%d threads: %llu fused MLPs (want some, not all)", t,
                      (unsigned long long)fa);
            CHECK(fb == 0);
            CHECK_MSG(memcmp(a.lg, b.lg, NTOK * V * sizeof(float)) == 0, "%d threads: fused logits differ", t);
            CHECK_MSG(memcmp(a.h, b.h, 2 * NTOK * F * sizeof(float)) == 0, "%d threads: hidden differs", t);
            CHECK_MSG(memcmp(a.lab, b.lab, sizeof a.lab) == 0, "%d threads: labels differ", t);
        }
        free(a.lg), free(b.lg), free(a.h), free(b.h);
    }
done:
    spx_kern_set_threads(saved);
    spx_kern_set_min_parallel(saved_min);
    spx_model_free(model);
    tmv_free(xm);
    free(xm);
}

int spx_test_main(void)
{
    xspec gated = {1, SPX_ACT_SILU, 0, 3, 4, 8, 0, 1};   /* down PCA 8 >= 2K: folded */
    xspec plain = {0, SPX_ACT_GELU, 1, 3, 0, 6, 0, 1};   /* up without PCA, biases */
    test_route_split(2048, 64, 8);    /* 512 KiB: split */
    test_route_split(1024, 66, 5);    /* 264 KiB, pca % 4 == 2: split, a partial last block */
    test_route_split(768, 24, 8);     /* 72 KiB: not split */
    test_route_split(1024, 64, 1);    /* one expert: labels 0 without routing */
    test_fused_decode(&gated);
    test_fused_decode(&plain);
    return 0;
}
