/* raft/xport.c — the raft TCP transport (see xport.h).
 *
 * An outgoing connection ("dial") goes through four stages, and every way out of them goes
 * through xport__dial_done, which completes raft's request exactly once:
 *
 *   RESOLVING   addr_resolve on the thread pool (uv_queue_work)
 *   CONNECTING  uv_tcp_connect
 *   SENDING     the handshake (xport__hello_send)
 *   CLOSING     an error or close() is closing the TCP handle; its close callback completes
 *
 * An incoming connection is accepted, gets TCP_NODELAY, and reads its handshake
 * (xport__hello_read) into a buffer of HANDSHAKE_SIZE_MAX bytes, asking libuv for exactly the
 * bytes still missing, so whatever the peer sends after the handshake stays in the socket for
 * raft's own reader. Connections reading their handshake sit in one list, oldest first; all
 * share one deadline length, so the oldest has the nearest deadline and one timer armed for
 * it serves them all.
 *
 * With a cluster key, the cluster-key handshake (proto/peerauth.h) comes first on each side:
 * the dial goes through AUTH (M1 out, M2 in, M3 out) before SENDING, and an incoming
 * connection answers M1 and checks M3 (authio, sized reads) before reading the preamble. Both
 * are under the same deadline as the preamble: an incoming connection's deadline covers both
 * steps, and a dial in AUTH has its own, found by scanning the (few) dials when the timer is
 * armed. Without a key neither step exists and the bytes are libraft's raft_uv_tcp ones.
 *
 * Closing: the listener, the timer, the connections in their handshake and the dials'
 * handles are all closed; the close callback fires when the count of handles being closed is
 * zero and no dial or handshake is left (xport__maybe_closed). struct xport lives until
 * xport_close, after that callback. */
#include "xport.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/addr.h"
#include "../lib/err.h"
#include "../proto/authio.h"
#include "handshake.h"

#define XPORT__BACKLOG 64

enum xport__stage {
    XPORT__RESOLVING,
    XPORT__CONNECTING,
    XPORT__AUTH, /* the cluster-key handshake (proto/peerauth.h), with a key only */
    XPORT__SENDING,
    XPORT__CLOSING
};

struct xport;

/* One connect request of raft's, until its callback fires. */
struct xport__dial {
    struct xport *x;
    struct raft_uv_connect *req; /* raft's; completed exactly once */
    enum xport__stage stage;
    int status; /* RAFT_* given to raft once the TCP handle is closed */
    uv_work_t work;
    int resolve_rv; /* written on the thread pool, read after it */
    struct sockaddr_storage sa;
    socklen_t salen;
    uv_tcp_t *tcp; /* raft_malloc'd: raft frees it once it is handed over */
    uv_connect_t connect;
    uv_write_t write;
    struct authio auth;
    uint64_t deadline; /* uv_now() past which the cluster-key handshake has failed */
    struct xport__dial *prev, *next;
    char address[]; /* the peer's, copied */
};

/* One accepted connection, until its handshake is read or it is closed. */
struct xport__incoming {
    struct xport *x;
    uv_tcp_t *tcp;      /* raft_malloc'd: raft frees it once it is handed over */
    uint64_t deadline;  /* uv_now() past which it is closed */
    uint64_t id;        /* the sender's, once the preamble is read */
    size_t need, got;   /* bytes of buf wanted so far, and read */
    struct authio auth; /* the cluster-key handshake, before the preamble */
    struct xport__incoming *prev, *next;
    uint8_t buf[HANDSHAKE_SIZE_MAX];
};

struct xport {
    struct raft_uv_transport *t; /* the interface implemented (t->data is raft's) */
    uv_loop_t *loop;
    struct logger *log; /* borrowed */
    unsigned timeout_ms;
    const struct peerauth_key *key; /* borrowed; NULL: no cluster key */
    uint64_t auth_failures;
    struct log_limit refusals; /* rate limit of the refusal lines */
    raft_id id;
    char address[HANDSHAKE_ADDRESS_MAX];
    uint8_t hello[HANDSHAKE_SIZE_MAX]; /* our handshake, encoded once, sent on every dial */
    size_t hello_len;
    struct sockaddr_storage bind_sa;
    socklen_t bind_len;
    uv_tcp_t listener;
    uv_timer_t timer; /* closes the oldest incoming at its deadline */
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
    struct xport__incoming *in_head, *in_tail; /* oldest first */
    unsigned n_in;
    struct xport__dial *dials;
    unsigned closing_handles; /* uv_close called, close callback not yet run */
    int inited;               /* init ran: listener and timer are in the loop */
    int closing;              /* close ran */
    int closed;               /* ... and its callback fired */
};

