/* spx_linear.h: the linear-layer abstraction of the runtime (y = W x + b).
 *
 * A linear layer maps `cols` inputs to `rows` outputs. Two kinds:
 *   DENSE  w is a row-major fp32 matrix: dense F32 tensors are used in place from the memory map
 *          (the format aligns every blob to >= 64 bytes); with SPX_LINEAR_F32 / SPX_LINEAR_COPY,
 *          F16/BF16 or sparse-encoded tensors (bitmask, N:M, CSR) are decoded once at load into
 *          an owned fp32 buffer (spx_decode_f32). Evaluated by OpenBLAS (sgemv / sgemm).
 *   KMAT   (load mode SPX_LINEAR_KERNELS, any tensor except dense F32) the tensor is packed at
 *          load into the kernels of spx_kernels.h, keeping its stored precision and sparsity:
 *          `km` in the layout SPX_KL_AUTO picks from the encoding (2:4 -> NM24, <= 15% density
 *          -> CSR, dense F16/BF16 -> DENSE, else BITMASK) and, for the sparse layouts, `kp` in
 *          SPX_KL_PANEL for batches. w is NULL: code that needs the fp32 matrix calls
 *          spx_linear_to_f32 first (gated blocks slice rows of it, spx verify compares weights).
 *
 * Which product runs (spx_linear_forward). Kernel figures from bench/bench_kernels (4096/11008
 * shapes, Zen 5); model figures from bench/bench_decode.sh (768/2048, 12 layers):
 *   n == 1 (decode): km matvec. bench_kernels: 2:4 F16 ~2-2.9x fp32 sgemv, 50% bitmask F16
 *     ~1.8-2.6x, dense F16 ~1.7x, CSR at 90% ~3-4.8x.
 *   n > 1 (prefill, ppl windows): kp (PANEL) matmul when it exists (every sparse layout): at 50%
 *     1.5-3.2x sgemm for 16-32 tokens and 1.1-1.6x at 64 (bench_kernels; it works in chunks of
 *     64 tokens, so about that for longer prompts); bench_decode: 64-token prefill of the 50% and
 *     2:4 models ~2x the same file decoded to fp32 + sgemm.
 *     Dense F16/BF16 (no PANEL; the row kernels run 4 tokens per pass and are ~0.5-1.5x sgemm at
 *     16-64 tokens in bench_kernels): n >= SPX_LINEAR_SGEMM_MIN_N converts the weights to fp32
 *     in a scratch buffer (F16C) and calls sgemm (bench_decode: the dense F16 prefill is then not
 *     slower than dense F32 in place); fewer tokens use the row kernels.
 *   Dense F32 always stays DENSE (OpenBLAS on the mapped data).
 *
 * Numerics: fp32 inputs and accumulation throughout. DENSE is OpenBLAS's order; KMAT sums each
 * output in a fixed order that depends on the layout and ISA path only (not on threads); PANEL
 * (batches) and row kernels (decode) may differ in the last bits, so a prompt position computed
 * in a batch and the same position decoded alone agree to fp32 rounding (~1e-6 relative), not
 * bit for bit. The KMAT and DENSE paths of one tensor agree to the same rounding.
 */
#ifndef SPX_LINEAR_H
#define SPX_LINEAR_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_format.h"
#include "spx_kernels.h"

typedef enum spx_linear_kind {
    SPX_LINEAR_DENSE = 0,     /* w is a dense row-major fp32 matrix */
    SPX_LINEAR_KMAT = 1       /* km (+ kp) packed kernels; w is NULL */
} spx_linear_kind;

/* spx_linear_load modes (its `copy` argument; 0 and 1 keep their old meaning). */
#define SPX_LINEAR_F32 0      /* fp32: dense F32 in place from the map, anything else decoded */
#define SPX_LINEAR_COPY 1     /* an owned, writable fp32 copy (pruning writes into w) */
#define SPX_LINEAR_KERNELS 2  /* KMAT for every tensor except dense F32 (which stays DENSE) */

/* Dense F16/BF16 KMAT layers with at least this many tokens per call convert the weights to
 * fp32 and use sgemm (measured: see above). */
