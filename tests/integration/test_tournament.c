/* tests/integration/test_tournament.c — API.md's tournaments through two routers
 * (docs/global-state.md, "Tournament joins").
 *
 * One `laurel dev --regions na,eu,apac` cluster (its router, the regions and the metadata
 * group) and a second `laurel router` process started by the test on the same replicas, so
 * concurrent joins really go through two routers:
 * - joins fired at once through both routers never admit more than the cap, and both routers
 *   then count exactly the cap;
 * - joining twice is a no-op; unknown players and tournaments are 404;
 * - scores on the tournament's board are 403 for non-members, before the start and at or
 *   after the end, and past max_attempts;
 * - a bad PUT is 400 and changes nothing; a plain board's id or a change of order is 409;
 * - GET's state follows the clock: upcoming, active, ended;
 * - a join cut between meta and the region (the region's replica stopped) is 503, and its
 *   retry through the other router finishes it without a second place;
 * - with every meta replica killed, PUT and join answer 503 with Retry-After (last: it takes
 *   meta away for good).
 * Each scenario uses its own ids (prefix = scenario). */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"

#define N_RACERS 20
#define RACE_CAP 5

static const char *const regions[] = {"na", "eu", "apac"};

struct fixture {
    struct tdev d;
    struct tdev_router r2;
    unsigned keyseq;
};

static struct fixture *fx;

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    if (fx == NULL || tdev_start(&fx->d, "na,eu,apac", 1, 60000) != 0) {
        return -1;
    }
    return tdev_router_start(&fx->d, &fx->r2);
}

static int teardown(void **state)
{
    (void)state;
    tdev_router_stop(&fx->r2);
    tdev_stop(&fx->d);
    free(fx);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define TIME_BUF 40

/* @ms (>= 0) as API.md's time, into @out (TIME_BUF bytes). */
static const char *rfc3339(int64_t ms, char *out)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, TIME_BUF, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, TIME_BUF - n, ".%03uZ", (unsigned)(ms % 1000));
    return out;
}

/* @method @path on router @http (NULL: dev's router); the status, failing when none came. */
static int req(const char *http, const char *method, const char *path, const char *auth,
               const char *body, struct httpc_resp *r)
{
    int s = http ? (httpc_do(http, method, path, auth, body, r) == 0 ? r->status : -1)
                 : tdev_req(&fx->d, method, path, auth, body, r);
    if (s < 0) {
        fail_msg("%s %s: no answer from the router", method, path);
    }
    return s;
}

static void expect(const struct httpc_resp *r, int status, const char *what)
{
    if (r->status != status) {
        fail_msg("%s: status %d, expected %d; body %s", what, r->status, status,
                 r->body ? r->body : "(none)");
    }
}

/* A tournament body: the window [now + @start_off, now + @end_off) in ms. */
static char *tourn_body(const char *name, const char *order, int64_t start_off, int64_t end_off,
                        int cap, int attempts)
{
    char s[TIME_BUF], e[TIME_BUF];
    int64_t now = now_ms();
    json_t *b = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:[{s:i,s:i,s:s}]}", "name", name, "order",
                          order, "operator", "best", "start_at", rfc3339(now + start_off, s),
                          "end_at", rfc3339(now + end_off, e), "max_participants", cap, "prizes",
                          "rank_from", 1, "rank_to", 1, "reward", "cup");
    json_object_set_new(b, "max_attempts", attempts ? json_integer(attempts) : json_null());
    char *txt = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return txt;
}

/* PUT tournament @id (see tourn_body), expecting @status. */
static void put_tourn(const char *id, const char *order, int64_t start_off, int64_t end_off,
                      int cap, int attempts, int status)
{
    char path[128], *body = tourn_body(id, order, start_off, end_off, cap, attempts);
    struct httpc_resp r;
    snprintf(path, sizeof path, "/v1/tournaments/%s", id);
    req(NULL, "PUT", path, TDEV_ADMIN, body, &r);
    expect(&r, status, path);
    httpc_free(&r);
    free(body);
}

static void put_player(const char *id, const char *region)
{
    char path[128], body[128];
    struct httpc_resp r;
    snprintf(path, sizeof path, "/v1/players/%s", id);
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"region\":\"%s\"}", id, region);
    req(NULL, "PUT", path, TDEV_API, body, &r);
    expect(&r, 201, path);
    httpc_free(&r);
}

