/* cmd_moefy.c: `spx moefy` - neuron experts with trained gating predictors (MoEfication, DSTI, LTE). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cli_mem.h"
#include "spx_mem.h"
#include "spx_calib.h"
#include "spx_data.h"
#include "spx_ffn_pad.h"
#include "spx_moefy_run.h"

static const char *const CMD = "moefy";

static void help(void)
{
    printf("usage: spx moefy IN.spx -o OUT.spx --experts E (--text FILE | --tokens FILE) [options]\n\n"
           "Splits every FFN's intermediate neurons into E equal-size experts and trains a router per\n"
           "block that predicts, from the FFN input, which experts a token needs. The dense model runs\n"
           "block by block on calibration windows (nothing is pruned). OUT.spx holds the input's tensors\n"
           "with permuted ffn_gate/ffn_up rows and ffn_down columns (expert e owns neurons [e*B, (e+1)*B),\n"
           "B = ffn/E), the routers blk.N.ffn_router.* and the spx.gate.* metadata.\n\n"
           "  -o, --output FILE     output .spx (written atomically)\n"
           "  --experts E           experts per FFN; when E does not divide the FFN width f, the FFN is\n"
           "                        first padded with zero neurons to E * ceil(f / E) (same function;\n"
           "                        recorded as spx.moefy.ffn_unpadded)\n"
           "  --split S             param (default): balanced k-means of the normalized W_gate rows\n"
           "                        (W_up without GLU); coact: balanced k-means of the rows of the\n"
           "                        cosine-normalized co-activation matrix of the calibration tokens\n"
           "  --router R            moe (default): MoEfication MLP d->E tanh E->E, BCE to the expert's\n"
           "                        activation mass, top-k experts at inference;\n"
           "                        dsti: MLP d->128 ReLU ->E, |.| output, MSE to each expert's output\n"
           "                        norm, smallest set covering tau of the predicted total;\n"
           "                        lte: per-expert sigmoid gates, BCE to the oracle set covering\n"
           "                        --lte-cover of the mass + l1*mean(G^2) + l2*(1/4-(G-threshold)^2)\n"
           "  --top-k K             moe: experts per token (default max(1, E/4))\n"
           "  --tau T               dsti: share of the predicted total norm to keep (default 0.9)\n"
           "  --threshold X         lte: gate threshold (default 0.5)\n"
           "  --l1 X, --l2 X        lte: efficiency and separability weights (default 0.01, 0.01)\n"
           "  --lte-cover F         lte: oracle target coverage of the activation mass (default 0.9)\n"
           "  --hidden N            dsti: hidden width (default 128)\n"
           "  --input-norm on|off   unit-normalize the router input (default on)\n"
           "  --epochs N            maximum epochs (default 30)\n"
           "  --lr X                Adam learning rate (default 0.01 moe, 0.001 dsti/lte)\n"
           "  --batch N             mini-batch rows (default 512)\n"
           "  --patience N          early stopping patience on the held-out loss (default 5; 0 = off)\n"
           "  --holdout F           held-out fraction of the calibration tokens (default 0.1)\n"
           "  --kmeans-init N       balanced k-means restarts (default 10)\n"
           "  --seed S              seed of token subsampling, k-means, init and shuffling (default 0)\n"
           "  --text FILE           calibration text, tokenized with the model's tokenizer\n"
           "  --tokens FILE         calibration token ids (raw little-endian), --token-width 2|4 (4)\n"
           "  --range A:B           use the fraction [A, B) of the token stream (default 0:1)\n"
           "  --nsamples N          calibration windows (default 128; drawn with --seed as spx prune does)\n"
           "  --seqlen N            tokens per window (default min(512, context length))\n"
           "  --max-tokens N        tokens kept for training, uniformly subsampled (default 65536)\n"
           "  --json                print the per-layer report (with loss history) as JSON on stdout\n"
           "  --progress            per-epoch losses and progress on stderr even when not a terminal\n"
           "  --max-memory SIZE     fail (exit 1) instead of using more than SIZE (512M, 2G) for the\n"
           "                        decoded weights, activations and router training data\n"
           "  --help                this text\n\n"
           "Report per block: train/held-out loss of the kept epoch, epochs run, recall of the oracle's\n"
           "top-k experts on held-out tokens (k = experts the router selected; oracle = largest\n"
           "activation mass sum|a|), the random-choice recall k/E, the selected fraction and the share\n"
           "of the activation mass the selected experts carry.\n");
}

typedef struct moefy_cli {
    const char *in, *out, *text, *tokens, *range;
    int width, json, progress, have_topk, have_tau, have_thr, have_l12, have_cover, have_hidden, have_lr;
    unsigned long long nsamples, seqlen;
    spx_moefy_opts o;
    cJSON *hist;                /* [n_layers] arrays of epochs (json) */
    uint32_t ffn_unpadded;      /* the input's FFN width when it was padded, else 0 */
} moefy_cli;

