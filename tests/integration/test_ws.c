/* tests/integration/test_ws.c — GET /v1/ws on a real `laurel router` over two regions (eu:
 * three real replicas, na: one), with real WebSocket clients (tests/ws_client.py,
 * python3-websockets): events of committed writes, board tops (each region's topic by its
 * own region, the first score on a new board under a hundred subscribers, here and on a
 * `laurel dev` cluster, names and renames in the entries), a slow consumer among fast ones, a
 * thousand clients, bad frames, reads over the socket, a resume after a reconnect, the WebSocket
 * counters of /metrics, the connection limits and the ping timeout (each on a router of its own),
 * and the event stream moving to another replica when the one it follows dies or stops while writes
 * go on.
 *
 * One binary, two files (test_ws_int.h): this one holds the fixture, the helpers, the
 * scenarios and main; test_ws_writer.c the writer thread the failover scenario runs. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/cluster.h"
#include "tests/lib/tdev.h"
#include "tests/lib/httpc.h"
#include "tests/lib/testlib.h"
#include "test_ws_int.h"

struct fixture {
    struct tcluster eu, na;
    char http[32], url[64]; /* the router every test but the limit ones uses */
    pid_t router;
    unsigned keys;
};

static struct fixture *fx;

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Start a router over both regions, serving HTTP at @http (chosen here), with @extra options
 * (NULL-terminated); wait until it is ready. */
static pid_t router_start(char *http, size_t cap, const char *const *extra)
{
    char eu[128], na[64];
    const char *argv[32];
    int a = 0;
    snprintf(http, cap, "127.0.0.1:%d", client_free_port());
    snprintf(eu, sizeof eu, "eu=%s,%s,%s", fx->eu.r[0].rpc, fx->eu.r[1].rpc, fx->eu.r[2].rpc);
    snprintf(na, sizeof na, "na=%s", fx->na.r[0].rpc);
    argv[a++] = fx->eu.bin;
    argv[a++] = "router";
    argv[a++] = "--http";
    argv[a++] = http;
    argv[a++] = "--region";
    argv[a++] = eu;
    argv[a++] = "--region";
    argv[a++] = na;
    argv[a++] = "--admin-key";
    argv[a++] = ADMIN;
    argv[a++] = "--api-key";
    argv[a++] = API;
    for (int i = 0; extra && extra[i] && a < 31; i++) {
        argv[a++] = extra[i];
    }
    argv[a] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test leaves no router behind */
        execv(fx->eu.bin, (char *const *)argv);
        _exit(127);
    }
    assert_true(pid > 0);
    struct httpc_resp r;
    int s = 0;
    for (int i = 0; i < 300 && s != 200; i++) {
        if (httpc_do(http, "GET", "/readyz", "", NULL, &r) == 0) {
            s = r.status;
            httpc_free(&r);
        }
        if (s != 200) {
            sleep_ms(100);
        }
    }
    assert_int_equal(s, 200);
    return pid;
}

