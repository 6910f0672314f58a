/* spx_gguf_access.c: typed access to a validated GGUF file (spx_gguf.h): metadata getters, array
 * elements, tensor decoding. Everything here reads ranges that spx_gguf.c checked at open. */
#include <stdio.h>
#include <string.h>

#include "spx_gguf.h"
#include "spx_half.h"

static const unsigned char vsize[SPX_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int is_signed(uint32_t t) { return t == SPX_GGUF_I8 || t == SPX_GGUF_I16 || t == SPX_GGUF_I32 || t == SPX_GGUF_I64; }
static int is_unsigned(uint32_t t) { return t == SPX_GGUF_U8 || t == SPX_GGUF_U16 || t == SPX_GGUF_U32 || t == SPX_GGUF_U64; }

static const spx_gguf_kv *want(spx_ctx *ctx, const spx_gguf *g, const char *key)
{
    const spx_gguf_kv *kv = spx_gguf_find_kv(g, key);
    if (!kv)
        spx_err_set(ctx, SPX_E_MISSING, "%s: metadata key '%s' is missing", spx_gguf_path(g), key);
    return kv;
}

int spx_gguf_get_u64(spx_ctx *ctx, const spx_gguf *g, const char *key, uint64_t *out)
{
    const spx_gguf_kv *kv = want(ctx, g, key);
    if (!kv)
        return SPX_E_MISSING;
    if (is_unsigned(kv->type) || (is_signed(kv->type) && kv->v.i >= 0)) {
        *out = kv->v.u;   /* a non-negative int64 has the same bits */
        return 0;
    }
    return spx_err_set(ctx, SPX_E_GGUF, "%s: metadata key '%s' (byte %llu) has type %s%s, expected a non-negative "
                       "integer", spx_gguf_path(g), key, (unsigned long long)kv->off, spx_gguf_vtype_name(kv->type),
                       is_signed(kv->type) ? " with a negative value" : "");
}

int spx_gguf_get_u32(spx_ctx *ctx, const spx_gguf *g, const char *key, uint32_t *out)
{
    uint64_t v = 0;
    int rc = spx_gguf_get_u64(ctx, g, key, &v);
    if (rc < 0)
        return rc;
    if (v > UINT32_MAX)
        return spx_err_set(ctx, SPX_E_GGUF, "%s: metadata key '%s' = %llu does not fit in 32 bits", spx_gguf_path(g), key,
                           (unsigned long long)v);
    *out = (uint32_t)v;
    return 0;
}

int spx_gguf_get_f64(spx_ctx *ctx, const spx_gguf *g, const char *key, double *out)
{
    const spx_gguf_kv *kv = want(ctx, g, key);
    if (!kv)
        return SPX_E_MISSING;
    if (kv->type != SPX_GGUF_F32 && kv->type != SPX_GGUF_F64)
        return spx_err_set(ctx, SPX_E_GGUF, "%s: metadata key '%s' (byte %llu) has type %s, expected FLOAT32",
                           spx_gguf_path(g), key, (unsigned long long)kv->off, spx_gguf_vtype_name(kv->type));
    *out = kv->v.f;
    return 0;
}

int spx_gguf_get_str(spx_ctx *ctx, const spx_gguf *g, const char *key, const char **s, uint64_t *len)
{
    const spx_gguf_kv *kv = want(ctx, g, key);
    if (!kv)
        return SPX_E_MISSING;
    if (kv->type != SPX_GGUF_STRING)
        return spx_err_set(ctx, SPX_E_GGUF, "%s: metadata key '%s' (byte %llu) has type %s, expected STRING", spx_gguf_path(g),
                           key, (unsigned long long)kv->off, spx_gguf_vtype_name(kv->type));
    *s = (const char *)kv->raw;
    *len = kv->count;
    return 0;
}

/* Element i of a fixed-width array as raw bits (sign-extended for signed types). */
static int64_t arr_bits(const spx_gguf_kv *kv, uint64_t i, uint64_t *u)
{
    const unsigned char *p = kv->raw + i * vsize[kv->elem_type];
    switch (kv->elem_type) {
    case SPX_GGUF_U8: case SPX_GGUF_BOOL: *u = p[0]; return (int64_t)p[0];
    case SPX_GGUF_I8: *u = p[0]; return (int8_t)p[0];
    case SPX_GGUF_U16: *u = (uint64_t)p[0] | (uint64_t)p[1] << 8; return (int64_t)*u;
    case SPX_GGUF_I16: *u = (uint64_t)p[0] | (uint64_t)p[1] << 8; return (int16_t)(uint16_t)*u;
    case SPX_GGUF_U32: case SPX_GGUF_F32: *u = rd32(p); return (int64_t)*u;
    case SPX_GGUF_I32: *u = rd32(p); return (int32_t)(uint32_t)*u;
    default: *u = rd64(p); return (int64_t)*u;
    }
}

double spx_gguf_arr_f64(const spx_gguf_kv *kv, uint64_t i)
{
    uint64_t u = 0;
    int64_t s = arr_bits(kv, i, &u);
    if (kv->elem_type == SPX_GGUF_F32) {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        return (double)f;
    }
    if (kv->elem_type == SPX_GGUF_F64) {
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    return kv->elem_type == SPX_GGUF_U64 ? (double)u : (double)s;
}

int64_t spx_gguf_arr_i64(const spx_gguf_kv *kv, uint64_t i)
{
    uint64_t u = 0;
    return arr_bits(kv, i, &u);
}

void spx_gguf_arr_strs(const spx_gguf_kv *kv, const char **strs, uint64_t *lens)
{
    const unsigned char *p = kv->raw;   /* validated at open: every length fits */
    for (uint64_t i = 0; i < kv->count; i++) {
        lens[i] = rd64(p);
        strs[i] = (const char *)p + 8;
        p += 8 + lens[i];
    }
}

void spx_gguf_to_f32(const spx_gguf_tensor *t, float *out)
{
    size_t n = (size_t)t->numel;
    const unsigned char *s = t->data;
    if (t->type == SPX_GGML_F32) {
        memcpy(out, s, n * 4);
    } else if (t->type == SPX_GGML_F16) {
        spx_f16_to_f32_n(s, out, n);
    } else if (t->type == SPX_GGML_BF16) {
        spx_bf16_to_f32_n(s, out, n);
    } else {   /* Q8_0: d * q is exact in fp32 (11-bit mantissa times an 8-bit integer) */
        for (size_t b = 0; b < n / SPX_GGUF_Q8_0_BLOCK; b++) {
            const unsigned char *blk = s + b * SPX_GGUF_Q8_0_BYTES;
            float d = spx_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
            for (int k = 0; k < SPX_GGUF_Q8_0_BLOCK; k++)
                out[b * SPX_GGUF_Q8_0_BLOCK + (size_t)k] = d * (float)(int8_t)blk[2 + k];
        }
    }
}

int spx_gguf_sniff(const char *path)
{
    unsigned char head[4] = {0};
    size_t n = strlen(path);
    FILE *fp;
    if (n >= 5 && strcmp(path + n - 5, ".gguf") == 0)
        return 1;
    fp = fopen(path, "rb");
    if (!fp)
        return 0;
    n = fread(head, 1, 4, fp);
    fclose(fp);
    return n == 4 && memcmp(head, "GGUF", 4) == 0;
}
