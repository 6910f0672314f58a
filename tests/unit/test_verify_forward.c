/* test_verify_forward.c: spx_forward against a naive double-precision reference forward written
 * here (plain loops, no BLAS), on small random models written as .spx files through the writer.
 *
 * Configurations cover GQA/MQA/MHA, full and partial rotary, linear and llama3 rope scaling,
 * biases on/off, tied/untied classifier, gated SiLU / GELU / ReLU and non-gated GELU-tanh FFNs,
 * RMSNorm and LayerNorm with bias, F16/BF16 storage and sparse (bitmask, CSR) encodings.
 *
 * Tolerance: per position, ||logits_spx - logits_ref|| / ||logits_ref|| < 1e-5. The runtime is
 * fp32 (unit round-off 6e-8) with dot products of at most 64 terms over 2 blocks, so its expected
 * relative error is ~1e-6; any wrong convention (rotary pairing, mask, GQA mapping, norm) gives
 * errors of order 1e-1. The decode path (one token at a time through the KV cache) and chunked
 * batches are compared with the batched result under the same bound. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_arch.h"
#include "spx_forward.h"
#include "spx_format.h"
#include "spx_half.h"
#include "spx_model.h"
#include "spx_test.h"

#define TOL 1e-5
#define MAXT 64

/* ---- random model: named tensors ------------------------------------------------------------ */

typedef struct tt {
    char name[96];
    int ndim;
    uint64_t dims[2];
    float *data;              /* values as stored (already rounded for F16/BF16) */
    int dtype, enc;           /* storage */
} tt;

typedef struct tmodel {
    spx_model_config c;
    tt t[MAXT];
    int n;
} tmodel;

static uint64_t g_seed = 12345;

static tt *add(tmodel *m, int layer, const char *base, const char *sfx, uint64_t d0, uint64_t d1, double scale,
               double offset)
{
    tt *t = &m->t[m->n++];
    size_t numel = (size_t)d0 * (d1 ? d1 : 1);
    spx_tensor_name(t->name, sizeof t->name, layer, base, sfx);
    t->ndim = d1 ? 2 : 1;
    t->dims[0] = d0;
    t->dims[1] = d1;
    t->data = malloc(numel * sizeof(float));
    for (size_t i = 0; i < numel; i++)
        t->data[i] = (float)(offset + scale * spx_test_normal(&g_seed));
    return t;
}

static const float *get(const tmodel *m, int layer, const char *base, const char *sfx)
{
    char name[96];
    spx_tensor_name(name, sizeof name, layer, base, sfx);
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0)
            return m->t[i].data;
    return NULL;
}

static void store_as(tt *t, int dtype, int enc)
{
    size_t numel = (size_t)t->dims[0] * (t->ndim == 2 ? t->dims[1] : 1);
    t->dtype = dtype;
    t->enc = enc;
    if (enc != SPX_ENC_DENSE) /* sparsify: zero every other weight in a varying pattern */
        for (size_t i = 0; i < numel; i++)
            if ((i * 7 + i / 5) % 3 != 0)
                t->data[i] = 0.0f;
    for (size_t i = 0; i < numel; i++) {
        if (dtype == SPX_DTYPE_F16)
            t->data[i] = spx_f16_to_f32(spx_f32_to_f16(t->data[i]));
        else if (dtype == SPX_DTYPE_BF16)
            t->data[i] = spx_bf16_to_f32(spx_f32_to_bf16(t->data[i]));
    }
}

