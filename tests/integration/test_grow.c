/* tests/integration/test_grow.c — online growth under load (docs/operations.md, "Growing a
 * cluster"): a real `laurel router` over region eu (three real replicas that snapshot every
 * few entries) and the metadata group, and a writer thread that sends `incr` +1 scores
 * through the router without pause, each with its own idempotency key, recording every
 * acknowledged one. Meanwhile the test grows and shrinks eu with `laurel ctl add` and
 * `laurel ctl remove`, as an operator would. No request may fail: the router follows the
 * membership (router/upstream.c, "Membership"), so it never loses its path to the region.
 * Afterwards every acknowledged write is in the region's scores, once, and every running
 * replica has the same applied index and digest. */
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

#define ADMIN "grow-admin-key-0123456"
#define API "grow-api-key-045678901"
#define NPLAYERS 8
#define T_MS 20000

struct fixture {
    struct tcluster eu, meta;
    char http[32];
    pid_t router;
    char log[600];
    struct kwriter w; /* the steady write load (tests/lib/kwriter.h) */
};

static struct fixture *fx;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int req(const char *method, const char *path, const char *auth, const char *body,
               struct httpc_resp *r)
{
    for (int i = 0; i < 50; i++) {
        if (httpc_do(fx->http, method, path, auth, body, r) == 0) {
            return r->status;
        }
        sleep_ms(100);
    }
    fail_msg("%s %s: no answer", method, path);
    return -1;
}

static int status_of(const char *method, const char *path, const char *auth, const char *body)
{
    struct httpc_resp r;
    int s = req(method, path, auth, body, &r);
    httpc_free(&r);
    return s;
}

static void load_start(void)
{
    assert_int_equal(kwriter_start(&fx->w), 0);
}

/* Wait until @n more writes are acknowledged (the load is really flowing). */
static void load_wait(int n)
{
    assert_int_equal(kwriter_wait(&fx->w, n), 0);
}

