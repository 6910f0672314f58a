/* spx_archmap.c: the name tables and tensor transforms (see spx_archmap.h). */
#include "spx_archmap.h"

#include <stdio.h>
#include <string.h>

#define X(src, base, sfx, place, role, shape, cond, xform, part) \
    {src, base, sfx, place, role, shape, cond, xform, part}
#define L(src, base, sfx, place, role, shape, cond) X(src, base, sfx, place, role, shape, cond, SPX_XFORM_NONE, 0)
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

/* Hugging Face GPT2LMHeadModel. Conv1D weights are [in, out]; c_attn fuses q|k|v along its
 * output (columns of the weight, the bias in that order). All biases present, LayerNorm. */
#define G2(src, base, sfx, role, shape, cond, xf, part) \
    X("transformer.h.{i}." src, base, sfx, SPX_PLACE_BLOCK, role, shape, cond, xf, part)
static const spx_archmap_entry gpt2_entries[] = {
    L("transformer.wte.weight", "token_embd", "weight", SPX_PLACE_FIRST, SPX_ROLE_EMBEDDING, SPX_SHAPE_VOCAB_DIM, SPX_COND_ALWAYS),
    L("transformer.wpe.weight", "position_embd", "weight", SPX_PLACE_FIRST, SPX_ROLE_EMBEDDING, SPX_SHAPE_POS_DIM, SPX_COND_ALWAYS),
    G2("ln_1.weight", "attn_norm", "weight", SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_ALWAYS, SPX_XFORM_NONE, 0),
    G2("attn.c_attn.weight", "attn_q", "weight", SPX_ROLE_ATTN, SPX_SHAPE_Q_DIM, SPX_COND_ALWAYS, SPX_XFORM_SPLIT_QKV_T, 0),
    G2("attn.c_attn.weight", "attn_k", "weight", SPX_ROLE_ATTN, SPX_SHAPE_KV_DIM, SPX_COND_ALWAYS, SPX_XFORM_SPLIT_QKV_T, 1),
    G2("attn.c_attn.weight", "attn_v", "weight", SPX_ROLE_ATTN, SPX_SHAPE_KV_DIM, SPX_COND_ALWAYS, SPX_XFORM_SPLIT_QKV_T, 2),
    G2("attn.c_proj.weight", "attn_output", "weight", SPX_ROLE_ATTN, SPX_SHAPE_DIM_Q, SPX_COND_ALWAYS, SPX_XFORM_TRANSPOSE, 0),
    G2("ln_2.weight", "ffn_norm", "weight", SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_ALWAYS, SPX_XFORM_NONE, 0),
    G2("mlp.c_fc.weight", "ffn_up", "weight", SPX_ROLE_MLP, SPX_SHAPE_FFN_DIM, SPX_COND_ALWAYS, SPX_XFORM_TRANSPOSE, 0),
    G2("mlp.c_proj.weight", "ffn_down", "weight", SPX_ROLE_MLP, SPX_SHAPE_DIM_FFN, SPX_COND_ALWAYS, SPX_XFORM_TRANSPOSE, 0),
    G2("ln_1.bias", "attn_norm", "bias", SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_LAYER_NORM, SPX_XFORM_NONE, 0),
    G2("attn.c_attn.bias", "attn_q", "bias", SPX_ROLE_ATTN, SPX_SHAPE_Q, SPX_COND_ATTN_BIAS, SPX_XFORM_SPLIT_QKV, 0),
    G2("attn.c_attn.bias", "attn_k", "bias", SPX_ROLE_ATTN, SPX_SHAPE_KV, SPX_COND_ATTN_BIAS, SPX_XFORM_SPLIT_QKV, 1),
    G2("attn.c_attn.bias", "attn_v", "bias", SPX_ROLE_ATTN, SPX_SHAPE_KV, SPX_COND_ATTN_BIAS, SPX_XFORM_SPLIT_QKV, 2),
    G2("attn.c_proj.bias", "attn_output", "bias", SPX_ROLE_ATTN, SPX_SHAPE_DIM, SPX_COND_ATTN_OUT_BIAS, SPX_XFORM_NONE, 0),
    G2("ln_2.bias", "ffn_norm", "bias", SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_LAYER_NORM, SPX_XFORM_NONE, 0),
    G2("mlp.c_fc.bias", "ffn_up", "bias", SPX_ROLE_MLP, SPX_SHAPE_FFN, SPX_COND_FFN_BIAS, SPX_XFORM_NONE, 0),
    G2("mlp.c_proj.bias", "ffn_down", "bias", SPX_ROLE_MLP, SPX_SHAPE_DIM, SPX_COND_FFN_BIAS, SPX_XFORM_NONE, 0),
    L("transformer.ln_f.weight", "output_norm", "weight", SPX_PLACE_LAST, SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_OUTPUT_NORM),
    L("transformer.ln_f.bias", "output_norm", "bias", SPX_PLACE_LAST, SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_OUTPUT_NORM_BIAS),
    L("lm_head.weight", "output", "weight", SPX_PLACE_LAST, SPX_ROLE_OUTPUT, SPX_SHAPE_VOCAB_DIM, SPX_COND_UNTIED),
};

