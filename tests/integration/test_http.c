/* tests/integration/test_http.c — the router's HTTP server over loopback: requests reach the
 * handler whole, answers go back now or later, limits answer 413 or close, and nothing a
 * client sends (garbage, oversized bodies, stalls, hang-ups) stops it from serving others.
 *
 * The server runs on the test's uv loop in the main thread; each scenario's client runs in a
 * second thread with blocking sockets and wakes the loop through a uv_async when it is done.
 * Client threads only record what they saw: assertions run in the main thread afterwards.
 *
 * One binary, three files (test_http_int.h): this one holds the handler, the fixture, the
 * blocking client, the assertions and main; test_http_requests.c the scenarios of requests as
 * they should be, test_http_limits.c those of limits, garbage, stalls and stopping. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto/client.h"
#include "router/http.h"
#include "tests/lib/testlib.h"
#include "test_http_int.h"

/* ---- the handler (loop thread) -------------------------------------------------------------- */

static void reply_json(struct http_req *req, int status, json_t *j, const char *extra)
{
    char *s = json_dumps(j, JSON_COMPACT);
    assert_non_null(s);
    http_reply(req, status, s, strlen(s), extra);
    free(s);
    json_decref(j);
}

uint32_t byte_sum(const char *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) {
        s = s * 31 + (unsigned char)p[i];
    }
    return s;
}

struct later {
    uv_timer_t t;
    struct fixture *f;
    struct http_req *req;
};

static void later_closed(uv_handle_t *h)
{
    free(h->data);
}

static void later_fire(uv_timer_t *t)
{
    struct later *l = t->data;
    if (!http_req_alive(l->req)) {
        l->f->later_dead++;
    }
    reply_json(l->req, 200, json_pack("{s:b}", "later", 1), NULL);
    uv_close((uv_handle_t *)t, later_closed);
}

void stopped(void *data)
{
    ((struct fixture *)data)->stopped = 1;
}

static void stop_fire(uv_timer_t *t)
{
    struct fixture *f = t->data;
    http_stop(f->http, stopped, f);
    f->http = NULL;
    uv_close((uv_handle_t *)t, NULL);
}

void handler(void *data, struct http_req *req)
{
    struct fixture *f = data;
    f->requests++;
    if (strcmp(req->path, "/echo") == 0) {
        reply_json(req, 200,
                   json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "method", http_method_name(req->method),
                             "path", req->path, "query", req->query, "auth", req->auth, "body_len",
                             (json_int_t)req->body_len, "body_sum",
                             (json_int_t)byte_sum(req->body, req->body_len)),
                   NULL);
    } else if (strcmp(req->path, "/later") == 0) {
        struct later *l = calloc(1, sizeof *l);
        l->f = f;
        l->req = req;
        l->t.data = l;
        uv_timer_init(&f->loop, &l->t);
        uv_timer_start(&l->t, later_fire, 50, 0);
    } else if (strcmp(req->path, "/status/503") == 0) {
        reply_json(req, 503, json_pack("{s:{s:s}}", "error", "code", "unavailable"),
                   "Retry-After: 1\r\n");
    } else if (strcmp(req->path, "/big") == 0) {
        size_t n = (size_t)atol(req->query + 2); /* "n=<bytes>" */
        char *s = malloc(n + 1);
        memset(s, 'x', n);
        s[n] = '\0';
        reply_json(req, 200, json_pack("{s:s}", "big", s), NULL);
        free(s);
    } else if (strcmp(req->path, "/unanswered") == 0) {
        f->held = req; /* until the test ends */
    } else if (strcmp(req->path, "/hold") == 0) {
        /* Keep it unanswered and stop the server under it. */
        f->held = req;
        uv_timer_init(&f->loop, &f->stop_timer);
        f->stop_timer.data = f;
        uv_timer_start(&f->stop_timer, stop_fire, 20, 0);
    } else {
        reply_json(req, 404, json_pack("{s:{s:s}}", "error", "code", "not_found"), NULL);
    }
}

/* ---- fixture -------------------------------------------------------------------------------- */

