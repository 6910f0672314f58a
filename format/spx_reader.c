/* spx_reader.c: .spx reader (spec section 9, "a compliant reader must").
 *
 * The file is mapped read-only and validated in the order of the spec before anything else looks
 * at it: header, section bounds, table and metadata CRCs, every record, duplicate names, metadata,
 * end of file. Tensor data is only read by spx_file_verify_data (or SPX_OPEN_VERIFY_DATA):
 * gaps, data CRCs and encoding invariants. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spx_ckd.h"
#include "spx_format_int.h"

struct spx_file {
    char *label;                  /* path or caller label, used in every message */
    const unsigned char *base;    /* file bytes */
    size_t len;
    void *map;                    /* mmap'd region (NULL for open_mem) */
    size_t map_len;
    spx_header h;
    spx_tensor *t;                /* tensor_count decoded records, table order */
    struct name_ix *byname;       /* name index sorted by (hash, name, position) */
    spx_meta_table meta;
};

/* Name index: sorting 16-byte (hash, position) pairs mostly compares integers, which keeps
 * opening a 10^6-tensor file fast; equal hashes fall back to strcmp so collisions cost only time. */
struct name_ix {
    uint64_t h;
    const char *name;     /* f->t[i].name */
    uint32_t i;
};

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static const unsigned char magic_rev[8] = {0x0a, 0x1a, 0x0a, 0x0d, 0x58, 0x50, 0x53, 0x89};

