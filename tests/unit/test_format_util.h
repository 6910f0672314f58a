/* test_format_util.h: helpers for the format tests (roundtrip, corrupt, golden).
 *
 * The byte-level helpers are written from specs/spx-format.md, independently of the library's own
 * offsets and LE helpers, so the tests also check that the library matches the spec. Everything is
 * `static inline` so each test can include it without unused-function warnings. */
#ifndef TEST_FORMAT_UTIL_H
#define TEST_FORMAT_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "spx_format.h"
#include "spx_half.h"
#include "spx_test.h"

/* ---- raw little-endian access (spec section 1) ---- */
static inline uint64_t tf_rd(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static inline void tf_wr(unsigned char *p, int n, uint64_t v)
{
    for (int i = 0; i < n; i++, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
}
static inline uint32_t tf_crc(const unsigned char *p, uint64_t n)
{
    return (uint32_t)crc32(0L, p, (uInt)n);
}

/* header fields (spec section 4) */
#define TF_FSIZE 32
#define TF_ALIGN 40
#define TF_COUNT 44
#define TF_TABLE 48
#define TF_MOFF 56
#define TF_MSIZE 64
/* record fields (spec section 5) */
#define TF_R_OFF 136
#define TF_R_SIZE 144
#define TF_R_NNZ 152
#define TF_R_CRC 160

static inline unsigned char *tf_rec(unsigned char *b, uint32_t i)
{
    return b + tf_rd(b + TF_TABLE, 8) + 192u * i;
}

/* Recompute table, metadata and header CRCs after a mutation (only where the fields are in range,
 * so the check behind each CRC is what fails). */
static inline void tf_reseal(unsigned char *b, size_t len)
{
    if (len < 128)
        return;
    uint64_t to = tf_rd(b + TF_TABLE, 8), n = tf_rd(b + TF_COUNT, 4), mo = tf_rd(b + TF_MOFF, 8),
             ms = tf_rd(b + TF_MSIZE, 8);
    if (to <= len && n * 192 <= len - to)
        tf_wr(b + 72, 4, tf_crc(b + to, n * 192));
    if (mo <= len && ms <= len - mo)
        tf_wr(b + 76, 4, tf_crc(b + mo, ms));
    tf_wr(b + 124, 4, tf_crc(b, 124));
}

/* Recompute record i's data CRC (after changing its data) and reseal. */
static inline void tf_reseal_data(unsigned char *b, size_t len, uint32_t i)
{
    unsigned char *r = tf_rec(b, i);
    tf_wr(r + TF_R_CRC, 4, tf_crc(b + tf_rd(r + TF_R_OFF, 8), tf_rd(r + TF_R_SIZE, 8)));
    tf_reseal(b, len);
}

static inline unsigned char *tf_read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    unsigned char *b = NULL;
    long n;
    *len = 0;
    if (!fp)
        return NULL;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0 &&
        (b = malloc((size_t)n + 1)) && fread(b, 1, (size_t)n, fp) == (size_t)n)
        *len = (size_t)n;
    else {
        free(b);
        b = NULL;
    }
    fclose(fp);
    return b;
}

static inline int tf_write_file(const char *path, const unsigned char *b, size_t len)
{
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return -1;
    int ok = fwrite(b, 1, len, fp) == len;
    return (fclose(fp) == 0 && ok) ? 0 : -1;
}

/* ---- metadata section builder (spec section 6) ---- */
typedef struct tf_buf {
    unsigned char *p;
    size_t n, cap;
} tf_buf;

static inline void tf_put(tf_buf *m, const void *src, size_t n)
{
    if (m->n + n > m->cap) {
        m->cap = (m->n + n) * 2 + 64;
        m->p = realloc(m->p, m->cap);
        if (!m->p)
            abort();
    }
    memcpy(m->p + m->n, src, n);
    m->n += n;
}
static inline void tf_put_int(tf_buf *m, int bytes, uint64_t v)
{
    unsigned char b[8];
    tf_wr(b, bytes, v);
    tf_put(m, b, (size_t)bytes);
}
static inline void tf_put_key(tf_buf *m, const char *k, int type)
{
    tf_put_int(m, 2, strlen(k));
    tf_put(m, k, strlen(k));
    tf_put_int(m, 1, (uint64_t)type);
}
static inline void tf_put_str(tf_buf *m, const char *key, const char *s)
{
    tf_put_key(m, key, SPX_META_STR);
    tf_put_int(m, 4, strlen(s));
    tf_put(m, s, strlen(s));
}

