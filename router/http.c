/* router/http.c — the router's HTTP/1.1 server: libwebsockets 4.1 on the caller's uv loop
 * (see http.h).
 *
 * lws parses; this file turns each parsed request into one struct http__req and hands it to
 * the handler once its body is complete. The reply is built at once (status line, headers and
 * body in one buffer behind LWS_PRE) and goes out in one lws_write from the writeable callback,
 * then lws_http_transaction_completed keeps the connection for the next request.
 *
 * TLS (struct http_tls; docs/security.md, "TLS") is lws' own, on OpenSSL: the vhost loads the
 * PEM files, and everything below sees decrypted bytes, so requests, WebSocket upgrades,
 * limits and timeouts are the same on both kinds of listener. A handshake that has not
 * completed within HTTP__TIMEOUT_S is closed (measured: a silent client, after 10 s), and the
 * connection caps below run at accept, before a handshake costs anything. The files are
 * checked here first (lib/certs.h) because lws, when it cannot load them, only fails to make
 * the vhost.
 *
 * Ownership. A request has up to two holders, each a bit in `holds`:
 *   HTTP__CONN     the connection: from LWS_CALLBACK_HTTP until the answer is written or the
 *                  connection closes (lws' per-session data points at the request);
 *   HTTP__HANDLER  the handler: from the handler call until http_reply.
 * The request is allocated apart from lws' per-session data and freed when the last holder
 * lets go, so the handler's pointer stays valid after the connection died. A dead request has
 * wsi == NULL; http_reply on it only drops the handler's hold (and so frees it). A dead
 * request never touches its server, which may be gone by then.
 *
 * Limits and timeouts. lws bounds the header block (HTTP__HDR_MAX, else it drops the
 * connection) and the time headers may take (HTTP__TIMEOUT_S). From LWS_CALLBACK_HTTP a
 * request has HTTP__TIMEOUT_S to arrive whole and be answered, else the connection is closed
 * (the handler sees http_req_alive() == 0); lws also closes a body that pauses 5 s. Idle
 * keep-alive connections close after HTTP__KEEPALIVE_S. The server refuses some requests
 * itself, without the handler (http__refusals): a body over HTTP_BODY_MAX (413, then close,
 * since the rest of the body would otherwise be read as the next request), a chunked body
 * (411: lws 4.1 cannot decode one), a NUL inside the path or Authorization (400, so the
 * handler's strings are whole), upgrades (400) other than a WebSocket on GET /v1/ws when
 * the server was started with one (ws.c), and WebSocket upgrades past ws.c's connection
 * limits (429 per address, else 503, both with Retry-After). It answers
 * "Expect: 100-continue", which lws 4.1 does not.
 *
 * Connection caps (http_set_conn_limits). lws asks protocols[0] about each accepted socket
 * (LWS_CALLBACK_FILTER_NETWORK_CONNECTION) before it makes a connection of it: past a cap we
 * say no and lws closes the socket, so a flood costs no per-connection memory and no request
 * is ever read. Connections are counted from LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED to
 * LWS_CALLBACK_WSI_DESTROY, by connection (h->by_wsi remembers each one's address), and stop
 * counting when ws.c admits their WebSocket upgrade.
 *
 * CORS (http_set_cors, cors.h). Every answer, the refusals above included, carries the CORS
 * header lines for its request's Origin, computed once when the request arrives; refused
 * WebSocket handshakes carry them too, and with a list of origins a browser's handshake from
 * an unlisted origin is refused (http__confirm_upgrade). Preflights are the handler's: they
 * need the route table.
 *
 * lws decodes what it parses: the path and query reach us %-decoded, the path with "//", "/./"
 * and "/../" folded, and the query's '&'-separated fields joined again with '&' ('+' in the
 * query has become ' ', so a decoded "%26" cannot be told from a separator). lws notices that
 * a client hung up only when it next reads or writes, so a request may look alive until its
 * answer is written. */
#include "http.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <assert.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../lib/addr.h"
#include "../lib/certs.h"
#include "../lib/err.h"
#include "../lib/strmap.h"
#include "cors.h"
#include "ws.h"

#define HTTP__HDR_MAX 8192         /* bytes of request header block lws keeps */
#define HTTP__TIMEOUT_S 10         /* a request must arrive and be answered within this */
#define HTTP__KEEPALIVE_S 10       /* idle keep-alive connections close after this */
#define HTTP__HEAD_ROOM 192        /* bytes for the status line and our three headers */
#define HTTP__WS_RX 1024           /* WebSocket receive buffer (see the protocol below) */
#define HTTP__TX_MAX (1024 * 1024) /* bytes lws sends at once (see the protocol below) */

enum { HTTP__CONN = 1u << 0, HTTP__HANDLER = 1u << 1 };

/* Requests the server refuses itself, without the handler. */
enum {
    HTTP__TOO_BIG,
    HTTP__MALFORMED,
    HTTP__CHUNKED,
    HTTP__UPGRADE,
    HTTP__WS_FULL,   /* ws_admit: WS_REFUSE_MAX_CONNS or WS_REFUSE_STOPPING */
    HTTP__WS_PER_IP, /* ws_admit: WS_REFUSE_PER_IP */
    HTTP__WS_ORIGIN, /* a browser's handshake from an origin --cors-origins does not list */
    HTTP__REFUSAL_N
};

