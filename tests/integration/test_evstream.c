/* tests/integration/test_evstream.c — the committed-event stream follower (router/evstream.h)
 * against scripted replicas over loopback: each a uv TCP server in this process that speaks
 * the replica RPC's `status` and `subscribe` (docs/rpc.md) over a log where every index up to
 * its applied one holds one event. Scenarios: start from the present, move to another replica
 * and resume without a duplicate, resync on a trimmed log, bounded streams and their end, and
 * the callback contract (never from inside evstream_new/evstream_close, close from inside). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/err.h"
#include "proto/proto.h"
#include "router/evstream.h"
#include "router/upstream.h"
#include "tests/lib/testlib.h"

#define MAX_SEEN 64

/* ---- a scripted replica -------------------------------------------------------------------- */

struct replica;

struct rconn {
    uv_tcp_t tcp;
    struct replica *r;
    struct proto_reader rd;
    uint64_t sub_id; /* the subscribe's request id, 0 when none */
    struct rconn *next;
};

struct replica {
    uv_loop_t *loop;
    uv_tcp_t server;
    int listening;
    char addr[64];
    uint64_t applied;  /* the last index of its log (and of `status`) */
    uint64_t trimmed;  /* a subscribe from below this gets LR_ENOTFOUND */
    unsigned resend;   /* serve this many entries before the asked index, as a retry might */
    uint64_t from[16]; /* every subscribe's from, in order */
    unsigned nsubs;
    struct rconn *conns;
};

struct wreq {
    uv_write_t w;
    msgpack_sbuffer sb;
};

static void written(uv_write_t *w, int status)
{
    struct wreq *q = (struct wreq *)w;
    (void)status;
    msgpack_sbuffer_destroy(&q->sb);
    free(q);
}

/* One response frame: @id, @code, then the body @pack writes (nil when NULL). */
static void reply(struct rconn *c, uint64_t id, int code,
                  void (*pack)(msgpack_packer *pk, uint64_t arg), uint64_t arg)
{
    struct wreq *q = calloc(1, sizeof *q);
    msgpack_packer pk;
    size_t mark;
    msgpack_sbuffer_init(&q->sb);
    msgpack_packer_init(&pk, &q->sb, msgpack_sbuffer_write);
    proto_frame_begin(&q->sb, &mark);
    proto_msg_begin(&pk, id, code);
    if (pack) {
        pack(&pk, arg);
    } else {
        msgpack_pack_nil(&pk);
    }
    proto_frame_end(&q->sb, mark);
    uv_buf_t b = uv_buf_init(q->sb.data, (unsigned)q->sb.size);
    assert_int_equal(uv_write(&q->w, (uv_stream_t *)&c->tcp, &b, 1, written), 0);
}

static void pack_status(msgpack_packer *pk, uint64_t applied)
{
    msgpack_pack_map(pk, 1);
    proto_pack_key(pk, "applied_index");
    msgpack_pack_uint64(pk, applied);
}

static void pack_entry(msgpack_packer *pk, uint64_t index)
{
    msgpack_pack_map(pk, 2);
    proto_pack_key(pk, "index");
    msgpack_pack_uint64(pk, index);
    proto_pack_key(pk, "events");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 1);
    proto_pack_key(pk, "index");
    msgpack_pack_uint64(pk, index);
}

static void pack_heartbeat(msgpack_packer *pk, uint64_t applied)
{
    msgpack_pack_map(pk, 1);
    proto_pack_key(pk, "applied");
    msgpack_pack_uint64(pk, applied);
}

static void rconn_closed(uv_handle_t *h)
{
    struct rconn *c = h->data;
    struct replica *r = c->r;
    for (struct rconn **p = &r->conns; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    proto_reader_free(&c->rd);
    free(c);
}

static void rconn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(hint);
    buf->len = hint;
}

static void rconn_request(struct rconn *c, const struct proto_msg *m)
{
    struct replica *r = c->r;
    if (m->op_or_code == PROTO_OP_STATUS) {
        reply(c, m->id, 0, pack_status, r->applied);
        return;
    }
    assert_int_equal(m->op_or_code, PROTO_OP_SUBSCRIBE);
    int64_t from;
    assert_int_equal(proto_obj_i64(proto_map_get(m->body, "from"), &from), 0);
    r->from[r->nsubs++] = (uint64_t)from;
    if ((uint64_t)from < r->trimmed) {
        reply(c, m->id, LR_ENOTFOUND, NULL, 0);
        return;
    }
    c->sub_id = m->id;
    uint64_t first = (uint64_t)from > r->resend ? (uint64_t)from - r->resend : 1;
    for (uint64_t i = first; i <= r->applied; i++) {
        reply(c, m->id, 0, pack_entry, i);
    }
    reply(c, m->id, 0, pack_heartbeat, r->applied);
}

