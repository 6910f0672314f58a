/* test_format_roundtrip.c: write random tensors of every dtype x encoding and metadata of every
 * type, reopen with full verification and compare exactly.
 *
 * Tolerances: F32 values and all integer/metadata values must round-trip bit-exactly. F16/BF16
 * decodes are compared bit-exactly against the independent conversion spx_f32_to_f16/bf16 of the
 * original (so the only error allowed is the half-precision rounding itself); additionally
 * |decoded - original| <= 2^-11 |original| (F16, normal range) or 2^-8 |original| (BF16), the
 * round-to-nearest bound for 11- and 8-bit significands. */
#include <dirent.h>
#include <math.h>

#include "test_format_util.h"

#define NT 24

typedef struct orig {
    char name[64];
    int dtype, enc, n, m;
    uint64_t rows, cols;
    float *w;
} orig;

static float rounded(float x, int dtype)
{
    if (dtype == SPX_DTYPE_F16)
        return spx_f16_to_f32(spx_f32_to_f16(x));
    if (dtype == SPX_DTYPE_BF16)
        return spx_bf16_to_f32(spx_f32_to_bf16(x));
    return x;
}

/* Random matrix with ~`density` nonzeros; for N:M, at most n nonzeros per group of m. */
static void random_matrix(uint64_t *s, float *w, uint64_t rows, uint64_t cols, double density, int n, int m)
{
    for (uint64_t i = 0; i < rows * cols; i++)
        w[i] = spx_test_uniform(s) < density ? (float)spx_test_normal(s) : 0.0f;
    if (m > 0)
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t c = 0; c < cols; c += (uint64_t)m) {
                int kept = 0;
                for (int j = 0; j < m; j++)
                    if (w[r * cols + c + (uint64_t)j] != 0.0f && ++kept > n)
                        w[r * cols + c + (uint64_t)j] = 0.0f;
            }
}

static int count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp."))
            n++;
    closedir(d);
    return n;
}

static const char *const strs[] = {"alpha", "", "\xc3\xa9t\xc3\xa9 \xe2\x82\xac", "<0x0A>"};
static const uint32_t a_u32[] = {0, 1, 4000000000u};
static const int32_t a_i32[] = {-5, 0, 2147483647};
static const uint64_t a_u64[] = {18446744073709551615ull, 3};
static const int64_t a_i64[] = {-9223372036854775807ll - 1, 42};
static const float a_f32[] = {1.5f, -0.0f, 3.25e-20f};
static const double a_f64[] = {3.141592653589793, -1e300};
static const uint8_t a_bool[] = {1, 0, 1, 1};

static void write_meta(spx_writer *w)
{
    CHECK_RC(spx_writer_meta_u32(w, "z.u32", 4000000000u), 0);
    CHECK_RC(spx_writer_meta_i32(w, "z.i32", -123), 0);
    CHECK_RC(spx_writer_meta_u64(w, "z.u64", 0xfedcba9876543210ull), 0);
    CHECK_RC(spx_writer_meta_i64(w, "z.i64", -1234567890123ll), 0);
    CHECK_RC(spx_writer_meta_f32(w, "z.f32", 1e-5f), 0);
    CHECK_RC(spx_writer_meta_f64(w, "z.f64", 500000.0625), 0);
    CHECK_RC(spx_writer_meta_bool(w, "z.bool", 1), 0);
    CHECK_RC(spx_writer_meta_str(w, "general.name", "t\xc3\xa9st model", 11), 0);
    CHECK_RC(spx_writer_meta_str(w, "a.empty", "", 0), 0);
    CHECK_RC(spx_writer_meta_arr(w, "arr.u32", SPX_META_U32, a_u32, 3), 0);
    CHECK_RC(spx_writer_meta_arr(w, "arr.i32", SPX_META_I32, a_i32, 3), 0);
    CHECK_RC(spx_writer_meta_arr(w, "arr.u64", SPX_META_U64, a_u64, 2), 0);
    CHECK_RC(spx_writer_meta_arr(w, "arr.i64", SPX_META_I64, a_i64, 2), 0);
    CHECK_RC(spx_writer_meta_arr(w, "arr.f32", SPX_META_F32, a_f32, 3), 0);
    CHECK_RC(spx_writer_meta_arr(w, "arr.f64", SPX_META_F64, a_f64, 2), 0);
    CHECK_RC(spx_writer_meta_arr(w, "arr.bool", SPX_META_BOOL, a_bool, 4), 0);
    CHECK_RC(spx_writer_meta_arr(w, "arr.empty", SPX_META_U32, NULL, 0), 0);
    CHECK_RC(spx_writer_meta_arr_str(w, "arr.str", strs, NULL, 4), 0);
}

