/* spx_kern_avx2.c: AVX2 + FMA + F16C kernels (8 lanes) for CPUs without AVX-512. Compiled with a
 * target pragma; spx_kern_dispatch.c calls these only after __builtin_cpu_supports.
 *
 * Same structure and per-token guarantees as spx_kern_avx512.c, with two 8-lane accumulators per
 * token. AVX2 has no expand instruction and no masked 16-bit loads:
 *  - BITMASK expands 8 columns at a time: a 256-entry LUT gives, for a mask byte, the source lane
 *    of every set bit (vpermps), and lanes whose bit is clear are zeroed with a compare mask;
 *  - NM24 permutes each 8-lane half of x separately and blends;
 *  - row tails go through small zero-padded stack buffers; x tails use vmaskmovps.
 * `#pragma GCC unroll` keeps the per-token accumulators in registers at -O2 (see spx_kern_avx512.c). */
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <pthread.h>
#include <string.h>

#include "spx_kern_int.h"

/* every function of this file is compiled for the ISA; the dispatcher calls them only when the
 * CPU has it (clang ignores GCC target pragmas and has its own attribute form) */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,popcnt"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,popcnt")
#endif

#define KI static inline __attribute__((always_inline))

/* g_lut[mb][i]: index among the set bits of mb of bit i = popcount(mb & ((1 << i) - 1)). */
static uint8_t g_lut[256][8];
static pthread_once_t g_lut_once = PTHREAD_ONCE_INIT;

static void lut_init(void)
{
    for (unsigned mb = 0; mb < 256; mb++)
        for (unsigned i = 0; i < 8; i++)
            g_lut[mb][i] = (uint8_t)__builtin_popcount(mb & ((1u << i) - 1u));
}

/* ---- loads ------------------------------------------------------------------------------------ */

KI size_t esize(int dt)
{
    return dt == SPX_DTYPE_F32 ? 4 : 2;
}

KI __m256 ld8(const unsigned char *p, int dt)
{
    if (dt == SPX_DTYPE_F32)
        return _mm256_loadu_ps((const float *)(const void *)p);
    __m128i h = _mm_loadu_si128((const __m128i *)(const void *)p);
    if (dt == SPX_DTYPE_F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

/* n (<= 8) values, the rest 0, nothing read beyond n. */
KI __m256 ld8n(const unsigned char *p, int dt, uint32_t n)
{
    unsigned char buf[32] = {0};
    memcpy(buf, p, (size_t)n * esize(dt));
    return ld8(buf, dt);
}

KI __m256i first_lanes(uint32_t n)   /* lanes < n all-ones */
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

KI __m256 ldx8n(const float *x, uint32_t n)
{
    return _mm256_maskload_ps(x, first_lanes(n));
}

KI float hsum(__m256 a)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* ---- row bodies ----------------------------------------------------------------------------- */

KI void dense_row(const spx_kmat *m, uint32_t r, const float *const *xs, float *out, int T, int dt)
{
    const size_t es = esize(dt);
    const uint32_t cols = m->cols;
    const unsigned char *v = (const unsigned char *)m->vals + (size_t)r * cols * es;
    __m256 a0[SPX_KTOK], a1[SPX_KTOK];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        a0[t] = a1[t] = _mm256_setzero_ps();
    uint32_t c = 0;
    for (; c + 16 <= cols; c += 16) {
        __m256 w0 = ld8(v + c * es, dt), w1 = ld8(v + (c + 8) * es, dt);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xs[t] + c), a0[t]);
            a1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xs[t] + c + 8), a1[t]);
        }
    }
    if (c < cols) {
        const uint32_t n0 = cols - c < 8 ? cols - c : 8;
        __m256 w0 = ld8n(v + c * es, dt, n0);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            a0[t] = _mm256_fmadd_ps(w0, ldx8n(xs[t] + c, n0), a0[t]);
        if (cols - c > 8) {
            const uint32_t n1 = cols - c - 8;
            __m256 w1 = ld8n(v + (c + 8) * es, dt, n1);
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++)
                a1[t] = _mm256_fmadd_ps(w1, ldx8n(xs[t] + c + 8, n1), a1[t]);
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        out[t] = hsum(_mm256_add_ps(a0[t], a1[t]));
}