static void rconn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct rconn *c = s->data;
    const char *p;
    size_t n;
    if (nread < 0) {
        if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
            uv_close((uv_handle_t *)&c->tcp, rconn_closed);
        }
    } else if (nread > 0) {
        assert_int_equal(proto_reader_feed(&c->rd, buf->base, (size_t)nread), 0);
        while (proto_reader_next(&c->rd, &p, &n) == 1) {
            msgpack_unpacked up;
            struct proto_msg m;
            msgpack_unpacked_init(&up);
            assert_int_equal(proto_unpack(p, n, &up), 0);
            assert_int_equal(proto_msg_decode(&up.data, &m), 0);
            rconn_request(c, &m);
            msgpack_unpacked_destroy(&up);
        }
    }
    free(buf->base);
}

static void replica_accept(uv_stream_t *server, int status)
{
    struct replica *r = server->data;
    assert_int_equal(status, 0);
    struct rconn *c = calloc(1, sizeof *c);
    c->r = r;
    proto_reader_init(&c->rd);
    uv_tcp_init(r->loop, &c->tcp);
    c->tcp.data = c;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
    c->next = r->conns;
    r->conns = c;
    uv_read_start((uv_stream_t *)&c->tcp, rconn_alloc, rconn_read);
}

static void replica_start(struct replica *r, uv_loop_t *loop, uint64_t applied)
{
    struct sockaddr_in sa;
    struct sockaddr_storage name;
    int len = sizeof name;
    memset(r, 0, sizeof *r);
    r->loop = loop;
    r->applied = applied;
    uv_ip4_addr("127.0.0.1", 0, &sa);
    uv_tcp_init(loop, &r->server);
    r->server.data = r;
    assert_int_equal(uv_tcp_bind(&r->server, (const struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&r->server, 16, replica_accept), 0);
    uv_tcp_getsockname(&r->server, (struct sockaddr *)&name, &len);
    snprintf(r->addr, sizeof r->addr, "127.0.0.1:%u",
             ntohs(((struct sockaddr_in *)&name)->sin_port));
    r->listening = 1;
}

/* A new entry at the end of the log, sent to its subscribers. */
static void replica_append(struct replica *r)
{
    r->applied++;
    for (struct rconn *c = r->conns; c; c = c->next) {
        if (c->sub_id != 0 && !uv_is_closing((uv_handle_t *)&c->tcp)) {
            reply(c, c->sub_id, 0, pack_entry, r->applied);
        }
    }
}

/* Drop every connection and, with @stop, refuse new ones (a replica that died). */
static void replica_kill(struct replica *r, int stop)
{
    for (struct rconn *c = r->conns; c; c = c->next) {
        if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
            uv_close((uv_handle_t *)&c->tcp, rconn_closed);
        }
    }
    if (stop && r->listening) {
        r->listening = 0;
        uv_close((uv_handle_t *)&r->server, NULL);
    }
}

/* ---- fixture --------------------------------------------------------------------------------- */

struct fixture {
    uv_loop_t loop;
    struct replica r[2];
    unsigned nr;
    struct upstream *u;
    struct evstream *s;
    /* what the callback saw */
    uint64_t seen[MAX_SEEN];
    unsigned nseen, resyncs, ends, after_end;
    int close_on_end;
    int in_call; /* set around evstream_new/evstream_close: the callback must not fire then */
    int closed;  /* evstream_close's done fired (count) */
};

static void on_batch(void *data, const struct evstream_batch *b)
{
    struct fixture *f = data;
    assert_false(f->in_call);
    if (f->ends > 0) {
        f->after_end++;
    }
    if (b->what == EVSTREAM_EVENTS) {
        assert_int_equal(b->events->type, MSGPACK_OBJECT_ARRAY);
        assert_true(f->nseen < MAX_SEEN);
        f->seen[f->nseen++] = b->index;
    } else if (b->what == EVSTREAM_RESYNC) {
        f->resyncs++;
    } else {
        assert_int_equal(b->what, EVSTREAM_END);
        f->ends++;
        if (f->close_on_end) {
            f->in_call = 1;
            evstream_close(f->s, NULL, NULL);
            f->in_call = 0;
            f->s = NULL;
        }
    }
}

static void on_closed(void *data)
{
    struct fixture *f = data;
    assert_false(f->in_call);
    f->closed++;
}

static void upstream_closed(void *data)
{
    *(int *)data = 1;
}

