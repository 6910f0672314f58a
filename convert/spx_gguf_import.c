/* spx_gguf_import.c: GGUF (llama architecture) -> .spx, called by spx_convert (contract in
 * spx_gguf.h). Same phases as spx_convert.c: open + config, plan (every canonical tensor found,
 * shape/type checked, leftovers listed), tokenizer check, and only then the output is opened and
 * the tensors are streamed one by one (decoded, checked for NaN/Inf, rotary rows un-permuted,
 * converted to the output dtype). */
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spx_archmap.h"
#include "spx_ckd.h"
#include "spx_convert_int.h"
#include "spx_format.h"
#include "spx_gguf.h"
#include "spx_half.h"

typedef struct gitem {
    const spx_archmap_entry *e;
    uint32_t layer;
    char canon[SPX_NAME_MAX];
    const spx_gguf_tensor *t;
    uint32_t ndim;
    uint64_t dims[2];                 /* PyTorch order [rows, cols] */
    int xform;
} gitem;

typedef struct gconv {
    spx_ctx *ctx;
    const spx_convert_opts *o;
    spx_convert_report *rep;
    spx_gguf *g;
    const char *path;
    spx_model_config cfg;
    gitem *plan;
    size_t n_plan;
    unsigned char *used;              /* [tensor_count] */
    const spx_gguf_kv *hf_json, *tokens, *scores, *types;
} gconv;

static int note(gconv *c, const char *text)
{
    return spx_conv_list_add(c->ctx, &c->rep->notes, &c->rep->n_notes, "%s", text);
}

/* Optional integer key: *v is left alone when absent. */
static int opt_u32(gconv *c, const char *key, uint32_t *v)
{
    if (!spx_gguf_find_kv(c->g, key))
        return 0;
    return spx_gguf_get_u32(c->ctx, c->g, key, v);
}

static int opt_f32(gconv *c, const char *key, float *v)
{
    double d = 0;
    int rc;
    if (!spx_gguf_find_kv(c->g, key))
        return 0;
    if ((rc = spx_gguf_get_f64(c->ctx, c->g, key, &d)) < 0)
        return rc;
    if (!isfinite(d) || d <= 0 || d > 3.0e38)
        return spx_err_set(c->ctx, SPX_E_CONFIG, "%s: metadata key '%s' = %g must be positive and finite", c->path,
                           key, d);
    *v = (float)d;
    return 0;
}

static int str_is(const char *s, uint64_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(s, lit, (size_t)n) == 0;
}

