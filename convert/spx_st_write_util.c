/* spx_st_write_util.c: string building, dtype names, UTF-8 checks and temporary files for the
 * safetensors writer; spx_st_write_blob. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spx_st_write.h"
#include "spx_st_write_int.h"

/* ---- growable string ----------------------------------------------------------------------- */

void spx_stw_put(spx_stw_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (n > SIZE_MAX - b->len - 1) {
        b->oom = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void spx_stw_str(spx_stw_buf *b, const char *s)
{
    spx_stw_put(b, s, strlen(s));
}

void spx_stw_u64(spx_stw_buf *b, uint64_t v)
{
    char tmp[24];
    int k = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    spx_stw_put(b, tmp, (size_t)k);
}

/* JSON string literal: escapes '"', '\\' and control bytes; other bytes (UTF-8) are copied. */
void spx_stw_json_str(spx_stw_buf *b, const char *s)
{
    spx_stw_put(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*c;
            spx_stw_put(b, esc, 2);
        } else if (*c == '\n' || *c == '\t' || *c == '\r') {
            esc[0] = '\\';
            esc[1] = *c == '\n' ? 'n' : *c == '\t' ? 't' : 'r';
            spx_stw_put(b, esc, 2);
        } else if (*c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)*c);
            spx_stw_put(b, esc, 6);
        } else {
            spx_stw_put(b, (const char *)c, 1);
        }
    }
    spx_stw_put(b, "\"", 1);
}

/* ---- dtypes and validation ----------------------------------------------------------------- */

static const struct {
    const char *name;
    size_t bytes;
} st_dtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
    {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},     {"F64", 8},     {"I64", 8}, {"U64", 8},
};

size_t spx_st_dtype_bytes(const char *dtype)
{
    if (!dtype)
        return 0;
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (strcmp(dtype, st_dtypes[i].name) == 0)
            return st_dtypes[i].bytes;
    return 0;
}

const char *spx_stw_dtype_canon(const char *dtype)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (dtype && strcmp(dtype, st_dtypes[i].name) == 0)
            return st_dtypes[i].name;
    return NULL;
}

/* 1 when s is well-formed UTF-8 (JSON text must be). */
int spx_stw_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 9;
        if (n == 9 || (n == 1 && c < 0xC2) || (n == 3 && c > 0xF4))
            return 0;
        for (size_t k = 1; k <= n; k++)
            if ((p[k] & 0xC0) != 0x80)
                return 0;
        if (n == 2 && ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0)))
            return 0;
        if (n == 3 && ((c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* ---- temporary files ----------------------------------------------------------------------- */

int spx_stw_tmp_create(spx_ctx *ctx, const char *path, char **tmp, FILE **fp)
{
    int rc = 0;
    int fd = -1;
    size_t plen = strlen(path);
    char *t = malloc(plen + 12);
    *tmp = NULL;
    *fp = NULL;
    if (!t)
        SPX_FAIL(ctx, rc, SPX_E_NOMEM, "%s: out of memory", path);
    memcpy(t, path, plen);
    memcpy(t + plen, ".tmp.XXXXXX", 12);
    fd = mkstemp(t);
    if (fd < 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
    if (fchmod(fd, 0644) != 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: chmod failed: %s", t, strerror(errno));
    *fp = fdopen(fd, "wb");
    if (!*fp)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: fdopen failed: %s", t, strerror(errno));
    fd = -1;
    *tmp = t;
    t = NULL;
done:
    if (fd >= 0) {
        close(fd);
        unlink(t);
    }
    free(t);
    return rc;
}

int spx_stw_tmp_close(spx_ctx *ctx, const char *tmp, FILE **fp)
{
    int rc = 0;
    if (!*fp)
        return 0;
    if (fflush(*fp) != 0 || fsync(fileno(*fp)) != 0)
        rc = spx_err_set(ctx, SPX_E_IO, "%s: flush failed: %s", tmp, strerror(errno));
    if (fclose(*fp) != 0 && rc == 0)
        rc = spx_err_set(ctx, SPX_E_IO, "%s: close failed: %s", tmp, strerror(errno));
    *fp = NULL;
    return rc;
}

int spx_st_write_blob(spx_ctx *ctx, const char *path, const void *data, size_t len)
{
    int rc = 0;
    char *tmp = NULL;
    FILE *fp = NULL;
    SPX_TRY(rc, spx_stw_tmp_create(ctx, path, &tmp, &fp));
    if (len > 0 && fwrite(data, 1, len, fp) != len)
        SPX_FAIL(ctx, rc, SPX_E_IO, "%s: write failed: %s", tmp, strerror(errno));
    SPX_TRY(rc, spx_stw_tmp_close(ctx, tmp, &fp));
    if (rename(tmp, path) != 0)
        SPX_FAIL(ctx, rc, SPX_E_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    free(tmp);
    tmp = NULL;
done:
    if (fp)
        fclose(fp);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    return rc;
}
