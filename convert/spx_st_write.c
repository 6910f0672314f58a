/* spx_st_write.c: streaming safetensors writer (see spx_st_write.h for the layout). */
#include "spx_st_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "spx_ckd.h"
#include "spx_st_write_int.h"

/* ---- writer state -------------------------------------------------------------------------- */

typedef struct st_item {
    char *name;
    const char *dtype;      /* static table string */
    uint32_t ndim;
    uint64_t shape[SPX_ST_MAX_DIMS];
    uint64_t nbytes;
    uint64_t begin;         /* offset inside its shard's data section */
    size_t user_index;      /* position in the caller's specs */
    uint32_t shard;
} st_item;

typedef struct st_shard {
    char *path;             /* final path */
    char *file;             /* base name (index weight_map value) */
    char *tmp;              /* temporary path once created, else NULL */
    FILE *fp;
    size_t first, count;    /* items [first, first+count) */
    uint64_t data_bytes;
    char *header;           /* JSON incl. padding */
    size_t header_len;
    int opened, closed;
} st_shard;

struct spx_st_writer {
    st_item *items;         /* [n] sorted by name */
    size_t n;
    st_shard *shards;       /* [n_shards] */
    uint32_t n_shards;
    char *index_path;       /* sharded sets only */
    size_t cur;             /* first incomplete item */
    uint64_t cur_done;      /* bytes written into items[cur] */
    int cur_shard;          /* shard whose file is open, -1 none */
    uint64_t total_data, total_file;
    int finished;
};

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const st_item *)a)->name, ((const st_item *)b)->name);
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const spx_st_kv *)a)->key, ((const spx_st_kv *)b)->key);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void spx_st_writer_free(spx_st_writer *w)
{
    if (!w)
        return;
    for (uint32_t s = 0; s < w->n_shards; s++) {
        st_shard *sh = &w->shards[s];
        if (sh->fp)
            fclose(sh->fp);
        if (sh->tmp) {
            if (!w->finished)
                unlink(sh->tmp);
            free(sh->tmp);
        }
        free(sh->path);
        free(sh->file);
        free(sh->header);
    }
    free(w->shards);
    for (size_t i = 0; i < w->n; i++)
        free(w->items[i].name);
    free(w->items);
    free(w->index_path);
    free(w);
}

/* Copy, validate and sort the declaration; compute per-item byte sizes. */
static int declare(spx_ctx *ctx, spx_st_writer *w, const char *label, const spx_st_spec *specs, size_t n)
{
    int rc = 0;
    if (n > 0 && !specs)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: NULL tensor list", label);
    w->items = calloc(n ? n : 1, sizeof *w->items);
    if (!w->items)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory for %zu tensors", label, n);
    for (size_t i = 0; i < n; i++) {
        const spx_st_spec *s = &specs[i];
        st_item *it = &w->items[i];
        if (!s->name || !s->name[0])
            SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: tensor %zu has an empty name", label, i);
        if (strcmp(s->name, "__metadata__") == 0)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: tensor %zu: the name __metadata__ is reserved", label, i);
        if (!spx_stw_utf8_valid(s->name))
            SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: tensor %zu: name is not valid UTF-8", label, i);
        it->dtype = spx_stw_dtype_canon(s->dtype);
        if (!it->dtype)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: tensor %s: unknown dtype '%s'", label, s->name,
                     s->dtype ? s->dtype : "(null)");
        if (s->ndim > SPX_ST_MAX_DIMS)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: tensor %s: ndim %u > %d", label, s->name, s->ndim, SPX_ST_MAX_DIMS);
        it->name = dup_str(s->name);
        if (!it->name)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", label);
        w->n = i + 1;   /* items[0..n) own their names from here on */
        it->ndim = s->ndim;
        uint64_t bytes = spx_st_dtype_bytes(it->dtype);
        for (uint32_t d = 0; d < s->ndim; d++) {
            it->shape[d] = s->shape[d];
            if (spx_ckd_mul_u64(bytes, s->shape[d], &bytes))
                SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "%s: tensor %s: byte size overflows (dim %u = %llu)", label,
                         s->name, d, (unsigned long long)s->shape[d]);
        }
        if (bytes > (uint64_t)SIZE_MAX)
            SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "%s: tensor %s: %llu bytes do not fit in memory sizes", label,
                     s->name, (unsigned long long)bytes);
        it->nbytes = bytes;
        it->user_index = i;
        if (spx_ckd_add_u64(w->total_data, bytes, &w->total_data))
            SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "%s: total tensor size overflows", label);
    }
    w->n = n;
    if (n > 1)
        qsort(w->items, n, sizeof *w->items, cmp_item);
    for (size_t i = 1; i < n; i++)
        if (strcmp(w->items[i - 1].name, w->items[i].name) == 0)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: tensor %s is declared twice", label, w->items[i].name);