/* Replace the metadata section of a valid file by `meta` (a whole section, count included):
 * the table moves, header offsets and CRCs are updated. Returns a new malloc'd buffer. */
static inline unsigned char *tf_replace_meta(const unsigned char *b, size_t len, const unsigned char *meta,
                                             size_t mlen, size_t *outlen)
{
    uint64_t mo = tf_rd(b + TF_MOFF, 8), to = tf_rd(b + TF_TABLE, 8), n = tf_rd(b + TF_COUNT, 4);
    uint64_t nto = (mo + mlen + 7) & ~7ull, nlen = nto + 192 * n;
    unsigned char *o = calloc(nlen, 1);
    (void)len;
    memcpy(o, b, mo);
    memcpy(o + mo, meta, mlen);
    memcpy(o + nto, b + to, 192 * n);
    tf_wr(o + TF_MSIZE, 8, mlen);
    tf_wr(o + TF_TABLE, 8, nto);
    tf_wr(o + TF_FSIZE, 8, nlen);
    tf_reseal(o, nlen);
    *outlen = nlen;
    return o;
}

/* ---- the small base file used by the corrupt matrix and the golden invalid files ----
 * record 0 "a.dense"   F32  dense   [3, 5]  (60 bytes: leaves a 4-byte gap before record 1)
 * record 1 "b.bitmask" F16  bitmask [4, 12] (cols not a multiple of 8: mask padding bits exist)
 * record 2 "c.nm"      F32  nm 2:4  [4, 8]
 * record 3 "d.csr16"   F32  csr16   [4, 8]
 * record 4 "e.csr32"   BF16 csr32   [3, 8]
 * metadata: general.architecture "test", test.count U32 7, test.list ARR U32 {1,2,3}, test.name STR */
static inline float tf_val(uint64_t r, uint64_t c, int nm)
{
    /* multiples of 0.25 in [-4, 4]: exact in F16 and BF16 */
    if (nm)
        return ((c % 4) == (r % 4) || (c % 4) == ((r + 1) % 4)) && (r + c) % 5 ? 0.25f * (float)(1 + r + c) : 0.0f;
    return ((r * 7 + c * 3) % 5 < 2) ? 0.0f : 0.25f * (float)((int)(r * 3 + c) % 16 - 8);
}

static inline void tf_matrix(float *w, uint64_t rows, uint64_t cols, int nm)
{
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t c = 0; c < cols; c++)
            w[r * cols + c] = tf_val(r, c, nm);
}

static inline int tf_add_encoded(spx_writer *w, const char *name, uint64_t rows, uint64_t cols, int enc,
                                 int dtype, int n, int m)
{
    float *x = malloc(rows * cols * sizeof *x);
    spx_tensor t;
    void *blob = NULL;
    size_t size = 0;
    int rc;
    memset(&t, 0, sizeof t);
    tf_matrix(x, rows, cols, enc == SPX_ENC_NM);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.role = SPX_ROLE_MLP;
    t.layer = 0;
    t.expert = SPX_NO_INDEX;
    rc = spx_encode(spx_writer_ctx(w), x, rows, cols, enc, dtype, n, m, &t, &blob, &size);
    if (rc == 0)
        rc = spx_writer_add(w, &t, blob, size);
    free(blob);
    free(x);
    return rc;
}

