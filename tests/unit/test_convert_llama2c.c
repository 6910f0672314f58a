/* test_convert_llama2c.c: llama2.c .bin reader, the rotary row permutation, and the real
 * stories260K .bin against the same weights in HF layout (bit-for-bit after permutation). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_archmap.h"
#include "spx_convert.h"
#include "spx_format.h"
#include "spx_llama2c.h"
#include "spx_safetensors.h"
#include "spx_test.h"
#include "spx_tokenizer.h"
#include "test_convert_util.h"

/* ---- synthetic checkpoints ------------------------------------------------------------------ */

/* dim 8, hidden 12, 2 layers, 4 heads (hs 2), 2 kv heads (kv 4), vocab 10, seq 3. Value k of the
 * file's float array is (float)k, so every tensor's offset can be checked from its first value. */
static unsigned char *make_bin(int32_t vocab_field, size_t *len)
{
    const int32_t h[7] = {8, 12, 2, 4, 2, vocab_field, 3};
    size_t v = (size_t)(vocab_field < 0 ? -vocab_field : vocab_field);
    size_t floats = v * 8 + 2 * 8 + 2 * 64 + 2 * 32 * 2 + 2 * 64 + 2 * 8 + 3 * 2 * 96 + 8 + 2 * 3 * 1 +
                    (vocab_field < 0 ? v * 8 : 0);
    *len = 28 + 4 * floats;
    unsigned char *b = malloc(*len);
    memcpy(b, h, 28);
    for (size_t k = 0; k < floats; k++) {
        float f = (float)k;
        memcpy(b + 28 + 4 * k, &f, 4);
    }
    return b;
}

static float first_value(const spx_llama2c_tensor *t)
{
    float f;
    memcpy(&f, t->data, 4);
    return f;
}

static void test_synthetic(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_llama2c *m = NULL;
    size_t len;
    unsigned char *b = make_bin(10, &len);
    CHECK_RC(spx_llama2c_open_mem(&ctx, b, len, "s.bin", &m), 0);
    if (m) {
        const spx_model_config *c = spx_llama2c_config(m);
        CHECK(c->dim == 8 && c->ffn_dim == 12 && c->n_layers == 2 && c->n_heads == 4 && c->n_kv_heads == 2);
        CHECK(c->head_dim == 2 && c->vocab_size == 10 && c->context_length == 3 && c->tied_embeddings);
        CHECK(c->norm_eps == 1e-5f && c->rope_theta == 10000.0f && c->act == SPX_ACT_SILU && c->gated);
        CHECK(c->bos_id == 1 && c->eos_id == 2);
        spx_llama2c_tensor t;
        /* float index of each array start: emb 0, rms_att 80, wq 96, wk 224, wv 288, wo 352, rms_ffn 480,
         * w1 496, w2 688, w3 880, rms_final 1072 */
        CHECK(spx_llama2c_find(m, "token_embd", "weight", 0, &t) && first_value(&t) == 0.0f && t.dims[0] == 10);
        CHECK(spx_llama2c_find(m, "attn_norm", "weight", 1, &t) && first_value(&t) == 88.0f && t.ndim == 1);
        CHECK(spx_llama2c_find(m, "attn_q", "weight", 1, &t) && first_value(&t) == 160.0f &&
              t.xform == SPX_XFORM_ROPE_DEINTERLEAVE && strcmp(t.src_name, "wq[1]") == 0);
        CHECK(spx_llama2c_find(m, "attn_k", "weight", 0, &t) && first_value(&t) == 224.0f && t.dims[0] == 4 &&
              t.dims[1] == 8 && t.xform == SPX_XFORM_ROPE_DEINTERLEAVE);
        CHECK(spx_llama2c_find(m, "attn_v", "weight", 1, &t) && first_value(&t) == 320.0f && t.xform == SPX_XFORM_NONE);
        CHECK(spx_llama2c_find(m, "attn_output", "weight", 0, &t) && first_value(&t) == 352.0f);
        CHECK(spx_llama2c_find(m, "ffn_norm", "weight", 1, &t) && first_value(&t) == 488.0f);
        CHECK(spx_llama2c_find(m, "ffn_gate", "weight", 1, &t) && first_value(&t) == 592.0f && t.dims[0] == 12);
        CHECK(spx_llama2c_find(m, "ffn_down", "weight", 0, &t) && first_value(&t) == 688.0f && t.dims[0] == 8 &&
              t.dims[1] == 12);
        CHECK(spx_llama2c_find(m, "ffn_up", "weight", 1, &t) && first_value(&t) == 976.0f);
        CHECK(spx_llama2c_find(m, "output_norm", "weight", 0, &t) && first_value(&t) == 1072.0f);
        CHECK(!spx_llama2c_find(m, "output", "weight", 0, &t));   /* shared classifier */
        CHECK(!spx_llama2c_find(m, "attn_q", "weight", 2, &t));   /* layer out of range */
        CHECK(!spx_llama2c_find(m, "attn_q", "bias", 0, &t));
        CHECK(spx_llama2c_skipped_count(m) == 2 && strstr(spx_llama2c_skipped(m, 0), "freq_cis_real"));
    }
    spx_llama2c_free(m);
    free(b);
    m = NULL;
    b = make_bin(-10, &len);   /* unshared classifier after the freq tables (1080 + 6 floats) */
    CHECK_RC(spx_llama2c_open_mem(&ctx, b, len, "u.bin", &m), 0);
    if (m) {
        spx_llama2c_tensor t;
        CHECK(!spx_llama2c_config(m)->tied_embeddings && spx_llama2c_config(m)->vocab_size == 10);
        CHECK(spx_llama2c_find(m, "output", "weight", 0, &t) && first_value(&t) == 1086.0f && t.dims[0] == 10);
    }
    spx_llama2c_free(m);
    free(b);
}

