/* spx_llama2c.c: llama2.c legacy checkpoint reader (layout in spx_llama2c.h). */
#include "spx_llama2c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_archmap.h"
#include "spx_ckd.h"
#include "spx_io.h"

/* The arrays of the file, in file order. */
enum { A_EMB, A_RMS_ATT, A_WQ, A_WK, A_WV, A_WO, A_RMS_FFN, A_W1, A_W2, A_W3, A_RMS_FINAL,
       A_FREQ_REAL, A_FREQ_IMAG, A_WCLS, A_COUNT };

static const char *const array_names[A_COUNT] = {
    "token_embedding", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final",
    "freq_cis_real", "freq_cis_imag", "wcls"};

/* Canonical tensor -> array (a data table like spx_archmap's, for a positional format). */
static const struct {
    const char *base, *suffix;
    int array;
    int per_layer;
    int xform;
} l2c_map[] = {
    {"token_embd", "weight", A_EMB, 0, SPX_XFORM_NONE},
    {"attn_norm", "weight", A_RMS_ATT, 1, SPX_XFORM_NONE},
    {"attn_q", "weight", A_WQ, 1, SPX_XFORM_ROPE_DEINTERLEAVE},
    {"attn_k", "weight", A_WK, 1, SPX_XFORM_ROPE_DEINTERLEAVE},
    {"attn_v", "weight", A_WV, 1, SPX_XFORM_NONE},
    {"attn_output", "weight", A_WO, 1, SPX_XFORM_NONE},
    {"ffn_norm", "weight", A_RMS_FFN, 1, SPX_XFORM_NONE},
    {"ffn_gate", "weight", A_W1, 1, SPX_XFORM_NONE},
    {"ffn_down", "weight", A_W2, 1, SPX_XFORM_NONE},
    {"ffn_up", "weight", A_W3, 1, SPX_XFORM_NONE},
    {"output_norm", "weight", A_RMS_FINAL, 0, SPX_XFORM_NONE},
    {"output", "weight", A_WCLS, 0, SPX_XFORM_NONE},
};

struct spx_llama2c {
    char *path;
    const unsigned char *buf;
    size_t len;
    void *map;
    spx_model_config cfg;
    int unshared;
    uint64_t rows[A_COUNT], cols[A_COUNT];   /* per-layer slice shape (cols 0 for vectors) */
    uint64_t count[A_COUNT];                 /* slices: n_layers for per-layer arrays, else 1 */
    uint64_t off[A_COUNT];                   /* byte offset of each array (0 when absent) */
    char skipped[2][96];
};

static int32_t rd_i32(const unsigned char *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    int32_t v;
    memcpy(&v, &u, 4);
    return v;
}

static int parse(spx_ctx *ctx, spx_llama2c *m)
{
    int rc = 0;
    static const char *const fields[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads",
                                          "vocab_size", "max_seq_len"};
    static const int32_t caps[7] = {1 << 20, 1 << 22, 4096, 4096, 4096, 1 << 24, 1 << 24};
    int32_t h[7];
    if (m->len < SPX_LLAMA2C_HEADER_BYTES)
        SPX_FAIL(ctx, rc, SPX_E_LLAMA2C, "%s: file is %zu bytes, shorter than the 28-byte llama2.c header (data runs out at byte %zu)",
                 m->path, m->len, m->len);
    for (int i = 0; i < 7; i++) {
        h[i] = rd_i32(m->buf + 4 * i);
        int32_t v = h[i];
        if (i == 5 && v < 0 && v != INT32_MIN)
            v = -v;   /* negative vocab_size flags an unshared classifier */
        if (v <= 0 || v > caps[i])
            SPX_FAIL(ctx, rc, SPX_E_LLAMA2C, "%s: header field %s = %d (byte %d) is out of range (1..%d)", m->path,
                     fields[i], h[i], 4 * i, caps[i]);
    }
    uint64_t dim = (uint64_t)h[0], hid = (uint64_t)h[1], L = (uint64_t)h[2], nh = (uint64_t)h[3];
    uint64_t nkv = (uint64_t)h[4], seq = (uint64_t)h[6];
    m->unshared = h[5] < 0;
    uint64_t vocab = (uint64_t)(m->unshared ? -(int64_t)h[5] : h[5]);
    if (dim % nh)
        SPX_FAIL(ctx, rc, SPX_E_LLAMA2C, "%s: dim %llu is not a multiple of n_heads %llu", m->path,
                 (unsigned long long)dim, (unsigned long long)nh);
    if (nkv > nh || nh % nkv)
        SPX_FAIL(ctx, rc, SPX_E_LLAMA2C, "%s: n_kv_heads %llu does not divide n_heads %llu", m->path,
                 (unsigned long long)nkv, (unsigned long long)nh);
    uint64_t hs = dim / nh, kv = hs * nkv;
    if (hs % 2)
        SPX_FAIL(ctx, rc, SPX_E_LLAMA2C, "%s: head size %llu is odd (rotary embeddings need pairs)", m->path,
                 (unsigned long long)hs);
    const uint64_t shape[A_COUNT][3] = {   /* slices, rows, cols */
        {1, vocab, dim}, {L, dim, 0}, {L, dim, dim}, {L, kv, dim}, {L, kv, dim}, {L, dim, dim}, {L, dim, 0},
        {L, hid, dim}, {L, dim, hid}, {L, hid, dim}, {1, dim, 0}, {1, seq, hs / 2}, {1, seq, hs / 2},
        {m->unshared ? 1u : 0u, vocab, dim}};
    uint64_t pos = SPX_LLAMA2C_HEADER_BYTES;
    for (int a = 0; a < A_COUNT; a++) {
        uint64_t n, bytes, end;
        m->count[a] = shape[a][0];
        m->rows[a] = shape[a][1];
        m->cols[a] = shape[a][2];
        if (spx_ckd_mul_u64(shape[a][0], shape[a][1], &n) || spx_ckd_mul_u64(n, shape[a][2] ? shape[a][2] : 1, &n) ||
            spx_ckd_mul_u64(n, 4, &bytes) || spx_ckd_add_u64(pos, bytes, &end))
            SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "%s: size of array %s overflows", m->path, array_names[a]);
        m->off[a] = pos;
        if (end > m->len)
            SPX_FAIL(ctx, rc, SPX_E_LLAMA2C, "%s: truncated: data runs out at byte %zu inside array %s "
                     "(bytes %llu..%llu); expected at least %llu bytes", m->path, m->len, array_names[a],
                     (unsigned long long)pos, (unsigned long long)end, (unsigned long long)end);
        pos = end;
    }
    if (pos != m->len)
        SPX_FAIL(ctx, rc, SPX_E_LLAMA2C, "%s: %llu trailing bytes at byte %llu after the last array (%s)", m->path,
                 (unsigned long long)(m->len - pos), (unsigned long long)pos,
                 m->unshared ? "wcls" : "freq_cis_imag; vocab_size > 0 means no separate classifier");
    spx_model_config *c = &m->cfg;
    spx_config_init_llama(c);
    c->vocab_size = (uint32_t)vocab;
    c->context_length = (uint32_t)seq;
    c->dim = (uint32_t)dim;
    c->ffn_dim = (uint32_t)hid;
    c->n_layers = (uint32_t)L;
    c->n_heads = (uint32_t)nh;
    c->n_kv_heads = (uint32_t)nkv;
    c->head_dim = (uint32_t)hs;
    c->rope_dim = (uint32_t)hs;
    c->tied_embeddings = !m->unshared;
    c->bos_id = 1;
    c->eos_id = 2;
    snprintf(m->skipped[0], sizeof m->skipped[0], "freq_cis_real [%llu, %llu] (precomputed rotary table)",
             (unsigned long long)seq, (unsigned long long)(hs / 2));
    snprintf(m->skipped[1], sizeof m->skipped[1], "freq_cis_imag [%llu, %llu] (precomputed rotary table)",
             (unsigned long long)seq, (unsigned long long)(hs / 2));
    rc = spx_config_validate(ctx, c);
    if (rc < 0)
        spx_err_prefix(ctx, "%s: ", m->path);