/* SIGTERM a router: it must stop cleanly. */
static void router_stop(pid_t pid)
{
    int st = 0;
    kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Wait up to @ms for @key to reach at least @min; returns its last value. */
static long long metric_at_least(const char *http, const char *key, long long min, int ms)
{
    long long v = httpc_metric(http, key);
    for (int waited = 0; v < min && waited < ms; waited += 100) {
        sleep_ms(100);
        v = httpc_metric(http, key);
    }
    return v;
}

static int req_at(const char *http, const char *method, const char *path, const char *auth,
                  const char *body)
{
    struct httpc_resp r;
    for (int i = 0; i < 50; i++) {
        if (httpc_do(http, method, path, auth, body, &r) == 0) {
            int s = r.status;
            httpc_free(&r);
            return s;
        }
        sleep_ms(100);
    }
    fail_msg("%s %s: no answer", method, path);
    return -1;
}

static int req(const char *method, const char *path, const char *auth, const char *body)
{
    return req_at(fx->http, method, path, auth, body);
}

/* A score for @player on @board with a fresh idempotency key. */
static int score(const char *board, const char *player, long long value)
{
    char path[128], body[256];
    snprintf(path, sizeof path, "/v1/boards/%s/scores", board);
    snprintf(body, sizeof body,
             "{\"player_id\":\"%s\",\"score\":%lld,\"idempotency_key\":\"key-%06u\"}", player,
             value, ++fx->keys);
    return req("POST", path, API, body);
}

/* Start a client scenario; its stdout is the returned stream. */
static FILE *client(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/ws_client.py %s", LAUREL_SRC, args);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    return f;
}

/* The next JSON line of @f (NULL at the end). */
static json_t *line(FILE *f)
{
    static char buf[1 << 16];
    if (fgets(buf, sizeof buf, f) == NULL) {
        return NULL;
    }
    return json_loads(buf, 0, NULL);
}

static void ready(FILE *f)
{
    json_t *j = line(f);
    assert_non_null(j);
    assert_true(json_is_true(json_object_get(j, "ready")));
    json_decref(j);
}

static const char *str(json_t *j, const char *k)
{
    return json_string_value(json_object_get(j, k));
}
static long long num(json_t *j, const char *k)
{
    return json_integer_value(json_object_get(j, k));
}

static int setup(void **state)
{
    (void)state;
    static const char *const opts[] = {"--ws-queue-msgs", "200", NULL};
    fx = calloc(1, sizeof *fx);
    assert_int_equal(tcluster_start(&fx->eu, 3, "eu"), 0);
    assert_int_equal(tcluster_start(&fx->na, 1, "na"), 0);
    fx->router = router_start(fx->http, sizeof fx->http, opts);
    snprintf(fx->url, sizeof fx->url, "ws://%s/v1/ws", fx->http);
    assert_int_equal(req("PUT", "/v1/games/g", ADMIN, "{\"name\":\"G\"}"), 201);
    assert_int_equal(req("PUT", "/v1/games/g/achievements/a1", ADMIN,
                         "{\"name\":\"A1\",\"description\":\"first\",\"points\":10}"),
                     201);
    assert_int_equal(req("PUT", "/v1/boards/b", ADMIN,
                         "{\"order\":\"desc\",\"operator\":\"best\",\"windows\":[\"alltime\"]}"),
                     201);
    assert_int_equal(req("PUT", "/v1/boards/inc", ADMIN,
                         "{\"order\":\"desc\",\"operator\":\"incr\",\"windows\":[\"alltime\"]}"),
                     201);
    assert_int_equal(req("PUT", "/v1/boards/fo", ADMIN,
                         "{\"order\":\"desc\",\"operator\":\"set\",\"windows\":[\"alltime\"]}"),
                     201);
    const char *players[][2] = {{"ann", "eu"},  {"bob", "na"},   {"carl", "eu"}, {"dan", "na"},
                                {"erin", "eu"}, {"fo0", "eu"},   {"fo1", "eu"},  {"fo2", "eu"},
                                {"fo3", "eu"},  {"fo-end", "eu"}};
    for (size_t i = 0; i < sizeof players / sizeof players[0]; i++) {
        char path[64], body[128];
        snprintf(path, sizeof path, "/v1/players/%s", players[i][0]);
        snprintf(body, sizeof body, "{\"name\":\"%s\",\"region\":\"%s\"}", players[i][0],
                 players[i][1]);
        assert_int_equal(req("PUT", path, API, body), 201);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kill(fx->router, SIGTERM);
    int st = 0;
    waitpid(fx->router, &st, 0);
    tcluster_stop(&fx->eu);
    tcluster_stop(&fx->na);
    free(fx);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0); /* the router stops cleanly */
    return 0;
}

/* An unlock reaches the player's subscriber within 2 s, with API.md's fields. */
static void unlock_pushed(void **state)
{
    (void)state;
    char args[256];
    snprintf(args, sizeof args, "listen %s 5 1 player:ann", fx->url);
    FILE *f = client(args);
    ready(f);
    double t0 = now_s();
    assert_int_equal(req("POST", "/v1/unlocks", API,
                         "{\"player_id\":\"ann\",\"game_id\":\"g\",\"achievement_id\":\"a1\","
                         "\"idempotency_key\":\"unlock-ann-1\"}"),
                     200);
    json_t *m = line(f);
    assert_non_null(m);
    assert_string_equal(str(m, "type"), "achievement.unlocked");
    assert_string_equal(str(m, "player_id"), "ann");
    assert_string_equal(str(m, "game_id"), "g");
    assert_string_equal(str(m, "achievement_id"), "a1");
    assert_int_equal(num(m, "points"), 10);
    assert_string_equal(str(m, "region"), "eu");
    assert_true(num(m, "index") > 0);
    assert_non_null(str(m, "at"));
    assert_true(json_real_value(json_object_get(m, "_t")) - t0 < 2.0);
    json_decref(m);
    pclose(f);
}

/* Scores in two regions change the global top: leaderboard.changed carries the merged top,
 * the region topic that region's. */
static void board_top_pushed(void **state)
{
    (void)state;
    char args[256];
    snprintf(args, sizeof args, "listen %s 6 6 board:b board:b:region:eu", fx->url);
    FILE *f = client(args);
    ready(f);
    assert_int_equal(score("b", "ann", 100), 200);
    assert_int_equal(score("b", "bob", 200), 200);
    int global_ok = 0, region_ok = 0;
    json_t *m;
    while ((m = line(f)) != NULL && json_object_get(m, "done") == NULL) {
        assert_string_equal(str(m, "type"), "leaderboard.changed");
        assert_string_equal(str(m, "board_id"), "b");
        json_t *top = json_object_get(m, "top");
        assert_true(json_array_size(top) <= 10);
        if (strcmp(str(m, "scope"), "global") == 0 && json_array_size(top) == 2) {
            json_t *e0 = json_array_get(top, 0), *e1 = json_array_get(top, 1);
            assert_string_equal(str(e0, "player_id"), "bob");
            assert_int_equal(num(e0, "score"), 200);
            assert_int_equal(num(e0, "rank"), 1);
            assert_string_equal(str(e0, "region"), "na");
            assert_string_equal(str(e1, "player_id"), "ann");
            assert_int_equal(num(e1, "rank"), 2);
            global_ok = 1;
        }
        if (strcmp(str(m, "scope"), "region:eu") == 0 && json_array_size(top) == 1) {
            assert_string_equal(str(json_array_get(top, 0), "player_id"), "ann");
            region_ok = 1;
        }
        json_decref(m);
        m = NULL;
        if (global_ok && region_ok) {
            break;
        }
    }
    json_decref(m);
    pclose(f);
    assert_true(global_ok);
    assert_true(region_ok);
}

/* A score of @value for @player on @board with metadata @meta (JSON text), at router @http. */
static int score_meta(const char *http, const char *auth, const char *board, const char *player,
                      long long value, const char *meta)
{
    char path[128], body[512];
    snprintf(path, sizeof path, "/v1/boards/%s/scores", board);
    snprintf(body, sizeof body,
             "{\"player_id\":\"%s\",\"score\":%lld,\"metadata\":%s,"
             "\"idempotency_key\":\"key-%06u\"}",
             player, value, meta, ++fx->keys);
    return req_at(http, "POST", path, auth, body);
}

/* A new board @id (desc, best, alltime) at router @http. */
static void board_new_at(const char *http, const char *admin, const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/boards/%s", id);
    assert_int_equal(req_at(http, "PUT", path, admin,
                            "{\"order\":\"desc\",\"operator\":\"best\",\"windows\":[\"alltime\"]}"),
                     201);
}

/* The next leaderboard.changed of @f (NULL at the end of the stream). */
static json_t *next_top(FILE *f)
{
    json_t *m;
    while ((m = line(f)) != NULL && json_object_get(m, "done") == NULL) {
        if (str(m, "type") && strcmp(str(m, "type"), "leaderboard.changed") == 0) {
            return m;
        }
        json_decref(m);
    }
    json_decref(m);
    return NULL;
}

/* A region topic carries its own region's changes only: a subscriber of both board:iso and
 * board:iso:region:na gets each scope's current top once, then an eu score changes the global
 * top and sends nothing to region:na; the next region:na message is na's own score. */
static void region_topic_ignores_other_regions(void **state)
{
    (void)state;
    char args[256];
    board_new_at(fx->http, ADMIN, "iso");
    snprintf(args, sizeof args, "listen %s 5 50 board:iso board:iso:region:na", fx->url);
    FILE *f = client(args);
    ready(f);
    int greeted_global = 0, greeted_na = 0;
    while (!greeted_global || !greeted_na) {
        json_t *m = next_top(f);
        assert_non_null(m);
        assert_int_equal(json_array_size(json_object_get(m, "top")), 0);
        if (strcmp(str(m, "scope"), "global") == 0) {
            assert_false(greeted_global);
            greeted_global = 1;
        } else {
            assert_string_equal(str(m, "scope"), "region:na");
            assert_false(greeted_na);
            greeted_na = 1;
        }
        json_decref(m);
    }
    assert_int_equal(score("iso", "ann", 50), 200); /* eu */
    json_t *m = next_top(f);
    assert_non_null(m);
    if (strcmp(str(m, "scope"), "global") != 0) {
        fail_msg("after an eu score, a %s top came first", str(m, "scope"));
    }
    assert_string_equal(str(json_array_get(json_object_get(m, "top"), 0), "player_id"), "ann");
    json_decref(m);
    assert_int_equal(score("iso", "bob", 10), 200); /* na */
    int na_ok = 0;
    while (!na_ok && (m = next_top(f)) != NULL) {
        json_t *top = json_object_get(m, "top");
        if (strcmp(str(m, "scope"), "region:na") == 0) {
            /* Anything else here was sent for the eu score. */
            assert_int_equal(json_array_size(top), 1);
            assert_string_equal(str(json_array_get(top, 0), "player_id"), "bob");
            assert_string_equal(str(json_array_get(top, 0), "region"), "na");
            na_ok = 1;
        } else {
            assert_int_equal(json_array_size(top), 2);
        }
        json_decref(m);
    }
    assert_true(na_ok);
    pclose(f);
}

/* A rename reaches the player's topic as player.updated (API.md's player fields, index) and
 * the board tops holding the player (the name in their entries); the player's score.updated
 * carries its name and metadata too. */
static void rename_reaches_player_and_tops(void **state)
{
    (void)state;
    char args[256];
    board_new_at(fx->http, ADMIN, "ren");
    assert_int_equal(req("PUT", "/v1/players/hal", API, "{\"name\":\"hal\",\"region\":\"eu\"}"),
                     201);
    snprintf(args, sizeof args, "listen %s 4 50 player:hal board:ren", fx->url);
    FILE *f = client(args);
    ready(f);
    assert_int_equal(score_meta(fx->http, API, "ren", "hal", 9, "{\"lap\":3}"), 200);
    int scored = 0, topped = 0;
    json_t *m;
    while ((!scored || !topped) && (m = line(f)) != NULL && json_object_get(m, "done") == NULL) {
        if (strcmp(str(m, "type"), "score.updated") == 0) {
            assert_string_equal(str(m, "name"), "hal");
            assert_int_equal(
                json_integer_value(json_object_get(json_object_get(m, "metadata"), "lap")), 3);
            scored = 1;
        } else if (json_array_size(json_object_get(m, "top")) == 1) {
            json_t *e = json_array_get(json_object_get(m, "top"), 0);
            assert_string_equal(str(e, "name"), "hal");
            topped = 1;
        }
        json_decref(m);
    }
    assert_true(scored && topped);
    assert_int_equal(
        req("PUT", "/v1/players/hal", API, "{\"name\":\"HAL 9000\",\"region\":\"eu\"}"), 200);
    int updated = 0, renamed = 0;
    while ((!updated || !renamed) && (m = line(f)) != NULL && json_object_get(m, "done") == NULL) {
        if (strcmp(str(m, "type"), "player.updated") == 0) {
            assert_string_equal(str(m, "player_id"), "hal");
            assert_string_equal(str(m, "name"), "HAL 9000");
            assert_true(json_is_null(json_object_get(m, "guild")));
            assert_string_equal(str(m, "region"), "eu");
            assert_true(num(m, "index") > 0);
            updated = 1;
        } else if (strcmp(str(m, "type"), "leaderboard.changed") == 0) {
            json_t *e = json_array_get(json_object_get(m, "top"), 0);
            assert_string_equal(str(e, "name"), "HAL 9000");
            assert_int_equal(num(e, "score"), 9);
            renamed = 1;
        }
        json_decref(m);
    }
    assert_true(updated);
    assert_true(renamed);
    pclose(f);
}

/* Rounds of the first score on a new board at router @http, each board scored the moment a
 * hundred clients (half global, half eu) have subscribed at once (odd rounds: the moment
 * before they subscribe, so they arrive while the gateway takes the event in): every client's
 * top must come to hold it, with the player's name and the score's metadata. */
static void first_score_rounds(const char *http, const char *admin, const char *api, int rounds)
{
    enum { CLIENTS = 100 };
    assert_int_equal(req_at(http, "PUT", "/v1/players/gwen", api,
                            "{\"name\":\"Gwen \u00c9\",\"region\":\"eu\"}"),
                     201);
    for (int round = 0; round < rounds; round++) {
        char id[32], args[256], gl[48], rg[48];
        snprintf(id, sizeof id, "fresh%d", round);
        board_new_at(http, admin, id);
        snprintf(gl, sizeof gl, "board:%s", id);
        snprintf(rg, sizeof rg, "board:%s:region:eu", id);
        snprintf(args, sizeof args, "tops ws://%s/v1/ws 10 %d gwen %s %s", http, CLIENTS, gl, rg);
        if (round % 2 == 1) {
            assert_int_equal(score_meta(http, api, id, "gwen", 100 + round, "{\"car\":\"red\"}"),
                             200);
        }
        FILE *f = client(args);
        json_t *m = line(f);
        assert_non_null(m);
        assert_int_equal(num(m, "clients"), CLIENTS);
        json_decref(m);
        if (round % 2 == 0) {
            assert_int_equal(score_meta(http, api, id, "gwen", 100 + round, "{\"car\":\"red\"}"),
                             200);
        }
        m = line(f);
        assert_non_null(m);
        const char *topics[] = {gl, rg};
        for (int t = 0; t < 2; t++) {
            json_t *r = json_object_get(m, topics[t]);
            assert_non_null(r);
            if (num(r, "saw") != num(r, "clients")) {
                char *b = json_dumps(json_object_get(r, "before"), JSON_COMPACT);
                fail_msg(
                    "round %d: %lld of %lld clients of %s saw the first score (one that did "
                    "not got the tops %s)",
                    round, num(r, "saw"), num(r, "clients"), topics[t], b);
            }
            json_t *e = json_object_get(r, "entry");
            assert_int_equal(num(e, "rank"), 1);
            assert_int_equal(num(e, "score"), 100 + round);
            assert_string_equal(str(e, "region"), "eu");
            assert_non_null(str(e, "updated_at"));
            const char *name = str(e, "name");
            if (name == NULL || strcmp(name, "Gwen \u00c9") != 0) {
                fail_msg("round %d: %s: the entry's name is %s", round, topics[t],
                         name ? name : "missing");
            }
            json_t *meta = json_object_get(e, "metadata");
            if (!json_is_object(meta) || str(meta, "car") == NULL ||
                strcmp(str(meta, "car"), "red") != 0) {
                fail_msg("round %d: %s: the entry's metadata is not the score's", round, topics[t]);
            }
        }
        json_decref(m);
        pclose(f);
    }
}

/* The first score on a new board reaches every subscriber's top, global and region alike,
 * while a hundred clients subscribe at once, with the player's name and the metadata. */
static void first_score_on_new_board_reaches_every_top(void **state)
{
    (void)state;
    first_score_rounds(fx->http, ADMIN, API, 4);
}

/* The same on a `laurel dev` cluster (eu, na): there a new board reaches the regions through
 * the metadata group's catalog carrier, so a region may learn of it after its first
 * subscribers, and the router's seeds meet a board some region does not hold yet. */
static void first_score_on_new_board_dev(void **state)
{
    struct tdev *d = *state;
    first_score_rounds(d->http, TDEV_ADMIN, TDEV_API, 6);
}

/* The dev cluster of first_score_on_new_board_dev, stopped even when the scenario fails. */
static int dev_setup(void **state)
{
    struct tdev *d = calloc(1, sizeof *d);
    if (d == NULL || tdev_start(d, "eu,na", 1, 60000) != 0) {
        free(d);
        return -1;
    }
    *state = d;
    return 0;
}

static int dev_teardown(void **state)
{
    tdev_stop(*state);
    free(*state);
    return 0;
}

/* POST /v1/events: @n scores of 1 for @player on board inc, keys @tag-000 ... */
static void post_scores(const char *player, const char *tag, int n)
{
    json_t *items = json_array();
    for (int i = 0; i < n; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s-%03d", tag, i);
        json_array_append_new(items,
                              json_pack("{s:s,s:s,s:s,s:i,s:s}", "type", "score", "board_id", "inc",
                                        "player_id", player, "score", 1, "idempotency_key", key));
    }
    char *body = json_dumps(items, JSON_COMPACT);
    assert_int_equal(req("POST", "/v1/events", API, body), 200);
    free(body);
    json_decref(items);
}

/* A burst larger than the queue bound (100 events of one raft entry, queued in one loop
 * turn, against --ws-queue-msgs 20) does not close a client that keeps reading: the bound
 * closes a peer whose socket is backed up, and a burst is not that. */
static void burst_past_the_bound_is_delivered(void **state)
{
    (void)state;
    enum { PER = 100 };
    static const char *const opts[] = {"--ws-queue-msgs", "20", NULL};
    char h[32], args[256];
    pid_t router = router_start(h, sizeof h, opts);
    snprintf(args, sizeof args, "listen ws://%s/v1/ws 15 %d player:carl", h, PER);
    FILE *f = client(args);
    ready(f);
    post_scores("carl", "burst", PER);
    int got = 0;
    json_t *m;
    while ((m = line(f)) != NULL) {
        if (json_object_get(m, "done")) {
            got = (int)num(m, "done");
            json_decref(m);
            break;
        }
        assert_string_equal(str(m, "type"), "score.updated");
        json_decref(m);
    }
    assert_int_equal(got, PER);
    assert_int_equal(httpc_metric(h, "laurel_ws_server_closes_total{reason=\"slow_consumer\"}"), 0);
    pclose(f);
    router_stop(router);
}

/* A client that never reads is closed with a reason once its queue is full, while a fast
 * client on the same topic receives every event. */
static void slow_consumer_dropped(void **state)
{
    (void)state;
    enum { BATCHES = 10, PER = 100 };
    char args[256];
    snprintf(args, sizeof args, "slow %s 15 %d player:carl", fx->url, BATCHES * PER);
    FILE *f = client(args);
    ready(f);
    for (int b = 0; b < BATCHES; b++) {
        char tag[32];
        snprintf(tag, sizeof tag, "carl-%d", b);
        post_scores("carl", tag, PER);
    }
    json_t *m = line(f);
    assert_non_null(m);
    assert_int_equal(num(m, "fast"), BATCHES * PER);
    if (!json_is_true(json_object_get(m, "slow_closed"))) {
        fail_msg("slow client not closed; it read %lld bytes: %s", num(m, "slow_bytes"),
                 str(m, "tail"));
    }
    json_decref(m);
    pclose(f);
}

/* A thousand clients on one topic all receive one event. */
static void thousand_clients(void **state)
{
    (void)state;
    char args[256];
    snprintf(args, sizeof args, "many %s 10 1000 player:dan", fx->url);
    FILE *f = client(args);
    json_t *m = line(f);
    assert_non_null(m);
    assert_int_equal(num(m, "clients"), 1000);
    json_decref(m);
    assert_int_equal(score("b", "dan", 5), 200);
    m = line(f);
    assert_non_null(m);
    assert_int_equal(num(m, "received"), 1000);
    json_decref(m);
    pclose(f);
}

/* Malformed JSON, binary and oversized frames, unknown ops and topics get error events; the
 * connection still answers a ping. */
static void bad_frames(void **state)
{
    (void)state;
    static const char *codes[] = {"invalid_argument", "invalid_argument", "payload_too_large",
                                  "invalid_argument", "invalid_argument", "invalid_argument",
                                  "invalid_argument"};
    char args[256];
    snprintf(args, sizeof args, "bad %s", fx->url);
    FILE *f = client(args);
    ready(f);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        json_t *m = line(f);
        assert_non_null(m);
        assert_string_equal(str(m, "type"), "error");
        assert_string_equal(str(json_object_get(m, "error"), "code"), codes[i]);
        assert_non_null(str(json_object_get(m, "error"), "message"));
        json_decref(m);
    }
    json_t *m = line(f);
    assert_non_null(m);
    assert_string_equal(str(m, "type"), "pong");
    json_decref(m);
    pclose(f);
}

