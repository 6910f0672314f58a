/* spx_model.c: load a dense transformer from a .spx file (names and shapes of spx_arch.h). */
#include "spx_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_moe.h"

static const spx_tensor *find(const spx_file *f, int layer, const char *base, const char *suffix)
{
    char name[SPX_NAME_MAX + 32];
    spx_tensor_name(name, sizeof name, layer, base, suffix);
    return spx_file_find(f, name);
}

/* ---- missing-tensor report ----------------------------------------------------------------- */

typedef struct missing_list {
    char text[700];           /* "a, b, c" (truncated with a count of the rest) */
    size_t count, listed;
} missing_list;

static void require(missing_list *ml, const spx_file *f, int layer, const char *base, const char *suffix)
{
    char name[SPX_NAME_MAX + 32];
    size_t len;
    spx_tensor_name(name, sizeof name, layer, base, suffix);
    if (spx_file_find(f, name))
        return;
    ml->count++;
    len = strlen(ml->text);
    if (len + strlen(name) + 3 < sizeof ml->text - 40) {
        snprintf(ml->text + len, sizeof ml->text - len, "%s%s", len ? ", " : "", name);
        ml->listed++;
    }
}

static int check_missing(spx_ctx *ctx, const spx_file *f, const spx_model_config *c)
{
    missing_list ml;
    memset(&ml, 0, sizeof ml);
    require(&ml, f, -1, "token_embd", "weight");
    if (!c->no_output_norm)
        require(&ml, f, -1, "output_norm", "weight");
    if (c->n_pos_embd)
        require(&ml, f, -1, "position_embd", "weight");
    if (!c->tied_embeddings)
        require(&ml, f, -1, "output", "weight");
    for (uint32_t i = 0; i < c->n_layers; i++) {
        int l = (int)i;
        static const char *const attn[] = {"attn_q", "attn_k", "attn_v"};
        require(&ml, f, l, "attn_norm", "weight");
        require(&ml, f, l, "ffn_norm", "weight");
        for (int j = 0; j < 3; j++) {
            require(&ml, f, l, attn[j], "weight");
            if (c->attn_bias)
                require(&ml, f, l, attn[j], "bias");
        }
        require(&ml, f, l, "attn_output", "weight");
        if (c->attn_out_bias)
            require(&ml, f, l, "attn_output", "bias");
        if (spx_file_block_expanded(f, i))
            continue;   /* experts and routers are checked by spx_model_load_moe */
        if (c->gated) {
            require(&ml, f, l, "ffn_gate", "weight");
            if (c->ffn_bias)
                require(&ml, f, l, "ffn_gate", "bias");
        }
        require(&ml, f, l, "ffn_up", "weight");
        require(&ml, f, l, "ffn_down", "weight");
        if (c->ffn_bias) {
            require(&ml, f, l, "ffn_up", "bias");
            require(&ml, f, l, "ffn_down", "bias");
        }
    }
    if (ml.count == 0)
        return 0;
    if (ml.count > ml.listed)
        return spx_err_set(ctx, SPX_E_MISSING, "%s: %zu required tensor(s) missing: %s (+%zu more)",
                           spx_file_path(f), ml.count, ml.text, ml.count - ml.listed);
    return spx_err_set(ctx, SPX_E_MISSING, "%s: %zu required tensor(s) missing: %s", spx_file_path(f),
                       ml.count, ml.text);
}

/* ---- loading -------------------------------------------------------------------------------- */

static int keep_owned(spx_ctx *ctx, spx_model *m, float *p)
{
    if (!p)
        return 0;
    if (m->n_owned == m->cap_owned) {
        size_t cap = m->cap_owned ? 2 * m->cap_owned : 16;
        void **nw = realloc(m->owned, cap * sizeof *nw);
        if (!nw) {
            free(p);
            return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
        }
        m->owned = nw;
        m->cap_owned = cap;
    }
    m->owned[m->n_owned++] = p;
    return 0;
}

