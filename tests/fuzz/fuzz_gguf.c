/* fuzz_gguf.c: the GGUF reader (spx_gguf_open_mem) on arbitrary bytes.
 *
 * Oracles for a file that opens: every tensor's data lies inside the buffer (its first and last
 * bytes are read, so ASan checks them), numel is the product of ne, the byte size follows from
 * the type, offsets are aligned, lookups by name/key return the entry itself (names and keys are
 * unique), string arrays stay inside the buffer, and decoding a tensor gives finite values
 * wherever the stored float is finite (Q8_0: d*q). A failure carries its code and a message. */
#include <math.h>
#include <string.h>

#include "fuzz_target.h"
#include "spx_gguf.h"

static void check_tensor(const spx_gguf *g, const spx_gguf_tensor *t, const uint8_t *data, size_t size)
{
    const uint8_t *p = t->data;
    uint64_t prod = 1, want;
    for (uint32_t d = 0; d < t->n_dims; d++)
        prod *= t->ne[d];
    FUZZ_ASSERT(t->n_dims >= 1 && t->n_dims <= SPX_GGUF_MAX_DIMS, "%s: n_dims %u", t->name, t->n_dims);
    FUZZ_ASSERT(prod == t->numel && t->numel > 0, "%s: numel %llu", t->name, (unsigned long long)t->numel);
    want = t->type == SPX_GGML_F32 ? 4 * t->numel
         : t->type == SPX_GGML_Q8_0 ? t->numel / SPX_GGUF_Q8_0_BLOCK * SPX_GGUF_Q8_0_BYTES : 2 * t->numel;
    FUZZ_ASSERT(want == t->size, "%s: size %llu for type %u", t->name, (unsigned long long)t->size, t->type);
    FUZZ_ASSERT(t->offset % spx_gguf_alignment(g) == 0, "%s: misaligned offset", t->name);
    FUZZ_ASSERT(p >= data && (size_t)(p - data) <= size && t->size <= size - (size_t)(p - data),
                "%s: data outside the buffer", t->name);
    FUZZ_ASSERT(spx_gguf_find_tensor(g, t->name) == t, "%s: lookup returns another tensor", t->name);
    volatile uint8_t sink = p[0];
    sink = p[t->size - 1];
    (void)sink;
    if (t->numel <= FUZZ_MAX_NUMEL && t->type == SPX_GGML_Q8_0) {
        float *f = malloc((size_t)t->numel * sizeof *f);
        if (f) {
            spx_gguf_to_f32(t, f);
            for (uint64_t i = 0; i < t->numel; i++) {
                const uint8_t *blk = p + i / SPX_GGUF_Q8_0_BLOCK * SPX_GGUF_Q8_0_BYTES;
                int finite_scale = (blk[1] & 0x7c) != 0x7c;
                FUZZ_ASSERT(!finite_scale || isfinite(f[i]), "%s: Q8_0 value %llu not finite", t->name,
                            (unsigned long long)i);
            }
        }
        free(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_gguf *g = NULL;
    int rc = spx_gguf_open_mem(&ctx, data, size, "fuzz.gguf", &g);
    FUZZ_ASSERT(rc <= 0 && (rc == 0) == (g != NULL), "return code %d vs *out", rc);
    if (rc < 0) {
        FUZZ_ASSERT(ctx.code == rc && ctx.msg[0], "failure without a message");
        return 0;
    }
    uint64_t al = spx_gguf_alignment(g);
    FUZZ_ASSERT(al && (al & (al - 1)) == 0 && spx_gguf_data_offset(g) % al == 0, "alignment %llu",
                (unsigned long long)al);
    for (size_t i = 0; i < spx_gguf_kv_count(g); i++) {
        const spx_gguf_kv *kv = spx_gguf_kv_at(g, i);
        FUZZ_ASSERT(spx_gguf_find_kv(g, kv->key) == kv, "key %s: lookup returns another entry", kv->key);
        if (kv->type == SPX_GGUF_ARRAY && kv->elem_type == SPX_GGUF_STRING && kv->count <= FUZZ_MAX_NUMEL) {
            const char **s = malloc((size_t)kv->count * sizeof *s + 1);
            uint64_t *l = malloc((size_t)kv->count * sizeof *l + 1);
            if (s && l) {
                spx_gguf_arr_strs(kv, s, l);
                for (uint64_t k = 0; k < kv->count; k++)
                    FUZZ_ASSERT((const uint8_t *)s[k] >= data && (const uint8_t *)s[k] + l[k] <= data + size,
                                "key %s: string %llu outside the buffer", kv->key, (unsigned long long)k);
            }
            free(s);
            free(l);
        } else if (kv->type == SPX_GGUF_ARRAY && kv->count) {
            volatile double x = spx_gguf_arr_f64(kv, kv->count - 1);
            (void)x;
        }
    }
    for (size_t i = 0; i < spx_gguf_tensor_count(g); i++)
        check_tensor(g, spx_gguf_tensor_at(g, i), data, size);
    spx_gguf_free(g);
    return 0;
}
