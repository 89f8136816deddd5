/* router/rlimit.h — the router's request rate limits (docs/security.md, "Limits"): one
 * token-bucket table (lib/ratelim.h) per kind of limit, each kind a row of RLIMIT_KINDS.
 * Not thread-safe; owned by the router's loop. */
#ifndef LAUREL_RLIMIT_H
#define LAUREL_RLIMIT_H

#include <stddef.h>
#include <stdint.h>

/* X(enum, metric label, default rate per second): the burst defaults to one second's worth.
 * The defaults are far above what `laurel bench` and the chaos suite send from one loopback
 * address (docs/benchmarks.md: ~30 000 reads/s, ~13 000 writes/s at most). */
#define RLIMIT_KINDS(X)                                                                            \
    X(RLIMIT_KEY_WRITES, "key_writes", 100000)                                                     \
    X(RLIMIT_ADDR_WRITES, "addr_writes", 50000)                                                    \
    X(RLIMIT_ADDR_READS, "addr_reads", 100000)

enum rlimit_kind {
#define RLIMIT__ENUM(e, label, def) e,
    RLIMIT_KINDS(RLIMIT__ENUM)
#undef RLIMIT__ENUM
        RLIMIT_N
};

/* A rate of RLIMIT_UNLIMITED turns a kind off (`--limit-... 0` on the command line). */
#define RLIMIT_UNLIMITED UINT32_MAX
/* Buckets each kind's table holds by default (24 bytes each). */
#define RLIMIT_DEFAULT_SLOTS 65536

struct rlimit_config {
    uint32_t rate[RLIMIT_N];  /* per second; 0: the kind's default; RLIMIT_UNLIMITED: none */
    uint32_t burst[RLIMIT_N]; /* 0: one second's worth of the rate */
    uint32_t slots;           /* buckets per kind; 0: RLIMIT_DEFAULT_SLOTS */
};

struct rlimit; /* Opaque. */

/** Tables for @cfg (copied). @return 0 and *@out, or LR_ENOMEM. */
int rlimit_new(const struct rlimit_config *cfg, struct rlimit **out);

void rlimit_free(struct rlimit *rl);

/**
 * Take a token of kind @kind for @key (@len bytes, borrowed for the call) at @now_us (a
 * monotonic clock). @return 0 when granted; else the whole seconds until a token is
 * available (at least 1), for Retry-After.
 */
unsigned rlimit_take(struct rlimit *rl, enum rlimit_kind kind, const void *key, size_t len,
                     uint64_t now_us);

/** The metric label of @kind. */
const char *rlimit_label(enum rlimit_kind kind);

struct rlimit_stats {
    uint64_t limited[RLIMIT_N];   /* requests refused */
    uint64_t evictions[RLIMIT_N]; /* buckets given to another key */
    uint64_t used[RLIMIT_N];      /* gauge: buckets in use */
    uint32_t rate[RLIMIT_N];      /* the rate in force (0: unlimited) */
};

void rlimit_stats_get(const struct rlimit *rl, struct rlimit_stats *st);

#endif
