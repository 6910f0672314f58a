/* spx_analyze.h: Wasserstein-neuron analysis of a dense model (Sparse Expansion, arXiv 2405.15756).
 *
 * For every analyzed linear layer W [rows x cols] of every block, neuron j's output over the
 * calibration tokens, y_j(x) = w_j . x (bias left out: a constant shift vanishes in the
 * normalization), forms a distribution; its exact W1 distance to N(0,1) after z-scoring
 * (spx_wasserstein.h) measures how non-Gaussian ("entangled") the neuron is.
 *
 * Driver (like the pruning driver, without pruning): the calibration windows [nsamples x seqlen]
 * are embedded, then each block runs once over every window, in place, so its output feeds the
 * next block. During that pass the forward hooks capture the inputs of the analyzed layers for a
 * deterministic subset of at most max_tokens tokens (Knuth's selection sampling, Algorithm S, with
 * spx_rng seeded by `seed`: a uniform random subset, kept in stream order). Then per layer the
 * outputs are computed in row panels, Y^T[panel x tokens] = W[panel] X^T (sgemm), and every
 * neuron's distance is evaluated.
 *
 * Memory: the residual stream nsamples*seqlen*dim floats, plus the captured inputs
 * tokens x (dim + ffn_dim) floats (tokens x (2*dim + n_heads*head_dim + ffn_dim) with the
 * attention projections), plus one output panel of at most 64 MiB (never tokens x rows at once),
 * plus 8 bytes per output neuron per analyzed layer for the results. */
#ifndef SPX_ANALYZE_H
#define SPX_ANALYZE_H

#include <stddef.h>
#include <stdint.h>

#include "spx_model.h"
#include "spx_progress.h"

/* The linear layers of a block, as bits of spx_analyze_opts.targets. */
enum {
    SPX_AN_Q = 0, SPX_AN_K, SPX_AN_V, SPX_AN_O, SPX_AN_GATE, SPX_AN_UP, SPX_AN_DOWN, SPX_AN_COUNT
};
#define SPX_AN_MLP 0x70u     /* ffn_gate, ffn_up, ffn_down (default) */
#define SPX_AN_ALL 0x7fu     /* every linear layer of the block */

/* Canonical base name ("attn_q", ..., "ffn_down") of an SPX_AN_* index; "?" when out of range. */
const char *spx_analyze_lin_name(int lin);

#define SPX_AN_HIST_BINS 64

typedef struct spx_analyze_opts {
    unsigned targets;         /* bits (1u << SPX_AN_*); 0 means SPX_AN_MLP */
    uint64_t max_tokens;      /* analyzed tokens at most (default 65536); 0 = all */
    uint64_t seed;            /* token subsampling seed */
    double threshold;         /* distance threshold for n_above / frac_above */
    uint32_t top;             /* most entangled neurons listed per layer */
    const char *dump_layer;   /* canonical tensor name ("blk.1.ffn_up.weight") to dump, or NULL */
    const char *dump_prefix;  /* dump files: PREFIX.x.f32 [tokens x cols], PREFIX.y.f32 [rows x tokens]
                                 (row j = neuron j's raw outputs), PREFIX.w1.f64 [rows],
                                 PREFIX.tok.u32 [tokens] token ids, PREFIX.idx.u64 [tokens] stream
                                 index window * seqlen + position of each analyzed token; all
                                 little-endian, written atomically */
    spx_progress progress;
} spx_analyze_opts;

#define SPX_ANALYZE_OPTS_INIT {SPX_AN_MLP, 65536u, 0u, 0.1, 10u, NULL, NULL, {NULL, NULL}}

typedef struct spx_analyze_layer {
    char name[64];            /* canonical tensor name, "blk.3.ffn_down.weight" */
    uint32_t layer;           /* block index */
    int lin;                  /* SPX_AN_* */
    uint64_t rows, cols;      /* W [rows x cols] */
    double *w1;               /* [rows] distance per neuron (0 for constant neurons) */
    uint8_t *constant;        /* [rows] 1 when the neuron's output never varies */
    double mean, median, max; /* over all rows (constant neurons count as 0); median: mean of the
                                 two middle values for even rows */
    uint64_t argmax;          /* neuron with the largest distance (lowest index on ties) */
    uint64_t n_above;         /* neurons with distance > threshold */
    double frac_above;        /* n_above / rows */
    uint64_t n_constant;
    uint32_t n_top;           /* min(top, rows) */
    uint32_t *top;            /* [n_top] neuron indices by decreasing distance (index breaks ties) */
    /* histogram of the most entangled neuron's normalized outputs z = (y - mean)/std over
     * [hist_lo, hist_hi] (its range clipped to [-10, 10], at least [-4, 4]); samples outside the
     * range are counted in hist_below / hist_above. All zero when every neuron is constant. */
    double top_mean, top_std;
    double hist_lo, hist_hi;
    uint64_t hist[SPX_AN_HIST_BINS];
    uint64_t hist_below, hist_above;
} spx_analyze_layer;

typedef struct spx_analyze_result {
    spx_analyze_layer *layers; /* [n_layers] in block order, then q, k, v, o, gate, up, down */
    size_t n_layers;
    uint64_t tokens;          /* analyzed tokens (samples per neuron) */
    uint64_t tokens_total;    /* calibration tokens seen (nsamples x seqlen) */
} spx_analyze_result;

/* Analyze `m` over windows [nsamples x seqlen]. Errors: SPX_E_ARG (no windows, empty targets,
 * dump_layer naming no analyzed layer), SPX_E_NOMEM, SPX_E_OVERFLOW, SPX_E_NUMERIC (NaN/Inf output:
 * the message names the layer and neuron), SPX_E_IO (dump files), forward errors. */
int spx_analyze_model(spx_ctx *ctx, const spx_model *m, const uint32_t *windows, uint32_t nsamples,
                      uint32_t seqlen, const spx_analyze_opts *o, spx_analyze_result **out);
void spx_analyze_result_free(spx_analyze_result *r);

/* Write one layer's figure to `path` (temporary file + rename): left, the histogram of the per-neuron
 * distances with the threshold marked; right, the normalized output histogram (density) of the
 * most entangled neuron against the N(0,1) density. Plain SVG 1.1 text. Errors: SPX_E_IO. */
int spx_analyze_write_svg(spx_ctx *ctx, const spx_analyze_layer *L, double threshold, uint64_t tokens,
                          const char *path);

#endif