static inline int tf_make_base(const char *path)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    float d[15];
    uint64_t dims[2] = {3, 5};
    uint32_t list[3] = {1, 2, 3};
    int rc;
    tf_matrix(d, 3, 5, 0);
    if ((rc = spx_writer_open(&ctx, path, "spx-test 1", &w)) < 0)
        return rc;
    if ((rc = spx_writer_add_f32(w, "a.dense", SPX_ROLE_NORM, SPX_NO_INDEX, SPX_NO_INDEX, SPX_DTYPE_F32, d, 2, dims)) ||
        (rc = tf_add_encoded(w, "b.bitmask", 4, 12, SPX_ENC_BITMASK, SPX_DTYPE_F16, 0, 0)) ||
        (rc = tf_add_encoded(w, "c.nm", 4, 8, SPX_ENC_NM, SPX_DTYPE_F32, 2, 4)) ||
        (rc = tf_add_encoded(w, "d.csr16", 4, 8, SPX_ENC_CSR16, SPX_DTYPE_F32, 0, 0)) ||
        (rc = tf_add_encoded(w, "e.csr32", 3, 8, SPX_ENC_CSR32, SPX_DTYPE_BF16, 0, 0)) ||
        (rc = spx_writer_meta_str(w, "general.architecture", "test", 4)) ||
        (rc = spx_writer_meta_u32(w, "test.count", 7)) ||
        (rc = spx_writer_meta_arr(w, "test.list", SPX_META_U32, list, 3)) ||
        (rc = spx_writer_meta_str(w, "test.name", "base", 4)) || (rc = spx_writer_finish(w)))
        fprintf(stderr, "tf_make_base: %s\n", spx_writer_ctx(w)->msg);
    spx_writer_free(w);
    return rc;
}

/* ---- the corrupt-file matrix: one mutation per rule ---- */
typedef struct tf_case {
    const char *name;     /* also the golden file name: tests/golden/invalid/<name>.spx */
    int code;             /* expected error (with SPX_OPEN_VERIFY_DATA) */
    int golden;           /* 1: committed as a golden invalid file */
    /* mutate *b (length *len) in place; may replace the buffer */
    void (*fn)(unsigned char **b, size_t *len);
} tf_case;

#define TF_MUT(nm) static inline void tf_mut_##nm(unsigned char **bp __attribute__((unused)), size_t *len __attribute__((unused)))
#define B (*bp)
#define R(i) tf_rec(B, (i))

