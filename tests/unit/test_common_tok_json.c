/* test_common_tok_json.c: tokenizer.json parsing and encoding on tiny tokenizers written here
 * (no ../shared needed). Expected ids are worked out by hand in the comments: they check merge
 * order by rank (not left-to-right, not by length), both merge syntaxes, byte fallback, fused
 * unknowns, added tokens, the BOS template, byte-level + Digits pre-tokenization, decoding, and
 * the error paths (malformed JSON at every truncation, unsupported types named in the message). */
#include <stdlib.h>
#include <string.h>

#include "spx_error.h"
#include "spx_test.h"
#include "spx_tokenizer.h"

#define U "\xE2\x96\x81"   /* U+2581 */

static const char k_meta_json[] =
    "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":["
    "{\"id\":0,\"content\":\"<unk>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true},"
    "{\"id\":1,\"content\":\"<s>\",\"special\":true},{\"id\":2,\"content\":\"</s>\",\"special\":true}],"
    "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"" U "\"},"
    "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"" U "\"},{\"type\":\"NFC\"}]},"
    "\"pre_tokenizer\":null,"
    "\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},"
    "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"pair\":[],\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],"
    "\"tokens\":[\"<s>\"]}}},"
    "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"" U "\"},"
    "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,"
    "\"stop\":0}]},"
    "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"continuing_subword_prefix\":null,"
    "\"end_of_word_suffix\":null,\"fuse_unk\":true,\"byte_fallback\":true,\"ignore_merges\":false,"
    "\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"<0x0A>\":3,\"<0xC3>\":4,\"<0xA9>\":5,\"" U "\":6,\"a\":7,\"b\":8,"
    "\"c\":9,\"ab\":10,\"" U "a\":11,\"" U "ab\":12,\"abc\":13,\"bc\":14},"
    /* ranks: (a,b)=0 (U,a)=1 (Ua,b)=2 (ab,c)=3 (b,c)=4; string and pair forms mixed */
    "\"merges\":[\"a b\",[\"" U "\",\"a\"],\"" U "a b\",\"ab c\",[\"b\",\"c\"]]}}";

static int enc(const spx_tokenizer *t, const char *s, int add_bos, const uint32_t *want, size_t nwant)
{
    spx_ctx ctx = SPX_CTX_INIT;
    uint32_t *ids = NULL;
    size_t n = 0;
    int ok = spx_tokenizer_encode(&ctx, t, s, strlen(s), add_bos, &ids, &n) == 0 && ids != NULL && n == nwant &&
             (n == 0 || memcmp(ids, want, n * sizeof(uint32_t)) == 0);
    if (!ok) {
        fprintf(stderr, "encode(\"%s\", %d): %s got", s, add_bos, ctx.msg);
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, " %u", ids[i]);
        fprintf(stderr, ", want");
        for (size_t i = 0; i < nwant; i++)
            fprintf(stderr, " %u", want[i]);
        fputc('\n', stderr);
    }
    free(ids);
    return ok;
}

#define ENC(t, s, bos, ...)                                                                  \
    do {                                                                                     \
        static const uint32_t w_[] = {__VA_ARGS__};                                          \
        CHECK(enc((t), (s), (bos), w_, sizeof(w_) / sizeof(w_[0])));                         \
    } while (0)

static int roundtrip(const spx_tokenizer *t, const char *s)
{
    spx_ctx ctx = SPX_CTX_INIT;
    uint32_t *ids = NULL;
    size_t n = 0, len = 0;
    char *text = NULL;
    int ok = spx_tokenizer_encode(&ctx, t, s, strlen(s), -1, &ids, &n) == 0 &&
             spx_tokenizer_decode_all(&ctx, t, ids, n, &text, &len) == 0 && len == strlen(s) && memcmp(text, s, len) == 0;
    if (!ok)
        fprintf(stderr, "round trip of \"%s\" gave \"%s\" (%s)\n", s, text ? text : "", ctx.msg);
    free(ids);
    free(text);
    return ok;
}

