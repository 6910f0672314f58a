/* spx_synth.c: synthetic Hugging Face checkpoints with planted MLP-input clusters (see spx_synth.h). */
#include "spx_synth.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "spx_arch.h"
#include "spx_ckd.h"
#include "spx_format.h"
#include "spx_half.h"
#include "spx_rng.h"
#include "spx_st_write.h"
#include "spx_synth_int.h"

/* Scales of the construction (per-coordinate standard deviations unless said otherwise). */
#define EMBED_NOISE 0.25      /* token noise around its center (center coords have RMS 1) */
#define NORM_NOISE 0.05       /* norm weights 1 + N(0, 0.05^2) */
#define BRANCH_SCALE 0.3      /* attention / MLP output per coordinate, divided by sqrt(layers) */
#define GATE_ALIGN 3.0        /* gate pre-activation of a neuron for tokens of its own cluster */
#define GATE_NOISE 0.5        /* std of the gate pre-activation noise */
#define FINAL_LOGIT 5.0       /* final norm weight = FINAL_LOGIT/dim: logit of a token on itself */
#define RARE_SCALE 0.5        /* embedding / head rows of <unk> <s> </s> and the 256 byte tokens */
#define RARE_IDS 259u

void spx_synth_opts_init(spx_synth_opts *o)
{
    memset(o, 0, sizeof *o);
    o->arch = SPX_SYNTH_LLAMA;
    o->dim = 64;
    o->ffn_dim = 172;
    o->n_layers = 2;
    o->n_heads = 4;
    o->n_kv_heads = 2;
    o->vocab_size = 512;
    o->context_length = 256;
    o->tied = 1;
    o->dtype = SPX_DTYPE_F32;
    o->act = SPX_ACT_SILU;
    o->n_clusters = 4;
    o->seed = 0;
    o->shard_bytes = 0;
    o->rotary_pct = 0.25;
    o->parallel_residual = 1;
    o->post_norm = 0;
}

static const char *const arch_names[] = {"llama", "gpt2", "gpt_neox", "opt"};

const char *spx_synth_arch_name(int arch)
{
    return (arch >= 0 && arch <= SPX_SYNTH_OPT) ? arch_names[arch] : "?";
}

int spx_synth_arch_parse(const char *s)
{
    for (int i = 0; s && i <= SPX_SYNTH_OPT; i++)
        if (strcmp(s, arch_names[i]) == 0)
            return i;
    return -1;
}

int spx_synth_default_act(int arch)
{
    return arch == SPX_SYNTH_GPT2 ? SPX_ACT_GELU_TANH : arch == SPX_SYNTH_NEOX ? SPX_ACT_GELU
         : arch == SPX_SYNTH_OPT ? SPX_ACT_RELU : SPX_ACT_SILU;
}

