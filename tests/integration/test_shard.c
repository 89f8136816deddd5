/* tests/integration/test_shard.c — scenarios of the region state machine on real LMDB:
 * one behaviour of API.md per test, through shard_apply and shard_query only. */
#include <stdlib.h>
#include <string.h>

#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

#define T0 1795350660123LL /* 2026-11-22T... */
#define DAY 86400000LL

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

static void fx_catalog(struct fixture *f)
{
    assert_int_equal(fx_do(f, ts_game(T0, "g"))->status, 201);
    assert_int_equal(fx_do(f, ts_ach(T0, "g", "first", 10, 1, 0))->status, 201);
    assert_int_equal(fx_do(f, ts_ach(T0, "g", "grind", 25, 5, 1))->status, 201);
    assert_int_equal(fx_do(f, ts_player(T0, "ann", "eu", "red"))->status, 201);
    assert_int_equal(fx_do(f, ts_player(T0, "bob", "eu", ""))->status, 201);
}

static void fx_error(const struct ts_result *r, int status, const char *code, const char *needle)
{
    char buf[256];
    assert_int_equal(r->status, status);
    const msgpack_object *e = ts_get(&r->body.data, "error");
    assert_string_equal(ts_str(e, "code", buf, sizeof buf), code);
    assert_non_null(strstr(ts_str(e, "message", buf, sizeof buf), needle));
}

/* PUT player answers 201 then 200, and a player of another region is refused unwritten. */
static void player_put_creates_then_updates(void **state)
{
    struct fixture *f = *state;
    char buf[64];
    const struct ts_result *r = fx_do(f, ts_player(T0, "ann", "eu", "red"));
    assert_int_equal(r->status, 201);
    assert_string_equal(ts_str(&r->body.data, "created_at", buf, sizeof buf),
                        "2026-11-22T12:31:00.123Z");
    r = fx_do(f, ts_player(T0 + 5, "ann", "eu", ""));
    assert_int_equal(r->status, 200);
    assert_true(ts_is_nil(&r->body.data, "guild"));
    assert_string_equal(ts_str(&r->body.data, "created_at", buf, sizeof buf),
                        "2026-11-22T12:31:00.123Z");
    uint64_t before = shard_digest(f->s);
    fx_error(fx_do(f, ts_player(T0, "zed", "na", "")), 400, "invalid_argument", "region");
    /* Only the applied index moved. */
    struct shard_query q = {.type = SHARD_Q_PLAYER_GET, .player_id = ts_s("zed")};
    struct ts_answer a;
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), LR_ENOTFOUND);
    assert_non_null(strstr(f->errmsg, "zed"));
    assert_true(before != 0);
}

/* score.updated carries the entry as a board shows it (the player's name at apply time and
 * the stored metadata, BIN as in top pages); a known player's new name or guild emits
 * player.updated, a creation or an unchanged put none. */