static const struct {
    int status;
    int code;        /* the LR_E* code whose API code the body carries */
    const char *fmt; /* the message; %d is HTTP_BODY_MAX */
} http__refusals[HTTP__REFUSAL_N] = {
    [HTTP__TOO_BIG] = {413, LR_ETOOBIG, "request body exceeds %d bytes"},
    [HTTP__MALFORMED] = {400, LR_EMALFORMED, "malformed request"},
    [HTTP__CHUNKED] = {411, LR_EINVAL, "send the body with a Content-Length"},
    [HTTP__UPGRADE] = {400, LR_EINVAL, "protocol upgrades are not supported"},
    [HTTP__WS_FULL] = {503, LR_EUNAVAILABLE, "WebSocket connections are at their limit"},
    [HTTP__WS_PER_IP] = {429, LR_ERATELIMIT,
                         "WebSocket connections from this address are at their limit"},
    [HTTP__WS_ORIGIN] = {403, LR_EFORBIDDEN,
                         "WebSocket connections from this origin are not allowed"},
};

struct http__req {
    struct http_req pub; /* what the handler sees; first, so the handler's pointer is ours */
    struct http *h;      /* NULL once dead */
    struct lws *wsi;     /* NULL once the connection is gone: the request is dead */
    unsigned holds;      /* HTTP__CONN | HTTP__HANDLER */
    int dispatched;      /* handed to the handler (or answered by us) */
    int head;            /* HEAD: the answer carries no body */
    int malformed;       /* refused with 400 before the handler */
    uint64_t deadline;   /* uv_now() by which it must be answered */
    char *body;          /* accumulated body, NUL-terminated; NULL while empty */
    size_t body_cap;
    const char *cors;   /* the CORS header lines of its answers (cors.h), in the allocation */
    unsigned char *out; /* the whole answer at out + LWS_PRE, or NULL until answered */
    size_t out_len;
    int close_after; /* close the connection once the answer is written */
};

/* lws' per-session data: zeroed by lws, freed by lws after LWS_CALLBACK_CLOSED_HTTP. */
struct http__conn {
    struct http__req *req;
    void *ws; /* the WebSocket connection (ws.c) once upgraded */
};

struct http {
    uv_loop_t *loop;
    struct lws_context *ctx; /* set to NULL by lws once destroyed (info.pcontext) */
    void *foreign_loops[1];
    struct lws_protocols protocols[3];
    struct ws *ws; /* serves GET /v1/ws upgrades; NULL: refuse them */
    http_handler handler;
    void *data;
    char *refusal[HTTP__REFUSAL_N]; /* the bodies of our own refusals, built once */
    uv_timer_t stop_timer;
    unsigned lws_handles; /* scratch for http__stop_poll */
    void (*done)(void *data);
    void *done_data;
    char iface[64]; /* the address to listen on, numeric; "" for every interface */
    int v6;         /* iface is IPv6 (or every IPv6 and IPv4 interface) */
    /* Connection caps (the opening comment). */
    unsigned max_conns, max_per_ip;
    struct strmap per_ip; /* client address -> (uintptr_t)connections counted */
    struct strmap by_wsi; /* wsi pointer (its bytes) -> its address (owned string) */
    struct http_stats st; /* st.open: by_wsi.count */
    struct cors cors;     /* who may read the answers in a browser (http_set_cors) */
};

/* ---- requests ------------------------------------------------------------------------------- */

static void http__req_release(struct http__req *r, unsigned holder)
{
    assert(r->holds & holder);
    r->holds &= ~holder;
    if (r->holds == 0) {
        free(r->body);
        free(r->out);
        free(r);
    }
}

/* The connection is gone or done with its request: mark the request dead and drop the
 * connection's hold. Idempotent per connection. */
static void http__conn_drop(struct http__conn *c)
{
    struct http__req *r = c->req;
    if (r == NULL) {
        return;
    }
    c->req = NULL;
    r->wsi = NULL;
    r->h = NULL;
    http__req_release(r, HTTP__CONN);
}

/* Copy header @tok (all its fragments) into a fresh string; "" when absent. A NUL inside
 * the value (lws 4.1 lets one through) sets *@malformed: the handler gets whole strings. */
static char *http__hdr_dup(struct lws *wsi, enum lws_token_indexes tok, int *malformed)
{
    int len = lws_hdr_total_length(wsi, tok);
    char *s = malloc((size_t)(len > 0 ? len : 0) + 1);
    if (s == NULL) {
        return NULL;
    }
    s[0] = '\0';
    if (len > 0 && (lws_hdr_copy(wsi, s, len + 1, tok) < 0 || strlen(s) != (size_t)len)) {
        *malformed = 1;
    }
    return s;
}

