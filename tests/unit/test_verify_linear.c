/* test_verify_linear.c: the kernel-backed linear layer (SPX_LINEAR_KERNELS, verify/spx_linear.h).
 *
 * 1. Random matrices in every encoding the runtime meets (dense F16/BF16/F32, bitmask F16/F32 at
 *    50%, 2:4 F16, CSR16 F16 at 10%, one with a bias) are written to a .spx, loaded as KMAT and
 *    run with n = 1 (matvec), 3 (row kernels), 16 and 64 (PANEL; dense F16 with n >= 8: fp32
 *    conversion + sgemm) tokens against a naive double loop over the stored (rounded) weights.
 *    Tolerance: |y - y_ref| <= 1e-5 * (sum_c |w_rc x_c| + |b_r|) per output: fp32 accumulation
 *    of <= 300 terms in a few partial sums has a worst-case bound ~300 * 6e-8 = 1.8e-5 and a
 *    realistic one ~sqrt(300) * 6e-8 = 1e-6 (relative to sum |w x|, since y may cancel); a wrong
 *    column, value or dropped entry gives errors of order 1e-1.
 *    Also: spx_linear_to_f32 gives exactly the decoded tensor, spx_linear_weights_differ sees
 *    equal and different weights, dense F32 stays DENSE.
 * 2. The real stories260K model (SPX_SHARED), pruned 50% (bitmask, F16 values) and 2:4, converted
 *    to F16 dense too: logits of a 24-token prompt (batched) and of 6 decoded tokens through the
 *    kernels vs the fp32-decode path (the same stored values; only the fp32 summation order
 *    differs): max |difference| <= 1e-5 * max |logit| + 1e-5 (observed ~1e-6 relative). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_forward.h"
#include "spx_linear.h"
#include "spx_model.h"
#include "spx_test.h"

#define ROWS 37
#define COLS 300
#define TOL 1e-5

static uint64_t g_seed = 0x11aa22bbull;

typedef struct lcase {
    const char *name;
    int enc, dtype, nm, bias;
    double density;
    int want_kind;
} lcase;

static const lcase g_cases[] = {
    {"dense_f16", SPX_ENC_DENSE, SPX_DTYPE_F16, 0, 0, 1.0, SPX_LINEAR_KMAT},
    {"dense_bf16", SPX_ENC_DENSE, SPX_DTYPE_BF16, 0, 0, 1.0, SPX_LINEAR_KMAT},
    {"dense_f32", SPX_ENC_DENSE, SPX_DTYPE_F32, 0, 0, 1.0, SPX_LINEAR_DENSE},
    {"bitmask_f16", SPX_ENC_BITMASK, SPX_DTYPE_F16, 0, 0, 0.5, SPX_LINEAR_KMAT},
    {"bitmask_f32_bias", SPX_ENC_BITMASK, SPX_DTYPE_F32, 0, 1, 0.5, SPX_LINEAR_KMAT},
    {"nm24_f16", SPX_ENC_NM, SPX_DTYPE_F16, 1, 0, 0.5, SPX_LINEAR_KMAT},
    {"csr16_f16", SPX_ENC_CSR16, SPX_DTYPE_F16, 0, 0, 0.1, SPX_LINEAR_KMAT},
};
#define NCASES (sizeof g_cases / sizeof g_cases[0])

static double uni(void)
{
    return (double)(spx_test_rand(&g_seed) >> 11) * 0x1.0p-53;
}

/* Random weights of case c: 2:4 keeps the 2 largest |w| of each group of 4. */
static void fill(const lcase *c, float *w)
{
    for (size_t i = 0; i < (size_t)ROWS * COLS; i++)
        w[i] = uni() < c->density ? (float)spx_test_normal(&g_seed) : 0.0f;
    if (!c->nm)
        return;
    for (size_t g = 0; g < (size_t)ROWS * COLS; g += 4) {
        for (int drop = 0; drop < 2; drop++) {   /* zero the two smallest */
            int mi = -1;
            for (int k = 0; k < 4; k++)
                if (w[g + (size_t)k] != 0.0f && (mi < 0 || fabsf(w[g + (size_t)k]) < fabsf(w[g + (size_t)mi])))
                    mi = k;
            int nz = 0;
            for (int k = 0; k < 4; k++)
                nz += w[g + (size_t)k] != 0.0f;
            if (nz > 2 && mi >= 0)
                w[g + (size_t)mi] = 0.0f;
        }
    }
}

