/* router/ws.c — the WebSocket connections of `GET /v1/ws` (see ws.h).
 *
 * Ownership. A connection (struct ws_conn) is allocated at LWS_CALLBACK_ESTABLISHED and has
 * one reference for the lws session and one per get in flight; the session's reference goes
 * at LWS_CALLBACK_CLOSED (wsi NULL from then on: late answers are dropped), and the last one
 * frees it. The gateway client goes with the session. Messages in the queue are references to
 * shared gateway messages: an event's text is encoded once for all its receivers.
 *
 * Backpressure. Each writeable callback writes what is queued, as many whole frames as fit
 * WS__BATCH. A queue past its bound (bytes or messages) while the socket takes no more
 * writes, or past WS__BURST times the bound at all (ws__slow), means the peer reads slower
 * than events arrive: the queue is dropped and the connection closed with 1008 and a reason, which
 * reaches the peer if it reads again within WS__KILL_S (it waits behind what the kernel holds, at
 * most WS__SNDBUF); nothing else waits for it.
 *
 * Heartbeats. Every ping period each connection gets a ping; one silent for two periods (no
 * frame, no pong) is closed with 1001.
 *
 * Admission. The limits are checked when lws asks to confirm the upgrade (http.c), so a
 * refused client gets an HTTP answer; the check at LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION
 * repeats it, uncounted, in case an upgrade ever reaches lws' handshake without the first.
 *
 * What a client says (its messages and their ops) is ws_ops.c's: this file only assembles
 * whole messages and hands them over. */
#include "ws.h"

#include <assert.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../lib/err.h"
#include "ws_int.h"

_Static_assert(LWS_PRE <= GATEWAY_MSG_PRE, "gateway messages must leave room for lws' header");

#define WS__SNDBUF (64 * 1024) /* kernel send buffer per WebSocket */
#define WS__KILL_S 5           /* a connection being closed waits this long for its close frame */
#define WS__BATCH (32 * 1024)  /* queued messages written in one go, at most */
#define WS__BURST                                                                                  \
    8 /* a queue may pass its bound this many times while its socket                               \
         takes writes (ws__slow) */

/* ---- the send queue ----------------------------------------------------------------------- */

static void ws__queue_drop(struct ws_conn *c)
{
    c->w->st.dropped += c->qn + c->nheld;
    c->w->st.queued -= c->qn;
    c->w->st.queued_bytes -= c->qbytes;
    while (c->qn > 0) {
        gateway_msg_unref(c->q[c->qhead]);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qn--;
    }
    c->qbytes = 0;
    for (size_t i = 0; i < c->nheld; i++) {
        gateway_msg_unref(c->held[i]);
    }
    c->nheld = 0;
}

