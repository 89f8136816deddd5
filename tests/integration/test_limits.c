/* tests/integration/test_limits.c — the limits of docs/security.md, "Limits", on real
 * processes over loopback: a `laurel node` replica (tests/lib/cluster.h) started with a short
 * idle timeout, and `laurel router` processes started by the test over it with small limits.
 *
 * - a burst of reads past the per-address bucket gets 429 rate_limited with Retry-After, and
 *   reads pass again once the client waited that long; the same for writes per API key, which
 *   leave another key's bucket alone; /metrics counts the refusals;
 * - plain HTTP connections past --http-max-per-ip are closed at accept, and one is accepted
 *   again once another closed;
 * - gets and resumes past their per-WebSocket bounds get rate_limited error events;
 * - a replica closes an RPC connection idle past --rpc-idle-s, and a router over it (whose
 *   pooled connection the replica may close the same way) serves after an idle spell;
 * - a replica closes an RPC connection past --rpc-max-conns at accept.
 *
 * Nothing here asserts how fast anything is: waits are "at least", deadlines generous. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/client.h"
#include "tests/lib/cluster.h"
#include "tests/lib/httpc.h"
#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"

#define ADMIN "limits-admin-key"
#define API "limits-api-key-0123" /* keys are 16 to 255 bytes (router/keyset.h) */

struct fixture {
    struct tcluster c;
};

static struct fixture *fx;

/* A `laurel router` over fx->c with @extra flags (NULL-terminated), ready (its /readyz 200)
 * at @http. @return its pid, or -1. */
static pid_t router_start(const char *const *extra, char *http, size_t cap)
{
    char region[64], log[700];
    const char *argv[32];
    int a = 0;
    snprintf(http, cap, "127.0.0.1:%d", client_free_port());
    snprintf(region, sizeof region, "%s=%s", fx->c.region, fx->c.r[0].rpc);
    argv[a++] = fx->c.bin;
    argv[a++] = "router";
    argv[a++] = "--http";
    argv[a++] = http;
    argv[a++] = "--region";
    argv[a++] = region;
    argv[a++] = "--admin-key";
    argv[a++] = ADMIN;
    argv[a++] = "--api-key";
    argv[a++] = API;
    for (int i = 0; extra[i] && a < 31; i++) {
        argv[a++] = extra[i];
    }
    argv[a] = NULL;
    snprintf(log, sizeof log, "%s/router-%s.log", fx->c.dir, http);
    pid_t pid = testlib_spawn(argv, log);
    for (int waited = 0; pid > 0 && waited < 15000; waited += 100) {
        struct httpc_resp r;
        if (httpc_do(http, "GET", "/readyz", "", NULL, &r) == 0) {
            int s = r.status;
            httpc_free(&r);
            if (s == 200) {
                return pid;
            }
        }
        tdev_sleep_ms(100);
    }
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return -1;
}

static void router_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* A TCP connection to "127.0.0.1:PORT" @addr, or -1. */
static int tcp_open(const char *addr)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    const char *colon = strrchr(addr, ':');
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* 1 when the peer closes @fd (EOF or reset) within @ms, 0 when it is still open. */
static int tcp_closed_within(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    char b[256];
    if (poll(&p, 1, ms) <= 0) {
        return 0;
    }
    ssize_t n = recv(fd, b, sizeof b, 0);
    return n <= 0;
}

/* The Retry-After of @r in seconds, or -1 when it has none. */
static int retry_after(const struct httpc_resp *r)
{
    const char *h = strcasestr(r->headers, "\r\nRetry-After:");
    return h ? atoi(h + 14) : -1;
}

/* The sum of the samples of /metrics at @http whose line starts with @prefix, or -1. */
static long long metric_sum(const char *http, const char *prefix)
{
    struct httpc_resp r;
    long long sum = -1;
    if (httpc_do(http, "GET", "/metrics", "", NULL, &r) != 0) {
        return -1;
    }
    for (const char *p = r.body; p && (p = strstr(p, prefix)) != NULL; p++) {
        if (p == r.body || p[-1] == '\n') {
            const char *sp = strchr(p, ' ');
            sum = (sum < 0 ? 0 : sum) + (sp ? atoll(sp + 1) : 0);
        }
    }
    httpc_free(&r);
    return sum;
}

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    if (fx == NULL || tcluster_init_on(&fx->c, 1, "na", "127.0.0.1") != 0) {
        return -1;
    }
    fx->c.args[fx->c.nargs++] = "--rpc-idle-s";
    fx->c.args[fx->c.nargs++] = "1";
    if (tcluster_spawn(&fx->c, 0) != 0 || tcluster_leader(&fx->c, 15000) < 0) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tcluster_stop(&fx->c);
    free(fx);
    return 0;
}

