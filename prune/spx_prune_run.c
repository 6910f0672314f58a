/* spx_prune_run.c: the sequential block-by-block pruning driver (see spx_prune_run.h). */
#include "spx_prune_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_forward.h"
#include "spx_hessian.h"
#include "spx_mem.h"
#include "spx_sparsegpt.h"
#include "spx_wanda.h"

static const char *const lin_base[SPX_LIN_COUNT] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

/* Which Hessian (input kind) feeds each linear: 0 attn input, 1 o input, 2 mlp input, 3 down input. */
static const int lin_input[SPX_LIN_COUNT] = {0, 0, 0, 1, 2, 2, 3};

const char *spx_lin_base(int lin)
{
    return (lin >= 0 && lin < SPX_LIN_COUNT) ? lin_base[lin] : "?";
}

spx_linear *spx_lin_get(spx_layer *L, int lin)
{
    spx_linear *t[SPX_LIN_COUNT] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
    if (lin < 0 || lin >= SPX_LIN_COUNT || !t[lin]->w)
        return NULL;
    return t[lin];
}

typedef struct capture {
    spx_hessian *h[4];          /* per input kind; NULL = not captured in this pass */
    spx_sparsegpt_inv *inv[4];  /* SparseGPT factor per input kind, shared by the layers reading it */
    spx_ctx *ctx;
    int rc;
} capture;

static void cap(capture *c, int kind, const float *x, size_t n)
{
    if (c->h[kind] && c->rc == 0)
        c->rc = spx_hessian_add(c->ctx, c->h[kind], x, n);
}
static void hook_attn(void *ud, uint32_t l, const float *x, size_t n) { (void)l; cap(ud, 0, x, n); }
static void hook_o(void *ud, uint32_t l, const float *x, size_t n) { (void)l; cap(ud, 1, x, n); }
static void hook_mlp(void *ud, uint32_t l, const float *x, size_t n) { (void)l; cap(ud, 2, x, n); }
static void hook_down(void *ud, uint32_t l, const float *x, size_t n) { (void)l; cap(ud, 3, x, n); }

/* Run block `layer` over every window; in place (advance) or on a scratch copy (capture only). */
static int run_block(spx_ctx *ctx, const spx_model *m, spx_state *st, uint32_t layer, float *X, float *scratch,
                     uint32_t nsamples, uint32_t seqlen, capture *c, int advance)
{
    size_t per = (size_t)seqlen * m->cfg.dim;
    spx_forward_hooks hooks = {c, hook_attn, hook_o, hook_mlp, hook_down};
    for (uint32_t s = 0; s < nsamples; s++) {
        float *x = X + (size_t)s * per;
        if (!advance) {
            memcpy(scratch, x, per * sizeof(float));
            x = scratch;
        }
        spx_state_reset(st);
        int rc = spx_block_forward(ctx, m, st, layer, x, seqlen, c ? &hooks : NULL);
        if (rc < 0)
            return rc;
        if (c && c->rc < 0)
            return c->rc;
    }
    return 0;
}

/* One factor kept from the last group for the next: attention, its output and the MLP input all
 * have cols = dim, so most factors refactor into a buffer whose pages are already mapped
 * (spx_sparsegpt_refactor). Its bytes stay reserved in `held` while it waits. */
typedef struct factor_spare {
    spx_sparsegpt_inv *inv;
    unsigned long long held;
} factor_spare;

/* At a group's end: keep the largest usable factor as the spare, free the others, then move the
 * spare's reservation out of the group's (released just before, so the reservation fits). */
static void keep_spare(spx_ctx *ctx, spx_sparsegpt_inv **invs, int n, factor_spare *sp,
                       unsigned long long *group_held)
{
    int best = -1, took = 0;
    for (int k = 0; k < n; k++)
        if (invs[k] && invs[k]->cols &&
            (best < 0 || spx_sparsegpt_inv_bytes(invs[k]) > spx_sparsegpt_inv_bytes(invs[best])))
            best = k;
    if (best >= 0 && !sp->inv) {
        sp->inv = invs[best];
        invs[best] = NULL;
        took = 1;
    }
    for (int k = 0; k < n; k++) {
        spx_sparsegpt_inv_free(invs[k]);
        invs[k] = NULL;
    }
    spx_mem_release(ctx, group_held);
    if (took && spx_mem_reserve(ctx, &sp->held, spx_sparsegpt_inv_bytes(sp->inv),
                                   "kept SparseGPT factor") != 0) {
        spx_err_clear(ctx);   /* cannot happen (the group held at least this much); be safe */
        spx_sparsegpt_inv_free(sp->inv);
        sp->inv = NULL;
    }
}

/* --max-memory: the SparseGPT factor of a [cols x cols] Hessian holds cols^2 doubles
 * (spx_sparsegpt_factor), or the spare's buffer when reused; it is held by `group_held` until the
 * group ends. */
