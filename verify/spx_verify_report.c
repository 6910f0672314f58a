/* spx_verify_report.c: thresholds, baseline regression checks and the JSON report of
 * `spx verify` (decisions in spx_verify_report.h, schema in specs/spx-verify-json.md). */
#include "spx_verify_report.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "spx_io.h"

static void add_failure(spx_verify_failures *f, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void add_failure(spx_verify_failures *f, const char *fmt, ...)
{
    va_list ap;
    if (f->n >= SPX_VERIFY_MAX_FAILURES)
        return;
    va_start(ap, fmt);
    vsnprintf(f->msg[f->n], SPX_VERIFY_FAILURE_LEN, fmt, ap);
    va_end(ap);
    f->n++;
}

void spx_verify_check_limits(const spx_verify_result *r, const spx_verify_limits *lim, spx_verify_failures *f)
{
    /* written so that a NaN figure fails a set limit */
    if (!isnan(lim->max_ppl_ratio) && !(r->ppl_ratio <= lim->max_ppl_ratio))
        add_failure(f, "ppl ratio %.4g > --max-ppl-ratio %g", r->ppl_ratio, lim->max_ppl_ratio);
    if (!isnan(lim->max_kl) && !(r->kl_mean <= lim->max_kl))
        add_failure(f, "kl mean %.4g > --max-kl %g", r->kl_mean, lim->max_kl);
    if (!isnan(lim->min_top1) && !(r->top1 >= lim->min_top1))
        add_failure(f, "top-1 agreement %.4f < --min-top1 %g", r->top1, lim->min_top1);
}

void spx_verify_check_baseline(const spx_verify_result *r, const spx_verify_baseline *b, double tol, double top1_tol,
                               spx_verify_failures *f)
{
    if (r->ctx != b->ctx || r->positions != b->positions) {
        add_failure(f, "baseline setup differs: it was measured with ctx %u on %llu positions, this run used ctx %u on "
                    "%llu positions", b->ctx, (unsigned long long)b->positions, r->ctx,
                    (unsigned long long)r->positions);
        return;
    }
    if (!(r->ppl_ratio <= b->ppl_ratio * (1.0 + tol)))
        add_failure(f, "ppl ratio %.6g regressed from baseline %.6g (more than --baseline-tol %g relative)",
                    r->ppl_ratio, b->ppl_ratio, tol);
    if (!(r->kl_mean <= b->kl_mean * (1.0 + tol) + SPX_VERIFY_KL_ABS_SLACK))
        add_failure(f, "kl mean %.6g regressed from baseline %.6g (more than --baseline-tol %g relative)", r->kl_mean,
                    b->kl_mean, tol);
    if (!(r->top1 >= b->top1 - top1_tol))
        add_failure(f, "top-1 agreement %.6f regressed from baseline %.6f (more than --baseline-top1-tol %g)", r->top1,
                    b->top1, top1_tol);
}

void spx_verify_check_probe(const spx_probe_check *c, spx_verify_failures *f)
{
    if (c->ok)
        return;
    if (c->stale) {
        add_failure(f, "probe is stale: the tensors changed since it was recorded (re-embed with --embed-probe)");
        return;
    }
    if (c->top1_ok < c->positions)
        add_failure(f, "probe top-1 mismatch at %u of %u positions (first at position %u: expected id %u, got %u)",
                    c->positions - c->top1_ok, c->positions, c->first_bad, c->bad_expected, c->bad_got);
    if (!(c->max_abs_err <= c->tol))
        add_failure(f, "probe logits max |diff| %.4g > tol %.4g (token id %u)", c->max_abs_err, c->tol, c->worst_id);
}

/* ---- JSON ---------------------------------------------------------------------------------- */

/* JSON has no inf/nan: non-finite numbers are null. */
static cJSON *num(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static cJSON *str_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *opt_limit(const spx_verify_limits *lim, int which)
{
    double v;
    if (!lim)
        return cJSON_CreateNull();
    v = which == 0 ? lim->max_ppl_ratio : which == 1 ? lim->max_kl : lim->min_top1;
    return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

static cJSON *layers_json(const spx_verify_result *r)
{
    cJSON *arr = cJSON_CreateArray();
    for (uint32_t l = 0; arr && r && l < r->n_layers; l++) {
        const spx_verify_layer *L = &r->layers[l];
        cJSON *o = cJSON_CreateObject(), *lin = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddNumberToObject(o, "layer", l);
        cJSON_AddItemToObject(o, "attn", num(L->attn_rel));
        cJSON_AddItemToObject(o, "mlp", num(L->mlp_rel));
        cJSON_AddItemToObject(o, "block", num(L->block_rel));
        for (int i = 0; i < SPX_VERIFY_N_LINEARS; i++)
            if (L->linear_cmp[i])
                cJSON_AddItemToObject(lin, spx_verify_linear_names[i], num(L->linear_rel[i]));
        cJSON_AddItemToObject(o, "linears", lin);
    }
    return arr;
}

static cJSON *logits_json(const spx_verify_result *r)
{
    cJSON *o;
    if (!r)
        return cJSON_CreateNull();
    o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "kl_mean", num(r->kl_mean));
    cJSON_AddItemToObject(o, "kl_max", num(r->kl_max));
    cJSON_AddItemToObject(o, "kl_p999", num(r->kl_p999));
    cJSON_AddItemToObject(o, "top1", num(r->top1));
    cJSON_AddItemToObject(o, "nll_ref", num(r->nll_ref));
    cJSON_AddItemToObject(o, "nll_cand", num(r->nll_cand));
    cJSON_AddItemToObject(o, "ppl_ref", num(r->ppl_ref));
    cJSON_AddItemToObject(o, "ppl_cand", num(r->ppl_cand));
    cJSON_AddItemToObject(o, "ppl_ratio", num(r->ppl_ratio));
    return o;
}

static cJSON *probe_json(const spx_probe_check *c)
{
    cJSON *o;
    if (!c)
        return cJSON_CreateNull();
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", c->ok ? "ok" : c->stale ? "stale" : "fail");
    cJSON_AddNumberToObject(o, "positions", c->positions);
    cJSON_AddNumberToObject(o, "top1_ok", c->top1_ok);
    cJSON_AddItemToObject(o, "max_abs_err", num(c->max_abs_err));
    cJSON_AddItemToObject(o, "tol", num(c->tol));
    return o;
}

int spx_verify_report_json(spx_ctx *ctx, const spx_verify_report *rep, char **out)
{
    int rc = 0;
    cJSON *root = cJSON_CreateObject(), *o, *fl;
    char *txt = NULL;
    size_t len;
    *out = NULL;
    if (!root)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "verify: out of memory for the JSON report");
    cJSON_AddStringToObject(root, "schema", "spx-verify");
    cJSON_AddNumberToObject(root, "version", SPX_VERIFY_JSON_VERSION);
    cJSON_AddStringToObject(root, "candidate", rep->candidate);
    o = cJSON_AddObjectToObject(root, "integrity");
    cJSON_AddBoolToObject(o, "ok", 1);
    cJSON_AddNumberToObject(o, "tensors", rep->n_tensors);
    cJSON_AddNumberToObject(o, "bytes", (double)rep->file_bytes);
    cJSON_AddItemToObject(root, "reference", str_or_null(rep->reference));
    if (rep->cmp) {
        o = cJSON_AddObjectToObject(root, "data");
        cJSON_AddItemToObject(o, "source", str_or_null(rep->data));
        cJSON_AddNumberToObject(o, "ctx", rep->cmp->ctx);
        cJSON_AddNumberToObject(o, "windows", (double)rep->cmp->windows);
        cJSON_AddNumberToObject(o, "positions", (double)rep->cmp->positions);
        cJSON_AddNumberToObject(o, "dropped", (double)rep->cmp->dropped);
    } else {
        cJSON_AddNullToObject(root, "data");
    }
    cJSON_AddItemToObject(root, "logits", logits_json(rep->cmp));
    cJSON_AddItemToObject(root, "layers", layers_json(rep->cmp));
    cJSON_AddItemToObject(root, "probe", probe_json(rep->probe));
    o = cJSON_AddObjectToObject(root, "thresholds");
    cJSON_AddItemToObject(o, "max_ppl_ratio", opt_limit(rep->limits, 0));
    cJSON_AddItemToObject(o, "max_kl", opt_limit(rep->limits, 1));
    cJSON_AddItemToObject(o, "min_top1", opt_limit(rep->limits, 2));
    if (rep->baseline) {
        o = cJSON_AddObjectToObject(root, "baseline");
        cJSON_AddStringToObject(o, "file", rep->baseline);
        cJSON_AddItemToObject(o, "tol", num(rep->baseline_tol));
        cJSON_AddItemToObject(o, "top1_tol", num(rep->baseline_top1_tol));
    } else {
        cJSON_AddNullToObject(root, "baseline");
    }
    fl = cJSON_AddArrayToObject(root, "failures");
    for (size_t i = 0; rep->failures && i < rep->failures->n; i++)
        cJSON_AddItemToArray(fl, cJSON_CreateString(rep->failures->msg[i]));
    cJSON_AddBoolToObject(root, "pass", !rep->failures || rep->failures->n == 0);
    txt = cJSON_Print(root);
    if (!txt)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "verify: out of memory for the JSON report");
    len = strlen(txt);
    *out = malloc(len + 2);
    if (!*out)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "verify: out of memory for the JSON report");
    memcpy(*out, txt, len);
    (*out)[len] = '\n';
    (*out)[len + 1] = '\0';
