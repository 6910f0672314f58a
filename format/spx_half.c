/* spx_half.c: scalar half-precision conversions. Correctness over speed: the runtime converts
 * once at load time; hot kernels that need fp16 use their own vector paths. */
#include "spx_half.h"

#include <string.h>

#include "spx_format.h"

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float spx_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0) {
        if (man == 0)
            return u2f(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31)
        return u2f(sign | 0x7f800000u | (man << 13));
    return u2f(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t spx_f32_to_f16(float f)
{
    uint32_t u = f2u(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t exp = (u >> 23) & 0xffu;
    uint32_t man = u & 0x7fffffu;
    if (exp == 0xff) /* Inf or NaN (quiet bit kept) */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u | (man >> 13) : 0u));
    int32_t e = (int32_t)exp - 127 + 15;
    if (e >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (e <= 0) {
        if (e < -10)
            return sign;
        /* subnormal: shift the full mantissa (with implicit 1) right, round to nearest even */
        uint32_t m = man | 0x800000u;
        uint32_t shift = (uint32_t)(14 - e);
        uint32_t half = 1u << (shift - 1);
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        if (rem > half || (rem == half && (r & 1u)))
            r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((uint32_t)e << 10) | (man >> 13);
    uint32_t rem = man & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u)))
        r++; /* may carry into the exponent, which is the correct rounding (up to Inf) */
    return (uint16_t)(sign | r);
}

float spx_bf16_to_f32(uint16_t h)
{
    return u2f((uint32_t)h << 16);
}

uint16_t spx_f32_to_bf16(float f)
{
    uint32_t u = f2u(f);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu))
        return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN */
    uint32_t lsb = (u >> 16) & 1u;
    u += 0x7fffu + lsb;
    return (uint16_t)(u >> 16);
}

void spx_f16_to_f32_n(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++) {
        uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
        dst[i] = spx_f16_to_f32(h);
    }
}

void spx_bf16_to_f32_n(const void *src, float *dst, size_t n)
{
    const unsigned char *p = src;
    for (size_t i = 0; i < n; i++) {
        uint16_t h = (uint16_t)(p[2 * i] | (p[2 * i + 1] << 8));
        dst[i] = spx_bf16_to_f32(h);
    }
}

void spx_f32_to_f16_n(const float *src, void *dst, size_t n)
{
    unsigned char *p = dst;
    for (size_t i = 0; i < n; i++) {
        uint16_t h = spx_f32_to_f16(src[i]);
        p[2 * i] = (unsigned char)(h & 0xff);
        p[2 * i + 1] = (unsigned char)(h >> 8);
    }
}

void spx_f32_to_bf16_n(const float *src, void *dst, size_t n)
{
    unsigned char *p = dst;
    for (size_t i = 0; i < n; i++) {
        uint16_t h = spx_f32_to_bf16(src[i]);
        p[2 * i] = (unsigned char)(h & 0xff);
        p[2 * i + 1] = (unsigned char)(h >> 8);
    }
}

uint64_t spx_first_nonfinite(const void *src, int dtype, uint64_t n)
{
    const unsigned char *s = src;
    for (uint64_t i = 0; i < n; i++) {
        if (dtype == SPX_DTYPE_F32) {
            uint32_t u;
            memcpy(&u, s + 4 * i, 4);
            if ((u & 0x7f800000u) == 0x7f800000u)   /* all-ones exponent: Inf or NaN */
                return i;
        } else {
            uint16_t u;
            memcpy(&u, s + 2 * i, 2);
            if (dtype == SPX_DTYPE_F16 ? (u & 0x7c00u) == 0x7c00u : (u & 0x7f80u) == 0x7f80u)
                return i;
        }
    }
    return n;
}
