/* bench_prune.c: time the one-shot pruning kernels of prune/ on synthetic data and compare each
 * stage with its flop floor at the GEMM rates measured in the same run.
 *
 *   bench_prune [--quick | --full] [--large] [--repeats N]
 *     default   768x3072 layer (rows x cols), 16 x 2048 calibration tokens
 *     --quick   768x3072 layer, 4 x 512 tokens, for a smoke run
 *     --full    768x3072 layer, 128 x 2048 tokens (the SparseGPT default calibration)
 *     --large   also a 4096x11008 layer with 128 x 2048 tokens (~2.5 GB, minutes; 1 repeat)
 * Run with OPENBLAS_CORETYPE=SkylakeX on Zen 5 (see shared notes: the default pick is Haswell).
 * Times are medians over the repeats (default 3). Floors: Hessian = T c^2 flops (ssyrk) at the
 * sgemm rate; inverse = 2c^3/3 (dpotrf + dtrtri) at the dgemm rate; sweep = the lazy-update
 * sgemm flops + the in-block updates at the sgemm rate. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spx_hessian.h"
#include "spx_sparsegpt.h"
#include "spx_wanda.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static float urand(void)   /* uniform in [-1, 1) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((double)((rng_state * 0x2545F4914F6CDD1Dull) >> 40) / 8388608.0 - 1.0);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "bench_prune: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

typedef struct rates { double sgemm, dgemm; } rates;

/* GFLOP/s of square sgemm and dgemm of order n (median of 3 after a warm-up) */
static rates measure_rates(size_t n)
{
    rates r;
    float *a = xmalloc(n * n * sizeof(float)), *c = xmalloc(n * n * sizeof(float));
    double *da = xmalloc(n * n * sizeof(double)), *dc = xmalloc(n * n * sizeof(double)), t[3];
    for (size_t i = 0; i < n * n; i++) {
        a[i] = urand();
        da[i] = (double)a[i];
    }
    int N = (int)n;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, N, 1.0f, a, N, a, N, 0.0f, c, N);
    for (int k = 0; k < 3; k++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, N, 1.0f, a, N, a, N, 0.0f, c, N);
        t[k] = now() - t0;
    }
    r.sgemm = 2.0 * (double)n * (double)n * (double)n / median(t, 3) * 1e-9;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, N, 1.0, da, N, da, N, 0.0, dc, N);
    for (int k = 0; k < 3; k++) {
        double t0 = now();
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, N, N, 1.0, da, N, da, N, 0.0, dc, N);
        t[k] = now() - t0;
    }
    r.dgemm = 2.0 * (double)n * (double)n * (double)n / median(t, 3) * 1e-9;
    free(a);
    free(c);
    free(da);
    free(dc);
    return r;
}

static void row(const char *stage, double sec, double gflop, double rate)
{
    if (gflop > 0)
        printf("  %-26s %9.3f %9.1f %9.3f %7.2f\n", stage, sec, gflop, gflop / rate, sec / (gflop / rate));
    else
        printf("  %-26s %9.3f %9s %9s %7s\n", stage, sec, "-", "-", "-");
}

static int die(const spx_ctx *ctx)
{
    fprintf(stderr, "bench_prune: %s (%s)\n", ctx->msg, spx_err_name(ctx->code));
    return 1;
}

/* SparseGPT sweep flops for one layer: lazy sgemm + in-block row updates (~s of the columns) */
static double sweep_gflop(size_t rows, size_t cols, size_t B, double s)
{
    double f = 0;
    for (size_t i1 = 0; i1 < cols; i1 += B) {
        size_t i2 = i1 + B < cols ? i1 + B : cols, nb = i2 - i1;
        f += 2.0 * (double)rows * (double)nb * (double)(cols - i2);
        f += s * (double)rows * (double)nb * (double)nb;
    }
    return f * 1e-9;
}

