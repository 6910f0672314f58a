/* fuzz_spx_model.c: the runtime's model loader and forward pass on arbitrary .spx bytes.
 *
 * A file can pass every container check and still describe an inconsistent model (shapes that do
 * not match the metadata, a missing tensor, absurd sizes): spx_model_open_file must reject it
 * cleanly. The input's checksums are recomputed first (fuzz_spx_reseal.h) so that mutations reach
 * the loader. A model that loads runs a short forward pass (3 tokens, then 1 more through the
 * single-token path); a token id == vocab must be rejected. */
#include "fuzz_spx_reseal.h"
#include "fuzz_target.h"
#include "spx_forward.h"
#include "spx_model.h"

/* Decoded weights are fp32: skip files whose tensors would need more than this (a harness limit,
 * not a library one: the library reports SPX_E_NOMEM, which a fuzzer would flag as OOM). */
#define FUZZ_MODEL_MAX_NUMEL (1ull << 25)

static int fits(const spx_file *f)
{
    spx_ctx ctx = SPX_CTX_INIT;
    uint64_t total = 0;
    for (uint32_t i = 0; i < spx_file_tensor_count(f); i++) {
        uint64_t n = 0;
        if (spx_tensor_numel(&ctx, spx_file_tensor(f, i), &n) < 0 || n > FUZZ_MODEL_MAX_NUMEL)
            return 0;
        total += n;
        if (total > FUZZ_MODEL_MAX_NUMEL)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_file *f = NULL;
    spx_model *m = NULL;
    spx_state *st = NULL;
    float *logits = NULL, *last = NULL;
    uint8_t *sealed = fuzz_spx_reseal(data, size);   /* checksums recomputed: see fuzz_spx_reseal.h */
    if (!sealed || spx_file_open_mem(&ctx, sealed, size, "fuzz.spx", 0, &f) < 0 || !fits(f))
        goto done;
    int rc = spx_model_open_file(&ctx, &f, SPX_MODEL_VERIFY_DATA, &m);
    FUZZ_ASSERT(f == NULL, "spx_model_open_file did not take the file");
    FUZZ_ASSERT((rc == 0) == (m != NULL), "*out vs return code");
    if (rc < 0) {
        FUZZ_ASSERT(ctx.code == rc && ctx.msg[0], "failure without a message");
        goto done;
    }
    uint32_t vocab = m->cfg.vocab_size;
    if ((uint64_t)vocab * m->cfg.dim > FUZZ_MODEL_MAX_NUMEL || spx_state_new(&ctx, m, 8, 4, &st) < 0)
        goto done;
    logits = malloc(3 * (size_t)vocab * sizeof *logits);
    last = malloc((size_t)vocab * sizeof *last);
    if (!logits || !last)
        goto done;
    uint32_t toks[3] = {0, vocab - 1, (uint32_t)(size % vocab)};
    if (spx_forward(&ctx, m, st, toks, 3, logits, NULL) == 0)
        (void)spx_forward(&ctx, m, st, toks + 1, 1, NULL, last);
    uint32_t bad = vocab;
    FUZZ_ASSERT(spx_forward(&ctx, m, st, &bad, 1, NULL, last) < 0, "token id == vocab accepted");
done:
    free(logits);
    free(last);
    spx_state_free(st);
    spx_model_free(m);
    spx_file_free(f);
    free(sealed);
    return 0;
}
