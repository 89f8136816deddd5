/* tests/integration/test_xport.c — the raft transport on a real libuv loop and real loopback
 * sockets, IPv6 and IPv4, driven the way libraft drives it: connects and accepts carry the
 * server id and address, each callback fires exactly once, closing cancels what is pending
 * and reports only when every handle is closed, and nothing a peer sends (garbage, silence,
 * a flood of connections) reaches raft or survives past its bound. libraft's own raft_uv_tcp
 * is the other end of the interoperability scenarios. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/addr.h"
#include "lib/log.h"
#include "raft/handshake.h"
#include "raft/xport.h"
#include "tests/lib/testlib.h"

#define MAX_RAW 80

/* a and b run on loops of their own, so each close callback can check that its own loop
 * holds none of its handles any more. */
struct fixture {
    uv_loop_t la, lb;
    struct logger log;
    int owned; /* address marks the handles the test owns (streams handed over) */

    struct raft_uv_transport a, b; /* a listens; b connects to it */
    char a_addr[64], b_addr[64];
    int a_closed, b_closed;
    int a_left, b_left; /* transport handles still in the loop when the close callback ran */

    /* a's accept callback */
    int accepts;
    raft_id accept_id;
    char accept_address[HANDSHAKE_ADDRESS_MAX];
    uv_stream_t *accepted;

    /* b's connect callback */
    struct raft_uv_connect req;
    int connects;
    int connect_status;
    uv_stream_t *connected;
    int connect_before_close; /* the connect callback came before b's close callback */

    /* reading from the accepted stream */
    char rbuf[256];
    size_t rlen, want_rlen;

    /* libraft's raft_uv_tcp, for the interoperability scenario */
    struct raft_uv_transport up;
    int up_closed;
    raft_id up_accept_id;
    char up_accept_address[64];
    uv_stream_t *up_accepted;

