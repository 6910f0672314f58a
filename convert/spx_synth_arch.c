/* spx_synth_arch.c: synthetic GPT-2, GPT-NeoX and OPT checkpoints (see spx_synth.h).
 *
 * Weights are i.i.d. Gaussian with scales that keep every signal O(1): projections reading a
 * LayerNorm output have std 1/sqrt(fan_in) (unit-variance outputs); projections writing into the
 * residual stream std 0.5/sqrt(fan_in); biases and norm shifts 0.1; learned positions 0.5 (large
 * enough that a wrong position index changes the logits); token embeddings and heads 0.5. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_arch.h"
#include "spx_synth_int.h"

#define STD_EMBED 0.5
#define STD_POS 0.5
#define STD_BIAS 0.1
#define STD_NORM 0.1
#define BRANCH 0.5

/* One tensor; 1-D when rows == 0. */
static int add(spx_ctx *ctx, synth *s, const char *name, uint64_t rows, uint64_t cols, double mean, double std)
{
    int rc = spx_synth_plan_add(ctx, s, name, T_RAND, rows ? rows : 1, cols, rows == 0);
    if (rc == 0) {
        s->items[s->n - 1].mean = mean;
        s->items[s->n - 1].std = std;
    }
    return rc;
}

/* LayerNorm weight + bias under prefix ("transformer.h.0.ln_1" -> .weight, .bias). */
static int add_norm(spx_ctx *ctx, synth *s, const char *prefix, uint64_t dim)
{
    int rc = 0;
    char nm[96];
    snprintf(nm, sizeof nm, "%s.weight", prefix);
    SPX_TRY(rc, add(ctx, s, nm, 0, dim, 1.0, STD_NORM));
    snprintf(nm, sizeof nm, "%s.bias", prefix);
    SPX_TRY(rc, add(ctx, s, nm, 0, dim, 0.0, STD_NORM));
done:
    return rc;
}

/* Linear [out, in] (+ bias [out]); transposed: Conv1D [in, out]. Output std 1 (or BRANCH when
 * it writes into the residual stream) for unit-variance inputs. */
static int add_linear(spx_ctx *ctx, synth *s, const char *prefix, uint64_t out, uint64_t in, int transposed,
                      int residual)
{
    int rc = 0;
    char nm[96];
    double std = (residual ? BRANCH : 1.0) / sqrt((double)in);
    snprintf(nm, sizeof nm, "%s.weight", prefix);
    SPX_TRY(rc, add(ctx, s, nm, transposed ? in : out, transposed ? out : in, 0.0, std));
    snprintf(nm, sizeof nm, "%s.bias", prefix);
    SPX_TRY(rc, add(ctx, s, nm, 0, out, 0.0, STD_BIAS));
done:
    return rc;
}

int spx_synth_plan_other(spx_ctx *ctx, synth *s)
{
    int rc = 0;
    const spx_synth_opts *o = s->o;
    uint64_t d = o->dim, f = o->ffn_dim, v = o->vocab_size;
    char p[96], nm[96];
    s->cap = 6 + 16 * (size_t)o->n_layers;
    s->items = calloc(s->cap, sizeof *s->items);
    s->specs = calloc(s->cap, sizeof *s->specs);
    if (!s->items || !s->specs)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "synth: out of memory for the tensor plan");
    switch (o->arch) {
    case SPX_SYNTH_GPT2:
        SPX_TRY(rc, add(ctx, s, "transformer.wte.weight", v, d, 0.0, STD_EMBED));
        SPX_TRY(rc, add(ctx, s, "transformer.wpe.weight", o->context_length, d, 0.0, STD_POS));
        for (uint32_t l = 0; l < o->n_layers; l++) {
#define P(sfx) (snprintf(p, sizeof p, "transformer.h.%u.%s", l, sfx), p)
            SPX_TRY(rc, add_norm(ctx, s, P("ln_1"), d));
            SPX_TRY(rc, add_linear(ctx, s, P("attn.c_attn"), 3 * d, d, 1, 0));
            SPX_TRY(rc, add_linear(ctx, s, P("attn.c_proj"), d, d, 1, 1));
            SPX_TRY(rc, add_norm(ctx, s, P("ln_2"), d));
            SPX_TRY(rc, add_linear(ctx, s, P("mlp.c_fc"), f, d, 1, 0));
            SPX_TRY(rc, add_linear(ctx, s, P("mlp.c_proj"), d, f, 1, 1));
#undef P
        }
        SPX_TRY(rc, add_norm(ctx, s, "transformer.ln_f", d));
        break;
    case SPX_SYNTH_NEOX:
        SPX_TRY(rc, add(ctx, s, "gpt_neox.embed_in.weight", v, d, 0.0, STD_EMBED));
        for (uint32_t l = 0; l < o->n_layers; l++) {
#define P(sfx) (snprintf(p, sizeof p, "gpt_neox.layers.%u.%s", l, sfx), p)
            SPX_TRY(rc, add_norm(ctx, s, P("input_layernorm"), d));
            SPX_TRY(rc, add_linear(ctx, s, P("attention.query_key_value"), 3 * d, d, 0, 0));
            SPX_TRY(rc, add_linear(ctx, s, P("attention.dense"), d, d, 0, 1));
            SPX_TRY(rc, add_norm(ctx, s, P("post_attention_layernorm"), d));
            SPX_TRY(rc, add_linear(ctx, s, P("mlp.dense_h_to_4h"), f, d, 0, 0));
            SPX_TRY(rc, add_linear(ctx, s, P("mlp.dense_4h_to_h"), d, f, 0, 1));
#undef P
        }
        SPX_TRY(rc, add_norm(ctx, s, "gpt_neox.final_layer_norm", d));
        break;
    default: /* SPX_SYNTH_OPT */
        SPX_TRY(rc, add(ctx, s, "model.decoder.embed_tokens.weight", v, d, 0.0, STD_EMBED));
        SPX_TRY(rc, add(ctx, s, "model.decoder.embed_positions.weight", (uint64_t)o->context_length + 2, d, 0.0,
                        STD_POS));
        for (uint32_t l = 0; l < o->n_layers; l++) {
#define P(sfx) (snprintf(p, sizeof p, "model.decoder.layers.%u.%s", l, sfx), p)
            SPX_TRY(rc, add_linear(ctx, s, P("self_attn.k_proj"), d, d, 0, 0));
            SPX_TRY(rc, add_linear(ctx, s, P("self_attn.v_proj"), d, d, 0, 0));
            SPX_TRY(rc, add_linear(ctx, s, P("self_attn.q_proj"), d, d, 0, 0));
            SPX_TRY(rc, add_linear(ctx, s, P("self_attn.out_proj"), d, d, 0, 1));
            SPX_TRY(rc, add_norm(ctx, s, P("self_attn_layer_norm"), d));
            SPX_TRY(rc, add_linear(ctx, s, P("fc1"), f, d, 0, 0));
            SPX_TRY(rc, add_linear(ctx, s, P("fc2"), d, f, 0, 1));
            SPX_TRY(rc, add_norm(ctx, s, P("final_layer_norm"), d));
#undef P
        }
        if (!o->post_norm)   /* OPTDecoder has a final_layer_norm only with do_layer_norm_before */
            SPX_TRY(rc, add_norm(ctx, s, "model.decoder.final_layer_norm", d));
        break;
    }
    if (!o->tied) {
        snprintf(nm, sizeof nm, "%s", o->arch == SPX_SYNTH_NEOX ? "embed_out.weight" : "lm_head.weight");
        SPX_TRY(rc, add(ctx, s, nm, v, d, 0.0, STD_EMBED));
    }
