/* node/node.h — one replica: raft over libuv, the shard as its state machine, the client RPC
 * and the committed-event stream, all on one uv loop owned by the caller.
 *
 * Writes: what arrives in one loop turn is packed into one raft entry (stamped with this
 * leader's clock) and each request is answered when its entry has been applied and
 * committed to LMDB. Reads: linearizable on the leader through one raft barrier per loop
 * turn of queued reads (always: no lease), or stale from any replica when the request says
 * so. */
#ifndef LAUREL_NODE_H
#define LAUREL_NODE_H

#include <stdint.h>
#include <uv.h>

#include "../lib/log.h"
#include "../proto/peerauth.h"

#define NODE_MAX_PEERS 9
#define NODE_ADDR_MAX 64
/* Two 64 MiB raft segments (libraft prepares them ahead of the writes), a snapshot of a
 * modest region and what a barrier or an election writes: docs/durability.md, "Full disks". */
#define NODE_DISK_RESERVE_MB_DEFAULT 256

struct node_peer {
    uint64_t id;
    char raft[NODE_ADDR_MAX]; /* host:port of the raft transport */
    char rpc[NODE_ADDR_MAX];  /* host:port of the client RPC */
};

/* Where a replica starts refusing writes: three quarters of what libraft 0.15 can load
 * (FSM_SNAPSHOT_MAX, about 2 GiB). The quarter left is room for what is applied between the
 * once-a-second measurement and the next snapshot, and for writes already proposed. */
#define NODE_STATE_MAX_DEFAULT (3ULL << 29) /* 1.5 GiB */

struct node_config {
    uint64_t id;
    int meta;        /* 1: a replica of the metadata group (meta/), 0: of a region (shard/) */
    char region[65]; /* the region; "meta" for the metadata group */
    char data_dir[4000];
    struct node_peer peers[NODE_MAX_PEERS]; /* the initial voters, this node among them */
    unsigned npeers;
    int join;                        /* 1: started empty, waits to be added (no bootstrap) */
    unsigned election_ms;            /* default 1000 */
    unsigned heartbeat_ms;           /* default 100 */
    unsigned snapshot_threshold;     /* entries between snapshots; default 8192 */
    unsigned snapshot_trailing;      /* entries kept after a snapshot; default 4096 */
    int fast;                        /* LMDB fast mode (docs/durability.md); default 1 */
    unsigned disk_reserve_mb;        /* writes are refused while the disk has less free than this
                                        (docs/durability.md, "Full disks"); default 256 */
    char raft_io_faults[1024];       /* TEST ONLY: a control file of raft/faultio.h, whose raft I/O
                                        faults this replica injects; "" (default): none. Set from
                                        LAUREL_TEST_RAFT_IO_FAULTS by `laurel node`. */
    uint64_t state_max;              /* bytes: past this the state refuses writes, so a snapshot
                                        stays loadable (NODE_STATE_MAX_DEFAULT; at most
                                        FSM_SNAPSHOT_MAX; docs/durability.md, "Snapshots") */
    int have_cluster_key;            /* 1: every raft and RPC connection opens with the
                                        handshake of proto/peerauth.h, with cluster_key; 0: none,
                                        allowed only when every address is loopback */
    struct peerauth_key cluster_key; /* copied with the config */
    unsigned max_conns;              /* client RPC connections at most; past it a new one is
                                        accepted and closed at once (NODE_MAX_CONNS_DEFAULT) */
    unsigned idle_s;                 /* a client connection that sent nothing for this long, with
                                        no request in flight and no subscription, is closed
                                        (NODE_IDLE_S_DEFAULT; 0: never) */
    unsigned audit_days;             /* days of audit trail this replica asks its region to keep
                                        when it leads: proposed as a command (CMD_AUDIT_DAYS), so
                                        every replica purges alike (docs/api.md, "Audit");
                                        default and minimum CMD_AUDIT_DAYS_MIN (30) */
    int read_barrier;                /* ignored: every non-stale read waits for a raft barrier
                                        (docs/durability.md, "Reads"); kept so --read-barrier
                                        still parses */
};

/* docs/security.md, "Limits": far above what a cluster's routers, tools and benches open
 * (each router keeps one connection per replica, plus one per event stream). */
#define NODE_MAX_CONNS_DEFAULT 10000
/* The router's pool reconnects when a connection it left idle was closed (upstream.c). */
#define NODE_IDLE_S_DEFAULT 300

struct node; /* Opaque. */

/** Fill @cfg with defaults (no id, region, dir or peers). */
void node_config_defaults(struct node_config *cfg);

/**
 * Start a replica on @loop. @cfg is copied; @log is borrowed until the node has stopped.
 * @return 0 and *@out, or LR_E* with @errmsg.
 */
int node_start(uv_loop_t *loop, const struct node_config *cfg, struct logger *log,
               struct node **out, char *errmsg);

/**
 * Stop: close the RPC port and every connection, close raft, close the shard. @cb fires
 * once everything is closed (run the loop until then); the node is freed after @cb returns.
 */
void node_stop(struct node *n, void (*cb)(void *data), void *data);

/** Process exit status the node asks for: 0, or nonzero after a fatal error. */
int node_exit_status(const struct node *n);

#endif
