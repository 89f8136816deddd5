/* node/bench.h — in-process micro-benchmarks behind `laurel bench`.
 *
 * Each prints its results to stdout, one per line, as `figure <name>_<suffix> <value> <unit>`
 * so scripts can collect them. */
#ifndef LAUREL_BENCH_H
#define LAUREL_BENCH_H

#include <stdint.h>

/**
 * Benchmark the rank index (shard/rankidx.h) for a board of @n players: upserts, ranks (with
 * their p99 latency), top-100 pages, around-me windows and bytes per entry. @suffix ("1m",
 * "10m") ends each figure's name; it is borrowed for the call.
 * @return 0, LR_EINVAL (@n is 0 or does not fit a player number), or LR_ENOMEM.
 */
int bench_rank_run(uint64_t n, const char *suffix);

/**
 * Benchmark shard apply: commands applied per second with 1, 64 and 1024 commands per raft
 * entry, LMDB committed once per entry (figures shard_apply_cps_b1, _b64, _b1024).
 * @return 0 or LR_E*.
 */
int bench_shard_apply(void);

/** Benchmark one region of three real replicas over the client RPC (see bench_rpc.c). */
int bench_rpc(void);

/** Time a compact LMDB copy (the raft snapshot) of a shard holding @n scores. */
int bench_snapshot(uint64_t n, const char *suffix);

/** `laurel bench <what> ...`: the entry point of the bench subcommand. */
int bench_main(int argc, char **argv);

#endif
