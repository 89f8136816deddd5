/* tests/integration/test_http_limits.c — part of test_http (test_http.c): bodies over the
 * limit get 413, garbage closes its connection only, stalled clients are closed, protocol
 * corners, held requests after a stop, and a port already taken. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/err.h"
#include "router/http.h"
#include "tests/lib/testlib.h"
#include "test_http_int.h"

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
void body_over_limit_gets_413(void **state)
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
void garbage_closes_the_connection(void **state)
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
void stalled_clients_are_closed(void **state)
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
void protocol_corners(void **state)
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
void stop_leaves_held_requests_dead(void **state)
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
void start_on_a_taken_port_fails(void **state)
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
