/* fuzz_seedgen.c: writes the binary seed corpora of the fuzz targets with the project's own
 * writers, so that the seeds follow the formats as they evolve (nothing binary is committed
 * except minimized findings).
 *
 *   fuzz_seedgen OUTDIR     -> OUTDIR/<target>/<seed files>, scratch files in OUTDIR/_work
 *
 * Seeds: .spx files of every encoding x value dtype, all metadata types, an empty file, tiny
 * models (synthetic HF checkpoint converted, F16, sparse-encoded, llama2.c converted with its
 * tokenizer); encoding records (fuzz_encoding input layout) of every encoding x dtype; tiny
 * safetensors of many dtypes; the synthetic config.json / tokenizer.json; llama2.c checkpoints
 * (tied and untied) and tokenizers; GGUF exports of the tiny models. Deterministic: same build ->
 * same bytes. */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_target.h"
#include "spx_arch.h"
#include "spx_convert.h"
#include "spx_export.h"
#include "spx_format.h"
#include "spx_spxcopy.h"
#include "spx_st_write.h"
#include "spx_synth.h"

static char out_root[2048];
static int n_written;

#define TRY(expr) do { if ((expr) < 0) { fprintf(stderr, "fuzz_seedgen: %s failed: %s\n", #expr, ctx.msg); return -1; } } while (0)

static const char *path_of(const char *sub, const char *name)
{
    static char buf[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s/%s", out_root, sub, name);
    return buf[k];
}

static int make_dir(const char *sub)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", out_root, sub);
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
        perror(p);
        return -1;
    }
    return 0;
}

static int put(const char *sub, const char *name, const void *a, size_t na, const void *b, size_t nb)
{
    const char *p = path_of(sub, name);
    FILE *fp = fopen(p, "wb");
    if (!fp || fwrite(a, 1, na, fp) != na || (nb && fwrite(b, 1, nb, fp) != nb)) {
        perror(p);
        if (fp)
            fclose(fp);
        return -1;
    }
    n_written++;
    return fclose(fp) == 0 ? 0 : -1;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    struct stat st;
    unsigned char *b = NULL;
    if (fp && fstat(fileno(fp), &st) == 0 && (b = malloc((size_t)st.st_size + 1)) != NULL)
        *len = fread(b, 1, (size_t)st.st_size, fp);
    if (fp)
        fclose(fp);
    return b;
}

static int copy_to(const char *from, const char *sub, const char *name)
{
    size_t len = 0;
    unsigned char *b = slurp(from, &len);
    int rc = b ? put(sub, name, b, len, NULL, 0) : -1;
    if (!b)
        fprintf(stderr, "fuzz_seedgen: cannot read %s\n", from);
    free(b);
    return rc;
}

/* rows x cols matrix whose every group of 4 columns has at most 2 nonzeros (valid 2:4 input);
 * some groups have fewer, some values are subnormal in F16 or large. */
static void fill_matrix(float *w, uint64_t rows, uint64_t cols)
{
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t c = 0; c < cols; c++) {
            uint64_t k = r * cols + c;
            int keep = ((c + r) % 4) < 2 && (k % 7) != 3;
            w[k] = keep ? (float)((double)((k * 37) % 19) - 9.0) * (k % 5 == 0 ? 1e-6f : 0.25f) : 0.0f;
        }
}

static const int value_dtypes[3] = {SPX_DTYPE_F32, SPX_DTYPE_F16, SPX_DTYPE_BF16};

/* fuzz_encoding input: 48-byte record prefix + blob */
static int put_encoding_seed(const char *name, const spx_tensor *t, const void *blob, size_t size)
{
    unsigned char pre[48];
    memset(pre, 0, sizeof pre);
    pre[0] = t->encoding;
    pre[1] = t->dtype;
    pre[2] = t->ndim;
    pre[3] = t->nm_n;
    pre[4] = t->nm_m;
    for (int i = 0; i < 4; i++)
        for (int b = 0; b < 8; b++)
            pre[8 + 8 * i + b] = (unsigned char)(t->dims[i] >> (8 * b));
    for (int b = 0; b < 8; b++)
        pre[40 + b] = (unsigned char)(t->nnz >> (8 * b));
    return put("encoding", name, pre, sizeof pre, blob, size);
}