TF_MUT(bad_magic) { B[1] = 'Q'; (void)len; }
TF_MUT(byteswapped_magic) { for (int i = 0; i < 4; i++) { unsigned char t = B[i]; B[i] = B[7 - i]; B[7 - i] = t; } (void)len; }
TF_MUT(byteswapped) { tf_wr(B + 8, 2, 0x0100); tf_wr(B + 12, 4, 0x80000000u); tf_reseal(B, *len); }
TF_MUT(future_major) { tf_wr(B + 8, 2, 2); tf_reseal(B, *len); }
TF_MUT(header_size) { tf_wr(B + 12, 4, 256); tf_reseal(B, *len); }
TF_MUT(unknown_feature) { tf_wr(B + 16, 8, 1); tf_reseal(B, *len); }
TF_MUT(reserved_header) { B[115] = 1; tf_reseal(B, *len); }
TF_MUT(short_file) { *len = 5; }
TF_MUT(truncated_header) { *len = 100; }
TF_MUT(truncated_table) { *len -= 100; }
TF_MUT(file_size_small) { tf_wr(B + TF_FSIZE, 8, *len - 8); tf_reseal(B, *len); }
TF_MUT(file_size_large) { tf_wr(B + TF_FSIZE, 8, *len + 8); tf_reseal(B, *len); }
TF_MUT(trailing) { B = realloc(B, *len + 8); memset(B + *len, 0, 8); *len += 8; }
TF_MUT(trailing_after_table)
{
    B = realloc(B, *len + 64);
    memset(B + *len, 0, 64);
    *len += 64;
    tf_wr(B + TF_FSIZE, 8, *len);
    tf_reseal(B, *len);
}
TF_MUT(bad_align) { tf_wr(B + TF_ALIGN, 4, 48); tf_reseal(B, *len); }
TF_MUT(bad_align_npot) { tf_wr(B + TF_ALIGN, 4, 96); tf_reseal(B, *len); }
TF_MUT(table_misaligned) { tf_wr(B + TF_TABLE, 8, tf_rd(B + TF_TABLE, 8) + 4); tf_reseal(B, *len); }
TF_MUT(table_in_header) { tf_wr(B + TF_TABLE, 8, 64); tf_reseal(B, *len); }
TF_MUT(table_count_huge) { tf_wr(B + TF_COUNT, 4, (1u << 24) + 1); tf_reseal(B, *len); }
TF_MUT(table_past_end) { tf_wr(B + TF_COUNT, 4, tf_rd(B + TF_COUNT, 4) + 1); tf_reseal(B, *len); }
TF_MUT(meta_misaligned) { tf_wr(B + TF_MOFF, 8, tf_rd(B + TF_MOFF, 8) + 4); tf_reseal(B, *len); }
TF_MUT(meta_size_small) { tf_wr(B + TF_MSIZE, 8, 2); tf_reseal(B, *len); }
TF_MUT(meta_into_table) { tf_wr(B + TF_MSIZE, 8, tf_rd(B + TF_MSIZE, 8) + 200); tf_reseal(B, *len); }
TF_MUT(misaligned_offset) { tf_wr(R(1) + TF_R_OFF, 8, tf_rd(R(1) + TF_R_OFF, 8) + 8); tf_reseal(B, *len); }
TF_MUT(overlap) { tf_wr(R(2) + TF_R_OFF, 8, tf_rd(R(1) + TF_R_OFF, 8) + 64); tf_reseal(B, *len); }
TF_MUT(descending_offset) { tf_wr(R(3) + TF_R_OFF, 8, tf_rd(R(1) + TF_R_OFF, 8)); tf_reseal(B, *len); }
TF_MUT(offset_in_header) { tf_wr(R(0) + TF_R_OFF, 8, 64); tf_reseal(B, *len); }
TF_MUT(offset_past_meta) { tf_wr(R(4) + TF_R_OFF, 8, tf_rd(B + TF_MOFF, 8) & ~63ull); tf_reseal(B, *len); }
TF_MUT(size_mismatch) { tf_wr(R(0) + TF_R_SIZE, 8, 64); tf_reseal(B, *len); }
TF_MUT(header_crc) { B[124] ^= 0x01; (void)len; }
TF_MUT(header_crc_writer) { B[90] ^= 0x20; (void)len; }
TF_MUT(table_crc) { R(0)[1] ^= 0x01; (void)len; }
TF_MUT(meta_crc) { B[tf_rd(B + TF_MOFF, 8) + 10] ^= 0x01; (void)len; }
TF_MUT(data_crc) { B[tf_rd(R(0) + TF_R_OFF, 8) + 5] ^= 0x40; (void)len; }
TF_MUT(dup_name) { memcpy(R(3), R(1), 96); tf_reseal(B, *len); }
TF_MUT(empty_name) { memset(R(2), 0, 96); tf_reseal(B, *len); }
TF_MUT(unterminated_name) { memset(R(2), 'x', 96); tf_reseal(B, *len); }
TF_MUT(name_padding) { R(2)[90] = 'x'; tf_reseal(B, *len); }
TF_MUT(name_control) { R(2)[1] = '\n'; tf_reseal(B, *len); }
TF_MUT(name_utf8) { R(2)[1] = (unsigned char)0xc3; tf_reseal(B, *len); }
TF_MUT(huge_dims) { tf_wr(R(0) + 104, 8, 1ull << 40); tf_wr(R(0) + 112, 8, 1ull << 40); tf_reseal(B, *len); }
TF_MUT(huge_dims_bytes) { tf_wr(R(0) + 104, 8, 1ull << 62); tf_wr(R(0) + 112, 8, 1); tf_wr(R(0) + TF_R_NNZ, 8, 1ull << 62); tf_reseal(B, *len); }
TF_MUT(zero_dim) { tf_wr(R(0) + 112, 8, 0); tf_reseal(B, *len); }
TF_MUT(ndim_zero) { R(0)[98] = 0; tf_reseal(B, *len); }
TF_MUT(ndim_five) { R(0)[98] = 5; tf_reseal(B, *len); }
TF_MUT(unused_dim) { tf_wr(R(0) + 120, 8, 1); tf_reseal(B, *len); }
TF_MUT(bad_dtype) { R(0)[96] = 9; tf_reseal(B, *len); }
TF_MUT(bad_encoding) { R(0)[97] = 7; tf_reseal(B, *len); }
TF_MUT(sparse_int_dtype) { R(3)[96] = SPX_DTYPE_I32; tf_reseal(B, *len); }
TF_MUT(nm_fields_on_dense) { R(0)[99] = 2; R(0)[100] = 4; tf_reseal(B, *len); }
TF_MUT(nm_bad_m) { R(2)[100] = 3; tf_reseal(B, *len); }
TF_MUT(dense_nnz) { tf_wr(R(0) + TF_R_NNZ, 8, 14); tf_reseal(B, *len); }
TF_MUT(reserved_record) { R(1)[101] = 1; tf_reseal(B, *len); }
TF_MUT(reserved_record_tail) { R(1)[190] = 1; tf_reseal(B, *len); }
TF_MUT(nonzero_gap) { B[tf_rd(R(0) + TF_R_OFF, 8) + 61] = 7; (void)len; }
TF_MUT(nonzero_subarray_pad)
{
    /* bitmask blob of record 1: values nnz*2 bytes then zero padding up to 64 */
    unsigned char *r = R(1);
    uint64_t nnz = tf_rd(r + TF_R_NNZ, 8);
    B[tf_rd(r + TF_R_OFF, 8) + 2 * nnz] = 1;
    tf_reseal_data(B, *len, 1);
}
TF_MUT(nm_count)
{
    /* NM 2:4 blob of record 2: values 4*4 floats (64 bytes) then the mask; add a third bit to group 0 of row 0 */
    unsigned char *m = B + tf_rd(R(2) + TF_R_OFF, 8) + 64;
    for (int j = 0; j < 4; j++)
        if (!(m[0] & (1u << j))) { m[0] = (unsigned char)(m[0] | (1u << j)); break; }
    tf_reseal_data(B, *len, 2);
}
TF_MUT(bitmask_popcount)
{
    /* record 1: row_offsets[1] += 1 (row_offsets at the last 4*8 bytes of the blob) */
    unsigned char *r = R(1);
    unsigned char *ro = B + tf_rd(r + TF_R_OFF, 8) + tf_rd(r + TF_R_SIZE, 8) - 32 + 8;
    tf_wr(ro, 8, tf_rd(ro, 8) + 1);
    tf_reseal_data(B, *len, 1);
}
TF_MUT(bitmask_padding_bits)
{
    /* record 1 has 12 columns: bits 4..7 of byte 1 of every row are padding; mask at blob offset 64
     * (nnz*2 <= 64) */
    unsigned char *r = R(1);
    B[tf_rd(r + TF_R_OFF, 8) + 64 + 1] |= 0x80;
    tf_reseal_data(B, *len, 1);
}
TF_MUT(csr_unsorted)
{
    /* record 3 (csr16): swap the first two column indices of the first row with >= 2 entries */
    unsigned char *r = R(3), *blob = B + tf_rd(r + TF_R_OFF, 8);
    uint64_t nnz = tf_rd(r + TF_R_NNZ, 8), size = tf_rd(r + TF_R_SIZE, 8);
    unsigned char *idx = blob + ((nnz * 4 + 63) & ~63ull), *ptr = blob + size - 8 * 5;
    for (int row = 0; row < 4; row++) {
        uint64_t a = tf_rd(ptr + 8 * row, 8), e = tf_rd(ptr + 8 * row + 8, 8);
        if (e - a >= 2) {
            unsigned char t0 = idx[2 * a], t1 = idx[2 * a + 1];
            idx[2 * a] = idx[2 * a + 2]; idx[2 * a + 1] = idx[2 * a + 3];
            idx[2 * a + 2] = t0; idx[2 * a + 3] = t1;
            break;
        }
    }
    tf_reseal_data(B, *len, 3);
}
TF_MUT(csr_row_ptr)
{
    unsigned char *r = R(4), *blob = B + tf_rd(r + TF_R_OFF, 8);
    unsigned char *last = blob + tf_rd(r + TF_R_SIZE, 8) - 8;
    tf_wr(last, 8, tf_rd(last, 8) - 1);
    tf_reseal_data(B, *len, 4);
}

