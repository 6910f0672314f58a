/* spx_ffn_pad.h: widen every FFN with zero neurons so that E equal-size experts fit.
 *
 * MoEfication splits the ffn_dim intermediate neurons into E experts of B = ffn_dim / E neurons.
 * When E does not divide ffn_dim (stories260K: 172 = 4 x 43 cannot hold 8, 16 or 32 experts), the
 * FFN is padded to f' = E * ceil(ffn_dim / E) neurons first: ffn_gate / ffn_up get zero rows,
 * ffn_down gets zero columns. A zero neuron computes act(0) * 0 = 0 (GLU) or act(0) = 0 (SiLU, GELU
 * and ReLU all map 0 to 0), and its zero down column adds nothing, so the padded model computes the
 * same function; only the neuron count grows (the executed-fraction figures count padded neurons).
 */
#ifndef SPX_FFN_PAD_H
#define SPX_FFN_PAD_H

#include <stdint.h>

#include "spx_error.h"
#include "spx_format.h"

/* Write to `out_path` (atomically, via the spx writer) a copy of `in` whose FFN width is the next
 * multiple of `multiple` (>= 1); *new_ffn receives it. Every other tensor and metadata entry is
 * copied verbatim, except <arch>.feed_forward_length (updated) and the spx.verify.* probe (dropped:
 * it was recorded for the unpadded tensors). FFN biases (OPT, GPT-2 style) are padded with zeros
 * too, but for a non-GLU FFN with biases act(0 + 0) = 0 still holds. Errors: SPX_E_UNSUPPORTED
 * (an FFN tensor of an expanded or gated file), SPX_E_SHAPE, SPX_E_OVERFLOW, SPX_E_NOMEM, I/O. */
int spx_ffn_pad_write(spx_ctx *ctx, const spx_file *in, const char *out_path, uint32_t multiple, uint32_t *new_ffn);

#endif