/* A read over the socket answers what GET over HTTP answers, with the request's id. */
static void get_over_socket(void **state)
{
    (void)state;
    char args[256];
    assert_int_equal(score("b", "erin", 1), 200);
    snprintf(args, sizeof args, "get %s '/v1/boards/b/players/erin?around=1'", fx->url);
    FILE *f = client(args);
    ready(f);
    json_t *m = line(f);
    assert_non_null(m);
    assert_string_equal(str(m, "type"), "response");
    assert_string_equal(str(m, "id"), "q1");
    assert_int_equal(num(m, "status"), 200);
    json_t *body = json_object_get(m, "body");
    assert_string_equal(str(body, "player_id"), "erin");
    assert_true(num(body, "rank") >= 1);
    json_decref(m);
    pclose(f);
    snprintf(args, sizeof args, "get %s /v1/players/nobody", fx->url);
    f = client(args);
    ready(f);
    m = line(f);
    assert_int_equal(num(m, "status"), 404);
    assert_string_equal(str(json_object_get(json_object_get(m, "body"), "error"), "code"),
                        "not_found");
    json_decref(m);
    pclose(f);
}

/* A client back after a disconnect names the last index it saw and gets what it missed, once. */
static void resume_after_reconnect(void **state)
{
    (void)state;
    char args[256];
    snprintf(args, sizeof args, "listen %s 5 1 player:erin", fx->url);
    FILE *f = client(args);
    ready(f);
    assert_int_equal(score("b", "erin", 10), 200);
    json_t *m = line(f);
    assert_non_null(m);
    long long seen = num(m, "index");
    assert_true(seen > 0);
    json_decref(m);
    pclose(f);
    assert_int_equal(score("b", "erin", 20), 200); /* missed while away */
    assert_int_equal(score("b", "erin", 30), 200);
    sleep_ms(300); /* the router's stream has seen them */
    snprintf(args, sizeof args, "resume %s 5 2 eu %lld player:erin", fx->url, seen);
    f = client(args);
    ready(f);
    long long want[] = {20, 30};
    for (int i = 0; i < 2; i++) {
        m = line(f);
        assert_non_null(m);
        assert_string_equal(str(m, "type"), "score.updated");
        assert_int_equal(num(m, "score"), want[i]);
        assert_true(num(m, "index") > seen);
        json_decref(m);
    }
    pclose(f);
}

