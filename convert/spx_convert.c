/* spx_convert.c: the conversion driver (contract in spx_convert.h).
 *
 * Phases: (1) open the source and derive the config; (2) plan: resolve every canonical tensor of
 * the architecture table to a source tensor, checking presence, shape and dtype, and list what is
 * skipped; (3) load the tokenizer; only then (4) open the writer and stream the tensors. Every
 * input error of phases 1-3 is found before an output file exists. */
#include "spx_convert.h"

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
#include "spx_hfconfig.h"
#include "spx_llama2c.h"
#include "spx_mem.h"
#include "spx_safetensors.h"

#define PATH_CAP 4096

typedef struct plan_item {
    const spx_archmap_entry *e;
    uint32_t layer;
    char canon[SPX_NAME_MAX];
    char src_name[160];             /* checkpoint name, for messages */
    const char *file;               /* checkpoint file, for messages */
    const void *data;
    int dtype;                      /* spx_st_dtype of the source */
    uint32_t ndim;
    uint64_t dims[2];               /* source dims */
    uint64_t numel;                 /* source elements */
    uint32_t ondim;                 /* canonical (output) shape, after the transform */
    uint64_t odims[2];
    uint64_t onumel;
    int xform;
    int part;                       /* fused q/k/v splits: 0 q, 1 k, 2 v */
} plan_item;

typedef struct conv {
    spx_ctx *ctx;
    const spx_convert_opts *o;
    spx_convert_report *rep;
    spx_st_set *st;
    spx_llama2c *l2c;
    const spx_archmap *map;
    spx_model_config cfg;
    char dir[PATH_CAP];             /* directory of the checkpoint */
    char path[PATH_CAP];            /* checkpoint file (or index) */
    plan_item *plan;
    size_t n_plan;
    unsigned char *used;            /* [spx_st_set_count]: consumed or accounted for */
    spx_conv_tok tok;
} conv;

static int path_join(spx_ctx *ctx, char *buf, const char *dir, const char *name)
{
    int n = snprintf(buf, PATH_CAP, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_CAP)
        return spx_err_set(ctx, SPX_E_ARG, "path too long: %s/%s", dir, name);
    return 0;
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *sfx)
{
    size_t n = strlen(s), m = strlen(sfx);
    return n >= m && strcmp(s + n - m, sfx) == 0;
}

