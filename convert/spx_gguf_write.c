/* spx_gguf_write.c: streaming GGUF v3 writer (API in spx_gguf.h).
 *
 * Metadata values are encoded into one byte buffer as they are added (insertion order, so the
 * output is deterministic); tensors are declared first, their offsets follow from their sizes
 * (each padded to the 32-byte alignment), and the data is then streamed in declaration order.
 * Tensor names are the caller's responsibility to keep unique (the exporter writes the names of
 * a .spx file, which are unique by construction); keys are checked for duplicates here. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spx_ckd.h"
#include "spx_gguf.h"
#include "spx_st_write_int.h"

typedef struct wtensor {
    char name[SPX_GGUF_NAME_MAX + 1];
    uint32_t type, n_dims;
    uint64_t ne[SPX_GGUF_MAX_DIMS];
    uint64_t size, offset;
} wtensor;

struct spx_gguf_writer {
    spx_ctx ctx;
    char *path, *tmp;
    FILE *fp;
    unsigned char *kv;                /* encoded key/value pairs */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    char **keys;                      /* [n_kv] for the duplicate check */
    wtensor *t;
    size_t n_t, cap_t, next;
    uint64_t data_size;               /* sum of padded tensor sizes */
    int began, failed;
};

static int wfail(spx_gguf_writer *w, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static int wfail(spx_gguf_writer *w, int code, const char *fmt, ...)
{
    va_list ap;
    int rc;
    w->failed = 1;
    va_start(ap, fmt);
    rc = spx_err_setv(&w->ctx, code, fmt, ap);
    va_end(ap);
    return rc;
}

static int grow(spx_gguf_writer *w, size_t add)
{
    size_t need;
    if (spx_ckd_add_size(w->kv_len, add, &need))
        return wfail(w, SPX_E_OVERFLOW, "%s: GGUF metadata size overflows", w->path);
    if (need > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < need)
            cap = cap > SIZE_MAX / 2 ? need : cap * 2;
        unsigned char *p = realloc(w->kv, cap);
        if (!p)
            return wfail(w, SPX_E_NOMEM, "%s: out of memory for GGUF metadata", w->path);
        w->kv = p;
        w->kv_cap = cap;
    }
    return 0;
}

static void put_bytes(spx_gguf_writer *w, const void *p, size_t n)
{
    if (n)
        memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
}

static void put_le(spx_gguf_writer *w, uint64_t v, int bytes)
{
    for (int b = 0; b < bytes; b++)
        w->kv[w->kv_len++] = (unsigned char)(v >> (8 * b));
}

/* key string + value type; reserves `extra` more bytes for the value */
static int begin_kv(spx_gguf_writer *w, const char *key, uint32_t type, size_t extra)
{
    int rc = 0;
    size_t klen = key ? strlen(key) : 0, need;
    char **keys;
    if (w->failed || w->began)
        return wfail(w, SPX_E_ARG, "%s: GGUF writer: metadata added after the data started or after an error",
                     w->path);
    if (klen == 0 || klen > SPX_GGUF_KEY_MAX)
        return wfail(w, SPX_E_ARG, "GGUF writer: empty or too long key '%s'", key ? key : "");
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0)
            return wfail(w, SPX_E_DUP_KEY, "GGUF writer: duplicate key '%s'", key);
    if (spx_ckd_add_size(klen, 12, &need) || spx_ckd_add_size(need, extra, &need))
        return wfail(w, SPX_E_OVERFLOW, "GGUF writer: key '%s': value size overflows", key);
    SPX_TRY(rc, grow(w, need));
    if (!(keys = realloc(w->keys, (size_t)(w->n_kv + 1) * sizeof *keys)) || !(keys[w->n_kv] = strdup(key))) {
        if (keys)
            w->keys = keys;
        return wfail(w, SPX_E_NOMEM, "%s: out of memory", w->path);
    }
    w->keys = keys;
    w->n_kv++;
    put_le(w, klen, 8);
    put_bytes(w, key, klen);
    put_le(w, type, 4);
