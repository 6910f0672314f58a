/* spx_moe.h: the two mixture-of-experts MLPs of the runtime. Only the selected experts are
 * computed; the file conventions are in specs/spx-format.md ("Expanded MLPs (Sparse Expansion)",
 * "Gated neuron experts").
 *
 * 1. Routed expert copies (Sparse Expansion), spx_layer.moe. With m = ffn_norm(x) [n x dim]:
 *      e_t  = route(r_up, m_t)                      nearest centroid (common/spx_route.h)
 *      h_t  = act(gate[e_t] m_t) * (up[e_t] m_t)    (non-gated FFN: act(up[e_t] m_t))
 *      f_t  = route(r_down, h_t)
 *      y_t  = down[f_t] h_t
 *    Tokens are grouped by expert (stable: token order inside a group); each group runs through
 *    spx_linear_forward (sgemm for several rows, sgemv for one) and the rows are scattered back.
 *    A group holding every token of the call is computed in place with no gather, so K = 1 with
 *    the dense weights gives bit-identical results to the dense MLP.
 *
 * 2. Gated neuron experts (MoEfication / DSTI / LTE), spx_layer.gating. The ffn neurons are
 *    permuted so that expert e owns the contiguous block [e B, (e+1) B), B = ffn / E; the dense
 *    gate/up/down stay in the layer. Per token a router scores the E experts from m (unit-
 *    normalised when input_norm) and a rule selects some; only their blocks are computed:
 *      h_t[block e] = act(gate[block e] m_t) * (up[block e] m_t)    for selected e
 *      y_t = b_down + sum over selected e, ascending, of D_e h_t[block e],  D_e = down[:, block e]
 *    D_e is kept packed ([E][dim x B], contiguous) next to the dense down. Tokens are grouped per
 *    expert (token lists) for sgemm.
 *    Scores: moe  s = W2 tanh(W1 x + b1) + b2;  dsti s = |W2 relu(W1 x + b1) + b2| (predicted
 *    expert output norms);  lte s = sigmoid(W1 x + b1).
 *    Rules: moe  the top_k largest scores (ties: lower index);
 *           dsti sort descending (ties: lower index), keep the shortest prefix whose cumulative sum
 *                (in double, in sorted order) reaches tau * (sum of all scores in the same order),
 *                at least one expert; tau = 1 selects every expert with a nonzero score;
 *           lte  every expert with s >= threshold; none: the single largest (ties: lower index).
 *    Run-time overrides (spx_model_set_gate_override) for evaluation tables:
 *           topk   the router's scores, k experts per token, whatever the kind;
 *           oracle k experts of largest activation mass sum_j |h_j| over the block, h computed
 *                  densely (an upper-bound baseline: its work counters still report k / E);
 *           random k distinct experts uniformly per token from a seeded generator keyed by
 *                  (seed, state->seq, layer, position): batched and token-by-token runs agree.
 */
#ifndef SPX_MOE_H
#define SPX_MOE_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_forward.h"
#include "spx_linear.h"
#include "spx_model.h"
#include "spx_route.h"
#include "spx_route_fold.h"

#define SPX_MOE_MAX_EXPERTS 256u     /* K of an expanded block: 1..256 */

/* ---- routed expert copies ------------------------------------------------------------------- */

struct spx_moe {
    spx_router r_up;          /* in_dim = dim, k = k_up: routes m for gate and up */
    spx_router r_down;        /* in_dim = ffn, k = k_down: routes h, the input of down */
    uint32_t k_up, k_down;
    spx_linear *gate;         /* [k_up], each [ffn x dim]; all empty when !cfg.gated */
    spx_linear *up;           /* [k_up], each [ffn x dim] */
    spx_linear *down;         /* [k_down], each [dim x ffn] */
    float *owned[6];          /* heap buffers behind r_up mean/proj/centroids, then r_down's
                                 (NULL where the router uses the file map or has no such part) */
    spx_router_fold *fold[2]; /* r_up, r_down folded (spx_route_fold.h) by spx_moe_fold_routers
                                 where it saves work; NULL otherwise */
};

/* A moe with k_up gate/up and k_down down experts (1..256 each), all linears empty, routers
 * sized (in_dim dim / ffn, k) without buffers. Errors: SPX_E_ARG, SPX_E_NOMEM. */
int spx_moe_alloc(spx_ctx *ctx, uint32_t k_up, uint32_t k_down, uint32_t dim, uint32_t ffn, spx_moe **out);

/* Give router `which` (0: up, 1: down) its buffers, taking ownership of all three (also on
 * failure): mean [in_dim] and proj [pca_dim x in_dim] (both NULL when pca_dim == 0), centroids
 * [k x (pca_dim or in_dim)]. Errors: SPX_E_ARG (pca_dim > in_dim, a buffer missing or extra). */
