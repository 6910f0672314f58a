/* spx_data.h: token data for calibration and evaluation, from text (tokenized with the tokenizer
 * embedded in a .spx) or from raw token files, optionally restricted to a fraction of the stream. */
#ifndef SPX_DATA_H
#define SPX_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "spx_format.h"

typedef struct spx_data_spec {
    const char *text_path;    /* text file (CR bytes removed), or NULL */
    const char *tokens_path;  /* raw LE token file, or NULL (exactly one of the two) */
    int token_width;          /* 2 or 4 for tokens_path */
    int add_bos;              /* -1 tokenizer default, 0 no, 1 yes (text only) */
    double lo, hi;            /* fraction of the token stream to keep: [lo, hi) (0, 1 = all) */
} spx_data_spec;

#define SPX_DATA_SPEC_INIT {NULL, NULL, 4, -1, 0.0, 1.0}

/* Load the tokens described by `spec`; `f` supplies the tokenizer for text. Every id is checked
 * against vocab_size (SPX_E_DATA naming the file and index). *ids is malloc'd (caller frees). */
int spx_data_load(spx_ctx *ctx, const spx_file *f, uint32_t vocab_size, const spx_data_spec *spec,
                  uint32_t **ids, size_t *n);

#endif
