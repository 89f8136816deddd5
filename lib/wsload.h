/* lib/wsload.h — many WebSocket client connections on one libuv loop, for
 * `laurel bench ws` (and one at a time for `laurel ctl watch`).
 *
 * A pool of at most `cap` connections to one server, numbered 0, 1, 2, ... in the order they
 * are opened. Connection n binds to the loopback source address 127.0.0.(first_source +
 * n / per_source) before connecting, so that more connections than one address has ephemeral
 * ports fit. Each does the RFC 6455 handshake, then hands every complete text message to a
 * callback, answers pings with pongs, and sends masked text frames.
 *
 * Minimal by design (a load generator, not a library): no extensions, no TLS, the server's
 * Sec-WebSocket-Accept is not checked (a 101 is enough). Nothing is allocated per message
 * received: reads land in one buffer of the pool and only an incomplete frame's tail is kept
 * per connection; a send is written at once when the socket takes it, copied only when not.
 * Not thread-safe: everything runs on the caller's loop. */
#ifndef LAUREL_WSLOAD_H
#define LAUREL_WSLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define WSLOAD_MSG_MAX (4u << 20) /* a larger message from the server closes the connection */

struct wsload_cbs {
    /** Connection @conn's handshake was answered 101: it may send. */
    void (*opened)(void *data, unsigned conn);
    /** A complete text message, @len bytes (not NUL-terminated), borrowed for the call. */
    void (*message)(void *data, unsigned conn, const char *text, size_t len);
    /** @conn is gone, after its handshake (@opened 1) or before: the server's close frame
     * (@code, @why its reason), or a failure to connect, a reset or EOF (@code 0, @why says
     * which). Called once per connection; not for wsload_close or wsload_free. */
    void (*closed)(void *data, unsigned conn, int opened, int code, const char *why);
};

struct wsload_spec {
    const char *addr;      /* "host:port" of the server (IPv4, "[v6]:port" or a name resolved
                              once by wsload_new); copied */
    const char *target;    /* request target, e.g. "/v1/ws"; copied */
    unsigned cap;          /* connections at most, in all (>= 1) */
    unsigned first_source; /* last byte of the first source address 127.0.0.x (0: no bind;
                              else the server must be IPv4) */
    unsigned per_source;   /* connections per source address (0: all on the first) */
    unsigned handshakes;   /* handshakes in flight at most (0: 256) */
    struct wsload_cbs cbs; /* each may be NULL */
    void *data;
};

struct wsload; /* Opaque. */

/**
 * A pool on @loop (borrowed until wsload_free's callback). @spec is copied.
 * @return 0 and *@out, LR_EINVAL (bad address or cap) or LR_ENOMEM.
 */
int wsload_new(uv_loop_t *loop, const struct wsload_spec *spec, struct wsload **out);

/**
 * Open connections until @n have been started in all (counting closed ones; at most cap).
 * They open as handshake slots free up; opened() tells each one.
 */
void wsload_grow(struct wsload *l, unsigned n);

/**
 * Send @text (@len bytes, copied) as one text message on open connection @conn.
 * @return 0, LR_EINVAL (@conn not open) or LR_ENOMEM. A write error closes the connection.
 */
int wsload_send(struct wsload *l, unsigned conn, const char *text, size_t len);

/** Close @conn (no close frame; closed() is called). A no-op when it is not open. */
void wsload_close(struct wsload *l, unsigned conn);

struct wsload_stats {
    unsigned started;      /* connections started */
    unsigned opening;      /* connecting or handshaking now */
    unsigned open;         /* open now */
    uint64_t opened;       /* handshakes answered 101 */
    uint64_t failed;       /* closed before their handshake completed */
    uint64_t closed;       /* closed after it */
    uint64_t messages;     /* text messages received */
    uint64_t bytes;        /* bytes received */
    char first_error[160]; /* what closed the first connection that failed, "" if none */
};
void wsload_stats_get(const struct wsload *l, struct wsload_stats *st);

/** Close every connection and free @l once their handles have closed (run the loop); then
 * @done (may be NULL) fires. No callback of the pool fires after this call. */
void wsload_free(struct wsload *l, void (*done)(void *data), void *data);

#endif
