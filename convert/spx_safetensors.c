/* spx_safetensors.c: mmap + validate one safetensors file (layout in spx_safetensors.h). */
#include "spx_safetensors.h"

#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_io.h"
#include "spx_half.h"

#define MAX_EXACT_INT 9007199254740992.0   /* 2^53: JSON numbers beyond are not exact doubles */

struct spx_st_file {
    char *path;
    const unsigned char *buf;   /* whole file */
    size_t len;
    void *map;                  /* non-NULL when we own an mmap of `len` bytes */
    uint64_t n;                 /* header length */
    char *hdr;                  /* NUL-terminated copy of the header (for cJSON and messages) */
    spx_st_tensor *t;           /* [count], sorted by offset */
    size_t count;
    size_t *by_name;            /* [count] indices into t, sorted by name */
    char **meta_kv;             /* [2 * meta_n]: key, value, key, value ... */
    size_t meta_n;
};

static const struct {
    const char *name;
    unsigned bits;
} dtypes[SPX_ST_DTYPE_COUNT] = {
    [SPX_ST_BOOL] = {"BOOL", 8},     [SPX_ST_U8] = {"U8", 8},
    [SPX_ST_I8] = {"I8", 8},         [SPX_ST_I16] = {"I16", 16},
    [SPX_ST_U16] = {"U16", 16},      [SPX_ST_I32] = {"I32", 32},
    [SPX_ST_U32] = {"U32", 32},      [SPX_ST_I64] = {"I64", 64},
    [SPX_ST_U64] = {"U64", 64},      [SPX_ST_F16] = {"F16", 16},
    [SPX_ST_BF16] = {"BF16", 16},    [SPX_ST_F32] = {"F32", 32},
    [SPX_ST_F64] = {"F64", 64},      [SPX_ST_F8_E4M3] = {"F8_E4M3", 8},
    [SPX_ST_F8_E5M2] = {"F8_E5M2", 8}, [SPX_ST_F8_E8M0] = {"F8_E8M0", 8},
    [SPX_ST_F4] = {"F4", 4},         [SPX_ST_F6_E2M3] = {"F6_E2M3", 6},
    [SPX_ST_F6_E3M2] = {"F6_E3M2", 6}, [SPX_ST_C64] = {"C64", 64},
};

const char *spx_st_dtype_name(int dtype)
{
    return (dtype >= 0 && dtype < SPX_ST_DTYPE_COUNT) ? dtypes[dtype].name : "?";
}

unsigned spx_st_dtype_bits(int dtype)
{
    return (dtype >= 0 && dtype < SPX_ST_DTYPE_COUNT) ? dtypes[dtype].bits : 0;
}

int spx_st_dtype_parse(const char *s, size_t len)
{
    for (int i = 0; i < SPX_ST_DTYPE_COUNT; i++)
        if (strlen(dtypes[i].name) == len && memcmp(dtypes[i].name, s, len) == 0)
            return i;
    return -1;
}

/* Byte offset (in the file) of the header key "name", for messages; 8 when not found (e.g. the
 * key is written with escapes). */
static uint64_t key_pos(const spx_st_file *f, const char *name)
{
    size_t nl = strlen(name);
    const char *p = f->hdr, *end = f->hdr + f->n;
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (!q || (size_t)(end - q) < nl + 2)
            break;
        if (memcmp(q + 1, name, nl) == 0 && q[nl + 1] == '"') {
            const char *r = q + nl + 2;
            while (r < end && (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r'))
                r++;
            if (r < end && *r == ':')
                return 8u + (uint64_t)(q - f->hdr);
        }
        p = q + 1;
    }
    return 8;
}

/* JSON text must be UTF-8 without raw control characters other than JSON whitespace. Returns the
 * index of the first bad byte, or len when all are fine. */
static size_t utf8_check(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
                return i;
            i++;
            continue;
        }
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; min = 0x10000; }
        else return i;
        if (len - i <= n)
            return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = (cp << 6) | (s[i + k] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n + 1;
    }
    return len;
}

/* A JSON number that is an exact non-negative integer <= 2^53. */
static int json_uint(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!(d >= 0.0) || d > MAX_EXACT_INT || floor(d) != d)
        return -1;
    *out = (uint64_t)d;
    return 0;
}

/* Names are sorted as (name, index) pairs: C11 qsort has no user pointer. */
typedef struct name_ix {
    const char *name;
    size_t ix;
} name_ix;

static int cmp_name_ix(const void *a, const void *b)
{
    return strcmp(((const name_ix *)a)->name, ((const name_ix *)b)->name);
}

