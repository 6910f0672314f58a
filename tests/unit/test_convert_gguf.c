/* test_convert_gguf.c: the GGUF reader (spx_gguf.c) on files built byte by byte here (an
 * independent little builder, not spx's writer), every truncation and random byte flips of a valid
 * file, named errors for one broken rule at a time, Q8_0 dequantization against a double
 * reference (exact: d*q has at most 19 significant bits), and the GGUF writer read back. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spx_gguf.h"
#include "spx_half.h"
#include "spx_test.h"

/* ---- a minimal GGUF builder ---------------------------------------------------------------- */

typedef struct gb {
    unsigned char b[8192];
    size_t n;
} gb;

static void put(gb *g, const void *p, size_t n)
{
    memcpy(g->b + g->n, p, n);
    g->n += n;
}
static void u32(gb *g, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        g->b[g->n++] = (unsigned char)(v >> (8 * i));
}
static void u64(gb *g, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        g->b[g->n++] = (unsigned char)(v >> (8 * i));
}
static void str(gb *g, const char *s)
{
    u64(g, strlen(s));
    put(g, s, strlen(s));
}
static void header(gb *g, uint32_t version, uint64_t nt, uint64_t nkv)
{
    g->n = 0;
    put(g, "GGUF", 4);
    u32(g, version);
    u64(g, nt);
    u64(g, nkv);
}
static void info(gb *g, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off)
{
    str(g, name);
    u32(g, nd);
    for (uint32_t d = 0; d < nd; d++)
        u64(g, ne[d]);
    u32(g, type);
    u64(g, off);
}
static void align_to(gb *g, size_t a)
{
    while (g->n % a)
        g->b[g->n++] = 0;
}

/* The valid file: 9 keys of every kind, alignment 64, four tensors (F32 [3,2], F16 [4],
 * Q8_0 [2,32], BF16 [2]). Returns the data section offset. */
static size_t build_valid(gb *g, float q8_expect[64])
{
    static const uint64_t ne_a[2] = {2, 3}, ne_b[1] = {4}, ne_c[2] = {32, 2}, ne_d[1] = {2};
    header(g, 3, 4, 9);
    str(g, "general.architecture"); u32(g, SPX_GGUF_STRING); str(g, "llama");
    str(g, "general.alignment"); u32(g, SPX_GGUF_U32); u32(g, 64);
    str(g, "k.i8"); u32(g, SPX_GGUF_I8); g->b[g->n++] = 0xfe;
    str(g, "k.u16"); u32(g, SPX_GGUF_U16); g->b[g->n++] = 0x34; g->b[g->n++] = 0x12;
    str(g, "k.f32"); u32(g, SPX_GGUF_F32); { float f = 0.5f; uint32_t u; memcpy(&u, &f, 4); u32(g, u); }
    str(g, "k.bool"); u32(g, SPX_GGUF_BOOL); g->b[g->n++] = 1;
    str(g, "k.i64"); u32(g, SPX_GGUF_I64); u64(g, (uint64_t)-5);
    str(g, "k.arr.str"); u32(g, SPX_GGUF_ARRAY); u32(g, SPX_GGUF_STRING); u64(g, 3); str(g, "a"); str(g, ""); str(g, "xyz");
    str(g, "k.arr.i16"); u32(g, SPX_GGUF_ARRAY); u32(g, SPX_GGUF_I16); u64(g, 2); g->b[g->n++] = 0xff; g->b[g->n++] = 0xff;
    g->b[g->n++] = 7; g->b[g->n++] = 0;
    info(g, "a", 2, ne_a, SPX_GGML_F32, 0);
    info(g, "b", 1, ne_b, SPX_GGML_F16, 64);
    info(g, "c", 2, ne_c, SPX_GGML_Q8_0, 128);
    info(g, "d", 1, ne_d, SPX_GGML_BF16, 256);
    align_to(g, 64);
    size_t data = g->n;
    for (int i = 0; i < 6; i++) {
        float f = (float)i - 2.5f;
        uint32_t u;
        memcpy(&u, &f, 4);
        u32(g, u);
    }
    align_to(g, 64);
    for (int i = 0; i < 4; i++) {
        uint16_t h = spx_f32_to_f16((float)i * 0.25f);
        g->b[g->n++] = (unsigned char)h;
        g->b[g->n++] = (unsigned char)(h >> 8);
    }
    align_to(g, 64);
    for (int blk = 0; blk < 2; blk++) {   /* d = 0.1 (rounded to f16), q = k*9 - 140 clipped */
        uint16_t h = spx_f32_to_f16(blk ? 0.1f : -0.03f);
        double d = (double)spx_f16_to_f32(h);
        g->b[g->n++] = (unsigned char)h;
        g->b[g->n++] = (unsigned char)(h >> 8);
        for (int k = 0; k < 32; k++) {
            int q = k * 9 - 140;
            q = q < -128 ? -128 : q > 127 ? 127 : q;
            g->b[g->n++] = (unsigned char)(int8_t)q;
            q8_expect[blk * 32 + k] = (float)(d * q);   /* exact in fp32 */
        }
    }
    align_to(g, 64);
    g->b[g->n++] = 0x80; g->b[g->n++] = 0x3f;   /* bf16 1.0 */
    g->b[g->n++] = 0x00; g->b[g->n++] = 0xc0;   /* bf16 -2.0 */
    align_to(g, 64);
    return data;
}

