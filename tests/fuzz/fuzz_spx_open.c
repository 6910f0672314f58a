/* fuzz_spx_open.c: the .spx reader (spx_file_open_mem) on arbitrary bytes.
 *
 * Oracles: opening without and with SPX_OPEN_VERIFY_DATA agree with spx_file_verify_data; every
 * tensor of a verified file decodes (spx_decode_f32) and is found by name; every metadata entry
 * is found by key and its array elements are readable; the embedded tokenizer (if any) and the
 * model config are parsed without crashing. Each input is checked as is and once more with its
 * checksums recomputed (fuzz_spx_reseal.h), which lets mutations reach the structural checks. */
#include <string.h>

#include "fuzz_common.h"
#include "fuzz_spx_reseal.h"
#include "spx_arch.h"
#include "spx_format.h"
#include "spx_tokenizer.h"

static void check_meta(const spx_file *f)
{
    spx_ctx ctx = SPX_CTX_INIT;
    for (size_t i = 0; i < spx_file_meta_count(f); i++) {
        const spx_meta *m = spx_file_meta(f, i);
        FUZZ_ASSERT(spx_file_meta_find(f, m->key) == m, "metadata key '%s' not found by name", m->key);
        uint64_t u;
        int64_t s;
        double d;
        int b;
        const char *str;
        size_t len;
        (void)spx_meta_get_u64(&ctx, f, m->key, &u);
        (void)spx_meta_get_i64(&ctx, f, m->key, &s);
        (void)spx_meta_get_f64(&ctx, f, m->key, &d);
        (void)spx_meta_get_bool(&ctx, f, m->key, &b);
        if (spx_meta_get_str(&ctx, f, m->key, &str, &len) == 0)
            FUZZ_ASSERT(strlen(str) == len, "STR '%s' length %zu but strlen %zu", m->key, len, strlen(str));
        if (m->type != SPX_META_ARR)
            continue;
        uint64_t n = m->count < 4096 ? m->count : 4096;
        for (uint64_t k = 0; k < n; k++) {
            if (m->elem_type == SPX_META_STR) {
                uint32_t sl = 0;
                const char *p = spx_meta_arr_str(m, k, &sl);
                volatile char sink = sl ? p[sl - 1] : 0;   /* touch the last byte: ASan checks it */
                (void)sink;
            } else if (m->elem_type == SPX_META_F32 || m->elem_type == SPX_META_F64) {
                (void)spx_meta_arr_f64(m, k);
            } else {
                (void)spx_meta_arr_i64(m, k);
            }
        }
    }
}

static void check_tensors(const spx_file *f)
{
    spx_ctx ctx = SPX_CTX_INIT;
    for (uint32_t i = 0; i < spx_file_tensor_count(f); i++) {
        const spx_tensor *t = spx_file_tensor(f, i);
        uint64_t numel = 0;
        FUZZ_ASSERT(spx_file_find(f, t->name) == t, "tensor '%s' not found by name", t->name);
        FUZZ_ASSERT(spx_tensor_numel(&ctx, t, &numel) == 0, "numel of a verified tensor fails");
        if (numel > FUZZ_MAX_NUMEL)
            continue;
        float *out = malloc((size_t)numel * sizeof *out);
        if (!out)
            continue;
        int rc = spx_decode_f32(&ctx, t, spx_file_data(f, t), out);
        FUZZ_ASSERT(rc == 0, "tensor '%s' of a verified file does not decode: %s", t->name, ctx.msg);
        free(out);
    }
}

static void check_one(const uint8_t *data, size_t size)
{
    spx_ctx ctx = SPX_CTX_INIT, ctx2 = SPX_CTX_INIT;
    spx_file *f = NULL, *fv = NULL;
    int rc_plain = spx_file_open_mem(&ctx, data, size, "fuzz.spx", 0, &f);
    int rc_verify = spx_file_open_mem(&ctx2, data, size, "fuzz.spx", SPX_OPEN_VERIFY_DATA, &fv);
    FUZZ_ASSERT(rc_plain <= 0 && rc_verify <= 0, "positive return codes");
    FUZZ_ASSERT((rc_plain == 0) == (f != NULL) && (rc_verify == 0) == (fv != NULL), "*out vs return code");
    FUZZ_ASSERT(rc_plain == 0 || rc_verify == rc_plain, "plain open %d but verified open %d", rc_plain, rc_verify);
    if (rc_plain < 0)
        FUZZ_ASSERT(ctx.msg[0] != 0 && ctx.code == rc_plain, "failure without a message / with another code");
    if (f) {
        spx_ctx c3 = SPX_CTX_INIT;
        int rc_data = spx_file_verify_data(&c3, f);
        FUZZ_ASSERT(rc_data == rc_verify, "verify_data %d but verified open %d", rc_data, rc_verify);
    }
    if (fv) {
        check_tensors(fv);
        check_meta(fv);
        spx_model_config cfg;
        (void)spx_config_from_file(&ctx, fv, &cfg);
        spx_tokenizer *tok = NULL;
        if (spx_tokenizer_from_spx(&ctx, fv, &tok) == 0) {
            fuzz_tok_roundtrip(tok, fuzz_fixed_text, sizeof fuzz_fixed_text - 1);
            spx_tokenizer_free(tok);
        }
    }
    spx_file_free(f);
    spx_file_free(fv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one(data, size);
    uint8_t *sealed = fuzz_spx_reseal(data, size);
    if (sealed && memcmp(sealed, data, size) != 0)
        check_one(sealed, size);
    free(sealed);
    return 0;
}