/* The query string: lws splits it at '&' into fragments of WSI_TOKEN_HTTP_URI_ARGS. */
static char *http__query_dup(struct lws *wsi)
{
    char frag[HTTP__HDR_MAX + 1];
    size_t len = 0, cap = (size_t)lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS) + 1;
    char *q = malloc(cap);
    if (q == NULL) {
        return NULL;
    }
    q[0] = '\0';
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0) {
            break;
        }
        size_t need = len + (i > 0) + (size_t)n + 1;
        if (need > cap) {
            char *bigger = realloc(q, need * 2);
            if (bigger == NULL) {
                free(q);
                return NULL;
            }
            q = bigger;
            cap = need * 2;
        }
        if (i > 0) {
            q[len++] = '&';
        }
        memcpy(q + len, frag, (size_t)n);
        len += (size_t)n;
        q[len] = '\0';
    }
    return q;
}

const char *http_method_name(enum http_method m)
{
    static const char *const names[] = {"GET", "POST", "PUT", "DELETE", "OPTIONS", "OTHER"};
    return (unsigned)m < sizeof names / sizeof names[0] ? names[m] : "OTHER";
}

static const struct {
    enum lws_token_indexes tok;
    enum http_method method;
} http__methods[] = {
    {WSI_TOKEN_GET_URI, HTTP_GET},     {WSI_TOKEN_POST_URI, HTTP_POST},
    {WSI_TOKEN_PUT_URI, HTTP_PUT},     {WSI_TOKEN_DELETE_URI, HTTP_DELETE},
    {WSI_TOKEN_PATCH_URI, HTTP_OTHER}, {WSI_TOKEN_OPTIONS_URI, HTTP_OPTIONS},
    {WSI_TOKEN_HEAD_URI, HTTP_OTHER},
};

/* The Laurel-Consistency header, as http_req.consistency says. */
static int http__consistency(struct lws *wsi)
{
    static const char name[] = "laurel-consistency:";
    char v[16];
    int n = lws_hdr_custom_length(wsi, name, (int)sizeof name - 1);
    if (n <= 0) {
        return 0;
    }
    if (n >= (int)sizeof v ||
        lws_hdr_custom_copy(wsi, v, (int)sizeof v, name, (int)sizeof name - 1) != n) {
        return -1;
    }
    return strcasecmp(v, "stale") == 0 ? 2 : strcasecmp(v, "linearizable") == 0 ? 1 : -1;
}

/* The Origin of @wsi's request into @origin (CORS_ORIGIN_MAX bytes): "" when it has none,
 * "-" (which no list holds) when it is too long for any listed origin. */
static void http__origin(struct lws *wsi, char *origin)
{
    origin[0] = '\0';
    if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0 &&
        lws_hdr_copy(wsi, origin, CORS_ORIGIN_MAX, WSI_TOKEN_ORIGIN) <= 0) {
        snprintf(origin, CORS_ORIGIN_MAX, "-");
    }
}

/* The CORS header lines for the answers to @wsi's request, by its Origin, into @out
 * (CORS_HEADERS_MAX bytes). */
static size_t http__cors_lines(const struct http *h, struct lws *wsi, char *out)
{
    char origin[CORS_ORIGIN_MAX] = "";
    if (!h->cors.any) {
        http__origin(wsi, origin);
    }
    size_t n = cors_headers(&h->cors, origin, out, CORS_HEADERS_MAX);
    if (n == 0) {
        out[0] = '\0'; /* cannot happen (cors.h bounds them); no half header line in any case */
    }
    return n;
}

/* A request from the parsed headers: one allocation for the struct and its five strings. */
static struct http__req *http__req_new(struct http *h, struct lws *wsi, const char *uri)
{
    enum http_method method = HTTP_OTHER;
    enum lws_token_indexes uri_tok = WSI_TOKEN_COUNT;
    char *path = NULL, *query = NULL, *auth = NULL, peer[48] = "", cors[CORS_HEADERS_MAX];
    struct http__req *r = NULL;
    int malformed = 0;
    for (size_t i = 0; i < sizeof http__methods / sizeof http__methods[0]; i++) {
        if (lws_hdr_total_length(wsi, http__methods[i].tok) > 0) {
            method = http__methods[i].method;
            uri_tok = http__methods[i].tok;
            break;
        }
    }
    path = uri_tok != WSI_TOKEN_COUNT ? http__hdr_dup(wsi, uri_tok, &malformed)
                                      : strdup(uri ? uri : "/");
    query = http__query_dup(wsi);
    auth = http__hdr_dup(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, &malformed);
    if (path == NULL || query == NULL || auth == NULL) {
        goto out;
    }
    lws_get_peer_simple(wsi, peer, sizeof peer);
    size_t lp = strlen(path) + 1, lq = strlen(query) + 1, la = strlen(auth) + 1,
           lpeer = strlen(peer) + 1, lcors = http__cors_lines(h, wsi, cors) + 1;
    r = calloc(1, sizeof *r + lp + lq + la + lpeer + lcors);
    if (r == NULL) {
        goto out;
    }
    char *s = (char *)(r + 1);
    memcpy(s, path, lp);
    memcpy(s + lp, query, lq);
    memcpy(s + lp + lq, auth, la);
    memcpy(s + lp + lq + la, peer, lpeer);
    memcpy(s + lp + lq + la + lpeer, cors, lcors - 1);
    s[lp + lq + la + lpeer + lcors - 1] = '\0';
    r->cors = s + lp + lq + la + lpeer;
    r->pub.method = method;
    r->pub.path = s;
    r->pub.query = s + lp;
    r->pub.auth = s + lp + lq;
    r->pub.peer = s + lp + lq + la;
    r->pub.body = "";
    r->pub.consistency = http__consistency(wsi);
    r->h = h;
    r->wsi = wsi;
    r->holds = HTTP__CONN;
    r->head = uri_tok == WSI_TOKEN_HEAD_URI;
    r->malformed = malformed;
    r->deadline = uv_now(h->loop) + HTTP__TIMEOUT_S * 1000;
out:
    free(path);
    free(query);
    free(auth);
    return r;
}

