/* test_prune_wanda.c: Wanda and magnitude pruning against naive sort-based references (exact
 * masks: both sides compute the same double scores, so no tolerance is involved), plus the
 * selection helpers against qsort. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_prune_select.h"
#include "spx_test.h"
#include "spx_wanda.h"

typedef struct { double s; size_t i; } sc_t;

static int cmp_sc(const void *a, const void *b)
{
    const sc_t *x = a, *y = b;
    if (x->s != y->s)
        return (x->s > y->s) - (x->s < y->s);
    return (x->i > y->i) - (x->i < y->i);
}

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* values with many exact ties: multiples of 1/8 */
static void gen(float *W, size_t n, uint64_t *rng, int ties)
{
    for (size_t i = 0; i < n; i++) {
        double v = spx_test_normal(rng);
        W[i] = (float)(ties ? floor(v * 8.0) / 8.0 + 1.0 / 16.0 : v);
    }
}

/* naive Wanda unstructured: stable sort of each row's scores, prune the first floor(cols*s) */
static void naive_wanda(float *W, size_t rows, size_t cols, const double *colsq, double s)
{
    sc_t *p = malloc(cols * sizeof *p);
    size_t k = (size_t)floor((double)cols * s);
    for (size_t r = 0; r < rows; r++) {
        for (size_t j = 0; j < cols; j++) {
            p[j].s = fabs((double)W[r * cols + j]) * sqrt(colsq[j]);
            p[j].i = j;
        }
        qsort(p, cols, sizeof *p, cmp_sc);
        for (size_t q = 0; q < k; q++)
            W[r * cols + p[q].i] = 0.0f;
    }
    free(p);
}

/* naive N:M: sort each group by (score, index), prune the first m - n */
static void naive_nm(float *W, size_t rows, size_t cols, const double *colsq, int n, int m)
{
    sc_t p[64];
    for (size_t r = 0; r < rows; r++)
        for (size_t g = 0; g < cols; g += (size_t)m) {
            for (size_t l = 0; l < (size_t)m; l++) {
                p[l].s = fabs((double)W[r * cols + g + l]) * (colsq ? sqrt(colsq[g + l]) : 1.0);
                p[l].i = g + l;
            }
            qsort(p, (size_t)m, sizeof *p, cmp_sc);
            for (int q = 0; q < m - n; q++)
                W[r * cols + p[q].i] = 0.0f;
        }
}

static void check_wanda(size_t rows, size_t cols, double s, int n, int m, int ties, uint64_t seed)
{
    spx_ctx ctx = SPX_CTX_INIT;
    uint64_t rng = seed;
    float *W = malloc(rows * cols * sizeof(float)), *R = malloc(rows * cols * sizeof(float));
    double *colsq = malloc(cols * sizeof(double));
    spx_prune_opts o = SPX_PRUNE_OPTS_INIT;
    spx_prune_report rep;
    gen(W, rows * cols, &rng, ties);
    for (size_t j = 0; j < cols; j++)   /* ties: equal norms make equal |W| tie exactly */
        colsq[j] = ties ? 4.0 : exp(spx_test_normal(&rng));
    memcpy(R, W, rows * cols * sizeof(float));
    o.sparsity = s;
    o.nm_n = n;
    o.nm_m = m;
    CHECK_RC(spx_wanda_prune(&ctx, W, rows, cols, colsq, &o, &rep), 0);
    if (m)
        naive_nm(R, rows, cols, colsq, n, m);
    else
        naive_wanda(R, rows, cols, colsq, s);
    CHECK_MSG(memcmp(W, R, rows * cols * sizeof(float)) == 0,
              "wanda %zux%zu s %g %d:%d ties %d differs from the naive reference", rows, cols, s, n, m, ties);
    size_t want = m ? cols / (size_t)m * (size_t)(m - n) : (size_t)floor((double)cols * s), bad = 0;
    for (size_t r = 0; r < rows; r++) {   /* exact count per row (W has no zeros to start with) */
        size_t z = 0;
        for (size_t j = 0; j < cols; j++)
            z += W[r * cols + j] == 0.0f;
        bad += z != want;
    }
    CHECK_MSG(bad == 0, "wanda: %zu rows without exactly %zu zeros", bad, want);
    CHECK(rep.pruned == rows * want && rep.zeros == rows * want);
    free(W);
    free(R);
    free(colsq);
}

static void check_magnitude(size_t rows, size_t cols, double s, int n, int m, int ties, uint64_t seed)
{
    spx_ctx ctx = SPX_CTX_INIT;
    uint64_t rng = seed;
    size_t N = rows * cols;
    float *W = malloc(N * sizeof(float)), *R = malloc(N * sizeof(float)), *a = malloc(N * sizeof(float));
    spx_prune_opts o = SPX_PRUNE_OPTS_INIT;
    spx_prune_report rep;
    gen(W, N, &rng, ties);
    memcpy(R, W, N * sizeof(float));
    o.sparsity = s;
    o.nm_n = n;
    o.nm_m = m;
    CHECK_RC(spx_magnitude_prune(&ctx, W, rows, cols, &o, &rep), 0);
    if (m) {
        naive_nm(R, rows, cols, NULL, n, m);
    } else {   /* the reference: thresh = sort(|W|)[int(numel * s)], prune |W| <= thresh */
        for (size_t i = 0; i < N; i++)
            a[i] = fabsf(R[i]);
        qsort(a, N, sizeof *a, cmp_f);
        float th = a[(size_t)floor((double)N * s)];
        for (size_t i = 0; i < N; i++)
            if (fabsf(R[i]) <= th)
                R[i] = 0.0f;
    }
    CHECK_MSG(memcmp(W, R, N * sizeof(float)) == 0, "magnitude s %g %d:%d ties %d differs", s, n, m, ties);
    if (!m)
        CHECK(rep.pruned >= (uint64_t)floor((double)N * s) + 1);   /* `<=` takes the tie at the threshold too */
    free(W);
    free(R);
    free(a);
}

