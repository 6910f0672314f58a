/* test_cluster_wasserstein.c: exact W1 of normalized samples to N(0,1) (cluster/spx_wasserstein.c).
 *
 * Known cases with closed forms, invariances, the radix-sort path against a qsort path, error
 * handling. With SPX_W1_EXPORT_DIR set it also writes a set of sample vectors and the C results
 * for the independent NumPy reference (tests/ref/wasserstein_ref.py check-export, driven by
 * tests/scripts/analyze_w1_ref.sh). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_test.h"
#include "spx_wasserstein.h"

/* W1(Rademacher, N(0,1)) = 2 * integral_0^inf |t - 1| phi(t) dt = 2 (2 Phi(1) - 3/2 - phi(0) + 2 phi(1)) */
#define W1_RADEMACHER 0.5353773215478798
/* W1(uniform normalized to [-sqrt3, sqrt3], N(0,1)) in CDF form: 2 [A(-sqrt3) - (G(c) - G(0)) + G(sqrt3) - G(c)]
 * with A(t) = t Phi(t) + phi(t), G(t) = t/2 + t^2/(4 sqrt3) - A(t), c = 1.50113078319380 the crossing
 * of the two CDFs on (0, sqrt3) (computed in float64 by bisection; also by tests/ref). */
#define W1_UNIFORM 0.15427951218100397

static double eval(const float *y, size_t n, spx_w1_neuron *nr)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_w1_table *t = NULL;
    uint32_t *work = malloc(2 * n * sizeof *work);
    double r = NAN;
    CHECK_RC(spx_w1_table_new(&ctx, n, &t), SPX_OK);
    if (t && work) {
        CHECK_RC(spx_w1_neuron_eval(&ctx, t, y, n, work, nr), SPX_OK);
        r = nr->w1;
    }
    spx_w1_table_free(t);
    free(work);
    return r;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Naive path: double copy, two-pass normalization, qsort, spx_w1_sorted. */
static double naive(const float *y, size_t n)
{
    double *z = malloc(n * sizeof *z), m = 0, ss = 0, r;
    spx_w1_table *t = NULL;
    spx_ctx ctx = SPX_CTX_INIT;
    for (size_t i = 0; i < n; i++)
        m += y[i];
    m /= (double)n;
    for (size_t i = 0; i < n; i++)
        ss += (y[i] - m) * (y[i] - m);
    for (size_t i = 0; i < n; i++)
        z[i] = (y[i] - m) / sqrt(ss / (double)n);
    qsort(z, n, sizeof *z, cmp_d);
    CHECK_RC(spx_w1_table_new(&ctx, n, &t), SPX_OK);
    r = t ? spx_w1_sorted(t, z) : NAN;
    spx_w1_table_free(t);
    free(z);
    return r;
}

static void test_quantiles(void)
{
    /* Phi(ppf(p)) == p: the Halley-refined quantile is accurate to erfc's precision */
    double worst = 0;
    for (double lp = -30.0; lp <= log(0.5); lp += 0.25) {
        double p = exp(lp), x = spx_w1_norm_ppf(p, 1.0 - p);
        double rel = fabs(spx_w1_norm_cdf(x) - p) / p;
        worst = rel > worst ? rel : worst;
        /* upper tail by symmetry, given q exactly */
        CHECK(spx_w1_norm_ppf(1.0 - p, p) == -x);
    }
    CHECK_MSG(worst < 1e-13, "worst relative error of Phi(ppf(p)) %g", worst);
    CHECK_NEAR(spx_w1_norm_ppf(0.975, 0.025), 1.959963984540054, 1e-14);
    CHECK_NEAR(spx_w1_norm_ppf(0.5, 0.5), 0.0, 1e-300);
    CHECK(isinf(spx_w1_norm_ppf(0.0, 1.0)) && spx_w1_norm_ppf(0.0, 1.0) < 0);
    CHECK(isinf(spx_w1_norm_ppf(1.0, 0.0)) && spx_w1_norm_ppf(1.0, 0.0) > 0);
}

