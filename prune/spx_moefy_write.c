/* spx_moefy_write.c: write a gated (MoEfied) model (see spx_moefy_run.h for the layout). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_moefy_run.h"
#include "spx_spxcopy.h"

static int skip_gate_keys(void *ud, const char *key)
{
    (void)ud;
    return strncmp(key, "spx.gate.", 9) == 0 || strncmp(key, "spx.moefy.", 10) == 0 ||
           strncmp(key, "spx.verify.", 11) == 0; /* probes are stale after re-permuting */
}

/* writer failures carry their message in the writer's context */
static int wrc(spx_ctx *ctx, spx_writer *w, int rc)
{
    if (rc < 0)
        *ctx = *spx_writer_ctx(w);
    return rc;
}

static int gate_meta(spx_ctx *ctx, spx_writer *w, const spx_moefy_opts *o)
{
    int rc = 0;
    const char *kind = spx_router_kind_name(o->gate.kind);
    SPX_TRY(rc, wrc(ctx, w, spx_writer_meta_str(w, "spx.gate.kind", kind, strlen(kind))));
    SPX_TRY(rc, wrc(ctx, w, spx_writer_meta_u32(w, "spx.gate.experts", o->experts)));
    SPX_TRY(rc, wrc(ctx, w, spx_writer_meta_bool(w, "spx.gate.input_norm", o->input_norm)));
    if (o->gate.kind == SPX_ROUTER_MOE)
        SPX_TRY(rc, wrc(ctx, w, spx_writer_meta_u32(w, "spx.gate.top_k", o->gate.top_k)));
    else if (o->gate.kind == SPX_ROUTER_DSTI)
        SPX_TRY(rc, wrc(ctx, w, spx_writer_meta_f32(w, "spx.gate.tau", (float)o->gate.tau)));
    else
        SPX_TRY(rc, wrc(ctx, w, spx_writer_meta_f32(w, "spx.gate.threshold", (float)o->gate.threshold)));
done:
    return rc;
}

/* Which permutation a tensor needs: 0 none, 1 rows (gate/up weight and bias), 2 columns (down weight). */
static int perm_kind(const spx_tensor *t, uint32_t n_layers, uint32_t *layer)
{
    unsigned l;
    int off = 0;
    if (sscanf(t->name, "blk.%u.%n", &l, &off) != 1 || off == 0 || l >= n_layers)
        return 0;
    const char *rest = t->name + off;
    *layer = l;
    if (strcmp(rest, "ffn_gate.weight") == 0 || strcmp(rest, "ffn_up.weight") == 0 ||
        strcmp(rest, "ffn_gate.bias") == 0 || strcmp(rest, "ffn_up.bias") == 0)
        return 1;
    if (strcmp(rest, "ffn_down.weight") == 0)
        return 2;
    return 0;
}

static int is_router_tensor(const char *name)
{
    return strncmp(name, "blk.", 4) == 0 && strstr(name, ".ffn_router.") != NULL;
}

/* Decode t, permute its rows (kind 1) or columns (kind 2) by perm, add it under the same identity. */
static int add_permuted(spx_ctx *ctx, spx_writer *w, const spx_file *in, const spx_tensor *t, int kind,
                        const uint32_t *perm, uint32_t ffn)
{
    int rc = 0;
    uint64_t numel = 0;
    float *src = NULL, *dst = NULL;
    SPX_TRY(rc, spx_tensor_numel(ctx, t, &numel));
    uint64_t rows = t->ndim == 2 ? t->dims[0] : numel, cols = t->ndim == 2 ? t->dims[1] : 1;
    if ((t->ndim != 1 && t->ndim != 2) || (kind == 1 && rows != ffn) || (kind == 2 && (t->ndim != 2 || cols != ffn)))
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "tensor '%s': unexpected shape for an FFN of width %u", t->name, ffn);
    src = malloc((size_t)numel * sizeof(float));
    dst = malloc((size_t)numel * sizeof(float));
    if (!src || !dst)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "tensor '%s': out of memory", t->name);
    SPX_TRY(rc, spx_decode_f32(ctx, t, spx_file_data(in, t), src));
    if (kind == 1)
        spx_moefy_permute_rows(src, (size_t)rows, (size_t)cols, perm, dst);
    else
        spx_moefy_permute_cols(src, (size_t)rows, (size_t)cols, perm, dst);
    if (t->encoding == SPX_ENC_DENSE)
        SPX_TRY(rc, wrc(ctx, w, spx_writer_add_f32(w, t->name, t->role, t->layer, t->expert, t->dtype, dst, t->ndim,
                                                   t->dims)));
    else
        /* row permutations keep an N:M pattern (groups run along a row); column ones do not */
        SPX_TRY(rc, spx_tensor_add_matrix(ctx, w, t, -1, dst, rows, cols, SPX_ENC_AUTO, kind == 1 ? t->nm_n : 0,
                                          kind == 1 ? t->nm_m : 0, NULL));
