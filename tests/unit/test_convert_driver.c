/* test_convert_driver.c: spx_convert on synthetic Llama checkpoints written here: canonical order
 * and exact data, sharded == single file, qwen2 biases, tied/untied, errors (missing, shape,
 * NaN, dtype, config mismatch) leaving no output, dtype conversion, tokenizer embedding,
 * determinism, and the name tables. */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "spx_archmap.h"
#include "spx_convert.h"
#include "spx_format.h"
#include "spx_half.h"
#include "spx_test.h"
#include "test_convert_util.h"

static char g_tmp[4096];

/* Create g_tmp/name once; the returned path stays valid (one slot per distinct name). */
static const char *mkdir_in(const char *name)
{
    static char bufs[64][4096];
    static int used;
    char want[4096];
    int n = snprintf(want, sizeof want, "%s/%s", g_tmp, name);
    if (n < 0 || n >= (int)sizeof want)
        exit(1);
    for (int i = 0; i < used; i++)
        if (strcmp(bufs[i], want) == 0)
            return bufs[i];
    if (used == 64)
        exit(1);
    memcpy(bufs[used], want, (size_t)n + 1);
    mkdir(want, 0755);
    return bufs[used++];
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, fp);
    fclose(fp);
    return b;
}

/* Number of directory entries other than . and .. (temporary files must not be left behind). */
static int dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d)
        closedir(d);
    return n;
}

static int run(const char *in, const char *out, int dtype, const char *tok, const char *name, spx_convert_report *rep,
               spx_ctx *ctx)
{
    spx_convert_opts o = SPX_CONVERT_OPTS_INIT;
    o.input = in;
    o.output = out;
    o.dtype = dtype;
    o.tokenizer = tok;
    o.name = name;
    spx_err_clear(ctx);
    return spx_convert(ctx, &o, rep);
}

/* Convert expecting failure `code` with needles in the message, and no file at out. */
static void expect_fail(const char *in, int dtype, int code, const char *n1, const char *n2)
{
    spx_ctx ctx = SPX_CTX_INIT;
    const char *outdir = mkdir_in("fail_out");
    char out[4200];
    snprintf(out, sizeof out, "%s/x.spx", outdir);
    int rc = run(in, out, dtype, NULL, NULL, NULL, &ctx);
    CHECK_MSG(rc == code, "%s: rc %s want %s (%s)", in, spx_err_name(rc), spx_err_name(code), ctx.msg);
    CHECK_MSG(!n1 || strstr(ctx.msg, n1), "message lacks '%s': %s", n1, ctx.msg);
    CHECK_MSG(!n2 || strstr(ctx.msg, n2), "message lacks '%s': %s", n2, ctx.msg);
    CHECK_MSG(dir_entries(outdir) == 0, "output or temporary file left behind for %s", in);
}

static const char *write_model(const char *name, const char *model_type, const char *cfg_extra, tcu_model *m)
{
    const char *dir = mkdir_in(name);
    CHECK(tcu_write_config(dir, model_type, cfg_extra) == 0);
    CHECK(tcu_st_write(spx_test_path(dir, "model.safetensors"), m->t, m->n, "{\"format\":\"pt\"}") == 0);
    return dir;
}

static const char *const canon_order[] = {
    "token_embd.weight",
    "blk.0.attn_norm.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight",
    "blk.0.attn_output.weight", "blk.0.ffn_norm.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight",
    "blk.0.ffn_down.weight",
    "blk.1.attn_norm.weight", "blk.1.attn_q.weight", "blk.1.attn_k.weight", "blk.1.attn_v.weight",
    "blk.1.attn_output.weight", "blk.1.ffn_norm.weight", "blk.1.ffn_gate.weight", "blk.1.ffn_up.weight",
    "blk.1.ffn_down.weight",
    "output_norm.weight"};