static void build(tmodel *m, const spx_model_config *c)
{
    uint64_t d = c->dim, f = c->ffn_dim, hq = (uint64_t)c->n_heads * c->head_dim, hk = (uint64_t)c->n_kv_heads * c->head_dim;
    memset(m, 0, sizeof *m);
    m->c = *c;
    add(m, -1, "token_embd", "weight", c->vocab_size, d, 1.0, 0.0);
    add(m, -1, "output_norm", "weight", d, 0, 0.1, 1.0);
    if (c->norm_type == SPX_NORM_LAYER)
        add(m, -1, "output_norm", "bias", d, 0, 0.1, 0.0);
    if (!c->tied_embeddings)
        add(m, -1, "output", "weight", c->vocab_size, d, 0.3, 0.0);
    for (int l = 0; l < (int)c->n_layers; l++) {
        const double s_in = 1.0 / sqrt((double)d), s_f = 1.0 / sqrt((double)f), s_q = 1.0 / sqrt((double)hq);
        add(m, l, "attn_norm", "weight", d, 0, 0.1, 1.0);
        add(m, l, "ffn_norm", "weight", d, 0, 0.1, 1.0);
        if (c->norm_type == SPX_NORM_LAYER) {
            add(m, l, "attn_norm", "bias", d, 0, 0.1, 0.0);
            add(m, l, "ffn_norm", "bias", d, 0, 0.1, 0.0);
        }
        add(m, l, "attn_q", "weight", hq, d, 2.0 * s_in, 0.0);
        add(m, l, "attn_k", "weight", hk, d, 2.0 * s_in, 0.0);
        add(m, l, "attn_v", "weight", hk, d, s_in, 0.0);
        add(m, l, "attn_output", "weight", d, hq, s_q, 0.0);
        if (c->attn_bias) {
            add(m, l, "attn_q", "bias", hq, 0, 0.2, 0.0);
            add(m, l, "attn_k", "bias", hk, 0, 0.2, 0.0);
            add(m, l, "attn_v", "bias", hk, 0, 0.2, 0.0);
        }
        if (c->attn_out_bias)
            add(m, l, "attn_output", "bias", d, 0, 0.2, 0.0);
        if (c->gated)
            add(m, l, "ffn_gate", "weight", f, d, 2.0 * s_in, 0.0);
        add(m, l, "ffn_up", "weight", f, d, s_in, 0.0);
        add(m, l, "ffn_down", "weight", d, f, s_f, 0.0);
        if (c->ffn_bias) {
            if (c->gated)
                add(m, l, "ffn_gate", "bias", f, 0, 0.2, 0.0);
            add(m, l, "ffn_up", "bias", f, 0, 0.2, 0.0);
            add(m, l, "ffn_down", "bias", d, 0, 0.2, 0.0);
        }
    }
}

static void tm_free(tmodel *m)
{
    for (int i = 0; i < m->n; i++)
        free(m->t[i].data);
    m->n = 0;
}

/* Write the model; `skip` (may be NULL) names a tensor to leave out, `bad` one to store with
 * its first dimension one short (shape error). */
static int write_spx(const tmodel *m, const char *path, const char *skip, const char *bad)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    int rc = spx_writer_open(&ctx, path, "spx-test", &w);
    if (rc == 0)
        rc = spx_config_to_meta(w, &m->c);
    for (int i = 0; rc == 0 && i < m->n; i++) {
        const tt *t = &m->t[i];
        uint64_t dims[2] = {t->dims[0], t->dims[1]};
        if (skip && strcmp(skip, t->name) == 0)
            continue;
        if (bad && strcmp(bad, t->name) == 0) {
            dims[0]--;
            rc = spx_writer_add_f32(w, t->name, SPX_ROLE_OTHER, SPX_NO_INDEX, SPX_NO_INDEX, SPX_DTYPE_F32, t->data,
                                    t->ndim, dims);
        } else if (t->enc == SPX_ENC_DENSE) {
            rc = spx_writer_add_f32(w, t->name, SPX_ROLE_OTHER, SPX_NO_INDEX, SPX_NO_INDEX, t->dtype ? t->dtype : 0,
                                    t->data, t->ndim, dims);
        } else {
            spx_tensor desc;
            void *blob = NULL;
            size_t size = 0;
            memset(&desc, 0, sizeof desc);
            rc = spx_encode(&ctx, t->data, dims[0], dims[1], t->enc, t->dtype, 0, 0, &desc, &blob, &size);
            if (rc == 0) {
                snprintf(desc.name, sizeof desc.name, "%s", t->name);
                desc.role = SPX_ROLE_MLP;
                desc.layer = SPX_NO_INDEX;
                desc.expert = SPX_NO_INDEX;
                rc = spx_writer_add(w, &desc, blob, size);
            }
            free(blob);
        }
    }
    if (rc == 0)
        rc = spx_writer_finish(w);
    if (rc != 0)
        fprintf(stderr, "write_spx: %s\n", w ? spx_writer_ctx(w)->msg : ctx.msg);
    if (rc != 0 && ctx.msg[0])
        fprintf(stderr, "write_spx ctx: %s\n", ctx.msg);
    spx_writer_free(w);
    return rc;
}

