/* test_convert_synth.c: the synthetic checkpoint carries its planted structure.
 *
 * For each synthesized model the file is read back with an independent loader (cJSON on the
 * safetensors header) and a single token at position 0 is run through every layer with naive
 * double-precision loops (no runtime code): RMSNorm -> attention of one token (softmax over one
 * position is 1 and RoPE at position 0 is the identity, so the output is o_proj(v) with v of the
 * head's kv group) -> residual -> RMSNorm = the MLP input -> SwiGLU-style MLP -> residual.
 * Checks (thresholds, not tolerances: the construction gives about 100%, the bars leave margin
 * for unlucky seeds):
 *   - nearest planted center (cosine) of the MLP input == id % K for >= 95% of tokens, every layer;
 *   - at layer 0, >= 90% of the neurons with gate pre-activation > 1.5 belong to the token's cluster
 *     (neuron j belongs to cluster j % K) and >= 80% of the own cluster's neurons fire;
 *   - the residual stream keeps per-coordinate RMS in [0.3, 2] through all layers (rows of the
 *     special and byte tokens start at RMS ~0.5, the others at ~1);
 *   - the model is not degenerate: logits vary within a row (std > 0.5; 0.03 when K = 1), the top
 *     logit's cluster is the input's cluster for >= 95% of tokens and argmax differs between
 *     tokens. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "spx_arch.h"
#include "spx_error.h"
#include "spx_format.h"
#include "spx_half.h"
#include "spx_synth.h"
#include "spx_test.h"

typedef struct model {
    unsigned char *buf;
    size_t len;
    cJSON *hdr;
    const unsigned char *data;
    size_t data_len;
} model;

static int model_load(model *m, const char *path)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    m->buf = malloc((size_t)n);
    if (!m->buf || fread(m->buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        return -1;
    }
    fclose(f);
    m->len = (size_t)n;
    uint64_t hl = 0;
    for (int k = 0; k < 8; k++)
        hl |= (uint64_t)m->buf[k] << (8 * k);
    if (m->len < 8 || hl > m->len - 8)
        return -1;
    m->hdr = cJSON_ParseWithLength((const char *)m->buf + 8, (size_t)hl);
    m->data = m->buf + 8 + hl;
    m->data_len = m->len - 8 - (size_t)hl;
    return m->hdr ? 0 : -1;
}

static void model_free(model *m)
{
    cJSON_Delete(m->hdr);
    free(m->buf);
}

/* Tensor `name` as doubles, checking dtype and shape [rows, cols] (rows 0: 1-D of cols). */
static double *get(const model *m, const char *name, const char *dtype, size_t rows, size_t cols)
{
    cJSON *t = cJSON_GetObjectItemCaseSensitive(m->hdr, name);
    CHECK_MSG(t != NULL, "tensor %s missing", name);
    if (!t)
        return NULL;
    cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "dtype"), *sh = cJSON_GetObjectItemCaseSensitive(t, "shape");
    cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "data_offsets");
    int nd = cJSON_GetArraySize(sh);
    int ok = cJSON_IsString(dt) && !strcmp(dt->valuestring, dtype) && nd == (rows ? 2 : 1) &&
             cJSON_GetArrayItem(sh, nd - 1)->valuedouble == (double)cols &&
             (!rows || cJSON_GetArrayItem(sh, 0)->valuedouble == (double)rows);
    CHECK_MSG(ok, "tensor %s: dtype/shape mismatch", name);
    size_t n = (rows ? rows : 1) * cols, esz = !strcmp(dtype, "F32") ? 4 : 2;
    size_t b = (size_t)cJSON_GetArrayItem(off, 0)->valuedouble, e = (size_t)cJSON_GetArrayItem(off, 1)->valuedouble;
    ok = ok && e - b == n * esz && e <= m->data_len;
    CHECK_MSG(ok, "tensor %s: bad offsets", name);
    if (!ok)
        return NULL;
    double *out = malloc(n * sizeof *out);
    const unsigned char *p = m->data + b;
    for (size_t i = 0; i < n; i++) {
        if (esz == 4) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                         (uint32_t)p[4 * i + 3] << 24;
            float f;
            memcpy(&f, &u, 4);
            out[i] = f;
        } else {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            out[i] = !strcmp(dtype, "F16") ? spx_f16_to_f32(h) : spx_bf16_to_f32(h);
        }
    }
    return out;
}

