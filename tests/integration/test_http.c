/* tests/integration/test_http.c — the router's HTTP server over loopback: requests reach the
 * handler whole, answers go back now or later, limits answer 413 or close, and nothing a
 * client sends (garbage, oversized bodies, stalls, hang-ups) stops it from serving others.
 *
 * The server runs on the test's uv loop in the main thread; each scenario's client runs in a
 * second thread with blocking sockets and wakes the loop through a uv_async when it is done.
 * Client threads only record what they saw: assertions run in the main thread afterwards. */
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

struct fixture {
    uv_loop_t loop;
    uv_async_t wake;
    struct http *http;
    int port;
    int client_done;
    int stopped;
    unsigned requests;   /* handler calls */
    unsigned later_dead; /* /later answers that found their connection gone */
    struct http_req *held;
    uv_timer_t stop_timer;
};

/* ---- the handler (loop thread) -------------------------------------------------------------- */

static const char *method_name(enum http_method m)
{
    static const char *names[] = {"GET", "POST", "PUT", "DELETE", "OTHER"};
    return names[m];
}

static void reply_json(struct http_req *req, int status, json_t *j, const char *extra)
{
    char *s = json_dumps(j, JSON_COMPACT);
    assert_non_null(s);
    http_reply(req, status, s, strlen(s), extra);
    free(s);
    json_decref(j);
}

static uint32_t byte_sum(const char *p, size_t n)
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

static void later_closed(uv_handle_t *h) { free(h->data); }

static void later_fire(uv_timer_t *t)
{
    struct later *l = t->data;
    if (!http_req_alive(l->req)) {
        l->f->later_dead++;
    }
    reply_json(l->req, 200, json_pack("{s:b}", "later", 1), NULL);
    uv_close((uv_handle_t *)t, later_closed);
}

static void stopped(void *data) { ((struct fixture *)data)->stopped = 1; }

static void stop_fire(uv_timer_t *t)
{
    struct fixture *f = t->data;
    http_stop(f->http, stopped, f);
    f->http = NULL;
    uv_close((uv_handle_t *)t, NULL);
}

