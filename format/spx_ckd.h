/* spx_ckd.h: checked size arithmetic. Every size product derived from input goes through these. */
#ifndef SPX_CKD_H
#define SPX_CKD_H

#include <stddef.h>
#include <stdint.h>

/* Each returns 0 on success and -1 on overflow (then *out is unspecified). */
static inline int spx_ckd_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}
static inline int spx_ckd_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    return __builtin_add_overflow(a, b, out) ? -1 : 0;
}
static inline int spx_ckd_mul_size(size_t a, size_t b, size_t *out)
{
    return __builtin_mul_overflow(a, b, out) ? -1 : 0;
}
static inline int spx_ckd_add_size(size_t a, size_t b, size_t *out)
{
    return __builtin_add_overflow(a, b, out) ? -1 : 0;
}
/* a*b*c in size_t */
static inline int spx_ckd_mul3_size(size_t a, size_t b, size_t c, size_t *out)
{
    size_t t;
    if (__builtin_mul_overflow(a, b, &t))
        return -1;
    return __builtin_mul_overflow(t, c, out) ? -1 : 0;
}
/* Round v up to a multiple of the power of two `align`. */
static inline int spx_ckd_align_u64(uint64_t v, uint64_t align, uint64_t *out)
{
    uint64_t t;
    if (__builtin_add_overflow(v, align - 1, &t))
        return -1;
    *out = t & ~(align - 1);
    return 0;
}

#endif