/* 8 values at v placed on the set bits of mask byte mb, other lanes 0. */
KI __m256 expand8(const unsigned char *v, unsigned mb, int dt)
{
    const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)g_lut[mb]));
    __m256i sel = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)mb), bits), bits);
    return _mm256_and_ps(_mm256_permutevar8x32_ps(ld8(v, dt), idx), _mm256_castsi256_ps(sel));
}

KI void bitmask_row(const spx_kmat *m, uint32_t r, const float *const *xs, float *out, int T, int dt)
{
    const size_t es = esize(dt);
    const unsigned char *v = (const unsigned char *)m->vals + m->ptr[r] * es;
    const uint16_t *mk = m->mask + (size_t)r * m->nb16;
    const uint32_t nfull = m->cols / 16;
    __m256 a0[SPX_KTOK], a1[SPX_KTOK];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        a0[t] = a1[t] = _mm256_setzero_ps();
    for (uint32_t b = 0; b < m->nb16; b++) {
        const unsigned lo = mk[b] & 0xFFu, hi = (unsigned)mk[b] >> 8;
        __m256 w0 = expand8(v, lo, dt);
        v += (size_t)__builtin_popcount(lo) * es;
        __m256 w1 = expand8(v, hi, dt);
        v += (size_t)__builtin_popcount(hi) * es;
        if (b < nfull) {
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                a0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xs[t] + 16 * b), a0[t]);
                a1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xs[t] + 16 * b + 8), a1[t]);
            }
        } else {   /* partial block: rem in 1..15 columns, bits past cols are 0 */
            const uint32_t rem = m->cols - 16 * b;
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                a0[t] = _mm256_fmadd_ps(w0, ldx8n(xs[t] + 16 * b, rem < 8 ? rem : 8), a0[t]);
                if (rem > 8)
                    a1[t] = _mm256_fmadd_ps(w1, ldx8n(xs[t] + 16 * b + 8, rem - 8), a1[t]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        out[t] = hsum(_mm256_add_ps(a0[t], a1[t]));
}

/* 8 slots (4 groups of 4 columns) of a 16-column half: lanes 0..3 take x[0..7], lanes 4..7 x[8..15]. */
KI __m256 nm24_pick(uint32_t code16, __m256 xlo, __m256 xhi)
{
    const __m256i sh = _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
    const __m256i base = _mm256_setr_epi32(0, 0, 4, 4, 0, 0, 4, 4);
    __m256i idx = _mm256_add_epi32(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)code16), sh),
                                                    _mm256_set1_epi32(3)), base);
    return _mm256_blend_ps(_mm256_permutevar8x32_ps(xlo, idx), _mm256_permutevar8x32_ps(xhi, idx), 0xF0);
}

KI __m256 ldx8r(const float *x, uint32_t avail)   /* 8 floats of x where `avail` remain (may be 0) */
{
    return avail >= 8 ? _mm256_loadu_ps(x) : avail ? ldx8n(x, avail) : _mm256_setzero_ps();
}

