/* bench_route.c: the cost of expert routing (Sparse Expansion) per decoded token, in one process.
 *
 *   bench_route EXPANDED.spx ONE.spx [--steps N] [--threads T] [--reps R] [--pin] [--one-order]
 *
 * EXPANDED is a `spx expand` file (K experts per MLP), ONE the "one sparse model" it is compared
 * with: the same shapes, the MLP pruned to the same density and encoding, attention the same
 * (bench/bench_decode_models.sh builds x8.spx and x1.spx, the same expansion with K = 1). Both are
 * opened with the packed kernels, as `spx run` does.
 *
 * 1. Decode A/B: the same fixed token sequence (teacher-forced, N steps after one start token) is
 *    decoded by both models token by token, interleaved step by step (the order alternates every
 *    step), so both see the same host load; the figure is the median of the per-step time ratios
 *    (on this shared host a step's time varies up to 2x with the load, so the ratio of the two
 *    medians can land in different load regimes; the per-step ratio compares neighbours). The model
 *    opened first measured up to 3% slower than an identical copy opened second (memory placement),
 *    so the A/B runs twice, EXPANDED opened first and then ONE opened first (fresh opens), and the
 *    headline is the geometric mean of the two (--one-order: the first only).
 * 2. Phases: hooks stamp each step (attention; gate/up routing; gate/up; down routing; down; the
 *    rest: embedding, the last block's MLP and the head), reported as medians and per-step ratios.
 * 3. Routing alone: the inputs of every expanded layer's two routers (ffn_norm output for gate/up,
 *    the hidden activation for down) are captured during a decode of the same sequence, then
 *    spx_moe_route is timed on them exactly as spx_moe_mlp calls it (one token per call, both
 *    routers, every layer): median over R passes of the per-token routing time (with the router
 *    data hot in cache, unlike in the decode phases), and how many folded routings fell back to
 *    the exact route.
 * --pin: every centroid but the first of each EXPANDED router is moved far away (a copy; the folds
 *    are rebuilt), so every token takes expert 0: the same routing work over the memory footprint
 *    of one expert per block. Expanded vs pinned separates the cost of touching K experts' weights
 *    from the routing itself.
 * Run with OPENBLAS_CORETYPE=SkylakeX OPENBLAS_THREAD_TIMEOUT=22 (what the spx CLI sets). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "spx_forward.h"
#include "spx_kernels.h"
#include "spx_model.h"
#include "spx_moe.h"

/* Phase clock of a decode step: hooks stamp the boundaries inside each block (attention up to
 * mlp_input; up routing up to the route hook; gate/up up to mlp_hidden; down routing up to the
 * second route hook; down up to the next block's attn_input). The rest of the step (embedding,
 * the last block's MLP, which runs into the head without a stamp, and the head) is PH_REST. */
enum { PH_ATTN, PH_RUP, PH_GU, PH_RDOWN, PH_DOWN, PH_REST, PH_N };
static const char *const ph_name[PH_N] = {"attention", "gate/up routing", "gate/up", "down routing", "down",
                                          "rest: embedding, last MLP, head"};

typedef struct phase_clock {
    double last;          /* previous stamp */
    int ph;               /* the phase that ends at the next stamp, -1 before the first */
    double sum[PH_N];     /* seconds of this step */
} phase_clock;

static void ph_stamp(phase_clock *p, int next)
{
    double t = bench_now();
    if (p->ph >= 0)
        p->sum[p->ph] += t - p->last;
    p->last = t;
    p->ph = next;
}

static void ph_attn(void *ud, uint32_t layer, const float *x, size_t n)
{
    (void)layer, (void)x, (void)n;
    ph_stamp(ud, PH_ATTN);
}

static void ph_mlp_in(void *ud, uint32_t layer, const float *x, size_t n)
{
    (void)layer, (void)x, (void)n;
    ph_stamp(ud, PH_RUP);
}

