/* spx_tokenizer_spx.c: the tokenizer stored in a .spx file's metadata.
 *
 * Keys: `tokenizer.huggingface.json` (STR: a whole tokenizer.json), else GGUF-style
 * `tokenizer.ggml.model` == "llama" with `tokenizer.ggml.tokens` (ARR of STR, SentencePiece
 * pieces with U+2581 for spaces, mapped back to ' ' for the llama2.c encoder),
 * `tokenizer.ggml.scores` (ARR of F32/F64) and optional `tokenizer.ggml.bos_token_id` /
 * `tokenizer.ggml.eos_token_id`. BOS/EOS fall back to `spx.bos_token_id` / `spx.eos_token_id`
 * (-1 = unknown) when the tokenizer itself does not name them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_tok_internal.h"

/* optional integer key: -1 when absent or out of [0, n) */
static int opt_id(const spx_file *f, const char *key, uint32_t n)
{
    spx_ctx quiet = SPX_CTX_INIT;
    int64_t v = -1;
    if (!spx_file_meta_find(f, key) || spx_meta_get_i64(&quiet, f, key, &v) < 0)
        return -1;
    return (v >= 0 && v < (int64_t)n) ? (int)v : -1;
}

/* copy of a piece with every U+2581 replaced by ' ' */
static char *unmeta(const char *s, uint32_t n, uint32_t *out_len)
{
    char *d = malloc((size_t)n + 1);
    uint32_t w = 0;
    if (!d)
        return NULL;
    for (uint32_t i = 0; i < n;) {
        if (n - i >= 3 && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
            (unsigned char)s[i + 2] == 0x81) {
            d[w++] = ' ';
            i += 3;
        } else {
            d[w++] = s[i++];
        }
    }
    d[w] = 0;
    *out_len = w;
    return d;
}

static int from_ggml(spx_ctx *ctx, const spx_file *f, const char *label, spx_tokenizer **out)
{
    int rc = 0;
    spx_vocab *v = NULL;
    const spx_meta *model = spx_file_meta_find(f, "tokenizer.ggml.model");
    const spx_meta *toks = spx_file_meta_find(f, "tokenizer.ggml.tokens");
    const spx_meta *scores = spx_file_meta_find(f, "tokenizer.ggml.scores");
    if (model->type != SPX_META_STR || strcmp(model->str, "llama") != 0)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: tokenizer.ggml.model \"%s\" is not supported (only \"llama\")",
                 label, model->type == SPX_META_STR ? model->str : "(not a string)");
    if (!toks || toks->type != SPX_META_ARR || toks->elem_type != SPX_META_STR)
        SPX_FAIL(ctx, rc, toks ? SPX_E_META : SPX_E_MISSING, "%s: tokenizer.ggml.tokens: missing or not an array of strings",
                 label);
    if (!scores || scores->type != SPX_META_ARR ||
        (scores->elem_type != SPX_META_F32 && scores->elem_type != SPX_META_F64))
        SPX_FAIL(ctx, rc, scores ? SPX_E_META : SPX_E_MISSING, "%s: tokenizer.ggml.scores: missing or not a float array",
                 label);
    if (toks->count == 0 || toks->count != scores->count || toks->count > (1u << 22))
        SPX_FAIL(ctx, rc, SPX_E_META, "%s: tokenizer.ggml.tokens has %llu entries and tokenizer.ggml.scores %llu",
                 label, (unsigned long long)toks->count, (unsigned long long)scores->count);
    uint32_t n = (uint32_t)toks->count;
    v = calloc(1, sizeof(*v));
    if (!v)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    v->n = n;
    v->pieces = calloc(n, sizeof(char *));
    v->lens = calloc(n, sizeof(uint32_t));
    v->scores = calloc(n, sizeof(float));
    if (!v->pieces || !v->lens || !v->scores)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory for %u tokens", n);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = 0;
        const char *s = spx_meta_arr_str(toks, i, &len);
        if (!s)
            SPX_FAIL(ctx, rc, SPX_E_META, "%s: tokenizer.ggml.tokens[%u] unreadable", label, i);
        v->pieces[i] = unmeta(s, len, &v->lens[i]);
        if (!v->pieces[i])
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
        if (v->lens[i] > v->max_len)
            v->max_len = v->lens[i];
        v->scores[i] = (float)spx_meta_arr_f64(scores, i);
    }
    int bos = opt_id(f, "tokenizer.ggml.bos_token_id", n), eos = opt_id(f, "tokenizer.ggml.eos_token_id", n);
    if (bos < 0)
        bos = opt_id(f, "spx.bos_token_id", n);
    if (eos < 0)
        eos = opt_id(f, "spx.eos_token_id", n);
    SPX_TRY(rc, spx_tokenizer_from_vocab(ctx, &v, bos, eos, out));
done:
    spx_vocab_free(v);
    return rc;
}

int spx_tokenizer_from_spx(spx_ctx *ctx, const spx_file *f, spx_tokenizer **out)
{
    int rc = 0;
    *out = NULL;
    const char *label = spx_file_path(f) ? spx_file_path(f) : "(.spx file)";
    const spx_meta *hf = spx_file_meta_find(f, "tokenizer.huggingface.json");
    if (hf) {
        char lab[512];
        if (hf->type != SPX_META_STR)
            SPX_FAIL(ctx, rc, SPX_E_META, "%s: tokenizer.huggingface.json is not a string", label);
        snprintf(lab, sizeof(lab), "%s: tokenizer.huggingface.json", label);
        SPX_TRY(rc, spx_tokenizer_load_json(ctx, hf->str, (size_t)hf->count, lab, out));
        int bos = opt_id(f, "spx.bos_token_id", (*out)->n_vocab), eos = opt_id(f, "spx.eos_token_id", (*out)->n_vocab);
        /* the model config names the ids when tokenizer.json has no template/known names */
        if ((*out)->bos_id < 0)
            (*out)->bos_id = bos;
        if ((*out)->eos_id < 0)
            (*out)->eos_id = eos;
        goto done;
    }
    if (spx_file_meta_find(f, "tokenizer.ggml.model")) {
        SPX_TRY(rc, from_ggml(ctx, f, label, out));
        goto done;
    }
    SPX_FAIL(ctx, rc, SPX_E_MISSING,
             "%s: no tokenizer in the metadata (neither tokenizer.huggingface.json nor tokenizer.ggml.model)", label);
done:
    return rc;
}
