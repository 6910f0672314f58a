/* spx_router_train.h: training a router (spx_router.h) on calibration activations, CPU only.
 *
 * Data: inputs X [n x dim] (raw FFN inputs m; normalized per batch when r->input_norm) and
 * targets Y [n x E]. The LAST floor(n * holdout) rows are held out (calibration windows are
 * consecutive, so this holds out whole windows); the others are shuffled every epoch (Fisher-Yates
 * with spx_rng seeded from `seed`) and cut into mini-batches of `batch` rows (the last one shorter).
 * Optimiser: Adam (bias-corrected, beta1 0.9, beta2 0.999, eps 1e-8), one step per mini-batch.
 * After every epoch the mean held-out loss is measured; the parameters with the lowest held-out
 * loss (the initial ones count as epoch 0) are kept, and training stops after `patience` epochs
 * without a relative improvement of 1e-6 or after `epochs`. Without held-out rows the train loss
 * plays that role.
 *
 * Target conditioning before training (documented because it changes the stored weights):
 *   dsti: Y is divided by its root mean square s over the training rows; the network learns Y/s and
 *         W2, b2 are multiplied by s afterwards, so the router outputs norms in the true units
 *         (|s z| = s |z|). b2 starts at the per-expert mean of Y/s (when bias_init).
 *   lte : b1 starts at logit(mean target of the expert), clamped to [0.01, 0.99] (when bias_init).
 *   moe : MoEfication's initialisation is kept (biases 0).
 * Losses reported for dsti are in the scaled units (mean ((|z| - y/s)^2)).
 *
 * Deterministic: same data, router initialisation and options -> byte-identical parameters
 * (given the same OpenBLAS kernel and thread count). The library never prints: per-epoch losses
 * go to the `log` callback. */
#ifndef SPX_ROUTER_TRAIN_H
#define SPX_ROUTER_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "spx_router.h"

typedef struct spx_router_epoch {
    uint32_t epoch;           /* 1-based; 0 = before training */
    double train_loss;        /* mean over the epoch's mini-batches (weighted by rows); NaN for epoch 0 */
    double heldout_loss;      /* mean over the held-out rows after the epoch; NaN without held-out rows */
    double seconds;           /* wall time of the epoch */
    int improved;             /* 1 when this epoch's parameters became the kept ones */
} spx_router_epoch;

typedef void (*spx_router_log_fn)(void *ud, const spx_router_epoch *e);

typedef struct spx_router_train_opts {
    uint32_t epochs;          /* maximum epochs (default 30) */
    uint32_t batch;           /* rows per mini-batch (default 512) */
    uint32_t patience;        /* early stopping patience in epochs (default 5; 0 = never stop early) */
    double lr;                /* Adam learning rate (moe 0.01, dsti/lte 1e-3: spx_router_train_opts_init) */
    double beta1, beta2, eps; /* Adam (0.9, 0.999, 1e-8) */
    double holdout;           /* held-out fraction of rows, 0 <= holdout < 1 (default 0.1) */
    int bias_init;            /* 1 (default): output biases from the targets (see above) */
    spx_router_loss_opts loss;/* lte terms */
    uint64_t seed;            /* shuffling seed (default 0) */
    spx_router_log_fn log;    /* per-epoch report, may be NULL */
    void *log_ud;
} spx_router_train_opts;

/* Defaults for a router kind (MoEfication: lr 0.01, batch 512, 30 epochs; D2DMoE and LTE lr 1e-3). */
void spx_router_train_opts_init(spx_router_train_opts *o, int kind);

typedef struct spx_router_train_report {
    uint32_t epochs;          /* epochs run */
    uint32_t best_epoch;      /* epoch of the kept parameters (0 = initial) */
    double init_heldout_loss; /* before training */
    double train_loss;        /* train loss of the best epoch (NaN when best_epoch == 0) */
    double heldout_loss;      /* held-out loss of the kept parameters */
    double target_scale;      /* dsti: s (1 for the other kinds) */
    double seconds;           /* total wall time */
    size_t n_train, n_heldout;
} spx_router_train_report;

/* Train r in place (it must be initialised: spx_router_init_centers / spx_router_init_random).
 * rep may be NULL. Errors: SPX_E_ARG (n < 2, bad options, targets out of range for the kind: moe
 * and lte need y in [0, 1], dsti y >= 0), SPX_E_NUMERIC (NaN/Inf in X or Y, or a diverging loss),
 * SPX_E_NOMEM. */
int spx_router_train(spx_ctx *ctx, spx_router *r, const float *X, const float *Y, size_t n,
                     const spx_router_train_opts *o, spx_router_train_report *rep);

#endif
