/* spx_llama2c.h: reader for llama2.c legacy (version 0) checkpoints.
 *
 * Layout (little-endian):
 *   OFF SIZE FIELD
 *     0   28 7 x i32: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, max_seq_len
 *            (vocab_size < 0: the classifier wcls is stored separately, i.e. not tied)
 *    28  ... f32 arrays, in this order (kv = dim * n_kv_heads / n_heads, hs = dim / n_heads):
 *            token_embedding [vocab, dim]    rms_att [L, dim]
 *            wq [L, dim, dim]   wk [L, kv, dim]   wv [L, kv, dim]   wo [L, dim, dim]   ([out, in])
 *            rms_ffn [L, dim]   w1 [L, hidden, dim] (gate)   w2 [L, dim, hidden] (down)
 *            w3 [L, hidden, dim] (up)   rms_final [dim]
 *            freq_cis_real [max_seq, hs/2]   freq_cis_imag [max_seq, hs/2]   (unused: recomputed)
 *            wcls [vocab, dim]   (only when vocab_size < 0)
 *   The file must end exactly there. Rotary pairs are interleaved (2j, 2j+1) within each head, so
 *   wq/wk carry SPX_XFORM_ROPE_DEINTERLEAVE to reach the HF rotate_half convention.
 * Implied config: eps 1e-5, theta 10000, head_dim = dim/n_heads, SiLU, gated FFN, RMSNorm,
 * tied embeddings when vocab_size > 0, bos 1 / eos 2 (the llama2.c convention). */
#ifndef SPX_LLAMA2C_H
#define SPX_LLAMA2C_H

#include <stddef.h>
#include <stdint.h>

#include "spx_arch.h"
#include "spx_error.h"

#define SPX_LLAMA2C_HEADER_BYTES 28

typedef struct spx_llama2c spx_llama2c;

/* One fp32 tensor of the checkpoint, in canonical terms. */
typedef struct spx_llama2c_tensor {
    const void *data;               /* fp32 values inside the map (4-byte aligned only by chance) */
    uint32_t ndim;                  /* 1 or 2 */
    uint64_t dims[2];               /* [rows, cols] (cols unused when ndim == 1) */
    uint64_t numel;
    uint64_t offset;                /* byte offset in the file */
    int xform;                      /* spx_xform to apply (wq, wk: ROPE_DEINTERLEAVE) */
    char src_name[32];              /* llama2.c name, e.g. "wq[3]" */
} spx_llama2c_tensor;

int spx_llama2c_open(spx_ctx *ctx, const char *path, spx_llama2c **out);
/* Validate a caller-owned buffer (must outlive the result); `label` names it in messages. */
int spx_llama2c_open_mem(spx_ctx *ctx, const void *buf, size_t len, const char *label, spx_llama2c **out);
void spx_llama2c_free(spx_llama2c *m);

const char *spx_llama2c_path(const spx_llama2c *m);
/* The implied config (name left empty). */
const spx_model_config *spx_llama2c_config(const spx_llama2c *m);
/* Tensor for canonical base/suffix ("attn_q", "weight") of block `layer` (ignored for globals).
 * Returns 1 and fills *out when the checkpoint has it, 0 otherwise. */
int spx_llama2c_find(const spx_llama2c *m, const char *base, const char *suffix, uint32_t layer,
                     spx_llama2c_tensor *out);
/* Number of skipped arrays and their descriptions (the precomputed rotary tables). */
size_t spx_llama2c_skipped_count(const spx_llama2c *m);
const char *spx_llama2c_skipped(const spx_llama2c *m, size_t i);

#endif
