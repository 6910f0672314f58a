/* spx_tok_json_pipe.c: the pipeline parts of a tokenizer.json: normalizer, pre_tokenizer,
 * post_processor and decoder (see spx_tok_json.c for the supported types). */
#include <stdlib.h>
#include <string.h>

#include "spx_tok_json.h"

/* ---- normalizers ---- */

int spx_tok_parse_normalizer(spx_ctx *ctx, spx_tokenizer *t, const cJSON *n, const char *label, int depth)
{
    int rc = 0;
    if (!n || cJSON_IsNull(n))
        goto done;
    const char *type = spx_tok_jstring(n, "type");
    if (!type || depth > 8)
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: normalizer without a \"type\" string", label);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = spx_tok_jget(n, "normalizers"), *it;
        if (!cJSON_IsArray(list))
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: normalizer Sequence without a \"normalizers\" array", label);
        cJSON_ArrayForEach(it, list) SPX_TRY(rc, spx_tok_parse_normalizer(ctx, t, it, label, depth + 1));
        goto done;
    }
    if (strcmp(type, "NFC") == 0)
        goto done;   /* documented limit: identity */
    spx_tok_norm nm = {0, NULL, 0, NULL, 0};
    if (strcmp(type, "Prepend") == 0) {
        const char *p = spx_tok_jstring(n, "prepend");
        if (!p)
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: normalizer Prepend without a \"prepend\" string", label);
        nm.kind = SPX_NORM_PREPEND;
        nm.a = spx_tok_strdup(p, &nm.alen);
    } else if (strcmp(type, "Replace") == 0) {
        const cJSON *pat = spx_tok_jget(n, "pattern");
        const char *ps = spx_tok_jstring(pat, "String"), *content = spx_tok_jstring(n, "content");
        if (spx_tok_jget(pat, "Regex"))
            SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: normalizer Replace with a Regex pattern is not supported", label);
        if (!ps || !*ps || !content)
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER,
                     "%s: normalizer Replace needs a non-empty pattern.String and a content string", label);
        nm.kind = SPX_NORM_REPLACE;
        nm.a = spx_tok_strdup(ps, &nm.alen);
        nm.b = spx_tok_strdup(content, &nm.blen);
        if (!nm.b) {
            free(nm.a);
            nm.a = NULL;
        }
    } else {
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: normalizer type \"%s\" is not supported", label, type);
    }
    if (!nm.a)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    spx_tok_norm *p = realloc(t->norms, (t->n_norms + 1) * sizeof(*p));
    if (!p) {
        free(nm.a);
        free(nm.b);
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    }
    t->norms = p;
    t->norms[t->n_norms++] = nm;
done:
    return rc;
}

/* ---- pre-tokenizers ---- */

static int parse_prepend_scheme(const cJSON *o, int *out)
{
    const char *ps = spx_tok_jstring(o, "prepend_scheme");
    if (ps) {
        if (strcmp(ps, "always") == 0)
            *out = SPX_PREPEND_ALWAYS;
        else if (strcmp(ps, "first") == 0)
            *out = SPX_PREPEND_FIRST;
        else if (strcmp(ps, "never") == 0)
            *out = SPX_PREPEND_NEVER;
        else
            return -1;
        return 0;
    }
    *out = spx_tok_jbool(o, "add_prefix_space", 1) ? SPX_PREPEND_ALWAYS : SPX_PREPEND_NEVER;
    return 0;
}

static int parse_replacement(const cJSON *o, char *rep, size_t *rep_len)
{
    const char *r = spx_tok_jstring(o, "replacement");
    if (!r)
        r = "\xE2\x96\x81";
    size_t n = strlen(r);
    uint32_t cp;
    if (n == 0 || n > 4 || spx_utf8_next((const unsigned char *)r, n, &cp) != n || cp == 0xFFFFFFFFu)
        return -1;
    memcpy(rep, r, n);
    rep[n] = 0;
    *rep_len = n;
    return 0;
}