done:
    return rc;
}

static int kv_scalar(spx_gguf_writer *w, const char *key, uint32_t type, uint64_t bits, int bytes)
{
    int rc = begin_kv(w, key, type, (size_t)bytes);
    if (rc == 0)
        put_le(w, bits, bytes);
    return rc;
}

int spx_gguf_writer_kv_u32(spx_gguf_writer *w, const char *key, uint32_t v) { return kv_scalar(w, key, SPX_GGUF_U32, v, 4); }
int spx_gguf_writer_kv_i32(spx_gguf_writer *w, const char *key, int32_t v)
{
    return kv_scalar(w, key, SPX_GGUF_I32, (uint32_t)v, 4);
}
int spx_gguf_writer_kv_bool(spx_gguf_writer *w, const char *key, int v) { return kv_scalar(w, key, SPX_GGUF_BOOL, v != 0, 1); }

int spx_gguf_writer_kv_f32(spx_gguf_writer *w, const char *key, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return kv_scalar(w, key, SPX_GGUF_F32, u, 4);
}

int spx_gguf_writer_kv_str(spx_gguf_writer *w, const char *key, const char *s, size_t len)
{
    int rc = 0;
    size_t extra;
    if (spx_ckd_add_size(len, 8, &extra))
        return wfail(w, SPX_E_OVERFLOW, "GGUF writer: key '%s': string too long", key);
    SPX_TRY(rc, begin_kv(w, key, SPX_GGUF_STRING, extra));
    put_le(w, len, 8);
    put_bytes(w, s, len);
done:
    return rc;
}

