/* test_verify_moe_util.h: helpers shared by the expert-MLP runtime tests (header-only, static
 * inline): a small random model held as named fp32 tensors, a writer to .spx through the writer
 * API (with optional sparse encodings and extra metadata), and a naive double-precision forward
 * whose MLP is a callback, so each test states its own MLP (dense, routed experts, gated blocks).
 * Everything in the reference is plain loops in double, independent of the runtime's code. */
#ifndef TEST_VERIFY_MOE_UTIL_H
#define TEST_VERIFY_MOE_UTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "spx_arch.h"
#include "spx_format.h"
#include "spx_test.h"

#define TMV_MAXT 256

typedef struct tmv_tensor {
    char name[96];
    int ndim;
    uint64_t dims[2];
    float *data;
    int enc;                  /* spx_encoding used when writing (2-D only) */
    int role;
    uint32_t layer, expert;
} tmv_tensor;

typedef struct tmv_model {
    spx_model_config c;
    tmv_tensor t[TMV_MAXT];
    int n;
} tmv_model;

static uint64_t tmv_seed = 777;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
static inline void tmv_vname(char *buf, const char *fmt, va_list ap)
{
    vsnprintf(buf, 96, fmt, ap);
}

/* Add a tensor [d0] (d1 == 0) or [d0 x d1] of offset + scale * N(0, 1) values. */
#if defined(__GNUC__)
__attribute__((format(printf, 9, 10)))
#endif
static inline float *tmv_add(tmv_model *m, int role, uint32_t layer, uint32_t expert, uint64_t d0, uint64_t d1,
                             double scale, double offset, const char *fmt, ...)
{
    va_list ap;
    tmv_tensor *t = &m->t[m->n++];
    size_t numel = (size_t)d0 * (d1 ? d1 : 1);
    if (m->n > TMV_MAXT)
        exit(1);
    memset(t, 0, sizeof *t);
    va_start(ap, fmt);
    tmv_vname(t->name, fmt, ap);
    va_end(ap);
    t->ndim = d1 ? 2 : 1;
    t->dims[0] = d0;
    t->dims[1] = d1;
    t->role = role;
    t->layer = layer;
    t->expert = expert;
    t->data = malloc(numel * sizeof(float));
    if (!t->data)
        exit(1);
    for (size_t i = 0; i < numel; i++)
        t->data[i] = (float)(offset + scale * spx_test_normal(&tmv_seed));
    return t->data;
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static inline tmv_tensor *tmv_find(const tmv_model *m, const char *fmt, ...)
{
    char name[96];
    va_list ap;
    va_start(ap, fmt);
    tmv_vname(name, fmt, ap);
    va_end(ap);
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0)
            return (tmv_tensor *)&m->t[i];
    return NULL;
}

/* Data of a tensor or NULL. */
static inline const float *tmv_get(const tmv_model *m, const char *name)
{
    tmv_tensor *t = tmv_find(m, "%s", name);
    return t ? t->data : NULL;
}

static inline void tmv_remove(tmv_model *m, const char *name)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0) {
            free(m->t[i].data);
            m->t[i] = m->t[--m->n];
            return;
        }
}

static inline void tmv_free(tmv_model *m)
{
    for (int i = 0; i < m->n; i++)
        free(m->t[i].data);
    m->n = 0;
}