static void test_known(void)
{
    spx_w1_neuron nr;
    float two[2] = {3.0f, 7.0f}, *y = malloc(200000 * sizeof *y);
    /* two-point symmetric distribution: exact for any even n */
    CHECK_NEAR(eval(two, 2, &nr), W1_RADEMACHER, 1e-14);
    CHECK_NEAR(nr.mean, 5.0, 0);
    CHECK_NEAR(nr.std, 2.0, 0);
    for (int i = 0; i < 100; i++)
        y[i] = (i % 2) ? 1.0f : -1.0f;
    CHECK_NEAR(eval(y, 100, &nr), W1_RADEMACHER, 1e-13);
    /* a single sample at the center: E|Z| (n = 1 is constant, so check spx_w1_sorted directly) */
    {
        spx_ctx ctx = SPX_CTX_INIT;
        spx_w1_table *t = NULL;
        double z0 = 0.0;
        CHECK_RC(spx_w1_table_new(&ctx, 1, &t), SPX_OK);
        if (t)
            CHECK_NEAR(spx_w1_sorted(t, &z0), sqrt(2.0 / M_PI), 1e-15);
        spx_w1_table_free(t);
    }
    /* evenly spaced grid -> uniform; the empirical grid differs from the continuous uniform by
     * O(1/n) in W1 (each sample moves at most sqrt3/n): 1e-4 at n = 100000 */
    for (int i = 0; i < 100000; i++)
        y[i] = (float)i;
    CHECK_NEAR(eval(y, 100000, &nr), W1_UNIFORM, 1e-4);
    /* the exact Gaussian quantiles at (i - 1/2)/n: only the discretization remains (< 5/n) */
    {
        spx_ctx ctx = SPX_CTX_INIT;
        spx_w1_table *t = NULL;
        size_t n = 10000;
        double *z = malloc(n * sizeof *z);
        for (size_t i = 0; i < n; i++)
            z[i] = spx_w1_norm_ppf(((double)i + 0.5) / (double)n, ((double)(n - i) - 0.5) / (double)n);
        CHECK_RC(spx_w1_table_new(&ctx, n, &t), SPX_OK);
        if (t) {
            double d = spx_w1_sorted(t, z);
            CHECK_MSG(d > 0 && d < 5.0 / (double)n, "quantile sample W1 %g", d);
        }
        spx_w1_table_free(t);
        free(z);
    }
    free(y);
}

static void test_gaussian_samples(void)
{
    /* E W1(empirical N(0,1) sample of n, N(0,1)) ~ c / sqrt(n), c ~ 0.5-1 (before the z-scoring,
     * which only lowers it). The bound 1.5/sqrt(n) fails on a formula error, and the distance must
     * shrink with n (ratio ~ sqrt(100) = 10 between n = 1000 and 100000). */
    uint64_t seed = 7;
    size_t ns[3] = {1000, 10000, 100000};
    double d[3];
    float *y = malloc(100000 * sizeof *y);
    spx_w1_neuron nr;
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < ns[k]; i++)
            y[i] = (float)spx_test_normal(&seed);
        d[k] = eval(y, ns[k], &nr);
        CHECK_MSG(d[k] > 0 && d[k] < 1.5 / sqrt((double)ns[k]), "n=%zu W1 %g", ns[k], d[k]);
    }
    CHECK(d[2] < d[0] / 3);
    free(y);
}

static void test_invariance_and_paths(void)
{
    uint64_t seed = 3;
    size_t n = 3001;
    float *y = malloc(n * sizeof *y), *y2 = malloc(n * sizeof *y2);
    spx_w1_neuron a, b;
    for (size_t i = 0; i < n; i++) {
        double u = spx_test_uniform(&seed);
        y[i] = (float)(u < 0.9 ? 0.0 : -log(spx_test_uniform(&seed) + 1e-300)) - 0.25f; /* spike + tail */
    }
    y[5] = -0.0f;
    double d = eval(y, n, &a);
    /* radix-sort + on-the-fly normalization vs double copy + qsort: same arithmetic up to the
     * order of the two-pass sums (1e-12) */
    CHECK_NEAR(d, naive(y, n), 1e-12);
    /* scaling by 4 and negation are exact in fp32: invariant up to rounding of mean/std */
    for (size_t i = 0; i < n; i++)
        y2[i] = -4.0f * y[i];
    CHECK_NEAR(eval(y2, n, &b), d, 1e-12);
    CHECK(d > 0.3);
    free(y);
    free(y2);
}

