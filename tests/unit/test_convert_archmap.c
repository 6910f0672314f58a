/* test_convert_archmap.c: the GPT-2 / GPT-NeoX / OPT support of convert: config.json mapping
 * (defaults of the transformers config classes), the tensor transforms against naive index
 * statements on random data, name matching with the optional prefix, and the round trip of the
 * new layout metadata keys (absent for Llama). Transforms move bytes: exact equality. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_arch.h"
#include "spx_archmap.h"
#include "spx_format.h"
#include "spx_hfconfig.h"
#include "spx_test.h"

static int parse(const char *json, spx_hfconfig *h, spx_ctx *ctx)
{
    spx_err_clear(ctx);
    return spx_hfconfig_parse(ctx, json, strlen(json), "config.json", h);
}

static void test_configs(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_hfconfig h;
    const spx_model_config *c = &h.cfg;
    /* GPT-2: defaults n_inner null -> 4 d, gelu_new, eps 1e-5, tied, learned positions */
    CHECK_RC(parse("{\"model_type\": \"gpt2\", \"n_embd\": 64, \"n_layer\": 2, \"n_head\": 4, \"vocab_size\": 300, "
                   "\"n_positions\": 128, \"n_inner\": null}", &h, &ctx), 0);
    CHECK(strcmp(c->arch, "gpt2") == 0 && c->dim == 64 && c->ffn_dim == 256 && c->n_heads == 4 &&
          c->n_kv_heads == 4 && c->head_dim == 16 && c->rope_dim == 0);
    CHECK(c->act == SPX_ACT_GELU_TANH && c->norm_type == SPX_NORM_LAYER && !c->gated && c->tied_embeddings);
    CHECK(c->attn_bias && c->attn_out_bias && c->ffn_bias && c->n_pos_embd == 128 && c->pos_offset == 0);
    CHECK(!c->post_norm && !c->parallel_residual && !c->no_output_norm && fabsf(c->norm_eps - 1e-5f) < 1e-12f);
    CHECK_RC(parse("{\"model_type\": \"gpt2\", \"n_embd\": 64, \"n_head\": 4, \"scale_attn_by_inverse_layer_idx\": true}",
                   &h, &ctx), SPX_E_UNSUPPORTED);
    CHECK(strstr(ctx.msg, "scale_attn_by_inverse_layer_idx") != NULL);
    /* GPT-NeoX: rotary_pct 0.25 default, parallel residual, untied, gelu (erf) */
    CHECK_RC(parse("{\"architectures\": [\"GPTNeoXForCausalLM\"], \"hidden_size\": 128, \"intermediate_size\": 512, "
                   "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 300}", &h, &ctx), 0);
    CHECK(strcmp(c->arch, "gptneox") == 0 && strcmp(h.model_type, "gpt_neox") == 0);
    CHECK(c->head_dim == 32 && c->rope_dim == 8 && c->parallel_residual && !c->tied_embeddings);
    CHECK(c->act == SPX_ACT_GELU && c->attn_bias && c->n_pos_embd == 0 && fabsf(c->rope_theta - 10000.0f) < 1e-3f);
    CHECK_RC(parse("{\"model_type\": \"gpt_neox\", \"hidden_size\": 128, \"intermediate_size\": 512, "
                   "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"vocab_size\": 300, \"rotary_pct\": 1.0, "
                   "\"rotary_emb_base\": 500, \"use_parallel_residual\": false, \"attention_bias\": false}", &h, &ctx), 0);
    CHECK(c->rope_dim == 32 && !c->parallel_residual && !c->attn_bias && !c->attn_out_bias && c->ffn_bias &&
          fabsf(c->rope_theta - 500.0f) < 1e-3f);
    /* OPT: offset-2 positions, relu, pre-norm with final norm; post-norm without */
    CHECK_RC(parse("{\"model_type\": \"opt\", \"hidden_size\": 64, \"ffn_dim\": 96, \"num_hidden_layers\": 2, "
                   "\"num_attention_heads\": 4, \"vocab_size\": 300, \"max_position_embeddings\": 100}", &h, &ctx), 0);
    CHECK(strcmp(c->arch, "opt") == 0 && c->n_pos_embd == 102 && c->pos_offset == 2 && c->act == SPX_ACT_RELU);
    CHECK(!c->post_norm && !c->no_output_norm && c->tied_embeddings && c->ffn_dim == 96);
    CHECK_RC(parse("{\"model_type\": \"opt\", \"hidden_size\": 64, \"num_attention_heads\": 4, "
                   "\"do_layer_norm_before\": false}", &h, &ctx), 0);
    CHECK(c->post_norm && c->no_output_norm);
    CHECK_RC(parse("{\"model_type\": \"opt\", \"hidden_size\": 64, \"num_attention_heads\": 4, "
                   "\"_remove_final_layer_norm\": true}", &h, &ctx), 0);
    CHECK(!c->post_norm && c->no_output_norm);
    CHECK_RC(parse("{\"model_type\": \"opt\", \"hidden_size\": 64, \"num_attention_heads\": 4, "
                   "\"word_embed_proj_dim\": 32}", &h, &ctx), SPX_E_UNSUPPORTED);
    CHECK(strstr(ctx.msg, "word_embed_proj_dim") && strstr(ctx.msg, "config.json"));
    CHECK_RC(parse("{\"model_type\": \"opt\", \"hidden_size\": 64, \"num_attention_heads\": 4, "
                   "\"layer_norm_elementwise_affine\": false}", &h, &ctx), SPX_E_UNSUPPORTED);
}

