/* raft/fsm.h — a state machine under libraft: a region's shard (shard/) or the metadata
 * group's state (meta/), chosen by kind at fsm_init (FSM_KINDS). Both keep their applied index
 * in the same LMDB transaction as the effects and share the rules below.
 *
 * apply: one raft entry = one shard group, committed before apply returns, so when libraft
 *   runs the proposer's callback the results are in LMDB. The entry's index is
 *   raft_last_applied + 1 (libraft does not pass it); entries at or below the shard's stored
 *   applied index are skipped by the shard itself, which is what makes restart replay safe.
 * snapshot: a compact copy of the LMDB environment, made on a libuv worker while the loop
 *   serves (raft_fsm version 3, fsm_snapshot_on_worker), at the index libraft labels it with
 *   or a later one (fsm.c).
 * restore: replace the environment with the snapshot and rebuild memory.
 *
 * A fatal shard error (disk, corruption, memory) is never absorbed: the hooks' fatal callback
 * fires and the node stops (docs/durability.md), because a replica that skips an entry would
 * diverge. A full LMDB map is not fatal: the group is aborted, the map doubled, and the same
 * entry applied again. */
#ifndef LAUREL_FSM_H
#define LAUREL_FSM_H

#include <lmdb.h>
#include <msgpack.h>
#include <pthread.h>
#include <raft.h>
#include <stdint.h>

#include "../meta/meta.h"
#include "../shard/shard.h"

/* X(NAME, name, sm): the state machines a replica can run. name is `laurel node --role`'s
 * value; sm names the module whose functions fsm.c wraps (fsm__<sm>_*). */
#define FSM_KINDS(X)                                                                               \
    X(REGION, region, shard)                                                                       \
    X(META, meta, meta)

enum fsm_kind {
#define FSM__KENUM(NAME, name, sm) FSM_##NAME,
    FSM_KINDS(FSM__KENUM)
#undef FSM__KENUM
        FSM__KIND_END
};

/** Name of @kind ("region", "meta"), or NULL. */
const char *fsm_kind_name(int kind);

/** The kind named @name. @return 0 and *@kind, or -1 for an unknown name. */
int fsm_kind_parse(const char *name, enum fsm_kind *kind);

/** A decoded query of either state machine; which member is live follows the fsm's kind. */
union fsm_query {
    struct shard_query shard;
    struct meta_query meta;
};

struct fsm;

/* What each kind provides (fsm.c has one row per kind). */
struct fsm_ops {
    int (*open)(struct fsm *f, char *errmsg);
    void (*close)(struct fsm *f);
    int (*apply)(struct fsm *f, uint64_t index, const void *buf, size_t len);
    int (*commit)(struct fsm *f);
    int (*abort)(struct fsm *f);
    int (*grow)(struct fsm *f);
    int (*copy)(struct fsm *f, int fd);
    MDB_env *(*env)(struct fsm *f); /* what a snapshot copies, from a worker */
    int (*bytes)(struct fsm *f, uint64_t *out);
    const char *(*errmsg)(const struct fsm *f);
    void (*usage)(struct fsm *f, struct store_usage *out);
    uint64_t (*applied_index)(const struct fsm *f);
    int64_t (*clock_ms)(const struct fsm *f);
    uint32_t (*audit_days)(const struct fsm *f);
    uint64_t (*digest)(const struct fsm *f);
    int (*query_decode)(const msgpack_object *o, union fsm_query *q, int *stale, char *errmsg);
    int (*query)(struct fsm *f, union fsm_query *q, int64_t now_ms, msgpack_sbuffer *out,
                 char *errmsg);
};

/** What one applied entry produced; valid for the duration of the hooks' applied call. */
struct fsm_applied {
    uint64_t index;
    const struct raft_buffer *entry; /* the entry as applied (raft's buffer) */
    uint32_t nresults;
    const int *status;   /* per command */
    const int *replayed; /* per command */
    const size_t *off;   /* per command: body at results->data + off[i] */
    const size_t *len;
    const msgpack_sbuffer *results;
    uint32_t nevents;
    const msgpack_sbuffer *events; /* nevents msgpack maps back to back */
};

struct fsm_hooks {
    void *data;
    /* After an entry was applied and committed. */
    void (*applied)(void *data, const struct fsm_applied *a);
    /* The shard failed in a way the node must not survive; @msg says why. */
    void (*fatal)(void *data, int rv, const char *msg);
    /* A snapshot replaced the state (may be NULL): entries up to its index were never
     * reported through @applied, so whoever follows them must catch up from the state. */
    void (*restored)(void *data);
    /* A snapshot was taken (may be NULL), on the loop: its label @index, its size in
     * @bytes (what libraft compresses and writes) and the worker's copy time. */
    void (*snapshot)(void *data, uint64_t index, uint64_t bytes, uint64_t copy_ns);
};

