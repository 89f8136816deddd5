/* router/evstream.c — one region's committed-event stream, followed (see evstream.h).
 *
 * States. IDLE (no connection; a tick starts one when retry_at is due), STATUS (asking the
 * replica's applied index: only when the stream has no index to resume from), CONNECTING,
 * OPEN (the `subscribe` is written and frames are read) and CLOSING (the TCP handle is being
 * closed; its close callback moves on to the next replica, back to IDLE). A bounded stream that
 * ended stays IDLE with @ended set and starts nothing again.
 *
 * Why a connection of its own rather than an upstream call: a subscription answers one
 * request with frames for as long as it lives, which upstream.c's one-answer calls do not
 * model. The stream still dials the upstream's addresses and asks `status` through it, so both
 * agree on which replicas a region has.
 *
 * Exactly once. @next is the index to subscribe from: the one after the last delivered, so a
 * reconnect (to any replica: they all hold the same log) resumes without a gap, and an entry
 * below it, which a replica may resend, is dropped. Entries that produced no events have no
 * frame, so indexes are not contiguous and a gap cannot be seen from them: a trimmed log is
 * what the replica says (LR_ENOTFOUND, naming the first index it still serves), and it becomes
 * EVSTREAM_RESYNC. A replica that installed a snapshot serves the events the snapshot covers
 * from the event log inside it (node/node_sub.c), so an install is no gap by itself.
 *
 * Re-entrancy. The callback may close the stream: after each callback the frame loop looks at
 * @closing before it touches anything else. */
#include "evstream.h"

#include <stdlib.h>
#include <string.h>

#include "../lib/err.h"
#include "../proto/authio.h"
#include "../proto/proto.h"

#define EVSTREAM__TICK_MS 100  /* the state machine's period */
#define EVSTREAM__RETRY_MS 200 /* before trying the next replica */
#define EVSTREAM__DEAD_MS 5000 /* a stream silent this long is dead (heartbeats: 1 s) */

enum evstream__state { ES_IDLE, ES_STATUS, ES_CONNECTING, ES_OPEN, ES_CLOSING };

struct evstream {
    uv_loop_t *loop;
    struct upstream *u; /* borrowed until evstream_close */
    evstream_cb cb;
    void *data;
    unsigned timeout_ms;
    uint64_t stop; /* the last index to deliver; 0: no end */
    int applied;   /* deliver heartbeats (evstream_config.applied) */
    int leader;    /* move to the leader (evstream_config.leader) */
    int move_to;   /* the replica a move to the leader goes to, or -1 */
    uint64_t next; /* the index to subscribe from; 0: learn it from the replica's status */
    uint64_t last; /* the last index delivered */
    unsigned replica;
    enum evstream__state state;
    struct authio auth; /* while ES_CONNECTING after TCP connected, with a cluster key */
    int authing;
    int ended;          /* bounded: EVSTREAM_END fired */
    int closing;        /* evstream_close was called */
    int status_pending; /* an upstream call holds @s as its data */
    unsigned handles;   /* open uv handles: the tick, and the TCP one from connect to close */
    uint64_t retry_at, last_rx, connects;
    void (*done)(void *data);
    void *done_data;
    uv_timer_t tick;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    struct proto_reader rd;
    msgpack_sbuffer out;
    char rbuf[64 * 1024];
};

static uint64_t evstream__now(const struct evstream *s)
{
    return uv_now(s->loop);
}

/* Free @s once evstream_close was called and nothing of it is left on the loop. */
static void evstream__maybe_done(struct evstream *s)
{
    if (!s->closing || s->handles > 0 || s->status_pending) {
        return;
    }
    void (*done)(void *) = s->done;
    void *dd = s->done_data;
    proto_reader_free(&s->rd);
    msgpack_sbuffer_destroy(&s->out);
    free(s);
    if (done) {
        done(dd);
    }
}

/* After a failure: the next replica, after a pause. */
static void evstream__next_replica(struct evstream *s)
{
    s->replica = (s->replica + 1) % upstream_replicas(s->u);
    s->retry_at = evstream__now(s) + EVSTREAM__RETRY_MS;
}

static void evstream__tcp_closed(uv_handle_t *h)
{
    struct evstream *s = h->data;
    s->handles--;
    proto_reader_free(&s->rd);
    proto_reader_init(&s->rd);
    s->state = ES_IDLE;
    if (!s->closing && !s->ended && s->move_to >= 0) { /* a move, not a failure: no pause */
        s->replica = (unsigned)s->move_to;
        s->retry_at = evstream__now(s);
        s->move_to = -1;
    } else if (!s->closing && !s->ended) { /* closing: the upstream may be gone already */
        evstream__next_replica(s);
    }
    evstream__maybe_done(s);
}

