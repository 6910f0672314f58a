/* spx_convert.h: dense checkpoint -> .spx conversion (the `spx convert` driver).
 *
 * Inputs (opts.input):
 *   - a Hugging Face directory: config.json + model.safetensors, or + model.safetensors.index.json
 *     (shards); tokenizer.json beside it is embedded when present;
 *   - a .safetensors file or an index .json (config.json / tokenizer.json are taken from its directory);
 *   - a llama2.c legacy .bin checkpoint (by extension ".bin", else by content: a safetensors file has
 *     '{' at byte 8);
 *   - a GGUF file (name ending in ".gguf" or the "GGUF" magic; llama architecture, F32/F16/BF16/Q8_0,
 *     Q8_0 dequantized, q/k rows un-permuted from llama.cpp's layout; tokenizer.ggml.* kept).
 * The conversion streams tensor by tensor (each is read from the mmap, converted, checked for
 * NaN/Inf, and handed to the writer), in the canonical order of spx_archmap.h. The output appears
 * at opts.output only on success (temporary file + rename).
 *
 * Tokenizer (opts.tokenizer or tokenizer.json beside a HF checkpoint), by content: a JSON file is
 * stored verbatim as `tokenizer.huggingface.json`; otherwise it is read as a llama2.c tokenizer .bin
 * (n_vocab = the model's vocab) and stored as tokenizer.ggml.{model="llama", tokens (spaces shown as
 * U+2581 as in GGUF), scores, bos_token_id=1, eos_token_id=2}. No tokenizer is a note, not an error.
 * Also written: the model config (spx_config_to_meta), spx.source.format ("safetensors"|"llama2c"|"gguf"),
 * spx.source.dtype (the checkpoint's weight dtype, "mixed" when they differ). */
#ifndef SPX_CONVERT_H
#define SPX_CONVERT_H

#include <stddef.h>
#include <stdint.h>

#include "spx_arch.h"
#include "spx_error.h"
#include "spx_progress.h"

#define SPX_CONVERT_KEEP (-1)   /* opts.dtype: keep F32/F16/BF16 as stored (F64 -> F32) */

typedef struct spx_convert_opts {
    const char *input;          /* checkpoint path (see above) */
    const char *output;         /* .spx path */
    int dtype;                  /* SPX_CONVERT_KEEP or SPX_DTYPE_F32/F16/BF16 */
    const char *tokenizer;      /* NULL: tokenizer.json beside a HF checkpoint, if any */
    const char *name;           /* general.name; NULL: the checkpoint directory name (.bin: file stem) */
    spx_progress progress;      /* stage "convert", done/total tensors */
} spx_convert_opts;

#define SPX_CONVERT_OPTS_INIT {NULL, NULL, SPX_CONVERT_KEEP, NULL, NULL, {NULL, NULL}}

typedef struct spx_convert_report {
    char source_format[16];     /* "safetensors" | "llama2c" */
    char source_dtype[16];      /* "F32", "F16", "BF16", "F64" or "mixed" */
    char dtype[16];             /* stored dtype: "F32", "F16", "BF16" or "mixed" */
    size_t n_shards;            /* safetensors files read (1 for llama2c) */
    spx_model_config config;    /* what was written */
    uint64_t n_tensors;         /* tensors written */
    uint64_t n_params;          /* elements written */
    uint64_t data_bytes;        /* tensor data bytes written (without alignment padding) */
    uint64_t file_bytes;        /* size of the output file */
    char tokenizer[24];         /* "huggingface.json", "llama2c" or "none" */
    size_t n_skipped;           /* checkpoint tensors that were not converted */
    char **skipped;             /* [n_skipped] "name (reason)" */
    size_t n_notes;             /* inferences and warnings worth showing */
    char **notes;               /* [n_notes] */
} spx_convert_report;

/* Convert. rep may be NULL; when given it is filled (also partially on failure) and must be
 * released with spx_convert_report_free. Errors: see spx_error.h (SPX_E_SAFETENSORS, SPX_E_LLAMA2C,
 * SPX_E_CONFIG, SPX_E_UNSUPPORTED, SPX_E_MISSING naming canonical + source names, SPX_E_SHAPE with
 * got/expected shapes, SPX_E_NUMERIC with tensor and flat index, SPX_E_IO ...). */
int spx_convert(spx_ctx *ctx, const spx_convert_opts *opts, spx_convert_report *rep);

void spx_convert_report_free(spx_convert_report *rep);

#endif
