/* cli_calib.h: the calibration-data options shared by prune, expand and other calibrating stages:
 *   --text FILE | --tokens FILE [--token-width 2|4] [--range A:B] [--nsamples N] [--seqlen N] [--seed N] */
#ifndef SPX_CLI_CALIB_H
#define SPX_CLI_CALIB_H

#include <getopt.h>
#include <stdint.h>

#include "spx_error.h"
#include "spx_model.h"

typedef struct spx_cli_calib {
    const char *text, *tokens, *range;
    int width;
    unsigned long long nsamples, seqlen, seed;
} spx_cli_calib;

#define SPX_CLI_CALIB_INIT {NULL, NULL, NULL, 4, 128, 0, 0}

/* getopt_long entries; their values are 0x1000.. so they never clash with short options. */
#define SPX_CLI_CALIB_OPTIONS \
    {"text", required_argument, 0, 0x1000}, {"tokens", required_argument, 0, 0x1001}, \
    {"token-width", required_argument, 0, 0x1002}, {"range", required_argument, 0, 0x1003}, \
    {"nsamples", required_argument, 0, 0x1004}, {"seqlen", required_argument, 0, 0x1005}, \
    {"seed", required_argument, 0, 0x1006}

#define SPX_CLI_CALIB_HELP \
    "  --text FILE           calibration text, tokenized with the model's tokenizer\n" \
    "  --tokens FILE         calibration token ids (raw little-endian), --token-width 2|4 (4)\n" \
    "  --range A:B           use the fraction [A, B) of the token stream (default 0:1)\n" \
    "  --nsamples N          calibration windows (default 128)\n" \
    "  --seqlen N            tokens per window (default min(2048, context length))\n" \
    "  --seed N              window sampling seed (default 0; the same windows as the reference\n" \
    "                        scripts' random.seed(N) sampler on the same tokens)\n"

/* Handle option `ch` if it is a calibration option: returns 1 when handled, 0 when not ours, and
 * SPX_EXIT_USAGE (after printing the usage error) for a bad value. */
int spx_cli_calib_opt(spx_cli_calib *c, int ch, const char *arg, const char *cmd);

/* 1 when data was given. Exits with a usage error (returns SPX_EXIT_USAGE) when both were given. */
int spx_cli_calib_check(const spx_cli_calib *c, const char *cmd);

/* Load the tokens and draw the windows [nsamples x seqlen]; fills seqlen's default from the model. */
int spx_cli_calib_windows(spx_ctx *ctx, spx_cli_calib *c, const spx_model *m, uint32_t **windows);

#endif
