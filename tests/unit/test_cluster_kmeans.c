/* test_cluster_kmeans.c: k-means fit and the pinned nearest-centroid rule, C-only checks.
 * (The NumPy comparison of Lloyd from identical initial centers is tests/scripts/cluster_ref.sh.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_cluster_metrics.h"
#include "spx_kmeans.h"
#include "spx_test.h"

/* Planted Gaussian mixture: K centers ~ N(0, sep^2) per coordinate, points = center + N(0, 1).
 * X [n x d], truth [n] (round-robin so every cluster has n/K points). */
static void planted(float *X, uint32_t *truth, size_t n, uint32_t d, uint32_t K, double sep, double offset,
                    uint64_t seed)
{
    uint64_t s = seed;
    double *C = malloc((size_t)K * d * sizeof(double));
    for (size_t i = 0; i < (size_t)K * d; i++)
        C[i] = sep * spx_test_normal(&s);
    for (size_t i = 0; i < n; i++) {
        uint32_t c = (uint32_t)(spx_test_rand(&s) % K);
        truth[i] = c;
        for (uint32_t t = 0; t < d; t++)
            X[i * d + t] = (float)(offset + C[(size_t)c * d + t] + spx_test_normal(&s));
    }
    free(C);
}

/* Reference rule: naive double loop, ties -> lowest index. */
static uint32_t naive_nearest(const float *C, uint32_t k, uint32_t d, const float *x)
{
    uint32_t best = 0;
    double bd = INFINITY;
    for (uint32_t j = 0; j < k; j++) {
        double s = 0.0;
        for (uint32_t t = 0; t < d; t++) {
            double v = (double)x[t] - (double)C[(size_t)j * d + t];
            s += v * v;
        }
        if (s < bd) {
            bd = s;
            best = j;
        }
    }
    return best;
}

static void test_planted(void)
{
    const size_t n = 4000;
    const uint32_t d = 64, K = 8;
    float *X = malloc(n * d * sizeof(float));
    uint32_t *truth = malloc(n * sizeof(uint32_t)), *lab = malloc(n * sizeof(uint32_t));
    planted(X, truth, n, d, K, 5.0, 0.0, 42);
    spx_ctx ctx = SPX_CTX_INIT;
    spx_kmeans_opts o = SPX_KMEANS_OPTS_INIT;
    o.k = K;
    spx_kmeans_result *a = NULL, *b = NULL, *c = NULL, *sub = NULL;
    CHECK_RC(spx_kmeans_fit(X, n, d, &o, &a, &ctx), 0);
    CHECK_RC(spx_kmeans_fit(X, n, d, &o, &b, &ctx), 0);
    o.seed = 7;
    CHECK_RC(spx_kmeans_fit(X, n, d, &o, &c, &ctx), 0);
    o.seed = 0;
    o.max_fit_points = 1000;
    CHECK_RC(spx_kmeans_fit(X, n, d, &o, &sub, &ctx), 0);
    if (a && b && c && sub) {
        double ari = 0, pur = 0;
        CHECK_RC(spx_cluster_ari(a->labels, truth, n, &ari, &ctx), 0);
        CHECK_RC(spx_cluster_purity(a->labels, truth, n, &pur, &ctx), 0);
        fprintf(stderr, "planted K=8 d=64 n=4000: ARI %.6f purity %.6f inertia %.1f iters %u best_init %u\n", ari,
                pur, a->inertia, a->n_iter, a->best_init);
        CHECK(ari > 0.99);
        CHECK(pur > 0.99);
        /* determinism: same seed -> identical bytes */
        CHECK(memcmp(a->labels, b->labels, n * sizeof(uint32_t)) == 0);
        CHECK(memcmp(a->centroids, b->centroids, (size_t)K * d * sizeof(float)) == 0);
        CHECK(memcmp(a->init_centers, b->init_centers, (size_t)K * d * sizeof(float)) == 0);
        CHECK(a->inertia == b->inertia && a->n_iter == b->n_iter);
        /* a different seed starts elsewhere (the k-means++ draws differ) and still finds the truth */
        CHECK(memcmp(a->init_centers, c->init_centers, (size_t)K * d * sizeof(float)) != 0);
        CHECK_RC(spx_cluster_ari(c->labels, truth, n, &ari, &ctx), 0);
        CHECK(ari > 0.99);
        /* fit labels == the pinned rule on the final centroids == naive double loop */
        CHECK_RC(spx_kmeans_assign(a->centroids, K, d, X, n, lab), 0);
        CHECK(memcmp(lab, a->labels, n * sizeof(uint32_t)) == 0);
        size_t mism = 0;
        uint64_t sz[8] = {0};
        double inert = 0.0;
        for (size_t i = 0; i < n; i++) {
            mism += naive_nearest(a->centroids, K, d, X + i * d) != a->labels[i];
            sz[a->labels[i]]++;
            inert += spx_kmeans_dist2(X + i * d, a->centroids + (size_t)a->labels[i] * d, d);
        }
        CHECK(mism == 0);
        for (uint32_t j = 0; j < K; j++)
            CHECK(sz[j] == a->sizes[j]);
        CHECK(inert == a->inertia); /* same formula, same order: bit-identical */
        CHECK(a->n_empty == 0 && a->converged == 1 && a->n_fit == n);
        /* subsampled fit: 1000 fitting points, all 4000 labelled */
        CHECK(sub->n_fit == 1000 && sub->n == n);
        CHECK_RC(spx_cluster_ari(sub->labels, truth, n, &ari, &ctx), 0);
        CHECK(ari > 0.99);
        CHECK_RC(spx_kmeans_assign(sub->centroids, K, d, X, n, lab), 0);
        CHECK(memcmp(lab, sub->labels, n * sizeof(uint32_t)) == 0);
    }
    spx_kmeans_free(a);
    spx_kmeans_free(b);
    spx_kmeans_free(c);
    spx_kmeans_free(sub);
    free(X);
    free(truth);
    free(lab);
}

