/* tests/integration/test_api.c — API.md as a client sees it, against a real
 * `laurel dev --regions na,eu,apac --replicas 3` (nine replicas and the router) started once
 * for the file: every endpoint but cycle closing and tournaments, with its errors. Each
 * scenario uses its own ids (prefix = scenario), so scenarios do not depend on each other. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tests/lib/httpc.h"
#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"

#define ADMIN TDEV_ADMIN
#define API TDEV_API

struct fixture {
    struct tdev dev;
    unsigned keyseq; /* idempotency keys: unique for the run */
};

static struct fixture *fx;

/* ---- helpers ------------------------------------------------------------------------------ */

static int reqf(struct httpc_resp *r, const char *method, const char *auth, const char *body,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* @method on the path printed from @fmt; the status, -1 if the router never answered. */
static int reqf(struct httpc_resp *r, const char *method, const char *auth, const char *body,
                const char *fmt, ...)
{
    char path[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    int s = tdev_req(&fx->dev, method, path, auth, body, r);
    if (s < 0) {
        fail_msg("%s %s: no answer from the router", method, path);
    }
    return s;
}

static int st(const char *method, const char *path, const char *auth, const char *body)
{
    struct httpc_resp r;
    int s = reqf(&r, method, auth, body, "%s", path);
    httpc_free(&r);
    return s;
}

/* Expect @status; on a mismatch, show the body. */
static void expect(const struct httpc_resp *r, int status, const char *what)
{
    if (r->status != status) {
        fail_msg("%s: status %d, expected %d; body %s", what, r->status, status,
                 r->body ? r->body : "(none)");
    }
}

/* One request that must fail with @status and @code in API.md's error form. */
static void expect_err(const char *method, const char *path, const char *auth, const char *body,
                       int status, const char *code)
{
    struct httpc_resp r;
    char what[600];
    snprintf(what, sizeof what, "%s %.500s", method, path);
    reqf(&r, method, auth, body, "%s", path);
    tdev_assert_error(&r, status, code, what);
    httpc_free(&r);
}

static const char *next_key(char *buf, size_t cap)
{
    snprintf(buf, cap, "api-key-%08u", ++fx->keyseq);
    return buf;
}

static void put_player(const char *id, const char *region, const char *guild)
{
    struct httpc_resp r;
    json_t *b = json_pack("{s:s,s:s}", "name", id, "region", region);
    if (guild) {
        json_object_set_new(b, "guild", json_string(guild));
    }
    char path[128];
    snprintf(path, sizeof path, "/v1/players/%s", id);
    tdev_reqj(&fx->dev, "PUT", path, API, b, &r);
    expect(&r, 201, path);
    httpc_free(&r);
}

static void put_board(const char *id, const char *order, const char *op, const char *extra)
{
    char body[512];
    snprintf(body, sizeof body, "{\"order\":\"%s\",\"operator\":\"%s\"%s%s}", order, op,
             extra ? "," : "", extra ? extra : "");
    struct httpc_resp r;
    reqf(&r, "PUT", ADMIN, body, "/v1/boards/%s", id);
    expect(&r, 201, "PUT board");
    httpc_free(&r);
}

static void put_game(const char *id)
{
    struct httpc_resp r;
    reqf(&r, "PUT", ADMIN, "{\"name\":\"A game\"}", "/v1/games/%s", id);
    expect(&r, 201, "PUT game");
    httpc_free(&r);
}

static void put_ach(const char *game, const char *ach, int points, int steps, int hidden)
{
    struct httpc_resp r;
    json_t *b = json_pack("{s:s,s:s,s:i,s:i,s:b}", "name", ach, "description", "desc",
                          "points", points, "steps", steps, "hidden", hidden);
    char path[256];
    snprintf(path, sizeof path, "/v1/games/%s/achievements/%s", game, ach);
    tdev_reqj(&fx->dev, "PUT", path, ADMIN, b, &r);
    expect(&r, 201, path);
    httpc_free(&r);
}

/* POST a score; *@r holds the answer (200 expected by the caller or not). */
static int post_score(struct httpc_resp *r, const char *board, const char *player, int64_t score,
                      int64_t sub, const char *key)
{
    char k[32];
    json_t *b = json_pack("{s:s,s:I,s:I,s:s}", "player_id", player, "score", (json_int_t)score,
                          "subscore", (json_int_t)sub, "idempotency_key",
                          key ? key : next_key(k, sizeof k));
    char path[256];
    snprintf(path, sizeof path, "/v1/boards/%s/scores", board);
    return tdev_reqj(&fx->dev, "POST", path, API, b, r);
}

static void score_ok(const char *board, const char *player, int64_t score, int64_t sub)
{
    struct httpc_resp r;
    post_score(&r, board, player, score, sub, NULL);
    expect(&r, 200, "POST score");
    httpc_free(&r);
}

/* POST an unlock (@steps 0: the field is left out). */
static int post_unlock(struct httpc_resp *r, const char *player, const char *game,
                       const char *ach, int steps, const char *key)
{
    char k[32];
    json_t *b = json_pack("{s:s,s:s,s:s,s:s}", "player_id", player, "game_id", game,
                          "achievement_id", ach, "idempotency_key",
                          key ? key : next_key(k, sizeof k));
    if (steps) {
        json_object_set_new(b, "steps", json_integer(steps));
    }
    return tdev_reqj(&fx->dev, "POST", "/v1/unlocks", API, b, r);
}

static void unlock_ok(const char *player, const char *game, const char *ach)
{
    struct httpc_resp r;
    post_unlock(&r, player, game, ach, 0, NULL);
    expect(&r, 200, "POST unlock");
    httpc_free(&r);
}

static int replayed(const struct httpc_resp *r)
{
    return strcasestr(r->headers, "\r\nIdempotent-Replayed: true") != NULL;
}

static double round2(double x)
{
    return round(x * 100.0) / 100.0;
}

static void assert_num(double got, double want, const char *what)
{
    if (isnan(got) || fabs(got - want) > 1e-6) {
        fail_msg("%s: %g, expected %g", what, got, want);
    }
}

/* The entries' player ids, comma-joined, for whole-page comparisons. */
static void ids_of(const json_t *entries, char *out, size_t cap)
{
    size_t i, n = 0;
    json_t *e;
    out[0] = '\0';
    json_array_foreach(entries, i, e)
    {
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", i ? "," : "",
                              tdev_str(e, "player_id") ? tdev_str(e, "player_id") : "?");
    }
}

/* Entries ranked 1..n from @first in order, each with API.md's entry fields. */
static void assert_entries(const json_t *entries, int64_t first)
{
    size_t i;
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        assert_int_equal(tdev_int(e, "rank"), first + (int64_t)i);
        assert_non_null(tdev_str(e, "player_id"));
        assert_non_null(tdev_str(e, "name"));
        assert_non_null(tdev_str(e, "region"));
        assert_true(json_is_integer(json_object_get(e, "score")));
        assert_true(json_is_integer(json_object_get(e, "subscore")));
        assert_non_null(json_object_get(e, "metadata"));
        assert_true(tdev_is_time(tdev_str(e, "updated_at")));
    }
}