/* POST a join of @player to @tourn through @http; the status, with *@r to free. */
static int join(const char *http, const char *tourn, const char *player, struct httpc_resp *r)
{
    char path[128], body[128];
    snprintf(path, sizeof path, "/v1/tournaments/%s/join", tourn);
    snprintf(body, sizeof body, "{\"player_id\":\"%s\"}", player);
    return req(http, "POST", path, TDEV_API, body, r);
}

static void join_ok(const char *http, const char *tourn, const char *player, int64_t count)
{
    struct httpc_resp r;
    join(http, tourn, player, &r);
    expect(&r, 200, player);
    assert_string_equal(tdev_str(r.json, "tournament_id"), tourn);
    assert_string_equal(tdev_str(r.json, "player_id"), player);
    assert_int_equal(tdev_int(r.json, "participants"), count);
    httpc_free(&r);
}

/* GET tournament @id through @http: 200 and the body (json_decref it). */
static json_t *get_tourn(const char *http, const char *id)
{
    char path[128];
    struct httpc_resp r;
    snprintf(path, sizeof path, "/v1/tournaments/%s", id);
    req(http, "GET", path, "", NULL, &r);
    expect(&r, 200, path);
    json_t *j = json_incref(r.json);
    httpc_free(&r);
    return j;
}

/* A score of @player on board @board; the status. */
static int score(const char *board, const char *player, int64_t value)
{
    char path[128], body[256];
    struct httpc_resp r;
    snprintf(path, sizeof path, "/v1/boards/%s/scores", board);
    snprintf(body, sizeof body,
             "{\"player_id\":\"%s\",\"score\":%lld,\"idempotency_key\":\"tourn-key-%08u\"}", player,
             (long long)value, ++fx->keyseq);
    int s = req(NULL, "POST", path, TDEV_API, body, &r);
    if (s == 403) {
        tdev_assert_error(&r, 403, "forbidden", path);
    }
    httpc_free(&r);
    return s;
}

/* ---- scenarios ---------------------------------------------------------------------------- */

struct join_job {
    const char *http;
    char player[32];
    pthread_barrier_t *go;
    int status;
    char code[32];
};

static void *join_thread(void *arg)
{
    struct join_job *j = arg;
    struct httpc_resp r;
    char body[128];
    snprintf(body, sizeof body, "{\"player_id\":\"%s\"}", j->player);
    pthread_barrier_wait(j->go);
    j->status = -1;
    j->code[0] = '\0';
    if (httpc_do(j->http, "POST", "/v1/tournaments/race/join", TDEV_API, body, &r) == 0) {
        j->status = r.status;
        const char *code = r.json ? tdev_str(json_object_get(r.json, "error"), "code") : NULL;
        snprintf(j->code, sizeof j->code, "%s", code ? code : "");
        httpc_free(&r);
    }
    return NULL;
}

/* Twenty players of three regions join a tournament of five places at once, through two
 * routers: five are admitted, fifteen refused as full, and both routers count five. */
static void concurrent_joins_never_pass_the_cap(void **state)
{
    (void)state;
    pthread_barrier_t go;
    pthread_t t[N_RACERS];
    struct join_job j[N_RACERS];
    put_tourn("race", "desc", -60000, 3600000, RACE_CAP, 0, 201);
    for (int i = 0; i < N_RACERS; i++) {
        snprintf(j[i].player, sizeof j[i].player, "race-p%02d", i);
        put_player(j[i].player, regions[i % 3]);
    }
    pthread_barrier_init(&go, NULL, N_RACERS);
    for (int i = 0; i < N_RACERS; i++) {
        j[i].http = i % 2 ? fx->r2.http : fx->d.http;
        j[i].go = &go;
        assert_int_equal(pthread_create(&t[i], NULL, join_thread, &j[i]), 0);
    }
    for (int i = 0; i < N_RACERS; i++) {
        pthread_join(t[i], NULL);
    }
    pthread_barrier_destroy(&go);
    int admitted = 0, full = 0;
    for (int i = 0; i < N_RACERS; i++) {
        if (j[i].status == 200) {
            admitted++;
        } else if (j[i].status == 409 && strcmp(j[i].code, "conflict") == 0) {
            full++;
        } else {
            fail_msg("%s: status %d (%s): want 200, or 409 conflict", j[i].player, j[i].status,
                     j[i].code);
        }
    }
    assert_int_equal(admitted, RACE_CAP);
    assert_int_equal(full, N_RACERS - RACE_CAP);
    const char *http[2] = {fx->d.http, fx->r2.http};
    for (int k = 0; k < 2; k++) {
        json_t *g = get_tourn(http[k], "race");
        assert_int_equal(tdev_int(g, "participants"), RACE_CAP);
        assert_int_equal(tdev_int(g, "max_participants"), RACE_CAP);
        assert_string_equal(tdev_str(g, "state"), "active");
        json_decref(g);
    }
    /* The admitted ones are members in their regions: their scores count. */
    for (int i = 0; i < N_RACERS; i++) {
        int s = score("race", j[i].player, 10 + i);
        assert_int_equal(s, j[i].status == 200 ? 200 : 403);
    }
}

