/* test_prune_ffn_pad.c: zero-neuron FFN padding keeps the model's function.
 * For GLU SiLU, non-GLU ReLU with FFN biases and an N:M-encoded variant: pad 48 -> 56 (multiple 8)
 * and 48 -> 64 (multiple 32); the padded file has the new feed_forward_length, zero rows/columns
 * after the original ones, the original values bit for bit, and its logits equal the unpadded
 * model's within 1e-5 relative (the extra terms are exact zeros; only the BLAS summation blocking
 * over a different width may reorder fp32 sums). A multiple that already divides copies the file's
 * tensors verbatim; a gated/expanded tensor is refused. */
#include "test_verify_moe_util.h"

#include "spx_ffn_pad.h"
#include "spx_forward.h"
#include "spx_model.h"

static int logits_of(const char *path, const uint32_t *tok, size_t n, float *out)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model *m = NULL;
    spx_state *s = NULL;
    int rc = spx_model_open(&ctx, path, SPX_MODEL_VERIFY_DATA, &m);
    if (rc == 0)
        rc = spx_state_new(&ctx, m, 64, 16, &s);
    if (rc == 0)
        rc = spx_forward(&ctx, m, s, tok, n, out, NULL);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", path, ctx.msg);
    spx_state_free(s);
    spx_model_free(m);
    return rc;
}

static void check_case(const char *tmp, int gated, int act, int bias, int nm, uint32_t multiple, uint32_t want)
{
    char in[512], out[512];
    tmv_model m;
    spx_model_config c;
    spx_ctx ctx = SPX_CTX_INIT;
    spx_file *fi = NULL, *fo = NULL;
    uint32_t nf = 0, tok[20];
    float la[20 * 61], lb[20 * 61];
    tmv_config(&c, gated, act, bias);
    tmv_build(&m, &c);
    if (nm)
        for (int i = 0; i < m.n; i++)
            if (strstr(m.t[i].name, "ffn_up.weight")) {
                for (uint64_t r = 0; r < m.t[i].dims[0]; r++)     /* 2:4 pattern along each row */
                    for (uint64_t k = 0; k < m.t[i].dims[1]; k += 4)
                        m.t[i].data[r * m.t[i].dims[1] + k + 1] = m.t[i].data[r * m.t[i].dims[1] + k + 3] = 0.0f;
                m.t[i].enc = SPX_ENC_BITMASK;
            }
    snprintf(in, sizeof in, "%s/in_%d_%d_%d_%d.spx", tmp, gated, act, bias, nm);
    snprintf(out, sizeof out, "%s/out_%d_%d_%d_%d_%u.spx", tmp, gated, act, bias, nm, multiple);
    CHECK(tmv_write(&m, in, NULL, NULL, NULL) == 0);
    CHECK(spx_file_open(&ctx, in, SPX_OPEN_VERIFY_DATA, &fi) == 0);
    CHECK(spx_ffn_pad_write(&ctx, fi, out, multiple, &nf) == 0);
    CHECK(nf == want);
    CHECK(spx_file_open(&ctx, out, SPX_OPEN_VERIFY_DATA, &fo) == 0);
    if (fo) {
        spx_model_config pc;
        CHECK(spx_config_from_file(&ctx, fo, &pc) == 0);
        CHECK(pc.ffn_dim == want);
        for (uint32_t i = 0; i < spx_file_tensor_count(fo); i++) {
            const spx_tensor *t = spx_file_tensor(fo, i);
            const spx_tensor *o = spx_file_find(fi, t->name);
            uint64_t n = 0, no = 0;
            CHECK(o != NULL);
            if (!o)
                continue;
            spx_tensor_numel(&ctx, t, &n);
            spx_tensor_numel(&ctx, o, &no);
            float *a = malloc(n * sizeof(float)), *b = malloc(no * sizeof(float));
            CHECK(spx_decode_f32(&ctx, t, spx_file_data(fo, t), a) == 0);
            CHECK(spx_decode_f32(&ctx, o, spx_file_data(fi, o), b) == 0);
            uint64_t rows = o->ndim == 2 ? o->dims[0] : no, cols = o->ndim == 2 ? o->dims[1] : 1;
            uint64_t pcols = t->ndim == 2 ? t->dims[1] : 1;
            size_t bad = 0;
            for (uint64_t r = 0; r < (t->ndim == 2 ? t->dims[0] : n); r++)
                for (uint64_t k = 0; k < pcols; k++) {
                    float v = a[r * pcols + k];
                    if (r < rows && k < cols)
                        bad += memcmp(&v, &b[r * cols + k], sizeof v) != 0;
                    else
                        bad += v != 0.0f;
                }
            CHECK(bad == 0);
            free(a);
            free(b);
        }
    }
    spx_file_free(fo);
    spx_file_free(fi);
    for (size_t i = 0; i < 20; i++)
        tok[i] = (uint32_t)((i * 7 + 3) % 61);
    CHECK(logits_of(in, tok, 20, la) == 0);
    CHECK(logits_of(out, tok, 20, lb) == 0);
    double num = 0, den = 0;
    for (size_t i = 0; i < 20 * 61; i++) {
        num += ((double)la[i] - lb[i]) * ((double)la[i] - lb[i]);
        den += (double)la[i] * la[i];
    }
    CHECK(sqrt(num / den) < 1e-5);
    tmv_free(&m);
}

int spx_test_main(void)
{
    const char *tmp = getenv("SPX_TMP");
    char cmd[600];
    if (!tmp)
        tmp = "/tmp";
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp);
    CHECK(system(cmd) == 0);
    check_case(tmp, 1, SPX_ACT_SILU, 0, 0, 8, 48);
    check_case(tmp, 1, SPX_ACT_SILU, 0, 0, 32, 64);
    check_case(tmp, 1, SPX_ACT_SILU, 0, 0, 7, 49);
    check_case(tmp, 0, SPX_ACT_RELU, 1, 0, 32, 64);
    check_case(tmp, 1, SPX_ACT_SILU, 0, 1, 10, 50);
    return 0;
}
