/* router/upstream.c — calls to one region's replicas (see upstream.h).
 *
 * Every call lives in exactly one list: the region's queue (waiting to be sent, possibly until
 * a retry time) or one connection's in-flight list. New calls go out from a check handle in
 * the same loop iteration that made them (so every call an iteration makes shares one write
 * per replica); a 10 ms tick sends retries that are due and fails what is past its deadline. Each
 * attempt gets a fresh request id, so a late answer to an abandoned attempt finds nothing and is
 * dropped.
 *
 * Group commit (upstream_submit). The leader already makes one raft entry of every submit a
 * loop turn brings it (docs/rpc.md, "Batching"), but each submit is still a frame to cut, a
 * waiter to answer and a message to route. So the submits a router makes in one turn become
 * one: they gather in the region's open group (struct upstream__group: their commands
 * concatenated, and each member's slice), the check handle seals the group into one ordinary
 * call, and its answer is cut back into each member's slice. The members share the call's
 * fate: redirects and retries move the whole group; an error reaches each member as it came.
 * Idempotency is untouched: two commands with one key in one submit meet in the shard exactly
 * as they would in two submits of one entry.
 *
 * Membership. The replicas given to upstream_new are where the link starts, not a fixed list:
 * an operator adds and removes voters online (docs/operations.md, "Growing a cluster"). Each
 * second the link asks the replica it believes leads for its status; the leader's "peers"
 * (the RPC address of each voter it knows) adds replicas the link did not know, and its
 * "voters" marks gone a replica whose id left the configuration, so calls stop going to it. A
 * `not leader` redirect naming an unknown address is learnt too, so a write follows a new
 * leader before the next status. Slots are never moved (other modules hold replica indexes:
 * evstream, rmodel, /v1/cluster); a gone slot is reused by the next replica learnt. */
#include "upstream.h"

#include <stdlib.h>
#include <string.h>

#include "../proto/authio.h"
#include "../proto/proto.h"
#include "../lib/addr.h"
#include "../lib/err.h"

#define UPSTREAM__TICK_MS 10
#define UPSTREAM__RETRY_MS 50
#define UPSTREAM__RETRY_MAX_MS 200
#define UPSTREAM__FOLLOW_MS 1000 /* how often the link asks the leader for the membership */
/* How long a replica that let a call reach its deadline is passed over when a call may go to
 * any replica (upstream__send): long enough for a region to elect a new leader. */
#define UPSTREAM__QUIET_MS 3000

/* One upstream_submit inside a group: its callback and its commands' place in the group. */
struct upstream__member {
    upstream_cb cb;
    void *data;
    uint32_t first, count;
};

/* The submits of one loop turn, until the check handle seals them into one call. */
struct upstream__group {
    struct upstream *u;
    msgpack_sbuffer cmds; /* the members' commands, packed back to back */
    uint32_t ncmds;
    uint64_t deadline; /* the earliest member's */
    struct upstream__member *m;
    uint32_t nm, capm;
    struct upstream__group *next; /* in upstream.full */
};

/* UC_AUTH: connected, in the cluster-key handshake; calls wait in `out` as while connecting. */
enum upstream__state { UC_IDLE, UC_CONNECTING, UC_AUTH, UC_READY, UC_CLOSING };

struct upstream_req {
    struct upstream *u;
    upstream_cb cb;
    void *data;
    int op, need_leader;
    int target; /* a named replica, or -1: the leader or any */
    char *args;
    size_t len;
    uint64_t id;
    uint64_t deadline, not_before;
    struct upstream_conn *conn; /* NULL while queued */
    struct upstream_req *prev, *next;
};

struct upstream_conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    struct upstream *u;
    unsigned idx;
    enum upstream__state state;
    struct proto_reader rd;
    msgpack_sbuffer out, wbuf;
    int writing;
    struct authio auth;
    struct upstream_req *inflight;
};

