/* spx_export.c: .spx -> Hugging Face safetensors + config.json + tokenizer.json (spx_export.h). */
#include "spx_export.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spx_arch.h"
#include "spx_archmap.h"
#include "spx_ckd.h"
#include "spx_format.h"
#include "spx_half.h"
#include "spx_st_write.h"

/* Parts of one exported tensor (dense: one part; sparse-bitmask: four). */
enum { PART_DENSE = 0, PART_SHAPE, PART_COMPRESSED, PART_BITMASK, PART_ROWOFF };

typedef struct item {
    const spx_tensor *t;
    char hf[128];              /* Hugging Face name */
    int sparse;                /* written as sparse-bitmask */
    int dtype;                 /* output spx_dtype */
} item;

typedef struct slot {
    size_t item;
    int part;
} slot;

typedef struct exporter {
    const char *in_path;
    spx_file *f;
    item *items;
    size_t n_items;
    slot *slots;               /* [n specs] */
    float *buf;                /* decoded fp32, sized for the largest tensor */
    void *out;                 /* converted output bytes */
    size_t buf_cap, out_cap;
} exporter;

static const char *st_dtype(int dt)
{
    switch (dt) {
    case SPX_DTYPE_F32: return "F32";
    case SPX_DTYPE_F16: return "F16";
    case SPX_DTYPE_BF16: return "BF16";
    case SPX_DTYPE_I32: return "I32";
    default: return "U8";
    }
}

static int is_float(int dt)
{
    return dt == SPX_DTYPE_F32 || dt == SPX_DTYPE_F16 || dt == SPX_DTYPE_BF16;
}

/* Refuse what safetensors cannot express: routed experts and gated neuron experts. */
static int check_routing(spx_ctx *ctx, const exporter *x)
{
    uint32_t n = spx_file_tensor_count(x->f);
    for (uint32_t i = 0; i < n; i++) {
        const spx_tensor *t = spx_file_tensor(x->f, i);
        if (strstr(t->name, ".router.") || strstr(t->name, "ffn_router.") || t->expert != SPX_NO_INDEX)
            return spx_err_set(ctx, SPX_E_UNSUPPORTED,
                               "%s: tensor %s: expanded/gated models cannot be exported to safetensors "
                               "(safetensors has no routing)", x->in_path, t->name);
    }
    if (spx_file_meta_find(x->f, "spx.gate.kind") || spx_file_meta_find(x->f, "spx.expand.experts"))
        return spx_err_set(ctx, SPX_E_UNSUPPORTED, "%s: spx.gate.* / spx.expand.* metadata: routed models cannot "
                           "be exported to safetensors (safetensors has no routing)", x->in_path);
    return 0;
}

static int check_llama(spx_ctx *ctx, const char *path, const spx_model_config *c)
{
    const char *why = NULL;
    if (!c->gated)
        why = "non-gated FFN";
    else if (c->norm_type != SPX_NORM_RMS)
        why = "LayerNorm";
    else if (c->rope_dim != c->head_dim)
        why = "partial rotary";
    else if (c->attn_bias != c->attn_out_bias)
        why = "q/k/v bias without output bias (or the reverse)";
    if (why)
        return spx_err_set(ctx, SPX_E_UNSUPPORTED, "%s: %s cannot be expressed as LlamaForCausalLM", path, why);
    return 0;
}

