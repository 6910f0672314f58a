/* spx_kern_ref.c: portable C kernels for every layout (the fallback path on CPUs without AVX2, and
 * the path tests force to check the layouts independently of the SIMD code).
 *
 * Summation: a row's products go round-robin into 8 partial sums (entry k of the row into sum
 * k % 8), combined as ((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7)): each partial sum has <= cols/8 terms,
 * which keeps fp32 round-off ~8x below a single running sum. The PANEL kernel keeps, per token,
 * 4 partial sums inside each panel (entry k of the panel into sum k % 4) folded into the row's
 * total at the end of every panel, like the SIMD PANEL kernels. */
#include <string.h>

#include "spx_half.h"
#include "spx_kern_int.h"

static float ldv(const unsigned char *v, int dtype, uint64_t i)
{
    if (dtype == SPX_DTYPE_F32) {
        float f;
        memcpy(&f, v + 4 * i, sizeof f);
        return f;
    }
    uint16_t h;
    memcpy(&h, v + 2 * i, sizeof h);
    return dtype == SPX_DTYPE_F16 ? spx_f16_to_f32(h) : spx_bf16_to_f32(h);
}

static float sum8(const float *a)
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

static float row_dot(const spx_kmat *m, uint32_t r, const float *x)
{
    const unsigned char *v = m->vals;
    const int dt = m->dtype;
    float acc[8] = {0};
    unsigned j = 0;
    switch (m->layout) {
    case SPX_KL_DENSE:
        for (uint32_t c = 0; c < m->cols; c++)
            acc[j++ & 7] += ldv(v, dt, (uint64_t)r * m->cols + c) * x[c];
        break;
    case SPX_KL_BITMASK: {
        uint64_t k = m->ptr[r];
        const uint16_t *mr = m->mask + (size_t)r * m->nb16;
        for (uint32_t b = 0; b < m->nb16; b++)
            for (unsigned bits = mr[b]; bits; bits &= bits - 1)
                acc[j++ & 7] += ldv(v, dt, k++) * x[16 * b + (unsigned)__builtin_ctz(bits)];
        break;
    }
    case SPX_KL_NM24: {
        const uint64_t base = (uint64_t)r * m->nb32 * 16;
        const uint32_t *cr = m->code + (size_t)r * m->nb32;
        for (uint32_t b = 0; b < m->nb32; b++)
            for (uint32_t i = 0; i < 16; i++) {
                uint64_t c = 32 * (uint64_t)b + 4 * (i / 2) + ((cr[b] >> (2 * i)) & 3u);
                if (c < m->cols)
                    acc[j++ & 7] += ldv(v, dt, base + 16 * (uint64_t)b + i) * x[c];
            }
        break;
    }
    case SPX_KL_CSR:
        for (uint64_t k = m->ptr[r]; k < m->ptr[r + 1]; k++)
            acc[j++ & 7] += ldv(v, dt, k) * x[m->col[k]];
        break;
    default: {   /* PANEL, walked row by row */
        const uint64_t ld = (uint64_t)m->rows + 1;
        for (uint32_t p = 0; p < m->npan; p++) {
            const uint64_t *pp = m->ptr + p * ld;
            const float *xp = x + (size_t)p * SPX_KL_PANEL_COLS;
            for (uint64_t k = pp[r]; k < pp[r + 1]; k++)
                acc[j++ & 7] += ldv(v, dt, k) * xp[m->pidx[k]];
        }
        break;
    }
    }
    return sum8(acc);
}

void spx_kern_rows_ref(const spx_kmat *m, const float *X, size_t ldx, size_t nx, float *Y, size_t ldy,
                       uint32_t r0, uint32_t r1)
{
    for (uint32_t r = r0; r < r1; r++)
        for (size_t t = 0; t < nx; t++)
            Y[t * ldy + r] = row_dot(m, r, X + t * ldx);
}

void spx_kern_panel_ref(const spx_kmat *m, const float *Xt, size_t nb, size_t nt, float *Y, size_t ldy,
                        uint32_t r0, uint32_t r1)
{
    const unsigned char *v = m->vals;
    const uint64_t ld = (uint64_t)m->rows + 1;
    float tot[SPX_KNB], part[4][SPX_KNB];
    for (uint32_t r = r0; r < r1; r++) {
        memset(tot, 0, sizeof tot);
        for (uint32_t p = 0; p < m->npan; p++) {
            const uint64_t *pp = m->ptr + p * ld;
            const float *xp = Xt + (size_t)p * SPX_KL_PANEL_COLS * nb;
            memset(part, 0, sizeof part);
            unsigned j = 0;
            for (uint64_t k = pp[r]; k < pp[r + 1]; k++) {
                const float w = ldv(v, m->dtype, k);
                const float *xr = xp + (size_t)m->pidx[k] * nb;
                float *s = part[j++ & 3];
                for (size_t t = 0; t < nb; t++)
                    s[t] += w * xr[t];
            }
            for (size_t t = 0; t < nb; t++)
                tot[t] += (part[0][t] + part[1][t]) + (part[2][t] + part[3][t]);
        }
        for (size_t t = 0; t < nt; t++)
            Y[t * ldy + r] = tot[t];
    }
}