done:
    return rc;
}

/* Sorted copy of the metadata (pointers into the caller's strings) after validation. */
static int sort_meta(spx_ctx *ctx, const char *label, const spx_st_kv *meta, size_t n_meta, spx_st_kv **out)
{
    int rc = 0;
    spx_st_kv *m = NULL;
    if (n_meta == 0)
        goto done;
    if (!meta)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: NULL metadata list", label);
    m = malloc(n_meta * sizeof *m);
    if (!m)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", label);
    for (size_t i = 0; i < n_meta; i++) {
        if (!meta[i].key || !meta[i].value || !spx_stw_utf8_valid(meta[i].key) || !spx_stw_utf8_valid(meta[i].value))
            SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: metadata entry %zu: key and value must be UTF-8 strings", label, i);
        m[i] = meta[i];
    }
    qsort(m, n_meta, sizeof *m, cmp_kv);
    for (size_t i = 1; i < n_meta; i++)
        if (strcmp(m[i - 1].key, m[i].key) == 0)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: metadata key '%s' given twice", label, m[i].key);
done:
    if (rc < 0) {
        free(m);
        m = NULL;
    }
    *out = m;
    return rc;
}

/* Header JSON of one shard, padded with spaces to a multiple of 8. */
static int build_header(spx_ctx *ctx, spx_st_writer *w, st_shard *sh, const spx_st_kv *meta, size_t n_meta)
{
    int rc = 0;
    spx_stw_buf b = {0};
    spx_stw_put(&b, "{", 1);
    int first = 1;
    if (n_meta > 0) {
        spx_stw_str(&b, "\"__metadata__\":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (i)
                spx_stw_put(&b, ",", 1);
            spx_stw_json_str(&b, meta[i].key);
            spx_stw_put(&b, ":", 1);
            spx_stw_json_str(&b, meta[i].value);
        }
        spx_stw_put(&b, "}", 1);
        first = 0;
    }
    for (size_t i = sh->first; i < sh->first + sh->count; i++) {
        const st_item *it = &w->items[i];
        if (!first)
            spx_stw_put(&b, ",", 1);
        first = 0;
        spx_stw_json_str(&b, it->name);
        spx_stw_str(&b, ":{\"dtype\":\"");
        spx_stw_str(&b, it->dtype);
        spx_stw_str(&b, "\",\"shape\":[");
        for (uint32_t d = 0; d < it->ndim; d++) {
            if (d)
                spx_stw_put(&b, ",", 1);
            spx_stw_u64(&b, it->shape[d]);
        }
        spx_stw_str(&b, "],\"data_offsets\":[");
        spx_stw_u64(&b, it->begin);
        spx_stw_put(&b, ",", 1);
        spx_stw_u64(&b, it->begin + it->nbytes);   /* <= total_data: cannot overflow */
        spx_stw_str(&b, "]}");
    }
    spx_stw_put(&b, "}", 1);
    while (!b.oom && b.len % 8 != 0)
        spx_stw_put(&b, " ", 1);
    if (b.oom)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory building the header", sh->path);
    if (b.len > SPX_ST_MAX_HEADER)
        SPX_FAIL(ctx, rc, SPX_E_LIMIT, "%s: header of %zu bytes exceeds the %u-byte limit of safetensors readers",
                 sh->path, b.len, SPX_ST_MAX_HEADER);
    sh->header = b.p;
    sh->header_len = b.len;
    b.p = NULL;
    uint64_t fb = 8 + (uint64_t)sh->header_len;
    if (spx_ckd_add_u64(fb, sh->data_bytes, &fb) || spx_ckd_add_u64(w->total_file, fb, &w->total_file))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "%s: file size overflows", sh->path);
