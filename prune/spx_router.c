/* spx_router.c: router parameters, forward pass, loss and gradient (see spx_router.h). */
#include "spx_router.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_ckd.h"
#include "spx_rng.h"

#define ROUTER_MAX_SIZE (1u << 24)

const char *spx_router_kind_name(int kind)
{
    return kind == SPX_ROUTER_MOE ? "moe" : kind == SPX_ROUTER_DSTI ? "dsti" : kind == SPX_ROUTER_LTE ? "lte" : "?";
}

int spx_router_kind_parse(const char *s)
{
    if (!s)
        return -1;
    for (int k = SPX_ROUTER_MOE; k <= SPX_ROUTER_LTE; k++)
        if (strcmp(s, spx_router_kind_name(k)) == 0)
            return k;
    return -1;
}

/* width of the first layer's output */
static uint32_t h1_of(const spx_router *r)
{
    return r->kind == SPX_ROUTER_LTE ? r->experts : r->hidden;
}

int spx_router_new(spx_ctx *ctx, int kind, uint32_t dim, uint32_t experts, uint32_t hidden, int input_norm,
                   spx_router **out)
{
    spx_router *r;
    size_t n1, n2 = 0, total;
    *out = NULL;
    if (kind == SPX_ROUTER_MOE)
        hidden = experts;
    else if (kind == SPX_ROUTER_DSTI)
        hidden = hidden ? hidden : SPX_ROUTER_DSTI_HIDDEN;
    else if (kind == SPX_ROUTER_LTE)
        hidden = 0;
    else
        return spx_err_set(ctx, SPX_E_ARG, "router: unknown kind %d", kind);
    if (dim == 0 || experts == 0 || dim >= ROUTER_MAX_SIZE || experts >= ROUTER_MAX_SIZE || hidden >= ROUTER_MAX_SIZE)
        return spx_err_set(ctx, SPX_E_ARG, "router: bad shape (dim %u, experts %u, hidden %u)", dim, experts, hidden);
    uint32_t h1 = kind == SPX_ROUTER_LTE ? experts : hidden;
    /* (dim + 1) * h1 + (h + 1) * E < 2^49: no overflow in size_t (64-bit) but checked anyway */
    if (spx_ckd_mul_size((size_t)dim + 1, h1, &n1) ||
        (kind != SPX_ROUTER_LTE && spx_ckd_mul_size((size_t)hidden + 1, experts, &n2)) ||
        spx_ckd_add_size(n1, n2, &total) || total > SIZE_MAX / sizeof(float))
        return spx_err_set(ctx, SPX_E_OVERFLOW, "router: parameter count overflows");
    r = calloc(1, sizeof *r);
    if (!r)
        return spx_err_set(ctx, SPX_E_NOMEM, "router: out of memory");
    r->params = calloc(total, sizeof(float));
    if (!r->params) {
        free(r);
        return spx_err_set(ctx, SPX_E_NOMEM, "router: cannot allocate %zu parameters", total);
    }
    r->kind = kind;
    r->dim = dim;
    r->hidden = hidden;
    r->experts = experts;
    r->input_norm = input_norm ? 1 : 0;
    r->n_params = total;
    r->w1 = r->params;
    r->b1 = r->w1 + (size_t)h1 * dim;
    if (kind != SPX_ROUTER_LTE) {
        r->w2 = r->b1 + h1;
        r->b2 = r->w2 + (size_t)experts * hidden;
    }
    *out = r;
    return 0;
}

void spx_router_free(spx_router *r)
{
    if (!r)
        return;
    free(r->params);
    free(r);
}

int spx_router_init_centers(spx_ctx *ctx, spx_router *r, const float *W, const uint32_t *perm, uint32_t ffn)
{
    const uint32_t E = r->experts, d = r->dim;
    double *acc = NULL;
    if (r->kind == SPX_ROUTER_DSTI || !W || ffn == 0 || ffn % E != 0)
        return spx_err_set(ctx, SPX_E_ARG, "router: centre initialisation needs a moe/lte router and %u %% %u == 0",
                           ffn, E);
    acc = malloc((size_t)d * sizeof *acc);
    if (!acc)
        return spx_err_set(ctx, SPX_E_NOMEM, "router: out of memory");
    const uint32_t B = ffn / E;
    memset(r->params, 0, r->n_params * sizeof(float));
    for (uint32_t e = 0; e < E; e++) {
        memset(acc, 0, (size_t)d * sizeof *acc);
        for (uint32_t i = e * B; i < (e + 1) * B; i++) {
            const float *w = W + (size_t)(perm ? perm[i] : i) * d;
            double nn = 0.0;
            for (uint32_t t = 0; t < d; t++)
                nn += (double)w[t] * (double)w[t];
            double inv = nn > 0.0 ? 1.0 / sqrt(nn) : 0.0;
            for (uint32_t t = 0; t < d; t++)
                acc[t] += (double)w[t] * inv;
        }
        for (uint32_t t = 0; t < d; t++)
            r->w1[(size_t)e * d + t] = (float)(acc[t] / (double)B);
    }
    if (r->kind == SPX_ROUTER_MOE)
        for (uint32_t e = 0; e < E; e++)
            r->w2[(size_t)e * E + e] = 1.0f;
    free(acc);
    return 0;
}

