/* bench/httpload.c — see httpload.h.
 *
 * One private uv loop per run. Each connection owns a request buffer and an answer buffer,
 * allocated once per run; the answer is parsed in place: the head is looked for up to its
 * blank line, then Content-Length bytes of body are counted (and kept while they fit, for the
 * done callback). A connection holds at most one request: it sends the next one when the
 * answer is complete and its write has finished (an answer may, rarely, complete before
 * libuv reports the write done; the next request then waits for the write callback).
 *
 * A timed run: `finished` is set at the deadline; from then no request is sent and answers
 * are no longer counted, idle connections close at once and busy ones when their answer
 * arrives, and a drain timer closes whatever is left after HTTPLOAD__DRAIN_MS. The run ends
 * when every connection is closed, and with it the timers; uv_run then returns. */
#include "httpload.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "../lib/addr.h"
#include "../lib/err.h"

#define HTTPLOAD__DRAIN_MS 10000
#define HTTPLOAD__RECONNECTS 100

struct httpload__run;

struct httpload__conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    struct httpload__run *run;
    unsigned id;
    int open;      /* tcp initialised and not yet closed */
    int closing;   /* uv_close called */
    int redial;    /* connect again once closed */
    int in_flight; /* a request is out, its answer not complete */
    int writing;   /* a uv_write is pending */
    int deferred;  /* the answer completed while writing: send the next one on write_cb */
    uint64_t seq, sent_ns;
    /* answer parser */
    char *rbuf;
    size_t rlen;      /* bytes held in rbuf */
    size_t head_len;  /* 0 until the blank line is found */
    size_t body_need; /* Content-Length */
    size_t body_got;  /* body bytes received, kept or not */
    int status;
    int truncated; /* body bytes were dropped: the done callback gets NULL */
    char *wbuf;
    size_t wlen;
};

struct httpload__run {
    uv_loop_t loop;
    uv_timer_t end, drain;
    const struct httpload_spec *spec;
    struct httpload_result *res;
    struct sockaddr_storage sa;
    struct httpload__conn *conns;
    uint64_t next_seq, t0;
    int finished;  /* the measured window is over: send nothing more, count nothing more */
    unsigned open; /* connections whose handle is open */
    unsigned redials, max_redials;
    int ended; /* timers closed */
};

/* ---- histogram ------------------------------------------------------------------------------ */

void httpload_hist_add(struct httpload_hist *h, uint64_t ns)
{
    unsigned pi, sub;
    if (ns < HTTPLOAD_HIST_SUB) {
        pi = 0;
        sub = (unsigned)ns;
    } else {
        unsigned p = 63u - (unsigned)__builtin_clzll(ns); /* >= 5 */
        pi = p - 4;
        sub = (unsigned)(ns >> (p - 5)) & (HTTPLOAD_HIST_SUB - 1);
        if (pi >= HTTPLOAD_HIST_POW) {
            pi = HTTPLOAD_HIST_POW - 1;
            sub = HTTPLOAD_HIST_SUB - 1;
        }
    }
    h->bucket[pi][sub]++;
    h->n++;
}

double httpload_hist_quantile_ms(const struct httpload_hist *h, double q)
{
    if (h->n == 0) {
        return 0.0;
    }
    uint64_t want = (uint64_t)((double)h->n * q + 0.999999), cum = 0;
    if (want == 0) {
        want = 1;
    }
    for (unsigned pi = 0; pi < HTTPLOAD_HIST_POW; pi++) {
        for (unsigned s = 0; s < HTTPLOAD_HIST_SUB; s++) {
            cum += h->bucket[pi][s];
            if (cum >= want) {
                double upper = pi == 0
                                   ? (double)(s + 1)
                                   : (double)((uint64_t)(HTTPLOAD_HIST_SUB + s + 1) << (pi - 1));
                return upper / 1e6;
            }
        }
    }
    return 0.0;
}

/* ---- connections ---------------------------------------------------------------------------- */

static void httpload__dial(struct httpload__conn *c);
static void httpload__send(struct httpload__conn *c);

static void httpload__error(struct httpload__conn *c, const char *what, int uv_rv)
{
    struct httpload_result *res = c->run->res;
    res->transport_errors++;
    if (res->errmsg[0] == '\0') {
        snprintf(res->errmsg, sizeof res->errmsg, "%s: %s", what,
                 uv_rv ? uv_strerror(uv_rv) : "protocol error");
    }
}

