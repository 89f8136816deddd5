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
    unsigned max_conns;    /* per router (0: WS_DEFAULT_MAX_CONNS) */
    unsigned max_per_ip;   /* per peer address (0: WS_DEFAULT_MAX_PER_IP) */
    size_t queue_bytes;    /* send queue bound per connection (0: 1 MiB) */
    unsigned queue_msgs;   /* send queue bound per connection (0: 1000) */
    unsigned ping_ms;      /* server ping period; a peer silent for 2 periods is closed
                              (0: 20 000) */
};

#define WS_DEFAULT_MAX_CONNS 200000
#define WS_DEFAULT_MAX_PER_IP 200000

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

/**
 * Stop; call after the lws context is gone (every connection closed). @done fires once the
 * last connection's pending gets have answered and the timer has closed.
 */
void ws_close(struct ws *w, void (*done)(void *data), void *data);

#endif