static void ph_hidden(void *ud, uint32_t layer, const float *h, size_t n)
{
    (void)layer, (void)h, (void)n;
    ph_stamp(ud, PH_RDOWN);
}

static void ph_route(void *ud, uint32_t layer, int which, const uint32_t *labels, size_t n)
{
    (void)layer, (void)labels, (void)n;
    ph_stamp(ud, which ? PH_DOWN : PH_GU);
}

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

/* the two models of one A/B pass and their states; pinned: --pin's centroid copies [layers x 2] */
typedef struct pair {
    spx_model *A, *B;
    spx_state *sa, *sb;
    float **pinned;
    size_t npinned;
} pair;

static void pair_close(pair *p)
{
    spx_state_free(p->sa);
    spx_state_free(p->sb);
    spx_model_free(p->A);
    spx_model_free(p->B);
    for (size_t i = 0; i < p->npinned; i++)
        free(p->pinned[i]);
    free(p->pinned);
    memset(p, 0, sizeof *p);
}

/* every centroid but the first far from every input: expert 0 always wins */
static int pin_expert0(spx_ctx *ctx, pair *p)
{
    const size_t L = p->A->cfg.n_layers;
    if (!(p->pinned = calloc(2 * L, sizeof *p->pinned)))
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
    p->npinned = 2 * L;
    for (size_t l = 0; l < L; l++) {
        spx_moe *moe = p->A->layers[l].moe;
        for (int w = 0; moe && w < 2; w++) {
            spx_router *r = w ? &moe->r_down : &moe->r_up;
            size_t d = spx_router_rdim(r);
            float *cc = malloc((size_t)r->k * d * sizeof *cc);
            if (!cc)
                return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
            memcpy(cc, r->centroids, d * sizeof *cc);
            for (size_t i = d; i < (size_t)r->k * d; i++)
                cc[i] = 1e15f;
            p->pinned[2 * l + (size_t)w] = cc;
            r->centroids = cc;
        }
        if (moe && spx_moe_fold_routers(ctx, moe, (uint32_t)l) != 0)
            return SPX_E_NOMEM;
    }
    return 0;
}

/* open A and B (B first when b_first), check their shapes, pin A, make the states */
static int pair_open(spx_ctx *ctx, const char *pa, const char *pb, int b_first, int pin, size_t steps, pair *p)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < 2; i++) {
        int open_b = (i == 0) == (b_first != 0);
        if (spx_model_open(ctx, open_b ? pb : pa, SPX_MODEL_KERNELS, open_b ? &p->B : &p->A) != 0)
            return -1;
    }
    const spx_model_config *a = &p->A->cfg, *b = &p->B->cfg;
    size_t nmoe = 0;
    for (size_t l = 0; l < a->n_layers; l++)
        nmoe += p->A->layers[l].moe != NULL;
    if (b->n_layers != a->n_layers || b->dim != a->dim || b->ffn_dim != a->ffn_dim || b->vocab_size != a->vocab_size)
        return spx_err_set(ctx, SPX_E_SHAPE, "%s and %s have different shapes", pa, pb);
    if (nmoe == 0)
        return spx_err_set(ctx, SPX_E_ARG, "%s has no expanded layer", pa);
    if (pin && pin_expert0(ctx, p) != 0)
        return -1;
    if (spx_state_new(ctx, p->A, (uint32_t)steps + 1, 1, &p->sa) != 0 ||
        spx_state_new(ctx, p->B, (uint32_t)steps + 1, 1, &p->sb) != 0)
        return -1;
    return 0;
}