static int gen_encodings(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    static const uint64_t shapes[3][2] = {{4, 16}, {3, 12}, {1, 4}};
    float w[64];
    char name[128];
    for (int s = 0; s < 3; s++) {
        uint64_t rows = shapes[s][0], cols = shapes[s][1];
        fill_matrix(w, rows, cols);
        for (int enc = 0; enc < SPX_ENC_COUNT; enc++)
            for (int d = 0; d < 3; d++) {
                spx_tensor t;
                void *blob = NULL;
                size_t size = 0;
                int nm = enc == SPX_ENC_NM;
                TRY(spx_encode(&ctx, w, rows, cols, enc, value_dtypes[d], nm ? 2 : 0, nm ? 4 : 0, &t, &blob, &size));
                snprintf(t.name, sizeof t.name, "blk.0.ffn_up.weight");
                t.role = SPX_ROLE_MLP;
                t.layer = 0;
                t.expert = SPX_NO_INDEX;
                snprintf(name, sizeof name, "%s_%s_%llux%llu", spx_encoding_name(enc), spx_dtype_name(value_dtypes[d]),
                         (unsigned long long)rows, (unsigned long long)cols);
                int rc = put_encoding_seed(name, &t, blob, size);
                if (rc == 0 && s == 0) {
                    /* one .spx per encoding x dtype: the matrix, a dense bias and a little metadata */
                    spx_writer *wr = NULL;
                    float bias[4] = {1.0f, -2.0f, 0.5f, 0.0f};
                    uint64_t bd[1] = {rows};
                    snprintf(name, sizeof name, "%s_%s.spx", spx_encoding_name(enc), spx_dtype_name(value_dtypes[d]));
                    rc = spx_writer_open(&ctx, path_of("spx_open", name), "fuzz_seedgen", &wr);
                    if (rc == 0)
                        rc = spx_writer_add(wr, &t, blob, size);
                    if (rc == 0)
                        rc = spx_writer_add_f32(wr, "blk.0.ffn_up.bias", SPX_ROLE_MLP, 0, SPX_NO_INDEX, SPX_DTYPE_F32,
                                                bias, 1, bd);
                    if (rc == 0)
                        rc = spx_writer_meta_str(wr, "general.name", "seed", 4);
                    if (rc == 0)
                        rc = spx_writer_finish(wr);
                    if (rc < 0 && wr)
                        fprintf(stderr, "fuzz_seedgen: %s: %s\n", name, spx_writer_ctx(wr)->msg);
                    spx_writer_free(wr);
                    n_written += rc == 0;
                }
                free(blob);
                if (rc < 0)
                    return -1;
            }
    }
    /* dense integer tensors (decode only: the encoder takes float dtypes) */
    unsigned char ints[20];
    for (int i = 0; i < 20; i++)
        ints[i] = (unsigned char)(i * 13 + 200);
    spx_tensor t;
    memset(&t, 0, sizeof t);
    t.ndim = 3;
    t.dims[0] = 1;
    t.dims[1] = 5;
    t.dims[2] = 1;
    t.nnz = 5;
    t.dtype = SPX_DTYPE_I32;
    if (put_encoding_seed("dense_i32_1x5x1", &t, ints, 20) < 0)
        return -1;
    t.dtype = SPX_DTYPE_U8;
    return put_encoding_seed("dense_u8_1x5x1", &t, ints, 5);
}

