/* node/conn.c — client connections of a replica: framing, coalesced writes, backpressure.
 *
 * Writes are double-buffered: frames accumulate in `out` while `wbuf` is on the wire, and one
 * uv_write carries everything that accumulated, so a burst of answers to one client costs one
 * syscall. A client that stops reading stops being read (its answers bound its memory); a
 * subscriber that falls behind is dropped by the node, never waited for.
 *
 * With a cluster key a connection first runs the responder's side of the cluster-key
 * handshake (proto/peerauth.h): reads are sized by it (so no RPC byte is read early), nothing
 * reaches the RPC decoder until the client's proof checks out, at most NODE_AUTH_MAX
 * connections are in it at once, and each has NODE_AUTH_TIMEOUT_MS.
 *
 * Limits (docs/security.md, "Limits"). At most cfg.max_conns connections: one past it is
 * accepted (so it leaves the listen backlog) and closed at once, which the client sees as a
 * reset it retries like any other. A connection that sent nothing for cfg.idle_s, with no
 * request waiting for an answer (refs), nothing left to write and no subscription, is closed:
 * a subscription stream is quiet by design, and a router's pooled connection that idles
 * between requests reconnects on its next call (router/upstream.c requeues what it had in
 * flight, which an idle connection never has). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/addr.h"
#include "node_int.h"

static void conn__flush(struct node_conn *c);
static void conn__refused(struct node_conn *c, const char *why);

size_t conn__queued(const struct node_conn *c)
{
    return c->out.size + c->wbuf.size;
}

static void conn__free(uv_handle_t *h)
{
    struct node_conn *c = h->data;
    proto_reader_free(&c->rd);
    msgpack_sbuffer_destroy(&c->out);
    msgpack_sbuffer_destroy(&c->wbuf);
    free(c);
}

static void conn__maybe_free(struct node_conn *c)
{
    if (c->closing && c->refs == 0 && !c->writing && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, conn__free);
    }
}

void conn__unref(struct node_conn *c)
{
    c->refs--;
    conn__maybe_free(c);
}

void conn__close(struct node_conn *c, const char *why)
{
    if (c->closing) {
        return;
    }
    LOG(c->n->log, LOG_DEBUG, "rpc: closing a connection: %s", why);
    c->closing = 1;
    if (c->authing) {
        c->authing = 0;
        c->n->authing--;
    }
    node__unsubscribe(c);
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        c->n->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    c->n->nconns--;
    conn__maybe_free(c);
}

void conn__close_idle(struct node *n)
{
    if (n->cfg.idle_s == 0) {
        return;
    }
    uint64_t now = uv_now(n->loop), idle_ms = (uint64_t)n->cfg.idle_s * 1000;
    struct node_conn *next;
    for (struct node_conn *c = n->conns; c; c = next) {
        next = c->next; /* conn__close unlinks c */
        if (c->sub == NULL && c->refs == 0 && conn__queued(c) == 0 && now - c->last_rx >= idle_ms) {
            n->idle_closes++;
            conn__close(c, "idle timeout");
        }
    }
}

void conn__close_all(struct node *n)
{
    while (n->conns) {
        conn__close(n->conns, "node stopping");
    }
}

static void conn__alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    /* Reads land in one buffer owned by the node's loop, then are copied into the reader. */
    struct node_conn *c = h->data;
    (void)hint;
    if (!authio_done(&c->auth)) {
        authio_alloc(&c->auth, buf);
        return;
    }
    buf->base = c->n->rbuf;
    buf->len = sizeof c->n->rbuf;
}

static void conn__read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct node_conn *c = s->data;
    const char *frame;
    size_t len;
    int rv;
    if (nread < 0) {
        if (c->authing) {
            conn__refused(c, "closed during the cluster-key handshake");
        }
        conn__close(c, nread == UV_EOF ? "end of stream" : uv_strerror((int)nread));
        return;
    }
    c->last_rx = uv_now(c->n->loop);
    if (!authio_done(&c->auth)) {
        if (nread > 0 && authio_read(&c->auth, s, nread) != 0) {
            conn__refused(c, authio_why(&c->auth));
            conn__close(c, "cluster-key handshake failed");
        } else if (authio_done(&c->auth)) {
            c->authing = 0;
            c->n->authing--;
        }
        return;
    }
    if (proto_reader_feed(&c->rd, buf->base, (size_t)nread) != 0) {
        conn__close(c, "out of memory");
        return;
    }
    c->refs++; /* a request may close the connection while we loop */
    while (!c->closing && (rv = proto_reader_next(&c->rd, &frame, &len)) == 1) {
        node__request(c, frame, len);
    }
    if (!c->closing && rv < 0) {
        if (peerauth_is_magic((const uint8_t *)buf->base, (size_t)nread)) {
            conn__refused(c,
                          "the client opened with a cluster-key handshake but this replica "
                          "has no cluster key (pass the same --cluster-key-file to every "
                          "process)");
        }
        node__reply_error(c, 0, LR_ETOOBIG, "frame length out of range");
        conn__close(c, "bad frame length");
    }
    if (!c->closing && conn__queued(c) > NODE_CONN_QUEUE_MAX && c->reading) {
        uv_read_stop(s); /* resumed when the answers drain */
        c->reading = 0;
    }
    conn__unref(c);
}

