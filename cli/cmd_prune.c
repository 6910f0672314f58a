/* cmd_prune.c: `spx prune` - one-shot pruning (SparseGPT, Wanda, magnitude) of a .spx model. */
#include <fnmatch.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cli_calib.h"
#include "cli_mem.h"
#include "spx_prune_run.h"
#include "spx_prune_write.h"
#include "spx_spxcopy.h"

static const char *const CMD = "prune";

static void help(void)
{
    printf("usage: spx prune IN.spx -o OUT.spx [--method sparsegpt|wanda|magnitude]\n"
           "                 (--sparsity S | --nm N:M) [--text FILE | --tokens FILE] [options]\n\n"
           "One-shot pruning of every linear layer of the transformer blocks (never the embeddings or\n"
           "the classifier), block by block: each block sees the outputs of the already pruned blocks.\n\n"
           "  -o, --output FILE     output .spx (written atomically)\n"
           "  --method M            sparsegpt (default), wanda or magnitude\n"
           "  --sparsity S          fraction of weights to remove, 0 <= S < 1 (e.g. 0.5)\n"
           "  --nm N:M              semi-structured: keep N nonzeros in every M consecutive inputs (2:4)\n"
           SPX_CLI_CALIB_HELP
           "  --percdamp X          SparseGPT damping, fraction of mean(diag H) (default 0.01)\n"
           "  --blocksize N         SparseGPT column block (default 128)\n"
           "  --max-retries N       SparseGPT damping retries when Cholesky fails (default 8)\n"
           "  --no-true-sequential  SparseGPT: one calibration pass per block instead of per group\n"
           "  --targets LIST        comma list of attn_q,attn_k,attn_v,attn_output,ffn_gate,ffn_up,ffn_down\n"
           "                        (default all)\n"
           "  --ignore GLOB         leave tensors matching GLOB dense (repeatable), e.g. 'blk.0.*'\n"
           "  --encoding E          auto (smallest, default), dense, bitmask, nm, csr16, csr32\n"
           "  --json                print the per-layer report as JSON on stdout\n"
           "  --progress            progress on stderr even when it is not a terminal\n"
           "  --max-memory SIZE     fail (exit 1) instead of using more than SIZE (512M, 2G) for the\n"
           "                        weight copies, activations, Hessians and SparseGPT factors\n"
           "  --help                this text\n\n"
           "Magnitude pruning needs no data; with data its reconstruction error is reported.\n"
           "Per layer the report gives the sparsity reached, ||WX - W'X||^2/||WX||^2 on the calibration\n"
           "inputs and SparseGPT's damping retries.\n");
}

typedef struct prune_cli {
    const char *in, *out, *targets;
    const char *ignore[64];
    int n_ignore, json, progress, encoding;
    spx_cli_calib cal;
    spx_prune_run_opts run;
    int have_sparsity;
} prune_cli;

static int skip_tensor(void *ud, const char *name)
{
    const prune_cli *c = ud;
    for (int i = 0; i < c->n_ignore; i++)
        if (fnmatch(c->ignore[i], name, 0) == 0)
            return 1;
    if (c->targets) {
        /* name is blk.N.<base>.weight: find <base> in the comma list */
        const char *b = strchr(name + 4, '.');
        if (!b)
            return 1;
        b++;
        size_t bl = strcspn(b, ".");
        for (const char *p = c->targets; *p;) {
            size_t l = strcspn(p, ",");
            if (l == bl && strncmp(p, b, l) == 0)
                return 0;
            p += l + (p[l] == ',');
        }
        return 1;
    }
    return 0;
}