static int gen_meta_files(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    uint32_t u32s[3] = {1, 2, 0xffffffffu};
    float f32s[2] = {0.5f, -1e30f};
    const char *strs[3] = {"a", "", "\xe2\x96\x81x"};
    float v[6] = {1, 2, 3, 4, 5, 6};
    uint64_t dims[4] = {1, 2, 1, 3};
    int rc = 0;
    TRY(spx_writer_open(&ctx, path_of("spx_open", "meta_all.spx"), "fuzz_seedgen", &w));
    if (spx_writer_meta_u32(w, "k.u32", 7) < 0 || spx_writer_meta_i32(w, "k.i32", -7) < 0 ||
        spx_writer_meta_u64(w, "k.u64", 1ull << 40) < 0 || spx_writer_meta_i64(w, "k.i64", -(1ll << 40)) < 0 ||
        spx_writer_meta_f32(w, "k.f32", 1.5f) < 0 || spx_writer_meta_f64(w, "k.f64", -2.25) < 0 ||
        spx_writer_meta_bool(w, "k.bool", 1) < 0 || spx_writer_meta_str(w, "k.str", "hello", 5) < 0 ||
        spx_writer_meta_arr(w, "k.arr.u32", SPX_META_U32, u32s, 3) < 0 ||
        spx_writer_meta_arr(w, "k.arr.f32", SPX_META_F32, f32s, 2) < 0 ||
        spx_writer_meta_arr(w, "k.arr.empty", SPX_META_U32, u32s, 0) < 0 ||
        spx_writer_meta_arr_str(w, "k.arr.str", strs, NULL, 3) < 0 ||
        spx_writer_add_f32(w, "t4d", SPX_ROLE_OTHER, SPX_NO_INDEX, SPX_NO_INDEX, SPX_DTYPE_BF16, v, 4, dims) < 0 ||
        spx_writer_finish(w) < 0)
        rc = -1;
    if (rc < 0)
        fprintf(stderr, "fuzz_seedgen: meta_all.spx: %s\n", spx_writer_ctx(w)->msg);
    spx_writer_free(w);
    w = NULL;
    n_written += rc == 0;
    if (rc < 0)
        return rc;
    TRY(spx_writer_open(&ctx, path_of("spx_open", "empty.spx"), "fuzz_seedgen", &w));
    rc = spx_writer_finish(w);
    spx_writer_free(w);
    n_written += rc == 0;
    return rc;
}

/* Rewrite every 2-D block weight of `in` pruned to 2:4, cycling through the sparse encodings. */
static int sparsify(const char *in, const char *out)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_file *f = NULL;
    spx_writer *w = NULL;
    float *m = NULL;
    int rc = 0, k = 0;
    static const int encs[4] = {SPX_ENC_BITMASK, SPX_ENC_NM, SPX_ENC_CSR16, SPX_ENC_CSR32};
    if (spx_file_open(&ctx, in, 0, &f) < 0 || spx_writer_open(&ctx, out, "fuzz_seedgen", &w) < 0 ||
        spx_meta_copy(spx_writer_ctx(w), w, f, NULL, NULL) < 0) {
        rc = -1;
        goto done;
    }
    for (uint32_t i = 0; i < spx_file_tensor_count(f) && rc == 0; i++) {
        const spx_tensor *t = spx_file_tensor(f, i);
        if (t->ndim != 2 || t->layer == SPX_NO_INDEX) {
            rc = spx_tensor_copy(spx_writer_ctx(w), w, f, t);
            continue;
        }
        uint64_t rows = t->dims[0], cols = t->dims[1];
        free(m);
        m = malloc((size_t)(rows * cols) * sizeof *m);
        if (!m || spx_decode_f32(&ctx, t, spx_file_data(f, t), m) < 0) {
            rc = -1;
            break;
        }
        for (uint64_t j = 0; j < rows * cols; j++)
            if (j % 4 >= 2)
                m[j] = 0.0f;
        int enc = encs[k++ % 4];
        rc = spx_tensor_add_matrix(spx_writer_ctx(w), w, t, -1, m, rows, cols, enc, enc == SPX_ENC_NM ? 2 : 0,
                                   enc == SPX_ENC_NM ? 4 : 0, NULL);
    }
    if (rc == 0)
        rc = spx_writer_finish(w);
done:
    if (rc < 0)
        fprintf(stderr, "fuzz_seedgen: sparsify %s: %s %s\n", in, ctx.msg, w ? spx_writer_ctx(w)->msg : "");
    free(m);
    spx_writer_free(w);
    spx_file_free(f);
    return rc;
}

static int convert(const char *in, const char *tok, const char *out, int dtype)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_convert_opts o = SPX_CONVERT_OPTS_INIT;
    o.input = in;
    o.output = out;
    o.tokenizer = tok;
    o.dtype = dtype;
    o.name = "seed";
    TRY(spx_convert(&ctx, &o, NULL));
    return 0;
}