/* Close @c with @code and @reason: now if lws lets us write, else when the socket is killed. */
void ws__kill(struct ws_conn *c, int code, const char *reason)
{
    if (c->wsi == NULL || c->kill) {
        return;
    }
    c->kill = code;
    c->kill_reason = reason;
    ws__queue_drop(c);
    lws_callback_on_writable(c->wsi);
    /* The close frame goes out behind what the kernel already holds: a peer that reads again
     * within WS__KILL_S gets it; one that does not read never makes the socket writeable and
     * is dropped then. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, WS__KILL_S);
}

static int ws__queue_push(struct ws_conn *c, struct gateway_msg *m)
{
    if (c->qn == c->qcap) {
        size_t cap = c->qcap ? c->qcap * 2 : 8;
        struct gateway_msg **nq = malloc(cap * sizeof *nq);
        if (nq == NULL) {
            return LR_ENOMEM;
        }
        for (size_t i = 0; i < c->qn; i++) {
            nq[i] = c->q[(c->qhead + i) % c->qcap];
        }
        free(c->q);
        c->q = nq;
        c->qcap = cap;
        c->qhead = 0;
    }
    c->q[(c->qhead + c->qn) % c->qcap] = m;
    c->qn++;
    c->qbytes += m->len;
    c->w->st.queued++;
    c->w->st.queued_bytes += m->len;
    return 0;
}

/* @c's queue is at its bound with @len more bytes to queue: is the peer slow? A burst can
 * fill the queue of a peer that reads as fast as it is written to (a stream that moved to
 * another replica delivers its catch-up, hundreds of events, in one loop turn), so the bound
 * closes a peer only when its socket no longer takes writes (asked once per loop turn: a
 * poll), and any peer at WS__BURST times the bound. */
static int ws__slow(struct ws_conn *c, size_t len)
{
    struct ws *w = c->w;
    if (c->qn + 1 > WS__BURST * (size_t)w->cfg.queue_msgs ||
        c->qbytes + len > WS__BURST * w->cfg.queue_bytes) {
        return 1;
    }
    uint64_t now = uv_now(w->loop);
    if (c->choked_at != now || c->choked_at == 0) {
        c->choked_at = now;
        c->choked = lws_send_pipe_choked(c->wsi) != 0;
    }
    return c->choked;
}

/* Queue @m (borrowed: a reference is taken) for @c. */
void ws__send(struct ws_conn *c, struct gateway_msg *m)
{
    if (c->wsi == NULL || c->kill || m == NULL) {
        return;
    }
    if (c->holding) {
        if (c->nheld == c->capheld) {
            size_t cap = c->capheld ? c->capheld * 2 : 4;
            struct gateway_msg **nv = realloc(c->held, cap * sizeof *nv);
            if (nv == NULL) {
                ws__kill(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
                return;
            }
            c->held = nv;
            c->capheld = cap;
        }
        gateway_msg_ref(m);
        c->held[c->nheld++] = m;
        return;
    }
    if ((c->qn + 1 > c->w->cfg.queue_msgs || c->qbytes + m->len > c->w->cfg.queue_bytes) &&
        ws__slow(c, m->len)) {
        c->w->st.slow_consumers++;
        ws__kill(c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                 "slow consumer: send queue full; reconnect and resume");
        return;
    }
    if (ws__queue_push(c, m) != 0) {
        ws__kill(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        return;
    }
    gateway_msg_ref(m);
    if (c->qn == 1) {
        lws_callback_on_writable(c->wsi);
    }
}

static void ws__on_gateway(void *data, struct gateway_msg *m)
{
    ws__send(data, m);
}

void ws__send_json(struct ws_conn *c, json_t *j)
{
    struct gateway_msg *m = gateway_msg_json(j);
    json_decref(j);
    if (m == NULL) {
        ws__kill(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        return;
    }
    ws__send(c, m);
    gateway_msg_unref(m);
}

void ws__send_held(struct ws_conn *c)
{
    /* Emptied first: a send that finds the queue full closes @c, and closing drops the held
     * messages too, which would then lose their reference twice. */
    size_t n = c->nheld;
    c->nheld = 0;
    for (size_t i = 0; i < n; i++) {
        ws__send(c, c->held[i]);
        gateway_msg_unref(c->held[i]);
    }
}

void ws__error(struct ws_conn *c, int code, const char *msg)
{
    ws__send_json(c, json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "code",
                               err_api_code(code), "message", msg));
}

/* ---- connections -------------------------------------------------------------------------- */

static void ws__maybe_done(struct ws *w)
{
    if (!w->closing || !w->timer_closed || w->nalloc > 0) {
        return;
    }
    strmap_free(&w->per_ip);
    free(w->batch);
    void (*done)(void *) = w->done;
    void *dd = w->done_data;
    free(w);
    if (done) {
        done(dd);
    }
}

void ws__conn_unref(struct ws_conn *c)
{
    assert(c->refs > 0);
    if (--c->refs > 0) {
        return;
    }
    struct ws *w = c->w;
    ws__queue_drop(c);
    free(c->q);
    free(c->held);
    free(c->rx);
    free(c);
    w->nalloc--;
    ws__maybe_done(w);
}

static int ws__established(struct ws *w, struct lws *wsi, void **pss)
{
    struct ws_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return -1;
    }
    c->w = w;
    c->wsi = wsi;
    c->refs = 1;
    c->last_rx = uv_now(w->loop);
    /* Bound what the kernel holds for a peer too (autotuning would let it reach 4 MiB): with
     * 100 000 sockets that is memory, and for a slow peer it is what the queue bound means. */
    int fd = (int)lws_get_socket_fd(wsi), sndbuf = WS__SNDBUF;
    if (fd >= 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf); /* best effort */
    }
    c->cl = gateway_client_new(w->g, ws__on_gateway, c);
    if (c->cl == NULL) {
        free(c);
        return -1;
    }
    lws_get_peer_simple(wsi, c->ip, sizeof c->ip);
    uintptr_t n = (uintptr_t)strmap_get(&w->per_ip, c->ip, strlen(c->ip));
    if (strmap_put(&w->per_ip, c->ip, strlen(c->ip), (void *)(n + 1)) != 0) {
        gateway_client_free(c->cl);
        free(c);
        return -1;
    }
    c->next = w->conns;
    if (w->conns) {
        w->conns->prev = c;
    }
    w->conns = c;
    w->nconns++;
    w->nalloc++;
    w->st.accepted++;
    *pss = c;
    return 0;
}

static void ws__closed(struct ws *w, void **pss)
{
    struct ws_conn *c = *pss;
    if (c == NULL) {
        return;
    }
    *pss = NULL;
    uintptr_t n = (uintptr_t)strmap_get(&w->per_ip, c->ip, strlen(c->ip));
    if (n <= 1) {
        strmap_del(&w->per_ip, c->ip, strlen(c->ip));
    } else {
        /* The key is there: a failure (growth refused) only leaves the count one too high. */
        (void)strmap_put(&w->per_ip, c->ip, strlen(c->ip), (void *)(n - 1));
    }
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        w->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    w->nconns--;
    c->wsi = NULL;
    gateway_client_free(c->cl);
    c->cl = NULL;
    ws__conn_unref(c);
}

/* 0 when a handshake on @wsi is within the limits, else its enum ws_refusal. */
static int ws__admit(const struct ws *w, struct lws *wsi)
{
    char ip[48];
    if (w->closing) {
        return WS_REFUSE_STOPPING;
    }
    if (w->nconns >= w->cfg.max_conns) {
        return WS_REFUSE_MAX_CONNS;
    }
    lws_get_peer_simple(wsi, ip, sizeof ip);
    if ((uintptr_t)strmap_get(&w->per_ip, ip, strlen(ip)) >= w->cfg.max_per_ip) {
        return WS_REFUSE_PER_IP;
    }
    return 0;
}

int ws_admit(struct ws *w, struct lws *wsi)
{
    int why = ws__admit(w, wsi);
    if (why != 0) {
        w->st.refused[why]++;
    }
    return why;
}

/* A server frame header (FIN, text, unmasked) for @len bytes into @h; its length. */
static size_t ws__frame_head(unsigned char *h, size_t len)
{
    h[0] = 0x81;
    if (len < 126) {
        h[1] = (unsigned char)len;
        return 2;
    }
    if (len < 65536) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++) {
        h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    }
    return 10;
}

