/* spx_tok_json.h: internals shared by the tokenizer.json parser files (not a public API). */
#ifndef SPX_TOK_JSON_H
#define SPX_TOK_JSON_H

#include <cjson/cJSON.h>

#include "spx_tok_internal.h"

#define SPX_TOK_MAX_ID (1u << 22)   /* vocabularies are < 300k today: reject absurd ids early */

/* cJSON accessors that tolerate NULL / wrong types (return NULL, dflt or -1). */
const cJSON *spx_tok_jget(const cJSON *o, const char *key);
int spx_tok_jbool(const cJSON *o, const char *key, int dflt);
const char *spx_tok_jstring(const cJSON *o, const char *key);
/* integer id in [0, SPX_TOK_MAX_ID) or -1 */
int64_t spx_tok_jid(const cJSON *v);
/* malloc'ed copy of a NUL-terminated string; *len (if not NULL) gets its length */
char *spx_tok_strdup(const char *s, size_t *len);

/* The pipeline parts of tokenizer.json (spx_tok_json_pipe.c); a NULL or JSON-null node is
 * "none". `label` names the file in messages; depth bounds Sequence nesting. */
int spx_tok_parse_normalizer(spx_ctx *ctx, spx_tokenizer *t, const cJSON *n, const char *label, int depth);
int spx_tok_parse_pre_tokenizer(spx_ctx *ctx, spx_tokenizer *t, const cJSON *n, const char *label, int depth);
int spx_tok_parse_decoder(spx_ctx *ctx, spx_tokenizer *t, const cJSON *n, const char *label, int depth);
/* needs t->added and the model vocabulary already parsed */
int spx_tok_parse_post_processor(spx_ctx *ctx, spx_tokenizer *t, const cJSON *n, const char *label, int depth);

#endif
