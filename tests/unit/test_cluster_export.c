/* test_cluster_export.c: runs PCA, k-means, assignment and the metrics on fixed random data and
 * writes inputs and outputs as raw little-endian arrays plus meta.json, for the NumPy reference
 * tests/ref/kmeans_ref.py (driven by tests/scripts/cluster_ref.sh, which sets
 * SPX_CLUSTER_EXPORT_DIR). As a unit test it writes to its scratch directory and checks what the
 * reference relies on: the exported initial centers reproduce the exported fit exactly. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_cluster_metrics.h"
#include "spx_kmeans.h"
#include "spx_pca.h"
#include "spx_test.h"

static const char *g_dir;

static void put(const char *name, const void *p, size_t bytes)
{
    const char *path = spx_test_path(g_dir, name);
    FILE *f = fopen(path, "wb");
    CHECK_MSG(f != NULL, "cannot write %s", path);
    if (!f)
        return;
    CHECK(fwrite(p, 1, bytes, f) == bytes);
    CHECK(fclose(f) == 0);
}

/* PCA data: offset + Z diag(sd) mixed by a Householder reflection; sd_t = 8 / (1 + 0.4 t). */
static void pca_data(float *X, size_t n, uint32_t d, uint64_t *s)
{
    double v[64], nn = 0, z[64], mu[64];
    for (uint32_t t = 0; t < d; t++) {
        v[t] = spx_test_normal(s);
        nn += v[t] * v[t];
        mu[t] = 50.0 + 100.0 * spx_test_uniform(s);
    }
    for (uint32_t t = 0; t < d; t++)
        v[t] /= sqrt(nn);
    for (size_t i = 0; i < n; i++) {
        double dot = 0;
        for (uint32_t t = 0; t < d; t++) {
            z[t] = spx_test_normal(s) * 8.0 / (1.0 + 0.4 * t);
            dot += z[t] * v[t];
        }
        for (uint32_t t = 0; t < d; t++)
            X[i * d + t] = (float)(mu[t] + z[t] - 2.0 * dot * v[t]);
    }
}