/* Hugging Face GPTNeoXForCausalLM (Pythia). query_key_value [3*d, d] interleaves q, k, v per head
 * ([n_heads, 3, head_dim] rows). */
#define NX(src, base, sfx, role, shape, cond, xf, part) \
    X("gpt_neox.layers.{i}." src, base, sfx, SPX_PLACE_BLOCK, role, shape, cond, xf, part)
static const spx_archmap_entry neox_entries[] = {
    L("gpt_neox.embed_in.weight", "token_embd", "weight", SPX_PLACE_FIRST, SPX_ROLE_EMBEDDING, SPX_SHAPE_VOCAB_DIM, SPX_COND_ALWAYS),
    NX("input_layernorm.weight", "attn_norm", "weight", SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_ALWAYS, SPX_XFORM_NONE, 0),
    NX("attention.query_key_value.weight", "attn_q", "weight", SPX_ROLE_ATTN, SPX_SHAPE_Q_DIM, SPX_COND_ALWAYS, SPX_XFORM_SPLIT_QKV_HEADS, 0),
    NX("attention.query_key_value.weight", "attn_k", "weight", SPX_ROLE_ATTN, SPX_SHAPE_KV_DIM, SPX_COND_ALWAYS, SPX_XFORM_SPLIT_QKV_HEADS, 1),
    NX("attention.query_key_value.weight", "attn_v", "weight", SPX_ROLE_ATTN, SPX_SHAPE_KV_DIM, SPX_COND_ALWAYS, SPX_XFORM_SPLIT_QKV_HEADS, 2),
    NX("attention.dense.weight", "attn_output", "weight", SPX_ROLE_ATTN, SPX_SHAPE_DIM_Q, SPX_COND_ALWAYS, SPX_XFORM_NONE, 0),
    NX("post_attention_layernorm.weight", "ffn_norm", "weight", SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_ALWAYS, SPX_XFORM_NONE, 0),
    NX("mlp.dense_h_to_4h.weight", "ffn_up", "weight", SPX_ROLE_MLP, SPX_SHAPE_FFN_DIM, SPX_COND_ALWAYS, SPX_XFORM_NONE, 0),
    NX("mlp.dense_4h_to_h.weight", "ffn_down", "weight", SPX_ROLE_MLP, SPX_SHAPE_DIM_FFN, SPX_COND_ALWAYS, SPX_XFORM_NONE, 0),
    NX("input_layernorm.bias", "attn_norm", "bias", SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_LAYER_NORM, SPX_XFORM_NONE, 0),
    NX("attention.query_key_value.bias", "attn_q", "bias", SPX_ROLE_ATTN, SPX_SHAPE_Q, SPX_COND_ATTN_BIAS, SPX_XFORM_SPLIT_QKV_HEADS, 0),
    NX("attention.query_key_value.bias", "attn_k", "bias", SPX_ROLE_ATTN, SPX_SHAPE_KV, SPX_COND_ATTN_BIAS, SPX_XFORM_SPLIT_QKV_HEADS, 1),
    NX("attention.query_key_value.bias", "attn_v", "bias", SPX_ROLE_ATTN, SPX_SHAPE_KV, SPX_COND_ATTN_BIAS, SPX_XFORM_SPLIT_QKV_HEADS, 2),
    NX("attention.dense.bias", "attn_output", "bias", SPX_ROLE_ATTN, SPX_SHAPE_DIM, SPX_COND_ATTN_OUT_BIAS, SPX_XFORM_NONE, 0),
    NX("post_attention_layernorm.bias", "ffn_norm", "bias", SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_LAYER_NORM, SPX_XFORM_NONE, 0),
    NX("mlp.dense_h_to_4h.bias", "ffn_up", "bias", SPX_ROLE_MLP, SPX_SHAPE_FFN, SPX_COND_FFN_BIAS, SPX_XFORM_NONE, 0),
    NX("mlp.dense_4h_to_h.bias", "ffn_down", "bias", SPX_ROLE_MLP, SPX_SHAPE_DIM, SPX_COND_FFN_BIAS, SPX_XFORM_NONE, 0),
    L("gpt_neox.final_layer_norm.weight", "output_norm", "weight", SPX_PLACE_LAST, SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_OUTPUT_NORM),
    L("gpt_neox.final_layer_norm.bias", "output_norm", "bias", SPX_PLACE_LAST, SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_OUTPUT_NORM_BIAS),
    L("embed_out.weight", "output", "weight", SPX_PLACE_LAST, SPX_ROLE_OUTPUT, SPX_SHAPE_VOCAB_DIM, SPX_COND_UNTIED),
};

