/* test_common_tok_real.c: the tokenizers on the real files in ../shared.
 *  - stories260K-hf/tokenizer.json (HF BPE: merges by rank) and stories260K-llama2c/tok512.bin
 *    (llama2.c: merges by score) give identical ids on every line of the TinyStories sample,
 *    the first 3000 lines of Brown and the first 400 non-empty lines of WikiText-2 test, and on
 *    the whole TinyStories file in one piece. Exact equality is required (ids are integers).
 *  - decode(encode(text)) == text for those lines with both tokenizers and with SmolLM's
 *    byte-level tokenizer.
 *  - tok512.bin truncated at every byte length fails cleanly with SPX_E_LLAMA2C.
 *  - the whole Brown corpus as one text: identical ids from both (and a timing print, not
 *    asserted, for each tokenizer). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "spx_error.h"
#include "spx_test.h"
#include "spx_tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static char *read_text(const char *path, size_t *len)
{
    spx_ctx ctx = SPX_CTX_INIT;
    char *t = NULL;
    if (spx_text_read(&ctx, path, &t, len) < 0) {
        fprintf(stderr, "%s\n", ctx.msg);
        spx_test_failures++;
        return NULL;
    }
    return t;
}

/* encode with add_bos = 0 and compare; returns 1 on a mismatch (printed) */
static int compare_line(const spx_tokenizer *a, const spx_tokenizer *b, const char *s, size_t n, const char *what)
{
    spx_ctx ctx = SPX_CTX_INIT;
    uint32_t *ia = NULL, *ib = NULL;
    size_t na = 0, nb = 0;
    int bad = 0;
    if (spx_tokenizer_encode(&ctx, a, s, n, 0, &ia, &na) < 0 || spx_tokenizer_encode(&ctx, b, s, n, 0, &ib, &nb) < 0) {
        fprintf(stderr, "%s: encode failed: %s\n", what, ctx.msg);
        bad = 1;
    } else if (na != nb || memcmp(ia, ib, na * sizeof(uint32_t)) != 0) {
        size_t k = 0;
        while (k < na && k < nb && ia[k] == ib[k])
            k++;
        fprintf(stderr, "%s: mismatch at token %zu (%zu vs %zu tokens) in \"%.*s\"\n", what, k, na, nb,
                (int)(n < 200 ? n : 200), s);
        bad = 1;
    }
    free(ia);
    free(ib);
    return bad;
}

/* special tokens decode to nothing: the expected text of a round trip has them removed */
static size_t drop_specials(const char *s, size_t n, char *out)
{
    static const char eot[] = "<|endoftext|>";
    size_t w = 0;
    for (size_t i = 0; i < n;) {
        if (n - i >= sizeof(eot) - 1 && memcmp(s + i, eot, sizeof(eot) - 1) == 0) {
            i += sizeof(eot) - 1;
            continue;
        }
        out[w++] = s[i++];
    }
    return w;
}

static int roundtrip(const spx_tokenizer *t, const char *s0, size_t n0, const char *what)
{
    spx_ctx ctx = SPX_CTX_INIT;
    uint32_t *ids = NULL;
    size_t ni = 0, tl = 0;
    char *text = NULL;
    int bad = 0;
    /* only SmolLM knows <|endoftext|> as a (special) token; for the 512-piece tokenizers it is text */
    char *want = malloc(n0 + 1);
    size_t n = spx_tokenizer_vocab_size(t) > 512 ? drop_specials(s0, n0, want) : (memcpy(want, s0, n0), n0);
    const char *s = want;
    if (!want)
        return 1;
    if (spx_tokenizer_encode(&ctx, t, s0, n0, -1, &ids, &ni) < 0 ||
        spx_tokenizer_decode_all(&ctx, t, ids, ni, &text, &tl) < 0) {
        fprintf(stderr, "%s: %s\n", what, ctx.msg);
        bad = 1;
    } else if (tl != n || memcmp(text, s, n) != 0) {
        fprintf(stderr, "%s: round trip differs:\n  in:  \"%.*s\"\n  out: \"%.*s\"\n", what, (int)(n < 160 ? n : 160), s,
                (int)(tl < 160 ? tl : 160), text);
        bad = 1;
    }
    free(ids);
    free(text);
    free(want);
    return bad;
}

typedef struct counts {
    size_t lines, mismatch, rt_fail;
} counts;

