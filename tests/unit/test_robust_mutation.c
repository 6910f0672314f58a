/* test_robust_mutation.c: truncation and bit-flip robustness of the .spx and safetensors readers.
 *
 * Files: (1) the real stories260K model converted with `$SPX convert` (skipped when ../shared or
 * $SPX is absent) and (2) a synthetic .spx written here with the writer API holding every sparse
 * encoding, F16/BF16 values and metadata of every type; safetensors: (1) the real
 * stories260K-hf/model.safetensors and (2) a synthetic one written with spx_st_write_file.
 * All opens are spx_file_open_mem / spx_st_open_mem on one in-memory buffer (mutated in place and
 * restored, which is a fresh copy for every trial).
 *
 * Truncation: every length up to the end of the header, and every length from the start of the
 * metadata to the end (.spx: header 128 B, then data, then metadata + table); for safetensors
 * every length up to 8 + N (length prefix + JSON header); the data region is sampled every 4093
 * bytes. Each must fail with an error code and a message. A second .spx pass "re-seals" every
 * truncation (file_size and header CRC patched to the new length) so that the section bounds,
 * not just the size field, must catch it.
 * Bit flips (seeded xorshift, deterministic): 10,000 single-bit flips uniformly over each file,
 * plus 10,000 restricted to the non-data bytes (header/metadata/table; safetensors JSON header),
 * plus every bit of the .spx header. For .spx every byte is covered by a CRC or a zero-padding
 * rule, so every flip must be rejected when opened with SPX_OPEN_VERIFY_DATA: zero undetected flips
 * are asserted. Safetensors has no checksum: a flip inside tensor data is undetectable and a flip
 * in a JSON string (a tensor name, a metadata value) may yield another valid file. Those are
 * counted and reported; what is asserted is no crash and that every accepted file is consistent
 * (tensors tile the data region, numel * width == byte length, F32/F16/BF16 data converts). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "spx_format.h"
#include "spx_safetensors.h"
#include "spx_st_write.h"
#include "spx_test.h"

#define N_FLIPS 10000

typedef struct buf {
    unsigned char *p;
    size_t n;
} buf;

static buf slurp(const char *path)
{
    buf b = {NULL, 0};
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return b;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    if (n > 0 && (b.p = malloc((size_t)n)) != NULL)
        b.n = fread(b.p, 1, (size_t)n, fp);
    fclose(fp);
    return b;
}

static uint64_t rd64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void wr64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* ---- .spx ------------------------------------------------------------------------------ */

static int spx_open_rc(const unsigned char *p, size_t n, const char *label, unsigned flags)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_file *f = NULL;
    int rc = spx_file_open_mem(&ctx, p, n, label, flags, &f);
    if (rc < 0 && (!ctx.msg[0] || ctx.code != rc)) {
        CHECK_MSG(0, "%s: open failed with %d but no message", label, rc);
    }
    spx_file_free(f);
    return rc;
}

static void spx_truncations(const buf *b, const char *label)
{
    uint64_t meta_off = rd64(b->p + 56);
    unsigned char *tmp = malloc(b->n);
    size_t tested = 0, undetected = 0, resealed_undetected = 0;
    if (!tmp)
        return;
    memcpy(tmp, b->p, b->n);   /* only the header of this copy changes from one length to the next */
    for (size_t len = 0; len < b->n; len++) {
        if (len > 128 && len < meta_off && (len % 4093) != 0)
            continue;   /* sample the data region */
        tested++;
        if (spx_open_rc(b->p, len, label, 0) >= 0)
            undetected++;
        if (len < 128)
            continue;
        /* re-sealed: header claims exactly `len` bytes, header CRC valid */
        wr64(tmp + 32, len);
        wr32(tmp + 124, (uint32_t)crc32(0L, tmp, 124));
        if (spx_open_rc(tmp, len, label, SPX_OPEN_VERIFY_DATA) >= 0)
            resealed_undetected++;
    }
    printf("%s: %zu truncations, %zu accepted, %zu re-sealed accepted\n", label, tested, undetected,
           resealed_undetected);
    CHECK_MSG(undetected == 0 && resealed_undetected == 0, "%s: truncated files opened", label);
    free(tmp);
}

