/* cli_mem.c: --max-memory for the CLI stages (see cli_mem.h). */
#include "cli_mem.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "spx_ckd.h"
#include "spx_format.h"
#include "spx_mem.h"

static unsigned long long g_limit;

unsigned long long spx_cli_mem_limit(void)
{
    return g_limit;
}

void spx_cli_mem_init(spx_ctx *ctx)
{
    spx_mem_set_limit(ctx, g_limit);
}

int spx_cli_mem_strip(int *argc, char **argv, const char *cmd)
{
    static const char *const stages[] = {"convert", "prune", "expand", "moefy", "ppl", "verify"};
    const char *opt = "--max-memory";
    size_t ol = strlen(opt);
    int ok = 0;
    for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
        ok |= strcmp(cmd, stages[i]) == 0;
    if (!ok)
        return 0;
    int n = *argc;
    for (int i = 1; i < n;) {
        const char *a = argv[i], *val;
        int take;
        if (strcmp(a, "--") == 0)
            break;
        if (strcmp(a, opt) == 0) {
            if (i + 1 >= n)
                return spx_cli_usage_error(cmd, "option '--max-memory' needs a value");
            val = argv[i + 1];
            take = 2;
        } else if (strncmp(a, opt, ol) == 0 && a[ol] == '=') {
            val = a + ol + 1;
            take = 1;
        } else {
            i++;
            continue;
        }
        if (spx_mem_parse_size(val, &g_limit) || g_limit == 0)
            return spx_cli_usage_error(cmd, "--max-memory wants a positive size such as 512M or 2G, got '%s'", val);
        memmove(argv + i, argv + i + take, (size_t)(n - i - take + 1) * sizeof *argv);  /* with argv[argc] */
        n -= take;
    }
    *argc = n;
    return 0;
}

int spx_cli_mem_model(spx_ctx *ctx, const char *path, unsigned flags, unsigned long long *held)
{
    int rc = 0;
    spx_file *f = NULL;
    spx_ctx probe = SPX_CTX_INIT;
    unsigned long long bytes = 0;
    if (!ctx->mem_limit || spx_file_open(&probe, path, 0, &f) < 0)
        return 0;
    for (uint32_t i = 0; i < spx_file_tensor_count(f); i++) {
        const spx_tensor *t = spx_file_tensor(f, i);
        uint64_t numel = 0, b;
        int linear = (t->role == SPX_ROLE_ATTN || t->role == SPX_ROLE_MLP) && t->ndim == 2;
        int in_place = t->encoding == SPX_ENC_DENSE && t->dtype == SPX_DTYPE_F32;
        if (in_place && !(linear && (flags & SPX_MODEL_COPY_WEIGHTS)))
            continue;
        if (spx_tensor_numel(&probe, t, &numel) < 0 || spx_ckd_mul_u64(numel, 4, &b) || bytes + b < bytes)
            continue;   /* the real open rejects it */
        bytes += b;
    }
    rc = spx_mem_reserve(ctx, held, bytes, "model weights of %s (%s)", path,
                         (flags & SPX_MODEL_COPY_WEIGHTS) ? "writable fp32 copies" : "decoded to fp32");
    spx_file_free(f);
    return rc;
}

int spx_cli_mem_state(spx_ctx *ctx, const spx_model *m, uint32_t max_ctx, uint32_t max_batch, int logits,
                      unsigned long long *held)
{
    unsigned long long b = spx_mem_state_bytes(&m->cfg, max_ctx, max_batch);
    unsigned long long lg = (unsigned long long)max_batch * m->cfg.vocab_size * 4ull;
    if (logits)
        b = b + lg < b ? ~0ull : b + lg;
    return spx_mem_reserve(ctx, held, b, "forward state (KV cache of %u positions%s)", max_ctx,
                           logits ? " and logits" : "");
}

static unsigned long long vm_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %llu kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

void spx_cli_mem_backstop(const spx_ctx *ctx)
{
    const unsigned long long GiB = 1ull << 30;
    unsigned long long now = vm_size(), left, head, lim;
    struct rlimit rl;
    if (!ctx->mem_limit || !now)
        return;
    left = ctx->mem_limit > ctx->mem_used ? ctx->mem_limit - ctx->mem_used : 0;
    /* headroom: glibc malloc arenas reserve 64 MiB of address space per thread, OpenBLAS and the
     * kernel pool their buffers and stacks; the accounting skips buffers of O(rows) size */
    head = 2 * GiB + left / 2;
    lim = now + left + head;
    if (lim < now || getrlimit(RLIMIT_AS, &rl) != 0)
        return;
    if (rl.rlim_max != RLIM_INFINITY && lim > rl.rlim_max)
        lim = rl.rlim_max;
    if (rl.rlim_cur != RLIM_INFINITY && lim > rl.rlim_cur)
        return;   /* already tighter */
    rl.rlim_cur = lim;
    (void)setrlimit(RLIMIT_AS, &rl);
}