/* ---- closing --------------------------------------------------------------------------------- */

static void xport__maybe_closed(struct xport *x)
{
    if (!x->closing || x->closed || x->closing_handles > 0 || x->dials != NULL ||
        x->in_head != NULL) {
        return;
    }
    x->closed = 1;
    if (x->close_cb != NULL) {
        x->close_cb(x->t); /* may free x (xport_close): nothing after this */
    }
}

static void xport__handle_closed(uv_handle_t *h)
{
    struct xport *x = h->data;
    x->closing_handles--;
    xport__maybe_closed(x);
}

/* "[::1]:5000" or "10.0.0.2:5000" of @tcp's peer, for logs. */
static void xport__peer(uv_tcp_t *tcp, char *out, size_t cap)
{
    struct sockaddr_storage sa;
    int len = sizeof sa;
    char ip[64];
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&sa, &len) != 0) {
        snprintf(out, cap, "an unknown peer");
    } else if (sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa;
        uv_ip6_name(in6, ip, sizeof ip);
        snprintf(out, cap, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
    } else {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&sa;
        uv_ip4_name(in4, ip, sizeof ip);
        snprintf(out, cap, "%s:%u", ip, (unsigned)ntohs(in4->sin_port));
    }
}

/* ---- incoming connections -------------------------------------------------------------------- */

static void xport__in_unlink(struct xport__incoming *in)
{
    struct xport *x = in->x;
    if (in->prev) {
        in->prev->next = in->next;
    } else {
        x->in_head = in->next;
    }
    if (in->next) {
        in->next->prev = in->prev;
    } else {
        x->in_tail = in->prev;
    }
    x->n_in--;
}

static void xport__in_closed(uv_handle_t *h)
{
    struct xport__incoming *in = h->data;
    struct xport *x = in->x;
    raft_free(in->tcp);
    free(in);
    x->closing_handles--;
    xport__maybe_closed(x);
}

/* Close @in's connection; raft never hears of it. No read callback runs after uv_close. */
static void xport__in_abort(struct xport__incoming *in)
{
    xport__in_unlink(in);
    in->x->closing_handles++;
    uv_close((uv_handle_t *)in->tcp, xport__in_closed);
}

static void xport__in_refuse(struct xport__incoming *in, int rv, const char *why)
{
    char peer[96];
    uint64_t suppressed;
    if (log_limit_allow(&in->x->refusals, uv_now(in->x->loop), &suppressed)) {
        xport__peer(in->tcp, peer, sizeof peer);
        LOG(in->x->log, LOG_WARN,
            "xport: refused a raft connection from %s: %s (%s; %llu more refusals not logged)",
            peer, why, err_message(rv), (unsigned long long)suppressed);
    }
    xport__in_abort(in);
}

static void xport__expire(uv_timer_t *timer);

/* Arm the timer for the oldest handshake's deadline. */
static void xport__arm(struct xport *x)
{
    uint64_t next = UINT64_MAX;
    if (x->closing) {
        return;
    }
    if (x->in_head != NULL) {
        next = x->in_head->deadline;
    }
    /* Dials in their cluster-key handshake: a handful (one per peer), scanned. */
    for (struct xport__dial *d = x->dials; d != NULL; d = d->next) {
        if (d->stage == XPORT__AUTH && d->deadline < next) {
            next = d->deadline;
        }
    }
    if (next == UINT64_MAX) {
        return;
    }
    uint64_t now = uv_now(x->loop);
    uv_timer_start(&x->timer, xport__expire, next > now ? next - now : 0, 0);
}

static void xport__dial_abort(struct xport__dial *d, int status);

