/* shard/shard.h — the deterministic state machine of one region.
 *
 * A shard applies raft entries (cmd.h) to its LMDB environment and keeps, in memory, an
 * exact rank index per board, window, period and scope (past periods beyond a board's
 * keep_periods are evicted as writes arrive: evict.c). Apply reads no clock and no random
 * source: the proposer stamped the time into each command. Replicas that apply the same
 * entries hold the same records, answer the same queries and report the same digest.
 *
 * Group commit: shard_apply opens a write transaction on its first call and keeps it open;
 * shard_commit writes the applied index and digest with the effects and commits, so one fsync
 * (or none, in fast mode) serves many entries. docs/durability.md says what is durable when.
 *
 * Results and events are msgpack maps whose keys are API.md's JSON field names, so a router
 * turns them into JSON without knowing each endpoint. Not thread-safe. */
#ifndef LAUREL_SHARD_H
#define LAUREL_SHARD_H

#include <lmdb.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "cmd.h"
#include "../lib/err.h"
#include "rankidx.h"
#include "store.h"
#include "timefmt.h"

struct shard; /* Opaque. */

struct shard_config {
    const char *dir;    /* LMDB directory, created if missing */
    const char *region; /* this region's id; checked against the stored one */
    uint64_t map_size;  /* initial LMDB map size (0: 64 MiB); grown on demand */
    int fast;           /* see store_config.fast */
};

/**
 * Open the environment and rebuild every rank index from it.
 * @return 0 and *@out, or LR_E* with a sentence in @errmsg (LR_ERRMSG_SIZE bytes).
 */
int shard_open(const struct shard_config *cfg, struct shard **out, char *errmsg);

/** Abort any open group and close. NULL is a no-op. */
void shard_close(struct shard *s);

/** Receives what apply produces; all pointers are borrowed for the duration of the call. */
struct shard_sink {
    void *data;
    /* Result of command @i of the entry: an HTTP status and its msgpack body. @replayed is 1
     * when an idempotency key returned a stored response. Results reflect state that is not
     * yet committed to LMDB: hold them until shard_commit returns 0. */
    void (*result)(void *data, uint32_t i, int status, const char *body, size_t len, int replayed);
    /* A notification (msgpack map with "type", ... "index"), in apply order. */
    void (*event)(void *data, const char *body, size_t len);
};

/**
 * Apply the raft entry @buf of log index @index inside the open group (opening one if
 * needed). Entries at or below the applied index are skipped (replay after restart). A
 * malformed entry or command applies as a no-op: the index advances and each command that
 * could be read gets an error result. @sink may be NULL.
 * @return 0; or a fatal LR_E* (LR_EMAPFULL, LR_EIO, LR_ENOMEM, LR_ECORRUPT) after which the
 * caller must shard_abort (and may store_grow-and-retry on LR_EMAPFULL via shard_grow).
 */
int shard_apply(struct shard *s, uint64_t index, const void *buf, size_t len,
                const struct shard_sink *sink);

/** Commit the open group (no-op without one). On error the group is aborted as by
 * shard_abort. @return 0 or LR_E*. */
int shard_commit(struct shard *s);

/** Drop the open group and rebuild memory from the committed state. @return 0 or LR_E*. */
int shard_abort(struct shard *s);

/* The committed-event log: the events of each applied entry, stored under its raft index in
 * the same transaction as the entry's effects, so a subscriber can resume from any index the
 * log still holds. Retention is a fixed number of indexes (the same on every replica). */
#define SHARD_EVENTS_RETAIN 20000

/**
 * Call @fn for each entry at index >= @from that produced events, in index order, with the
 * events as @n msgpack maps back to back in @buf (borrowed for the call), until @fn returns
 * nonzero or @max entries were delivered. *@first is set to the lowest index still held (0 if
 * none). @return 0, or LR_E*.
 */
int shard_events_read(struct shard *s, uint64_t from, uint32_t max,
                      int (*fn)(void *data, uint64_t index, uint32_t n, const char *buf,
                                size_t len),
                      void *data, uint64_t *first);

/** Double the LMDB map (no group open). */
int shard_grow(struct shard *s);

/** Last applied index (including an open group). */
uint64_t shard_applied_index(const struct shard *s);

/** The metadata group's catalog version this region has applied every change through
 * (CMD_CATALOG_MARK; 0 before the first), including an open group. */
uint64_t shard_catalog_through(const struct shard *s);

/**
 * The highest time stamp (ms) of any command applied so far, including an open group; 0 before
 * the first. Persisted with the applied index, so it survives a restart and travels in
 * snapshots. A leader stamps no command below it (docs/durability.md, "Time stamps"); apply
 * itself never compares a command's stamp with it.
 */
int64_t shard_clock_ms(const struct shard *s);

/**
 * Idempotency keys held (records of the expiry index, including an open group): live keys
 * and expired ones that apply has not purged yet (docs/data-layout.md, "Idempotency keys").
 * For tests and diagnostics. @return 0 and *@out, or LR_E*.
 */
int shard_idem_count(struct shard *s, uint64_t *out);

/** Days the audit trail is kept (CMD_AUDIT_DAYS; CMD_AUDIT_DAYS_MIN until one is applied),
 * including an open group. */
