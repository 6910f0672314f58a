/* spx_sgpt_rows.c: the in-block pass of the SparseGPT sweep, 16 rows at a time.
 *
 * Row by row the pass is a chain of short dependent updates (for each pruned column a of the
 * block, the rest of the row moves by err * U[a][a+1:]); it took a third of the sweep. Rows are
 * independent, so here a tile of 16 rows is transposed (Wt[a] holds column a of the 16 rows) and
 * every step is one vector operation over the rows: err = mask ? w / d : 0, then
 * Wt[j] -= err * U[a][j] for j > a. Kept columns give err = 0, whose update is an exact no-op
 * (w - 0 * u == w for finite u: the sweep checks that W and U are finite; only a -0.0 weight may
 * come out as +0.0), so the vector pass computes what the scalar row walk computes, bit for bit
 * otherwise; the count of operations doubles at 50% but they are 16 wide and branch-free.
 * Every operation is a single IEEE fp32 (or, for the loss, fp64) operation in a fixed order, and
 * the project builds with -std=c11 (no FMA contraction), so the AVX-512 clone and the generic build
 * of tile_pass() give identical bits (tests/unit/test_prune_sparsegpt.c checks against a double
 * reference and across thread counts). */
#include "spx_sgpt_rows.h"

#include <string.h>

#define T 16   /* rows per tile: one 512-bit vector of floats */

typedef float v16f __attribute__((vector_size(64)));
typedef int v16i __attribute__((vector_size(64)));
typedef double v8d __attribute__((vector_size(64)));

/* One tile: Wt [nb][T] current weights (updated), Mt [nb][T] masks (read; N:M: written),
 * Et [nb][T] errors (written), loss [T] (added to). Returns the number of weights pruned in the
 * first `nr` lanes (lanes >= nr are zero padding whose results are discarded). Written once,
 * built twice (generic and AVX-512) through an always-inline body. */
static inline __attribute__((always_inline)) uint64_t tile_body(const spx_prune_opts *o, const float *Ub, size_t nb,
                                                               v16f *Wt, v16i *Mt, v16f *Et, double *loss,
                                                               unsigned nr)
{
    const int nm = o->nm_m, prune_per_group = o->nm_m - o->nm_n;
    v8d l0 = {0}, l1 = {0};
    v16i cnt = {0};
    for (size_t a = 0; a < nb; a++) {
        const float d = Ub[a * nb + a];
        if (nm && a % (size_t)nm == 0) {
            /* prune the nm - nm_n lowest in (score, index) order (spx_prune_nm_group's rule) */
            v16f s[256];
            for (int g = 0; g < nm; g++) {
                const float dg = Ub[(a + (size_t)g) * nb + a + (size_t)g];
                const v16f wg = Wt[a + (size_t)g];
                s[g] = (wg * wg) / (dg * dg);
            }
            for (int g = 0; g < nm; g++) {
                v16i rank = {0};
                for (int q = 0; q < nm; q++) {
                    if (q < g)
                        rank -= (s[q] < s[g]) | (s[q] == s[g]);
                    else
                        rank -= s[q] < s[g];
                }
                Mt[a + (size_t)g] = rank < prune_per_group;   /* -1 where pruned */
            }
        }
        /* GCC's C front end has no vector ?:, so masks select by bits (m lanes are 0 or -1) */
        const v16i m = Mt[a] != 0;
        const v16f w = Wt[a];
        const v16f err = (v16f)((v16i)(w / d) & m);
        Wt[a] = (v16f)((v16i)w & ~m);
        Et[a] = err;
        cnt -= m;
        {
            v8d e0 = {err[0], err[1], err[2], err[3], err[4], err[5], err[6], err[7]};
            v8d e1 = {err[8], err[9], err[10], err[11], err[12], err[13], err[14], err[15]};
            l0 += e0 * e0;
            l1 += e1 * e1;
        }
        const float *u = Ub + a * nb;
        for (size_t j = a + 1; j < nb; j++)
            Wt[j] -= err * u[j];
    }
    uint64_t pruned = 0;
    for (unsigned l = 0; l < nr; l++) {
        loss[l] += l < 8 ? l0[l] : l1[l - 8];
        pruned += (uint64_t)cnt[l];
    }
    return pruned;
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define SPX_SGPT_X86 1
__attribute__((target("avx512f"))) static uint64_t tile_avx512(const spx_prune_opts *o, const float *Ub, size_t nb,
                                                               v16f *Wt, v16i *Mt, v16f *Et, double *loss, unsigned nr)
{
    return tile_body(o, Ub, nb, Wt, Mt, Et, loss, nr);
}
#else
#define SPX_SGPT_X86 0
#endif

static uint64_t tile_generic(const spx_prune_opts *o, const float *Ub, size_t nb, v16f *Wt, v16i *Mt, v16f *Et,
                             double *loss, unsigned nr)
{
    return tile_body(o, Ub, nb, Wt, Mt, Et, loss, nr);
}

size_t spx_sgpt_rows_scratch(size_t nb)
{
    return 3 * nb * sizeof(v16f);
}

uint64_t spx_sgpt_rows(const spx_prune_opts *o, const float *Ub, size_t nb, float *Wb, float *Err, uint8_t *mask,
                       size_t r0, size_t r1, double *rowloss, void *scratch)
{
    v16f *Wt = scratch, *Et = Wt + nb;   /* tiles [nb][T] each */
    v16i *Mt = (v16i *)(void *)(Et + nb);
    uint64_t pruned = 0;
#if SPX_SGPT_X86
    const int wide = __builtin_cpu_supports("avx512f");
#endif
    for (size_t t0 = r0; t0 < r1; t0 += T) {
        const unsigned nr = (unsigned)(r1 - t0 < T ? r1 - t0 : T);
        double loss[T] = {0};
        float *wt = (float *)(void *)Wt;   /* lane l of column a at [a * T + l] */
        int *mt = (int *)(void *)Mt;
        if (nr < T) {   /* zero padding lanes */
            memset(Wt, 0, nb * sizeof(v16f));
            memset(Mt, 0, nb * sizeof(v16i));
        }
        for (unsigned l = 0; l < nr; l++) {   /* row-wise reads, strided writes */
            const float *w = Wb + (t0 + l) * nb;
            const uint8_t *m = mask + (t0 + l) * nb;
            for (size_t a = 0; a < nb; a++) {
                wt[a * T + l] = w[a];
                mt[a * T + l] = m[a];
            }
        }
#if SPX_SGPT_X86
        if (wide)
            pruned += tile_avx512(o, Ub, nb, Wt, Mt, Et, loss, nr);
        else
#endif
            pruned += tile_generic(o, Ub, nb, Wt, Mt, Et, loss, nr);
        {
            const float *et = (const float *)(const void *)Et;
            for (unsigned l = 0; l < nr; l++) {
                float *w = Wb + (t0 + l) * nb, *e = Err + (t0 + l) * nb;
                uint8_t *m = mask + (t0 + l) * nb;
                for (size_t a = 0; a < nb; a++) {
                    w[a] = wt[a * T + l];
                    e[a] = et[a * T + l];
                    m[a] = (uint8_t)(mt[a * T + l] != 0);
                }
                rowloss[t0 + l] = loss[l];
            }
        }
    }
    return pruned;
}
