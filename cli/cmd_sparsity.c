/* cmd_sparsity.c: `spx sparsity` - PPL-p% activation sparsity (Sparsing Law) of a dense .spx. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "spx_calib.h"
#include "spx_data.h"
#include "spx_model.h"
#include "spx_sparsity.h"

static const char *const CMD = "sparsity";

static void help(void)
{
    printf("usage: spx sparsity IN.spx --ppl-tolerance P%% (--text FILE | --tokens FILE) [options]\n\n"
           "PPL-p%% activation sparsity (Sparsing Law): thresholds on the FFN hidden activations\n"
           "a = act(gate x) * up x chosen through CETT, the largest global CETT target c whose\n"
           "perplexity stays within (1 + p/100) x the dense perplexity. For a target c every block takes\n"
           "the largest threshold T (65,536 candidates between the smallest neuron output norm\n"
           "|a_j| ||W_down[:,j]|| and its 99th percentile) whose mean relative output error\n"
           "||sum_{norm_j <= T} a_j W_down[:,j]|| / ||sum_j a_j W_down[:,j]|| is <= c on the fitting\n"
           "tokens; at inference activations with |a_j| <= T / ||W_down[:,j]|| are zeroed. c is found by\n"
           "bisection on [0, 1]. Nothing is written: the report gives the thresholds and the sparsity.\n\n"
           "  --ppl-tolerance P%%    allowed perplexity increase, e.g. 1%% (or 1)\n"
           "  --text FILE           text, tokenized with the model's tokenizer (BOS at the start)\n"
           "  --tokens FILE         token ids (raw little-endian), --token-width 2|4 (default 4)\n"
           "  --fit-range A:B       fraction of the token stream for fitting thresholds (default 0:0.5)\n"
           "  --eval-range A:B      fraction of the token stream for perplexity (default 0.5:1)\n"
           "  --same-data           fit and evaluate on --fit-range (the paper's protocol)\n"
           "  --nsamples N          fitting windows drawn from the fit range (default 32)\n"
           "  --seqlen N            tokens per fitting window (default min(256, context length))\n"
           "  --seed N              fitting window sampling seed (default 0)\n"
           "  --ctx N               perplexity window length (default min(512, context length))\n"
           "  --max-windows N       evaluate at most N perplexity windows (default all)\n"
           "  --iters N             bisection steps on c (default 12)\n"
           "  --json                print the report as JSON (specs/spx-sparsity-json.md)\n"
           "  --progress            progress on stderr even when it is not a terminal\n"
           "  --help                this text\n\n"
           "Sparsity is the fraction of hidden values that are zero after thresholding on the\n"
           "evaluation tokens (exact zeros of ReLU count too; 'dense' gives that fraction without\n"
           "thresholds). The last line of the text output is 'PPL-p%% sparsity = x.xxxx'.\n");
}

typedef struct sp_cli {
    const char *in, *text, *tokens, *fit_range, *eval_range;
    int width, json, progress, same;
    double tol_pct;               /* p */
    unsigned long long nsamples, seqlen, seed, ctx, max_windows, iters;
} sp_cli;

static int parse_pct(const char *s, double *out)
{
    char buf[64];
    size_t n = strlen(s);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, s, n + 1);
    if (buf[n - 1] == '%')
        buf[n - 1] = '\0';
    return spx_cli_parse_double(buf, out) == 0 && *out > 0.0 && *out <= 1e6 ? 0 : -1;
}

