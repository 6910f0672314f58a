/* spx_test.h: a minimal test harness. A test file defines `int spx_test_main(void)` and uses the
 * CHECK macros; main() (spx_test.c) runs it and exits 0 (pass), 1 (fail) or 77 (skip). */
#ifndef SPX_TEST_H
#define SPX_TEST_H

#include <stdint.h>
#include <stdio.h>

extern int spx_test_failures;

int spx_test_main(void);

#define CHECK(cond) \
    do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); spx_test_failures++; } } while (0)
#define CHECK_MSG(cond, ...) \
    do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
         fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); spx_test_failures++; } } while (0)
#define CHECK_RC(expr, want) \
    do { int _rc = (expr); if (_rc != (want)) { fprintf(stderr, "%s:%d: %s returned %d (%s), want %d (%s)\n", \
         __FILE__, __LINE__, #expr, _rc, spx_err_name(_rc), (int)(want), spx_err_name(want)); spx_test_failures++; } } while (0)
#define CHECK_NEAR(a, b, tol) \
    do { double _a = (double)(a), _b = (double)(b); if (!(fabs(_a - _b) <= (tol))) { \
         fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s=%.9g %s=%.9g tol %g\n", __FILE__, __LINE__, #a, _a, #b, _b, (double)(tol)); \
         spx_test_failures++; } } while (0)

/* Environment set by ctest (see tests/CMakeLists.txt). NULL/"" when unset. */
const char *spx_test_env(const char *name);
/* A fresh, empty scratch directory for this test (from SPX_TMP, created if needed). */
const char *spx_test_tmpdir(void);
/* Path join into a static rotating buffer. */
const char *spx_test_path(const char *dir, const char *name);
/* Returns 1 if path exists. */
int spx_test_exists(const char *path);
/* Exit 77 with a message (skip). */
void spx_test_skip(const char *why);
/* Deterministic RNG (xorshift64*), uniform in [0,1) and normal. */
uint64_t spx_test_rand(uint64_t *s);
double spx_test_uniform(uint64_t *s);
double spx_test_normal(uint64_t *s);

#endif