/* One interleaved decode of tok[0..steps] by A and B: ta/tb [steps] seconds, pha/phb [PH_N][steps]. */
static int decode_ab(spx_ctx *ctx, pair *p, const uint32_t *tok, size_t steps, float *logits, double *ta,
                     double *tb, double *pha, double *phb)
{
    phase_clock ca = {0}, cb = {0};
    int rc = 0;
    spx_state_reset(p->sa);
    spx_state_reset(p->sb);
    /* warm-up: the start token through each (page faults of the mapped weights, kernel packing) */
    if (spx_forward(ctx, p->A, p->sa, tok, 1, NULL, logits) != 0 ||
        spx_forward(ctx, p->B, p->sb, tok, 1, NULL, logits) != 0)
        return -1;
    spx_state_set_route_hook(p->sa, ph_route, &ca);
    spx_state_set_route_hook(p->sb, ph_route, &cb);
    for (size_t i = 0; i < steps && rc == 0; i++) {
        for (int k = 0; k < 2 && rc == 0; k++) {
            const int first_a = (i % 2 == 0) == (k == 0);
            phase_clock *pc = first_a ? &ca : &cb;
            double *t = first_a ? ta : tb, *ph = first_a ? pha : phb;
            spx_forward_hooks hk = {0};
            hk.ud = pc;
            hk.attn_input = ph_attn;
            hk.mlp_input = ph_mlp_in;
            hk.mlp_hidden = ph_hidden;
            memset(pc, 0, sizeof *pc);
            pc->ph = -1;
            double t0 = bench_now();
            rc = spx_forward_hooked(ctx, first_a ? p->A : p->B, first_a ? p->sa : p->sb, tok + 1 + i, 1, NULL,
                                    logits, &hk);
            t[i] = bench_now() - t0;
            pc->sum[PH_REST] = t[i];
            for (int q = 0; q < PH_REST; q++)
                pc->sum[PH_REST] -= pc->sum[q];
            for (int q = 0; q < PH_N; q++)
                ph[(size_t)q * steps + i] = pc->sum[q];
        }
    }
    spx_state_set_route_hook(p->sa, NULL, NULL);
    spx_state_set_route_hook(p->sb, NULL, NULL);
    return rc;
}

/* median of x[i] / y[i] over n (tmp: n doubles) */
static double ratio_median(const double *x, const double *y, size_t n, double *tmp)
{
    for (size_t i = 0; i < n; i++)
        tmp[i] = y[i] > 0 ? x[i] / y[i] : 0.0;
    return bench_median(tmp, n);
}

/* Capture A's router inputs over the sequence, then time spx_moe_route on them: troute [reps]
 * seconds per token; *nfold / *nfall: folded routings and their fallbacks. */
static int routing_alone(spx_ctx *ctx, pair *p, const uint32_t *tok, size_t steps, int reps, float *logits,
                         capture *cap, float *scratch, double *troute, size_t *nfold, size_t *nfall)
{
    const spx_model *A = p->A;
    const size_t L = A->cfg.n_layers, dim = A->cfg.dim, ffn = A->cfg.ffn_dim;
    spx_forward_hooks hk = {0};
    uint32_t lab, sum = 0;
    hk.ud = cap;
    hk.mlp_input = cap_input;
    hk.mlp_hidden = cap_hidden;
    spx_state_reset(p->sa);
    if (spx_forward(ctx, A, p->sa, tok, 1, NULL, logits) != 0)
        return -1;
    for (size_t i = 0; i < steps; i++) {
        cap->step = i;
        if (spx_forward_hooked(ctx, A, p->sa, tok + 1 + i, 1, NULL, logits, &hk) != 0)
            return -1;
    }
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        for (size_t i = 0; i < steps; i++)
            for (size_t l = 0; l < L; l++) {
                const spx_moe *moe = A->layers[l].moe;
                if (!moe)
                    continue;
                spx_moe_route(&moe->r_up, moe->fold[0], cap->xn + (i * L + l) * dim, 1, scratch, &lab);
                sum += lab;
                spx_moe_route(&moe->r_down, moe->fold[1], cap->h + (i * L + l) * ffn, 1, scratch, &lab);
                sum += lab;
            }
        troute[r] = (bench_now() - t0) / (double)steps;
    }
    if (sum == 0xFFFFFFFFu)   /* keep the calls observable */
        fprintf(stderr, "bench_route: label sum %u\n", sum);
    for (size_t i = 0; i < steps; i++)   /* how often the fold defers to the exact route */
        for (size_t l = 0; l < L; l++) {
            const spx_moe *moe = A->layers[l].moe;
            for (int w = 0; moe && w < 2; w++)
                if (moe->fold[w]) {
                    ++*nfold;
                    *nfall += spx_router_fold_assign(w ? &moe->r_down : &moe->r_up, moe->fold[w],
                                                     w ? cap->h + (i * L + l) * ffn : cap->xn + (i * L + l) * dim, 1,
                                                     scratch, &lab);
                }
        }
    return 0;
}