static void test_valid(void)
{
    static gb g;
    float q8[64], out[64];
    spx_ctx ctx = SPX_CTX_INIT;
    spx_gguf *f = NULL;
    size_t data = build_valid(&g, q8);
    CHECK_RC(spx_gguf_open_mem(&ctx, g.b, g.n, "valid.gguf", &f), 0);
    if (!f) {
        fprintf(stderr, "%s\n", ctx.msg);
        return;
    }
    CHECK(spx_gguf_version(f) == 3 && spx_gguf_alignment(f) == 64 && spx_gguf_data_offset(f) == data);
    CHECK(spx_gguf_kv_count(f) == 9 && spx_gguf_tensor_count(f) == 4);
    uint64_t u = 0;
    double d = 0;
    const char *s = NULL;
    CHECK_RC(spx_gguf_get_u64(&ctx, f, "k.u16", &u), 0);
    CHECK(u == 0x1234);
    CHECK_RC(spx_gguf_get_u64(&ctx, f, "k.i8", &u), SPX_E_GGUF);   /* negative */
    CHECK_RC(spx_gguf_get_u64(&ctx, f, "nope", &u), SPX_E_MISSING);
    CHECK_RC(spx_gguf_get_f64(&ctx, f, "k.f32", &d), 0);
    CHECK(d == 0.5);
    CHECK_RC(spx_gguf_get_f64(&ctx, f, "k.bool", &d), SPX_E_GGUF);
    CHECK_RC(spx_gguf_get_str(&ctx, f, "general.architecture", &s, &u), 0);
    CHECK(u == 5 && memcmp(s, "llama", 5) == 0);
    CHECK(spx_gguf_find_kv(f, "k.i64")->v.i == -5 && spx_gguf_find_kv(f, "k.bool")->v.u == 1);
    const spx_gguf_kv *a = spx_gguf_find_kv(f, "k.arr.i16"), *as = spx_gguf_find_kv(f, "k.arr.str");
    CHECK(a && a->count == 2 && spx_gguf_arr_i64(a, 0) == -1 && spx_gguf_arr_f64(a, 1) == 7.0);
    const char *strs[3];
    uint64_t lens[3];
    spx_gguf_arr_strs(as, strs, lens);
    CHECK(lens[0] == 1 && lens[1] == 0 && lens[2] == 3 && memcmp(strs[2], "xyz", 3) == 0);
    const spx_gguf_tensor *ta = spx_gguf_find_tensor(f, "a"), *tc = spx_gguf_find_tensor(f, "c");
    CHECK(ta && ta->n_dims == 2 && ta->ne[0] == 2 && ta->ne[1] == 3 && ta->numel == 6 && ta->size == 24);
    CHECK(ta && (const unsigned char *)ta->data == g.b + data);
    CHECK(tc && tc->size == 68 && (const unsigned char *)tc->data == g.b + data + 128);
    CHECK(spx_gguf_find_tensor(f, "zz") == NULL);
    spx_gguf_to_f32(tc, out);
    CHECK(memcmp(out, q8, sizeof q8) == 0);
    spx_gguf_to_f32(ta, out);
    CHECK(out[0] == -2.5f && out[5] == 2.5f);
    spx_gguf_to_f32(spx_gguf_find_tensor(f, "b"), out);
    CHECK(out[3] == 0.75f);
    spx_gguf_to_f32(spx_gguf_find_tensor(f, "d"), out);
    CHECK(out[0] == 1.0f && out[1] == -2.0f);
    spx_gguf_free(f);
}

