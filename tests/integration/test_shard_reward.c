/* tests/integration/test_shard_reward.c — rewards in the region state machine on real LMDB
 * (API.md, "Cycles"; docs/global-state.md, "Claims"): grants from a closer that may repeat
 * itself, claims with their idempotency keys, and the player's list, through shard_apply and
 * shard_query only. */
#include <stdlib.h>
#include <string.h>

#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

#define T0 1795350660123LL /* 2026-11-22T12:31:00.123Z */
#define HOUR 3600000LL

struct fixture {
    char *dir;
    struct shard *s;
    uint64_t index;
    struct ts_apply out;
    char errmsg[LR_ERRMSG_SIZE];
};

static void fx_open(struct fixture *f)
{
    struct shard_config cfg = {f->dir, "eu", 32ULL << 20, 0};
    if (shard_open(&cfg, &f->s, f->errmsg) != 0) {
        fail_msg("open: %s", f->errmsg);
    }
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = testlib_tmpdir();
    fx_open(f);
    assert_int_equal(ts_apply1(f->s, &f->index, ts_player(T0, "ann", "eu", "")), 201);
    assert_int_equal(ts_apply1(f->s, &f->index, ts_player(T0, "bob", "eu", "")), 201);
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

/* Apply one command and keep its result in f->out.res[0]. */
static const struct ts_result *fx_do(struct fixture *f, struct cmd c)
{
    ts_apply_free(&f->out);
    ts_apply(f->s, &f->index, &c, 1, &f->out);
    return &f->out.res[0];
}

static void fx_error(const struct ts_result *r, int status, const char *code, const char *needle)
{
    char buf[256];
    assert_int_equal(r->status, status);
    const msgpack_object *e = ts_get(&r->body.data, "error");
    assert_string_equal(ts_str(e, "code", buf, sizeof buf), code);
    const char *msg = ts_str(e, "message", buf, sizeof buf);
    if (strstr(msg, needle) == NULL) {
        fail_msg("message \"%s\" does not name \"%s\"", msg, needle);
    }
}

/* Check an item of API.md's reward list. @claimed NULL: not claimed yet. */
static void check_item(const msgpack_object *o, const char *board, int64_t cycle, int64_t rank,
                       const char *reward, const char *granted, const char *claimed)
{
    char buf[128];
    assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(o->via.map.size, 6);
    assert_string_equal(ts_str(o, "board_id", buf, sizeof buf), board);
    assert_int_equal(ts_i64(o, "cycle"), cycle);
    assert_int_equal(ts_i64(o, "rank"), rank);
    assert_string_equal(ts_str(o, "reward", buf, sizeof buf), reward);
    assert_string_equal(ts_str(o, "granted_at", buf, sizeof buf), granted);
    if (claimed) {
        assert_string_equal(ts_str(o, "claimed_at", buf, sizeof buf), claimed);
    } else {
        assert_true(ts_is_nil(o, "claimed_at"));
    }
}

/* The player's rewards (all, or pending only), one page of @limit (0: default) from @cursor. */
static int fx_list(struct fixture *f, const char *player, int pending, uint32_t limit,
                   const char *cursor, struct ts_answer *a)
{
    struct shard_query q = {.type = SHARD_Q_REWARDS,
                            .player_id = ts_s(player),
                            .pending = pending,
                            .limit = limit,
                            .cursor = ts_s(cursor)};
    return ts_query(f->s, &q, a, f->errmsg);
}

/* The first grant stores the reward and emits reward.granted; a repeat (a closer retrying,
 * even naming another rank or reward) answers the stored item and emits nothing. */
static void grant_once_then_repeat_changes_nothing(void **state)
{
    struct fixture *f = *state;
    char buf[64];
    const struct ts_result *r = fx_do(f, ts_grant(T0, "daily", 29412, "ann", 1, "gold"));
    assert_int_equal(r->status, 201);
    check_item(&r->body.data, "daily", 29412, 1, "gold", "2026-11-22T12:31:00.123Z", NULL);
    assert_int_equal(f->out.nev, 1);
    const msgpack_object *ev = &f->out.ev[0].data;
    assert_int_equal(ev->via.map.size, 8);
    assert_string_equal(ts_str(ev, "type", buf, sizeof buf), "reward.granted");
    assert_string_equal(ts_str(ev, "player_id", buf, sizeof buf), "ann");
    assert_string_equal(ts_str(ev, "board_id", buf, sizeof buf), "daily");
    assert_int_equal(ts_i64(ev, "cycle"), 29412);
    assert_int_equal(ts_i64(ev, "rank"), 1);
    assert_string_equal(ts_str(ev, "reward", buf, sizeof buf), "gold");
    assert_string_equal(ts_str(ev, "region", buf, sizeof buf), "eu");
    assert_int_equal(ts_i64(ev, "index"), (int64_t)f->index);

    r = fx_do(f, ts_grant(T0 + HOUR, "daily", 29412, "ann", 2, "silver"));
    assert_int_equal(r->status, 200);
    check_item(&r->body.data, "daily", 29412, 1, "gold", "2026-11-22T12:31:00.123Z", NULL);
    assert_int_equal(f->out.nev, 0);

    struct ts_answer a;
    assert_int_equal(fx_list(f, "ann", 0, 0, "", &a), 0);
    const msgpack_object *items = ts_get(&a.data, "items");
    assert_int_equal(items->via.array.size, 1);
    check_item(&items->via.array.ptr[0], "daily", 29412, 1, "gold", "2026-11-22T12:31:00.123Z",
               NULL);
    assert_true(ts_is_nil(&a.data, "next_cursor"));
    ts_answer_free(&a);
    /* Another cycle of the same board, and cycle 0 (a tournament), are other rewards. */
    assert_int_equal(fx_do(f, ts_grant(T0, "daily", 29413, "ann", 1, "gold"))->status, 201);
    assert_int_equal(fx_do(f, ts_grant(T0, "cup", 0, "ann", 3, "bronze"))->status, 201);
    assert_int_equal(f->out.nev, 1);
}

/* A grant to a player this region does not hold is 404 and leaves nothing behind. */
static void grant_to_unknown_player_is_404(void **state)
{
    struct fixture *f = *state;
    fx_error(fx_do(f, ts_grant(T0, "daily", 1, "zed", 1, "gold")), 404, "not_found", "zed");
    assert_int_equal(f->out.nev, 0);
    assert_int_equal(ts_apply1(f->s, &f->index, ts_player(T0, "zed", "eu", "")), 201);
    struct ts_answer a;
    assert_int_equal(fx_list(f, "zed", 0, 0, "", &a), 0);
    assert_int_equal(ts_get(&a.data, "items")->via.array.size, 0);
    ts_answer_free(&a);
    assert_int_equal(fx_list(f, "nobody", 0, 0, "", &a), LR_ENOTFOUND);
    assert_non_null(strstr(f->errmsg, "nobody"));
}

/* The decoder bounds a grant as cmd.h declares: rank 1..1000000, reward 1..64, cycle >= 0. */
static void grant_fields_are_bounded(void **state)
{
    struct fixture *f = *state;
    fx_error(fx_do(f, ts_grant(T0, "daily", 1, "ann", 0, "gold")), 400, "invalid_argument", "rank");
    fx_error(fx_do(f, ts_grant(T0, "daily", 1, "ann", 1000001, "gold")), 400, "invalid_argument",
             "rank");
    fx_error(fx_do(f, ts_grant(T0, "daily", 1, "ann", 1, "")), 400, "invalid_argument", "reward");
    fx_error(fx_do(f, ts_grant(T0, "daily", -1, "ann", 1, "gold")), 400, "invalid_argument",
             "cycle");
    fx_error(fx_do(f, ts_grant(T0, "bad board", 1, "ann", 1, "gold")), 400, "invalid_argument",
             "board_id");
    assert_int_equal(fx_do(f, ts_grant(T0, "daily", 1, "ann", 1000000,
                                       "0123456789012345678901234567890123456789012345678901234567"
                                       "890123"))
                         ->status,
                     201);
}

/* A claim sets claimed_at once; another key (or none) is 409, an unknown reward 404, and
 * claimed_at never changes afterwards. */
static void claim_once_then_conflict(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(fx_do(f, ts_grant(T0, "daily", 7, "ann", 2, "silver"))->status, 201);
    const struct ts_result *r = fx_do(f, ts_claim(T0 + 5, "ann", "daily", 7, "claim-key-1"));
    assert_int_equal(r->status, 200);
    assert_false(r->replayed);
    check_item(&r->body.data, "daily", 7, 2, "silver", "2026-11-22T12:31:00.123Z",
               "2026-11-22T12:31:00.128Z");
    assert_int_equal(f->out.nev, 0);
    fx_error(fx_do(f, ts_claim(T0 + 9, "ann", "daily", 7, "claim-key-2")), 409, "conflict",
             "already claimed");
    fx_error(fx_do(f, ts_claim(T0 + 9, "ann", "daily", 7, "")), 409, "conflict", "already claimed");
    fx_error(fx_do(f, ts_claim(T0, "ann", "daily", 8, "claim-key-3")), 404, "not_found", "cycle 8");
    fx_error(fx_do(f, ts_claim(T0, "ann", "weekly", 7, "claim-key-3")), 404, "not_found", "weekly");
    fx_error(fx_do(f, ts_claim(T0, "bob", "daily", 7, "claim-key-3")), 404, "not_found", "bob");
    fx_error(fx_do(f, ts_claim(T0, "zed", "daily", 7, "claim-key-3")), 404, "not_found", "zed");
    /* A grant repeated after the claim keeps the claim. */
    r = fx_do(f, ts_grant(T0 + HOUR, "daily", 7, "ann", 2, "silver"));
    assert_int_equal(r->status, 200);
    check_item(&r->body.data, "daily", 7, 2, "silver", "2026-11-22T12:31:00.123Z",
               "2026-11-22T12:31:00.128Z");
    struct ts_answer a;
    assert_int_equal(fx_list(f, "ann", 0, 0, "", &a), 0);
    check_item(&ts_get(&a.data, "items")->via.array.ptr[0], "daily", 7, 2, "silver",
               "2026-11-22T12:31:00.123Z", "2026-11-22T12:31:00.128Z");
    ts_answer_free(&a);
}

/* The same key replays the first answer byte for byte; the same key on another reward is an
 * idempotency conflict; after the key's window the claim's own key still answers 200. */
static void claim_replay_with_the_same_key(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(fx_do(f, ts_grant(T0, "daily", 7, "ann", 2, "silver"))->status, 201);
    assert_int_equal(fx_do(f, ts_grant(T0, "daily", 8, "ann", 1, "gold"))->status, 201);
    const struct ts_result *r = fx_do(f, ts_claim(T0 + 5, "ann", "daily", 7, "claim-key-1"));
    assert_int_equal(r->status, 200);
    size_t n = f->out.res[0].body.data.via.map.size;
    msgpack_sbuffer first;
    msgpack_sbuffer_init(&first);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &first, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, r->body.data);

    r = fx_do(f, ts_claim(T0 + HOUR, "ann", "daily", 7, "claim-key-1"));
    assert_int_equal(r->status, 200);
    assert_true(r->replayed);
    assert_int_equal(r->body.data.via.map.size, n);
    msgpack_sbuffer again;
    msgpack_sbuffer_init(&again);
    msgpack_packer_init(&pk, &again, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, r->body.data);
    assert_int_equal(again.size, first.size);
    assert_memory_equal(again.data, first.data, first.size);
    msgpack_sbuffer_destroy(&again);
    msgpack_sbuffer_destroy(&first);

    fx_error(fx_do(f, ts_claim(T0 + HOUR, "ann", "daily", 8, "claim-key-1")), 409, "conflict",
             "idempotency");
    /* 26 h later the key has expired from the idempotency records, yet it is the key that
     * claimed the reward: 200 with the unchanged item, not a conflict. */
    r = fx_do(f, ts_claim(T0 + 26 * HOUR, "ann", "daily", 7, "claim-key-1"));
    assert_int_equal(r->status, 200);
    assert_false(r->replayed);
    check_item(&r->body.data, "daily", 7, 2, "silver", "2026-11-22T12:31:00.123Z",
               "2026-11-22T12:31:00.128Z");
    fx_error(fx_do(f, ts_claim(T0 + 26 * HOUR, "ann", "daily", 7, "claim-key-2")), 409, "conflict",
             "already claimed");
}