static int parse_num(const char *s, double lo, double hi, double *out)
{
    return spx_cli_parse_double(s, out) == 0 && *out >= lo && *out <= hi ? 0 : -1;
}

static int parse(int argc, char **argv, moefy_cli *c, int *code)
{
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"experts", required_argument, 0, 'E'},
        {"split", required_argument, 0, 's'}, {"router", required_argument, 0, 'r'},
        {"top-k", required_argument, 0, 'k'}, {"tau", required_argument, 0, 'u'},
        {"threshold", required_argument, 0, 'x'}, {"l1", required_argument, 0, '1'},
        {"l2", required_argument, 0, '2'}, {"lte-cover", required_argument, 0, 'c'},
        {"hidden", required_argument, 0, 'H'}, {"input-norm", required_argument, 0, 'n'},
        {"epochs", required_argument, 0, 'e'}, {"lr", required_argument, 0, 'l'},
        {"batch", required_argument, 0, 'b'}, {"patience", required_argument, 0, 'p'},
        {"holdout", required_argument, 0, 'O'}, {"kmeans-init", required_argument, 0, 'K'},
        {"seed", required_argument, 0, 'S'}, {"text", required_argument, 0, 't'},
        {"tokens", required_argument, 0, 'T'}, {"token-width", required_argument, 0, 'w'},
        {"range", required_argument, 0, 'R'}, {"nsamples", required_argument, 0, 'N'},
        {"seqlen", required_argument, 0, 'L'}, {"max-tokens", required_argument, 0, 'M'},
        {"json", no_argument, 0, 'j'}, {"progress", no_argument, 0, 'P'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int ch, kind = SPX_ROUTER_MOE;
    unsigned long long u, experts = 0, topk = 0, epochs = 30, batch = 512, patience = 5, hidden = 128, kinit = 10,
                          seed = 0, maxtok = 65536;
    double tau = 0.9, thr = 0.5, l1 = 0.01, l2 = 0.01, cover = 0.9, lr = 0, holdout = 0.1;
    int split = SPX_SPLIT_PARAM, inorm = 1;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'o': c->out = optarg; break;
        case 's':
            if ((split = spx_moefy_split_parse(optarg)) < 0)
                return *code = spx_cli_usage_error(CMD, "unknown --split '%s' (param, coact)", optarg), -1;
            break;
        case 'r':
            if ((kind = spx_router_kind_parse(optarg)) < 0)
                return *code = spx_cli_usage_error(CMD, "unknown --router '%s' (moe, dsti, lte)", optarg), -1;
            break;
        case 'E': case 'k': case 'e': case 'b': case 'p': case 'H': case 'K': case 'S': case 'N': case 'L': case 'M':
            if (spx_cli_parse_u64(optarg, &u) || (ch != 'S' && ch != 'p' && u == 0) || (ch != 'S' && u > (1u << 24)))
                return *code = spx_cli_usage_error(CMD, "option '%s' needs a positive integer, got '%s'",
                                                   argv[optind - 1], optarg), -1;
            if (ch == 'E') experts = u;
            else if (ch == 'k') topk = u, c->have_topk = 1;
            else if (ch == 'e') epochs = u;
            else if (ch == 'b') batch = u;
            else if (ch == 'p') patience = u;
            else if (ch == 'H') hidden = u, c->have_hidden = 1;
            else if (ch == 'K') kinit = u;
            else if (ch == 'S') seed = u;
            else if (ch == 'N') c->nsamples = u;
            else if (ch == 'L') c->seqlen = u;
            else maxtok = u;
            break;
        case 'u': case 'x': case '1': case '2': case 'c': case 'l': case 'O': {
            /* value ranges per option: tau (0, 1], threshold (0, 1), weights >= 0, cover (0, 1],
             * lr > 0, holdout [0, 0.9] */
            double lo = ch == '1' || ch == '2' || ch == 'O' ? 0.0 : ch == 'l' ? 1e-12 : 1e-9;
            double hi = ch == 'x' ? 1.0 - 1e-9 : ch == '1' || ch == '2' ? 1e6 : ch == 'l' ? 10.0 : ch == 'O' ? 0.9 : 1.0;
            double v;
            if (parse_num(optarg, lo, hi, &v) < 0)
                return *code = spx_cli_usage_error(CMD, "option '%s': value '%s' out of range [%g, %g]",
                                                   argv[optind - 1], optarg, lo, hi), -1;
            if (ch == 'u') tau = v, c->have_tau = 1;
            else if (ch == 'x') thr = v, c->have_thr = 1;
            else if (ch == '1') l1 = v, c->have_l12 = 1;
            else if (ch == '2') l2 = v, c->have_l12 = 1;
            else if (ch == 'c') cover = v, c->have_cover = 1;
            else if (ch == 'l') lr = v, c->have_lr = 1;
            else holdout = v;
            break;
        }
        case 'n':
            if (strcmp(optarg, "on") == 0) inorm = 1;
            else if (strcmp(optarg, "off") == 0) inorm = 0;
            else return *code = spx_cli_usage_error(CMD, "--input-norm wants on or off, got '%s'", optarg), -1;
            break;
        case 't': c->text = optarg; break;
        case 'T': c->tokens = optarg; break;
        case 'w':
            if (spx_cli_parse_u64(optarg, &u) || (u != 2 && u != 4))
                return *code = spx_cli_usage_error(CMD, "--token-width must be 2 or 4"), -1;
            c->width = (int)u;
            break;
        case 'R': c->range = optarg; break;
        case 'j': c->json = 1; break;
        case 'P': c->progress = 1; break;
        case 'h': help(); *code = SPX_EXIT_OK; return -1;
        case ':': return *code = spx_cli_usage_error(CMD, "option '%s' needs a value", argv[optind - 1]), -1;
        default: return *code = spx_cli_usage_error(CMD, "unknown option '%s'", argv[optind - 1]), -1;
        }
    }
    if (optind + 1 != argc)
        return *code = spx_cli_usage_error(CMD, optind >= argc ? "missing the input .spx" : "unexpected argument '%s'",
                                           argv[argc - 1]), -1;
    c->in = argv[optind];
    if (!c->out)
        return *code = spx_cli_usage_error(CMD, "missing -o OUT.spx"), -1;
    if (!experts)
        return *code = spx_cli_usage_error(CMD, "missing --experts E"), -1;
    if (!c->text == !c->tokens)
        return *code = spx_cli_usage_error(CMD, "give exactly one of --text FILE and --tokens FILE"), -1;
    if ((c->have_topk && kind != SPX_ROUTER_MOE) || (c->have_tau && kind != SPX_ROUTER_DSTI) ||
        ((c->have_thr || c->have_l12 || c->have_cover) && kind != SPX_ROUTER_LTE) ||
        (c->have_hidden && kind != SPX_ROUTER_DSTI))
        return *code = spx_cli_usage_error(CMD, "an option does not apply to --router %s", spx_router_kind_name(kind)),
               -1;
    if (hidden > 65536)   /* the format's bound on the router hidden width */
        return *code = spx_cli_usage_error(CMD, "--hidden must be at most 65536"), -1;
    if (topk > experts)
        return *code = spx_cli_usage_error(CMD, "--top-k %llu exceeds --experts %llu", topk, experts), -1;
    spx_moefy_opts_init(&c->o, kind);
    c->o.experts = (uint32_t)experts;
    c->o.split = split;
    c->o.kmeans_init = (uint32_t)kinit;
    c->o.gate.top_k = topk ? (uint32_t)topk : (experts / 4 ? (uint32_t)(experts / 4) : 1u);
    c->o.gate.tau = tau;
    c->o.gate.threshold = thr;
    c->o.input_norm = inorm;
    c->o.hidden = (uint32_t)hidden;
    c->o.max_tokens = maxtok;
    c->o.lte_cover = cover;
    c->o.seed = seed;
    c->o.train.epochs = (uint32_t)epochs;
    c->o.train.batch = (uint32_t)batch;
    c->o.train.patience = (uint32_t)patience;
    c->o.train.holdout = holdout;
    c->o.train.loss.l1 = l1;
    c->o.train.loss.l2 = l2;
    if (c->have_lr)
        c->o.train.lr = lr;
    return 0;
}

