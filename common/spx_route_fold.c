/* spx_route_fold.c: projection-free nearest centroid with an exact fallback (spx_route_fold.h). */
#include "spx_route_fold.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPX_FOLD_MAX_DIM (1u << 20)   /* keeps every double sum within 2^-32 of its magnitude */
#define SPX_FOLD_CHUNK 256            /* z is formed in chunks of this many doubles (stack) */
#define SPX_FOLD_MAX_K 256            /* scores live on the stack (routers of spx_moe: k <= 256) */

/* the 8 lanes of a spx_f8d added in a fixed tree */
#define SPX_FOLD_SUM8(a) ((((a)[0] + (a)[4]) + ((a)[2] + (a)[6])) + (((a)[1] + (a)[5]) + ((a)[3] + (a)[7])))

typedef double spx_f8d __attribute__((vector_size(64)));

int spx_router_fold_worth(const spx_router *r)
{
    return r && r->pca_dim > 0 && r->k >= 1 && r->k <= SPX_FOLD_MAX_K && 2ull * r->k <= r->pca_dim &&
           r->in_dim <= SPX_FOLD_MAX_DIM &&
           r->proj && r->mean && r->centroids;
}

void spx_router_fold_free(spx_router_fold *f)
{
    if (!f)
        return;
    free(f->u);
    free(f->q);
    free(f->cn);
    free(f->un);
    free(f);
}

int spx_router_fold_new(const spx_router *r, spx_router_fold **out)
{
    int rc = 0;
    spx_router_fold *f = NULL;
    const size_t in = r ? r->in_dim : 0, p = r ? r->pca_dim : 0, k = r ? r->k : 0;
    *out = NULL;
    if (!spx_router_fold_worth(r))
        return -1;
    f = calloc(1, sizeof *f);
    if (!f || !(f->u = calloc(k * in, sizeof *f->u)) || !(f->q = malloc(k * sizeof *f->q)) ||
        !(f->cn = malloc(k * sizeof *f->cn)) || !(f->un = malloc(k * sizeof *f->un))) {
        rc = -2;
        goto done;
    }
    f->in_dim = (uint32_t)in;
    f->k = (uint32_t)k;
    {
        double pf = 0.0;
        for (size_t j = 0; j < p * in; j++)
            pf += (double)r->proj[j] * (double)r->proj[j];
        f->pf = sqrt(pf);
    }
    for (size_t c = 0; c < k; c++) {
        const float *C = r->centroids + c * p;
        double *u = f->u + c * in, q = 0.0, un = 0.0;
        for (size_t j = 0; j < p; j++) {   /* u_c = sum_j C_cj P_j: row by row, contiguous */
            const double cj = (double)C[j];
            const float *Pj = r->proj + j * in;
            q += cj * cj;
            for (size_t i = 0; i < in; i++)
                u[i] += cj * (double)Pj[i];
        }
        for (size_t i = 0; i < in; i++)
            un += u[i] * u[i];
        f->q[c] = q;
        f->cn[c] = sqrt(q);
        f->un[c] = sqrt(un);
    }
    *out = f;
    f = NULL;
done:
    spx_router_fold_free(f);
    return rc;
}

