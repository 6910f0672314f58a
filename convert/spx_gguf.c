/* spx_gguf.c: validating GGUF reader (layout and rules in spx_gguf.h).
 *
 * Every length read from the file is compared with the bytes that remain before it is used, and
 * every size product goes through spx_ckd.h: the parser's only allocations are the kv and tensor
 * tables, whose counts are first bounded by the minimum encoded size of an entry. */
#include "spx_gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_io.h"
#include "spx_format.h"

#define MIN_KV_BYTES 14       /* u64 key length + 1 key byte + u32 type + 1 value byte */
#define MIN_INFO_BYTES 33     /* u64 name length + 1 name byte + u32 n_dims + 1 dim + u32 type + u64 offset */
#define MAX_KV (1u << 24)     /* metadata keys (real files have a few dozen) */

struct spx_gguf {
    char *path;
    const unsigned char *buf;
    size_t len;
    void *map;
    uint32_t version;
    uint64_t alignment, data_off;
    spx_gguf_kv *kvs;
    size_t n_kv;
    spx_gguf_kv **kv_sorted;          /* kvs in key order (lookup) */
    spx_gguf_tensor *tensors;
    size_t n_tensors;
    spx_gguf_tensor **t_sorted;       /* tensors in name order (lookup) */
};

typedef struct cur {
    spx_ctx *ctx;
    const char *path;
    const unsigned char *b;
    size_t len, pos;
} cur;

