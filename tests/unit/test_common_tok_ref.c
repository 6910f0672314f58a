/* test_common_tok_ref.c: the C tokenizer against the independent pure-Python reference
 * (tests/ref/tokenizer_ref.py) on stories260K-hf/tokenizer.json (metaspace + byte fallback) and
 * SmolLM's tokenizer.json (GPT-2 byte-level + Digits + added tokens). Inputs: every line of the
 * TinyStories sample, the first 2000 lines of Brown, the first 300 non-empty lines of
 * WikiText-2 test and hand-written lines (contractions, whitespace runs, digits, non-ASCII
 * scripts, emoji, added tokens). Token ids must be identical (exact integers; no tolerance). */
#include <stdlib.h>
#include <string.h>

#include "spx_error.h"
#include "spx_test.h"
#include "spx_tokenizer.h"

static const char *const k_extra[] = {
    "Hello world!  It's 2024, isn't it? They'll've we'd I'm you're",
    "   leading spaces and trailing   ",
    "tabs\tand\t\tmultiple \t mixed  \t",
    "numbers 1234567 3.14159 1,000,000 \xC2\xBD \xC2\xB2 \xD9\xA3 x2y 42nd",
    "na\xC3\xAFve caf\xC3\xA9 r\xC3\xA9sum\xC3\xA9 \xCE\x95\xCE\xBB\xCE\xBB\xCE\xB7\xCE\xBD\xCE\xB9\xCE\xBA\xCE\xAC "
    "\xD0\xA0\xD1\x83\xD1\x81\xD1\x81\xD0\xBA\xD0\xB8\xD0\xB9 \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xE3\x81\xAE "
    "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4",
    "emoji \xF0\x9F\x99\x82\xF0\x9F\x91\x8D and symbols \xC2\xA9\xC2\xAE\xE2\x84\xA2 \xE2\x80\x94 "
    "\xE2\x80\x9Cquotes\xE2\x80\x9D \xE2\x80\x98single\xE2\x80\x99 \xE2\x80\xA6 \xE2\x89\xA5",
    "<|endoftext|>Once upon<|endoftext|> a time <|im_start|>user<|im_end|>",
    "CAPS'S 'quoted' ''double'' '' ' 's 'S",
    "unknown to stories260K: \xC3\xBC \xC3\x9F \xCE\xA9 \xD0\xB6 \xE4\xB8\xAD \xE2\x80\x8A\xE2\x80\x8A",
    "a",
    " ",
    "",
    "!!!??? ...--- ___ a_b a-b @-@ = = Heading = =",
    "\xE2\x96\x81" "already" "\xE2\x96\x81" "metaspace \xE2\x96\x81",
};

/* append up to max non-empty lines of a file (without '\r') to fp */
static size_t add_lines(FILE *fp, const char *path, size_t max)
{
    spx_ctx ctx = SPX_CTX_INIT;
    char *t = NULL;
    size_t len = 0, n = 0, start = 0;
    if (spx_text_read(&ctx, path, &t, &len) < 0) {
        fprintf(stderr, "%s\n", ctx.msg);
        spx_test_failures++;
        return 0;
    }
    while (start < len && n < max) {
        char *nl = memchr(t + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - t) : len;
        if (end > start) {
            fwrite(t + start, 1, end - start, fp);
            fputc('\n', fp);
            n++;
        }
        start = end + 1;
    }
    free(t);
    return n;
}

/* parse one line of space-separated ids */
static size_t parse_ids(char *line, uint32_t *out, size_t cap)
{
    size_t n = 0;
    char *p = line, *end;
    while (n < cap) {
        unsigned long v = strtoul(p, &end, 10);
        if (end == p)
            break;
        out[n++] = (uint32_t)v;
        p = end;
    }
    return n;
}