static const char *hf_of(const char *canon, char *buf, size_t cap)
{
    const spx_archmap *map = spx_archmap_find("llama");
    for (size_t i = 0; i < map->count; i++)
        for (uint32_t l = 0; l < TCU_LAYERS; l++) {
            char c[128];
            spx_archmap_canon_name(&map->entries[i], l, c, sizeof c);
            if (strcmp(c, canon) == 0) {
                spx_archmap_src_name(&map->entries[i], l, buf, cap);
                return buf;
            }
        }
    return "?";
}

static void test_basic(tcu_model *m)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_convert_report rep;
    const char *dir = write_model("m1", "llama", NULL, m);
    char out[4200];
    snprintf(out, sizeof out, "%s/m1.spx", g_tmp);
    CHECK_RC(run(dir, out, SPX_CONVERT_KEEP, NULL, NULL, &rep, &ctx), 0);
    CHECK(rep.n_tensors == 20 && strcmp(rep.source_format, "safetensors") == 0 && strcmp(rep.source_dtype, "F32") == 0);
    CHECK(rep.config.tied_embeddings && rep.n_shards == 1 && strcmp(rep.tokenizer, "none") == 0);
    CHECK(rep.n_skipped == 1 && strstr(rep.skipped[0], "model.layers.0.self_attn.rotary_emb.inv_freq"));
    int tie_note = 0, tok_note = 0;
    for (size_t i = 0; i < rep.n_notes; i++) {
        tie_note |= strstr(rep.notes[i], "tied") != NULL;
        tok_note |= strstr(rep.notes[i], "tokenizer") != NULL;
    }
    CHECK(tie_note && tok_note);
    uint64_t params = 0;
    for (size_t i = 0; i < m->n; i++)
        if (!strstr(m->t[i].name, "inv_freq"))
            params += m->t[i].bytes / 4;
    CHECK(rep.n_params == params && rep.data_bytes == params * 4);
    spx_convert_report_free(&rep);

    spx_file *f = NULL;
    CHECK_RC(spx_file_open(&ctx, out, SPX_OPEN_VERIFY_DATA, &f), 0);
    if (!f)
        return;
    CHECK(spx_file_tensor_count(f) == 20);
    CHECK(strncmp(spx_file_header(f)->writer, "spx ", 4) == 0);
    for (uint32_t i = 0; i < spx_file_tensor_count(f) && i < 20; i++) {
        const spx_tensor *t = spx_file_tensor(f, i);
        char hf[160];
        CHECK_MSG(strcmp(t->name, canon_order[i]) == 0, "tensor %u is %s, want %s", i, t->name, canon_order[i]);
        long k = tcu_model_find(m, hf_of(t->name, hf, sizeof hf));
        CHECK_MSG(k >= 0, "no source for %s", t->name);
        if (k < 0)
            continue;
        CHECK(t->dtype == SPX_DTYPE_F32 && t->encoding == SPX_ENC_DENSE && t->ndim == m->t[k].ndim);
        CHECK(t->dims[0] == m->t[k].shape[0] && (t->ndim == 1 || t->dims[1] == m->t[k].shape[1]));
        CHECK(t->data_size == m->t[k].bytes && memcmp(spx_file_data(f, t), m->vals[k], m->t[k].bytes) == 0);
        CHECK(t->layer == (strncmp(t->name, "blk.", 4) == 0 ? (uint32_t)(t->name[4] - '0') : SPX_NO_INDEX));
        CHECK(t->expert == SPX_NO_INDEX);
    }
    CHECK(spx_file_find(f, "token_embd.weight")->role == SPX_ROLE_EMBEDDING);
    CHECK(spx_file_find(f, "blk.1.ffn_norm.weight")->role == SPX_ROLE_NORM);
    CHECK(spx_file_find(f, "blk.1.attn_v.weight")->role == SPX_ROLE_ATTN);
    CHECK(spx_file_find(f, "blk.0.ffn_down.weight")->role == SPX_ROLE_MLP);
    const char *s;
    size_t len;
    CHECK_RC(spx_meta_get_str(&ctx, f, "spx.source.format", &s, &len), 0);
    CHECK(strcmp(s, "safetensors") == 0);
    CHECK_RC(spx_meta_get_str(&ctx, f, "general.name", &s, &len), 0);
    CHECK(strcmp(s, "m1") == 0);
    CHECK(spx_file_meta_find(f, "tokenizer.huggingface.json") == NULL);
    spx_model_config c;
    CHECK_RC(spx_config_from_file(&ctx, f, &c), 0);
    CHECK(c.dim == TCU_DIM && c.n_kv_heads == TCU_KV && c.head_dim == TCU_HD && c.tied_embeddings && c.bos_id == 1 &&
          c.context_length == 128 && c.norm_eps == 1e-5f);
    spx_file_free(f);

    /* determinism: a second conversion is byte-identical */
    char out2[4200];
    snprintf(out2, sizeof out2, "%s/m1b.spx", g_tmp);
    CHECK_RC(run(dir, out2, SPX_CONVERT_KEEP, NULL, "m1", NULL, &ctx), 0);
    size_t la = 0, lb = 0;
    unsigned char *a = slurp(out, &la), *b = slurp(out2, &lb);
    CHECK(a && b && la == lb && memcmp(a, b, la) == 0);
    free(a);
    free(b);
    /* a .safetensors file given directly, and a file whose type is found by content */
    CHECK_RC(run(spx_test_path(dir, "model.safetensors"), out2, SPX_CONVERT_KEEP, NULL, "m1", NULL, &ctx), 0);
    a = slurp(out, &la);
    b = slurp(out2, &lb);
    CHECK(a && b && la == lb && memcmp(a, b, la) == 0);
    free(a);
    free(b);
    CHECK(rename(spx_test_path(dir, "model.safetensors"), spx_test_path(dir, "weights.data")) == 0);
    CHECK_RC(run(spx_test_path(dir, "weights.data"), out2, SPX_CONVERT_KEEP, NULL, "m1", NULL, &ctx), 0);
    CHECK(rename(spx_test_path(dir, "weights.data"), spx_test_path(dir, "model.safetensors")) == 0);
    CHECK_RC(run(dir, dir, SPX_CONVERT_KEEP, NULL, NULL, NULL, &ctx), SPX_E_ARG);   /* output == input */
}

