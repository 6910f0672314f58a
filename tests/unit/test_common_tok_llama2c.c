/* test_common_tok_llama2c.c: llama2.c tokenizer files and the score-driven encoder, without
 * ../shared.
 *  - the heap-based encoder equals a direct transcription of llama2.c's O(n^2) `encode` loop
 *    (rescan all pairs, take the strictly highest score > -1e10, leftmost on ties) on 2000
 *    random texts over random vocabularies with many tied integer scores: ids must be identical;
 *  - every truncation and corruption of a tokenizer .bin is rejected with SPX_E_LLAMA2C and a
 *    message naming the file, the token index and the byte offset;
 *  - decode (byte pieces, space strip after BOS) and the .spx metadata path (ggml tokens with
 *    U+2581, and an embedded tokenizer.json). */
#include <stdlib.h>
#include <string.h>

#include "spx_error.h"
#include "spx_format.h"
#include "spx_test.h"
#include "spx_tokenizer.h"

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put_u32(buf *b, uint32_t v)
{
    unsigned char c[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    put(b, c, 4);
}

/* vocabulary: <unk>, <s>, </s>, 256 byte pieces (ids 3..258), then `extra` pieces */
typedef struct tvocab {
    uint32_t n;
    char *piece[600];
    float score[600];
} tvocab;

static void tv_add(tvocab *v, const char *s, float score)
{
    v->piece[v->n] = strdup(s);
    v->score[v->n++] = score;
}

static void tv_base(tvocab *v)
{
    v->n = 0;
    tv_add(v, "<unk>", 0);
    tv_add(v, "\n<s>\n", 0);
    tv_add(v, "\n</s>\n", 0);
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof(s), "<0x%02X>", b);
        tv_add(v, s, 0);
    }
}

static void tv_free(tvocab *v)
{
    for (uint32_t i = 0; i < v->n; i++)
        free(v->piece[i]);
    v->n = 0;
}

static buf tv_bin(const tvocab *v)
{
    buf b = {NULL, 0, 0};
    uint32_t max = 0;
    for (uint32_t i = 0; i < v->n; i++)
        if (strlen(v->piece[i]) > max)
            max = (uint32_t)strlen(v->piece[i]);
    put_u32(&b, max);
    for (uint32_t i = 0; i < v->n; i++) {
        uint32_t u;
        memcpy(&u, &v->score[i], 4);
        put_u32(&b, u);
        put_u32(&b, (uint32_t)strlen(v->piece[i]));
        put(&b, v->piece[i], strlen(v->piece[i]));
    }
    return b;
}

/* ---- llama2.c's encode, transcribed directly (linear lookups, rescans every pair) ---- */
static int naive_lookup(const tvocab *v, const char *s)
{
    for (uint32_t i = 0; i < v->n; i++)
        if (strcmp(v->piece[i], s) == 0)
            return (int)i;
    return -1;
}

static size_t naive_encode(const tvocab *v, const char *text, int *tokens)
{
    size_t n = 0, str_len = 0;
    char sb[64], cat[256];
    if (text[0] != 0)
        tokens[n++] = naive_lookup(v, " ");
    for (const char *c = text; *c; c++) {
        if ((*c & 0xC0) != 0x80)
            str_len = 0;
        sb[str_len++] = *c;
        sb[str_len] = 0;
        if ((*(c + 1) & 0xC0) == 0x80 && str_len < 4)
            continue;
        int id = naive_lookup(v, sb);
        if (id != -1) {
            tokens[n++] = id;
        } else {
            for (size_t i = 0; i < str_len; i++)
                tokens[n++] = (unsigned char)sb[i] + 3;
        }
        str_len = 0;
    }
    for (;;) {
        float best = -1e10f;
        int best_id = -1;
        long best_idx = -1;
        for (size_t i = 0; i + 1 < n; i++) {
            snprintf(cat, sizeof(cat), "%s%s", v->piece[tokens[i]], v->piece[tokens[i + 1]]);
            int id = naive_lookup(v, cat);
            if (id != -1 && v->score[id] > best) {
                best = v->score[id];
                best_id = id;
                best_idx = (long)i;
            }
        }
        if (best_idx == -1)
            break;
        tokens[best_idx] = best_id;
        for (size_t i = (size_t)best_idx + 1; i + 1 < n; i++)
            tokens[i] = tokens[i + 1];
        n--;
    }
    return n;
}

