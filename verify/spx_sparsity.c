/* spx_sparsity.c: activation capture and the PPL-p% search over the global CETT target c
 * (Sparsing Law; definitions in spx_sparsity.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_ppl.h"
#include "spx_sparsity.h"

/* Capture hook: copy the hidden rows of each layer into acts[l] at the current row offset. The
 * state is made with max_batch = window length, so each window reaches the hook in one call. */
typedef struct capture_ud {
    float **acts;
    uint32_t ffn;
    size_t row;               /* first row of this window */
} capture_ud;

static void capture_hidden(void *ud, uint32_t layer, const float *h, size_t n)
{
    capture_ud *c = ud;
    memcpy(c->acts[layer] + c->row * c->ffn, h, n * c->ffn * sizeof(float));
}

static int check_dense(spx_ctx *ctx, const spx_model *m)
{
    for (uint32_t l = 0; l < m->cfg.n_layers; l++)
        if (m->layers[l].moe || m->layers[l].gating || !m->layers[l].down.w)
            return spx_err_set(ctx, SPX_E_ARG, "sparsity: block %u is not a dense MLP (expanded or gated files are "
                                               "not supported)", l);
    return 0;
}

void spx_sparsity_acts_free(float **acts, uint32_t n_layers)
{
    if (!acts)
        return;
    for (uint32_t l = 0; l < n_layers; l++)
        free(acts[l]);
    free(acts);
}

int spx_sparsity_capture(spx_ctx *ctx, const spx_model *model, const uint32_t *windows, size_t nwin, uint32_t len,
                         float ***out)
{
    int rc = 0;
    const uint32_t L = model->cfg.n_layers, ffn = model->cfg.ffn_dim;
    float **acts = NULL;
    spx_state *st = NULL;
    size_t rows, count;
    capture_ud ud;
    spx_forward_hooks hooks;
    *out = NULL;
    SPX_TRY(rc, check_dense(ctx, model));
    if (nwin == 0 || len == 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "sparsity: no fitting tokens (%zu windows of %u)", nwin, len);
    if (spx_ckd_mul_size(nwin, len, &rows) || spx_ckd_mul3_size(rows, ffn, sizeof(float), &count))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "sparsity: %zu windows x %u tokens x %u neurons overflows", nwin, len, ffn);
    acts = calloc(L ? L : 1, sizeof *acts);
    if (!acts)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    for (uint32_t l = 0; l < L; l++)
        if (!(acts[l] = malloc(count ? count : 1)))
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "sparsity: out of memory for activations (%zu bytes per layer)", count);
    SPX_TRY(rc, spx_state_new(ctx, model, len, len, &st));
    memset(&hooks, 0, sizeof hooks);
    hooks.ud = &ud;
    hooks.mlp_hidden = capture_hidden;
    ud.acts = acts;
    ud.ffn = ffn;
    for (size_t w = 0; w < nwin; w++) {
        ud.row = w * len;
        spx_state_reset(st);
        SPX_TRY(rc, spx_forward_hooked(ctx, model, st, windows + w * len, len, NULL, NULL, &hooks));
    }
    *out = acts;
    acts = NULL;
done:
    spx_state_free(st);
    spx_sparsity_acts_free(acts, L);
    return rc;
}

void spx_sparsity_thresholds(spx_cett_layer *layers, uint32_t n_layers, double c, float *thr, double *T, double *cett)
{
    for (uint32_t l = 0; l < n_layers; l++) {
        spx_cett_layer *Lr = &layers[l];
        double cv = 0.0, t = spx_cett_threshold(Lr, c, NULL, &cv);
        for (uint32_t j = 0; j < Lr->ffn; j++) {
            float v;
            if (t < 0.0)
                v = -1.0f;
            else if (Lr->col_norm[j] == 0.0)
                v = INFINITY;   /* the neuron contributes nothing: always zero */
            else
                v = (float)(t / Lr->col_norm[j]);
            thr[(size_t)l * Lr->ffn + j] = v;
        }
        if (T)
            T[l] = t;
        if (cett)
            cett[l] = cv;
    }
}