static void xport__expire(uv_timer_t *timer)
{
    struct xport *x = timer->data;
    uint64_t now = uv_now(x->loop);
    while (x->in_head != NULL && x->in_head->deadline <= now) {
        if (!authio_done(&x->in_head->auth)) {
            x->auth_failures++;
        }
        xport__in_refuse(x->in_head, LR_EUNAVAILABLE, "no handshake before the deadline");
    }
    for (struct xport__dial *d = x->dials; d != NULL; d = d->next) {
        if (d->stage == XPORT__AUTH && d->deadline <= now) {
            x->auth_failures++;
            LOG(x->log, LOG_WARN, "xport: connect to %s: no cluster-key handshake answer in %u ms",
                d->address, x->timeout_ms);
            xport__dial_abort(d, RAFT_NOCONNECTION); /* stage CLOSING: skipped from now on */
        }
    }
    xport__arm(x);
}

/* The handshake is read and valid: the stream is raft's from here. */
static void xport__hello_done(struct xport__incoming *in, const char *address)
{
    struct xport *x = in->x;
    uv_read_stop((uv_stream_t *)in->tcp);
    xport__in_unlink(in);
    x->accept_cb(x->t, in->id, address, (uv_stream_t *)in->tcp); /* copies @address */
    free(in);
}

static void xport__hello_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct xport__incoming *in = h->data;
    (void)suggested;
    if (!authio_done(&in->auth)) {
        authio_alloc(&in->auth, buf);
        return;
    }
    *buf = uv_buf_init((char *)in->buf + in->got, (unsigned)(in->need - in->got));
}

static void xport__hello_recv(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct xport__incoming *in = stream->data;
    const char *address;
    size_t alen;
    int rv;
    (void)buf;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        /* Closed early: a port probe or a health check more often than a replica. */
        LOG(in->x->log, LOG_DEBUG, "xport: raft connection closed in its handshake: %s",
            uv_strerror((int)nread));
        xport__in_abort(in);
        return;
    }
    if (!authio_done(&in->auth)) {
        if ((rv = authio_read(&in->auth, stream, nread)) != 0) {
            in->x->auth_failures++;
            xport__in_refuse(in, rv, authio_why(&in->auth));
        }
        return; /* when done, the next read is the preamble's */
    }
    in->got += (size_t)nread;
    if (in->got < in->need) {
        return;
    }
    if (in->need == HANDSHAKE_PREAMBLE_SIZE) {
        if ((rv = handshake_preamble(in->buf, &in->id, &alen)) != 0) {
            xport__in_refuse(in, rv,
                             peerauth_is_magic(in->buf, in->got)
                                 ? "the peer opened with a cluster-key handshake but this replica "
                                   "has no cluster key (pass the same --cluster-key-file to every "
                                   "process)"
                                 : "bad handshake preamble");
            return;
        }
        in->need += alen; /* alen >= 8: libuv asks hello_alloc for it next */
        return;
    }
    rv = handshake_address(in->buf + HANDSHAKE_PREAMBLE_SIZE, in->need - HANDSHAKE_PREAMBLE_SIZE,
                           &address);
    if (rv != 0) {
        xport__in_refuse(in, rv, "bad address in handshake");
        return;
    }
    xport__hello_done(in, address);
}

/* The listening side's handshake step: read the preamble, then the address it announces. */
static int xport__hello_read(struct xport__incoming *in)
{
    in->need = HANDSHAKE_PREAMBLE_SIZE;
    return uv_read_start((uv_stream_t *)in->tcp, xport__hello_alloc, xport__hello_recv);
}

static void xport__accepted(uv_stream_t *listener, int status)
{
    struct xport *x = listener->data;
    if (status != 0) {
        LOG(x->log, LOG_WARN, "xport: accept on %s: %s", x->address, uv_strerror(status));
        return;
    }
    struct xport__incoming *in = calloc(1, sizeof *in);
    uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
    if (in == NULL || tcp == NULL) {
        /* libuv stops polling the listener until a connection is accepted: raft can no longer
         * be reached here, and memory is short anyway. */
        LOG(x->log, LOG_ERROR, "xport: out of memory accepting a raft connection");
        free(in);
        raft_free(tcp);
        return;
    }
    uv_tcp_init(x->loop, tcp);
    tcp->data = in;
    in->x = x;
    in->tcp = tcp;
    in->deadline = uv_now(x->loop) + x->timeout_ms;
    in->prev = x->in_tail;
    if (x->in_tail) {
        x->in_tail->next = in;
    } else {
        x->in_head = in;
    }
    x->in_tail = in;
    x->n_in++;
    int rv = uv_accept(listener, (uv_stream_t *)tcp);
    if (rv != 0) {
        LOG(x->log, LOG_WARN, "xport: accept on %s: %s", x->address, uv_strerror(rv));
        xport__in_abort(in);
        return;
    }
    uv_tcp_nodelay(tcp, 1); /* best effort: a failure only costs latency */
    if (x->n_in > XPORT_HANDSHAKES_MAX) {
        xport__in_refuse(in, LR_EUNAVAILABLE, "too many connections in their handshake");
        return;
    }
    if ((rv = authio_start(&in->auth, (uv_stream_t *)tcp, x->key, 0)) != 0 ||
        (rv = xport__hello_read(in)) != 0) {
        LOG(x->log, LOG_WARN, "xport: read on %s: %s", x->address, uv_strerror(rv));
        xport__in_abort(in);
        return;
    }
    if (!uv_is_active((uv_handle_t *)&x->timer)) {
        xport__arm(x);
    }
}

