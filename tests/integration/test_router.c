/* tests/integration/test_router.c — a real `laurel router` process over two regions of three
 * real replicas each, driven over HTTP: auth rules, players across regions, idempotent
 * scores, exact global pages merged across regions, and bad input. The router remembers at
 * most ROUTER_PLAYER_CACHE players' regions, so every test also runs the look-up path. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench/httpload.h"
#include "tests/lib/cluster.h"
#include "tests/lib/httpc.h"
#include "tests/lib/testlib.h"

#define ADMIN "router-admin-key-0123"
#define API "router-api-key-04567"
#define ROUTER_PLAYER_CACHE "2"

struct fixture {
    struct tcluster eu, na, meta;
    char http[32];
    pid_t router;
};

static struct fixture *fx;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void region_arg(char *out, size_t cap, const char *id, const struct tcluster *c)
{
    snprintf(out, cap, "%s=%s,%s,%s", id, c->r[0].rpc, c->r[1].rpc, c->r[2].rpc);
}

static int req(const char *method, const char *path, const char *auth, const char *body,
               struct httpc_resp *r)
{
    for (int i = 0; i < 50; i++) {
        if (httpc_do(fx->http, method, path, auth, body, r) == 0) {
            return r->status;
        }
        sleep_ms(100);
    }
    fail_msg("%s %s: no answer", method, path);
    return -1;
}

static int status_of(const char *method, const char *path, const char *auth, const char *body)
{
    struct httpc_resp r;
    int s = req(method, path, auth, body, &r);
    httpc_free(&r);
    return s;
}

static int setup(void **state)
{
    (void)state;
    char eu[256], na[256], meta[256];
    fx = calloc(1, sizeof *fx);
    assert_int_equal(tcluster_start(&fx->eu, 3, "eu"), 0);
    assert_int_equal(tcluster_start(&fx->na, 3, "na"), 0);
    assert_int_equal(tcluster_start(&fx->meta, 3, "meta"), 0);
    snprintf(fx->http, sizeof fx->http, "127.0.0.1:%d", client_free_port());
    region_arg(eu, sizeof eu, "eu", &fx->eu);
    region_arg(na, sizeof na, "na", &fx->na);
    snprintf(meta, sizeof meta, "%s,%s,%s", fx->meta.r[0].rpc, fx->meta.r[1].rpc,
             fx->meta.r[2].rpc);
    fx->router = fork();
    if (fx->router == 0) {
        execl(fx->eu.bin, fx->eu.bin, "router", "--http", fx->http, "--region", eu, "--region", na,
              "--meta", meta, "--admin-key", ADMIN, "--api-key", API, "--timeout-ms", "1500",
              "--player-cache", ROUTER_PLAYER_CACHE, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 200 && status_of("GET", "/readyz", "", NULL) != 200; i++) {
        sleep_ms(100);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kill(fx->router, SIGTERM);
    waitpid(fx->router, NULL, 0);
    tcluster_stop(&fx->eu);
    tcluster_stop(&fx->na);
    tcluster_stop(&fx->meta);
    free(fx);
    return 0;
}

/* Health and readiness answer once every region has a leader. */
static void health_and_ready(void **state)
{
    (void)state;
    assert_int_equal(status_of("GET", "/healthz", "", NULL), 200);
    assert_int_equal(status_of("GET", "/readyz", "", NULL), 200);
}

/* Keys: none → 401, the api key on an admin endpoint → 403, admin → 201 then 200. */
static void auth_rules(void **state)
{
    (void)state;
    const char *game = "{\"name\":\"Space Game\"}";
    assert_int_equal(status_of("PUT", "/v1/games/space", "", game), 401);
    assert_int_equal(status_of("PUT", "/v1/games/space", "wrong", game), 401);
    assert_int_equal(status_of("PUT", "/v1/games/space", API, game), 403);
    assert_int_equal(status_of("PUT", "/v1/games/space", ADMIN, game), 201);
    assert_int_equal(status_of("PUT", "/v1/games/space", ADMIN, game), 200);
    struct httpc_resp r;
    assert_int_equal(req("GET", "/v1/games/space", "", NULL, &r), 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "name")), "Space Game");
    httpc_free(&r);
}

