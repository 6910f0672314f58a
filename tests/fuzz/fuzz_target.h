/* fuzz_target.h: shared declarations of the fuzz targets (tests/fuzz/fuzz_*.c).
 *
 * Each target defines LLVMFuzzerTestOneInput. Built with clang -fsanitize=fuzzer (SPX_FUZZ=ON) it
 * is a libFuzzer binary; in the ordinary build the same source is linked with fuzz_replay.c into
 * fuzz_replay_<target>, which runs every file of the corpus directories through it (ctest
 * fuzz.replay.<target>), so the corpora are regression tests under gcc and under ASan+UBSan.
 *
 * A target returns 0 for every input. Rejected input is the normal case; only a sanitizer report,
 * a hang or a broken invariant (FUZZ_ASSERT: an oracle the library promises, e.g. "a tensor that
 * decodes re-encodes to the same matrix") is a finding. */
#ifndef SPX_FUZZ_TARGET_H
#define SPX_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort with a message: libFuzzer records the input as a crash, the replay test fails. */
#define FUZZ_ASSERT(cond, ...) \
    do { if (!(cond)) { fprintf(stderr, "%s:%d: fuzz oracle failed: %s: ", __FILE__, __LINE__, #cond); \
         fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); abort(); } } while (0)

/* Little-endian field readers for the input prefixes some targets decode. */
static inline uint32_t fuzz_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t fuzz_rd64(const uint8_t *p)
{
    return (uint64_t)fuzz_rd32(p) | (uint64_t)fuzz_rd32(p + 4) << 32;
}

/* Upper bound on elements a target materialises as floats, so that a valid but huge tensor
 * description does not turn fuzzing into an out-of-memory report (64 MiB of fp32). */
#define FUZZ_MAX_NUMEL (1ull << 24)

#endif