static void events_carry_names_and_player_updates(void **state)
{
    struct fixture *f = *state;
    char buf[64];
    fx_catalog(f);
    assert_int_equal(fx_do(f, ts_board(T0, "arena", CMD_ORDER_DESC, CMD_OP_SET, 1, 0))->status,
                     201);
    struct cmd c = ts_score(T0 + 1, "arena", "ann", 7, 1, "");
    c.u.score.metadata = ts_s("{\"car\":\"red\"}");
    assert_int_equal(fx_do(f, c)->status, 200);
    assert_int_equal(f->out.nev, 1);
    const msgpack_object *ev = &f->out.ev[0].data;
    assert_int_equal(ev->via.map.size, 10);
    assert_string_equal(ts_str(ev, "type", buf, sizeof buf), "score.updated");
    assert_string_equal(ts_str(ev, "name", buf, sizeof buf), "ann");
    const msgpack_object *meta = ts_get(ev, "metadata");
    assert_non_null(meta);
    assert_int_equal(meta->type, MSGPACK_OBJECT_BIN);
    assert_int_equal(meta->via.bin.size, 13);
    assert_memory_equal(meta->via.bin.ptr, "{\"car\":\"red\"}", 13);
    assert_int_equal(ts_i64(ev, "index"), (int64_t)f->index);

    /* Unlock points: their board has no metadata. */
    assert_int_equal(fx_do(f, ts_unlock(T0 + 2, "bob", "g", "first", 0, ""))->status, 200);
    assert_int_equal(f->out.nev, 2);
    assert_string_equal(ts_str(&f->out.ev[1].data, "name", buf, sizeof buf), "bob");
    assert_true(ts_is_nil(&f->out.ev[1].data, "metadata"));

    /* The same put again: nothing changed, nothing emitted. */
    assert_int_equal(fx_do(f, ts_player(T0 + 3, "ann", "eu", "red"))->status, 200);
    assert_int_equal(f->out.nev, 0);
    c = ts_player(T0 + 4, "ann", "eu", "red");
    c.u.player_put.name = ts_s("Ann \xc3\x89");
    assert_int_equal(fx_do(f, c)->status, 200);
    assert_int_equal(f->out.nev, 1);
    ev = &f->out.ev[0].data;
    assert_int_equal(ev->via.map.size, 6);
    assert_string_equal(ts_str(ev, "type", buf, sizeof buf), "player.updated");
    assert_string_equal(ts_str(ev, "player_id", buf, sizeof buf), "ann");
    assert_string_equal(ts_str(ev, "name", buf, sizeof buf), "Ann \xc3\x89");
    assert_string_equal(ts_str(ev, "guild", buf, sizeof buf), "red");
    assert_string_equal(ts_str(ev, "region", buf, sizeof buf), "eu");
    assert_int_equal(ts_i64(ev, "index"), (int64_t)f->index);
    /* A guild move alone, to none. */
    c.ts = T0 + 5;
    c.u.player_put.guild = ts_s("");
    assert_int_equal(fx_do(f, c)->status, 200);
    assert_int_equal(f->out.nev, 1);
    assert_true(ts_is_nil(&f->out.ev[0].data, "guild"));
    /* The next score shows the new name. */
    assert_int_equal(fx_do(f, ts_score(T0 + 6, "arena", "ann", 8, 1, ""))->status, 200);
    assert_int_equal(f->out.nev, 1);
    assert_string_equal(ts_str(&f->out.ev[0].data, "name", buf, sizeof buf), "Ann \xc3\x89");
    assert_true(ts_is_nil(&f->out.ev[0].data, "metadata"));
    /* A creation emits nothing. */
    assert_int_equal(fx_do(f, ts_player(T0 + 7, "cid", "eu", "red"))->status, 201);
    assert_int_equal(f->out.nev, 0);
}

/* Unlocking awards points once, onto points.<game>, and a second unlock awards nothing. */
static void unlock_awards_points_once(void **state)
{
    struct fixture *f = *state;
    char buf[64];
    fx_catalog(f);
    const struct ts_result *r = fx_do(f, ts_unlock(T0 + 1, "ann", "g", "first", 0, "k-unlock-1"));
    assert_int_equal(r->status, 200);
    assert_true(ts_bool(&r->body.data, "newly_unlocked"));
    assert_int_equal(ts_i64(&r->body.data, "points_awarded"), 10);
    assert_int_equal(ts_i64(&r->body.data, "total_points"), 10);
    assert_string_equal(ts_str(&r->body.data, "unlocked_at", buf, sizeof buf),
                        "2026-11-22T12:31:00.124Z");
    assert_int_equal(f->out.nev, 2); /* achievement.unlocked, then score.updated */
    assert_string_equal(ts_str(&f->out.ev[0].data, "type", buf, sizeof buf),
                        "achievement.unlocked");
    assert_int_equal(ts_i64(&f->out.ev[0].data, "index"), (int64_t)f->index);
    assert_string_equal(ts_str(&f->out.ev[1].data, "board_id", buf, sizeof buf), "points.g");

    r = fx_do(f, ts_unlock(T0 + 2, "ann", "g", "first", 0, "k-unlock-2"));
    assert_int_equal(r->status, 200);
    assert_false(ts_bool(&r->body.data, "newly_unlocked"));
    assert_int_equal(ts_i64(&r->body.data, "points_awarded"), 0);
    assert_int_equal(ts_i64(&r->body.data, "total_points"), 10);
    assert_int_equal(f->out.nev, 0);
}

/* Incremental achievements accumulate steps, cap at the target and unlock there. */
static void unlock_incremental_steps(void **state)
{
    struct fixture *f = *state;
    fx_catalog(f);
    const struct ts_result *r = fx_do(f, ts_unlock(T0, "bob", "g", "grind", 2, ""));
    assert_int_equal(ts_i64(&r->body.data, "progress"), 2);
    assert_int_equal(ts_i64(&r->body.data, "steps"), 5);
    assert_false(ts_bool(&r->body.data, "unlocked"));
    assert_true(ts_is_nil(&r->body.data, "unlocked_at"));
    r = fx_do(f, ts_unlock(T0, "bob", "g", "grind", 9, ""));
    assert_int_equal(ts_i64(&r->body.data, "progress"), 5);
    assert_true(ts_bool(&r->body.data, "newly_unlocked"));
    assert_int_equal(ts_i64(&r->body.data, "total_points"), 25);
}

