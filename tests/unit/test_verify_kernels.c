/* test_verify_kernels.c: the packed sparse / half-precision kernels (verify/spx_kernels.h) against a
 * naive double-precision loop on the same rounded weights, on every ISA path this CPU can run.
 *
 * For every layout (dense, bitmask, 2:4, CSR, panel) x value dtype (F32, F16, BF16) x shape
 * (1 row, cols not a multiple of 16/32/64/256, a row of zeros, a fully dense row, an all-zero
 * matrix), built both from a dense fp32 matrix and from the matching .spx encoding:
 *   - matvec and matmul (n = 2, 5, 20, 37: PANEL chunks of 16 and 32 tokens, and of 64 where rows
 *     hold < 64 values per panel, else 32 + 5) on fresh random inputs;
 *   - threads 1 and 2 (split forced even for tiny matrices) give bit-identical outputs;
 *   - for the row-kernel layouts, matmul gives each token the bits of matvec.
 *
 * Tolerance: |y - y_ref| <= 1e-5 * sum_c |w_rc x_c| per output. The kernels accumulate in fp32
 * (FMA) in 8..32 partial sums, each over <= cols/8 <= 512 terms here (cols <= 4096), then a
 * pairwise tree; the rounding-error bound is gamma_k * sum|w x| with k <= 512 + 5, i.e. ~3e-5
 * worst case, and ~sqrt(k) * 6e-8 ~ 1.5e-6 for independent roundings, so 1e-5 has a 7x margin on
 * the realistic error while a wrong column, value or dropped entry gives errors of order 1e-1.
 * The bound is relative to sum |w x| rather than |y| because y itself may cancel to ~0. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_half.h"
#include "spx_kernels.h"
#include "spx_test.h"

#define TOL 1e-5

static uint64_t g_seed = 0x5eed1234ull;

typedef struct shape {
    uint32_t rows, cols;
} shape;

/* Mostly cols % 4 == 0 so that 2:4 runs too, avoiding multiples of 16/32/64/256; the odd column
 * counts at the end (1, 17, 33, 513) are skipped by 2:4 only. */
static const shape g_shapes[] = {
    {1, 4}, {1, 100}, {3, 20}, {7, 36}, {17, 100}, {33, 260}, {5, 516}, {64, 1000}, {40, 4096}, {2, 300}, {300, 64},
    {5, 1}, {3, 17}, {9, 33}, {4, 513},
};

static float round_to(float f, int dt)
{
    if (dt == SPX_DTYPE_F16)
        return spx_f16_to_f32(spx_f32_to_f16(f));
    if (dt == SPX_DTYPE_BF16)
        return spx_bf16_to_f32(spx_f32_to_bf16(f));
    return f;
}

/* A nonzero random weight, exactly representable in dt. */
static float rand_w(int dt)
{
    float v;
    do
        v = round_to((float)spx_test_normal(&g_seed), dt);
    while (v == 0.0f);
    return v;
}

/* Matrix for `layout`: DENSE ~90% nonzeros, BITMASK and PANEL 50%, CSR 10%, NM24 a 2:4 pattern
 * with some groups holding 1 or 0 values. Row 0 is all zero and row 1 fully dense (for NM24: both
 * positions of every group) when rows > 2; `zero` gives the all-zero matrix. */
static void gen_matrix(float *w, uint32_t rows, uint32_t cols, int layout, int dt, int zero)
{
    double density = layout == SPX_KL_DENSE ? 0.9 : layout == SPX_KL_CSR ? 0.1 : 0.5;
    memset(w, 0, (size_t)rows * cols * sizeof *w);
    if (zero)
        return;
    for (uint32_t r = 0; r < rows; r++) {
        float *wr = w + (size_t)r * cols;
        int special = rows > 2 ? (int)r : -1;
        if (special == 0)
            continue;
        if (layout == SPX_KL_NM24) {
            for (uint32_t g = 0; g < cols / 4; g++) {
                unsigned a = (unsigned)(spx_test_rand(&g_seed) % 4), b = (a + 1 + (unsigned)(spx_test_rand(&g_seed) % 3)) % 4;
                double u = spx_test_uniform(&g_seed);
                if (special == 1 || u < 0.8) {
                    wr[4 * g + a] = rand_w(dt);
                    wr[4 * g + b] = rand_w(dt);
                } else if (u < 0.9) {
                    wr[4 * g + a] = rand_w(dt);
                }
            }
            continue;
        }
        for (uint32_t c = 0; c < cols; c++)
            if (special == 1 || spx_test_uniform(&g_seed) < density)
                wr[c] = rand_w(dt);
    }
}

static void rand_vec(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)spx_test_normal(&g_seed);
}

