/* spx_kern_avx512.c: AVX-512 (F/BW/VL) + FMA + F16C kernels. Compiled for the whole file with a
 * target pragma, so no CMake flags are needed; spx_kern_dispatch.c calls these only after
 * __builtin_cpu_supports confirmed the features (see spx_kern_isa_supported).
 *
 * Per-token arithmetic: every kernel body is written once for T tokens (T = 1 or SPX_KTOK, a
 * compile-time constant after inlining) with separate accumulators per token, so processing 4
 * tokens together gives each token the same bits as processing it alone. Partial sums: two
 * 16-lane accumulators per token (even/odd blocks), reduced by a fixed tree at the end of the row.
 *
 * Measured on this Zen 5 (single thread, data in L2): the BITMASK loop costs ~2.7 cycles per 16
 * columns whichever way the expansion is done (vexpandps after the conversion, vcompressps of x, or
 * vpermps with vpopcntd-made indices all within 10%), so BITMASK is compute-bound (~2x fp32 sgemv
 * at 50%, not the 4x its bytes would allow); vpexpandw (16-bit expand) is 3-4x slower still. 2:4
 * (vpermi2ps of x) costs ~2 cycles per 32 columns and runs at memory bandwidth, dense fp16 ~1.5
 * cycles per 16 columns. The PANEL loop is bound by the 2 vector loads per cycle (see below).
 *
 * `#pragma GCC unroll` on the per-token / per-vector loops: without it GCC -O2 (the project's
 * default build) keeps the accumulator arrays in memory and the kernels run 2-4x slower. */
#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>
#include <string.h>

#include "spx_kern_int.h"

/* every function of this file is compiled for the ISA; the dispatcher calls them only when the
 * CPU has it (clang ignores GCC target pragmas and has its own attribute form) */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,popcnt,avx512f,avx512bw,avx512vl"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,popcnt,avx512f,avx512bw,avx512vl")
#endif

#define KI static inline __attribute__((always_inline))

/* ---- loads ------------------------------------------------------------------------------------ */

KI size_t esize(int dt)
{
    return dt == SPX_DTYPE_F32 ? 4 : 2;
}

KI __m512 cvt16(__m256i h, int dt)
{
    if (dt == SPX_DTYPE_F16)
        return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));   /* BF16 */
}

/* 16 values of dtype dt at p as fp32. */
KI __m512 ld16(const unsigned char *p, int dt)
{
    if (dt == SPX_DTYPE_F32)
        return _mm512_loadu_ps(p);
    return cvt16(_mm256_loadu_si256((const __m256i *)(const void *)p), dt);
}

/* Same, lanes outside k are 0 and not read. */
KI __m512 ld16z(const unsigned char *p, int dt, __mmask16 k)
{
    if (dt == SPX_DTYPE_F32)
        return _mm512_maskz_loadu_ps(k, p);
    return cvt16(_mm256_maskz_loadu_epi16(k, p), dt);
}

KI __mmask16 lanes(uint32_t n)   /* the first n (<= 16) lanes */
{
    return (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1u);
}

/* ---- row bodies: out[t] = W[r,:] . xs[t] for t < T --------------------------------------------- */

KI void dense_row(const spx_kmat *m, uint32_t r, const float *const *xs, float *out, int T, int dt)
{
    const size_t es = esize(dt);
    const uint32_t cols = m->cols;
    const unsigned char *v = (const unsigned char *)m->vals + (size_t)r * cols * es;
    __m512 a0[SPX_KTOK], a1[SPX_KTOK];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        a0[t] = a1[t] = _mm512_setzero_ps();
    uint32_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        __m512 w0 = ld16(v + c * es, dt), w1 = ld16(v + (c + 16) * es, dt);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            a0[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xs[t] + c), a0[t]);
            a1[t] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xs[t] + c + 16), a1[t]);
        }
    }
    if (c < cols) {
        __mmask16 k0 = lanes(cols - c);
        __m512 w0 = ld16z(v + c * es, dt, k0);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            a0[t] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(k0, xs[t] + c), a0[t]);
        if (cols - c > 16) {
            __mmask16 k1 = lanes(cols - c - 16);
            __m512 w1 = ld16z(v + (c + 16) * es, dt, k1);
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++)
                a1[t] = _mm512_fmadd_ps(w1, _mm512_maskz_loadu_ps(k1, xs[t] + c + 16), a1[t]);
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        out[t] = _mm512_reduce_add_ps(_mm512_add_ps(a0[t], a1[t]));
}

