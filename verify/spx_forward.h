/* spx_forward.h: the dense fp32 forward pass (state, block-level entry points, logits).
 *
 * Computation per block (Llama family, HF conventions), x the residual stream [n x d]
 * (x starts as tok_embd[t] + pos_embd[p + pos_offset] when the model has learned positions):
 *   a = norm(x; attn_norm)                         RMSNorm (or LayerNorm when cfg.norm_type == layer)
 *   q = a Wq^T (+bq), k = a Wk^T (+bk), v = a Wv^T (+bv)
 *   rotary on the first rope_dim dims of every q/k head, "rotate_half" pairing (j, j + rope_dim/2)
 *   o_h = softmax(q_h k_g^T / sqrt(head_dim) + causal mask) v_g, g = h / (n_heads / n_kv_heads) (GQA)
 *   x += o Wo^T (+bo)
 *   m = norm(x; ffn_norm)
 *   h = act(m Wg^T + bg) * (m Wu^T + bu)        (gated; non-gated: h = act(m Wu^T + bu))
 *   x += h Wd^T (+bd)
 * Variants (spx_arch.h): parallel residual (GPT-NeoX): m = norm(x_in; ffn_norm) from the block
 * input and x = x_in + attn + mlp; post-norm (OPT do_layer_norm_before false): q/k/v and the MLP
 * read x unnormalised and x = norm(x + attn; attn_norm), x = norm(x + mlp; ffn_norm); rope_dim 0
 * means no rotary (learned positions); no output norm when cfg.no_output_norm.
 * Expanded blocks (layer.moe) route m to one gate/up expert and h to one down expert per token;
 * gated blocks (layer.gating) compute only the selected neuron blocks of h (spx_moe.h).
 * then logits = norm(x; out_norm) Wout^T. All arithmetic is fp32 with fp32 accumulation except the
 * norm statistics and the softmax denominator (accumulated in double) and the rotary tables
 * (angles computed in double, stored as fp32).
 *
 * The state owns the KV cache, sized by the caller's max_ctx (never by the model's
 * context_length), and scratch buffers for up to max_batch tokens per call.
 */
#ifndef SPX_FORWARD_H
#define SPX_FORWARD_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_model.h"

/* Routing observation (expanded MLPs): labels[i] is the expert chosen for token i of this call;
 * which = 0 for the gate/up router, 1 for the down router. Valid only during the call. */
typedef void (*spx_route_hook)(void *ud, uint32_t layer, int which, const uint32_t *labels, size_t n);

/* Selection observation (gated layers): sel[i * n_experts + e] = 1 when expert e runs for token i
 * of this call. Valid only during the call. */
typedef void (*spx_gate_hook)(void *ud, uint32_t layer, const uint8_t *sel, size_t n, uint32_t n_experts);

/* Scratch of the expert paths (spx_moe.c, spx_gate.c), grown on demand because a driver may
 * attach experts to a model after its state was made. Counts are in elements. */
typedef struct spx_expert_scratch {
    float *in;                /* gathered input rows / router projection / normalised router input */
    float *a;                 /* expert gate outputs, router hidden layer, down outputs */
    float *b;                 /* expert hidden activations */
    float *y;                 /* down outputs of one expert [ne x dim] */
    float *sc;                /* router scores [n x E] */
    uint32_t *lab;            /* labels [n] */
    uint32_t *idx;            /* token lists [n] grouped by expert */
    uint8_t *sel;             /* selection [n x E] */
    uint32_t *ord;            /* sort scratch [2 E] */
    size_t in_cap, a_cap, b_cap, y_cap, sc_cap, lab_cap, idx_cap, sel_cap, ord_cap;
} spx_expert_scratch;

