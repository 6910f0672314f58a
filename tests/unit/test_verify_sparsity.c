/* test_verify_sparsity.c: CETT, the threshold search and the run-time activation thresholds
 * (verify/spx_sparsity.h).
 *
 * Always: CETT against a naive double loop written here from the definition (bound 1e-12
 * relative: same double arithmetic, possibly another summation order), the end points
 * (T below every norm -> 0, T above every norm -> 1 exactly), the binary search against a
 * linear scan of the memoized candidates, spx_sparsity_apply (zeroing rule and counters).
 * Reference-I/O mode (SPX_SPARSITY_REF_DIR set; driven by tests/scripts/sparsity_ref.sh with
 * tests/ref/cett_ref.py): CETT data and the threshold search on the reference's random
 * activations, and a thresholded forward of a .spx with the reference's thresholds; the
 * reference compares in float64. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spx_forward.h"
#include "spx_model.h"
#include "spx_sparsity.h"
#include "spx_test.h"

/* naive CETT straight from the definition */
static double naive_cett(const float *a, size_t n, const float *down, uint32_t dim, uint32_t ffn, double T)
{
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        double num = 0.0, den = 0.0;
        for (uint32_t r = 0; r < dim; r++) {
            double part = 0.0, full = 0.0;
            for (uint32_t j = 0; j < ffn; j++) {
                double cn = 0.0, v = (double)a[i * ffn + j] * (double)down[(size_t)r * ffn + j];
                for (uint32_t q = 0; q < dim; q++)
                    cn += (double)down[(size_t)q * ffn + j] * (double)down[(size_t)q * ffn + j];
                full += v;
                if (fabs((double)a[i * ffn + j]) * sqrt(cn) <= T)
                    part += v;
            }
            num += part * part;
            den += full * full;
        }
        if (den > 0.0)
            total += sqrt(num) / sqrt(den);
    }
    return total / (double)n;
}

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 11) / 9007199254740992.0) * 2.0f - 1.0f;
}

static void test_cett_naive(void)
{
    enum { N = 24, DIM = 8, FFN = 20 };
    float a[N * FFN], down[DIM * FFN];
    uint64_t s = 42;
    spx_ctx ctx = SPX_CTX_INIT;
    spx_cett_layer L;
    for (size_t i = 0; i < N * FFN; i++) {
        float v = frand(&s);
        a[i] = v < -0.5f ? 0.0f : v;    /* some exact zeros, as after ReLU */
    }
    for (size_t i = 0; i < DIM * FFN; i++)
        down[i] = frand(&s);
    for (size_t i = 0; i < DIM; i++)
        down[i * FFN + 3] = 0.0f;       /* a zero column: norm 0 */
    memset(a + 5 * FFN, 0, FFN * sizeof(float));   /* a token with zero output */
    CHECK_RC(spx_cett_layer_init(&ctx, a, N, down, DIM, FFN, &L), 0);
    CHECK(L.n_min == 0.0);
    CHECK(L.n_p99 > 0.0);
    CHECK(spx_cett_eval(&L, -1.0) == 0.0);
    CHECK_NEAR(spx_cett_eval(&L, 1e30), (double)(N - 1) / N, 1e-15);   /* token 5 contributes 0 */
    for (uint32_t k = 0; k < SPX_CETT_CANDIDATES; k += 4099) {
        double T = spx_cett_candidate(&L, k), got = spx_cett_eval(&L, T), want = naive_cett(a, N, down, DIM, FFN, T);
        CHECK_MSG(fabs(got - want) <= 1e-12 * (fabs(want) + 1e-300) || got == want, "k %u: %.17g vs %.17g", k, got,
                  want);
    }
    /* binary search == a scan for the largest k with CETT <= c when CETT is monotone along the
     * visited path; check the defining property of the result and its neighbour */
    for (int t = 0; t < 5; t++) {
        double c = 0.05 + 0.2 * t, cv = -1.0, T;
        int64_t k = -2;
        T = spx_cett_threshold(&L, c, &k, &cv);
        CHECK(k >= -1 && k < (int64_t)SPX_CETT_CANDIDATES);
        if (k >= 0) {
            CHECK(cv <= c);
            CHECK(T == spx_cett_candidate(&L, (uint32_t)k));
            CHECK_NEAR(cv, naive_cett(a, N, down, DIM, FFN, T), 1e-12);
            if (k + 1 < (int64_t)SPX_CETT_CANDIDATES)
                CHECK(L.memo[k + 1] > c);   /* the search stopped because k+1 was visited and over c */
        } else {
            CHECK(T == -1.0);
        }
    }
    spx_cett_layer_release(&L);
    /* bad data */
    a[7] = NAN;
    CHECK_RC(spx_cett_layer_init(&ctx, a, N, down, DIM, FFN, &L), SPX_E_NUMERIC);
    CHECK_RC(spx_cett_layer_init(&ctx, a, 0, down, DIM, FFN, &L), SPX_E_ARG);
}