static int write_cases(const char *path, float **wd, float *bias)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    int rc = 0;
    float *wf = malloc((size_t)ROWS * COLS * sizeof *wf);
    SPX_TRY(rc, spx_writer_open(&ctx, path, "test_verify_linear", &w));
    for (size_t i = 0; i < NCASES; i++) {
        spx_tensor t;
        void *blob = NULL;
        size_t size = 0;
        fill(&g_cases[i], wf);
        memset(&t, 0, sizeof t);
        SPX_TRY(rc, spx_encode(&ctx, wf, ROWS, COLS, g_cases[i].enc, g_cases[i].dtype, g_cases[i].nm ? 2 : 0,
                               g_cases[i].nm ? 4 : 0, &t, &blob, &size));
        snprintf(t.name, sizeof t.name, "%s", g_cases[i].name);
        t.role = SPX_ROLE_MLP;
        t.layer = 0;
        t.expert = SPX_NO_INDEX;
        rc = spx_writer_add(w, &t, blob, size);
        /* the reference weights: the stored values, decoded exactly */
        if (rc == 0)
            rc = spx_decode_f32(&ctx, &t, blob, wd[i]);
        free(blob);
        if (rc < 0)
            goto done;
    }
    for (int r = 0; r < ROWS; r++)
        bias[r] = (float)spx_test_normal(&g_seed);
    SPX_TRY(rc, spx_writer_add_f32(w, "bias", SPX_ROLE_MLP, 0, SPX_NO_INDEX, SPX_DTYPE_F32, bias, 1,
                                   (const uint64_t[]){ROWS}));
    SPX_TRY(rc, spx_writer_finish(w));
done:
    if (rc < 0)
        fprintf(stderr, "write_cases: %s / %s\n", ctx.msg, w ? spx_writer_ctx(w)->msg : "");
    spx_writer_free(w);
    free(wf);
    return rc;
}

/* max over outputs of |y - ref| / (sum |w x| + |b|), ref in double */
static double check_forward(const spx_linear *l, const float *wd, const float *bias, size_t n)
{
    float *X = malloc(n * COLS * sizeof *X), *Y = malloc(n * ROWS * sizeof *Y);
    double worst = 0.0;
    for (size_t i = 0; i < n * COLS; i++)
        X[i] = (float)spx_test_normal(&g_seed);
    for (size_t i = 0; i < n * ROWS; i++)
        Y[i] = NAN;
    spx_linear_forward(l, X, n, Y);
    for (size_t t = 0; t < n; t++) {
        for (int r = 0; r < ROWS; r++) {
            double acc = bias ? (double)bias[r] : 0.0, mag = bias ? fabs((double)bias[r]) : 0.0;
            for (int c = 0; c < COLS; c++) {
                double p = (double)wd[(size_t)r * COLS + (size_t)c] * (double)X[t * COLS + (size_t)c];
                acc += p;
                mag += fabs(p);
            }
            double e = fabs((double)Y[t * ROWS + (size_t)r] - acc) / (mag > 0.0 ? mag : 1.0);
            if (!(e <= worst))
                worst = isnan(e) ? INFINITY : e;
        }
    }
    free(X);
    free(Y);
    return worst;
}

static void test_random(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    const char *path = spx_test_path(spx_test_tmpdir(), "lin.spx");
    float *wd[NCASES], bias[ROWS];
    spx_file *f = NULL;
    static const size_t ns[] = {1, 3, 16, 64};
    for (size_t i = 0; i < NCASES; i++)
        wd[i] = malloc((size_t)ROWS * COLS * sizeof(float));
    CHECK_RC(write_cases(path, wd, bias), 0);
    CHECK_RC(spx_file_open(&ctx, path, SPX_OPEN_VERIFY_DATA, &f), 0);
    if (!f)
        goto done;
    for (size_t i = 0; i < NCASES; i++) {
        const lcase *c = &g_cases[i];
        const spx_tensor *t = spx_file_find(f, c->name);
        const spx_tensor *b = c->bias ? spx_file_find(f, "bias") : NULL;
        spx_linear lk, lf;
        int differ = -1;
        CHECK(t != NULL);
        if (!t)
            continue;
        CHECK_RC(spx_linear_load(&ctx, f, t, b, ROWS, COLS, SPX_LINEAR_KERNELS, &lk), 0);
        CHECK_RC(spx_linear_load(&ctx, f, t, b, ROWS, COLS, SPX_LINEAR_F32, &lf), 0);
        CHECK_MSG(lk.kind == c->want_kind, "%s: kind %d, want %d", c->name, lk.kind, c->want_kind);
        CHECK(spx_linear_present(&lk) && spx_linear_present(&lf) && lk.nnz == t->nnz);
        CHECK(lf.kind == SPX_LINEAR_DENSE && memcmp(lf.w, wd[i], (size_t)ROWS * COLS * sizeof(float)) == 0);
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            double e = check_forward(&lk, wd[i], c->bias ? bias : NULL, ns[k]);
            fprintf(stderr, "%-18s n=%-3zu rel err %.3g\n", c->name, ns[k], e);
            CHECK_MSG(e <= TOL, "%s n=%zu: rel err %g", c->name, ns[k], e);
        }
        CHECK_RC(spx_linear_weights_differ(&ctx, &lk, &lf, &differ), 0);
        CHECK_MSG(differ == 0, "%s: packed and fp32 layers reported different", c->name);
        if (i > 0) {   /* another case's weights differ */
            spx_linear lo;
            const spx_tensor *to = spx_file_find(f, g_cases[i - 1].name);
            CHECK_RC(spx_linear_load(&ctx, f, to, NULL, ROWS, COLS, SPX_LINEAR_KERNELS, &lo), 0);
            CHECK_RC(spx_linear_weights_differ(&ctx, &lk, &lo, &differ), 0);
            CHECK(differ == 1);
            spx_linear_release(&lo);
        }
        CHECK_RC(spx_linear_to_f32(&ctx, &lk), 0);
        CHECK(lk.kind == SPX_LINEAR_DENSE && lk.w && lk.km == NULL);
        CHECK(lk.w && memcmp(lk.w, wd[i], (size_t)ROWS * COLS * sizeof(float)) == 0);
        spx_linear_release(&lk);
        spx_linear_release(&lf);
        CHECK(!spx_linear_present(&lk));
    }
