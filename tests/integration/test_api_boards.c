/* tests/integration/test_api_boards.c — part of test_api (test_api.c): score writes under
 * every operator, /v1/events batches, board tops by scope and window, cursor paging, rank and
 * around-me, and ties broken by player id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/httpc.h"
#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"
#include "test_api_int.h"

struct op_step {
    int64_t score, sub;
    int64_t want_score, want_sub;
    int improved;
};

static void run_steps(const char *board, const char *player, const struct op_step *s, int n)
{
    for (int i = 0; i < n; i++) {
        struct httpc_resp r;
        char what[128];
        snprintf(what, sizeof what, "%s step %d", board, i);
        post_score(&r, board, player, s[i].score, s[i].sub, NULL);
        expect(&r, 200, what);
        assert_string_equal(tdev_str(r.json, "board_id"), board);
        assert_string_equal(tdev_str(r.json, "player_id"), player);
        if (tdev_int(r.json, "score") != s[i].want_score ||
            tdev_int(r.json, "subscore") != s[i].want_sub ||
            json_is_true(json_object_get(r.json, "improved")) != s[i].improved) {
            fail_msg("%s: got %s; want score %lld subscore %lld improved %d", what, r.body,
                     (long long)s[i].want_score, (long long)s[i].want_sub, s[i].improved);
        }
        assert_true(json_is_boolean(json_object_get(r.json, "improved")));
        assert_true(tdev_int(r.json, "region_rank") >= 1);
        assert_true(tdev_is_time(tdev_str(r.json, "updated_at")));
        httpc_free(&r);
    }
}

/* Every operator in both orders: best keeps the better (score, subscore), set replaces,
 * incr/decr add from 0; a result outside the range is 400 and changes nothing. */