/* BITMASK: 16 values loaded at the row cursor, placed on their columns by vexpandps; the cursor
 * advances by the popcount. Loads may run up to 16 values past the row (the array is padded). */
KI void bitmask_row(const spx_kmat *m, uint32_t r, const float *const *xs, float *out, int T, int dt)
{
    const size_t es = esize(dt);
    const unsigned char *v = (const unsigned char *)m->vals + m->ptr[r] * es;
    const uint16_t *mk = m->mask + (size_t)r * m->nb16;
    const uint32_t nfull = m->cols / 16;
    __m512 a0[SPX_KTOK], a1[SPX_KTOK];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        a0[t] = a1[t] = _mm512_setzero_ps();
    uint32_t b = 0;
    for (; b + 2 <= nfull; b += 2) {
        const unsigned m0 = mk[b], m1 = mk[b + 1];
        __m512 w0 = _mm512_maskz_expand_ps((__mmask16)m0, ld16(v, dt));
        v += (size_t)__builtin_popcount(m0) * es;
        __m512 w1 = _mm512_maskz_expand_ps((__mmask16)m1, ld16(v, dt));
        v += (size_t)__builtin_popcount(m1) * es;
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            a0[t] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xs[t] + 16 * b), a0[t]);
            a1[t] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xs[t] + 16 * b + 16), a1[t]);
        }
    }
    for (; b < m->nb16; b++) {   /* at most one full block, then the partial one */
        const unsigned m0 = mk[b];
        const __mmask16 kx = lanes(m->cols - 16 * b);
        __m512 w0 = _mm512_maskz_expand_ps((__mmask16)m0, ld16(v, dt));
        v += (size_t)__builtin_popcount(m0) * es;
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            a0[t] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(kx, xs[t] + 16 * b), a0[t]);
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        out[t] = _mm512_reduce_add_ps(_mm512_add_ps(a0[t], a1[t]));
}

/* NM24: per 32 columns, x is permuted into the order of the 16 stored values (vpermi2ps over the
 * two x vectors); the permutation comes from the 2-bit positions: slot i -> 4*(i/2) + pos_i. */
KI __m512 nm24_pick(uint32_t code, __m512 xlo, __m512 xhi)
{
    const __m512i sh = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i base = _mm512_setr_epi32(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28);
    const __m512i three = _mm512_set1_epi32(3);
    /* ternary logic 0xEA: (A & B) | C with A = code >> 2i, B = 3, C = base */
    __m512i idx = _mm512_ternarylogic_epi32(_mm512_srlv_epi32(_mm512_set1_epi32((int)code), sh), three, base, 0xEA);
    return _mm512_permutex2var_ps(xlo, idx, xhi);
}

