/* spx_kernels.h: sparse and half-precision linear-layer kernels with run-time CPU dispatch.
 *
 * A weight matrix W [rows x cols] (PyTorch Linear convention: rows = outputs, cols = inputs) is
 * packed once, at load, into a kernel-friendly layout (an spx_kmat); then
 *   decode:  y = W x            (spx_kmat_matvec; x [cols], y [rows])
 *   batch:   Y = X W^T          (spx_kmat_matmul; X [n x cols], Y [n x rows], both row-major)
 * are computed with fp32 inputs, fp32 accumulation and fp32 outputs. Values keep the precision they
 * were stored with (F32, F16 or BF16, converted exactly to fp32 in registers).
 *
 * Layouts (values of `layout`):
 *   DENSE    values [rows][cols]. F32 goes to OpenBLAS (sgemv/sgemm); F16/BF16 use own kernels.
 *   BITMASK  per row: one 16-bit mask word per 16 columns + the row's nonzeros in column order.
 *            AVX-512 loads 16 values at the row cursor and places them with vexpandps under the
 *            mask word; AVX2 does the same 8 columns at a time with a 256-entry permutation LUT.
 *   NM24     2:4 structured sparsity (each aligned group of 4 columns keeps 2): per 32 columns,
 *            16 values + a 32-bit word of 2-bit in-group positions; the kernel permutes x into
 *            value order (vpermi2ps), so no expansion and no data-dependent pointer chain.
 *   CSR      row pointers + u16 column indices (needs cols <= 65536); x is gathered (x fits in L1).
 *            For >= 85% sparsity.
 *   PANEL    for batches: the columns are split into 256-wide panels; inside a panel every row
 *            has its nonzeros with u8 column indices. The kernel transposes X to [cols x tokens]
 *            and does, per nonzero, a broadcast of the weight and FMAs over 16, 32 or 64 tokens
 *            read from the current panel of X^T (256 x tokens floats, in L1/L2).
 *
 * Choosing (measured by bench/bench_kernels on 4096x11008 and 11008x4096, Zen 5, medians on a
 * busy shared machine; ratios are time(OpenBLAS fp32) / time(kernel)):
 *   decode (matvec): SPX_KL_AUTO from the file's encoding. 2:4 F16 ~2.2-2.9x fp32 sgemv
 *   (1.1-1.7x dense F16), BITMASK F16 at 50% ~1.8-2.6x, CSR F16 at 90% ~3-4.8x, dense F16 ~1.7x.
 *   batches of 16..64 tokens (prefill): a second kmat in SPX_KL_PANEL: at 50% 1.5-3.2x sgemm for
 *   n = 16, 32 and 1.1-1.6x for n = 64 (its cost grows linearly with n, sgemm's does not); the row
 *   layouts' matmul is only ~0.5-1.5x sgemm, so for long prompts without a PANEL kmat, decoded
 *   fp32 + sgemm (spx_linear) is the better choice.
 *
 * Numerics: each output is an fp32 sum (FMA) over its row's stored values, in a fixed order that
 * depends only on the matrix, the layout and the ISA path, never on the thread count or on how
 * many tokens are processed together: threads 1 and N give bit-identical results, and matmul
 * gives the same bits as matvec on each token (except PANEL, whose batched kernel sums in panel
 * order, and DENSE F32, which is OpenBLAS's business).
 *
 * Threads: rows are split over a small persistent pthread pool (spx_kern_set_threads). Calls may
 * come from several threads (a kmat is read-only after packing); while one call uses the pool the
 * others run on their own thread.
 */
#ifndef SPX_KERNELS_H
#define SPX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_format.h"

typedef enum spx_klayout {
    SPX_KL_AUTO = 0,      /* choose from the encoding and density (see spx_kmat_from_tensor) */
    SPX_KL_DENSE = 1,
    SPX_KL_BITMASK = 2,
    SPX_KL_NM24 = 3,
    SPX_KL_CSR = 4,
    SPX_KL_PANEL = 5,
    SPX_KL_COUNT
} spx_klayout;

typedef enum spx_kisa {
    SPX_KISA_AUTO = 0,     /* the best path this CPU supports */
    SPX_KISA_PORTABLE = 1, /* plain C */
    SPX_KISA_AVX2 = 2,     /* AVX2 + FMA + F16C */
    SPX_KISA_AVX512 = 3,   /* AVX-512 F/BW/VL + FMA + F16C */
    SPX_KISA_COUNT
} spx_kisa;

#define SPX_KERN_MAX_THREADS 64
#define SPX_KL_PANEL_COLS 256     /* columns per PANEL panel (u8 indices) */
#define SPX_KL_CSR_MAX_COLS 65536 /* u16 column indices */
#define SPX_KL_AUTO_CSR_DENSITY 0.15   /* AUTO picks CSR at or below this density */
#define SPX_KL_AUTO_DENSE_DENSITY 0.60 /* ... and DENSE above this one */

typedef struct spx_kmat spx_kmat;

/* Pack a 2-D tensor (any encoding, dtype F32/F16/BF16) whose data blob is `blob` (t->data_size
 * bytes; validated here with spx_encoding_validate, so an untrusted blob is safe). `layout_hint`:
 *   SPX_KL_AUTO: DENSE encoding -> DENSE; N:M 2:4 -> NM24; density <= SPX_KL_AUTO_CSR_DENSITY and
 *     cols <= 65536 -> CSR; density > SPX_KL_AUTO_DENSE_DENSITY -> DENSE; else BITMASK.
 *   any other layout: that layout (NM24 needs every aligned group of 4 columns to hold <= 2
 *     stored values, else SPX_E_SPARSE; CSR needs cols <= 65536, else SPX_E_SHAPE).
 * Stored entries are kept as stored (an explicit zero value stays an entry), except that a dense
 * tensor packed into a sparse layout keeps its nonzero values only. The values keep t->dtype.
 * The kmat owns its memory (the blob may be unmapped afterwards).
 * Errors: SPX_E_SHAPE (ndim != 2, dims beyond 2^31-1), SPX_E_DTYPE, SPX_E_ARG (bad hint),
 * validation errors, SPX_E_NOMEM, SPX_E_OVERFLOW. Messages name the tensor. */
