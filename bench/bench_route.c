/* bench_route.c: the cost of expert routing (Sparse Expansion) per decoded token, in one process.
 *
 *   bench_route EXPANDED.spx ONE.spx [--steps N] [--threads T] [--reps R]
 *
 * EXPANDED is a `spx expand` file (K experts per MLP), ONE the "one sparse model" it is compared
 * with: the same shapes, the MLP pruned to the same density and encoding, attention the same
 * (bench/bench_decode_models.sh builds x8.spx and p50mlp.spx). Both are opened with the packed
 * kernels, as `spx run` does.
 *
 * 1. Decode A/B: the same fixed token sequence (teacher-forced, N steps after one start token) is
 *    decoded by both models token by token, interleaved step by step (the order alternates every
 *    step), so both see the same host load. Reported: median ms per token of each, the ratio of
 *    the medians and the median of the per-step ratios. Separate processes (bench/bench_decode.sh)
 *    differ by +-20% on a shared host; interleaving in one process removes most of that.
 * 2. Routing alone: the inputs of every expanded layer's two routers (ffn_norm output for gate/up,
 *    the hidden activation for down) are captured during a decode of the same sequence, then
 *    spx_moe_route is timed on them exactly as spx_moe_mlp calls it (one token per call, both
 *    routers, every layer): median over R passes of the per-token routing time, and its share of
 *    the expanded model's per-token time from part 1. This is the work routing adds; the rest of
 *    an expanded token is one expert's MLP, the same work as the one sparse model's.
 * --pin: every centroid but the first of each EXPANDED router is moved far away (a copy; the folds
 *    are rebuilt), so every token takes expert 0: the same routing work over the memory footprint
 *    of one expert per block. Expanded vs pinned separates the cost of touching K experts' weights
 *    from the routing itself.
 * Run with OPENBLAS_CORETYPE=SkylakeX OPENBLAS_THREAD_TIMEOUT=22 (what the spx CLI sets). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "spx_forward.h"
#include "spx_kernels.h"
#include "spx_model.h"
#include "spx_moe.h"

/* router inputs of one decode: xn [steps][layers][dim], h [steps][layers][ffn] */
typedef struct capture {
    float *xn, *h;
    size_t step, layers, dim, ffn;
} capture;

static void cap_input(void *ud, uint32_t layer, const float *x, size_t n)
{
    capture *c = ud;
    if (n == 1)
        memcpy(c->xn + (c->step * c->layers + layer) * c->dim, x, c->dim * sizeof(float));
}

static void cap_hidden(void *ud, uint32_t layer, const float *h, size_t n)
{
    capture *c = ud;
    if (n == 1)
        memcpy(c->h + (c->step * c->layers + layer) * c->ffn, h, c->ffn * sizeof(float));
}

static int fail(const char *what, const spx_ctx *ctx)
{
    fprintf(stderr, "bench_route: %s: %s\n", what, ctx->msg);
    return 1;
}