/* Items in archmap order; every tensor of the file must have a Hugging Face name. */
static int map_items(spx_ctx *ctx, exporter *x, const spx_model_config *c, const spx_export_opts *o)
{
    int rc = 0;
    const spx_archmap *m = spx_archmap_find(c->arch);
    uint32_t nt = spx_file_tensor_count(x->f);
    char canon[SPX_NAME_MAX];
    if (!m)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: architecture '%s' has no Hugging Face name table", x->in_path, c->arch);
    x->items = calloc(nt ? nt : 1, sizeof *x->items);
    if (!x->items)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "export: out of memory");
    for (int place = SPX_PLACE_FIRST; place <= SPX_PLACE_LAST; place++) {
        uint32_t nl = place == SPX_PLACE_BLOCK ? c->n_layers : 1;
        for (uint32_t l = 0; l < nl; l++) {
            for (size_t k = 0; k < m->count; k++) {
                const spx_archmap_entry *e = &m->entries[k];
                const spx_tensor *t;
                item *it;
                if (e->place != place)
                    continue;
                spx_archmap_canon_name(e, l, canon, sizeof canon);
                if (!(t = spx_file_find(x->f, canon)))
                    continue;
                if (x->n_items >= nt)
                    SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: tensor %s mapped twice", x->in_path, canon);
                it = &x->items[x->n_items++];
                it->t = t;
                if (spx_archmap_src_name(e, l, it->hf, sizeof it->hf) < 0)
                    SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: tensor %s: name too long", x->in_path, canon);
                it->dtype = (o->dtype == SPX_EXPORT_KEEP || !is_float(t->dtype)) ? t->dtype : o->dtype;
                it->sparse = o->format == SPX_EXPORT_SPARSE_BITMASK && t->encoding != SPX_ENC_DENSE && t->ndim == 2;
            }
        }
    }
    if (x->n_items != nt) {
        for (uint32_t i = 0; i < nt; i++) {
            const spx_tensor *t = spx_file_tensor(x->f, i);
            size_t j = 0;
            while (j < x->n_items && x->items[j].t != t)
                j++;
            if (j == x->n_items)
                SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: tensor %s has no Hugging Face name (llama table)",
                         x->in_path, t->name);
        }
    }
done:
    return rc;
}

static int reserve(spx_ctx *ctx, void **p, size_t *cap, size_t bytes)
{
    void *q;
    if (bytes <= *cap)
        return 0;
    if (!(q = realloc(*p, bytes)))
        return spx_err_set(ctx, SPX_E_NOMEM, "export: out of memory (%zu bytes)", bytes);
    *p = q;
    *cap = bytes;
    return 0;
}

/* Convert n fp32 values to dtype dt into dst. */
static void put_values(const float *src, int dt, void *dst, size_t n)
{
    if (dt == SPX_DTYPE_F32)
        memcpy(dst, src, n * sizeof(float));
    else if (dt == SPX_DTYPE_F16)
        spx_f32_to_f16_n(src, dst, n);
    else
        spx_f32_to_bf16_n(src, dst, n);
}

static void put_i64(unsigned char *p, uint64_t v)
{
    for (int b = 0; b < 8; b++)
        p[b] = (unsigned char)(v >> (8 * b));
}

/* Bytes of one part of item it into x->out (*len). */
static int part_bytes(spx_ctx *ctx, exporter *x, const item *it, int part, size_t *len)
{
    int rc = 0;
    const spx_tensor *t = it->t;
    const void *blob = spx_file_data(x->f, t);
    uint64_t numel = 0, rows = t->dims[0], cols = t->ndim == 2 ? t->dims[1] : 1, bpr = (cols + 7) / 8;
    size_t S = spx_dtype_size(it->dtype), nb;
    SPX_TRY(rc, spx_tensor_numel(ctx, t, &numel));
    if (part == PART_DENSE && t->encoding == SPX_ENC_DENSE && t->dtype == it->dtype) {
        /* verbatim copy: the bit-identical round trip */
        SPX_TRY(rc, reserve(ctx, &x->out, &x->out_cap, (size_t)t->data_size));
        memcpy(x->out, blob, (size_t)t->data_size);
        *len = (size_t)t->data_size;
        goto done;
    }
    if (!is_float(t->dtype))
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: tensor %s: dtype %s cannot be converted", x->in_path, t->name,
                 spx_dtype_name(t->dtype));
    if (numel > SIZE_MAX || spx_ckd_mul_size((size_t)numel, sizeof(float), &nb) < 0)
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "%s: tensor %s too large", x->in_path, t->name);
    SPX_TRY(rc, reserve(ctx, (void **)&x->buf, &x->buf_cap, nb));
    SPX_TRY(rc, spx_decode_f32(ctx, t, blob, x->buf));
    if (part == PART_DENSE) {
        SPX_TRY(rc, reserve(ctx, &x->out, &x->out_cap, (size_t)numel * S));
        put_values(x->buf, it->dtype, x->out, (size_t)numel);
        *len = (size_t)numel * S;
    } else if (part == PART_SHAPE) {
        SPX_TRY(rc, reserve(ctx, &x->out, &x->out_cap, 16));
        put_i64(x->out, rows);
        put_i64((unsigned char *)x->out + 8, cols);
        *len = 16;
    } else if (part == PART_COMPRESSED) {
        size_t k = 0;
        for (size_t i = 0; i < (size_t)numel; i++)   /* compact the nonzeros in place (k <= i) */
            if (x->buf[i] != 0.0f)
                x->buf[k++] = x->buf[i];
        SPX_TRY(rc, reserve(ctx, &x->out, &x->out_cap, k * S + 1));
        put_values(x->buf, it->dtype, x->out, k);
        *len = k * S;
    } else if (part == PART_BITMASK) {
        unsigned char *p;
        SPX_TRY(rc, reserve(ctx, &x->out, &x->out_cap, (size_t)(rows * bpr)));
        p = x->out;
        memset(p, 0, (size_t)(rows * bpr));
        for (uint64_t r = 0; r < rows; r++)
            for (uint64_t c = 0; c < cols; c++)
                if (x->buf[r * cols + c] != 0.0f)
                    p[r * bpr + c / 8] |= (unsigned char)(1u << (c % 8));
        *len = (size_t)(rows * bpr);
    } else {
        uint64_t acc = 0;
        SPX_TRY(rc, reserve(ctx, &x->out, &x->out_cap, (size_t)rows * 8));
        for (uint64_t r = 0; r < rows; r++) {
            put_i64((unsigned char *)x->out + r * 8, acc);
            for (uint64_t c = 0; c < cols; c++)
                acc += x->buf[r * cols + c] != 0.0f;
        }
        *len = (size_t)rows * 8;
    }