/* A player lives in the region it was created in; moving it is 409. */
static void players_across_regions(void **state)
{
    (void)state;
    struct httpc_resp r;
    assert_int_equal(
        status_of("PUT", "/v1/players/ann", API, "{\"name\":\"Ann\",\"region\":\"eu\"}"), 201);
    assert_int_equal(
        status_of("PUT", "/v1/players/bob", API, "{\"name\":\"Bob\",\"region\":\"na\"}"), 201);
    assert_int_equal(status_of("PUT", "/v1/players/ann", API,
                               "{\"name\":\"Ann B\",\"region\":\"eu\",\"guild\":\"red\"}"),
                     200);
    assert_int_equal(req("PUT", "/v1/players/bob", API, "{\"name\":\"Bob\",\"region\":\"eu\"}", &r),
                     409);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "error"), "code")), "conflict");
    httpc_free(&r);
    assert_int_equal(req("GET", "/v1/players/bob", "", NULL, &r), 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "region")), "na");
    httpc_free(&r);
    assert_int_equal(status_of("GET", "/v1/players/nobody", "", NULL), 404);
    assert_int_equal(
        status_of("PUT", "/v1/players/cat", API, "{\"name\":\"Cat\",\"region\":\"mars\"}"), 400);
}

/* The same key and body replays; another body with that key is 409; keys are required. */
static void idempotent_scores(void **state)
{
    (void)state;
    struct httpc_resp r1, r2;
    const char *b = "{\"player_id\":\"ann\",\"score\":10,\"idempotency_key\":\"k-ann-000001\"}";
    assert_int_equal(
        status_of("PUT", "/v1/boards/arena", ADMIN, "{\"order\":\"desc\",\"operator\":\"incr\"}"),
        201);
    assert_int_equal(req("POST", "/v1/boards/arena/scores", API, b, &r1), 200);
    assert_null(strstr(r1.headers, "\r\nIdempotent-Replayed:"));
    assert_int_equal(req("POST", "/v1/boards/arena/scores", API, b, &r2), 200);
    assert_non_null(strstr(r2.headers, "Idempotent-Replayed: true"));
    assert_string_equal(r1.body, r2.body);
    assert_int_equal(json_integer_value(json_object_get(r2.json, "score")), 10);
    httpc_free(&r1);
    httpc_free(&r2);
    assert_int_equal(status_of("POST", "/v1/boards/arena/scores", API,
                               "{\"player_id\":\"ann\",\"score\":11,\"idempotency_key\":"
                               "\"k-ann-000001\"}"),
                     409);
    assert_int_equal(
        status_of("POST", "/v1/boards/arena/scores", API, "{\"player_id\":\"ann\",\"score\":1}"),
        400);
    assert_int_equal(status_of("POST", "/v1/boards/arena/scores", API,
                               "{\"player_id\":\"ann\",\"score\":9007199254740992,"
                               "\"idempotency_key\":\"k-ann-000002\"}"),
                     400);
    assert_int_equal(status_of("POST", "/v1/boards/arena/scores", API,
                               "{\"player_id\":\"zed\",\"score\":1,\"idempotency_key\":"
                               "\"k-zed-000001\"}"),
                     404);
}

/* ---- group commit: many writes at once through one router ------------------------------- */

#define GROUP_CONNS 48 /* the last two send one body together; the others a player each */
#define GROUP_ROUNDS 3

struct group_load {
    unsigned sent[GROUP_CONNS], answered[GROUP_CONNS];
    unsigned ok, bad;
    char why[256]; /* the first bad answer */
    char dup[2][512];
};

/* Connection c < GROUP_CONNS - 2 writes GROUP_ROUNDS scores of player gc<c>, rising (so the
 * board's best is the last); the last two write one identical body once, at the same time. */
static size_t group_make(void *data, unsigned conn, uint64_t seq, char *buf, size_t cap)
{
    struct group_load *g = data;
    char body[256];
    unsigned k = g->sent[conn];
    (void)seq;
    if (conn >= GROUP_CONNS - 2 ? k > 0 : k == GROUP_ROUNDS) {
        return 0;
    }
    if (conn >= GROUP_CONNS - 2) {
        snprintf(body, sizeof body,
                 "{\"player_id\":\"gc%02u\",\"score\":7,\"idempotency_key\":\"gc-dup-key-1\"}",
                 GROUP_CONNS - 2);
    } else {
        snprintf(body, sizeof body,
                 "{\"player_id\":\"gc%02u\",\"score\":%u,\"idempotency_key\":\"gc-%02u-%u-key\"}",
                 conn, conn * 100 + k, conn, k);
    }
    size_t blen = strlen(body);
    size_t h = httpload_head(buf, cap, "POST", "/v1/boards/group/scores", fx->http, API, 1, blen);
    if (h == 0 || h + blen > cap) {
        return 0;
    }
    memcpy(buf + h, body, blen);
    g->sent[conn]++;
    return h + blen;
}