static void log_epoch(void *ud, uint32_t layer, const spx_router_epoch *e)
{
    moefy_cli *c = ud;
    if (c->progress && e->epoch == 0)
        fprintf(stderr, "block %u initial held-out loss %.6g\n", layer, e->heldout_loss);
    else if (c->progress)
        fprintf(stderr, "block %u epoch %2u: train %.6g held-out %.6g%s (%.2f s)\n", layer, e->epoch, e->train_loss,
                e->heldout_loss, e->improved ? " *" : "", e->seconds);
    if (c->hist) {
        cJSON *arr = cJSON_GetArrayItem(c->hist, (int)layer), *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "epoch", e->epoch);
        if (isnan(e->train_loss)) cJSON_AddNullToObject(o, "train_loss");
        else cJSON_AddNumberToObject(o, "train_loss", e->train_loss);
        if (isnan(e->heldout_loss)) cJSON_AddNullToObject(o, "heldout_loss");
        else cJSON_AddNumberToObject(o, "heldout_loss", e->heldout_loss);
        cJSON_AddNumberToObject(o, "seconds", e->seconds);
        if (arr)
            cJSON_AddItemToArray(arr, o);
        else
            cJSON_Delete(o);
    }
}

static void block_done(void *ud, const char *stage, unsigned long long done, unsigned long long total)
{
    (void)ud;
    fprintf(stderr, "%s %llu/%llu done\n", stage, done, total);
}

