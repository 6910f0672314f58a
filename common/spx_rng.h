/* spx_rng.h: deterministic random numbers.
 *
 * Two generators:
 *  - spx_rng: splitmix64-seeded xoshiro256** for everything spx decides on its own (synthetic
 *    weights, k-means++ seeding, subsampling). Same seed -> same stream on every platform.
 *  - spx_pyrandom: CPython's `random` module (MT19937, init_by_array seeding, randint through
 *    getrandbits rejection) reproduced exactly, so calibration windows drawn with seed s are the
 *    same windows the reference Python scripts (sparsegpt/wanda datautils) draw with random.seed(s).
 */
#ifndef SPX_RNG_H
#define SPX_RNG_H

#include <stdint.h>

typedef struct spx_rng {
    uint64_t s[4];
} spx_rng;

void spx_rng_seed(spx_rng *r, uint64_t seed);
/* One splitmix64 step (advances *state): the seeder, also used to derive independent sub-seeds. */
uint64_t spx_rng_splitmix64(uint64_t *state);
uint64_t spx_rng_next(spx_rng *r);
/* Uniform double in [0, 1) with 53 random bits. */
double spx_rng_uniform(spx_rng *r);
/* Uniform integer in [0, n) without modulo bias; n > 0. */
uint64_t spx_rng_below(spx_rng *r, uint64_t n);
/* Standard normal (Box-Muller, both values used alternately is NOT done: one value per call
 * so the stream position is easy to reason about). */
double spx_rng_normal(spx_rng *r);

typedef struct spx_pyrandom {
    uint32_t mt[624];
    uint32_t idx;
} spx_pyrandom;

/* random.seed(seed) for a non-negative integer seed. */
void spx_pyrandom_seed(spx_pyrandom *r, uint64_t seed);
uint32_t spx_pyrandom_u32(spx_pyrandom *r);
/* random.getrandbits(k), 1 <= k <= 64. */
uint64_t spx_pyrandom_bits(spx_pyrandom *r, unsigned k);
/* random.randint(a, b), a <= b, b - a < 2^63. */
int64_t spx_pyrandom_randint(spx_pyrandom *r, int64_t a, int64_t b);

#endif