/* Each answer is its own request's: 200, its player, its score. */
static void group_done(void *data, unsigned conn, uint64_t seq, int status, const char *body,
                       size_t len)
{
    struct group_load *g = data;
    unsigned k = g->answered[conn]++;
    unsigned player = conn >= GROUP_CONNS - 2 ? GROUP_CONNS - 2 : conn;
    long long want = conn >= GROUP_CONNS - 2 ? 7 : (long long)(conn * 100 + k);
    char id[16];
    json_t *j = body ? json_loadb(body, len, 0, NULL) : NULL;
    const char *pid = json_string_value(json_object_get(j, "player_id"));
    (void)seq;
    snprintf(id, sizeof id, "gc%02u", player);
    if (status == 200 && j && json_integer_value(json_object_get(j, "score")) == want &&
        (pid == NULL || strcmp(pid, id) == 0)) {
        g->ok++;
        if (conn >= GROUP_CONNS - 2) {
            snprintf(g->dup[conn - (GROUP_CONNS - 2)], sizeof g->dup[0], "%.*s", (int)len, body);
        }
    } else if (g->bad++ == 0) {
        snprintf(g->why, sizeof g->why, "conn %u round %u: %d %.*s", conn, k, status,
                 body ? (int)len : 0, body ? body : "");
    }
    json_decref(j);
}

static long long group_metric(const char *name)
{
    char key[128];
    long long sum = 0;
    static const char *const regions[] = {"eu", "na"};
    for (int i = 0; i < 2; i++) {
        snprintf(key, sizeof key, "%s{region=\"%s\"}", name, regions[i]);
        long long v = httpc_metric(fx->http, key);
        assert_true(v >= 0);
        sum += v;
    }
    return sum;
}

/* Many concurrent score writes through one router to two 3-replica regions: every request
 * gets its own answer (its player, its score; one key sent twice at once answers the same
 * body twice), and the router carried them in fewer submit calls than writes. */
static void concurrent_scores_grouped(void **state)
{
    (void)state;
    char path[64], body[128];
    static struct group_load g; /* the answers' bodies make it too big for the stack */
    struct httpload_result res;
    assert_int_equal(
        status_of("PUT", "/v1/boards/group", ADMIN, "{\"order\":\"desc\",\"operator\":\"best\"}"),
        201);
    for (unsigned i = 0; i <= GROUP_CONNS - 2; i++) {
        snprintf(path, sizeof path, "/v1/players/gc%02u", i);
        snprintf(body, sizeof body, "{\"name\":\"gc%02u\",\"region\":\"%s\"}", i,
                 i % 2 ? "na" : "eu");
        assert_int_equal(status_of("PUT", path, API, body), 201);
    }
    long long writes0 = group_metric("laurel_router_submits_total");
    long long rpcs0 = group_metric("laurel_router_submit_rpcs_total");
    memset(&g, 0, sizeof g);
    struct httpload_spec spec = {fx->http, GROUP_CONNS, 0, group_make, group_done, &g};
    assert_int_equal(httpload_run(&spec, &res), 0);
    if (g.bad) {
        fail_msg("%u bad answers, the first: %s", g.bad, g.why);
    }
    assert_int_equal(res.transport_errors, 0);
    assert_int_equal(g.ok, (GROUP_CONNS - 2) * GROUP_ROUNDS + 2);
    assert_string_equal(g.dup[0], g.dup[1]);
    long long writes = group_metric("laurel_router_submits_total") - writes0;
    long long rpcs = group_metric("laurel_router_submit_rpcs_total") - rpcs0;
    assert_int_equal(writes, g.ok);
    print_message("group commit: %lld writes in %lld submit calls\n", writes, rpcs);
    assert_true(rpcs > 0 && rpcs < writes);
}

/* Pages of the global board merge both regions exactly: walking them by cursor gives every
 * player once, in API.md's order, with ranks 1..n; region scope ranks within the region. */