/* After the scenarios above, the router's WebSocket counters have moved: the slow consumer
 * was counted and its queue dropped, the thousand clients accepted and served, events
 * received and delivered, boards seeded, a resume replayed; once every client has gone, the
 * gauges are back to zero. */
static void metrics_counted(void **state)
{
    (void)state;
    const char *h = fx->http;
    assert_true(httpc_metric(h, "laurel_ws_server_closes_total{reason=\"slow_consumer\"}") >= 1);
    assert_int_equal(httpc_metric(h, "laurel_ws_server_closes_total{reason=\"ping_timeout\"}"), 0);
    assert_true(httpc_metric(h, "laurel_ws_dropped_messages_total") >= 1);
    assert_true(httpc_metric(h, "laurel_ws_connections_accepted_total") >= 1000);
    assert_int_equal(httpc_metric(h, "laurel_ws_connections_refused_total{reason=\"per_ip\"}"), 0);
    assert_int_equal(httpc_metric(h, "laurel_ws_connections_refused_total{reason=\"max_conns\"}"),
                     0);
    assert_true(httpc_metric(h, "laurel_ws_received_messages_total") >= 8); /* bad_frames alone */
    assert_true(httpc_metric(h, "laurel_ws_sent_messages_total") >= 1000);
    assert_true(httpc_metric(h, "laurel_ws_sent_bytes_total") >= 1000 * 50);
    assert_true(httpc_metric(h, "laurel_ws_events_total") >= 1000); /* carl's 1000 scores */
    assert_true(httpc_metric(h, "laurel_ws_delivered_total") >=
                2000);                                                /* to the fast and the 1000 */
    assert_true(httpc_metric(h, "laurel_ws_board_seeds_total") >= 2); /* board b in each region */
    assert_true(httpc_metric(h, "laurel_ws_resumes_total") >= 1);
    assert_int_equal(httpc_metric(h, "laurel_ws_stream_resyncs_total"), 0);
    assert_true(httpc_metric(h, "laurel_ws_stream_connects_total{region=\"eu\"}") >= 1);
    assert_true(httpc_metric(h, "laurel_ws_stream_connects_total{region=\"na\"}") >= 1);
    assert_true(httpc_metric(h, "laurel_ws_stream_index{region=\"eu\"}") > 0);
    long long rep = httpc_metric(h, "laurel_ws_stream_replica{region=\"eu\"}");
    assert_true(rep >= 1 && rep <= 3);
    /* Every client has gone: nothing open, subscribed or queued (the gauges did not drift). */
    static const char *const zero[] = {"laurel_ws_connections", "laurel_ws_topics",
                                       "laurel_ws_boards", "laurel_ws_queued_messages",
                                       "laurel_ws_queued_bytes"};
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++) {
        long long v = httpc_metric(h, zero[i]);
        for (int w = 0; w < 100 && v != 0; w++) {
            sleep_ms(100);
            v = httpc_metric(h, zero[i]);
        }
        if (v != 0) {
            fail_msg("%s is %lld with no client left", zero[i], v);
        }
    }
}

