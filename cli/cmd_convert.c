/* cmd_convert.c: placeholder until the convert subcommand lands (replaced, never committed as is). */
#include "cli.h"

int spx_cmd_convert(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "spx convert: not built yet\n");
    return SPX_EXIT_DATA;
}
