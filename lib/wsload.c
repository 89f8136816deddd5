/* lib/wsload.c — see wsload.h.
 *
 * A connection goes CONNECTING (tcp connect) -> HANDSHAKE (request written, waiting for the
 * 101 head) -> OPEN -> CLOSING (uv_close called) -> DONE (handle closed). Only CONNECTING and
 * HANDSHAKE hold a handshake slot; freeing one opens the next waiting connection.
 *
 * Reads. libuv reads into the pool's one buffer; frames are parsed in place. Bytes of a head
 * or frame that is not complete yet move to the connection's `keep` buffer, and the next read
 * is appended there, so a connection costs memory only while it holds a partial frame. A
 * fragmented message is reassembled in `frag` (lws sends whole messages: rare).
 *
 * Writes. A frame goes out with uv_try_write; what the socket does not take (or everything,
 * while an earlier write is queued, which keeps order) is copied into a write request. */
#include "wsload.h"

#include <assert.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "err.h"

#define WSLOAD__RBUF (256 * 1024)
#define WSLOAD__HEAD_MAX 8192
#define WSLOAD__FRAME_STACK 4096

enum {
    WSLOAD__IDLE,
    WSLOAD__CONNECTING,
    WSLOAD__HANDSHAKE,
    WSLOAD__OPEN,
    WSLOAD__CLOSING,
    WSLOAD__DONE
};

struct wsload__conn {
    uv_tcp_t tcp;
    struct wsload *l;
    unsigned id;
    uint8_t state;
    char *keep; /* an incomplete head or frame */
    uint32_t nkeep, capkeep;
    char *frag; /* a fragmented message being reassembled */
    uint32_t nfrag, capfrag;
};

struct wsload__wreq {
    uv_write_t req;
    char data[];
};

struct wsload {
    uv_loop_t *loop;
    struct wsload_spec spec;
    char addr[64], *request;
    size_t request_len;
    struct sockaddr_storage dest;
    struct wsload__conn *conns;
    unsigned target, handles; /* connections wanted; tcp handles not yet closed */
    int pumping, freeing;
    uint32_t mask; /* xorshift state for masking keys */
    struct wsload_stats st;
    void (*done)(void *data);
    void *done_data;
    char rbuf[WSLOAD__RBUF];
};

static void wsload__pump(struct wsload *l);

/* ---- closing -------------------------------------------------------------------------------- */

static void wsload__maybe_done(struct wsload *l)
{
    if (l->freeing && l->handles == 0) {
        void (*done)(void *) = l->done;
        void *data = l->done_data;
        for (unsigned i = 0; i < l->spec.cap; i++) {
            free(l->conns[i].keep);
            free(l->conns[i].frag);
        }
        free(l->conns);
        free(l->request);
        free(l);
        if (done) {
            done(data);
        }
    }
}

static void wsload__handle_closed(uv_handle_t *h)
{
    struct wsload__conn *c = h->data;
    struct wsload *l = c->l;
    c->state = WSLOAD__DONE;
    free(c->keep);
    free(c->frag);
    c->keep = c->frag = NULL;
    c->nkeep = c->capkeep = c->nfrag = c->capfrag = 0;
    l->handles--;
    wsload__maybe_done(l);
}

/* End @c: close its handle and, when @report, tell the closed callback (@code, @why).
 * Idempotent. */
static void wsload__end_as(struct wsload__conn *c, int code, const char *why, int report)
{
    struct wsload *l = c->l;
    int opened = c->state == WSLOAD__OPEN;
    if (c->state == WSLOAD__IDLE || c->state >= WSLOAD__CLOSING) {
        return;
    }
    if (opened) {
        l->st.open--;
        l->st.closed++;
    } else {
        l->st.opening--;
        l->st.failed++;
        if (l->st.first_error[0] == '\0') {
            snprintf(l->st.first_error, sizeof l->st.first_error, "connection %u: %s", c->id, why);
        }
    }
    c->state = WSLOAD__CLOSING;
    uv_close((uv_handle_t *)&c->tcp, wsload__handle_closed);
    if (report && l->spec.cbs.closed) {
        l->spec.cbs.closed(l->spec.data, c->id, opened, code, why);
    }
    wsload__pump(l);
}

