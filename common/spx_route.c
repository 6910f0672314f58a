/* spx_route.c: nearest-centroid routing (see spx_route.h). */
#include "spx_route.h"

#include <string.h>

uint32_t spx_router_rdim(const spx_router *r)
{
    return r->pca_dim ? r->pca_dim : r->in_dim;
}

void spx_router_project(const spx_router *r, const float *X, size_t n, float *Y)
{
    if (!r->pca_dim) {
        memcpy(Y, X, n * r->in_dim * sizeof(float));
        return;
    }
    for (size_t t = 0; t < n; t++) {
        const float *x = X + t * r->in_dim;
        for (uint32_t j = 0; j < r->pca_dim; j++) {
            const float *p = r->proj + (size_t)j * r->in_dim;
            double acc = 0.0;
            for (uint32_t i = 0; i < r->in_dim; i++)
                acc += (double)p[i] * ((double)x[i] - (double)r->mean[i]);
            Y[t * r->pca_dim + j] = (float)acc;
        }
    }
}

void spx_router_nearest(const spx_router *r, const float *Y, size_t n, uint32_t *labels)
{
    uint32_t d = spx_router_rdim(r);
    for (size_t t = 0; t < n; t++) {
        const float *y = Y + t * d;
        double best = 0.0;
        uint32_t arg = 0;
        for (uint32_t c = 0; c < r->k; c++) {
            const float *cc = r->centroids + (size_t)c * d;
            double dist = 0.0;
            for (uint32_t i = 0; i < d; i++) {
                double diff = (double)y[i] - (double)cc[i];
                dist += diff * diff;
            }
            if (c == 0 || dist < best) { /* strict: ties keep the lowest index */
                best = dist;
                arg = c;
            }
        }
        labels[t] = arg;
    }
}

void spx_router_assign(const spx_router *r, const float *X, size_t n, float *scratch, uint32_t *labels)
{
    spx_router_project(r, X, n, scratch);
    spx_router_nearest(r, scratch, n, labels);
}