/* Evaluation hook: zero hidden values per layer (seen after thresholding). */
typedef struct count_ud {
    uint64_t *zero;           /* [n_layers] */
    uint64_t *total;          /* [n_layers] */
    uint32_t ffn;
} count_ud;

static void count_hidden(void *ud, uint32_t layer, const float *h, size_t n)
{
    count_ud *c = ud;
    uint64_t z = 0;
    for (size_t i = 0; i < n * c->ffn; i++)
        z += h[i] == 0.0f;
    c->zero[layer] += z;
    c->total[layer] += (uint64_t)n * c->ffn;
}

/* Perplexity windows with observation: spx_ppl_eval without hooks, so run the counting pass
 * through the same windows (a separate forward; cheap next to the search). */
static int eval_sparse(spx_ctx *ctx, const spx_model *m, spx_state *st, const float *thr, const uint32_t *eval,
                       size_t n_eval, const spx_sparsity_opts *o, count_ud *cu, double *ppl, double *sparsity,
                       uint64_t *predicted)
{
    int rc = 0;
    spx_ppl_result r;
    spx_forward_hooks hooks;
    const uint32_t L = m->cfg.n_layers;
    uint64_t z = 0, t = 0, windows;
    spx_state_set_act_threshold(st, thr);
    SPX_TRY(rc, spx_ppl_eval(ctx, m, st, eval, n_eval, o->ctx, o->max_windows, NULL, &r));
    memset(&hooks, 0, sizeof hooks);
    hooks.ud = cu;
    hooks.mlp_hidden = count_hidden;
    memset(cu->zero, 0, L * sizeof(uint64_t));
    memset(cu->total, 0, L * sizeof(uint64_t));
    windows = r.windows;
    for (uint64_t w = 0; w < windows; w++) {
        spx_state_reset(st);
        SPX_TRY(rc, spx_forward_hooked(ctx, m, st, eval + w * o->ctx, o->ctx, NULL, NULL, &hooks));
    }
    for (uint32_t l = 0; l < L; l++) {
        z += cu->zero[l];
        t += cu->total[l];
    }
    *ppl = r.ppl;
    *sparsity = t ? (double)z / (double)t : 0.0;
    *predicted = r.tokens;
done:
    spx_state_set_act_threshold(st, NULL);
    return rc;
}

void spx_sparsity_result_free(spx_sparsity_result *r)
{
    if (!r)
        return;
    free(r->threshold);
    free(r->layer_cett);
    free(r->layer_sparsity);
    free(r->act_thr);
    free(r->steps);
    free(r);
}

