/* test_cluster_moefy.c: MoEfication expert splits (cluster/spx_moefy.h): equal sizes, permutation,
 * determinism, recovery of planted neuron groups by the parameter and the co-activation split,
 * co-activation counts against a naive loop, and invariance of the dense MLP output under the
 * permutation (naive double loop). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_moefy.h"
#include "spx_test.h"

/* 1 when every expert block of perm holds neurons of a single planted group. */
static int blocks_pure(const uint32_t *perm, const uint32_t *group, uint32_t ffn, uint32_t E)
{
    const uint32_t B = ffn / E;
    for (uint32_t e = 0; e < E; e++)
        for (uint32_t i = e * B + 1; i < (e + 1) * B; i++)
            if (group[perm[i]] != group[perm[e * B]])
                return 0;
    return 1;
}

/* blocks equal size, ascending original index inside each block */
static int blocks_sorted(const uint32_t *perm, uint32_t ffn, uint32_t E)
{
    const uint32_t B = ffn / E;
    for (uint32_t e = 0; e < E; e++)
        for (uint32_t i = e * B + 1; i < (e + 1) * B; i++)
            if (perm[i] <= perm[i - 1])
                return 0;
    return 1;
}

static void test_param_split(void)
{
    /* E = 8 planted directions, 12 neurons each, interleaved (neuron j in group (5 j) % 8), rows
     * = random scale * (direction + 0.15 noise): the normalized rows form tight groups. */
    const uint32_t ffn = 96, d = 24, E = 8;
    uint64_t s = 7;
    float *W = malloc((size_t)ffn * d * sizeof(float));
    double *dir = malloc((size_t)E * d * sizeof(double));
    uint32_t group[96], *p1 = NULL, *p2 = NULL, *p3 = NULL;
    for (size_t i = 0; i < (size_t)E * d; i++)
        dir[i] = spx_test_normal(&s);
    for (uint32_t j = 0; j < ffn; j++) {
        group[j] = (5 * j) % E;
        double sc = 0.3 + 2.0 * spx_test_uniform(&s);
        for (uint32_t t = 0; t < d; t++)
            W[(size_t)j * d + t] = (float)(sc * (dir[(size_t)group[j] * d + t] + 0.15 * spx_test_normal(&s)));
    }
    spx_ctx ctx = SPX_CTX_INIT;
    spx_moefy_split_opts o = SPX_MOEFY_SPLIT_OPTS_INIT;
    spx_moefy_split_info info;
    o.experts = E;
    CHECK_RC(spx_moefy_split_param(&ctx, W, ffn, d, &o, &p1, &info), 0);
    CHECK_RC(spx_moefy_split_param(&ctx, W, ffn, d, &o, &p2, NULL), 0);
    o.seed = 99;
    CHECK_RC(spx_moefy_split_param(&ctx, W, ffn, d, &o, &p3, NULL), 0);
    if (p1 && p2 && p3) {
        CHECK(spx_moefy_is_perm(p1, ffn));
        CHECK(blocks_sorted(p1, ffn, E));
        CHECK(memcmp(p1, p2, ffn * sizeof(uint32_t)) == 0);   /* deterministic */
        CHECK(blocks_pure(p1, group, ffn, E));                 /* planted groups recovered */
        CHECK(blocks_pure(p3, group, ffn, E));                 /* ... from another seed too */
        CHECK(info.inertia >= 0.0);
    }
    /* E = 1: the identity; E not dividing ffn: SPX_E_ARG */
    uint32_t *pi = NULL, *bad = NULL;
    o.experts = 1;
    CHECK_RC(spx_moefy_split_param(&ctx, W, ffn, d, &o, &pi, NULL), 0);
    for (uint32_t j = 0; pi && j < ffn; j++)
        CHECK(pi[j] == j);
    o.experts = 7;
    CHECK_RC(spx_moefy_split_param(&ctx, W, ffn, d, &o, &bad, NULL), SPX_E_ARG);
    CHECK(bad == NULL);
    /* NaN in W */
    W[3] = NAN;
    o.experts = E;
    CHECK_RC(spx_moefy_split_param(&ctx, W, ffn, d, &o, &bad, NULL), SPX_E_NUMERIC);
    free(pi);
    free(p1);
    free(p2);
    free(p3);
    free(W);
    free(dir);
}