static int add_meta(void *ud, spx_writer *w)
{
    const prune_cli *c = ud;
    static const char *const mnames[] = {"sparsegpt", "wanda", "magnitude"};
    const char *m = mnames[c->run.method];
    int rc = spx_writer_meta_str(w, "spx.prune.method", m, strlen(m));
    if (rc == 0)
        rc = spx_writer_meta_f64(w, "spx.prune.sparsity", c->run.p.nm_m ? 1.0 - (double)c->run.p.nm_n / c->run.p.nm_m
                                                                         : c->run.p.sparsity);
    if (rc == 0)
        rc = spx_writer_meta_u32(w, "spx.prune.nm_n", (uint32_t)c->run.p.nm_n);
    if (rc == 0)
        rc = spx_writer_meta_u32(w, "spx.prune.nm_m", (uint32_t)c->run.p.nm_m);
    if (rc == 0)
        rc = spx_writer_meta_u32(w, "spx.prune.nsamples", (uint32_t)c->cal.nsamples);
    if (rc == 0)
        rc = spx_writer_meta_u32(w, "spx.prune.seqlen", (uint32_t)c->cal.seqlen);
    if (rc == 0)
        rc = spx_writer_meta_u64(w, "spx.prune.seed", c->cal.seed);
    if (rc == 0 && c->run.method == SPX_PRUNE_SPARSEGPT)
        rc = spx_writer_meta_f64(w, "spx.prune.percdamp", c->run.p.percdamp);
    return rc;
}

