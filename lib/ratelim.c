/* lib/ratelim.c — token buckets in a fixed-size, set-associative table (ratelim.h).
 *
 * A bucket is its level in micro-tokens and the time it was last filled up to. Refill is
 * lazy: on each take, the time since @last times the rate (tokens/s = micro-tokens/µs) is
 * added, capped at the burst. Integers only, so a rate of 100 000/s loses nothing to
 * rounding and a rate of 1/s waits exactly a second.
 *
 * Keys are stored as a 64-bit hash (seeded per table), not as bytes: the table stays a flat
 * array of 24-byte entries, and two keys that collide only share a bucket (they are limited
 * together), which at 2^-64 per pair is not worth the bytes. A key maps to one set of
 * RATELIM_WAYS entries; a new key takes a free entry of its set, else the one touched longest
 * ago (LRU within the set). hash 0 marks a free entry, so real hashes have their low bit set.
 *
 * Invariant: 0 <= level <= burst * 1e6 for every entry in use. */
#include "ratelim.h"

#include <stdlib.h>

#include "err.h"
#include "hash.h"

#define RATELIM__MICRO 1000000ULL

struct ratelim__entry {
    uint64_t hash;    /* 0: free */
    uint64_t last_us; /* when level was last brought up to date; also the LRU stamp */
    uint64_t level;   /* micro-tokens */
};

struct ratelim {
    struct ratelim_config cfg;
    uint64_t cap;  /* burst in micro-tokens */
    uint64_t seed; /* of the key hash */
    size_t nsets;  /* slots / RATELIM_WAYS */
    struct ratelim_stats st;
    struct ratelim__entry *e; /* nsets * RATELIM_WAYS */
};

int ratelim_new(const struct ratelim_config *cfg, struct ratelim **out)
{
    if (cfg->slots == 0) {
        return LR_EINVAL;
    }
    struct ratelim *rl = calloc(1, sizeof *rl);
    if (rl == NULL) {
        return LR_ENOMEM;
    }
    rl->cfg = *cfg;
    if (rl->cfg.burst == 0) {
        rl->cfg.burst = rl->cfg.rate;
    }
    rl->cap = (uint64_t)rl->cfg.burst * RATELIM__MICRO;
    rl->nsets = (cfg->slots + RATELIM_WAYS - 1) / RATELIM_WAYS;
    rl->st.slots = rl->nsets * RATELIM_WAYS;
    /* Not secret, only different per table: the table's address is enough to keep two
     * routers' collisions apart. */
    rl->seed = hash_mix(0x6c617572656cULL, (uint64_t)(uintptr_t)rl);
    rl->e = calloc(rl->st.slots, sizeof *rl->e);
    if (rl->e == NULL) {
        free(rl);
        return LR_ENOMEM;
    }
    *out = rl;
    return 0;
}

void ratelim_free(struct ratelim *rl)
{
    if (rl != NULL) {
        free(rl->e);
        free(rl);
    }
}

/* The entry of @h in its set: found, else a free one, else the least recently used (evicted).
 * A fresh entry has a full bucket as of @now_us. */
static struct ratelim__entry *ratelim__find(struct ratelim *rl, uint64_t h, uint64_t now_us)
{
    struct ratelim__entry *set = &rl->e[(h >> 1) % rl->nsets * RATELIM_WAYS];
    struct ratelim__entry *victim = &set[0];
    for (unsigned i = 0; i < RATELIM_WAYS; i++) {
        if (set[i].hash == h) {
            return &set[i];
        }
        if (victim->hash != 0 && (set[i].hash == 0 || set[i].last_us < victim->last_us)) {
            victim = &set[i];
        }
    }
    if (victim->hash != 0) {
        rl->st.evictions++;
    } else {
        rl->st.used++;
    }
    victim->hash = h;
    victim->last_us = now_us;
    victim->level = rl->cap;
    return victim;
}

uint64_t ratelim_take(struct ratelim *rl, const void *key, size_t len, uint64_t now_us)
{
    if (rl->cfg.rate == 0) {
        return 0;
    }
    uint64_t h = hash_bytes(key, len, rl->seed) | 1;
    struct ratelim__entry *b = ratelim__find(rl, h, now_us);
    if (now_us > b->last_us) {
        /* Cap the interval first so the product cannot overflow: past the time to fill the
         * bucket from empty, more time adds nothing. */
        uint64_t dt = now_us - b->last_us, full_us = rl->cap / rl->cfg.rate + 1;
        uint64_t add = (dt < full_us ? dt : full_us) * rl->cfg.rate;
        b->level = rl->cap - b->level <= add ? rl->cap : b->level + add;
    }
    b->last_us = now_us; /* also when it went back: the interval is never counted twice */
    if (b->level >= RATELIM__MICRO) {
        b->level -= RATELIM__MICRO;
        return 0;
    }
    rl->st.limited++;
    uint64_t need = RATELIM__MICRO - b->level;
    return (need + rl->cfg.rate - 1) / rl->cfg.rate;
}

void ratelim_stats_get(const struct ratelim *rl, struct ratelim_stats *st)
{
    *st = rl->st;
}