#define FSM_BATCH_BUCKETS 13 /* 1, 2, 4, ... 4096 = CMD_ENTRY_MAX */

struct fsm {
    struct raft_fsm raft_fsm; /* read-only: hand &raft_fsm to raft_init */
    struct raft *raft;        /* set by the owner before raft_start */
    enum fsm_kind kind;       /* read-only */
    struct shard *shard;      /* read-only: the region's shard (FSM_REGION), else NULL */
    struct meta *meta;        /* read-only: the metadata state (FSM_META), else NULL */
    /* Counters since start (read-only): entries applied, commands in them, and entries by
     * commands per entry in power-of-two buckets (bucket k: at most 2^k commands). */
    uint64_t applied_entries, applied_commands;
    uint64_t batch_hist[FSM_BATCH_BUCKETS];
    uint64_t snapshots;      /* snapshots taken since start (read-only) */
    uint64_t snapshot_bytes; /* the last one's size (read-only) */
    /* private */
    uint64_t snap_bytes, snap_copy_ns; /* the copy in flight's, written by the worker */
    pthread_mutex_t snap_mu;           /* held by the worker for its copy: see fsm.c */
    int snap_fd;                       /* the memory file of the snapshot in flight, or -1 */
    MDB_env *snap_env;                 /* ... and the environment it copies */
    uint64_t snap_index;               /* ... and the state's applied index when it was asked for */
    struct shard_config cfg;
    char dir[4096];
    char region[65];
    const struct fsm_ops *ops;
    struct fsm_hooks hooks;
    msgpack_sbuffer results, events;
    int *status, *replayed;
    size_t *off, *len;
    uint32_t nresults, cap, nevents;
    int oom;
};

/**
 * Open the state machine of @kind in @dir (created if missing) and prepare @f. @region names
 * the shard's region (FSM_REGION; ignored for FSM_META). @hooks is copied (may be NULL).
 * @return 0, or LR_E* with @errmsg (LR_EINVAL when @dir holds the other kind's state).
 */
int fsm_init(struct fsm *f, enum fsm_kind kind, const char *dir, const char *region, int fast,
             const struct fsm_hooks *hooks, char *errmsg);

/**
 * Take snapshots on a worker thread (libraft's io->async_work) while the loop serves, instead
 * of on the loop. Call before handing &@f->raft_fsm to raft_init, and only with an io whose
 * version is 2 or more and that has async_work (raft_init refuses it otherwise): libraft 0.15's
 * uv backend has it (see node.c for its version), its raft_fixture says version 0.
 */
void fsm_snapshot_on_worker(struct fsm *f);

/** Close the state machine and free @f's buffers. */
void fsm_close(struct fsm *f);

/* What the node reads of the state machine, whatever its kind. */
uint64_t fsm_applied_index(const struct fsm *f);
/** The highest stamp applied (node_clock.c's floor). */
int64_t fsm_clock_ms(const struct fsm *f);
uint64_t fsm_digest(const struct fsm *f);
/** The audit retention the state has applied, in days (shard_audit_days); 0 for the metadata
 * group, which keeps no audit trail. */
uint32_t fsm_audit_days(const struct fsm *f);
/** The LMDB environment's use of the disk (store_usage_get), for the node's admission control. */
void fsm_usage(struct fsm *f, struct store_usage *out);

/* The largest snapshot we let libraft 0.15 write. It reads a snapshot file back with one
 * read(2) (src/uv_fs.c, UvFsReadInto: a short read is an error), and Linux transfers at most
 * 0x7ffff000 bytes (2 GiB - 4 KiB) per call, so a larger file can be written but never loaded:
 * not at the next start, not to send to a follower. The file is our copy LZ4-framed, and a
 * frame stores a block that does not compress as it is, plus a few bytes a block: 16 MiB
 * covers that. Fixed upstream in canonical/raft v0.18.0 (aa6d3ee, "uv_fs: Handle short reads
 * of file"); docs/durability.md, "Snapshots". */
#define FSM_SNAPSHOT_MAX (0x7ffff000ULL - (16ULL << 20))

/** What a snapshot taken now would hold, in bytes (the compact LMDB copy). Cheap: read once a
 * second by the node to refuse writes before the state outgrows FSM_SNAPSHOT_MAX.
 * @return 0 or LR_E*. */
int fsm_state_bytes(struct fsm *f, uint64_t *out);

/** Decode query args @o for @f's kind into @q (strings borrow @o). @return 0 or LR_EINVAL. */
int fsm_query_decode(const struct fsm *f, const msgpack_object *o, union fsm_query *q, int *stale,
                     char *errmsg);

/** Answer @q (decoded by fsm_query_decode) into @out; @now_ms is the read's clock.
 * @return 0 or LR_E* with @errmsg. */
int fsm_query(struct fsm *f, union fsm_query *q, int64_t now_ms, msgpack_sbuffer *out,
              char *errmsg);

#endif
