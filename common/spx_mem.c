/* spx_mem.c: the --max-memory byte budget (see spx_mem.h). */
#include "spx_mem.h"

#include "spx_arch.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int spx_mem_parse_size(const char *s, unsigned long long *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || !(v >= 0) || !isfinite(v))
        return -1;
    double mul = 1;
    if (*end) {
        switch (toupper((unsigned char)*end)) {
        case 'K': mul = 1024.0; break;
        case 'M': mul = 1024.0 * 1024.0; break;
        case 'G': mul = 1024.0 * 1024.0 * 1024.0; break;
        case 'T': mul = 1024.0 * 1024.0 * 1024.0 * 1024.0; break;
        case 'B': mul = 1; end--; break;   /* plain "100B" */
        default: return -1;
        }
        end++;
        if (*end && strcasecmp(end, "B") != 0 && strcasecmp(end, "iB") != 0)
            return -1;
    }
    double bytes = v * mul;
    /* 2^64 is exactly representable: anything at or above it does not fit */
    if (bytes >= 18446744073709551616.0)
        return -1;
    *out = (unsigned long long)bytes;
    return 0;
}

void spx_mem_format(char *buf, size_t n, unsigned long long bytes, int round_up)
{
    const unsigned long long KiB = 1024ull, MiB = KiB * 1024, GiB = MiB * 1024;
    if (!buf || !n)
        return;
    if (bytes < KiB)
        snprintf(buf, n, "%llu bytes", bytes);
    else if (bytes < MiB)
        snprintf(buf, n, "%llu KiB", round_up ? (bytes + KiB - 1) / KiB : bytes / KiB);
    else if (bytes < 10 * GiB)
        snprintf(buf, n, "%llu MiB", round_up ? (bytes + MiB - 1) / MiB : bytes / MiB);
    else {
        /* one decimal, rounded in the stated direction */
        unsigned long long tenths = round_up ? (bytes * 10 + GiB - 1) / GiB : bytes * 10 / GiB;
        if (bytes > (~0ull) / 10)
            tenths = bytes / GiB * 10;
        snprintf(buf, n, "%llu.%llu GiB", tenths / 10, tenths % 10);
    }
}

void spx_mem_set_limit(spx_ctx *ctx, unsigned long long limit)
{
    if (!ctx)
        return;
    ctx->mem_limit = limit;
    ctx->mem_used = 0;
    ctx->mem_peak = 0;
}

int spx_mem_reserve(spx_ctx *ctx, unsigned long long *held, unsigned long long bytes, const char *fmt, ...)
{
    if (!ctx)
        return 0;
    unsigned long long used = ctx->mem_used;
    if (ctx->mem_limit && (bytes > ctx->mem_limit || used > ctx->mem_limit - bytes)) {
        char what[256], need[32], have[32], lim[32], msg[SPX_MSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        spx_mem_format(need, sizeof need, bytes, 1);
        spx_mem_format(have, sizeof have, used, 1);
        spx_mem_format(lim, sizeof lim, ctx->mem_limit, 0);
        if (used)
            snprintf(msg, sizeof msg, "%s need %s (%s already in use), over --max-memory %s", what, need, have, lim);
        else
            snprintf(msg, sizeof msg, "%s need %s, over --max-memory %s", what, need, lim);
        return spx_err_set(ctx, SPX_E_LIMIT, "%s", msg);
    }
    ctx->mem_used = used + bytes;
    if (ctx->mem_used < used)
        ctx->mem_used = ~0ull;   /* unlimited budget: saturate instead of wrapping */
    if (ctx->mem_used > ctx->mem_peak)
        ctx->mem_peak = ctx->mem_used;
    if (held)
        *held += bytes;
    return 0;
}

void spx_mem_release(spx_ctx *ctx, unsigned long long *held)
{
    if (!held)
        return;
    if (ctx)
        ctx->mem_used = ctx->mem_used > *held ? ctx->mem_used - *held : 0;
    *held = 0;
}

void spx_mem_transfer(unsigned long long *from, unsigned long long *to)
{
    if (!from || !to)
        return;
    *to += *from;
    *from = 0;
}

unsigned long long spx_mem_state_bytes(const struct spx_model_config *c, uint32_t max_ctx, uint32_t max_batch)
{
    /* every factor is < 2^32 and there are few terms: long double holds the sum exactly enough */
    long double C = max_ctx, B = max_batch, kv = (long double)c->n_kv_heads * c->head_dim;
    long double q = (long double)c->n_heads * c->head_dim;
    long double floats = 2.0L * c->n_layers * C * kv + 3.0L * B * c->dim + 2.0L * B * q + 2.0L * B * c->ffn_dim +
                         64.0L * C + C * c->rope_dim;
    long double bytes = floats * 4.0L;
    return bytes >= 18446744073709551615.0L ? ~0ull : (unsigned long long)bytes;
}
