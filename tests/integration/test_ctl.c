/* tests/integration/test_ctl.c — `laurel ctl`'s router commands as an operator runs them:
 * the real binary against a real `laurel dev` cluster (two regions of one replica), judged by
 * exit code, stdout (JSON) and stderr. The router address comes from $LAUREL_ROUTER and the
 * keys from the cluster's keys.json (--data), as an operator next to `laurel dev` would have. */
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/client.h"
#include "tests/lib/httpc.h"
#include "tests/lib/testlib.h"

extern char **environ;

struct fixture {
    char *dir;
    char data[600]; /* the cluster's --data, with keys.json */
    char http[32];
    char admin[128], api[128];
    pid_t dev;
};

/* One finished `laurel ctl` run. */
struct run {
    int code;        /* exit code, or -1 if it did not exit normally */
    char out[65536]; /* stdout */
    char err[8192];  /* stderr */
    json_t *json;    /* stdout parsed, or NULL; owned */
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void slurp(const char *path, char *out, size_t cap)
{
    FILE *fp = fopen(path, "r");
    size_t n = fp ? fread(out, 1, cap - 1, fp) : 0;
    out[n] = '\0';
    if (fp) {
        fclose(fp);
    }
}

/* Run `laurel ctl ARGS...` (NULL-terminated) into *@r; stdout and stderr go through files. */
static void ctl(const struct fixture *f, struct run *r, ...)
{
    const char *bin = getenv("LAUREL_BIN") ? getenv("LAUREL_BIN") : "build/laurel";
    char *argv[40], out[700], err[700];
    int n = 0;
    va_list ap;
    argv[n++] = (char *)bin;
    argv[n++] = "ctl";
    va_start(ap, r);
    for (char *a; (a = va_arg(ap, char *)) != NULL && n < 39;) {
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    snprintf(out, sizeof out, "%s/ctl.out", f->dir);
    snprintf(err, sizeof err, "%s/ctl.err", f->dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int status;
    assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    r->code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    slurp(out, r->out, sizeof r->out);
    slurp(err, r->err, sizeof r->err);
    r->json = json_loads(r->out, 0, NULL);
    if (r->code < 0) {
        fprintf(stderr, "# laurel ctl died (status %#x): %s\n", (unsigned)status, r->err);
    }
}

static void run_free(struct run *r)
{
    json_decref(r->json);
    r->json = NULL;
}

static const char *jstr(json_t *j, const char *key)
{
    const char *s = json_string_value(json_object_get(j, key));
    return s ? s : "";
}

static void admin_put(const struct fixture *f, const char *path, const char *body)
{
    struct httpc_resp r;
    assert_int_equal(httpc_do(f->http, "PUT", path, f->admin, body, &r), 0);
    assert_true(r.status == 200 || r.status == 201);
    httpc_free(&r);
}

/* A cluster of eu and na, one replica each, with a board "arena" (desc, best) and a game
 * "quest" holding achievement "first". */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    const char *bin = getenv("LAUREL_BIN") ? getenv("LAUREL_BIN") : "build/laurel";
    char path[700];
    f->dir = testlib_tmpdir();
    snprintf(f->http, sizeof f->http, "127.0.0.1:%d", client_free_port());
    unsetenv("LAUREL_API_KEY");
    unsetenv("LAUREL_ADMIN_KEY");
    setenv("LAUREL_ROUTER", f->http, 1);
    snprintf(f->data, sizeof f->data, "%s/d", f->dir);
    f->dev = fork();
    if (f->dev == 0) {
        char log[700];
        snprintf(log, sizeof log, "%s/dev.out", f->dir);
        if (freopen(log, "a", stdout) == NULL || freopen(log, "a", stderr) == NULL) {
            _exit(126);
        }
        execl(bin, bin, "dev", "--data", f->data, "--http", f->http, "--regions", "eu,na",
              "--replicas", "1", (char *)NULL);
        _exit(127);
    }
    int ready = 0;
    for (int i = 0; i < 300 && !ready; i++) {
        struct httpc_resp r;
        if (httpc_do(f->http, "GET", "/readyz", "", NULL, &r) == 0) {
            ready = r.status == 200;
            httpc_free(&r);
        }
        if (!ready) {
            sleep_ms(50);
        }
    }
    if (!ready) {
        return -1;
    }
    snprintf(path, sizeof path, "%s/keys.json", f->data);
    json_t *keys = json_load_file(path, 0, NULL);
    snprintf(f->admin, sizeof f->admin, "%s", jstr(keys, "admin_key"));
    snprintf(f->api, sizeof f->api, "%s", jstr(keys, "api_key"));
    json_decref(keys);
    admin_put(f, "/v1/boards/arena", "{\"order\":\"desc\",\"operator\":\"best\"}");
    admin_put(f, "/v1/games/quest", "{\"name\":\"Quest\"}");
    admin_put(f, "/v1/games/quest/achievements/first",
              "{\"name\":\"First\",\"description\":\"\",\"points\":10}");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    int status;
    kill(f->dev, SIGTERM);
    waitpid(f->dev, &status, 0);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* A player put with the api key from keys.json reads back; an unknown one is 404, exit 1. */
static void player_put_then_get(void **state)
{
    struct fixture *f = *state;
    struct run r;
    ctl(f, &r, "player", "put", "alice", "--name", "Alice", "--region", "eu", "--guild", "g1",
        "--data", f->data, NULL);
    assert_int_equal(r.code, 0);
    assert_string_equal(jstr(r.json, "player_id"), "alice");
    run_free(&r);

    ctl(f, &r, "player", "get", "alice", NULL);
    assert_int_equal(r.code, 0);
    assert_string_equal(jstr(r.json, "name"), "Alice");
    assert_string_equal(jstr(r.json, "region"), "eu");
    assert_string_equal(jstr(r.json, "guild"), "g1");
    assert_non_null(strchr(r.out, '\n')); /* pretty-printed */
    run_free(&r);

    ctl(f, &r, "player", "get", "nobody", NULL);
    assert_int_equal(r.code, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "error not_found: "));
    run_free(&r);

    /* Region cannot change: the API's 409 comes out as exit 1 with its code. */
    ctl(f, &r, "player", "put", "alice", "--name", "Alice", "--region", "na", "--data", f->data,
        NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "error conflict: "));
    run_free(&r);
}

/* Scores show on the global top in order, and per region; a key given twice replays. */
static void score_then_top(void **state)
{
    struct fixture *f = *state;
    struct run r;
    ctl(f, &r, "player", "put", "bob", "--name", "Bob", "--region", "na", "--data", f->data, NULL);
    assert_int_equal(r.code, 0);
    run_free(&r);
    ctl(f, &r, "player", "put", "carol", "--name", "Carol", "--region", "eu", "--data", f->data,
        NULL);
    assert_int_equal(r.code, 0);
    run_free(&r);

    ctl(f, &r, "score", "--board", "arena", "--player", "bob", "--score", "100", "--metadata",
        "{\"car\":\"red\"}", "--key", "bob-key-0001", "--data", f->data, NULL);
    assert_int_equal(r.code, 0);
    assert_int_equal(json_integer_value(json_object_get(r.json, "score")), 100);
    assert_null(strstr(r.err, "idempotency key"));
    run_free(&r);

    /* Without --key a fresh one is made and printed, so the operator can retry with it. */
    ctl(f, &r, "score", "--board", "arena", "--player", "carol", "--score", "50", "--subscore", "7",
        "--data", f->data, NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.err, "idempotency key "));
    assert_int_equal(json_integer_value(json_object_get(r.json, "subscore")), 7);
    run_free(&r);