int main(int argc, char **argv)
{
    const char *pa = NULL, *pb = NULL;
    size_t steps = 128;
    int threads = 0, reps = 31, rc = 1, pin = 0;
    float **pinned = NULL;   /* [layers x 2] centroid copies of --pin */
    size_t npinned = 0;
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model *A = NULL, *B = NULL;
    spx_state *sa = NULL, *sb = NULL;
    uint32_t *tok = NULL;
    double *ta = NULL, *tb = NULL, *ratio = NULL, *troute = NULL;
    float *logits = NULL, *scratch = NULL;
    capture cap = {0};

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--steps") && i + 1 < argc)
            steps = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pin"))
            pin = 1;
        else if (!strcmp(argv[i], "--help")) {
            printf("usage: bench_route EXPANDED.spx ONE.spx [--steps N (128)] [--threads T] [--reps R (31)] [--pin]\n");
            return 0;
        } else if (!pa)
            pa = argv[i];
        else if (!pb)
            pb = argv[i];
        else {
            fprintf(stderr, "bench_route: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!pa || !pb || steps < 8 || steps > 4096 || reps < 1 || reps > 1001) {
        fprintf(stderr, "usage: bench_route EXPANDED.spx ONE.spx [--steps 8..4096] [--threads T] [--reps 1..1001]\n");
        return 2;
    }
    if (threads > 0)
        spx_kern_set_threads(threads);
    if (spx_model_open(&ctx, pa, SPX_MODEL_KERNELS, &A) != 0)
        return fail(pa, &ctx);
    if (spx_model_open(&ctx, pb, SPX_MODEL_KERNELS, &B) != 0) {
        fail(pb, &ctx);
        goto done;
    }
    const spx_model_config *c = &A->cfg;
    size_t L = c->n_layers, dim = c->dim, ffn = c->ffn_dim, nmoe = 0;
    if (B->cfg.n_layers != L || B->cfg.dim != dim || B->cfg.ffn_dim != ffn || B->cfg.vocab_size != c->vocab_size) {
        fprintf(stderr, "bench_route: %s and %s have different shapes\n", pa, pb);
        goto done;
    }
    for (size_t l = 0; l < L; l++)
        nmoe += A->layers[l].moe != NULL;
    if (nmoe == 0) {
        fprintf(stderr, "bench_route: %s has no expanded layer\n", pa);
        goto done;
    }
    if (pin && !(pinned = calloc(2 * L, sizeof *pinned))) {
        fprintf(stderr, "bench_route: out of memory\n");
        goto done;
    }
    npinned = pin ? 2 * L : 0;
    for (size_t l = 0; pin && l < L; l++) {
        spx_moe *moe = A->layers[l].moe;
        for (int w = 0; moe && w < 2; w++) {
            spx_router *r = w ? &moe->r_down : &moe->r_up;
            size_t d = spx_router_rdim(r);
            float *cc = malloc((size_t)r->k * d * sizeof *cc);
            if (!cc) {
                fprintf(stderr, "bench_route: out of memory\n");
                goto done;
            }
            memcpy(cc, r->centroids, d * sizeof *cc);
            for (size_t i = d; i < (size_t)r->k * d; i++)
                cc[i] = 1e15f;   /* far from every input: expert 0 always wins */
            pinned[2 * l + (size_t)w] = cc;
            r->centroids = cc;
        }
        if (moe && spx_moe_fold_routers(&ctx, moe, (uint32_t)l) != 0) {
            fail("pin", &ctx);
            goto done;
        }
    }
    if (spx_state_new(&ctx, A, (uint32_t)steps + 1, 1, &sa) != 0 || spx_state_new(&ctx, B, (uint32_t)steps + 1, 1, &sb) != 0) {
        fail("state", &ctx);
        goto done;
    }
    tok = malloc((steps + 1) * sizeof *tok);
    ta = malloc(steps * sizeof *ta);
    tb = malloc(steps * sizeof *tb);
    ratio = malloc(steps * sizeof *ratio);
    troute = malloc((size_t)reps * sizeof *troute);
    logits = malloc((size_t)c->vocab_size * sizeof *logits);
    scratch = malloc(2 * (dim > ffn ? dim : ffn) * sizeof *scratch);
    cap.layers = L;
    cap.dim = dim;
    cap.ffn = ffn;
    cap.xn = calloc(steps * L * dim, sizeof(float));
    cap.h = calloc(steps * L * ffn, sizeof(float));
    if (!tok || !ta || !tb || !ratio || !troute || !logits || !scratch || !cap.xn || !cap.h) {
        fprintf(stderr, "bench_route: out of memory\n");
        goto done;
    }
    {
        uint64_t s = 12345;   /* a fixed LCG over the vocabulary, as bench_decode_models.sh */
        for (size_t i = 0; i <= steps; i++) {
            s = (s * 1103515245u + 12345u) % 2147483648u;
            tok[i] = (uint32_t)(s % c->vocab_size);
        }
    }
    /* warm-up: one token through each (page faults of the mapped weights, kernel packing) */
    if (spx_forward(&ctx, A, sa, tok, 1, NULL, logits) != 0 || spx_forward(&ctx, B, sb, tok, 1, NULL, logits) != 0) {
        fail("forward", &ctx);
        goto done;
    }
    for (size_t i = 0; i < steps; i++) {
        for (int k = 0; k < 2; k++) {
            int first_a = (i % 2 == 0) == (k == 0);
            const spx_model *m = first_a ? A : B;
            spx_state *st = first_a ? sa : sb;
            double t0 = bench_now();
            if (spx_forward(&ctx, m, st, tok + 1 + i, 1, NULL, logits) != 0) {
                fail("forward", &ctx);
                goto done;
            }
            (first_a ? ta : tb)[i] = bench_now() - t0;
        }
        ratio[i] = ta[i] / tb[i];
    }
    /* capture the router inputs of the same sequence */
    {
        spx_forward_hooks hk = {0};
        hk.ud = &cap;
        hk.mlp_input = cap_input;
        hk.mlp_hidden = cap_hidden;
        spx_state_reset(sa);
        if (spx_forward(&ctx, A, sa, tok, 1, NULL, logits) != 0) {
            fail("forward", &ctx);
            goto done;
        }
        for (size_t i = 0; i < steps; i++) {
            cap.step = i;
            if (spx_forward_hooked(&ctx, A, sa, tok + 1 + i, 1, NULL, logits, &hk) != 0) {
                fail("forward", &ctx);
                goto done;
            }
        }
    }
    {
        uint32_t lab, sum = 0;
        for (int r = 0; r < reps; r++) {
            double t0 = bench_now();
            for (size_t i = 0; i < steps; i++)
                for (size_t l = 0; l < L; l++) {
                    const spx_moe *moe = A->layers[l].moe;
                    if (!moe)
                        continue;
                    spx_moe_route(&moe->r_up, moe->fold[0], cap.xn + (i * L + l) * dim, 1, scratch, &lab);
                    sum += lab;
                    spx_moe_route(&moe->r_down, moe->fold[1], cap.h + (i * L + l) * ffn, 1, scratch, &lab);
                    sum += lab;
                }
            troute[r] = (bench_now() - t0) / (double)steps;
        }
        if (sum == 0xFFFFFFFFu)   /* keep the calls observable */
            fprintf(stderr, "bench_route: label sum %u\n", sum);
    }
    {
        double ma = bench_median(ta, steps), mb = bench_median(tb, steps), mr = bench_median(ratio, steps);
        double rt = bench_median(troute, (size_t)reps);
        const spx_moe *m0 = NULL;
        for (size_t l = 0; l < L && !m0; l++)
            m0 = A->layers[l].moe;
        printf("bench_route: %s (K up %u, down %u, pca %u / %u, %zu of %zu layers expanded) vs %s\n", pa,
               m0->k_up, m0->k_down, m0->r_up.pca_dim, m0->r_down.pca_dim, nmoe, L, pb);
        printf("kernel threads %d, %zu decode steps interleaved, routing timed over %d passes\n\n",
               spx_kern_threads(), steps, reps);
        printf("| measure | expanded%s | one sparse | ratio |\n|---|---|---|---|\n", pin ? " (pinned to expert 0)" : "");
        printf("| decode ms/token (median) | %.3f | %.3f | %.3f |\n", ma * 1e3, mb * 1e3, ma / mb);
        printf("| median of per-step ratios | | | %.3f |\n", mr);
        printf("| routing ms/token (2 routers x %zu layers) | %.4f | | %.2f%% of the expanded token |\n", nmoe,
               rt * 1e3, 100.0 * rt / ma);
    }
    rc = 0;
done:
    spx_state_free(sa);
    spx_state_free(sb);
    spx_model_free(A);
    spx_model_free(B);
    for (size_t i = 0; i < npinned; i++)
        free(pinned[i]);
    free(pinned);
    free(tok);
    free(ta);
    free(tb);
    free(ratio);
    free(troute);
    free(logits);
    free(scratch);
    free(cap.xn);
    free(cap.h);
    return rc;
}
