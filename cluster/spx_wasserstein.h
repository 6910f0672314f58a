/* spx_wasserstein.h: exact 1-Wasserstein distance between a neuron's normalized output distribution
 * and the standard normal (the "Wasserstein neurons" of Sparse Expansion, arXiv 2405.15756).
 *
 * Normalization (the rule spx applies; the paper writes W1(n', N) with n' the neuron's output
 * distribution normalized to zero mean and unit variance): over the n samples y_1..y_n of one
 * neuron, mean m = sum(y)/n and the POPULATION standard deviation s = sqrt(sum((y - m)^2)/n)
 * (ddof 0, both in double), z_i = (y_i - m) / s. With ddof 0 the normalized empirical distribution
 * has exactly the first two moments of N(0,1), so the distance measures shape only (skew, tails,
 * multi-modality), never scale or offset. A neuron whose samples are all identical (s == 0) has no
 * shape: it gets distance 0 and is flagged `constant`. The paper's public code
 * (Shavit-Lab/Sparse-Expansion, analysis notebooks) calls scipy.stats.wasserstein_distance, which
 * compares two finite samples; when the second sample is a large draw from N(0,1) that is a
 * Monte Carlo estimate of the exact value computed here (their ddof is not visible in that code).
 *
 * Exact W1 in quantile form: with z sorted ascending, F_emp^{-1}(u) = z_i on ((i-1)/n, i/n], so
 *   W1 = sum_i  integral_{(i-1)/n}^{i/n} |z_i - Phi^{-1}(u)| du
 *      = sum_i  integral_{t_{i-1}}^{t_i} |z_i - t| phi(t) dt,    t_i = Phi^{-1}(i/n) (t_0 = -inf, t_n = +inf)
 * and, with integral phi = Phi and integral t phi(t) dt = -phi(t), each term has the closed form
 *   z_i <= t_{i-1}:  phi(t_{i-1}) - phi(t_i) - z_i/n
 *   z_i >= t_i:      z_i/n + phi(t_i) - phi(t_{i-1})
 *   otherwise:       z_i (2 Phi(z_i) - (2i-1)/n) + 2 phi(z_i) - phi(t_{i-1}) - phi(t_i)
 * No quadrature and no sampling of the Gaussian: the only approximation is Phi^{-1}, computed to
 * ~1e-15 relative (rational start + one Halley step on erfc), and double rounding: the distance is
 * exact to ~1e-12 absolute for n <= 2^20 (tested against an independent CDF-form reference).
 *
 * Cost: the table of t_i and phi(t_i) is built once per sample count n (O(n) erfc/exp); each
 * neuron then costs an O(n) radix sort of its fp32 samples plus O(n) arithmetic (Phi(z) is only
 * evaluated when z_i falls inside its own quantile interval, which is rare). */
#ifndef SPX_WASSERSTEIN_H
#define SPX_WASSERSTEIN_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

/* Standard normal density, distribution function and quantile. spx_w1_norm_ppf(p, q) returns
 * Phi^{-1}(p) for p + q == 1 (pass both: the smaller of the two is used, so upper-tail quantiles
 * keep full relative accuracy); -inf for p <= 0, +inf for q <= 0. */
double spx_w1_norm_pdf(double x);
double spx_w1_norm_cdf(double x);
double spx_w1_norm_ppf(double p, double q);

/* Quantile table for n samples: t[i] = Phi^{-1}(i/n), pdf[i] = phi(t[i]), i = 0..n. */
typedef struct spx_w1_table {
    size_t n;                 /* sample count the table is for (>= 1) */
    double *t;                /* [n+1]; t[0] = -inf, t[n] = +inf */
    double *pdf;              /* [n+1]; pdf[0] = pdf[n] = 0 */
} spx_w1_table;

/* Errors: SPX_E_ARG (n == 0), SPX_E_OVERFLOW, SPX_E_NOMEM. */
int spx_w1_table_new(spx_ctx *ctx, size_t n, spx_w1_table **out);
void spx_w1_table_free(spx_w1_table *t);

/* Exact W1 between the empirical distribution of z[0..n) and N(0,1); z must be sorted ascending
 * and finite, n == t->n. No normalization is applied. */
double spx_w1_sorted(const spx_w1_table *t, const double *z);

/* Result for one neuron. */
typedef struct spx_w1_neuron {
    double w1;                /* exact W1(normalized samples, N(0,1)); 0 when constant */
    double mean;              /* sample mean */
    double std;               /* population standard deviation (ddof 0) */
    int constant;             /* 1: every sample identical (std == 0), distance reported as 0 */
} spx_w1_neuron;

/* Normalize y[0..n) (any order, n == t->n) as described above and compute its distance.
 * work: scratch of at least 2 * n uint32 (radix sort). Errors: SPX_E_NUMERIC when a sample is
 * NaN or infinite (the message gives the sample index), SPX_E_ARG when n != t->n. */
int spx_w1_neuron_eval(spx_ctx *ctx, const spx_w1_table *t, const float *y, size_t n, uint32_t *work,
                       spx_w1_neuron *out);

#endif
