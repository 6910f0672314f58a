/* spx_ffn_pad.c: zero-neuron padding of the FFNs (see spx_ffn_pad.h). */
#include "spx_ffn_pad.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_arch.h"
#include "spx_ckd.h"
#include "spx_spxcopy.h"

typedef struct pad_keys {
    char ffn_key[SPX_ARCH_NAME_MAX + 32];   /* "<arch>.feed_forward_length" */
} pad_keys;

static int skip_key(void *ud, const char *key)
{
    const pad_keys *k = ud;
    return strcmp(key, k->ffn_key) == 0 || strncmp(key, "spx.verify.", 11) == 0;
}

/* writer failures carry their message in the writer's context */
static int wrc(spx_ctx *ctx, spx_writer *w, int rc)
{
    if (rc < 0)
        *ctx = *spx_writer_ctx(w);
    return rc;
}

/* 1: rows are neurons (ffn_gate/ffn_up weight or bias), 2: columns are (ffn_down weight), 0: other. */
static int pad_kind(const spx_tensor *t)
{
    const char *p = strncmp(t->name, "blk.", 4) == 0 ? strchr(t->name + 4, '.') : NULL;
    if (!p)
        return 0;
    p++;
    if (!strcmp(p, "ffn_gate.weight") || !strcmp(p, "ffn_up.weight") || !strcmp(p, "ffn_gate.bias") ||
        !strcmp(p, "ffn_up.bias"))
        return 1;
    if (!strcmp(p, "ffn_down.weight"))
        return 2;
    if (!strcmp(p, "ffn_down.bias"))
        return 0;   /* [dim]: output side, unchanged */
    if (!strncmp(p, "ffn_gate.", 9) || !strncmp(p, "ffn_up.", 7) || !strncmp(p, "ffn_down.", 9) ||
        !strncmp(p, "ffn_router.", 11))
        return -1;   /* experts, routers: not a dense FFN */
    return 0;
}

static int add_padded(spx_ctx *ctx, spx_writer *w, const spx_file *in, const spx_tensor *t, int kind, uint32_t f,
                      uint32_t fp)
{
    int rc = 0;
    uint64_t numel = 0, rows, cols, prow, pcol, dims[2];
    float *src = NULL, *dst = NULL;
    size_t nbytes;
    SPX_TRY(rc, spx_tensor_numel(ctx, t, &numel));
    rows = t->ndim == 2 ? t->dims[0] : numel;
    cols = t->ndim == 2 ? t->dims[1] : 1;
    if ((t->ndim != 1 && t->ndim != 2) || (kind == 1 && rows != f) || (kind == 2 && (t->ndim != 2 || cols != f)))
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: tensor '%s': unexpected shape for an FFN of width %u", spx_file_path(in),
                 t->name, f);
    prow = kind == 1 ? fp : rows;
    pcol = kind == 2 ? fp : cols;
    if (spx_ckd_mul_size((size_t)prow, (size_t)pcol, &nbytes) || spx_ckd_mul_size(nbytes, sizeof(float), &nbytes))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "tensor '%s': padded size overflows", t->name);
    src = malloc((size_t)numel * sizeof(float));
    dst = calloc(1, nbytes);
    if (!src || !dst)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "tensor '%s': out of memory", t->name);
    SPX_TRY(rc, spx_decode_f32(ctx, t, spx_file_data(in, t), src));
    for (uint64_t r = 0; r < rows; r++)
        memcpy(dst + r * pcol, src + r * cols, (size_t)cols * sizeof(float));
    if (t->ndim == 1) {
        dims[0] = prow;
        SPX_TRY(rc, wrc(ctx, w, spx_writer_add_f32(w, t->name, t->role, t->layer, t->expert, t->dtype, dst, 1, dims)));
    } else if (t->encoding == SPX_ENC_DENSE) {
        dims[0] = prow;
        dims[1] = pcol;
        SPX_TRY(rc, wrc(ctx, w, spx_writer_add_f32(w, t->name, t->role, t->layer, t->expert, t->dtype, dst, 2, dims)));
    } else {
        /* zero rows keep an N:M pattern; zero columns appended at the end keep it when fp - f is a
         * multiple of M, which the auto encoding checks anyway */
        SPX_TRY(rc, spx_tensor_add_matrix(ctx, w, t, -1, dst, prow, pcol, SPX_ENC_AUTO, t->nm_n, t->nm_m, NULL));
    }
done:
    free(src);
    free(dst);
    return rc;
}

int spx_ffn_pad_write(spx_ctx *ctx, const spx_file *in, const char *out_path, uint32_t multiple, uint32_t *new_ffn)
{
    int rc = 0;
    spx_writer *w = NULL;
    spx_model_config cfg;
    pad_keys keys;
    uint64_t fp64;
    uint32_t fp;
    char wname[64];
    if (multiple == 0)
        return spx_err_set(ctx, SPX_E_ARG, "ffn padding: multiple must be >= 1");
    SPX_TRY(rc, spx_config_from_file(ctx, in, &cfg));
    fp64 = ((uint64_t)cfg.ffn_dim + multiple - 1) / multiple * multiple;
    if (fp64 > UINT32_MAX)
        return spx_err_set(ctx, SPX_E_OVERFLOW, "ffn padding: %u rounded up to a multiple of %u overflows",
                           cfg.ffn_dim, multiple);
    fp = (uint32_t)fp64;
    snprintf(keys.ffn_key, sizeof keys.ffn_key, "%s.feed_forward_length", cfg.arch);
    for (uint32_t i = 0; i < spx_file_tensor_count(in); i++)
        if (pad_kind(spx_file_tensor(in, i)) < 0)
            return spx_err_set(ctx, SPX_E_UNSUPPORTED, "%s: tensor '%s': only dense FFNs can be padded",
                               spx_file_path(in), spx_file_tensor(in, i)->name);
    snprintf(wname, sizeof wname, "spx %s", SPX_VERSION_STRING);
    SPX_TRY(rc, spx_writer_open(ctx, out_path, wname, &w));
    SPX_TRY(rc, spx_meta_copy(ctx, w, in, skip_key, &keys));
    SPX_TRY(rc, wrc(ctx, w, spx_writer_meta_u32(w, keys.ffn_key, fp)));
    for (uint32_t i = 0; i < spx_file_tensor_count(in); i++) {
        const spx_tensor *t = spx_file_tensor(in, i);
        int kind = pad_kind(t);
        if (kind == 0 || fp == cfg.ffn_dim)
            SPX_TRY(rc, spx_tensor_copy(ctx, w, in, t));
        else
            SPX_TRY(rc, add_padded(ctx, w, in, t, kind, cfg.ffn_dim, fp));
    }
    SPX_TRY(rc, wrc(ctx, w, spx_writer_finish(w)));
    if (new_ffn)
        *new_ffn = fp;
done:
    spx_writer_free(w);
    return rc;
}