/* A second join, through either router, answers 200 and counts nothing; unknown players and
 * tournaments are 404, a bad body 400, a full or ended tournament 409. */
static void join_twice_is_a_noop(void **state)
{
    (void)state;
    struct httpc_resp r;
    put_tourn("twice", "desc", -60000, 3600000, 2, 0, 201);
    put_player("twice-a", "na");
    put_player("twice-b", "apac");
    put_player("twice-c", "eu");
    join_ok(NULL, "twice", "twice-a", 1);
    join_ok(NULL, "twice", "twice-a", 1);
    join_ok(fx->r2.http, "twice", "twice-a", 1);
    join_ok(fx->r2.http, "twice", "twice-b", 2);
    join(NULL, "twice", "twice-c", &r);
    tdev_assert_error(&r, 409, "conflict", "join a full tournament");
    httpc_free(&r);
    join_ok(NULL, "twice", "twice-b", 2); /* full, but b is in: still a no-op */
    json_t *g = get_tourn(fx->r2.http, "twice");
    assert_int_equal(tdev_int(g, "participants"), 2);
    json_decref(g);
    join(NULL, "twice", "twice-nobody", &r);
    tdev_assert_error(&r, 404, "not_found", "join of an unknown player");
    httpc_free(&r);
    join(NULL, "twice-none", "twice-a", &r);
    tdev_assert_error(&r, 404, "not_found", "join of an unknown tournament");
    httpc_free(&r);
    const char *bad[] = {"{}", "{\"player_id\":7}", "{\"player_id\":\"a b\"}", "[]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        req(NULL, "POST", "/v1/tournaments/twice/join", TDEV_API, bad[i], &r);
        tdev_assert_error(&r, 400, "invalid_argument", bad[i]);
        httpc_free(&r);
    }
    req(NULL, "POST", "/v1/tournaments/twice/join", "", "{\"player_id\":\"twice-c\"}", &r);
    tdev_assert_error(&r, 401, "unauthorized", "join without a key");
    httpc_free(&r);
    /* An ended tournament refuses joins. */
    put_tourn("twice-over", "desc", -7200000, -3600000, 10, 0, 201);
    join(NULL, "twice-over", "twice-c", &r);
    tdev_assert_error(&r, 409, "conflict", "join an ended tournament");
    httpc_free(&r);
    g = get_tourn(NULL, "twice-over");
    assert_string_equal(tdev_str(g, "state"), "ended");
    assert_int_equal(tdev_int(g, "participants"), 0);
    json_decref(g);
}

/* Scores on the tournament's board: 403 for a non-member and past max_attempts (refused
 * submissions are not attempts); members' scores rank on the board. */
static void scores_need_a_join_and_attempts(void **state)
{
    (void)state;
    put_tourn("tries", "desc", -60000, 3600000, 10, 2, 201);
    put_player("tries-in", "eu");
    put_player("tries-out", "na");
    assert_int_equal(score("tries", "tries-out", 5), 403);
    join_ok(NULL, "tries", "tries-in", 1);
    assert_int_equal(score("tries", "tries-out", 5), 403);
    assert_int_equal(score("tries", "tries-in", 7), 200);
    assert_int_equal(score("tries", "tries-in", 9), 200);
    assert_int_equal(score("tries", "tries-in", 11), 403); /* both attempts used */
    assert_int_equal(score("tries", "tries-in", 12), 403);
    struct httpc_resp r;
    req(fx->r2.http, "GET", "/v1/boards/tries/top", "", NULL, &r);
    expect(&r, 200, "top of the tournament's board");
    json_t *e = json_object_get(r.json, "entries");
    assert_int_equal(json_array_size(e), 1);
    assert_string_equal(tdev_str(json_array_get(e, 0), "player_id"), "tries-in");
    assert_int_equal(tdev_int(json_array_get(e, 0), "score"), 9);
    httpc_free(&r);
}