static void check_meta(const spx_file *f)
{
    spx_ctx ctx = SPX_CTX_INIT;
    uint32_t u32;
    uint64_t u64;
    int64_t i64;
    double d;
    int b;
    const char *s;
    size_t len;
    CHECK(spx_file_meta_count(f) == 18);
    for (size_t i = 1; i < spx_file_meta_count(f); i++)
        CHECK(strcmp(spx_file_meta(f, i - 1)->key, spx_file_meta(f, i)->key) < 0);
    CHECK_RC(spx_meta_get_u32(&ctx, f, "z.u32", &u32), 0);
    CHECK(u32 == 4000000000u);
    CHECK_RC(spx_meta_get_i64(&ctx, f, "z.i32", &i64), 0);
    CHECK(i64 == -123);
    CHECK_RC(spx_meta_get_u32(&ctx, f, "z.i32", &u32), SPX_E_META); /* negative does not fit */
    CHECK_RC(spx_meta_get_u64(&ctx, f, "z.u64", &u64), 0);
    CHECK(u64 == 0xfedcba9876543210ull);
    CHECK_RC(spx_meta_get_i64(&ctx, f, "z.u64", &i64), SPX_E_META); /* > INT64_MAX */
    CHECK_RC(spx_meta_get_u32(&ctx, f, "z.u64", &u32), SPX_E_META);
    CHECK_RC(spx_meta_get_i64(&ctx, f, "z.i64", &i64), 0);
    CHECK(i64 == -1234567890123ll);
    CHECK_RC(spx_meta_get_f64(&ctx, f, "z.f32", &d), 0);
    CHECK(d == (double)1e-5f);
    CHECK_RC(spx_meta_get_f64(&ctx, f, "z.f64", &d), 0);
    CHECK(d == 500000.0625);
    CHECK_RC(spx_meta_get_f64(&ctx, f, "z.u32", &d), SPX_E_META);
    CHECK_RC(spx_meta_get_bool(&ctx, f, "z.bool", &b), 0);
    CHECK(b == 1);
    CHECK_RC(spx_meta_get_str(&ctx, f, "general.name", &s, &len), 0);
    CHECK(len == 11 && strcmp(s, "t\xc3\xa9st model") == 0);
    CHECK_RC(spx_meta_get_str(&ctx, f, "a.empty", &s, &len), 0);
    CHECK(len == 0 && s[0] == '\0');
    CHECK_RC(spx_meta_get_str(&ctx, f, "nope.missing", &s, &len), SPX_E_MISSING);
    CHECK(strstr(ctx.msg, "nope.missing") != NULL);
    CHECK_RC(spx_meta_get_bool(&ctx, f, "general.name", &b), SPX_E_META);

    const spx_meta *m = spx_file_meta_find(f, "arr.u32");
    CHECK(m && m->type == SPX_META_ARR && m->elem_type == SPX_META_U32 && m->count == 3);
    for (uint64_t i = 0; m && i < 3; i++)
        CHECK(spx_meta_arr_i64(m, i) == (int64_t)a_u32[i]);
    m = spx_file_meta_find(f, "arr.i32");
    for (uint64_t i = 0; m && i < 3; i++)
        CHECK(spx_meta_arr_i64(m, i) == a_i32[i]);
    m = spx_file_meta_find(f, "arr.u64");
    CHECK(m && (uint64_t)spx_meta_arr_i64(m, 0) == a_u64[0] && spx_meta_arr_i64(m, 1) == 3);
    m = spx_file_meta_find(f, "arr.i64");
    CHECK(m && spx_meta_arr_i64(m, 0) == a_i64[0] && spx_meta_arr_i64(m, 1) == 42);
    m = spx_file_meta_find(f, "arr.f32");
    for (uint64_t i = 0; m && i < 3; i++) {
        float got = (float)spx_meta_arr_f64(m, i);
        CHECK(memcmp(&got, &a_f32[i], 4) == 0); /* bit-exact, including -0.0 */
    }
    m = spx_file_meta_find(f, "arr.f64");
    CHECK(m && spx_meta_arr_f64(m, 0) == a_f64[0] && spx_meta_arr_f64(m, 1) == a_f64[1]);
    m = spx_file_meta_find(f, "arr.bool");
    for (uint64_t i = 0; m && i < 4; i++)
        CHECK(spx_meta_arr_i64(m, i) == a_bool[i]);
    m = spx_file_meta_find(f, "arr.empty");
    CHECK(m && m->count == 0);
    m = spx_file_meta_find(f, "arr.str");
    CHECK(m && m->elem_type == SPX_META_STR && m->count == 4);
    for (uint64_t i = 0; m && i < 4; i++) {
        uint32_t l;
        const char *e = spx_meta_arr_str(m, i, &l);
        CHECK(e && l == strlen(strs[i]) && memcmp(e, strs[i], l) == 0);
    }
}