static void random_vocab(tvocab *v, uint64_t *rng)
{
    static const char *const alpha[] = {"a", "b", "c", " ", "\xC3\xA9"};
    tv_base(v);
    tv_add(v, " ", -1);
    for (int k = 0; k < 4; k++)
        tv_add(v, alpha[k], -2);
    while (v->n < 259 + 5 + 60) {
        char s[32] = {0};
        size_t len = 2 + spx_test_rand(rng) % 4;
        for (size_t i = 0; i < len; i++)
            strcat(s, alpha[spx_test_rand(rng) % 5]);
        if (naive_lookup(v, s) >= 0)
            continue;
        /* integer scores in a small range: many ties; a few at or below llama2.c's -1e10 floor */
        float sc = (float)(int)(spx_test_rand(rng) % 7) - 3.0f;
        if (spx_test_rand(rng) % 20 == 0)
            sc = -1e10f;
        tv_add(v, s, sc);
    }
}

static void test_vs_naive(void)
{
    uint64_t rng = 12345;
    size_t bad = 0, total = 0;
    static const char *const alpha[] = {"a", "b", "c", " ", "\xC3\xA9", "\n", "x", "\xE6\x97\xA5"};
    for (int voc = 0; voc < 20; voc++) {
        tvocab v;
        random_vocab(&v, &rng);
        buf b = tv_bin(&v);
        spx_ctx ctx = SPX_CTX_INIT;
        spx_vocab *sv = NULL;
        spx_tokenizer *t = NULL;
        CHECK_RC(spx_llama2c_vocab_parse(&ctx, b.p, b.n, "random.bin", v.n, &sv), 0);
        CHECK_RC(spx_tokenizer_from_vocab(&ctx, &sv, 1, 2, &t), 0);
        CHECK(sv == NULL);
        for (int k = 0; t && k < 100; k++) {
            char text[1024] = {0};
            size_t len = spx_test_rand(&rng) % 120;
            for (size_t i = 0; i < len; i++)
                strcat(text, alpha[spx_test_rand(&rng) % 8]);
            int want[2048];
            size_t nw = naive_encode(&v, text, want);
            uint32_t *ids = NULL;
            size_t n = 0;
            CHECK_RC(spx_tokenizer_encode(&ctx, t, text, strlen(text), 0, &ids, &n), 0);
            int same = n == nw;
            for (size_t i = 0; same && i < n; i++)
                same = ids[i] == (uint32_t)want[i];
            if (!same && bad++ < 3)
                fprintf(stderr, "vocab %d text \"%s\": %zu ids vs llama2.c %zu\n", voc, text, n, nw);
            total++;
            free(ids);
        }
        spx_tokenizer_free(t);
        free(b.p);
        tv_free(&v);
    }
    fprintf(stderr, "llama2.c encoder vs direct transcription: %zu texts, %zu differ\n", total, bad);
    CHECK(total == 2000 && bad == 0);
}

static void expect_parse_fail(const unsigned char *p, size_t n, uint32_t n_vocab, const char *needle)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_vocab *v = NULL;
    int rc = spx_llama2c_vocab_parse(&ctx, p, n, "bad.bin", n_vocab, &v);
    CHECK_MSG(rc == SPX_E_LLAMA2C && v == NULL && strstr(ctx.msg, "bad.bin") && strstr(ctx.msg, needle),
              "rc %d msg \"%s\" (want \"%s\")", rc, ctx.msg, needle);
    spx_vocab_free(v);
}