KI void nm24_row(const spx_kmat *m, uint32_t r, const float *const *xs, float *out, int T, int dt)
{
    const size_t es = esize(dt);
    const unsigned char *v = (const unsigned char *)m->vals + (size_t)r * m->nb32 * 16 * es;
    const uint32_t *cd = m->code + (size_t)r * m->nb32;
    const uint32_t nfull = m->cols / 32;
    __m512 a0[SPX_KTOK], a1[SPX_KTOK];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        a0[t] = a1[t] = _mm512_setzero_ps();
    uint32_t b = 0;
    for (; b + 2 <= nfull; b += 2) {
        __m512 w0 = ld16(v + (size_t)b * 16 * es, dt), w1 = ld16(v + (size_t)(b + 1) * 16 * es, dt);
        const uint32_t c0 = cd[b], c1 = cd[b + 1];
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const float *x = xs[t] + 32 * b;
            a0[t] = _mm512_fmadd_ps(w0, nm24_pick(c0, _mm512_loadu_ps(x), _mm512_loadu_ps(x + 16)), a0[t]);
            a1[t] = _mm512_fmadd_ps(w1, nm24_pick(c1, _mm512_loadu_ps(x + 32), _mm512_loadu_ps(x + 48)), a1[t]);
        }
    }
    for (; b < m->nb32; b++) {   /* at most one full block, then the partial one (x masked) */
        const uint32_t rem = m->cols - 32 * b;
        const __mmask16 k0 = lanes(rem), k1 = rem > 16 ? lanes(rem - 16) : 0;
        __m512 w0 = ld16(v + (size_t)b * 16 * es, dt);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            const float *x = xs[t] + 32 * b;
            __m512 xhi = rem > 16 ? _mm512_maskz_loadu_ps(k1, x + 16) : _mm512_setzero_ps();
            a0[t] = _mm512_fmadd_ps(w0, nm24_pick(cd[b], _mm512_maskz_loadu_ps(k0, x), xhi), a0[t]);
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        out[t] = _mm512_reduce_add_ps(_mm512_add_ps(a0[t], a1[t]));
}

/* CSR: x gathered with the u16 column indices (x [cols] stays in L1/L2). */
KI void csr_row(const spx_kmat *m, uint32_t r, const float *const *xs, float *out, int T, int dt)
{
    const size_t es = esize(dt);
    const unsigned char *v = m->vals;
    uint64_t k = m->ptr[r];
    const uint64_t e = m->ptr[r + 1];
    __m512 a0[SPX_KTOK], a1[SPX_KTOK];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        a0[t] = a1[t] = _mm512_setzero_ps();
    for (; k + 32 <= e; k += 32) {
        __m512i i0 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(m->col + k)));
        __m512i i1 = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(m->col + k + 16)));
        __m512 w0 = ld16(v + k * es, dt), w1 = ld16(v + (k + 16) * es, dt);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            a0[t] = _mm512_fmadd_ps(w0, _mm512_i32gather_ps(i0, xs[t], 4), a0[t]);
            a1[t] = _mm512_fmadd_ps(w1, _mm512_i32gather_ps(i1, xs[t], 4), a1[t]);
        }
    }
    for (; k < e; k += 16) {
        const __mmask16 kk = lanes((uint32_t)(e - k < 16 ? e - k : 16));
        __m512i i0 = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(kk, m->col + k));
        __m512 w0 = ld16z(v + k * es, dt, kk);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++)
            a0[t] = _mm512_fmadd_ps(w0, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), kk, i0, xs[t], 4), a0[t]);
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++)
        out[t] = _mm512_reduce_add_ps(_mm512_add_ps(a0[t], a1[t]));
}

/* ---- row drivers ------------------------------------------------------------------------------ */

KI void row_any(const spx_kmat *m, uint32_t r, const float *const *xs, float *out, int T, int layout, int dt)
{
    switch (layout) {
    case SPX_KL_DENSE: dense_row(m, r, xs, out, T, dt); break;
    case SPX_KL_BITMASK: bitmask_row(m, r, xs, out, T, dt); break;
    case SPX_KL_NM24: nm24_row(m, r, xs, out, T, dt); break;
    default: csr_row(m, r, xs, out, T, dt); break;
    }
}

/* One token: rows in order. Several: blocks of SPX_KRB rows (their weights stay in cache) swept
 * by groups of SPX_KTOK tokens, leftover tokens one at a time. */
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