done:
    return rc;
}

static int fill(spx_ctx *ctx, void *ud, size_t index, const spx_st_spec *spec, spx_st_writer *w)
{
    exporter *x = ud;
    size_t len = 0;
    int rc = part_bytes(ctx, x, &x->items[x->slots[index].item], x->slots[index].part, &len);
    if (rc < 0)
        return rc;
    return spx_st_writer_add(ctx, w, spec->name, x->out, len);
}

/* Count the nonzeros of a sparse item (stored values may be zero: decide from the value). */
static int count_nnz(spx_ctx *ctx, exporter *x, const item *it, uint64_t *nnz)
{
    size_t len = 0;
    int rc = part_bytes(ctx, x, it, PART_COMPRESSED, &len);
    *nnz = rc < 0 ? 0 : len / spx_dtype_size(it->dtype);
    return rc;
}

static int build_specs(spx_ctx *ctx, exporter *x, spx_st_spec **out, size_t *n_out, char ***names, double *zeros,
                       double *total)
{
    int rc = 0;
    size_t n = 0, cap = 4 * x->n_items + 1;
    static const char *sfx[] = {"", ".shape", ".compressed", ".bitmask", ".row_offsets"};
    spx_st_spec *s = calloc(cap, sizeof *s);
    char **nm = calloc(cap, sizeof *nm);
    x->slots = calloc(cap, sizeof *x->slots);
    if (!s || !nm || !x->slots)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "export: out of memory");
    for (size_t i = 0; i < x->n_items; i++) {
        const item *it = &x->items[i];
        const spx_tensor *t = it->t;
        int p0 = it->sparse ? PART_SHAPE : PART_DENSE, p1 = it->sparse ? PART_ROWOFF : PART_DENSE;
        uint64_t nnz = 0, cols = t->ndim == 2 ? t->dims[1] : 1;
        size_t base = strlen(it->hf);
        if (it->sparse) {
            SPX_TRY(rc, count_nnz(ctx, x, it, &nnz));
            *zeros += (double)(t->dims[0] * cols - nnz);
            *total += (double)(t->dims[0] * cols);
            if (base > 7 && strcmp(it->hf + base - 7, ".weight") == 0)
                base -= 7;   /* compressed-tensors prefix: the module name */
        }
        for (int p = p0; p <= p1; p++, n++) {
            size_t ln = base + strlen(sfx[p]) + 1;
            if (!(nm[n] = malloc(ln)))
                SPX_FAIL(ctx, rc, SPX_E_NOMEM, "export: out of memory");
            memcpy(nm[n], it->hf, base);
            strcpy(nm[n] + base, sfx[p]);
            s[n].name = nm[n];
            x->slots[n].item = i;
            x->slots[n].part = p;
            switch (p) {
            case PART_DENSE:
                s[n].dtype = st_dtype(it->dtype);
                s[n].ndim = t->ndim;
                for (uint32_t d = 0; d < t->ndim; d++)
                    s[n].shape[d] = t->dims[d];
                break;
            case PART_SHAPE: s[n].dtype = "I64"; s[n].ndim = 1; s[n].shape[0] = 2; break;
            case PART_COMPRESSED: s[n].dtype = st_dtype(it->dtype); s[n].ndim = 1; s[n].shape[0] = nnz; break;
            case PART_BITMASK:
                s[n].dtype = "U8"; s[n].ndim = 2; s[n].shape[0] = t->dims[0]; s[n].shape[1] = (cols + 7) / 8;
                break;
            default: s[n].dtype = "I64"; s[n].ndim = 1; s[n].shape[0] = t->dims[0]; break;
            }
        }
    }
