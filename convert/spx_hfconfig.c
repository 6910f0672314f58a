/* spx_hfconfig.c: config.json -> spx_model_config (rules in spx_hfconfig.h). */
#include "spx_hfconfig.h"
#include "spx_hfconfig_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONFIG_MAX_BYTES (16u << 20)

/* model_type / architectures spellings -> family. */
typedef enum family { FAM_LLAMA, FAM_MISTRAL, FAM_QWEN2, FAM_GPT2, FAM_NEOX, FAM_OPT } family;

static const struct {
    const char *model_type;
    const char *architecture;
    family fam;
} known_types[] = {
    {"llama", "LlamaForCausalLM", FAM_LLAMA},
    {"smollm", NULL, FAM_LLAMA},
    {"tinyllama", NULL, FAM_LLAMA},
    {"mistral", "MistralForCausalLM", FAM_MISTRAL},
    {"qwen2", "Qwen2ForCausalLM", FAM_QWEN2},
    {"gpt2", "GPT2LMHeadModel", FAM_GPT2},
    {"gpt_neox", "GPTNeoXForCausalLM", FAM_NEOX},
    {"opt", "OPTForCausalLM", FAM_OPT},
};

static const struct {
    const char *name;
    int act;
} known_acts[] = {
    {"silu", SPX_ACT_SILU},           {"swish", SPX_ACT_SILU},
    {"gelu", SPX_ACT_GELU},           {"gelu_new", SPX_ACT_GELU_TANH},
    {"gelu_pytorch_tanh", SPX_ACT_GELU_TANH}, {"gelu_fast", SPX_ACT_GELU_TANH},
    {"relu", SPX_ACT_RELU},
};

/* Absent and JSON null both mean "use the default". */
const cJSON *spx_hfc_field(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Duplicate keys make a config ambiguous (cJSON would silently take the first). */
static int no_dup_keys(spx_ctx *ctx, const cJSON *obj, const char *label, const char *where)
{
    int rc = 0;
    size_t n = (size_t)cJSON_GetArraySize(obj), k = 0;
    const char **keys = malloc((n + 1) * sizeof *keys);
    if (!keys)
        return spx_err_set(ctx, SPX_E_NOMEM, "%s: out of memory", label);
    for (const cJSON *a = obj->child; a && k < n; a = a->next)
        keys[k++] = a->string;
    qsort(keys, k, sizeof *keys, cmp_str);
    for (size_t i = 1; i < k; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) {
            rc = spx_err_set(ctx, SPX_E_JSON, "%s: duplicate key '%s' in %s", label, keys[i], where);
            break;
        }
    free(keys);
    return rc;
}

int spx_hfc_u32(spx_ctx *ctx, const cJSON *obj, const char *key, int required, uint32_t def,
                   const char *label, uint32_t *out)
{
    const cJSON *v = spx_hfc_field(obj, key);
    if (!v) {
        if (required)
            return spx_err_set(ctx, SPX_E_CONFIG, "%s: required field '%s' is missing", label, key);
        *out = def;
        return 0;
    }
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || !(d >= 0) || d > 4294967295.0 || floor(d) != d)
        return spx_err_set(ctx, SPX_E_CONFIG, "%s: field '%s' must be an integer in 0..4294967295", label, key);
    *out = (uint32_t)d;
    return 0;
}

int spx_hfc_f32(spx_ctx *ctx, const cJSON *obj, const char *key, int required, float def,
                   const char *label, float *out)
{
    const cJSON *v = spx_hfc_field(obj, key);
    if (!v) {
        if (required)
            return spx_err_set(ctx, SPX_E_CONFIG, "%s: required field '%s' is missing", label, key);
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || fabs(v->valuedouble) > 3.0e38)
        return spx_err_set(ctx, SPX_E_CONFIG, "%s: field '%s' must be a finite number", label, key);
    *out = (float)v->valuedouble;
    return 0;
}

int spx_hfc_bool(spx_ctx *ctx, const cJSON *obj, const char *key, int def, const char *label, int *out)
{
    const cJSON *v = spx_hfc_field(obj, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v))
        return spx_err_set(ctx, SPX_E_CONFIG, "%s: field '%s' must be true or false", label, key);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return 0;
}

