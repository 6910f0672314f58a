/* spx_router_train.c: Adam mini-batch training of a router with early stopping (see
 * spx_router_train.h). */
#include "spx_router_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spx_rng.h"

void spx_router_train_opts_init(spx_router_train_opts *o, int kind)
{
    const spx_router_loss_opts lo = SPX_ROUTER_LOSS_OPTS_INIT;
    memset(o, 0, sizeof *o);
    o->epochs = 30;
    o->batch = 512;
    o->patience = 5;
    o->lr = kind == SPX_ROUTER_MOE ? 0.01 : 1e-3;
    o->beta1 = 0.9;
    o->beta2 = 0.999;
    o->eps = 1e-8;
    o->holdout = 0.1;
    o->bias_init = 1;
    o->loss = lo;
    o->seed = 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct train_ws {
    spx_router *r;
    const spx_router_loss_opts *lo;
    const float *X, *Y;       /* X [n x dim], Y [n x E] (scaled for dsti) */
    float *Xb, *Yb;           /* [batch x dim], [batch x E] */
    uint32_t batch;
} train_ws;

/* Mean loss over the contiguous rows [lo, hi). */
static int eval_rows(spx_ctx *ctx, train_ws *w, size_t lo, size_t hi, double *out)
{
    const spx_router *r = w->r;
    double sum = 0.0;
    for (size_t i0 = lo; i0 < hi; i0 += w->batch) {
        size_t nb = hi - i0 < w->batch ? hi - i0 : w->batch;
        double l;
        memcpy(w->Xb, w->X + i0 * r->dim, nb * r->dim * sizeof(float));
        spx_router_prepare(r, w->Xb, nb);
        int rc = spx_router_loss_grad(ctx, r, w->lo, w->Xb, w->Y + i0 * r->experts, nb, &l, NULL);
        if (rc < 0)
            return rc;
        sum += l * (double)nb;
    }
    *out = sum / (double)(hi - lo);
    return 0;
}

static void adam_step(const spx_router_train_opts *o, float *p, const float *g, float *m, float *v, size_t np,
                      uint64_t t)
{
    double c1 = 1.0 - pow(o->beta1, (double)t), c2 = 1.0 - pow(o->beta2, (double)t);
    for (size_t i = 0; i < np; i++) {
        double gi = (double)g[i];
        double mi = o->beta1 * (double)m[i] + (1.0 - o->beta1) * gi;
        double vi = o->beta2 * (double)v[i] + (1.0 - o->beta2) * gi * gi;
        m[i] = (float)mi;
        v[i] = (float)vi;
        p[i] = (float)((double)p[i] - o->lr * (mi / c1) / (sqrt(vi / c2) + o->eps));
    }
}

/* Validate X/Y values; for dsti compute the target scale over the training rows. */
static int check_data(spx_ctx *ctx, const spx_router *r, const float *X, const float *Y, size_t n, size_t n_tr,
                      double *scale)
{
    const uint32_t E = r->experts;
    double ss = 0.0;
    for (size_t i = 0; i < n * r->dim; i++)
        if (!isfinite(X[i]))
            return spx_err_set(ctx, SPX_E_NUMERIC, "router training: non-finite input at row %zu, column %zu",
                               i / r->dim, i % r->dim);
    for (size_t i = 0; i < n * E; i++) {
        float y = Y[i];
        int bad = !isfinite(y) || y < 0.0f || (r->kind != SPX_ROUTER_DSTI && y > 1.0f);
        if (bad)
            return spx_err_set(ctx, !isfinite(y) ? SPX_E_NUMERIC : SPX_E_ARG,
                               "router training: target %g at row %zu, expert %zu is out of range for %s", (double)y,
                               i / E, i % E, spx_router_kind_name(r->kind));
        if (i < n_tr * E)
            ss += (double)y * (double)y;
    }
    *scale = 1.0;
    if (r->kind == SPX_ROUTER_DSTI && ss > 0.0)
        *scale = sqrt(ss / ((double)n_tr * E));
    return 0;
}

static void init_bias(spx_router *r, const float *Y, size_t n_tr)
{
    const uint32_t E = r->experts;
    float *b = r->kind == SPX_ROUTER_DSTI ? r->b2 : r->b1;
    for (uint32_t e = 0; e < E; e++) {
        double s = 0.0;
        for (size_t i = 0; i < n_tr; i++)
            s += (double)Y[i * E + e];
        s /= (double)n_tr;
        if (r->kind == SPX_ROUTER_LTE) {
            s = s < 0.01 ? 0.01 : s > 0.99 ? 0.99 : s;
            s = log(s / (1.0 - s));
        }
        b[e] = (float)s;
    }
}

int spx_router_train(spx_ctx *ctx, spx_router *r, const float *X, const float *Y, size_t n,
                     const spx_router_train_opts *o, spx_router_train_report *rep)
{
    int rc = 0;
    const uint32_t E = r->experts;
    size_t n_ho, n_tr, *idx = NULL;
    float *Ys = NULL, *best = NULL, *am = NULL, *av = NULL;
    spx_router *grad = NULL;
    train_ws w;
    spx_router_train_report R;
    spx_rng rng;
    double t_start = now_s(), best_loss, scale = 1.0;
    uint32_t bad = 0;
    uint64_t step = 0;
    memset(&w, 0, sizeof w);
    memset(&R, 0, sizeof R);
    if (!X || !Y || !o || n < 2)
        return spx_err_set(ctx, SPX_E_ARG, "router training: need at least 2 rows (got %zu)", n);
    if (o->epochs == 0 || o->batch == 0 || !(o->lr > 0.0) || !(o->holdout >= 0.0 && o->holdout < 1.0) ||
        !(o->beta1 >= 0.0 && o->beta1 < 1.0) || !(o->beta2 >= 0.0 && o->beta2 < 1.0) || !(o->eps > 0.0))
        return spx_err_set(ctx, SPX_E_ARG, "router training: invalid options (epochs %u, batch %u, lr %g, holdout %g)",
                           o->epochs, o->batch, o->lr, o->holdout);
    n_ho = (size_t)floor((double)n * o->holdout);
    n_tr = n - n_ho;
    SPX_TRY(rc, check_data(ctx, r, X, Y, n, n_tr, &scale));
    if (r->kind == SPX_ROUTER_DSTI) {
        Ys = malloc(n * E * sizeof *Ys);
        if (!Ys)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "router training: out of memory");
        for (size_t i = 0; i < n * E; i++)
            Ys[i] = (float)((double)Y[i] / scale);
    }
    w.r = r;
    w.lo = &o->loss;
    w.X = X;
    w.Y = Ys ? Ys : Y;
    w.batch = o->batch;
    if (o->bias_init && r->kind != SPX_ROUTER_MOE)
        init_bias(r, w.Y, n_tr);
    idx = malloc(n_tr * sizeof *idx);
    w.Xb = malloc((size_t)o->batch * r->dim * sizeof(float));
    w.Yb = malloc((size_t)o->batch * E * sizeof(float));
    best = malloc(r->n_params * sizeof(float));
    am = calloc(r->n_params, sizeof(float));
    av = calloc(r->n_params, sizeof(float));
    if (!idx || !w.Xb || !w.Yb || !best || !am || !av)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "router training: out of memory");
    SPX_TRY(rc, spx_router_new(ctx, r->kind, r->dim, E, r->hidden, r->input_norm, &grad));
    for (size_t i = 0; i < n_tr; i++)
        idx[i] = i;
    spx_rng_seed(&rng, o->seed);
    /* epoch 0: the initial parameters */
    SPX_TRY(rc, eval_rows(ctx, &w, n_ho ? n_tr : 0, n_ho ? n : n_tr, &best_loss));
    R.init_heldout_loss = n_ho ? best_loss : NAN;
    R.train_loss = NAN;
    memcpy(best, r->params, r->n_params * sizeof(float));
    if (o->log) {
        spx_router_epoch e0 = {0, NAN, n_ho ? best_loss : NAN, 0.0, 1};
        o->log(o->log_ud, &e0);
    }
    for (uint32_t ep = 1; ep <= o->epochs; ep++) {
        double t0 = now_s(), sum = 0.0, ho;
        for (size_t i = n_tr; i > 1; i--) {
            size_t j = (size_t)spx_rng_below(&rng, i);
            size_t t = idx[i - 1];
            idx[i - 1] = idx[j];
            idx[j] = t;
        }
        for (size_t i0 = 0; i0 < n_tr; i0 += o->batch) {
            size_t nb = n_tr - i0 < o->batch ? n_tr - i0 : o->batch;
            double l;
            for (size_t k = 0; k < nb; k++) {
                memcpy(w.Xb + k * r->dim, X + idx[i0 + k] * r->dim, r->dim * sizeof(float));
                memcpy(w.Yb + k * E, w.Y + idx[i0 + k] * E, E * sizeof(float));
            }
            spx_router_prepare(r, w.Xb, nb);
            SPX_TRY(rc, spx_router_loss_grad(ctx, r, &o->loss, w.Xb, w.Yb, nb, &l, grad));
            adam_step(o, r->params, grad->params, am, av, r->n_params, ++step);
            sum += l * (double)nb;
        }
        double train_loss = sum / (double)n_tr;
        if (n_ho)
            SPX_TRY(rc, eval_rows(ctx, &w, n_tr, n, &ho));
        else
            ho = train_loss;
        if (!isfinite(train_loss) || !isfinite(ho))
            SPX_FAIL(ctx, rc, SPX_E_NUMERIC, "router training diverged at epoch %u (loss %g): lower the learning rate",
                     ep, train_loss);
        int improved = ho < best_loss - 1e-6 * fabs(best_loss);
        if (improved) {
            best_loss = ho;
            memcpy(best, r->params, r->n_params * sizeof(float));
            R.best_epoch = ep;
            R.train_loss = train_loss;
            bad = 0;
        } else {
            bad++;
        }
        R.epochs = ep;
        if (o->log) {
            spx_router_epoch e = {ep, train_loss, n_ho ? ho : NAN, now_s() - t0, improved};
            o->log(o->log_ud, &e);
        }
        if (o->patience && bad >= o->patience)
            break;
    }
    memcpy(r->params, best, r->n_params * sizeof(float));
    if (r->kind == SPX_ROUTER_DSTI && scale != 1.0) {
        for (size_t i = 0; i < (size_t)E * r->hidden; i++)
            r->w2[i] = (float)((double)r->w2[i] * scale);
        for (uint32_t e = 0; e < E; e++)
            r->b2[e] = (float)((double)r->b2[e] * scale);
    }
    R.heldout_loss = n_ho ? best_loss : NAN;
    R.target_scale = scale;
    R.n_train = n_tr;
    R.n_heldout = n_ho;
    R.seconds = now_s() - t_start;
    if (rep)
        *rep = R;
done:
    spx_router_free(grad);
    free(Ys);
    free(idx);
    free(w.Xb);
    free(w.Yb);
    free(best);
    free(am);
    free(av);
    return rc;
}