/* ---- answers -------------------------------------------------------------------------------- */

/* Lay out an answer in @buf (@cap bytes): LWS_PRE bytes for lws, then status line, headers
 * (the CORS lines @cors, then @extra) and body (left out for HEAD, as @with_body says). A 204
 * carries neither body nor Content-Type nor Content-Length (RFC 9110, 8.6). @return its length
 * from LWS_PRE, or 0 if it does not fit. */
static size_t http__layout(struct lws *wsi, int status, const char *ctype, const char *body,
                           size_t len, const char *cors, const char *extra, int with_body,
                           unsigned char *buf, size_t cap)
{
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + cap;
    size_t cors_len = strlen(cors), extra_len = extra ? strlen(extra) : 0;
    int empty = status == 204;
    size_t send_len = with_body && !empty ? len : 0;
    /* Content-Length through the plain header call: lws' own helper would also start counting
     * body bytes, and our one write carries the headers as well. */
    char clen[24];
    int clen_n = snprintf(clen, sizeof clen, "%zu", len);
    unsigned code = (unsigned)status | LWSAHH_FLAG_NO_SERVER_NAME;
    if (lws_add_http_header_status(wsi, code, &p, end) != 0 ||
        (!empty &&
         (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                       (const unsigned char *)ctype, (int)strlen(ctype), &p,
                                       end) != 0 ||
          lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH,
                                       (const unsigned char *)clen, clen_n, &p, end) != 0)) ||
        (size_t)(end - p) < cors_len + extra_len + 2 + send_len) {
        return 0;
    }
    memcpy(p, cors, cors_len);
    p += cors_len;
    if (extra_len > 0) {
        memcpy(p, extra, extra_len);
        p += extra_len;
    }
    if (lws_finalize_http_header(wsi, &p, end) != 0 || (size_t)(end - p) < send_len) {
        return 0;
    }
    if (send_len > 0) {
        memcpy(p, body, send_len);
        p += send_len;
    }
    return (size_t)(p - start);
}

/* Build the whole answer and ask for a writeable callback. On failure the connection is
 * killed (the client sees it close), which also frees the request. */
static void http__answer(struct http__req *r, int status, const char *ctype, const char *body,
                         size_t len, const char *extra, int close_after)
{
    size_t cap = LWS_PRE + HTTP__HEAD_ROOM + strlen(r->cors) + (extra ? strlen(extra) : 0) + len;
    unsigned char *buf = malloc(cap);
    size_t n =
        buf ? http__layout(r->wsi, status, ctype, body, len, r->cors, extra, !r->head, buf, cap)
            : 0;
    if (n == 0) {
        free(buf);
        lws_set_timeout(r->wsi, PENDING_TIMEOUT_HTTP_CONTENT, LWS_TO_KILL_ASYNC);
        return;
    }
    r->out = buf;
    r->out_len = n;
    r->close_after = close_after;
    lws_callback_on_writable(r->wsi);
}

/* Answer with refusal @which and close: the handler never sees the request. */
static void http__refuse(struct http__req *r, int which)
{
    const char *body = r->h->refusal[which];
    free(r->body);
    r->body = NULL;
    r->pub.body = "";
    r->pub.body_len = 0;
    r->dispatched = 1;
    http__answer(r, http__refusals[which].status, HTTP_JSON, body, strlen(body), NULL, 1);
}

/* Hand the complete request to the handler. */
static void http__dispatch(struct http__req *r)
{
    struct http *h = r->h;
    uint64_t now = uv_now(h->loop);
    r->dispatched = 1;
    r->holds |= HTTP__HANDLER;
    r->pub.body = r->body ? r->body : "";
    /* Whole seconds, rounded up (lws 4.1.6 declares lws_set_timeout_us but does not export
     * it). */
    uint64_t left_ms = r->deadline > now ? r->deadline - now : 1;
    lws_set_timeout(r->wsi, PENDING_TIMEOUT_HTTP_CONTENT, (int)((left_ms + 999) / 1000));
    h->handler(h->data, &r->pub);
}

/* ---- lws callback --------------------------------------------------------------------------- */

/* A client that sent "Expect: 100-continue" waits for this before sending the body (lws 4.1
 * does not answer it; curl would wait a second). */
static int http__continue(struct lws *wsi)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    unsigned char buf[LWS_PRE + sizeof cont];
    char expect[32];
    if (lws_hdr_copy(wsi, expect, sizeof expect, WSI_TOKEN_HTTP_EXPECT) <= 0 ||
        strcasecmp(expect, "100-continue") != 0) {
        return 0;
    }
    memcpy(buf + LWS_PRE, cont, sizeof cont - 1);
    return lws_write(wsi, buf + LWS_PRE, sizeof cont - 1, LWS_WRITE_HTTP) == (int)sizeof cont - 1
               ? 0
               : -1;
}