/* Write the queued messages that fit WS__BATCH as whole frames in one write: a burst of
 * events costs one syscall per connection instead of one per message. lws frames one
 * message per lws_write; LWS_WRITE_RAW sends our frames as they are (lws keeps what the
 * kernel does not take and flushes it before the next writeable callback).
 * @return 0 (written), -1 (close), or 1 when the first message alone exceeds the batch
 * (the caller writes it framed by lws). */
static int ws__write_batch(struct ws_conn *c)
{
    unsigned char *out = c->w->batch + LWS_PRE;
    size_t n = 0, msgs = 0, bytes = 0;
    while (c->qn > 0) {
        struct gateway_msg *m = c->q[c->qhead];
        if (n + 10 + m->len > WS__BATCH) {
            if (n == 0) {
                return 1;
            }
            break;
        }
        n += ws__frame_head(out + n, m->len);
        memcpy(out + n, gateway_msg_text(m), m->len);
        n += m->len;
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qn--;
        c->qbytes -= m->len;
        c->w->st.queued--;
        c->w->st.queued_bytes -= m->len;
        msgs++;
        bytes += m->len;
        gateway_msg_unref(m);
    }
    int w = lws_write(c->wsi, out, n, LWS_WRITE_RAW);
    if (w < 0 || (size_t)w < n) {
        return -1;
    }
    c->w->st.sent += msgs;
    c->w->st.sent_bytes += bytes;
    if (c->qn > 0) {
        lws_callback_on_writable(c->wsi);
    }
    return 0;
}

