/* spx_balanced.c: balanced k-means (greedy-regret + pairwise-exchange assignment). See spx_balanced.h. */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_balanced.h"
#include "spx_ckd.h"
#include "spx_kmeans_core.h"

#define SPX_BAL_MAX_SWEEPS 100u

typedef struct bal_key {
    double key;
    uint32_t idx;    /* point index */
    uint32_t slot;   /* position in its cluster's member list */
} bal_key;

/* key descending, then point index ascending: a total order, so qsort is deterministic */
static int cmp_key_desc(const void *x, const void *y)
{
    const bal_key *p = x, *q = y;
    if (p->key > q->key)
        return -1;
    if (p->key < q->key)
        return 1;
    return (p->idx > q->idx) - (p->idx < q->idx);
}

typedef struct bal_work {
    const float *X;   /* [n x d] rows being clustered */
    size_t n;
    uint32_t d, k;
    size_t s;         /* cluster size n / k */
    double *D;        /* [n x k] ||c_j||^2 - 2 x_i.c_j */
    float *G;         /* [SPX_KM_CHUNK x k] */
    double *cn;       /* [k] */
    uint32_t *lab;    /* [n] */
    uint32_t *prev;   /* [n] */
    uint32_t *mem;    /* [k x s] member lists */
    bal_key *ka;      /* [max(n, s)] scratch */
    bal_key *kb;      /* [s] scratch */
    double *sums;     /* [k x d] */
} bal_work;

static void compute_D(bal_work *w, const float *C)
{
    uint32_t k = w->k, d = w->d;
    spx_km_row_norms(C, k, d, w->cn);
    for (size_t r0 = 0; r0 < w->n; r0 += SPX_KM_CHUNK) {
        size_t m = w->n - r0 < SPX_KM_CHUNK ? w->n - r0 : SPX_KM_CHUNK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)k, (int)d, 1.0f, w->X + r0 * d,
                    (int)d, C, (int)d, 0.0f, w->G, (int)k);
        for (size_t i = 0; i < m; i++)
            for (uint32_t j = 0; j < k; j++)
                w->D[(r0 + i) * k + j] = w->cn[j] - 2.0 * (double)w->G[i * k + j];
    }
}

/* Greedy by regret: largest (second best - best) first, each to its nearest non-full cluster. */
static void greedy_assign(bal_work *w)
{
    uint32_t k = w->k;
    uint64_t *fill = (uint64_t *)w->sums; /* k counters; sums is recomputed afterwards */
    for (size_t i = 0; i < w->n; i++) {
        const double *Di = w->D + i * k;
        double b1 = INFINITY, b2 = INFINITY;
        for (uint32_t j = 0; j < k; j++) {
            if (Di[j] < b1) {
                b2 = b1;
                b1 = Di[j];
            } else if (Di[j] < b2) {
                b2 = Di[j];
            }
        }
        w->ka[i].key = k > 1 ? b2 - b1 : 0.0;
        w->ka[i].idx = (uint32_t)i;
        w->ka[i].slot = 0;
    }
    qsort(w->ka, w->n, sizeof(bal_key), cmp_key_desc);
    memset(fill, 0, (size_t)k * sizeof(uint64_t));
    for (size_t r = 0; r < w->n; r++) {
        uint32_t i = w->ka[r].idx, best = UINT32_MAX;
        const double *Di = w->D + (size_t)i * k;
        for (uint32_t j = 0; j < k; j++)
            if (fill[j] < w->s && (best == UINT32_MAX || Di[j] < Di[best]))
                best = j;
        w->lab[i] = best;
        fill[best]++;
    }
}

static void build_members(bal_work *w)
{
    uint64_t *fill = (uint64_t *)w->sums;
    memset(fill, 0, (size_t)w->k * sizeof(uint64_t));
    for (size_t i = 0; i < w->n; i++) {
        uint32_t j = w->lab[i];
        w->mem[(size_t)j * w->s + fill[j]++] = (uint32_t)i;
    }
}