/* GET follows the clock: upcoming before start_at (a member's score is 403), active inside the
 * window (200), ended from end_at on (403 again); the final standings stay readable. */
static void state_follows_the_clock(void **state)
{
    (void)state;
    const int64_t start_off = 2500, end_off = 5000;
    int64_t t0 = now_ms();
    put_tourn("clock", "asc", start_off, end_off, 3, 0, 201);
    put_player("clock-p", "apac");
    json_t *g = get_tourn(NULL, "clock");
    assert_string_equal(tdev_str(g, "state"), "upcoming");
    assert_string_equal(tdev_str(g, "order"), "asc");
    json_decref(g);
    join_ok(fx->r2.http, "clock", "clock-p", 1); /* joining before the start is allowed */
    assert_int_equal(score("clock", "clock-p", 30), 403);
    int64_t wait = t0 + start_off + 300 - now_ms();
    tdev_sleep_ms(wait > 0 ? (int)wait : 0);
    g = get_tourn(fx->r2.http, "clock");
    assert_string_equal(tdev_str(g, "state"), "active");
    json_decref(g);
    assert_int_equal(score("clock", "clock-p", 30), 200);
    assert_int_equal(score("clock", "clock-p", 20), 200);
    wait = t0 + end_off + 300 - now_ms();
    tdev_sleep_ms(wait > 0 ? (int)wait : 0);
    g = get_tourn(NULL, "clock");
    assert_string_equal(tdev_str(g, "state"), "ended");
    assert_int_equal(tdev_int(g, "participants"), 1);
    json_decref(g);
    assert_int_equal(score("clock", "clock-p", 10), 403);
    struct httpc_resp r;
    req(fx->r2.http, "GET", "/v1/boards/clock/players/clock-p", "", NULL, &r);
    expect(&r, 200, "final standing");
    assert_int_equal(tdev_int(r.json, "score"), 20); /* asc and best: the lower stays */
    assert_int_equal(tdev_int(r.json, "rank"), 1);
    httpc_free(&r);
}

/* Items of @player's rewards for board @board, cycle @cycle, through @http: their count, and
 * the reward of the last one in @reward. */
static int rewards_of(const char *http, const char *player, const char *board, int64_t cycle,
                      char *reward, size_t cap)
{
    char path[128];
    struct httpc_resp r;
    size_t i;
    json_t *it;
    int n = 0;
    snprintf(path, sizeof path, "/v1/players/%s/rewards", player);
    req(http, "GET", path, "", NULL, &r);
    expect(&r, 200, path);
    json_array_foreach(json_object_get(r.json, "items"), i, it)
    {
        if (strcmp(tdev_str(it, "board_id"), board) == 0 && tdev_int(it, "cycle") == cycle) {
            n++;
            snprintf(reward, cap, "%s", tdev_str(it, "reward"));
        }
    }
    httpc_free(&r);
    return n;
}

/* At its end a tournament is closed once for the cluster, by whichever router's closer comes
 * first: the final standings are recorded as its cycle 0 and stay readable at its top, and the
 * prize (rank 1: "cup") is granted once, in the winner's region. */
