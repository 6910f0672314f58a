/* cmd_expand.c: `spx expand` - Sparse Expansion: K SparseGPT experts per MLP linear layer. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "cli_calib.h"
#include "cli_mem.h"
#include "spx_expand.h"
#include "spx_spxcopy.h"

static const char *const CMD = "expand";

static void help(void)
{
    printf("usage: spx expand IN.spx -o OUT.spx --clusters K (--sparsity S | --nm N:M)\n"
           "                  (--text FILE | --tokens FILE) [options]\n\n"
           "Sparse Expansion: for every MLP, the inputs of ffn_gate/ffn_up and, separately, of ffn_down\n"
           "are clustered (PCA + k-means over all calibration tokens); each cluster gets its own copy of the\n"
           "layer pruned by SparseGPT with a Hessian of that cluster's tokens only. At run time each token\n"
           "is routed to its nearest centroid and runs exactly one expert per linear layer. Attention stays\n"
           "dense. Blocks are processed in order: each block sees the routed, pruned output of the last.\n\n"
           "  -o, --output FILE     output .spx (written atomically)\n"
           "  --clusters K          experts per linear layer, 1..64 (default 16); K=1 is plain SparseGPT\n"
           "  --sparsity S          fraction of each expert's weights to remove, 0 <= S < 1\n"
           "  --nm N:M              keep N nonzeros in every M consecutive inputs (e.g. 2:4)\n"
           SPX_CLI_CALIB_HELP
           "  --pca-dim N           routing dimension of the gate/up router (default max(8, dim/32))\n"
           "  --pca-dim-down N      routing dimension of the down router (default max(8, ffn/32))\n"
           "  --no-pca              route in the input space\n"
           "  --kmeans-init N       k-means++ restarts (default 10; the paper's code uses 100)\n"
           "  --kmeans-seed N       k-means seed (default 0)\n"
           "  --max-fit-points N    fit k-means on at most N tokens (default all)\n"
           "  --percdamp X          SparseGPT damping (default 0.01); --blocksize N (128)\n"
           "  --encoding E          auto (smallest, default), dense, bitmask, nm, csr16, csr32\n"
           "  --truth-mod K         score the gate/up clusters against token_id %% K (the planted\n"
           "                        clusters of `spx synth --clusters K` models): ARI and purity\n"
           "  --no-check-routing    skip re-running the written file to confirm that its routing equals\n"
           "                        the expansion's cluster assignment for every calibration token\n"
           "  --json                per-block report as JSON on stdout\n"
           "  --progress            progress on stderr even when it is not a terminal\n"
           "  --max-memory SIZE     fail (exit 1) instead of using more than SIZE (512M, 2G) for the\n"
           "                        weight copies, activations, k-means data, Hessians and experts\n"
           "  --help                this text\n");
}

typedef struct expand_cli {
    const char *in, *out;
    int json, progress, encoding, have_sparsity, no_check;
    uint64_t agree, total;
    spx_cli_calib cal;
    spx_expand_opts o;
} expand_cli;

static int parse(int argc, char **argv, expand_cli *c, int *code)
{
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"clusters", required_argument, 0, 'k'},
        {"sparsity", required_argument, 0, 's'}, {"nm", required_argument, 0, 'n'},
        SPX_CLI_CALIB_OPTIONS, {"pca-dim", required_argument, 0, 'p'}, {"pca-dim-down", required_argument, 0, 'q'},
        {"no-pca", no_argument, 0, 'P'}, {"kmeans-init", required_argument, 0, 'I'},
        {"kmeans-seed", required_argument, 0, 'S'}, {"max-fit-points", required_argument, 0, 'F'},
        {"percdamp", required_argument, 0, 'd'}, {"blocksize", required_argument, 0, 'b'},
        {"encoding", required_argument, 0, 'e'}, {"json", no_argument, 0, 'j'},
        {"truth-mod", required_argument, 0, 'M'}, {"no-check-routing", no_argument, 0, 'R'},
        {"progress", no_argument, 0, 'G'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int ch;
    unsigned long long u;
    double dv;
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
        case 'R': c->no_check = 1; break;
        case 'k': case 'p': case 'q': case 'I': case 'S': case 'F': case 'b': case 'M':
            if (spx_cli_parse_u64(optarg, &u) || (ch != 'S' && (u == 0 || u > (1ull << 32) - 1)))
                return *code = spx_cli_usage_error(CMD, "option '%s' needs a positive integer, got '%s'",
                                                   argv[optind - 1], optarg), -1;
            if (ch == 'k') {
                if (u > 64)
                    return *code = spx_cli_usage_error(CMD, "--clusters must be in 1..64, got '%s'", optarg), -1;
                c->o.clusters = (uint32_t)u;
            } else if (ch == 'p') c->o.pca_dim_up = (uint32_t)u;
            else if (ch == 'q') c->o.pca_dim_down = (uint32_t)u;
            else if (ch == 'I') c->o.kmeans_init = (uint32_t)u;
            else if (ch == 'S') c->o.seed = u;
            else if (ch == 'F') c->o.max_fit_points = (size_t)u;
            else if (ch == 'M') c->o.truth_mod = (uint32_t)u;
            else c->o.p.blocksize = (int)u;
            break;
        case 's':
            if (spx_cli_parse_double(optarg, &dv) || !(dv >= 0 && dv < 1))
                return *code = spx_cli_usage_error(CMD, "--sparsity must be in [0, 1), got '%s'", optarg), -1;
            c->o.p.sparsity = dv;
            c->have_sparsity = 1;
            break;
        case 'n':
            if (spx_cli_parse_nm(optarg, &c->o.p.nm_n, &c->o.p.nm_m))
                return *code = spx_cli_usage_error(CMD, "--nm wants N:M with 1 <= N < M <= 32, got '%s'", optarg), -1;
            c->have_sparsity = 1;
            break;
        case 'P': c->o.pca = 0; break;
        case 'd':
            if (spx_cli_parse_double(optarg, &dv) || !(dv >= 0 && dv < 100))
                return *code = spx_cli_usage_error(CMD, "--percdamp must be a non-negative number"), -1;
            c->o.p.percdamp = dv;
            c->o.p.retry_damp = dv > 0 ? dv : 0.01;
            break;
        case 'e':
            c->encoding = spx_encoding_parse(optarg);
            if (c->encoding == -2)
                return *code = spx_cli_usage_error(CMD, "unknown --encoding '%s'", optarg), -1;
            break;
        case 'j': c->json = 1; break;
        case 'G': c->progress = 1; break;
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
    if (!have)
        return *code = spx_cli_usage_error(CMD, "calibration data is required: --text FILE or --tokens FILE"), -1;
    return 0;
}

static cJSON *sizes_json(const uint32_t *s, uint32_t k)
{
    cJSON *a = cJSON_CreateArray();
    for (uint32_t i = 0; i < k; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(s[i]));
    return a;
}

static void report(const expand_cli *c, const spx_expand_layer_info *inf, uint32_t n, long long bin, long long bout)
{
    if (c->json) {
        cJSON *root = cJSON_CreateObject(), *blocks = cJSON_AddArrayToObject(root, "blocks");
        cJSON_AddNumberToObject(root, "clusters", c->o.clusters);
        cJSON_AddNumberToObject(root, "nsamples", (double)c->cal.nsamples);
        cJSON_AddNumberToObject(root, "seqlen", (double)c->cal.seqlen);
        for (uint32_t l = 0; l < n; l++) {
            cJSON *b = cJSON_CreateObject();
            cJSON_AddNumberToObject(b, "layer", inf[l].layer);
            cJSON_AddNumberToObject(b, "pca_up", inf[l].pca_up);
            cJSON_AddNumberToObject(b, "pca_down", inf[l].pca_down);
            cJSON_AddItemToObject(b, "sizes_up", sizes_json(inf[l].sizes_up, inf[l].k));
            cJSON_AddItemToObject(b, "sizes_down", sizes_json(inf[l].sizes_down, inf[l].k));
            cJSON_AddNumberToObject(b, "recon_gate", inf[l].recon_gate);
            cJSON_AddNumberToObject(b, "recon_up", inf[l].recon_up);
            cJSON_AddNumberToObject(b, "recon_down", inf[l].recon_down);
            cJSON_AddNumberToObject(b, "retries", inf[l].retries);
            cJSON_AddNumberToObject(b, "fallbacks", inf[l].fallbacks);
            cJSON_AddNumberToObject(b, "kmeans_reseeds", (double)inf[l].reseeds);
            if (c->o.truth_mod) {
                cJSON_AddNumberToObject(b, "ari_up", inf[l].ari_up);
                cJSON_AddNumberToObject(b, "purity_up", inf[l].purity_up);
            }
            cJSON_AddItemToArray(blocks, b);
        }
        if (!c->no_check) {
            cJSON *r = cJSON_AddObjectToObject(root, "routing_check");
            cJSON_AddNumberToObject(r, "agree", (double)c->agree);
            cJSON_AddNumberToObject(r, "total", (double)c->total);
        }
        cJSON_AddNumberToObject(root, "bytes_in", (double)bin);
        cJSON_AddNumberToObject(root, "bytes_out", (double)bout);
        cJSON_AddStringToObject(root, "output", c->out);
        char *s = cJSON_Print(root);
        if (s)
            puts(s);
        free(s);
        cJSON_Delete(root);
        return;
    }
    printf("%-6s %4s %8s %11s %11s %11s %7s  %s\n", "block", "K", "pca", "recon_gate", "recon_up", "recon_down",
           "retries", "cluster sizes (up | down)");
    for (uint32_t l = 0; l < n; l++) {
        printf("%-6u %4u %4u/%-3u %11.5g %11.5g %11.5g %7d  ", inf[l].layer, inf[l].k, inf[l].pca_up, inf[l].pca_down,
               inf[l].recon_gate, inf[l].recon_up, inf[l].recon_down, inf[l].retries);
        for (uint32_t e = 0; e < inf[l].k; e++)
            printf("%u%s", inf[l].sizes_up[e], e + 1 < inf[l].k ? "," : " | ");
        for (uint32_t e = 0; e < inf[l].k; e++)
            printf("%u%s", inf[l].sizes_down[e], e + 1 < inf[l].k ? "," : "\n");
        if (c->o.truth_mod)
            printf("       planted clusters (token %% %u): ARI %.4f, purity %.4f\n", c->o.truth_mod, inf[l].ari_up,
                   inf[l].purity_up);
    }
    if (!c->no_check)
        printf("routing check: %llu of %llu routing decisions on the calibration tokens equal the clustering\n",
               (unsigned long long)c->agree, (unsigned long long)c->total);
    printf("expanded %u blocks into %u experts per MLP linear; %lld -> %lld bytes; wrote %s\n", n, c->o.clusters, bin,
           bout, c->out);
}

int spx_cmd_expand(int argc, char **argv)
{
    spx_ctx ctx = SPX_CTX_INIT;
    expand_cli c;
    int code = SPX_EXIT_OK, rc = 0;
    spx_model *m = NULL;
    uint32_t *windows = NULL;
    spx_expand_layer_info *inf = NULL;
    unsigned long long held = 0;
    memset(&c, 0, sizeof c);
    c.cal = (spx_cli_calib)SPX_CLI_CALIB_INIT;
    c.encoding = SPX_ENC_AUTO;
    c.o.clusters = 16;
    c.o.pca = 1;
    c.o.kmeans_init = 10;
    c.o.p.blocksize = 128;
    c.o.p.percdamp = 0.01;
    c.o.p.retry_damp = 0.01;
    c.o.p.max_retries = 8;
    if (parse(argc, argv, &c, &code) < 0)
        return code;
    if (spx_cli_progress_enabled(c.progress))
        c.o.progress.fn = spx_cli_progress;
    spx_cli_mem_init(&ctx);
    SPX_TRY(rc, spx_cli_mem_model(&ctx, c.in, SPX_MODEL_COPY_WEIGHTS, &held));
    SPX_TRY(rc, spx_model_open(&ctx, c.in, SPX_MODEL_COPY_WEIGHTS, &m));
    SPX_TRY(rc, spx_cli_calib_windows(&ctx, &c.cal, m, &windows));
    spx_cli_mem_backstop(&ctx);
    SPX_TRY(rc, spx_expand_model(&ctx, m, windows, (uint32_t)c.cal.nsamples, (uint32_t)c.cal.seqlen, &c.o, &inf));
    SPX_TRY(rc, spx_expand_write(&ctx, m, c.out, &c.o, inf, c.encoding));
    if (!c.no_check) {
        /* the check reopens the output: over the budget, the unchecked output is removed */
        rc = spx_cli_mem_model(&ctx, c.out, 0, &held);
        if (rc == 0)
            rc = spx_cli_mem_state(&ctx, m, (uint32_t)c.cal.seqlen, (uint32_t)c.cal.seqlen, 0, &held);
        if (rc < 0) {
            remove(c.out);
            goto done;
        }
        SPX_TRY(rc, spx_expand_check_routing(&ctx, c.out, windows, (uint32_t)c.cal.nsamples, (uint32_t)c.cal.seqlen, inf,
                                             &c.agree, &c.total));
        if (c.agree != c.total && remove(c.out) == 0)
            SPX_FAIL(&ctx, rc, SPX_E_VERIFY, "%s: runtime routing differs from the clustering for %llu of %llu decisions",
                     c.out, (unsigned long long)(c.total - c.agree), (unsigned long long)c.total);
    }
    struct stat si, so;
    report(&c, inf, m->cfg.n_layers, stat(c.in, &si) == 0 ? (long long)si.st_size : -1,
           stat(c.out, &so) == 0 ? (long long)so.st_size : -1);
done:
    if (rc < 0)
        code = spx_cli_fail(CMD, &ctx);
    if (m)
        spx_expand_infos_free(inf, m->cfg.n_layers);
    free(windows);
    spx_model_free(m);
    return code;
}
