/* spx_generate.c: greedy generation over spx_forward. */
#include "spx_generate.h"

#include <stdlib.h>

uint32_t spx_argmax(const float *v, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (v[i] > v[best] || (v[best] != v[best] && v[i] == v[i]))
            best = i;
    return best;
}

int spx_generate(spx_ctx *ctx, const spx_model *model, spx_state *state, const spx_tokenizer *tok,
                 const uint32_t *prompt, size_t n_prompt, size_t max_new, spx_generate_fn cb, void *ud,
                 size_t *n_out)
{
    int rc = 0;
    const uint32_t vocab = model->cfg.vocab_size;
    float *logits = NULL;
    size_t produced = 0;
    int eos = tok ? spx_tokenizer_eos_id(tok) : -1;
    int prev;
    char *piece = NULL;
    size_t piece_cap = 256;
    if (eos < 0)
        eos = model->cfg.eos_id;
    if (n_out)
        *n_out = 0;
    if (n_prompt == 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "generate: empty prompt (at least one token, e.g. BOS, is needed)");
    logits = malloc((size_t)vocab * sizeof(float));
    piece = malloc(piece_cap);
    if (!logits || !piece)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "generate: out of memory");
    SPX_TRY(rc, spx_forward(ctx, model, state, prompt, n_prompt, NULL, logits));
    prev = (int)prompt[n_prompt - 1];
    while (produced < max_new) {
        uint32_t next = spx_argmax(logits, vocab);
        const char *p = NULL;
        size_t len = 0;
        if (eos >= 0 && next == (uint32_t)eos)
            break;
        if (tok) {
            int k = spx_tokenizer_decode(tok, prev, next, piece, piece_cap);
            if (k >= 0 && (size_t)k >= piece_cap) {   /* long piece: grow and decode again */
                char *np = realloc(piece, (size_t)k + 1);
                if (!np)
                    SPX_FAIL(ctx, rc, SPX_E_NOMEM, "generate: out of memory");
                piece = np;
                piece_cap = (size_t)k + 1;
                k = spx_tokenizer_decode(tok, prev, next, piece, piece_cap);
            }
            if (k < 0 || (size_t)k >= piece_cap)
                SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "generate: token %u cannot be decoded by the tokenizer", next);
            p = piece;
            len = (size_t)k;
        }
        produced++;
        if (cb && cb(ud, next, p, len))
            break;
        if (produced == max_new || state->pos >= state->max_ctx)
            break;
        SPX_TRY(rc, spx_forward(ctx, model, state, &next, 1, NULL, logits));
        prev = (int)next;
    }
done:
    if (n_out)
        *n_out = produced;
    free(piece);
    free(logits);
    return rc;
}