static void test_apply(void)
{
    spx_state st;
    float thr[2 * 3] = {0.5f, -1.0f, INFINITY, 0.1f, 0.2f, 0.3f};
    float h[2 * 3] = {0.4f, 0.0f, 5.0f, -0.6f, 0.2f, 0.0f}, h0[6];
    memset(&st, 0, sizeof st);
    memcpy(h0, h, sizeof h);
    spx_sparsity_apply(&st, 0, h, 2, 3);          /* off: nothing happens */
    CHECK(memcmp(h, h0, sizeof h) == 0 && st.act_total == 0);
    spx_state_set_act_threshold(&st, thr);
    spx_sparsity_apply(&st, 0, h, 2, 3);          /* layer 0: thr 0.5, -1, inf */
    CHECK(h[0] == 0.0f && h[1] == 0.0f && h[2] == 0.0f && h[3] == -0.6f && h[4] == 0.2f && h[5] == 0.0f);
    CHECK(st.act_zeroed == 4 && st.act_total == 6);
    memcpy(h, h0, sizeof h);
    spx_sparsity_apply(&st, 1, h, 2, 3);          /* layer 1: thr 0.1, 0.2, 0.3; |h| <= thr zeroed */
    CHECK(h[0] == 0.4f && h[1] == 0.0f && h[2] == 5.0f && h[3] == -0.6f && h[4] == 0.0f && h[5] == 0.0f);
    CHECK(st.act_zeroed == 7 && st.act_total == 12);
    spx_state_set_act_threshold(&st, NULL);
    CHECK(st.act_zeroed == 0 && st.act_total == 0 && st.act_thr == NULL);
}

static void *read_all(const char *dir, const char *name, size_t *len)
{
    char path[4096];
    FILE *f;
    void *buf = NULL;
    long sz;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!(f = fopen(path, "rb")))
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)sz + 1);
        if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
            free(buf);
            buf = NULL;
        }
        if (buf)
            ((char *)buf)[sz] = 0;
        *len = (size_t)sz;
    }
    fclose(f);
    return buf;
}

/* cett_meta.txt "n dim ffn", cett_a.f32 [n x ffn], cett_down.f32 [dim x ffn], cett_c.txt (c values)
 * -> cett_out.txt: n_min n_p99, "k cett" lines at fixed candidates, "c k T cett" per target. */