static const unsigned char vsize[SPX_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *spx_gguf_vtype_name(uint32_t t)
{
    static const char *const n[SPX_GGUF_VTYPE_COUNT] = {"UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32",
                                                        "FLOAT32", "BOOL", "STRING", "ARRAY", "UINT64", "INT64",
                                                        "FLOAT64"};
    return t < SPX_GGUF_VTYPE_COUNT ? n[t] : "unknown";
}

/* ggml.h type ids (holes are ids ggml removed). */
const char *spx_ggml_type_name(uint32_t t)
{
    static const char *const n[40] = {
        "F32", "F16", "Q4_0", "Q4_1", NULL, NULL, "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K",
        "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16",
        "I32", "I64", "F64", "IQ1_M", "BF16", NULL, NULL, NULL, "TQ1_0", "TQ2_0", NULL, NULL, NULL, "MXFP4"};
    return t < 40 && n[t] ? n[t] : "unknown";
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* n bytes must remain at the cursor. */
static int need(cur *c, uint64_t n, const char *what)
{
    if (n > c->len - c->pos)
        return spx_err_set(c->ctx, SPX_E_TRUNCATED, "%s: truncated: %s at byte %zu needs %llu bytes, only %zu remain",
                           c->path, what, c->pos, (unsigned long long)n, c->len - c->pos);
    return 0;
}

static int get32(cur *c, const char *what, uint32_t *v)
{
    int rc = need(c, 4, what);
    if (rc == 0) {
        *v = rd32(c->b + c->pos);
        c->pos += 4;
    }
    return rc;
}

static int get64(cur *c, const char *what, uint64_t *v)
{
    int rc = need(c, 8, what);
    if (rc == 0) {
        *v = rd64(c->b + c->pos);
        c->pos += 8;
    }
    return rc;
}

/* GGUF string: u64 length + bytes; *s points into the buffer. */
static int get_str(cur *c, const char *what, const unsigned char **s, uint64_t *len)
{
    int rc = 0;
    size_t at = c->pos;
    SPX_TRY(rc, get64(c, what, len));
    if (*len > c->len - c->pos)
        SPX_FAIL(c->ctx, rc, SPX_E_TRUNCATED, "%s: truncated: %s at byte %zu has length %llu but only %zu bytes "
                 "remain", c->path, what, at, (unsigned long long)*len, c->len - c->pos);
    *s = c->b + c->pos;
    c->pos += (size_t)*len;
done:
    return rc;
}

/* Value of kv->type at the cursor (arrays: of kv->elem_type, never nested). */
static int get_value(cur *c, spx_gguf_kv *kv)
{
    int rc = 0;
    uint32_t t = kv->type;
    size_t at = c->pos;
    if (t >= SPX_GGUF_VTYPE_COUNT)
        SPX_FAIL(c->ctx, rc, SPX_E_GGUF, "%s: key '%s' (byte %llu): unknown value type %u", c->path, kv->key,
                 (unsigned long long)kv->off, t);
    if (t == SPX_GGUF_STRING) {
        SPX_TRY(rc, get_str(c, kv->key, &kv->raw, &kv->count));
    } else if (t == SPX_GGUF_ARRAY) {
        uint64_t bytes;
        SPX_TRY(rc, get32(c, "array element type", &kv->elem_type));
        SPX_TRY(rc, get64(c, "array length", &kv->count));
        if (kv->elem_type == SPX_GGUF_ARRAY)
            SPX_FAIL(c->ctx, rc, SPX_E_UNSUPPORTED, "%s: key '%s' (byte %llu): nested arrays are not supported",
                     c->path, kv->key, (unsigned long long)kv->off);
        if (kv->elem_type >= SPX_GGUF_VTYPE_COUNT)
            SPX_FAIL(c->ctx, rc, SPX_E_GGUF, "%s: key '%s' (byte %llu): unknown array element type %u", c->path,
                     kv->key, (unsigned long long)kv->off, kv->elem_type);
        kv->raw = c->b + c->pos;
        if (kv->elem_type == SPX_GGUF_STRING) {
            if (kv->count > (c->len - c->pos) / 8)
                SPX_FAIL(c->ctx, rc, SPX_E_TRUNCATED, "%s: truncated: key '%s' (byte %llu): %llu strings cannot fit "
                         "in the %zu bytes that remain", c->path, kv->key, (unsigned long long)kv->off,
                         (unsigned long long)kv->count, c->len - c->pos);
            for (uint64_t i = 0; i < kv->count; i++) {
                const unsigned char *s;
                uint64_t n;
                SPX_TRY(rc, get_str(c, kv->key, &s, &n));
            }
            goto done;
        }
        if (spx_ckd_mul_u64(kv->count, vsize[kv->elem_type], &bytes))
            SPX_FAIL(c->ctx, rc, SPX_E_OVERFLOW, "%s: key '%s' (byte %llu): array length %llu overflows", c->path,
                     kv->key, (unsigned long long)kv->off, (unsigned long long)kv->count);
        SPX_TRY(rc, need(c, bytes, kv->key));
        if (kv->elem_type == SPX_GGUF_BOOL)
            for (uint64_t i = 0; i < kv->count; i++)
                if (kv->raw[i] > 1)
                    SPX_FAIL(c->ctx, rc, SPX_E_GGUF, "%s: key '%s': bool element %llu at byte %llu is %u (not 0 or 1)",
                             c->path, kv->key, (unsigned long long)i, (unsigned long long)(c->pos + i), kv->raw[i]);
        c->pos += (size_t)bytes;
    } else {
        const unsigned char *p;
        SPX_TRY(rc, need(c, vsize[t], kv->key));
        p = c->b + c->pos;
        c->pos += vsize[t];
        switch (t) {
        case SPX_GGUF_U8: kv->v.u = p[0]; break;
        case SPX_GGUF_I8: kv->v.i = (int8_t)p[0]; break;
        case SPX_GGUF_U16: kv->v.u = (uint64_t)p[0] | (uint64_t)p[1] << 8; break;
        case SPX_GGUF_I16: kv->v.i = (int16_t)(uint16_t)(p[0] | p[1] << 8); break;
        case SPX_GGUF_U32: kv->v.u = rd32(p); break;
        case SPX_GGUF_I32: kv->v.i = (int32_t)rd32(p); break;
        case SPX_GGUF_U64: kv->v.u = rd64(p); break;
        case SPX_GGUF_I64: kv->v.i = (int64_t)rd64(p); break;
        case SPX_GGUF_F32: {
            uint32_t u = rd32(p);
            float f;
            memcpy(&f, &u, 4);
            kv->v.f = (double)f;
            break;
        }
        case SPX_GGUF_F64: {
            uint64_t u = rd64(p);
            memcpy(&kv->v.f, &u, 8);
            break;
        }
        default:   /* BOOL */
            if (p[0] > 1)
                SPX_FAIL(c->ctx, rc, SPX_E_GGUF, "%s: key '%s': bool at byte %zu is %u (not 0 or 1)", c->path, kv->key,
                         at, p[0]);
            kv->v.u = p[0];
        }
    }
done:
    return rc;
}

/* qsort comparators over arrays of pointers (ties by file position: deterministic) */
static int cmp_kv(const void *a, const void *b)
{
    const spx_gguf_kv *x = *(const spx_gguf_kv *const *)a, *y = *(const spx_gguf_kv *const *)b;
    int r = strcmp(x->key, y->key);
    return r ? r : (x->off > y->off) - (x->off < y->off);
}

static int cmp_name(const void *a, const void *b)
{
    const spx_gguf_tensor *x = *(const spx_gguf_tensor *const *)a, *y = *(const spx_gguf_tensor *const *)b;
    int r = strcmp(x->name, y->name);
    return r ? r : (x->info_off > y->info_off) - (x->info_off < y->info_off);
}

static int cmp_offset(const void *a, const void *b)
{
    const spx_gguf_tensor *x = *(const spx_gguf_tensor *const *)a, *y = *(const spx_gguf_tensor *const *)b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return (x->info_off > y->info_off) - (x->info_off < y->info_off);
}

static spx_gguf_tensor **tensor_ptrs(spx_gguf *g)
{
    spx_gguf_tensor **p = malloc((g->n_tensors ? g->n_tensors : 1) * sizeof *p);
    for (size_t i = 0; p && i < g->n_tensors; i++)
        p[i] = &g->tensors[i];
    return p;
}

static int parse_kvs(cur *c, spx_gguf *g)
{
    int rc = 0;
    for (size_t i = 0; i < g->n_kv; i++) {
        spx_gguf_kv *kv = &g->kvs[i];
        const unsigned char *k;
        uint64_t klen;
        char *copy;
        kv->off = c->pos;
        SPX_TRY(rc, get_str(c, "metadata key", &k, &klen));
        if (klen == 0 || klen > SPX_GGUF_KEY_MAX || memchr(k, 0, (size_t)klen))
            SPX_FAIL(c->ctx, rc, SPX_E_GGUF, "%s: metadata key %zu at byte %llu: empty, longer than %u bytes or "
                     "containing a NUL byte", c->path, i, (unsigned long long)kv->off, SPX_GGUF_KEY_MAX);
        if (!(copy = malloc((size_t)klen + 1)))
            SPX_FAIL(c->ctx, rc, SPX_E_NOMEM, "out of memory");
        memcpy(copy, k, (size_t)klen);
        copy[klen] = '\0';
        kv->key = copy;
        SPX_TRY(rc, get32(c, kv->key, &kv->type));
        SPX_TRY(rc, get_value(c, kv));
    }
    if (!(g->kv_sorted = malloc((g->n_kv ? g->n_kv : 1) * sizeof *g->kv_sorted)))
        SPX_FAIL(c->ctx, rc, SPX_E_NOMEM, "out of memory");
    for (size_t i = 0; i < g->n_kv; i++)
        g->kv_sorted[i] = &g->kvs[i];
    qsort(g->kv_sorted, g->n_kv, sizeof *g->kv_sorted, cmp_kv);
    for (size_t i = 1; i < g->n_kv; i++) {
        const spx_gguf_kv *a = g->kv_sorted[i - 1], *b = g->kv_sorted[i];
        if (strcmp(a->key, b->key) == 0)
            SPX_FAIL(c->ctx, rc, SPX_E_DUP_KEY, "%s: duplicate metadata key '%s' at bytes %llu and %llu", c->path,
                     a->key, (unsigned long long)a->off, (unsigned long long)b->off);
    }
    g->alignment = SPX_GGUF_ALIGN_DEFAULT;
    const spx_gguf_kv *al = spx_gguf_find_kv(g, "general.alignment");
    if (al) {
        if (al->type != SPX_GGUF_U32)
            SPX_FAIL(c->ctx, rc, SPX_E_ALIGN, "%s: general.alignment (byte %llu) has type %s, must be UINT32", c->path,
                     (unsigned long long)al->off, spx_gguf_vtype_name(al->type));
        if (al->v.u == 0 || (al->v.u & (al->v.u - 1)) || al->v.u > SPX_GGUF_ALIGN_MAX)
            SPX_FAIL(c->ctx, rc, SPX_E_ALIGN, "%s: general.alignment (byte %llu) = %llu is not a power of two in "
                     "1..%u", c->path, (unsigned long long)al->off, (unsigned long long)al->v.u, SPX_GGUF_ALIGN_MAX);
        g->alignment = al->v.u;
    }
done:
    return rc;
}

static int parse_info(cur *c, spx_gguf *g, spx_gguf_tensor *t, size_t i)
{
    int rc = 0;
    const unsigned char *name = NULL;
    uint64_t nlen = 0, per;
    t->info_off = c->pos;
    SPX_TRY(rc, get_str(c, "tensor name", &name, &nlen));
    if (nlen == 0 || nlen > SPX_GGUF_NAME_MAX || memchr(name, 0, (size_t)nlen))
        SPX_FAIL(c->ctx, rc, SPX_E_NAME, "%s: tensor info %zu at byte %llu: name of %llu bytes is empty, longer than "
                 "%d bytes or contains a NUL byte", c->path, i, (unsigned long long)t->info_off,
                 (unsigned long long)nlen, SPX_GGUF_NAME_MAX);
    memcpy(t->name, name, (size_t)nlen);
    t->name[nlen] = '\0';
    size_t at = c->pos;
    SPX_TRY(rc, get32(c, t->name, &t->n_dims));
    if (t->n_dims == 0 || t->n_dims > SPX_GGUF_MAX_DIMS)
        SPX_FAIL(c->ctx, rc, SPX_E_DIMS, "%s: tensor %s: n_dims %u at byte %zu is out of range (1..%d)", c->path,
                 t->name, t->n_dims, at, SPX_GGUF_MAX_DIMS);
    t->numel = 1;
    for (uint32_t d = 0; d < SPX_GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d >= t->n_dims)
            continue;
        at = c->pos;
        SPX_TRY(rc, get64(c, t->name, &t->ne[d]));
        if (t->ne[d] == 0 || t->ne[d] > (uint64_t)INT64_MAX)
            SPX_FAIL(c->ctx, rc, SPX_E_DIMS, "%s: tensor %s: dimension %u at byte %zu is %llu (must be 1..2^63-1)",
                     c->path, t->name, d, at, (unsigned long long)t->ne[d]);
        if (spx_ckd_mul_u64(t->numel, t->ne[d], &t->numel))
            SPX_FAIL(c->ctx, rc, SPX_E_OVERFLOW, "%s: tensor %s: element count overflows at dimension %u (byte %zu)",
                     c->path, t->name, d, at);
    }
    at = c->pos;
    SPX_TRY(rc, get32(c, t->name, &t->type));
    switch (t->type) {
    case SPX_GGML_F32: per = 4; break;
    case SPX_GGML_F16: case SPX_GGML_BF16: per = 2; break;
    case SPX_GGML_Q8_0:
        if (t->ne[0] % SPX_GGUF_Q8_0_BLOCK)
            SPX_FAIL(c->ctx, rc, SPX_E_SHAPE, "%s: tensor %s: Q8_0 rows of %llu values are not a multiple of the "
                     "%d-value block", c->path, t->name, (unsigned long long)t->ne[0], SPX_GGUF_Q8_0_BLOCK);
        per = 0;
        break;
    default:
        if (strcmp(spx_ggml_type_name(t->type), "unknown") == 0)
            SPX_FAIL(c->ctx, rc, SPX_E_GGUF, "%s: tensor %s: unknown ggml type %u at byte %zu", c->path, t->name,
                     t->type, at);
        SPX_FAIL(c->ctx, rc, SPX_E_UNSUPPORTED, "%s: tensor %s: ggml type %s (byte %zu) is not supported: spx "
                 "converts F32, F16, BF16 and Q8_0 tensors", c->path, t->name, spx_ggml_type_name(t->type), at);
    }
    if (per ? spx_ckd_mul_u64(t->numel, per, &t->size)
            : spx_ckd_mul_u64(t->numel / SPX_GGUF_Q8_0_BLOCK, SPX_GGUF_Q8_0_BYTES, &t->size))
        SPX_FAIL(c->ctx, rc, SPX_E_OVERFLOW, "%s: tensor %s: byte size overflows", c->path, t->name);
    at = c->pos;
    SPX_TRY(rc, get64(c, t->name, &t->offset));
    if (t->offset % g->alignment)
        SPX_FAIL(c->ctx, rc, SPX_E_ALIGN, "%s: tensor %s: data offset %llu (byte %zu) is not a multiple of the "
                 "alignment %llu", c->path, t->name, (unsigned long long)t->offset, at,
                 (unsigned long long)g->alignment);
done:
    return rc;
}

/* Data ranges: inside the file, not overlapping, nothing after the last one but its padding. */
static int check_ranges(cur *c, spx_gguf *g)
{
    int rc = 0;
    uint64_t end = 0, allowed;
    spx_gguf_tensor **ix = NULL;
    for (size_t i = 0; i < g->n_tensors; i++) {
        spx_gguf_tensor *t = &g->tensors[i];
        uint64_t a, b;
        if (spx_ckd_add_u64(g->data_off, t->offset, &a) || spx_ckd_add_u64(a, t->size, &b))
            SPX_FAIL(c->ctx, rc, SPX_E_OVERFLOW, "%s: tensor %s: data offset %llu + size %llu overflows", c->path,
                     t->name, (unsigned long long)t->offset, (unsigned long long)t->size);
        if (b > c->len)
            SPX_FAIL(c->ctx, rc, SPX_E_TRUNCATED, "%s: truncated: tensor %s (info at byte %llu): data bytes %llu..%llu "
                     "run past the end of the file (%zu bytes)", c->path, t->name, (unsigned long long)t->info_off,
                     (unsigned long long)a, (unsigned long long)b, c->len);
        t->data = c->b + a;
        if (b - g->data_off > end)
            end = b - g->data_off;
    }
    if (!(g->t_sorted = tensor_ptrs(g)) || !(ix = tensor_ptrs(g)))
        SPX_FAIL(c->ctx, rc, SPX_E_NOMEM, "out of memory");
    qsort(ix, g->n_tensors, sizeof *ix, cmp_offset);
    for (size_t i = 1; i < g->n_tensors; i++) {
        const spx_gguf_tensor *a = ix[i - 1], *b = ix[i];
        if (a->offset + a->size > b->offset)
            SPX_FAIL(c->ctx, rc, SPX_E_OVERLAP, "%s: tensors %s and %s overlap: data bytes %llu..%llu and %llu..%llu",
                     c->path, a->name, b->name, (unsigned long long)(g->data_off + a->offset),
                     (unsigned long long)(g->data_off + a->offset + a->size), (unsigned long long)(g->data_off + b->offset),
                     (unsigned long long)(g->data_off + b->offset + b->size));
    }
    qsort(g->t_sorted, g->n_tensors, sizeof *g->t_sorted, cmp_name);
    for (size_t i = 1; i < g->n_tensors; i++) {
        const spx_gguf_tensor *a = g->t_sorted[i - 1], *b = g->t_sorted[i];
        if (strcmp(a->name, b->name) == 0)
            SPX_FAIL(c->ctx, rc, SPX_E_DUP_NAME, "%s: duplicate tensor name '%s' (infos at bytes %llu and %llu)",
                     c->path, a->name, (unsigned long long)a->info_off, (unsigned long long)b->info_off);
    }
    /* writers pad every tensor, the last one included, to the alignment */
    if (spx_ckd_align_u64(end, g->alignment, &allowed) || spx_ckd_add_u64(allowed, g->data_off, &allowed))
        SPX_FAIL(c->ctx, rc, SPX_E_OVERFLOW, "%s: data section size overflows", c->path);
    if (c->len > allowed)
        SPX_FAIL(c->ctx, rc, SPX_E_TRAILING, "%s: %llu unexpected bytes at byte %llu after the end of the tensor data",
                 c->path, (unsigned long long)(c->len - allowed), (unsigned long long)allowed);
done:
    free(ix);
    return rc;
}

static int parse(spx_ctx *ctx, spx_gguf *g)
{
    int rc = 0;
    cur c = {ctx, g->path, g->buf, g->len, 0};
    uint64_t n_t, n_kv, min;
    if (g->len < 4 || memcmp(g->buf, "GGUF", 4) != 0) {
        if (g->len >= 8 && memcmp(g->buf, SPX_MAGIC_BYTES, 8) == 0)
            SPX_FAIL(ctx, rc, SPX_E_BAD_MAGIC, "%s: bytes 0..3: this is a .spx file, not GGUF", g->path);
        if (g->len < 4)
            SPX_FAIL(ctx, rc, SPX_E_TRUNCATED, "%s: truncated: %zu bytes, too short for the GGUF magic at byte 0",
                     g->path, g->len);
        SPX_FAIL(ctx, rc, SPX_E_BAD_MAGIC, "%s: bytes 0..3 are not the GGUF magic \"GGUF\"", g->path);
    }
    c.pos = 4;
    SPX_TRY(rc, get32(&c, "version", &g->version));
    if (g->version == 1)
        SPX_FAIL(ctx, rc, SPX_E_VERSION, "%s: GGUF version 1 (byte 4; 32-bit counts) is not supported (2 or 3)",
                 g->path);
    if ((g->version & 0xffffu) == 0 && (g->version >> 16) != 0)
        SPX_FAIL(ctx, rc, SPX_E_BYTESWAPPED, "%s: version field at byte 4 reads 0x%08x: a big-endian GGUF file "
                 "(only little-endian files are supported)", g->path, g->version);
    if (g->version != 2 && g->version != 3)
        SPX_FAIL(ctx, rc, SPX_E_VERSION, "%s: GGUF version %u at byte 4 is not supported (2 or 3)", g->path, g->version);
    SPX_TRY(rc, get64(&c, "tensor_count", &n_t));
    SPX_TRY(rc, get64(&c, "kv_count", &n_kv));
    if (n_t > SPX_MAX_TENSORS || n_kv > MAX_KV)
        SPX_FAIL(ctx, rc, SPX_E_GGUF, "%s: tensor_count %llu (byte 8) or kv_count %llu (byte 16) exceeds the limit "
                 "(%u tensors, %u keys)", g->path, (unsigned long long)n_t, (unsigned long long)n_kv,
                 SPX_MAX_TENSORS, MAX_KV);
    if (n_kv * MIN_KV_BYTES + n_t * MIN_INFO_BYTES > c.len - c.pos)   /* no overflow: both bounded above */
        SPX_FAIL(ctx, rc, SPX_E_TRUNCATED, "%s: truncated: tensor_count %llu (byte 8) and kv_count %llu (byte 16) "
                 "need at least %llu bytes, only %zu follow", g->path, (unsigned long long)n_t,
                 (unsigned long long)n_kv, (unsigned long long)(n_kv * MIN_KV_BYTES + n_t * MIN_INFO_BYTES),
                 c.len - c.pos);
    g->n_kv = (size_t)n_kv;
    g->n_tensors = (size_t)n_t;
    g->kvs = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kvs);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    if (!g->kvs || !g->tensors)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory for %zu keys and %zu tensors", g->n_kv, g->n_tensors);
    SPX_TRY(rc, parse_kvs(&c, g));
    for (size_t i = 0; i < g->n_tensors; i++)
        SPX_TRY(rc, parse_info(&c, g, &g->tensors[i], i));
    if (spx_ckd_align_u64(c.pos, g->alignment, &min))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "%s: data section offset overflows", g->path);
    g->data_off = min;
    if (g->n_tensors && g->data_off > c.len)
        SPX_FAIL(ctx, rc, SPX_E_TRUNCATED, "%s: truncated: the data section would start at byte %llu, after the end "
                 "of the file (%zu bytes)", g->path, (unsigned long long)g->data_off, c.len);
    SPX_TRY(rc, check_ranges(&c, g));
