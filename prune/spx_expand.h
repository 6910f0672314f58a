/* spx_expand.h: Sparse Expansion (arXiv 2405.15756): for every MLP, one SparseGPT-pruned copy of
 * each linear layer per cluster of its inputs, routed per token by nearest centroid.
 *
 * Per block l, sequentially (the next block sees the routed, pruned output of this one):
 *   1. run the block over every calibration window, capture the MLP input m (post ffn_norm) of
 *      every token;
 *   2. PCA of m to pca_dim (default max(8, dim/32), capped at dim; or none), k-means (k-means++,
 *      n_init restarts, seeded) in that space -> router_up; every token is assigned with the
 *      runtime's own rule (spx_router_assign), so runtime routing equals these labels;
 *   3. per cluster c, a Hessian from that cluster's tokens only (added per window, like the
 *      anchor's per-sequence accumulation) and SparseGPT on a copy of ffn_gate and ffn_up ->
 *      experts gate_c, up_c (damping retries as needed; an empty cluster falls back to all tokens);
 *   4. install the gate/up experts, run the block again and capture the intermediate activation h
 *      (input of ffn_down) as produced by the routed pruned experts;
 *   5. cluster h the same way -> router_down, per-cluster Hessians, SparseGPT copies of ffn_down;
 *   6. install everything and run the block once more: its output feeds block l+1.
 * Attention stays dense. With K = 1 the result equals `spx prune --method sparsegpt --targets
 * ffn_gate,ffn_up,ffn_down` bit for bit (same Hessians, same order of operations). */
#ifndef SPX_EXPAND_H
#define SPX_EXPAND_H

#include <stddef.h>
#include <stdint.h>

#include "spx_model.h"
#include "spx_progress.h"
#include "spx_prune_types.h"

typedef struct spx_expand_opts {
    uint32_t clusters;          /* K, 1..64 (default 16) */
    int pca;                    /* 1: route in PCA space (default), 0: in the input space */
    uint32_t pca_dim_up;        /* 0: default max(8, dim/32) capped at dim */
    uint32_t pca_dim_down;      /* 0: default max(8, ffn/32) capped at ffn */
    uint32_t kmeans_init;       /* k-means restarts (default 10; the anchor uses 100) */
    size_t max_fit_points;      /* fit k-means on at most this many tokens (0: all) */
    uint64_t seed;              /* k-means seed (default 0) */
    spx_prune_opts p;           /* sparsity or N:M of every expert; SparseGPT parameters */
    uint32_t truth_mod;         /* > 0: score the gate/up clusters against the planted truth
                                   token_id % truth_mod (spx synth models): ARI and purity */
    spx_progress progress;
} spx_expand_opts;

typedef struct spx_expand_layer_info {
    uint32_t layer;
    uint32_t k;                 /* experts per linear */
    uint32_t pca_up, pca_down;  /* routing dimensions (0: no PCA) */
    uint32_t *sizes_up;         /* [k] calibration tokens per gate/up expert */
    uint32_t *sizes_down;       /* [k] calibration tokens per down expert */
    double recon_gate, recon_up, recon_down;  /* token-weighted mean of the experts' relative
                                                 reconstruction errors on their own clusters */
    int retries;                /* SparseGPT damping retries over all experts of the block */
    uint32_t fallbacks;         /* empty clusters pruned with the all-token Hessian */
    uint64_t reseeds;           /* k-means empty-cluster re-seeds */
    double inertia_up, inertia_down;
    uint32_t *labels_up;        /* [nsamples*seqlen] expert of every calibration token (gate/up) */
    uint32_t *labels_down;      /* [nsamples*seqlen] (down) */
    double ari_up, purity_up;   /* against the planted truth (truth_mod), NaN otherwise */
} spx_expand_layer_info;

/* Expand every block of m (opened with SPX_MODEL_COPY_WEIGHTS) in place. windows [nsamples x
 * seqlen]. *infos has n_layers entries (caller frees with spx_expand_infos_free). */
int spx_expand_model(spx_ctx *ctx, spx_model *m, const uint32_t *windows, uint32_t nsamples, uint32_t seqlen,
                     const spx_expand_opts *o, spx_expand_layer_info **infos);
void spx_expand_infos_free(spx_expand_layer_info *infos, uint32_t n);

/* Re-open the written file, run the calibration windows through it and count the tokens whose
 * runtime routing (both routers of every block) equals the labels the expansion assigned:
 * *agree of *total decisions. */
int spx_expand_check_routing(spx_ctx *ctx, const char *path, const uint32_t *windows, uint32_t nsamples,
                             uint32_t seqlen, const spx_expand_layer_info *infos, uint64_t *agree, uint64_t *total);

/* Write the expanded model: the input file's tensors with every expanded block's dense MLP
 * replaced by its routers and experts (spx-format.md, "Expanded MLPs"), encodings chosen as in
 * spx_prune_write (enc: SPX_ENC_AUTO or a spx_encoding), plus spx.expand.* metadata. */
int spx_expand_write(spx_ctx *ctx, const spx_model *m, const char *out_path, const spx_expand_opts *o,
                     const spx_expand_layer_info *infos, int enc);

#endif