/* Every prefix shorter than the end of the last tensor fails with a message; longer ones (inside
 * the final alignment padding) open. */
static void test_truncations(void)
{
    static gb g;
    float q8[64];
    build_valid(&g, q8);
    size_t end = g.n - 60;   /* the 4-byte bf16 tensor ends 60 bytes before the padded end */
    for (size_t n = 0; n < g.n; n++) {
        spx_ctx ctx = SPX_CTX_INIT;
        spx_gguf *f = NULL;
        int rc = spx_gguf_open_mem(&ctx, g.b, n, "t.gguf", &f);
        if (n < end)
            CHECK_MSG(rc < 0 && !f && ctx.code == rc && strstr(ctx.msg, "t.gguf"), "prefix %zu: rc %d", n, rc);
        else
            CHECK_MSG(rc == 0, "prefix %zu: %s", n, ctx.msg);
        spx_gguf_free(f);
    }
}

/* Random byte flips: never a crash (ASan), and a failure always carries its code and message. */
static void test_flips(void)
{
    static gb g, m;
    float q8[64];
    uint64_t seed = 42;
    build_valid(&g, q8);
    for (int it = 0; it < 3000; it++) {
        spx_ctx ctx = SPX_CTX_INIT;
        spx_gguf *f = NULL;
        m = g;
        for (int k = 0; k < 3; k++)
            m.b[spx_test_rand(&seed) % g.n] ^= (unsigned char)(1u << (spx_test_rand(&seed) % 8));
        int rc = spx_gguf_open_mem(&ctx, m.b, m.n, "flip.gguf", &f);
        CHECK(rc == 0 ? f != NULL : (f == NULL && ctx.code == rc && ctx.msg[0]));
        spx_gguf_free(f);
    }
}

static int open_code(const gb *g, spx_ctx *ctx)
{
    spx_gguf *f = NULL;
    int rc = spx_gguf_open_mem(ctx, g->b, g->n, "case.gguf", &f);
    spx_gguf_free(f);
    return rc;
}

