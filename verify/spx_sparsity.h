/* spx_sparsity.h: PPL-p% activation sparsity (Sparsing Law, thunlp/SparsingLaw).
 *
 * For an FFN with down projection W_down [dim x ffn] and hidden activations a [n x ffn] (the input
 * of down: act(gate x) * up x, or act(up x)), neuron j of token i has output norm
 *   n_ij = |a_ij| * ||W_down[:, j]||.
 * CETT (cumulative errors of tail truncation) of a threshold T on a layer is
 *   CETT(T) = mean_i ||sum_{j: n_ij <= T} a_ij W_down[:, j]|| / ||sum_j a_ij W_down[:, j]||
 * (a token whose full output is exactly 0 contributes 0). For a global CETT target c each layer
 * takes the largest of 65,536 candidates T_k = n_min + (n_p99 - n_min) * k / 65535 (n_min and the
 * 99th percentile, NumPy's linear interpolation, of the layer's n over the fitting tokens) with
 * CETT(T_k) <= c, found by binary search over k (CETT is treated as monotone, as the paper does);
 * when even T_0 exceeds c the layer gets T = -1 (nothing zeroed). At inference activations with
 * n_ij <= T, i.e. |a_ij| <= T / ||W_down[:, j]||, are zeroed (spx_state_set_act_threshold).
 * The largest c in [0, 1] whose perplexity ratio sparse/dense stays < 1 + p/100 is found by
 * bisection. Activation sparsity = fraction of hidden values that are 0 after thresholding.
 *
 * Numerics: n, norms, CETT sums and the percentile in double from the fp32 activations and
 * weights; the run-time comparison uses the fp32 per-neuron threshold (float)(T / ||d_j||).
 * Memory: the fitting activations of every layer are held: n_layers x n x ffn floats, plus a
 * transposed fp32 copy of one layer's W_down and a 65,536-entry memo of CETT values per layer.
 */
#ifndef SPX_SPARSITY_H
#define SPX_SPARSITY_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_forward.h"
#include "spx_model.h"
#include "spx_progress.h"

#define SPX_CETT_CANDIDATES 65536u

/* CETT data of one layer (fitting tokens). */
typedef struct spx_cett_layer {
    uint32_t dim, ffn;
    size_t n;                 /* fitting tokens */
    const float *a;           /* [n x ffn] activations, borrowed */
    float *down_t;            /* [ffn x dim] W_down transposed (column j contiguous) */
    double *col_norm;         /* [ffn] ||W_down[:, j]|| */
    double *y_norm;           /* [n] ||sum_j a_ij W_down[:, j]|| */
    double n_min, n_p99;      /* candidate range */
    double *memo;             /* [SPX_CETT_CANDIDATES] CETT(T_k), NaN = not computed yet */
    double *work;             /* [dim] */
} spx_cett_layer;

/* Prepare layer data from activations a [n x ffn] (borrowed; n >= 1) and W_down [dim x ffn]
 * row-major (copied). Errors: SPX_E_ARG (n, dim or ffn zero), SPX_E_OVERFLOW, SPX_E_NOMEM,
 * SPX_E_NUMERIC (a non-finite activation or weight). On failure *L is empty. */
int spx_cett_layer_init(spx_ctx *ctx, const float *a, size_t n, const float *down, uint32_t dim, uint32_t ffn,
                        spx_cett_layer *L);
void spx_cett_layer_release(spx_cett_layer *L);

/* Candidate T_k, k < SPX_CETT_CANDIDATES. */
double spx_cett_candidate(const spx_cett_layer *L, uint32_t k);
/* CETT(T) on the layer's tokens (not memoized). */
double spx_cett_eval(spx_cett_layer *L, double T);
/* Binary search: the largest k with CETT(T_k) <= c (memoized); returns T_k, or -1 when none.
 * *k_out (may be NULL) = k or -1; *cett_out (may be NULL) = CETT at the result (0 when none). */
double spx_cett_threshold(spx_cett_layer *L, double c, int64_t *k_out, double *cett_out);

typedef struct spx_sparsity_opts {
    double tolerance;         /* p / 100 > 0: accept ppl_sparse / ppl_dense < 1 + tolerance */
    uint32_t iters;           /* bisection steps on c in [0, 1] (>= 1) */
    uint32_t ctx;             /* evaluation window length (spx_ppl_eval), >= 2 */
    uint64_t max_windows;     /* evaluation windows, 0 = all */
} spx_sparsity_opts;

typedef struct spx_sparsity_step {
    double c, ppl, ratio, sparsity;
    int accepted;             /* ratio < 1 + tolerance */
} spx_sparsity_step;

typedef struct spx_sparsity_result {
    uint32_t n_layers, ffn;
    uint64_t fit_tokens;      /* tokens whose activations fitted the thresholds */
    uint64_t eval_tokens;     /* predicted tokens of the perplexity evaluation */
    double tolerance;
    double ppl_dense, ppl_sparse, ratio;
    double cett;              /* the accepted c */
    double sparsity;          /* fraction of zero hidden values over all layers (eval tokens) */
    double dense_sparsity;    /* the same for the dense model (exact zeros, e.g. ReLU) */
    double *threshold;        /* [n_layers] T (-1: none) */
    double *layer_cett;       /* [n_layers] CETT(T) on the fitting tokens */
    double *layer_sparsity;   /* [n_layers] fraction of zero hidden values (eval tokens) */
    float *act_thr;           /* [n_layers x ffn] per-neuron run-time thresholds T / ||d_j|| */
    spx_sparsity_step *steps; /* [n_steps]: c = 0 first, then the bisection */
    uint32_t n_steps;
} spx_sparsity_result;

/* Activations of every dense MLP: runs `model` on nwin windows [nwin x len] (each from an empty
 * cache) and returns acts[l] = [nwin*len x ffn] (the input of ffn_down) in *acts (an array of
 * n_layers malloc'd buffers; free with spx_sparsity_acts_free). Errors: SPX_E_ARG (a layer is
 * expanded or gated, len == 0), SPX_E_OVERFLOW, SPX_E_NOMEM, forward errors. */
int spx_sparsity_capture(spx_ctx *ctx, const spx_model *model, const uint32_t *windows, size_t nwin, uint32_t len,
                         float ***acts);
void spx_sparsity_acts_free(float **acts, uint32_t n_layers);

/* Per-neuron thresholds of every layer for CETT target c: thr[l*ffn + j] = T_l / ||d_j|| (+inf
 * when the column is 0, -1 when T_l = -1); T and cett (may be NULL) get [n_layers]. */
void spx_sparsity_thresholds(spx_cett_layer *layers, uint32_t n_layers, double c, float *thr, double *T, double *cett);

/* The whole PPL-p% search: capture on fit windows [nfit x fit_len], perplexity on eval tokens
 * (n_eval ids, windows of opts->ctx). progress (may be NULL): stage "sparsity", once per step.
 * Errors: SPX_E_ARG (bad options, model not dense), SPX_E_DATA (fewer eval tokens than one
 * window), SPX_E_NUMERIC, SPX_E_NOMEM and forward errors. */
int spx_sparsity_search(spx_ctx *ctx, const spx_model *model, const uint32_t *fit, size_t nfit, uint32_t fit_len,
                        const uint32_t *eval, size_t n_eval, const spx_sparsity_opts *opts,
                        const spx_progress *progress, spx_sparsity_result **out);
void spx_sparsity_result_free(spx_sparsity_result *r);

#endif