void spx_kern_rows_avx512(const spx_kmat *m, const float *X, size_t ldx, size_t nx, float *Y, size_t ldy,
                          uint32_t r0, uint32_t r1)
{
    static const spx_kern_rows_fn tab[4][3] = {
        {rows_dense_f32, rows_dense_f16, rows_dense_bf16},
        {rows_bitmask_f32, rows_bitmask_f16, rows_bitmask_bf16},
        {rows_nm24_f32, rows_nm24_f16, rows_nm24_bf16},
        {rows_csr_f32, rows_csr_f16, rows_csr_bf16},
    };
    if (m->layout == SPX_KL_PANEL || m->layout < SPX_KL_DENSE || m->layout > SPX_KL_CSR) {
        spx_kern_rows_ref(m, X, ldx, nx, Y, ldy, r0, r1);   /* PANEL matvec: scalar row walk */
        return;
    }
    int d = m->dtype == SPX_DTYPE_F32 ? 0 : m->dtype == SPX_DTYPE_F16 ? 1 : 2;
    tab[m->layout - SPX_KL_DENSE][d](m, X, ldx, nx, Y, ldy, r0, r1);
}

/* ---- PANEL batched kernel ----------------------------------------------------------------------
 * For a block of rows, panel by panel: each stored value is broadcast and multiplied into the
 * NB tokens of its column's row of Xt (NB/16 vectors, a panel of 256 x NB floats stays in L1/L2).
 * Value k of a (row, panel) goes to accumulator set k % 4 (FMA latency); the sets are folded into
 * the row's totals at the end of the panel: total += ((s0 + s1) + (s2 + s3)), in panel order.
 * The loop is bound by load ports (2 x 512-bit loads per cycle), so values are not broadcast from
 * memory: 16 are loaded (and converted) at once, and each is spread from the register with two
 * shuffles (vshuff32x4 per 4 values, vshufps per value); 8 u8 indices are read as one u64. */

/* Values e = 0..3 of a quad: t holds them in every 128-bit lane; b holds their 4 indices. */
KI void panel_quad(__m512 t, uint32_t b, const unsigned char *xb, int NB, __m512 *s0, __m512 *s1, __m512 *s2,
                   __m512 *s3)
{
    const size_t rs = (size_t)NB * sizeof(float);   /* bytes per row of Xt */
    const __m512 w0 = _mm512_shuffle_ps(t, t, 0x00), w1 = _mm512_shuffle_ps(t, t, 0x55);
    const __m512 w2 = _mm512_shuffle_ps(t, t, 0xAA), w3 = _mm512_shuffle_ps(t, t, 0xFF);
    const float *x0 = (const float *)(const void *)(xb + (b & 0xFFu) * rs);
    const float *x1 = (const float *)(const void *)(xb + ((b >> 8) & 0xFFu) * rs);
    const float *x2 = (const float *)(const void *)(xb + ((b >> 16) & 0xFFu) * rs);
    const float *x3 = (const float *)(const void *)(xb + (b >> 24) * rs);
#pragma GCC unroll 8
    for (int h = 0; h < NB / 16; h++) {
        s0[h] = _mm512_fmadd_ps(w0, _mm512_load_ps(x0 + 16 * h), s0[h]);
        s1[h] = _mm512_fmadd_ps(w1, _mm512_load_ps(x1 + 16 * h), s1[h]);
        s2[h] = _mm512_fmadd_ps(w2, _mm512_load_ps(x2 + 16 * h), s2[h]);
        s3[h] = _mm512_fmadd_ps(w3, _mm512_load_ps(x3 + 16 * h), s3[h]);
    }
}

/* One value broadcast from memory into set s (the < 16 values left at the end of a row's panel). */
KI void panel_one(float w, const float *xr, int NB, __m512 *s)
{
    const __m512 wv = _mm512_set1_ps(w);
#pragma GCC unroll 8
    for (int h = 0; h < NB / 16; h++)
        s[h] = _mm512_fmadd_ps(wv, _mm512_load_ps(xr + 16 * h), s[h]);
}