/* Hugging Face OPTForCausalLM: Linear weights [out, in]; embed_positions holds
 * max_position_embeddings + 2 rows (offset 2); the decoder's final_layer_norm exists only for
 * pre-norm models. The per-layer final_layer_norm is the MLP norm. */
#define OP(src, base, sfx, role, shape, cond) \
    L("model.decoder.layers.{i}." src, base, sfx, SPX_PLACE_BLOCK, role, shape, cond)
static const spx_archmap_entry opt_entries[] = {
    L("model.decoder.embed_tokens.weight", "token_embd", "weight", SPX_PLACE_FIRST, SPX_ROLE_EMBEDDING, SPX_SHAPE_VOCAB_DIM, SPX_COND_ALWAYS),
    L("model.decoder.embed_positions.weight", "position_embd", "weight", SPX_PLACE_FIRST, SPX_ROLE_EMBEDDING, SPX_SHAPE_POS_DIM, SPX_COND_ALWAYS),
    OP("self_attn_layer_norm.weight", "attn_norm", "weight", SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_ALWAYS),
    OP("self_attn.q_proj.weight", "attn_q", "weight", SPX_ROLE_ATTN, SPX_SHAPE_Q_DIM, SPX_COND_ALWAYS),
    OP("self_attn.k_proj.weight", "attn_k", "weight", SPX_ROLE_ATTN, SPX_SHAPE_KV_DIM, SPX_COND_ALWAYS),
    OP("self_attn.v_proj.weight", "attn_v", "weight", SPX_ROLE_ATTN, SPX_SHAPE_KV_DIM, SPX_COND_ALWAYS),
    OP("self_attn.out_proj.weight", "attn_output", "weight", SPX_ROLE_ATTN, SPX_SHAPE_DIM_Q, SPX_COND_ALWAYS),
    OP("final_layer_norm.weight", "ffn_norm", "weight", SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_ALWAYS),
    OP("fc1.weight", "ffn_up", "weight", SPX_ROLE_MLP, SPX_SHAPE_FFN_DIM, SPX_COND_ALWAYS),
    OP("fc2.weight", "ffn_down", "weight", SPX_ROLE_MLP, SPX_SHAPE_DIM_FFN, SPX_COND_ALWAYS),
    OP("self_attn_layer_norm.bias", "attn_norm", "bias", SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_LAYER_NORM),
    OP("self_attn.q_proj.bias", "attn_q", "bias", SPX_ROLE_ATTN, SPX_SHAPE_Q, SPX_COND_ATTN_BIAS),
    OP("self_attn.k_proj.bias", "attn_k", "bias", SPX_ROLE_ATTN, SPX_SHAPE_KV, SPX_COND_ATTN_BIAS),
    OP("self_attn.v_proj.bias", "attn_v", "bias", SPX_ROLE_ATTN, SPX_SHAPE_KV, SPX_COND_ATTN_BIAS),
    OP("self_attn.out_proj.bias", "attn_output", "bias", SPX_ROLE_ATTN, SPX_SHAPE_DIM, SPX_COND_ATTN_OUT_BIAS),
    OP("final_layer_norm.bias", "ffn_norm", "bias", SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_LAYER_NORM),
    OP("fc1.bias", "ffn_up", "bias", SPX_ROLE_MLP, SPX_SHAPE_FFN, SPX_COND_FFN_BIAS),
    OP("fc2.bias", "ffn_down", "bias", SPX_ROLE_MLP, SPX_SHAPE_DIM, SPX_COND_FFN_BIAS),
    L("model.decoder.final_layer_norm.weight", "output_norm", "weight", SPX_PLACE_LAST, SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_OUTPUT_NORM),
    L("model.decoder.final_layer_norm.bias", "output_norm", "bias", SPX_PLACE_LAST, SPX_ROLE_NORM, SPX_SHAPE_DIM, SPX_COND_OUTPUT_NORM_BIAS),
    L("lm_head.weight", "output", "weight", SPX_PLACE_LAST, SPX_ROLE_OUTPUT, SPX_SHAPE_VOCAB_DIM, SPX_COND_UNTIED),
};