static void wsload__end(struct wsload__conn *c, int code, const char *why)
{
    wsload__end_as(c, code, why, !c->l->freeing);
}

static void wsload__end_uv(struct wsload__conn *c, const char *what, int err)
{
    char why[128];
    snprintf(why, sizeof why, "%s: %s", what, uv_strerror(err));
    wsload__end(c, 0, why);
}

/* ---- writing -------------------------------------------------------------------------------- */

static void wsload__written(uv_write_t *req, int status)
{
    struct wsload__conn *c = req->data;
    free(req);
    if (status < 0 && status != UV_ECANCELED) {
        wsload__end_uv(c, "write", status);
    }
}

static int wsload__write(struct wsload__conn *c, const char *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)(uintptr_t)p, (unsigned)n);
    int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (w == (int)n) {
        return 0;
    }
    if (w < 0 && w != UV_EAGAIN) {
        wsload__end_uv(c, "write", w);
        return 0;
    }
    size_t off = w < 0 ? 0 : (size_t)w;
    struct wsload__wreq *r = malloc(sizeof *r + n - off);
    if (r == NULL) {
        return LR_ENOMEM;
    }
    memcpy(r->data, p + off, n - off);
    r->req.data = c;
    b = uv_buf_init(r->data, (unsigned)(n - off));
    int rv = uv_write(&r->req, (uv_stream_t *)&c->tcp, &b, 1, wsload__written);
    if (rv != 0) {
        free(r);
        wsload__end_uv(c, "write", rv);
    }
    return 0;
}

/* One masked frame of @op with @len bytes of @payload. */
static int wsload__frame(struct wsload__conn *c, unsigned op, const char *payload, size_t len)
{
    struct wsload *l = c->l;
    char stack[WSLOAD__FRAME_STACK], *f = stack;
    size_t hlen = len < 126 ? 2 : len < 65536 ? 4 : 10;
    if (hlen + 4 + len > sizeof stack) {
        f = malloc(hlen + 4 + len);
        if (f == NULL) {
            return LR_ENOMEM;
        }
    }
    f[0] = (char)(0x80 | op);
    if (len < 126) {
        f[1] = (char)(0x80 | len);
    } else if (len < 65536) {
        f[1] = (char)(0x80 | 126);
        f[2] = (char)(len >> 8);
        f[3] = (char)len;
    } else {
        f[1] = (char)(0x80 | 127);
        for (int i = 0; i < 8; i++) {
            f[2 + i] = (char)((uint64_t)len >> (56 - 8 * i));
        }
    }
    l->mask ^= l->mask << 13;
    l->mask ^= l->mask >> 17;
    l->mask ^= l->mask << 5;
    unsigned char key[4] = {(unsigned char)l->mask, (unsigned char)(l->mask >> 8),
                            (unsigned char)(l->mask >> 16), (unsigned char)(l->mask >> 24)};
    memcpy(f + hlen, key, 4);
    for (size_t i = 0; i < len; i++) {
        f[hlen + 4 + i] = (char)((unsigned char)payload[i] ^ key[i & 3]);
    }
    int rv = wsload__write(c, f, hlen + 4 + len);
    if (f != stack) {
        free(f);
    }
    return rv;
}

/* ---- reading -------------------------------------------------------------------------------- */

static int wsload__keep(char **buf, uint32_t *n, uint32_t *cap, const char *p, size_t len)
{
    if ((size_t)*n + len > *cap) {
        size_t want = *cap ? *cap : 512;
        while (want < (size_t)*n + len) {
            want *= 2;
        }
        char *b = realloc(*buf, want);
        if (b == NULL) {
            return LR_ENOMEM;
        }
        *buf = b;
        *cap = (uint32_t)want;
    }
    memcpy(*buf + *n, p, len);
    *n += (uint32_t)len;
    return 0;
}

