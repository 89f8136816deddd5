/* tests/integration/test_api_views.c — part of test_api (test_api.c): the per-player views
 * (friends, history, dashboard, stats, rewards) and the error conventions every endpoint
 * shares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/httpc.h"
#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"
#include "test_api_int.h"

void friends_view(void **state)
{
    (void)state;
    static const char *const regions[] = {"na", "eu", "apac"};
    struct httpc_resp r;
    char ids[512];
    put_board("fr-b", "asc", "incr", NULL);
    for (int i = 0; i < 9; i++) { /* fr-i: score i → global rank i + 1 */
        char id[16];
        snprintf(id, sizeof id, "fr-%d", i);
        put_player(id, regions[i % 3], NULL);
        score_ok("fr-b", id, i, 0);
    }
    put_player("fr-noscore", "eu", NULL);
    reqf(&r, "GET", "", NULL, "/v1/boards/fr-b/players?ids=fr-7,fr-2,fr-noscore,fr-ghost,fr-4");
    expect(&r, 200, "friends");
    json_t *ents = json_object_get(r.json, "entries");
    ids_of(ents, ids, sizeof ids);
    assert_string_equal(ids, "fr-2,fr-4,fr-7");
    assert_int_equal(tdev_int(json_array_get(ents, 0), "rank"), 3);
    assert_int_equal(tdev_int(json_array_get(ents, 1), "rank"), 5);
    assert_int_equal(tdev_int(json_array_get(ents, 2), "rank"), 8);
    assert_string_equal(tdev_str(json_array_get(ents, 2), "region"), "eu");
    assert_int_equal(tdev_int(json_array_get(ents, 2), "score"), 7);
    httpc_free(&r);
    /* Region scope: eu holds fr-1, fr-4, fr-7 → ranks 1, 2, 3; fr-2 (apac) is not in it. */
    reqf(&r, "GET", "", NULL, "/v1/boards/fr-b/players?ids=fr-7,fr-2,fr-4&scope=region:eu");
    expect(&r, 200, "friends region");
    ents = json_object_get(r.json, "entries");
    ids_of(ents, ids, sizeof ids);
    assert_string_equal(ids, "fr-4,fr-7");
    assert_int_equal(tdev_int(json_array_get(ents, 0), "rank"), 2);
    assert_int_equal(tdev_int(json_array_get(ents, 1), "rank"), 3);
    httpc_free(&r);

    char path[2048];
    size_t n = (size_t)snprintf(path, sizeof path, "/v1/boards/fr-b/players?ids=");
    for (int i = 0; i < 101; i++) {
        n += (size_t)snprintf(path + n, sizeof path - n, "%sf%d", i ? "," : "", i);
    }
    expect_err("GET", path, "", NULL, 400, "invalid_argument");
    expect_err("GET", "/v1/boards/fr-b/players?ids=fr-1&scope=region:mars", "", NULL, 400,
               "invalid_argument");
    expect_err("GET", "/v1/boards/fr-b/players?ids=bad$id", "", NULL, 400, "invalid_argument");
}