static int read_config(gconv *c)
{
    int rc = 0;
    spx_ctx *ctx = c->ctx;
    spx_model_config *m = &c->cfg;
    const char *s;
    uint64_t n;
    uint32_t experts = 0, vlen = 0, vocab_key = 0;
    const spx_gguf_tensor *emb;
    SPX_TRY(rc, spx_gguf_get_str(ctx, c->g, "general.architecture", &s, &n));
    if (!str_is(s, n, "llama"))
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: general.architecture '%.*s' is not supported (GGUF import reads "
                 "'llama' models)", c->path, (int)(n > 40 ? 40 : n), s);
    spx_config_init_llama(m);
    SPX_TRY(rc, spx_gguf_get_u32(ctx, c->g, "llama.embedding_length", &m->dim));
    SPX_TRY(rc, spx_gguf_get_u32(ctx, c->g, "llama.block_count", &m->n_layers));
    SPX_TRY(rc, spx_gguf_get_u32(ctx, c->g, "llama.feed_forward_length", &m->ffn_dim));
    SPX_TRY(rc, spx_gguf_get_u32(ctx, c->g, "llama.attention.head_count", &m->n_heads));
    m->n_kv_heads = m->n_heads;
    SPX_TRY(rc, opt_u32(c, "llama.attention.head_count_kv", &m->n_kv_heads));
    SPX_TRY(rc, opt_u32(c, "llama.context_length", &m->context_length));
    SPX_TRY(rc, opt_u32(c, "llama.expert_count", &experts));
    if (experts > 0)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: llama.expert_count = %u: mixture-of-experts GGUF files "
                 "(ffn_*_exps) are not supported", c->path, experts);
    if (m->n_heads == 0 || m->dim % m->n_heads)
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: llama.embedding_length %u is not a multiple of "
                 "llama.attention.head_count %u", c->path, m->dim, m->n_heads);
    m->head_dim = m->dim / m->n_heads;
    SPX_TRY(rc, opt_u32(c, "llama.attention.key_length", &m->head_dim));
    vlen = m->head_dim;
    SPX_TRY(rc, opt_u32(c, "llama.attention.value_length", &vlen));
    if (vlen != m->head_dim)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: llama.attention.value_length %u differs from key_length %u", c->path,
                 vlen, m->head_dim);
    m->rope_dim = m->head_dim;
    SPX_TRY(rc, opt_u32(c, "llama.rope.dimension_count", &m->rope_dim));
    if (m->rope_dim != m->head_dim)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: llama.rope.dimension_count %u differs from the head size %u "
                 "(partial rotary is not supported for GGUF llama files)", c->path, m->rope_dim, m->head_dim);
    SPX_TRY(rc, opt_f32(c, "llama.attention.layer_norm_rms_epsilon", &m->norm_eps));
    SPX_TRY(rc, opt_f32(c, "llama.rope.freq_base", &m->rope_theta));
    if (spx_gguf_find_kv(c->g, "llama.rope.scaling.type")) {
        SPX_TRY(rc, spx_gguf_get_str(ctx, c->g, "llama.rope.scaling.type", &s, &n));
        if (str_is(s, n, "linear")) {
            m->rope_scaling = SPX_ROPE_LINEAR;
            if (!spx_gguf_find_kv(c->g, "llama.rope.scaling.factor"))
                SPX_FAIL(ctx, rc, SPX_E_MISSING, "%s: llama.rope.scaling.type is linear but llama.rope.scaling.factor "
                         "is missing", c->path);
            SPX_TRY(rc, opt_f32(c, "llama.rope.scaling.factor", &m->rope_factor));
        } else if (!str_is(s, n, "none")) {
            SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: llama.rope.scaling.type '%.*s' is not supported (none, linear)",
                     c->path, (int)(n > 40 ? 40 : n), s);
        }
    } else if (spx_gguf_find_kv(c->g, "llama.rope.scale_linear")) {   /* older files */
        SPX_TRY(rc, opt_f32(c, "llama.rope.scale_linear", &m->rope_factor));
        m->rope_scaling = m->rope_factor != 1.0f ? SPX_ROPE_LINEAR : SPX_ROPE_NONE;
    }
    if (!(emb = spx_gguf_find_tensor(c->g, "token_embd.weight")))
        SPX_FAIL(ctx, rc, SPX_E_MISSING, "%s: missing tensor token_embd.weight (the vocabulary size comes from it)",
                 c->path);
    if (emb->n_dims != 2 || emb->ne[0] != m->dim || emb->ne[1] > UINT32_MAX)
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: tensor token_embd.weight (info at byte %llu) has GGUF ne [%llu, %llu] "
                 "(%u dims), expected [%u, vocab]", c->path, (unsigned long long)emb->info_off,
                 (unsigned long long)emb->ne[0], (unsigned long long)emb->ne[1], emb->n_dims, m->dim);
    m->vocab_size = (uint32_t)emb->ne[1];
    SPX_TRY(rc, opt_u32(c, "llama.vocab_size", &vocab_key));
    if (vocab_key && vocab_key != m->vocab_size)
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: llama.vocab_size %u differs from token_embd.weight's %u rows", c->path,
                 vocab_key, m->vocab_size);
    m->tied_embeddings = spx_gguf_find_tensor(c->g, "output.weight") == NULL;
    m->attn_bias = spx_gguf_find_tensor(c->g, "blk.0.attn_q.bias") != NULL;
    m->attn_out_bias = spx_gguf_find_tensor(c->g, "blk.0.attn_output.bias") != NULL;
    m->ffn_bias = spx_gguf_find_tensor(c->g, "blk.0.ffn_up.bias") != NULL;
    uint32_t id;
    if (spx_gguf_find_kv(c->g, "tokenizer.ggml.bos_token_id") &&
        spx_gguf_get_u32(ctx, c->g, "tokenizer.ggml.bos_token_id", &id) == 0 && id < m->vocab_size)
        m->bos_id = (int32_t)id;
    if (spx_gguf_find_kv(c->g, "tokenizer.ggml.eos_token_id") &&
        spx_gguf_get_u32(ctx, c->g, "tokenizer.ggml.eos_token_id", &id) == 0 && id < m->vocab_size)
        m->eos_id = (int32_t)id;
    spx_err_clear(ctx);
    rc = spx_config_validate(ctx, m);
    if (rc < 0)
        spx_err_prefix(ctx, "%s: ", c->path);
