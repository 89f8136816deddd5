/* tests/integration/test_raft_faults.c — raft log write failures injected into a real leader
 * through the test-only raft_io decorator (raft/faultio.h, LAUREL_TEST_RAFT_IO_FAULTS).
 *
 * Three `laurel node` processes run with the switch, each with its own control file. With no
 * file they write as usual. "append 1" in the leader's file fails its next raft log append,
 * delivered the way libraft takes a write error (the append callback, RAFT_IOERR); the leader
 * takes its documented path, exit 70 (node__append, docs/durability.md), instead of leading on.
 * The other two elect a leader and go on. With the file removed and the old leader restarted
 * from its data dir, the three converge (same applied index and digest through status) and hold
 * every acknowledged write exactly once. Without the decorator the leader would not stop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/cluster.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

#define N_PLAYERS 5
#define T_MS 30000

struct fixture {
    struct tcluster c;
    char faults[TCLUSTER_MAX][700]; /* each replica's control file */
    int leader;
    uint64_t score[N_PLAYERS];
    unsigned next_key;
};

static struct fixture *fx;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void pack_cmd(msgpack_sbuffer *sb, const struct cmd *c)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    assert_int_equal(cmd_encode(&pk, c), 0);
}

/* One attempt at the replica @i: @return the command's status, or -1 without an answer. */
static int submit_once(unsigned i, const msgpack_sbuffer *sb, int timeout_ms)
{
    struct client cl;
    struct client_reply r;
    int status = -1;
    if (client_connect(&cl, fx->c.r[i].rpc, 500) != 0) {
        return -1;
    }
    if (client_call(&cl, PROTO_OP_SUBMIT, sb->data, sb->size, &r, timeout_ms) == 0 && r.code == 0) {
        const msgpack_object *res = proto_map_get(r.body, "results");
        status = (int)res->via.array.ptr[0].via.array.ptr[0].via.u64;
    }
    client_close(&cl);
    return status;
}

/* Submit @c until a leader acknowledges it (same command, same idempotency key). */
static int submit_acked(struct cmd c)
{
    msgpack_sbuffer sb;
    pack_cmd(&sb, &c);
    for (int attempt = 0; attempt < 300; attempt++) {
        int l = fx->leader >= 0 ? fx->leader : tcluster_leader(&fx->c, 5000);
        if (l >= 0) {
            int status = submit_once((unsigned)l, &sb, 3000);
            if (status > 0) {
                msgpack_sbuffer_destroy(&sb);
                return status;
            }
        }
        fx->leader = -1;
        sleep_ms(50);
    }
    fail_msg("submit: no leader acknowledged the write");
    return -1;
}

static struct cmd incr(unsigned p, char *id, char *key)
{
    snprintf(key, 32, "fault-%06u", fx->next_key++);
    snprintf(id, 16, "p%u", p);
    return ts_score(0, "arena", id, 1, 0, key);
}

static void write_incr(unsigned p)
{
    char key[32], id[16];
    assert_int_equal(submit_acked(incr(p, id, key)), 200);
    fx->score[p]++;
}

static void write_file(const char *path, const char *text)
{
    char tmp[800];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0); /* whole, or not at all */
}

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(tcluster_init_on(&fx->c, 3, "eu", "127.0.0.1"), 0);
    char dir[sizeof fx->c.dir];
    memcpy(dir, fx->c.dir, sizeof dir);
    for (unsigned i = 0; i < fx->c.n; i++) {
        char path[sizeof fx->faults[i]];
        snprintf(path, sizeof path, "%.500s/faults-r%u", dir, i + 1);
        memcpy(fx->faults[i], path, sizeof path);
        snprintf(fx->c.r[i].env, sizeof fx->c.r[i].env, "LAUREL_TEST_RAFT_IO_FAULTS=%s", path);
        assert_int_equal(tcluster_spawn(&fx->c, i), 0);
    }
    fx->leader = tcluster_leader(&fx->c, T_MS);
    assert_true(fx->leader >= 0);
    assert_int_equal(submit_acked(ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0)), 201);
    for (unsigned p = 0; p < N_PLAYERS; p++) {
        char id[16];
        snprintf(id, sizeof id, "p%u", p);
        assert_int_equal(submit_acked(ts_player(0, id, "eu", "")), 201);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tcluster_stop(&fx->c);
    free(fx);
    return 0;
}

