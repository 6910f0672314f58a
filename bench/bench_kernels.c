/* bench_kernels.c: timing of the packed sparse / fp16 kernels (verify/spx_kernels.h) against OpenBLAS
 * fp32 sgemv (decode) and sgemm (batches), all measured in the same run.
 *
 *   bench_kernels [--quick] [--threads N] [--reps N] [--isa auto|avx512|avx2|portable] [--cputime]
 *
 * Shapes: W [rows x cols] with rows = outputs, cols = inputs (PyTorch Linear). The default runs the
 * two 4096/11008 shapes of a 7B MLP: 11008 x 4096 (gate/up: y[11008] = W x[4096]) and 4096 x 11008
 * (down). --quick runs two small shapes with few repeats (CI smoke).
 *
 * Method: weights are N(0,1), pruned by a random mask of the stated sparsity (2:4: the 2 largest |w|
 * of every group of 4). Every repeat first streams a 96 MiB buffer so that no weights are left in
 * the 32 MiB L3 (a model's layers are always cold in decode). Cases are interleaved repeat by repeat
 * (the machine is shared: load changes hit all cases alike) and the median is reported. GB/s =
 * packed weight bytes / median time. Ratios are time(baseline) / time(case): > 1 means faster.
 * Export OPENBLAS_CORETYPE=SkylakeX on Zen 5: OpenBLAS 0.3.21 does not know Zen 5 and would use its
 * AVX2 kernels (see notes/cpu-limits.md).
 * --cputime times with the process CPU clock instead of the wall clock: with --threads 1 this
 * removes the time the process spends preempted on a busy shared machine (not the slowdown from
 * sharing caches, memory bandwidth or an SMT core); with more threads it adds up all threads'
 * time, including OpenBLAS's spinning, so use it with --threads 1 only. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "spx_kernels.h"

#define MAX_CASES 64
#define FLUSH_BYTES (96u << 20)

typedef struct bcase {
    char name[48];
    char sparsity[16];
    size_t n;                 /* tokens: 1 = matvec */
    const spx_kmat *m;        /* NULL: OpenBLAS on the dense fp32 matrix */
    double bytes;             /* weight bytes read per product */
    double *t;                /* [reps] seconds */
    double med;
} bcase;

typedef struct bench {
    uint32_t rows, cols;
    const float *w;           /* dense fp32 [rows x cols] */
    const float *X;           /* [64 x cols] */
    float *Y;                 /* [64 x rows] */
    bcase c[MAX_CASES];
    int nc;
    spx_kmat *own[MAX_CASES];
    int nown;
} bench;

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static double uniform(void)
{
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (double)((g_rng * 0x2545F4914F6CDD1Dull) >> 11) * 0x1.0p-53;
}

static float normal(void)
{
    /* sum of 4 uniforms, scaled: cheap, and the kernels do not care about the exact distribution */
    double s = uniform() + uniform() + uniform() + uniform() - 2.0;
    return (float)(s * 1.7320508);
}

static clockid_t g_clock = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec ts;
    clock_gettime(g_clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what, const spx_ctx *ctx)
{
    fprintf(stderr, "bench_kernels: %s: %s\n", what, ctx ? ctx->msg : "out of memory");
    exit(1);
}

/* Pruned copy of w: keep each weight with probability `keep`; keep < 0 means 2:4 by magnitude. */
static float *pruned(const bench *b, double keep)
{
    size_t numel = (size_t)b->rows * b->cols;
    float *p = malloc(numel * sizeof *p);
    if (!p)
        die("pruned copy", NULL);
    if (keep < 0) {
        for (size_t g = 0; g < numel; g += 4) {
            const float *s = b->w + g;
            int i1 = 0, i2 = 1;   /* two largest |w| of the group */
            if (__builtin_fabsf(s[i2]) > __builtin_fabsf(s[i1])) { i1 = 1; i2 = 0; }
            for (int k = 2; k < 4; k++) {
                if (__builtin_fabsf(s[k]) > __builtin_fabsf(s[i1])) { i2 = i1; i1 = k; }
                else if (__builtin_fabsf(s[k]) > __builtin_fabsf(s[i2])) i2 = k;
            }
            for (int k = 0; k < 4; k++)
                p[g + (size_t)k] = (k == i1 || k == i2) ? s[k] : 0.0f;
        }
    } else {
        for (size_t i = 0; i < numel; i++)
            p[i] = uniform() < keep ? b->w[i] : 0.0f;
    }
    return p;
}