typedef struct spx_state {
    uint32_t max_ctx;         /* KV cache capacity in positions */
    uint32_t max_batch;       /* tokens per block call (spx_forward splits longer inputs) */
    uint32_t pos;             /* positions already in the cache (next token's position) */
    uint32_t q_dim, kv_dim;   /* n_heads*head_dim, n_kv_heads*head_dim */
    float *k_cache;           /* [n_layers x max_ctx x kv_dim] (rotary already applied) */
    float *v_cache;           /* [n_layers x max_ctx x kv_dim] */
    float *x;                 /* [max_batch x dim] residual stream used by spx_forward */
    float *xn;                /* [max_batch x dim] normalised input of attention / MLP */
    float *q;                 /* [max_batch x q_dim] */
    float *att;               /* [max_batch x q_dim] attention output (input of attn_output) */
    float *tmp;               /* [max_batch x dim] projection outputs before the residual add */
    float *gate;              /* [max_batch x ffn_dim] */
    float *up;                /* [max_batch x ffn_dim] */
    float *scores;            /* [SPX_ATT_QBLOCK x max_ctx] attention probabilities */
    float *rope_cos;          /* [max_ctx x rope_dim/2] */
    float *rope_sin;          /* [max_ctx x rope_dim/2] */
    spx_expert_scratch ex;    /* expert paths only */
    spx_route_hook route_hook;   /* spx_state_set_route_hook; NULL: none */
    void *route_ud;
    spx_gate_hook gate_hook;     /* spx_state_set_gate_hook; NULL: none */
    void *gate_ud;
    uint64_t seq;             /* sequences started (spx_state_reset count): keys the random gate mode */
    /* Work counters, cumulative since spx_state_new / spx_state_clear_counters; one unit per token
     * per layer. Gated layers: blocks = experts selected / E, neurons = blocks * B / ffn. Dense and
     * expanded layers count ffn of ffn neurons (an expanded block runs one full expert). */
    uint64_t ffn_blocks_run, ffn_blocks_total;
    uint64_t ffn_neurons_run, ffn_neurons_total;
    /* Activation thresholds of dense MLPs (spx_state_set_act_threshold; verify/spx_sparsity.h):
     * act_thr [n_layers x ffn_dim] borrowed, NULL = off; h_j is zeroed when |h_j| <= thr[layer][j].
     * act_zeroed / act_total count the hidden values zeroed / seen while it is set. */
    const float *act_thr;
    uint64_t act_zeroed, act_total;
    /* expanded MLPs of one token whose gate/up expert ran fused with the down routing (spx_moe.c;
     * cleared with the work counters) */
    uint64_t moe_fused;
} spx_state;

/* Queries processed together by the batched attention (bounds the scores buffer). */
#define SPX_ATT_QBLOCK 64u

/* Observation hooks for calibration; any member may be NULL; pointers are valid only during
 * the call. `layer` is the block index, n the number of tokens of this call. Routing and gate
 * selections are observed through spx_state_set_route_hook / spx_state_set_gate_hook. */
typedef struct spx_forward_hooks {
    void *ud;
    /* input of attn_q/attn_k/attn_v: post-attn_norm hidden state [n x dim] */
    void (*attn_input)(void *ud, uint32_t layer, const float *x, size_t n);
    /* input of attn_output: concatenated head outputs [n x n_heads*head_dim] */
    void (*attn_out_input)(void *ud, uint32_t layer, const float *a, size_t n);
    /* input of ffn_gate/ffn_up: post-ffn_norm hidden state [n x dim] */
    void (*mlp_input)(void *ud, uint32_t layer, const float *x, size_t n);
    /* input of ffn_down: act(gate)*up (or act(up)) [n x ffn_dim] */
    void (*mlp_hidden)(void *ud, uint32_t layer, const float *h, size_t n);
} spx_forward_hooks;

/* Allocate a state for `model`: max_ctx >= 1 cache positions, max_batch >= 1 tokens per call
 * (both < 2^31). Errors: SPX_E_ARG (zero or too large), SPX_E_OVERFLOW, SPX_E_NOMEM. */
int spx_state_new(spx_ctx *ctx, const spx_model *model, uint32_t max_ctx, uint32_t max_batch, spx_state **out);
/* Forget the cached sequence (pos = 0). The cache contents are not cleared (never read past pos).
 * Counters are kept; seq is incremented. */
