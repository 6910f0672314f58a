/* spx_gate_recall.c: router recall of the activation-mass oracle (see spx_gate_recall.h). */
#include "spx_gate_recall.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_moe.h"
#include "spx_ops.h"

double spx_gate_recall_token(const float *mass, const uint8_t *sel, uint32_t E, uint32_t *ord, uint8_t *osel)
{
    uint32_t k = 0, hit = 0;
    for (uint32_t e = 0; e < E; e++)
        k += sel[e] != 0;
    if (k == 0)
        return 0.0;
    spx_gate_topk(mass, E, k, ord, osel);
    for (uint32_t e = 0; e < E; e++)
        hit += sel[e] && osel[e];
    return (double)hit / (double)k;
}

int spx_gate_recall_new(spx_ctx *ctx, const spx_model *model, spx_state *state, spx_gate_recall **out)
{
    int rc = 0;
    const spx_model_config *c = &model->cfg;
    spx_gate_recall *r = NULL;
    uint32_t maxE = 0;
    size_t nh;
    *out = NULL;
    for (uint32_t l = 0; l < c->n_layers; l++)
        if (model->layers[l].gating && model->layers[l].gating->n_experts > maxE)
            maxE = model->layers[l].gating->n_experts;
    if (maxE == 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "gate recall: the model has no gated layers");
    if (spx_ckd_mul3_size(state->max_batch, c->ffn_dim, sizeof(float), &nh))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "gate recall: %u tokens x %u neurons overflows", state->max_batch, c->ffn_dim);
    r = calloc(1, sizeof *r);
    if (!r)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    r->model = model;
    r->state = state;
    r->max_batch = state->max_batch;
    r->max_experts = maxE;
    r->g = malloc(nh);
    r->u = malloc(nh);
    r->mass = calloc(maxE, sizeof(float));
    r->ord = calloc(2 * (size_t)maxE, sizeof(uint32_t));
    r->osel = calloc(maxE, 1);
    r->sum = calloc(c->n_layers ? c->n_layers : 1, sizeof(double));
    r->count = calloc(c->n_layers ? c->n_layers : 1, sizeof(uint64_t));
    if (!r->g || !r->u || !r->mass || !r->ord || !r->osel || !r->sum || !r->count)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "gate recall: out of memory (%zu bytes of hidden state)", 2 * nh);
    spx_state_set_gate_hook(state, spx_gate_recall_hook, r);
    *out = r;
    r = NULL;
done:
    spx_gate_recall_free(r);
    return rc;
}

void spx_gate_recall_free(spx_gate_recall *r)
{
    if (!r)
        return;
    if (r->state && r->state->gate_ud == r)
        spx_state_set_gate_hook(r->state, NULL, NULL);
    free(r->g);
    free(r->u);
    free(r->mass);
    free(r->ord);
    free(r->osel);
    free(r->sum);
    free(r->count);
    free(r);
}

void spx_gate_recall_hook(void *ud, uint32_t layer, const uint8_t *sel, size_t n, uint32_t E)
{
    spx_gate_recall *r = ud;
    const spx_model_config *c = &r->model->cfg;
    const spx_layer *L = &r->model->layers[layer];
    const size_t ffn = c->ffn_dim;
    uint32_t B;
    double s = 0.0;
    if (!L->gating || E == 0 || E > r->max_experts || n > r->max_batch)
        return;   /* cannot happen through spx_gate_mlp; never read out of bounds */
    B = (uint32_t)(ffn / E);
    if (c->gated)
        spx_linear_forward(&L->gate, r->state->xn, n, r->g);
    spx_linear_forward(&L->up, r->state->xn, n, r->u);
    spx_ops_act(c->act, c->gated, r->g, r->u, n * ffn);
    for (size_t t = 0; t < n; t++) {
        for (uint32_t e = 0; e < E; e++) {
            const float *h = r->u + t * ffn + (size_t)e * B;
            double mass = 0.0;
            for (uint32_t j = 0; j < B; j++)
                mass += fabs((double)h[j]);
            r->mass[e] = (float)mass;
        }
        s += spx_gate_recall_token(r->mass, sel + t * E, E, r->ord, r->osel);
    }
    r->sum[layer] += s;
    r->count[layer] += n;
}

double spx_gate_recall_mean(const spx_gate_recall *r, int64_t layer)
{
    double s = 0.0;
    uint64_t n = 0;
    if (layer >= 0) {
        if ((uint64_t)layer >= r->model->cfg.n_layers || !r->count[layer])
            return NAN;
        return r->sum[layer] / (double)r->count[layer];
    }
    for (uint32_t l = 0; l < r->model->cfg.n_layers; l++) {
        s += r->sum[l];
        n += r->count[l];
    }
    return n ? s / (double)n : NAN;
}
