/* spx_router_gate.c: expert selection rules and their evaluation against the oracle (see
 * spx_router.h). */
#include <stdlib.h>
#include <string.h>

#include "spx_router.h"

static int item_cmp(const void *pa, const void *pb)
{
    const spx_router_item *a = pa, *b = pb;
    if (a->s > b->s)
        return -1;
    if (a->s < b->s)
        return 1;
    return a->i < b->i ? -1 : a->i > b->i ? 1 : 0;
}

void spx_router_sort(spx_router_item *it, uint32_t E)
{
    qsort(it, E, sizeof *it, item_cmp);
}

uint32_t spx_router_select(const spx_router_rule *g, const float *scores, uint32_t E, spx_router_item *it, uint8_t *mask)
{
    uint32_t k = 0;
    memset(mask, 0, E);
    if (E == 0)
        return 0;
    for (uint32_t e = 0; e < E; e++) {
        it[e].s = scores[e];
        it[e].i = e;
    }
    spx_router_sort(it, E);
    if (g->kind == SPX_ROUTER_MOE) {
        k = g->top_k < 1 ? 1 : g->top_k > E ? E : g->top_k;
    } else if (g->kind == SPX_ROUTER_DSTI) {
        double total = 0.0, cum = 0.0;
        for (uint32_t e = 0; e < E; e++)
            total += (double)it[e].s;
        double want = g->tau * total;
        k = E;
        for (uint32_t e = 0; e < E; e++) {
            cum += (double)it[e].s;
            if (cum >= want) {
                k = e + 1;
                break;
            }
        }
    } else {
        while (k < E && (double)it[k].s >= g->threshold)
            k++;
        if (k == 0)
            k = 1;
    }
    for (uint32_t j = 0; j < k; j++)
        mask[it[j].i] = 1;
    return k;
}

#define EVAL_CHUNK 1024u

int spx_router_evaluate(spx_ctx *ctx, const spx_router *r, const spx_router_rule *g, const float *X, const float *mass,
                      size_t n, spx_router_eval *ev)
{
    int rc = 0;
    const uint32_t E = r->experts;
    float *S = NULL;
    spx_router_item *it = NULL, *mt = NULL;
    uint8_t *mask = NULL;
    double rec = 0.0, rnd = 0.0, sel = 0.0, cov = 0.0;
    memset(ev, 0, sizeof *ev);
    if (n == 0)
        return 0;
    size_t chunk = n < EVAL_CHUNK ? n : EVAL_CHUNK;
    S = malloc(chunk * E * sizeof *S);
    it = malloc((size_t)E * sizeof *it);
    mt = malloc((size_t)E * sizeof *mt);
    mask = malloc(E);
    if (!S || !it || !mt || !mask)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "gate evaluation: out of memory");
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        size_t nb = n - i0 < chunk ? n - i0 : chunk;
        SPX_TRY(rc, spx_router_forward(ctx, r, X + i0 * r->dim, nb, S));
        for (size_t i = 0; i < nb; i++) {
            const float *m = mass + (i0 + i) * E;
            uint32_t k = spx_router_select(g, S + i * E, E, it, mask), hit = 0;
            double tot = 0.0, got = 0.0;
            for (uint32_t e = 0; e < E; e++) {
                mt[e].s = m[e];
                mt[e].i = e;
                tot += (double)m[e];
                got += mask[e] ? (double)m[e] : 0.0;
            }
            spx_router_sort(mt, E);
            for (uint32_t j = 0; j < k; j++)
                hit += mask[mt[j].i];
            rec += (double)hit / (double)k;
            rnd += (double)k / (double)E;
            sel += (double)k / (double)E;
            cov += tot > 0.0 ? got / tot : 1.0;
        }
    }
    ev->tokens = n;
    ev->recall = rec / (double)n;
    ev->random_recall = rnd / (double)n;
    ev->sel_frac = sel / (double)n;
    ev->mass_cov = cov / (double)n;
done:
    free(S);
    free(it);
    free(mt);
    free(mask);
    return rc;
}