done:
    free(b.p);
    return rc;
}

static int shard_open(spx_ctx *ctx, st_shard *sh)
{
    int rc = 0;
    unsigned char len8[8];
    SPX_TRY(rc, spx_stw_tmp_create(ctx, sh->path, &sh->tmp, &sh->fp));
    sh->opened = 1;
    for (int k = 0; k < 8; k++)
        len8[k] = (unsigned char)((uint64_t)sh->header_len >> (8 * k));
    if (fwrite(len8, 1, 8, sh->fp) != 8 || fwrite(sh->header, 1, sh->header_len, sh->fp) != sh->header_len)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: write failed: %s", sh->tmp, strerror(errno));
done:
    return rc;
}

static int shard_close(spx_ctx *ctx, st_shard *sh)
{
    if (sh->closed)
        return 0;
    sh->closed = 1;
    return spx_stw_tmp_close(ctx, sh->tmp, &sh->fp);
}

/* Skip completed items and make sure the current item's shard is the open one. */
static int settle(spx_ctx *ctx, spx_st_writer *w)
{
    int rc = 0;
    while (w->cur < w->n && w->cur_done == w->items[w->cur].nbytes) {
        w->cur++;
        w->cur_done = 0;
    }
    if (w->cur < w->n && (int)w->items[w->cur].shard != w->cur_shard) {
        if (w->cur_shard >= 0)
            SPX_TRY(rc, shard_close(ctx, &w->shards[w->cur_shard]));
        /* shards in between (only possible if empty) are opened at finish */
        w->cur_shard = (int)w->items[w->cur].shard;
        SPX_TRY(rc, shard_open(ctx, &w->shards[w->cur_shard]));
    }
done:
    return rc;
}

/* Partition items into shards (max_bytes 0: everything in one shard). */
static int plan_shards(spx_ctx *ctx, spx_st_writer *w, const char *label, uint64_t max_bytes)
{
    int rc = 0;
    uint32_t count = 1;
    uint64_t fill = 0;
    for (size_t i = 0; i < w->n; i++) {
        uint64_t b = w->items[i].nbytes;
        if (max_bytes && fill > 0 && (b > max_bytes || fill + b > max_bytes)) {
            count++;
            fill = 0;
        }
        fill += b;
    }
    if (count > 99999)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: %u shards exceed the 5-digit shard naming", label, count);
    w->shards = calloc(count, sizeof *w->shards);
    if (!w->shards)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", label);
    w->n_shards = count;
    uint32_t s = 0;
    for (size_t i = 0; i < w->n; i++) {
        st_item *it = &w->items[i];
        st_shard *sh = &w->shards[s];
        if (max_bytes && sh->data_bytes > 0 && (it->nbytes > max_bytes || sh->data_bytes + it->nbytes > max_bytes)) {
            sh = &w->shards[++s];
            sh->first = i;
        }
        if (sh->count == 0)
            sh->first = i;
        it->shard = s;
        it->begin = sh->data_bytes;
        sh->data_bytes += it->nbytes;
        sh->count++;
    }
done:
    return rc;
}

