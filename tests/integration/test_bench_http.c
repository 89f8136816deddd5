/* tests/integration/test_bench_http.c — `laurel bench http` runs end to end against the
 * smallest cluster (one region, one replica, a few seconds) and prints every figure it
 * promises. Nothing about time or rates is asserted: only that the figures are there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/testlib.h"

/* Run the bench with its stdout in @out (NUL-terminated). @return its exit status. */
static int run_bench(char *out, size_t cap)
{
    const char *bin = getenv("LAUREL_BIN") ? getenv("LAUREL_BIN") : "build/laurel";
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 1);
        close(p[0]);
        close(p[1]);
        execl(bin, bin, "bench", "http", "--quick", "--no-peers", "--regions", "local",
              "--replicas", "1", "--players", "200", "--conns", "4", "--seconds", "1",
              (char *)NULL);
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

/* Every workload prints its rate and its p50 and p99 latencies, whatever the server
 * answered (a missing endpoint shows as an `errors` line, not as a missing figure). */
static void bench_http_prints_every_figure(void **state)
{
    static const char *const names[] = {"http_score_rps", "http_events_cps", "http_rank_rps",
                                        "http_around_rps", "http_top100_global_rps"};
    static const char *const suffixes[] = {" ", "_p50_ms ", "_p99_ms "};
    static char out[1 << 16];
    (void)state;
    assert_int_equal(run_bench(out, sizeof out), 0);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        for (size_t k = 0; k < sizeof suffixes / sizeof suffixes[0]; k++) {
            char line[128];
            snprintf(line, sizeof line, "\nfigure %s%s", names[i], suffixes[k]);
            if (strstr(out, line) == NULL) {
                fail_msg("missing figure %s%s in:\n%s", names[i], suffixes[k], out);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(bench_http_prints_every_figure)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