static bcase *add_case(bench *b, const char *name, const char *sparsity, size_t n, const spx_kmat *m, double bytes)
{
    bcase *c = &b->c[b->nc++];
    snprintf(c->name, sizeof c->name, "%s", name);
    snprintf(c->sparsity, sizeof c->sparsity, "%s", sparsity);
    c->n = n;
    c->m = m;
    c->bytes = bytes;
    return c;
}

/* Pack `src` (fp32) into layout/dtype and register its matvec and, for each n in ns, matmul. */
static void add_kmat(bench *b, const char *name, const char *sparsity, const float *src, int layout, int dtype,
                     int matvec, const size_t *ns, int nn)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_kmat *m = NULL;
    if (spx_kmat_from_dense(&ctx, src, b->rows, b->cols, layout, dtype, &m) < 0)
        die(name, &ctx);
    b->own[b->nown++] = m;
    if (matvec)
        add_case(b, name, sparsity, 1, m, (double)spx_kmat_bytes(m));
    for (int i = 0; i < nn; i++)
        add_case(b, name, sparsity, ns[i], m, (double)spx_kmat_bytes(m));
}

static void run_case(const bench *b, const bcase *c)
{
    const blasint rows = (blasint)b->rows, cols = (blasint)b->cols;
    if (c->m) {
        if (c->n == 1)
            spx_kmat_matvec(c->m, b->X, b->Y);
        else
            spx_kmat_matmul(c->m, b->X, c->n, b->Y);
    } else if (c->n == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, b->w, cols, b->X, 1, 0.0f, b->Y, 1);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)c->n, rows, cols, 1.0f, b->X, cols, b->w, cols,
                    0.0f, b->Y, rows);
    }
}

static const bcase *find(const bench *b, const char *name, size_t n)
{
    for (int i = 0; i < b->nc; i++)
        if (strcmp(b->c[i].name, name) == 0 && b->c[i].n == n)
            return &b->c[i];
    return NULL;
}

static void print_ratio(const bcase *base, const bcase *c)
{
    if (base)
        printf(" %8.2f", base->med / c->med);
    else
        printf(" %8s", "-");
}

static void run_shape(uint32_t rows, uint32_t cols, int reps, unsigned char *flush)
{
    static const size_t ns[] = {16, 32, 64};
    const int nn = 3;
    bench *b = calloc(1, sizeof *b);
    size_t numel = (size_t)rows * cols;
    float *w = malloc(numel * sizeof *w), *X = malloc((size_t)64 * cols * sizeof *X);
    float *Y = malloc((size_t)64 * rows * sizeof *Y);
    if (!b || !w || !X || !Y)
        die("matrices", NULL);
    for (size_t i = 0; i < numel; i++)
        w[i] = normal();
    for (size_t i = 0; i < (size_t)64 * cols; i++)
        X[i] = normal();
    b->rows = rows;
    b->cols = cols;
    b->w = w;
    b->X = X;
    b->Y = Y;

    /* baselines */
    add_case(b, "sgemv f32 (OpenBLAS)", "0%", 1, NULL, (double)numel * 4);
    for (int i = 0; i < nn; i++)
        add_case(b, "sgemm f32 (OpenBLAS)", "0%", ns[i], NULL, (double)numel * 4);
    add_kmat(b, "dense f16", "0%", w, SPX_KL_DENSE, SPX_DTYPE_F16, 1, ns, nn);
    add_kmat(b, "dense bf16", "0%", w, SPX_KL_DENSE, SPX_DTYPE_BF16, 1, NULL, 0);

    float *p = pruned(b, -1.0);
    add_kmat(b, "nm24 f16", "2:4", p, SPX_KL_NM24, SPX_DTYPE_F16, 1, ns, nn);
    add_kmat(b, "nm24 bf16", "2:4", p, SPX_KL_NM24, SPX_DTYPE_BF16, 1, NULL, 0);
    free(p);
    p = pruned(b, 0.5);
    add_kmat(b, "bitmask f16", "50%", p, SPX_KL_BITMASK, SPX_DTYPE_F16, 1, ns, nn);
    add_kmat(b, "bitmask f32", "50%", p, SPX_KL_BITMASK, SPX_DTYPE_F32, 1, NULL, 0);
    add_kmat(b, "panel f16", "50%", p, SPX_KL_PANEL, SPX_DTYPE_F16, 0, ns, nn);
    add_kmat(b, "panel f32", "50%", p, SPX_KL_PANEL, SPX_DTYPE_F32, 0, ns, nn);
    free(p);
    p = pruned(b, 0.3);
    add_kmat(b, "bitmask f16", "70%", p, SPX_KL_BITMASK, SPX_DTYPE_F16, 1, NULL, 0);
    free(p);
    p = pruned(b, 0.15);
    add_kmat(b, "csr f16", "85%", p, SPX_KL_CSR, SPX_DTYPE_F16, 1, NULL, 0);
    free(p);
    p = pruned(b, 0.1);
    add_kmat(b, "csr f16", "90%", p, SPX_KL_CSR, SPX_DTYPE_F16, 1, ns, nn);
    add_kmat(b, "bitmask f16", "90%", p, SPX_KL_BITMASK, SPX_DTYPE_F16, 1, NULL, 0);
    add_kmat(b, "panel f16", "90%", p, SPX_KL_PANEL, SPX_DTYPE_F16, 0, ns, nn);
    free(p);

    for (int i = 0; i < b->nc; i++)
        if (!(b->c[i].t = calloc((size_t)reps, sizeof(double))))
            die("timings", NULL);
    for (int i = 0; i < b->nc; i++)   /* warm-up: pool threads, page faults, BLAS buffers */
        run_case(b, &b->c[i]);
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < b->nc; i++) {
            for (size_t k = 0; k < FLUSH_BYTES; k += 64)
                flush[k]++;
            double t0 = now();
            run_case(b, &b->c[i]);
            b->c[i].t[r] = now() - t0;
        }

    printf("\nW [%u x %u] (rows = outputs, cols = inputs), %d repeats, median\n", rows, cols, reps);
    printf("%-22s %-5s %3s %9s %9s %7s %8s %8s %8s\n", "kernel", "spars", "n", "median ms", "min ms", "GB/s",
           "x sgemv", "x f16", "x sgemm");
    for (int i = 0; i < b->nc; i++) {
        bcase *c = &b->c[i];
        c->med = bench_median(c->t, (size_t)reps);   /* sorts: t[0] is the minimum */
    }
    for (int i = 0; i < b->nc; i++) {
        const bcase *c = &b->c[i];
        printf("%-22s %-5s %3zu %9.3f %9.3f %7.1f", c->name, c->sparsity, c->n, c->med * 1e3, c->t[0] * 1e3,
               c->bytes / c->med * 1e-9);
        print_ratio(c->n == 1 ? find(b, "sgemv f32 (OpenBLAS)", 1) : NULL, c);
        print_ratio(find(b, "dense f16", c->n), c);
        print_ratio(c->n > 1 ? find(b, "sgemm f32 (OpenBLAS)", c->n) : NULL, c);
        printf("\n");
    }
    for (int i = 0; i < b->nc; i++)
        free(b->c[i].t);
    for (int i = 0; i < b->nown; i++)
        spx_kmat_free(b->own[i]);
    free(w);
    free(X);
    free(Y);
    free(b);
}