static void httpload__end_if_idle(struct httpload__run *r)
{
    if (r->open == 0 && !r->ended) {
        r->ended = 1;
        if (!r->finished) {
            r->finished = 1;
            r->res->seconds = (double)(uv_hrtime() - r->t0) / 1e9;
        }
        uv_close((uv_handle_t *)&r->end, NULL);
        uv_close((uv_handle_t *)&r->drain, NULL);
    }
}

static void httpload__closed(uv_handle_t *h)
{
    struct httpload__conn *c = h->data;
    struct httpload__run *r = c->run;
    c->open = 0;
    c->closing = 0;
    r->open--;
    if (c->redial && !r->finished) {
        c->redial = 0;
        httpload__dial(c);
    }
    httpload__end_if_idle(r);
}

static void httpload__close(struct httpload__conn *c)
{
    if (c->open && !c->closing) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, httpload__closed);
    }
}

/* The connection failed: its request in flight is lost; connect again if the run allows. */
static void httpload__fail(struct httpload__conn *c, const char *what, int uv_rv)
{
    struct httpload__run *r = c->run;
    httpload__error(c, what, uv_rv);
    c->in_flight = 0;
    if (!r->finished && r->redials < r->max_redials) {
        r->redials++;
        c->redial = 1;
    }
    httpload__close(c);
}

static void httpload__complete(struct httpload__conn *c)
{
    struct httpload__run *r = c->run;
    struct httpload_result *res = r->res;
    uint64_t ns = uv_hrtime() - c->sent_ns;
    c->in_flight = 0;
    if (!r->finished) {
        res->answered++;
        if (c->status >= 200 && c->status < 300) {
            res->ok++;
        }
        res->status[c->status]++;
        httpload_hist_add(&res->hist, ns);
    }
    if (r->spec->done) {
        r->spec->done(r->spec->data, c->id, c->seq, c->status,
                      c->truncated ? NULL : c->rbuf + c->head_len, c->body_need);
    }
    c->rlen = c->head_len = c->body_need = c->body_got = 0;
    c->truncated = 0;
    if (c->writing) {
        c->deferred = 1;
    } else {
        httpload__send(c);
    }
}

/* Parse the head in c->rbuf[0, c->head_len): status and Content-Length. 0 or -1. */
static int httpload__parse_head(struct httpload__conn *c)
{
    const char *p = c->rbuf, *end = c->rbuf + c->head_len;
    int have_len = 0;
    if (c->head_len < 16 || memcmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ') {
        return -1;
    }
    c->status = 0;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }
        c->status = c->status * 10 + (p[i] - '0');
    }
    if (c->status < 100 || c->status >= 600) {
        return -1;
    }
    for (p = memchr(p, '\n', (size_t)(end - p)); p && p + 1 < end;
         p = memchr(p + 1, '\n', (size_t)(end - p - 1))) {
        const char *line = p + 1;
        static const char cl[] = "content-length:";
        if ((size_t)(end - line) > sizeof cl && strncasecmp(line, cl, sizeof cl - 1) == 0) {
            const char *v = line + sizeof cl - 1;
            size_t n = 0;
            while (*v == ' ' || *v == '\t') {
                v++;
            }
            if (*v < '0' || *v > '9') {
                return -1;
            }
            while (*v >= '0' && *v <= '9' && n < ((size_t)1 << 40)) {
                n = n * 10 + (size_t)(*v++ - '0');
            }
            c->body_need = n;
            have_len = 1;
        }
    }
    /* The server sends every answer with a Content-Length (it builds it at once). */
    return have_len ? 0 : -1;
}

static void httpload__alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct httpload__conn *c = h->data;
    (void)suggested;
    if (c->head_len > 0 && HTTPLOAD_RBUF - c->rlen < 4096) {
        /* A body too big to keep: drop what we have of it and only count the rest. */
        c->rlen = c->head_len;
        c->truncated = 1;
    }
    buf->base = c->rbuf + c->rlen;
    buf->len = HTTPLOAD_RBUF - c->rlen;
}

