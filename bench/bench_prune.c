/* bench_prune.c: time the one-shot pruning kernels of prune/ on synthetic data and compare each
 * stage with its flop floor at a GEMM rate measured in the same run, right before every timed
 * repeat (the host is shared: a rate taken minutes earlier says little).
 *
 *   bench_prune [--quick | --full] [--large] [--repeats N]
 *     default   768x3072 layer (rows x cols), 16 x 2048 calibration tokens
 *     --quick   768x3072 layer, 4 x 512 tokens, for a smoke run
 *     --full    768x3072 layer, 128 x 2048 tokens (the SparseGPT default calibration)
 *     --large   also a 4096x11008 layer with 128 x 2048 tokens (~2.5 GB, minutes; 1 repeat)
 * Run with OPENBLAS_CORETYPE=SkylakeX on Zen 5 (see shared notes: the default pick is Haswell) and
 * OPENBLAS_THREAD_TIMEOUT=22, the two variables the spx CLI sets for itself (cli/main.c).
 * Per stage and repeat: one reference GEMM of the stage's size class, then the stage; the table
 * gives the median stage time, the median reference rate and the median of the per-repeat ratios
 * stage time / floor time. Floors and their references:
 *   Hessian  T c^2 flops (ssyrk, half of X^T X)  at sgemm [c x c] = X^T X, K = min(chunk, 2048)
 *   inverse  2c^3/3 (factor c^3/3 + triangular inverse c^3/3) at square dgemm of order min(c, 3072)
 *   sweep    the lazy-update sgemm flops + the in-block updates (about half the columns pruned)
 *            at sgemm [rows x cols] with K = 512 (the lazy update's M, N, a few blocks deep) */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "spx_hessian.h"
#include "spx_sparsegpt.h"
#include "spx_wanda.h"

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

/* GFLOP/s of one row-major sgemm C[M x N] = A[M x K] B[K x N] (A, B, C supplied, any values) */
static double sgemm_rate(size_t M, size_t N, size_t K, const float *A, const float *B, float *C)
{
    double t0 = bench_now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)M, (int)N, (int)K, 1.0f, A, (int)K, B,
                (int)N, 0.0f, C, (int)N);
    return 2.0 * (double)M * (double)N * (double)K / (bench_now() - t0) * 1e-9;
}

/* GFLOP/s of a square dgemm of order n on scratch of 3 n^2 doubles */
static double dgemm_rate(size_t n, double *buf)
{
    double t0 = bench_now();
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0, buf, (int)n,
                buf + n * n, (int)n, 0.0, buf + 2 * n * n, (int)n);
    return 2.0 * (double)n * (double)n * (double)n / (bench_now() - t0) * 1e-9;
}

/* reference GEMM shapes and their scratch: one allocation big enough for every shape */
typedef struct refbuf {
    float *a, *b, *c;
    double *d;
    size_t dn;
} refbuf;

static void refbuf_init(refbuf *r, size_t rows, size_t cols, size_t hk)
{
    size_t na = cols * hk > rows * 512 ? cols * hk : rows * 512;
    size_t nb = cols * hk > 512 * cols ? cols * hk : 512 * cols;
    size_t nc = cols * cols > rows * cols ? cols * cols : rows * cols;
    r->a = xmalloc(na * sizeof(float));
    r->b = xmalloc(nb * sizeof(float));
    r->c = xmalloc(nc * sizeof(float));
    r->dn = cols < 3072 ? cols : 3072;
    r->d = xmalloc(3 * r->dn * r->dn * sizeof(double));
    for (size_t i = 0; i < na; i++)
        r->a[i] = urand();
    for (size_t i = 0; i < nb; i++)
        r->b[i] = urand();
    for (size_t i = 0; i < 3 * r->dn * r->dn; i++)
        r->d[i] = (double)urand();
}

static void refbuf_free(refbuf *r)
{
    free(r->a);
    free(r->b);
    free(r->c);
    free(r->d);
}