KI void nm24_row(const spx_kmat *m, uint32_t r, const float *const *xs, float *out, int T, int dt)
{
    const size_t es = esize(dt);
    const unsigned char *v = (const unsigned char *)m->vals + (size_t)r * m->nb32 * 16 * es;
    const uint32_t *cd = m->code + (size_t)r * m->nb32;
    __m256 a0[SPX_KTOK], a1[SPX_KTOK];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        a0[t] = a1[t] = _mm256_setzero_ps();
    for (uint32_t b = 0; b < m->nb32; b++) {
        __m256 w0 = ld8(v + (size_t)b * 16 * es, dt), w1 = ld8(v + ((size_t)b * 16 + 8) * es, dt);
        const uint32_t c = cd[b], rem = m->cols - 32 * b;
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const float *x = xs[t] + 32 * b;
            if (rem >= 32) {
                a0[t] = _mm256_fmadd_ps(w0, nm24_pick(c & 0xFFFFu, _mm256_loadu_ps(x), _mm256_loadu_ps(x + 8)), a0[t]);
                a1[t] = _mm256_fmadd_ps(w1, nm24_pick(c >> 16, _mm256_loadu_ps(x + 16), _mm256_loadu_ps(x + 24)), a1[t]);
            } else {
                a0[t] = _mm256_fmadd_ps(w0, nm24_pick(c & 0xFFFFu, ldx8r(x, rem), ldx8r(x + 8, rem > 8 ? rem - 8 : 0)),
                                        a0[t]);
                if (rem > 16)
                    a1[t] = _mm256_fmadd_ps(w1, nm24_pick(c >> 16, ldx8r(x + 16, rem - 16),
                                                          ldx8r(x + 24, rem > 24 ? rem - 24 : 0)), a1[t]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        out[t] = hsum(_mm256_add_ps(a0[t], a1[t]));
}

KI void csr_row(const spx_kmat *m, uint32_t r, const float *const *xs, float *out, int T, int dt)
{
    const size_t es = esize(dt);
    const unsigned char *v = m->vals;
    uint64_t k = m->ptr[r];
    const uint64_t e = m->ptr[r + 1];
    __m256 a0[SPX_KTOK], a1[SPX_KTOK];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        a0[t] = a1[t] = _mm256_setzero_ps();
    for (; k + 16 <= e; k += 16) {
        __m256i i0 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(m->col + k)));
        __m256i i1 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(m->col + k + 8)));
        __m256 w0 = ld8(v + k * es, dt), w1 = ld8(v + (k + 8) * es, dt);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            a0[t] = _mm256_fmadd_ps(w0, _mm256_i32gather_ps(xs[t], i0, 4), a0[t]);
            a1[t] = _mm256_fmadd_ps(w1, _mm256_i32gather_ps(xs[t], i1, 4), a1[t]);
        }
    }
    for (; k < e; k += 8) {
        const uint32_t n = (uint32_t)(e - k < 8 ? e - k : 8);
        uint16_t ib[8] = {0};
        memcpy(ib, m->col + k, (size_t)n * sizeof *ib);
        __m256i i0 = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)ib));
        __m256 w0 = ld8n(v + k * es, dt, n);
        const __m256 sel = _mm256_castsi256_ps(first_lanes(n));
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            a0[t] = _mm256_fmadd_ps(w0, _mm256_mask_i32gather_ps(_mm256_setzero_ps(), xs[t], i0, sel, 4), a0[t]);
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        out[t] = hsum(_mm256_add_ps(a0[t], a1[t]));
}

/* ---- row drivers (as in spx_kern_avx512.c) ---------------------------------------------------- */

KI void row_any(const spx_kmat *m, uint32_t r, const float *const *xs, float *out, int T, int layout, int dt)
{
    switch (layout) {
    case SPX_KL_DENSE: dense_row(m, r, xs, out, T, dt); break;
    case SPX_KL_BITMASK: bitmask_row(m, r, xs, out, T, dt); break;
    case SPX_KL_NM24: nm24_row(m, r, xs, out, T, dt); break;
    default: csr_row(m, r, xs, out, T, dt); break;
    }
}

KI void rows_body(const spx_kmat *m, const float *X, size_t ldx, size_t nx, float *Y, size_t ldy,
                  uint32_t r0, uint32_t r1, int layout, int dt)
{
    float o[SPX_KTOK];
    for (uint32_t rb = r0; rb < r1; rb += SPX_KRB) {
        const uint32_t re = r1 - rb > SPX_KRB ? rb + SPX_KRB : r1;
        size_t t0 = 0;
        for (; t0 + SPX_KTOK <= nx; t0 += SPX_KTOK) {
            const float *xs[SPX_KTOK];
            #pragma GCC unroll 8
            for (int t = 0; t < SPX_KTOK; t++)
                xs[t] = X + (t0 + (size_t)t) * ldx;
            for (uint32_t r = rb; r < re; r++) {
                row_any(m, r, xs, o, SPX_KTOK, layout, dt);
                #pragma GCC unroll 8
                for (int t = 0; t < SPX_KTOK; t++)
                    Y[(t0 + (size_t)t) * ldy + r] = o[t];
            }
        }
        for (; t0 < nx; t0++) {
            const float *xs[1] = {X + t0 * ldx};
            for (uint32_t r = rb; r < re; r++) {
                row_any(m, r, xs, o, 1, layout, dt);
                Y[t0 * ldy + r] = o[0];
            }
        }
    }
}

