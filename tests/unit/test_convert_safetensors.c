/* test_convert_safetensors.c: the safetensors validator against a matrix of malformed files built
 * here, truncation at every byte of a valid file, and reading of valid files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_half.h"
#include "spx_safetensors.h"
#include "spx_test.h"
#include "test_convert_util.h"

#define VALID_HDR                                                                                     \
    "{\"__metadata__\":{\"format\":\"pt\"},"                                                          \
    "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"                              \
    "\"b\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[16,22]},"                              \
    "\"z\":{\"dtype\":\"BF16\",\"shape\":[0,5],\"data_offsets\":[22,22]}}"

/* Open a heap copy of exactly len bytes (so ASan sees any read past it); expect `code` and every
 * needle (may be NULL) in the message. */
static void expect_fail(const char *what, const unsigned char *img, size_t len, int code, const char *n1,
                        const char *n2)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_st_file *f = NULL;
    unsigned char *copy = malloc(len ? len : 1);
    if (len)
        memcpy(copy, img, len);
    int rc = spx_st_open_mem(&ctx, copy, len, "t.safetensors", &f);
    CHECK_MSG(rc == code, "%s: rc %s, want %s (%s)", what, spx_err_name(rc), spx_err_name(code), ctx.msg);
    CHECK_MSG(f == NULL, "%s: result must be NULL on failure", what);
    CHECK_MSG(strstr(ctx.msg, "t.safetensors") != NULL, "%s: message does not name the file: %s", what, ctx.msg);
    CHECK_MSG(!n1 || strstr(ctx.msg, n1), "%s: message lacks '%s': %s", what, n1, ctx.msg);
    CHECK_MSG(!n2 || strstr(ctx.msg, n2), "%s: message lacks '%s': %s", what, n2, ctx.msg);
    spx_st_free(f);
    free(copy);
}

static void expect_hdr(const char *what, const char *hdr, size_t data_len, int code, const char *n1, const char *n2)
{
    size_t len;
    unsigned char *img = tcu_st_image(hdr, 0, data_len, 0, &len);
    expect_fail(what, img, len, code, n1, n2);
    free(img);
}

