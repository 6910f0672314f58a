/* test_prune_router.c: routers for neuron experts (prune/spx_router.h, spx_router_train.h):
 * loss and gradient of the three kinds against an independent double-precision implementation
 * (central finite differences), forward scores with input normalization, selection rules,
 * evaluation against the oracle, and training: loss decrease on teacher-student data,
 * determinism, early stopping with restoration of the best parameters, input errors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_router.h"
#include "spx_router_train.h"
#include "spx_test.h"

/* ---- double-precision reference (naive loops, same parameter layout) ------------------------ */

typedef struct ref_net {
    int kind;
    uint32_t d, E, h, h1;     /* h1 = rows of w1 */
} ref_net;

static double bce(double z, double y)
{
    /* -(y log s + (1 - y) log(1 - s)), s = 1 / (1 + exp(-z)) */
    double s = 1.0 / (1.0 + exp(-z));
    return -(y * log(s) + (1.0 - y) * log(1.0 - s));
}

/* out[E] = pre-activation z of one input row x[d]; p = w1 | b1 | w2 | b2 */
static void ref_z(const ref_net *nt, const double *p, const double *x, double *z)
{
    const double *w1 = p, *b1 = w1 + nt->h1 * nt->d, *w2 = b1 + nt->h1, *b2 = w2 + nt->E * nt->h;
    double hid[64];
    for (uint32_t k = 0; k < nt->h1; k++) {
        double a = b1[k];
        for (uint32_t t = 0; t < nt->d; t++)
            a += w1[k * nt->d + t] * x[t];
        hid[k] = a;
    }
    if (nt->kind == SPX_ROUTER_LTE) {
        for (uint32_t e = 0; e < nt->E; e++)
            z[e] = hid[e];
        return;
    }
    for (uint32_t k = 0; k < nt->h; k++)
        hid[k] = nt->kind == SPX_ROUTER_MOE ? tanh(hid[k]) : (hid[k] > 0 ? hid[k] : 0);
    for (uint32_t e = 0; e < nt->E; e++) {
        double a = b2[e];
        for (uint32_t k = 0; k < nt->h; k++)
            a += w2[e * nt->h + k] * hid[k];
        z[e] = a;
    }
}

static double ref_loss(const ref_net *nt, const double *p, const double *X, const double *Y, size_t n,
                       const spx_router_loss_opts *lo)
{
    double sum = 0, z[64];
    for (size_t i = 0; i < n; i++) {
        ref_z(nt, p, X + i * nt->d, z);
        for (uint32_t e = 0; e < nt->E; e++) {
            double y = Y[i * nt->E + e];
            if (nt->kind == SPX_ROUTER_MOE) {
                sum += bce(z[e], y);
            } else if (nt->kind == SPX_ROUTER_DSTI) {
                sum += (fabs(z[e]) - y) * (fabs(z[e]) - y);
            } else {
                double s = 1.0 / (1.0 + exp(-z[e]));
                sum += bce(z[e], y) + lo->l1 * s * s + lo->l2 * (0.25 - (s - lo->tau) * (s - lo->tau));
            }
        }
    }
    return sum / ((double)n * nt->E);
}

static void fill_params(spx_router *r, uint64_t *s, double scale)
{
    for (size_t i = 0; i < r->n_params; i++)
        r->params[i] = (float)(scale * spx_test_normal(s));
}

