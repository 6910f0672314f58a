/* spx_ops.c: norms, rotary embedding and FFN activations. */
#include "spx_ops.h"

#include <math.h>

void spx_ops_norm(const spx_norm *nm, int type, float eps, const float *X, size_t n, uint32_t dim, float *Y)
{
    for (size_t r = 0; r < n; r++) {
        const float *x = X + r * dim;
        float *y = Y + r * dim;
        double mean = 0.0, acc = 0.0, scale;
        if (type == SPX_NORM_LAYER) {
            for (uint32_t i = 0; i < dim; i++)
                mean += x[i];
            mean /= dim;
        }
        for (uint32_t i = 0; i < dim; i++) {
            double d = (double)x[i] - mean;
            acc += d * d;
        }
        scale = 1.0 / sqrt(acc / dim + (double)eps);
        for (uint32_t i = 0; i < dim; i++) {
            double v = ((double)x[i] - mean) * scale * (double)nm->w[i];
            if (nm->b)
                v += (double)nm->b[i];
            y[i] = (float)v;
        }
    }
}

void spx_ops_rope(float *X, size_t n, size_t stride, uint32_t n_heads, uint32_t head_dim, uint32_t rope_dim,
                  const float *cos_t, const float *sin_t, uint32_t pos0)
{
    uint32_t half = rope_dim / 2;
    if (half == 0)
        return;
    for (size_t r = 0; r < n; r++) {
        const float *c = cos_t + ((size_t)pos0 + r) * half;
        const float *s = sin_t + ((size_t)pos0 + r) * half;
        for (uint32_t h = 0; h < n_heads; h++) {
            float *x = X + r * stride + (size_t)h * head_dim;
            for (uint32_t i = 0; i < half; i++) {
                float x1 = x[i], x2 = x[i + half];
                x[i] = x1 * c[i] - x2 * s[i];
                x[i + half] = x2 * c[i] + x1 * s[i];
            }
        }
    }
}

static float act1(int act, float x)
{
    switch (act) {
    case SPX_ACT_GELU:
        return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case SPX_ACT_GELU_TANH:
        return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case SPX_ACT_RELU:
        return x > 0.0f ? x : 0.0f;
    default: /* SPX_ACT_SILU (the config validator rejects anything else) */
        return x / (1.0f + expf(-x));
    }
}

void spx_ops_act(int act, int gated, const float *gate, float *up, size_t count)
{
    if (gated) {
        for (size_t i = 0; i < count; i++)
            up[i] = act1(act, gate[i]) * up[i];
    } else {
        for (size_t i = 0; i < count; i++)
            up[i] = act1(act, up[i]);
    }
}
