/* router/gateway.h — the WebSocket gateway's core, without the socket: it follows every
 * region's committed-event stream (evstream.h; docs/rpc.md, `subscribe`), keeps the topic map
 * and fans events out to clients, and keeps each watched board's top from the stream itself to
 * send coalesced `leaderboard.changed` (docs/api.md, "WebSocket").
 *
 * The gateway never touches a socket of a client: a client is a send callback that receives
 * refcounted messages (one JSON text, encoded once per event, shared by every client that gets
 * it). The WebSocket glue (ws.c) queues them and writes them out.
 *
 * Not thread-safe: everything runs on the router's uv loop. */
#ifndef LAUREL_GATEWAY_H
#define LAUREL_GATEWAY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "evstream.h"
#include "upstream.h"

/* Bytes kept free before every message's text: a transport may write its frame header there
 * (libwebsockets needs LWS_PRE; ws.c checks it fits). */
#define GATEWAY_MSG_PRE 32

/** One outgoing message: JSON text at data + GATEWAY_MSG_PRE, @len bytes. Read-only for
 * holders; each holder owns one reference. */
struct gateway_msg {
    unsigned refs;
    size_t len;
    unsigned char data[];
};

static inline const unsigned char *gateway_msg_text(const struct gateway_msg *m)
{
    return m->data + GATEWAY_MSG_PRE;
}
/** Take one more reference. */
void gateway_msg_ref(struct gateway_msg *m);
/** Drop one reference; the last frees @m. */
void gateway_msg_unref(struct gateway_msg *m);
/** A new message of @j's compact encoding (@j borrowed; NULL gives NULL), with one reference:
 * the caller's. @return NULL when out of memory. */
struct gateway_msg *gateway_msg_json(const json_t *j);

struct gateway;        /* Opaque. */
struct gateway_client; /* Opaque. */

/**
 * Called for each message a client gets. @m is borrowed: take a reference to keep it. It may
 * run from inside any gateway call, gateway_client_subscribe on the same client included (a
 * board topic's current top); the callee must not free the client from inside it.
 */
typedef void (*gateway_send_fn)(void *data, struct gateway_msg *m);

struct gateway_region {
    const char *id;     /* borrowed until gateway_new returns */
    struct upstream *u; /* borrowed: called until gateway_close, which must come first;
                           calls then in flight are waited for (upstream_close fails them) */
};

/**
 * Start following @n regions on @loop: one subscription per region, to one replica at a time,
 * moving to the next replica on any failure and resuming after the last index seen.
 * @return 0 and *@out; LR_EINVAL (@n is 0 or above ROUTER_MAX_REGIONS); LR_ENOMEM (the streams
 * already started then close, and free what they hold, once the loop runs).
 */
int gateway_new(uv_loop_t *loop, const struct gateway_region *regions, unsigned n,
                unsigned timeout_ms, struct gateway **out);

/**
 * Follow one more region (@id, copied; @u borrowed as gateway_region's), as the last index: a
 * region the cluster gained while the router ran. Every kept board top seeds the region's
 * list, and a board's global top waits for it (leaderboard.changed then covers it). Topics of
 * the region may be subscribed from now on. @return 0; LR_EINVAL (closing, or
 * ROUTER_MAX_REGIONS already); LR_ENOMEM (nothing changed).
 */
int gateway_add_region(struct gateway *g, const char *id, struct upstream *u);

/** Stop following; @done fires once every handle has closed and every client has been freed
 * (run the loop). After this call the gateway calls no upstream. */
void gateway_close(struct gateway *g, void (*done)(void *data), void *data);

/** A new client with no topics. @return NULL when out of memory. */
struct gateway_client *gateway_client_new(struct gateway *g, gateway_send_fn send, void *data);

/** Drop every topic and free @cl. */
void gateway_client_free(struct gateway_client *cl);