/* ---- outgoing connections -------------------------------------------------------------------- */

/* Complete raft's request: @stream is raft's when @status is 0. */
static void xport__dial_done(struct xport__dial *d, int status, uv_stream_t *stream)
{
    struct xport *x = d->x;
    struct raft_uv_connect *req = d->req;
    if (d->prev) {
        d->prev->next = d->next;
    } else {
        x->dials = d->next;
    }
    if (d->next) {
        d->next->prev = d->prev;
    }
    free(d);
    req->cb(req, stream, status);
    xport__maybe_closed(x);
}

static void xport__dial_closed(uv_handle_t *h)
{
    struct xport__dial *d = h->data;
    raft_free(d->tcp);
    d->tcp = NULL;
    xport__dial_done(d, d->status, NULL);
}

/* Close the dial's TCP handle; its close callback completes the request with @status. A
 * pending connect or write callback runs first, with UV_ECANCELED, and sees CLOSING. */
static void xport__dial_abort(struct xport__dial *d, int status)
{
    d->status = status;
    d->stage = XPORT__CLOSING;
    uv_close((uv_handle_t *)d->tcp, xport__dial_closed);
}

static void xport__dial_fail(struct xport__dial *d, const char *what, int uv_rv)
{
    LOG(d->x->log, LOG_DEBUG, "xport: connect to %s: %s: %s", d->address, what, uv_strerror(uv_rv));
    xport__dial_abort(d, RAFT_NOCONNECTION);
}

static void xport__hello_sent(uv_write_t *w, int status)
{
    struct xport__dial *d = w->data;
    if (d->stage == XPORT__CLOSING) {
        return;
    }
    if (status != 0) {
        xport__dial_fail(d, "handshake", status);
        return;
    }
    xport__dial_done(d, 0, (uv_stream_t *)d->tcp);
}

/* The connecting side's handshake step: who we are, before any raft message. */
static void xport__hello_send(struct xport__dial *d)
{
    struct xport *x = d->x;
    uv_buf_t b = uv_buf_init((char *)x->hello, (unsigned)x->hello_len); /* shared, read-only */
    d->stage = XPORT__SENDING;
    d->write.data = d;
    int rv = uv_write(&d->write, (uv_stream_t *)d->tcp, &b, 1, xport__hello_sent);
    if (rv != 0) {
        xport__dial_fail(d, "handshake", rv);
    }
}

static void xport__auth_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct xport__dial *d = h->data;
    (void)suggested;
    authio_alloc(&d->auth, buf);
}

static void xport__auth_recv(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct xport__dial *d = stream->data;
    struct xport *x = d->x;
    int rv;
    (void)buf;
    if (d->stage != XPORT__AUTH || nread == 0) {
        return;
    }
    if (nread < 0) {
        /* A keyed replica closes on a wrong key without a word, and so does an unkeyed one
         * on our M1: either way the peer refused us. */
        uint64_t suppressed;
        x->auth_failures++;
        if (log_limit_allow(&x->refusals, uv_now(x->loop), &suppressed)) {
            LOG(x->log, LOG_WARN,
                "xport: connect to %s: the peer closed the connection during the cluster-key "
                "handshake (%s): does it have the same --cluster-key-file?",
                d->address, uv_strerror((int)nread));
        }
        xport__dial_abort(d, RAFT_NOCONNECTION);
        return;
    }
    if ((rv = authio_read(&d->auth, stream, nread)) != 0) {
        uint64_t suppressed;
        x->auth_failures++;
        if (log_limit_allow(&x->refusals, uv_now(x->loop), &suppressed)) {
            LOG(x->log, LOG_WARN, "xport: connect to %s: refused the peer: %s (%s)", d->address,
                authio_why(&d->auth), err_message(rv));
        }
        xport__dial_abort(d, RAFT_NOCONNECTION);
        return;
    }
    if (authio_done(&d->auth)) {
        uv_read_stop(stream);
        xport__hello_send(d); /* queued after M3 on the same stream */
    }
}

