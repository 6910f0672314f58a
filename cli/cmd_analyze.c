/* cmd_analyze.c: `spx analyze` - Wasserstein neurons (W1 of normalized neuron outputs to N(0,1)). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "spx_analyze.h"
#include "spx_calib.h"
#include "spx_data.h"

static const char *const CMD = "analyze";

static void help(void)
{
    printf("usage: spx analyze IN.spx (--text FILE | --tokens FILE) [options]\n\n"
           "Wasserstein neurons (Sparse Expansion, arXiv 2405.15756): for every MLP linear layer of every\n"
           "block (ffn_gate, ffn_up, ffn_down), each neuron's output y_j = w_j . x over the calibration\n"
           "tokens is normalized (z = (y - mean) / std, population std) and its exact 1-Wasserstein\n"
           "distance to N(0,1) is computed. Large distances mark non-Gaussian, \"entangled\" neurons.\n"
           "Neurons whose output never varies get distance 0 and are counted as constant.\n"
           "The dense model runs block by block over the calibration windows (as spx prune does).\n\n"
           "  --text FILE           calibration text, tokenized with the model's tokenizer\n"
           "  --tokens FILE         calibration token ids (raw little-endian), --token-width 2|4 (4)\n"
           "  --range A:B           use the fraction [A, B) of the token stream (default 0:1)\n"
           "  --nsamples N          calibration windows (default 128)\n"
           "  --seqlen N            tokens per window (default min(2048, context length))\n"
           "  --seed N              window sampling and token subsampling seed (default 0)\n"
           "  --max-tokens N        analyze at most N of the nsamples x seqlen tokens, a uniform random\n"
           "                        subset drawn with --seed (default 65536; 0 = all)\n"
           "  --all-linears         also the attention projections (attn_q/k/v/output)\n"
           "  --targets LIST        comma list of attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down\n"
           "  --top N               most entangled neurons listed per layer (default 10)\n"
           "  --threshold X         report the fraction of neurons with distance > X (default 0.1)\n"
           "  --json                print the report as JSON (schema: specs/spx-analyze-json.md)\n"
           "  --svg DIR             write DIR/<layer>.svg per layer: histogram of the distances and the\n"
           "                        most entangled neuron's output histogram against the Gaussian\n"
           "  --dump-layer NAME     debugging: write the raw data of one layer (e.g. blk.0.ffn_up.weight)\n"
           "  --dump-prefix P       ... to P.x.f32 [tokens x cols] inputs, P.y.f32 [rows x tokens] outputs,\n"
           "                        P.w1.f64 [rows] distances, P.tok.u32 [tokens] token ids, P.idx.u64\n"
           "                        [tokens] window * seqlen + position of each token (little-endian)\n"
           "  --progress            progress on stderr even when it is not a terminal\n"
           "  --help                this text\n\n"
           "Memory: the residual stream (nsamples x seqlen x dim floats) + the captured layer inputs,\n"
           "tokens x (dim + ffn_dim) floats (tokens x (2 dim + n_heads head_dim + ffn_dim) with\n"
           "--all-linears), + one output panel of at most 64 MiB. Outputs are computed in panels of\n"
           "rows, so the tokens x max(rows) floats of a whole layer's outputs are never held at once.\n"
           "Reference values: W1(N(0,1) sample of n tokens) ~ 1/sqrt(n); a normalized uniform 0.1543;\n"
           "a symmetric two-point (+1/-1) neuron 0.5354; a spike at 0 plus rare outliers approaches\n"
           "E|Z| = 0.7979.\n");
}

typedef struct analyze_cli {
    const char *in, *text, *tokens, *range, *targets, *svg_dir;
    int width, json, progress;
    unsigned long long nsamples, seqlen, seed;
    spx_analyze_opts run;
} analyze_cli;

static int parse_targets(const char *list, unsigned *mask)
{
    *mask = 0;
    for (const char *p = list; *p;) {
        size_t l = strcspn(p, ",");
        int hit = -1;
        for (int k = 0; k < SPX_AN_COUNT; k++)
            if (strlen(spx_analyze_lin_name(k)) == l && strncmp(p, spx_analyze_lin_name(k), l) == 0)
                hit = k;
        if (hit < 0)
            return spx_cli_usage_error(CMD, "--targets: unknown layer '%.*s'", (int)l, p);
        *mask |= 1u << hit;
        p += l + (p[l] == ',');
    }
    return *mask ? 0 : spx_cli_usage_error(CMD, "--targets: empty list");
}

static int parse(int argc, char **argv, analyze_cli *c, int *code)
{
    enum { O_TEXT = 256, O_TOKENS, O_WIDTH, O_RANGE, O_NSAMP, O_SEQLEN, O_SEED, O_MAXTOK, O_ALL, O_TARGETS,
           O_TOP, O_THRESH, O_JSON, O_SVG, O_DUMPL, O_DUMPP, O_PROGRESS };
    static const struct option opts[] = {
        {"text", required_argument, 0, O_TEXT}, {"tokens", required_argument, 0, O_TOKENS},
        {"token-width", required_argument, 0, O_WIDTH}, {"range", required_argument, 0, O_RANGE},
        {"nsamples", required_argument, 0, O_NSAMP}, {"seqlen", required_argument, 0, O_SEQLEN},
        {"seed", required_argument, 0, O_SEED}, {"max-tokens", required_argument, 0, O_MAXTOK},
        {"all-linears", no_argument, 0, O_ALL}, {"targets", required_argument, 0, O_TARGETS},
        {"top", required_argument, 0, O_TOP}, {"threshold", required_argument, 0, O_THRESH},
        {"json", no_argument, 0, O_JSON}, {"svg", required_argument, 0, O_SVG},
        {"dump-layer", required_argument, 0, O_DUMPL}, {"dump-prefix", required_argument, 0, O_DUMPP},
        {"progress", no_argument, 0, O_PROGRESS}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int ch, all = 0;
    unsigned long long u;
    double d;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case O_TEXT: c->text = optarg; break;
        case O_TOKENS: c->tokens = optarg; break;
        case O_WIDTH:
            if (spx_cli_parse_u64(optarg, &u) || (u != 2 && u != 4))
                return *code = spx_cli_usage_error(CMD, "--token-width must be 2 or 4"), -1;
            c->width = (int)u;
            break;
        case O_RANGE: c->range = optarg; break;
        case O_NSAMP: case O_SEQLEN: case O_SEED: case O_MAXTOK: case O_TOP:
            if (spx_cli_parse_u64(optarg, &u) || ((ch == O_NSAMP || ch == O_SEQLEN) && (u == 0 || u > (1u << 24))) ||
                (ch == O_TOP && u > (1u << 30)) || (ch == O_MAXTOK && u > 0x7fffffffu))
                return *code = spx_cli_usage_error(CMD, "%s: bad value '%s'", argv[optind - 1], optarg), -1;
            if (ch == O_NSAMP) c->nsamples = u;
            else if (ch == O_SEQLEN) c->seqlen = u;
            else if (ch == O_SEED) c->seed = u;
            else if (ch == O_MAXTOK) c->run.max_tokens = u;
            else c->run.top = (uint32_t)u;
            break;
        case O_ALL: all = 1; break;
        case O_TARGETS: c->targets = optarg; break;
        case O_THRESH:
            if (spx_cli_parse_double(optarg, &d) || !(d >= 0 && d < 1e6))
                return *code = spx_cli_usage_error(CMD, "--threshold must be a non-negative number"), -1;
            c->run.threshold = d;
            break;
        case O_JSON: c->json = 1; break;
        case O_SVG: c->svg_dir = optarg; break;
        case O_DUMPL: c->run.dump_layer = optarg; break;
        case O_DUMPP: c->run.dump_prefix = optarg; break;
        case O_PROGRESS: c->progress = 1; break;
        case 'h': help(); *code = SPX_EXIT_OK; return -1;
        case ':': return *code = spx_cli_usage_error(CMD, "option '%s' needs a value", argv[optind - 1]), -1;
        default: return *code = spx_cli_usage_error(CMD, "unknown option '%s'", argv[optind - 1]), -1;
        }
    }
    if (optind + 1 != argc)
        return *code = spx_cli_usage_error(CMD, optind >= argc ? "missing the input .spx" : "unexpected argument '%s'",
                                           argv[argc - 1]), -1;
    c->in = argv[optind];
    if (!c->text == !c->tokens)
        return *code = spx_cli_usage_error(CMD, "give calibration data: exactly one of --text FILE and --tokens FILE"),
               -1;
    if (!c->run.dump_layer != !c->run.dump_prefix)
        return *code = spx_cli_usage_error(CMD, "--dump-layer and --dump-prefix go together"), -1;
    if (all && c->targets)
        return *code = spx_cli_usage_error(CMD, "give only one of --all-linears and --targets"), -1;
    c->run.targets = all ? SPX_AN_ALL : SPX_AN_MLP;
    if (c->targets && (*code = parse_targets(c->targets, &c->run.targets)) != 0)
        return -1;
    return 0;
}

/* a layer's ranking key: decreasing value, name breaking ties */
typedef struct rank_item {
    double key;
    const char *name;
} rank_item;

