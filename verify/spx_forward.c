/* spx_forward.c: embedding, transformer blocks, classifier (see spx_forward.h for the math). */
#include "spx_forward.h"

#include <string.h>

#include "spx_moe.h"
#include "spx_ops.h"

int spx_embed_at(spx_ctx *ctx, const spx_model *model, const uint32_t *tokens, size_t n, uint32_t pos0, float *X)
{
    const spx_model_config *c = &model->cfg;
    const uint32_t dim = c->dim;
    /* learned positions: token i reads row pos0 + i + pos_offset of the table */
    if (model->pos_embd && (pos0 > c->n_pos_embd - c->pos_offset || n > (size_t)(c->n_pos_embd - c->pos_offset - pos0)))
        return spx_err_set(ctx, SPX_E_LIMIT, "positions %u..%zu exceed the model's %u learned positions", pos0,
                           (size_t)pos0 + n - 1, c->n_pos_embd - c->pos_offset);
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] >= c->vocab_size)
            return spx_err_set(ctx, SPX_E_ARG, "token id %u at index %zu is out of range (vocabulary size %u)",
                               tokens[i], i, c->vocab_size);
        memcpy(X + i * dim, model->tok_embd + (size_t)tokens[i] * dim, dim * sizeof(float));
        if (model->pos_embd) {
            const float *p = model->pos_embd + ((size_t)pos0 + i + c->pos_offset) * dim;
            for (uint32_t j = 0; j < dim; j++)
                X[i * dim + j] += p[j];
        }
    }
    return 0;
}

int spx_embed(spx_ctx *ctx, const spx_model *model, const uint32_t *tokens, size_t n, float *X)
{
    return spx_embed_at(ctx, model, tokens, n, 0, X);
}

static void residual_add(float *X, const float *Y, size_t count)
{
    for (size_t i = 0; i < count; i++)
        X[i] += Y[i];
}

int spx_block_forward(spx_ctx *ctx, const spx_model *model, spx_state *s, uint32_t layer, float *X, size_t n,
                      const spx_forward_hooks *hooks)
{
    int rc = 0;
    const spx_model_config *c = &model->cfg;
    const spx_layer *L;
    float *kc, *vc;
    const float *ain;
    if (layer >= c->n_layers)
        return spx_err_set(ctx, SPX_E_ARG, "block_forward: layer %u out of range (%u layers)", layer, c->n_layers);
    if (n == 0 || n > s->max_batch)
        return spx_err_set(ctx, SPX_E_ARG, "block_forward: %zu tokens, the state takes 1..%u per call", n, s->max_batch);
    if (n > (size_t)(s->max_ctx - s->pos))
        return spx_err_set(ctx, SPX_E_LIMIT, "context full: %u positions cached + %zu new > max context %u", s->pos, n,
                           s->max_ctx);
    L = &model->layers[layer];
    if ((L->moe || L->gating) && (rc = spx_expert_reserve(ctx, model, s, layer, n)) < 0)
        return rc;
    kc = s->k_cache + ((size_t)layer * s->max_ctx + s->pos) * s->kv_dim;
    vc = s->v_cache + ((size_t)layer * s->max_ctx + s->pos) * s->kv_dim;

    /* attention: pre-norm blocks read norm(X), post-norm blocks X itself */
    ain = X;
    if (!c->post_norm) {
        spx_ops_norm(&L->attn_norm, c->norm_type, c->norm_eps, X, n, c->dim, s->xn);
        ain = s->xn;
    }
    if (hooks && hooks->attn_input)
        hooks->attn_input(hooks->ud, layer, ain, n);
    spx_linear_forward(&L->q, ain, n, s->q);
    spx_linear_forward(&L->k, ain, n, kc);   /* K/V rows go straight into the cache */
    spx_linear_forward(&L->v, ain, n, vc);
    spx_ops_rope(s->q, n, s->q_dim, c->n_heads, c->head_dim, c->rope_dim, s->rope_cos, s->rope_sin, s->pos);
    spx_ops_rope(kc, n, s->kv_dim, c->n_kv_heads, c->head_dim, c->rope_dim, s->rope_cos, s->rope_sin, s->pos);
    spx_ops_attention(c, s, layer, n);
    if (hooks && hooks->attn_out_input)
        hooks->attn_out_input(hooks->ud, layer, s->att, n);
    spx_linear_forward(&L->o, s->att, n, s->tmp);

    /* MLP input: parallel residual normalises the block input, sequential the updated stream */
    if (c->parallel_residual) {
        spx_ops_norm(&L->ffn_norm, c->norm_type, c->norm_eps, X, n, c->dim, s->xn);
        residual_add(X, s->tmp, n * c->dim);
    } else if (c->post_norm) {
        residual_add(X, s->tmp, n * c->dim);
        spx_ops_norm(&L->attn_norm, c->norm_type, c->norm_eps, X, n, c->dim, X);
        memcpy(s->xn, X, n * c->dim * sizeof(float));
    } else {
        residual_add(X, s->tmp, n * c->dim);
        spx_ops_norm(&L->ffn_norm, c->norm_type, c->norm_eps, X, n, c->dim, s->xn);
    }
    if (hooks && hooks->mlp_input)
        hooks->mlp_input(hooks->ud, layer, s->xn, n);
    if (L->moe) {
        spx_moe_mlp(model, s, layer, n, hooks);
    } else if (L->gating) {
        spx_gate_mlp(model, s, layer, n, hooks);
    } else {
        if (c->gated)
            spx_linear_forward(&L->gate, s->xn, n, s->gate);
        spx_linear_forward(&L->up, s->xn, n, s->up);
        spx_ops_act(c->act, c->gated, s->gate, s->up, n * c->ffn_dim);
        spx_sparsity_apply(s, layer, s->up, n, c->ffn_dim);
        if (hooks && hooks->mlp_hidden)
            hooks->mlp_hidden(hooks->ud, layer, s->up, n);
        spx_linear_forward(&L->down, s->up, n, s->tmp);
    }
    if (!L->gating) {   /* gated layers count their own work */
        s->ffn_neurons_run += (uint64_t)n * c->ffn_dim;
        s->ffn_neurons_total += (uint64_t)n * c->ffn_dim;
    }
    residual_add(X, s->tmp, n * c->dim);
    if (c->post_norm)
        spx_ops_norm(&L->ffn_norm, c->norm_type, c->norm_eps, X, n, c->dim, X);
    return 0;
}