/* The connecting side's cluster-key step, with a key only: M1 out, M2 in, M3 out. */
static void xport__auth_start(struct xport__dial *d)
{
    struct xport *x = d->x;
    int rv;
    d->stage = XPORT__AUTH;
    d->deadline = uv_now(x->loop) + x->timeout_ms;
    if ((rv = authio_start(&d->auth, (uv_stream_t *)d->tcp, x->key, 1)) != 0) {
        LOG(x->log, LOG_WARN, "xport: connect to %s: %s", d->address, err_message(rv));
        xport__dial_abort(d, RAFT_NOCONNECTION);
        return;
    }
    if ((rv = uv_read_start((uv_stream_t *)d->tcp, xport__auth_alloc, xport__auth_recv)) != 0) {
        xport__dial_fail(d, "read", rv);
        return;
    }
    xport__arm(x);
}

static void xport__connected(uv_connect_t *c, int status)
{
    struct xport__dial *d = c->data;
    if (d->stage == XPORT__CLOSING) {
        return;
    }
    if (status != 0) {
        xport__dial_fail(d, "tcp", status);
        return;
    }
    uv_tcp_nodelay(d->tcp, 1); /* best effort: a failure only costs latency */
    if (d->x->key != NULL) {
        xport__auth_start(d);
        return;
    }
    xport__hello_send(d);
}

/* Thread pool: the only code of this file off the loop thread. It touches d's resolve fields,
 * which the loop thread reads only after xport__resolved. */
static void xport__resolve(uv_work_t *w)
{
    struct xport__dial *d = w->data;
    d->resolve_rv = addr_resolve(d->address, 0, &d->sa, &d->salen);
}

static void xport__resolved(uv_work_t *w, int status)
{
    struct xport__dial *d = w->data;
    struct xport *x = d->x;
    if (x->closing || status != 0) { /* status: UV_ECANCELED, from close() */
        xport__dial_done(d, RAFT_CANCELED, NULL);
        return;
    }
    if (d->resolve_rv != 0) {
        LOG(x->log, LOG_DEBUG, "xport: connect to %s: %s", d->address, err_message(d->resolve_rv));
        xport__dial_done(d, RAFT_NOCONNECTION, NULL);
        return;
    }
    if ((d->tcp = raft_malloc(sizeof *d->tcp)) == NULL) {
        xport__dial_done(d, RAFT_NOMEM, NULL);
        return;
    }
    uv_tcp_init(x->loop, d->tcp);
    d->tcp->data = d;
    d->stage = XPORT__CONNECTING;
    d->connect.data = d;
    int rv = uv_tcp_connect(&d->connect, d->tcp, (const struct sockaddr *)&d->sa, xport__connected);
    if (rv != 0) {
        xport__dial_fail(d, "tcp", rv);
    }
}

/* ---- raft_uv_transport ----------------------------------------------------------------------- */

static int xport__init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct xport *x = t->impl;
    int rv;
    assert(!x->inited);
    if (strlen(address) >= sizeof x->address ||
        handshake_encode(id, address, x->hello, sizeof x->hello, &x->hello_len) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "address %s is not host:port", address);
        return RAFT_INVALID;
    }
    if ((rv = addr_resolve(address, 1, &x->bind_sa, &x->bind_len)) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "address %s: %s", address, err_message(rv));
        return RAFT_INVALID;
    }
    x->id = id;
    memcpy(x->address, address, strlen(address) + 1);
    /* Neither fails: the TCP handle gets its socket at bind. */
    uv_tcp_init(x->loop, &x->listener);
    x->listener.data = x;
    uv_timer_init(x->loop, &x->timer);
    x->timer.data = x;
    x->inited = 1;
    return 0;
}

