/* spx_sgpt_factor.c: SparseGPT stage 1, U = chol((H + damp I)^-1) in double, stored as fp32.
 * The three memory passes around the factorization (H -> J H J in double, the un-reversal, the
 * shrink to fp32) run on the kernel pool: at cols = 3072 they were ~15% of the stage on one
 * thread. Every output value is computed by one thread from the same inputs, so the result does
 * not depend on the thread count. */
#include "spx_sparsegpt.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_cholinv.h"
#include "spx_kernels.h"
#include "spx_prune_mem.h"

/* Passes shorter than this many matrix rows run on the calling thread (waking costs more). */
#define SPX_SGPT_FACTOR_MIN_ROWS 64

/* 1 if any of the n doubles at p is not finite */
static int any_nonfinite(const double *p, size_t n)
{
    double bad = 0.0;
    for (size_t j = 0; j < n; j++)
        bad += p[j] * 0.0;   /* NaN iff a non-finite entry */
    return isnan(bad);
}

/* First row of part `part` when rows 0..n-1 holding n - i upper-triangle values each are split
 * into nparts runs of about equal value counts. */
static size_t tri_row(size_t n, unsigned part, unsigned nparts)
{
    const double total = 0.5 * (double)n * (double)(n + 1);
    const double want = total * (double)part / (double)nparts;
    size_t r = 0;
    double done = 0.0;
    while (r < n && done + (double)(n - r) * 0.5 < want) {
        done += (double)(n - r);
        r++;
    }
    return part == 0 ? 0 : part >= nparts ? n : r;
}

/* One job for all passes; each task reads the fields it needs. */
typedef struct factor_job {
    const float *H;   /* [n x n] input, upper triangle */
    double *A;        /* [n x n] work */
    size_t n;
    uint8_t *dead;    /* [n] */
    double damp;
    size_t bad[SPX_KERN_MAX_THREADS];   /* per part: first bad row, or n */
    double *tmp;      /* [parts][(n + 1) / 2 + 1] un-reversal scratch */
    size_t r0, r1;    /* shrink: rows of this phase */
} factor_job;

/* Validate H's upper triangle (first non-finite row) and mark dead inputs. */
static void check_task(void *arg, unsigned part, unsigned nparts)
{
    factor_job *j = arg;
    const size_t n = j->n, r1 = tri_row(n, part + 1, nparts);
    j->bad[part] = n;
    for (size_t i = tri_row(n, part, nparts); i < r1; i++) {
        const float *h = j->H + i * n;
        float bad = 0.0f;
        for (size_t c = i; c < n; c++)
            bad += h[c] * 0.0f;
        if (isnan(bad)) {
            j->bad[part] = i;
            break;
        }
        j->dead[i] = h[i] == 0.0f;
    }
}

/* A = J (H + damp I) J directly: H[i][c] (c >= i) goes to flat index nn-1-(i*n+c), i.e. the
 * row-major lower triangle of the reversed matrix (= column-major upper). */
static void build_task(void *arg, unsigned part, unsigned nparts)
{
    factor_job *j = arg;
    const size_t n = j->n, nn = n * n, r1 = tri_row(n, part + 1, nparts);
    for (size_t i = tri_row(n, part, nparts); i < r1; i++) {
        const float *h = j->H + i * n;
        double *a = j->A + (nn - 1 - i * n);   /* *(a - c) receives H[i][c] */
        for (size_t c = i; c < n; c++)
            *(a - c) = (double)h[c];
        *(a - i) = (j->dead[i] ? 1.0 : (double)h[i]) + j->damp;
    }
}

/* After spx_cholinv_upper the row-major view of A is R = L^-1 (row r holds R[r][0..r]) and
 * U[i][c] = R[n-1-i][n-1-c]. Rows are moved in pairs (i, k = n-1-i): R[i][0..i] is saved, R row k
 * reversed becomes U row i from the diagonal on, the saved values reversed become U row k. Pairs
 * are independent, each moves n + 1 values: an even split of the pair index. Both rows are
 * checked for NaN/Inf while in cache. */
static void unreverse_task(void *arg, unsigned part, unsigned nparts)
{
    factor_job *j = arg;
    const size_t n = j->n, npairs = (n + 1) / 2;
    const size_t p0 = npairs * part / nparts, p1 = npairs * (part + 1) / nparts;
    double *tmp = j->tmp + (size_t)part * ((n + 1) / 2 + 1);
    j->bad[part] = n;
    for (size_t i = p0; i < p1; i++) {
        const size_t k = n - 1 - i;
        double *ri = j->A + i * n, *rk = j->A + k * n;
        memcpy(tmp, ri, (i + 1) * sizeof *tmp);
        if (k != i)
            for (size_t c = i; c < n; c++)
                ri[c] = rk[n - 1 - c];
        for (size_t c = k; c < n; c++)
            rk[c] = tmp[n - 1 - c];
        if (j->bad[part] == n && (any_nonfinite(ri + i, n - i) || any_nonfinite(rk + k, n - k)))
            j->bad[part] = i;
    }
}