int spx_gguf_writer_kv_arr(spx_gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t count)
{
    static const unsigned char es[SPX_GGUF_VTYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    int rc = 0;
    size_t bytes;
    const unsigned char *src = data;
    if (elem_type >= SPX_GGUF_VTYPE_COUNT || !es[elem_type])
        return wfail(w, SPX_E_ARG, "GGUF writer: key '%s': array element type is not a fixed-width scalar", key);
    if (count > SIZE_MAX || spx_ckd_mul_size((size_t)count, es[elem_type], &bytes) || bytes > SIZE_MAX - 12)
        return wfail(w, SPX_E_OVERFLOW, "GGUF writer: key '%s': array too large", key);
    SPX_TRY(rc, begin_kv(w, key, SPX_GGUF_ARRAY, bytes + 12));
    put_le(w, elem_type, 4);
    put_le(w, count, 8);
    for (size_t i = 0; i < (size_t)count; i++) {
        uint64_t v = 0;
        if (es[elem_type] == 1) {
            v = src[i];
        } else if (es[elem_type] == 2) {
            uint16_t x;
            memcpy(&x, src + 2 * i, 2);
            v = x;
        } else if (es[elem_type] == 4) {
            uint32_t x;
            memcpy(&x, src + 4 * i, 4);
            v = x;
        } else {
            memcpy(&v, src + 8 * i, 8);
        }
        put_le(w, v, es[elem_type]);
    }
done:
    return rc;
}

int spx_gguf_writer_kv_arr_str(spx_gguf_writer *w, const char *key, const char *const *strs, const uint64_t *lens,
                               uint64_t count)
{
    int rc = 0;
    uint64_t total = 12;
    for (uint64_t i = 0; i < count; i++)
        if (spx_ckd_add_u64(total, 8, &total) || spx_ckd_add_u64(total, lens[i], &total))
            return wfail(w, SPX_E_OVERFLOW, "GGUF writer: key '%s': string array too large", key);
    if (total > SIZE_MAX)
        return wfail(w, SPX_E_OVERFLOW, "GGUF writer: key '%s': string array too large", key);
    SPX_TRY(rc, begin_kv(w, key, SPX_GGUF_ARRAY, (size_t)total));
    put_le(w, SPX_GGUF_STRING, 4);
    put_le(w, count, 8);
    for (uint64_t i = 0; i < count; i++) {
        put_le(w, lens[i], 8);
        put_bytes(w, strs[i], (size_t)lens[i]);
    }
done:
    return rc;
}

int spx_gguf_writer_tensor(spx_gguf_writer *w, const char *name, uint32_t type, uint32_t ndim, const uint64_t *dims)
{
    wtensor *t;
    uint64_t numel = 1, per = type == SPX_GGML_F32 ? 4 : 2, padded;
    if (w->failed || w->began)
        return wfail(w, SPX_E_ARG, "%s: GGUF writer: tensor declared after the data started or after an error",
                     w->path);
    if (!name || !name[0] || strlen(name) > SPX_GGUF_NAME_MAX)
        return wfail(w, SPX_E_ARG, "GGUF writer: tensor name '%s' is empty or longer than 63 bytes", name ? name : "");
    if (type != SPX_GGML_F32 && type != SPX_GGML_F16 && type != SPX_GGML_BF16)
        return wfail(w, SPX_E_ARG, "GGUF writer: tensor %s: only F32, F16 and BF16 are written", name);
    if (ndim == 0 || ndim > SPX_GGUF_MAX_DIMS)
        return wfail(w, SPX_E_ARG, "GGUF writer: tensor %s: ndim out of range", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *p = realloc(w->t, cap * sizeof *p);
        if (!p)
            return wfail(w, SPX_E_NOMEM, "%s: out of memory", w->path);
        w->t = p;
        w->cap_t = cap;
    }
    t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = type;
    t->n_dims = ndim;
    for (uint32_t d = 0; d < ndim; d++) {
        t->ne[d] = dims[ndim - 1 - d];   /* GGUF: innermost first */
        if (t->ne[d] == 0 || spx_ckd_mul_u64(numel, t->ne[d], &numel))
            return wfail(w, SPX_E_OVERFLOW, "GGUF writer: tensor %s: zero or overflowing dims", name);
    }
    if (spx_ckd_mul_u64(numel, per, &t->size) || spx_ckd_align_u64(t->size, SPX_GGUF_ALIGN_DEFAULT, &padded) ||
        spx_ckd_add_u64(w->data_size, padded, &padded))
        return wfail(w, SPX_E_OVERFLOW, "GGUF writer: tensor %s: size overflows", name);
    t->offset = w->data_size;
    w->data_size = padded;
    w->n_t++;
    return 0;
}

static int out(spx_gguf_writer *w, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, w->fp) != n)
        return wfail(w, SPX_E_IO, "%s: write failed", w->tmp);
    return 0;
}

static int pad(spx_gguf_writer *w, uint64_t pos)
{
    static const unsigned char zeros[SPX_GGUF_ALIGN_DEFAULT];
    uint64_t r = pos % SPX_GGUF_ALIGN_DEFAULT;
    return r ? out(w, zeros, (size_t)(SPX_GGUF_ALIGN_DEFAULT - r)) : 0;
}

