/* spx_route.h: nearest-centroid routing shared by the clustering stage and the runtime, so that
 * the runtime routes every calibration token exactly as the expansion stage assigned it.
 *
 * A router maps an input x [in_dim] to one of k experts:
 *     y = P (x - mean)            P [pca_dim x in_dim], mean [in_dim]   (skipped when pca_dim == 0: y = x)
 *     e = argmin_c ||y - C_c||^2  C [k x rdim], rdim = pca_dim or in_dim; ties -> lowest index
 * Distances are computed in double from the fp32 y and C, so the result does not depend on BLAS
 * blocking; the projection is computed in double as well (rdim is small, this is cheap next to
 * the expert's own matvec). */
#ifndef SPX_ROUTE_H
#define SPX_ROUTE_H

#include <stddef.h>
#include <stdint.h>

typedef struct spx_router {
    uint32_t in_dim;          /* input dimension */
    uint32_t pca_dim;         /* 0: route in input space */
    uint32_t k;               /* number of experts (centroids) */
    const float *mean;        /* [in_dim]; NULL when pca_dim == 0 */
    const float *proj;        /* [pca_dim x in_dim]; NULL when pca_dim == 0 */
    const float *centroids;   /* [k x rdim] */
} spx_router;

/* Routing dimension: pca_dim, or in_dim without PCA. */
uint32_t spx_router_rdim(const spx_router *r);

/* Y[n x rdim] = projection of X[n x in_dim] (a copy of X without PCA), rounded to fp32. */
void spx_router_project(const spx_router *r, const float *X, size_t n, float *Y);

/* labels[n] = nearest centroid of each row of Y[n x rdim] (already projected). */
void spx_router_nearest(const spx_router *r, const float *Y, size_t n, uint32_t *labels);

/* Both steps; scratch has room for n x rdim floats. */
void spx_router_assign(const spx_router *r, const float *X, size_t n, float *scratch, uint32_t *labels);

#endif
