/* spx_archmap.h: per-architecture tensor-name tables (checkpoint name -> canonical name).
 *
 * Each architecture is a DATA TABLE of entries {source pattern, canonical base + suffix, where it
 * goes, role, expected shape, when it is required, transform}. "{i}" in a pattern stands for the
 * block index. The table order is the canonical tensor order of a converted file:
 *   FIRST entries (token_embd), then for each block the BLOCK entries in table order (weights
 *   attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down, then the
 *   biases), then LAST entries (output_norm, output).
 * Tables: "llama" (LlamaForCausalLM, Mistral, Qwen2), "gpt2" (GPT2LMHeadModel; Conv1D weights
 * stored [in, out] are transposed, the fused c_attn is split), "gptneox" (GPTNeoXForCausalLM;
 * the fused query_key_value is split per head), "opt" (OPTForCausalLM). A table may name a
 * prefix that checkpoints saved from the base model omit ("transformer." for GPT-2, "model." for
 * OPT): a source name not found is looked up again without it. */
#ifndef SPX_ARCHMAP_H
#define SPX_ARCHMAP_H

#include <stddef.h>
#include <stdint.h>

#include "spx_arch.h"
#include "spx_error.h"
#include "spx_format.h"

typedef enum spx_xform {
    SPX_XFORM_NONE = 0,
    SPX_XFORM_TRANSPOSE = 1,        /* GPT-2 Conv1D stores [in, out]: transpose to [out, in] */
    SPX_XFORM_SPLIT_QKV = 2,        /* fused rows [q; k; v] (1-D or 2-D): take row block `part` */
    SPX_XFORM_ROPE_DEINTERLEAVE = 3,/* llama2.c/Meta rotary pairs (2j, 2j+1) -> HF pairs (j, j+hd/2) */
    SPX_XFORM_SPLIT_QKV_T = 4,      /* GPT-2 fused Conv1D [in, 3*out]: column block `part`, transposed */
    SPX_XFORM_SPLIT_QKV_HEADS = 5   /* GPT-NeoX fused rows viewed [n_heads, 3, head_dim(, in)]: take
                                       [:, part] -> [n_heads*head_dim(, in)] */
} spx_xform;

typedef enum spx_map_place {
    SPX_PLACE_FIRST = 0,            /* global, before the blocks */
    SPX_PLACE_BLOCK = 1,            /* once per block; the pattern contains {i} */
    SPX_PLACE_LAST = 2              /* global, after the blocks */
} spx_map_place;

/* Expected shape from the config (q = n_heads*head_dim, kv = n_kv_heads*head_dim). */
typedef enum spx_shape_rule {
    SPX_SHAPE_VOCAB_DIM = 0,        /* [vocab, dim] */
    SPX_SHAPE_DIM,                  /* [dim] */
    SPX_SHAPE_Q_DIM,                /* [q, dim] */
    SPX_SHAPE_KV_DIM,               /* [kv, dim] */
    SPX_SHAPE_DIM_Q,                /* [dim, q] */
    SPX_SHAPE_FFN_DIM,              /* [ffn, dim] */
    SPX_SHAPE_DIM_FFN,              /* [dim, ffn] */
    SPX_SHAPE_Q,                    /* [q] */
    SPX_SHAPE_KV,                   /* [kv] */
    SPX_SHAPE_FFN,                  /* [ffn] */
    SPX_SHAPE_POS_DIM               /* [n_pos_embd, dim] */
} spx_shape_rule;

/* When the config says the tensor exists (then it is required; otherwise it must be absent). */
typedef enum spx_map_cond {
    SPX_COND_ALWAYS = 0,
    SPX_COND_UNTIED,                /* !tied_embeddings */
    SPX_COND_GATED,                 /* gated FFN */
    SPX_COND_ATTN_BIAS,             /* q/k/v biases */
    SPX_COND_ATTN_OUT_BIAS,         /* output projection bias */
    SPX_COND_FFN_BIAS,              /* up/down biases */
    SPX_COND_FFN_GATE_BIAS,         /* gated && ffn bias */
    SPX_COND_LAYER_NORM,            /* LayerNorm bias (norm_type == layer) */
    SPX_COND_OUTPUT_NORM,           /* !no_output_norm */
    SPX_COND_OUTPUT_NORM_BIAS       /* !no_output_norm && LayerNorm */
} spx_map_cond;

