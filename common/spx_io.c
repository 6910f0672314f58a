/* spx_io.c: whole-file reading (see spx_io.h). */
#include "spx_io.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int spx_io_read_file(spx_ctx *ctx, const char *path, const char *what, uint64_t cap, int cap_code, char **buf,
                     size_t *len)
{
    int rc = 0;
    FILE *fp = NULL;
    char *b = NULL;
    struct stat st;
    size_t n;
    *buf = NULL;
    *len = 0;
    fp = fopen(path, "rb");
    if (!fp)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: cannot open %s: %s", path, what, strerror(errno));
    if (fstat(fileno(fp), &st) != 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: cannot stat %s: %s", path, what, strerror(errno));
    if (!S_ISREG(st.st_mode))
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: %s is not a regular file", path, what);
    if (st.st_size < 0 || (uint64_t)st.st_size >= (uint64_t)SIZE_MAX)
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "%s: %s too large", path, what);
    if (cap && (uint64_t)st.st_size > cap)
        SPX_FAIL(ctx, rc, cap_code, "%s: %s of %llu bytes exceeds the limit of %llu bytes", path, what,
                 (unsigned long long)st.st_size, (unsigned long long)cap);
    n = (size_t)st.st_size;
    b = malloc(n + 1);
    if (!b)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory reading %zu bytes of %s", path, n, what);
    if (n && fread(b, 1, n, fp) != n)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: short read of %s (%zu bytes expected)", path, what, n);
    b[n] = '\0';
    *buf = b;
    *len = n;
    b = NULL;
done:
    if (fp)
        fclose(fp);
    free(b);
    return rc;
}

int spx_io_map_file(spx_ctx *ctx, const char *path, const char *what, void **map, size_t *len)
{
    int rc = 0, fd;
    struct stat st;
    *map = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: cannot open %s: %s", path, what, strerror(errno));
    if (!S_ISREG(st.st_mode))
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: %s is not a regular file", path, what);
    if (st.st_size < 0 || (uint64_t)st.st_size > (uint64_t)SIZE_MAX)
        SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "%s: %s too large to map", path, what);
    if (st.st_size > 0) {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            SPX_FAIL(ctx, rc, SPX_E_IO, "%s: cannot map %s: %s", path, what, strerror(errno));
        *map = m;
        *len = (size_t)st.st_size;
    }
done:
    if (fd >= 0)
        close(fd);
    return rc;
}

void spx_io_unmap(void *map, size_t len)
{
    if (map)
        munmap(map, len);
}
