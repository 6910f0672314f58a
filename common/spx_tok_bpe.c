/* spx_tok_bpe.c: the Hugging Face BPE model (merges applied by rank) and the hash maps and merge
 * queue it shares with the llama2.c encoder.
 *
 * BPE on one word (as the HF `tokenizers` crate does it): every character becomes its vocabulary
 * token, or its bytes' <0xXX> tokens (byte_fallback), or the unknown token (consecutive unknowns
 * fused when fuse_unk). Then the adjacent pair with the lowest merge rank is merged, the leftmost
 * one on equal ranks, until no adjacent pair has a merge. A min-heap over (rank, position) gives
 * that order in O(n log n); popped entries whose pair changed meanwhile are skipped (their
 * merged id no longer matches the pair now at that position). */
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_tok_internal.h"

#define NONE UINT32_MAX

uint64_t spx_tok_hash(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c <<= 1;
    return c;
}

int spx_tok_map_build(spx_ctx *ctx, spx_tok_map *m, const char *const *keys, const uint32_t *lens,
                      uint32_t n)
{
    int rc = 0;
    memset(m, 0, sizeof(*m));
    m->cap = pow2_at_least((size_t)n * 2 + 1);
    m->slot_id = malloc(m->cap * sizeof(uint32_t));
    if (!m->slot_id)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory for a %u-entry vocabulary map", n);
    memset(m->slot_id, 0xFF, m->cap * sizeof(uint32_t));
    m->keys = keys;
    m->key_lens = lens;
    for (uint32_t id = 0; id < n; id++) {
        if (!keys[id])
            continue;
        size_t i = (size_t)spx_tok_hash(keys[id], lens[id]) & (m->cap - 1);
        int dup = 0;
        while (m->slot_id[i] != NONE) {
            uint32_t o = m->slot_id[i];
            if (lens[o] == lens[id] && memcmp(keys[o], keys[id], lens[id]) == 0) {
                dup = 1;
                break;
            }
            i = (i + 1) & (m->cap - 1);
        }
        if (!dup) {
            m->slot_id[i] = id;
            m->count++;
        }
    }
done:
    return rc;
}

int64_t spx_tok_map_get(const spx_tok_map *m, const char *key, size_t len)
{
    if (!m->slot_id)
        return -1;
    size_t i = (size_t)spx_tok_hash(key, len) & (m->cap - 1);
    while (m->slot_id[i] != NONE) {
        uint32_t o = m->slot_id[i];
        if (m->key_lens[o] == len && memcmp(m->keys[o], key, len) == 0)
            return (int64_t)o;
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}

void spx_tok_map_free(spx_tok_map *m)
{
    if (!m)
        return;
    free(m->slot_id);
    memset(m, 0, sizeof(*m));
}

static size_t pair_slot(uint64_t key, size_t cap)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (cap - 1);
}

int spx_tok_pairmap_init(spx_ctx *ctx, spx_tok_pairmap *m, size_t expected)
{
    int rc = 0;
    memset(m, 0, sizeof(*m));
    if (expected > SIZE_MAX / 32)
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "too many merges (%zu)", expected);
    m->cap = pow2_at_least(expected * 2 + 1);
    m->keys = malloc(m->cap * sizeof(uint64_t));
    m->rank = malloc(m->cap * sizeof(uint32_t));
    m->merged = malloc(m->cap * sizeof(uint32_t));
    if (!m->keys || !m->rank || !m->merged)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory for %zu merges", expected);
    memset(m->keys, 0xFF, m->cap * sizeof(uint64_t));
done:
    if (rc < 0)
        spx_tok_pairmap_free(m);
    return rc;
}

int spx_tok_pairmap_put(spx_ctx *ctx, spx_tok_pairmap *m, uint32_t a, uint32_t b, uint32_t rank,
                        uint32_t merged)
{
    int rc = 0;
    uint64_t key = (uint64_t)a << 32 | b;
    if ((m->count + 1) * 2 > m->cap)
        SPX_FAIL(ctx, rc, SPX_E_INTERNAL, "merge map sized for fewer merges");
    size_t i = pair_slot(key, m->cap);
    while (m->keys[i] != UINT64_MAX && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == UINT64_MAX)
        m->count++;
    m->keys[i] = key;
    m->rank[i] = rank;
    m->merged[i] = merged;
done:
    return rc;
}