static void test_perm_from_labels(void)
{
    spx_ctx ctx = SPX_CTX_INIT;
    const uint32_t lab[8] = {1, 0, 3, 2, 1, 0, 2, 3};
    const uint32_t want[8] = {1, 5, 0, 4, 3, 6, 2, 7};
    uint32_t perm[8];
    CHECK_RC(spx_moefy_perm_from_labels(&ctx, lab, 8, 4, perm), 0);
    CHECK(memcmp(perm, want, sizeof want) == 0);
    const uint32_t uneven[8] = {0, 0, 0, 1, 1, 2, 3, 3};
    CHECK_RC(spx_moefy_perm_from_labels(&ctx, uneven, 8, 4, perm), SPX_E_ARG);
    const uint32_t oob[4] = {0, 1, 2, 9};
    CHECK_RC(spx_moefy_perm_from_labels(&ctx, oob, 4, 4, perm), SPX_E_ARG);
    const uint32_t dup[4] = {0, 1, 1, 3};
    CHECK(!spx_moefy_is_perm(dup, 4));
    CHECK(spx_moefy_is_perm(want, 8));
}

static void test_coact(void)
{
    /* ReLU activations: 8 groups of 8 neurons (neuron j in group (3 j) % 8); each token switches on
     * 2 random groups (all their neurons fire with random positive values, a few random others fire
     * weakly). Neurons of one group always co-fire, so the co-activation split recovers them. */
    const uint32_t ffn = 64, G = 8;
    const size_t n = 600;
    uint64_t s = 11;
    float *A = calloc(n * ffn, sizeof(float));
    uint32_t group[64], *perm = NULL, *perm2 = NULL;
    for (uint32_t j = 0; j < ffn; j++)
        group[j] = (3 * j) % G;
    for (size_t t = 0; t < n; t++) {
        uint32_t g1 = (uint32_t)(spx_test_rand(&s) % G), g2 = (uint32_t)(spx_test_rand(&s) % G);
        for (uint32_t j = 0; j < ffn; j++) {
            if (group[j] == g1 || group[j] == g2)
                A[t * ffn + j] = (float)(0.5 + spx_test_uniform(&s));
            else if (spx_test_uniform(&s) < 0.03)
                A[t * ffn + j] = (float)(0.1 * spx_test_uniform(&s));
        }
    }
    for (size_t t = 0; t < n; t++) /* neuron 0 never fires: a dead neuron */
        A[t * ffn + 0] = 0.0f;
    spx_ctx ctx = SPX_CTX_INIT;
    spx_coact *c = NULL;
    CHECK_RC(spx_coact_new(&ctx, ffn, 0.0f, &c), 0);
    if (!c)
        return;
    /* added in two uneven parts (chunking must not matter) */
    CHECK_RC(spx_coact_add(&ctx, c, A, 333, ffn), 0);
    CHECK_RC(spx_coact_add(&ctx, c, A + 333 * ffn, n - 333, ffn), 0);
    CHECK(c->tokens == n);
    /* counts against the naive loop: integers, exact */
    int exact = 1;
    for (uint32_t i = 0; i < ffn; i++)
        for (uint32_t j = i; j < ffn; j++) {
            double cnt = 0;
            for (size_t t = 0; t < n; t++)
                cnt += (A[t * ffn + i] != 0.0f) && (A[t * ffn + j] != 0.0f);
            exact &= (double)c->C[(size_t)i * ffn + j] == cnt;
        }
    CHECK(exact);
    spx_moefy_split_opts o = SPX_MOEFY_SPLIT_OPTS_INIT;
    spx_moefy_split_info info;
    o.experts = G;
    CHECK_RC(spx_moefy_split_coact(&ctx, c, &o, &perm, &info), 0);
    CHECK_RC(spx_moefy_split_coact(&ctx, c, &o, &perm2, NULL), 0);
    if (perm && perm2) {
        CHECK(spx_moefy_is_perm(perm, ffn));
        CHECK(blocks_sorted(perm, ffn, G));
        CHECK(memcmp(perm, perm2, ffn * sizeof(uint32_t)) == 0);
        CHECK(info.tokens == n);
        CHECK(info.dead == 1);
        /* every block but the one holding the dead neuron 0 is a pure group; that block holds
         * 7 neurons of group 0 and the dead neuron's slot */
        uint32_t pure = 0;
        for (uint32_t e = 0; e < G; e++) {
            int ok = 1;
            uint32_t ref = perm[e * 8] == 0 ? perm[e * 8 + 1] : perm[e * 8];
            for (uint32_t i = e * 8; i < (e + 1) * 8; i++)
                ok &= perm[i] == 0 || group[perm[i]] == group[ref];
            pure += (uint32_t)ok;
        }
        CHECK_MSG(pure == G, "%u of %u blocks are planted groups", pure, G);
    }
    /* the token cap: nothing is added beyond SPX_COACT_MAX_TOKENS */
    c->tokens = SPX_COACT_MAX_TOKENS - 5;
    CHECK_RC(spx_coact_add(&ctx, c, A, 100, ffn), 0);
    CHECK(c->tokens == SPX_COACT_MAX_TOKENS);
    /* SiLU-style threshold: above the token's mean |a| */
    spx_coact *c2 = NULL;
    CHECK_RC(spx_coact_new(&ctx, 4, 1.0f, &c2), 0);
    if (c2) {
        const float row[4] = {-3.0f, 0.5f, 1.0f, 2.0f};   /* mean |a| = 1.625: neurons 0, 3 active */
        CHECK_RC(spx_coact_add(&ctx, c2, row, 1, 4), 0);
        CHECK(c2->C[0] == 1.0f && c2->C[3] == 1.0f && c2->C[15] == 1.0f && c2->C[5] == 0.0f && c2->C[10] == 0.0f);
        const float nanrow[4] = {0.0f, NAN, 0.0f, 0.0f};
        CHECK_RC(spx_coact_add(&ctx, c2, nanrow, 1, 4), SPX_E_NUMERIC);
    }
    spx_coact *empty = NULL;
    uint32_t *pe = NULL;
    CHECK_RC(spx_coact_new(&ctx, 8, 0.0f, &empty), 0);
    if (empty)
        CHECK_RC(spx_moefy_split_coact(&ctx, empty, &o, &pe, NULL), SPX_E_ARG);
    spx_coact *neg = NULL;
    CHECK_RC(spx_coact_new(&ctx, 8, -1.0f, &neg), SPX_E_ARG);
    CHECK(neg == NULL);
    spx_coact_free(empty);
    spx_coact_free(c2);
    spx_coact_free(c);
    free(perm);
    free(perm2);
    free(A);
}

