/* spx_kern_int.h: internals shared by the spx_kern_*.c files (not a public header).
 *
 * Packed layouts (see spx_kernels.h for why each exists). Every value array holds elements of
 * `dtype` (4 bytes for F32, 2 for F16/BF16) and is followed by SPX_KPAD zero elements, so a kernel
 * may load a full vector starting at any stored element without reading past the allocation.
 *
 *   DENSE    vals [rows][cols]
 *   BITMASK  vals [nnz + pad] row-major; ptr u64 [rows+1] (row r = vals[ptr[r] .. ptr[r+1]));
 *            mask u16 [rows][nb16], bit i of mask[r][b] = column 16b+i (bits >= cols are 0)
 *   NM24     vals [rows][nb32*16]; code u32 [rows][nb32]: value slot i (0..15) of 32-column block b
 *            sits in column 32b + 4*(i/2) + ((code >> 2i) & 3); slots past `cols` hold value 0
 *   CSR      vals [nnz + pad], col u16 [nnz + pad], ptr u64 [rows+1]
 *   PANEL    vals/pidx [nnz + pad] in (panel, row, column) order; ptr u64 [npan][rows+1] with
 *            absolute positions: panel p of row r = [ptr[p*(rows+1)+r], ptr[p*(rows+1)+r+1]);
 *            pidx u8 = column - 256p
 */
#ifndef SPX_KERN_INT_H
#define SPX_KERN_INT_H

#include <stddef.h>
#include <stdint.h>

#include "spx_kernels.h"

#define SPX_KPAD 64          /* zero elements after every value/index array */
#define SPX_KTOK 4           /* tokens per pass of the row kernels (matmul on non-PANEL layouts) */
#define SPX_KRB 16           /* rows per block in multi-token row kernels (weights stay in L1/L2) */
#define SPX_KNB 64           /* max tokens per PANEL pass (16, 32 or 64; a 256 x 64 fp32 panel of X^T is 64 KiB) */
#define SPX_KPANEL_TOT 8192  /* floats of per-row totals a PANEL kernel keeps (32 KiB): 8192/NB rows per block;
                                 4096 and 2048 were 3-10% slower on 4096 x 11008 at 50% (fewer rows
                                 per X^T panel load) */

struct spx_kmat {
    uint32_t rows, cols;
    int layout;              /* spx_klayout, never AUTO */
    int dtype;               /* SPX_DTYPE_F32 / F16 / BF16 */
    uint64_t nnz;            /* stored values (NM24: rows*cols/2 without the block padding) */
    size_t bytes;            /* packed bytes read by one matvec */
    uint32_t nb16, nb32, npan;   /* ceil(cols/16), ceil(cols/32), ceil(cols/256) */
    void *vals;
    uint16_t *mask;          /* BITMASK */
    uint32_t *code;          /* NM24 */
    uint16_t *col;           /* CSR */
    uint8_t *pidx;           /* PANEL */
    uint64_t *ptr;           /* BITMASK, CSR: [rows+1]; PANEL: [npan][rows+1] */
};

/* Row kernels: for rows [r0, r1) and nx tokens, Y[t*ldy + r] = sum_c W[r,c] X[t*ldx + c].
 * Tokens are processed SPX_KTOK at a time with the same per-token arithmetic as one at a time.
 * Any layout except DENSE F32 (which goes to BLAS; the kernels still handle it correctly). */
typedef void (*spx_kern_rows_fn)(const spx_kmat *m, const float *X, size_t ldx, size_t nx, float *Y,
                                 size_t ldy, uint32_t r0, uint32_t r1);
/* PANEL batched kernel: Xt [npan*256][nb] is X^T for one chunk of tokens, zero-padded to nb (16, 32
 * or 64) tokens; writes Y[t*ldy + r] for t < nt and rows [r0, r1). */
typedef void (*spx_kern_panel_fn)(const spx_kmat *m, const float *Xt, size_t nb, size_t nt, float *Y,
                                  size_t ldy, uint32_t r0, uint32_t r1);

void spx_kern_rows_ref(const spx_kmat *m, const float *X, size_t ldx, size_t nx, float *Y, size_t ldy,
                       uint32_t r0, uint32_t r1);
void spx_kern_panel_ref(const spx_kmat *m, const float *Xt, size_t nb, size_t nt, float *Y, size_t ldy,
                        uint32_t r0, uint32_t r1);
void spx_kern_rows_avx2(const spx_kmat *m, const float *X, size_t ldx, size_t nx, float *Y, size_t ldy,
                        uint32_t r0, uint32_t r1);
void spx_kern_panel_avx2(const spx_kmat *m, const float *Xt, size_t nb, size_t nt, float *Y, size_t ldy,
                         uint32_t r0, uint32_t r1);
void spx_kern_rows_avx512(const spx_kmat *m, const float *X, size_t ldx, size_t nx, float *Y, size_t ldy,
                          uint32_t r0, uint32_t r1);
void spx_kern_panel_avx512(const spx_kmat *m, const float *Xt, size_t nb, size_t nt, float *Y, size_t ldy,
                           uint32_t r0, uint32_t r1);

/* ---- thread pool (spx_kern_pool.c) -------------------------------------------------------------- */

/* spx_kern_task and spx_kern_pool_run are public (spx_kernels.h): prune/ shares the pool. */

#endif