static int prune_one(spx_ctx *ctx, const spx_prune_run_opts *o, spx_linear *lin, spx_hessian *h,
                     spx_sparsegpt_inv **inv, factor_spare *sp, spx_prune_layer_info *info,
                     unsigned long long *group_held)
{
    int rc = 0;
    unsigned long long held = 0;
    size_t rows = lin->rows, cols = lin->cols, numel;
    float *W = lin->owned, *W0 = NULL;
    const float *H = h ? spx_hessian_matrix(h) : NULL;
    if (!W)
        return spx_err_set(ctx, SPX_E_INTERNAL, "%s: weights are not writable (open with copy)", info->name);
    if (spx_ckd_mul_size(rows, cols, &numel))
        return spx_err_set(ctx, SPX_E_OVERFLOW, "%s: size overflow", info->name);
    /* the dense copy W0 for the reconstruction error; SparseGPT's sweep buffers (Wb, Err, S
     * [rows x blocksize] fp32 + mask) */
    if (H)
        SPX_TRY(rc, spx_mem_reserve(ctx, &held, (unsigned long long)numel * sizeof(float), "dense copy of %s",
                                    info->name));
    if (o->method == SPX_PRUNE_SPARSEGPT)
        SPX_TRY(rc, spx_mem_reserve(ctx, &held, (unsigned long long)rows * (unsigned)o->p.blocksize * 13u,
                                    "SparseGPT sweep buffers of %s", info->name));
    if (H) {
        W0 = malloc(numel * sizeof(float));
        if (!W0)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", info->name);
        memcpy(W0, W, numel * sizeof(float));
    }
    switch (o->method) {
    case SPX_PRUNE_SPARSEGPT:
        /* q/k/v (and gate/up) share their input's Hessian: factor it once, sweep each layer
         * (bitwise the same as factoring per layer) */
        if (!*inv) {
            SPX_TRY(rc, spx_prune_opts_check(ctx, &o->p, cols, 1));
            if (sp->inv && spx_sparsegpt_inv_bytes(sp->inv) / sizeof(double) / cols >= cols) {
                spx_mem_transfer(&sp->held, group_held);
                *inv = sp->inv;
                sp->inv = NULL;
                SPX_TRY(rc, spx_sparsegpt_refactor(ctx, H, cols, &o->p, *inv));
            } else {
                spx_sparsegpt_inv_free(sp->inv);   /* too small: a new buffer replaces it */
                sp->inv = NULL;
                spx_mem_release(ctx, &sp->held);
                SPX_TRY(rc, spx_mem_reserve(ctx, group_held, (unsigned long long)cols * cols * sizeof(double),
                                            "SparseGPT inverse factor of %s (%zu x %zu fp64)", info->name, cols,
                                            cols));
                SPX_TRY(rc, spx_sparsegpt_factor(ctx, H, cols, &o->p, inv));
            }
        }
        rc = spx_sparsegpt_sweep(ctx, W, rows, cols, *inv, &o->p, &info->rep);
        break;
    case SPX_PRUNE_WANDA:
        rc = spx_wanda_prune(ctx, W, rows, cols, spx_hessian_colsq(h), &o->p, &info->rep);
        break;
    default:
        rc = spx_magnitude_prune(ctx, W, rows, cols, &o->p, &info->rep);
        break;
    }
    if (rc < 0)
        goto done;
    info->recon_err = NAN;
    info->tokens = h ? spx_hessian_tokens(h) : 0;
    if (H)
        SPX_TRY(rc, spx_prune_recon_error(ctx, W0, W, rows, cols, H, &info->recon_err));
done:
    if (rc < 0 && rc != SPX_E_LIMIT)
        spx_err_prefix(ctx, "%s: ", info->name);
    free(W0);
    spx_mem_release(ctx, &held);
    return rc;
}

