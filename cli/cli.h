/* cli.h: the spx command-line program. Only this directory prints or exits.
 *
 * Exit status contract (every subcommand):
 *   0  success (and --help, which prints to stdout)
 *   1  data error: bad or unsupported input, failed verification, I/O failure
 *   2  usage error: unknown option, missing argument, bad option value
 */
#ifndef SPX_CLI_H
#define SPX_CLI_H

#include <stdio.h>

#include "spx_error.h"

#define SPX_EXIT_OK 0
#define SPX_EXIT_DATA 1
#define SPX_EXIT_USAGE 2

/* Each subcommand: argv[0] is the subcommand name. Returns the exit status. */
int spx_cmd_convert(int argc, char **argv);
int spx_cmd_inspect(int argc, char **argv);
int spx_cmd_ppl(int argc, char **argv);
int spx_cmd_run(int argc, char **argv);
int spx_cmd_synth(int argc, char **argv);
int spx_cmd_prune(int argc, char **argv);
int spx_cmd_expand(int argc, char **argv);
int spx_cmd_verify(int argc, char **argv);
int spx_cmd_analyze(int argc, char **argv);
int spx_cmd_moefy(int argc, char **argv);
int spx_cmd_export(int argc, char **argv);
int spx_cmd_sparsity(int argc, char **argv);

/* Print "spx <cmd>: error: <msg> (<SPX_E_NAME>)" to stderr and return SPX_EXIT_DATA
 * (SPX_EXIT_USAGE when ctx->code == SPX_E_ARG). */
int spx_cli_fail(const char *cmd, const spx_ctx *ctx);
/* Print "spx <cmd>: <fmt>" + "Try 'spx <cmd> --help'." to stderr; returns SPX_EXIT_USAGE. */
int spx_cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Parse helpers for option values: 0 ok, -1 invalid. */
int spx_cli_parse_u64(const char *s, unsigned long long *out);
int spx_cli_parse_double(const char *s, double *out);
/* "N:M" with 1 <= N < M <= 32 (N nonzeros kept per M consecutive inputs). */
int spx_cli_parse_nm(const char *s, int *n, int *m);
/* 1 when progress should be shown: `forced` (--progress) or stderr is a terminal. */
int spx_cli_progress_enabled(int forced);
/* Progress callback for library stages: prints "\r<stage> done/total" to stderr. */
void spx_cli_progress(void *ud, const char *stage, unsigned long long done, unsigned long long total);

#endif