static void utc_period(char *out, size_t cap, const char *fmt, int days_back)
{
    time_t t = time(NULL) - (time_t)days_back * 86400;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, fmt, &tm);
}

/* ---- fixture ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    if (fx == NULL || tdev_start(&fx->dev, "na,eu,apac", 3, 30000) != 0) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tdev_stop(&fx->dev);
    free(fx);
    return 0;
}

/* ---- scenarios ------------------------------------------------------------------------------ */

/* Health, readiness and Prometheus metrics answer without a key. */
static void health_ready_metrics(void **state)
{
    (void)state;
    struct httpc_resp r;
    reqf(&r, "GET", "", NULL, "/healthz");
    expect(&r, 200, "healthz");
    assert_string_equal(tdev_str(r.json, "status"), "ok");
    httpc_free(&r);
    assert_int_equal(st("GET", "/readyz", "", NULL), 200);

    reqf(&r, "GET", "", NULL, "/metrics");
    expect(&r, 200, "metrics");
    assert_non_null(strcasestr(r.headers, "\r\nContent-Type: text/plain"));
    /* At least one counter, declared and sampled: "# TYPE x counter" then "x 12" or "x{..} 12". */
    int found = 0;
    for (char *t = strstr(r.body, "# TYPE "); t && !found; t = strstr(t + 1, "# TYPE ")) {
        char name[128], kind[32];
        if (sscanf(t, "# TYPE %127s %31s", name, kind) != 2 || strcmp(kind, "counter") != 0) {
            continue;
        }
        size_t nl = strlen(name);
        for (char *l = strchr(t, '\n'); l && !found; l = strchr(l + 1, '\n')) {
            if (strncmp(l + 1, name, nl) == 0 && (l[1 + nl] == ' ' || l[1 + nl] == '{')) {
                char *v = strchr(l + 1 + nl, ' ');
                found = v && (v[1] >= '0' && v[1] <= '9');
            }
        }
    }
    if (!found) {
        fail_msg("metrics: no counter with a sample line in:\n%.2000s", r.body);
    }
    httpc_free(&r);
}

