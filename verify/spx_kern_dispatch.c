/* spx_kern_dispatch.c: run-time ISA selection, row splitting over the thread pool, and the
 * public matvec/matmul entry points.
 *
 * DENSE F32 goes to OpenBLAS (sgemv/sgemm), everything else to the selected ISA's kernels. Rows are
 * split into contiguous ranges, one per thread; every row is computed with the same arithmetic
 * whichever range it falls in, so results do not depend on the thread count. */
#include <cblas.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spx_kern_int.h"

#if defined(__x86_64__) || defined(__i386__)
#define SPX_KERN_X86 1
#include <cpuid.h>
#else
#define SPX_KERN_X86 0
#endif

typedef struct kops {
    const char *name;
    spx_kern_rows_fn rows;
    spx_kern_panel_fn panel;
} kops;

static const kops g_ops[SPX_KISA_COUNT] = {
    {"auto", spx_kern_rows_ref, spx_kern_panel_ref},
    {"portable", spx_kern_rows_ref, spx_kern_panel_ref},
#if SPX_KERN_X86
    {"avx2", spx_kern_rows_avx2, spx_kern_panel_avx2},
    {"avx512", spx_kern_rows_avx512, spx_kern_panel_avx512},
#else
    {"avx2", spx_kern_rows_ref, spx_kern_panel_ref},
    {"avx512", spx_kern_rows_ref, spx_kern_panel_ref},
#endif
};

static atomic_int g_isa;   /* SPX_KISA_*, 0 = not chosen yet */

#if SPX_KERN_X86
/* F16C from CPUID leaf 1 (ECX bit 29): clang 14's __builtin_cpu_supports does not know "f16c" */
static int has_f16c(void)
{
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29)) != 0;
}
#endif

