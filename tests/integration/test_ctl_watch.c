/* tests/integration/test_ctl_watch.c — `laurel ctl watch` as an operator runs it: the real
 * binary against a `laurel dev` cluster (eu and na, one replica each) and a second router the
 * test can stop and start again on the same address. Judged by its stdout (one JSON event per
 * line) and stderr (connection notes). */
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"

struct fixture {
    struct tdev d;
    struct tdev_router rt; /* the router the restart test stops and starts */
};

/* A running `laurel ctl watch`, its output in files of the cluster's directory. */
struct watch {
    pid_t pid;
    char out[600], err[600];
};

static int teardown(void **state)
{
    struct fixture *f = *state;
    tdev_router_stop(&f->rt);
    tdev_stop(&f->d);
    free(f);
    return 0;
}

/* @method @path with @body (consumed): the status. */
static int reqj(struct fixture *f, const char *method, const char *path, const char *key,
                json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    int status = tdev_status(&f->d, method, path, key, s);
    free(s);
    return status;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (f == NULL || tdev_start(&f->d, "eu,na", 1, 60000) != 0) {
        free(f);
        return -1;
    }
    if (tdev_router_start(&f->d, &f->rt) != 0) {
        tdev_stop(&f->d);
        free(f);
        return -1;
    }
    json_t *b = json_pack("{s:s,s:s}", "order", "desc", "operator", "best");
    if (reqj(f, "PUT", "/v1/boards/arena", TDEV_ADMIN, b) / 100 != 2) {
        teardown((void **)&f);
        return -1;
    }
    *state = f;
    return 0;
}

/* Start `laurel ctl watch --router @router TOPICS...` (NULL-terminated); it dies with the
 * test (PR_SET_PDEATHSIG). */