/* One file per rule: a single key/tensor variation of a tiny valid file. */
static void test_rules(void)
{
    static gb g;
    spx_ctx ctx = SPX_CTX_INIT;
    static const uint64_t ne8[1] = {8}, ne5[5] = {1, 1, 1, 1, 8}, ne0[2] = {8, 0}, big[3] = {1ull << 32, 1ull << 32, 256};
#define ONE_TENSOR(ver, nd, ne, type, off, pad) \
    do { header(&g, ver, 1, 1); str(&g, "general.architecture"); u32(&g, SPX_GGUF_STRING); str(&g, "llama"); \
         info(&g, "w", nd, ne, type, off); align_to(&g, 32); memset(g.b + g.n, 0, 32); g.n += (pad); } while (0)
    ONE_TENSOR(3, 1, ne8, SPX_GGML_F32, 0, 32);
    CHECK_RC(open_code(&g, &ctx), 0);
    ONE_TENSOR(3, 1, ne8, SPX_GGML_F32, 0, 31);
    CHECK_RC(open_code(&g, &ctx), SPX_E_TRUNCATED);
    CHECK(strstr(ctx.msg, "tensor w") && strstr(ctx.msg, "byte"));
    ONE_TENSOR(3, 1, ne8, SPX_GGML_F32, 0, 64);
    CHECK_RC(open_code(&g, &ctx), SPX_E_TRAILING);
    ONE_TENSOR(2, 1, ne8, SPX_GGML_F32, 0, 32);   /* v2 has the v3 layout */
    CHECK_RC(open_code(&g, &ctx), 0);
    ONE_TENSOR(1, 1, ne8, SPX_GGML_F32, 0, 32);
    CHECK_RC(open_code(&g, &ctx), SPX_E_VERSION);
    ONE_TENSOR(0x03000000u, 1, ne8, SPX_GGML_F32, 0, 32);
    CHECK_RC(open_code(&g, &ctx), SPX_E_BYTESWAPPED);
    ONE_TENSOR(3, 1, ne8, SPX_GGML_F32, 16, 32);
    CHECK_RC(open_code(&g, &ctx), SPX_E_ALIGN);
    ONE_TENSOR(3, 1, ne8, SPX_GGML_F32, 1ull << 40, 32);
    CHECK_RC(open_code(&g, &ctx), SPX_E_TRUNCATED);
    ONE_TENSOR(3, 1, ne8, SPX_GGML_F32, UINT64_MAX - 31, 32);
    CHECK_RC(open_code(&g, &ctx), SPX_E_OVERFLOW);
    ONE_TENSOR(3, 5, ne5, SPX_GGML_F32, 0, 32);
    CHECK_RC(open_code(&g, &ctx), SPX_E_DIMS);
    ONE_TENSOR(3, 2, ne0, SPX_GGML_F32, 0, 32);
    CHECK_RC(open_code(&g, &ctx), SPX_E_DIMS);
    ONE_TENSOR(3, 3, big, SPX_GGML_F32, 0, 32);
    CHECK_RC(open_code(&g, &ctx), SPX_E_OVERFLOW);
    ONE_TENSOR(3, 1, ne8, 77, 0, 32);
    CHECK_RC(open_code(&g, &ctx), SPX_E_GGUF);
    ONE_TENSOR(3, 1, ne8, 2 /* Q4_0 */, 0, 32);
    CHECK_RC(open_code(&g, &ctx), SPX_E_UNSUPPORTED);
    CHECK(strstr(ctx.msg, "Q4_0") != NULL);
    ONE_TENSOR(3, 1, ne8, SPX_GGML_Q8_0, 0, 32);
    CHECK_RC(open_code(&g, &ctx), SPX_E_SHAPE);
    ONE_TENSOR(3, 1, ne8, SPX_GGML_F32, 0, 32);
    g.b[0] = 'X';
    CHECK_RC(open_code(&g, &ctx), SPX_E_BAD_MAGIC);
    /* counts */
    header(&g, 3, 1ull << 40, 0);
    CHECK_RC(open_code(&g, &ctx), SPX_E_GGUF);
    header(&g, 3, 0, 3);
    str(&g, "a");
    CHECK_RC(open_code(&g, &ctx), SPX_E_TRUNCATED);
    /* keys */
    header(&g, 3, 0, 2);
    str(&g, "k"); u32(&g, SPX_GGUF_U8); g.b[g.n++] = 1;
    str(&g, "k"); u32(&g, SPX_GGUF_U8); g.b[g.n++] = 2;
    CHECK_RC(open_code(&g, &ctx), SPX_E_DUP_KEY);
    header(&g, 3, 0, 1);
    str(&g, "general.alignment"); u32(&g, SPX_GGUF_U32); u32(&g, 48);
    CHECK_RC(open_code(&g, &ctx), SPX_E_ALIGN);
    header(&g, 3, 0, 1);
    str(&g, "s"); u32(&g, SPX_GGUF_STRING); u64(&g, UINT64_MAX);
    CHECK_RC(open_code(&g, &ctx), SPX_E_TRUNCATED);
    header(&g, 3, 0, 1);
    str(&g, "a"); u32(&g, SPX_GGUF_ARRAY); u32(&g, SPX_GGUF_U64); u64(&g, 1ull << 61);
    CHECK_RC(open_code(&g, &ctx), SPX_E_OVERFLOW);
    header(&g, 3, 0, 1);
    str(&g, "a"); u32(&g, SPX_GGUF_ARRAY); u32(&g, SPX_GGUF_STRING); u64(&g, 1ull << 60);
    CHECK_RC(open_code(&g, &ctx), SPX_E_TRUNCATED);
    header(&g, 3, 0, 1);
    str(&g, "a"); u32(&g, SPX_GGUF_ARRAY); u32(&g, SPX_GGUF_ARRAY); u64(&g, 0);
    CHECK_RC(open_code(&g, &ctx), SPX_E_UNSUPPORTED);
    header(&g, 3, 0, 1);
    str(&g, "b"); u32(&g, SPX_GGUF_BOOL); g.b[g.n++] = 2;
    CHECK_RC(open_code(&g, &ctx), SPX_E_GGUF);
    header(&g, 3, 0, 1);
    str(&g, "t"); u32(&g, 13); g.b[g.n++] = 0;
    CHECK_RC(open_code(&g, &ctx), SPX_E_GGUF);
    /* tensors: duplicate names, overlap */
    header(&g, 3, 2, 0);
    info(&g, "w", 1, ne8, SPX_GGML_F32, 0);
    info(&g, "w", 1, ne8, SPX_GGML_F32, 32);
    align_to(&g, 32);
    memset(g.b + g.n, 0, 64);
    g.n += 64;
    CHECK_RC(open_code(&g, &ctx), SPX_E_DUP_NAME);
    header(&g, 3, 2, 0);
    info(&g, "v", 1, ne8, SPX_GGML_F32, 0);
    info(&g, "w", 1, ne8, SPX_GGML_F32, 0);
    align_to(&g, 32);
    memset(g.b + g.n, 0, 32);
    g.n += 32;
    CHECK_RC(open_code(&g, &ctx), SPX_E_OVERLAP);
#undef ONE_TENSOR
}

