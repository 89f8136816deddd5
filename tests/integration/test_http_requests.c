/* tests/integration/test_http_requests.c — part of test_http (test_http.c): requests as they
 * should be: paths, queries and keys reach the handler, bodies arrive whole, keep-alive
 * carries several requests, answers given later and extra headers go out, large answers go out
 * whole. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tests/lib/testlib.h"
#include "test_http_int.h"

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
void get_carries_path_query_and_auth(void **state)
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
void bodies_arrive_whole(void **state)
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
void keepalive_carries_several_requests(void **state)
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
void later_answers_go_out(void **state)
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

static void client_503(struct fixture *f, void *arg)
{
    struct one *o = arg;
    static const char req[] = "GET /status/503 HTTP/1.1\r\nHost: t\r\n\r\n";
    o->rv = fetch(f->port, req, sizeof req - 1, &o->r);
}

/* Extra header lines from the handler go out with the status. */
void extra_headers_go_out(void **state)
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
void large_answer_goes_out_whole(void **state)
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