/* ---- reference forward: double precision, plain loops --------------------------------------- */

static void ref_norm(const spx_model_config *c, const float *w, const float *b, const double *x, double *y)
{
    double mean = 0, var = 0;
    for (uint32_t i = 0; i < c->dim; i++)
        mean += x[i];
    mean /= c->dim;
    if (c->norm_type == SPX_NORM_RMS)
        mean = 0;
    for (uint32_t i = 0; i < c->dim; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= c->dim;
    for (uint32_t i = 0; i < c->dim; i++)
        y[i] = (x[i] - mean) / sqrt(var + (double)c->norm_eps) * w[i] + (b ? b[i] : 0.0);
}

/* y[rows] = W[rows x cols] x + b */
static void ref_mv(const float *W, const float *b, const double *x, uint32_t rows, uint32_t cols, double *y)
{
    for (uint32_t r = 0; r < rows; r++) {
        double s = b ? b[r] : 0.0;
        for (uint32_t k = 0; k < cols; k++)
            s += (double)W[(size_t)r * cols + k] * x[k];
        y[r] = s;
    }
}

static double ref_act(int act, double x)
{
    switch (act) {
    case SPX_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case SPX_ACT_GELU_TANH: return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case SPX_ACT_RELU: return x > 0 ? x : 0;
    default: return x / (1.0 + exp(-x));
    }
}

/* HF _compute_default/linear/llama3_rope_parameters, restated from their definitions. */
static double ref_inv_freq(const spx_model_config *c, uint32_t i)
{
    double base = 1.0 / pow((double)c->rope_theta, 2.0 * i / c->rope_dim);
    if (c->rope_scaling == SPX_ROPE_LINEAR)
        return base / c->rope_factor;
    if (c->rope_scaling == SPX_ROPE_LLAMA3) {
        double wl = 2 * M_PI / base, lo_wl = c->rope_orig_ctx / (double)c->rope_low_freq_factor,
               hi_wl = c->rope_orig_ctx / (double)c->rope_high_freq_factor;
        if (wl < hi_wl)
            return base;
        if (wl > lo_wl)
            return base / c->rope_factor;
        double sm = (c->rope_orig_ctx / wl - c->rope_low_freq_factor) / (c->rope_high_freq_factor - c->rope_low_freq_factor);
        return (1 - sm) * base / c->rope_factor + sm * base;
    }
    return base;
}

/* rotate_half on the first rope_dim dims of one head vector at position p */
static void ref_rope(const spx_model_config *c, double *v, size_t p)
{
    uint32_t half = c->rope_dim / 2;
    for (uint32_t i = 0; i < half; i++) {
        double a = (double)p * ref_inv_freq(c, i), x1 = v[i], x2 = v[i + half];
        v[i] = x1 * cos(a) - x2 * sin(a);
        v[i + half] = x2 * cos(a) + x1 * sin(a);
    }
}

/* logits [n x vocab] for tokens[0..n) from position 0; hidden_last [n x ffn] = MLP hidden of the
 * last layer (down_proj input) when not NULL. */
static void ref_forward(const tmodel *m, const uint32_t *tok, size_t n, double *logits, double *hidden_last)
{
    const spx_model_config *c = &m->c;
    const uint32_t d = c->dim, hd = c->head_dim, hq = c->n_heads * hd, hk = c->n_kv_heads * hd, f = c->ffn_dim;
    double *x = calloc(n * d, sizeof(double)), *a = calloc(d, sizeof(double));
    double *q = calloc(n * hq, sizeof(double)), *k = calloc(n * hk, sizeof(double)), *v = calloc(n * hk, sizeof(double));
    double *att = calloc(n * hq, sizeof(double)), *tmp = calloc(d > f ? d : f, sizeof(double));
    double *g = calloc(f, sizeof(double)), *u = calloc(f, sizeof(double)), *p = calloc(n, sizeof(double));
    const float *emb = get(m, -1, "token_embd", "weight");
    for (size_t t = 0; t < n; t++)
        for (uint32_t i = 0; i < d; i++)
            x[t * d + i] = emb[(size_t)tok[t] * d + i];
    for (int l = 0; l < (int)c->n_layers; l++) {
        for (size_t t = 0; t < n; t++) {
            ref_norm(c, get(m, l, "attn_norm", "weight"), get(m, l, "attn_norm", "bias"), x + t * d, a);
            ref_mv(get(m, l, "attn_q", "weight"), get(m, l, "attn_q", "bias"), a, hq, d, q + t * hq);
            ref_mv(get(m, l, "attn_k", "weight"), get(m, l, "attn_k", "bias"), a, hk, d, k + t * hk);
            ref_mv(get(m, l, "attn_v", "weight"), get(m, l, "attn_v", "bias"), a, hk, d, v + t * hk);
            for (uint32_t h = 0; h < c->n_heads; h++)
                ref_rope(c, q + t * hq + h * hd, t);
            for (uint32_t h = 0; h < c->n_kv_heads; h++)
                ref_rope(c, k + t * hk + h * hd, t);
        }
        for (size_t t = 0; t < n; t++) {
            for (uint32_t h = 0; h < c->n_heads; h++) {
                uint32_t kvh = h / (c->n_heads / c->n_kv_heads);
                double mx = -INFINITY, sum = 0;
                for (size_t j = 0; j <= t; j++) {
                    double s = 0;
                    for (uint32_t i = 0; i < hd; i++)
                        s += q[t * hq + h * hd + i] * k[j * hk + kvh * hd + i];
                    p[j] = s / sqrt((double)hd);
                    if (p[j] > mx)
                        mx = p[j];
                }
                for (size_t j = 0; j <= t; j++)
                    sum += (p[j] = exp(p[j] - mx));
                for (uint32_t i = 0; i < hd; i++) {
                    double o = 0;
                    for (size_t j = 0; j <= t; j++)
                        o += p[j] / sum * v[j * hk + kvh * hd + i];
                    att[t * hq + h * hd + i] = o;
                }
            }
        }
        for (size_t t = 0; t < n; t++) {
            ref_mv(get(m, l, "attn_output", "weight"), get(m, l, "attn_output", "bias"), att + t * hq, d, hq, tmp);
            for (uint32_t i = 0; i < d; i++)
                x[t * d + i] += tmp[i];
            ref_norm(c, get(m, l, "ffn_norm", "weight"), get(m, l, "ffn_norm", "bias"), x + t * d, a);
            ref_mv(get(m, l, "ffn_up", "weight"), get(m, l, "ffn_up", "bias"), a, f, d, u);
            if (c->gated) {
                ref_mv(get(m, l, "ffn_gate", "weight"), get(m, l, "ffn_gate", "bias"), a, f, d, g);
                for (uint32_t i = 0; i < f; i++)
                    u[i] = ref_act(c->act, g[i]) * u[i];
            } else {
                for (uint32_t i = 0; i < f; i++)
                    u[i] = ref_act(c->act, u[i]);
            }
            if (hidden_last && l == (int)c->n_layers - 1)
                memcpy(hidden_last + t * f, u, f * sizeof(double));
            ref_mv(get(m, l, "ffn_down", "weight"), get(m, l, "ffn_down", "bias"), u, d, f, tmp);
            for (uint32_t i = 0; i < d; i++)
                x[t * d + i] += tmp[i];
        }
    }
    const float *outw = get(m, -1, "output", "weight");
    for (size_t t = 0; t < n; t++) {
        ref_norm(c, get(m, -1, "output_norm", "weight"), get(m, -1, "output_norm", "bias"), x + t * d, a);
        ref_mv(outw ? outw : emb, NULL, a, c->vocab_size, d, logits + t * c->vocab_size);
    }
    free(x), free(a), free(q), free(k), free(v), free(att), free(tmp), free(g), free(u), free(p);
}

/* max over rows of ||a_r - b_r|| / ||b_r|| */
static double max_rel(const float *a, const double *b, size_t rows, size_t cols)
{
    double worst = 0;
    for (size_t r = 0; r < rows; r++) {
        double num = 0, den = 0;
        for (size_t j = 0; j < cols; j++) {
            double e = (double)a[r * cols + j] - b[r * cols + j];
            num += e * e;
            den += b[r * cols + j] * b[r * cols + j];
        }
        double rel = sqrt(num) / sqrt(den);
        if (!(rel <= worst))
            worst = rel;
    }
    return worst;
}

static double max_rel_ff(const float *a, const float *b, size_t rows, size_t cols)
{
    double worst = 0;
    for (size_t r = 0; r < rows; r++) {
        double num = 0, den = 0;
        for (size_t j = 0; j < cols; j++) {
            double e = (double)a[r * cols + j] - (double)b[r * cols + j];
            num += e * e;
            den += (double)b[r * cols + j] * (double)b[r * cols + j];
        }
        double rel = sqrt(num) / sqrt(den);
        if (!(rel <= worst))
            worst = rel;
    }
    return worst;
}

/* ---- checks --------------------------------------------------------------------------------- */

typedef struct capture {
    uint32_t last_layer, ffn;
    float *hidden;            /* [n x ffn] of the last layer */
    size_t rows;
    int calls[4];
} capture;

static void cap_attn_in(void *ud, uint32_t layer, const float *x, size_t n)
{
    (void)layer, (void)x, (void)n;
    ((capture *)ud)->calls[0]++;
}
static void cap_attn_out(void *ud, uint32_t layer, const float *x, size_t n)
{
    (void)layer, (void)x, (void)n;
    ((capture *)ud)->calls[1]++;
}
static void cap_mlp_in(void *ud, uint32_t layer, const float *x, size_t n)
{
    (void)layer, (void)x, (void)n;
    ((capture *)ud)->calls[2]++;
}
static void cap_mlp_hidden(void *ud, uint32_t layer, const float *h, size_t n)
{
    capture *c = ud;
    c->calls[3]++;
    if (layer == c->last_layer) {
        memcpy(c->hidden + c->rows * c->ffn, h, n * c->ffn * sizeof(float));
        c->rows += n;
    }
}

enum { NTOK = 13 };

static void run_case(const char *label, const spx_model_config *cfg, void (*tweak)(tmodel *))
{
    static tmodel tm;
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model *model = NULL;
    spx_state *st = NULL, *st4 = NULL;
    const char *path = spx_test_path(spx_test_tmpdir(), "model.spx");
    const uint32_t V = cfg->vocab_size, F = cfg->ffn_dim, D = cfg->dim;
    uint32_t tok[NTOK];
    double *ref = malloc(NTOK * V * sizeof(double)), *ref_h = malloc(NTOK * F * sizeof(double));
    float *lg = malloc(NTOK * V * sizeof(float)), *lg1 = malloc(NTOK * V * sizeof(float));
    float *lg2 = malloc(NTOK * V * sizeof(float)), *last = malloc(V * sizeof(float));
    float *X = malloc(NTOK * D * sizeof(float));
    capture cap = {cfg->n_layers - 1, F, malloc(NTOK * F * sizeof(float)), 0, {0}};
    spx_forward_hooks hooks = {&cap, cap_attn_in, cap_attn_out, cap_mlp_in, cap_mlp_hidden};
    double e;

    build(&tm, cfg);
    if (tweak)
        tweak(&tm);
    CHECK_RC(write_spx(&tm, path, NULL, NULL), 0);
    CHECK_RC(spx_model_open(&ctx, path, SPX_MODEL_VERIFY_DATA, &model), 0);
    if (!model) {
        fprintf(stderr, "%s: %s\n", label, ctx.msg);
        goto done;
    }
    for (int i = 0; i < NTOK; i++)
        tok[i] = (uint32_t)(spx_test_rand(&g_seed) % V);
    ref_forward(&tm, tok, NTOK, ref, ref_h);

    /* batched prompt with hooks */
    CHECK_RC(spx_state_new(&ctx, model, 16, 16, &st), 0);
    CHECK_RC(spx_forward_hooked(&ctx, model, st, tok, NTOK, lg, last, &hooks), 0);
    CHECK(st->pos == NTOK);
    e = max_rel(lg, ref, NTOK, V);
    fprintf(stderr, "%s: batched vs reference max rel err %.3g\n", label, e);
    CHECK_MSG(e < TOL, "%s: batched logits rel err %g", label, e);
    CHECK(memcmp(last, lg + (NTOK - 1) * V, V * sizeof(float)) == 0);
    for (int i = 0; i < 4; i++)
        CHECK(cap.calls[i] == (int)cfg->n_layers);
    CHECK(cap.rows == NTOK);
    {
        float *hf = cap.hidden;
        double hmax = max_rel(hf, ref_h, NTOK, F);
        CHECK_MSG(hmax < TOL, "%s: mlp_hidden hook rel err %g", label, hmax);
    }

    /* decode path: one token at a time through the KV cache */
    spx_state_reset(st);
    for (int i = 0; i < NTOK; i++)
        CHECK_RC(spx_forward(&ctx, model, st, tok + i, 1, lg1 + (size_t)i * V, NULL), 0);
    e = max_rel_ff(lg1, lg, NTOK, V);
    fprintf(stderr, "%s: decode vs batched max rel err %.3g\n", label, e);
    CHECK_MSG(e < TOL, "%s: decode rel err %g", label, e);
    CHECK_MSG(max_rel(lg1, ref, NTOK, V) < TOL, "%s: decode vs reference", label);

    /* chunked batches (max_batch 4) after a 5-token prompt, last logits only at the end */
    CHECK_RC(spx_state_new(&ctx, model, NTOK, 4, &st4), 0);
    CHECK_RC(spx_forward(&ctx, model, st4, tok, 5, lg2, NULL), 0);
    CHECK_RC(spx_forward(&ctx, model, st4, tok + 5, NTOK - 5, lg2 + 5 * V, NULL), 0);
    e = max_rel_ff(lg2, lg, NTOK, V);
    CHECK_MSG(e < TOL, "%s: chunked rel err %g", label, e);
    spx_state_reset(st4);
    CHECK_RC(spx_forward(&ctx, model, st4, tok, NTOK, NULL, last), 0);
    CHECK_MSG(max_rel(last, ref + (NTOK - 1) * V, 1, V) < TOL, "%s: last-only logits", label);

    /* block-level entry points reproduce spx_forward */
    spx_state_reset(st);
    CHECK_RC(spx_embed(&ctx, model, tok, NTOK, X), 0);
    for (uint32_t l = 0; l < cfg->n_layers; l++)
        CHECK_RC(spx_block_forward(&ctx, model, st, l, X, NTOK, NULL), 0);
    CHECK(st->pos == 0);
    spx_head(model, X, NTOK, lg2);
    CHECK_MSG(max_rel_ff(lg2, lg, NTOK, V) < 1e-7, "%s: block-level path differs", label);

    /* errors leave the state unchanged */
    spx_state_reset(st);
    CHECK_RC(spx_forward(&ctx, model, st, tok, 10, NULL, last), 0);
    {
        uint32_t badtok[2] = {1, V};
        CHECK_RC(spx_forward(&ctx, model, st, badtok, 2, NULL, last), SPX_E_ARG);
        CHECK(strstr(ctx.msg, "index 1") != NULL);
        CHECK(st->pos == 10);
        CHECK_RC(spx_forward(&ctx, model, st, tok, 7, NULL, last), SPX_E_LIMIT);
        CHECK(st->pos == 10);
        CHECK_RC(spx_block_forward(&ctx, model, st, cfg->n_layers, X, 1, NULL), SPX_E_ARG);
        CHECK_RC(spx_block_forward(&ctx, model, st, 0, X, 17, NULL), SPX_E_ARG);
        CHECK_RC(spx_embed(&ctx, model, badtok, 2, X), SPX_E_ARG);
    }
done:
    spx_state_free(st);
    spx_state_free(st4);
    spx_model_free(model);
    tm_free(&tm);
    free(ref), free(ref_h), free(lg), free(lg1), free(lg2), free(last), free(X), free(cap.hidden);
}

static void base_cfg(spx_model_config *c)
{
    spx_config_init_llama(c);
    snprintf(c->name, sizeof c->name, "test");
    c->vocab_size = 37;
    c->context_length = 4096;
    c->dim = 32;
    c->ffn_dim = 48;
    c->n_layers = 2;
    c->n_heads = 4;
    c->n_kv_heads = 2;
    c->head_dim = 8;
    c->rope_dim = 8;
    c->tied_embeddings = 1;
    c->bos_id = 1;
    c->eos_id = 2;
}

static void set_storage(tmodel *m, const char *name, int dtype, int enc)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0)
            store_as(&m->t[i], dtype, enc);
}

