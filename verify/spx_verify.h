/* spx_verify.h: numerical comparison of a candidate model against a reference (`spx verify`).
 *
 * Both models run over the same token windows (the perplexity protocol of spx_ppl.h: the stream
 * of n tokens is cut into W = n / C non-overlapping windows of C tokens, remainder dropped, each
 * window from an empty KV cache). Everything goes through the runtime's public entry points
 * (spx_embed, spx_block_forward with observation hooks, spx_head), so whatever the candidate's
 * runtime computes for a block (dense, sparse-decoded, expert MLPs, gated experts) is what is
 * compared.
 *
 * Per window:
 *  1. Reference pass, block by block. Before block l runs, its input X_l [C x dim] (the
 *     reference's residual stream) is copied and fed to the CANDIDATE's block l as well, so that
 *     errors do not compound across blocks. For each block:
 *       attn = o(a)                   attention sublayer output [C x dim], a the input of
 *                                     attn_output captured by the attn_out_input hook, o the
 *                                     model's own attn_output layer (spx_linear_forward)
 *       mlp  = X_out - (X_l + attn)   MLP sublayer output [C x dim] (in double)
 *       block = X_out - X_l           both sublayers together
 *     rel(y) = ||y_c - y_r||_F / ||y_r||_F accumulated over all windows (sums of squares in
 *     double; 0/0 = 0, x/0 = +inf).
 *     Per linear layer (q, k, v, attn_output, gate, up, down) whose weights differ (both models
 *     hold it as a dense fp32 spx_linear of the same shape and the bytes of weight or bias
 *     differ): rel(W_c x_r - W_r x_r) on the REFERENCE's captured input x_r of that layer, i.e.
 *     the local error of the layer alone. Layers that are identical, absent, or not plain dense
 *     linears in either model are not reported, nor the MLP linears of a block whose MLP is made
 *     of experts (spx_layer.moe / .gating): the block figures still cover them.
 *  2. Candidate pass: the candidate's own full forward (embed, every block, head), no reference
 *     input. For the C-1 positions p = 0..C-2 of the window (those that predict a token, as in
 *     the perplexity protocol), in double from the fp32 logits with the maximum subtracted:
 *       KL(ref || cand) = sum_j p_r(j) (log p_r(j) - log p_c(j))  (rounding below 0 clamped to 0)
 *       top-1 agreement: argmax_r == argmax_c (ties: lowest index)
 *       nll = logsumexp(l) - l[target] for both models (the formula of spx_ppl_nll)
 *  Reported: mean and max KL, its 99.9th percentile (nearest rank: the ceil(0.999 N)-th smallest
 *  of the N per-position values), the top-1 agreement fraction, both perplexities
 *  exp(mean nll) and their ratio cand/ref.
 *
 * Memory: two states of C positions (max_batch C) plus O(C x max(dim, ffn, q_dim)) capture
 * buffers, logits in chunks of 64 positions, and one double per compared position for the
 * percentile. Nothing is sized by the models' context_length.
 */
#ifndef SPX_VERIFY_H
#define SPX_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_model.h"
#include "spx_progress.h"

/* The linear layers of a block, in this order; names are the canonical tensor bases. */
#define SPX_VERIFY_N_LINEARS 7
extern const char *const spx_verify_linear_names[SPX_VERIFY_N_LINEARS];
/* "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down" */

typedef struct spx_verify_opts {
    uint32_t ctx;             /* window length C >= 2 */
    uint64_t max_windows;     /* 0: every window */
    int per_linear;           /* nonzero: compute the per-linear figures (costs ~2 extra GEMMs per
                                 differing layer) */
    spx_progress progress;    /* stage "verify", done/total windows */
} spx_verify_opts;

#define SPX_VERIFY_OPTS_INIT {0, 0, 1, {NULL, NULL}}

typedef struct spx_verify_layer {
    double attn_rel;          /* rel. error of the attention sublayer output */
    double mlp_rel;           /* rel. error of the MLP sublayer output */
    double block_rel;         /* rel. error of the block's residual update (attn + mlp) */
    int linear_cmp[SPX_VERIFY_N_LINEARS];     /* 1 when the layer differs and was compared */
    double linear_rel[SPX_VERIFY_N_LINEARS];  /* its rel. error on the reference input, else 0 */
} spx_verify_layer;

typedef struct spx_verify_result {
    uint32_t ctx;             /* window length C */
    uint64_t windows;         /* windows evaluated */
    uint64_t positions;       /* compared positions: windows * (C - 1) */
    uint64_t dropped;         /* tokens of the stream not evaluated */
    double kl_mean, kl_max, kl_p999;   /* nats */
    double top1;              /* fraction of positions whose argmax agrees */
    double nll_ref, nll_cand; /* mean nll, nats/token */
    double ppl_ref, ppl_cand, ppl_ratio;
    uint32_t n_layers;
    spx_verify_layer *layers; /* [n_layers], owned */
} spx_verify_result;

/* Compare `cand` with `ref` on `tokens` (n ids). The models must agree on dim, vocab_size and
 * n_layers (SPX_E_SHAPE naming the figure otherwise); other sizes (ffn, heads) may differ.
 * Errors: SPX_E_ARG (C < 2, C >= 2^31), SPX_E_DATA (fewer than C tokens, an id >= vocab),
 * SPX_E_NUMERIC (a non-finite logit, naming the model, window and position), SPX_E_NOMEM,
 * anything from the runtime. *out is filled only on success; free it with
 * spx_verify_result_free. */
int spx_verify_compare(spx_ctx *ctx, const spx_model *cand, const spx_model *ref, const uint32_t *tokens,
                       size_t n, const spx_verify_opts *opts, spx_verify_result *out);

/* Frees layers and zeroes *r. Accepts NULL. */
void spx_verify_result_free(spx_verify_result *r);

/* Statistics of one position: KL(ref || cand) in nats, both argmaxes and both nlls of `target`
 * (target >= vocab: nlls not computed). Returns 0, or SPX_E_NUMERIC when a logit is not finite
 * (*which = 0 reference, 1 candidate). Exposed for tests. */
typedef struct spx_verify_pos {
    double kl;
    uint32_t top_ref, top_cand;
    double nll_ref, nll_cand;
} spx_verify_pos;
int spx_verify_position(const float *lr, const float *lc, uint32_t vocab, uint32_t target, spx_verify_pos *out,
                        int *which);

/* Nearest-rank percentile q in (0, 1] of v[0..n) (n >= 1); sorts v in place. */
double spx_verify_percentile(double *v, size_t n, double q);

#endif