/* Start @nr replicas at @applied and an upstream over them. */
static struct fixture *fixture_new(unsigned nr, uint64_t applied)
{
    struct fixture *f = calloc(1, sizeof *f);
    const char *rpc[2];
    uv_loop_init(&f->loop);
    for (unsigned i = 0; i < nr; i++) {
        replica_start(&f->r[i], &f->loop, applied);
        rpc[i] = f->r[i].addr;
    }
    f->nr = nr;
    assert_int_equal(upstream_new(&f->loop, "eu", rpc, nr, &f->u), 0);
    return f;
}

static void follow(struct fixture *f, uint64_t from, uint64_t stop)
{
    struct evstream_config cfg = {.from = from, .stop = stop, .replica = 0, .timeout_ms = 2000};
    f->in_call = 1;
    assert_int_equal(evstream_new(&f->loop, f->u, &cfg, on_batch, f, &f->s), 0);
    f->in_call = 0;
}

/* Run the loop until @done or 5 s of loop time. */
static void run_until(struct fixture *f, int (*done)(const struct fixture *f))
{
    uint64_t deadline = uv_now(&f->loop) + 5000;
    while (!done(f) && uv_now(&f->loop) < deadline) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_true(done(f));
}

/* Run the loop for about @ms. */
static void run_for(struct fixture *f, uint64_t ms)
{
    uint64_t deadline = uv_now(&f->loop) + ms;
    while (uv_now(&f->loop) < deadline) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
}

static void fixture_free(struct fixture *f)
{
    int up_closed = 0;
    if (f->s) {
        f->in_call = 1;
        evstream_close(f->s, on_closed, f);
        f->in_call = 0;
    }
    upstream_close(f->u, upstream_closed, &up_closed);
    for (unsigned i = 0; i < f->nr; i++) {
        replica_kill(&f->r[i], 1);
    }
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_true(up_closed);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
}

static int subscribed_once(const struct fixture *f)
{
    return f->r[0].nsubs >= 1;
}
static int saw_two(const struct fixture *f)
{
    return f->nseen >= 2;
}
static int saw_three(const struct fixture *f)
{
    return f->nseen >= 3;
}
static int ended(const struct fixture *f)
{
    return f->ends >= 1;
}
static int on_second_replica(const struct fixture *f)
{
    return f->r[1].nsubs >= 1;
}
static int resubscribed(const struct fixture *f)
{
    return f->r[0].nsubs >= 2;
}

static int resynced(const struct fixture *f)
{
    return f->resyncs >= 1;
}
static int saw_four(const struct fixture *f)
{
    return f->nseen >= 4;
}

/* ---- scenarios ------------------------------------------------------------------------------- */

/* A live stream asks its replica's applied index and subscribes after it: new entries come,
 * each once, and none of the past. */
static void live_stream_starts_at_the_present(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(1, 5);
    follow(f, 0, 0);
    run_until(f, subscribed_once);
    assert_int_equal(f->r[0].from[0], 6);
    replica_append(&f->r[0]);
    replica_append(&f->r[0]);
    run_until(f, saw_two);
    assert_int_equal(f->seen[0], 6);
    assert_int_equal(f->seen[1], 7);
    struct evstream_stats st;
    evstream_stats_get(f->s, &st);
    assert_int_equal(st.index, 7);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.subscribed, 0);
    fixture_free(f);
}

/* When its replica dies the stream subscribes on the next one from the index after the last
 * it delivered; entries that replica sends again are not delivered twice. */
static void moves_to_the_next_replica_and_resumes(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2, 5);
    f->r[1].resend = 3;
    follow(f, 0, 0);
    run_until(f, subscribed_once);
    replica_append(&f->r[0]);
    replica_append(&f->r[0]);
    f->r[1].applied = f->r[0].applied;
    run_until(f, saw_two);
    replica_kill(&f->r[0], 1);
    run_until(f, on_second_replica);
    assert_int_equal(f->r[1].from[0], 8);
    replica_append(&f->r[1]);
    run_until(f, saw_three);
    run_for(f, 300);
    assert_int_equal(f->nseen, 3);
    assert_int_equal(f->seen[2], 8);
    struct evstream_stats st;
    evstream_stats_get(f->s, &st);
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.subscribed, 1);
    fixture_free(f);
}

/* A live stream whose next index was trimmed says so once and starts again from the
 * present. */