/* One flip at bit `bit`: returns 1 when the mutated file is rejected. */
static int spx_flip_detected(buf *b, uint64_t bit, const char *label, int *codes)
{
    b->p[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    int rc = spx_open_rc(b->p, b->n, label, SPX_OPEN_VERIFY_DATA);
    b->p[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    if (rc < 0 && rc > -64)
        codes[-rc]++;
    if (rc >= 0)
        fprintf(stderr, "%s: flip of bit %llu (byte %llu) not detected\n", label, (unsigned long long)bit,
                (unsigned long long)(bit / 8));
    return rc < 0;
}

static void spx_flips(buf *b, const char *label, uint64_t seed)
{
    int codes[64] = {0};
    uint64_t s = seed, meta_off = rd64(b->p + 56), tail = b->n - meta_off;
    size_t trials = 0, detected = 0;
    CHECK_MSG(spx_open_rc(b->p, b->n, label, SPX_OPEN_VERIFY_DATA) == 0, "%s: the unmodified file must open", label);
    for (uint64_t bit = 0; bit < 128 * 8; bit++, trials++)
        detected += (size_t)spx_flip_detected(b, bit, label, codes);
    for (int i = 0; i < N_FLIPS; i++, trials++)
        detected += (size_t)spx_flip_detected(b, spx_test_rand(&s) % (8 * (uint64_t)b->n), label, codes);
    for (int i = 0; i < N_FLIPS; i++, trials++) {
        uint64_t byte = meta_off + spx_test_rand(&s) % tail;
        detected += (size_t)spx_flip_detected(b, 8 * byte + spx_test_rand(&s) % 8, label, codes);
    }
    printf("%s: %zu bytes, %zu single-bit flips, %zu detected; by code:", label, b->n, trials, detected);
    for (int c = 0; c < 64; c++)
        if (codes[c])
            printf(" %s %d", spx_err_name(-c), codes[c]);
    printf("\n");
    CHECK_MSG(detected == trials, "%s: %zu of %zu flips undetected", label, trials - detected, trials);
}

/* Synthetic .spx: every encoding, F16/BF16 values, metadata of every type (writer API). */
static void write_synthetic_spx(const char *path)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    float m[24 * 40];
    uint64_t s = 7;
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        m[i] = (i % 4 < 2) ? (float)spx_test_normal(&s) : 0.0f;   /* 2:4-compatible */
    CHECK_RC(spx_writer_open(&ctx, path, "test_robust_mutation", &w), 0);
    if (!w)
        return;
    static const int enc[5] = {SPX_ENC_DENSE, SPX_ENC_BITMASK, SPX_ENC_NM, SPX_ENC_CSR16, SPX_ENC_CSR32};
    static const int dt[5] = {SPX_DTYPE_F32, SPX_DTYPE_F16, SPX_DTYPE_BF16, SPX_DTYPE_F32, SPX_DTYPE_F16};
    for (int e = 0; e < 5; e++) {
        spx_tensor t;
        void *blob = NULL;
        size_t size = 0;
        int nm = enc[e] == SPX_ENC_NM;
        CHECK_RC(spx_encode(&ctx, m, 24, 40, enc[e], dt[e], nm ? 2 : 0, nm ? 4 : 0, &t, &blob, &size), 0);
        snprintf(t.name, sizeof t.name, "blk.%d.ffn_up.weight", e);
        t.role = SPX_ROLE_MLP;
        t.layer = (uint32_t)e;
        t.expert = SPX_NO_INDEX;
        CHECK_RC(spx_writer_add(w, &t, blob, size), 0);
        free(blob);
    }
    uint64_t d1[1] = {7};
    CHECK_RC(spx_writer_add_f32(w, "odd.bias", SPX_ROLE_OTHER, SPX_NO_INDEX, SPX_NO_INDEX, SPX_DTYPE_BF16, m, 1, d1), 0);
    uint32_t arr[3] = {1, 2, 3};
    const char *strs[2] = {"x", "\xe2\x96\x81y"};
    CHECK_RC(spx_writer_meta_u32(w, "a.u32", 5), 0);
    CHECK_RC(spx_writer_meta_f64(w, "a.f64", 0.25), 0);
    CHECK_RC(spx_writer_meta_bool(w, "a.bool", 1), 0);
    CHECK_RC(spx_writer_meta_str(w, "a.str", "text", 4), 0);
    CHECK_RC(spx_writer_meta_arr(w, "a.arr", SPX_META_U32, arr, 3), 0);
    CHECK_RC(spx_writer_meta_arr_str(w, "a.strs", strs, NULL, 2), 0);
    CHECK_RC(spx_writer_finish(w), 0);
    spx_writer_free(w);
}

/* ---- safetensors ------------------------------------------------------------------------- */

typedef struct st_stats {
    size_t trials, rejected, same_header, changed_header;
} st_stats;

/* Conversion buffer shared by all trials of one file (a fresh large malloc per tensor and trial
 * dominates the run time under ASan): st_conv_cap floats. */
static float *st_conv;
static uint64_t st_conv_cap;

/* Consistency of an accepted file (no checksum to compare against). */
static void st_check_accepted(const spx_st_file *f, size_t n, const char *label)
{
    uint64_t start = 8 + spx_st_header_len(f), end = 0;
    for (size_t i = 0; i < spx_st_count(f); i++) {
        const spx_st_tensor *t = spx_st_tensor_at(f, i);
        unsigned bits = spx_st_dtype_bits(t->dtype);
        CHECK_MSG(t->begin == end && t->end >= t->begin, "%s: tensor '%s' does not follow the previous one", label,
                  t->name);
        CHECK_MSG(bits % 8 != 0 || t->numel * (bits / 8) == t->end - t->begin, "%s: '%s' size", label, t->name);
        end = t->end;
        if ((t->dtype == SPX_ST_F32 || t->dtype == SPX_ST_F16 || t->dtype == SPX_ST_BF16) && t->numel <= st_conv_cap) {
            spx_ctx ctx = SPX_CTX_INIT;
            CHECK_MSG(spx_st_to_f32(&ctx, f, t, st_conv) == 0, "%s: '%s' does not convert", label, t->name);
        }
    }
    CHECK_MSG(start + end == n, "%s: tensors end at %llu, file at %zu", label, (unsigned long long)(start + end), n);
}

/* Open; 0 rejected, 1 accepted with the original header bytes, 2 accepted with a different header. */
static int st_try(const unsigned char *p, size_t n, uint64_t hdr_end, const unsigned char *orig_hdr, const char *label)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_st_file *f = NULL;
    int rc = spx_st_open_mem(&ctx, p, n, label, &f);
    if (rc < 0) {
        CHECK_MSG(ctx.msg[0] && ctx.code == rc, "%s: failure %d without a message", label, rc);
        return 0;
    }
    int same = n >= hdr_end && memcmp(p, orig_hdr, (size_t)hdr_end) == 0;
    if (!same)
        st_check_accepted(f, n, label);
    spx_st_free(f);
    return same ? 1 : 2;
}

