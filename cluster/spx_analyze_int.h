/* spx_analyze_int.h: internals shared by spx_analyze.c and spx_analyze_svg.c (not a public API).
 *
 * Atomic output files: data go to "<path>.tmp.XXXXXX" (mkstemp, next to the target) and are
 * renamed over <path> only after a successful flush and close, so a failure never leaves a
 * partial file under the final name. */
#ifndef SPX_ANALYZE_INT_H
#define SPX_ANALYZE_INT_H

#include <stddef.h>
#include <stdio.h>

#include "spx_error.h"

typedef struct spx_an_file {
    FILE *fp;                 /* open on tmp while writing */
    char *path;               /* final name */
    char *tmp;                /* temporary name */
} spx_an_file;

int spx_an_file_open(spx_ctx *ctx, const char *path, spx_an_file *f);
/* Write len bytes; SPX_E_IO naming the file on failure. */
int spx_an_file_write(spx_ctx *ctx, spx_an_file *f, const void *data, size_t len);
/* Flush, close and rename; on failure the temporary file is removed. Frees the names. */
int spx_an_file_commit(spx_ctx *ctx, spx_an_file *f);
/* Drop an uncommitted file (removes the temporary). Accepts a zeroed / already closed file. */
void spx_an_file_abort(spx_an_file *f);

#endif
