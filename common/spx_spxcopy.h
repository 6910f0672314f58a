/* spx_spxcopy.h: building a new .spx from an existing one (prune, expand and gate stages):
 * copy metadata and untouched tensors verbatim, add replaced tensors in the best encoding. */
#ifndef SPX_SPXCOPY_H
#define SPX_SPXCOPY_H

#include <stddef.h>
#include <stdint.h>

#include "spx_format.h"

#define SPX_ENC_AUTO (-1)   /* choose the smallest encoding that represents the matrix exactly */

/* Copy every metadata entry of `in` to `w`, except those for which skip(ud, key) returns nonzero
 * (skip may be NULL). Errors are reported in ctx. */
int spx_meta_copy(spx_ctx *ctx, spx_writer *w, const spx_file *in, int (*skip)(void *ud, const char *key),
                  void *ud);

/* Copy one tensor of `in` verbatim (record fields and bytes). */
int spx_tensor_copy(spx_ctx *ctx, spx_writer *w, const spx_file *in, const spx_tensor *t);

/* Add the fp32 matrix m [rows x cols] under the identity of `like` (name, role, layer, expert; its
 * value dtype unless dtype >= 0). enc: SPX_ENC_AUTO or a spx_encoding. With SPX_ENC_AUTO the NM
 * encoding is considered when nm_m > 0 (nm_n nonzeros kept per nm_m columns) and every encoding
 * that fits is sized with spx_encode_size; ties go to the earlier of dense, nm, bitmask, csr16, csr32.
 * *chosen (may be NULL) receives the encoding used. */
int spx_tensor_add_matrix(spx_ctx *ctx, spx_writer *w, const spx_tensor *like, int dtype, const float *m,
                          uint64_t rows, uint64_t cols, int enc, int nm_n, int nm_m, int *chosen);

/* Parse an --encoding value: "auto", "dense", "bitmask", "nm", "csr16", "csr32", "csr" (-> csr16 when
 * cols allow, decided at add time: returned as SPX_ENC_CSR16). Returns the code or -2 when unknown. */
int spx_encoding_parse(const char *s);

#endif