static void rmsnorm(const double *x, const double *w, size_t n, double *out)
{
    double ss = 0;
    for (size_t i = 0; i < n; i++)
        ss += x[i] * x[i];
    double inv = 1.0 / sqrt(ss / (double)n + 1e-5);
    for (size_t i = 0; i < n; i++)
        out[i] = x[i] * inv * w[i];
}

static void matvec(const double *w, size_t rows, size_t cols, const double *x, double *y)
{
    for (size_t r = 0; r < rows; r++) {
        double s = 0;
        for (size_t c = 0; c < cols; c++)
            s += w[r * cols + c] * x[c];
        y[r] = s;
    }
}

static double act(int a, double x)
{
    if (a == SPX_ACT_RELU)
        return x > 0 ? x : 0;
    if (a == SPX_ACT_GELU)
        return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    return x / (1.0 + exp(-x));
}

static size_t nearest(const double *x, const float *centers, size_t k_n, size_t d)
{
    size_t best = 0;
    double best_cos = -2;
    for (size_t k = 0; k < k_n; k++) {
        double dot = 0, nx = 0, nc = 0;
        for (size_t i = 0; i < d; i++) {
            dot += x[i] * centers[k * d + i];
            nx += x[i] * x[i];
            nc += (double)centers[k * d + i] * centers[k * d + i];
        }
        double c = dot / sqrt(nx * nc + 1e-30);
        if (c > best_cos) {
            best_cos = c;
            best = k;
        }
    }
    return best;
}