done:
    return rc;
}

static int set_name(gconv *c)
{
    char tmp[4096];
    const char *s = NULL;
    uint64_t n = 0;
    if (c->o->name) {
        s = c->o->name;
        n = strlen(s);
    } else if (spx_gguf_find_kv(c->g, "general.name") &&
               spx_gguf_get_str(c->ctx, c->g, "general.name", &s, &n) == 0 && n > 0 && n < sizeof c->cfg.name &&
               !memchr(s, 0, (size_t)n)) {
        /* the file's own name */
    } else {
        snprintf(tmp, sizeof tmp, "%s", c->path);
        s = basename(tmp);
        char *dot = strrchr(s, '.');
        if (dot && dot != s)
            *dot = '\0';
        n = strlen(s);
    }
    spx_err_clear(c->ctx);
    if (n >= sizeof c->cfg.name)
        return spx_err_set(c->ctx, SPX_E_ARG, "model name '%.40s...' is longer than %zu bytes", s,
                           sizeof c->cfg.name - 1);
    memcpy(c->cfg.name, s, (size_t)n);
    c->cfg.name[n] = '\0';
    return 0;
}

static int plan_one(gconv *c, const spx_archmap_entry *e, uint32_t layer)
{
    int rc = 0;
    gitem p;
    uint64_t want[2];
    uint32_t want_nd;
    memset(&p, 0, sizeof p);
    p.e = e;
    p.layer = layer;
    spx_archmap_canon_name(e, layer, p.canon, sizeof p.canon);
    p.t = spx_gguf_find_tensor(c->g, p.canon);
    int present = spx_archmap_present(e, &c->cfg);
    if (p.t && !present)
        SPX_FAIL(c->ctx, rc, SPX_E_CONFIG, "%s: tensor %s (info at byte %llu) is present but block 0 has no such "
                 "tensor", c->path, p.canon, (unsigned long long)p.t->info_off);
    if (!present)
        return 0;
    if (!p.t)
        SPX_FAIL(c->ctx, rc, SPX_E_MISSING, "%s: missing tensor %s", c->path, p.canon);
    c->used[p.t - spx_gguf_tensor_at(c->g, 0)] = 1;
    spx_archmap_shape(e, &c->cfg, want, &want_nd);
    p.ndim = p.t->n_dims;
    p.dims[0] = p.t->n_dims == 2 ? p.t->ne[1] : p.t->ne[0];
    p.dims[1] = p.t->n_dims == 2 ? p.t->ne[0] : 0;
    if (p.ndim != want_nd || p.dims[0] != want[0] || (want_nd == 2 && p.dims[1] != want[1]))
        SPX_FAIL(c->ctx, rc, SPX_E_SHAPE, "%s: tensor %s (info at byte %llu): GGUF ne [%llu, %llu, %llu, %llu] with "
                 "%u dims does not match the expected PyTorch shape [%llu%s%llu] (GGUF ne is innermost first)",
                 c->path, p.canon, (unsigned long long)p.t->info_off, (unsigned long long)p.t->ne[0],
                 (unsigned long long)p.t->ne[1], (unsigned long long)p.t->ne[2], (unsigned long long)p.t->ne[3],
                 p.t->n_dims, (unsigned long long)want[0], want_nd == 2 ? ", " : "] (",
                 (unsigned long long)(want_nd == 2 ? want[1] : 1));
    /* llama.cpp stores q/k rows with interleaved rotary pairs; .spx uses rotate_half order */
    if (strcmp(e->base, "attn_q") == 0 || strcmp(e->base, "attn_k") == 0)
        p.xform = SPX_XFORM_ROPE_DEINTERLEAVE;
    c->plan[c->n_plan++] = p;
done:
    return rc;
}