#define COUNT(a) (sizeof a / sizeof a[0])
static const spx_archmap maps[] = {
    {"llama", llama_entries, COUNT(llama_entries), NULL},
    {"gpt2", gpt2_entries, COUNT(gpt2_entries), "transformer."},
    {"gptneox", neox_entries, COUNT(neox_entries), NULL},
    {"opt", opt_entries, COUNT(opt_entries), "model."},
};

const spx_archmap *spx_archmap_find(const char *arch)
{
    for (size_t i = 0; i < COUNT(maps); i++)
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

static long match_entry(const spx_archmap *m, const char *name, uint32_t *layer)
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

long spx_archmap_match(const spx_archmap *m, const char *name, uint32_t *layer)
{
    char full[256];
    long k = match_entry(m, name, layer);
    if (k >= 0 || !m->opt_prefix || strncmp(name, m->opt_prefix, strlen(m->opt_prefix)) == 0)
        return k;
    if ((size_t)snprintf(full, sizeof full, "%s%s", m->opt_prefix, name) >= sizeof full)
        return -1;
    return match_entry(m, full, layer);
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
    case SPX_COND_OUTPUT_NORM: return !c->no_output_norm;
    case SPX_COND_OUTPUT_NORM_BIAS: return !c->no_output_norm && c->norm_type == SPX_NORM_LAYER;
    default: return 0;
    }
}

void spx_archmap_dense_desc(const spx_archmap_entry *e, uint32_t layer, const char *canon, int dtype, uint32_t ndim,
                            const uint64_t dims[2], uint64_t numel, spx_tensor *desc)
{
    memset(desc, 0, sizeof *desc);
    snprintf(desc->name, sizeof desc->name, "%s", canon);
    desc->dtype = (uint8_t)dtype;
    desc->encoding = SPX_ENC_DENSE;
    desc->ndim = (uint8_t)ndim;
    desc->dims[0] = dims[0];
    desc->dims[1] = ndim == 2 ? dims[1] : 0;
    desc->nnz = numel;
    desc->role = e->role;
    desc->layer = e->place == SPX_PLACE_BLOCK ? layer : SPX_NO_INDEX;
    desc->expert = SPX_NO_INDEX;
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
    case SPX_SHAPE_POS_DIM: a = c->n_pos_embd; b = c->dim; break;
    default: break;
    }
    dims[0] = a;
    dims[1] = b;
    *ndim = b ? 2 : 1;
}

void spx_archmap_src_shape(const spx_archmap_entry *e, const spx_model_config *c, uint64_t dims[2], uint32_t *ndim)
{
    uint64_t t;
    spx_archmap_shape(e, c, dims, ndim);
    switch (e->xform) {
    case SPX_XFORM_TRANSPOSE:
        t = dims[0];
        dims[0] = dims[1];
        dims[1] = t;
        break;
    case SPX_XFORM_SPLIT_QKV:
    case SPX_XFORM_SPLIT_QKV_HEADS:
        dims[0] *= 3;
        break;
    case SPX_XFORM_SPLIT_QKV_T:   /* [out, in] -> Conv1D [in, 3*out] */
        t = dims[0];
        dims[0] = dims[1];
        dims[1] = 3 * t;
        break;
    default:
        break;
    }
}