static void watch_start(struct fixture *f, struct watch *w, const char *name, const char *router,
                        ...)
{
    char *argv[16];
    int n = 0;
    va_list ap;
    snprintf(w->out, sizeof w->out, "%s/%s.out", f->d.dir, name);
    snprintf(w->err, sizeof w->err, "%s/%s.err", f->d.dir, name);
    argv[n++] = (char *)f->d.bin;
    argv[n++] = "ctl";
    argv[n++] = "watch";
    argv[n++] = "--router";
    argv[n++] = (char *)router;
    va_start(ap, router);
    for (char *a; (a = va_arg(ap, char *)) != NULL && n < 15;) {
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    w->pid = fork();
    assert_true(w->pid >= 0);
    if (w->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (freopen(w->out, "w", stdout) == NULL || freopen(w->err, "w", stderr) == NULL) {
            _exit(126);
        }
        execv(f->d.bin, argv);
        _exit(127);
    }
}

static void watch_stop(struct watch *w)
{
    if (w->pid > 0) {
        kill(w->pid, SIGTERM);
        waitpid(w->pid, NULL, 0);
        w->pid = 0;
    }
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    static char buf[1 << 20];
    size_t n = fp ? fread(buf, 1, sizeof buf - 1, fp) : 0;
    buf[n] = '\0';
    if (fp) {
        fclose(fp);
    }
    return buf;
}

/* Wait up to @ms for @path to hold @count occurrences of @needle. @return 1 if it does. */
static int wait_for(const char *path, const char *needle, int count, int ms)
{
    for (int waited = 0;; waited += 50) {
        int n = 0;
        for (const char *p = strstr(slurp(path), needle); p; p = strstr(p + 1, needle)) {
            n++;
        }
        if (n >= count) {
            return 1;
        }
        if (waited >= ms) {
            fprintf(stderr, "# %s: %d of %d '%s' after %d ms:\n%s\n", path, n, count, needle, ms,
                    slurp(path));
            return 0;
        }
        tdev_sleep_ms(50);
    }
}

/* Every line of @path as JSON (fails the test on a line that is not one object). */
static json_t *lines(const char *path)
{
    json_t *all = json_array();
    char *s = slurp(path), *save = NULL;
    for (char *l = strtok_r(s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(l, 0, NULL);
        if (!json_is_object(j)) {
            fprintf(stderr, "# not one JSON object: %s\n", l);
        }
        assert_true(json_is_object(j));
        json_array_append_new(all, j);
    }
    return all;
}

/* tdev_str, "" when absent. */
static const char *str(const json_t *o, const char *key)
{
    const char *s = tdev_str(o, key);
    return s ? s : "";
}

static void put_player(struct fixture *f, const char *id, const char *region)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/players/%s", id);
    json_t *b = json_pack("{s:s,s:s}", "name", id, "region", region);
    assert_int_equal(reqj(f, "PUT", path, TDEV_API, b) / 100, 2);
}

static void score(struct fixture *f, const char *player, int value)
{
    char key[64];
    static int n;
    snprintf(key, sizeof key, "ctl-watch-%s-%d-%d", player, value, n++);
    json_t *b =
        json_pack("{s:s,s:i,s:s}", "player_id", player, "score", value, "idempotency_key", key);
    assert_int_equal(reqj(f, "POST", "/v1/boards/arena/scores", TDEV_API, b), 200);
}

/* The score.updated events of @player in @all, by score: how many of each of @scores. */
static int count_scores(const json_t *all, const char *player, int value)
{
    size_t i;
    json_t *e;
    int n = 0;
    json_array_foreach(all, i, e)
    {
        n += strcmp(str(e, "type"), "score.updated") == 0 &&
             strcmp(str(e, "player_id"), player) == 0 && tdev_int(e, "score") == value;
    }
    return n;
}

/* A watch started before a score prints its score.updated (player topic) and the board's new
 * top (board topic) within a few seconds, each a JSON object on its own line. */
static void watch_prints_score(void **state)
{
    struct fixture *f = *state;
    struct watch w;
    put_player(f, "wendy", "eu");
    watch_start(f, &w, "watch1", f->d.http, "board:arena", "player:wendy", NULL);
    assert_true(wait_for(w.err, "subscribed to", 1, 10000));
    score(f, "wendy", 500);
    assert_true(wait_for(w.out, "\"score.updated\"", 1, 3000));
    assert_true(wait_for(w.out, "\"top\":[{\"rank\":1,\"player_id\":\"wendy\"", 1, 3000));
    watch_stop(&w);
    json_t *all = lines(w.out);
    assert_int_equal(count_scores(all, "wendy", 500), 1);
    size_t i;
    json_t *e;
    int tops = 0;
    json_array_foreach(all, i, e)
    {
        json_t *top = json_object_get(e, "top");
        if (strcmp(str(e, "type"), "leaderboard.changed") == 0 &&
            strcmp(str(json_array_get(top, 0), "player_id"), "wendy") == 0) {
            tops++;
        }
    }
    assert_int_equal(tops, 1);
    json_decref(all);
}

/* The router restarts while a watch runs: it reconnects and resumes, so a score made while the
 * router was down (also for a player of a region it had no event from yet) and one after it
 * is back each print once, and the earlier one is not printed again; the board's top prints
 * again only because it changed. */
static void watch_resumes_after_router_restart(void **state)
{
    struct fixture *f = *state;
    struct watch w;
    put_player(f, "rita", "eu");
    put_player(f, "nick", "na");
    watch_start(f, &w, "watch2", f->rt.http, "player:rita", "player:nick", "board:arena", NULL);
    assert_true(wait_for(w.err, "subscribed to", 1, 10000));
    score(f, "rita", 1000);
    assert_true(wait_for(w.out, "\"score\":1000", 1, 3000));

    tdev_router_stop(&f->rt);
    assert_true(wait_for(w.err, "disconnected", 1, 5000));
    score(f, "rita", 2000); /* while no router streams to the watch */
    score(f, "nick", 50);
    assert_int_equal(tdev_router_restart(&f->d, &f->rt, NULL), 0);
    assert_true(wait_for(w.err, "reconnected to", 1, 10000));
    assert_true(wait_for(w.out, "\"score\":2000", 1, 5000));
    assert_true(wait_for(w.out, "\"player_id\":\"nick\"", 1, 5000));
    score(f, "rita", 3000); /* after the reconnect: live */
    assert_true(wait_for(w.out, "\"score\":3000", 1, 5000));
    tdev_sleep_ms(300); /* a late duplicate would show by now */
    watch_stop(&w);

    json_t *all = lines(w.out);
    assert_int_equal(count_scores(all, "rita", 1000), 1);
    assert_int_equal(count_scores(all, "rita", 2000), 1);
    assert_int_equal(count_scores(all, "rita", 3000), 1);
    assert_int_equal(count_scores(all, "nick", 50), 1);
    /* No top printed twice in a row for a scope: the reconnect's current top is dropped when
     * it is the one already printed. */
    json_t *last = json_object();
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e)
    {
        if (strcmp(str(e, "type"), "leaderboard.changed") == 0) {
            json_t *top = json_object_get(e, "top");
            assert_false(json_equal(json_object_get(last, str(e, "scope")), top));
            json_object_set(last, str(e, "scope"), top);
        }
    }
    json_decref(last);
    json_decref(all);
}

/* --count N exits 0 after N events; no topic is a usage error (2); --help exits 0. */
static void watch_count_and_usage(void **state)
{
    struct fixture *f = *state;
    struct watch w;
    int status;
    put_player(f, "cora", "na");
    watch_start(f, &w, "watch3", f->d.http, "player:cora", "--count", "2", NULL);
    assert_true(wait_for(w.err, "subscribed to", 1, 10000));
    score(f, "cora", 7);
    score(f, "cora", 8);
    for (int i = 0; i < 100 && waitpid(w.pid, &status, WNOHANG) == 0; i++) {
        tdev_sleep_ms(50);
    }
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    w.pid = 0;
    json_t *all = lines(w.out);
    assert_int_equal(json_array_size(all), 2);
    json_decref(all);

    watch_start(f, &w, "watch4", f->d.http, NULL);
    assert_int_equal(waitpid(w.pid, &status, 0), w.pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 2);
    assert_non_null(strstr(slurp(w.err), "name at least one TOPIC"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(watch_prints_score),
        cmocka_unit_test(watch_resumes_after_router_restart),
        cmocka_unit_test(watch_count_and_usage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
