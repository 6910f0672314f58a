/* test_format_golden.c: golden .spx test vectors (spec section 13).
 *
 * The files in tests/golden/valid/ must open with full verification and decode to the values of tf_val()
 * (test_format_util.h: multiples of 0.25 in [-4, 4], exact in F16 and BF16, so the comparison is
 * exact for every dtype). tests/golden/invalid/<rule>.spx must fail with the code named in
 * tests/golden/invalid/EXPECTED.
 *
 * The files are regenerated into the scratch directory on every run and compared byte for byte
 * with the committed ones (the writer is deterministic and the format must not drift). With
 * SPX_REGEN_GOLDEN=1 the regenerated files are written into the source tree instead. */
#include <sys/stat.h>

#define TF_WITH_CASES
#include "test_format_util.h"

typedef struct valid_file {
    const char *name;
    int enc, dtype, n, m;
    uint64_t rows, cols;
} valid_file;

static const valid_file valid[] = {
    {"dense_f32", SPX_ENC_DENSE, SPX_DTYPE_F32, 0, 0, 3, 5},
    {"dense_f16", SPX_ENC_DENSE, SPX_DTYPE_F16, 0, 0, 3, 5},
    {"dense_bf16", SPX_ENC_DENSE, SPX_DTYPE_BF16, 0, 0, 3, 5},
    {"bitmask_f16", SPX_ENC_BITMASK, SPX_DTYPE_F16, 0, 0, 4, 12},
    {"nm_2_4_f32", SPX_ENC_NM, SPX_DTYPE_F32, 2, 4, 4, 8},
    {"csr16_f32", SPX_ENC_CSR16, SPX_DTYPE_F32, 0, 0, 4, 8},
    {"csr32_bf16", SPX_ENC_CSR32, SPX_DTYPE_BF16, 0, 0, 3, 8},
};
#define NVALID (sizeof valid / sizeof valid[0])

/* One tensor "w" plus a 1-D F32 tensor "bias" = {0.5, -1, 2} and two metadata keys. */
static int make_valid(const char *path, const valid_file *v)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    const float bias[3] = {0.5f, -1.0f, 2.0f};
    const uint64_t bdims[1] = {3};
    int rc = spx_writer_open(&ctx, path, "spx-test 1", &w);
    if (rc < 0)
        return rc;
    if (v->enc == SPX_ENC_DENSE) {
        float x[15];
        uint64_t dims[2] = {v->rows, v->cols};
        tf_matrix(x, v->rows, v->cols, 0);
        rc = spx_writer_add_f32(w, "w", SPX_ROLE_MLP, 0, SPX_NO_INDEX, v->dtype, x, 2, dims);
    } else {
        rc = tf_add_encoded(w, "w", v->rows, v->cols, v->enc, v->dtype, v->n, v->m);
    }
    if (rc == 0)
        rc = spx_writer_add_f32(w, "bias", SPX_ROLE_MLP, 0, SPX_NO_INDEX, SPX_DTYPE_F32, bias, 1, bdims);
    if (rc == 0)
        rc = spx_writer_meta_str(w, "general.architecture", "test", 4);
    if (rc == 0)
        rc = spx_writer_meta_u32(w, "test.rows", (uint32_t)v->rows);
    if (rc == 0)
        rc = spx_writer_finish(w);
    if (rc)
        fprintf(stderr, "%s: %s\n", path, spx_writer_ctx(w)->msg);
    spx_writer_free(w);
    return rc;
}

static void check_valid(const char *path, const valid_file *v)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_file *f = NULL;
    int rc = spx_file_open(&ctx, path, SPX_OPEN_VERIFY_DATA, &f);
    CHECK_MSG(rc == 0, "%s: %s", path, ctx.msg);
    if (rc)
        return;
    const spx_tensor *t = spx_file_find(f, "w"), *b = spx_file_find(f, "bias");
    uint32_t rows = 0;
    CHECK(t && b && t->encoding == v->enc && t->dtype == v->dtype && t->dims[0] == v->rows && t->dims[1] == v->cols);
    CHECK_RC(spx_meta_get_u32(&ctx, f, "test.rows", &rows), 0);
    CHECK(rows == v->rows);
    if (t && b) {
        float out[64], bo[3];
        CHECK_RC(spx_decode_f32(&ctx, t, spx_file_data(f, t), out), 0);
        for (uint64_t r = 0; r < v->rows; r++)
            for (uint64_t c = 0; c < v->cols; c++)
                CHECK_MSG(out[r * v->cols + c] == tf_val(r, c, v->enc == SPX_ENC_NM), "%s [%llu,%llu] = %g", path,
                          (unsigned long long)r, (unsigned long long)c, (double)out[r * v->cols + c]);
        CHECK_RC(spx_decode_f32(&ctx, b, spx_file_data(f, b), bo), 0);
        CHECK(bo[0] == 0.5f && bo[1] == -1.0f && bo[2] == 2.0f);
    }
    spx_file_free(f);
}

