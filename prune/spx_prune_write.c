/* spx_prune_write.c: write a pruned model (see spx_prune_write.h). */
#include "spx_prune_write.h"

#include <stdio.h>
#include <string.h>

#include "spx_spxcopy.h"

static int skip_prune_keys(void *ud, const char *key)
{
    (void)ud;
    /* spx.verify.* probes are kept: verify recognises them as stale through their weights digest
     * and says so (tests/scripts/verify_cli.sh relies on it) */
    return strncmp(key, "spx.prune.", 10) == 0;
}

int spx_prune_write(spx_ctx *ctx, const spx_model *m, const char *out_path, const spx_prune_layer_info *infos,
                    size_t n_infos, const spx_prune_write_opts *o, int *enc_out)
{
    int rc = 0;
    spx_writer *w = NULL;
    const spx_file *in = m->file;
    char wname[64];
    snprintf(wname, sizeof wname, "spx %s", SPX_VERSION_STRING);
    SPX_TRY(rc, spx_writer_open(ctx, out_path, wname, &w));
    SPX_TRY(rc, spx_meta_copy(ctx, w, in, skip_prune_keys, NULL));
    if (o->add_meta) {
        rc = o->add_meta(o->ud, w);
        if (rc < 0) {
            *ctx = *spx_writer_ctx(w);
            goto done;
        }
    }
    for (uint32_t i = 0; i < spx_file_tensor_count(in); i++) {
        const spx_tensor *t = spx_file_tensor(in, i);
        size_t k = 0;
        while (k < n_infos && strcmp(infos[k].name, t->name) != 0)
            k++;
        if (k == n_infos) {
            SPX_TRY(rc, spx_tensor_copy(ctx, w, in, t));
            continue;
        }
        const spx_linear *lin = spx_lin_get(&m->layers[infos[k].layer], infos[k].lin);
        int chosen = 0;
        SPX_TRY(rc, spx_tensor_add_matrix(ctx, w, t, -1, lin->w, lin->rows, lin->cols, o->encoding, o->nm_n,
                                          o->nm_m, &chosen));
        if (enc_out)
            enc_out[k] = chosen;
    }
    rc = spx_writer_finish(w);
    if (rc < 0)
        *ctx = *spx_writer_ctx(w);
done:
    spx_writer_free(w);
    return rc;
}