/* Unknown player, game or achievement: 404 with the missing name. */
static void unlock_unknown_things_404(void **state)
{
    struct fixture *f = *state;
    fx_catalog(f);
    fx_error(fx_do(f, ts_unlock(T0, "nobody", "g", "first", 0, "")), 404, "not_found", "nobody");
    fx_error(fx_do(f, ts_unlock(T0, "ann", "nogame", "first", 0, "")), 404, "not_found", "nogame");
    fx_error(fx_do(f, ts_unlock(T0, "ann", "g", "noach", 0, "")), 404, "not_found", "noach");
}

/* The same key and body replays the first answer; another body is 409; refusals store no key. */
static void idempotency_replay_conflict_and_no_key_on_error(void **state)
{
    struct fixture *f = *state;
    fx_catalog(f);
    assert_int_equal(fx_do(f, ts_board(T0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0))->status,
                     201);
    const struct ts_result *r = fx_do(f, ts_score(T0, "arena", "ann", 5, 0, "key-aaaa-1"));
    assert_int_equal(r->status, 200);
    assert_false(r->replayed);
    r = fx_do(f, ts_score(T0 + 9, "arena", "ann", 5, 0, "key-aaaa-1"));
    assert_int_equal(r->status, 200);
    assert_true(r->replayed);
    assert_int_equal(ts_i64(&r->body.data, "score"), 5); /* not 10: applied once */
    fx_error(fx_do(f, ts_score(T0 + 9, "arena", "ann", 6, 0, "key-aaaa-1")), 409, "conflict",
             "idempotency");
    /* The key belongs to ann: bob may use it. */
    assert_false(fx_do(f, ts_score(T0, "arena", "bob", 5, 0, "key-aaaa-1"))->replayed);
    /* A refused request leaves no key: the same key then applies for real. */
    fx_error(fx_do(f, ts_score(T0, "nope", "ann", 1, 0, "key-bbbb-1")), 404, "not_found", "nope");
    r = fx_do(f, ts_score(T0, "arena", "ann", 1, 0, "key-bbbb-1"));
    assert_false(r->replayed);
    assert_int_equal(ts_i64(&r->body.data, "score"), 6);
    /* After more than a day the key is forgotten and applies again. */
    r = fx_do(f, ts_score(T0 + 26 * 3600 * 1000LL, "arena", "ann", 5, 0, "key-aaaa-1"));
    assert_false(r->replayed);
    assert_int_equal(ts_i64(&r->body.data, "score"), 11);
}

/* Each operator keeps what API.md says; a result out of range is 400 and changes nothing. */
static void score_operators_and_range(void **state)
{
    struct fixture *f = *state;
    fx_catalog(f);
    fx_do(f, ts_board(T0, "best", CMD_ORDER_ASC, CMD_OP_BEST, 1, 0));
    fx_do(f, ts_board(T0, "set", CMD_ORDER_DESC, CMD_OP_SET, 1, 0));
    fx_do(f, ts_board(T0, "decr", CMD_ORDER_DESC, CMD_OP_DECR, 1, 0));
    const struct ts_result *r = fx_do(f, ts_score(T0, "best", "ann", 50, 0, ""));
    assert_true(ts_bool(&r->body.data, "improved"));
    r = fx_do(f, ts_score(T0 + 1, "best", "ann", 60, 0, ""));
    assert_false(ts_bool(&r->body.data, "improved"));
    assert_int_equal(ts_i64(&r->body.data, "score"), 50);
    r = fx_do(f, ts_score(T0 + 2, "best", "ann", 50, -1, ""));
    assert_true(ts_bool(&r->body.data, "improved")); /* asc: a lower subscore is better */
    r = fx_do(f, ts_score(T0, "set", "ann", 50, 0, ""));
    r = fx_do(f, ts_score(T0, "set", "ann", 7, 0, ""));
    assert_int_equal(ts_i64(&r->body.data, "score"), 7);
    r = fx_do(f, ts_score(T0, "decr", "ann", 3, 0, ""));
    assert_int_equal(ts_i64(&r->body.data, "score"), -3);
    r = fx_do(f, ts_score(T0, "decr", "ann", 9007199254740991LL, 0, ""));
    assert_int_equal(r->status, 400);
    r = fx_do(f, ts_score(T0, "decr", "ann", 1, 0, ""));
    assert_int_equal(ts_i64(&r->body.data, "score"), -4);
}