/* Write the random model; returns 0 on success. */
static int write_model(const char *path, orig *o, int no)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    int rc = spx_writer_open(&ctx, path, "spx-roundtrip", &w);
    CHECK_RC(rc, 0);
    if (rc)
        return rc;
    write_meta(w);
    for (int i = 0; i < no && rc == 0; i++) {
        if (o[i].enc < 0) { /* dense via add_f32, 1-D..4-D */
            uint64_t dims[4] = {o[i].rows, o[i].cols, 1, 1};
            int ndim = (i % 4) + 1;
            if (ndim == 1)
                dims[0] = o[i].rows * o[i].cols;
            rc = spx_writer_add_f32(w, o[i].name, SPX_ROLE_ATTN, (uint32_t)i, SPX_NO_INDEX, o[i].dtype, o[i].w, ndim, dims);
        } else {
            spx_tensor t;
            void *blob = NULL;
            size_t size = 0;
            uint64_t esize = 0;
            memset(&t, 0, sizeof t);
            snprintf(t.name, sizeof t.name, "%s", o[i].name);
            t.role = SPX_ROLE_MLP;
            t.layer = (uint32_t)i;
            t.expert = (uint32_t)(i % 3);
            rc = spx_encode(&ctx, o[i].w, o[i].rows, o[i].cols, o[i].enc, o[i].dtype, o[i].n, o[i].m, &t, &blob, &size);
            CHECK_RC(spx_encode_size(&ctx, o[i].w, o[i].rows, o[i].cols, o[i].enc, o[i].dtype, o[i].n, o[i].m, &esize), 0);
            CHECK(esize == size);
            if (rc == 0)
                rc = spx_writer_add(w, &t, blob, size);
            free(blob);
        }
        CHECK_MSG(rc == 0, "%s: %s", o[i].name, spx_writer_ctx(w)->msg);
    }
    /* integer dtypes, dense only, through spx_writer_add */
    int32_t iv[6] = {-3, 0, 7, 2147483647, -2147483647 - 1, 12};
    uint8_t uv[5] = {0, 1, 128, 255, 7};
    spx_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "int.i32");
    t.dtype = SPX_DTYPE_I32;
    t.ndim = 2;
    t.dims[0] = 2;
    t.dims[1] = 3;
    t.nnz = 6;
    t.layer = t.expert = SPX_NO_INDEX;
    unsigned char ib[24];
    for (int i = 0; i < 6; i++)
        tf_wr(ib + 4 * i, 4, (uint32_t)iv[i]);
    CHECK_RC(spx_writer_add(w, &t, ib, sizeof ib), 0);
    snprintf(t.name, sizeof t.name, "int.u8");
    t.dtype = SPX_DTYPE_U8;
    t.ndim = 1;
    t.dims[0] = 5;
    t.dims[1] = 0;
    t.nnz = 5;
    CHECK_RC(spx_writer_add(w, &t, uv, sizeof uv), 0);
    if (rc == 0)
        rc = spx_writer_finish(w);
    CHECK_MSG(rc == 0, "finish: %s", spx_writer_ctx(w)->msg);
    spx_writer_free(w);
    return rc;
}

