/* spx_prune_run.h: one-shot pruning of a whole model, block by block (the anchors' driver).
 *
 * The calibration windows' residual streams X [nsamples x seqlen x dim] enter block 0. For each
 * block, in true-sequential order (SparseGPT default) the linear groups
 *     [attn_q, attn_k, attn_v] -> [attn_output] -> [ffn_gate, ffn_up] -> [ffn_down]
 * are pruned one group at a time: one pass of the block over every window (with the groups pruned
 * so far) accumulates the Hessian of the group's input, then each of its layers is pruned. With
 * true_sequential = 0 (Wanda's driver) one pass collects all four inputs and everything is pruned
 * together. Finally the block is run once more with its pruned weights and its output becomes the
 * next block's input. Magnitude pruning needs no data; given data, its reconstruction error is
 * still reported. Memory: the activations plus one block's Hessians (at most 4 x cols^2 fp32). */
#ifndef SPX_PRUNE_RUN_H
#define SPX_PRUNE_RUN_H

#include <stddef.h>
#include <stdint.h>

#include "spx_model.h"
#include "spx_progress.h"
#include "spx_prune_types.h"

typedef enum spx_prune_method {
    SPX_PRUNE_SPARSEGPT = 0,
    SPX_PRUNE_WANDA = 1,
    SPX_PRUNE_MAGNITUDE = 2
} spx_prune_method;

/* The seven linear layers of a block, as bits for target selection. */
enum {
    SPX_LIN_Q = 0, SPX_LIN_K, SPX_LIN_V, SPX_LIN_O, SPX_LIN_GATE, SPX_LIN_UP, SPX_LIN_DOWN, SPX_LIN_COUNT
};
#define SPX_LIN_ALL 0x7fu

/* Canonical base name ("attn_q", ..., "ffn_down") of a linear index. */
const char *spx_lin_base(int lin);
/* The spx_linear of a block for a linear index (NULL for gate in non-gated models). */
spx_linear *spx_lin_get(spx_layer *L, int lin);

typedef struct spx_prune_run_opts {
    int method;                 /* spx_prune_method */
    spx_prune_opts p;           /* sparsity or N:M, SparseGPT parameters */
    int true_sequential;        /* 1: group by group (default for SparseGPT) */
    /* Return nonzero to leave tensor `name` (e.g. "blk.3.ffn_up.weight") dense; NULL: prune all. */
    int (*skip)(void *ud, const char *name);
    void *skip_ud;
    spx_progress progress;
} spx_prune_run_opts;

typedef struct spx_prune_layer_info {
    char name[64];              /* canonical tensor name */
    uint32_t layer;
    int lin;                    /* SPX_LIN_* */
    uint64_t rows, cols;
    spx_prune_report rep;
    double recon_err;           /* ||WX - W'X||^2/||WX||^2 on the calibration inputs; NaN without data */
    uint64_t tokens;            /* calibration tokens behind the Hessian */
} spx_prune_layer_info;

/* Prune `m` in place. m must have been opened with SPX_MODEL_COPY_WEIGHTS. windows [nsamples x
 * seqlen] may be NULL (nsamples 0) for magnitude pruning only. *infos receives one entry per pruned
 * layer (caller frees). */
int spx_prune_model(spx_ctx *ctx, spx_model *m, const uint32_t *windows, uint32_t nsamples, uint32_t seqlen,
                    const spx_prune_run_opts *o, spx_prune_layer_info **infos, size_t *n_infos);

#endif