/* Reads past the per-address bucket get 429 rate_limited with Retry-After; after waiting that
 * long a read passes again; /metrics counts the refusal, and /metrics itself is never
 * limited. */
static void reads_past_the_bucket_get_429(void **state)
{
    (void)state;
    static const char *const extra[] = {"--limit-addr-reads", "1/3", NULL};
    char http[32];
    pid_t pid = router_start(extra, http, sizeof http);
    assert_true(pid > 0);
    struct httpc_resp r;
    int limited = 0, wait_s = -1;
    /* The bucket holds 3 and refills 1 a second: reads in a row soon find it empty. */
    for (int i = 0; i < 100 && limited == 0; i++) {
        assert_int_equal(httpc_do(http, "GET", "/v1/games/no-such-game", "", NULL, &r), 0);
        if (r.status == 429) {
            tdev_assert_error(&r, 429, "rate_limited", "a read past the bucket");
            wait_s = retry_after(&r);
            limited++;
        } else {
            assert_int_equal(r.status, 404);
        }
        httpc_free(&r);
    }
    assert_true(limited >= 1);
    assert_true(wait_s >= 1);
    tdev_sleep_ms(wait_s * 1000 + 200);
    assert_int_equal(httpc_do(http, "GET", "/v1/games/no-such-game", "", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    httpc_free(&r);
    /* Monitoring is never limited, so this reads the counter even with the bucket empty. */
    assert_true(metric_sum(http, "laurel_router_rate_limited_total{limit=\"addr_reads\"}") >=
                limited);
    assert_int_equal(metric_sum(http, "laurel_router_rate_limited_total{limit=\"key_writes\"}"), 0);
    router_stop(pid);
}

/* Writes past one API key's bucket get 429 with Retry-After while another key's writes pass;
 * after waiting, the first key writes again. */
static void writes_past_a_keys_bucket_get_429(void **state)
{
    (void)state;
    static const char *const extra[] = {"--limit-key-writes", "1/2", NULL};
    char http[32];
    pid_t pid = router_start(extra, http, sizeof http);
    assert_true(pid > 0);
    struct httpc_resp r;
    int limited = 0, wait_s = -1;
    for (int i = 0; i < 100 && limited == 0; i++) {
        /* An invalid write still takes a token: the limit runs before the body is read. */
        assert_int_equal(httpc_do(http, "POST", "/v1/unlocks", API, "{}", &r), 0);
        if (r.status == 429) {
            tdev_assert_error(&r, 429, "rate_limited", "a write past the key's bucket");
            wait_s = retry_after(&r);
            limited++;
        } else {
            assert_int_equal(r.status, 400);
        }
        httpc_free(&r);
    }
    assert_true(limited >= 1);
    assert_true(wait_s >= 1);
    /* The admin key has a bucket of its own. */
    assert_int_equal(httpc_do(http, "POST", "/v1/unlocks", ADMIN, "{}", &r), 0);
    assert_int_equal(r.status, 400);
    httpc_free(&r);
    tdev_sleep_ms(wait_s * 1000 + 200);
    assert_int_equal(httpc_do(http, "POST", "/v1/unlocks", API, "{}", &r), 0);
    assert_int_equal(r.status, 400);
    httpc_free(&r);
    assert_true(metric_sum(http, "laurel_router_rate_limited_total{limit=\"key_writes\"}") >=
                limited);
    router_stop(pid);
}

/* Past --http-max-per-ip open connections, the next is closed at accept without an answer;
 * once one of them closes, a new connection is served. */
static void http_connections_past_the_cap_are_closed(void **state)
{
    (void)state;
    static const char *const extra[] = {"--http-max-per-ip", "3", NULL};
    char http[32], out[512];
    static const char get[] = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    pid_t pid = router_start(extra, http, sizeof http);
    assert_true(pid > 0);
    int held[3];
    for (int i = 0; i < 3; i++) {
        held[i] = tcp_open(http);
        assert_true(held[i] >= 0);
    }
    /* The router may not have accepted the three yet: it counts them when it does, so try
     * until a fourth is refused (each try closes at once when refused). */
    int refused = 0;
    for (int tries = 0; tries < 50 && !refused; tries++) {
        int fd = tcp_open(http);
        assert_true(fd >= 0); /* the kernel completes the handshake; the router closes */
        refused = tcp_closed_within(fd, 2000);
        close(fd);
    }
    assert_true(refused);
    close(held[0]);
    /* Served again once the router has seen that close. */
    long got = 0;
    for (int tries = 0; tries < 50 && got <= 0; tries++) {
        got = httpc_raw(http, get, sizeof get - 1, out, sizeof out, 2000);
        if (got <= 0) {
            tdev_sleep_ms(100);
        }
    }
    assert_true(got > 12);
    assert_memory_equal(out, "HTTP/1.1 200", 12);
    close(held[1]);
    close(held[2]);
    long long n = -1;
    for (int tries = 0; tries < 50 && n < 0; tries++) {
        n = metric_sum(http, "laurel_http_connections_refused_total{reason=\"per_ip\"}");
        if (n < 0) {
            tdev_sleep_ms(100);
        }
    }
    assert_true(n >= 1);
    router_stop(pid);
}

/* A replica closes a client connection that sent nothing past --rpc-idle-s; the router's
 * pooled connections it closed that way reconnect on the next request. */
static void idle_rpc_connections_close_and_the_router_reconnects(void **state)
{
    (void)state;
    static const char *const extra[] = {NULL};
    char http[32];
    int fd = tcp_open(fx->c.r[0].rpc);
    assert_true(fd >= 0);
    /* Idle 1 s, checked once a second: closed within a few seconds. */
    assert_true(tcp_closed_within(fd, 10000));
    close(fd);
    pid_t pid = router_start(extra, http, sizeof http);
    assert_true(pid > 0);
    struct httpc_resp r;
    assert_int_equal(httpc_do(http, "GET", "/v1/players/nobody", "", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    httpc_free(&r);
    long long before = metric_sum(http, "laurel_rpc_idle_closes_total{");
    assert_true(before >= 1); /* the raw connection above */
    /* The router asks the leader for its membership every second (router/upstream.c), so its
     * pooled connection to a lone replica is seldom idle for the whole second the replica
     * allows: whether the replica closed it as idle in these 3.5 s depends on how the two
     * timers fall. Either way the next request is served, on the same connection or on a new
     * one. */
    tdev_sleep_ms(3500);
    assert_int_equal(httpc_do(http, "GET", "/v1/players/nobody-else", "", NULL, &r), 0);
    assert_int_equal(r.status, 404);
    httpc_free(&r);
    assert_true(metric_sum(http, "laurel_rpc_idle_closes_total{") >= before);
    /* The router's event stream is a subscription: never closed as idle, still on its first
     * connection. */
    assert_int_equal(metric_sum(http, "laurel_ws_stream_connects_total{"), 1);
    router_stop(pid);
}

/* Run tests/ws_client.py's command @cmd and return the first line it prints that is a JSON
 * object with member @key (owned; NULL when none came). */
static json_t *ws_client_report(const char *cmd, const char *key)
{
    char line[1024];
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    json_t *report = NULL;
    while (report == NULL && fgets(line, sizeof line, p) != NULL) {
        json_t *j = json_loads(line, 0, NULL);
        if (j && json_object_get(j, key)) {
            report = j;
        } else {
            json_decref(j);
        }
    }
    pclose(p);
    return report;
}

/* Gets sent back to back on one WebSocket past --ws-max-gets in flight get an error event
 * rate_limited each, the others their response, and the connection stays open throughout. */
static void ws_gets_past_the_bound_get_errors(void **state)
{
    (void)state;
    static const char *const extra[] = {"--ws-max-gets", "1", NULL};
    char http[32], cmd[1024];
    pid_t pid = router_start(extra, http, sizeof http);
    assert_true(pid > 0);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/tests/ws_client.py gets ws://%s/v1/ws 20 /v1/players/x",
             LAUREL_SRC, http);
    json_t *report = ws_client_report(cmd, "responses");
    assert_non_null(report);
    json_int_t responses = json_integer_value(json_object_get(report, "responses"));
    json_int_t limited = json_integer_value(json_object_get(report, "limited"));
    assert_int_equal(json_integer_value(json_object_get(report, "other")), 0);
    assert_int_equal(responses + limited, 20);
    assert_true(responses >= 1); /* the first always goes through */
    assert_true(limited >= 1);   /* 19 more sent before its answer could come back */
    json_decref(report);
    assert_true(metric_sum(http, "laurel_ws_ops_refused_total{op=\"get\"}") == limited);
    router_stop(pid);
}

/* Resumes sent back to back on one WebSocket past --ws-max-resumes replaying get an error
 * event rate_limited each; every subscription itself stands, and the connection stays open. */
static void ws_resumes_past_the_bound_get_errors(void **state)
{
    (void)state;
    static const char *const extra[] = {"--ws-max-resumes", "1", NULL};
    char http[32], cmd[1024];
    char body[128], metric[96];
    struct httpc_resp r;
    pid_t pid = router_start(extra, http, sizeof http);
    assert_true(pid > 0);
    /* A resume replays only what the router's stream has delivered already (a resume from
     * its present is a no-op): a rename gives the region an event, then wait until the
     * stream has passed it. */
    for (int i = 0; i < 2; i++) {
        snprintf(body, sizeof body, "{\"name\":\"n%d\",\"region\":\"%s\"}", i, fx->c.region);
        assert_int_equal(httpc_do(http, "PUT", "/v1/players/resumer", API, body, &r), 0);
        assert_true(r.status == 200 || r.status == 201);
        httpc_free(&r);
    }
    snprintf(metric, sizeof metric, "laurel_ws_stream_index{region=\"%s\"}", fx->c.region);
    for (int tries = 0; tries < 100 && metric_sum(http, metric) <= 0; tries++) {
        tdev_sleep_ms(50);
    }
    assert_true(metric_sum(http, metric) > 0);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/tests/ws_client.py resumes ws://%s/v1/ws 20 %s player:resumer",
             LAUREL_SRC, http, fx->c.region);
    json_t *report = ws_client_report(cmd, "subscribed");
    assert_non_null(report);
    json_int_t limited = json_integer_value(json_object_get(report, "limited"));
    assert_int_equal(json_integer_value(json_object_get(report, "subscribed")), 20);
    assert_int_equal(json_integer_value(json_object_get(report, "other")), 0);
    /* The first replay is a stream from a replica, still open when the next 19 messages,
     * sent in the same burst, arrive. */
    assert_true(limited >= 1);
    assert_true(limited <= 19);
    json_decref(report);
    assert_true(metric_sum(http, "laurel_ws_ops_refused_total{op=\"resume\"}") == limited);
    router_stop(pid);
}

/* Past --rpc-max-conns, a replica closes a new connection at accept; once one closes, a new
 * connection is served. */
static void rpc_connections_past_the_cap_are_closed(void **state)
{
    (void)state;
    struct tcluster c;
    assert_int_equal(tcluster_init_on(&c, 1, "eu", "127.0.0.1"), 0);
    c.args[c.nargs++] = "--rpc-max-conns";
    c.args[c.nargs++] = "2";
    assert_int_equal(tcluster_spawn(&c, 0), 0);
    assert_true(tcluster_leader(&c, 15000) >= 0);
    int held[2];
    for (int i = 0; i < 2; i++) {
        held[i] = tcp_open(c.r[0].rpc);
        assert_true(held[i] >= 0);
    }
    int refused = 0;
    for (int tries = 0; tries < 50 && !refused; tries++) {
        int fd = tcp_open(c.r[0].rpc);
        assert_true(fd >= 0);
        refused = tcp_closed_within(fd, 2000);
        close(fd);
    }
    assert_true(refused);
    close(held[0]);
    close(held[1]);
    uint64_t applied, digest;
    char role[16];
    int ok = -1;
    for (int tries = 0; tries < 50 && ok != 0; tries++) {
        ok = tcluster_status(&c, 0, &applied, &digest, role, sizeof role);
        if (ok != 0) {
            tdev_sleep_ms(100);
        }
    }
    assert_int_equal(ok, 0);
    tcluster_stop(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_past_the_bucket_get_429),
        cmocka_unit_test(writes_past_a_keys_bucket_get_429),
        cmocka_unit_test(http_connections_past_the_cap_are_closed),
        cmocka_unit_test(ws_gets_past_the_bound_get_errors),
        cmocka_unit_test(ws_resumes_past_the_bound_get_errors),
        cmocka_unit_test(idle_rpc_connections_close_and_the_router_reconnects),
        cmocka_unit_test(rpc_connections_past_the_cap_are_closed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
