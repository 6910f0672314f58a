/* spx_moefy_run.h: MoEfication of a whole dense model (`spx moefy`): per FFN, equal-size neuron
 * experts (cluster/spx_moefy.h) and a trained gating predictor (spx_router.h), then the gated .spx.
 *
 * Calibration runs the DENSE model block by block (nothing is changed while calibrating, so each
 * block's output feeds the next exactly as in the dense forward). The windows' tokens are
 * subsampled once to at most max_tokens (Knuth's selection sampling with spx_rng: uniform, sorted
 * by window and position); the last `holdout` fraction of the kept tokens (whole windows) is held
 * out for early stopping and for the reported figures. Per block l:
 *   1. split: parameter split on W_gate (W_up for non-GLU models) before the pass, or for the
 *      co-activation split one extra capture-only pass accumulating the co-activations of the kept
 *      tokens' intermediate activations a (at most 200k tokens);
 *   2. one pass of the block over every window (in place: the outputs go to block l+1) capturing
 *      per kept token the FFN input m [dim] and, from the runtime's own a = act(gate m) * up m:
 *        mass_e  = sum_{i in expert e} |a_i|   (|a| = ReLU(a) for non-gated ReLU FFNs, MoEfication's
 *                  case; |a| also measures SiLU/GELU and gated-ReLU neurons whose products can
 *                  be negative)
 *        norm_e  = || W_down[:, block_e] a_block_e ||   (dsti only: the expert's output norm)
 *   3. targets: moe mass / max(mass over training tokens), clamped to [0, 1] (MoEfication);
 *      dsti norm (D2DMoE); lte 1 for the experts of the smallest mass-sorted prefix covering
 *      lte_cover of the token's mass (at least one), else 0 ("the expert is needed");
 *   4. router init: moe and lte from the per-expert mean of the normalized W_gate rows (MoEfication's
 *      init; W2 = identity for moe), dsti random (seed + l); training with spx_router_train;
 *   5. evaluation on the held-out tokens: spx_router_evaluate with the inference rule.
 * Memory: the residual streams of the windows (nsamples x seqlen x dim) plus, for the kept tokens,
 * m [N x dim] and the targets [N x E] (x2 for dsti); co-activation adds ffn^2 floats.
 * Seeds: split, router init and shuffling of block l use seed + l. */
#ifndef SPX_MOEFY_RUN_H
#define SPX_MOEFY_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "spx_model.h"
#include "spx_moefy.h"
#include "spx_progress.h"
#include "spx_router.h"
#include "spx_router_train.h"

typedef struct spx_moefy_opts {
    uint32_t experts;            /* E, divides ffn */
    int split;                   /* spx_moefy_split_kind */
    uint32_t kmeans_init;        /* balanced k-means restarts (default 10) */
    spx_router_rule gate;          /* router kind and its inference rule (top_k / tau / threshold) */
    int input_norm;              /* unit-normalize the router input (default 1) */
    uint32_t hidden;             /* dsti hidden width (default 128) */
    uint64_t max_tokens;         /* calibration tokens kept (default 65536) */
    double lte_cover;            /* lte target coverage (default 0.9) */
    uint64_t seed;               /* default 0 */
    spx_router_train_opts train; /* its log/log_ud are replaced by the driver (see `log` below) */
    /* Per-epoch losses of block `layer`; may be NULL. */
    void (*log)(void *ud, uint32_t layer, const spx_router_epoch *e);
    void *log_ud;
    spx_progress progress;       /* stage "moefy: block" */
} spx_moefy_opts;

/* Defaults for a router kind (experts 8, param split, moe top_k 2, tau 0.9, threshold 0.5). */
void spx_moefy_opts_init(spx_moefy_opts *o, int kind);

typedef struct spx_moefy_layer {
    uint32_t layer;
    uint32_t *perm;                 /* [ffn] new neuron i = old neuron perm[i] */
    spx_router *router;             /* trained */
    spx_moefy_split_info split;
    spx_router_train_report train;
    spx_router_eval eval;             /* on the held-out tokens */
    double split_seconds;
} spx_moefy_layer;

typedef struct spx_moefy_result {
    uint32_t n_layers, ffn, experts;
    uint64_t tokens;                /* kept calibration tokens per block */
    uint64_t heldout;               /* of which held out */
    spx_moefy_layer *layers;        /* [n_layers] */
} spx_moefy_result;

void spx_moefy_result_free(spx_moefy_result *r);

/* Calibrate, split and train for every block. windows [nsamples x seqlen] token ids.
 * Errors: SPX_E_ARG (ffn % E != 0, too few tokens, bad options), and those of the stages. */
int spx_moefy_model(spx_ctx *ctx, const spx_model *m, const uint32_t *windows, uint32_t nsamples, uint32_t seqlen,
                    const spx_moefy_opts *o, spx_moefy_result **out);

/* Write the gated model: the input's metadata (minus any spx.gate.* / spx.moefy.* keys) plus
 * spx.gate.{kind, experts, top_k (moe), tau (dsti), threshold (lte), input_norm}; every tensor
 * copied verbatim except blk.{l}.ffn_gate/ffn_up weight and bias (rows permuted) and
 * blk.{l}.ffn_down.weight (columns permuted), which keep their dtype (sparse encodings are
 * re-encoded: smallest exact encoding); then per block the F32 ROUTER tensors
 * blk.{l}.ffn_router.w1, .b1 (+ .w2, .b2 for moe/dsti). Any ffn_router tensor of the input is
 * dropped. add_meta (may be NULL) adds more keys (e.g. spx.moefy.*). */
int spx_moefy_write(spx_ctx *ctx, const spx_model *m, const char *out_path, const spx_moefy_result *res,
                    const spx_moefy_opts *o, int (*add_meta)(void *ud, spx_writer *w), void *ud);

#endif
