/* spx_export.h: .spx -> Hugging Face safetensors (the inverse of spx convert for Llama models),
 * and .spx -> GGUF (spx_export_gguf below).
 *
 * Output (out_path a directory, created if needed): DIR/model.safetensors, DIR/config.json
 * (LlamaForCausalLM fields from the .spx config metadata) and DIR/tokenizer.json (the bytes of
 * tokenizer.huggingface.json when the file has it). out_path ending in ".safetensors": only that
 * file. Tensor names are the Hugging Face names of the llama table in spx_archmap.c (no rotary
 * re-permutation: .spx stores q/k in HF order). Tensor order in the file is bytewise name order.
 *
 * Formats:
 *   DENSE: every tensor dense; sparse encodings are decoded with zeros materialized. With
 *     dtype KEEP a dense .spx tensor's bytes are copied verbatim (bit-identical round trip).
 *   SPARSE_BITMASK: 2-D tensors stored with a sparse encoding in the .spx are written in the
 *     compressed-tensors "sparse-bitmask" layout, prefix P = HF name without ".weight":
 *       P.shape        I64 [2]                 (rows, cols)
 *       P.compressed   dtype [nnz]             nonzeros in row-major order
 *       P.bitmask      U8  [rows, ceil(cols/8)] packbits(mask, bitorder little)
 *       P.row_offsets  I64 [rows]              exclusive prefix sum of the row counts
 *     and config.json gets
 *       "quantization_config": {"quant_method": "compressed-tensors", "format": "sparse-bitmask",
 *         "sparsity_config": {"format": "sparse-bitmask", "global_sparsity": <zeros/numel of the
 *         compressed weights>, "sparsity_structure": "unstructured", "targets": [<HF names>],
 *         "ignore": [], "registry_requires_subclass": false}}.
 *     Presence is decided from the value (x != 0), as the .spx encoders do. Dense tensors stay dense.
 *
 * Expanded (routers / expert copies) and gated (spx.gate.*) files are refused with
 * SPX_E_UNSUPPORTED: safetensors has no routing. Non-Llama computations (non-gated FFN,
 * LayerNorm, partial rotary, unequal q/k/v and output bias flags) are refused likewise.
 */
#ifndef SPX_EXPORT_H
#define SPX_EXPORT_H

#include <stdint.h>

#include "spx_error.h"

#define SPX_EXPORT_KEEP (-1)          /* opts.dtype: keep each tensor's stored dtype */

typedef enum spx_export_format {
    SPX_EXPORT_DENSE = 0,
    SPX_EXPORT_SPARSE_BITMASK = 1
} spx_export_format;

typedef struct spx_export_opts {
    int format;                       /* spx_export_format */
    int dtype;                        /* SPX_EXPORT_KEEP or SPX_DTYPE_F32/F16/BF16 (float tensors only) */
} spx_export_opts;

typedef struct spx_export_report {
    uint64_t n_tensors;               /* .spx tensors exported */
    uint64_t n_sparse;                /* of which written as sparse-bitmask */
    uint64_t st_tensors;              /* tensors in the safetensors file */
    uint64_t file_bytes;              /* size of the safetensors file */
    int wrote_config, wrote_tokenizer;
} spx_export_report;

/* Export in_path (opened with full data verification) to out_path as described above.
 * Errors: spx_file_open's, SPX_E_UNSUPPORTED (routing, non-Llama architecture or computation, a
 * tensor with no Hugging Face name), SPX_E_ARG (bad options), SPX_E_NOMEM, SPX_E_IO. */
int spx_export_safetensors(spx_ctx *ctx, const char *in_path, const char *out_path, const spx_export_opts *o,
                           spx_export_report *rep);

/* .spx -> GGUF v3 (convert/spx_gguf_export.c) for llama.cpp: general.architecture "llama", the
 * llama.* config keys (vocab_size, context_length, embedding_length, block_count,
 * feed_forward_length, rope.dimension_count, attention.head_count(_kv), attention.key_length,
 * attention.value_length, attention.layer_norm_rms_epsilon, rope.freq_base, linear
 * rope.scaling.*), general.file_type, the tokenizer (tokenizer.ggml.* copied when present,
 * tokenizer.huggingface.json as GGUF's key of that name, bos/eos ids). Tensors keep their
 * canonical (= GGUF) names in the llama table order, dense (sparse encodings decoded, zeros
 * materialized); attn_q/attn_k rows and biases are permuted to llama.cpp's interleaved rotary
 * layout. o->format must be DENSE. dtype KEEP copies the stored dtype (F32/F16/BF16: a bit-identical
 * round trip through `spx convert`); F32 converts everything; F16/BF16 convert matrices and keep
 * vectors (norms, biases) in F32 as llama.cpp does. Refused with SPX_E_UNSUPPORTED: expanded
 * (blk.N.ffn_up.router.*) and gated (blk.N.ffn_router.*, spx.gate.*) files, whose routing GGUF's
 * MoE layout (ffn_gate_inp + ffn_*_exps, softmax top-k) cannot express; non-llama computations
 * (non-SwiGLU FFN, LayerNorm, partial rotary, llama3 rope scaling, learned positions ...).
 * rep->n_tensors = rep->st_tensors = tensors written; wrote_tokenizer when one was carried over. */
int spx_export_gguf(spx_ctx *ctx, const char *in_path, const char *out_path, const spx_export_opts *o,
                    spx_export_report *rep);

#endif
