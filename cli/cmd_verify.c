/* cmd_verify.c: `spx verify` - integrity, numerical comparison with a reference, thresholds,
 * baselines and embedded probes (engine in verify/spx_verify.h, verify/spx_probe.h). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_mem.h"
#include "spx_calib.h"
#include "spx_convert.h"
#include "spx_data.h"
#include "spx_nonfinite.h"
#include "spx_probe.h"
#include "spx_tokenizer.h"
#include "spx_verify.h"
#include "spx_verify_report.h"

static const char *const CMD = "verify";

static void help(void)
{
    printf("usage: spx verify CANDIDATE.spx --reference REF (--text FILE | --tokens FILE) [options]\n"
           "       spx verify CANDIDATE.spx                      (re-run the embedded probe)\n"
           "       spx verify IN.spx --embed-probe (--prompt TEXT | --text FILE | --tokens FILE) -o OUT.spx\n\n"
           "Checks the candidate's integrity (every checksum and encoding invariant, as 'spx inspect\n"
           "--check'), re-runs its embedded probe when it has one, and with --reference compares both\n"
           "models on the same non-overlapping windows of --ctx tokens (the 'spx ppl' protocol):\n"
           "per block the relative error ||y_c - y_r|| / ||y_r|| of the attention and MLP outputs with\n"
           "both blocks fed the reference's residual stream (errors do not compound), per differing\n"
           "linear layer the error of W_c x vs W_r x on the reference's inputs, and on the logits\n"
           "KL(ref || cand) per position (mean, max, 99.9th percentile), top-1 agreement and both\n"
           "perplexities with their ratio cand/ref.\n\n"
           "options:\n"
           "  --reference REF        reference model: a .spx, or a checkpoint (Hugging Face directory,\n"
           "                         .safetensors, llama2.c .bin) converted to a temporary .spx\n"
           "  --text FILE            evaluation text, tokenized with the candidate's tokenizer\n"
           "  --tokens FILE          raw little-endian token ids; --token-width 2|4 (default 4)\n"
           "  --range A:B            use the fraction [A, B) of the token stream (default 0:1)\n"
           "  --ctx N                window length (default min(512, context_length))\n"
           "  --max-windows N        compare at most the first N windows (default all)\n"
           "  --no-linears           skip the per-linear-layer figures (faster)\n"
           "  --max-ppl-ratio X      fail when ppl_cand / ppl_ref > X\n"
           "  --max-kl X             fail when the MEAN per-position KL(ref || cand) > X nats\n"
           "  --min-top1 X           fail when the top-1 agreement fraction < X\n"
           "  --save-baseline FILE   write the figures (the --json report) to FILE\n"
           "  --baseline FILE        fail when a figure regressed against FILE (a saved report):\n"
           "  --baseline-tol X       relative tolerance on ppl ratio and mean KL (default 0.01)\n"
           "  --baseline-top1-tol X  absolute tolerance on top-1 agreement (default 0.005)\n"
           "  --embed-probe          write a copy of the input with an embedded probe to -o OUT.spx:\n"
           "  --prompt TEXT          probe tokens: TEXT tokenized (with BOS when the tokenizer adds it)\n"
           "  --probe-len N          with --text/--tokens: the first N tokens (default 32, max 4096)\n"
           "  --probe-tol X          absolute logit tolerance (default 1e-3 * max(1, max |logit|))\n"
           "  -o, --output FILE      output of --embed-probe\n"
           "  --json                 print the report as JSON (specs/spx-verify-json.md)\n"
           "  --progress             progress on stderr even when it is not a terminal\n"
           "  --threads N            threads of the linear layers (kernels and OpenBLAS; default: the\n"
           "                         number of online CPUs)\n"
           "  -h, --help             this text\n\n"
           "Exit status: 0 pass, 1 failed check or data error (every failure is printed on stderr as\n"
           "'spx verify: FAIL: <figure> ...'), 2 usage error. The last line of the text report is\n"
           "'result     PASS' or 'result     FAIL (N failures)'.\n");
}

typedef struct verify_cli {
    const char *cand, *ref, *text, *tokens, *range, *save_baseline, *baseline, *prompt, *out;
    int width, json, progress, embed, no_linears;
    unsigned long long ctx, max_windows, probe_len, threads;
    double baseline_tol, baseline_top1_tol, probe_tol;
    spx_verify_limits lim;
} verify_cli;

static int parse_num(const char *opt, const char *val, double lo, double *out, int *code)
{
    double d;
    if (spx_cli_parse_double(val, &d) || !(d >= lo) || !isfinite(d)) {
        *code = spx_cli_usage_error(CMD, "%s needs a number >= %g, got '%s'", opt, lo, val);
        return -1;
    }
    *out = d;
    return 0;
}

static int parse(int argc, char **argv, verify_cli *c, int *code)
{
    static const struct option opts[] = {
        {"reference", required_argument, 0, 'r'}, {"text", required_argument, 0, 't'},
        {"tokens", required_argument, 0, 'T'}, {"token-width", required_argument, 0, 'w'},
        {"range", required_argument, 0, 'R'}, {"ctx", required_argument, 0, 'c'},
        {"max-windows", required_argument, 0, 'W'}, {"no-linears", no_argument, 0, 'n'},
        {"max-ppl-ratio", required_argument, 0, 'p'}, {"max-kl", required_argument, 0, 'k'},
        {"min-top1", required_argument, 0, '1'}, {"save-baseline", required_argument, 0, 's'},
        {"baseline", required_argument, 0, 'b'}, {"baseline-tol", required_argument, 0, 'B'},
        {"baseline-top1-tol", required_argument, 0, 'A'}, {"embed-probe", no_argument, 0, 'e'},
        {"prompt", required_argument, 0, 'P'}, {"probe-len", required_argument, 0, 'L'},
        {"probe-tol", required_argument, 0, 'O'}, {"output", required_argument, 0, 'o'},
        {"json", no_argument, 0, 'j'}, {"progress", no_argument, 0, 'g'}, {"help", no_argument, 0, 'h'},
        {"threads", required_argument, 0, 'N'},
        {0, 0, 0, 0}};
    int ch;
    unsigned long long u;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'r': c->ref = optarg; break;
        case 't': c->text = optarg; break;
        case 'T': c->tokens = optarg; break;
        case 'R': c->range = optarg; break;
        case 's': c->save_baseline = optarg; break;
        case 'b': c->baseline = optarg; break;
        case 'P': c->prompt = optarg; break;
        case 'o': c->out = optarg; break;
        case 'n': c->no_linears = 1; break;
        case 'e': c->embed = 1; break;
        case 'j': c->json = 1; break;
        case 'g': c->progress = 1; break;
        case 'w':
            if (spx_cli_parse_u64(optarg, &u) || (u != 2 && u != 4))
                return *code = spx_cli_usage_error(CMD, "--token-width must be 2 or 4, got '%s'", optarg), -1;
            c->width = (int)u;
            break;
        case 'N':
            if (spx_cli_parse_u64(optarg, &u) || u < 1 || u > SPX_KERN_MAX_THREADS)
                return *code = spx_cli_usage_error(CMD, "--threads must be in 1..%d, got '%s'", SPX_KERN_MAX_THREADS,
                                                   optarg), -1;
            c->threads = u;
            break;
        case 'c': case 'W': case 'L':
            if (spx_cli_parse_u64(optarg, &u) || (ch == 'c' && (u < 2 || u > (1u << 24))) ||
                (ch == 'L' && (u < 1 || u > SPX_PROBE_MAX_TOKENS)))
                return *code = spx_cli_usage_error(CMD, "%s: invalid value '%s'", argv[optind - 1], optarg), -1;
            if (ch == 'c') c->ctx = u;
            else if (ch == 'W') c->max_windows = u;
            else c->probe_len = u;
            break;
        case 'p': if (parse_num("--max-ppl-ratio", optarg, 0, &c->lim.max_ppl_ratio, code)) return -1; break;
        case 'k': if (parse_num("--max-kl", optarg, 0, &c->lim.max_kl, code)) return -1; break;
        case '1': if (parse_num("--min-top1", optarg, 0, &c->lim.min_top1, code)) return -1; break;
        case 'B': if (parse_num("--baseline-tol", optarg, 0, &c->baseline_tol, code)) return -1; break;
        case 'A': if (parse_num("--baseline-top1-tol", optarg, 0, &c->baseline_top1_tol, code)) return -1; break;
        case 'O': if (parse_num("--probe-tol", optarg, 0, &c->probe_tol, code)) return -1; break;
        case 'h': help(); *code = SPX_EXIT_OK; return -1;
        case ':': return *code = spx_cli_usage_error(CMD, "option '%s' needs a value", argv[optind - 1]), -1;
        default: return *code = spx_cli_usage_error(CMD, "unknown option '%s'", argv[optind - 1]), -1;
        }
    }
    if (optind + 1 != argc)
        return *code = spx_cli_usage_error(CMD, optind >= argc ? "missing the candidate .spx"
                                                               : "unexpected argument '%s'", argv[argc - 1]), -1;
    c->cand = argv[optind];
    if (c->text && c->tokens)
        return *code = spx_cli_usage_error(CMD, "give only one of --text and --tokens"), -1;
    if (c->embed) {
        if (!c->out)
            return *code = spx_cli_usage_error(CMD, "--embed-probe needs -o OUT.spx"), -1;
        if (!!c->prompt + !!c->text + !!c->tokens != 1)
            return *code = spx_cli_usage_error(CMD, "--embed-probe needs exactly one of --prompt, --text, --tokens"), -1;
        if (c->ref || c->baseline || c->save_baseline || !isnan(c->lim.max_ppl_ratio) || !isnan(c->lim.max_kl) ||
            !isnan(c->lim.min_top1))
            return *code = spx_cli_usage_error(CMD, "--embed-probe takes no --reference, thresholds or baselines"), -1;
        return 0;
    }
    if (c->out || c->prompt)
        return *code = spx_cli_usage_error(CMD, "-o and --prompt go with --embed-probe"), -1;
    if (c->ref && !c->text && !c->tokens)
        return *code = spx_cli_usage_error(CMD, "--reference needs data: --text FILE or --tokens FILE"), -1;
    if (!c->ref && (c->text || c->tokens || c->baseline || c->save_baseline || !isnan(c->lim.max_ppl_ratio) ||
                    !isnan(c->lim.max_kl) || !isnan(c->lim.min_top1)))
        return *code = spx_cli_usage_error(CMD, "data, thresholds and baselines need --reference REF"), -1;
    return 0;
}

/* ---- reference: a .spx, or a checkpoint converted to a temporary .spx ----------------------- */

