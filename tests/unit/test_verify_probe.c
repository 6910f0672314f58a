/* test_verify_probe.c: embedded verification probes (verify/spx_probe.h).
 *
 *  - record -> write -> load round trip keeps every value bit for bit, the written file passes its
 *    own probe with max |dlogit| exactly 0 (same computation on the same machine), its tensors
 *    are byte-identical to the input's (digest unchanged) and the recorded top-1 ids equal an
 *    independent argmax of spx_forward logits;
 *  - one expected logit moved by 1.0 fails the logits check naming that id; a wrong top-1 id
 *    fails the top-1 check at that position; a different weights digest is "stale";
 *  - a near tie within tol is accepted by the top-1 rule (recorded id = runner-up whose logit is
 *    within tol of the max);
 *  - malformed probes: no probe (SPX_E_MISSING), unknown version (SPX_E_UNSUPPORTED), vocabulary
 *    mismatch and out-of-range ids (SPX_E_META), bad record arguments (SPX_E_ARG). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_arch.h"
#include "spx_forward.h"
#include "spx_format.h"
#include "spx_model.h"
#include "spx_probe.h"
#include "spx_spxcopy.h"
#include "spx_test.h"

static int write_model(const char *path, const spx_model_config *c)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_writer *w = NULL;
    uint64_t seed = 17;
    const uint64_t d = c->dim, f = c->ffn_dim, hq = (uint64_t)c->n_heads * c->head_dim,
                   hk = (uint64_t)c->n_kv_heads * c->head_dim;
    const char *bases[] = {"attn_norm", "ffn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                           "ffn_down"};
    const uint64_t shapes[][2] = {{d, 0}, {d, 0}, {hq, d}, {hk, d}, {hk, d}, {d, hq}, {f, d}, {f, d}, {d, f}};
    int rc = spx_writer_open(&ctx, path, "spx-test", &w);
    if (rc == 0)
        rc = spx_config_to_meta(w, c);
    for (int l = -1; rc == 0 && l < (int)c->n_layers; l++) {
        int nt = l < 0 ? 2 : 9;
        for (int i = 0; rc == 0 && i < nt; i++) {
            char name[96];
            uint64_t dims[2];
            size_t numel;
            float *v;
            if (l < 0) {
                dims[0] = i == 0 ? c->vocab_size : d;
                dims[1] = i == 0 ? d : 0;
                spx_tensor_name(name, sizeof name, -1, i == 0 ? "token_embd" : "output_norm", "weight");
            } else {
                dims[0] = shapes[i][0];
                dims[1] = shapes[i][1];
                spx_tensor_name(name, sizeof name, l, bases[i], "weight");
            }
            numel = (size_t)dims[0] * (dims[1] ? dims[1] : 1);
            v = malloc(numel * sizeof(float));
            for (size_t k = 0; k < numel; k++)
                v[k] = dims[1] ? (float)(spx_test_normal(&seed) / sqrt((double)dims[1]) * 2.0)
                               : (float)(1.0 + 0.1 * spx_test_normal(&seed));
            rc = spx_writer_add_f32(w, name, SPX_ROLE_OTHER, SPX_NO_INDEX, SPX_NO_INDEX, SPX_DTYPE_F32, v,
                                    dims[1] ? 2 : 1, dims);
            free(v);
        }
    }
    if (rc == 0)
        rc = spx_writer_finish(w);
    if (rc != 0)
        fprintf(stderr, "write_model: %s %s\n", ctx.msg, w ? spx_writer_ctx(w)->msg : "");
    spx_writer_free(w);
    return rc;
}

static spx_model *open_model(const char *path)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model *m = NULL;
    if (spx_model_open(&ctx, path, SPX_MODEL_VERIFY_DATA, &m) != 0)
        fprintf(stderr, "open %s: %s\n", path, ctx.msg);
    return m;
}

/* write `p` into a copy of m's file at path and run it there */
static int probe_file(spx_model *m, const spx_probe *p, const char *path, spx_probe_check *out)
{
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model *pm = NULL;
    spx_probe lp;
    int rc;
    memset(&lp, 0, sizeof lp);
    rc = spx_probe_write(&ctx, m->file, p, path);
    if (rc == 0)
        rc = (pm = open_model(path)) ? 0 : SPX_E_IO;
    if (rc == 0)
        rc = spx_probe_load(&ctx, pm->file, &lp);
    if (rc == 0)
        rc = spx_probe_run(&ctx, pm, &lp, out);
    if (rc != 0)
        fprintf(stderr, "probe_file %s: %s (%s)\n", path, ctx.msg, spx_err_name(rc));
    spx_probe_free(&lp);
    spx_model_free(pm);
    return rc;
}