static void test_gradients(int kind)
{
    /* dim 5, E 3, dsti hidden 4, 7 rows. Library: fp32 forward/backward with sgemm; reference:
     * double loss, central differences with step 1e-6 (truncation ~1e-12, cancellation ~1e-10
     * absolute). The fp32 gradient carries ~1e-7 relative round-off, so rel < 1e-4 has a wide
     * margin while any wrong term (factor, sign, transposition) fails it by orders of magnitude. */
    const uint32_t d = 5, E = 3;
    const size_t n = 7;
    uint64_t s = 1000 + (uint64_t)kind;
    spx_ctx ctx = SPX_CTX_INIT;
    spx_router *r = NULL, *g = NULL;
    spx_router_loss_opts lo = {0.3, 0.2, 0.5};
    CHECK_RC(spx_router_new(&ctx, kind, d, E, 4, 0, &r), 0);
    CHECK_RC(spx_router_new(&ctx, kind, d, E, 4, 0, &g), 0);
    if (!r || !g)
        return;
    fill_params(r, &s, 0.6);
    ref_net nt = {kind, d, E, r->hidden, kind == SPX_ROUTER_LTE ? E : r->hidden};
    float Xf[35], Yf[21];
    double X[35], Y[21], *p = malloc(r->n_params * sizeof(double));
    for (size_t i = 0; i < n * d; i++)
        X[i] = Xf[i] = (float)spx_test_normal(&s);
    for (size_t i = 0; i < n * E; i++) {
        double u = spx_test_uniform(&s);
        Yf[i] = (float)(kind == SPX_ROUTER_MOE ? u : kind == SPX_ROUTER_DSTI ? 2.0 * u : (u < 0.5 ? 0.0 : 1.0));
        Y[i] = Yf[i];
    }
    for (size_t i = 0; i < r->n_params; i++)
        p[i] = r->params[i];
    if (kind == SPX_ROUTER_DSTI) {
        /* the test point must be away from the kinks of ReLU and |.| (100x the step 1e-6) */
        double zmin = 1e9, z[3];
        const double *w1 = p, *b1 = w1 + nt.h1 * d;
        for (size_t i = 0; i < n; i++) {
            for (uint32_t k = 0; k < nt.h1; k++) {
                double a = b1[k];
                for (uint32_t t = 0; t < d; t++)
                    a += w1[k * d + t] * X[i * d + t];
                zmin = fmin(zmin, fabs(a));
            }
            ref_z(&nt, p, X + i * d, z);
            for (uint32_t e = 0; e < E; e++)
                zmin = fmin(zmin, fabs(z[e]));
        }
        CHECK_MSG(zmin > 1e-4, "test point too close to a kink (%g)", zmin);
    }
    double loss = 0;
    CHECK_RC(spx_router_loss_grad(&ctx, r, &lo, Xf, Yf, n, &loss, g), 0);
    double want = ref_loss(&nt, p, X, Y, n, &lo);
    CHECK_MSG(fabs(loss - want) <= 1e-5 * fabs(want), "%s loss %.9g vs reference %.9g", spx_router_kind_name(kind),
              loss, want);
    double num = 0, den = 0, gmax = 0, worst = 0;
    double *fd = malloc(r->n_params * sizeof(double));
    for (size_t i = 0; i < r->n_params; i++) {
        const double h = 1e-6, p0 = p[i];
        p[i] = p0 + h;
        double lp = ref_loss(&nt, p, X, Y, n, &lo);
        p[i] = p0 - h;
        double lm = ref_loss(&nt, p, X, Y, n, &lo);
        p[i] = p0;
        fd[i] = (lp - lm) / (2 * h);
        gmax = fmax(gmax, fabs(fd[i]));
    }
    for (size_t i = 0; i < r->n_params; i++) {
        double diff = fabs((double)g->params[i] - fd[i]);
        num += diff * diff;
        den += fd[i] * fd[i];
        worst = fmax(worst, diff / fmax(fabs(fd[i]), 1e-2 * gmax));
    }
    double rel = sqrt(num / den);
    fprintf(stderr, "%s gradient: %zu params, rel %.3g, worst element %.3g\n", spx_router_kind_name(kind),
            r->n_params, rel, worst);
    CHECK(rel < 1e-4);
    CHECK(worst < 1e-4);
    /* loss without gradient gives the same value */
    double l2 = 0;
    CHECK_RC(spx_router_loss_grad(&ctx, r, &lo, Xf, Yf, n, &l2, NULL), 0);
    CHECK(l2 == loss);
    free(fd);
    free(p);
    spx_router_free(r);
    spx_router_free(g);
}