static void test_matrix(void)
{
    const int SE = SPX_E_SAFETENSORS, UN = SPX_E_UNSUPPORTED;
    unsigned char small[8] = {1, 2, 3};
    expect_fail("shorter than 8 bytes", small, 5, SE, "byte 0", NULL);
    expect_fail("empty file", small, 0, SE, NULL, NULL);
    /* N = 100,000,001 > limit */
    unsigned char big[16] = {0x01, 0xe1, 0xf5, 0x05, 0, 0, 0, 0, '{', '}'};
    expect_fail("header length over limit", big, sizeof big, SE, "100000001", "limit");
    unsigned char past[16] = {0xe8, 0x03, 0, 0, 0, 0, 0, 0, '{', '}'};
    expect_fail("header length > file size", past, sizeof past, SE, "1000", NULL);
    unsigned char huge[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_fail("header length 2^64-1", huge, sizeof huge, SE, "limit", NULL);
    expect_hdr("zero-length header", "", 0, SE, "JSON", NULL);
    expect_hdr("bad JSON", "{\"a\":", 0, SE, "JSON", "byte");
    expect_hdr("not an object", "[1,2]", 0, SE, "object", NULL);
    expect_hdr("garbage after JSON", "{} x", 0, SE, "byte 11", NULL);
    expect_hdr("invalid UTF-8", "{\"\xff\":1}", 0, SE, "UTF-8", "byte 10");
    expect_hdr("overlong UTF-8", "{\"\xc0\xaf\":1}", 0, SE, "UTF-8", NULL);
    expect_hdr("raw control char", "{\"a\x01\":1}", 0, SE, "byte 11", NULL);
    {
        size_t len;
        unsigned char *img = tcu_st_image("{\"a\":1}", 0, 0, 0, &len);
        img[10] = 0;   /* NUL inside the header */
        expect_fail("NUL in header", img, len, SE, "byte 10", NULL);
        free(img);
    }
    expect_hdr("hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                       "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[20,24]}}", 24, SE, "hole", "'b'");
    expect_hdr("hole at start", "{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, SE, "hole",
               "byte");
    expect_hdr("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                          "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20, SE, "overlaps", "'a'");
    expect_hdr("same range twice", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                   "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, SE, "overlaps", NULL);
    expect_hdr("trailing bytes", VALID_HDR, 26, SE, "4 trailing bytes", "byte");
    expect_hdr("data runs past end", VALID_HDR, 20, SE, "'b'", "past the end");
    expect_hdr("size != shape x dtype", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", 16, SE,
               "'a'", "shape x F32");
    expect_hdr("shape overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,16]}}",
               16, SE, "overflows", "'a'");
    expect_hdr("shape x dtype overflow", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4294967296,1073741824],\"data_offsets\":[0,8]}}",
               8, SE, "overflows", NULL);
    expect_hdr("negative shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1,2],\"data_offsets\":[0,8]}}", 8, SE,
               "shape[0]", "'a'");
    expect_hdr("non-integer shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, SE,
               "shape[0]", NULL);
    expect_hdr("string shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8, SE,
               "shape[0]", NULL);
    expect_hdr("shape > 2^53", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,18014398509481984],\"data_offsets\":[0,0]}}", 0, SE,
               "shape[1]", NULL);
    expect_hdr("shape not an array", "{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", 16, SE,
               "shape", NULL);
    expect_hdr("unknown dtype", "{\"a\":{\"dtype\":\"Q4_K\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, UN, "Q4_K", "'a'");
    expect_hdr("dtype not a string", "{\"a\":{\"dtype\":7,\"shape\":[4],\"data_offsets\":[0,4]}}", 4, SE, "dtype", NULL);
    expect_hdr("duplicate tensor", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                                   "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, SE, "duplicate", "'a'");
    expect_hdr("duplicate field", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, SE,
               "duplicate field", NULL);
    expect_hdr("duplicate __metadata__", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, SE, "duplicate", NULL);
    expect_hdr("duplicate metadata key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, SE, "duplicate", "'k'");
    expect_hdr("metadata value not string", "{\"__metadata__\":{\"total\":5}}", 0, SE, "not a string", "total");
    expect_hdr("metadata not object", "{\"__metadata__\":[]}", 0, SE, "not an object", NULL);
    expect_hdr("missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, SE, "missing field 'data_offsets'",
               NULL);
    expect_hdr("unknown field", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, SE,
               "unknown field 'x'", NULL);
    expect_hdr("entry not object", "{\"a\":[1]}", 0, SE, "not an object", NULL);
    expect_hdr("begin > end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,0]}}", 16, SE,
               "begin 16 > end 0", NULL);
    expect_hdr("three offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 8, SE,
               "data_offsets", NULL);
    expect_hdr("negative offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 0, SE,
               "data_offsets", NULL);
    expect_hdr("sub-byte leftover", "{\"a\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", 2, SE,
               "whole bytes", NULL);
    expect_hdr("too many dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, UN,
               "dimensions", NULL);
}

/* A valid file cut at every length must fail cleanly (and never read past the cut). */
static void test_truncation(void)
{
    size_t len;
    unsigned char *img = tcu_st_image(VALID_HDR, 3, 22, 0, &len);
    spx_ctx ctx = SPX_CTX_INIT;
    spx_st_file *f = NULL;
    CHECK_RC(spx_st_open_mem(&ctx, img, len, "t.safetensors", &f), 0);
    spx_st_free(f);
    int bad = 0;
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1);
        memcpy(copy, img, cut);
        f = NULL;
        spx_err_clear(&ctx);
        int rc = spx_st_open_mem(&ctx, copy, cut, "t.safetensors", &f);
        if (rc != SPX_E_SAFETENSORS || f != NULL || !strstr(ctx.msg, "t.safetensors")) {
            if (bad++ < 5)
                fprintf(stderr, "cut at %zu: rc %s: %s\n", cut, spx_err_name(rc), ctx.msg);
        }
        spx_st_free(f);
        free(copy);
    }
    CHECK_MSG(bad == 0, "%d truncations were not rejected cleanly", bad);
    free(img);
}