/* Check Y [n x rows] against the double-precision reference on w. Returns failures (printed once). */
static int check_out(const char *what, const float *w, uint32_t rows, uint32_t cols, const float *X, size_t n,
                     const float *Y)
{
    int bad = 0;
    for (size_t t = 0; t < n; t++) {
        const float *x = X + t * cols;
        for (uint32_t r = 0; r < rows; r++) {
            double ref = 0, abs = 0;
            for (uint32_t c = 0; c < cols; c++) {
                double p = (double)w[(size_t)r * cols + c] * (double)x[c];
                ref += p;
                abs += fabs(p);
            }
            double y = (double)Y[t * rows + r], err = fabs(y - ref);
            if (!(err <= TOL * abs)) {
                if (bad++ == 0)
                    fprintf(stderr, "%s: token %zu row %u: got %.9g want %.9g (err %.3g, sum|wx| %.3g)\n", what, t, r, y,
                            ref, err, abs);
            }
        }
    }
    return bad;
}

static int enc_for(int layout, uint32_t variant)
{
    switch (layout) {
    case SPX_KL_DENSE: return SPX_ENC_DENSE;
    case SPX_KL_BITMASK: return SPX_ENC_BITMASK;
    case SPX_KL_NM24: return SPX_ENC_NM;
    case SPX_KL_CSR: return variant % 2 ? SPX_ENC_CSR32 : SPX_ENC_CSR16;
    default: return variant % 2 ? SPX_ENC_CSR32 : SPX_ENC_BITMASK;
    }
}

/* One kmat: products checked against the reference, across thread counts and matvec/matmul. */
static void check_kmat(const char *what, const spx_kmat *m, const float *w, uint32_t rows, uint32_t cols)
{
    static const size_t ns[] = {2, 5, 20, 37};
    const size_t nmax = 37;
    float *X = malloc(nmax * cols * sizeof *X), *Y1 = malloc(nmax * rows * sizeof *Y1);
    float *Y2 = malloc(nmax * rows * sizeof *Y2), *y = malloc(rows * sizeof *y);
    char label[256];
    int same_as_matvec = !(spx_kmat_layout(m) == SPX_KL_PANEL ||
                           (spx_kmat_layout(m) == SPX_KL_DENSE && spx_kmat_dtype(m) == SPX_DTYPE_F32));
    CHECK(spx_kmat_rows(m) == rows && spx_kmat_cols(m) == cols);
    /* matvec, x exactly `cols` long so that ASan sees any read past it */
    float *x = malloc(cols * sizeof *x);
    rand_vec(x, cols);
    spx_kern_set_threads(1);
    spx_kmat_matvec(m, x, Y1);
    spx_kern_set_threads(2);
    spx_kmat_matvec(m, x, Y2);
    snprintf(label, sizeof label, "%s matvec", what);
    CHECK_MSG(check_out(label, w, rows, cols, x, 1, Y1) == 0, "%s", label);
    CHECK_MSG(memcmp(Y1, Y2, rows * sizeof *Y1) == 0, "%s: threads 1 and 2 differ", label);
    free(x);
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
        size_t n = ns[i];
        rand_vec(X, n * cols);
        spx_kern_set_threads(1);
        spx_kmat_matmul(m, X, n, Y1);
        spx_kern_set_threads(2);
        spx_kmat_matmul(m, X, n, Y2);
        snprintf(label, sizeof label, "%s matmul n=%zu", what, n);
        CHECK_MSG(check_out(label, w, rows, cols, X, n, Y1) == 0, "%s", label);
        CHECK_MSG(memcmp(Y1, Y2, n * rows * sizeof *Y1) == 0, "%s: threads 1 and 2 differ", label);
        if (same_as_matvec) {
            for (size_t t = 0; t < n; t++) {
                spx_kmat_matvec(m, X + t * cols, y);
                CHECK_MSG(memcmp(y, Y1 + t * rows, rows * sizeof *y) == 0, "%s: token %zu differs from matvec", label, t);
            }
        }
    }
    free(X);
    free(Y1);
    free(Y2);
    free(y);
}

