/* test_verify_moe_build.h: small expanded models (Sparse Expansion) for the runtime tests, built
 * on test_verify_moe_util.h: K experts per MLP (optionally some stored sparse), PCA or plain
 * routers, and the spx.expand.* metadata. Header-only; shared by test_verify_moe*.c. */
#ifndef SPX_TEST_VERIFY_MOE_BUILD_H
#define SPX_TEST_VERIFY_MOE_BUILD_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_verify_moe_util.h"

/* ---- building expanded models --------------------------------------------------------------- */

typedef struct xspec {
    int gated, act, bias;
    uint32_t K, p_up, p_down;     /* p 0: route without PCA */
    int copy_dense;               /* K == 1: the expert is the dense layer */
    int sparse;                   /* store some experts sparse */
} xspec;

typedef struct xmeta {
    uint32_t experts;             /* spx.expand.experts (0: omit) */
    uint32_t arch_count;          /* llama.expert_count (0: omit) */
    const char *routing;
    int sizes;                    /* write spx.expand.cluster_sizes.{l}.up/down = {5, 4, 4} */
} xmeta;

static inline int write_meta(spx_writer *w, void *ud)
{
    const xmeta *x = ud;
    int rc = 0;
    if (x->experts)
        rc = spx_writer_meta_u32(w, "spx.expand.experts", x->experts);
    if (!rc && x->arch_count)
        rc = spx_writer_meta_u32(w, "llama.expert_count", x->arch_count);
    if (!rc && x->routing)
        rc = spx_writer_meta_str(w, "spx.expand.routing", x->routing, strlen(x->routing));
    for (uint32_t l = 0; x->sizes && l < 2 && !rc; l++) {
        static const uint32_t sz[3] = {5, 4, 4};
        char key[64];
        snprintf(key, sizeof key, "spx.expand.cluster_sizes.%u.up", l);
        rc = spx_writer_meta_arr(w, key, SPX_META_U32, sz, 3);
        snprintf(key, sizeof key, "spx.expand.cluster_sizes.%u.down", l);
        if (!rc)
            rc = spx_writer_meta_arr(w, key, SPX_META_U32, sz, 3);
    }
    return rc;
}

static inline void add_router(tmv_model *m, uint32_t l, const char *base, uint32_t in_dim, uint32_t p, uint32_t K)
{
    if (p) {
        tmv_add(m, SPX_ROLE_ROUTER, l, SPX_NO_INDEX, in_dim, 0, 0.1, 0.0, "blk.%u.%s.router.mean", l, base);
        tmv_add(m, SPX_ROLE_ROUTER, l, SPX_NO_INDEX, p, in_dim, 1.0 / sqrt((double)in_dim), 0.0, "blk.%u.%s.router.proj",
                l, base);
    }
    tmv_add(m, SPX_ROLE_ROUTER, l, SPX_NO_INDEX, K, p ? p : in_dim, 1.0, 0.0, "blk.%u.%s.router.centroids", l, base);
}

/* Copy of tensor `src` (data) under a new name and expert index. */
#if defined(__GNUC__)
__attribute__((format(printf, 5, 6)))
#endif
static inline void add_copy(tmv_model *m, const char *src, uint32_t l, uint32_t e, const char *fmt, ...)
{
    tmv_tensor *s = tmv_find(m, "%s", src), *t;
    va_list ap;
    size_t numel = (size_t)s->dims[0] * (s->ndim == 2 ? s->dims[1] : 1);
    t = &m->t[m->n++];
    *t = *s;
    va_start(ap, fmt);
    tmv_vname(t->name, fmt, ap);
    va_end(ap);
    t->layer = l;
    t->expert = e;
    t->data = malloc(numel * sizeof(float));
    memcpy(t->data, s->data, numel * sizeof(float));
}

/* zero about two thirds of a tensor and mark it for a sparse encoding */
static inline void sparsify(tmv_tensor *t, int enc)
{
    size_t numel = (size_t)t->dims[0] * t->dims[1];
    for (size_t i = 0; i < numel; i++)
        if ((i * 7 + i / 5) % 3 != 0)
            t->data[i] = 0.0f;
    t->enc = enc;
}

static inline void build_expanded(tmv_model *m, const xspec *x)
{
    spx_model_config c;
    static const char *const base[3] = {"ffn_gate", "ffn_up", "ffn_down"};
    tmv_seed = 4242;
    tmv_config(&c, x->gated, x->act, x->bias);
    tmv_build(m, &c);
    for (uint32_t l = 0; l < c.n_layers; l++) {
        const double s_in = 1.0 / sqrt((double)c.dim), s_f = 1.0 / sqrt((double)c.ffn_dim);
        for (int b = x->gated ? 0 : 1; b < 3; b++) {
            char wn[96], bn[96];
            snprintf(wn, sizeof wn, "blk.%u.%s.weight", l, base[b]);
            snprintf(bn, sizeof bn, "blk.%u.%s.bias", l, base[b]);
            for (uint32_t e = 0; e < x->K; e++) {
                uint64_t rows = b == 2 ? c.dim : c.ffn_dim, cols = b == 2 ? c.ffn_dim : c.dim;
                if (x->copy_dense) {
                    add_copy(m, wn, l, e, "blk.%u.%s.%u.weight", l, base[b], e);
                    if (x->bias)
                        add_copy(m, bn, l, e, "blk.%u.%s.%u.bias", l, base[b], e);
                    continue;
                }
                tmv_add(m, SPX_ROLE_MLP, l, e, rows, cols, b == 0 ? 2.0 * s_in : b == 1 ? s_in : s_f, 0.0,
                        "blk.%u.%s.%u.weight", l, base[b], e);
                if (x->sparse && e == 1)
                    sparsify(&m->t[m->n - 1], SPX_ENC_BITMASK);
                if (x->sparse && e == 2 && b == 2)
                    sparsify(&m->t[m->n - 1], SPX_ENC_CSR16);
                if (x->bias)
                    tmv_add(m, SPX_ROLE_MLP, l, e, rows, 0, 0.2, 0.0, "blk.%u.%s.%u.bias", l, base[b], e);
            }
            tmv_remove(m, wn);
            tmv_remove(m, bn);
        }
        add_router(m, l, "ffn_up", c.dim, x->p_up, x->K);
        add_router(m, l, "ffn_down", c.ffn_dim, x->p_down, x->K);
    }
}

#endif
