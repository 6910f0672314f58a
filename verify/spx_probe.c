/* spx_probe.c: record, store, load and re-run embedded verification probes (see spx_probe.h). */
#include "spx_probe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "spx_forward.h"
#include "spx_spxcopy.h"

#define PROBE_CHUNK 64u   /* tokens per spx_forward call, the same when recording and re-running */

uint32_t spx_probe_weights_crc(const spx_file *f)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint32_t i = 0; i < spx_file_tensor_count(f); i++) {
        const spx_tensor *t = spx_file_tensor(f, i);
        unsigned char le[4];
        for (int b = 0; b < 4; b++)
            le[b] = (unsigned char)(t->data_crc32 >> (8 * b));
        crc = crc32(crc, (const Bytef *)t->name, (uInt)strlen(t->name));
        crc = crc32(crc, le, 4);
    }
    return (uint32_t)crc;
}

static uint32_t argmax(const float *l, uint32_t vocab)
{
    uint32_t a = 0;
    for (uint32_t j = 1; j < vocab; j++)
        if (l[j] > l[a])
            a = j;
    return a;
}

/* Run tokens[0..n) from an empty cache, PROBE_CHUNK tokens per call; visit(ud, p, logits[vocab])
 * for every position. SPX_E_NUMERIC on a non-finite logit. */
static int probe_forward(spx_ctx *ctx, const spx_model *m, const uint32_t *tokens, uint32_t n,
                         void (*visit)(void *ud, uint32_t p, const float *logits), void *ud)
{
    int rc = 0;
    const uint32_t vocab = m->cfg.vocab_size, chunk = n < PROBE_CHUNK ? n : PROBE_CHUNK;
    spx_state *st = NULL;
    float *logits = calloc((size_t)chunk * vocab, sizeof *logits);
    if (!logits)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "probe: out of memory for logits");
    SPX_TRY(rc, spx_state_new(ctx, m, n, chunk, &st));
    for (uint32_t off = 0; off < n; off += chunk) {
        uint32_t nb = n - off < chunk ? n - off : chunk;
        SPX_TRY(rc, spx_forward(ctx, m, st, tokens + off, nb, logits, NULL));
        for (uint32_t i = 0; i < nb; i++) {
            const float *l = logits + (size_t)i * vocab;
            for (uint32_t j = 0; j < vocab; j++)
                if (!isfinite(l[j]))
                    SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "probe: non-finite logit %u at position %u", j, off + i);
            visit(ud, off + i, l);
        }
    }
done:
    spx_state_free(st);
    free(logits);
    return rc;
}

static void record_visit(void *ud, uint32_t p, const float *l)
{
    spx_probe *pr = ud;
    pr->top1[p] = argmax(l, pr->vocab);
    if (p + 1 == pr->n_tokens)
        memcpy(pr->logits, l, pr->vocab * sizeof(float));
}

static int check_tokens(spx_ctx *ctx, const uint32_t *tokens, size_t n, uint32_t vocab, int code, const char *what)
{
    if (n == 0 || n > SPX_PROBE_MAX_TOKENS)
        return spx_err_set(ctx, code, "%s: %zu probe tokens, must be 1..%u", what, n, SPX_PROBE_MAX_TOKENS);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] >= vocab)
            return spx_err_set(ctx, code, "%s: probe token %zu has id %u, outside the vocabulary of %u", what, i,
                               tokens[i], vocab);
    return 0;
}

int spx_probe_record(spx_ctx *ctx, const spx_model *m, const uint32_t *tokens, size_t n, double tol, spx_probe *out)
{
    int rc = 0;
    spx_probe p;
    memset(&p, 0, sizeof p);
    SPX_TRY(rc, check_tokens(ctx, tokens, n, m->cfg.vocab_size, SPX_E_ARG, "probe"));
    p.n_tokens = (uint32_t)n;
    p.vocab = m->cfg.vocab_size;
    p.tokens = malloc(n * sizeof *p.tokens);
    p.top1 = malloc(n * sizeof *p.top1);
    p.logits = malloc((size_t)p.vocab * sizeof *p.logits);
    if (!p.tokens || !p.top1 || !p.logits)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "probe: out of memory");
    memcpy(p.tokens, tokens, n * sizeof *tokens);
    SPX_TRY(rc, probe_forward(ctx, m, p.tokens, p.n_tokens, record_visit, &p));
    if (tol < 0) {
        double mx = 1.0;
        for (uint32_t j = 0; j < p.vocab; j++)
            if (fabs((double)p.logits[j]) > mx)
                mx = fabs((double)p.logits[j]);
        tol = SPX_PROBE_DEFAULT_REL_TOL * mx;
    }
    p.tol = tol;
    p.weights_crc32 = spx_probe_weights_crc(m->file);
    *out = p;
    memset(&p, 0, sizeof p);