static void httpload__read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct httpload__conn *c = s->data;
    (void)buf;
    if (nread == 0) {
        return;
    }
    if (nread < 0) {
        if (c->in_flight || nread != UV_EOF) {
            httpload__fail(c, "read", (int)nread);
        } else {
            /* The server closed an idle connection (keep-alive timeout): connect again. */
            c->redial = !c->run->finished;
            httpload__close(c);
        }
        return;
    }
    size_t old = c->rlen, n = (size_t)nread;
    c->rlen += n;
    if (!c->in_flight) {
        httpload__fail(c, "answer without a request", 0);
        return;
    }
    if (c->head_len == 0) {
        size_t from = old >= 3 ? old - 3 : 0;
        for (size_t i = from; i + 4 <= c->rlen; i++) {
            if (memcmp(c->rbuf + i, "\r\n\r\n", 4) == 0) {
                c->head_len = i + 4;
                break;
            }
        }
        if (c->head_len == 0) {
            if (c->rlen == HTTPLOAD_RBUF) {
                httpload__fail(c, "answer head too large", 0);
            }
            return;
        }
        if (httpload__parse_head(c) != 0) {
            httpload__fail(c, "malformed answer head", 0);
            return;
        }
        c->body_got = c->rlen - c->head_len;
    } else {
        c->body_got += n;
    }
    if (c->body_got > c->body_need) {
        httpload__fail(c, "more bytes than Content-Length", 0);
    } else if (c->body_got == c->body_need) {
        httpload__complete(c);
    }
}

static void httpload__written(uv_write_t *w, int status)
{
    struct httpload__conn *c = w->data;
    c->writing = 0;
    if (status < 0) {
        if (status != UV_ECANCELED) {
            httpload__fail(c, "write", status);
        }
        return;
    }
    if (c->deferred) {
        c->deferred = 0;
        httpload__send(c);
    }
}

static void httpload__send(struct httpload__conn *c)
{
    struct httpload__run *r = c->run;
    if (r->finished || c->closing) {
        httpload__close(c);
        return;
    }
    uint64_t seq = r->next_seq;
    size_t len = r->spec->make(r->spec->data, c->id, seq, c->wbuf, HTTPLOAD_WBUF);
    if (len == 0 || len > HTTPLOAD_WBUF) {
        httpload__close(c);
        return;
    }
    r->next_seq++;
    c->seq = seq;
    c->wlen = len;
    c->in_flight = 1;
    c->sent_ns = uv_hrtime();
    r->res->sent++;
    uv_buf_t b = uv_buf_init(c->wbuf, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)len) {
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        httpload__fail(c, "write", n);
        return;
    }
    if (n > 0) {
        b = uv_buf_init(c->wbuf + n, (unsigned)(len - (size_t)n));
    }
    c->write.data = c;
    int rv = uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, httpload__written);
    if (rv != 0) {
        httpload__fail(c, "write", rv);
        return;
    }
    c->writing = 1;
}

static void httpload__connected(uv_connect_t *req, int status)
{
    struct httpload__conn *c = req->data;
    if (status < 0) {
        if (status != UV_ECANCELED) {
            httpload__fail(c, "connect", status);
        }
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    int rv = uv_read_start((uv_stream_t *)&c->tcp, httpload__alloc, httpload__read);
    if (rv != 0) {
        httpload__fail(c, "read", rv);
        return;
    }
    httpload__send(c);
}

static void httpload__dial(struct httpload__conn *c)
{
    struct httpload__run *r = c->run;
    c->rlen = c->head_len = c->body_need = c->body_got = 0;
    c->truncated = c->in_flight = c->writing = c->deferred = 0;
    if (uv_tcp_init(&r->loop, &c->tcp) != 0) {
        httpload__error(c, "socket", 0);
        return;
    }
    c->tcp.data = c;
    c->open = 1;
    r->open++;
    c->connect.data = c;
    int rv =
        uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&r->sa, httpload__connected);
    if (rv != 0) {
        httpload__error(c, "connect", rv);
        httpload__close(c);
    }
}

/* ---- the run -------------------------------------------------------------------------------- */

/* The drain after a timed run is over: close what is still waiting for an answer. */
static void httpload__on_drain(uv_timer_t *t)
{
    struct httpload__run *r = t->data;
    for (unsigned i = 0; i < r->spec->conns; i++) {
        httpload__close(&r->conns[i]);
    }
}

