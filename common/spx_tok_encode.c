/* spx_tok_encode.c: the encode pipeline (spx_tokenizer_encode).
 *
 * HF pipeline (as the `tokenizers` crate runs it for one sequence):
 *   1. added tokens are matched verbatim in the raw text (leftmost, longest first) and become
 *      their ids; lstrip/rstrip swallow adjacent whitespace; single_word needs word boundaries.
 *      (Tokens with normalized=true are matched in the raw text as well: a documented limit.)
 *   2. every other segment is normalized (Prepend, Replace) on its own,
 *   3. pre-tokenized into words (Metaspace, ByteLevel, Digits, in order, each on every split),
 *   4. each word goes through the BPE model (spx_tok_bpe.c).
 *   5. the post-processor's special tokens are put around the result.
 * llama2.c pipeline: spx_spm_encode over the whole text (spx_tok_llama2c.c). */
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_tok_internal.h"

/* ---- growable list of pre-tokenized splits ---- */
typedef struct splits {
    char *buf;
    size_t len, cap;
    size_t *end;    /* split i is buf[i ? end[i-1] : 0 .. end[i]) */
    size_t n, ncap;
} splits;

static void splits_free(splits *s)
{
    free(s->buf);
    free(s->end);
    memset(s, 0, sizeof(*s));
}

static int splits_bytes(spx_ctx *ctx, splits *s, const void *p, size_t n)
{
    int rc = 0;
    if (s->len + n > s->cap) {
        size_t c = s->cap ? s->cap : 256;
        while (c < s->len + n) {
            if (spx_ckd_mul_size(c, 2, &c))
                SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "tokenizer buffer size overflow");
        }
        char *b = realloc(s->buf, c);
        if (!b)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory (%zu bytes of tokenizer buffer)", c);
        s->buf = b;
        s->cap = c;
    }
    if (n)
        memcpy(s->buf + s->len, p, n);
    s->len += n;
done:
    return rc;
}

/* close the split being written (empty splits are dropped) */
static int splits_close(spx_ctx *ctx, splits *s)
{
    int rc = 0;
    size_t start = s->n ? s->end[s->n - 1] : 0;
    if (s->len == start)
        goto done;
    if (s->n == s->ncap) {
        size_t c = s->ncap ? s->ncap * 2 : 64;
        size_t *e = realloc(s->end, c * sizeof(size_t));
        if (!e)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
        s->end = e;
        s->ncap = c;
    }
    s->end[s->n++] = s->len;
done:
    return rc;
}

static void splits_reset(splits *s)
{
    s->len = 0;
    s->n = 0;
}

/* ---- pre-tokenizer stages: in -> out ---- */

static int pre_metaspace(spx_ctx *ctx, const spx_tok_pre *p, const splits *in, splits *out, int seg_at_start)
{
    int rc = 0;
    for (size_t k = 0; k < in->n; k++) {
        const char *s = in->buf + (k ? in->end[k - 1] : 0);
        size_t n = in->end[k] - (size_t)(s - in->buf);
        size_t piece_start = out->len;   /* start of the split being written */
        /* HF replaces ' ' first, then prepends unless the text starts with the replacement */
        int starts_rep = s[0] == ' ' || (n >= p->rep_len && memcmp(s, p->rep, p->rep_len) == 0);
        int first = seg_at_start && k == 0;
        if (!starts_rep && (p->prepend == SPX_PREPEND_ALWAYS || (p->prepend == SPX_PREPEND_FIRST && first)))
            SPX_TRY(rc, splits_bytes(ctx, out, p->rep, p->rep_len));
        for (size_t i = 0; i < n; i++) {
            int is_rep = s[i] == ' ';
            if (!is_rep && p->rep_len <= n - i && memcmp(s + i, p->rep, p->rep_len) == 0)
                is_rep = 2;
            /* MergedWithNext: a replacement character starts a new split */
            if (is_rep && p->split && out->len > piece_start) {
                SPX_TRY(rc, splits_close(ctx, out));
                piece_start = out->len;
            }
            if (is_rep == 1) {
                SPX_TRY(rc, splits_bytes(ctx, out, p->rep, p->rep_len));
            } else if (is_rep == 2) {
                SPX_TRY(rc, splits_bytes(ctx, out, s + i, p->rep_len));
                i += p->rep_len - 1;
            } else {
                SPX_TRY(rc, splits_bytes(ctx, out, s + i, 1));
            }
        }
        SPX_TRY(rc, splits_close(ctx, out));
    }
done:
    return rc;
}

static int bytelevel_put(spx_ctx *ctx, splits *out, const unsigned char *s, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char u[4];
        size_t l = spx_utf8_put(spx_bytelevel_cp(s[i]), u);
        SPX_TRY(rc, splits_bytes(ctx, out, u, l));
    }
    SPX_TRY(rc, splits_close(ctx, out));
done:
    return rc;
}

