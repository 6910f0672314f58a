/* cmd_ppl.c: placeholder until the ppl subcommand lands (replaced, never committed as is). */
#include "cli.h"

int spx_cmd_ppl(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "spx ppl: not built yet\n");
    return SPX_EXIT_DATA;
}