/* 1-D tensor [n] (or the given 2-D shape when d1 != 0) as fp32 owned by the model when converted. */
static int load_plain(spx_ctx *ctx, spx_model *m, const spx_tensor *t, uint64_t d0, uint64_t d1, const float **out)
{
    int rc = 0;
    float *owned = NULL;
    int nd = d1 ? 2 : 1;
    if (t->ndim != nd || t->dims[0] != d0 || (nd == 2 && t->dims[1] != d1))
        return spx_err_set(ctx, SPX_E_SHAPE, "%s: tensor '%s' has shape [%llu%s%llu] (ndim %u), expected [%llu%s%llu]",
                           spx_file_path(m->file), t->name, (unsigned long long)t->dims[0], t->ndim > 1 ? ", " : "",
                           t->ndim > 1 ? (unsigned long long)t->dims[1] : 0ull, (unsigned)t->ndim,
                           (unsigned long long)d0, nd == 2 ? ", " : "", nd == 2 ? (unsigned long long)d1 : 0ull);
    SPX_TRY(rc, spx_tensor_load_f32(ctx, m->file, t, d1 ? d0 * d1 : d0, 0, out, &owned));
    SPX_TRY(rc, keep_owned(ctx, m, owned));
done:
    return rc;
}

static int load_norm(spx_ctx *ctx, spx_model *m, int layer, const char *base, spx_norm *n)
{
    int rc = 0;
    const spx_tensor *w = find(m->file, layer, base, "weight");
    const spx_tensor *b = find(m->file, layer, base, "bias");
    SPX_TRY(rc, load_plain(ctx, m, w, m->cfg.dim, 0, &n->w));
    /* A norm bias only exists for LayerNorm; an RMSNorm has none by definition. */
    if (b && m->cfg.norm_type == SPX_NORM_LAYER)
        SPX_TRY(rc, load_plain(ctx, m, b, m->cfg.dim, 0, &n->b));
done:
    return rc;
}

static int load_linear(spx_ctx *ctx, spx_model *m, int layer, const char *base, uint32_t rows, uint32_t cols,
                       int copy, spx_linear *l)
{
    const spx_tensor *w = find(m->file, layer, base, "weight");
    const spx_tensor *b = find(m->file, layer, base, "bias");
    return spx_linear_load(ctx, m->file, w, b, rows, cols, copy, l);
}

static int load_layer(spx_ctx *ctx, spx_model *m, uint32_t i, int copy)
{
    int rc = 0;
    const spx_model_config *c = &m->cfg;
    spx_layer *L = &m->layers[i];
    int l = (int)i;
    uint32_t hq = c->n_heads * c->head_dim, hk = c->n_kv_heads * c->head_dim;
    SPX_TRY(rc, load_norm(ctx, m, l, "attn_norm", &L->attn_norm));
    SPX_TRY(rc, load_norm(ctx, m, l, "ffn_norm", &L->ffn_norm));
    SPX_TRY(rc, load_linear(ctx, m, l, "attn_q", hq, c->dim, copy, &L->q));
    SPX_TRY(rc, load_linear(ctx, m, l, "attn_k", hk, c->dim, copy, &L->k));
    SPX_TRY(rc, load_linear(ctx, m, l, "attn_v", hk, c->dim, copy, &L->v));
    SPX_TRY(rc, load_linear(ctx, m, l, "attn_output", c->dim, hq, copy, &L->o));
    if (spx_file_block_expanded(m->file, i)) {
        SPX_TRY(rc, spx_model_load_moe(ctx, m, i, copy));
    } else {
        if (c->gated)
            SPX_TRY(rc, load_linear(ctx, m, l, "ffn_gate", c->ffn_dim, c->dim, copy, &L->gate));
        SPX_TRY(rc, load_linear(ctx, m, l, "ffn_up", c->ffn_dim, c->dim, copy, &L->up));
        SPX_TRY(rc, load_linear(ctx, m, l, "ffn_down", c->dim, c->ffn_dim, copy, &L->down));
    }
done:
    return rc;
}

