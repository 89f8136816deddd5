/* node/node_admit.c — admission control: a leader refuses new writes before its disk or its
 * LMDB map fills, so that a full disk never reaches the raft log.
 *
 * Why: a raft log append that fails stops the replica (node__append: libraft 0.15 would lead
 * on with a log it could not write). The replicas of a region run one workload on disks of one
 * size, so they fill up together and all stop at the same index: the region is gone until
 * someone frees space, and it was lost for reads too. Refusing writes while there is room left
 * keeps every replica up and serving reads. Raft still writes a little after writes stop
 * (barriers for reads, elections, a new 64 MiB segment, a snapshot of the state): the reserve
 * is that room (docs/durability.md, "Full disks").
 *
 * The verdict, taken on any replica but used by the leader (the only one that proposes):
 * - disk: the free bytes (statvfs f_bavail) of the filesystem of DIR/raft or of the state dir
 *   (DIR/shard, DIR/meta) are below the reserve (--disk-reserve-mb).
 * - map: in fast mode LMDB's file is preallocated to the map, so the apply that fills the map
 *   doubles it and takes map-size more of the disk at once (shard/store.c, store_grow). Once
 *   the map is NODE__MAP_HIGH_WATER percent used, writes stop if that growth would leave the
 *   state's filesystem below the reserve. In sync mode a bigger map costs no disk (the file
 *   grows by pages, which the disk rule sees), so the map rule does not apply.
 * Both are read cheaply: two statvfs calls and LMDB's meta page (no lock, no I/O). They are
 * read on the 1 s tick, for each status op, and when a write arrives and the last reading is
 * NODE__ADMIT_EVERY_MS old, so a burst of writes outruns a full disk by that much at most, and
 * writes resume by themselves once space is back. There is no hysteresis: near the line,
 * writes that were admitted use a little more space and the next reading refuses.
 *
 * Not covered: a follower whose disk is fuller than its leader's still stops when its own log
 * append fails; the leader cannot see its followers' disks. */
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "node_int.h"

#define NODE__ADMIT_EVERY_MS 20
#define NODE__MAP_HIGH_WATER 90 /* percent of the map in use */
#define NODE__MIB (1024.0 * 1024.0)

static double node__mib(uint64_t bytes)
{
    return (double)bytes / NODE__MIB;
}

/* Free bytes of the filesystem holding @path, or UINT64_MAX when it cannot be read (a
 * reading that fails refuses nothing: the append path stays the last line). */
static uint64_t node__free_bytes(const char *path)
{
    struct statvfs vfs;
    if (statvfs(path, &vfs) != 0) {
        return UINT64_MAX;
    }
    return (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
}

/* The verdict on the readings in @a, into @a->writable and @a->reason. */
static void node__admit_judge(const struct node *n, struct node_admit *a, const char *raft_dir,
                              uint64_t raft_free, const char *state_dir, uint64_t state_free)
{
    uint64_t reserve = (uint64_t)n->cfg.disk_reserve_mb << 20;
    const char *low_dir = raft_free <= state_free ? raft_dir : state_dir;
    a->disk_free = raft_free <= state_free ? raft_free : state_free;
    a->writable = 1;
    a->reason[0] = '\0';
    if (a->disk_free < reserve) {
        a->writable = 0;
        snprintf(a->reason, sizeof a->reason,
                 "writes paused: disk nearly full: %.120s has %.1f MiB free, below the %u MiB "
                 "reserve (--disk-reserve-mb); reads go on; retry once space is freed",
                 low_dir, node__mib(a->disk_free), n->cfg.disk_reserve_mb);
        return;
    }
    const struct store_usage *m = &a->map;
    if (m->preallocated && m->used_bytes * 100 >= m->map_bytes * NODE__MAP_HIGH_WATER &&
        (state_free < m->map_bytes || state_free - m->map_bytes < reserve)) {
        a->writable = 0;
        snprintf(a->reason, sizeof a->reason,
                 "writes paused: LMDB map nearly full: %.1f of %.1f MiB used, and growing it "
                 "takes %.1f MiB of %.120s, which has %.1f MiB free above a %u MiB reserve "
                 "(--disk-reserve-mb); reads go on; retry once space is freed",
                 node__mib(m->used_bytes), node__mib(m->map_bytes), node__mib(m->map_bytes),
                 state_dir, node__mib(state_free), n->cfg.disk_reserve_mb);
    }
}

void node__admit_check(struct node *n)
{
    char raft_dir[sizeof n->cfg.data_dir + 8], state_dir[sizeof n->cfg.data_dir + 8];
    struct node_admit *a = &n->admit;
    int was = a->writable, first = a->checked_ms == 0;
    snprintf(raft_dir, sizeof raft_dir, "%s/raft", n->cfg.data_dir);
    snprintf(state_dir, sizeof state_dir, "%s/%s", n->cfg.data_dir, n->cfg.meta ? "meta" : "shard");
    fsm_usage(&n->fsm, &a->map);
    node__admit_judge(n, a, raft_dir, node__free_bytes(raft_dir), state_dir,
                      node__free_bytes(state_dir));
    a->checked_ms = uv_now(n->loop) ? uv_now(n->loop) : 1;
    if (!a->writable && (was || first)) {
        LOG(n->log, LOG_WARN, "%s", a->reason);
    } else if (a->writable && !was && !first) {
        LOG(n->log, LOG_WARN, "writes resumed: %.1f MiB free, LMDB map %.1f of %.1f MiB used",
            node__mib(a->disk_free), node__mib(a->map.used_bytes), node__mib(a->map.map_bytes));
    }
}

int node__admit_write(struct node *n)
{
    if (uv_now(n->loop) - n->admit.checked_ms >= NODE__ADMIT_EVERY_MS) {
        node__admit_check(n);
    }
    return n->admit.writable;
}