void scores_every_operator(void **state)
{
    (void)state;
    struct httpc_resp r;
    put_player("op-p", "na", NULL);
    put_player("op-q", "na", NULL);
    put_board("op-best-d", "desc", "best", NULL);
    put_board("op-best-a", "asc", "best", NULL);
    put_board("op-set", "desc", "set", NULL);
    put_board("op-incr", "asc", "incr", NULL);
    put_board("op-decr", "desc", "decr", NULL);
    const struct op_step best_d[] = {{10, 0, 10, 0, 1},
                                     {5, 9, 10, 0, 0},
                                     {10, 3, 10, 3, 1},
                                     {10, 1, 10, 3, 0},
                                     {12, -4, 12, -4, 1}};
    const struct op_step best_a[] = {{10, 5, 10, 5, 1},
                                     {15, 0, 10, 5, 0},
                                     {10, 2, 10, 2, 1},
                                     {10, 2, 10, 2, 0},
                                     {-7, 0, -7, 0, 1}};
    const struct op_step set[] = {{10, 1, 10, 1, 1}, {5, 0, 5, 0, 1}, {-3, 2, -3, 2, 1}};
    const struct op_step incr[] = {{5, 0, 5, 0, 1}, {3, 0, 8, 0, 1}, {-10, 0, -2, 0, 1}};
    const struct op_step decr[] = {{5, 0, -5, 0, 1}, {3, 0, -8, 0, 1}};
    run_steps("op-best-d", "op-p", best_d, 5);
    run_steps("op-best-a", "op-p", best_a, 5);
    run_steps("op-set", "op-p", set, 3);
    run_steps("op-incr", "op-p", incr, 3);
    run_steps("op-decr", "op-p", decr, 2);

    /* region_rank: op-q beats op-p on the desc best board (12 < 20), in the same region. */
    post_score(&r, "op-best-d", "op-q", 20, 0, NULL);
    assert_int_equal(tdev_int(r.json, "region_rank"), 1);
    httpc_free(&r);
    post_score(&r, "op-best-d", "op-p", 11, 0, NULL); /* not better: still 2nd */
    assert_int_equal(tdev_int(r.json, "region_rank"), 2);
    httpc_free(&r);

    /* Range: 2^53-1 is fine, one more by incr is 400 and leaves the score. */
    put_board("op-big", "desc", "incr", NULL);
    post_score(&r, "op-big", "op-p", 9007199254740991LL, 0, NULL);
    expect(&r, 200, "max score");
    httpc_free(&r);
    post_score(&r, "op-big", "op-p", 1, 0, NULL);
    tdev_assert_error(&r, 400, "invalid_argument", "incr past the range");
    httpc_free(&r);
    reqf(&r, "GET", "", NULL, "/v1/boards/op-big/top");
    expect(&r, 200, "op-big top");
    assert_int_equal(tdev_int(json_array_get(json_object_get(r.json, "entries"), 0), "score"),
                     9007199254740991LL);
    httpc_free(&r);
    post_score(&r, "op-set", "op-p", -9007199254740992LL, 0, NULL);
    tdev_assert_error(&r, 400, "invalid_argument", "score below the range");
    httpc_free(&r);

    /* Metadata: an object of at most 256 bytes is kept and shown; more, or not an object, 400. */
    char meta[400], body[600];
    snprintf(body, sizeof body,
             "{\"player_id\":\"op-p\",\"score\":100,\"metadata\":{\"car\":\"red\"},"
             "\"idempotency_key\":\"op-meta-0001\"}");
    assert_int_equal(st("POST", "/v1/boards/op-set/scores", API, body), 200);
    reqf(&r, "GET", "", NULL, "/v1/boards/op-set/top?scope=region:na");
    json_t *e = json_array_get(json_object_get(r.json, "entries"), 0);
    assert_string_equal(tdev_str(json_object_get(e, "metadata"), "car"), "red");
    httpc_free(&r);
    memset(meta, 'm', 260);
    meta[260] = '\0';
    snprintf(body, sizeof body,
             "{\"player_id\":\"op-p\",\"score\":1,\"metadata\":{\"m\":\"%s\"},"
             "\"idempotency_key\":\"op-meta-0002\"}",
             meta);
    expect_err("POST", "/v1/boards/op-set/scores", API, body, 400, "invalid_argument");
    expect_err("POST", "/v1/boards/op-set/scores", API,
               "{\"player_id\":\"op-p\",\"score\":1,\"metadata\":[1],"
               "\"idempotency_key\":\"op-meta-0003\"}",
               400, "invalid_argument");
    expect_err("POST", "/v1/boards/op-set/scores", API,
               "{\"player_id\":\"op-p\",\"score\":1.5,\"idempotency_key\":\"op-meta-0004\"}", 400,
               "invalid_argument");
    expect_err("POST", "/v1/boards/op-none/scores", API,
               "{\"player_id\":\"op-p\",\"score\":1,\"idempotency_key\":\"op-meta-0005\"}", 404,
               "not_found");
    expect_err("POST", "/v1/boards/op-set/scores", API,
               "{\"player_id\":\"op-nobody\",\"score\":1,\"idempotency_key\":\"op-meta-0006\"}",
               404, "not_found");
    reqf(&r, "GET", "", NULL, "/v1/boards/op-set/top");
    expect(&r, 200, "op-set top");
    e = json_array_get(json_object_get(r.json, "entries"), 0);
    assert_int_equal(tdev_int(e, "score"), 100); /* none of the refused ones landed */
    assert_string_equal(tdev_str(json_object_get(e, "metadata"), "car"), "red");
    httpc_free(&r);
}

/* POST /v1/events: score and unlock items processed as their single endpoints; a bad item
 * fails alone with its status; a replayed batch replays each item; 0 or >100 items is 400. */