/* Canonical order of the llama table; then what is left in the file. */
static int make_plan(gconv *c)
{
    int rc = 0;
    const spx_archmap *m = spx_archmap_find("llama");
    size_t nt = spx_gguf_tensor_count(c->g), cap;
    if (!m)
        SPX_FAIL(c->ctx, rc, SPX_E_INTERNAL, "no llama tensor table");
    if (spx_ckd_mul_size(m->count, (size_t)c->cfg.n_layers + 2, &cap))
        SPX_FAIL(c->ctx, rc, SPX_E_OVERFLOW, "tensor count overflows");
    if (!(c->plan = calloc(cap, sizeof *c->plan)) || !(c->used = calloc(nt + 1, 1)))
        SPX_FAIL(c->ctx, rc, SPX_E_NOMEM, "out of memory");
    for (int place = SPX_PLACE_FIRST; place <= SPX_PLACE_LAST; place++) {
        uint32_t nl = place == SPX_PLACE_BLOCK ? c->cfg.n_layers : 1;
        for (uint32_t l = 0; l < nl; l++)
            for (size_t i = 0; i < m->count; i++)
                if (m->entries[i].place == place)
                    SPX_TRY(rc, plan_one(c, &m->entries[i], l));
    }
    for (size_t k = 0; k < nt; k++) {
        const spx_gguf_tensor *t = spx_gguf_tensor_at(c->g, k);
        unsigned long blk = 0;
        if (c->used[k])
            continue;
        if (strcmp(t->name, "rope_freqs.weight") == 0)
            SPX_FAIL(c->ctx, rc, SPX_E_UNSUPPORTED, "%s: tensor rope_freqs.weight (info at byte %llu): per-frequency "
                     "rotary factors (llama3 rope scaling) are not supported", c->path,
                     (unsigned long long)t->info_off);
        if (sscanf(t->name, "blk.%lu.", &blk) == 1 && blk >= c->cfg.n_layers)
            SPX_FAIL(c->ctx, rc, SPX_E_CONFIG, "%s: tensor %s belongs to block %lu but llama.block_count is %u",
                     c->path, t->name, blk, c->cfg.n_layers);
        SPX_TRY(rc, spx_conv_list_add(c->ctx, &c->rep->skipped, &c->rep->n_skipped,
                                      "%s (not used by the llama architecture)", t->name));
    }
done:
    return rc;
}

