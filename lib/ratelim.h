/* lib/ratelim.h — token buckets in a fixed-size table: one bucket per key (an API key, a
 * client address), for the router's rate limits (docs/security.md, "Limits").
 *
 * Pure: the caller passes the time, so tests drive it and nothing reads a clock. The table
 * never grows: a flood of new keys evicts the least recently used bucket of the same set, so
 * memory is bounded whatever clients send. An evicted key starts again with a full bucket,
 * which is the price of the bound (documented in docs/security.md). Not thread-safe; owned
 * by one loop. */
#ifndef LAUREL_RATELIM_H
#define LAUREL_RATELIM_H

#include <stddef.h>
#include <stdint.h>

struct ratelim_config {
    uint32_t rate;  /* tokens added per second; 0: unlimited (ratelim_take always grants) */
    uint32_t burst; /* tokens a bucket holds at most; 0: rate (one second's worth) */
    size_t slots;   /* buckets the table holds, rounded up to a multiple of RATELIM_WAYS */
};

/* Buckets per set: a key may live in one of these, and eviction picks among them. */
#define RATELIM_WAYS 8

struct ratelim; /* Opaque. */

/**
 * A table of @cfg->slots buckets (@cfg is copied). @return 0 and *@out, or LR_EINVAL when
 * slots is 0, or LR_ENOMEM.
 */
int ratelim_new(const struct ratelim_config *cfg, struct ratelim **out);

/** Free @rl (NULL is a no-op). */
void ratelim_free(struct ratelim *rl);

/**
 * Take one token from @key's bucket (@len bytes, borrowed for the call) at @now_us, any
 * monotonic microsecond clock. A key not in the table gets a full bucket first, evicting the
 * least recently used bucket of its set when the set is full.
 *
 * Time going backwards (a caller's clock stepped back) adds no tokens: the bucket's clock
 * moves back with it, so the tokens of the interval are never counted twice.
 *
 * @return 0 when a token was taken; else the microseconds until one will be available
 * (at least 1), and nothing is taken.
 */
uint64_t ratelim_take(struct ratelim *rl, const void *key, size_t len, uint64_t now_us);

struct ratelim_stats {
    size_t slots;       /* the table's size */
    size_t used;        /* buckets in use */
    uint64_t evictions; /* buckets given to another key while theirs was in use */
    uint64_t limited;   /* ratelim_take calls that granted nothing */
};

void ratelim_stats_get(const struct ratelim *rl, struct ratelim_stats *st);

#endif
