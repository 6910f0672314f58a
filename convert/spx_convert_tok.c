/* spx_convert_tok.c: the tokenizer embedded into a converted .spx, and the report's string lists. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spx_ckd.h"
#include "spx_convert_int.h"
#include "spx_io.h"

int spx_conv_list_add(spx_ctx *ctx, char ***list, size_t *n, const char *fmt, ...)
{
    va_list ap;
    char tmp[1024];
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    char **grown = realloc(*list, (*n + 1) * sizeof **list);
    if (!grown)
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
    *list = grown;
    if (!(grown[*n] = strdup(tmp)))
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
    (*n)++;
    return 0;
}

static int load_json(spx_ctx *ctx, spx_conv_tok *t)
{
    int rc = 0;
    /* leave room in the metadata section for everything else */
    SPX_TRY(rc, spx_io_read_file(ctx, t->path, "tokenizer", SPX_META_MAX_BYTES - (1u << 20), SPX_E_LIMIT, &t->json,
                                 &t->json_len));
    if (strlen(t->json) != t->json_len)
        SPX_FAIL(ctx, rc, SPX_E_JSON, "%s: NUL byte at offset %zu", t->path, strlen(t->json));
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(t->json, t->json_len, &end, 0);
    int is_obj = cJSON_IsObject(root);
    cJSON_Delete(root);
    if (!root)
        SPX_FAIL(ctx, rc, SPX_E_JSON, "%s: invalid JSON near byte %zu", t->path,
                 end ? (size_t)(end - t->json) : (size_t)0);
    if (!is_obj)
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: tokenizer.json is not a JSON object", t->path);
    snprintf(t->kind, sizeof t->kind, "huggingface.json");
done:
    return rc;
}

int spx_conv_tok_load(spx_ctx *ctx, const char *explicit_path, const char *auto_path, uint32_t n_vocab,
                      spx_conv_tok *t)
{
    int rc = 0;
    struct stat st;
    memset(t, 0, sizeof *t);
    snprintf(t->kind, sizeof t->kind, "none");
    const char *p = explicit_path;
    if (!p && auto_path && stat(auto_path, &st) == 0 && S_ISREG(st.st_mode))
        p = auto_path;
    if (!p)
        return 0;
    if (!(t->path = strdup(p)))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    /* sniff: JSON starts with '{' after blanks */
    FILE *fp = fopen(p, "rb");
    if (!fp)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: cannot open tokenizer: %s", p, strerror(errno));
    int c;
    do
        c = fgetc(fp);
    while (c == ' ' || c == '\t' || c == '\n' || c == '\r');
    fclose(fp);
    if (c == '{') {
        SPX_TRY(rc, load_json(ctx, t));
    } else {
        SPX_TRY(rc, spx_llama2c_vocab_read(ctx, p, n_vocab, &t->vocab));
        snprintf(t->kind, sizeof t->kind, "llama2c");
    }
done:
    if (rc < 0)
        spx_conv_tok_free(t);
    return rc;
}

/* Replace ' ' by U+2581 (GGUF/SentencePiece convention; the .spx tokenizer reader maps it back). */
static char *to_sentencepiece(const char *s, uint32_t len, size_t *out_len)
{
    size_t spaces = 0, n;
    for (uint32_t i = 0; i < len; i++)
        spaces += s[i] == ' ';
    if (spx_ckd_mul_size(spaces, 2, &n) || spx_ckd_add_size(n, (size_t)len + 1, &n))
        return NULL;
    char *o = malloc(n), *q = o;
    if (!o)
        return NULL;
    for (uint32_t i = 0; i < len; i++) {
        if (s[i] == ' ') {
            memcpy(q, "\xe2\x96\x81", 3);
            q += 3;
        } else {
            *q++ = s[i];
        }
    }
    *q = '\0';
    *out_len = (size_t)(q - o);
    return o;
}

int spx_conv_tok_write(spx_writer *w, const spx_conv_tok *t)
{
    int rc = 0;
    char **pieces = NULL;
    size_t *lens = NULL;
    if (strcmp(t->kind, "huggingface.json") == 0)
        return spx_writer_meta_str(w, "tokenizer.huggingface.json", t->json, t->json_len);
    if (strcmp(t->kind, "llama2c") != 0)
        return 0;
    const spx_vocab *v = t->vocab;
    pieces = calloc((size_t)v->n + 1, sizeof *pieces);
    lens = calloc((size_t)v->n + 1, sizeof *lens);
    if (!pieces || !lens)
        SPX_FAIL(spx_writer_ctx(w), rc, SPX_E_NOMEM, "out of memory");
    for (uint32_t i = 0; i < v->n; i++)
        if (!(pieces[i] = to_sentencepiece(v->pieces[i], v->lens[i], &lens[i])))
            SPX_FAIL(spx_writer_ctx(w), rc, SPX_E_NOMEM, "out of memory");
    SPX_TRY(rc, spx_writer_meta_str(w, "tokenizer.ggml.model", "llama", 5));
    SPX_TRY(rc, spx_writer_meta_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)pieces, lens, v->n));
    SPX_TRY(rc, spx_writer_meta_arr(w, "tokenizer.ggml.scores", SPX_META_F32, v->scores, v->n));
    SPX_TRY(rc, spx_writer_meta_u32(w, "tokenizer.ggml.bos_token_id", 1));
    SPX_TRY(rc, spx_writer_meta_u32(w, "tokenizer.ggml.eos_token_id", 2));
done:
    if (pieces)
        for (uint32_t i = 0; i < v->n; i++)
            free(pieces[i]);
    free(pieces);
    free(lens);
    return rc;
}

void spx_conv_tok_free(spx_conv_tok *t)
{
    if (!t)
        return;
    free(t->path);
    free(t->json);
    spx_vocab_free(t->vocab);
    memset(t, 0, sizeof *t);
    snprintf(t->kind, sizeof t->kind, "none");
}