static void woken(uv_async_t *a)
{
    ((struct fixture *)a->data)->client_done = 1;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char addr[32], errmsg[LR_ERRMSG_SIZE];
    /* LAUREL_LWS_LOG=15 shows lws' own account (errors, warnings, notices, info). */
    lws_set_log_level(getenv("LAUREL_LWS_LOG") ? atoi(getenv("LAUREL_LWS_LOG")) : LLL_ERR, NULL);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_async_init(&f->loop, &f->wake, woken);
    f->wake.data = f;
    f->port = client_free_port();
    assert_true(f->port > 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f->port);
    assert_int_equal(http_start(&f->loop, addr, handler, f, &f->http, errmsg), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (f->http) {
        http_stop(f->http, stopped, f);
    }
    while (!f->stopped) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&f->wake, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

/* Run @fn in a client thread while the loop serves; return when it is done. */
struct run {
    struct fixture *f;
    void (*fn)(struct fixture *f, void *arg);
    void *arg;
};

static void *run_thread(void *p)
{
    struct run *r = p;
    r->fn(r->f, r->arg);
    uv_async_send(&r->f->wake);
    return NULL;
}

void run_client(struct fixture *f, void (*fn)(struct fixture *, void *), void *arg)
{
    struct run r = {f, fn, arg};
    pthread_t th;
    f->client_done = 0;
    assert_int_equal(pthread_create(&th, NULL, run_thread, &r), 0);
    while (!f->client_done) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    pthread_join(th, NULL);
}

/* ---- a blocking HTTP client (client thread) -------------------------------------------------- */

uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int conn_open(struct conn *c, int port)
{
    struct sockaddr_in sa;
    struct timeval tv = {15, 0};
    int one = 1;
    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        return -1;
    }
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return 0;
}

void conn_close(struct conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

int conn_send(struct conn *c, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

int conn_sendf(struct conn *c, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return conn_send(c, buf, (size_t)n);
}

/* Read more into the buffer: >0 bytes, 0 on EOF, <0 on error or timeout. */
static ssize_t conn_fill(struct conn *c)
{
    if (c->len == sizeof c->buf) {
        return -1;
    }
    ssize_t n;
    do {
        n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
        c->len += (size_t)n;
    }
    return n;
}

static void conn_consume(struct conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* The header's value in @r (case-insensitive name), or NULL. */
const char *resp_header(const struct resp *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line && line[2];
         line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, nl) == 0 && l[nl] == ':') {
            const char *v = l + nl + 1, *e = strstr(v, "\r\n");
            while (*v == ' ') {
                v++;
            }
            size_t n = e ? (size_t)(e - v) : strlen(v);
            n = n < cap - 1 ? n : cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
    }
    return NULL;
}

/* Read one response (to a HEAD request if @head: no body follows). @return 0, or -1 if the
 * connection closed or timed out first. */
int conn_recv_for(struct conn *c, struct resp *r, int head)
{
    char *eoh;
    char cl[32];
    memset(r, 0, sizeof *r);
    while ((eoh = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL) {
        if (conn_fill(c) <= 0) {
            return -1;
        }
    }
    size_t hl = (size_t)(eoh - c->buf) + 4;
    if (hl >= sizeof r->head || sscanf(c->buf, "HTTP/1.%*d %d", &r->status) != 1) {
        return -1;
    }
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    conn_consume(c, hl);
    r->body_len = resp_header(r, "content-length", cl, sizeof cl) && !head ? (size_t)atol(cl) : 0;
    r->body = malloc(r->body_len + 1);
    size_t got = 0;
    while (got < r->body_len) {
        if (c->len == 0 && conn_fill(c) <= 0) {
            resp_free(r);
            r->status = 0;
            return -1;
        }
        size_t n = c->len < r->body_len - got ? c->len : r->body_len - got;
        memcpy(r->body + got, c->buf, n);
        got += n;
        conn_consume(c, n);
    }
    r->body[r->body_len] = '\0';
    return 0;
}

int conn_recv(struct conn *c, struct resp *r)
{
    return conn_recv_for(c, r, 0);
}

/* Wait until the server closes @c: the milliseconds it took, or -1 after @timeout_ms. Bytes
 * the server sends meanwhile are dropped. */
long conn_wait_closed(struct conn *c, int timeout_ms)
{
    uint64_t t0 = now_ms();
    for (;;) {
        long left = timeout_ms - (long)(now_ms() - t0);
        struct pollfd p = {c->fd, POLLIN, 0};
        if (left <= 0) {
            return -1;
        }
        if (poll(&p, 1, (int)left) <= 0) {
            continue;
        }
        c->len = 0;
        ssize_t n = recv(c->fd, c->buf, sizeof c->buf, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
            return (long)(now_ms() - t0);
        }
    }
}

/* One request on a fresh connection. */
int fetch(int port, const char *req, size_t len, struct resp *r)
{
    struct conn *c = malloc(sizeof *c);
    int rv = conn_open(c, port) == 0 && conn_send(c, req, len) == 0 ? conn_recv(c, r) : -1;
    conn_close(c);
    free(c);
    return rv;
}

int fetch_echo(int port, struct resp *r)
{
    static const char req[] = "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n";
    return fetch(port, req, sizeof req - 1, r);
}

/* ---- assertions (main thread) --------------------------------------------------------------- */

static json_t *resp_json(const struct resp *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->body_len, 0, &e);
    assert_non_null(j);
    return j;
}

void assert_echo(const struct resp *r, const char *method, const char *path, const char *query,
                 const char *auth, size_t body_len, uint32_t sum)
{
    char ct[64];
    assert_int_equal(r->status, 200);
    assert_non_null(resp_header(r, "content-type", ct, sizeof ct));
    assert_string_equal(ct, "application/json");
    json_t *j = resp_json(r);
    assert_string_equal(json_string_value(json_object_get(j, "method")), method);
    assert_string_equal(json_string_value(json_object_get(j, "path")), path);
    assert_string_equal(json_string_value(json_object_get(j, "query")), query);
    assert_string_equal(json_string_value(json_object_get(j, "auth")), auth);
    assert_int_equal(json_integer_value(json_object_get(j, "body_len")), body_len);
    assert_int_equal(json_integer_value(json_object_get(j, "body_sum")), sum);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(get_carries_path_query_and_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(bodies_arrive_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(keepalive_carries_several_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(later_answers_go_out, setup, teardown),
        cmocka_unit_test_setup_teardown(extra_headers_go_out, setup, teardown),
        cmocka_unit_test_setup_teardown(large_answer_goes_out_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(body_over_limit_gets_413, setup, teardown),
        cmocka_unit_test_setup_teardown(protocol_corners, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_closes_the_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_leaves_held_requests_dead, setup, teardown),
        cmocka_unit_test_setup_teardown(start_on_a_taken_port_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(stalled_clients_are_closed, setup, teardown),
    };
    if (getenv("LAUREL_TEST_FILTER")) {
        cmocka_set_test_filter(getenv("LAUREL_TEST_FILTER"));
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