static int pre_bytelevel(spx_ctx *ctx, const spx_tok_pre *p, const splits *in, splits *out, char **tmp,
                         size_t *tmp_cap)
{
    int rc = 0;
    for (size_t k = 0; k < in->n; k++) {
        const char *s0 = in->buf + (k ? in->end[k - 1] : 0);
        size_t n = in->end[k] - (size_t)(s0 - in->buf);
        const unsigned char *s = (const unsigned char *)s0;
        if (p->add_prefix_space && s[0] != ' ') {
            if (n + 1 > *tmp_cap) {
                char *t = realloc(*tmp, n + 1);
                if (!t)
                    SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
                *tmp = t;
                *tmp_cap = n + 1;
            }
            (*tmp)[0] = ' ';
            memcpy(*tmp + 1, s0, n);
            s = (const unsigned char *)*tmp;
            n++;
        }
        if (!p->use_regex) {
            SPX_TRY(rc, bytelevel_put(ctx, out, s, n));
            continue;
        }
        for (size_t i = 0; i < n;) {
            size_t e = spx_gpt2_match(s, n, i);
            SPX_TRY(rc, bytelevel_put(ctx, out, s + i, e - i));
            i = e;
        }
    }
done:
    return rc;
}

static int pre_digits(spx_ctx *ctx, const spx_tok_pre *p, const splits *in, splits *out)
{
    int rc = 0;
    for (size_t k = 0; k < in->n; k++) {
        const char *s = in->buf + (k ? in->end[k - 1] : 0);
        size_t n = in->end[k] - (size_t)(s - in->buf);
        int prev_num = -1;
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            size_t l = spx_utf8_next((const unsigned char *)s + i, n - i, &cp);
            int num = cp != 0xFFFFFFFFu && spx_uni_is_number(cp);
            if (prev_num >= 0 && (num != prev_num || (num && p->individual)))
                SPX_TRY(rc, splits_close(ctx, out));
            SPX_TRY(rc, splits_bytes(ctx, out, s + i, l));
            prev_num = num;
            i += l;
        }
        SPX_TRY(rc, splits_close(ctx, out));
    }
done:
    return rc;
}

/* ---- encode ---- */

typedef struct enc_state {
    splits a, b;
    char *tmp;
    size_t tmp_cap;
    spx_tok_work work;
} enc_state;

static void enc_state_free(enc_state *e)
{
    splits_free(&e->a);
    splits_free(&e->b);
    free(e->tmp);
    spx_tok_work_free(&e->work);
}

/* normalize s into e->a as a single split */
static int normalize(spx_ctx *ctx, const spx_tokenizer *t, enc_state *e, const char *s, size_t n)
{
    int rc = 0;
    splits_reset(&e->a);
    SPX_TRY(rc, splits_bytes(ctx, &e->a, s, n));
    for (size_t k = 0; k < t->n_norms; k++) {
        const spx_tok_norm *nm = &t->norms[k];
        splits_reset(&e->b);
        if (nm->kind == SPX_NORM_PREPEND) {
            if (e->a.len == 0)
                continue;
            SPX_TRY(rc, splits_bytes(ctx, &e->b, nm->a, nm->alen));
            SPX_TRY(rc, splits_bytes(ctx, &e->b, e->a.buf, e->a.len));
        } else {
            for (size_t i = 0; i < e->a.len;) {
                if (nm->alen <= e->a.len - i && memcmp(e->a.buf + i, nm->a, nm->alen) == 0) {
                    SPX_TRY(rc, splits_bytes(ctx, &e->b, nm->b, nm->blen));
                    i += nm->alen;
                } else {
                    SPX_TRY(rc, splits_bytes(ctx, &e->b, e->a.buf + i, 1));
                    i++;
                }
            }
        }
        splits tmp = e->a;
        e->a = e->b;
        e->b = tmp;
    }
    SPX_TRY(rc, splits_close(ctx, &e->a));
done:
    return rc;
}

static int encode_segment(spx_ctx *ctx, const spx_tokenizer *t, enc_state *e, const char *s, size_t n,
                          int seg_at_start, uint32_t **ids, size_t *nids, size_t *cap)
{
    int rc = 0;
    SPX_TRY(rc, normalize(ctx, t, e, s, n));
    for (size_t k = 0; k < t->n_pres; k++) {
        const spx_tok_pre *p = &t->pres[k];
        splits_reset(&e->b);
        if (p->kind == SPX_PRE_METASPACE)
            SPX_TRY(rc, pre_metaspace(ctx, p, &e->a, &e->b, seg_at_start));
        else if (p->kind == SPX_PRE_BYTELEVEL)
            SPX_TRY(rc, pre_bytelevel(ctx, p, &e->a, &e->b, &e->tmp, &e->tmp_cap));
        else
            SPX_TRY(rc, pre_digits(ctx, p, &e->a, &e->b));
        splits tmp = e->a;
        e->a = e->b;
        e->b = tmp;
    }
    for (size_t k = 0; k < e->a.n; k++) {
        size_t start = k ? e->a.end[k - 1] : 0;
        SPX_TRY(rc, spx_bpe_encode_word(ctx, &t->bpe, &e->work, e->a.buf + start, e->a.end[k] - start, ids,
                                        nids, cap));
    }
done:
    return rc;
}

