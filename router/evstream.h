/* router/evstream.h — a follower of one region's committed-event stream (docs/rpc.md, "The
 * committed-event stream"): one TCP connection of its own to one replica at a time, carrying
 * one `subscribe`, handing each committed entry's events to a callback in log order, each
 * once, across reconnects and moves to another replica.
 *
 * It knows nothing of what the events mean (topics, boards, read models): the owner decides.
 * Not thread-safe: everything runs on one uv loop. */
#ifndef LAUREL_EVSTREAM_H
#define LAUREL_EVSTREAM_H

#include <msgpack.h>
#include <stdint.h>
#include <uv.h>

#include "upstream.h"

struct evstream; /* Opaque. */

/** What the callback is told. */
enum evstream_what {
    /* One committed entry's events: @index and @events are set. */
    EVSTREAM_EVENTS = 1,
    /* The replica's log no longer holds the next index (it was trimmed): events were missed,
     * and whatever the owner derived from them may be stale. @index is the first index the
     * replica still serves (its answer's first_index; 0 if it named none): the entries from
     * the one after the last delivered up to just before it are the ones whose events may be
     * lost. A live stream goes on from the present (the replica's applied index + 1), because
     * an owner rebuilds from the current state, not from the oldest events left; a bounded one
     * ends (EVSTREAM_END follows). */
    EVSTREAM_RESYNC,
    /* A bounded stream is done: it delivered its stop index, or cannot. Nothing fires after
     * this but evstream_close's @done. */
    EVSTREAM_END,
    /* Only with evstream_config.applied: the replica says every entry up to @index is applied
     * and its events, if any, were delivered (its `applied` heartbeat), so an owner that
     * waits for an index learns it even when the entries at it had no events. */
    EVSTREAM_APPLIED,
};

/** One delivery; everything in it is borrowed for the duration of the callback. */
struct evstream_batch {
    enum evstream_what what;
    uint64_t index;               /* EVSTREAM_EVENTS: the entry's log index; EVSTREAM_APPLIED:
                                     the heartbeat's; EVSTREAM_RESYNC: the first index the
                                     replica still serves, or 0; else 0 */
    const msgpack_object *events; /* EVSTREAM_EVENTS: the entry's events as the replica sent
                                     them, an array (API.md's event maps); else NULL */
};

/**
 * Called on the loop for each delivery, never from inside evstream_new or evstream_close and
 * never after evstream_close was called. The callee may call evstream_close on this stream.
 */
typedef void (*evstream_cb)(void *data, const struct evstream_batch *b);

struct evstream_config {
    /* The first index to deliver. 0: the present, i.e. the index after the first replica's
     * applied index (asked with `status`), so a new follower does not replay the past. */
    uint64_t from;
    /* The last index to deliver, then EVSTREAM_END; 0: follow until evstream_close. */
    uint64_t stop;
    /* The replica to try first: an index into the upstream's list. */
    unsigned replica;
    /* Deadline of the `status` call that learns the present. */
    unsigned timeout_ms;
    /* 1: deliver the replica's heartbeats as EVSTREAM_APPLIED. */
    int applied;
    /* 1: follow the replica the upstream believes leads (upstream_leader), moving to it
     * within a tick when it changes (no pause, resuming after the last index delivered). */
    int leader;
};

/**
 * Follow the stream of the region that @u links to: connect to the replica at
 * upstream_address(@u, i) and subscribe from @cfg->from. On any failure (an error answer,
 * EOF, no byte for 5 s while heartbeats come every second) the connection is dropped and the
 * next replica tried 200 ms later, resuming after the last index delivered; an index already
 * delivered is never delivered again.
 *
 * @u is borrowed: it must stay open until evstream_close is called (the stream calls it no
 * more after that; a `status` call in flight is waited for, which upstream_close answers).
 * @cfg is copied. @cb fires as described at evstream_cb.
 *
 * @return 0 and *@out; LR_EINVAL (a @cfg->replica past the upstream's list, or a bounded
 * stream with @cfg->from 0 or past @cfg->stop); LR_ENOMEM. On error @cb never fires.
 */
int evstream_new(uv_loop_t *loop, struct upstream *u, const struct evstream_config *cfg,
                 evstream_cb cb, void *data, struct evstream **out);

/**
 * Stop following and free @s once its handles have closed and its `status` call (if any) has
 * been answered: then @done (may be NULL) fires, never from inside this call. Call once.
 */
void evstream_close(struct evstream *s, void (*done)(void *data), void *data);

/** Counters and state, for /metrics and for the owner. */
struct evstream_stats {
    uint64_t index;    /* the last index delivered (0 before the first) */
    uint64_t position; /* every entry up to it was delivered or had no events: later ones
                          will be; 0 while a live stream does not know where it stands (before
                          its first status answer, or after a resync) */
    uint64_t connects; /* connections made to a replica, the first one too */
    int subscribed;    /* the replica it is subscribed on now, or -1 while it is not */
    unsigned replica;  /* the replica it is on, connecting to, or will try next */
};

/** Copy @s's counters into *@st. */
void evstream_stats_get(const struct evstream *s, struct evstream_stats *st);

#endif
