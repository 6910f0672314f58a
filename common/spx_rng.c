/* spx_rng.c: xoshiro256** and a bit-exact port of CPython's random.seed/randint (MT19937). */
#include "spx_rng.h"

#include <math.h>

uint64_t spx_rng_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void spx_rng_seed(spx_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = spx_rng_splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t spx_rng_next(spx_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double spx_rng_uniform(spx_rng *r)
{
    return (double)(spx_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t spx_rng_below(spx_rng *r, uint64_t n)
{
    /* rejection on the top of the range: unbiased */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n;
    uint64_t v;
    do
        v = spx_rng_next(r);
    while (v >= lim);
    return v % n;
}

double spx_rng_normal(spx_rng *r)
{
    double u1 = spx_rng_uniform(r), u2 = spx_rng_uniform(r);
    if (u1 < 0x1.0p-60)
        u1 = 0x1.0p-60;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

/* ---- CPython random ------------------------------------------------------------------------ */

static void mt_init(spx_pyrandom *r, uint32_t s)
{
    r->mt[0] = s;
    for (uint32_t i = 1; i < 624; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + i;
    r->idx = 624;
}

void spx_pyrandom_seed(spx_pyrandom *r, uint64_t seed)
{
    /* CPython: the absolute value of the int is split into 32-bit words, least significant first;
     * zero gives the single key [0]. Then init_by_array(key). */
    uint32_t key[2];
    uint32_t klen = 0;
    uint64_t v = seed;
    do {
        key[klen++] = (uint32_t)(v & 0xffffffffu);
        v >>= 32;
    } while (v);
    mt_init(r, 19650218u);
    uint32_t i = 1, j = 0;
    for (uint32_t k = 624 > klen ? 624 : klen; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1664525u)) + key[j] + j;
        i++;
        j++;
        if (i >= 624) {
            r->mt[0] = r->mt[623];
            i = 1;
        }
        if (j >= klen)
            j = 0;
    }
    for (uint32_t k = 623; k; k--) {
        r->mt[i] = (r->mt[i] ^ ((r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) * 1566083941u)) - i;
        i++;
        if (i >= 624) {
            r->mt[0] = r->mt[623];
            i = 1;
        }
    }
    r->mt[0] = 0x80000000u;
    r->idx = 624;
}

uint32_t spx_pyrandom_u32(spx_pyrandom *r)
{
    static const uint32_t mag01[2] = {0u, 0x9908b0dfu};
    uint32_t y;
    if (r->idx >= 624) {
        int kk;
        for (kk = 0; kk < 624 - 397; kk++) {
            y = (r->mt[kk] & 0x80000000u) | (r->mt[kk + 1] & 0x7fffffffu);
            r->mt[kk] = r->mt[kk + 397] ^ (y >> 1) ^ mag01[y & 1u];
        }
        for (; kk < 623; kk++) {
            y = (r->mt[kk] & 0x80000000u) | (r->mt[kk + 1] & 0x7fffffffu);
            r->mt[kk] = r->mt[kk + (397 - 624)] ^ (y >> 1) ^ mag01[y & 1u];
        }
        y = (r->mt[623] & 0x80000000u) | (r->mt[0] & 0x7fffffffu);
        r->mt[623] = r->mt[396] ^ (y >> 1) ^ mag01[y & 1u];
        r->idx = 0;
    }
    y = r->mt[r->idx++];
    y ^= (y >> 11);
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= (y >> 18);
    return y;
}

uint64_t spx_pyrandom_bits(spx_pyrandom *r, unsigned k)
{
    if (k <= 32)
        return spx_pyrandom_u32(r) >> (32 - k);
    /* CPython fills 32-bit words least significant first; the last word is shifted down */
    uint64_t lo = spx_pyrandom_u32(r);
    uint64_t hi = spx_pyrandom_u32(r) >> (64 - k);
    return lo | (hi << 32);
}

int64_t spx_pyrandom_randint(spx_pyrandom *r, int64_t a, int64_t b)
{
    uint64_t n = (uint64_t)(b - a) + 1u;   /* randrange(a, b+1): _randbelow(n) */
    unsigned k = 0;
    for (uint64_t t = n; t; t >>= 1)
        k++;                               /* n.bit_length() */
    uint64_t v;
    do
        v = spx_pyrandom_bits(r, k);
    while (v >= n);
    return a + (int64_t)v;
}
