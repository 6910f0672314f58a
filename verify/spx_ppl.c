/* spx_ppl.c: windowed perplexity (protocol in spx_ppl.h). */
#include "spx_ppl.h"

#include <math.h>
#include <stdlib.h>

#include "spx_ckd.h"

double spx_ppl_nll(const float *logits, uint32_t vocab, uint32_t target)
{
    double mx = (double)logits[0], sum = 0.0;
    for (uint32_t j = 0; j < vocab; j++) {
        if (!isfinite(logits[j]))
            return NAN;
        if ((double)logits[j] > mx)
            mx = (double)logits[j];
    }
    for (uint32_t j = 0; j < vocab; j++)
        sum += exp((double)logits[j] - mx);
    return mx + log(sum) - (double)logits[target];
}

int spx_ppl_eval(spx_ctx *ctx, const spx_model *model, spx_state *state, const uint32_t *tokens, size_t n,
                 uint32_t C, uint64_t max_windows, const spx_progress *progress, spx_ppl_result *out)
{
    int rc = 0;
    const uint32_t vocab = model->cfg.vocab_size;
    float *logits = NULL;
    size_t chunk, bytes;
    uint64_t windows;
    spx_ppl_result r = {0};
    if (C < 2 || C > state->max_ctx)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "ppl: context length %u must be in 2..%u (the state's max context)", C,
                 state->max_ctx);
    if (n < C)
        SPX_FAIL(ctx, rc, SPX_E_DATA, "ppl: %zu tokens are fewer than one window of %u", n, C);
    windows = n / C;
    if (max_windows && windows > max_windows)
        windows = max_windows;
    for (size_t i = 0; i < windows * C; i++)
        if (tokens[i] >= vocab)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "ppl: token id %u at index %zu is out of range (vocabulary size %u)",
                     tokens[i], i, vocab);
    /* Logits for at most max_batch positions at a time: bounded by the state, not by C. */
    chunk = state->max_batch < C ? state->max_batch : C;
    if (spx_ckd_mul3_size(chunk, vocab, sizeof(float), &bytes))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "ppl: logits buffer size overflows");
    logits = malloc(bytes);
    if (!logits)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "ppl: out of memory for logits (%zu bytes)", bytes);
    r.ctx = C;
    for (uint64_t w = 0; w < windows; w++) {
        const uint32_t *win = tokens + w * C;
        spx_state_reset(state);
        for (size_t off = 0; off < C; off += chunk) {
            size_t nb = C - off < chunk ? C - off : chunk;
            SPX_TRY(rc, spx_forward(ctx, model, state, win + off, nb, logits, NULL));
            for (size_t i = 0; i < nb; i++) {
                size_t p = off + i;          /* logits at p predict token p+1 */
                double nll;
                if (p + 1 >= C)
                    break;
                nll = spx_ppl_nll(logits + i * vocab, vocab, win[p + 1]);
                if (!isfinite(nll))
                    SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "ppl: non-finite logits at window %llu position %zu",
                             (unsigned long long)w, p);
                r.nll_sum += nll;
                r.tokens++;
            }
        }
        r.windows++;
        spx_progress_report(progress, "ppl", w + 1, windows);
    }
    r.dropped = (uint64_t)n - r.windows * C;
    r.nll_mean = r.nll_sum / (double)r.tokens;
    r.ppl = exp(r.nll_mean);
    *out = r;
done:
    free(logits);
    return rc;
}
