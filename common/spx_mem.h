/* spx_mem.h: the --max-memory byte budget of the large buffers.
 *
 * The budget lives in the caller's spx_ctx (mem_limit / mem_used / mem_peak, format/spx_error.h),
 * so it reaches every library function that already takes a context. A stage reserves the bytes of
 * a large buffer (calibration activations, Hessians, weight copies, KV caches, k-means data)
 * BEFORE allocating it; when the reservation would take mem_used over mem_limit it fails with
 * SPX_E_LIMIT and a message naming the buffer and both sizes, e.g.
 *   "calibration activations of blk.3 need 812 MiB, over --max-memory 512 MiB"
 * instead of the allocation running into the kernel's OOM killer. mem_limit 0 = no budget (the
 * reservations are still counted, so mem_peak reports the accounted high-water mark).
 *
 * Small buffers (per-row scratch, O(dim) vectors) are not accounted; the CLI leaves headroom for
 * them in its RLIMIT_AS backstop (cli/cli_util.c).
 *
 * Pattern: a function keeps one `unsigned long long held = 0` for everything it reserves and
 * releases it in its `done:` cleanup:
 *     SPX_TRY(rc, spx_mem_reserve(ctx, &held, bytes, "Hessian of %s", name));
 *     ...
 * done:
 *     spx_mem_release(ctx, &held);
 */
#ifndef SPX_MEM_H
#define SPX_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "spx_error.h"

/* Parse a size: a non-negative number with an optional binary suffix K, M, G or T (also KB/KiB...,
 * case-insensitive; 1K = 1024), e.g. "512M", "2G", "1.5G", "1073741824". 0 ok, -1 invalid
 * (empty, negative, trailing text, overflow of 2^64). */
int spx_mem_parse_size(const char *s, unsigned long long *out);

/* Human-readable size: "812 MiB" (MiB rounded up when round_up, else down), "3.5 GiB" at >= 10 GiB,
 * "12 KiB", "100 bytes". Always NUL-terminated. */
void spx_mem_format(char *buf, size_t n, unsigned long long bytes, int round_up);

/* Set the budget (0 = unlimited); mem_used and mem_peak are reset. ctx may be NULL. */
void spx_mem_set_limit(spx_ctx *ctx, unsigned long long limit);

/* Reserve `bytes` against the budget and add them to *held. SPX_E_LIMIT (nothing reserved) when
 * mem_used + bytes > mem_limit; the message is "<what> need <bytes>[ (<used> already in use)],
 * over --max-memory <limit>" with <what> from fmt. ctx NULL: always succeeds. */
int spx_mem_reserve(spx_ctx *ctx, unsigned long long *held, unsigned long long bytes, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Give back everything in *held (saturating at 0) and set *held = 0. ctx NULL: only clears *held. */
void spx_mem_release(spx_ctx *ctx, unsigned long long *held);

/* Bytes spx_state_new(model, max_ctx, max_batch) allocates (verify/spx_forward.h): K and V caches
 * [n_layers x max_ctx x kv_dim], activations of max_batch tokens (x, xn, tmp [dim]; q, att [q_dim];
 * gate, up [ffn_dim]), attention scores [SPX_ATT_QBLOCK=64 x max_ctx] and the RoPE tables
 * [max_ctx x rope_dim]; saturates at 2^64-1. The expert scratch grows on demand (not counted). */
struct spx_model_config;
unsigned long long spx_mem_state_bytes(const struct spx_model_config *c, uint32_t max_ctx, uint32_t max_batch);

/* Move a reservation between holders (e.g. into an object that outlives the function). */
void spx_mem_transfer(unsigned long long *from, unsigned long long *to);

#endif
