/* spx_st_write_int.h: helpers shared by the safetensors writer files (not a public API). */
#ifndef SPX_ST_WRITE_INT_H
#define SPX_ST_WRITE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "spx_error.h"

/* Growable NUL-terminated string; `oom` latches the first allocation failure (later appends are
 * dropped) so builders check once at the end. Zero-initialise; free(p) when done. */
typedef struct spx_stw_buf {
    char *p;
    size_t len, cap;
    int oom;
} spx_stw_buf;

void spx_stw_put(spx_stw_buf *b, const char *s, size_t n);
void spx_stw_str(spx_stw_buf *b, const char *s);
void spx_stw_u64(spx_stw_buf *b, uint64_t v);
/* JSON string literal: escapes '"', '\\' and control bytes; other bytes (UTF-8) are copied. */
void spx_stw_json_str(spx_stw_buf *b, const char *s);

/* The static table spelling of a safetensors dtype string, NULL when unknown. */
const char *spx_stw_dtype_canon(const char *dtype);
/* 1 when s is well-formed UTF-8 (JSON text must be). */
int spx_stw_utf8_valid(const char *s);

/* Create `path`.tmp.XXXXXX (mode 0644) next to path: *tmp (malloc'ed path) and *fp (open for
 * writing). On failure nothing is left behind and *tmp, *fp are NULL. */
int spx_stw_tmp_create(spx_ctx *ctx, const char *path, char **tmp, FILE **fp);
/* fflush + fsync + fclose of *fp (set to NULL; no-op when already NULL). */
int spx_stw_tmp_close(spx_ctx *ctx, const char *tmp, FILE **fp);

#endif
