/* spx_prune_write.h: write a pruned model: the input file's metadata and tensors, with every pruned
 * linear layer stored in the chosen (default: smallest) sparse encoding. */
#ifndef SPX_PRUNE_WRITE_H
#define SPX_PRUNE_WRITE_H

#include "spx_prune_run.h"

typedef struct spx_prune_write_opts {
    int encoding;               /* SPX_ENC_AUTO or a spx_encoding */
    int nm_n, nm_m;             /* N:M pattern of the pruned layers (0 when unstructured) */
    /* Extra metadata (e.g. spx.prune.*): called once with the open writer; may be NULL. */
    int (*add_meta)(void *ud, spx_writer *w);
    void *ud;
} spx_prune_write_opts;

/* Encodings chosen per pruned layer are stored in enc_out[i] (parallel to infos; may be NULL). */
int spx_prune_write(spx_ctx *ctx, const spx_model *m, const char *out_path, const spx_prune_layer_info *infos,
                    size_t n_infos, const spx_prune_write_opts *o, int *enc_out);

#endif
