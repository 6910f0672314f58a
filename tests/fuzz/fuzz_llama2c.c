/* fuzz_llama2c.c: the llama2.c checkpoint reader (spx_llama2c_open_mem) on arbitrary bytes.
 *
 * Oracles for a checkpoint that opens: the implied config validates; every tensor found lies
 * inside the buffer (its first and last bytes are read, so ASan checks them) with numel equal to
 * the product of its dims; the rotary permutation applies to wq/wk. */
#include <string.h>

#include "fuzz_target.h"
#include "spx_archmap.h"
#include "spx_llama2c.h"

static const char *const bases[] = {"token_embd", "attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                    "ffn_norm", "ffn_gate", "ffn_up", "ffn_down", "output_norm", "output"};

static void check_tensor(const spx_llama2c_tensor *t, const uint8_t *data, size_t size, uint32_t head_dim)
{
    uint64_t prod = t->dims[0] * (t->ndim == 2 ? t->dims[1] : 1);
    FUZZ_ASSERT(t->ndim == 1 || t->ndim == 2, "%s: ndim %u", t->src_name, t->ndim);
    FUZZ_ASSERT(prod == t->numel && t->numel > 0, "%s: numel %llu vs dims", t->src_name, (unsigned long long)t->numel);
    FUZZ_ASSERT(t->offset <= size && t->numel <= (size - t->offset) / 4, "%s: [%llu, +%llu floats) outside %zu bytes",
                t->src_name, (unsigned long long)t->offset, (unsigned long long)t->numel, size);
    FUZZ_ASSERT((const uint8_t *)t->data == data + t->offset, "%s: data pointer", t->src_name);
    volatile uint8_t sink = ((const uint8_t *)t->data)[0];
    sink = ((const uint8_t *)t->data)[4 * t->numel - 1];
    (void)sink;
    if (t->xform != SPX_XFORM_NONE && t->numel <= FUZZ_MAX_NUMEL && t->ndim == 2) {
        spx_ctx ctx = SPX_CTX_INIT;
        float *dst = malloc((size_t)t->numel * 4);
        if (dst) {
            int rc = spx_xform_apply(&ctx, t->xform, head_dim, t->data, dst, 4, t->dims[0], t->dims[1]);
            FUZZ_ASSERT(rc == 0, "%s: xform fails: %s", t->src_name, ctx.msg);
        }
        free(dst);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_llama2c *m = NULL;
    int rc = spx_llama2c_open_mem(&ctx, data, size, "fuzz.bin", &m);
    FUZZ_ASSERT(rc <= 0 && (rc == 0) == (m != NULL), "return code %d vs *out", rc);
    if (rc < 0) {
        FUZZ_ASSERT(ctx.code == rc && ctx.msg[0], "failure without a message");
        return 0;
    }
    const spx_model_config *c = spx_llama2c_config(m);
    FUZZ_ASSERT(spx_config_validate(&ctx, c) == 0, "implied config fails validation: %s", ctx.msg);
    uint32_t layers[3] = {0, c->n_layers - 1, c->n_layers};
    for (size_t b = 0; b < sizeof bases / sizeof bases[0]; b++)
        for (int l = 0; l < 3; l++) {
            spx_llama2c_tensor t;
            memset(&t, 0, sizeof t);
            if (spx_llama2c_find(m, bases[b], "weight", layers[l], &t))
                check_tensor(&t, data, size, c->head_dim);
        }
    for (size_t i = 0; i < spx_llama2c_skipped_count(m); i++)
        FUZZ_ASSERT(spx_llama2c_skipped(m, i) != NULL, "skipped %zu is NULL", i);
    spx_llama2c_free(m);
    return 0;
}