/* Inverse rotary frequencies in double, HF conventions (rope_init_fn of transformers):
 * inv[i] = theta^(-2i/rope_dim); "linear" divides by factor; "llama3" keeps high frequencies,
 * divides low frequencies by factor and interpolates in between. */
static int rope_init(spx_ctx *ctx, spx_model *m)
{
    const spx_model_config *c = &m->cfg;
    uint32_t half = c->rope_dim / 2;
    m->rope_inv_freq = calloc(half ? half : 1, sizeof(double));
    if (!m->rope_inv_freq)
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
    if (c->rope_scaling == SPX_ROPE_LLAMA3 &&
        !(c->rope_orig_ctx > 0 && c->rope_high_freq_factor > c->rope_low_freq_factor && c->rope_low_freq_factor > 0))
        return spx_err_set(ctx, SPX_E_CONFIG,
                           "%s: llama3 rope scaling needs original_context_length > 0 and high_freq_factor > low_freq_factor > 0",
                           spx_file_path(m->file));
    for (uint32_t i = 0; i < half; i++) {
        double inv = 1.0 / pow((double)c->rope_theta, (double)(2 * i) / (double)c->rope_dim);
        double factor = (double)c->rope_factor;
        if (c->rope_scaling == SPX_ROPE_LINEAR) {
            inv /= factor;
        } else if (c->rope_scaling == SPX_ROPE_LLAMA3) {
            double orig = (double)c->rope_orig_ctx;
            double lo = (double)c->rope_low_freq_factor, hi = (double)c->rope_high_freq_factor;
            double wavelen = 2.0 * M_PI / inv;
            if (wavelen > orig / lo) {
                inv /= factor;
            } else if (wavelen >= orig / hi) {
                double smooth = (orig / wavelen - lo) / (hi - lo);
                inv = (1.0 - smooth) * inv / factor + smooth * inv;
            }
        }
        m->rope_inv_freq[i] = inv;
    }
    return 0;
}

int spx_model_open_file(spx_ctx *ctx, spx_file **fp, unsigned flags, spx_model **out)
{
    int rc = 0;
    spx_model *m = NULL;
    int copy = (flags & SPX_MODEL_COPY_WEIGHTS) ? SPX_LINEAR_COPY
               : (flags & SPX_MODEL_KERNELS)    ? SPX_LINEAR_KERNELS : SPX_LINEAR_F32;
    const spx_model_config *c;
    const spx_tensor *t;
    *out = NULL;
    m = calloc(1, sizeof *m);
    if (!m) {
        spx_file_free(*fp);
        *fp = NULL;
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
    }
    m->file = *fp;
    *fp = NULL;
    c = &m->cfg;
    if (flags & SPX_MODEL_VERIFY_DATA)
        SPX_TRY(rc, spx_file_verify_data(ctx, m->file));
    SPX_TRY(rc, spx_config_from_file(ctx, m->file, &m->cfg));
    if ((uint64_t)c->n_heads * c->head_dim > (1u << 24) || (uint64_t)c->n_kv_heads * c->head_dim > (1u << 24))
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: attention width n_heads*head_dim too large", spx_file_path(m->file));
    SPX_TRY(rc, spx_file_check_unrouted(ctx, m->file, c->n_layers));
    SPX_TRY(rc, check_missing(ctx, m->file, c));
    SPX_TRY(rc, rope_init(ctx, m));
    SPX_TRY(rc, load_plain(ctx, m, find(m->file, -1, "token_embd", "weight"), c->vocab_size, c->dim, &m->tok_embd));
    if (c->n_pos_embd)
        SPX_TRY(rc, load_plain(ctx, m, find(m->file, -1, "position_embd", "weight"), c->n_pos_embd, c->dim,
                               &m->pos_embd));
    if (!c->no_output_norm)
        SPX_TRY(rc, load_norm(ctx, m, -1, "output_norm", &m->out_norm));
    /* Tied models normally have no output.weight; when one is stored anyway it is used. */
    t = find(m->file, -1, "output", "weight");
    if (t) {
        SPX_TRY(rc, spx_linear_load(ctx, m->file, t, find(m->file, -1, "output", "bias"), c->vocab_size, c->dim,
                                    copy == SPX_LINEAR_KERNELS ? copy : SPX_LINEAR_F32,
                                    &m->output));
    } else {
        m->output.kind = SPX_LINEAR_DENSE;
        m->output.rows = c->vocab_size;
        m->output.cols = c->dim;
        m->output.w = m->tok_embd;
    }
    m->layers = calloc(c->n_layers, sizeof *m->layers);
    if (!m->layers)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    for (uint32_t i = 0; i < c->n_layers; i++)
        SPX_TRY(rc, load_layer(ctx, m, i, copy));
    SPX_TRY(rc, spx_model_load_experts_finish(ctx, m, copy));
    *out = m;
    m = NULL;
done:
    spx_model_free(m);
    return rc;
}