static void global_pages_merge_regions(void **state)
{
    (void)state;
    char path[256], body[256], cursor[160] = "";
    int n = 0;
    assert_int_equal(
        status_of("PUT", "/v1/boards/duel", ADMIN, "{\"order\":\"desc\",\"operator\":\"best\"}"),
        201);
    for (int i = 0; i < 12; i++) {
        char id[16];
        snprintf(id, sizeof id, "g%02d", i);
        snprintf(path, sizeof path, "/v1/players/%s", id);
        snprintf(body, sizeof body, "{\"name\":\"%s\",\"region\":\"%s\"}", id, i % 2 ? "na" : "eu");
        assert_int_equal(status_of("PUT", path, API, body), 201);
        snprintf(body, sizeof body,
                 "{\"player_id\":\"%s\",\"score\":%d,\"idempotency_key\":\"duel-%s-1\"}", id,
                 (i * 7) % 5, id);
        assert_int_equal(status_of("POST", "/v1/boards/duel/scores", API, body), 200);
    }
    int64_t last_score = INT64_MAX;
    for (;;) {
        struct httpc_resp r;
        snprintf(path, sizeof path, "/v1/boards/duel/top?limit=5%s%s", cursor[0] ? "&cursor=" : "",
                 cursor);
        assert_int_equal(req("GET", path, "", NULL, &r), 200);
        assert_int_equal(json_integer_value(json_object_get(r.json, "total")), 12);
        json_t *ents = json_object_get(r.json, "entries"), *e;
        size_t i;
        json_array_foreach(ents, i, e)
        {
            n++;
            assert_int_equal(json_integer_value(json_object_get(e, "rank")), n);
            int64_t sc = json_integer_value(json_object_get(e, "score"));
            assert_true(sc <= last_score);
            last_score = sc;
        }
        json_t *next = json_object_get(r.json, "next_cursor");
        if (!json_is_string(next)) {
            httpc_free(&r);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        httpc_free(&r);
    }
    assert_int_equal(n, 12);
    struct httpc_resp r;
    assert_int_equal(req("GET", "/v1/boards/duel/top?scope=region:na&limit=100", "", NULL, &r),
                     200);
    assert_int_equal(json_array_size(json_object_get(r.json, "entries")), 6);
    assert_string_equal(json_string_value(json_object_get(r.json, "scope")), "region:na");
    httpc_free(&r);
    assert_int_equal(status_of("GET", "/v1/boards/duel/top?scope=region:mars", "", NULL), 400);
    assert_int_equal(status_of("GET", "/v1/boards/duel/top?limit=0", "", NULL), 400);
    assert_int_equal(status_of("GET", "/v1/boards/duel/top?window=hourly", "", NULL), 400);
}

/* Unlocks go to the player's region; the listing sums unlocks over regions. */
static void unlocks_and_achievement_counts(void **state)
{
    (void)state;
    struct httpc_resp r1, r2;
    assert_int_equal(status_of("PUT", "/v1/games/quest", ADMIN, "{\"name\":\"Quest\"}"), 201);
    assert_int_equal(status_of("PUT", "/v1/games/quest/achievements/first", ADMIN,
                               "{\"name\":\"First\",\"points\":10}"),
                     201);
    assert_int_equal(status_of("PUT", "/v1/games/quest/achievements/secret", ADMIN,
                               "{\"name\":\"Secret\",\"points\":5,\"hidden\":true}"),
                     201);
    assert_int_equal(
        status_of("PUT", "/v1/games/quest/achievements/first", API, "{\"name\":\"First\"}"), 403);
    const char *u =
        "{\"player_id\":\"ann\",\"game_id\":\"quest\",\"achievement_id\":\"first\","
        "\"idempotency_key\":\"unlock-ann-1\"}";
    assert_int_equal(req("POST", "/v1/unlocks", API, u, &r1), 200);
    assert_true(json_is_true(json_object_get(r1.json, "newly_unlocked")));
    assert_int_equal(json_integer_value(json_object_get(r1.json, "total_points")), 10);
    assert_int_equal(req("POST", "/v1/unlocks", API, u, &r2), 200);
    assert_non_null(strstr(r2.headers, "Idempotent-Replayed: true"));
    assert_string_equal(r1.body, r2.body);
    httpc_free(&r1);
    httpc_free(&r2);
    assert_int_equal(status_of("POST", "/v1/unlocks", API,
                               "{\"player_id\":\"bob\",\"game_id\":\"quest\",\"achievement_id\":"
                               "\"first\",\"idempotency_key\":\"unlock-bob-1\"}"),
                     200);
    assert_int_equal(status_of("POST", "/v1/unlocks", API,
                               "{\"player_id\":\"bob\",\"game_id\":\"quest\",\"achievement_id\":"
                               "\"nope\",\"idempotency_key\":\"unlock-bob-2\"}"),
                     404);
    /* ann (eu) and bob (na) both unlocked "first": 2 of 2 players with progress. */
    assert_int_equal(req("GET", "/v1/games/quest/achievements", "", NULL, &r1), 200);
    json_t *l = json_object_get(r1.json, "achievements");
    assert_int_equal(json_array_size(l), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(l, 0), "unlocked_count")),
                     2);
    assert_true(json_real_value(json_object_get(json_array_get(l, 0), "unlocked_pct")) == 100.0);
    assert_null(json_object_get(json_array_get(l, 1), "name")); /* hidden from the public */
    httpc_free(&r1);
    assert_int_equal(req("GET", "/v1/games/quest/achievements", ADMIN, NULL, &r1), 200);
    l = json_object_get(r1.json, "achievements");
    assert_string_equal(json_string_value(json_object_get(json_array_get(l, 1), "name")), "Secret");
    httpc_free(&r1);
}

/* Exit status of `laurel router` started with one more @flag @val, or 0 if it was still
 * running after 5 s (it took the flag and started serving). */
