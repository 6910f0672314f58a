/* bench_cluster.c: time of Sparse Expansion's per-layer input clustering on synthetic activations:
 * PCA fit + projection to d/32 components, then k-means (k=16, n_init=10), plus k-means on the
 * unreduced input and the per-token router cost (spx_kmeans_assign on one row).
 *
 * usage: bench_cluster [n_points (default 32768)] [dims, comma-separated (default 64,256,768)]
 *                      [n_init (default 10)]
 * Data: 16 Gaussian clusters (center sd 1.0, unit noise) plus a decaying-variance low-rank part
 * and a per-channel offset of ~5, so PCA and k-means both have structure to find. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spx_kmeans.h"
#include "spx_pca.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* process CPU time (all threads): the shared 2-core machine is often loaded, so wall time alone
 * misleads */
static double cpu(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t g_rng = 0x1234567ull;

static double unif(void)
{
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double gauss(void)
{
    return sqrt(-2.0 * log(unif())) * cos(6.283185307179586 * unif());
}

static float *make_data(size_t n, uint32_t d)
{
    float *X = malloc(n * d * sizeof(float));
    float *C = malloc((size_t)16 * d * sizeof(float));
    float *off = malloc((size_t)d * sizeof(float));
    if (!X || !C || !off) {
        free(X);
        free(C);
        free(off);
        return NULL;
    }
    for (size_t i = 0; i < (size_t)16 * d; i++)
        C[i] = (float)gauss();
    for (uint32_t t = 0; t < d; t++)
        off[t] = (float)(5.0 * gauss());
    for (size_t i = 0; i < n; i++) {
        size_t c = (size_t)(unif() * 16.0);
        double lr = 3.0 * gauss(); /* one strong shared direction: channels t % 8 == 0 */
        for (uint32_t t = 0; t < d; t++)
            X[i * d + t] = (float)(off[t] + C[c * d + t] + gauss() + (t % 8 == 0 ? lr : 0.0));
    }
    free(C);
    free(off);
    return X;
}

static int run(size_t n, uint32_t d, uint32_t n_init)
{
    spx_ctx ctx = SPX_CTX_INIT;
    int rc = 0;
    uint32_t dp = d / 32 ? d / 32 : 1;
    float *X = make_data(n, d), *Y = malloc(n * dp * sizeof(float));
    spx_pca *pca = NULL;
    spx_kmeans_result *km = NULL, *kraw = NULL;
    if (!X || !Y) {
        fprintf(stderr, "out of memory\n");
        rc = 1;
        goto done;
    }
    spx_kmeans_opts o = SPX_KMEANS_OPTS_INIT;
    o.k = 16;
    o.n_init = n_init;
    double c0 = cpu(), t0 = now();
    if ((rc = spx_pca_fit(X, n, d, dp, &pca, &ctx)) < 0)
        goto fail;
    double t1 = now();
    if ((rc = spx_pca_project(pca, X, n, Y, &ctx)) < 0)
        goto fail;
    double t2 = now(), c2 = cpu();
    if ((rc = spx_kmeans_fit(Y, n, dp, &o, &km, &ctx)) < 0)
        goto fail;
    double t3 = now(), c3 = cpu();
    if ((rc = spx_kmeans_fit(X, n, d, &o, &kraw, &ctx)) < 0)
        goto fail;
    double t4 = now(), c4 = cpu();
    double explained = 0.0;
    for (uint32_t c = 0; c < dp; c++)
        explained += pca->explained_var[c] / pca->total_var;
    /* router: one token at a time, PCA projection + nearest centroid */
    const int reps = 2000;
    uint32_t lab = 0;
    float y[64];
    double t5 = now();
    for (int r = 0; r < reps; r++) {
        spx_pca_project(pca, X + (size_t)r * d, 1, y, &ctx);
        spx_kmeans_assign(km->centroids, 16, dp, y, 1, &lab);
    }
    double t6 = now();
    printf("n=%zu d=%u -> %u PCA components (explained variance %.3f)\n", n, d, dp, explained);
    printf("  PCA fit + project      wall %7.3f s  cpu %7.3f s  (fit wall %.3f s)\n", t2 - t0, c2 - c0, t1 - t0);
    printf("  k-means on PCA output  wall %7.3f s  cpu %7.3f s  (k=16 n_init=%u, %u iterations, min size %llu)\n",
           t3 - t2, c3 - c2, n_init, km->n_iter, (unsigned long long)km->min_size);
    printf("  PCA + k-means total    wall %7.3f s  cpu %7.3f s\n", t3 - t0, c3 - c0);
    printf("  k-means on raw input   wall %7.3f s  cpu %7.3f s  (%u iterations)\n", t4 - t3, c4 - c3, kraw->n_iter);
    printf("  route one token (project + assign): %.2f us\n", 1e6 * (t6 - t5) / reps);
    fflush(stdout);
    goto done;
fail:
    fprintf(stderr, "d=%u: %s (%s)\n", d, ctx.msg, spx_err_name(rc));
    rc = 1;
done:
    spx_pca_free(pca);
    spx_kmeans_free(km);
    spx_kmeans_free(kraw);
    free(X);
    free(Y);
    return rc;
}

int main(int argc, char **argv)
{
    size_t n = 32768;
    const char *dims = "64,256,768";
    uint32_t n_init = 10;
    if (argc > 1)
        n = (size_t)strtoull(argv[1], NULL, 10);
    if (argc > 2)
        dims = argv[2];
    if (argc > 3)
        n_init = (uint32_t)strtoul(argv[3], NULL, 10);
    if (n < 16 || n_init == 0) {
        fprintf(stderr, "usage: bench_cluster [n_points>=16] [dims,...] [n_init>=1]\n");
        return 2;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", dims);
    int rc = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        unsigned long d = strtoul(tok, NULL, 10);
        if (d < 1 || d > 65536) {
            fprintf(stderr, "bad dimension '%s'\n", tok);
            return 2;
        }
        rc |= run(n, (uint32_t)d, n_init);
    }
    return rc;
}
