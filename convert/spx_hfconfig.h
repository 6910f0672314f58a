/* spx_hfconfig.h: Hugging Face config.json -> spx_model_config.
 *
 * Supported model types (model_type, else architectures[0]):
 *   llama (LlamaForCausalLM; also "smollm", "tinyllama" spellings), mistral (MistralForCausalLM),
 *   qwen2 (Qwen2ForCausalLM: q/k/v projections carry biases, o_proj none),
 *   gpt2 (GPT2LMHeadModel), gpt_neox (GPTNeoXForCausalLM), opt (OPTForCausalLM): fields and
 *   defaults of GPT2Config / GPTNeoXConfig / OPTConfig, see spx_hfconfig_gpt.c.
 * Everything else (mixtral, bloom, ...) and any quantization_config is SPX_E_UNSUPPORTED naming
 * what was found. Llama-family field defaults follow the transformers config classes:
 * num_key_value_heads = heads, head_dim = hidden/heads, rms_norm_eps 1e-6, rope_theta 10000,
 * hidden_act silu, attention_bias/mlp_bias false, tie_word_embeddings false (but see tie_set).
 * rope_scaling: null/"default" -> none, "linear" {factor}, "llama3" {factor, low_freq_factor,
 * high_freq_factor, original_max_position_embeddings}; other types (dynamic, yarn, longrope...)
 * are unsupported. eos_token_id may be a list (the first id is taken). */
#ifndef SPX_HFCONFIG_H
#define SPX_HFCONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "spx_arch.h"
#include "spx_error.h"

typedef struct spx_hfconfig {
    spx_model_config cfg;
    char model_type[32];        /* as written in config.json (or derived from architectures) */
    int tie_set;                /* 1 when tie_word_embeddings is present in config.json */
    uint32_t sliding_window;    /* 0 when none / disabled */
    int eos_list;               /* 1 when eos_token_id was a list (the first id is used) */
} spx_hfconfig;

/* Parse `len` bytes of config.json text; `label` names the file in messages. Errors: SPX_E_JSON
 * (syntax, with byte offset), SPX_E_CONFIG (missing/invalid field, named), SPX_E_UNSUPPORTED. */
int spx_hfconfig_parse(spx_ctx *ctx, const char *json, size_t len, const char *label, spx_hfconfig *out);
/* Read and parse a config.json file. */
int spx_hfconfig_read(spx_ctx *ctx, const char *path, spx_hfconfig *out);

#endif