static void check_model(const char *path, orig *o, int no)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_file *f = NULL;
    int rc = spx_file_open(&ctx, path, SPX_OPEN_VERIFY_DATA, &f);
    CHECK_MSG(rc == 0, "%s", ctx.msg);
    if (rc)
        return;
    const spx_header *h = spx_file_header(f);
    CHECK(h->major == 1 && h->minor == 0 && h->alignment == 64 && strcmp(h->writer, "spx-roundtrip") == 0);
    CHECK(spx_file_tensor_count(f) == (uint32_t)no + 2);
    check_meta(f);
    for (int i = 0; i < no; i++) {
        const spx_tensor *t = spx_file_find(f, o[i].name);
        CHECK_MSG(t != NULL, "%s not found", o[i].name);
        if (!t)
            continue;
        CHECK(t == spx_file_tensor(f, (uint32_t)i));
        CHECK(t->dtype == o[i].dtype && t->encoding == (o[i].enc < 0 ? 0 : o[i].enc) && t->layer == (uint32_t)i);
        CHECK(t->data_offset % 64 == 0);
        uint64_t numel = 0;
        CHECK_RC(spx_tensor_numel(&ctx, t, &numel), 0);
        CHECK(numel == o[i].rows * o[i].cols);
        float *dec = malloc(numel * sizeof *dec);
        CHECK_RC(spx_decode_f32(&ctx, t, spx_file_data(f, t), dec), 0);
        uint64_t bad = 0, nnz = 0;
        for (uint64_t k = 0; k < numel; k++) {
            float want = rounded(o[i].w[k], o[i].dtype);
            float tol = o[i].dtype == SPX_DTYPE_F16 ? 0x1p-11f : o[i].dtype == SPX_DTYPE_BF16 ? 0x1p-8f : 0.0f;
            if (memcmp(&dec[k], &want, 4) != 0 && !(want == 0.0f && dec[k] == 0.0f))
                bad++;
            /* half-precision values here are normals, so the relative bound applies; tiny values
             * may flush to subnormal in F16: allow 2^-24 absolute */
            if (fabsf(dec[k] - o[i].w[k]) > tol * fabsf(o[i].w[k]) + (o[i].dtype == SPX_DTYPE_F16 ? 0x1p-24f : 0.0f))
                bad++;
            nnz += o[i].w[k] != 0.0f;
        }
        CHECK_MSG(bad == 0, "%s: %llu mismatches", o[i].name, (unsigned long long)bad);
        if (o[i].enc == SPX_ENC_BITMASK || o[i].enc == SPX_ENC_CSR16 || o[i].enc == SPX_ENC_CSR32)
            CHECK(t->nnz == nnz);
        free(dec);
    }
    const spx_tensor *ti = spx_file_find(f, "int.i32");
    float dv[6];
    CHECK(ti && ti->dtype == SPX_DTYPE_I32);
    if (ti) {
        CHECK_RC(spx_decode_f32(&ctx, ti, spx_file_data(f, ti), dv), 0);
        CHECK(dv[0] == -3.0f && dv[2] == 7.0f && dv[4] == -2147483648.0f);
        CHECK(tf_rd((const unsigned char *)spx_file_data(f, ti) + 12, 4) == 2147483647u);
    }
    const spx_tensor *tu = spx_file_find(f, "int.u8");
    CHECK(tu && tu->ndim == 1 && tu->data_size == 5);
    if (tu) {
        CHECK_RC(spx_decode_f32(&ctx, tu, spx_file_data(f, tu), dv), 0);
        CHECK(dv[3] == 255.0f);
    }
    CHECK(spx_file_find(f, "not.there") == NULL);
    CHECK_RC(spx_file_verify_data(&ctx, f), 0);
    spx_file_free(f);
}