/* Dense random model of configuration c (no LayerNorm, no attention biases). */
static inline void tmv_build(tmv_model *m, const spx_model_config *cfg)
{
    const spx_model_config cc = *cfg, *c = &cc;   /* cfg may point into m */
    const uint64_t d = c->dim, f = c->ffn_dim, hq = (uint64_t)c->n_heads * c->head_dim,
                   hk = (uint64_t)c->n_kv_heads * c->head_dim;
    const double s_in = 1.0 / sqrt((double)d), s_f = 1.0 / sqrt((double)f), s_q = 1.0 / sqrt((double)hq);
    const uint32_t N = SPX_NO_INDEX;
    memset(m, 0, sizeof *m);
    m->c = *c;
    tmv_add(m, SPX_ROLE_EMBEDDING, N, N, c->vocab_size, d, 1.0, 0.0, "token_embd.weight");
    tmv_add(m, SPX_ROLE_NORM, N, N, d, 0, 0.1, 1.0, "output_norm.weight");
    if (!c->tied_embeddings)
        tmv_add(m, SPX_ROLE_OUTPUT, N, N, c->vocab_size, d, 0.3, 0.0, "output.weight");
    for (uint32_t l = 0; l < c->n_layers; l++) {
        tmv_add(m, SPX_ROLE_NORM, l, N, d, 0, 0.1, 1.0, "blk.%u.attn_norm.weight", l);
        tmv_add(m, SPX_ROLE_NORM, l, N, d, 0, 0.1, 1.0, "blk.%u.ffn_norm.weight", l);
        tmv_add(m, SPX_ROLE_ATTN, l, N, hq, d, 2.0 * s_in, 0.0, "blk.%u.attn_q.weight", l);
        tmv_add(m, SPX_ROLE_ATTN, l, N, hk, d, 2.0 * s_in, 0.0, "blk.%u.attn_k.weight", l);
        tmv_add(m, SPX_ROLE_ATTN, l, N, hk, d, s_in, 0.0, "blk.%u.attn_v.weight", l);
        tmv_add(m, SPX_ROLE_ATTN, l, N, d, hq, s_q, 0.0, "blk.%u.attn_output.weight", l);
        if (c->gated)
            tmv_add(m, SPX_ROLE_MLP, l, N, f, d, 2.0 * s_in, 0.0, "blk.%u.ffn_gate.weight", l);
        tmv_add(m, SPX_ROLE_MLP, l, N, f, d, s_in, 0.0, "blk.%u.ffn_up.weight", l);
        tmv_add(m, SPX_ROLE_MLP, l, N, d, f, s_f, 0.0, "blk.%u.ffn_down.weight", l);
        if (c->ffn_bias) {
            if (c->gated)
                tmv_add(m, SPX_ROLE_MLP, l, N, f, 0, 0.2, 0.0, "blk.%u.ffn_gate.bias", l);
            tmv_add(m, SPX_ROLE_MLP, l, N, f, 0, 0.2, 0.0, "blk.%u.ffn_up.bias", l);
            tmv_add(m, SPX_ROLE_MLP, l, N, d, 0, 0.2, 0.0, "blk.%u.ffn_down.bias", l);
        }
    }
}

/* Extra metadata written after the configuration; return nonzero on failure. */
typedef int (*tmv_meta_fn)(spx_writer *w, void *ud);

/* Write the model; `skip` (may be NULL) names a tensor to leave out. */
static inline int tmv_write(const tmv_model *m, const char *path, const char *skip, tmv_meta_fn meta, void *ud)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    int rc = spx_writer_open(&ctx, path, "spx-test", &w);
    if (rc == 0)
        rc = spx_config_to_meta(w, &m->c);
    if (rc == 0 && meta)
        rc = meta(w, ud);
    for (int i = 0; rc == 0 && i < m->n; i++) {
        const tmv_tensor *t = &m->t[i];
        if (skip && strcmp(skip, t->name) == 0)
            continue;
        if (t->enc == SPX_ENC_DENSE) {
            rc = spx_writer_add_f32(w, t->name, t->role, t->layer, t->expert, SPX_DTYPE_F32, t->data, t->ndim, t->dims);
        } else {
            spx_tensor desc;
            void *blob = NULL;
            size_t size = 0;
            memset(&desc, 0, sizeof desc);
            rc = spx_encode(&ctx, t->data, t->dims[0], t->dims[1], t->enc, SPX_DTYPE_F32, 0, 0, &desc, &blob, &size);
            if (rc == 0) {
                snprintf(desc.name, sizeof desc.name, "%s", t->name);
                desc.role = (uint16_t)t->role;
                desc.layer = t->layer;
                desc.expert = t->expert;
                rc = spx_writer_add(w, &desc, blob, size);
            }
            free(blob);
        }
    }
    if (rc == 0)
        rc = spx_writer_finish(w);
    if (rc != 0)
        fprintf(stderr, "tmv_write: %s %s\n", w ? spx_writer_ctx(w)->msg : "", ctx.msg);
    spx_writer_free(w);
    return rc;
}

/* ---- reference forward in double ------------------------------------------------------------ */

static inline void tmv_mv(const float *W, const float *b, const double *x, uint32_t rows, uint32_t cols, double *y)
{
    for (uint32_t r = 0; r < rows; r++) {
        double s = b ? b[r] : 0.0;
        for (uint32_t k = 0; k < cols; k++)
            s += (double)W[(size_t)r * cols + k] * x[k];
        y[r] = s;
    }
}

static inline double tmv_act(int act, double x)
{
    switch (act) {
    case SPX_ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case SPX_ACT_GELU_TANH: return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case SPX_ACT_RELU: return x > 0 ? x : 0;
    default: return x / (1.0 + exp(-x));
    }
}

static inline void tmv_rms(const spx_model_config *c, const float *w, const double *x, double *y)
{
    double ss = 0;
    for (uint32_t i = 0; i < c->dim; i++)
        ss += x[i] * x[i];
    ss = 1.0 / sqrt(ss / c->dim + (double)c->norm_eps);
    for (uint32_t i = 0; i < c->dim; i++)
        y[i] = x[i] * ss * w[i];
}