static void test_metaspace(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_tokenizer *t = NULL;
    CHECK_RC(spx_tokenizer_load_json(&ctx, k_meta_json, strlen(k_meta_json), "meta.json", &t), 0);
    if (!t) {
        fprintf(stderr, "%s\n", ctx.msg);
        return;
    }
    CHECK(spx_tokenizer_vocab_size(t) == 15 && spx_tokenizer_bos_id(t) == 1 && spx_tokenizer_eos_id(t) == 2);
    /* "Uabc": (a,b) rank 0 first -> U ab c; then (ab,c) rank 3 -> U abc (U+a never gets its turn) */
    ENC(t, "abc", 0, 6, 13);
    /* "Uab": (a,b) before (U,a) -> U ab; no merge (U,ab) -> not the "Uab" piece */
    ENC(t, "ab", 0, 6, 10);
    ENC(t, "a", 0, 11);
    /* "UbcUa": (U,a) rank 1 before (b,c) rank 4 */
    ENC(t, "bc a", 0, 6, 14, 11);
    /* byte fallback for a character without a piece */
    ENC(t, "\xC3\xA9", 0, 6, 4, 5);
    /* unknown characters fuse into one <unk> */
    ENC(t, "xyz", 0, 6, 0);
    /* HF keeps the unknown pending across byte-fallback tokens: U <0x0A> <unk> */
    ENC(t, "x\ny", 0, 6, 3, 0);
    /* added tokens are matched in the raw text; each segment gets its own Prepend */
    ENC(t, "<s>ab</s>", 0, 1, 6, 10, 2);
    ENC(t, "ab", -1, 1, 6, 10);
    ENC(t, "ab", 1, 1, 6, 10);
    ENC(t, "", -1, 1);
    ENC(t, " ab", 0, 6, 6, 10);
    CHECK(roundtrip(t, "ab"));
    CHECK(roundtrip(t, " ab  c"));
    CHECK(roundtrip(t, "\xC3\xA9\na"));
    CHECK(spx_tokenizer_piece_id(t, U "ab", strlen(U "ab")) == 12);
    CHECK(spx_tokenizer_piece_id(t, "</s>", 4) == 2);
    CHECK(spx_tokenizer_piece_id(t, "zz", 2) == -1);
    /* streaming decode: strip after BOS only, specials decode to nothing, snprintf semantics */
    char buf[16];
    CHECK(spx_tokenizer_decode(t, 1, 11, buf, sizeof(buf)) == 1 && strcmp(buf, "a") == 0);
    CHECK(spx_tokenizer_decode(t, 7, 11, buf, sizeof(buf)) == 2 && strcmp(buf, " a") == 0);
    CHECK(spx_tokenizer_decode(t, 7, 2, buf, sizeof(buf)) == 0 && buf[0] == 0);
    CHECK(spx_tokenizer_decode(t, 7, 12, buf, 2) == 3 && strcmp(buf, " ") == 0);
    CHECK(spx_tokenizer_decode(t, 7, 4, buf, sizeof(buf)) == 1 && (unsigned char)buf[0] == 0xC3);
    CHECK(spx_tokenizer_decode(t, 7, 15, buf, sizeof(buf)) < 0);
    CHECK_RC(spx_tokenizer_encode(&ctx, t, "a", 1, 2, &(uint32_t *){NULL}, &(size_t){0}), SPX_E_ARG);
    spx_tokenizer_free(t);
}

/* GPT-2 byte <-> unicode table, written out independently of the library */
static unsigned bl_cp(unsigned b)
{
    int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (printable)
        return b;
    unsigned k = 0;
    for (unsigned x = 0; x < b; x++)
        if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE))
            k++;
    return 256 + k;
}

static char *bytelevel_json(void)
{
    size_t cap = 64 * 1024, n = 0;
    char *j = malloc(cap);
    n += (size_t)snprintf(j + n, cap - n,
                          "{\"added_tokens\":[{\"id\":260,\"content\":\"<|endoftext|>\",\"special\":true}],"
                          "\"normalizer\":null,\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
                          "{\"type\":\"Digits\",\"individual_digits\":true},{\"type\":\"ByteLevel\","
                          "\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":true}]},"
                          "\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"},"
                          "\"model\":{\"type\":\"BPE\",\"vocab\":{");
    for (unsigned b = 0; b < 256; b++) {
        unsigned cp = bl_cp(b);
        if (cp == '"' || cp == '\\')
            n += (size_t)snprintf(j + n, cap - n, "\"\\%c\":%u,", (char)cp, b);
        else
            n += (size_t)snprintf(j + n, cap - n, "\"\\u%04x\":%u,", cp, b);
    }
    /* 0x120 is the mapped space 'G-dot' */
    n += (size_t)snprintf(j + n, cap - n,
                          "\"\\u0120t\":256,\"he\":257,\"\\u0120the\":258,\"\\u0120\\u0120\":259},"
                          "\"merges\":[\"\\u0120 t\",\"h e\",[\"\\u0120t\",\"he\"],\"\\u0120 \\u0120\"]}}");
    return j;
}