done:
    return rc;
}

static int finish_open(spx_ctx *ctx, spx_llama2c *m, spx_llama2c **out)
{
    int rc = parse(ctx, m);
    if (rc < 0) {
        spx_llama2c_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int spx_llama2c_open_mem(spx_ctx *ctx, const void *buf, size_t len, const char *label, spx_llama2c **out)
{
    *out = NULL;
    spx_llama2c *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(label ? label : "<memory>"))) {
        free(m);
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
    }
    m->buf = buf;
    m->len = len;
    return finish_open(ctx, m, out);
}

int spx_llama2c_open(spx_ctx *ctx, const char *path, spx_llama2c **out)
{
    int rc = 0;
    spx_llama2c *m = calloc(1, sizeof *m);
    *out = NULL;
    if (!m || !(m->path = strdup(path)))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    SPX_TRY(rc, spx_io_map_file(ctx, path, "llama2.c checkpoint", &m->map, &m->len));
    m->buf = m->map ? (const unsigned char *)m->map : (const unsigned char *)"";
    rc = finish_open(ctx, m, out);
    m = NULL;
done:
    spx_llama2c_free(m);
    return rc;
}

void spx_llama2c_free(spx_llama2c *m)
{
    if (!m)
        return;
    spx_io_unmap(m->map, m->len);
    free(m->path);
    free(m);
}

const char *spx_llama2c_path(const spx_llama2c *m) { return m->path; }
const spx_model_config *spx_llama2c_config(const spx_llama2c *m) { return &m->cfg; }
size_t spx_llama2c_skipped_count(const spx_llama2c *m) { (void)m; return 2; }
const char *spx_llama2c_skipped(const spx_llama2c *m, size_t i) { return i < 2 ? m->skipped[i] : NULL; }

int spx_llama2c_find(const spx_llama2c *m, const char *base, const char *suffix, uint32_t layer,
                     spx_llama2c_tensor *out)
{
    for (size_t i = 0; i < sizeof l2c_map / sizeof l2c_map[0]; i++) {
        if (strcmp(l2c_map[i].base, base) != 0 || strcmp(l2c_map[i].suffix, suffix) != 0)
            continue;
        int a = l2c_map[i].array;
        uint64_t slice = l2c_map[i].per_layer ? layer : 0;
        if (m->count[a] == 0 || slice >= m->count[a])
            return 0;
        /* sizes were checked against the file size at open, so these products cannot overflow */
        memset(out, 0, sizeof *out);
        out->ndim = m->cols[a] ? 2 : 1;
        out->dims[0] = m->rows[a];
        out->dims[1] = m->cols[a];
        out->numel = m->rows[a] * (m->cols[a] ? m->cols[a] : 1);
        out->offset = m->off[a] + slice * out->numel * 4;
        out->data = m->buf + out->offset;
        out->xform = l2c_map[i].xform;
        if (l2c_map[i].per_layer)
            snprintf(out->src_name, sizeof out->src_name, "%s[%u]", array_names[a], layer);
        else
            snprintf(out->src_name, sizeof out->src_name, "%s", array_names[a]);
        return 1;
    }
    return 0;
}