static int ws__writeable(struct ws_conn *c)
{
    if (c->kill) {
        /* The close frame is written here: with lws_close_reason and return -1 lws 4.1.6 closed
         * without sending it (measured with a peer that had stopped reading). lws' public
         * enum leaves out the CLOSE opcode (4) to keep users on lws_close_reason. */
        unsigned char buf[LWS_PRE + 125];
        size_t rl = strlen(c->kill_reason);
        rl = rl > 123 ? 123 : rl;
        buf[LWS_PRE] = (unsigned char)(c->kill >> 8);
        buf[LWS_PRE + 1] = (unsigned char)(c->kill & 0xff);
        memcpy(buf + LWS_PRE + 2, c->kill_reason, rl);
        lws_write(c->wsi, buf + LWS_PRE, rl + 2, (enum lws_write_protocol)4 /* CLOSE */);
        return -1;
    }
    if (c->ping_due) {
        /* Never an empty ping: its pong would be empty too, and lws 4.1.6 does not report
         * an empty pong (LWS_CALLBACK_RECEIVE_PONG never fires), so every client that only
         * answers pings would be closed as silent. */
        unsigned char buf[LWS_PRE + 4];
        memcpy(buf + LWS_PRE, "ping", 4);
        c->ping_due = 0;
        if (lws_write(c->wsi, buf + LWS_PRE, 4, LWS_WRITE_PING) < 0) {
            return -1;
        }
        if (c->qn > 0) {
            lws_callback_on_writable(c->wsi);
        }
        return 0;
    }
    if (c->qn == 0) {
        return 0;
    }
    if (c->qn > 1) {
        int rv = ws__write_batch(c);
        if (rv <= 0) {
            return rv;
        }
    }
    struct gateway_msg *m = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qn--;
    c->qbytes -= m->len;
    /* lws writes the frame header into the bytes before the text: the same bytes for every
     * receiver of a shared message, and never the text itself (servers do not mask). */
    int n = lws_write(c->wsi, m->data + GATEWAY_MSG_PRE, m->len, LWS_WRITE_TEXT);
    size_t len = m->len;
    gateway_msg_unref(m);
    c->w->st.queued--;
    c->w->st.queued_bytes -= len;
    if (n < 0 || (size_t)n < len) {
        return -1;
    }
    c->w->st.sent++;
    c->w->st.sent_bytes += len;
    if (c->qn > 0) {
        lws_callback_on_writable(c->wsi);
    }
    return 0;
}

static int ws__receive(struct ws_conn *c, const char *in, size_t len)
{
    struct lws *wsi = c->wsi;
    c->last_rx = uv_now(c->w->loop);
    if (c->rxlen == 0 && !c->rx_over && lws_is_first_fragment(wsi)) {
        c->rx_binary = lws_frame_is_binary(wsi);
    }
    if (!c->rx_over && !c->rx_binary) {
        if (c->rxlen + len > WS_MSG_MAX) {
            c->rx_over = 1;
            c->rxlen = 0;
        } else {
            char *nb = realloc(c->rx, c->rxlen + len + 1);
            if (nb == NULL) {
                return -1;
            }
            c->rx = nb;
            memcpy(c->rx + c->rxlen, in, len);
            c->rxlen += len;
        }
    }
    if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0) {
        return 0;
    }
    c->w->st.received++;
    if (c->rx_binary) {
        ws__error(c, LR_EINVAL, "binary messages are not supported: send JSON text");
    } else if (c->rx_over) {
        ws__error(c, LR_ETOOBIG, "message exceeds 65536 bytes");
    } else {
        ws_ops__message(c, c->rx, c->rxlen);
    }
    /* A message of a few KB is common: keep small buffers, drop big ones. */
    if (c->rxlen > 4096) {
        free(c->rx);
        c->rx = NULL;
    }
    c->rxlen = 0;
    c->rx_over = c->rx_binary = 0;
    return 0;
}