/* Drop the connection, if any; unless the stream ended or is closing, a later tick starts
 * another one. */
static void evstream__drop(struct evstream *s)
{
    if (s->state == ES_CONNECTING || s->state == ES_OPEN) {
        uv_read_stop((uv_stream_t *)&s->tcp);
        s->state = ES_CLOSING;
        uv_close((uv_handle_t *)&s->tcp, evstream__tcp_closed);
    }
}

static void evstream__deliver(struct evstream *s, enum evstream_what what, uint64_t index,
                              const msgpack_object *events)
{
    struct evstream_batch b = {what, index, events};
    s->cb(s->data, &b);
}

/* A bounded stream is done: drop its connection for good and say so. */
static void evstream__end(struct evstream *s)
{
    s->ended = 1;
    evstream__drop(s);
    evstream__deliver(s, EVSTREAM_END, 0, NULL);
}

/* The replica no longer holds @next; it serves from @first on (0: it did not say). */
static void evstream__resync(struct evstream *s, uint64_t first)
{
    s->next = 0; /* a live stream starts again from the present */
    evstream__deliver(s, EVSTREAM_RESYNC, first, NULL);
    if (s->stop != 0 && !s->closing) {
        evstream__end(s); /* the entries up to its stop cannot all come any more */
    }
}

/* One frame: 0 to read on; -1 when the connection must be dropped; 1 when the stream ended
 * or was closed (the connection is handled already). */
static int evstream__frame(struct evstream *s, const char *p, size_t n)
{
    msgpack_unpacked up;
    struct proto_msg m;
    int64_t idx;
    int rv = -1;
    msgpack_unpacked_init(&up);
    if (proto_unpack(p, n, &up) != 0 || proto_msg_decode(&up.data, &m) != 0) {
        goto out;
    }
    if (m.op_or_code != 0) {
        if (m.op_or_code == LR_ENOTFOUND) {
            /* {"message", "first_index"} (docs/rpc.md); a bare sentence from an older replica */
            int64_t first = 0;
            if (m.body->type == MSGPACK_OBJECT_MAP &&
                (proto_obj_i64(proto_map_get(m.body, "first_index"), &first) != 0 || first < 0)) {
                first = 0;
            }
            evstream__resync(s, (uint64_t)first);
            rv = s->closing || s->ended ? 1 : -1;
        }
        goto out; /* any other error: try another replica */
    }
    const msgpack_object *ap = proto_map_get(m.body, "applied");
    if (ap != NULL) { /* a heartbeat: nothing before its index is pending */
        if (proto_obj_i64(ap, &idx) != 0) {
            goto out; /* malformed: try another replica */
        }
        if (s->stop != 0 && (uint64_t)idx >= s->stop) {
            evstream__end(s);
            rv = 1;
            goto out;
        }
        /* Every event up to it was sent on this connection: a reconnect may resume after it,
         * so indexes without events (barriers, plain commands) do not pile up behind the
         * resume point until the replica's event log no longer holds it. */
        if (idx > 0 && s->next != 0 && (uint64_t)idx + 1 > s->next) {
            s->next = (uint64_t)idx + 1;
        }
        if (s->applied && idx > 0) {
            evstream__deliver(s, EVSTREAM_APPLIED, (uint64_t)idx, NULL);
            rv = s->closing ? 1 : 0;
            goto out;
        }
        rv = 0;
        goto out;
    }
    const msgpack_object *evs = proto_map_get(m.body, "events");
    if (proto_obj_i64(proto_map_get(m.body, "index"), &idx) != 0 || idx < 1 || evs == NULL ||
        evs->type != MSGPACK_OBJECT_ARRAY) {
        goto out;
    }
    if ((uint64_t)idx < s->next) {
        rv = 0; /* already delivered: never twice */
        goto out;
    }
    if (s->stop != 0 && (uint64_t)idx > s->stop) {
        evstream__end(s);
        rv = 1;
        goto out;
    }
    s->last = (uint64_t)idx;
    s->next = (uint64_t)idx + 1;
    evstream__deliver(s, EVSTREAM_EVENTS, s->last, evs);
    if (s->closing) {
        rv = 1;
    } else if (s->stop != 0 && s->last >= s->stop) {
        evstream__end(s);
        rv = 1;
    } else {
        rv = 0;
    }
out:
    msgpack_unpacked_destroy(&up);
    return rv;
}