/* metadata mutations rebuild the section */
static inline void tf_meta_swap(unsigned char **bp, size_t *len, tf_buf *m)
{
    size_t nl;
    unsigned char *o = tf_replace_meta(*bp, *len, m->p, m->n, &nl);
    free(*bp);
    free(m->p);
    *bp = o;
    *len = nl;
}
TF_MUT(dup_key)
{
    tf_buf m = {0};
    tf_put_int(&m, 4, 2);
    tf_put_str(&m, "general.architecture", "test");
    tf_put_str(&m, "general.architecture", "test");
    tf_meta_swap(bp, len, &m);
}
TF_MUT(unsorted_keys)
{
    tf_buf m = {0};
    tf_put_int(&m, 4, 2);
    tf_put_str(&m, "test.b", "x");
    tf_put_str(&m, "test.a", "y");
    tf_meta_swap(bp, len, &m);
}
TF_MUT(meta_str_overflow)
{
    tf_buf m = {0};
    tf_put_int(&m, 4, 1);
    tf_put_key(&m, "test.s", SPX_META_STR);
    tf_put_int(&m, 4, 1000); /* claims 1000 bytes, 3 follow */
    tf_put(&m, "abc", 3);
    tf_meta_swap(bp, len, &m);
}
TF_MUT(meta_bad_key)
{
    tf_buf m = {0};
    tf_put_int(&m, 4, 1);
    tf_put_str(&m, "Test.Upper", "x");
    tf_meta_swap(bp, len, &m);
}
TF_MUT(meta_bad_type)
{
    tf_buf m = {0};
    tf_put_int(&m, 4, 1);
    tf_put_key(&m, "test.t", 9);
    tf_put_int(&m, 4, 0);
    tf_meta_swap(bp, len, &m);
}
TF_MUT(meta_bool)
{
    tf_buf m = {0};
    tf_put_int(&m, 4, 1);
    tf_put_key(&m, "test.b", SPX_META_BOOL);
    tf_put_int(&m, 1, 2);
    tf_meta_swap(bp, len, &m);
}
TF_MUT(meta_arr_huge)
{
    tf_buf m = {0};
    tf_put_int(&m, 4, 1);
    tf_put_key(&m, "test.arr", SPX_META_ARR);
    tf_put_int(&m, 1, SPX_META_STR);
    tf_put_int(&m, 8, 1ull << 60);
    tf_put_int(&m, 4, 0);
    tf_meta_swap(bp, len, &m);
}
TF_MUT(meta_arr_nested)
{
    tf_buf m = {0};
    tf_put_int(&m, 4, 1);
    tf_put_key(&m, "test.arr", SPX_META_ARR);
    tf_put_int(&m, 1, SPX_META_ARR);
    tf_put_int(&m, 8, 0);
    tf_meta_swap(bp, len, &m);
}
TF_MUT(meta_count_huge)
{
    tf_buf m = {0};
    tf_put_int(&m, 4, 0xffffffffu);
    tf_put_str(&m, "test.a", "y");
    tf_meta_swap(bp, len, &m);
}
TF_MUT(meta_trailing)
{
    tf_buf m = {0};
    tf_put_int(&m, 4, 1);
    tf_put_str(&m, "test.a", "y");
    tf_put_int(&m, 2, 0);
    tf_meta_swap(bp, len, &m);
}
TF_MUT(meta_str_nul)
{
    tf_buf m = {0};
    tf_put_int(&m, 4, 1);
    tf_put_key(&m, "test.s", SPX_META_STR);
    tf_put_int(&m, 4, 3);
    tf_put(&m, "a\0b", 3);
    tf_meta_swap(bp, len, &m);
}
#undef B
#undef R

