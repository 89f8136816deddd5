/* bench/bench.c — `laurel bench <what>`: one table of benches, one dispatch.
 *
 * A row names a bench, its synopsis and summary (the usage is printed from the table, so a
 * new bench is one row) and its entry point, which gets the arguments from its own name on
 * and returns the process exit code. http and ws own their options and --help; shard and rpc
 * are compositions of the in-process benches (bench_int.h) and live here. */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_int.h"

struct bench__cmd {
    const char *name;
    const char *synopsis; /* after the name on the usage line */
    const char *summary;  /* lines after the first indented to the summary's column */
    int (*run)(int argc, char **argv);
};

static int bench__shard(int argc, char **argv);
static int bench__rpc(int argc, char **argv);
static int bench__snapshot(int argc, char **argv);

static const struct bench__cmd bench__cmds[] = {
    {"shard", " [--quick]",
     "apply throughput (1, 64, 1024 commands per entry) and the rank index at\n"
     "          1 M and 10 M entries; --quick: rank index at 1 M only",
     bench__shard},
    {"rpc", "",
     "one region of 3 real replicas on loopback: write throughput and latency\n"
     "          (single and batched), failover, snapshot of 1 M scores",
     bench__rpc},
    {"snapshot", " [PLAYERS]",
     "the snapshot of a shard of PLAYERS scores (default 1000000): its copy,\n"
     "          its size, and the longest stall of a loop applying entries meanwhile",
     bench__snapshot},
    {"http", " ...",
     "the public HTTP API of a real cluster against Redis and PostgreSQL\n"
     "          (`laurel bench http --help`)",
     bench_http_main},
    {"ws", " ...",
     "the WebSocket gateway of a real cluster: connections, notification\n"
     "          latency, fan-out, reads over the socket (`laurel bench ws --help`)",
     bench_ws_main},
};

#define BENCH__NCMDS (sizeof bench__cmds / sizeof bench__cmds[0])

static void bench__usage(FILE *f)
{
    fprintf(f, "usage: laurel bench");
    for (size_t i = 0; i < BENCH__NCMDS; i++) {
        fprintf(f, "%s%s%s", i ? " | " : " ", bench__cmds[i].name, bench__cmds[i].synopsis);
    }
    fprintf(f, "\n\n");
    for (size_t i = 0; i < BENCH__NCMDS; i++) {
        fprintf(f, "  %-8s%s\n", bench__cmds[i].name, bench__cmds[i].summary);
    }
    fprintf(f, "Each figure prints as `figure <name> <value> <unit>`.\n");
}

/* `laurel bench shard [--quick]`: apply throughput, then the rank index at 1 M (and 10 M). */
static int bench__shard(int argc, char **argv)
{
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            bench__usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--quick") == 0) {
            quick = 1;
        } else {
            fprintf(stderr, "laurel bench shard: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (bench_shard_apply() != 0 || bench_rank_run(1000000, "1m") != 0 ||
        (!quick && bench_rank_run(10000000, "10m") != 0)) {
        return 1;
    }
    return 0;
}

/* `laurel bench rpc`: the replicated region, then the snapshot of a 1 M-score shard. It takes
 * no options, and (as it always has) ignores any it is given. */
static int bench__rpc(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return bench_rpc_run() != 0 || bench_shard_snapshot(1000000, "1m") != 0 ? 1 : 0;
}

/* `laurel bench snapshot [PLAYERS]`: bench_shard_snapshot alone, with the suffix "<n>". */
static int bench__snapshot(int argc, char **argv)
{
    unsigned long long n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000ULL;
    char suffix[32];
    if (n < 1000) {
        fprintf(stderr, "laurel bench snapshot: PLAYERS: at least 1000\n");
        return 2;
    }
    snprintf(suffix, sizeof suffix, "%llu", n);
    return bench_shard_snapshot(n, suffix) != 0 ? 1 : 0;
}

int bench_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0) {
        bench__usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < BENCH__NCMDS; i++) {
        if (strcmp(argv[1], bench__cmds[i].name) == 0) {
            return bench__cmds[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "laurel bench: unknown benchmark '%s'\n", argv[1]);
    bench__usage(stderr);
    return 2;
}
