/* tests/integration/test_console.c — the operator console (docs/operations.md, "The console")
 * on `laurel dev --regions na,eu,apac --replicas 3`: its files are served with their content
 * types and load nothing from elsewhere; in headless Debian chromium (driven over the DevTools
 * protocol by tests/console/console_check.py) the page shows the three regions with their
 * leaders, a board's top in order, and a score submitted meanwhile in its live feed within
 * 2 s; and a page on another origin reads the board with fetch and follows the WebSocket.
 * Screenshots land in build/test-artifacts/console-*.png. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"

#define BOARD "arena"

struct fixture {
    struct tdev dev;
};

static struct fixture *fx;

/* Players, their regions and scores: the board's top is their order by score. */
static const struct {
    const char *id, *region;
    int score;
} players[] = {
    {"ana", "na", 700},  {"emil", "eu", 950}, {"aiko", "apac", 820},
    {"noah", "na", 400}, {"eva", "eu", 610},  {"arun", "apac", 880},
};
#define EXPECT "emil,arun,aiko,ana,eva,noah"

/* Run tests/console/console_check.py @scenario against the cluster: its exit code. It dies
 * with this process (testlib_spawn), and so does the chromium it starts (cdp.py). Its output
 * goes to build/test-artifacts/console-@scenario.log, copied to stderr when it failed. */
static int run_check(const char *scenario)
{
    char log[600], line[1024];
    const char *argv[] = {"/usr/bin/python3",
                          LAUREL_SRC "/tests/console/console_check.py",
                          scenario,
                          "--http",
                          fx->dev.http,
                          "--board",
                          BOARD,
                          "--expect",
                          EXPECT,
                          "--player",
                          "noah",
                          "--artifacts",
                          LAUREL_ARTIFACTS,
                          NULL};
    snprintf(log, sizeof log, "%s/console-%s.log", LAUREL_ARTIFACTS, scenario);
    mkdir(LAUREL_ARTIFACTS, 0755);
    unlink(log);
    setenv("LAUREL_API_KEY", TDEV_API, 1);
    setenv("LAUREL_ADMIN_KEY", TDEV_ADMIN, 1);
    int rv = testlib_run(argv, log);
    FILE *f = fopen(log, "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (rv != 0 || strncmp(line, "# ", 2) == 0) {
            fputs(line, stderr);
        }
    }
    if (f != NULL) {
        fclose(f);
    }
    return rv;
}

/* The header @name's value in @r (the rest of its line), or "". */
static void header_of(const struct httpc_resp *r, const char *name, char *out, size_t cap)
{
    const char *p = strcasestr(r->headers, name);
    out[0] = '\0';
    if (p != NULL) {
        p += strlen(name);
        while (*p == ' ' || *p == ':') {
            p++;
        }
        size_t n = strcspn(p, "\r\n");
        snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
    }
}

/* The page and its two files come with their content types; an unknown file is 404 as JSON. */
static void test_files_served_with_content_types(void **state)
{
    (void)state;
    static const struct {
        const char *path, *ctype;
    } files[] = {
        {"/console", "text/html; charset=utf-8"},
        {"/console/index.html", "text/html; charset=utf-8"},
        {"/console/console.css", "text/css; charset=utf-8"},
        {"/console/console.js", "text/javascript; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        struct httpc_resp r;
        char ctype[128];
        assert_int_equal(tdev_req(&fx->dev, "GET", files[i].path, "", NULL, &r), 200);
        header_of(&r, "Content-Type", ctype, sizeof ctype);
        assert_string_equal(ctype, files[i].ctype);
        assert_true(r.body_len > 100);
        /* Nothing loaded from another host: no CDN, no absolute URL in src or href. */
        assert_null(strstr(r.body, "src=\"http"));
        assert_null(strstr(r.body, "href=\"http"));
        assert_null(strstr(r.body, "src=\"//"));
        httpc_free(&r);
    }
    struct httpc_resp r;
    assert_int_equal(tdev_req(&fx->dev, "GET", "/console/nope.js", "", NULL, &r), 404);
    tdev_assert_error(&r, 404, "not_found", "an unknown console file");
    httpc_free(&r);
    /* A path that climbs is never a file of the table. */
    assert_int_equal(tdev_status(&fx->dev, "GET", "/console/../metrics/x", "", NULL), 404);
}

/* In chromium the console shows the regions and their leaders, the board's top in order and a
 * new score live within 2 s (console_check.py's "console" scenario). */
static void test_console_in_a_browser(void **state)
{
    (void)state;
    assert_int_equal(run_check("console"), 0);
}

/* A page on another origin reads the board with fetch (CORS) and gets events over the
 * WebSocket (console_check.py's "xorigin" scenario). */
static void test_other_origin_reads_and_follows(void **state)
{
    (void)state;
    assert_int_equal(run_check("xorigin"), 0);
}

/* ---- fixture ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    char path[160];
    struct httpc_resp r;
    fx = calloc(1, sizeof *fx);
    if (fx == NULL || tdev_start(&fx->dev, "na,eu,apac", 3, 60000) != 0) {
        return -1;
    }
    json_t *board = json_pack("{s:s,s:s,s:[s,s]}", "order", "desc", "operator", "best", "windows",
                              "alltime", "daily");
    int st = tdev_reqj(&fx->dev, "PUT", "/v1/boards/" BOARD, TDEV_ADMIN, board, &r);
    httpc_free(&r);
    for (size_t i = 0; st == 201 && i < sizeof players / sizeof players[0]; i++) {
        snprintf(path, sizeof path, "/v1/players/%s", players[i].id);
        json_t *player = json_pack("{s:s,s:s}", "name", players[i].id, "region", players[i].region);
        if ((st = tdev_reqj(&fx->dev, "PUT", path, TDEV_API, player, &r)) == 201) {
            json_t *score =
                json_pack("{s:s,s:i,s:s+}", "player_id", players[i].id, "score", players[i].score,
                          "idempotency_key", "console-", players[i].id);
            httpc_free(&r);
            st = tdev_reqj(&fx->dev, "POST", "/v1/boards/" BOARD "/scores", TDEV_API, score, &r);
            st = st == 200 ? 201 : st;
        }
        httpc_free(&r);
    }
    if (st != 201) {
        fprintf(stderr, "# setup: a board, player or score was refused (%d)\n", st);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tdev_stop(&fx->dev);
    free(fx);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_served_with_content_types),
        cmocka_unit_test(test_console_in_a_browser),
        cmocka_unit_test(test_other_origin_reads_and_follows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