typedef struct ref_tmp {
    char dir[4096];
    char path[4200];
} ref_tmp;

static int is_spx_file(const char *path)
{
    unsigned char magic[8];
    struct stat st;
    FILE *fp;
    int yes = 0;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    fp = fopen(path, "rb");
    if (!fp)
        return 0;
    yes = fread(magic, 1, 8, fp) == 8 && memcmp(magic, SPX_MAGIC_BYTES, 8) == 0;
    fclose(fp);
    return yes;
}

/* Sets *spx_path to the .spx to open: `ref` itself or a fresh conversion inside t->dir. */
static int resolve_reference(spx_ctx *ctx, const char *ref, ref_tmp *t, const char **spx_path)
{
    int rc = 0;
    const char *tmpdir = getenv("TMPDIR");
    spx_convert_opts co = SPX_CONVERT_OPTS_INIT;
    struct stat st;
    if (stat(ref, &st) != 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "reference %s: %s", ref, strerror(errno));
    if (is_spx_file(ref)) {
        *spx_path = ref;
        goto done;
    }
    snprintf(t->dir, sizeof t->dir, "%s/spx-verify-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(t->dir)) {
        int e = errno;
        t->dir[0] = '\0';
        SPX_FAIL(ctx, rc, SPX_E_IO, "cannot create a temporary directory for the reference: %s", strerror(e));
    }
    snprintf(t->path, sizeof t->path, "%s/reference.spx", t->dir);
    co.input = ref;
    co.output = t->path;
    rc = spx_convert(ctx, &co, NULL);
    if (rc < 0) {
        spx_err_prefix(ctx, "converting the reference %s: ", ref);
        goto done;
    }
    *spx_path = t->path;
done:
    return rc;
}