static void conn__written(uv_write_t *req, int status)
{
    struct node_conn *c = req->data;
    c->writing = 0;
    msgpack_sbuffer_clear(&c->wbuf);
    if (status < 0) {
        conn__close(c, uv_strerror(status));
        conn__maybe_free(c);
        return;
    }
    if (c->closing) {
        conn__maybe_free(c);
        return;
    }
    if (!c->reading && conn__queued(c) < NODE_CONN_QUEUE_MAX / 2) {
        c->reading = 1;
        uv_read_start((uv_stream_t *)&c->tcp, conn__alloc, conn__read);
    }
    conn__flush(c);
}

static void conn__flush(struct node_conn *c)
{
    if (c->writing || c->out.size == 0 || c->closing) {
        return;
    }
    msgpack_sbuffer tmp = c->wbuf;
    c->wbuf = c->out;
    c->out = tmp;
    uv_buf_t b = uv_buf_init(c->wbuf.data, (unsigned)c->wbuf.size);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, conn__written) != 0) {
        msgpack_sbuffer_clear(&c->wbuf);
        conn__close(c, "write failed");
        return;
    }
    c->writing = 1;
}

void conn__send(struct node_conn *c, const char *p, size_t len)
{
    unsigned char h[4] = {(unsigned char)(len >> 24), (unsigned char)(len >> 16),
                          (unsigned char)(len >> 8), (unsigned char)len};
    if (c->closing) {
        return;
    }
    if (msgpack_sbuffer_write(&c->out, (const char *)h, 4) != 0 ||
        msgpack_sbuffer_write(&c->out, p, len) != 0) {
        conn__close(c, "out of memory");
        return;
    }
    conn__flush(c);
}

/* A connection refused by the cluster-key handshake: counted, and logged at most once a
 * second so a scanner cannot flood the log. */
static void conn__refused(struct node_conn *c, const char *why)
{
    struct node *n = c->n;
    uint64_t suppressed;
    char peer[96] = "an unknown peer";
    struct sockaddr_storage sa;
    int len = sizeof sa;
    n->auth_failures++;
    if (!log_limit_allow(&n->auth_log, uv_now(n->loop), &suppressed)) {
        return;
    }
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &len) == 0) {
        char ip[64] = "?";
        if (sa.ss_family == AF_INET6) {
            uv_ip6_name((const struct sockaddr_in6 *)&sa, ip, sizeof ip);
        } else {
            uv_ip4_name((const struct sockaddr_in *)&sa, ip, sizeof ip);
        }
        snprintf(peer, sizeof peer, "%s", ip);
    }
    LOG(n->log, LOG_WARN, "rpc: refused a connection from %s: %s (%llu more refusals not logged)",
        peer, why, (unsigned long long)suppressed);
}

void conn__expire(struct node *n)
{
    uint64_t now = uv_now(n->loop);
    struct node_conn *c = n->conns, *next;
    for (; n->authing > 0 && c != NULL; c = next) {
        next = c->next;
        if (c->authing && c->auth_deadline <= now) {
            conn__refused(c, "no cluster-key handshake before the deadline");
            conn__close(c, "cluster-key handshake deadline");
        }
    }
}

static void conn__accept(uv_stream_t *server, int status)
{
    struct node *n = server->data;
    if (status < 0) {
        LOG(n->log, LOG_WARN, "rpc: accept: %s", uv_strerror(status));
        return;
    }
    struct node_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return;
    }
    c->n = n;
    proto_reader_init(&c->rd);
    msgpack_sbuffer_init(&c->out);
    msgpack_sbuffer_init(&c->wbuf);
    uv_tcp_init(n->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, conn__free);
        return;
    }
    if (n->nconns >= n->cfg.max_conns) {
        n->conns_refused++;
        LOG(n->log, LOG_DEBUG, "rpc: refusing a connection: %u open (--max-conns)", n->nconns);
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, conn__free);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->last_rx = uv_now(n->loop);
    n->nconns++;
    c->next = n->conns;
    if (n->conns) {
        n->conns->prev = c;
    }
    n->conns = c;
    if (n->cfg.have_cluster_key) {
        c->authing = 1;
        n->authing++;
        c->auth_deadline = uv_now(n->loop) + NODE_AUTH_TIMEOUT_MS;
        if (n->authing > NODE_AUTH_MAX) {
            conn__refused(c, "too many connections in their cluster-key handshake");
            conn__close(c, "too many handshakes");
            return;
        }
        if (authio_start(&c->auth, (uv_stream_t *)&c->tcp, &n->cfg.cluster_key, 0) != 0) {
            conn__close(c, "cluster-key handshake could not start");
            return;
        }
    }
    c->reading = 1;
    uv_read_start((uv_stream_t *)&c->tcp, conn__alloc, conn__read);
}

int conn__listen(struct node *n, const char *addr, char *errmsg)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    int rv = addr_resolve(addr, 1, &sa, &salen);
    if (rv != 0) {
        return errmsg_set(errmsg, rv, "rpc: address %s is not host:port", addr);
    }
    uv_tcp_init(n->loop, &n->listener);
    n->listener.data = n;
    if ((rv = uv_tcp_bind(&n->listener, (const struct sockaddr *)&sa, 0)) != 0 ||
        (rv = uv_listen((uv_stream_t *)&n->listener, 1024, conn__accept)) != 0) {
        return errmsg_set(errmsg, LR_EIO, "rpc: listen on %s: %s", addr, uv_strerror(rv));
    }
    return 0;
}
