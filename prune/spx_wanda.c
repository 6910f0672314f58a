/* spx_wanda.c: Wanda (|W| * ||X_j||, per-row comparison groups) and magnitude pruning. */
#include "spx_wanda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_prune_mem.h"
#include "spx_prune_select.h"

static int check_w(spx_ctx *ctx, const float *W, size_t rows, size_t cols, const char *who)
{
    size_t n;
    if (!W || rows == 0 || spx_ckd_mul_size(rows, cols, &n) != 0 || n > SIZE_MAX / sizeof(float))
        return spx_err_set(ctx, SPX_E_ARG, "%s: bad weight matrix %zu x %zu", who, rows, cols);
    for (size_t k = 0; k < n; k++)
        if (!isfinite(W[k]))
            return spx_err_set(ctx, SPX_E_NUMERIC, "%s: W[%zu][%zu] is not finite", who, k / cols,
                               k % cols);
    return 0;
}

/* N:M over every row with scores score(r, j) = |W_rj| * scale[j] (scale NULL: 1). */
static uint64_t prune_nm(float *W, size_t rows, size_t cols, const double *scale, int n, int m)
{
    double s[256];
    uint8_t keep[256];
    uint64_t pruned = 0;
    for (size_t r = 0; r < rows; r++) {
        float *w = W + r * cols;
        for (size_t j0 = 0; j0 < cols; j0 += (size_t)m) {
            for (int g = 0; g < m; g++) {
                size_t j = j0 + (size_t)g;
                s[g] = fabs((double)w[j]) * (scale ? scale[j] : 1.0);
            }
            spx_prune_nm_group(s, m, n, keep);
            for (int g = 0; g < m; g++)
                if (!keep[g]) {
                    w[j0 + (size_t)g] = 0.0f;
                    pruned++;
                }
        }
    }
    return pruned;
}

static void fill_report(spx_prune_report *rep, const float *W, size_t rows, size_t cols,
                        uint64_t pruned)
{
    if (!rep)
        return;
    memset(rep, 0, sizeof *rep);
    spx_prune_report_count(rep, W, rows, cols);
    rep->pruned = pruned;
}

int spx_wanda_prune(spx_ctx *ctx, float *W, size_t rows, size_t cols, const double *colsq,
                    const spx_prune_opts *o, spx_prune_report *rep)
{
    int rc = 0;
    double *scale = NULL;
    spx_prune_pair *p = NULL;
    uint64_t pruned = 0;

    SPX_TRY(rc, spx_prune_opts_check(ctx, o, cols, 0));
    SPX_TRY(rc, check_w(ctx, W, rows, cols, "wanda"));
    if (!colsq)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "wanda: NULL input norms");
    scale = malloc(cols * sizeof *scale);
    if (!scale)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "wanda: out of memory");
    for (size_t j = 0; j < cols; j++) {
        if (!(colsq[j] >= 0.0) || !isfinite(colsq[j]))
            SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "wanda: input norm of feature %zu is %g", j, colsq[j]);
        scale[j] = sqrt(colsq[j]);
    }
    if (o->nm_m) {
        pruned = prune_nm(W, rows, cols, scale, o->nm_n, o->nm_m);
    } else {
        size_t k = (size_t)floor((double)cols * o->sparsity);
        if (k > cols)
            k = cols;
        if (k > 0) {
            p = malloc(cols * sizeof *p);
            if (!p)
                SPX_FAIL(ctx, rc, SPX_E_NOMEM, "wanda: out of memory");
            for (size_t r = 0; r < rows; r++) {
                float *w = W + r * cols;
                for (size_t j = 0; j < cols; j++) {
                    p[j].s = fabs((double)w[j]) * scale[j];
                    p[j].i = (uint32_t)j;
                }
                spx_prune_select_pairs(p, cols, k);
                for (size_t q = 0; q < k; q++)
                    w[p[q].i] = 0.0f;
                pruned += k;
            }
        }
    }
    fill_report(rep, W, rows, cols, pruned);
done:
    free(scale);
    free(p);
    return rc;
}

int spx_magnitude_prune(spx_ctx *ctx, float *W, size_t rows, size_t cols, const spx_prune_opts *o,
                        spx_prune_report *rep)
{
    int rc = 0;
    float *a = NULL;
    uint64_t pruned = 0;

    SPX_TRY(rc, spx_prune_opts_check(ctx, o, cols, 0));
    SPX_TRY(rc, check_w(ctx, W, rows, cols, "magnitude"));
    if (o->nm_m) {
        pruned = prune_nm(W, rows, cols, NULL, o->nm_n, o->nm_m);
    } else if (o->sparsity > 0.0) {
        size_t n = rows * cols, k = (size_t)floor((double)n * o->sparsity);
        if (k >= n)
            k = n - 1;
        a = spx_prune_alloc_big(n * sizeof *a);
        if (!a)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "magnitude: cannot allocate %zu bytes", n * sizeof *a);
        for (size_t q = 0; q < n; q++)
            a[q] = fabsf(W[q]);
        float thresh = spx_prune_kth_float(a, n, k);
        for (size_t q = 0; q < n; q++)
            if (fabsf(W[q]) <= thresh) {
                W[q] = 0.0f;
                pruned++;
            }
    }
    fill_report(rep, W, rows, cols, pruned);
done:
    free(a);
    return rc;
}