/* Equal scores rank by earlier time, then by player id. */
static void ties_fall_to_time_then_id(void **state)
{
    struct fixture *f = *state;
    char buf[64];
    fx_catalog(f);
    fx_do(f, ts_player(T0, "cat", "eu", ""));
    fx_do(f, ts_board(T0, "b", CMD_ORDER_DESC, CMD_OP_BEST, 1, 0));
    struct cmd batch[3] = {ts_score(T0 + 5, "b", "cat", 10, 0, ""),
                           ts_score(T0 + 5, "b", "bob", 10, 0, ""),
                           ts_score(T0 + 1, "b", "ann", 10, 0, "")};
    ts_apply_free(&f->out);
    ts_apply(f->s, &f->index, batch, 3, &f->out);
    struct shard_query q = {.type = SHARD_Q_TOP, .board_id = ts_s("b"), .now_ms = T0};
    struct ts_answer a;
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    const msgpack_object *e = ts_get(&a.data, "entries");
    assert_int_equal(e->via.array.size, 3);
    assert_string_equal(ts_str(&e->via.array.ptr[0], "player_id", buf, sizeof buf), "ann");
    assert_string_equal(ts_str(&e->via.array.ptr[1], "player_id", buf, sizeof buf), "bob");
    assert_string_equal(ts_str(&e->via.array.ptr[2], "player_id", buf, sizeof buf), "cat");
    ts_answer_free(&a);
}

/* Guild scopes hold only members, and a guild change moves the player's entries. */
static void guild_scope_and_move(void **state)
{
    struct fixture *f = *state;
    fx_catalog(f);
    fx_do(f, ts_board(T0, "b", CMD_ORDER_DESC, CMD_OP_BEST, 1, 0));
    fx_do(f, ts_score(T0, "b", "ann", 10, 0, ""));
    fx_do(f, ts_score(T0, "b", "bob", 20, 0, ""));
    struct shard_query q = {.type = SHARD_Q_RANK,
                            .board_id = ts_s("b"),
                            .player_id = ts_s("ann"),
                            .guild = ts_s("red"),
                            .now_ms = T0};
    struct ts_answer a;
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_i64(&a.data, "rank"), 1);
    assert_int_equal(ts_i64(&a.data, "total"), 1);
    ts_answer_free(&a);
    fx_do(f, ts_player(T0, "bob", "eu", "red"));
    q.player_id = ts_s("bob");
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_i64(&a.data, "rank"), 1);
    assert_int_equal(ts_i64(&a.data, "total"), 2);
    ts_answer_free(&a);
    fx_do(f, ts_player(T0, "ann", "eu", "blue"));
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_i64(&a.data, "total"), 1);
    ts_answer_free(&a);
}

/* A daily window keeps each UTC day apart and answers any period by name. */
static void daily_windows_keep_days_apart(void **state)
{
    struct fixture *f = *state;
    char buf[64];
    fx_catalog(f);
    fx_do(f, ts_board(T0, "d", CMD_ORDER_DESC, CMD_OP_INCR,
                      1u << TIMEFMT_ALLTIME | 1u << TIMEFMT_DAILY | 1u << TIMEFMT_WEEKLY, 0));
    fx_do(f, ts_score(T0, "d", "ann", 5, 0, ""));
    fx_do(f, ts_score(T0 + DAY, "d", "ann", 7, 0, ""));
    struct shard_query q = {.type = SHARD_Q_RANK,
                            .board_id = ts_s("d"),
                            .player_id = ts_s("ann"),
                            .window = TIMEFMT_DAILY,
                            .now_ms = T0 + DAY};
    struct ts_answer a;
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_i64(&a.data, "score"), 7);
    assert_string_equal(ts_str(&a.data, "period", buf, sizeof buf), "2026-11-23");
    ts_answer_free(&a);
    q.has_period = 1;
    assert_int_equal(timefmt_period_parse(TIMEFMT_DAILY, "2026-11-22", 10, &q.period), 0);
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_i64(&a.data, "score"), 5);
    ts_answer_free(&a);
    q.window = TIMEFMT_ALLTIME;
    q.has_period = 0;
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_i64(&a.data, "score"), 12);
    ts_answer_free(&a);
    q.window = TIMEFMT_MONTHLY;
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), LR_EINVAL);
    assert_non_null(strstr(f->errmsg, "monthly"));
}

