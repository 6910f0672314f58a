/* spx_route.c: nearest-centroid routing (see spx_route.h).
 *
 * Speed: the projection is a [pca_dim x in_dim] product per token and runs on every decoded token
 * of an expanded model (two routers per block), so it is vectorised: each dot product is summed
 * in double over 8 lanes (lane l takes the elements i with i % 8 == l, in increasing i), the lanes
 * are then added in a fixed tree. Lane-wise double adds and multiplies are exact IEEE operations
 * whatever the vector width, so the generic (SSE2) and AVX-512 builds of project_rows() give the
 * same bits; the project is built with -std=c11 (-ffp-contract=off: no fused multiply-add). The
 * order is fixed by the code, never by BLAS blocking or threads, so the expansion stage
 * (prune/spx_expand.c) and the runtime route every token identically. */
#include "spx_route.h"

#include <string.h>

#define SPX_ROUTE_LANES 8
#define SPX_ROUTE_ROWS 4   /* projection rows per pass over x (x - mean is reused); project_block
                              is written out for exactly 4 */

typedef double spx_v8d __attribute__((vector_size(64)));
typedef float spx_v8f __attribute__((vector_size(32)));

uint32_t spx_router_rdim(const spx_router *r)
{
    return r->pca_dim ? r->pca_dim : r->in_dim;
}

/* 8 floats at p as doubles (a macro: vector values never cross a function boundary, whose ABI
 * would depend on the ISA). */
#define SPX_LOAD8(dst, p)                                                                                   \
    do {                                                                                                    \
        spx_v8f f_;                                                                                         \
        memcpy(&f_, (p), sizeof f_);                                                                        \
        (dst) = __builtin_convertvector(f_, spx_v8d);                                                       \
    } while (0)

/* Fixed reduction of the 8 lanes. */
#define SPX_LANES_SUM(a) ((((a)[0] + (a)[4]) + ((a)[2] + (a)[6])) + (((a)[1] + (a)[5]) + ((a)[3] + (a)[7])))

/* y[j] = sum_i p[j][i] (x[i] - mean[i]) for rows j in [j0, j1), at most SPX_ROUTE_ROWS rows (the
 * missing rows of a partial block recompute row j0 and are discarded). The accumulators stay in
 * named vector variables; the tail (in_dim % 8 elements) is one more step on zero-padded copies,
 * which adds exact zeros to the unused lanes. */
