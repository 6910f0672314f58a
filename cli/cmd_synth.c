/* cmd_synth.c: `spx synth` writes a small synthetic Hugging Face checkpoint from a seed. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "spx_arch.h"
#include "spx_format.h"
#include "spx_synth.h"

static const char *const CMD = "synth";

static void usage(FILE *out)
{
    spx_synth_opts d;
    spx_synth_opts_init(&d);
    fprintf(out,
            "usage: spx synth -o DIR [options]\n\n"
            "Writes DIR/config.json, DIR/model.safetensors and DIR/tokenizer.json: a small synthetic\n"
            "Hugging Face checkpoint drawn from a seed (same options -> byte-identical files). Token t\n"
            "belongs to planted cluster t %% K and the MLP inputs of every layer carry that cluster;\n"
            "config.json records it under \"spx_synth\".\n\n"
            "options:\n"
            "  -o, --output DIR   output directory (created if needed)\n"
            "  --arch NAME        llama (default; planted clusters), gpt2, gpt_neox or opt (i.i.d.\n"
            "                     Gaussian weights in that Hugging Face layout; their defaults:\n"
            "                     kv-heads = heads, act gelu_tanh / gelu / relu, gpt_neox untied)\n"
            "  --dim N            hidden size (default %u)\n"
            "  --ffn N            intermediate size (default %u)\n"
            "  --layers N         blocks (default %u)\n"
            "  --heads N          attention heads (default %u; dim/heads must be even)\n"
            "  --kv-heads N       key/value heads, divides heads (default %u)\n"
            "  --vocab N          vocabulary size, %u..%u (default %u)\n"
            "  --ctx N            max_position_embeddings written to config.json (default %u)\n"
            "  --tied, --untied   tie the output head to the embeddings (default tied)\n"
            "  --dtype T          f32 | f16 | bf16 (default f32)\n"
            "  --act A            silu | relu | gelu (default silu); also gelu_tanh for gpt2/gpt_neox/opt\n"
            "  --rotary-pct X     gpt_neox: rotary fraction of head_dim (default 0.25)\n"
            "  --sequential       gpt_neox: use_parallel_residual false\n"
            "  --post-norm        opt: do_layer_norm_before false (no final layer norm)\n"
            "  --clusters K       planted clusters, 1..min(dim, vocab) (default %u)\n"
            "  --seed S           random seed, 0..2^64-1 (default 0)\n"
            "  --shard-size B     write model-0000i-of-0000N.safetensors shards of at most B tensor\n"
            "                     bytes + model.safetensors.index.json instead of model.safetensors\n"
            "  --json             print the summary as JSON\n"
            "  -h, --help         show this help\n\n"
            "Exit status: 0 success, 1 data or I/O error, 2 usage error.\n",
            d.dim, d.ffn_dim, d.n_layers, d.n_heads, d.n_kv_heads, SPX_SYNTH_MIN_VOCAB, SPX_SYNTH_MAX_VOCAB,
            d.vocab_size, d.context_length, d.n_clusters);
}

static int parse_u32(const char *opt, const char *v, uint32_t *out)
{
    unsigned long long x;
    if (spx_cli_parse_u64(v, &x) != 0 || x > 0xFFFFFFFFull)
        return spx_cli_usage_error(CMD, "invalid value '%s' for %s", v ? v : "", opt);
    *out = (uint32_t)x;
    return 0;
}

static int parse_dtype(const char *v)
{
    if (strcmp(v, "f32") == 0 || strcmp(v, "F32") == 0)
        return SPX_DTYPE_F32;
    if (strcmp(v, "f16") == 0 || strcmp(v, "F16") == 0)
        return SPX_DTYPE_F16;
    if (strcmp(v, "bf16") == 0 || strcmp(v, "BF16") == 0)
        return SPX_DTYPE_BF16;
    return -1;
}

static void print_json(const char *dir, const spx_synth_opts *o, const spx_synth_result *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "dir", dir);
    cJSON_AddStringToObject(root, "arch", spx_synth_arch_name(o->arch));
    cJSON_AddNumberToObject(root, "params", (double)r->n_params);
    cJSON_AddNumberToObject(root, "tensors", r->n_tensors);
    cJSON_AddNumberToObject(root, "shards", r->n_shards);
    cJSON_AddNumberToObject(root, "weight_bytes", (double)r->weight_bytes);
    cJSON_AddNumberToObject(root, "config_bytes", (double)r->config_bytes);
    cJSON_AddNumberToObject(root, "tokenizer_bytes", (double)r->tokenizer_bytes);
    cJSON_AddNumberToObject(root, "bytes", (double)(r->weight_bytes + r->config_bytes + r->tokenizer_bytes));
    char *s = cJSON_PrintUnformatted(root);
    if (s)
        printf("%s\n", s);
    free(s);
    cJSON_Delete(root);
}

int spx_cmd_synth(int argc, char **argv)
{
    spx_synth_opts o;
    spx_ctx ctx = SPX_CTX_INIT;
    spx_synth_result r;
    const char *dir = NULL;
    int json = 0, act_set = 0, kv_set = 0, tied_set = 0;
    spx_synth_opts_init(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return SPX_EXIT_OK;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        } else if (strcmp(a, "--tied") == 0) {
            o.tied = 1;
            tied_set = 1;
            continue;
        } else if (strcmp(a, "--untied") == 0) {
            o.tied = 0;
            tied_set = 1;
            continue;
        } else if (strcmp(a, "--sequential") == 0) {
            o.parallel_residual = 0;
            continue;
        } else if (strcmp(a, "--post-norm") == 0) {
            o.post_norm = 1;
            continue;
        } else if (a[0] != '-') {
            return spx_cli_usage_error(CMD, "unexpected argument '%s'", a);
        }
        /* every remaining option takes a value */
        if (!v)
            return spx_cli_usage_error(CMD, "option %s needs a value (or is unknown)", a);
        i++;
        if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            dir = v;
        } else if (strcmp(a, "--arch") == 0) {
            o.arch = spx_synth_arch_parse(v);
            if (o.arch < 0)
                return spx_cli_usage_error(CMD, "unknown architecture '%s' (llama, gpt2, gpt_neox, opt)", v);
        } else if (strcmp(a, "--dim") == 0) {
            rc = parse_u32(a, v, &o.dim);
        } else if (strcmp(a, "--ffn") == 0) {
            rc = parse_u32(a, v, &o.ffn_dim);
        } else if (strcmp(a, "--layers") == 0) {
            rc = parse_u32(a, v, &o.n_layers);
        } else if (strcmp(a, "--heads") == 0) {
            rc = parse_u32(a, v, &o.n_heads);
        } else if (strcmp(a, "--kv-heads") == 0) {
            rc = parse_u32(a, v, &o.n_kv_heads);
            kv_set = 1;
        } else if (strcmp(a, "--vocab") == 0) {
            rc = parse_u32(a, v, &o.vocab_size);
        } else if (strcmp(a, "--ctx") == 0) {
            rc = parse_u32(a, v, &o.context_length);
        } else if (strcmp(a, "--clusters") == 0) {
            rc = parse_u32(a, v, &o.n_clusters);
        } else if (strcmp(a, "--dtype") == 0) {
            o.dtype = parse_dtype(v);
            if (o.dtype < 0)
                return spx_cli_usage_error(CMD, "unknown dtype '%s' (f32, f16, bf16)", v);
        } else if (strcmp(a, "--act") == 0) {
            o.act = spx_act_parse(v);
            act_set = 1;
            if (o.act < 0)
                return spx_cli_usage_error(CMD, "unknown activation '%s' (silu, relu, gelu, gelu_tanh)", v);
        } else if (strcmp(a, "--rotary-pct") == 0) {
            char *end = NULL;
            o.rotary_pct = strtod(v, &end);
            if (!end || *end || !(o.rotary_pct > 0.0 && o.rotary_pct <= 1.0))
                return spx_cli_usage_error(CMD, "invalid --rotary-pct '%s' (0 < X <= 1)", v);
        } else if (strcmp(a, "--seed") == 0) {
            unsigned long long x;
            if (spx_cli_parse_u64(v, &x) != 0)
                return spx_cli_usage_error(CMD, "invalid seed '%s'", v);
            o.seed = x;
        } else if (strcmp(a, "--shard-size") == 0) {
            unsigned long long x;
            if (spx_cli_parse_u64(v, &x) != 0 || x == 0)
                return spx_cli_usage_error(CMD, "invalid shard size '%s' (bytes, > 0)", v);
            o.shard_bytes = x;
        } else {
            return spx_cli_usage_error(CMD, "unknown option '%s'", a);
        }
        if (rc)
            return rc;
    }
    if (!dir)
        return spx_cli_usage_error(CMD, "missing -o DIR");
    if (o.arch != SPX_SYNTH_LLAMA) {   /* per-architecture defaults of the options not given */
        if (!act_set)
            o.act = spx_synth_default_act(o.arch);
        if (!kv_set)
            o.n_kv_heads = o.n_heads;
        if (!tied_set)
            o.tied = o.arch != SPX_SYNTH_NEOX;
    }
    if (spx_synth_validate(&ctx, &o) < 0)
        return spx_cli_usage_error(CMD, "%s", ctx.msg);
    if (spx_synth_write(&ctx, &o, dir, &r) < 0)
        return spx_cli_fail(CMD, &ctx);
    if (json) {
        print_json(dir, &o, &r);
    } else {
        static const char *const dt[] = {"f32", "f16", "bf16"};
        printf("synth: %s: %s dim %u ffn %u layers %u heads %u/%u vocab %u %s %s %s clusters %u seed %llu: "
               "%llu params, %llu bytes (%s %llu, config.json %llu, tokenizer.json %llu)\n",
               dir, spx_synth_arch_name(o.arch), o.dim, o.ffn_dim, o.n_layers, o.n_heads, o.n_kv_heads,
               o.vocab_size, dt[o.dtype], spx_act_name(o.act), o.tied ? "tied" : "untied", o.n_clusters,
               (unsigned long long)o.seed, (unsigned long long)r.n_params,
               (unsigned long long)(r.weight_bytes + r.config_bytes + r.tokenizer_bytes),
               r.n_shards ? "shards" : "model.safetensors", (unsigned long long)r.weight_bytes,
               (unsigned long long)r.config_bytes, (unsigned long long)r.tokenizer_bytes);
    }
    return SPX_EXIT_OK;
}
