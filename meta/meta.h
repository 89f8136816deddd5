/* meta/meta.h — the deterministic state machine of the metadata group (docs/global-state.md).
 *
 * The state that belongs to no one region: the player directory (player -> region, first claim
 * wins), the catalog (every put versioned by meta's raft index, and a log of puts in version
 * order that regions read "after version v"), tournament admissions under a cap, and close
 * records of board cycles and tournaments (first close wins), and the list of regions with
 * their replicas' RPC addresses (docs/global-state.md, "Adding a region"). Apply reads no clock and
 * no random source: the proposer stamped the time into each command (mcmd.h). Replicas that apply
 * the same entries hold the same records and report the same digest.
 *
 * Group commit as the shard's: meta_apply opens a write transaction on its first call and
 * keeps it open; meta_commit writes the applied index with the effects and commits.
 *
 * Results are msgpack maps whose keys are API.md's JSON field names. Not thread-safe; links
 * neither libraft nor libuv (raft/fsm.c will drive it, step 1 of the plan). */
#ifndef LAUREL_META_H
#define LAUREL_META_H

#include <lmdb.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "../shard/store.h"
#include "mcmd.h"

struct meta; /* Opaque. */

struct meta_config {
    const char *dir;   /* LMDB directory, created if missing; borrowed for the call */
    uint64_t map_size; /* initial LMDB map size (0: 64 MiB); grown by meta_grow */
    int fast;          /* see store_config.fast (shard/store.h) */
};

/**
 * Open (creating if needed) the metadata state in @cfg->dir.
 * @return 0 and *@out (close with meta_close), or LR_E* with a sentence in @errmsg
 * (LR_ERRMSG_SIZE bytes); LR_EINVAL if the directory holds another kind of state.
 */
int meta_open(const struct meta_config *cfg, struct meta **out, char *errmsg);

/** Abort any open group and close. NULL is a no-op. */
void meta_close(struct meta *m);

/** Receives what apply produces; all pointers are borrowed for the duration of the call. */
struct meta_sink {
    void *data;
    /* Result of command @i of the entry: an HTTP status and its msgpack body. Results reflect
     * state that is not yet committed: hold them until meta_commit returns 0. */
    void (*result)(void *data, uint32_t i, int status, const char *body, size_t len);
};

/**
 * Apply the raft entry @buf of log index @index inside the open group (opening one if
 * needed). Entries at or below the applied index are skipped (replay after a restart). A
 * malformed entry or command applies as a no-op: the index advances and each command that
 * could be read gets an error result. The raft index is a catalog put's version. @sink may be
 * NULL; @buf is borrowed for the call.
 * @return 0; or a fatal LR_E* (LR_EMAPFULL, LR_EIO, LR_ENOMEM, LR_ECORRUPT) with meta_errmsg,
 * after which the caller must meta_abort (and may meta_grow and retry on LR_EMAPFULL).
 */
int meta_apply(struct meta *m, uint64_t index, const void *buf, size_t len,
               const struct meta_sink *sink);

/** Commit the open group (no-op without one), the applied index in the same transaction.
 * On error the group is aborted as by meta_abort. @return 0 or LR_E*. */
int meta_commit(struct meta *m);

/** Drop the open group; the applied index returns to the committed one. @return 0 or LR_E*. */
int meta_abort(struct meta *m);

/** Double the LMDB map (no group open). @return 0 or LR_E*. */
int meta_grow(struct meta *m);

/** Write a compact copy of the committed environment to @fd (no group may be open): raft's
 * snapshot. @return 0 or LR_E* with meta_errmsg. */
int meta_copy(struct meta *m, int fd);

/** The environment, for a copy by another thread: see shard_env. */
MDB_env *meta_env(struct meta *m);

/** What meta_copy would write now, in bytes (store_used_bytes). @return 0 or LR_E*. */
int meta_state_bytes(struct meta *m, uint64_t *out);