done:
    spx_file_free(f);
    for (size_t i = 0; i < NCASES; i++)
        free(wd[i]);
}

/* ---- 2. real model: kernels vs fp32 decode ----------------------------------------------------- */

static int sh(const char *cmd)
{
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    return rc;
}

/* Logits of a 24-token batched prompt then 6 single-token steps: [30 x V]. */
static int logits(const char *path, unsigned flags, float **out, size_t *V)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model *m = NULL;
    spx_state *st = NULL;
    int rc = 0;
    uint32_t tok[30];
    uint64_t s = 77;
    *out = NULL;
    SPX_TRY(rc, spx_model_open(&ctx, path, flags, &m));
    *V = m->cfg.vocab_size;
    for (int i = 0; i < 30; i++)
        tok[i] = (uint32_t)(spx_test_rand(&s) % *V);
    *out = malloc(30 * *V * sizeof(float));
    SPX_TRY(rc, spx_state_new(&ctx, m, 30, 24, &st));
    SPX_TRY(rc, spx_forward(&ctx, m, st, tok, 24, *out, NULL));
    for (int i = 24; i < 30; i++)
        SPX_TRY(rc, spx_forward(&ctx, m, st, tok + i, 1, *out + (size_t)i * *V, NULL));
done:
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", path, ctx.msg);
    spx_state_free(st);
    spx_model_free(m);
    return rc;
}

static void test_real(void)
{
    const char *spx = spx_test_env("SPX"), *shared = spx_test_env("SPX_SHARED");
    const char *dir = spx_test_tmpdir();
    static const char *const variants[] = {"f16", "p50", "p24"};
    char cmd[4096], hf[2048];
    if (!spx || !*spx || !shared || !*shared) {
        fprintf(stderr, "SPX or SPX_SHARED not set: real-model checks skipped\n");
        return;
    }
    snprintf(hf, sizeof hf, "%s/models/stories260K-hf", shared);
    snprintf(cmd, sizeof cmd, "test -f '%s/config.json'", hf);
    if (system(cmd) != 0) {
        fprintf(stderr, "%s missing: real-model checks skipped\n", hf);
        return;
    }
    snprintf(cmd, sizeof cmd,
             "'%s' convert '%s' -o '%s/f16.spx' --dtype f16 >/dev/null && "
             "'%s' prune '%s/f16.spx' -o '%s/p50.spx' --method magnitude --sparsity 0.5 --encoding bitmask >/dev/null && "
             "'%s' prune '%s/f16.spx' -o '%s/p24.spx' --method magnitude --nm 2:4 --encoding nm >/dev/null",
             spx, hf, dir, spx, dir, dir, spx, dir, dir);
    CHECK(sh(cmd) == 0);
    for (size_t v = 0; v < 3; v++) {
        float *a = NULL, *b = NULL;
        size_t V = 0, V2 = 0;
        const char *path = spx_test_path(dir, v == 0 ? "f16.spx" : v == 1 ? "p50.spx" : "p24.spx");
        CHECK_RC(logits(path, 0, &a, &V), 0);
        CHECK_RC(logits(path, SPX_MODEL_KERNELS, &b, &V2), 0);
        if (a && b && V == V2) {
            double md = 0.0, mx = 0.0;
            for (size_t i = 0; i < 30 * V; i++) {
                double d = fabs((double)a[i] - (double)b[i]);
                md = d > md || isnan(d) ? d : md;
                mx = fabs((double)a[i]) > mx ? fabs((double)a[i]) : mx;
            }
            fprintf(stderr, "stories260K %s: kernels vs fp32 max |diff| %.3g (max |logit| %.3g)\n", variants[v], md, mx);
            CHECK_MSG(md <= 1e-5 * mx + 1e-5, "%s: max |diff| %g", variants[v], md);
        }
        free(a);
        free(b);
    }
}

int spx_test_main(void)
{
    test_random();
    test_real();
    return 0;
}