/* End of the measured window of a timed run. */
static void httpload__on_end(uv_timer_t *t)
{
    struct httpload__run *r = t->data;
    r->finished = 1;
    r->res->seconds = (double)(uv_hrtime() - r->t0) / 1e9;
    for (unsigned i = 0; i < r->spec->conns; i++) {
        struct httpload__conn *c = &r->conns[i];
        c->redial = 0;
        if (!c->in_flight) {
            httpload__close(c);
        }
    }
    uv_timer_start(&r->drain, httpload__on_drain, HTTPLOAD__DRAIN_MS, 0);
}

static void httpload__free_conns(struct httpload__run *r)
{
    for (unsigned i = 0; r->conns && i < r->spec->conns; i++) {
        free(r->conns[i].rbuf);
        free(r->conns[i].wbuf);
    }
    free(r->conns);
    r->conns = NULL;
}

int httpload_run(const struct httpload_spec *spec, struct httpload_result *res)
{
    struct httpload__run r;
    int rv;
    memset(res, 0, sizeof *res);
    memset(&r, 0, sizeof r);
    if (spec->make == NULL || spec->conns == 0 || spec->conns > HTTPLOAD_MAX_CONNS ||
        spec->seconds < 0) {
        return LR_EINVAL;
    }
    socklen_t salen;
    rv = addr_resolve(spec->addr, 0, &r.sa, &salen);
    if (rv != 0) {
        return LR_EINVAL;
    }
    if (((struct sockaddr_in *)&r.sa)->sin_port == 0) { /* same field for IPv6 */
        return LR_EINVAL;
    }
    r.spec = spec;
    r.res = res;
    r.max_redials = HTTPLOAD__RECONNECTS;
    r.conns = calloc(spec->conns, sizeof *r.conns);
    if (r.conns == NULL) {
        rv = LR_ENOMEM;
        goto err;
    }
    for (unsigned i = 0; i < spec->conns; i++) {
        r.conns[i].rbuf = malloc(HTTPLOAD_RBUF);
        r.conns[i].wbuf = malloc(HTTPLOAD_WBUF);
        if (r.conns[i].rbuf == NULL || r.conns[i].wbuf == NULL) {
            rv = LR_ENOMEM;
            goto err_after_conns;
        }
        r.conns[i].run = &r;
        r.conns[i].id = i;
    }
    if (uv_loop_init(&r.loop) != 0) {
        rv = LR_ENOMEM;
        goto err_after_conns;
    }
    uv_timer_init(&r.loop, &r.end);
    uv_timer_init(&r.loop, &r.drain);
    r.end.data = r.drain.data = &r;
    r.t0 = uv_hrtime();
    if (spec->seconds > 0) {
        uv_timer_start(&r.end, httpload__on_end, (uint64_t)(spec->seconds * 1000.0), 0);
    }
    for (unsigned i = 0; i < spec->conns; i++) {
        httpload__dial(&r.conns[i]);
    }
    httpload__end_if_idle(&r); /* every dial failed at once */
    uv_run(&r.loop, UV_RUN_DEFAULT);
    uv_loop_close(&r.loop);
    httpload__free_conns(&r);
    return 0;

err_after_conns:
    httpload__free_conns(&r);
err:
    assert(rv != 0);
    return rv;
}

/* ---- request heads ------------------------------------------------------------------------- */

size_t httpload_head(char *buf, size_t cap, const char *method, const char *path, const char *addr,
                     const char *key, int with_body, size_t body_len)
{
    int n = snprintf(buf, cap, "%s %s HTTP/1.1\r\nHost: %s\r\n%s%s%s", method, path, addr,
                     key ? "Authorization: Bearer " : "", key ? key : "", key ? "\r\n" : "");
    if (n < 0 || (size_t)n >= cap) {
        return 0;
    }
    int m = with_body ? snprintf(buf + n, cap - (size_t)n,
                                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                                 body_len)
                      : snprintf(buf + n, cap - (size_t)n, "\r\n");
    if (m < 0 || (size_t)m >= cap - (size_t)n) {
        return 0;
    }
    return (size_t)n + (size_t)m;
}