int main(int argc, char **argv)
{
    int quick = 0, threads = 2, reps = -1, isa = SPX_KISA_AUTO;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else if (strcmp(argv[i], "--cputime") == 0) {
            g_clock = CLOCK_PROCESS_CPUTIME_ID;
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--isa") == 0 && i + 1 < argc) {
            const char *s = argv[++i];
            isa = !strcmp(s, "avx512") ? SPX_KISA_AVX512 : !strcmp(s, "avx2") ? SPX_KISA_AVX2
                  : !strcmp(s, "portable") ? SPX_KISA_PORTABLE : !strcmp(s, "auto") ? SPX_KISA_AUTO : -1;
            if (isa < 0) {
                fprintf(stderr, "bench_kernels: unknown --isa '%s'\n", s);
                return 2;
            }
        } else {
            printf("usage: bench_kernels [--quick] [--threads N] [--reps N] [--isa auto|avx512|avx2|portable] [--cputime]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    if (reps < 1)
        reps = quick ? 3 : 21;
    spx_ctx ctx = SPX_CTX_INIT;
    if (spx_kern_set_isa(&ctx, isa) < 0)
        die("--isa", &ctx);
    threads = spx_kern_set_threads(threads);
    openblas_set_num_threads(threads);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("bench_kernels: kernels %s, %d thread(s), %s clock; OpenBLAS %s, core %s (OPENBLAS_CORETYPE=%s)\n",
           spx_kern_isa(), threads, g_clock == CLOCK_MONOTONIC ? "wall" : "process CPU", openblas_get_config(),
           openblas_get_corename(), ct ? ct : "unset");
    unsigned char *flush = calloc(FLUSH_BYTES, 1);
    if (!flush)
        die("flush buffer", NULL);
    if (quick) {
        run_shape(384, 1000, reps, flush);
        run_shape(1000, 384, reps, flush);
    } else {
        run_shape(11008, 4096, reps, flush);
        run_shape(4096, 11008, reps, flush);
    }
    free(flush);
    spx_kern_shutdown();
    return 0;
}