/* History pages newest first by cursor; dashboard and stats sum what happened. */
static void history_dashboard_and_stats(void **state)
{
    struct fixture *f = *state;
    char buf[128];
    fx_catalog(f);
    fx_do(f, ts_unlock(T0, "ann", "g", "grind", 1, ""));
    fx_do(f, ts_unlock(T0 + 1, "ann", "g", "first", 0, ""));
    fx_do(f, ts_board(T0, "b", CMD_ORDER_DESC, CMD_OP_BEST, 1, 0));
    fx_do(f, ts_score(T0 - DAY, "b", "ann", 3, 0, ""));
    struct shard_query q = {.type = SHARD_Q_HISTORY, .player_id = ts_s("ann"), .limit = 1};
    struct ts_answer a;
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_i64(&a.data, "total"), 2);
    const msgpack_object *it = ts_get(&a.data, "items");
    assert_string_equal(ts_str(&it->via.array.ptr[0], "achievement_id", buf, sizeof buf), "first");
    ts_str(&a.data, "next_cursor", buf, sizeof buf);
    ts_answer_free(&a);
    q.cursor = ts_s(buf);
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    it = ts_get(&a.data, "items");
    assert_string_equal(ts_str(&it->via.array.ptr[0], "achievement_id", buf, sizeof buf), "grind");
    assert_true(ts_is_nil(&a.data, "next_cursor"));
    ts_answer_free(&a);
    q.cursor = ts_s("garbage!");
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), LR_EINVAL);
    assert_non_null(strstr(f->errmsg, "cursor"));

    struct shard_query d = {.type = SHARD_Q_DASHBOARD, .player_id = ts_s("ann"), .now_ms = T0};
    assert_int_equal(ts_query(f->s, &d, &a, f->errmsg), 0);
    assert_int_equal(ts_i64(&a.data, "total_points"), 10);
    assert_int_equal(ts_i64(&a.data, "total_achievements"), 1);
    assert_true(ts_f64(&a.data, "average_completion") == 50.0);
    assert_int_equal(ts_get(&a.data, "recent_unlocks")->via.array.size, 1);
    assert_int_equal(ts_get(&a.data, "boards")->via.array.size, 2); /* b and points.g */
    assert_int_equal(ts_i64(&a.data, "streak_days"), 2);
    ts_answer_free(&a);

    struct shard_query st = {
        .type = SHARD_Q_STATS, .player_id = ts_s("ann"), .days = 3, .now_ms = T0};
    assert_int_equal(ts_query(f->s, &st, &a, f->errmsg), 0);
    const msgpack_object *days = ts_get(&a.data, "days");
    assert_int_equal(days->via.array.size, 3);
    assert_string_equal(ts_str(&days->via.array.ptr[2], "day", buf, sizeof buf), "2026-11-22");
    assert_int_equal(ts_i64(&days->via.array.ptr[2], "unlocks"), 1);
    assert_int_equal(ts_i64(&days->via.array.ptr[2], "points"), 10);
    assert_int_equal(ts_i64(&days->via.array.ptr[1], "score_submissions"), 1);
    assert_int_equal(ts_i64(&days->via.array.ptr[0], "unlocks"), 0);
    ts_answer_free(&a);
}

/* Achievement listings hide hidden names from the public and compute unlocked_pct. */
static void achievement_list_counts_and_hidden(void **state)
{
    struct fixture *f = *state;
    fx_catalog(f);
    fx_do(f, ts_unlock(T0, "ann", "g", "first", 0, ""));
    fx_do(f, ts_unlock(T0, "bob", "g", "grind", 1, ""));
    struct shard_query q = {.type = SHARD_Q_ACH_LIST, .game_id = ts_s("g")};
    struct ts_answer a;
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    const msgpack_object *l = ts_get(&a.data, "achievements");
    assert_int_equal(l->via.array.size, 2);
    assert_int_equal(ts_i64(&l->via.array.ptr[0], "unlocked_count"), 1);
    assert_true(ts_f64(&l->via.array.ptr[0], "unlocked_pct") == 50.0);
    assert_int_equal(l->via.array.ptr[1].via.map.size, 7); /* hidden: no name, description */
    ts_answer_free(&a);
    q.admin = 1;
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    l = ts_get(&a.data, "achievements");
    assert_int_equal(l->via.array.ptr[1].via.map.size, 9);
    ts_answer_free(&a);
}

