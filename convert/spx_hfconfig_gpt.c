/* spx_hfconfig_gpt.c: config.json of GPT-2, GPT-NeoX (Pythia) and OPT -> spx_model_config.
 *
 * Field names and defaults follow the transformers config classes (GPT2Config, GPTNeoXConfig,
 * OPTConfig); all three use LayerNorm with bias, a non-gated MLP and 1/sqrt(head_dim) attention
 * scaling, and full multi-head attention (n_kv_heads = n_heads). Settings that change the
 * computation in ways the runtime does not implement are SPX_E_UNSUPPORTED naming the field. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "spx_hfconfig_int.h"

static const struct {
    const char *name;
    int act;
} acts[] = {
    {"gelu", SPX_ACT_GELU},           {"gelu_new", SPX_ACT_GELU_TANH}, {"gelu_pytorch_tanh", SPX_ACT_GELU_TANH},
    {"gelu_fast", SPX_ACT_GELU_TANH}, {"relu", SPX_ACT_RELU},          {"silu", SPX_ACT_SILU},
    {"swish", SPX_ACT_SILU},
};

static int get_act(spx_ctx *ctx, const cJSON *root, const char *key, const char *def, const char *label, int *out)
{
    const cJSON *v = spx_hfc_field(root, key);
    const char *name = def;
    if (v) {
        if (!cJSON_IsString(v))
            return spx_err_set(ctx, SPX_E_CONFIG, "%s: field '%s' must be a string", label, key);
        name = v->valuestring;
    }
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        if (strcmp(name, acts[i].name) == 0) {
            *out = acts[i].act;
            return 0;
        }
    return spx_err_set(ctx, SPX_E_UNSUPPORTED, "%s: %s '%s' is not supported (gelu, gelu_new, gelu_pytorch_tanh, "
                       "gelu_fast, relu, silu)", label, key, name);
}

/* A field that must have a given boolean value for the runtime to be exact. */
static int require_bool(spx_ctx *ctx, const cJSON *root, const char *key, int def, int want, const char *label)
{
    int v = def, rc = spx_hfc_bool(ctx, root, key, def, label, &v);
    if (rc < 0)
        return rc;
    if (v != want)
        return spx_err_set(ctx, SPX_E_UNSUPPORTED, "%s: %s = %s is not supported", label, key, v ? "true" : "false");
    return 0;
}

/* Shared tail: heads, token ids, tie flag; LayerNorm, non-gated MLP, MHA. */
static int common(spx_ctx *ctx, const cJSON *root, const char *label, spx_hfconfig *h, int tie_default)
{
    int rc = 0;
    spx_model_config *c = &h->cfg;
    if (c->n_heads == 0 || c->dim % c->n_heads != 0)
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: hidden size %u is not a positive multiple of the head count %u", label,
                 c->dim, c->n_heads);
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->dim / c->n_heads;
    c->norm_type = SPX_NORM_LAYER;
    c->gated = 0;
    SPX_TRY(rc, spx_hfc_bool(ctx, root, "tie_word_embeddings", tie_default, label, &c->tied_embeddings));
    h->tie_set = 1;   /* the class default is known: never guess from the checkpoint */
    SPX_TRY(rc, spx_hfc_token_id(ctx, root, "bos_token_id", label, &c->bos_id, NULL));
    SPX_TRY(rc, spx_hfc_token_id(ctx, root, "eos_token_id", label, &c->eos_id, &h->eos_list));
done:
    return rc;
}

int spx_hfc_parse_gpt2(spx_ctx *ctx, const cJSON *root, const char *label, spx_hfconfig *h)
{
    int rc = 0;
    spx_model_config *c = &h->cfg;
    uint32_t inner = 0;
    snprintf(c->arch, sizeof c->arch, "gpt2");
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "vocab_size", 0, 50257, label, &c->vocab_size));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "n_embd", 0, 768, label, &c->dim));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "n_layer", 0, 12, label, &c->n_layers));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "n_head", 0, 12, label, &c->n_heads));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "n_positions", 0, 1024, label, &c->context_length));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "n_inner", 0, 0, label, &inner));   /* null -> 4 * n_embd */
    if (inner == 0 && c->dim > (1u << 30))
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: n_embd %u too large", label, c->dim);
    c->ffn_dim = inner ? inner : 4 * c->dim;
    SPX_TRY(rc, spx_hfc_f32(ctx, root, "layer_norm_epsilon", 0, 1e-5f, label, &c->norm_eps));
    SPX_TRY(rc, get_act(ctx, root, "activation_function", "gelu_new", label, &c->act));
    SPX_TRY(rc, require_bool(ctx, root, "scale_attn_weights", 1, 1, label));
    SPX_TRY(rc, require_bool(ctx, root, "scale_attn_by_inverse_layer_idx", 0, 0, label));
    c->rope_dim = 0;   /* learned absolute positions (wpe), no rotary */
    c->n_pos_embd = c->context_length;
    c->pos_offset = 0;
    c->attn_bias = c->attn_out_bias = c->ffn_bias = 1;
    SPX_TRY(rc, common(ctx, root, label, h, 1));
    if (c->n_pos_embd == 0)
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: n_positions must be positive", label);
done:
    return rc;
}