static void shape_str(char *buf, size_t cap, uint32_t ndim, const uint64_t *dims)
{
    size_t k = 0;
    k += (size_t)snprintf(buf, cap, "[");
    for (uint32_t i = 0; i < ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

/* ---- phase 1: source and config ----------------------------------------------------------- */

static int note(conv *c, const char *text)
{
    return spx_conv_list_add(c->ctx, &c->rep->notes, &c->rep->n_notes, "%s", text);
}

static int open_source(conv *c)
{
    int rc = 0;
    spx_ctx *ctx = c->ctx;
    const char *in = c->o->input;
    struct stat st;
    int is_l2c = 0;
    if (stat(in, &st) != 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: no such file or directory", in);
    if (strlen(in) >= PATH_CAP)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "input path too long");
    if (S_ISDIR(st.st_mode)) {
        snprintf(c->dir, sizeof c->dir, "%s", in);
        SPX_TRY(rc, path_join(ctx, c->path, in, "model.safetensors"));
        if (!is_file(c->path)) {
            SPX_TRY(rc, path_join(ctx, c->path, in, "model.safetensors.index.json"));
            if (!is_file(c->path))
                SPX_FAIL(ctx, rc, SPX_E_MISSING, "%s: directory has neither model.safetensors nor "
                         "model.safetensors.index.json", in);
        }
    } else {
        char tmp[PATH_CAP];
        snprintf(c->path, sizeof c->path, "%s", in);
        snprintf(tmp, sizeof tmp, "%s", in);
        snprintf(c->dir, sizeof c->dir, "%s", dirname(tmp));
        if (ends_with(in, ".bin")) {
            is_l2c = 1;
        } else if (!ends_with(in, ".safetensors") && !ends_with(in, ".json")) {
            /* by content: safetensors has its JSON header's '{' at byte 8 */
            unsigned char head[9] = {0};
            FILE *fp = fopen(in, "rb");
            size_t got = fp ? fread(head, 1, sizeof head, fp) : 0;
            if (fp)
                fclose(fp);
            if (got >= 8 && memcmp(head, SPX_MAGIC_BYTES, 8) == 0)
                SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: input is already a .spx file", in);
            is_l2c = !(got == sizeof head && head[8] == '{');
        }
    }
    if (is_l2c) {
        snprintf(c->rep->source_format, sizeof c->rep->source_format, "llama2c");
        SPX_TRY(rc, spx_llama2c_open(ctx, c->path, &c->l2c));
        c->cfg = *spx_llama2c_config(c->l2c);
        c->rep->n_shards = 1;
        return 0;
    }
    snprintf(c->rep->source_format, sizeof c->rep->source_format, "safetensors");
    SPX_TRY(rc, spx_st_set_open(ctx, c->path, &c->st));
    c->rep->n_shards = spx_st_set_shard_count(c->st);
    char cfg_path[PATH_CAP];
    spx_hfconfig h;
    SPX_TRY(rc, path_join(ctx, cfg_path, c->dir, "config.json"));
    if (!is_file(cfg_path))
        SPX_FAIL(ctx, rc, SPX_E_MISSING, "%s: no config.json beside the checkpoint", cfg_path);
    SPX_TRY(rc, spx_hfconfig_read(ctx, cfg_path, &h));
    c->cfg = h.cfg;
    if (!h.tie_set) {
        c->cfg.tied_embeddings = spx_st_set_index_of(c->st, "lm_head.weight") < 0;
        if (c->cfg.tied_embeddings)
            SPX_TRY(rc, note(c, "config.json has no tie_word_embeddings and the checkpoint has no "
                                       "lm_head.weight: embeddings are taken as tied"));
    }
    if (h.sliding_window)
        SPX_TRY(rc, spx_conv_list_add(ctx, &c->rep->notes, &c->rep->n_notes,
                                      "%s uses sliding-window attention (window %u): spx attends to the full "
                                      "context, which is exact for contexts up to the window", h.model_type,
                                      h.sliding_window));
    if (h.eos_list)
        SPX_TRY(rc, spx_conv_list_add(ctx, &c->rep->notes, &c->rep->n_notes,
                                      "eos_token_id is a list: the first id (%d) is used", c->cfg.eos_id));
done:
    return rc;
}

static int set_name(conv *c)
{
    char tmp[PATH_CAP];
    const char *name = c->o->name;
    if (!name) {
        if (c->l2c) {   /* file stem */
            snprintf(tmp, sizeof tmp, "%s", c->path);
            name = basename(tmp);
            char *dot = strrchr(name, '.');
            if (dot && dot != name)
                *dot = '\0';
        } else {
            char *real = realpath(c->dir, NULL);
            snprintf(tmp, sizeof tmp, "%s", real ? real : c->dir);
            free(real);
            name = basename(tmp);
        }
    }
    if (strlen(name) >= sizeof c->cfg.name)
        return spx_err_set(c->ctx, SPX_E_ARG, "model name '%.40s...' is longer than %zu bytes", name,
                           sizeof c->cfg.name - 1);
    snprintf(c->cfg.name, sizeof c->cfg.name, "%s", name);
    return 0;
}

/* ---- phase 2: plan ------------------------------------------------------------------------ */

/* Find the source of entry e / layer. Returns 1 and fills p when present, 0 when absent. */
static int find_source(conv *c, const spx_archmap_entry *e, uint32_t layer, plan_item *p)
{
    memset(p, 0, sizeof *p);
    p->e = e;
    p->layer = layer;
    spx_archmap_canon_name(e, layer, p->canon, sizeof p->canon);
    if (c->l2c) {
        spx_llama2c_tensor t;
        snprintf(p->src_name, sizeof p->src_name, "(none in llama2.c format)");
        if (!spx_llama2c_find(c->l2c, e->base, e->suffix, layer, &t))
            return 0;
        snprintf(p->src_name, sizeof p->src_name, "%s", t.src_name);
        p->file = spx_llama2c_path(c->l2c);
        p->data = t.data;
        p->dtype = SPX_ST_F32;
        p->ndim = t.ndim;
        p->dims[0] = t.dims[0];
        p->dims[1] = t.dims[1];
        p->numel = t.numel;
        p->xform = t.xform;
        return 1;
    }
    if (spx_archmap_src_name(e, layer, p->src_name, sizeof p->src_name) < 0)
        return 0;
    long k = spx_st_set_index_of(c->st, p->src_name);
    const char *pre = c->map->opt_prefix;
    if (k < 0 && pre && strncmp(p->src_name, pre, strlen(pre)) == 0) {
        /* checkpoints saved from the base model omit the prefix (GPT-2 "h.0...", OPT "decoder...") */
        k = spx_st_set_index_of(c->st, p->src_name + strlen(pre));
        if (k >= 0)
            memmove(p->src_name, p->src_name + strlen(pre), strlen(p->src_name + strlen(pre)) + 1);
    }
    if (k < 0)
        return 0;
    const spx_st_file *f = NULL;
    const spx_st_tensor *t = spx_st_set_tensor(c->st, (size_t)k, &f);
    c->used[k] = 1;
    p->file = spx_st_path(f);
    p->data = spx_st_data(f, t);
    p->dtype = t->dtype;
    p->numel = t->numel;
    p->xform = e->xform;
    p->part = e->part;
    /* shapes of more than 2 dims cannot match any table entry: keep the first two for the message */
    p->ndim = t->ndim;
    p->dims[0] = t->ndim > 0 ? t->shape[0] : 0;
    p->dims[1] = t->ndim > 1 ? t->shape[1] : 0;
    if (t->ndim > 2)
        p->ndim = 3;   /* forces a shape mismatch below */
    return 1;
}

static int plan_one(conv *c, const spx_archmap_entry *e, uint32_t layer)
{
    int rc = 0;
    spx_ctx *ctx = c->ctx;
    plan_item p;
    int present = spx_archmap_present(e, &c->cfg);
    int found = find_source(c, e, layer, &p);
    if (found && !present) {
        if (e->cond == SPX_COND_UNTIED)   /* tied: the classifier is token_embd, lm_head is redundant */
            return spx_conv_list_add(ctx, &c->rep->skipped, &c->rep->n_skipped,
                                     "%s (embeddings are tied: token_embd.weight is the classifier)", p.src_name);
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: checkpoint has tensor '%s' (%s) but the config says the model has none "
                 "(check attention_bias / mlp_bias / tie_word_embeddings)", c->path, p.src_name, p.canon);
    }
    if (!present)
        return 0;
    if (!found)
        SPX_FAIL(ctx, rc, SPX_E_MISSING, "%s: missing tensor %s (checkpoint name %s)", c->path, p.canon, p.src_name);
    uint64_t want[2];
    uint32_t want_nd;
    if (c->l2c)   /* llama2.c tensors come in the canonical shape (row permutations only) */
        spx_archmap_shape(e, &c->cfg, want, &want_nd);
    else
        spx_archmap_src_shape(e, &c->cfg, want, &want_nd);
    if (p.ndim != want_nd || p.dims[0] != want[0] || (want_nd == 2 && p.dims[1] != want[1])) {
        char got_s[96], want_s[96];
        shape_str(got_s, sizeof got_s, p.ndim > 2 ? 2 : p.ndim, p.dims);
        if (p.ndim > 2)
            snprintf(got_s + strlen(got_s) - 1, sizeof got_s - strlen(got_s) + 1, ", ...]");
        shape_str(want_s, sizeof want_s, want_nd, want);
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: tensor %s (%s): got shape %s, expected %s from the config", p.file,
                 p.canon, p.src_name, got_s, want_s);
    }
    if (p.dtype != SPX_ST_F32 && p.dtype != SPX_ST_F16 && p.dtype != SPX_ST_BF16 && p.dtype != SPX_ST_F64)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: tensor %s (%s) has dtype %s: only F32, F16, BF16 and F64 weights "
                 "can be converted (quantized checkpoints are not supported)", p.file, p.src_name, p.canon,
                 spx_st_dtype_name(p.dtype));
    spx_archmap_shape(e, &c->cfg, p.odims, &p.ondim);
    p.onumel = p.ondim == 2 ? p.odims[0] * p.odims[1] : p.odims[0];
    c->plan[c->n_plan++] = p;