    ctl(f, &r, "score", "--board", "arena", "--player", "bob", "--score", "100", "--metadata",
        "{\"car\":\"red\"}", "--key", "bob-key-0001", "--data", f->data, NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.err, "replayed"));
    run_free(&r);

    ctl(f, &r, "top", "--board", "arena", "--limit", "10", NULL);
    assert_int_equal(r.code, 0);
    json_t *e = json_object_get(r.json, "entries");
    assert_int_equal(json_array_size(e), 2);
    assert_string_equal(jstr(json_array_get(e, 0), "player_id"), "bob");
    assert_string_equal(jstr(json_array_get(e, 1), "player_id"), "carol");
    assert_string_equal(jstr(json_object_get(json_array_get(e, 0), "metadata"), "car"), "red");
    run_free(&r);

    ctl(f, &r, "top", "--board", "arena", "--scope", "region:eu", "--window", "alltime", NULL);
    assert_int_equal(r.code, 0);
    e = json_object_get(r.json, "entries");
    assert_int_equal(json_array_size(e), 1);
    assert_string_equal(jstr(json_array_get(e, 0), "player_id"), "carol");
    assert_string_equal(jstr(r.json, "scope"), "region:eu");
    run_free(&r);

    ctl(f, &r, "top", "--board", "arena", "--scope", "region:mars", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "error invalid_argument: "));
    run_free(&r);
}