static int gen_models(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_synth_opts o;
    char *json = NULL;
    size_t len = 0;
    spx_synth_opts_init(&o);
    o.dim = 16;
    o.ffn_dim = 24;
    o.n_layers = 1;
    o.n_heads = 2;
    o.n_kv_heads = 1;
    o.vocab_size = SPX_SYNTH_MIN_VOCAB;
    o.context_length = 32;
    o.n_clusters = 2;
    TRY(spx_synth_write(&ctx, &o, path_of("_work", "synth"), NULL));
    if (convert(path_of("_work", "synth"), NULL, path_of("spx_model", "synth_f32.spx"), SPX_CONVERT_KEEP) < 0 ||
        convert(path_of("_work", "synth"), NULL, path_of("spx_model", "synth_f16.spx"), SPX_DTYPE_F16) < 0 ||
        sparsify(path_of("spx_model", "synth_f32.spx"), path_of("spx_model", "synth_sparse.spx")) < 0 ||
        copy_to(path_of("spx_model", "synth_f32.spx"), "spx_open", "synth_f32.spx") < 0 ||
        copy_to(path_of("_work", "synth/model.safetensors"), "st_open", "synth.safetensors") < 0 ||
        copy_to(path_of("_work", "synth/config.json"), "hfconfig", "synth_config.json") < 0 ||
        copy_to(path_of("_work", "synth/tokenizer.json"), "tokenizer_json", "synth_259.json") < 0)
        return -1;
    n_written += 3;
    /* untied gelu, non-gated-looking variants of config.json; a larger synthetic vocabulary */
    o.tied = 0;
    o.act = SPX_ACT_GELU;
    TRY(spx_synth_config_json(&ctx, &o, &json, &len));
    int rc = put("hfconfig", "synth_untied_gelu.json", json, len, NULL, 0);
    free(json);
    json = NULL;
    if (rc < 0)
        return rc;
    TRY(spx_synth_tokenizer_json(&ctx, 320, &json, &len));
    rc = put("tokenizer_json", "synth_320.json", json, len, NULL, 0);
    free(json);
    return rc;
}

/* llama2.c v0 checkpoint: dim 8, hidden 12, 1 layer, 2 heads, 1 kv head, vocab +-6, seq 2 */
static unsigned char *llama2c_bin(int vocab_field, size_t *len)
{
    int32_t h[7] = {8, 12, 1, 2, 1, vocab_field, 2};
    size_t v = 6, d = 8, f = 12, kv = 4, hs = 4, seq = 2;
    size_t floats = v * d + d + d * d + 2 * kv * d + d * d + d + 3 * f * d + d + seq * hs + (vocab_field < 0 ? v * d : 0);
    unsigned char *b = malloc(28 + 4 * floats);
    if (!b)
        return NULL;
    memcpy(b, h, 28);
    for (size_t k = 0; k < floats; k++) {
        float x = (float)((int)(k % 11) - 5) * 0.125f;
        memcpy(b + 28 + 4 * k, &x, 4);
    }
    *len = 28 + 4 * floats;
    return b;
}

/* llama2.c tokenizer: u32 max_len, then {f32 score, i32 len, bytes} */
static int put_vocab(const char *sub, const char *name, const char *const *pieces, uint32_t n)
{
    unsigned char buf[8192];
    size_t off = 4;
    uint32_t max_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t l = (uint32_t)strlen(pieces[i]);
        float score = -(float)i;
        max_len = l > max_len ? l : max_len;
        memcpy(buf + off, &score, 4);
        memcpy(buf + off + 4, &l, 4);
        memcpy(buf + off + 8, pieces[i], l);
        off += 8 + l;
    }
    memcpy(buf, &max_len, 4);
    return put(sub, name, buf, off, NULL, 0);
}