static int parse(int argc, char **argv, sp_cli *c, int *code)
{
    static const struct option opts[] = {
        {"ppl-tolerance", required_argument, 0, 'p'}, {"text", required_argument, 0, 't'},
        {"tokens", required_argument, 0, 'T'}, {"token-width", required_argument, 0, 'w'},
        {"fit-range", required_argument, 0, 'f'}, {"eval-range", required_argument, 0, 'e'},
        {"same-data", no_argument, 0, 's'}, {"nsamples", required_argument, 0, 'N'},
        {"seqlen", required_argument, 0, 'L'}, {"seed", required_argument, 0, 'S'},
        {"ctx", required_argument, 0, 'C'}, {"max-windows", required_argument, 0, 'W'},
        {"iters", required_argument, 0, 'I'}, {"json", no_argument, 0, 'j'},
        {"progress", no_argument, 0, 'P'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    unsigned long long u;
    double lo, hi;
    spx_ctx ctx = SPX_CTX_INIT;
    memset(c, 0, sizeof *c);
    c->width = 4;
    c->nsamples = 32;
    c->iters = 12;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'h': help(); *code = SPX_EXIT_OK; return -1;
        case 'j': c->json = 1; break;
        case 'P': c->progress = 1; break;
        case 's': c->same = 1; break;
        case 't': c->text = optarg; break;
        case 'T': c->tokens = optarg; break;
        case 'p':
            if (parse_pct(optarg, &c->tol_pct))
                return *code = spx_cli_usage_error(CMD, "--ppl-tolerance needs a percentage > 0 such as 1%%, got '%s'",
                                                   optarg), -1;
            break;
        case 'f': case 'e':
            if (spx_calib_parse_range(&ctx, optarg, &lo, &hi) < 0)
                return *code = spx_cli_usage_error(CMD, "%s needs A:B with 0 <= A < B <= 1, got '%s'",
                                                   ch == 'f' ? "--fit-range" : "--eval-range", optarg), -1;
            if (ch == 'f') c->fit_range = optarg;
            else c->eval_range = optarg;
            break;
        case 'w': case 'N': case 'L': case 'S': case 'C': case 'W': case 'I':
            if (spx_cli_parse_u64(optarg, &u) || (ch != 'S' && ch != 'W' && u == 0) || (ch != 'S' && u > (1u << 24)))
                return *code = spx_cli_usage_error(CMD, "option '%s' needs a positive integer, got '%s'",
                                                   argv[optind - 1], optarg), -1;
            if (ch == 'w' && u != 2 && u != 4)
                return *code = spx_cli_usage_error(CMD, "--token-width must be 2 or 4, got '%s'", optarg), -1;
            if (ch == 'C' && u < 2)
                return *code = spx_cli_usage_error(CMD, "--ctx must be >= 2, got '%s'", optarg), -1;
            if (ch == 'w') c->width = (int)u;
            else if (ch == 'N') c->nsamples = u;
            else if (ch == 'L') c->seqlen = u;
            else if (ch == 'S') c->seed = u;
            else if (ch == 'C') c->ctx = u;
            else if (ch == 'W') c->max_windows = u;
            else c->iters = u;
            break;
        case ':':
            return *code = spx_cli_usage_error(CMD, "option '%s' needs a value", argv[optind - 1]), -1;
        default:
            return *code = spx_cli_usage_error(CMD, "unknown option '%s'", argv[optind - 1]), -1;
        }
    }
    for (int i = optind; i < argc; i++) {
        if (c->in)
            return *code = spx_cli_usage_error(CMD, "unexpected argument '%s'", argv[i]), -1;
        c->in = argv[i];
    }
    if (!c->in)
        return *code = spx_cli_usage_error(CMD, "missing the model file"), -1;
    if (!(c->tol_pct > 0.0))
        return *code = spx_cli_usage_error(CMD, "--ppl-tolerance P%% is required"), -1;
    if (!c->text == !c->tokens)
        return *code = spx_cli_usage_error(CMD, "give exactly one of --text FILE or --tokens FILE"), -1;
    if (c->same && c->eval_range)
        return *code = spx_cli_usage_error(CMD, "--same-data evaluates on --fit-range: drop --eval-range"), -1;
    return 0;
}