static void tweak_b(tmodel *m)
{
    set_storage(m, "token_embd.weight", SPX_DTYPE_F16, SPX_ENC_DENSE);
    set_storage(m, "output.weight", SPX_DTYPE_BF16, SPX_ENC_DENSE);
    set_storage(m, "blk.0.attn_q.weight", SPX_DTYPE_F16, SPX_ENC_DENSE);
    set_storage(m, "blk.1.ffn_down.weight", SPX_DTYPE_BF16, SPX_ENC_DENSE);
    set_storage(m, "blk.0.ffn_up.weight", SPX_DTYPE_F32, SPX_ENC_BITMASK);
    set_storage(m, "blk.1.attn_norm.weight", SPX_DTYPE_F16, SPX_ENC_DENSE);
}

static void tweak_d(tmodel *m)
{
    set_storage(m, "blk.0.ffn_gate.weight", SPX_DTYPE_BF16, SPX_ENC_CSR16);
    set_storage(m, "blk.1.attn_output.weight", SPX_DTYPE_F16, SPX_ENC_CSR32);
}

static void check_load_errors(void)
{
    static tmodel tm;
    spx_model_config c;
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model *model = NULL;
    spx_state *st = NULL;
    const char *path = spx_test_path(spx_test_tmpdir(), "bad.spx");
    base_cfg(&c);
    build(&tm, &c);
    CHECK_RC(write_spx(&tm, path, "blk.1.ffn_down.weight", NULL), 0);
    CHECK_RC(spx_model_open(&ctx, path, 0, &model), SPX_E_MISSING);
    CHECK(strstr(ctx.msg, "blk.1.ffn_down.weight") != NULL);
    CHECK(model == NULL);
    CHECK_RC(write_spx(&tm, path, NULL, "blk.0.attn_k.weight"), 0);
    CHECK_RC(spx_model_open(&ctx, path, 0, &model), SPX_E_SHAPE);
    CHECK(strstr(ctx.msg, "blk.0.attn_k.weight") != NULL);
    CHECK_RC(write_spx(&tm, path, NULL, "blk.1.ffn_norm.weight"), 0);
    CHECK_RC(spx_model_open(&ctx, path, 0, &model), SPX_E_SHAPE);
    CHECK(strstr(ctx.msg, "blk.1.ffn_norm.weight") != NULL);
    tm_free(&tm);
    c.tied_embeddings = 0;   /* untied but the file has no output.weight */
    build(&tm, &c);
    CHECK_RC(write_spx(&tm, path, "output.weight", NULL), 0);
    CHECK_RC(spx_model_open(&ctx, path, 0, &model), SPX_E_MISSING);
    CHECK(strstr(ctx.msg, "output.weight") != NULL);
    /* a complete file opens; bad state sizes are argument errors */
    CHECK_RC(write_spx(&tm, path, NULL, NULL), 0);
    CHECK_RC(spx_model_open(&ctx, path, SPX_MODEL_COPY_WEIGHTS, &model), 0);
    if (model) {
        CHECK(model->layers[0].q.owned != NULL);     /* COPY_WEIGHTS gives writable copies */
        CHECK(spx_model_param_count(model) > 0);
        CHECK_RC(spx_state_new(&ctx, model, 0, 4, &st), SPX_E_ARG);
        CHECK_RC(spx_state_new(&ctx, model, 8, 0, &st), SPX_E_ARG);
        CHECK(st == NULL);
    }
    spx_model_free(model);
    tm_free(&tm);
}

