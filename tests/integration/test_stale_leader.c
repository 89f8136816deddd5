/* tests/integration/test_stale_leader.c — a deposed leader never answers a read from old state.
 *
 * Three real `laurel node` processes. Each round: a score is written (v1), the leader is
 * paused with SIGSTOP, the other two elect a new leader which acknowledges a second write (v2),
 * and the old leader is resumed with SIGCONT and at once sent a linearizable read of that
 * score. It was sent after v2 was acknowledged, so it must see v2 or be refused as not the
 * leader: v1 would be a stale read (docs/durability.md, "Reads"). The read's first byte is sent
 * just after the pause, so its connection is the first the resumed loop finds ready; half the
 * rounds send the rest before the resume, half just after. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/lib/cluster.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

#define T_MS 60000
#define ROUNDS 10

struct fixture {
    struct tcluster c;
    unsigned next_key;
    int64_t score; /* acknowledged increments of the one player */
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The role replica @i reports ("leader", ...), or "" when it does not answer. */
static void role_of(struct fixture *f, unsigned i, char *role, size_t len)
{
    role[0] = '\0';
    tcluster_status(&f->c, i, NULL, NULL, role, len);
}

/* A replica other than @skip that says it leads, within @timeout_ms; -1 if none. */
static int leader_except(struct fixture *f, int skip, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        for (unsigned i = 0; i < f->c.n; i++) {
            char role[16];
            if ((int)i == skip || f->c.r[i].pid <= 0) {
                continue;
            }
            role_of(f, i, role, sizeof role);
            if (strcmp(role, "leader") == 0) {
                return (int)i;
            }
        }
        sleep_ms(20);
    }
    return -1;
}

/* Pack @cmds as a submit's args into @sb. */
static void pack_submit(msgpack_sbuffer *sb, const struct cmd *cmds, unsigned n)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (unsigned i = 0; i < n; i++) {
        assert_int_equal(cmd_encode(&pk, &cmds[i]), 0);
    }
}

/* Submit @cmds to replica @i (the leader); @return 0 when acknowledged with the statuses
 * @want, -1 when that replica does not lead or the write may not have happened (the caller
 * retries with the same idempotency keys). */
static int submit_to(struct fixture *f, unsigned i, const struct cmd *cmds, unsigned n, int want)
{
    struct client cl;
    struct client_reply r;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_submit(&sb, cmds, n);
    int rv = client_connect(&cl, f->c.r[i].rpc, 500);
    if (rv == 0) {
        rv = client_call(&cl, PROTO_OP_SUBMIT, sb.data, sb.size, &r, 3000);
    }
    if (rv == 0 && r.code == 0) {
        const msgpack_object *res = proto_map_get(r.body, "results");
        assert_int_equal(res->via.array.size, n);
        for (unsigned k = 0; k < n; k++) {
            int st = (int)res->via.array.ptr[k].via.array.ptr[0].via.u64;
            assert_true(st == want || (want == 201 && st == 200)); /* 200: a replay */
        }
    }
    client_close(&cl);
    msgpack_sbuffer_destroy(&sb);
    return rv == 0 && r.code == 0 ? 0 : -1;
}

/* One increment of the player through the leader (not @skip), retried until acknowledged. */
static int write_incr(struct fixture *f, int skip)
{
    char key[32];
    snprintf(key, sizeof key, "stale-%06u", f->next_key++);
    struct cmd c = ts_score(0, "arena", "pl", 1, 0, key);
    for (int attempt = 0; attempt < 200; attempt++) {
        int l = leader_except(f, skip, T_MS);
        if (l >= 0 && submit_to(f, (unsigned)l, &c, 1, 200) == 0) {
            f->score++;
            return l;
        }
        sleep_ms(20);
    }
    fail_msg("no leader acknowledged the write");
    return -1;
}

/* A request frame, id @id, of a linearizable read of the player's score. */
static void pack_read(msgpack_sbuffer *sb, uint64_t id)
{
    msgpack_packer pk;
    size_t mark;
    struct shard_query q = {.type = SHARD_Q_RANK, .board_id = ts_s("arena")};
    q.player_id = ts_s("pl");
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    proto_frame_begin(sb, &mark);
    proto_msg_begin(&pk, id, PROTO_OP_QUERY);
    proto_query_encode(&pk, &q, 0);
    proto_frame_end(sb, mark);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(tcluster_start(&f->c, 3, "eu"), 0);
    struct cmd cat[2] = {ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0),
                         ts_player(0, "pl", "eu", "")};
    for (int attempt = 0;; attempt++) {
        int l = leader_except(f, -1, T_MS);
        assert_true(attempt < 200);
        if (l >= 0 && submit_to(f, (unsigned)l, cat, 2, 201) == 0) {
            break;
        }
        sleep_ms(20);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (unsigned i = 0; i < f->c.n; i++) {
        tcluster_kill(&f->c, i, SIGCONT); /* a failed round may leave one paused */
    }
    tcluster_stop(&f->c);
    free(f);
    return 0;
}

/* A leader paused while another is elected and acknowledges a write answers a read sent
 * after that write with the new value or "not the leader", never the old value. */
static void resumed_old_leader_never_reads_stale(void **state)
{
    struct fixture *f = *state;
    msgpack_sbuffer rd;
    msgpack_sbuffer_init(&rd);
    for (unsigned round = 0; round < ROUNDS; round++) {
        struct client cl;
        struct client_reply r;
        int early = round % 2 == 0;
        int old = write_incr(f, -1); /* v1, acknowledged by the current leader */
        int64_t v1 = f->score;
        assert_int_equal(client_connect(&cl, f->c.r[old].rpc, 1000), 0);
        uint64_t id = ++cl.next_id;
        pack_read(&rd, id);
        tcluster_kill(&f->c, (unsigned)old, SIGSTOP);
        /* The read's first byte, before any message of the next term: the old leader's poll
         * then reports this connection ready before its raft connections, and it reads the
         * request while it still believes it leads (it has not heard of the new term). */
        assert_int_equal(client_send_raw(&cl, rd.data, 1), 0);
        int nl = write_incr(f, old); /* v2, acknowledged by a leader elected meanwhile */
        assert_int_not_equal(nl, old);
        assert_int_equal(f->score, v1 + 1);
        if (early) { /* the whole read waits on the socket for the resumed process */
            assert_int_equal(client_send_raw(&cl, rd.data + 1, rd.size - 1), 0);
        }
        tcluster_kill(&f->c, (unsigned)old, SIGCONT);
        if (!early) {
            assert_int_equal(client_send_raw(&cl, rd.data + 1, rd.size - 1), 0);
        }
        assert_int_equal(client_recv(&cl, &r, T_MS), 0);
        assert_int_equal(r.id, id);
        if (r.code == 0) {
            int64_t got = (int64_t)proto_map_get(r.body, "score")->via.u64;
            print_message("round %u: old leader answered score %lld (v1 %lld, v2 %lld)\n", round,
                          (long long)got, (long long)v1, (long long)f->score);
            assert_int_equal(got, f->score);
        } else {
            print_message("round %u: old leader refused the read (code %d)\n", round, r.code);
            assert_true(r.code == LR_ENOTLEADER || r.code == LR_EUNAVAILABLE);
        }
        client_close(&cl);
    }
    msgpack_sbuffer_destroy(&rd);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(resumed_old_leader_never_reads_stale, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
