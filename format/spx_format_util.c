/* spx_format_util.c: names, sizes, the encoding layout (spec section 7), CRC, name/key rules and
 * record (de)serialisation shared by the writer and the reader. */
#include <ctype.h>
#include <zlib.h>

#include "spx_ckd.h"
#include "spx_format_int.h"

static const char *const dtype_names[SPX_DTYPE_COUNT] = {"F32", "F16", "BF16", "I32", "U8"};
static const size_t dtype_sizes[SPX_DTYPE_COUNT] = {4, 2, 2, 4, 1};
static const char *const enc_names[SPX_ENC_COUNT] = {"dense", "bitmask", "nm", "csr16", "csr32"};
static const char *const role_names[SPX_ROLE_COUNT] = {"other", "embedding", "norm", "attn",
                                                       "mlp", "output", "router", "probe"};
static const char *const meta_type_names[SPX_META_TYPE_COUNT] = {"U32", "I32", "U64", "I64", "F32",
                                                                 "F64", "BOOL", "STR", "ARR"};

const char *spx_dtype_name(int dtype)
{
    return (dtype >= 0 && dtype < SPX_DTYPE_COUNT) ? dtype_names[dtype] : "?";
}

const char *spx_encoding_name(int enc)
{
    return (enc >= 0 && enc < SPX_ENC_COUNT) ? enc_names[enc] : "?";
}

const char *spx_role_name(int role)
{
    return (role >= 0 && role < SPX_ROLE_COUNT) ? role_names[role] : "other";
}

const char *spx_meta_type_name(int type)
{
    return (type >= 0 && type < SPX_META_TYPE_COUNT) ? meta_type_names[type] : "?";
}

size_t spx_dtype_size(int dtype)
{
    return (dtype >= 0 && dtype < SPX_DTYPE_COUNT) ? dtype_sizes[dtype] : 0;
}

int spx_dtype_parse(const char *s)
{
    if (!s)
        return -1;
    for (int d = 0; d < SPX_DTYPE_COUNT; d++) {
        const char *n = dtype_names[d];
        size_t i = 0;
        while (n[i] && s[i] && toupper((unsigned char)s[i]) == n[i])
            i++;
        if (!n[i] && !s[i])
            return d;
    }
    return -1;
}

size_t spx_meta_scalar_size(int type)
{
    switch (type) {
    case SPX_META_U32: case SPX_META_I32: case SPX_META_F32: return 4;
    case SPX_META_U64: case SPX_META_I64: case SPX_META_F64: return 8;
    case SPX_META_BOOL: return 1;
    default: return 0;
    }
}

int spx_tensor_numel(spx_ctx *ctx, const spx_tensor *t, uint64_t *out)
{
    uint64_t n = 1;
    if (t->ndim < 1 || t->ndim > SPX_MAX_DIMS)
        return spx_err_set(ctx, SPX_E_DIMS, "ndim %u is not in 1..%d", t->ndim, SPX_MAX_DIMS);
    for (int k = 0; k < SPX_MAX_DIMS; k++) {
        if (k < t->ndim && t->dims[k] == 0)
            return spx_err_set(ctx, SPX_E_DIMS, "dims[%d] is zero", k);
        if (k >= t->ndim && t->dims[k] != 0)
            return spx_err_set(ctx, SPX_E_DIMS, "dims[%d] = %llu but ndim is %u (unused dims must be 0)",
                               k, (unsigned long long)t->dims[k], t->ndim);
        if (k < t->ndim && spx_ckd_mul_u64(n, t->dims[k], &n))
            return spx_err_set(ctx, SPX_E_DIMS, "product of dims overflows 64 bits");
    }
    *out = n;
    return 0;
}

/* Sub-array 0 of `a` bytes, then sub-arrays of b and c bytes each at the next multiple of 64
 * (c == UINT64_MAX: no third array). */
static int place(uint64_t a, uint64_t b, uint64_t c, uint64_t *size, uint64_t off[3])
{
    uint64_t o1, o2, e;
    if (spx_ckd_align_u64(a, SPX_SUBALIGN, &o1) || spx_ckd_add_u64(o1, b, &e))
        return -1;
    off[1] = o1;
    if (c == UINT64_MAX) {
        *size = e;
        return 0;
    }
    if (spx_ckd_align_u64(e, SPX_SUBALIGN, &o2) || spx_ckd_add_u64(o2, c, size))
        return -1;
    off[2] = o2;
    return 0;
}

