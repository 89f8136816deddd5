/* shard/rankkey.h — the one total order of a board (API.md, "Order within a board";
 * docs/ordering.md), shared by the rank index of every replica, the router's merges of the
 * regions' answers and the gateway's board tops. A change to the tie rule is made here, once:
 * if two of those disagreed, global tops would silently differ from the replicas' ranks.
 *
 * A key folds the board's order in (a desc board stores -score and -subscore), so keys always
 * sort ascending and one comparator serves asc and desc boards:
 *   1. a (order-adjusted score), 2. b (order-adjusted subscore), 3. t (updated_ms, earlier
 *   first), 4. the player id, bytewise ascending, a shorter prefix first.
 * Scores are bounded by 2^53-1 (cmd.c refuses more), so the negation is exact. */
#ifndef LAUREL_RANKKEY_H
#define LAUREL_RANKKEY_H

#include <stddef.h>
#include <stdint.h>

/* Region-local player numbers are below this; a probe built from another region's key uses
 * RANKKEY_FOREIGN and names its player by id string instead. */
#define RANKKEY_FOREIGN UINT32_MAX

/**
 * One key of the total order.
 *
 * Keys stored in a rank index have @pid < RANKKEY_FOREIGN and @id == NULL; their id string
 * comes from the index's name resolver. A probe (count_before, seek), or a key merged outside
 * a replica, carries @pid == RANKKEY_FOREIGN with @id/@idlen naming the player.
 */
struct rankkey {
    int64_t a;      /* board-order-adjusted score */
    int64_t b;      /* board-order-adjusted subscore */
    int64_t t;      /* updated time, ms since the epoch: earlier first */
    uint32_t pid;   /* region-local player number, or RANKKEY_FOREIGN */
    uint32_t idlen; /* length of @id when @pid == RANKKEY_FOREIGN */
    const char *id; /* borrowed for the duration of the call; NULL for stored keys */
};

/** The key of a (score, subscore, updated_ms) entry on a board of order @desc (1: desc). */
static inline void rankkey_fold(struct rankkey *k, int desc, int64_t score, int64_t subscore,
                                int64_t updated_ms)
{
    k->a = desc ? -score : score;
    k->b = desc ? -subscore : subscore;
    k->t = updated_ms;
}

/** The score and subscore a key stands for on a board of order @desc (rankkey_fold undone). */
static inline int64_t rankkey_score(const struct rankkey *k, int desc)
{
    return desc ? -k->a : k->a;
}
static inline int64_t rankkey_subscore(const struct rankkey *k, int desc)
{
    return desc ? -k->b : k->b;
}

/**
 * Steps 1 to 3 of the order on raw fields (the rank index compares its leaves' arrays without
 * building keys). @return <0, 0 (a tie: the ids decide), >0.
 */
static inline int rankkey_cmp3(int64_t xa, int64_t xb, int64_t xt, int64_t ya, int64_t yb,
                               int64_t yt)
{
    if (xa != ya) {
        return xa < ya ? -1 : 1;
    }
    if (xb != yb) {
        return xb < yb ? -1 : 1;
    }
    if (xt != yt) {
        return xt < yt ? -1 : 1;
    }
    return 0;
}

/** Step 4: player ids, bytewise, a shorter prefix first. @return -1, 0, 1. */
int rankkey_cmp_id(const char *x, size_t xlen, const char *y, size_t ylen);

/**
 * The whole order for keys whose ids are known: steps 1 to 3 on @x and @y, then @xid (of
 * @x->idlen bytes) against @yid (@y->idlen bytes). The ids are passed apart so that a caller
 * whose keys live in an array that moves (qsort, realloc) can name the id's current place.
 * @return -1, 0, 1.
 */
int rankkey_cmp(const struct rankkey *x, const char *xid, const struct rankkey *y, const char *yid);

#endif
