/* router/catsync.h — the catalog carrier: brings each region's catalog up to the metadata
 * group's (docs/global-state.md, "Catalog changes").
 *
 * Every router runs one, and none holds state another would miss: what has been decided lives
 * in meta (its catalog log, each put versioned by meta's log index) and what a region has
 * applied lives in the region (its catalog mark, shard/cmd.h CATALOG_MARK). A pass over one
 * region reads the region's mark k, reads meta's changes after k (a page never splits one
 * version), and submits them to the region with the mark of the page's last version, all in
 * one submit, so one raft entry: either the whole page and its mark apply, or nothing does.
 * Pages from two carriers may overlap; a region applies a put only if its version is at least
 * the stored one, so re-applying is harmless, and a page always starts right after a mark, so
 * the mark never passes a version that was not applied. A region that was down, or a router
 * that stopped, leaves nothing to repair: the next pass of any router resumes from the mark.
 *
 * Passes run every CATSYNC_PERIOD_MS per region, and at once on catsync_kick (after a put). */
#ifndef LAUREL_CATSYNC_H
#define LAUREL_CATSYNC_H

#include <uv.h>

#include "upstream.h"

#define CATSYNC_PERIOD_MS 1000
#define CATSYNC_PAGE 200 /* changes per submit */

struct logger;
struct catsync; /* Opaque. */

/**
 * Start carrying meta's catalog (@meta) to the @n regions @up (borrowed until catsync_close's
 * @done fires). @log is borrowed likewise. @return 0 and *@out, or LR_ENOMEM.
 */
int catsync_new(uv_loop_t *loop, struct upstream *meta, struct upstream *const *up, unsigned n,
                unsigned timeout_ms, struct logger *log, struct catsync **out);

/** Run a pass over every region as soon as possible (a pass under way runs once more). */
void catsync_kick(struct catsync *cs);

/** Carry the catalog to one more region, @u (borrowed as catsync_new's @up), starting now: a
 * region the cluster gained while the router ran. @return 0, or LR_EINVAL (closing, or
 * ROUTER_MAX_REGIONS regions already). */
int catsync_add_region(struct catsync *cs, struct upstream *u);

/** Passes completed and changes submitted since start, for /metrics. */
void catsync_counts(const struct catsync *cs, uint64_t *passes, uint64_t *changes);

/** Stop; @done fires once the timer has closed and no call is in flight (run the loop). */
void catsync_close(struct catsync *cs, void (*done)(void *data), void *data);

#endif