done:
    free(txt);
    cJSON_Delete(root);
    return rc;
}

int spx_verify_report_save(spx_ctx *ctx, const spx_verify_report *rep, const char *path)
{
    int rc = 0;
    char *txt = NULL, *tmp = NULL;
    FILE *fp = NULL;
    size_t len, tl = strlen(path) + 32;
    SPX_TRY(rc, spx_verify_report_json(ctx, rep, &txt));
    tmp = malloc(tl);
    if (!tmp)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "verify: out of memory");
    snprintf(tmp, tl, "%s.tmp.%ld", path, (long)getpid());
    fp = fopen(tmp, "wb");
    if (!fp)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
    len = strlen(txt);
    if (fwrite(txt, 1, len, fp) != len || fflush(fp) != 0) {
        int e = errno;
        fclose(fp);
        fp = NULL;
        remove(tmp);
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: write failed: %s", tmp, strerror(e));
    }
    if (fclose(fp) != 0) {
        fp = NULL;
        remove(tmp);
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: close failed: %s", tmp, strerror(errno));
    }
    fp = NULL;
    if (rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: cannot rename into place: %s", path, strerror(e));
    }
done:
    free(txt);
    free(tmp);
    return rc;
}

/* ---- baseline ------------------------------------------------------------------------------ */

