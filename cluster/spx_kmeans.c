/* spx_kmeans.c: k-means fit (restarts, Lloyd iterations, empty-cluster re-seeding, subsampled
 * fitting). The assignment rule and k-means++ live in spx_kmeans_init.c. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_kmeans.h"
#include "spx_kmeans_core.h"

/* Scratch of one fit; arrays sized for the m fitting points X [m x d] and k clusters. */
typedef struct km_work {
    const float *X;     /* [m x d] fitting points */
    const double *xn;   /* [m] ||x||^2 */
    size_t m;
    uint32_t d, k;
    float *G;           /* [SPX_KM_CHUNK x k] sgemm block */
    double *fe;         /* [2k] */
    double *cn;         /* [k] ||c||^2 */
    double *sums;       /* [k x d] per-cluster coordinate sums */
    uint64_t *counts;   /* [k] */
    uint32_t *lab;      /* [m] current labels */
    uint32_t *lab_new;  /* [m] */
    double *far;        /* [m] distance to own center, only for re-seeding */
    float *cnew;        /* [k x d] */
} km_work;

/* Move the farthest points into empty clusters (sklearn's _relocate_empty_clusters, with the
 * guard that a donor cluster keeps at least one point). centers are the centers the labels were
 * computed with. Returns the number of re-seeded clusters. */
static uint64_t relocate_empty(km_work *w, const float *centers)
{
    uint64_t moved = 0;
    uint32_t d = w->d;
    int have_far = 0;
    for (uint32_t j = 0; j < w->k; j++) {
        if (w->counts[j] != 0)
            continue;
        if (!have_far) {
            for (size_t i = 0; i < w->m; i++)
                w->far[i] = spx_kmeans_dist2(w->X + i * d, centers + (size_t)w->lab[i] * d, d);
            have_far = 1;
        }
        size_t p = SIZE_MAX;
        for (size_t i = 0; i < w->m; i++) {
            if (w->far[i] < 0.0 || w->counts[w->lab[i]] < 2)
                continue;
            if (p == SIZE_MAX || w->far[i] > w->far[p])
                p = i;
        }
        if (p == SIZE_MAX)
            continue; /* cannot happen when m >= k (pigeonhole); keep the old center */
        uint32_t old = w->lab[p];
        const float *x = w->X + p * d;
        for (uint32_t t = 0; t < d; t++) {
            w->sums[(size_t)old * d + t] -= (double)x[t];
            w->sums[(size_t)j * d + t] = (double)x[t];
        }
        w->counts[old]--;
        w->counts[j] = 1;
        w->lab[p] = j;
        w->far[p] = -1.0;
        moved++;
    }
    return moved;
}

/* One restart: Lloyd from `centers` (in/out [k x d]). */
static int lloyd(km_work *w, float *centers, double tol_abs, uint32_t max_iter, uint32_t *n_iter,
                 uint64_t *reseeds, int *converged)
{
    uint32_t d = w->d, k = w->k;
    size_t kd = (size_t)k * d;
    int rc = 0;
    *n_iter = 0;
    *reseeds = 0;
    *converged = 0;
    for (uint32_t it = 0; it < max_iter; it++) {
        spx_km_row_norms(centers, k, d, w->cn);
        rc = spx_km_assign_core(centers, w->cn, k, d, w->X, w->xn, w->m, w->lab_new, w->G, w->fe, NULL);
        if (rc < 0)
            return rc;
        int changed = it == 0 || memcmp(w->lab, w->lab_new, w->m * sizeof(uint32_t)) != 0;
        uint32_t *tmp = w->lab;
        w->lab = w->lab_new;
        w->lab_new = tmp;
        memset(w->sums, 0, kd * sizeof(double));
        memset(w->counts, 0, (size_t)k * sizeof(uint64_t));
        for (size_t i = 0; i < w->m; i++) {
            const float *x = w->X + i * d;
            double *s = w->sums + (size_t)w->lab[i] * d;
            for (uint32_t t = 0; t < d; t++)
                s[t] += (double)x[t];
            w->counts[w->lab[i]]++;
        }
        *reseeds += relocate_empty(w, centers);
        double shift = 0.0;
        for (uint32_t j = 0; j < k; j++) {
            for (uint32_t t = 0; t < d; t++) {
                size_t o = (size_t)j * d + t;
                float v = w->counts[j] ? (float)(w->sums[o] / (double)w->counts[j]) : centers[o];
                double dv = (double)v - (double)centers[o];
                shift += dv * dv;
                w->cnew[o] = v;
            }
        }
        memcpy(centers, w->cnew, kd * sizeof(float));
        *n_iter = it + 1;
        if (!changed || shift <= tol_abs) {
            *converged = 1;
            break;
        }
    }
    return 0;
}