int spx_tok_pairmap_get(const spx_tok_pairmap *m, uint32_t a, uint32_t b, uint32_t *rank,
                        uint32_t *merged)
{
    if (!m->keys)
        return 0;
    uint64_t key = (uint64_t)a << 32 | b;
    size_t i = pair_slot(key, m->cap);
    while (m->keys[i] != UINT64_MAX) {
        if (m->keys[i] == key) {
            *rank = m->rank[i];
            *merged = m->merged[i];
            return 1;
        }
        i = (i + 1) & (m->cap - 1);
    }
    return 0;
}

void spx_tok_pairmap_free(spx_tok_pairmap *m)
{
    if (!m)
        return;
    free(m->keys);
    free(m->rank);
    free(m->merged);
    memset(m, 0, sizeof(*m));
}

void spx_tok_work_free(spx_tok_work *w)
{
    if (!w)
        return;
    free(w->sym_id);
    free(w->sym_prev);
    free(w->sym_next);
    free(w->sym_dead);
    free(w->q);
    free(w->tmp);
    memset(w, 0, sizeof(*w));
}

static int grow(spx_ctx *ctx, void **p, size_t elem, size_t n)
{
    int rc = 0;
    size_t bytes;
    void *q;
    if (spx_ckd_mul_size(elem, n, &bytes))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "tokenizer work buffer size overflow");
    q = realloc(*p, bytes ? bytes : 1);
    if (!q)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory for tokenizer work buffers (%zu bytes)", bytes);
    *p = q;
done:
    return rc;
}

int spx_tok_work_reserve(spx_ctx *ctx, spx_tok_work *w, size_t need)
{
    int rc = 0;
    w->n = 0;
    w->qn = 0;
    if (need > w->cap) {
        size_t c = w->cap ? w->cap : 64;
        while (c < need) {
            if (spx_ckd_mul_size(c, 2, &c))
                SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "tokenizer work buffer size overflow");
        }
        SPX_TRY(rc, grow(ctx, (void **)&w->sym_id, sizeof(uint32_t), c));
        SPX_TRY(rc, grow(ctx, (void **)&w->sym_prev, sizeof(uint32_t), c));
        SPX_TRY(rc, grow(ctx, (void **)&w->sym_next, sizeof(uint32_t), c));
        SPX_TRY(rc, grow(ctx, (void **)&w->sym_dead, 1, c));
        w->cap = c;
    }
done:
    return rc;
}

int spx_tok_work_add(spx_ctx *ctx, spx_tok_work *w, uint32_t id)
{
    int rc = 0;
    if (w->n == w->cap) {
        size_t keep = w->n;
        SPX_TRY(rc, spx_tok_work_reserve(ctx, w, w->n + 1));
        w->n = keep;
    }
    size_t i = w->n++;
    w->sym_id[i] = id;
    w->sym_prev[i] = i ? (uint32_t)(i - 1) : NONE;
    w->sym_next[i] = NONE;
    w->sym_dead[i] = 0;
    if (i)
        w->sym_next[i - 1] = (uint32_t)i;
done:
    return rc;
}

static int qless(const spx_tok_qent *a, const spx_tok_qent *b)
{
    return a->key < b->key || (a->key == b->key && a->pos < b->pos);
}

int spx_tok_q_push(spx_ctx *ctx, spx_tok_work *w, uint64_t key, uint32_t pos, uint32_t id)
{
    int rc = 0;
    if (w->qn == w->qcap) {
        size_t c = w->qcap ? w->qcap * 2 : 64;
        SPX_TRY(rc, grow(ctx, (void **)&w->q, sizeof(spx_tok_qent), c));
        w->qcap = c;
    }
    spx_tok_qent e = {key, pos, id};
    size_t i = w->qn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!qless(&e, &w->q[p]))
            break;
        w->q[i] = w->q[p];
        i = p;
    }
    w->q[i] = e;
done:
    return rc;
}

int spx_tok_q_pop(spx_tok_work *w, spx_tok_qent *out)
{
    if (w->qn == 0)
        return 0;
    *out = w->q[0];
    spx_tok_qent last = w->q[--w->qn];
    size_t i = 0, n = w->qn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && qless(&w->q[c + 1], &w->q[c]))
            c++;
        if (!qless(&w->q[c], &last))
            break;
        w->q[i] = w->q[c];
        i = c;
    }
    if (n)
        w->q[i] = last;
    return 1;
}