    int raw[MAX_RAW];
    int nraw;
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* Run both loops until @done(@f) or @ms elapse. @return whether @done held. */
static int run_until(struct fixture *f, int (*done)(struct fixture *), unsigned ms)
{
    uint64_t end = now_ms() + ms;
    while (!done(f) && now_ms() < end) {
        uv_run(&f->la, UV_RUN_NOWAIT);
        uv_run(&f->lb, UV_RUN_NOWAIT);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return done(f);
}

static int never(struct fixture *f)
{
    (void)f;
    return 0;
}

static int one_accept(struct fixture *f)
{
    return f->accepts >= 1;
}

static int one_connect(struct fixture *f)
{
    return f->connects >= 1;
}

static int both_ends(struct fixture *f)
{
    return f->accepts >= 1 && f->connects >= 1;
}

static int a_closed(struct fixture *f)
{
    return f->a_closed;
}

static int b_closed(struct fixture *f)
{
    return f->b_closed;
}

/* A free port on loopback of @v6's family (bound and released: the kernel's pick). */
static int free_port(int v6)
{
    struct sockaddr_storage sa;
    socklen_t len;
    assert_int_equal(addr_resolve(v6 ? "[::1]:0" : "127.0.0.1:0", 0, &sa, &len), 0);
    int fd = socket(sa.ss_family, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(v6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                    : ((struct sockaddr_in *)&sa)->sin_port);
}

static void loopback(char *out, size_t cap, int v6, int port)
{
    snprintf(out, cap, v6 ? "[::1]:%d" : "127.0.0.1:%d", port);
}

/* A blocking socket connected to @addr, remembered for the teardown. */
static int raw_connect(struct fixture *f, const char *addr)
{
    struct sockaddr_storage sa;
    socklen_t len;
    assert_int_equal(addr_resolve(addr, 0, &sa, &len), 0);
    int fd = socket(sa.ss_family, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, len), 0);
    assert_true(f->nraw < MAX_RAW);
    f->raw[f->nraw++] = fd;
    return fd;
}

static void raw_send(int fd, const void *p, size_t n)
{
    assert_int_equal(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* 1 once the other end closed @fd (EOF or reset), 0 while it is open. */
static int raw_closed(int fd)
{
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

static int all_raw_closed(struct fixture *f)
{
    for (int i = 0; i < f->nraw; i++) {
        if (!raw_closed(f->raw[i])) {
            return 0;
        }
    }
    return 1;
}

static void count_walk(uv_handle_t *h, void *arg)
{
    void **args = arg;
    struct fixture *f = args[0];
    if (h->data != &f->owned) {
        (*(int *)args[1])++;
    }
}

static int handles_not_owned(struct fixture *f, uv_loop_t *loop)
{
    int n = 0;
    void *args[2] = {f, &n};
    uv_walk(loop, count_walk, args);
    return n;
}

static void a_close_cb(struct raft_uv_transport *t)
{
    struct fixture *f = t->data;
    f->a_closed++;
    f->a_left = handles_not_owned(f, &f->la);
}

static void b_close_cb(struct raft_uv_transport *t)
{
    struct fixture *f = t->data;
    f->b_closed++;
    if (f->connects == 1) {
        f->connect_before_close = 1;
    }
    f->b_left = handles_not_owned(f, &f->lb);
}

static void on_accept(struct raft_uv_transport *t, raft_id id, const char *address,
                      uv_stream_t *stream)
{
    struct fixture *f = t->data;
    f->accepts++;
    f->accept_id = id;
    snprintf(f->accept_address, sizeof f->accept_address, "%s", address);
    if (f->accepted != NULL) { /* only the first is kept; later ones are closed like raft */
        uv_close((uv_handle_t *)stream, (uv_close_cb)raft_free);
        return;
    }
    stream->data = &f->owned;
    f->accepted = stream;
}

static void on_connect(struct raft_uv_connect *req, uv_stream_t *stream, int status)
{
    struct fixture *f = req->data;
    f->connects++;
    f->connect_status = status;
    f->connected = stream;
    if (stream != NULL) {
        stream->data = &f->owned;
    }
}

/* Start a on @v6's loopback as server 1, listening; b as server 2 (not listening). */
static void start_pair(struct fixture *f, int v6)
{
    loopback(f->a_addr, sizeof f->a_addr, v6, free_port(v6));
    loopback(f->b_addr, sizeof f->b_addr, v6, free_port(v6));
    assert_int_equal(xport_init(&f->a, &f->la, &f->log), 0);
    assert_int_equal(xport_init(&f->b, &f->lb, &f->log), 0);
    f->a.data = f->b.data = f;
    assert_int_equal(f->a.init(&f->a, 1, f->a_addr), 0);
    assert_int_equal(f->a.listen(&f->a, on_accept), 0);
    assert_int_equal(f->b.init(&f->b, 2, f->b_addr), 0);
    f->req.data = f;
}

static void close_owned(uv_stream_t **s)
{
    if (*s != NULL) {
        uv_close((uv_handle_t *)*s, (uv_close_cb)raft_free);
        *s = NULL;
    }
}

/* Close both transports and check each reported once, after its last handle. */
static void close_pair(struct fixture *f)
{
    close_owned(&f->accepted);
    close_owned(&f->connected);
    f->a.close(&f->a, a_close_cb);
    f->b.close(&f->b, b_close_cb);
    assert_int_equal(f->a_closed + f->b_closed, 0); /* never from inside close */
    assert_true(run_until(f, a_closed, 5000));
    assert_true(run_until(f, b_closed, 5000));
    run_until(f, never, 20);
    assert_int_equal(f->a_closed, 1);
    assert_int_equal(f->b_closed, 1);
    assert_int_equal(f->a_left, 0);
    assert_int_equal(f->b_left, 0);
    xport_close(&f->a);
    xport_close(&f->b);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->la), 0);
    assert_int_equal(uv_loop_init(&f->lb), 0);
    log_init(&f->log, stderr, getenv("LAUREL_XPORT_LOG") ? LOG_DEBUG : LOG_ERROR, 1, "test");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < f->nraw; i++) {
        close(f->raw[i]);
    }
    uv_run(&f->la, UV_RUN_DEFAULT);
    uv_run(&f->lb, UV_RUN_DEFAULT);
    /* Every handle is closed, the test's and the transports'. */
    assert_int_equal(uv_loop_close(&f->la), 0);
    assert_int_equal(uv_loop_close(&f->lb), 0);
    free(f);
    return 0;
}

static int nodelay(uv_stream_t *s)
{
    uv_os_fd_t fd;
    int on = 0;
    socklen_t len = sizeof on;
    assert_int_equal(uv_fileno((uv_handle_t *)s, &fd), 0);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    return on;
}

/* The fixture of a handle the test owns (its data is &f->owned). */
static struct fixture *owner(uv_handle_t *h)
{
    return (struct fixture *)((char *)h->data - offsetof(struct fixture, owned));
}

/* Reads land straight in rbuf, at most what is still wanted, so an over-read would show. */
static void read_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct fixture *f = owner(h);
    (void)suggested;
    *buf = uv_buf_init(f->rbuf + f->rlen, (unsigned)(sizeof f->rbuf - f->rlen));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    if (n > 0) {
        owner((uv_handle_t *)s)->rlen += (size_t)n;
    }
}

static int read_enough(struct fixture *f)
{
    return f->rlen >= f->want_rlen;
}

/* What arrives on the accepted stream after the handshake: exactly @want. */
static void expect_on_accepted(struct fixture *f, const char *want)
{
    f->want_rlen = strlen(want);
    f->rlen = 0;
    uv_read_start(f->accepted, read_alloc, read_cb);
    assert_true(run_until(f, read_enough, 5000));
    uv_read_stop(f->accepted);
    assert_int_equal(f->rlen, strlen(want));
    assert_memory_equal(f->rbuf, want, f->rlen);
}

/* b connects to a: a hears server 2 at b's address, b gets its stream, both with NODELAY,
 * and raft's first bytes on b's stream arrive intact on a's. */
static void connect_and_accept(struct fixture *f, int v6)
{
    start_pair(f, v6);
    assert_int_equal(f->b.connect(&f->b, &f->req, 1, f->a_addr, on_connect), 0);
    assert_int_equal(f->connects, 0); /* never from inside connect */
    assert_true(run_until(f, both_ends, 5000));
    run_until(f, never, 50);
    assert_int_equal(f->connects, 1);
    assert_int_equal(f->connect_status, 0);
    assert_non_null(f->connected);
    assert_int_equal(f->accepts, 1);
    assert_int_equal(f->accept_id, 2);
    assert_string_equal(f->accept_address, f->b_addr);
    assert_int_equal(nodelay(f->accepted), 1);
    assert_int_equal(nodelay(f->connected), 1);
    uv_buf_t b = uv_buf_init("first raft message", 18);
    assert_int_equal(uv_try_write(f->connected, &b, 1), 18);
    expect_on_accepted(f, "first raft message");
    close_pair(f);
}

/* Over [::1]. */
static void ipv6_connect_and_accept(void **state)
{
    connect_and_accept(*state, 1);
}

/* Over 127.0.0.1. */
static void ipv4_connect_and_accept(void **state)
{
    connect_and_accept(*state, 0);
}

/* A handshake and raft bytes in one segment: the transport reads only the handshake, raft's
 * reader gets the rest. */
static void bytes_after_handshake_left_for_raft(void **state)
{
    struct fixture *f = *state;
    uint8_t msg[HANDSHAKE_SIZE_MAX + 32];
    size_t len;
    start_pair(f, 1);
    assert_int_equal(handshake_encode(7, "[::1]:7007", msg, sizeof msg, &len), 0);
    memcpy(msg + len, "appendentries", 13);
    int fd = raw_connect(f, f->a_addr);
    raw_send(fd, msg, len + 13);
    assert_true(run_until(f, one_accept, 5000));
    assert_int_equal(f->accept_id, 7);
    assert_string_equal(f->accept_address, "[::1]:7007");
    expect_on_accepted(f, "appendentries");
    close_pair(f);
}

/* A handshake that dribbles in byte by byte is still read whole. */
static void handshake_in_pieces(void **state)
{
    struct fixture *f = *state;
    uint8_t msg[HANDSHAKE_SIZE_MAX];
    size_t len;
    start_pair(f, 1);
    assert_int_equal(handshake_encode(9, "10.9.9.9:7009", msg, sizeof msg, &len), 0);
    int fd = raw_connect(f, f->a_addr);
    for (size_t i = 0; i < len; i++) {
        raw_send(fd, msg + i, 1);
        run_until(f, never, 2);
    }
    assert_true(run_until(f, one_accept, 5000));
    assert_int_equal(f->accept_id, 9);
    assert_string_equal(f->accept_address, "10.9.9.9:7009");
    close_pair(f);
}

/* Nobody listens: the connect callback fires once with RAFT_NOCONNECTION, no stream. */
static void refused_connect_fails_once(void **state)
{
    struct fixture *f = *state;
    char nobody[64];
    start_pair(f, 1);
    loopback(nobody, sizeof nobody, 1, free_port(1));
    assert_int_equal(f->b.connect(&f->b, &f->req, 3, nobody, on_connect), 0);
    assert_true(run_until(f, one_connect, 5000));
    run_until(f, never, 50);
    assert_int_equal(f->connects, 1);
    assert_int_equal(f->connect_status, RAFT_NOCONNECTION);
    assert_null(f->connected);
    close_pair(f);
}

/* A malformed address is refused by connect itself, and its callback never fires. */
static void malformed_address_refused_by_connect(void **state)
{
    struct fixture *f = *state;
    start_pair(f, 1);
    assert_int_equal(f->b.connect(&f->b, &f->req, 3, "::1:7000", on_connect), RAFT_NOCONNECTION);
    assert_non_null(strstr(f->b.errmsg, "::1:7000"));
    run_until(f, never, 50);
    assert_int_equal(f->connects, 0);
    close_pair(f);
}

/* Init refuses an address that is not host:port, with a message naming it. */
static void init_refuses_malformed_address(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(xport_init(&f->a, &f->la, &f->log), 0);
    assert_int_equal(f->a.init(&f->a, 1, "::1:7000"), RAFT_INVALID);
    assert_non_null(strstr(f->a.errmsg, "::1:7000"));
    xport_close(&f->a); /* init failed: nothing in the loop */
}

/* Close right after connect: the callback fires once, with RAFT_CANCELED, before the close
 * callback. */
static void close_cancels_connect_being_resolved(void **state)
{
    struct fixture *f = *state;
    start_pair(f, 1);
    assert_int_equal(f->b.connect(&f->b, &f->req, 1, f->a_addr, on_connect), 0);
    close_pair(f);
    assert_int_equal(f->connects, 1);
    assert_int_equal(f->connect_status, RAFT_CANCELED);
    assert_int_equal(f->connect_before_close, 1);
    assert_int_equal(f->accepts, 0);
}

/* A peer whose accept queue is full drops our SYN, so the connect stays in progress; close
 * cancels it with RAFT_CANCELED, once, before the close callback. */
static void close_cancels_connect_in_progress(void **state)
{
    struct fixture *f = *state;
    char full[64];
    struct sockaddr_storage sa;
    socklen_t len;
    start_pair(f, 0);
    loopback(full, sizeof full, 0, free_port(0));
    assert_int_equal(addr_resolve(full, 0, &sa, &len), 0);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, len), 0);
    assert_int_equal(listen(lfd, 0), 0);
    raw_connect(f, full); /* fills the queue of one */
    f->raw[f->nraw++] = lfd;
    assert_int_equal(f->b.connect(&f->b, &f->req, 1, full, on_connect), 0);
    run_until(f, never, 300);
    assert_int_equal(f->connects, 0);
    close_pair(f);
    assert_int_equal(f->connects, 1);
    assert_int_equal(f->connect_status, RAFT_CANCELED);
    assert_int_equal(f->connect_before_close, 1);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Garbage of every kind closes that connection and never reaches raft; a good handshake
 * after it is accepted as usual. */