void spx_kmeans_free(spx_kmeans_result *r)
{
    if (!r)
        return;
    free(r->centroids);
    free(r->init_centers);
    free(r->labels);
    free(r->sizes);
    free(r);
}

/* Deterministic subset of m of the n rows (partial Fisher-Yates, then sorted) copied to Xf. */
static int pick_subset(const float *X, size_t n, uint32_t d, size_t m, uint64_t seed, float *Xf)
{
    size_t *idx = malloc(n * sizeof(size_t));
    if (!idx)
        return SPX_E_NOMEM;
    spx_rng rng;
    spx_rng_seed(&rng, seed ^ 0x5AB5E7F1u);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    for (size_t i = 0; i < m; i++) {
        size_t j = i + (size_t)spx_rng_below(&rng, (uint64_t)(n - i));
        size_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    /* sort the chosen indices (insertion into a bitmap-free counting pass: mark then scan) */
    unsigned char *mark = calloc(n, 1);
    if (!mark) {
        free(idx);
        return SPX_E_NOMEM;
    }
    for (size_t i = 0; i < m; i++)
        mark[idx[i]] = 1;
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (mark[i])
            memcpy(Xf + (o++) * d, X + i * d, (size_t)d * sizeof(float));
    free(mark);
    free(idx);
    return 0;
}

/* sklearn's tolerance scale: mean over features of the (population) variance of X [m x d]. */
static double mean_variance(const float *X, size_t m, uint32_t d, double *acc /* [2d] */)
{
    double *mu = acc, *var = acc + d;
    memset(acc, 0, 2u * (size_t)d * sizeof(double));
    for (size_t i = 0; i < m; i++)
        for (uint32_t t = 0; t < d; t++)
            mu[t] += (double)X[i * d + t];
    for (uint32_t t = 0; t < d; t++)
        mu[t] /= (double)m;
    for (size_t i = 0; i < m; i++)
        for (uint32_t t = 0; t < d; t++) {
            double v = (double)X[i * d + t] - mu[t];
            var[t] += v * v;
        }
    double s = 0.0;
    for (uint32_t t = 0; t < d; t++)
        s += var[t] / (double)m;
    return s / (double)d;
}

static double inertia_of(const float *X, size_t n, uint32_t d, const float *C, const uint32_t *lab)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += spx_kmeans_dist2(X + i * d, C + (size_t)lab[i] * d, d);
    return s;
}