static inline __attribute__((always_inline)) void project_block(const spx_router *r, const float *x, uint32_t j0,
                                                                uint32_t j1, float *y)
{
    const uint32_t in = r->in_dim, nr = j1 - j0, in8 = in / SPX_ROUTE_LANES * SPX_ROUTE_LANES;
    const float *p0 = r->proj + (size_t)j0 * in;
    const float *p1 = nr > 1 ? p0 + in : p0, *p2 = nr > 2 ? p0 + 2 * (size_t)in : p0;
    const float *p3 = nr > 3 ? p0 + 3 * (size_t)in : p0;
    spx_v8d a0 = {0, 0, 0, 0, 0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0, xv, mv, v0, v1, v2, v3;
    float tx[SPX_ROUTE_LANES], tm[SPX_ROUTE_LANES], t0[SPX_ROUTE_LANES], t1[SPX_ROUTE_LANES];
    float t2[SPX_ROUTE_LANES], t3[SPX_ROUTE_LANES];
    for (uint32_t i = 0; i < in8; i += SPX_ROUTE_LANES) {
        SPX_LOAD8(xv, x + i);
        SPX_LOAD8(mv, r->mean + i);
        SPX_LOAD8(v0, p0 + i);
        SPX_LOAD8(v1, p1 + i);
        SPX_LOAD8(v2, p2 + i);
        SPX_LOAD8(v3, p3 + i);
        xv -= mv;
        a0 += v0 * xv;
        a1 += v1 * xv;
        a2 += v2 * xv;
        a3 += v3 * xv;
    }
    if (in8 < in) {
        const size_t rest = in - in8;
        memset(tx, 0, sizeof tx), memset(tm, 0, sizeof tm), memset(t0, 0, sizeof t0);
        memset(t1, 0, sizeof t1), memset(t2, 0, sizeof t2), memset(t3, 0, sizeof t3);
        memcpy(tx, x + in8, rest * sizeof(float));
        memcpy(tm, r->mean + in8, rest * sizeof(float));
        memcpy(t0, p0 + in8, rest * sizeof(float));
        memcpy(t1, p1 + in8, rest * sizeof(float));
        memcpy(t2, p2 + in8, rest * sizeof(float));
        memcpy(t3, p3 + in8, rest * sizeof(float));
        SPX_LOAD8(xv, tx);
        SPX_LOAD8(mv, tm);
        SPX_LOAD8(v0, t0);
        SPX_LOAD8(v1, t1);
        SPX_LOAD8(v2, t2);
        SPX_LOAD8(v3, t3);
        xv -= mv;
        a0 += v0 * xv;
        a1 += v1 * xv;
        a2 += v2 * xv;
        a3 += v3 * xv;
    }
    y[j0] = (float)SPX_LANES_SUM(a0);
    if (nr > 1)
        y[j0 + 1] = (float)SPX_LANES_SUM(a1);
    if (nr > 2)
        y[j0 + 2] = (float)SPX_LANES_SUM(a2);
    if (nr > 3)
        y[j0 + 3] = (float)SPX_LANES_SUM(a3);
}

static inline __attribute__((always_inline)) void project_rows(const spx_router *r, const float *X, size_t n, float *Y)
{
    for (size_t t = 0; t < n; t++) {
        const float *x = X + t * r->in_dim;
        float *y = Y + t * r->pca_dim;
        for (uint32_t j = 0; j < r->pca_dim; j += SPX_ROUTE_ROWS)
            project_block(r, x, j, j + SPX_ROUTE_ROWS < r->pca_dim ? j + SPX_ROUTE_ROWS : r->pca_dim, y);
    }
}

/* Squared distance of y to centroid c in the same lane order (tail: zero-padded copies). */
static inline __attribute__((always_inline)) double dist2(const float *y, const float *c, uint32_t d)
{
    const uint32_t d8 = d / SPX_ROUTE_LANES * SPX_ROUTE_LANES;
    spx_v8d acc = {0, 0, 0, 0, 0, 0, 0, 0}, yv, cv;
    float ty[SPX_ROUTE_LANES], tc[SPX_ROUTE_LANES];
    for (uint32_t i = 0; i < d8; i += SPX_ROUTE_LANES) {
        SPX_LOAD8(yv, y + i);
        SPX_LOAD8(cv, c + i);
        yv -= cv;
        acc += yv * yv;
    }
    if (d8 < d) {
        memset(ty, 0, sizeof ty), memset(tc, 0, sizeof tc);
        memcpy(ty, y + d8, (d - d8) * sizeof(float));
        memcpy(tc, c + d8, (d - d8) * sizeof(float));
        SPX_LOAD8(yv, ty);
        SPX_LOAD8(cv, tc);
        yv -= cv;
        acc += yv * yv;
    }
    return SPX_LANES_SUM(acc);
}

static inline __attribute__((always_inline)) void nearest_rows(const spx_router *r, const float *Y, size_t n,
                                                               uint32_t *labels)
{
    uint32_t d = spx_router_rdim(r);
    for (size_t t = 0; t < n; t++) {
        const float *y = Y + t * d;
        double best = 0.0;
        uint32_t arg = 0;
        for (uint32_t c = 0; c < r->k; c++) {
            double dist = dist2(y, r->centroids + (size_t)c * d, d);
            if (c == 0 || dist < best) { /* strict: ties keep the lowest index */
                best = dist;
                arg = c;
            }
        }
        labels[t] = arg;
    }
}

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define SPX_ROUTE_X86 1
__attribute__((target("avx512f"))) static void project_avx512(const spx_router *r, const float *X, size_t n, float *Y)
{
    project_rows(r, X, n, Y);
}
__attribute__((target("avx512f"))) static void nearest_avx512(const spx_router *r, const float *Y, size_t n,
                                                              uint32_t *labels)
{
    nearest_rows(r, Y, n, labels);
}
static int have_avx512(void)
{
    return __builtin_cpu_supports("avx512f");
}
#else
#define SPX_ROUTE_X86 0
#endif

static void project_generic(const spx_router *r, const float *X, size_t n, float *Y)
{
    project_rows(r, X, n, Y);
}

static void nearest_generic(const spx_router *r, const float *Y, size_t n, uint32_t *labels)
{
    nearest_rows(r, Y, n, labels);
}

void spx_router_project(const spx_router *r, const float *X, size_t n, float *Y)
{
    if (!r->pca_dim) {
        memcpy(Y, X, n * r->in_dim * sizeof(float));
        return;
    }
#if SPX_ROUTE_X86
    if (have_avx512()) {
        project_avx512(r, X, n, Y);
        return;
    }
#endif
    project_generic(r, X, n, Y);
}

void spx_router_nearest(const spx_router *r, const float *Y, size_t n, uint32_t *labels)
{
#if SPX_ROUTE_X86
    if (have_avx512()) {
        nearest_avx512(r, Y, n, labels);
        return;
    }
#endif
    nearest_generic(r, Y, n, labels);
}

void spx_router_assign(const spx_router *r, const float *X, size_t n, float *scratch, uint32_t *labels)
{
    spx_router_project(r, X, n, scratch);
    spx_router_nearest(r, scratch, n, labels);
}
