/* spx_state.c: KV cache, scratch buffers and rotary tables of a forward state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_forward.h"
#include "spx_ops.h"

/* calloc(a*b*c floats) with overflow checks; NULL on overflow or failure (rc set). */
static float *alloc3(spx_ctx *ctx, size_t a, size_t b, size_t c, const char *what, int *rc)
{
    size_t n, bytes;
    float *p;
    if (spx_ckd_mul3_size(a, b, c, &n) || spx_ckd_mul_size(n, sizeof(float), &bytes)) {
        *rc = spx_err_set(ctx, SPX_E_OVERFLOW, "state: size of %s overflows (%zu x %zu x %zu)", what, a, b, c);
        return NULL;
    }
    p = calloc(n ? n : 1, sizeof(float));
    if (!p)
        *rc = spx_err_set(ctx, SPX_E_NOMEM, "state: out of memory for %s (%zu bytes)", what, bytes);
    return p;
}

int spx_state_new(spx_ctx *ctx, const spx_model *model, uint32_t max_ctx, uint32_t max_batch, spx_state **out)
{
    int rc = 0;
    const spx_model_config *c = &model->cfg;
    spx_state *s = NULL;
    const size_t half = c->rope_dim / 2;
    *out = NULL;
    if (max_ctx == 0 || max_batch == 0 || max_ctx > INT32_MAX || max_batch > INT32_MAX)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "state: max_ctx (%u) and max_batch (%u) must be in 1..2^31-1", max_ctx, max_batch);
    s = calloc(1, sizeof *s);
    if (!s)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    s->max_ctx = max_ctx;
    s->max_batch = max_batch;
    s->q_dim = c->n_heads * c->head_dim;
    s->kv_dim = c->n_kv_heads * c->head_dim;
#define ALLOC(field, a, b, cc) do { if (!(s->field = alloc3(ctx, (a), (b), (cc), #field, &rc))) goto done; } while (0)
    ALLOC(k_cache, c->n_layers, max_ctx, s->kv_dim);
    ALLOC(v_cache, c->n_layers, max_ctx, s->kv_dim);
    ALLOC(x, max_batch, c->dim, 1);
    ALLOC(xn, max_batch, c->dim, 1);
    ALLOC(q, max_batch, s->q_dim, 1);
    ALLOC(att, max_batch, s->q_dim, 1);
    ALLOC(tmp, max_batch, c->dim, 1);
    ALLOC(gate, max_batch, c->ffn_dim, 1);
    ALLOC(up, max_batch, c->ffn_dim, 1);
    ALLOC(scores, SPX_ATT_QBLOCK, max_ctx, 1);
    ALLOC(rope_cos, max_ctx, half, 1);
    ALLOC(rope_sin, max_ctx, half, 1);
#undef ALLOC
    /* Angles in double (position * inverse frequency), rounded to fp32 once. */
    for (size_t p = 0; p < max_ctx; p++) {
        for (size_t i = 0; i < half; i++) {
            double a = (double)p * model->rope_inv_freq[i];
            s->rope_cos[p * half + i] = (float)cos(a);
            s->rope_sin[p * half + i] = (float)sin(a);
        }
    }
    *out = s;
    s = NULL;
done:
    spx_state_free(s);
    return rc;
}

void spx_state_reset(spx_state *s)
{
    if (s) {
        s->pos = 0;
        s->seq++;
    }
}

void spx_state_set_route_hook(spx_state *s, spx_route_hook fn, void *ud)
{
    s->route_hook = fn;
    s->route_ud = ud;
}

void spx_state_set_gate_hook(spx_state *s, spx_gate_hook fn, void *ud)
{
    s->gate_hook = fn;
    s->gate_ud = ud;
}

double spx_state_ffn_fraction(const spx_state *s)
{
    if (!s->ffn_neurons_total)
        return 1.0;
    return (double)s->ffn_neurons_run / (double)s->ffn_neurons_total;
}

void spx_state_clear_counters(spx_state *s)
{
    s->ffn_blocks_run = s->ffn_blocks_total = 0;
    s->ffn_neurons_run = s->ffn_neurons_total = 0;
    s->moe_fused = 0;
}

int spx_ops_reserve(spx_ctx *ctx, void **buf, size_t *cap, size_t count, size_t elem)
{
    size_t bytes;
    void *p;
    if (count <= *cap && *buf)
        return 0;
    if (spx_ckd_mul_size(count ? count : 1, elem, &bytes))
        return spx_err_set(ctx, SPX_E_OVERFLOW, "state: expert scratch size overflows (%zu x %zu)", count, elem);
    p = malloc(bytes);
    if (!p)
        return spx_err_set(ctx, SPX_E_NOMEM, "state: out of memory for expert scratch (%zu bytes)", bytes);
    free(*buf);
    *buf = p;
    *cap = count ? count : 1;
    return 0;
}

void spx_state_free(spx_state *s)
{
    if (!s)
        return;
    free(s->k_cache);
    free(s->v_cache);
    free(s->x);
    free(s->xn);
    free(s->q);
    free(s->att);
    free(s->tmp);
    free(s->gate);
    free(s->up);
    free(s->scores);
    free(s->rope_cos);
    free(s->rope_sin);
    free(s->ex.in);
    free(s->ex.a);
    free(s->ex.b);
    free(s->ex.y);
    free(s->ex.sc);
    free(s->ex.lab);
    free(s->ex.idx);
    free(s->ex.sel);
    free(s->ex.ord);
    free(s);
}