static void test_layouts(const char *isa)
{
    static const int layouts[] = {SPX_KL_DENSE, SPX_KL_BITMASK, SPX_KL_NM24, SPX_KL_CSR, SPX_KL_PANEL};
    static const int dtypes[] = {SPX_DTYPE_F32, SPX_DTYPE_F16, SPX_DTYPE_BF16};
    const size_t nshape = sizeof g_shapes / sizeof g_shapes[0];
    for (size_t li = 0; li < sizeof layouts / sizeof layouts[0]; li++)
        for (size_t di = 0; di < sizeof dtypes / sizeof dtypes[0]; di++)
            for (size_t si = 0; si <= nshape; si++) {
                const int layout = layouts[li], dt = dtypes[di], zero = si == nshape;
                const shape sh = zero ? g_shapes[3] : g_shapes[si];
                if (layout == SPX_KL_NM24 && sh.cols % 4)
                    continue;
                float *w = malloc((size_t)sh.rows * sh.cols * sizeof *w);
                spx_ctx ctx = SPX_CTX_INIT;
                spx_kmat *m = NULL;
                spx_tensor t;
                void *blob = NULL;
                size_t bsize = 0;
                char what[160];
                gen_matrix(w, sh.rows, sh.cols, layout, dt, zero);

                snprintf(what, sizeof what, "[%s] %s %s %ux%u%s (from dense)", isa, spx_klayout_name(layout),
                         spx_dtype_name(dt), sh.rows, sh.cols, zero ? " zero" : "");
                CHECK_RC(spx_kmat_from_dense(&ctx, w, sh.rows, sh.cols, layout, dt, &m), 0);
                if (m) {
                    uint64_t nz = 0, numel = (uint64_t)sh.rows * sh.cols;
                    for (uint64_t i = 0; i < numel; i++)
                        nz += w[i] != 0.0f;
                    uint64_t want = layout == SPX_KL_DENSE ? numel : layout == SPX_KL_NM24 ? numel / 2 : nz;
                    CHECK(spx_kmat_layout(m) == layout && spx_kmat_dtype(m) == dt);
                    CHECK_MSG(spx_kmat_nnz(m) == want, "%s: nnz %llu, want %llu", what,
                              (unsigned long long)spx_kmat_nnz(m), (unsigned long long)want);
                    CHECK(spx_kmat_bytes(m) > 0);
                    check_kmat(what, m, w, sh.rows, sh.cols);
                }
                spx_kmat_free(m);
                m = NULL;

                int enc = enc_for(layout, (uint32_t)si);
                snprintf(what, sizeof what, "[%s] %s %s %ux%u%s (from %s tensor)", isa, spx_klayout_name(layout),
                         spx_dtype_name(dt), sh.rows, sh.cols, zero ? " zero" : "", spx_encoding_name(enc));
                CHECK_RC(spx_encode(&ctx, w, sh.rows, sh.cols, enc, dt, 2, 4, &t, &blob, &bsize), 0);
                if (blob) {
                    snprintf(t.name, sizeof t.name, "w%zu", si);
                    CHECK_RC(spx_kmat_from_tensor(&ctx, &t, blob, layout, &m), 0);
                    if (m)
                        check_kmat(what, m, w, sh.rows, sh.cols);
                }
                if (ctx.code)
                    fprintf(stderr, "%s: %s\n", what, ctx.msg);
                spx_kmat_free(m);
                free(blob);
                free(w);
            }
}

/* AUTO layout choice from the encoding and density. */
static void test_auto(void)
{
    static const struct { int enc; int layout; int want; } cases[] = {
        {SPX_ENC_DENSE, SPX_KL_DENSE, SPX_KL_DENSE},       /* dense stays dense */
        {SPX_ENC_NM, SPX_KL_NM24, SPX_KL_NM24},            /* 2:4 */
        {SPX_ENC_BITMASK, SPX_KL_BITMASK, SPX_KL_BITMASK}, /* 50% */
        {SPX_ENC_CSR16, SPX_KL_CSR, SPX_KL_CSR},           /* 10% */
        {SPX_ENC_CSR32, SPX_KL_DENSE, SPX_KL_DENSE},       /* 90% stored sparse -> dense */
    };
    const uint32_t rows = 40, cols = 64;
    float *w = malloc(rows * cols * sizeof *w);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        spx_ctx ctx = SPX_CTX_INIT;
        spx_tensor t;
        void *blob = NULL;
        size_t bsize = 0;
        spx_kmat *m = NULL;
        gen_matrix(w, rows, cols, cases[i].layout, SPX_DTYPE_F16, 0);
        CHECK_RC(spx_encode(&ctx, w, rows, cols, cases[i].enc, SPX_DTYPE_F16, 2, 4, &t, &blob, &bsize), 0);
        strcpy(t.name, "auto");
        CHECK_RC(spx_kmat_from_tensor(&ctx, &t, blob, SPX_KL_AUTO, &m), 0);
        CHECK_MSG(m && spx_kmat_layout(m) == cases[i].want, "case %zu: layout %s, want %s", i,
                  m ? spx_klayout_name(spx_kmat_layout(m)) : "none", spx_klayout_name(cases[i].want));
        if (m)
            check_kmat("auto", m, w, rows, cols);
        spx_kmat_free(m);
        free(blob);
    }
    free(w);
}