/* Hidden state of a dense FFN with weights named blk.{l}.ffn_{gate,up}<sfx> (sfx "" or ".{e}"):
 * h[ffn] = act(gate a + bg) * (up a + bu) (non-gated: act(up a + bu)). */
static inline void tmv_ffn_hidden(const tmv_model *m, uint32_t l, const char *sfx, const double *a, double *h)
{
    const spx_model_config *c = &m->c;
    char n[96];
    double *g = malloc(c->ffn_dim * sizeof(double));
    snprintf(n, sizeof n, "blk.%u.ffn_up%s.weight", l, sfx);
    const float *wu = tmv_get(m, n);
    snprintf(n, sizeof n, "blk.%u.ffn_up%s.bias", l, sfx);
    tmv_mv(wu, tmv_get(m, n), a, c->ffn_dim, c->dim, h);
    if (c->gated) {
        snprintf(n, sizeof n, "blk.%u.ffn_gate%s.weight", l, sfx);
        const float *wg = tmv_get(m, n);
        snprintf(n, sizeof n, "blk.%u.ffn_gate%s.bias", l, sfx);
        tmv_mv(wg, tmv_get(m, n), a, c->ffn_dim, c->dim, g);
        for (uint32_t i = 0; i < c->ffn_dim; i++)
            h[i] = tmv_act(c->act, g[i]) * h[i];
    } else {
        for (uint32_t i = 0; i < c->ffn_dim; i++)
            h[i] = tmv_act(c->act, h[i]);
    }
    free(g);
}

/* y[dim] = down<sfx> h + bias */
static inline void tmv_ffn_down(const tmv_model *m, uint32_t l, const char *sfx, const double *h, double *y)
{
    char n[96], nb[96];
    snprintf(n, sizeof n, "blk.%u.ffn_down%s.weight", l, sfx);
    snprintf(nb, sizeof nb, "blk.%u.ffn_down%s.bias", l, sfx);
    tmv_mv(tmv_get(m, n), tmv_get(m, nb), h, m->c.dim, m->c.ffn_dim, y);
}

/* MLP sublayer of block l for token t: a = ffn_norm output [dim] -> y [dim]. */
typedef void (*tmv_mlp_fn)(void *ud, const tmv_model *m, uint32_t l, size_t t, const double *a, double *y);

static inline void tmv_mlp_dense(void *ud, const tmv_model *m, uint32_t l, size_t t, const double *a, double *y)
{
    double *h = malloc(m->c.ffn_dim * sizeof(double));
    (void)ud, (void)t;
    tmv_ffn_hidden(m, l, "", a, h);
    tmv_ffn_down(m, l, "", h, y);
    free(h);
}

/* logits [n x vocab] of tokens[0..n) from position 0 (rotate_half rotary, causal GQA attention,
 * RMSNorm, no rope scaling). */
