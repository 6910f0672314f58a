/* spx_io.h: whole-file reading for the small text inputs (JSON configs, indexes, tokenizers,
 * reports, token files). Large inputs (checkpoints, .spx) are memory-mapped instead. */
#ifndef SPX_IO_H
#define SPX_IO_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

/* Read the regular file `path` into a malloc'ed buffer *buf of *len bytes plus a terminating NUL
 * (caller frees; *buf is NULL on failure). `what` names the file's role in messages ("tokenizer",
 * "index file"). Files larger than `cap` bytes (0: no limit) fail with `cap_code` (a negative
 * spx_err, e.g. SPX_E_LIMIT) before anything is read. Errors: SPX_E_IO (cannot open, not a regular
 * file, short read), SPX_E_OVERFLOW, SPX_E_NOMEM, cap_code. */
int spx_io_read_file(spx_ctx *ctx, const char *path, const char *what, uint64_t cap, int cap_code, char **buf,
                     size_t *len);

#endif