static void test_errors(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_kmat *m = (spx_kmat *)&ctx;   /* must be reset to NULL on failure */
    float w[2 * 8] = {1, 2, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    CHECK_RC(spx_kmat_from_dense(&ctx, w, 2, 8, SPX_KL_NM24, SPX_DTYPE_F16, &m), SPX_E_SPARSE);
    CHECK(m == NULL);
    CHECK(strstr(ctx.msg, "row 0") != NULL);
    CHECK_RC(spx_kmat_from_dense(&ctx, w, 2, 7, SPX_KL_NM24, SPX_DTYPE_F16, &m), SPX_E_SHAPE);
    CHECK_RC(spx_kmat_from_dense(&ctx, w, 2, 8, SPX_KL_AUTO, SPX_DTYPE_F16, &m), SPX_E_ARG);
    CHECK_RC(spx_kmat_from_dense(&ctx, w, 2, 8, 99, SPX_DTYPE_F16, &m), SPX_E_ARG);
    CHECK_RC(spx_kmat_from_dense(&ctx, w, 2, 8, SPX_KL_DENSE, SPX_DTYPE_I32, &m), SPX_E_DTYPE);
    CHECK_RC(spx_kmat_from_dense(&ctx, w, 0, 8, SPX_KL_DENSE, SPX_DTYPE_F32, &m), SPX_E_SHAPE);
    float *wide = calloc(SPX_KL_CSR_MAX_COLS + 4, sizeof *wide);
    wide[SPX_KL_CSR_MAX_COLS + 2] = 1.0f;
    CHECK_RC(spx_kmat_from_dense(&ctx, wide, 1, SPX_KL_CSR_MAX_COLS + 4, SPX_KL_CSR, SPX_DTYPE_F16, &m), SPX_E_SHAPE);
    /* a wide matrix still works in the other sparse layouts */
    CHECK_RC(spx_kmat_from_dense(&ctx, wide, 1, SPX_KL_CSR_MAX_COLS + 4, SPX_KL_BITMASK, SPX_DTYPE_F16, &m), 0);
    if (m)
        check_kmat("wide bitmask", m, wide, 1, SPX_KL_CSR_MAX_COLS + 4);
    spx_kmat_free(m);
    free(wide);

    /* corrupt CSR blob: a column index out of range must be caught by validation, not read */
    spx_tensor t;
    void *blob = NULL;
    size_t bsize = 0;
    CHECK_RC(spx_encode(&ctx, w, 2, 8, SPX_ENC_CSR16, SPX_DTYPE_F32, 0, 0, &t, &blob, &bsize), 0);
    strcpy(t.name, "corrupt");
    uint64_t off[3], size;
    CHECK_RC(spx_encoding_layout(&ctx, &t, &size, off), 0);
    uint16_t bad = 900;
    memcpy((unsigned char *)blob + off[1], &bad, sizeof bad);
    CHECK_RC(spx_kmat_from_tensor(&ctx, &t, blob, SPX_KL_CSR, &m), SPX_E_SPARSE);
    CHECK(m == NULL && strstr(ctx.msg, "corrupt") != NULL);
    t.ndim = 1;
    CHECK_RC(spx_kmat_from_tensor(&ctx, &t, blob, SPX_KL_CSR, &m), SPX_E_SHAPE);
    free(blob);
    spx_kmat_free(NULL);

    CHECK_RC(spx_kern_set_isa(&ctx, 99), SPX_E_ARG);
    CHECK(strcmp(spx_klayout_name(SPX_KL_NM24), "nm24") == 0 && strcmp(spx_klayout_name(42), "?") == 0);
}

int spx_test_main(void)
{
    static const int isas[] = {SPX_KISA_PORTABLE, SPX_KISA_AVX2, SPX_KISA_AVX512};
    spx_ctx ctx = SPX_CTX_INIT;
    spx_kern_set_min_parallel(0);   /* split even the small test matrices over the threads */
    for (size_t i = 0; i < sizeof isas / sizeof isas[0]; i++) {
        if (!spx_kern_isa_supported(isas[i])) {
            fprintf(stderr, "note: ISA path %d not supported on this CPU, not tested\n", isas[i]);
            continue;
        }
        CHECK_RC(spx_kern_set_isa(&ctx, isas[i]), 0);
        test_layouts(spx_kern_isa());
    }
    CHECK_RC(spx_kern_set_isa(&ctx, SPX_KISA_AUTO), 0);
    fprintf(stderr, "kernels in use: %s\n", spx_kern_isa());
    test_auto();
    test_errors();
    spx_kern_shutdown();
    return 0;
}
