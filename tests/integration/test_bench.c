/* tests/integration/test_bench.c — `laurel bench http` and `laurel bench ws` run end to end
 * against the smallest cluster (one region, one replica, a few seconds) and print every
 * figure they promise. Nothing about time or rates is asserted: only that the figures are
 * there, and (ws) that nothing was lost on the way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/testlib.h"

/* Run `laurel bench` with @args (NULL-terminated, after "bench") and its stdout in @out
 * (NUL-terminated). @return its exit status. */
static int run_bench(const char *const *args, char *out, size_t cap)
{
    const char *bin = getenv("LAUREL_BIN") ? getenv("LAUREL_BIN") : "build/laurel";
    const char *argv[32] = {bin, "bench"};
    size_t na = 2;
    while (*args && na + 1 < sizeof argv / sizeof argv[0]) {
        argv[na++] = *args++;
    }
    argv[na] = NULL;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(p[0], out + n, cap - 1 - n)) > 0) {
        n += (size_t)r;
    }
    out[n] = '\0';
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void assert_figure(const char *out, const char *name)
{
    char line[128];
    snprintf(line, sizeof line, "\nfigure %s ", name);
    if (strstr(out, line) == NULL) {
        fail_msg("missing figure %s in:\n%s", name, out);
    }
}

/* Every workload prints its rate and its p50 and p99 latencies, whatever the server
 * answered (a missing endpoint shows as an `errors` line, not as a missing figure); creations
 * of new players all answer 201. cycle_close_ms waits for a 60 s cycle boundary, so --quick
 * leaves it out. */
static void bench_http_prints_every_figure(void **state)
{
    static const char *const names[] = {"http_score_rps",         "http_events_cps",
                                        "http_rank_rps",          "http_around_rps",
                                        "http_top100_global_rps", "http_player_create_rps"};
    static const char *const suffixes[] = {" ", "_p50_ms ", "_p99_ms "};
    static const char *const args[] = {
        "http",      "--quick", "--no-peers", "--regions", "local",     "--replicas", "1",
        "--players", "200",     "--conns",    "4",         "--seconds", "1",          NULL};
    static char out[1 << 16];
    (void)state;
    assert_int_equal(run_bench(args, out, sizeof out), 0);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        for (size_t k = 0; k < sizeof suffixes / sizeof suffixes[0]; k++) {
            char name[96];
            snprintf(name, sizeof name, "%s%s", names[i], suffixes[k]);
            name[strlen(name) - 1] = '\0'; /* the suffix's trailing blank */
            assert_figure(out, name);
        }
    }
    if (strstr(out, "\nerrors http_player_create_rps") != NULL) {
        fail_msg("player creations answered other than 201:\n%s", out);
    }
    assert_null(strstr(out, "\nfigure cycle_close_ms "));
}

/* Every phase prints its figures, and none printed an `errors` line: every acknowledged
 * write reached each of its subscribers, the fan-out burst reached every subscriber, every
 * read over the socket answered 200, and every connection opened and was still open after
 * the hold. Connections come from 127.0.0.2 (wsload's source addresses). */
static void bench_ws_prints_every_figure(void **state)
{
    static const char *const names[] = {
        "ws_notify_p50_ms",     "ws_notify_p99_ms",   "ws_notify_writes_per_s",
        "ws_fanout_msgs_per_s", "ws_query_rps",       "ws_query_p50_ms",
        "ws_query_p99_ms",      "ws_connections_max", "ws_bytes_per_connection"};
    static const char *const args[] = {
        "ws",  "--quick",       "--no-peers", "--regions",     "local", "--replicas",
        "1",   "--players",     "200",        "--subscribers", "100",   "--conns",
        "300", "--query-conns", "4",          "--seconds",     "1",     NULL};
    static char out[1 << 16];
    (void)state;
    assert_int_equal(run_bench(args, out, sizeof out), 0);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        assert_figure(out, names[i]);
    }
    if (strstr(out, "\nerrors ") != NULL) {
        fail_msg("bench ws reported errors:\n%s", out);
    }
    assert_non_null(strstr(out, "\nfigure ws_connections_max 300 connections\n"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(bench_http_prints_every_figure),
                                       cmocka_unit_test(bench_ws_prints_every_figure)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
