/* bench/bench_int.h — the benches bench.c dispatches to, shared inside bench/ only.
 *
 * Each prints `figure <name> <value> <unit>` lines on stdout and progress and errors on
 * stderr; none asserts a time. */
#ifndef LAUREL_BENCH_INT_H
#define LAUREL_BENCH_INT_H

#include <stdint.h>

/**
 * Benchmark shard apply (bench_shard.c): commands applied per second with 1, 64 and 1024
 * commands per raft entry, LMDB committed once per entry (figures shard_apply_cps_b1, _b64,
 * _b1024).
 * @return 0 or LR_E*.
 */
int bench_shard_apply(void);

/**
 * Time a compact LMDB copy (the raft snapshot) of a shard holding @n scores (bench_shard.c):
 * figures snapshot_ms_@suffix and snapshot_bytes_@suffix. @suffix is borrowed for the call.
 * @return 0 or LR_E*.
 */
int bench_shard_snapshot(uint64_t n, const char *suffix);

/**
 * Benchmark the rank index (shard/rankidx.h) for a board of @n players (bench_rank.c):
 * upserts, ranks (with their p99 latency), top-100 pages, around-me windows and bytes per
 * entry. @suffix ("1m", "10m") ends each figure's name; it is borrowed for the call.
 * @return 0, LR_EINVAL (@n is 0 or does not fit a player number), or LR_ENOMEM.
 */
int bench_rank_run(uint64_t n, const char *suffix);

/**
 * Benchmark one region of three real replicas over the client RPC (bench_rpc.c): write
 * throughput and latency, single and batched, and failover.
 * @return 0, or 1 when the region could not be started or a measurement failed.
 */
int bench_rpc_run(void);

/**
 * `laurel bench http [options]` (@argv[0] is "http", bench_http.c): the public HTTP API of a
 * real cluster under closed-loop load, and the same operations on Redis and PostgreSQL when
 * they are installed. Progress and errors go to stderr.
 * @return the process exit code: 0 when every workload ran (HTTP errors are printed, not
 * fatal), 1 when the cluster or the load could not be set up, 2 on bad usage.
 */
int bench_http_main(int argc, char **argv);

/**
 * `laurel bench ws [options]` (@argv[0] is "ws", bench_ws.c): the WebSocket gateway of a real
 * cluster (connections held, notification latency, fan-out rate, memory per connection, reads
 * over the socket), and Redis ZREVRANK beside it. Progress goes to stderr.
 * @return the process exit code: 0 when every phase ran (shortfalls are printed as `errors`
 * lines), 1 when the cluster or the load could not be set up, 2 on bad usage.
 */
int bench_ws_main(int argc, char **argv);

#endif
