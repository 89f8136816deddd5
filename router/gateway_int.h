/* router/gateway_int.h — internals of the gateway module, shared by gateway.c (streams,
 * topics, clients, fan-out) and gateway_board.c (the board tops behind
 * `leaderboard.changed`). Nothing outside those two files includes it. */
#ifndef LAUREL_GATEWAY_INT_H
#define LAUREL_GATEWAY_INT_H

#include <msgpack.h>
#include <stdint.h>
#include <uv.h>

#include "../lib/strmap.h"
#include "../shard/valid.h"
#include "evstream.h"
#include "gateway.h"
#include "router.h"

struct gateway_board;   /* gateway_board.c */
struct gateway__replay; /* gateway.c: a client's resume in flight */

/* One topic with at least one client. A board topic holds one reference on its board. */
struct gateway__topic {
    char name[8 + 2 * (VALID_ID_MAX + 1) + 80];
    struct gateway_client **subs;
    size_t n, cap;
    struct gateway_board *board; /* board topics */
    int scope;                   /* board topics: -1 global, else the region */
};

/* A region's live stream. */
struct gateway__follower {
    struct gateway *g;
    unsigned region;
    struct evstream *es;         /* NULL once closed */
    struct evstream_stats final; /* its counters when gateway_close closed it */
};

struct gateway {
    uv_loop_t *loop;
    unsigned nregions;
    char region[ROUTER_MAX_REGIONS][65];
    struct upstream *up[ROUTER_MAX_REGIONS]; /* borrowed, see gateway_region */
    unsigned timeout_ms;
    struct gateway__follower follow[ROUTER_MAX_REGIONS];
    struct gateway__replay *replays; /* resumes in flight (gateway.c) */
    gateway_listen_fn listen;        /* gateway_listen */
    void *listen_data;
    struct strmap topics; /* name -> struct gateway__topic */
    struct strmap boards; /* board id -> struct gateway_board */
    uv_timer_t tick;
    unsigned handles;   /* the tick and the followers, until their close callbacks */
    unsigned pending;   /* upstream calls in flight (board seeds) */
    unsigned board_gen; /* tells boards of one id apart over time */
    int closing;
    void (*done)(void *data);
    void *done_data;
    struct gateway_stats st; /* .reconnects and .boards are filled in by gateway_stats_get */
};

/* ---- gateway.c ---- */

/* Hand @m (borrowed) to every client of @t. */
void gateway__publish(struct gateway *g, struct gateway__topic *t, struct gateway_msg *m);

/* Hand @m (borrowed) to @cl alone. */
void gateway__client_send(struct gateway_client *cl, struct gateway_msg *m);

/* Free @g once it is closing and nothing of it is left on the loop (handles, upstream calls,
 * clients, replays). */
void gateway__maybe_done(struct gateway *g);

/* ---- gateway_board.c ---- */

/* The board @id (@len bytes, a valid id) with one more reference, created and seeded when
 * no topic watched it yet. @return NULL when out of memory. */
struct gateway_board *gateway_board__hold(struct gateway *g, const char *id, size_t len);

/* Drop a reference taken by gateway_board__hold; the last one frees @b (a seed in flight
 * finds it gone and is dropped). */
void gateway_board__release(struct gateway_board *b);

/* Give every kept board a part for region g->nregions, about to be added: its list starts
 * unseeded, so the board's global top waits for it and the tick seeds it. @return 0 or
 * LR_ENOMEM (parts already made stay, and serve when the add is tried again). */
int gateway_board__add_region(struct gateway *g);

/* A client just subscribed to @b's @scope (-1 global, else a region): once the scope's top has
 * been sent and is still current, it gets it alone; otherwise the scope's next flush (the
 * first, or one forced here) sends the current top to every subscriber, it included. */
void gateway_board__greet(struct gateway_board *b, int scope, struct gateway_client *cl);

/* A `score.updated` event @ev of region @region, into the board it names if one is kept. */
void gateway_board__event(struct gateway *g, unsigned region, const msgpack_object *ev);

/* A `player.updated` event @ev of region @region: the player's name in every kept list. */
void gateway_board__player(struct gateway *g, unsigned region, const msgpack_object *ev);

/* Region @region's stream missed events: seed that region of every board again. */
void gateway_board__resync(struct gateway *g, unsigned region);

/* The gateway's tick: retry failed seeds, and flush the changed tops at most every
 * GATEWAY_BOARD__FLUSH_MS. */
void gateway_board__tick(struct gateway *g, uint64_t now);

/* Free every board left (the gateway is being freed). */
void gateway_board__free_all(struct gateway *g);

#endif