static void prizes_granted_once_at_the_end(void **state)
{
    (void)state;
    const char *players[3] = {"prize-na", "prize-eu", "prize-apac"};
    const char *regs[3] = {"na", "eu", "apac"};
    int64_t t0 = now_ms(), end_off = 4000;
    put_tourn("prize", "desc", -1000, end_off, 10, 0, 201);
    for (int i = 0; i < 3; i++) {
        put_player(players[i], regs[i]);
        join_ok(i % 2 ? fx->r2.http : NULL, "prize", players[i], i + 1);
        assert_int_equal(score("prize", players[i], 100 + 10 * i), 200);
    }
    int64_t wait = t0 + end_off - now_ms();
    tdev_sleep_ms(wait > 0 ? (int)wait : 0);
    struct httpc_resp r;
    int st = 0;
    for (int k = 0; k < 200; k++) {
        if ((st = req(NULL, "GET", "/v1/boards/prize/cycles/0", "", NULL, &r)) == 200) {
            break;
        }
        httpc_free(&r);
        tdev_sleep_ms(50);
    }
    expect(&r, 200, "the tournament's close record");
    json_t *entries = json_object_get(r.json, "entries"), *rw = json_object_get(r.json, "rewards");
    assert_int_equal(json_array_size(entries), 3);
    assert_string_equal(tdev_str(json_array_get(entries, 0), "player_id"), "prize-apac");
    assert_int_equal(tdev_int(json_array_get(entries, 0), "score"), 120);
    assert_string_equal(tdev_str(json_array_get(entries, 2), "player_id"), "prize-na");
    assert_int_equal(json_array_size(rw), 1);
    assert_string_equal(tdev_str(json_array_get(rw, 0), "player_id"), "prize-apac");
    assert_string_equal(tdev_str(json_array_get(rw, 0), "reward"), "cup");
    httpc_free(&r);
    /* Granted once, seen through both routers, after both closers have had their turn. */
    tdev_sleep_ms(1500);
    char reward[80] = "";
    for (int h = 0; h < 2; h++) {
        const char *http = h ? fx->r2.http : NULL;
        assert_int_equal(rewards_of(http, "prize-apac", "prize", 0, reward, sizeof reward), 1);
        assert_string_equal(reward, "cup");
        assert_int_equal(rewards_of(http, "prize-eu", "prize", 0, reward, sizeof reward), 0);
        assert_int_equal(rewards_of(http, "prize-na", "prize", 0, reward, sizeof reward), 0);
    }
    /* The final standings stay readable. */
    req(fx->r2.http, "GET", "/v1/boards/prize/top", "", NULL, &r);
    expect(&r, 200, "final top");
    assert_int_equal(json_array_size(json_object_get(r.json, "entries")), 3);
    httpc_free(&r);
}

/* A join whose region cannot answer (its replica stopped) is 503 after meta admitted the player;
 * the retry, through the other router once the region is back, finishes the membership
 * without taking a second place. */
static void retried_join_finishes_the_work(void **state)
{
    (void)state;
    struct httpc_resp r;
    put_tourn("retry", "desc", -60000, 3600000, 3, 0, 201);
    put_player("retry-p", "apac");
    int i = tdev_node_index(&fx->d, "apac", 1);
    assert_true(i >= 0);
    assert_int_equal(kill(fx->d.node[i].pid, SIGSTOP), 0);
    join(NULL, "retry", "retry-p", &r);
    int stopped_status = r.status;
    assert_int_equal(kill(fx->d.node[i].pid, SIGCONT), 0);
    tdev_assert_error(&r, 503, "unavailable", "join while the player's region is stopped");
    assert_non_null(strstr(r.headers, "\r\nRetry-After:"));
    httpc_free(&r);
    assert_int_equal(stopped_status, 503);
    json_t *g = get_tourn(NULL, "retry");
    assert_int_equal(tdev_int(g, "participants"), 1); /* meta admitted before the region failed */
    json_decref(g);
    join_ok(fx->r2.http, "retry", "retry-p", 1);
    assert_int_equal(score("retry", "retry-p", 3), 200);
    g = get_tourn(fx->r2.http, "retry");
    assert_int_equal(tdev_int(g, "participants"), 1);
    json_decref(g);
}

/* Bad bodies for put_validation_changes_nothing: each replaces one field of a valid body with
 * its JSON text, or drops it (NULL). */