static int parse(int argc, char **argv, prune_cli *c, int *code)
{
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"method", required_argument, 0, 'm'},
        {"sparsity", required_argument, 0, 's'}, {"nm", required_argument, 0, 'n'},
        SPX_CLI_CALIB_OPTIONS, {"percdamp", required_argument, 0, 'p'},
        {"blocksize", required_argument, 0, 'b'}, {"max-retries", required_argument, 0, 'R'},
        {"no-true-sequential", no_argument, 0, 'q'}, {"targets", required_argument, 0, 'g'},
        {"ignore", required_argument, 0, 'i'}, {"encoding", required_argument, 0, 'e'},
        {"json", no_argument, 0, 'j'}, {"progress", no_argument, 0, 'P'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int ch;
    unsigned long long u;
    double d;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        int cr = spx_cli_calib_opt(&c->cal, ch, optarg, CMD);
        if (cr == 1)
            continue;
        if (cr != 0)
            return *code = cr, -1;
        switch (ch) {
        case 'o': c->out = optarg; break;
        case 'm':
            if (strcmp(optarg, "sparsegpt") == 0) c->run.method = SPX_PRUNE_SPARSEGPT;
            else if (strcmp(optarg, "wanda") == 0) c->run.method = SPX_PRUNE_WANDA;
            else if (strcmp(optarg, "magnitude") == 0) c->run.method = SPX_PRUNE_MAGNITUDE;
            else return *code = spx_cli_usage_error(CMD, "unknown --method '%s' (sparsegpt, wanda, magnitude)", optarg), -1;
            break;
        case 's':
            if (spx_cli_parse_double(optarg, &d) || !(d >= 0 && d < 1))
                return *code = spx_cli_usage_error(CMD, "--sparsity must be in [0, 1), got '%s'", optarg), -1;
            c->run.p.sparsity = d;
            c->have_sparsity = 1;
            break;
        case 'n':
            if (spx_cli_parse_nm(optarg, &c->run.p.nm_n, &c->run.p.nm_m))
                return *code = spx_cli_usage_error(CMD, "--nm wants N:M with 1 <= N < M <= 32, got '%s'", optarg), -1;
            c->have_sparsity = 1;
            break;
        case 'b': case 'R':
            if (spx_cli_parse_u64(optarg, &u) || (ch == 'b' && u == 0) || u > (1u << 24))
                return *code = spx_cli_usage_error(CMD, "%s needs a %s integer, got '%s'",
                                                   ch == 'b' ? "--blocksize" : "--max-retries",
                                                   ch == 'b' ? "positive" : "non-negative", optarg), -1;
            if (ch == 'b') c->run.p.blocksize = (int)u;
            else c->run.p.max_retries = (int)u;
            break;
        case 'p':
            if (spx_cli_parse_double(optarg, &d) || !(d >= 0 && d < 100))
                return *code = spx_cli_usage_error(CMD, "--percdamp must be a non-negative number"), -1;
            c->run.p.percdamp = d;
            c->run.p.retry_damp = d > 0 ? d : 0.01;
            break;
        case 'q': c->run.true_sequential = 0; break;
        case 'g': c->targets = optarg; break;
        case 'i':
            if (c->n_ignore >= 64)
                return *code = spx_cli_usage_error(CMD, "too many --ignore patterns (64 at most)"), -1;
            c->ignore[c->n_ignore++] = optarg;
            break;
        case 'e':
            c->encoding = spx_encoding_parse(optarg);
            if (c->encoding == -2)
                return *code = spx_cli_usage_error(CMD, "unknown --encoding '%s'", optarg), -1;
            break;
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
    if (!c->have_sparsity)
        return *code = spx_cli_usage_error(CMD, "give --sparsity S or --nm N:M"), -1;
    int have = spx_cli_calib_check(&c->cal, CMD);
    if (have == SPX_EXIT_USAGE)
        return *code = have, -1;
    if (!have && c->run.method != SPX_PRUNE_MAGNITUDE)
        return *code = spx_cli_usage_error(CMD, "%s needs calibration data: --text FILE or --tokens FILE",
                                           c->run.method == SPX_PRUNE_WANDA ? "wanda" : "sparsegpt"), -1;
    if (c->targets)
        for (const char *p = c->targets; *p;) {
            size_t l = strcspn(p, ",");
            int ok = 0;
            for (int k = 0; k < SPX_LIN_COUNT; k++)
                ok |= strlen(spx_lin_base(k)) == l && strncmp(p, spx_lin_base(k), l) == 0;
            if (!ok)
                return *code = spx_cli_usage_error(CMD, "--targets: unknown layer '%.*s'", (int)l, p), -1;
            p += l + (p[l] == ',');
        }
    return 0;
}

static void print_report(const prune_cli *c, const spx_prune_layer_info *inf, size_t n, const int *enc,
                         long long bytes_in, long long bytes_out)
{
    uint64_t numel = 0, zeros = 0;
    for (size_t i = 0; i < n; i++) {
        numel += inf[i].rep.numel;
        zeros += inf[i].rep.zeros;
    }
    double total = numel ? (double)zeros / (double)numel : 0.0;
    if (c->json) {
        cJSON *root = cJSON_CreateObject(), *layers = cJSON_AddArrayToObject(root, "layers");
        static const char *const mnames[] = {"sparsegpt", "wanda", "magnitude"};
        cJSON_AddStringToObject(root, "method", mnames[c->run.method]);
        if (c->run.p.nm_m) {
            char nm[32];
            snprintf(nm, sizeof nm, "%d:%d", c->run.p.nm_n, c->run.p.nm_m);
            cJSON_AddStringToObject(root, "nm", nm);
        } else {
            cJSON_AddNumberToObject(root, "target_sparsity", c->run.p.sparsity);
        }
        cJSON_AddNumberToObject(root, "nsamples", (double)c->cal.nsamples);
        cJSON_AddNumberToObject(root, "seqlen", (double)c->cal.seqlen);
        cJSON_AddNumberToObject(root, "seed", (double)c->cal.seed);
        for (size_t i = 0; i < n; i++) {
            cJSON *l = cJSON_CreateObject();
            cJSON_AddStringToObject(l, "name", inf[i].name);
            cJSON_AddNumberToObject(l, "rows", (double)inf[i].rows);
            cJSON_AddNumberToObject(l, "cols", (double)inf[i].cols);
            cJSON_AddNumberToObject(l, "sparsity", inf[i].rep.sparsity);
            if (isnan(inf[i].recon_err))
                cJSON_AddNullToObject(l, "recon_err");
            else
                cJSON_AddNumberToObject(l, "recon_err", inf[i].recon_err);
            cJSON_AddNumberToObject(l, "retries", inf[i].rep.retries);
            cJSON_AddNumberToObject(l, "dead_inputs", (double)inf[i].rep.dead);
            cJSON_AddNumberToObject(l, "tokens", (double)inf[i].tokens);
            cJSON_AddStringToObject(l, "encoding", spx_encoding_name(enc[i]));
            cJSON_AddItemToArray(layers, l);
        }
        cJSON_AddNumberToObject(root, "sparsity", total);
        cJSON_AddNumberToObject(root, "bytes_in", (double)bytes_in);
        cJSON_AddNumberToObject(root, "bytes_out", (double)bytes_out);
        cJSON_AddStringToObject(root, "output", c->out);
        char *s = cJSON_Print(root);
        if (s)
            puts(s);
        free(s);
        cJSON_Delete(root);
        return;
    }
    printf("%-28s %7s %7s %9s %12s %7s %8s\n", "layer", "rows", "cols", "sparsity", "recon_err", "retries", "encoding");
    for (size_t i = 0; i < n; i++)
        printf("%-28s %7llu %7llu %9.4f %12.6g %7d %8s\n", inf[i].name, (unsigned long long)inf[i].rows,
               (unsigned long long)inf[i].cols, inf[i].rep.sparsity, inf[i].recon_err, inf[i].rep.retries,
               spx_encoding_name(enc[i]));
    printf("pruned %zu layers: sparsity %.4f of their weights; %lld -> %lld bytes (%.3fx); wrote %s\n", n, total,
           bytes_in, bytes_out, bytes_out ? (double)bytes_in / (double)bytes_out : 0.0, c->out);
}

int spx_cmd_prune(int argc, char **argv)
{
    spx_ctx ctx = SPX_CTX_INIT;
    prune_cli c;
    int code = SPX_EXIT_OK, rc = 0;
    spx_model *m = NULL;
    uint32_t *windows = NULL;
    size_t ninf = 0;
    spx_prune_layer_info *inf = NULL;
    int *enc = NULL;
    unsigned long long held = 0;
    memset(&c, 0, sizeof c);
    c.cal = (spx_cli_calib)SPX_CLI_CALIB_INIT;
    c.encoding = SPX_ENC_AUTO;
    c.run.method = SPX_PRUNE_SPARSEGPT;
    c.run.true_sequential = 1;
    c.run.p.blocksize = 128;
    c.run.p.percdamp = 0.01;
    c.run.p.retry_damp = 0.01;
    c.run.p.max_retries = 8;
    if (parse(argc, argv, &c, &code) < 0)
        return code;
    c.run.skip = skip_tensor;
    c.run.skip_ud = &c;
    if (spx_cli_progress_enabled(c.progress))
        c.run.progress.fn = spx_cli_progress;
    spx_cli_mem_init(&ctx);
    SPX_TRY(rc, spx_cli_mem_model(&ctx, c.in, SPX_MODEL_COPY_WEIGHTS, &held));
    SPX_TRY(rc, spx_model_open(&ctx, c.in, SPX_MODEL_COPY_WEIGHTS, &m));
    if (c.cal.text || c.cal.tokens)
        SPX_TRY(rc, spx_cli_calib_windows(&ctx, &c.cal, m, &windows));
    else
        c.cal.nsamples = 0;
    spx_cli_mem_backstop(&ctx);
    SPX_TRY(rc, spx_prune_model(&ctx, m, windows, (uint32_t)c.cal.nsamples, (uint32_t)c.cal.seqlen, &c.run, &inf,
                                &ninf));
    enc = calloc(ninf ? ninf : 1, sizeof *enc);
    if (!enc)
        SPX_FAIL(&ctx, rc, SPX_E_NOMEM, "out of memory");
    spx_prune_write_opts wo = {c.encoding, c.run.p.nm_n, c.run.p.nm_m, add_meta, &c};
    SPX_TRY(rc, spx_prune_write(&ctx, m, c.out, inf, ninf, &wo, enc));
    struct stat si, so;
    print_report(&c, inf, ninf, enc, stat(c.in, &si) == 0 ? (long long)si.st_size : -1,
                 stat(c.out, &so) == 0 ? (long long)so.st_size : -1);
done:
    if (rc < 0)
        code = spx_cli_fail(CMD, &ctx);
    free(enc);
    free(inf);
    free(windows);
    spx_model_free(m);
    return code;
}
