/* spx_test.c: harness main() and helpers for unit tests. */
#include "spx_test.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int spx_test_failures = 0;

const char *spx_test_env(const char *name)
{
    const char *v = getenv(name);
    return (v && *v) ? v : NULL;
}

static int mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] == '/' || buf[i] == '\0') {
            char c = buf[i];
            buf[i] = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return -1;
            buf[i] = c;
        }
    }
    return 0;
}

const char *spx_test_tmpdir(void)
{
    static char dir[4096];
    if (!dir[0]) {
        const char *t = spx_test_env("SPX_TMP");
        snprintf(dir, sizeof dir, "%s", t ? t : "/tmp/spx-test");
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) { /* best effort */ }
        if (mkdir_p(dir) != 0) {
            fprintf(stderr, "cannot create %s\n", dir);
            exit(1);
        }
    }
    return dir;
}

const char *spx_test_path(const char *dir, const char *name)
{
    static char bufs[8][4096];
    static int k = 0;
    char *b = bufs[k++ & 7];
    snprintf(b, 4096, "%s/%s", dir, name);
    return b;
}

int spx_test_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

void spx_test_skip(const char *why)
{
    fprintf(stderr, "SKIP: %s\n", why);
    exit(77);
}

uint64_t spx_test_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

double spx_test_uniform(uint64_t *s)
{
    return (double)(spx_test_rand(s) >> 11) * (1.0 / 9007199254740992.0);
}

double spx_test_normal(uint64_t *s)
{
    double u1 = spx_test_uniform(s), u2 = spx_test_uniform(s);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int main(void)
{
    int rc = spx_test_main();
    if (rc == 77)
        return 77;
    if (spx_test_failures || rc) {
        fprintf(stderr, "FAILED: %d check(s) failed\n", spx_test_failures);
        return 1;
    }
    fprintf(stderr, "ok\n");
    return 0;
}