/* Optimal exchange between clusters a and b; returns the number of swaps. */
static size_t exchange_pair(bal_work *w, uint32_t a, uint32_t b)
{
    uint32_t k = w->k;
    size_t s = w->s, swaps = 0;
    uint32_t *ma = w->mem + (size_t)a * s, *mb = w->mem + (size_t)b * s;
    double maxa = -INFINITY, maxb = -INFINITY;
    for (size_t t = 0; t < s; t++) {
        const double *Da = w->D + (size_t)ma[t] * k, *Db = w->D + (size_t)mb[t] * k;
        w->ka[t] = (bal_key){Da[a] - Da[b], ma[t], (uint32_t)t};
        w->kb[t] = (bal_key){Db[b] - Db[a], mb[t], (uint32_t)t};
        if (w->ka[t].key > maxa)
            maxa = w->ka[t].key;
        if (w->kb[t].key > maxb)
            maxb = w->kb[t].key;
    }
    if (!(maxa + maxb > 0.0))
        return 0;
    qsort(w->ka, s, sizeof(bal_key), cmp_key_desc);
    qsort(w->kb, s, sizeof(bal_key), cmp_key_desc);
    for (size_t t = 0; t < s && w->ka[t].key + w->kb[t].key > 0.0; t++) {
        uint32_t i = w->ka[t].idx, j = w->kb[t].idx;
        w->lab[i] = b;
        w->lab[j] = a;
        ma[w->ka[t].slot] = j;
        mb[w->kb[t].slot] = i;
        swaps++;
    }
    return swaps;
}

static void exchange_sweeps(bal_work *w)
{
    build_members(w);
    for (uint32_t sweep = 0; sweep < SPX_BAL_MAX_SWEEPS; sweep++) {
        size_t swaps = 0;
        for (uint32_t a = 0; a < w->k; a++)
            for (uint32_t b = a + 1; b < w->k; b++)
                swaps += exchange_pair(w, a, b);
        if (swaps == 0)
            break;
    }
}

static void update_centers(bal_work *w, float *C)
{
    uint32_t d = w->d;
    size_t kd = (size_t)w->k * d;
    memset(w->sums, 0, kd * sizeof(double));
    for (size_t i = 0; i < w->n; i++) {
        double *sj = w->sums + (size_t)w->lab[i] * d;
        for (uint32_t t = 0; t < d; t++)
            sj[t] += (double)w->X[i * d + t];
    }
    for (size_t o = 0; o < kd; o++)
        C[o] = (float)(w->sums[o] / (double)w->s);
}

