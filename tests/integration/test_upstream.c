/* tests/integration/test_upstream.c — the router's link to a region, against three real
 * replicas: calls find the leader, survive a kill -9 of it, and a region with nobody alive
 * answers `unavailable` at the deadline, never hangs. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/upstream.h"
#include "tests/lib/cluster.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

struct fixture {
    struct tcluster c;
    uv_loop_t loop;
    struct upstream *u;
};

struct call {
    int done, code;
    int64_t score;
    int status;
};

static void on_answer(void *data, int code, const msgpack_object *payload)
{
    struct call *c = data;
    c->done = 1;
    c->code = code;
    if (code == 0 && payload) {
        const msgpack_object *res = proto_map_get(payload, "results");
        const msgpack_object *sc = proto_map_get(payload, "score");
        if (res && res->via.array.size > 0) {
            const msgpack_object *r0 = &res->via.array.ptr[0];
            c->status = (int)r0->via.array.ptr[0].via.u64;
            const msgpack_object *s = proto_map_get(&r0->via.array.ptr[2], "score");
            c->score = s ? (int64_t)s->via.u64 : -1;
        }
        if (sc) {
            c->score = (int64_t)sc->via.u64;
        }
    }
}

/* One call, run to completion on the loop. */
static struct call run(struct fixture *f, int op, int need_leader, const char *args, size_t len,
                       unsigned timeout_ms)
{
    struct call c = {0};
    assert_int_equal(upstream_call(f->u, op, need_leader, args, len, timeout_ms, on_answer, &c), 0);
    while (!c.done) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    return c;
}

static struct call submit(struct fixture *f, struct cmd cmd)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    cmd_encode(&pk, &cmd);
    struct call c = run(f, PROTO_OP_SUBMIT, 1, sb.data, sb.size, 20000);
    msgpack_sbuffer_destroy(&sb);
    return c;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    const char *rpc[3];
    assert_int_equal(tcluster_start(&f->c, 3, "eu"), 0);
    uv_loop_init(&f->loop);
    for (unsigned i = 0; i < 3; i++) {
        rpc[i] = f->c.r[i].rpc;
    }
    assert_int_equal(upstream_new(&f->loop, "eu", rpc, 3, &f->u), 0);
    *state = f;
    return 0;
}

static void closed(void *data)
{
    *(int *)data = 1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int done = 0;
    if (f->u != NULL) { /* a test may have closed it itself */
        upstream_close(f->u, closed, &done);
        while (!done) {
            uv_run(&f->loop, UV_RUN_ONCE);
        }
    }
    assert_int_equal(uv_loop_close(&f->loop), 0);
    tcluster_stop(&f->c);
    free(f);
    return 0;
}

/* Writes reach the leader wherever it is, across a kill -9, each applied once. */
static void writes_follow_the_leader_across_a_kill(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(submit(f, ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0)).status,
                     201);
    assert_int_equal(submit(f, ts_player(0, "ann", "eu", "")).status, 201);
    for (int k = 0; k < 200; k++) {
        char key[32];
        if (k == 80) {
            int l = tcluster_leader(&f->c, 20000);
            assert_true(l >= 0);
            tcluster_kill(&f->c, (unsigned)l, SIGKILL);
        }
        snprintf(key, sizeof key, "upstream-%06d", k);
        struct call c = submit(f, ts_score(0, "arena", "ann", 1, 0, key));
        assert_int_equal(c.code, 0);
        assert_int_equal(c.status, 200);
        assert_int_equal(c.score, k + 1);
    }
    assert_true(upstream_leader(f->u) >= 0);
    /* A linearizable read through the leader sees every write. */
    struct shard_query q = {
        .type = SHARD_Q_RANK, .board_id = ts_s("arena"), .player_id = ts_s("ann")};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_query_encode(&pk, &q, 0);
    struct call c = run(f, PROTO_OP_QUERY, 1, sb.data, sb.size, 10000);
    msgpack_sbuffer_destroy(&sb);
    assert_int_equal(c.code, 0);
    assert_int_equal(c.score, 200);
}

/* A leader that freezes (SIGSTOP: its connection stays open, nothing answers) costs the calls
 * sent to it their deadline, and no more: the next calls find the new leader while it is
 * still frozen. */
