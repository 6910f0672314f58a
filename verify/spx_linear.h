/* spx_linear.h: the linear-layer abstraction of the runtime (y = W x + b).
 *
 * A linear layer maps `cols` inputs to `rows` outputs. Today every layer is evaluated densely in
 * fp32: weights stored dense F32 in a .spx are used in place from the memory map (the format
 * aligns every blob to >= 64 bytes); F16/BF16 or sparse-encoded tensors (bitmask, N:M, CSR) are
 * decoded once at load into an owned fp32 buffer with spx_decode_f32. `kind` is there so later
 * stages can add sparse or expert kernels without changing the callers.
 *
 * Numerics: fp32 inputs, fp32 weights, fp32 accumulation (OpenBLAS sgemv/sgemm).
 */
#ifndef SPX_LINEAR_H
#define SPX_LINEAR_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_format.h"

typedef enum spx_linear_kind {
    SPX_LINEAR_DENSE = 0      /* w is a dense row-major fp32 matrix */
} spx_linear_kind;

typedef struct spx_linear {
    int kind;                 /* spx_linear_kind */
    uint32_t rows;            /* outputs (PyTorch dims[0]) */
    uint32_t cols;            /* inputs  (PyTorch dims[1]) */
    const float *w;           /* [rows x cols] row-major fp32; NULL when the layer is absent */
    float *owned;             /* heap buffer behind w when w is not the file map, else NULL */
    const float *bias;        /* [rows] or NULL */
    float *bias_owned;        /* heap buffer behind bias, else NULL */
    uint64_t nnz;             /* stored values of the weight as loaded (tensor record's nnz; dense:
                                 rows*cols; spx_linear_init_owned: nonzero count). For FLOP
                                 estimates only: the kernel is dense. */
} spx_linear;

/* Load `t` (2-D, dims == [rows, cols]) and optional bias `b` (1-D [rows], may be NULL) from `f`
 * into *l (previous content is overwritten, not freed). Dense F32 data are used in place unless
 * `copy` is nonzero (then w is an owned, writable copy: `l->owned`); anything else is decoded to
 * an owned fp32 buffer. Errors: SPX_E_SHAPE (dims differ from rows x cols, message names the
 * tensor), SPX_E_NOMEM, decode errors from spx_decode_f32. On failure *l is left empty. */
int spx_linear_load(spx_ctx *ctx, const spx_file *f, const spx_tensor *t, const spx_tensor *b,
                    uint32_t rows, uint32_t cols, int copy, spx_linear *l);

/* Take ownership of heap buffers: w [rows x cols] (required) and bias [rows] (may be NULL);
 * both are freed by spx_linear_release. For building layers in memory (tests, pruning).
 * nnz is set to the number of nonzero weights. */
void spx_linear_init_owned(spx_linear *l, uint32_t rows, uint32_t cols, float *w, float *bias);

/* Free owned buffers and zero *l. Accepts NULL and an empty layer. */
void spx_linear_release(spx_linear *l);

/* Y[n x rows] = X[n x cols] W^T (+ bias on every row). n == 1 uses sgemv, n > 1 sgemm.
 * X and Y must not overlap; n == 0 does nothing. The caller guarantees the shapes (hot path:
 * no checks beyond these). rows, cols and n must be < 2^31 (BLAS int), which the loader and
 * spx_state_new ensure. */
void spx_linear_forward(const spx_linear *l, const float *X, size_t n, float *Y);

/* Load any tensor as fp32: *ptr points into the map for dense F32 (when !copy), else to a
 * malloc'ed decoded copy also returned in *owned (caller frees; NULL when in place).
 * Checks the element count against `numel` (SPX_E_SHAPE). */
int spx_tensor_load_f32(spx_ctx *ctx, const spx_file *f, const spx_tensor *t, uint64_t numel,
                        int copy, const float **ptr, float **owned);

#endif
