/* spx_nonfinite.c: locate the first non-finite activation (see spx_nonfinite.h). */
#include "spx_nonfinite.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_forward.h"
#include "spx_mem.h"

typedef struct scan {
    spx_nonfinite_site *site;
    size_t w_attn, w_o, w_mlp, w_hid;   /* row widths of the four hook inputs */
} scan;

/* First non-finite of x [n x width] into the site (when none was recorded yet). */
static int check_rows(spx_nonfinite_site *s, uint32_t layer, const char *stage, const float *x, size_t n, size_t width)
{
    if (s->found || !width)
        return s->found;
    for (size_t i = 0; i < n * width; i++)
        if (!isfinite(x[i])) {
            s->found = 1;
            s->layer = layer;
            s->stage = stage;
            s->token = i / width;
            s->element = i % width;
            s->value = x[i];
            break;
        }
    return s->found;
}

static void h_attn(void *ud, uint32_t l, const float *x, size_t n)
{
    scan *c = ud;
    check_rows(c->site, l, "attn_q input", x, n, c->w_attn);
}
static void h_o(void *ud, uint32_t l, const float *x, size_t n)
{
    scan *c = ud;
    check_rows(c->site, l, "attn_output input", x, n, c->w_o);
}
static void h_mlp(void *ud, uint32_t l, const float *x, size_t n)
{
    scan *c = ud;
    check_rows(c->site, l, "ffn_up input", x, n, c->w_mlp);
}
static void h_hid(void *ud, uint32_t l, const float *x, size_t n)
{
    scan *c = ud;
    check_rows(c->site, l, "ffn_down input", x, n, c->w_hid);
}

int spx_nonfinite_locate(spx_ctx *ctx, const spx_model *model, const uint32_t *tokens, size_t n, uint32_t C,
                         uint64_t max_windows, spx_nonfinite_site *out)
{
    int rc = 0;
    const spx_model_config *cfg = &model->cfg;
    spx_state *st = NULL;
    float *X = NULL, *logits = NULL;
    size_t xb, lb;
    unsigned long long held = 0;
    memset(out, 0, sizeof *out);
    out->layer = SPX_NONFINITE_NO_LAYER;
    if (C == 0 || n < C)
        return spx_err_set(ctx, SPX_E_ARG, "nonfinite: need at least one window of C >= 1 tokens (n %zu, C %u)", n, C);
    if (spx_ckd_mul3_size(C, cfg->dim, sizeof(float), &xb) || spx_ckd_mul3_size(C, cfg->vocab_size, sizeof(float), &lb))
        return spx_err_set(ctx, SPX_E_OVERFLOW, "nonfinite: buffers of %u tokens overflow", C);
    SPX_TRY(rc, spx_mem_reserve(ctx, &held, (unsigned long long)xb + lb + spx_mem_state_bytes(cfg, C, C),
                                "non-finite diagnosis (state and logits of a %u-token window)", C));
    X = malloc(xb);
    logits = malloc(lb);
    if (!X || !logits)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "nonfinite: out of memory");
    SPX_TRY(rc, spx_state_new(ctx, model, C, C, &st));
    scan sc = {out, cfg->dim, (size_t)cfg->n_heads * cfg->head_dim, cfg->dim, cfg->ffn_dim};
    spx_forward_hooks hooks = {&sc, h_attn, h_o, h_mlp, h_hid};
    uint64_t nw = n / C;
    if (max_windows && max_windows < nw)
        nw = max_windows;
    for (uint64_t w = 0; w < nw && !out->found; w++) {
        const uint32_t *win = tokens + w * C;
        out->window = w;
        SPX_TRY(rc, spx_embed(ctx, model, win, C, X));
        if (check_rows(out, SPX_NONFINITE_NO_LAYER, "token embeddings", X, C, cfg->dim))
            break;
        for (uint32_t l = 0; l < cfg->n_layers && !out->found; l++) {
            spx_state_reset(st);
            SPX_TRY(rc, spx_block_forward(ctx, model, st, l, X, C, &hooks));
            check_rows(out, l, "output", X, C, cfg->dim);
        }
        if (out->found)
            break;
        spx_head(model, X, C, logits);
        check_rows(out, SPX_NONFINITE_NO_LAYER, "logits", logits, C, cfg->vocab_size);
    }
    if (!out->found)
        out->window = 0;