int spx_moe_set_router(spx_ctx *ctx, spx_moe *moe, int which, uint32_t pca_dim, float *mean, float *proj,
                       float *centroids);

/* Frees the linears, owned router buffers and the struct. Accepts NULL. */
void spx_moe_free(spx_moe *moe);

/* spx_router_assign as the runtime runs it: labels [n] of X [n x in_dim], Y [n x rdim] scratch
 * (not written when k == 1: every label is 0 without reading X). With a fold (may be NULL) tokens
 * are routed by spx_router_fold_assign; without, routers whose projection holds >= 256 KiB are
 * split over the kernel pool (rows of the projection for one token, tokens for several). Either
 * way the labels are the same as spx_router_assign's. */
void spx_moe_route(const spx_router *r, const spx_router_fold *fold, const float *X, size_t n, float *Y,
                   uint32_t *labels);

/* (Re)build moe->fold for routers where folding saves work (after the routers are set; attach and
 * the model loader call it). SPX_E_NOMEM. */
int spx_moe_fold_routers(spx_ctx *ctx, spx_moe *moe, uint32_t layer);

/* Check moe against the model (router sizes, every expert present with the right shape, gate
 * experts iff cfg.gated), fold its routers where that saves work, then install it in layer
 * `layer`: the dense gate/up/down linears and any previous moe/gating are released. On success
 * the model owns moe; on failure (SPX_E_ARG, SPX_E_SHAPE, SPX_E_NOMEM) the caller still does and
 * the model is unchanged. */
int spx_moe_attach(spx_ctx *ctx, spx_model *m, uint32_t layer, spx_moe *moe);

/* ---- gated neuron experts ------------------------------------------------------------------- */

typedef enum spx_gate_kind {
    SPX_GATE_MOE = 0,         /* MoEfication MLPCenter: tanh hidden, top_k */
    SPX_GATE_DSTI = 1,        /* D2DMoE: ReLU hidden, |output| predicts expert norms, tau */
    SPX_GATE_LTE = 2          /* LTE: one sigmoid layer, threshold */
} spx_gate_kind;

typedef enum spx_gate_mode {
    SPX_GATE_MODE_ROUTER = 0, /* the file's rule */
    SPX_GATE_MODE_TOPK = 1,   /* router scores, k per token */
    SPX_GATE_MODE_ORACLE = 2, /* k of largest activation mass (dense evaluation baseline) */
    SPX_GATE_MODE_RANDOM = 3  /* k random experts per token */
} spx_gate_mode;

struct spx_gate {
    int kind;                 /* spx_gate_kind */
    uint32_t n_experts;       /* E, divides ffn */
    uint32_t block;           /* B = ffn / E neurons per expert */
    uint32_t dim;             /* router input size (model dim) */
    uint32_t hidden;          /* h: rows of w1 (lte: h == E) */
    uint32_t top_k;           /* moe: 1..E */
    float tau;                /* dsti: (0, 1] */
    float threshold;          /* lte */
    int input_norm;           /* nonzero: x / ||x||_2 is the router input */
    spx_linear w1;            /* [h x dim] + b1 [h] */
    spx_linear w2;            /* [E x h] + b2 [E]; empty for lte */
    float *down_packed;       /* [E][dim x B]: D_e = ffn_down[:, block e], row-major; made by
                                 spx_gate_attach / the loader from the layer's ffn_down */
};

/* Names "moe", "dsti", "lte" <-> kind; parse returns -1 for anything else. */
const char *spx_gate_kind_name(int kind);
int spx_gate_kind_parse(const char *s);

/* A gate of `kind` over E experts of an ffn-wide FFN (E divides ffn), router hidden size `hidden`
 * (lte: must equal E); linears empty; top_k = 1, tau = 1, threshold = 0.5, input_norm = 0 until
 * the caller sets them. Errors: SPX_E_ARG, SPX_E_NOMEM. */
int spx_gate_alloc(spx_ctx *ctx, int kind, uint32_t n_experts, uint32_t dim, uint32_t ffn, uint32_t hidden,
                   spx_gate **out);

/* Router weights, taking ownership of all four (also on failure): w1 [h x dim], b1 [h],
 * w2 [E x h] and b2 [E] (both NULL for lte). Errors: SPX_E_ARG (a buffer missing or extra). */
int spx_gate_set_router(spx_ctx *ctx, spx_gate *g, float *w1, float *b1, float *w2, float *b2);

/* Frees weights, packed down and the struct. Accepts NULL. */
void spx_gate_free(spx_gate *g);

/* Check g against the model (sizes, router present, parameters in range) and install it in layer
 * `layer`, whose dense gate/up/down must already be the permuted weights (expert e = neurons
 * [e B, (e+1) B)): packs D_e from the layer's down. A previous gating is freed. On success the
 * model owns g; on failure (SPX_E_ARG, SPX_E_SHAPE, SPX_E_NOMEM) the caller does. The packed copy
 * is not refreshed if the down weights change later. */