/* Each transform against its index statement on random float bits. */
static void test_xforms(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    enum { HEADS = 3, HD = 4, D = HEADS * HD, IN = 5 };
    uint64_t seed = 42;
    float src[3 * D * IN], dst[3 * D * IN], t1[IN * D];
    for (size_t i = 0; i < sizeof src / sizeof src[0]; i++)
        src[i] = (float)spx_test_normal(&seed);
    int bad = 0;
    /* TRANSPOSE: source [IN, D] -> [D, IN] */
    memcpy(t1, src, sizeof t1);
    CHECK_RC(spx_xform_apply(&ctx, SPX_XFORM_TRANSPOSE, HD, t1, dst, 4, IN, D), 0);
    for (int o = 0; o < D; o++)
        for (int i = 0; i < IN; i++)
            bad += dst[o * IN + i] != t1[i * D + o];
    CHECK(bad == 0);
    for (int part = 0; part < 3; part++) {
        /* SPLIT_QKV: rows [q; k; v] of [3D, IN] */
        CHECK_RC(spx_xform_apply_part(&ctx, SPX_XFORM_SPLIT_QKV, part, HD, src, dst, 4, 3 * D, IN), 0);
        for (int r = 0; r < D; r++)
            for (int i = 0; i < IN; i++)
                bad += dst[r * IN + i] != src[(part * D + r) * IN + i];
        /* SPLIT_QKV_T: Conv1D [IN, 3D] -> part's [D, IN] (GPT-2 c_attn: y = x W, columns q|k|v) */
        CHECK_RC(spx_xform_apply_part(&ctx, SPX_XFORM_SPLIT_QKV_T, part, HD, src, dst, 4, IN, 3 * D), 0);
        for (int o = 0; o < D; o++)
            for (int i = 0; i < IN; i++)
                bad += dst[o * IN + i] != src[i * 3 * D + part * D + o];
        /* SPLIT_QKV_HEADS: rows viewed [HEADS, 3, HD] (GPT-NeoX query_key_value) */
        CHECK_RC(spx_xform_apply_part(&ctx, SPX_XFORM_SPLIT_QKV_HEADS, part, HD, src, dst, 4, 3 * D, IN), 0);
        for (int h = 0; h < HEADS; h++)
            for (int j = 0; j < HD; j++)
                for (int i = 0; i < IN; i++)
                    bad += dst[(h * HD + j) * IN + i] != src[((h * 3 + part) * HD + j) * IN + i];
        /* 1-D (biases) */
        CHECK_RC(spx_xform_apply_part(&ctx, SPX_XFORM_SPLIT_QKV_HEADS, part, HD, src, dst, 4, 3 * D, 1), 0);
        for (int h = 0; h < HEADS; h++)
            for (int j = 0; j < HD; j++)
                bad += dst[h * HD + j] != src[(h * 3 + part) * HD + j];
    }
    CHECK(bad == 0);
    CHECK_RC(spx_xform_apply_part(&ctx, SPX_XFORM_SPLIT_QKV, 3, HD, src, dst, 4, 3 * D, IN), SPX_E_ARG);
    CHECK_RC(spx_xform_apply_part(&ctx, SPX_XFORM_SPLIT_QKV_T, 0, HD, src, dst, 4, IN, 3 * D + 1), SPX_E_SHAPE);
    CHECK_RC(spx_xform_apply_part(&ctx, SPX_XFORM_SPLIT_QKV_HEADS, 0, HD, src, dst, 4, 3 * D + 4, IN), SPX_E_SHAPE);
    /* 2-byte elements move the same way */
    uint16_t s16[IN * 3 * D], d16[IN * D];
    for (int i = 0; i < IN * 3 * D; i++)
        s16[i] = (uint16_t)(i * 7 + 1);
    CHECK_RC(spx_xform_apply_part(&ctx, SPX_XFORM_SPLIT_QKV_T, 2, HD, s16, d16, 2, IN, 3 * D), 0);
    for (int o = 0; o < D; o++)
        for (int i = 0; i < IN; i++)
            bad += d16[o * IN + i] != s16[i * 3 * D + 2 * D + o];
    CHECK(bad == 0);
}

