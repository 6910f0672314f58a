/* spx_expand_write.c: write an expanded model (routers + experts replace each dense MLP). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_expand.h"
#include "spx_moe.h"
#include "spx_spxcopy.h"

static int skip_expand_keys(void *ud, const char *key)
{
    (void)ud;
    /* probes (spx.verify.*) describe the input's weights: stale after this stage */
    return strncmp(key, "spx.expand.", 11) == 0 || strncmp(key, "spx.verify.", 11) == 0;
}

/* blk.<l>.ffn_{gate,up,down}.{weight,bias} of an expanded block (replaced): returns l, else -1. */
static long dense_mlp_layer(const spx_model *m, const spx_tensor *t)
{
    unsigned l;
    char base[32], suffix[16];
    if (sscanf(t->name, "blk.%u.%31[a-z_].%15s", &l, base, suffix) != 3 || l >= m->cfg.n_layers || !m->layers[l].moe)
        return -1;
    if ((strcmp(base, "ffn_gate") == 0 || strcmp(base, "ffn_up") == 0 || strcmp(base, "ffn_down") == 0) &&
        (strcmp(suffix, "weight") == 0 || strcmp(suffix, "bias") == 0))
        return (long)l;
    return -1;
}

static int add_f32(spx_ctx *ctx, spx_writer *w, const char *name, uint32_t layer, const float *data, int ndim,
                   uint64_t d0, uint64_t d1)
{
    uint64_t dims[2] = {d0, d1};
    int rc = spx_writer_add_f32(w, name, SPX_ROLE_ROUTER, layer, SPX_NO_INDEX, SPX_DTYPE_F32, data, ndim, dims);
    if (rc < 0)
        *ctx = *spx_writer_ctx(w);
    return rc;
}

static int write_router(spx_ctx *ctx, spx_writer *w, uint32_t l, const char *base, const spx_router *r)
{
    int rc = 0;
    char name[SPX_NAME_MAX];
    if (r->pca_dim) {
        snprintf(name, sizeof name, "blk.%u.%s.router.mean", l, base);
        SPX_TRY(rc, add_f32(ctx, w, name, l, r->mean, 1, r->in_dim, 0));
        snprintf(name, sizeof name, "blk.%u.%s.router.proj", l, base);
        SPX_TRY(rc, add_f32(ctx, w, name, l, r->proj, 2, r->pca_dim, r->in_dim));
    }
    snprintf(name, sizeof name, "blk.%u.%s.router.centroids", l, base);
    SPX_TRY(rc, add_f32(ctx, w, name, l, r->centroids, 2, r->k, spx_router_rdim(r)));
done:
    return rc;
}

static int write_experts(spx_ctx *ctx, spx_writer *w, uint32_t l, const char *base, const spx_linear *lin, uint32_t k,
                         int value_dtype, const spx_expand_opts *o, int enc)
{
    int rc = 0;
    for (uint32_t e = 0; e < k; e++) {
        spx_tensor like;
        memset(&like, 0, sizeof like);
        snprintf(like.name, sizeof like.name, "blk.%u.%s.%u.weight", l, base, e);
        like.dtype = (uint8_t)value_dtype;
        like.role = SPX_ROLE_MLP;
        like.layer = l;
        like.expert = e;
        SPX_TRY(rc, spx_tensor_add_matrix(ctx, w, &like, -1, lin[e].w, lin[e].rows, lin[e].cols, enc, o->p.nm_n,
                                          o->p.nm_m, NULL));
        if (lin[e].bias) {
            uint64_t dims[1] = {lin[e].rows};
            snprintf(like.name, sizeof like.name, "blk.%u.%s.%u.bias", l, base, e);
            rc = spx_writer_add_f32(w, like.name, SPX_ROLE_MLP, l, e, value_dtype, lin[e].bias, 1, dims);
            if (rc < 0) {
                *ctx = *spx_writer_ctx(w);
                goto done;
            }
        }
    }
done:
    return rc;
}

