/* tests/integration/test_region_add.c — a region added to a running cluster (docs/operations.md,
 * "Adding a region"): region eu and the metadata group (three real replicas each), two real
 * `laurel router`s started with eu only, and a writer thread that sends `incr` +1 scores
 * through router B without pause, each with its own idempotency key. Meanwhile the operator
 * starts region apac's replicas and runs `laurel ctl region add apac --rpc ...` against router
 * A. No request may fail; router A serves apac at once and router B within a poll of meta's
 * list, without a restart; the catalog reaches apac, players are created in it, and the global
 * board of both routers includes them. Afterwards every acknowledged write is in eu's scores
 * exactly once, and a router restarted with eu alone still serves apac (the list is meta's
 * state, not the router's flags). */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/cluster.h"
#include "tests/lib/httpc.h"
#include "tests/lib/kwriter.h"
#include "tests/lib/testlib.h"

#define ADMIN "region-admin-key-01234"
#define API "region-api-key-0456789"
#define NPLAYERS 8
#define T_MS 20000

struct fixture {
    struct tcluster eu, meta, apac;
    int apac_started;
    char http_a[32], http_b[32];
    char eu_arg[256], meta_arg[256];
    pid_t router_a, router_b;
    char log[600];
    struct kwriter w; /* the steady write load, through router B (tests/lib/kwriter.h) */
};

static struct fixture *fx;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int req(const char *http, const char *method, const char *path, const char *auth,
               const char *body, struct httpc_resp *r)
{
    for (int i = 0; i < 100; i++) {
        if (httpc_do(http, method, path, auth, body, r) == 0) {
            return r->status;
        }
        sleep_ms(100);
    }
    fail_msg("%s %s %s: no answer", http, method, path);
    return -1;
}

static int status_of(const char *http, const char *method, const char *path, const char *auth,
                     const char *body)
{
    struct httpc_resp r;
    int s = req(http, method, path, auth, body, &r);
    httpc_free(&r);
    return s;
}

static void load_wait(int n)
{
    assert_int_equal(kwriter_wait(&fx->w, n), 0);
}

/* `laurel ctl` with @args (NULL-terminated, after "ctl"): its exit code. */
static int ctl(const char *const *args)
{
    const char *argv[24];
    int a = 0;
    argv[a++] = fx->eu.bin;
    argv[a++] = "ctl";
    for (int i = 0; args[i] && a < 22; i++) {
        argv[a++] = args[i];
    }
    argv[a] = NULL;
    return testlib_run(argv, fx->log);
}

/* Does router @http's /v1/cluster list region @id? */
static int router_has(const char *http, const char *id)
{
    struct httpc_resp r;
    int found = 0;
    if (req(http, "GET", "/v1/cluster", ADMIN, NULL, &r) == 200) {
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(r.json, "regions"), i, g)
        {
            const char *name = json_string_value(json_object_get(g, "id"));
            found |= name != NULL && strcmp(name, id) == 0;
        }
    }
    httpc_free(&r);
    return found;
}

/* Wait up to @ms for router @http to list region @id: the milliseconds it took, or -1. */
static int wait_router_has(const char *http, const char *id, int ms)
{
    for (int t = 0; t <= ms; t += 50) {
        if (router_has(http, id)) {
            return t;
        }
        sleep_ms(50);
    }
    return -1;
}

/* Does router @http's global top of board reg hold player @id? */
static int top_has(const char *http, const char *id)
{
    struct httpc_resp r;
    int found = 0;
    if (req(http, "GET", "/v1/boards/reg/top?limit=100", "", NULL, &r) == 200) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(r.json, "entries"), i, e)
        {
            const char *p = json_string_value(json_object_get(e, "player_id"));
            found |= p != NULL && strcmp(p, id) == 0;
        }
    }
    httpc_free(&r);
    return found;
}

static pid_t router_spawn(const char *http)
{
    const char *argv[] = {fx->eu.bin,  "router", "--http",     http,          "--region",
                          fx->eu_arg,  "--meta", fx->meta_arg, "--admin-key", ADMIN,
                          "--api-key", API,      NULL};
    pid_t pid = testlib_spawn(argv, fx->log);
    assert_true(pid > 0);
    for (int i = 0; i < 200 && status_of(http, "GET", "/readyz", "", NULL) != 200; i++) {
        sleep_ms(100);
    }
    return pid;
}

