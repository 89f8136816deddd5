/* tests/integration/test_api.c — API.md as a client sees it, against a real
 * `laurel dev --regions na,eu,apac --replicas 3` (nine replicas and the router) started once
 * for the file: every endpoint but cycle closing and tournaments, with its errors. Each
 * scenario uses its own ids (prefix = scenario), so scenarios do not depend on each other.
 *
 * One binary, several files (test_api_int.h): this one holds the fixture, the helpers, health
 * and the cluster view, and main; test_api_catalog.c players, the catalog and unlocks;
 * test_api_boards.c scores and board reads; test_api_views.c the per-player views and the
 * error conventions. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/lib/httpc.h"
#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"
#include "test_api_int.h"

struct fixture *fx;

/* ---- helpers ------------------------------------------------------------------------------ */

/* @method on the path printed from @fmt; the status, -1 if the router never answered. */
int reqf(struct httpc_resp *r, const char *method, const char *auth, const char *body,
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

int st(const char *method, const char *path, const char *auth, const char *body)
{
    struct httpc_resp r;
    int s = reqf(&r, method, auth, body, "%s", path);
    httpc_free(&r);
    return s;
}

/* Expect @status; on a mismatch, show the body. */
void expect(const struct httpc_resp *r, int status, const char *what)
{
    if (r->status != status) {
        fail_msg("%s: status %d, expected %d; body %s", what, r->status, status,
                 r->body ? r->body : "(none)");
    }
}

/* One request that must fail with @status and @code in API.md's error form. */
void expect_err(const char *method, const char *path, const char *auth, const char *body,
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

void put_player(const char *id, const char *region, const char *guild)
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

void put_board(const char *id, const char *order, const char *op, const char *extra)
{
    char body[512];
    snprintf(body, sizeof body, "{\"order\":\"%s\",\"operator\":\"%s\"%s%s}", order, op,
             extra ? "," : "", extra ? extra : "");
    struct httpc_resp r;
    reqf(&r, "PUT", ADMIN, body, "/v1/boards/%s", id);
    expect(&r, 201, "PUT board");
    httpc_free(&r);
}

void put_game(const char *id)
{
    struct httpc_resp r;
    reqf(&r, "PUT", ADMIN, "{\"name\":\"A game\"}", "/v1/games/%s", id);
    expect(&r, 201, "PUT game");
    httpc_free(&r);
}

void put_ach(const char *game, const char *ach, int points, int steps, int hidden)
{
    struct httpc_resp r;
    json_t *b = json_pack("{s:s,s:s,s:i,s:i,s:b}", "name", ach, "description", "desc", "points",
                          points, "steps", steps, "hidden", hidden);
    char path[256];
    snprintf(path, sizeof path, "/v1/games/%s/achievements/%s", game, ach);
    tdev_reqj(&fx->dev, "PUT", path, ADMIN, b, &r);
    expect(&r, 201, path);
    httpc_free(&r);
}

/* POST a score; *@r holds the answer (200 expected by the caller or not). */
int post_score(struct httpc_resp *r, const char *board, const char *player, int64_t score,
               int64_t sub, const char *key)
{
    char k[32];
    json_t *b =
        json_pack("{s:s,s:I,s:I,s:s}", "player_id", player, "score", (json_int_t)score, "subscore",
                  (json_int_t)sub, "idempotency_key", key ? key : next_key(k, sizeof k));
    char path[256];
    snprintf(path, sizeof path, "/v1/boards/%s/scores", board);
    return tdev_reqj(&fx->dev, "POST", path, API, b, r);
}

void score_ok(const char *board, const char *player, int64_t score, int64_t sub)
{
    struct httpc_resp r;
    post_score(&r, board, player, score, sub, NULL);
    expect(&r, 200, "POST score");
    httpc_free(&r);
}

/* POST an unlock (@steps 0: the field is left out). */
int post_unlock(struct httpc_resp *r, const char *player, const char *game, const char *ach,
                int steps, const char *key)
{
    char k[32];
    json_t *b =
        json_pack("{s:s,s:s,s:s,s:s}", "player_id", player, "game_id", game, "achievement_id", ach,
                  "idempotency_key", key ? key : next_key(k, sizeof k));
    if (steps) {
        json_object_set_new(b, "steps", json_integer(steps));
    }
    return tdev_reqj(&fx->dev, "POST", "/v1/unlocks", API, b, r);
}

void unlock_ok(const char *player, const char *game, const char *ach)
{
    struct httpc_resp r;
    post_unlock(&r, player, game, ach, 0, NULL);
    expect(&r, 200, "POST unlock");
    httpc_free(&r);
}

int replayed(const struct httpc_resp *r)
{
    return strcasestr(r->headers, "\r\nIdempotent-Replayed: true") != NULL;
}

double round2(double x)
{
    return round(x * 100.0) / 100.0;
}

void assert_num(double got, double want, const char *what)
{
    if (isnan(got) || fabs(got - want) > 1e-6) {
        fail_msg("%s: %g, expected %g", what, got, want);
    }
}

/* The entries' player ids, comma-joined, for whole-page comparisons. */
void ids_of(const json_t *entries, char *out, size_t cap)
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
void assert_entries(const json_t *entries, int64_t first)
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

void utc_period(char *out, size_t cap, const char *fmt, int days_back)
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
        seen |= strcmp(id, "na") == 0     ? 1
                : strcmp(id, "eu") == 0   ? 2
                : strcmp(id, "apac") == 0 ? 4
                                          : 8;
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