static void writes_leave_a_frozen_leader(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(submit(f, ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0)).status,
                     201);
    assert_int_equal(submit(f, ts_player(0, "ann", "eu", "")).status, 201);
    assert_int_equal(submit(f, ts_score(0, "arena", "ann", 1, 0, "frozen-000000")).status, 200);
    int l = tcluster_leader(&f->c, 20000);
    assert_true(l >= 0);
    assert_int_equal(upstream_leader(f->u), l);
    tcluster_kill(&f->c, (unsigned)l, SIGSTOP);
    /* Each attempt has 1 s; the same key makes a retry safe. Ten attempts are plenty for an
     * election (300 ms here) and a redirect; before the fix every one went to the frozen
     * leader. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct call c = {0};
    int attempts = 0;
    for (; attempts < 10; attempts++) {
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 1);
        struct cmd cmd = ts_score(0, "arena", "ann", 1, 0, "frozen-000001");
        cmd_encode(&pk, &cmd);
        c = run(f, PROTO_OP_SUBMIT, 1, sb.data, sb.size, 1000);
        msgpack_sbuffer_destroy(&sb);
        if (c.code == 0) {
            break;
        }
        assert_int_equal(c.code, LR_EUNAVAILABLE);
    }
    tcluster_kill(&f->c, (unsigned)l, SIGCONT);
    if (c.code != 0) {
        fail_msg("no write acknowledged in %d attempts with replica %d frozen", attempts, l + 1);
    }
    assert_int_equal(c.status, 200);
    assert_int_equal(c.score, 2);
    assert_true(upstream_leader(f->u) >= 0);
    assert_true(upstream_leader(f->u) != l);
}

/* The submits of one loop turn go as one call per UPSTREAM_SUBMIT_MAX commands, and each
 * caller gets its own result, in order; args that are not 1..UPSTREAM_SUBMIT_MAX commands are
 * refused at once. */
static void submits_of_a_turn_are_grouped_up_to_the_cap(void **state)
{
    enum { N = UPSTREAM_SUBMIT_MAX + 76 };
    struct fixture *f = *state;
    struct upstream_stats before, after;
    struct call *calls = calloc(N, sizeof *calls);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    assert_int_equal(submit(f, ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0)).status,
                     201);
    assert_int_equal(submit(f, ts_player(0, "ann", "eu", "")).status, 201);
    upstream_stats_get(f->u, &before);
    msgpack_sbuffer_init(&sb);
    for (int i = 0; i < N; i++) {
        char key[32];
        snprintf(key, sizeof key, "grouped-%06d", i);
        struct cmd cmd = ts_score(0, "arena", "ann", 1, 0, key);
        msgpack_sbuffer_clear(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 1);
        cmd_encode(&pk, &cmd);
        assert_int_equal(upstream_submit(f->u, sb.data, sb.size, 20000, on_answer, &calls[i]), 0);
    }
    assert_int_equal(upstream_submit(f->u, "\x90", 1, 20000, on_answer, NULL), LR_EINVAL);
    assert_int_equal(upstream_submit(f->u, "\xc0", 1, 20000, on_answer, NULL), LR_EINVAL);
    assert_int_equal(upstream_submit(f->u, "\xdc\x04\x01", 3, 20000, on_answer, NULL),
                     LR_EINVAL); /* 1025 commands */
    for (int i = 0; i < N; i++) {
        while (!calls[i].done) {
            uv_run(&f->loop, UV_RUN_ONCE);
        }
        assert_int_equal(calls[i].code, 0);
        assert_int_equal(calls[i].status, 200);
        assert_int_equal(calls[i].score, i + 1); /* incr: the commands kept their order */
    }
    upstream_stats_get(f->u, &after);
    assert_int_equal(after.submits - before.submits, N);
    assert_int_equal(after.cmds - before.cmds, N);
    assert_int_equal(after.rpcs - before.rpcs, 2);
    msgpack_sbuffer_destroy(&sb);
    free(calls);
}

/* A replica that let a call reach its deadline is passed over by calls that may go to any
 * replica, while it stays silent: after the frozen leader timed a write out, consecutive status
 * calls (round robin over three replicas, so without the rule one in three would land on it
 * and wait out its whole deadline) are each answered, and a write then finds the new leader
 * at once. test_ws once saw the round robin land on a frozen leader after every timeout, the
 * other calls of each turn advancing it by a multiple of three: 30 s of 503s. */