/* History: unlocks newest first, paged by cursor, filtered by game; total counts them all. */
void history_with_cursor(void **state)
{
    (void)state;
    struct httpc_resp r;
    put_game("hi-g1");
    put_game("hi-g2");
    for (int i = 0; i < 4; i++) {
        char a[16];
        snprintf(a, sizeof a, "a%d", i);
        put_ach("hi-g1", a, 1, 1, 0);
        put_ach("hi-g2", a, 1, 1, 0);
    }
    put_player("hi-p", "eu", NULL);
    /* Order of unlocks (oldest first): g1/a0, g2/a0, g1/a1, g2/a1, g1/a2, g1/a3, g2/a2 */
    static const char *const order[][2] = {{"hi-g1", "a0"}, {"hi-g2", "a0"}, {"hi-g1", "a1"},
                                           {"hi-g2", "a1"}, {"hi-g1", "a2"}, {"hi-g1", "a3"},
                                           {"hi-g2", "a2"}};
    for (int i = 0; i < 7; i++) {
        unlock_ok("hi-p", order[i][0], order[i][1]);
    }
    char cursor[512] = "";
    int seen = 0, pages = 0;
    for (;; pages++) {
        assert_true(pages < 5);
        reqf(&r, "GET", "", NULL, "/v1/players/hi-p/achievements?limit=3%s%s",
             cursor[0] ? "&cursor=" : "", cursor);
        expect(&r, 200, "history");
        assert_int_equal(tdev_int(r.json, "total"), 7);
        json_t *items = json_object_get(r.json, "items"), *it;
        size_t i;
        assert_true(json_array_size(items) <= 3);
        json_array_foreach(items, i, it)
        {
            int want = 6 - seen++;
            assert_true(want >= 0);
            assert_string_equal(tdev_str(it, "game_id"), order[want][0]);
            assert_string_equal(tdev_str(it, "achievement_id"), order[want][1]);
            assert_int_equal(tdev_int(it, "progress"), 1);
            assert_int_equal(tdev_int(it, "steps"), 1);
            assert_true(json_is_true(json_object_get(it, "unlocked")));
            assert_true(tdev_is_time(tdev_str(it, "unlocked_at")));
        }
        json_t *next = json_object_get(r.json, "next_cursor");
        if (json_is_null(next)) {
            httpc_free(&r);
            break;
        }
        assert_true(json_is_string(next));
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        httpc_free(&r);
    }
    assert_int_equal(seen, 7);
    reqf(&r, "GET", "", NULL, "/v1/players/hi-p/achievements?game_id=hi-g2");
    expect(&r, 200, "history by game");
    json_t *items = json_object_get(r.json, "items");
    assert_int_equal(json_array_size(items), 3);
    assert_int_equal(tdev_int(r.json, "total"), 3);
    assert_string_equal(tdev_str(json_array_get(items, 0), "achievement_id"), "a2");
    assert_string_equal(tdev_str(json_array_get(items, 2), "achievement_id"), "a0");
    assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
    httpc_free(&r);
    expect_err("GET", "/v1/players/hi-p/achievements?limit=0", "", NULL, 400, "invalid_argument");
    expect_err("GET", "/v1/players/hi-p/achievements?limit=1001", "", NULL, 400,
               "invalid_argument");
    expect_err("GET", "/v1/players/hi-p/achievements?cursor=garbage", "", NULL, 400,
               "invalid_argument");
    expect_err("GET", "/v1/players/hi-nobody/achievements", "", NULL, 404, "not_found");
}

/* Dashboard: points, unlocks and completion per game and on average, recent unlocks newest
 * first, the boards with an alltime score, a one-day streak. */
void dashboard(void **state)
{
    (void)state;
    struct httpc_resp r;
    put_game("db-g1");
    put_game("db-g2");
    put_ach("db-g1", "x1", 10, 1, 0);
    put_ach("db-g1", "x2", 20, 1, 0);
    put_ach("db-g1", "x3", 5, 2, 0);
    put_ach("db-g2", "y1", 7, 1, 0);
    put_ach("db-g2", "y2", 3, 1, 0);
    put_ach("db-g2", "y3", 3, 1, 0);
    put_board("db-b", "desc", "best", NULL);
    put_player("db-p", "apac", NULL);
    unlock_ok("db-p", "db-g1", "x1");
    unlock_ok("db-p", "db-g1", "x2");
    unlock_ok("db-p", "db-g2", "y1");
    score_ok("db-b", "db-p", 42, 0);

    reqf(&r, "GET", "", NULL, "/v1/players/db-p/dashboard");
    expect(&r, 200, "dashboard");
    assert_string_equal(tdev_str(r.json, "player_id"), "db-p");
    assert_int_equal(tdev_int(r.json, "total_points"), 37);
    assert_int_equal(tdev_int(r.json, "total_achievements"), 3);
    assert_num(tdev_num(r.json, "average_completion"), 50.0, "average_completion");
    json_t *games = json_object_get(r.json, "games"), *g;
    size_t i;
    int seen = 0;
    assert_int_equal(json_array_size(games), 2);
    json_array_foreach(games, i, g)
    {
        const char *id = tdev_str(g, "game_id");
        assert_non_null(id);
        int one = strcmp(id, "db-g1") == 0;
        seen |= one ? 1 : 2;
        assert_int_equal(tdev_int(g, "achievements_unlocked"), one ? 2 : 1);
        assert_int_equal(tdev_int(g, "achievements_total"), 3);
        assert_num(tdev_num(g, "completion_pct"), one ? 66.67 : 33.33, "completion_pct");
        assert_int_equal(tdev_int(g, "points"), one ? 30 : 7);
        assert_true(tdev_is_time(tdev_str(g, "last_unlock_at")));
    }
    assert_int_equal(seen, 3);
    json_t *recent = json_object_get(r.json, "recent_unlocks");
    assert_int_equal(json_array_size(recent), 3);
    assert_string_equal(tdev_str(json_array_get(recent, 0), "achievement_id"), "y1");
    assert_string_equal(tdev_str(json_array_get(recent, 1), "achievement_id"), "x2");
    assert_string_equal(tdev_str(json_array_get(recent, 2), "achievement_id"), "x1");
    assert_string_equal(tdev_str(json_array_get(recent, 0), "game_id"), "db-g2");
    json_t *boards = json_object_get(r.json, "boards"), *b;
    int found = 0;
    json_array_foreach(boards, i, b)
    {
        if (tdev_str(b, "board_id") && strcmp(tdev_str(b, "board_id"), "db-b") == 0) {
            found = 1;
            assert_int_equal(tdev_int(b, "score"), 42);
            assert_int_equal(tdev_int(b, "region_rank"), 1);
        }
    }
    assert_true(found);
    assert_int_equal(tdev_int(r.json, "streak_days"), 1);
    httpc_free(&r);
    expect_err("GET", "/v1/players/db-nobody/dashboard", "", NULL, 404, "not_found");
}

