/* bench/bench_http_int.h — what the files of `laurel bench http` share: bench_http.c (the
 * command, its cluster, the figures and child-process helpers), bench_http_workloads.c (the
 * seed and the workloads), bench_peer.c (Redis and PostgreSQL) and bench_ws.c, which borrows
 * the seeded cluster. */
#ifndef LAUREL_BENCH_HTTP_INT_H
#define LAUREL_BENCH_HTTP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../router/router.h"

#define BENCH_HTTP__FIGS_MAX 64

/* Figures printed so far, kept for the ratios printed at the end. */
struct bench_http__figs {
    struct {
        char name[64];
        double value;
    } f[BENCH_HTTP__FIGS_MAX];
    unsigned n;
};

/** Print `figure @name @value @unit` with @decimals decimals and remember it in @fs. */
void bench_http__fig(struct bench_http__figs *fs, const char *name, double value, int decimals,
                     const char *unit);

/** 1 and *@value when @name was recorded in @fs, else 0. */
int bench_http__fig_get(const struct bench_http__figs *fs, const char *name, double *value);

/** Full path of executable @name: @name itself when it holds a '/', else searched in PATH.
 * @return 0 and @out, or -1 when not found or not executable. */
int bench_http__which(const char *name, char *out, size_t cap);

/**
 * Start @argv (argv[0] a path, or a name found in PATH) as a child that dies with us
 * (PR_SET_PDEATHSIG), stdout and stderr appended to @log (or /dev/null when NULL), stdin
 * from /dev/null, or from a pipe whose write end is returned in *@in_fd when @in_fd is not
 * NULL (owned by the caller, who closes it). All arguments borrowed for the call.
 * @return the child's pid, or -1.
 */
pid_t bench_http__spawn(const char *const *argv, const char *log, int *in_fd);

/** Wait for @pid for at most @timeout_ms (0: forever); SIGKILL it after that.
 * @return its exit status (0..255), 128 + a signal that ended it, or -1. */
int bench_http__wait(pid_t pid, unsigned timeout_ms);

/** Run @argv to completion (as bench_http__spawn, output to @log). @return as bench_http__wait. */
int bench_http__run(const char *const *argv, const char *log);

/** Read up to @cap - 1 bytes of @path into @buf, NUL-terminated. @return bytes read or -1. */
long bench_http__slurp(const char *path, char *buf, size_t cap);

/** Remove @dir and everything under it (best effort). */
void bench_http__rmrf(const char *dir);

/** Milliseconds sleep. */
void bench_http__sleep_ms(unsigned ms);

/** Monotonic seconds. */
double bench_http__now(void);

/* ---- `laurel bench http` itself (bench_http.c and bench_http_workloads.c) ---------------- */

/* Score items a POST /v1/events carries, and the multiple the player count is rounded up to
 * so that every seeded item names an existing player. */
#define BENCH_HTTP__BATCH 100

/* One run of `laurel bench http`: its options, its cluster and what it printed. */
struct bench_http {
    /* options */
    int quick, peers;
    char addr[64], admin_key[96], api_key[96];
    char regions[ROUTER_MAX_REGIONS][65];
    unsigned nregions, replicas, conns, players;
    double seconds;
    char only[256]; /* ",name,name," of the workloads to run; "" for all */
    /* the cluster we started, if any */
    char dir[64];
    pid_t dev;
    /* names of this run: a board, players and keys that no earlier run used */
    char run[8], board[32], pprefix[16];
    struct bench_http__figs figs;
    char bad[512]; /* workloads with errors */
};

/** A 64-bit mix of @z (splitmix64's finalizer): players, scores and names drawn from it. */
uint64_t bench_http__mix(uint64_t z);

/** One request to @b->addr on a fresh connection (hclient.h): 0 and its *@status, or an LR_E*
 * code with @errmsg (LR_ERRMSG_SIZE). @key and @body may be NULL; all borrowed for the call. */
int bench_http__call(const struct bench_http *b, const char *method, const char *path,
                     const char *key, const char *body, int *status, char *errmsg);

/** Create @b's board and players and give every player a score, through the public API of the
 * router at @b->addr with @b->conns connections. @return 0, or an LR_E* code (printed). */
int bench_http__seed(struct bench_http *b);

/** Run and print each workload of @b (those named by @b->only, or all) on the seeded cluster;
 * answers other than 2xx are printed and named in @b->bad, not fatal.
 * @return 0, or the LR_E* code of a workload that could not run (printed). */
int bench_http__workloads(struct bench_http *b);

/* A seeded cluster to load through the public API: what `laurel bench ws` borrows from
 * `laurel bench http`. One board (desc, best) named board, players pprefix + 7 digits
 * (0000000 .. players - 1) round-robin over the regions, each with a score below 10^9. */
struct bench_http__site {
    /* set by the caller */
    int quick;
    char regions[ROUTER_MAX_REGIONS][65];
    unsigned nregions, replicas, players;      /* players: a multiple of 100 */
    char addr[64], admin_key[96], api_key[96]; /* addr "": start `laurel dev` */
    /* set by bench_http__site_up */
    char run[8], board[32], pprefix[16];
    char dir[64]; /* the cluster's directory, "" when addr was given */
    pid_t dev;    /* the `laurel dev` child (its router is in that process), 0 if none */
};

/** Split @csv ("na,eu,apac") into @regions (ROUTER_MAX_REGIONS ids of at most 64 chars)
 * and their count *@n. @return 0, or -1 when empty, too many or too long. */
int bench_http__regions(const char *csv, char (*regions)[65], unsigned *n);

/** Start (unless @s->addr is set) and seed @s. @return 0, or an LR_E* code (printed). */
int bench_http__site_up(struct bench_http__site *s);

/** Stop the cluster bench_http__site_up started, if any, and remove its directory. */
void bench_http__site_down(struct bench_http__site *s);

struct bench_peer__opts {
    int quick;
    unsigned conns;   /* clients, as for our workloads */
    const char *only; /* ",name,name," of the peer figures to measure; NULL for all */
};

/** Redis: a private redis-server (AOF, fsync always), a 1 M member sorted set, then
 * redis-benchmark: ZADD, ZADD -P 16, ZREVRANK, ZREVRANGE 0 99. Prints "peer skipped: ..."
 * and returns 0 when Redis is not installed; -1 when it is but failed. */
int bench_peer__redis(struct bench_http__figs *fs, const struct bench_peer__opts *o);

/** PostgreSQL 15: a private cluster, a 1 M row table indexed by (score desc, player_id),
 * then pgbench: upsert, top 100, rank. Returns as bench_peer__redis. */
int bench_peer__pg(struct bench_http__figs *fs, const struct bench_peer__opts *o);

#endif