/* ---- lws callbacks ----------------------------------------------------------------------------
 */

int ws_callback(struct ws *w, struct lws *wsi, int reason, void **pss, void *in, size_t len,
                int *ret)
{
    struct ws_conn *c = pss ? *pss : NULL;
    *ret = 0;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: *ret = ws__admit(w, wsi) != 0 ? -1 : 0; return 1;
    case LWS_CALLBACK_ESTABLISHED: *ret = pss ? ws__established(w, wsi, pss) : -1; return 1;
    case LWS_CALLBACK_RECEIVE: *ret = c ? ws__receive(c, in, len) : -1; return 1;
    case LWS_CALLBACK_RECEIVE_PONG:
        if (c) {
            c->last_rx = uv_now(w->loop);
        }
        return 1;
    case LWS_CALLBACK_SERVER_WRITEABLE: *ret = c ? ws__writeable(c) : -1; return 1;
    case LWS_CALLBACK_CLOSED:
        if (pss) {
            ws__closed(w, pss);
        }
        return 1;
    default: return 0;
    }
}

/* ---- heartbeats and lifetime
 * --------------------------------------------------------------------- */

static void ws__ping_tick(uv_timer_t *t)
{
    struct ws *w = t->data;
    uint64_t now = uv_now(w->loop);
    for (struct ws_conn *c = w->conns; c; c = c->next) {
        if (now - c->last_rx > 2 * (uint64_t)w->cfg.ping_ms) {
            if (!c->kill) {
                w->st.ping_timeouts++;
            }
            ws__kill(c, LWS_CLOSE_STATUS_GOINGAWAY, "no frame or pong for two ping periods");
        } else if (!c->kill) {
            c->ping_due = 1;
            lws_callback_on_writable(c->wsi);
        }
    }
}

unsigned ws_connections(const struct ws *w)
{
    return w->nconns;
}

void ws_stats_get(const struct ws *w, struct ws_stats *st)
{
    *st = w->st;
    st->open = w->nconns;
}

int ws_new(uv_loop_t *loop, struct gateway *g, const struct ws_config *cfg, ws_get_fn get,
           void *get_data, struct ws **out)
{
    struct ws *w = calloc(1, sizeof *w);
    if (w == NULL) {
        return LR_ENOMEM;
    }
    w->loop = loop;
    w->g = g;
    w->cfg = *cfg;
    if (w->cfg.max_conns == 0) {
        w->cfg.max_conns = WS_DEFAULT_MAX_CONNS;
    }
    if (w->cfg.max_per_ip == 0) {
        w->cfg.max_per_ip = WS_DEFAULT_MAX_PER_IP;
    }
    if (w->cfg.max_gets == 0) {
        w->cfg.max_gets = WS_DEFAULT_MAX_GETS;
    }
    if (w->cfg.max_resumes == 0) {
        w->cfg.max_resumes = WS_DEFAULT_MAX_RESUMES;
    }
    if (w->cfg.queue_bytes == 0) {
        w->cfg.queue_bytes = 1u << 20;
    }
    if (w->cfg.queue_msgs == 0) {
        w->cfg.queue_msgs = 1000;
    }
    if (w->cfg.ping_ms == 0) {
        w->cfg.ping_ms = 20000;
    }
    w->batch = malloc(LWS_PRE + WS__BATCH);
    if (w->batch == NULL) {
        free(w);
        return LR_ENOMEM;
    }
    w->get = get;
    w->get_data = get_data;
    strmap_init(&w->per_ip);
    uv_timer_init(loop, &w->ping);
    w->ping.data = w;
    uv_timer_start(&w->ping, ws__ping_tick, w->cfg.ping_ms, w->cfg.ping_ms);
    *out = w;
    return 0;
}

static void ws__timer_closed(uv_handle_t *h)
{
    struct ws *w = h->data;
    w->timer_closed = 1;
    ws__maybe_done(w);
}

void ws_close(struct ws *w, void (*done)(void *data), void *data)
{
    w->closing = 1;
    w->done = done;
    w->done_data = data;
    uv_close((uv_handle_t *)&w->ping, ws__timer_closed);
}