const char *spx_xform_name(int xform)
{
    switch (xform) {
    case SPX_XFORM_NONE: return "none";
    case SPX_XFORM_TRANSPOSE: return "transpose";
    case SPX_XFORM_SPLIT_QKV: return "split_qkv";
    case SPX_XFORM_ROPE_DEINTERLEAVE: return "rope_deinterleave";
    case SPX_XFORM_SPLIT_QKV_T: return "split_qkv_transposed";
    case SPX_XFORM_SPLIT_QKV_HEADS: return "split_qkv_heads";
    default: return "?";
    }
}

int spx_xform_apply_part(spx_ctx *ctx, int xform, int part, uint32_t head_dim, const void *src, void *dst,
                         size_t elem_size, uint64_t rows, uint64_t cols)
{
    const unsigned char *s = src;
    unsigned char *d = dst;
    uint64_t row_bytes;
    const char *name = spx_xform_name(xform);
    if (__builtin_mul_overflow(cols, (uint64_t)elem_size, &row_bytes) ||
        (rows && row_bytes > SIZE_MAX / rows))
        return spx_err_set(ctx, SPX_E_OVERFLOW, "transform %s: %llu x %llu elements overflow", name,
                           (unsigned long long)rows, (unsigned long long)cols);
    size_t rb = (size_t)row_bytes, es = elem_size;
    int split = xform == SPX_XFORM_SPLIT_QKV || xform == SPX_XFORM_SPLIT_QKV_T || xform == SPX_XFORM_SPLIT_QKV_HEADS;
    if (split && (part < 0 || part > 2))
        return spx_err_set(ctx, SPX_E_ARG, "transform %s: part %d is not 0 (q), 1 (k) or 2 (v)", name, part);
    uint64_t p = (uint64_t)(part < 0 ? 0 : part);
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
    case SPX_XFORM_TRANSPOSE:   /* d[j][i] = s[i][j] */
        for (uint64_t i = 0; i < rows; i++)
            for (uint64_t j = 0; j < cols; j++)
                memcpy(d + (size_t)(j * rows + i) * es, s + (size_t)(i * cols + j) * es, es);
        return 0;
    case SPX_XFORM_SPLIT_QKV: {
        uint64_t r3 = rows / 3;
        if (rows % 3)
            return spx_err_set(ctx, SPX_E_SHAPE, "fused q/k/v split: %llu rows are not a multiple of 3",
                               (unsigned long long)rows);
        if (r3)
            memcpy(d, s + (size_t)(p * r3) * rb, (size_t)r3 * rb);
        return 0;
    }
    case SPX_XFORM_SPLIT_QKV_T: {   /* source [in = rows, 3*out = cols] -> [out, in] */
        uint64_t out = cols / 3;
        if (cols % 3)
            return spx_err_set(ctx, SPX_E_SHAPE, "fused q/k/v split: %llu columns are not a multiple of 3",
                               (unsigned long long)cols);
        for (uint64_t i = 0; i < rows; i++)
            for (uint64_t o = 0; o < out; o++)
                memcpy(d + (size_t)(o * rows + i) * es, s + (size_t)(i * cols + p * out + o) * es, es);
        return 0;
    }
    case SPX_XFORM_SPLIT_QKV_HEADS: {   /* rows [n_heads, 3, hd] -> [n_heads, hd] of part p */
        uint64_t hd = head_dim;
        if (hd == 0 || rows % (3 * hd))
            return spx_err_set(ctx, SPX_E_SHAPE, "per-head q/k/v split: %llu rows are not n_heads x 3 x %u",
                               (unsigned long long)rows, head_dim);
        for (uint64_t h = 0; h < rows / (3 * hd); h++)
            memcpy(d + (size_t)(h * hd) * rb, s + (size_t)((3 * h + p) * hd) * rb, (size_t)hd * rb);
        return 0;
    }
    default:
        return spx_err_set(ctx, SPX_E_UNSUPPORTED, "tensor transform '%s' is not known", name);
    }
}

int spx_xform_apply(spx_ctx *ctx, int xform, uint32_t head_dim, const void *src, void *dst, size_t elem_size,
                    uint64_t rows, uint64_t cols)
{
    return spx_xform_apply_part(ctx, xform, 0, head_dim, src, dst, elem_size, rows, cols);
}