int spx_encoding_layout(spx_ctx *ctx, const spx_tensor *t, uint64_t *size, uint64_t off[3])
{
    uint64_t numel, vbytes, rows = t->dims[0], cols = t->dims[1], mask, idx, ptr, groups;
    size_t es = spx_dtype_size(t->dtype);
    int rc;
    off[0] = off[1] = off[2] = 0;
    if (!es)
        return spx_err_set(ctx, SPX_E_DTYPE, "unknown dtype %u", t->dtype);
    if (t->encoding >= SPX_ENC_COUNT)
        return spx_err_set(ctx, SPX_E_ENCODING, "unknown encoding %u", t->encoding);
    if ((rc = spx_tensor_numel(ctx, t, &numel)) < 0)
        return rc;
    if (spx_ckd_mul_u64(numel, es, &vbytes))
        return spx_err_set(ctx, SPX_E_DIMS, "%llu elements of %zu bytes overflow 64 bits",
                           (unsigned long long)numel, es);
    if (t->encoding != SPX_ENC_NM && (t->nm_n || t->nm_m))
        return spx_err_set(ctx, SPX_E_ENCODING, "nm_n/nm_m are %u/%u but must be 0 for encoding %s",
                           t->nm_n, t->nm_m, spx_encoding_name(t->encoding));
    if (t->encoding == SPX_ENC_DENSE) {
        if (t->nnz != numel)
            return spx_err_set(ctx, SPX_E_ENCODING, "dense tensor has nnz %llu, expected numel %llu",
                               (unsigned long long)t->nnz, (unsigned long long)numel);
        *size = vbytes;
        return 0;
    }
    if (t->ndim != 2)
        return spx_err_set(ctx, SPX_E_ENCODING, "encoding %s needs a 2-D tensor, ndim is %u",
                           spx_encoding_name(t->encoding), t->ndim);
    if (t->dtype != SPX_DTYPE_F32 && t->dtype != SPX_DTYPE_F16 && t->dtype != SPX_DTYPE_BF16)
        return spx_err_set(ctx, SPX_E_ENCODING, "encoding %s needs F32/F16/BF16 values, dtype is %s",
                           spx_encoding_name(t->encoding), spx_dtype_name(t->dtype));
    if (t->nnz > numel)
        return spx_err_set(ctx, SPX_E_ENCODING, "nnz %llu exceeds numel %llu",
                           (unsigned long long)t->nnz, (unsigned long long)numel);
    /* numel fits, so rows*ceil(cols/8), nnz*es (<= vbytes) and (rows+1)*8 need care only for the last */
    mask = rows * ((cols + 7) / 8);
    vbytes = t->nnz * es;
    switch (t->encoding) {
    case SPX_ENC_BITMASK:
        if (spx_ckd_mul_u64(rows, 8, &ptr) || place(vbytes, mask, ptr, size, off))
            return spx_err_set(ctx, SPX_E_DIMS, "blob size overflows 64 bits");
        return 0;
    case SPX_ENC_NM:
        if (t->nm_n < 1 || t->nm_n > t->nm_m || t->nm_m > 32)
            return spx_err_set(ctx, SPX_E_ENCODING, "N:M = %u:%u is not within 1 <= N <= M <= 32",
                               t->nm_n, t->nm_m);
        if (cols % t->nm_m)
            return spx_err_set(ctx, SPX_E_ENCODING, "cols %llu is not a multiple of M = %u",
                               (unsigned long long)cols, t->nm_m);
        groups = rows * (cols / t->nm_m);
        if (t->nnz != groups * t->nm_n)
            return spx_err_set(ctx, SPX_E_ENCODING, "N:M tensor has nnz %llu, expected rows*cols/M*N = %llu",
                               (unsigned long long)t->nnz, (unsigned long long)(groups * t->nm_n));
        if (place(vbytes, mask, UINT64_MAX, size, off))
            return spx_err_set(ctx, SPX_E_DIMS, "blob size overflows 64 bits");
        return 0;
    default: /* CSR16, CSR32 */
        if (t->encoding == SPX_ENC_CSR16 && cols > 65536)
            return spx_err_set(ctx, SPX_E_ENCODING, "csr16 needs cols <= 65536, cols is %llu",
                               (unsigned long long)cols);
        if (spx_ckd_mul_u64(t->nnz, t->encoding == SPX_ENC_CSR16 ? 2u : 4u, &idx) ||
            spx_ckd_add_u64(rows, 1, &ptr) || spx_ckd_mul_u64(ptr, 8, &ptr) || place(vbytes, idx, ptr, size, off))
            return spx_err_set(ctx, SPX_E_DIMS, "blob size overflows 64 bits");
        return 0;
    }
}