/* The exact rule on fresh random points, including data far from the origin where the fp32
 * expansion cannot decide and the double re-check must; and explicit ties. */
static void test_assign(void)
{
    const uint32_t k = 16, d = 48;
    const size_t n = 5000;
    for (int pass = 0; pass < 2; pass++) {
        double offset = pass ? 1000.0 : 0.0;
        uint64_t s = 99 + (uint64_t)pass;
        float *C = malloc((size_t)k * d * sizeof(float)), *X = malloc(n * d * sizeof(float));
        uint32_t *lab = malloc(n * sizeof(uint32_t));
        for (size_t i = 0; i < (size_t)k * d; i++)
            C[i] = (float)(offset + spx_test_normal(&s));
        for (size_t i = 0; i < n * d; i++)
            X[i] = (float)(offset + 1.5 * spx_test_normal(&s));
        CHECK_RC(spx_kmeans_assign(C, k, d, X, n, lab), 0);
        size_t mism = 0;
        for (size_t i = 0; i < n; i++)
            mism += lab[i] != naive_nearest(C, k, d, X + i * d);
        CHECK_MSG(mism == 0, "offset %g: %zu of %zu labels differ from the naive double loop", offset, mism, n);
        free(C);
        free(X);
        free(lab);
    }
    /* ties: (0, 5) is equidistant from (1, 0) and (-1, 0); centroid 2 duplicates centroid 0 */
    float C2[6] = {-1.0f, 0.0f, 1.0f, 0.0f, -1.0f, 0.0f};
    float P[6] = {0.0f, 5.0f, -3.0f, 1.0f, 2.0f, -1.0f};
    uint32_t l3[3];
    CHECK_RC(spx_kmeans_assign(C2, 3, 2, P, 3, l3), 0);
    CHECK(l3[0] == 0 && l3[1] == 0 && l3[2] == 1);
    /* errors */
    float bad[2] = {NAN, 0.0f};
    CHECK_RC(spx_kmeans_assign(C2, 3, 2, bad, 1, l3), SPX_E_NUMERIC);
    CHECK_RC(spx_kmeans_assign(NULL, 3, 2, P, 1, l3), SPX_E_ARG);
    CHECK_RC(spx_kmeans_assign(C2, 0, 2, P, 1, l3), SPX_E_ARG);
    CHECK_RC(spx_kmeans_assign(C2, 3, 2, P, 0, l3), 0);
}

