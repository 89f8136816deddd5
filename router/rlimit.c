/* router/rlimit.c — the router's request rate limits (rlimit.h): a table of buckets per kind,
 * sized at start and never grown, so a flood of client addresses costs no memory. */
#include "rlimit.h"

#include <assert.h>
#include <stdlib.h>

#include "../lib/err.h"
#include "../lib/ratelim.h"

static const struct {
    const char *label;
    uint32_t rate;
} rlimit__kinds[RLIMIT_N] = {
#define RLIMIT__ROW(e, label, def) [e] = {label, def},
    RLIMIT_KINDS(RLIMIT__ROW)
#undef RLIMIT__ROW
};

struct rlimit {
    struct ratelim *t[RLIMIT_N];
    uint32_t rate[RLIMIT_N]; /* in force; 0: unlimited */
};

int rlimit_new(const struct rlimit_config *cfg, struct rlimit **out)
{
    struct rlimit *rl = calloc(1, sizeof *rl);
    int rv = LR_ENOMEM;
    if (rl == NULL) {
        return LR_ENOMEM;
    }
    for (int k = 0; k < RLIMIT_N; k++) {
        uint32_t rate = cfg->rate[k] ? cfg->rate[k] : rlimit__kinds[k].rate;
        struct ratelim_config rc = {
            .rate = rate == RLIMIT_UNLIMITED ? 0 : rate,
            .burst = cfg->burst[k],
            .slots = cfg->slots ? cfg->slots : RLIMIT_DEFAULT_SLOTS,
        };
        /* An unlimited kind stores nothing: its table is the smallest there is. */
        if (rc.rate == 0) {
            rc.slots = 1;
        }
        rl->rate[k] = rc.rate;
        if ((rv = ratelim_new(&rc, &rl->t[k])) != 0) {
            goto err_after_alloc;
        }
    }
    *out = rl;
    return 0;

err_after_alloc:
    rlimit_free(rl); /* frees the tables made so far */
    assert(rv != 0);
    return rv;
}

void rlimit_free(struct rlimit *rl)
{
    if (rl == NULL) {
        return;
    }
    for (int k = 0; k < RLIMIT_N; k++) {
        ratelim_free(rl->t[k]);
    }
    free(rl);
}

unsigned rlimit_take(struct rlimit *rl, enum rlimit_kind kind, const void *key, size_t len,
                     uint64_t now_us)
{
    uint64_t wait_us = ratelim_take(rl->t[kind], key, len, now_us);
    if (wait_us == 0) {
        return 0;
    }
    /* Rates are whole tokens a second, so the wait is a second at most today; rounded up
     * all the same, so a client that waits Retry-After finds a token. */
    return (unsigned)((wait_us + 999999) / 1000000);
}

const char *rlimit_label(enum rlimit_kind kind)
{
    return rlimit__kinds[kind].label;
}

void rlimit_stats_get(const struct rlimit *rl, struct rlimit_stats *st)
{
    for (int k = 0; k < RLIMIT_N; k++) {
        struct ratelim_stats s;
        ratelim_stats_get(rl->t[k], &s);
        st->limited[k] = s.limited;
        st->evictions[k] = s.evictions;
        st->used[k] = s.used;
        st->rate[k] = rl->rate[k];
    }
}