static void garbage_refused_and_closed(void **state)
{
    struct fixture *f = *state;
    struct testrng rng = {testlib_seed(5)};
    uint8_t m[512];
    start_pair(f, 1);
    for (int kind = 0; kind < 7; kind++) {
        size_t n = 24;
        memset(m, 0, sizeof m);
        put64(m, 1);
        put64(m + 8, 4);
        put64(m + 16, 16);
        switch (kind) {
        case 0: put64(m, 2); break;                   /* protocol 2 */
        case 1: put64(m + 8, 0); break;               /* server id 0 */
        case 2: put64(m + 16, UINT64_MAX - 7); break; /* a 2^64-byte address */
        case 3: put64(m + 16, 12); break;             /* length not a multiple of 8 */
        case 4: memset(m + 24, 'x', 16); break;       /* no NUL in the field */
        case 5: memcpy(m + 24, "::1:80", 6); break;   /* not host:port */
        case 6: memcpy(m + 24, "a:1\nx", 6); break;   /* not printable */
        }
        if (kind >= 4) {
            n += 16;
        }
        raw_send(raw_connect(f, f->a_addr), m, n);
    }
    for (int round = 0; round < 20; round++) {
        size_t n = 24 + testrng_below(&rng, 200);
        for (size_t k = 0; k < n; k++) {
            m[k] = (uint8_t)testrng_next(&rng);
        }
        if (round % 2) {
            put64(m, 1); /* past the version: the length and address checks */
        }
        raw_send(raw_connect(f, f->a_addr), m, n);
    }
    assert_true(run_until(f, all_raw_closed, 5000));
    assert_int_equal(f->accepts, 0);
    assert_int_equal(f->b.connect(&f->b, &f->req, 1, f->a_addr, on_connect), 0);
    assert_true(run_until(f, both_ends, 5000));
    assert_int_equal(f->accept_id, 2);
    close_pair(f);
}

