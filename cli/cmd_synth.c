/* cmd_synth.c: placeholder until the synth subcommand lands (replaced, never committed as is). */
#include "cli.h"

int spx_cmd_synth(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "spx synth: not built yet\n");
    return SPX_EXIT_DATA;
}
