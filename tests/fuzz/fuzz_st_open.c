/* fuzz_st_open.c: the safetensors reader (spx_st_open_mem) on arbitrary bytes.
 *
 * Oracles for a file that opens: every tensor lies inside the buffer after the header and its
 * byte length is numel * width; tensors are in ascending offset order and found by name; the
 * __metadata__ entries are found by key; F32/F16/BF16/F64 tensors convert to fp32. */
#include <string.h>

#include "fuzz_target.h"
#include "spx_safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_st_file *f = NULL;
    int rc = spx_st_open_mem(&ctx, data, size, "fuzz.safetensors", &f);
    FUZZ_ASSERT(rc <= 0 && (rc == 0) == (f != NULL), "return code %d vs *out", rc);
    if (rc < 0) {
        FUZZ_ASSERT(ctx.code == rc && ctx.msg[0], "failure without a message");
        return 0;
    }
    uint64_t data_start = 8 + spx_st_header_len(f), prev_end = 0;
    FUZZ_ASSERT(data_start <= size, "header length %llu past the end", (unsigned long long)data_start);
    for (size_t i = 0; i < spx_st_count(f); i++) {
        const spx_st_tensor *t = spx_st_tensor_at(f, i);
        uint64_t bits = spx_st_dtype_bits(t->dtype);
        FUZZ_ASSERT(t->begin <= t->end && t->end <= size - data_start, "tensor '%s' [%llu, %llu) outside the data",
                    t->name, (unsigned long long)t->begin, (unsigned long long)t->end);
        FUZZ_ASSERT(t->begin == prev_end, "tensor '%s' begins at %llu, previous ended at %llu", t->name,
                    (unsigned long long)t->begin, (unsigned long long)prev_end);
        FUZZ_ASSERT(t->file_offset == data_start + t->begin, "file_offset of '%s'", t->name);
        FUZZ_ASSERT(t->numel * bits == 8 * (t->end - t->begin) || (bits % 8 && (t->numel * bits + 7) / 8 == t->end - t->begin),
                    "tensor '%s': %llu elements of %llu bits in %llu bytes", t->name, (unsigned long long)t->numel,
                    (unsigned long long)bits, (unsigned long long)(t->end - t->begin));
        FUZZ_ASSERT(spx_st_find(f, t->name) == t, "tensor '%s' not found by name", t->name);
        prev_end = t->end;
        const uint8_t *p = spx_st_data(f, t);
        FUZZ_ASSERT(p == data + t->file_offset, "data pointer of '%s'", t->name);
        if (t->numel > FUZZ_MAX_NUMEL)
            continue;
        float *out = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *out);
        if (!out)
            continue;
        int crc = spx_st_to_f32(&ctx, f, t, out);
        if (t->dtype == SPX_ST_F32 || t->dtype == SPX_ST_F16 || t->dtype == SPX_ST_BF16 || t->dtype == SPX_ST_F64)
            FUZZ_ASSERT(crc == 0, "tensor '%s' (%s) does not convert: %s", t->name, spx_st_dtype_name(t->dtype), ctx.msg);
        free(out);
    }
    FUZZ_ASSERT(data_start + prev_end == size, "tensors end at %llu, file at %zu",
                (unsigned long long)(data_start + prev_end), size);
    for (size_t i = 0; i < spx_st_meta_count(f); i++) {
        const char *k = spx_st_meta_key(f, i), *v = spx_st_meta_value(f, i);
        FUZZ_ASSERT(k && v, "metadata entry %zu is NULL", i);
        (void)spx_st_meta_find(f, k);
    }
    FUZZ_ASSERT(spx_st_meta_key(f, spx_st_meta_count(f)) == NULL, "metadata key past the end");
    spx_st_free(f);
    return 0;
}