static void compare(const char *tok_path, const char *lines_path, const char *name)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_tokenizer *tok = NULL;
    char cmd[8192];
    const char *out_path = spx_test_path(spx_test_tmpdir(), "ref_ids.txt");
    snprintf(cmd, sizeof(cmd), "'%s' '%s/tests/ref/tokenizer_ref.py' '%s' '%s' '%s'", spx_test_env("SPX_PYTHON"),
             spx_test_env("SPX_SRC"), tok_path, lines_path, out_path);
    int st = system(cmd);
    CHECK_MSG(st == 0, "%s failed (%d)", cmd, st);
    CHECK_RC(spx_tokenizer_load_file(&ctx, tok_path, &tok), 0);
    FILE *in = fopen(lines_path, "rb"), *ref = fopen(out_path, "rb");
    CHECK(in && ref && tok);
    if (!in || !ref || !tok)
        goto done;
    size_t lcap = 1 << 20, lines = 0, bad = 0, total = 0;
    char *line = malloc(lcap), *rl = malloc(lcap);
    uint32_t *want = malloc(lcap * sizeof(uint32_t));
    while (fgets(line, (int)lcap, in)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n')
            line[--n] = 0;
        if (!fgets(rl, (int)lcap, ref)) {
            CHECK_MSG(0, "%s: reference output has fewer lines than the input", name);
            break;
        }
        size_t nw = parse_ids(rl, want, lcap);
        uint32_t *ids = NULL;
        size_t ni = 0;
        int rc = spx_tokenizer_encode(&ctx, tok, line, n, 0, &ids, &ni);
        lines++;
        total += ni;
        if (rc < 0 || ni != nw || memcmp(ids, want, ni * sizeof(uint32_t)) != 0) {
            if (bad++ < 5) {
                size_t k = 0;
                while (k < ni && k < nw && ids[k] == want[k])
                    k++;
                fprintf(stderr, "%s: line %zu differs at token %zu (C %zu ids, Python %zu): %s\n  \"%.*s\"\n", name,
                        lines, k, ni, nw, rc < 0 ? ctx.msg : "", (int)(n < 200 ? n : 200), line);
                if (k < ni && k < nw)
                    fprintf(stderr, "  C id %u vs Python id %u\n", ids[k], want[k]);
            }
        }
        free(ids);
    }
    fprintf(stderr, "%s: %zu lines, %zu tokens, %zu lines differ from the Python reference\n", name, lines, total, bad);
    CHECK(lines > 2000 && bad == 0);
    free(line);
    free(rl);
    free(want);
done:
    if (in)
        fclose(in);
    if (ref)
        fclose(ref);
    spx_tokenizer_free(tok);
}

int spx_test_main(void)
{
    const char *shared = spx_test_env("SPX_SHARED");
    if (!shared || !spx_test_exists(spx_test_path(shared, "models/smollm-135m-tokenizer/tokenizer.json")))
        spx_test_skip("../shared (SPX_SHARED) with the tokenizers and texts is absent");
    if (!spx_test_env("SPX_PYTHON") || !spx_test_env("SPX_SRC"))
        spx_test_skip("no python3 (SPX_PYTHON) to run tests/ref/tokenizer_ref.py");
    const char *lines_path = spx_test_path(spx_test_tmpdir(), "lines.txt");
    char lp[4096];
    snprintf(lp, sizeof(lp), "%s", lines_path);
    FILE *fp = fopen(lp, "wb");
    CHECK(fp != NULL);
    if (!fp)
        return 1;
    for (size_t i = 0; i < sizeof(k_extra) / sizeof(k_extra[0]); i++)
        fprintf(fp, "%s\n", k_extra[i]);
    size_t n = add_lines(fp, spx_test_path(shared, "data/tinystories/tinystories_sample.txt"), SIZE_MAX);
    n += add_lines(fp, spx_test_path(shared, "data/brown/brown_detagged.txt"), 2000);
    n += add_lines(fp, spx_test_path(shared, "data/wikitext-2-raw/wiki.test.raw"), 300);
    fclose(fp);
    CHECK(n > 2300);
    compare(spx_test_path(shared, "models/stories260K-hf/tokenizer.json"), lp, "stories260K tokenizer.json");
    compare(spx_test_path(shared, "models/smollm-135m-tokenizer/tokenizer.json"), lp, "SmolLM tokenizer.json");
    return 0;
}
