/* spx_kern_unpack.c: a packed matrix back to dense fp32 (spx_kmat_unpack_f32).
 *
 * Used where the runtime needs the plain matrix: gated blocks slice rows of it, spx verify compares
 * weights, and dense F16/BF16 layers convert their weights for sgemm on long batches. Every stored
 * value is converted exactly (F16/BF16 -> fp32 is exact); positions without a stored value are 0. */
#include <string.h>

#include "spx_half.h"
#include "spx_kern_int.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* F16C conversion (exact, like the scalar one) for the dense rows: this one runs on every long
 * batch of a dense F16 layer, so it must cost little next to the sgemm that follows. */
__attribute__((target("avx,f16c"))) static void f16_run_f16c(const uint16_t *src, float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i))));
    for (; i < n; i++)
        dst[i] = spx_f16_to_f32(src[i]);
}
#define SPX_UNPACK_F16C 1
#else
#define SPX_UNPACK_F16C 0
#endif

static float val_at(const spx_kmat *m, uint64_t i)
{
    switch (m->dtype) {
    case SPX_DTYPE_F16: return spx_f16_to_f32(((const uint16_t *)m->vals)[i]);
    case SPX_DTYPE_BF16: return spx_bf16_to_f32(((const uint16_t *)m->vals)[i]);
    default: return ((const float *)m->vals)[i];
    }
}

/* Values [i0, i0 + n) of the value array into out (dense rows: the bulk converters). */
static void vals_run(const spx_kmat *m, uint64_t i0, size_t n, float *out)
{
    switch (m->dtype) {
    case SPX_DTYPE_F16:
#if SPX_UNPACK_F16C
        if (strcmp(spx_kern_isa(), "portable") != 0) {   /* avx2 / avx512 paths imply F16C */
            f16_run_f16c((const uint16_t *)m->vals + i0, out, n);
            break;
        }
#endif
        spx_f16_to_f32_n((const uint16_t *)m->vals + i0, out, n);
        break;
    case SPX_DTYPE_BF16: spx_bf16_to_f32_n((const uint16_t *)m->vals + i0, out, n); break;
    default: memcpy(out, (const float *)m->vals + i0, n * sizeof *out); break;
    }
}

/* Rows [r0, r1) into w (w points at row 0 of the full matrix). */
static void unpack_rows(const spx_kmat *m, float *w, uint32_t r0, uint32_t r1)
{
    const size_t cols = m->cols;
    if (m->layout == SPX_KL_DENSE) {
        vals_run(m, (uint64_t)r0 * cols, (size_t)(r1 - r0) * cols, w + (size_t)r0 * cols);
        return;
    }
    memset(w + (size_t)r0 * cols, 0, (size_t)(r1 - r0) * cols * sizeof *w);
    for (uint32_t r = r0; r < r1; r++) {
        float *wr = w + (size_t)r * cols;
        switch (m->layout) {
        case SPX_KL_BITMASK: {
            uint64_t k = m->ptr[r];
            const uint16_t *mr = m->mask + (size_t)r * m->nb16;
            for (uint32_t b = 0; b < m->nb16; b++)
                for (unsigned bits = mr[b]; bits; bits &= bits - 1)
                    wr[16 * b + (unsigned)__builtin_ctz(bits)] = val_at(m, k++);
            break;
        }
        case SPX_KL_NM24: {
            const uint64_t base = (uint64_t)r * m->nb32 * 16;
            for (uint32_t b = 0; b < m->nb32; b++) {
                uint32_t code = m->code[(size_t)r * m->nb32 + b];
                for (uint32_t i = 0; i < 16; i++) {
                    uint32_t c = 32 * b + 4 * (i / 2) + ((code >> (2 * i)) & 3u);
                    if (c < m->cols)
                        wr[c] = val_at(m, base + (uint64_t)b * 16 + i);
                }
            }
            break;
        }
        case SPX_KL_CSR:
            for (uint64_t k = m->ptr[r]; k < m->ptr[r + 1]; k++)
                wr[m->col[k]] = val_at(m, k);
            break;
        default: {   /* PANEL */
            const uint64_t ld = (uint64_t)m->rows + 1;
            for (uint32_t p = 0; p < m->npan; p++)
                for (uint64_t k = m->ptr[p * ld + r]; k < m->ptr[p * ld + r + 1]; k++)
                    wr[(size_t)p * SPX_KL_PANEL_COLS + m->pidx[k]] = val_at(m, k);
            break;
        }
        }
    }
}

typedef struct ujob {
    const spx_kmat *m;
    float *w;
} ujob;

static void unpack_part(void *arg, unsigned part, unsigned nparts)
{
    const ujob *j = arg;
    uint32_t r0 = (uint32_t)((uint64_t)j->m->rows * part / nparts);
    uint32_t r1 = (uint32_t)((uint64_t)j->m->rows * (part + 1) / nparts);
    if (r0 < r1)
        unpack_rows(j->m, j->w, r0, r1);
}

void spx_kmat_unpack_f32(const spx_kmat *m, float *w)
{
    ujob j = {m, w};
    unsigned nparts = (unsigned)spx_kern_threads();
    if (m->bytes < spx_kern_min_parallel() || m->rows < nparts)
        nparts = 1;
    spx_kern_pool_run(nparts, unpack_part, &j);
}
