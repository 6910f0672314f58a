/* test_common_mem.c: the --max-memory budget: size parsing, formatting, reserve/release
 * accounting and the SPX_E_LIMIT message. Exact integer arithmetic: no tolerance. */
#include <string.h>

#include "spx_arch.h"
#include "spx_error.h"
#include "spx_mem.h"
#include "spx_test.h"

int spx_test_main(void)
{
    unsigned long long v = 0;
    CHECK(spx_mem_parse_size("512M", &v) == 0 && v == 512ull << 20);
    CHECK(spx_mem_parse_size("2G", &v) == 0 && v == 2ull << 30);
    CHECK(spx_mem_parse_size("2g", &v) == 0 && v == 2ull << 30);
    CHECK(spx_mem_parse_size("1.5G", &v) == 0 && v == 3ull << 29);
    CHECK(spx_mem_parse_size("64KiB", &v) == 0 && v == 64ull << 10);
    CHECK(spx_mem_parse_size("3MB", &v) == 0 && v == 3ull << 20);
    CHECK(spx_mem_parse_size("1T", &v) == 0 && v == 1ull << 40);
    CHECK(spx_mem_parse_size("1073741824", &v) == 0 && v == 1073741824ull);
    CHECK(spx_mem_parse_size("100B", &v) == 0 && v == 100);
    CHECK(spx_mem_parse_size("0", &v) == 0 && v == 0);
    const char *bad[] = {"", "-1", "+5", " 5", "5X", "5MM", "M", "abc", "1e30", "nan", "inf", "16777216T", "5 M"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_MSG(spx_mem_parse_size(bad[i], &v) == -1, "accepted '%s'", bad[i]);

    char b[32];
    spx_mem_format(b, sizeof b, 100, 1);
    CHECK(strcmp(b, "100 bytes") == 0);
    spx_mem_format(b, sizeof b, (812ull << 20) - 5, 1);
    CHECK(strcmp(b, "812 MiB") == 0);
    spx_mem_format(b, sizeof b, (812ull << 20) - 5, 0);
    CHECK(strcmp(b, "811 MiB") == 0);
    spx_mem_format(b, sizeof b, 3000, 1);
    CHECK(strcmp(b, "3 KiB") == 0);
    spx_mem_format(b, sizeof b, 12ull << 30, 0);
    CHECK(strcmp(b, "12.0 GiB") == 0);

    spx_ctx ctx = SPX_CTX_INIT;
    unsigned long long a = 0, c = 0;
    /* unlimited: counted, never fails */
    CHECK_RC(spx_mem_reserve(&ctx, &a, 5ull << 40, "huge"), 0);
    CHECK(ctx.mem_used == 5ull << 40 && a == 5ull << 40 && ctx.mem_peak == 5ull << 40);
    spx_mem_release(&ctx, &a);
    CHECK(ctx.mem_used == 0 && a == 0);

    spx_mem_set_limit(&ctx, 512ull << 20);
    CHECK_RC(spx_mem_reserve(&ctx, &a, 812ull << 20, "calibration activations of blk.%d", 3), SPX_E_LIMIT);
    CHECK_MSG(strcmp(ctx.msg, "calibration activations of blk.3 need 812 MiB, over --max-memory 512 MiB") == 0,
              "%s", ctx.msg);
    CHECK(a == 0 && ctx.mem_used == 0);
    CHECK_RC(spx_mem_reserve(&ctx, &a, 300ull << 20, "x"), 0);
    CHECK_RC(spx_mem_reserve(&ctx, &c, 212ull << 20, "y"), 0);   /* exactly at the limit */
    CHECK(ctx.mem_used == 512ull << 20);
    CHECK_RC(spx_mem_reserve(&ctx, &c, 1, "Hessians"), SPX_E_LIMIT);
    CHECK_MSG(strstr(ctx.msg, "Hessians need 1 bytes (512 MiB already in use), over --max-memory 512 MiB") != NULL,
              "%s", ctx.msg);
    spx_mem_transfer(&c, &a);
    CHECK(c == 0 && a == 512ull << 20);
    spx_mem_release(&ctx, &a);
    CHECK(ctx.mem_used == 0 && ctx.mem_peak == 512ull << 20);
    /* release after the context was overwritten (error copy): saturates at 0 */
    CHECK_RC(spx_mem_reserve(&ctx, &a, 10, "z"), 0);
    ctx.mem_used = 0;
    spx_mem_release(&ctx, &a);
    CHECK(ctx.mem_used == 0);
    CHECK_RC(spx_mem_reserve(NULL, &a, 1ull << 62, "null ctx"), 0);
    spx_mem_release(NULL, &a);
    CHECK(a == 0);
    CHECK_RC(spx_mem_reserve(&ctx, &a, ~0ull, "max"), SPX_E_LIMIT);

    /* state size, counted by hand from the spx_state fields (verify/spx_forward.h):
     * k+v 2*2*10*4 + x/xn/tmp 3*5*8 + q/att 2*5*8 + gate/up 2*5*16 + scores 64*10 + rope 10*4
     * = 1200 floats */
    spx_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.n_layers = 2;
    cfg.dim = 8;
    cfg.ffn_dim = 16;
    cfg.n_heads = 2;
    cfg.n_kv_heads = 1;
    cfg.head_dim = 4;
    cfg.rope_dim = 4;
    CHECK(spx_mem_state_bytes(&cfg, 10, 5) == 4800);
    return 0;
}