static void trimmed_log_resyncs_a_live_stream(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(1, 150);
    f->r[0].trimmed = 100;
    follow(f, 10, 0);
    run_until(f, resubscribed);
    assert_int_equal(f->resyncs, 1);
    assert_int_equal(f->r[0].from[0], 10);
    assert_int_equal(f->r[0].from[1], 151);
    assert_int_equal(f->nseen, 0);
    assert_int_equal(f->ends, 0);
    fixture_free(f);
}

/* After a resync the replica asked for the present may lag the one the stream followed: the
 * stream goes on after the last index it delivered, never from that replica's older present,
 * so no index is delivered twice. */
static void resync_on_a_lagging_replica_repeats_nothing(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(2, 5);
    follow(f, 0, 0);
    run_until(f, subscribed_once);
    replica_append(&f->r[0]);
    replica_append(&f->r[0]);
    replica_append(&f->r[0]);
    run_until(f, saw_three); /* 6, 7, 8 */
    f->r[1].applied = 7;     /* lags by one, and refuses the resume from 9 as trimmed */
    f->r[1].trimmed = 10;
    replica_kill(&f->r[0], 1);
    run_until(f, resynced);
    f->r[1].trimmed = 0;
    run_until(f, on_second_replica);
    uint64_t deadline = uv_now(&f->loop) + 5000;
    while (f->r[1].nsubs < 2 && uv_now(&f->loop) < deadline) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(f->r[1].nsubs, 2);
    assert_int_equal(f->r[1].from[1], 9); /* not 8: the present of a lagging replica */
    replica_append(&f->r[1]);             /* 8 again, on this replica */
    replica_append(&f->r[1]);             /* 9 */
    run_until(f, saw_four);
    run_for(f, 300);
    assert_int_equal(f->nseen, 4);
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(f->seen[i], 6 + i);
    }
    fixture_free(f);
}

/* A bounded stream delivers its range, then ends; a close from inside the end is fine and
 * nothing fires after it. */
static void bounded_stream_ends_at_its_stop(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(1, 6);
    f->close_on_end = 1;
    follow(f, 2, 4);
    run_until(f, ended);
    assert_int_equal(f->nseen, 3);
    assert_int_equal(f->seen[0], 2);
    assert_int_equal(f->seen[2], 4);
    run_for(f, 300);
    assert_int_equal(f->ends, 1);
    assert_int_equal(f->after_end, 0);
    fixture_free(f);
}

/* A bounded stream whose start was trimmed resyncs and ends without an event. */
static void bounded_stream_on_a_trimmed_log_ends(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(1, 150);
    f->r[0].trimmed = 100;
    follow(f, 10, 120);
    run_until(f, ended);
    assert_int_equal(f->resyncs, 1);
    assert_int_equal(f->nseen, 0);
    assert_int_equal(f->r[0].nsubs, 1);
    run_for(f, 500); /* an ended stream dials nobody */
    assert_int_equal(f->r[0].nsubs, 1);
    fixture_free(f);
}

/* Closed before it ever ran, a stream fires nothing but its done, and that from the loop. */
static void close_at_once_fires_only_done(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(1, 5);
    follow(f, 0, 0);
    f->in_call = 1;
    evstream_close(f->s, on_closed, f);
    f->in_call = 0;
    f->s = NULL;
    assert_int_equal(f->closed, 0);
    run_for(f, 200);
    assert_int_equal(f->closed, 1);
    assert_int_equal(f->nseen + f->resyncs + f->ends, 0);
    fixture_free(f);
}

/* Impossible configurations are refused, and then nothing fires. */
static void bad_configs_are_refused(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(1, 5);
    struct evstream *s = NULL;
    struct evstream_config past = {.replica = 1};
    struct evstream_config unbounded_start = {.from = 0, .stop = 4};
    struct evstream_config inverted = {.from = 5, .stop = 4};
    assert_int_equal(evstream_new(&f->loop, f->u, &past, on_batch, f, &s), LR_EINVAL);
    assert_int_equal(evstream_new(&f->loop, f->u, &unbounded_start, on_batch, f, &s), LR_EINVAL);
    assert_int_equal(evstream_new(&f->loop, f->u, &inverted, on_batch, f, &s), LR_EINVAL);
    assert_null(s);
    fixture_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(live_stream_starts_at_the_present),
        cmocka_unit_test(moves_to_the_next_replica_and_resumes),
        cmocka_unit_test(trimmed_log_resyncs_a_live_stream),
        cmocka_unit_test(resync_on_a_lagging_replica_repeats_nothing),
        cmocka_unit_test(bounded_stream_ends_at_its_stop),
        cmocka_unit_test(bounded_stream_on_a_trimmed_log_ends),
        cmocka_unit_test(close_at_once_fires_only_done),
        cmocka_unit_test(bad_configs_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
