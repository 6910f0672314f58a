/* spx_attention.c: causal grouped-query attention over the KV cache.
 *
 * Batched queries (prompt processing): per head and per block of up to SPX_ATT_QBLOCK queries,
 * S = Q_h K_g^T / sqrt(head_dim) (sgemm over the cached keys), causal mask, row softmax, then
 * O_h = P V_g (sgemm). A single query (decode) uses two sgemv calls. The softmax subtracts the
 * row maximum before exponentiating and sums in double, so it never overflows. */
#include "spx_ops.h"

#include <cblas.h>
#include <math.h>

/* Softmax in place over p[0..len): exp(p - max) / sum. */
static void softmax(float *p, size_t len)
{
    float mx = p[0];
    double sum = 0.0;
    for (size_t j = 1; j < len; j++)
        if (p[j] > mx)
            mx = p[j];
    for (size_t j = 0; j < len; j++) {
        p[j] = expf(p[j] - mx);
        sum += (double)p[j];
    }
    float inv = (float)(1.0 / sum);
    for (size_t j = 0; j < len; j++)
        p[j] *= inv;
}

void spx_ops_attention(const spx_model_config *c, spx_state *s, uint32_t layer, size_t n)
{
    const uint32_t hd = c->head_dim, group = c->n_heads / c->n_kv_heads;
    const size_t qd = s->q_dim, kvd = s->kv_dim;
    const float *kc = s->k_cache + (size_t)layer * s->max_ctx * kvd;
    const float *vc = s->v_cache + (size_t)layer * s->max_ctx * kvd;
    const float scale = (float)(1.0 / sqrt((double)hd));

    if (n == 1) {
        const size_t T = (size_t)s->pos + 1;
        for (uint32_t h = 0; h < c->n_heads; h++) {
            const size_t g = h / group;
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)T, (blasint)hd, scale, kc + g * hd, (blasint)kvd,
                        s->q + (size_t)h * hd, 1, 0.0f, s->scores, 1);
            softmax(s->scores, T);
            cblas_sgemv(CblasRowMajor, CblasTrans, (blasint)T, (blasint)hd, 1.0f, vc + g * hd, (blasint)kvd, s->scores,
                        1, 0.0f, s->att + (size_t)h * hd, 1);
        }
        return;
    }
    for (size_t i0 = 0; i0 < n; i0 += SPX_ATT_QBLOCK) {
        const size_t nb = (n - i0 < SPX_ATT_QBLOCK) ? n - i0 : SPX_ATT_QBLOCK;
        /* keys visible to the last query of the block */
        const size_t T = (size_t)s->pos + i0 + nb;
        for (uint32_t h = 0; h < c->n_heads; h++) {
            const size_t g = h / group;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)nb, (blasint)T, (blasint)hd, scale,
                        s->q + i0 * qd + (size_t)h * hd, (blasint)qd, kc + g * hd, (blasint)kvd, 0.0f, s->scores,
                        (blasint)T);
            for (size_t r = 0; r < nb; r++) {
                float *p = s->scores + r * T;
                const size_t visible = (size_t)s->pos + i0 + r + 1;
                softmax(p, visible);
                for (size_t j = visible; j < T; j++)
                    p[j] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)nb, (blasint)hd, (blasint)T, 1.0f,
                        s->scores, (blasint)T, vc + g * hd, (blasint)kvd, 0.0f, s->att + i0 * qd + (size_t)h * hd,
                        (blasint)qd);
        }
    }
}