static void test_forward_norm(void)
{
    /* scores with input_norm against the reference applied to x/||x|| (double); fp32 tolerance */
    const uint32_t d = 6, E = 4;
    uint64_t s = 77;
    spx_ctx ctx = SPX_CTX_INIT;
    for (int kind = SPX_ROUTER_MOE; kind <= SPX_ROUTER_LTE; kind++) {
        spx_router *r = NULL;
        CHECK_RC(spx_router_new(&ctx, kind, d, E, 5, 1, &r), 0);
        if (!r)
            continue;
        fill_params(r, &s, 0.7);
        ref_net nt = {kind, d, E, r->hidden, kind == SPX_ROUTER_LTE ? E : r->hidden};
        double *p = malloc(r->n_params * sizeof(double));
        for (size_t i = 0; i < r->n_params; i++)
            p[i] = r->params[i];
        float X[5 * 6], S[5 * 4];
        for (size_t i = 0; i < 30; i++)
            X[i] = (float)(3.0 * spx_test_normal(&s));
        memset(X + 12, 0, 6 * sizeof(float)); /* a zero row stays zero */
        CHECK_RC(spx_router_forward(&ctx, r, X, 5, S), 0);
        double worst = 0;
        for (size_t i = 0; i < 5; i++) {
            double x[6], nn = 0, z[4];
            for (uint32_t t = 0; t < d; t++)
                nn += (double)X[i * d + t] * X[i * d + t];
            for (uint32_t t = 0; t < d; t++)
                x[t] = nn > 0 ? X[i * d + t] / sqrt(nn) : 0.0;
            ref_z(&nt, p, x, z);
            for (uint32_t e = 0; e < E; e++) {
                double want = kind == SPX_ROUTER_MOE ? z[e] : kind == SPX_ROUTER_DSTI ? fabs(z[e])
                                                                                      : 1.0 / (1.0 + exp(-z[e]));
                worst = fmax(worst, fabs(S[i * E + e] - want) / fmax(1.0, fabs(want)));
            }
        }
        CHECK_MSG(worst < 1e-5, "%s forward: max error %g", spx_router_kind_name(kind), worst);
        free(p);
        spx_router_free(r);
    }
}

static void test_select(void)
{
    spx_router_item it[4];
    uint8_t m[4];
    spx_router_rule g = {SPX_ROUTER_MOE, 2, 0.9, 0.5};
    const float s1[4] = {0.1f, 0.5f, 0.5f, 0.2f};
    CHECK(spx_router_select(&g, s1, 4, it, m) == 2 && m[1] && m[2] && !m[0] && !m[3]);
    const float tie[4] = {1, 1, 1, 1};
    CHECK(spx_router_select(&g, tie, 4, it, m) == 2 && m[0] && m[1] && !m[2] && !m[3]);
    g.top_k = 0;
    CHECK(spx_router_select(&g, s1, 4, it, m) == 1 && m[1]);
    g.top_k = 9;
    CHECK(spx_router_select(&g, s1, 4, it, m) == 4);
    g.kind = SPX_ROUTER_DSTI;
    const float s2[4] = {1, 4, 3, 2};
    g.tau = 0.7;   /* 4 + 3 = 7 >= 0.7 * 10 */
    CHECK(spx_router_select(&g, s2, 4, it, m) == 2 && m[1] && m[2]);
    g.tau = 0.71;
    CHECK(spx_router_select(&g, s2, 4, it, m) == 3 && m[1] && m[2] && m[3]);
    const float z[4] = {0, 0, 0, 0};
    CHECK(spx_router_select(&g, z, 4, it, m) == 1 && m[0]);
    g.kind = SPX_ROUTER_LTE;
    const float s3[4] = {0.2f, 0.6f, 0.5f, 0.4f};
    CHECK(spx_router_select(&g, s3, 4, it, m) == 2 && m[1] && m[2]);
    const float s4[3] = {0.1f, 0.3f, 0.2f};
    CHECK(spx_router_select(&g, s4, 3, it, m) == 1 && m[1]);
}

static void test_evaluate(void)
{
    /* lte router whose scores ignore the input (w1 = 0): sigmoid(b1) = {0.9, 0.6, 0.2, 0.1},
     * threshold 0.5 selects {0, 1}. Token A mass {5,4,0,0}: oracle top-2 {0,1}, recall 1, coverage 1;
     * token B mass {0,1,3,2}: oracle {2,3}, recall 0, coverage 1/6. */
    spx_ctx ctx = SPX_CTX_INIT;
    spx_router *r = NULL;
    CHECK_RC(spx_router_new(&ctx, SPX_ROUTER_LTE, 3, 4, 0, 0, &r), 0);
    if (!r)
        return;
    const double sg[4] = {0.9, 0.6, 0.2, 0.1};
    for (int e = 0; e < 4; e++)
        r->b1[e] = (float)log(sg[e] / (1 - sg[e]));
    const float X[6] = {1, 2, 3, -1, 0, 1}, mass[8] = {5, 4, 0, 0, 0, 1, 3, 2};
    spx_router_rule g = {SPX_ROUTER_LTE, 0, 0, 0.5};
    spx_router_eval ev;
    CHECK_RC(spx_router_evaluate(&ctx, r, &g, X, mass, 2, &ev), 0);
    CHECK_NEAR(ev.recall, 0.5, 1e-12);
    CHECK_NEAR(ev.sel_frac, 0.5, 1e-12);
    CHECK_NEAR(ev.random_recall, 0.5, 1e-12);
    CHECK_NEAR(ev.mass_cov, (1.0 + 1.0 / 6.0) / 2.0, 1e-7);
    CHECK(ev.tokens == 2);
    spx_router_free(r);
}

