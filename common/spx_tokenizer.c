/* spx_tokenizer.c: tokenizer objects (load, free, accessors) and streaming decode. */
#include <stdlib.h>
#include <string.h>

#include "spx_tok_internal.h"

void spx_tokenizer_free(spx_tokenizer *t)
{
    if (!t)
        return;
    if (t->kind == SPX_TOK_KIND_SPM) {
        spx_spm_free(&t->spm);
    } else {
        if (t->model_pieces)
            for (uint32_t i = 0; i < t->n_vocab; i++)
                free(t->model_pieces[i]);
        free(t->model_pieces);
        free(t->model_lens);
        free((void *)t->pieces);
        free(t->piece_lens);
    }
    spx_tok_map_free(&t->bpe.vocab);
    spx_tok_pairmap_free(&t->bpe.merges);
    for (size_t i = 0; i < t->n_norms; i++) {
        free(t->norms[i].a);
        free(t->norms[i].b);
    }
    free(t->norms);
    free(t->pres);
    for (size_t i = 0; i < t->n_added; i++)
        free(t->added[i].content);
    free(t->added);
    free(t->prefix);
    free(t->suffix);
    for (size_t i = 0; i < t->n_dec_replace; i++) {
        free(t->dec_replace[i].from);
        free(t->dec_replace[i].to);
    }
    free(t->dec_replace);
    free(t->special);
    free(t);
}

int spx_tokenizer_load_json(spx_ctx *ctx, const char *json, size_t len, const char *label, spx_tokenizer **out)
{
    int rc = 0;
    spx_tokenizer *t = NULL;
    *out = NULL;
    if (!label)
        label = "tokenizer.json";
    if (!json)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: NULL JSON text", label);
    t = calloc(1, sizeof(*t));
    if (!t)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    t->kind = SPX_TOK_KIND_HF;
    t->bos_id = t->eos_id = -1;
    SPX_TRY(rc, spx_tok_json_parse(ctx, t, json, len, label));
    *out = t;
    t = NULL;
done:
    spx_tokenizer_free(t);
    return rc;
}

int spx_tokenizer_load_file(spx_ctx *ctx, const char *path, spx_tokenizer **out)
{
    int rc = 0;
    unsigned char *buf = NULL;
    size_t len = 0, i = 0;
    *out = NULL;
    SPX_TRY(rc, spx_tok_read_file(ctx, path, &buf, &len));
    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
        i++;
    if (i == len || buf[i] != '{')
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER,
                 "%s: not a tokenizer.json (byte offset %zu is not '{'); a llama2.c tokenizer .bin needs "
                 "the checkpoint's vocabulary size", path, i);
    SPX_TRY(rc, spx_tokenizer_load_json(ctx, (const char *)buf, len, path, out));
done:
    free(buf);
    return rc;
}

int spx_tokenizer_from_vocab(spx_ctx *ctx, spx_vocab **vocab, int bos_id, int eos_id, spx_tokenizer **out)
{
    int rc = 0;
    spx_tokenizer *t = NULL;
    spx_vocab *v = vocab ? *vocab : NULL;
    *out = NULL;
    if (vocab)
        *vocab = NULL;
    if (!v || v->n == 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "spx_tokenizer_from_vocab: empty vocabulary");
    if (bos_id >= (int64_t)v->n || eos_id >= (int64_t)v->n || bos_id < -1 || eos_id < -1)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "BOS %d / EOS %d outside the %u-piece vocabulary", bos_id, eos_id, v->n);
    t = calloc(1, sizeof(*t));
    if (!t)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    t->kind = SPX_TOK_KIND_SPM;
    t->special = calloc(v->n, 1);
    if (!t->special)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    SPX_TRY(rc, spx_spm_init(ctx, &t->spm, v));
    v = NULL;   /* owned by t->spm now */
    t->n_vocab = t->spm.vocab->n;
    t->pieces = (const char **)t->spm.vocab->pieces;
    t->piece_lens = t->spm.vocab->lens;
    t->bos_id = bos_id;
    t->eos_id = eos_id;
    t->default_add_bos = bos_id >= 0;
    if (bos_id >= 0)
        t->special[bos_id] = 1;
    if (eos_id >= 0)
        t->special[eos_id] = 1;
    *out = t;
    t = NULL;
done:
    spx_vocab_free(v);
    spx_tokenizer_free(t);
    return rc;
}

uint32_t spx_tokenizer_vocab_size(const spx_tokenizer *tok)
{
    return tok ? tok->n_vocab : 0;
}

int spx_tokenizer_bos_id(const spx_tokenizer *tok)
{
    return tok ? tok->bos_id : -1;
}

int spx_tokenizer_eos_id(const spx_tokenizer *tok)
{
    return tok ? tok->eos_id : -1;
}

