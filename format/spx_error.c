/* spx_error.c: error context and the table of pinned error names. */
#include "spx_error.h"

#include <stdio.h>
#include <string.h>

int spx_err_setv(spx_ctx *ctx, int code, const char *fmt, va_list ap)
{
    if (ctx) {
        ctx->code = code;
        vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    }
    return code;
}

int spx_err_set(spx_ctx *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    spx_err_setv(ctx, code, fmt, ap);
    va_end(ap);
    return code;
}

int spx_err_prefix(spx_ctx *ctx, const char *fmt, ...)
{
    char pre[SPX_MSG_MAX], old[SPX_MSG_MAX];
    va_list ap;
    if (!ctx)
        return 0;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, ctx->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    size_t np = strlen(pre), no = strlen(old);
    if (np > sizeof ctx->msg - 1)
        np = sizeof ctx->msg - 1;
    if (no > sizeof ctx->msg - 1 - np)
        no = sizeof ctx->msg - 1 - np; /* keep the prefix, truncate the tail */
    memcpy(ctx->msg, pre, np);
    memcpy(ctx->msg + np, old, no);
    ctx->msg[np + no] = '\0';
    return ctx->code;
}

void spx_err_clear(spx_ctx *ctx)
{
    if (ctx) {
        ctx->code = 0;
        ctx->msg[0] = '\0';
    }
}

const char *spx_err_name(int code)
{
    switch (code) {
#define N(c) case c: return #c
    N(SPX_OK); N(SPX_E_IO); N(SPX_E_NOMEM); N(SPX_E_ARG); N(SPX_E_OVERFLOW); N(SPX_E_LIMIT);
    N(SPX_E_INTERNAL); N(SPX_E_BAD_MAGIC); N(SPX_E_BYTESWAPPED); N(SPX_E_VERSION);
    N(SPX_E_FEATURE); N(SPX_E_TRUNCATED); N(SPX_E_TRAILING); N(SPX_E_HEADER_CRC);
    N(SPX_E_RESERVED); N(SPX_E_ALIGN); N(SPX_E_TABLE); N(SPX_E_TABLE_CRC); N(SPX_E_NAME);
    N(SPX_E_DUP_NAME); N(SPX_E_DTYPE); N(SPX_E_ENCODING); N(SPX_E_DIMS); N(SPX_E_OFFSET);
    N(SPX_E_OVERLAP); N(SPX_E_SIZE); N(SPX_E_DATA_CRC); N(SPX_E_META); N(SPX_E_META_CRC);
    N(SPX_E_DUP_KEY); N(SPX_E_SPARSE); N(SPX_E_GAP); N(SPX_E_SAFETENSORS); N(SPX_E_JSON);
    N(SPX_E_CONFIG); N(SPX_E_UNSUPPORTED); N(SPX_E_LLAMA2C); N(SPX_E_TOKENIZER);
    N(SPX_E_MISSING); N(SPX_E_SHAPE); N(SPX_E_GGUF); N(SPX_E_DATA); N(SPX_E_NUMERIC);
    N(SPX_E_CHOLESKY); N(SPX_E_VERIFY);
#undef N
    default: return "SPX_E_UNKNOWN";
    }
}