static void test_empty_clusters(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    /* points 0..9 on a line, start (2, 6.5, 1000): cluster 2 is empty after the first assignment and
     * is re-seeded at point 9 (farthest from its center 6.5); then Lloyd converges with
     * clusters {0..4} {5,6,7} {8,9}. Exactly one re-seed. */
    float X[20], init[6] = {2.0f, 0.0f, 6.5f, 0.0f, 1000.0f, 0.0f};
    for (int i = 0; i < 10; i++) {
        X[2 * i] = (float)i;
        X[2 * i + 1] = 0.0f;
    }
    spx_kmeans_opts o = SPX_KMEANS_OPTS_INIT;
    o.k = 3;
    o.tol = 0.0;
    o.init_centers = init;
    spx_kmeans_result *r = NULL;
    CHECK_RC(spx_kmeans_fit(X, 10, 2, &o, &r, &ctx), 0);
    if (r) {
        CHECK(r->reseeds == 1 && r->reseeds_total == 1);
        CHECK(r->sizes[0] == 5 && r->sizes[1] == 3 && r->sizes[2] == 2);
        CHECK(r->centroids[0] == 2.0f && r->centroids[2] == 6.0f && r->centroids[4] == 8.5f);
        CHECK(r->n_iter == 3 && r->converged);
        CHECK(r->min_size == 2 && r->n_empty == 0);
    }
    spx_kmeans_free(r);
    r = NULL;
    /* 10 identical points, k = 3: each restart re-seeds clusters 1 and 2 once, then the centers
     * coincide and the final labels put every point in cluster 0 (ties -> lowest index). */
    float Y[40];
    for (int i = 0; i < 10; i++) {
        Y[4 * i] = 1.1f;
        Y[4 * i + 1] = -2.3f;
        Y[4 * i + 2] = 0.7f;
        Y[4 * i + 3] = 3.0f;
    }
    spx_kmeans_opts q = SPX_KMEANS_OPTS_INIT;
    q.k = 3;
    q.n_init = 3;
    CHECK_RC(spx_kmeans_fit(Y, 10, 4, &q, &r, &ctx), 0);
    if (r) {
        CHECK(r->reseeds == 2 && r->reseeds_total == 6);
        CHECK(r->sizes[0] == 10 && r->n_empty == 2 && r->min_size == 0);
        CHECK(r->inertia == 0.0);
    }
    spx_kmeans_free(r);
    r = NULL;
    /* k larger than the number of distinct points: 5 positions x 4 copies, k = 8 */
    float Z[20 * 3];
    uint64_t s = 5;
    float pos[15];
    for (int i = 0; i < 15; i++)
        pos[i] = (float)(10.0 * spx_test_normal(&s));
    for (int i = 0; i < 20; i++)
        memcpy(Z + 3 * i, pos + 3 * (i % 5), 3 * sizeof(float));
    q.k = 8;
    q.n_init = 4;
    CHECK_RC(spx_kmeans_fit(Z, 20, 3, &q, &r, &ctx), 0);
    if (r) {
        uint64_t tot = 0;
        for (uint32_t j = 0; j < 8; j++)
            tot += r->sizes[j];
        CHECK(tot == 20);
        CHECK(r->n_empty >= 3 && r->reseeds_total > 0);
        CHECK(r->inertia == 0.0);
    }
    spx_kmeans_free(r);
}

static void test_errors(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    float X[64 * 8];
    uint64_t s = 3;
    for (int i = 0; i < 64 * 8; i++)
        X[i] = (float)spx_test_normal(&s);
    spx_kmeans_opts o = SPX_KMEANS_OPTS_INIT;
    spx_kmeans_result *r = NULL;
    o.k = 65;
    CHECK_RC(spx_kmeans_fit(X, 64, 8, &o, &r, &ctx), SPX_E_ARG);
    CHECK(r == NULL);
    o.k = 4;
    o.max_fit_points = 3;
    CHECK_RC(spx_kmeans_fit(X, 64, 8, &o, &r, &ctx), SPX_E_ARG);
    o.max_fit_points = 0;
    o.k = 0;
    CHECK_RC(spx_kmeans_fit(X, 64, 8, &o, &r, &ctx), SPX_E_ARG);
    o.k = 4;
    CHECK_RC(spx_kmeans_fit(X, 64, 0, &o, &r, &ctx), SPX_E_ARG);
    X[37 * 8 + 5] = NAN;
    CHECK_RC(spx_kmeans_fit(X, 64, 8, &o, &r, &ctx), SPX_E_NUMERIC);
    CHECK_MSG(strstr(ctx.msg, "row 37 column 5") != NULL, "message: %s", ctx.msg);
    X[37 * 8 + 5] = INFINITY;
    float cen[4 * 8];
    CHECK_RC(spx_kmeans_init_pp(X, 64, 8, 4, 0, cen, &ctx), SPX_E_NUMERIC);
    CHECK_MSG(strstr(ctx.msg, "row 37") != NULL, "message: %s", ctx.msg);
    CHECK(r == NULL);
}

int spx_test_main(void)
{
    test_planted();
    test_assign();
    test_empty_clusters();
    test_errors();
    return 0;
}