/* stage row: times t[reps], reference rates rate[reps] (GFLOP/s), floor flops gflop */
static void row(const char *stage, double *t, double *rate, int reps, double gflop)
{
    double ratio[16];
    for (int k = 0; k < reps; k++)
        ratio[k] = gflop > 0 ? t[k] / (gflop / rate[k]) : 0;
    double mr = bench_median(ratio, (size_t)reps), mt = bench_median(t, (size_t)reps);
    if (gflop > 0) {
        double mrate = bench_median(rate, (size_t)reps);
        printf("  %-26s %9.3f %9.1f %9.1f %9.3f %7.2f\n", stage, mt, gflop, mrate, gflop / mrate, mr);
    } else {
        printf("  %-26s %9.3f %9s %9s %9s %7s\n", stage, mt, "-", "-", "-", "-");
    }
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

static int bench_layer(size_t rows, size_t cols, size_t nseq, size_t seqlen, int reps)
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
    double *scale = xmalloc(cols * sizeof(double)), t[16], rt[16], tok = (double)(nseq * seqlen);
    size_t hk = ctok < 2048 ? ctok : 2048;   /* K of the Hessian's reference sgemm */
    refbuf rb;
    refbuf_init(&rb, rows, cols, hk);
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
    printf("  %-26s %9s %9s %9s %9s %7s\n", "stage", "median s", "GFLOP", "ref GF/s", "floor s", "ratio");
    int hreps = cols > 4096 ? 1 : reps;
    /* per-sequence adds (the reference's granularity) vs chunks of several sequences; the data
     * of the chunk buffer is reused (timing does not depend on values). The large layer only
     * runs the chunked variant (each run takes minutes). */
    for (int k = 0; k < hreps && cols <= 4096; k++) {
        spx_hessian_reset(h);
        rt[k] = sgemm_rate(cols, cols, hk, rb.a, rb.b, rb.c);
        double t0 = bench_now();
        for (size_t s = 0; s < nseq; s++)
            if (spx_hessian_add(&ctx, h, X + (s % chunk) * seqlen * cols, seqlen) != 0)
                return die(&ctx);
        t[k] = bench_now() - t0;
    }
    if (cols <= 4096)
        row("hessian, per sequence", t, rt, hreps, tok * (double)cols * (double)cols * 1e-9);
    for (int k = 0; k < hreps; k++) {
        spx_hessian_reset(h);
        rt[k] = sgemm_rate(cols, cols, hk, rb.a, rb.b, rb.c);
        double t0 = bench_now();
        for (size_t s = 0; s < nseq; s += chunk) {
            size_t b = nseq - s < chunk ? nseq - s : chunk;
            if (spx_hessian_add_chunk(&ctx, h, X, b * seqlen, b) != 0)
                return die(&ctx);
        }
        t[k] = bench_now() - t0;
    }
    row("hessian, chunked", t, rt, hreps, tok * (double)cols * (double)cols * 1e-9);

    spx_prune_opts o = SPX_PRUNE_OPTS_INIT;
    spx_sparsegpt_inv *f = NULL;
    /* the first factor maps its fresh work buffer (page faults: ~8 ms with transparent huge pages,
     * far more without); prune and expand refactor later Hessians into a kept buffer, which the
     * timed repeats measure */
    double tfirst = bench_now();
    if (spx_sparsegpt_factor(&ctx, spx_hessian_matrix(h), cols, &o, &f) != 0)
        return die(&ctx);
    tfirst = bench_now() - tfirst;
    for (int k = 0; k < reps; k++) {
        rt[k] = dgemm_rate(rb.dn, rb.d);
        double t0 = bench_now();
        if (spx_sparsegpt_refactor(&ctx, spx_hessian_matrix(h), cols, &o, f) != 0)
            return die(&ctx);
        t[k] = bench_now() - t0;
    }
    row("inverse (chol+inv, f64)", t, rt, reps, 2.0 / 3.0 * pow((double)cols, 3) * 1e-9);
    printf("  %-26s %9.3f  (first factor, into a fresh buffer; not in the ratio)\n", "inverse, first call", tfirst);

    const char *names[2] = {"sweep 50%", "sweep 2:4"};
    double es[2] = {0, 0};
    for (int v = 0; v < 2; v++) {
        o.nm_n = v ? 2 : 0;
        o.nm_m = v ? 4 : 0;
        for (int k = 0; k < reps; k++) {
            memcpy(W, W0, rows * cols * sizeof(float));
            rt[k] = sgemm_rate(rows, cols, 512, rb.a, rb.b, rb.c);
            double t0 = bench_now();
            if (spx_sparsegpt_sweep(&ctx, W, rows, cols, f, &o, NULL) != 0)
                return die(&ctx);
            t[k] = bench_now() - t0;
        }
        row(names[v], t, rt, reps, sweep_gflop(rows, cols, (size_t)o.blocksize, 0.5));
        if (v == 0) {
            Wref = xmalloc(rows * cols * sizeof(float));
            memcpy(Wref, W, rows * cols * sizeof(float));
        }
    }
    o.nm_n = o.nm_m = 0;
    for (int k = 0; k < reps; k++) {
        memcpy(W, W0, rows * cols * sizeof(float));
        double t0 = bench_now();
        if (spx_wanda_prune(&ctx, W, rows, cols, spx_hessian_colsq(h), &o, NULL) != 0)
            return die(&ctx);
        t[k] = bench_now() - t0;
    }
    row("wanda 50%", t, rt, reps, 0);
    if (spx_prune_recon_error(&ctx, W0, W, rows, cols, spx_hessian_matrix(h), &es[1]) != 0)
        return die(&ctx);
    for (int k = 0; k < reps; k++) {
        memcpy(W, W0, rows * cols * sizeof(float));
        double t0 = bench_now();
        if (spx_magnitude_prune(&ctx, W, rows, cols, &o, NULL) != 0)
            return die(&ctx);
        t[k] = bench_now() - t0;
    }
    row("magnitude 50%", t, rt, reps, 0);
    double em = 0, t0 = bench_now();
    if (spx_prune_recon_error(&ctx, W0, Wref, rows, cols, spx_hessian_matrix(h), &es[0]) != 0 ||
        spx_prune_recon_error(&ctx, W0, W, rows, cols, spx_hessian_matrix(h), &em) != 0)
        return die(&ctx);
    printf("  recon error ||WX-W'X||^2/||WX||^2 at 50%%: sparsegpt %.4f, wanda %.4f, magnitude %.4f"
           " (helper %.3f s each)\n", es[0], es[1], em, (bench_now() - t0) / 2);
    spx_sparsegpt_inv_free(f);
    spx_hessian_free(h);
    free(X);
    free(W0);
    free(W);
    free(Wref);
    free(scale);
    refbuf_free(&rb);
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
    {
        char line[256], model[200] = "?";
        FILE *fp = fopen("/proc/cpuinfo", "r");
        while (fp && fgets(line, sizeof line, fp))
            if (sscanf(line, "model name : %199[^\n]", model) == 1)
                break;
        if (fp)
            fclose(fp);
        printf("machine: %s\n", model);
    }
    const char *ct = getenv("OPENBLAS_CORETYPE"), *to = getenv("OPENBLAS_THREAD_TIMEOUT");
    printf("bench_prune: OpenBLAS %d threads, core %s (OPENBLAS_CORETYPE=%s, OPENBLAS_THREAD_TIMEOUT=%s), "
           "%d repeats\n", openblas_get_num_threads(), openblas_get_corename(), ct ? ct : "unset",
           to ? to : "unset", reps);
    size_t nseq = quick ? 4 : full ? 128 : 16, seqlen = quick ? 512 : 2048;
    if (bench_layer(768, 3072, nseq, seqlen, reps) != 0)
        return 1;
    if (large && bench_layer(4096, 11008, 128, 2048, 1) != 0)
        return 1;
    return 0;
}