/* s[c] = q_c - 2 z . u_c for one token; returns ||z||^2. */
static inline __attribute__((always_inline)) double fold_scores(const spx_router *r, const spx_router_fold *f,
                                                                const float *x, double *s)
{
    const uint32_t in = f->in_dim, k = f->k;
    double z[SPX_FOLD_CHUNK] __attribute__((aligned(64)));
    spx_f8d z2 = {0, 0, 0, 0, 0, 0, 0, 0};
    for (uint32_t c = 0; c < k; c++)
        s[c] = 0.0;
    for (uint32_t i0 = 0; i0 < in; i0 += SPX_FOLD_CHUNK) {
        const uint32_t m = in - i0 < SPX_FOLD_CHUNK ? in - i0 : SPX_FOLD_CHUNK, m8 = m / 8 * 8;
        for (uint32_t i = 0; i < m; i++)
            z[i] = (double)x[i0 + i] - (double)r->mean[i0 + i];
        for (uint32_t i = m; i < (m + 7) / 8 * 8; i++)
            z[i] = 0.0;
        for (uint32_t i = 0; i < m; i += 8) {
            spx_f8d zv;
            memcpy(&zv, z + i, sizeof zv);
            z2 += zv * zv;
        }
        for (uint32_t c = 0; c < k; c++) {
            const double *u = f->u + (size_t)c * in + i0;
            spx_f8d a = {0, 0, 0, 0, 0, 0, 0, 0}, zv, uv;
            uint32_t i = 0;
            for (; i < m8; i += 8) {
                memcpy(&zv, z + i, sizeof zv);
                memcpy(&uv, u + i, sizeof uv);
                a += zv * uv;
            }
            double t = SPX_FOLD_SUM8(a);
            for (; i < m; i++)
                t += z[i] * u[i];
            s[c] += t;
        }
    }
    for (uint32_t c = 0; c < k; c++)
        s[c] = f->q[c] - 2.0 * s[c];
    return SPX_FOLD_SUM8(z2);
}

/* argmin s when every other centroid is provably farther under the exact definition, else -1 */
static inline __attribute__((always_inline)) long fold_decide(const spx_router_fold *f, const double *s, double z2)
{
    const double G = 0x1p-32, E = 0x1p-24 + 0x1p-32;
    const double zn = sqrt(z2), Y = f->pf * zn * (1.0 + 0x1p-20);
    uint32_t b = 0;
    for (uint32_t c = 1; c < f->k; c++)
        if (s[c] < s[b])
            b = c;
    if (!(zn < INFINITY))
        return -1;   /* NaN/Inf input: the exact route decides */
    for (uint32_t c = 0; c < f->k; c++) {
        if (c == b)
            continue;
        const double yc = Y + f->cn[c], yb = Y + f->cn[b];
        double t = 2.0 * E * Y * (f->cn[c] + f->cn[b]) +
                   G * (yc * yc + yb * yb + f->q[c] + f->q[b] + 2.0 * zn * (f->un[c] + f->un[b]) +
                        2.0 * zn * f->pf * (f->cn[c] + f->cn[b]));
        if (!(s[c] - s[b] > 2.0 * t))   /* also false for NaN */
            return -1;
    }
    return (long)b;
}

static inline __attribute__((always_inline)) size_t fold_rows(const spx_router *r, const spx_router_fold *f,
                                                              const float *X, size_t n, float *Y, uint32_t *labels)
{
    double s[SPX_FOLD_MAX_K];   /* f->k <= SPX_FOLD_MAX_K (spx_router_fold_worth) */
    size_t fb = 0;
    for (size_t t = 0; t < n; t++) {
        const float *x = X + t * r->in_dim;
        const long b = fold_decide(f, s, fold_scores(r, f, x, s));
        if (b < 0) {
            spx_router_assign(r, x, 1, Y + t * r->pca_dim, labels + t);
            fb++;
        } else {
            labels[t] = (uint32_t)b;
        }
    }
    return fb;
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
__attribute__((target("avx512f"))) static size_t fold_avx512(const spx_router *r, const spx_router_fold *f,
                                                             const float *X, size_t n, float *Y, uint32_t *labels)
{
    return fold_rows(r, f, X, n, Y, labels);
}
#define SPX_FOLD_X86 1
#else
#define SPX_FOLD_X86 0
#endif

static size_t fold_generic(const spx_router *r, const spx_router_fold *f, const float *X, size_t n, float *Y,
                           uint32_t *labels)
{
    return fold_rows(r, f, X, n, Y, labels);
}

size_t spx_router_fold_assign(const spx_router *r, const spx_router_fold *f, const float *X, size_t n, float *Y,
                              uint32_t *labels)
{
#if SPX_FOLD_X86
    if (__builtin_cpu_supports("avx512f"))
        return fold_avx512(r, f, X, n, Y, labels);
#endif
    return fold_generic(r, f, X, n, Y, labels);
}