/* Newest grant first (grants of one entry in their order), pending hides claimed ones, and
 * pages by cursor cover the list exactly once. */
static void list_newest_first_pending_and_pages(void **state)
{
    struct fixture *f = *state;
    struct cmd batch[3] = {ts_grant(T0 + 2, "b.a", 3, "ann", 1, "r3"),
                           ts_grant(T0 + 2, "b.b", 3, "bob", 1, "bob3"),
                           ts_grant(T0 + 2, "a.z", 3, "ann", 2, "r4")};
    assert_int_equal(fx_do(f, ts_grant(T0, "b.a", 1, "ann", 1, "r1"))->status, 201);
    assert_int_equal(fx_do(f, ts_grant(T0 + 1, "b.a", 2, "ann", 5, "r2"))->status, 201);
    ts_apply_free(&f->out);
    ts_apply(f->s, &f->index, batch, 3, &f->out);
    assert_int_equal(f->out.nev, 3);
    assert_int_equal(fx_do(f, ts_grant(T0 + 3, "cup", 0, "ann", 9, "r5"))->status, 201);
    assert_int_equal(fx_do(f, ts_claim(T0 + 4, "ann", "b.a", 2, "claim-key-1"))->status, 200);
    assert_int_equal(fx_do(f, ts_claim(T0 + 4, "ann", "cup", 0, "claim-key-2"))->status, 200);

    static const char *const all[] = {"r5", "r4", "r3", "r2", "r1"};
    static const char *const pending[] = {"r4", "r3", "r1"};
    struct ts_answer a;
    char buf[64], cursor[128];
    assert_int_equal(fx_list(f, "ann", 0, 0, "", &a), 0);
    const msgpack_object *items = ts_get(&a.data, "items");
    assert_int_equal(items->via.array.size, 5);
    for (int i = 0; i < 5; i++) {
        assert_string_equal(ts_str(&items->via.array.ptr[i], "reward", buf, sizeof buf), all[i]);
    }
    assert_false(ts_is_nil(&items->via.array.ptr[0], "claimed_at"));
    assert_true(ts_is_nil(&items->via.array.ptr[1], "claimed_at"));
    ts_answer_free(&a);
    assert_int_equal(fx_list(f, "bob", 1, 0, "", &a), 0);
    assert_int_equal(ts_get(&a.data, "items")->via.array.size, 1);
    ts_answer_free(&a);

    /* Pending only, two at a time: r4 r3 | r1, and the last page says so. */
    for (int pass = 0; pass < 2; pass++) {
        int pend = pass == 0;
        const char *const *want = pend ? pending : all;
        int total = pend ? 3 : 5, seen = 0;
        cursor[0] = '\0';
        for (;;) {
            assert_int_equal(fx_list(f, "ann", pend, 2, cursor, &a), 0);
            items = ts_get(&a.data, "items");
            assert_true(items->via.array.size <= 2);
            for (uint32_t i = 0; i < items->via.array.size; i++, seen++) {
                assert_true(seen < total);
                assert_string_equal(ts_str(&items->via.array.ptr[i], "reward", buf, sizeof buf),
                                    want[seen]);
            }
            if (ts_is_nil(&a.data, "next_cursor")) {
                ts_answer_free(&a);
                break;
            }
            ts_str(&a.data, "next_cursor", cursor, sizeof cursor);
            ts_answer_free(&a);
        }
        assert_int_equal(seen, total);
    }
    assert_int_equal(fx_list(f, "ann", 0, 0, "not-a-cursor", &a), LR_EINVAL);
    assert_non_null(strstr(f->errmsg, "cursor"));
    assert_int_equal(fx_list(f, "ann", 0, 1001, "", &a), LR_EINVAL);
    assert_non_null(strstr(f->errmsg, "limit"));
}