static int run_router_flag(const char *flag, const char *val)
{
    char eu[256], http[32];
    region_arg(eu, sizeof eu, "eu", &fx->eu);
    snprintf(http, sizeof http, "127.0.0.1:%d", client_free_port());
    pid_t pid = fork();
    if (pid == 0) {
        execl(fx->eu.bin, fx->eu.bin, "router", "--http", http, "--region", eu, "--admin-key",
              ADMIN, "--api-key", API, flag, val, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    for (int i = 0; i < 50; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
        }
        sleep_ms(100);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}

/* Start `laurel router --http @http --region eu=... --meta ... @extra...` (NULL-terminated) with
 * LAUREL_API_KEY set to @env_api (unset when NULL), its stderr into @err (when not NULL). */
static pid_t spawn_router(const char *http, const char *const *extra, const char *env_api,
                          const char *err)
{
    char eu[256], meta[256];
    const char *argv[24] = {fx->eu.bin, "router", "--http", http, "--region", eu, "--meta", meta};
    int a = 8;
    region_arg(eu, sizeof eu, "eu", &fx->eu);
    snprintf(meta, sizeof meta, "%s,%s,%s", fx->meta.r[0].rpc, fx->meta.r[1].rpc,
             fx->meta.r[2].rpc);
    for (int i = 0; extra[i] && a < 23; i++) {
        argv[a++] = extra[i];
    }
    argv[a] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        unsetenv("LAUREL_ADMIN_KEY");
        if (env_api) {
            setenv("LAUREL_API_KEY", env_api, 1);
        } else {
            unsetenv("LAUREL_API_KEY");
        }
        if (err && freopen(err, "w", stderr) == NULL) {
            _exit(126);
        }
        execv(fx->eu.bin, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* The exit status of @pid, or 0 if it was still running after 5 s (then it is killed). */
static int exit_within_5s(pid_t pid)
{
    int st = 0;
    for (int i = 0; i < 50; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
        }
        sleep_ms(100);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return 0;
}

/* Status of PUT /v1/games/rot (an admin endpoint) on @http with @key, once it answers. */
static int put_game(const char *http, const char *key)
{
    struct httpc_resp r;
    for (int i = 0; i < 50; i++) {
        if (httpc_do(http, "PUT", "/v1/games/rot", key, "{\"name\":\"Rot\"}", &r) == 0) {
            int st = r.status;
            httpc_free(&r);
            return st;
        }
        sleep_ms(100);
    }
    return -1;
}

static void wait_ready_on(const char *http)
{
    struct httpc_resp r;
    for (int i = 0; i < 100; i++) {
        if (httpc_do(http, "GET", "/readyz", "", NULL, &r) == 0) {
            int st = r.status;
            httpc_free(&r);
            if (st == 200) {
                return;
            }
        }
        sleep_ms(100);
    }
    fail_msg("router on %s not ready", http);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

#define OLD_ADMIN "rotate-admin-key-old-0001"
#define NEW_ADMIN "rotate-admin-key-new-0002"
#define OLD_API "rotate-api-key-old-00003"
#define NEW_API "rotate-api-key-new-00004"

/* Rotation through --keys-file: with the old and new keys of each role listed, both work, and
 * the env's api keys too; after a restart with the old ones dropped, they are refused and the
 * new ones still work. No key is on the router's command line. */
static void keys_file_rotation(void **state)
{
    (void)state;
    char *dir = testlib_tmpdir(), path[600], http[32];
    snprintf(path, sizeof path, "%s/keys.json", dir);
    write_text(path, "{\"admin_keys\": [\"" OLD_ADMIN "\", \"" NEW_ADMIN
                     "\"], \"api_keys\": [\"" OLD_API "\", \"" NEW_API "\"]}");
    const char *extra[] = {"--keys-file", path, NULL};
    snprintf(http, sizeof http, "127.0.0.1:%d", client_free_port());
    pid_t pid = spawn_router(http, extra, "rotate-api-key-env-0005,rotate-api-key-env-0006", NULL);
    wait_ready_on(http);
    assert_int_equal(put_game(http, OLD_ADMIN), 201);
    assert_int_equal(put_game(http, NEW_ADMIN), 200);
    assert_int_equal(put_game(http, OLD_API), 403); /* known, but not an admin key */
    assert_int_equal(put_game(http, NEW_API), 403);
    assert_int_equal(put_game(http, "rotate-api-key-env-0006"), 403);
    assert_int_equal(put_game(http, "rotate-admin-key-old-000"), 401); /* a prefix */
    assert_int_equal(put_game(http, OLD_ADMIN "1"), 401);
    const char *all[] = {OLD_ADMIN, NEW_ADMIN, OLD_API, NEW_API};
    for (unsigned i = 0; i < 4; i++) {
        assert_false(testlib_cmdline_has(pid, all[i]));
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);

    /* The old keys retired. */
    write_text(path, "{\"admin_keys\": [\"" NEW_ADMIN "\"], \"api_keys\": [\"" NEW_API "\"]}");
    pid = spawn_router(http, extra, NULL, NULL);
    wait_ready_on(http);
    assert_int_equal(put_game(http, NEW_ADMIN), 200);
    assert_int_equal(put_game(http, OLD_ADMIN), 401);
    assert_int_equal(put_game(http, OLD_API), 401);
    assert_int_equal(put_game(http, NEW_API), 403);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    testlib_rmrf(dir);
    free(dir);
}

/* The router refuses to start, exit 2 with a sentence saying what to do, on: an admin key that
 * is also an api key, a key under 16 or over 255 bytes (never cut), a bad keys file, and no key
 * at all on an address other hosts reach. Without keys on loopback it starts. */
static void keys_refused_at_start(void **state)
{
    (void)state;
    char *dir = testlib_tmpdir(), err[600], path[600], http[32], big[300], text[4096];
    memset(big, 'k', 256);
    big[256] = '\0';
    snprintf(err, sizeof err, "%s/err", dir);
    snprintf(path, sizeof path, "%s/keys.json", dir);
    write_text(path, "{\"admin_key\": \"" OLD_ADMIN "\", \"api_keys\": [\"" OLD_ADMIN "\"]}");
    struct {
        const char *extra[6];
        const char *env_api;
        const char *says;
    } cases[] = {
        {{"--admin-key", NEW_ADMIN, "--api-key", NEW_ADMIN, NULL},
         NULL,
         "--api-key: this api key is also an admin key; give each role its own keys"},
        {{"--admin-key", NEW_ADMIN, NULL},
         NEW_ADMIN,
         "LAUREL_API_KEY: this api key is also an admin key"},
        {{"--keys-file", path, NULL}, NULL, "api_keys[0]: this api key is also an admin key"},
        {{"--admin-key", "short-key", NULL},
         NULL,
         "--admin-key: an admin key is 16 to 255 bytes, this one is 9; use a long random key"},
        {{"--api-key", big, NULL}, NULL, "an api key is 16 to 255 bytes, this one is 256"},
        {{"--keys-file", "/nonexistent/keys.json", NULL}, NULL, "/nonexistent/keys.json: "},
        {{"--http", "0.0.0.0:1", NULL},
         NULL,
         "--http 0.0.0.0:1 is reachable from other hosts and no key is given: pass --keys-file"},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(http, sizeof http, "127.0.0.1:%d", client_free_port());
        pid_t pid = spawn_router(http, cases[i].extra, cases[i].env_api, err);
        assert_int_equal(exit_within_5s(pid), 2);
        FILE *f = fopen(err, "r");
        assert_non_null(f);
        text[fread(text, 1, sizeof text - 1, f)] = '\0';
        fclose(f);
        if (strstr(text, cases[i].says) == NULL) {
            fail_msg("case %u: \"%s\" not in: %s", i, cases[i].says, text);
        }
        assert_null(strstr(text, NEW_ADMIN)); /* a message never shows a key */
    }
    /* No key on loopback: it serves, and what needs a key is 401. */
    snprintf(http, sizeof http, "127.0.0.1:%d", client_free_port());
    const char *none[] = {NULL};
    pid_t pid = spawn_router(http, none, NULL, err);
    assert_int_equal(put_game(http, NEW_ADMIN), 401);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    testlib_rmrf(dir);
    free(dir);
}

/* A router with a metadata group none of whose replicas runs: its regions alone do not make
 * it ready (503, naming the group), and /v1/cluster shows the group as "meta", apart from the
 * regions, leaderless and unreachable. A malformed --meta, and a region named "meta", are
 * refused at start-up. */
static void meta_group_needed_for_readiness(void **state)
{
    (void)state;
    char eu[256], na[256], http[32], meta[32];
    region_arg(eu, sizeof eu, "eu", &fx->eu);
    region_arg(na, sizeof na, "na", &fx->na);
    snprintf(http, sizeof http, "127.0.0.1:%d", client_free_port());
    snprintf(meta, sizeof meta, "127.0.0.1:%d", client_free_port()); /* nothing listens */
    pid_t pid = fork();
    if (pid == 0) {
        execl(fx->eu.bin, fx->eu.bin, "router", "--http", http, "--region", eu, "--region", na,
              "--meta", meta, "--admin-key", ADMIN, "--api-key", API, "--timeout-ms", "1000",
              (char *)NULL);
        _exit(127);
    }
    struct httpc_resp r;
    int answered = -1;
    for (int i = 0; i < 50 && answered != 0; i++) {
        if ((answered = httpc_do(http, "GET", "/readyz", "", NULL, &r)) != 0) {
            sleep_ms(100);
        }
    }
    assert_int_equal(answered, 0);
    assert_int_equal(r.status, 503);
    json_t *e = json_object_get(r.json, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "unavailable");
    assert_non_null(strstr(json_string_value(json_object_get(e, "message")), "metadata group"));
    httpc_free(&r);

    assert_int_equal(httpc_do(http, "GET", "/v1/cluster", ADMIN, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "regions")), 2);
    json_t *m = json_object_get(r.json, "meta");
    assert_string_equal(json_string_value(json_object_get(m, "id")), "meta");
    assert_true(json_is_null(json_object_get(m, "leader")));
    json_t *rep = json_array_get(json_object_get(m, "replicas"), 0);
    assert_int_equal(json_array_size(json_object_get(m, "replicas")), 1);
    assert_string_equal(json_string_value(json_object_get(rep, "address")), meta);
    assert_string_equal(json_string_value(json_object_get(rep, "role")), "unreachable");
    httpc_free(&r);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);

    assert_int_equal(run_router_flag("--meta", "no-port"), 2);
    assert_int_equal(run_router_flag("--meta", ","), 2);
    assert_int_equal(run_router_flag("--meta",
                                     "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3,127.0.0.1:4,"
                                     "127.0.0.1:5,127.0.0.1:6,127.0.0.1:7,127.0.0.1:8,"
                                     "127.0.0.1:9,127.0.0.1:10"),
                     2);
    assert_int_equal(run_router_flag("--region", "meta=127.0.0.1:1"), 2);
}

/* Six players in two regions through a router that remembers two: every single write and every
 * item of a batch still reaches its player's region (forgotten ones are looked up again), and
 * the cache stays within its bound. */
static void player_cache_bounded(void **state)
{
    (void)state;
    static const char *const who[] = {"pc-1", "pc-2", "pc-3", "pc-4", "pc-5", "pc-6"};
    char path[64], body[256];
    struct httpc_resp r;
    assert_int_equal(status_of("PUT", "/v1/boards/pc-board", ADMIN,
                               "{\"order\":\"desc\",\"operator\":\"best\"}"),
                     201);
    for (int i = 0; i < 6; i++) {
        snprintf(path, sizeof path, "/v1/players/%s", who[i]);
        snprintf(body, sizeof body, "{\"name\":\"%s\",\"region\":\"%s\"}", who[i],
                 i % 2 ? "na" : "eu");
        assert_int_equal(status_of("PUT", path, API, body), 201);
    }
    for (int i = 0; i < 6; i++) {
        snprintf(body, sizeof body,
                 "{\"player_id\":\"%s\",\"score\":%d,\"idempotency_key\":\"pc-key-%d\"}", who[i],
                 10 + i, i);
        assert_int_equal(status_of("POST", "/v1/boards/pc-board/scores", API, body), 200);
    }
    /* One batch for all six, pc-1 twice: every item lands on its player. */
    const char *batch =
        "[{\"type\":\"score\",\"board_id\":\"pc-board\",\"player_id\":\"pc-1\",\"score\":100,"
        "\"idempotency_key\":\"pc-event-1\"},"
        "{\"type\":\"score\",\"board_id\":\"pc-board\",\"player_id\":\"pc-2\",\"score\":101,"
        "\"idempotency_key\":\"pc-event-2\"},"
        "{\"type\":\"score\",\"board_id\":\"pc-board\",\"player_id\":\"pc-3\",\"score\":102,"
        "\"idempotency_key\":\"pc-event-3\"},"
        "{\"type\":\"score\",\"board_id\":\"pc-board\",\"player_id\":\"pc-4\",\"score\":103,"
        "\"idempotency_key\":\"pc-event-4\"},"
        "{\"type\":\"score\",\"board_id\":\"pc-board\",\"player_id\":\"pc-5\",\"score\":104,"
        "\"idempotency_key\":\"pc-event-5\"},"
        "{\"type\":\"score\",\"board_id\":\"pc-board\",\"player_id\":\"pc-6\",\"score\":105,"
        "\"idempotency_key\":\"pc-event-6\"},"
        "{\"type\":\"score\",\"board_id\":\"pc-board\",\"player_id\":\"pc-1\",\"score\":106,"
        "\"idempotency_key\":\"pc-event-7\"}]";
    assert_int_equal(req("POST", "/v1/events", API, batch, &r), 200);
    json_t *res = json_object_get(r.json, "results");
    assert_int_equal(json_array_size(res), 7);
    for (size_t i = 0; i < 7; i++) {
        json_t *it = json_array_get(res, i);
        if (json_integer_value(json_object_get(it, "status")) != 200) {
            fail_msg("item %zu: %s", i, r.body);
        }
    }
    httpc_free(&r);
    /* The global board holds all six at their batch scores, best first. */
    assert_int_equal(req("GET", "/v1/boards/pc-board/top?limit=10", "", NULL, &r), 200);
    json_t *e = json_object_get(r.json, "entries");
    assert_int_equal(json_array_size(e), 6);
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 0), "player_id")),
                        "pc-1");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(e, 0), "score")), 106);
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 5), "player_id")),
                        "pc-2");
    httpc_free(&r);
    long long entries = httpc_metric(fx->http, "laurel_router_player_cache_entries");
    long long evicted = httpc_metric(fx->http, "laurel_router_player_cache_evictions_total");
    if (entries < 1 || entries > atoi(ROUTER_PLAYER_CACHE) || evicted < 4) {
        fail_msg("player cache: %lld entries, %lld evictions", entries, evicted);
    }
    /* A bad bound is refused at start-up with a message, not taken as the default. */
    assert_int_not_equal(run_router_flag("--player-cache", "lots"), 0);
    assert_int_not_equal(run_router_flag("--player-cache", "0"), 0);
    assert_int_not_equal(run_router_flag("--ws-ping-ms", "12x"), 0);
}