/* every line (up to max_lines non-empty ones) of text through the comparisons */
static void run_lines(const spx_tokenizer *hf, const spx_tokenizer *l2c, const spx_tokenizer *bl, char *text,
                      size_t len, size_t max_lines, const char *name, counts *c)
{
    size_t start = 0;
    while (start < len && c->lines < max_lines) {
        char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (end > start) {
            const char *s = text + start;
            size_t n = end - start;
            c->lines++;
            c->mismatch += (size_t)compare_line(hf, l2c, s, n, name);
            c->rt_fail += (size_t)roundtrip(hf, s, n, name);
            c->rt_fail += (size_t)roundtrip(l2c, s, n, name);
            if (bl)
                c->rt_fail += (size_t)roundtrip(bl, s, n, name);
        }
        start = end + 1;
    }
}

static void truncation_sweep(const char *path)
{
    spx_ctx ctx = SPX_CTX_INIT;
    FILE *fp = fopen(path, "rb");
    unsigned char *buf = NULL;
    long sz = -1;
    if (fp && fseek(fp, 0, SEEK_END) == 0)
        sz = ftell(fp);
    CHECK(sz > 0);
    if (sz > 0) {
        buf = malloc((size_t)sz);
        rewind(fp);
        CHECK(buf && fread(buf, 1, (size_t)sz, fp) == (size_t)sz);
    }
    if (fp)
        fclose(fp);
    if (!buf)
        return;
    size_t n = (size_t)sz, bad = 0;
    for (size_t k = 0; k < n; k++) {
        spx_vocab *v = NULL;
        /* a fresh heap copy of exactly k bytes so ASan sees any over-read */
        unsigned char *cut = malloc(k ? k : 1);
        memcpy(cut, buf, k);
        int rc = spx_llama2c_vocab_parse(&ctx, cut, k, "tok512.bin(cut)", 512, &v);
        if (rc != SPX_E_LLAMA2C || v != NULL || !strstr(ctx.msg, "tok512.bin(cut)")) {
            if (bad++ < 5)
                fprintf(stderr, "cut at %zu: rc %d (%s)\n", k, rc, ctx.msg);
        }
        spx_vocab_free(v);
        free(cut);
    }
    CHECK_MSG(bad == 0, "%zu of %zu truncations not rejected cleanly", bad, n);
    /* the whole file with a wrong vocabulary size: trailing bytes / truncation */
    spx_vocab *v = NULL;
    CHECK_RC(spx_llama2c_vocab_parse(&ctx, buf, n, "tok512.bin", 511, &v), SPX_E_LLAMA2C);
    CHECK(strstr(ctx.msg, "trailing") != NULL);
    CHECK_RC(spx_llama2c_vocab_parse(&ctx, buf, n, "tok512.bin", 513, &v), SPX_E_LLAMA2C);
    CHECK(strstr(ctx.msg, "token 512") != NULL || strstr(ctx.msg, "cannot hold") != NULL);
    free(buf);
}

static uint32_t *time_brown(const spx_tokenizer *t, const char *text, size_t len, const char *name, size_t *nout)
{
    spx_ctx ctx = SPX_CTX_INIT;
    uint32_t *ids = NULL;
    size_t n = 0;
    double t0 = now();
    int rc = spx_tokenizer_encode(&ctx, t, text, len, 0, &ids, &n);
    double dt = now() - t0;
    CHECK_MSG(rc == 0, "%s", ctx.msg);
    fprintf(stderr, "timing: whole Brown corpus (%zu bytes) with %s: %zu tokens in %.2f s (%.1f MB/s)\n", len, name, n,
            dt, (double)len / 1e6 / (dt > 0 ? dt : 1e-9));
    *nout = n;
    return ids;
}

