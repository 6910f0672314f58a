/* test_format_corrupt.c: the corrupt-file matrix. A small valid file is generated, then for each
 * rule of spec section 9 one broken variant must fail with its own pinned code (CRCs are
 * recomputed after mutations that target checks behind them). Also: truncation at every byte,
 * checks that cheap open skips data, error messages name the file/field/offset, and a random
 * mutation fuzz pass that must never crash (run under ASan+UBSan too). */
#define TF_WITH_CASES
#include "test_format_util.h"

static int open_buf(const unsigned char *b, size_t len, unsigned flags, spx_ctx *ctx)
{
    spx_file *f = NULL;
    int rc = spx_file_open_mem(ctx, b, len, "case.spx", flags, &f);
    if ((rc == 0) != (f != NULL))
        rc = SPX_E_INTERNAL;
    spx_file_free(f);
    return rc;
}

static unsigned char *dup_buf(const unsigned char *b, size_t len)
{
    unsigned char *c = malloc(len + 1);
    if (!c)
        abort();   /* test harness: out of memory is not a finding */
    memcpy(c, b, len);
    return c;
}

int spx_test_main(void)
{
    const char *dir = spx_test_tmpdir();
    const char *path = spx_test_path(dir, "base.spx");
    spx_ctx ctx = SPX_CTX_INIT;
    size_t len;
    unsigned char *base;
    uint64_t seed = 99;

    CHECK_RC(tf_make_base(path), 0);
    base = tf_read_file(path, &len);
    CHECK(base != NULL && len >= 256);
    if (!base || len < 256)   /* also tells the optimizer the header writes below are in bounds */
        return 1;
    CHECK_RC(open_buf(base, len, SPX_OPEN_VERIFY_DATA, &ctx), 0);
    /* preconditions the byte-level mutations rely on */
    CHECK(tf_rd(tf_rec(base, 0) + TF_R_SIZE, 8) == 60);
    CHECK(tf_rd(tf_rec(base, 1) + TF_R_NNZ, 8) * 2 <= 64 && tf_rd(tf_rec(base, 1) + TF_R_SIZE, 8) > 128);
    CHECK(tf_rd(tf_rec(base, 2) + TF_R_NNZ, 8) == 16);

    for (size_t i = 0; i < TF_NCASES; i++) {
        const tf_case *c = &tf_cases[i];
        size_t l = len;
        unsigned char *b = dup_buf(base, len);
        c->fn(&b, &l);
        spx_err_clear(&ctx);
        int rc = open_buf(b, l, SPX_OPEN_VERIFY_DATA, &ctx);
        CHECK_MSG(rc == c->code, "case %s: got %s (%s), want %s", c->name, spx_err_name(rc), ctx.msg,
                  spx_err_name(c->code));
        CHECK_MSG(ctx.code == rc && strstr(ctx.msg, "case.spx") == ctx.msg, "case %s: message '%s' does not start "
                  "with the file label", c->name, ctx.msg);
        /* data-level rules pass a cheap open and fail verification */
        if (c->code == SPX_E_DATA_CRC || c->code == SPX_E_SPARSE || c->code == SPX_E_GAP) {
            spx_file *f = NULL;
            CHECK_RC(spx_file_open_mem(&ctx, b, l, "case.spx", 0, &f), 0);
            if (f)
                CHECK_RC(spx_file_verify_data(&ctx, f), c->code);
            spx_file_free(f);
        }
        free(b);
    }

    /* messages name field, tensor and byte offset */
    {
        size_t l = len;
        unsigned char *b = dup_buf(base, len);
        tf_mut_misaligned_offset(&b, &l);
        open_buf(b, l, 0, &ctx);
        CHECK_MSG(strstr(ctx.msg, "tensor 'b.bitmask' (record 1 at byte ") && strstr(ctx.msg, "is not a multiple of "
                  "alignment 64"), "%s", ctx.msg);
        free(b);
        b = dup_buf(base, len);
        tf_mut_bad_align(&b, &l);
        open_buf(b, l, 0, &ctx);
        CHECK_MSG(strstr(ctx.msg, "'alignment' (byte 40)"), "%s", ctx.msg);
        free(b);
        b = dup_buf(base, len);
        tf_mut_dup_key(&b, &l);
        open_buf(b, l, 0, &ctx);
        CHECK_MSG(strstr(ctx.msg, "'general.architecture'") && strstr(ctx.msg, "(byte "), "%s", ctx.msg);
        free(b);
    }

    /* truncation at every byte: never a crash, always BAD_MAGIC (< 8 bytes) or TRUNCATED */
    for (size_t l = 0; l < len; l++) {
        unsigned char *b = dup_buf(base, l);
        int rc = open_buf(b, l, SPX_OPEN_VERIFY_DATA, &ctx);
        int want = l < 8 ? SPX_E_BAD_MAGIC : SPX_E_TRUNCATED;
        CHECK_MSG(rc == want, "truncated to %zu: %s (%s)", l, spx_err_name(rc), ctx.msg);
        free(b);
    }

    /* optional feature bits and an unknown minor version are ignored */
    {
        unsigned char *b = dup_buf(base, len);
        tf_wr(b + 24, 8, ~0ull);
        tf_wr(b + 10, 2, 7);
        tf_reseal(b, len);
        CHECK_RC(open_buf(b, len, SPX_OPEN_VERIFY_DATA, &ctx), 0);
        free(b);
    }

    /* fuzz: random byte flips, with and without resealing the CRCs; must never crash */
    int n_ok = 0, n_fail = 0;
    for (int it = 0; it < 4000; it++) {
        unsigned char *b = dup_buf(base, len);
        int flips = 1 + (int)(spx_test_rand(&seed) % 4);
        for (int k = 0; k < flips; k++) {
            size_t pos = (size_t)(spx_test_rand(&seed) % len);
            b[pos] = (unsigned char)spx_test_rand(&seed);
        }
        if (it % 2)
            tf_reseal(b, len);
        int rc = open_buf(b, len, SPX_OPEN_VERIFY_DATA, &ctx);
        if (rc == 0)
            n_ok++;
        else
            n_fail++;
        CHECK_MSG(rc == 0 || (rc <= SPX_E_BAD_MAGIC && rc >= SPX_E_GAP), "fuzz %d: unexpected %s", it, spx_err_name(rc));
        free(b);
    }
    fprintf(stderr, "fuzz: %d accepted (mutations of values only), %d rejected\n", n_ok, n_fail);
    CHECK(n_fail > 3000);
    free(base);
    return 0;
}