static void ref_tmp_remove(ref_tmp *t)
{
    if (t->path[0])
        unlink(t->path);
    if (t->dir[0])
        rmdir(t->dir);
}

/* Integrity (as `spx inspect --check`) then the model; role "" (candidate) or "reference ". */
static int open_checked(spx_ctx *ctx, const char *path, const char *role, spx_model **m, uint32_t *n_tensors,
                        uint64_t *bytes)
{
    int rc = 0;
    spx_file *f = NULL;
    rc = spx_file_open(ctx, path, SPX_OPEN_VERIFY_DATA, &f);
    if (rc < 0) {
        spx_err_prefix(ctx, "%sintegrity check failed: ", role);
        goto done;
    }
    if (n_tensors)
        *n_tensors = spx_file_tensor_count(f);
    if (bytes)
        *bytes = spx_file_header(f)->file_size;
    rc = spx_model_open_file(ctx, &f, SPX_MODEL_KERNELS, m);
    if (rc < 0 && role[0])
        spx_err_prefix(ctx, "%s", role);
done:
    spx_file_free(f);
    return rc;
}

static int load_data(spx_ctx *ctx, const verify_cli *c, const spx_model *cand, const spx_model *ref, uint32_t **ids,
                     size_t *n)
{
    int rc = 0;
    spx_data_spec ds = SPX_DATA_SPEC_INIT;
    ds.text_path = c->text;
    ds.tokens_path = c->tokens;
    ds.token_width = c->width;
    if (c->range)
        SPX_TRY(rc, spx_calib_parse_range(ctx, c->range, &ds.lo, &ds.hi));
    rc = spx_data_load(ctx, cand->file, cand->cfg.vocab_size, &ds, ids, n);
    if (rc == SPX_E_MISSING && ref && c->text)   /* no tokenizer in the candidate: the reference's */
        rc = spx_data_load(ctx, ref->file, cand->cfg.vocab_size, &ds, ids, n);
done:
    return rc;
}