int main(int argc, char **argv)
{
    const char *pa = NULL, *pb = NULL;
    size_t steps = 128, nfold = 0, nfall = 0;
    int threads = 0, reps = 31, rc = 1, pin = 0, orders = 2;
    spx_ctx ctx = SPX_CTX_INIT;
    pair p = {0};
    uint32_t *tok = NULL;
    double *ta = NULL, *tb = NULL, *tmp = NULL, *troute = NULL, *pha = NULL, *phb = NULL;   /* [2 passes][...] */
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
        else if (!strcmp(argv[i], "--one-order"))
            orders = 1;
        else if (!strcmp(argv[i], "--help")) {
            printf("usage: bench_route EXPANDED.spx ONE.spx [--steps N (128)] [--threads T] [--reps R (31)] [--pin] "
                   "[--one-order]\n");
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
    tok = malloc((steps + 1) * sizeof *tok);
    ta = malloc(2 * steps * sizeof *ta);
    tb = malloc(2 * steps * sizeof *tb);
    tmp = malloc(2 * steps * sizeof *tmp);
    troute = malloc((size_t)reps * sizeof *troute);
    pha = malloc(2 * PH_N * steps * sizeof *pha);
    phb = malloc(2 * PH_N * steps * sizeof *phb);
    if (!tok || !ta || !tb || !tmp || !troute || !pha || !phb) {
        fprintf(stderr, "bench_route: out of memory\n");
        goto done;
    }
    double rpass[2], rphase[2][PH_N];
    for (int o = 0; o < orders; o++) {
        if (pair_open(&ctx, pa, pb, o, pin, steps, &p) != 0) {
            fprintf(stderr, "bench_route: %s\n", ctx.msg);
            goto done;
        }
        const spx_model_config *c = &p.A->cfg;
        if (!logits) {
            uint64_t s = 12345;   /* a fixed LCG over the vocabulary, as bench_decode_models.sh */
            for (size_t i = 0; i <= steps; i++) {
                s = (s * 1103515245u + 12345u) % 2147483648u;
                tok[i] = (uint32_t)(s % c->vocab_size);
            }
            logits = malloc((size_t)c->vocab_size * sizeof *logits);
            scratch = malloc(2 * (c->dim > c->ffn_dim ? c->dim : c->ffn_dim) * sizeof *scratch);
            if (!logits || !scratch) {
                fprintf(stderr, "bench_route: out of memory\n");
                goto done;
            }
        }
        double *pa_o = pha + (size_t)o * PH_N * steps, *pb_o = phb + (size_t)o * PH_N * steps;
        if (decode_ab(&ctx, &p, tok, steps, logits, ta + (size_t)o * steps, tb + (size_t)o * steps, pa_o, pb_o) != 0) {
            fprintf(stderr, "bench_route: forward: %s\n", ctx.msg);
            goto done;
        }
        rpass[o] = ratio_median(ta + (size_t)o * steps, tb + (size_t)o * steps, steps, tmp);
        for (int q = 0; q < PH_N; q++)
            rphase[o][q] = ratio_median(pa_o + (size_t)q * steps, pb_o + (size_t)q * steps, steps, tmp);
        if (o + 1 < orders)
            pair_close(&p);
    }
    {   /* p holds the last pass's models */
        const spx_model *A = p.A;
        const size_t L = A->cfg.n_layers, nst = (size_t)orders * steps;
        size_t nmoe = 0;
        const spx_moe *m0 = NULL;
        cap.layers = L;
        cap.dim = A->cfg.dim;
        cap.ffn = A->cfg.ffn_dim;
        cap.xn = calloc(steps * L * cap.dim, sizeof(float));
        cap.h = calloc(steps * L * cap.ffn, sizeof(float));
        if (!cap.xn || !cap.h) {
            fprintf(stderr, "bench_route: out of memory\n");
            goto done;
        }
        if (routing_alone(&ctx, &p, tok, steps, reps, logits, &cap, scratch, troute, &nfold, &nfall) != 0) {
            fprintf(stderr, "bench_route: forward: %s\n", ctx.msg);
            goto done;
        }
        for (size_t l = 0; l < L; l++) {
            nmoe += A->layers[l].moe != NULL;
            if (!m0)
                m0 = A->layers[l].moe;
        }
        double rt = bench_median(troute, (size_t)reps), ma = bench_median(ta, nst), mb = bench_median(tb, nst);
        double head = orders == 2 ? sqrt(rpass[0] * rpass[1]) : rpass[0];
        printf("bench_route: %s (K up %u, down %u, pca %u / %u, %zu of %zu layers expanded) vs %s\n", pa, m0->k_up,
               m0->k_down, m0->r_up.pca_dim, m0->r_down.pca_dim, nmoe, L, pb);
        printf("kernel threads %d, %zu decode steps interleaved per load order, routing timed over %d passes\n\n",
               spx_kern_threads(), steps, reps);
        printf("| measure | expanded%s | one sparse | ratio |\n|---|---|---|---|\n",
               pin ? " (pinned to expert 0)" : "");
        printf("| decode ms/token (median of all steps) | %.3f | %.3f | |\n", ma * 1e3, mb * 1e3);
        printf("| per-step ratio, median: expanded opened first | | | %.3f |\n", rpass[0]);
        if (orders == 2)
            printf("| per-step ratio, median: one sparse opened first | | | %.3f |\n", rpass[1]);
        printf("| **expanded / one sparse per token**%s | | | **%.3f** |\n",
               orders == 2 ? " (geometric mean of both orders)" : "", head);
        printf("| routing alone, router data hot (2 routers x %zu layers) | %.4f ms | | %.2f%% of the expanded "
               "token |\n", nmoe, rt * 1e3, 100.0 * rt / ma);
        printf("| folded routings that fell back to the exact route | %zu of %zu | | |\n", nfall, nfold);
        printf("\nPhases of a decode step (ms: median over all steps; ratio: median of the per-step ratios%s; the "
               "first five cover every block's attention and blocks 0..%zu's MLP):\n\n"
               "| phase | expanded | one sparse | ratio |\n|---|---|---|---|\n",
               orders == 2 ? ", geometric mean of both orders" : "", L - 2);
        for (int q = 0; q < PH_N; q++) {
            double *xa = ta, *xb = tb;   /* free again once ma and mb are taken */
            for (int o = 0; o < orders; o++) {
                memcpy(xa + (size_t)o * steps, pha + ((size_t)o * PH_N + (size_t)q) * steps, steps * sizeof *xa);
                memcpy(xb + (size_t)o * steps, phb + ((size_t)o * PH_N + (size_t)q) * steps, steps * sizeof *xb);
            }
            double r = orders == 2 ? sqrt(rphase[0][q] * rphase[1][q]) : rphase[0][q];
            const double xam = bench_median(xa, nst), xbm = bench_median(xb, nst);
            printf("| %s | %.4f | %.4f | %.3f |\n", ph_name[q], xam * 1e3, xbm * 1e3, r);
        }
    }
    rc = 0;
done:
    pair_close(&p);
    free(tok);
    free(ta);
    free(tb);
    free(tmp);
    free(troute);
    free(pha);
    free(phb);
    free(logits);
    free(scratch);
    free(cap.xn);
    free(cap.h);
    return rc;
}
