/* spx_synth.h: small synthetic Hugging Face checkpoints from a seed (`spx synth`).
 *
 * Writes DIR/config.json, DIR/model.safetensors (or a sharded set + index) and DIR/tokenizer.json.
 * Same options and seed -> byte-identical files. Used by the demo and by tests on machines
 * without a real model.
 *
 * The gpt2, gpt_neox and opt generators (spx_synth_arch.c) draw i.i.d. Gaussian weights (norm
 * weights 1 + N(0, 0.1^2), biases N(0, 0.1^2), learned positions N(0, 0.5^2)) in the Hugging Face
 * layout of GPT2LMHeadModel / GPTNeoXForCausalLM / OPTForCausalLM, for exactness tests.
 *
 * The Llama generator plants a known cluster structure in the MLP inputs:
 *   - K cluster centers c_k in R^dim (orthogonal when K <= dim, each of norm sqrt(dim), i.e.
 *     per-coordinate RMS 1);
 *   - token id t belongs to cluster t % K; its embedding is c_{t%K} + N(0, 0.25^2) noise (times 0.5
 *     for ids < 259, the special and byte tokens, so they rarely win as outputs);
 *   - attention and MLP branches write into the residual with a small scale (0.3/sqrt(layers) per
 *     coordinate), so the post-attention-norm state (the MLP input) of every layer stays close to
 *     the current token's center;
 *   - MLP neuron j "belongs" to cluster j % K: its gate row is aligned with c_{j%K} (pre-activation
 *     about +3 for tokens of that cluster, about 0 for the others), so each cluster activates its
 *     own subset of neurons.
 * config.json records the truth under "spx_synth": {"clusters": K, "seed": S,
 * "cluster_of_token": "id % K", ...}.
 *
 * Weights are drawn from per-tensor streams (xoshiro256** seeded from the seed and a hash of the
 * tensor name), so the order tensors are written in does not matter. Normal deviates are
 * Irwin-Hall sums of 12 uniforms (only additions: bit-identical on every platform and libm).
 */
#ifndef SPX_SYNTH_H
#define SPX_SYNTH_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

/* Architectures the generator knows (new ones add a value and a tensor-plan function). */
typedef enum spx_synth_arch {
    SPX_SYNTH_LLAMA = 0,
    SPX_SYNTH_GPT2 = 1,        /* GPT2LMHeadModel names and Conv1D [in, out] layout */
    SPX_SYNTH_NEOX = 2,        /* GPTNeoXForCausalLM (fused per-head query_key_value) */
    SPX_SYNTH_OPT = 3          /* OPTForCausalLM */
} spx_synth_arch;

#define SPX_SYNTH_MIN_VOCAB 259u          /* <unk> <s> </s> + 256 byte tokens */
#define SPX_SYNTH_MAX_VOCAB (1u << 18)
#define SPX_SYNTH_MAX_DIM 65536u
#define SPX_SYNTH_MAX_FFN 262144u
#define SPX_SYNTH_MAX_LAYERS 1024u

typedef struct spx_synth_opts {
    int arch;                  /* spx_synth_arch */
    uint32_t dim;              /* hidden_size */
    uint32_t ffn_dim;          /* intermediate_size */
    uint32_t n_layers;
    uint32_t n_heads;          /* head_dim = dim / n_heads, must be even (RoPE pairs) */
    uint32_t n_kv_heads;       /* divides n_heads */
    uint32_t vocab_size;       /* SPX_SYNTH_MIN_VOCAB .. SPX_SYNTH_MAX_VOCAB */
    uint32_t context_length;   /* max_position_embeddings in config.json (nothing is sized by it) */
    int tied;                  /* 1: tie_word_embeddings, no lm_head.weight */
    int dtype;                 /* spx_dtype: SPX_DTYPE_F32, F16 or BF16 */
    int act;                   /* spx_act: SPX_ACT_SILU, RELU or GELU (+ GELU_TANH for non-llama) */
    uint32_t n_clusters;       /* planted clusters K: 1 .. min(dim, vocab_size) */
    uint64_t seed;
    uint64_t shard_bytes;      /* 0: one model.safetensors; else sharded with this max shard size */
    /* gpt2 / gpt_neox / opt only (i.i.d. Gaussian weights, no planted clusters; n_kv_heads must
     * equal n_heads; act may also be gelu_tanh) */
    double rotary_pct;         /* gpt_neox: rotary fraction of head_dim (default 0.25) */
    int parallel_residual;     /* gpt_neox: use_parallel_residual (default 1) */
    int post_norm;             /* opt: do_layer_norm_before = false (default 0) */
} spx_synth_opts;

/* Defaults: llama, dim 64, ffn 172, 2 layers, 4 heads, 2 kv heads, vocab 512, ctx 256, tied,
 * f32, silu, 4 clusters, seed 0, unsharded. */
void spx_synth_opts_init(spx_synth_opts *o);

/* SPX_E_ARG naming the first bad field. */
int spx_synth_validate(spx_ctx *ctx, const spx_synth_opts *o);

const char *spx_synth_arch_name(int arch);     /* "llama", "gpt2", "gpt_neox", "opt" or "?" */
int spx_synth_arch_parse(const char *s);       /* spx_synth_arch or -1 */
int spx_synth_default_act(int arch);           /* silu, gelu_tanh (gpt2), gelu (gpt_neox), relu (opt) */

typedef struct spx_synth_result {
    uint64_t n_params;         /* elements over all tensors */
    uint32_t n_tensors;
    uint32_t n_shards;         /* 0 for a single model.safetensors */
    uint64_t weight_bytes;     /* safetensors file(s), headers included (index excluded) */
    uint64_t config_bytes;
    uint64_t tokenizer_bytes;
} spx_synth_result;

/* Create `dir` (and missing parents) and write the three files, each through a temporary file
 * and a rename. A model.safetensors (when writing shards) or model.safetensors.index.json (when
 * writing one file) left in dir by an earlier run is removed so it cannot shadow the new
 * checkpoint. res may be NULL. */
int spx_synth_write(spx_ctx *ctx, const spx_synth_opts *o, const char *dir, spx_synth_result *res);

/* The planted centers, row-major [n_clusters, dim] (malloc'ed; caller frees). */
int spx_synth_centers(spx_ctx *ctx, const spx_synth_opts *o, float **centers);

/* config.json text (malloc'ed, NUL-terminated, *len excludes the NUL). */
int spx_synth_config_json(spx_ctx *ctx, const spx_synth_opts *o, char **json, size_t *len);

/* tokenizer.json text for a vocabulary of vocab_size pieces (spx_synth_tok.c):
 * ids 0..2 <unk> <s> </s>, 3..258 <0x00>..<0xFF>, then "▁" and single characters (lowercase by
 * English frequency, uppercase, digits, punctuation), then "▁"-prefixed word pieces built by
 * left-to-right merges over an embedded list of common English words, then "▁" + lowercase
 * strings in length-then-alphabetical order until the vocabulary is full. Every merge "a b" has
 * a, b and ab in the vocabulary; merges are ranked in vocabulary order. With vocab_size 259 there
 * is no "▁" piece: spaces go through byte fallback and, as with Hugging Face's decoder (Replace
 * runs before ByteFallback), decode back as U+2581. */
int spx_synth_tokenizer_json(spx_ctx *ctx, uint32_t vocab_size, char **json, size_t *len);

#endif