int spx_test_main(void)
{
    const char *shared = spx_test_env("SPX_SHARED");
    if (!shared || !spx_test_exists(spx_test_path(shared, "models/stories260K-hf/tokenizer.json")))
        spx_test_skip("../shared (SPX_SHARED) with models/stories260K-hf is absent");
    spx_ctx ctx = SPX_CTX_INIT;
    spx_tokenizer *hf = NULL, *l2c = NULL, *bl = NULL;
    spx_vocab *v = NULL;
    const char *tokbin = spx_test_path(shared, "models/stories260K-llama2c/tok512.bin");
    CHECK_RC(spx_tokenizer_load_file(&ctx, spx_test_path(shared, "models/stories260K-hf/tokenizer.json"), &hf), 0);
    CHECK_RC(spx_llama2c_vocab_read(&ctx, tokbin, 512, &v), 0);
    CHECK_RC(spx_tokenizer_from_vocab(&ctx, &v, 1, 2, &l2c), 0);
    CHECK_RC(spx_tokenizer_load_file(&ctx, spx_test_path(shared, "models/smollm-135m-tokenizer/tokenizer.json"), &bl), 0);
    if (!hf || !l2c || !bl) {
        fprintf(stderr, "load failed: %s\n", ctx.msg);
        return 1;
    }
    CHECK(spx_tokenizer_vocab_size(hf) == 512 && spx_tokenizer_vocab_size(l2c) == 512);
    CHECK(spx_tokenizer_bos_id(hf) == 1 && spx_tokenizer_eos_id(hf) == 2);
    CHECK(spx_tokenizer_vocab_size(bl) == 49153);
    CHECK(spx_tokenizer_bos_id(bl) == 0 && spx_tokenizer_eos_id(bl) == 0);

    size_t len;
    counts c = {0, 0, 0};
    char *ts = read_text(spx_test_path(shared, "data/tinystories/tinystories_sample.txt"), &len);
    if (ts) {
        run_lines(hf, l2c, bl, ts, len, SIZE_MAX, "tinystories", &c);
        /* whole file in one piece: merges across newlines (byte tokens) must agree too */
        c.mismatch += (size_t)compare_line(hf, l2c, ts, len, "tinystories (whole file)");
        c.rt_fail += (size_t)roundtrip(hf, ts, len, "tinystories (whole file)");
        c.rt_fail += (size_t)roundtrip(l2c, ts, len, "tinystories (whole file)");
        c.rt_fail += (size_t)roundtrip(bl, ts, len, "tinystories (whole file)");
    }
    fprintf(stderr, "tinystories: %zu lines, %zu HF/llama2.c mismatches, %zu round-trip failures\n", c.lines,
            c.mismatch, c.rt_fail);
    CHECK(c.lines > 20 && c.mismatch == 0 && c.rt_fail == 0);

    char *brown = read_text(spx_test_path(shared, "data/brown/brown_detagged.txt"), &len);
    size_t brown_len = len;
    counts cb = {0, 0, 0};
    if (brown)
        run_lines(hf, l2c, bl, brown, len, 3000, "brown", &cb);
    fprintf(stderr, "brown: %zu lines, %zu HF/llama2.c mismatches, %zu round-trip failures\n", cb.lines, cb.mismatch,
            cb.rt_fail);
    CHECK(cb.lines == 3000 && cb.mismatch == 0 && cb.rt_fail == 0);

    char *wiki = read_text(spx_test_path(shared, "data/wikitext-2-raw/wiki.test.raw"), &len);
    counts cw = {0, 0, 0};
    if (wiki)
        run_lines(hf, l2c, bl, wiki, len, 400, "wikitext", &cw);
    fprintf(stderr, "wikitext: %zu lines, %zu HF/llama2.c mismatches, %zu round-trip failures\n", cw.lines,
            cw.mismatch, cw.rt_fail);
    CHECK(cw.lines == 400 && cw.mismatch == 0 && cw.rt_fail == 0);

    truncation_sweep(tokbin);

    if (brown) {
        size_t n1 = 0, n2 = 0, n3 = 0;
        uint32_t *i1 = time_brown(hf, brown, brown_len, "stories260K tokenizer.json (HF BPE)", &n1);
        uint32_t *i2 = time_brown(l2c, brown, brown_len, "tok512.bin (llama2.c encoder)", &n2);
        free(time_brown(bl, brown, brown_len, "SmolLM tokenizer.json (byte-level BPE)", &n3));
        /* the whole corpus as one text (merges across line breaks) agrees as well */
        CHECK_MSG(i1 && i2 && n1 == n2 && memcmp(i1, i2, n1 * sizeof(uint32_t)) == 0,
                  "whole Brown corpus: HF %zu tokens vs llama2.c %zu tokens differ", n1, n2);
        free(i1);
        free(i2);
    }
    free(ts);
    free(brown);
    free(wiki);
    spx_tokenizer_free(hf);
    spx_tokenizer_free(l2c);
    spx_tokenizer_free(bl);
    return 0;
}