/* Header checks, steps 1..10 of spec section 9. */
static int check_header(spx_ctx *ctx, spx_file *f)
{
    const unsigned char *b = f->base;
    const char *L = f->label;
    spx_header *h = &f->h;
    uint32_t crc;
    if (f->len < 8)
        return spx_err_set(ctx, SPX_E_BAD_MAGIC, "%s: not a .spx file: %zu bytes, too short for the 8-byte magic (byte 0)",
                           L, f->len);
    if (memcmp(b, magic_rev, 8) == 0)
        return spx_err_set(ctx, SPX_E_BYTESWAPPED, "%s: the magic (byte 0) is byte-swapped: written by a big-endian "
                           "writer; .spx is little-endian", L);
    if (memcmp(b, SPX_MAGIC_BYTES, 8) != 0)
        return spx_err_set(ctx, SPX_E_BAD_MAGIC, "%s: not a .spx file: magic (byte 0) is %02x %02x %02x %02x %02x %02x "
                           "%02x %02x, expected 89 53 50 58 0d 0a 1a 0a", L, b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
    if (f->len >= 16 && b[SPX_H_MAJOR] == 0 && spx_rd32(b + SPX_H_HSIZE) == 0x80000000u)
        return spx_err_set(ctx, SPX_E_BYTESWAPPED, "%s: header fields 'major' (byte 8) and 'header_size' (byte 12) are "
                           "big-endian; .spx is little-endian", L);
    if (f->len < SPX_HEADER_SIZE)
        return spx_err_set(ctx, SPX_E_TRUNCATED, "%s: truncated: %zu bytes, shorter than the 128-byte header", L, f->len);
    h->major = spx_rd16(b + SPX_H_MAJOR);
    h->minor = spx_rd16(b + SPX_H_MINOR);
    h->header_size = spx_rd32(b + SPX_H_HSIZE);
    h->required_features = spx_rd64(b + SPX_H_REQ);
    h->optional_features = spx_rd64(b + SPX_H_OPT);
    h->file_size = spx_rd64(b + SPX_H_FSIZE);
    h->alignment = spx_rd32(b + SPX_H_ALIGN);
    h->tensor_count = spx_rd32(b + SPX_H_COUNT);
    h->table_offset = spx_rd64(b + SPX_H_TABLE);
    h->meta_offset = spx_rd64(b + SPX_H_MOFF);
    h->meta_size = spx_rd64(b + SPX_H_MSIZE);
    h->table_crc32 = spx_rd32(b + SPX_H_TCRC);
    h->meta_crc32 = spx_rd32(b + SPX_H_MCRC);
    memcpy(h->writer, b + SPX_H_WRITER, SPX_WRITER_FIELD);
    h->writer[SPX_WRITER_FIELD] = '\0';
    h->header_crc32 = spx_rd32(b + SPX_H_HCRC);
    if ((crc = spx_crc32(b, SPX_H_HCRC)) != h->header_crc32)
        return spx_err_set(ctx, SPX_E_HEADER_CRC, "%s: header checksum mismatch: 'header_crc32' (byte 124) is 0x%08x, "
                           "bytes 0..123 give 0x%08x", L, h->header_crc32, crc);
    if (h->major != SPX_VERSION_MAJOR)
        return spx_err_set(ctx, SPX_E_VERSION, "%s: header field 'major' (byte 8) is %u; this reader supports major "
                           "version %d", L, h->major, SPX_VERSION_MAJOR);
    if (h->header_size != SPX_HEADER_SIZE)
        return spx_err_set(ctx, SPX_E_VERSION, "%s: header field 'header_size' (byte 12) is %u, version 1 headers are "
                           "128 bytes", L, h->header_size);
    if (h->required_features & ~SPX_FEATURE_REQUIRED_KNOWN)
        return spx_err_set(ctx, SPX_E_FEATURE, "%s: header field 'required_features' (byte 16) = 0x%llx has feature "
                           "bits this reader does not implement (0x%llx)", L, (unsigned long long)h->required_features,
                           (unsigned long long)(h->required_features & ~SPX_FEATURE_REQUIRED_KNOWN));
    for (int i = SPX_H_RESV; i < SPX_H_HCRC; i++)
        if (b[i])
            return spx_err_set(ctx, SPX_E_RESERVED, "%s: reserved header byte %d is 0x%02x, must be zero", L, i, b[i]);
    if (h->file_size > f->len)
        return spx_err_set(ctx, SPX_E_TRUNCATED, "%s: truncated: header field 'file_size' (byte 32) is %llu but the "
                           "file has %zu bytes", L, (unsigned long long)h->file_size, f->len);
    if (h->file_size < f->len)
        return spx_err_set(ctx, SPX_E_TRAILING, "%s: header field 'file_size' (byte 32) is %llu but the file has %zu "
                           "bytes (trailing data)", L, (unsigned long long)h->file_size, f->len);
    if (h->alignment < 64 || (h->alignment & (h->alignment - 1)))
        return spx_err_set(ctx, SPX_E_ALIGN, "%s: header field 'alignment' (byte 40): %u is not a power of two >= 64",
                           L, h->alignment);
    return 0;
}

/* Steps 11..13: section bounds and section CRCs. */
static int check_sections(spx_ctx *ctx, spx_file *f, uint64_t *table_end)
{
    const spx_header *h = &f->h;
    const char *L = f->label;
    uint64_t tbytes, mend;
    uint32_t crc;
    if (h->tensor_count > SPX_MAX_TENSORS)
        return spx_err_set(ctx, SPX_E_TABLE, "%s: header field 'tensor_count' (byte 44) is %u, more than %u",
                           L, h->tensor_count, SPX_MAX_TENSORS);
    if (h->table_offset % 8)
        return spx_err_set(ctx, SPX_E_ALIGN, "%s: header field 'table_offset' (byte 48): %llu is not a multiple of 8",
                           L, (unsigned long long)h->table_offset);
    if (h->table_offset < SPX_HEADER_SIZE)
        return spx_err_set(ctx, SPX_E_TABLE, "%s: header field 'table_offset' (byte 48): %llu points into the header",
                           L, (unsigned long long)h->table_offset);
    tbytes = (uint64_t)h->tensor_count * SPX_RECORD_SIZE;
    if (spx_ckd_add_u64(h->table_offset, tbytes, table_end))
        return spx_err_set(ctx, SPX_E_TABLE, "%s: header field 'table_offset' (byte 48): %llu + %u records overflows",
                           L, (unsigned long long)h->table_offset, h->tensor_count);
    if (*table_end > h->file_size)
        return spx_err_set(ctx, SPX_E_TRUNCATED, "%s: truncated: the tensor table (byte %llu, %u records) ends at byte "
                           "%llu, past the end of the file (%llu bytes)", L, (unsigned long long)h->table_offset,
                           h->tensor_count, (unsigned long long)*table_end, (unsigned long long)h->file_size);
    if (h->meta_offset % 8)
        return spx_err_set(ctx, SPX_E_ALIGN, "%s: header field 'meta_offset' (byte 56): %llu is not a multiple of 8",
                           L, (unsigned long long)h->meta_offset);
    if (h->meta_offset < SPX_HEADER_SIZE)
        return spx_err_set(ctx, SPX_E_META, "%s: header field 'meta_offset' (byte 56): %llu points into the header",
                           L, (unsigned long long)h->meta_offset);
    if (h->meta_size < 4 || h->meta_size > SPX_META_MAX_BYTES)
        return spx_err_set(ctx, SPX_E_META, "%s: header field 'meta_size' (byte 64): %llu is not in 4..%u",
                           L, (unsigned long long)h->meta_size, SPX_META_MAX_BYTES);
    if (spx_ckd_add_u64(h->meta_offset, h->meta_size, &mend) || mend > h->table_offset)
        return spx_err_set(ctx, SPX_E_META, "%s: the metadata section (byte %llu, %llu bytes) runs into the tensor "
                           "table at byte %llu", L, (unsigned long long)h->meta_offset,
                           (unsigned long long)h->meta_size, (unsigned long long)h->table_offset);
    if ((crc = spx_crc32(f->base + h->table_offset, tbytes)) != h->table_crc32)
        return spx_err_set(ctx, SPX_E_TABLE_CRC, "%s: tensor table checksum mismatch: 'table_crc32' (byte 72) is "
                           "0x%08x, the table at byte %llu gives 0x%08x", L, h->table_crc32,
                           (unsigned long long)h->table_offset, crc);
    if ((crc = spx_crc32(f->base + h->meta_offset, h->meta_size)) != h->meta_crc32)
        return spx_err_set(ctx, SPX_E_META_CRC, "%s: metadata checksum mismatch: 'meta_crc32' (byte 76) is 0x%08x, "
                           "the section at byte %llu gives 0x%08x", L, h->meta_crc32,
                           (unsigned long long)h->meta_offset, crc);
    return 0;
}

/* Step 14: one record. prev is the previous record or NULL. */
static int check_record(spx_ctx *ctx, const spx_file *f, uint32_t i, spx_tensor *t, const spx_tensor *prev)
{
    const spx_header *h = &f->h;
    uint64_t at = h->table_offset + (uint64_t)i * SPX_RECORD_SIZE, size, off[3], end;
    const unsigned char *rec = f->base + at;
    const char *why, *nul = memchr(rec, 0, SPX_NAME_MAX);
    int rc;
    spx_record_unpack(rec, t);
    if (!nul)
        return spx_err_set(ctx, SPX_E_NAME, "%s: tensor record %u (byte %llu): name is not NUL-terminated within "
                           "96 bytes", f->label, i, (unsigned long long)at);
    size_t nl = (size_t)(nul - (const char *)rec);
    if ((why = spx_name_problem((const char *)rec, nl)))
        return spx_err_set(ctx, SPX_E_NAME, "%s: tensor record %u (byte %llu): %s", f->label, i,
                           (unsigned long long)at, why);
    for (size_t k = nl; k < SPX_NAME_MAX; k++)
        if (rec[k])
            return spx_err_set(ctx, SPX_E_NAME, "%s: tensor '%s' (record %u at byte %llu): name padding byte %zu is "
                               "not NUL", f->label, t->name, i, (unsigned long long)at, k);
#define RFAIL(code, ...) do { rc = spx_err_set(ctx, (code), __VA_ARGS__); goto fail_rc; } while (0)
    if (t->dtype >= SPX_DTYPE_COUNT)
        RFAIL(SPX_E_DTYPE, "unknown dtype %u (byte +96)", t->dtype);
    if (t->encoding >= SPX_ENC_COUNT)
        RFAIL(SPX_E_ENCODING, "unknown encoding %u (byte +97)", t->encoding);
    if ((rc = spx_encoding_layout(ctx, t, &size, off)) < 0)
        goto fail_rc;
    if (rec[SPX_R_RESV1] || !spx_all_zero(rec + SPX_R_RESV2, SPX_RECORD_SIZE - SPX_R_RESV2, NULL))
        RFAIL(SPX_E_RESERVED, "reserved record bytes (+101, +172..191) are not zero");
    if (t->data_offset % h->alignment)
        RFAIL(SPX_E_ALIGN, "data_offset %llu is not a multiple of alignment %u",
              (unsigned long long)t->data_offset, h->alignment);
    if (t->data_offset < SPX_HEADER_SIZE)
        RFAIL(SPX_E_OFFSET, "data_offset %llu points into the header", (unsigned long long)t->data_offset);
    if (prev && t->data_offset <= prev->data_offset)
        RFAIL(SPX_E_OFFSET, "data_offset %llu is not after the previous tensor's (%llu): offsets must ascend in "
              "table order", (unsigned long long)t->data_offset, (unsigned long long)prev->data_offset);
    if (prev && t->data_offset < prev->data_offset + prev->data_size)
        RFAIL(SPX_E_OVERLAP, "data at %llu overlaps tensor '%s' (bytes %llu..%llu)", (unsigned long long)t->data_offset,
              prev->name, (unsigned long long)prev->data_offset,
              (unsigned long long)(prev->data_offset + prev->data_size - 1));
    if (t->data_size != size)
        RFAIL(SPX_E_SIZE, "data_size %llu differs from the %llu bytes its %s %s layout needs",
              (unsigned long long)t->data_size, (unsigned long long)size, spx_dtype_name(t->dtype),
              spx_encoding_name(t->encoding));
    if (spx_ckd_add_u64(t->data_offset, t->data_size, &end) || end > h->meta_offset)
        RFAIL(SPX_E_OFFSET, "data (byte %llu, %llu bytes) runs past the start of the metadata at byte %llu",
              (unsigned long long)t->data_offset, (unsigned long long)t->data_size,
              (unsigned long long)h->meta_offset);
#undef RFAIL
    return 0;
fail_rc:
    spx_err_prefix(ctx, "%s: tensor '%s' (record %u at byte %llu): ", f->label, t->name, i, (unsigned long long)at);
    return rc;
}

static int cmp_ix(const void *a, const void *b)
{
    const struct name_ix *x = a, *y = b;
    if (x->h != y->h)
        return x->h < y->h ? -1 : 1;
    int c = strcmp(x->name, y->name);
    return c ? c : (x->i < y->i ? -1 : x->i > y->i); /* tie-break by table position: deterministic */
}

static int check_records(spx_ctx *ctx, spx_file *f)
{
    uint32_t n = f->h.tensor_count;
    int rc;
    f->t = calloc(n ? n : 1, sizeof *f->t);
    f->byname = calloc(n ? n : 1, sizeof *f->byname);
    if (!f->t || !f->byname)
        return spx_err_set(ctx, SPX_E_NOMEM, "%s: out of memory for %u tensor records", f->label, n);
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = check_record(ctx, f, i, &f->t[i], i ? &f->t[i - 1] : NULL)) < 0)
            return rc;
        f->byname[i].h = name_hash(f->t[i].name);
        f->byname[i].name = f->t[i].name;
        f->byname[i].i = i;
    }
    qsort(f->byname, n, sizeof *f->byname, cmp_ix);
    for (uint32_t i = 1; i < n; i++)
        if (f->byname[i - 1].h == f->byname[i].h && strcmp(f->t[f->byname[i - 1].i].name, f->t[f->byname[i].i].name) == 0) {
            uint32_t a = f->byname[i - 1].i, b = f->byname[i].i;
            return spx_err_set(ctx, SPX_E_DUP_NAME, "%s: tensor '%s' (record %u at byte %llu) has the same name as "
                               "record %u", f->label, f->t[b].name, b,
                               (unsigned long long)(f->h.table_offset + (uint64_t)b * SPX_RECORD_SIZE), a);
        }
    return 0;
}

