/* main.c: `spx` dispatches to one subcommand per pipeline stage. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

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
    {"synth", spx_cmd_synth, "write a small synthetic Hugging Face checkpoint from a seed"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: spx <command> [options]\n\n"
                 "Turns dense transformer checkpoints into sparse mixtures of experts (.spx files).\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'spx <command> --help' for a command's options.\n"
                 "Exit status: 0 success, 1 data error, 2 usage error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return SPX_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return SPX_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("spx %s\n", SPX_VERSION_STRING);
        return SPX_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "spx: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return SPX_EXIT_USAGE;
}
