/* router/closer.h — the cycle closer: closes each ended cycle of each board with a
 * reset_period_s exactly once for the whole cluster (API.md, "Cycles"; docs/global-state.md,
 * "Cycle closes").
 *
 * Every router runs one; the metadata group makes a second close of a cycle a no-op, and every
 * step below can be repeated by any closer, so a router killed at any point leaves work that
 * another router, or the same one restarted, finishes. For cycle n of board b, ending at B:
 *   1. meta's close record of (b, n): if there is one, go to 5;
 *   2. the cut: a no-op write to every region, then every region's applied stamp must be at
 *      least B (a stamp never goes backwards, so no later write can land in cycle n);
 *   3. every region's top snapshot_top of the cycle window at period n, merged exactly under
 *      shard/rankkey.h, and the rewards of the board's rank bands: the record;
 *   4. close(b, n, record) to meta: the first record of (b, n) in meta's log wins, and the
 *      answer is that one, whoever wrote it;
 *   5. the grants of the record to the rewarded players' regions (REWARD_GRANT: once per
 *      player, board and cycle, with its reward.granted event); then `cycle.closed` to this
 *      router's WebSocket clients of the board, for cycles that ended while it ran.
 *
 * The boards come from meta's catalog log, read incrementally (a cache rebuilt at start). */
#ifndef LAUREL_CLOSER_H
#define LAUREL_CLOSER_H

#include <stdint.h>
#include <uv.h>

#include "gateway.h"
#include "upstream.h"

#define CLOSER_TICK_MS 100
#define CLOSER_LOOKBACK 4     /* ended cycles of a board a closer checks at start */
#define CLOSER_MAX_BOARDS 256 /* boards with cycles a closer follows */

struct logger;
struct closer; /* Opaque. */

/**
 * Start closing cycles. @meta, the @n regions @up (named @region) and @gw are borrowed until
 * closer_close's @done fires; @log likewise. @return 0 and *@out, or LR_ENOMEM.
 */
int closer_new(uv_loop_t *loop, struct upstream *meta, struct upstream *const *up,
               const char (*region)[65], unsigned n, struct gateway *gw, unsigned timeout_ms,
               struct logger *log, struct closer **out);

/** Close cycles over one more region, @u named @region (borrowed as closer_new's; the name is
 * copied), from the next close on: a close under way keeps the regions it started with.
 * @return 0, or LR_EINVAL (closing, or ROUTER_MAX_REGIONS regions already). */
int closer_add_region(struct closer *c, struct upstream *u, const char *region);

/** Closes this closer recorded or found, and grants it delivered, since start. */
void closer_counts(const struct closer *c, uint64_t *closes, uint64_t *grants);

/** Stop; @done fires once the timer has closed and no call is in flight (run the loop). */
void closer_close(struct closer *c, void (*done)(void *data), void *data);

#endif