/** Last applied index (including an open group). */
uint64_t meta_applied_index(const struct meta *m);

/**
 * The highest stamp (ms) of any command applied, including an open group; 0 before the first.
 * Persisted with the applied index. A leader stamps no command below it (docs/durability.md,
 * "Time stamps"); apply never compares a stamp with it.
 */
int64_t meta_clock_ms(const struct meta *m);

/** Running state digest (including an open group): equal on replicas with equal state. */
uint64_t meta_digest(const struct meta *m);

/** Recompute the digest from every record (O(n)); equals meta_digest unless a bug. */
int meta_digest_scan(struct meta *m, uint64_t *out);

/** Last error sentence. */
const char *meta_errmsg(const struct meta *m);

/** The LMDB environment's use of the disk (store_usage_get): for admission control. */
void meta_usage(struct meta *m, struct store_usage *out);

/* ---- queries --------------------------------------------------------------------------- */

/* X(NAME, name): one handler per row (query.c). */
#define META_QUERIES(X)                                                                            \
    X(DIRECTORY, directory) /* player_id -> {player_id, region, claimed_at}, or LR_ENOTFOUND */    \
    X(CATALOG_SINCE, catalog_since) /* after, limit -> {changes: [...], more}, version order */    \
    X(ADMISSION, admission)         /* tournament_id, player_id? -> participants, admitted */      \
    X(CLOSE_GET, close_get)         /* board_id, cycle -> the close record, or LR_ENOTFOUND */     \
    X(REGIONS, regions)             /* no arguments -> {regions: [...]}, region id order */

enum meta_qtype {
#define META__QENUM(NAME, name) META_Q_##NAME,
    META_QUERIES(META__QENUM)
#undef META__QENUM
        META_Q__END
};

#define META_PAGE_MAX 1000 /* catalog changes in one answer */

/** A read of committed state (and of the open group's, if one is open). Strings are
 * borrowed for the call; fields a type does not use are ignored. */
struct meta_query {
    enum meta_qtype type;
    struct lr_str player_id, tournament_id, board_id;
    uint64_t after; /* CATALOG_SINCE: changes with version > after */
    uint32_t limit; /* CATALOG_SINCE: 1..META_PAGE_MAX (0 = META_PAGE_MAX) */
    int64_t cycle;  /* CLOSE_GET */
};

/**
 * Answer @q into @out (appended as one msgpack map).
 * Answers: DIRECTORY {"player_id", "region", "claimed_at"}; CATALOG_SINCE {"changes": [{"kind",
 * "id", "version", "body"}...], "more": bool}; ADMISSION {"tournament_id", "max_participants",
 * "participants", "start_at", "end_at", "admitted"} (without a player_id, "admitted" is false:
 * the tournament's count alone); CLOSE_GET {"board_id", "cycle",
 * "closed_at", "record"}; REGIONS {"regions": [{"region", "rpc": ["host:port"...], "added_at" (ms),
 * "version"}...]} in bytewise order of region id (at most META_REGIONS_MAX).
 * @return 0; or LR_ENOTFOUND / LR_EINVAL / LR_E* with a sentence in @errmsg.
 */
int meta_query(struct meta *m, const struct meta_query *q, msgpack_sbuffer *out, char *errmsg);

/** Wire name of query type @type ("directory", ...), or NULL. */
const char *meta_query_name(int type);

/** Pack @q (and whether a stale read is fine) as the args of a replica's query op: a map
 * keyed by the fields' names, "type" by its name (mquery.c). Strings are packed as given. */
void meta_query_encode(msgpack_packer *pk, const struct meta_query *q, int stale);

/**
 * Decode query args @o into @q (strings borrow @o) and *@stale. Refuses a missing or unknown
 * type, unknown keys and values of the wrong kind or range; meta_query judges the values.
 * @return 0 or LR_EINVAL with a sentence in @errmsg.
 */
int meta_query_decode(const msgpack_object *o, struct meta_query *q, int *stale, char *errmsg);

#endif