/* /v1/cluster is for the admin key; it lists 3 regions of 3 replicas, each with one leader,
 * the same one the replicas themselves report. */
static void cluster_view_admin_only(void **state)
{
    (void)state;
    struct httpc_resp r;
    expect_err("GET", "/v1/cluster", "", NULL, 401, "unauthorized");
    expect_err("GET", "/v1/cluster", "not-a-key", NULL, 401, "unauthorized");
    expect_err("GET", "/v1/cluster", API, NULL, 403, "forbidden");
    reqf(&r, "GET", ADMIN, NULL, "/v1/cluster");
    expect(&r, 200, "GET /v1/cluster");
    json_t *regs = json_object_get(r.json, "regions"), *g, *rep;
    assert_int_equal(json_array_size(regs), 3);
    size_t i, k;
    int seen = 0;
    json_array_foreach(regs, i, g)
    {
        const char *id = tdev_str(g, "id");
        assert_non_null(id);
        seen |= strcmp(id, "na") == 0 ? 1 : strcmp(id, "eu") == 0 ? 2 : strcmp(id, "apac") == 0 ? 4 : 8;
        json_t *reps = json_object_get(g, "replicas");
        assert_int_equal(json_array_size(reps), 3);
        assert_true(json_is_integer(json_object_get(g, "leader")));
        int64_t leader = tdev_int(g, "leader"), nleaders = 0;
        json_array_foreach(reps, k, rep)
        {
            assert_true(json_is_integer(json_object_get(rep, "id")));
            assert_non_null(tdev_str(rep, "address"));
            assert_non_null(tdev_str(rep, "role"));
            assert_true(json_is_integer(json_object_get(rep, "term")));
            assert_true(json_is_integer(json_object_get(rep, "commit_index")));
            assert_true(json_is_integer(json_object_get(rep, "applied_index")));
            assert_true(json_is_true(json_object_get(rep, "healthy")));
            if (strcmp(tdev_str(rep, "role"), "leader") == 0) {
                nleaders++;
                assert_int_equal(tdev_int(rep, "id"), leader);
            }
        }
        assert_int_equal(nleaders, 1);
        int li = tdev_leader(&fx->dev, id, 5000);
        assert_true(li >= 0);
        assert_int_equal(fx->dev.node[li].replica, leader);
    }
    assert_int_equal(seen, 7);
    httpc_free(&r);
}

/* PUT creates (201) then updates (200); the region is fixed (409); bad ids, names and
 * regions are 400 and change nothing; GET shows API.md's fields. */