int spx_model_open(spx_ctx *ctx, const char *path, unsigned flags, spx_model **out)
{
    int rc = 0;
    spx_file *f = NULL;
    *out = NULL;
    SPX_TRY(rc, spx_file_open(ctx, path, (flags & SPX_MODEL_VERIFY_DATA) ? SPX_OPEN_VERIFY_DATA : 0, &f));
    /* data already verified by spx_file_open */
    rc = spx_model_open_file(ctx, &f, flags & ~SPX_MODEL_VERIFY_DATA, out);
done:
    return rc;
}

void spx_model_free(spx_model *m)
{
    if (!m)
        return;
    if (m->layers) {
        for (uint32_t i = 0; i < m->cfg.n_layers; i++) {
            spx_layer *L = &m->layers[i];
            spx_linear_release(&L->q);
            spx_linear_release(&L->k);
            spx_linear_release(&L->v);
            spx_linear_release(&L->o);
            spx_linear_release(&L->gate);
            spx_linear_release(&L->up);
            spx_linear_release(&L->down);
            spx_moe_free(L->moe);
            spx_gate_free(L->gating);
        }
        free(m->layers);
    }
    spx_linear_release(&m->output);
    for (size_t i = 0; i < m->n_owned; i++)
        free(m->owned[i]);
    free(m->owned);
    free(m->rope_inv_freq);
    spx_file_free(m->file);
    free(m);
}

static uint64_t linear_params(const spx_linear *l)
{
    if (!spx_linear_present(l))
        return 0;
    return (uint64_t)l->rows * l->cols + (l->bias ? l->rows : 0);
}

uint64_t spx_model_param_count(const spx_model *m)
{
    const spx_model_config *c = &m->cfg;
    uint64_t n = (uint64_t)c->vocab_size * c->dim + (m->out_norm.w ? c->dim : 0) + (m->out_norm.b ? c->dim : 0);
    n += (uint64_t)c->n_pos_embd * c->dim;
    if (m->output.w != m->tok_embd)
        n += linear_params(&m->output);
    for (uint32_t i = 0; i < c->n_layers; i++) {
        const spx_layer *L = &m->layers[i];
        n += 2ull * c->dim + (L->attn_norm.b ? c->dim : 0) + (L->ffn_norm.b ? c->dim : 0);
        n += linear_params(&L->q) + linear_params(&L->k) + linear_params(&L->v) + linear_params(&L->o);
        n += linear_params(&L->gate) + linear_params(&L->up) + linear_params(&L->down);
        if (L->moe) {
            const spx_moe *e = L->moe;
            const spx_router *r[2] = {&e->r_up, &e->r_down};
            for (uint32_t j = 0; j < e->k_up; j++)
                n += linear_params(&e->gate[j]) + linear_params(&e->up[j]);
            for (uint32_t j = 0; j < e->k_down; j++)
                n += linear_params(&e->down[j]);
            for (int j = 0; j < 2; j++)
                n += (uint64_t)r[j]->k * spx_router_rdim(r[j]) +
                     (r[j]->pca_dim ? (uint64_t)r[j]->pca_dim * r[j]->in_dim + r[j]->in_dim : 0);
        }
        if (L->gating)
            n += linear_params(&L->gating->w1) + linear_params(&L->gating->w2);
    }
    return n;
}
