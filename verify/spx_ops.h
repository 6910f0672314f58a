/* spx_ops.h: element-wise kernels of the forward pass (internal to verify/). */
#ifndef SPX_OPS_H
#define SPX_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "spx_forward.h"
#include "spx_model.h"

/* Y[n x dim] = norm(X[n x dim]) * w (+ b). type: spx_norm_type. RMS: x / sqrt(mean(x^2) + eps);
 * LayerNorm: (x - mean) / sqrt(var + eps). Statistics accumulated in double. X == Y allowed. */
void spx_ops_norm(const spx_norm *nm, int type, float eps, const float *X, size_t n, uint32_t dim, float *Y);

/* Rotary embedding in place on rows X[r * stride ...] (r < n) holding n_heads heads of head_dim,
 * row r at position pos0 + r: for i < rope_dim/2, (x_i, x_{i+half}) -> (x_i c - x_{i+half} s,
 * x_{i+half} c + x_i s) with c, s = cos/sin tables [pos x half]. Dims >= rope_dim pass through. */
void spx_ops_rope(float *X, size_t n, size_t stride, uint32_t n_heads, uint32_t head_dim, uint32_t rope_dim,
                  const float *cos_t, const float *sin_t, uint32_t pos0);

/* FFN activation, in place in `up` (count values): gated: up = act(gate) * up; else up = act(up). */
void spx_ops_act(int act, int gated, const float *gate, float *up, size_t count);

/* Causal GQA attention for n queries at positions [pos, pos + n) of `layer`, reading s->q and the
 * layer's cache (K/V for those positions already written), writing s->att [n x q_dim]. */
void spx_ops_attention(const spx_model_config *c, spx_state *s, uint32_t layer, size_t n);

/* Grow *buf to hold at least count elements of elem bytes (contents not kept); *cap in elements.
 * Errors: SPX_E_OVERFLOW, SPX_E_NOMEM (the old buffer is kept then). */
int spx_ops_reserve(spx_ctx *ctx, void **buf, size_t *cap, size_t count, size_t elem);

#endif