/* rank: a player's exact global rank across regions, with its neighbours. */
static void rank_with_around(void **state)
{
    struct fixture *f = *state;
    struct run r;
    ctl(f, &r, "score", "--board", "arena", "--player", "alice", "--score", "70", "--data", f->data,
        NULL);
    assert_int_equal(r.code, 0);
    run_free(&r);
    ctl(f, &r, "rank", "--board", "arena", "--player", "alice", "--around", "1", NULL);
    assert_int_equal(r.code, 0);
    assert_int_equal(json_integer_value(json_object_get(r.json, "rank")), 2);
    assert_int_equal(json_integer_value(json_object_get(r.json, "score")), 70);
    assert_int_equal(json_array_size(json_object_get(r.json, "around")), 3);
    run_free(&r);

    ctl(f, &r, "rank", "--board", "arena", "--player", "nobody", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "error not_found: "));
    run_free(&r);
}

/* An unknown achievement is the API's 404: exit 1 with its code; a known one unlocks. */
static void unlock_unknown_achievement(void **state)
{
    struct fixture *f = *state;
    struct run r;
    ctl(f, &r, "unlock", "--player", "alice", "--game", "quest", "--achievement", "nope", "--data",
        f->data, NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "error not_found: "));
    assert_string_equal(r.out, "");
    run_free(&r);

    ctl(f, &r, "unlock", "--player", "alice", "--game", "quest", "--achievement", "first", "--key",
        "alice-unlock-1", "--data", f->data, NULL);
    assert_int_equal(r.code, 0);
    assert_true(json_is_true(json_object_get(r.json, "newly_unlocked")));
    assert_int_equal(json_integer_value(json_object_get(r.json, "total_points")), 10);
    run_free(&r);
}

/* Keys: none found is the API's 401 (exit 1, with a hint); an explicit --admin-key works;
 * `get` sends the admin key (/v1/cluster) and prints a non-JSON body (/metrics) as it is. */
static void keys_and_get(void **state)
{
    struct fixture *f = *state;
    struct run r;
    ctl(f, &r, "unlock", "--player", "alice", "--game", "quest", "--achievement", "first", "--data",
        "/nonexistent", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "error unauthorized: "));
    run_free(&r);

    ctl(f, &r, "player", "put", "dave", "--name", "Dave", "--region", "na", "--data",
        "/nonexistent", "--admin-key", f->admin, NULL);
    assert_int_equal(r.code, 0);
    run_free(&r);

    ctl(f, &r, "get", "/readyz", NULL);
    assert_int_equal(r.code, 0);
    assert_string_equal(jstr(r.json, "status"), "ready");
    run_free(&r);

    ctl(f, &r, "get", "/v1/games/quest", "--data", f->data, NULL);
    assert_int_equal(r.code, 0);
    assert_string_equal(jstr(r.json, "game_id"), "quest");
    run_free(&r);

    ctl(f, &r, "get", "/v1/cluster", "--data", f->data, NULL);
    assert_int_equal(r.code, 0);
    assert_int_equal(json_array_size(json_object_get(r.json, "regions")), 2);
    run_free(&r);

    /* An unknown key on /v1/cluster: the API's 401. */
    ctl(f, &r, "get", "/v1/cluster", "--data", "/nonexistent", "--api-key", "wrong", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "error unauthorized: "));
    run_free(&r);

    /* A body that is not JSON (Prometheus text) comes out as it is. */
    ctl(f, &r, "get", "/metrics", NULL);
    assert_int_equal(r.code, 0);
    assert_null(r.json);
    assert_true(strlen(r.out) > 0);
    run_free(&r);
}

