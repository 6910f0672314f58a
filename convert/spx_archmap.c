/* spx_archmap.c: the name tables and tensor transforms (see spx_archmap.h). */
#include "spx_archmap.h"

#include <stdio.h>
#include <string.h>

#define L(src, base, sfx, place, role, shape, cond) \
    {src, base, sfx, place, role, shape, cond, SPX_XFORM_NONE}
#define BLK(src, base, sfx, role, shape, cond) \
    L("model.layers.{i}." src, base, sfx, SPX_PLACE_BLOCK, role, shape, cond)

/* Hugging Face LlamaForCausalLM (also Mistral, Qwen2). Weights are stored [out, in] already. */
static const spx_archmap_entry llama_entries[] = {
    L("model.embed_tokens.weight", "token_embd", "weight", SPX_PLACE_FIRST, SPX_ROLE_EMBEDDING, SPX_SHAPE_VOCAB_DIM, SPX_COND_ALWAYS),
    BLK("input_layernorm.weight", "attn_norm", "weight", SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_ALWAYS),
    BLK("self_attn.q_proj.weight", "attn_q", "weight", SPX_ROLE_ATTN, SPX_SHAPE_Q_DIM, SPX_COND_ALWAYS),
    BLK("self_attn.k_proj.weight", "attn_k", "weight", SPX_ROLE_ATTN, SPX_SHAPE_KV_DIM, SPX_COND_ALWAYS),
    BLK("self_attn.v_proj.weight", "attn_v", "weight", SPX_ROLE_ATTN, SPX_SHAPE_KV_DIM, SPX_COND_ALWAYS),
    BLK("self_attn.o_proj.weight", "attn_output", "weight", SPX_ROLE_ATTN, SPX_SHAPE_DIM_Q, SPX_COND_ALWAYS),
    BLK("post_attention_layernorm.weight", "ffn_norm", "weight", SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_ALWAYS),
    BLK("mlp.gate_proj.weight", "ffn_gate", "weight", SPX_ROLE_MLP, SPX_SHAPE_FFN_DIM, SPX_COND_GATED),
    BLK("mlp.up_proj.weight", "ffn_up", "weight", SPX_ROLE_MLP, SPX_SHAPE_FFN_DIM, SPX_COND_ALWAYS),
    BLK("mlp.down_proj.weight", "ffn_down", "weight", SPX_ROLE_MLP, SPX_SHAPE_DIM_FFN, SPX_COND_ALWAYS),
    BLK("self_attn.q_proj.bias", "attn_q", "bias", SPX_ROLE_ATTN, SPX_SHAPE_Q, SPX_COND_ATTN_BIAS),
    BLK("self_attn.k_proj.bias", "attn_k", "bias", SPX_ROLE_ATTN, SPX_SHAPE_KV, SPX_COND_ATTN_BIAS),
    BLK("self_attn.v_proj.bias", "attn_v", "bias", SPX_ROLE_ATTN, SPX_SHAPE_KV, SPX_COND_ATTN_BIAS),
    BLK("self_attn.o_proj.bias", "attn_output", "bias", SPX_ROLE_ATTN, SPX_SHAPE_DIM, SPX_COND_ATTN_OUT_BIAS),
    BLK("mlp.gate_proj.bias", "ffn_gate", "bias", SPX_ROLE_MLP, SPX_SHAPE_FFN, SPX_COND_FFN_GATE_BIAS),
    BLK("mlp.up_proj.bias", "ffn_up", "bias", SPX_ROLE_MLP, SPX_SHAPE_FFN, SPX_COND_FFN_BIAS),
    BLK("mlp.down_proj.bias", "ffn_down", "bias", SPX_ROLE_MLP, SPX_SHAPE_DIM, SPX_COND_FFN_BIAS),
    L("model.norm.weight", "output_norm", "weight", SPX_PLACE_LAST, SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_ALWAYS),
    L("lm_head.weight", "output", "weight", SPX_PLACE_LAST, SPX_ROLE_OUTPUT, SPX_SHAPE_VOCAB_DIM, SPX_COND_UNTIED),
};

static const spx_archmap maps[] = {
    {"llama", llama_entries, sizeof llama_entries / sizeof llama_entries[0]},
};

const spx_archmap *spx_archmap_find(const char *arch)
{
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
        if (strcmp(maps[i].arch, arch) == 0)
            return &maps[i];
    return NULL;
}