void events_batch(void **state)
{
    (void)state;
    struct httpc_resp r, r2;
    put_game("ev-g");
    put_ach("ev-g", "e1", 3, 1, 0);
    put_board("ev-b", "desc", "best", NULL);
    put_player("ev-na", "na", NULL);
    put_player("ev-eu", "eu", NULL);
    const char *batch =
        "[{\"type\":\"score\",\"board_id\":\"ev-b\",\"player_id\":\"ev-na\",\"score\":10,"
        "\"idempotency_key\":\"ev-key-0001\"},"
        "{\"type\":\"unlock\",\"player_id\":\"ev-eu\",\"game_id\":\"ev-g\",\"achievement_id\":"
        "\"e1\",\"idempotency_key\":\"ev-key-0002\"},"
        "{\"type\":\"score\",\"board_id\":\"ev-b\",\"player_id\":\"ev-ghost\",\"score\":1,"
        "\"idempotency_key\":\"ev-key-0003\"},"
        "{\"type\":\"score\",\"board_id\":\"ev-b\",\"player_id\":\"ev-eu\",\"score\":20,"
        "\"subscore\":2,\"idempotency_key\":\"ev-key-0004\"},"
        "{\"type\":\"score\",\"board_id\":\"ev-none\",\"player_id\":\"ev-eu\",\"score\":1,"
        "\"idempotency_key\":\"ev-key-0005\"},"
        "{\"type\":\"score\",\"board_id\":\"ev-b\",\"player_id\":\"ev-eu\",\"score\":1},"
        "{\"type\":\"bogus\",\"player_id\":\"ev-eu\",\"idempotency_key\":\"ev-key-0007\"}]";
    static const int want[] = {200, 200, 404, 200, 404, 400, 400};
    expect_err("POST", "/v1/events", "", batch, 401, "unauthorized");
    reqf(&r, "POST", API, batch, "/v1/events");
    expect(&r, 200, "events");
    json_t *res = json_object_get(r.json, "results");
    assert_int_equal(json_array_size(res), 7);
    for (size_t i = 0; i < 7; i++) {
        json_t *it = json_array_get(res, i);
        if (tdev_int(it, "status") != want[i]) {
            fail_msg("item %zu: status %lld, expected %d: %s", i, (long long)tdev_int(it, "status"),
                     want[i], r.body);
        }
        json_t *b = json_object_get(it, "body");
        assert_true(json_is_object(b));
        if (want[i] != 200) {
            const char *code = tdev_str(json_object_get(b, "error"), "code");
            assert_non_null(code);
            assert_string_equal(code, want[i] == 404 ? "not_found" : "invalid_argument");
        }
    }
    json_t *b0 = json_object_get(json_array_get(res, 0), "body");
    assert_int_equal(tdev_int(b0, "score"), 10);
    assert_true(json_is_true(json_object_get(b0, "improved")));
    json_t *b1 = json_object_get(json_array_get(res, 1), "body");
    assert_true(json_is_true(json_object_get(b1, "newly_unlocked")));
    assert_int_equal(tdev_int(b1, "points_awarded"), 3);
    assert_int_equal(tdev_int(json_object_get(json_array_get(res, 3), "body"), "subscore"), 2);

    /* The same batch again: the good items replay their first answers, nothing moves. */
    reqf(&r2, "POST", API, batch, "/v1/events");
    expect(&r2, 200, "events replay");
    json_t *res2 = json_object_get(r2.json, "results");
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(tdev_int(json_array_get(res2, i), "status"), want[i]);
        if (want[i] == 200) {
            assert_true(json_equal(json_object_get(json_array_get(res, i), "body"),
                                   json_object_get(json_array_get(res2, i), "body")));
            /* docs/api.md: an item answered from its stored key says "replayed": true. */
            assert_true(json_is_true(json_object_get(json_array_get(res2, i), "replayed")));
            assert_false(json_is_true(json_object_get(json_array_get(res, i), "replayed")));
        }
    }
    httpc_free(&r);
    httpc_free(&r2);
    reqf(&r, "GET", "", NULL, "/v1/boards/ev-b/players/ev-eu");
    expect(&r, 200, "rank after events");
    assert_int_equal(tdev_int(r.json, "score"), 20);
    assert_int_equal(tdev_int(r.json, "rank"), 1);
    httpc_free(&r);
    reqf(&r, "GET", "", NULL, "/v1/boards/points.ev-g/players/ev-eu");
    assert_int_equal(tdev_int(r.json, "score"), 3);
    httpc_free(&r);
    /* A single POST with a key an event used is a replay of that event's answer. */
    reqf(&r, "POST", API,
         "{\"player_id\":\"ev-na\",\"score\":10,\"idempotency_key\":"
         "\"ev-key-0001\"}",
         "/v1/boards/ev-b/scores");
    expect(&r, 200, "single replay of an event key");
    assert_true(replayed(&r));
    httpc_free(&r);

    /* Sizes: empty, 101 items, not an array. */
    expect_err("POST", "/v1/events", API, "[]", 400, "invalid_argument");
    expect_err("POST", "/v1/events", API, "{\"type\":\"score\"}", 400, "invalid_argument");
    json_t *big = json_array();
    for (int i = 0; i < 101; i++) {
        char k[32];
        snprintf(k, sizeof k, "ev-big-%04d", i);
        json_array_append_new(
            big, json_pack("{s:s,s:s,s:s,s:i,s:s}", "type", "score", "board_id", "ev-b",
                           "player_id", "ev-na", "score", i, "idempotency_key", k));
    }
    char *s = json_dumps(big, JSON_COMPACT);
    expect_err("POST", "/v1/events", API, s, 400, "invalid_argument");
    json_array_remove(big, 100); /* exactly 100 is fine */
    free(s);
    s = json_dumps(big, JSON_COMPACT);
    reqf(&r, "POST", API, s, "/v1/events");
    expect(&r, 200, "100 items");
    assert_int_equal(json_array_size(json_object_get(r.json, "results")), 100);
    httpc_free(&r);
    free(s);
    json_decref(big);
}