/* With --ws-max-per-ip 2 and --ws-max-conns 3: a third connection from 127.0.0.1 gets 429
 * while one from 127.0.0.2 opens; a fourth in all gets 503; once one closes, 127.0.0.1 gets
 * in again. /metrics counts each refusal by its limit, exactly as the client saw them. */
static void connection_limits(void **state)
{
    (void)state;
    static const char *const opts[] = {"--ws-max-per-ip", "2", "--ws-max-conns", "3", NULL};
    char http[32], args[256];
    pid_t r = router_start(http, sizeof http, opts);
    snprintf(args, sizeof args, "limits ws://%s/v1/ws", http);
    FILE *f = client(args);
    json_t *m = line(f);
    assert_non_null(m);
    assert_true(json_is_true(json_object_get(m, "a")));
    assert_true(json_is_true(json_object_get(m, "b")));
    assert_int_equal(num(m, "c"), 429);       /* per address */
    assert_string_equal(str(m, "d"), "open"); /* another address */
    assert_int_equal(num(m, "e"), 503);       /* per router */
    assert_string_equal(str(m, "f"), "open"); /* after a closed */
    /* A refusal is an HTTP answer (the client parsed its status) with Retry-After. */
    assert_string_equal(str(m, "retry_after"), "1");
    json_t *refused = json_object_get(m, "refused");
    long long r429 = num(refused, "429"), r503 = num(refused, "503");
    json_decref(m);
    pclose(f);
    assert_int_equal(r503, 1);
    assert_true(r429 >= 1);
    assert_int_equal(httpc_metric(http, "laurel_ws_connections_refused_total{reason=\"per_ip\"}"),
                     r429);
    assert_int_equal(
        httpc_metric(http, "laurel_ws_connections_refused_total{reason=\"max_conns\"}"), 1);
    assert_int_equal(httpc_metric(http, "laurel_ws_connections_accepted_total"), 4);
    router_stop(r);
}