static void test_file_errors(void)
{
    tvocab v;
    tv_base(&v);
    tv_add(&v, " ", -1);
    tv_add(&v, "ab", 3);
    buf b = tv_bin(&v);
    spx_ctx ctx = SPX_CTX_INIT;
    spx_vocab *sv = NULL;
    CHECK_RC(spx_llama2c_vocab_parse(&ctx, b.p, b.n, "ok.bin", v.n, &sv), 0);
    CHECK(sv && sv->n == v.n && sv->lens[260] == 2 && strcmp(sv->pieces[260], "ab") == 0 && sv->scores[260] == 3.0f &&
          sv->max_len == 6);
    spx_vocab_free(sv);
    /* every truncation */
    size_t bad = 0;
    for (size_t k = 0; k < b.n; k++) {
        spx_vocab *t = NULL;
        unsigned char *cut = malloc(k ? k : 1);
        memcpy(cut, b.p, k);
        int rc = spx_llama2c_vocab_parse(&ctx, cut, k, "cut.bin", v.n, &t);
        if (rc != SPX_E_LLAMA2C || t || !strstr(ctx.msg, "cut.bin") || (k > 4 && !strstr(ctx.msg, "offset")))
            bad++;
        free(cut);
        spx_vocab_free(t);
    }
    CHECK_MSG(bad == 0, "%zu truncations not rejected cleanly", bad);
    /* token 260's length (at offset 4 + 259*(8+len)...) patched to negative / huge */
    size_t off = 4;
    for (uint32_t i = 0; i < 260; i++)
        off += 8 + strlen(v.piece[i]);
    unsigned char *p = malloc(b.n);
    memcpy(p, b.p, b.n);
    memcpy(p + off + 4, "\xff\xff\xff\xff", 4);
    expect_parse_fail(p, b.n, v.n, "token 260: negative length -1");
    memcpy(p + off + 4, "\x00\x00\x00\x7f", 4);
    expect_parse_fail(p, b.n, v.n, "token 260: length");
    memcpy(p + off + 4, "\x07\x00\x00\x00", 4);   /* 7 > max_token_length 6 */
    expect_parse_fail(p, b.n, v.n, "exceeds max_token_length");
    memcpy(p + off + 4, "\x02\x00\x00\x00", 4);
    memcpy(p + off, "\x00\x00\xc0\x7f", 4);       /* NaN score */
    expect_parse_fail(p, b.n, v.n, "NaN");
    memcpy(p, "\x00\x00\x00\x00", 4);
    expect_parse_fail(p, b.n, v.n, "max_token_length 0");
    expect_parse_fail(b.p, b.n, v.n - 1, "trailing");
    expect_parse_fail(b.p, b.n, v.n + 1, "token 261");
    expect_parse_fail(b.p, b.n, 1000000, "cannot hold");
    free(p);
    /* from a file, with the path in the message */
    const char *path = spx_test_path(spx_test_tmpdir(), "tok.bin");
    FILE *fp = fopen(path, "wb");
    CHECK(fp && fwrite(b.p, 1, b.n - 1, fp) == b.n - 1);
    if (fp)
        fclose(fp);
    CHECK_RC(spx_llama2c_vocab_read(&ctx, path, v.n, &sv), SPX_E_LLAMA2C);
    CHECK(strstr(ctx.msg, "tok.bin") && strstr(ctx.msg, "token 260"));
    free(b.p);
    tv_free(&v);
}