/* GET @path over HTTP (no key): its JSON body, owned by the caller; fails the test unless 200. */
static json_t *http_get(const struct fixture *f, const char *path)
{
    struct httpc_resp r;
    assert_int_equal(httpc_do(f->http, "GET", path, "", NULL, &r), 0);
    if (r.status != 200) {
        fprintf(stderr, "# GET %s: %d %s\n", path, r.status, r.body);
    }
    assert_int_equal(r.status, 200);
    json_t *j = json_loads(r.body, 0, NULL);
    assert_non_null(j);
    httpc_free(&r);
    return j;
}

/* A game, an achievement and a board put by ctl with the admin key read back over HTTP as
 * given: every flag lands in its body member; --json is the body and flags add to it. */
static void catalog_puts_then_get(void **state)
{
    struct fixture *f = *state;
    struct run r;
    json_t *j;
    ctl(f, &r, "game", "put", "saga", "--name", "Saga", "--data", f->data, NULL);
    assert_int_equal(r.code, 0);
    assert_string_equal(jstr(r.json, "game_id"), "saga");
    run_free(&r);
    j = http_get(f, "/v1/games/saga");
    assert_string_equal(jstr(j, "name"), "Saga");
    json_decref(j);

    ctl(f, &r, "achievement", "put", "saga", "slayer", "--name", "Slayer", "--description",
        "Slay it", "--points", "25", "--hidden", "false", "--steps", "3", "--data", f->data, NULL);
    assert_int_equal(r.code, 0);
    run_free(&r);
    j = http_get(f, "/v1/games/saga/achievements");
    json_t *a = json_array_get(json_object_get(j, "achievements"), 0);
    assert_string_equal(jstr(a, "achievement_id"), "slayer");
    assert_string_equal(jstr(a, "name"), "Slayer");
    assert_string_equal(jstr(a, "description"), "Slay it");
    assert_int_equal(json_integer_value(json_object_get(a, "points")), 25);
    assert_int_equal(json_integer_value(json_object_get(a, "steps")), 3);
    assert_true(json_is_false(json_object_get(a, "hidden")));
    json_decref(j);

    ctl(f, &r, "board", "put", "duel", "--order", "asc", "--operator", "set", "--windows",
        "alltime,daily", "--rewards", "[{\"rank_from\":1,\"rank_to\":3,\"reward\":\"gold\"}]",
        "--game", "saga", "--data", f->data, NULL);
    assert_int_equal(r.code, 0);
    run_free(&r);
    j = http_get(f, "/v1/boards/duel");
    assert_string_equal(jstr(j, "order"), "asc");
    assert_string_equal(jstr(j, "operator"), "set");
    assert_string_equal(jstr(j, "game_id"), "saga");
    assert_int_equal(json_array_size(json_object_get(j, "windows")), 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(j, "windows"), 1)),
                        "daily");
    assert_string_equal(jstr(json_array_get(json_object_get(j, "rewards"), 0), "reward"), "gold");
    json_decref(j);

    /* The escape hatch: the body as JSON, no required flag, a flag still adds its member. */
    ctl(f, &r, "board", "put", "sprint", "--json", "{\"order\":\"asc\",\"operator\":\"best\"}",
        "--snapshot-top", "5", "--data", f->data, NULL);
    assert_int_equal(r.code, 0);
    run_free(&r);
    j = http_get(f, "/v1/boards/sprint");
    assert_string_equal(jstr(j, "order"), "asc");
    assert_int_equal(json_integer_value(json_object_get(j, "snapshot_top")), 5);
    json_decref(j);

    /* What the router refuses comes back as its error; what ctl can tell is wrong, before. */
    ctl(f, &r, "board", "put", "bad", "--order", "up", "--operator", "best", "--data", f->data,
        NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "error invalid_argument: "));
    run_free(&r);
    ctl(f, &r, "game", "put", "nameless", "--data", f->data, NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "--name is required"));
    run_free(&r);
    ctl(f, &r, "achievement", "put", "saga", "x", "--name", "X", "--hidden", "maybe", NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "--hidden wants true or false"));
    run_free(&r);
    ctl(f, &r, "board", "put", "b", "--json", "[1]", NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "--json wants a JSON object"));
    run_free(&r);
    /* The api key may not write the catalog: the API's 403. */
    ctl(f, &r, "game", "put", "saga", "--name", "Saga", "--data", "/nonexistent", "--api-key",
        f->api, NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "error forbidden: "));
    assert_non_null(strstr(r.err, "--admin-key"));
    run_free(&r);
}

