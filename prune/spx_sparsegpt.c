/* spx_sparsegpt.c: SparseGPT stage 2, the blocked OBS sweep (fp32), and both stages in one call
 * (stage 1, the factor, is in spx_sgpt_factor.c). */
#include "spx_sparsegpt.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_kernels.h"
#include "spx_prune_select.h"
#include "spx_sgpt_rows.h"
#include "spx_sgpt_select.h"

/* Per-sweep scratch: [rows x nb] block of W, its errors, mask and scores; U block [nb x nb]. */
typedef struct sweep_buf {
    float *Wb, *Err, *S, *Ub;
    uint8_t *mask;
    float *diag2;      /* [nb] squared diagonal of the U block (score denominators) */
    size_t *hist;      /* [parts][SPX_SGPT_SEL_BINS] radix-select histograms */
    uint32_t *maxbits; /* [parts] */
    double *rowloss;   /* [rows] this block's OBS loss per row, summed in row order afterwards */
    uint64_t *npruned; /* [parts] weights pruned by each part of the row pass */
    unsigned char *tiles; /* [parts] x spx_sgpt_rows_scratch(B) bytes, 64-byte aligned */
    size_t tile_bytes;
} sweep_buf;

/* Rows per chunk of a block's row pass. Chunks are the unit of work and of the lazy sgemm, so the
 * arithmetic of every weight is the same for any number of threads (OpenBLAS may choose another
 * kernel for another M, so the split must not depend on the thread count). 384 rows keep the
 * sgemm near its full-matrix rate (128-row chunks were measured ~15% slower on 768 x 3072). */
#define SPX_SGPT_ROW_CHUNK 384

/* A block's row pass on the shared kernel pool (spx_kern_pool_run): for each chunk of rows, the
 * in-block OBS updates, their write-back into W and the chunk's share of the lazy update
 * W[r0:r1, i2:] -= Err[r0:r1, :nb] U[i1:i2, i2:] (single-threaded sgemm: OpenBLAS runs with one
 * thread during the sweep, see spx_sparsegpt_sweep). Part p takes chunks p, p + nparts, ... */
typedef struct rows_job {
    const spx_prune_opts *o;
    sweep_buf *b;
    float *W;
    const float *U;
    size_t rows, cols, i1, nb;
    int prep;          /* 1: the prep stage (below); 0: the row pass */
    int scores;        /* unstructured: scores in prep, mask = S <= thresh before the row pass */
    float thresh;
} rows_job;

/* Prep stage of a chunk: the block's columns of W into Wb, a cleared mask and, for unstructured
 * pruning, the scores S = w^2 / U[a][a]^2 the block threshold is selected on. */
static void prep_rows(const rows_job *j, size_t r0, size_t r1)
{
    const size_t nb = j->nb;
    sweep_buf *b = j->b;
    for (size_t r = r0; r < r1; r++) {
        const float *w = j->W + r * j->cols + j->i1;
        float *wb = b->Wb + r * nb;
        memcpy(wb, w, nb * sizeof(float));
        memset(b->mask + r * nb, 0, nb);
        if (j->scores)
            for (size_t a = 0; a < nb; a++)
                b->S[r * nb + a] = (wb[a] * wb[a]) / b->diag2[a];
    }
}

static void rows_task(void *arg, unsigned part, unsigned nparts)
{
    rows_job *j = arg;
    size_t nb = j->nb, i2 = j->i1 + nb, cols = j->cols;
    uint64_t pruned = 0;
    for (size_t r0 = (size_t)part * SPX_SGPT_ROW_CHUNK; r0 < j->rows;
         r0 += (size_t)nparts * SPX_SGPT_ROW_CHUNK) {
        size_t r1 = r0 + SPX_SGPT_ROW_CHUNK < j->rows ? r0 + SPX_SGPT_ROW_CHUNK : j->rows;
        if (j->prep) {
            prep_rows(j, r0, r1);
            continue;
        }
        if (j->scores)
            for (size_t q = r0 * nb; q < r1 * nb; q++)
                j->b->mask[q] = j->b->S[q] <= j->thresh;
        pruned += spx_sgpt_rows(j->o, j->b->Ub, nb, j->b->Wb, j->b->Err, j->b->mask, r0, r1, j->b->rowloss,
                                j->b->tiles + (size_t)part * j->b->tile_bytes);
        for (size_t r = r0; r < r1; r++)
            memcpy(j->W + r * cols + j->i1, j->b->Wb + r * nb, nb * sizeof(float));
        if (i2 < cols)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(r1 - r0), (int)(cols - i2), (int)nb,
                        -1.0f, j->b->Err + r0 * nb, (int)nb, j->U + j->i1 * cols + i2, (int)cols, 1.0f,
                        j->W + r0 * cols + i2, (int)cols);
    }
    if (!j->prep)
        j->b->npruned[part] = pruned;
}

