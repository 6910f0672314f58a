/* spx_cholinv.c: recursive inverse Cholesky factor (see spx_cholinv.h for the algebra). */
#include "spx_cholinv.h"

#include <cblas.h>
#include <lapacke.h>
#include <limits.h>

/* Z = chol(A)^-1 for the n x n block at A; off = index of the block's first column in the whole
 * matrix (for the error message). */
static int cholinv_rec(spx_ctx *ctx, double *A, size_t n, size_t lda, size_t off)
{
    int rc = 0;
    const int ld = (int)lda;

    if (n <= SPX_CHOLINV_BASE) {
        lapack_int info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'U', (lapack_int)n, A, ld);
        if (info > 0)
            SPX_FAIL(ctx, rc, SPX_E_CHOLESKY,
                     "Cholesky factorization failed: leading minor of order %zu is not positive "
                     "definite", off + (size_t)info);
        if (info == 0)
            info = LAPACKE_dtrtri_work(LAPACK_COL_MAJOR, 'U', 'N', (lapack_int)n, A, ld);
        if (info != 0)
            SPX_FAIL(ctx, rc, SPX_E_CHOLESKY,
                     "Cholesky factorization failed near column %zu (LAPACK info %d)", off,
                     (int)info);
        goto done;
    }
    {
        /* a split on a multiple of 32 keeps the blocks aligned to the BLAS kernels' tiles */
        size_t m = (n / 2 + 31) / 32 * 32;
        if (m >= n)
            m = n / 2;
        const int mi = (int)m, ki = (int)(n - m);
        double *A11 = A, *A12 = A + m * lda, *A22 = A + m * lda + m;

        SPX_TRY(rc, cholinv_rec(ctx, A11, m, lda, off));
        cblas_dtrmm(CblasColMajor, CblasLeft, CblasUpper, CblasTrans, CblasNonUnit, mi, ki, 1.0,
                    A11, ld, A12, ld);
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasTrans, ki, mi, -1.0, A12, ld, 1.0, A22, ld);
        SPX_TRY(rc, cholinv_rec(ctx, A22, n - m, lda, off + m));
        cblas_dtrmm(CblasColMajor, CblasRight, CblasUpper, CblasNoTrans, CblasNonUnit, mi, ki,
                    1.0, A22, ld, A12, ld);
        cblas_dtrmm(CblasColMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, mi, ki,
                    -1.0, A11, ld, A12, ld);
    }
done:
    return rc;
}

int spx_cholinv_upper(spx_ctx *ctx, double *A, size_t n, size_t lda)
{
    int rc = 0;
    if (!A || n == 0 || lda < n || lda > (size_t)INT_MAX)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "inverse Cholesky: bad order %zu / leading dimension %zu", n,
                 lda);
    rc = cholinv_rec(ctx, A, n, lda, 0);
done:
    return rc;
}