#define SPX_LINEAR_SGEMM_MIN_N 8

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
                                 estimates. */
    spx_kmat *km;             /* KMAT: row layout (matvec; matmul when kp is NULL) */
    spx_kmat *kp;             /* KMAT: PANEL layout for n > 1, or NULL */
} spx_linear;

/* Load `t` (2-D, dims == [rows, cols]) and optional bias `b` (1-D [rows], may be NULL) from `f`
 * into *l (previous content is overwritten, not freed). `copy` is a mode: SPX_LINEAR_F32 (dense
 * F32 in place, anything else decoded to an owned fp32 buffer), SPX_LINEAR_COPY (w is always an
 * owned, writable copy: `l->owned`) or SPX_LINEAR_KERNELS (KMAT unless t is dense F32; the bias
 * stays fp32). Errors: SPX_E_SHAPE (dims differ from rows x cols, message names the tensor),
 * SPX_E_NOMEM, decode / packing errors. On failure *l is left empty. */
int spx_linear_load(spx_ctx *ctx, const spx_file *f, const spx_tensor *t, const spx_tensor *b,
                    uint32_t rows, uint32_t cols, int copy, spx_linear *l);

/* Take ownership of heap buffers: w [rows x cols] (required) and bias [rows] (may be NULL);
 * both are freed by spx_linear_release. For building layers in memory (tests, pruning).
 * nnz is set to the number of nonzero weights. */
void spx_linear_init_owned(spx_linear *l, uint32_t rows, uint32_t cols, float *w, float *bias);

/* Free owned buffers and zero *l. Accepts NULL and an empty layer. */
void spx_linear_release(spx_linear *l);

/* 1 when the layer holds a weight (DENSE with w, or KMAT). */
int spx_linear_present(const spx_linear *l);

/* Turn a KMAT layer into DENSE with an owned fp32 w unpacked from km (exact: the stored values
 * converted to fp32, zeros elsewhere; no-op for DENSE). Errors: SPX_E_NOMEM, decode errors; the layer is unchanged on failure. */
int spx_linear_to_f32(spx_ctx *ctx, spx_linear *l);

/* *differ = 1 when a and b (both present, same shape) differ in any weight or bias bit as fp32
 * values (KMAT layers are decoded temporarily), else 0. Errors: SPX_E_ARG (absent or shapes
 * differ), SPX_E_NOMEM, decode errors. */
int spx_linear_weights_differ(spx_ctx *ctx, const spx_linear *a, const spx_linear *b, int *differ);

/* Y[n x rows] = X[n x cols] W^T (+ bias on every row). DENSE: n == 1 sgemv, n > 1 sgemm; KMAT:
 * see the rule at the top. X and Y must not overlap; n == 0 does nothing. The caller guarantees the shapes (hot path:
 * no checks beyond these). rows, cols and n must be < 2^31 (BLAS int), which the loader and
 * spx_state_new ensure. */
void spx_linear_forward(const spx_linear *l, const float *X, size_t n, float *Y);

/* Rows [r0, r1) of spx_linear_forward for one token x, on the calling thread (only y[r0..r1) is
 * written), the same bits: for callers that split a product over the pool themselves. Only for
 * layers spx_linear_rows_native accepts: KMAT in a layout with native kernels (not DENSE F32). */
int spx_linear_rows_native(const spx_linear *l);
void spx_linear_forward_rows(const spx_linear *l, const float *x, float *y, uint32_t r0, uint32_t r1);

/* Threads of the runtime's products: the kernel pool (spx_kern_set_threads) and OpenBLAS
 * (openblas_set_num_threads). n <= 0: the number of online CPUs. Returns the value in effect.
 * Process-wide; call at start-up, not while products run. */
int spx_linear_set_threads(int n);

/* Load any tensor as fp32: *ptr points into the map for dense F32 (when !copy), else to a
 * malloc'ed decoded copy also returned in *owned (caller frees; NULL when in place).
 * Checks the element count against `numel` (SPX_E_SHAPE). */
int spx_tensor_load_f32(spx_ctx *ctx, const spx_file *f, const spx_tensor *t, uint64_t numel,
                        int copy, const float **ptr, float **owned);

#endif