int spx_sparsegpt_sweep(spx_ctx *ctx, float *W, size_t rows, size_t cols,
                        const spx_sparsegpt_inv *f, const spx_prune_opts *o, spx_prune_report *rep)
{
    int rc = 0;
    sweep_buf b = {0};
    size_t B, blk, bytes;
    double loss = 0.0;
    uint64_t pruned = 0;
    const float *U;
    unsigned np = 1;
    int blas_threads = 0;

    if (!W || !f || !f->U || f->cols != cols || rows == 0 || rows > (size_t)INT_MAX)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "sparsegpt sweep: bad arguments (%zu x %zu, factor for %zu)",
                 rows, cols, f ? f->cols : 0);
    SPX_TRY(rc, spx_prune_opts_check(ctx, o, cols, 1));
    B = (size_t)o->blocksize < cols ? (size_t)o->blocksize : cols;
    if (spx_ckd_mul_size(rows, cols, &blk) != 0 || spx_ckd_mul3_size(rows, B, sizeof(float), &bytes) != 0)
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "sparsegpt sweep: %zu x %zu overflows", rows, cols);
    for (size_t k = 0; k < blk; k++)
        if (!isfinite(W[k]))
            SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "sparsegpt sweep: W[%zu][%zu] is not finite",
                     k / cols, k % cols);
    /* Chunks of rows go to the kernel pool's threads, each with its own single-threaded share of
     * the lazy sgemm, so OpenBLAS is set to one thread for the sweep. (OpenBLAS-threaded sgemm
     * with a pooled row pass was measured slower: OpenBLAS's idle workers spin after each call,
     * 2^28 cycles unless OPENBLAS_THREAD_TIMEOUT says otherwise, and take the cores the row pass
     * needs; the CLI sets a shorter spin.) */
    {
        size_t nchunks = (rows + SPX_SGPT_ROW_CHUNK - 1) / SPX_SGPT_ROW_CHUNK;
        np = (unsigned)spx_kern_threads();
        if (np > nchunks)
            np = (unsigned)nchunks;
        if (np > SPX_KERN_MAX_THREADS)
            np = SPX_KERN_MAX_THREADS;
    }
    b.Wb = malloc(bytes);
    b.Err = malloc(bytes);
    b.S = malloc(bytes);
    b.mask = calloc(rows * B, 1);
    b.Ub = malloc(B * B * sizeof(float));
    b.diag2 = malloc(B * sizeof *b.diag2);
    b.hist = malloc(np * SPX_SGPT_SEL_BINS * sizeof *b.hist);
    b.maxbits = malloc(np * sizeof *b.maxbits);
    b.rowloss = malloc(rows * sizeof *b.rowloss);
    b.npruned = calloc(np, sizeof *b.npruned);
    if (!b.Wb || !b.Err || !b.S || !b.mask || !b.Ub || !b.diag2 || !b.hist || !b.maxbits || !b.rowloss || !b.npruned)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "sparsegpt sweep: out of memory");

    if (f->ndead)
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < cols; j++)
                if (f->dead[j])
                    W[r * cols + j] = 0.0f;

    b.tile_bytes = spx_sgpt_rows_scratch(B);
    b.tiles = aligned_alloc(64, (size_t)np * b.tile_bytes);   /* tile_bytes is a multiple of 64 */
    if (!b.tiles)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "sparsegpt sweep: out of memory");
    blas_threads = openblas_get_num_threads();
    if (blas_threads > 1)
        openblas_set_num_threads(1);
    U = f->U;
    for (size_t i1 = 0; i1 < cols; i1 += B) {
        size_t i2 = i1 + B < cols ? i1 + B : cols, nb = i2 - i1, numel = rows * nb;
        rows_job j = {o, &b, W, U, rows, cols, i1, nb, 1, o->nm_m == 0 && o->sparsity > 0.0, 0.0f};
        for (size_t a = 0; a < nb; a++) {
            memcpy(b.Ub + a * nb, U + (i1 + a) * cols + i1, nb * sizeof(float));
            b.diag2[a] = b.Ub[a * nb + a] * b.Ub[a * nb + a];
        }
        spx_kern_pool_run(np, rows_task, &j);   /* prep: Wb, cleared mask, scores */
        if (j.scores) {
            /* one threshold over rows x block columns on the current weights */
            size_t k = (size_t)floor((double)numel * o->sparsity);
            if (k >= numel)
                k = numel - 1;
            if (!spx_sgpt_kth(b.S, rows, nb, k, SPX_SGPT_ROW_CHUNK, np, b.hist, b.maxbits, &j.thresh)) {
                memcpy(b.Err, b.S, numel * sizeof(float));   /* select on a copy */
                j.thresh = spx_prune_kth_float(b.Err, numel, k);
            }
        }
        j.prep = 0;
        spx_kern_pool_run(np, rows_task, &j);   /* masks, row pass, write-back, lazy update */
        for (unsigned p = 0; p < np; p++)
            pruned += b.npruned[p];
        for (size_t r = 0; r < rows; r++)
            loss += b.rowloss[r];
    }
    if (rep) {
        memset(rep, 0, sizeof *rep);
        spx_prune_report_count(rep, W, rows, cols);
        rep->pruned = pruned;
        rep->retries = f->retries;
        rep->damp = f->damp;
        rep->dead = f->ndead;
        rep->loss = loss / 2.0;
    }
done:
    if (blas_threads > 1)
        openblas_set_num_threads(blas_threads);
    free(b.Wb);
    free(b.Err);
    free(b.S);
    free(b.mask);
    free(b.Ub);
    free(b.diag2);
    free(b.hist);
    free(b.maxbits);
    free(b.rowloss);
    free(b.npruned);
    free(b.tiles);
    return rc;
}

int spx_sparsegpt_prune(spx_ctx *ctx, float *W, size_t rows, size_t cols, const float *H,
                        const spx_prune_opts *o, spx_prune_report *rep)
{
    int rc = 0;
    spx_sparsegpt_inv *f = NULL;
    SPX_TRY(rc, spx_prune_opts_check(ctx, o, cols, 1));
    SPX_TRY(rc, spx_sparsegpt_factor(ctx, H, cols, o, &f));
    SPX_TRY(rc, spx_sparsegpt_sweep(ctx, W, rows, cols, f, o, rep));
done:
    spx_sparsegpt_inv_free(f);
    return rc;
}
