/* spx_writer.c: streaming .spx writer (spec sections 2-8).
 *
 * The file is written to `<path>.tmp.<pid>.<counter>`: a zero header placeholder at 0, each tensor
 * blob as soon as it is added (at the next multiple of the alignment, zero padding), then at finish
 * the metadata (keys sorted), the table and finally the header with every CRC; fsync, rename.
 * Only the 192-byte records and the metadata are kept in memory. Any failure poisons the writer:
 * later calls return the first error and spx_writer_free removes the temporary file. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spx_ckd.h"
#include "spx_format_int.h"
#include "spx_half.h"

typedef struct wmeta {
    char *key;
    unsigned char *val;   /* type byte + value bytes, as stored */
    size_t len;
} wmeta;

struct spx_writer {
    spx_ctx ctx;
    char *path, *tmp;
    FILE *fp;
    uint64_t pos;               /* bytes written so far */
    uint32_t align;
    char name[SPX_WRITER_FIELD + 1];
    unsigned char *recs;        /* nrec records of 192 bytes */
    size_t nrec, caprec;
    uint32_t *hash;             /* open addressing on names: record index + 1, 0 = empty */
    size_t hcap;
    wmeta *meta;
    size_t nmeta, capmeta;
    uint64_t meta_bytes;        /* serialised size of the metadata section so far */
    int failed;                 /* first error code, 0 while healthy */
    int finished;
    int created;                /* the temporary file is ours to remove */
};

static atomic_uint tmp_counter;
static const unsigned char zeros[4096];

static int poison(spx_writer *w, int rc)
{
    if (rc < 0 && !w->failed)
        w->failed = rc;
    return rc;
}

