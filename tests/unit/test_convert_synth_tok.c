/* test_convert_synth_tok.c: the synthetic tokenizer.json is well formed (every merge's parts and
 * result are in the vocabulary, ids 0..V-1, byte tokens at 3..258) and the project's tokenizer
 * (common/spx_tokenizer.h) loads it and round-trips text exactly. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "spx_error.h"
#include "spx_synth.h"
#include "spx_test.h"
#include "spx_tokenizer.h"

static void check_structure(const char *json, size_t len, uint32_t V)
{
    cJSON *j = cJSON_ParseWithLength(json, len);
    CHECK(j != NULL);
    if (!j)
        return;
    cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
    cJSON *merges = cJSON_GetObjectItemCaseSensitive(model, "merges");
    CHECK(cJSON_GetArraySize(vocab) == (int)V);
    unsigned char *seen = calloc(V, 1);
    for (cJSON *e = vocab ? vocab->child : NULL; e; e = e->next) {
        int id = (int)e->valuedouble;
        CHECK_MSG(id >= 0 && (uint32_t)id < V && !seen[id], "piece %s has bad or repeated id %d", e->string, id);
        if (id >= 0 && (uint32_t)id < V)
            seen[id] = 1;
    }
    free(seen);
    char name[16];
    for (int b = 0; b < 256; b++) {
        snprintf(name, sizeof name, "<0x%02X>", b);
        cJSON *e = cJSON_GetObjectItemCaseSensitive(vocab, name);
        CHECK_MSG(e && (int)e->valuedouble == 3 + b, "byte token %s", name);
    }
    int n_merges = 0;
    for (cJSON *m = merges ? merges->child : NULL; m; m = m->next, n_merges++) {
        const char *s = m->valuestring, *sp = s ? strchr(s, ' ') : NULL;
        CHECK(sp != NULL && strchr(sp + 1, ' ') == NULL);
        if (!sp)
            continue;
        char a[128], b[128], ab[256];
        snprintf(a, sizeof a, "%.*s", (int)(sp - s), s);
        snprintf(b, sizeof b, "%s", sp + 1);
        snprintf(ab, sizeof ab, "%s%s", a, b);
        cJSON *ia = cJSON_GetObjectItemCaseSensitive(vocab, a), *ib = cJSON_GetObjectItemCaseSensitive(vocab, b);
        cJSON *iab = cJSON_GetObjectItemCaseSensitive(vocab, ab);
        CHECK_MSG(ia && ib && iab, "merge '%s': part or result missing", s);
        if (ia && ib && iab)
            CHECK_MSG(iab->valuedouble > ia->valuedouble && iab->valuedouble > ib->valuedouble,
                      "merge '%s' produces an earlier id", s);
    }
    /* every piece after the single characters is the result of exactly one merge */
    CHECK_MSG(V <= 259 + 74 || n_merges == (int)V - (259 + 74), "%d merges for vocab %u", n_merges, V);
    cJSON_Delete(j);
}

static void roundtrip(const spx_tokenizer *tok, const char *text, int exact)
{
    spx_ctx ctx = SPX_CTX_INIT;
    uint32_t *ids = NULL;
    size_t n = 0, len = 0;
    char *back = NULL;
    CHECK_RC(spx_tokenizer_encode(&ctx, tok, text, strlen(text), 1, &ids, &n), 0);
    CHECK(n >= 1 && ids && ids[0] == 1);
    CHECK_RC(spx_tokenizer_decode_all(&ctx, tok, ids, n, &back, &len), 0);
    if (back && exact)
        CHECK_MSG(len == strlen(text) && !memcmp(back, text, len), "round trip: '%s' -> '%s'", text, back);
    else if (back)
        CHECK_MSG(len >= strlen(text), "decode shorter than input: '%s' -> '%s'", text, back);
    free(ids);
    free(back);
}

static void check_vocab(uint32_t V)
{
    spx_ctx ctx = SPX_CTX_INIT;
    char *json = NULL;
    size_t len = 0;
    CHECK_RC(spx_synth_tokenizer_json(&ctx, V, &json, &len), 0);
    if (!json)
        return;
    check_structure(json, len, V);
    spx_tokenizer *tok = NULL;
    CHECK_RC(spx_tokenizer_load_json(&ctx, json, len, "synth tokenizer.json", &tok), 0);
    if (!tok) {
        fprintf(stderr, "load failed: %s\n", ctx.msg);
        free(json);
        return;
    }
    CHECK(spx_tokenizer_vocab_size(tok) == V);
    CHECK(spx_tokenizer_bos_id(tok) == 1);
    /* with vocab 259 spaces are byte-fallback U+2581 and decode as U+2581 (see spx_synth.h) */
    int exact = V > 259;
    roundtrip(tok, "the cat sat on the mat.", exact);
    roundtrip(tok, "Hello World, 42 dogs ran away! caf\xC3\xA9 \xE2\x80\x94 ok", exact);
    roundtrip(tok, "  leading and trailing spaces  ", exact);
    roundtrip(tok, "tabs\tand\nnewlines \xF0\x9F\x98\x80 emoji", exact);
    if (V >= 512) {
        /* " the" is one merged piece: [<s>, id("▁the")] */
        int id = spx_tokenizer_piece_id(tok, "\xE2\x96\x81the", 6);
        CHECK(id > 259);
        uint32_t *ids = NULL;
        size_t n = 0;
        CHECK_RC(spx_tokenizer_encode(&ctx, tok, "the", 3, 1, &ids, &n), 0);
        CHECK_MSG(n == 2 && ids && ids[1] == (uint32_t)id, "'the' -> %zu tokens", n);
        free(ids);
    }
    spx_tokenizer_free(tok);
    free(json);
}

int spx_test_main(void)
{
    check_vocab(512);
    check_vocab(259);
    check_vocab(260);
    check_vocab(300);
    check_vocab(5000);
    spx_ctx ctx = SPX_CTX_INIT;
    char *json = NULL;
    size_t len = 0;
    CHECK_RC(spx_synth_tokenizer_json(&ctx, 258, &json, &len), SPX_E_ARG);
    CHECK(json == NULL);
    /* deterministic: two calls give the same bytes */
    char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    CHECK_RC(spx_synth_tokenizer_json(&ctx, 1000, &a, &la), 0);
    CHECK_RC(spx_synth_tokenizer_json(&ctx, 1000, &b, &lb), 0);
    CHECK(a && b && la == lb && !memcmp(a, b, la));
    free(a);
    free(b);
    return 0;
}