void spx_router_init_random(spx_router *r, uint64_t seed)
{
    spx_rng g;
    const uint32_t h1 = h1_of(r);
    spx_rng_seed(&g, seed);
    memset(r->params, 0, r->n_params * sizeof(float));
    double s1 = sqrt((r->kind == SPX_ROUTER_DSTI ? 2.0 : 1.0) / (double)r->dim);
    for (size_t i = 0; i < (size_t)h1 * r->dim; i++)
        r->w1[i] = (float)(s1 * spx_rng_normal(&g));
    if (r->w2) {
        double s2 = sqrt(1.0 / (double)r->hidden);
        for (size_t i = 0; i < (size_t)r->experts * r->hidden; i++)
            r->w2[i] = (float)(s2 * spx_rng_normal(&g));
    }
}

void spx_router_prepare(const spx_router *r, float *X, size_t n)
{
    if (!r->input_norm)
        return;
    for (size_t i = 0; i < n; i++) {
        float *x = X + i * r->dim;
        double s = 0.0;
        for (uint32_t t = 0; t < r->dim; t++)
            s += (double)x[t] * (double)x[t];
        if (s > 0.0) {
            float inv = (float)(1.0 / sqrt(s));
            for (uint32_t t = 0; t < r->dim; t++)
                x[t] *= inv;
        }
    }
}

/* Y[n x rows] = X[n x cols] W^T + b */
static void affine(const float *X, size_t n, const float *W, const float *b, uint32_t rows, uint32_t cols, float *Y)
{
    for (size_t i = 0; i < n; i++)
        memcpy(Y + i * rows, b, rows * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)rows, (int)cols, 1.0f, X, (int)cols, W,
                (int)cols, 1.0f, Y, (int)rows);
}

/* Forward on prepared X [n x dim]: Z1 [n x h1] (pre-activation), H [n x hidden] (moe/dsti hidden
 * activation), Z [n x E] (output pre-activation z). For lte Z == Z1 (H unused). */
static void forward_raw(const spx_router *r, const float *X, size_t n, float *Z1, float *H, float *Z)
{
    const uint32_t h1 = h1_of(r);
    affine(X, n, r->w1, r->b1, h1, r->dim, r->kind == SPX_ROUTER_LTE ? Z : Z1);
    if (r->kind == SPX_ROUTER_LTE)
        return;
    for (size_t i = 0; i < n * h1; i++)
        H[i] = r->kind == SPX_ROUTER_MOE ? tanhf(Z1[i]) : (Z1[i] > 0.0f ? Z1[i] : 0.0f);
    affine(H, n, r->w2, r->b2, r->experts, r->hidden, Z);
}

static float sigmoidf_(float z)
{
    return z >= 0.0f ? 1.0f / (1.0f + expf(-z)) : expf(z) / (1.0f + expf(z));
}

#define FWD_CHUNK 1024u

int spx_router_forward(spx_ctx *ctx, const spx_router *r, const float *X, size_t n, float *scores)
{
    int rc = 0;
    const uint32_t h1 = h1_of(r), E = r->experts;
    size_t chunk = n < FWD_CHUNK ? n : FWD_CHUNK;
    float *Xn = NULL, *Z1 = NULL, *H = NULL;
    if (n == 0)
        return 0;
    Xn = malloc(chunk * r->dim * sizeof(float));
    Z1 = malloc(chunk * (h1 ? h1 : 1) * sizeof(float));
    H = malloc(chunk * (r->hidden ? r->hidden : 1) * sizeof(float));
    if (!Xn || !Z1 || !H)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "router forward: out of memory");
    for (size_t i0 = 0; i0 < n; i0 += chunk) {
        size_t nb = n - i0 < chunk ? n - i0 : chunk;
        float *S = scores + i0 * E;
        memcpy(Xn, X + i0 * r->dim, nb * r->dim * sizeof(float));
        spx_router_prepare(r, Xn, nb);
        forward_raw(r, Xn, nb, Z1, H, S);
        for (size_t j = 0; j < nb * E; j++)
            S[j] = r->kind == SPX_ROUTER_MOE ? S[j] : r->kind == SPX_ROUTER_DSTI ? fabsf(S[j]) : sigmoidf_(S[j]);
    }
