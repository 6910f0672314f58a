/* cmd_ppl.c: `spx ppl` - perplexity of a .spx model on a text or token file. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_mem.h"
#include "spx_forward.h"
#include "spx_gate_recall.h"
#include "spx_model.h"
#include "spx_moe.h"
#include "spx_nonfinite.h"
#include "spx_ppl.h"
#include "spx_tokenizer.h"

static const char *const CMD = "ppl";

static void help(void)
{
    printf("usage: spx ppl FILE.spx (--text FILE | --tokens FILE [--token-width 2|4]) [options]\n\n"
           "Perplexity with the evaluation protocol of SparseGPT/Wanda: the token stream is cut into\n"
           "non-overlapping windows of --ctx tokens (the remainder is dropped), each window runs from an\n"
           "empty cache and predicts its tokens 1..ctx-1; PPL = exp(mean cross-entropy).\n\n"
           "options:\n"
           "  --text FILE         UTF-8 text ('\\r' removed), tokenized as a whole with the tokenizer\n"
           "                      stored in the .spx\n"
           "  --tokens FILE       raw little-endian token ids (no tokenizer needed)\n"
           "  --token-width 2|4   bytes per id in --tokens (default 4)\n"
           "  --ctx N             window length (default min(512, context_length))\n"
           "  --max-windows N     evaluate at most the first N windows (default all)\n"
           "  --bos | --no-bos    add BOS once at the start of the stream (default: --bos for --text\n"
           "                      when the tokenizer has one, --no-bos for --tokens)\n"
           "  --doc-sep STR       with --text: split the text into documents at every STR (e.g.\n"
           "                      '<|endoftext|>'), strip surrounding whitespace, drop empty ones and\n"
           "                      tokenize each separately with its own BOS (llama2.c pretokenization)\n"
           "  --save-tokens FILE  also write the evaluated token stream as raw u32 ids (testing)\n"
           "  --gate-mode MODE    gated-expert files: router (the file's rule, default), topk (router\n"
           "                      scores, --gate-k experts per token), oracle (the --gate-k experts of\n"
           "                      largest activation mass, computed densely) or random\n"
           "  --gate-k X          experts per token for topk/oracle/random: an integer >= 1 or a\n"
           "                      fraction 0 < X < 1 of each layer's experts\n"
           "  --gate-seed N       seed of --gate-mode random (default 0)\n"
           "  --gate-recall       gated-expert files: also measure, per token and gated layer, the\n"
           "                      recall |S & O| / |S| of the selected experts S against the oracle O\n"
           "                      (the |S| experts of largest activation mass of the dense hidden\n"
           "                      state); adds \"gate_recall\": {\"mean\", \"layers\"} to --json\n"
           "  --json              print {\"ppl\", \"nll_mean\", \"nll_sum\", \"tokens\", \"windows\", \"ctx\",\n"
           "                      \"ffn_fraction\"} and, for expanded files, \"flops_per_token\":\n"
           "                      {\"expanded\", \"router\", \"single_sparse\", \"dense\"}\n"
           "  --progress          show progress on stderr even when it is not a terminal\n"
           "  --threads N         threads of the linear layers (kernels and OpenBLAS; default: the\n"
           "                      number of online CPUs)\n"
           "  --help              this text\n\n"
           "ffn_fraction is the fraction of FFN neurons computed (1 for dense and expanded models).\n"
           "flops_per_token counts 2 x multiply-adds of the linear layers (q, k, v, o, MLP, classifier;\n"
           "not attention scores): expanded = router + one expert per MLP linear at its stored nnz;\n"
           "single_sparse = the same without the router; dense = every linear dense.\n\n"
           "The last line of the text output is exactly 'PPL = x.xxxx'.\n");
}

typedef struct ppl_opts {
    const char *model, *text, *tokens, *doc_sep, *save_tokens;
    int width, bos, json, progress;  /* bos: -1 default, 0 no, 1 yes */
    int gate_recall;
    unsigned long long ctx, max_windows, gate_seed, threads;
    int gate_mode;                   /* spx_gate_mode */
    double gate_k;                   /* 0: not given */
} ppl_opts;