/* Stats (like the window checks above, this assumes the run does not cross midnight UTC):
 * zero-filled days, oldest first, today's unlocks, points and submissions; replays are
 * not counted; days outside 1–90 is 400. */
void stats(void **state)
{
    (void)state;
    struct httpc_resp r;
    char today[16];
    put_game("st-g");
    put_ach("st-g", "s1", 4, 1, 0);
    put_ach("st-g", "s2", 6, 1, 0);
    put_board("st-b", "desc", "incr", NULL);
    put_player("st-p", "na", NULL);
    unlock_ok("st-p", "st-g", "s1");
    unlock_ok("st-p", "st-g", "s2");
    for (int i = 0; i < 3; i++) {
        score_ok("st-b", "st-p", 1, 0);
    }
    post_score(&r, "st-b", "st-p", 5, 0, "st-key-0001");
    httpc_free(&r);
    post_score(&r, "st-b", "st-p", 5, 0, "st-key-0001"); /* a replay: not counted */
    assert_true(replayed(&r));
    httpc_free(&r);
    utc_period(today, sizeof today, "%Y-%m-%d", 0);

    reqf(&r, "GET", "", NULL, "/v1/players/st-p/stats?days=7");
    expect(&r, 200, "stats");
    json_t *days = json_object_get(r.json, "days");
    assert_int_equal(json_array_size(days), 7);
    for (size_t i = 0; i < 7; i++) {
        json_t *d = json_array_get(days, i);
        char want[16];
        utc_period(want, sizeof want, "%Y-%m-%d", (int)(6 - i));
        assert_string_equal(tdev_str(d, "day"), want);
        assert_int_equal(tdev_int(d, "unlocks"), i == 6 ? 2 : 0);
        assert_int_equal(tdev_int(d, "points"), i == 6 ? 10 : 0);
        assert_int_equal(tdev_int(d, "score_submissions"), i == 6 ? 4 : 0);
    }
    httpc_free(&r);
    reqf(&r, "GET", "", NULL, "/v1/players/st-p/stats?game_id=st-g&days=1");
    expect(&r, 200, "stats by game");
    days = json_object_get(r.json, "days");
    assert_int_equal(json_array_size(days), 1);
    assert_string_equal(tdev_str(json_array_get(days, 0), "day"), today);
    assert_int_equal(tdev_int(json_array_get(days, 0), "unlocks"), 2);
    assert_int_equal(tdev_int(json_array_get(days, 0), "points"), 10);
    httpc_free(&r);
    reqf(&r, "GET", "", NULL, "/v1/players/st-p/stats");
    expect(&r, 200, "stats default");
    assert_int_equal(json_array_size(json_object_get(r.json, "days")), 30);
    httpc_free(&r);
    expect_err("GET", "/v1/players/st-p/stats?days=0", "", NULL, 400, "invalid_argument");
    expect_err("GET", "/v1/players/st-p/stats?days=91", "", NULL, 400, "invalid_argument");
    expect_err("GET", "/v1/players/st-nobody/stats", "", NULL, 404, "not_found");
}

/* Rewards: a player with none (no cycle has closed) has an empty list. */
void rewards_empty(void **state)
{
    (void)state;
    struct httpc_resp r;
    put_player("rw-p", "eu", NULL);
    reqf(&r, "GET", "", NULL, "/v1/players/rw-p/rewards");
    expect(&r, 200, "rewards");
    assert_true(json_is_array(json_object_get(r.json, "items")));
    assert_int_equal(json_array_size(json_object_get(r.json, "items")), 0);
    httpc_free(&r);
    expect_err("GET", "/v1/players/rw-nobody/rewards", "", NULL, 404, "not_found");
}

/* API.md's error conventions: keys, unknown endpoints, methods, sizes, JSON, limits; the
 * router keeps serving after each. */