int spx_gate_attach(spx_ctx *ctx, spx_model *m, uint32_t layer, spx_gate *g);

/* Router scores S[n x E] for inputs X[n x dim] (formulas above). work: n * (dim + h) floats. */
void spx_gate_scores(const spx_gate *g, const float *X, size_t n, float *work, float *S);

/* The file's rule on one token's scores s[E]: sel[e] = 1 for the chosen experts, else 0.
 * Returns how many. ord: scratch of 2 E. */
uint32_t spx_gate_select(const spx_gate *g, const float *s, uint32_t *ord, uint8_t *sel);

/* sel = the k (1..E) largest of s[E], ties to the lower index. ord: scratch of 2 E. */
void spx_gate_topk(const float *s, uint32_t E, uint32_t k, uint32_t *ord, uint8_t *sel);

/* Set the selection rule of every gated layer for later forward calls. mode: spx_gate_mode.
 * amount (not used by ROUTER): an integer k >= 1 (capped at each layer's E) or a fraction
 * 0 < amount < 1 of E (k = max(1, round(amount E))). seed: RANDOM mode.
 * Errors: SPX_E_ARG (unknown mode, amount out of range or not an integer >= 1). */
int spx_model_set_gate_override(spx_ctx *ctx, spx_model *m, int mode, double amount, uint64_t seed);

/* k of the override for a layer with E experts. */
uint32_t spx_gate_override_k(const spx_gate_override *o, uint32_t E);

/* ---- work estimates ------------------------------------------------------------------------- */

/* Multiply-adds per token of the linear layers (q, k, v, o, the MLP and the classifier; attention
 * scores, norms and activations are not counted), as 2 x values:
 *   dense     every linear as a dense rows x cols matrix (an expanded MLP: one expert's shape);
 *   sparse    every linear at its stored nnz; an expanded MLP at the mean nnz of its experts
 *             (the cost of one sparse model without routing);
 *   router    the routers of expanded blocks: projection 2 p in_dim + in_dim (mean subtraction)
 *             plus distances 3 K rdim (difference, square, sum), per router;
 *   expanded  sparse + router: what an expanded model executes per token.
 * Gated layers are counted densely (their share is spx_state_ffn_fraction). */
typedef struct spx_flops {
    double dense, sparse, router, expanded;
} spx_flops;
void spx_model_flops(const spx_model *m, spx_flops *out);

/* 1 when some layer of m is expanded / gated. */
int spx_model_has_moe(const spx_model *m);
int spx_model_has_gating(const spx_model *m);

/* ---- internal: used by spx_model.c and spx_forward.c ---------------------------------------- */

/* 1 when block `layer` of f is expanded (blk.{l}.ffn_up.router.centroids exists). */
int spx_file_block_expanded(const spx_file *f, uint32_t layer);
/* SPX_E_MISSING when an expert tensor (blk.{l}.ffn_{gate,up,down}.{e}.*) belongs to a block
 * without blk.{l}.ffn_up.router.centroids. */
int spx_file_check_unrouted(spx_ctx *ctx, const spx_file *f, uint32_t n_layers);
/* Load the expanded MLP of block `layer` from m->file into m->layers[layer].moe. */
int spx_model_load_moe(spx_ctx *ctx, spx_model *m, uint32_t layer, int copy);
/* Load the gating of every block that has blk.{l}.ffn_router.w1 (after the dense layers), and
 * reject expert tensors the runtime would not use. */
int spx_model_load_experts_finish(spx_ctx *ctx, spx_model *m, int copy);

/* Grow the state's expert scratch for n tokens of block `layer` (nothing for a dense block).
 * Called before the block changes anything. Errors: SPX_E_OVERFLOW, SPX_E_NOMEM. */
int spx_expert_reserve(spx_ctx *ctx, const spx_model *model, spx_state *s, uint32_t layer, size_t n);

/* MLP sublayer of an expanded / gated block after spx_expert_reserve: input s->xn [n x dim],
 * output s->tmp [n x dim] (before the residual add); calls the mlp_hidden hook with the full
 * [n x ffn] hidden state (gated: unselected blocks zero). Expanded, one token, a folded down router
 * and a gate/up expert on native kernels: the expert runs fused with the down routing (counted in
 * s->moe_fused), with the same bits as unfused. */
void spx_moe_mlp(const spx_model *model, spx_state *s, uint32_t layer, size_t n, const spx_forward_hooks *hooks);
void spx_gate_mlp(const spx_model *model, spx_state *s, uint32_t layer, size_t n, const spx_forward_hooks *hooks);

#endif