static int check_gap(spx_ctx *ctx, const spx_file *f, uint64_t from, uint64_t to, const char *before)
{
    uint64_t first = 0;
    if (to > from && !spx_all_zero(f->base + from, to - from, &first))
        return spx_err_set(ctx, SPX_E_GAP, "%s: nonzero byte 0x%02x at byte %llu in the gap before %s", f->label,
                           f->base[from + first], (unsigned long long)(from + first), before);
    return 0;
}

int spx_file_verify_data(spx_ctx *ctx, const spx_file *f)
{
    uint64_t prev_end = SPX_HEADER_SIZE;
    char what[SPX_NAME_MAX + 16];
    int rc;
    for (uint32_t i = 0; i < f->h.tensor_count; i++) {
        const spx_tensor *t = &f->t[i];
        const unsigned char *d = f->base + t->data_offset;
        uint64_t at = f->h.table_offset + (uint64_t)i * SPX_RECORD_SIZE;
        uint32_t crc;
        snprintf(what, sizeof what, "tensor '%s'", t->name);
        if ((rc = check_gap(ctx, f, prev_end, t->data_offset, what)) < 0)
            return rc;
        if ((crc = spx_crc32(d, t->data_size)) != t->data_crc32)
            return spx_err_set(ctx, SPX_E_DATA_CRC, "%s: tensor '%s' (record %u at byte %llu): data checksum mismatch: "
                               "record says 0x%08x, the %llu bytes at %llu give 0x%08x", f->label, t->name, i,
                               (unsigned long long)at, t->data_crc32, (unsigned long long)t->data_size,
                               (unsigned long long)t->data_offset, crc);
        if ((rc = spx_encoding_validate(ctx, t, d)) < 0) {
            spx_err_prefix(ctx, "%s: tensor '%s' (record %u at byte %llu, data at byte %llu): ", f->label, t->name, i,
                           (unsigned long long)at, (unsigned long long)t->data_offset);
            return rc;
        }
        prev_end = t->data_offset + t->data_size;
    }
    if ((rc = check_gap(ctx, f, prev_end, f->h.meta_offset, "the metadata")) < 0)
        return rc;
    return check_gap(ctx, f, f->h.meta_offset + f->h.meta_size, f->h.table_offset, "the tensor table");
}