int spx_prune_model(spx_ctx *ctx, spx_model *m, const uint32_t *windows, uint32_t nsamples, uint32_t seqlen,
                    const spx_prune_run_opts *o, spx_prune_layer_info **infos, size_t *n_infos)
{
    int rc = 0;
    const spx_model_config *cfg = &m->cfg;
    spx_state *st = NULL;
    float *X = NULL, *scratch = NULL;
    spx_prune_layer_info *inf = NULL;
    size_t ninf = 0, per, total;
    unsigned long long run_held = 0, group_held = 0;   /* --max-memory reservations */
    factor_spare spare = {NULL, 0};
    capture c;
    memset(&c, 0, sizeof c);
    c.ctx = ctx;
    *infos = NULL;
    *n_infos = 0;
    int have_data = windows && nsamples > 0;
    if (!have_data && o->method != SPX_PRUNE_MAGNITUDE)
        return spx_err_set(ctx, SPX_E_ARG, "%s pruning needs calibration data",
                           o->method == SPX_PRUNE_WANDA ? "Wanda" : "SparseGPT");
    inf = calloc((size_t)cfg->n_layers * SPX_LIN_COUNT, sizeof *inf);
    if (!inf)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    if (have_data) {
        if (spx_ckd_mul_size(seqlen, cfg->dim, &per) || spx_ckd_mul_size(per, nsamples, &total) ||
            spx_ckd_mul_size(total, sizeof(float), &total))
            SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "calibration activations: size overflow");
        SPX_TRY(rc, spx_mem_reserve(ctx, &run_held, (unsigned long long)total + per * sizeof(float),
                                    "calibration activations (%u windows x %u tokens x dim %u fp32)", nsamples,
                                    seqlen, cfg->dim));
        SPX_TRY(rc, spx_mem_reserve(ctx, &run_held, spx_mem_state_bytes(cfg, seqlen, seqlen),
                                    "forward state of a %u-token window", seqlen));
        X = malloc(total);
        scratch = malloc(per * sizeof(float));
        if (!X || !scratch)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "cannot allocate %zu bytes of calibration activations", total);
        for (uint32_t s = 0; s < nsamples; s++)
            SPX_TRY(rc, spx_embed(ctx, m, windows + (size_t)s * seqlen, seqlen, X + (size_t)s * per));
        SPX_TRY(rc, spx_state_new(ctx, m, seqlen, seqlen, &st));
    }
    /* groups in true-sequential order; without it a single group holds every linear */
    static const unsigned groups_seq[4] = {0x07u, 0x08u, 0x30u, 0x40u};
    static const unsigned groups_all[1] = {0x7fu};
    const unsigned *groups = o->true_sequential ? groups_seq : groups_all;
    int ngroups = o->true_sequential ? 4 : 1;
    for (uint32_t l = 0; l < cfg->n_layers; l++) {
        spx_layer *L = &m->layers[l];
        for (int g = 0; g < ngroups; g++) {
            unsigned todo = 0;
            for (int k = 0; k < SPX_LIN_COUNT; k++) {
                char name[64];
                if (!(groups[g] & (1u << k)) || !spx_lin_get(L, k))
                    continue;
                spx_tensor_name(name, sizeof name, (int)l, lin_base[k], "weight");
                if (o->skip && o->skip(o->skip_ud, name))
                    continue;
                todo |= 1u << k;
            }
            if (!todo)
                continue;
            if (have_data) {
                for (int k = 0; k < SPX_LIN_COUNT; k++) {
                    int kind = lin_input[k];
                    if (!(todo & (1u << k)) || c.h[kind])
                        continue;
                    spx_linear *lin = spx_lin_get(L, k);
                    static const char *const kname[4] = {"attention", "attn_output", "MLP", "ffn_down"};
                    SPX_TRY(rc, spx_mem_reserve(ctx, &group_held,
                                                (unsigned long long)lin->cols * lin->cols * sizeof(float) +
                                                    3ull * lin->cols * sizeof(double),
                                                "Hessian of the blk.%u %s input (%u x %u fp32)", l, kname[kind],
                                                lin->cols, lin->cols));
                    SPX_TRY(rc, spx_hessian_new(ctx, lin->cols, 3u /* full + colsq */, &c.h[kind]));
                }
                SPX_TRY(rc, run_block(ctx, m, st, l, X, scratch, nsamples, seqlen, &c, 0));
                for (int kind = 0; kind < 4; kind++)
                    if (c.h[kind])
                        spx_hessian_symmetrize(c.h[kind]);
            }
            for (int k = 0; k < SPX_LIN_COUNT; k++) {
                if (!(todo & (1u << k)))
                    continue;
                spx_prune_layer_info *info = &inf[ninf];
                spx_tensor_name(info->name, sizeof info->name, (int)l, lin_base[k], "weight");
                info->layer = l;
                info->lin = k;
                spx_linear *lin = spx_lin_get(L, k);
                info->rows = lin->rows;
                info->cols = lin->cols;
                SPX_TRY(rc, prune_one(ctx, o, lin, c.h[lin_input[k]], &c.inv[lin_input[k]], &spare, info,
                                     &group_held));
                ninf++;
            }
            for (int kind = 0; kind < 4; kind++) {
                spx_hessian_free(c.h[kind]);
                c.h[kind] = NULL;
            }
            keep_spare(ctx, c.inv, 4, &spare, &group_held);
        }
        if (have_data)
            SPX_TRY(rc, run_block(ctx, m, st, l, X, scratch, nsamples, seqlen, NULL, 1));
        spx_progress_report(&o->progress, "prune: block", l + 1, cfg->n_layers);
    }
    *infos = inf;
    *n_infos = ninf;
    inf = NULL;
done:
    for (int kind = 0; kind < 4; kind++) {
        spx_hessian_free(c.h[kind]);
        spx_sparsegpt_inv_free(c.inv[kind]);
    }
    free(inf);
    free(X);
    free(scratch);
    spx_state_free(st);
    spx_mem_release(ctx, &group_held);
    spx_sparsegpt_inv_free(spare.inv);
    spx_mem_release(ctx, &spare.held);
    spx_mem_release(ctx, &run_held);
    return rc;
}
