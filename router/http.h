/* router/http.h — the router's HTTP/1.1 server: libwebsockets on the router's uv loop.
 *
 * The server parses requests, enforces transport limits (body at most HTTP_BODY_MAX bytes →
 * 413, slow or unfinished requests time out and are closed), and hands each complete request
 * to one handler. The handler answers, now or later from the loop, with exactly one
 * http_reply. Responses go out as one write (headers and body together: on this machine a
 * separate header write costs ~40% of throughput). Keep-alive is supported. */
#ifndef LAUREL_HTTP_H
#define LAUREL_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define HTTP_BODY_MAX (64 * 1024)

enum http_method { HTTP_GET, HTTP_POST, HTTP_PUT, HTTP_DELETE, HTTP_OPTIONS, HTTP_OTHER };

/** The method's name as HTTP spells it ("OTHER" for HTTP_OTHER). */
const char *http_method_name(enum http_method m);

/** One request. Owned by the server; valid until http_reply is called for it (or the
 * connection closes, which the handler learns from http_req_alive). */
struct http_req {
    enum http_method method;
    const char *path;  /* NUL-terminated, without the query string, %-decoded by lws */
    const char *query; /* NUL-terminated, after '?', "" when none: lws %-decodes each
                          name=value and they are joined with '&' again */
    const char *auth;  /* the Authorization header value, "" when none */
    const char *peer;  /* the client's numeric address, "" when unknown: per-address limits */
    /* The Laurel-Consistency header (docs/consistency.md): 0 absent, 1 "linearizable",
     * 2 "stale", -1 anything else. */
    int consistency;
    const char *body; /* NUL-terminated copy of the body ("" when none) */
    size_t body_len;
    void *data; /* for the handler's use */
};

struct http; /* Opaque. */

/** Called once per complete request; it must call http_reply exactly once, now or later. */
typedef void (*http_handler)(void *data, struct http_req *req);

/**
 * Listen on @addr (IPv4 "host:port") with @handler on @loop. @return 0 and *@out, or LR_E*
 * with @errmsg.
 */
int http_start(uv_loop_t *loop, const char *addr, http_handler handler, void *data,
               struct http **out, char *errmsg);

struct ws;
struct cors;

/* TLS on the listener (docs/security.md, "TLS"): HTTPS and WSS only, TLS 1.2 or later. */
struct http_tls {
    const char *cert; /* PEM: the server certificate, then any intermediates */
    const char *key;  /* PEM: its private key, unencrypted */
};

/**
 * The same, and WebSocket upgrades of GET /v1/ws served by @ws (borrowed until the server is
 * gone) on the same context and loop; http_start refuses every upgrade. With @tls (NULL:
 * plain HTTP; it and its paths borrowed for the call) the listener speaks only TLS: a plain
 * HTTP request on it fails the handshake and is closed unanswered. Errors as http_start's,
 * and LR_EIO, LR_EMALFORMED or LR_EINVAL when the certificate or key cannot be loaded
 * (lib/certs.h).
 */
int http_start_ws(uv_loop_t *loop, const char *addr, const struct http_tls *tls,
                  http_handler handler, void *data, struct ws *ws, struct http **out, char *errmsg);

/**
 * Answer @req: @status, a JSON @body of @len bytes (copied), and extra header lines
 * (e.g. "Retry-After: 1\r\n", or NULL). After this call @req is gone. If the client went away
 * meanwhile, the answer is dropped.
 */
void http_reply(struct http_req *req, int status, const char *body, size_t len,
                const char *extra_headers);

#define HTTP_JSON "application/json"

/** The same with Content-Type @ctype (e.g. the Prometheus text format). */
void http_reply_type(struct http_req *req, int status, const char *ctype, const char *body,
                     size_t len, const char *extra_headers);

/** 1 while the connection of @req is still open. */
int http_req_alive(const struct http_req *req);

/* Plain HTTP connections (not upgraded to a WebSocket, which ws.h bounds) at most, in all and
 * per client address: docs/security.md, "Limits". */
#define HTTP_DEFAULT_MAX_CONNS 50000
#define HTTP_DEFAULT_MAX_PER_IP 10000

/**
 * Bound the plain HTTP connections of @h: at most @max_conns in all and @max_per_ip from one
 * client address (0: the defaults above). A connection past either is closed as soon as it
 * is accepted, before anything is read: no request has arrived to answer. A connection that
 * upgrades to a WebSocket stops counting here (ws.c counts it). Call before the loop runs.
 */
void http_set_conn_limits(struct http *h, unsigned max_conns, unsigned max_per_ip);

/** Counters of @h's connections, for /metrics. */
struct http_stats {
    unsigned open;              /* gauge: plain HTTP connections */
    uint64_t refused_max_conns; /* closed at accept: max_conns open */
    uint64_t refused_per_ip;    /* closed at accept: max_per_ip open from its address */
};
void http_stats_get(const struct http *h, struct http_stats *st);

/**
 * Answer every request of @h, the server's own refusals included, with the CORS header lines
 * of @c (copied; cors.h) for the request's Origin. Until this is called every origin is
 * allowed ("*"). Call before the loop runs.
 */
void http_set_cors(struct http *h, const struct cors *c);

/** Stop listening and close every connection; @done fires when the server is gone. */
void http_stop(struct http *h, void (*done)(void *data), void *data);

#endif
