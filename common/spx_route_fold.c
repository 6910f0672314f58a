/* spx_route_fold.c: projection-free nearest centroid with an exact fallback (spx_route_fold.h). */
#include "spx_route_fold.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SPX_FOLD_MAX_DIM (1u << 20)   /* keeps every double sum within 2^-32 of its magnitude */
#define SPX_FOLD_MAX_K 256            /* scores live on the stack (routers of spx_moe: k <= 256) */
/* prefetch distance in bytes of u: in decode u is cold (the weights streamed since evicted it);
 * 4 KiB ahead made the in-decode routing 10-20% faster than the hardware prefetcher alone */
#define SPX_FOLD_PF 4096

/* the 8 lanes of a spx_f8d added in a fixed tree */
#define SPX_FOLD_SUM8(a) ((((a)[0] + (a)[4]) + ((a)[2] + (a)[6])) + (((a)[1] + (a)[5]) + ((a)[3] + (a)[7])))

typedef double spx_f8d __attribute__((vector_size(64)));

int spx_router_fold_worth(const spx_router *r)
{
    return r && r->pca_dim > 0 && r->k >= 2 && r->k <= SPX_FOLD_MAX_K && 2ull * r->k <= r->pca_dim &&
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
    double *u = NULL;   /* [in] one centroid's u in double */
    const size_t in = r ? r->in_dim : 0, p = r ? r->pca_dim : 0, k = r ? r->k : 0, nblk = (in + 7) / 8;
    *out = NULL;
    if (!spx_router_fold_worth(r))
        return -1;
    f = calloc(1, sizeof *f);
    if (!f || !(u = malloc(in * sizeof *u)) || !(f->u = calloc(k * nblk * 8, sizeof *f->u)) ||
        !(f->q = malloc(k * sizeof *f->q)) || !(f->cn = malloc(k * sizeof *f->cn)) ||
        !(f->un = malloc(k * sizeof *f->un))) {
        rc = -2;
        goto done;
    }
    f->in_dim = (uint32_t)in;
    f->k = (uint32_t)k;
    f->nblk = (uint32_t)nblk;
    {
        double pf = 0.0;
        for (size_t j = 0; j < p * in; j++)
            pf += (double)r->proj[j] * (double)r->proj[j];
        f->pf = sqrt(pf);
    }
    for (size_t c = 0; c < k; c++) {
        const float *C = r->centroids + c * p;
        const size_t g = c / 8, kg = k - 8 * g < 8 ? k - 8 * g : 8;
        float *dst = f->u + 64 * g * nblk + (c % 8) * 8;   /* block b of centroid c at dst + 8 kg b */
        double q = 0.0, un = 0.0;
        memset(u, 0, in * sizeof *u);
        for (size_t j = 0; j < p; j++) {   /* u_c = sum_j C_cj P_j: row by row, contiguous */
            const double cj = (double)C[j];
            const float *Pj = r->proj + j * in;
            q += cj * cj;
            for (size_t i = 0; i < in; i++)
                u[i] += cj * (double)Pj[i];
        }
        for (size_t i = 0; i < in; i++) {
            if (!(fabs(u[i]) <= 0x1p100)) {   /* fp32 would overflow (or NaN): the exact route only */
                rc = -1;
                goto done;
            }
            un += u[i] * u[i];
            dst[i / 8 * 8 * kg + i % 8] = (float)u[i];
        }
        f->q[c] = q;
        f->cn[c] = sqrt(q);
        f->un[c] = sqrt(un);
    }
    *out = f;
    f = NULL;
done:
    free(u);
    spx_router_fold_free(f);
    return rc;
}

typedef float spx_f8f __attribute__((vector_size(32)));

/* out[c] = z . u_c over blocks [b0, b1) of one group of kg centroids (u at ug, [nblk][kg][8]); z =
 * x - mean formed block by block in double. With z2, also ||z||^2 over those blocks. KG > 0 fixes
 * kg at compile time. */
static inline __attribute__((always_inline)) void fold_group(const spx_router *r, const spx_router_fold *f,
                                                             const float *x, const float *ug, uint32_t kg,
                                                             const uint32_t KG, uint32_t b0, uint32_t b1,
                                                             double *out, double *z2)
{
    const uint32_t in = f->in_dim, full = in / 8;
    spx_f8d acc[8], zz = {0, 0, 0, 0, 0, 0, 0, 0};
    if (KG)
        kg = KG;
    for (uint32_t c = 0; c < 8; c++)
        acc[c] = zz;
    for (uint32_t b = b0; b < b1; b++) {
        spx_f8f xv = {0, 0, 0, 0, 0, 0, 0, 0}, mv = xv, uv;
        /* u and mean are cold in decode: keep SPX_FOLD_PF bytes of u (and as many blocks of mean) in flight */
        const char *pu = (const char *)(ug + 8 * ((size_t)b * kg)) + SPX_FOLD_PF;
        for (uint32_t o = 0; o < 32 * kg; o += 64)
            __builtin_prefetch(pu + o);
        if (b % 2 == 0)
            __builtin_prefetch((const char *)(r->mean + 8 * b) + SPX_FOLD_PF / kg);
        if (b < full) {
            memcpy(&xv, x + 8 * b, sizeof xv);
            memcpy(&mv, r->mean + 8 * b, sizeof mv);
        } else {   /* tail: zero lanes (u is zero there too) */
            memcpy(&xv, x + 8 * b, (in - 8 * b) * sizeof(float));
            memcpy(&mv, r->mean + 8 * b, (in - 8 * b) * sizeof(float));
        }
        const spx_f8d zv = __builtin_convertvector(xv, spx_f8d) - __builtin_convertvector(mv, spx_f8d);
        zz += zv * zv;
        for (uint32_t c = 0; c < kg; c++) {
            memcpy(&uv, ug + 8 * ((size_t)b * kg + c), sizeof uv);
            acc[c] += zv * __builtin_convertvector(uv, spx_f8d);
        }
    }
    for (uint32_t c = 0; c < kg; c++)
        out[c] = SPX_FOLD_SUM8(acc[c]);
    if (z2)
        *z2 = SPX_FOLD_SUM8(zz);
}