static int wfail(spx_writer *w, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int wfail(spx_writer *w, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    spx_err_setv(&w->ctx, code, fmt, ap);
    va_end(ap);
    spx_err_prefix(&w->ctx, "%s: ", w->path);
    return poison(w, code);
}

static int healthy(spx_writer *w)
{
    if (w->finished)
        return wfail(w, SPX_E_ARG, "writer already finished");
    if (w->failed) {
        w->ctx.code = w->failed; /* keep the first message */
        return w->failed;
    }
    return 0;
}

static int put(spx_writer *w, const void *p, uint64_t n, uint32_t *crc)
{
    if (n && fwrite(p, 1, (size_t)n, w->fp) != (size_t)n)
        return wfail(w, SPX_E_IO, "write to %s failed at byte %llu: %s", w->tmp,
                     (unsigned long long)w->pos, strerror(errno));
    if (crc)
        *crc = spx_crc32_update(*crc, p, n);
    w->pos += n;
    return 0;
}

static int pad_to(spx_writer *w, uint64_t align)
{
    uint64_t target;
    if (spx_ckd_align_u64(w->pos, align, &target))
        return wfail(w, SPX_E_OVERFLOW, "file offset overflows");
    while (w->pos < target) {
        uint64_t n = target - w->pos < sizeof zeros ? target - w->pos : sizeof zeros;
        int rc = put(w, zeros, n, NULL);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int spx_writer_open(spx_ctx *ctx, const char *path, const char *writer_name, spx_writer **out)
{
    spx_writer *w = NULL;
    int rc = 0, fd = -1;
    *out = NULL;
    if (!path || !*path)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "spx_writer_open: empty output path");
    if (!(w = calloc(1, sizeof *w)) || !(w->path = strdup(path)))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", path);
    size_t tl = strlen(path) + 64;
    if (!(w->tmp = malloc(tl)))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", path);
    snprintf(w->tmp, tl, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&tmp_counter, 1u));
    /* the writer field is printable ASCII, NUL-padded (spec section 4) */
    for (size_t i = 0, j = 0; writer_name && writer_name[i] && j < SPX_WRITER_FIELD; i++) {
        unsigned char c = (unsigned char)writer_name[i];
        w->name[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    w->align = SPX_ALIGN_DEFAULT;
    fd = open(w->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "cannot create %s: %s", w->tmp, strerror(errno));
    w->created = 1;
    if (!(w->fp = fdopen(fd, "wb")))
        SPX_FAIL(ctx, rc, SPX_E_IO, "cannot open a stream on %s: %s", w->tmp, strerror(errno));
    fd = -1;
    setvbuf(w->fp, NULL, _IOFBF, 1u << 20);
    SPX_TRY(rc, put(w, zeros, SPX_HEADER_SIZE, NULL));
    *out = w;
    w = NULL;
done:
    if (rc < 0 && w && w->failed && ctx)
        *ctx = w->ctx;
    if (fd >= 0)
        close(fd);
    spx_writer_free(w);
    return rc;
}

spx_ctx *spx_writer_ctx(spx_writer *w)
{
    return &w->ctx;
}

/* ---- metadata ------------------------------------------------------------------------------ */

static int meta_add(spx_writer *w, const char *key, int type, const unsigned char *val, size_t len)
{
    int rc = healthy(w);
    const char *why;
    size_t kl = key ? strlen(key) : 0;
    uint64_t entry = 2 + (uint64_t)kl + 1 + len, total;
    if (rc < 0)
        return rc;
    if ((why = spx_key_problem(key ? key : "", kl)))
        return wfail(w, SPX_E_ARG, "metadata key '%s': %s", key ? key : "", why);
    for (size_t i = 0; i < w->nmeta; i++) /* a few hundred keys at most */
        if (strcmp(w->meta[i].key, key) == 0)
            return wfail(w, SPX_E_DUP_KEY, "metadata key '%s' set twice", key);
    if (spx_ckd_add_u64(w->meta_bytes ? w->meta_bytes : 4, entry, &total) || total > SPX_META_MAX_BYTES)
        return wfail(w, SPX_E_LIMIT, "metadata key '%s': the metadata section would exceed %u bytes",
                     key, SPX_META_MAX_BYTES);
    if (w->nmeta == w->capmeta) {
        size_t nc = w->capmeta ? 2 * w->capmeta : 32;
        wmeta *nm = realloc(w->meta, nc * sizeof *nm);
        if (!nm)
            return wfail(w, SPX_E_NOMEM, "out of memory");
        w->meta = nm;
        w->capmeta = nc;
    }
    wmeta *m = &w->meta[w->nmeta];
    m->key = strdup(key);
    m->val = malloc(len + 1);
    if (!m->key || !m->val) {
        free(m->key);
        free(m->val);
        return wfail(w, SPX_E_NOMEM, "out of memory");
    }
    m->val[0] = (unsigned char)type;
    memcpy(m->val + 1, val, len);
    m->len = len + 1;
    w->nmeta++;
    w->meta_bytes = total;
    return 0;
}

static int meta_fixed(spx_writer *w, const char *key, int type, uint64_t bits)
{
    unsigned char b[8];
    size_t n = spx_meta_scalar_size(type);
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)((bits >> (8 * i)) & 0xff);
    return meta_add(w, key, type, b, n);
}

int spx_writer_meta_u32(spx_writer *w, const char *key, uint32_t v) { return meta_fixed(w, key, SPX_META_U32, v); }
int spx_writer_meta_i32(spx_writer *w, const char *key, int32_t v) { return meta_fixed(w, key, SPX_META_I32, (uint32_t)v); }
int spx_writer_meta_u64(spx_writer *w, const char *key, uint64_t v) { return meta_fixed(w, key, SPX_META_U64, v); }
int spx_writer_meta_i64(spx_writer *w, const char *key, int64_t v) { return meta_fixed(w, key, SPX_META_I64, (uint64_t)v); }
int spx_writer_meta_bool(spx_writer *w, const char *key, int v) { return meta_fixed(w, key, SPX_META_BOOL, v != 0); }

int spx_writer_meta_f32(spx_writer *w, const char *key, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return meta_fixed(w, key, SPX_META_F32, u);
}

int spx_writer_meta_f64(spx_writer *w, const char *key, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return meta_fixed(w, key, SPX_META_F64, u);
}

static int str_ok(spx_writer *w, const char *key, const char *s, size_t len, uint64_t idx)
{
    if (len > UINT32_MAX)
        return wfail(w, SPX_E_ARG, "metadata key '%s': string %llu is longer than 4 GiB", key, (unsigned long long)idx);
    if (len && (!s || memchr(s, 0, len) || !spx_utf8_valid((const unsigned char *)s, len)))
        return wfail(w, SPX_E_ARG, "metadata key '%s': string %llu contains a NUL byte or invalid UTF-8",
                     key ? key : "", (unsigned long long)idx);
    return 0;
}

int spx_writer_meta_str(spx_writer *w, const char *key, const char *v, size_t len)
{
    int rc;
    unsigned char *b;
    if ((rc = healthy(w)) < 0 || (rc = str_ok(w, key, v, len, 0)) < 0)
        return rc;
    if (!(b = malloc(4 + len)))
        return wfail(w, SPX_E_NOMEM, "out of memory");
    spx_wr32(b, (uint32_t)len);
    if (len)
        memcpy(b + 4, v, len);
    rc = meta_add(w, key, SPX_META_STR, b, 4 + len);
    free(b);
    return rc;
}

int spx_writer_meta_arr(spx_writer *w, const char *key, int elem_type, const void *data, uint64_t count)
{
    int rc;
    size_t es = spx_meta_scalar_size(elem_type), n;
    unsigned char *b;
    const unsigned char *src = data;
    if ((rc = healthy(w)) < 0)
        return rc;
    if (!es)
        return wfail(w, SPX_E_ARG, "metadata key '%s': array element type %d is not a scalar type",
                     key ? key : "", elem_type);
    if (count > SPX_META_MAX_BYTES / es || (count && !data))
        return wfail(w, SPX_E_LIMIT, "metadata key '%s': array of %llu elements is too large",
                     key ? key : "", (unsigned long long)count);
    n = 9 + (size_t)count * es;
    if (!(b = malloc(n)))
        return wfail(w, SPX_E_NOMEM, "out of memory");
    b[0] = (unsigned char)elem_type;
    spx_wr64(b + 1, count);
    for (size_t i = 0; i < (size_t)count; i++) {
        unsigned char *d = b + 9 + i * es;
        if (es == 1) {
            *d = src[i] != 0; /* BOOL */
        } else if (es == 4) {
            uint32_t u;
            memcpy(&u, src + 4 * i, 4);
            spx_wr32(d, u);
        } else {
            uint64_t u;
            memcpy(&u, src + 8 * i, 8);
            spx_wr64(d, u);
        }
    }
    rc = meta_add(w, key, SPX_META_ARR, b, n);
    free(b);
    return rc;
}

int spx_writer_meta_arr_str(spx_writer *w, const char *key, const char *const *strs,
                            const size_t *lens, uint64_t count)
{
    int rc;
    uint64_t n = 9;
    unsigned char *b, *d;
    if ((rc = healthy(w)) < 0)
        return rc;
    if (count && !strs)
        return wfail(w, SPX_E_ARG, "metadata key '%s': NULL string array", key ? key : "");
    for (uint64_t i = 0; i < count; i++) {
        size_t l = lens ? lens[i] : (strs[i] ? strlen(strs[i]) : 0);
        if ((rc = str_ok(w, key, strs[i], l, i)) < 0)
            return rc;
        n += 4 + (uint64_t)l;
        if (n > SPX_META_MAX_BYTES)
            return wfail(w, SPX_E_LIMIT, "metadata key '%s': string array exceeds %u bytes",
                         key ? key : "", SPX_META_MAX_BYTES);
    }
    if (!(b = malloc((size_t)n)))
        return wfail(w, SPX_E_NOMEM, "out of memory");
    b[0] = SPX_META_STR;
    spx_wr64(b + 1, count);
    d = b + 9;
    for (uint64_t i = 0; i < count; i++) {
        size_t l = lens ? lens[i] : (strs[i] ? strlen(strs[i]) : 0);
        spx_wr32(d, (uint32_t)l);
        if (l)
            memcpy(d + 4, strs[i], l);
        d += 4 + l;
    }
    rc = meta_add(w, key, SPX_META_ARR, b, (size_t)n);
    free(b);
    return rc;
}

/* ---- tensors ------------------------------------------------------------------------------- */

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* Insert record `idx` into the name hash; returns the clashing index + 1, or 0. */
static int hash_insert(spx_writer *w, size_t idx, size_t *clash)
{
    if ((w->nrec + 1) * 2 > w->hcap) {
        size_t nc = w->hcap ? 2 * w->hcap : 1024;
        uint32_t *nh = calloc(nc, sizeof *nh);
        if (!nh)
            return wfail(w, SPX_E_NOMEM, "out of memory");
        for (size_t i = 0; i < w->hcap; i++)
            if (w->hash[i]) {
                size_t j = (size_t)name_hash((char *)w->recs + (size_t)(w->hash[i] - 1) * SPX_RECORD_SIZE) & (nc - 1);
                while (nh[j])
                    j = (j + 1) & (nc - 1);
                nh[j] = w->hash[i];
            }
        free(w->hash);
        w->hash = nh;
        w->hcap = nc;
    }
    const char *name = (char *)w->recs + idx * SPX_RECORD_SIZE;
    size_t j = (size_t)name_hash(name) & (w->hcap - 1);
    for (; w->hash[j]; j = (j + 1) & (w->hcap - 1))
        if (strcmp((char *)w->recs + (size_t)(w->hash[j] - 1) * SPX_RECORD_SIZE, name) == 0) {
            *clash = w->hash[j] - 1;
            return 1;
        }
    w->hash[j] = (uint32_t)(idx + 1);
    return 0;
}

/* Validate `desc`, reserve its record and position the file at its aligned data offset. */
static int tensor_begin(spx_writer *w, const spx_tensor *desc, uint64_t size, spx_tensor *t)
{
    int rc = healthy(w);
    uint64_t lsize, off[3];
    size_t nl, clash = 0;
    const char *why;
    if (rc < 0)
        return rc;
    nl = strnlen(desc->name, SPX_NAME_MAX);
    if ((why = spx_name_problem(desc->name, nl)))
        return wfail(w, SPX_E_NAME, "tensor '%.*s': %s", (int)nl, desc->name, why);
    if (w->nrec >= SPX_MAX_TENSORS)
        return wfail(w, SPX_E_LIMIT, "more than %u tensors", SPX_MAX_TENSORS);
    *t = *desc;
    memset(t->name + nl, 0, SPX_NAME_MAX - nl);
    if ((rc = spx_encoding_layout(&w->ctx, t, &lsize, off)) < 0) {
        spx_err_prefix(&w->ctx, "%s: tensor '%s': ", w->path, t->name);
        return poison(w, rc);
    }
    if (lsize != size)
        return wfail(w, SPX_E_SIZE, "tensor '%s': %llu data bytes given, the %s layout needs %llu",
                     t->name, (unsigned long long)size, spx_encoding_name(t->encoding), (unsigned long long)lsize);
    if (w->nrec == w->caprec) {
        size_t nc = w->caprec ? 2 * w->caprec : 256;
        unsigned char *nr = realloc(w->recs, nc * SPX_RECORD_SIZE);
        if (!nr)
            return wfail(w, SPX_E_NOMEM, "out of memory");
        w->recs = nr;
        w->caprec = nc;
    }
    memcpy(w->recs + w->nrec * SPX_RECORD_SIZE, t->name, SPX_NAME_MAX);
    if ((rc = hash_insert(w, w->nrec, &clash)) != 0)
        return rc < 0 ? rc : wfail(w, SPX_E_DUP_NAME, "tensor '%s' added twice (first as tensor %zu)", t->name, clash);
    if ((rc = pad_to(w, w->align)) < 0)
        return rc;
    t->data_offset = w->pos;
    t->data_size = size;
    t->data_crc32 = 0;
    return 0;
}

static void tensor_end(spx_writer *w, const spx_tensor *t)
{
    spx_record_pack(t, w->recs + w->nrec * SPX_RECORD_SIZE);
    w->nrec++;
}

int spx_writer_add(spx_writer *w, const spx_tensor *desc, const void *data, size_t size)
{
    spx_tensor t;
    int rc;
    if ((rc = tensor_begin(w, desc, size, &t)) < 0)
        return rc;
    if (!data)
        return wfail(w, SPX_E_ARG, "tensor '%s': NULL data", t.name);
    if ((rc = spx_encoding_validate(&w->ctx, &t, data)) < 0) {
        spx_err_prefix(&w->ctx, "%s: tensor '%s': ", w->path, t.name);
        return poison(w, rc);
    }
    if ((rc = put(w, data, size, &t.data_crc32)) < 0)
        return rc;
    tensor_end(w, &t);
    return 0;
}

int spx_writer_add_f32(spx_writer *w, const char *name, int role, uint32_t layer, uint32_t expert,
                       int dtype, const float *data, int ndim, const uint64_t *dims)
{
    spx_tensor d, t;
    uint64_t numel = 1;
    unsigned char buf[8192];
    int rc = healthy(w);
    if (rc < 0)
        return rc;
    memset(&d, 0, sizeof d);
    if (!name || !data || !dims || ndim < 1 || ndim > SPX_MAX_DIMS || role < 0 || role > 0xffff)
        return wfail(w, SPX_E_ARG, "spx_writer_add_f32 '%s': bad argument", name ? name : "");
    if (dtype != SPX_DTYPE_F32 && dtype != SPX_DTYPE_F16 && dtype != SPX_DTYPE_BF16)
        return wfail(w, SPX_E_ARG, "tensor '%s': cannot store fp32 data as %s", name, spx_dtype_name(dtype));
    snprintf(d.name, sizeof d.name, "%s", name);
    if (strlen(name) >= SPX_NAME_MAX)
        return wfail(w, SPX_E_NAME, "tensor '%s': name is longer than 95 bytes", name);
    d.dtype = (uint8_t)dtype;
    d.encoding = SPX_ENC_DENSE;
    d.ndim = (uint8_t)ndim;
    d.role = (uint16_t)role;
    d.layer = layer;
    d.expert = expert;
    for (int k = 0; k < ndim; k++) {
        d.dims[k] = dims[k];
        if (spx_ckd_mul_u64(numel, dims[k], &numel))
            return wfail(w, SPX_E_DIMS, "tensor '%s': dims overflow", name);
    }
    d.nnz = numel;
    size_t es = spx_dtype_size(dtype);
    if (numel > SIZE_MAX / es)
        return wfail(w, SPX_E_DIMS, "tensor '%s': too large", name);
    if ((rc = tensor_begin(w, &d, numel * es, &t)) < 0)
        return rc;
    if (dtype == SPX_DTYPE_F32) {
        /* LE host assumed by the rest of the project; go through bytes anyway for clarity */
        for (uint64_t i = 0; i < numel;) {
            size_t n = (size_t)(numel - i < sizeof buf / 4 ? numel - i : sizeof buf / 4);
            for (size_t j = 0; j < n; j++) {
                uint32_t u;
                memcpy(&u, &data[i + j], 4);
                spx_wr32(buf + 4 * j, u);
            }
            if ((rc = put(w, buf, 4 * n, &t.data_crc32)) < 0)
                return rc;
            i += n;
        }
    } else {
        for (uint64_t i = 0; i < numel;) {
            size_t n = (size_t)(numel - i < sizeof buf / 2 ? numel - i : sizeof buf / 2);
            if (dtype == SPX_DTYPE_F16)
                spx_f32_to_f16_n(data + i, buf, n);
            else
                spx_f32_to_bf16_n(data + i, buf, n);
            if ((rc = put(w, buf, 2 * n, &t.data_crc32)) < 0)
                return rc;
            i += n;
        }
    }
    tensor_end(w, &t);
    return 0;
}

/* ---- finish -------------------------------------------------------------------------------- */

static int meta_cmp(const void *a, const void *b)
{
    return strcmp(((const wmeta *)a)->key, ((const wmeta *)b)->key);
}

static void fsync_dir(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd); /* durability of the rename; failure here does not invalidate the file */
        close(fd);
    }
    free(copy);
}