done:
    spx_probe_free(&p);
    return rc;
}

/* An ARR of `elem` with `count` elements (count 0: any count >= 1). */
static int get_arr(spx_ctx *ctx, const spx_file *f, const char *key, int elem, uint64_t count, const spx_meta **out)
{
    const spx_meta *m = spx_file_meta_find(f, key);
    if (!m)
        return spx_err_set(ctx, SPX_E_META, "%s: probe key '%s' is missing", spx_file_path(f), key);
    if (m->type != SPX_META_ARR || m->elem_type != elem)
        return spx_err_set(ctx, SPX_E_META, "%s: probe key '%s' must be an ARR of %s", spx_file_path(f), key,
                           spx_meta_type_name(elem));
    if (count ? m->count != count : m->count == 0)
        return spx_err_set(ctx, SPX_E_META, "%s: probe key '%s' has %llu elements, expected %llu", spx_file_path(f),
                           key, (unsigned long long)m->count, (unsigned long long)count);
    *out = m;
    return 0;
}

/* A probe key that is absent or mistyped makes the probe malformed: SPX_E_META, same message. */
static int as_meta_error(spx_ctx *ctx, int rc)
{
    if (rc >= 0)
        return rc;
    if (ctx)
        ctx->code = SPX_E_META;
    return SPX_E_META;
}

int spx_probe_load(spx_ctx *ctx, const spx_file *f, spx_probe *out)
{
    int rc = 0;
    spx_probe p;
    const spx_meta *mt, *m1, *ml;
    uint32_t version;
    const char *path = spx_file_path(f);
    memset(&p, 0, sizeof p);
    if (!spx_file_meta_find(f, SPX_PROBE_KEY_TOKENS))
        SPX_FAIL(ctx, rc, SPX_E_MISSING, "%s: no embedded probe (metadata key '%s')", path, SPX_PROBE_KEY_TOKENS);
    SPX_TRY(rc, as_meta_error(ctx, spx_meta_get_u32(ctx, f, SPX_PROBE_KEY_VERSION, &version)));
    if (version != SPX_PROBE_VERSION)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: probe version %u is not supported (this spx reads %u)", path,
                 version, SPX_PROBE_VERSION);
    SPX_TRY(rc, get_arr(ctx, f, SPX_PROBE_KEY_TOKENS, SPX_META_U32, 0, &mt));
    if (mt->count > SPX_PROBE_MAX_TOKENS)
        SPX_FAIL(ctx, rc, SPX_E_META, "%s: probe key '%s' has %llu tokens, at most %u are allowed", path,
                 SPX_PROBE_KEY_TOKENS, (unsigned long long)mt->count, SPX_PROBE_MAX_TOKENS);
    SPX_TRY(rc, get_arr(ctx, f, SPX_PROBE_KEY_TOP1, SPX_META_U32, mt->count, &m1));
    SPX_TRY(rc, get_arr(ctx, f, SPX_PROBE_KEY_LOGITS, SPX_META_F32, 0, &ml));
    if (ml->count > UINT32_MAX)
        SPX_FAIL(ctx, rc, SPX_E_META, "%s: probe key '%s' is too long", path, SPX_PROBE_KEY_LOGITS);
    rc = spx_meta_get_f64(ctx, f, SPX_PROBE_KEY_TOL, &p.tol);
    if (rc < 0 || !(p.tol >= 0) || !isfinite(p.tol))
        SPX_FAIL(ctx, rc, SPX_E_META, "%s: probe key '%s' must be a finite F64 >= 0", path, SPX_PROBE_KEY_TOL);
    SPX_TRY(rc, as_meta_error(ctx, spx_meta_get_u32(ctx, f, SPX_PROBE_KEY_WEIGHTS, &p.weights_crc32)));
    p.n_tokens = (uint32_t)mt->count;
    p.vocab = (uint32_t)ml->count;
    p.tokens = malloc(p.n_tokens * sizeof *p.tokens);
    p.top1 = malloc(p.n_tokens * sizeof *p.top1);
    p.logits = malloc((size_t)p.vocab * sizeof *p.logits);
    if (!p.tokens || !p.top1 || !p.logits)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "probe: out of memory");
    for (uint32_t i = 0; i < p.n_tokens; i++) {
        p.tokens[i] = (uint32_t)spx_meta_arr_i64(mt, i);
        p.top1[i] = (uint32_t)spx_meta_arr_i64(m1, i);
    }
    for (uint32_t j = 0; j < p.vocab; j++) {
        p.logits[j] = (float)spx_meta_arr_f64(ml, j);
        if (!isfinite(p.logits[j]))
            SPX_FAIL(ctx, rc, SPX_E_META, "%s: probe key '%s': element %u is not finite", path, SPX_PROBE_KEY_LOGITS,
                     j);
    }
    *out = p;
    memset(&p, 0, sizeof p);