/* A peer that sends part of a handshake and goes silent is closed at the deadline, not
 * before; raft never hears of it. */
static void silent_peer_closed_at_deadline(void **state)
{
    struct fixture *f = *state;
    uint8_t msg[HANDSHAKE_SIZE_MAX];
    size_t len;
    start_pair(f, 1);
    xport_set_handshake_timeout(&f->a, 300);
    assert_int_equal(handshake_encode(4, "[::1]:7004", msg, sizeof msg, &len), 0);
    raw_send(raw_connect(f, f->a_addr), msg, 10);      /* part of the preamble */
    raw_send(raw_connect(f, f->a_addr), msg, len - 3); /* all but the last bytes */
    raw_connect(f, f->a_addr);                         /* nothing at all */
    uint64_t t0 = now_ms();
    run_until(f, never, 150);
    for (int i = 0; i < f->nraw; i++) {
        assert_false(raw_closed(f->raw[i]));
    }
    assert_true(run_until(f, all_raw_closed, 5000));
    uint64_t waited = now_ms() - t0;
    assert_true(waited >= 290 && waited < 2000);
    assert_int_equal(f->accepts, 0);
    close_pair(f);
}

/* Past XPORT_HANDSHAKES_MAX silent connections, new ones are closed at once; the others wait
 * for their deadline, and close closes them all. */