static void evstream__alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct evstream *s = h->data;
    (void)hint;
    if (s->authing) {
        authio_alloc(&s->auth, buf);
        return;
    }
    buf->base = s->rbuf;
    buf->len = sizeof s->rbuf;
}

static void evstream__auth_read(struct evstream *s, uv_stream_t *st, ssize_t nread);
static void evstream__subscribe(struct evstream *s);

static void evstream__read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct evstream *s = st->data;
    const char *p;
    size_t n;
    int got, rv;
    if (nread == 0) {
        return;
    }
    if (s->authing) {
        evstream__auth_read(s, st, nread);
        return;
    }
    if (nread < 0 || proto_reader_feed(&s->rd, buf->base, (size_t)nread) != 0) {
        evstream__drop(s);
        return;
    }
    s->last_rx = evstream__now(s);
    while ((got = proto_reader_next(&s->rd, &p, &n)) == 1) {
        if ((rv = evstream__frame(s, p, n)) != 0) {
            if (rv < 0) {
                evstream__drop(s);
            }
            return;
        }
    }
    if (got != 0) {
        evstream__drop(s);
    }
}

static void evstream__auth_read(struct evstream *s, uv_stream_t *st, ssize_t nread)
{
    if (nread < 0 || authio_read(&s->auth, st, nread) != 0) {
        upstream_auth_failed(s->u, s->replica,
                             nread < 0 ? "the replica closed the event stream during the "
                                         "cluster-key handshake: does it have the same "
                                         "--cluster-key-file?"
                                       : authio_why(&s->auth));
        s->authing = 0;
        evstream__drop(s);
        return;
    }
    if (authio_done(&s->auth)) {
        s->authing = 0;
        uv_read_stop(st); /* evstream__subscribe starts reading again */
        evstream__subscribe(s);
    }
}

static void evstream__written(uv_write_t *w, int status)
{
    struct evstream *s = w->data;
    msgpack_sbuffer_clear(&s->out);
    if (status < 0 && s->state == ES_OPEN) {
        evstream__drop(s);
    }
}

/* Connected (and authenticated, with a cluster key): subscribe. */
static void evstream__subscribe(struct evstream *s)
{
    msgpack_packer pk;
    size_t mark;
    s->state = ES_OPEN;
    s->last_rx = evstream__now(s);
    s->connects++;
    msgpack_sbuffer_clear(&s->out);
    proto_frame_begin(&s->out, &mark);
    msgpack_packer_init(&pk, &s->out, msgpack_sbuffer_write);
    proto_msg_begin(&pk, 1, PROTO_OP_SUBSCRIBE);
    msgpack_pack_map(&pk, 1);
    proto_pack_key(&pk, "from");
    msgpack_pack_uint64(&pk, s->next);
    proto_frame_end(&s->out, mark);
    uv_buf_t b = uv_buf_init(s->out.data, (unsigned)s->out.size);
    s->wreq.data = s;
    if (uv_write(&s->wreq, (uv_stream_t *)&s->tcp, &b, 1, evstream__written) != 0 ||
        uv_read_start((uv_stream_t *)&s->tcp, evstream__alloc, evstream__read) != 0) {
        evstream__drop(s);
    }
}

static void evstream__connected(uv_connect_t *c, int status)
{
    struct evstream *s = c->data;
    if (status < 0 || s->state != ES_CONNECTING) {
        if (s->state == ES_CONNECTING) {
            evstream__drop(s);
        }
        return;
    }
    if (upstream_key(s->u) == NULL) {
        evstream__subscribe(s);
        return;
    }
    /* The cluster-key handshake first; still ES_CONNECTING, so its silence times out alike. */
    s->authing = 1;
    if (authio_start(&s->auth, (uv_stream_t *)&s->tcp, upstream_key(s->u), 1) != 0 ||
        uv_read_start((uv_stream_t *)&s->tcp, evstream__alloc, evstream__read) != 0) {
        s->authing = 0;
        evstream__drop(s);
    }
}

static void evstream__connect(struct evstream *s)
{
    const struct sockaddr *sa = upstream_sockaddr(s->u, s->replica);
    if (sa == NULL || uv_tcp_init(s->loop, &s->tcp) != 0) {
        s->retry_at = evstream__now(s) + EVSTREAM__RETRY_MS; /* the same replica again */
        return;
    }
    s->handles++;
    s->tcp.data = s;
    s->creq.data = s;
    s->state = ES_CONNECTING;
    s->authing = 0;
    s->last_rx = evstream__now(s);
    uv_tcp_nodelay(&s->tcp, 1);
    if (uv_tcp_connect(&s->creq, &s->tcp, sa, evstream__connected) != 0) {
        evstream__drop(s);
    }
}