done:
    return rc;
}

static int make_plan(conv *c)
{
    int rc = 0;
    spx_ctx *ctx = c->ctx;
    const spx_archmap *m = c->map;
    size_t per_block = 0, global = 0, cap;
    for (size_t i = 0; i < m->count; i++)
        if (m->entries[i].place == SPX_PLACE_BLOCK)
            per_block++;
        else
            global++;
    if (spx_ckd_mul_size(per_block, c->cfg.n_layers, &cap) || spx_ckd_add_size(cap, global, &cap))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "tensor count overflows");
    c->plan = calloc(cap + 1, sizeof *c->plan);
    if (!c->plan)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    for (int place = SPX_PLACE_FIRST; place <= SPX_PLACE_LAST; place++) {
        uint32_t nl = place == SPX_PLACE_BLOCK ? c->cfg.n_layers : 1;
        for (uint32_t l = 0; l < nl; l++)
            for (size_t i = 0; i < m->count; i++)
                if (m->entries[i].place == place)
                    SPX_TRY(rc, plan_one(c, &m->entries[i], l));
    }
    if (c->l2c) {
        for (size_t i = 0; i < spx_llama2c_skipped_count(c->l2c); i++)
            SPX_TRY(rc, spx_conv_list_add(ctx, &c->rep->skipped, &c->rep->n_skipped, "%s",
                                          spx_llama2c_skipped(c->l2c, i)));
        return 0;
    }
    /* Checkpoint tensors no entry consumed: out-of-range block indices are a config mismatch,
     * the rest (e.g. rotary_emb.inv_freq) are skipped. A tied lm_head was listed by plan_one. */
    for (size_t k = 0; k < spx_st_set_count(c->st); k++) {
        const spx_st_tensor *t = spx_st_set_tensor(c->st, k, NULL);
        uint32_t layer = 0;
        if (c->used[k])
            continue;
        long e = spx_archmap_match(m, t->name, &layer);
        if (e >= 0 && m->entries[e].place == SPX_PLACE_BLOCK && layer >= c->cfg.n_layers)
            SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: tensor '%s' belongs to block %u but the config has %u layers", c->path,
                     t->name, layer, c->cfg.n_layers);
        SPX_TRY(rc, spx_conv_list_add(ctx, &c->rep->skipped, &c->rep->n_skipped, "%s (not used by the %s architecture)",
                                      t->name, m->arch));
    }