static void handshakes_bounded(void **state)
{
    struct fixture *f = *state;
    start_pair(f, 1);
    for (int i = 0; i < XPORT_HANDSHAKES_MAX; i++) {
        raw_connect(f, f->a_addr);
    }
    run_until(f, never, 200);
    int first_extra = f->nraw;
    for (int i = 0; i < 3; i++) {
        raw_connect(f, f->a_addr);
    }
    run_until(f, never, 200);
    for (int i = 0; i < f->nraw; i++) {
        assert_int_equal(raw_closed(f->raw[i]), i >= first_extra);
    }
    close_pair(f);
    run_until(f, never, 50);
    assert_true(all_raw_closed(f));
    assert_int_equal(f->accepts, 0);
}

static void up_accept(struct raft_uv_transport *t, raft_id id, const char *address,
                      uv_stream_t *stream)
{
    struct fixture *f = t->data;
    f->up_accept_id = id;
    snprintf(f->up_accept_address, sizeof f->up_accept_address, "%s", address);
    f->up_accepted = stream;
}

static void up_close_cb(struct raft_uv_transport *t)
{
    struct fixture *f = t->data;
    f->up_closed = 1;
}

static int up_accepted(struct fixture *f)
{
    return f->connects >= 1 && f->up_accepted != NULL;
}

