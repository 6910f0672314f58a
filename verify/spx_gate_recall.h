/* spx_gate_recall.h: recall of gated-expert selections against the activation-mass oracle, measured
 * during a forward pass (spx ppl --gate-recall).
 *
 * Per token and gated layer, with S the experts the runtime selected (any --gate-mode) and
 * k = |S|: the oracle set O is the k experts of largest activation mass sum_j |h_j| over the
 * expert's block of the DENSE hidden state h = act(gate m) * up m (ties: the lower index, as
 * spx_gate_topk), and recall = |S ∩ O| / k. The dense h is recomputed from the MLP input
 * (state->xn at the time of the gate hook) with the layer's own gate/up weights in fp32, the
 * masses accumulated in double and rounded to fp32 as the oracle gate mode does, so
 * --gate-mode oracle has recall exactly 1 and random selections average k/E.
 */
#ifndef SPX_GATE_RECALL_H
#define SPX_GATE_RECALL_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_forward.h"
#include "spx_model.h"

/* Recall of one token's selection sel[E] (nonzero = selected) against the top-|sel| experts of
 * mass[E]. ord: scratch of 2 E, osel: scratch of E. Returns 0 when nothing is selected. */
double spx_gate_recall_token(const float *mass, const uint8_t *sel, uint32_t E, uint32_t *ord, uint8_t *osel);

typedef struct spx_gate_recall {
    const spx_model *model;
    spx_state *state;         /* the observed state (its xn is read in the hook) */
    uint32_t max_batch, max_experts;
    float *g, *u;             /* [max_batch x ffn] dense gate / hidden */
    float *mass;              /* [max_experts] */
    uint32_t *ord;            /* [2 max_experts] */
    uint8_t *osel;            /* [max_experts] */
    double *sum;              /* [n_layers] sum of per-token recall */
    uint64_t *count;          /* [n_layers] tokens observed */
} spx_gate_recall;

/* A recall observer for `state` of `model` (which must have gated layers): installs itself as the
 * state's gate hook. Errors: SPX_E_ARG (no gated layer), SPX_E_OVERFLOW, SPX_E_NOMEM. */
int spx_gate_recall_new(spx_ctx *ctx, const spx_model *model, spx_state *state, spx_gate_recall **out);
/* Removes the gate hook from its state and frees. Accepts NULL. */
void spx_gate_recall_free(spx_gate_recall *r);

/* The gate hook (installed by spx_gate_recall_new; ud = the spx_gate_recall). */
void spx_gate_recall_hook(void *ud, uint32_t layer, const uint8_t *sel, size_t n, uint32_t E);

/* Mean recall of one layer (layer < n_layers; NaN when it saw no token) or, with layer = -1, of
 * every token and gated layer together. */
double spx_gate_recall_mean(const spx_gate_recall *r, int64_t layer);

#endif