/* A failed append stops the leader (exit 70); the region goes on, and the restarted replica
 * converges with every acknowledged write. */
static void failed_append_stops_the_leader_and_loses_nothing(void **state)
{
    (void)state;
    for (unsigned k = 0; k < 30; k++) { /* no control file yet: no faults */
        write_incr(k % N_PLAYERS);
    }
    int l = tcluster_leader(&fx->c, T_MS);
    assert_true(l >= 0);
    write_file(fx->faults[l], "# fail every raft log append from now on\nappend 1\n");
    sleep_ms(2 * 50); /* the decorator looks at the file at most every 50 ms */

    /* The next write makes the leader append: it fails, and the leader stops. The write is in
     * doubt (followers may have it), so it is retried below with the same key. */
    char key[32], id[16];
    struct cmd doubt = incr(0, id, key);
    msgpack_sbuffer sb;
    pack_cmd(&sb, &doubt);
    int status = submit_once((unsigned)l, &sb, 3000);
    msgpack_sbuffer_destroy(&sb);
    assert_int_equal(status, -1); /* never acknowledged by the failing leader */
    int st = 0;
    pid_t got = 0;
    for (int waited = 0; waited < 10000 && got == 0; waited += 50) {
        got = waitpid(fx->c.r[l].pid, &st, WNOHANG);
        if (got == 0) {
            sleep_ms(50);
        }
    }
    if (got != fx->c.r[l].pid) {
        fail_msg("the leader did not stop after its append failed; see %s", fx->c.r[l].log);
    }
    fx->c.r[l].pid = 0;
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 70);

    /* The other two go on; the write in doubt lands once, whatever the old leader sent. */
    fx->leader = -1;
    assert_int_equal(submit_acked(doubt), 200);
    fx->score[0]++;
    for (unsigned k = 0; k < 30; k++) {
        write_incr(k % N_PLAYERS);
    }

    /* Without its control file the old leader restarts from its data dir and catches up. */
    assert_int_equal(unlink(fx->faults[l]), 0);
    assert_int_equal(tcluster_spawn(&fx->c, (unsigned)l), 0);
    write_incr(1);
    uint64_t applied, digest;
    assert_int_equal(tcluster_converged(&fx->c, T_MS, &applied, &digest), 0);
    for (unsigned i = 0; i < fx->c.n; i++) {
        struct client cl;
        assert_true(fx->c.r[i].pid > 0);
        assert_int_equal(client_connect(&cl, fx->c.r[i].rpc, 1000), 0);
        for (unsigned p = 0; p < N_PLAYERS; p++) {
            char pid[16];
            struct shard_query q = {.type = SHARD_Q_RANK, .board_id = ts_s("arena")};
            msgpack_sbuffer qb;
            msgpack_packer pk;
            struct client_reply r;
            snprintf(pid, sizeof pid, "p%u", p);
            q.player_id = ts_s(pid);
            msgpack_sbuffer_init(&qb);
            msgpack_packer_init(&pk, &qb, msgpack_sbuffer_write);
            proto_query_encode(&pk, &q, 1);
            assert_int_equal(client_call(&cl, PROTO_OP_QUERY, qb.data, qb.size, &r, 3000), 0);
            msgpack_sbuffer_destroy(&qb);
            assert_int_equal(r.code, 0);
            assert_int_equal(proto_map_get(r.body, "score")->via.u64, fx->score[p]);
        }
        client_close(&cl);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(failed_append_stops_the_leader_and_loses_nothing, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