static void write_index(const char *dir, const tcu_model *m, size_t split, const char *extra_entry)
{
    char *js = malloc(65536);
    size_t k = (size_t)snprintf(js, 65536, "{\"metadata\": {\"total_size\": 1}, \"weight_map\": {");
    for (size_t i = 0; i < m->n; i++)
        k += (size_t)snprintf(js + k, 65536 - k, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "",
                              m->t[i].name, i < split ? 1 : 2);
    if (extra_entry)
        k += (size_t)snprintf(js + k, 65536 - k, ", %s", extra_entry);
    k += (size_t)snprintf(js + k, 65536 - k, "}}\n");
    CHECK(tcu_write_file(spx_test_path(dir, "model.safetensors.index.json"), js, k) == 0);
    free(js);
}

static void test_sharded(tcu_model *m)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_convert_report rep;
    const char *dir = mkdir_in("sh");
    size_t split = m->n / 2;
    CHECK(tcu_write_config(dir, "llama", NULL) == 0);
    CHECK(tcu_st_write(spx_test_path(dir, "model-00001-of-00002.safetensors"), m->t, split, NULL) == 0);
    CHECK(tcu_st_write(spx_test_path(dir, "model-00002-of-00002.safetensors"), m->t + split, m->n - split, NULL) == 0);
    write_index(dir, m, split, NULL);
    char out[4200], ref[4200];
    snprintf(out, sizeof out, "%s/sh.spx", g_tmp);
    snprintf(ref, sizeof ref, "%s/m1b.spx", g_tmp);   /* single-file conversion named "m1" */
    CHECK_RC(run(dir, out, SPX_CONVERT_KEEP, NULL, "m1", &rep, &ctx), 0);
    CHECK(rep.n_shards == 2 && rep.n_tensors == 20);
    spx_convert_report_free(&rep);
    size_t la = 0, lb = 0;
    unsigned char *a = slurp(out, &la), *b = slurp(ref, &lb);
    CHECK_MSG(a && b && la == lb && memcmp(a, b, la) == 0, "sharded conversion differs from the single-file one");
    free(a);
    free(b);
    char idx[4200];
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    /* index errors */
    write_index(dir, m, split, "\"model.extra.weight\": \"model-00001-of-00002.safetensors\"");
    expect_fail(idx, SPX_CONVERT_KEEP, SPX_E_SAFETENSORS, "model.extra.weight", "no shard contains");
    write_index(dir, m, split + 1, NULL);   /* tensor split is listed for the wrong shard */
    expect_fail(dir, SPX_CONVERT_KEEP, SPX_E_SAFETENSORS, m->t[split].name, "stored in");
    write_index(dir, m, split, "\"x\": \"../model.safetensors\"");
    expect_fail(dir, SPX_CONVERT_KEEP, SPX_E_SAFETENSORS, "plain shard file name", NULL);
    write_index(dir, m, split, "\"model.norm.weight\": \"model-00001-of-00002.safetensors\"");
    expect_fail(dir, SPX_CONVERT_KEEP, SPX_E_SAFETENSORS, "twice", NULL);
    /* a tensor stored in both shards */
    CHECK(tcu_st_write(spx_test_path(dir, "model-00002-of-00002.safetensors"), m->t + split - 1, m->n - split + 1, NULL) == 0);
    write_index(dir, m, split, NULL);
    expect_fail(dir, SPX_CONVERT_KEEP, SPX_E_SAFETENSORS, "two shards", m->t[split - 1].name);
    /* a tensor of a shard that the index does not list */
    tcu_model m2 = *m;
    m2.n = m->n - 1;   /* the index omits the last tensor */
    CHECK(tcu_st_write(spx_test_path(dir, "model-00002-of-00002.safetensors"), m->t + split, m->n - split, NULL) == 0);
    write_index(dir, &m2, split, NULL);
    expect_fail(dir, SPX_CONVERT_KEEP, SPX_E_SAFETENSORS, "not listed", m->t[m->n - 1].name);
    CHECK(tcu_write_file(idx, "{\"weight_map\": {", 16) == 0);
    expect_fail(dir, SPX_CONVERT_KEEP, SPX_E_JSON, "byte", NULL);
    CHECK(tcu_write_file(idx, "{\"metadata\": {}}", 16) == 0);
    expect_fail(dir, SPX_CONVERT_KEEP, SPX_E_SAFETENSORS, "weight_map", NULL);
    remove(spx_test_path(dir, "model-00002-of-00002.safetensors"));
    write_index(dir, m, split, NULL);
    expect_fail(dir, SPX_CONVERT_KEEP, SPX_E_IO, "model-00002-of-00002.safetensors", NULL);
}