int spx_writer_finish(spx_writer *w)
{
    unsigned char h[SPX_HEADER_SIZE], b[6];
    uint32_t tcrc = 0, mcrc = 0;
    uint64_t meta_off, meta_size, table_off;
    int rc = healthy(w);
    if (rc < 0)
        return rc;
    if ((rc = pad_to(w, 8)) < 0)
        return rc;
    meta_off = w->pos;
    if (w->nmeta)
        qsort(w->meta, w->nmeta, sizeof *w->meta, meta_cmp);
    spx_wr32(b, (uint32_t)w->nmeta);
    if ((rc = put(w, b, 4, &mcrc)) < 0)
        return rc;
    for (size_t i = 0; i < w->nmeta; i++) {
        size_t kl = strlen(w->meta[i].key);
        spx_wr16(b, (uint16_t)kl);
        if ((rc = put(w, b, 2, &mcrc)) < 0 || (rc = put(w, w->meta[i].key, kl, &mcrc)) < 0 ||
            (rc = put(w, w->meta[i].val, w->meta[i].len, &mcrc)) < 0)
            return rc;
    }
    meta_size = w->pos - meta_off;
    if ((rc = pad_to(w, 8)) < 0)
        return rc;
    table_off = w->pos;
    if ((rc = put(w, w->recs, (uint64_t)w->nrec * SPX_RECORD_SIZE, &tcrc)) < 0)
        return rc;

    memset(h, 0, sizeof h);
    memcpy(h + SPX_H_MAGIC, SPX_MAGIC_BYTES, 8);
    spx_wr16(h + SPX_H_MAJOR, SPX_VERSION_MAJOR);
    spx_wr16(h + SPX_H_MINOR, SPX_VERSION_MINOR);
    spx_wr32(h + SPX_H_HSIZE, SPX_HEADER_SIZE);
    spx_wr64(h + SPX_H_FSIZE, w->pos);
    spx_wr32(h + SPX_H_ALIGN, w->align);
    spx_wr32(h + SPX_H_COUNT, (uint32_t)w->nrec);
    spx_wr64(h + SPX_H_TABLE, table_off);
    spx_wr64(h + SPX_H_MOFF, meta_off);
    spx_wr64(h + SPX_H_MSIZE, meta_size);
    spx_wr32(h + SPX_H_TCRC, tcrc);
    spx_wr32(h + SPX_H_MCRC, mcrc);
    memcpy(h + SPX_H_WRITER, w->name, strlen(w->name));
    spx_wr32(h + SPX_H_HCRC, spx_crc32(h, SPX_H_HCRC));
    if (fseek(w->fp, 0, SEEK_SET) != 0 || fwrite(h, 1, sizeof h, w->fp) != sizeof h || fflush(w->fp) != 0 ||
        fsync(fileno(w->fp)) != 0)
        return wfail(w, SPX_E_IO, "writing the header of %s failed: %s", w->tmp, strerror(errno));
    rc = fclose(w->fp);
    w->fp = NULL;
    if (rc != 0)
        return wfail(w, SPX_E_IO, "closing %s failed: %s", w->tmp, strerror(errno));
    if (rename(w->tmp, w->path) != 0)
        return wfail(w, SPX_E_IO, "renaming %s to %s failed: %s", w->tmp, w->path, strerror(errno));
    fsync_dir(w->path);
    w->finished = 1;
    return 0;
}

void spx_writer_free(spx_writer *w)
{
    if (!w)
        return;
    if (w->fp)
        fclose(w->fp);
    if (!w->finished && w->created)
        unlink(w->tmp);
    for (size_t i = 0; i < w->nmeta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].val);
    }
    free(w->meta);
    free(w->recs);
    free(w->hash);
    free(w->tmp);
    free(w->path);
    free(w);
}
