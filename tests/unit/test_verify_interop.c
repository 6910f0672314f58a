/* test_verify_interop.c: the C runtime's side of the interop check (tests/scripts/interop_reader.sh).
 *
 * With SPX_INTEROP_FILE (a .spx), SPX_INTEROP_IN (raw little-endian float32 [n x dim]: post-ffn_norm
 * hidden states), SPX_INTEROP_OUT and SPX_INTEROP_LAYER set, it loads the model with
 * spx_model_open (full data verification) and writes the MLP output of block LAYER for those rows
 * (raw float32 [n x dim]) through the same code path spx_block_forward uses: dense
 * gate/up/act/down, spx_moe_mlp for expanded blocks, spx_gate_mlp for gated blocks. The script
 * compares it with the independent NumPy reader tests/interop/spx_read.py.
 * Without the variables the test skips: it has no input of its own. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_forward.h"
#include "spx_linear.h"
#include "spx_model.h"
#include "spx_moe.h"
#include "spx_ops.h"
#include "spx_test.h"

#define MAX_ROWS 256u

int spx_test_main(void)
{
    const char *path = spx_test_env("SPX_INTEROP_FILE"), *in = spx_test_env("SPX_INTEROP_IN");
    const char *out = spx_test_env("SPX_INTEROP_OUT"), *ls = spx_test_env("SPX_INTEROP_LAYER");
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model *m = NULL;
    spx_state *s = NULL;
    FILE *fp = NULL;
    long bytes;
    size_t n, dim;
    uint32_t layer;
    if (!path || !*path || !in || !*in || !out || !*out || !ls || !*ls)
        spx_test_skip("driven by tests/scripts/interop_reader.sh (SPX_INTEROP_* unset)");
    layer = (uint32_t)strtoul(ls, NULL, 10);
    CHECK_RC(spx_model_open(&ctx, path, SPX_MODEL_VERIFY_DATA, &m), 0);
    if (!m) {
        fprintf(stderr, "%s\n", ctx.msg);
        return 1;
    }
    dim = m->cfg.dim;
    CHECK(layer < m->cfg.n_layers);
    fp = fopen(in, "rb");
    CHECK(fp != NULL);
    if (!fp || layer >= m->cfg.n_layers)
        goto done;
    fseek(fp, 0, SEEK_END);
    bytes = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    n = (size_t)bytes / (sizeof(float) * dim);
    CHECK(n >= 1 && n <= MAX_ROWS && (size_t)bytes == n * dim * sizeof(float));
    if (n < 1 || n > MAX_ROWS)
        goto done;
    CHECK_RC(spx_state_new(&ctx, m, 1, (uint32_t)n, &s), 0);
    if (!s)
        goto done;
    CHECK(fread(s->xn, sizeof(float), n * dim, fp) == n * dim);
    fclose(fp);
    fp = NULL;
    {
        const spx_layer *L = &m->layers[layer];
        if (L->moe || L->gating)
            CHECK_RC(spx_expert_reserve(&ctx, m, s, layer, n), 0);
        if (L->moe) {
            spx_moe_mlp(m, s, layer, n, NULL);
        } else if (L->gating) {
            spx_gate_mlp(m, s, layer, n, NULL);
        } else {
            if (m->cfg.gated)
                spx_linear_forward(&L->gate, s->xn, n, s->gate);
            spx_linear_forward(&L->up, s->xn, n, s->up);
            spx_ops_act(m->cfg.act, m->cfg.gated, s->gate, s->up, n * m->cfg.ffn_dim);
            spx_linear_forward(&L->down, s->up, n, s->tmp);
        }
    }
    fp = fopen(out, "wb");
    CHECK(fp != NULL);
    if (fp)
        CHECK(fwrite(s->tmp, sizeof(float), n * dim, fp) == n * dim);
done:
    if (fp)
        fclose(fp);
    if (ctx.code)
        fprintf(stderr, "%s\n", ctx.msg);
    spx_state_free(s);
    spx_model_free(m);
    return 0;
}