int spx_kmat_from_tensor(spx_ctx *ctx, const spx_tensor *t, const void *blob, int layout_hint,
                         spx_kmat **out);

/* Pack a dense row-major fp32 matrix w [rows x cols], rounding values to `dtype` (F32/F16/BF16,
 * nearest even); zero values (after rounding) are not stored by sparse layouts. `layout` must not
 * be AUTO. For NM24 every aligned group of 4 columns must hold <= 2 nonzeros (SPX_E_SPARSE) and
 * cols % 4 == 0 (SPX_E_SHAPE); positions are padded with zero-valued entries to exactly 2. */
int spx_kmat_from_dense(spx_ctx *ctx, const float *w, uint32_t rows, uint32_t cols, int layout, int dtype,
                        spx_kmat **out);

void spx_kmat_free(spx_kmat *m);   /* accepts NULL */

/* w [rows x cols] = the matrix as fp32: stored values converted exactly, zeros elsewhere (explicit
 * zero entries and 2:4 padding give 0 too). Rows are split over the thread pool. */
void spx_kmat_unpack_f32(const spx_kmat *m, float *w);

/* y [rows] = W x [cols]. x and y must not overlap. */
void spx_kmat_matvec(const spx_kmat *m, const float *x, float *y);

/* Rows [r0, r1) of the same product on the calling thread (only y[r0..r1) is written), the same
 * bits as spx_kmat_matvec's: for callers that split work of their own over the pool. Only for
 * matrices spx_kmat_rows_native accepts (every layout but DENSE F32, which spx_kmat_matvec hands
 * to BLAS). */
int spx_kmat_rows_native(const spx_kmat *m);
void spx_kmat_matvec_rows(const spx_kmat *m, const float *x, float *y, uint32_t r0, uint32_t r1);

/* Y [n x rows] = X [n x cols] W^T, row-major. X and Y must not overlap; n == 0 does nothing.
 * PANEL (n >= 2) uses the batched kernel on chunks of up to 64 tokens (32 when rows hold >= 64
 * values per 256-column panel on average, see spx_kern_dispatch.c; scratch: X^T of one chunk,
 * cols x 64 floats at most; if that allocation fails it falls back to its row walk, same tolerance
 * but not the same bits); the other layouts run their row kernels on 4 tokens at a time (weights
 * read from memory once per block of rows); DENSE F32 calls cblas_sgemm. */
void spx_kmat_matmul(const spx_kmat *m, const float *X, size_t n, float *Y);

uint32_t spx_kmat_rows(const spx_kmat *m);
uint32_t spx_kmat_cols(const spx_kmat *m);
int spx_kmat_layout(const spx_kmat *m);      /* spx_klayout */
int spx_kmat_dtype(const spx_kmat *m);       /* spx_dtype of the stored values */
uint64_t spx_kmat_nnz(const spx_kmat *m);    /* stored values (DENSE: rows*cols; NM24: rows*cols/2) */
size_t spx_kmat_bytes(const spx_kmat *m);    /* packed bytes one matvec reads (values + index data) */
const char *spx_klayout_name(int layout);    /* "auto", "dense", "bitmask", "nm24", "csr", "panel", "?" */

/* ---- process-wide settings (call at start-up; not meant to change while kernels run) ---------- */

/* "avx512", "avx2" or "portable": the path the kernels use now. */
const char *spx_kern_isa(void);
/* 1 when this CPU (and OS) can run path `isa` (PORTABLE always; AUTO always). */
int spx_kern_isa_supported(int isa);
/* Force a path (for tests and benchmarks); AUTO selects the best. SPX_E_UNSUPPORTED when the CPU
 * lacks it (the current path is kept), SPX_E_ARG for an unknown value. */
int spx_kern_set_isa(spx_ctx *ctx, int isa);

/* Threads used by matvec/matmul (clamped to 1..SPX_KERN_MAX_THREADS); the default is the number of
 * online CPUs. Returns the value in effect. Products smaller than spx_kern_set_min_parallel bytes
 * of packed weights run on the calling thread only (waking threads costs more than they save). */
int spx_kern_set_threads(int n);
int spx_kern_threads(void);
void spx_kern_set_min_parallel(size_t bytes);   /* default 256 KiB; 0 = always split */
size_t spx_kern_min_parallel(void);             /* the value in effect */

/* The pool itself, for other row-parallel work (the SparseGPT in-block pass uses it): run
 * task(arg, i, nparts) for every i < nparts (clamped to SPX_KERN_MAX_THREADS) on the pool's threads
 * and the caller's; returns when all parts are done. When the pool is busy (a call from another
 * thread) or cannot start threads, all parts run on the calling thread, so a task's result must not
 * depend on which thread runs a part. */
typedef void (*spx_kern_task)(void *arg, unsigned part, unsigned nparts);
void spx_kern_pool_run(unsigned nparts, spx_kern_task task, void *arg);

/* Stop the pool's threads (they restart on demand). Optional; for tools that want a clean exit. */
void spx_kern_shutdown(void);

#endif