uint32_t shard_audit_days(const struct shard *s);

/**
 * Audit records held (including an open group): those within the retention and expired ones
 * apply has not purged yet. For tests and diagnostics. @return 0 and *@out, or LR_E*.
 */
int shard_audit_count(struct shard *s, uint64_t *out);

/** Running state digest (including an open group). */
uint64_t shard_digest(const struct shard *s);

/** Recompute the digest from every record (O(n)). */
int shard_digest_scan(struct shard *s, uint64_t *out);

/**
 * Write a compact, consistent copy of the committed environment to @fd (a snapshot: open the
 * copy's directory as a shard to restore it). No group may be open. @return 0 or LR_E*.
 */
int shard_copy(struct shard *s, int fd);

/**
 * The shard's LMDB environment, for a copy made by another thread (raft/fsm.c's snapshot):
 * LMDB lets a reader copy it while the owner writes. Borrowed: valid until shard_close or a
 * map growth (shard_grow remaps it), which the caller must keep from overlapping the copy.
 */
MDB_env *shard_env(struct shard *s);

/** What shard_copy would write now, in bytes (store_used_bytes). @return 0 or LR_E*. */
int shard_state_bytes(struct shard *s, uint64_t *out);

/** The region this shard serves. */
const char *shard_region(const struct shard *s);

/** Last error sentence. */
const char *shard_errmsg(const struct shard *s);

/** The LMDB environment's use of the disk (store_usage_get): for admission control. */
void shard_usage(struct shard *s, struct store_usage *out);

/** Heap bytes held by rank indexes and the player-name table. */
size_t shard_memory(const struct shard *s);

/**
 * The periods of board @board's window @w that have a ranking in memory, ascending: the first
 * @cap of them into @periods, with their region entry counts into @entries (either may be NULL
 * when @cap is 0). Past periods beyond the board's keep_periods leave as apply evicts them
 * (docs/data-layout.md, "Eviction of past periods"). For tests and diagnostics.
 * @return how many periods there are (possibly more than @cap); 0 for an unknown board.
 */
size_t shard_periods(struct shard *s, struct lr_str board, enum timefmt_window w, int64_t *periods,
                     uint64_t *entries, size_t cap);

/* ---- queries --------------------------------------------------------------------------- */

#define SHARD_QUERIES(X)                                                                           \
    X(PLAYER_GET, player_get)                                                                      \
    X(GAME_GET, game_get)                                                                          \
    X(ACH_LIST, ach_list)                                                                          \
    X(BOARD_GET, board_get)                                                                        \
    X(TOP, top)                                                                                    \
    X(RANK, rank)                                                                                  \
    X(FRIENDS, friends)                                                                            \
    X(COUNT_BEFORE, count_before)                                                                  \
    X(HISTORY, history)                                                                            \
    X(DASHBOARD, dashboard)                                                                        \
    X(STATS, stats)                                                                                \
    X(NEAR, near)                                                                                  \
    X(LOCATE, locate)                                                                              \
    X(REWARDS, rewards)                                                                            \
    X(TOURNAMENT_GET, tournament_get) /* board_id names the tournament (its board's id) */         \
    X(AUDIT, audit)                   /* player_id's audit trail, newest first, by cursor */

enum shard_qtype {
#define SHARD__QENUM(NAME, name) SHARD_Q_##NAME,
    SHARD_QUERIES(SHARD__QENUM)
#undef SHARD__QENUM
        SHARD_Q__END
};

#define SHARD_FRIENDS_MAX 100
#define SHARD_PAGE_MAX 1000

/** A read. Strings are borrowed for the call. Unused fields are ignored. */
struct shard_query {
    enum shard_qtype type;
    struct lr_str player_id, game_id, board_id, achievement_id;
    /* Boards: window, period (has_period 0 = the current one at @now_ms), scope (empty guild =
     * the region), page limit and opaque cursor, around N. */
    enum timefmt_window window;
    int has_period;
    int64_t period;
    struct lr_str guild;
    uint32_t limit;
    struct lr_str cursor;
    uint32_t around;
    /* FRIENDS, LOCATE: ids; COUNT_BEFORE: probes (score, subscore, updated_ms, player id);
     * NEAR: one probe and @around (the entries of this region next to a key that may belong
     * to another region's player: how a router builds a global around-me window). */
    struct lr_str ids[SHARD_FRIENDS_MAX];
    uint32_t nids;
    struct {
        int64_t score, subscore, updated_ms;
        struct lr_str player_id;
    } probes[SHARD_FRIENDS_MAX];
    uint32_t nprobes;
    uint32_t days;  /* STATS: 1..90 */
    int pending;    /* REWARDS: unclaimed rewards only */
    int admin;      /* ACH_LIST: show hidden achievements' names */
    int64_t now_ms; /* the caller's clock: current periods, stats' "today" */
};

/**
 * Answer @q into @out (appended as one msgpack map, API.md's fields).
 * @return 0; or LR_ENOTFOUND / LR_EINVAL / ... with a sentence in @errmsg.
 */
int shard_query(struct shard *s, const struct shard_query *q, msgpack_sbuffer *out, char *errmsg);

#endif