done:
    free(src);
    free(dst);
    return rc;
}

static int add_router(spx_ctx *ctx, spx_writer *w, uint32_t l, const spx_router *r)
{
    int rc = 0;
    char name[SPX_NAME_MAX];
    const uint32_t h1 = r->kind == SPX_ROUTER_LTE ? r->experts : r->hidden;
    uint64_t d1[2] = {h1, r->dim}, b1[1] = {h1}, d2[2] = {r->experts, r->hidden}, b2[1] = {r->experts};
    snprintf(name, sizeof name, "blk.%u.ffn_router.w1", l);
    SPX_TRY(rc, wrc(ctx, w, spx_writer_add_f32(w, name, SPX_ROLE_ROUTER, l, SPX_NO_INDEX, SPX_DTYPE_F32, r->w1, 2, d1)));
    snprintf(name, sizeof name, "blk.%u.ffn_router.b1", l);
    SPX_TRY(rc, wrc(ctx, w, spx_writer_add_f32(w, name, SPX_ROLE_ROUTER, l, SPX_NO_INDEX, SPX_DTYPE_F32, r->b1, 1, b1)));
    if (r->kind == SPX_ROUTER_LTE)
        goto done;
    snprintf(name, sizeof name, "blk.%u.ffn_router.w2", l);
    SPX_TRY(rc, wrc(ctx, w, spx_writer_add_f32(w, name, SPX_ROLE_ROUTER, l, SPX_NO_INDEX, SPX_DTYPE_F32, r->w2, 2, d2)));
    snprintf(name, sizeof name, "blk.%u.ffn_router.b2", l);
    SPX_TRY(rc, wrc(ctx, w, spx_writer_add_f32(w, name, SPX_ROLE_ROUTER, l, SPX_NO_INDEX, SPX_DTYPE_F32, r->b2, 1, b2)));
done:
    return rc;
}

int spx_moefy_write(spx_ctx *ctx, const spx_model *m, const char *out_path, const spx_moefy_result *res,
                    const spx_moefy_opts *o, int (*add_meta)(void *ud, spx_writer *w), void *ud)
{
    int rc = 0;
    spx_writer *w = NULL;
    const spx_file *in = m->file;
    char wname[64];
    if (!res || res->n_layers != m->cfg.n_layers || res->ffn != m->cfg.ffn_dim || res->experts != o->experts)
        return spx_err_set(ctx, SPX_E_ARG, "moefy write: the result does not match the model");
    snprintf(wname, sizeof wname, "spx %s", SPX_VERSION_STRING);
    SPX_TRY(rc, spx_writer_open(ctx, out_path, wname, &w));
    SPX_TRY(rc, spx_meta_copy(ctx, w, in, skip_gate_keys, NULL));
    SPX_TRY(rc, gate_meta(ctx, w, o));
    if (add_meta)
        SPX_TRY(rc, wrc(ctx, w, add_meta(ud, w)));
    for (uint32_t i = 0; i < spx_file_tensor_count(in); i++) {
        const spx_tensor *t = spx_file_tensor(in, i);
        uint32_t l = 0;
        int kind = perm_kind(t, res->n_layers, &l);
        if (is_router_tensor(t->name))
            continue;
        if (kind == 0)
            SPX_TRY(rc, spx_tensor_copy(ctx, w, in, t));
        else
            SPX_TRY(rc, add_permuted(ctx, w, in, t, kind, res->layers[l].perm, res->ffn));
    }
    for (uint32_t l = 0; l < res->n_layers; l++)
        SPX_TRY(rc, add_router(ctx, w, l, res->layers[l].router));
    SPX_TRY(rc, wrc(ctx, w, spx_writer_finish(w)));
done:
    spx_writer_free(w);
    return rc;
}
