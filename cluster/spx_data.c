/* spx_data.c: load calibration/evaluation tokens. */
#include "spx_data.h"

#include <stdlib.h>
#include <string.h>

#include "spx_calib.h"
#include "spx_tokenizer.h"

int spx_data_load(spx_ctx *ctx, const spx_file *f, uint32_t vocab_size, const spx_data_spec *spec,
                  uint32_t **ids, size_t *n)
{
    int rc = 0;
    char *text = NULL;
    size_t len = 0, a, b;
    spx_tokenizer *tok = NULL;
    const char *label = spec->text_path ? spec->text_path : spec->tokens_path;
    *ids = NULL;
    *n = 0;
    if (!!spec->text_path == !!spec->tokens_path)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "give exactly one of a text file or a token file");
    if (spec->text_path) {
        SPX_TRY(rc, spx_tokenizer_from_spx(ctx, f, &tok));
        SPX_TRY(rc, spx_text_read(ctx, spec->text_path, &text, &len));
        SPX_TRY(rc, spx_tokenizer_encode(ctx, tok, text, len, spec->add_bos, ids, n));
    } else {
        SPX_TRY(rc, spx_tokens_read(ctx, spec->tokens_path, spec->token_width, ids, n));
    }
    for (size_t i = 0; i < *n; i++)
        if ((*ids)[i] >= vocab_size)
            SPX_FAIL(ctx, rc, SPX_E_DATA, "%s: token %zu has id %u, outside the model's vocabulary of %u",
                     label, i, (*ids)[i], vocab_size);
    SPX_TRY(rc, spx_calib_range(ctx, *n, spec->lo, spec->hi, &a, &b));
    if (a > 0)
        memmove(*ids, *ids + a, (b - a) * sizeof **ids);
    *n = b - a;
done:
    if (rc < 0) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    free(text);
    spx_tokenizer_free(tok);
    return rc;
}