/* Pages: global merges the three regions in API.md's order; region and guild scopes rank
 * within them; the daily/weekly/monthly windows hold today's scores under the current period,
 * and an earlier period is empty. */
void board_top_scopes_windows(void **state)
{
    (void)state;
    static const char *const regions[] = {"na", "eu", "apac"};
    struct httpc_resp r;
    char ids[1024], path[256];
    put_board("top-b", "desc", "best",
              "\"windows\":[\"alltime\",\"daily\",\"weekly\",\"monthly\"]");
    /* 9 players, 3 per region; guilds gA (0,4,8: one per region) and gB (1,2). Scores tie on
     * purpose: top-0/top-3 share score and subscore, so the earlier updated_at wins. */
    static const int64_t score[9] = {50, 40, 40, 50, 30, 20, 10, 5, 60};
    static const int64_t sub[9] = {1, 2, 1, 1, 0, 0, 0, 0, 0};
    for (int i = 0; i < 9; i++) {
        char id[16];
        snprintf(id, sizeof id, "top-%d", i);
        put_player(id, regions[i % 3],
                   i % 4 == 0           ? "top-gA"
                   : (i == 1 || i == 2) ? "top-gB"
                                        : NULL);
        score_ok("top-b", id, score[i], sub[i]);
    }
    const char *global = "top-8,top-0,top-3,top-1,top-2,top-4,top-5,top-6,top-7";
    reqf(&r, "GET", "", NULL, "/v1/boards/top-b/top");
    expect(&r, 200, "top");
    assert_string_equal(tdev_str(r.json, "board_id"), "top-b");
    assert_string_equal(tdev_str(r.json, "scope"), "global");
    assert_string_equal(tdev_str(r.json, "window"), "alltime");
    assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
    ids_of(json_object_get(r.json, "entries"), ids, sizeof ids);
    assert_string_equal(ids, global);
    assert_entries(json_object_get(r.json, "entries"), 1);
    json_t *e0 = json_array_get(json_object_get(r.json, "entries"), 0);
    assert_string_equal(tdev_str(e0, "name"), "top-8");
    assert_string_equal(tdev_str(e0, "region"), "apac");
    assert_int_equal(tdev_int(e0, "score"), 60);
    httpc_free(&r);

    struct {
        const char *scope, *want;
    } scopes[] = {{"region:na", "top-0,top-3,top-6"},   {"region:eu", "top-1,top-4,top-7"},
                  {"region:apac", "top-8,top-2,top-5"}, {"guild:top-gA", "top-8,top-0,top-4"},
                  {"guild:top-gB", "top-1,top-2"},      {"guild:top-none", ""}};
    for (size_t k = 0; k < sizeof scopes / sizeof scopes[0]; k++) {
        reqf(&r, "GET", "", NULL, "/v1/boards/top-b/top?scope=%s", scopes[k].scope);
        expect(&r, 200, scopes[k].scope);
        assert_string_equal(tdev_str(r.json, "scope"), scopes[k].scope);
        ids_of(json_object_get(r.json, "entries"), ids, sizeof ids);
        if (strcmp(ids, scopes[k].want) != 0) {
            fail_msg("%s: %s, expected %s", scopes[k].scope, ids, scopes[k].want);
        }
        assert_entries(json_object_get(r.json, "entries"), 1);
        httpc_free(&r);
    }

    char day[16], week[16], month[16], yday[16];
    utc_period(day, sizeof day, "%Y-%m-%d", 0);
    utc_period(week, sizeof week, "%G-W%V", 0);
    utc_period(month, sizeof month, "%Y-%m", 0);
    utc_period(yday, sizeof yday, "%Y-%m-%d", 1);
    struct {
        const char *window, *period;
    } wins[] = {{"daily", day}, {"weekly", week}, {"monthly", month}};
    for (size_t k = 0; k < 3; k++) {
        for (int explicit = 0; explicit < 2; explicit ++) {
            snprintf(path, sizeof path, "/v1/boards/top-b/top?window=%s%s%s", wins[k].window,
                     explicit ? "&period=" : "", explicit ? wins[k].period : "");
            reqf(&r, "GET", "", NULL, "%s", path);
            expect(&r, 200, path);
            assert_string_equal(tdev_str(r.json, "window"), wins[k].window);
            const char *p = tdev_str(r.json, "period");
            if (p == NULL || strcmp(p, wins[k].period) != 0) {
                fail_msg("%s: period %s, expected %s", path, p ? p : "(not a string)",
                         wins[k].period);
            }
            ids_of(json_object_get(r.json, "entries"), ids, sizeof ids);
            assert_string_equal(ids, global);
            httpc_free(&r);
        }
    }
    reqf(&r, "GET", "", NULL, "/v1/boards/top-b/top?window=daily&period=%s", yday);
    expect(&r, 200, "yesterday");
    assert_int_equal(json_array_size(json_object_get(r.json, "entries")), 0);
    assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
    httpc_free(&r);
    /* Past the board's keep_periods (8 by default): evicted, 404 with a sentence saying so. */
    char old[16];
    utc_period(old, sizeof old, "%Y-%m-%d", 9);
    reqf(&r, "GET", "", NULL, "/v1/boards/top-b/top?window=daily&period=%s", old);
    expect(&r, 404, "nine days ago");
    const char *msg =
        json_string_value(json_object_get(json_object_get(r.json, "error"), "message"));
    assert_non_null(msg);
    assert_non_null(strstr(msg, "evicted"));
    httpc_free(&r);
    utc_period(old, sizeof old, "%Y-%m-%d", 8);
    reqf(&r, "GET", "", NULL, "/v1/boards/top-b/top?window=daily&period=%s", old);
    expect(&r, 200, "eight days ago");
    httpc_free(&r);
    expect_err("GET", "/v1/boards/top-b/top?window=daily&period=2026-13-01", "", NULL, 400,
               "invalid_argument");
    expect_err("GET", "/v1/boards/top-b/top?window=weekly&period=2026-11-22", "", NULL, 400,
               "invalid_argument");
    expect_err("GET", "/v1/boards/top-b/top?scope=region:mars", "", NULL, 400, "invalid_argument");
    expect_err("GET", "/v1/boards/top-b/top?scope=planet:x", "", NULL, 400, "invalid_argument");
    expect_err("GET", "/v1/boards/top-none/top", "", NULL, 404, "not_found");
}