static void check_model(const spx_synth_opts *o, const char *label)
{
    spx_ctx ctx = SPX_CTX_INIT;
    const char *dir = spx_test_path(spx_test_tmpdir(), label);
    spx_synth_result res;
    CHECK_RC(spx_synth_write(&ctx, o, dir, &res), 0);
    if (ctx.code)
        return;
    float *centers = NULL;
    CHECK_RC(spx_synth_centers(&ctx, o, &centers), 0);
    model m;
    CHECK(model_load(&m, spx_test_path(dir, "model.safetensors")) == 0);
    const char *dt = o->dtype == SPX_DTYPE_F16 ? "F16" : o->dtype == SPX_DTYPE_BF16 ? "BF16" : "F32";
    size_t d = o->dim, f = o->ffn_dim, V = o->vocab_size, K = o->n_clusters, L = o->n_layers;
    size_t hd = d / o->n_heads, qo = o->n_heads * hd, kvo = o->n_kv_heads * hd, grp = o->n_heads / o->n_kv_heads;
    double *emb = get(&m, "model.embed_tokens.weight", dt, V, d);
    double *fin = get(&m, "model.norm.weight", dt, 0, d);
    double *head = o->tied ? emb : get(&m, "lm_head.weight", dt, V, d);
    CHECK(o->tied == !cJSON_GetObjectItemCaseSensitive(m.hdr, "lm_head.weight"));
    double **lw = calloc(L * 6, sizeof *lw);
    char nm[128];
    static const char *const names[6] = {"input_layernorm.weight", "self_attn.v_proj.weight",
                                         "self_attn.o_proj.weight", "post_attention_layernorm.weight",
                                         "mlp.gate_proj.weight", "mlp.up_proj.weight"};
    int ok = emb && fin && head && centers;
    for (size_t l = 0; l < L; l++) {
        size_t rows[6] = {0, kvo, d, 0, f, f}, cols[6] = {d, d, qo, d, d, d};
        for (int t = 0; t < 6; t++) {
            snprintf(nm, sizeof nm, "model.layers.%zu.%s", l, names[t]);
            lw[l * 6 + (size_t)t] = get(&m, nm, dt, rows[t], cols[t]);
            ok = ok && lw[l * 6 + (size_t)t];
        }
    }
    double **down = calloc(L, sizeof *down);
    for (size_t l = 0; l < L; l++) {
        snprintf(nm, sizeof nm, "model.layers.%zu.mlp.down_proj.weight", l);
        down[l] = get(&m, nm, dt, d, f);
        ok = ok && down[l];
    }
    if (ok) {
        double *h = malloc(d * sizeof *h), *xn = malloc(d * sizeof *xn), *v = malloc(kvo * sizeof *v);
        double *att = malloc(qo * sizeof *att), *o2 = malloc(d * sizeof *o2), *g = malloc(f * sizeof *g);
        double *u = malloc(f * sizeof *u), *logits = malloc(V * sizeof *logits);
        size_t *hits = calloc(L, sizeof *hits), top_ok = 0, distinct = 0;
        double fire_own = 0, fire_pure = 0, rms_min = 1e9, rms_max = 0, std_min = 1e9;
        unsigned char *seen = calloc(V, 1);
        for (size_t t = 0; t < V; t++) {
            memcpy(h, emb + t * d, d * sizeof *h);
            for (size_t l = 0; l < L; l++) {
                double *const *w = lw + l * 6;
                rmsnorm(h, w[0], d, xn);
                matvec(w[1], kvo, d, xn, v);
                for (size_t hh = 0; hh < o->n_heads; hh++)
                    memcpy(att + hh * hd, v + (hh / grp) * hd, hd * sizeof *att);
                matvec(w[2], d, qo, att, o2);
                for (size_t i = 0; i < d; i++)
                    h[i] += o2[i];
                rmsnorm(h, w[3], d, xn);   /* the MLP input */
                hits[l] += nearest(xn, centers, K, d) == t % K;
                matvec(w[4], f, d, xn, g);
                matvec(w[5], f, d, xn, u);
                if (l == 0) {
                    size_t fired = 0, fired_own = 0, own = 0;
                    for (size_t j = 0; j < f; j++) {
                        own += j % K == t % K;
                        fired += g[j] > 1.5;
                        fired_own += g[j] > 1.5 && j % K == t % K;
                    }
                    fire_own += own ? (double)fired_own / (double)own : 1.0;
                    fire_pure += fired ? (double)fired_own / (double)fired : 0.0;
                }
                for (size_t j = 0; j < f; j++)
                    g[j] = act(o->act, g[j]) * u[j];
                matvec(down[l], d, f, g, o2);
                double ss = 0;
                for (size_t i = 0; i < d; i++) {
                    h[i] += o2[i];
                    ss += h[i] * h[i];
                }
                double rms = sqrt(ss / (double)d);
                rms_min = rms < rms_min ? rms : rms_min;
                rms_max = rms > rms_max ? rms : rms_max;
            }
            rmsnorm(h, fin, d, xn);
            matvec(head, V, d, xn, logits);
            size_t am = 0;
            double mean = 0, var = 0;
            for (size_t j = 0; j < V; j++) {
                am = logits[j] > logits[am] ? j : am;
                mean += logits[j];
            }
            mean /= (double)V;
            for (size_t j = 0; j < V; j++)
                var += (logits[j] - mean) * (logits[j] - mean);
            double sd = sqrt(var / (double)V);
            std_min = sd < std_min ? sd : std_min;
            top_ok += am % K == t % K;
            distinct += !seen[am];
            seen[am] = 1;
        }
        for (size_t l = 0; l < L; l++)
            CHECK_MSG((double)hits[l] >= 0.95 * (double)V, "%s layer %zu: %zu/%zu tokens recover their cluster",
                      label, l, hits[l], V);
        fire_own /= (double)V;
        fire_pure /= (double)V;
        CHECK_MSG(fire_pure >= 0.90, "%s: fired-neuron purity %.3f", label, fire_pure);
        CHECK_MSG(fire_own >= 0.80 || K == 1, "%s: own-cluster firing %.3f", label, fire_own);
        CHECK_MSG(rms_min >= 0.3 && rms_max <= 2.0, "%s: residual RMS range [%.3f, %.3f]", label, rms_min, rms_max);
        /* with one cluster only the token noise separates logits */
        CHECK_MSG(std_min > (K > 1 ? 0.5 : 0.03), "%s: logit std %.3f", label, std_min);
        CHECK_MSG((double)top_ok >= 0.95 * (double)V, "%s: top logit in own cluster for %zu/%zu", label, top_ok, V);
        CHECK_MSG(distinct >= 2 * K, "%s: only %zu distinct argmax tokens", label, distinct);
        fprintf(stderr, "%s: layer0 recovery %zu/%zu, last layer %zu/%zu, purity %.3f, own firing %.3f, "
                        "rms [%.2f, %.2f], min logit std %.2f, %zu distinct argmax, %llu params\n",
                label, hits[0], V, hits[L - 1], V, fire_pure, fire_own, rms_min, rms_max, std_min, distinct,
                (unsigned long long)res.n_params);
        free(h), free(xn), free(v), free(att), free(o2), free(g), free(u), free(logits), free(hits), free(seen);
    }
    for (size_t i = 0; i < L * 6; i++)
        free(lw[i]);
    for (size_t l = 0; l < L; l++)
        free(down[l]);
    free(lw);
    free(down);
    if (head != emb)
        free(head);
    free(emb);
    free(fin);
    free(centers);
    model_free(&m);
}

