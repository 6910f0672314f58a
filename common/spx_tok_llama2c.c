/* spx_tok_llama2c.c: llama2.c tokenizer .bin files and llama2.c's score-driven encoder.
 *
 * File layout (little endian):
 *   offset 0   u32  max_token_length
 *   then n_vocab records: f32 score, i32 len (>= 0), len bytes of piece (no NUL)
 * n_vocab is not stored: it comes from the checkpoint header.
 *
 * Encoder (llama2.c `encode`): a dummy-prefix " " token when the text is non-empty, then one
 * token per UTF-8 group (lead byte + up to 3 continuation bytes) or byte fallback (<0xXX>,
 * which llama2.c writes as byte + 3), then repeatedly the adjacent pair whose concatenated piece
 * is in the vocabulary with the highest score (leftmost on ties; only scores > -1e10) is merged.
 * Here the "repeatedly pick the global best" loop is a max-heap keyed by (score, position of the
 * left symbol): positions keep their order through merges, so popping the heap visits merges in
 * exactly llama2.c's order, in O(n log n) instead of O(n^2). */
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_tok_internal.h"

/* llama2.c initialises best_score to -1e10 and requires a strictly greater score. */
#define SPX_SPM_MIN_SCORE (-1e10f)

void spx_vocab_free(spx_vocab *v)
{
    if (!v)
        return;
    if (v->pieces) {
        for (uint32_t i = 0; i < v->n; i++)
            free(v->pieces[i]);
    }
    free(v->pieces);
    free(v->lens);
    free(v->scores);
    free(v);
}

static int vocab_alloc(spx_ctx *ctx, uint32_t n, spx_vocab **out)
{
    int rc = 0;
    spx_vocab *v = calloc(1, sizeof(*v));
    if (!v)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory allocating a %u-piece vocabulary", n);
    v->n = n;
    v->pieces = calloc(n ? n : 1, sizeof(*v->pieces));
    v->lens = calloc(n ? n : 1, sizeof(*v->lens));
    v->scores = calloc(n ? n : 1, sizeof(*v->scores));
    if (!v->pieces || !v->lens || !v->scores)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory allocating a %u-piece vocabulary", n);
    *out = v;
    v = NULL;
done:
    spx_vocab_free(v);
    return rc;
}

static char *dup_bytes(const void *p, size_t n)
{
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = 0;
    return s;
}

int spx_vocab_create(spx_ctx *ctx, uint32_t n, const char *const *pieces, const uint32_t *lens,
                     const float *scores, spx_vocab **out)
{
    int rc = 0;
    spx_vocab *v = NULL;
    *out = NULL;
    SPX_TRY(rc, vocab_alloc(ctx, n, &v));
    for (uint32_t i = 0; i < n; i++) {
        v->pieces[i] = dup_bytes(pieces[i], lens[i]);
        if (!v->pieces[i])
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory copying vocabulary piece %u", i);
        v->lens[i] = lens[i];
        v->scores[i] = scores ? scores[i] : 0.0f;
        if (lens[i] > v->max_len)
            v->max_len = lens[i];
    }
    *out = v;
    v = NULL;
done:
    spx_vocab_free(v);
    return rc;
}