static int cmp_offset(const void *a, const void *b)
{
    const spx_st_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int parse_meta(spx_ctx *ctx, spx_st_file *f, const cJSON *m)
{
    int rc = 0;
    if (!cJSON_IsObject(m))
        SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: __metadata__ (header byte %llu) is not an object",
                 f->path, (unsigned long long)key_pos(f, "__metadata__"));
    size_t n = (size_t)cJSON_GetArraySize(m);
    f->meta_kv = calloc(2 * n + 1, sizeof *f->meta_kv);
    if (!f->meta_kv)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", f->path);
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e) || !e->string)
            SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: __metadata__ value of '%s' (header byte %llu) is not a string",
                     f->path, e->string ? e->string : "?", (unsigned long long)key_pos(f, e->string ? e->string : ""));
        for (size_t k = 0; k < f->meta_n; k++)
            if (strcmp(f->meta_kv[2 * k], e->string) == 0)
                SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: duplicate __metadata__ key '%s'", f->path, e->string);
        f->meta_kv[2 * f->meta_n] = strdup(e->string);
        f->meta_kv[2 * f->meta_n + 1] = strdup(e->valuestring);
        f->meta_n++;
        if (!f->meta_kv[2 * f->meta_n - 2] || !f->meta_kv[2 * f->meta_n - 1])
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", f->path);
    }
done:
    return rc;
}

static int parse_entry(spx_ctx *ctx, spx_st_file *f, const cJSON *e, spx_st_tensor *t)
{
    int rc = 0;
    const cJSON *dt = NULL, *sh = NULL, *off = NULL;
    unsigned long long pos = (unsigned long long)key_pos(f, e->string);
    const char *nm = e->string;
#define BAD(...) SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, __VA_ARGS__)
    if (!cJSON_IsObject(e))
        BAD("%s: tensor '%s' (header byte %llu): entry is not an object", f->path, nm, pos);
    for (const cJSON *c = e->child; c; c = c->next) {
        const cJSON **slot = NULL;
        if (strcmp(c->string, "dtype") == 0) slot = &dt;
        else if (strcmp(c->string, "shape") == 0) slot = &sh;
        else if (strcmp(c->string, "data_offsets") == 0) slot = &off;
        else BAD("%s: tensor '%s' (header byte %llu): unknown field '%s'", f->path, nm, pos, c->string);
        if (*slot)
            BAD("%s: tensor '%s' (header byte %llu): duplicate field '%s'", f->path, nm, pos, c->string);
        *slot = c;
    }
    if (!dt || !sh || !off)
        BAD("%s: tensor '%s' (header byte %llu): missing field '%s'", f->path, nm, pos,
            !dt ? "dtype" : !sh ? "shape" : "data_offsets");
    if (!cJSON_IsString(dt))
        BAD("%s: tensor '%s' (header byte %llu): dtype is not a string", f->path, nm, pos);
    t->dtype = spx_st_dtype_parse(dt->valuestring, strlen(dt->valuestring));
    if (t->dtype < 0)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: tensor '%s' (header byte %llu): unknown dtype '%s'",
                 f->path, nm, pos, dt->valuestring);
    if (!cJSON_IsArray(sh))
        BAD("%s: tensor '%s' (header byte %llu): shape is not an array", f->path, nm, pos);
    int nd = cJSON_GetArraySize(sh);
    if (nd > SPX_ST_MAX_DIMS)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: tensor '%s' (header byte %llu): %d dimensions (at most %d supported)",
                 f->path, nm, pos, nd, SPX_ST_MAX_DIMS);
    t->ndim = (uint32_t)nd;
    t->numel = 1;
    uint32_t k = 0;
    for (const cJSON *d = sh->child; d; d = d->next, k++) {
        if (json_uint(d, &t->shape[k]) < 0)
            BAD("%s: tensor '%s' (header byte %llu): shape[%u] is not a non-negative integer <= 2^53",
                f->path, nm, pos, k);
        if (spx_ckd_mul_u64(t->numel, t->shape[k], &t->numel))
            BAD("%s: tensor '%s' (header byte %llu): shape product overflows 64 bits", f->path, nm, pos);
    }
    uint64_t bits, bytes;
    if (spx_ckd_mul_u64(t->numel, spx_st_dtype_bits(t->dtype), &bits))
        BAD("%s: tensor '%s' (header byte %llu): shape x dtype size overflows 64 bits", f->path, nm, pos);
    if (bits % 8)
        BAD("%s: tensor '%s' (header byte %llu): %llu elements of %s do not fill whole bytes",
            f->path, nm, pos, (unsigned long long)t->numel, spx_st_dtype_name(t->dtype));
    bytes = bits / 8;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || json_uint(off->child, &t->begin) < 0 ||
        json_uint(off->child->next, &t->end) < 0)
        BAD("%s: tensor '%s' (header byte %llu): data_offsets is not [begin, end] of non-negative integers",
            f->path, nm, pos);
    if (t->begin > t->end)
        BAD("%s: tensor '%s' (header byte %llu): data_offsets begin %llu > end %llu", f->path, nm, pos,
            (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end - t->begin != bytes)
        BAD("%s: tensor '%s' (byte %llu): data length %llu != %llu = shape x %s size", f->path, nm,
            (unsigned long long)(8 + f->n + t->begin), (unsigned long long)(t->end - t->begin),
            (unsigned long long)bytes, spx_st_dtype_name(t->dtype));
    t->file_offset = 8 + f->n + t->begin;
    t->name = strdup(nm);
    if (!t->name)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", f->path);
#undef BAD
done:
    return rc;
}

