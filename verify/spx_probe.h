/* spx_probe.h: embedded verification probes (`spx.verify.*` metadata, specs/spx-format.md 12.3).
 *
 * A probe is a short token sequence and what the model computed for it when the probe was
 * recorded: the argmax of the logits at every position and the full logits of the last position.
 * `spx verify FILE` re-runs the probe (one sequence from an empty cache through spx_forward, in
 * chunks of up to 64 tokens, exactly as it was recorded) and checks, with tol = spx.verify.tol:
 *   - top-1: at every position p the recorded id e_p is the argmax, or within tol of it
 *     (logit[e_p] >= max_j logit[j] - tol: a near tie that rounding may flip is accepted);
 *   - logits: max_j |logit[j] - expected[j]| <= tol at the last position.
 * The probe also records a digest of the tensors it was measured on (spx.verify.weights_crc32):
 * a file whose tensors changed afterwards (a stage copied the metadata but replaced tensors) has
 * a "stale" probe, which says nothing about its numerics.
 *
 * Keys (all written together, any previous spx.verify.* key is dropped):
 *   spx.verify.version        U32      1
 *   spx.verify.probe_tokens   ARR U32  [P] token ids, 1 <= P <= SPX_PROBE_MAX_TOKENS
 *   spx.verify.probe_top1     ARR U32  [P] argmax of the logits at each position
 *   spx.verify.probe_logits   ARR F32  [vocab] logits of the last position
 *   spx.verify.tol            F64      absolute tolerance in logit units (>= 0)
 *   spx.verify.weights_crc32  U32      spx_probe_weights_crc of the file
 */
#ifndef SPX_PROBE_H
#define SPX_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_format.h"
#include "spx_model.h"

#define SPX_PROBE_VERSION 1u
#define SPX_PROBE_MAX_TOKENS 4096u
/* Default tolerance: this fraction of max(1, max_j |expected logit j|). fp32 results of a
 * different BLAS kernel or thread count differ by ~1e-6 relative per layer; 1e-3 leaves room for
 * deep models while any real change of the weights moves logits by far more. */
#define SPX_PROBE_DEFAULT_REL_TOL 1e-3

#define SPX_PROBE_KEY_VERSION "spx.verify.version"
#define SPX_PROBE_KEY_TOKENS "spx.verify.probe_tokens"
#define SPX_PROBE_KEY_TOP1 "spx.verify.probe_top1"
#define SPX_PROBE_KEY_LOGITS "spx.verify.probe_logits"
#define SPX_PROBE_KEY_TOL "spx.verify.tol"
#define SPX_PROBE_KEY_WEIGHTS "spx.verify.weights_crc32"

typedef struct spx_probe {
    uint32_t n_tokens;        /* P */
    uint32_t *tokens;         /* [P] */
    uint32_t *top1;           /* [P] */
    uint32_t vocab;
    float *logits;            /* [vocab] last position */
    double tol;
    uint32_t weights_crc32;
} spx_probe;

typedef struct spx_probe_check {
    uint32_t positions;       /* P */
    uint32_t top1_ok;         /* positions passing the top-1 rule */
    uint32_t first_bad;       /* first failing position (valid when top1_ok < positions) */
    uint32_t bad_expected, bad_got;   /* recorded and computed argmax there */
    double max_abs_err;       /* max_j |logit - expected| at the last position */
    uint32_t worst_id;        /* its j */
    double tol;
    int stale;                /* tensors differ from those the probe was recorded on */
    int ok;                   /* !stale && top1_ok == positions && max_abs_err <= tol */
} spx_probe_check;

/* Digest of a file's tensors: CRC-32 (zlib) over, in table order, every tensor's name bytes
 * followed by its data_crc32 as 4 little-endian bytes. Metadata do not enter it, so adding a
 * probe leaves it unchanged. */
uint32_t spx_probe_weights_crc(const spx_file *f);

/* Record a probe of `m` on tokens[0..n) (1 <= n <= SPX_PROBE_MAX_TOKENS, ids < vocab: SPX_E_ARG).
 * tol < 0: SPX_PROBE_DEFAULT_REL_TOL * max(1, max |last logit|). SPX_E_NUMERIC on a non-finite
 * logit. Free with spx_probe_free. */
int spx_probe_record(spx_ctx *ctx, const spx_model *m, const uint32_t *tokens, size_t n, double tol, spx_probe *out);

/* Read the probe of `f`: SPX_E_MISSING when the file has no spx.verify.probe_tokens; SPX_E_META
 * naming the key when a key is absent, of the wrong type or size, or out of range;
 * SPX_E_UNSUPPORTED for an unknown spx.verify.version. */
int spx_probe_load(spx_ctx *ctx, const spx_file *f, spx_probe *out);

/* Re-run the probe on `m` (whose file supplies the weights digest). SPX_E_META when the probe
 * does not fit the model (vocabulary size, token ids); the outcome is in *out (rc 0 even when
 * the check fails). */
int spx_probe_run(spx_ctx *ctx, const spx_model *m, const spx_probe *p, spx_probe_check *out);

/* Write a copy of `in` (every tensor verbatim, every metadata key except spx.verify.*) plus the
 * probe's keys to out_path (temporary file + rename). */
int spx_probe_write(spx_ctx *ctx, const spx_file *in, const spx_probe *p, const char *out_path);

void spx_probe_free(spx_probe *p);

#endif
