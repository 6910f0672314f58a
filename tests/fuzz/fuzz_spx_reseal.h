/* fuzz_spx_reseal.h: make a mutated .spx pass its checksums again, so that the fuzzer explores the
 * structural checks behind them (random mutations almost never keep the CRC-32s valid).
 *
 * On a copy of the input: every tensor record whose data range lies inside the buffer gets the CRC
 * of that range, then the table CRC, the metadata CRC (when the sections lie inside the buffer),
 * file_size = the buffer length and the header CRC are recomputed. Offsets follow the header and
 * record layouts of format/spx_format.h. Returns a malloc'ed copy (caller frees) or NULL when the
 * input is shorter than a header. */
#ifndef SPX_FUZZ_SPX_RESEAL_H
#define SPX_FUZZ_SPX_RESEAL_H

#include <string.h>
#include <zlib.h>

#include "fuzz_target.h"

static inline void fuzz_wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t fuzz_crc(const uint8_t *p, uint64_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

static inline uint8_t *fuzz_spx_reseal(const uint8_t *data, size_t n)
{
    if (n < 128)
        return NULL;
    uint8_t *b = malloc(n);
    if (!b)
        return NULL;
    memcpy(b, data, n);
    uint64_t table = fuzz_rd64(b + 48), meta = fuzz_rd64(b + 56), meta_size = fuzz_rd64(b + 64);
    uint32_t count = fuzz_rd32(b + 44);
    if (table <= n && count <= (n - table) / 192) {
        for (uint32_t i = 0; i < count; i++) {
            uint8_t *rec = b + table + 192 * (uint64_t)i;
            uint64_t off = fuzz_rd64(rec + 136), size = fuzz_rd64(rec + 144);
            if (off <= n && size <= n - off)
                fuzz_wr32(rec + 160, fuzz_crc(b + off, size));
        }
        fuzz_wr32(b + 72, fuzz_crc(b + table, 192 * (uint64_t)count));
    }
    if (meta <= n && meta_size <= n - meta)
        fuzz_wr32(b + 76, fuzz_crc(b + meta, meta_size));
    for (int i = 0; i < 8; i++)
        b[32 + i] = (uint8_t)((uint64_t)n >> (8 * i));
    fuzz_wr32(b + 124, fuzz_crc(b, 124));
    return b;
}

#endif