done:
    return rc;
}

/* ---- phase 4: tensors --------------------------------------------------------------------- */

static int spx_of_st(int st_dtype)
{
    return st_dtype == SPX_ST_F16 ? SPX_DTYPE_F16 : st_dtype == SPX_ST_BF16 ? SPX_DTYPE_BF16 : SPX_DTYPE_F32;
}

static int decode_f32(const plan_item *p, float *out)
{
    size_t n = (size_t)p->numel;
    const unsigned char *s = p->data;
    if (p->dtype == SPX_ST_F32) {
        memcpy(out, s, n * 4);
    } else if (p->dtype == SPX_ST_F16) {
        spx_f16_to_f32_n(s, out, n);
    } else if (p->dtype == SPX_ST_BF16) {
        spx_bf16_to_f32_n(s, out, n);
    } else {
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, s + 8 * i, 8);
            out[i] = isfinite(d) && fabs(d) <= 3.4028234663852886e38 ? (float)d : (float)INFINITY;
        }
    }
    return 0;
}

/* Flat index `bad` is in source order (before any row permutation). */
static int nonfinite_err(conv *c, const plan_item *p, uint64_t bad)
{
    return spx_err_set(c->ctx, SPX_E_NUMERIC, "%s: tensor %s (%s) has a non-finite value (NaN or Inf) at flat index "
                       "%llu (byte %llu of the source tensor)", p->file, p->canon, p->src_name,
                       (unsigned long long)bad, (unsigned long long)(bad * (spx_st_dtype_bits(p->dtype) / 8)));
}