/* Token ids: an integer, a list of integers (first taken) or null (-1). */
int spx_hfc_token_id(spx_ctx *ctx, const cJSON *obj, const char *key, const char *label, int32_t *out,
                        int *was_list)
{
    const cJSON *v = spx_hfc_field(obj, key);
    *out = -1;
    if (was_list)
        *was_list = 0;
    if (v && cJSON_IsArray(v)) {
        if (was_list)
            *was_list = 1;
        v = v->child;
    }
    if (!v)
        return 0;
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || !(d >= 0) || d > 2147483647.0 || floor(d) != d)
        return spx_err_set(ctx, SPX_E_CONFIG, "%s: field '%s' must be a token id (non-negative integer)", label, key);
    *out = (int32_t)d;
    return 0;
}

int spx_hfc_rope(spx_ctx *ctx, const cJSON *rs, const char *label, spx_model_config *c)
{
    int rc = 0;
    const char *where = "rope_scaling";
    if (!cJSON_IsObject(rs))
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: rope_scaling must be null or an object", label);
    SPX_TRY(rc, no_dup_keys(ctx, rs, label, where));
    const cJSON *ty = spx_hfc_field(rs, "rope_type");
    if (!ty)
        ty = spx_hfc_field(rs, "type");
    if (!ty || !cJSON_IsString(ty))
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: rope_scaling has no \"rope_type\"/\"type\" string", label);
    const char *t = ty->valuestring;
    if (strcmp(t, "default") == 0) {
        c->rope_scaling = SPX_ROPE_NONE;
    } else if (strcmp(t, "linear") == 0) {
        c->rope_scaling = SPX_ROPE_LINEAR;
        SPX_TRY(rc, spx_hfc_f32(ctx, rs, "factor", 1, 0, label, &c->rope_factor));
    } else if (strcmp(t, "llama3") == 0) {
        c->rope_scaling = SPX_ROPE_LLAMA3;
        SPX_TRY(rc, spx_hfc_f32(ctx, rs, "factor", 1, 0, label, &c->rope_factor));
        SPX_TRY(rc, spx_hfc_f32(ctx, rs, "low_freq_factor", 1, 0, label, &c->rope_low_freq_factor));
        SPX_TRY(rc, spx_hfc_f32(ctx, rs, "high_freq_factor", 1, 0, label, &c->rope_high_freq_factor));
        SPX_TRY(rc, spx_hfc_u32(ctx, rs, "original_max_position_embeddings", 1, 0, label, &c->rope_orig_ctx));
        if (!(c->rope_low_freq_factor > 0) || !(c->rope_high_freq_factor > c->rope_low_freq_factor) ||
            c->rope_orig_ctx == 0)
            SPX_FAIL(ctx, rc, SPX_E_CONFIG,
                     "%s: llama3 rope_scaling needs 0 < low_freq_factor < high_freq_factor and "
                     "original_max_position_embeddings > 0", label);
    } else {
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: rope_scaling type '%s' is not supported (supported: linear, llama3)",
                 label, t);
    }
    if (c->rope_scaling != SPX_ROPE_NONE && !(c->rope_factor > 0))
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: rope_scaling factor must be positive", label);
done:
    return rc;
}

static int find_family(spx_ctx *ctx, const cJSON *root, const char *label, spx_hfconfig *h, family *fam)
{
    const cJSON *mt = spx_hfc_field(root, "model_type");
    const cJSON *ar = spx_hfc_field(root, "architectures");
    const char *arch0 = (ar && cJSON_IsArray(ar) && cJSON_IsString(ar->child)) ? ar->child->valuestring : NULL;
    size_t n = sizeof known_types / sizeof known_types[0];
    if (mt) {
        if (!cJSON_IsString(mt))
            return spx_err_set(ctx, SPX_E_CONFIG, "%s: model_type must be a string", label);
        for (size_t i = 0; i < n; i++)
            if (strcmp(mt->valuestring, known_types[i].model_type) == 0) {
                *fam = known_types[i].fam;
                snprintf(h->model_type, sizeof h->model_type, "%s", known_types[i].model_type);
                return 0;
            }
        return spx_err_set(ctx, SPX_E_UNSUPPORTED,
                           "%s: model_type '%s' is not supported (supported: llama, mistral, qwen2, smollm, tinyllama, gpt2, "
                           "gpt_neox, opt)",
                           label, mt->valuestring);
    }
    if (!arch0)
        return spx_err_set(ctx, SPX_E_CONFIG, "%s: neither model_type nor architectures is given", label);
    for (size_t i = 0; i < n; i++)
        if (known_types[i].architecture && strcmp(arch0, known_types[i].architecture) == 0) {
            *fam = known_types[i].fam;
            snprintf(h->model_type, sizeof h->model_type, "%s", known_types[i].model_type);
            return 0;
        }
    return spx_err_set(ctx, SPX_E_UNSUPPORTED,
                       "%s: architecture '%s' is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
                       "Qwen2ForCausalLM, GPT2LMHeadModel, GPTNeoXForCausalLM, OPTForCausalLM)", label, arch0);
}