static int http__on_request(struct http *h, struct lws *wsi, struct http__conn *c, const char *uri)
{
    char cl[32];
    if (c->req != NULL) {
        return -1; /* a second request while one is open: lws should never do this */
    }
    struct http__req *r = http__req_new(h, wsi, uri);
    if (r == NULL) {
        return -1;
    }
    c->req = r;
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, HTTP__TIMEOUT_S);
    if (r->malformed) {
        http__refuse(r, HTTP__MALFORMED);
        return 0;
    }
    int n = lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (n < 0) {
        http__refuse(r, HTTP__TOO_BIG); /* a Content-Length of 32 digits or more */
        return 0;
    }
    unsigned long long announced = n > 0 ? strtoull(cl, NULL, 10) : 0;
    if (announced > HTTP_BODY_MAX) {
        http__refuse(r, HTTP__TOO_BIG);
        return 0;
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
        /* lws 4.1 does not decode chunked bodies: it would pass on the chunk framing as body
         * and wait for 100 MB. */
        http__refuse(r, HTTP__CHUNKED);
        return 0;
    }
    if (announced == 0) {
        http__dispatch(r); /* no body to wait for */
        return 0;
    }
    r->body = malloc((size_t)announced + 1);
    if (r->body == NULL) {
        return -1;
    }
    r->body_cap = (size_t)announced + 1;
    r->body[0] = '\0';
    return http__continue(wsi);
}

static int http__on_body(struct http__req *r, const void *in, size_t len)
{
    if (r == NULL || r->dispatched) {
        return 0; /* the rest of a body already answered 413: drop it */
    }
    if (uv_now(r->h->loop) >= r->deadline) {
        return -1; /* a body dripping in past the deadline */
    }
    if (r->pub.body_len + len > HTTP_BODY_MAX) {
        http__refuse(r, HTTP__TOO_BIG);
        return 0;
    }
    if (r->pub.body_len + len + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->pub.body_len + len + 1) {
            cap *= 2;
        }
        char *bigger = realloc(r->body, cap);
        if (bigger == NULL) {
            return -1;
        }
        r->body = bigger;
        r->body_cap = cap;
    }
    memcpy(r->body + r->pub.body_len, in, len);
    r->pub.body_len += len;
    r->body[r->pub.body_len] = '\0';
    return 0;
}

static int http__on_writeable(struct lws *wsi, struct http__conn *c)
{
    struct http__req *r = c->req;
    if (r == NULL || r->out == NULL) {
        return 0; /* nothing to say yet */
    }
    int close_after = r->close_after;
    int n = lws_write(wsi, r->out + LWS_PRE, r->out_len, LWS_WRITE_HTTP_FINAL);
    int ok = n >= 0 && (size_t)n == r->out_len;
    http__conn_drop(c);
    if (!ok || close_after) {
        return -1;
    }
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Refuse an upgrade with refusal @which (an error status), written here as lws asks
 * (returning > 0 tells lws the answer is out; it then waits for the next request). */
static int http__refuse_upgrade(struct http *h, struct lws *wsi, int which)
{
    const char *body = h->refusal[which];
    int status = http__refusals[which].status;
    unsigned char buf[LWS_PRE + HTTP__HEAD_ROOM + CORS_HEADERS_MAX + 160];
    char cors[CORS_HEADERS_MAX];
    http__cors_lines(h, wsi, cors);
    size_t n = http__layout(wsi, status, HTTP_JSON, body, strlen(body), cors,
                            status == 503 || status == 429 ? "Retry-After: 1\r\n" : NULL, 1, buf,
                            sizeof buf);
    if (n == 0) {
        return -1;
    }
    /* lws 4.1 asks before it has noted the request's version, so its status line says
     * HTTP/1.0; an upgrade is an HTTP/1.1 request (RFC 6455), and strict WebSocket clients
     * (python-websockets) reject any other answer before they read the status. */
    if (n > 9 && memcmp(buf + LWS_PRE, "HTTP/1.0 ", 9) == 0) {
        buf[LWS_PRE + 7] = '1';
    }
    if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP_FINAL) != (int)n) {
        return -1;
    }
    return 1;
}

static void http__conn_uncount(struct http *h, struct lws *wsi);

/* Let a WebSocket upgrade of GET /v1/ws through when WebSockets are served and ws.c admits
 * it; other upgrades (plain HTTP/1.1 only: WebSocket elsewhere, h2c) get 400 at once.
 *
 * Browsers apply no CORS to WebSockets: they send Origin with the handshake and leave the
 * decision to the server, and lws 4.1 checks nothing of it. With a list of origins, a
 * handshake whose Origin is not listed gets 403, so a page of another origin reads no more
 * over the socket than it may over HTTP; one without Origin (not a browser) is let through. */
