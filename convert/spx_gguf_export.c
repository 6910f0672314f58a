/* spx_gguf_export.c: .spx (llama) -> GGUF v3 for llama.cpp (contract in spx_export.h).
 *
 * Tensors keep their canonical names (they are GGUF's), in the llama table order; dims are
 * written innermost first. attn_q/attn_k rows (and biases) are permuted back from rotate_half
 * order to llama.cpp's interleaved rotary pairs, the exact inverse of the import's permutation,
 * so safetensors -> .spx -> GGUF -> .spx reproduces every tensor bit for bit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_arch.h"
#include "spx_archmap.h"
#include "spx_ckd.h"
#include "spx_export.h"
#include "spx_format.h"
#include "spx_gguf.h"
#include "spx_half.h"

typedef struct gx {
    const char *in_path;
    spx_file *f;
    spx_model_config cfg;
    const spx_tensor **t;             /* [n] in output order */
    int *dtype;                       /* [n] output spx dtype */
    size_t n;
    float *f32;                       /* decoded values (largest tensor) */
    unsigned char *a, *b;             /* byte buffers (largest tensor in its output dtype) */
    size_t f32_cap, a_cap, b_cap;
} gx;

static const char why_routing[] =
    "GGUF's mixture-of-experts layout (ffn_gate_inp + ffn_{gate,up,down}_exps with a softmax top-k linear router) "
    "cannot express spx routing: expanded files route by nearest centroid after a PCA projection, with separate "
    "gate/up and down routers; gated files select unweighted neuron slices of one FFN with a two-layer predictor "
    "(top-k, dynamic-k or threshold)";

static int check_model(spx_ctx *ctx, const gx *x)
{
    const spx_model_config *c = &x->cfg;
    const char *why = NULL;
    uint32_t n = spx_file_tensor_count(x->f);
    for (uint32_t i = 0; i < n; i++) {
        const spx_tensor *t = spx_file_tensor(x->f, i);
        if (strstr(t->name, ".router.") || strstr(t->name, "ffn_router.") || t->expert != SPX_NO_INDEX ||
            t->role == SPX_ROLE_ROUTER)
            return spx_err_set(ctx, SPX_E_UNSUPPORTED, "%s: tensor %s: expanded/gated .spx files cannot be exported "
                               "to GGUF: %s", x->in_path, t->name, why_routing);
    }
    if (spx_file_meta_find(x->f, "spx.gate.kind") || spx_file_meta_find(x->f, "spx.expand.experts"))
        return spx_err_set(ctx, SPX_E_UNSUPPORTED, "%s: spx.gate.* / spx.expand.* metadata: routed .spx files cannot "
                           "be exported to GGUF: %s", x->in_path, why_routing);
    if (strcmp(c->arch, "llama") != 0)
        why = "a non-llama architecture";
    else if (!c->gated || c->act != SPX_ACT_SILU)
        why = "an FFN other than SwiGLU";
    else if (c->norm_type != SPX_NORM_RMS)
        why = "LayerNorm";
    else if (c->rope_dim != c->head_dim)
        why = "partial rotary embeddings";
    else if (c->rope_scaling == SPX_ROPE_LLAMA3)
        why = "llama3 rope scaling (GGUF needs a rope_freqs tensor, not written by spx)";
    else if (c->n_pos_embd || c->post_norm || c->no_output_norm || c->parallel_residual)
        why = "learned positions, post-norm, parallel residual or no output norm";
    if (why)
        return spx_err_set(ctx, SPX_E_UNSUPPORTED, "%s: %s cannot be expressed as a GGUF 'llama' model", x->in_path,
                           why);
    return 0;
}

/* Output dtype of tensor t: F16/BF16 requests apply to matrices; vectors (norms, biases) are F32
 * as llama.cpp writes them. KEEP: the stored value dtype. */
static int out_dtype(const spx_tensor *t, int req)
{
    if (req == SPX_EXPORT_KEEP)
        return t->dtype;
    return t->ndim >= 2 ? req : SPX_DTYPE_F32;
}