static double silu(double x)
{
    return x / (1.0 + exp(-x));
}

static void test_mlp_invariance(void)
{
    /* y = W_down (silu(W_gate x) * (W_up x)): rows of gate/up and columns of down permuted by the
     * split. In double the sum over neurons is only reordered: the relative difference is
     * round-off (~1e-16); the bound 1e-6 is the task's tolerance. */
    const uint32_t ffn = 48, d = 12, E = 6;
    uint64_t s = 5;
    size_t nw = (size_t)ffn * d;
    float *Wg = malloc(nw * sizeof(float)), *Wu = malloc(nw * sizeof(float)), *Wd = malloc(nw * sizeof(float));
    float *Pg = malloc(nw * sizeof(float)), *Pu = malloc(nw * sizeof(float)), *Pd = malloc(nw * sizeof(float));
    for (size_t i = 0; i < nw; i++) {
        Wg[i] = (float)spx_test_normal(&s);
        Wu[i] = (float)spx_test_normal(&s);
        Wd[i] = (float)spx_test_normal(&s);
    }
    spx_ctx ctx = SPX_CTX_INIT;
    spx_moefy_split_opts o = SPX_MOEFY_SPLIT_OPTS_INIT;
    uint32_t *perm = NULL;
    o.experts = E;
    CHECK_RC(spx_moefy_split_param(&ctx, Wg, ffn, d, &o, &perm, NULL), 0);
    if (!perm)
        return;
    spx_moefy_permute_rows(Wg, ffn, d, perm, Pg);
    spx_moefy_permute_rows(Wu, ffn, d, perm, Pu);
    spx_moefy_permute_cols(Wd, d, ffn, perm, Pd);   /* W_down is [d x ffn] */
    double worst = 0.0;
    for (int trial = 0; trial < 20; trial++) {
        double x[12], y0[12] = {0}, y1[12] = {0}, num = 0, den = 0;
        for (uint32_t t = 0; t < d; t++)
            x[t] = spx_test_normal(&s);
        for (uint32_t j = 0; j < ffn; j++) {
            double g0 = 0, u0 = 0, g1 = 0, u1 = 0;
            for (uint32_t t = 0; t < d; t++) {
                g0 += Wg[(size_t)j * d + t] * x[t];
                u0 += Wu[(size_t)j * d + t] * x[t];
                g1 += Pg[(size_t)j * d + t] * x[t];
                u1 += Pu[(size_t)j * d + t] * x[t];
            }
            double a0 = silu(g0) * u0, a1 = silu(g1) * u1;
            for (uint32_t r = 0; r < d; r++) {
                y0[r] += Wd[(size_t)r * ffn + j] * a0;
                y1[r] += Pd[(size_t)r * ffn + j] * a1;
            }
        }
        for (uint32_t r = 0; r < d; r++) {
            num += (y0[r] - y1[r]) * (y0[r] - y1[r]);
            den += y0[r] * y0[r];
        }
        double rel = sqrt(num / den);
        worst = rel > worst ? rel : worst;
    }
    fprintf(stderr, "MLP output under the expert permutation: max rel diff %.3g\n", worst);
    CHECK(worst < 1e-6);
    free(perm);
    free(Wg); free(Wu); free(Wd); free(Pg); free(Pu); free(Pd);
}

int spx_test_main(void)
{
    test_param_split();
    test_perm_from_labels();
    test_coact();
    test_mlp_invariance();
    return 0;
}