/* Tournament scores need a join, the window and attempts left; refusals are 403. */
static void tournament_rules(void **state)
{
    struct fixture *f = *state;
    fx_catalog(f);
    struct cmd t;
    memset(&t, 0, sizeof t);
    t.type = CMD_TOURNAMENT_PUT;
    t.ts = T0;
    t.u.tournament_put.tournament_id = ts_s("cup");
    t.u.tournament_put.name = ts_s("Cup");
    t.u.tournament_put.start_ms = T0 + 10;
    t.u.tournament_put.end_ms = T0 + 1000;
    t.u.tournament_put.max_participants = 1;
    t.u.tournament_put.max_attempts = 1;
    assert_int_equal(fx_do(f, t)->status, 201);
    fx_error(fx_do(f, ts_score(T0 + 20, "cup", "ann", 5, 0, "")), 403, "forbidden", "joined");
    struct cmd j;
    memset(&j, 0, sizeof j);
    j.type = CMD_TOURNAMENT_JOIN;
    j.ts = T0;
    j.u.tournament_join.tournament_id = ts_s("cup");
    j.u.tournament_join.player_id = ts_s("ann");
    assert_int_equal(fx_do(f, j)->status, 200);
    assert_int_equal(fx_do(f, j)->status, 200); /* joining twice is a no-op */
    j.u.tournament_join.player_id = ts_s("bob");
    fx_error(fx_do(f, j), 409, "conflict", "full");
    fx_error(fx_do(f, ts_score(T0 + 5, "cup", "ann", 5, 0, "")), 403, "forbidden", "active");
    assert_int_equal(fx_do(f, ts_score(T0 + 20, "cup", "ann", 5, 0, ""))->status, 200);
    fx_error(fx_do(f, ts_score(T0 + 30, "cup", "ann", 6, 0, "")), 403, "forbidden", "attempts");
    t.u.tournament_put.end_ms = T0;
    fx_error(fx_do(f, t), 400, "invalid_argument", "end_at");
}

/* A malformed entry is a no-op that still advances the applied index; replays are skipped. */
static void malformed_entries_and_replays(void **state)
{
    struct fixture *f = *state;
    fx_catalog(f);
    uint64_t digest = shard_digest(f->s);
    assert_int_equal(shard_apply(f->s, ++f->index, "\xc1garbage", 8, NULL), 0);
    assert_int_equal(shard_commit(f->s), 0);
    assert_int_equal(shard_applied_index(f->s), f->index);
    /* Replaying an old index changes nothing, whatever it holds. */
    struct cmd c = ts_player(T0, "dan", "eu", "");
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    cmd_entry_begin(&pk, 1);
    cmd_encode(&pk, &c);
    assert_int_equal(shard_apply(f->s, 1, sb.data, sb.size, NULL), 0);
    assert_int_equal(shard_commit(f->s), 0);
    msgpack_sbuffer_destroy(&sb);
    struct shard_query q = {.type = SHARD_Q_PLAYER_GET, .player_id = ts_s("dan")};
    struct ts_answer a;
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), LR_ENOTFOUND);
    assert_true(shard_digest(f->s) != digest); /* the applied index is part of the state */
}

/* Close and reopen: same digest, same applied index, same answers. */
static void restart_keeps_state_and_answers(void **state)
{
    struct fixture *f = *state;
    fx_catalog(f);
    fx_do(f, ts_board(T0, "b", CMD_ORDER_DESC, CMD_OP_BEST, 1, 0));
    for (int i = 0; i < 50; i++) {
        char id[16];
        snprintf(id, sizeof id, "p%02d", i);
        fx_do(f, ts_player(T0, id, "eu", i % 3 ? "" : "red"));
        fx_do(f, ts_score(T0 + i, "b", id, i % 7, 0, ""));
    }
    struct shard_query q = {
        .type = SHARD_Q_TOP, .board_id = ts_s("b"), .limit = 1000, .now_ms = T0};
    struct ts_answer before, after;
    assert_int_equal(ts_query(f->s, &q, &before, f->errmsg), 0);
    uint64_t digest = shard_digest(f->s), scanned;
    shard_close(f->s);
    fx_open(f);
    assert_true(shard_digest(f->s) == digest);
    assert_int_equal(shard_digest_scan(f->s, &scanned), 0);
    assert_true(scanned == digest);
    assert_int_equal(shard_applied_index(f->s), f->index);
    assert_int_equal(ts_query(f->s, &q, &after, f->errmsg), 0);
    assert_int_equal(before.buf.size, after.buf.size);
    assert_memory_equal(before.buf.data, after.buf.data, before.buf.size);
    ts_answer_free(&before);
    ts_answer_free(&after);
    /* The data dir belongs to region eu. */
    shard_close(f->s);
    struct shard_config cfg = {f->dir, "na", 32ULL << 20, 0};
    assert_int_equal(shard_open(&cfg, &f->s, f->errmsg), LR_EINVAL);
    assert_non_null(strstr(f->errmsg, "region eu"));
    fx_open(f);
}