static int add_meta(void *ud, spx_writer *w)
{
    const moefy_cli *c = ud;
    const char *s = spx_moefy_split_name(c->o.split);
    int rc = spx_writer_meta_str(w, "spx.moefy.split", s, strlen(s));
    if (rc == 0) rc = spx_writer_meta_u64(w, "spx.moefy.seed", c->o.seed);
    if (rc == 0) rc = spx_writer_meta_u32(w, "spx.moefy.nsamples", (uint32_t)c->nsamples);
    if (rc == 0) rc = spx_writer_meta_u32(w, "spx.moefy.seqlen", (uint32_t)c->seqlen);
    if (rc == 0 && c->ffn_unpadded) rc = spx_writer_meta_u32(w, "spx.moefy.ffn_unpadded", c->ffn_unpadded);
    return rc;
}

static void num_or_null(cJSON *o, const char *k, double v)
{
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
    else cJSON_AddNullToObject(o, k);
}

static void print_report(moefy_cli *c, const spx_moefy_result *r)
{
    double mrec = 0, mrnd = 0, mcov = 0;
    for (uint32_t l = 0; l < r->n_layers; l++) {
        mrec += r->layers[l].eval.recall / r->n_layers;
        mrnd += r->layers[l].eval.random_recall / r->n_layers;
        mcov += r->layers[l].eval.mass_cov / r->n_layers;
    }
    if (c->json) {
        cJSON *root = cJSON_CreateObject(), *layers = cJSON_AddArrayToObject(root, "layers");
        cJSON_AddStringToObject(root, "router", spx_router_kind_name(c->o.gate.kind));
        cJSON_AddStringToObject(root, "split", spx_moefy_split_name(c->o.split));
        cJSON_AddNumberToObject(root, "experts", c->o.experts);
        cJSON_AddNumberToObject(root, "expert_size", r->ffn / r->experts);
        cJSON_AddNumberToObject(root, "ffn", r->ffn);
        if (c->ffn_unpadded) cJSON_AddNumberToObject(root, "ffn_unpadded", c->ffn_unpadded);
        if (c->o.gate.kind == SPX_ROUTER_MOE) cJSON_AddNumberToObject(root, "top_k", c->o.gate.top_k);
        if (c->o.gate.kind == SPX_ROUTER_DSTI) cJSON_AddNumberToObject(root, "tau", c->o.gate.tau);
        if (c->o.gate.kind == SPX_ROUTER_LTE) cJSON_AddNumberToObject(root, "threshold", c->o.gate.threshold);
        cJSON_AddNumberToObject(root, "tokens", (double)r->tokens);
        cJSON_AddNumberToObject(root, "heldout_tokens", (double)r->heldout);
        for (uint32_t l = 0; l < r->n_layers; l++) {
            const spx_moefy_layer *L = &r->layers[l];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "layer", l);
            num_or_null(o, "train_loss", L->train.train_loss);
            num_or_null(o, "heldout_loss", L->train.heldout_loss);
            num_or_null(o, "init_heldout_loss", L->train.init_heldout_loss);
            cJSON_AddNumberToObject(o, "epochs", L->train.epochs);
            cJSON_AddNumberToObject(o, "best_epoch", L->train.best_epoch);
            cJSON_AddNumberToObject(o, "recall", L->eval.recall);
            cJSON_AddNumberToObject(o, "random_recall", L->eval.random_recall);
            cJSON_AddNumberToObject(o, "selected_fraction", L->eval.sel_frac);
            cJSON_AddNumberToObject(o, "mass_coverage", L->eval.mass_cov);
            cJSON_AddNumberToObject(o, "split_inertia", L->split.inertia);
            cJSON_AddNumberToObject(o, "split_seconds", L->split_seconds);
            cJSON_AddNumberToObject(o, "train_seconds", L->train.seconds);
            cJSON_AddNumberToObject(o, "seconds_per_epoch", L->train.epochs ? L->train.seconds / L->train.epochs : 0);
            if (c->o.split == SPX_SPLIT_COACT) cJSON_AddNumberToObject(o, "dead_neurons", L->split.dead);
            cJSON *h = cJSON_DetachItemFromArray(c->hist, 0);
            cJSON_AddItemToObject(o, "history", h ? h : cJSON_CreateArray());
            cJSON_AddItemToArray(layers, o);
        }
        cJSON_AddNumberToObject(root, "recall", mrec);
        cJSON_AddNumberToObject(root, "random_recall", mrnd);
        cJSON_AddNumberToObject(root, "mass_coverage", mcov);
        cJSON_AddStringToObject(root, "output", c->out);
        char *s = cJSON_Print(root);
        if (s)
            puts(s);
        free(s);
        cJSON_Delete(root);
        return;
    }
    printf("%-5s %7s %12s %12s %6s %8s %8s %8s %8s %9s\n", "block", "epochs", "train_loss", "heldout_loss", "best",
           "recall", "random", "sel_frac", "mass_cov", "s/epoch");
    for (uint32_t l = 0; l < r->n_layers; l++) {
        const spx_moefy_layer *L = &r->layers[l];
        printf("%-5u %7u %12.6g %12.6g %6u %8.4f %8.4f %8.4f %8.4f %9.4f\n", l, L->train.epochs, L->train.train_loss,
               L->train.heldout_loss, L->train.best_epoch, L->eval.recall, L->eval.random_recall, L->eval.sel_frac,
               L->eval.mass_cov, L->train.epochs ? L->train.seconds / L->train.epochs : 0.0);
    }
    if (c->ffn_unpadded)
        printf("FFN padded with zero neurons: %u -> %u\n", c->ffn_unpadded, r->ffn);
    printf("%s router, %s split, %u experts of %u neurons, %llu tokens (%llu held out): mean recall %.4f "
           "(random %.4f), mass coverage %.4f; wrote %s\n",
           spx_router_kind_name(c->o.gate.kind), spx_moefy_split_name(c->o.split), r->experts, r->ffn / r->experts,
           (unsigned long long)r->tokens, (unsigned long long)r->heldout, mrec, mrnd, mcov, c->out);
}