static int validate(spx_ctx *ctx, spx_file *f, unsigned flags)
{
    uint64_t table_end = 0;
    int rc;
    if ((rc = check_header(ctx, f)) < 0 || (rc = check_sections(ctx, f, &table_end)) < 0 ||
        (rc = check_records(ctx, f)) < 0)
        return rc;
    if ((rc = spx_meta_parse(ctx, f->label, f->base + f->h.meta_offset, f->h.meta_size, f->h.meta_offset,
                             &f->meta)) < 0)
        return rc;
    if (table_end != f->h.file_size)
        return spx_err_set(ctx, SPX_E_TRAILING, "%s: %llu bytes after the end of the tensor table (byte %llu); the "
                           "table must end the file", f->label, (unsigned long long)(f->h.file_size - table_end),
                           (unsigned long long)table_end);
    if (flags & SPX_OPEN_VERIFY_DATA)
        return spx_file_verify_data(ctx, f);
    return 0;
}

static int open_common(spx_ctx *ctx, spx_file *f, unsigned flags, spx_file **out)
{
    int rc = validate(ctx, f, flags);
    if (rc < 0) {
        spx_file_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int spx_file_open_mem(spx_ctx *ctx, const void *buf, size_t len, const char *label, unsigned flags, spx_file **out)
{
    spx_file *f;
    *out = NULL;
    if (!buf && len)
        return spx_err_set(ctx, SPX_E_ARG, "spx_file_open_mem: NULL buffer");
    if (!(f = calloc(1, sizeof *f)) || !(f->label = strdup(label ? label : "<memory>"))) {
        free(f);
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
    }
    f->base = buf ? buf : (const unsigned char *)"";
    f->len = len;
    return open_common(ctx, f, flags, out);
}

int spx_file_open(spx_ctx *ctx, const char *path, unsigned flags, spx_file **out)
{
    spx_file *f = NULL;
    struct stat st;
    int fd = -1, rc = 0;
    *out = NULL;
    if (!(f = calloc(1, sizeof *f)) || !(f->label = strdup(path ? path : "")))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "cannot open %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "cannot stat %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s is not a regular file", path);
    if ((uint64_t)st.st_size > SIZE_MAX)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s is too large to map", path);
    f->len = (size_t)st.st_size;
    f->base = (const unsigned char *)"";
    if (f->len) {
        void *m = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            SPX_FAIL(ctx, rc, SPX_E_IO, "cannot map %s: %s", path, strerror(errno));
        f->map = m;
        f->map_len = f->len;
        f->base = m;
    }
    close(fd);
    fd = -1;
    rc = open_common(ctx, f, flags, out);
    f = NULL;
done:
    if (fd >= 0)
        close(fd);
    spx_file_free(f);
    return rc;
}

void spx_file_free(spx_file *f)
{
    if (!f)
        return;
    if (f->map)
        munmap(f->map, f->map_len);
    spx_meta_table_free(&f->meta);
    free(f->t);
    free(f->byname);
    free(f->label);
    free(f);
}

const spx_header *spx_file_header(const spx_file *f) { return &f->h; }
const char *spx_file_path(const spx_file *f) { return f->label; }
uint32_t spx_file_tensor_count(const spx_file *f) { return f->h.tensor_count; }

const spx_tensor *spx_file_tensor(const spx_file *f, uint32_t i)
{
    return i < f->h.tensor_count ? &f->t[i] : NULL;
}

const spx_tensor *spx_file_find(const spx_file *f, const char *name)
{
    uint64_t h = name_hash(name);
    size_t lo = 0, hi = f->h.tensor_count;
    while (lo < hi) { /* first entry with hash >= h */
        size_t mid = lo + (hi - lo) / 2;
        if (f->byname[mid].h < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < f->h.tensor_count && f->byname[lo].h == h; lo++)
        if (strcmp(f->t[f->byname[lo].i].name, name) == 0)
            return &f->t[f->byname[lo].i];
    return NULL;
}

const void *spx_file_data(const spx_file *f, const spx_tensor *t)
{
    return f->base + t->data_offset;
}

void spx_release_mapped(const void *p, size_t n)
{
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p, b = a + (uintptr_t)n;
    if (!p || pg <= 0)
        return;
    a = (a + (uintptr_t)pg - 1) / (uintptr_t)pg * (uintptr_t)pg;   /* whole pages inside [p, p + n) only */
    b = b / (uintptr_t)pg * (uintptr_t)pg;
    if (b > a)
        (void)madvise((void *)a, (size_t)(b - a), MADV_DONTNEED);
}

void spx_file_release(const spx_file *f, const spx_tensor *t)
{
    if (!f || !t || !f->map || t->data_offset > f->map_len || t->data_size > f->map_len - t->data_offset)
        return;
    spx_release_mapped(f->base + t->data_offset, (size_t)t->data_size);
}

size_t spx_file_meta_count(const spx_file *f) { return f->meta.n; }

const spx_meta *spx_file_meta(const spx_file *f, size_t i)
{
    return i < f->meta.n ? &f->meta.items[i] : NULL;
}

static int cmp_meta(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const spx_meta *)elem)->key);
}

const spx_meta *spx_file_meta_find(const spx_file *f, const char *key)
{
    return f->meta.n ? bsearch(key, f->meta.items, f->meta.n, sizeof *f->meta.items, cmp_meta) : NULL;
}
