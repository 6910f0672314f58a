/* spx_verify_report.h: pass/fail decisions and the JSON report of `spx verify`.
 *
 * Thresholds (any may be unset = NAN):
 *   max_ppl_ratio  fails when ppl_cand / ppl_ref > max_ppl_ratio
 *   max_kl         fails when the MEAN per-position KL(ref || cand) > max_kl (nats)
 *   min_top1       fails when the top-1 agreement fraction < min_top1
 * Baseline (a previous --json report, specs/spx-verify-json.md): fails when
 *   ppl_ratio > base * (1 + tol)                  (tol relative, default 0.01)
 *   kl_mean   > base * (1 + tol) + 1e-9            (the absolute 1e-9 nats lets a zero baseline
 *                                                   absorb rounding noise)
 *   top1      < base - top1_tol                   (absolute fraction, default 0.005 = 0.5 pp)
 * or when the baseline was measured on a different setup (window length or position count).
 * Every failure is a one-line message naming the figure, e.g.
 *   "ppl ratio 5.93 > --max-ppl-ratio 1.5".
 */
#ifndef SPX_VERIFY_REPORT_H
#define SPX_VERIFY_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_probe.h"
#include "spx_verify.h"

#define SPX_VERIFY_JSON_VERSION 1
#define SPX_VERIFY_BASELINE_TOL 0.01
#define SPX_VERIFY_BASELINE_TOP1_TOL 0.005
#define SPX_VERIFY_KL_ABS_SLACK 1e-9

typedef struct spx_verify_limits {
    double max_ppl_ratio, max_kl, min_top1;   /* NAN: not checked */
} spx_verify_limits;

#define SPX_VERIFY_MAX_FAILURES 16
#define SPX_VERIFY_FAILURE_LEN 256
typedef struct spx_verify_failures {
    size_t n;
    char msg[SPX_VERIFY_MAX_FAILURES][SPX_VERIFY_FAILURE_LEN];
} spx_verify_failures;

/* Figures read back from a baseline report. */
typedef struct spx_verify_baseline {
    uint32_t ctx;
    uint64_t positions;
    double ppl_ratio, kl_mean, top1;
} spx_verify_baseline;

/* Append the threshold failures of r. */
void spx_verify_check_limits(const spx_verify_result *r, const spx_verify_limits *lim, spx_verify_failures *f);
/* Append regressions of r against b (tol relative for ppl ratio and KL, top1_tol absolute). */
void spx_verify_check_baseline(const spx_verify_result *r, const spx_verify_baseline *b, double tol, double top1_tol,
                               spx_verify_failures *f);
/* Append the probe's failure (stale, top-1 or logits) when !c->ok. */
void spx_verify_check_probe(const spx_probe_check *c, spx_verify_failures *f);

/* Read a report written by --json / --save-baseline. SPX_E_IO, SPX_E_JSON naming the file and
 * the missing or mistyped member. */
int spx_verify_baseline_load(spx_ctx *ctx, const char *path, spx_verify_baseline *out);

/* Everything the report shows; pointers may be NULL where the run did not produce the part. */
typedef struct spx_verify_report {
    const char *candidate;            /* path */
    uint32_t n_tensors;               /* integrity: tensors checked */
    uint64_t file_bytes;
    const char *reference;            /* path as given, or NULL */
    const char *data;                 /* --text/--tokens path, or NULL */
    const spx_verify_result *cmp;     /* NULL without a reference */
    const spx_probe_check *probe;     /* NULL when the file has no probe */
    const spx_verify_limits *limits;  /* may be NULL */
    const char *baseline;             /* baseline path or NULL */
    double baseline_tol, baseline_top1_tol;
    const spx_verify_failures *failures;
} spx_verify_report;

/* The report as JSON text (schema specs/spx-verify-json.md), malloc'ed, ending in "\n". */
int spx_verify_report_json(spx_ctx *ctx, const spx_verify_report *rep, char **out);
/* Write the JSON report to path (temporary file + rename). */
int spx_verify_report_save(spx_ctx *ctx, const spx_verify_report *rep, const char *path);

#endif
