/* router/rmodel.h — the router's read model (docs/consistency.md): for each board it holds,
 * one exact ordered index of every region's alltime entries, kept from the regions'
 * committed-event streams, so a global top page, rank, around-me window or friends view is one
 * lookup in this process instead of a round to every region.
 *
 * Seeding: a board is read page by page from each region's leader while its events are held;
 * then, once the streams have reached the regions' commit points, the held events are applied
 * on top in order. Every change sets a player's entry to the key the event names (the events
 * carry the whole key), so replaying an event the pages already hold is harmless.
 *
 * Linearizable reads: rmodel_wait runs one ReadIndex round per region per loop turn for every
 * read that arrived before it (`readindex` to each replica: a majority in the leader's term,
 * and the leader's commit index), then waits until that region's stream has applied up to the
 * index. Everything acknowledged before the read arrived is then in the model.
 *
 * Not thread-safe: everything runs on the router's uv loop. */
#ifndef LAUREL_RMODEL_H
#define LAUREL_RMODEL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "evstream.h"
#include "router.h"
#include "upstream.h"

#define RMODEL_BOARDS_MAX 64 /* boards one router holds at most */

struct rmodel;       /* Opaque. */
struct rmodel_board; /* Opaque: one held board. */

struct rmodel_config {
    /* Which boards to hold: @all (every board read, up to RMODEL_BOARDS_MAX, from its first
     * read on), else the @n ids of @boards (borrowed until rmodel_new returns); none when 0. */
    int all;
    const char *const *boards;
    unsigned n;
    unsigned timeout_ms; /* deadline of a wait, and of each upstream call */
};

/**
 * A read model over the @n regions of @up (borrowed: called until rmodel_close, which must
 * come before the upstreams close). Events come in through rmodel_stream.
 * @return 0 and *@out; LR_EINVAL (a bad id in @cfg->boards); LR_ENOMEM.
 */
int rmodel_new(uv_loop_t *loop, struct upstream *const *up, unsigned n,
               const struct rmodel_config *cfg, struct rmodel **out);

/**
 * Hold one more region, served by @u (borrowed as rmodel_new's), as the last index: a region
 * the cluster gained while the router ran. Its stream comes in through rmodel_stream with that
 * index. Every held board is seeded again over all the regions (reads of a board go to the
 * regions until it is ready again). @return 0, or LR_EINVAL (closing, or ROUTER_MAX_REGIONS).
 */
int rmodel_add_region(struct rmodel *m, struct upstream *u);

/** Fail every wait (LR_EUNAVAILABLE), stop calling the upstreams, and free @m once the calls
 * in flight have answered: then @done (may be NULL) fires. */
void rmodel_close(struct rmodel *m, void (*done)(void *data), void *data);

/** One delivery of region @region's live stream (the gateway's followers hand every one). */
void rmodel_stream(struct rmodel *m, unsigned region, const struct evstream_batch *b);

/** A read waiting for the model to hold every write acknowledged before it arrived. Owned by
 * the caller, who must keep it in place until its callback fires. */
typedef void (*rmodel_wait_cb)(void *data, int rv);
struct rmodel_wait {
    struct rmodel_wait *next[2]; /* private */
    rmodel_wait_cb cb;
    void *data;
    uint64_t deadline;                   /* private */
    uint64_t round[ROUTER_MAX_REGIONS];  /* private: per region, the round it joined */
    uint64_t target[ROUTER_MAX_REGIONS]; /* private: per region, the index to reach (0: not
                                            known yet) */
    uint32_t todo;                       /* private: regions still to reach */
};

/**
 * Wait until every region in @regions (a bit per region index) has applied, in this model,
 * everything its leader had committed when this call was made. @cb fires once, never from
 * inside this call: rv 0; LR_EUNAVAILABLE (no leader confirmed within the timeout, or the model
 * is closing). @return 0, or LR_EINVAL (@regions empty or unknown).
 */
int rmodel_wait(struct rmodel *m, struct rmodel_wait *w, uint32_t regions, rmodel_wait_cb cb,
                void *data);

/**
 * The board @id if this model holds it and it is seeded, else NULL (read the regions instead).
 * A board the model may hold but does not yet starts seeding here.
 */
struct rmodel_board *rmodel_board(struct rmodel *m, const char *id, size_t len);

/**
 * GET /top of a held board, global scope, alltime window: @limit entries after @cursor (NUL-
 * terminated; empty: the first page), as the JSON body regions-and-merge would give. The body
 * is borrowed: valid until the next call into @m. First pages are kept encoded until a change
 * enters them. @return 0 and *@body, *@len; LR_EINVAL (bad cursor, sentence in @err);
 * LR_ENOTFOUND (a name or metadata the model does not hold: read the regions instead);
 * LR_ENOMEM.
 */
int rmodel_top(struct rmodel *m, struct rmodel_board *b, uint32_t limit, const char *cursor,
               const char **body, size_t *len, char *err, size_t errcap);

/**
 * GET /players/{id} of a held board (global scope, alltime): rank, key, total, percentile and
 * the @around entries each side, as the JSON body the regions would give (*@body, *@len;
 * borrowed until the next call into @m).
 * @return 0; LR_ENOTFOUND with a sentence in @err when the player has no entry; LR_EUNAVAILABLE
 * when an entry's name or metadata is not held (read the regions instead); LR_ENOMEM.
 */
int rmodel_rank(struct rmodel *m, struct rmodel_board *b, const char *player, uint32_t around,
                const char **body, size_t *len, char *err, size_t errcap);

#define RMODEL_FRIENDS_MAX 100

/**
 * GET /players?ids= of a held board (global scope, alltime): the players of @ids (@n ids,
 * each NUL-terminated one after the other, at most RMODEL_FRIENDS_MAX) that have an entry,
 * in rank order with their ranks, and the total, as the JSON body (*@body, *@len; borrowed
 * until the next call into @m).
 * @return 0; LR_EUNAVAILABLE when an entry's name or metadata is not held (read the regions
 * instead); LR_ENOMEM.
 */
int rmodel_friends(struct rmodel *m, struct rmodel_board *b, const char *ids, uint32_t n,
                   const char **body, size_t *len);

/** Counters for /metrics and the bench. */
struct rmodel_stats {
    unsigned boards;    /* held and seeded */
    uint64_t entries;   /* entries of the held boards */
    size_t index_bytes; /* the ordered indexes' nodes */
    size_t total_bytes; /* everything the model holds: indexes, keys, players, details */
    uint64_t rounds;    /* ReadIndex rounds started */
    uint64_t waits;     /* reads that waited */
    uint64_t page_hits; /* top pages served already encoded */
    uint64_t seeds;     /* board seeds started */
};
void rmodel_stats_get(const struct rmodel *m, struct rmodel_stats *st);

#endif