/* Rewards and claims survive a reopen, and the running digest matches a full scan. */
static void rewards_survive_reopen_and_digest_holds(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(fx_do(f, ts_grant(T0, "daily", 7, "ann", 2, "silver"))->status, 201);
    assert_int_equal(fx_do(f, ts_grant(T0, "daily", 7, "bob", 1, "gold"))->status, 201);
    assert_int_equal(fx_do(f, ts_claim(T0 + 5, "bob", "daily", 7, "claim-key-1"))->status, 200);
    uint64_t before = shard_digest(f->s), scanned;
    assert_int_equal(shard_digest_scan(f->s, &scanned), 0);
    assert_true(before == scanned);
    shard_close(f->s);
    fx_open(f);
    assert_true(shard_digest(f->s) == before);
    struct ts_answer a;
    assert_int_equal(fx_list(f, "bob", 0, 0, "", &a), 0);
    check_item(&ts_get(&a.data, "items")->via.array.ptr[0], "daily", 7, 1, "gold",
               "2026-11-22T12:31:00.123Z", "2026-11-22T12:31:00.128Z");
    ts_answer_free(&a);
    fx_error(fx_do(f, ts_claim(T0 + 9, "bob", "daily", 7, "claim-key-2")), 409, "conflict",
             "already claimed");
    assert_int_equal(fx_do(f, ts_claim(T0 + 9, "ann", "daily", 7, "claim-key-2"))->status, 200);
    assert_int_equal(shard_digest_scan(f->s, &scanned), 0);
    assert_true(shard_digest(f->s) == scanned);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(grant_once_then_repeat_changes_nothing),
        T(grant_to_unknown_player_is_404),
        T(grant_fields_are_bounded),
        T(claim_once_then_conflict),
        T(claim_replay_with_the_same_key),
        T(list_newest_first_pending_and_pages),
        T(rewards_survive_reopen_and_digest_holds),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