/* With --ws-ping-ms 200, a peer that completed its handshake and then never sends a byte
 * (no pong) is closed with 1001 after two silent periods, while a client that answers the
 * pings stays open for ten periods and more; /metrics counts one ping timeout. */
static void silent_peer_closed(void **state)
{
    (void)state;
    static const char *const opts[] = {"--ws-ping-ms", "200", NULL};
    char http[32], args[256];
    pid_t r = router_start(http, sizeof http, opts);
    snprintf(args, sizeof args, "silent ws://%s/v1/ws 2", http);
    FILE *f = client(args);
    ready(f);
    json_t *m = line(f);
    assert_non_null(m);
    json_t *after = json_object_get(m, "raw_closed_after_s");
    if (!json_is_number(after)) {
        fail_msg("the silent peer was not closed within 30 s");
    }
    /* Not at once: after about two silent periods (the client's clock starts a little after
     * the server's); within 30 s is all the upper bound asks. */
    assert_true(json_number_value(after) >= 0.3);
    assert_int_equal(num(m, "raw_close_code"), 1001);
    assert_true(num(m, "raw_pings") >= 1);
    assert_string_equal(str(m, "good_answer"), "pong");
    assert_true(json_number_value(json_object_get(m, "good_open_s")) >= 2.0);
    json_decref(m);
    pclose(f);
    assert_int_equal(httpc_metric(http, "laurel_ws_server_closes_total{reason=\"ping_timeout\"}"),
                     1);
    assert_int_equal(httpc_metric(http, "laurel_ws_connections_accepted_total"), 2);
    router_stop(r);
}

