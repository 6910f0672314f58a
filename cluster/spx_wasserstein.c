/* spx_wasserstein.c: exact W1 of a normalized empirical distribution to N(0,1) (see the header). */
#include "spx_wasserstein.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"

#define SPX_SQRT1_2 0.70710678118654752440
#define SPX_INV_SQRT_2PI 0.39894228040143267794

double spx_w1_norm_pdf(double x)
{
    return SPX_INV_SQRT_2PI * exp(-0.5 * x * x);
}

double spx_w1_norm_cdf(double x)
{
    /* erfc keeps full relative accuracy in the lower tail */
    return 0.5 * erfc(-x * SPX_SQRT1_2);
}

/* Phi^{-1}(p) for 0 < p <= 0.5: Acklam's rational approximation (relative error < 1.2e-9) refined
 * by one Halley step on the erfc-based Phi, which brings it to the accuracy of erfc itself. */
static double ppf_lower(double p)
{
    static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
    static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                6.680131188771972e+01, -1.328068155288572e+01};
    static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
    static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                3.754408661907416e+00};
    double x;
    if (p < 0.02425) {
        double r = sqrt(-2.0 * log(p));
        x = (((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]) /
            ((((d[0] * r + d[1]) * r + d[2]) * r + d[3]) * r + 1.0);
    } else {
        double r = p - 0.5, s = r * r;
        x = (((((a[0] * s + a[1]) * s + a[2]) * s + a[3]) * s + a[4]) * s + a[5]) * r /
            (((((b[0] * s + b[1]) * s + b[2]) * s + b[3]) * s + b[4]) * s + 1.0);
    }
    double dens = spx_w1_norm_pdf(x);
    if (dens > 0.0) {
        double u = (spx_w1_norm_cdf(x) - p) / dens;
        x = x - u / (1.0 + 0.5 * x * u);
    }
    return x;
}

double spx_w1_norm_ppf(double p, double q)
{
    if (!(p > 0.0))
        return -INFINITY;
    if (!(q > 0.0))
        return INFINITY;
    /* symmetry: evaluate on the smaller tail probability, which the caller gave exactly */
    return p <= q ? ppf_lower(p) : -ppf_lower(q);
}

int spx_w1_table_new(spx_ctx *ctx, size_t n, spx_w1_table **out)
{
    int rc = 0;
    size_t cnt, bytes;
    spx_w1_table *t = NULL;
    *out = NULL;
    if (n == 0)
        return spx_err_set(ctx, SPX_E_ARG, "W1 table: no samples");
    if (spx_ckd_add_size(n, 1, &cnt) || spx_ckd_mul_size(cnt, sizeof(double), &bytes))
        return spx_err_set(ctx, SPX_E_OVERFLOW, "W1 table: %zu samples: size overflow", n);
    t = calloc(1, sizeof *t);
    if (!t)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "W1 table: out of memory");
    t->n = n;
    t->t = malloc(bytes);
    t->pdf = malloc(bytes);
    if (!t->t || !t->pdf)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "W1 table: cannot allocate 2 x %zu bytes", bytes);
    for (size_t i = 0; i <= n; i++) {
        /* p = i/n and q = (n-i)/n are both exact ratios of integers */
        double p = (double)i / (double)n, q = (double)(n - i) / (double)n;
        t->t[i] = spx_w1_norm_ppf(p, q);
        t->pdf[i] = (i == 0 || i == n) ? 0.0 : spx_w1_norm_pdf(t->t[i]);
    }
    *out = t;
    t = NULL;
done:
    spx_w1_table_free(t);
    return rc;
}

void spx_w1_table_free(spx_w1_table *t)
{
    if (!t)
        return;
    free(t->t);
    free(t->pdf);
    free(t);
}

/* integral over u in ((i-1)/n, i/n] of |z - Phi^{-1}(u)|, i in 1..n (closed forms in the header) */
static double w1_term(const spx_w1_table *t, size_t i, double z, double inv_n)
{
    double ta = t->t[i - 1], tb = t->t[i];
    if (z <= ta)
        return t->pdf[i - 1] - t->pdf[i] - z * inv_n;
    if (z >= tb)
        return z * inv_n + t->pdf[i] - t->pdf[i - 1];
    double mid = (double)(2 * i - 1) / (double)t->n;
    return z * (2.0 * spx_w1_norm_cdf(z) - mid) + 2.0 * spx_w1_norm_pdf(z) - t->pdf[i - 1] - t->pdf[i];
}

double spx_w1_sorted(const spx_w1_table *t, const double *z)
{
    double inv_n = 1.0 / (double)t->n, s = 0.0;
    for (size_t i = 1; i <= t->n; i++)
        s += w1_term(t, i, z[i - 1], inv_n);
    return s;
}

/* Order-preserving map of fp32 bit patterns to unsigned keys (negatives reversed). */
static uint32_t f2key(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static float key2f(uint32_t k)
{
    uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* LSD radix sort of n keys, 4 passes of 8 bits (a pass is skipped when every key has the same
 * digit). keys and tmp are [n]; returns the buffer holding the sorted keys. */
static uint32_t *radix_sort(uint32_t *keys, uint32_t *tmp, size_t n)
{
    size_t hist[4][256];
    memset(hist, 0, sizeof hist);
    for (size_t i = 0; i < n; i++)
        for (int d = 0; d < 4; d++)
            hist[d][(keys[i] >> (8 * d)) & 0xffu]++;
    for (int d = 0; d < 4; d++) {
        size_t sum = 0;
        int trivial = 0;
        for (int b = 0; b < 256; b++) {
            size_t c = hist[d][b];
            if (c == n)
                trivial = 1;
            hist[d][b] = sum;
            sum += c;
        }
        if (trivial)
            continue;
        for (size_t i = 0; i < n; i++)
            tmp[hist[d][(keys[i] >> (8 * d)) & 0xffu]++] = keys[i];
        uint32_t *sw = keys;
        keys = tmp;
        tmp = sw;
    }
    return keys;
}

int spx_w1_neuron_eval(spx_ctx *ctx, const spx_w1_table *t, const float *y, size_t n, uint32_t *work,
                       spx_w1_neuron *out)
{
    memset(out, 0, sizeof *out);
    if (n != t->n || n == 0)
        return spx_err_set(ctx, SPX_E_ARG, "W1: %zu samples but the table is for %zu", n, t->n);
    double sum = 0.0;
    float lo = y[0], hi = y[0];
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i]))
            return spx_err_set(ctx, SPX_E_NUMERIC, "W1: sample %zu is %s", i, isnan(y[i]) ? "NaN" : "infinite");
        sum += (double)y[i];
        lo = y[i] < lo ? y[i] : lo;
        hi = y[i] > hi ? y[i] : hi;
    }
    double mean = sum / (double)n, ss = 0.0;
    for (size_t i = 0; i < n; i++) {
        double dv = (double)y[i] - mean;
        ss += dv * dv;
    }
    out->mean = mean;
    out->std = sqrt(ss / (double)n);
    if (lo == hi || !(out->std > 0.0)) {
        /* no spread, nothing to compare with a Gaussian */
        out->constant = 1;
        out->std = 0.0;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        work[i] = f2key(y[i]);
    const uint32_t *sorted = radix_sort(work, work + n, n);
    double inv_n = 1.0 / (double)n, s = 0.0, sd = out->std;
    for (size_t i = 1; i <= n; i++)
        s += w1_term(t, i, ((double)key2f(sorted[i - 1]) - mean) / sd, inv_n);
    out->w1 = s;
    return 0;
}
