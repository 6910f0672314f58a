/* spx_tokens_file.c: raw token files (u16/u32 little endian), text input without '\r', and the
 * whole-file reader the tokenizer loaders share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spx_ckd.h"
#include "spx_io.h"
#include "spx_tok_internal.h"

int spx_tok_read_file(spx_ctx *ctx, const char *path, unsigned char **buf, size_t *len)
{
    char *b = NULL;
    int rc = spx_io_read_file(ctx, path, "file", 0, 0, &b, len);
    *buf = (unsigned char *)b;
    return rc;
}

int spx_tok_push(spx_ctx *ctx, uint32_t **ids, size_t *n, size_t *cap, uint32_t id)
{
    int rc = 0;
    if (*n == *cap) {
        size_t nc = *cap ? *cap : 64;
        if (spx_ckd_mul_size(nc, 2, &nc) || nc > SIZE_MAX / sizeof(uint32_t))
            SPX_FAIL(ctx, rc, SPX_E_OVERFLOW, "token array size overflow");
        uint32_t *p = realloc(*ids, nc * sizeof(uint32_t));
        if (!p)
            SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory growing the token array to %zu ids", nc);
        *ids = p;
        *cap = nc;
    }
    (*ids)[(*n)++] = id;
done:
    return rc;
}

int spx_tokens_read(spx_ctx *ctx, const char *path, int width, uint32_t **ids, size_t *n)
{
    int rc = 0;
    unsigned char *buf = NULL;
    size_t len = 0;
    uint32_t *out = NULL;
    *ids = NULL;
    *n = 0;
    if (width != 2 && width != 4)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: token width must be 2 or 4, got %d", path, width);
    SPX_TRY(rc, spx_tok_read_file(ctx, path, &buf, &len));
    size_t w = (size_t)width;
    if (len % w != 0)
        SPX_FAIL(ctx, rc, SPX_E_DATA,
                 "%s: size %zu is not a multiple of the token width %d: partial token at byte offset %zu",
                 path, len, width, len - len % w);
    size_t cnt = len / w;
    out = malloc((cnt ? cnt : 1) * sizeof(uint32_t));
    if (!out)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory for %zu tokens", path, cnt);
    for (size_t i = 0; i < cnt; i++) {
        const unsigned char *p = buf + i * w;
        out[i] = w == 2 ? (uint32_t)p[0] | (uint32_t)p[1] << 8
                        : (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    }
    *ids = out;
    *n = cnt;
    out = NULL;
done:
    free(buf);
    free(out);
    return rc;
}

int spx_tokens_write(spx_ctx *ctx, const char *path, int width, const uint32_t *ids, size_t n)
{
    int rc = 0;
    char *tmp = NULL;
    int fd = -1;
    FILE *fp = NULL;
    if (width != 2 && width != 4)
        SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: token width must be 2 or 4, got %d", path, width);
    if (width == 2) {
        for (size_t i = 0; i < n; i++)
            if (ids[i] > 0xFFFFu)
                SPX_FAIL(ctx, rc, SPX_E_ARG, "%s: token %zu has id %u, too large for a u16 token file",
                         path, i, ids[i]);
    }
    size_t plen = strlen(path);
    tmp = malloc(plen + 16);
    if (!tmp)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "out of memory");
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", 12);
    fd = mkstemp(tmp);
    if (fd < 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: cannot create temporary file: %s", tmp, strerror(errno));
    fp = fdopen(fd, "wb");
    if (!fp)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: fdopen failed: %s", tmp, strerror(errno));
    fd = -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char b[4] = {(unsigned char)ids[i], (unsigned char)(ids[i] >> 8),
                              (unsigned char)(ids[i] >> 16), (unsigned char)(ids[i] >> 24)};
        if (fwrite(b, 1, (size_t)width, fp) != (size_t)width)
            SPX_FAIL(ctx, rc, SPX_E_IO, "%s: write failed: %s", tmp, strerror(errno));
    }
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: flush failed: %s", tmp, strerror(errno));
    int cr = fclose(fp);
    fp = NULL;
    if (cr != 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: close failed: %s", tmp, strerror(errno));
    if (rename(tmp, path) != 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    free(tmp);
    tmp = NULL;
done:
    if (fp)
        fclose(fp);
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    return rc;
}

int spx_text_read(spx_ctx *ctx, const char *path, char **text, size_t *len)
{
    int rc = 0;
    unsigned char *buf = NULL;
    size_t n = 0;
    *text = NULL;
    *len = 0;
    SPX_TRY(rc, spx_tok_read_file(ctx, path, &buf, &n));
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == 0)
            SPX_FAIL(ctx, rc, SPX_E_DATA, "%s: NUL byte at offset %zu (not a text file?)", path, i);
        if (buf[i] != '\r')
            buf[w++] = buf[i];
    }
    buf[w] = 0;
    *text = (char *)buf;
    *len = w;
    buf = NULL;
done:
    free(buf);
    return rc;
}
