/* node/node_int.h — internals of the node module shared by node.c (raft, batching, reads,
 * subscriptions) and conn.c (client connections). */
#ifndef LAUREL_NODE_INT_H
#define LAUREL_NODE_INT_H

#include <msgpack.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "../raft/faultio.h"
#include "../raft/fsm.h"
#include "node.h"
#include "../proto/authio.h"
#include "../proto/proto.h"

/* A subscriber whose unsent bytes pass this is too slow: it is dropped, never waited for. */
#define NODE_SUB_QUEUE_MAX (16u << 20)
/* RPC connections still in their cluster-key handshake, at most, and how long one may take
 * (the raft transport's bounds, raft/xport.h): past the bound new connections are closed at
 * once; past the deadline (checked each tick, so up to a second late) the connection is. */
#define NODE_AUTH_MAX 64
#define NODE_AUTH_TIMEOUT_MS 3000
/* A client whose unsent answers pass this stops being read until they drain. */
#define NODE_CONN_QUEUE_MAX (64u << 20)

struct node_conn {
    uv_tcp_t tcp;
    struct node *n;
    struct proto_reader rd;
    msgpack_sbuffer out;  /* frames waiting for the current write to finish */
    msgpack_sbuffer wbuf; /* frames being written */
    uv_write_t wreq;
    int writing;
    int closing;
    unsigned refs; /* waiters, reads and the subscription holding this conn */
    int reading;
    struct authio auth;     /* nothing reaches the RPC decoder before it is done */
    int authing;            /* counted in node.authing */
    uint64_t auth_deadline; /* uv_now past which the handshake has failed */
    uint64_t last_rx;       /* uv_now() of its last read: the idle timeout's clock */
    struct node_sub *sub;
    struct node_conn *prev, *next;
};

struct node_sub {
    struct node_conn *c;
    uint64_t req_id;
    uint64_t next; /* next index to send */
    uint64_t told; /* the highest {"applied": n} sent: n only grows on the stream */
    int live;      /* caught up: every applied entry's events have been sent */
    struct node_sub *prev, *next_sub;
};

/* A request on its way from the dispatch (node__request) to its op, which borrows it for the
 * call: an op that answers later copies what it keeps. */
struct node_req {
    struct proto_msg m; /* m.body lives in the unpacking of @frame */
    const char *frame;  /* the request's bytes: decoded strings point into them */
    size_t len;
    union fsm_query q; /* ops flagged PROTO_F_STALE: the args, decoded by the dispatch */
    int stale;         /* ... and whether they asked for a stale read; 0 for other ops */
};

/* Requests waiting for one raft entry. */
struct node_waiter {
    struct node_conn *c;
    uint64_t req_id;
    uint32_t first, count; /* their commands inside the entry */
};

/* The majority's clock (node_peerclock.c, docs/durability.md "Time stamps"). */
#define NODE_CLOCK_TOLERANCE_MS 1000 /* how far a stamp may run ahead of the majority's time */
#define NODE_CLOCK_FRESH_MS 5000     /* a peer's sample counts this long */
#define NODE_HOLD_MS 3000            /* a held write waits this long, then answers unavailable */

/* One peer's clock, sampled over its RPC port while this node leads. Private to
 * node_peerclock.c. */
struct node_peerclock {
    struct node *n;
    uv_tcp_t tcp; /* initialised unless state is idle */
    uv_connect_t connect;
    uv_write_t wreq;
    char wbuf[1024]; /* the STATUS request being written: nil, or the peers (node__pack_peers) */
    struct proto_reader rd;
    int state;
    int busy;           /* a STATUS request awaits its reply */
    int writing;        /* wreq is in flight */
    struct authio auth; /* the cluster-key handshake, as initiator (NODE__PC_AUTH) */
    uint64_t req_id;
    int64_t t_send;   /* CLOCK_REALTIME ms when the request in flight was sent */
    uint64_t sent;    /* uv_now then */
    int64_t offset;   /* the last sample: peer clock minus this one, ms */
    uint64_t sampled; /* uv_now when it was taken */
    int has_sample;
};

struct node_batch {
    struct raft_apply req;
    struct node *n;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    uint32_t ncmds;
    size_t *ts_off; /* where each command's stamp is in @sb (node_clock.c) */
    uint32_t nts, capts;
    int64_t ts_min;      /* the first, and lowest, stamp of the batch */
    int held;            /* some command joined while the leader was holding writes: its stamp is
                            provisional, set when the batch is proposed (node__restamp) */
    uint64_t held_since; /* uv_now when the first held command joined */
    struct node_waiter *w;
    uint32_t nw, capw;
    uint64_t index;
    int answered;
    struct node_batch *next;
};