void spx_state_reset(spx_state *s);
void spx_state_free(spx_state *s);

/* Observe the routing decisions of expanded blocks (kept out of spx_forward_hooks so that the
 * positional initializers of that struct elsewhere stay complete under -Wextra). fn may be NULL. */
void spx_state_set_route_hook(spx_state *s, spx_route_hook fn, void *ud);
/* Observe the expert selections of gated blocks. fn may be NULL. */
void spx_state_set_gate_hook(spx_state *s, spx_gate_hook fn, void *ud);

/* Fraction of FFN neurons executed: ffn_neurons_run / ffn_neurons_total (1.0 before any work and
 * for models without gated layers). */
double spx_state_ffn_fraction(const spx_state *s);
/* Zero the work counters. */
void spx_state_clear_counters(spx_state *s);

/* Per-layer activation thresholds of the dense MLP branch (Sparsing Law, verify/spx_sparsity.h):
 * thr [n_layers x ffn_dim] is borrowed (it must outlive its use) or NULL to switch off; zeroes the
 * act_zeroed / act_total counters. Defined in spx_sparsity_apply.c. */
void spx_state_set_act_threshold(spx_state *s, const float *thr);
/* Dense MLP hook: zero h[i * ffn + j] when |h| <= thr[layer * ffn + j] and count (no-op when off). */
void spx_sparsity_apply(spx_state *s, uint32_t layer, float *h, size_t n, uint32_t ffn);

/* Embedding lookup of a sequence starting at position 0: X[n x dim] = tok_embd[tokens[i]]
 * (+ pos_embd[i + pos_offset] for learned positions). SPX_E_ARG naming the index of an id >= vocab;
 * SPX_E_LIMIT when a position is beyond the learned position table. */
int spx_embed(spx_ctx *ctx, const spx_model *model, const uint32_t *tokens, size_t n, float *X);
/* Same for tokens at positions [pos0, pos0 + n) (the KV-cache path). */
int spx_embed_at(spx_ctx *ctx, const spx_model *model, const uint32_t *tokens, size_t n, uint32_t pos0, float *X);

/* One transformer block on n tokens at positions [state->pos, state->pos + n): X [n x dim] is the
 * residual stream, updated in place (X may be state->x or any caller buffer). Writes the layer's
 * K/V at those positions and attends to positions [0, state->pos + n). Does NOT advance
 * state->pos: spx_forward does it after the last block; drivers running block by block (e.g.
 * calibration: reset, then block `layer` on a whole sequence at pos 0) leave pos alone.
 * hooks may be NULL. Errors: SPX_E_ARG (layer out of range, n == 0 or n > max_batch),
 * SPX_E_LIMIT (pos + n > max_ctx), SPX_E_NOMEM (expert scratch; nothing changed then). */
int spx_block_forward(spx_ctx *ctx, const spx_model *model, spx_state *state, uint32_t layer, float *X, size_t n,
                      const spx_forward_hooks *hooks);

/* Classifier: logits[n x vocab] = norm(X; out_norm) Wout^T. X [n x dim] is overwritten with the
 * normalised values. */
void spx_head(const spx_model *model, float *X, size_t n, float *logits);

/* Append n tokens at the state's position and run the whole model: batches of up to max_batch
 * tokens go through sgemm, a single token through sgemv. logits [n x vocab] (every position) and
 * last_logits [vocab] (last position only) may each be NULL; with only last_logits the classifier
 * runs on the last position alone. On success state->pos advances by n. Errors: SPX_E_ARG
 * (token id >= vocab, n == 0), SPX_E_LIMIT (the cache would overflow: state unchanged). */
int spx_forward(spx_ctx *ctx, const spx_model *model, spx_state *state, const uint32_t *tokens, size_t n,
                float *logits, float *last_logits);

/* Same with observation hooks (calibration through the whole model). */
int spx_forward_hooked(spx_ctx *ctx, const spx_model *model, spx_state *state, const uint32_t *tokens, size_t n,
                       float *logits, float *last_logits, const spx_forward_hooks *hooks);

#endif