static void check_writer_errors(const char *dir)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    const char *target = spx_test_path(dir, "fail.spx");
    float x[8] = {1, 0, 2, 0, 0, 3, 0, 4};
    uint64_t dims[2] = {2, 4};

    /* each failure poisons the writer; freeing removes the temporary file and nothing appears */
    struct { const char *what; int want; } cases[] = {
        {"dup_name", SPX_E_DUP_NAME}, {"bad_name", SPX_E_NAME}, {"size", SPX_E_SIZE},
        {"dup_key", SPX_E_DUP_KEY}, {"bad_key", SPX_E_ARG}, {"sparse", SPX_E_SPARSE},
        {"nm_too_dense", SPX_E_SPARSE}, {"no_finish", 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int rc = 0;
        CHECK_RC(spx_writer_open(&ctx, target, "t", &w), 0);
        CHECK(count_tmp_files(dir) == 1);
        CHECK_RC(spx_writer_add_f32(w, "w0", 0, 0, 0, SPX_DTYPE_F32, x, 2, dims), 0);
        if (!strcmp(cases[c].what, "dup_name")) {
            rc = spx_writer_add_f32(w, "w0", 0, 0, 0, SPX_DTYPE_F16, x, 2, dims);
        } else if (!strcmp(cases[c].what, "bad_name")) {
            rc = spx_writer_add_f32(w, "bad\tname", 0, 0, 0, SPX_DTYPE_F16, x, 2, dims);
        } else if (!strcmp(cases[c].what, "size")) {
            spx_tensor t;
            memset(&t, 0, sizeof t);
            snprintf(t.name, sizeof t.name, "w1");
            t.ndim = 2; t.dims[0] = 2; t.dims[1] = 4; t.nnz = 8;
            rc = spx_writer_add(w, &t, x, sizeof x - 4);
        } else if (!strcmp(cases[c].what, "dup_key")) {
            CHECK_RC(spx_writer_meta_u32(w, "k.a", 1), 0);
            rc = spx_writer_meta_u32(w, "k.a", 2);
        } else if (!strcmp(cases[c].what, "bad_key")) {
            rc = spx_writer_meta_u32(w, "K.a", 1);
        } else if (!strcmp(cases[c].what, "sparse")) {
            spx_tensor t;
            void *blob = NULL;
            size_t size;
            memset(&t, 0, sizeof t);
            snprintf(t.name, sizeof t.name, "w1");
            CHECK_RC(spx_encode(&ctx, x, 2, 4, SPX_ENC_BITMASK, SPX_DTYPE_F32, 0, 0, &t, &blob, &size), 0);
            ((unsigned char *)blob)[size - 8] = 9; /* row_offsets[1] wrong */
            rc = spx_writer_add(w, &t, blob, size);
            free(blob);
        } else if (!strcmp(cases[c].what, "nm_too_dense")) {
            void *blob = NULL;
            size_t size;
            spx_tensor t;
            float y[8] = {1, 2, 3, 0, 0, 0, 0, 1};
            rc = spx_encode(&ctx, y, 2, 4, SPX_ENC_NM, SPX_DTYPE_F32, 2, 4, &t, &blob, &size);
            CHECK(strstr(ctx.msg, "row 0") != NULL && blob == NULL);
            CHECK_RC(spx_writer_meta_u32(w, "ok.key", 1), 0); /* encode errors do not touch the writer */
        }
        CHECK_RC(rc, cases[c].want);
        if (rc < 0 && strcmp(cases[c].what, "nm_too_dense"))
            CHECK_RC(spx_writer_finish(w), rc); /* poisoned */
        spx_writer_free(w);
        w = NULL;
        CHECK_MSG(!spx_test_exists(target), "%s left the target", cases[c].what);
        CHECK_MSG(count_tmp_files(dir) == 0, "%s left a temporary file", cases[c].what);
    }
    /* target directory missing: open fails cleanly */
    CHECK_RC(spx_writer_open(&ctx, spx_test_path(dir, "no/such/dir.spx"), "t", &w), SPX_E_IO);
    CHECK(w == NULL);
}