done:
    free(Xn);
    free(Z1);
    free(H);
    return rc;
}

/* BCE with logits, stable form: max(z, 0) - z y + log(1 + exp(-|z|)) */
static double bce_logit(double z, double y)
{
    return (z > 0.0 ? z : 0.0) - z * y + log1p(exp(-fabs(z)));
}

/* Per-entry loss and d loss / d z (before the 1/(n E) mean). */
static double entry_loss(const spx_router *r, const spx_router_loss_opts *lo, float zf, float yf, double *dz)
{
    double z = (double)zf, y = (double)yf;
    if (r->kind == SPX_ROUTER_MOE) {
        double s = 1.0 / (1.0 + exp(-z));
        *dz = s - y;
        return bce_logit(z, y);
    }
    if (r->kind == SPX_ROUTER_DSTI) {
        double p = fabs(z), diff = p - y;
        *dz = 2.0 * diff * (z >= 0.0 ? 1.0 : -1.0);
        return diff * diff;
    }
    double s = 1.0 / (1.0 + exp(-z)), ds = s * (1.0 - s), t = s - lo->tau;
    *dz = (s - y) + (2.0 * lo->l1 * s - 2.0 * lo->l2 * t) * ds;
    return bce_logit(z, y) + lo->l1 * s * s + lo->l2 * (0.25 - t * t);
}

int spx_router_loss_grad(spx_ctx *ctx, const spx_router *r, const spx_router_loss_opts *lo, const float *X,
                         const float *Y, size_t n, double *loss, spx_router *grad)
{
    int rc = 0;
    const spx_router_loss_opts def = SPX_ROUTER_LOSS_OPTS_INIT;
    const uint32_t h1 = h1_of(r), E = r->experts, d = r->dim;
    float *Z1 = NULL, *H = NULL, *Z = NULL, *dH = NULL;
    double sum = 0.0;
    if (!lo)
        lo = &def;
    if (n == 0 || n > (size_t)INT32_MAX)
        return spx_err_set(ctx, SPX_E_ARG, "router loss: batch of %zu rows", n);
    if (grad && (grad->kind != r->kind || grad->n_params != r->n_params || grad->dim != d || grad->experts != E))
        return spx_err_set(ctx, SPX_E_ARG, "router loss: gradient has a different shape");
    Z1 = malloc(n * (h1 ? h1 : 1) * sizeof(float));
    H = malloc(n * (r->hidden ? r->hidden : 1) * sizeof(float));
    Z = malloc(n * E * sizeof(float));
    dH = malloc(n * (r->hidden ? r->hidden : 1) * sizeof(float));
    if (!Z1 || !H || !Z || !dH)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "router loss: out of memory for a batch of %zu rows", n);
    forward_raw(r, X, n, Z1, H, Z);
    const double scale = 1.0 / ((double)n * (double)E);
    for (size_t j = 0; j < n * E; j++) {
        double dz;
        sum += entry_loss(r, lo, Z[j], Y[j], &dz);
        Z[j] = (float)(dz * scale);   /* Z now holds d loss / d z */
    }
    *loss = sum * scale;
    if (!grad)
        goto done;
    memset(grad->params, 0, grad->n_params * sizeof(float));
    float *dZ1 = Z;   /* lte: the output is the first layer */
    if (r->kind != SPX_ROUTER_LTE) {
        const uint32_t h = r->hidden;
        /* dW2 [E x h] = dZ^T H ; db2 = column sums of dZ ; dH [n x h] = dZ W2 */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)E, (int)h, (int)n, 1.0f, Z, (int)E, H, (int)h, 0.0f,
                    grad->w2, (int)h);
        for (size_t i = 0; i < n; i++)
            for (uint32_t e = 0; e < E; e++)
                grad->b2[e] += Z[i * E + e];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)h, (int)E, 1.0f, Z, (int)E, r->w2, (int)h,
                    0.0f, dH, (int)h);
        for (size_t j = 0; j < n * h; j++)
            dH[j] *= r->kind == SPX_ROUTER_MOE ? 1.0f - H[j] * H[j] : (Z1[j] > 0.0f ? 1.0f : 0.0f);
        dZ1 = dH;
    }
    /* dW1 [h1 x d] = dZ1^T X ; db1 = column sums of dZ1 */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)h1, (int)d, (int)n, 1.0f, dZ1, (int)h1, X, (int)d, 0.0f,
                grad->w1, (int)d);
    for (size_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < h1; k++)
            grad->b1[k] += dZ1[i * h1 + k];
done:
    free(Z1);
    free(H);
    free(Z);
    free(dH);
    return rc;
}
