/* router/ws_int.h — internals of the WebSocket endpoint, shared by ws.c (sessions, send
 * queues, heartbeats: everything lws) and ws_ops.c (the client messages and their ops).
 * Nothing outside those two files includes it. */
#ifndef LAUREL_WS_INT_H
#define LAUREL_WS_INT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/strmap.h"
#include "ws.h"

/* One WebSocket session (ws.c's opening comment tells its ownership). */
struct ws_conn {
    struct ws *w;
    struct lws *wsi; /* NULL once the session closed */
    struct gateway_client *cl;
    unsigned refs;
    struct gateway_msg **q; /* ring of queued messages */
    size_t qhead, qn, qcap, qbytes;
    struct gateway_msg **held; /* sent while a subscribe is answered: after "subscribed" */
    size_t nheld, capheld;
    int holding;
    char *rx; /* the client message being received */
    size_t rxlen;
    int rx_over, rx_binary;
    int ping_due;
    int choked;         /* the socket took no more writes when last asked ... */
    uint64_t choked_at; /* ... at this loop time (ws__slow) */
    int kill;           /* close code to send, or 0 */
    const char *kill_reason;
    uint64_t last_rx;
    unsigned gets; /* gets in flight (ws_ops.c), bounded by cfg.max_gets */
    char ip[48];
    struct ws_conn *prev, *next; /* w->conns */
};

/* The endpoint: every session, the limits and the counters. */
struct ws {
    uv_loop_t *loop;
    struct gateway *g;
    struct ws_config cfg;
    ws_get_fn get;
    void *get_data;
    struct ws_conn *conns;
    unsigned nconns;      /* open sessions */
    unsigned nalloc;      /* connection structs alive (sessions + ones waiting for gets) */
    struct strmap per_ip; /* peer address -> (uintptr_t)open sessions */
    unsigned char *batch; /* LWS_PRE + WS__BATCH bytes: frames of several queued messages */
    uv_timer_t ping;
    struct ws_stats st; /* st.open is nconns: filled in by ws_stats_get */
    int closing, timer_closed;
    void (*done)(void *data);
    void *done_data;
};

/* ---- ws.c ---- */

/* Queue @m (borrowed: a reference is taken) for @c; held while @c->holding. Nothing happens
 * once the session closed or is being closed. */
void ws__send(struct ws_conn *c, struct gateway_msg *m);

/* Queue @j's encoding for @c; @j is consumed (NULL: out of memory, which closes @c). */
void ws__send_json(struct ws_conn *c, json_t *j);

/* Queue an error event of code @code (an LR_E*) and sentence @msg. */
void ws__error(struct ws_conn *c, int code, const char *msg);

/* Queue what was held while @c->holding, in order. */
void ws__send_held(struct ws_conn *c);

/* Close @c with WebSocket close @code and @reason (a literal): its queue is dropped. */
void ws__kill(struct ws_conn *c, int code, const char *reason);

/* Drop a reference on @c; the last frees it. */
void ws__conn_unref(struct ws_conn *c);

/* ---- ws_ops.c ---- */

/* Handle one whole client message, @len bytes of text at @p (borrowed for the call): answers
 * and errors are queued on @c, which stays open whatever the message holds. */
void ws_ops__message(struct ws_conn *c, const char *p, size_t len);

#endif
