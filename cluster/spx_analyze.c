/* spx_analyze.c: the Wasserstein-neuron analysis driver (see spx_analyze.h). */
#include "spx_analyze.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "spx_analyze_int.h"
#include "spx_ckd.h"
#include "spx_forward.h"
#include "spx_rng.h"
#include "spx_wasserstein.h"

static const char *const lin_names[SPX_AN_COUNT] = {
    "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};

/* Which hook feeds each linear: 0 attn_input, 1 attn_out_input, 2 mlp_input, 3 mlp_hidden. */
static const int lin_kind[SPX_AN_COUNT] = {0, 0, 0, 1, 2, 2, 3};

/* Output panels are at most this many bytes (rows x tokens floats). */
#define PANEL_BYTES ((size_t)64 << 20)

const char *spx_analyze_lin_name(int lin)
{
    return (lin >= 0 && lin < SPX_AN_COUNT) ? lin_names[lin] : "?";
}

static const spx_linear *an_lin(const spx_layer *L, int lin)
{
    const spx_linear *t[SPX_AN_COUNT] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
    return t[lin]->w ? t[lin] : NULL;
}

/* Captured inputs of one block: per hook kind, the selected tokens' rows [m x width]. */
typedef struct capture {
    float *buf[4];            /* NULL: kind not needed */
    size_t width[4];
    uint64_t cursor[4];       /* stream tokens seen by this kind in the current block */
    size_t next[4];           /* next selected token index (into sel) for this kind */
    const uint64_t *sel;      /* [m] selected stream token indices, ascending */
    size_t m;
} capture;

static void cap(capture *c, int kind, const float *x, size_t n)
{
    if (!c->buf[kind])
        return;
    uint64_t lo = c->cursor[kind], hi = lo + n;
    size_t w = c->width[kind];
    while (c->next[kind] < c->m && c->sel[c->next[kind]] < hi) {
        size_t k = c->next[kind]++;
        memcpy(c->buf[kind] + k * w, x + (size_t)(c->sel[k] - lo) * w, w * sizeof(float));
    }
    c->cursor[kind] = hi;
}
static void hook_attn(void *ud, uint32_t l, const float *x, size_t n) { (void)l; cap(ud, 0, x, n); }
static void hook_o(void *ud, uint32_t l, const float *x, size_t n) { (void)l; cap(ud, 1, x, n); }
static void hook_mlp(void *ud, uint32_t l, const float *x, size_t n) { (void)l; cap(ud, 2, x, n); }
static void hook_down(void *ud, uint32_t l, const float *x, size_t n) { (void)l; cap(ud, 3, x, n); }

/* Knuth's Algorithm S: a uniform random m-subset of [0, total), produced in ascending order. */
static void select_tokens(uint64_t total, size_t m, uint64_t seed, uint64_t *sel)
{
    size_t k = 0;
    if ((uint64_t)m == total) {
        for (uint64_t t = 0; t < total; t++)
            sel[k++] = t;
        return;
    }
    spx_rng r;
    spx_rng_seed(&r, seed);
    for (uint64_t t = 0; t < total && k < m; t++)
        if ((double)(total - t) * spx_rng_uniform(&r) < (double)(m - k))
            sel[k++] = t;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* (distance, index) pairs sorted by decreasing distance, index ascending on ties */
typedef struct ranked {
    double d;
    uint32_t i;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->d != y->d)
        return x->d > y->d ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Per-layer summary from L->w1: mean, median, max, threshold count, top list. */
static int finish_stats(spx_ctx *ctx, spx_analyze_layer *L, const spx_analyze_opts *o)
{
    int rc = 0;
    size_t rows = (size_t)L->rows;
    double *tmp = malloc(rows * sizeof *tmp);
    ranked *idx = malloc(rows * sizeof *idx);
    if (!tmp || !idx)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", L->name);
    double sum = 0.0;
    L->max = -1.0;
    for (size_t j = 0; j < rows; j++) {
        double d = L->w1[j];
        sum += d;
        tmp[j] = d;
        idx[j].d = d;
        idx[j].i = (uint32_t)j;
        if (d > L->max) {
            L->max = d;
            L->argmax = j;
        }
        L->n_above += d > o->threshold;
        L->n_constant += L->constant[j];
    }
    L->mean = sum / (double)rows;
    qsort(tmp, rows, sizeof *tmp, cmp_double);
    L->median = rows % 2 ? tmp[rows / 2] : 0.5 * (tmp[rows / 2 - 1] + tmp[rows / 2]);
    L->frac_above = (double)L->n_above / (double)rows;
    qsort(idx, rows, sizeof *idx, cmp_ranked);
    L->n_top = o->top < rows ? o->top : (uint32_t)rows;
    if (L->n_top) {
        L->top = malloc(L->n_top * sizeof *L->top);
        if (!L->top)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", L->name);
        for (uint32_t k = 0; k < L->n_top; k++)
            L->top[k] = idx[k].i;
    }
done:
    free(tmp);
    free(idx);
    return rc;
}

/* Histogram of one neuron's normalized outputs (the layer's current most entangled one). */
static void top_histogram(spx_analyze_layer *L, const float *y, size_t m, const spx_w1_neuron *nr)
{
    double zmin = INFINITY, zmax = -INFINITY;
    for (size_t i = 0; i < m; i++) {
        double z = ((double)y[i] - nr->mean) / nr->std;
        zmin = z < zmin ? z : zmin;
        zmax = z > zmax ? z : zmax;
    }
    L->top_mean = nr->mean;
    L->top_std = nr->std;
    L->hist_lo = zmin < -10.0 ? -10.0 : (zmin > -4.0 ? -4.0 : zmin);
    L->hist_hi = zmax > 10.0 ? 10.0 : (zmax < 4.0 ? 4.0 : zmax);
    memset(L->hist, 0, sizeof L->hist);
    L->hist_below = L->hist_above = 0;
    double scale = SPX_AN_HIST_BINS / (L->hist_hi - L->hist_lo);
    for (size_t i = 0; i < m; i++) {
        double z = ((double)y[i] - nr->mean) / nr->std;
        if (z < L->hist_lo) {
            L->hist_below++;
        } else if (z > L->hist_hi) {
            L->hist_above++;
        } else {
            long b = (long)((z - L->hist_lo) * scale);
            L->hist[b >= SPX_AN_HIST_BINS ? SPX_AN_HIST_BINS - 1 : (b < 0 ? 0 : b)]++;
        }
    }
}

/* Everything one layer needs besides its inputs. */
typedef struct layer_job {
    const spx_linear *lin;
    const float *X;           /* [m x cols] captured inputs */
    size_t m;
    const spx_w1_table *tab;
    float *panel;             /* [panel_rows x m] */
    size_t panel_rows;
    uint32_t *work;           /* [2m] */
    spx_an_file *dump_y;      /* non-NULL: write every panel */
} layer_job;

static int analyze_linear(spx_ctx *ctx, const layer_job *J, const spx_analyze_opts *o, spx_analyze_layer *L)
{
    int rc = 0;
    size_t rows = J->lin->rows, cols = J->lin->cols, m = J->m;
    double best = -1.0;
    L->w1 = calloc(rows, sizeof *L->w1);
    L->constant = calloc(rows, 1);
    if (!L->w1 || !L->constant)
        return spx_err_set(ctx, SPX_E_NOMEM, "%s: out of memory", L->name);
    for (size_t r0 = 0; r0 < rows; r0 += J->panel_rows) {
        size_t pr = rows - r0 < J->panel_rows ? rows - r0 : J->panel_rows;
        /* panel [pr x m] = W[r0 : r0+pr] [pr x cols] . X^T [cols x m] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)pr, (int)m, (int)cols, 1.0f,
                    J->lin->w + r0 * cols, (int)cols, J->X, (int)cols, 0.0f, J->panel, (int)m);
        if (J->dump_y)
            SPX_TRY(rc, spx_an_file_write(ctx, J->dump_y, J->panel, pr * m * sizeof(float)));
        for (size_t j = 0; j < pr; j++) {
            spx_w1_neuron nr;
            const float *y = J->panel + j * m;
            rc = spx_w1_neuron_eval(ctx, J->tab, y, m, J->work, &nr);
            if (rc < 0) {
                spx_err_prefix(ctx, "%s neuron %zu: ", L->name, r0 + j);
                goto done;
            }
            L->w1[r0 + j] = nr.w1;
            L->constant[r0 + j] = (uint8_t)nr.constant;
            if (!nr.constant && nr.w1 > best) {
                best = nr.w1;
                top_histogram(L, y, m, &nr);
            }
        }
        spx_progress_report(&o->progress, "analyze: neurons", r0 + pr, rows);
    }
    SPX_TRY(rc, finish_stats(ctx, L, o));
done:
    return rc;
}

static int dump_blob(spx_ctx *ctx, const char *prefix, const char *ext, const void *data, size_t len)
{
    int rc = 0;
    spx_an_file f;
    size_t pl = strlen(prefix), el = strlen(ext);
    char *path = malloc(pl + el + 1);
    memset(&f, 0, sizeof f);
    if (!path)
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
    memcpy(path, prefix, pl);
    memcpy(path + pl, ext, el + 1);
    SPX_TRY(rc, spx_an_file_open(ctx, path, &f));
    SPX_TRY(rc, spx_an_file_write(ctx, &f, data, len));
    SPX_TRY(rc, spx_an_file_commit(ctx, &f));
done:
    spx_an_file_abort(&f);
    free(path);
    return rc;
}

/* The dumped layer: inputs, token ids and stream indices now, outputs panel by panel, distances last. */
static int dump_begin(spx_ctx *ctx, const spx_analyze_opts *o, const capture *c, int kind, const uint32_t *windows,
                      spx_an_file *fy)
{
    int rc = 0;
    size_t m = c->m;
    uint32_t *tok = malloc(m * sizeof *tok);
    char *path = NULL;
    if (!tok)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    for (size_t k = 0; k < m; k++)
        tok[k] = windows[c->sel[k]];
    SPX_TRY(rc, dump_blob(ctx, o->dump_prefix, ".x.f32", c->buf[kind], m * c->width[kind] * sizeof(float)));
    SPX_TRY(rc, dump_blob(ctx, o->dump_prefix, ".tok.u32", tok, m * sizeof *tok));
    /* uint64_t is little-endian on every platform spx builds for (the .spx reader assumes it too) */
    SPX_TRY(rc, dump_blob(ctx, o->dump_prefix, ".idx.u64", c->sel, m * sizeof *c->sel));
    size_t pl = strlen(o->dump_prefix);
    path = malloc(pl + 7);
    if (!path)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    memcpy(path, o->dump_prefix, pl);
    memcpy(path + pl, ".y.f32", 7);
    SPX_TRY(rc, spx_an_file_open(ctx, path, fy));
done:
    free(tok);
    free(path);
    return rc;
}

void spx_analyze_result_free(spx_analyze_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_layers; i++) {
        free(r->layers[i].w1);
        free(r->layers[i].constant);
        free(r->layers[i].top);
    }
    free(r->layers);
    free(r);
}

int spx_analyze_model(spx_ctx *ctx, const spx_model *m, const uint32_t *windows, uint32_t nsamples,
                      uint32_t seqlen, const spx_analyze_opts *o, spx_analyze_result **out)
{
    int rc = 0;
    const spx_model_config *cfg = &m->cfg;
    unsigned targets = o->targets ? o->targets : SPX_AN_MLP;
    spx_analyze_result *res = NULL;
    spx_state *st = NULL;
    spx_w1_table *tab = NULL;
    float *X = NULL, *panel = NULL;
    uint64_t *sel = NULL;
    uint32_t *work = NULL;
    spx_an_file fy;
    capture c;
    size_t per, total, msel, max_rows = 1, nlay = 0, bytes;
    int dumped = 0;
    memset(&c, 0, sizeof c);
    memset(&fy, 0, sizeof fy);
    *out = NULL;
    if (!windows || nsamples == 0 || seqlen == 0)
        return spx_err_set(ctx, SPX_E_ARG, "analyze: no calibration windows");
    if (!(targets & SPX_AN_ALL))
        return spx_err_set(ctx, SPX_E_ARG, "analyze: no target layers");
    if (spx_ckd_mul_size(seqlen, cfg->dim, &per) || spx_ckd_mul_size(per, nsamples, &total) ||
        spx_ckd_mul_size(total, sizeof(float), &bytes))
        return spx_err_set(ctx, SPX_E_OVERFLOW, "analyze: calibration activations: size overflow");
    uint64_t ntok = (uint64_t)nsamples * seqlen;
    msel = (size_t)(o->max_tokens && o->max_tokens < ntok ? o->max_tokens : ntok);
    if (msel > 0x7fffffffu)
        return spx_err_set(ctx, SPX_E_LIMIT, "analyze: %zu tokens exceed the 2^31-1 samples per neuron limit "
                           "(lower --max-tokens)", msel);
    if (o->dump_layer && o->dump_prefix) {
        int found = 0;
        for (uint32_t l = 0; l < cfg->n_layers && !found; l++)
            for (int k = 0; k < SPX_AN_COUNT && !found; k++) {
                char nm[64];
                spx_tensor_name(nm, sizeof nm, (int)l, lin_names[k], "weight");
                found = (targets & (1u << k)) && an_lin(&m->layers[l], k) && strcmp(nm, o->dump_layer) == 0;
            }
        if (!found)
            return spx_err_set(ctx, SPX_E_ARG, "--dump-layer %s: no such analyzed layer", o->dump_layer);
    }
    res = calloc(1, sizeof *res);
    if (!res)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    res->tokens = msel;
    res->tokens_total = ntok;
    /* result slots and the capture widths of the needed hook kinds */
    size_t cap_lin;
    if (spx_ckd_mul_size(cfg->n_layers, SPX_AN_COUNT, &cap_lin))
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "analyze: too many layers");
    res->layers = calloc(cap_lin ? cap_lin : 1, sizeof *res->layers);
    if (!res->layers)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    for (int k = 0; k < SPX_AN_COUNT; k++) {
        if (!(targets & (1u << k)) || !cfg->n_layers || !an_lin(&m->layers[0], k))
            continue;
        const spx_linear *lin = an_lin(&m->layers[0], k);
        c.width[lin_kind[k]] = lin->cols;
        max_rows = lin->rows > max_rows ? lin->rows : max_rows;
    }
    sel = malloc(msel * sizeof *sel);
    work = malloc(2 * msel * sizeof *work);
    if (!sel || !work)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "analyze: cannot allocate the token selection (%zu tokens)", msel);
    select_tokens(ntok, msel, o->seed, sel);
    c.sel = sel;
    c.m = msel;
    for (int kind = 0; kind < 4; kind++) {
        size_t b;
        if (!c.width[kind])
            continue;
        if (spx_ckd_mul3_size(msel, c.width[kind], sizeof(float), &b))
            SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "analyze: captured inputs: size overflow");
        if (!(c.buf[kind] = malloc(b)))
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "analyze: cannot allocate %zu bytes of captured inputs", b);
    }
    size_t prow = PANEL_BYTES / (msel * sizeof(float));
    prow = prow < 1 ? 1 : (prow > max_rows ? max_rows : prow);
    if (!(panel = malloc(prow * msel * sizeof(float))))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "analyze: cannot allocate the output panel");
    if (!(X = malloc(bytes)))
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "analyze: cannot allocate %zu bytes of calibration activations", bytes);
    for (uint32_t s = 0; s < nsamples; s++)
        SPX_TRY(rc, spx_embed(ctx, m, windows + (size_t)s * seqlen, seqlen, X + (size_t)s * per));
    SPX_TRY(rc, spx_state_new(ctx, m, seqlen, seqlen, &st));
    SPX_TRY(rc, spx_w1_table_new(ctx, msel, &tab));
    spx_forward_hooks hooks = {&c, hook_attn, hook_o, hook_mlp, hook_down};
    for (uint32_t l = 0; l < cfg->n_layers; l++) {
        memset(c.cursor, 0, sizeof c.cursor);
        memset(c.next, 0, sizeof c.next);
        /* one in-place pass: captures this block's inputs and produces the next block's input */
        for (uint32_t s = 0; s < nsamples; s++) {
            spx_state_reset(st);
            SPX_TRY(rc, spx_block_forward(ctx, m, st, l, X + (size_t)s * per, seqlen, &hooks));
        }
        for (int kind = 0; kind < 4; kind++)
            if (c.buf[kind] && (c.cursor[kind] != ntok || c.next[kind] != msel))
                SPX_FAIL(ctx, rc, SPX_E_INTERNAL, "analyze: block %u: hook %d saw %llu of %llu tokens", l, kind,
                         (unsigned long long)c.cursor[kind], (unsigned long long)ntok);
        for (int k = 0; k < SPX_AN_COUNT; k++) {
            const spx_linear *lin = an_lin(&m->layers[l], k);
            if (!(targets & (1u << k)) || !lin)
                continue;
            spx_analyze_layer *L = &res->layers[nlay++];
            spx_tensor_name(L->name, sizeof L->name, (int)l, lin_names[k], "weight");
            L->layer = l;
            L->lin = k;
            L->rows = lin->rows;
            L->cols = lin->cols;
            layer_job J = {lin, c.buf[lin_kind[k]], msel, tab, panel, prow, work, NULL};
            int dump = o->dump_layer && o->dump_prefix && strcmp(o->dump_layer, L->name) == 0;
            if (dump) {
                SPX_TRY(rc, dump_begin(ctx, o, &c, lin_kind[k], windows, &fy));
                J.dump_y = &fy;
            }
            SPX_TRY(rc, analyze_linear(ctx, &J, o, L));
            if (dump) {
                SPX_TRY(rc, spx_an_file_commit(ctx, &fy));
                SPX_TRY(rc, dump_blob(ctx, o->dump_prefix, ".w1.f64", L->w1, (size_t)L->rows * sizeof(double)));
                dumped = 1;
            }
        }
        spx_progress_report(&o->progress, "analyze: block", l + 1, cfg->n_layers);
    }
    res->n_layers = nlay;
    if (o->dump_layer && o->dump_prefix && !dumped)
        SPX_FAIL(ctx, rc, SPX_E_INTERNAL, "--dump-layer %s: layer was not dumped", o->dump_layer);
    *out = res;
    res = NULL;
done:
    if (res)
        res->n_layers = nlay;
    spx_analyze_result_free(res);
    spx_an_file_abort(&fy);
    for (int kind = 0; kind < 4; kind++)
        free(c.buf[kind]);
    spx_w1_table_free(tab);
    spx_state_free(st);
    free(X);
    free(panel);
    free(sel);
    free(work);
    return rc;
}
