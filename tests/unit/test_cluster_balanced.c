/* test_cluster_balanced.c: balanced k-means (MoEfication ParamSplit): exact equal sizes,
 * determinism, recovery of a planted balanced partition, exchange optimality, and the global
 * optimum found by brute force on tiny instances. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_balanced.h"
#include "spx_cluster_metrics.h"
#include "spx_test.h"

static void test_planted(void)
{
    /* K = 8 directions in 32-d, 64 neurons each, rows = random scale * (direction + noise):
     * after L2 normalisation the groups are tight, so the balanced split must recover them. */
    const uint32_t d = 32, K = 8;
    const size_t n = 512;
    uint64_t s = 123;
    float *X = malloc(n * d * sizeof(float));
    double *dir = malloc((size_t)K * d * sizeof(double));
    uint32_t *truth = malloc(n * sizeof(uint32_t));
    for (size_t i = 0; i < (size_t)K * d; i++)
        dir[i] = spx_test_normal(&s);
    for (size_t i = 0; i < n; i++) {
        truth[i] = (uint32_t)((i * 7) % K); /* interleaved, 64 per class */
        double scale = 0.5 + 2.0 * spx_test_uniform(&s);
        for (uint32_t t = 0; t < d; t++)
            X[i * d + t] = (float)(scale * (dir[(size_t)truth[i] * d + t] + 0.2 * spx_test_normal(&s)));
    }
    memset(X + 5 * d, 0, d * sizeof(float)); /* a dead neuron: zero row stays zero, no NaN */
    spx_ctx ctx = SPX_CTX_INIT;
    spx_balanced_opts o = SPX_BALANCED_OPTS_INIT;
    o.k = K;
    spx_kmeans_result *a = NULL, *b = NULL;
    CHECK_RC(spx_balanced_fit(X, n, d, &o, &a, &ctx), 0);
    CHECK_RC(spx_balanced_fit(X, n, d, &o, &b, &ctx), 0);
    if (a && b) {
        for (uint32_t j = 0; j < K; j++)
            CHECK(a->sizes[j] == n / K);
        uint64_t cnt[8] = {0};
        for (size_t i = 0; i < n; i++)
            cnt[a->labels[i]]++;
        for (uint32_t j = 0; j < K; j++)
            CHECK(cnt[j] == n / K);
        CHECK(memcmp(a->labels, b->labels, n * sizeof(uint32_t)) == 0);
        CHECK(memcmp(a->centroids, b->centroids, (size_t)K * d * sizeof(float)) == 0);
        double ari = 0;
        CHECK_RC(spx_cluster_ari(a->labels, truth, n, &ari, &ctx), 0);
        fprintf(stderr, "balanced planted K=8: ARI %.6f inertia %.4f iters %u\n", ari, a->inertia, a->n_iter);
        CHECK(ari > 0.99);
        /* exchange optimality for the final centroids, in double on the normalized rows. The
         * algorithm compares fp32-sgemm distances (error <= ~d 2^-24 (|x|^2 + |c|^2) ~ 4e-6), so a
         * remaining improving swap can be at most ~2e-5. */
        CHECK(a->converged == 1);
        float *Xn = malloc(n * d * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            double nn = 0;
            for (uint32_t t = 0; t < d; t++)
                nn += (double)X[i * d + t] * X[i * d + t];
            for (uint32_t t = 0; t < d; t++)
                Xn[i * d + t] = nn > 0 ? (float)(X[i * d + t] / sqrt(nn)) : 0.0f;
        }
        double worst = -INFINITY;
        for (uint32_t ca = 0; ca < K; ca++)
            for (uint32_t cb = 0; cb < K; cb++) {
                if (ca == cb)
                    continue;
                double ga = -INFINITY, gb = -INFINITY;
                for (size_t i = 0; i < n; i++) {
                    double da = spx_kmeans_dist2(Xn + i * d, a->centroids + (size_t)ca * d, d);
                    double db = spx_kmeans_dist2(Xn + i * d, a->centroids + (size_t)cb * d, d);
                    if (a->labels[i] == ca && da - db > ga)
                        ga = da - db;
                    if (a->labels[i] == cb && db - da > gb)
                        gb = db - da;
                }
                if (ga + gb > worst)
                    worst = ga + gb;
            }
        CHECK_MSG(worst <= 2e-5, "best remaining swap gain %g", worst);
        free(Xn);
    }
    spx_kmeans_free(a);
    spx_kmeans_free(b);
    free(X);
    free(dir);
    free(truth);
}

