/* cmd_export.c: `spx export IN.spx --to safetensors|gguf -o OUT` (the library is convert/spx_export.c and
 * convert/spx_gguf_export.c). */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "spx_export.h"
#include "spx_format.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: spx export IN.spx --to safetensors -o DIR|FILE.safetensors [options]\n"
            "       spx export IN.spx --to gguf -o FILE.gguf [--dtype keep|f32|f16|bf16]\n\n"
            "--to safetensors: write a .spx Llama model back as a Hugging Face checkpoint:\n"
            "DIR/model.safetensors with Hugging Face tensor names, DIR/config.json (LlamaForCausalLM) and\n"
            "DIR/tokenizer.json (when the file carries one). -o FILE.safetensors writes only the tensors.\n\n"
            "--to gguf: write a GGUF v3 file for llama.cpp (general.architecture llama, llama.* keys,\n"
            "the tokenizer: tokenizer.ggml.* when the .spx has it, else tokenizer.huggingface.json).\n"
            "Tensors are dense (pruned weights as explicit zeros) with their GGUF names; attn_q/attn_k\n"
            "rows are permuted to llama.cpp's interleaved rotary layout. --dtype keep copies the stored\n"
            "F32/F16/BF16 values (spx convert of the result gives back the same tensors bit for bit);\n"
            "f16/bf16 convert matrices and keep norms and biases in F32, as llama.cpp does.\n\n"
            "Expanded (Sparse Expansion) and gated files are refused: safetensors has no routing, and\n"
            "GGUF's MoE layout (ffn_gate_inp + ffn_*_exps, softmax top-k linear router) cannot express\n"
            "nearest-centroid routing after PCA or threshold/dynamic-k gating.\n\n"
            "options:\n"
            "  --to FORMAT           safetensors or gguf (required)\n"
            "  -o, --output PATH     output directory (created) or .safetensors file; .gguf file\n"
            "  --format F            safetensors only: dense (default): zeros materialized for sparse\n"
            "                        tensors; sparse-bitmask: sparse tensors in the compressed-tensors\n"
            "                        layout (P.shape, P.compressed, P.bitmask, P.row_offsets) + its\n"
            "                        quantization_config in config.json\n"
            "  --dtype D             keep (default), f32, f16 or bf16\n"
            "  --json                print the report as JSON on stdout\n"
            "  -h, --help            this help\n\n"
            "Exit status: 0 success, 1 data error, 2 usage error.\n");
}

int spx_cmd_export(int argc, char **argv)
{
    const char *cmd = "export", *in = NULL, *out = NULL, *to = NULL, *fmt = "dense", *dt = "keep";
    spx_export_opts o = {SPX_EXPORT_DENSE, SPX_EXPORT_KEEP};
    spx_export_report rep;
    spx_ctx ctx = SPX_CTX_INIT;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return SPX_EXIT_OK;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (!has_val)
                return spx_cli_usage_error(cmd, "%s needs a path", a);
            out = argv[++i];
        } else if (strcmp(a, "--to") == 0 || strcmp(a, "--format") == 0 || strcmp(a, "--dtype") == 0) {
            if (!has_val)
                return spx_cli_usage_error(cmd, "%s needs a value", a);
            if (strcmp(a, "--to") == 0)
                to = argv[++i];
            else if (strcmp(a, "--format") == 0)
                fmt = argv[++i];
            else
                dt = argv[++i];
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (a[0] == '-' && a[1]) {
            return spx_cli_usage_error(cmd, "unknown option '%s'", a);
        } else if (!in) {
            in = a;
        } else {
            return spx_cli_usage_error(cmd, "unexpected argument '%s'", a);
        }
    }
    if (!in || !out || !to)
        return spx_cli_usage_error(cmd, "need IN.spx, --to and -o");
    if (strcmp(to, "safetensors") != 0 && strcmp(to, "gguf") != 0)
        return spx_cli_usage_error(cmd, "--to: unknown format '%s' (safetensors|gguf)", to);
    if (strcmp(to, "gguf") == 0 && strcmp(fmt, "dense") != 0)
        return spx_cli_usage_error(cmd, "--format %s applies to safetensors only (GGUF output is dense)", fmt);
    if (strcmp(fmt, "dense") == 0)
        o.format = SPX_EXPORT_DENSE;
    else if (strcmp(fmt, "sparse-bitmask") == 0)
        o.format = SPX_EXPORT_SPARSE_BITMASK;
    else
        return spx_cli_usage_error(cmd, "--format: unknown value '%s' (dense|sparse-bitmask)", fmt);
    if (strcmp(dt, "keep") == 0)
        o.dtype = SPX_EXPORT_KEEP;
    else if (strcmp(dt, "f32") == 0)
        o.dtype = SPX_DTYPE_F32;
    else if (strcmp(dt, "f16") == 0)
        o.dtype = SPX_DTYPE_F16;
    else if (strcmp(dt, "bf16") == 0)
        o.dtype = SPX_DTYPE_BF16;
    else
        return spx_cli_usage_error(cmd, "--dtype: unknown value '%s' (keep|f32|f16|bf16)", dt);
    if (strcmp(to, "gguf") == 0) {
        if (spx_export_gguf(&ctx, in, out, &o, &rep) < 0)
            return spx_cli_fail(cmd, &ctx);
        if (json)
            printf("{\"format\": \"gguf\", \"tensors\": %llu, \"file_bytes\": %llu, \"tokenizer\": %s}\n",
                   (unsigned long long)rep.n_tensors, (unsigned long long)rep.file_bytes,
                   rep.wrote_tokenizer ? "true" : "false");
        else
            printf("wrote %s: GGUF v3, %llu tensors, %llu bytes%s\n", out, (unsigned long long)rep.n_tensors,
                   (unsigned long long)rep.file_bytes, rep.wrote_tokenizer ? ", tokenizer" : "");
        return SPX_EXIT_OK;
    }
    if (spx_export_safetensors(&ctx, in, out, &o, &rep) < 0)
        return spx_cli_fail(cmd, &ctx);
    if (json)
        printf("{\"tensors\": %llu, \"sparse\": %llu, \"safetensors_tensors\": %llu, \"file_bytes\": %llu, "
               "\"config\": %s, \"tokenizer\": %s}\n",
               (unsigned long long)rep.n_tensors, (unsigned long long)rep.n_sparse,
               (unsigned long long)rep.st_tensors, (unsigned long long)rep.file_bytes,
               rep.wrote_config ? "true" : "false", rep.wrote_tokenizer ? "true" : "false");
    else
        printf("wrote %s: %llu tensors (%llu sparse-bitmask), %llu safetensors entries, %llu bytes%s%s\n", out,
               (unsigned long long)rep.n_tensors, (unsigned long long)rep.n_sparse,
               (unsigned long long)rep.st_tensors, (unsigned long long)rep.file_bytes,
               rep.wrote_config ? ", config.json" : "", rep.wrote_tokenizer ? ", tokenizer.json" : "");
    return SPX_EXIT_OK;
}