/* U's upper triangle (doubles) as an n x n float matrix with zeros below the diagonal, at the
 * start of the same buffer. Float row r is bytes [4nr, 4n(r+1)); for r >= 1 that is before its own
 * doubles (from byte 8nr) and inside double rows [r/2, (r+1)/2), all < r. So a phase of rows
 * [2^k, 2^(k+1)) only overwrites double rows [2^(k-1), 2^k) of earlier phases and its rows can be
 * converted in parallel. Row 0's floats trail the doubles they come from (sequential, chunked).
 * Values go through a stack buffer and memcpy (no type punning). */
static void shrink_rows(double *buf, size_t n, size_t r0, size_t r1)
{
    float tmp[1024];
    char *dst = (char *)buf;
    for (size_t r = r0; r < r1; r++) {
        const double *src = buf + r * n;
        char *row = dst + r * n * sizeof(float);
        memset(row, 0, r * sizeof(float));
        for (size_t k = r; k < n; k += 1024) {
            size_t m = n - k < 1024 ? n - k : 1024;
            for (size_t c = 0; c < m; c++)
                tmp[c] = (float)src[k + c];
            memcpy(row + k * sizeof(float), tmp, m * sizeof(float));
        }
    }
}

static void shrink_task(void *arg, unsigned part, unsigned nparts)
{
    factor_job *j = arg;
    const size_t r0 = j->r0, r1 = j->r1;
    /* every float row is written in full (zeros below the diagonal): an even split by rows */
    const size_t m = r1 - r0;
    shrink_rows(j->A, j->n, r0 + m * part / nparts, r0 + m * (part + 1) / nparts);
}

static void shrink_upper_to_float(factor_job *j, unsigned nparts)
{
    const size_t n = j->n;
    shrink_rows(j->A, n, 0, 1);   /* n >= 1 */
    for (size_t r0 = 1; r0 < n; r0 *= 2) {
        j->r0 = r0;
        j->r1 = 2 * r0 < n ? 2 * r0 : n;
        /* (the pool runs a single part on the calling thread) */
        spx_kern_pool_run(j->r1 - j->r0 < SPX_SGPT_FACTOR_MIN_ROWS ? 1 : nparts, shrink_task, j);
    }
}

static size_t first_bad(const factor_job *j, unsigned nparts)
{
    size_t b = j->n;
    for (unsigned p = 0; p < nparts; p++)
        b = j->bad[p] < b ? j->bad[p] : b;
    return b;
}

/* Factor + un-reversal of the prepared A (see spx_sparsegpt.h for the derivation). */
static int inv_chol_reversed(spx_ctx *ctx, factor_job *j, unsigned nparts)
{
    int rc = 0;
    SPX_TRY(rc, spx_cholinv_upper(ctx, j->A, j->n, j->n));
    spx_kern_pool_run(nparts, unreverse_task, j);
    {
        size_t b = first_bad(j, nparts);
        if (b < j->n)
            SPX_FAIL(ctx, rc, SPX_E_CHOLESKY, "inverse Cholesky factor has NaN/Inf near row %zu",
                     b);
    }
done:
    return rc;
}

/* Parts for passes over an n x n matrix: the pool's threads, or 1 for small matrices. */
static unsigned pass_parts(size_t n)
{
    int t = spx_kern_threads();
    if (n < SPX_SGPT_FACTOR_MIN_ROWS || t < 2)
        return 1;
    return (unsigned)(t > SPX_KERN_MAX_THREADS ? SPX_KERN_MAX_THREADS : t);
}

/* Un-reversal scratch of a job over n x n: (n + 1) / 2 + 1 doubles per part. */
static double *alloc_tmp(size_t n, unsigned nparts)
{
    return malloc((size_t)nparts * ((n + 1) / 2 + 1) * sizeof(double));
}

int spx_sparsegpt_inv_chol(spx_ctx *ctx, double *A, size_t n)
{
    int rc = 0;
    size_t nn;
    factor_job j;
    unsigned np = pass_parts(n);

    memset(&j, 0, sizeof j);
    if (!A || n == 0 || n > (size_t)INT_MAX || spx_ckd_mul_size(n, n, &nn) != 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "inverse Cholesky: bad order %zu", n);
    if (!(j.tmp = alloc_tmp(n, np)))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "inverse Cholesky: out of memory");
    /* reversing the flat array maps the row-major upper of A to the row-major lower of J A J */
    for (size_t i = 0, k = nn - 1; i < nn / 2; i++, k--) {
        double t = A[i];
        A[i] = A[k];
        A[k] = t;
    }
    j.A = A;
    j.n = n;
    SPX_TRY(rc, inv_chol_reversed(ctx, &j, np));
    for (size_t i = 1; i < n; i++)   /* the factor's scratch below the diagonal */
        memset(A + i * n, 0, i * sizeof *A);