/* all balanced partitions of n points into k labelled-by-first-member groups: minimum SSE */
static double brute_min(const float *X, uint32_t d, size_t n, uint32_t k, uint32_t *lab, size_t pos,
                        uint32_t *cnt, uint32_t used)
{
    if (pos == n) {
        double sse = 0;
        for (uint32_t j = 0; j < k; j++) {
            double c[4] = {0, 0, 0, 0};
            for (size_t i = 0; i < n; i++)
                if (lab[i] == j)
                    for (uint32_t t = 0; t < d; t++)
                        c[t] += X[i * d + t];
            for (uint32_t t = 0; t < d; t++)
                c[t] /= (double)(n / k);
            for (size_t i = 0; i < n; i++)
                if (lab[i] == j)
                    for (uint32_t t = 0; t < d; t++)
                        sse += (X[i * d + t] - c[t]) * (X[i * d + t] - c[t]);
        }
        return sse;
    }
    double best = INFINITY;
    for (uint32_t j = 0; j < k && j <= used; j++) { /* j == used opens a new group: no relabelings */
        if (cnt[j] == n / k)
            continue;
        lab[pos] = j;
        cnt[j]++;
        double v = brute_min(X, d, n, k, lab, pos + 1, cnt, j == used ? used + 1 : used);
        cnt[j]--;
        if (v < best)
            best = v;
    }
    return best;
}

static void test_brute_force(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    uint64_t s = 77;
    int optimal = 0, total = 0;
    double worst_ratio = 1.0;
    for (int rep = 0; rep < 20; rep++) {
        uint32_t k = rep < 10 ? 2u : 3u, d = 3;
        size_t n = k == 2 ? 10 : 12;
        float X[12 * 3];
        for (size_t i = 0; i < n * d; i++)
            X[i] = (float)spx_test_normal(&s);
        uint32_t lab[12], cnt[3] = {0, 0, 0};
        double opt = brute_min(X, d, n, k, lab, 0, cnt, 0);
        spx_balanced_opts o = SPX_BALANCED_OPTS_INIT;
        o.k = k;
        o.normalize = 0;
        o.seed = (uint64_t)rep;
        spx_kmeans_result *r = NULL;
        CHECK_RC(spx_balanced_fit(X, n, d, &o, &r, &ctx), 0);
        if (!r)
            continue;
        total++;
        CHECK(r->inertia >= opt * (1.0 - 1e-9)); /* never below the optimum (sanity of the SSE) */
        if (r->inertia <= opt * (1.0 + 1e-9))
            optimal++;
        if (r->inertia / opt > worst_ratio)
            worst_ratio = r->inertia / opt;
        spx_kmeans_free(r);
    }
    fprintf(stderr, "brute force: optimal on %d of %d tiny instances, worst ratio %.6f\n", optimal, total,
            worst_ratio);
    CHECK(total == 20);
    CHECK(optimal >= 18);
    CHECK(worst_ratio < 1.05);
}

static void test_unbalanced_and_errors(void)
{
    /* truth has groups of 60/30/6 points, k = 4 must still give 24 each */
    const uint32_t d = 8;
    const size_t n = 96;
    uint64_t s = 9;
    float X[96 * 8];
    for (size_t i = 0; i < n; i++) {
        int g = i < 60 ? 0 : i < 90 ? 1 : 2;
        for (uint32_t t = 0; t < d; t++)
            X[i * d + t] = (float)((t == (uint32_t)g ? 5.0 : 0.0) + 0.3 * spx_test_normal(&s));
    }
    spx_ctx ctx = SPX_CTX_INIT;
    spx_balanced_opts o = SPX_BALANCED_OPTS_INIT;
    o.k = 4;
    spx_kmeans_result *r = NULL;
    CHECK_RC(spx_balanced_fit(X, n, d, &o, &r, &ctx), 0);
    if (r)
        for (uint32_t j = 0; j < 4; j++)
            CHECK(r->sizes[j] == 24);
    spx_kmeans_free(r);
    r = NULL;
    o.k = 5;
    CHECK_RC(spx_balanced_fit(X, n, d, &o, &r, &ctx), SPX_E_ARG);
    o.k = 0;
    CHECK_RC(spx_balanced_fit(X, n, d, &o, &r, &ctx), SPX_E_ARG);
    o.k = 96; /* k == n: every cluster is one point */
    CHECK_RC(spx_balanced_fit(X, n, d, &o, &r, &ctx), 0);
    if (r)
        for (uint32_t j = 0; j < 96; j++)
            CHECK(r->sizes[j] == 1);
    spx_kmeans_free(r);
    r = NULL;
    o.k = 4;
    X[50 * d + 3] = NAN;
    CHECK_RC(spx_balanced_fit(X, n, d, &o, &r, &ctx), SPX_E_NUMERIC);
    CHECK_MSG(strstr(ctx.msg, "row 50 column 3") != NULL, "message: %s", ctx.msg);
    CHECK(r == NULL);
}

int spx_test_main(void)
{
    test_planted();
    test_brute_force();
    test_unbalanced_and_errors();
    return 0;
}
