/* tests/integration/test_fsm.c — the real shard FSM under libraft's in-memory cluster
 * (raft_fixture): deterministic time, message loss and kills, real LMDB underneath.
 * Every scenario ends with the same check: every replica applied the same entries and
 * reports the same state digest. */
#include <raft.h>
#include <raft/fixture.h>
#include <stdlib.h>
#include <string.h>

#include "raft/fsm.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

#define N 3
#define T0 1795350660000LL

struct fixture {
    struct raft_fixture rf;
    struct fsm fsm[N];
    char *dir[N];
    struct raft_apply req[512];
    unsigned nreq;
    int64_t ts;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    struct raft_configuration conf;
    char errmsg[LR_ERRMSG_SIZE];
    assert_int_equal(raft_fixture_initialize(&f->rf), 0);
    for (unsigned i = 0; i < N; i++) {
        f->dir[i] = testlib_tmpdir();
        if (fsm_init(&f->fsm[i], FSM_REGION, f->dir[i], "eu", 0, NULL, errmsg) != 0) {
            fail_msg("fsm_init: %s", errmsg);
        }
        assert_int_equal(raft_fixture_grow(&f->rf, &f->fsm[i].raft_fsm), 0);
        f->fsm[i].raft = raft_fixture_get(&f->rf, i);
    }
    assert_int_equal(raft_fixture_configuration(&f->rf, N, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&f->rf, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&f->rf), 0);
    f->ts = T0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    raft_fixture_close(&f->rf);
    for (unsigned i = 0; i < N; i++) {
        fsm_close(&f->fsm[i]);
        testlib_rmrf(f->dir[i]);
        free(f->dir[i]);
    }
    free(f);
    return 0;
}

/* Propose @c as one entry on the current leader; returns the entry's index. */
static raft_index propose(struct fixture *f, struct cmd c)
{
    unsigned l = raft_fixture_leader_index(&f->rf);
    assert_true(l < N);
    struct raft *r = raft_fixture_get(&f->rf, l);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct raft_buffer buf;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    cmd_entry_begin(&pk, 1);
    c.ts = f->ts++;
    cmd_encode(&pk, &c);
    buf.len = (sb.size + CMD_ENTRY_ALIGN - 1) / CMD_ENTRY_ALIGN * CMD_ENTRY_ALIGN;
    buf.base = raft_calloc(1, buf.len);
    memcpy(buf.base, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    assert_true(f->nreq < 512);
    struct raft_apply *req = &f->req[f->nreq++];
    assert_int_equal(raft_apply(r, req, &buf, 1, NULL), 0);
    return req->index;
}

static void converge(struct fixture *f, raft_index index)
{
    assert_true(raft_fixture_step_until_applied(&f->rf, N, index, 20000));
    uint64_t d0 = shard_digest(f->fsm[0].shard), scanned;
    for (unsigned i = 0; i < N; i++) {
        assert_true(shard_digest(f->fsm[i].shard) == d0);
        assert_int_equal(shard_digest_scan(f->fsm[i].shard, &scanned), 0);
        assert_true(scanned == d0);
    }
}

static raft_index some_writes(struct fixture *f, unsigned n, unsigned salt)
{
    raft_index last = 0;
    for (unsigned k = 0; k < n; k++) {
        static const char *ids[] = {"ann", "bob", "cat", "dan"};
        last = propose(f, ts_score(0, "arena", ids[(k + salt) % 4], (int64_t)(k * 7 % 13), 0, ""));
    }
    return last;
}

static void catalog(struct fixture *f)
{
    raft_fixture_elect(&f->rf, 0);
    propose(f, ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0));
    propose(f, ts_player(0, "ann", "eu", ""));
    propose(f, ts_player(0, "bob", "eu", "red"));
    propose(f, ts_player(0, "cat", "eu", ""));
    converge(f, propose(f, ts_player(0, "dan", "eu", "red")));
}

/* Entries proposed on the leader are applied by every replica with equal digests. */
static void replicates_to_equal_digests(void **state)
{
    struct fixture *f = *state;
    catalog(f);
    converge(f, some_writes(f, 60, 0));
    assert_true(shard_applied_index(f->fsm[1].shard) > 60);
}

static bool other_leader(struct raft_fixture *rf, void *arg)
{
    unsigned l = raft_fixture_leader_index(rf);
    return l < N && l != *(unsigned *)arg;
}

/* The leader dies; a new one takes writes; the old one comes back and converges. */
static void leader_loss_and_return(void **state)
{
    struct fixture *f = *state;
    catalog(f);
    converge(f, some_writes(f, 20, 1));
    unsigned old = 0;
    raft_fixture_kill(&f->rf, 0);
    assert_true(raft_fixture_step_until(&f->rf, other_leader, &old, 30000));
    raft_index last = some_writes(f, 20, 2);
    assert_true(
        raft_fixture_step_until_applied(&f->rf, raft_fixture_leader_index(&f->rf), last, 20000));
    raft_fixture_revive(&f->rf, 0);
    converge(f, some_writes(f, 5, 3));
}

/* A replica that misses more than the log keeps gets a snapshot (an LMDB copy) and
 * converges from it. */
static void snapshot_install_converges(void **state)
{
    struct fixture *f = *state;
    for (unsigned i = 0; i < N; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&f->rf, i), 16);
        raft_set_snapshot_trailing(raft_fixture_get(&f->rf, i), 4);
    }
    catalog(f);
    raft_fixture_kill(&f->rf, 2);
    raft_index last = some_writes(f, 80, 4);
    assert_true(raft_fixture_step_until_applied(&f->rf, 0, last, 20000));
    raft_fixture_revive(&f->rf, 2);
    converge(f, some_writes(f, 3, 5));
    assert_true(raft_fixture_n_recv(&f->rf, 2, RAFT_IO_INSTALL_SNAPSHOT) > 0);
}

/* What fsm_state_bytes says a snapshot would hold is, to the byte, the size of the snapshot
 * the fsm then hands libraft (the node refuses writes on that figure). */
static void state_bytes_is_the_snapshot_size(void **state)
{
    struct fixture *f = *state;
    catalog(f);
    converge(f, some_writes(f, 200, 6));
    struct raft_fsm *rf = &f->fsm[1].raft_fsm;
    struct raft_buffer *bufs = NULL;
    unsigned n = 0;
    uint64_t bytes = 0;
    assert_int_equal(fsm_state_bytes(&f->fsm[1], &bytes), 0);
    assert_int_equal(rf->snapshot(rf, &bufs, &n), 0);
    assert_int_equal(n, 1);
    assert_true(bytes > 0 && bytes <= FSM_SNAPSHOT_MAX);
    assert_int_equal(bufs[0].len, bytes);
    assert_int_equal(rf->snapshot_finalize(rf, &bufs, &n), 0);
    assert_null(bufs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(replicates_to_equal_digests, setup, teardown),
        cmocka_unit_test_setup_teardown(leader_loss_and_return, setup, teardown),
        cmocka_unit_test_setup_teardown(snapshot_install_converges, setup, teardown),
        cmocka_unit_test_setup_teardown(state_bytes_is_the_snapshot_size, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
