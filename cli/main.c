/* cli/main.c — `laurel <subcommand>`: one binary, a table of subcommands.
 * Each subcommand owns its flags and its --help; main only dispatches. */
#include <stdio.h>
#include <string.h>

#include "../bench/bench.h"
#include "cli.h"

struct main__cmd {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

static const struct main__cmd main__cmds[] = {
    {"node", "run one replica of a region", cli_node},
    {"router", "serve the public HTTP API", cli_router},
    {"dev", "run a whole cluster on this machine", cli_dev},
    {"ctl", "operator commands", cli_ctl},
    {"bench", "load generators: `laurel bench shard|rpc|http|ws`", bench_main},
};

static void main__usage(FILE *f)
{
    fprintf(f, "usage: laurel <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof main__cmds / sizeof main__cmds[0]; i++) {
        fprintf(f, "  %-8s %s\n", main__cmds[i].name, main__cmds[i].summary);
    }
    fprintf(f, "\n`laurel <command> --help` describes each command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        main__usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof main__cmds / sizeof main__cmds[0]; i++) {
        if (strcmp(argv[1], main__cmds[i].name) == 0) {
            return main__cmds[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "laurel: unknown command '%s'\n", argv[1]);
    main__usage(stderr);
    return 2;
}
