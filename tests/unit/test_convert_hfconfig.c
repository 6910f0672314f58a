/* test_convert_hfconfig.c: config.json -> spx_model_config mapping cases. */
#include <math.h>
#include <string.h>

#include "spx_hfconfig.h"
#include "spx_test.h"

#define BASE "\"hidden_size\": 64, \"intermediate_size\": 172, \"num_hidden_layers\": 5, " \
             "\"num_attention_heads\": 8, \"vocab_size\": 512"

static int parse(const char *json, spx_hfconfig *h, spx_ctx *ctx)
{
    spx_err_clear(ctx);
    return spx_hfconfig_parse(ctx, json, strlen(json), "config.json", h);
}

static void expect_err(const char *json, int code, const char *needle)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_hfconfig h;
    int rc = parse(json, &h, &ctx);
    CHECK_MSG(rc == code, "rc %s want %s for %s (%s)", spx_err_name(rc), spx_err_name(code), json, ctx.msg);
    CHECK_MSG(strstr(ctx.msg, "config.json") != NULL, "message does not name the file: %s", ctx.msg);
    CHECK_MSG(!needle || strstr(ctx.msg, needle), "message lacks '%s': %s", needle, ctx.msg);
}

static void test_llama_defaults(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_hfconfig h;
    CHECK_RC(parse("{\"model_type\": \"llama\", " BASE "}", &h, &ctx), 0);
    const spx_model_config *c = &h.cfg;
    CHECK(strcmp(c->arch, "llama") == 0 && strcmp(h.model_type, "llama") == 0);
    CHECK(c->dim == 64 && c->ffn_dim == 172 && c->n_layers == 5 && c->n_heads == 8);
    CHECK(c->n_kv_heads == 8 && c->head_dim == 8 && c->rope_dim == 8);   /* defaults */
    CHECK(c->vocab_size == 512 && c->context_length == 0);
    CHECK(c->norm_eps == 1e-6f && c->rope_theta == 10000.0f && c->rope_scaling == SPX_ROPE_NONE);
    CHECK(c->act == SPX_ACT_SILU && c->gated && c->norm_type == SPX_NORM_RMS);
    CHECK(!c->attn_bias && !c->attn_out_bias && !c->ffn_bias);
    CHECK(!c->tied_embeddings && !h.tie_set && c->bos_id == -1 && c->eos_id == -1);
    CHECK(h.sliding_window == 0);
}

static void test_fields(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_hfconfig h;
    CHECK_RC(parse("{\"architectures\": [\"LlamaForCausalLM\"], " BASE ", \"num_key_value_heads\": 4, "
                   "\"head_dim\": 16, \"rms_norm_eps\": 1e-05, \"rope_theta\": 500000.0, \"hidden_act\": \"gelu_pytorch_tanh\", "
                   "\"attention_bias\": true, \"mlp_bias\": true, \"tie_word_embeddings\": true, \"bos_token_id\": 128000, "
                   "\"eos_token_id\": [128001, 128008], \"max_position_embeddings\": 131072, \"rope_scaling\": null}",
                   &h, &ctx), 0);
    const spx_model_config *c = &h.cfg;
    CHECK(strcmp(h.model_type, "llama") == 0);
    CHECK(c->n_kv_heads == 4 && c->head_dim == 16 && c->norm_eps == 1e-5f && c->rope_theta == 500000.0f);
    CHECK(c->act == SPX_ACT_GELU_TANH && c->attn_bias && c->attn_out_bias && c->ffn_bias);
    CHECK(c->tied_embeddings && h.tie_set && c->bos_id == 128000 && c->eos_id == 128001 && h.eos_list);
    CHECK(c->context_length == 131072 && c->rope_scaling == SPX_ROPE_NONE);
    /* tie_word_embeddings false is recorded as set */
    CHECK_RC(parse("{\"model_type\": \"smollm\", " BASE ", \"tie_word_embeddings\": false, \"hidden_act\": \"relu\"}",
                   &h, &ctx), 0);
    CHECK(h.tie_set && !h.cfg.tied_embeddings && h.cfg.act == SPX_ACT_RELU);
    CHECK_RC(parse("{\"model_type\": \"tinyllama\", " BASE ", \"hidden_act\": \"gelu\"}", &h, &ctx), 0);
    CHECK(h.cfg.act == SPX_ACT_GELU && strcmp(h.cfg.arch, "llama") == 0);
}