#ifdef TF_WITH_CASES
#define TF_CASE(nm, code, golden) {#nm, code, golden, tf_mut_##nm}
static const tf_case tf_cases[] = {
    TF_CASE(bad_magic, SPX_E_BAD_MAGIC, 1),
    TF_CASE(byteswapped_magic, SPX_E_BYTESWAPPED, 0),
    TF_CASE(byteswapped, SPX_E_BYTESWAPPED, 1),
    TF_CASE(future_major, SPX_E_VERSION, 1),
    TF_CASE(header_size, SPX_E_VERSION, 0),
    TF_CASE(unknown_feature, SPX_E_FEATURE, 1),
    TF_CASE(reserved_header, SPX_E_RESERVED, 1),
    TF_CASE(short_file, SPX_E_BAD_MAGIC, 0),
    TF_CASE(truncated_header, SPX_E_TRUNCATED, 1),
    TF_CASE(truncated_table, SPX_E_TRUNCATED, 1),
    TF_CASE(file_size_small, SPX_E_TRAILING, 0),
    TF_CASE(file_size_large, SPX_E_TRUNCATED, 0),
    TF_CASE(trailing, SPX_E_TRAILING, 1),
    TF_CASE(trailing_after_table, SPX_E_TRAILING, 0),
    TF_CASE(bad_align, SPX_E_ALIGN, 1),
    TF_CASE(bad_align_npot, SPX_E_ALIGN, 0),
    TF_CASE(table_misaligned, SPX_E_ALIGN, 0),
    TF_CASE(table_in_header, SPX_E_TABLE, 0),
    TF_CASE(table_count_huge, SPX_E_TABLE, 0),
    TF_CASE(table_past_end, SPX_E_TRUNCATED, 1),
    TF_CASE(meta_misaligned, SPX_E_ALIGN, 0),
    TF_CASE(meta_size_small, SPX_E_META, 0),
    TF_CASE(meta_into_table, SPX_E_META, 0),
    TF_CASE(misaligned_offset, SPX_E_ALIGN, 1),
    TF_CASE(overlap, SPX_E_OVERLAP, 1),
    TF_CASE(descending_offset, SPX_E_OFFSET, 1),
    TF_CASE(offset_in_header, SPX_E_OFFSET, 0),
    TF_CASE(offset_past_meta, SPX_E_OFFSET, 0),
    TF_CASE(size_mismatch, SPX_E_SIZE, 1),
    TF_CASE(header_crc, SPX_E_HEADER_CRC, 1),
    TF_CASE(header_crc_writer, SPX_E_HEADER_CRC, 0),
    TF_CASE(table_crc, SPX_E_TABLE_CRC, 1),
    TF_CASE(meta_crc, SPX_E_META_CRC, 1),
    TF_CASE(data_crc, SPX_E_DATA_CRC, 1),
    TF_CASE(dup_name, SPX_E_DUP_NAME, 1),
    TF_CASE(empty_name, SPX_E_NAME, 1),
    TF_CASE(unterminated_name, SPX_E_NAME, 1),
    TF_CASE(name_padding, SPX_E_NAME, 0),
    TF_CASE(name_control, SPX_E_NAME, 0),
    TF_CASE(name_utf8, SPX_E_NAME, 0),
    TF_CASE(huge_dims, SPX_E_DIMS, 1),
    TF_CASE(huge_dims_bytes, SPX_E_DIMS, 0),
    TF_CASE(zero_dim, SPX_E_DIMS, 0),
    TF_CASE(ndim_zero, SPX_E_DIMS, 0),
    TF_CASE(ndim_five, SPX_E_DIMS, 0),
    TF_CASE(unused_dim, SPX_E_DIMS, 0),
    TF_CASE(bad_dtype, SPX_E_DTYPE, 1),
    TF_CASE(bad_encoding, SPX_E_ENCODING, 1),
    TF_CASE(sparse_int_dtype, SPX_E_ENCODING, 0),
    TF_CASE(nm_fields_on_dense, SPX_E_ENCODING, 0),
    TF_CASE(nm_bad_m, SPX_E_ENCODING, 0),
    TF_CASE(dense_nnz, SPX_E_ENCODING, 0),
    TF_CASE(reserved_record, SPX_E_RESERVED, 1),
    TF_CASE(reserved_record_tail, SPX_E_RESERVED, 0),
    TF_CASE(nonzero_gap, SPX_E_GAP, 1),
    TF_CASE(nonzero_subarray_pad, SPX_E_GAP, 0),
    TF_CASE(nm_count, SPX_E_SPARSE, 1),
    TF_CASE(bitmask_popcount, SPX_E_SPARSE, 1),
    TF_CASE(bitmask_padding_bits, SPX_E_SPARSE, 0),
    TF_CASE(csr_unsorted, SPX_E_SPARSE, 1),
    TF_CASE(csr_row_ptr, SPX_E_SPARSE, 0),
    TF_CASE(dup_key, SPX_E_DUP_KEY, 1),
    TF_CASE(unsorted_keys, SPX_E_META, 1),
    TF_CASE(meta_str_overflow, SPX_E_META, 1),
    TF_CASE(meta_bad_key, SPX_E_META, 0),
    TF_CASE(meta_bad_type, SPX_E_META, 0),
    TF_CASE(meta_bool, SPX_E_META, 0),
    TF_CASE(meta_arr_huge, SPX_E_META, 0),
    TF_CASE(meta_arr_nested, SPX_E_META, 0),
    TF_CASE(meta_count_huge, SPX_E_META, 0),
    TF_CASE(meta_trailing, SPX_E_META, 0),
    TF_CASE(meta_str_nul, SPX_E_META, 0),
};
#define TF_NCASES (sizeof tf_cases / sizeof tf_cases[0])
#endif

#endif
