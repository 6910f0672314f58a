/* bench_router.c: time of one training epoch of each gating-router kind (spx moefy's MoEfication,
 * DSTI and LTE routers, prune/spx_router_train.h) on synthetic activations.
 *
 * usage: bench_router [reps (default 5)] [n_small (default 65536)] [n_large (default 8192)]
 * Sizes: "stories" dim 64 with E = 4 and E = 43 (stories260K: ffn 172 = 4 x 43), n_small rows (moefy's
 * default --max-tokens); "4096-wide" dim 4096 with E = 128, n_large rows (a 7B-class FFN input;
 * 8192 rows = 128 MiB of inputs). Mini-batch 512, no held-out rows, input normalisation on (moefy's
 * defaults). Each kind trains `reps` epochs; the library's per-epoch wall time is reported as
 * the median (ms/epoch) with the minimum.
 * GFLOP/s counts the router's forward multiply-adds x 2 (FLOPs) x 3 (forward + backward, the usual
 * estimate) per row: moe (h = E) and dsti (h = 128) 6 (dim h + h E), lte 6 dim E; Adam updates and
 * the loss are not counted. Data: X ~ N(0, 1) plus a shared offset; targets from a random linear
 * map P [dim x E]: moe sigmoid(XP / sqrt(dim)), lte its rounding to {0, 1}, dsti |XP| / sqrt(dim). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "spx_rng.h"
#include "spx_router.h"
#include "spx_router_train.h"

typedef struct epoch_log {
    double sec[256];
    uint32_t n;
} epoch_log;

static void log_epoch(void *ud, const spx_router_epoch *e)
{
    epoch_log *l = ud;
    if (e->epoch >= 1 && l->n < 256)
        l->sec[l->n++] = e->seconds;
}

static int make_data(size_t n, uint32_t dim, uint32_t E, float **Xo, float **Yo)
{
    spx_rng rng;
    float *X = malloc(n * dim * sizeof(float)), *Y = malloc(n * E * sizeof(float) * 3), *P = malloc((size_t)dim * E * sizeof(float));
    if (!X || !Y || !P) {
        free(X);
        free(Y);
        free(P);
        return -1;
    }
    spx_rng_seed(&rng, 11);
    for (size_t i = 0; i < (size_t)dim * E; i++)
        P[i] = (float)spx_rng_normal(&rng);
    for (size_t i = 0; i < n * dim; i++)
        X[i] = (float)(spx_rng_normal(&rng) + 0.5);
    for (size_t i = 0; i < n; i++) {
        for (uint32_t e = 0; e < E; e++) {
            double z = 0.0, s;
            for (uint32_t j = 0; j < dim; j++)
                z += (double)X[i * dim + j] * (double)P[(size_t)j * E + e];
            z /= sqrt((double)dim);
            s = 1.0 / (1.0 + exp(-z));
            Y[i * E + e] = (float)s;                            /* moe */
            Y[n * E + i * E + e] = s >= 0.5 ? 1.0f : 0.0f;      /* lte */
            Y[2 * n * E + i * E + e] = (float)fabs(z);          /* dsti */
        }
    }
    free(P);
    *Xo = X;
    *Yo = Y;
    return 0;
}

static int run(const char *label, size_t n, uint32_t dim, uint32_t E, uint32_t reps)
{
    float *X = NULL, *Y = NULL;
    int rc = 0;
    if (make_data(n, dim, E, &X, &Y) < 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (int kind = SPX_ROUTER_MOE; kind <= SPX_ROUTER_LTE; kind++) {
        spx_ctx ctx = SPX_CTX_INIT;
        spx_router *r = NULL;
        spx_router_train_opts o;
        epoch_log lg;
        const float *Yk = Y + (kind == SPX_ROUTER_MOE ? 0 : kind == SPX_ROUTER_LTE ? 1 : 2) * n * E;
        double h, flops, med;
        memset(&lg, 0, sizeof lg);
        if (spx_router_new(&ctx, kind, dim, E, 0, 1, &r) < 0) {
            fprintf(stderr, "%s\n", ctx.msg);
            rc = 1;
            break;
        }
        spx_router_init_random(r, 1);
        spx_router_train_opts_init(&o, kind);
        o.epochs = reps;
        o.patience = 0;
        o.holdout = 0.0;
        o.log = log_epoch;
        o.log_ud = &lg;
        if (spx_router_train(&ctx, r, X, Yk, n, &o, NULL) < 0) {
            fprintf(stderr, "train %s: %s\n", spx_router_kind_name(kind), ctx.msg);
            spx_router_free(r);
            rc = 1;
            break;
        }
        h = kind == SPX_ROUTER_LTE ? 0.0 : (double)r->hidden;
        flops = kind == SPX_ROUTER_LTE ? 6.0 * dim * E : 6.0 * ((double)dim * h + h * E);
        flops *= (double)n;
        qsort(lg.sec, lg.n, sizeof(double), bench_cmp_double);
        med = lg.n ? lg.sec[lg.n / 2] : NAN;
        printf("| %-9s | %4u | %4u | %6zu | %-4s | %9.2f | %9.2f | %7.2f |\n", label, dim, E, n, spx_router_kind_name(kind),
               1e3 * med, lg.n ? 1e3 * lg.sec[0] : NAN, flops / med * 1e-9);
        spx_router_free(r);
    }
    free(X);
    free(Y);
    return rc;
}

int main(int argc, char **argv)
{
    uint32_t reps = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 5;
    size_t ns = argc > 2 ? (size_t)strtoull(argv[2], NULL, 10) : 65536, nl = argc > 3 ? (size_t)strtoull(argv[3], NULL, 10) : 8192;
    int rc = 0;
    if (reps == 0 || reps > 256 || ns < 2 || nl < 2) {
        fprintf(stderr, "usage: bench_router [reps 1..256] [n_small >= 2] [n_large >= 2]\n");
        return 2;
    }
    printf("| size | dim | E | rows | router | median ms/epoch | min ms | GFLOP/s |\n|---|---|---|---|---|---|---|---|\n");
    rc |= run("stories", ns, 64, 4, reps);
    rc |= run("stories", ns, 64, 43, reps);
    rc |= run("4096-wide", nl, 4096, 128, reps);
    return rc;
}