int spx_test_main(void)
{
    g_dir = spx_test_env("SPX_CLUSTER_EXPORT_DIR");
    if (!g_dir)
        g_dir = spx_test_tmpdir();
    spx_ctx ctx = SPX_CTX_INIT;
    uint64_t s = 2024;

    /* ---- PCA: n=4000, d=32, k=8, streamed in three uneven chunks ---- */
    const size_t pn = 4000;
    const uint32_t pd = 32, pk = 8;
    float *PX = malloc(pn * pd * sizeof(float)), *PY = malloc(pn * pk * sizeof(float));
    pca_data(PX, pn, pd, &s);
    spx_pca_acc *acc = NULL;
    spx_pca *pca = NULL;
    CHECK_RC(spx_pca_acc_new(pd, &acc, &ctx), 0);
    CHECK_RC(spx_pca_acc_add(acc, PX, 1234, &ctx), 0);
    CHECK_RC(spx_pca_acc_add(acc, PX + 1234 * pd, 7, &ctx), 0);
    CHECK_RC(spx_pca_acc_add(acc, PX + 1241 * pd, pn - 1241, &ctx), 0);
    CHECK_RC(spx_pca_acc_finish(acc, pk, &pca, &ctx), 0);
    if (!pca)
        return 1;
    CHECK_RC(spx_pca_project(pca, PX, pn, PY, &ctx), 0);
    put("pca_X.f32", PX, pn * pd * sizeof(float));
    put("pca_mean.f32", pca->mean, pd * sizeof(float));
    put("pca_P.f32", pca->P, (size_t)pk * pd * sizeof(float));
    put("pca_ev.f64", pca->explained_var, pk * sizeof(double));
    put("pca_total.f64", &pca->total_var, sizeof(double));
    put("pca_Y.f32", PY, pn * pk * sizeof(float));

    /* ---- k-means: 6 overlapping Gaussian clusters, n=3000, d=16; tol=0 and tol=5e-3 ---- */
    const size_t kn = 3000, qn = 2000;
    const uint32_t kd = 16, kk = 6;
    float *KX = malloc(kn * kd * sizeof(float)), *Q = malloc(qn * kd * sizeof(float));
    double cen[6 * 16];
    for (size_t i = 0; i < (size_t)kk * kd; i++)
        cen[i] = 0.7 * spx_test_normal(&s);
    for (size_t i = 0; i < kn; i++) {
        uint32_t c = (uint32_t)(spx_test_rand(&s) % kk);
        for (uint32_t t = 0; t < kd; t++)
            KX[i * kd + t] = (float)(cen[(size_t)c * kd + t] + spx_test_normal(&s));
    }
    for (size_t i = 0; i < qn * kd; i++)
        Q[i] = (float)(3.0 * spx_test_normal(&s));
    spx_kmeans_result *r[2] = {NULL, NULL}, *again = NULL;
    uint32_t *qlab = malloc(qn * sizeof(uint32_t));
    for (int v = 0; v < 2; v++) {
        spx_kmeans_opts o = SPX_KMEANS_OPTS_INIT;
        o.k = kk;
        o.n_init = 3;
        o.tol = v ? 5e-3 : 0.0; /* 5e-3: stops a few iterations early on this data */
        o.seed = 5;
        CHECK_RC(spx_kmeans_fit(KX, kn, kd, &o, &r[v], &ctx), 0);
        if (!r[v])
            return 1;
        char name[64];
        snprintf(name, sizeof name, "km%d_init.f32", v);
        put(name, r[v]->init_centers, (size_t)kk * kd * sizeof(float));
        snprintf(name, sizeof name, "km%d_C.f32", v);
        put(name, r[v]->centroids, (size_t)kk * kd * sizeof(float));
        snprintf(name, sizeof name, "km%d_labels.u32", v);
        put(name, r[v]->labels, kn * sizeof(uint32_t));
        double st[4] = {r[v]->inertia, (double)r[v]->n_iter, (double)r[v]->reseeds, o.tol};
        snprintf(name, sizeof name, "km%d_stats.f64", v);
        put(name, st, sizeof st);
    }
    /* the exported init reproduces the fit byte for byte (the reference starts from it) */
    spx_kmeans_opts o2 = SPX_KMEANS_OPTS_INIT;
    o2.k = kk;
    o2.tol = 0.0;
    o2.init_centers = r[0]->init_centers;
    CHECK_RC(spx_kmeans_fit(KX, kn, kd, &o2, &again, &ctx), 0);
    if (again) {
        CHECK(memcmp(again->centroids, r[0]->centroids, (size_t)kk * kd * sizeof(float)) == 0);
        CHECK(memcmp(again->labels, r[0]->labels, kn * sizeof(uint32_t)) == 0);
        CHECK(again->n_iter == r[0]->n_iter);
    }
    CHECK_RC(spx_kmeans_assign(r[0]->centroids, kk, kd, Q, qn, qlab), 0);
    put("km_X.f32", KX, kn * kd * sizeof(float));
    put("km_Q.f32", Q, qn * kd * sizeof(float));
    put("km_Qlab.u32", qlab, qn * sizeof(uint32_t));

    /* ---- metrics: noisy copies of a labelling with sparse label values ---- */
    const size_t mn = 5000;
    uint32_t *la = malloc(mn * sizeof(uint32_t)), *lb = malloc(mn * sizeof(uint32_t));
    for (size_t i = 0; i < mn; i++) {
        la[i] = (uint32_t)(spx_test_rand(&s) % 9u) * 1000003u;
        lb[i] = spx_test_uniform(&s) < 0.7 ? la[i] / 1000003u + 100u : (uint32_t)(spx_test_rand(&s) % 12u);
    }
    double met[2];
    CHECK_RC(spx_cluster_ari(la, lb, mn, &met[0], &ctx), 0);
    CHECK_RC(spx_cluster_purity(la, lb, mn, &met[1], &ctx), 0);
    put("lab_a.u32", la, mn * sizeof(uint32_t));
    put("lab_b.u32", lb, mn * sizeof(uint32_t));
    put("metrics.f64", met, sizeof met);

    FILE *f = fopen(spx_test_path(g_dir, "meta.json"), "w");
    CHECK(f != NULL);
    if (f) {
        fprintf(f, "{\"pca\": {\"n\": %zu, \"d\": %u, \"k\": %u},\n", pn, pd, pk);
        fprintf(f, " \"kmeans\": {\"n\": %zu, \"d\": %u, \"k\": %u, \"max_iter\": 300, \"nq\": %zu},\n", kn, kd, kk,
                qn);
        fprintf(f, " \"metrics\": {\"n\": %zu}}\n", mn);
        CHECK(fclose(f) == 0);
    }
    fprintf(stderr, "exported to %s (k-means iterations: tol=0 %u, tol=5e-3 %u)\n", g_dir, r[0]->n_iter,
            r[1]->n_iter);
    spx_pca_acc_free(acc);
    spx_pca_free(pca);
    spx_kmeans_free(r[0]);
    spx_kmeans_free(r[1]);
    spx_kmeans_free(again);
    free(PX);
    free(PY);
    free(KX);
    free(Q);
    free(qlab);
    free(la);
    free(lb);
    return 0;
}