static int http__confirm_upgrade(struct http *h, struct lws *wsi, const char *type)
{
    char path[16], origin[CORS_ORIGIN_MAX];
    if (h->ws != NULL && type != NULL && strcmp(type, "websocket") == 0 &&
        lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) > 0 &&
        strcmp(path, "/v1/ws") == 0) {
        http__origin(wsi, origin);
        if (!cors_allows(&h->cors, origin)) {
            return http__refuse_upgrade(h, wsi, HTTP__WS_ORIGIN);
        }
        switch (ws_admit(h->ws, wsi)) {
        case 0: http__conn_uncount(h, wsi); return 0; /* ws.c's limits hold it from here */
        case WS_REFUSE_PER_IP: return http__refuse_upgrade(h, wsi, HTTP__WS_PER_IP);
        default: return http__refuse_upgrade(h, wsi, HTTP__WS_FULL);
        }
    }
    return http__refuse_upgrade(h, wsi, HTTP__UPGRADE);
}

/* ---- connection caps ------------------------------------------------------------------------ */

/* The numeric address of the peer of socket @fd into @out ("" when unknown). */
static void http__peer_of(int fd, char *out, size_t cap)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    out[0] = '\0';
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&sa, &len) != 0) {
        return;
    }
    if (sa.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, out, (socklen_t)cap);
    } else if (sa.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, out, (socklen_t)cap);
    }
}

/* Whether accepted socket @fd may become a connection: 0, or -1 (lws closes it). */
static int http__filter(struct http *h, int fd)
{
    char ip[64];
    if (h->by_wsi.count >= h->max_conns) {
        h->st.refused_max_conns++;
        return -1;
    }
    http__peer_of(fd, ip, sizeof ip);
    if ((uintptr_t)strmap_get(&h->per_ip, ip, strlen(ip)) >= h->max_per_ip) {
        h->st.refused_per_ip++;
        return -1;
    }
    return 0;
}

/* Count the new connection @wsi. Out of memory, it is closed: it could not be uncounted. */
static int http__conn_count(struct http *h, struct lws *wsi)
{
    char ip[64];
    http__peer_of((int)lws_get_socket_fd(wsi), ip, sizeof ip);
    char *key = strdup(ip);
    uintptr_t n = (uintptr_t)strmap_get(&h->per_ip, ip, strlen(ip));
    if (key == NULL) {
        return -1;
    }
    if (strmap_put(&h->per_ip, ip, strlen(ip), (void *)(n + 1)) != 0) {
        free(key);
        return -1;
    }
    if (strmap_put(&h->by_wsi, &wsi, sizeof wsi, key) != 0) {
        free(key);
        if (n == 0) {
            strmap_del(&h->per_ip, ip, strlen(ip));
        } else {
            (void)strmap_put(&h->per_ip, ip, strlen(ip), (void *)n); /* the key is there */
        }
        return -1;
    }
    return 0;
}

/* Stop counting @wsi (closed, or a WebSocket now); a connection not counted is a no-op. */
static void http__conn_uncount(struct http *h, struct lws *wsi)
{
    char *ip = strmap_get(&h->by_wsi, &wsi, sizeof wsi);
    if (ip == NULL) {
        return;
    }
    strmap_del(&h->by_wsi, &wsi, sizeof wsi);
    uintptr_t n = (uintptr_t)strmap_get(&h->per_ip, ip, strlen(ip));
    if (n <= 1) {
        strmap_del(&h->per_ip, ip, strlen(ip));
    } else {
        (void)strmap_put(&h->per_ip, ip, strlen(ip), (void *)(n - 1)); /* the key is there */
    }
    free(ip);
}

/* One callback for both protocols (HTTP and WebSocket share the per-session struct), so the
 * protocol lws binds an upgrade to does not matter: WebSocket reasons go to ws.c. */