int spx_synth_validate(spx_ctx *ctx, const spx_synth_opts *o)
{
#define REQ(cond, ...) do { if (!(cond)) return spx_err_set(ctx, SPX_E_ARG, __VA_ARGS__); } while (0)
    REQ(o->arch >= SPX_SYNTH_LLAMA && o->arch <= SPX_SYNTH_OPT, "synth: unknown architecture %d", o->arch);
    REQ(o->arch == SPX_SYNTH_LLAMA || o->n_kv_heads == o->n_heads,
        "synth: %s has no grouped-query attention: kv-heads %u must equal heads %u", spx_synth_arch_name(o->arch),
        o->n_kv_heads, o->n_heads);
    REQ(o->rotary_pct > 0.0 && o->rotary_pct <= 1.0, "synth: rotary-pct %g outside (0, 1]", o->rotary_pct);
    REQ(o->arch != SPX_SYNTH_NEOX || o->n_heads == 0 || o->dim % o->n_heads != 0 ||
            (uint32_t)((double)(o->dim / o->n_heads) * o->rotary_pct) % 2 == 0,
        "synth: rotary dims head_dim x rotary-pct must be even");
    REQ(o->parallel_residual == 0 || o->parallel_residual == 1, "synth: parallel_residual must be 0 or 1");
    REQ(o->post_norm == 0 || o->post_norm == 1, "synth: post_norm must be 0 or 1");
    REQ(o->context_length <= (1u << 20), "synth: ctx %u above 2^20", o->context_length);
    REQ(o->dim >= 2 && o->dim <= SPX_SYNTH_MAX_DIM, "synth: dim %u outside 2..%u", o->dim, SPX_SYNTH_MAX_DIM);
    REQ(o->ffn_dim >= 1 && o->ffn_dim <= SPX_SYNTH_MAX_FFN, "synth: ffn %u outside 1..%u", o->ffn_dim,
        SPX_SYNTH_MAX_FFN);
    REQ(o->n_layers >= 1 && o->n_layers <= SPX_SYNTH_MAX_LAYERS, "synth: layers %u outside 1..%u", o->n_layers,
        SPX_SYNTH_MAX_LAYERS);
    REQ(o->n_heads >= 1 && o->dim % o->n_heads == 0, "synth: heads %u must divide dim %u", o->n_heads, o->dim);
    REQ((o->dim / o->n_heads) % 2 == 0, "synth: head dim %u (dim/heads) must be even for RoPE",
        o->dim / o->n_heads);
    REQ(o->n_kv_heads >= 1 && o->n_heads % o->n_kv_heads == 0, "synth: kv-heads %u must divide heads %u",
        o->n_kv_heads, o->n_heads);
    REQ(o->vocab_size >= SPX_SYNTH_MIN_VOCAB && o->vocab_size <= SPX_SYNTH_MAX_VOCAB,
        "synth: vocab %u outside %u..%u (<unk> <s> </s> and 256 byte tokens come first)", o->vocab_size,
        SPX_SYNTH_MIN_VOCAB, SPX_SYNTH_MAX_VOCAB);
    REQ(o->context_length >= 1, "synth: ctx must be >= 1");
    REQ(o->tied == 0 || o->tied == 1, "synth: tied must be 0 or 1");
    REQ(o->dtype == SPX_DTYPE_F32 || o->dtype == SPX_DTYPE_F16 || o->dtype == SPX_DTYPE_BF16,
        "synth: dtype must be f32, f16 or bf16");
    REQ(o->act == SPX_ACT_SILU || o->act == SPX_ACT_RELU || o->act == SPX_ACT_GELU ||
            (o->arch != SPX_SYNTH_LLAMA && o->act == SPX_ACT_GELU_TANH),
        "synth: activation must be silu, relu or gelu (or gelu_tanh for gpt2, gpt_neox, opt)");
    REQ(o->n_clusters >= 1 && o->n_clusters <= o->dim && o->n_clusters <= o->vocab_size,
        "synth: clusters %u outside 1..min(dim, vocab) = 1..%u (centers are orthogonal)", o->n_clusters,
        o->dim < o->vocab_size ? o->dim : o->vocab_size);
#undef REQ
    return 0;
}

/* safetensors dtype string and element size of the three weight dtypes */
static const char *st_dtype(int dtype)
{
    return dtype == SPX_DTYPE_F16 ? "F16" : dtype == SPX_DTYPE_BF16 ? "BF16" : "F32";
}

static size_t st_dtype_size(int dtype)
{
    return dtype == SPX_DTYPE_F32 ? 4 : 2;
}

/* ---- random streams ------------------------------------------------------------------------ */