/* A map too small for a group fails with LR_EMAPFULL; after abort and grow it applies. */
static void map_full_aborts_then_grows(void **state)
{
    struct fixture *f = *state;
    shard_close(f->s);
    testlib_rmrf(f->dir);
    struct shard_config cfg = {f->dir, "eu", 1ULL << 20, 0};
    assert_int_equal(shard_open(&cfg, &f->s, f->errmsg), 0);
    fx_catalog(f);
    uint64_t committed = shard_digest(f->s);
    static struct cmd cmds[1000];
    static char ids[1000][70];
    for (int i = 0; i < 1000; i++) {
        snprintf(ids[i], sizeof ids[i], "player-with-a-long-id-%040d", i);
        cmds[i] = ts_player(T0, ids[i], "eu", "");
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    cmd_entry_begin(&pk, 1000);
    for (int i = 0; i < 1000; i++) {
        cmd_encode(&pk, &cmds[i]);
    }
    int rv = 0;
    uint64_t idx = f->index + 1;
    for (int round = 0; round < 4; round++) {
        rv = shard_apply(f->s, idx, sb.data, sb.size, NULL);
        if (rv == 0) {
            rv = shard_commit(f->s);
        }
        if (rv == 0) {
            break;
        }
        assert_int_equal(rv, LR_EMAPFULL);
        assert_int_equal(shard_abort(f->s), 0);
        assert_true(shard_digest(f->s) == committed);
        assert_int_equal(shard_grow(f->s), 0);
    }
    assert_int_equal(rv, 0);
    f->index = idx;
    msgpack_sbuffer_destroy(&sb);
    uint64_t scanned;
    assert_int_equal(shard_digest_scan(f->s, &scanned), 0);
    assert_true(scanned == shard_digest(f->s));
}

/* Versioned catalog puts: an older version is refused unwritten (a late re-send cannot undo
 * a newer put), the same version applies again (re-sending is idempotent), and 0 always
 * applies. Every kind: game, achievement, board, tournament. */
static void catalog_versions_last_writer_wins(void **state)
{
    struct fixture *f = *state;
    char buf[64];
    struct cmd g = ts_game(T0, "g");
    g.u.game_put.version = 100;
    g.u.game_put.name = ts_s("New");
    assert_int_equal(fx_do(f, g)->status, 201);
    struct cmd old = g;
    old.u.game_put.version = 99;
    old.u.game_put.name = ts_s("Old");
    fx_error(fx_do(f, old), 409, "conflict", "newer version");
    struct shard_query q = {.type = SHARD_Q_GAME_GET, .game_id = ts_s("g")};
    struct ts_answer a;
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    assert_string_equal(ts_str(&a.data, "name", buf, sizeof buf), "New");
    ts_answer_free(&a);
    assert_int_equal(fx_do(f, g)->status, 200); /* the same version again */

    struct cmd ach = ts_ach(T0, "g", "first", 10, 1, 0);
    ach.u.ach_put.version = 50;
    assert_int_equal(fx_do(f, ach)->status, 201);
    ach.u.ach_put.version = 49;
    fx_error(fx_do(f, ach), 409, "conflict", "newer version");
    ach.u.ach_put.version = 0;
    assert_int_equal(fx_do(f, ach)->status, 200);

    struct cmd b = ts_board(T0, "b", CMD_ORDER_DESC, CMD_OP_BEST, 1u << TIMEFMT_ALLTIME, 0);
    b.u.board_put.version = 7;
    assert_int_equal(fx_do(f, b)->status, 201);
    b.u.board_put.version = 6;
    b.u.board_put.op = CMD_OP_SET;
    fx_error(fx_do(f, b), 409, "conflict", "newer version");
    b.u.board_put.version = 8;
    assert_int_equal(fx_do(f, b)->status, 200);
    /* the version survives a restart (the board record is reloaded) */
    shard_close(f->s);
    fx_open(f);
    b.u.board_put.version = 7;
    fx_error(fx_do(f, b), 409, "conflict", "newer version");
}

/* NEAR: the count before a foreign key and the entries on each side of it; LOCATE: which ids
 * live here. */
static void near_and_locate(void **state)
{
    struct fixture *f = *state;
    char buf[64];
    assert_int_equal(
        fx_do(f, ts_board(T0, "b", CMD_ORDER_DESC, CMD_OP_BEST, 1u << TIMEFMT_ALLTIME, 0))->status,
        201);
    const char *ids[] = {"p1", "p2", "p3", "p4", "p5"};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(fx_do(f, ts_player(T0, ids[i], "eu", ""))->status, 201);
        assert_int_equal(fx_do(f, ts_score(T0, "b", ids[i], (i + 1) * 10, 0, "k1234567"))->status,
                         200);
    }
    /* a foreign key scoring 35 at T0 sits after p5 (50) and p4 (40) */
    struct shard_query q = {
        .type = SHARD_Q_NEAR, .board_id = ts_s("b"), .around = 1, .nprobes = 1, .now_ms = T0};
    q.probes[0].score = 35;
    q.probes[0].updated_ms = T0;
    q.probes[0].player_id = ts_s("zz");
    struct ts_answer a;
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_i64(&a.data, "count"), 2);
    assert_int_equal(ts_i64(&a.data, "total"), 5);
    const msgpack_object *bf = ts_get(&a.data, "before");
    const msgpack_object *af = ts_get(&a.data, "after");
    assert_int_equal(bf->via.array.size, 1);
    assert_int_equal(af->via.array.size, 2);
    assert_string_equal(ts_str(&bf->via.array.ptr[0], "player_id", buf, sizeof buf), "p4");
    assert_string_equal(ts_str(&af->via.array.ptr[0], "player_id", buf, sizeof buf), "p3");
    assert_string_equal(ts_str(&af->via.array.ptr[1], "player_id", buf, sizeof buf), "p2");
    ts_answer_free(&a);
    q.nprobes = 2; /* exactly one probe */
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), LR_EINVAL);

    struct shard_query l = {.type = SHARD_Q_LOCATE, .nids = 3};
    l.ids[0] = ts_s("p2");
    l.ids[1] = ts_s("nobody");
    l.ids[2] = ts_s("p5");
    assert_int_equal(ts_query(f->s, &l, &a, f->errmsg), 0);
    const msgpack_object *found = ts_get(&a.data, "found");
    assert_int_equal(found->via.array.size, 3);
    assert_true(found->via.array.ptr[0].via.boolean);
    assert_false(found->via.array.ptr[1].via.boolean);
    assert_true(found->via.array.ptr[2].via.boolean);
    ts_answer_free(&a);
}