/* Bad input gets its error and the router keeps serving. */
static void bad_input(void **state)
{
    (void)state;
    struct httpc_resp r;
    assert_int_equal(req("PUT", "/v1/players/ann", API, "{not json", &r), 400);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r.json, "error"), "code")),
        "invalid_argument");
    httpc_free(&r);
    assert_int_equal(status_of("PUT", "/v1/players/ann", API, "[1,2]"), 400);
    assert_int_equal(status_of("GET", "/v1/nothing/here", "", NULL), 404);
    assert_int_equal(status_of("DELETE", "/v1/players/ann", API, NULL), 405);
    assert_int_equal(status_of("GET", "/v1/players/bad%20id", "", NULL), 400);
    char *big = malloc(70 * 1024 + 64);
    memset(big, 'x', 70 * 1024);
    memcpy(big, "{\"name\":\"", 9);
    strcpy(big + 70 * 1024, "\"}");
    assert_int_equal(status_of("PUT", "/v1/games/big", ADMIN, big), 413);
    free(big);
    assert_int_equal(status_of("GET", "/healthz", "", NULL), 200);
}

/* A catalog write made while a region has lost every replica is recorded in the metadata
 * group and applied by the other region (201), and reaches the region once it is back, from
 * the catalog carrier (router/catsync.c), without anyone retrying it and without any queue in
 * the router. Last: it kills replicas. */