/* Open the input; when --experts does not divide its FFN width, open a zero-padded copy instead
 * (written next to the output and unlinked as soon as it is mapped, so nothing is left behind). */
static int open_padded(spx_ctx *ctx, moefy_cli *c, spx_model **m)
{
    int rc = 0;
    spx_file *f = NULL;
    spx_model_config cfg;
    char *pad = NULL;
    size_t n;
    uint32_t nf = 0;
    SPX_TRY(rc, spx_file_open(ctx, c->in, 0, &f));
    SPX_TRY(rc, spx_config_from_file(ctx, f, &cfg));
    if (c->o.experts > cfg.ffn_dim)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "--experts %u exceeds the FFN width %u", c->o.experts, cfg.ffn_dim);
    if (c->o.experts == 0 || cfg.ffn_dim % c->o.experts == 0) {
        SPX_TRY(rc, spx_model_open_file(ctx, &f, 0, m));
        goto done;
    }
    n = strlen(c->out) + 48;
    pad = malloc(n);
    if (!pad)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    snprintf(pad, n, "%s.ffnpad.%ld", c->out, (long)getpid());
    rc = spx_ffn_pad_write(ctx, f, pad, c->o.experts, &nf);
    if (rc == 0)
        rc = spx_model_open(ctx, pad, 0, m);
    unlink(pad);   /* the map stays valid */
    if (rc < 0)
        goto done;
    c->ffn_unpadded = cfg.ffn_dim;
    (void)nf;