static void wsload__deliver(struct wsload__conn *c, const char *p, size_t n)
{
    struct wsload *l = c->l;
    l->st.messages++;
    if (l->spec.cbs.message) {
        l->spec.cbs.message(l->spec.data, c->id, p, n);
    }
}

/* One whole frame: @op, @fin, @p (@n bytes, unmasked). */
static void wsload__on_frame(struct wsload__conn *c, unsigned op, int fin, const char *p, size_t n)
{
    switch (op) {
    case 0x0: /* continuation */
    case 0x1: /* text */
    case 0x2: /* binary */
        if (op != 0 && fin && c->nfrag == 0) {
            wsload__deliver(c, p, n);
            return;
        }
        if ((size_t)c->nfrag + n > WSLOAD_MSG_MAX ||
            wsload__keep(&c->frag, &c->nfrag, &c->capfrag, p, n) != 0) {
            wsload__end(c, 0, "fragmented message too large");
            return;
        }
        if (fin) {
            uint32_t total = c->nfrag;
            c->nfrag = 0;
            wsload__deliver(c, c->frag, total);
        }
        return;
    case 0x8: { /* close */
        char why[128];
        int code = n >= 2 ? ((unsigned char)p[0] << 8 | (unsigned char)p[1]) : 1005;
        size_t rl = n > 2 ? n - 2 : 0;
        snprintf(why, sizeof why, "closed by the server: %.*s", (int)(rl > 100 ? 100 : rl),
                 n > 2 ? p + 2 : "");
        wsload__end(c, code, why);
        return;
    }
    case 0x9: /* ping */
        if (wsload__frame(c, 0xA, p, n) != 0) {
            wsload__end(c, 0, "out of memory");
        }
        return;
    default: /* pong and reserved opcodes */ return;
    }
}

/* Parse what @p holds; @return the bytes consumed (a partial head or frame is left). */
static size_t wsload__parse(struct wsload__conn *c, char *p, size_t n)
{
    size_t at = 0;
    while (at < n && c->state != WSLOAD__CLOSING) {
        char *s = p + at;
        size_t avail = n - at;
        if (c->state == WSLOAD__HANDSHAKE) {
            char *end = memmem(s, avail, "\r\n\r\n", 4);
            if (end == NULL) {
                if (avail > WSLOAD__HEAD_MAX) {
                    wsload__end(c, 0, "handshake answer head too large");
                }
                return at;
            }
            if (avail < 12 || memcmp(s, "HTTP/1.1 101", 12) != 0) {
                char why[96];
                snprintf(why, sizeof why, "handshake refused: %.*s", (int)(avail < 40 ? avail : 40),
                         s);
                for (char *q = why; *q; q++) {
                    if (*q == '\r' || *q == '\n') {
                        *q = '\0';
                        break;
                    }
                }
                wsload__end(c, 0, why);
                return n;
            }
            at += (size_t)(end + 4 - s);
            c->state = WSLOAD__OPEN;
            c->l->st.opening--;
            c->l->st.open++;
            c->l->st.opened++;
            if (c->l->spec.cbs.opened) {
                c->l->spec.cbs.opened(c->l->spec.data, c->id);
            }
            wsload__pump(c->l);
            continue;
        }
        if (avail < 2) {
            return at;
        }
        unsigned char b0 = (unsigned char)s[0], b1 = (unsigned char)s[1];
        size_t hlen = 2;
        uint64_t len = b1 & 0x7f;
        if (len == 126) {
            if (avail < 4) {
                return at;
            }
            len = (uint64_t)(unsigned char)s[2] << 8 | (unsigned char)s[3];
            hlen = 4;
        } else if (len == 127) {
            if (avail < 10) {
                return at;
            }
            len = 0;
            for (int i = 0; i < 8; i++) {
                len = len << 8 | (unsigned char)s[2 + i];
            }
            hlen = 10;
        }
        if (len > WSLOAD_MSG_MAX) {
            wsload__end(c, 0, "frame too large");
            return n;
        }
        size_t mlen = (b1 & 0x80) ? 4 : 0;
        if (avail < hlen + mlen + len) {
            return at;
        }
        char *payload = s + hlen + mlen;
        if (mlen) { /* servers do not mask; unmask anyway */
            for (size_t i = 0; i < len; i++) {
                payload[i] = (char)(payload[i] ^ s[hlen + (i & 3)]);
            }
        }
        at += hlen + mlen + (size_t)len;
        wsload__on_frame(c, b0 & 0x0f, (b0 & 0x80) != 0, payload, (size_t)len);
    }
    return at;
}