static int bench_layer(size_t rows, size_t cols, size_t nseq, size_t seqlen, int reps, rates r)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_hessian *h = NULL;
    size_t chunk = 8 * 2048 / seqlen ? 8 * 2048 / seqlen : 1;   /* sequences per ssyrk call */
    if (chunk > nseq)
        chunk = nseq;
    if (cols * cols > 20000000u)
        chunk = 4 * 2048 / seqlen ? 4 * 2048 / seqlen : 1;      /* bound the buffer (~360 MB) */
    size_t ctok = chunk * seqlen;
    float *X = xmalloc(ctok * cols * sizeof(float)), *W0 = xmalloc(rows * cols * sizeof(float)),
          *W = xmalloc(rows * cols * sizeof(float)), *Wref = NULL;
    double *scale = xmalloc(cols * sizeof(double)), t[16], tok = (double)(nseq * seqlen);
    for (size_t j = 0; j < cols; j++)
        scale[j] = exp(1.5 * (double)urand());
    for (size_t i = 0; i < ctok; i++)
        for (size_t j = 0; j < cols; j++)
            X[i * cols + j] = urand() * (float)scale[j];
    for (size_t i = 0; i < rows * cols; i++)
        W0[i] = urand();
    if (spx_hessian_new(&ctx, cols, SPX_HESSIAN_FULL | SPX_HESSIAN_COLSQ, &h) != 0)
        return die(&ctx);

    printf("\nlayer %zu x %zu (rows x cols), calibration %zu x %zu tokens, ssyrk chunk %zu sequences\n",
           rows, cols, nseq, seqlen, chunk);
    printf("  %-26s %9s %9s %9s %7s\n", "stage", "median s", "GFLOP", "floor s", "ratio");
    int hreps = cols > 4096 ? 1 : reps;
    /* per-sequence adds (the reference's granularity) vs chunks of several sequences; the data
     * of the chunk buffer is reused (timing does not depend on values). The large layer only
     * runs the chunked variant (each run takes minutes). */
    for (int k = 0; k < hreps && cols <= 4096; k++) {
        spx_hessian_reset(h);
        double t0 = now();
        for (size_t s = 0; s < nseq; s++)
            if (spx_hessian_add(&ctx, h, X + (s % chunk) * seqlen * cols, seqlen) != 0)
                return die(&ctx);
        t[k] = now() - t0;
    }
    if (cols <= 4096)
        row("hessian, per sequence", median(t, hreps), tok * (double)cols * (double)cols * 1e-9, r.sgemm);
    for (int k = 0; k < hreps; k++) {
        spx_hessian_reset(h);
        double t0 = now();
        for (size_t s = 0; s < nseq; s += chunk) {
            size_t b = nseq - s < chunk ? nseq - s : chunk;
            if (spx_hessian_add_chunk(&ctx, h, X, b * seqlen, b) != 0)
                return die(&ctx);
        }
        t[k] = now() - t0;
    }
    row("hessian, chunked", median(t, hreps), tok * (double)cols * (double)cols * 1e-9, r.sgemm);

    spx_prune_opts o = SPX_PRUNE_OPTS_INIT;
    spx_sparsegpt_inv *f = NULL;
    for (int k = 0; k < reps; k++) {
        spx_sparsegpt_inv_free(f);
        f = NULL;
        double t0 = now();
        if (spx_sparsegpt_factor(&ctx, spx_hessian_matrix(h), cols, &o, &f) != 0)
            return die(&ctx);
        t[k] = now() - t0;
    }
    row("inverse (potrf+trtri, f64)", median(t, reps), 2.0 / 3.0 * pow((double)cols, 3) * 1e-9, r.dgemm);

    const char *names[2] = {"sweep 50%", "sweep 2:4"};
    double es[2] = {0, 0};
    for (int v = 0; v < 2; v++) {
        o.nm_n = v ? 2 : 0;
        o.nm_m = v ? 4 : 0;
        for (int k = 0; k < reps; k++) {
            memcpy(W, W0, rows * cols * sizeof(float));
            double t0 = now();
            if (spx_sparsegpt_sweep(&ctx, W, rows, cols, f, &o, NULL) != 0)
                return die(&ctx);
            t[k] = now() - t0;
        }
        row(names[v], median(t, reps), sweep_gflop(rows, cols, (size_t)o.blocksize, 0.5), r.sgemm);
        if (v == 0) {
            Wref = xmalloc(rows * cols * sizeof(float));
            memcpy(Wref, W, rows * cols * sizeof(float));
        }
    }
    o.nm_n = o.nm_m = 0;
    for (int k = 0; k < reps; k++) {
        memcpy(W, W0, rows * cols * sizeof(float));
        double t0 = now();
        if (spx_wanda_prune(&ctx, W, rows, cols, spx_hessian_colsq(h), &o, NULL) != 0)
            return die(&ctx);
        t[k] = now() - t0;
    }
    row("wanda 50%", median(t, reps), 0, r.sgemm);
    if (spx_prune_recon_error(&ctx, W0, W, rows, cols, spx_hessian_matrix(h), &es[1]) != 0)
        return die(&ctx);
    for (int k = 0; k < reps; k++) {
        memcpy(W, W0, rows * cols * sizeof(float));
        double t0 = now();
        if (spx_magnitude_prune(&ctx, W, rows, cols, &o, NULL) != 0)
            return die(&ctx);
        t[k] = now() - t0;
    }
    row("magnitude 50%", median(t, reps), 0, r.sgemm);
    double em = 0, t0 = now();
    if (spx_prune_recon_error(&ctx, W0, Wref, rows, cols, spx_hessian_matrix(h), &es[0]) != 0 ||
        spx_prune_recon_error(&ctx, W0, W, rows, cols, spx_hessian_matrix(h), &em) != 0)
        return die(&ctx);
    printf("  recon error ||WX-W'X||^2/||WX||^2 at 50%%: sparsegpt %.4f, wanda %.4f, magnitude %.4f"
           " (helper %.3f s each)\n", es[0], es[1], em, (now() - t0) / 2);
    spx_sparsegpt_inv_free(f);
    spx_hessian_free(h);
    free(X);
    free(W0);
    free(W);
    free(Wref);
    free(scale);
    return 0;
}

int main(int argc, char **argv)
{
    int quick = 0, full = 0, large = 0, reps = 3;
    setvbuf(stdout, NULL, _IOLBF, 0);   /* rows appear as stages finish, also when redirected */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = 1;
        else if (!strcmp(argv[i], "--full"))
            full = 1;
        else if (!strcmp(argv[i], "--large"))
            large = 1;
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: bench_prune [--quick | --full] [--large] [--repeats N (1..15)]\n");
            return 0;
        } else {
            fprintf(stderr, "bench_prune: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    if (reps < 1 || reps > 15) {
        fprintf(stderr, "bench_prune: --repeats must be in 1..15\n");
        return 2;
    }
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("bench_prune: OpenBLAS %d threads, core %s (OPENBLAS_CORETYPE=%s), %d repeats\n",
           openblas_get_num_threads(), openblas_get_corename(), ct ? ct : "unset", reps);
    rates r = measure_rates(2048);
    printf("GEMM rates (order 2048): sgemm %.1f GFLOP/s, dgemm %.1f GFLOP/s\n", r.sgemm, r.dgemm);
    size_t nseq = quick ? 4 : full ? 128 : 16, seqlen = quick ? 512 : 2048;
    if (bench_layer(768, 3072, nseq, seqlen, reps, r) != 0)
        return 1;
    if (large && bench_layer(4096, 11008, 128, 2048, 1, r) != 0)
        return 1;
    return 0;
}
