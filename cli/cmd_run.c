/* cmd_run.c: `spx run` - greedy generation from a prompt. */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "spx_ckd.h"
#include "spx_forward.h"
#include "spx_generate.h"
#include "spx_linear.h"
#include "spx_model.h"
#include "spx_tokenizer.h"

static const char *const CMD = "run";

static void help(void)
{
    printf("usage: spx run FILE.spx --prompt TEXT [options]\n\n"
           "Greedy generation (argmax at every step) with the tokenizer stored in the .spx; prints the\n"
           "prompt followed by the generated text; stops after --steps tokens or at end-of-sequence.\n\n"
           "options:\n"
           "  --prompt TEXT        prompt text (BOS is added in front when the tokenizer has one)\n"
           "  --steps N            tokens to generate (default 64)\n"
           "  --no-bos             do not add BOS in front of the prompt\n"
           "  --tokens-out         also print the generated token ids on one line after the text\n"
           "  --prompt-ids LIST    use these comma-separated token ids as the prompt instead of text\n"
           "                       (testing; no tokenizer needed when combined with --steps 0)\n"
           "  --dump-logits FILE   write the logits of every prompt position (one batched forward) as\n"
           "                       raw little-endian float32 [n_prompt x vocab] (testing)\n"
           "  --threads N          threads of the linear layers (kernels and OpenBLAS; default: the\n"
           "                       number of online CPUs)\n"
           "  --fp32               decode every weight to fp32 (OpenBLAS) instead of running the\n"
           "                       sparse / half-precision kernels on the stored encoding\n"
           "  --timing             print load time, prefill and decode tokens/s and peak RSS on stderr\n"
           "  --help               this text\n");
}

typedef struct run_opts {
    const char *model, *prompt, *prompt_ids, *dump;
    unsigned long long steps, threads;
    int tokens_out, no_bos, fp32, timing;
} run_opts;

static int parse(int argc, char **argv, run_opts *o, int *exit_code)
{
    memset(o, 0, sizeof *o);
    o->steps = 64;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = (i + 1 < argc) ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            *exit_code = SPX_EXIT_OK;
            return -1;
        } else if (strcmp(a, "--tokens-out") == 0) {
            o->tokens_out = 1;
        } else if (strcmp(a, "--no-bos") == 0) {
            o->no_bos = 1;
        } else if (strcmp(a, "--fp32") == 0) {
            o->fp32 = 1;
        } else if (strcmp(a, "--timing") == 0) {
            o->timing = 1;
        } else if (strcmp(a, "--prompt") == 0 || strcmp(a, "--steps") == 0 || strcmp(a, "--prompt-ids") == 0 ||
                   strcmp(a, "--dump-logits") == 0 || strcmp(a, "--threads") == 0) {
            if (!val) {
                *exit_code = spx_cli_usage_error(CMD, "option '%s' needs a value", a);
                return -1;
            }
            i++;
            if (strcmp(a, "--prompt") == 0) {
                o->prompt = val;
            } else if (strcmp(a, "--prompt-ids") == 0) {
                o->prompt_ids = val;
            } else if (strcmp(a, "--dump-logits") == 0) {
                o->dump = val;
            } else if (strcmp(a, "--threads") == 0) {
                if (spx_cli_parse_u64(val, &o->threads) != 0 || o->threads < 1 || o->threads > SPX_KERN_MAX_THREADS) {
                    *exit_code = spx_cli_usage_error(CMD, "--threads needs an integer in 1..%d, got '%s'",
                                                     SPX_KERN_MAX_THREADS, val);
                    return -1;
                }
            } else if (spx_cli_parse_u64(val, &o->steps) != 0 || o->steps > (1u << 30)) {
                *exit_code = spx_cli_usage_error(CMD, "--steps needs an integer in 0..2^30, got '%s'", val);
                return -1;
            }
        } else if (a[0] == '-' && a[1]) {
            *exit_code = spx_cli_usage_error(CMD, "unknown option '%s'", a);
            return -1;
        } else if (!o->model) {
            o->model = a;
        } else {
            *exit_code = spx_cli_usage_error(CMD, "unexpected argument '%s'", a);
            return -1;
        }
    }
    if (!o->model) {
        *exit_code = spx_cli_usage_error(CMD, "missing the model file");
        return -1;
    }
    if (!o->prompt == !o->prompt_ids) {
        *exit_code = spx_cli_usage_error(CMD, "give exactly one of --prompt TEXT or --prompt-ids LIST");
        return -1;
    }
    return 0;
}

/* "1,2,3" -> ids (SPX_E_ARG on anything else). */
static int parse_ids(spx_ctx *ctx, const char *s, uint32_t **ids, size_t *n)
{
    int rc = 0;
    size_t cap = 1;
    uint32_t *v;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    v = malloc(cap * sizeof *v);
    if (!v)
        return spx_err_set(ctx, SPX_E_NOMEM, "out of memory");
    *n = 0;
    while (*s) {
        char *end;
        unsigned long long u;
        if (*s < '0' || *s > '9')
            SPX_FAIL(ctx, rc, SPX_E_ARG, "--prompt-ids: expected a digit at '%s'", s);
        u = strtoull(s, &end, 10);
        if (u > UINT32_MAX || (*end && *end != ','))
            SPX_FAIL(ctx, rc, SPX_E_ARG, "--prompt-ids: bad id at '%s'", s);
        v[(*n)++] = (uint32_t)u;
        s = *end ? end + 1 : end;
    }
    if (*n == 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "--prompt-ids: empty list");
    *ids = v;
    v = NULL;
done:
    free(v);
    return rc;
}