static void evstream__status_cb(void *data, int code, const msgpack_object *payload)
{
    struct evstream *s = data;
    int64_t applied;
    s->status_pending = 0;
    if (s->closing) {
        evstream__maybe_done(s);
        return;
    }
    s->state = ES_IDLE;
    if (code != 0 || proto_obj_i64(proto_map_get(payload, "applied_index"), &applied) != 0) {
        evstream__next_replica(s);
        return;
    }
    /* From the present, but never behind what was delivered: after a resync the replica asked
     * may lag the one that said the log was trimmed, and an index is delivered once. */
    s->next = (uint64_t)applied + 1 > s->last + 1 ? (uint64_t)applied + 1 : s->last + 1;
    evstream__connect(s);
}

/* Start an idle stream that is due: from where it stands, or from the present. */
static void evstream__start(struct evstream *s)
{
    if (s->next != 0) {
        evstream__connect(s);
        return;
    }
    s->state = ES_STATUS;
    s->status_pending = 1;
    if (upstream_call_replica(s->u, (int)s->replica, PROTO_OP_STATUS, 0, NULL, 0, s->timeout_ms,
                              evstream__status_cb, s) != 0) {
        s->status_pending = 0;
        s->state = ES_IDLE;
        s->retry_at = evstream__now(s) + EVSTREAM__RETRY_MS;
    }
}

static void evstream__tick(uv_timer_t *t)
{
    struct evstream *s = t->data;
    uint64_t now = evstream__now(s);
    if (s->closing || s->ended) {
        return;
    }
    if (s->state == ES_IDLE && now >= s->retry_at) {
        evstream__start(s);
    } else if ((s->state == ES_OPEN || s->state == ES_CONNECTING) &&
               now - s->last_rx > EVSTREAM__DEAD_MS) {
        evstream__drop(s);
    } else if (s->leader && s->state == ES_OPEN && s->move_to < 0) {
        /* The leader applies an entry first: a follower learns its commit only with the next
         * append, up to a heartbeat later, and a reader waiting for that index would wait. */
        int l = upstream_leader(s->u);
        if (l >= 0 && (unsigned)l != s->replica) {
            s->move_to = l;
            evstream__drop(s);
        }
    }
}

/* ---- public ---------------------------------------------------------------------------------- */

int evstream_new(uv_loop_t *loop, struct upstream *u, const struct evstream_config *cfg,
                 evstream_cb cb, void *data, struct evstream **out)
{
    if (cfg->replica >= upstream_replicas(u) ||
        (cfg->stop != 0 && (cfg->from == 0 || cfg->from > cfg->stop))) {
        return LR_EINVAL;
    }
    struct evstream *s = calloc(1, sizeof *s);
    if (s == NULL) {
        return LR_ENOMEM;
    }
    s->loop = loop;
    s->u = u;
    s->cb = cb;
    s->data = data;
    s->timeout_ms = cfg->timeout_ms;
    s->stop = cfg->stop;
    s->applied = cfg->applied;
    s->leader = cfg->leader;
    s->move_to = -1;
    s->next = cfg->from;
    s->replica = cfg->replica;
    proto_reader_init(&s->rd);
    msgpack_sbuffer_init(&s->out);
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    s->handles = 1;
    /* The first start runs from the loop (a timeout of 0), so nothing fires from in here. */
    uv_timer_start(&s->tick, evstream__tick, 0, EVSTREAM__TICK_MS);
    *out = s;
    return 0;
}

static void evstream__tick_closed(uv_handle_t *h)
{
    struct evstream *s = h->data;
    s->handles--;
    evstream__maybe_done(s);
}

void evstream_close(struct evstream *s, void (*done)(void *data), void *data)
{
    s->closing = 1;
    s->done = done;
    s->done_data = data;
    evstream__drop(s);
    uv_close((uv_handle_t *)&s->tick, evstream__tick_closed);
}

void evstream_stats_get(const struct evstream *s, struct evstream_stats *st)
{
    st->index = s->last;
    st->position = s->next > 0 ? s->next - 1 : 0;
    st->connects = s->connects;
    st->subscribed = s->state == ES_OPEN ? (int)s->replica : -1;
    st->replica = s->replica;
}
