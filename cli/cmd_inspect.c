/* cmd_inspect.c: placeholder until the inspect subcommand lands (replaced, never committed as is). */
#include "cli.h"

int spx_cmd_inspect(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "spx inspect: not built yet\n");
    return SPX_EXIT_DATA;
}