int spx_tokenizer_piece_id(const spx_tokenizer *tok, const char *piece, size_t len)
{
    if (!tok || !piece)
        return -1;
    if (tok->kind == SPX_TOK_KIND_SPM)
        return (int)spx_tok_map_get(&tok->spm.map, piece, len);
    for (size_t i = 0; i < tok->n_added; i++)
        if (tok->added[i].len == len && memcmp(tok->added[i].content, piece, len) == 0)
            return (int)tok->added[i].id;
    return (int)spx_tok_map_get(&tok->bpe.vocab, piece, len);
}

/* ---- decode ---- */

/* byte value of a "<0xXX>" piece, else -1 */
static int byte_piece(const char *p, size_t n)
{
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>')
        return -1;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = p[i];
        int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10
              : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* output with snprintf semantics and a leading-strip budget */
typedef struct sink {
    char *buf;
    size_t cap, total;
    const char *strip;   /* unit to drop while `budget` > 0 and nothing was emitted yet */
    size_t strip_len, budget;
} sink;

static void emit(sink *s, const void *p, size_t n)
{
    if (s->budget && n == s->strip_len && memcmp(p, s->strip, n) == 0) {
        s->budget--;
        return;
    }
    s->budget = 0;
    for (size_t i = 0; i < n; i++, s->total++)
        if (s->total + 1 < s->cap)
            s->buf[s->total] = ((const char *)p)[i];
}

int spx_tokenizer_decode(const spx_tokenizer *tok, int prev_id, uint32_t id, char *buf, size_t cap)
{
    if (!tok || id >= tok->n_vocab || !tok->pieces[id] || (cap && !buf))
        return SPX_E_ARG;
    const char *p = tok->pieces[id];
    size_t n = tok->piece_lens[id];
    int at_start = prev_id < 0 || prev_id == tok->bos_id;
    sink s = {buf, cap, 0, NULL, 0, 0};
    if (tok->special[id])
        goto done;
    if (tok->kind == SPX_TOK_KIND_SPM) {
        /* llama2.c: <0xXX> pieces are raw bytes; the space after BOS is dropped */
        int b = byte_piece(p, n);
        if (b >= 0) {
            unsigned char c = (unsigned char)b;
            emit(&s, &c, 1);
            goto done;
        }
        if (at_start) {
            s.strip = " ";
            s.strip_len = 1;
            s.budget = 1;
        }
        for (size_t i = 0; i < n; i++)
            emit(&s, p + i, 1);
        goto done;
    }
    if (tok->dec_byte_fallback) {
        int b = byte_piece(p, n);
        if (b >= 0) {
            unsigned char c = (unsigned char)b;
            emit(&s, &c, 1);
            goto done;
        }
    }
    if (at_start && tok->dec_strip_n) {
        s.strip = tok->dec_strip;
        s.strip_len = tok->dec_strip_len;
        s.budget = tok->dec_strip_n;
    }
    /* one pass: at each position the first matching Replace wins (real decoders have one),
     * else the byte-level character is unmapped, else the character is copied */
    for (size_t i = 0; i < n;) {
        size_t k;
        for (k = 0; k < tok->n_dec_replace; k++) {
            const spx_tok_replace *r = &tok->dec_replace[k];
            if (r->from_len <= n - i && memcmp(p + i, r->from, r->from_len) == 0)
                break;
        }
        if (k < tok->n_dec_replace) {
            emit(&s, tok->dec_replace[k].to, tok->dec_replace[k].to_len);
            i += tok->dec_replace[k].from_len;
            continue;
        }
        uint32_t cp;
        size_t l = spx_utf8_next((const unsigned char *)p + i, n - i, &cp);
        int b = tok->dec_bytelevel && cp != 0xFFFFFFFFu ? spx_bytelevel_byte(cp) : -1;
        if (b >= 0) {
            unsigned char c = (unsigned char)b;
            emit(&s, &c, 1);
        } else {
            emit(&s, p + i, l);
        }
        i += l;
    }
done:
    if (cap)
        buf[s.total < cap ? s.total : cap - 1] = 0;
    return s.total > (size_t)INT32_MAX ? SPX_E_OVERFLOW : (int)s.total;
}

int spx_tokenizer_decode_all(spx_ctx *ctx, const spx_tokenizer *tok, const uint32_t *ids, size_t n, char **text,
                             size_t *len)
{
    int rc = 0;
    size_t cap = 256, used = 0;
    char *out = malloc(cap);
    *text = NULL;
    *len = 0;
    if (!out)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int prev = i ? (int)ids[i - 1] : -1;
        int k = spx_tokenizer_decode(tok, prev, ids[i], out + used, cap - used);
        if (k < 0)
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "cannot decode token %zu (id %u, vocabulary %u)", i, ids[i],
                     spx_tokenizer_vocab_size(tok));
        if ((size_t)k >= cap - used) {
            while ((size_t)k >= cap - used)
                cap *= 2;
            char *p = realloc(out, cap);
            if (!p)
                SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory decoding %zu tokens", n);
            out = p;
            k = spx_tokenizer_decode(tok, prev, ids[i], out + used, cap - used);
        }
        used += (size_t)k;
    }
    out[used] = 0;
    *text = out;
    *len = used;
    out = NULL;
done:
    free(out);
    return rc;
}