void spx_tok_work_merge(spx_tok_work *w, uint32_t l, uint32_t r, uint32_t merged_id)
{
    w->sym_id[l] = merged_id;
    w->sym_dead[r] = 1;
    w->sym_next[l] = w->sym_next[r];
    if (w->sym_next[r] != NONE)
        w->sym_prev[w->sym_next[r]] = l;
}

/* queue the merge of the pair starting at symbol l, if there is one */
static int bpe_queue_pair(spx_ctx *ctx, const spx_bpe *b, spx_tok_work *w, uint32_t l)
{
    uint32_t r = w->sym_next[l], rank, merged;
    if (r == NONE || !spx_tok_pairmap_get(&b->merges, w->sym_id[l], w->sym_id[r], &rank, &merged))
        return 0;
    return spx_tok_q_push(ctx, w, rank, l, merged);
}

int spx_bpe_encode_word(spx_ctx *ctx, const spx_bpe *b, spx_tok_work *w, const char *word,
                        size_t len, uint32_t **ids, size_t *n, size_t *cap)
{
    int rc = 0;
    const unsigned char *s = (const unsigned char *)word;
    if (len == 0)
        goto done;
    if (b->ignore_merges) {
        int64_t whole = spx_tok_map_get(&b->vocab, word, len);
        if (whole >= 0) {
            SPX_TRY(rc, spx_tok_push(ctx, ids, n, cap, (uint32_t)whole));
            goto done;
        }
    }
    SPX_TRY(rc, spx_tok_work_reserve(ctx, w, len));
    int pending_unk = 0;   /* an unknown token not yet added (to fuse with the next ones) */
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t cl = spx_utf8_next(s + i, len - i, &cp);
        int64_t id = spx_tok_map_get(&b->vocab, word + i, cl);
        if (id >= 0) {
            if (pending_unk)
                SPX_TRY(rc, spx_tok_work_add(ctx, w, (uint32_t)b->unk_id));
            pending_unk = 0;
            SPX_TRY(rc, spx_tok_work_add(ctx, w, (uint32_t)id));
            i += cl;
            continue;
        }
        int all_bytes = b->byte_fallback;
        for (size_t k = 0; all_bytes && k < cl; k++)
            if (b->byte_id[s[i + k]] < 0)
                all_bytes = 0;
        if (all_bytes) {
            /* HF adds the byte tokens without flushing a pending unknown first */
            for (size_t k = 0; k < cl; k++)
                SPX_TRY(rc, spx_tok_work_add(ctx, w, (uint32_t)b->byte_id[s[i + k]]));
        } else if (b->unk_id >= 0) {
            if (pending_unk && !b->fuse_unk)
                SPX_TRY(rc, spx_tok_work_add(ctx, w, (uint32_t)b->unk_id));
            pending_unk = 1;
        } else {
            SPX_FAIL(ctx, rc, SPX_E_TOKENIZER,
                     "character at byte %zu of a pre-tokenized word has no token and the tokenizer "
                     "has neither byte fallback nor an unknown token", i);
        }
        i += cl;
    }
    if (pending_unk)
        SPX_TRY(rc, spx_tok_work_add(ctx, w, (uint32_t)b->unk_id));
    for (size_t i = 0; i + 1 < w->n; i++)
        SPX_TRY(rc, bpe_queue_pair(ctx, b, w, (uint32_t)i));
    spx_tok_qent e;
    while (spx_tok_q_pop(w, &e)) {
        uint32_t l = e.pos, r, rank, merged;
        if (w->sym_dead[l] || (r = w->sym_next[l]) == NONE)
            continue;
        if (!spx_tok_pairmap_get(&b->merges, w->sym_id[l], w->sym_id[r], &rank, &merged) ||
            merged != e.id)
            continue;
        spx_tok_work_merge(w, l, r, merged);
        if (w->sym_prev[l] != NONE)
            SPX_TRY(rc, bpe_queue_pair(ctx, b, w, w->sym_prev[l]));
        SPX_TRY(rc, bpe_queue_pair(ctx, b, w, l));
    }
    for (uint32_t i = w->n ? 0 : NONE; i != NONE; i = w->sym_next[i])
        SPX_TRY(rc, spx_tok_push(ctx, ids, n, cap, w->sym_id[i]));
done:
    return rc;
}