int spx_archmap_src_name(const spx_archmap_entry *e, uint32_t layer, char *buf, size_t cap)
{
    const char *at = strstr(e->src, "{i}");
    int n;
    if (e->place != SPX_PLACE_BLOCK || !at)
        n = snprintf(buf, cap, "%s", e->src);
    else
        n = snprintf(buf, cap, "%.*s%u%s", (int)(at - e->src), e->src, layer, at + 3);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

void spx_archmap_canon_name(const spx_archmap_entry *e, uint32_t layer, char *buf, size_t cap)
{
    spx_tensor_name(buf, cap, e->place == SPX_PLACE_BLOCK ? (int)layer : -1, e->base, e->suffix);
}

/* name == prefix + decimal + suffix, where the pattern is prefix "{i}" suffix. */
static int match_block(const char *pat, const char *name, uint32_t *layer)
{
    const char *at = strstr(pat, "{i}");
    if (!at)
        return 0;
    size_t pre = (size_t)(at - pat);
    if (strncmp(name, pat, pre) != 0)
        return 0;
    const char *p = name + pre;
    uint64_t v = 0;
    size_t nd = 0;
    while (p[nd] >= '0' && p[nd] <= '9') {
        v = v * 10 + (uint64_t)(p[nd] - '0');
        if (++nd > 9)
            return 0;
    }
    if (nd == 0 || (nd > 1 && p[0] == '0') || strcmp(p + nd, at + 3) != 0)
        return 0;
    *layer = (uint32_t)v;
    return 1;
}

long spx_archmap_match(const spx_archmap *m, const char *name, uint32_t *layer)
{
    for (size_t i = 0; i < m->count; i++) {
        const spx_archmap_entry *e = &m->entries[i];
        if (e->place == SPX_PLACE_BLOCK) {
            if (match_block(e->src, name, layer))
                return (long)i;
        } else if (strcmp(e->src, name) == 0) {
            *layer = 0;
            return (long)i;
        }
    }
    return -1;
}

int spx_archmap_present(const spx_archmap_entry *e, const spx_model_config *c)
{
    switch (e->cond) {
    case SPX_COND_ALWAYS: return 1;
    case SPX_COND_UNTIED: return !c->tied_embeddings;
    case SPX_COND_GATED: return c->gated != 0;
    case SPX_COND_ATTN_BIAS: return c->attn_bias != 0;
    case SPX_COND_ATTN_OUT_BIAS: return c->attn_out_bias != 0;
    case SPX_COND_FFN_BIAS: return c->ffn_bias != 0;
    case SPX_COND_FFN_GATE_BIAS: return c->gated && c->ffn_bias;
    case SPX_COND_LAYER_NORM: return c->norm_type == SPX_NORM_LAYER;
    default: return 0;
    }
}

void spx_archmap_shape(const spx_archmap_entry *e, const spx_model_config *c, uint64_t dims[2], uint32_t *ndim)
{
    uint64_t q = (uint64_t)c->n_heads * c->head_dim, kv = (uint64_t)c->n_kv_heads * c->head_dim;
    uint64_t a = 0, b = 0;
    switch (e->shape) {
    case SPX_SHAPE_VOCAB_DIM: a = c->vocab_size; b = c->dim; break;
    case SPX_SHAPE_DIM: a = c->dim; break;
    case SPX_SHAPE_Q_DIM: a = q; b = c->dim; break;
    case SPX_SHAPE_KV_DIM: a = kv; b = c->dim; break;
    case SPX_SHAPE_DIM_Q: a = c->dim; b = q; break;
    case SPX_SHAPE_FFN_DIM: a = c->ffn_dim; b = c->dim; break;
    case SPX_SHAPE_DIM_FFN: a = c->dim; b = c->ffn_dim; break;
    case SPX_SHAPE_Q: a = q; break;
    case SPX_SHAPE_KV: a = kv; break;
    case SPX_SHAPE_FFN: a = c->ffn_dim; break;
    default: break;
    }
    dims[0] = a;
    dims[1] = b;
    *ndim = b ? 2 : 1;
}

const char *spx_xform_name(int xform)
{
    switch (xform) {
    case SPX_XFORM_NONE: return "none";
    case SPX_XFORM_TRANSPOSE: return "transpose";
    case SPX_XFORM_SPLIT_QKV: return "split_qkv";
    case SPX_XFORM_ROPE_DEINTERLEAVE: return "rope_deinterleave";
    default: return "?";
    }
}

int spx_xform_apply(spx_ctx *ctx, int xform, uint32_t head_dim, const void *src, void *dst, size_t elem_size,
                    uint64_t rows, uint64_t cols)
{
    const unsigned char *s = src;
    unsigned char *d = dst;
    uint64_t row_bytes;
    if (__builtin_mul_overflow(cols, (uint64_t)elem_size, &row_bytes) ||
        (rows && row_bytes > SIZE_MAX / rows))
        return spx_err_set(ctx, SPX_E_OVERFLOW, "transform %s: %llu x %llu elements overflow", spx_xform_name(xform),
                           (unsigned long long)rows, (unsigned long long)cols);
    size_t rb = (size_t)row_bytes;
    switch (xform) {
    case SPX_XFORM_NONE:
        if (rows)
            memcpy(d, s, rb * (size_t)rows);
        return 0;
    case SPX_XFORM_ROPE_DEINTERLEAVE: {
        uint64_t hd = head_dim, half = head_dim / 2;
        if (hd == 0 || hd % 2 || rows % hd)
            return spx_err_set(ctx, SPX_E_SHAPE, "rotary permutation: %llu rows are not whole heads of even size %u",
                               (unsigned long long)rows, head_dim);
        for (uint64_t h = 0; h < rows / hd; h++)
            for (uint64_t j = 0; j < half; j++) {
                memcpy(d + (size_t)(h * hd + j) * rb, s + (size_t)(h * hd + 2 * j) * rb, rb);
                memcpy(d + (size_t)(h * hd + half + j) * rb, s + (size_t)(h * hd + 2 * j + 1) * rb, rb);
            }
        return 0;
    }
    default:
        return spx_err_set(ctx, SPX_E_UNSUPPORTED, "tensor transform '%s' is not implemented yet",
                           spx_xform_name(xform));
    }
}