static void a_silent_replica_is_passed_over(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(submit(f, ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0)).status,
                     201);
    int l = tcluster_leader(&f->c, 20000);
    assert_true(l >= 0);
    assert_int_equal(upstream_leader(f->u), l);
    tcluster_kill(&f->c, (unsigned)l, SIGSTOP);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    struct cmd cmd = ts_player(0, "bob", "eu", "");
    cmd_encode(&pk, &cmd);
    struct call c = run(f, PROTO_OP_SUBMIT, 1, sb.data, sb.size, 800); /* to the frozen one */
    assert_int_equal(c.code, LR_EUNAVAILABLE);
    for (int k = 0; k < 6; k++) {
        c = run(f, PROTO_OP_STATUS, 0, NULL, 0, 800);
        if (c.code != 0) {
            tcluster_kill(&f->c, (unsigned)l, SIGCONT);
            fail_msg("status call %d went to the frozen replica %d and timed out", k, l + 1);
        }
    }
    c = run(f, PROTO_OP_SUBMIT, 1, sb.data, sb.size, 10000);
    msgpack_sbuffer_destroy(&sb);
    tcluster_kill(&f->c, (unsigned)l, SIGCONT);
    assert_int_equal(c.code, 0);
    assert_int_equal(c.status, 201);
    assert_true(upstream_leader(f->u) != l);
}

/* With every replica dead a call ends at its deadline with `unavailable`. */
static void dead_region_times_out(void **state)
{
    struct fixture *f = *state;
    for (unsigned i = 0; i < f->c.n; i++) {
        tcluster_kill(&f->c, i, SIGKILL);
    }
    uint64_t t0 = uv_now(&f->loop);
    struct call c = run(f, PROTO_OP_STATUS, 0, NULL, 0, 300);
    assert_int_equal(c.code, LR_EUNAVAILABLE);
    uv_update_time(&f->loop);
    assert_true(uv_now(&f->loop) - t0 >= 300);
    assert_true(uv_now(&f->loop) - t0 < 2000);
}

/* A call's callback that calls again while the link is closing (a route's next step) is
 * refused at once with `unavailable`: the second call is never queued behind a closed loop,
 * where it would never be answered. */
struct recall {
    struct upstream *u;
    int first_code, second_rv, fired;
};

static void on_answer_recall(void *data, int code, const msgpack_object *payload)
{
    struct recall *r = data;
    (void)payload;
    r->fired++;
    r->first_code = code;
    r->second_rv = upstream_call(r->u, PROTO_OP_STATUS, 0, NULL, 0, 1000, on_answer, NULL);
}

static void a_call_made_while_closing_is_refused(void **state)
{
    struct fixture *f = *state;
    struct recall r = {.u = f->u};
    int done = 0;
    assert_int_equal(upstream_call(f->u, PROTO_OP_STATUS, 0, NULL, 0, 1000, on_answer_recall, &r),
                     0);
    upstream_close(f->u, closed, &done);
    assert_int_equal(r.fired, 1);
    assert_int_equal(r.first_code, LR_EUNAVAILABLE);
    assert_int_equal(r.second_rv, LR_EUNAVAILABLE);
    while (!done) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    f->u = NULL;
}

/* A caller may drop the link from inside one of its callbacks (the put of a region does, with
 * the link it probed): three calls to a dead region end at the same deadline in one tick, the
 * first one's callback closes the link, and the other two still get their answer, once each,
 * after the loop that walks them is done (under ASan a close at once would free them under
 * it). */
struct dropper {
    struct upstream *u;
    int fired, closed;
};

static void on_answer_drop(void *data, int code, const msgpack_object *payload)
{
    struct dropper *d = data;
    (void)payload;
    assert_int_equal(code, LR_EUNAVAILABLE);
    if (d->fired++ == 0) {
        upstream_close(d->u, closed, &d->closed);
        /* Refused from now on, though the close itself waits for the next turn. */
        assert_int_equal(upstream_call(d->u, PROTO_OP_STATUS, 0, NULL, 0, 100, on_answer, NULL),
                         LR_EUNAVAILABLE);
    }
}

static void closed_from_its_own_callback(void **state)
{
    struct fixture *f = *state;
    struct dropper d = {.u = f->u};
    for (unsigned i = 0; i < f->c.n; i++) {
        tcluster_kill(&f->c, i, SIGKILL);
    }
    for (int k = 0; k < 3; k++) {
        assert_int_equal(upstream_call(f->u, PROTO_OP_STATUS, 0, NULL, 0, 300, on_answer_drop, &d),
                         0);
    }
    while (!d.closed) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_int_equal(d.fired, 3);
    f->u = NULL;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(writes_follow_the_leader_across_a_kill, setup, teardown),
        cmocka_unit_test_setup_teardown(writes_leave_a_frozen_leader, setup, teardown),
        cmocka_unit_test_setup_teardown(a_silent_replica_is_passed_over, setup, teardown),
        cmocka_unit_test_setup_teardown(submits_of_a_turn_are_grouped_up_to_the_cap, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(dead_region_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(a_call_made_while_closing_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(closed_from_its_own_callback, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