static int cmp_rank(const void *a, const void *b)
{
    const rank_item *x = a, *y = b;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return strcmp(x->name, y->name);
}

static void add_summary(cJSON *root, const spx_analyze_result *r)
{
    cJSON *sum = cJSON_AddObjectToObject(root, "summary");
    rank_item *ix = malloc((r->n_layers ? r->n_layers : 1) * sizeof *ix);
    if (!ix)
        return;
    for (int by = 0; by < 2; by++) {
        cJSON *arr = cJSON_AddArrayToObject(sum, by ? "by_max" : "by_mean");
        for (size_t i = 0; i < r->n_layers; i++) {
            ix[i].key = by ? r->layers[i].max : r->layers[i].mean;
            ix[i].name = r->layers[i].name;
        }
        qsort(ix, r->n_layers, sizeof *ix, cmp_rank);
        for (size_t i = 0; i < r->n_layers; i++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(ix[i].name));
    }
    free(ix);
    const spx_analyze_layer *best = NULL;
    for (size_t i = 0; i < r->n_layers; i++)
        if (!best || r->layers[i].max > best->max)
            best = &r->layers[i];
    if (best) {
        cJSON *mo = cJSON_AddObjectToObject(sum, "most_entangled");
        cJSON_AddStringToObject(mo, "layer", best->name);
        cJSON_AddNumberToObject(mo, "index", (double)best->argmax);
        cJSON_AddNumberToObject(mo, "distance", best->max);
    }
}