static int plan(spx_ctx *ctx, gx *x, const spx_export_opts *o)
{
    int rc = 0;
    const spx_archmap *m = spx_archmap_find("llama");
    uint32_t nt = spx_file_tensor_count(x->f);
    char canon[SPX_NAME_MAX];
    x->t = calloc(nt + 1, sizeof *x->t);
    x->dtype = calloc(nt + 1, sizeof *x->dtype);
    if (!m || !x->t || !x->dtype)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "export: out of memory");
    for (int place = SPX_PLACE_FIRST; place <= SPX_PLACE_LAST; place++) {
        uint32_t nl = place == SPX_PLACE_BLOCK ? x->cfg.n_layers : 1;
        for (uint32_t l = 0; l < nl; l++)
            for (size_t k = 0; k < m->count; k++) {
                const spx_tensor *t;
                if (m->entries[k].place != place)
                    continue;
                spx_archmap_canon_name(&m->entries[k], l, canon, sizeof canon);
                if (!(t = spx_file_find(x->f, canon)))
                    continue;
                if (x->n >= nt)
                    SPX_FAIL(ctx, rc, SPX_E_INTERNAL, "export: tensor %s mapped twice", canon);
                if (t->dtype != SPX_DTYPE_F32 && t->dtype != SPX_DTYPE_F16 && t->dtype != SPX_DTYPE_BF16)
                    SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: tensor %s: dtype %s cannot be written to GGUF",
                             x->in_path, t->name, spx_dtype_name(t->dtype));
                x->dtype[x->n] = out_dtype(t, o->dtype);
                x->t[x->n++] = t;
            }
    }
    for (uint32_t i = 0; i < nt && x->n != nt; i++) {
        const spx_tensor *t = spx_file_tensor(x->f, i);
        size_t j = 0;
        while (j < x->n && x->t[j] != t)
            j++;
        if (j == x->n)
            SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: tensor %s is not part of a GGUF llama model", x->in_path,
                     t->name);
    }
done:
    return rc;
}

static uint32_t ggml_of(int dt)
{
    return dt == SPX_DTYPE_F16 ? SPX_GGML_F16 : dt == SPX_DTYPE_BF16 ? SPX_GGML_BF16 : SPX_GGML_F32;
}

#define W(expr) do { if ((rc = (expr)) < 0) goto done; } while (0)

