/* spx_nonfinite.h: locate the first non-finite activation behind non-finite logits.
 *
 * spx_ppl_eval / spx_verify_compare only check the logits (SPX_E_NUMERIC "non-finite logits at
 * window W position P"). This diagnosis re-runs the windows of the same protocol (the stream cut
 * into non-overlapping windows of C tokens, each from an empty cache) block by block with the
 * forward hooks and reports the first place, in computation order, where a value is NaN or Inf:
 *   token embeddings -> per block: attn_q input (post-attn_norm), attn_output input, ffn_up input
 *   (post-ffn_norm), ffn_down input (act(gate)*up), block output (residual stream) -> logits.
 * It is a slow path (one more forward pass per window up to the failing one) taken only after a
 * failure. Library code: it never prints. */
#ifndef SPX_NONFINITE_H
#define SPX_NONFINITE_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_model.h"

#define SPX_NONFINITE_NO_LAYER UINT32_MAX

typedef struct spx_nonfinite_site {
    int found;                /* 1 when a non-finite value was located */
    uint64_t window;          /* window index in the stream (0-based) */
    uint32_t layer;           /* block index, SPX_NONFINITE_NO_LAYER for embeddings / logits */
    const char *stage;        /* static text: "attn_q input", "attn_output input", "ffn_up input",
                                 "ffn_down input", "output", "token embeddings", "logits" */
    uint64_t token;           /* position within the window (row of the stage's [n x width] input) */
    uint64_t element;         /* column within that row */
    float value;              /* the NaN / +Inf / -Inf found */
} spx_nonfinite_site;

/* Run windows 0.. (at most max_windows; 0 = all) of tokens[n] with window length C >= 1 through
 * `model` and stop at the first non-finite value. out->found = 0 when every value is finite.
 * Allocates one state [C positions] and [C x max(dim, vocab)] buffers; reserves them against the
 * ctx's --max-memory budget (spx_mem.h). Errors: SPX_E_ARG (C == 0, n < C, token id >= vocab),
 * SPX_E_LIMIT, SPX_E_NOMEM, the forward's errors. */
int spx_nonfinite_locate(spx_ctx *ctx, const spx_model *model, const uint32_t *tokens, size_t n, uint32_t C,
                         uint64_t max_windows, spx_nonfinite_site *out);

/* "non-finite activation in blk.3 ffn_down input (window 0, token 17, element 42): inf" (or
 * "... in token embeddings (...)", "... in logits (...)"). Always NUL-terminated. */
void spx_nonfinite_format(const spx_nonfinite_site *s, char *buf, size_t len);

/* After a SPX_E_NUMERIC from a logits check on `model` (label: "" or e.g. "candidate model "):
 * locate the first non-finite activation and, when found, replace ctx's message with
 * "<label><site>; <old message>" keeping the code. When the diagnosis finds nothing or fails
 * itself (e.g. out of budget), ctx is left unchanged. Returns 1 when a site was found, else 0. */
int spx_nonfinite_explain(spx_ctx *ctx, const spx_model *model, const char *label, const uint32_t *tokens, size_t n,
                          uint32_t C, uint64_t max_windows);

/* Weights: the first NaN/Inf in the float tensors (F32, F16, BF16; any encoding, decoded to dense
 * fp32) of an opened file. SPX_E_NUMERIC "tensor blk.1.ffn_up.weight: nan at flat index 37 (of
 * 12288)" for the first tensor in table order that has one; 0 when all are finite. The decode
 * buffer (largest tensor x 4 bytes) is reserved against the --max-memory budget. Decoding
 * validates each encoding (its errors pass through). */
int spx_nonfinite_check_file(spx_ctx *ctx, const spx_file *f);

#endif
