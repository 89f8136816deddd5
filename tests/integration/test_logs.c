/* tests/integration/test_logs.c — `--log-format json` on real processes: a `laurel node`
 * replica and a `laurel router` started with it write only JSON objects, one per line, each
 * with the process, node, region and term; the router logs sampled requests
 * (`--log-requests 1`: all) with method, route, status and latency; a bad format is refused
 * before anything starts (docs/operations.md, "Logs"). */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/client.h"
#include "tests/lib/cluster.h"
#include "tests/lib/httpc.h"
#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"

/* Every line of @path parses as a JSON object with the identity members; @return the lines
 * (a JSON array, owned). Lines that are not JSON fail the test, naming the line. */
static json_t *json_lines(const char *path, const char *process)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    json_t *all = json_array();
    char line[8192];
    while (fgets(line, sizeof line, fp) != NULL) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        if (o == NULL || !json_is_object(o)) {
            fail_msg("%s: not a JSON object: %s", path, line);
        }
        assert_string_equal(json_string_value(json_object_get(o, "process")), process);
        assert_true(json_is_integer(json_object_get(o, "term")));
        assert_true(json_is_integer(json_object_get(o, "node")));
        assert_true(json_is_string(json_object_get(o, "region")));
        assert_true(json_is_string(json_object_get(o, "level")));
        assert_true(json_is_string(json_object_get(o, "msg")));
        json_array_append_new(all, o);
    }
    fclose(fp);
    return all;
}

static void json_logs_on_a_replica_and_a_router(void **state)
{
    (void)state;
    struct tcluster c;
    static const char *const json_flag[] = {"--log-format", "json"};
    assert_int_equal(tcluster_init_on(&c, 1, "eu", "127.0.0.1"), 0);
    c.args[c.nargs++] = json_flag[0];
    c.args[c.nargs++] = json_flag[1];
    assert_int_equal(tcluster_spawn(&c, 0), 0);
    assert_true(tcluster_leader(&c, 15000) >= 0);

    char http[32], region[96], logpath[700], badlog[700];
    snprintf(http, sizeof http, "127.0.0.1:%d", client_free_port());
    snprintf(region, sizeof region, "eu=%s", c.r[0].rpc);
    snprintf(logpath, sizeof logpath, "%s/router.log", c.dir);
    snprintf(badlog, sizeof badlog, "%s/bad.log", c.dir);
    const char *bad[] = {c.bin, "router", "--region", region, "--log-format", "xml", NULL};
    assert_int_equal(testlib_run(bad, badlog), 2);
    const char *argv[] = {c.bin,
                          "router",
                          "--http",
                          http,
                          "--region",
                          region,
                          "--log-format",
                          "json",
                          "--log-requests",
                          "1",
                          "--admin-key",
                          "logs-test-admin-key-1",
                          NULL};
    pid_t pid = testlib_spawn(argv, logpath);
    assert_true(pid > 0);
    struct httpc_resp r;
    int ready = 0;
    for (int tries = 0; tries < 100 && !ready; tries++) {
        if (httpc_do(http, "GET", "/readyz", "", NULL, &r) == 0) {
            ready = r.status == 200;
            httpc_free(&r);
        }
        if (!ready) {
            tdev_sleep_ms(100);
        }
    }
    assert_true(ready);
    assert_int_equal(httpc_do(http, "GET", "/v1/boards/nope/top", "", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    httpc_free(&r);
    assert_int_equal(httpc_do(http, "GET", "/v1/no/such/endpoint", "", NULL, &r), 0);
    httpc_free(&r);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);

    json_t *lines = json_lines(logpath, "router");
    int saw_board = 0, saw_unmatched = 0;
    size_t i;
    json_t *o;
    json_array_foreach(lines, i, o)
    {
        const char *route = json_string_value(json_object_get(o, "route"));
        if (route == NULL) {
            continue;
        }
        assert_string_equal(json_string_value(json_object_get(o, "msg")), "request");
        assert_true(json_is_integer(json_object_get(o, "latency_us")));
        assert_string_equal(json_string_value(json_object_get(o, "source")), "127.0.0.1");
        if (strcmp(route, "/v1/boards/{}/top") == 0) {
            assert_string_equal(json_string_value(json_object_get(o, "method")), "GET");
            assert_int_equal(json_integer_value(json_object_get(o, "status")), 404);
            saw_board = 1;
        } else if (strcmp(route, "/v1/no/such/endpoint") == 0) {
            saw_unmatched = 1;
        }
    }
    assert_true(saw_board);
    assert_true(saw_unmatched);
    json_decref(lines);

    tcluster_kill(&c, 0, SIGTERM);
    lines = json_lines(c.r[0].log, "node");
    assert_true(json_array_size(lines) >= 1);
    int saw_term = 0;
    json_array_foreach(lines, i, o)
    {
        assert_string_equal(json_string_value(json_object_get(o, "region")), "eu");
        saw_term |= json_integer_value(json_object_get(o, "term")) >= 1;
    }
    assert_true(saw_term); /* lines after the election carry its term */
    json_decref(lines);
    tcluster_stop(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_logs_on_a_replica_and_a_router),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