int spx_test_main(void)
{
    enum { P = 70 };   /* more than one chunk of 64 */
    spx_ctx ctx = SPX_CTX_INIT;
    const char *dir = spx_test_tmpdir();
    const char *pm = spx_test_path(dir, "m.spx"), *pp = spx_test_path(dir, "probed.spx"),
               *pt = spx_test_path(dir, "tampered.spx");
    spx_model_config c;
    spx_model *m = NULL, *q = NULL;
    spx_probe p, lp, t;
    spx_probe_check chk;
    spx_state *st = NULL;
    uint32_t tok[P];
    uint64_t seed = 3;
    float *lg = NULL;
    memset(&p, 0, sizeof p);
    memset(&lp, 0, sizeof lp);
    spx_config_init_llama(&c);
    c.vocab_size = 45;
    c.dim = 16;
    c.ffn_dim = 24;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 4;
    c.rope_dim = 4;
    c.tied_embeddings = 1;
    CHECK_RC(write_model(pm, &c), 0);
    m = open_model(pm);
    if (!m)
        return 1;
    for (int i = 0; i < P; i++)
        tok[i] = (uint32_t)(spx_test_rand(&seed) % c.vocab_size);

    CHECK_RC(spx_probe_load(&ctx, m->file, &lp), SPX_E_MISSING);
    CHECK_RC(spx_probe_record(&ctx, m, tok, 0, -1, &p), SPX_E_ARG);
    tok[2] = c.vocab_size;
    CHECK_RC(spx_probe_record(&ctx, m, tok, P, -1, &p), SPX_E_ARG);
    tok[2] = 1;
    CHECK_RC(spx_probe_record(&ctx, m, tok, P, -1, &p), 0);
    CHECK(p.n_tokens == P && p.vocab == c.vocab_size && p.tol > 0);
    CHECK(p.weights_crc32 == spx_probe_weights_crc(m->file));

    /* recorded top-1 and last logits vs one full spx_forward */
    lg = malloc((size_t)P * c.vocab_size * sizeof(float));
    CHECK_RC(spx_state_new(&ctx, m, P, P, &st), 0);
    CHECK_RC(spx_forward(&ctx, m, st, tok, P, lg, NULL), 0);
    for (uint32_t i = 0; i < P; i++) {
        const float *l = lg + (size_t)i * c.vocab_size;
        uint32_t a = 0;
        for (uint32_t j = 1; j < c.vocab_size; j++)
            if (l[j] > l[a])
                a = j;
        CHECK_MSG(a == p.top1[i] || l[p.top1[i]] >= l[a] - 1e-5f, "position %u: %u vs %u", i, a, p.top1[i]);
    }
    for (uint32_t j = 0; j < c.vocab_size; j++)   /* one call vs chunks of 64: fp32 rounding only */
        CHECK_NEAR(p.logits[j], lg[(size_t)(P - 1) * c.vocab_size + j], 1e-4);

    /* round trip */
    CHECK_RC(spx_probe_write(&ctx, m->file, &p, pp), 0);
    q = open_model(pp);
    if (q) {
        CHECK(spx_probe_weights_crc(q->file) == p.weights_crc32);
        CHECK_RC(spx_probe_load(&ctx, q->file, &lp), 0);
        CHECK(lp.n_tokens == p.n_tokens && lp.vocab == p.vocab && lp.tol == p.tol &&
              lp.weights_crc32 == p.weights_crc32);
        CHECK(memcmp(lp.tokens, p.tokens, P * sizeof(uint32_t)) == 0);
        CHECK(memcmp(lp.top1, p.top1, P * sizeof(uint32_t)) == 0);
        CHECK(memcmp(lp.logits, p.logits, p.vocab * sizeof(float)) == 0);
        CHECK_RC(spx_probe_run(&ctx, q, &lp, &chk), 0);
        CHECK(chk.ok && !chk.stale && chk.top1_ok == P && chk.positions == P && chk.max_abs_err == 0.0);
        /* the copy keeps every tensor byte for byte */
        for (uint32_t i = 0; i < spx_file_tensor_count(m->file); i++) {
            const spx_tensor *a = spx_file_tensor(m->file, i), *b = spx_file_find(q->file, a->name);
            CHECK(b && a->data_size == b->data_size &&
                  memcmp(spx_file_data(m->file, a), spx_file_data(q->file, b), (size_t)a->data_size) == 0);
        }
    }

    /* tampering */
    t = p;
    t.logits = malloc(p.vocab * sizeof(float));
    memcpy(t.logits, p.logits, p.vocab * sizeof(float));
    t.logits[7] += 1.0f;
    CHECK_RC(probe_file(m, &t, pt, &chk), 0);
    CHECK(!chk.ok && !chk.stale && chk.worst_id == 7 && fabs(chk.max_abs_err - 1.0) < 1e-5 && chk.top1_ok == P);
    memcpy(t.logits, p.logits, p.vocab * sizeof(float));
    t.top1 = malloc(P * sizeof(uint32_t));
    memcpy(t.top1, p.top1, P * sizeof(uint32_t));
    t.top1[66] = (p.top1[66] + 1) % c.vocab_size;
    t.tol = 0;
    CHECK_RC(probe_file(m, &t, pt, &chk), 0);
    CHECK(!chk.ok && chk.top1_ok == P - 1 && chk.first_bad == 66 && chk.bad_got == p.top1[66]);
    /* near tie: accept the runner-up when it is within tol of the max */
    {
        const float *l = lg + (size_t)66 * c.vocab_size;
        uint32_t second = p.top1[66] == 0 ? 1 : 0;
        for (uint32_t j = 0; j < c.vocab_size; j++)
            if (j != p.top1[66] && l[j] > l[second])
                second = j;
        t.top1[66] = second;
        t.tol = (double)(l[p.top1[66]] - l[second]) + 1e-3;
        CHECK_RC(probe_file(m, &t, pt, &chk), 0);
        CHECK(chk.ok && chk.top1_ok == P);
        t.tol = (double)(l[p.top1[66]] - l[second]) * 0.5;
        CHECK_RC(probe_file(m, &t, pt, &chk), 0);
        CHECK(!chk.ok && chk.top1_ok == P - 1);
    }
    memcpy(t.top1, p.top1, P * sizeof(uint32_t));
    t.tol = p.tol;
    t.weights_crc32 = p.weights_crc32 ^ 1u;
    CHECK_RC(probe_file(m, &t, pt, &chk), 0);
    CHECK(!chk.ok && chk.stale && chk.max_abs_err == 0.0);
    t.weights_crc32 = p.weights_crc32;
    t.vocab = p.vocab - 1;   /* logits array of the wrong length */
    CHECK_RC(probe_file(m, &t, pt, &chk), SPX_E_META);
    t.vocab = p.vocab;
    t.tokens = malloc(P * sizeof(uint32_t));
    memcpy(t.tokens, p.tokens, P * sizeof(uint32_t));
    t.tokens[0] = 1000;
    CHECK_RC(probe_file(m, &t, pt, &chk), SPX_E_META);
    free(t.tokens);
    free(t.top1);
    free(t.logits);

    /* unknown version; a version-1 probe with keys missing */
    for (uint32_t version = 1; version <= 2; version++) {
        spx_writer *w = NULL;
        spx_model *v = NULL;
        CHECK_RC(spx_writer_open(&ctx, pt, "spx-test", &w), 0);
        CHECK_RC(spx_meta_copy(&ctx, w, m->file, NULL, NULL), 0);
        CHECK_RC(spx_writer_meta_u32(w, SPX_PROBE_KEY_VERSION, version), 0);
        CHECK_RC(spx_writer_meta_arr(w, SPX_PROBE_KEY_TOKENS, SPX_META_U32, p.tokens, P), 0);
        for (uint32_t i = 0; i < spx_file_tensor_count(m->file); i++)
            CHECK_RC(spx_tensor_copy(&ctx, w, m->file, spx_file_tensor(m->file, i)), 0);
        CHECK_RC(spx_writer_finish(w), 0);
        spx_writer_free(w);
        v = open_model(pt);
        if (v) {
            spx_probe x;
            memset(&x, 0, sizeof x);
            CHECK_RC(spx_probe_load(&ctx, v->file, &x), version == 2 ? SPX_E_UNSUPPORTED : SPX_E_META);
            if (version == 1)
                CHECK(strstr(ctx.msg, SPX_PROBE_KEY_TOP1) != NULL);
        }
        spx_model_free(v);
    }

    spx_probe_free(&lp);
    spx_probe_free(&p);
    spx_state_free(st);
    free(lg);
    spx_model_free(q);
    spx_model_free(m);
    return 0;
}