done:
    *out = s;
    *names = nm;
    *n_out = n;
    return rc;
}

static const char *hf_act(int act)
{
    switch (act) {
    case SPX_ACT_GELU: return "gelu";
    case SPX_ACT_GELU_TANH: return "gelu_pytorch_tanh";
    case SPX_ACT_RELU: return "relu";
    default: return "silu";
    }
}

/* config.json of a LlamaForCausalLM with the .spx config (and the sparsity config when any). */
static char *config_json(const spx_model_config *c, const char *torch_dtype, const exporter *x, double zeros,
                         double total)
{
    cJSON *r = cJSON_CreateObject(), *arr, *rs, *q, *sc, *tg;
    char *s = NULL;
    if (!r)
        return NULL;
    arr = cJSON_AddArrayToObject(r, "architectures");
    cJSON_AddItemToArray(arr, cJSON_CreateString("LlamaForCausalLM"));
    cJSON_AddStringToObject(r, "model_type", "llama");
    cJSON_AddNumberToObject(r, "hidden_size", c->dim);
    cJSON_AddNumberToObject(r, "intermediate_size", c->ffn_dim);
    cJSON_AddNumberToObject(r, "num_hidden_layers", c->n_layers);
    cJSON_AddNumberToObject(r, "num_attention_heads", c->n_heads);
    cJSON_AddNumberToObject(r, "num_key_value_heads", c->n_kv_heads);
    cJSON_AddNumberToObject(r, "head_dim", c->head_dim);
    cJSON_AddNumberToObject(r, "vocab_size", c->vocab_size);
    cJSON_AddNumberToObject(r, "max_position_embeddings", c->context_length);
    cJSON_AddNumberToObject(r, "rms_norm_eps", (double)c->norm_eps);
    cJSON_AddNumberToObject(r, "rope_theta", (double)c->rope_theta);
    if (c->rope_scaling == SPX_ROPE_NONE) {
        cJSON_AddNullToObject(r, "rope_scaling");
    } else {
        rs = cJSON_AddObjectToObject(r, "rope_scaling");
        cJSON_AddStringToObject(rs, "rope_type", c->rope_scaling == SPX_ROPE_LLAMA3 ? "llama3" : "linear");
        cJSON_AddNumberToObject(rs, "factor", (double)c->rope_factor);
        if (c->rope_scaling == SPX_ROPE_LLAMA3) {
            cJSON_AddNumberToObject(rs, "low_freq_factor", (double)c->rope_low_freq_factor);
            cJSON_AddNumberToObject(rs, "high_freq_factor", (double)c->rope_high_freq_factor);
            cJSON_AddNumberToObject(rs, "original_max_position_embeddings", c->rope_orig_ctx);
        }
    }
    cJSON_AddStringToObject(r, "hidden_act", hf_act(c->act));
    cJSON_AddBoolToObject(r, "attention_bias", c->attn_bias != 0);
    cJSON_AddBoolToObject(r, "mlp_bias", c->ffn_bias != 0);
    cJSON_AddBoolToObject(r, "tie_word_embeddings", c->tied_embeddings != 0);
    if (c->bos_id >= 0)
        cJSON_AddNumberToObject(r, "bos_token_id", c->bos_id);
    if (c->eos_id >= 0)
        cJSON_AddNumberToObject(r, "eos_token_id", c->eos_id);
    cJSON_AddStringToObject(r, "torch_dtype", torch_dtype);
    if (total > 0) {
        q = cJSON_AddObjectToObject(r, "quantization_config");
        cJSON_AddStringToObject(q, "quant_method", "compressed-tensors");
        cJSON_AddStringToObject(q, "format", "sparse-bitmask");
        sc = cJSON_AddObjectToObject(q, "sparsity_config");
        cJSON_AddStringToObject(sc, "format", "sparse-bitmask");
        cJSON_AddNumberToObject(sc, "global_sparsity", zeros / total);
        cJSON_AddStringToObject(sc, "sparsity_structure", "unstructured");
        tg = cJSON_AddArrayToObject(sc, "targets");
        for (size_t i = 0; i < x->n_items; i++)
            if (x->items[i].sparse)
                cJSON_AddItemToArray(tg, cJSON_CreateString(x->items[i].hf));
        cJSON_AddArrayToObject(sc, "ignore");
        cJSON_AddBoolToObject(sc, "registry_requires_subclass", 0);
    }
    s = cJSON_Print(r);
    cJSON_Delete(r);
    return s;
}

