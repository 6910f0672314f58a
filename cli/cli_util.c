/* cli_util.c: shared option parsing, error printing and progress display. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"

int spx_cli_fail(const char *cmd, const spx_ctx *ctx)
{
    fprintf(stderr, "spx %s: error: %s (%s)\n", cmd, ctx->msg[0] ? ctx->msg : "unknown failure",
            spx_err_name(ctx->code));
    return ctx->code == SPX_E_ARG ? SPX_EXIT_USAGE : SPX_EXIT_DATA;
}

int spx_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "spx %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'spx %s --help'.\n", cmd);
    return SPX_EXIT_USAGE;
}

int spx_cli_parse_u64(const char *s, unsigned long long *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int spx_cli_parse_double(const char *s, double *out)
{
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || v != v)
        return -1;
    *out = v;
    return 0;
}

int spx_cli_progress_enabled(int forced)
{
    return forced || isatty(STDERR_FILENO);
}

void spx_cli_progress(void *ud, const char *stage, unsigned long long done, unsigned long long total)
{
    (void)ud;
    fprintf(stderr, "\r%s %llu/%llu", stage, done, total);
    if (done >= total)
        fputc('\n', stderr);
    fflush(stderr);
}

int spx_cli_parse_nm(const char *s, int *n, int *m)
{
    int nn, mm;
    char tail;
    if (sscanf(s, "%d:%d%c", &nn, &mm, &tail) != 2 || nn < 1 || mm < 2 || nn >= mm || mm > 32)
        return -1;
    *n = nn;
    *m = mm;
    return 0;
}
