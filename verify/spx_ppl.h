/* spx_ppl.h: perplexity over a token stream (the pruning literature's protocol).
 *
 * Protocol (SparseGPT / Wanda evaluation): the stream of N tokens is cut into W = N / C
 * non-overlapping windows of C tokens (the remainder N - W*C is dropped). Each window is run
 * from an empty KV cache; the loss is the cross-entropy of tokens 1..C-1 of the window given
 * their prefix, i.e. C-1 predictions per window. ppl = exp(sum of all losses / (W * (C-1))).
 * Log-softmax is computed in double from the fp32 logits (max subtracted first) and the losses
 * are summed in double.
 */
#ifndef SPX_PPL_H
#define SPX_PPL_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_forward.h"
#include "spx_model.h"
#include "spx_progress.h"

typedef struct spx_ppl_result {
    uint32_t ctx;             /* window length C */
    uint64_t windows;         /* windows evaluated */
    uint64_t tokens;          /* predicted tokens: windows * (C - 1) */
    uint64_t dropped;         /* tokens of the stream not evaluated (remainder, --max-windows) */
    double nll_sum;           /* sum of -log p(token | prefix) in nats */
    double nll_mean;          /* nll_sum / tokens */
    double ppl;               /* exp(nll_mean) */
} spx_ppl_result;

/* Evaluate `tokens` (n ids) with window length C (>= 2) on `state` (max_ctx >= C; reset before
 * every window, left in an unspecified position). max_windows: 0 = all windows. progress
 * (may be NULL) is called once per window with stage "ppl". Errors: SPX_E_ARG (C < 2,
 * C > state->max_ctx, token id >= vocab), SPX_E_DATA (fewer than C tokens), SPX_E_NUMERIC
 * (a non-finite logit), SPX_E_NOMEM. */
int spx_ppl_eval(spx_ctx *ctx, const spx_model *model, spx_state *state, const uint32_t *tokens, size_t n,
                 uint32_t C, uint64_t max_windows, const spx_progress *progress, spx_ppl_result *out);

/* Negative log-likelihood of `target` under fp32 logits [vocab]: logsumexp(logits) - logits[target],
 * in double with the maximum subtracted. Returns NaN when a logit is not finite. */
double spx_ppl_nll(const float *logits, uint32_t vocab, uint32_t target);

#endif