static void test_decode(void)
{
    tvocab v;
    tv_base(&v);
    tv_add(&v, " ", -1);
    tv_add(&v, "a", -2);
    tv_add(&v, " a", 5);
    buf b = tv_bin(&v);
    spx_ctx ctx = SPX_CTX_INIT;
    spx_vocab *sv = NULL;
    spx_tokenizer *t = NULL;
    CHECK_RC(spx_llama2c_vocab_parse(&ctx, b.p, b.n, "d.bin", v.n, &sv), 0);
    CHECK_RC(spx_tokenizer_from_vocab(&ctx, &sv, 1, 2, &t), 0);
    char out[16];
    CHECK(spx_tokenizer_decode(t, 1, 261, out, sizeof(out)) == 1 && strcmp(out, "a") == 0);    /* after BOS */
    CHECK(spx_tokenizer_decode(t, 260, 261, out, sizeof(out)) == 2 && strcmp(out, " a") == 0);
    CHECK(spx_tokenizer_decode(t, 260, 3 + 0x0A, out, sizeof(out)) == 1 && out[0] == '\n');     /* <0x0A> */
    CHECK(spx_tokenizer_decode(t, 260, 1, out, sizeof(out)) == 0);                               /* BOS */
    CHECK(spx_tokenizer_decode(t, 260, 262, out, sizeof(out)) < 0);
    uint32_t *ids = NULL;
    size_t n = 0;
    /* default add_bos for llama2.c tokenizers is 1; " a" merges (score 5) */
    CHECK_RC(spx_tokenizer_encode(&ctx, t, "a\n", 2, -1, &ids, &n), 0);
    CHECK(n == 3 && ids[0] == 1 && ids[1] == 261 && ids[2] == 3 + 0x0A);
    char *text = NULL;
    size_t len = 0;
    CHECK_RC(spx_tokenizer_decode_all(&ctx, t, ids, n, &text, &len), 0);
    CHECK(len == 2 && text && strcmp(text, "a\n") == 0);
    free(ids);
    free(text);
    spx_tokenizer_free(t);
    /* ownership: on failure the vocabulary is freed too (ASan/LSan would report a leak) */
    CHECK_RC(spx_llama2c_vocab_parse(&ctx, b.p, b.n, "d.bin", v.n, &sv), 0);
    CHECK_RC(spx_tokenizer_from_vocab(&ctx, &sv, 99999, 2, &t), SPX_E_ARG);
    CHECK(sv == NULL && t == NULL);
    free(b.p);
    tv_free(&v);
    /* spx_vocab_create copies its inputs (pieces may hold any bytes, lengths are explicit) */
    const char *pcs[] = {"<unk>", " ", "x\0y", " x"};
    const uint32_t lens[] = {5, 1, 3, 2};
    const float sc[] = {0, -1, -2, 4};
    CHECK_RC(spx_vocab_create(&ctx, 4, pcs, lens, sc, &sv), 0);
    CHECK(sv && sv->n == 4 && sv->lens[2] == 3 && memcmp(sv->pieces[2], "x\0y", 3) == 0 && sv->max_len == 5 &&
          sv->scores[3] == 4.0f);
    CHECK_RC(spx_tokenizer_from_vocab(&ctx, &sv, -1, -1, &t), 0);
    ids = NULL;
    /* no BOS known: default adds none; " x" is not reachable ("x" alone has no piece and no
     * byte fallback exists) -> a clean error naming the byte */
    CHECK_RC(spx_tokenizer_encode(&ctx, t, "x", 1, -1, &ids, &n), SPX_E_TOKENIZER);
    CHECK(strstr(ctx.msg, "0x78") != NULL);
    CHECK_RC(spx_tokenizer_encode(&ctx, t, "", 0, -1, &ids, &n), 0);
    CHECK(n == 0 && ids != NULL);
    free(ids);
    spx_tokenizer_free(t);
}

