/* fuzz_replay.c: main() of the fuzz_replay_<target> drivers (ordinary build, gcc or any compiler).
 *
 *   fuzz_replay_<target> [--optional] PATH...
 *
 * Every PATH is a corpus directory (its regular files are run in name order) or a single file;
 * a PATH right after --optional may be absent (data outside the repository, e.g. ../shared).
 * Each input is read into a malloc'ed buffer of exactly its size, so that ASan reports a read one
 * byte past the end, and handed to LLVMFuzzerTestOneInput. Exits 1 when no input was found at all
 * (a replay that runs nothing proves nothing); a crash or a broken oracle aborts. */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "fuzz_target.h"

static size_t n_inputs;
static double slowest_s;
static char slowest[4096];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int run_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    struct stat st;
    if (!fp || fstat(fileno(fp), &st) != 0) {
        fprintf(stderr, "fuzz_replay: cannot open %s: %s\n", path, strerror(errno));
        if (fp)
            fclose(fp);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf || (size && fread(buf, 1, size, fp) != size)) {
        fprintf(stderr, "fuzz_replay: cannot read %s\n", path);
        free(buf);
        fclose(fp);
        return -1;
    }
    fclose(fp);
    fprintf(stderr, "  %s (%zu bytes)\n", path, size);
    double t0 = now_s();
    LLVMFuzzerTestOneInput(buf, size);
    double dt = now_s() - t0;
    if (dt > slowest_s) {
        slowest_s = dt;
        snprintf(slowest, sizeof slowest, "%s", path);
    }
    free(buf);
    n_inputs++;
    return 0;
}

static int run_path(const char *path, int optional)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (optional) {
            fprintf(stderr, "fuzz_replay: optional %s is absent, skipped\n", path);
            return 0;
        }
        fprintf(stderr, "fuzz_replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path);
    struct dirent **ents = NULL;
    int n = scandir(path, &ents, NULL, alphasort), rc = 0;
    if (n < 0) {
        fprintf(stderr, "fuzz_replay: cannot list %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        char full[4096];
        struct stat es;
        snprintf(full, sizeof full, "%s/%s", path, ents[i]->d_name);
        if (ents[i]->d_name[0] != '.' && stat(full, &es) == 0 && S_ISREG(es.st_mode) && rc == 0)
            rc = run_file(full);
        free(ents[i]);
    }
    free(ents);
    return rc;
}

int main(int argc, char **argv)
{
    int optional = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--optional") == 0) {
            optional = 1;
            continue;
        }
        if (run_path(argv[i], optional) != 0)
            return 1;
        optional = 0;
    }
    if (n_inputs == 0) {
        fprintf(stderr, "fuzz_replay: no input found\n");
        return 1;
    }
    printf("replayed %zu inputs; slowest %.3f s (%s)\n", n_inputs, slowest_s, slowest);
    return 0;
}