struct upstream {
    uv_loop_t *loop;
    char region[65];
    char rpc[UPSTREAM_MAX_REPLICAS][64];
    /* Each replica's address, resolved once in upstream_new: a name lookup blocks, and the
     * loop must not stall on DNS at every reconnect. */
    struct sockaddr_storage sa[UPSTREAM_MAX_REPLICAS];
    socklen_t salen[UPSTREAM_MAX_REPLICAS];
    unsigned n;
    /* Membership (see the top of this file): each slot's raft id once a leader named it (0:
     * not yet), and whether it left the configuration. */
    uint64_t id[UPSTREAM_MAX_REPLICAS];
    int gone[UPSTREAM_MAX_REPLICAS];
    uint64_t next_follow; /* when to ask the leader for the membership next */
    int following;        /* a membership status call is out */
    int leader;
    unsigned rr;
    /* Until when each replica is passed over by calls that may go anywhere: it let a call
     * reach its deadline (frozen, cut off) and has not answered since. Without this, the
     * round robin can land on the same frozen replica every time: when the other calls of a
     * loop turn (status, reads) advance it by a multiple of the replica count, a leader's
     * write retried after each timeout goes to the frozen one again and again, for as long as
     * it stays frozen (test_ws saw 30 s of 503s while a new leader waited). */
    uint64_t quiet_until[UPSTREAM_MAX_REPLICAS];
    struct upstream_conn conn[UPSTREAM_MAX_REPLICAS];
    struct upstream_req *queue;
    uv_timer_t tick;
    uv_check_t check;
    int fresh;                     /* calls were queued in this iteration */
    struct upstream__group *group; /* submits of this iteration, not yet sealed; or NULL */
    struct upstream__group *full;  /* this iteration's full groups, the newest first */
    struct upstream_stats stats;
    const struct peerauth_key *key; /* borrowed; NULL: no handshake */
    struct logger *log;             /* borrowed; set with key */
    struct log_limit auth_log;
    uint64_t next_id;
    int closing;
    /* Callbacks of this link running now: upstream_close from inside one (a caller dropping a
     * link it was asking) must leave the requests that the loops around it still walk, so
     * the close waits for the tick (close_later). */
    unsigned in_cb;
    int close_later;
    unsigned open_handles;
    void (*done)(void *data);
    void *done_data;
    msgpack_sbuffer scratch;
    char rbuf[64 * 1024];
};

/* ---- lists -------------------------------------------------------------------------------------
 */

static void upstream__link(struct upstream_req **head, struct upstream_req *r)
{
    r->prev = NULL;
    r->next = *head;
    if (*head) {
        (*head)->prev = r;
    }
    *head = r;
}

static void upstream__unlink(struct upstream_req **head, struct upstream_req *r)
{
    if (r->prev) {
        r->prev->next = r->next;
    } else {
        *head = r->next;
    }
    if (r->next) {
        r->next->prev = r->prev;
    }
    r->prev = r->next = NULL;
}

static void upstream__detach(struct upstream_req *r)
{
    upstream__unlink(r->conn ? &r->conn->inflight : &r->u->queue, r);
    r->conn = NULL;
}

static void upstream__complete(struct upstream_req *r, int code, const msgpack_object *payload)
{
    struct upstream *u = r->u;
    upstream__detach(r);
    u->in_cb++;
    r->cb(r->data, code, payload);
    u->in_cb--;
    free(r->args);
    free(r);
}

/* Back to the queue, to be sent again at @not_before. */
static void upstream__requeue(struct upstream_req *r, uint64_t not_before)
{
    upstream__detach(r);
    r->not_before = not_before;
    upstream__link(&r->u->queue, r);
    r->u->fresh |= not_before <= uv_now(r->u->loop); /* e.g. a redirect: follow it now */
}

/* ---- connections ---------------------------------------------------------------------------- */

static void upstream__conn_closed(uv_handle_t *h)
{
    struct upstream_conn *c = h->data;
    struct upstream *u = c->u;
    proto_reader_free(&c->rd);
    msgpack_sbuffer_destroy(&c->out);
    msgpack_sbuffer_destroy(&c->wbuf);
    c->state = UC_IDLE;
    c->writing = 0;
    if (u->closing && --u->open_handles == 0 && u->done) {
        u->done(u->done_data);
    }
    if (u->closing && u->open_handles == 0) {
        msgpack_sbuffer_destroy(&u->scratch);
        free(u);
    }
}

/* The connection failed: its calls go back to the queue, its replica is no longer trusted as
 * leader. */
static void upstream__conn_fail(struct upstream_conn *c)
{
    struct upstream *u = c->u;
    uint64_t now = uv_now(u->loop);
    if (c->state == UC_IDLE || c->state == UC_CLOSING) {
        return;
    }
    while (c->inflight) {
        upstream__requeue(c->inflight, now + UPSTREAM__RETRY_MS);
    }
    if (u->leader == (int)c->idx) {
        u->leader = -1;
    }
    c->state = UC_CLOSING;
    if (u->closing) {
        u->open_handles++;
    }
    uv_close((uv_handle_t *)&c->tcp, upstream__conn_closed);
}

static void upstream__flush(struct upstream_conn *c);

static void upstream__written(uv_write_t *w, int status)
{
    struct upstream_conn *c = w->data;
    c->writing = 0;
    msgpack_sbuffer_clear(&c->wbuf);
    if (status < 0) {
        upstream__conn_fail(c);
        return;
    }
    upstream__flush(c);
}