static void test_biases_and_tying(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    tcu_model m;
    char out[4200];
    snprintf(out, sizeof out, "%s/q.spx", g_tmp);
    tcu_model_build(&m, 11, 1, 1, 0);   /* q/k/v biases + lm_head */
    const char *dir = write_model("qwen", "qwen2", "\"tie_word_embeddings\": false", &m);
    CHECK_RC(run(dir, out, SPX_CONVERT_KEEP, NULL, NULL, NULL, &ctx), 0);
    spx_file *f = NULL;
    CHECK_RC(spx_file_open(&ctx, out, 0, &f), 0);
    if (f) {
        CHECK(spx_file_tensor_count(f) == 1 + 12 * TCU_LAYERS + 2);
        /* per block: 9 weights then the q/k/v biases */
        CHECK(strcmp(spx_file_tensor(f, 10)->name, "blk.0.attn_q.bias") == 0);
        CHECK(strcmp(spx_file_tensor(f, 12)->name, "blk.0.attn_v.bias") == 0);
        CHECK(strcmp(spx_file_tensor(f, 13)->name, "blk.1.attn_norm.weight") == 0);
        const spx_tensor *o = spx_file_find(f, "output.weight");
        long k = tcu_model_find(&m, "lm_head.weight");
        CHECK(o && o->role == SPX_ROLE_OUTPUT && memcmp(spx_file_data(f, o), m.vals[k], m.t[k].bytes) == 0);
        const spx_tensor *b = spx_file_find(f, "blk.1.attn_k.bias");
        k = tcu_model_find(&m, "model.layers.1.self_attn.k_proj.bias");
        CHECK(b && b->ndim == 1 && b->dims[0] == TCU_KV * TCU_HD && memcmp(spx_file_data(f, b), m.vals[k], m.t[k].bytes) == 0);
        spx_model_config c;
        CHECK_RC(spx_config_from_file(&ctx, f, &c), 0);
        CHECK(c.attn_bias && !c.attn_out_bias && !c.tied_embeddings);
    }
    spx_file_free(f);
    /* biases in the checkpoint but not in a llama config */
    dir = write_model("llamabias", "llama", "\"tie_word_embeddings\": false", &m);
    expect_fail(dir, SPX_CONVERT_KEEP, SPX_E_CONFIG, "model.layers.0.self_attn.q_proj.bias", "attention_bias");
    /* llama attention_bias=true also means an o_proj bias, which this checkpoint lacks */
    dir = write_model("tiedlm", "llama", "\"tie_word_embeddings\": true, \"attention_bias\": true", &m);
    expect_fail(dir, SPX_CONVERT_KEEP, SPX_E_MISSING, "blk.0.attn_output.bias", "model.layers.0.self_attn.o_proj.bias");
    tcu_model_free(&m);

    tcu_model_build(&m, 12, 0, 1, 0);
    spx_convert_report rep;
    dir = write_model("tied", "llama", "\"tie_word_embeddings\": true", &m);
    CHECK_RC(run(dir, out, SPX_CONVERT_KEEP, NULL, NULL, &rep, &ctx), 0);
    CHECK(rep.n_tensors == 20 && rep.n_skipped == 1 && strstr(rep.skipped[0], "lm_head.weight") &&
          strstr(rep.skipped[0], "tied"));
    spx_convert_report_free(&rep);
    /* untied by inference: no tie_word_embeddings key, lm_head present */
    dir = write_model("untied", "llama", NULL, &m);
    CHECK_RC(run(dir, out, SPX_CONVERT_KEEP, NULL, NULL, &rep, &ctx), 0);
    CHECK(rep.n_tensors == 21 && !rep.config.tied_embeddings && rep.n_skipped == 0);
    spx_convert_report_free(&rep);
    tcu_model_free(&m);
    /* qwen2 without biases; untied config without lm_head */
    tcu_model_build(&m, 13, 0, 0, 0);
    dir = write_model("qwen_nobias", "qwen2", NULL, &m);
    expect_fail(dir, SPX_CONVERT_KEEP, SPX_E_MISSING, "blk.0.attn_q.bias", "model.layers.0.self_attn.q_proj.bias");
    dir = write_model("nolm", "llama", "\"tie_word_embeddings\": false", &m);
    expect_fail(dir, SPX_CONVERT_KEEP, SPX_E_MISSING, "output.weight", "lm_head.weight");
    tcu_model_free(&m);
}