done:
    spx_probe_free(&p);
    return rc;
}

typedef struct run_state {
    const spx_probe *p;
    spx_probe_check *c;
} run_state;

static void run_visit(void *ud, uint32_t pos, const float *l)
{
    run_state *s = ud;
    const spx_probe *p = s->p;
    spx_probe_check *c = s->c;
    uint32_t got = argmax(l, p->vocab), want = p->top1[pos];
    if (got == want || (double)l[want] >= (double)l[got] - p->tol) {
        c->top1_ok++;
    } else if (c->top1_ok == pos) {   /* first failure */
        c->first_bad = pos;
        c->bad_expected = want;
        c->bad_got = got;
    }
    if (pos + 1 == p->n_tokens) {
        for (uint32_t j = 0; j < p->vocab; j++) {
            double e = fabs((double)l[j] - (double)p->logits[j]);
            if (e > c->max_abs_err) {
                c->max_abs_err = e;
                c->worst_id = j;
            }
        }
    }
}

int spx_probe_run(spx_ctx *ctx, const spx_model *m, const spx_probe *p, spx_probe_check *out)
{
    int rc = 0;
    spx_probe_check c;
    run_state s = {p, &c};
    memset(&c, 0, sizeof c);
    if (p->vocab != m->cfg.vocab_size)
        SPX_FAIL(ctx, rc, SPX_E_META, "probe: %u expected logits but the model's vocabulary has %u", p->vocab,
                 m->cfg.vocab_size);
    SPX_TRY(rc, check_tokens(ctx, p->tokens, p->n_tokens, p->vocab, SPX_E_META, "probe"));
    SPX_TRY(rc, check_tokens(ctx, p->top1, p->n_tokens, p->vocab, SPX_E_META, "probe top-1"));
    c.positions = p->n_tokens;
    c.tol = p->tol;
    c.first_bad = p->n_tokens;
    c.stale = spx_probe_weights_crc(m->file) != p->weights_crc32;
    SPX_TRY(rc, probe_forward(ctx, m, p->tokens, p->n_tokens, run_visit, &s));
    c.ok = !c.stale && c.top1_ok == c.positions && c.max_abs_err <= c.tol;
    *out = c;
done:
    return rc;
}

static int skip_verify_keys(void *ud, const char *key)
{
    (void)ud;
    return strncmp(key, "spx.verify.", 11) == 0;
}

int spx_probe_write(spx_ctx *ctx, const spx_file *in, const spx_probe *p, const char *out_path)
{
    int rc = 0;
    spx_writer *w = NULL;
    char wname[64];
    snprintf(wname, sizeof wname, "spx %s", SPX_VERSION_STRING);
    SPX_TRY(rc, spx_writer_open(ctx, out_path, wname, &w));
    SPX_TRY(rc, spx_meta_copy(ctx, w, in, skip_verify_keys, NULL));
    rc = spx_writer_meta_u32(w, SPX_PROBE_KEY_VERSION, SPX_PROBE_VERSION);
    if (rc == 0)
        rc = spx_writer_meta_arr(w, SPX_PROBE_KEY_TOKENS, SPX_META_U32, p->tokens, p->n_tokens);
    if (rc == 0)
        rc = spx_writer_meta_arr(w, SPX_PROBE_KEY_TOP1, SPX_META_U32, p->top1, p->n_tokens);
    if (rc == 0)
        rc = spx_writer_meta_arr(w, SPX_PROBE_KEY_LOGITS, SPX_META_F32, p->logits, p->vocab);
    if (rc == 0)
        rc = spx_writer_meta_f64(w, SPX_PROBE_KEY_TOL, p->tol);
    if (rc == 0)
        rc = spx_writer_meta_u32(w, SPX_PROBE_KEY_WEIGHTS, p->weights_crc32);
    for (uint32_t i = 0; rc == 0 && i < spx_file_tensor_count(in); i++)
        rc = spx_tensor_copy(ctx, w, in, spx_file_tensor(in, i));
    if (rc == 0)
        rc = spx_writer_finish(w);
    if (rc < 0 && spx_writer_ctx(w)->code)
        *ctx = *spx_writer_ctx(w);
done:
    spx_writer_free(w);
    return rc;
}

void spx_probe_free(spx_probe *p)
{
    if (!p)
        return;
    free(p->tokens);
    free(p->top1);
    free(p->logits);
    memset(p, 0, sizeof p[0]);
}