/* Walk a page sequence of @limit by cursor; the concatenation must equal the one-page answer,
 * with ranks 1..n and next_cursor null exactly at the end. */
static void walk_pages(const char *board, const char *scope, int limit, size_t expect_n)
{
    struct httpc_resp r;
    char cursor[512] = "", all[8192], walked[8192] = "", page[8192];
    size_t n = 0, len = 0;
    reqf(&r, "GET", "", NULL, "/v1/boards/%s/top?scope=%s&limit=1000", board, scope);
    expect(&r, 200, "one page");
    ids_of(json_object_get(r.json, "entries"), all, sizeof all);
    assert_int_equal(json_array_size(json_object_get(r.json, "entries")), expect_n);
    httpc_free(&r);
    for (int pages = 0;; pages++) {
        assert_true(pages <= (int)expect_n / limit + 1);
        reqf(&r, "GET", "", NULL, "/v1/boards/%s/top?scope=%s&limit=%d%s%s", board, scope, limit,
             cursor[0] ? "&cursor=" : "", cursor);
        expect(&r, 200, "page");
        json_t *ents = json_object_get(r.json, "entries");
        assert_true(json_array_size(ents) <= (size_t)limit);
        assert_entries(ents, (int64_t)n + 1);
        n += json_array_size(ents);
        ids_of(ents, page, sizeof page);
        if (page[0]) {
            len +=
                (size_t)snprintf(walked + len, sizeof walked - len, "%s%s", len ? "," : "", page);
        }
        json_t *next = json_object_get(r.json, "next_cursor");
        if (json_is_null(next)) {
            assert_int_equal(n, expect_n);
            httpc_free(&r);
            break;
        }
        assert_true(json_is_string(next));
        assert_true(n < expect_n); /* a cursor only while entries remain */
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        httpc_free(&r);
    }
    assert_string_equal(walked, all);
}