done:
    free(j.tmp);
    return rc;
}

void spx_sparsegpt_inv_free(spx_sparsegpt_inv *f)
{
    if (!f)
        return;
    free(f->work);
    free(f->dead);
    free(f);
}

size_t spx_sparsegpt_inv_bytes(const spx_sparsegpt_inv *f)
{
    return f ? f->work_cap * sizeof(double) : 0;
}

int spx_sparsegpt_refactor(spx_ctx *ctx, const float *H, size_t cols, const spx_prune_opts *o,
                           spx_sparsegpt_inv *f)
{
    int rc = 0;
    factor_job j;
    double mean = 0.0;
    size_t nn, bytes;
    unsigned np = pass_parts(cols);
    spx_ctx sub = SPX_CTX_INIT;

    memset(&j, 0, sizeof j);
    if (!f || !H || !o || cols == 0 || cols > (size_t)INT_MAX)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "sparsegpt factor: bad arguments (cols %zu)", cols);
    f->cols = 0;   /* unusable until this call succeeds */
    f->U = NULL;
    f->ndead = 0;
    f->retries = 0;
    f->damp = 0.0;
    {
        spx_prune_opts chk = *o;   /* only the damping fields matter here */
        chk.nm_n = chk.nm_m = 0;
        chk.sparsity = 0.0;
        SPX_TRY(rc, spx_prune_opts_check(ctx, &chk, cols, 1));
    }
    if (spx_ckd_mul_size(cols, cols, &nn) != 0 || spx_ckd_mul_size(nn, sizeof(double), &bytes) != 0)
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "sparsegpt factor: %zu x %zu overflows", cols, cols);
    free(f->dead);
    f->dead = calloc(cols, 1);
    if (f->work_cap < nn) {   /* grow; a large enough buffer is reused (no new pages to fault) */
        free(f->work);
        f->work_cap = 0;
        f->work = spx_prune_alloc_big(bytes);
        if (f->work)
            f->work_cap = nn;
    }
    j.tmp = alloc_tmp(cols, np);
    if (!f->dead || !f->work || !j.tmp)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "sparsegpt factor: cannot allocate %zu bytes", bytes);
    j.H = H;
    j.n = cols;
    j.dead = f->dead;
    j.A = f->work;

    /* validate H's upper triangle; dead inputs; mean of the fixed diagonal (summed in row order) */
    spx_kern_pool_run(np, check_task, &j);
    {
        size_t i = first_bad(&j, np), c = i;
        if (i < cols) {
            while (c < cols && isfinite(H[i * cols + c]))
                c++;
            SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "sparsegpt factor: H[%zu][%zu] is not finite", i, c);
        }
    }
    for (size_t i = 0; i < cols; i++) {
        f->ndead += f->dead[i];
        mean += f->dead[i] ? 1.0 : (double)H[i * cols + i];
    }
    mean /= (double)cols;
    if (!(mean > 0.0))
        SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "sparsegpt factor: mean(diag H) = %g is not positive", mean);

    for (int k = 0;; k++) {
        j.damp = (o->percdamp + (double)k * o->retry_damp) * mean;
        spx_kern_pool_run(np, build_task, &j);
        spx_err_clear(&sub);
        if (inv_chol_reversed(&sub, &j, np) == 0) {
            f->retries = k;
            f->damp = j.damp;
            break;
        }
        if (k >= o->max_retries)
            SPX_FAIL(ctx, rc, SPX_E_CHOLESKY,
                     "sparsegpt: H (%zu x %zu) not positive definite after %d damping retries "
                     "(damping %g = %g x mean diag %g): %s", cols, cols, k, j.damp, j.damp / mean,
                     mean, sub.msg);
    }
    shrink_upper_to_float(&j, np);
    f->U = f->work;   /* the floats now at the start of the work buffer */
    f->cols = cols;
done:
    free(j.tmp);
    return rc;
}

int spx_sparsegpt_factor(spx_ctx *ctx, const float *H, size_t cols, const spx_prune_opts *o,
                         spx_sparsegpt_inv **out)
{
    int rc = 0;
    spx_sparsegpt_inv *f = NULL;

    *out = NULL;
    f = calloc(1, sizeof *f);
    if (!f)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "sparsegpt factor: out of memory");
    SPX_TRY(rc, spx_sparsegpt_refactor(ctx, H, cols, o, f));
    *out = f;
    f = NULL;
done:
    spx_sparsegpt_inv_free(f);
    return rc;
}
