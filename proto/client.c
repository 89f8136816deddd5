/* proto/client.c — blocking RPC client (see client.h). */
#include "client.h"

#include "../lib/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t client__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int client_connect(struct client *c, const char *addr, int timeout_ms)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    proto_reader_init(&c->rd);
    msgpack_unpacked_init(&c->up);
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    int rv = addr_resolve(addr, 0, &sa, &salen);
    if (rv != 0) {
        return errmsg_set(c->errmsg, rv, "client: %s is not a reachable host:port", addr);
    }
    c->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        return errmsg_set(c->errmsg, LR_EIO, "client: socket: %s", strerror(errno));
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, salen) != 0 && errno != EINPROGRESS) {
        goto err;
    }
    struct pollfd p = {c->fd, POLLOUT, 0};
    int err = 0;
    socklen_t elen = sizeof err;
    if (poll(&p, 1, timeout_ms) != 1 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) ||
        err != 0) {
        errno = err ? err : ETIMEDOUT;
        goto err;
    }
    return 0;
err:
    errmsg_set(c->errmsg, LR_EUNAVAILABLE, "client: connect %s: %s", addr, strerror(errno));
    close(c->fd);
    c->fd = -1;
    return LR_EUNAVAILABLE;
}

int client_auth(struct client *c, const struct peerauth_key *key, int timeout_ms)
{
    struct peerauth pa;
    int64_t deadline = client__now_ms() + timeout_ms;
    size_t n;
    int rv;
    if ((rv = peerauth_init(&pa, key, 1)) != 0) {
        return errmsg_set(c->errmsg, rv, "client: no randomness for the cluster-key handshake");
    }
    for (;;) {
        const uint8_t *out = peerauth_out(&pa, &n);
        if (n > 0 && (rv = client_send_raw(c, out, n)) != 0) {
            return rv;
        }
        if (peerauth_done(&pa)) {
            return 0;
        }
        uint8_t *want = peerauth_want(&pa, &n);
        int left = (int)(deadline - client__now_ms());
        struct pollfd p = {c->fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, left) != 1) {
            return errmsg_set(c->errmsg, LR_EUNAVAILABLE,
                              "client: %s did not answer the cluster-key handshake in time",
                              c->addr);
        }
        ssize_t r = recv(c->fd, want, n, 0); /* at most what the handshake still needs */
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            continue;
        }
        if (r <= 0) {
            return errmsg_set(c->errmsg, LR_EUNAUTHORIZED,
                              "client: %s closed the connection during the cluster-key "
                              "handshake: it has a different cluster key (check "
                              "--cluster-key-file)",
                              c->addr);
        }
        if ((rv = peerauth_got(&pa, (size_t)r)) != 0) {
            return errmsg_set(c->errmsg, LR_EUNAUTHORIZED, "client: %s: %s", c->addr,
                              peerauth_why(&pa));
        }
    }
}

void client_close(struct client *c)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    proto_reader_free(&c->rd);
    msgpack_unpacked_destroy(&c->up);
}

int client_send_raw(struct client *c, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pf = {c->fd, POLLOUT, 0};
            poll(&pf, 1, 1000);
            continue;
        }
        if (w <= 0) {
            return errmsg_set(c->errmsg, LR_EIO, "client: send: %s", strerror(errno));
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int client_send(struct client *c, int op, const char *args, size_t len, uint64_t *id)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t mark;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_frame_begin(&sb, &mark);
    *id = ++c->next_id;
    proto_msg_begin(&pk, *id, op);
    if (args) {
        msgpack_sbuffer_write(&sb, args, len);
    } else {
        msgpack_pack_nil(&pk);
    }
    proto_frame_end(&sb, mark);
    int rv = client_send_raw(c, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return rv;
}

int client_recv(struct client *c, struct client_reply *r, int timeout_ms)
{
    int64_t deadline = client__now_ms() + timeout_ms;
    const char *frame;
    size_t len;
    for (;;) {
        int rv = proto_reader_next(&c->rd, &frame, &len);
        if (rv < 0) {
            return errmsg_set(c->errmsg, LR_EIO, "client: bad frame from %s", c->addr);
        }
        if (rv == 1) {
            struct proto_msg m;
            msgpack_unpacked_destroy(&c->up);
            msgpack_unpacked_init(&c->up);
            /* The reply's strings point into the reader's buffer, which the next recv may
             * move: callers use a reply before their next recv, as documented. */
            if (proto_unpack(frame, len, &c->up) != 0 || proto_msg_decode(&c->up.data, &m) != 0) {
                return errmsg_set(c->errmsg, LR_EIO, "client: malformed reply from %s", c->addr);
            }
            r->id = m.id;
            r->code = m.op_or_code;
            r->body = m.body;
            return 0;
        }
        int left = (int)(deadline - client__now_ms());
        if (left <= 0) {
            return errmsg_set(c->errmsg, LR_EUNAVAILABLE, "client: timed out waiting for %s",
                              c->addr);
        }
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, left) != 1) {
            continue;
        }
        char buf[65536];
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n == 0) {
            return errmsg_set(c->errmsg, LR_EIO, "client: %s closed the connection", c->addr);
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                continue;
            }
            return errmsg_set(c->errmsg, LR_EIO, "client: recv: %s", strerror(errno));
        }
        if (proto_reader_feed(&c->rd, buf, (size_t)n) != 0) {
            return LR_ENOMEM;
        }
    }
}

int client_call(struct client *c, int op, const char *args, size_t len, struct client_reply *r,
                int timeout_ms)
{
    uint64_t id;
    int rv = client_send(c, op, args, len, &id);
    while (rv == 0) {
        rv = client_recv(c, r, timeout_ms);
        if (rv == 0 && r->id == id) {
            return 0;
        }
    }
    return rv;
}

int client_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
        port = ntohs(sa.sin_port);
    }
    if (fd >= 0) {
        close(fd);
    }
    return port;
}
