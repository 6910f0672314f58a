/* main.c: `spx` dispatches to one subcommand per pipeline stage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>

#include "cli.h"
#include "cli_mem.h"
#include "spx_kernels.h"

typedef struct spx_command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} spx_command;

static const spx_command commands[] = {
    {"convert", spx_cmd_convert, "convert a dense checkpoint (safetensors, llama2.c .bin) to .spx"},
    {"inspect", spx_cmd_inspect, "print the header, metadata and tensor table of a .spx; --check verifies checksums"},
    {"ppl", spx_cmd_ppl, "perplexity of a .spx model over a text or token file"},
    {"run", spx_cmd_run, "generate text greedily from a prompt"},
    {"prune", spx_cmd_prune, "one-shot pruning: SparseGPT, Wanda or magnitude, unstructured or N:M"},
    {"analyze", spx_cmd_analyze, "Wasserstein neurons: W1 of each neuron's normalized output to N(0,1)"},
    {"moefy", spx_cmd_moefy, "neuron experts with trained gating predictors (MoEfication, DSTI, LTE)"},
    {"verify", spx_cmd_verify, "compare a model with its reference (KL, top-1, ppl ratio), integrity, probes"},
    {"expand", spx_cmd_expand, "Sparse Expansion: one pruned expert per input cluster, routed per token"},
    {"export", spx_cmd_export, "write a .spx back as Hugging Face safetensors (dense or sparse-bitmask)"},
    {"sparsity", spx_cmd_sparsity, "PPL-p% activation sparsity: CETT thresholds on the FFN activations"},
    {"synth", spx_cmd_synth, "write a small synthetic Hugging Face checkpoint from a seed"},
};

/* OpenBLAS environment (issue #7), read by the library when it is loaded, before main(): setting
 * it here has no effect on this process, so spx sets it and re-executes itself once.
 *  - OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs: Debian's DYNAMIC_ARCH OpenBLAS 0.3.21 does not
 *    know newer AVX-512 CPUs (e.g. Zen 5) and falls back to its Haswell (AVX2) kernels, at about
 *    half the sgemm speed of its SkylakeX kernels on them.
 *  - OPENBLAS_THREAD_TIMEOUT=22: after each threaded call OpenBLAS's idle workers spin for 2^28
 *    cycles (~0.1 s) before sleeping, and take the cores from spx's own kernel threads (the
 *    sparse kernels, the SparseGPT row pass); 2^22 cycles (~1-2 ms) still covers back-to-back
 *    BLAS calls (end-to-end prune time unchanged, measured) while the SparseGPT sweep ran 1.3x
 *    faster.
 * A variable already in the environment is kept. SPX_REEXEC_MARK (set to what spx set) guards
 * against loops; SPX_NO_REEXEC=1 turns it all off. */
#define SPX_REEXEC_MARK "SPX_OPENBLAS_REEXEC"
#define SPX_THREAD_TIMEOUT "22"

static int cpu_has_skylakex(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#else
    return 0;
#endif
}

static int reexec_disabled(void)
{
    const char *no = getenv("SPX_NO_REEXEC");
    return no && strcmp(no, "0") != 0;
}

static int timeout_from_env(void)
{
    return getenv("OPENBLAS_THREAD_TIMEOUT") || getenv("GOTO_THREAD_TIMEOUT");
}

static void maybe_reexec(char **argv)
{
    int ct = !getenv("OPENBLAS_CORETYPE") && cpu_has_skylakex(), to = !timeout_from_env();
    if (reexec_disabled() || getenv(SPX_REEXEC_MARK) || (!ct && !to))
        return;
    if ((ct && setenv("OPENBLAS_CORETYPE", "SkylakeX", 1) != 0) ||
        (to && setenv("OPENBLAS_THREAD_TIMEOUT", SPX_THREAD_TIMEOUT, 1) != 0) ||
        setenv(SPX_REEXEC_MARK, ct && to ? "coretype,timeout" : ct ? "coretype" : "timeout", 1) != 0)
        goto undo;
    execv("/proc/self/exe", argv);
undo:
    /* exec failed (no /proc): go on with what OpenBLAS chose; do not claim what was not applied */
    if (ct)
        unsetenv("OPENBLAS_CORETYPE");
    if (to)
        unsetenv("OPENBLAS_THREAD_TIMEOUT");
    unsetenv(SPX_REEXEC_MARK);
}