/* Which tokenizer to carry over (checked before the output exists). */
static int plan_tokenizer(gconv *c)
{
    int rc = 0;
    const char *s;
    uint64_t n;
    const spx_gguf_kv *model = spx_gguf_find_kv(c->g, "tokenizer.ggml.model");
    c->hf_json = spx_gguf_find_kv(c->g, "tokenizer.huggingface.json");
    if (c->hf_json) {
        if (c->hf_json->type != SPX_GGUF_STRING)
            SPX_FAIL(c->ctx, rc, SPX_E_TOKENIZER, "%s: tokenizer.huggingface.json (byte %llu) is not a string", c->path,
                     (unsigned long long)c->hf_json->off);
        snprintf(c->rep->tokenizer, sizeof c->rep->tokenizer, "huggingface.json");
        return 0;
    }
    if (!model)
        return note(c, "the GGUF file has no tokenizer (tokenizer.ggml.model): the .spx has none");
    SPX_TRY(rc, spx_gguf_get_str(c->ctx, c->g, "tokenizer.ggml.model", &s, &n));
    if (!str_is(s, n, "llama"))
        return spx_conv_list_add(c->ctx, &c->rep->notes, &c->rep->n_notes, "tokenizer.ggml.model '%.*s' is not "
                                 "supported by the spx tokenizer (only 'llama'): the .spx has no tokenizer",
                                 (int)(n > 40 ? 40 : n), s);
    c->tokens = spx_gguf_find_kv(c->g, "tokenizer.ggml.tokens");
    c->scores = spx_gguf_find_kv(c->g, "tokenizer.ggml.scores");
    c->types = spx_gguf_find_kv(c->g, "tokenizer.ggml.token_type");
    if (!c->tokens || c->tokens->type != SPX_GGUF_ARRAY || c->tokens->elem_type != SPX_GGUF_STRING)
        SPX_FAIL(c->ctx, rc, c->tokens ? SPX_E_TOKENIZER : SPX_E_MISSING, "%s: tokenizer.ggml.tokens is missing or "
                 "not an array of strings", c->path);
    if (c->tokens->count != c->cfg.vocab_size)
        SPX_FAIL(c->ctx, rc, SPX_E_TOKENIZER, "%s: tokenizer.ggml.tokens (byte %llu) has %llu entries, the model's "
                 "vocabulary %u", c->path, (unsigned long long)c->tokens->off, (unsigned long long)c->tokens->count,
                 c->cfg.vocab_size);
    if (c->scores && (c->scores->type != SPX_GGUF_ARRAY || c->scores->count != c->tokens->count ||
                      (c->scores->elem_type != SPX_GGUF_F32 && c->scores->elem_type != SPX_GGUF_F64)))
        SPX_FAIL(c->ctx, rc, SPX_E_TOKENIZER, "%s: tokenizer.ggml.scores (byte %llu) is not a float array with one "
                 "score per token", c->path, (unsigned long long)c->scores->off);
    if (c->types && (c->types->type != SPX_GGUF_ARRAY || c->types->count != c->tokens->count ||
                     c->types->elem_type == SPX_GGUF_STRING || c->types->elem_type == SPX_GGUF_F32 ||
                     c->types->elem_type == SPX_GGUF_F64))
        SPX_FAIL(c->ctx, rc, SPX_E_TOKENIZER, "%s: tokenizer.ggml.token_type (byte %llu) is not an integer array "
                 "with one entry per token", c->path, (unsigned long long)c->types->off);
    if (!c->scores)
        SPX_TRY(rc, note(c, "tokenizer.ggml.scores is absent: every token gets score 0"));
    snprintf(c->rep->tokenizer, sizeof c->rep->tokenizer, "ggml.llama");
done:
    return rc;
}

static int write_tokenizer(gconv *c, spx_writer *w)
{
    int rc = 0;
    uint64_t n = c->tokens ? c->tokens->count : 0;
    const char **strs = NULL;
    uint64_t *l64 = NULL;
    size_t *lens = NULL;
    float *scores = NULL;
    int32_t *types = NULL;
    spx_ctx *wc = spx_writer_ctx(w);
    if (c->hf_json)
        return spx_writer_meta_str(w, "tokenizer.huggingface.json", (const char *)c->hf_json->raw,
                                   (size_t)c->hf_json->count);
    if (!c->tokens)
        return 0;
    strs = calloc((size_t)n + 1, sizeof *strs);
    l64 = calloc((size_t)n + 1, sizeof *l64);
    lens = calloc((size_t)n + 1, sizeof *lens);
    scores = calloc((size_t)n + 1, sizeof *scores);
    types = calloc((size_t)n + 1, sizeof *types);
    if (!strs || !l64 || !lens || !scores || !types)
        SPX_FAIL(wc, rc, SPX_E_NOMEM, "out of memory for %llu tokens", (unsigned long long)n);
    spx_gguf_arr_strs(c->tokens, strs, l64);
    for (uint64_t i = 0; i < n; i++) {
        lens[i] = (size_t)l64[i];
        scores[i] = c->scores ? (float)spx_gguf_arr_f64(c->scores, i) : 0.0f;
        types[i] = c->types ? (int32_t)spx_gguf_arr_i64(c->types, i) : 0;
    }
    SPX_TRY(rc, spx_writer_meta_str(w, "tokenizer.ggml.model", "llama", 5));
    SPX_TRY(rc, spx_writer_meta_arr_str(w, "tokenizer.ggml.tokens", strs, lens, n));
    SPX_TRY(rc, spx_writer_meta_arr(w, "tokenizer.ggml.scores", SPX_META_F32, scores, n));
    if (c->types)
        SPX_TRY(rc, spx_writer_meta_arr(w, "tokenizer.ggml.token_type", SPX_META_I32, types, n));
    if (c->cfg.bos_id >= 0)
        SPX_TRY(rc, spx_writer_meta_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->cfg.bos_id));
    if (c->cfg.eos_id >= 0)
        SPX_TRY(rc, spx_writer_meta_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->cfg.eos_id));
