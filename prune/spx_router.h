/* spx_router.h: gating predictors for neuron experts (MoEfication, DSTI/D2DMoE, LTE): parameters,
 * forward pass, loss + gradient, expert selection and its evaluation.
 *
 * A router maps the FFN input m [dim] (the post-ffn_norm hidden state; unit-normalized first when
 * input_norm) to one score per expert [E]:
 *   moe : z = W2 tanh(W1 x + b1) + b2          W1 [E x dim], W2 [E x E]; score = z (a logit)
 *   dsti: z = W2 relu(W1 x + b1) + b2          W1 [h x dim] (h = 128), W2 [E x h]; score = |z|
 *                                              (predicted L2 norm of the expert's output)
 *   lte : z = W1 x + b1                         W1 [E x dim]; score = sigmoid(z)
 * File tensors (spx.gate.* convention): blk.{l}.ffn_router.w1/.b1 (+ .w2/.b2 for moe and dsti).
 *
 * Losses, averaged over the n x E entries of a batch (targets Y [n x E]):
 *   moe : BCE-with-logits(z, y), y in [0, 1] (MoEfication: per-expert activation mass / max)
 *   dsti: (|z| - y)^2, y = expert output norm (MSE regression, D2DMoE)
 *   lte : BCE-with-logits(z, y) + l1 * s^2 + l2 * (1/4 - (s - tau)^2), s = sigmoid(z), y in {0, 1}.
 *         l1 * mean(G^2) is LTE's efficiency loss; the separability term is largest at s = tau and
 *         falls quadratically away from it, so minimising it pushes every gate away from the
 *         threshold tau (for tau = 0.5 it equals s(1 - s)). The task loss of LTE's stage 1 is
 *         replaced by the BCE to an oracle "expert is needed" target because the model stays
 *         frozen (router-only training).
 * Arithmetic: fp32 with OpenBLAS sgemm; loss sums in double. */
#ifndef SPX_ROUTER_H
#define SPX_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

typedef enum spx_router_kind {
    SPX_ROUTER_MOE = 0,
    SPX_ROUTER_DSTI = 1,
    SPX_ROUTER_LTE = 2
} spx_router_kind;

#define SPX_ROUTER_DSTI_HIDDEN 128u

typedef struct spx_router {
    int kind;                 /* spx_router_kind */
    uint32_t dim;             /* input width */
    uint32_t hidden;          /* h: E (moe), 128 by default (dsti), 0 (lte: one layer) */
    uint32_t experts;         /* E */
    int input_norm;           /* 1: unit-normalize each input row first */
    size_t n_params;          /* total parameter count */
    float *params;            /* [n_params] owned, contiguous: w1 | b1 | w2 | b2 */
    float *w1, *b1;           /* [h1 x dim], [h1] with h1 = hidden (moe, dsti) or E (lte) */
    float *w2, *b2;           /* [E x hidden], [E]; NULL for lte */
} spx_router;

typedef struct spx_router_loss_opts {
    double l1;                /* lte: efficiency weight (mean G^2) */
    double l2;                /* lte: separability weight */
    double tau;               /* lte: the gate threshold the separability term pushes away from */
} spx_router_loss_opts;

#define SPX_ROUTER_LOSS_OPTS_INIT {0.01, 0.01, 0.5}

const char *spx_router_kind_name(int kind);  /* "moe", "dsti", "lte" or "?" */
int spx_router_kind_parse(const char *s);    /* spx_router_kind or -1 */

/* Zero-initialised router. hidden is used by dsti only (0 -> 128); moe has hidden = E, lte 0.
 * Errors: SPX_E_ARG (unknown kind, dim/E/hidden zero or >= 2^24), SPX_E_NOMEM. */
int spx_router_new(spx_ctx *ctx, int kind, uint32_t dim, uint32_t experts, uint32_t hidden, int input_norm,
                   spx_router **out);
void spx_router_free(spx_router *r);

/* MoEfication initialisation: row e of W1 = mean of the L2-normalized rows W[perm[i]] of the
 * neurons of expert e (i in [e*B, (e+1)*B), B = ffn/E; perm NULL = identity), W2 = identity, biases
 * 0. W [ffn x dim] (W_gate, or W_up for non-GLU models). For moe and lte (W1 only). SPX_E_ARG otherwise. */
int spx_router_init_centers(spx_ctx *ctx, spx_router *r, const float *W, const uint32_t *perm, uint32_t ffn);

/* Random initialisation from `seed` (spx_rng normals): W1 ~ N(0, 2/dim) for dsti (He, ReLU hidden)
 * and N(0, 1/dim) otherwise, W2 ~ N(0, 1/h), biases 0. */
void spx_router_init_random(spx_router *r, uint64_t seed);

/* Unit-normalize rows in place when r->input_norm (zero rows stay zero); else no-op. */
void spx_router_prepare(const spx_router *r, float *X, size_t n);

/* Scores [n x E] (see above) for raw inputs X [n x dim] (normalized internally when input_norm).
 * Errors: SPX_E_NOMEM. */
int spx_router_forward(spx_ctx *ctx, const spx_router *r, const float *X, size_t n, float *scores);

/* Mean loss over a batch of PREPARED inputs X [n x dim] (already normalized when input_norm) with
 * targets Y [n x E]; when grad != NULL (a router of the same shape) it receives d loss / d params.
 * lo may be NULL (defaults). Errors: SPX_E_ARG (n == 0, shape mismatch), SPX_E_NOMEM. */
int spx_router_loss_grad(spx_ctx *ctx, const spx_router *r, const spx_router_loss_opts *lo, const float *X,
                         const float *Y, size_t n, double *loss, spx_router *grad);

/* ---- selection at inference (spx_router_gate.c) ---------------------------------------------- */

/* The runtime's rule for the scores of one token:
 *   moe : the top_k largest scores (top_k clamped to 1..E);
 *   dsti: scores (predicted norms) sorted descending, the smallest prefix whose cumulative sum
 *         >= tau * total (at least one);
 *   lte : every score >= threshold, at least the best one.
 * Ties in the ordering go to the lower expert index. */
typedef struct spx_router_rule {
    int kind;                 /* spx_router_kind */
    uint32_t top_k;           /* moe */
    double tau;               /* dsti */
    double threshold;         /* lte */
} spx_router_rule;

/* Score/index pair for the sort (scratch of E entries). */
typedef struct spx_router_item {
    float s;
    uint32_t i;
} spx_router_item;

/* Sort items [E] by score descending, index ascending on ties. */
void spx_router_sort(spx_router_item *it, uint32_t E);

/* Selection for one token: mask [E] gets 1 for selected experts; returns the count (>= 1).
 * scratch [E]. */
uint32_t spx_router_select(const spx_router_rule *g, const float *scores, uint32_t E, spx_router_item *scratch,
                         uint8_t *mask);

/* Quality of the router's selection on n tokens against the oracle (true activation mass per
 * expert, mass [n x E], >= 0). Per token with k = |selected|: recall = |selected & top-k by mass| / k
 * (ties by lower index); random_recall = k/E (expected recall of k random experts); averages over
 * tokens. mass_cov = mean of sum_selected mass / sum mass (1 for tokens with zero mass). */
typedef struct spx_router_eval {
    double recall;
    double random_recall;
    double sel_frac;          /* mean k / E */
    double mass_cov;
    uint64_t tokens;
} spx_router_eval;

int spx_router_evaluate(spx_ctx *ctx, const spx_router *r, const spx_router_rule *g, const float *X, const float *mass,
                      size_t n, spx_router_eval *ev);

#endif