static void test_qwen2_mistral(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_hfconfig h;
    CHECK_RC(parse("{\"model_type\": \"qwen2\", " BASE ", \"num_key_value_heads\": 2, \"use_sliding_window\": false, "
                   "\"sliding_window\": 4096, \"tie_word_embeddings\": true}", &h, &ctx), 0);
    CHECK(strcmp(h.model_type, "qwen2") == 0 && strcmp(h.cfg.arch, "llama") == 0);
    CHECK(h.cfg.attn_bias == 1 && h.cfg.attn_out_bias == 0 && h.cfg.ffn_bias == 0);   /* q/k/v bias, no o bias */
    CHECK(h.sliding_window == 0 && h.cfg.tied_embeddings);
    CHECK_RC(parse("{\"architectures\": [\"Qwen2ForCausalLM\"], " BASE "}", &h, &ctx), 0);
    CHECK(strcmp(h.model_type, "qwen2") == 0 && h.cfg.attn_bias);
    CHECK_RC(parse("{\"model_type\": \"mistral\", " BASE ", \"sliding_window\": 4096}", &h, &ctx), 0);
    CHECK(strcmp(h.model_type, "mistral") == 0 && h.sliding_window == 4096 && !h.cfg.attn_bias);
    CHECK_RC(parse("{\"model_type\": \"mistral\", " BASE ", \"sliding_window\": null}", &h, &ctx), 0);
    CHECK(h.sliding_window == 0);
}