static void players_put_get(void **state)
{
    (void)state;
    struct httpc_resp r;
    const char *ann = "{\"name\":\"Ann\",\"region\":\"eu\"}";
    expect_err("PUT", "/v1/players/pl-ann", "", ann, 401, "unauthorized");
    assert_int_equal(st("PUT", "/v1/players/pl-ann", API, ann), 201);
    assert_int_equal(st("PUT", "/v1/players/pl-ann", API,
                        "{\"name\":\"Ann B\",\"region\":\"eu\",\"guild\":\"red\"}"), 200);
    expect_err("PUT", "/v1/players/pl-ann", API, "{\"name\":\"Ann\",\"region\":\"na\"}", 409,
               "conflict");
    assert_int_equal(st("PUT", "/v1/players/pl-adm", ADMIN,
                        "{\"name\":\"Adm\",\"region\":\"apac\"}"), 201);
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
    expect_err("PUT", "/v1/players/pl-x", API, "{\"name\":\"X\",\"region\":\"eu\",\"guild\":\"a b\"}",
               400, "invalid_argument");
    expect_err("GET", "/v1/players/pl-x", "", NULL, 404, "not_found"); /* none of those made it */
    expect_err("GET", "/v1/players/nobody", "", NULL, 404, "not_found");
}

/* Games, achievements and boards: PUT 201/200, GET their fields, bad definitions 400, the
 * admin key only, unknown ones 404; every game has its points board. */
