/* raft/xport.c — a thin forwarding transport (see xport.h). Each outgoing connect gets a
 * wrapper request that remembers raft's request, so the inner transport's callback can set
 * NODELAY and then complete raft's request exactly once. */
#include "xport.h"

#include <stdlib.h>
#include <string.h>

#include "../lib/err.h"

struct xport {
    struct raft_uv_transport inner;
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
    struct raft_uv_transport *outer;
};

struct xport__connect {
    struct raft_uv_connect req; /* handed to the inner transport */
    struct raft_uv_connect *outer_req;
};

static void xport__nodelay(struct uv_stream_s *stream)
{
    if (stream != NULL && stream->type == UV_TCP) {
        uv_tcp_nodelay((uv_tcp_t *)stream, 1); /* best effort: a failure only costs latency */
    }
}

static int xport__init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    struct xport *x = t->impl;
    int rv = x->inner.init(&x->inner, id, address);
    if (rv != 0) {
        memcpy(t->errmsg, x->inner.errmsg, sizeof t->errmsg);
    }
    return rv;
}

static void xport__accept(struct raft_uv_transport *inner, raft_id id, const char *address,
                          struct uv_stream_s *stream)
{
    struct xport *x = inner->data;
    xport__nodelay(stream);
    x->accept_cb(x->outer, id, address, stream);
}

static int xport__listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct xport *x = t->impl;
    x->accept_cb = cb;
    int rv = x->inner.listen(&x->inner, xport__accept);
    if (rv != 0) {
        memcpy(t->errmsg, x->inner.errmsg, sizeof t->errmsg);
    }
    return rv;
}

static void xport__connected(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    struct xport__connect *c = req->data;
    struct raft_uv_connect *outer = c->outer_req;
    free(c);
    if (status == 0) {
        xport__nodelay(stream);
    }
    outer->cb(outer, stream, status);
}

static int xport__connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                          const char *address, raft_uv_connect_cb cb)
{
    struct xport *x = t->impl;
    struct xport__connect *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return RAFT_NOMEM;
    }
    req->cb = cb;
    c->outer_req = req;
    c->req.data = c;
    int rv = x->inner.connect(&x->inner, &c->req, id, address, xport__connected);
    if (rv != 0) {
        free(c); /* the inner transport never calls back on error */
        memcpy(t->errmsg, x->inner.errmsg, sizeof t->errmsg);
    }
    return rv;
}

static void xport__closed(struct raft_uv_transport *inner)
{
    struct xport *x = inner->data;
    if (x->close_cb) {
        x->close_cb(x->outer);
    }
}

static void xport__close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct xport *x = t->impl;
    x->close_cb = cb;
    x->inner.close(&x->inner, xport__closed);
}

int xport_init(struct raft_uv_transport *t, uv_loop_t *loop)
{
    struct xport *x = calloc(1, sizeof *x);
    if (x == NULL) {
        return LR_ENOMEM;
    }
    if (raft_uv_tcp_init(&x->inner, loop) != 0) {
        free(x);
        return LR_EINTERNAL;
    }
    x->inner.data = x;
    x->outer = t;
    memset(t, 0, sizeof *t);
    t->impl = x;
    t->init = xport__init;
    t->listen = xport__listen;
    t->connect = xport__connect;
    t->close = xport__close;
    return 0;
}

void xport_close(struct raft_uv_transport *t)
{
    struct xport *x = t->impl;
    if (x != NULL) {
        raft_uv_tcp_close(&x->inner);
        free(x);
        t->impl = NULL;
    }
}