static void test_errors(tcu_model *m)
{
    /* a config with a duplicated key is rejected before any tensor is looked at */
    const char *dir = write_model("shape", "llama", "\"intermediate_size\": 16", m);
    expect_fail(dir, SPX_CONVERT_KEEP, SPX_E_JSON, "intermediate_size", NULL);
    const char *d2 = mkdir_in("shape2");
    CHECK(tcu_st_write(spx_test_path(d2, "model.safetensors"), m->t, m->n, NULL) == 0);
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "{\"model_type\": \"llama\", \"hidden_size\": 8, \"intermediate_size\": 16, "
             "\"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"vocab_size\": 16}");
    CHECK(tcu_write_file(spx_test_path(d2, "config.json"), cfg, strlen(cfg)) == 0);
    expect_fail(d2, SPX_CONVERT_KEEP, SPX_E_SHAPE, "blk.0.ffn_gate.weight", "got shape [12, 8], expected [16, 8]");
    /* a block index beyond the config's layers */
    snprintf(cfg, sizeof cfg, "{\"model_type\": \"llama\", \"hidden_size\": 8, \"intermediate_size\": 12, "
             "\"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"vocab_size\": 16}");
    CHECK(tcu_write_file(spx_test_path(d2, "config.json"), cfg, strlen(cfg)) == 0);
    expect_fail(d2, SPX_CONVERT_KEEP, SPX_E_CONFIG, "block 1", "1 layers");
    remove(spx_test_path(d2, "config.json"));
    expect_fail(d2, SPX_CONVERT_KEEP, SPX_E_MISSING, "config.json", NULL);
    expect_fail(mkdir_in("empty"), SPX_CONVERT_KEEP, SPX_E_MISSING, "model.safetensors", NULL);
    expect_fail(spx_test_path(g_tmp, "absent"), SPX_CONVERT_KEEP, SPX_E_IO, "absent", NULL);
    snprintf(cfg, sizeof cfg, "{\"model_type\": \"bloom\", \"hidden_size\": 8}");
    CHECK(tcu_write_file(spx_test_path(d2, "config.json"), cfg, strlen(cfg)) == 0);
    expect_fail(d2, SPX_CONVERT_KEEP, SPX_E_UNSUPPORTED, "'bloom'", NULL);

    /* NaN in a weight: tensor and flat index named */
    long k = tcu_model_find(m, "model.layers.1.mlp.up_proj.weight");
    float saved = m->vals[k][37];
    m->vals[k][37] = NAN;
    write_model("nan", "llama", NULL, m);
    expect_fail(mkdir_in("nan"), SPX_CONVERT_KEEP, SPX_E_NUMERIC, "blk.1.ffn_up.weight", "flat index 37");
    m->vals[k][37] = INFINITY;
    write_model("inf", "llama", NULL, m);
    expect_fail(mkdir_in("inf"), SPX_DTYPE_F16, SPX_E_NUMERIC, "model.layers.1.mlp.up_proj.weight", "flat index 37");
    m->vals[k][37] = 1e5f;   /* finite, but not in F16 */
    write_model("big", "llama", NULL, m);
    expect_fail(mkdir_in("big"), SPX_DTYPE_F16, SPX_E_NUMERIC, "overflows F16", "flat index 37");
    m->vals[k][37] = saved;

    /* an FP8 weight */
    tcu_tensor keep = m->t[k];
    unsigned char fp8[TCU_FFN * TCU_DIM] = {0};
    m->t[k].dtype = "F8_E4M3";
    m->t[k].data = fp8;
    m->t[k].bytes = sizeof fp8;
    write_model("fp8", "llama", NULL, m);
    expect_fail(mkdir_in("fp8"), SPX_CONVERT_KEEP, SPX_E_UNSUPPORTED, "F8_E4M3", "model.layers.1.mlp.up_proj.weight");
    m->t[k] = keep;
}