static void test_spx_meta(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    const char *path = spx_test_path(spx_test_tmpdir(), "tok.spx");
    char p[4096];
    snprintf(p, sizeof(p), "%s", path);
    /* GGUF-style SentencePiece pieces (U+2581 for spaces) */
    const char *toks[] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", ("\xE2\x96\x81" "a"), "<0x0A>"};
    float scores[] = {0, 0, 0, -1, -2, 5, 0};
    CHECK_RC(spx_writer_open(&ctx, p, "test", &w), 0);
    if (!w)
        return;
    CHECK_RC(spx_writer_meta_str(w, "tokenizer.ggml.model", "llama", 5), 0);
    CHECK_RC(spx_writer_meta_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 7), 0);
    CHECK_RC(spx_writer_meta_arr(w, "tokenizer.ggml.scores", SPX_META_F32, scores, 7), 0);
    CHECK_RC(spx_writer_meta_u32(w, "tokenizer.ggml.bos_token_id", 1), 0);
    CHECK_RC(spx_writer_meta_u32(w, "tokenizer.ggml.eos_token_id", 2), 0);
    CHECK_RC(spx_writer_finish(w), 0);
    spx_writer_free(w);
    spx_file *f = NULL;
    spx_tokenizer *t = NULL;
    CHECK_RC(spx_file_open(&ctx, p, 0, &f), 0);
    if (f) {
        CHECK_RC(spx_tokenizer_from_spx(&ctx, f, &t), 0);
        uint32_t *ids = NULL;
        size_t n = 0;
        if (t) {
            CHECK(spx_tokenizer_bos_id(t) == 1 && spx_tokenizer_eos_id(t) == 2 && spx_tokenizer_vocab_size(t) == 7);
            /* dummy prefix " " + "a" -> " a" (5); "\n" has no piece: byte fallback <0x0A> */
            CHECK_RC(spx_tokenizer_encode(&ctx, t, "a\n", 2, -1, &ids, &n), 0);
            CHECK(n == 3 && ids[0] == 1 && ids[1] == 5 && ids[2] == 6);
        }
        free(ids);
        spx_tokenizer_free(t);
        spx_file_free(f);
    }
    /* an embedded tokenizer.json, and a file without tokenizer */
    static const char json[] = "{\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},\"merges\":[\"a b\"]}}";
    CHECK_RC(spx_writer_open(&ctx, p, "test", &w), 0);
    CHECK_RC(spx_writer_meta_str(w, "tokenizer.huggingface.json", json, strlen(json)), 0);
    CHECK_RC(spx_writer_meta_i32(w, "spx.eos_token_id", 1), 0);
    CHECK_RC(spx_writer_finish(w), 0);
    spx_writer_free(w);
    CHECK_RC(spx_file_open(&ctx, p, 0, &f), 0);
    if (f) {
        t = NULL;
        CHECK_RC(spx_tokenizer_from_spx(&ctx, f, &t), 0);
        uint32_t *ids = NULL;
        size_t n = 0;
        if (t) {
            CHECK(spx_tokenizer_eos_id(t) == 1 && spx_tokenizer_bos_id(t) == -1);
            CHECK_RC(spx_tokenizer_encode(&ctx, t, "abb", 3, -1, &ids, &n), 0);
            CHECK(n == 2 && ids[0] == 2 && ids[1] == 1);
            free(ids);
            ids = NULL;
            CHECK_RC(spx_tokenizer_encode(&ctx, t, "a", 1, 1, &ids, &n), SPX_E_TOKENIZER);   /* no BOS */
        }
        free(ids);
        spx_tokenizer_free(t);
        spx_file_free(f);
    }
    CHECK_RC(spx_writer_open(&ctx, p, "test", &w), 0);
    CHECK_RC(spx_writer_meta_u32(w, "llama.vocab_size", 7), 0);
    CHECK_RC(spx_writer_finish(w), 0);
    spx_writer_free(w);
    CHECK_RC(spx_file_open(&ctx, p, 0, &f), 0);
    if (f) {
        t = NULL;
        CHECK_RC(spx_tokenizer_from_spx(&ctx, f, &t), SPX_E_MISSING);
        CHECK(t == NULL && strstr(ctx.msg, "tok.spx") != NULL);
        spx_file_free(f);
    }
}

int spx_test_main(void)
{
    test_vs_naive();
    test_file_errors();
    test_decode();
    test_spx_meta();
    return 0;
}