/* Stream for one named tensor: FNV-1a over the seed bytes and the name. */
static void stream_seed(spx_rng *r, uint64_t seed, const char *name)
{
    uint64_t h = 1469598103934665603ull;
    for (int k = 0; k < 8; k++)
        h = (h ^ ((seed >> (8 * k)) & 0xFF)) * 1099511628211ull;
    for (const char *c = name; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    spx_rng_seed(r, h);
}

/* Approximately standard normal: Irwin-Hall sum of 12 uniforms minus 6 (variance exactly 1,
 * support +-6). Only additions, so the stream is bit-identical everywhere. */
static double normal(spx_rng *r)
{
    double s = 0.0;
    for (int k = 0; k < 12; k++)
        s += spx_rng_uniform(r);
    return s - 6.0;
}

int spx_synth_centers(spx_ctx *ctx, const spx_synth_opts *o, float **centers)
{
    int rc = 0;
    double *c = NULL;
    float *out = NULL;
    *centers = NULL;
    SPX_TRY(rc, spx_synth_validate(ctx, o));
    size_t k_n = o->n_clusters, d = o->dim, total;
    if (spx_ckd_mul_size(k_n, d, &total))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "synth: centers size overflows");
    c = malloc(total * sizeof *c);
    out = malloc(total * sizeof *out);
    if (!c || !out)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "synth: out of memory for %zu centers", k_n);
    spx_rng r;
    stream_seed(&r, o->seed, "spx_synth.centers");
    for (size_t k = 0; k < k_n; k++) {
        double *v = c + k * d;
        for (size_t i = 0; i < d; i++)
            v[i] = normal(&r);
        /* Gram-Schmidt against earlier centers, twice for numerical orthogonality (K <= dim) */
        for (int pass = 0; pass < 2; pass++)
            for (size_t j = 0; j < k; j++) {
                const double *u = c + j * d;
                double dot = 0.0;
                for (size_t i = 0; i < d; i++)
                    dot += v[i] * u[i];
                for (size_t i = 0; i < d; i++)
                    v[i] -= dot * u[i];
            }
        double nrm = 0.0;
        for (size_t i = 0; i < d; i++)
            nrm += v[i] * v[i];
        nrm = sqrt(nrm);
        if (!(nrm > 1e-6))
            SPX_FAIL(ctx, rc, SPX_E_INTERNAL, "synth: degenerate cluster center %zu", k);
        for (size_t i = 0; i < d; i++)
            v[i] /= nrm;   /* unit now; scaled to norm sqrt(dim) on output */
    }
    for (size_t i = 0; i < total; i++)
        out[i] = (float)(c[i] * sqrt((double)d));
    *centers = out;
    out = NULL;
done:
    free(c);
    free(out);
    return rc;
}

/* ---- tensor plan --------------------------------------------------------------------------- */

int spx_synth_plan_add(spx_ctx *ctx, synth *s, const char *name, tkind kind, uint64_t rows, uint64_t cols, int is_1d)
{
    if (s->n == s->cap)
        return spx_err_set(ctx, SPX_E_INTERNAL, "synth: tensor plan overflow at %s", name);
    plan_item *it = &s->items[s->n];
    spx_st_spec *sp = &s->specs[s->n];
    snprintf(it->name, sizeof it->name, "%s", name);
    it->kind = kind;
    it->mean = it->std = 0.0;
    it->rows = rows;
    it->cols = cols;
    sp->name = it->name;
    sp->dtype = st_dtype(s->o->dtype);
    sp->ndim = is_1d ? 1 : 2;
    sp->shape[0] = is_1d ? cols : rows;
    sp->shape[1] = is_1d ? 0 : cols;
    uint64_t numel;
    if (spx_ckd_mul_u64(rows, cols, &numel) || spx_ckd_add_u64(s->n_params, numel, &s->n_params))
        return spx_err_set(ctx, SPX_E_OVERFLOW, "synth: parameter count overflows at %s", name);
    if (cols > s->max_cols)
        s->max_cols = (size_t)cols;
    s->n++;
    return 0;
}

/* Hugging Face Llama tensor names and shapes ([out, in]). */
static int plan_llama(spx_ctx *ctx, synth *s)
{
    int rc = 0;
    const spx_synth_opts *o = s->o;
    uint64_t hd = o->dim / o->n_heads, q_out = (uint64_t)o->n_heads * hd, kv_out = (uint64_t)o->n_kv_heads * hd;
    char nm[96];
    s->cap = 3 + 9 * (size_t)o->n_layers;
    s->items = calloc(s->cap, sizeof *s->items);
    s->specs = calloc(s->cap, sizeof *s->specs);
    if (!s->items || !s->specs)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "synth: out of memory for the tensor plan");
    SPX_TRY(rc, spx_synth_plan_add(ctx, s, "model.embed_tokens.weight", T_EMBED, o->vocab_size, o->dim, 0));
    for (uint32_t l = 0; l < o->n_layers; l++) {
#define LAYER(suffix, kind, rows, cols, is_1d) \
    do { snprintf(nm, sizeof nm, "model.layers.%u.%s", l, suffix); \
         SPX_TRY(rc, spx_synth_plan_add(ctx, s, nm, kind, rows, cols, is_1d)); } while (0)
        LAYER("input_layernorm.weight", T_NORM, 1, o->dim, 1);
        LAYER("self_attn.q_proj.weight", T_QK, q_out, o->dim, 0);
        LAYER("self_attn.k_proj.weight", T_QK, kv_out, o->dim, 0);
        LAYER("self_attn.v_proj.weight", T_V, kv_out, o->dim, 0);
        LAYER("self_attn.o_proj.weight", T_O, o->dim, q_out, 0);
        LAYER("post_attention_layernorm.weight", T_NORM, 1, o->dim, 1);
        LAYER("mlp.gate_proj.weight", T_GATE, o->ffn_dim, o->dim, 0);
        LAYER("mlp.up_proj.weight", T_UP, o->ffn_dim, o->dim, 0);
        LAYER("mlp.down_proj.weight", T_DOWN, o->dim, o->ffn_dim, 0);
#undef LAYER
    }
    SPX_TRY(rc, spx_synth_plan_add(ctx, s, "model.norm.weight", T_NORM_FINAL, 1, o->dim, 1));
    if (!o->tied)
        SPX_TRY(rc, spx_synth_plan_add(ctx, s, "lm_head.weight", T_LM_HEAD, o->vocab_size, o->dim, 0));