static int write_one(conv *c, spx_writer *w, const plan_item *p)
{
    int rc = 0;
    spx_ctx *ctx = c->ctx;
    void *buf = NULL, *buf2 = NULL;
    unsigned long long held = 0;   /* --max-memory reservation */
    int out_dt = c->o->dtype == SPX_CONVERT_KEEP ? spx_of_st(p->dtype) : c->o->dtype;
    size_t esize = spx_dtype_size(out_dt), n = (size_t)p->numel, on = (size_t)p->onumel, bytes, f32_bytes, of32_bytes;
    uint64_t rows = p->dims[0], cols = p->ndim == 2 ? p->dims[1] : 1;
    const void *data = p->data;
    uint64_t bad;
    if (p->numel > SIZE_MAX || p->onumel > p->numel || spx_ckd_mul_size(on, esize, &bytes) ||
        spx_ckd_mul_size(n, 4, &f32_bytes) || spx_ckd_mul_size(on, 4, &of32_bytes))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "tensor %s: size overflows", p->canon);
    {   /* --max-memory: the conversion buffers this tensor needs (the input itself is mapped) */
        int same = p->dtype != SPX_ST_F64 && spx_of_st(p->dtype) == out_dt, xf = p->xform != SPX_XFORM_NONE;
        unsigned long long need = same ? (xf ? bytes : 0)
                                       : (unsigned long long)f32_bytes + (xf ? of32_bytes : 0) +
                                             (out_dt != SPX_DTYPE_F32 ? bytes : 0);
        SPX_TRY(rc, spx_mem_reserve(ctx, &held, need, "conversion buffers of tensor %s", p->canon));
    }
    if (p->dtype != SPX_ST_F64 && spx_of_st(p->dtype) == out_dt) {
        /* same dtype: check the stored values, copy bytes only when rows must be permuted */
        if ((bad = spx_first_nonfinite(p->data, out_dt, p->numel)) < p->numel)
            SPX_TRY(rc, nonfinite_err(c, p, bad));
        if (p->xform != SPX_XFORM_NONE) {
            if (!(buf = malloc(bytes ? bytes : 1)))
                SPX_FAIL(ctx, rc, SPX_E_NOMEM, "tensor %s: out of memory for %zu bytes", p->canon, bytes);
            SPX_TRY(rc, spx_xform_apply_part(ctx, p->xform, p->part, c->cfg.head_dim, p->data, buf, esize, rows, cols));
            data = buf;
        }
    } else {
        float *f = malloc(f32_bytes ? f32_bytes : 1);
        buf = f;
        if (!f)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "tensor %s: out of memory for %zu bytes", p->canon, f32_bytes);
        decode_f32(p, f);
        if ((bad = spx_first_nonfinite(f, SPX_DTYPE_F32, p->numel)) < p->numel)
            SPX_TRY(rc, nonfinite_err(c, p, bad));   /* includes F64 values beyond the F32 range */
        if (p->xform != SPX_XFORM_NONE) {
            if (!(buf2 = malloc(of32_bytes ? of32_bytes : 1)))
                SPX_FAIL(ctx, rc, SPX_E_NOMEM, "tensor %s: out of memory", p->canon);
            SPX_TRY(rc, spx_xform_apply_part(ctx, p->xform, p->part, c->cfg.head_dim, f, buf2, 4, rows, cols));
            free(buf);
            buf = f = buf2;
            buf2 = NULL;
        }
        data = f;
        if (out_dt != SPX_DTYPE_F32) {
            if (!(buf2 = malloc(bytes ? bytes : 1)))
                SPX_FAIL(ctx, rc, SPX_E_NOMEM, "tensor %s: out of memory", p->canon);
            if (out_dt == SPX_DTYPE_F16)
                spx_f32_to_f16_n(f, buf2, on);
            else
                spx_f32_to_bf16_n(f, buf2, on);
            bad = spx_first_nonfinite(buf2, out_dt, p->onumel);
            if (bad < p->onumel)
                SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "tensor %s (%s): value %g at flat index %llu overflows %s", p->canon,
                         p->src_name, (double)f[bad], (unsigned long long)bad, spx_dtype_name(out_dt));
            data = buf2;
        }
    }
    spx_tensor desc;
    spx_archmap_dense_desc(p->e, p->layer, p->canon, out_dt, p->ondim, p->odims, p->onumel, &desc);
    rc = spx_writer_add(w, &desc, data, bytes);
    if (rc < 0) {
        *ctx = *spx_writer_ctx(w);
        goto done;
    }
    c->rep->n_tensors++;
    c->rep->n_params += p->onumel;
    c->rep->data_bytes += bytes;
