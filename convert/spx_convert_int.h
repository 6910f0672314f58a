/* spx_convert_int.h: internals shared by spx_convert.c and spx_convert_tok.c (not a public API). */
#ifndef SPX_CONVERT_INT_H
#define SPX_CONVERT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "spx_format.h"
#include "spx_tokenizer.h"

/* A tokenizer to embed, loaded before the output is opened (so a bad tokenizer leaves no file). */
typedef struct spx_conv_tok {
    char kind[24];              /* "huggingface.json", "llama2c" or "none" */
    char *path;                 /* where it came from (NULL for none) */
    char *json;                 /* huggingface.json: the file's bytes (NUL-terminated copy) */
    size_t json_len;
    spx_vocab *vocab;           /* llama2c: pieces and scores */
} spx_conv_tok;

/* Load `explicit_path` when non-NULL, else `auto_path` when non-NULL and the file exists, else
 * nothing (kind "none"). JSON content (first non-blank byte '{') is syntax-checked; anything else
 * is read as a llama2.c tokenizer .bin with n_vocab pieces. */
int spx_conv_tok_load(spx_ctx *ctx, const char *explicit_path, const char *auto_path, uint32_t n_vocab,
                      spx_conv_tok *t);
/* Write the tokenizer.* metadata keys (none for kind "none"). Errors are in spx_writer_ctx(w). */
int spx_conv_tok_write(spx_writer *w, const spx_conv_tok *t);
void spx_conv_tok_free(spx_conv_tok *t);

/* Append a formatted, malloc'ed line to a growing string list (notes, skipped names). */
int spx_conv_list_add(spx_ctx *ctx, char ***list, size_t *n, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

#endif
