/* spx_model.h: a transformer loaded from a .spx file, ready for spx_forward: dense, pruned
 * (decoded to fp32), expanded (routed expert MLPs) or gated (neuron experts); see spx_moe.h.
 *
 * The model keeps the spx_file (and so its memory map) open for its whole life: dense F32
 * tensors are used in place from the map; F16/BF16 and sparse-encoded tensors are decoded to
 * fp32 at load (owned buffers). Tensor names and shapes follow common/spx_arch.h.
 *
 * Layout of the weights, with d = dim, f = ffn_dim, hq = n_heads*head_dim, hk = n_kv_heads*head_dim:
 *   tok_embd [vocab x d]; per layer: attn_norm [d], q [hq x d], k,v [hk x d], o [d x hq],
 *   ffn_norm [d], gate [f x d] (gated FFN only), up [f x d], down [d x f]; out_norm [d];
 *   output [vocab x d] (== tok_embd when the embeddings are tied).
 */
#ifndef SPX_MODEL_H
#define SPX_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "spx_arch.h"
#include "spx_error.h"
#include "spx_format.h"
#include "spx_linear.h"

/* spx_model_open flags */
#define SPX_MODEL_VERIFY_DATA 1u   /* check every tensor CRC and encoding at open (SPX_OPEN_VERIFY_DATA) */
#define SPX_MODEL_COPY_WEIGHTS 2u  /* give every linear layer an owned, writable fp32 copy (pruning) */
#define SPX_MODEL_KERNELS 4u       /* sparse / F16 / BF16 linears run packed kernels (SPX_LINEAR_KERNELS,
                                      spx_linear.h) instead of decoded fp32; COPY_WEIGHTS wins */

/* Mixture-of-experts MLPs (verify/spx_moe.h): routed expert copies (Sparse Expansion) and gated
 * neuron experts (MoEfication / DSTI / LTE). */
typedef struct spx_moe spx_moe;
typedef struct spx_gate spx_gate;

typedef struct spx_norm {
    const float *w;           /* [dim] scale */
    const float *b;           /* [dim] shift (LayerNorm with bias) or NULL */
} spx_norm;

typedef struct spx_layer {
    spx_norm attn_norm;       /* before q/k/v */
    spx_norm ffn_norm;        /* before gate/up */
    spx_linear q;             /* [hq x d] (+ bias [hq] when cfg.attn_bias) */
    spx_linear k;             /* [hk x d] */
    spx_linear v;             /* [hk x d] */
    spx_linear o;             /* [d x hq] (+ bias [d] when cfg.attn_out_bias) */
    spx_linear gate;          /* [f x d]; empty (w == NULL) when !cfg.gated or moe != NULL */
    spx_linear up;            /* [f x d]; empty when moe != NULL */
    spx_linear down;          /* [d x f]; empty when moe != NULL */
    spx_moe *moe;             /* owned; NULL: dense MLP. Set: routed expert copies replace gate/up/down */
    spx_gate *gating;         /* owned; NULL: every neuron runs. Set: gate/up/down hold the permuted
                                 dense weights and a router picks neuron blocks per token */
} spx_layer;

/* Run-time selection rule of gated neuron experts (spx_model_set_gate_override). */
typedef struct spx_gate_override {
    int mode;                 /* spx_gate_mode (spx_moe.h); 0: the file's rule */
    double amount;            /* k experts (>= 1) or a fraction of E (0 < amount < 1) */
    uint64_t seed;            /* random mode */
} spx_gate_override;

typedef struct spx_model {
    spx_model_config cfg;     /* from the file's metadata (spx_config_from_file) */
    spx_file *file;           /* owned; mapped for the model's lifetime */
    const float *tok_embd;    /* [vocab x d] */
    const float *pos_embd;    /* [cfg.n_pos_embd x d] learned positions (GPT-2, OPT) or NULL */
    spx_norm out_norm;        /* final norm before the classifier (w == NULL: none, cfg.no_output_norm) */
    spx_linear output;        /* [vocab x d]; tied: w == tok_embd and nothing owned */
    spx_layer *layers;        /* [n_layers] */
    double *rope_inv_freq;    /* [rope_dim/2] inverse frequencies after rope scaling */
    void **owned;             /* heap buffers behind tok_embd / norms (freed by spx_model_free) */
    size_t n_owned, cap_owned;
    spx_gate_override gate_override;  /* zero: gated layers follow the file's rule */
} spx_model;

/* Open `path` and load the model. flags: SPX_MODEL_VERIFY_DATA | SPX_MODEL_COPY_WEIGHTS.
 * Errors: anything from spx_file_open / spx_config_from_file; SPX_E_MISSING listing the missing
 * tensor names; SPX_E_SHAPE naming a tensor whose shape does not match the configuration.
 * Expanded blocks (blk.{l}.ffn_up.router.centroids present) load as spx_moe and gated blocks
 * (blk.{l}.ffn_router.w1 present) as spx_gate, with the conventions of specs/spx-format.md
 * ("Expanded MLPs", "Gated neuron experts"); their errors are listed in spx_moe.h. Any
 * general.architecture is accepted: the metadata describe the computation completely. */
int spx_model_open(spx_ctx *ctx, const char *path, unsigned flags, spx_model **out);

/* Same on an already opened file; takes ownership of *f (sets it to NULL, also on failure). */
int spx_model_open_file(spx_ctx *ctx, spx_file **f, unsigned flags, spx_model **out);

/* Frees owned buffers and closes the file. Accepts NULL. */
void spx_model_free(spx_model *m);

/* Total parameter count of the loaded tensors (embedding counted once when tied), experts and
 * routers included. */
uint64_t spx_model_param_count(const spx_model *m);

#endif
