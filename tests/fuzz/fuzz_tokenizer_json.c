/* fuzz_tokenizer_json.c: Hugging Face tokenizer.json loading (spx_tokenizer_load_json) and the
 * encoder/decoder of whatever loads.
 *
 * Input: the JSON text, optionally followed by a NUL byte and text to encode; without a NUL the
 * first 512 bytes of the input itself are encoded too. The fixed text of fuzz_common.h is always
 * encoded. Oracles: see fuzz_tok_roundtrip. */
#include <string.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_tokenizer *tok = NULL;
    const uint8_t *nul = memchr(data, 0, size);
    size_t json_len = nul ? (size_t)(nul - data) : size;
    const char *text = nul ? (const char *)nul + 1 : (const char *)data;
    size_t text_len = nul ? size - json_len - 1 : (size < 512 ? size : 512);
    int rc = spx_tokenizer_load_json(&ctx, (const char *)data, json_len, "fuzz/tokenizer.json", &tok);
    FUZZ_ASSERT(rc <= 0 && (rc == 0) == (tok != NULL), "return code %d vs *out", rc);
    if (rc < 0) {
        FUZZ_ASSERT(ctx.code == rc && ctx.msg[0], "failure without a message");
        return 0;
    }
    fuzz_tok_roundtrip(tok, fuzz_fixed_text, sizeof fuzz_fixed_text - 1);
    fuzz_tok_roundtrip(tok, text, text_len);
    spx_tokenizer_free(tok);
    return 0;
}