done:
    return rc;
}

static int finish_open(spx_ctx *ctx, spx_gguf *g, spx_gguf **out)
{
    int rc = parse(ctx, g);
    if (rc < 0) {
        spx_gguf_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

int spx_gguf_open_mem(spx_ctx *ctx, const void *buf, size_t len, const char *label, spx_gguf **out)
{
    spx_gguf *g = calloc(1, sizeof *g);
    *out = NULL;
    if (!g || !(g->path = strdup(label ? label : "<memory>"))) {
        free(g);
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
    }
    g->buf = len ? buf : (const unsigned char *)"";
    g->len = len;
    return finish_open(ctx, g, out);
}

int spx_gguf_open(spx_ctx *ctx, const char *path, spx_gguf **out)
{
    int rc = 0;
    spx_gguf *g = calloc(1, sizeof *g);
    *out = NULL;
    if (!g || !(g->path = strdup(path)))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    SPX_TRY(rc, spx_io_map_file(ctx, path, "GGUF file", &g->map, &g->len));
    g->buf = g->map ? (const unsigned char *)g->map : (const unsigned char *)"";
    rc = finish_open(ctx, g, out);
    g = NULL;
done:
    spx_gguf_free(g);
    return rc;
}

void spx_gguf_free(spx_gguf *g)
{
    if (!g)
        return;
    spx_io_unmap(g->map, g->len);
    for (size_t i = 0; g->kvs && i < g->n_kv; i++)
        free((char *)g->kvs[i].key);
    free(g->kvs);
    free(g->kv_sorted);
    free(g->tensors);
    free(g->t_sorted);
    free(g->path);
    free(g);
}

const char *spx_gguf_path(const spx_gguf *g) { return g->path; }
uint32_t spx_gguf_version(const spx_gguf *g) { return g->version; }
uint64_t spx_gguf_alignment(const spx_gguf *g) { return g->alignment; }
uint64_t spx_gguf_data_offset(const spx_gguf *g) { return g->data_off; }
size_t spx_gguf_kv_count(const spx_gguf *g) { return g->n_kv; }
const spx_gguf_kv *spx_gguf_kv_at(const spx_gguf *g, size_t i) { return i < g->n_kv ? &g->kvs[i] : NULL; }
size_t spx_gguf_tensor_count(const spx_gguf *g) { return g->n_tensors; }
const spx_gguf_tensor *spx_gguf_tensor_at(const spx_gguf *g, size_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const spx_gguf_kv *spx_gguf_find_kv(const spx_gguf *g, const char *key)
{
    size_t lo = 0, hi = g->kv_sorted ? g->n_kv : 0;
    while (lo < hi) {   /* first entry >= key in the sorted index */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(g->kv_sorted[mid]->key, key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (g->kv_sorted && lo < g->n_kv && strcmp(g->kv_sorted[lo]->key, key) == 0)
        return g->kv_sorted[lo];
    return NULL;
}

const spx_gguf_tensor *spx_gguf_find_tensor(const spx_gguf *g, const char *name)
{
    size_t lo = 0, hi = g->t_sorted ? g->n_tensors : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(g->t_sorted[mid]->name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (g->t_sorted && lo < g->n_tensors && strcmp(g->t_sorted[lo]->name, name) == 0)
        return g->t_sorted[lo];
    return NULL;
}
