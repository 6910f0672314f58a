/* test_verify_nonfinite.c: spx_nonfinite_check_file names the first non-finite weight (tensor and
 * flat index, any float dtype and sparse encoding), and spx_nonfinite_format's text. Exact: the
 * positions are planted, no tolerance involved. (The activation diagnosis over a real forward pass
 * is tested end to end by tests/scripts/robust_numeric.sh.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_format.h"
#include "spx_nonfinite.h"
#include "spx_test.h"

static int write_file(const char *path, int bad, float value, int dtype, int enc)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    float a[64], b[48 * 4];
    uint64_t da[1] = {64}, db[2] = {48, 4};
    int rc = 0;
    for (int i = 0; i < 64; i++)
        a[i] = (float)i * 0.5f;
    for (int i = 0; i < 48 * 4; i++)
        b[i] = (i % 3) ? (float)(i - 96) / 7.0f : 0.0f;   /* a third zeros: sparse encodings apply */
    if (bad >= 0)
        b[bad] = value;
    SPX_TRY(rc, spx_writer_open(&ctx, path, "test", &w));
    SPX_TRY(rc, spx_writer_add_f32(w, "blk.0.attn_norm.weight", SPX_ROLE_NORM, 0, SPX_NO_INDEX, SPX_DTYPE_F32, a, 1, da));
    if (enc == SPX_ENC_DENSE) {
        SPX_TRY(rc, spx_writer_add_f32(w, "blk.1.ffn_up.weight", SPX_ROLE_MLP, 1, SPX_NO_INDEX, dtype, b, 2, db));
    } else {
        spx_tensor t;
        void *blob = NULL;
        size_t size = 0;
        memset(&t, 0, sizeof t);
        SPX_TRY(rc, spx_encode(&ctx, b, 48, 4, enc, dtype, 0, 0, &t, &blob, &size));
        snprintf(t.name, sizeof t.name, "blk.1.ffn_up.weight");
        t.role = SPX_ROLE_MLP;
        t.layer = 1;
        t.expert = SPX_NO_INDEX;
        rc = spx_writer_add(w, &t, blob, size);
        free(blob);
        if (rc < 0)
            goto done;
    }
    SPX_TRY(rc, spx_writer_finish(w));
done:
    if (rc < 0)
        fprintf(stderr, "write_file: %s\n", ctx.msg[0] ? ctx.msg : spx_writer_ctx(w)->msg);
    spx_writer_free(w);
    return rc;
}

static int check(const char *path, char *msg, size_t len)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_file *f = NULL;
    int rc = spx_file_open(&ctx, path, SPX_OPEN_VERIFY_DATA, &f);
    if (rc == 0)
        rc = spx_nonfinite_check_file(&ctx, f);
    snprintf(msg, len, "%s", ctx.msg);
    spx_file_free(f);
    return rc;
}

int spx_test_main(void)
{
    char path[512], msg[SPX_MSG_MAX];
    snprintf(path, sizeof path, "%s/nf.spx", spx_test_tmpdir());

    CHECK_RC(write_file(path, -1, 0.0f, SPX_DTYPE_F32, SPX_ENC_DENSE), 0);
    CHECK_RC(check(path, msg, sizeof msg), 0);

    CHECK_RC(write_file(path, 37, NAN, SPX_DTYPE_F32, SPX_ENC_DENSE), 0);
    CHECK_RC(check(path, msg, sizeof msg), SPX_E_NUMERIC);
    CHECK_MSG(strcmp(msg, "tensor blk.1.ffn_up.weight: nan at flat index 37 (of 192)") == 0, "%s", msg);

    CHECK_RC(write_file(path, 100, -INFINITY, SPX_DTYPE_F16, SPX_ENC_DENSE), 0);
    CHECK_RC(check(path, msg, sizeof msg), SPX_E_NUMERIC);
    CHECK_MSG(strstr(msg, "blk.1.ffn_up.weight: -inf at flat index 100") != NULL, "%s", msg);

    /* sparse: the flat index is the dense position, not the value's rank in the encoding */
    CHECK_RC(write_file(path, 151, INFINITY, SPX_DTYPE_F32, SPX_ENC_BITMASK), 0);
    CHECK_RC(check(path, msg, sizeof msg), SPX_E_NUMERIC);
    CHECK_MSG(strstr(msg, "blk.1.ffn_up.weight: inf at flat index 151") != NULL, "%s", msg);

    spx_nonfinite_site s;
    memset(&s, 0, sizeof s);
    s.found = 1;
    s.window = 2;
    s.layer = 3;
    s.stage = "ffn_down input";
    s.token = 17;
    s.element = 42;
    s.value = INFINITY;
    spx_nonfinite_format(&s, msg, sizeof msg);
    CHECK_MSG(strcmp(msg, "non-finite activation in blk.3 ffn_down input (window 2, token 17, element 42): inf") == 0,
              "%s", msg);
    s.layer = SPX_NONFINITE_NO_LAYER;
    s.stage = "token embeddings";
    s.value = NAN;
    spx_nonfinite_format(&s, msg, sizeof msg);
    CHECK_MSG(strstr(msg, "in token embeddings (window 2") && strstr(msg, "): nan"), "%s", msg);
    remove(path);
    return 0;
}
