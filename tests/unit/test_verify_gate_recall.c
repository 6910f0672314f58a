/* test_verify_gate_recall.c: spx_gate_recall_token against a naive rank-based definition on random
 * masses (with many ties) and random selections: exact equality (the recall is a ratio of small
 * integers). The forward-pass observer is tested end to end in tests/scripts/moefy_cli.sh
 * (oracle mode -> recall exactly 1, top-k = E -> 1, random mode near k/E). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spx_gate_recall.h"
#include "spx_test.h"

static uint64_t lcg(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* rank(e) = experts before e in the oracle order (larger mass first, ties: lower index) */
static double naive_recall(const float *mass, const uint8_t *sel, uint32_t E)
{
    uint32_t k = 0, hit = 0;
    for (uint32_t e = 0; e < E; e++)
        k += sel[e] != 0;
    if (!k)
        return 0.0;
    for (uint32_t e = 0; e < E; e++) {
        uint32_t rank = 0;
        for (uint32_t f = 0; f < E; f++)
            rank += mass[f] > mass[e] || (mass[f] == mass[e] && f < e);
        hit += sel[e] && rank < k;
    }
    return (double)hit / (double)k;
}

int spx_test_main(void)
{
    uint64_t s = 7;
    uint32_t ord[2 * 64];
    uint8_t osel[64], sel[64];
    float mass[64];
    int trials = 0;
    for (int t = 0; t < 3000; t++) {
        uint32_t E = 1 + (uint32_t)(lcg(&s) % 64);
        for (uint32_t e = 0; e < E; e++) {
            mass[e] = (float)(lcg(&s) % 8) * 0.25f;   /* few distinct values: many ties */
            sel[e] = (uint8_t)(lcg(&s) % 3 == 0);
        }
        double got = spx_gate_recall_token(mass, sel, E, ord, osel), want = naive_recall(mass, sel, E);
        CHECK_MSG(got == want, "trial %d E %u: %.17g vs %.17g", t, E, got, want);
        trials++;
    }
    /* the oracle's own choice has recall 1; its complement 0 */
    {
        const float m4[4] = {0.5f, 2.0f, 2.0f, 1.0f};
        const uint8_t top2[4] = {0, 1, 1, 0}, bottom2[4] = {1, 0, 0, 1}, none[4] = {0, 0, 0, 0};
        const uint8_t tie[4] = {0, 0, 1, 0};  /* k = 1: the tie at 2.0 goes to expert 1 */
        CHECK(spx_gate_recall_token(m4, top2, 4, ord, osel) == 1.0);
        CHECK(spx_gate_recall_token(m4, bottom2, 4, ord, osel) == 0.0);
        CHECK(spx_gate_recall_token(m4, none, 4, ord, osel) == 0.0);
        CHECK(spx_gate_recall_token(m4, tie, 4, ord, osel) == 0.0);
    }
    CHECK(trials == 3000);
    return 0;
}