static int open_common(spx_ctx *ctx, spx_st_writer *w, const char *label, const spx_st_kv *meta, size_t n_meta)
{
    int rc = 0;
    spx_st_kv *sorted = NULL;
    SPX_TRY(rc, sort_meta(ctx, label, meta, n_meta, &sorted));
    for (uint32_t s = 0; s < w->n_shards; s++)
        SPX_TRY(rc, build_header(ctx, w, &w->shards[s], sorted, n_meta));
    w->cur_shard = -1;
    /* open the first shard now so an unwritable destination fails early */
    if (w->n_shards > 0) {
        w->cur_shard = 0;
        SPX_TRY(rc, shard_open(ctx, &w->shards[0]));
    }
    SPX_TRY(rc, settle(ctx, w));
done:
    free(sorted);
    return rc;
}

int spx_st_writer_open(spx_ctx *ctx, const char *path, const spx_st_spec *specs, size_t n,
                       const spx_st_kv *meta, size_t n_meta, spx_st_writer **out)
{
    int rc = 0;
    spx_st_writer *w = NULL;
    *out = NULL;
    if (!path || !path[0])
        SPX_FAIL(ctx, rc, SPX_E_ARG, "safetensors writer: empty output path");
    w = calloc(1, sizeof *w);
    if (!w)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", path);
    SPX_TRY(rc, declare(ctx, w, path, specs, n));
    SPX_TRY(rc, plan_shards(ctx, w, path, 0));
    w->shards[0].path = dup_str(path);
    const char *slash = strrchr(path, '/');
    w->shards[0].file = dup_str(slash ? slash + 1 : path);
    if (!w->shards[0].path || !w->shards[0].file)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", path);
    SPX_TRY(rc, open_common(ctx, w, path, meta, n_meta));
    *out = w;
    w = NULL;
done:
    spx_st_writer_free(w);
    return rc;
}

static char *join_path(const char *dir, const char *file)
{
    size_t a = strlen(dir), b = strlen(file);
    char *p = malloc(a + b + 2);
    if (!p)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, file, b + 1);
    return p;
}

int spx_st_writer_open_sharded(spx_ctx *ctx, const char *dir, const char *prefix,
                               uint64_t max_shard_bytes, const spx_st_spec *specs, size_t n,
                               const spx_st_kv *meta, size_t n_meta, spx_st_writer **out)
{
    int rc = 0;
    spx_st_writer *w = NULL;
    char name[512];
    *out = NULL;
    if (!dir || !dir[0] || !prefix || !prefix[0] || strchr(prefix, '/') || strlen(prefix) > 400)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "sharded safetensors writer: bad directory or prefix");
    if (max_shard_bytes == 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: maximum shard size must be > 0", dir);
    w = calloc(1, sizeof *w);
    if (!w)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", dir);
    SPX_TRY(rc, declare(ctx, w, dir, specs, n));
    SPX_TRY(rc, plan_shards(ctx, w, dir, max_shard_bytes));
    for (uint32_t s = 0; s < w->n_shards; s++) {
        snprintf(name, sizeof name, "%s-%05u-of-%05u.safetensors", prefix, s + 1, w->n_shards);
        w->shards[s].file = dup_str(name);
        w->shards[s].path = join_path(dir, name);
        if (!w->shards[s].file || !w->shards[s].path)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", dir);
    }
    snprintf(name, sizeof name, "%s.safetensors.index.json", prefix);
    w->index_path = join_path(dir, name);
    if (!w->index_path)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", dir);
    SPX_TRY(rc, open_common(ctx, w, dir, meta, n_meta));
    *out = w;
    w = NULL;
done:
    spx_st_writer_free(w);
    return rc;
}

const char *spx_st_writer_next(const spx_st_writer *w, size_t *index, uint64_t *remaining)
{
    if (!w || w->cur >= w->n)
        return NULL;
    if (index)
        *index = w->items[w->cur].user_index;
    if (remaining)
        *remaining = w->items[w->cur].nbytes - w->cur_done;
    return w->items[w->cur].name;
}