static void check_layouts(void)
{
    /* pinned sizes from spec section 7 */
    spx_ctx ctx = SPX_CTX_INIT;
    spx_tensor t;
    uint64_t size, off[3];
    memset(&t, 0, sizeof t);
    t.dtype = SPX_DTYPE_F16; t.ndim = 2; t.dims[0] = 3; t.dims[1] = 10; t.nnz = 7;
    t.encoding = SPX_ENC_BITMASK;
    CHECK_RC(spx_encoding_layout(&ctx, &t, &size, off), 0);
    CHECK(off[0] == 0 && off[1] == 64 && off[2] == 128 && size == 152);
    t.nnz = 0;
    CHECK_RC(spx_encoding_layout(&ctx, &t, &size, off), 0);
    CHECK(off[1] == 0 && off[2] == 64 && size == 88);
    t.encoding = SPX_ENC_CSR16; t.nnz = 40;
    CHECK_RC(spx_encoding_layout(&ctx, &t, &size, off), SPX_E_ENCODING); /* nnz > numel */
    t.nnz = 30;
    CHECK_RC(spx_encoding_layout(&ctx, &t, &size, off), 0);
    CHECK(off[1] == 64 && off[2] == 128 && size == 160);
    t.encoding = SPX_ENC_NM; t.nm_n = 2; t.nm_m = 5; t.nnz = 12;
    CHECK_RC(spx_encoding_layout(&ctx, &t, &size, off), 0);
    CHECK(off[1] == 64 && size == 70);
    t.dims[1] = 70000; t.encoding = SPX_ENC_CSR16; t.nm_n = t.nm_m = 0; t.nnz = 1;
    CHECK_RC(spx_encoding_layout(&ctx, &t, &size, off), SPX_E_ENCODING);
    t.encoding = SPX_ENC_CSR32;
    CHECK_RC(spx_encoding_layout(&ctx, &t, &size, off), 0);
    CHECK(spx_dtype_parse("bf16") == SPX_DTYPE_BF16 && spx_dtype_parse("F32") == 0 && spx_dtype_parse("f64") == -1);
    CHECK(strcmp(spx_encoding_name(SPX_ENC_CSR32), "csr32") == 0 && strcmp(spx_dtype_name(9), "?") == 0);
}

/* spx_file_release drops the resident pages of a mapped tensor; the data read afterwards is the
 * same (clean file pages fault in again), and on an open_mem buffer it does nothing (a
 * MADV_DONTNEED there would zero caller memory). 1 MiB tensor: many whole pages inside it. */
static void check_release(const char *dir)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    spx_file *f = NULL;
    const char *p = spx_test_path(dir, "release.spx");
    const uint64_t n = 262144, dims[2] = {512, 512};
    float *x = malloc(n * sizeof(float));
    unsigned char *buf = NULL, *copy = NULL;
    size_t len = 0;
    for (uint64_t i = 0; i < n; i++)
        x[i] = (float)i * 0.25f - 1000.0f;
    CHECK_RC(spx_writer_open(&ctx, p, "release", &w), 0);
    CHECK_RC(spx_writer_add_f32(w, "big", SPX_ROLE_ATTN, 0, SPX_NO_INDEX, SPX_DTYPE_F32, x, 2, dims), 0);
    CHECK_RC(spx_writer_finish(w), 0);
    spx_writer_free(w);
    CHECK_RC(spx_file_open(&ctx, p, 0, &f), 0);
    if (f) {
        const spx_tensor *t = spx_file_find(f, "big");
        CHECK(t != NULL);
        if (t) {
            CHECK(memcmp(spx_file_data(f, t), x, n * sizeof(float)) == 0);
            spx_file_release(f, t);
            spx_file_release(f, t);   /* twice is harmless */
            CHECK(memcmp(spx_file_data(f, t), x, n * sizeof(float)) == 0);
        }
        CHECK_RC(spx_file_verify_data(&ctx, f), 0);
        spx_file_free(f);
        f = NULL;
    }
    buf = tf_read_file(p, &len);
    copy = buf ? malloc(len) : NULL;
    CHECK(buf && copy);
    if (buf && copy) {
        memcpy(copy, buf, len);
        CHECK_RC(spx_file_open_mem(&ctx, buf, len, "mem", 0, &f), 0);
        if (f) {
            const spx_tensor *t = spx_file_find(f, "big");
            if (t)
                spx_file_release(f, t);
            spx_file_release(NULL, t);
            CHECK(memcmp(buf, copy, len) == 0);
            spx_file_free(f);
        }
    }
    free(buf);
    free(copy);
    free(x);
}

