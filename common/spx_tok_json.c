/* spx_tok_json.c: Hugging Face tokenizer.json (model.type "BPE") into an spx_tokenizer.
 *
 * Supported: model BPE (vocab, merges as "a b" strings or ["a","b"] pairs, unk_token, fuse_unk,
 * byte_fallback, ignore_merges); added_tokens; normalizer null / Prepend / Replace (String
 * pattern) / NFC (identity: input is assumed NFC) / Sequence; pre_tokenizer null / Metaspace /
 * ByteLevel / Digits / Sequence; post_processor null / TemplateProcessing / ByteLevel /
 * RobertaProcessing / BertProcessing / Sequence; decoder null / Replace (String) / ByteFallback /
 * Fuse / Strip / Metaspace / ByteLevel / Sequence. Anything else is SPX_E_UNSUPPORTED naming the
 * type. "truncation" and "padding" are ignored (a tokenizer for evaluation never truncates). */
#include <stdlib.h>
#include <string.h>

#include "spx_tok_json.h"

const cJSON *spx_tok_jget(const cJSON *o, const char *key)
{
    return cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, key) : NULL;
}

int spx_tok_jbool(const cJSON *o, const char *key, int dflt)
{
    const cJSON *v = spx_tok_jget(o, key);
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v) ? 1 : 0;
    return dflt;
}

const char *spx_tok_jstring(const cJSON *o, const char *key)
{
    const cJSON *v = spx_tok_jget(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

char *spx_tok_strdup(const char *s, size_t *len)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    if (len)
        *len = n;
    return d;
}

/* integer id in [0, SPX_TOK_MAX_ID) or -1 */
int64_t spx_tok_jid(const cJSON *v)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d < (double)SPX_TOK_MAX_ID) || d != (double)(int64_t)d)
        return -1;
    return (int64_t)d;
}

/* id of a special token by content: added tokens first, then the model vocabulary */
static int64_t special_id(const spx_tokenizer *t, const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && memcmp(t->added[i].content, s, n) == 0)
            return t->added[i].id;
    return spx_tok_map_get(&t->bpe.vocab, s, n);
}

/* ---- model ---- */

/* store a piece string for id (model vocabulary) */
static int set_model_piece(spx_ctx *ctx, spx_tokenizer *t, int64_t id, const char *s, const char *label)
{
    int rc = 0;
    size_t n;
    if (t->model_pieces[id])
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: model.vocab: id %lld is used twice (\"%s\" and \"%s\")",
                 label, (long long)id, t->model_pieces[id], s);
    t->model_pieces[id] = spx_tok_strdup(s, &n);
    if (!t->model_pieces[id])
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    t->model_lens[id] = (uint32_t)n;
done:
    return rc;
}

static int merge_ids(spx_ctx *ctx, spx_tokenizer *t, size_t rank, const char *a, size_t alen, const char *b,
                     size_t blen, const char *label)
{
    int rc = 0;
    char *cat = malloc(alen + blen + 1);
    if (!cat)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    memcpy(cat, a, alen);
    memcpy(cat + alen, b, blen);
    cat[alen + blen] = 0;
    int64_t ia = spx_tok_map_get(&t->bpe.vocab, a, alen), ib = spx_tok_map_get(&t->bpe.vocab, b, blen);
    int64_t im = spx_tok_map_get(&t->bpe.vocab, cat, alen + blen);
    if (ia < 0 || ib < 0 || im < 0)
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: model.merges[%zu]: \"%.*s\" is not in the vocabulary", label, rank,
                 (int)(ia < 0 ? alen : ib < 0 ? blen : alen + blen), ia < 0 ? a : ib < 0 ? b : cat);
    SPX_TRY(rc, spx_tok_pairmap_put(ctx, &t->bpe.merges, (uint32_t)ia, (uint32_t)ib, (uint32_t)rank, (uint32_t)im));
done:
    free(cat);
    return rc;
}

static int parse_merges(spx_ctx *ctx, spx_tokenizer *t, const cJSON *merges, const char *label)
{
    int rc = 0;
    size_t count = cJSON_IsArray(merges) ? (size_t)cJSON_GetArraySize(merges) : 0;
    if (merges && !cJSON_IsNull(merges) && !cJSON_IsArray(merges))
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: model.merges is not an array", label);
    SPX_TRY(rc, spx_tok_pairmap_init(ctx, &t->bpe.merges, count));
    size_t rank = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, merges) {
        if (cJSON_IsString(m)) {
            /* "a b": exactly one space (pieces with spaces need the pair form) */
            const char *s = m->valuestring, *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' '))
                SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: model.merges[%zu] \"%s\" is not of the form \"a b\"", label,
                         rank, s);
            SPX_TRY(rc, merge_ids(ctx, t, rank, s, (size_t)(sp - s), sp + 1, strlen(sp + 1), label));
        } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(cJSON_GetArrayItem(m, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
            const char *a = cJSON_GetArrayItem(m, 0)->valuestring, *b = cJSON_GetArrayItem(m, 1)->valuestring;
            SPX_TRY(rc, merge_ids(ctx, t, rank, a, strlen(a), b, strlen(b), label));
        } else {
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", label, rank);
        }
        rank++;
    }
