/* spx_generate.h: greedy text generation. */
#ifndef SPX_GENERATE_H
#define SPX_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_forward.h"
#include "spx_model.h"
#include "spx_tokenizer.h"

/* Called once per generated token with its id and, when a tokenizer was given, the bytes it adds
 * to the text (piece, len; may be a partial UTF-8 sequence); piece is NULL without a tokenizer.
 * Return nonzero to stop generating. */
typedef int (*spx_generate_fn)(void *ud, uint32_t id, const char *piece, size_t len);

/* Greedy decoding: runs the prompt (n_prompt >= 1 ids) as one batch from the state's current
 * position, then repeatedly appends argmax(logits) (ties: lowest id) until max_new tokens were
 * produced, the end-of-sequence token appears (the tokenizer's EOS, else cfg.eos_id; the EOS
 * token is neither reported nor counted), the callback asks to stop, or the state's cache is
 * full. tok may be NULL. *n_out (may be NULL) receives the number of tokens reported.
 * Errors: SPX_E_ARG (empty prompt, id out of range), SPX_E_LIMIT (prompt longer than the cache),
 * SPX_E_NOMEM. */
int spx_generate(spx_ctx *ctx, const spx_model *model, spx_state *state, const spx_tokenizer *tok,
                 const uint32_t *prompt, size_t n_prompt, size_t max_new, spx_generate_fn cb, void *ud,
                 size_t *n_out);

/* Index of the largest of n values (the first one on ties; NaN never wins). */
uint32_t spx_argmax(const float *v, uint32_t n);

#endif
