/* spx_route_fold.h: the routing decision of spx_route.h without the projection, for decode.
 *
 * With z = x - mean and y = P z, the squared distance to centroid C_c is
 *     ||y - C_c||^2 = ||y||^2 + s_c,     s_c = ||C_c||^2 - 2 z . u_c,     u_c = P^T C_c [in_dim],
 * and ||y||^2 is the same for every c, so the nearest centroid is argmin_c s_c: k dot products of
 * length in_dim instead of pca_dim of them (k = 8 experts, pca_dim = 64: 8x fewer flops and, with
 * u stored as k x in_dim floats against the pca_dim x in_dim floats of P, 8x fewer bytes).
 *
 * Decode reads u cold (the weights streamed since the previous token evict it), so it is stored
 * as fp32 (half the bytes of double) in one sequential stream: centroids in groups of 8, each group
 * block by block, [in_dim/8 blocks][kg][8], prefetched 4 KiB ahead. On the dim 768 / ffn 2048
 * K = 8 bench model this took the in-decode routing from ~0.21 to ~0.08 ms per token.
 *
 * The routing function itself is defined on the fp32-rounded projection (specs/spx-format.md), so
 * a decision is only taken from s when it cannot differ from that definition: the rounding of y
 * moves a difference d_c - d_c* by at most 2 ||y~ - y|| ||C_c - C_c*||, ||y~ - y|| <=
 * (2^-24 + 2^-32) ||P||_F ||z||, the fp32 rounding of u (computed in double) moves z . u_c by at
 * most 2^-24 ||z|| ||u_c|| + 2^-150 sqrt(in_dim) ||z|| (subnormals), and the double sums of both
 * routes are within 2^-32 of their magnitudes (in_dim, pca_dim <= 2^20). The token's label is
 * argmin s when every other centroid is beyond twice that margin; otherwise (a near tie, NaN/Inf in
 * x) the token goes through spx_router_assign. The labels are therefore always the ones
 * spx_router_assign gives; the fold only decides how fast. */
#ifndef SPX_ROUTE_FOLD_H
#define SPX_ROUTE_FOLD_H

#include <stddef.h>
#include <stdint.h>

#include "spx_route.h"

typedef struct spx_router_fold {
    uint32_t in_dim, k;
    uint32_t nblk;   /* ceil(in_dim / 8) */
    float *u;        /* u_c = P^T C_c (computed in double) rounded to fp32, in groups of kg = min(8,
                      * k - 8g) centroids: group g at u + 64 g nblk, [nblk][kg][8], tail zero-padded */
    double *q;       /* [k] ||C_c||^2 */
    double *cn;      /* [k] ||C_c|| */
    double *un;      /* [k] ||u_c|| (of the double u_c) */
    double pf;       /* ||P||_F */
} spx_router_fold;

/* 1 when folding r saves work: PCA routing, 2 <= k, 2k <= pca_dim, k <= 256, in_dim <= 2^20. */
int spx_router_fold_worth(const spx_router *r);

/* Fold r (which must be worth folding). Returns 0, -1 (not worth it, or some u_ci beyond 2^100:
 * fp32 would not hold it) or -2 (out of memory); *out belongs to the caller. */
int spx_router_fold_new(const spx_router *r, spx_router_fold **out);
void spx_router_fold_free(spx_router_fold *f);

/* labels[n] for X [n x in_dim], the same as spx_router_assign(r, X, n, Y, labels). Y: scratch of
 * n x pca_dim floats (used for the tokens that fall back). Returns the number of fallbacks. */
size_t spx_router_fold_assign(const spx_router *r, const spx_router_fold *f, const float *X, size_t n, float *Y,
                              uint32_t *labels);

/* The same decision for one token x split over threads by blocks of 8 inputs (f->nblk of them):
 * part writes the partial sums of blocks [b0, b1) (clamped to nblk) into acc [k + 1]; finish takes
 * the parts' arrays laid end to end (acc [nparts x (k + 1)]), adds them in order and writes the
 * label (Y: scratch of pca_dim floats for a fallback). Returns 1 when the token fell back, else 0.
 * The label is the same however the blocks are split (only the fold's rounding changes, and the
 * decision is exact either way). spx_moe fuses this into the threads computing x itself. */
void spx_router_fold_part(const spx_router *r, const spx_router_fold *f, const float *x, uint32_t b0, uint32_t b1,
                          double *acc);
size_t spx_router_fold_finish(const spx_router *r, const spx_router_fold *f, const float *x, const double *acc,
                              unsigned nparts, float *Y, uint32_t *label);

#endif