/* Sort by name, reject duplicates, then sort by offset and check coverage of the data buffer. */
static int check_layout(spx_ctx *ctx, spx_st_file *f)
{
    int rc = 0;
    name_ix *ni = NULL;
    uint64_t data_len = (uint64_t)f->len - 8 - f->n;
    if (f->count)
        qsort(f->t, f->count, sizeof *f->t, cmp_offset);
    ni = malloc((f->count + 1) * sizeof *ni);
    f->by_name = malloc((f->count + 1) * sizeof *f->by_name);
    if (!ni || !f->by_name)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", f->path);
    for (size_t i = 0; i < f->count; i++)
        ni[i] = (name_ix){f->t[i].name, i};
    if (f->count)
        qsort(ni, f->count, sizeof *ni, cmp_name_ix);
    for (size_t i = 0; i < f->count; i++) {
        if (i > 0 && strcmp(ni[i - 1].name, ni[i].name) == 0)
            SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: duplicate tensor name '%s' (header byte %llu)", f->path,
                     ni[i].name, (unsigned long long)key_pos(f, ni[i].name));
        f->by_name[i] = ni[i].ix;
    }
    uint64_t expect = 0;
    for (size_t i = 0; i < f->count; i++) {
        const spx_st_tensor *t = &f->t[i];
        if (t->begin > expect)
            SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: hole in the data buffer: bytes %llu..%llu before tensor '%s' belong to no tensor",
                     f->path, (unsigned long long)(8 + f->n + expect), (unsigned long long)(t->file_offset), t->name);
        if (t->begin < expect)
            SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: tensor '%s' (byte %llu) overlaps tensor '%s' (which ends at byte %llu)",
                     f->path, t->name, (unsigned long long)t->file_offset, f->t[i - 1].name,
                     (unsigned long long)(8 + f->n + expect));
        if (t->end > data_len)
            SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: tensor '%s' data (bytes %llu..%llu) runs past the end of the file (%llu bytes)",
                     f->path, t->name, (unsigned long long)t->file_offset, (unsigned long long)(8 + f->n + t->end),
                     (unsigned long long)f->len);
        expect = t->end;
    }
    if (expect != data_len)
        SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: %llu trailing bytes at byte %llu after the last tensor",
                 f->path, (unsigned long long)(data_len - expect), (unsigned long long)(8 + f->n + expect));
done:
    free(ni);
    return rc;
}

static int parse(spx_ctx *ctx, spx_st_file *f)
{
    int rc = 0;
    cJSON *root = NULL;
    if (f->len < 8)
        SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: file is %zu bytes, shorter than the 8-byte header length (byte 0)",
                 f->path, f->len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | f->buf[i];
    if (n > SPX_ST_HEADER_MAX)
        SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: header length %llu (byte 0) exceeds the limit of %llu",
                 f->path, (unsigned long long)n, SPX_ST_HEADER_MAX);
    if (n > (uint64_t)f->len - 8)
        SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: header length %llu (byte 0) exceeds the %llu bytes after it",
                 f->path, (unsigned long long)n, (unsigned long long)(f->len - 8));
    f->n = n;
    size_t bad = utf8_check(f->buf + 8, (size_t)n);
    if (bad != (size_t)n)
        SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: header byte %zu is not valid UTF-8 JSON text (0x%02x)", f->path,
                 8 + bad, f->buf[8 + bad]);
    f->hdr = malloc((size_t)n + 1);
    if (!f->hdr)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory for a %llu-byte header", f->path, (unsigned long long)n);
    memcpy(f->hdr, f->buf + 8, (size_t)n);
    f->hdr[n] = '\0';
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(f->hdr, (size_t)n, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - f->hdr) : 0;
        SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: header is not valid JSON (error near byte %zu)", f->path, 8 + at);
    }
    for (const char *p = end; p < f->hdr + n; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: unexpected data after the JSON header at byte %zu", f->path,
                     8 + (size_t)(p - f->hdr));
    if (!cJSON_IsObject(root))
        SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: header (byte 8) is not a JSON object", f->path);
    size_t total = (size_t)cJSON_GetArraySize(root);
    f->t = calloc(total + 1, sizeof *f->t);
    if (!f->t)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", f->path);
    int seen_meta = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (seen_meta++)
                SPX_FAIL(ctx, rc, SPX_E_SAFETENSORS, "%s: duplicate key '__metadata__'", f->path);
            SPX_TRY(rc, parse_meta(ctx, f, e));
            continue;
        }
        SPX_TRY(rc, parse_entry(ctx, f, e, &f->t[f->count]));
        f->count++;
    }
    SPX_TRY(rc, check_layout(ctx, f));