static int write_logits(spx_ctx *ctx, const char *path, const float *v, size_t count)
{
    char tmp[4096];
    FILE *f;
    int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return spx_err_set(ctx, SPX_E_ARG, "--dump-logits: path too long");
    f = fopen(tmp, "wb");
    if (!f)
        return spx_err_set(ctx, SPX_E_IO, "%s: cannot create", tmp);
    if (fwrite(v, sizeof(float), count, f) != count || fclose(f) != 0) {
        remove(tmp);
        return spx_err_set(ctx, SPX_E_IO, "%s: write failed", tmp);
    }
    if (rename(tmp, path) != 0) {
        remove(tmp);
        return spx_err_set(ctx, SPX_E_IO, "%s: rename failed", path);
    }
    return 0;
}

typedef struct run_out {
    uint32_t *ids;
    size_t n;
    double t_first, t_last;   /* wall clock at the first and the last generated token */
} run_out;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int on_token(void *ud, uint32_t id, const char *piece, size_t len)
{
    run_out *r = ud;
    r->t_last = now_s();
    if (r->n == 0)
        r->t_first = r->t_last;
    r->ids[r->n++] = id;
    if (piece && len) {
        fwrite(piece, 1, len, stdout);
        fflush(stdout);
    }
    return 0;
}

int spx_cmd_run(int argc, char **argv)
{
    spx_ctx ctx = SPX_CTX_INIT;
    run_opts o;
    int code = SPX_EXIT_OK, rc = 0;
    spx_model *m = NULL;
    spx_state *st = NULL;
    spx_tokenizer *tok = NULL;
    uint32_t *ids = NULL;
    float *logits = NULL;
    size_t n = 0, max_ctx;
    run_out out = {NULL, 0, 0.0, 0.0};
    double t0, t_load, t_gen = 0.0;
    struct rusage ru;
    if (parse(argc, argv, &o, &code) < 0)
        return code;
    spx_linear_set_threads((int)o.threads);
    t0 = now_s();
    SPX_TRY(rc, spx_model_open(&ctx, o.model, o.fp32 ? 0 : SPX_MODEL_KERNELS, &m));
    t_load = now_s() - t0;
    if (o.prompt || o.steps > 0)
        SPX_TRY(rc, spx_tokenizer_from_spx(&ctx, m->file, &tok));
    if (o.prompt)
        SPX_TRY(rc, spx_tokenizer_encode(&ctx, tok, o.prompt, strlen(o.prompt), o.no_bos ? 0 : -1, &ids, &n));
    else
        SPX_TRY(rc, parse_ids(&ctx, o.prompt_ids, &ids, &n));
    if (n == 0)
        SPX_FAIL(&ctx, rc, SPX_E_ARG, "the prompt is empty and no BOS token was added");
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= m->cfg.vocab_size)
            SPX_FAIL(&ctx, rc, SPX_E_ARG, "prompt token id %u at index %zu is out of range (vocabulary size %u)", ids[i],
                     i, m->cfg.vocab_size);
    max_ctx = n + (size_t)o.steps;
    if (max_ctx > INT32_MAX)
        SPX_FAIL(&ctx, rc, SPX_E_ARG, "prompt + steps too long (%zu)", max_ctx);
    SPX_TRY(rc, spx_state_new(&ctx, m, (uint32_t)max_ctx, (uint32_t)n, &st));
    if (o.dump) {
        size_t bytes;
        if (spx_ckd_mul3_size(n, m->cfg.vocab_size, sizeof(float), &bytes))
            SPX_FAIL(&ctx, rc, SPX_E_OVERFLOW, "logits size overflows (%zu x %u)", n, m->cfg.vocab_size);
        logits = malloc(bytes);
        if (!logits)
            SPX_FAIL(&ctx, rc, SPX_E_NOMEM, "out of memory for logits");
        SPX_TRY(rc, spx_forward(&ctx, m, st, ids, n, logits, NULL));
        SPX_TRY(rc, write_logits(&ctx, o.dump, logits, n * m->cfg.vocab_size));
        spx_state_reset(st);
    }
    if (o.steps > 0) {
        out.ids = malloc((size_t)o.steps * sizeof *out.ids);
        if (!out.ids)
            SPX_FAIL(&ctx, rc, SPX_E_NOMEM, "out of memory");
        if (o.prompt)
            fputs(o.prompt, stdout);
        t_gen = now_s();
        SPX_TRY(rc, spx_generate(&ctx, m, st, tok, ids, n, (size_t)o.steps, on_token, &out, NULL));
        fputc('\n', stdout);
        if (o.tokens_out) {
            for (size_t i = 0; i < out.n; i++)
                printf(i ? " %u" : "%u", out.ids[i]);
            fputc('\n', stdout);
        }
    }
    if (o.timing) {
        /* prefill: prompt forward + first token; decode: every later token (one forward each) */
        double pre = out.n ? out.t_first - t_gen : 0.0, dec = out.t_last - out.t_first;
        getrusage(RUSAGE_SELF, &ru);
        fprintf(stderr, "timing: threads %d load_s %.3f prompt %zu prefill_tok_s %.2f decode_tokens %zu "
                "decode_tok_s %.2f peak_rss_mib %.1f\n", spx_kern_threads(), t_load, n,
                pre > 0.0 ? (double)n / pre : 0.0, out.n ? out.n - 1 : 0,
                out.n > 1 && dec > 0.0 ? (double)(out.n - 1) / dec : 0.0, (double)ru.ru_maxrss / 1024.0);
    }
done:
    free(out.ids);
    free(logits);
    free(ids);
    spx_tokenizer_free(tok);
    spx_state_free(st);
    spx_model_free(m);
    if (rc < 0)
        return spx_cli_fail(CMD, &ctx);
    return code;
}