static void catalog_caught_up_when_region_returns(void **state)
{
    (void)state;
    struct httpc_resp r;
    int lead = tcluster_leader(&fx->na, 5000);
    assert_true(lead >= 0);
    /* leave na one replica: no majority, no leader */
    for (unsigned i = 0, killed = 0; i < 3 && killed < 2; i++) {
        if ((int)i != lead) {
            tcluster_kill(&fx->na, i, SIGKILL);
            killed++;
        }
    }
    tcluster_kill(&fx->na, (unsigned)lead, SIGKILL);
    assert_int_equal(req("PUT", "/v1/games/late", ADMIN, "{\"name\":\"Late\"}", &r), 201);
    httpc_free(&r);
    /* eu has it, na does not: the listing, which asks both, is refused */
    assert_int_equal(status_of("GET", "/v1/games/late", "", NULL), 200);
    assert_true(status_of("GET", "/v1/games/late/achievements", "", NULL) != 200);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(tcluster_spawn(&fx->na, i), 0);
    }
    int st = 0;
    for (int i = 0;
         i < 150 && (st = status_of("GET", "/v1/games/late/achievements", "", NULL)) != 200; i++) {
        sleep_ms(100);
    }
    assert_int_equal(st, 200);
    assert_int_equal(req("GET", "/metrics", "", NULL, &r), 200);
    assert_non_null(strstr(r.body, "laurel_raft_applied_index{region=\"na\""));
    httpc_free(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(health_and_ready),
        cmocka_unit_test(auth_rules),
        cmocka_unit_test(players_across_regions),
        cmocka_unit_test(idempotent_scores),
        cmocka_unit_test(global_pages_merge_regions),
        cmocka_unit_test(concurrent_scores_grouped),
        cmocka_unit_test(unlocks_and_achievement_counts),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(player_cache_bounded),
        cmocka_unit_test(meta_group_needed_for_readiness),
        cmocka_unit_test(keys_file_rotation),
        cmocka_unit_test(keys_refused_at_start),
        cmocka_unit_test(catalog_caught_up_when_region_returns),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