static int http__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    struct http__conn *c = user;
    struct http *h = lws_context_user(lws_get_context(wsi));
    int ret;
    if (h != NULL) {
        switch (reason) {
        case LWS_CALLBACK_FILTER_NETWORK_CONNECTION: return http__filter(h, (int)(intptr_t)in);
        case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED: return http__conn_count(h, wsi);
        case LWS_CALLBACK_WSI_DESTROY: http__conn_uncount(h, wsi); break; /* ws.c may want it */
        default: break;
        }
    }
    if (h != NULL && h->ws != NULL &&
        ws_callback(h->ws, wsi, (int)reason, c ? &c->ws : NULL, in, len, &ret)) {
        return ret;
    }
    if (c == NULL &&
        (reason == LWS_CALLBACK_HTTP || reason == LWS_CALLBACK_HTTP_BODY ||
         reason == LWS_CALLBACK_HTTP_BODY_COMPLETION || reason == LWS_CALLBACK_HTTP_WRITEABLE)) {
        return -1; /* lws always gives our protocol its per-session data; never trust it less */
    }
    switch (reason) {
    case LWS_CALLBACK_HTTP: return http__on_request(h, wsi, c, in);
    case LWS_CALLBACK_HTTP_BODY: return http__on_body(c->req, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (c->req != NULL && !c->req->dispatched) {
            http__dispatch(c->req);
        }
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE: return http__on_writeable(wsi, c);
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: return http__confirm_upgrade(h, wsi, in);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL: /* also at each transaction's end, c->req NULL then */
        if (c != NULL) {
            http__conn_drop(c);
        }
        return 0;
    default: return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* ---- public --------------------------------------------------------------------------------- */

void http_reply(struct http_req *req, int status, const char *body, size_t len,
                const char *extra_headers)
{
    http_reply_type(req, status, HTTP_JSON, body, len, extra_headers);
}

void http_reply_type(struct http_req *req, int status, const char *ctype, const char *body,
                     size_t len, const char *extra_headers)
{
    struct http__req *r = (struct http__req *)req;
    if (r->wsi != NULL) {
        http__answer(r, status, ctype, body, len, extra_headers, 0);
    }
    http__req_release(r, HTTP__HANDLER);
}

int http_req_alive(const struct http_req *req)
{
    return ((const struct http__req *)req)->wsi != NULL;
}

static int http__refusals_build(struct http *h)
{
    for (int i = 0; i < HTTP__REFUSAL_N; i++) {
        char msg[128];
        snprintf(msg, sizeof msg, http__refusals[i].fmt, HTTP_BODY_MAX);
        json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code",
                              err_api_code(http__refusals[i].code), "message", msg);
        if (j == NULL) {
            return LR_ENOMEM;
        }
        h->refusal[i] = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (h->refusal[i] == NULL) {
            return LR_ENOMEM;
        }
    }
    return 0;
}

static void http__free(struct http *h)
{
    for (int i = 0; i < HTTP__REFUSAL_N; i++) {
        free(h->refusal[i]);
    }
    size_t pos = 0;
    for (struct strmap_slot *s; (s = strmap_next(&h->by_wsi, &pos)) != NULL;) {
        free(s->val);
    }
    strmap_free(&h->by_wsi);
    strmap_free(&h->per_ip);
    free(h);
}

static void http__stop_closed(uv_handle_t *handle)
{
    struct http *h = handle->data;
    void (*done)(void *) = h->done;
    void *done_data = h->done_data;
    http__free(h);
    if (done) {
        done(done_data);
    }
}

static void http__find_lws_handle(uv_handle_t *handle, void *arg)
{
    struct http *h = arg;
    if (handle->data == (void *)h->ctx) {
        h->lws_handles++;
    }
}

/* With a foreign loop, lws 4.1 tears down in two calls: the first lws_context_destroy closes
 * every connection and then lws' own uv handles (an idle and a timer whose data is the
 * context); once their close callbacks have run, a second call frees the context and clears
 * h->ctx (info.pcontext). Calling it earlier would free the context under handles still
 * closing, so this polls the loop until none is left. */
static void http__stop_poll(uv_timer_t *t)
{
    struct http *h = t->data;
    if (h->ctx != NULL) {
        h->lws_handles = 0;
        uv_walk(h->loop, http__find_lws_handle, h);
        if (h->lws_handles > 0) {
            return;
        }
        lws_context_destroy(h->ctx);
    }
    if (h->ctx == NULL) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, http__stop_closed);
    }
}

/* Destroy the lws context, then free @h (and call h->done) once the loop has closed lws'
 * handles. */
static void http__teardown(struct http *h)
{
    lws_context_destroy(h->ctx);
    uv_timer_init(h->loop, &h->stop_timer);
    h->stop_timer.data = h;
    uv_timer_start(&h->stop_timer, http__stop_poll, 0, 1);
}

/* If listening fails, the context lws already put on the loop is torn down as by http_stop
 * (without a callback): the loop must run a few turns to release it. */
int http_start(uv_loop_t *loop, const char *addr, http_handler handler, void *data,
               struct http **out, char *errmsg)
{
    return http_start_ws(loop, addr, NULL, handler, data, NULL, out, errmsg);
}

/* lws takes the address to listen on as text (an interface name or a numeric address), so
 * @sa goes back to numeric text: a host name given to --http listens where it resolves. */
static void http__iface(struct http *h, const struct sockaddr_storage *sa, uint16_t *port)
{
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        h->v6 = 1;
        *port = ntohs(in6->sin6_port);
        if (!IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr)) {
            inet_ntop(AF_INET6, &in6->sin6_addr, h->iface, sizeof h->iface);
        }
    } else {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        *port = ntohs(in4->sin_port);
        if (in4->sin_addr.s_addr != htonl(INADDR_ANY)) {
            inet_ntop(AF_INET, &in4->sin_addr, h->iface, sizeof h->iface);
        }
    }
}

