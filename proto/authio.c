/* proto/authio.c — the peer handshake on a libuv stream (see authio.h). */
#include "authio.h"

#include <stdlib.h>
#include <string.h>

#include "../lib/err.h"

/* One message on its way: the request and a copy of the bytes, freed together. */
struct authio__write {
    uv_write_t req;
    uint8_t bytes[PEERAUTH_M2];
};

static void authio__written(uv_write_t *req, int status)
{
    /* A failed write shows up on the read side as an error or end of stream. */
    (void)status;
    free(req->data);
}

static int authio__flush(struct authio *a, uv_stream_t *s)
{
    size_t n;
    const uint8_t *p = peerauth_out(&a->pa, &n);
    if (n == 0) {
        return 0;
    }
    struct authio__write *w = malloc(sizeof *w);
    if (w == NULL) {
        return LR_ENOMEM;
    }
    memcpy(w->bytes, p, n);
    w->req.data = w;
    uv_buf_t b = uv_buf_init((char *)w->bytes, (unsigned)n);
    if (uv_write(&w->req, s, &b, 1, authio__written) != 0) {
        free(w);
        return LR_EIO;
    }
    return 0;
}

int authio_start(struct authio *a, uv_stream_t *s, const struct peerauth_key *key, int initiator)
{
    int rv;
    memset(a, 0, sizeof *a);
    if (key == NULL) {
        return 0;
    }
    a->on = 1;
    if ((rv = peerauth_init(&a->pa, key, initiator)) != 0) {
        return rv;
    }
    return authio__flush(a, s);
}

int authio_done(const struct authio *a)
{
    return !a->on || peerauth_done(&a->pa);
}

void authio_alloc(struct authio *a, uv_buf_t *buf)
{
    size_t n;
    uint8_t *p = peerauth_want(&a->pa, &n);
    /* n is 0 only after a failure, when the caller is closing: libuv treats a 0-length buffer
     * as UV_ENOBUFS and the read callback sees it. */
    *buf = uv_buf_init((char *)p, (unsigned)n);
}

int authio_read(struct authio *a, uv_stream_t *s, ssize_t nread)
{
    int rv = peerauth_got(&a->pa, (size_t)nread);
    if (rv != 0) {
        return rv;
    }
    if ((rv = authio__flush(a, s)) != 0) {
        a->pa.state = PEERAUTH_FAILED;
        a->pa.why = "could not send our answer";
    }
    return rv;
}

const char *authio_why(const struct authio *a)
{
    return peerauth_why(&a->pa);
}
