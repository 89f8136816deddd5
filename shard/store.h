/* shard/store.h — the region's LMDB environment: named databases, one write transaction at a
 * time, and the state digest.
 *
 * Every write goes through store_put/store_del, which keep a running digest: the sum (mod
 * 2^64) of hash(db, key, value) over every live record except the digest itself. Sums commute,
 * so two replicas that hold the same records hold the same digest whatever order they wrote
 * them in; store_digest_scan recomputes it from scratch to prove the running value honest.
 * The digest is stored in the same transaction as the records it covers.
 *
 * The region's databases are STORE_DBS; another state machine (meta/) opens the same
 * machinery over its own list with store_open_dbs, passing its own enum's values where
 * enum store_db is asked for. Either way database 0 holds the digest.
 *
 * Layout of each database: docs/data-layout.md. Not thread-safe; owned by one shard. */
#ifndef LAUREL_STORE_H
#define LAUREL_STORE_H

#include <lmdb.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"

#define STORE_DBS(X)                                                                               \
    X(META, "meta")                                                                                \
    X(PLAYERS, "players")                                                                          \
    X(GAMES, "games")                                                                              \
    X(ACHS, "achievements")                                                                        \
    X(BOARDS, "boards")                                                                            \
    X(TOURNS, "tournaments")                                                                       \
    X(TJOINS, "tournament_joins")                                                                  \
    X(PROGRESS, "progress")                                                                        \
    X(HISTORY, "history")                                                                          \
    X(PGAMES, "player_games")                                                                      \
    X(SCORES, "scores")                                                                            \
    X(IDEM, "idem")                                                                                \
    X(IDEMEXP, "idem_expiry")                                                                      \
    X(STATS, "stats")                                                                              \
    X(EVENTS, "events")                                                                            \
    X(REWARDS, "rewards")                                                                          \
    X(REWARDLOG, "reward_log")                                                                     \
    X(FLOORS, "period_floors")                                                                     \
    X(AUDIT, "audit")                                                                              \
    X(AUDITEXP, "audit_expiry")

enum store_db {
#define STORE__ENUM(NAME, str) STORE_##NAME,
    STORE_DBS(STORE__ENUM)
#undef STORE__ENUM
        STORE_NDBS
};

#define STORE_DBS_MAX 24 /* databases of one environment, for store_open_dbs */

struct store_config {
    const char *dir;   /* created if missing; borrowed for the call */
    uint64_t map_size; /* initial map size in bytes (grown by store_grow) */
    int fast;          /* 1: MDB_NOSYNC|MDB_WRITEMAP|MDB_MAPASYNC, the map preallocated; the
                          raft log is then the durable record (docs/durability.md) */
};

struct store; /* Opaque. */

/** Open (creating if needed) the region's environment (STORE_DBS).
 * @return 0, or an LR_E* code with @errmsg. */
int store_open(const struct store_config *cfg, struct store **out, char *errmsg);

/**
 * store_open over the @n databases named @names (1 <= @n <= STORE_DBS_MAX): database i is
 * what the other calls take as db i, and database 0 also holds the digest record. @names is
 * borrowed until store_close (a static table). @return 0, or LR_EINVAL / an LR_E* code with
 * @errmsg.
 */
int store_open_dbs(const struct store_config *cfg, const char *const *names, int n,
                   struct store **out, char *errmsg);

/** Close; aborts an open write transaction. NULL is a no-op. */
void store_close(struct store *st);

/** Begin the write transaction. @return 0, or LR_E* (e.g. LR_EIO) with the store's errmsg. */
int store_begin(struct store *st);

/** 1 while a write transaction is open. */
int store_in_write(const struct store *st);

/** Write the digest into meta and commit. On error the transaction is aborted. */
int store_commit(struct store *st);

/** Abort the write transaction and restore the digest to its committed value. */
void store_abort(struct store *st);

/**
 * The transaction reads should use: the write transaction when one is open (so apply sees its
 * own writes), else a read-only transaction kept open until store_read_end.
 * @return 0 and *@txn, or LR_E*.
 */
int store_read(struct store *st, MDB_txn **txn);

/** End the read-only transaction begun by store_read (no-op inside a write). */
void store_read_end(struct store *st);

/** MDB handle of @db (for cursors). */
MDB_dbi store_dbi(const struct store *st, enum store_db db);

/** Get @key from @db in the current view. @return 0, LR_ENOTFOUND, or LR_E*. */
int store_get(struct store *st, enum store_db db, const void *key, size_t klen, MDB_val *val);

/** Put @key=@val into @db inside the write transaction, accounting the digest. */
int store_put(struct store *st, enum store_db db, const void *key, size_t klen, const void *val,
              size_t vlen);

/** Digest term of one record (what store_put adds for it). */
uint64_t store_record_hash(enum store_db db, const void *key, size_t klen, const void *val,
                           size_t vlen);

/**
 * store_put for a caller that read the key earlier in this transaction and wrote nothing to
 * it since: @had_old says whether it existed and @old_hash is store_record_hash of the value
 * read (computed when it was read: the value's memory may move with later puts). Saves the
 * second B-tree search store_put makes to find the old value. A wrong @old_hash breaks the
 * digest, which the tests compare with store_digest_scan.
 */
int store_put_known(struct store *st, enum store_db db, const void *key, size_t klen,
                    const void *val, size_t vlen, int had_old, uint64_t old_hash);

/** Delete @key from @db (LR_ENOTFOUND if absent), accounting the digest. */
int store_del(struct store *st, enum store_db db, const void *key, size_t klen);

/** Running digest (includes uncommitted writes of the open transaction). */
uint64_t store_digest(const struct store *st);

/** Recompute the digest by scanning every database. @return 0 and *@out, or LR_E*. */
int store_digest_scan(struct store *st, uint64_t *out);

/** Double the map size (no transaction may be open). @return 0 or LR_E*. */
int store_grow(struct store *st);

/** How much of the disk the environment holds and may still take (node/node_admit.c). */
struct store_usage {
    uint64_t map_bytes;  /* the map's size now */
    uint64_t used_bytes; /* pages up to LMDB's last page in use, in bytes: the file's live
                            extent, and an upper bound of a compact copy (a snapshot) */
    int preallocated;    /* fast mode: the file is reserved up to map_bytes, so the next
                            store_grow takes map_bytes more of the disk at once */
};

/** Fill @out from the last committed transaction's meta page: no lock, no I/O. */
void store_usage_get(struct store *st, struct store_usage *out);

/**
 * The bytes of the committed state a compact copy (mdb_env_copyfd2 with MDB_CP_COMPACT, what a
 * raft snapshot is) would write: the two meta pages and every branch, leaf and overflow page
 * of the main and named databases, free pages left out. Reads only each database's header, so
 * it is cheap to ask every second. @return 0 and *@out, or LR_E*.
 */
int store_used_bytes(struct store *st, uint64_t *out);

/** Last error sentence. */
const char *store_errmsg(const struct store *st);

/** The environment (for copies and stats). */
MDB_env *store_env(struct store *st);

#endif
