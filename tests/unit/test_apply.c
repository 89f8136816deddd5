/* tests/unit/test_apply.c — apply's idempotency bookkeeping on one shard: the purge of expired
 * keys keeps up with batched writes (docs/data-layout.md, "Idempotency keys"). */
#include <stdio.h>
#include <stdlib.h>

#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

#define T0 1795350660123LL
#define HOUR 3600000LL
#define BATCH 1024 /* commands an entry (TS_MAX_RESULTS: what ts_apply collects) */
#define ENTRIES 8  /* entries a round */
#define ROUNDS 4

struct fixture {
    char *dir;
    struct shard *s;
    uint64_t index;
    struct ts_apply out;
    struct cmd cmds[BATCH];
    char keys[BATCH][32];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char errmsg[LR_ERRMSG_SIZE];
    struct shard_config cfg = {NULL, "eu", 256ULL << 20, 1};
    f->dir = testlib_tmpdir();
    cfg.dir = f->dir;
    if (shard_open(&cfg, &f->s, errmsg) != 0) {
        fail_msg("open: %s", errmsg);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ts_apply_free(&f->out);
    shard_close(f->s);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static uint64_t fx_idem_count(struct fixture *f)
{
    uint64_t n;
    assert_int_equal(shard_idem_count(f->s, &n), 0);
    return n;
}

/* Apply one full entry of keyed scores stamped @ts, each with a key never used before. */
static void fx_batch(struct fixture *f, int64_t ts, int round, int entry)
{
    for (int i = 0; i < BATCH; i++) {
        snprintf(f->keys[i], sizeof f->keys[i], "key-%d-%d-%d", round, entry, i);
        f->cmds[i] = ts_score(ts, "arena", "ann", 1, 0, f->keys[i]);
    }
    ts_apply_free(&f->out);
    ts_apply(f->s, &f->index, f->cmds, BATCH, &f->out);
    for (int i = 0; i < BATCH; i++) {
        assert_int_equal(f->out.res[i].status, 200);
        assert_int_equal(f->out.res[i].replayed, 0);
    }
}

/* Rounds of full keyed entries, each round stamped 26 h after the last (past the 25 h expiry
 * of every key before it): once a round is done, the keys held are that round's alone. At 16
 * purges an entry the expired keys would pile up by about a thousand an entry. */
static void purge_keeps_up_with_full_entries(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(ts_apply1(f->s, &f->index, ts_player(T0, "ann", "eu", "")), 201);
    assert_int_equal(
        ts_apply1(f->s, &f->index, ts_board(T0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0)), 201);
    for (int round = 0; round < ROUNDS; round++) {
        int64_t ts = T0 + round * 26 * HOUR;
        for (int entry = 0; entry < ENTRIES; entry++) {
            fx_batch(f, ts + entry, round, entry);
            uint64_t held = fx_idem_count(f);
            /* Never more than this round's keys and the previous round's not yet purged. */
            assert_true(held <= (uint64_t)(2 * ENTRIES * BATCH));
        }
        assert_int_equal(fx_idem_count(f), (uint64_t)ENTRIES * BATCH);
    }
    /* The purge kept the digest honest. */
    uint64_t scan;
    assert_int_equal(shard_digest_scan(f->s, &scan), 0);
    assert_int_equal(scan, shard_digest(f->s));
}

/* A key expired but not purged yet still answers as absent; a live one replays. */
static void expired_key_applies_again(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(ts_apply1(f->s, &f->index, ts_player(T0, "ann", "eu", "")), 201);
    assert_int_equal(
        ts_apply1(f->s, &f->index, ts_board(T0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0)), 201);
    assert_int_equal(ts_apply1(f->s, &f->index, ts_score(T0, "arena", "ann", 5, 0, "key-once-1")),
                     200);
    ts_apply_free(&f->out);
    struct cmd c = ts_score(T0 + 24 * HOUR, "arena", "ann", 5, 0, "key-once-1");
    ts_apply(f->s, &f->index, &c, 1, &f->out);
    assert_int_equal(f->out.res[0].replayed, 1);
    assert_int_equal(fx_idem_count(f), 1);
    ts_apply_free(&f->out);
    c = ts_score(T0 + 26 * HOUR, "arena", "ann", 5, 0, "key-once-1");
    ts_apply(f->s, &f->index, &c, 1, &f->out);
    assert_int_equal(f->out.res[0].replayed, 0);
    assert_int_equal(ts_i64(&f->out.res[0].body.data, "score"), 10);
    assert_int_equal(fx_idem_count(f), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(purge_keeps_up_with_full_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(expired_key_applies_again, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
