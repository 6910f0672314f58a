/* spx_cluster_metrics.c: ARI and purity from a sparse contingency table. */
#include <stdlib.h>

#include "spx_cluster_metrics.h"

/* (a, b) pairs as one 64-bit key: sorting groups equal a, then equal b within a. */
static int cmp_u64(const void *x, const void *y)
{
    uint64_t p = *(const uint64_t *)x, q = *(const uint64_t *)y;
    return (p > q) - (p < q);
}

static uint64_t *sorted_pairs(const uint32_t *a, const uint32_t *b, size_t n)
{
    uint64_t *k = malloc(n * sizeof(uint64_t));
    if (!k)
        return NULL;
    for (size_t i = 0; i < n; i++)
        k[i] = ((uint64_t)a[i] << 32) | b[i];
    qsort(k, n, sizeof(uint64_t), cmp_u64);
    return k;
}

static double comb2(uint64_t m)
{
    return (double)m * ((double)m - 1.0) * 0.5;
}

/* sum over distinct values v of C(count(v), 2), for the high (shift 32) or low half of keys
 * sorted by that half. */
static double sum_comb_runs(const uint64_t *k, size_t n, int shift, uint64_t mask)
{
    double s = 0.0;
    size_t run = 1;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && ((k[i] >> shift) & mask) == ((k[i - 1] >> shift) & mask)) {
            run++;
        } else {
            s += comb2(run);
            run = 1;
        }
    }
    return s;
}

int spx_cluster_ari(const uint32_t *a, const uint32_t *b, size_t n, double *ari, spx_ctx *ctx)
{
    int rc = 0;
    uint64_t *ab = NULL, *ba = NULL;
    if (!a || !b || !ari || n == 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "ari: empty labelings or NULL argument (n=%zu)", n);
    ab = sorted_pairs(a, b, n);
    ba = sorted_pairs(b, a, n);
    if (!ab || !ba)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "ari: out of memory for %zu label pairs", n);
    double sum_ij = sum_comb_runs(ab, n, 0, UINT64_MAX);   /* runs of equal (a, b) */
    double sum_a = sum_comb_runs(ab, n, 32, 0xFFFFFFFFu);  /* runs of equal a */
    double sum_b = sum_comb_runs(ba, n, 32, 0xFFFFFFFFu);  /* runs of equal b */
    double expected = n > 1 ? sum_a * sum_b / comb2(n) : 0.0;
    double maxi = 0.5 * (sum_a + sum_b);
    double den = maxi - expected;
    *ari = den == 0.0 ? 1.0 : (sum_ij - expected) / den;
done:
    free(ab);
    free(ba);
    return rc;
}

int spx_cluster_purity(const uint32_t *pred, const uint32_t *truth, size_t n, double *purity,
                       spx_ctx *ctx)
{
    int rc = 0;
    uint64_t *k = NULL;
    if (!pred || !truth || !purity || n == 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "purity: empty labelings or NULL argument (n=%zu)", n);
    k = sorted_pairs(pred, truth, n);
    if (!k)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "purity: out of memory for %zu label pairs", n);
    /* within each pred run, the longest run of equal (pred, truth) */
    uint64_t total = 0, best = 0, run = 1;
    for (size_t i = 1; i <= n; i++) {
        if (i < n && k[i] == k[i - 1]) {
            run++;
            continue;
        }
        if (run > best)
            best = run;
        run = 1;
        if (i == n || (k[i] >> 32) != (k[i - 1] >> 32)) {
            total += best;
            best = 0;
        }
    }
    *purity = (double)total / (double)n;
done:
    free(k);
    return rc;
}