static uint32_t rd_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int spx_llama2c_vocab_parse(spx_ctx *ctx, const unsigned char *buf, size_t len, const char *label,
                            uint32_t n_vocab, spx_vocab **out)
{
    int rc = 0;
    spx_vocab *v = NULL;
    size_t off = 0;
    *out = NULL;
    if (n_vocab == 0)
        SPX_FAIL(ctx, rc, SPX_E_LLAMA2C, "%s: vocabulary size 0 (from the checkpoint header)", label);
    if (len < 4)
        SPX_FAIL(ctx, rc, SPX_E_LLAMA2C,
                 "%s: truncated: %zu bytes, the max_token_length field needs 4 (offset 0)", label, len);
    uint32_t max_len = rd_u32(buf);
    if (max_len == 0 || max_len > (1u << 20))
        SPX_FAIL(ctx, rc, SPX_E_LLAMA2C, "%s: max_token_length %u at offset 0 out of range [1, %u]",
                 label, max_len, 1u << 20);
    off = 4;
    /* every record takes at least 8 bytes: reject impossible counts before allocating */
    if ((uint64_t)n_vocab * 8u > (uint64_t)(len - off))
        SPX_FAIL(ctx, rc, SPX_E_LLAMA2C,
                 "%s: truncated: %zu bytes cannot hold %u tokens (at least 8 bytes each after offset 4)",
                 label, len, n_vocab);
    SPX_TRY(rc, vocab_alloc(ctx, n_vocab, &v));
    v->max_len = max_len;
    for (uint32_t i = 0; i < n_vocab; i++) {
        if (len - off < 8)
            SPX_FAIL(ctx, rc, SPX_E_LLAMA2C,
                     "%s: truncated in token %u: score/length header at offset %zu needs 8 bytes, %zu left",
                     label, i, off, len - off);
        float score;
        uint32_t raw = rd_u32(buf + off);
        memcpy(&score, &raw, sizeof(score));
        if (score != score)
            SPX_FAIL(ctx, rc, SPX_E_LLAMA2C, "%s: token %u: score at offset %zu is NaN", label, i, off);
        int32_t plen = (int32_t)rd_u32(buf + off + 4);
        if (plen < 0)
            SPX_FAIL(ctx, rc, SPX_E_LLAMA2C, "%s: token %u: negative length %d at offset %zu", label, i,
                     (int)plen, off + 4);
        if ((uint32_t)plen > max_len)
            SPX_FAIL(ctx, rc, SPX_E_LLAMA2C,
                     "%s: token %u: length %d at offset %zu exceeds max_token_length %u", label, i,
                     (int)plen, off + 4, max_len);
        off += 8;
        if ((size_t)plen > len - off)
            SPX_FAIL(ctx, rc, SPX_E_LLAMA2C,
                     "%s: truncated in token %u: piece of %d bytes at offset %zu runs past the end (%zu bytes)",
                     label, i, (int)plen, off, len);
        v->pieces[i] = dup_bytes(buf + off, (size_t)plen);
        if (!v->pieces[i])
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory copying token %u", label, i);
        v->lens[i] = (uint32_t)plen;
        v->scores[i] = score;
        off += (size_t)plen;
    }
    if (off != len)
        SPX_FAIL(ctx, rc, SPX_E_LLAMA2C,
                 "%s: %zu trailing bytes after the %u tokens (offset %zu): vocabulary size mismatch?",
                 label, len - off, n_vocab, off);
    *out = v;
    v = NULL;
done:
    spx_vocab_free(v);
    return rc;
}

int spx_llama2c_vocab_read(spx_ctx *ctx, const char *path, uint32_t n_vocab, spx_vocab **out)
{
    int rc = 0;
    unsigned char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    SPX_TRY(rc, spx_tok_read_file(ctx, path, &buf, &len));
    SPX_TRY(rc, spx_llama2c_vocab_parse(ctx, buf, len, path, n_vocab, out));
done:
    free(buf);
    return rc;
}

/* ---- encoder ---------------------------------------------------------------------------- */

void spx_spm_free(spx_spm *s)
{
    if (!s)
        return;
    spx_tok_map_free(&s->map);
    spx_vocab_free(s->vocab);
    memset(s, 0, sizeof(*s));
}

int spx_spm_init(spx_ctx *ctx, spx_spm *s, spx_vocab *vocab)
{
    int rc = 0;
    memset(s, 0, sizeof(*s));
    for (uint32_t i = 0; i < vocab->n; i++) {
        if (vocab->scores[i] != vocab->scores[i])
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "vocabulary piece %u has a NaN score", i);
        if (!vocab->pieces[i])
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "vocabulary piece %u is missing", i);
    }
    SPX_TRY(rc, spx_tok_map_build(ctx, &s->map, (const char *const *)vocab->pieces, vocab->lens, vocab->n));
    for (int b = 0; b < 256; b++) {
        char name[8];
        static const char hex[] = "0123456789ABCDEF";
        name[0] = '<';
        name[1] = '0';
        name[2] = 'x';
        name[3] = hex[b >> 4];
        name[4] = hex[b & 15];
        name[5] = '>';
        int64_t id = spx_tok_map_get(&s->map, name, 6);
        s->byte_id[b] = (int32_t)id;
    }
    s->vocab = vocab;
done:
    if (rc < 0)
        spx_tok_map_free(&s->map);
    return rc;
}

/* Max-score-first key: float bits made monotonic, then reversed so the heap pops the highest
 * score first. -0 and +0 compare equal in llama2.c, so -0 is folded into +0. */
static uint64_t score_key(float score)
{
    uint32_t u;
    if (score == 0.0f)
        score = 0.0f;
    memcpy(&u, &score, sizeof(u));
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
    return (uint64_t)(~u);
}