int spx_kern_isa_supported(int isa)
{
    switch (isa) {
    case SPX_KISA_AUTO:
    case SPX_KISA_PORTABLE:
        return 1;
#if SPX_KERN_X86
    case SPX_KISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c() &&
               __builtin_cpu_supports("popcnt");
    case SPX_KISA_AVX512:
        return spx_kern_isa_supported(SPX_KISA_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#endif
    default:
        return 0;
    }
}

static int best_isa(void)
{
    return spx_kern_isa_supported(SPX_KISA_AVX512) ? SPX_KISA_AVX512
           : spx_kern_isa_supported(SPX_KISA_AVX2) ? SPX_KISA_AVX2 : SPX_KISA_PORTABLE;
}

static const kops *ops(void)
{
    int isa = atomic_load(&g_isa);
    if (isa == SPX_KISA_AUTO) {
        isa = best_isa();
        atomic_store(&g_isa, isa);
    }
    return &g_ops[isa];
}

const char *spx_kern_isa(void)
{
    return ops()->name;
}

int spx_kern_set_isa(spx_ctx *ctx, int isa)
{
    if (isa < 0 || isa >= SPX_KISA_COUNT)
        return spx_err_set(ctx, SPX_E_ARG, "unknown kernel ISA %d", isa);
    if (!spx_kern_isa_supported(isa))
        return spx_err_set(ctx, SPX_E_UNSUPPORTED, "this CPU cannot run the %s kernels", g_ops[isa].name);
    atomic_store(&g_isa, isa == SPX_KISA_AUTO ? best_isa() : isa);
    return 0;
}

/* ---- accessors ------------------------------------------------------------------------------- */

uint32_t spx_kmat_rows(const spx_kmat *m) { return m->rows; }
uint32_t spx_kmat_cols(const spx_kmat *m) { return m->cols; }
int spx_kmat_layout(const spx_kmat *m) { return m->layout; }
int spx_kmat_dtype(const spx_kmat *m) { return m->dtype; }
uint64_t spx_kmat_nnz(const spx_kmat *m) { return m->nnz; }
size_t spx_kmat_bytes(const spx_kmat *m) { return m->bytes; }

const char *spx_klayout_name(int layout)
{
    static const char *const names[SPX_KL_COUNT] = {"auto", "dense", "bitmask", "nm24", "csr", "panel"};
    return layout >= 0 && layout < SPX_KL_COUNT ? names[layout] : "?";
}

/* ---- row splitting --------------------------------------------------------------------------- */

/* First row of part i of n. CSR is balanced on (stored values + 8 per row), since its cost follows
 * the values; the other layouts cost the same per row (dense blocks, mask words, 2:4 blocks). */
static uint32_t part_start(const spx_kmat *m, unsigned i, unsigned n)
{
    if (i == 0)
        return 0;
    if (i >= n)
        return m->rows;
    if (m->layout != SPX_KL_CSR)
        return (uint32_t)((uint64_t)m->rows * i / n);
    const uint64_t total = m->ptr[m->rows] + 8 * (uint64_t)m->rows, target = total / n * i;
    uint32_t lo = 0, hi = m->rows;   /* smallest r with cost(r) >= target */
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->ptr[mid] + 8 * (uint64_t)mid < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

enum { JOB_ROWS, JOB_PANEL, JOB_TRANSPOSE };

typedef struct kjob {
    int kind;                /* JOB_* */
    const spx_kmat *m;
    const kops *o;
    const float *X;          /* ROWS, TRANSPOSE: X [nx][ldx]; PANEL: Xt [npan*256][nb] */
    size_t ldx, nx;
    float *Y;                /* ROWS, PANEL: Y [nx][ldy]; TRANSPOSE: Xt */
    size_t ldy;
    size_t nb;               /* PANEL, TRANSPOSE: tokens per Xt row */
} kjob;

/* Xt [c][0..nb) = X^T for columns [c0, c1): tokens [0, nx) copied, padding tokens 0. Written a panel
 * (256 x nb floats) at a time so that the block being written stays in L1. */
static void transpose_cols(const kjob *j, size_t c0, size_t c1)
{
    float *Xt = j->Y;
    for (size_t p0 = c0; p0 < c1; p0 += SPX_KL_PANEL_COLS) {
        size_t p1 = p0 + SPX_KL_PANEL_COLS < c1 ? p0 + SPX_KL_PANEL_COLS : c1;
        for (size_t c = p0; c < p1; c++)
            memset(Xt + c * j->nb + j->nx, 0, (j->nb - j->nx) * sizeof *Xt);
        for (size_t t = 0; t < j->nx; t++) {
            const float *xr = j->X + t * j->ldx;
            for (size_t c = p0; c < p1; c++)
                Xt[c * j->nb + t] = xr[c];
        }
    }
}

static void job_part(void *arg, unsigned part, unsigned nparts)
{
    const kjob *j = arg;
    if (j->kind == JOB_TRANSPOSE) {   /* split by whole panels */
        size_t p0 = (size_t)j->m->npan * part / nparts, p1 = (size_t)j->m->npan * (part + 1) / nparts;
        size_t c1 = p1 * SPX_KL_PANEL_COLS < j->m->cols ? p1 * SPX_KL_PANEL_COLS : j->m->cols;
        if (p0 * SPX_KL_PANEL_COLS < c1)
            transpose_cols(j, p0 * SPX_KL_PANEL_COLS, c1);
        return;
    }
    uint32_t r0 = part_start(j->m, part, nparts), r1 = part_start(j->m, part + 1, nparts);
    if (r0 >= r1)
        return;
    if (j->kind == JOB_PANEL)
        j->o->panel(j->m, j->X, j->nb, j->nx, j->Y, j->ldy, r0, r1);
    else
        j->o->rows(j->m, j->X, j->ldx, j->nx, j->Y, j->ldy, r0, r1);
}

/* Split over the threads when the job is big enough: work ~ bytes touched, times the tokens. */
static void run_job(kjob *j)
{
    unsigned nparts = (unsigned)spx_kern_threads();
    const int tr = j->kind == JOB_TRANSPOSE;
    const size_t units = tr ? j->m->npan : j->m->rows;   /* what gets split */
    const size_t per = tr ? (size_t)j->m->cols * sizeof(float) : j->m->bytes;
    const size_t work = per > SIZE_MAX / j->nx ? SIZE_MAX : per * j->nx;
    if (work < spx_kern_min_parallel() || units < nparts)
        nparts = 1;
    spx_kern_pool_run(nparts, job_part, j);
}

/* ---- public products --------------------------------------------------------------------------- */

static int is_blas(const spx_kmat *m)
{
    return m->layout == SPX_KL_DENSE && m->dtype == SPX_DTYPE_F32;
}

void spx_kmat_matvec(const spx_kmat *m, const float *x, float *y)
{
    if (is_blas(m)) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)m->rows, (blasint)m->cols, 1.0f, m->vals,
                    (blasint)m->cols, x, 1, 0.0f, y, 1);
        return;
    }
    kjob j = {JOB_ROWS, m, ops(), x, m->cols, 1, y, m->rows, 0};
    run_job(&j);
}

