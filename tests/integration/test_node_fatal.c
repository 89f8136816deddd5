/* tests/integration/test_node_fatal.c — a replica that hits a fatal error stops proposing and
 * answers no write with success, from that loop turn on.
 *
 * The replica runs in this process on a loop the test turns by hand, so the test decides what
 * one loop turn holds. The fatal error is an apply failure: before the replica starts, the
 * test stores a malformed idempotency record in its shard, and a score carrying that key makes
 * apply answer LR_ECORRUPT (the state machine's fatal hook). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "node/node.h"
#include "proto/client.h"
#include "shard/store.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

#define BAD_KEY "key-bad-0001" /* its idempotency record is malformed */

struct fixture {
    char *dir;
    uv_loop_t loop;
    uv_timer_t guard; /* stops a uv_run that would otherwise wait for ever */
    struct logger log;
    struct node *n;
    struct client cl;
    int stopped;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The shard's idempotency record of the first player (pid 0) under BAD_KEY: one byte that is
 * no msgpack array. Written through store.h so the digest accounts for it. */
static void fx_plant_bad_record(const char *shard_dir)
{
    char errmsg[LR_ERRMSG_SIZE];
    struct store_config cfg = {shard_dir, 0, 1};
    struct store *st;
    unsigned char key[4 + sizeof BAD_KEY - 1] = {0, 0, 0, 0};
    memcpy(key + 4, BAD_KEY, sizeof BAD_KEY - 1);
    if (store_open(&cfg, &st, errmsg) != 0) {
        fail_msg("store: %s", errmsg);
    }
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_put(st, STORE_IDEM, key, sizeof key, "x", 1), 0);
    assert_int_equal(store_commit(st), 0);
    store_close(st);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct node_config cfg;
    char errmsg[LR_ERRMSG_SIZE], path[4100];
    f->dir = testlib_tmpdir();
    node_config_defaults(&cfg);
    cfg.id = 1;
    snprintf(cfg.region, sizeof cfg.region, "eu");
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s/node", f->dir);
    cfg.npeers = 1;
    cfg.peers[0].id = 1;
    snprintf(cfg.peers[0].raft, NODE_ADDR_MAX, "127.0.0.1:%d", client_free_port());
    snprintf(cfg.peers[0].rpc, NODE_ADDR_MAX, "127.0.0.1:%d", client_free_port());
    assert_int_equal(mkdir(cfg.data_dir, 0755), 0);
    snprintf(path, sizeof path, "%s/shard", cfg.data_dir);
    fx_plant_bad_record(path);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->guard);
    log_init(&f->log, stderr, LOG_WARN, 1, "eu");
    if (node_start(&f->loop, &cfg, &f->log, &f->n, errmsg) != 0) {
        fail_msg("node: %s", errmsg);
    }
    assert_int_equal(client_connect(&f->cl, cfg.peers[0].rpc, 1000), 0);
    *state = f;
    return 0;
}

static void fx_stopped(void *data)
{
    struct fixture *f = data;
    f->stopped = 1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    client_close(&f->cl);
    node_stop(f->n, fx_stopped, f);
    uv_close((uv_handle_t *)&f->guard, NULL);
    while (!f->stopped) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Send @c as one submit; @return the request id. */
static uint64_t fx_send(struct fixture *f, struct cmd c)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    uint64_t id;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    assert_int_equal(cmd_encode(&pk, &c), 0);
    assert_int_equal(client_send(&f->cl, PROTO_OP_SUBMIT, sb.data, sb.size, &id), 0);
    msgpack_sbuffer_destroy(&sb);
    return id;
}

/* Turn the loop until the reply to @id arrives. */
static void fx_wait(struct fixture *f, uint64_t id, struct client_reply *r)
{
    for (int i = 0; i < 10000; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (client_recv(&f->cl, r, 1) == 0 && r->id == id) {
            return;
        }
    }
    fail_msg("no reply to request %llu", (unsigned long long)id);
}

/* Submit @c until the replica leads and answers it; @return the command's status. */
static int64_t fx_submit(struct fixture *f, struct cmd c)
{
    struct client_reply r;
    for (int attempt = 0; attempt < 100; attempt++) {
        fx_wait(f, fx_send(f, c), &r);
        if (r.code == 0) {
            const msgpack_object *res = ts_get(r.body, "results");
            return res->via.array.ptr[0].via.array.ptr[0].via.i64;
        }
        sleep_ms(50);
    }
    fail_msg("the replica never took a write");
    return 0;
}

static void fx_guard_cb(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* The write whose apply fails, then another write while that one is on its way to the log:
 * the second arrives in the loop turn in which the first fails. Both are answered
 * unavailable in that turn, and nothing is proposed after the failure (the log ends at the
 * failed entry). Before the fix the second write was proposed in that turn, unanswered. */
static void apply_failure_stops_proposals_in_its_turn(void **state)
{
    struct fixture *f = *state;
    struct client_reply r;
    assert_int_equal(fx_submit(f, ts_player(1, "ann", "eu", "")), 201);
    assert_int_equal(fx_submit(f, ts_board(1, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0)), 201);
    uint64_t bad = fx_send(f, ts_score(1, "arena", "ann", 5, 0, BAD_KEY));
    uv_run(&f->loop, UV_RUN_NOWAIT); /* reads the bad write and proposes it */
    uint64_t good = fx_send(f, ts_score(1, "arena", "ann", 7, 0, "key-good-0001"));
    sleep_ms(300); /* the bad entry's append completes; the good write waits in the socket */
    uv_timer_start(&f->guard, fx_guard_cb, 10000, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT); /* returns after the turn of the fatal error */
    uv_timer_stop(&f->guard);
    assert_int_equal(node_exit_status(f->n), 70);
    int answered = 0;
    while (client_recv(&f->cl, &r, 200) == 0) {
        assert_true(r.id == bad || r.id == good);
        assert_int_equal(r.code, LR_EUNAVAILABLE);
        answered++;
    }
    assert_int_equal(answered, 2);
    /* Further turns propose nothing either: the log ends at the failed entry. */
    uint64_t id;
    assert_int_equal(client_send(&f->cl, PROTO_OP_STATUS, NULL, 0, &id), 0);
    fx_wait(f, id, &r);
    assert_int_equal(r.code, 0);
    uint64_t last = (uint64_t)ts_i64(r.body, "last_index");
    assert_int_equal(last, (uint64_t)ts_i64(r.body, "commit_index"));
    for (int i = 0; i < 50; i++) {
        uv_run(&f->loop, UV_RUN_NOWAIT);
        sleep_ms(2);
    }
    assert_int_equal(client_send(&f->cl, PROTO_OP_STATUS, NULL, 0, &id), 0);
    fx_wait(f, id, &r);
    assert_int_equal((uint64_t)ts_i64(r.body, "last_index"), last);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(apply_failure_stops_proposals_in_its_turn, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
