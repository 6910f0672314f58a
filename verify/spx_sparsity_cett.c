/* spx_sparsity_cett.c: CETT of a threshold on one layer and the per-layer threshold search
 * (Sparsing Law; definitions in spx_sparsity.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_sparsity.h"

static int cmp_double(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

/* NumPy's default percentile ('linear'): virtual index q (M-1), lerp as numpy's _lerp does
 * (from the upper value when the fraction is >= 0.5) so both agree to the last bit. */
static double percentile_sorted(const double *v, size_t m, double q)
{
    double vi = (double)(m - 1) * q, t, lo, hi, d;
    size_t i = (size_t)floor(vi);
    if (i >= m - 1)
        return v[m - 1];
    t = vi - (double)i;
    lo = v[i];
    hi = v[i + 1];
    d = hi - lo;
    return t >= 0.5 ? hi - d * (1.0 - t) : lo + d * t;
}

int spx_cett_layer_init(spx_ctx *ctx, const float *a, size_t n, const float *down, uint32_t dim, uint32_t ffn,
                        spx_cett_layer *L)
{
    int rc = 0;
    size_t na, nd, bytes;
    double *nv = NULL;
    memset(L, 0, sizeof *L);
    if (n == 0 || dim == 0 || ffn == 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "cett: empty layer data (%zu tokens, dim %u, ffn %u)", n, dim, ffn);
    if (spx_ckd_mul_size(n, ffn, &na) || spx_ckd_mul_size(na, sizeof(double), &bytes) ||
        spx_ckd_mul_size(dim, ffn, &nd) || spx_ckd_mul_size(nd, sizeof(float), &bytes))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "cett: %zu tokens x %u neurons overflows", n, ffn);
    L->dim = dim;
    L->ffn = ffn;
    L->n = n;
    L->a = a;
    L->down_t = malloc(nd * sizeof(float));
    L->col_norm = calloc(ffn, sizeof(double));
    L->y_norm = calloc(n, sizeof(double));
    L->memo = malloc(SPX_CETT_CANDIDATES * sizeof(double));
    L->work = calloc(dim, sizeof(double));
    nv = malloc(na * sizeof(double));
    if (!L->down_t || !L->col_norm || !L->y_norm || !L->memo || !L->work || !nv)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "cett: out of memory (%zu tokens x %u neurons)", n, ffn);
    for (size_t r = 0; r < dim; r++) {
        for (size_t j = 0; j < ffn; j++) {
            float w = down[r * ffn + j];
            if (!isfinite(w))
                SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "cett: non-finite ffn_down weight at row %zu, column %zu", r, j);
            L->down_t[j * dim + r] = w;
            L->col_norm[j] += (double)w * (double)w;
        }
    }
    for (size_t j = 0; j < ffn; j++)
        L->col_norm[j] = sqrt(L->col_norm[j]);
    for (size_t i = 0; i < n; i++) {
        const float *ai = a + i * ffn;
        double s = 0.0;
        memset(L->work, 0, dim * sizeof(double));
        for (size_t j = 0; j < ffn; j++) {
            const float *dj = L->down_t + j * dim;
            double v = (double)ai[j];
            if (!isfinite(ai[j]))
                SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "cett: non-finite activation at token %zu, neuron %zu", i, j);
            nv[i * ffn + j] = fabs(v) * L->col_norm[j];
            if (v != 0.0)
                for (size_t r = 0; r < dim; r++)
                    L->work[r] += v * (double)dj[r];
        }
        for (size_t r = 0; r < dim; r++)
            s += L->work[r] * L->work[r];
        L->y_norm[i] = sqrt(s);
    }
    qsort(nv, na, sizeof(double), cmp_double);
    L->n_min = nv[0];
    L->n_p99 = percentile_sorted(nv, na, 0.99);
    for (size_t k = 0; k < SPX_CETT_CANDIDATES; k++)
        L->memo[k] = NAN;
done:
    free(nv);
    if (rc < 0)
        spx_cett_layer_release(L);
    return rc;
}

void spx_cett_layer_release(spx_cett_layer *L)
{
    if (!L)
        return;
    free(L->down_t);
    free(L->col_norm);
    free(L->y_norm);
    free(L->memo);
    free(L->work);
    memset(L, 0, sizeof *L);
}

double spx_cett_candidate(const spx_cett_layer *L, uint32_t k)
{
    return L->n_min + (L->n_p99 - L->n_min) * (double)k / (double)(SPX_CETT_CANDIDATES - 1);
}

double spx_cett_eval(spx_cett_layer *L, double T)
{
    double total = 0.0;
    const size_t dim = L->dim, ffn = L->ffn;
    for (size_t i = 0; i < L->n; i++) {
        const float *ai = L->a + i * ffn;
        double s = 0.0;
        int any = 0;
        if (L->y_norm[i] == 0.0)
            continue;   /* nothing to lose: contributes 0 */
        memset(L->work, 0, dim * sizeof(double));
        for (size_t j = 0; j < ffn; j++) {
            double v = (double)ai[j];
            if (v != 0.0 && fabs(v) * L->col_norm[j] <= T) {
                const float *dj = L->down_t + j * dim;
                for (size_t r = 0; r < dim; r++)
                    L->work[r] += v * (double)dj[r];
                any = 1;
            }
        }
        if (!any)
            continue;
        for (size_t r = 0; r < dim; r++)
            s += L->work[r] * L->work[r];
        total += sqrt(s) / L->y_norm[i];
    }
    return total / (double)L->n;
}

static double memo_eval(spx_cett_layer *L, uint32_t k)
{
    if (isnan(L->memo[k]))
        L->memo[k] = spx_cett_eval(L, spx_cett_candidate(L, k));
    return L->memo[k];
}

double spx_cett_threshold(spx_cett_layer *L, double c, int64_t *k_out, double *cett_out)
{
    int64_t lo = 0, hi = (int64_t)SPX_CETT_CANDIDATES - 1, best = -1;
    double best_cett = 0.0;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        double v = memo_eval(L, (uint32_t)mid);
        if (v <= c) {
            best = mid;
            best_cett = v;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    if (k_out)
        *k_out = best;
    if (cett_out)
        *cett_out = best_cett;
    return best < 0 ? -1.0 : spx_cett_candidate(L, (uint32_t)best);
}
