/* spx_error.h: pinned error codes and the error context.
 *
 * Every library function returns 0 (SPX_OK) or one of the negative codes below and, when it
 * fails, writes a human-readable message into the caller's spx_ctx. Library code never prints
 * and never exits: only the CLI turns a context into stderr text and an exit status.
 *
 * The numeric values are pinned: they are part of the .spx format contract (golden invalid files
 * name them) and never change meaning once released. New codes only take unused values. */
#ifndef SPX_ERROR_H
#define SPX_ERROR_H

#include <stdarg.h>
#include <stddef.h>

typedef enum spx_err {
    SPX_OK = 0,
    /* generic */
    SPX_E_IO = -1,          /* open/read/write/mmap/rename failed (errno text in message) */
    SPX_E_NOMEM = -2,       /* allocation failed */
    SPX_E_ARG = -3,         /* invalid argument from the caller (API misuse or bad option value) */
    SPX_E_OVERFLOW = -4,    /* a size computation overflowed */
    SPX_E_LIMIT = -5,       /* a configured resource limit (e.g. --max-memory) would be exceeded */
    SPX_E_INTERNAL = -6,    /* an invariant of the program itself failed: a bug */
    /* .spx container (format/) */
    SPX_E_BAD_MAGIC = -10,      /* first 8 bytes are not the .spx magic */
    SPX_E_BYTESWAPPED = -11,    /* magic is there but multi-byte fields are big-endian */
    SPX_E_VERSION = -12,        /* unsupported major version */
    SPX_E_FEATURE = -13,        /* unknown required-feature flag set */
    SPX_E_TRUNCATED = -14,      /* file shorter than the header says / a section runs past the end */
    SPX_E_TRAILING = -15,       /* bytes after the last section / file longer than file_size */
    SPX_E_HEADER_CRC = -16,     /* header checksum mismatch */
    SPX_E_RESERVED = -17,       /* a reserved field or padding byte is not zero */
    SPX_E_ALIGN = -18,          /* alignment not a power of two >= 64, or an offset not aligned */
    SPX_E_TABLE = -19,          /* tensor table malformed (offset/count out of range) */
    SPX_E_TABLE_CRC = -20,      /* tensor table checksum mismatch */
    SPX_E_NAME = -21,           /* tensor name empty, not NUL-terminated, or not padded with NUL */
    SPX_E_DUP_NAME = -22,       /* two tensors with the same name */
    SPX_E_DTYPE = -23,          /* unknown dtype */
    SPX_E_ENCODING = -24,       /* unknown encoding, or encoding not valid for this tensor */
    SPX_E_DIMS = -25,           /* ndim out of range, zero or too large dimension */
    SPX_E_OFFSET = -26,         /* data offset out of bounds or not in ascending order */
    SPX_E_OVERLAP = -27,        /* two data ranges overlap */
    SPX_E_SIZE = -28,           /* data length differs from the length implied by dims and encoding */
    SPX_E_DATA_CRC = -29,       /* tensor data checksum mismatch */
    SPX_E_META = -30,           /* metadata section malformed */
    SPX_E_META_CRC = -31,       /* metadata checksum mismatch */
    SPX_E_DUP_KEY = -32,        /* duplicate metadata key */
    SPX_E_SPARSE = -33,         /* sparse-encoding invariant violated (popcount, N:M count, indices) */
    SPX_E_GAP = -34,            /* non-zero bytes in a gap between sections */
    /* input formats (convert/, common/) */
    SPX_E_SAFETENSORS = -40,    /* malformed safetensors file or index */
    SPX_E_JSON = -41,           /* malformed JSON */
    SPX_E_CONFIG = -42,         /* config.json missing a field or with an invalid value */
    SPX_E_UNSUPPORTED = -43,    /* valid input that spx does not support (architecture, dtype, quantization) */
    SPX_E_LLAMA2C = -44,        /* malformed llama2.c checkpoint or tokenizer */
    SPX_E_TOKENIZER = -45,      /* malformed or unsupported tokenizer */
    SPX_E_MISSING = -46,        /* a required tensor or metadata key is missing */
    SPX_E_SHAPE = -47,          /* a tensor has a shape that does not match the model configuration */
    SPX_E_GGUF = -48,           /* malformed GGUF file */
    SPX_E_DATA = -49,           /* malformed data file (token file, calibration text) */
    /* numerics */
    SPX_E_NUMERIC = -60,        /* NaN or Inf in weights or activations */
    SPX_E_CHOLESKY = -61,       /* Cholesky factorization failed even after damping retries */
    SPX_E_VERIFY = -62          /* a verification threshold was exceeded */
} spx_err;

#define SPX_MSG_MAX 1024

/* Error context: one per thread of work. Zero-initialise (SPX_CTX_INIT) before use.
 * The memory-budget fields were appended in session 2 (additive: code and msg keep their offsets,
 * a zeroed context means "no budget"); they are managed by common/spx_mem.h (spx_mem_reserve /
 * spx_mem_release) and set by the CLI's --max-memory. Copying a context copies its budget. */
typedef struct spx_ctx {
    int code;                 /* last error code, 0 when none */
    char msg[SPX_MSG_MAX];    /* last error message, "" when none */
    unsigned long long mem_limit;  /* byte budget of the large buffers; 0 = unlimited */
    unsigned long long mem_used;   /* bytes currently reserved against mem_limit */
    unsigned long long mem_peak;   /* largest mem_used seen */
} spx_ctx;

#define SPX_CTX_INIT {0, {0}, 0, 0, 0}

/* Record an error and return `code` so callers can write `return spx_err_set(ctx, ...)`.
 * ctx may be NULL (the message is dropped). */
int spx_err_set(spx_ctx *ctx, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
int spx_err_setv(spx_ctx *ctx, int code, const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 0)))   /* clang -Wformat-nonliteral: fmt is a format */
#endif
    ;

/* Prefix the message already in ctx with more context ("while reading X: " + old message). */
int spx_err_prefix(spx_ctx *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

void spx_err_clear(spx_ctx *ctx);

/* Stable symbolic name of a code, e.g. "SPX_E_BAD_MAGIC"; "SPX_E_UNKNOWN" for other values. */
const char *spx_err_name(int code);

/* Helpers for the `goto done` style: set rc and jump. */
#define SPX_FAIL(ctx, rc_var, code, ...) \
    do { (rc_var) = spx_err_set((ctx), (code), __VA_ARGS__); goto done; } while (0)
#define SPX_TRY(rc_var, expr) \
    do { (rc_var) = (expr); if ((rc_var) < 0) goto done; } while (0)

#endif
