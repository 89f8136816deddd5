/* tests/integration/test_ws.c — GET /v1/ws on a real `laurel router` over two regions (one
 * real replica each), with real WebSocket clients (tests/ws_client.py, python3-websockets):
 * events of committed writes, board tops, a slow consumer among fast ones, a thousand
 * clients, bad frames, reads over the socket and a resume after a reconnect. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/cluster.h"
#include "tests/lib/httpc.h"
#include "tests/lib/testlib.h"

#define ADMIN "admin-key-123"
#define API "api-key-456"

struct fixture {
    struct tcluster eu, na;
    char http[32], url[64];
    pid_t router;
    unsigned keys;
};

static struct fixture *fx;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int req(const char *method, const char *path, const char *auth, const char *body)
{
    struct httpc_resp r;
    for (int i = 0; i < 50; i++) {
        if (httpc_do(fx->http, method, path, auth, body, &r) == 0) {
            int s = r.status;
            httpc_free(&r);
            return s;
        }
        sleep_ms(100);
    }
    fail_msg("%s %s: no answer", method, path);
    return -1;
}

/* A score for @player on @board with a fresh idempotency key. */
static int score(const char *board, const char *player, long long value)
{
    char path[128], body[256];
    snprintf(path, sizeof path, "/v1/boards/%s/scores", board);
    snprintf(body, sizeof body, "{\"player_id\":\"%s\",\"score\":%lld,\"idempotency_key\":\"key-%06u\"}",
             player, value, ++fx->keys);
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

static const char *str(json_t *j, const char *k) { return json_string_value(json_object_get(j, k)); }
static long long num(json_t *j, const char *k) { return json_integer_value(json_object_get(j, k)); }

static int setup(void **state)
{
    (void)state;
    char eu[128], na[128];
    fx = calloc(1, sizeof *fx);
    assert_int_equal(tcluster_start(&fx->eu, 1, "eu"), 0);
    assert_int_equal(tcluster_start(&fx->na, 1, "na"), 0);
    snprintf(fx->http, sizeof fx->http, "127.0.0.1:%d", client_free_port());
    snprintf(fx->url, sizeof fx->url, "ws://%s/v1/ws", fx->http);
    snprintf(eu, sizeof eu, "eu=%s", fx->eu.r[0].rpc);
    snprintf(na, sizeof na, "na=%s", fx->na.r[0].rpc);
    fx->router = fork();
    if (fx->router == 0) {
        execl(fx->eu.bin, fx->eu.bin, "router", "--http", fx->http, "--region", eu, "--region",
              na, "--admin-key", ADMIN, "--api-key", API, "--ws-queue-msgs", "200",
              (char *)NULL);
        _exit(127);
    }
    struct httpc_resp r;
    for (int i = 0; i < 200; i++) {
        if (httpc_do(fx->http, "GET", "/readyz", "", NULL, &r) == 0) {
            int s = r.status;
            httpc_free(&r);
            if (s == 200) {
                break;
            }
        }
        sleep_ms(100);
    }
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
    const char *players[][2] = {{"ann", "eu"}, {"bob", "na"}, {"carl", "eu"},
                                {"dan", "na"}, {"erin", "eu"}};
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
        json_t *items = json_array();
        for (int i = 0; i < PER; i++) {
            char key[32];
            snprintf(key, sizeof key, "carl-%d-%d", b, i);
            json_array_append_new(items, json_pack("{s:s,s:s,s:s,s:i,s:s}", "type", "score",
                                                   "board_id", "inc", "player_id", "carl",
                                                   "score", 1, "idempotency_key", key));
        }
        char *body = json_dumps(items, JSON_COMPACT);
        assert_int_equal(req("POST", "/v1/events", API, body), 200);
        free(body);
        json_decref(items);
    }
    json_t *m = line(f);
    assert_non_null(m);
    assert_int_equal(num(m, "fast"), BATCHES * PER);
    if (!json_is_true(json_object_get(m, "slow_closed"))) {
        fail_msg("slow client not closed; it read %lld bytes: %s", num(m, "slow_bytes"), str(m, "tail"));
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(unlock_pushed),
        cmocka_unit_test(board_top_pushed),
        cmocka_unit_test(bad_frames),
        cmocka_unit_test(get_over_socket),
        cmocka_unit_test(resume_after_reconnect),
        cmocka_unit_test(slow_consumer_dropped),
        cmocka_unit_test(thousand_clients),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