static int get_num(spx_ctx *ctx, const char *path, const cJSON *obj, const char *objname, const char *key, double *out)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(it))
        return spx_err_set(ctx, SPX_E_JSON, "%s: baseline member '%s.%s' is missing or not a number", path, objname,
                           key);
    *out = it->valuedouble;
    return 0;
}

int spx_verify_baseline_load(spx_ctx *ctx, const char *path, spx_verify_baseline *out)
{
    int rc = 0;
    char *buf = NULL;
    size_t sz;
    cJSON *root = NULL;
    const cJSON *schema, *ver, *data, *logits;
    double ctxv = 0.0, pos = 0.0;
    SPX_TRY(rc, spx_io_read_file(ctx, path, "verify report", 16u << 20, SPX_E_JSON, &buf, &sz));
    root = cJSON_ParseWithLength(buf, sz);
    if (!root)
        SPX_FAIL(ctx, rc, SPX_E_JSON, "%s: not valid JSON", path);
    schema = cJSON_GetObjectItemCaseSensitive(root, "schema");
    ver = cJSON_GetObjectItemCaseSensitive(root, "version");
    if (!cJSON_IsString(schema) || strcmp(schema->valuestring, "spx-verify") != 0)
        SPX_FAIL(ctx, rc, SPX_E_JSON, "%s: not an spx verify report (member 'schema' is not \"spx-verify\")", path);
    if (!cJSON_IsNumber(ver) || ver->valuedouble != SPX_VERIFY_JSON_VERSION)
        SPX_FAIL(ctx, rc, SPX_E_JSON, "%s: report 'version' must be %d", path, SPX_VERIFY_JSON_VERSION);
    data = cJSON_GetObjectItemCaseSensitive(root, "data");
    logits = cJSON_GetObjectItemCaseSensitive(root, "logits");
    if (!cJSON_IsObject(data) || !cJSON_IsObject(logits))
        SPX_FAIL(ctx, rc, SPX_E_JSON, "%s: the baseline has no 'data'/'logits' figures (it was run without --reference)",
                 path);
    SPX_TRY(rc, get_num(ctx, path, data, "data", "ctx", &ctxv));
    SPX_TRY(rc, get_num(ctx, path, data, "data", "positions", &pos));
    SPX_TRY(rc, get_num(ctx, path, logits, "logits", "ppl_ratio", &out->ppl_ratio));
    SPX_TRY(rc, get_num(ctx, path, logits, "logits", "kl_mean", &out->kl_mean));
    SPX_TRY(rc, get_num(ctx, path, logits, "logits", "top1", &out->top1));
    if (!(ctxv >= 2 && ctxv <= 4294967295.0 && pos >= 0 && pos <= 9.0e15))
        SPX_FAIL(ctx, rc, SPX_E_JSON, "%s: baseline 'data.ctx' or 'data.positions' out of range", path);
    out->ctx = (uint32_t)ctxv;
    out->positions = (uint64_t)pos;
done:
    free(buf);
    cJSON_Delete(root);
    return rc;
}