int spx_balanced_fit(const float *X, size_t n, uint32_t d, const spx_balanced_opts *opts,
                     spx_kmeans_result **out, spx_ctx *ctx)
{
    int rc = 0;
    bal_work w;
    spx_kmeans_result *res = NULL;
    float *Xn = NULL, *C = NULL, *init = NULL;
    double *xn = NULL;
    size_t tmp;
    memset(&w, 0, sizeof w);
    if (out)
        *out = NULL;
    if (!X || !opts || !out || d == 0 || opts->k == 0 || n == 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "balanced k-means: invalid arguments (n=%zu, d=%u, k=%u)", n, d,
                 opts ? opts->k : 0u);
    uint32_t k = opts->k;
    if (n % k != 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "balanced k-means: %zu points cannot be split into %u equal clusters",
                 n, k);
    if (d > INT_MAX || k > INT_MAX || n > UINT32_MAX)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "balanced k-means: sizes out of range (n=%zu, d=%u, k=%u)", n, d, k);
    if (spx_ckd_mul3_size(n, k, sizeof(double), &tmp) != 0 || spx_ckd_mul3_size(n, d, sizeof(float), &tmp) != 0)
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "balanced k-means: size overflow (n=%zu, d=%u, k=%u)", n, d, k);
    for (size_t i = 0; i < n * d; i++)
        if (!isfinite(X[i]))
            SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "balanced k-means: input row %zu column %zu is %s", i / d,
                     i % d, isnan(X[i]) ? "NaN" : "Inf");
    size_t kd = (size_t)k * d;
    w.n = n;
    w.d = d;
    w.k = k;
    w.s = n / k;
    res = calloc(1, sizeof *res);
    C = malloc(kd * sizeof(float));
    init = malloc(kd * sizeof(float));
    xn = malloc(n * sizeof(double));
    w.D = malloc(n * k * sizeof(double));
    w.G = malloc((size_t)SPX_KM_CHUNK * k * sizeof(float));
    w.cn = malloc((size_t)k * sizeof(double));
    w.lab = malloc(n * sizeof(uint32_t));
    w.prev = malloc(n * sizeof(uint32_t));
    w.mem = malloc(n * sizeof(uint32_t));
    w.ka = malloc(n * sizeof(bal_key));
    w.kb = malloc(w.s * sizeof(bal_key));
    w.sums = malloc((kd > k ? kd : k) * sizeof(double));
    if (!res || !C || !init || !xn || !w.D || !w.G || !w.cn || !w.lab || !w.prev || !w.mem || !w.ka ||
        !w.kb || !w.sums)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "balanced k-means: out of memory (n=%zu, d=%u, k=%u)", n, d, k);
    res->k = k;
    res->d = d;
    res->n = n;
    res->n_fit = n;
    res->centroids = malloc(kd * sizeof(float));
    res->init_centers = malloc(kd * sizeof(float));
    res->labels = malloc(n * sizeof(uint32_t));
    res->sizes = calloc(k, sizeof(uint64_t));
    if (!res->centroids || !res->init_centers || !res->labels || !res->sizes)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "balanced k-means: out of memory");
    if (opts->normalize) {
        Xn = malloc(n * d * sizeof(float));
        if (!Xn)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "balanced k-means: out of memory for normalized rows");
        for (size_t i = 0; i < n; i++) {
            double nn = 0.0;
            for (uint32_t t = 0; t < d; t++)
                nn += (double)X[i * d + t] * (double)X[i * d + t];
            double inv = nn > 0.0 ? 1.0 / sqrt(nn) : 0.0;
            for (uint32_t t = 0; t < d; t++)
                Xn[i * d + t] = (float)((double)X[i * d + t] * inv);
        }
    }
    w.X = Xn ? Xn : X;
    spx_km_row_norms(w.X, n, d, xn);
    uint32_t n_init = opts->n_init ? opts->n_init : 1u;
    uint32_t max_iter = opts->max_iter ? opts->max_iter : 1u;
    double best = INFINITY;
    for (uint32_t r = 0; r < n_init; r++) {
        if (spx_km_init_pp(w.X, xn, n, d, k, spx_kmeans_restart_seed(opts->seed, r), C) < 0)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "balanced k-means: out of memory in k-means++");
        memcpy(init, C, kd * sizeof(float));
        uint32_t it = 0;
        int conv = 0;
        for (it = 0; it < max_iter; it++) {
            compute_D(&w, C);
            if (it == 0)
                greedy_assign(&w);
            else
                memcpy(w.prev, w.lab, n * sizeof(uint32_t));
            exchange_sweeps(&w);
            if (it > 0 && memcmp(w.prev, w.lab, n * sizeof(uint32_t)) == 0) {
                conv = 1; /* C already equals the means of these labels */
                it++;
                break;
            }
            update_centers(&w, C);
        }
        double inert = 0.0;
        for (size_t i = 0; i < n; i++)
            inert += spx_kmeans_dist2(w.X + i * d, C + (size_t)w.lab[i] * d, d);
        if (inert < best) {
            best = inert;
            memcpy(res->centroids, C, kd * sizeof(float));
            memcpy(res->init_centers, init, kd * sizeof(float));
            memcpy(res->labels, w.lab, n * sizeof(uint32_t));
            res->inertia = res->fit_inertia = inert;
            res->n_iter = it;
            res->best_init = r;
            res->converged = conv;
        }
    }
    for (size_t i = 0; i < n; i++)
        res->sizes[res->labels[i]]++;
    res->min_size = w.s;
    for (uint32_t j = 0; j < k; j++)
        if (res->sizes[j] != w.s)
            SPX_FAIL(ctx, rc, SPX_E_INTERNAL, "balanced k-means: cluster %u has %llu points, want %zu", j,
                     (unsigned long long)res->sizes[j], w.s);
    *out = res;
    res = NULL;
done:
    spx_kmeans_free(res);
    free(Xn);
    free(C);
    free(init);
    free(xn);
    free(w.D);
    free(w.G);
    free(w.cn);
    free(w.lab);
    free(w.prev);
    free(w.mem);
    free(w.ka);
    free(w.kb);
    free(w.sums);
    return rc;
}