static int xport__listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct xport *x = t->impl;
    int rv;
    assert(x->inited && !x->closing);
    x->accept_cb = cb;
    if ((rv = uv_tcp_bind(&x->listener, (const struct sockaddr *)&x->bind_sa, 0)) != 0 ||
        (rv = uv_listen((uv_stream_t *)&x->listener, XPORT__BACKLOG, xport__accepted)) != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "listen on %.160s: %s", x->address, uv_strerror(rv));
        return RAFT_IOERR;
    }
    return 0;
}

static int xport__connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                          const char *address, raft_uv_connect_cb cb)
{
    struct xport *x = t->impl;
    size_t n = strlen(address);
    (void)id;
    if (x->closing) {
        return RAFT_CANCELED; /* raft does not connect after close; refuse rather than leak */
    }
    if (!addr_valid(address)) {
        snprintf(t->errmsg, sizeof t->errmsg, "address %s is not host:port", address);
        return RAFT_NOCONNECTION;
    }
    struct xport__dial *d = calloc(1, sizeof *d + n + 1);
    if (d == NULL) {
        snprintf(t->errmsg, sizeof t->errmsg, "out of memory");
        return RAFT_NOMEM;
    }
    d->x = x;
    d->req = req;
    d->stage = XPORT__RESOLVING;
    memcpy(d->address, address, n + 1);
    d->work.data = d;
    int rv = uv_queue_work(x->loop, &d->work, xport__resolve, xport__resolved);
    if (rv != 0) {
        snprintf(t->errmsg, sizeof t->errmsg, "connect to %s: %s", address, uv_strerror(rv));
        free(d);
        return RAFT_NOCONNECTION;
    }
    req->cb = cb;
    d->next = x->dials;
    if (x->dials) {
        x->dials->prev = d;
    }
    x->dials = d;
    return 0;
}

static void xport__close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct xport *x = t->impl;
    assert(x->inited && !x->closing);
    x->closing = 1;
    x->close_cb = cb;
    while (x->in_head != NULL) {
        xport__in_abort(x->in_head);
    }
    for (struct xport__dial *d = x->dials; d != NULL; d = d->next) {
        switch (d->stage) {
        case XPORT__RESOLVING:
            /* Either way xport__resolved runs: at once with UV_ECANCELED if the work had not
             * started, else after addr_resolve returns. */
            uv_cancel((uv_req_t *)&d->work);
            break;
        case XPORT__CONNECTING:
        case XPORT__AUTH:
        case XPORT__SENDING: xport__dial_abort(d, RAFT_CANCELED); break;
        case XPORT__CLOSING: d->status = RAFT_CANCELED; break;
        }
    }
    x->closing_handles += 2;
    uv_close((uv_handle_t *)&x->listener, xport__handle_closed);
    uv_close((uv_handle_t *)&x->timer, xport__handle_closed);
}

/* ---- public ---------------------------------------------------------------------------------- */

int xport_init(struct raft_uv_transport *t, uv_loop_t *loop, struct logger *log)
{
    struct xport *x = calloc(1, sizeof *x);
    if (x == NULL) {
        return LR_ENOMEM;
    }
    x->t = t;
    x->loop = loop;
    x->log = log;
    x->timeout_ms = XPORT_HANDSHAKE_TIMEOUT_MS;
    void *data = t->data;
    memset(t, 0, sizeof *t);
    t->data = data;
    t->impl = x;
    t->init = xport__init;
    t->listen = xport__listen;
    t->connect = xport__connect;
    t->close = xport__close;
    return 0;
}

void xport_set_handshake_timeout(struct raft_uv_transport *t, unsigned ms)
{
    struct xport *x = t->impl;
    assert(ms >= 1);
    x->timeout_ms = ms;
}

void xport_set_key(struct raft_uv_transport *t, const struct peerauth_key *key)
{
    struct xport *x = t->impl;
    x->key = key;
}

uint64_t xport_auth_failures(const struct raft_uv_transport *t)
{
    const struct xport *x = t->impl;
    return x != NULL ? x->auth_failures : 0;
}

void xport_close(struct raft_uv_transport *t)
{
    struct xport *x = t->impl;
    if (x != NULL) {
        /* Between init and the close callback the listener and timer are in the loop. */
        assert(!x->inited || x->closed);
        free(x);
        t->impl = NULL;
    }
}
