/* fuzz_common.h: helpers several fuzz targets share (static inline: each target is one file). */
#ifndef SPX_FUZZ_COMMON_H
#define SPX_FUZZ_COMMON_H

#include <string.h>

#include "fuzz_target.h"
#include "spx_tokenizer.h"

/* Fixed text every tokenizer target encodes: ASCII words, digits, punctuation, multi-byte UTF-8
 * (2, 3 and 4 bytes), U+2581, special-token spellings, a lone continuation byte and bytes that are
 * never valid UTF-8, an overlong encoding and a truncated sequence at the very end. */
static const char fuzz_fixed_text[] =
    "Once upon a time, Lily said: \"Hello world!\" 123 4.5e6\n\t  caf\xc3\xa9 \xe2\x96\x81\xe2\x96\x81x "
    "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 <s></s><unk><|endoftext|> \x80 \xff\xfe \xc0\xaf \xe2\x82";

/* Encode `text` with and without special tokens, decode the ids both ways and check the promises
 * of spx_tokenizer.h: ids are < vocab size, decode_all is NUL-terminated at *len, streaming decode
 * returns the piece length of every id it is given. */
static inline void fuzz_tok_roundtrip(const spx_tokenizer *tok, const char *text, size_t len)
{
    static const int modes[3] = {-1, 0, 1};
    uint32_t nv = spx_tokenizer_vocab_size(tok);
    for (int m = 0; m < 3; m++) {
        spx_ctx ctx = SPX_CTX_INIT;
        uint32_t *ids = NULL;
        size_t n = 0;
        if (spx_tokenizer_encode(&ctx, tok, text, len, modes[m], &ids, &n) == 0) {
            FUZZ_ASSERT(ids != NULL, "encode succeeded with NULL ids");
            for (size_t i = 0; i < n; i++)
                FUZZ_ASSERT(ids[i] < nv, "id %u at %zu >= vocab %u", ids[i], i, nv);
            char *out = NULL;
            size_t out_len = 0;
            if (spx_tokenizer_decode_all(&ctx, tok, ids, n, &out, &out_len) == 0)
                FUZZ_ASSERT(out && strlen(out) <= out_len, "decode_all text/len mismatch");
            free(out);
            int prev = -1;
            char piece[8];
            for (size_t i = 0; i < n; i++) {
                int r = spx_tokenizer_decode(tok, prev, ids[i], piece, sizeof piece);
                FUZZ_ASSERT(r >= 0, "decode of in-range id %u failed", ids[i]);
                prev = (int)ids[i];
            }
        }
        free(ids);
    }
    char piece[4];
    FUZZ_ASSERT(spx_tokenizer_decode(tok, -1, nv, piece, sizeof piece) < 0, "out-of-range id decoded");
    int bos = spx_tokenizer_bos_id(tok), eos = spx_tokenizer_eos_id(tok);
    FUZZ_ASSERT(bos < (int64_t)nv && eos < (int64_t)nv, "bos %d / eos %d outside vocab %u", bos, eos, nv);
    (void)spx_tokenizer_piece_id(tok, "a", 1);
    (void)spx_tokenizer_piece_id(tok, "", 0);
}

#endif