static int is_ws(unsigned char c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0D);
}

static int is_word_byte(const char *s, size_t n, size_t i)
{
    uint32_t cp;
    spx_utf8_next((const unsigned char *)s + i, n - i, &cp);
    return cp == '_' || (cp != 0xFFFFFFFFu && (spx_uni_is_letter(cp) || spx_uni_is_number(cp)));
}

/* the added token matching at text[i], or NULL */
static const spx_tok_added *match_added(const spx_tokenizer *t, const char *text, size_t len, size_t i)
{
    for (size_t k = 0; k < t->n_added; k++) {
        const spx_tok_added *a = &t->added[k];
        if (a->len > len - i || text[i] != a->content[0] || memcmp(text + i, a->content, a->len) != 0)
            continue;
        if (a->single_word) {
            /* approximate word boundary: the characters around are not letters/digits/_ */
            if (i > 0) {
                size_t p = i - 1;
                while (p > 0 && ((unsigned char)text[p] & 0xC0) == 0x80)
                    p--;
                if (is_word_byte(text, len, p))
                    continue;
            }
            if (i + a->len < len && is_word_byte(text, len, i + a->len))
                continue;
        }
        return a;
    }
    return NULL;
}

static int encode_hf(spx_ctx *ctx, const spx_tokenizer *t, const char *text, size_t len, uint32_t **ids,
                     size_t *n, size_t *cap)
{
    int rc = 0;
    enc_state e;
    memset(&e, 0, sizeof(e));
    size_t seg = 0;   /* start of the pending plain-text segment */
    uint8_t first[256] = {0};   /* bytes that start some added token */
    for (size_t k = 0; k < t->n_added; k++)
        first[(unsigned char)t->added[k].content[0]] = 1;
    for (size_t i = 0; i < len;) {
        const spx_tok_added *a = first[(unsigned char)text[i]] ? match_added(t, text, len, i) : NULL;
        if (!a) {
            i++;
            continue;
        }
        size_t seg_end = i, next = i + a->len;
        if (a->lstrip)
            while (seg_end > seg && is_ws((unsigned char)text[seg_end - 1]))
                seg_end--;
        if (a->rstrip)
            while (next < len && is_ws((unsigned char)text[next]))
                next++;
        SPX_TRY(rc, encode_segment(ctx, t, &e, text + seg, seg_end - seg, seg == 0, ids, n, cap));
        SPX_TRY(rc, spx_tok_push(ctx, ids, n, cap, a->id));
        seg = i = next;
    }
    SPX_TRY(rc, encode_segment(ctx, t, &e, text + seg, len - seg, seg == 0, ids, n, cap));
done:
    enc_state_free(&e);
    return rc;
}

int spx_tokenizer_encode(spx_ctx *ctx, const spx_tokenizer *tok, const char *text, size_t len, int add_bos,
                         uint32_t **ids, size_t *n)
{
    int rc = 0;
    uint32_t *out = NULL;
    size_t cnt = 0, cap = 0;
    spx_tok_work w;
    memset(&w, 0, sizeof(w));
    *ids = NULL;
    *n = 0;
    if (!tok || (!text && len))
        SPX_FAIL(ctx, rc, SPX_E_ARG, "spx_tokenizer_encode: NULL tokenizer or text");
    if (add_bos < -1 || add_bos > 1)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "spx_tokenizer_encode: add_bos must be -1, 0 or 1 (got %d)", add_bos);
    SPX_TRY(rc, spx_tok_push(ctx, &out, &cnt, &cap, 0));   /* *ids is non-NULL even for 0 ids */
    cnt = 0;
    int want_bos = add_bos == 1 || (add_bos == -1 && tok->default_add_bos);
    if (want_bos) {
        if (tok->n_prefix) {
            for (size_t i = 0; i < tok->n_prefix; i++)
                SPX_TRY(rc, spx_tok_push(ctx, &out, &cnt, &cap, tok->prefix[i]));
        } else if (tok->bos_id >= 0) {
            SPX_TRY(rc, spx_tok_push(ctx, &out, &cnt, &cap, (uint32_t)tok->bos_id));
        } else {
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "BOS requested but the tokenizer has no BOS token");
        }
    }
    if (tok->kind == SPX_TOK_KIND_SPM)
        SPX_TRY(rc, spx_spm_encode(ctx, &tok->spm, &w, text, len, &out, &cnt, &cap));
    else
        SPX_TRY(rc, encode_hf(ctx, tok, text, len, &out, &cnt, &cap));
    if (add_bos == -1)
        for (size_t i = 0; i < tok->n_suffix; i++)
            SPX_TRY(rc, spx_tok_push(ctx, &out, &cnt, &cap, tok->suffix[i]));
    *ids = out;
    *n = cnt;
    out = NULL;
done:
    spx_tok_work_free(&w);
    free(out);
    return rc;
}