typedef struct log_rec {
    uint32_t calls, last_epoch, improved_last;
    int order_ok;
} log_rec;

static void log_cb(void *ud, const spx_router_epoch *e)
{
    log_rec *l = ud;
    l->order_ok &= e->epoch == l->calls;
    l->calls++;
    l->last_epoch = e->epoch;
    if (e->improved)
        l->improved_last = e->epoch;
}

/* Teacher-student data: targets from a random teacher of the same kind. */
static void make_data(int kind, uint32_t d, uint32_t E, size_t n, float *X, float *Y, double *floor_loss)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_router *t = NULL;
    uint64_t s = 4242;
    *floor_loss = 0;
    if (spx_router_new(&ctx, kind, d, E, 16, 1, &t) < 0)
        return;
    fill_params(t, &s, 1.5);
    for (size_t i = 0; i < n * d; i++)
        X[i] = (float)spx_test_normal(&s);
    spx_router_forward(&ctx, t, X, n, Y);
    for (size_t i = 0; i < n * E; i++) {
        if (kind == SPX_ROUTER_MOE) {
            Y[i] = 1.0f / (1.0f + expf(-Y[i]));   /* soft targets: the BCE floor is their entropy */
            double y = Y[i];
            *floor_loss += y > 0 && y < 1 ? -(y * log(y) + (1 - y) * log(1 - y)) : 0.0;
        } else if (kind == SPX_ROUTER_LTE) {
            Y[i] = Y[i] >= 0.5f ? 1.0f : 0.0f;
        }
    }
    *floor_loss /= (double)(n * E);
    spx_router_free(t);
}

static void test_training(int kind)
{
    const uint32_t d = 16, E = 6;
    const size_t n = 3000;
    float *X = malloc(n * d * sizeof(float)), *Y = malloc(n * E * sizeof(float));
    double fl = 0;
    make_data(kind, d, E, n, X, Y, &fl);
    spx_ctx ctx = SPX_CTX_INIT;
    spx_router *a = NULL, *b = NULL, *c = NULL;
    CHECK_RC(spx_router_new(&ctx, kind, d, E, 16, 1, &a), 0);
    CHECK_RC(spx_router_new(&ctx, kind, d, E, 16, 1, &b), 0);
    CHECK_RC(spx_router_new(&ctx, kind, d, E, 16, 1, &c), 0);
    if (!a || !b || !c)
        return;
    spx_router_init_random(a, 3);
    spx_router_init_random(b, 3);
    spx_router_init_random(c, 3);
    CHECK(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);
    spx_router_train_opts o;
    spx_router_train_opts_init(&o, kind);
    o.epochs = 25;
    o.batch = 128;
    o.lr = kind == SPX_ROUTER_DSTI ? 0.003 : 0.01;
    o.loss.l1 = o.loss.l2 = 0.001;
    log_rec lr = {0, 0, 0, 1};
    o.log = log_cb;
    o.log_ud = &lr;
    spx_router_train_report ra, rb, rc;
    CHECK_RC(spx_router_train(&ctx, a, X, Y, n, &o, &ra), 0);
    o.log = NULL;
    CHECK_RC(spx_router_train(&ctx, b, X, Y, n, &o, &rb), 0);
    o.seed = 1;
    CHECK_RC(spx_router_train(&ctx, c, X, Y, n, &o, &rc), 0);
    const char *kn = spx_router_kind_name(kind);
    fprintf(stderr, "%s training: held-out %.5g -> %.5g (floor %.5g), %u epochs, best %u, %.3f s\n", kn,
            ra.init_heldout_loss, ra.heldout_loss, fl, ra.epochs, ra.best_epoch, ra.seconds);
    CHECK(memcmp(a->params, b->params, a->n_params * sizeof(float)) == 0);   /* same seed: same bytes */
    CHECK(memcmp(a->params, c->params, a->n_params * sizeof(float)) != 0);   /* other shuffling */
    CHECK(ra.n_heldout == 300 && ra.n_train == 2700);
    CHECK(ra.heldout_loss == rb.heldout_loss);
    /* the excess loss over the floor at least halves (moe: entropy of the soft targets) */
    CHECK_MSG(ra.heldout_loss - fl < 0.5 * (ra.init_heldout_loss - fl), "%s: %g -> %g", kn, ra.init_heldout_loss,
              ra.heldout_loss);
    CHECK(lr.calls == ra.epochs + 1 && lr.order_ok && lr.improved_last == ra.best_epoch);
    CHECK(ra.best_epoch >= 1 && ra.best_epoch <= ra.epochs);
    CHECK(kind == SPX_ROUTER_DSTI ? ra.target_scale > 0 : ra.target_scale == 1.0);
    spx_router_free(a);
    spx_router_free(b);
    spx_router_free(c);
    free(X);
    free(Y);
}

