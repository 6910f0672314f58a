/* spx_sparsity_apply.c: run-time activation thresholds of the dense MLP (Sparsing Law; the
 * thresholds come from spx_sparsity_search, verify/spx_sparsity.h). */
#include <math.h>

#include "spx_forward.h"

void spx_state_set_act_threshold(spx_state *s, const float *thr)
{
    s->act_thr = thr;
    s->act_zeroed = 0;
    s->act_total = 0;
}

/* h [n x ffn] = act(gate) * up of `layer`: values with |h| <= thr[layer][j] become 0. Values
 * already 0 count as zeroed (ReLU zeros are part of the activation sparsity); a negative
 * threshold zeroes nothing. */
void spx_sparsity_apply(spx_state *s, uint32_t layer, float *h, size_t n, uint32_t ffn)
{
    const float *thr;
    uint64_t zeroed = 0;
    if (!s->act_thr)
        return;
    thr = s->act_thr + (size_t)layer * ffn;
    for (size_t i = 0; i < n; i++) {
        float *row = h + i * ffn;
        for (uint32_t j = 0; j < ffn; j++) {
            if (row[j] == 0.0f || fabsf(row[j]) <= thr[j]) {
                row[j] = 0.0f;
                zeroed++;
            }
        }
    }
    s->act_zeroed += zeroed;
    s->act_total += (uint64_t)n * ffn;
}