typedef struct spx_archmap_entry {
    const char *src;                /* checkpoint name pattern, e.g. "model.layers.{i}.mlp.up_proj.weight" */
    const char *base;               /* canonical base, e.g. "ffn_up" */
    const char *suffix;             /* "weight" or "bias" */
    uint8_t place;                  /* spx_map_place */
    uint8_t role;                   /* spx_role */
    uint8_t shape;                  /* spx_shape_rule */
    uint8_t cond;                   /* spx_map_cond */
    uint8_t xform;                  /* spx_xform */
    uint8_t part;                   /* fused splits: 0 q, 1 k, 2 v */
} spx_archmap_entry;

typedef struct spx_archmap {
    const char *arch;               /* general.architecture of the converted file */
    const spx_archmap_entry *entries;
    size_t count;
    const char *opt_prefix;         /* prefix checkpoints may omit, or NULL */
} spx_archmap;

/* Table for an spx architecture name ("llama", "gpt2", "gptneox", "opt"); NULL when there is none. */
const spx_archmap *spx_archmap_find(const char *arch);

/* Checkpoint name of entry e for block `layer` (ignored for global entries). -1 if cap is too small. */
int spx_archmap_src_name(const spx_archmap_entry *e, uint32_t layer, char *buf, size_t cap);
/* Canonical name ("blk.3.ffn_up.weight", "output.weight"). */
void spx_archmap_canon_name(const spx_archmap_entry *e, uint32_t layer, char *buf, size_t cap);
/* Entry index matching checkpoint name `name` (and its block index in *layer), or -1. Block
 * indices are decimal without leading zeros; the caller checks them against n_layers. A name
 * lacking the table's opt_prefix matches as if it had it. */
long spx_archmap_match(const spx_archmap *m, const char *name, uint32_t *layer);
/* 1 when the config says the tensor exists. */
int spx_archmap_present(const spx_archmap_entry *e, const spx_model_config *c);
/* Expected dims (ndim 1 or 2) of the canonical tensor from the config. */
void spx_archmap_shape(const spx_archmap_entry *e, const spx_model_config *c, uint64_t dims[2], uint32_t *ndim);
/* *desc = the writer record of the dense canonical tensor `canon` of entry e in block `layer`
 * (ignored for global entries): dtype, dims [ndim] (1 or 2), nnz = numel; everything else zero. */
void spx_archmap_dense_desc(const spx_archmap_entry *e, uint32_t layer, const char *canon, int dtype, uint32_t ndim,
                            const uint64_t dims[2], uint64_t numel, spx_tensor *desc);
/* Expected dims of the checkpoint tensor (the canonical shape before e->xform: transposed for
 * TRANSPOSE, three times the rows for the fused splits). */
void spx_archmap_src_shape(const spx_archmap_entry *e, const spx_model_config *c, uint64_t dims[2], uint32_t *ndim);

const char *spx_xform_name(int xform);
/* Apply `xform` to a row-major SOURCE array [rows, cols] of elem_size-byte values (cols 1 for
 * 1-D tensors) from src into dst (distinct buffers; dst holds the output: rows*cols elements,
 * a third of that for the splits). NONE copies. TRANSPOSE writes [cols, rows]. ROPE_DEINTERLEAVE
 * permutes rows inside each head of head_dim rows: new row h*hd + j = old row h*hd + 2j and new
 * row h*hd + hd/2 + j = old row h*hd + 2j + 1 (j < hd/2); needs hd even and rows % hd == 0.
 * SPLIT_QKV: output = source rows [part*rows/3, (part+1)*rows/3). SPLIT_QKV_T: output [cols/3,
 * rows] with out[o][i] = src[i][part*cols/3 + o]. SPLIT_QKV_HEADS: output row h*hd + j = source
 * row h*3*hd + part*hd + j. part must be 0..2 for the splits (ignored otherwise). Errors:
 * SPX_E_SHAPE (dims not divisible as required), SPX_E_OVERFLOW, SPX_E_ARG (bad part). */
int spx_xform_apply_part(spx_ctx *ctx, int xform, int part, uint32_t head_dim, const void *src, void *dst,
                         size_t elem_size, uint64_t rows, uint64_t cols);
/* spx_xform_apply_part with part 0. */
int spx_xform_apply(spx_ctx *ctx, int xform, uint32_t head_dim, const void *src, void *dst, size_t elem_size,
                    uint64_t rows, uint64_t cols);

#endif