done:
    return rc;
}

/* ---- weights ------------------------------------------------------------------------------- */

/* One row of a tensor (rows are generated in order from the tensor's own stream). */
static void gen_row(const synth *s, const plan_item *it, spx_rng *r, uint64_t row, float *out)
{
    const spx_synth_opts *o = s->o;
    size_t cols = (size_t)it->cols;
    double L = (double)o->n_layers, branch = BRANCH_SCALE / sqrt(L);
    double std = 0.0;
    switch (it->kind) {
    case T_RAND:   /* the other architectures (spx_synth_arch.c): i.i.d. mean + std N(0, 1) */
        for (size_t i = 0; i < cols; i++)
            out[i] = (float)(it->mean + it->std * normal(r));
        return;
    case T_EMBED:
    case T_LM_HEAD: {
        /* special and byte-fallback tokens get shorter rows, as rarely used tokens have in
         * trained models: RMSNorm hides the length from the blocks, but as output classes they
         * lose to word pieces, so greedy generation prints text rather than stray bytes */
        const float *c = s->centers + (size_t)(row % o->n_clusters) * o->dim;
        double scale = row < RARE_IDS ? RARE_SCALE : 1.0;
        for (size_t i = 0; i < cols; i++)
            out[i] = (float)(scale * (c[i] + EMBED_NOISE * normal(r)));
        return;
    }
    case T_NORM:
    case T_NORM_FINAL: {
        double scale = it->kind == T_NORM ? 1.0 : FINAL_LOGIT / (double)o->dim;
        for (size_t i = 0; i < cols; i++)
            out[i] = (float)(scale * (1.0 + NORM_NOISE * normal(r)));
        return;
    }
    case T_GATE: {
        /* unit center direction times GATE_ALIGN/sqrt(dim): with |x| = sqrt(dim) after RMSNorm the
         * pre-activation is about GATE_ALIGN for the neuron's own cluster and ~0 for the others */
        const float *c = s->centers + (size_t)(row % o->n_clusters) * o->dim;
        double a = GATE_ALIGN / (double)o->dim, nz = GATE_NOISE / sqrt((double)o->dim);
        for (size_t i = 0; i < cols; i++)
            out[i] = (float)(a * c[i] + nz * normal(r));
        return;
    }
    case T_QK:
    case T_V:
    case T_UP:
        std = 1.0 / sqrt((double)cols);   /* unit-variance outputs for unit-RMS inputs */
        break;
    case T_O:
        std = branch / sqrt((double)cols);
        break;
    case T_DOWN: {
        /* about ffn/K neurons are active with |act*up| ~ GATE_ALIGN: output RMS ~ branch */
        double active = (double)o->ffn_dim / (double)o->n_clusters;
        std = branch / (GATE_ALIGN * sqrt(active < 1.0 ? 1.0 : active));
        break;
    }
    }
    for (size_t i = 0; i < cols; i++)
        out[i] = (float)(std * normal(r));
}