int spx_kmat_rows_native(const spx_kmat *m)
{
    return m && !is_blas(m);
}

void spx_kmat_matvec_rows(const spx_kmat *m, const float *x, float *y, uint32_t r0, uint32_t r1)
{
    if (r1 > m->rows)
        r1 = m->rows;
    if (r0 < r1)
        ops()->rows(m, x, m->cols, 1, y, m->rows, r0, r1);
}

/* Tokens per PANEL pass. 64 spread a row's index and broadcast work over more tokens, but a
 * 256 x 64 fp32 panel of X^T (64 KiB) overflows Zen 5's 48 KiB L1 and a row's random column reads
 * keep missing. Rows with many values per panel (>= 64 on average, e.g. 128 at 50% density) run
 * faster as 32-token passes: 4096 x 11008 at 50%, 2 threads, 1.51-1.57x sgemm(64) against
 * 1.24-1.43x in alternating bench_kernels runs (14.5-15.0 ms against 15.0-17.6). Sparse rows
 * (90%: ~26 values per panel) keep 64: 3.8-4.2x against 3.6-3.7x. */
static size_t panel_chunk(const spx_kmat *m)
{
    uint64_t slots = (uint64_t)m->rows * m->npan;
    return slots && m->nnz / slots >= 64 ? 32 : SPX_KNB;
}

void spx_kmat_matmul(const spx_kmat *m, const float *X, size_t n, float *Y)
{
    float *Xt = NULL;
    if (n == 0)
        return;
    if (is_blas(m)) {
        if (n == 1)
            spx_kmat_matvec(m, X, Y);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)n, (blasint)m->rows, (blasint)m->cols,
                        1.0f, X, (blasint)m->cols, m->vals, (blasint)m->cols, 0.0f, Y, (blasint)m->rows);
        return;
    }
    const size_t chunk = m->layout == SPX_KL_PANEL ? panel_chunk(m) : SPX_KNB;
    const size_t nbmax = n <= 16 ? 16 : n <= 32 || chunk == 32 ? 32 : SPX_KNB;
    if (m->layout == SPX_KL_PANEL && n > 1)
        Xt = aligned_alloc(64, (size_t)m->npan * SPX_KL_PANEL_COLS * nbmax * sizeof *Xt);
    if (!Xt) {   /* row kernels (or the PANEL fallback when the scratch is unavailable) */
        kjob j = {JOB_ROWS, m, ops(), X, m->cols, n, Y, m->rows, 0};
        run_job(&j);
        return;
    }
    for (size_t t0 = 0; t0 < n; t0 += chunk) {
        size_t nt = n - t0 < chunk ? n - t0 : chunk, nb = nt <= 16 ? 16 : nt <= 32 ? 32 : 64;
        kjob tr = {JOB_TRANSPOSE, m, NULL, X + t0 * m->cols, m->cols, nt, Xt, 0, nb};
        kjob j = {JOB_PANEL, m, ops(), Xt, 0, nt, Y + t0 * m->rows, m->rows, nb};
        run_job(&tr);
        run_job(&j);
    }
    free(Xt);
}