static void version_verbose(void)
{
    const char *ct = getenv("OPENBLAS_CORETYPE"), *mark = getenv(SPX_REEXEC_MARK);
    const char *to = getenv("OPENBLAS_THREAD_TIMEOUT") ? getenv("OPENBLAS_THREAD_TIMEOUT")
                                                       : getenv("GOTO_THREAD_TIMEOUT");
    int set_ct = mark && strstr(mark, "coretype") != NULL, set_to = mark && strstr(mark, "timeout") != NULL;
    printf("spx %s\n", SPX_VERSION_STRING);
    printf("openblas config:   %s\n", openblas_get_config());
    printf("openblas core:     %s\n", openblas_get_corename());
    printf("openblas threads:  %d\n", openblas_get_num_threads());
    printf("openblas coretype: %s\n", ct ? ct : "(unset)");
    printf("openblas timeout:  %s\n", to ? to : "(unset: OpenBLAS default, 2^28 cycles of idle spin)");
    if (set_ct || set_to)
        printf("re-exec:           yes (set by spx:%s%s)\n", set_ct ? " OPENBLAS_CORETYPE=SkylakeX" : "",
               set_to ? " OPENBLAS_THREAD_TIMEOUT=" SPX_THREAD_TIMEOUT : "");
    else if (reexec_disabled())
        printf("re-exec:           no (SPX_NO_REEXEC set)\n");
    else if (mark)
        printf("re-exec:           no (%s=%s already set)\n", SPX_REEXEC_MARK, mark);
    else if ((ct || !cpu_has_skylakex()) && to)
        printf("re-exec:           no (%s)\n", ct ? "OPENBLAS_CORETYPE and the thread timeout from the environment"
                                                   : "CPU lacks AVX-512F/BW/VL/DQ; thread timeout from the environment");
    else
        printf("re-exec:           no (exec of /proc/self/exe failed)\n");
    printf("cpu features:     ");
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) printf(" sse4.2");
    if (__builtin_cpu_supports("avx")) printf(" avx");
    if (__builtin_cpu_supports("avx2")) printf(" avx2");
    if (__builtin_cpu_supports("fma")) printf(" fma");
    if (__builtin_cpu_supports("avx512f")) printf(" avx512f");
    if (__builtin_cpu_supports("avx512bw")) printf(" avx512bw");
    if (__builtin_cpu_supports("avx512vl")) printf(" avx512vl");
    if (__builtin_cpu_supports("avx512dq")) printf(" avx512dq");
    if (__builtin_cpu_supports("avx512cd")) printf(" avx512cd");
    if (__builtin_cpu_supports("avx512vbmi")) printf(" avx512vbmi");
    if (__builtin_cpu_supports("avx512vbmi2")) printf(" avx512vbmi2");
    if (__builtin_cpu_supports("avx512vnni")) printf(" avx512vnni");
    if (__builtin_cpu_supports("avx512bitalg")) printf(" avx512bitalg");
    if (__builtin_cpu_supports("avx512vpopcntdq")) printf(" avx512vpopcntdq");
#else
    printf(" (not x86-64)");
#endif
    printf("\nspx kernels:       %s (%d threads)\n", spx_kern_isa(), spx_kern_threads());
}

static void usage(FILE *out)
{
    fprintf(out, "usage: spx <command> [options]\n\n"
                 "Turns dense transformer checkpoints into sparse mixtures of experts (.spx files).\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nconvert, prune, expand, moefy, ppl and verify also accept --max-memory SIZE (e.g. 512M, 2G):\n"
                 "stop with exit status 1 and a message naming the buffer when the stage would need more.\n"
                 "spx --version --verbose prints the BLAS and kernel configuration.\n");
    fprintf(out, "\nRun 'spx <command> --help' for a command's options.\n"
                 "Exit status: 0 success, 1 data error, 2 usage error.\n");
}

int main(int argc, char **argv)
{
    maybe_reexec(argv);
    if (argc < 2) {
        usage(stderr);
        return SPX_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return SPX_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        if (argc > 2 && (strcmp(argv[2], "--verbose") == 0 || strcmp(argv[2], "-v") == 0))
            version_verbose();
        else
            printf("spx %s\n", SPX_VERSION_STRING);
        return SPX_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) {
            int sub_argc = argc - 1;
            if (spx_cli_mem_strip(&sub_argc, argv + 1, commands[i].name) != 0)
                return SPX_EXIT_USAGE;
            return commands[i].fn(sub_argc, argv + 1);
        }
    fprintf(stderr, "spx: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return SPX_EXIT_USAGE;
}