/* acc[c] = z . u_c (c < k) and acc[k] = ||z||^2 over blocks [b0, b1) */
static inline __attribute__((always_inline)) void fold_dots(const spx_router *r, const spx_router_fold *f,
                                                            const float *x, uint32_t b0, uint32_t b1, double *acc)
{
    acc[f->k] = 0.0;
    for (uint32_t g = 0; 8 * g < f->k; g++) {
        const uint32_t kg = f->k - 8 * g < 8 ? f->k - 8 * g : 8;
        const float *ug = f->u + (size_t)64 * g * f->nblk;
        double *z2 = g ? NULL : acc + f->k;
        if (kg == 8)
            fold_group(r, f, x, ug, kg, 8, b0, b1, acc + 8 * g, z2);
        else
            fold_group(r, f, x, ug, kg, 0, b0, b1, acc + 8 * g, z2);
    }
}

/* argmin s when every other centroid is provably farther under the exact definition, else -1 */
static inline __attribute__((always_inline)) long fold_decide(const spx_router_fold *f, const double *s, double z2)
{
    const double G = 0x1p-32, E = 0x1p-24 + 0x1p-32, U = 0x1p-24 * (1.0 + 0x1p-20);
    const double zn = sqrt(z2), Y = f->pf * zn * (1.0 + 0x1p-20), sub = 0x1p-140 * zn;
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
                        2.0 * zn * f->pf * (f->cn[c] + f->cn[b])) +
                   2.0 * (U * zn * (f->un[c] + f->un[b]) + 2.0 * sub);   /* fp32 u (sqrt(in_dim) <= 2^10) */
        if (!(s[c] - s[b] > 2.0 * t))   /* also false for NaN */
            return -1;
    }
    return (long)b;
}

size_t spx_router_fold_finish(const spx_router *r, const spx_router_fold *f, const float *x, const double *acc,
                              unsigned nparts, float *Y, uint32_t *label)
{
    double s[SPX_FOLD_MAX_K];   /* f->k <= SPX_FOLD_MAX_K (spx_router_fold_worth) */
    double z2 = 0.0;
    const size_t w = (size_t)f->k + 1;
    for (uint32_t c = 0; c < f->k; c++)
        s[c] = 0.0;
    for (unsigned p = 0; p < nparts; p++) {
        for (uint32_t c = 0; c < f->k; c++)
            s[c] += acc[p * w + c];
        z2 += acc[p * w + f->k];
    }
    for (uint32_t c = 0; c < f->k; c++)
        s[c] = f->q[c] - 2.0 * s[c];
    const long b = fold_decide(f, s, z2);
    if (b >= 0) {
        *label = (uint32_t)b;
        return 0;
    }
    spx_router_assign(r, x, 1, Y, label);
    return 1;
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
__attribute__((target("avx512f"))) static void dots_avx512(const spx_router *r, const spx_router_fold *f,
                                                           const float *x, uint32_t b0, uint32_t b1, double *acc)
{
    fold_dots(r, f, x, b0, b1, acc);
}
#define SPX_FOLD_X86 1
#else
#define SPX_FOLD_X86 0
#endif

static void dots_generic(const spx_router *r, const spx_router_fold *f, const float *x, uint32_t b0, uint32_t b1,
                         double *acc)
{
    fold_dots(r, f, x, b0, b1, acc);
}

void spx_router_fold_part(const spx_router *r, const spx_router_fold *f, const float *x, uint32_t b0, uint32_t b1,
                          double *acc)
{
    if (b1 > f->nblk)
        b1 = f->nblk;
    if (b0 > b1)
        b0 = b1;
#if SPX_FOLD_X86
    if (__builtin_cpu_supports("avx512f")) {
        dots_avx512(r, f, x, b0, b1, acc);
        return;
    }
#endif
    dots_generic(r, f, x, b0, b1, acc);
}

size_t spx_router_fold_assign(const spx_router *r, const spx_router_fold *f, const float *X, size_t n, float *Y,
                              uint32_t *labels)
{
    double acc[SPX_FOLD_MAX_K + 1];
    size_t fb = 0;
    for (size_t t = 0; t < n; t++) {
        const float *x = X + t * r->in_dim;
        spx_router_fold_part(r, f, x, 0, f->nblk, acc);
        fb += spx_router_fold_finish(r, f, x, acc, 1, Y + t * r->pca_dim, labels + t);
    }
    return fb;
}
