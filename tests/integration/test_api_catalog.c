/* tests/integration/test_api_catalog.c — part of test_api (test_api.c): players, games and
 * achievements (versioned, to every region), the achievement listing across regions and
 * unlocks, incremental and idempotent. */
#include <stdio.h>
#include <string.h>

#include "tests/lib/httpc.h"
#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"
#include "test_api_int.h"

void players_put_get(void **state)
{
    (void)state;
    struct httpc_resp r;
    const char *ann = "{\"name\":\"Ann\",\"region\":\"eu\"}";
    expect_err("PUT", "/v1/players/pl-ann", "", ann, 401, "unauthorized");
    assert_int_equal(st("PUT", "/v1/players/pl-ann", API, ann), 201);
    assert_int_equal(st("PUT", "/v1/players/pl-ann", API,
                        "{\"name\":\"Ann B\",\"region\":\"eu\",\"guild\":\"red\"}"),
                     200);
    expect_err("PUT", "/v1/players/pl-ann", API, "{\"name\":\"Ann\",\"region\":\"na\"}", 409,
               "conflict");
    assert_int_equal(
        st("PUT", "/v1/players/pl-adm", ADMIN, "{\"name\":\"Adm\",\"region\":\"apac\"}"), 201);
    reqf(&r, "GET", "", NULL, "/v1/players/pl-ann");
    expect(&r, 200, "GET player");
    assert_string_equal(tdev_str(r.json, "player_id"), "pl-ann");
    assert_string_equal(tdev_str(r.json, "name"), "Ann B");
    assert_string_equal(tdev_str(r.json, "region"), "eu");
    assert_string_equal(tdev_str(r.json, "guild"), "red");
    assert_true(tdev_is_time(tdev_str(r.json, "created_at")));
    httpc_free(&r);
    reqf(&r, "GET", "", NULL, "/v1/players/pl-adm");
    expect(&r, 200, "GET player");
    assert_string_equal(tdev_str(r.json, "region"), "apac");
    assert_true(json_is_null(json_object_get(r.json, "guild"))); /* present, null */
    httpc_free(&r);

    char longid[80], path[128];
    memset(longid, 'a', 65);
    longid[65] = '\0';
    snprintf(path, sizeof path, "/v1/players/%s", longid);
    expect_err("PUT", path, API, "{\"name\":\"X\",\"region\":\"eu\"}", 400, "invalid_argument");
    longid[64] = '\0'; /* 64 chars is the longest id */
    snprintf(path, sizeof path, "/v1/players/%s", longid);
    assert_int_equal(st("PUT", path, API, "{\"name\":\"X\",\"region\":\"eu\"}"), 201);
    expect_err("PUT", "/v1/players/bad$id", API, "{\"name\":\"X\",\"region\":\"eu\"}", 400,
               "invalid_argument");
    expect_err("PUT", "/v1/players/bad%20id", API, "{\"name\":\"X\",\"region\":\"eu\"}", 400,
               "invalid_argument");
    expect_err("PUT", "/v1/players/pl-x", API, "{\"name\":\"X\",\"region\":\"mars\"}", 400,
               "invalid_argument");
    expect_err("PUT", "/v1/players/pl-x", API, "{\"name\":\"X\"}", 400, "invalid_argument");
    expect_err("PUT", "/v1/players/pl-x", API, "{\"name\":\"\",\"region\":\"eu\"}", 400,
               "invalid_argument");
    expect_err("PUT", "/v1/players/pl-x", API,
               "{\"name\":\"X\",\"region\":\"eu\",\"guild\":\"a b\"}", 400, "invalid_argument");
    expect_err("GET", "/v1/players/pl-x", "", NULL, 404, "not_found"); /* none of those made it */
    expect_err("GET", "/v1/players/nobody", "", NULL, 404, "not_found");
}

/* Games, achievements and boards: PUT 201/200, GET their fields, bad definitions 400, the
 * admin key only, unknown ones 404; every game has its points board. */