static int write_meta(gx *x, spx_gguf_writer *w)
{
    int rc = 0;
    const spx_model_config *c = &x->cfg;
    const spx_meta *tm = spx_file_meta_find(x->f, "tokenizer.ggml.model");
    const spx_meta *hf = spx_file_meta_find(x->f, "tokenizer.huggingface.json");
    uint32_t ft = 0;
    for (size_t i = 0; i < x->n; i++)   /* general.file_type: 1 MOSTLY_F16, 32 MOSTLY_BF16 */
        if (x->t[i]->ndim == 2 && x->dtype[i] != SPX_DTYPE_F32)
            ft = x->dtype[i] == SPX_DTYPE_F16 ? 1 : 32;
    W(spx_gguf_writer_kv_str(w, "general.architecture", "llama", 5));
    if (c->name[0])
        W(spx_gguf_writer_kv_str(w, "general.name", c->name, strlen(c->name)));
    W(spx_gguf_writer_kv_u32(w, "general.file_type", ft));
    W(spx_gguf_writer_kv_u32(w, "llama.vocab_size", c->vocab_size));
    W(spx_gguf_writer_kv_u32(w, "llama.context_length", c->context_length));
    W(spx_gguf_writer_kv_u32(w, "llama.embedding_length", c->dim));
    W(spx_gguf_writer_kv_u32(w, "llama.block_count", c->n_layers));
    W(spx_gguf_writer_kv_u32(w, "llama.feed_forward_length", c->ffn_dim));
    W(spx_gguf_writer_kv_u32(w, "llama.rope.dimension_count", c->rope_dim));
    W(spx_gguf_writer_kv_u32(w, "llama.attention.head_count", c->n_heads));
    W(spx_gguf_writer_kv_u32(w, "llama.attention.head_count_kv", c->n_kv_heads));
    W(spx_gguf_writer_kv_u32(w, "llama.attention.key_length", c->head_dim));
    W(spx_gguf_writer_kv_u32(w, "llama.attention.value_length", c->head_dim));
    W(spx_gguf_writer_kv_f32(w, "llama.attention.layer_norm_rms_epsilon", c->norm_eps));
    W(spx_gguf_writer_kv_f32(w, "llama.rope.freq_base", c->rope_theta));
    if (c->rope_scaling == SPX_ROPE_LINEAR) {
        W(spx_gguf_writer_kv_str(w, "llama.rope.scaling.type", "linear", 6));
        W(spx_gguf_writer_kv_f32(w, "llama.rope.scaling.factor", c->rope_factor));
    }
    if (tm && tm->type == SPX_META_STR) {
        const spx_meta *tok = spx_file_meta_find(x->f, "tokenizer.ggml.tokens");
        const spx_meta *sc = spx_file_meta_find(x->f, "tokenizer.ggml.scores");
        const spx_meta *ty = spx_file_meta_find(x->f, "tokenizer.ggml.token_type");
        W(spx_gguf_writer_kv_str(w, "tokenizer.ggml.model", tm->str, (size_t)tm->count));
        if (tok && tok->type == SPX_META_ARR && tok->elem_type == SPX_META_STR) {
            const char **s = calloc((size_t)tok->count + 1, sizeof *s);
            uint64_t *l = calloc((size_t)tok->count + 1, sizeof *l);
            for (uint64_t i = 0; s && l && i < tok->count; i++) {
                uint32_t len = 0;
                s[i] = spx_meta_arr_str(tok, i, &len);
                l[i] = len;
            }
            rc = s && l ? spx_gguf_writer_kv_arr_str(w, "tokenizer.ggml.tokens", s, l, tok->count)
                        : spx_err_set(spx_gguf_writer_ctx(w), SPX_E_NOMEM, "export: out of memory");
            free(s);
            free(l);
            if (rc < 0)
                goto done;
        }
        if (sc && sc->type == SPX_META_ARR) {
            float *v = calloc((size_t)sc->count + 1, sizeof *v);
            for (uint64_t i = 0; v && i < sc->count; i++)
                v[i] = (float)spx_meta_arr_f64(sc, i);
            rc = v ? spx_gguf_writer_kv_arr(w, "tokenizer.ggml.scores", SPX_GGUF_F32, v, sc->count)
                   : spx_err_set(spx_gguf_writer_ctx(w), SPX_E_NOMEM, "export: out of memory");
            free(v);
            if (rc < 0)
                goto done;
        }
        if (ty && ty->type == SPX_META_ARR && ty->elem_type != SPX_META_STR) {
            int32_t *v = calloc((size_t)ty->count + 1, sizeof *v);
            for (uint64_t i = 0; v && i < ty->count; i++)
                v[i] = (int32_t)spx_meta_arr_i64(ty, i);
            rc = v ? spx_gguf_writer_kv_arr(w, "tokenizer.ggml.token_type", SPX_GGUF_I32, v, ty->count)
                   : spx_err_set(spx_gguf_writer_ctx(w), SPX_E_NOMEM, "export: out of memory");
            free(v);
            if (rc < 0)
                goto done;
        }
    }
    if (hf && hf->type == SPX_META_STR)   /* GGUF's key for a whole tokenizer.json */
        W(spx_gguf_writer_kv_str(w, "tokenizer.huggingface.json", hf->str, (size_t)hf->count));
    if (c->bos_id >= 0)
        W(spx_gguf_writer_kv_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)c->bos_id));
    if (c->eos_id >= 0)
        W(spx_gguf_writer_kv_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)c->eos_id));
done:
    return rc;
}

static int reserve(spx_ctx *ctx, void *pp, size_t *cap, size_t bytes)
{
    void **p = pp, *q;
    if (bytes <= *cap)
        return 0;
    if (!(q = realloc(*p, bytes)))
        return spx_err_set(ctx, SPX_E_NOMEM, "export: out of memory (%zu bytes)", bytes);
    *p = q;
    *cap = bytes;
    return 0;
}

/* rotate_half rows -> interleaved pairs inside each head of hd rows (inverse of
 * SPX_XFORM_ROPE_DEINTERLEAVE): new row h*hd + 2j = old h*hd + j, new h*hd + 2j+1 = old h*hd + hd/2 + j. */
static void interleave(const unsigned char *src, unsigned char *dst, size_t row_bytes, uint64_t rows, uint64_t hd)
{
    uint64_t half = hd / 2;
    for (uint64_t h = 0; h < rows / hd; h++)
        for (uint64_t j = 0; j < half; j++) {
            memcpy(dst + (size_t)(h * hd + 2 * j) * row_bytes, src + (size_t)(h * hd + j) * row_bytes, row_bytes);
            memcpy(dst + (size_t)(h * hd + 2 * j + 1) * row_bytes, src + (size_t)(h * hd + half + j) * row_bytes,
                   row_bytes);
        }
}