uint32_t spx_crc32_update(uint32_t crc, const void *buf, uint64_t len)
{
    const unsigned char *p = buf;
    uLong c = crc;
    while (len > 0) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        c = crc32(c, p, n);
        p += n;
        len -= n;
    }
    return (uint32_t)c;
}

uint32_t spx_crc32(const void *buf, uint64_t len)
{
    return spx_crc32_update(0, buf, len);
}

int spx_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0) { k = 1; cp = c & 0x1f; min = 0x80; }
        else if ((c & 0xf0) == 0xe0) { k = 2; cp = c & 0x0f; min = 0x800; }
        else if ((c & 0xf8) == 0xf0) { k = 3; cp = c & 0x07; min = 0x10000; }
        else return 0;
        if (n - i <= k)
            return 0;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + j] & 0x3fu);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += k + 1;
    }
    return 1;
}

const char *spx_name_problem(const char *name, size_t n)
{
    if (n == 0)
        return "name is empty";
    if (n >= SPX_NAME_MAX)
        return "name is longer than 95 bytes";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == 0)
            return "name contains a NUL byte";
        if (c < 0x20 || c == 0x7f)
            return "name contains a control character";
    }
    if (!spx_utf8_valid((const unsigned char *)name, n))
        return "name is not valid UTF-8";
    return NULL;
}

const char *spx_key_problem(const char *key, size_t n)
{
    if (n == 0)
        return "key is empty";
    if (n > SPX_META_MAX_KEY)
        return "key is longer than 255 bytes";
    for (size_t i = 0; i < n; i++) {
        char c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
            return "key has a character outside [a-z0-9_.]";
        if (c == '.' && (i == 0 || i + 1 == n || key[i - 1] == '.'))
            return "key has a leading, trailing or doubled '.'";
    }
    return NULL;
}

void spx_record_pack(const spx_tensor *t, unsigned char rec[SPX_RECORD_SIZE])
{
    memset(rec, 0, SPX_RECORD_SIZE);
    size_t n = strnlen(t->name, SPX_NAME_MAX - 1);
    memcpy(rec + SPX_R_NAME, t->name, n);
    rec[SPX_R_DTYPE] = t->dtype;
    rec[SPX_R_ENC] = t->encoding;
    rec[SPX_R_NDIM] = t->ndim;
    rec[SPX_R_NMN] = t->nm_n;
    rec[SPX_R_NMM] = t->nm_m;
    spx_wr16(rec + SPX_R_ROLE, t->role);
    for (int k = 0; k < SPX_MAX_DIMS; k++)
        spx_wr64(rec + SPX_R_DIMS + 8 * k, t->dims[k]);
    spx_wr64(rec + SPX_R_OFF, t->data_offset);
    spx_wr64(rec + SPX_R_SIZE, t->data_size);
    spx_wr64(rec + SPX_R_NNZ, t->nnz);
    spx_wr32(rec + SPX_R_CRC, t->data_crc32);
    spx_wr32(rec + SPX_R_LAYER, t->layer);
    spx_wr32(rec + SPX_R_EXPERT, t->expert);
}

void spx_record_unpack(const unsigned char rec[SPX_RECORD_SIZE], spx_tensor *t)
{
    memset(t, 0, sizeof *t);
    memcpy(t->name, rec + SPX_R_NAME, SPX_NAME_MAX);
    t->name[SPX_NAME_MAX - 1] = '\0';
    t->dtype = rec[SPX_R_DTYPE];
    t->encoding = rec[SPX_R_ENC];
    t->ndim = rec[SPX_R_NDIM];
    t->nm_n = rec[SPX_R_NMN];
    t->nm_m = rec[SPX_R_NMM];
    t->role = spx_rd16(rec + SPX_R_ROLE);
    for (int k = 0; k < SPX_MAX_DIMS; k++)
        t->dims[k] = spx_rd64(rec + SPX_R_DIMS + 8 * k);
    t->data_offset = spx_rd64(rec + SPX_R_OFF);
    t->data_size = spx_rd64(rec + SPX_R_SIZE);
    t->nnz = spx_rd64(rec + SPX_R_NNZ);
    t->data_crc32 = spx_rd32(rec + SPX_R_CRC);
    t->layer = spx_rd32(rec + SPX_R_LAYER);
    t->expert = spx_rd32(rec + SPX_R_EXPERT);
}

int spx_all_zero(const unsigned char *p, uint64_t n, uint64_t *first)
{
    uint64_t i = 0;
    /* word-at-a-time scan; gaps can be up to alignment-1 bytes, the data check reads every byte */
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w)
            break;
    }
    for (; i < n; i++)
        if (p[i]) {
            if (first)
                *first = i;
            return 0;
        }
    return 1;
}