static void check_select(void)
{
    uint64_t rng = 99;
    for (size_t n = 1; n < 3000; n = n * 3 + 1) {
        float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
        spx_prune_pair *p = malloc(n * sizeof *p);
        for (int dup = 0; dup < 3; dup++) {
            for (size_t i = 0; i < n; i++) {
                double v = spx_test_normal(&rng);
                a[i] = (float)(dup == 0 ? v : dup == 1 ? floor(v * 2) : 1.0);   /* none / many / all equal */
            }
            memcpy(b, a, n * sizeof(float));
            qsort(b, n, sizeof(float), cmp_f);
            for (size_t k = 0; k < n; k += 1 + n / 7) {
                float *c = malloc(n * sizeof(float));
                memcpy(c, a, n * sizeof(float));
                CHECK(spx_prune_kth_float(c, n, k) == b[k]);
                free(c);
                for (size_t i = 0; i < n; i++) {
                    p[i].s = (double)a[i];
                    p[i].i = (uint32_t)(n - 1 - i);   /* index order opposite to position */
                }
                spx_prune_select_pairs(p, n, k);
                /* p[0..k) must be the k smallest by (s, i): every one <= every later one */
                size_t bad = 0;
                for (size_t x = 0; x < k; x++)
                    for (size_t y = k; y < n; y += 1 + n / 50)
                        bad += p[y].s < p[x].s || (p[y].s == p[x].s && p[y].i < p[x].i);
                CHECK_MSG(bad == 0, "select_pairs n %zu k %zu dup %d", n, k, dup);
            }
        }
        free(a);
        free(b);
        free(p);
    }
    /* adversarial input for a naive pivot: sorted, reversed, organ pipe */
    size_t n = 100000;
    float *a = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        a[i] = (float)(i < n / 2 ? i : n - i);
    CHECK(spx_prune_kth_float(a, n, n / 2) == (float)(n / 4));
    free(a);
    double s[8] = {3, 1, 1, 2, 0, 5, 1, 4};
    uint8_t keep[8];
    spx_prune_nm_group(s, 8, 4, keep);   /* prune 0(idx4), 1(idx1), 1(idx2), 1(idx6) */
    CHECK(keep[0] && !keep[1] && !keep[2] && keep[3] && !keep[4] && keep[5] && !keep[6] && keep[7]);
}

static void check_args(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    float W[4 * 8] = {0};
    double cq[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    spx_prune_opts o = SPX_PRUNE_OPTS_INIT;
    CHECK_RC(spx_wanda_prune(&ctx, W, 4, 8, NULL, &o, NULL), SPX_E_ARG);
    cq[3] = -1;
    CHECK_RC(spx_wanda_prune(&ctx, W, 4, 8, cq, &o, NULL), SPX_E_NUMERIC);
    cq[3] = NAN;
    CHECK_RC(spx_wanda_prune(&ctx, W, 4, 8, cq, &o, NULL), SPX_E_NUMERIC);
    cq[3] = 1;
    W[9] = INFINITY;
    CHECK_RC(spx_magnitude_prune(&ctx, W, 4, 8, &o, NULL), SPX_E_NUMERIC);
    CHECK(W[9] == INFINITY);   /* untouched */
    W[9] = 0;
    o.sparsity = -0.1;
    CHECK_RC(spx_magnitude_prune(&ctx, W, 4, 8, &o, NULL), SPX_E_ARG);
    o.sparsity = 0.5;
    o.nm_n = 3;   /* N without M */
    CHECK_RC(spx_wanda_prune(&ctx, W, 4, 8, cq, &o, NULL), SPX_E_ARG);
    o.nm_m = 3;   /* 8 % 3 */
    o.nm_n = 1;
    CHECK_RC(spx_wanda_prune(&ctx, W, 4, 8, cq, &o, NULL), SPX_E_ARG);
    CHECK_RC(spx_magnitude_prune(&ctx, W, 0, 8, &o, NULL), SPX_E_ARG);
    /* sparsity 0 leaves the layer untouched */
    o = (spx_prune_opts)SPX_PRUNE_OPTS_INIT;
    o.sparsity = 0.0;
    for (int i = 0; i < 32; i++)
        W[i] = (float)(i + 1);
    CHECK_RC(spx_magnitude_prune(&ctx, W, 4, 8, &o, NULL), 0);
    CHECK_RC(spx_wanda_prune(&ctx, W, 4, 8, cq, &o, NULL), 0);
    CHECK(W[0] == 1.0f && W[31] == 32.0f);
}

int spx_test_main(void)
{
    check_select();
    check_wanda(13, 96, 0.5, 0, 0, 0, 1);
    check_wanda(13, 96, 0.7, 0, 0, 1, 2);
    check_wanda(5, 1000, 0.333, 0, 0, 0, 3);
    check_wanda(13, 96, 0, 2, 4, 0, 4);
    check_wanda(13, 96, 0, 4, 8, 1, 5);
    check_wanda(3, 64, 0, 1, 16, 1, 6);
    check_magnitude(17, 64, 0.5, 0, 0, 0, 7);
    check_magnitude(17, 64, 0.5, 0, 0, 1, 8);
    check_magnitude(17, 64, 0.9, 0, 0, 1, 9);
    check_magnitude(17, 64, 0, 2, 4, 1, 10);
    check_magnitude(17, 64, 0, 4, 8, 0, 11);
    check_args();
    return 0;
}