static void expect_bad(const char *what, const unsigned char *img, size_t len, int code, const char *needle)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_llama2c *m = NULL;
    unsigned char *copy = malloc(len ? len : 1);
    memcpy(copy, img, len);
    int rc = spx_llama2c_open_mem(&ctx, copy, len, "bad.bin", &m);
    CHECK_MSG(rc == code && m == NULL, "%s: rc %s want %s (%s)", what, spx_err_name(rc), spx_err_name(code), ctx.msg);
    CHECK_MSG(strstr(ctx.msg, "bad.bin") && (!needle || strstr(ctx.msg, needle)), "%s: message lacks '%s': %s", what,
              needle ? needle : "", ctx.msg);
    free(copy);
}

static void test_malformed(void)
{
    size_t len;
    unsigned char *b = make_bin(10, &len);
    int bad = 0;
    for (size_t cut = 0; cut < len; cut++) {   /* every truncation: clean SPX_E_LLAMA2C naming where data ran out */
        spx_ctx ctx = SPX_CTX_INIT;
        spx_llama2c *m = NULL;
        unsigned char *copy = malloc(cut ? cut : 1);
        memcpy(copy, b, cut);
        int rc = spx_llama2c_open_mem(&ctx, copy, cut, "bad.bin", &m);
        char want[64];
        snprintf(want, sizeof want, "byte %zu", cut);
        if (rc != SPX_E_LLAMA2C || m || !strstr(ctx.msg, want)) {
            if (bad++ < 5)
                fprintf(stderr, "cut %zu: %s %s\n", cut, spx_err_name(rc), ctx.msg);
        }
        spx_llama2c_free(m);
        free(copy);
    }
    CHECK_MSG(bad == 0, "%d truncations not rejected cleanly", bad);
    unsigned char *t = malloc(len + 4);
    memcpy(t, b, len);
    memset(t + len, 0, 4);
    expect_bad("trailing bytes", t, len + 4, SPX_E_LLAMA2C, "4 trailing bytes");
    free(t);
    const struct {
        int field;
        int32_t value;
        int code;
        const char *needle;
    } cases[] = {
        {0, 0, SPX_E_LLAMA2C, "dim = 0"},
        {0, -8, SPX_E_LLAMA2C, "dim = -8"},
        {2, 5000, SPX_E_LLAMA2C, "n_layers"},
        {4, 3, SPX_E_LLAMA2C, "does not divide"},
        {4, 8, SPX_E_LLAMA2C, "does not divide"},
        {3, 3, SPX_E_LLAMA2C, "not a multiple"},
        {3, 8, SPX_E_LLAMA2C, "odd"},            /* head size 1 */
        {5, INT32_MIN, SPX_E_LLAMA2C, "vocab_size"},
        {5, 0, SPX_E_LLAMA2C, "vocab_size"},
        {6, 1 << 24, SPX_E_LLAMA2C, "truncated"},   /* huge tables: a size check, not a huge read */
        {1, 1 << 22, SPX_E_LLAMA2C, "truncated"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char *c = malloc(len);
        memcpy(c, b, len);
        memcpy(c + 4 * cases[i].field, &cases[i].value, 4);
        expect_bad(cases[i].needle, c, len, cases[i].code, cases[i].needle);
        free(c);
    }
    free(b);
}

/* ---- rotary permutation --------------------------------------------------------------------- */

/* Independent statement of the permutation: new row r of head h comes from old row
 * h*hd + 2*(r%hd) for r%hd < hd/2, else h*hd + 2*(r%hd - hd/2) + 1. */
static void test_permutation(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    enum { HD = 6, HEADS = 3, ROWS = HD * HEADS, COLS = 5 };
    float src[ROWS * COLS], dst[ROWS * COLS];
    for (int i = 0; i < ROWS * COLS; i++)
        src[i] = (float)i;
    CHECK_RC(spx_xform_apply(&ctx, SPX_XFORM_ROPE_DEINTERLEAVE, HD, src, dst, 4, ROWS, COLS), 0);
    int bad = 0;
    for (int r = 0; r < ROWS; r++) {
        int h = r / HD, k = r % HD;
        int old = h * HD + (k < HD / 2 ? 2 * k : 2 * (k - HD / 2) + 1);
        for (int j = 0; j < COLS; j++)
            bad += dst[r * COLS + j] != src[old * COLS + j];
    }
    CHECK(bad == 0);
    CHECK_RC(spx_xform_apply(&ctx, SPX_XFORM_ROPE_DEINTERLEAVE, 4, src, dst, 4, 6, 1), SPX_E_SHAPE);
    CHECK_RC(spx_xform_apply(&ctx, SPX_XFORM_ROPE_DEINTERLEAVE, 3, src, dst, 4, 6, 1), SPX_E_SHAPE);
    /* the GPT-2/NeoX transforms are tested in test_convert_archmap.c; here only their shape errors */
    CHECK_RC(spx_xform_apply(&ctx, SPX_XFORM_SPLIT_QKV, 4, src, dst, 4, 2, 2), SPX_E_SHAPE);
    CHECK_RC(spx_xform_apply(&ctx, 99, 4, src, dst, 4, 2, 2), SPX_E_UNSUPPORTED);
    CHECK_RC(spx_xform_apply(&ctx, SPX_XFORM_NONE, 4, src, dst, 4, ROWS, COLS), 0);
    CHECK(memcmp(src, dst, sizeof src) == 0);

    /* The point of the permutation: llama2.c RoPE (pairs 2j,2j+1) on W x and HF rotate_half RoPE
     * (pairs j, j+hd/2) on W' x give the same attention scores q.k at every position pair.
     * Double precision; tolerance 1e-9 relative (sums of 8 products of O(1) values). */
    enum { D = 8 };
    uint64_t seed = 7;
    double wq[D][D], wk[D][D], x1[D], x2[D];
    for (int i = 0; i < D; i++) {
        x1[i] = spx_test_normal(&seed);
        x2[i] = spx_test_normal(&seed);
        for (int j = 0; j < D; j++) {
            wq[i][j] = spx_test_normal(&seed);
            wk[i][j] = spx_test_normal(&seed);
        }
    }
    double wq2[D][D], wk2[D][D];
    CHECK_RC(spx_xform_apply(&ctx, SPX_XFORM_ROPE_DEINTERLEAVE, D, wq, wq2, sizeof(double), D, D), 0);
    CHECK_RC(spx_xform_apply(&ctx, SPX_XFORM_ROPE_DEINTERLEAVE, D, wk, wk2, sizeof(double), D, D), 0);
    double maxerr = 0;
    for (int p1 = 0; p1 < 5; p1++)
        for (int p2 = 0; p2 < 5; p2++) {
            double q[D] = {0}, k[D] = {0}, q2[D] = {0}, k2[D] = {0};
            for (int i = 0; i < D; i++)
                for (int j = 0; j < D; j++) {
                    q[i] += wq[i][j] * x1[j];
                    k[i] += wk[i][j] * x2[j];
                    q2[i] += wq2[i][j] * x1[j];
                    k2[i] += wk2[i][j] * x2[j];
                }
            double s1 = 0, s2 = 0;
            for (int j = 0; j < D / 2; j++) {
                double f = pow(10000.0, -2.0 * j / D);
                double a1 = p1 * f, a2 = p2 * f;
                /* llama2.c: rotate (q[2j], q[2j+1]) */
                double qa = q[2 * j] * cos(a1) - q[2 * j + 1] * sin(a1), qb = q[2 * j] * sin(a1) + q[2 * j + 1] * cos(a1);
                double ka = k[2 * j] * cos(a2) - k[2 * j + 1] * sin(a2), kb = k[2 * j] * sin(a2) + k[2 * j + 1] * cos(a2);
                s1 += qa * ka + qb * kb;
                /* HF rotate_half: rotate (q[j], q[j + D/2]) */
                double ra = q2[j] * cos(a1) - q2[j + D / 2] * sin(a1), rb = q2[j + D / 2] * cos(a1) + q2[j] * sin(a1);
                double ta = k2[j] * cos(a2) - k2[j + D / 2] * sin(a2), tb = k2[j + D / 2] * cos(a2) + k2[j] * sin(a2);
                s2 += ra * ta + rb * tb;
            }
            double e = fabs(s1 - s2) / (1 + fabs(s1));
            if (e > maxerr)
                maxerr = e;
        }
    CHECK_MSG(maxerr < 1e-9, "rotary score mismatch %g", maxerr);
}

/* ---- the real model ------------------------------------------------------------------------- */

static void test_real(void)
{
    const char *shared = spx_test_env("SPX_SHARED");
    const char *bin = shared ? spx_test_path(shared, "models/stories260K-llama2c/stories260K.bin") : NULL;
    const char *hf = shared ? spx_test_path(shared, "models/stories260K-hf/model.safetensors") : NULL;
    if (!bin || !spx_test_exists(bin) || !spx_test_exists(hf)) {
        fprintf(stderr, "note: ../shared models absent: real-model comparison skipped\n");
        return;
    }
    spx_ctx ctx = SPX_CTX_INIT;
    spx_llama2c *m = NULL;
    spx_st_file *st = NULL;
    CHECK_RC(spx_llama2c_open(&ctx, bin, &m), 0);
    CHECK_RC(spx_st_open(&ctx, hf, &st), 0);
    if (!m || !st) {
        spx_llama2c_free(m);
        spx_st_free(st);
        return;
    }
    const spx_model_config *c = spx_llama2c_config(m);
    const spx_archmap *map = spx_archmap_find("llama");
    size_t compared = 0, mismatched = 0;
    for (size_t i = 0; i < map->count; i++) {
        const spx_archmap_entry *e = &map->entries[i];
        uint32_t nl = e->place == SPX_PLACE_BLOCK ? c->n_layers : 1;
        for (uint32_t l = 0; l < nl; l++) {
            char name[160];
            spx_llama2c_tensor t;
            spx_archmap_src_name(e, l, name, sizeof name);
            const spx_st_tensor *h = spx_st_find(st, name);
            int have = spx_llama2c_find(m, e->base, e->suffix, l, &t);
            CHECK_MSG(have == (h != NULL), "%s: present in one checkpoint only", name);
            if (!have || !h)
                continue;
            CHECK(h->numel == t.numel && h->shape[0] == t.dims[0]);
            float *buf = malloc(t.numel * 4);
            CHECK_RC(spx_xform_apply(&ctx, t.xform, c->head_dim, t.data, buf, 4, t.dims[0],
                                     t.ndim == 2 ? t.dims[1] : 1), 0);
            if (memcmp(buf, spx_st_data(st, h), t.numel * 4) != 0) {
                fprintf(stderr, "%s differs from %s\n", name, t.src_name);
                mismatched++;
            }
            compared++;
            free(buf);
        }
    }
    CHECK(compared == 2 + 9 * c->n_layers && mismatched == 0);
    spx_llama2c_free(m);
    spx_st_free(st);

    /* The converted files: same names, dims, roles, layers and bytes, and the same config. */
    const char *tmp = spx_test_tmpdir();
    char out_bin[4096], out_hf[4096];
    snprintf(out_bin, sizeof out_bin, "%s", spx_test_path(tmp, "bin.spx"));
    snprintf(out_hf, sizeof out_hf, "%s", spx_test_path(tmp, "hf.spx"));
    char tok[4096];
    snprintf(tok, sizeof tok, "%s", spx_test_path(shared, "models/stories260K-llama2c/tok512.bin"));
    spx_convert_opts o = SPX_CONVERT_OPTS_INIT;
    o.input = bin;
    o.output = out_bin;
    o.tokenizer = tok;
    CHECK_RC(spx_convert(&ctx, &o, NULL), 0);
    o.input = spx_test_path(shared, "models/stories260K-hf");
    o.output = out_hf;
    o.tokenizer = NULL;   /* tokenizer.json beside the checkpoint */
    CHECK_RC(spx_convert(&ctx, &o, NULL), 0);
    spx_file *a = NULL, *b = NULL;
    CHECK_RC(spx_file_open(&ctx, out_bin, SPX_OPEN_VERIFY_DATA, &a), 0);
    CHECK_RC(spx_file_open(&ctx, out_hf, SPX_OPEN_VERIFY_DATA, &b), 0);
    if (a && b) {
        CHECK(spx_file_tensor_count(a) == 47 && spx_file_tensor_count(b) == 47);
        for (uint32_t i = 0; i < spx_file_tensor_count(a) && i < spx_file_tensor_count(b); i++) {
            const spx_tensor *x = spx_file_tensor(a, i), *y = spx_file_tensor(b, i);
            CHECK_MSG(strcmp(x->name, y->name) == 0 && x->dtype == y->dtype && x->ndim == y->ndim &&
                      memcmp(x->dims, y->dims, sizeof x->dims) == 0 && x->role == y->role && x->layer == y->layer &&
                      x->data_size == y->data_size && x->data_crc32 == y->data_crc32 &&
                      memcmp(spx_file_data(a, x), spx_file_data(b, y), (size_t)x->data_size) == 0,
                      "tensor %u (%s vs %s) differs", i, x->name, y->name);
        }
        spx_model_config ca, cb;
        CHECK_RC(spx_config_from_file(&ctx, a, &ca), 0);
        CHECK_RC(spx_config_from_file(&ctx, b, &cb), 0);
        CHECK(ca.dim == cb.dim && ca.ffn_dim == cb.ffn_dim && ca.n_layers == cb.n_layers && ca.n_heads == cb.n_heads &&
              ca.n_kv_heads == cb.n_kv_heads && ca.head_dim == cb.head_dim && ca.vocab_size == cb.vocab_size &&
              ca.norm_eps == cb.norm_eps && ca.rope_theta == cb.rope_theta && ca.tied_embeddings == cb.tied_embeddings &&
              ca.bos_id == cb.bos_id && ca.eos_id == cb.eos_id && ca.context_length == cb.context_length);
    }
    /* the embedded llama2.c tokenizer behaves like the tok512.bin it came from */
    spx_tokenizer *t1 = NULL, *t2 = NULL;
    spx_vocab *v = NULL;
    if (a)
        CHECK_RC(spx_tokenizer_from_spx(&ctx, a, &t1), 0);
    CHECK_RC(spx_llama2c_vocab_read(&ctx, tok, 512, &v), 0);
    CHECK_RC(spx_tokenizer_from_vocab(&ctx, &v, 1, 2, &t2), 0);
    if (t1 && t2) {
        const char *text = "Once upon a time, there was a little girl named Lily. She liked {curly} things!";
        uint32_t *i1 = NULL, *i2 = NULL;
        size_t n1 = 0, n2 = 0;
        CHECK_RC(spx_tokenizer_encode(&ctx, t1, text, strlen(text), -1, &i1, &n1), 0);
        CHECK_RC(spx_tokenizer_encode(&ctx, t2, text, strlen(text), -1, &i2, &n2), 0);
        CHECK(n1 == n2 && n1 > 10 && i1 && i2 && memcmp(i1, i2, n1 * sizeof *i1) == 0);
        free(i1);
        free(i2);
        CHECK(spx_tokenizer_vocab_size(t1) == 512 && spx_tokenizer_bos_id(t1) == 1 && spx_tokenizer_eos_id(t1) == 2);
        int bad = 0;
        for (uint32_t id = 0; id < 512; id++) {
            char p1[64], p2[64];
            int l1 = spx_tokenizer_decode(t1, 5, id, p1, sizeof p1), l2 = spx_tokenizer_decode(t2, 5, id, p2, sizeof p2);
            bad += l1 != l2 || (l1 > 0 && memcmp(p1, p2, (size_t)l1) != 0);
        }
        CHECK_MSG(bad == 0, "%d pieces decode differently", bad);
    }
    spx_tokenizer_free(t1);
    spx_tokenizer_free(t2);
    spx_vocab_free(v);
    /* the HF conversion carries tokenizer.json verbatim */
    if (b) {
        const char *s = NULL;
        size_t len = 0, flen = 0;
        CHECK_RC(spx_meta_get_str(&ctx, b, "tokenizer.huggingface.json", &s, &len), 0);
        FILE *fp = fopen(spx_test_path(shared, "models/stories260K-hf/tokenizer.json"), "rb");
        char *want = malloc(1 << 20);
        if (fp && want) {
            flen = fread(want, 1, 1 << 20, fp);
            CHECK(s && len == flen && memcmp(s, want, len) == 0);
        }
        if (fp)
            fclose(fp);
        free(want);
    }
    spx_file_free(a);
    spx_file_free(b);
}

int spx_test_main(void)
{
    test_synthetic();
    test_malformed();
    test_permutation();
    test_real();
    return 0;
}