done:
    return rc;
}

static int parse_model(spx_ctx *ctx, spx_tokenizer *t, const cJSON *model, const char *label)
{
    int rc = 0;
    const char *type = spx_tok_jstring(model, "type");
    const cJSON *vocab = spx_tok_jget(model, "vocab"), *v, *dropout = spx_tok_jget(model, "dropout");
    if (!cJSON_IsObject(model))
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: no \"model\" object", label);
    if (type && strcmp(type, "BPE") != 0)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: model.type \"%s\" is not supported (only \"BPE\")", label, type);
    if (!type && !spx_tok_jget(model, "merges"))
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: model has no \"type\" and no merges: only BPE models are supported", label);
    if (cJSON_IsNumber(dropout) && dropout->valuedouble != 0.0)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: model.dropout %g: BPE dropout is not supported (not deterministic)",
                 label, dropout->valuedouble);
    const char *csp = spx_tok_jstring(model, "continuing_subword_prefix"), *eow = spx_tok_jstring(model, "end_of_word_suffix");
    if ((csp && *csp) || (eow && *eow))
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED,
                 "%s: model.continuing_subword_prefix / end_of_word_suffix are not supported", label);
    if (!cJSON_IsObject(vocab))
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: model.vocab is not an object", label);
    cJSON_ArrayForEach(v, vocab) {
        int64_t id = spx_tok_jid(v);
        if (id < 0)
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: model.vocab[\"%s\"]: id is not an integer in [0, %u)", label,
                     v->string, SPX_TOK_MAX_ID);
        SPX_TRY(rc, set_model_piece(ctx, t, id, v->string, label));
    }
    SPX_TRY(rc, spx_tok_map_build(ctx, &t->bpe.vocab, (const char *const *)t->model_pieces, t->model_lens, t->n_vocab));
    SPX_TRY(rc, parse_merges(ctx, t, spx_tok_jget(model, "merges"), label));
    t->bpe.byte_fallback = spx_tok_jbool(model, "byte_fallback", 0);
    t->bpe.fuse_unk = spx_tok_jbool(model, "fuse_unk", 0);
    t->bpe.ignore_merges = spx_tok_jbool(model, "ignore_merges", 0);
    t->bpe.unk_id = -1;
    const char *unk = spx_tok_jstring(model, "unk_token");
    if (unk) {
        t->bpe.unk_id = spx_tok_map_get(&t->bpe.vocab, unk, strlen(unk));
        if (t->bpe.unk_id < 0)
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: model.unk_token \"%s\" is not in the vocabulary", label, unk);
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        static const char hex[] = "0123456789ABCDEF";
        memcpy(name, "<0x", 3);
        name[3] = hex[b >> 4];
        name[4] = hex[b & 15];
        name[5] = '>';
        t->bpe.byte_id[b] = t->bpe.byte_fallback ? (int32_t)spx_tok_map_get(&t->bpe.vocab, name, 6) : -1;
    }
done:
    return rc;
}

/* ---- added tokens ---- */

static int cmp_added(const void *a, const void *b)
{
    const spx_tok_added *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int parse_added(spx_ctx *ctx, spx_tokenizer *t, const cJSON *list, const char *label)
{
    int rc = 0;
    const cJSON *a;
    size_t i = 0, n = cJSON_IsArray(list) ? (size_t)cJSON_GetArraySize(list) : 0;
    if (list && !cJSON_IsNull(list) && !cJSON_IsArray(list))
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: added_tokens is not an array", label);
    t->added = calloc(n ? n : 1, sizeof(*t->added));
    if (!t->added)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    cJSON_ArrayForEach(a, list) {
        int64_t id = spx_tok_jid(spx_tok_jget(a, "id"));
        const char *content = spx_tok_jstring(a, "content");
        if (id < 0 || !content || !*content)
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: added_tokens[%zu]: needs an integer id and a non-empty content",
                     label, i);
        spx_tok_added *d = &t->added[t->n_added++];
        d->id = (uint32_t)id;
        d->content = spx_tok_strdup(content, &d->len);
        if (!d->content)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
        d->special = spx_tok_jbool(a, "special", 0);
        d->lstrip = spx_tok_jbool(a, "lstrip", 0);
        d->rstrip = spx_tok_jbool(a, "rstrip", 0);
        d->single_word = spx_tok_jbool(a, "single_word", 0);
        i++;
    }
    if (t->n_added)
        qsort(t->added, t->n_added, sizeof(*t->added), cmp_added);
done:
    return rc;
}