static void upstream__flush(struct upstream_conn *c)
{
    if (c->state != UC_READY || c->writing || c->out.size == 0) {
        return;
    }
    msgpack_sbuffer t = c->wbuf;
    c->wbuf = c->out;
    c->out = t;
    uv_buf_t b = uv_buf_init(c->wbuf.data, (unsigned)c->wbuf.size);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, upstream__written) != 0) {
        upstream__conn_fail(c);
        return;
    }
    c->writing = 1;
}

static struct upstream_req *upstream__find(struct upstream_conn *c, uint64_t id)
{
    for (struct upstream_req *r = c->inflight; r; r = r->next) {
        if (r->id == id) {
            return r;
        }
    }
    return NULL;
}

static int upstream__replica_of(const struct upstream *u, const msgpack_object *rpc)
{
    if (rpc == NULL || rpc->type != MSGPACK_OBJECT_STR) {
        return -1;
    }
    for (unsigned i = 0; i < u->n; i++) {
        if (strlen(u->rpc[i]) == rpc->via.str.size &&
            memcmp(u->rpc[i], rpc->via.str.ptr, rpc->via.str.size) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* The slot of replica @rpc, learnt now if new: a gone slot that is idle, else a new one.
 * Resolving blocks for a host name (lib/addr.h); a learnt address is an operator's, given to
 * `laurel ctl add`, and learnt once. @return the slot, or -1 (malformed, unresolvable, or no
 * room: the link goes on with the replicas it has). */
static int upstream__learn(struct upstream *u, const msgpack_object *rpc)
{
    char a[sizeof u->rpc[0]];
    struct sockaddr_storage sa;
    socklen_t salen;
    int i = upstream__replica_of(u, rpc);
    if (i >= 0 || rpc == NULL || rpc->type != MSGPACK_OBJECT_STR || rpc->via.str.size >= sizeof a) {
        return i;
    }
    memcpy(a, rpc->via.str.ptr, rpc->via.str.size);
    a[rpc->via.str.size] = '\0';
    if (addr_resolve(a, 0, &sa, &salen) != 0) {
        return -1;
    }
    for (unsigned k = 0; k < u->n && i < 0; k++) {
        if (u->gone[k] && u->conn[k].state == UC_IDLE && u->conn[k].inflight == NULL) {
            i = (int)k;
        }
    }
    if (i < 0 && u->n < UPSTREAM_MAX_REPLICAS) {
        i = (int)u->n++;
    }
    if (i < 0) {
        return -1;
    }
    memcpy(u->rpc[i], a, sizeof a);
    u->sa[i] = sa;
    u->salen[i] = salen;
    u->id[i] = 0;
    u->gone[i] = 0;
    u->quiet_until[i] = 0;
    u->conn[i].u = u;
    u->conn[i].idx = (unsigned)i;
    u->conn[i].state = UC_IDLE;
    if (u->log != NULL) {
        LOG(u->log, LOG_INFO, "upstream %s: learnt replica %s", u->region, a);
    }
    return i;
}

/* Is @id among the leader's "voters" @v? */
static int upstream__voter(const msgpack_object *v, uint64_t id)
{
    for (uint32_t k = 0; v && v->type == MSGPACK_OBJECT_ARRAY && k < v->via.array.size; k++) {
        int64_t x;
        if (proto_obj_i64(&v->via.array.ptr[k], &x) == 0 && (uint64_t)x == id) {
            return 1;
        }
    }
    return 0;
}

/* The leader's status: learn its peers, and mark gone the slots that left the configuration.
 * A slot whose id no leader named yet is marked gone only when this leader knows every
 * voter's address (its "peers" is complete), so a leader that never learnt an added
 * replica's address cannot make the link forget it. */
static void upstream__followed(void *data, int code, const msgpack_object *o)
{
    struct upstream *u = data;
    int named[UPSTREAM_MAX_REPLICAS] = {0};
    u->following = 0;
    if (u->closing || code != 0 || o == NULL) { /* a timeout has no payload */
        return;
    }
    const msgpack_object *role = proto_map_get(o, "role");
    const msgpack_object *voters = proto_map_get(o, "voters");
    const msgpack_object *peers = proto_map_get(o, "peers");
    if (role == NULL || role->type != MSGPACK_OBJECT_STR || role->via.str.size != 6 ||
        memcmp(role->via.str.ptr, "leader", 6) != 0 || voters == NULL ||
        voters->type != MSGPACK_OBJECT_ARRAY || peers == NULL ||
        peers->type != MSGPACK_OBJECT_ARRAY) {
        return;
    }
    for (uint32_t k = 0; k < peers->via.array.size; k++) {
        const msgpack_object *p = &peers->via.array.ptr[k];
        int64_t id;
        if (proto_obj_i64(proto_map_get(p, "id"), &id) != 0 || id <= 0) {
            continue;
        }
        int i = upstream__learn(u, proto_map_get(p, "rpc"));
        if (i >= 0) {
            u->id[i] = (uint64_t)id;
            u->gone[i] = 0;
            named[i] = 1;
        }
    }
    int complete = peers->via.array.size == voters->via.array.size;
    for (unsigned i = 0; i < u->n; i++) {
        int out = u->id[i] != 0 ? !upstream__voter(voters, u->id[i]) : complete && !named[i];
        if (out && !u->gone[i]) {
            u->gone[i] = 1;
            if (u->leader == (int)i) {
                u->leader = -1;
            }
            if (u->log != NULL) {
                LOG(u->log, LOG_INFO, "upstream %s: replica %s left the configuration", u->region,
                    u->rpc[i]);
            }
        }
    }
}

static void upstream__answer(struct upstream_conn *c, const struct proto_msg *m)
{
    struct upstream *u = c->u;
    struct upstream_req *r = upstream__find(c, m->id);
    uint64_t now = uv_now(u->loop);
    u->quiet_until[c->idx] = 0; /* it answers */
    if (r == NULL) {
        return; /* an abandoned attempt */
    }
    if (m->op_or_code == LR_ENOTLEADER) {
        u->leader = upstream__learn(u, proto_map_get(m->body, "leader_rpc"));
        if (u->leader >= 0) {
            u->gone[u->leader] = 0; /* it leads: it is a voter */
        }
        upstream__requeue(r, now);
        return;
    }
    if (m->op_or_code == LR_EUNAVAILABLE && m->body->type == MSGPACK_OBJECT_MAP) {
        /* No leader yet (an election): wait a little and ask again. */
        int64_t retry = UPSTREAM__RETRY_MS;
        const msgpack_object *ms = proto_map_get(m->body, "retry_ms");
        if (ms && proto_obj_i64(ms, &retry) == 0 && retry > UPSTREAM__RETRY_MAX_MS) {
            retry = UPSTREAM__RETRY_MAX_MS;
        }
        u->leader = -1;
        upstream__requeue(r, now + (uint64_t)(retry > 0 ? retry : UPSTREAM__RETRY_MS));
        return;
    }
    if (r->need_leader && m->op_or_code == 0) {
        u->leader = (int)c->idx; /* it answered as leader */
    }
    upstream__complete(r, m->op_or_code, m->body);
}

static void upstream__alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct upstream_conn *c = h->data;
    (void)hint;
    if (c->state == UC_AUTH) {
        authio_alloc(&c->auth, buf);
        return;
    }
    buf->base = c->u->rbuf;
    buf->len = sizeof c->u->rbuf;
}

static void upstream__read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct upstream_conn *c = s->data;
    const char *frame;
    size_t len;
    int rv;
    if (nread < 0) {
        if (c->state == UC_AUTH) {
            upstream_auth_failed(c->u, c->idx,
                                 "the replica closed the connection during the cluster-key "
                                 "handshake: does it have the same --cluster-key-file?");
        }
        upstream__conn_fail(c);
        return;
    }
    if (c->state == UC_AUTH) {
        if (nread > 0 && authio_read(&c->auth, s, nread) != 0) {
            upstream_auth_failed(c->u, c->idx, authio_why(&c->auth));
            upstream__conn_fail(c);
        } else if (authio_done(&c->auth)) {
            c->state = UC_READY;
            upstream__flush(c);
        }
        return;
    }
    if (proto_reader_feed(&c->rd, buf->base, (size_t)nread) != 0) {
        upstream__conn_fail(c);
        return;
    }
    while (c->state == UC_READY && (rv = proto_reader_next(&c->rd, &frame, &len)) == 1) {
        msgpack_unpacked up;
        struct proto_msg m;
        msgpack_unpacked_init(&up);
        if (proto_unpack(frame, len, &up) != 0 || proto_msg_decode(&up.data, &m) != 0) {
            msgpack_unpacked_destroy(&up);
            upstream__conn_fail(c);
            return;
        }
        upstream__answer(c, &m);
        msgpack_unpacked_destroy(&up);
    }
    if (c->state == UC_READY && rv < 0) {
        upstream__conn_fail(c);
    }
}

static void upstream__connected(uv_connect_t *req, int status)
{
    struct upstream_conn *c = req->data;
    if (status < 0) {
        upstream__conn_fail(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->state = c->u->key != NULL ? UC_AUTH : UC_READY;
    if (authio_start(&c->auth, (uv_stream_t *)&c->tcp, c->u->key, 1) != 0) {
        upstream__conn_fail(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, upstream__alloc, upstream__read);
    upstream__flush(c);
}

static int upstream__connect(struct upstream_conn *c)
{
    struct upstream *u = c->u;
    proto_reader_init(&c->rd);
    msgpack_sbuffer_init(&c->out);
    msgpack_sbuffer_init(&c->wbuf);
    uv_tcp_init(u->loop, &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    c->state = UC_CONNECTING;
    if (uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&u->sa[c->idx],
                       upstream__connected) != 0) {
        upstream__conn_fail(c);
    }
    return 0;
}

/* ---- sending ------------------------------------------------------------------------------------
 */

static void upstream__send(struct upstream_req *r)
{
    struct upstream *u = r->u;
    unsigned target;
    if (r->target >= 0) {
        target = (unsigned)r->target;
    } else if (u->leader >= 0 && r->need_leader) {
        target = (unsigned)u->leader;
    } else {
        /* The next replica that is a voter and not quiet; failing that, the next voter (all
         * gone cannot happen: a leader is a voter), so a region whose replicas all went quiet
         * is still asked. */
        uint64_t now = uv_now(u->loop);
        int voter = -1;
        target = u->n;
        for (unsigned k = 0; k < u->n && target == u->n; k++) {
            unsigned i = u->rr++ % u->n;
            if (!u->gone[i]) {
                voter = voter < 0 ? (int)i : voter;
                target = now >= u->quiet_until[i] ? i : u->n;
            }
        }
        if (target == u->n) {
            target = voter >= 0 ? (unsigned)voter : u->rr++ % u->n;
        }
    }
    struct upstream_conn *c = &u->conn[target];
    if (c->state == UC_CLOSING) {
        upstream__requeue(r, uv_now(u->loop) + UPSTREAM__TICK_MS);
        return;
    }
    if (c->state == UC_IDLE && upstream__connect(c) != 0) {
        upstream__complete(r, LR_EINVAL, NULL);
        return;
    }
    if (c->state == UC_CLOSING) { /* the connect failed at once */
        upstream__requeue(r, uv_now(u->loop) + UPSTREAM__RETRY_MS);
        return;
    }
    size_t mark;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &c->out, msgpack_sbuffer_write);
    r->id = ++u->next_id;
    proto_frame_begin(&c->out, &mark);
    proto_msg_begin(&pk, r->id, r->op);
    if (r->args) {
        msgpack_sbuffer_write(&c->out, r->args, r->len);
    } else {
        msgpack_pack_nil(&pk);
    }
    proto_frame_end(&c->out, mark);
    upstream__unlink(&u->queue, r);
    r->conn = c;
    upstream__link(&c->inflight, r);
    upstream__flush(c);
}

static void upstream__group_seal(struct upstream *u);

/* After this iteration's callbacks: send the calls they made. */
static void upstream__check(uv_check_t *h)
{
    struct upstream *u = h->data;
    if (!u->fresh) {
        return;
    }
    u->fresh = 0;
    upstream__group_seal(u);
    uint64_t now = uv_now(u->loop);
    for (struct upstream_req *r = u->queue, *next; r; r = next) {
        next = r->next;
        if (now >= r->not_before) {
            upstream__send(r);
        }
    }
}

static int upstream__enqueue(struct upstream *u, int replica, int op, int need_leader, char *args,
                             size_t len, uint64_t deadline, upstream_cb cb, void *data);

static void upstream__close_now(struct upstream *u);

static void upstream__tick(uv_timer_t *t)
{
    struct upstream *u = t->data;
    uint64_t now = uv_now(u->loop);
    if (u->close_later) {
        u->close_later = 0;
        upstream__close_now(u);
        return;
    }
    if (!u->following && now >= u->next_follow) {
        /* Not a need_leader call: a follower's status must not make it the leader. */
        u->next_follow = now + UPSTREAM__FOLLOW_MS;
        u->following = upstream__enqueue(u, u->leader, PROTO_OP_STATUS, 0, NULL, 0,
                                         now + UPSTREAM__FOLLOW_MS, upstream__followed, u) == 0;
    }
    for (struct upstream_req *r = u->queue, *next; r; r = next) {
        next = r->next;
        if (now >= r->deadline) {
            upstream__complete(r, LR_EUNAVAILABLE, NULL);
        } else if (now >= r->not_before) {
            upstream__send(r);
        }
    }
    for (unsigned i = 0; i < u->n; i++) {
        for (struct upstream_req *r = u->conn[i].inflight, *next; r; r = next) {
            next = r->next;
            if (now >= r->deadline) {
                /* No answer in time. A leader that froze (stopped, cut off) keeps its
                 * connection open, so nothing else would stop trusting it: every later call
                 * would go to it and time out too, long after the others elected a new
                 * leader. The next call asks around again; if the leader was only slow, a
                 * follower's redirect brings the call back to it. */
                if (r->need_leader && u->leader == (int)i) {
                    u->leader = -1;
                }
                u->quiet_until[i] = now + UPSTREAM__QUIET_MS;
                upstream__complete(r, LR_EUNAVAILABLE, NULL);
            }
        }
    }
}

/* Queue a call to be sent by the check handle; it owns @args (malloc'd, or NULL) when this
 * returns 0. */
static int upstream__enqueue(struct upstream *u, int replica, int op, int need_leader, char *args,
                             size_t len, uint64_t deadline, upstream_cb cb, void *data)
{
    struct upstream_req *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return LR_ENOMEM;
    }
    r->args = args;
    r->len = args ? len : 0;
    r->u = u;
    r->cb = cb;
    r->data = data;
    r->op = op;
    r->need_leader = need_leader;
    r->target = replica;
    r->deadline = deadline;
    r->not_before = uv_now(u->loop); /* sent by the check handle: never a callback in the call */
    upstream__link(&u->queue, r);
    u->fresh = 1;
    return 0;
}

/* ---- public
 * -------------------------------------------------------------------------------------- */

int upstream_new(uv_loop_t *loop, const char *region, const char *const *rpc, unsigned n,
                 struct upstream **out)
{
    if (n == 0 || n > UPSTREAM_MAX_REPLICAS) {
        return LR_EINVAL;
    }
    struct upstream *u = calloc(1, sizeof *u);
    if (u == NULL) {
        return LR_ENOMEM;
    }
    for (unsigned i = 0; i < n; i++) {
        int rv = strlen(rpc[i]) >= sizeof u->rpc[i]
                     ? LR_EINVAL
                     : addr_resolve(rpc[i], 0, &u->sa[i], &u->salen[i]);
        if (rv != 0) {
            free(u);
            return rv;
        }
    }
    u->loop = loop;
    snprintf(u->region, sizeof u->region, "%s", region);
    for (unsigned i = 0; i < n; i++) {
        snprintf(u->rpc[i], sizeof u->rpc[i], "%s", rpc[i]);
        u->conn[i].u = u;
        u->conn[i].idx = i;
        u->conn[i].state = UC_IDLE;
    }
    u->n = n;
    u->leader = -1;
    msgpack_sbuffer_init(&u->scratch);
    uv_timer_init(loop, &u->tick);
    u->tick.data = u;
    uv_timer_start(&u->tick, upstream__tick, UPSTREAM__TICK_MS, UPSTREAM__TICK_MS);
    uv_check_init(loop, &u->check);
    u->check.data = u;
    uv_check_start(&u->check, upstream__check);
    *out = u;
    return 0;
}

int upstream_call(struct upstream *u, int op, int need_leader, const char *args, size_t len,
                  unsigned timeout_ms, upstream_cb cb, void *data)
{
    return upstream_call_replica(u, -1, op, need_leader, args, len, timeout_ms, cb, data);
}

int upstream_call_replica(struct upstream *u, int replica, int op, int need_leader,
                          const char *args, size_t len, unsigned timeout_ms, upstream_cb cb,
                          void *data)
{
    char *copy = NULL;
    if (replica >= (int)u->n) {
        return LR_EINVAL;
    }
    if (u->closing) {
        return LR_EUNAVAILABLE;
    }
    if (args && (copy = malloc(len)) == NULL) {
        return LR_ENOMEM;
    }
    if (args) {
        memcpy(copy, args, len);
    }
    int rv = upstream__enqueue(u, replica, op, need_leader, copy, len, uv_now(u->loop) + timeout_ms,
                               cb, data);
    if (rv != 0) {
        free(copy);
    }
    return rv;
}

/* ---- group commit ------------------------------------------------------------------------ */

/* The element count and header length of the msgpack array that @p starts with. */
static int upstream__array_head(const char *p, size_t len, uint32_t *n, size_t *hlen)
{
    const unsigned char *b = (const unsigned char *)p;
    if (len >= 1 && (b[0] & 0xf0) == 0x90) {
        *n = b[0] & 0x0fu;
        *hlen = 1;
    } else if (len >= 3 && b[0] == 0xdc) {
        *n = (uint32_t)b[1] << 8 | b[2];
        *hlen = 3;
    } else if (len >= 5 && b[0] == 0xdd) {
        *n = (uint32_t)b[1] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 8 | b[4];
        *hlen = 5;
    } else {
        return LR_EINVAL;
    }
    return 0;
}

static void upstream__group_free(struct upstream__group *g)
{
    msgpack_sbuffer_destroy(&g->cmds);
    free(g->m);
    free(g);
}

/* Member @m's view of the group's answer @o: the same map with "results" narrowed to its
 * slice. The view borrows @o's objects (msgpack arrays are a pointer and a size), so nothing
 * is copied; @kv has room for @o's entries. @return 0, or LR_EINTERNAL when @o is not a
 * submit's answer for the whole group. */
static int upstream__member_view(const struct upstream__group *g, const struct upstream__member *m,
                                 const msgpack_object *o, msgpack_object_kv *kv,
                                 msgpack_object *view)
{
    int found = 0;
    if (o == NULL || o->type != MSGPACK_OBJECT_MAP) {
        return LR_EINTERNAL;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *e = &o->via.map.ptr[i];
        kv[i] = *e;
        if (e->key.type == MSGPACK_OBJECT_STR && e->key.via.str.size == 7 &&
            memcmp(e->key.via.str.ptr, "results", 7) == 0) {
            if (e->val.type != MSGPACK_OBJECT_ARRAY || e->val.via.array.size != g->ncmds) {
                return LR_EINTERNAL;
            }
            kv[i].val.via.array.ptr = e->val.via.array.ptr + m->first;
            kv[i].val.via.array.size = m->count;
            found = 1;
        }
    }
    view->type = MSGPACK_OBJECT_MAP;
    view->via.map.size = o->via.map.size;
    view->via.map.ptr = kv;
    return found ? 0 : LR_EINTERNAL;
}

/* The group's call answered (or failed): each member gets its slice, or the call's error. */
static void upstream__group_done(void *data, int code, const msgpack_object *payload)
{
    static const char malformed[] = "malformed answer to a grouped submit";
    struct upstream__group *g = data;
    msgpack_object_kv *kv = NULL;
    msgpack_object err;
    if (code == 0 && payload && payload->type == MSGPACK_OBJECT_MAP &&
        (kv = malloc((payload->via.map.size + 1) * sizeof *kv)) == NULL) {
        code = LR_ENOMEM;
        payload = NULL;
    }
    err.type = MSGPACK_OBJECT_STR;
    err.via.str.ptr = malformed;
    err.via.str.size = sizeof malformed - 1;
    for (uint32_t i = 0; i < g->nm; i++) {
        const struct upstream__member *m = &g->m[i];
        msgpack_object view;
        if (code != 0) {
            m->cb(m->data, code, payload);
        } else if (upstream__member_view(g, m, payload, kv, &view) != 0) {
            m->cb(m->data, LR_EINTERNAL, &err);
        } else {
            m->cb(m->data, 0, &view);
        }
    }
    free(kv);
    upstream__group_free(g);
}

/* Turn group @g into one submit call on the queue (the check handle sends it). When that
 * fails for memory, its members are answered LR_ENOMEM now: a member's callback never runs
 * inside its upstream_submit, and sealing happens only after it returned. */
static void upstream__group_enqueue(struct upstream *u, struct upstream__group *g)
{
    msgpack_sbuffer args;
    msgpack_packer pk;
    msgpack_sbuffer_init(&args);
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    if (msgpack_pack_array(&pk, g->ncmds) != 0 ||
        msgpack_sbuffer_write(&args, g->cmds.data, g->cmds.size) != 0 ||
        upstream__enqueue(u, -1, PROTO_OP_SUBMIT, 1, args.data, args.size, g->deadline,
                          upstream__group_done, g) != 0) {
        msgpack_sbuffer_destroy(&args);
        upstream__group_done(g, LR_ENOMEM, NULL);
        return;
    }
    /* The queued call owns args.data now. */
    u->stats.rpcs++;
}

/* Queue this iteration's groups as calls, so that they leave in the order their members
 * called: the queue sends from its head and links at its head, so the newest goes in first. */
static void upstream__group_seal(struct upstream *u)
{
    if (u->group) {
        upstream__group_enqueue(u, u->group);
        u->group = NULL;
    }
    while (u->full) {
        struct upstream__group *g = u->full;
        u->full = g->next;
        upstream__group_enqueue(u, g);
    }
}

int upstream_submit(struct upstream *u, const char *args, size_t len, unsigned timeout_ms,
                    upstream_cb cb, void *data)
{
    uint32_t n;
    size_t hlen;
    uint64_t deadline = uv_now(u->loop) + timeout_ms;
    if (upstream__array_head(args, len, &n, &hlen) != 0 || n == 0 || n > UPSTREAM_SUBMIT_MAX) {
        return LR_EINVAL;
    }
    if (u->closing) {
        return LR_EUNAVAILABLE;
    }
    if (u->group && u->group->ncmds + n > UPSTREAM_SUBMIT_MAX) {
        u->group->next = u->full; /* full: this submit starts a group of its own */
        u->full = u->group;
        u->group = NULL;
    }
    struct upstream__group *g = u->group;
    if (g == NULL) {
        if ((g = calloc(1, sizeof *g)) == NULL) {
            return LR_ENOMEM;
        }
        g->u = u;
        g->deadline = deadline;
        msgpack_sbuffer_init(&g->cmds);
    }
    if (g->nm == g->capm) {
        uint32_t cap = g->capm ? g->capm * 2 : 16;
        struct upstream__member *m = realloc(g->m, cap * sizeof *m);
        if (m == NULL) {
            goto err_after_group;
        }
        g->m = m;
        g->capm = cap;
    }
    if (msgpack_sbuffer_write(&g->cmds, args + hlen, len - hlen) != 0) {
        goto err_after_group;
    }
    g->m[g->nm++] = (struct upstream__member){cb, data, g->ncmds, n};
    g->ncmds += n;
    if (deadline < g->deadline) {
        g->deadline = deadline;
    }
    u->group = g;
    u->fresh = 1;
    u->stats.submits++;
    u->stats.cmds += n;
    return 0;

err_after_group:
    if (g != u->group) {
        upstream__group_free(g); /* a fresh group of no member */
    }
    return LR_ENOMEM;
}

void upstream_stats_get(const struct upstream *u, struct upstream_stats *out)
{
    *out = u->stats;
}

int upstream_leader(const struct upstream *u)
{
    return u->leader;
}

unsigned upstream_replicas(const struct upstream *u)
{
    return u->n;
}

const char *upstream_address(const struct upstream *u, unsigned i)
{
    return i < u->n ? u->rpc[i] : NULL;
}

int upstream_gone(const struct upstream *u, unsigned i)
{
    return i < u->n && u->gone[i];
}

const struct sockaddr *upstream_sockaddr(const struct upstream *u, unsigned i)
{
    return i < u->n ? (const struct sockaddr *)&u->sa[i] : NULL;
}

const char *upstream_region(const struct upstream *u)
{
    return u->region;
}

static void upstream__tick_closed(uv_handle_t *h)
{
    struct upstream *u = h->data;
    if (--u->open_handles == 0) {
        if (u->done) {
            u->done(u->done_data);
        }
        msgpack_sbuffer_destroy(&u->scratch);
        free(u);
    }
}

void upstream_close(struct upstream *u, void (*done)(void *data), void *data)
{
    u->done = done;
    u->done_data = data;
    /* Closing first: a completion below may call upstream_call on this link (a route's next
     * step), which must then be refused at once rather than queued behind a closed loop. */
    u->closing = 1;
    if (u->in_cb > 0) {
        u->close_later = 1;
        uv_timer_start(&u->tick, upstream__tick, 0, UPSTREAM__TICK_MS);
        return;
    }
    upstream__close_now(u);
}

static void upstream__close_now(struct upstream *u)
{
    upstream__group_seal(u); /* its members are failed with the queue below */
    while (u->queue) {
        upstream__complete(u->queue, LR_EUNAVAILABLE, NULL);
    }
    for (unsigned i = 0; i < u->n; i++) {
        while (u->conn[i].inflight) {
            upstream__complete(u->conn[i].inflight, LR_EUNAVAILABLE, NULL);
        }
    }
    u->open_handles = 2; /* the tick and the check */
    for (unsigned i = 0; i < u->n; i++) {
        struct upstream_conn *c = &u->conn[i];
        if (c->state == UC_CONNECTING || c->state == UC_AUTH || c->state == UC_READY) {
            c->state = UC_CLOSING;
            u->open_handles++;
            uv_close((uv_handle_t *)&c->tcp, upstream__conn_closed);
        } else if (c->state == UC_CLOSING) {
            u->open_handles++; /* its close callback is already on the way */
        }
    }
    uv_timer_stop(&u->tick);
    uv_close((uv_handle_t *)&u->tick, upstream__tick_closed);
    uv_check_stop(&u->check);
    uv_close((uv_handle_t *)&u->check, upstream__tick_closed);
}

void upstream_set_key(struct upstream *u, const struct peerauth_key *key, struct logger *log)
{
    u->key = key;
    u->log = log;
}

const struct peerauth_key *upstream_key(const struct upstream *u)
{
    return u->key;
}

void upstream_auth_failed(struct upstream *u, unsigned i, const char *why)
{
    uint64_t suppressed;
    u->stats.auth_failures++;
    if (u->log != NULL && log_limit_allow(&u->auth_log, uv_now(u->loop), &suppressed)) {
        LOG(u->log, LOG_WARN,
            "upstream %s: replica %s refused or failed the cluster-key handshake: %s (%llu more "
            "not logged)",
            u->region, i < u->n ? u->rpc[i] : "?", why, (unsigned long long)suppressed);
    }
}