done:
    spx_file_free(f);
    free(pad);
    return rc;
}

int spx_cmd_moefy(int argc, char **argv)
{
    spx_ctx ctx = SPX_CTX_INIT;
    moefy_cli c;
    int code = SPX_EXIT_OK, rc = 0;
    spx_model *m = NULL;
    uint32_t *ids = NULL, *windows = NULL;
    size_t nids = 0;
    spx_moefy_result *res = NULL;
    unsigned long long held = 0;
    memset(&c, 0, sizeof c);
    c.width = 4;
    c.nsamples = 128;
    if (parse(argc, argv, &c, &code) < 0)
        return code;
    /* progress: per-epoch loss lines and one line per finished block (no '\r' counter, which the
     * epoch lines would break) */
    c.progress = spx_cli_progress_enabled(c.progress);
    if (c.progress)
        c.o.progress.fn = block_done;
    spx_cli_mem_init(&ctx);
    SPX_TRY(rc, spx_cli_mem_model(&ctx, c.in, 0, &held));
    SPX_TRY(rc, open_padded(&ctx, &c, &m));
    if (!c.seqlen)
        c.seqlen = m->cfg.context_length && m->cfg.context_length < 512 ? m->cfg.context_length : 512;
    spx_data_spec ds = SPX_DATA_SPEC_INIT;
    spx_calib_opts co = {(uint32_t)c.nsamples, (uint32_t)c.seqlen, c.o.seed};
    ds.text_path = c.text;
    ds.tokens_path = c.tokens;
    ds.token_width = c.width;
    if (c.range)
        SPX_TRY(rc, spx_calib_parse_range(&ctx, c.range, &ds.lo, &ds.hi));
    SPX_TRY(rc, spx_data_load(&ctx, m->file, m->cfg.vocab_size, &ds, &ids, &nids));
    SPX_TRY(rc, spx_calib_windows(&ctx, ids, nids, &co, &windows));
    spx_cli_mem_backstop(&ctx);
    if (c.json) {
        c.hist = cJSON_CreateArray();
        for (uint32_t l = 0; c.hist && l < m->cfg.n_layers; l++)
            cJSON_AddItemToArray(c.hist, cJSON_CreateArray());
    }
    c.o.log = (c.progress || c.json) ? log_epoch : NULL;
    c.o.log_ud = &c;
    SPX_TRY(rc, spx_moefy_model(&ctx, m, windows, (uint32_t)c.nsamples, (uint32_t)c.seqlen, &c.o, &res));
    /* the writer permutes one [ffn x dim] weight at a time through two fp32 buffers */
    SPX_TRY(rc, spx_mem_reserve(&ctx, &held, 2ull * m->cfg.ffn_dim * m->cfg.dim * 4u,
                                "permuted weight buffers (2 x %u x %u fp32)", m->cfg.ffn_dim, m->cfg.dim));
    SPX_TRY(rc, spx_moefy_write(&ctx, m, c.out, res, &c.o, add_meta, &c));
    print_report(&c, res);
done:
    if (rc < 0)
        code = spx_cli_fail(CMD, &ctx);
    cJSON_Delete(c.hist);
    spx_moefy_result_free(res);
    free(ids);
    free(windows);
    spx_model_free(m);
    return code;
}