static int64_t first_present(const spx_tokenizer *t, const char *const *names)
{
    for (size_t i = 0; names[i]; i++) {
        int64_t id = special_id(t, names[i]);
        if (id >= 0)
            return id;
    }
    return -1;
}

/* largest id in model.vocab and added_tokens, + 1 */
static int count_ids(spx_ctx *ctx, const cJSON *root, const char *label, uint32_t *n)
{
    int rc = 0;
    int64_t max = -1;
    const cJSON *v;
    cJSON_ArrayForEach(v, spx_tok_jget(spx_tok_jget(root, "model"), "vocab")) {
        int64_t id = spx_tok_jid(v);
        if (id < 0)
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: model.vocab[\"%s\"]: id is not an integer in [0, %u)", label,
                     v->string ? v->string : "", SPX_TOK_MAX_ID);
        if (id > max)
            max = id;
    }
    cJSON_ArrayForEach(v, spx_tok_jget(root, "added_tokens")) {
        int64_t id = spx_tok_jid(spx_tok_jget(v, "id"));
        if (id > max)
            max = id;
    }
    if (max < 0)
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: empty vocabulary", label);
    *n = (uint32_t)max + 1;
done:
    return rc;
}

int spx_tok_json_parse(spx_ctx *ctx, spx_tokenizer *t, const char *json, size_t len, const char *label)
{
    int rc = 0;
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root) {
        const char *ep = cJSON_GetErrorPtr();
        size_t off = (ep && ep >= json && ep <= json + len) ? (size_t)(ep - json) : 0;
        SPX_FAIL(ctx, rc, SPX_E_JSON, "%s: malformed JSON near byte offset %zu", label, off);
    }
    if (!cJSON_IsObject(root))
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: the top level is not a JSON object", label);
    const cJSON *model = spx_tok_jget(root, "model");
    if (!cJSON_IsObject(model))
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: no \"model\" object", label);
    const char *type = spx_tok_jstring(model, "type");
    if (type && strcmp(type, "BPE") != 0)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: model.type \"%s\" is not supported (only \"BPE\")", label, type);
    t->kind = SPX_TOK_KIND_HF;
    SPX_TRY(rc, count_ids(ctx, root, label, &t->n_vocab));
    size_t nv = t->n_vocab;
    t->model_pieces = calloc(nv, sizeof(char *));
    t->model_lens = calloc(nv, sizeof(uint32_t));
    t->pieces = calloc(nv, sizeof(char *));
    t->piece_lens = calloc(nv, sizeof(uint32_t));
    t->special = calloc(nv, 1);
    if (!t->model_pieces || !t->model_lens || !t->pieces || !t->piece_lens || !t->special)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory for %zu tokens", label, nv);
    SPX_TRY(rc, parse_model(ctx, t, model, label));
    SPX_TRY(rc, parse_added(ctx, t, spx_tok_jget(root, "added_tokens"), label));
    for (size_t i = 0; i < nv; i++) {
        t->pieces[i] = t->model_pieces[i];
        t->piece_lens[i] = t->model_lens[i];
    }
    for (size_t i = 0; i < t->n_added; i++) {
        const spx_tok_added *a = &t->added[i];
        t->pieces[a->id] = a->content;
        t->piece_lens[a->id] = (uint32_t)a->len;
        t->special[a->id] = (uint8_t)(a->special ? 1 : 0);
    }
    SPX_TRY(rc, spx_tok_parse_normalizer(ctx, t, spx_tok_jget(root, "normalizer"), label, 0));
    SPX_TRY(rc, spx_tok_parse_pre_tokenizer(ctx, t, spx_tok_jget(root, "pre_tokenizer"), label, 0));
    SPX_TRY(rc, spx_tok_parse_post_processor(ctx, t, spx_tok_jget(root, "post_processor"), label, 0));
    SPX_TRY(rc, spx_tok_parse_decoder(ctx, t, spx_tok_jget(root, "decoder"), label, 0));
    for (size_t i = 0; i < t->n_prefix + t->n_suffix; i++) {
        uint32_t id = i < t->n_prefix ? t->prefix[i] : t->suffix[i - t->n_prefix];
        if (id >= t->n_vocab || !t->pieces[id])   /* a hole: encode would emit an id with no piece */
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: post_processor token id %u is outside the vocabulary (%u)",
                     label, id, t->n_vocab);
    }
    static const char *const bos_names[] = {"<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>", "<|endoftext|>", NULL};
    static const char *const eos_names[] = {"</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>", NULL};
    t->bos_id = t->n_prefix ? (int)t->prefix[0] : (int)first_present(t, bos_names);
    t->eos_id = t->n_suffix ? (int)t->suffix[t->n_suffix - 1] : (int)first_present(t, eos_names);
    t->default_add_bos = t->n_prefix > 0;
done:
    cJSON_Delete(root);
    return rc;
}