static int setup(void **state)
{
    (void)state;
    char *dir = testlib_tmpdir();
    fx = calloc(1, sizeof *fx);
    fx->w = (struct kwriter){.http = fx->http_b,
                             .path = "/v1/boards/reg/scores",
                             .api_key = API,
                             .player = "eu",
                             .key = "r",
                             .nplayers = NPLAYERS};
    assert_int_equal(tcluster_start(&fx->eu, 3, "eu"), 0);
    assert_int_equal(tcluster_start(&fx->meta, 3, "meta"), 0);
    snprintf(fx->log, sizeof fx->log, "%s/routers-and-ctl.log", dir);
    free(dir);
    snprintf(fx->http_a, sizeof fx->http_a, "127.0.0.1:%d", client_free_port());
    snprintf(fx->http_b, sizeof fx->http_b, "127.0.0.1:%d", client_free_port());
    snprintf(fx->eu_arg, sizeof fx->eu_arg, "eu=%s,%s,%s", fx->eu.r[0].rpc, fx->eu.r[1].rpc,
             fx->eu.r[2].rpc);
    snprintf(fx->meta_arg, sizeof fx->meta_arg, "%s,%s,%s", fx->meta.r[0].rpc, fx->meta.r[1].rpc,
             fx->meta.r[2].rpc);
    fx->router_a = router_spawn(fx->http_a);
    fx->router_b = router_spawn(fx->http_b);
    assert_int_equal(status_of(fx->http_a, "PUT", "/v1/boards/reg", ADMIN,
                               "{\"order\":\"desc\",\"operator\":\"incr\"}"),
                     201);
    for (int k = 0; k < NPLAYERS; k++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/players/eu-%d", k);
        assert_int_equal(
            status_of(fx->http_a, "PUT", path, API, "{\"name\":\"E\",\"region\":\"eu\"}"), 201);
    }
    /* The board reaches eu through the catalog carrier: wait for a first write to land. */
    int s = 0;
    for (int i = 0; i < 100 && s != 200; i++) {
        s = status_of(fx->http_b, "POST", "/v1/boards/reg/scores", API,
                      "{\"player_id\":\"eu-0\",\"score\":0,\"idempotency_key\":\"warm-up-0001\"}");
        if (s != 200) {
            sleep_ms(100);
        }
    }
    assert_int_equal(s, 200);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    kwriter_stop(&fx->w);
    if (fx->w.failed) {
        fprintf(stderr, "# %d failed requests; the first: %s\n", fx->w.failed, fx->w.error);
    }
    kill(fx->router_a, SIGTERM);
    kill(fx->router_b, SIGTERM);
    waitpid(fx->router_a, NULL, 0);
    waitpid(fx->router_b, NULL, 0);
    tcluster_stop(&fx->eu);
    tcluster_stop(&fx->meta);
    if (fx->apac_started) {
        tcluster_stop(&fx->apac);
    }
    free(fx);
    return 0;
}

/* Puts that must not enter the list: the replicas named serve another region, or nothing
 * answers; and the admin key is needed. The list stays as it was (router A has no xx). */
static void refused_puts_change_nothing(void **state)
{
    (void)state;
    char body[200];
    snprintf(body, sizeof body, "{\"rpc\":[\"%s\"]}", fx->eu.r[0].rpc);
    assert_int_equal(status_of(fx->http_a, "PUT", "/v1/regions/xx", ADMIN, body), 409);
    snprintf(body, sizeof body, "{\"rpc\":[\"127.0.0.1:%d\"]}", client_free_port());
    assert_int_equal(status_of(fx->http_a, "PUT", "/v1/regions/xx", ADMIN, body), 503);
    assert_int_equal(status_of(fx->http_a, "PUT", "/v1/regions/xx", API, body), 403);
    assert_int_equal(
        status_of(fx->http_a, "PUT", "/v1/regions/xx", ADMIN, "{\"rpc\":[\"no port\"]}"), 400);
    assert_int_equal(status_of(fx->http_a, "PUT", "/v1/regions/xx", ADMIN, "{\"rpc\":[]}"), 400);
    assert_int_equal(status_of(fx->http_a, "PUT", "/v1/regions/meta", ADMIN, body), 400);
    snprintf(body, sizeof body, "{\"rpc\":[\"%s\"],\"extra\":1}", fx->eu.r[0].rpc);
    assert_int_equal(status_of(fx->http_a, "PUT", "/v1/regions/eu", ADMIN, body), 400);
    const char *usage[] = {"region", "add", "apac", NULL}; /* --rpc is required */
    assert_int_equal(ctl(usage), 2);
    sleep_ms(1500); /* a poll of meta's list */
    assert_false(router_has(fx->http_a, "xx"));
    assert_false(router_has(fx->http_b, "xx"));
    /* A player cannot be created in a region no router has. */
    assert_int_equal(status_of(fx->http_b, "PUT", "/v1/players/apac-early", API,
                               "{\"name\":\"A\",\"region\":\"apac\"}") /
                         100,
                     4);
}