static void wsload__alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct wsload__conn *c = h->data;
    (void)hint;
    *buf = uv_buf_init(c->l->rbuf, sizeof c->l->rbuf);
}

static void wsload__read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct wsload__conn *c = st->data;
    if (nread < 0) {
        wsload__end_uv(c, "read", (int)nread);
        return;
    }
    if (nread == 0 || c->state >= WSLOAD__CLOSING) {
        return;
    }
    c->l->st.bytes += (uint64_t)nread;
    if (c->nkeep == 0) {
        size_t used = wsload__parse(c, buf->base, (size_t)nread);
        if (used < (size_t)nread && c->state < WSLOAD__CLOSING &&
            wsload__keep(&c->keep, &c->nkeep, &c->capkeep, buf->base + used,
                         (size_t)nread - used) != 0) {
            wsload__end(c, 0, "out of memory");
        }
        return;
    }
    if (wsload__keep(&c->keep, &c->nkeep, &c->capkeep, buf->base, (size_t)nread) != 0) {
        wsload__end(c, 0, "out of memory");
        return;
    }
    size_t used = wsload__parse(c, c->keep, c->nkeep);
    if (c->state < WSLOAD__CLOSING && c->keep != NULL) {
        memmove(c->keep, c->keep + used, c->nkeep - used);
        c->nkeep -= (uint32_t)used;
    }
}

/* ---- connecting ----------------------------------------------------------------------------- */

static void wsload__connected(uv_connect_t *req, int status)
{
    struct wsload__conn *c = req->data;
    free(req);
    if (status == UV_ECANCELED || c->state != WSLOAD__CONNECTING) {
        return;
    }
    if (status < 0) {
        wsload__end_uv(c, "connect", status);
        return;
    }
    c->state = WSLOAD__HANDSHAKE;
    int rv = uv_read_start((uv_stream_t *)&c->tcp, wsload__alloc, wsload__read);
    if (rv != 0) {
        wsload__end_uv(c, "read", rv);
        return;
    }
    if (wsload__write(c, c->l->request, c->l->request_len) != 0) {
        wsload__end(c, 0, "out of memory");
    }
}

static void wsload__start(struct wsload__conn *c)
{
    struct wsload *l = c->l;
    int rv = uv_tcp_init_ex(l->loop, &c->tcp, l->dest.ss_family);
    c->tcp.data = c;
    l->st.started++;
    l->st.opening++;
    if (rv != 0) {
        l->st.opening--;
        l->st.failed++;
        c->state = WSLOAD__DONE;
        snprintf(l->st.first_error, sizeof l->st.first_error, "socket: %s", uv_strerror(rv));
        return;
    }
    l->handles++;
    c->state = WSLOAD__CONNECTING;
    if (l->spec.first_source) {
        struct sockaddr_in src;
        unsigned k = l->spec.per_source ? c->id / l->spec.per_source : 0;
        char ip[32];
        snprintf(ip, sizeof ip, "127.0.0.%u", l->spec.first_source + k);
        rv = uv_ip4_addr(ip, 0, &src);
        /* The port is then chosen at connect time for the whole 4-tuple: bind(port 0)
         * alone searches the source's free ports, slower with every socket bound. */
        uv_os_fd_t fd;
        int one = 1;
        if (rv == 0 && uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0) {
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        }
        if (rv == 0) {
            rv = uv_tcp_bind(&c->tcp, (const struct sockaddr *)&src, 0);
        }
        if (rv != 0) {
            wsload__end_uv(c, "bind", rv);
            return;
        }
    }
    uv_connect_t *req = malloc(sizeof *req);
    if (req == NULL) {
        wsload__end(c, 0, "out of memory");
        return;
    }
    req->data = c;
    rv = uv_tcp_connect(req, &c->tcp, (const struct sockaddr *)&l->dest, wsload__connected);
    if (rv != 0) {
        free(req);
        wsload__end_uv(c, "connect", rv);
    }
}

