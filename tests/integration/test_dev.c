/* tests/integration/test_dev.c — `laurel dev` as a user runs it: a cluster comes up, answers
 * ready, lists its processes in dev.json, keeps its keys and ports across a restart, and
 * SIGTERM leaves no process behind. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/client.h"
#include "tests/lib/httpc.h"
#include "tests/lib/testlib.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static pid_t start_dev(const char *dir, const char *http)
{
    const char *bin = getenv("LAUREL_BIN") ? getenv("LAUREL_BIN") : "build/laurel";
    pid_t pid = fork();
    if (pid == 0) {
        char log[600];
        snprintf(log, sizeof log, "%s.out", dir);
        if (freopen(log, "a", stdout) == NULL || freopen(log, "a", stderr) == NULL) {
            _exit(126);
        }
        execl(bin, bin, "dev", "--data", dir, "--http", http, "--regions", "eu,na", "--replicas",
              "3", (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_ready(const char *http)
{
    for (int i = 0; i < 300; i++) {
        struct httpc_resp r;
        if (httpc_do(http, "GET", "/readyz", "", NULL, &r) == 0) {
            int s = r.status;
            httpc_free(&r);
            if (s == 200) {
                return 0;
            }
        }
        sleep_ms(100);
    }
    return -1;
}

/* Up, ready, described in dev.json; down on SIGTERM with every replica gone; same keys and
 * ports after a restart. */
static void dev_cluster_lifecycle(void **state)
{
    (void)state;
    char *dir = testlib_tmpdir(), path[700], http[32];
    snprintf(http, sizeof http, "127.0.0.1:%d", client_free_port());
    pid_t dev = start_dev(dir, http);
    assert_int_equal(wait_ready(http), 0);

    snprintf(path, sizeof path, "%s/dev.json", dir);
    json_t *j = json_load_file(path, 0, NULL), *p;
    assert_non_null(j);
    json_t *procs = json_object_get(j, "processes");
    assert_int_equal(json_array_size(procs), 7);
    pid_t pids[6];
    size_t i, nn = 0;
    json_array_foreach(procs, i, p)
    {
        const char *role = json_string_value(json_object_get(p, "role"));
        if (strcmp(role, "node") == 0) {
            pids[nn++] = (pid_t)json_integer_value(json_object_get(p, "pid"));
            assert_non_null(json_string_value(json_object_get(p, "rpc")));
        } else {
            assert_string_equal(role, "router");
            assert_int_equal(json_integer_value(json_object_get(p, "pid")), dev);
        }
    }
    json_decref(j);
    assert_int_equal(nn, 6);

    snprintf(path, sizeof path, "%s/keys.json", dir);
    json_t *keys = json_load_file(path, 0, NULL);
    char admin[128];
    snprintf(admin, sizeof admin, "%s", json_string_value(json_object_get(keys, "admin_key")));
    json_decref(keys);
    struct httpc_resp r;
    assert_int_equal(httpc_do(http, "PUT", "/v1/games/g1", admin, "{\"name\":\"G\"}", &r), 0);
    assert_int_equal(r.status, 201);
    httpc_free(&r);

    kill(dev, SIGTERM);
    int status;
    assert_int_equal(waitpid(dev, &status, 0), dev);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (i = 0; i < nn; i++) {
        assert_int_equal(kill(pids[i], 0), -1); /* every replica is gone */
    }

    /* Restart: the same keys work and the catalog is still there (same data, same ports). */
    dev = start_dev(dir, http);
    assert_int_equal(wait_ready(http), 0);
    assert_int_equal(httpc_do(http, "PUT", "/v1/games/g1", admin, "{\"name\":\"G\"}", &r), 0);
    assert_int_equal(r.status, 200);
    httpc_free(&r);
    kill(dev, SIGTERM);
    waitpid(dev, &status, 0);
    testlib_rmrf(dir);
    free(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {cmocka_unit_test(dev_cluster_lifecycle)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