static int gen_llama2c(void)
{
    static const char *const small[6] = {"<unk>", "<s>", "</s>", " a", "b", " ab"};
    static char bytes[256][8];
    const char *big[262];
    size_t len = 0;
    unsigned char *tied = llama2c_bin(6, &len);
    int rc = tied ? put("llama2c", "tied.bin", tied, len, NULL, 0) : -1;
    free(tied);
    unsigned char *untied = rc == 0 ? llama2c_bin(-6, &len) : NULL;
    rc = untied ? put("llama2c", "untied.bin", untied, len, NULL, 0) : -1;
    if (rc == 0)
        rc = put("_work", "untied.bin", untied, len, NULL, 0);
    free(untied);
    big[0] = "<unk>";
    big[1] = "\n<s>\n";
    big[2] = "\n</s>\n";
    for (int i = 0; i < 256; i++) {
        snprintf(bytes[i], sizeof bytes[i], "<0x%02X>", i);
        big[3 + i] = bytes[i];
    }
    big[259] = " ";
    big[260] = "e";
    big[261] = " e";
    if (rc == 0)
        rc = put_vocab("llama2c_vocab", "small6.bin", small, 6);
    if (rc == 0)
        rc = put_vocab("llama2c_vocab", "bytes262.bin", big, 262);
    if (rc == 0)
        rc = put_vocab("_work", "tok6.bin", small, 6);
    if (rc == 0)
        rc = convert(path_of("_work", "untied.bin"), path_of("_work", "tok6.bin"), path_of("spx_model", "llama2c.spx"),
                     SPX_CONVERT_KEEP);
    if (rc == 0)
        rc = copy_to(path_of("spx_model", "llama2c.spx"), "spx_open", "llama2c.spx");
    n_written += rc == 0;
    return rc;
}

static int fill_pattern(spx_ctx *ctx, void *ud, size_t index, const spx_st_spec *spec, spx_st_writer *w)
{
    unsigned char buf[256];
    uint64_t bytes = spx_st_dtype_bytes(spec->dtype);
    (void)ud;
    for (uint32_t i = 0; i < spec->ndim; i++)
        bytes *= spec->shape[i];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 29 + index);
    return spx_st_writer_write(ctx, w, buf, (size_t)bytes);   /* seed tensors are < 256 bytes */
}

static int gen_safetensors(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    static const spx_st_spec specs[] = {
        {"w.f32", "F32", 2, {2, 3}}, {"w.f16", "F16", 1, {4}},   {"w.bf16", "BF16", 3, {1, 2, 2}},
        {"w.f64", "F64", 1, {2}},    {"scalar", "F32", 0, {0}},  {"empty", "F16", 2, {0, 4}},
        {"ids", "I64", 1, {2}},      {"mask", "BOOL", 1, {3}},   {"fp8", "F8_E4M3", 1, {5}},
    };
    static const spx_st_kv meta[2] = {{"format", "pt"}, {"note", "seed \xe2\x96\x81"}};
    TRY(spx_st_write_file(&ctx, path_of("st_open", "dtypes.safetensors"), specs, sizeof specs / sizeof specs[0],
                          meta, 2, fill_pattern, NULL, NULL));
    TRY(spx_st_write_file(&ctx, path_of("st_open", "one.safetensors"), specs, 1, NULL, 0, fill_pattern, NULL, NULL));
    n_written += 2;
    return 0;
}

/* GGUF seeds: the tiny synthetic and llama2.c models exported by spx (F32, F16; the llama2.c one
 * carries a tokenizer.ggml vocabulary). */
static int gen_gguf(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_export_opts o = {SPX_EXPORT_DENSE, SPX_EXPORT_KEEP};
    spx_export_report rep;
    TRY(spx_export_gguf(&ctx, path_of("spx_model", "synth_f32.spx"), path_of("gguf", "synth_f32.gguf"), &o, &rep));
    TRY(spx_export_gguf(&ctx, path_of("spx_model", "llama2c.spx"), path_of("gguf", "llama2c.gguf"), &o, &rep));
    o.dtype = SPX_DTYPE_F16;
    TRY(spx_export_gguf(&ctx, path_of("spx_model", "synth_f32.spx"), path_of("gguf", "synth_f16.gguf"), &o, &rep));
    n_written += 3;
    return 0;
}

int main(int argc, char **argv)
{
    static const char *const subs[] = {"_work", "spx_open", "spx_model", "encoding", "st_open", "hfconfig",
                                       "tokenizer_json", "llama2c", "llama2c_vocab", "gguf"};
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seedgen OUTDIR\n");
        return 2;
    }
    snprintf(out_root, sizeof out_root, "%s", argv[1]);
    if (mkdir(out_root, 0777) != 0 && errno != EEXIST) {
        perror(out_root);
        return 1;
    }
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (make_dir(subs[i]) < 0)
            return 1;
    if (gen_encodings() < 0 || gen_meta_files() < 0 || gen_models() < 0 || gen_llama2c() < 0 || gen_safetensors() < 0 ||
        gen_gguf() < 0)
        return 1;
    printf("fuzz_seedgen: %d seed files in %s\n", n_written, out_root);
    return 0;
}