done:
    spx_mem_release(ctx, &held);
    free(buf);
    free(buf2);
    return rc;
}

/* Memory bound: the input tensor was read through a private read-only file map; tell the kernel
 * its pages are not needed any more, so the resident set stays near one tensor instead of growing
 * to the checkpoint size (they are clean file pages: a later read, e.g. the k/v parts of a fused
 * qkv tensor, simply faults them in again). Advisory; failures are ignored. */
static void drop_pages(const plan_item *p)
{
    unsigned bits = spx_st_dtype_bits(p->dtype);
    if (bits && p->data && p->numel <= (UINT64_MAX - 7) / bits)
        spx_release_mapped(p->data, (size_t)((p->numel * bits + 7) / 8));
}

static int write_all(conv *c)
{
    int rc = 0;
    spx_ctx *ctx = c->ctx;
    spx_writer *w = NULL;
    char writer_name[64];
    snprintf(writer_name, sizeof writer_name, "spx %s", SPX_VERSION_STRING);
    SPX_TRY(rc, spx_writer_open(ctx, c->o->output, writer_name, &w));
#define W(expr) do { if ((rc = (expr)) < 0) { *ctx = *spx_writer_ctx(w); goto done; } } while (0)
    W(spx_config_to_meta(w, &c->cfg));
    const char *fmt = c->rep->source_format, *dt = c->rep->source_dtype;
    W(spx_writer_meta_str(w, "spx.source.format", fmt, strlen(fmt)));
    W(spx_writer_meta_str(w, "spx.source.dtype", dt, strlen(dt)));
    W(spx_conv_tok_write(w, &c->tok));
    for (size_t i = 0; i < c->n_plan; i++) {
        spx_progress_report(&c->o->progress, "convert", i, c->n_plan);
        SPX_TRY(rc, write_one(c, w, &c->plan[i]));
        drop_pages(&c->plan[i]);
    }
    W(spx_writer_finish(w));
#undef W
    spx_progress_report(&c->o->progress, "convert", c->n_plan, c->n_plan);
    struct stat st;
    if (stat(c->o->output, &st) == 0)
        c->rep->file_bytes = (uint64_t)st.st_size;
done:
    spx_writer_free(w);   /* removes the temporary file unless finish succeeded */
    return rc;
}

/* ---- driver --------------------------------------------------------------------------------- */