int spx_hfconfig_parse(spx_ctx *ctx, const char *json, size_t len, const char *label, spx_hfconfig *out)
{
    int rc = 0;
    cJSON *root = NULL;
    char *copy = NULL;
    family fam = FAM_LLAMA;
    memset(out, 0, sizeof *out);
    spx_model_config *c = &out->cfg;
    spx_config_init_llama(c);
    copy = malloc(len + 1);   /* cJSON gets a NUL-terminated copy */
    if (!copy)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", label);
    memcpy(copy, json, len);
    copy[len] = '\0';
    if (strlen(copy) != len)
        SPX_FAIL(ctx, rc, SPX_E_JSON, "%s: NUL byte at offset %zu", label, strlen(copy));
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(copy, len, &end, 0);
    if (!root)
        SPX_FAIL(ctx, rc, SPX_E_JSON, "%s: invalid JSON near byte %zu", label, end ? (size_t)(end - copy) : (size_t)0);
    for (const char *p = end; p < copy + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            SPX_FAIL(ctx, rc, SPX_E_JSON, "%s: unexpected data after the JSON object at byte %zu", label,
                     (size_t)(p - copy));
    if (!cJSON_IsObject(root))
        SPX_FAIL(ctx, rc, SPX_E_JSON, "%s: not a JSON object", label);
    SPX_TRY(rc, no_dup_keys(ctx, root, label, "config.json"));
    const cJSON *q = spx_hfc_field(root, "quantization_config");
    if (q) {
        const cJSON *qm = cJSON_IsObject(q) ? spx_hfc_field(q, "quant_method") : NULL;
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: quantized checkpoints are not supported (quantization_config%s%s%s)",
                 label, qm && cJSON_IsString(qm) ? ", quant_method '" : "",
                 qm && cJSON_IsString(qm) ? qm->valuestring : "", qm && cJSON_IsString(qm) ? "'" : "");
    }
    SPX_TRY(rc, find_family(ctx, root, label, out, &fam));
    if (fam == FAM_GPT2 || fam == FAM_NEOX || fam == FAM_OPT) {
        rc = fam == FAM_GPT2 ? spx_hfc_parse_gpt2(ctx, root, label, out)
           : fam == FAM_NEOX ? spx_hfc_parse_neox(ctx, root, label, out)
                             : spx_hfc_parse_opt(ctx, root, label, out);
        if (rc < 0)
            goto done;
        rc = spx_config_validate(ctx, c);
        if (rc < 0)
            spx_err_prefix(ctx, "%s: ", label);
        goto done;
    }

    SPX_TRY(rc, spx_hfc_u32(ctx, root, "vocab_size", 1, 0, label, &c->vocab_size));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "hidden_size", 1, 0, label, &c->dim));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "intermediate_size", 1, 0, label, &c->ffn_dim));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "num_hidden_layers", 1, 0, label, &c->n_layers));
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "num_attention_heads", 1, 0, label, &c->n_heads));
    if (c->n_heads == 0)
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: num_attention_heads must be positive", label);
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "num_key_value_heads", 0, c->n_heads, label, &c->n_kv_heads));
    if (!spx_hfc_field(root, "head_dim") && c->dim % c->n_heads != 0)
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: hidden_size %u is not a multiple of num_attention_heads %u and no head_dim is given",
                 label, c->dim, c->n_heads);
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "head_dim", 0, c->dim / c->n_heads, label, &c->head_dim));
    c->rope_dim = c->head_dim;
    float prf = 1.0f;
    SPX_TRY(rc, spx_hfc_f32(ctx, root, "partial_rotary_factor", 0, 1.0f, label, &prf));
    if (prf != 1.0f)
        SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: partial_rotary_factor %g is not supported", label, (double)prf);
    SPX_TRY(rc, spx_hfc_u32(ctx, root, "max_position_embeddings", 0, 0, label, &c->context_length));
    SPX_TRY(rc, spx_hfc_f32(ctx, root, "rms_norm_eps", 0, 1e-6f, label, &c->norm_eps));

    /* Newer configs nest rope settings in rope_parameters; older ones use rope_theta + rope_scaling. */
    const cJSON *rp = spx_hfc_field(root, "rope_parameters");
    const cJSON *rs = spx_hfc_field(root, "rope_scaling");
    if (rp && !cJSON_IsObject(rp))
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: rope_parameters must be an object", label);
    float theta_default = 10000.0f;
    if (rp)
        SPX_TRY(rc, spx_hfc_f32(ctx, rp, "rope_theta", 0, 10000.0f, label, &theta_default));
    SPX_TRY(rc, spx_hfc_f32(ctx, root, "rope_theta", 0, theta_default, label, &c->rope_theta));
    if (rs || rp)
        SPX_TRY(rc, spx_hfc_rope(ctx, rs ? rs : rp, label, c));

    const cJSON *act = spx_hfc_field(root, "hidden_act");
    if (act) {
        if (!cJSON_IsString(act))
            SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: hidden_act must be a string", label);
        c->act = -1;
        for (size_t i = 0; i < sizeof known_acts / sizeof known_acts[0]; i++)
            if (strcmp(act->valuestring, known_acts[i].name) == 0)
                c->act = known_acts[i].act;
        if (c->act < 0)
            SPX_FAIL(ctx, rc, SPX_E_UNSUPPORTED, "%s: hidden_act '%s' is not supported (silu, gelu, gelu_new, "
                     "gelu_pytorch_tanh, gelu_fast, relu)", label, act->valuestring);
    }

    int bias = 0;
    SPX_TRY(rc, spx_hfc_bool(ctx, root, "attention_bias", 0, label, &bias));
    c->attn_bias = bias;
    c->attn_out_bias = bias;
    if (fam == FAM_QWEN2) {   /* Qwen2Attention: q/k/v Linear(bias=True), o_proj bias=False */
        c->attn_bias = 1;
        c->attn_out_bias = 0;
    }
    SPX_TRY(rc, spx_hfc_bool(ctx, root, "mlp_bias", 0, label, &c->ffn_bias));
    out->tie_set = spx_hfc_field(root, "tie_word_embeddings") != NULL;
    SPX_TRY(rc, spx_hfc_bool(ctx, root, "tie_word_embeddings", 0, label, &c->tied_embeddings));
    SPX_TRY(rc, spx_hfc_token_id(ctx, root, "bos_token_id", label, &c->bos_id, NULL));
    SPX_TRY(rc, spx_hfc_token_id(ctx, root, "eos_token_id", label, &c->eos_id, &out->eos_list));

    /* Sliding-window attention equals full attention for contexts up to the window: recorded only. */
    int use_sw = fam == FAM_MISTRAL;
    if (fam == FAM_QWEN2)
        SPX_TRY(rc, spx_hfc_bool(ctx, root, "use_sliding_window", 0, label, &use_sw));
    if (use_sw)
        SPX_TRY(rc, spx_hfc_u32(ctx, root, "sliding_window", 0, 0, label, &out->sliding_window));

    rc = spx_config_validate(ctx, c);
    if (rc < 0)
        spx_err_prefix(ctx, "%s: ", label);
done:
    cJSON_Delete(root);
    free(copy);
    return rc;
}

int spx_hfconfig_read(spx_ctx *ctx, const char *path, spx_hfconfig *out)
{
    int rc = 0;
    char *buf = NULL;
    FILE *fp = fopen(path, "rb");
    struct stat st;
    if (!fp || fstat(fileno(fp), &st) != 0)
        SPX_FAIL(ctx, rc, errno == ENOENT ? SPX_E_MISSING : SPX_E_IO, "%s: cannot open: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > CONFIG_MAX_BYTES)
        SPX_FAIL(ctx, rc, SPX_E_CONFIG, "%s: not a regular file of at most %u bytes", path, CONFIG_MAX_BYTES);
    size_t len = (size_t)st.st_size;
    buf = malloc(len + 1);
    if (!buf)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", path);
    if (len && fread(buf, 1, len, fp) != len)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: read failed", path);
    rc = spx_hfconfig_parse(ctx, buf, len, path, out);
done:
    if (fp)
        fclose(fp);
    free(buf);
    return rc;
}