done:
    free(strs);
    free(l64);
    free(lens);
    free(scores);
    free(types);
    return rc;
}

static int out_dtype(const gconv *c, uint32_t type)
{
    if (c->o->dtype != SPX_CONVERT_KEEP)
        return c->o->dtype;
    return type == SPX_GGML_F16 ? SPX_DTYPE_F16 : type == SPX_GGML_BF16 ? SPX_DTYPE_BF16 : SPX_DTYPE_F32;
}

static int nonfinite_err(gconv *c, const gitem *p, uint64_t bad)
{
    const spx_gguf_tensor *t = p->t;
    uint64_t byte = spx_gguf_data_offset(c->g) + t->offset +
                    (t->type == SPX_GGML_Q8_0 ? bad / SPX_GGUF_Q8_0_BLOCK * SPX_GGUF_Q8_0_BYTES
                                              : bad * (t->type == SPX_GGML_F32 ? 4 : 2));
    return spx_err_set(c->ctx, SPX_E_NUMERIC, "%s: tensor %s has a non-finite value (NaN or Inf) at flat index %llu "
                       "(byte %llu of the file)", c->path, p->canon, (unsigned long long)bad,
                       (unsigned long long)byte);
}

static int write_one(gconv *c, spx_writer *w, const gitem *p)
{
    int rc = 0;
    spx_ctx *ctx = c->ctx;
    const spx_gguf_tensor *t = p->t;
    int dt = out_dtype(c, t->type);
    int src_dt = t->type == SPX_GGML_F16 ? SPX_DTYPE_F16 : t->type == SPX_GGML_BF16 ? SPX_DTYPE_BF16 : SPX_DTYPE_F32;
    size_t n = (size_t)t->numel, es = spx_dtype_size(dt), bytes, fbytes;
    uint64_t rows = p->dims[0], cols = p->ndim == 2 ? p->dims[1] : 1, bad;
    void *buf = NULL, *buf2 = NULL;
    const void *data = t->data;
    if (t->numel > SIZE_MAX || spx_ckd_mul_size(n, es, &bytes) || spx_ckd_mul_size(n, 4, &fbytes))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "tensor %s: size overflows", p->canon);
    if (t->type != SPX_GGML_Q8_0 && src_dt == dt) {
        /* stored as the output dtype: check and copy the bytes (permuting q/k rows) */
        if ((bad = spx_first_nonfinite(t->data, dt, t->numel)) < t->numel)
            SPX_TRY(rc, nonfinite_err(c, p, bad));
        if (p->xform != SPX_XFORM_NONE) {
            if (!(buf = malloc(bytes ? bytes : 1)))
                SPX_FAIL(ctx, rc, SPX_E_NOMEM, "tensor %s: out of memory for %zu bytes", p->canon, bytes);
            SPX_TRY(rc, spx_xform_apply(ctx, p->xform, c->cfg.head_dim, t->data, buf, es, rows, cols));
            data = buf;
        }
    } else {
        float *f = malloc(fbytes ? fbytes : 1), *g2;
        buf = f;
        if (!f || !(buf2 = malloc(fbytes ? fbytes : 1)))
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "tensor %s: out of memory for %zu bytes", p->canon, fbytes);
        spx_gguf_to_f32(t, f);
        if ((bad = spx_first_nonfinite(f, SPX_DTYPE_F32, t->numel)) < t->numel)
            SPX_TRY(rc, nonfinite_err(c, p, bad));
        g2 = buf2;
        SPX_TRY(rc, spx_xform_apply(ctx, p->xform, c->cfg.head_dim, f, g2, 4, rows, cols));
        data = g2;
        if (dt != SPX_DTYPE_F32) {   /* f32 -> f16/bf16 in the first buffer */
            if (dt == SPX_DTYPE_F16)
                spx_f32_to_f16_n(g2, f, n);
            else
                spx_f32_to_bf16_n(g2, f, n);
            if ((bad = spx_first_nonfinite(f, dt, t->numel)) < t->numel)
                SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "tensor %s: value %g at flat index %llu overflows %s", p->canon,
                         (double)g2[bad], (unsigned long long)bad, spx_dtype_name(dt));
            data = f;
        }
    }
    spx_tensor desc;
    spx_archmap_dense_desc(p->e, p->layer, p->canon, dt, p->ndim, p->dims, t->numel, &desc);
    if ((rc = spx_writer_add(w, &desc, data, bytes)) < 0) {
        *ctx = *spx_writer_ctx(w);
        goto done;
    }
    c->rep->n_tensors++;
    c->rep->n_params += t->numel;
    c->rep->data_bytes += bytes;
