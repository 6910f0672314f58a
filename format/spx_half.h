/* spx_half.h: IEEE binary16 and bfloat16 conversions (round to nearest even, NaN kept quiet). */
#ifndef SPX_HALF_H
#define SPX_HALF_H

#include <stddef.h>
#include <stdint.h>

float spx_f16_to_f32(uint16_t h);
uint16_t spx_f32_to_f16(float f);
float spx_bf16_to_f32(uint16_t h);
uint16_t spx_f32_to_bf16(float f);

/* Bulk conversions; `src` may be unaligned (read with memcpy), values little-endian. */
void spx_f16_to_f32_n(const void *src, float *dst, size_t n);
void spx_bf16_to_f32_n(const void *src, float *dst, size_t n);
void spx_f32_to_f16_n(const float *src, void *dst, size_t n);
void spx_f32_to_bf16_n(const float *src, void *dst, size_t n);

/* Index of the first NaN/Inf among n stored little-endian values of spx dtype `dtype` (SPX_DTYPE_F32,
 * _F16 or _BF16; any other is read as BF16-width halves: callers pass only these three), or n.
 * `src` may be unaligned. */
uint64_t spx_first_nonfinite(const void *src, int dtype, uint64_t n);

#endif