static int load_range(spx_ctx *ctx, const sp_cli *c, const spx_model *m, const char *range, const char *def,
                      uint32_t **ids, size_t *n, double *lo, double *hi)
{
    int rc = 0;
    spx_data_spec ds = SPX_DATA_SPEC_INIT;
    ds.text_path = c->text;
    ds.tokens_path = c->tokens;
    ds.token_width = c->width;
    SPX_TRY(rc, spx_calib_parse_range(ctx, range ? range : def, &ds.lo, &ds.hi));
    *lo = ds.lo;
    *hi = ds.hi;
    SPX_TRY(rc, spx_data_load(ctx, m->file, m->cfg.vocab_size, &ds, ids, n));
done:
    return rc;
}

static void print_json(const sp_cli *c, const spx_sparsity_result *r, const double *fr, const double *er,
                       unsigned long long seqlen, unsigned long long ctxlen)
{
    printf("{\"schema\": \"spx-sparsity\", \"version\": 1, \"model\": \"");
    for (const char *p = c->in; *p; p++)   /* JSON string escape of the path */
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if ((unsigned char)*p < 0x20) printf("\\u%04x", (unsigned)(unsigned char)*p);
        else putchar(*p);
    printf("\",\n \"tolerance_pct\": %.10g, \"cett\": %.10g, \"ppl_dense\": %.10g, \"ppl_sparse\": %.10g, "
           "\"ppl_ratio\": %.10g,\n \"sparsity\": %.10g, \"dense_sparsity\": %.10g, \"same_data\": %s,\n",
           c->tol_pct, r->cett, r->ppl_dense, r->ppl_sparse, r->ratio, r->sparsity, r->dense_sparsity,
           c->same ? "true" : "false");
    printf(" \"fit\": {\"range\": [%.10g, %.10g], \"nsamples\": %llu, \"seqlen\": %llu, \"seed\": %llu, "
           "\"tokens\": %llu},\n",
           fr[0], fr[1], c->nsamples, seqlen, c->seed, (unsigned long long)r->fit_tokens);
    printf(" \"eval\": {\"range\": [%.10g, %.10g], \"ctx\": %llu, \"tokens\": %llu},\n", er[0], er[1], ctxlen,
           (unsigned long long)r->eval_tokens);
    printf(" \"layers\": [");
    for (uint32_t l = 0; l < r->n_layers; l++)
        printf("%s\n  {\"layer\": %u, \"threshold\": %.10g, \"cett\": %.10g, \"sparsity\": %.10g}", l ? "," : "", l,
               r->threshold[l], r->layer_cett[l], r->layer_sparsity[l]);
    printf("],\n \"steps\": [");
    for (uint32_t i = 0; i < r->n_steps; i++) {
        const spx_sparsity_step *s = &r->steps[i];
        printf("%s\n  {\"c\": %.10g, \"ppl\": ", i ? "," : "", s->c);
        if (isfinite(s->ppl)) printf("%.10g, \"ratio\": %.10g", s->ppl, s->ratio);
        else printf("null, \"ratio\": null");
        printf(", \"sparsity\": %.10g, \"accepted\": %s}", s->sparsity, s->accepted ? "true" : "false");
    }
    printf("]}\n");
}