int spx_sparsity_search(spx_ctx *ctx, const spx_model *model, const uint32_t *fit, size_t nfit, uint32_t fit_len,
                        const uint32_t *eval, size_t n_eval, const spx_sparsity_opts *o,
                        const spx_progress *progress, spx_sparsity_result **out)
{
    int rc = 0;
    const uint32_t L = model->cfg.n_layers, ffn = model->cfg.ffn_dim, dim = model->cfg.dim;
    float **acts = NULL, *thr = NULL;
    spx_cett_layer *layers = NULL;
    spx_state *st = NULL;
    spx_sparsity_result *r = NULL;
    uint64_t *cnt = NULL;
    double *T = NULL, *cv = NULL, lo = 0.0, hi = 1.0;
    size_t nthr;
    count_ud cu;
    *out = NULL;
    if (!(o->tolerance > 0.0) || o->iters == 0 || o->ctx < 2)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "sparsity: tolerance must be > 0, iters >= 1 and ctx >= 2");
    SPX_TRY(rc, check_dense(ctx, model));
    if (n_eval < o->ctx)
        SPX_FAIL(ctx, rc, SPX_E_DATA, "sparsity: %zu evaluation tokens, fewer than one window of %u", n_eval, o->ctx);
    if (spx_ckd_mul_size(L, ffn, &nthr))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "sparsity: thresholds overflow");
    r = calloc(1, sizeof *r);
    layers = calloc(L ? L : 1, sizeof *layers);
    thr = malloc((nthr ? nthr : 1) * sizeof(float));
    cnt = calloc(2 * (size_t)(L ? L : 1), sizeof(uint64_t));
    T = calloc(L ? L : 1, sizeof(double));
    cv = calloc(L ? L : 1, sizeof(double));
    if (!r || !layers || !thr || !cnt || !T || !cv)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    r->n_layers = L;
    r->ffn = ffn;
    r->tolerance = o->tolerance;
    r->threshold = calloc(L ? L : 1, sizeof(double));
    r->layer_cett = calloc(L ? L : 1, sizeof(double));
    r->layer_sparsity = calloc(L ? L : 1, sizeof(double));
    r->act_thr = malloc((nthr ? nthr : 1) * sizeof(float));
    r->steps = calloc((size_t)o->iters + 1, sizeof *r->steps);
    if (!r->threshold || !r->layer_cett || !r->layer_sparsity || !r->act_thr || !r->steps)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    cu.zero = cnt;
    cu.total = cnt + L;
    cu.ffn = ffn;

    SPX_TRY(rc, spx_sparsity_capture(ctx, model, fit, nfit, fit_len, &acts));
    r->fit_tokens = (uint64_t)nfit * fit_len;
    for (uint32_t l = 0; l < L; l++)
        SPX_TRY(rc, spx_cett_layer_init(ctx, acts[l], nfit * fit_len, model->layers[l].down.w, dim, ffn, &layers[l]));
    SPX_TRY(rc, spx_state_new(ctx, model, o->ctx, o->ctx, &st));

    /* dense reference (no thresholds; exact zeros still counted) */
    SPX_TRY(rc, eval_sparse(ctx, model, st, NULL, eval, n_eval, o, &cu, &r->ppl_dense, &r->dense_sparsity,
                            &r->eval_tokens));
    if (!isfinite(r->ppl_dense))
        SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "sparsity: the dense perplexity is not finite");
    /* step 0: c = 0 (always kept as the fallback result), then bisection on (lo, hi) */
    for (uint32_t it = 0; it <= o->iters; it++) {
        double c = it == 0 ? 0.0 : 0.5 * (lo + hi), ppl, sp;
        uint64_t pred;
        spx_sparsity_step *s = &r->steps[r->n_steps++];
        spx_sparsity_thresholds(layers, L, c, thr, T, cv);
        SPX_TRY(rc, eval_sparse(ctx, model, st, thr, eval, n_eval, o, &cu, &ppl, &sp, &pred));
        s->c = c;
        s->ppl = ppl;
        s->ratio = ppl / r->ppl_dense;
        s->sparsity = sp;
        s->accepted = isfinite(s->ratio) && s->ratio < 1.0 + o->tolerance;
        if (it > 0) {
            if (s->accepted)
                lo = c;
            else
                hi = c;
        }
        if (it == 0 || s->accepted) {
            r->cett = c;
            r->ppl_sparse = ppl;
            r->ratio = s->ratio;
            r->sparsity = sp;
            memcpy(r->act_thr, thr, nthr * sizeof(float));
            memcpy(r->threshold, T, L * sizeof(double));
            memcpy(r->layer_cett, cv, L * sizeof(double));
            for (uint32_t l = 0; l < L; l++)
                r->layer_sparsity[l] = cu.total[l] ? (double)cu.zero[l] / (double)cu.total[l] : 0.0;
        }
        spx_progress_report(progress, "sparsity", it + 1, (unsigned long long)o->iters + 1);
    }
    *out = r;
    r = NULL;
done:
    if (layers)
        for (uint32_t l = 0; l < L; l++)
            spx_cett_layer_release(&layers[l]);
    free(layers);
    spx_sparsity_acts_free(acts, L);
    spx_state_free(st);
    spx_sparsity_result_free(r);
    free(thr);
    free(cnt);
    free(T);
    free(cv);
    return rc;
}