/* id of the concatenation of the pieces of symbols l and r when it may merge, else -1 */
static int64_t spm_pair(spx_ctx *ctx, const spx_spm *s, spx_tok_work *w, uint32_t l, uint32_t r, int *rc)
{
    const spx_vocab *v = s->vocab;
    uint32_t a = w->sym_id[l], b = w->sym_id[r];
    size_t n = (size_t)v->lens[a] + v->lens[b];
    if (n > w->tmp_cap) {
        char *t = realloc(w->tmp, n);
        if (!t) {
            *rc = spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
            return -1;
        }
        w->tmp = t;
        w->tmp_cap = n;
    }
    memcpy(w->tmp, v->pieces[a], v->lens[a]);
    memcpy(w->tmp + v->lens[a], v->pieces[b], v->lens[b]);
    int64_t id = spx_tok_map_get(&s->map, w->tmp, n);
    if (id >= 0 && !(v->scores[id] > SPX_SPM_MIN_SCORE))
        id = -1;
    return id;
}

static int spm_queue_pair(spx_ctx *ctx, const spx_spm *s, spx_tok_work *w, uint32_t l)
{
    int rc = 0;
    uint32_t r = w->sym_next[l];
    if (r == UINT32_MAX)
        return 0;
    int64_t id = spm_pair(ctx, s, w, l, r, &rc);
    if (rc < 0 || id < 0)
        return rc;
    return spx_tok_q_push(ctx, w, score_key(s->vocab->scores[id]), l, (uint32_t)id);
}

int spx_spm_encode(spx_ctx *ctx, const spx_spm *s, spx_tok_work *w, const char *text, size_t len,
                   uint32_t **ids, size_t *n, size_t *cap)
{
    int rc = 0;
    const unsigned char *t = (const unsigned char *)text;
    if (len == 0)
        goto done;
    SPX_TRY(rc, spx_tok_work_reserve(ctx, w, len + 1));
    int64_t sp = spx_tok_map_get(&s->map, " ", 1);
    if (sp < 0)
        SPX_FAIL(ctx, rc, SPX_E_TOKENIZER, "the vocabulary has no \" \" piece for the dummy prefix");
    SPX_TRY(rc, spx_tok_work_add(ctx, w, (uint32_t)sp));
    /* llama2.c groups a byte with up to 3 following continuation bytes (no further validation) */
    for (size_t i = 0; i < len;) {
        size_t g = 1;
        while (g < 4 && i + g < len && (t[i + g] & 0xC0) == 0x80)
            g++;
        int64_t id = spx_tok_map_get(&s->map, text + i, g);
        if (id >= 0) {
            SPX_TRY(rc, spx_tok_work_add(ctx, w, (uint32_t)id));
        } else {
            for (size_t k = 0; k < g; k++) {
                if (s->byte_id[t[i + k]] < 0)
                    SPX_FAIL(ctx, rc, SPX_E_TOKENIZER,
                             "byte 0x%02X at text offset %zu has no piece and the vocabulary has no "
                             "<0x%02X> byte-fallback piece", t[i + k], i + k, t[i + k]);
                SPX_TRY(rc, spx_tok_work_add(ctx, w, (uint32_t)s->byte_id[t[i + k]]));
            }
        }
        i += g;
    }
    for (size_t i = 0; i + 1 < w->n; i++)
        SPX_TRY(rc, spm_queue_pair(ctx, s, w, (uint32_t)i));
    spx_tok_qent e;
    while (spx_tok_q_pop(w, &e)) {
        uint32_t l = e.pos, r;
        if (w->sym_dead[l] || (r = w->sym_next[l]) == UINT32_MAX)
            continue;
        int64_t id = spm_pair(ctx, s, w, l, r, &rc);
        if (rc < 0)
            goto done;
        if (id != (int64_t)e.id)
            continue;   /* stale: the pair at l changed since it was queued */
        spx_tok_work_merge(w, l, r, (uint32_t)id);
        if (w->sym_prev[l] != UINT32_MAX)
            SPX_TRY(rc, spm_queue_pair(ctx, s, w, w->sym_prev[l]));
        SPX_TRY(rc, spm_queue_pair(ctx, s, w, l));
    }
    for (uint32_t i = 0; i != UINT32_MAX; i = w->sym_next[i])
        SPX_TRY(rc, spx_tok_push(ctx, ids, n, cap, w->sym_id[i]));
done:
    return rc;
}