static void test_writer(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_gguf_writer *w = NULL;
    spx_gguf *f = NULL;
    const char *path = spx_test_path(spx_test_tmpdir(), "w.gguf");
    static const char *const toks[2] = {"\xe2\x96\x81" "a", "<s>"};
    static const uint64_t tl[2] = {4, 3}, dims_a[2] = {3, 5}, dims_b[1] = {7};
    float a[15], b[7];
    uint16_t bh[7];
    int32_t ids[2] = {-1, 9};
    struct stat st;
    for (int i = 0; i < 15; i++)
        a[i] = (float)i * 0.5f;
    for (int i = 0; i < 7; i++)
        bh[i] = spx_f32_to_f16(b[i] = (float)i);
    CHECK_RC(spx_gguf_writer_open(&ctx, path, &w), 0);
    if (!w)
        return;
    CHECK_RC(spx_gguf_writer_kv_str(w, "general.architecture", "llama", 5), 0);
    CHECK_RC(spx_gguf_writer_kv_u32(w, "x.u32", 77), 0);
    CHECK_RC(spx_gguf_writer_kv_f32(w, "x.f32", 1.25f), 0);
    CHECK_RC(spx_gguf_writer_kv_arr(w, "x.ids", SPX_GGUF_I32, ids, 2), 0);
    CHECK_RC(spx_gguf_writer_kv_arr_str(w, "x.toks", toks, tl, 2), 0);
    CHECK_RC(spx_gguf_writer_tensor(w, "a", SPX_GGML_F32, 2, dims_a), 0);
    CHECK_RC(spx_gguf_writer_tensor(w, "b", SPX_GGML_F16, 1, dims_b), 0);
    CHECK_RC(spx_gguf_writer_begin_data(w), 0);
    CHECK_RC(spx_gguf_writer_data(w, a, sizeof a), 0);
    CHECK(!spx_test_exists(path));   /* nothing at the target before finish */
    CHECK_RC(spx_gguf_writer_data(w, bh, sizeof bh), 0);
    CHECK_RC(spx_gguf_writer_finish(w, NULL), 0);
    spx_gguf_writer_free(w);
    CHECK(stat(path, &st) == 0 && st.st_size % 32 == 0);
    CHECK_RC(spx_gguf_open(&ctx, path, &f), 0);
    if (f) {
        const spx_gguf_tensor *ta = spx_gguf_find_tensor(f, "a"), *tb = spx_gguf_find_tensor(f, "b");
        const spx_gguf_kv *k = spx_gguf_find_kv(f, "x.toks");
        const char *s[2];
        uint64_t l[2];
        float out[15];
        CHECK(ta && ta->ne[0] == 5 && ta->ne[1] == 3 && memcmp(ta->data, a, sizeof a) == 0);
        CHECK(tb && tb->type == SPX_GGML_F16 && memcmp(tb->data, bh, sizeof bh) == 0);
        spx_gguf_to_f32(tb, out);
        CHECK(memcmp(out, b, sizeof b) == 0);
        CHECK(spx_gguf_find_kv(f, "x.u32")->v.u == 77 && spx_gguf_find_kv(f, "x.f32")->v.f == 1.25);
        CHECK(spx_gguf_arr_i64(spx_gguf_find_kv(f, "x.ids"), 0) == -1);
        spx_gguf_arr_strs(k, s, l);
        CHECK(l[0] == 4 && l[1] == 3 && memcmp(s[1], "<s>", 3) == 0);
    }
    spx_gguf_free(f);
    /* misuse: duplicate key, data before begin, wrong size; freeing leaves no file */
    const char *p2 = spx_test_path(spx_test_tmpdir(), "bad.gguf");
    CHECK_RC(spx_gguf_writer_open(&ctx, p2, &w), 0);
    if (!w)
        return;
    CHECK_RC(spx_gguf_writer_kv_u32(w, "k", 1), 0);
    CHECK_RC(spx_gguf_writer_kv_u32(w, "k", 2), SPX_E_DUP_KEY);
    spx_gguf_writer_free(w);
    CHECK_RC(spx_gguf_writer_open(&ctx, p2, &w), 0);
    CHECK_RC(spx_gguf_writer_tensor(w, "b", SPX_GGML_F16, 1, dims_b), 0);
    CHECK_RC(spx_gguf_writer_data(w, bh, sizeof bh), SPX_E_ARG);
    spx_gguf_writer_free(w);
    CHECK_RC(spx_gguf_writer_open(&ctx, p2, &w), 0);
    CHECK_RC(spx_gguf_writer_tensor(w, "b", SPX_GGML_F16, 1, dims_b), 0);
    CHECK_RC(spx_gguf_writer_begin_data(w), 0);
    CHECK_RC(spx_gguf_writer_data(w, bh, 6), SPX_E_ARG);
    spx_gguf_writer_free(w);
    CHECK(!spx_test_exists(p2));
}