int spx_test_main(void)
{
    spx_model_config c;

    base_cfg(&c);   /* A: GQA 4/2, full rotary, no biases, tied, SiLU gated, RMSNorm */
    run_case("A gqa tied", &c, NULL);

    base_cfg(&c);   /* B: partial rotary, every bias, untied, linear scaling, F16/BF16/bitmask */
    c.rope_dim = 4;
    c.attn_bias = c.attn_out_bias = c.ffn_bias = 1;
    c.tied_embeddings = 0;
    c.rope_scaling = SPX_ROPE_LINEAR;
    c.rope_factor = 2.0f;
    run_case("B partial+bias+untied", &c, tweak_b);

    base_cfg(&c);   /* C: MHA, partial rotary 6, non-gated GELU-tanh, LayerNorm with bias */
    c.n_kv_heads = 4;
    c.rope_dim = 6;
    c.rope_theta = 500.0f;
    c.gated = 0;
    c.act = SPX_ACT_GELU_TANH;
    c.norm_type = SPX_NORM_LAYER;
    c.ffn_bias = 1;
    c.norm_eps = 1e-6f;
    run_case("C mha layernorm gelu_tanh", &c, NULL);

    base_cfg(&c);   /* D: MQA, llama3 scaling (all three frequency bands), GELU, q/k/v bias, CSR */
    c.n_kv_heads = 1;
    c.rope_scaling = SPX_ROPE_LLAMA3;
    c.rope_factor = 8.0f;
    c.rope_low_freq_factor = 1.0f;
    c.rope_high_freq_factor = 8.0f;
    c.rope_orig_ctx = 256;
    c.act = SPX_ACT_GELU;
    c.attn_bias = 1;
    c.tied_embeddings = 0;
    run_case("D mqa llama3 gelu", &c, tweak_d);

    base_cfg(&c);   /* E: ReLU gated, 3 layers, 2 heads of 16, no rotary */
    c.n_layers = 3;
    c.n_heads = 2;
    c.n_kv_heads = 2;
    c.head_dim = 16;
    c.rope_dim = 0;
    c.act = SPX_ACT_RELU;
    run_case("E relu norope", &c, NULL);

    check_load_errors();
    return 0;
}