int spx_kmeans_fit(const float *X, size_t n, uint32_t d, const spx_kmeans_opts *opts,
                   spx_kmeans_result **out, spx_ctx *ctx)
{
    int rc = 0;
    km_work w;
    spx_kmeans_result *res = NULL;
    float *Xf = NULL, *cur = NULL, *init = NULL;
    double *xn = NULL;
    size_t nd, kd, m, bad;
    memset(&w, 0, sizeof w);
    if (out)
        *out = NULL;
    if (!X || !opts || !out || d == 0 || opts->k == 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "k-means: invalid arguments (NULL pointer, d=%u or k=%u is 0)", d,
                 opts ? opts->k : 0u);
    uint32_t k = opts->k;
    m = (opts->max_fit_points && opts->max_fit_points < n) ? opts->max_fit_points : n;
    if (n < k || m < k)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "k-means: %zu points (%zu used for fitting) for k=%u clusters", n, m, k);
    if (d > INT_MAX || k > INT_MAX || n > UINT32_MAX)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "k-means: sizes out of range (n=%zu, d=%u, k=%u)", n, d, k);
    if (spx_ckd_mul3_size(n, d, sizeof(double), &nd) != 0 || spx_ckd_mul3_size(k, d, sizeof(double), &kd) != 0)
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "k-means: size overflow (n=%zu, d=%u, k=%u)", n, d, k);
    for (size_t i = 0; i < n * d; i++)
        if (!isfinite(X[i]))
            SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "k-means: input row %zu column %zu is %s", i / d, i % d,
                     isnan(X[i]) ? "NaN" : "Inf");
    if (opts->init_centers)
        for (size_t i = 0; i < (size_t)k * d; i++)
            if (!isfinite(opts->init_centers[i]))
                SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "k-means: init_centers row %zu column %zu is not finite",
                         i / d, i % d);
    kd = (size_t)k * d;
    res = calloc(1, sizeof *res);
    if (!res)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "k-means: out of memory");
    res->k = k;
    res->d = d;
    res->n = n;
    res->n_fit = m;
    res->centroids = malloc(kd * sizeof(float));
    res->init_centers = malloc(kd * sizeof(float));
    res->labels = malloc(n * sizeof(uint32_t));
    res->sizes = calloc(k, sizeof(uint64_t));
    cur = malloc(kd * sizeof(float));
    init = malloc(kd * sizeof(float));
    xn = malloc(m * sizeof(double));
    w.G = malloc((size_t)SPX_KM_CHUNK * k * sizeof(float));
    w.fe = malloc(2u * (size_t)k * sizeof(double));
    w.cn = malloc((size_t)k * sizeof(double));
    w.sums = malloc((kd > 2u * (size_t)d ? kd : 2u * (size_t)d) * sizeof(double));
    w.counts = malloc((size_t)k * sizeof(uint64_t));
    w.lab = malloc(m * sizeof(uint32_t));
    w.lab_new = malloc(m * sizeof(uint32_t));
    w.far = malloc(m * sizeof(double));
    w.cnew = malloc(kd * sizeof(float));
    if (!res->centroids || !res->init_centers || !res->labels || !res->sizes || !cur || !init || !xn ||
        !w.G || !w.fe || !w.cn || !w.sums || !w.counts || !w.lab || !w.lab_new || !w.far || !w.cnew)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "k-means: out of memory (n=%zu, d=%u, k=%u)", n, d, k);
    if (m < n) {
        Xf = malloc(m * d * sizeof(float));
        if (!Xf)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "k-means: out of memory for %zu fitting points", m);
        if (pick_subset(X, n, d, m, opts->seed, Xf) < 0)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "k-means: out of memory choosing the fitting subset");
    }
    w.X = Xf ? Xf : X;
    w.m = m;
    w.d = d;
    w.k = k;
    bad = spx_km_row_norms(w.X, m, d, xn);
    if (bad != m)
        SPX_FAIL(ctx, rc, SPX_E_INTERNAL, "k-means: non-finite row norm after the input check");
    w.xn = xn;
    double tol_abs = opts->tol > 0.0 ? opts->tol * mean_variance(w.X, m, d, w.sums) : 0.0;
    uint32_t n_init = opts->init_centers ? 1u : (opts->n_init ? opts->n_init : 1u);
    uint32_t max_iter = opts->max_iter ? opts->max_iter : 1u;
    double best = INFINITY;
    for (uint32_t r = 0; r < n_init; r++) {
        if (opts->init_centers) {
            memcpy(cur, opts->init_centers, kd * sizeof(float));
        } else if (spx_km_init_pp(w.X, xn, m, d, k, spx_kmeans_restart_seed(opts->seed, r), cur) < 0) {
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "k-means: out of memory in k-means++");
        }
        memcpy(init, cur, kd * sizeof(float));
        uint32_t iters;
        uint64_t reseeds;
        int conv;
        SPX_TRY(rc, lloyd(&w, cur, tol_abs, max_iter, &iters, &reseeds, &conv));
        res->reseeds_total += reseeds;
        /* labels of this restart by the pinned rule on its final centers */
        spx_km_row_norms(cur, k, d, w.cn);
        SPX_TRY(rc, spx_km_assign_core(cur, w.cn, k, d, w.X, xn, m, w.lab, w.G, w.fe, NULL));
        double inert = inertia_of(w.X, m, d, cur, w.lab);
        if (inert < best) {
            best = inert;
            memcpy(res->centroids, cur, kd * sizeof(float));
            memcpy(res->init_centers, init, kd * sizeof(float));
            res->fit_inertia = inert;
            res->n_iter = iters;
            res->best_init = r;
            res->reseeds = reseeds;
            res->converged = conv;
        }
    }
    /* final labels of all n points */
    spx_km_row_norms(res->centroids, k, d, w.cn);
    if (m == n) {
        rc = spx_km_assign_core(res->centroids, w.cn, k, d, X, xn, n, res->labels, w.G, w.fe, &bad);
    } else {
        rc = spx_km_assign_core(res->centroids, w.cn, k, d, X, NULL, n, res->labels, w.G, w.fe, &bad);
    }
    if (rc < 0)
        SPX_FAIL(ctx, rc, rc, "k-means: assignment failed at row %zu", bad);
    res->inertia = inertia_of(X, n, d, res->centroids, res->labels);
    for (size_t i = 0; i < n; i++)
        res->sizes[res->labels[i]]++;
    res->min_size = UINT64_MAX;
    for (uint32_t j = 0; j < k; j++) {
        if (res->sizes[j] == 0)
            res->n_empty++;
        if (res->sizes[j] < res->min_size)
            res->min_size = res->sizes[j];
    }
    *out = res;
    res = NULL;
done:
    spx_kmeans_free(res);
    free(Xf);
    free(cur);
    free(init);
    free(xn);
    free(w.G);
    free(w.fe);
    free(w.cn);
    free(w.sums);
    free(w.counts);
    free(w.lab);
    free(w.lab_new);
    free(w.far);
    free(w.cnew);
    return rc;
}