static const char *const bad_fields[][2] = {
    {"name", NULL},
    {"name", "\"\""},
    {"name", "\"a tournament name that is far too long: it has more than sixty-four chars\""},
    {"order", "\"up\""},
    {"operator", "\"max\""},
    {"operator", NULL},
    {"start_at", NULL},
    {"start_at", "\"yesterday\""},
    {"start_at", "\"2026-13-01T00:00:00.000Z\""},
    {"end_at", "12345"},
    {"end_at", "\"1969-12-31T23:59:59.000Z\""},
    {"end_at", "\"1970-01-01T00:00:00.000Z\""}, /* before start_at */
    {"max_participants", NULL},
    {"max_participants", "0"},
    {"max_participants", "-3"},
    {"max_participants", "\"5\""},
    {"max_participants", "100000001"},
    {"max_attempts", "0"},
    {"max_attempts", "1.5"},
    {"prizes", "{}"},
    {"prizes", "[{\"rank_from\":0,\"rank_to\":1,\"reward\":\"x\"}]"},
    {"prizes", "[{\"rank_from\":3,\"rank_to\":2,\"reward\":\"x\"}]"},
    {"prizes", "[{\"rank_from\":1,\"rank_to\":2}]"},
    {"prizes", "[{\"rank_from\":1,\"rank_to\":2,\"reward\":\"\"}]"},
};
#define N_BAD (sizeof bad_fields / sizeof bad_fields[0])

/* Bad body @i (free it), around the window [@s, @e). */
static char *bad_body(size_t i, const char *s, const char *e)
{
    json_t *b = json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:[]}", "name", "Valid", "order", "desc",
                          "operator", "best", "start_at", s, "end_at", e, "max_participants", 5,
                          "max_attempts", 3, "prizes");
    if (bad_fields[i][1] == NULL) {
        json_object_del(b, bad_fields[i][0]);
    } else {
        json_object_set_new(b, bad_fields[i][0],
                            json_loads(bad_fields[i][1], JSON_DECODE_ANY, NULL));
    }
    char *txt = json_dumps(b, JSON_COMPACT);
    json_decref(b);
    return txt;
}

/* PUT every bad body on @id: 400 each time. */
static void put_every_bad_body(const char *id)
{
    char s[TIME_BUF], e[TIME_BUF], path[128];
    int64_t now = now_ms();
    rfc3339(now - 60000, s);
    rfc3339(now + 3600000, e);
    snprintf(path, sizeof path, "/v1/tournaments/%s", id);
    for (size_t i = 0; i < N_BAD; i++) {
        struct httpc_resp r;
        char *txt = bad_body(i, s, e);
        req(NULL, "PUT", path, TDEV_ADMIN, txt, &r);
        tdev_assert_error(&r, 400, "invalid_argument", txt);
        httpc_free(&r);
        free(txt);
    }
}

/* Every bad PUT is 400 and neither creates nor changes a tournament; a change of order and a
 * plain board's id are 409; keys are checked; an update answers 200 and GET shows it. */