done:
    return rc;
}

static const char *hf_act(int act)
{
    return act == SPX_ACT_GELU_TANH ? "gelu_new" : spx_act_name(act);
}

void spx_synth_config_other(const spx_synth_opts *o, cJSON *root)
{
    static const char *const archs[] = {"", "GPT2LMHeadModel", "GPTNeoXForCausalLM", "OPTForCausalLM"};
    static const char *const types[] = {"", "gpt2", "gpt_neox", "opt"};
    cJSON *a = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(a, cJSON_CreateString(archs[o->arch]));
    cJSON_AddStringToObject(root, "model_type", types[o->arch]);
    cJSON_AddNumberToObject(root, "vocab_size", o->vocab_size);
    if (o->arch == SPX_SYNTH_GPT2) {
        cJSON_AddNumberToObject(root, "n_embd", o->dim);
        cJSON_AddNumberToObject(root, "n_layer", o->n_layers);
        cJSON_AddNumberToObject(root, "n_head", o->n_heads);
        cJSON_AddNumberToObject(root, "n_positions", o->context_length);
        cJSON_AddNumberToObject(root, "n_ctx", o->context_length);
        if (o->ffn_dim == 4 * o->dim)
            cJSON_AddNullToObject(root, "n_inner");
        else
            cJSON_AddNumberToObject(root, "n_inner", o->ffn_dim);
        cJSON_AddStringToObject(root, "activation_function", hf_act(o->act));
        cJSON_AddRawToObject(root, "layer_norm_epsilon", "1e-05");
        cJSON_AddBoolToObject(root, "scale_attn_weights", 1);
    } else if (o->arch == SPX_SYNTH_NEOX) {
        char raw[32];
        cJSON_AddNumberToObject(root, "hidden_size", o->dim);
        cJSON_AddNumberToObject(root, "intermediate_size", o->ffn_dim);
        cJSON_AddNumberToObject(root, "num_hidden_layers", o->n_layers);
        cJSON_AddNumberToObject(root, "num_attention_heads", o->n_heads);
        cJSON_AddNumberToObject(root, "max_position_embeddings", o->context_length);
        snprintf(raw, sizeof raw, "%.17g", o->rotary_pct);
        cJSON_AddRawToObject(root, "rotary_pct", raw);
        cJSON_AddNumberToObject(root, "rotary_emb_base", 10000);
        cJSON_AddStringToObject(root, "hidden_act", hf_act(o->act));
        cJSON_AddRawToObject(root, "layer_norm_eps", "1e-05");
        cJSON_AddBoolToObject(root, "use_parallel_residual", o->parallel_residual);
        cJSON_AddBoolToObject(root, "attention_bias", 1);
    } else {
        cJSON_AddNumberToObject(root, "hidden_size", o->dim);
        cJSON_AddNumberToObject(root, "ffn_dim", o->ffn_dim);
        cJSON_AddNumberToObject(root, "num_hidden_layers", o->n_layers);
        cJSON_AddNumberToObject(root, "num_attention_heads", o->n_heads);
        cJSON_AddNumberToObject(root, "max_position_embeddings", o->context_length);
        cJSON_AddNumberToObject(root, "word_embed_proj_dim", o->dim);
        cJSON_AddStringToObject(root, "activation_function", hf_act(o->act));
        cJSON_AddBoolToObject(root, "do_layer_norm_before", !o->post_norm);
        cJSON_AddBoolToObject(root, "enable_bias", 1);
        cJSON_AddBoolToObject(root, "layer_norm_elementwise_affine", 1);
    }
    cJSON_AddBoolToObject(root, "tie_word_embeddings", o->tied);
    cJSON_AddNumberToObject(root, "bos_token_id", 1);
    cJSON_AddNumberToObject(root, "eos_token_id", 2);
}