/* ---- --embed-probe ------------------------------------------------------------------------- */

static int embed_probe(spx_ctx *ctx, const verify_cli *c)
{
    int rc = 0;
    spx_model *m = NULL;
    spx_tokenizer *tok = NULL;
    uint32_t *ids = NULL;
    size_t n = 0;
    spx_probe p;
    memset(&p, 0, sizeof p);
    SPX_TRY(rc, open_checked(ctx, c->cand, "", &m, NULL, NULL));
    if (c->prompt) {
        SPX_TRY(rc, spx_tokenizer_from_spx(ctx, m->file, &tok));
        SPX_TRY(rc, spx_tokenizer_encode(ctx, tok, c->prompt, strlen(c->prompt), -1, &ids, &n));
        if (n == 0 || n > SPX_PROBE_MAX_TOKENS)
            SPX_FAIL(ctx, rc, SPX_E_DATA, "--prompt gives %zu tokens, the probe takes 1..%u", n, SPX_PROBE_MAX_TOKENS);
    } else {
        SPX_TRY(rc, load_data(ctx, c, m, NULL, &ids, &n));
        if (n == 0)
            SPX_FAIL(ctx, rc, SPX_E_DATA, "%s: no tokens for the probe", c->text ? c->text : c->tokens);
        if (n > c->probe_len)
            n = (size_t)c->probe_len;
    }
    SPX_TRY(rc, spx_probe_record(ctx, m, ids, n, c->probe_tol, &p));
    SPX_TRY(rc, spx_probe_write(ctx, m->file, &p, c->out));
    printf("probe: %u tokens, tol %.6g, embedded in %s\n", p.n_tokens, p.tol, c->out);
done:
    spx_probe_free(&p);
    free(ids);
    spx_tokenizer_free(tok);
    spx_model_free(m);
    return rc;
}

/* ---- report -------------------------------------------------------------------------------- */