/* Cursor paging in every scope: 25 players over 3 regions and 2 guilds, pages of 4 and 7. */
void board_cursor_paging(void **state)
{
    (void)state;
    static const char *const regions[] = {"na", "eu", "apac"};
    put_board("pg-b", "asc", "best", NULL);
    for (int i = 0; i < 25; i++) {
        char id[16];
        snprintf(id, sizeof id, "pg-%02d", i);
        put_player(id, regions[i % 3], i % 2 ? "pg-odd" : "pg-even");
        score_ok("pg-b", id, i % 5, i % 2); /* many ties */
    }
    walk_pages("pg-b", "global", 4, 25);
    walk_pages("pg-b", "global", 7, 25);
    walk_pages("pg-b", "region:eu", 4, 8);
    walk_pages("pg-b", "guild:pg-odd", 4, 12);
    walk_pages("pg-b", "guild:pg-even", 5, 13);
    walk_pages("pg-b", "global", 25, 25);
    expect_err("GET", "/v1/boards/pg-b/top?cursor=not-a-cursor", "", NULL, 400, "invalid_argument");
}

/* Rank of one player: rank, total, percentile in each scope; around=N gives N on each side
 * (fewer at the ends) in rank order; no score is 404. */
void rank_and_around(void **state)
{
    (void)state;
    static const char *const regions[] = {"na", "eu", "apac"};
    struct httpc_resp r;
    put_board("rk-b", "desc", "best", NULL);
    for (int i = 0; i < 12; i++) { /* rk-i has score 100 - i: global rank i + 1 */
        char id[16];
        snprintf(id, sizeof id, "rk-%02d", i);
        put_player(id, regions[i % 3], i < 6 ? "rk-g" : NULL);
        score_ok("rk-b", id, 100 - i, 0);
    }
    put_player("rk-none", "na", NULL);
    for (int i = 0; i < 12; i++) {
        reqf(&r, "GET", "", NULL, "/v1/boards/rk-b/players/rk-%02d", i);
        expect(&r, 200, "rank");
        assert_int_equal(tdev_int(r.json, "rank"), i + 1);
        assert_int_equal(tdev_int(r.json, "total"), 12);
        assert_int_equal(tdev_int(r.json, "score"), 100 - i);
        assert_int_equal(tdev_int(r.json, "subscore"), 0);
        assert_num(tdev_num(r.json, "percentile"), round2(100.0 * (12 - (i + 1)) / 12), "pct");
        httpc_free(&r);
    }
    /* Region eu holds rk-01, 04, 07, 10: rk-07 is 3rd of 4. */
    reqf(&r, "GET", "", NULL, "/v1/boards/rk-b/players/rk-07?scope=region:eu");
    expect(&r, 200, "region rank");
    assert_int_equal(tdev_int(r.json, "rank"), 3);
    assert_int_equal(tdev_int(r.json, "total"), 4);
    assert_num(tdev_num(r.json, "percentile"), 25.0, "region pct");
    httpc_free(&r);
    /* Guild rk-g: rk-00..05 across the regions; rk-05 is 6th of 6. */
    reqf(&r, "GET", "", NULL, "/v1/boards/rk-b/players/rk-05?scope=guild:rk-g");
    expect(&r, 200, "guild rank");
    assert_int_equal(tdev_int(r.json, "rank"), 6);
    assert_int_equal(tdev_int(r.json, "total"), 6);
    assert_num(tdev_num(r.json, "percentile"), 0.0, "guild pct");
    httpc_free(&r);

    struct {
        int who, n, first, count;
    } ar[] = {{5, 2, 4, 5}, {0, 3, 1, 4}, {11, 2, 10, 3}, {6, 0, 7, 1}, {4, 50, 1, 12}};
    for (size_t k = 0; k < sizeof ar / sizeof ar[0]; k++) {
        reqf(&r, "GET", "", NULL, "/v1/boards/rk-b/players/rk-%02d?around=%d", ar[k].who, ar[k].n);
        expect(&r, 200, "around");
        json_t *a = json_object_get(r.json, "around");
        if (json_array_size(a) != (size_t)ar[k].count) {
            fail_msg("around=%d of rk-%02d: %zu entries, expected %d: %s", ar[k].n, ar[k].who,
                     json_array_size(a), ar[k].count, r.body);
        }
        assert_entries(a, ar[k].first);
        for (int j = 0; j < ar[k].count; j++) {
            char id[16];
            snprintf(id, sizeof id, "rk-%02d", ar[k].first - 1 + j);
            assert_string_equal(tdev_str(json_array_get(a, (size_t)j), "player_id"), id);
        }
        httpc_free(&r);
    }
    reqf(&r, "GET", "", NULL, "/v1/boards/rk-b/players/rk-07?scope=region:eu&around=1");
    json_t *a = json_object_get(r.json, "around");
    char ids[256];
    ids_of(a, ids, sizeof ids);
    assert_string_equal(ids, "rk-04,rk-07,rk-10");
    assert_entries(a, 2);
    httpc_free(&r);

    expect_err("GET", "/v1/boards/rk-b/players/rk-00?around=51", "", NULL, 400, "invalid_argument");
    expect_err("GET", "/v1/boards/rk-b/players/rk-00?around=-1", "", NULL, 400, "invalid_argument");
    expect_err("GET", "/v1/boards/rk-b/players/rk-00?scope=region:mars", "", NULL, 400,
               "invalid_argument");
    expect_err("GET", "/v1/boards/rk-b/players/rk-none", "", NULL, 404, "not_found");
    expect_err("GET", "/v1/boards/rk-b/players/rk-nobody", "", NULL, 404, "not_found");
    expect_err("GET", "/v1/boards/rk-none/players/rk-00", "", NULL, 404, "not_found");
}