static void test_rope_scaling(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_hfconfig h;
    CHECK_RC(parse("{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, "
                   "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}}",
                   &h, &ctx), 0);
    CHECK(h.cfg.rope_scaling == SPX_ROPE_LLAMA3 && h.cfg.rope_factor == 8.0f && h.cfg.rope_low_freq_factor == 1.0f);
    CHECK(h.cfg.rope_high_freq_factor == 4.0f && h.cfg.rope_orig_ctx == 8192);
    CHECK_RC(parse("{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}}",
                   &h, &ctx), 0);
    CHECK(h.cfg.rope_scaling == SPX_ROPE_LINEAR && h.cfg.rope_factor == 2.0f);
    CHECK_RC(parse("{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": {\"rope_type\": \"default\"}}", &h, &ctx), 0);
    CHECK(h.cfg.rope_scaling == SPX_ROPE_NONE);
    /* newer layout: rope_parameters holds theta and the scaling */
    CHECK_RC(parse("{\"model_type\": \"llama\", " BASE ", \"rope_parameters\": {\"rope_theta\": 1000.0, "
                   "\"rope_type\": \"linear\", \"factor\": 4.0}}", &h, &ctx), 0);
    CHECK(h.cfg.rope_theta == 1000.0f && h.cfg.rope_scaling == SPX_ROPE_LINEAR && h.cfg.rope_factor == 4.0f);
    expect_err("{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}}",
               SPX_E_UNSUPPORTED, "'yarn'");
    expect_err("{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 4.0}}",
               SPX_E_UNSUPPORTED, "'dynamic'");
    expect_err("{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": {\"rope_type\": \"linear\"}}", SPX_E_CONFIG,
               "'factor'");
    expect_err("{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}}",
               SPX_E_CONFIG, "low_freq_factor");
    expect_err("{\"model_type\": \"llama\", " BASE ", \"rope_scaling\": {\"rope_type\": \"linear\", \"factor\": -1}}",
               SPX_E_CONFIG, "positive");
}

static void test_errors(void)
{
    /* opt, gpt2, gpt_neox are supported (test_convert_archmap.c); these variants are not */
    expect_err("{\"model_type\": \"opt\", " BASE ", \"word_embed_proj_dim\": 32}", SPX_E_UNSUPPORTED,
               "word_embed_proj_dim");
    expect_err("{\"model_type\": \"bloom\", " BASE "}", SPX_E_UNSUPPORTED, "'bloom'");
    expect_err("{\"model_type\": \"gpt_neox\", " BASE ", \"rotary_pct\": 0.375}", SPX_E_UNSUPPORTED, "odd");
    expect_err("{\"model_type\": \"mixtral\", " BASE ", \"num_local_experts\": 8}", SPX_E_UNSUPPORTED, "'mixtral'");
    expect_err("{\"architectures\": [\"BloomForCausalLM\"], " BASE "}", SPX_E_UNSUPPORTED, "BloomForCausalLM");
    expect_err("{" BASE "}", SPX_E_CONFIG, "model_type");
    expect_err("{\"model_type\": \"llama\", " BASE ", \"quantization_config\": {\"quant_method\": \"gptq\", \"bits\": 4}}",
               SPX_E_UNSUPPORTED, "gptq");
    expect_err("{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 172, \"num_hidden_layers\": 5, "
               "\"vocab_size\": 512}", SPX_E_CONFIG, "'num_attention_heads'");
    expect_err("{\"model_type\": \"llama\", " BASE ", \"hidden_act\": \"mish\"}", SPX_E_UNSUPPORTED, "'mish'");
    expect_err("{\"model_type\": \"llama\", " BASE ", \"num_key_value_heads\": 3}", SPX_E_CONFIG, "kv head");
    expect_err("{\"model_type\": \"llama\", " BASE ", \"num_key_value_heads\": 2.5}", SPX_E_CONFIG, "num_key_value_heads");
    expect_err("{\"model_type\": \"llama\", " BASE ", \"hidden_size\": 65}", SPX_E_JSON, "duplicate key 'hidden_size'");
    expect_err("{\"model_type\": \"llama\", \"hidden_size\": 65, \"intermediate_size\": 172, \"num_hidden_layers\": 5, "
               "\"num_attention_heads\": 8, \"vocab_size\": 512}", SPX_E_CONFIG, "head_dim");
    expect_err("{\"model_type\": \"llama\", " BASE ", \"attention_bias\": 1}", SPX_E_CONFIG, "attention_bias");
    expect_err("{\"model_type\": \"llama\", " BASE ", \"eos_token_id\": -2}", SPX_E_CONFIG, "eos_token_id");
    expect_err("{\"model_type\": \"llama\", " BASE ", \"partial_rotary_factor\": 0.5}", SPX_E_UNSUPPORTED,
               "partial_rotary_factor");
    expect_err("{\"model_type\": \"llama\", " BASE, SPX_E_JSON, "byte");
    expect_err("[1]", SPX_E_JSON, "object");
    expect_err("{\"model_type\": \"llama\", " BASE "} trailing", SPX_E_JSON, "byte");
    expect_err("{\"model_type\": 3, " BASE "}", SPX_E_CONFIG, "model_type");
    /* a NUL byte inside the text */
    spx_ctx ctx = SPX_CTX_INIT;
    spx_hfconfig h;
    CHECK_RC(spx_hfconfig_parse(&ctx, "{}\0{}", 5, "config.json", &h), SPX_E_JSON);
    CHECK_RC(spx_hfconfig_read(&ctx, spx_test_path(spx_test_tmpdir(), "absent.json"), &h), SPX_E_MISSING);
}

static void test_real(void)
{
    const char *shared = spx_test_env("SPX_SHARED");
    if (!shared)
        return;
    const char *p = spx_test_path(shared, "models/stories260K-hf/config.json");
    if (!spx_test_exists(p))
        return;
    spx_ctx ctx = SPX_CTX_INIT;
    spx_hfconfig h;
    CHECK_RC(spx_hfconfig_read(&ctx, p, &h), 0);
    CHECK(h.cfg.dim == 64 && h.cfg.ffn_dim == 172 && h.cfg.n_layers == 5 && h.cfg.n_heads == 8);
    CHECK(h.cfg.n_kv_heads == 4 && h.cfg.head_dim == 8 && h.cfg.tied_embeddings && h.cfg.norm_eps == 1e-5f);
    CHECK(h.cfg.bos_id == 1 && h.cfg.eos_id == 2 && h.cfg.context_length == 512);
}

int spx_test_main(void)
{
    test_llama_defaults();
    test_fields();
    test_qwen2_mistral();
    test_rope_scaling();
    test_errors();
    test_real();
    return 0;
}