static void test_names(void)
{
    uint32_t layer = 99;
    const spx_archmap *g = spx_archmap_find("gpt2"), *n = spx_archmap_find("gptneox"), *o = spx_archmap_find("opt");
    CHECK(g && n && o);
    if (!g || !n || !o)
        return;
    long k = spx_archmap_match(g, "transformer.h.3.attn.c_attn.weight", &layer);
    CHECK(k >= 0 && layer == 3 && strcmp(g->entries[k].base, "attn_q") == 0);
    layer = 99;
    k = spx_archmap_match(g, "h.12.mlp.c_proj.bias", &layer);   /* GPT2Model checkpoint: no prefix */
    CHECK(k >= 0 && layer == 12 && strcmp(g->entries[k].base, "ffn_down") == 0);
    CHECK(spx_archmap_match(g, "h.0.attn.bias", &layer) < 0);   /* causal-mask buffer: not a weight */
    k = spx_archmap_match(o, "decoder.embed_positions.weight", &layer);
    CHECK(k >= 0 && strcmp(o->entries[k].base, "position_embd") == 0);
    k = spx_archmap_match(o, "model.decoder.layers.1.final_layer_norm.bias", &layer);
    CHECK(k >= 0 && layer == 1 && strcmp(o->entries[k].base, "ffn_norm") == 0);
    k = spx_archmap_match(o, "model.decoder.final_layer_norm.weight", &layer);
    CHECK(k >= 0 && strcmp(o->entries[k].base, "output_norm") == 0);
    CHECK(spx_archmap_match(n, "gpt_neox.layers.0.attention.rotary_emb.inv_freq", &layer) < 0);
    /* source shapes before the transforms */
    spx_model_config c;
    spx_config_init_llama(&c);
    c.dim = 8;
    c.ffn_dim = 20;
    c.n_heads = c.n_kv_heads = 2;
    c.head_dim = 4;
    uint64_t dims[2];
    uint32_t nd;
    k = spx_archmap_match(g, "transformer.h.0.attn.c_attn.weight", &layer);
    spx_archmap_src_shape(&g->entries[k], &c, dims, &nd);
    CHECK(nd == 2 && dims[0] == 8 && dims[1] == 24);
    k = spx_archmap_match(g, "transformer.h.0.mlp.c_fc.weight", &layer);
    spx_archmap_src_shape(&g->entries[k], &c, dims, &nd);
    CHECK(nd == 2 && dims[0] == 8 && dims[1] == 20);
    k = spx_archmap_match(n, "gpt_neox.layers.0.attention.query_key_value.bias", &layer);
    spx_archmap_src_shape(&n->entries[k], &c, dims, &nd);
    CHECK(nd == 1 && dims[0] == 24);
}

/* Layout keys: written only when not the Llama default; read back exactly. */
static void roundtrip(const spx_model_config *in, int expect_keys)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    spx_file *f = NULL;
    spx_model_config out;
    const char *path = spx_test_path(spx_test_tmpdir(), "archmeta.spx");
    CHECK_RC(spx_writer_open(&ctx, path, "test", &w), 0);
    if (!w)
        return;
    CHECK_RC(spx_config_to_meta(w, in), 0);
    CHECK_RC(spx_writer_finish(w), 0);
    spx_writer_free(w);
    CHECK_RC(spx_file_open(&ctx, path, 0, &f), 0);
    if (!f)
        return;
    CHECK((spx_file_meta_find(f, "spx.position_embd.count") != NULL) == expect_keys);
    CHECK((spx_file_meta_find(f, "spx.norm.post") != NULL) == (in->post_norm != 0));
    CHECK((spx_file_meta_find(f, "spx.residual.parallel") != NULL) == (in->parallel_residual != 0));
    CHECK((spx_file_meta_find(f, "spx.norm.output") != NULL) == (in->no_output_norm != 0));
    CHECK_RC(spx_config_from_file(&ctx, f, &out), 0);
    CHECK(out.n_pos_embd == in->n_pos_embd && out.pos_offset == in->pos_offset && out.post_norm == in->post_norm &&
          out.no_output_norm == in->no_output_norm && out.parallel_residual == in->parallel_residual);
    spx_file_free(f);
}

static void test_meta(void)
{
    spx_model_config c;
    spx_config_init_llama(&c);
    c.vocab_size = 300;
    c.dim = 8;
    c.ffn_dim = 16;
    c.n_layers = 1;
    c.n_heads = c.n_kv_heads = 2;
    c.head_dim = c.rope_dim = 4;
    roundtrip(&c, 0);
    c.n_pos_embd = 34;
    c.pos_offset = 2;
    c.post_norm = 1;
    c.no_output_norm = 1;
    roundtrip(&c, 1);
    c.post_norm = 0;
    c.no_output_norm = 0;
    c.parallel_residual = 1;
    roundtrip(&c, 1);
    spx_ctx ctx = SPX_CTX_INIT;
    c.post_norm = 1;   /* both: rejected */
    CHECK_RC(spx_config_validate(&ctx, &c), SPX_E_CONFIG);
    c.post_norm = 0;
    c.pos_offset = 34;
    CHECK_RC(spx_config_validate(&ctx, &c), SPX_E_CONFIG);
}

int spx_test_main(void)
{
    test_configs();
    test_xforms();
    test_names();
    test_meta();
    return 0;
}