struct tie {
    char id[16];
    char at[32];
};

static int tie_cmp(const void *x, const void *y)
{
    const struct tie *a = x, *b = y;
    int c = strcmp(a->at, b->at); /* same format, so text order is time order */
    return c ? c : strcmp(a->id, b->id);
}

/* Full ties on (score, subscore, updated_at) fall to player_id ascending in every merged view:
 * one events batch stamps each region's items with one time, so each region holds a block of
 * 30 exact ties (ids not in creation order); the global page, around-N and the friends view
 * (90 entries merged: more than one allocation's worth) must all order them by id. */
void ties_break_by_player_id(void **state)
{
    (void)state;
    enum { N = 90 };
    static struct tie want[N];
    static char list[N * 16], got[N * 16], path[N * 16 + 128];
    struct httpc_resp r;
    size_t len = 0;
    put_board("tie-b", "desc", "best", NULL);
    json_t *batch = json_array();
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(want[i].id, sizeof want[i].id, "tie-%02d", (i * 37) % N);
        put_player(want[i].id, i % 3 == 0 ? "na" : i % 3 == 1 ? "eu" : "apac", NULL);
        snprintf(k, sizeof k, "tie-key-%04d", i);
        json_array_append_new(
            batch, json_pack("{s:s,s:s,s:s,s:i,s:s}", "type", "score", "board_id", "tie-b",
                             "player_id", want[i].id, "score", 7, "idempotency_key", k));
    }
    tdev_reqj(&fx->dev, "POST", "/v1/events", API, batch, &r);
    expect(&r, 200, "tie batch");
    for (int i = 0; i < N; i++) {
        json_t *b =
            json_object_get(json_array_get(json_object_get(r.json, "results"), (size_t)i), "body");
        assert_non_null(tdev_str(b, "updated_at"));
        snprintf(want[i].at, sizeof want[i].at, "%s", tdev_str(b, "updated_at"));
    }
    httpc_free(&r);
    len = (size_t)snprintf(path, sizeof path, "/v1/boards/tie-b/players?ids=");
    for (int i = 0; i < N; i++) {
        len += (size_t)snprintf(path + len, sizeof path - len, "%s%s", i ? "," : "", want[i].id);
    }
    qsort(want, N, sizeof want[0], tie_cmp);
    for (int i = 0, n = 0; i < N; i++) {
        n += snprintf(list + n, sizeof list - (size_t)n, "%s%s", i ? "," : "", want[i].id);
    }

    reqf(&r, "GET", "", NULL, "/v1/boards/tie-b/top");
    expect(&r, 200, "top");
    ids_of(json_object_get(r.json, "entries"), got, sizeof got);
    assert_entries(json_object_get(r.json, "entries"), 1);
    httpc_free(&r);
    if (strcmp(got, list) != 0) {
        fail_msg("global top: %s\n  expected: %s", got, list);
    }
    reqf(&r, "GET", "", NULL, "%s", path);
    expect(&r, 200, "friends");
    ids_of(json_object_get(r.json, "entries"), got, sizeof got);
    assert_entries(json_object_get(r.json, "entries"), 1);
    httpc_free(&r);
    if (strcmp(got, list) != 0) {
        fail_msg("friends: %s\n  expected: %s", got, list);
    }
    static const int at[] = {0, 44, 45, 70, 89};
    for (size_t k = 0; k < sizeof at / sizeof at[0]; k++) {
        int i = at[k], lo = i > 50 ? i - 50 : 0, hi = i + 51 < N ? i + 51 : N;
        char slice[N * 16];
        for (int j = lo, n = 0; j < hi; j++) {
            n += snprintf(slice + n, sizeof slice - (size_t)n, "%s%s", j > lo ? "," : "",
                          want[j].id);
        }
        reqf(&r, "GET", "", NULL, "/v1/boards/tie-b/players/%s?around=50", want[i].id);
        expect(&r, 200, "around");
        assert_int_equal(tdev_int(r.json, "rank"), i + 1);
        ids_of(json_object_get(r.json, "around"), got, sizeof got);
        assert_entries(json_object_get(r.json, "around"), lo + 1);
        httpc_free(&r);
        if (strcmp(got, slice) != 0) {
            fail_msg("around=50 of %s: %s\n  expected: %s", want[i].id, got, slice);
        }
    }
}

/* Friends view: the named players with their exact ranks, in rank order, without those with
 * no score; at most 100 ids. */
