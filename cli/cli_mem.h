/* cli_mem.h: --max-memory SIZE for convert, prune, expand, moefy, ppl and verify.
 *
 * main() takes the option out of argv (spx_cli_mem_strip) before the subcommand parses its own
 * options, so every stage accepts it at any position. A stage then:
 *   1. spx_cli_mem_init(&ctx)                      puts the budget into its spx_ctx;
 *   2. spx_cli_mem_model / spx_cli_mem_state       reserves what spx_model_open / spx_state_new
 *                                                  (+ logits) will take, BEFORE allocating;
 *   3. the library reserves its own large buffers (common/spx_mem.h) as it goes;
 *   4. spx_cli_mem_backstop(&ctx) once its inputs are mapped: RLIMIT_AS = current address space
 *      + the unreserved budget + headroom, so that memory the accounting missed fails as
 *      SPX_E_NOMEM instead of invoking the OOM killer. The limit is taken after the inputs are
 *      mapped (their maps do not count against the budget) and after OpenBLAS has set up its
 *      buffers, with headroom for malloc arenas, thread stacks and small unaccounted buffers.
 * Without --max-memory all of these do nothing (beyond counting). */
#ifndef SPX_CLI_MEM_H
#define SPX_CLI_MEM_H

#include <stdint.h>

#include "spx_error.h"
#include "spx_model.h"

/* Remove "--max-memory SIZE" / "--max-memory=SIZE" from argv[1..argc-1] (stops at "--") for the
 * stages that support it. Returns 0, or SPX_EXIT_USAGE after printing a usage error for `cmd`. */
int spx_cli_mem_strip(int *argc, char **argv, const char *cmd);

/* The stripped value: 0 when not given. */
unsigned long long spx_cli_mem_limit(void);

/* Copy the --max-memory budget into ctx. */
void spx_cli_mem_init(spx_ctx *ctx);

/* Reserve the heap spx_model_open(path, flags) will allocate: fp32 copies of the linear weights
 * with SPX_MODEL_COPY_WEIGHTS, and every tensor that is not dense F32 decoded to fp32 (an upper
 * bound for kernel-packed sparse layers). No-op without a budget or when the file does not open
 * (the real open reports that). */
int spx_cli_mem_model(spx_ctx *ctx, const char *path, unsigned flags, unsigned long long *held);

/* Reserve a forward state (KV cache of max_ctx positions, activations of max_batch tokens, RoPE
 * tables, attention scores) plus, when logits != 0, max_batch x vocab fp32 logits. */
int spx_cli_mem_state(spx_ctx *ctx, const spx_model *m, uint32_t max_ctx, uint32_t max_batch, int logits,
                      unsigned long long *held);

/* Arm the RLIMIT_AS backstop (see above). No-op without a budget. */
void spx_cli_mem_backstop(const spx_ctx *ctx);

#endif
