/* test_common_tok_files.c: raw token files (u16/u32 little endian, atomic write) and text input
 * (spx_text_read removes '\r', rejects NUL with its offset). */
#include <stdlib.h>
#include <string.h>

#include "spx_error.h"
#include "spx_test.h"
#include "spx_tokenizer.h"

static void write_raw(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    CHECK(fp && fwrite(p, 1, n, fp) == n);
    if (fp)
        fclose(fp);
}

int spx_test_main(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    const char *dir = spx_test_tmpdir();
    char p16[4096], p32[4096], podd[4096], ptxt[4096];
    snprintf(p16, sizeof(p16), "%s", spx_test_path(dir, "t16.bin"));
    snprintf(p32, sizeof(p32), "%s", spx_test_path(dir, "t32.bin"));
    snprintf(podd, sizeof(podd), "%s", spx_test_path(dir, "odd.bin"));
    snprintf(ptxt, sizeof(ptxt), "%s", spx_test_path(dir, "text.txt"));

    uint32_t ids[5] = {0, 1, 511, 65535, 70000};
    uint32_t *got = NULL;
    size_t n = 0;
    /* u32 round trip, and the exact little-endian bytes */
    CHECK_RC(spx_tokens_write(&ctx, p32, 4, ids, 5), 0);
    CHECK_RC(spx_tokens_read(&ctx, p32, 4, &got, &n), 0);
    CHECK(n == 5 && got && memcmp(got, ids, sizeof(ids)) == 0);
    free(got);
    FILE *fp = fopen(p32, "rb");
    unsigned char raw[20] = {0};
    CHECK(fp && fread(raw, 1, 20, fp) == 20);
    if (fp)
        fclose(fp);
    CHECK(raw[8] == 0xFF && raw[9] == 0x01 && raw[10] == 0 && raw[16] == 0x70 && raw[17] == 0x11 && raw[18] == 0x01);
    /* u16: 70000 does not fit and nothing is written */
    CHECK_RC(spx_tokens_write(&ctx, p16, 2, ids, 5), SPX_E_ARG);
    CHECK(strstr(ctx.msg, "token 4") != NULL && !spx_test_exists(p16));
    CHECK_RC(spx_tokens_write(&ctx, p16, 2, ids, 4), 0);
    CHECK_RC(spx_tokens_read(&ctx, p16, 2, &got, &n), 0);
    CHECK(n == 4 && got && memcmp(got, ids, 4 * sizeof(uint32_t)) == 0);
    free(got);
    /* an empty token file is valid */
    CHECK_RC(spx_tokens_write(&ctx, p16, 2, ids, 0), 0);
    CHECK_RC(spx_tokens_read(&ctx, p16, 2, &got, &n), 0);
    CHECK(n == 0 && got != NULL);
    free(got);
    /* odd sizes: the message names the file and the offset of the partial id */
    write_raw(podd, "\x01\x00\x02", 3);
    CHECK_RC(spx_tokens_read(&ctx, podd, 2, &got, &n), SPX_E_DATA);
    CHECK(got == NULL && strstr(ctx.msg, "odd.bin") && strstr(ctx.msg, "offset 2"));
    write_raw(podd, "\x01\x00\x00\x00\x02\x00", 6);
    CHECK_RC(spx_tokens_read(&ctx, podd, 4, &got, &n), SPX_E_DATA);
    CHECK(strstr(ctx.msg, "offset 4") != NULL);
    CHECK_RC(spx_tokens_read(&ctx, podd, 3, &got, &n), SPX_E_ARG);
    CHECK_RC(spx_tokens_read(&ctx, spx_test_path(dir, "absent.bin"), 2, &got, &n), SPX_E_IO);
    CHECK(strstr(ctx.msg, "absent.bin") != NULL);
    /* writing into a missing directory fails without leaving anything */
    CHECK_RC(spx_tokens_write(&ctx, spx_test_path(dir, "no/such/dir/t.bin"), 4, ids, 5), SPX_E_IO);

    /* text: CRLF and stray CR removed */
    write_raw(ptxt, "line one\r\nline two\r\n\rend", 24);
    char *text = NULL;
    size_t len = 0;
    CHECK_RC(spx_text_read(&ctx, ptxt, &text, &len), 0);
    CHECK(text && len == 21 && strcmp(text, "line one\nline two\nend") == 0);
    free(text);
    write_raw(ptxt, "abc\0def", 7);
    CHECK_RC(spx_text_read(&ctx, ptxt, &text, &len), SPX_E_DATA);
    CHECK(text == NULL && strstr(ctx.msg, "text.txt") && strstr(ctx.msg, "offset 3"));
    write_raw(ptxt, "", 0);
    CHECK_RC(spx_text_read(&ctx, ptxt, &text, &len), 0);
    CHECK(text && len == 0 && text[0] == 0);
    free(text);
    CHECK_RC(spx_text_read(&ctx, dir, &text, &len), SPX_E_IO);   /* a directory */
    return 0;
}