static void test_early_stop_and_errors(void)
{
    /* lr so small that no epoch improves the held-out loss by 1e-6 relative: training stops after
     * `patience` epochs and the initial parameters are restored bit for bit */
    const uint32_t d = 8, E = 4;
    const size_t n = 400;
    float *X = malloc(n * d * sizeof(float)), *Y = malloc(n * E * sizeof(float));
    double fl;
    make_data(SPX_ROUTER_MOE, d, E, n, X, Y, &fl);
    spx_ctx ctx = SPX_CTX_INIT;
    spx_router *r = NULL;
    CHECK_RC(spx_router_new(&ctx, SPX_ROUTER_MOE, d, E, 0, 1, &r), 0);
    if (!r)
        return;
    spx_router_init_random(r, 9);
    float *init = malloc(r->n_params * sizeof(float));
    memcpy(init, r->params, r->n_params * sizeof(float));
    spx_router_train_opts o;
    spx_router_train_opts_init(&o, SPX_ROUTER_MOE);
    o.lr = 1e-12;
    o.patience = 3;
    spx_router_train_report rep;
    CHECK_RC(spx_router_train(&ctx, r, X, Y, n, &o, &rep), 0);
    CHECK(rep.epochs == 3 && rep.best_epoch == 0);
    CHECK(memcmp(init, r->params, r->n_params * sizeof(float)) == 0);
    CHECK(isnan(rep.train_loss));
    /* errors */
    o.lr = 0.01;
    CHECK_RC(spx_router_train(&ctx, r, X, Y, 1, &o, NULL), SPX_E_ARG);
    Y[5] = 1.5f;   /* BCE target above 1 */
    CHECK_RC(spx_router_train(&ctx, r, X, Y, n, &o, NULL), SPX_E_ARG);
    Y[5] = 0.5f;
    X[7] = NAN;
    CHECK_RC(spx_router_train(&ctx, r, X, Y, n, &o, NULL), SPX_E_NUMERIC);
    X[7] = 0.0f;
    o.lr = 0;
    CHECK_RC(spx_router_train(&ctx, r, X, Y, n, &o, NULL), SPX_E_ARG);
    /* no held-out rows: the train loss drives the selection, held-out figures are NaN */
    spx_router_train_opts_init(&o, SPX_ROUTER_MOE);
    o.holdout = 0;
    o.epochs = 3;
    CHECK_RC(spx_router_train(&ctx, r, X, Y, n, &o, &rep), 0);
    CHECK(rep.n_heldout == 0 && isnan(rep.heldout_loss) && rep.best_epoch >= 1);
    spx_router *bad = NULL;
    CHECK_RC(spx_router_new(&ctx, 7, d, E, 0, 0, &bad), SPX_E_ARG);
    CHECK_RC(spx_router_new(&ctx, SPX_ROUTER_MOE, 0, E, 0, 0, &bad), SPX_E_ARG);
    CHECK(spx_router_kind_parse("dsti") == SPX_ROUTER_DSTI && spx_router_kind_parse("x") == -1);
    free(init);
    spx_router_free(r);
    free(X);
    free(Y);
}

int spx_test_main(void)
{
    for (int k = SPX_ROUTER_MOE; k <= SPX_ROUTER_LTE; k++)
        test_gradients(k);
    test_forward_norm();
    test_select();
    test_evaluate();
    for (int k = SPX_ROUTER_MOE; k <= SPX_ROUTER_LTE; k++)
        test_training(k);
    test_early_stop_and_errors();
    return 0;
}