static void st_flip(buf *b, uint64_t bit, uint64_t hdr_end, const unsigned char *orig, const char *label, st_stats *s)
{
    b->p[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    int r = st_try(b->p, b->n, hdr_end, orig, label);
    b->p[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    s->trials++;
    s->rejected += r == 0;
    s->same_header += r == 1;
    s->changed_header += r == 2;
}

static void st_mutations(buf *b, const char *label, uint64_t seed)
{
    uint64_t hdr_end = 8 + rd64(b->p), s = seed;
    size_t trunc = 0, trunc_ok = 0;
    unsigned char *orig = malloc((size_t)hdr_end);
    st_stats uni = {0, 0, 0, 0}, hdr = {0, 0, 0, 0};
    if (!orig)
        return;
    memcpy(orig, b->p, (size_t)hdr_end);
    st_conv_cap = b->n / 2;   /* an accepted file holds at most n/2 elements of 16 bits or more */
    st_conv = malloc((size_t)st_conv_cap * sizeof *st_conv + 1);
    if (!st_conv)
        st_conv_cap = 0;
    CHECK_MSG(st_try(b->p, b->n, hdr_end, orig, label) == 1, "%s: the unmodified file must open", label);
    for (size_t len = 0; len < b->n; len++) {
        if (len > hdr_end && len % 4093 != 0)
            continue;
        trunc++;
        trunc_ok += st_try(b->p, len, hdr_end, orig, label) != 0;
    }
    printf("%s: %zu truncations (every byte of the %llu-byte prefix + header), %zu accepted\n", label, trunc,
           (unsigned long long)hdr_end, trunc_ok);
    CHECK_MSG(trunc_ok == 0, "%s: truncated safetensors accepted", label);
    for (int i = 0; i < N_FLIPS; i++)
        st_flip(b, spx_test_rand(&s) % (8 * (uint64_t)b->n), hdr_end, orig, label, &uni);
    for (int i = 0; i < N_FLIPS; i++)
        st_flip(b, spx_test_rand(&s) % (8 * hdr_end), hdr_end, orig, label, &hdr);
    printf("%s: %zu uniform flips: %zu rejected, %zu undetectable (tensor data), %zu accepted header changes\n",
           label, uni.trials, uni.rejected, uni.same_header, uni.changed_header);
    printf("%s: %zu header flips: %zu rejected, %zu accepted header changes (names/metadata/whitespace)\n", label,
           hdr.trials, hdr.rejected, hdr.changed_header);
    CHECK(hdr.same_header == 0);
    free(orig);
    free(st_conv);
    st_conv = NULL;
    st_conv_cap = 0;
}

static int fill_st(spx_ctx *ctx, void *ud, size_t index, const spx_st_spec *spec, spx_st_writer *w)
{
    uint64_t bytes = spx_st_dtype_bytes(spec->dtype);
    unsigned char chunk[512];
    (void)ud;
    for (uint32_t i = 0; i < spec->ndim; i++)
        bytes *= spec->shape[i];
    for (size_t i = 0; i < sizeof chunk; i++)
        chunk[i] = (unsigned char)(i * 31 + index * 7 + 1);
    int rc = 0;
    while (bytes > 0 && rc == 0) {
        size_t k = bytes < sizeof chunk ? (size_t)bytes : sizeof chunk;
        rc = spx_st_writer_write(ctx, w, chunk, k);
        bytes -= k;
    }
    return rc;
}

static void write_synthetic_st(const char *path)
{
    spx_ctx ctx = SPX_CTX_INIT;
    static const spx_st_spec specs[] = {
        {"model.embed_tokens.weight", "F32", 2, {16, 8}}, {"model.norm.weight", "BF16", 1, {8}},
        {"model.layers.0.mlp.up_proj.weight", "F16", 2, {12, 8}}, {"scalar", "F64", 0, {0}},
        {"ids", "I32", 1, {5}}, {"empty", "F32", 2, {0, 3}},
    };
    static const spx_st_kv meta[1] = {{"format", "pt"}};
    CHECK_RC(spx_st_write_file(&ctx, path, specs, sizeof specs / sizeof specs[0], meta, 1, fill_st, NULL, NULL), 0);
}

int spx_test_main(void)
{
    const char *tmp = spx_test_tmpdir(), *shared = spx_test_env("SPX_SHARED"), *spx = spx_test_env("SPX");
    char cmd[8192], hf[4096];
    int have_real = 0;
    write_synthetic_spx(spx_test_path(tmp, "synthetic.spx"));
    write_synthetic_st(spx_test_path(tmp, "synthetic.safetensors"));
    snprintf(hf, sizeof hf, "%s/models/stories260K-hf", shared ? shared : "/nonexistent");
    if (shared && spx && spx_test_exists(hf)) {
        snprintf(cmd, sizeof cmd, "'%s' convert '%s' -o '%s' >/dev/null", spx, hf, spx_test_path(tmp, "real.spx"));
        CHECK_MSG(system(cmd) == 0, "%s failed", cmd);
        have_real = 1;
    } else {
        printf("note: ../shared or $SPX absent: only the synthetic files are mutated\n");
    }
    static const char *const spx_files[2] = {"synthetic.spx", "real.spx"};
    for (int i = 0; i < 1 + have_real; i++) {
        buf b = slurp(spx_test_path(tmp, spx_files[i]));
        CHECK_MSG(b.n >= 128, "cannot read %s", spx_files[i]);
        if (b.n >= 128) {
            spx_truncations(&b, spx_files[i]);
            spx_flips(&b, spx_files[i], i ? 0x5eed0001u : 0x5eed0000u);
        }
        free(b.p);
    }
    char real_st[4200];
    snprintf(real_st, sizeof real_st, "%s/model.safetensors", hf);
    const char *st_files[2] = {spx_test_path(tmp, "synthetic.safetensors"), real_st};
    for (int i = 0; i < 1 + have_real; i++) {
        buf b = slurp(st_files[i]);
        CHECK_MSG(b.n >= 8, "cannot read %s", st_files[i]);
        if (b.n >= 8)
            st_mutations(&b, i ? "real model.safetensors" : "synthetic.safetensors", i ? 0x57000001u : 0x57000000u);
        free(b.p);
    }
    return 0;
}