static void print_json(const analyze_cli *c, const spx_analyze_result *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", "spx-analyze/1");
    cJSON_AddStringToObject(root, "model", c->in);
    cJSON_AddStringToObject(root, "metric", "w1_normal");
    cJSON_AddStringToObject(root, "normalization", "zscore_population");
    cJSON_AddNumberToObject(root, "nsamples", (double)c->nsamples);
    cJSON_AddNumberToObject(root, "seqlen", (double)c->seqlen);
    cJSON_AddNumberToObject(root, "seed", (double)c->seed);
    cJSON_AddNumberToObject(root, "max_tokens", (double)c->run.max_tokens);
    cJSON_AddNumberToObject(root, "tokens_total", (double)r->tokens_total);
    cJSON_AddNumberToObject(root, "tokens", (double)r->tokens);
    cJSON_AddNumberToObject(root, "threshold", c->run.threshold);
    cJSON_AddNumberToObject(root, "top_n", (double)c->run.top);
    cJSON *tg = cJSON_AddArrayToObject(root, "targets");
    for (int k = 0; k < SPX_AN_COUNT; k++)
        if (c->run.targets & (1u << k))
            cJSON_AddItemToArray(tg, cJSON_CreateString(spx_analyze_lin_name(k)));
    cJSON *layers = cJSON_AddArrayToObject(root, "layers");
    for (size_t i = 0; i < r->n_layers; i++) {
        const spx_analyze_layer *L = &r->layers[i];
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "name", L->name);
        cJSON_AddNumberToObject(l, "block", L->layer);
        cJSON_AddStringToObject(l, "linear", spx_analyze_lin_name(L->lin));
        cJSON_AddNumberToObject(l, "rows", (double)L->rows);
        cJSON_AddNumberToObject(l, "cols", (double)L->cols);
        cJSON_AddNumberToObject(l, "mean", L->mean);
        cJSON_AddNumberToObject(l, "median", L->median);
        cJSON_AddNumberToObject(l, "max", L->max);
        cJSON_AddNumberToObject(l, "argmax", (double)L->argmax);
        cJSON_AddNumberToObject(l, "n_above", (double)L->n_above);
        cJSON_AddNumberToObject(l, "frac_above", L->frac_above);
        cJSON_AddNumberToObject(l, "n_constant", (double)L->n_constant);
        cJSON *top = cJSON_AddArrayToObject(l, "top");
        for (uint32_t k = 0; k < L->n_top; k++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddNumberToObject(t, "index", L->top[k]);
            cJSON_AddNumberToObject(t, "distance", L->w1[L->top[k]]);
            cJSON_AddItemToArray(top, t);
        }
        cJSON *cons = cJSON_AddArrayToObject(l, "constant");
        for (uint64_t j = 0; j < L->rows; j++)
            if (L->constant[j])
                cJSON_AddItemToArray(cons, cJSON_CreateNumber((double)j));
        cJSON_AddItemToArray(layers, l);
    }
    add_summary(root, r);
    char *s = cJSON_Print(root);
    if (s)
        puts(s);
    free(s);
    cJSON_Delete(root);
}