static int fill_tensor(spx_ctx *ctx, void *ud, size_t index, const spx_st_spec *spec, spx_st_writer *w)
{
    int rc = 0;
    synth *s = ud;
    const plan_item *it = &s->items[index];
    size_t cols = (size_t)it->cols, esz = st_dtype_size(s->o->dtype);
    spx_rng r;
    stream_seed(&r, s->o->seed, spec->name);
    for (uint64_t row = 0; row < it->rows; row++) {
        gen_row(s, it, &r, row, s->row);
        if (s->o->dtype == SPX_DTYPE_F16)
            spx_f32_to_f16_n(s->row, s->bytes, cols);
        else if (s->o->dtype == SPX_DTYPE_BF16)
            spx_f32_to_bf16_n(s->row, s->bytes, cols);
        else
            for (size_t i = 0; i < cols; i++) {   /* explicit little-endian */
                uint32_t u;
                memcpy(&u, &s->row[i], 4);
                for (int k = 0; k < 4; k++)
                    s->bytes[4 * i + (size_t)k] = (unsigned char)(u >> (8 * k));
            }
        SPX_TRY(rc, spx_st_writer_write(ctx, w, s->bytes, cols * esz));
    }
done:
    return rc;
}

/* ---- config.json --------------------------------------------------------------------------- */

/* config.json fields of the Llama checkpoint (key order fixed: the files are byte-identical). */
static void llama_config(const spx_synth_opts *o, cJSON *root)
{
    cJSON *archs = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(archs, cJSON_CreateString("LlamaForCausalLM"));
    cJSON_AddStringToObject(root, "model_type", "llama");
    cJSON_AddNumberToObject(root, "hidden_size", o->dim);
    cJSON_AddNumberToObject(root, "intermediate_size", o->ffn_dim);
    cJSON_AddNumberToObject(root, "num_hidden_layers", o->n_layers);
    cJSON_AddNumberToObject(root, "num_attention_heads", o->n_heads);
    cJSON_AddNumberToObject(root, "num_key_value_heads", o->n_kv_heads);
    cJSON_AddNumberToObject(root, "head_dim", o->dim / o->n_heads);
    cJSON_AddNumberToObject(root, "vocab_size", o->vocab_size);
    cJSON_AddNumberToObject(root, "max_position_embeddings", o->context_length);
    cJSON_AddRawToObject(root, "rms_norm_eps", "1e-05");
    cJSON_AddRawToObject(root, "rope_theta", "10000.0");
    cJSON_AddNullToObject(root, "rope_scaling");
    cJSON_AddStringToObject(root, "hidden_act", spx_act_name(o->act));
    cJSON_AddBoolToObject(root, "attention_bias", 0);
    cJSON_AddBoolToObject(root, "mlp_bias", 0);
    cJSON_AddBoolToObject(root, "tie_word_embeddings", o->tied);
    cJSON_AddNumberToObject(root, "bos_token_id", 1);
    cJSON_AddNumberToObject(root, "eos_token_id", 2);
}

int spx_synth_config_json(spx_ctx *ctx, const spx_synth_opts *o, char **json, size_t *len)
{
    int rc = 0;
    cJSON *root = NULL;
    char *text = NULL;
    char raw[32];
    *json = NULL;
    *len = 0;
    SPX_TRY(rc, spx_synth_validate(ctx, o));
    static const char *const torch_dtype[] = {"float32", "float16", "bfloat16"};
    root = cJSON_CreateObject();
    if (o->arch == SPX_SYNTH_LLAMA)
        llama_config(o, root);
    else
        spx_synth_config_other(o, root);
    cJSON_AddStringToObject(root, "torch_dtype", torch_dtype[o->dtype]);
    cJSON *syn = cJSON_AddObjectToObject(root, "spx_synth");
    cJSON_AddStringToObject(syn, "generator", "spx synth " SPX_VERSION_STRING);
    cJSON_AddStringToObject(syn, "arch", spx_synth_arch_name(o->arch));
    if (o->arch == SPX_SYNTH_LLAMA)
        cJSON_AddNumberToObject(syn, "clusters", o->n_clusters);
    snprintf(raw, sizeof raw, "%llu", (unsigned long long)o->seed);   /* exact for any u64 */
    cJSON_AddRawToObject(syn, "seed", raw);
    if (o->arch == SPX_SYNTH_LLAMA)
        cJSON_AddStringToObject(syn, "cluster_of_token", "id % K");
    text = cJSON_Print(root);
    if (!text || !cJSON_GetObjectItemCaseSensitive(syn, "seed"))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "synth: out of memory building config.json");
    size_t n = strlen(text);
    char *t2 = realloc(text, n + 2);   /* trailing newline like Hugging Face's files */
    if (!t2)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "synth: out of memory building config.json");
    text = t2;
    text[n] = '\n';
    text[n + 1] = '\0';
    *len = n + 1;
    *json = text;
    text = NULL;