int http_start_ws(uv_loop_t *loop, const char *addr, const struct http_tls *tls,
                  http_handler handler, void *data, struct ws *ws, struct http **out, char *errmsg)
{
    struct lws_context_creation_info info;
    struct sockaddr_storage sa;
    socklen_t salen;
    uint16_t port;
    int rv;

    if ((rv = addr_resolve(addr, 1, &sa, &salen)) != 0) {
        return errmsg_set(errmsg, rv,
                          rv == LR_EINVAL ? "http: address %s is not host:port (IPv6: [::1]:8080)"
                                          : "http: %s does not resolve",
                          addr);
    }
    /* lws says only that the vhost could not be made: read the files first, to say why. */
    enum certs_file bad;
    char why[LR_ERRMSG_SIZE];
    if (tls != NULL && (rv = certs_check_pair(tls->cert, tls->key, &bad, why)) != 0) {
        return errmsg_set(errmsg, rv, "http: TLS %s: %s", bad == CERTS_CERT ? "certificate" : "key",
                          why);
    }
    struct http *h = calloc(1, sizeof *h);
    if (h == NULL) {
        return errmsg_set(errmsg, LR_ENOMEM, "http: out of memory");
    }
    http__iface(h, &sa, &port);
    h->loop = loop;
    h->max_conns = HTTP_DEFAULT_MAX_CONNS;
    h->max_per_ip = HTTP_DEFAULT_MAX_PER_IP;
    h->cors.any = 1;
    strmap_init(&h->per_ip);
    strmap_init(&h->by_wsi);
    h->handler = handler;
    h->data = data;
    h->ws = ws;
    rv = http__refusals_build(h);
    if (rv != 0) {
        errmsg_set(errmsg, rv, "http: out of memory");
        goto err_after_alloc;
    }
    h->foreign_loops[0] = loop;
    h->protocols[0] = (struct lws_protocols){
        .name = "laurel-http",
        .callback = http__callback,
        .per_session_data_size = sizeof(struct http__conn),
        /* lws gives each WebSocket a receive buffer of this size for its whole life; client
         * messages are small (subscribe, get) and larger ones arrive in pieces that ws.c
         * joins, so a small buffer saves memory at 100 000 connections. */
        .rx_buffer_size = HTTP__WS_RX,
        /* Without it lws cuts every write into pieces of rx_buffer_size, each sent from its own
         * writeable callback: a 15 KB top-100 page took 15 sends and ~60 epoll_ctl calls, and
         * the router's core went to the kernel (strace -c, docs/benchmarks.md). It allocates
         * nothing: it only bounds one send. */
        .tx_packet_size = HTTP__TX_MAX,
    };
    if (ws != NULL) {
        h->protocols[1] = h->protocols[0];
        h->protocols[1].name = "laurel-ws";
    }

    /* The vhost is created apart: lws_create_context would return a context without one when
     * the port is taken, where lws_create_vhost says NULL. */
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    /* lws reads this option from the context, not the vhost. An IPv6 address needs it off:
     * with it on, lws does not find "::1" among the IPv4 addresses and silently listens on
     * every interface instead. IPv4 keeps it on, so 127.0.0.1 stays an IPv4-only listener. */
    if (!h->v6) {
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    }
    if (tls != NULL) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    }
    info.foreign_loops = h->foreign_loops;
    info.pcontext = &h->ctx;
    info.user = h;
    info.gid = -1;
    info.uid = -1;
    info.max_http_header_data = HTTP__HDR_MAX;
    h->ctx = lws_create_context(&info);
    if (h->ctx == NULL) {
        rv = errmsg_set(errmsg, LR_EIO, "http: cannot start libwebsockets (libuv plugin?)");
        goto err_after_alloc;
    }
    info.port = (int)port;
    info.iface = h->iface[0] ? h->iface : NULL; /* NULL: every interface */
    info.protocols = h->protocols;
    info.timeout_secs = HTTP__TIMEOUT_S;
    info.timeout_secs_ah_idle = HTTP__TIMEOUT_S;
    info.keepalive_timeout = HTTP__KEEPALIVE_S;
    info.options |= LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND;
    if (tls != NULL) {
        info.ssl_cert_filepath = tls->cert;
        info.ssl_private_key_filepath = tls->key;
        /* TLS 1.2 at least: 1.0 and 1.1 are deprecated (RFC 8996). Said here rather than left
         * to the system's openssl.cnf, which an operator or another distribution may relax. */
        info.ssl_options_set = (long)(SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1);
        /* HTTP/1.1 only, as on plain HTTP: Debian's lws offers h2 by ALPN, which curl and
         * browsers then choose, and this server's answers (one write of headers and body) and
         * its upgrade path are HTTP/1.1's. */
        info.alpn = "http/1.1";
    }
    if (lws_create_vhost(h->ctx, &info) == NULL) {
        rv = errmsg_set(errmsg, LR_EIO, "http: cannot listen on %s", addr);
        goto err_after_context;
    }
    *out = h;
    return 0;

err_after_context:
    http__teardown(h); /* frees h once the loop has run */
    assert(rv != 0);
    return rv;
err_after_alloc:
    http__free(h);
    assert(rv != 0);
    return rv;
}

void http_set_conn_limits(struct http *h, unsigned max_conns, unsigned max_per_ip)
{
    h->max_conns = max_conns ? max_conns : HTTP_DEFAULT_MAX_CONNS;
    h->max_per_ip = max_per_ip ? max_per_ip : HTTP_DEFAULT_MAX_PER_IP;
}

void http_set_cors(struct http *h, const struct cors *c)
{
    h->cors = *c;
}

void http_stats_get(const struct http *h, struct http_stats *st)
{
    *st = h->st;
    st->open = (unsigned)h->by_wsi.count;
}

void http_stop(struct http *h, void (*done)(void *data), void *data)
{
    h->done = done;
    h->done_data = data;
    http__teardown(h);
}