struct node_read {
    struct node_conn *c;
    uint64_t req_id;
    char *frame; /* the request's bytes: the query borrows its strings */
    msgpack_unpacked up;
    union fsm_query q;
    int64_t now_ms;
    struct node_read *next;
};

/* Admission control's last verdict (node_admit.c). */
struct node_admit {
    int writable;       /* 1 unless the disk or the LMDB map is nearly full */
    char reason[400];   /* why not ("writes paused: ..."), "" while writable */
    uint64_t disk_free; /* the lower free bytes of the filesystems of DIR/raft and the state */
    struct store_usage map;
    uint64_t checked_ms; /* uv_now at the last check */
};

struct node {
    uv_loop_t *loop;
    struct logger *log;
    struct node_config cfg;
    struct raft raft;
    struct raft_io io;     /* libraft's uv backend */
    struct faultio faults; /* TEST ONLY: wraps @io when cfg.raft_io_faults is set */
    struct raft_uv_transport xport;
    struct raft_tracer tracer; /* routes libraft's trace into the logger at LOG_DEBUG */
    struct fsm fsm;
    int (*io_append)(struct raft_io *io, struct raft_io_append *req,
                     const struct raft_entry entries[], unsigned n, raft_io_append_cb cb);
    uv_tcp_t listener;
    uv_check_t check;
    uv_timer_t tick;
    struct node_conn *conns;
    unsigned authing;          /* conns in their cluster-key handshake */
    uint64_t auth_failures;    /* RPC connections refused by it (status "auth_failures") */
    struct log_limit auth_log; /* rate limit of the lines saying so */
    unsigned nconns;           /* in @conns */
    uint64_t conns_refused;    /* accepted and closed at once: cfg.max_conns open already */
    uint64_t idle_closes;      /* closed by the idle timeout (conn__close_idle) */
    struct node_sub *subs;
    struct node_batch *open;     /* filling during this loop turn */
    struct node_batch *inflight; /* proposed, in index order */
    struct node_batch *inflight_tail;
    struct node_read *reads_next; /* wait for the next barrier */
    struct node_read *reads_now;  /* wait for the barrier in flight */
    struct raft_barrier barrier;
    int barrier_busy;
    uint64_t read_term; /* the term of the last barrier that completed: leader reads and writes
                           need it */
    /* The one leadership transfer raft runs at a time, owned by the node rather than by its
     * request: libraft may still hold its TimeoutNow send in a queue after the transfer's
     * callback (canonical/raft#396), so this memory must outlive every transfer. */
    struct raft_transfer transfer;
    struct node_admin *transfer_ad; /* who asked for the transfer in flight, or NULL */
    int64_t stamp_issued;           /* the highest time stamp this node has put in a command */
    uint64_t audit_days_term;       /* the term in which this leader proposed cfg.audit_days */
    struct node_peerclock pclock[NODE_MAX_PEERS]; /* for cfg.peers[i] */
    uint64_t clock_term;     /* the term whose election started the last sampling round */
    int logged_role;         /* raft_state() when the last "role:" line was logged; 0: none */
    uint64_t clock_skewed;   /* ticks this leader's clock was past the tolerance from the
                                majority's (status "clock_skewed") */
    int clock_warned;        /* the skew is logged: the next line says when it ends */
    uint64_t state_bytes;    /* what a snapshot would hold, measured each second (node__tick) */
    msgpack_sbuffer scratch; /* answers being built */
    msgpack_sbuffer qans;    /* a query's answer, before it is framed into scratch */
    char rbuf[64 * 1024];    /* socket reads of this loop */
    int stopping;
    int fatal; /* node__fatal ran: propose nothing more, answer no write with success */
    unsigned closing_handles;
    void (*stop_cb)(void *data);
    void *stop_data;
    struct node_admit admit;
    int exit_status;
    char errmsg[LR_ERRMSG_SIZE];
};

/* conn.c */
int conn__listen(struct node *n, const char *addr, char *errmsg);
/** Close the connections whose cluster-key handshake passed its deadline (each tick). */
void conn__expire(struct node *n);
/** Queue one frame holding @len bytes of msgpack @p for @c (copied). */
void conn__send(struct node_conn *c, const char *p, size_t len);
/** Queued and in-flight bytes of @c. */
size_t conn__queued(const struct node_conn *c);
/** Close @c (idempotent); freed once its refs drop to zero. */
void conn__close(struct node_conn *c, const char *why);
void conn__unref(struct node_conn *c);
void conn__close_all(struct node *n);
/* Close every connection idle past cfg.idle_s (node__tick, once a second). */
void conn__close_idle(struct node *n);

/* node.c: request handling, called by conn.c for each frame. The dispatch answers what no op
 * sees (a malformed envelope, an unknown op, bad query args, "not the leader" for ops flagged
 * PROTO_F_LEADER); each op, node__op_<name> for every name in PROTO_OPS, answers the rest. */
