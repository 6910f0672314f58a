/* spx_arch.h: the canonical architecture description shared by convert, the runtime and every
 * later stage.
 *
 * Canonical tensor names (GGUF-style, PyTorch dim order [out, in]); {i} is the block index:
 *   token_embd.weight          [vocab, dim]
 *   position_embd.weight       [n_pos, dim]       (learned absolute positions: GPT-2, OPT)
 *   blk.{i}.attn_norm.weight   [dim]              (+ .bias for LayerNorm architectures)
 *   blk.{i}.attn_q.weight      [n_head*head_dim, dim]      (+ attn_q.bias [n_head*head_dim])
 *   blk.{i}.attn_k.weight      [n_kv_head*head_dim, dim]   (+ attn_k.bias)
 *   blk.{i}.attn_v.weight      [n_kv_head*head_dim, dim]   (+ attn_v.bias)
 *   blk.{i}.attn_output.weight [dim, n_head*head_dim]      (+ attn_output.bias)
 *   blk.{i}.ffn_norm.weight    [dim]              (+ .bias)
 *   blk.{i}.ffn_gate.weight    [ffn, dim]         (GLU models only; + .bias)
 *   blk.{i}.ffn_up.weight      [ffn, dim]         (+ .bias)
 *   blk.{i}.ffn_down.weight    [dim, ffn]         (+ .bias)
 *   output_norm.weight         [dim]              (+ .bias; absent when spx.norm.output is false)
 *   output.weight              [vocab, dim]       (absent when embeddings are tied)
 *
 * Rotary convention: q/k rows are stored in the Hugging Face "rotate_half" order (dimension j is
 * paired with j + rot_dim/2 inside each head). llama2.c/Meta checkpoints (interleaved pairs) are
 * permuted at conversion time.
 *
 * Metadata keys written by spx_arch_to_meta (arch = general.architecture, e.g. "llama"):
 *   general.architecture, general.name,
 *   {arch}.vocab_size, {arch}.context_length, {arch}.embedding_length, {arch}.feed_forward_length,
 *   {arch}.block_count, {arch}.attention.head_count, {arch}.attention.head_count_kv,
 *   {arch}.attention.key_length (head_dim), {arch}.attention.layer_norm_rms_epsilon,
 *   {arch}.rope.freq_base, {arch}.rope.dimension_count,
 *   {arch}.rope.scaling.type ("none"|"linear"|"llama3"), {arch}.rope.scaling.factor,
 *   {arch}.rope.scaling.low_freq_factor, {arch}.rope.scaling.high_freq_factor,
 *   {arch}.rope.scaling.original_context_length,
 *   spx.ffn.activation ("silu"|"gelu"|"gelu_tanh"|"relu"), spx.ffn.gated (bool),
 *   spx.norm.type ("rms"|"layer"), spx.tied_embeddings (bool),
 *   spx.attention.bias (bool: q/k/v biases), spx.attention.output_bias (bool), spx.ffn.bias (bool),
 *   spx.bos_token_id, spx.eos_token_id (i32, -1 when unknown)
 * Optional keys, written only when they differ from the Llama default (absent = the default):
 *   spx.position_embd.count (u32: rows of position_embd.weight; absent/0: no learned positions),
 *   spx.position_embd.offset (u32: position p reads row p + offset; OPT 2; default 0),
 *   spx.norm.post (bool: post-norm blocks x = norm(x + f(x)); default false = pre-norm),
 *   spx.norm.output (bool: output_norm before the classifier; default true),
 *   spx.residual.parallel (bool: x + attn(attn_norm x) + mlp(ffn_norm x); default false)
 *
 * general.architecture values written by convert: "llama", "gpt2", "gptneox" (GPT-NeoX/Pythia),
 * "opt". The metadata describe the computation completely; the name only selects the tensor table.
 */
#ifndef SPX_ARCH_H
#define SPX_ARCH_H

#include <stdint.h>

#include "spx_format.h"

typedef enum spx_act {
    SPX_ACT_SILU = 0,
    SPX_ACT_GELU = 1,       /* erf form */
    SPX_ACT_GELU_TANH = 2,
    SPX_ACT_RELU = 3
} spx_act;

typedef enum spx_rope_scaling {
    SPX_ROPE_NONE = 0,
    SPX_ROPE_LINEAR = 1,
    SPX_ROPE_LLAMA3 = 2
} spx_rope_scaling;

typedef enum spx_norm_type {
    SPX_NORM_RMS = 0,
    SPX_NORM_LAYER = 1
} spx_norm_type;

#define SPX_ARCH_NAME_MAX 32

typedef struct spx_model_config {
    char arch[SPX_ARCH_NAME_MAX];   /* "llama" (also Mistral, Qwen2, SmolLM, TinyLlama map here) */
    char name[128];                 /* general.name */
    uint32_t vocab_size;
    uint32_t context_length;        /* informational: buffers are never sized by it */
    uint32_t dim;                   /* hidden size */
    uint32_t ffn_dim;               /* intermediate size */
    uint32_t n_layers;
    uint32_t n_heads;
    uint32_t n_kv_heads;
    uint32_t head_dim;
    uint32_t rope_dim;              /* rotary dimensions per head (== head_dim for Llama) */
    float norm_eps;
    float rope_theta;
    int rope_scaling;               /* spx_rope_scaling */
    float rope_factor;
    float rope_low_freq_factor;
    float rope_high_freq_factor;
    uint32_t rope_orig_ctx;
    int act;                        /* spx_act */
    int gated;                      /* 1: ffn_down(act(gate x) * up x); 0: ffn_down(act(up x)) */
    int norm_type;                  /* spx_norm_type */
    int tied_embeddings;
    int attn_bias;                  /* q/k/v biases present */
    int attn_out_bias;
    int ffn_bias;
    int32_t bos_id, eos_id;
    /* Non-Llama layouts; all zero for Llama (the metadata keys are then not written). */
    uint32_t n_pos_embd;            /* rows of position_embd.weight; 0: no learned positions */
    uint32_t pos_offset;            /* position p uses row p + pos_offset (OPT: 2) */
    int post_norm;                  /* 1: x = norm(x + attn(x)), x = norm(x + mlp(x)) (OPT post-LN) */
    int no_output_norm;             /* 1: no output_norm (OPT with do_layer_norm_before false) */
    int parallel_residual;          /* 1: x + attn(attn_norm(x)) + mlp(ffn_norm(x)) (GPT-NeoX) */
} spx_model_config;

/* Fill defaults for a Llama-family model (everything zero except eps 1e-5, theta 10000, silu,
 * gated, rms, bos/eos -1). */
void spx_config_init_llama(spx_model_config *c);

/* Check internal consistency (nonzero sizes, heads divide, head_dim even, ...). SPX_E_CONFIG. */
int spx_config_validate(spx_ctx *ctx, const spx_model_config *c);

/* Write/read the keys listed above. */
int spx_config_to_meta(spx_writer *w, const spx_model_config *c);
int spx_config_from_file(spx_ctx *ctx, const spx_file *f, spx_model_config *c);

/* Canonical tensor name into buf: layer < 0 for global tensors, e.g.
 * spx_tensor_name(buf, sizeof buf, 3, "ffn_up", "weight") -> "blk.3.ffn_up.weight";
 * spx_tensor_name(buf, sizeof buf, -1, "output_norm", "weight") -> "output_norm.weight". */
void spx_tensor_name(char *buf, size_t cap, int layer, const char *base, const char *suffix);

const char *spx_act_name(int act);
int spx_act_parse(const char *s);     /* returns spx_act or -1 */

#endif