static void handler(void *data, struct http_req *req)
{
    struct fixture *f = data;
    f->requests++;
    if (strcmp(req->path, "/echo") == 0) {
        reply_json(req, 200,
                   json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "method", method_name(req->method),
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

static void woken(uv_async_t *a) { ((struct fixture *)a->data)->client_done = 1; }

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

static void run_client(struct fixture *f, void (*fn)(struct fixture *, void *), void *arg)
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

struct conn {
    int fd;
    size_t len; /* bytes in buf not yet consumed */
    char buf[64 * 1024];
};

struct resp {
    int status;      /* 0: the connection closed or timed out first */
    char head[4096]; /* status line and headers, NUL-terminated */
    char *body;      /* malloc'd, NUL-terminated */
    size_t body_len;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int conn_open(struct conn *c, int port)
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

static void conn_close(struct conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
}

static int conn_send(struct conn *c, const void *p, size_t n)
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

static int conn_sendf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int conn_sendf(struct conn *c, const char *fmt, ...)
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

static void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

/* The header's value in @r (case-insensitive name), or NULL. */
static const char *resp_header(const struct resp *r, const char *name, char *out, size_t cap)
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
static int conn_recv_for(struct conn *c, struct resp *r, int head)
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

static int conn_recv(struct conn *c, struct resp *r) { return conn_recv_for(c, r, 0); }

/* Wait until the server closes @c: the milliseconds it took, or -1 after @timeout_ms. Bytes
 * the server sends meanwhile are dropped. */
static long conn_wait_closed(struct conn *c, int timeout_ms)
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
static int fetch(int port, const char *req, size_t len, struct resp *r)
{
    struct conn *c = malloc(sizeof *c);
    int rv = conn_open(c, port) == 0 && conn_send(c, req, len) == 0 ? conn_recv(c, r) : -1;
    conn_close(c);
    free(c);
    return rv;
}

static int fetch_echo(int port, struct resp *r)
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

static void assert_echo(const struct resp *r, const char *method, const char *path,
                        const char *query, const char *auth, size_t body_len, uint32_t sum)
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

/* ---- scenarios ------------------------------------------------------------------------------ */

struct two {
    struct resp a, b;
    int rva, rvb;
};

static void client_get(struct fixture *f, void *arg)
{
    struct two *t = arg;
    static const char a[] =
        "GET /echo?a=1&b=2 HTTP/1.1\r\nHost: t\r\n"
        "Authorization: Bearer k3y.v4lue\r\n\r\n";
    static const char b[] = "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n";
    t->rva = fetch(f->port, a, sizeof a - 1, &t->a);
    t->rvb = fetch(f->port, b, sizeof b - 1, &t->b);
}

/* A GET reaches the handler with its method, path, raw query and Authorization header; absent
 * ones are "". */
static void get_carries_path_query_and_auth(void **state)
{
    struct fixture *f = *state;
    struct two t;
    run_client(f, client_get, &t);
    assert_int_equal(t.rva, 0);
    assert_echo(&t.a, "GET", "/echo", "a=1&b=2", "Bearer k3y.v4lue", 0, 0);
    assert_int_equal(t.rvb, 0);
    assert_echo(&t.b, "GET", "/echo", "", "", 0, 0);
    resp_free(&t.a);
    resp_free(&t.b);
}

struct bodies {
    char body[1024];
    struct resp post, put, del, post0;
    int rv[4];
};

static void client_bodies(struct fixture *f, void *arg)
{
    struct bodies *b = arg;
    char head[256];
    struct conn *c = malloc(sizeof *c);
    for (size_t i = 0; i < sizeof b->body; i++) {
        b->body[i] = (char)('a' + i % 26);
    }
    int n = snprintf(head, sizeof head,
                     "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     sizeof b->body);
    b->rv[0] = conn_open(c, f->port) == 0 && conn_send(c, head, (size_t)n) == 0 &&
                       conn_send(c, b->body, sizeof b->body) == 0
                   ? conn_recv(c, &b->post)
                   : -1;
    conn_close(c);
    static const char put[] = "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}";
    b->rv[1] = fetch(f->port, put, sizeof put - 1, &b->put);
    static const char del[] = "DELETE /echo?id=7 HTTP/1.1\r\nHost: t\r\n\r\n";
    b->rv[2] = fetch(f->port, del, sizeof del - 1, &b->del);
    static const char post0[] = "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
    b->rv[3] = fetch(f->port, post0, sizeof post0 - 1, &b->post0);
    free(c);
}

/* POST and PUT bodies arrive whole (a 1 KiB one byte for byte); DELETE and an empty POST are
 * answered without waiting for a body. */
static void bodies_arrive_whole(void **state)
{
    struct fixture *f = *state;
    struct bodies *b = calloc(1, sizeof *b);
    run_client(f, client_bodies, b);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(b->rv[i], 0);
    }
    assert_echo(&b->post, "POST", "/echo", "", "", 1024, byte_sum(b->body, 1024));
    assert_echo(&b->put, "PUT", "/echo", "", "", 2, byte_sum("{}", 2));
    assert_echo(&b->del, "DELETE", "/echo", "id=7", "", 0, 0);
    assert_echo(&b->post0, "POST", "/echo", "", "", 0, 0);
    resp_free(&b->post);
    resp_free(&b->put);
    resp_free(&b->del);
    resp_free(&b->post0);
    free(b);
}

struct keepalive {
    struct resp r[5];
    int rv[5];
};

static void client_keepalive(struct fixture *f, void *arg)
{
    struct keepalive *k = arg;
    struct conn *c = malloc(sizeof *c);
    if (conn_open(c, f->port) != 0) {
        k->rv[0] = -1;
        free(c);
        return;
    }
    k->rv[0] = conn_sendf(c, "GET /echo?n=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    k->rv[0] = k->rv[0] != 0 ? -1 : conn_recv(c, &k->r[0]);
    k->rv[1] = conn_sendf(c, "POST /echo?n=2 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    k->rv[1] = k->rv[1] != 0 ? -1 : conn_recv(c, &k->r[1]);
    /* Three pipelined in one write. */
    int sent = conn_sendf(c,
                          "GET /echo?n=3 HTTP/1.1\r\nHost: t\r\n\r\n"
                          "GET /later HTTP/1.1\r\nHost: t\r\n\r\n"
                          "GET /echo?n=5 HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int i = 2; i < 5; i++) {
        k->rv[i] = sent != 0 ? -1 : conn_recv(c, &k->r[i]);
    }
    conn_close(c);
    free(c);
}

/* One keep-alive connection carries several requests, one after the other and pipelined, the
 * answers in order. */
static void keepalive_carries_several_requests(void **state)
{
    struct fixture *f = *state;
    struct keepalive *k = calloc(1, sizeof *k);
    run_client(f, client_keepalive, k);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(k->rv[i], 0);
    }
    assert_echo(&k->r[0], "GET", "/echo", "n=1", "", 0, 0);
    assert_echo(&k->r[1], "POST", "/echo", "n=2", "", 3, byte_sum("abc", 3));
    assert_echo(&k->r[2], "GET", "/echo", "n=3", "", 0, 0);
    assert_int_equal(k->r[3].status, 200);
    assert_string_equal(k->r[3].body, "{\"later\":true}");
    assert_echo(&k->r[4], "GET", "/echo", "n=5", "", 0, 0);
    assert_int_equal(f->requests, 5);
    for (int i = 0; i < 5; i++) {
        resp_free(&k->r[i]);
    }
    free(k);
}

struct later_run {
    struct resp r, after;
    int rv, rv_after;
    uint64_t ms;
};

static void client_later(struct fixture *f, void *arg)
{
    struct later_run *l = arg;
    static const char req[] = "GET /later HTTP/1.1\r\nHost: t\r\n\r\n";
    struct conn *c = malloc(sizeof *c);
    uint64_t t0 = now_ms();
    l->rv = fetch(f->port, req, sizeof req - 1, &l->r);
    l->ms = now_ms() - t0;
    /* Ask again and hang up before the answer. */
    if (conn_open(c, f->port) == 0) {
        conn_send(c, req, sizeof req - 1);
        usleep(10 * 1000);
    }
    conn_close(c);
    free(c);
    usleep(150 * 1000);
    l->rv_after = fetch_echo(f->port, &l->after);
}

/* An answer given later from a timer goes out. One whose client hung up meanwhile is dropped
 * (lws only notices the hang-up when it writes, so the handler may still see the request
 * alive) and the server goes on. */
static void later_answers_go_out(void **state)
{
    struct fixture *f = *state;
    struct later_run l;
    run_client(f, client_later, &l);
    assert_int_equal(l.rv, 0);
    assert_int_equal(l.r.status, 200);
    assert_string_equal(l.r.body, "{\"later\":true}");
    assert_true(l.ms >= 45);
    assert_int_equal(l.rv_after, 0);
    assert_echo(&l.after, "GET", "/echo", "", "", 0, 0);
    assert_int_equal(f->requests, 3);
    assert_true(f->later_dead <= 1);
    print_message("hung-up request seen dead by the handler: %u\n", f->later_dead);
    resp_free(&l.r);
    resp_free(&l.after);
}

struct one {
    struct resp r;
    int rv;
};

static void client_503(struct fixture *f, void *arg)
{
    struct one *o = arg;
    static const char req[] = "GET /status/503 HTTP/1.1\r\nHost: t\r\n\r\n";
    o->rv = fetch(f->port, req, sizeof req - 1, &o->r);
}

/* Extra header lines from the handler go out with the status. */
static void extra_headers_go_out(void **state)
{
    struct fixture *f = *state;
    struct one o;
    char v[16];
    run_client(f, client_503, &o);
    assert_int_equal(o.rv, 0);
    assert_int_equal(o.r.status, 503);
    assert_non_null(resp_header(&o.r, "retry-after", v, sizeof v));
    assert_string_equal(v, "1");
    assert_string_equal(o.r.body, "{\"error\":{\"code\":\"unavailable\"}}");
    resp_free(&o.r);
}

static void client_big(struct fixture *f, void *arg)
{
    struct one *o = arg;
    static const char req[] = "GET /big?n=1500000 HTTP/1.1\r\nHost: t\r\n\r\n";
    o->rv = fetch(f->port, req, sizeof req - 1, &o->r);
}

/* An answer far larger than the socket buffers still goes out whole. */
static void large_answer_goes_out_whole(void **state)
{
    struct fixture *f = *state;
    struct one *o = calloc(1, sizeof *o);
    run_client(f, client_big, o);
    assert_int_equal(o->rv, 0);
    assert_int_equal(o->r.status, 200);
    assert_int_equal(o->r.body_len, 1500000 + 10);
    resp_free(&o->r);
    free(o);
}

struct too_big {
    struct resp r[2], chunked, at_limit, after;
    int rv[2], rv_chunked, rv_at_limit, rv_after;
    long closed_ms[2], chunked_closed_ms;
};

static void client_too_big(struct fixture *f, void *arg)
{
    struct too_big *t = arg;
    size_t n = 70 * 1024;
    char *body = malloc(n);
    struct conn *c = malloc(sizeof *c);
    memset(body, '7', n);
    /* [0] 70 KiB; [1] one byte over the limit. */
    for (int i = 0; i < 2; i++) {
        t->rv[i] = -1;
        t->closed_ms[i] = -1;
        if (conn_open(c, f->port) != 0) {
            continue;
        }
        conn_sendf(c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
                   i == 0 ? n : (size_t)HTTP_BODY_MAX + 1);
        conn_send(c, body, i == 0 ? n : HTTP_BODY_MAX + 1);
        t->rv[i] = conn_recv(c, &t->r[i]);
        t->closed_ms[i] = conn_wait_closed(c, 3000);
        conn_close(c);
    }
    /* Exactly at the limit: served. */
    t->rv_at_limit = -1;
    if (conn_open(c, f->port) == 0) {
        conn_sendf(c, "PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n", HTTP_BODY_MAX);
        conn_send(c, body, HTTP_BODY_MAX);
        t->rv_at_limit = conn_recv(c, &t->at_limit);
        conn_close(c);
    }
    /* Chunked bodies are refused outright: lws 4.1 cannot decode them. */
    t->rv_chunked = -1;
    t->chunked_closed_ms = -1;
    if (conn_open(c, f->port) == 0) {
        conn_sendf(c,
                   "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\n0\r\n\r\n");
        t->rv_chunked = conn_recv(c, &t->chunked);
        t->chunked_closed_ms = conn_wait_closed(c, 3000);
        conn_close(c);
    }
    t->rv_after = fetch_echo(f->port, &t->after);
    free(c);
    free(body);
}

/* A 70 KiB body, or one byte over the limit, gets 413 with the API's error body and a chunked
 * body 411, and the connection closes; a body at the limit is served, and so are later
 * requests. */
static void body_over_limit_gets_413(void **state)
{
    struct fixture *f = *state;
    struct too_big *t = calloc(1, sizeof *t);
    run_client(f, client_too_big, t);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(t->rv[i], 0);
        assert_int_equal(t->r[i].status, 413);
        assert_string_equal(t->r[i].body,
                            "{\"error\":{\"code\":\"payload_too_large\","
                            "\"message\":\"request body exceeds 65536 bytes\"}}");
        assert_true(t->closed_ms[i] >= 0);
        resp_free(&t->r[i]);
    }
    assert_int_equal(t->rv_chunked, 0);
    assert_int_equal(t->chunked.status, 411);
    assert_string_equal(t->chunked.body,
                        "{\"error\":{\"code\":\"invalid_argument\","
                        "\"message\":\"send the body with a Content-Length\"}}");
    assert_true(t->chunked_closed_ms >= 0);
    resp_free(&t->chunked);
    assert_int_equal(t->rv_at_limit, 0);
    char *at_limit = malloc(HTTP_BODY_MAX);
    memset(at_limit, '7', HTTP_BODY_MAX);
    assert_echo(&t->at_limit, "PUT", "/echo", "", "", HTTP_BODY_MAX,
                byte_sum(at_limit, HTTP_BODY_MAX));
    free(at_limit);
    resp_free(&t->at_limit);
    assert_int_equal(f->requests, 2); /* the refused ones never reached the handler */
    assert_int_equal(t->rv_after, 0);
    assert_echo(&t->after, "GET", "/echo", "", "", 0, 0);
    resp_free(&t->after);
    free(t);
}

struct garbage {
    uint64_t seed;
    int not_closed;  /* rounds whose connection stayed open */
    int failed_echo; /* checks in between that went unanswered */
    int bad_cases;   /* malformed requests not closed or not refused */
    struct resp after;
    int rv_after;
};

static void client_garbage(struct fixture *f, void *arg)
{
    struct garbage *g = arg;
    struct testrng rng = {g->seed};
    struct conn *c = malloc(sizeof *c);
    char *buf = malloc(16384);
    for (int round = 0; round < 100; round++) {
        size_t n = 1 + testrng_below(&rng, 4000);
        for (size_t i = 0; i < n; i++) {
            buf[i] = (char)testrng_next(&rng);
        }
        if (round % 3 == 1) {
            memcpy(buf, "GET /", 5 < n ? 5 : n); /* get past the method check */
        } else if (round % 3 == 2 && n > 40) {
            static const char post[] = "POST /echo HTTP/1.1\r\nContent-Length: 9\r\n";
            memcpy(buf, post, sizeof post - 1);
        }
        if (conn_open(c, f->port) != 0) {
            g->not_closed++;
            continue;
        }
        conn_send(c, buf, n);
        shutdown(c->fd, SHUT_WR);
        if (conn_wait_closed(c, 3000) < 0) {
            g->not_closed++;
        }
        conn_close(c);
        if (round % 10 == 9) {
            struct resp r;
            if (fetch_echo(f->port, &r) != 0 || r.status != 200) {
                g->failed_echo++;
            }
            resp_free(&r);
        }
    }
    /* Malformed requests the server must refuse on its own (no half-close from us). */
    memset(buf, 'h', 16384);
    memcpy(buf, "GET /echo HTTP/1.1\r\nX-Big: ", 27);
    memcpy(buf + 12000, "\r\n\r\n", 4);
    static const char brew[] = "BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n";
    static const char nul[] = "GET /echo HTTP/1.1\r\nAuthorization: Bearer a\0b\r\n\r\n";
    static const char tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    const struct {
        const char *p;
        size_t n;
    } bad[] = {
        {brew, sizeof brew - 1},
        {nul, sizeof nul - 1},
        {tls, sizeof tls - 1},
        {buf, 12004},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct resp r;
        if (conn_open(c, f->port) != 0) {
            g->bad_cases++;
            continue;
        }
        conn_send(c, bad[i].p, bad[i].n);
        /* Either refused with a 4xx, or simply closed; then closed in any case. */
        if (conn_recv(c, &r) == 0 && (r.status < 400 || r.status >= 500)) {
            g->bad_cases |= 1 << (2 * i);
        }
        resp_free(&r);
        if (conn_wait_closed(c, 3000) < 0) {
            g->bad_cases |= 1 << (2 * i + 1);
        }
        conn_close(c);
    }
    g->rv_after = fetch_echo(f->port, &g->after);
    free(buf);
    free(c);
}

/* Random bytes and malformed requests close their connection; the server still serves. */
static void garbage_closes_the_connection(void **state)
{
    struct fixture *f = *state;
    struct garbage g = {.seed = testlib_seed(0x6a7b)};
    run_client(f, client_garbage, &g);
    assert_int_equal(g.not_closed, 0);
    assert_int_equal(g.failed_echo, 0);
    assert_int_equal(g.bad_cases, 0);
    assert_int_equal(g.rv_after, 0);
    assert_echo(&g.after, "GET", "/echo", "", "", 0, 0);
    resp_free(&g.after);
}

enum {
    ST_SILENT,         /* connects, sends nothing */
    ST_HALF_HEADERS,   /* stops inside the headers */
    ST_HALF_BODY,      /* stops inside the body */
    ST_DRIP,           /* sends its body a byte every 2 s, never pausing long */
    ST_IDLE_KEEPALIVE, /* one request, then idle */
    ST_UNANSWERED,     /* the handler never answers */
    ST_N
};

struct stall {
    long closed_ms[ST_N]; /* from the stall's start; -1 if still open after 14 s */
    int served;           /* requests answered on other connections meanwhile */
};

static void client_stall(struct fixture *f, void *arg)
{
    struct stall *s = arg;
    struct conn *c = calloc(ST_N, sizeof *c);
    struct resp r;
    uint64_t t0 = now_ms();
    conn_open(&c[ST_SILENT], f->port);
    conn_open(&c[ST_HALF_HEADERS], f->port);
    conn_sendf(&c[ST_HALF_HEADERS], "GET /echo HTTP/1.1\r\nHost: t\r\nAuthoriz");
    conn_open(&c[ST_HALF_BODY], f->port);
    conn_sendf(&c[ST_HALF_BODY],
               "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n"
               "0123456789");
    conn_open(&c[ST_DRIP], f->port);
    conn_sendf(&c[ST_DRIP], "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n");
    conn_open(&c[ST_UNANSWERED], f->port);
    conn_sendf(&c[ST_UNANSWERED], "GET /unanswered HTTP/1.1\r\nHost: t\r\n\r\n");
    conn_open(&c[ST_IDLE_KEEPALIVE], f->port);
    conn_sendf(&c[ST_IDLE_KEEPALIVE], "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    if (conn_recv(&c[ST_IDLE_KEEPALIVE], &r) == 0 && r.status == 200) {
        s->served++;
    }
    resp_free(&r);
    /* Others are served while those four hang on. */
    for (int i = 0; i < 20; i++) {
        if (fetch_echo(f->port, &r) == 0 && r.status == 200) {
            s->served++;
        }
        resp_free(&r);
        usleep(20 * 1000);
    }
    for (int i = 0; i < ST_N; i++) {
        s->closed_ms[i] = -1;
    }
    uint64_t drip = 0;
    for (int done = 0; done < ST_N && now_ms() - t0 < 14000;) {
        struct pollfd p[ST_N];
        if (s->closed_ms[ST_DRIP] < 0 && now_ms() - drip >= 2000) {
            drip = now_ms();
            send(c[ST_DRIP].fd, "x", 1, MSG_NOSIGNAL);
        }
        for (int i = 0; i < ST_N; i++) {
            p[i] = (struct pollfd){s->closed_ms[i] < 0 ? c[i].fd : -1, POLLIN, 0};
        }
        if (poll(p, ST_N, 100) <= 0) {
            continue;
        }
        for (int i = 0; i < ST_N; i++) {
            if (p[i].revents) {
                char b[256];
                ssize_t n = recv(c[i].fd, b, sizeof b, 0);
                if (n <= 0) {
                    s->closed_ms[i] = (long)(now_ms() - t0);
                    done++;
                }
            }
        }
    }
    for (int i = 0; i < ST_N; i++) {
        conn_close(&c[i]);
    }
    free(c);
}

/* Clients that connect and say nothing, stop halfway through the headers or the body, drip
 * the body, or sit idle on a keep-alive connection are closed within ~10 s, and so is a
 * request the handler leaves unanswered (which the handler then sees dead); others are served
 * meanwhile. */
static void stalled_clients_are_closed(void **state)
{
    struct fixture *f = *state;
    struct stall s = {0};
    run_client(f, client_stall, &s);
    assert_int_equal(s.served, 21);
    assert_non_null(f->held);
    assert_false(http_req_alive(f->held));
    http_reply(f->held, 200, "{}", 2, NULL); /* dropped; frees the request */
    for (int i = 0; i < ST_N; i++) {
        print_message("stall %d closed after %ld ms\n", i, s.closed_ms[i]);
        assert_true(s.closed_ms[i] >= 0);
        assert_true(s.closed_ms[i] <= 12500);
    }
}

struct corners {
    struct resp cont, cont_done, upgrade, after_upgrade, head, after_head;
    int rv[6];
};

static void client_corners(struct fixture *f, void *arg)
{
    struct corners *k = arg;
    struct conn *c = malloc(sizeof *c);
    for (int i = 0; i < 6; i++) {
        k->rv[i] = -1;
    }
    if (conn_open(c, f->port) != 0) {
        free(c);
        return;
    }
    /* The body only after the interim answer. */
    conn_sendf(c,
               "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
               "Content-Length: 5\r\n\r\n");
    k->rv[0] = conn_recv(c, &k->cont);
    conn_sendf(c, "hello");
    k->rv[1] = conn_recv(c, &k->cont_done);
    /* An upgrade is refused, and the connection goes on. */
    conn_sendf(c,
               "GET /echo HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    k->rv[2] = conn_recv(c, &k->upgrade);
    conn_sendf(c, "GET /echo?after=upgrade HTTP/1.1\r\nHost: t\r\n\r\n");
    k->rv[3] = conn_recv(c, &k->after_upgrade);
    /* HEAD: the headers of a GET, no body. */
    conn_sendf(c, "HEAD /echo HTTP/1.1\r\nHost: t\r\n\r\n");
    k->rv[4] = conn_recv_for(c, &k->head, 1);
    conn_sendf(c, "GET /echo?after=head HTTP/1.1\r\nHost: t\r\n\r\n");
    k->rv[5] = conn_recv(c, &k->after_head);
    conn_close(c);
    free(c);
}

/* "Expect: 100-continue" gets its interim answer, a WebSocket upgrade gets 400 and HEAD gets
 * headers only, each leaving the keep-alive connection usable. */
static void protocol_corners(void **state)
{
    struct fixture *f = *state;
    struct corners *k = calloc(1, sizeof *k);
    char cl[16];
    run_client(f, client_corners, k);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(k->rv[i], 0);
    }
    assert_int_equal(k->cont.status, 100);
    assert_echo(&k->cont_done, "POST", "/echo", "", "", 5, byte_sum("hello", 5));
    assert_int_equal(k->upgrade.status, 400);
    assert_string_equal(k->upgrade.body,
                        "{\"error\":{\"code\":\"invalid_argument\","
                        "\"message\":\"protocol upgrades are not supported\"}}");
    assert_echo(&k->after_upgrade, "GET", "/echo", "after=upgrade", "", 0, 0);
    assert_int_equal(k->head.status, 200);
    assert_non_null(resp_header(&k->head, "content-length", cl, sizeof cl));
    assert_true(atoi(cl) > 0);
    assert_echo(&k->after_head, "GET", "/echo", "after=head", "", 0, 0);
    resp_free(&k->cont);
    resp_free(&k->cont_done);
    resp_free(&k->upgrade);
    resp_free(&k->after_upgrade);
    resp_free(&k->head);
    resp_free(&k->after_head);
    free(k);
}

static void client_hold(struct fixture *f, void *arg)
{
    struct one *o = arg;
    struct conn *c = malloc(sizeof *c);
    o->rv = -1;
    if (conn_open(c, f->port) == 0) {
        conn_sendf(c, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
        o->rv = conn_wait_closed(c, 5000) >= 0 ? 0 : -1;
    }
    conn_close(c);
    free(c);
}

/* Stopping the server closes its connections; a request the handler still holds is then dead,
 * and answering it is a harmless no-op that frees it. */
static void stop_leaves_held_requests_dead(void **state)
{
    struct fixture *f = *state;
    struct one o;
    run_client(f, client_hold, &o);
    assert_int_equal(o.rv, 0);
    while (!f->stopped) {
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_non_null(f->held);
    assert_false(http_req_alive(f->held));
    http_reply(f->held, 200, "{}", 2, NULL);
}

/* Binding a port already taken fails with a message instead of serving nothing. */
static void start_on_a_taken_port_fails(void **state)
{
    struct fixture *f = *state;
    struct http *h = NULL;
    char addr[32], errmsg[LR_ERRMSG_SIZE] = "";
    snprintf(addr, sizeof addr, "127.0.0.1:%d", f->port);
    assert_int_equal(http_start(&f->loop, addr, handler, f, &h, errmsg), LR_EIO);
    assert_non_null(strstr(errmsg, "cannot listen"));
    assert_int_equal(http_start(&f->loop, "nonsense", handler, f, &h, errmsg), LR_EINVAL);
    assert_null(h);
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