#define ROWS_INST(lname, layout, dname, dt)                                                            \
    static void rows_##lname##_##dname(const spx_kmat *m, const float *X, size_t ldx, size_t nx, float *Y, \
                                       size_t ldy, uint32_t r0, uint32_t r1)                            \
    {                                                                                                   \
        rows_body(m, X, ldx, nx, Y, ldy, r0, r1, layout, dt);                                           \
    }
#define ROWS_INST3(lname, layout)                      \
    ROWS_INST(lname, layout, f32, SPX_DTYPE_F32)       \
    ROWS_INST(lname, layout, f16, SPX_DTYPE_F16)       \
    ROWS_INST(lname, layout, bf16, SPX_DTYPE_BF16)

ROWS_INST3(dense, SPX_KL_DENSE)
ROWS_INST3(bitmask, SPX_KL_BITMASK)
ROWS_INST3(nm24, SPX_KL_NM24)
ROWS_INST3(csr, SPX_KL_CSR)

void spx_kern_rows_avx2(const spx_kmat *m, const float *X, size_t ldx, size_t nx, float *Y, size_t ldy,
                        uint32_t r0, uint32_t r1)
{
    static const spx_kern_rows_fn tab[4][3] = {
        {rows_dense_f32, rows_dense_f16, rows_dense_bf16},
        {rows_bitmask_f32, rows_bitmask_f16, rows_bitmask_bf16},
        {rows_nm24_f32, rows_nm24_f16, rows_nm24_bf16},
        {rows_csr_f32, rows_csr_f16, rows_csr_bf16},
    };
    if (m->layout == SPX_KL_PANEL || m->layout < SPX_KL_DENSE || m->layout > SPX_KL_CSR) {
        spx_kern_rows_ref(m, X, ldx, nx, Y, ldy, r0, r1);
        return;
    }
    pthread_once(&g_lut_once, lut_init);
    int d = m->dtype == SPX_DTYPE_F32 ? 0 : m->dtype == SPX_DTYPE_F16 ? 1 : 2;
    tab[m->layout - SPX_KL_DENSE][d](m, X, ldx, nx, Y, ldy, r0, r1);
}

/* ---- PANEL batched kernel (as in spx_kern_avx512.c, 8 lanes): S accumulator sets of NB/8 vectors,
 * S = 4, 2, 1 for 16, 32, 64 tokens (8 accumulators either way: 16 ymm registers). ---- */