static int write_meta(spx_ctx *ctx, spx_writer *w, const spx_model *m, const spx_expand_opts *o,
                      const spx_expand_layer_info *infos)
{
    int rc = 0;
    char key[96];
    static const char routing[] = "pca_nearest_centroid";
    SPX_TRY(rc, spx_writer_meta_u32(w, "spx.expand.experts", o->clusters));
    snprintf(key, sizeof key, "%s.expert_count", m->cfg.arch);
    SPX_TRY(rc, spx_writer_meta_u32(w, key, o->clusters));
    SPX_TRY(rc, spx_writer_meta_str(w, "spx.expand.routing", routing, strlen(routing)));
    SPX_TRY(rc, spx_writer_meta_f64(w, "spx.expand.sparsity",
                                    o->p.nm_m ? 1.0 - (double)o->p.nm_n / o->p.nm_m : o->p.sparsity));
    SPX_TRY(rc, spx_writer_meta_u32(w, "spx.expand.nm_n", (uint32_t)o->p.nm_n));
    SPX_TRY(rc, spx_writer_meta_u32(w, "spx.expand.nm_m", (uint32_t)o->p.nm_m));
    SPX_TRY(rc, spx_writer_meta_u64(w, "spx.expand.seed", o->seed));
    SPX_TRY(rc, spx_writer_meta_u32(w, "spx.expand.kmeans_init", o->kmeans_init));
    for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
        if (!infos[l].sizes_up)
            continue;
        snprintf(key, sizeof key, "spx.expand.cluster_sizes.%u.up", l);
        SPX_TRY(rc, spx_writer_meta_arr(w, key, SPX_META_U32, infos[l].sizes_up, infos[l].k));
        snprintf(key, sizeof key, "spx.expand.cluster_sizes.%u.down", l);
        SPX_TRY(rc, spx_writer_meta_arr(w, key, SPX_META_U32, infos[l].sizes_down, infos[l].k));
    }
done:
    if (rc < 0)
        *ctx = *spx_writer_ctx(w);
    return rc;
}

int spx_expand_write(spx_ctx *ctx, const spx_model *m, const char *out_path, const spx_expand_opts *o,
                     const spx_expand_layer_info *infos, int enc)
{
    int rc = 0;
    spx_writer *w = NULL;
    const spx_file *in = m->file;
    char wname[64];
    uint8_t *done_layer = calloc(m->cfg.n_layers, 1);
    if (!done_layer)
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
    snprintf(wname, sizeof wname, "spx %s", SPX_VERSION_STRING);
    SPX_TRY(rc, spx_writer_open(ctx, out_path, wname, &w));
    SPX_TRY(rc, spx_meta_copy(ctx, w, in, skip_expand_keys, NULL));
    SPX_TRY(rc, write_meta(ctx, w, m, o, infos));
    for (uint32_t i = 0; i < spx_file_tensor_count(in); i++) {
        const spx_tensor *t = spx_file_tensor(in, i);
        long ll = dense_mlp_layer(m, t);
        if (ll < 0) {
            SPX_TRY(rc, spx_tensor_copy(ctx, w, in, t));
            continue;
        }
        uint32_t l = (uint32_t)ll;
        if (done_layer[l])
            continue;
        /* the block's routers and experts take the place of its first dense MLP tensor */
        done_layer[l] = 1;
        const spx_moe *moe = m->layers[l].moe;
        SPX_TRY(rc, write_router(ctx, w, l, "ffn_up", &moe->r_up));
        SPX_TRY(rc, write_router(ctx, w, l, "ffn_down", &moe->r_down));
        if (m->cfg.gated)
            SPX_TRY(rc, write_experts(ctx, w, l, "ffn_gate", moe->gate, moe->k_up, t->dtype, o, enc));
        SPX_TRY(rc, write_experts(ctx, w, l, "ffn_up", moe->up, moe->k_up, t->dtype, o, enc));
        SPX_TRY(rc, write_experts(ctx, w, l, "ffn_down", moe->down, moe->k_down, t->dtype, o, enc));
    }
    rc = spx_writer_finish(w);
    if (rc < 0)
        *ctx = *spx_writer_ctx(w);
done:
    spx_writer_free(w);
    free(done_layer);
    return rc;
}
