/* router/ws.h — `GET /v1/ws`: the WebSocket side of the router (API.md, "WebSocket"), on the
 * same libwebsockets context and uv loop as HTTP (http.c hands it the WebSocket callbacks).
 *
 * Each connection is one gateway client (gateway.h) plus a bounded send queue of shared
 * messages. Client messages are JSON objects with an "op": subscribe, unsubscribe, ping, and
 * get (a read endpoint over the socket, answered by the router's own pipeline). A bad message
 * gets an error event and the connection stays open; a consumer whose queue overflows is
 * closed (1008) without slowing anyone else; the server pings and closes silent peers. */
#ifndef LAUREL_WS_H
#define LAUREL_WS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gateway.h"

#define WS_MSG_MAX (64 * 1024) /* a client message above this gets an error and is dropped */

struct ws_config {
    unsigned max_conns;   /* per router (0: WS_DEFAULT_MAX_CONNS) */
    unsigned max_per_ip;  /* per peer address (0: WS_DEFAULT_MAX_PER_IP) */
    size_t queue_bytes;   /* send queue bound per connection (0: 1 MiB) */
    unsigned queue_msgs;  /* send queue bound per connection (0: 1000) */
    unsigned ping_ms;     /* server ping period; a peer silent for 2 periods is closed
                             (0: 20 000) */
    unsigned max_gets;    /* gets in flight per connection (0: WS_DEFAULT_MAX_GETS) */
    unsigned max_resumes; /* resumes replaying per connection (0: WS_DEFAULT_MAX_RESUMES) */
};

#define WS_DEFAULT_MAX_CONNS 200000
#define WS_DEFAULT_MAX_PER_IP 200000
/* A client past these gets an error event (rate_limited) for that get or resume, and the
 * connection stays open: docs/security.md, "Limits". */
#define WS_DEFAULT_MAX_GETS 64
#define WS_DEFAULT_MAX_RESUMES 8

/**
 * A reply to a get: @status and a JSON @body of @len bytes (borrowed for the call).
 */
typedef void (*ws_reply_fn)(void *rdata, int status, const char *body, size_t len);

/**
 * Answer GET @path with query @query (both NUL-terminated and %-decoded as lws decodes HTTP,
 * borrowed for the call) by calling @reply exactly once, now or later. @return 0, or LR_E*
 * (then @reply never fires).
 */
typedef int (*ws_get_fn)(void *data, const char *path, const char *query, ws_reply_fn reply,
                         void *rdata);

struct ws; /* Opaque. */
struct lws;

/**
 * A WebSocket endpoint over gateway @g (borrowed until ws_close's callback) answering gets
 * with @get. @cfg is copied. @return 0 and *@out, or LR_ENOMEM.
 */
int ws_new(uv_loop_t *loop, struct gateway *g, const struct ws_config *cfg, ws_get_fn get,
           void *get_data, struct ws **out);

/**
 * http.c's forwarder of libwebsockets callbacks (one callback serves both protocols, so lws'
 * choice of protocol for an upgrade does not matter). @pss is the connection's slot (NULL
 * at first). @return 1 when @reason is a WebSocket reason, with lws' answer in *@ret; 0 when
 * it is not (http.c handles it).
 */
int ws_callback(struct ws *w, struct lws *wsi, int reason, void **pss, void *in, size_t len,
                int *ret);

/** Open connections. */
unsigned ws_connections(const struct ws *w);

/** Why ws_admit refuses a handshake (0: it does not). */
enum ws_refusal {
    WS_REFUSE_MAX_CONNS = 1, /* --ws-max-conns open already */
    WS_REFUSE_PER_IP,        /* --ws-max-per-ip open already from the peer's address */
    WS_REFUSE_STOPPING,      /* the router is stopping */
};

/**
 * Whether the WebSocket handshake on @wsi (borrowed for the call) may complete: 0, or a
 * WS_REFUSE_* reason, counted in the stats. http.c asks once per upgrade request, before lws
 * answers it, and writes the refusal itself (429 for the per-address limit, else 503), so a
 * refused client gets an HTTP answer rather than a dropped connection.
 */
int ws_admit(struct ws *w, struct lws *wsi);

/**
 * Counters since ws_new (monotonic) and gauges of the moment, for /metrics. Connections the
 * server closes itself are counted by reason; a peer's own close is not counted apart.
 */
struct ws_stats {
    unsigned open;                            /* gauge: sessions open */
    uint64_t accepted;                        /* handshakes completed */
    uint64_t refused[WS_REFUSE_STOPPING + 1]; /* handshakes refused, by enum ws_refusal */
    uint64_t slow_consumers;                  /* closed with 1008: send queue full */
    uint64_t ping_timeouts;                   /* closed with 1001: silent for two ping periods */
    uint64_t gets_refused;    /* gets answered with an error: max_gets in flight already */
    uint64_t resumes_refused; /* resumes answered with an error: max_resumes replaying */
    uint64_t received;        /* whole client messages, text or binary (not pongs) */
    uint64_t sent;            /* messages written to sockets (pings and closes not counted) */
    uint64_t sent_bytes;      /* their payload bytes */
    uint64_t dropped;         /* messages queued but never written: their connection closed */
    uint64_t queued;          /* gauge: messages waiting in send queues */
    uint64_t queued_bytes;    /* gauge: their payload bytes */
};

/** Copy @w's counters into *@st. */
void ws_stats_get(const struct ws *w, struct ws_stats *st);

/**
 * Stop; call after the lws context is gone (every connection closed). @done fires once the
 * last connection's pending gets have answered and the timer has closed.
 */
void ws_close(struct ws *w, void (*done)(void *data), void *data);

#endif
