/* cmd_run.c: placeholder until the run subcommand lands (replaced, never committed as is). */
#include "cli.h"

int spx_cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "spx run: not built yet\n");
    return SPX_EXIT_DATA;
}