static int write_tensor(spx_ctx *ctx, gx *x, spx_gguf_writer *w, size_t i)
{
    int rc = 0;
    const spx_tensor *t = x->t[i];
    int dt = x->dtype[i];
    const unsigned char *data = spx_file_data(x->f, t);
    uint64_t numel = 0, rows = t->dims[0], row_elems;
    size_t es = spx_dtype_size(dt), bytes, fbytes;
    int rot = strncmp(t->name, "blk.", 4) == 0 && (strstr(t->name, ".attn_q.") || strstr(t->name, ".attn_k."));
    SPX_TRY(rc, spx_tensor_numel(ctx, t, &numel));
    if (numel > SIZE_MAX || spx_ckd_mul_size((size_t)numel, es, &bytes) ||
        spx_ckd_mul_size((size_t)numel, sizeof(float), &fbytes))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "%s: tensor %s too large", x->in_path, t->name);
    row_elems = rows ? numel / rows : 0;
    if (rot && (x->cfg.head_dim == 0 || rows % x->cfg.head_dim))
        SPX_FAIL(ctx, rc, SPX_E_SHAPE, "%s: tensor %s: %llu rows are not whole heads of %u", x->in_path, t->name,
                 (unsigned long long)rows, x->cfg.head_dim);
    if (t->encoding != SPX_ENC_DENSE || t->dtype != dt) {   /* decode (zeros materialized), convert */
        SPX_TRY(rc, reserve(ctx, &x->f32, &x->f32_cap, fbytes ? fbytes : 1));
        SPX_TRY(rc, reserve(ctx, &x->a, &x->a_cap, bytes ? bytes : 1));
        SPX_TRY(rc, spx_decode_f32(ctx, t, data, x->f32));
        if (dt == SPX_DTYPE_F32)
            memcpy(x->a, x->f32, bytes);
        else if (dt == SPX_DTYPE_F16)
            spx_f32_to_f16_n(x->f32, x->a, (size_t)numel);
        else
            spx_f32_to_bf16_n(x->f32, x->a, (size_t)numel);
        data = x->a;
    }
    if (rot) {
        SPX_TRY(rc, reserve(ctx, &x->b, &x->b_cap, bytes ? bytes : 1));
        interleave(data, x->b, (size_t)row_elems * es, rows, x->cfg.head_dim);
        data = x->b;
    }
    if ((rc = spx_gguf_writer_data(w, data, bytes)) < 0)
        *ctx = *spx_gguf_writer_ctx(w);
done:
    return rc;
}

int spx_export_gguf(spx_ctx *ctx, const char *in_path, const char *out_path, const spx_export_opts *o,
                    spx_export_report *rep)
{
    int rc = 0;
    gx x;
    spx_gguf_writer *w = NULL;
    memset(&x, 0, sizeof x);
    memset(rep, 0, sizeof *rep);
    x.in_path = in_path;
    if (!o || o->format != SPX_EXPORT_DENSE ||
        (o->dtype != SPX_EXPORT_KEEP && o->dtype != SPX_DTYPE_F32 && o->dtype != SPX_DTYPE_F16 &&
         o->dtype != SPX_DTYPE_BF16))
        SPX_FAIL(ctx, rc, SPX_E_ARG, "export: GGUF output takes --format dense and --dtype keep|f32|f16|bf16");
    SPX_TRY(rc, spx_file_open(ctx, in_path, SPX_OPEN_VERIFY_DATA, &x.f));
    SPX_TRY(rc, spx_config_from_file(ctx, x.f, &x.cfg));
    SPX_TRY(rc, check_model(ctx, &x));
    SPX_TRY(rc, plan(ctx, &x, o));
    SPX_TRY(rc, spx_gguf_writer_open(ctx, out_path, &w));
#define WG(expr) do { if ((rc = (expr)) < 0) { *ctx = *spx_gguf_writer_ctx(w); goto done; } } while (0)
    WG(write_meta(&x, w));
    for (size_t i = 0; i < x.n; i++)
        WG(spx_gguf_writer_tensor(w, x.t[i]->name, ggml_of(x.dtype[i]), x.t[i]->ndim, x.t[i]->dims));
    WG(spx_gguf_writer_begin_data(w));
    for (size_t i = 0; i < x.n; i++)
        SPX_TRY(rc, write_tensor(ctx, &x, w, i));
    WG(spx_gguf_writer_finish(w, &rep->file_bytes));
#undef WG
    rep->n_tensors = rep->st_tensors = x.n;
    rep->wrote_tokenizer = spx_file_meta_find(x.f, "tokenizer.ggml.model") != NULL ||
                           spx_file_meta_find(x.f, "tokenizer.huggingface.json") != NULL;
done:
    spx_gguf_writer_free(w);
    free(x.t);
    free(x.dtype);
    free(x.f32);
    free(x.a);
    free(x.b);
    spx_file_free(x.f);
    return rc;
}