static void catalog_put_get(void **state)
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
                        "{\"name\":\"Two\",\"points\":7,\"steps\":3}"), 201);
    expect_err("PUT", "/v1/games/cat-g/achievements/a3", ADMIN,
               "{\"name\":\"Bad\",\"points\":-1}", 400, "invalid_argument");
    expect_err("PUT", "/v1/games/cat-g/achievements/a3", ADMIN,
               "{\"name\":\"Bad\",\"points\":1,\"steps\":0}", 400, "invalid_argument");
    expect_err("PUT", "/v1/games/cat-none/achievements/a1", ADMIN, a1, 404, "not_found");
    reqf(&r, "GET", "", NULL, "/v1/games/cat-g");
    assert_int_equal(tdev_int(r.json, "achievements_total"), 2);
    httpc_free(&r);

    const char *b = "{\"order\":\"desc\",\"operator\":\"best\",\"windows\":[\"alltime\",\"daily\"],"
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
    httpc_free(&r);
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
static void achievement_listing_across_regions(void **state)
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
static void unlocks_incremental_idempotent(void **state)
{
    (void)state;
    struct httpc_resp r, r2;
    put_game("ul-g");
    put_ach("ul-g", "easy", 10, 1, 0);
    put_ach("ul-g", "long", 20, 5, 0);
    put_player("ul-p", "apac", NULL);

    post_unlock(&r, "ul-p", "ul-g", "easy", 0, "ul-key-0001");
    expect(&r, 200, "unlock easy");
    assert_null(strcasestr(r.headers, "Idempotent-Replayed"));
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
static void scores_every_operator(void **state)
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
    const struct op_step best_d[] = {{10, 0, 10, 0, 1}, {5, 9, 10, 0, 0}, {10, 3, 10, 3, 1},
                                     {10, 1, 10, 3, 0}, {12, -4, 12, -4, 1}};
    const struct op_step best_a[] = {{10, 5, 10, 5, 1}, {15, 0, 10, 5, 0}, {10, 2, 10, 2, 1},
                                     {10, 2, 10, 2, 0}, {-7, 0, -7, 0, 1}};
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
             "\"idempotency_key\":\"op-meta-0002\"}", meta);
    expect_err("POST", "/v1/boards/op-set/scores", API, body, 400, "invalid_argument");
    expect_err("POST", "/v1/boards/op-set/scores", API,
               "{\"player_id\":\"op-p\",\"score\":1,\"metadata\":[1],"
               "\"idempotency_key\":\"op-meta-0003\"}", 400, "invalid_argument");
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
static void events_batch(void **state)
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
    reqf(&r, "POST", API, "{\"player_id\":\"ev-na\",\"score\":10,\"idempotency_key\":"
         "\"ev-key-0001\"}", "/v1/boards/ev-b/scores");
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
        json_array_append_new(big, json_pack("{s:s,s:s,s:s,s:i,s:s}", "type", "score", "board_id",
                                             "ev-b", "player_id", "ev-na", "score", i,
                                             "idempotency_key", k));
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
static void board_top_scopes_windows(void **state)
{
    (void)state;
    static const char *const regions[] = {"na", "eu", "apac"};
    struct httpc_resp r;
    char ids[1024], path[256];
    put_board("top-b", "desc", "best", "\"windows\":[\"alltime\",\"daily\",\"weekly\",\"monthly\"]");
    /* 9 players, 3 per region; guilds gA (0,4,8: one per region) and gB (1,2). Scores tie on
     * purpose: top-0/top-3 share score and subscore, so the earlier updated_at wins. */
    static const int64_t score[9] = {50, 40, 40, 50, 30, 20, 10, 5, 60};
    static const int64_t sub[9] = {1, 2, 1, 1, 0, 0, 0, 0, 0};
    for (int i = 0; i < 9; i++) {
        char id[16];
        snprintf(id, sizeof id, "top-%d", i);
        put_player(id, regions[i % 3], i % 4 == 0 ? "top-gA" : (i == 1 || i == 2) ? "top-gB" : NULL);
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
    } scopes[] = {{"region:na", "top-0,top-3,top-6"},
                  {"region:eu", "top-1,top-4,top-7"},
                  {"region:apac", "top-8,top-2,top-5"},
                  {"guild:top-gA", "top-8,top-0,top-4"},
                  {"guild:top-gB", "top-1,top-2"},
                  {"guild:top-none", ""}};
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
        for (int explicit = 0; explicit < 2; explicit++) {
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
            len += (size_t)snprintf(walked + len, sizeof walked - len, "%s%s", len ? "," : "",
                                    page);
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
static void board_cursor_paging(void **state)
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
static void rank_and_around(void **state)
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
static void ties_break_by_player_id(void **state)
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
        json_array_append_new(batch, json_pack("{s:s,s:s,s:s,s:i,s:s}", "type", "score",
                                               "board_id", "tie-b", "player_id", want[i].id,
                                               "score", 7, "idempotency_key", k));
    }
    tdev_reqj(&fx->dev, "POST", "/v1/events", API, batch, &r);
    expect(&r, 200, "tie batch");
    for (int i = 0; i < N; i++) {
        json_t *b = json_object_get(json_array_get(json_object_get(r.json, "results"), (size_t)i),
                                    "body");
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
static void friends_view(void **state)
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
static void history_with_cursor(void **state)
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
static void dashboard(void **state)
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
    assert_num(tdev_num(r.json, "average_completion"), 50.0,
               "average_completion");
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
static void stats(void **state)
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
static void rewards_empty(void **state)
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
static void error_conventions(void **state)
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

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(health_ready_metrics),
        cmocka_unit_test(cluster_view_admin_only),
        cmocka_unit_test(players_put_get),
        cmocka_unit_test(catalog_put_get),
        cmocka_unit_test(achievement_listing_across_regions),
        cmocka_unit_test(unlocks_incremental_idempotent),
        cmocka_unit_test(scores_every_operator),
        cmocka_unit_test(events_batch),
        cmocka_unit_test(board_top_scopes_windows),
        cmocka_unit_test(board_cursor_paging),
        cmocka_unit_test(rank_and_around),
        cmocka_unit_test(friends_view),
        cmocka_unit_test(ties_break_by_player_id),
        cmocka_unit_test(history_with_cursor),
        cmocka_unit_test(dashboard),
        cmocka_unit_test(stats),
        cmocka_unit_test(rewards_empty),
        cmocka_unit_test(error_conventions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