/* Centers are orthogonal with norm sqrt(dim). Tolerance 1e-4 relative: float rounding of values
 * computed in double. */
static void check_centers(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_synth_opts o;
    spx_synth_opts_init(&o);
    o.n_clusters = 8;
    float *c = NULL;
    CHECK_RC(spx_synth_centers(&ctx, &o, &c), 0);
    if (!c)
        return;
    for (size_t a = 0; a < 8; a++)
        for (size_t b = 0; b <= a; b++) {
            double dot = 0;
            for (size_t i = 0; i < o.dim; i++)
                dot += (double)c[a * o.dim + i] * c[b * o.dim + i];
            CHECK_NEAR(dot, a == b ? (double)o.dim : 0.0, 1e-4 * o.dim);
        }
    free(c);
}

static void check_validation(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_synth_opts o;
#define BAD(field, value) do { spx_synth_opts_init(&o); o.field = value; \
        CHECK_RC(spx_synth_validate(&ctx, &o), SPX_E_ARG); } while (0)
    BAD(arch, 7);
    BAD(dim, 0);
    BAD(dim, 66);              /* 66 / 4 heads is not an integer */
    spx_synth_opts_init(&o);
    o.n_heads = 32;            /* head dim 2: valid */
    CHECK_RC(spx_synth_validate(&ctx, &o), 0);
    BAD(n_heads, 64);          /* head dim 1: odd */
    BAD(n_kv_heads, 3);
    BAD(n_kv_heads, 0);
    BAD(ffn_dim, 0);
    BAD(n_layers, 0);
    BAD(vocab_size, 258);
    BAD(vocab_size, SPX_SYNTH_MAX_VOCAB + 1);
    BAD(context_length, 0);
    BAD(n_clusters, 0);
    BAD(n_clusters, 65);       /* > dim */
    BAD(dtype, SPX_DTYPE_I32);
    BAD(act, SPX_ACT_GELU_TANH);
    BAD(tied, 2);
#undef BAD
    spx_synth_opts_init(&o);
    CHECK_RC(spx_synth_write(&ctx, &o, "", NULL), SPX_E_ARG);
}

int spx_test_main(void)
{
    spx_synth_opts o;
    spx_synth_opts_init(&o);
    check_model(&o, "default");

    spx_synth_opts_init(&o);   /* deeper, relu, untied, bf16, more clusters, GQA 6/3 */
    o.dim = 96;
    o.n_heads = 6;
    o.n_kv_heads = 3;
    o.ffn_dim = 256;
    o.n_layers = 8;
    o.act = SPX_ACT_RELU;
    o.tied = 0;
    o.dtype = SPX_DTYPE_BF16;
    o.n_clusters = 8;
    o.seed = 12345;
    o.vocab_size = 700;
    check_model(&o, "deep_relu_untied_bf16");

    spx_synth_opts_init(&o);   /* gelu, f16, 24 layers, K = 16 */
    o.act = SPX_ACT_GELU;
    o.dtype = SPX_DTYPE_F16;
    o.n_layers = 24;
    o.n_clusters = 16;
    o.seed = 99;
    check_model(&o, "gelu_f16_24l");

    spx_synth_opts_init(&o);   /* K = 1, one layer, minimum vocab */
    o.n_clusters = 1;
    o.n_layers = 1;
    o.vocab_size = 259;
    o.seed = 3;
    check_model(&o, "k1_min");

    check_centers();
    check_validation();
    return 0;
}
