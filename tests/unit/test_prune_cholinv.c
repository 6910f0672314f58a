/* test_prune_cholinv.c: the recursive inverse Cholesky factor against a naive long double
 * Cholesky + back substitution, across sizes that exercise the recursion's splits. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_cholinv.h"
#include "spx_test.h"

/* SPD A [n x n] column-major, leading dimension lda: X^T X / T + 0.01 mean(diag) I with
 * column scales e^(0..3) and T = n / 2 + 3 tokens (rank-deficient before damping), the shape of a
 * damped calibration Hessian; kappa ~ 1e4-1e5. The strict lower triangle is NaN (must not be
 * read or written). */
static double *gen_spd(size_t n, size_t lda, uint64_t *rng)
{
    size_t T = n / 2 + 3;
    double *X = malloc(T * n * sizeof *X), *A = malloc(lda * n * sizeof *A), mean = 0;
    for (size_t t = 0; t < T; t++)
        for (size_t j = 0; j < n; j++)
            X[t * n + j] = spx_test_normal(rng) * exp(3.0 * (double)j / (double)n);
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < lda; i++) {
            double s = 0;
            if (i < n && i <= j)
                for (size_t t = 0; t < T; t++)
                    s += X[t * n + i] * X[t * n + j];
            A[j * lda + i] = i < n && i <= j ? s / (double)T : NAN;
        }
    for (size_t i = 0; i < n; i++)
        mean += A[i * lda + i] / (double)n;
    for (size_t i = 0; i < n; i++)
        A[i * lda + i] += 0.01 * mean;
    free(X);
    return A;
}

/* Z = chol(A)^-1 (upper, column-major n x n, leading dimension n) in long double: A = U^T U
 * column by column, then U Z = I by back substitution. Returns 0, or 1 if not PD. */
static int naive_cholinv(const double *A, size_t n, size_t lda, long double *Z)
{
    long double *U = calloc(n * n, sizeof *U);
    int bad = 0;
    for (size_t j = 0; j < n && !bad; j++) {
        for (size_t i = 0; i <= j; i++) {
            long double s = A[j * lda + i];
            for (size_t k = 0; k < i; k++)
                s -= U[i * n + k] * U[j * n + k];
            if (i < j) {
                U[j * n + i] = s / U[i * n + i];
            } else if (s <= 0) {
                bad = 1;
            } else {
                U[j * n + j] = sqrtl(s);
            }
        }
    }
    for (size_t c = 0; c < n && !bad; c++)   /* column c of Z: U z = e_c, z upper (rows <= c) */
        for (size_t r = c + 1; r-- > 0;) {
            long double s = r == c ? 1.0L : 0.0L;
            for (size_t k = r + 1; k <= c; k++)
                s -= U[k * n + r] * Z[c * n + k];
            Z[c * n + r] = s / U[r * n + r];
        }
    free(U);
    return bad;
}

static void check_size(size_t n, size_t lda, uint64_t *rng)
{
    spx_ctx ctx = SPX_CTX_INIT;
    double *A = gen_spd(n, lda, rng);
    long double *Z = calloc(n * n, sizeof *Z);
    CHECK(naive_cholinv(A, n, lda, Z) == 0);
    CHECK_RC(spx_cholinv_upper(&ctx, A, n, lda), 0);
    long double num = 0, den = 0;
    size_t lower_ok = 1;
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < lda; i++) {
            if (i < n && i <= j) {
                long double d = (long double)A[j * lda + i] - Z[j * n + i];
                num += d * d;
                den += Z[j * n + i] * Z[j * n + i];
            } else {
                lower_ok &= isnan(A[j * lda + i]) != 0;
            }
        }
    double rel = (double)sqrtl(num / den);
    /* backward stable in double: error ~ kappa(U) * n * 1e-16 with kappa(U) = sqrt(kappa(A)) ~
     * 1e2-1e3 here; observed ~1e-14 */
    fprintf(stderr, "n %4zu lda %4zu: rel. Frobenius error vs long double %.2e\n", n, lda, rel);
    CHECK_MSG(rel < 1e-11, "n %zu: rel %.3e", n, rel);
    CHECK_MSG(lower_ok, "n %zu: strict lower triangle or padding rows were written", n);
    free(A);
    free(Z);
}

/* A leading minor of order p + 1 that is not positive definite: diag entry p made negative. */
static void check_not_pd(size_t n, size_t p, uint64_t *rng)
{
    spx_ctx ctx = SPX_CTX_INIT;
    double *A = gen_spd(n, n, rng);
    char want[64];
    A[p * n + p] = -1.0;
    CHECK_RC(spx_cholinv_upper(&ctx, A, n, n), SPX_E_CHOLESKY);
    snprintf(want, sizeof want, "order %zu ", p + 1);
    CHECK_MSG(strstr(ctx.msg, want) != NULL, "n %zu p %zu: message '%s' lacks '%s'", n, p,
              ctx.msg, want);
    free(A);
}

int spx_test_main(void)
{
    uint64_t rng = 0x5eed1234u;
    spx_ctx ctx = SPX_CTX_INIT;
    const size_t sizes[] = {1, 2, 7, 128, 129, 200, 300, 513};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++)
        check_size(sizes[k], sizes[k], &rng);
    check_size(300, 307, &rng);   /* leading dimension larger than the order */
    check_not_pd(300, 0, &rng);
    check_not_pd(300, 150, &rng);   /* inside the first half's second block */
    check_not_pd(300, 250, &rng);   /* found in the Schur complement of the second half */
    check_not_pd(100, 99, &rng);    /* base case only */
    {
        double one = 1.0;
        CHECK_RC(spx_cholinv_upper(&ctx, &one, 1, 0), SPX_E_ARG);
        CHECK_RC(spx_cholinv_upper(&ctx, NULL, 1, 1), SPX_E_ARG);
        CHECK_RC(spx_cholinv_upper(&ctx, &one, 0, 1), SPX_E_ARG);
        CHECK_RC(spx_cholinv_upper(&ctx, &one, 1, 1), 0);
        CHECK(one == 1.0);
    }
    return 0;
}