int spx_gguf_writer_begin_data(spx_gguf_writer *w)
{
    int rc = 0;
    unsigned char h[24], rec[8 + SPX_GGUF_NAME_MAX + 4 + 8 * SPX_GGUF_MAX_DIMS + 4 + 8];
    uint64_t pos = 24;
    if (w->failed || w->began)
        return wfail(w, SPX_E_ARG, "%s: GGUF writer: begin_data called twice or after an error", w->path);
    w->began = 1;
    memcpy(h, "GGUF", 4);
    for (int b = 0; b < 4; b++)
        h[4 + b] = (unsigned char)(3u >> (8 * b));
    for (int b = 0; b < 8; b++) {
        h[8 + b] = (unsigned char)((uint64_t)w->n_t >> (8 * b));
        h[16 + b] = (unsigned char)(w->n_kv >> (8 * b));
    }
    SPX_TRY(rc, out(w, h, sizeof h));
    SPX_TRY(rc, out(w, w->kv, w->kv_len));
    pos += w->kv_len;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        size_t k = 0, nl = strlen(t->name);
        uint64_t fields[2 + SPX_GGUF_MAX_DIMS];
        for (int b = 0; b < 8; b++)
            rec[k++] = (unsigned char)((uint64_t)nl >> (8 * b));
        memcpy(rec + k, t->name, nl);
        k += nl;
        for (int b = 0; b < 4; b++)
            rec[k++] = (unsigned char)(t->n_dims >> (8 * b));
        for (uint32_t d = 0; d < t->n_dims; d++)
            fields[d] = t->ne[d];
        for (uint32_t d = 0; d < t->n_dims; d++)
            for (int b = 0; b < 8; b++)
                rec[k++] = (unsigned char)(fields[d] >> (8 * b));
        for (int b = 0; b < 4; b++)
            rec[k++] = (unsigned char)(t->type >> (8 * b));
        for (int b = 0; b < 8; b++)
            rec[k++] = (unsigned char)(t->offset >> (8 * b));
        SPX_TRY(rc, out(w, rec, k));
        pos += k;
    }
    SPX_TRY(rc, pad(w, pos));
done:
    return rc;
}

int spx_gguf_writer_data(spx_gguf_writer *w, const void *data, size_t size)
{
    int rc = 0;
    if (w->failed || !w->began || w->next >= w->n_t)
        return wfail(w, SPX_E_ARG, "%s: GGUF writer: tensor data out of order", w->path);
    if ((uint64_t)size != w->t[w->next].size)
        return wfail(w, SPX_E_ARG, "GGUF writer: tensor %s: wrong data size", w->t[w->next].name);
    SPX_TRY(rc, out(w, data, size));
    SPX_TRY(rc, pad(w, size));
    w->next++;
done:
    return rc;
}

int spx_gguf_writer_open(spx_ctx *ctx, const char *path, spx_gguf_writer **outp)
{
    int rc = 0;
    spx_gguf_writer *w = calloc(1, sizeof *w);
    *outp = NULL;
    if (!w || !(w->path = strdup(path)))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    SPX_TRY(rc, spx_stw_tmp_create(ctx, path, &w->tmp, &w->fp));
    *outp = w;
    w = NULL;
done:
    spx_gguf_writer_free(w);
    return rc;
}

int spx_gguf_writer_finish(spx_gguf_writer *w, uint64_t *file_bytes)
{
    int rc = 0;
    if (w->failed || !w->began || w->next != w->n_t)
        return wfail(w, SPX_E_ARG, "%s: GGUF writer: finish before every tensor was written", w->path);
    if (file_bytes) {
        long end = ftell(w->fp);
        *file_bytes = end < 0 ? 0 : (uint64_t)end;
    }
    SPX_TRY(rc, spx_stw_tmp_close(&w->ctx, w->tmp, &w->fp));
    if (rename(w->tmp, w->path) != 0)
        SPX_FAIL(&w->ctx, rc, SPX_E_IO, "cannot rename %s to %s: %s", w->tmp, w->path, strerror(errno));
    free(w->tmp);
    w->tmp = NULL;
done:
    if (rc < 0)
        w->failed = 1;
    return rc;
}

void spx_gguf_writer_free(spx_gguf_writer *w)
{
    if (!w)
        return;
    if (w->fp)
        fclose(w->fp);
    if (w->tmp)
        unlink(w->tmp);
    for (uint64_t i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    free(w->keys);
    free(w->tmp);
    free(w->path);
    free(w->kv);
    free(w->t);
    free(w);
}

spx_ctx *spx_gguf_writer_ctx(spx_gguf_writer *w) { return &w->ctx; }