static void test_edge_cases(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_w1_table *t = NULL;
    spx_w1_neuron nr;
    float c[5] = {2.5f, 2.5f, 2.5f, 2.5f, 2.5f};
    uint32_t work[10];
    CHECK_NEAR(eval(c, 5, &nr), 0.0, 0);
    CHECK(nr.constant == 1 && nr.std == 0.0);
    CHECK_NEAR(eval(c, 1, &nr), 0.0, 0);
    CHECK(nr.constant == 1);
    CHECK_RC(spx_w1_table_new(&ctx, 0, &t), SPX_E_ARG);
    CHECK_RC(spx_w1_table_new(&ctx, 5, &t), SPX_OK);
    c[3] = NAN;
    CHECK_RC(spx_w1_neuron_eval(&ctx, t, c, 5, work, &nr), SPX_E_NUMERIC);
    CHECK(strstr(ctx.msg, "sample 3") != NULL);
    c[3] = INFINITY;
    CHECK_RC(spx_w1_neuron_eval(&ctx, t, c, 5, work, &nr), SPX_E_NUMERIC);
    CHECK_RC(spx_w1_neuron_eval(&ctx, t, c, 4, work, &nr), SPX_E_ARG);
    spx_w1_table_free(t);
    spx_w1_table_free(NULL);
}

/* ---- export for the NumPy reference -------------------------------------------------------- */

static void export_cases(const char *dir)
{
    static const char *const names[] = {"normal_1000", "exponential_4097", "bimodal_2000", "heavy_2000",
                                        "sparse_5000", "ties_3000", "three_3", "two_2", "constant_7",
                                        "normal_65536", "lognormal_777"};
    static const size_t ns[] = {1000, 4097, 2000, 2000, 5000, 3000, 3, 2, 7, 65536, 777};
    size_t nc = sizeof ns / sizeof ns[0];
    uint64_t seed = 11;
    char path[4096];
    snprintf(path, sizeof path, "%s/cases.json", dir);
    FILE *js = fopen(path, "w");
    CHECK(js != NULL);
    if (!js)
        return;
    fprintf(js, "[\n");
    for (size_t c = 0; c < nc; c++) {
        size_t n = ns[c];
        float *y = malloc(n * sizeof *y);
        for (size_t i = 0; i < n; i++) {
            double g = spx_test_normal(&seed), u = spx_test_uniform(&seed), v;
            switch (c) {
            case 1: v = -log(u + 1e-300); break;
            case 2: v = u < 0.3 ? -3.0 + 0.3 * g : 2.0 + g; break;
            case 3: { double g2 = spx_test_normal(&seed), g3 = spx_test_normal(&seed);
                      v = g / sqrt((g2 * g2 + g3 * g3) / 2.0 + 1e-12); break; } /* Student t, 2 dof */
            case 4: v = u < 0.97 ? 0.0 : 5.0 + g; break;
            case 5: v = round(2.0 * g) / 2.0; break;
            case 6: v = (double)i * (double)i; break;
            case 7: v = (double)i; break;
            case 8: v = 1.25; break;
            case 10: v = exp(1.5 * g); break;
            default: v = g; break;
            }
            y[i] = (float)v;
        }
        spx_w1_neuron nr;
        double d = eval(y, n, &nr);
        snprintf(path, sizeof path, "%s/%s.f32", dir, names[c]);
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(y, sizeof *y, n, f) == n);
        if (f)
            fclose(f);
        fprintf(js, "  {\"name\": \"%s\", \"file\": \"%s.f32\", \"n\": %zu, \"w1\": %.17g, \"mean\": %.17g, "
                    "\"std\": %.17g, \"constant\": %d}%s\n", names[c], names[c], n, d, nr.mean, nr.std, nr.constant,
                c + 1 < nc ? "," : "");
        free(y);
    }
    fprintf(js, "]\n");
    fclose(js);
}

int spx_test_main(void)
{
    test_quantiles();
    test_known();
    test_gaussian_samples();
    test_invariance_and_paths();
    test_edge_cases();
    const char *dir = spx_test_env("SPX_W1_EXPORT_DIR");
    if (dir && *dir)
        export_cases(dir);
    return 0;
}