/* shard_clock_ms is the highest stamp applied, whatever the order stamps came in, and it
 * survives a reopen; an older stamp still applies as it is. */
static void clock_is_max_stamp_applied_and_persists(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(shard_clock_ms(f->s), 0);
    fx_catalog(f); /* every command at T0 */
    assert_int_equal(shard_clock_ms(f->s), T0);
    struct cmd c[3] = {ts_board(T0 + 5, "b", CMD_ORDER_DESC, CMD_OP_BEST, 1, 0),
                       ts_score(T0 + 9, "b", "ann", 7, 0, ""),
                       ts_score(T0 + 2, "b", "bob", 3, 0, "")};
    ts_apply_free(&f->out);
    ts_apply(f->s, &f->index, c, 3, &f->out);
    assert_int_equal(f->out.res[2].status, 200);
    assert_int_equal(shard_clock_ms(f->s), T0 + 9); /* the max of the entry, not its last */
    /* An older stamp and a failing command: the clock does not go back. */
    assert_int_equal(fx_do(f, ts_score(T0 - DAY, "b", "ann", 9, 0, ""))->status, 200);
    assert_int_equal(fx_do(f, ts_score(T0 + 1, "nope", "ann", 1, 0, ""))->status, 404);
    assert_int_equal(shard_clock_ms(f->s), T0 + 9);
    assert_int_equal(fx_do(f, ts_score(T0 + DAY, "b", "bob", 4, 0, ""))->status, 200);
    shard_close(f->s);
    fx_open(f);
    assert_int_equal(shard_clock_ms(f->s), T0 + DAY);
    assert_int_equal(shard_applied_index(f->s), f->index);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(player_put_creates_then_updates),
        T(events_carry_names_and_player_updates),
        T(unlock_awards_points_once),
        T(unlock_incremental_steps),
        T(unlock_unknown_things_404),
        T(idempotency_replay_conflict_and_no_key_on_error),
        T(score_operators_and_range),
        T(ties_fall_to_time_then_id),
        T(guild_scope_and_move),
        T(daily_windows_keep_days_apart),
        T(history_dashboard_and_stats),
        T(achievement_list_counts_and_hidden),
        T(tournament_rules),
        T(malformed_entries_and_replays),
        T(restart_keeps_state_and_answers),
        T(map_full_aborts_then_grows),
        T(catalog_versions_last_writer_wins),
        T(near_and_locate),
        T(clock_is_max_stamp_applied_and_persists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
