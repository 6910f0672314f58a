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

/* Map the regular file `path` read-only (MAP_PRIVATE) for parsing in place: *map receives the
 * mapping (NULL for an empty file, which is not an error) and *len its size; release with
 * spx_io_unmap. `what` names the file's role in messages. Errors: SPX_E_IO (cannot open, not a
 * regular file, mmap failure), SPX_E_OVERFLOW (larger than the address space). */
int spx_io_map_file(spx_ctx *ctx, const char *path, const char *what, void **map, size_t *len);
/* Accepts map == NULL. */
void spx_io_unmap(void *map, size_t len);

#endif