int spx_tok_parse_pre_tokenizer(spx_ctx *ctx, spx_tokenizer *t, const cJSON *n, const char *label, int depth)
{
    int rc = 0;
    if (!n || cJSON_IsNull(n))
        goto done;
    const char *type = spx_tok_jstring(n, "type");
    if (!type || depth > 8)
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: pre_tokenizer without a \"type\" string", label);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = spx_tok_jget(n, "pretokenizers"), *it;
        if (!cJSON_IsArray(list))
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: pre_tokenizer Sequence without a \"pretokenizers\" array", label);
        cJSON_ArrayForEach(it, list) SPX_TRY(rc, spx_tok_parse_pre_tokenizer(ctx, t, it, label, depth + 1));
        goto done;
    }
    spx_tok_pre p;
    memset(&p, 0, sizeof(p));
    if (strcmp(type, "Metaspace") == 0) {
        p.kind = SPX_PRE_METASPACE;
        if (parse_replacement(n, p.rep, &p.rep_len) < 0)
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: pre_tokenizer Metaspace: replacement must be one character", label);
        if (parse_prepend_scheme(n, &p.prepend) < 0)
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: pre_tokenizer Metaspace: unknown prepend_scheme", label);
        p.split = spx_tok_jbool(n, "split", 1);
    } else if (strcmp(type, "ByteLevel") == 0) {
        p.kind = SPX_PRE_BYTELEVEL;
        p.add_prefix_space = spx_tok_jbool(n, "add_prefix_space", 1);
        p.use_regex = spx_tok_jbool(n, "use_regex", 1);
    } else if (strcmp(type, "Digits") == 0) {
        p.kind = SPX_PRE_DIGITS;
        p.individual = spx_tok_jbool(n, "individual_digits", 0);
    } else {
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: pre_tokenizer type \"%s\" is not supported", label, type);
    }
    spx_tok_pre *np = realloc(t->pres, (t->n_pres + 1) * sizeof(*np));
    if (!np)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    t->pres = np;
    t->pres[t->n_pres++] = p;
done:
    return rc;
}

/* ---- decoders ---- */

static int add_dec_replace(spx_ctx *ctx, spx_tokenizer *t, const char *from, const char *to)
{
    int rc = 0;
    spx_tok_replace r;
    r.from = spx_tok_strdup(from, &r.from_len);
    r.to = spx_tok_strdup(to, &r.to_len);
    spx_tok_replace *p = (r.from && r.to) ? realloc(t->dec_replace, (t->n_dec_replace + 1) * sizeof(*p)) : NULL;
    if (!p) {
        free(r.from);
        free(r.to);
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    }
    t->dec_replace = p;
    t->dec_replace[t->n_dec_replace++] = r;
done:
    return rc;
}

int spx_tok_parse_decoder(spx_ctx *ctx, spx_tokenizer *t, const cJSON *n, const char *label, int depth)
{
    int rc = 0;
    if (!n || cJSON_IsNull(n))
        goto done;
    const char *type = spx_tok_jstring(n, "type");
    if (!type || depth > 8)
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: decoder without a \"type\" string", label);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = spx_tok_jget(n, "decoders"), *it;
        if (!cJSON_IsArray(list))
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: decoder Sequence without a \"decoders\" array", label);
        cJSON_ArrayForEach(it, list) SPX_TRY(rc, spx_tok_parse_decoder(ctx, t, it, label, depth + 1));
    } else if (strcmp(type, "Replace") == 0) {
        const char *ps = spx_tok_jstring(spx_tok_jget(n, "pattern"), "String"), *content = spx_tok_jstring(n, "content");
        if (!ps || !*ps || !content)
            SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED,
                     "%s: decoder Replace is supported with a non-empty String pattern only", label);
        SPX_TRY(rc, add_dec_replace(ctx, t, ps, content));
    } else if (strcmp(type, "ByteFallback") == 0) {
        t->dec_byte_fallback = 1;
    } else if (strcmp(type, "Fuse") == 0) {
        /* pieces are concatenated anyway */
    } else if (strcmp(type, "Strip") == 0) {
        const char *c = spx_tok_jstring(n, "content");
        const cJSON *start = spx_tok_jget(n, "start"), *stop = spx_tok_jget(n, "stop");
        if (!c || strlen(c) == 0 || strlen(c) > 4 || !cJSON_IsNumber(start) || start->valuedouble < 0 ||
            start->valuedouble > 64)
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: decoder Strip needs a one-character content and a start count", label);
        if (cJSON_IsNumber(stop) && stop->valuedouble != 0)
            SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: decoder Strip with stop > 0 is not supported", label);
        t->dec_strip_len = strlen(c);
        memcpy(t->dec_strip, c, t->dec_strip_len);
        t->dec_strip_n = (size_t)start->valuedouble;
    } else if (strcmp(type, "Metaspace") == 0) {
        char rep[8];
        size_t rl;
        int scheme;
        if (parse_replacement(n, rep, &rl) < 0 || parse_prepend_scheme(n, &scheme) < 0)
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: decoder Metaspace: bad replacement or prepend_scheme", label);
        SPX_TRY(rc, add_dec_replace(ctx, t, rep, " "));
        if (scheme != SPX_PREPEND_NEVER) {
            t->dec_strip[0] = ' ';
            t->dec_strip_len = 1;
            t->dec_strip_n = 1;
        }
    } else if (strcmp(type, "ByteLevel") == 0) {
        t->dec_bytelevel = 1;
    } else {
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: decoder type \"%s\" is not supported", label, type);
    }
