/* fuzz_encoding.c: the sparse-encoding validator and decoder (spx_encoding_validate,
 * spx_decode_f32) on a tensor record taken from the input.
 *
 * Input: a 48-byte record prefix, then the blob (data_size = the rest of the input):
 *   OFF SIZE FIELD
 *     0    1 encoding (raw: unknown values are part of the test)
 *     1    1 dtype
 *     2    1 ndim
 *     3    1 nm_n
 *     4    1 nm_m
 *     5    3 ignored
 *     8   32 dims[4], u64 LE each
 *    40    8 nnz, u64 LE
 * Oracles: validate and decode agree; a blob that decodes re-encodes (spx_encode, same encoding,
 * dtype and N:M) to exactly the size spx_encode_size predicts, and that blob decodes to the same
 * matrix (NaN compares equal to NaN, -0 to +0: the encoder drops zeros of either sign). */
#include <math.h>
#include <string.h>

#include "fuzz_target.h"
#include "spx_format.h"

#define PREFIX 48

static int same(float a, float b)
{
    return a == b || (isnan(a) && isnan(b));
}

static void reencode(const spx_tensor *t, const float *dense, uint64_t numel)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_tensor t2;
    void *blob = NULL;
    size_t blob_size = 0;
    uint64_t rows = t->dims[0], cols = numel / rows, predicted = 0;
    float *back = NULL;
    int rc = spx_encode(&ctx, dense, rows, cols, t->encoding, t->dtype, t->nm_n, t->nm_m, &t2, &blob, &blob_size);
    FUZZ_ASSERT(rc == 0, "decoded %s/%s tensor does not re-encode: %s", spx_encoding_name(t->encoding),
                spx_dtype_name(t->dtype), ctx.msg);
    rc = spx_encode_size(&ctx, dense, rows, cols, t->encoding, t->dtype, t->nm_n, t->nm_m, &predicted);
    FUZZ_ASSERT(rc == 0 && predicted == blob_size, "encode_size %llu vs encode %zu",
                (unsigned long long)predicted, blob_size);
    t2.data_size = blob_size;
    back = malloc((size_t)numel * sizeof *back);
    if (back) {
        rc = spx_decode_f32(&ctx, &t2, blob, back);
        FUZZ_ASSERT(rc == 0, "re-encoded blob does not decode: %s", ctx.msg);
        for (uint64_t i = 0; i < numel; i++)
            FUZZ_ASSERT(same(back[i], dense[i]), "element %llu: %g after re-encoding, %g before",
                        (unsigned long long)i, (double)back[i], (double)dense[i]);
    }
    free(back);
    free(blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_tensor t;
    uint64_t numel = 0;
    if (size < PREFIX)
        return 0;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "fuzz");
    t.encoding = data[0];
    t.dtype = data[1];
    t.ndim = data[2];
    t.nm_n = data[3];
    t.nm_m = data[4];
    for (int i = 0; i < 4; i++)
        t.dims[i] = fuzz_rd64(data + 8 + 8 * i);
    t.nnz = fuzz_rd64(data + 40);
    t.data_size = size - PREFIX;
    /* the blob gets its own exact-size allocation so ASan sees reads past its end */
    uint8_t *blob = malloc(t.data_size ? t.data_size : 1);
    if (!blob)
        return 0;
    memcpy(blob, data + PREFIX, t.data_size);
    int rc_v = spx_encoding_validate(&ctx, &t, blob);
    FUZZ_ASSERT(rc_v <= 0, "positive return code");
    if (rc_v < 0)
        FUZZ_ASSERT(ctx.code == rc_v && ctx.msg[0], "failure without a message");
    if (rc_v == 0 && spx_tensor_numel(&ctx, &t, &numel) == 0 && numel <= FUZZ_MAX_NUMEL) {
        float *out = malloc((size_t)numel * sizeof *out);
        if (out) {
            int rc = spx_decode_f32(&ctx, &t, blob, out);
            FUZZ_ASSERT(rc == 0, "validated blob does not decode: %s", ctx.msg);
            if (t.dtype == SPX_DTYPE_F32 || t.dtype == SPX_DTYPE_F16 || t.dtype == SPX_DTYPE_BF16)
                reencode(&t, out, numel);
        }
        free(out);
    }
    free(blob);
    return 0;
}