static void test_dtypes(tcu_model *m)
{
    spx_ctx ctx = SPX_CTX_INIT;
    const char *dir = mkdir_in("m1");
    char out[4200];
    snprintf(out, sizeof out, "%s/dt.spx", g_tmp);
    for (int pass = 0; pass < 2; pass++) {
        int dt = pass ? SPX_DTYPE_BF16 : SPX_DTYPE_F16;
        /* half-precision rounding: relative error <= 2^-11 (F16) / 2^-8 (BF16), plus the F16
         * subnormal spacing 2^-24 for tiny values */
        double rel = pass ? 1.0 / 256 : 1.0 / 2048, abs_tol = pass ? 0 : 6e-8;
        CHECK_RC(run(dir, out, dt, NULL, NULL, NULL, &ctx), 0);
        spx_file *f = NULL;
        CHECK_RC(spx_file_open(&ctx, out, 0, &f), 0);
        if (!f)
            continue;
        int bad = 0;
        for (uint32_t i = 0; i < spx_file_tensor_count(f); i++) {
            const spx_tensor *t = spx_file_tensor(f, i);
            char hf[160];
            long k = tcu_model_find(m, hf_of(t->name, hf, sizeof hf));
            CHECK(t->dtype == dt && t->data_size == m->t[k].bytes / 2);
            const unsigned char *p = spx_file_data(f, t);
            for (size_t j = 0; j < m->t[k].bytes / 4; j++) {
                uint16_t h;
                memcpy(&h, p + 2 * j, 2);
                double v = pass ? spx_bf16_to_f32(h) : spx_f16_to_f32(h), o = m->vals[k][j];
                bad += fabs(v - o) > rel * fabs(o) + abs_tol;
            }
        }
        CHECK_MSG(bad == 0, "%d values outside half-precision rounding (pass %d)", bad, pass);
        spx_file_free(f);
    }
    /* keep on F16 and F64 sources; F64 -> F32 */
    tcu_model h = *m;
    uint16_t *hv[TCU_MAX_T];
    double *dv[TCU_MAX_T];
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < h.n; i++) {
            size_t n = m->t[i].bytes / 4;
            hv[i] = malloc(n * 2 + 1);
            dv[i] = malloc(n * 8 + 1);
            for (size_t j = 0; j < n; j++) {
                hv[i][j] = spx_f32_to_f16(m->vals[i][j]);
                dv[i][j] = (double)m->vals[i][j] + 1e-12;
            }
            h.t[i].dtype = pass ? "F64" : "F16";
            h.t[i].data = pass ? (const void *)dv[i] : (const void *)hv[i];
            h.t[i].bytes = n * (pass ? 8 : 2);
        }
        const char *d = write_model(pass ? "f64" : "f16", "llama", NULL, &h);
        spx_convert_report rep;
        CHECK_RC(run(d, out, SPX_CONVERT_KEEP, NULL, NULL, &rep, &ctx), 0);
        CHECK(strcmp(rep.source_dtype, pass ? "F64" : "F16") == 0 && strcmp(rep.dtype, pass ? "F32" : "F16") == 0);
        spx_convert_report_free(&rep);
        spx_file *f = NULL;
        CHECK_RC(spx_file_open(&ctx, out, 0, &f), 0);
        for (uint32_t i = 0; f && i < spx_file_tensor_count(f); i++) {
            const spx_tensor *t = spx_file_tensor(f, i);
            char hf[160];
            long k = tcu_model_find(&h, hf_of(t->name, hf, sizeof hf));
            if (!pass) {
                CHECK(t->dtype == SPX_DTYPE_F16 && memcmp(spx_file_data(f, t), hv[k], h.t[k].bytes) == 0);
            } else {
                const float *p = spx_file_data(f, t);
                int bad = 0;
                for (size_t j = 0; j < h.t[k].bytes / 8; j++)
                    bad += p[j] != (float)dv[k][j];
                CHECK(t->dtype == SPX_DTYPE_F32 && bad == 0);
            }
        }
        spx_file_free(f);
        for (size_t i = 0; i < h.n; i++) {
            free(hv[i]);
            free(dv[i]);
        }
    }
}