void node__request(struct node_conn *c, const char *frame, size_t len);
/** Answer request @id on @c with @code and @payload (msgpack bytes, or NULL for nil). */
void node__reply(struct node_conn *c, uint64_t id, int code, const char *payload, size_t len);
/** Answer with an error sentence. */
void node__reply_error(struct node_conn *c, uint64_t id, int code, const char *msg);
/** Drop @c's subscription, if any. */
void node__unsubscribe(struct node_conn *c);
/** The node's scratch packer, cleared. */
msgpack_packer node__packer(struct node *n);
/** Answer "not the leader" with who is (or unavailable when nobody is). */
void node__reply_not_leader(struct node_conn *c, uint64_t id);
const struct node_peer *node__peer(const struct node *n, uint64_t id);

/* node_admin.c: the RPC addresses of the voters this replica knows, packed as an array of
 * {"id", "rpc"} (status's "peers"); and the merge of such an array from a leader into this
 * replica's table (ids it does not know yet only). A replica added after another started is
 * known at first only to the leader that added it; the leader passes its table on with each
 * clock sample (node_peerclock.c), so that any voter can lead later and reach a quorum of
 * the others (docs/operations.md, "Growing a cluster"). */
void node__pack_peers(struct node *n, msgpack_packer *pk);
void node__learn_peers(struct node *n, const msgpack_object *peers);

/** One handle of the node closed during node_stop: the node is freed after the last one. */
void node__closed(struct node *n);

/* node_peerclock.c: the majority's clock */
/** While leading: ask every voter with a known RPC address for its clock (at most one request
 * in flight per peer). */
void node__peerclock_sample(struct node *n);
/** 1 and *@offset (the majority's clock minus this one, ms) when a quorum of voters, this
 * node counted, has a fresh sample; else 0. */
int node__peerclock_offset(struct node *n, int64_t *offset);
/** Close every peer connection (node_stop); @return how many handles will call node__closed. */
unsigned node__peerclock_close_all(struct node *n);

/* node_clock.c: time stamps that never go below one applied (docs/durability.md) */
/** This host's wall clock in ms. */
int64_t node__now_ms(void);
/** 0 while this replica leads but has not applied an entry of its term: barriers start. */
int node__term_ready(struct node *n);
/** 0 while this replica leads but has not applied an entry of its term, or has no quorum of
 * fresh clock samples (node_peerclock.c): writes must wait. */
int node__may_propose(struct node *n);
/** The stamp for a command proposed now: max(min(clock, the majority's clock + tolerance),
 * shard_clock_ms, the last one issued). Records it as issued. */
int64_t node__stamp(struct node *n);
/** Room for @count more stamps in @b. @return 0 or LR_ENOMEM (@b unchanged). */
int node__batch_reserve_stamps(struct node_batch *b, uint32_t count);
/** Append command @o to @b with stamp @ts (a slot reserved by node__batch_reserve_stamps). */
void node__append_cmd(struct node_batch *b, const msgpack_object *o, int64_t ts);
/** Raise every stamp of @b below the applied clock to it, in place: before proposing @b. */
void node__restamp(struct node *n, struct node_batch *b);

/* node_admit.c: admission control, refusing writes before the disk or the LMDB map fills */
/** Judge the disk and the map now; logs when the verdict changes. */
void node__admit_check(struct node *n);
/** 1 when a write may be proposed: the verdict, judged again first if NODE__ADMIT_EVERY_MS
 * old. 0: answer the write LR_EUNAVAILABLE with n->admit.reason. */
int node__admit_write(struct node *n);

/* node_admin.c */
/* "leader", "follower", "candidate" or "unavailable": raft_state() as status and logs say it. */
const char *node__role(int state);
void node__op_status(struct node_conn *c, struct node_req *r);
void node__op_add(struct node_conn *c, struct node_req *r);
void node__op_remove(struct node_conn *c, struct node_req *r);
void node__op_transfer(struct node_conn *c, struct node_req *r);

/* node_sub.c */
void node__op_subscribe(struct node_conn *c, struct node_req *r);
/** Catch @s up from the event log (a bounded slice). */
void node__pump(struct node *n, struct node_sub *s);
/** Send one entry's events to @s. */
void node__send_events(struct node_sub *s, uint64_t index, uint32_t nev, const char *buf,
                       size_t len);
/** Tell @s it is too slow and close its connection. */
void node__drop_slow(struct node_sub *s);
/**
 * Send {"applied": raft_last_applied} to every live subscriber: each one told less than that
 * (@every 0, once per loop turn), or each one (@every 1, the 1 s heartbeat).
 */
void node__sub_heartbeats(struct node *n, int every);
/** The FSM's restored hook: a snapshot replaced the state, so live subscribers missed the
 * events of the entries it covers; they catch up from the event log again. */
void node__sub_restored(void *data);

#endif