/**
 * Subscribe @cl to @topic (`player:<id>`, `board:<board_id>`, `board:<board_id>:region:<r>`).
 * Subscribing twice is a no-op. @return 0, LR_EINVAL (unknown topic: a sentence in @err),
 * LR_ETOOBIG (too many topics on one client) or LR_ENOMEM.
 */
int gateway_client_subscribe(struct gateway_client *cl, const char *topic, char *err,
                             size_t errcap);

/** Unsubscribe; a topic the client does not hold is a no-op. */
void gateway_client_unsubscribe(struct gateway_client *cl, const char *topic);

/**
 * Replay to @cl the events of region @region after index @after still in that region's
 * event log, for the player topics in @topics (@n strings, copied), up to the index the live
 * stream had reached when this was called: live events after it come through the
 * subscriptions, so each event reaches the client once. @return 0, LR_EINVAL (unknown region,
 * sentence in @err), LR_EUNAVAILABLE (the router is stopping, or the region's live stream does
 * not know yet where it starts, as just after the router started: resume again shortly) or
 * LR_ENOMEM.
 */
int gateway_client_resume(struct gateway_client *cl, const char *region, uint64_t after,
                          const char *const *topics, size_t n, char *err, size_t errcap);

/**
 * Where each region's live stream stands, as a new JSON object {"<region>": index} (NULL when
 * memory runs out): the events of later entries reach @cl through its subscriptions, those of
 * this entry and earlier ones only through a resume. 0 for a stream that does not know yet
 * where it starts (just after the router started). Sent with `subscribed`, so a client that
 * has had no event from a region yet still knows where to resume it from.
 */
json_t *gateway_client_positions(const struct gateway_client *cl);

/** Resumes of @cl still replaying (started by gateway_client_resume, not yet at their end):
 * what the WebSocket endpoint bounds per connection. */
unsigned gateway_client_replays(const struct gateway_client *cl);

/**
 * Send @msg (borrowed) to every client of board @board_id's topics: the global one and each
 * region's. For what the router itself learns of a board rather than reads from a region's
 * stream: a cycle's close (closer.c).
 */
void gateway_announce(struct gateway *g, const char *board_id, const json_t *msg);

/**
 * Hand every delivery of every region's live stream (events, heartbeats, resyncs) to @fn
 * too, before the gateway's own use of it: how the router's read model (rmodel.h) follows
 * the same streams. @fn may be NULL (none). @data is borrowed.
 */
typedef void (*gateway_listen_fn)(void *data, unsigned region, const struct evstream_batch *b);
void gateway_listen(struct gateway *g, gateway_listen_fn fn, void *data);

/** Counters for /metrics and the bench: monotonic since gateway_new, but the gauges. */
struct gateway_stats {
    uint64_t events;          /* events received from the region streams */
    uint64_t delivered;       /* messages handed to clients (one per receiver) */
    uint64_t reconnects;      /* region streams' connections to a replica, the first ones too */
    uint64_t replays;         /* resume streams started (gateway_client_resume) */
    uint64_t resyncs;         /* region streams that asked for an index the log no longer held */
    uint64_t seeds;           /* board top queries (seeds and re-seeds) */
    unsigned clients, topics; /* gauges */
    unsigned boards;          /* gauge: boards whose top is kept */
};
/** Copy @g's counters into *@st. */
void gateway_stats_get(const struct gateway *g, struct gateway_stats *st);

/** One region's stream, for /metrics. */
struct gateway_stream_stats {
    uint64_t index;    /* the last index it delivered (0 before the first) */
    uint64_t connects; /* its connections to a replica */
    int replica;       /* the replica it is subscribed on (its position in the region's
                          upstream, from 0), or -1 while it is not */
};
/** Region @i's stream (@i < the regions given to gateway_new) into *@st. */
void gateway_stream_stats_get(const struct gateway *g, unsigned i, struct gateway_stream_stats *st);

/** Index of the last event region @i's stream delivered (0 before the first). */
uint64_t gateway_region_index(const struct gateway *g, unsigned i);

#endif