void catalog_put_get(void **state)
{
    (void)state;
    struct httpc_resp r;
    expect_err("PUT", "/v1/games/cat-g", API, "{\"name\":\"Cat\"}", 403, "forbidden");
    assert_int_equal(st("PUT", "/v1/games/cat-g", ADMIN, "{\"name\":\"Cat\"}"), 201);
    assert_int_equal(st("PUT", "/v1/games/cat-g", ADMIN, "{\"name\":\"Cat 2\"}"), 200);
    reqf(&r, "GET", "", NULL, "/v1/games/cat-g");
    expect(&r, 200, "GET game");
    assert_string_equal(tdev_str(r.json, "game_id"), "cat-g");
    assert_string_equal(tdev_str(r.json, "name"), "Cat 2");
    assert_int_equal(tdev_int(r.json, "achievements_total"), 0);
    httpc_free(&r);
    char g57[80], path[160];
    memset(g57, 'g', 57);
    g57[57] = '\0';
    snprintf(path, sizeof path, "/v1/games/%s", g57);
    expect_err("PUT", path, ADMIN, "{\"name\":\"Long\"}", 400, "invalid_argument");

    const char *a1 = "{\"name\":\"One\",\"description\":\"d\",\"points\":5}";
    expect_err("PUT", "/v1/games/cat-g/achievements/a1", API, a1, 403, "forbidden");
    assert_int_equal(st("PUT", "/v1/games/cat-g/achievements/a1", ADMIN, a1), 201);
    assert_int_equal(st("PUT", "/v1/games/cat-g/achievements/a1", ADMIN, a1), 200);
    assert_int_equal(st("PUT", "/v1/games/cat-g/achievements/a2", ADMIN,
                        "{\"name\":\"Two\",\"points\":7,\"steps\":3}"),
                     201);
    expect_err("PUT", "/v1/games/cat-g/achievements/a3", ADMIN, "{\"name\":\"Bad\",\"points\":-1}",
               400, "invalid_argument");
    expect_err("PUT", "/v1/games/cat-g/achievements/a3", ADMIN,
               "{\"name\":\"Bad\",\"points\":1,\"steps\":0}", 400, "invalid_argument");
    expect_err("PUT", "/v1/games/cat-none/achievements/a1", ADMIN, a1, 404, "not_found");
    reqf(&r, "GET", "", NULL, "/v1/games/cat-g");
    assert_int_equal(tdev_int(r.json, "achievements_total"), 2);
    httpc_free(&r);

    const char *b =
        "{\"order\":\"desc\",\"operator\":\"best\",\"windows\":[\"alltime\",\"daily\"],"
        "\"reset_period_s\":null,\"snapshot_top\":10,\"rewards\":[],\"game_id\":null}";
    expect_err("PUT", "/v1/boards/cat-b", API, b, 403, "forbidden");
    assert_int_equal(st("PUT", "/v1/boards/cat-b", ADMIN, b), 201);
    assert_int_equal(st("PUT", "/v1/boards/cat-b", ADMIN, b), 200);
    reqf(&r, "GET", "", NULL, "/v1/boards/cat-b");
    expect(&r, 200, "GET board");
    assert_string_equal(tdev_str(r.json, "board_id"), "cat-b");
    assert_string_equal(tdev_str(r.json, "order"), "desc");
    assert_string_equal(tdev_str(r.json, "operator"), "best");
    json_t *w = json_object_get(r.json, "windows");
    assert_int_equal(json_array_size(w), 2);
    assert_string_equal(json_string_value(json_array_get(w, 0)), "alltime");
    assert_string_equal(json_string_value(json_array_get(w, 1)), "daily");
    assert_int_equal(tdev_int(r.json, "keep_periods"), 8); /* the default */
    httpc_free(&r);
    const char *bk = "{\"order\":\"desc\",\"operator\":\"best\",\"keep_periods\":3}";
    assert_int_equal(st("PUT", "/v1/boards/cat-k", ADMIN, bk), 201);
    reqf(&r, "GET", "", NULL, "/v1/boards/cat-k");
    assert_int_equal(tdev_int(r.json, "keep_periods"), 3);
    httpc_free(&r);
    static const char *const bad_keep[] = {"0", "1001", "\"3\"", "2.5"};
    for (size_t i = 0; i < sizeof bad_keep / sizeof bad_keep[0]; i++) {
        char body[128];
        snprintf(body, sizeof body,
                 "{\"order\":\"desc\",\"operator\":\"best\",\"keep_periods\":%s}", bad_keep[i]);
        expect_err("PUT", "/v1/boards/cat-k", ADMIN, body, 400, "invalid_argument");
    }
    expect_err("PUT", "/v1/boards/cat-x", ADMIN, "{\"order\":\"up\",\"operator\":\"best\"}", 400,
               "invalid_argument");
    expect_err("PUT", "/v1/boards/cat-x", ADMIN, "{\"order\":\"asc\",\"operator\":\"max\"}", 400,
               "invalid_argument");
    expect_err("PUT", "/v1/boards/cat-x", ADMIN,
               "{\"order\":\"asc\",\"operator\":\"set\",\"reset_period_s\":59}", 400,
               "invalid_argument");
    expect_err("PUT", "/v1/boards/cat-x", ADMIN,
               "{\"order\":\"asc\",\"operator\":\"set\",\"windows\":[\"hourly\"]}", 400,
               "invalid_argument");
    expect_err("GET", "/v1/boards/cat-x", "", NULL, 404, "not_found");
    expect_err("GET", "/v1/games/cat-none", "", NULL, 404, "not_found");

    reqf(&r, "GET", "", NULL, "/v1/boards/points.cat-g");
    expect(&r, 200, "GET points board");
    assert_string_equal(tdev_str(r.json, "order"), "desc");
    assert_string_equal(tdev_str(r.json, "operator"), "incr");
    httpc_free(&r);
}