static void wsload__pump(struct wsload *l)
{
    unsigned slots = l->spec.handshakes ? l->spec.handshakes : 256;
    if (l->pumping || l->freeing) {
        return;
    }
    l->pumping = 1;
    while (l->st.started < l->target && l->st.opening < slots) {
        struct wsload__conn *c = &l->conns[l->st.started];
        wsload__start(c);
    }
    l->pumping = 0;
}

/* ---- the pool ------------------------------------------------------------------------------- */

int wsload_new(uv_loop_t *loop, const struct wsload_spec *spec, struct wsload **out)
{
    int rv;
    if (!addr_valid(spec->addr) || spec->cap == 0 || spec->target == NULL ||
        strlen(spec->addr) >= 64 || strlen(spec->target) > 1024 ||
        spec->first_source + (spec->per_source ? (spec->cap - 1) / spec->per_source : 0) > 254) {
        return LR_EINVAL;
    }
    struct wsload *l = calloc(1, sizeof *l);
    if (l == NULL) {
        return LR_ENOMEM;
    }
    socklen_t dlen;
    /* Source addresses are 127.0.0.x: an IPv4 server only. */
    if (addr_resolve(spec->addr, 0, &l->dest, &dlen) != 0 ||
        (spec->first_source && l->dest.ss_family != AF_INET)) {
        rv = LR_EINVAL;
        goto err_after_alloc;
    }
    l->loop = loop;
    l->spec = *spec;
    snprintf(l->addr, sizeof l->addr, "%s", spec->addr);
    l->spec.addr = l->addr;
    l->conns = calloc(spec->cap, sizeof *l->conns);
    l->request_len = strlen(spec->target) + strlen(spec->addr) + 256;
    l->request = malloc(l->request_len);
    if (l->conns == NULL || l->request == NULL) {
        rv = LR_ENOMEM;
        goto err_after_conns;
    }
    /* The key is fixed: the server's answer to it is not checked (see the header). */
    int len = snprintf(l->request, l->request_len,
                       "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: bGF1cmVsIGJlbmNoIHdzIQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n\r\n",
                       spec->target, spec->addr);
    l->request_len = (size_t)len;
    l->spec.target = NULL; /* used only for the request above */
    for (unsigned i = 0; i < spec->cap; i++) {
        l->conns[i].l = l;
        l->conns[i].id = i;
    }
    l->mask = 0x9e3779b9u;
    *out = l;
    return 0;

err_after_conns:
    free(l->conns);
    free(l->request);
err_after_alloc:
    free(l);
    assert(rv != 0);
    return rv;
}

void wsload_grow(struct wsload *l, unsigned n)
{
    l->target = n < l->spec.cap ? n : l->spec.cap;
    wsload__pump(l);
}

int wsload_send(struct wsload *l, unsigned conn, const char *text, size_t len)
{
    if (conn >= l->spec.cap || l->conns[conn].state != WSLOAD__OPEN) {
        return LR_EINVAL;
    }
    return wsload__frame(&l->conns[conn], 0x1, text, len);
}

void wsload_close(struct wsload *l, unsigned conn)
{
    if (conn < l->spec.cap) {
        wsload__end_as(&l->conns[conn], 1000, "closed by the client", 0);
    }
}

void wsload_stats_get(const struct wsload *l, struct wsload_stats *st)
{
    *st = l->st;
}

void wsload_free(struct wsload *l, void (*done)(void *data), void *data)
{
    l->done = done;
    l->done_data = data;
    l->freeing = 1;
    for (unsigned i = 0; i < l->spec.cap; i++) {
        wsload__end(&l->conns[i], 1000, "pool freed");
    }
    wsload__maybe_done(l);
}
