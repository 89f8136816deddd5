/* bench/bench.h — `laurel bench`: the benches and load generators behind one subcommand.
 *
 * Every bench prints its results on stdout, one per line, as `figure <name> <value> <unit>`
 * so scripts can collect them, and its progress on stderr. What each measures is in its own
 * file (bench_int.h lists them) and in docs/benchmarks.md. */
#ifndef LAUREL_BENCH_H
#define LAUREL_BENCH_H

/**
 * `laurel bench <what> [options]` (@argv[0] is "bench"): run the bench named by @argv[1]
 * (shard, rpc, http, ws), or print the usage for --help or no argument.
 * @return the process exit code: 0 when the bench ran, 1 when it could not be set up or
 * failed, 2 on bad usage.
 */
int bench_main(int argc, char **argv);

#endif