static void add_a_region_under_load(void **state)
{
    (void)state;
    char rpc[200];
    assert_int_equal(kwriter_start(&fx->w), 0);
    load_wait(50);

    /* The operator starts the new region's replicas, then adds it through router A. */
    assert_int_equal(tcluster_start(&fx->apac, 3, "apac"), 0);
    fx->apac_started = 1;
    assert_true(tcluster_leader(&fx->apac, T_MS) >= 0);
    snprintf(rpc, sizeof rpc, "%s,%s,%s", fx->apac.r[0].rpc, fx->apac.r[1].rpc, fx->apac.r[2].rpc);
    const char *add[] = {"region",   "add",      "apac",        "--rpc", rpc,
                         "--router", fx->http_a, "--admin-key", ADMIN,   NULL};
    assert_int_equal(ctl(add), 0);
    assert_true(router_has(fx->http_a, "apac"));        /* the router that took the put: at once */
    int ms = wait_router_has(fx->http_b, "apac", 5000); /* the other: from meta's list */
    assert_true(ms >= 0);
    fprintf(stderr, "# router B served apac %d ms after the put\n", ms);
    load_wait(50);

    /* Players are created in it through either router, and the catalog reaches it: a score
     * on board reg (put before apac existed) lands once the carrier has brought the board. */
    assert_int_equal(status_of(fx->http_b, "PUT", "/v1/players/apac-1", API,
                               "{\"name\":\"A1\",\"region\":\"apac\"}"),
                     201);
    assert_int_equal(status_of(fx->http_a, "PUT", "/v1/players/apac-2", API,
                               "{\"name\":\"A2\",\"region\":\"apac\"}"),
                     201);
    int s = 0;
    for (int i = 0; i < 100 && s != 200; i++) {
        s = status_of(fx->http_b, "POST", "/v1/boards/reg/scores", API,
                      "{\"player_id\":\"apac-1\",\"score\":1000000,\"idempotency_key\":"
                      "\"apac-score-1\"}");
        if (s != 200) {
            sleep_ms(100);
        }
    }
    assert_int_equal(s, 200);
    assert_int_equal(status_of(fx->http_a, "POST", "/v1/boards/reg/scores", API,
                               "{\"player_id\":\"apac-2\",\"score\":999999,\"idempotency_key\":"
                               "\"apac-score-2\"}"),
                     200);
    /* The global board of both routers includes the new region's players (a write is
     * acknowledged once committed, and a global top reads every region it has). */
    assert_true(top_has(fx->http_a, "apac-1") && top_has(fx->http_a, "apac-2"));
    assert_true(top_has(fx->http_b, "apac-1") && top_has(fx->http_b, "apac-2"));
    assert_true(top_has(fx->http_b, "eu-0"));
    assert_int_equal(status_of(fx->http_a, "GET", "/v1/boards/reg/top?scope=region:apac", "", NULL),
                     200);
    /* A second put of the same region is a harmless 200. */
    char body[200];
    snprintf(body, sizeof body, "{\"rpc\":[\"%s\",\"%s\",\"%s\"]}", fx->apac.r[0].rpc,
             fx->apac.r[1].rpc, fx->apac.r[2].rpc);
    assert_int_equal(status_of(fx->http_b, "PUT", "/v1/regions/apac", ADMIN, body), 200);
    load_wait(50);
    kwriter_stop(&fx->w);
    assert_int_equal(fx->w.failed, 0);

    /* Every acknowledged write is in eu's scores once, and eu's replicas agree. */
    struct httpc_resp r;
    uint64_t applied, digest;
    assert_int_equal(tcluster_converged(&fx->eu, T_MS, &applied, &digest), 0);
    assert_int_equal(tcluster_converged(&fx->apac, T_MS, &applied, &digest), 0);
    assert_int_equal(
        req(fx->http_a, "GET", "/v1/boards/reg/top?scope=region:eu&limit=100", "", NULL, &r), 200);
    assert_int_equal(kwriter_mismatch(&fx->w, json_object_get(r.json, "entries")), -1);
    httpc_free(&r);
}

/* The list is the cluster's, not a router's: router B restarted with eu alone serves apac
 * again, finds apac's player and puts it in its global board. */
static void a_restarted_router_learns_the_region(void **state)
{
    (void)state;
    kill(fx->router_b, SIGTERM);
    waitpid(fx->router_b, NULL, 0);
    fx->router_b = router_spawn(fx->http_b);
    assert_true(wait_router_has(fx->http_b, "apac", 5000) >= 0);
    struct httpc_resp r;
    assert_int_equal(req(fx->http_b, "GET", "/v1/players/apac-1", "", NULL, &r), 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "region")), "apac");
    httpc_free(&r);
    assert_true(top_has(fx->http_b, "apac-1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refused_puts_change_nothing),
        cmocka_unit_test(add_a_region_under_load),
        cmocka_unit_test(a_restarted_router_learns_the_region),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