done:
    return rc;
}

/* ---- post-processors ---- */

static int push_id(spx_ctx *ctx, uint32_t **arr, size_t *n, uint32_t id)
{
    size_t cap = *n;   /* grow one at a time: these lists hold a handful of ids */
    return spx_tok_push(ctx, arr, n, &cap, id);
}

static int parse_template(spx_ctx *ctx, spx_tokenizer *t, const cJSON *n, const char *label)
{
    int rc = 0;
    const cJSON *single = spx_tok_jget(n, "single"), *specials = spx_tok_jget(n, "special_tokens"), *it;
    int seen_seq = 0;
    if (!cJSON_IsArray(single))
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: post_processor TemplateProcessing without a \"single\" array", label);
    cJSON_ArrayForEach(it, single) {
        const cJSON *st = spx_tok_jget(it, "SpecialToken");
        if (spx_tok_jget(it, "Sequence")) {
            seen_seq = 1;
            continue;
        }
        const char *name = spx_tok_jstring(st, "id");
        if (!name)
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: post_processor template piece is neither Sequence nor SpecialToken", label);
        const cJSON *ids = spx_tok_jget(spx_tok_jget(specials, name), "ids"), *idv;
        if (!cJSON_IsArray(ids))
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: post_processor special token \"%s\" has no \"ids\" array", label, name);
        cJSON_ArrayForEach(idv, ids) {
            int64_t id = spx_tok_jid(idv);
            if (id < 0)
                SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: post_processor special token \"%s\": bad id", label, name);
            if (seen_seq)
                SPX_TRY(rc, push_id(ctx, &t->suffix, &t->n_suffix, (uint32_t)id));
            else
                SPX_TRY(rc, push_id(ctx, &t->prefix, &t->n_prefix, (uint32_t)id));
        }
    }
done:
    return rc;
}

int spx_tok_parse_post_processor(spx_ctx *ctx, spx_tokenizer *t, const cJSON *n, const char *label, int depth)
{
    int rc = 0;
    if (!n || cJSON_IsNull(n))
        goto done;
    const char *type = spx_tok_jstring(n, "type");
    if (!type || depth > 8)
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: post_processor without a \"type\" string", label);
    if (strcmp(type, "Sequence") == 0) {
        const cJSON *list = spx_tok_jget(n, "processors"), *it;
        if (!cJSON_IsArray(list))
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: post_processor Sequence without a \"processors\" array", label);
        cJSON_ArrayForEach(it, list) SPX_TRY(rc, spx_tok_parse_post_processor(ctx, t, it, label, depth + 1));
    } else if (strcmp(type, "TemplateProcessing") == 0) {
        SPX_TRY(rc, parse_template(ctx, t, n, label));
    } else if (strcmp(type, "ByteLevel") == 0) {
        /* offsets only */
    } else if (strcmp(type, "RobertaProcessing") == 0 || strcmp(type, "BertProcessing") == 0) {
        int64_t cls = spx_tok_jid(cJSON_GetArrayItem(spx_tok_jget(n, "cls"), 1)), sep = spx_tok_jid(cJSON_GetArrayItem(spx_tok_jget(n, "sep"), 1));
        if (cls < 0 || sep < 0)
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "%s: post_processor %s needs cls and sep [token, id] pairs", label, type);
        SPX_TRY(rc, push_id(ctx, &t->prefix, &t->n_prefix, (uint32_t)cls));
        SPX_TRY(rc, push_id(ctx, &t->suffix, &t->n_suffix, (uint32_t)sep));
    } else {
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: post_processor type \"%s\" is not supported", label, type);
    }
done:
    return rc;
}
