/* router/bench_http.h — `laurel bench http`: the public HTTP API of a real cluster under
 * closed-loop load, and the same operations on Redis and PostgreSQL when they are installed.
 * See bench_http.c for what is measured, and docs/benchmarks.md for the figures. */
#ifndef LAUREL_BENCH_HTTP_H
#define LAUREL_BENCH_HTTP_H

/**
 * `laurel bench http [options]` (@argv[0] is "http"). Prints `figure <name> <value> <unit>`
 * lines on stdout, progress and errors on stderr.
 * @return the process exit code: 0 when every workload ran (HTTP errors are printed, not
 * fatal), 1 when the cluster or the load could not be set up, 2 on bad usage.
 */
int bench_http_main(int argc, char **argv);

#endif