static void load_stop(void)
{
    kwriter_stop(&fx->w);
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

static void ctl_add(unsigned j)
{
    char id[16];
    int l = tcluster_leader(&fx->eu, T_MS);
    assert_true(l >= 0);
    snprintf(id, sizeof id, "%llu", (unsigned long long)fx->eu.r[j].id);
    const char *args[] = {
        "add",           "--rpc",         fx->eu.r[l].rpc, "--id",  id,  "--raft", fx->eu.r[j].raft,
        "--replica-rpc", fx->eu.r[j].rpc, "--timeout-ms",  "30000", NULL};
    assert_int_equal(ctl(args), 0);
}

static void ctl_remove(unsigned j)
{
    char id[16];
    int l = tcluster_leader(&fx->eu, T_MS);
    assert_true(l >= 0);
    snprintf(id, sizeof id, "%llu", (unsigned long long)fx->eu.r[j].id);
    const char *args[] = {"remove", "--rpc",        fx->eu.r[l].rpc, "--id",
                          id,       "--timeout-ms", "30000",         NULL};
    assert_int_equal(ctl(args), 0);
}

/* Does /v1/cluster show replica @rpc of eu? */
static int router_lists(const char *rpc)
{
    struct httpc_resp r;
    int found = 0;
    if (req("GET", "/v1/cluster", ADMIN, NULL, &r) == 200) {
        size_t i, k;
        json_t *g, *rep;
        json_array_foreach(json_object_get(r.json, "regions"), i, g)
        {
            json_array_foreach(json_object_get(g, "replicas"), k, rep)
            {
                const char *a = json_string_value(json_object_get(rep, "address"));
                found |= a != NULL && strcmp(a, rpc) == 0;
            }
        }
    }
    httpc_free(&r);
    return found;
}

static void wait_router_lists(const char *rpc, int want)
{
    int ok = 0;
    for (int i = 0; i < 200 && !ok; i++) {
        ok = router_lists(rpc) == want;
        if (!ok) {
            sleep_ms(50);
        }
    }
    assert_true(ok);
}

/* A follower of eu, or -1. */
static int follower(void)
{
    int l = tcluster_leader(&fx->eu, T_MS);
    for (unsigned i = 0; i < fx->eu.n; i++) {
        if ((int)i != l && fx->eu.r[i].pid != 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Every acknowledged write is in eu's scores exactly once, and every running replica agrees. */
static void check_writes(void)
{
    struct httpc_resp r;
    uint64_t applied, digest;
    assert_int_equal(tcluster_converged(&fx->eu, T_MS, &applied, &digest), 0);
    assert_int_equal(req("GET", "/v1/boards/grow/top?scope=region:eu&limit=100", "", NULL, &r),
                     200);
    assert_int_equal(kwriter_mismatch(&fx->w, json_object_get(r.json, "entries")), -1);
    httpc_free(&r);
}

static int setup(void **state)
{
    (void)state;
    char eu[256], meta[256];
    char *dir = testlib_tmpdir();
    fx = calloc(1, sizeof *fx);
    fx->w = (struct kwriter){.http = fx->http,
                             .path = "/v1/boards/grow/scores",
                             .api_key = API,
                             .player = "grow",
                             .key = "g",
                             .nplayers = NPLAYERS};
    /* Snapshots every 64 entries, 16 kept behind: a replica that joins late must install one. */
    assert_int_equal(tcluster_start_snapshots(&fx->eu, 3, "eu", 64, 16), 0);
    assert_int_equal(tcluster_start(&fx->meta, 3, "meta"), 0);
    snprintf(fx->log, sizeof fx->log, "%s/router-and-ctl.log", dir);
    free(dir);
    snprintf(fx->http, sizeof fx->http, "127.0.0.1:%d", client_free_port());
    snprintf(eu, sizeof eu, "eu=%s,%s,%s", fx->eu.r[0].rpc, fx->eu.r[1].rpc, fx->eu.r[2].rpc);
    snprintf(meta, sizeof meta, "%s,%s,%s", fx->meta.r[0].rpc, fx->meta.r[1].rpc,
             fx->meta.r[2].rpc);
    const char *argv[] = {fx->eu.bin,  "router", "--http", fx->http,      "--region",
                          eu,          "--meta", meta,     "--admin-key", ADMIN,
                          "--api-key", API,      NULL};
    fx->router = testlib_spawn(argv, fx->log);
    assert_true(fx->router > 0);
    for (int i = 0; i < 200 && status_of("GET", "/readyz", "", NULL) != 200; i++) {
        sleep_ms(100);
    }
    assert_int_equal(
        status_of("PUT", "/v1/boards/grow", ADMIN, "{\"order\":\"desc\",\"operator\":\"incr\"}"),
        201);
    for (int k = 0; k < NPLAYERS; k++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/players/grow-%d", k);
        assert_int_equal(status_of("PUT", path, API, "{\"name\":\"G\",\"region\":\"eu\"}"), 201);
    }
    assert_int_equal(
        status_of("PUT", "/v1/players/grow-warm", API, "{\"name\":\"W\",\"region\":\"eu\"}"), 201);
    /* The board reaches eu through the catalog carrier: wait for a first write to land. */
    int s = 0;
    for (int i = 0; i < 100 && s != 200; i++) {
        s = status_of(
            "POST", "/v1/boards/grow/scores", API,
            "{\"player_id\":\"grow-warm\",\"score\":1,\"idempotency_key\":\"warm-up-0001\"}");
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
    kill(fx->router, SIGTERM);
    waitpid(fx->router, NULL, 0);
    tcluster_stop(&fx->eu);
    tcluster_stop(&fx->meta);
    free(fx);
    return 0;
}

/* Under load, a fourth replica joins (ctl add) and an original one leaves (ctl remove): the
 * router learns the new replica's address, stops using the removed one, and no request
 * fails. */
static void add_then_remove_a_replica_under_load(void **state)
{
    (void)state;
    load_start();
    load_wait(50);
    unsigned j = tcluster_add_replica(&fx->eu);
    assert_int_equal(tcluster_spawn(&fx->eu, j), 0);
    ctl_add(j);
    wait_router_lists(fx->eu.r[j].rpc, 1); /* the router learnt it: no restart */
    load_wait(50);
    int f = follower();
    assert_true(f >= 0 && (unsigned)f != j);
    char gone[32];
    snprintf(gone, sizeof gone, "%s", fx->eu.r[f].rpc);
    ctl_remove((unsigned)f);
    tcluster_kill(&fx->eu, (unsigned)f, SIGTERM);
    wait_router_lists(gone, 0);
    load_wait(100);
    load_stop();
    assert_int_equal(fx->w.failed, 0);
    check_writes();
}

/* Under load, a follower dies with its disk (kill -9, data deleted); the operator removes it
 * and adds a new replica under a new id, which catches up by installing a snapshot. */
static void replace_a_dead_replica_under_load(void **state)
{
    (void)state;
    load_start();
    load_wait(50);
    int f = follower();
    assert_true(f >= 0);
    tcluster_kill(&fx->eu, (unsigned)f, SIGKILL);
    char cmd[700];
    testlib_rmrf(fx->eu.r[f].data);
    ctl_remove((unsigned)f);
    load_wait(200); /* well past the snapshot threshold: the log the new one needs is gone */
    unsigned j = tcluster_add_replica(&fx->eu);
    assert_int_equal(tcluster_spawn(&fx->eu, j), 0);
    ctl_add(j);
    wait_router_lists(fx->eu.r[j].rpc, 1);
    load_wait(100);
    load_stop();
    assert_int_equal(fx->w.failed, 0);
    check_writes();
    /* It caught up from a snapshot: raft keeps the one it installed in its log directory. */
    snprintf(cmd, sizeof cmd, "ls '%s'/raft/snapshot-* >/dev/null 2>&1", fx->eu.r[j].data);
    assert_int_equal(system(cmd), 0);
}

/* Under load, the operator retires the leader: leadership moves away (ctl transfer), then the
 * old leader is removed. Writes the old leader had not committed are retried by the router on
 * the new one, so no request fails. */
static void retire_the_leader_under_load(void **state)
{
    (void)state;
    load_start();
    load_wait(50);
    int l = tcluster_leader(&fx->eu, T_MS);
    assert_true(l >= 0);
    const char *args[] = {"transfer", "--rpc", fx->eu.r[l].rpc, "--timeout-ms", "30000", NULL};
    assert_int_equal(ctl(args), 0);
    int now = l;
    for (int i = 0; i < 400 && now == l; i++) {
        now = tcluster_leader(&fx->eu, T_MS);
        sleep_ms(25);
    }
    assert_true(now >= 0 && now != l);
    load_wait(50);
    char gone[32];
    snprintf(gone, sizeof gone, "%s", fx->eu.r[l].rpc);
    ctl_remove((unsigned)l);
    tcluster_kill(&fx->eu, (unsigned)l, SIGTERM);
    wait_router_lists(gone, 0);
    load_wait(100);
    load_stop();
    assert_int_equal(fx->w.failed, 0);
    check_writes();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(add_then_remove_a_replica_under_load),
        cmocka_unit_test(replace_a_dead_replica_under_load),
        cmocka_unit_test(retire_the_leader_under_load),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