int spx_st_writer_write(spx_ctx *ctx, spx_st_writer *w, const void *data, size_t len)
{
    int rc = 0;
    if (w->finished)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "safetensors writer: write after finish");
    if (len == 0)
        goto done;
    if (w->cur >= w->n)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: %zu bytes written after the last declared tensor",
                 w->shards[w->n_shards - 1].path, len);
    st_item *it = &w->items[w->cur];
    st_shard *sh = &w->shards[it->shard];
    if ((uint64_t)len > it->nbytes - w->cur_done)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: tensor %s: %zu bytes written but only %llu of its %llu bytes remain",
                 sh->path, it->name, len, (unsigned long long)(it->nbytes - w->cur_done),
                 (unsigned long long)it->nbytes);
    if (!data)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: tensor %s: NULL data", sh->path, it->name);
    if (fwrite(data, 1, len, sh->fp) != len)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: write failed at tensor %s: %s", sh->tmp, it->name, strerror(errno));
    w->cur_done += len;
    SPX_TRY(rc, settle(ctx, w));
done:
    return rc;
}

int spx_st_writer_add(spx_ctx *ctx, spx_st_writer *w, const char *name, const void *data, size_t len)
{
    int rc = 0;
    if (w->finished)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "safetensors writer: add after finish");
    if (!name)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "safetensors writer: NULL tensor name");
    if (w->cur < w->n && strcmp(w->items[w->cur].name, name) == 0) {
        const st_item *it = &w->items[w->cur];
        if (w->cur_done != 0 || (uint64_t)len != it->nbytes)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: tensor %s: add of %zu bytes, want %llu (already written %llu)",
                     w->shards[it->shard].path, name, len, (unsigned long long)it->nbytes,
                     (unsigned long long)w->cur_done);
        SPX_TRY(rc, spx_st_writer_write(ctx, w, data, len));
        goto done;
    }
    /* zero-byte tensors are complete from the start: accept them by name */
    if (len == 0) {
        st_item key = {0};
        key.name = (char *)(uintptr_t)name;
        const st_item *it = w->n ? bsearch(&key, w->items, w->n, sizeof *w->items, cmp_item) : NULL;
        if (it && it->nbytes == 0)
            goto done;
    }
    SPX_FAIL(ctx, rc, SPX_E_ARG, "safetensors writer: tensor %s given, but the next expected tensor is %s",
             name, w->cur < w->n ? w->items[w->cur].name : "(none: all tensors written)");
done:
    return rc;
}

static int write_index(spx_ctx *ctx, spx_st_writer *w)
{
    int rc = 0;
    spx_stw_buf b = {0};
    spx_stw_str(&b, "{\n  \"metadata\": {\n    \"total_size\": ");
    spx_stw_u64(&b, w->total_data);
    spx_stw_str(&b, "\n  },\n  \"weight_map\": {");
    for (size_t i = 0; i < w->n; i++) {
        spx_stw_str(&b, i ? ",\n    " : "\n    ");
        spx_stw_json_str(&b, w->items[i].name);
        spx_stw_str(&b, ": ");
        spx_stw_json_str(&b, w->shards[w->items[i].shard].file);
    }
    spx_stw_str(&b, "\n  }\n}\n");
    if (b.oom)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", w->index_path);
    SPX_TRY(rc, spx_st_write_blob(ctx, w->index_path, b.p, b.len));
done:
    free(b.p);
    return rc;
}