/* The achievement listing sums unlocks over the three regions: unlocked_pct is over the
 * players with any unlock or progress in the game, rounded to 2 decimals; hidden names show
 * only to the admin key. */
void achievement_listing_across_regions(void **state)
{
    (void)state;
    struct httpc_resp r;
    put_game("lst-g");
    put_ach("lst-g", "a", 10, 1, 0);
    put_ach("lst-g", "b", 4, 3, 0);
    put_ach("lst-g", "h", 1, 1, 1);
    put_player("lst-na", "na", NULL);
    put_player("lst-eu", "eu", NULL);
    put_player("lst-ap", "apac", NULL);
    unlock_ok("lst-na", "lst-g", "a");
    unlock_ok("lst-eu", "lst-g", "a");
    unlock_ok("lst-eu", "lst-g", "b");
    post_unlock(&r, "lst-ap", "lst-g", "b", 1, NULL); /* progress only */
    expect(&r, 200, "progress");
    httpc_free(&r);

    for (int admin = 0; admin < 2; admin++) {
        reqf(&r, "GET", admin ? ADMIN : "", NULL, "/v1/games/lst-g/achievements");
        expect(&r, 200, "listing");
        json_t *l = json_object_get(r.json, "achievements"), *a;
        assert_int_equal(json_array_size(l), 3);
        size_t i;
        int seen = 0;
        json_array_foreach(l, i, a)
        {
            const char *id = tdev_str(a, "achievement_id");
            assert_non_null(id);
            if (strcmp(id, "a") == 0) {
                seen |= 1;
                assert_int_equal(tdev_int(a, "unlocked_count"), 2);
                assert_num(tdev_num(a, "unlocked_pct"), 66.67, "a unlocked_pct");
                assert_string_equal(tdev_str(a, "name"), "a");
                assert_int_equal(tdev_int(a, "points"), 10);
            } else if (strcmp(id, "b") == 0) {
                seen |= 2;
                assert_int_equal(tdev_int(a, "unlocked_count"), 1);
                assert_num(tdev_num(a, "unlocked_pct"), 33.33, "b unlocked_pct");
                assert_int_equal(tdev_int(a, "steps"), 3);
            } else if (strcmp(id, "h") == 0) {
                seen |= 4;
                assert_int_equal(tdev_int(a, "unlocked_count"), 0);
                assert_num(tdev_num(a, "unlocked_pct"), 0, "h unlocked_pct");
                if (admin) {
                    assert_string_equal(tdev_str(a, "name"), "h");
                    assert_string_equal(tdev_str(a, "description"), "desc");
                } else {
                    assert_null(json_object_get(a, "name"));
                    assert_null(json_object_get(a, "description"));
                }
            }
        }
        assert_int_equal(seen, 7);
        httpc_free(&r);
    }
    expect_err("GET", "/v1/games/lst-none/achievements", "", NULL, 404, "not_found");
}

/* An incremental achievement: steps add progress (capped), it unlocks once with its points on
 * points.<game>; a replay answers the first response with the header; another body under the
 * same key is 409; unknown things 404. */