static void test_tokenizer(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    const char *dir = mkdir_in("m1");
    const char *tj = "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}\n";
    char out[4200];
    snprintf(out, sizeof out, "%s/tok.spx", g_tmp);
    CHECK(tcu_write_file(spx_test_path(dir, "tokenizer.json"), tj, strlen(tj)) == 0);
    spx_convert_report rep;
    CHECK_RC(run(dir, out, SPX_CONVERT_KEEP, NULL, NULL, &rep, &ctx), 0);
    CHECK(strcmp(rep.tokenizer, "huggingface.json") == 0);
    spx_convert_report_free(&rep);
    spx_file *f = NULL;
    CHECK_RC(spx_file_open(&ctx, out, 0, &f), 0);
    const char *s = NULL;
    size_t len = 0;
    if (f)
        CHECK_RC(spx_meta_get_str(&ctx, f, "tokenizer.huggingface.json", &s, &len), 0);
    CHECK(s && len == strlen(tj) && memcmp(s, tj, len) == 0);
    spx_file_free(f);
    CHECK(tcu_write_file(spx_test_path(dir, "tokenizer.json"), "{\"model\": ", 10) == 0);
    expect_fail(dir, SPX_CONVERT_KEEP, SPX_E_JSON, "tokenizer.json", NULL);
    remove(spx_test_path(dir, "tokenizer.json"));
    /* an explicit tokenizer that is not JSON is read as a llama2.c tokenizer (and this one is bad) */
    CHECK(tcu_write_file(spx_test_path(g_tmp, "tok.bin"), "\x10\0\0\0\0\0", 6) == 0);
    CHECK_RC(run(dir, out, SPX_CONVERT_KEEP, spx_test_path(g_tmp, "tok.bin"), NULL, NULL, &ctx), SPX_E_LLAMA2C);
}

