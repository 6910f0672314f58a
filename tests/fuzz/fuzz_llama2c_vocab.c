/* fuzz_llama2c_vocab.c: llama2.c tokenizer .bin parsing (spx_llama2c_vocab_parse) and the
 * score-driven encoder over whatever parses.
 *
 * n_vocab is not stored in the file, so the target first counts the records that fit (walking the
 * {f32 score, i32 len, bytes} records the way the format defines them) and parses with that count,
 * with count + 1 (one record missing) and with count - 1 (trailing bytes). Real tokenizer files
 * replay unchanged. Oracles: a count that leaves bytes unread or needs more than the file holds
 * is rejected; the tokenizer built from the vocabulary encodes the fixed
 * text and the input's own bytes (ids in range, see fuzz_tok_roundtrip). */
#include <string.h>

#include "fuzz_common.h"

#define MAX_RECORDS (1u << 20)

/* Records that fit from offset 4: returns the count; *exact is 1 when they end exactly at `size`. */
static uint32_t count_records(const uint8_t *data, size_t size, int *exact)
{
    size_t off = 4;
    uint32_t n = 0;
    *exact = 0;
    if (size < 4)
        return 0;
    while (size - off >= 8 && n < MAX_RECORDS) {
        uint32_t len = fuzz_rd32(data + off + 4);
        if (len > 0x7fffffffu || len > size - off - 8)
            return n;
        off += 8 + len;
        n++;
    }
    *exact = off == size;
    return n;
}

static void try_parse(const uint8_t *data, size_t size, uint32_t n, int must_fail)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_vocab *v = NULL;
    spx_tokenizer *tok = NULL;
    int rc = spx_llama2c_vocab_parse(&ctx, data, size, "fuzz/tokenizer.bin", n, &v);
    FUZZ_ASSERT(rc <= 0 && (rc == 0) == (v != NULL), "return code %d vs *out", rc);
    if (must_fail)
        FUZZ_ASSERT(rc < 0, "vocab of %u records accepted although the file holds a different count", n);
    if (rc < 0) {
        FUZZ_ASSERT(ctx.code == rc && ctx.msg[0], "failure without a message");
        return;
    }
    FUZZ_ASSERT(v->n == n, "parsed %u pieces, asked %u", v->n, n);
    for (uint32_t i = 0; i < v->n; i++)
        FUZZ_ASSERT(v->pieces[i] && v->pieces[i][v->lens[i]] == 0, "piece %u not terminated", i);
    int bos = n > 1 ? 1 : -1, eos = n > 2 ? 2 : -1;
    if (spx_tokenizer_from_vocab(&ctx, &v, bos, eos, &tok) == 0) {
        fuzz_tok_roundtrip(tok, fuzz_fixed_text, sizeof fuzz_fixed_text - 1);
        fuzz_tok_roundtrip(tok, (const char *)data, size < 256 ? size : 256);
    }
    FUZZ_ASSERT(v == NULL, "from_vocab did not take the vocabulary");
    spx_tokenizer_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int exact = 0;
    uint32_t n = count_records(data, size, &exact);
    int capped = n == MAX_RECORDS;   /* the walk stopped early: no claim about other counts */
    try_parse(data, size, n, !exact && !capped);
    try_parse(data, size, n + 1, !capped);
    if (n > 0)
        try_parse(data, size, n - 1, 1);
    return 0;
}