static int up_closed(struct fixture *f)
{
    return f->up_closed;
}

/* libraft's raft_uv_tcp (IPv4 only) and this transport accept each other's handshakes, so
 * replicas of either kind can share a region during an upgrade. */
static void interoperates_with_raft_uv_tcp(void **state)
{
    struct fixture *f = *state;
    char uaddr[64];
    struct raft_uv_connect ureq;
    start_pair(f, 0);
    loopback(uaddr, sizeof uaddr, 0, free_port(0));
    assert_int_equal(raft_uv_tcp_init(&f->up, &f->lb), 0);
    f->up.data = f;
    assert_int_equal(f->up.init(&f->up, 5, uaddr), 0);
    assert_int_equal(f->up.listen(&f->up, up_accept), 0);
    /* Ours to theirs. */
    assert_int_equal(f->b.connect(&f->b, &f->req, 5, uaddr, on_connect), 0);
    assert_true(run_until(f, up_accepted, 5000));
    assert_int_equal(f->connect_status, 0);
    assert_int_equal(f->up_accept_id, 2);
    assert_string_equal(f->up_accept_address, f->b_addr);
    /* Theirs to ours. */
    ureq.data = f;
    f->connects = 0;
    uv_close((uv_handle_t *)f->connected, (uv_close_cb)raft_free);
    f->connected = NULL;
    assert_int_equal(f->up.connect(&f->up, &ureq, 1, f->a_addr, on_connect), 0);
    assert_true(run_until(f, both_ends, 5000));
    assert_int_equal(f->connect_status, 0);
    assert_int_equal(f->accept_id, 5);
    assert_string_equal(f->accept_address, uaddr);
    uv_close((uv_handle_t *)f->up_accepted, (uv_close_cb)raft_free);
    f->up.close(&f->up, up_close_cb);
    assert_true(run_until(f, up_closed, 5000));
    raft_uv_tcp_close(&f->up);
    close_pair(f);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ipv6_connect_and_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(ipv4_connect_and_accept, setup, teardown),
        cmocka_unit_test_setup_teardown(bytes_after_handshake_left_for_raft, setup, teardown),
        cmocka_unit_test_setup_teardown(handshake_in_pieces, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_connect_fails_once, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_address_refused_by_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(init_refuses_malformed_address, setup, teardown),
        cmocka_unit_test_setup_teardown(close_cancels_connect_being_resolved, setup, teardown),
        cmocka_unit_test_setup_teardown(close_cancels_connect_in_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_refused_and_closed, setup, teardown),
        cmocka_unit_test_setup_teardown(silent_peer_closed_at_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(handshakes_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(interoperates_with_raft_uv_tcp, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