done:
    free(text);
    cJSON_Delete(root);
    return rc;
}

/* ---- driver -------------------------------------------------------------------------------- */

/* mkdir -p */
static int make_dirs(spx_ctx *ctx, const char *dir)
{
    int rc = 0;
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (!p)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char save = p[i];
        p[i] = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            SPX_FAIL(ctx, rc, SPX_E_IO, "cannot create directory %s: %s", p, strerror(errno));
        p[i] = save;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s is not a directory", dir);
done:
    free(p);
    return rc;
}

static int write_text(spx_ctx *ctx, const char *dir, const char *file, const char *text, size_t len)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
        return spx_err_set(ctx, SPX_E_ARG, "output directory path too long: %s", dir);
    return spx_st_write_blob(ctx, path, text, len);
}

int spx_synth_write(spx_ctx *ctx, const spx_synth_opts *o, const char *dir, spx_synth_result *res)
{
    int rc = 0;
    synth s = {0};
    char *cfg = NULL, *tok = NULL;
    size_t cfg_len = 0, tok_len = 0;
    char path[4096];
    spx_synth_result r = {0};
    s.o = o;
    SPX_TRY(rc, spx_synth_validate(ctx, o));
    if (!dir || !dir[0])
        SPX_FAIL(ctx, rc, SPX_E_ARG, "synth: empty output directory");
    if ((size_t)snprintf(path, sizeof path, "%s/model.safetensors", dir) >= sizeof path)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "output directory path too long: %s", dir);
    /* build everything in memory that can fail cheaply before touching the disk */
    SPX_TRY(rc, spx_synth_config_json(ctx, o, &cfg, &cfg_len));
    SPX_TRY(rc, spx_synth_tokenizer_json(ctx, o->vocab_size, &tok, &tok_len));
    SPX_TRY(rc, spx_synth_centers(ctx, o, &s.centers));
    if (o->arch == SPX_SYNTH_LLAMA)
        SPX_TRY(rc, plan_llama(ctx, &s));
    else
        SPX_TRY(rc, spx_synth_plan_other(ctx, &s));
    s.row = malloc(s.max_cols * sizeof *s.row);
    s.bytes = malloc(s.max_cols * 4);
    if (!s.row || !s.bytes)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "synth: out of memory");
    SPX_TRY(rc, make_dirs(ctx, dir));

    static const spx_st_kv meta[] = {{"format", "pt"}};
    if (o->shard_bytes)
        SPX_TRY(rc, spx_st_write_sharded(ctx, dir, "model", o->shard_bytes, s.specs, s.n, meta, 1, fill_tensor,
                                         &s, &r.n_shards, &r.weight_bytes));
    else
        SPX_TRY(rc, spx_st_write_file(ctx, path, s.specs, s.n, meta, 1, fill_tensor, &s, &r.weight_bytes));
    /* a checkpoint of the other layout left in dir by an earlier run would shadow this one */
    snprintf(path, sizeof path, "%s/%s", dir, o->shard_bytes ? "model.safetensors" : "model.safetensors.index.json");
    if (unlink(path) != 0 && errno != ENOENT)
        SPX_FAIL(ctx, rc, SPX_E_IO, "cannot remove stale %s: %s", path, strerror(errno));
    SPX_TRY(rc, write_text(ctx, dir, "config.json", cfg, cfg_len));
    SPX_TRY(rc, write_text(ctx, dir, "tokenizer.json", tok, tok_len));
    r.n_params = s.n_params;
    r.n_tensors = (uint32_t)s.n;
    r.config_bytes = cfg_len;
    r.tokenizer_bytes = tok_len;
    if (res)
        *res = r;
done:
    free(cfg);
    free(tok);
    free(s.centers);
    free(s.items);
    free(s.specs);
    free(s.row);
    free(s.bytes);
    return rc;
}
