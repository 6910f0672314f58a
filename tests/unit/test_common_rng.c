/* test_common_rng.c: spx_pyrandom reproduces CPython's random module bit for bit (values below
 * were printed by CPython 3.11: random.seed(s); random.randint(...)/getrandbits(...); the
 * algorithm has been stable since Python 3.2), and xoshiro is deterministic and roughly uniform. */
#include <math.h>
#include <string.h>

#include "spx_error.h"
#include "spx_rng.h"
#include "spx_test.h"

int spx_test_main(void)
{
    spx_pyrandom pr;
    spx_pyrandom_seed(&pr, 0);
    int64_t a[1000], sum = 0;
    for (int i = 0; i < 1000; i++) {
        a[i] = spx_pyrandom_randint(&pr, 0, 100000);
        sum += a[i];
    }
    CHECK(a[0] == 50494 && a[1] == 99346 && a[2] == 55125);
    CHECK(a[999] == 1325);
    CHECK(sum == 49114672);

    spx_pyrandom_seed(&pr, 12345678901ull); /* two 32-bit key words */
    int64_t want_b[5] = {5, 6, 5, 1, 2};
    for (int i = 0; i < 5; i++)
        CHECK(spx_pyrandom_randint(&pr, 0, 7) == want_b[i]);
    CHECK(spx_pyrandom_bits(&pr, 40) == 1069314901142ull);

    spx_pyrandom_seed(&pr, 7); /* randint over a range wider than 32 bits */
    CHECK(spx_pyrandom_randint(&pr, 0, 5000000000ll) == 647892279ll);
    CHECK(spx_pyrandom_randint(&pr, 0, 5000000000ll) == 2795742288ll);
    CHECK(spx_pyrandom_randint(&pr, 0, 5000000000ll) == 4606078771ll);

    /* xoshiro: same seed -> same stream; mean of uniforms near 0.5 (1e5 draws: sd 9e-4) */
    spx_rng r1, r2;
    spx_rng_seed(&r1, 42);
    spx_rng_seed(&r2, 42);
    double m = 0, m2 = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t x = spx_rng_next(&r1);
        CHECK(x == spx_rng_next(&r2));
    }
    spx_rng_seed(&r1, 1);
    for (int i = 0; i < 100000; i++) {
        double n = spx_rng_normal(&r1);
        m += n;
        m2 += n * n;
    }
    m /= 100000;
    m2 = m2 / 100000 - m * m;
    CHECK_NEAR(m, 0.0, 0.02);   /* 6 standard errors */
    CHECK_NEAR(m2, 1.0, 0.03);
    for (int i = 0; i < 1000; i++)
        CHECK(spx_rng_below(&r1, 7) < 7);
    return 0;
}