int spx_test_main(void)
{
    const char *dir = spx_test_tmpdir();
    uint64_t seed = 12345;
    orig o[NT];
    int no = 0;
    const int dtypes[3] = {SPX_DTYPE_F32, SPX_DTYPE_F16, SPX_DTYPE_BF16};
    const int encs[6] = {-1, SPX_ENC_DENSE, SPX_ENC_BITMASK, SPX_ENC_NM, SPX_ENC_CSR16, SPX_ENC_CSR32};

    check_layouts();
    for (int d = 0; d < 3; d++)
        for (int e = 0; e < 6; e++) {
            orig *x = &o[no];
            x->dtype = dtypes[d];
            x->enc = encs[e];
            x->rows = 5 + (uint64_t)(no % 7);
            x->cols = (encs[e] == SPX_ENC_NM) ? 24 : 13 + (uint64_t)no;
            x->n = encs[e] == SPX_ENC_NM ? 2 + d % 2 : 0;
            x->m = encs[e] == SPX_ENC_NM ? (d == 1 ? 8 : 4) : 0;
            snprintf(x->name, sizeof x->name, "blk.%d.%s.%s", no, spx_dtype_name(x->dtype),
                     e == 0 ? "f32api" : spx_encoding_name(x->enc));
            x->w = malloc(x->rows * x->cols * sizeof(float));
            random_matrix(&seed, x->w, x->rows, x->cols, e == 0 || e == 1 ? 0.9 : 0.4, x->n, x->m);
            no++;
        }
    /* an all-zero sparse tensor (nnz = 0) and a fully dense "sparse" one */
    o[no] = o[2];
    snprintf(o[no].name, sizeof o[no].name, "zeros.bitmask");
    o[no].w = calloc(o[no].rows * o[no].cols, sizeof(float));
    no++;
    o[no] = o[4];
    snprintf(o[no].name, sizeof o[no].name, "full.csr16");
    o[no].w = malloc(o[no].rows * o[no].cols * sizeof(float));
    for (uint64_t k = 0; k < o[no].rows * o[no].cols; k++)
        o[no].w[k] = (float)k + 0.5f;
    no++;

    const char *p1 = spx_test_path(dir, "a.spx"), *p2 = spx_test_path(dir, "b.spx");
    if (write_model(p1, o, no) == 0) {
        CHECK(count_tmp_files(dir) == 0);
        check_model(p1, o, no);
    }
    /* determinism: the same input gives the same bytes */
    if (write_model(p2, o, no) == 0) {
        size_t l1, l2;
        unsigned char *b1 = tf_read_file(p1, &l1), *b2 = tf_read_file(p2, &l2);
        CHECK(b1 && b2 && l1 == l2 && memcmp(b1, b2, l1) == 0);
        /* the reader also accepts the same bytes from memory */
        spx_ctx ctx = SPX_CTX_INIT;
        spx_file *f = NULL;
        CHECK_RC(spx_file_open_mem(&ctx, b1, l1, "mem", SPX_OPEN_VERIFY_DATA, &f), 0);
        spx_file_free(f);
        free(b1);
        free(b2);
    }
    /* an empty file: no tensors, no metadata */
    {
        spx_ctx ctx = SPX_CTX_INIT;
        spx_writer *w = NULL;
        spx_file *f = NULL;
        const char *pe = spx_test_path(dir, "empty.spx");
        CHECK_RC(spx_writer_open(&ctx, pe, "e", &w), 0);
        CHECK_RC(spx_writer_finish(w), 0);
        spx_writer_free(w);
        CHECK_RC(spx_file_open(&ctx, pe, SPX_OPEN_VERIFY_DATA, &f), 0);
        CHECK(f && spx_file_tensor_count(f) == 0 && spx_file_meta_count(f) == 0 &&
              spx_file_header(f)->file_size == 136 && spx_file_find(f, "x") == NULL);
        spx_file_free(f);
    }
    check_writer_errors(dir);
    check_release(dir);
    for (int i = 0; i < no; i++)
        free(o[i].w);
    return 0;
}