static void print_text(const sp_cli *c, const spx_sparsity_result *r, const double *fr, const double *er,
                       unsigned long long seqlen, unsigned long long ctxlen)
{
    printf("model      %s\n", c->in);
    printf("fit        %llu tokens: %llu windows x %llu from [%g, %g) of the stream (seed %llu)\n",
           (unsigned long long)r->fit_tokens, c->nsamples, seqlen, fr[0], fr[1], c->seed);
    printf("eval       %llu predicted tokens, windows of %llu from [%g, %g)%s\n", (unsigned long long)r->eval_tokens,
           ctxlen, er[0], er[1], c->same ? " (the fitting data, --same-data)" : " (disjoint from the fit range)");
    printf("search     c      ppl        ratio    sparsity\n");
    for (uint32_t i = 0; i < r->n_steps; i++)
        printf("           %.4f %-10.4f %.5f  %.4f %s\n", r->steps[i].c, r->steps[i].ppl, r->steps[i].ratio,
               r->steps[i].sparsity, r->steps[i].accepted ? "ok" : "over");
    printf("layer  threshold     cett     sparsity\n");
    for (uint32_t l = 0; l < r->n_layers; l++)
        printf("%5u  %-12.6g  %.5f  %.4f\n", l, r->threshold[l], r->layer_cett[l], r->layer_sparsity[l]);
    printf("CETT c     %.6f\n", r->cett);
    printf("PPL        dense %.4f, thresholded %.4f (ratio %.5f, limit %.5f)\n", r->ppl_dense, r->ppl_sparse, r->ratio,
           1.0 + c->tol_pct / 100.0);
    printf("dense      %.4f of the hidden activations are exactly zero without thresholds\n", r->dense_sparsity);
    printf("PPL-%g%% sparsity = %.4f\n", c->tol_pct, r->sparsity);
}

int spx_cmd_sparsity(int argc, char **argv)
{
    spx_ctx ctx = SPX_CTX_INIT;
    sp_cli c;
    int code = SPX_EXIT_OK, rc = 0;
    spx_model *m = NULL;
    uint32_t *fit_ids = NULL, *eval_ids = NULL, *windows = NULL;
    size_t nfit = 0, neval = 0;
    double fr[2], er[2];
    spx_sparsity_result *r = NULL;
    spx_progress prog = {NULL, NULL};
    spx_sparsity_opts so;
    unsigned long long seqlen, ctxlen, clen;
    if (parse(argc, argv, &c, &code) < 0)
        return code;
    SPX_TRY(rc, spx_model_open(&ctx, c.in, 0, &m));
    clen = m->cfg.context_length ? m->cfg.context_length : 512;
    seqlen = c.seqlen ? c.seqlen : (clen < 256 ? clen : 256);
    ctxlen = c.ctx ? c.ctx : (clen < 512 ? clen : 512);
    SPX_TRY(rc, load_range(&ctx, &c, m, c.fit_range, "0:0.5", &fit_ids, &nfit, &fr[0], &fr[1]));
    if (c.same) {
        eval_ids = fit_ids;
        neval = nfit;
        er[0] = fr[0];
        er[1] = fr[1];
    } else {
        SPX_TRY(rc, load_range(&ctx, &c, m, c.eval_range, "0.5:1", &eval_ids, &neval, &er[0], &er[1]));
    }
    {
        spx_calib_opts co = {(uint32_t)c.nsamples, (uint32_t)seqlen, c.seed};
        SPX_TRY(rc, spx_calib_windows(&ctx, fit_ids, nfit, &co, &windows));
    }
    so.tolerance = c.tol_pct / 100.0;
    so.iters = (uint32_t)c.iters;
    so.ctx = (uint32_t)ctxlen;
    so.max_windows = c.max_windows;
    if (neval < ctxlen)
        SPX_FAIL(&ctx, rc, SPX_E_DATA, "%s: %zu evaluation tokens, fewer than one window of %llu (use a smaller --ctx)",
                 c.text ? c.text : c.tokens, neval, ctxlen);
    if (spx_cli_progress_enabled(c.progress))
        prog.fn = spx_cli_progress;
    SPX_TRY(rc, spx_sparsity_search(&ctx, m, windows, (size_t)c.nsamples, (uint32_t)seqlen, eval_ids, neval, &so, &prog,
                                    &r));
    if (prog.fn)
        fprintf(stderr, "\n");
    if (c.json)
        print_json(&c, r, fr, er, seqlen, ctxlen);
    else
        print_text(&c, r, fr, er, seqlen, ctxlen);
done:
    if (eval_ids != fit_ids)
        free(eval_ids);
    free(fit_ids);
    free(windows);
    spx_sparsity_result_free(r);
    spx_model_free(m);
    if (rc < 0)
        return spx_cli_fail(CMD, &ctx);
    return code;
}