void error_conventions(void **state)
{
    (void)state;
    struct httpc_resp r;
    put_player("er-p", "na", NULL);
    put_board("er-b", "desc", "best", NULL);
    const char *sc = "{\"player_id\":\"er-p\",\"score\":1,\"idempotency_key\":\"er-key-0001\"}";
    /* Keys: writes need the api (or admin) key; catalog and cluster the admin key. */
    expect_err("POST", "/v1/boards/er-b/scores", "", sc, 401, "unauthorized");
    expect_err("POST", "/v1/boards/er-b/scores", "Bearer-nope", sc, 401, "unauthorized");
    assert_int_equal(st("POST", "/v1/boards/er-b/scores", ADMIN, sc), 200);
    expect_err("PUT", "/v1/boards/er-b", API, "{\"order\":\"desc\",\"operator\":\"best\"}", 403,
               "forbidden");
    expect_err("PUT", "/v1/games/er-g", "", "{\"name\":\"G\"}", 401, "unauthorized");
    /* Reads need no key. */
    assert_int_equal(st("GET", "/v1/boards/er-b/top", "", NULL), 200);
    assert_int_equal(st("GET", "/v1/boards/er-b", "", NULL), 200);
    assert_int_equal(st("GET", "/v1/players/er-p", "", NULL), 200);

    expect_err("GET", "/v1/nothing/here", "", NULL, 404, "not_found");
    expect_err("GET", "/v2/players/er-p", "", NULL, 404, "not_found");
    expect_err("DELETE", "/v1/players/er-p", API, NULL, 405, "method_not_allowed");
    expect_err("POST", "/healthz", "", "{}", 405, "method_not_allowed");
    expect_err("GET", "/v1/unlocks", "", NULL, 405, "method_not_allowed");
    expect_err("PUT", "/v1/boards/er-b/top", ADMIN, "{}", 405, "method_not_allowed");

    /* 64 KiB is the limit: a body of exactly 65536 bytes is read, one byte more is 413. */
    size_t cap = 64 * 1024 + 2;
    char *big = malloc(cap);
    static const char head[] = "{\"name\":\"Big\",\"region\":\"na\",\"pad\":\"";
    memcpy(big, head, sizeof head - 1);
    memset(big + sizeof head - 1, 'x', cap - sizeof head + 1);
    memcpy(big + 64 * 1024 - 2, "\"}", 3); /* 65536 bytes */
    reqf(&r, "PUT", API, big, "/v1/players/er-big");
    if (r.status == 413) {
        fail_msg("a body of exactly 64 KiB was refused: %s", r.body);
    }
    httpc_free(&r);
    memset(big + 64 * 1024 - 2, 'x', 1);
    memcpy(big + 64 * 1024 - 1, "\"}", 3); /* 65537 bytes */
    expect_err("PUT", "/v1/players/er-big2", API, big, 413, "payload_too_large");
    expect_err("PUT", "/v1/games/er-g", ADMIN, big, 413, "payload_too_large");

    expect_err("POST", "/v1/boards/er-b/scores", API, "{not json", 400, "invalid_argument");
    expect_err("POST", "/v1/boards/er-b/scores", API, "", 400, "invalid_argument");
    expect_err("PUT", "/v1/players/er-p", API, "[1,2]", 400, "invalid_argument");
    expect_err("PUT", "/v1/games/er-g", ADMIN, "{\"name\":\"G\"} trailing", 400,
               "invalid_argument");

    expect_err("GET", "/v1/boards/er-b/top?limit=0", "", NULL, 400, "invalid_argument");
    expect_err("GET", "/v1/boards/er-b/top?limit=1001", "", NULL, 400, "invalid_argument");
    expect_err("GET", "/v1/boards/er-b/top?limit=ten", "", NULL, 400, "invalid_argument");
    assert_int_equal(st("GET", "/v1/boards/er-b/top?limit=1000", "", NULL), 200);
    expect_err("GET", "/v1/boards/er-b/top?window=hourly", "", NULL, 400, "invalid_argument");
    expect_err("GET", "/v1/boards/er-b/top?scope=region:mars", "", NULL, 400, "invalid_argument");
    assert_int_equal(st("GET", "/healthz", "", NULL), 200);
    assert_int_equal(st("GET", "/readyz", "", NULL), 200);

    /* The same rules on the newer endpoints. */
    expect_err("POST", "/v1/events", "nope", "[]", 401, "unauthorized");
    expect_err("GET", "/v1/events", "", NULL, 405, "method_not_allowed");
    expect_err("POST", "/v1/events", API, big, 413, "payload_too_large");
    expect_err("POST", "/v1/events", API, "[{]", 400, "invalid_argument");
    expect_err("GET", "/v1/boards/er-b/players/er-p?scope=region:mars", "", NULL, 400,
               "invalid_argument");
    expect_err("GET", "/v1/boards/er-b/players?ids=er-p&scope=region:mars", "", NULL, 400,
               "invalid_argument");
    expect_err("GET", "/v1/players/er-p/achievements?limit=0", "", NULL, 400, "invalid_argument");
    expect_err("POST", "/v1/players/er-p/rewards", API, "{}", 405, "method_not_allowed");
    free(big);
}