static int parse_gate_mode(const char *s)
{
    static const char *const names[] = {"router", "topk", "oracle", "random"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int parse(int argc, char **argv, ppl_opts *o, int *exit_code)
{
    memset(o, 0, sizeof *o);
    o->width = 4;
    o->bos = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = (i + 1 < argc) ? argv[i + 1] : NULL;
        unsigned long long u;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help();
            *exit_code = SPX_EXIT_OK;
            return -1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--progress") == 0) {
            o->progress = 1;
        } else if (strcmp(a, "--gate-recall") == 0) {
            o->gate_recall = 1;
        } else if (strcmp(a, "--bos") == 0) {
            o->bos = 1;
        } else if (strcmp(a, "--no-bos") == 0) {
            o->bos = 0;
        } else if (strcmp(a, "--text") == 0 || strcmp(a, "--tokens") == 0 || strcmp(a, "--token-width") == 0 ||
                   strcmp(a, "--ctx") == 0 || strcmp(a, "--max-windows") == 0 || strcmp(a, "--doc-sep") == 0 ||
                   strcmp(a, "--save-tokens") == 0 || strcmp(a, "--gate-mode") == 0 || strcmp(a, "--gate-k") == 0 ||
                   strcmp(a, "--gate-seed") == 0 || strcmp(a, "--threads") == 0) {
            if (!val) {
                *exit_code = spx_cli_usage_error(CMD, "option '%s' needs a value", a);
                return -1;
            }
            i++;
            if (strcmp(a, "--text") == 0) {
                o->text = val;
            } else if (strcmp(a, "--tokens") == 0) {
                o->tokens = val;
            } else if (strcmp(a, "--doc-sep") == 0) {
                if (!*val) {
                    *exit_code = spx_cli_usage_error(CMD, "--doc-sep needs a non-empty string");
                    return -1;
                }
                o->doc_sep = val;
            } else if (strcmp(a, "--save-tokens") == 0) {
                o->save_tokens = val;
            } else if (strcmp(a, "--gate-mode") == 0) {
                if ((o->gate_mode = parse_gate_mode(val)) < 0) {
                    *exit_code = spx_cli_usage_error(CMD, "--gate-mode must be router, topk, oracle or random, got '%s'",
                                                     val);
                    return -1;
                }
            } else if (strcmp(a, "--gate-k") == 0) {
                if (spx_cli_parse_double(val, &o->gate_k) != 0 || !(o->gate_k > 0.0) ||
                    (o->gate_k >= 1.0 && (o->gate_k != floor(o->gate_k) || o->gate_k > 4294967295.0))) {
                    *exit_code = spx_cli_usage_error(CMD, "--gate-k needs an integer >= 1 or a fraction in (0, 1), "
                                                     "got '%s'", val);
                    return -1;
                }
            } else if (strcmp(a, "--gate-seed") == 0) {
                if (spx_cli_parse_u64(val, &o->gate_seed) != 0) {
                    *exit_code = spx_cli_usage_error(CMD, "--gate-seed needs a non-negative integer, got '%s'", val);
                    return -1;
                }
            } else if (spx_cli_parse_u64(val, &u) != 0) {
                *exit_code = spx_cli_usage_error(CMD, "option '%s' needs a non-negative integer, got '%s'", a, val);
                return -1;
            } else if (strcmp(a, "--token-width") == 0) {
                if (u != 2 && u != 4) {
                    *exit_code = spx_cli_usage_error(CMD, "--token-width must be 2 or 4, got '%s'", val);
                    return -1;
                }
                o->width = (int)u;
            } else if (strcmp(a, "--ctx") == 0) {
                if (u < 2 || u > (1u << 24)) {
                    *exit_code = spx_cli_usage_error(CMD, "--ctx must be in 2..16777216, got '%s'", val);
                    return -1;
                }
                o->ctx = u;
            } else if (strcmp(a, "--threads") == 0) {
                if (u < 1 || u > SPX_KERN_MAX_THREADS) {
                    *exit_code = spx_cli_usage_error(CMD, "--threads must be in 1..%d, got '%s'", SPX_KERN_MAX_THREADS, val);
                    return -1;
                }
                o->threads = u;
            } else {
                o->max_windows = u;
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
    if (!o->text == !o->tokens) {
        *exit_code = spx_cli_usage_error(CMD, "give exactly one of --text FILE or --tokens FILE");
        return -1;
    }
    if (o->doc_sep && !o->text) {
        *exit_code = spx_cli_usage_error(CMD, "--doc-sep needs --text");
        return -1;
    }
    if ((o->gate_mode != SPX_GATE_MODE_ROUTER) != (o->gate_k > 0.0)) {
        *exit_code = spx_cli_usage_error(CMD, "--gate-k goes with --gate-mode topk, oracle or random (and they need it)");
        return -1;
    }
    return 0;
}

static int is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\v' || c == '\f';
}

/* Append the ids of one piece of text to *ids (n, cap). */
static int append_encoded(spx_ctx *ctx, const spx_tokenizer *tok, const char *text, size_t len, int add_bos,
                          uint32_t **ids, size_t *n, size_t *cap)
{
    int rc = 0;
    uint32_t *part = NULL;
    size_t k = 0;
    SPX_TRY(rc, spx_tokenizer_encode(ctx, tok, text, len, add_bos, &part, &k));
    if (*n + k > *cap) {
        size_t nc = (*n + k) * 2 + 16;
        uint32_t *nw = realloc(*ids, nc * sizeof *nw);
        if (!nw)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
        *ids = nw;
        *cap = nc;
    }
    if (k)
        memcpy(*ids + *n, part, k * sizeof *part);
    *n += k;
done:
    free(part);
    return rc;
}

/* Documents separated by `sep`, each stripped of surrounding whitespace, empty ones skipped. */
static int encode_docs(spx_ctx *ctx, const spx_tokenizer *tok, const char *text, size_t len, const char *sep,
                       int add_bos, uint32_t **ids, size_t *n)
{
    int rc = 0;
    size_t cap = 0, seplen = strlen(sep), pos = 0;
    *ids = NULL;
    *n = 0;
    while (pos <= len) {
        const char *hit = strstr(text + pos, sep);
        size_t end = hit ? (size_t)(hit - text) : len, a = pos, b = end;
        while (a < b && is_space(text[a]))
            a++;
        while (b > a && is_space(text[b - 1]))
            b--;
        if (b > a)
            SPX_TRY(rc, append_encoded(ctx, tok, text + a, b - a, add_bos, ids, n, &cap));
        if (!hit)
            break;
        pos = end + seplen;
    }
    if (!*ids) {
        *ids = malloc(sizeof **ids);
        if (!*ids)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    }
done:
    return rc;
}

/* Token stream from --text (tokenizer in the .spx) or --tokens; BOS handling per the options. */
static int load_tokens(spx_ctx *ctx, const ppl_opts *o, const spx_model *m, uint32_t **ids, size_t *n, int *bos_added)
{
    int rc = 0;
    spx_tokenizer *tok = NULL;
    char *text = NULL;
    size_t len = 0;
    int bos_id = m->cfg.bos_id;
    *bos_added = 0;
    if (o->text || o->bos == 1) {
        rc = spx_tokenizer_from_spx(ctx, m->file, &tok);
        if (rc < 0 && (o->text || rc != SPX_E_MISSING))
            goto done;
        rc = 0;
        if (tok && spx_tokenizer_bos_id(tok) >= 0)
            bos_id = spx_tokenizer_bos_id(tok);
    }
    if (o->bos == 1 && bos_id < 0)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "--bos: the model has no BOS token id");
    if (o->text) {
        int add = o->bos == 0 ? 0 : (bos_id >= 0 ? 1 : 0);
        SPX_TRY(rc, spx_text_read(ctx, o->text, &text, &len));
        if (o->doc_sep)
            SPX_TRY(rc, encode_docs(ctx, tok, text, len, o->doc_sep, add, ids, n));
        else
            SPX_TRY(rc, spx_tokenizer_encode(ctx, tok, text, len, add, ids, n));
        *bos_added = add;
    } else {
        SPX_TRY(rc, spx_tokens_read(ctx, o->tokens, o->width, ids, n));
        if (o->bos == 1) {
            uint32_t *nw = realloc(*ids, (*n + 1) * sizeof **ids);
            if (!nw)
                SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
            memmove(nw + 1, nw, *n * sizeof *nw);
            nw[0] = (uint32_t)bos_id;
            *ids = nw;
            (*n)++;
            *bos_added = 1;
        }
    }
done:
    free(text);
    spx_tokenizer_free(tok);
    return rc;
}

int spx_cmd_ppl(int argc, char **argv)
{
    spx_ctx ctx = SPX_CTX_INIT;
    ppl_opts o;
    int code = SPX_EXIT_OK, rc = 0, bos_added = 0;
    spx_model *m = NULL;
    spx_state *st = NULL;
    uint32_t *ids = NULL;
    size_t n = 0;
    uint32_t C;
    spx_ppl_result r;
    spx_progress prog = {NULL, NULL};
    spx_gate_recall *rec = NULL;
    unsigned long long held = 0;   /* --max-memory (main.c strips it; cli_mem.h) */
    if (parse(argc, argv, &o, &code) < 0)
        return code;
    spx_cli_mem_init(&ctx);
    SPX_TRY(rc, spx_cli_mem_model(&ctx, o.model, 0, &held));
    spx_linear_set_threads((int)o.threads);
    SPX_TRY(rc, spx_model_open(&ctx, o.model, SPX_MODEL_KERNELS, &m));
    if (o.gate_mode != SPX_GATE_MODE_ROUTER) {
        if (!spx_model_has_gating(m))
            SPX_FAIL(&ctx, rc, SPX_E_ARG, "--gate-mode: %s has no gated layers", o.model);
        SPX_TRY(rc, spx_model_set_gate_override(&ctx, m, o.gate_mode, o.gate_k, o.gate_seed));
    }
    C = o.ctx ? (uint32_t)o.ctx : (m->cfg.context_length && m->cfg.context_length < 512 ? m->cfg.context_length : 512);
    SPX_TRY(rc, load_tokens(&ctx, &o, m, &ids, &n, &bos_added));
    for (size_t i = 0; i < n; i++)   /* bad ids in the input are a data error, not an argument error */
        if (ids[i] >= m->cfg.vocab_size)
            SPX_FAIL(&ctx, rc, SPX_E_DATA, "%s: token id %u at index %zu is out of range (vocabulary size %u)",
                     o.text ? o.text : o.tokens, ids[i], i, m->cfg.vocab_size);
    if (o.save_tokens)
        SPX_TRY(rc, spx_tokens_write(&ctx, o.save_tokens, 4, ids, n));
    if (n < C)
        SPX_FAIL(&ctx, rc, SPX_E_DATA, "%s: %zu tokens, fewer than one window of %u (use a smaller --ctx)",
                 o.text ? o.text : o.tokens, n, C);
    SPX_TRY(rc, spx_cli_mem_state(&ctx, m, C, C, 1, &held));
    spx_cli_mem_backstop(&ctx);
    SPX_TRY(rc, spx_state_new(&ctx, m, C, C, &st));
    if (o.gate_recall) {
        if (!spx_model_has_gating(m))
            SPX_FAIL(&ctx, rc, SPX_E_ARG, "--gate-recall: %s has no gated layers", o.model);
        SPX_TRY(rc, spx_gate_recall_new(&ctx, m, st, &rec));
    }
    if (spx_cli_progress_enabled(o.progress))
        prog.fn = spx_cli_progress;
    rc = spx_ppl_eval(&ctx, m, st, ids, n, C, o.max_windows, &prog, &r);
    if (rc == SPX_E_NUMERIC)   /* name the first non-finite activation (verify/spx_nonfinite.h) */
        spx_nonfinite_explain(&ctx, m, "", ids, n, C, o.max_windows);
    if (rc < 0)
        goto done;
    if (o.json) {
        /* exp of a mean loss above ~709 nats overflows and JSON has no inf: ppl is null then */
        char ppl_txt[64];
        if (isfinite(r.ppl))
            snprintf(ppl_txt, sizeof ppl_txt, "%.10g", r.ppl);
        else
            snprintf(ppl_txt, sizeof ppl_txt, "null");
        printf("{\"ppl\": %s, \"nll_mean\": %.10g, \"nll_sum\": %.10g, \"tokens\": %llu, \"windows\": %llu, "
               "\"ctx\": %u, \"ffn_fraction\": %.10g",
               ppl_txt, r.nll_mean, r.nll_sum, (unsigned long long)r.tokens, (unsigned long long)r.windows, r.ctx,
               spx_state_ffn_fraction(st));
        if (spx_model_has_moe(m)) {
            spx_flops fl;
            spx_model_flops(m, &fl);
            printf(", \"flops_per_token\": {\"expanded\": %.17g, \"router\": %.17g, \"single_sparse\": %.17g, "
                   "\"dense\": %.17g}",
                   fl.expanded, fl.router, fl.sparse, fl.dense);
        }
        if (rec) {   /* layers without gating: null */
            printf(", \"gate_recall\": {\"mean\": %.10g, \"layers\": [", spx_gate_recall_mean(rec, -1));
            for (uint32_t l = 0; l < m->cfg.n_layers; l++) {
                double v = spx_gate_recall_mean(rec, l);
                if (isfinite(v))
                    printf("%s%.10g", l ? ", " : "", v);
                else
                    printf("%snull", l ? ", " : "");
            }
            printf("]}");
        }
        printf("}\n");
    } else {
        printf("model      %s (%s: %u layers, dim %u, vocab %u)\n", o.model, m->cfg.name[0] ? m->cfg.name : m->cfg.arch,
               m->cfg.n_layers, m->cfg.dim, m->cfg.vocab_size);
        printf("stream     %zu tokens from %s%s\n", n, o.text ? o.text : o.tokens,
               !bos_added ? "" : o.doc_sep ? " (one BOS per document)" : " (BOS added at the start)");
        printf("windows    %llu x %u tokens (%llu tokens not evaluated)\n", (unsigned long long)r.windows, r.ctx,
               (unsigned long long)r.dropped);
        printf("predicted  %llu tokens (%u per window: tokens 1..%u given their prefix)\n", (unsigned long long)r.tokens,
               r.ctx - 1, r.ctx - 1);
        printf("nll_sum    %.6f nats\n", r.nll_sum);
        printf("nll_mean   %.6f nats/token\n", r.nll_mean);
        if (spx_model_has_gating(m))
            printf("ffn        %.4f of the FFN neurons computed\n", spx_state_ffn_fraction(st));
        if (rec) {
            printf("recall     %.4f of the oracle's experts (per layer:", spx_gate_recall_mean(rec, -1));
            for (uint32_t l = 0; l < m->cfg.n_layers; l++)
                printf(" %.4f", spx_gate_recall_mean(rec, l));
            printf(")\n");
        }
        if (spx_model_has_moe(m)) {
            spx_flops fl;
            spx_model_flops(m, &fl);
            printf("flops/tok  %.4g expanded (router %.4g), %.4g one sparse model, %.4g dense\n", fl.expanded,
                   fl.router, fl.sparse, fl.dense);
        }
        printf("PPL = %.4f\n", r.ppl);
    }
done:
    free(ids);
    spx_gate_recall_free(rec);
    spx_state_free(st);
    spx_model_free(m);
    if (rc < 0)
        return spx_cli_fail(CMD, &ctx);
    return code;
}