done:
    spx_state_free(st);
    free(X);
    free(logits);
    spx_mem_release(ctx, &held);
    return rc;
}

void spx_nonfinite_format(const spx_nonfinite_site *s, char *buf, size_t len)
{
    char where[64];
    if (!buf || !len)
        return;
    if (!s->found) {
        snprintf(buf, len, "no non-finite activation found");
        return;
    }
    if (s->layer == SPX_NONFINITE_NO_LAYER)
        snprintf(where, sizeof where, "%s", s->stage);
    else
        snprintf(where, sizeof where, "blk.%u %s", s->layer, s->stage);
    snprintf(buf, len, "non-finite activation in %s (window %llu, token %llu, element %llu): %s", where,
             (unsigned long long)s->window, (unsigned long long)s->token, (unsigned long long)s->element,
             isnan(s->value) ? "nan" : s->value > 0 ? "inf" : "-inf");
}

int spx_nonfinite_explain(spx_ctx *ctx, const spx_model *model, const char *label, const uint32_t *tokens, size_t n,
                          uint32_t C, uint64_t max_windows)
{
    spx_ctx sub = *ctx;   /* the budget comes along; errors of the diagnosis stay here */
    spx_nonfinite_site s;
    char site[256], old[SPX_MSG_MAX];
    spx_err_clear(&sub);
    if (spx_nonfinite_locate(&sub, model, tokens, n, C, max_windows, &s) < 0 || !s.found)
        return 0;
    spx_nonfinite_format(&s, site, sizeof site);
    memcpy(old, ctx->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    spx_err_set(ctx, ctx->code ? ctx->code : SPX_E_NUMERIC, "%s%s; %s", label ? label : "", site, old);
    return 1;
}

int spx_nonfinite_check_file(spx_ctx *ctx, const spx_file *f)
{
    int rc = 0;
    float *buf = NULL;
    size_t cap = 0;
    unsigned long long held = 0;
    for (uint32_t i = 0; i < spx_file_tensor_count(f); i++) {
        const spx_tensor *t = spx_file_tensor(f, i);
        uint64_t numel = 0;
        size_t bytes;
        if (t->dtype != SPX_DTYPE_F32 && t->dtype != SPX_DTYPE_F16 && t->dtype != SPX_DTYPE_BF16)
            continue;
        SPX_TRY(rc, spx_tensor_numel(ctx, t, &numel));
        if (numel > SIZE_MAX / sizeof(float))
            SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "tensor %s: %llu elements overflow", t->name, (unsigned long long)numel);
        bytes = (size_t)numel * sizeof(float);
        if (bytes > cap) {
            spx_mem_release(ctx, &held);
            SPX_TRY(rc, spx_mem_reserve(ctx, &held, bytes, "decode buffer of tensor %s", t->name));
            free(buf);
            buf = malloc(bytes ? bytes : 1);
            if (!buf)
                SPX_FAIL(ctx, rc, SPX_E_NOMEM, "tensor %s: cannot allocate %zu bytes", t->name, bytes);
            cap = bytes;
        }
        SPX_TRY(rc, spx_decode_f32(ctx, t, spx_file_data(f, t), buf));
        for (uint64_t k = 0; k < numel; k++)
            if (!isfinite(buf[k]))
                SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "tensor %s: %s at flat index %llu (of %llu)", t->name,
                         isnan(buf[k]) ? "nan" : buf[k] > 0 ? "inf" : "-inf", (unsigned long long)k,
                         (unsigned long long)numel);
    }
done:
    free(buf);
    spx_mem_release(ctx, &held);
    return rc;
}
