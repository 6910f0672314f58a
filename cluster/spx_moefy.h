/* spx_moefy.h: splitting the intermediate neurons of an FFN into E equal-size experts
 * (MoEfication; thunlp/MoEfication ParamSplit and the co-activation split).
 *
 * Both splits end in a permutation perm [ffn] (new neuron i is old neuron perm[i]) such that
 * expert e owns the contiguous block [e*B, (e+1)*B), B = ffn/E. Applying it to the rows of
 * ffn_gate / ffn_up (and their biases) and to the columns of ffn_down leaves the dense MLP output
 * unchanged (the sum over neurons is only reordered). Inside a block neurons keep ascending
 * original order; blocks are numbered by their cluster label.
 *
 * Parameter split (default): balanced k-means (spx_balanced.h) on the L2-normalized rows of W_in
 * [ffn x dim] (W_gate for GLU models, W_up otherwise): neurons with similar input directions fire
 * together.
 *
 * Co-activation split: every calibration token t gives a binary activity vector
 *     b_t[j] = |a_tj| > theta * mean_i |a_ti|      (a = the FFN's intermediate activation [ffn])
 * with theta = 0 for ReLU models (b = "the neuron fired", a == 0 exactly otherwise) and theta = 1
 * for SiLU/GELU models (whose activations are never exactly zero: "above the token's average").
 * The co-activation counts C = sum_t b_t b_t^T (ffn x ffn, the per-token clamp(a a^T, 1) of
 * MoEfication taken to its binary limit) are accumulated over at most SPX_COACT_MAX_TOKENS tokens
 * (MoEfication's 200k cap). The counts are exact integers in fp32 (< 2^24). Instead of the METIS
 * graph partition of the reference, the graph is partitioned by balanced k-means on the rows of the
 * cosine-normalized co-activation matrix S_ij = C_ij / sqrt(C_ii C_jj) (S_ij = 0 when neuron i or
 * j never fired): two neurons land in the same expert when they co-fire with the same neurons,
 * which is a spectral-style relaxation of the min-cut objective with equal part sizes.
 *
 * Determinism: the balanced k-means seed comes from the options; equal inputs -> equal perm. */
#ifndef SPX_MOEFY_H
#define SPX_MOEFY_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

#define SPX_COACT_MAX_TOKENS 200000u

typedef enum spx_moefy_split_kind {
    SPX_SPLIT_PARAM = 0,
    SPX_SPLIT_COACT = 1
} spx_moefy_split_kind;

typedef struct spx_moefy_split_opts {
    uint32_t experts;      /* E; ffn % E == 0 */
    uint32_t n_init;       /* balanced k-means restarts (default 10) */
    uint32_t max_iter;     /* rounds per restart (default 300) */
    uint64_t seed;         /* default 0 */
} spx_moefy_split_opts;

#define SPX_MOEFY_SPLIT_OPTS_INIT {8u, 10u, 300u, 0u}

/* Split summary (optional output). */
typedef struct spx_moefy_split_info {
    double inertia;        /* balanced k-means objective on the clustered rows */
    uint32_t n_iter;       /* rounds of the winning restart */
    uint64_t tokens;       /* co-activation split: tokens accumulated (0 for the parameter split) */
    uint32_t dead;         /* co-activation split: neurons that never fired */
} spx_moefy_split_info;

const char *spx_moefy_split_name(int kind);   /* "param", "coact" or "?" */
int spx_moefy_split_parse(const char *s);     /* spx_moefy_split_kind or -1 */

/* Parameter split of W [ffn x dim] (rows = neurons). *perm [ffn] is malloc'd (caller frees).
 * info may be NULL. Errors: SPX_E_ARG (ffn % E != 0, E == 0, NULL), SPX_E_NUMERIC (NaN/Inf in W),
 * SPX_E_NOMEM, SPX_E_OVERFLOW. */
int spx_moefy_split_param(spx_ctx *ctx, const float *W, uint32_t ffn, uint32_t dim, const spx_moefy_split_opts *o,
                          uint32_t **perm, spx_moefy_split_info *info);

/* Co-activation accumulator. */
typedef struct spx_coact {
    uint32_t ffn;
    float theta;           /* activity threshold relative to the token's mean |a| (0: a != 0) */
    uint64_t tokens;       /* tokens accumulated so far (<= SPX_COACT_MAX_TOKENS) */
    float *C;              /* [ffn x ffn] co-activation counts, upper triangle valid (ssyrk) */
    float *B;              /* [SPX_COACT_CHUNK x ffn] binarized rows (scratch) */
} spx_coact;

#define SPX_COACT_CHUNK 256u

/* ffn x ffn fp32 must fit in memory: SPX_E_OVERFLOW / SPX_E_NOMEM otherwise. theta >= 0. */
int spx_coact_new(spx_ctx *ctx, uint32_t ffn, float theta, spx_coact **out);
void spx_coact_free(spx_coact *c);
/* Add the activations A [n x ffn] (row stride lda >= ffn). Rows beyond SPX_COACT_MAX_TOKENS in
 * total are ignored (c->tokens tells how many were used). SPX_E_NUMERIC on NaN/Inf. */
int spx_coact_add(spx_ctx *ctx, spx_coact *c, const float *A, size_t n, size_t lda);
/* Split from the accumulated counts (see above). SPX_E_ARG when no token was added. */
int spx_moefy_split_coact(spx_ctx *ctx, const spx_coact *c, const spx_moefy_split_opts *o, uint32_t **perm,
                          spx_moefy_split_info *info);

/* perm [n] from cluster labels [n] in 0..k-1, each label used exactly n/k times: labels in
 * ascending order, original index ascending inside a label. SPX_E_ARG when sizes are unequal. */
int spx_moefy_perm_from_labels(spx_ctx *ctx, const uint32_t *labels, size_t n, uint32_t k, uint32_t *perm);

/* 1 when perm [n] is a permutation of 0..n-1 (allocates n bytes; 0 also when that fails). */
int spx_moefy_is_perm(const uint32_t *perm, size_t n);

/* dst row i = src row perm[i]; src, dst [rows x cols], distinct buffers. */
void spx_moefy_permute_rows(const float *src, size_t rows, size_t cols, const uint32_t *perm, float *dst);
/* dst[r][i] = src[r][perm[i]]; src, dst [rows x cols], distinct buffers. */
void spx_moefy_permute_cols(const float *src, size_t rows, size_t cols, const uint32_t *perm, float *dst);

#endif
