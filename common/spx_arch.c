/* spx_arch.c: canonical model configuration <-> .spx metadata. */
#include "spx_arch.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void spx_config_init_llama(spx_model_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->arch, sizeof c->arch, "llama");
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->rope_scaling = SPX_ROPE_NONE;
    c->rope_factor = 1.0f;
    c->act = SPX_ACT_SILU;
    c->gated = 1;
    c->norm_type = SPX_NORM_RMS;
    c->bos_id = -1;
    c->eos_id = -1;
}

static const char *const act_names[] = {"silu", "gelu", "gelu_tanh", "relu"};
static const char *const rope_names[] = {"none", "linear", "llama3"};
static const char *const norm_names[] = {"rms", "layer"};

const char *spx_act_name(int act)
{
    return (act >= 0 && act < 4) ? act_names[act] : "?";
}

static int parse_name(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

int spx_act_parse(const char *s)
{
    return parse_name(s, act_names, 4);
}

int spx_config_validate(spx_ctx *ctx, const spx_model_config *c)
{
#define REQ(cond, ...) do { if (!(cond)) return spx_err_set(ctx, SPX_E_CONFIG, __VA_ARGS__); } while (0)
    REQ(c->arch[0], "model config: architecture name is empty");
    REQ(c->vocab_size > 0 && c->vocab_size <= (1u << 24), "model config: vocab_size %u out of range (1..16777216)", c->vocab_size);
    REQ(c->dim > 0 && c->dim <= (1u << 20), "model config: hidden size %u out of range", c->dim);
    REQ(c->ffn_dim > 0 && c->ffn_dim <= (1u << 22), "model config: intermediate size %u out of range", c->ffn_dim);
    REQ(c->n_layers > 0 && c->n_layers <= 4096, "model config: layer count %u out of range (1..4096)", c->n_layers);
    REQ(c->n_heads > 0 && c->n_heads <= 4096, "model config: head count %u out of range", c->n_heads);
    REQ(c->n_kv_heads > 0 && c->n_kv_heads <= c->n_heads && c->n_heads % c->n_kv_heads == 0,
        "model config: kv head count %u must divide head count %u", c->n_kv_heads, c->n_heads);
    REQ(c->head_dim > 0 && c->head_dim % 2 == 0 && c->head_dim <= 65536,
        "model config: head_dim %u must be even and positive", c->head_dim);
    REQ(c->rope_dim % 2 == 0 && c->rope_dim <= c->head_dim,
        "model config: rotary dimension %u must be even and <= head_dim %u", c->rope_dim, c->head_dim);
    REQ(isfinite(c->norm_eps) && c->norm_eps > 0, "model config: norm epsilon must be positive");
    REQ(isfinite(c->rope_theta) && c->rope_theta > 0, "model config: rope_theta must be positive");
    REQ(c->act >= 0 && c->act <= SPX_ACT_RELU, "model config: unknown activation %d", c->act);
    REQ(c->rope_scaling >= 0 && c->rope_scaling <= SPX_ROPE_LLAMA3, "model config: unknown rope scaling %d", c->rope_scaling);
    REQ(c->rope_scaling == SPX_ROPE_NONE || (isfinite(c->rope_factor) && c->rope_factor > 0),
        "model config: rope scaling factor must be positive");
    REQ(c->norm_type == SPX_NORM_RMS || c->norm_type == SPX_NORM_LAYER, "model config: unknown norm type");
    REQ(c->n_pos_embd <= (1u << 24), "model config: position table of %u rows out of range", c->n_pos_embd);
    REQ(c->n_pos_embd ? c->pos_offset < c->n_pos_embd : c->pos_offset == 0,
        "model config: position offset %u must be below the position table size %u", c->pos_offset, c->n_pos_embd);
    REQ(!(c->post_norm && c->parallel_residual), "model config: post-norm blocks cannot use a parallel residual");
#undef REQ
    return 0;
}

/* The optional layout keys (spx_arch.h): written only when they differ from the Llama default,
 * so Llama files keep exactly their earlier metadata. */
static int layout_to_meta(spx_writer *w, const spx_model_config *c)
{
    int rc = 0;
    if (c->n_pos_embd) {
        SPX_TRY(rc, spx_writer_meta_u32(w, "spx.position_embd.count", c->n_pos_embd));
        SPX_TRY(rc, spx_writer_meta_u32(w, "spx.position_embd.offset", c->pos_offset));
    }
    if (c->post_norm)
        SPX_TRY(rc, spx_writer_meta_bool(w, "spx.norm.post", 1));
    if (c->no_output_norm)
        SPX_TRY(rc, spx_writer_meta_bool(w, "spx.norm.output", 0));
    if (c->parallel_residual)
        SPX_TRY(rc, spx_writer_meta_bool(w, "spx.residual.parallel", 1));
done:
    return rc;
}

static int layout_from_file(spx_ctx *ctx, const spx_file *f, spx_model_config *c)
{
    int rc = 0;
    int out_norm = 1;
    if (spx_file_meta_find(f, "spx.position_embd.count"))
        SPX_TRY(rc, spx_meta_get_u32(ctx, f, "spx.position_embd.count", &c->n_pos_embd));
    if (spx_file_meta_find(f, "spx.position_embd.offset"))
        SPX_TRY(rc, spx_meta_get_u32(ctx, f, "spx.position_embd.offset", &c->pos_offset));
    if (spx_file_meta_find(f, "spx.norm.post"))
        SPX_TRY(rc, spx_meta_get_bool(ctx, f, "spx.norm.post", &c->post_norm));
    if (spx_file_meta_find(f, "spx.norm.output"))
        SPX_TRY(rc, spx_meta_get_bool(ctx, f, "spx.norm.output", &out_norm));
    c->no_output_norm = !out_norm;
    if (spx_file_meta_find(f, "spx.residual.parallel"))
        SPX_TRY(rc, spx_meta_get_bool(ctx, f, "spx.residual.parallel", &c->parallel_residual));
done:
    return rc;
}

static int key(char *buf, size_t cap, const char *arch, const char *suffix)
{
    int n = snprintf(buf, cap, "%s.%s", arch, suffix);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

int spx_config_to_meta(spx_writer *w, const spx_model_config *c)
{
    char k[160];
    int rc = 0;
    const char *a = c->arch;
#define U32(sfx, v) do { if (key(k, sizeof k, a, sfx)) goto bad; SPX_TRY(rc, spx_writer_meta_u32(w, k, (v))); } while (0)
#define F32(sfx, v) do { if (key(k, sizeof k, a, sfx)) goto bad; SPX_TRY(rc, spx_writer_meta_f32(w, k, (v))); } while (0)
    SPX_TRY(rc, spx_writer_meta_str(w, "general.architecture", a, strlen(a)));
    SPX_TRY(rc, spx_writer_meta_str(w, "general.name", c->name, strlen(c->name)));
    U32("vocab_size", c->vocab_size);
    U32("context_length", c->context_length);
    U32("embedding_length", c->dim);
    U32("feed_forward_length", c->ffn_dim);
    U32("block_count", c->n_layers);
    U32("attention.head_count", c->n_heads);
    U32("attention.head_count_kv", c->n_kv_heads);
    U32("attention.key_length", c->head_dim);
    F32("attention.layer_norm_rms_epsilon", c->norm_eps);
    F32("rope.freq_base", c->rope_theta);
    U32("rope.dimension_count", c->rope_dim);
    if (key(k, sizeof k, a, "rope.scaling.type"))
        goto bad;
    SPX_TRY(rc, spx_writer_meta_str(w, k, rope_names[c->rope_scaling], strlen(rope_names[c->rope_scaling])));
    if (c->rope_scaling != SPX_ROPE_NONE) {
        F32("rope.scaling.factor", c->rope_factor);
        F32("rope.scaling.low_freq_factor", c->rope_low_freq_factor);
        F32("rope.scaling.high_freq_factor", c->rope_high_freq_factor);
        U32("rope.scaling.original_context_length", c->rope_orig_ctx);
    }
    SPX_TRY(rc, spx_writer_meta_str(w, "spx.ffn.activation", act_names[c->act], strlen(act_names[c->act])));
    SPX_TRY(rc, spx_writer_meta_bool(w, "spx.ffn.gated", c->gated));
    SPX_TRY(rc, spx_writer_meta_str(w, "spx.norm.type", norm_names[c->norm_type], strlen(norm_names[c->norm_type])));
    SPX_TRY(rc, spx_writer_meta_bool(w, "spx.tied_embeddings", c->tied_embeddings));
    SPX_TRY(rc, spx_writer_meta_bool(w, "spx.attention.bias", c->attn_bias));
    SPX_TRY(rc, spx_writer_meta_bool(w, "spx.attention.output_bias", c->attn_out_bias));
    SPX_TRY(rc, spx_writer_meta_bool(w, "spx.ffn.bias", c->ffn_bias));
    SPX_TRY(rc, spx_writer_meta_i32(w, "spx.bos_token_id", c->bos_id));
    SPX_TRY(rc, spx_writer_meta_i32(w, "spx.eos_token_id", c->eos_id));
    SPX_TRY(rc, layout_to_meta(w, c));
#undef U32
#undef F32
done:
    return rc;
bad:
    return spx_err_set(spx_writer_ctx(w), SPX_E_ARG, "architecture name '%s' too long for a metadata key", a);
}

static int get_enum(spx_ctx *ctx, const spx_file *f, const char *k, const char *const *names, int n, int *out)
{
    const char *s;
    size_t len;
    int rc = spx_meta_get_str(ctx, f, k, &s, &len);
    if (rc < 0)
        return rc;
    int v = parse_name(s, names, n);
    if (v < 0)
        return spx_err_set(ctx, SPX_E_META, "%s: metadata key '%s' has unknown value '%s'", spx_file_path(f), k, s);
    *out = v;
    return 0;
}

int spx_config_from_file(spx_ctx *ctx, const spx_file *f, spx_model_config *c)
{
    char k[160];
    int rc = 0;
    const char *s;
    size_t len;
    double d;
    int64_t i64;
    spx_config_init_llama(c);
    SPX_TRY(rc, spx_meta_get_str(ctx, f, "general.architecture", &s, &len));
    if (len == 0 || len >= sizeof c->arch)
        SPX_FAIL(ctx, rc, SPX_E_META, "%s: general.architecture '%s' is empty or too long", spx_file_path(f), s);
    memcpy(c->arch, s, len + 1);
    if (spx_file_meta_find(f, "general.name")) {
        SPX_TRY(rc, spx_meta_get_str(ctx, f, "general.name", &s, &len));
        snprintf(c->name, sizeof c->name, "%s", s);
    }
#define U32(sfx, dst) do { if (key(k, sizeof k, c->arch, sfx)) goto bad; SPX_TRY(rc, spx_meta_get_u32(ctx, f, k, &(dst))); } while (0)
#define F32(sfx, dst) do { if (key(k, sizeof k, c->arch, sfx)) goto bad; SPX_TRY(rc, spx_meta_get_f64(ctx, f, k, &d)); (dst) = (float)d; } while (0)
    U32("vocab_size", c->vocab_size);
    U32("context_length", c->context_length);
    U32("embedding_length", c->dim);
    U32("feed_forward_length", c->ffn_dim);
    U32("block_count", c->n_layers);
    U32("attention.head_count", c->n_heads);
    U32("attention.head_count_kv", c->n_kv_heads);
    U32("attention.key_length", c->head_dim);
    F32("attention.layer_norm_rms_epsilon", c->norm_eps);
    F32("rope.freq_base", c->rope_theta);
    U32("rope.dimension_count", c->rope_dim);
    if (key(k, sizeof k, c->arch, "rope.scaling.type"))
        goto bad;
    SPX_TRY(rc, get_enum(ctx, f, k, rope_names, 3, &c->rope_scaling));
    if (c->rope_scaling != SPX_ROPE_NONE) {
        F32("rope.scaling.factor", c->rope_factor);
        F32("rope.scaling.low_freq_factor", c->rope_low_freq_factor);
        F32("rope.scaling.high_freq_factor", c->rope_high_freq_factor);
        U32("rope.scaling.original_context_length", c->rope_orig_ctx);
    }
#undef U32
#undef F32
    SPX_TRY(rc, get_enum(ctx, f, "spx.ffn.activation", act_names, 4, &c->act));
    SPX_TRY(rc, spx_meta_get_bool(ctx, f, "spx.ffn.gated", &c->gated));
    SPX_TRY(rc, get_enum(ctx, f, "spx.norm.type", norm_names, 2, &c->norm_type));
    SPX_TRY(rc, spx_meta_get_bool(ctx, f, "spx.tied_embeddings", &c->tied_embeddings));
    SPX_TRY(rc, spx_meta_get_bool(ctx, f, "spx.attention.bias", &c->attn_bias));
    SPX_TRY(rc, spx_meta_get_bool(ctx, f, "spx.attention.output_bias", &c->attn_out_bias));
    SPX_TRY(rc, spx_meta_get_bool(ctx, f, "spx.ffn.bias", &c->ffn_bias));
    SPX_TRY(rc, spx_meta_get_i64(ctx, f, "spx.bos_token_id", &i64));
    c->bos_id = (int32_t)i64;
    SPX_TRY(rc, spx_meta_get_i64(ctx, f, "spx.eos_token_id", &i64));
    c->eos_id = (int32_t)i64;
    SPX_TRY(rc, layout_from_file(ctx, f, c));
    rc = spx_config_validate(ctx, c);
    if (rc < 0)
        spx_err_prefix(ctx, "%s: ", spx_file_path(f));
done:
    return rc;
bad:
    return spx_err_set(ctx, SPX_E_META, "%s: architecture name too long", spx_file_path(f));
}

void spx_tensor_name(char *buf, size_t cap, int layer, const char *base, const char *suffix)
{
    if (layer < 0)
        snprintf(buf, cap, "%s.%s", base, suffix);
    else
        snprintf(buf, cap, "blk.%d.%s.%s", layer, base, suffix);
}