void spx_head(const spx_model *model, float *X, size_t n, float *logits)
{
    if (model->out_norm.w)   /* OPT post-norm models have none */
        spx_ops_norm(&model->out_norm, model->cfg.norm_type, model->cfg.norm_eps, X, n, model->cfg.dim, X);
    spx_linear_forward(&model->output, X, n, logits);
}

int spx_forward_hooked(spx_ctx *ctx, const spx_model *model, spx_state *s, const uint32_t *tokens, size_t n,
                       float *logits, float *last_logits, const spx_forward_hooks *hooks)
{
    int rc = 0;
    const spx_model_config *c = &model->cfg;
    const uint32_t pos0 = s->pos;
    if (n == 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "forward: no tokens");
    if (n > (size_t)(s->max_ctx - s->pos))
        SPX_FAIL(ctx, rc, SPX_E_LIMIT, "context full: %u positions cached + %zu new > max context %u", s->pos, n,
                 s->max_ctx);
    for (size_t i = 0; i < n; i++)
        if (tokens[i] >= c->vocab_size)
            SPX_FAIL(ctx, rc, SPX_E_ARG, "token id %u at index %zu is out of range (vocabulary size %u)", tokens[i], i,
                     c->vocab_size);
    for (size_t off = 0; off < n; off += s->max_batch) {
        size_t nb = n - off < s->max_batch ? n - off : s->max_batch;
        int last_chunk = off + nb == n;
        SPX_TRY(rc, spx_embed_at(ctx, model, tokens + off, nb, s->pos, s->x));
        for (uint32_t l = 0; l < c->n_layers; l++)
            SPX_TRY(rc, spx_block_forward(ctx, model, s, l, s->x, nb, hooks));
        s->pos += (uint32_t)nb;
        if (logits) {
            float *dst = logits + off * c->vocab_size;
            spx_head(model, s->x, nb, dst);
            if (last_chunk && last_logits)
                memcpy(last_logits, dst + (nb - 1) * c->vocab_size, c->vocab_size * sizeof(float));
        } else if (last_chunk && last_logits) {
            spx_head(model, s->x + (nb - 1) * c->dim, 1, last_logits);
        }
    }
done:
    if (rc < 0)
        s->pos = pos0;
    return rc;
}

int spx_forward(spx_ctx *ctx, const spx_model *model, spx_state *s, const uint32_t *tokens, size_t n, float *logits,
                float *last_logits)
{
    return spx_forward_hooked(ctx, model, s, tokens, n, logits, last_logits, NULL);
}