static void test_valid(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_st_file *f = NULL;
    size_t len;
    unsigned char *img = tcu_st_image(VALID_HDR, 5, 22, 0, &len);
    const float av[4] = {1.5f, -2.0f, 0.25f, 3e-3f};
    const float bv[3] = {1.0f, -0.5f, 65504.0f};
    memcpy(img + len - 22, av, 16);
    for (int i = 0; i < 3; i++) {
        uint16_t h = spx_f32_to_f16(bv[i]);
        memcpy(img + len - 6 + 2 * i, &h, 2);
    }
    const char *path = spx_test_path(spx_test_tmpdir(), "valid.safetensors");
    CHECK(tcu_write_file(path, img, len) == 0);
    CHECK_RC(spx_st_open(&ctx, path, &f), 0);
    if (!f) {
        free(img);
        return;
    }
    CHECK(spx_st_count(f) == 3);
    CHECK(spx_st_header_len(f) == strlen(VALID_HDR) + 5);
    const spx_st_tensor *a = spx_st_find(f, "a"), *b = spx_st_find(f, "b"), *z = spx_st_find(f, "z");
    CHECK(a && b && z && !spx_st_find(f, "c") && !spx_st_find(f, "__metadata__"));
    if (a && b && z) {
        CHECK(a->dtype == SPX_ST_F32 && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 2 && a->numel == 4);
        CHECK(a->file_offset == 8 + strlen(VALID_HDR) + 5);
        CHECK(b->dtype == SPX_ST_F16 && b->numel == 3 && b->begin == 16 && b->end == 22);
        CHECK(z->numel == 0 && z->begin == 22 && z->end == 22);
        CHECK(spx_st_tensor_at(f, 0) == a);   /* offset order */
        float out[4];
        CHECK_RC(spx_st_to_f32(&ctx, f, a, out), 0);
        for (int i = 0; i < 4; i++)
            CHECK(out[i] == av[i]);
        CHECK_RC(spx_st_to_f32(&ctx, f, b, out), 0);
        for (int i = 0; i < 3; i++)   /* all three are exact in F16 */
            CHECK(out[i] == bv[i]);
        CHECK(memcmp(spx_st_data(f, a), av, 16) == 0);
    }
    CHECK(spx_st_meta_count(f) == 1 && spx_st_meta_find(f, "format") && strcmp(spx_st_meta_find(f, "format"), "pt") == 0);
    CHECK(spx_st_meta_find(f, "nope") == NULL);
    spx_st_free(f);
    free(img);

    /* empty header, and known-but-unconvertible dtypes open fine and refuse to decode */
    f = NULL;
    img = tcu_st_image("{}", 6, 0, 0, &len);
    CHECK_RC(spx_st_open_mem(&ctx, img, len, "e", &f), 0);
    CHECK(f && spx_st_count(f) == 0);
    spx_st_free(f);
    free(img);
    f = NULL;
    img = tcu_st_image("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]},"
                       "\"q\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[4,6]}}", 0, 6, 0, &len);
    CHECK_RC(spx_st_open_mem(&ctx, img, len, "fp8.safetensors", &f), 0);
    if (f) {
        float out[4];
        CHECK_RC(spx_st_to_f32(&ctx, f, spx_st_find(f, "w"), out), SPX_E_UNSUPPORTED);
        CHECK(strstr(ctx.msg, "F8_E4M3") && strstr(ctx.msg, "'w'"));
        CHECK_RC(spx_st_to_f32(&ctx, f, spx_st_find(f, "q"), out), SPX_E_UNSUPPORTED);
    }
    spx_st_free(f);
    free(img);

    /* F64 decode: in-range values exact to F32 rounding, out-of-range -> inf */
    f = NULL;
    img = tcu_st_image("{\"d\":{\"dtype\":\"F64\",\"shape\":[3],\"data_offsets\":[0,24]}}", 0, 24, 0, &len);
    double dv[3] = {0.1, -1e300, 2.0};
    memcpy(img + len - 24, dv, 24);
    CHECK_RC(spx_st_open_mem(&ctx, img, len, "d", &f), 0);
    if (f) {
        float out[3];
        CHECK_RC(spx_st_to_f32(&ctx, f, spx_st_find(f, "d"), out), 0);
        CHECK(out[0] == 0.1f && isinf(out[1]) && out[1] < 0 && out[2] == 2.0f);
    }
    spx_st_free(f);
    free(img);

    CHECK(spx_st_dtype_parse("BF16", 4) == SPX_ST_BF16 && spx_st_dtype_parse("BF1", 3) < 0);
    CHECK(spx_st_dtype_bits(SPX_ST_F6_E2M3) == 6 && strcmp(spx_st_dtype_name(SPX_ST_F8_E5M2), "F8_E5M2") == 0);
    spx_st_free(NULL);
}

int spx_test_main(void)
{
    test_matrix();
    test_truncation();
    test_valid();
    return 0;
}
