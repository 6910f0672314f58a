/* test_convert_util.h: helpers shared by the convert unit tests (header-only, static functions):
 * raw safetensors images built from a header string, a small safetensors file writer, and a
 * synthetic Llama checkpoint directory (config.json + model.safetensors) with seeded weights. */
#ifndef TEST_CONVERT_UTIL_H
#define TEST_CONVERT_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_test.h"

/* u64 N | header (N = strlen(hdr) + pad spaces) | data_len bytes of `fill`. malloc'ed. */
static inline unsigned char *tcu_st_image(const char *hdr, size_t pad, size_t data_len, unsigned char fill,
                                          size_t *len)
{
    size_t n = strlen(hdr) + pad;
    *len = 8 + n + data_len;
    unsigned char *b = malloc(*len + 1);
    if (!b)
        exit(1);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(b + 8, hdr, strlen(hdr));
    memset(b + 8 + strlen(hdr), ' ', pad);
    memset(b + 8 + n, fill, data_len);
    return b;
}

static inline int tcu_write_file(const char *path, const void *buf, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    size_t w = len ? fwrite(buf, 1, len, fp) : 0;
    return (fclose(fp) == 0 && w == len) ? 0 : -1;
}

/* One tensor for tcu_st_write: raw little-endian bytes of `dtype`. */
typedef struct tcu_tensor {
    char name[128];
    const char *dtype;        /* "F32", "F16", "BF16", "F64", "F8_E4M3" ... */
    unsigned ndim;
    uint64_t shape[4];
    const void *data;
    size_t bytes;
} tcu_tensor;

/* Write a safetensors file with the tensors in the given order (header padded to 8 bytes). */
static inline int tcu_st_write(const char *path, const tcu_tensor *t, size_t n, const char *meta_json)
{
    size_t cap = 256 + n * 256 + (meta_json ? strlen(meta_json) : 0);
    char *h = malloc(cap);
    size_t k = 0;
    uint64_t off = 0;
    if (!h)
        return -1;
    k += (size_t)snprintf(h + k, cap - k, "{");
    if (meta_json)
        k += (size_t)snprintf(h + k, cap - k, "\"__metadata__\":%s%s", meta_json, n ? "," : "");
    for (size_t i = 0; i < n; i++) {
        k += (size_t)snprintf(h + k, cap - k, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", t[i].name,
                              t[i].dtype);
        for (unsigned d = 0; d < t[i].ndim; d++)
            k += (size_t)snprintf(h + k, cap - k, "%s%llu", d ? "," : "", (unsigned long long)t[i].shape[d]);
        k += (size_t)snprintf(h + k, cap - k, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                              (unsigned long long)(off + t[i].bytes));
        off += t[i].bytes;
    }
    k += (size_t)snprintf(h + k, cap - k, "}");
    size_t pad = (8 - k % 8) % 8;
    FILE *fp = fopen(path, "wb");
    int rc = fp ? 0 : -1;
    if (fp) {
        unsigned char nb[8];
        for (int i = 0; i < 8; i++)
            nb[i] = (unsigned char)((uint64_t)(k + pad) >> (8 * i));
        fwrite(nb, 1, 8, fp);
        fwrite(h, 1, k, fp);
        for (size_t i = 0; i < pad; i++)
            fputc(' ', fp);
        for (size_t i = 0; i < n; i++)
            if (t[i].bytes && fwrite(t[i].data, 1, t[i].bytes, fp) != t[i].bytes)
                rc = -1;
        if (fclose(fp) != 0)
            rc = -1;
    }
    free(h);
    return rc;
}

/* ---- a synthetic Llama checkpoint ----------------------------------------------------------- */

#define TCU_DIM 8
#define TCU_FFN 12
#define TCU_LAYERS 2
#define TCU_HEADS 2
#define TCU_KV 1
#define TCU_HD 4
#define TCU_VOCAB 16
#define TCU_MAX_T 64

typedef struct tcu_model {
    tcu_tensor t[TCU_MAX_T];
    float *vals[TCU_MAX_T];   /* fp32 values of each tensor (owned) */
    size_t n;
} tcu_model;