static void put_validation_changes_nothing(void **state)
{
    (void)state;
    struct httpc_resp r;
    put_every_bad_body("valid-new");
    req(NULL, "GET", "/v1/tournaments/valid-new", "", NULL, &r);
    tdev_assert_error(&r, 404, "not_found", "GET after refused creations");
    httpc_free(&r);
    put_tourn("valid", "desc", -60000, 3600000, 4, 2, 201);
    json_t *before = get_tourn(NULL, "valid");
    put_every_bad_body("valid");
    put_tourn("valid", "asc", -60000, 3600000, 9, 1, 409); /* the order cannot change */
    for (int k = 0; k < 2; k++) {
        json_t *after = get_tourn(k ? fx->r2.http : NULL, "valid");
        json_object_del(after, "state"); /* the only field the clock may change */
        json_object_del(before, "state");
        if (!json_equal(before, after)) {
            char *a = json_dumps(before, JSON_COMPACT), *b = json_dumps(after, JSON_COMPACT);
            fail_msg("refused puts changed the tournament: %s became %s", a, b);
        }
        json_decref(after);
    }
    assert_int_equal(tdev_int(before, "max_participants"), 4);
    assert_int_equal(tdev_int(before, "max_attempts"), 2);
    assert_int_equal(json_array_size(json_object_get(before, "prizes")), 1);
    json_decref(before);
    /* An update answers 200 and shows through either router. */
    char s[TIME_BUF], e[TIME_BUF], body[512];
    int64_t now = now_ms();
    rfc3339(now - 60000, s);
    rfc3339(now + 3600000, e);
    snprintf(body, sizeof body,
             "{\"name\":\"Renamed\",\"order\":\"desc\",\"operator\":\"set\","
             "\"start_at\":\"%s\",\"end_at\":\"%s\",\"max_participants\":8}",
             s, e);
    req(NULL, "PUT", "/v1/tournaments/valid", TDEV_ADMIN, body, &r);
    expect(&r, 200, "update");
    httpc_free(&r);
    json_t *g = get_tourn(fx->r2.http, "valid");
    assert_string_equal(tdev_str(g, "tournament_id"), "valid");
    assert_string_equal(tdev_str(g, "name"), "Renamed");
    assert_string_equal(tdev_str(g, "operator"), "set");
    assert_string_equal(tdev_str(g, "start_at"), s);
    assert_string_equal(tdev_str(g, "end_at"), e);
    assert_int_equal(tdev_int(g, "max_participants"), 8);
    assert_int_equal(tdev_int(g, "participants"), 0);
    assert_true(json_is_null(json_object_get(g, "max_attempts")));
    assert_int_equal(json_array_size(json_object_get(g, "prizes")), 0);
    json_decref(g);
    /* A plain board's id is not a tournament's. */
    assert_int_equal(tdev_status(&fx->d, "PUT", "/v1/boards/plain", TDEV_ADMIN,
                                 "{\"order\":\"desc\",\"operator\":\"best\"}"),
                     201);
    put_tourn("plain", "desc", -60000, 3600000, 4, 0, 409);
    req(NULL, "GET", "/v1/tournaments/plain", "", NULL, &r);
    tdev_assert_error(&r, 404, "not_found", "GET of a plain board as a tournament");
    httpc_free(&r);
    put_player("plain-p", "na");
    join(NULL, "plain", "plain-p", &r);
    tdev_assert_error(&r, 404, "not_found", "join of a plain board");
    httpc_free(&r);
    /* Keys: the api key may not put a tournament; no key is 401. */
    char *txt = tourn_body("keys", "desc", 0, 1000, 1, 0);
    req(NULL, "PUT", "/v1/tournaments/keys", TDEV_API, txt, &r);
    tdev_assert_error(&r, 403, "forbidden", "PUT with the api key");
    httpc_free(&r);
    req(NULL, "PUT", "/v1/tournaments/keys", "", txt, &r);
    tdev_assert_error(&r, 401, "unauthorized", "PUT without a key");
    httpc_free(&r);
    free(txt);
    req(NULL, "GET", "/v1/tournaments/keys", "", NULL, &r);
    tdev_assert_error(&r, 404, "not_found", "GET of an unknown tournament");
    httpc_free(&r);
}

/* With every meta replica killed, PUT and join answer 503 with Retry-After through both
 * routers; the tournament's board stays readable. */
static void meta_down_is_503(void **state)
{
    (void)state;
    struct httpc_resp r;
    put_tourn("down", "desc", -60000, 3600000, 4, 0, 201);
    put_player("down-p", "eu");
    unsigned nmeta = 0;
    for (unsigned i = 0; i < fx->d.nnodes; i++) {
        if (strcmp(fx->d.node[i].region, "meta") == 0) {
            tdev_kill9(&fx->d, i);
            nmeta++;
        }
    }
    assert_true(nmeta > 0);
    tdev_sleep_ms(300);
    char *txt = tourn_body("down", "desc", -60000, 3600000, 5, 0);
    const char *http[2] = {fx->d.http, fx->r2.http};
    for (int k = 0; k < 2; k++) {
        req(http[k], "PUT", "/v1/tournaments/down", TDEV_ADMIN, txt, &r);
        tdev_assert_error(&r, 503, "unavailable", "PUT without meta");
        assert_non_null(strstr(r.headers, "\r\nRetry-After:"));
        httpc_free(&r);
        join(http[k], "down", "down-p", &r);
        tdev_assert_error(&r, 503, "unavailable", "join without meta");
        assert_non_null(strstr(r.headers, "\r\nRetry-After:"));
        httpc_free(&r);
    }
    free(txt);
    req(NULL, "GET", "/v1/boards/down/top", "", NULL, &r);
    expect(&r, 200, "a tournament's board without meta");
    httpc_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(concurrent_joins_never_pass_the_cap),
        cmocka_unit_test(join_twice_is_a_noop),
        cmocka_unit_test(scores_need_a_join_and_attempts),
        cmocka_unit_test(state_follows_the_clock),
        cmocka_unit_test(prizes_granted_once_at_the_end),
        cmocka_unit_test(retried_join_finishes_the_work),
        cmocka_unit_test(put_validation_changes_nothing),
        cmocka_unit_test(meta_down_is_503),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