static void test_archmap(void)
{
    const spx_archmap *m = spx_archmap_find("llama");
    CHECK(m && !spx_archmap_find("bloom"));
    if (!m)
        return;
    for (size_t i = 0; i < m->count; i++) {
        char name[160];
        uint32_t layer = 99;
        CHECK(spx_archmap_src_name(&m->entries[i], 17, name, sizeof name) == 0);
        CHECK(spx_archmap_match(m, name, &layer) == (long)i);
        CHECK(layer == (m->entries[i].place == SPX_PLACE_BLOCK ? 17u : 0u));
        CHECK(spx_archmap_src_name(&m->entries[i], 17, name, 8) == -1);
    }
    uint32_t layer;
    CHECK(spx_archmap_match(m, "model.layers.01.mlp.up_proj.weight", &layer) < 0);
    CHECK(spx_archmap_match(m, "model.layers..mlp.up_proj.weight", &layer) < 0);
    CHECK(spx_archmap_match(m, "model.layers.1234567890.mlp.up_proj.weight", &layer) < 0);
    CHECK(spx_archmap_match(m, "model.layers.0.mlp.up_proj.weightx", &layer) < 0);
    CHECK(spx_archmap_match(m, "model.layers.0.self_attn.rotary_emb.inv_freq", &layer) < 0);
    char c[96];
    spx_archmap_canon_name(&m->entries[m->count - 1], 3, c, sizeof c);
    CHECK(strcmp(c, "output.weight") == 0);
}

int spx_test_main(void)
{
    snprintf(g_tmp, sizeof g_tmp, "%s", spx_test_tmpdir());
    tcu_model m;
    tcu_model_build(&m, 42, 0, 0, 1);
    test_archmap();
    test_basic(&m);
    test_sharded(&m);
    test_biases_and_tying();
    test_errors(&m);
    test_dtypes(&m);
    test_tokenizer();
    tcu_model_free(&m);
    return 0;
}