static inline void tcu_add(tcu_model *m, const char *name, unsigned ndim, uint64_t d0, uint64_t d1, uint64_t *seed)
{
    tcu_tensor *t = &m->t[m->n];
    size_t numel = (size_t)d0 * (ndim == 2 ? (size_t)d1 : 1);
    float *v = malloc(numel * sizeof *v + 1);
    if (!v || m->n >= TCU_MAX_T)
        exit(1);
    for (size_t i = 0; i < numel; i++)
        v[i] = (float)(spx_test_normal(seed) * 0.5);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = "F32";
    t->ndim = ndim;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->data = v;
    t->bytes = numel * sizeof *v;
    m->vals[m->n++] = v;
}

/* Llama tensors (HF names); qkv_bias adds q/k/v biases; lm_head adds an untied classifier;
 * extra adds model.layers.0.self_attn.rotary_emb.inv_freq (to be skipped). */
static inline void tcu_model_build(tcu_model *m, uint64_t seed, int qkv_bias, int lm_head, int extra)
{
    char nm[128];
    memset(m, 0, sizeof *m);
    tcu_add(m, "model.embed_tokens.weight", 2, TCU_VOCAB, TCU_DIM, &seed);
    for (int l = 0; l < TCU_LAYERS; l++) {
#define A(sfx, nd, a, b) do { snprintf(nm, sizeof nm, "model.layers.%d.%s", l, sfx); tcu_add(m, nm, nd, a, b, &seed); } while (0)
        A("input_layernorm.weight", 1, TCU_DIM, 0);
        A("self_attn.q_proj.weight", 2, TCU_HEADS * TCU_HD, TCU_DIM);
        A("self_attn.k_proj.weight", 2, TCU_KV * TCU_HD, TCU_DIM);
        A("self_attn.v_proj.weight", 2, TCU_KV * TCU_HD, TCU_DIM);
        A("self_attn.o_proj.weight", 2, TCU_DIM, TCU_HEADS * TCU_HD);
        if (qkv_bias) {
            A("self_attn.q_proj.bias", 1, TCU_HEADS * TCU_HD, 0);
            A("self_attn.k_proj.bias", 1, TCU_KV * TCU_HD, 0);
            A("self_attn.v_proj.bias", 1, TCU_KV * TCU_HD, 0);
        }
        A("post_attention_layernorm.weight", 1, TCU_DIM, 0);
        A("mlp.gate_proj.weight", 2, TCU_FFN, TCU_DIM);
        A("mlp.up_proj.weight", 2, TCU_FFN, TCU_DIM);
        A("mlp.down_proj.weight", 2, TCU_DIM, TCU_FFN);
        if (extra && l == 0)
            A("self_attn.rotary_emb.inv_freq", 1, TCU_HD / 2, 0);
#undef A
    }
    tcu_add(m, "model.norm.weight", 1, TCU_DIM, 0, &seed);
    if (lm_head)
        tcu_add(m, "lm_head.weight", 2, TCU_VOCAB, TCU_DIM, &seed);
}

static inline void tcu_model_free(tcu_model *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->vals[i]);
    m->n = 0;
}

static inline long tcu_model_find(const tcu_model *m, const char *name)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->t[i].name, name) == 0)
            return (long)i;
    return -1;
}

/* config.json for the synthetic model; `extra` is spliced in before the closing brace. */
static inline int tcu_write_config(const char *dir, const char *model_type, const char *extra)
{
    char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"model_type\": \"%s\", \"hidden_size\": %d, \"intermediate_size\": %d, \"num_hidden_layers\": %d,\n"
             " \"num_attention_heads\": %d, \"num_key_value_heads\": %d, \"vocab_size\": %d,\n"
             " \"rms_norm_eps\": 1e-05, \"max_position_embeddings\": 128, \"bos_token_id\": 1, \"eos_token_id\": 2%s%s}\n",
             model_type, TCU_DIM, TCU_FFN, TCU_LAYERS, TCU_HEADS, TCU_KV, TCU_VOCAB, extra ? ", " : "",
             extra ? extra : "");
    return tcu_write_file(spx_test_path(dir, "config.json"), buf, strlen(buf));
}

#endif
