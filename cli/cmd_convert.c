/* cmd_convert.c: `spx convert INPUT -o OUT.spx` (the driver is convert/spx_convert.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_mem.h"
#include "spx_convert.h"
#include "spx_format.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: spx convert INPUT -o OUT.spx [options]\n\n"
            "Convert a dense checkpoint to .spx. INPUT is a Hugging Face directory (config.json +\n"
            "model.safetensors or model.safetensors.index.json), a .safetensors file or index .json\n"
            "(config.json and tokenizer.json are taken from its directory), a llama2.c .bin, or a GGUF\n"
            "file (*.gguf or \"GGUF\" magic; general.architecture llama; F32, F16, BF16 and Q8_0 tensors,\n"
            "Q8_0 dequantized exactly to F32 under --dtype keep; attn_q/attn_k rows un-permuted from\n"
            "llama.cpp's interleaved rotary layout; the tokenizer from tokenizer.ggml.* (model llama)\n"
            "or tokenizer.huggingface.json; other quantizations and MoE GGUF files are refused).\n\n"
            "options:\n"
            "  -o, --output FILE     output .spx (written to a temporary file, renamed on success)\n"
            "  --dtype D             keep|f32|f16|bf16 (default keep; F64 input becomes f32)\n"
            "  --tokenizer FILE      tokenizer.json (stored verbatim) or llama2.c tokenizer .bin (not\n"
            "                        with GGUF input)\n"
            "                        (default: tokenizer.json beside a Hugging Face checkpoint)\n"
            "  --name NAME           general.name (default: the checkpoint directory, or .bin stem)\n"
            "  --json                print the report as JSON on stdout\n"
            "  --progress            show progress on stderr even when it is not a terminal\n"
            "  -h, --help            this help\n\n"
            "Exit status: 0 success, 1 data error (no output file is left), 2 usage error.\n");
}

static void json_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static void json_list(FILE *out, const char *key, char **items, size_t n)
{
    fprintf(out, ",\n  \"%s\": [", key);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ", " : "", out);
        json_str(out, items[i]);
    }
    fputs("]", out);
}

static void print_json(const spx_convert_report *r, const char *output, const char *dtype)
{
    const spx_model_config *c = &r->config;
    printf("{\n  \"output\": ");
    json_str(stdout, output);
    printf(",\n  \"source_format\": \"%s\",\n  \"source_dtype\": \"%s\",\n  \"dtype\": \"%s\",\n"
           "  \"shards\": %zu,\n  \"architecture\": ",
           r->source_format, r->source_dtype, dtype, r->n_shards);
    json_str(stdout, c->arch);
    printf(",\n  \"name\": ");
    json_str(stdout, c->name);
    printf(",\n  \"tensors\": %llu,\n  \"parameters\": %llu,\n  \"data_bytes\": %llu,\n  \"file_bytes\": %llu,\n"
           "  \"tokenizer\": \"%s\",\n  \"tied_embeddings\": %s,\n  \"layers\": %u,\n  \"dim\": %u,\n"
           "  \"vocab_size\": %u",
           (unsigned long long)r->n_tensors, (unsigned long long)r->n_params, (unsigned long long)r->data_bytes,
           (unsigned long long)r->file_bytes, r->tokenizer, c->tied_embeddings ? "true" : "false", c->n_layers,
           c->dim, c->vocab_size);
    json_list(stdout, "skipped", r->skipped, r->n_skipped);
    json_list(stdout, "notes", r->notes, r->n_notes);
    printf("\n}\n");
}

static void print_text(const spx_convert_report *r, const char *output, const char *dtype)
{
    const spx_model_config *c = &r->config;
    printf("wrote %s: %s '%s', %u layers, dim %u, vocab %u\n", output, c->arch, c->name, c->n_layers, c->dim,
           c->vocab_size);
    printf("  source %s (%s, %zu file%s) -> dtype %s\n", r->source_format, r->source_dtype, r->n_shards,
           r->n_shards == 1 ? "" : "s", dtype);
    printf("  %llu tensors, %llu parameters, %llu data bytes, %llu file bytes, tokenizer: %s\n",
           (unsigned long long)r->n_tensors, (unsigned long long)r->n_params, (unsigned long long)r->data_bytes,
           (unsigned long long)r->file_bytes, r->tokenizer);
    for (size_t i = 0; i < r->n_skipped; i++)
        printf("  skipped: %s\n", r->skipped[i]);
    for (size_t i = 0; i < r->n_notes; i++)
        printf("  note: %s\n", r->notes[i]);
}

int spx_cmd_convert(int argc, char **argv)
{
    const char *cmd = "convert";
    spx_convert_opts o = SPX_CONVERT_OPTS_INIT;
    spx_convert_report rep;
    spx_ctx ctx = SPX_CTX_INIT;
    int json = 0, progress = 0;
    const char *dtype_s = "keep";
    memset(&rep, 0, sizeof rep);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return SPX_EXIT_OK;
        } else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) {
            if (!has_val)
                return spx_cli_usage_error(cmd, "%s needs a file name", a);
            o.output = argv[++i];
        } else if (strcmp(a, "--dtype") == 0) {
            if (!has_val)
                return spx_cli_usage_error(cmd, "--dtype needs a value (keep|f32|f16|bf16)");
            dtype_s = argv[++i];
        } else if (strcmp(a, "--tokenizer") == 0) {
            if (!has_val)
                return spx_cli_usage_error(cmd, "--tokenizer needs a file name");
            o.tokenizer = argv[++i];
        } else if (strcmp(a, "--name") == 0) {
            if (!has_val)
                return spx_cli_usage_error(cmd, "--name needs a value");
            o.name = argv[++i];
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--progress") == 0) {
            progress = 1;
        } else if (a[0] == '-' && a[1]) {
            return spx_cli_usage_error(cmd, "unknown option '%s'", a);
        } else if (!o.input) {
            o.input = a;
        } else {
            return spx_cli_usage_error(cmd, "more than one INPUT ('%s' and '%s')", o.input, a);
        }
    }
    if (!o.input)
        return spx_cli_usage_error(cmd, "missing INPUT");
    if (!o.output)
        return spx_cli_usage_error(cmd, "missing -o OUT.spx");
    if (strcmp(dtype_s, "keep") == 0) {
        o.dtype = SPX_CONVERT_KEEP;
    } else {
        o.dtype = spx_dtype_parse(dtype_s);
        if (o.dtype != SPX_DTYPE_F32 && o.dtype != SPX_DTYPE_F16 && o.dtype != SPX_DTYPE_BF16)
            return spx_cli_usage_error(cmd, "--dtype must be keep, f32, f16 or bf16 (got '%s')", dtype_s);
    }
    if (spx_cli_progress_enabled(progress))
        o.progress.fn = spx_cli_progress;
    spx_cli_mem_init(&ctx);   /* --max-memory (main.c strips it; cli_mem.h) */
    int rc = spx_convert(&ctx, &o, &rep);
    int status = SPX_EXIT_OK;
    if (rc < 0) {
        status = spx_cli_fail(cmd, &ctx);
    } else {
        if (json)
            print_json(&rep, o.output, rep.dtype);
        else
            print_text(&rep, o.output, rep.dtype);
    }
    spx_convert_report_free(&rep);
    return status;
}