static void print_text(const spx_verify_report *rep)
{
    const spx_verify_result *r = rep->cmp;
    const spx_probe_check *p = rep->probe;
    printf("candidate  %s\n", rep->candidate);
    printf("integrity  OK (%u tensors, %llu bytes)\n", rep->n_tensors, (unsigned long long)rep->file_bytes);
    if (p)
        printf("probe      %s: %u positions, top-1 %u/%u, max |dlogit| %.4g (tol %.4g)\n",
               p->ok ? "ok" : p->stale ? "stale" : "FAIL", p->positions, p->top1_ok, p->positions, p->max_abs_err,
               p->tol);
    if (r) {
        printf("reference  %s\n", rep->reference);
        printf("data       %s: %llu windows x %u tokens, %llu positions compared (%llu tokens not evaluated)\n",
               rep->data, (unsigned long long)r->windows, r->ctx, (unsigned long long)r->positions,
               (unsigned long long)r->dropped);
        printf("layer  %-11s %-11s %-10s linears (rel. error of W_c x vs W_r x, differing layers)\n", "attn", "mlp",
               "block");
        for (uint32_t l = 0; l < r->n_layers; l++) {
            const spx_verify_layer *L = &r->layers[l];
            printf("%5u  %-11.4e %-11.4e %.4e", l, L->attn_rel, L->mlp_rel, L->block_rel);
            for (int i = 0; i < SPX_VERIFY_N_LINEARS; i++)
                if (L->linear_cmp[i])
                    printf(" %s %.3e", spx_verify_linear_names[i], L->linear_rel[i]);
            printf("\n");
        }
        printf("kl         mean %.6g  max %.6g  p99.9 %.6g nats\n", r->kl_mean, r->kl_max, r->kl_p999);
        printf("top1       %.6f\n", r->top1);
        printf("ppl        ref %.6g  cand %.6g  ratio %.6f\n", r->ppl_ref, r->ppl_cand, r->ppl_ratio);
    }
    if (rep->failures->n)
        printf("result     FAIL (%zu failure%s)\n", rep->failures->n, rep->failures->n == 1 ? "" : "s");
    else
        printf("result     PASS\n");
}

