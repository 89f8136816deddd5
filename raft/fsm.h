/* raft/fsm.h — the shard as libraft's state machine.
 *
 * apply: one raft entry = one shard group, committed before apply returns, so when libraft
 *   runs the proposer's callback the results are in LMDB. The entry's index is
 *   raft_last_applied + 1 (libraft does not pass it); entries at or below the shard's stored
 *   applied index are skipped by the shard itself, which is what makes restart replay safe.
 * snapshot: a compact copy of the LMDB environment at the applied index.
 * restore: replace the environment with the snapshot and rebuild memory.
 *
 * A fatal shard error (disk, corruption, memory) is never absorbed: the hooks' fatal callback
 * fires and the node stops (docs/durability.md), because a replica that skips an entry would
 * diverge. A full LMDB map is not fatal: the group is aborted, the map doubled, and the same
 * entry applied again. */
#ifndef LAUREL_FSM_H
#define LAUREL_FSM_H

#include <msgpack.h>
#include <raft.h>
#include <stdint.h>

#include "../shard/shard.h"

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
};

#define FSM_BATCH_BUCKETS 13 /* 1, 2, 4, ... 4096 = CMD_ENTRY_MAX */

struct fsm {
    struct raft_fsm raft_fsm; /* read-only: hand &raft_fsm to raft_init */
    struct raft *raft;        /* set by the owner before raft_start */
    struct shard *shard;      /* read-only */
    /* Counters since start (read-only): entries applied, commands in them, and entries by
     * commands per entry in power-of-two buckets (bucket k: at most 2^k commands). */
    uint64_t applied_entries, applied_commands;
    uint64_t batch_hist[FSM_BATCH_BUCKETS];
    /* private */
    struct shard_config cfg;
    char dir[4096];
    char region[65];
    struct fsm_hooks hooks;
    msgpack_sbuffer results, events;
    int *status, *replayed;
    size_t *off, *len;
    uint32_t nresults, cap, nevents;
    int oom;
};

/**
 * Open the shard in @dir (created if missing) and prepare @f. @hooks is copied (may be NULL).
 * @return 0, or LR_E* with @errmsg.
 */
int fsm_init(struct fsm *f, const char *dir, const char *region, int fast,
             const struct fsm_hooks *hooks, char *errmsg);

/** Close the shard and free @f's buffers. */
void fsm_close(struct fsm *f);

#endif