static void same_bytes(const char *a, const char *b)
{
    size_t la, lb;
    unsigned char *x = tf_read_file(a, &la), *y = tf_read_file(b, &lb);
    CHECK_MSG(x && y && la == lb && memcmp(x, y, la) == 0, "%s differs from the regenerated %s "
              "(rerun with SPX_REGEN_GOLDEN=1 only if the format change is intended)", a, b);
    free(x);
    free(y);
}

int spx_test_main(void)
{
    const char *src = spx_test_env("SPX_SRC");
    const char *tmp = spx_test_tmpdir();
    int regen = spx_test_env("SPX_REGEN_GOLDEN") && !strcmp(spx_test_env("SPX_REGEN_GOLDEN"), "1");
    char gdir[4096], vdir[4200], idir[4200], gen[4200], genv[4300], geni[4300], p[4608], q[4608];
    if (!src)
        spx_test_skip("SPX_SRC is not set (run through ctest)");
    snprintf(gdir, sizeof gdir, "%s/tests/golden", src);
    snprintf(vdir, sizeof vdir, "%s/valid", gdir);
    snprintf(idir, sizeof idir, "%s/invalid", gdir);
    snprintf(gen, sizeof gen, "%s", regen ? gdir : tmp);
    snprintf(genv, sizeof genv, "%s/valid", gen);
    snprintf(geni, sizeof geni, "%s/invalid", gen);
    mkdir(gen, 0755);
    mkdir(genv, 0755);
    mkdir(geni, 0755);

    /* regenerate */
    for (size_t i = 0; i < NVALID; i++) {
        snprintf(p, sizeof p, "%s/%s.spx", genv, valid[i].name);
        CHECK_RC(make_valid(p, &valid[i]), 0);
    }
    snprintf(p, sizeof p, "%s/base.spx", tmp);
    CHECK_RC(tf_make_base(p), 0);
    size_t blen;
    unsigned char *base = tf_read_file(p, &blen);
    CHECK(base != NULL);
    if (!base)
        return 1;
    snprintf(p, sizeof p, "%s/EXPECTED", geni);
    FILE *ex = fopen(p, "w");
    CHECK(ex != NULL);
    for (size_t i = 0; ex && i < TF_NCASES; i++) {
        if (!tf_cases[i].golden)
            continue;
        size_t l = blen;
        unsigned char *b = malloc(blen);
        memcpy(b, base, blen);
        tf_cases[i].fn(&b, &l);
        snprintf(p, sizeof p, "%s/%s.spx", geni, tf_cases[i].name);
        CHECK(tf_write_file(p, b, l) == 0);
        fprintf(ex, "%s.spx %s\n", tf_cases[i].name, spx_err_name(tf_cases[i].code));
        free(b);
    }
    if (ex)
        fclose(ex);
    free(base);
    if (regen)
        fprintf(stderr, "golden files rewritten under %s\n", gdir);

    /* check the committed files */
    for (size_t i = 0; i < NVALID; i++) {
        snprintf(p, sizeof p, "%s/%s.spx", vdir, valid[i].name);
        snprintf(q, sizeof q, "%s/%s.spx", genv, valid[i].name);
        CHECK_MSG(spx_test_exists(p), "missing golden file %s", p);
        check_valid(p, &valid[i]);
        if (!regen)
            same_bytes(p, q);
    }
    snprintf(p, sizeof p, "%s/EXPECTED", idir);
    ex = fopen(p, "r");
    CHECK_MSG(ex != NULL, "missing %s", p);
    int n = 0;
    char line[512];
    while (ex && fgets(line, sizeof line, ex)) {
        char file[256], code[128];
        if (sscanf(line, "%255s %127s", file, code) != 2)
            continue;
        snprintf(p, sizeof p, "%s/%s", idir, file);
        snprintf(q, sizeof q, "%s/%s", geni, file);
        spx_ctx ctx = SPX_CTX_INIT;
        spx_file *f = NULL;
        int rc = spx_file_open(&ctx, p, SPX_OPEN_VERIFY_DATA, &f);
        CHECK_MSG(strcmp(spx_err_name(rc), code) == 0, "%s: got %s (%s), EXPECTED says %s", file, spx_err_name(rc),
                  ctx.msg, code);
        CHECK(strstr(ctx.msg, file) != NULL);
        spx_file_free(f);
        if (!regen)
            same_bytes(p, q);
        n++;
    }
    if (ex)
        fclose(ex);
    CHECK_MSG(n >= 30, "only %d invalid golden files listed", n);
    return 0;
}