int spx_cmd_verify(int argc, char **argv)
{
    spx_ctx ctx = SPX_CTX_INIT;
    verify_cli c;
    int code = SPX_EXIT_OK, rc = 0;
    spx_model *cand = NULL, *ref = NULL;
    ref_tmp rt;
    const char *ref_path = NULL;
    uint32_t *ids = NULL;
    size_t n = 0;
    spx_verify_result res;
    spx_verify_opts vo = SPX_VERIFY_OPTS_INIT;
    spx_verify_failures fails;
    spx_verify_report rep;
    spx_probe probe;
    spx_probe_check pc;
    char *json = NULL;
    unsigned long long held = 0;
    memset(&c, 0, sizeof c);
    memset(&rt, 0, sizeof rt);
    memset(&res, 0, sizeof res);
    memset(&fails, 0, sizeof fails);
    memset(&rep, 0, sizeof rep);
    memset(&probe, 0, sizeof probe);
    c.width = 4;
    c.probe_len = 32;
    c.probe_tol = -1;
    c.baseline_tol = SPX_VERIFY_BASELINE_TOL;
    c.baseline_top1_tol = SPX_VERIFY_BASELINE_TOP1_TOL;
    c.lim.max_ppl_ratio = c.lim.max_kl = c.lim.min_top1 = NAN;
    if (parse(argc, argv, &c, &code) < 0)
        return code;
    spx_linear_set_threads((int)c.threads);
    if (c.embed) {
        rc = embed_probe(&ctx, &c);
        goto done;
    }
    rep.candidate = c.cand;
    spx_cli_mem_init(&ctx);   /* --max-memory (main.c strips it; cli_mem.h) */
    SPX_TRY(rc, spx_cli_mem_model(&ctx, c.cand, 0, &held));
    SPX_TRY(rc, open_checked(&ctx, c.cand, "", &cand, &rep.n_tensors, &rep.file_bytes));
    rc = spx_probe_load(&ctx, cand->file, &probe);
    if (rc == 0) {
        SPX_TRY(rc, spx_probe_run(&ctx, cand, &probe, &pc));
        rep.probe = &pc;
        /* a stale probe only fails a probe-only run: with a reference the comparison decides */
        if (!c.ref || !pc.stale)
            spx_verify_check_probe(&pc, &fails);
    } else if (rc != SPX_E_MISSING) {
        goto done;
    } else if (!c.ref) {
        SPX_FAIL(&ctx, rc, SPX_E_MISSING, "%s has no embedded probe (spx.verify.* keys): give --reference REF and "
                 "--text/--tokens, or add one with --embed-probe", c.cand);
    }
    rc = 0;
    if (c.ref) {
        SPX_TRY(rc, resolve_reference(&ctx, c.ref, &rt, &ref_path));
        SPX_TRY(rc, spx_cli_mem_model(&ctx, ref_path, 0, &held));
        SPX_TRY(rc, open_checked(&ctx, ref_path, "reference ", &ref, NULL, NULL));
        SPX_TRY(rc, load_data(&ctx, &c, cand, ref, &ids, &n));
        vo.ctx = c.ctx ? (uint32_t)c.ctx
                       : (ref->cfg.context_length && ref->cfg.context_length < 512 ? ref->cfg.context_length : 512);
        vo.max_windows = c.max_windows;
        vo.per_linear = !c.no_linears;
        if (spx_cli_progress_enabled(c.progress))
            vo.progress.fn = spx_cli_progress;
        if (n < vo.ctx)
            SPX_FAIL(&ctx, rc, SPX_E_DATA, "%s: %zu tokens, fewer than one window of %u (use a smaller --ctx)",
                     c.text ? c.text : c.tokens, n, vo.ctx);
        /* two forward states with their logits, one per model */
        SPX_TRY(rc, spx_cli_mem_state(&ctx, cand, vo.ctx, vo.ctx, 1, &held));
        SPX_TRY(rc, spx_cli_mem_state(&ctx, ref, vo.ctx, vo.ctx, 1, &held));
        spx_cli_mem_backstop(&ctx);
        rc = spx_verify_compare(&ctx, cand, ref, ids, n, &vo, &res);
        if (rc == SPX_E_NUMERIC &&   /* name the first non-finite activation (verify/spx_nonfinite.h) */
            !spx_nonfinite_explain(&ctx, cand, "candidate: ", ids, n, vo.ctx, vo.max_windows))
            spx_nonfinite_explain(&ctx, ref, "reference: ", ids, n, vo.ctx, vo.max_windows);
        if (rc < 0)
            goto done;
        rep.reference = c.ref;
        rep.data = c.text ? c.text : c.tokens;
        rep.cmp = &res;
        spx_verify_check_limits(&res, &c.lim, &fails);
        if (c.baseline) {
            spx_verify_baseline b;
            SPX_TRY(rc, spx_verify_baseline_load(&ctx, c.baseline, &b));
            spx_verify_check_baseline(&res, &b, c.baseline_tol, c.baseline_top1_tol, &fails);
            rep.baseline = c.baseline;
            rep.baseline_tol = c.baseline_tol;
            rep.baseline_top1_tol = c.baseline_top1_tol;
        }
    }
    rep.limits = &c.lim;
    rep.failures = &fails;
    if (c.save_baseline)
        SPX_TRY(rc, spx_verify_report_save(&ctx, &rep, c.save_baseline));
    if (c.json) {
        SPX_TRY(rc, spx_verify_report_json(&ctx, &rep, &json));
        fputs(json, stdout);
    } else {
        print_text(&rep);
    }
    for (size_t i = 0; i < fails.n; i++)
        fprintf(stderr, "spx verify: FAIL: %s\n", fails.msg[i]);
    if (fails.n)
        code = SPX_EXIT_DATA;
done:
    free(json);
    free(ids);
    spx_probe_free(&probe);
    spx_verify_result_free(&res);
    spx_model_free(ref);
    spx_model_free(cand);
    ref_tmp_remove(&rt);
    if (rc < 0)
        return spx_cli_fail(CMD, &ctx);
    return code;
}