/* RFC 3339 of now + @delta_s. */
static void rfc3339(char *out, size_t cap, long delta_s)
{
    time_t t = time(NULL) + delta_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A tournament put by ctl reads back active; a join by ctl (api key) counts once, twice. */
static void tournament_put_and_join(void **state)
{
    struct fixture *f = *state;
    struct run r;
    char start[32], end[32];
    rfc3339(start, sizeof start, -3600);
    rfc3339(end, sizeof end, 86400);
    ctl(f, &r, "tournament", "put", "cup", "--name", "Cup", "--order", "desc", "--operator", "best",
        "--start-at", start, "--end-at", end, "--max-participants", "10", "--max-attempts", "3",
        "--prizes", "[{\"rank_from\":1,\"rank_to\":1,\"reward\":\"cup\"}]", "--data", f->data,
        NULL);
    assert_int_equal(r.code, 0);
    assert_string_equal(jstr(r.json, "tournament_id"), "cup");
    run_free(&r);
    json_t *j = http_get(f, "/v1/tournaments/cup");
    assert_string_equal(jstr(j, "state"), "active");
    assert_int_equal(json_integer_value(json_object_get(j, "max_participants")), 10);
    assert_int_equal(json_integer_value(json_object_get(j, "max_attempts")), 3);
    assert_int_equal(json_integer_value(json_object_get(j, "participants")), 0);
    json_decref(j);

    ctl(f, &r, "player", "put", "erin", "--name", "Erin", "--region", "na", "--data", f->data,
        NULL);
    assert_int_equal(r.code, 0);
    run_free(&r);
    for (int i = 0; i < 2; i++) {
        ctl(f, &r, "tournament", "join", "cup", "erin", "--data", f->data, NULL);
        assert_int_equal(r.code, 0);
        assert_true(json_is_true(json_object_get(r.json, "joined")));
        assert_int_equal(json_integer_value(json_object_get(r.json, "participants")), 1);
        run_free(&r);
    }
    j = http_get(f, "/v1/tournaments/cup");
    assert_int_equal(json_integer_value(json_object_get(j, "participants")), 1);
    json_decref(j);

    ctl(f, &r, "tournament", "join", "cup", "nobody", "--data", f->data, NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "error not_found: "));
    run_free(&r);
    ctl(f, &r, "tournament", "join", "cup", NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "PLAYER is required"));
    run_free(&r);
}

/* The line of the table for @group's replica @replica, or NULL. */
static const char *table_row(const char *out, const char *group, const char *replica)
{
    char head[64];
    snprintf(head, sizeof head, "\n%s ", group);
    for (const char *p = strstr(out, head); p; p = strstr(p + 1, head)) {
        const char *q = p + strlen(head);
        while (*q == ' ') {
            q++;
        }
        if (strncmp(q, replica, strlen(replica)) == 0 && q[strlen(replica)] == ' ') {
            return p + 1;
        }
    }
    return NULL;
}

/* `ctl cluster` lists every region and the meta group with a leader, healthy, lag 0 or more;
 * --json is /v1/cluster as it is. */