void unlocks_incremental_idempotent(void **state)
{
    (void)state;
    struct httpc_resp r, r2;
    put_game("ul-g");
    put_ach("ul-g", "easy", 10, 1, 0);
    put_ach("ul-g", "long", 20, 5, 0);
    put_player("ul-p", "apac", NULL);

    post_unlock(&r, "ul-p", "ul-g", "easy", 0, "ul-key-0001");
    expect(&r, 200, "unlock easy");
    assert_null(strcasestr(r.headers, "\r\nIdempotent-Replayed:"));
    assert_string_equal(tdev_str(r.json, "player_id"), "ul-p");
    assert_string_equal(tdev_str(r.json, "game_id"), "ul-g");
    assert_string_equal(tdev_str(r.json, "achievement_id"), "easy");
    assert_int_equal(tdev_int(r.json, "progress"), 1);
    assert_int_equal(tdev_int(r.json, "steps"), 1);
    assert_true(json_is_true(json_object_get(r.json, "newly_unlocked")));
    assert_true(json_is_true(json_object_get(r.json, "unlocked")));
    assert_true(tdev_is_time(tdev_str(r.json, "unlocked_at")));
    assert_int_equal(tdev_int(r.json, "points_awarded"), 10);
    assert_int_equal(tdev_int(r.json, "total_points"), 10);
    post_unlock(&r2, "ul-p", "ul-g", "easy", 0, "ul-key-0001");
    expect(&r2, 200, "replay");
    assert_true(replayed(&r2));
    assert_string_equal(r.body, r2.body);
    httpc_free(&r);
    httpc_free(&r2);
    post_unlock(&r, "ul-p", "ul-g", "long", 2, "ul-key-0001"); /* same key, other body */
    tdev_assert_error(&r, 409, "conflict", "same key, other body");
    httpc_free(&r);

    post_unlock(&r, "ul-p", "ul-g", "long", 2, NULL);
    expect(&r, 200, "long +2");
    assert_int_equal(tdev_int(r.json, "progress"), 2);
    assert_int_equal(tdev_int(r.json, "steps"), 5);
    assert_true(json_is_false(json_object_get(r.json, "newly_unlocked")));
    assert_true(json_is_false(json_object_get(r.json, "unlocked")));
    assert_true(json_is_null(json_object_get(r.json, "unlocked_at")));
    assert_int_equal(tdev_int(r.json, "points_awarded"), 0);
    assert_int_equal(tdev_int(r.json, "total_points"), 10);
    httpc_free(&r);
    post_unlock(&r, "ul-p", "ul-g", "long", 2, NULL);
    assert_int_equal(tdev_int(r.json, "progress"), 4);
    httpc_free(&r);
    post_unlock(&r, "ul-p", "ul-g", "long", 5, NULL); /* more than remains: capped */
    expect(&r, 200, "long +5");
    assert_int_equal(tdev_int(r.json, "progress"), 5);
    assert_true(json_is_true(json_object_get(r.json, "newly_unlocked")));
    assert_true(json_is_true(json_object_get(r.json, "unlocked")));
    assert_int_equal(tdev_int(r.json, "points_awarded"), 20);
    assert_int_equal(tdev_int(r.json, "total_points"), 30);
    httpc_free(&r);
    post_unlock(&r, "ul-p", "ul-g", "long", 0, NULL); /* already unlocked, new key */
    expect(&r, 200, "again");
    assert_true(json_is_false(json_object_get(r.json, "newly_unlocked")));
    assert_true(json_is_true(json_object_get(r.json, "unlocked")));
    assert_int_equal(tdev_int(r.json, "progress"), 5);
    assert_int_equal(tdev_int(r.json, "points_awarded"), 0);
    assert_int_equal(tdev_int(r.json, "total_points"), 30);
    httpc_free(&r);

    reqf(&r, "GET", "", NULL, "/v1/boards/points.ul-g/top?scope=region:apac");
    expect(&r, 200, "points board");
    json_t *e = json_array_get(json_object_get(r.json, "entries"), 0);
    assert_string_equal(tdev_str(e, "player_id"), "ul-p");
    assert_int_equal(tdev_int(e, "score"), 30);
    httpc_free(&r);

    post_unlock(&r, "ul-nobody", "ul-g", "easy", 0, NULL);
    tdev_assert_error(&r, 404, "not_found", "unknown player");
    httpc_free(&r);
    post_unlock(&r, "ul-p", "ul-none", "easy", 0, NULL);
    tdev_assert_error(&r, 404, "not_found", "unknown game");
    httpc_free(&r);
    post_unlock(&r, "ul-p", "ul-g", "none", 0, NULL);
    tdev_assert_error(&r, 404, "not_found", "unknown achievement");
    httpc_free(&r);
    expect_err("POST", "/v1/unlocks", API,
               "{\"player_id\":\"ul-p\",\"game_id\":\"ul-g\",\"achievement_id\":\"easy\"}", 400,
               "invalid_argument");
    expect_err("POST", "/v1/unlocks", API,
               "{\"player_id\":\"ul-p\",\"game_id\":\"ul-g\",\"achievement_id\":\"easy\","
               "\"idempotency_key\":\"short\"}",
               400, "invalid_argument");
    expect_err("POST", "/v1/unlocks", "",
               "{\"player_id\":\"ul-p\",\"game_id\":\"ul-g\",\"achievement_id\":\"easy\","
               "\"idempotency_key\":\"ul-key-0009\"}",
               401, "unauthorized");
}