/* Q8_0 on random blocks against d*q in double: equal exactly. */
static void test_q8_0(void)
{
    static unsigned char blob[16 * SPX_GGUF_Q8_0_BYTES];
    static float out[16 * 32];
    uint64_t seed = 7;
    spx_gguf_tensor t;
    memset(&t, 0, sizeof t);
    t.type = SPX_GGML_Q8_0;
    t.numel = 16 * 32;
    t.data = blob;
    for (size_t i = 0; i < sizeof blob; i++)
        blob[i] = (unsigned char)spx_test_rand(&seed);
    for (int b = 0; b < 16; b++) {   /* finite scales only */
        uint16_t h = spx_f32_to_f16((float)(spx_test_normal(&seed) * 0.01));
        blob[b * SPX_GGUF_Q8_0_BYTES] = (unsigned char)h;
        blob[b * SPX_GGUF_Q8_0_BYTES + 1] = (unsigned char)(h >> 8);
    }
    spx_gguf_to_f32(&t, out);
    for (int b = 0; b < 16; b++) {
        const unsigned char *p = blob + b * SPX_GGUF_Q8_0_BYTES;
        double d = (double)spx_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
        for (int k = 0; k < 32; k++)
            CHECK((double)out[b * 32 + k] == d * (double)(int8_t)p[2 + k]);
    }
}

int spx_test_main(void)
{
    test_valid();
    test_truncations();
    test_flips();
    test_rules();
    test_writer();
    test_q8_0();
    return 0;
}