int spx_hfc_parse_neox(spx_ctx *ctx, const cJSON *root, const char *label, spx_hfconfig *h)
{
    int rc = 0;
    spx_model_config *c = &h->cfg;
    float pct = 0.25f;
    int bias = 1;
    snprintf(c->arch, sizeof c->arch, "gptneox");
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "vocab_size", 1, 0, label, &c->vocab_size));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "hidden_size", 1, 0, label, &c->dim));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "intermediate_size", 1, 0, label, &c->ffn_dim));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "num_hidden_layers", 1, 0, label, &c->n_layers));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "num_attention_heads", 1, 0, label, &c->n_heads));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "max_position_embeddings", 0, 2048, label, &c->context_length));
    SPX_TRY(rc, spx_hfc_f32(ctx, root, "layer_norm_eps", 0, 1e-5f, label, &c->norm_eps));
    SPX_TRY(rc, get_act(ctx, root, "hidden_act", "gelu", label, &c->act));
    SPX_TRY(rc, spx_hfc_bool(ctx, root, "use_parallel_residual", 1, label, &c->parallel_residual));
    SPX_TRY(rc, spx_hfc_bool(ctx, root, "attention_bias", 1, label, &bias));
    c->attn_bias = c->attn_out_bias = bias;
    c->ffn_bias = 1;
    /* rotary on the first int(head_dim * rotary_pct) dims (newer configs: partial_rotary_factor) */
    if (spx_hfc_field(root, "partial_rotary_factor"))
        SPX_TRY(rc, spx_hfc_f32(ctx, root, "partial_rotary_factor", 0, 0.25f, label, &pct));
    else
        SPX_TRY(rc, spx_hfc_f32(ctx, root, "rotary_pct", 0, 0.25f, label, &pct));
    if (!(pct > 0.0f && pct <= 1.0f))
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: rotary_pct %g must be in (0, 1]", label, (double)pct);
    if (spx_hfc_field(root, "rope_theta"))
        SPX_TRY(rc, spx_hfc_f32(ctx, root, "rope_theta", 0, 10000.0f, label, &c->rope_theta));
    else
        SPX_TRY(rc, spx_hfc_f32(ctx, root, "rotary_emb_base", 0, 10000.0f, label, &c->rope_theta));
    if (spx_hfc_field(root, "rope_scaling"))
        SPX_TRY(rc, spx_hfc_rope(ctx, spx_hfc_field(root, "rope_scaling"), label, c));
    SPX_TRY(rc, common(ctx, root, label, h, 0));
    /* int() truncation as in GPTNeoXAttention (rotary_ndims) */
    c->rope_dim = (uint32_t)((double)c->head_dim * (double)pct);
    if (c->rope_dim % 2)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: rotary dimension %u (head_dim %u x rotary_pct %g) is odd", label,
                 c->rope_dim, c->head_dim, (double)pct);
done:
    return rc;
}

int spx_hfc_parse_opt(spx_ctx *ctx, const cJSON *root, const char *label, spx_hfconfig *h)
{
    int rc = 0;
    spx_model_config *c = &h->cfg;
    int before = 1, remove_final = 0, bias = 1;
    uint32_t proj = 0;
    snprintf(c->arch, sizeof c->arch, "opt");
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "vocab_size", 0, 50272, label, &c->vocab_size));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "hidden_size", 0, 768, label, &c->dim));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "ffn_dim", 0, 3072, label, &c->ffn_dim));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "num_hidden_layers", 0, 12, label, &c->n_layers));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "num_attention_heads", 0, 12, label, &c->n_heads));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "max_position_embeddings", 0, 2048, label, &c->context_length));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "word_embed_proj_dim", 0, c->dim, label, &proj));
    if (proj != c->dim)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: word_embed_proj_dim %u != hidden_size %u (project_in/project_out "
                 "layers) is not supported", label, proj, c->dim);
    SPX_TRY(rc, require_bool(ctx, root, "layer_norm_elementwise_affine", 1, 1, label));
    SPX_TRY(rc, get_act(ctx, root, "activation_function", "relu", label, &c->act));
    SPX_TRY(rc, spx_hfc_bool(ctx, root, "do_layer_norm_before", 1, label, &before));
    SPX_TRY(rc, spx_hfc_bool(ctx, root, "_remove_final_layer_norm", 0, label, &remove_final));
    SPX_TRY(rc, spx_hfc_bool(ctx, root, "enable_bias", 1, label, &bias));
    c->post_norm = !before;
    c->no_output_norm = !(before && !remove_final);   /* OPTDecoder.final_layer_norm */
    c->attn_bias = c->attn_out_bias = c->ffn_bias = bias;
    c->norm_eps = 1e-5f;   /* nn.LayerNorm default; OPT has no epsilon field */
    c->rope_dim = 0;
    if (c->context_length > (1u << 24) - 2)
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: max_position_embeddings %u too large", label, c->context_length);
    c->n_pos_embd = c->context_length + 2;   /* OPTLearnedPositionalEmbedding offset 2 */
    c->pos_offset = 2;
    SPX_TRY(rc, common(ctx, root, label, h, 1));
done:
    return rc;
}