int spx_st_writer_finish(spx_ctx *ctx, spx_st_writer *w)
{
    int rc = 0;
    if (w->finished)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "safetensors writer: finish called twice");
    SPX_TRY(rc, settle(ctx, w));
    if (w->cur < w->n)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: tensor %s is incomplete: %llu of %llu bytes written",
                 w->shards[w->items[w->cur].shard].path, w->items[w->cur].name,
                 (unsigned long long)w->cur_done, (unsigned long long)w->items[w->cur].nbytes);
    for (uint32_t s = 0; s < w->n_shards; s++) {
        if (!w->shards[s].opened)
            SPX_TRY(rc, shard_open(ctx, &w->shards[s]));
        SPX_TRY(rc, shard_close(ctx, &w->shards[s]));
    }
    for (uint32_t s = 0; s < w->n_shards; s++) {
        st_shard *sh = &w->shards[s];
        if (rename(sh->tmp, sh->path) != 0)
            SPX_FAIL(ctx, rc, SPX_E_IO, "cannot rename %s to %s: %s", sh->tmp, sh->path, strerror(errno));
        free(sh->tmp);
        sh->tmp = NULL;
    }
    if (w->index_path)
        SPX_TRY(rc, write_index(ctx, w));
    w->finished = 1;
done:
    return rc;
}

uint32_t spx_st_writer_shard_count(const spx_st_writer *w)
{
    return w->n_shards;
}

uint64_t spx_st_writer_data_bytes(const spx_st_writer *w)
{
    return w->total_data;
}

uint64_t spx_st_writer_file_bytes(const spx_st_writer *w)
{
    return w->total_file;
}

/* Run `fill` for every tensor in write order, then finish. After fill(i) every item up to i must
 * be complete and nothing of a later item written (items between may be zero-byte ones). */
static int drive(spx_ctx *ctx, spx_st_writer *w, const spx_st_spec *specs, spx_st_fill_fn fill, void *ud)
{
    int rc = 0;
    for (size_t i = 0; i < w->n; i++) {
        const st_item *it = &w->items[i];
        SPX_TRY(rc, fill(ctx, ud, it->user_index, &specs[it->user_index], w));
        if (w->cur <= i)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: fill callback left tensor %s incomplete (%llu of %llu bytes)",
                     w->shards[it->shard].path, it->name, (unsigned long long)w->cur_done,
                     (unsigned long long)it->nbytes);
        for (size_t j = i + 1; j < w->cur && j < w->n; j++)
            if (w->items[j].nbytes != 0)
                SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: fill callback for tensor %s also wrote tensor %s",
                         w->shards[it->shard].path, it->name, w->items[j].name);
        if (w->cur < w->n && w->cur_done != 0)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: fill callback for tensor %s also wrote into tensor %s",
                     w->shards[it->shard].path, it->name, w->items[w->cur].name);
    }
    SPX_TRY(rc, spx_st_writer_finish(ctx, w));
done:
    return rc;
}

int spx_st_write_file(spx_ctx *ctx, const char *path, const spx_st_spec *specs, size_t n,
                      const spx_st_kv *meta, size_t n_meta, spx_st_fill_fn fill, void *ud,
                      uint64_t *file_bytes)
{
    int rc = 0;
    spx_st_writer *w = NULL;
    SPX_TRY(rc, spx_st_writer_open(ctx, path, specs, n, meta, n_meta, &w));
    SPX_TRY(rc, drive(ctx, w, specs, fill, ud));
    if (file_bytes)
        *file_bytes = w->total_file;
done:
    spx_st_writer_free(w);
    return rc;
}

int spx_st_write_sharded(spx_ctx *ctx, const char *dir, const char *prefix, uint64_t max_shard_bytes,
                         const spx_st_spec *specs, size_t n, const spx_st_kv *meta, size_t n_meta,
                         spx_st_fill_fn fill, void *ud, uint32_t *n_shards, uint64_t *file_bytes)
{
    int rc = 0;
    spx_st_writer *w = NULL;
    SPX_TRY(rc, spx_st_writer_open_sharded(ctx, dir, prefix, max_shard_bytes, specs, n, meta, n_meta, &w));
    SPX_TRY(rc, drive(ctx, w, specs, fill, ud));
    if (n_shards)
        *n_shards = w->n_shards;
    if (file_bytes)
        *file_bytes = w->total_file;
done:
    spx_st_writer_free(w);
    return rc;
}