int spx_convert(spx_ctx *ctx, const spx_convert_opts *o, spx_convert_report *rep_in)
{
    int rc = 0;
    spx_convert_report local;
    conv c;
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    c.o = o;
    c.rep = rep_in ? rep_in : &local;
    memset(c.rep, 0, sizeof *c.rep);
    snprintf(c.rep->tokenizer, sizeof c.rep->tokenizer, "none");
    if (!o || !o->input || !o->output)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "convert: input and output paths are required");
    if (o->dtype != SPX_CONVERT_KEEP && o->dtype != SPX_DTYPE_F32 && o->dtype != SPX_DTYPE_F16 &&
        o->dtype != SPX_DTYPE_BF16)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "convert: output dtype must be keep, f32, f16 or bf16");
    struct stat si, so;
    if (stat(o->input, &si) == 0 && stat(o->output, &so) == 0 && si.st_dev == so.st_dev && si.st_ino == so.st_ino)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "convert: output %s is the input", o->output);
    if (spx_gguf_sniff(o->input) && stat(o->input, &si) == 0 && S_ISREG(si.st_mode)) {
        rc = spx_gguf_convert(ctx, o, c.rep);   /* GGUF has its own driver (spx_gguf_import.c) */
        goto done;
    }
    SPX_TRY(rc, open_source(&c));
    SPX_TRY(rc, set_name(&c));
    c.map = spx_archmap_find(c.cfg.arch);
    if (!c.map)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "no tensor-name table for architecture '%s'", c.cfg.arch);
    if (c.st && !(c.used = calloc(spx_st_set_count(c.st) + 1, 1)))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    SPX_TRY(rc, make_plan(&c));
    const char *sdt = c.n_plan ? spx_st_dtype_name(c.plan[0].dtype) : "F32";
    for (size_t i = 1; i < c.n_plan; i++)
        if (c.plan[i].dtype != c.plan[0].dtype)
            sdt = "mixed";
    snprintf(c.rep->source_dtype, sizeof c.rep->source_dtype, "%s", sdt);
    int odt = o->dtype == SPX_CONVERT_KEEP ? (c.n_plan ? spx_of_st(c.plan[0].dtype) : SPX_DTYPE_F32) : o->dtype;
    snprintf(c.rep->dtype, sizeof c.rep->dtype, "%s", spx_dtype_name(odt));
    for (size_t i = 1; i < c.n_plan && o->dtype == SPX_CONVERT_KEEP; i++)
        if (spx_of_st(c.plan[i].dtype) != odt)
            snprintf(c.rep->dtype, sizeof c.rep->dtype, "mixed");
    char auto_tok[PATH_CAP];
    SPX_TRY(rc, path_join(ctx, auto_tok, c.dir, "tokenizer.json"));
    SPX_TRY(rc, spx_conv_tok_load(ctx, o->tokenizer, c.l2c ? NULL : auto_tok, c.cfg.vocab_size, &c.tok));
    snprintf(c.rep->tokenizer, sizeof c.rep->tokenizer, "%s", c.tok.kind);
    if (!c.tok.path)
        SPX_TRY(rc, note(&c, c.l2c ? "no tokenizer given (--tokenizer tok.bin|tokenizer.json): the .spx has none"
                                          : "no tokenizer.json beside the checkpoint: the .spx has no tokenizer"));
    c.rep->config = c.cfg;
    SPX_TRY(rc, write_all(&c));
done:
    spx_conv_tok_free(&c.tok);
    free(c.plan);
    free(c.used);
    spx_st_set_free(c.st);
    spx_llama2c_free(c.l2c);
    if (!rep_in)
        spx_convert_report_free(&local);
    return rc;
}

void spx_convert_report_free(spx_convert_report *rep)
{
    if (!rep)
        return;
    for (size_t i = 0; i < rep->n_skipped; i++)
        free(rep->skipped[i]);
    for (size_t i = 0; i < rep->n_notes; i++)
        free(rep->notes[i]);
    free(rep->skipped);
    free(rep->notes);
    rep->skipped = rep->notes = NULL;
    rep->n_skipped = rep->n_notes = 0;
}
