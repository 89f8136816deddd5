/* router/bench_ws.h — `laurel bench ws`: the WebSocket gateway of a real cluster (connections
 * held, notification latency, fan-out rate, memory per connection, reads over the socket),
 * and Redis ZREVRANK beside it. See bench_ws.c for what is measured and how, and
 * docs/benchmarks.md for the figures. */
#ifndef LAUREL_BENCH_WS_H
#define LAUREL_BENCH_WS_H

/**
 * `laurel bench ws [options]` (@argv[0] is "ws"). Prints `figure <name> <value> <unit>`
 * lines on stdout, progress on stderr.
 * @return the process exit code: 0 when every phase ran (shortfalls are printed as `errors`
 * lines), 1 when the cluster or the load could not be set up, 2 on bad usage.
 */
int bench_ws_main(int argc, char **argv);

#endif