static void ref_cett(const char *dir)
{
    size_t la = 0, ld = 0, lm = 0, lc = 0;
    char *meta = read_all(dir, "cett_meta.txt", &lm), *cs = read_all(dir, "cett_c.txt", &lc);
    float *a = read_all(dir, "cett_a.f32", &la), *down = read_all(dir, "cett_down.f32", &ld);
    unsigned long long n = 0, dim = 0, ffn = 0;
    spx_ctx ctx = SPX_CTX_INIT;
    spx_cett_layer L;
    char path[4096];
    FILE *out = NULL;
    CHECK(meta && cs && a && down);
    if (!meta || !cs || !a || !down || sscanf(meta, "%llu %llu %llu", &n, &dim, &ffn) != 3 ||
        la != n * ffn * 4 || ld != dim * ffn * 4) {
        CHECK_MSG(0, "reference cett files unreadable");
        goto done;
    }
    CHECK_RC(spx_cett_layer_init(&ctx, a, (size_t)n, down, (uint32_t)dim, (uint32_t)ffn, &L), 0);
    snprintf(path, sizeof path, "%s/cett_out.txt", dir);
    out = fopen(path, "w");
    CHECK(out != NULL);
    if (out) {
        const uint32_t ks[] = {0, 1, 777, 16384, 32768, 50000, 65535};
        char *p = cs, *end;
        fprintf(out, "%.17g %.17g\n", L.n_min, L.n_p99);
        for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
            fprintf(out, "k %u %.17g\n", ks[i], spx_cett_eval(&L, spx_cett_candidate(&L, ks[i])));
        for (;;) {
            double c = strtod(p, &end), cv = 0.0, T;
            int64_t k = 0;
            if (end == p)
                break;
            p = end;
            T = spx_cett_threshold(&L, c, &k, &cv);
            fprintf(out, "c %.17g %lld %.17g %.17g\n", c, (long long)k, T, cv);
        }
        fclose(out);
    }
    spx_cett_layer_release(&L);
done:
    free(meta);
    free(cs);
    free(a);
    free(down);
}

/* fwd.spx, fwd_thr.f32 [n_layers x ffn], fwd_ids.u32 -> fwd_logits.f32 [n x vocab], fwd_zero.txt */
static void ref_forward(const char *dir)
{
    char path[4096];
    size_t lt = 0, li = 0;
    float *thr = read_all(dir, "fwd_thr.f32", &lt), *logits = NULL;
    uint32_t *ids = read_all(dir, "fwd_ids.u32", &li);
    spx_ctx ctx = SPX_CTX_INIT;
    spx_model *m = NULL;
    spx_state *st = NULL;
    size_t n = li / 4;
    FILE *f;
    snprintf(path, sizeof path, "%s/fwd.spx", dir);
    CHECK(thr && ids && n > 0);
    if (!thr || !ids || n == 0)
        goto done;
    CHECK_RC(spx_model_open(&ctx, path, 0, &m), 0);
    if (!m || lt != (size_t)m->cfg.n_layers * m->cfg.ffn_dim * 4) {
        CHECK_MSG(0, "thresholds do not match the model (%s)", ctx.msg);
        goto done;
    }
    CHECK_RC(spx_state_new(&ctx, m, (uint32_t)n, (uint32_t)n, &st), 0);
    logits = malloc(n * m->cfg.vocab_size * sizeof(float));
    if (!st || !logits)
        goto done;
    spx_state_set_act_threshold(st, thr);
    CHECK_RC(spx_forward(&ctx, m, st, ids, n, logits, NULL), 0);
    snprintf(path, sizeof path, "%s/fwd_logits.f32", dir);
    if ((f = fopen(path, "wb"))) {
        CHECK(fwrite(logits, sizeof(float), n * m->cfg.vocab_size, f) == n * m->cfg.vocab_size);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/fwd_zero.txt", dir);
    if ((f = fopen(path, "w"))) {
        fprintf(f, "%llu %llu\n", (unsigned long long)st->act_zeroed, (unsigned long long)st->act_total);
        fclose(f);
    }
done:
    free(thr);
    free(ids);
    free(logits);
    spx_state_free(st);
    spx_model_free(m);
}

int spx_test_main(void)
{
    const char *dir = getenv("SPX_SPARSITY_REF_DIR");
    test_cett_naive();
    test_apply();
    if (dir && *dir) {
        ref_cett(dir);
        ref_forward(dir);
    }
    return 0;
}