/* ---- the stream follows another replica ------------------------------------------------------ */

/* The gateway follows eu's committed-event stream from one replica. Three times, while writes
 * go on, the replica it follows (per /metrics) dies (SIGKILL, twice) or freezes (SIGSTOP:
 * no EOF, only silence) and comes back later: each time the stream moves to another replica.
 * A subscriber of the players' topics must get every acknowledged write's event exactly once,
 * per player in write order, and all of them in log order; nothing written is lost, nothing
 * is repeated. On a router of its own whose send queues hold the backlog of a frozen replica
 * (the silence lasts 5 s, and the new replica's catch-up comes in bursts): this is about the
 * stream, not about slow consumers. */
static void stream_follows_another_replica(void **state)
{
    (void)state;
    static const char *const opts[] = {"--ws-queue-msgs", "20000", NULL};
    char h[32], args[512];
    pid_t router = router_start(h, sizeof h, opts);
    struct fo_writer *w = calloc(1, sizeof *w);
    assert_non_null(w);
    w->http = h;
    snprintf(args, sizeof args,
             "collect ws://%s/v1/ws 120 fo-end player:fo0 player:fo1 "
             "player:fo2 player:fo3 player:fo-end",
             h);
    FILE *f = client(args);
    ready(f);
    assert_int_equal(pthread_create(&w->th, NULL, fo_writer_main, w), 0);
    w->running = 1;
    for (int round = 0; round < 3; round++) {
        int sig = round < 2 ? SIGKILL : SIGSTOP;
        fo_wait_acked(w, atomic_load(&w->acked) + 30);
        long long rep = metric_at_least(h, "laurel_ws_stream_replica{region=\"eu\"}", 1, 15000);
        long long c0 = httpc_metric(h, "laurel_ws_stream_connects_total{region=\"eu\"}");
        if (rep < 1 || rep > 3) {
            fo_fail(w, "round %d: the stream follows no replica (%lld)", round, rep);
        }
        unsigned victim = (unsigned)rep - 1;
        print_message("# round %d: %s replica %u (the leader: %d) after %d writes\n", round,
                      sig == SIGKILL ? "SIGKILL" : "SIGSTOP", victim + 1,
                      tcluster_leader(&fx->eu, 50) + 1, atomic_load(&w->acked));
        tcluster_kill(&fx->eu, victim, sig);
        /* The stream moves on: connected anew, to another replica. */
        long long now_rep = 0;
        for (int waited = 0;; waited += 100) {
            now_rep = httpc_metric(h, "laurel_ws_stream_replica{region=\"eu\"}");
            if (now_rep >= 1 && now_rep != rep &&
                httpc_metric(h, "laurel_ws_stream_connects_total{region=\"eu\"}") > c0) {
                break;
            }
            if (waited > 30000) {
                fo_fail(w, "round %d: the stream did not leave replica %lld (now %lld)", round, rep,
                        now_rep);
            }
            sleep_ms(100);
        }
        /* Writes go on while the victim is away, then it comes back. */
        fo_wait_acked(w, atomic_load(&w->acked) + 30);
        if (sig == SIGKILL) {
            if (tcluster_spawn(&fx->eu, victim) != 0) {
                fo_fail(w, "round %d: replica %u did not restart", round, victim + 1);
            }
        } else {
            tcluster_kill(&fx->eu, victim, SIGCONT);
        }
        int up = -1;
        for (int waited = 0; waited < 15000 && up != 0; waited += 100) {
            up = tcluster_status(&fx->eu, victim, NULL, NULL, NULL, 0);
            if (up != 0) {
                sleep_ms(100);
            }
        }
        if (up != 0) {
            fo_fail(w, "round %d: replica %u does not answer after it came back", round,
                    victim + 1);
        }
    }
    fo_wait_acked(w, atomic_load(&w->acked) + 30);
    fo_stop(w);
    if (w->error[0]) {
        fail_msg("a write was never acknowledged: %s", w->error);
    }
    /* The last write: once its event is in, every earlier one of the region must be too. */
    assert_int_equal(fo_write(w,
                              "{\"player_id\":\"fo-end\",\"score\":1,\"idempotency_key\":"
                              "\"fo-end-000001\"}"),
                     0);
    int got[FO_PLAYERS] = {0}, ends = 0, total = 0;
    long long last = 0, pidx[FO_PLAYERS] = {0};
    json_t *m;
    while ((m = line(f)) != NULL && json_object_get(m, "done") == NULL) {
        const char *pl = str(m, "player_id");
        long long idx = num(m, "index"), sc = num(m, "score");
        assert_string_equal(str(m, "type"), "score.updated");
        assert_string_equal(str(m, "board_id"), "fo");
        assert_string_equal(str(m, "region"), "eu");
        if (idx < last) {
            fail_msg("event %d: index %lld after %lld: not in log order", total, idx, last);
        }
        last = idx;
        total++;
        if (strcmp(pl, "fo-end") == 0) {
            ends++;
        } else {
            unsigned p = (unsigned)(pl[2] - '0');
            assert_true(p < FO_PLAYERS);
            if (sc != got[p] + 1) {
                fail_msg("%s: event of score %lld after score %d (index %lld): %s", pl, sc, got[p],
                         idx, sc <= got[p] ? "repeated" : "events lost");
            }
            assert_true(idx > pidx[p]);
            got[p]++;
            pidx[p] = idx;
        }
        json_decref(m);
    }
    if (m == NULL) {
        fail_msg("the subscriber's report ended after %d events", total);
    }
    if (!json_is_true(json_object_get(m, "stopped"))) {
        fail_msg("the last write's event never came (%d events; closed: %s)", total,
                 str(m, "closed") ? str(m, "closed") : "no");
    }
    json_decref(m);
    pclose(f);
    assert_int_equal(ends, 1);
    for (unsigned p = 0; p < FO_PLAYERS; p++) {
        if (got[p] != w->seq[p]) {
            fail_msg("fo%u: %d events for %d acknowledged writes", p, got[p], w->seq[p]);
        }
    }
    print_message("# %d events, %d acknowledged writes (%d retried), stream connects %lld\n", total,
                  atomic_load(&w->acked) + 1, w->retries,
                  httpc_metric(h, "laurel_ws_stream_connects_total{region=\"eu\"}"));
    assert_true(httpc_metric(h, "laurel_ws_stream_connects_total{region=\"eu\"}") >= 4);
    assert_int_equal(httpc_metric(h, "laurel_ws_stream_resyncs_total"), 0);
    assert_int_equal(httpc_metric(h, "laurel_ws_server_closes_total{reason=\"slow_consumer\"}"), 0);
    free(w);
    router_stop(router);
}

int main(void)
{
    if (getenv("LAUREL_TEST_FILTER")) {
        cmocka_set_test_filter(getenv("LAUREL_TEST_FILTER"));
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unlock_pushed),
        cmocka_unit_test(board_top_pushed),
        cmocka_unit_test(region_topic_ignores_other_regions),
        cmocka_unit_test(rename_reaches_player_and_tops),
        cmocka_unit_test(first_score_on_new_board_reaches_every_top),
        cmocka_unit_test_setup_teardown(first_score_on_new_board_dev, dev_setup, dev_teardown),
        cmocka_unit_test(bad_frames),
        cmocka_unit_test(get_over_socket),
        cmocka_unit_test(resume_after_reconnect),
        cmocka_unit_test(burst_past_the_bound_is_delivered),
        cmocka_unit_test(slow_consumer_dropped),
        cmocka_unit_test(thousand_clients),
        cmocka_unit_test(metrics_counted),
        cmocka_unit_test(connection_limits),
        cmocka_unit_test(silent_peer_closed),
        cmocka_unit_test(stream_follows_another_replica),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