KI void panel_body(const spx_kmat *m, const float *Xt, size_t nt, float *Y, size_t ldy, uint32_t r0,
                   uint32_t r1, int NB, int dt)
{
    enum { HMAX = SPX_KNB / 8 };
    const size_t es = esize(dt);
    const uint64_t ld = (uint64_t)m->rows + 1;
    const int nh = NB / 8, S = NB == 16 ? 4 : NB == 32 ? 2 : 1;
    const uint32_t RB = (uint32_t)(SPX_KPANEL_TOT / NB);
    float tot[SPX_KPANEL_TOT] __attribute__((aligned(32)));
    float wbuf[SPX_KL_PANEL_COLS + 8] __attribute__((aligned(32)));
    for (uint32_t rb = r0; rb < r1; rb += RB) {
        const uint32_t re = r1 - rb > RB ? rb + RB : r1;
        memset(tot, 0, sizeof(float) * (size_t)(re - rb) * (size_t)NB);
        for (uint32_t p = 0; p < m->npan; p++) {
            const uint64_t *pp = m->ptr + p * ld;
            const float *xp = Xt + (size_t)p * SPX_KL_PANEL_COLS * (size_t)NB;
            for (uint32_t r = rb; r < re; r++) {
                const uint64_t k0 = pp[r];
                const uint32_t cnt = (uint32_t)(pp[r + 1] - k0);
                const uint8_t *ix = m->pidx + k0;
                const float *w;
                if (cnt == 0)
                    continue;
                if (dt == SPX_DTYPE_F32) {
                    w = (const float *)m->vals + k0;
                } else {
                    const unsigned char *src = (const unsigned char *)m->vals + k0 * es;
                    for (uint32_t j = 0; j < cnt; j += 8)
                        _mm256_store_ps(wbuf + j, ld8(src + j * es, dt));
                    w = wbuf;
                }
                __m256 s[4][HMAX];
                #pragma GCC unroll 8
                for (int u = 0; u < S; u++)
                    #pragma GCC unroll 8
                    for (int h = 0; h < nh; h++)
                        s[u][h] = _mm256_setzero_ps();
                uint32_t j = 0;
                for (; j + (uint32_t)S <= cnt; j += (uint32_t)S)
                    #pragma GCC unroll 8
                    for (int u = 0; u < S; u++) {
                        const __m256 wv = _mm256_set1_ps(w[j + (uint32_t)u]);
                        const float *xr = xp + (size_t)ix[j + (uint32_t)u] * (size_t)NB;
                        #pragma GCC unroll 8
                        for (int h = 0; h < nh; h++)
                            s[u][h] = _mm256_fmadd_ps(wv, _mm256_load_ps(xr + 8 * h), s[u][h]);
                    }
                #pragma GCC unroll 8
                for (int u = 0; u < S - 1; u++) {   /* leftovers: entry j+u into set u */
                    if (j + (uint32_t)u >= cnt)
                        break;
                    const __m256 wv = _mm256_set1_ps(w[j + (uint32_t)u]);
                    const float *xr = xp + (size_t)ix[j + (uint32_t)u] * (size_t)NB;
                    #pragma GCC unroll 8
                    for (int h = 0; h < nh; h++)
                        s[u][h] = _mm256_fmadd_ps(wv, _mm256_load_ps(xr + 8 * h), s[u][h]);
                }
                float *tr = tot + (size_t)(r - rb) * (size_t)NB;
                #pragma GCC unroll 8
                for (int h = 0; h < nh; h++) {
                    __m256 sum = S == 4   ? _mm256_add_ps(_mm256_add_ps(s[0][h], s[1][h]), _mm256_add_ps(s[2][h], s[3][h]))
                                 : S == 2 ? _mm256_add_ps(s[0][h], s[1][h])
                                          : s[0][h];
                    _mm256_store_ps(tr + 8 * h, _mm256_add_ps(_mm256_load_ps(tr + 8 * h), sum));
                }
            }
        }
        for (size_t t = 0; t < nt; t++)
            for (uint32_t r = rb; r < re; r++)
                Y[t * ldy + r] = tot[(size_t)(r - rb) * (size_t)NB + t];
    }
}

#define PANEL_INST(nb, dname, dt)                                                                      \
    static void panel_##nb##_##dname(const spx_kmat *m, const float *Xt, size_t nt, float *Y, size_t ldy, \
                                     uint32_t r0, uint32_t r1)                                         \
    {                                                                                                  \
        panel_body(m, Xt, nt, Y, ldy, r0, r1, nb, dt);                                                 \
    }
PANEL_INST(16, f32, SPX_DTYPE_F32)
PANEL_INST(16, f16, SPX_DTYPE_F16)
PANEL_INST(16, bf16, SPX_DTYPE_BF16)
PANEL_INST(32, f32, SPX_DTYPE_F32)
PANEL_INST(32, f16, SPX_DTYPE_F16)
PANEL_INST(32, bf16, SPX_DTYPE_BF16)
PANEL_INST(64, f32, SPX_DTYPE_F32)
PANEL_INST(64, f16, SPX_DTYPE_F16)
PANEL_INST(64, bf16, SPX_DTYPE_BF16)

void spx_kern_panel_avx2(const spx_kmat *m, const float *Xt, size_t nb, size_t nt, float *Y, size_t ldy,
                         uint32_t r0, uint32_t r1)
{
    typedef void (*fn)(const spx_kmat *, const float *, size_t, float *, size_t, uint32_t, uint32_t);
    static const fn tab[3][3] = {{panel_16_f32, panel_16_f16, panel_16_bf16},
                                 {panel_32_f32, panel_32_f16, panel_32_bf16},
                                 {panel_64_f32, panel_64_f16, panel_64_bf16}};
    int d = m->dtype == SPX_DTYPE_F32 ? 0 : m->dtype == SPX_DTYPE_F16 ? 1 : 2;
    if (nb != 16 && nb != 32 && nb != 64) {
        spx_kern_panel_ref(m, Xt, nb, nt, Y, ldy, r0, r1);
        return;
    }
    tab[nb == 16 ? 0 : nb == 32 ? 1 : 2][d](m, Xt, nt, Y, ldy, r0, r1);
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#else
typedef int spx_kern_avx2_unused_;
#endif