static void test_bytelevel(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_tokenizer *t = NULL;
    char *j = bytelevel_json();
    CHECK_RC(spx_tokenizer_load_json(&ctx, j, strlen(j), "bytelevel.json", &t), 0);
    free(j);
    if (!t) {
        fprintf(stderr, "%s\n", ctx.msg);
        return;
    }
    CHECK(spx_tokenizer_vocab_size(t) == 261 && spx_tokenizer_bos_id(t) == 260 && spx_tokenizer_eos_id(t) == 260);
    /* Digits splits "123" off first; regex: "the" " cat" "'s" " " ; t+he stays two tokens
     * (no "t he" merge), " cat" has no merges, each digit alone */
    ENC(t, "the cat's 123", -1, 116, 257, 32, 99, 97, 116, 39, 115, 32, 49, 50, 51);
    /* " the": (G,t) -> Gt, (h,e) -> he, (Gt,he) -> Gthe */
    ENC(t, "the the", 0, 116, 257, 258);
    /* whitespace: "a   b" -> "a" "  " " b": the run gives its last space to the word */
    ENC(t, "a   b", 0, 97, 259, 32, 98);
    /* trailing whitespace run stays whole; newline is its own class member */
    ENC(t, "a\n\nb  ", 0, 97, 10, 10, 98, 259);
    ENC(t, "<|endoftext|>x", 0, 260, 120);
    /* invalid UTF-8 bytes are single "other" characters */
    ENC(t, "\xFF\xFE", 0, 255, 254);
    CHECK(roundtrip(t, "the cat's 123"));
    CHECK(roundtrip(t, "  leading\tand trailing \n"));
    CHECK(roundtrip(t, "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x99\x82"));
    spx_tokenizer_free(t);
}

static void expect_fail(const char *json, int code, const char *needle)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_tokenizer *t = NULL;
    int rc = spx_tokenizer_load_json(&ctx, json, strlen(json), "bad.json", &t);
    CHECK_MSG(rc == code && t == NULL && strstr(ctx.msg, "bad.json") && (!needle || strstr(ctx.msg, needle)),
              "rc %d (%s) msg \"%s\", want %s containing \"%s\"", rc, spx_err_name(rc), ctx.msg, spx_err_name(code),
              needle ? needle : "");
    spx_tokenizer_free(t);
}

static void test_errors(void)
{
    expect_fail("{\"model\": {\"type\": \"BPE\", \"vocab\": {", SPX_E_JSON, "byte offset");
    expect_fail("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", SPX_E_UNSUPPORTED, "WordPiece");
    expect_fail("{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}", SPX_E_UNSUPPORTED, "Unigram");
    expect_fail("[1, 2]", SPX_E_TOKENIZER, "object");
    expect_fail("{\"normalizer\": {\"type\": \"Lowercase\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, "
                "\"merges\": []}}", SPX_E_UNSUPPORTED, "Lowercase");
    expect_fail("{\"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, "
                "\"merges\": []}}", SPX_E_UNSUPPORTED, "Whitespace");
    expect_fail("{\"decoder\": {\"type\": \"WordPiece\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, "
                "\"merges\": []}}", SPX_E_UNSUPPORTED, "WordPiece");
    expect_fail("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a q\"]}}",
                SPX_E_TOKENIZER, "merges[0]");
    expect_fail("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b c\"]}}",
                SPX_E_TOKENIZER, "merges[0]");
    expect_fail("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}, \"merges\": []}}", SPX_E_TOKENIZER, "\"a\"");
    expect_fail("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}, \"merges\": []}}", SPX_E_TOKENIZER,
                "twice");
    expect_fail("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"unk_token\": \"<unk>\"}}",
                SPX_E_TOKENIZER, "unk_token");
    expect_fail("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [], \"dropout\": 0.1}}",
                SPX_E_UNSUPPORTED, "dropout");
    /* every truncation of a valid file fails cleanly (ASan checks the reads) */
    size_t n = strlen(k_meta_json), bad = 0;
    for (size_t k = 0; k < n; k++) {
        spx_ctx ctx = SPX_CTX_INIT;
        spx_tokenizer *t = NULL;
        char *cut = malloc(k ? k : 1);
        memcpy(cut, k_meta_json, k);
        int rc = spx_tokenizer_load_json(&ctx, cut, k, "cut.json", &t);
        if (rc >= 0 || t != NULL || ctx.msg[0] == 0)
            bad++;
        spx_tokenizer_free(t);
        free(cut);
    }
    CHECK_MSG(bad == 0, "%zu truncations of the JSON were accepted", bad);
    /* a file that is not JSON */
    spx_ctx ctx = SPX_CTX_INIT;
    spx_tokenizer *t = NULL;
    const char *p = spx_test_path(spx_test_tmpdir(), "not_json.bin");
    FILE *fp = fopen(p, "wb");
    CHECK(fp && fwrite("\x07\0\0\0", 1, 4, fp) == 4);
    if (fp)
        fclose(fp);
    CHECK_RC(spx_tokenizer_load_file(&ctx, p, &t), SPX_E_TOKENIZER);
    CHECK_RC(spx_tokenizer_load_file(&ctx, spx_test_path(spx_test_tmpdir(), "missing.json"), &t), SPX_E_IO);
    CHECK(strstr(ctx.msg, "missing.json") != NULL);
}

int spx_test_main(void)
{
    test_metaspace();
    test_bytelevel();
    test_errors();
    return 0;
}