KI void panel_body(const spx_kmat *m, const float *Xt, size_t nt, float *Y, size_t ldy, uint32_t r0,
                   uint32_t r1, int NB, int dt)
{
    enum { H = SPX_KNB / 16 };
    const size_t es = esize(dt);
    const uint64_t ld = (uint64_t)m->rows + 1;
    const uint32_t RB = (uint32_t)(SPX_KPANEL_TOT / NB);   /* rows per block (totals in L1/L2) */
    float tot[SPX_KPANEL_TOT] __attribute__((aligned(64)));
    float wt[16] __attribute__((aligned(64)));
    for (uint32_t rb = r0; rb < r1; rb += RB) {
        const uint32_t re = r1 - rb > RB ? rb + RB : r1;
        memset(tot, 0, sizeof(float) * (size_t)(re - rb) * (size_t)NB);
        for (uint32_t p = 0; p < m->npan; p++) {
            const uint64_t *pp = m->ptr + p * ld;
            const float *xp = Xt + (size_t)p * SPX_KL_PANEL_COLS * (size_t)NB;
            const unsigned char *xb = (const unsigned char *)xp;
            for (uint32_t r = rb; r < re; r++) {
                const uint64_t k0 = pp[r];
                const uint32_t cnt = (uint32_t)(pp[r + 1] - k0);
                const uint8_t *ix = m->pidx + k0;
                const unsigned char *v = (const unsigned char *)m->vals + k0 * es;
                if (cnt == 0)
                    continue;
                __m512 s0[H], s1[H], s2[H], s3[H];
#pragma GCC unroll 8
                for (int h = 0; h < NB / 16; h++)
                    s0[h] = s1[h] = s2[h] = s3[h] = _mm512_setzero_ps();
                uint32_t j = 0;
                for (; j + 16 <= cnt; j += 16) {
                    const __m512 wv = ld16(v + j * es, dt);
                    uint64_t qa, qb;
                    memcpy(&qa, ix + j, sizeof qa);
                    memcpy(&qb, ix + j + 8, sizeof qb);
                    panel_quad(_mm512_shuffle_f32x4(wv, wv, 0x00), (uint32_t)qa, xb, NB, s0, s1, s2, s3);
                    panel_quad(_mm512_shuffle_f32x4(wv, wv, 0x55), (uint32_t)(qa >> 32), xb, NB, s0, s1, s2, s3);
                    panel_quad(_mm512_shuffle_f32x4(wv, wv, 0xAA), (uint32_t)qb, xb, NB, s0, s1, s2, s3);
                    panel_quad(_mm512_shuffle_f32x4(wv, wv, 0xFF), (uint32_t)(qb >> 32), xb, NB, s0, s1, s2, s3);
                }
                if (j < cnt) {   /* 1..15 left: value j + e into set e % 4 */
                    _mm512_store_ps(wt, ld16z(v + j * es, dt, lanes(cnt - j)));
                    for (uint32_t e = 0; j + e < cnt; e++) {
                        const float *xr = xp + (size_t)ix[j + e] * (size_t)NB;
                        switch (e % 4) {
                        case 0: panel_one(wt[e], xr, NB, s0); break;
                        case 1: panel_one(wt[e], xr, NB, s1); break;
                        case 2: panel_one(wt[e], xr, NB, s2); break;
                        default: panel_one(wt[e], xr, NB, s3); break;
                        }
                    }
                }
                float *tr = tot + (size_t)(r - rb) * (size_t)NB;
#pragma GCC unroll 8
                for (int h = 0; h < NB / 16; h++) {
                    __m512 sum = _mm512_add_ps(_mm512_add_ps(s0[h], s1[h]), _mm512_add_ps(s2[h], s3[h]));
                    _mm512_store_ps(tr + 16 * h, _mm512_add_ps(_mm512_load_ps(tr + 16 * h), sum));
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

void spx_kern_panel_avx512(const spx_kmat *m, const float *Xt, size_t nb, size_t nt, float *Y, size_t ldy,
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
typedef int spx_kern_avx512_unused_;
#endif