done:
    cJSON_Delete(root);
    return rc;
}

static int finish_open(spx_ctx *ctx, spx_st_file *f, spx_st_file **out)
{
    int rc = parse(ctx, f);
    if (rc < 0) {
        spx_st_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int spx_st_open_mem(spx_ctx *ctx, const void *buf, size_t len, const char *label, spx_st_file **out)
{
    *out = NULL;
    spx_st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(label ? label : "<memory>"))) {
        free(f);
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
    }
    f->buf = buf;
    f->len = len;
    return finish_open(ctx, f, out);
}

int spx_st_open(spx_ctx *ctx, const char *path, spx_st_file **out)
{
    int rc = 0;
    spx_st_file *f = NULL;
    *out = NULL;
    f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path)))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    SPX_TRY(rc, spx_io_map_file(ctx, path, "safetensors file", &f->map, &f->len));
    f->buf = f->map ? (const unsigned char *)f->map : (const unsigned char *)"";
    rc = finish_open(ctx, f, out);
    f = NULL;
done:
    spx_st_free(f);
    return rc;
}

void spx_st_free(spx_st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->count; i++)
        free((char *)f->t[i].name);
    for (size_t i = 0; i < 2 * f->meta_n; i++)
        free(f->meta_kv[i]);
    free(f->meta_kv);
    free(f->t);
    free(f->by_name);
    free(f->hdr);
    spx_io_unmap(f->map, f->len);
    free(f->path);
    free(f);
}

const char *spx_st_path(const spx_st_file *f) { return f->path; }
uint64_t spx_st_header_len(const spx_st_file *f) { return f->n; }
size_t spx_st_count(const spx_st_file *f) { return f->count; }

const spx_st_tensor *spx_st_tensor_at(const spx_st_file *f, size_t i)
{
    return i < f->count ? &f->t[i] : NULL;
}

const spx_st_tensor *spx_st_find(const spx_st_file *f, const char *name)
{
    size_t lo = 0, hi = f->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(f->t[f->by_name[mid]].name, name);
        if (c == 0)
            return &f->t[f->by_name[mid]];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const void *spx_st_data(const spx_st_file *f, const spx_st_tensor *t)
{
    return f->buf + t->file_offset;
}

size_t spx_st_meta_count(const spx_st_file *f) { return f->meta_n; }
const char *spx_st_meta_key(const spx_st_file *f, size_t i) { return i < f->meta_n ? f->meta_kv[2 * i] : NULL; }
const char *spx_st_meta_value(const spx_st_file *f, size_t i) { return i < f->meta_n ? f->meta_kv[2 * i + 1] : NULL; }

const char *spx_st_meta_find(const spx_st_file *f, const char *key)
{
    for (size_t i = 0; i < f->meta_n; i++)
        if (strcmp(f->meta_kv[2 * i], key) == 0)
            return f->meta_kv[2 * i + 1];
    return NULL;
}

int spx_st_to_f32(spx_ctx *ctx, const spx_st_file *f, const spx_st_tensor *t, float *out)
{
    const unsigned char *src = spx_st_data(f, t);
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case SPX_ST_F32:
        if (n)
            memcpy(out, src, n * sizeof(float));
        return 0;
    case SPX_ST_F16:
        spx_f16_to_f32_n(src, out, n);
        return 0;
    case SPX_ST_BF16:
        spx_bf16_to_f32_n(src, out, n);
        return 0;
    case SPX_ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            /* out-of-range double -> float conversion is undefined in C: map it explicitly */
            if (isnan(d))
                out[i] = NAN;
            else if (fabs(d) > (double)FLT_MAX)
                out[i] = d > 0 ? INFINITY : -INFINITY;
            else
                out[i] = (float)d;
        }
        return 0;
    default:
        return spx_err_set(ctx, SPX_E_UNSUPPORTED,
                           "%s: tensor '%s' (byte %llu) has dtype %s: spx converts F32, F16, BF16 and F64 weights only "
                           "(quantized/integer checkpoints are not supported)",
                           f->path, t->name, (unsigned long long)t->file_offset, spx_st_dtype_name(t->dtype));
    }
}