static int ends_with(const char *s, const char *sfx)
{
    size_t a = strlen(s), b = strlen(sfx);
    return a >= b && strcmp(s + a - b, sfx) == 0;
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = malloc(a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

int spx_export_safetensors(spx_ctx *ctx, const char *in_path, const char *out_path, const spx_export_opts *o,
                           spx_export_report *rep)
{
    int rc = 0, single;
    exporter x;
    spx_model_config cfg;
    spx_st_spec *specs = NULL;
    char **names = NULL, *st_path = NULL, *cfg_path = NULL, *tok_path = NULL, *cj = NULL;
    size_t n_specs = 0;
    double zeros = 0, total = 0;
    const char *torch_dtype = "float32";
    memset(&x, 0, sizeof x);
    memset(rep, 0, sizeof *rep);
    x.in_path = in_path;
    if (!o || (o->format != SPX_EXPORT_DENSE && o->format != SPX_EXPORT_SPARSE_BITMASK) ||
        (o->dtype != SPX_EXPORT_KEEP && !is_float(o->dtype)))
        SPX_FAIL(ctx, rc, SPX_E_ARG, "export: bad options");
    SPX_TRY(rc, spx_file_open(ctx, in_path, SPX_OPEN_VERIFY_DATA, &x.f));
    SPX_TRY(rc, check_routing(ctx, &x));
    SPX_TRY(rc, spx_config_from_file(ctx, x.f, &cfg));
    SPX_TRY(rc, check_llama(ctx, in_path, &cfg));
    SPX_TRY(rc, map_items(ctx, &x, &cfg, o));
    SPX_TRY(rc, build_specs(ctx, &x, &specs, &n_specs, &names, &zeros, &total));
    if (x.n_items) {
        int dt = x.items[0].dtype;
        torch_dtype = dt == SPX_DTYPE_F16 ? "float16" : dt == SPX_DTYPE_BF16 ? "bfloat16" : "float32";
    }
    single = ends_with(out_path, ".safetensors");
    if (single) {
        st_path = strdup(out_path);
    } else {
        if (mkdir(out_path, 0777) != 0 && errno != EEXIST)
            SPX_FAIL(ctx, rc, SPX_E_IO, "%s: cannot create directory: %s", out_path, strerror(errno));
        st_path = join(out_path, "model.safetensors");
        cfg_path = join(out_path, "config.json");
        tok_path = join(out_path, "tokenizer.json");
        if (!cfg_path || !tok_path)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "export: out of memory");
    }
    if (!st_path)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "export: out of memory");
    SPX_TRY(rc, spx_st_write_file(ctx, st_path, specs, n_specs, NULL, 0, fill, &x, &rep->file_bytes));
    if (!single) {
        const spx_meta *tok = spx_file_meta_find(x.f, "tokenizer.huggingface.json");
        if (!(cj = config_json(&cfg, torch_dtype, &x, zeros, total)))
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "export: out of memory (config.json)");
        SPX_TRY(rc, spx_st_write_blob(ctx, cfg_path, cj, strlen(cj)));
        rep->wrote_config = 1;
        if (tok && tok->type == SPX_META_STR) {
            SPX_TRY(rc, spx_st_write_blob(ctx, tok_path, tok->str, (size_t)tok->count));
            rep->wrote_tokenizer = 1;
        }
    }
    rep->n_tensors = x.n_items;
    rep->st_tensors = n_specs;
    for (size_t i = 0; i < x.n_items; i++)
        rep->n_sparse += (uint64_t)x.items[i].sparse;
done:
    for (size_t i = 0; names && i < n_specs; i++)
        free(names[i]);
    free(names);
    free(specs);
    free(st_path);
    free(cfg_path);
    free(tok_path);
    cJSON_free(cj);
    free(x.items);
    free(x.slots);
    free(x.buf);
    free(x.out);
    spx_file_free(x.f);
    return rc;
}