static inline void tmv_forward(const tmv_model *m, const uint32_t *tok, size_t n, tmv_mlp_fn mlp, void *ud,
                               double *logits)
{
    const spx_model_config *c = &m->c;
    const uint32_t d = c->dim, hd = c->head_dim, hq = c->n_heads * hd, hk = c->n_kv_heads * hd, half = c->rope_dim / 2;
    double *x = calloc(n * d, sizeof(double)), *a = calloc(d, sizeof(double)), *y = calloc(d, sizeof(double));
    double *q = calloc(n * hq, sizeof(double)), *k = calloc(n * hk, sizeof(double)), *v = calloc(n * hk, sizeof(double));
    double *att = calloc(n * hq, sizeof(double)), *p = calloc(n, sizeof(double));
    const float *emb = tmv_get(m, "token_embd.weight"), *outw = tmv_get(m, "output.weight");
    char nm[96];
    for (size_t t = 0; t < n; t++)
        for (uint32_t i = 0; i < d; i++)
            x[t * d + i] = emb[(size_t)tok[t] * d + i];
    for (uint32_t l = 0; l < c->n_layers; l++) {
#define W(base) (snprintf(nm, sizeof nm, "blk.%u.%s.weight", l, base), tmv_get(m, nm))
        for (size_t t = 0; t < n; t++) {
            tmv_rms(c, W("attn_norm"), x + t * d, a);
            tmv_mv(W("attn_q"), NULL, a, hq, d, q + t * hq);
            tmv_mv(W("attn_k"), NULL, a, hk, d, k + t * hk);
            tmv_mv(W("attn_v"), NULL, a, hk, d, v + t * hk);
            for (uint32_t h = 0; h < c->n_heads + c->n_kv_heads; h++) {
                double *vec = h < c->n_heads ? q + t * hq + h * hd : k + t * hk + (h - c->n_heads) * hd;
                for (uint32_t i = 0; i < half; i++) {
                    double ang = (double)t / pow((double)c->rope_theta, 2.0 * i / c->rope_dim);
                    double x1 = vec[i], x2 = vec[i + half];
                    vec[i] = x1 * cos(ang) - x2 * sin(ang);
                    vec[i + half] = x2 * cos(ang) + x1 * sin(ang);
                }
            }
        }
        for (size_t t = 0; t < n; t++)
            for (uint32_t h = 0; h < c->n_heads; h++) {
                uint32_t g = h / (c->n_heads / c->n_kv_heads);
                double mx = -INFINITY, sum = 0;
                for (size_t j = 0; j <= t; j++) {
                    double s = 0;
                    for (uint32_t i = 0; i < hd; i++)
                        s += q[t * hq + h * hd + i] * k[j * hk + g * hd + i];
                    p[j] = s / sqrt((double)hd);
                    mx = p[j] > mx ? p[j] : mx;
                }
                for (size_t j = 0; j <= t; j++)
                    sum += (p[j] = exp(p[j] - mx));
                for (uint32_t i = 0; i < hd; i++) {
                    double o = 0;
                    for (size_t j = 0; j <= t; j++)
                        o += p[j] / sum * v[j * hk + g * hd + i];
                    att[t * hq + h * hd + i] = o;
                }
            }
        for (size_t t = 0; t < n; t++) {
            tmv_mv(W("attn_output"), NULL, att + t * hq, d, hq, y);
            for (uint32_t i = 0; i < d; i++)
                x[t * d + i] += y[i];
            tmv_rms(c, W("ffn_norm"), x + t * d, a);
            mlp(ud, m, l, t, a, y);
            for (uint32_t i = 0; i < d; i++)
                x[t * d + i] += y[i];
        }
#undef W
    }
    for (size_t t = 0; t < n; t++) {
        tmv_rms(c, tmv_get(m, "output_norm.weight"), x + t * d, a);
        tmv_mv(outw ? outw : emb, NULL, a, c->vocab_size, d, logits + t * c->vocab_size);
    }
    free(x), free(a), free(y), free(q), free(k), free(v), free(att), free(p);
}

/* max over rows of ||a_r - b_r|| / ||b_r|| */
static inline double tmv_rel(const float *a, const double *b, size_t rows, size_t cols)
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
        worst = rel > worst || rel != rel ? rel : worst;
    }
    return worst;
}

static inline double tmv_rel_ff(const float *a, const float *b, size_t rows, size_t cols)
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
        worst = rel > worst || rel != rel ? rel : worst;
    }
    return worst;
}

/* A small Llama-like configuration: GQA, partial nothing, gated SiLU (or as given). */
static inline void tmv_config(spx_model_config *c, int gated, int act, int ffn_bias)
{
    spx_config_init_llama(c);
    snprintf(c->arch, sizeof c->arch, "llama");
    snprintf(c->name, sizeof c->name, "moe-test");
    c->vocab_size = 61;
    c->context_length = 64;
    c->dim = 32;
    c->ffn_dim = 48;
    c->n_layers = 2;
    c->n_heads = 4;
    c->n_kv_heads = 2;
    c->head_dim = 8;
    c->rope_dim = 8;
    c->gated = gated;
    c->act = act;
    c->ffn_bias = ffn_bias;
    c->tied_embeddings = 0;
}

/* ---- the spx executable --------------------------------------------------------------------- */

/* Run a shell command, its stdout into buf (NUL-terminated, truncated to cap - 1 bytes); returns
 * the exit status, or -1 when it did not exit normally. */
static inline int tmv_sh(const char *cmd, char *buf, size_t cap)
{
    FILE *p = popen(cmd, "r");
    size_t n;
    int st;
    if (!p)
        return -1;
    n = fread(buf, 1, cap - 1, p);
    buf[n] = 0;
    while (fgetc(p) != EOF) {
    }
    st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The number after "key": in a JSON text, NAN when absent. */
static inline double tmv_json_num(const char *s, const char *key)
{
    char pat[96];
    const char *p;
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    p = strstr(s, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

/* Raw u32 token file. */
static inline int tmv_write_tokens(const char *path, const uint32_t *tok, size_t n)
{
    FILE *fp = fopen(path, "wb");
    size_t w;
    if (!fp)
        return -1;
    w = fwrite(tok, sizeof *tok, n, fp);
    return fclose(fp) == 0 && w == n ? 0 : -1;
}

#endif