done:
    free(buf);
    free(buf2);
    return rc;
}

static int write_all(gconv *c)
{
    int rc = 0;
    spx_ctx *ctx = c->ctx;
    spx_writer *w = NULL;
    char writer_name[64];
    struct stat st;
    snprintf(writer_name, sizeof writer_name, "spx %s", SPX_VERSION_STRING);
    SPX_TRY(rc, spx_writer_open(ctx, c->o->output, writer_name, &w));
#define W(expr) do { if ((rc = (expr)) < 0) { *ctx = *spx_writer_ctx(w); goto done; } } while (0)
    W(spx_config_to_meta(w, &c->cfg));
    W(spx_writer_meta_str(w, "spx.source.format", "gguf", 4));
    W(spx_writer_meta_str(w, "spx.source.dtype", c->rep->source_dtype, strlen(c->rep->source_dtype)));
    if ((rc = write_tokenizer(c, w)) < 0) {
        *ctx = *spx_writer_ctx(w);
        spx_err_prefix(ctx, "%s: tokenizer: ", c->path);
        goto done;
    }
    for (size_t i = 0; i < c->n_plan; i++) {
        spx_progress_report(&c->o->progress, "convert", i, c->n_plan);
        SPX_TRY(rc, write_one(c, w, &c->plan[i]));
    }
    W(spx_writer_finish(w));
#undef W
    spx_progress_report(&c->o->progress, "convert", c->n_plan, c->n_plan);
    if (stat(c->o->output, &st) == 0)
        c->rep->file_bytes = (uint64_t)st.st_size;
done:
    spx_writer_free(w);
    return rc;
}

int spx_gguf_convert(spx_ctx *ctx, const spx_convert_opts *o, spx_convert_report *rep)
{
    int rc = 0, q8 = 0;
    gconv c;
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    c.o = o;
    c.rep = rep;
    c.path = o->input;
    snprintf(rep->source_format, sizeof rep->source_format, "gguf");
    snprintf(rep->tokenizer, sizeof rep->tokenizer, "none");
    rep->n_shards = 1;
    if (o->tokenizer)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "convert: --tokenizer is not used with GGUF input (the tokenizer comes from the "
                 "GGUF metadata)");
    SPX_TRY(rc, spx_gguf_open(ctx, o->input, &c.g));
    SPX_TRY(rc, read_config(&c));
    SPX_TRY(rc, set_name(&c));
    SPX_TRY(rc, make_plan(&c));
    SPX_TRY(rc, plan_tokenizer(&c));
    const char *sdt = c.n_plan ? spx_ggml_type_name(c.plan[0].t->type) : "F32";
    int odt = c.n_plan ? out_dtype(&c, c.plan[0].t->type) : SPX_DTYPE_F32, mixed_out = 0;
    for (size_t i = 0; i < c.n_plan; i++) {
        if (c.plan[i].t->type != c.plan[0].t->type)
            sdt = "mixed";
        mixed_out |= out_dtype(&c, c.plan[i].t->type) != odt;
        q8 |= c.plan[i].t->type == SPX_GGML_Q8_0;
    }
    snprintf(rep->source_dtype, sizeof rep->source_dtype, "%s", sdt);
    snprintf(rep->dtype, sizeof rep->dtype, "%s", mixed_out ? "mixed" : spx_dtype_name(odt));
    if (q8 && o->dtype == SPX_CONVERT_KEEP)
        SPX_TRY(rc, note(&c, "Q8_0 tensors are dequantized exactly to F32 (scale * int8)"));
    rep->config = c.cfg;
    SPX_TRY(rc, write_all(&c));
done:
    free(c.plan);
    free(c.used);
    spx_gguf_free(c.g);
    return rc;
}