static void cluster_table(void **state)
{
    struct fixture *f = *state;
    struct run r;
    static const char *const groups[] = {"eu", "na", "meta"};
    ctl(f, &r, "cluster", "--data", f->data, NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "GROUP"));
    assert_non_null(strstr(r.out, "APPLIED"));
    assert_non_null(strstr(r.out, "LAG"));
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        const char *row = table_row(r.out, groups[i], "1");
        char line[256];
        assert_non_null(row);
        snprintf(line, sizeof line, "%.*s", (int)strcspn(row, "\n"), row);
        assert_non_null(strstr(line, " leader "));
        assert_non_null(strstr(line, " true"));
    }
    assert_null(strstr(r.err, "no leader"));
    run_free(&r);

    ctl(f, &r, "cluster", "--json", "--data", f->data, NULL);
    assert_int_equal(r.code, 0);
    assert_int_equal(json_array_size(json_object_get(r.json, "regions")), 2);
    assert_string_equal(jstr(json_object_get(r.json, "meta"), "id"), "meta");
    run_free(&r);

    ctl(f, &r, "cluster", "--data", "/nonexistent", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "error unauthorized: "));
    run_free(&r);
}

/* No router there: exit 1 with the connection error, well within the timeout. */
static void router_unreachable(void **state)
{
    struct fixture *f = *state;
    struct run r;
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", client_free_port());
    ctl(f, &r, "get", "/healthz", "--router", addr, "--timeout-ms", "1000", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "connect"));
    run_free(&r);
}

/* Every command has --help (exit 0); `ctl --help` lists them all; usage errors exit 2. */
static void help_and_usage_errors(void **state)
{
    struct fixture *f = *state;
    static const char *const cmds[][2] = {
        {"player", "put"}, {"player", "get"},     {"unlock", NULL},       {"score", NULL},
        {"top", NULL},     {"rank", NULL},        {"get", NULL},          {"status", NULL},
        {"game", "put"},   {"game", "get"},       {"achievement", "put"}, {"board", "put"},
        {"board", "get"},  {"tournament", "put"}, {"tournament", "join"}, {"tournament", "get"},
        {"cluster", NULL}, {"watch", NULL}};
    struct run r;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (cmds[i][1]) {
            ctl(f, &r, cmds[i][0], cmds[i][1], "--help", NULL);
        } else {
            ctl(f, &r, cmds[i][0], "--help", NULL);
        }
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "usage: laurel ctl "));
        assert_non_null(strstr(r.out, cmds[i][0]));
        run_free(&r);
    }
    ctl(f, &r, "--help", NULL);
    assert_int_equal(r.code, 0);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "  %s%s%s", cmds[i][0], cmds[i][1] ? " " : "",
                 cmds[i][1] ? cmds[i][1] : "");
        assert_non_null(strstr(r.out, line));
    }
    run_free(&r);

    ctl(f, &r, "score", "--board", "arena", "--bogus", "1", NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "unknown option --bogus"));
    run_free(&r);
    ctl(f, &r, "top", NULL); /* --board missing */
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "--board is required"));
    run_free(&r);
    ctl(f, &r, "score", "--board", "arena", "--player", "alice", "--score", "lots", NULL);
    assert_int_equal(r.code, 2);
    run_free(&r);
    ctl(f, &r, "score", "--board", "arena", "--player", "alice", "--score", "1", "--metadata",
        "{oops", NULL);
    assert_int_equal(r.code, 2);
    run_free(&r);
    ctl(f, &r, "player", "get", "alice", "extra", NULL);
    assert_int_equal(r.code, 2);
    run_free(&r);
    ctl(f, &r, "player", "frob", NULL);
    assert_int_equal(r.code, 2);
    run_free(&r);
    ctl(f, &r, "frobnicate", NULL);
    assert_int_equal(r.code, 2);
    run_free(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(player_put_then_get),
        cmocka_unit_test(score_then_top),
        cmocka_unit_test(rank_with_around),
        cmocka_unit_test(unlock_unknown_achievement),
        cmocka_unit_test(keys_and_get),
        cmocka_unit_test(router_unreachable),
        cmocka_unit_test(help_and_usage_errors),
        cmocka_unit_test(catalog_puts_then_get),
        cmocka_unit_test(tournament_put_and_join),
        cmocka_unit_test(cluster_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
