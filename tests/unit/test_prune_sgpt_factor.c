/* test_prune_sgpt_factor.c: SparseGPT stage 1 around the arithmetic: refactoring into a kept
 * factor equals a fresh factor bit for bit (larger, smaller and equal orders), the pooled memory
 * passes do not depend on the thread count, and failures leave a reusable, unusable factor.
 * (The factor's values against a direct double reference are in test_prune_sparsegpt.c.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_kernels.h"
#include "spx_sparsegpt.h"
#include "spx_test.h"

/* Symmetric PSD H [c x c] = X^T X / T from T = c / 2 + 5 normal tokens with column scales, plus
 * up to `ndead` zero inputs (rows/columns 3, 10, 17, ... below c): rank-deficient before damping. */
static float *gen_h(size_t c, size_t ndead, uint64_t *rng)
{
    size_t T = c / 2 + 5;
    float *X = malloc(T * c * sizeof(float)), *H = calloc(c * c, sizeof(float));
    for (size_t t = 0; t < T; t++)
        for (size_t j = 0; j < c; j++)
            X[t * c + j] = (float)(spx_test_normal(rng) * exp(0.7 * spx_test_normal(rng)));
    for (size_t d = 0; d < ndead && 3 + 7 * d < c; d++)
        for (size_t t = 0; t < T; t++)
            X[t * c + 3 + 7 * d] = 0.0f;
    for (size_t i = 0; i < c; i++)
        for (size_t j = i; j < c; j++) {
            double s = 0;
            for (size_t t = 0; t < T; t++)
                s += (double)X[t * c + i] * (double)X[t * c + j];
            H[i * c + j] = H[j * c + i] = (float)(s / (double)T);
        }
    free(X);
    return H;
}

static int same_factor(const spx_sparsegpt_inv *a, const spx_sparsegpt_inv *b)
{
    return a->cols == b->cols && a->ndead == b->ndead && a->retries == b->retries &&
           a->damp == b->damp && memcmp(a->U, b->U, a->cols * a->cols * sizeof(float)) == 0 &&
           memcmp(a->dead, b->dead, a->cols) == 0;
}

int spx_test_main(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    uint64_t rng = 0xfac7u;
    spx_prune_opts o = SPX_PRUNE_OPTS_INIT;
    const size_t sizes[] = {300, 200, 300, 517, 65, 1};
    float *H[6];
    spx_sparsegpt_inv *fresh[6] = {NULL}, *kept = NULL;
    int threads = spx_kern_threads();

    for (size_t k = 0; k < 6; k++) {
        H[k] = gen_h(sizes[k], k % 3, &rng);
        spx_kern_set_threads(1);   /* the references: every pass on the calling thread */
        CHECK_RC(spx_sparsegpt_factor(&ctx, H[k], sizes[k], &o, &fresh[k]), 0);
    }
    /* one factor refactored through every order, on 3 threads: each equals its fresh factor */
    spx_kern_set_threads(3);
    CHECK_RC(spx_sparsegpt_factor(&ctx, H[0], sizes[0], &o, &kept), 0);
    for (size_t k = 0; k < 6 && kept; k++) {
        if (k > 0)
            CHECK_RC(spx_sparsegpt_refactor(&ctx, H[k], sizes[k], &o, kept), 0);
        CHECK_MSG(fresh[k] && same_factor(kept, fresh[k]), "order %zu (step %zu): refactor differs",
                  sizes[k], k);
        CHECK(spx_sparsegpt_inv_bytes(kept) >= sizes[k] * sizes[k] * sizeof(double));
    }
    CHECK(kept && spx_sparsegpt_inv_bytes(kept) == 517 * 517 * sizeof(double));   /* grown once */
    CHECK(fresh[0] && fresh[0]->ndead == 0 && fresh[1] && fresh[1]->ndead == 1 && fresh[2] &&
          fresh[2]->ndead == 2 && fresh[2]->dead[3] && fresh[2]->dead[10] && !fresh[2]->dead[4]);

    if (kept) {
        /* failure leaves cols = 0 (the sweep refuses it), and the next refactor works again */
        float *bad = malloc(sizes[0] * sizes[0] * sizeof(float));
        memcpy(bad, H[0], sizes[0] * sizes[0] * sizeof(float));
        bad[5 * sizes[0] + 9] = NAN;
        CHECK_RC(spx_sparsegpt_refactor(&ctx, bad, sizes[0], &o, kept), SPX_E_NUMERIC);
        CHECK(strstr(ctx.msg, "H[5][9]") != NULL);
        CHECK(kept->cols == 0);
        {
            float w[300] = {0};
            CHECK_RC(spx_sparsegpt_sweep(&ctx, w, 1, sizes[0], kept, &o, NULL), SPX_E_ARG);
        }
        spx_prune_opts nodamp = o;   /* no damping, no retries: rank-deficient H is rejected */
        nodamp.percdamp = 0.0;
        nodamp.max_retries = 0;
        CHECK_RC(spx_sparsegpt_refactor(&ctx, H[1], sizes[1], &nodamp, kept), SPX_E_CHOLESKY);
        CHECK(kept->cols == 0);
        CHECK_RC(spx_sparsegpt_refactor(&ctx, H[0], sizes[0], &o, kept), 0);
        CHECK(fresh[0] && same_factor(kept, fresh[0]));
        CHECK_RC(spx_sparsegpt_refactor(&ctx, NULL, sizes[0], &o, kept), SPX_E_ARG);
        CHECK_RC(spx_sparsegpt_refactor(&ctx, H[0], 0, &o, kept), SPX_E_ARG);
        free(bad);
    }
    CHECK_RC(spx_sparsegpt_refactor(&ctx, H[0], sizes[0], &o, NULL), SPX_E_ARG);
    CHECK(spx_sparsegpt_inv_bytes(NULL) == 0);

    spx_kern_set_threads(threads);
    spx_sparsegpt_inv_free(kept);
    for (size_t k = 0; k < 6; k++) {
        spx_sparsegpt_inv_free(fresh[k]);
        free(H[k]);
    }
    return 0;
}