static void print_table(const analyze_cli *c, const spx_analyze_result *r)
{
    printf("Wasserstein neurons: W1(normalized neuron output, N(0,1)) over %llu tokens (of %llu)\n",
           (unsigned long long)r->tokens, (unsigned long long)r->tokens_total);
    printf("%-26s %6s %6s %8s %8s %8s %7s %8s %6s\n", "layer", "rows", "cols", "mean", "median", "max", "argmax",
           "frac>thr", "const");
    for (size_t i = 0; i < r->n_layers; i++) {
        const spx_analyze_layer *L = &r->layers[i];
        printf("%-26s %6llu %6llu %8.4f %8.4f %8.4f %7llu %8.4f %6llu\n", L->name, (unsigned long long)L->rows,
               (unsigned long long)L->cols, L->mean, L->median, L->max, (unsigned long long)L->argmax, L->frac_above,
               (unsigned long long)L->n_constant);
    }
    printf("(frac>thr: fraction of neurons with distance > %g)\n\ntop %u neurons per layer (index:distance):\n",
           c->run.threshold, c->run.top);
    for (size_t i = 0; i < r->n_layers; i++) {
        const spx_analyze_layer *L = &r->layers[i];
        printf("%-26s", L->name);
        for (uint32_t k = 0; k < L->n_top; k++)
            printf(" %u:%.4f", L->top[k], L->w1[L->top[k]]);
        printf("\n");
    }
}

static int write_svgs(spx_ctx *ctx, const analyze_cli *c, const spx_analyze_result *r)
{
    int rc = 0;
    size_t dl = strlen(c->svg_dir);
    char *path = NULL;
    if (mkdir(c->svg_dir, 0755) != 0 && errno != EEXIST)
        return spx_err_set(ctx, SPX_E_IO, "%s: cannot create directory: %s", c->svg_dir, strerror(errno));
    path = malloc(dl + 64 + 6);
    if (!path)
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
    for (size_t i = 0; i < r->n_layers && rc == 0; i++) {
        const spx_analyze_layer *L = &r->layers[i];
        /* blk.3.ffn_up.weight -> DIR/blk.3.ffn_up.svg */
        size_t nl = strlen(L->name);
        if (nl > 7 && strcmp(L->name + nl - 7, ".weight") == 0)
            nl -= 7;
        snprintf(path, dl + 70, "%s/%.*s.svg", c->svg_dir, (int)nl, L->name);
        rc = spx_analyze_write_svg(ctx, L, c->run.threshold, r->tokens, path);
    }
    free(path);
    return rc;
}

int spx_cmd_analyze(int argc, char **argv)
{
    spx_ctx ctx = SPX_CTX_INIT;
    analyze_cli c;
    spx_analyze_opts defaults = SPX_ANALYZE_OPTS_INIT;
    int code = SPX_EXIT_OK, rc = 0;
    spx_model *m = NULL;
    uint32_t *ids = NULL, *windows = NULL;
    size_t nids = 0;
    spx_analyze_result *res = NULL;
    memset(&c, 0, sizeof c);
    c.width = 4;
    c.nsamples = 128;
    c.run = defaults;
    if (parse(argc, argv, &c, &code) < 0)
        return code;
    c.run.seed = c.seed;
    if (spx_cli_progress_enabled(c.progress))
        c.run.progress.fn = spx_cli_progress;
    SPX_TRY(rc, spx_model_open(&ctx, c.in, 0, &m));
    if (!c.seqlen)
        c.seqlen = m->cfg.context_length && m->cfg.context_length < 2048 ? m->cfg.context_length : 2048;
    spx_data_spec ds = SPX_DATA_SPEC_INIT;
    spx_calib_opts co = {(uint32_t)c.nsamples, (uint32_t)c.seqlen, c.seed};
    ds.text_path = c.text;
    ds.tokens_path = c.tokens;
    ds.token_width = c.width;
    if (c.range)
        SPX_TRY(rc, spx_calib_parse_range(&ctx, c.range, &ds.lo, &ds.hi));
    SPX_TRY(rc, spx_data_load(&ctx, m->file, m->cfg.vocab_size, &ds, &ids, &nids));
    SPX_TRY(rc, spx_calib_windows(&ctx, ids, nids, &co, &windows));
    SPX_TRY(rc, spx_analyze_model(&ctx, m, windows, (uint32_t)c.nsamples, (uint32_t)c.seqlen, &c.run, &res));
    if (c.progress || spx_cli_progress_enabled(0))
        fputc('\n', stderr);
    if (c.svg_dir)
        SPX_TRY(rc, write_svgs(&ctx, &c, res));
    if (c.json)
        print_json(&c, res);
    else
        print_table(&c, res);
done:
    if (rc < 0)
        code = spx_cli_fail(CMD, &ctx);
    spx_analyze_result_free(res);
    free(ids);
    free(windows);
    spx_model_free(m);
    return code;
}
