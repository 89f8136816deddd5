/* router/gateway.c — stream followers, topic map, fan-out and board tops (see gateway.h).
 *
 * Streams. Each region has one follower: a TCP connection of its own to one replica (any
 * replica serves the committed-event stream, docs/rpc.md) carrying one `subscribe`. The first
 * start asks that replica's status for its applied index and subscribes from the next one, so
 * a router does not replay the past to its clients; later starts resume after the last index
 * received. Any failure (error answer, EOF, no byte for GW__DEAD_MS: heartbeats come every
 * second) closes the connection and tries the next replica after GW__RETRY_MS. A client's
 * resume is the same machine with a stop index: a replay stream that ends where the follower
 * stood when the client subscribed.
 *
 * Fan-out. Topics live in one map, each with the array of its clients; a client holds the
 * positions of its memberships, so leaving a topic of 10 000 clients is O(1). An event's JSON
 * is encoded once, only when its topic has a client, into one refcounted message.
 *
 * Board tops. A board topic makes the gateway watch its board: per region it keeps that
 * region's top GW__KEEP entries of the alltime window, seeded by one top query and then kept
 * from `score.updated` events (which carry score, subscore and updated_at: the whole key of
 * docs/ordering.md). An entry that falls out of the kept window is dropped; only when a list
 * that is not the region's whole board shrinks below GW__TOP does the gateway query again.
 * Events that arrive while a seed is in flight are held and applied after it, in order: the
 * seed (a leader read) already holds every event received before it was sent, and replaying
 * later ones on top is idempotent per player, so the list converges to the region's top.
 * The global top is the merge of the regions' lists. Every GW__FLUSH_MS the tops of changed
 * boards are compared with what was last sent and a `leaderboard.changed` goes out only when
 * they differ: coalesced to one per board and scope per tick. */
#include "gateway.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../proto/mpjson.h"
#include "../proto/proto.h"
#include "../lib/addr.h"
#include "../lib/err.h"
#include "../lib/strmap.h"
#include "../shard/timefmt.h"
#include "../shard/valid.h"
#include "router_int.h"

#define GW__TICK_MS 100      /* streams' state machine and the board flush */
#define GW__FLUSH_MS 100     /* at most one leaderboard.changed per board and scope per this */
#define GW__RETRY_MS 200     /* before trying the next replica */
#define GW__DEAD_MS 5000     /* a stream silent this long is dead (heartbeats: 1 s) */
#define GW__REPLAY_MAX_MS 30000 /* a replay that has not finished by then gives up */
#define GW__TOP 10           /* entries of a leaderboard.changed */
#define GW__KEEP 32          /* entries kept per region: GW__TOP plus slack before a re-seed */
#define GW__SEED_RETRY_MS 1000
#define GW__CLIENT_TOPICS 1024 /* topics one client may hold */

/* ---- messages ------------------------------------------------------------------------------ */

void gateway_msg_ref(struct gateway_msg *m) { m->refs++; }

void gateway_msg_unref(struct gateway_msg *m)
{
    assert(m->refs > 0);
    if (--m->refs == 0) {
        free(m);
    }
}

/* Encode @j once into a new message (one reference, the caller's). NULL when out of memory. */
static struct gateway_msg *gw__msg_json(const json_t *j)
{
    size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
    if (n == 0) {
        return NULL;
    }
    struct gateway_msg *m = malloc(sizeof *m + GATEWAY_MSG_PRE + n);
    if (m == NULL) {
        return NULL;
    }
    if (json_dumpb(j, (char *)m->data + GATEWAY_MSG_PRE, n, JSON_COMPACT) != n) {
        free(m);
        return NULL;
    }
    m->refs = 1;
    m->len = n;
    return m;
}

/* ---- objects ------------------------------------------------------------------------------- */

enum gw__sstate { GS_IDLE, GS_STATUS, GS_CONNECTING, GS_OPEN, GS_CLOSING };

struct gw_stream {
    struct gateway *g;
    unsigned region;
    struct gateway_client *cl; /* replay: the client (NULL once it left); follower: NULL */
    int replay;
    char **topics; /* replay: the player topics it delivers (owned) */
    size_t ntopics;
    uint64_t stop;   /* replay: the last index it delivers */
    uint64_t next;   /* the index to subscribe from; 0: learn it from the replica's status */
    uint64_t last;   /* the last index delivered */
    unsigned replica;
    enum gw__sstate state;
    int finished;    /* replay: done, free once closed */
    uint64_t retry_at, last_rx, started;
    uint64_t connects; /* connections made (follower: for /metrics) */
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    struct proto_reader rd;
    msgpack_sbuffer out;
    struct gw_stream *next_replay, *prev_replay; /* g->replays */
};

struct gw_entry {
    int64_t a, b, t; /* the rank key (docs/ordering.md): order-adjusted score, subscore, time */
    int64_t score, subscore;
    uint8_t idlen;
    uint8_t region;
    char id[VALID_ID_MAX + 1];
};

enum gw__lstate { GL_NONE, GL_SEEDING, GL_READY };

/* One region's top of one board. */
struct gw_rlist {
    struct gw_entry v[GW__KEEP + 1];
    unsigned n;
    int complete; /* the list is the region's whole board */
    enum gw__lstate state;
    struct gw_entry *held; /* events received while seeding (owned) */
    size_t nheld, capheld;
};

struct gw_top {
    struct gw_entry v[GW__TOP];
    unsigned n;
};

struct gw_board {
    struct gateway *g;
    char id[VALID_ID_MAX + 1];
    unsigned refs;  /* topics that watch it */
    unsigned gen;   /* tells a seed's answer whether it is still wanted */
    int desc;
    int order_known, order_asking;
    uint64_t retry_at;
    int dirty;
    int flushed; /* the tops below were sent once: what every subscriber holds */
    uint64_t flushed_at;
    struct gw_top sent_global;
    struct gw_top *sent_region; /* [nregions] */
    uint8_t *dirty_region;      /* [nregions] */
    struct gw_rlist r[];        /* [nregions] */
};

struct gw_member {
    struct gw_topic *t;
    size_t pos; /* index of the client in t->subs */
};

struct gw_topic {
    char name[8 + 2 * (VALID_ID_MAX + 1) + 80];
    struct gateway_client **subs;
    size_t n, cap;
    struct gw_board *board; /* board topics */
    int scope;              /* board topics: -1 global, else the region */
};

struct gateway_client {
    struct gateway *g;
    gateway_send_fn send;
    void *data;
    struct gw_member *mem;
    size_t nmem, capmem;
};

struct gateway {
    uv_loop_t *loop;
    unsigned nregions;
    char region[ROUTER_MAX_REGIONS][65];
    struct upstream *up[ROUTER_MAX_REGIONS];
    unsigned timeout_ms;
    struct gw_stream follow[ROUTER_MAX_REGIONS];
    struct gw_stream *replays;
    struct strmap topics; /* name -> struct gw_topic */
    struct strmap boards; /* board id -> struct gw_board */
    uv_timer_t tick;
    unsigned handles; /* open uv handles */
    unsigned pending; /* upstream calls in flight */
    unsigned board_gen; /* tells boards of one id apart over time */
    int closing;
    void (*done)(void *data);
    void *done_data;
    struct gateway_stats st;
    char rbuf[64 * 1024];
};

static void gw__seed(struct gw_board *b);
static void gw__seed_region(struct gw_board *b, unsigned region);

static uint64_t gw__now(const struct gateway *g) { return uv_now(g->loop); }

static int gw__region_index(const struct gateway *g, const char *id)
{
    for (unsigned i = 0; i < g->nregions; i++) {
        if (strcmp(g->region[i], id) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* ---- closing ------------------------------------------------------------------------------- */

static void gw__board_free(struct gw_board *b)
{
    for (unsigned i = 0; i < b->g->nregions; i++) {
        free(b->r[i].held);
    }
    free(b->sent_region);
    free(b->dirty_region);
    free(b);
}

/* Free @g once nothing of it is left on the loop. */
static void gw__maybe_done(struct gateway *g)
{
    if (!g->closing || g->handles > 0 || g->pending > 0 || g->st.clients > 0) {
        return;
    }
    size_t pos = 0;
    struct strmap_slot *sl;
    while ((sl = strmap_next(&g->topics, &pos)) != NULL) {
        struct gw_topic *t = sl->val;
        free(t->subs);
        free(t);
    }
    pos = 0;
    while ((sl = strmap_next(&g->boards, &pos)) != NULL) {
        gw__board_free(sl->val);
    }
    strmap_free(&g->topics);
    strmap_free(&g->boards);
    for (unsigned i = 0; i < g->nregions; i++) {
        proto_reader_free(&g->follow[i].rd);
        msgpack_sbuffer_destroy(&g->follow[i].out);
    }
    void (*done)(void *) = g->done;
    void *dd = g->done_data;
    free(g);
    if (done) {
        done(dd);
    }
}

/* ---- replays bookkeeping ------------------------------------------------------------------- */

static void gw__replay_unlink(struct gw_stream *s)
{
    struct gateway *g = s->g;
    if (s->prev_replay) {
        s->prev_replay->next_replay = s->next_replay;
    } else if (g->replays == s) {
        g->replays = s->next_replay;
    }
    if (s->next_replay) {
        s->next_replay->prev_replay = s->prev_replay;
    }
    s->next_replay = s->prev_replay = NULL;
}

static void gw__replay_free(struct gw_stream *s)
{
    for (size_t i = 0; i < s->ntopics; i++) {
        free(s->topics[i]);
    }
    free(s->topics);
    proto_reader_free(&s->rd);
    msgpack_sbuffer_destroy(&s->out);
    free(s);
}

/* ---- streams -------------------------------------------------------------------------------- */

static void gw__stream_closed(uv_handle_t *h)
{
    struct gw_stream *s = h->data;
    struct gateway *g = s->g;
    g->handles--;
    proto_reader_free(&s->rd);
    proto_reader_init(&s->rd);
    s->state = GS_IDLE;
    if (s->replay && (s->finished || g->closing)) {
        gw__replay_unlink(s);
        gw__replay_free(s);
    } else if (!g->closing) { /* while closing, the upstreams may be gone already */
        s->replica = (s->replica + 1) % upstream_replicas(g->up[s->region]);
        s->retry_at = gw__now(g) + GW__RETRY_MS;
    }
    gw__maybe_done(g);
}

/* Drop the connection (if any); the stream starts again on a later tick unless finished. */
static void gw__stream_fail(struct gw_stream *s)
{
    if (s->state == GS_CONNECTING || s->state == GS_OPEN) {
        uv_read_stop((uv_stream_t *)&s->tcp);
        s->state = GS_CLOSING;
        uv_close((uv_handle_t *)&s->tcp, gw__stream_closed);
    } else if (s->state == GS_IDLE && s->replay && (s->finished || s->g->closing)) {
        gw__replay_unlink(s);
        gw__replay_free(s);
    }
}

static void gw__replay_finish(struct gw_stream *s)
{
    s->finished = 1;
    gw__stream_fail(s);
}

static void gw__send_error(struct gateway_client *cl, int code, const char *msg)
{
    json_t *j = json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "code",
                          err_api_code(code), "message", msg);
    struct gateway_msg *m = j ? gw__msg_json(j) : NULL;
    json_decref(j);
    if (m) {
        cl->send(cl->data, m);
        gateway_msg_unref(m);
    }
}

/* The topic an event goes to ("player:<id>"), in @out; 0, or -1 for an event of no topic. */
static int gw__player_topic(const msgpack_object *ev, char *out, size_t cap)
{
    const msgpack_object *type = proto_map_get(ev, "type");
    const msgpack_object *pid = proto_map_get(ev, "player_id");
    if (type == NULL || type->type != MSGPACK_OBJECT_STR || pid == NULL ||
        pid->type != MSGPACK_OBJECT_STR || pid->via.str.size > VALID_ID_MAX) {
        return -1;
    }
    snprintf(out, cap, "player:%.*s", (int)pid->via.str.size, pid->via.str.ptr);
    return 0;
}

static void gw__publish(struct gateway *g, struct gw_topic *t, struct gateway_msg *m)
{
    for (size_t i = 0; i < t->n; i++) {
        t->subs[i]->send(t->subs[i]->data, m);
    }
    g->st.delivered += t->n;
}

static int gw__key_cmp(const struct gw_entry *x, const struct gw_entry *y)
{
    struct rankkey kx = {x->a, x->b, x->t, RANKKEY_FOREIGN, x->idlen, NULL};
    struct rankkey ky = {y->a, y->b, y->t, RANKKEY_FOREIGN, y->idlen, NULL};
    return rankkey_cmp(&kx, x->id, &ky, y->id);
}

/* An entry from a top page's entry or a score.updated event (same field names). */
static int gw__entry_of(const msgpack_object *o, int desc, unsigned region, struct gw_entry *e)
{
    struct router__entry re;
    if (router__entry_key(o, desc, &re) != 0) {
        return -1;
    }
    e->a = re.key.a;
    e->b = re.key.b;
    e->t = re.key.t;
    e->score = rankkey_score(&re.key, desc);
    e->subscore = rankkey_subscore(&re.key, desc);
    e->idlen = (uint8_t)re.key.idlen;
    e->region = (uint8_t)region;
    memcpy(e->id, re.id, re.key.idlen + 1);
    return 0;
}

/* Apply one stored entry to a region's list: 1 when the list changed. */
static int gw__rlist_apply(struct gw_board *b, unsigned region, const struct gw_entry *e)
{
    struct gw_rlist *l = &b->r[region];
    int found = -1, changed = 0;
    for (unsigned i = 0; i < l->n; i++) {
        if (l->v[i].idlen == e->idlen && memcmp(l->v[i].id, e->id, e->idlen) == 0) {
            found = (int)i;
            break;
        }
    }
    if (found >= 0) {
        memmove(&l->v[found], &l->v[found + 1], (l->n - (unsigned)found - 1) * sizeof l->v[0]);
        l->n--;
        changed = 1;
    }
    /* An entry below the last kept one may still have others between it and the window: it
     * only belongs when the list is the region's whole board. */
    if (l->complete || (l->n > 0 && gw__key_cmp(e, &l->v[l->n - 1]) < 0)) {
        unsigned at = l->n;
        while (at > 0 && gw__key_cmp(e, &l->v[at - 1]) < 0) {
            at--;
        }
        memmove(&l->v[at + 1], &l->v[at], (l->n - at) * sizeof l->v[0]);
        l->v[at] = *e;
        l->n++;
        if (l->n > GW__KEEP) {
            l->n = GW__KEEP;
            l->complete = 0;
        }
        changed = 1;
    } else if (found >= 0 && l->n < GW__TOP) {
        gw__seed_region(b, region); /* the window lost an entry it cannot replace */
    }
    return changed;
}

static void gw__board_dirty(struct gw_board *b, unsigned region)
{
    b->dirty = 1;
    b->dirty_region[region] = 1;
}

static void gw__board_event(struct gateway *g, unsigned region, const msgpack_object *ev)
{
    const msgpack_object *bid = proto_map_get(ev, "board_id");
    if (bid == NULL || bid->type != MSGPACK_OBJECT_STR) {
        return;
    }
    struct gw_board *b = strmap_get(&g->boards, bid->via.str.ptr, bid->via.str.size);
    if (b == NULL) {
        return;
    }
    struct gw_rlist *l = &b->r[region];
    struct gw_entry e;
    if (!b->order_known) {
        return; /* not seeded yet: the seed will hold it */
    }
    if (gw__entry_of(ev, b->desc, region, &e) != 0) {
        return;
    }
    if (l->state == GL_SEEDING) {
        if (l->nheld == l->capheld) {
            size_t cap = l->capheld ? l->capheld * 2 : 16;
            struct gw_entry *nv = realloc(l->held, cap * sizeof *nv);
            if (nv == NULL) {
                l->state = GL_NONE; /* re-seed later rather than lose an event */
                return;
            }
            l->held = nv;
            l->capheld = cap;
        }
        l->held[l->nheld++] = e;
        return;
    }
    if (l->state == GL_READY && gw__rlist_apply(b, region, &e)) {
        gw__board_dirty(b, region);
    }
}

/* One event of a follower: to the player's topic, and into the board tops. */
static void gw__dispatch(struct gateway *g, unsigned region, const msgpack_object *ev)
{
    char name[sizeof ((struct gw_topic *)0)->name];
    const msgpack_object *type = proto_map_get(ev, "type");
    g->st.events++;
    if (gw__player_topic(ev, name, sizeof name) == 0) {
        struct gw_topic *t = strmap_get(&g->topics, name, strlen(name));
        if (t && t->n > 0) {
            json_t *j = mpjson_from(ev);
            struct gateway_msg *m = j ? gw__msg_json(j) : NULL;
            json_decref(j);
            if (m) {
                gw__publish(g, t, m);
                gateway_msg_unref(m);
            }
        }
    }
    if (type && type->type == MSGPACK_OBJECT_STR && type->via.str.size == 13 &&
        memcmp(type->via.str.ptr, "score.updated", 13) == 0) {
        gw__board_event(g, region, ev);
    }
}

/* One event of a replay: to its client, when its player topic is one the replay covers. */
static void gw__replay_event(struct gw_stream *s, const msgpack_object *ev)
{
    char name[sizeof ((struct gw_topic *)0)->name];
    if (s->cl == NULL || gw__player_topic(ev, name, sizeof name) != 0) {
        return;
    }
    for (size_t i = 0; i < s->ntopics; i++) {
        if (strcmp(s->topics[i], name) == 0) {
            json_t *j = mpjson_from(ev);
            struct gateway_msg *m = j ? gw__msg_json(j) : NULL;
            json_decref(j);
            if (m) {
                s->cl->send(s->cl->data, m);
                gateway_msg_unref(m);
                s->g->st.delivered++;
            }
            return;
        }
    }
}

/* A follower asked for an index the log no longer holds: start again from now, and re-seed
 * the boards of that region, whose lists may have missed updates. */
static void gw__resync(struct gw_stream *s)
{
    struct gateway *g = s->g;
    size_t pos = 0;
    struct strmap_slot *sl;
    s->next = 0;
    while ((sl = strmap_next(&g->boards, &pos)) != NULL) {
        gw__seed_region(sl->val, s->region);
    }
}

/* One frame of a stream: 0, or -1 when the stream must close. */
static int gw__frame(struct gw_stream *s, const char *p, size_t n)
{
    msgpack_unpacked up;
    struct proto_msg m;
    int rv = -1;
    msgpack_unpacked_init(&up);
    if (proto_unpack(p, n, &up) != 0 || proto_msg_decode(&up.data, &m) != 0) {
        goto out;
    }
    if (m.op_or_code != 0) {
        if (m.op_or_code == LR_ENOTFOUND) {
            if (s->replay) {
                if (s->cl) {
                    gw__send_error(s->cl, LR_ENOTFOUND,
                                   "resume: the region's event log no longer holds that index; "
                                   "read the current state instead");
                }
                s->finished = 1;
            } else {
                s->g->st.resyncs++;
                gw__resync(s);
            }
        }
        goto out;
    }
    const msgpack_object *ap = proto_map_get(m.body, "applied");
    int64_t idx;
    if (ap != NULL) {
        if (proto_obj_i64(ap, &idx) == 0 && s->replay && (uint64_t)idx >= s->stop) {
            s->finished = 1;
            goto out;
        }
        rv = 0;
        goto out;
    }
    const msgpack_object *evs = proto_map_get(m.body, "events");
    if (proto_obj_i64(proto_map_get(m.body, "index"), &idx) != 0 || idx < 1 || evs == NULL ||
        evs->type != MSGPACK_OBJECT_ARRAY) {
        goto out;
    }
    if ((uint64_t)idx < s->next) {
        rv = 0; /* already delivered: never twice */
        goto out;
    }
    if (s->replay && (uint64_t)idx > s->stop) {
        s->finished = 1;
        goto out;
    }
    for (uint32_t i = 0; i < evs->via.array.size; i++) {
        if (evs->via.array.ptr[i].type != MSGPACK_OBJECT_MAP) {
            continue;
        }
        if (s->replay) {
            gw__replay_event(s, &evs->via.array.ptr[i]);
        } else {
            gw__dispatch(s->g, s->region, &evs->via.array.ptr[i]);
        }
    }
    s->last = (uint64_t)idx;
    s->next = (uint64_t)idx + 1;
    if (s->replay && s->last >= s->stop) {
        s->finished = 1;
        goto out;
    }
    rv = 0;
out:
    msgpack_unpacked_destroy(&up);
    return rv;
}

static void gw__alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct gw_stream *s = h->data;
    (void)hint;
    /* One buffer for every stream: each read is consumed before the next one. */
    buf->base = s->g->rbuf;
    buf->len = sizeof s->g->rbuf;
}

static void gw__read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct gw_stream *s = st->data;
    const char *p;
    size_t n;
    int got;
    if (nread == 0) {
        return;
    }
    if (nread < 0 || proto_reader_feed(&s->rd, buf->base, (size_t)nread) != 0) {
        gw__stream_fail(s);
        return;
    }
    s->last_rx = gw__now(s->g);
    while ((got = proto_reader_next(&s->rd, &p, &n)) == 1) {
        if (gw__frame(s, p, n) != 0) {
            gw__stream_fail(s);
            return;
        }
    }
    if (got != 0) {
        gw__stream_fail(s);
    }
}

static void gw__written(uv_write_t *w, int status)
{
    struct gw_stream *s = w->data;
    msgpack_sbuffer_clear(&s->out);
    if (status < 0 && s->state == GS_OPEN) {
        gw__stream_fail(s);
    }
}

static void gw__connected(uv_connect_t *c, int status)
{
    struct gw_stream *s = c->data;
    msgpack_packer pk;
    size_t mark;
    if (status < 0 || s->state != GS_CONNECTING) {
        if (s->state == GS_CONNECTING) {
            gw__stream_fail(s);
        }
        return;
    }
    s->state = GS_OPEN;
    s->last_rx = gw__now(s->g);
    s->connects++;
    if (!s->replay) {
        s->g->st.reconnects++;
    }
    msgpack_sbuffer_clear(&s->out);
    proto_frame_begin(&s->out, &mark);
    msgpack_packer_init(&pk, &s->out, msgpack_sbuffer_write);
    proto_msg_begin(&pk, 1, PROTO_OP_SUBSCRIBE);
    msgpack_pack_map(&pk, 1);
    proto_pack_key(&pk, "from");
    msgpack_pack_uint64(&pk, s->next);
    proto_frame_end(&s->out, mark);
    uv_buf_t b = uv_buf_init(s->out.data, (unsigned)s->out.size);
    s->wreq.data = s;
    if (uv_write(&s->wreq, (uv_stream_t *)&s->tcp, &b, 1, gw__written) != 0 ||
        uv_read_start((uv_stream_t *)&s->tcp, gw__alloc, gw__read) != 0) {
        gw__stream_fail(s);
    }
}

static void gw__connect(struct gw_stream *s)
{
    struct gateway *g = s->g;
    const char *addr = upstream_address(g->up[s->region], s->replica);
    struct sockaddr_storage sa;
    socklen_t salen;
    if (addr_resolve(addr, 0, &sa, &salen) != 0 || uv_tcp_init(g->loop, &s->tcp) != 0) {
        s->retry_at = gw__now(g) + GW__RETRY_MS;
        return;
    }
    g->handles++;
    s->tcp.data = s;
    s->creq.data = s;
    s->state = GS_CONNECTING;
    s->last_rx = gw__now(g);
    uv_tcp_nodelay(&s->tcp, 1);
    if (uv_tcp_connect(&s->creq, &s->tcp, (const struct sockaddr *)&sa, gw__connected) != 0) {
        gw__stream_fail(s);
    }
}

static void gw__status_cb(void *data, int code, const msgpack_object *payload)
{
    struct gw_stream *s = data;
    struct gateway *g = s->g;
    int64_t applied;
    g->pending--;
    if (g->closing) {
        gw__maybe_done(g);
        return;
    }
    s->state = GS_IDLE;
    if (code != 0 || proto_obj_i64(proto_map_get(payload, "applied_index"), &applied) != 0) {
        s->replica = (s->replica + 1) % upstream_replicas(g->up[s->region]);
        s->retry_at = gw__now(g) + GW__RETRY_MS;
        return;
    }
    s->next = (uint64_t)applied + 1;
    gw__connect(s);
}

/* Start a stream that is idle and due. */
static void gw__stream_start(struct gw_stream *s)
{
    struct gateway *g = s->g;
    if (s->next != 0) {
        gw__connect(s);
        return;
    }
    s->state = GS_STATUS;
    g->pending++;
    if (upstream_call_replica(g->up[s->region], (int)s->replica, PROTO_OP_STATUS, 0, NULL, 0,
                              g->timeout_ms, gw__status_cb, s) != 0) {
        g->pending--;
        s->state = GS_IDLE;
        s->retry_at = gw__now(g) + GW__RETRY_MS;
    }
}

static void gw__stream_tick(struct gw_stream *s, uint64_t now)
{
    if (s->replay && (s->finished || now - s->started > GW__REPLAY_MAX_MS)) {
        gw__replay_finish(s); /* frees it now or once closed */
        return;
    }
    if (s->state == GS_IDLE && now >= s->retry_at) {
        gw__stream_start(s);
    } else if ((s->state == GS_OPEN || s->state == GS_CONNECTING) &&
               now - s->last_rx > GW__DEAD_MS) {
        gw__stream_fail(s);
    }
}

/* ---- board tops ------------------------------------------------------------------------------- */

struct gw_seed {
    struct gateway *g;
    char id[VALID_ID_MAX + 1];
    unsigned gen;
    int region; /* -1: the board's order */
};

static struct gw_board *gw__seed_board(struct gw_seed *sd)
{
    struct gw_board *b = strmap_get(&sd->g->boards, sd->id, strlen(sd->id));
    return b && b->gen == sd->gen ? b : NULL;
}

static void gw__seeded(void *data, int code, const msgpack_object *payload)
{
    struct gw_seed *sd = data;
    struct gateway *g = sd->g;
    struct gw_board *b = g->closing ? NULL : gw__seed_board(sd);
    g->pending--;
    if (b == NULL) {
        free(sd);
        gw__maybe_done(g);
        return;
    }
    if (sd->region < 0) {
        b->order_asking = 0;
        const msgpack_object *ord = code == 0 ? proto_map_get(payload, "order") : NULL;
        if (ord == NULL || ord->type != MSGPACK_OBJECT_STR) {
            b->retry_at = gw__now(g) + GW__SEED_RETRY_MS; /* no such board yet, or no leader */
        } else {
            b->desc = !(ord->via.str.size == 3 && memcmp(ord->via.str.ptr, "asc", 3) == 0);
            b->order_known = 1;
            gw__seed(b);
        }
        free(sd);
        return;
    }
    unsigned r = (unsigned)sd->region;
    struct gw_rlist *l = &b->r[r];
    const msgpack_object *es = code == 0 ? proto_map_get(payload, "entries") : NULL;
    int64_t total = 0;
    free(sd);
    if (es == NULL || es->type != MSGPACK_OBJECT_ARRAY ||
        proto_obj_i64(proto_map_get(payload, "total"), &total) != 0) {
        l->state = GL_NONE; /* the tick seeds it again */
        l->nheld = 0;
        b->retry_at = gw__now(g) + GW__SEED_RETRY_MS;
        return;
    }
    l->n = 0;
    for (uint32_t i = 0; i < es->via.array.size && l->n < GW__KEEP; i++) {
        if (gw__entry_of(&es->via.array.ptr[i], b->desc, r, &l->v[l->n]) == 0) {
            l->n++;
        }
    }
    l->complete = (uint64_t)total <= l->n;
    l->state = GL_READY;
    for (size_t i = 0; i < l->nheld; i++) {
        gw__rlist_apply(b, r, &l->held[i]);
    }
    l->nheld = 0;
    gw__board_dirty(b, r);
}

/* Ask for region @region's top of @b (the order must be known). */
static void gw__seed_region(struct gw_board *b, unsigned region)
{
    struct gateway *g = b->g;
    struct gw_rlist *l = &b->r[region];
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct shard_query sq;
    struct timespec ts;
    if (!b->order_known || l->state == GL_SEEDING || g->closing) {
        return; /* closing: the upstreams may be gone */
    }
    struct gw_seed *sd = malloc(sizeof *sd);
    if (sd == NULL) {
        l->state = GL_NONE;
        return;
    }
    sd->g = g;
    memcpy(sd->id, b->id, sizeof sd->id);
    sd->gen = b->gen;
    sd->region = (int)region;
    clock_gettime(CLOCK_REALTIME, &ts);
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_TOP;
    sq.board_id = lr_str_of(b->id);
    sq.window = TIMEFMT_ALLTIME;
    sq.limit = GW__KEEP;
    sq.now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_query_encode(&pk, &sq, 0);
    l->state = GL_SEEDING;
    l->nheld = 0;
    g->pending++;
    g->st.seeds++;
    if (upstream_call(g->up[region], PROTO_OP_QUERY, 1, sb.data, sb.size, g->timeout_ms,
                      gw__seeded, sd) != 0) {
        g->pending--;
        l->state = GL_NONE;
        free(sd);
    }
    msgpack_sbuffer_destroy(&sb);
}

/* Learn the board's order, then seed every region that is not. */
static void gw__seed(struct gw_board *b)
{
    struct gateway *g = b->g;
    if (g->closing) {
        return; /* the upstreams may be gone */
    }
    if (!b->order_known) {
        if (b->order_asking) {
            return;
        }
        msgpack_sbuffer sb;
        msgpack_packer pk;
        struct shard_query sq;
        struct gw_seed *sd = malloc(sizeof *sd);
        if (sd == NULL) {
            return;
        }
        sd->g = g;
        memcpy(sd->id, b->id, sizeof sd->id);
        sd->gen = b->gen;
        sd->region = -1;
        memset(&sq, 0, sizeof sq);
        sq.type = SHARD_Q_BOARD_GET;
        sq.board_id = lr_str_of(b->id);
        sq.now_ms = 1;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        proto_query_encode(&pk, &sq, 0);
        b->order_asking = 1;
        g->pending++;
        if (upstream_call(g->up[0], PROTO_OP_QUERY, 1, sb.data, sb.size, g->timeout_ms,
                          gw__seeded, sd) != 0) {
            g->pending--;
            b->order_asking = 0;
            free(sd);
        }
        msgpack_sbuffer_destroy(&sb);
        return;
    }
    for (unsigned i = 0; i < g->nregions; i++) {
        if (b->r[i].state == GL_NONE) {
            gw__seed_region(b, i);
        }
    }
}

/* The first GW__TOP of the merge of @lists regions' lists (all when @only < 0). */
static void gw__top(const struct gw_board *b, int only, struct gw_top *out)
{
    unsigned at[ROUTER_MAX_REGIONS] = {0};
    out->n = 0;
    while (out->n < GW__TOP) {
        int best = -1;
        for (unsigned i = 0; i < b->g->nregions; i++) {
            if ((only >= 0 && (int)i != only) || at[i] >= b->r[i].n) {
                continue;
            }
            if (best < 0 || gw__key_cmp(&b->r[i].v[at[i]], &b->r[best].v[at[best]]) < 0) {
                best = (int)i;
            }
        }
        if (best < 0) {
            break;
        }
        out->v[out->n++] = b->r[best].v[at[best]++];
    }
}

static int gw__top_same(const struct gw_top *x, const struct gw_top *y)
{
    if (x->n != y->n) {
        return 0;
    }
    for (unsigned i = 0; i < x->n; i++) {
        if (gw__key_cmp(&x->v[i], &y->v[i]) != 0) {
            return 0;
        }
    }
    return 1;
}

/* Send @top of @b's @scope to the topic's clients, or to @only. */
static void gw__send_top(struct gateway *g, struct gw_board *b, int scope, const struct gw_top *top,
                         struct gateway_client *only)
{
    char name[sizeof ((struct gw_topic *)0)->name], sc[80];
    if (scope < 0) {
        snprintf(name, sizeof name, "board:%s", b->id);
        snprintf(sc, sizeof sc, "global");
    } else {
        snprintf(name, sizeof name, "board:%s:region:%s", b->id, g->region[scope]);
        snprintf(sc, sizeof sc, "region:%s", g->region[scope]);
    }
    struct gw_topic *t = strmap_get(&g->topics, name, strlen(name));
    if (only == NULL && (t == NULL || t->n == 0)) {
        return;
    }
    json_t *arr = json_array();
    for (unsigned i = 0; arr && i < top->n; i++) {
        char at[40];
        const struct gw_entry *e = &top->v[i];
        timefmt_rfc3339(e->t, at);
        json_array_append_new(arr, json_pack("{s:I,s:s#,s:I,s:I,s:s,s:s}", "rank",
                                             (json_int_t)(i + 1), "player_id", e->id,
                                             (int)e->idlen, "score", (json_int_t)e->score,
                                             "subscore", (json_int_t)e->subscore,
                                             "updated_at", at, "region", g->region[e->region]));
    }
    json_t *j = arr ? json_pack("{s:s,s:s,s:s,s:o}", "type", "leaderboard.changed", "board_id",
                                b->id, "scope", sc, "top", arr)
                    : NULL;
    struct gateway_msg *m = j ? gw__msg_json(j) : NULL;
    json_decref(j);
    if (m && only) {
        only->send(only->data, m);
        g->st.delivered++;
    } else if (m) {
        gw__publish(g, t, m);
    }
    if (m) {
        gateway_msg_unref(m);
    }
}

/* Send what changed in @b's tops since the last flush. */
static void gw__board_flush(struct gateway *g, struct gw_board *b)
{
    struct gw_top top;
    for (unsigned i = 0; i < g->nregions; i++) {
        if (b->r[i].state != GL_READY) {
            return; /* a global top needs every region: wait for the seeds */
        }
    }
    /* The first flush sends even an empty top: the subscribers so far got none. */
    gw__top(b, -1, &top);
    if (!b->flushed || !gw__top_same(&top, &b->sent_global)) {
        b->sent_global = top;
        gw__send_top(g, b, -1, &top, NULL);
    }
    for (unsigned i = 0; i < g->nregions; i++) {
        if (!b->flushed || b->dirty_region[i]) {
            b->dirty_region[i] = 0;
            gw__top(b, (int)i, &top);
            if (!b->flushed || !gw__top_same(&top, &b->sent_region[i])) {
                b->sent_region[i] = top;
                gw__send_top(g, b, (int)i, &top, NULL);
            }
        }
    }
    b->dirty = 0;
    b->flushed = 1;
}

static void gw__tick(uv_timer_t *t)
{
    struct gateway *g = t->data;
    uint64_t now = gw__now(g);
    for (unsigned i = 0; i < g->nregions; i++) {
        gw__stream_tick(&g->follow[i], now);
    }
    for (struct gw_stream *s = g->replays, *nx; s; s = nx) {
        nx = s->next_replay;
        gw__stream_tick(s, now);
    }
    size_t pos = 0;
    struct strmap_slot *sl;
    while ((sl = strmap_next(&g->boards, &pos)) != NULL) {
        struct gw_board *b = sl->val;
        if (now >= b->retry_at) {
            gw__seed(b); /* regions whose seed failed, or a board that did not exist yet */
        }
        if (b->dirty && now - b->flushed_at >= GW__FLUSH_MS) {
            b->flushed_at = now;
            gw__board_flush(g, b);
        }
    }
}

static struct gw_board *gw__board_get(struct gateway *g, const char *id, size_t len)
{
    struct gw_board *b = strmap_get(&g->boards, id, len);
    if (b) {
        return b;
    }
    b = calloc(1, sizeof *b + g->nregions * sizeof b->r[0]);
    if (b == NULL) {
        return NULL;
    }
    b->sent_region = calloc(g->nregions, sizeof *b->sent_region);
    b->dirty_region = calloc(g->nregions, 1);
    if (b->sent_region == NULL || b->dirty_region == NULL ||
        strmap_put(&g->boards, id, len, b) != 0) {
        gw__board_free(b);
        return NULL;
    }
    b->g = g;
    memcpy(b->id, id, len);
    b->gen = ++g->board_gen;
    gw__seed(b);
    return b;
}

/* ---- topics ------------------------------------------------------------------------------------- */

/* Parse @name into a new topic (its board watched); NULL with a sentence in @err. */
static struct gw_topic *gw__topic_new(struct gateway *g, const char *name, char *err,
                                      size_t errcap, int *rv)
{
    size_t len = strlen(name);
    const char *id = NULL;
    size_t idlen = 0;
    int scope = -1, board = 0;
    *rv = LR_EINVAL;
    if (strncmp(name, "player:", 7) == 0) {
        id = name + 7;
        idlen = len - 7;
    } else if (strncmp(name, "board:", 6) == 0) {
        board = 1;
        id = name + 6;
        const char *colon = strchr(id, ':');
        idlen = colon ? (size_t)(colon - id) : strlen(id);
        if (colon) {
            if (strncmp(colon, ":region:", 8) != 0 ||
                (scope = gw__region_index(g, colon + 8)) < 0) {
                snprintf(err, errcap, "topic %.200s: the scope must be :region:<a known region>",
                         name);
                return NULL;
            }
        }
    } else {
        snprintf(err, errcap, "unknown topic %.200s: use player:<id>, board:<id> or "
                              "board:<id>:region:<r>", name);
        return NULL;
    }
    if (len >= sizeof ((struct gw_topic *)0)->name || !valid_id(id, idlen, VALID_ID_MAX)) {
        snprintf(err, errcap, "topic %.200s: ids are 1 to 64 characters of [A-Za-z0-9_.-]",
                 name);
        return NULL;
    }
    *rv = LR_ENOMEM;
    snprintf(err, errcap, "out of memory");
    struct gw_topic *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return NULL;
    }
    memcpy(t->name, name, len + 1);
    t->scope = scope;
    if (board && (t->board = gw__board_get(g, id, idlen)) == NULL) {
        free(t);
        return NULL;
    }
    if (strmap_put(&g->topics, name, len, t) != 0) {
        free(t);
        return NULL;
    }
    if (t->board) {
        t->board->refs++;
    }
    g->st.topics++;
    return t;
}

static void gw__topic_free(struct gateway *g, struct gw_topic *t)
{
    struct gw_board *b = t->board;
    strmap_del(&g->topics, t->name, strlen(t->name));
    g->st.topics--;
    if (b && --b->refs == 0) {
        strmap_del(&g->boards, b->id, strlen(b->id));
        gw__board_free(b);
    }
    free(t->subs);
    free(t);
}

/* Remove membership @k of @cl. */
static void gw__leave(struct gateway_client *cl, size_t k)
{
    struct gw_member mb = cl->mem[k];
    struct gw_topic *t = mb.t;
    struct gateway_client *moved = t->subs[t->n - 1];
    t->subs[mb.pos] = moved;
    t->n--;
    if (moved != cl) {
        for (size_t i = 0; i < moved->nmem; i++) {
            if (moved->mem[i].t == t) {
                moved->mem[i].pos = mb.pos;
                break;
            }
        }
    }
    cl->mem[k] = cl->mem[--cl->nmem];
    if (t->n == 0) {
        gw__topic_free(cl->g, t);
    }
}

/* ---- public ------------------------------------------------------------------------------------ */

struct gateway_client *gateway_client_new(struct gateway *g, gateway_send_fn send, void *data)
{
    struct gateway_client *cl = calloc(1, sizeof *cl);
    if (cl == NULL) {
        return NULL;
    }
    cl->g = g;
    cl->send = send;
    cl->data = data;
    g->st.clients++;
    return cl;
}

void gateway_client_free(struct gateway_client *cl)
{
    if (cl == NULL) {
        return;
    }
    while (cl->nmem > 0) {
        gw__leave(cl, cl->nmem - 1);
    }
    for (struct gw_stream *s = cl->g->replays; s; s = s->next_replay) {
        if (s->cl == cl) {
            s->cl = NULL; /* its tick finishes it */
            s->finished = 1;
        }
    }
    struct gateway *g = cl->g;
    g->st.clients--;
    free(cl->mem);
    free(cl);
    gw__maybe_done(g);
}

int gateway_client_subscribe(struct gateway_client *cl, const char *topic, char *err,
                             size_t errcap)
{
    struct gateway *g = cl->g;
    int rv;
    struct gw_topic *t = strmap_get(&g->topics, topic, strlen(topic));
    if (t) {
        for (size_t i = 0; i < cl->nmem; i++) {
            if (cl->mem[i].t == t) {
                return 0;
            }
        }
    }
    if (cl->nmem == GW__CLIENT_TOPICS) {
        snprintf(err, errcap, "at most %d topics per connection", GW__CLIENT_TOPICS);
        return LR_ETOOBIG;
    }
    if (cl->nmem == cl->capmem) {
        size_t cap = cl->capmem ? cl->capmem * 2 : 4;
        struct gw_member *nv = realloc(cl->mem, cap * sizeof *nv);
        if (nv == NULL) {
            snprintf(err, errcap, "out of memory");
            return LR_ENOMEM;
        }
        cl->mem = nv;
        cl->capmem = cap;
    }
    if (t == NULL && (t = gw__topic_new(g, topic, err, errcap, &rv)) == NULL) {
        return rv;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4;
        struct gateway_client **nv = realloc(t->subs, cap * sizeof *nv);
        if (nv == NULL) {
            if (t->n == 0) {
                gw__topic_free(g, t);
            }
            snprintf(err, errcap, "out of memory");
            return LR_ENOMEM;
        }
        t->subs = nv;
        t->cap = cap;
    }
    t->subs[t->n] = cl;
    cl->mem[cl->nmem].t = t;
    cl->mem[cl->nmem].pos = t->n;
    cl->nmem++;
    t->n++;
    if (t->board && t->board->flushed) {
        /* The others hold the top already sent: the newcomer gets the same, alone. Before the
         * first flush, that flush sends it to every subscriber. */
        struct gw_board *b = t->board;
        gw__send_top(g, b, t->scope, t->scope < 0 ? &b->sent_global : &b->sent_region[t->scope],
                     cl);
    }
    return 0;
}

void gateway_client_unsubscribe(struct gateway_client *cl, const char *topic)
{
    for (size_t i = 0; i < cl->nmem; i++) {
        if (strcmp(cl->mem[i].t->name, topic) == 0) {
            gw__leave(cl, i);
            return;
        }
    }
}

int gateway_client_resume(struct gateway_client *cl, const char *region, uint64_t after,
                          const char *const *topics, size_t n, char *err, size_t errcap)
{
    struct gateway *g = cl->g;
    int r = gw__region_index(g, region);
    if (r < 0) {
        snprintf(err, errcap, "resume: unknown region %.64s", region);
        return LR_EINVAL;
    }
    uint64_t stop = g->follow[r].last;
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        np += strncmp(topics[i], "player:", 7) == 0;
    }
    if (after >= stop || np == 0) {
        return 0; /* nothing the live stream will not bring */
    }
    struct gw_stream *s = calloc(1, sizeof *s);
    if (s == NULL || (s->topics = calloc(np, sizeof *s->topics)) == NULL) {
        free(s);
        snprintf(err, errcap, "out of memory");
        return LR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (strncmp(topics[i], "player:", 7) == 0 &&
            (s->topics[s->ntopics++] = strdup(topics[i])) == NULL) {
            gw__replay_free(s);
            snprintf(err, errcap, "out of memory");
            return LR_ENOMEM;
        }
    }
    s->g = g;
    s->region = (unsigned)r;
    s->cl = cl;
    s->replay = 1;
    s->stop = stop;
    s->next = after + 1;
    s->replica = g->follow[r].replica;
    s->started = gw__now(g);
    proto_reader_init(&s->rd);
    msgpack_sbuffer_init(&s->out);
    s->next_replay = g->replays;
    if (g->replays) {
        g->replays->prev_replay = s;
    }
    g->replays = s;
    g->st.replays++;
    gw__connect(s);
    return 0;
}

void gateway_stats_get(const struct gateway *g, struct gateway_stats *st)
{
    *st = g->st;
    st->boards = (unsigned)g->boards.count;
}

void gateway_stream_stats_get(const struct gateway *g, unsigned i,
                              struct gateway_stream_stats *st)
{
    assert(i < g->nregions);
    const struct gw_stream *s = &g->follow[i];
    st->index = s->last;
    st->connects = s->connects;
    st->replica = s->state == GS_OPEN ? (int)s->replica : -1;
}

uint64_t gateway_region_index(const struct gateway *g, unsigned i)
{
    return i < g->nregions ? g->follow[i].last : 0;
}

int gateway_new(uv_loop_t *loop, const struct gateway_region *regions, unsigned n,
                unsigned timeout_ms, struct gateway **out)
{
    if (n == 0 || n > ROUTER_MAX_REGIONS) {
        return LR_EINVAL;
    }
    struct gateway *g = calloc(1, sizeof *g);
    if (g == NULL) {
        return LR_ENOMEM;
    }
    g->loop = loop;
    g->nregions = n;
    g->timeout_ms = timeout_ms;
    strmap_init(&g->topics);
    strmap_init(&g->boards);
    for (unsigned i = 0; i < n; i++) {
        snprintf(g->region[i], sizeof g->region[i], "%s", regions[i].id);
        g->up[i] = regions[i].u;
        struct gw_stream *s = &g->follow[i];
        s->g = g;
        s->region = i;
        proto_reader_init(&s->rd);
        msgpack_sbuffer_init(&s->out);
    }
    uv_timer_init(loop, &g->tick);
    g->tick.data = g;
    g->handles = 1;
    uv_timer_start(&g->tick, gw__tick, 0, GW__TICK_MS);
    *out = g;
    return 0;
}

static void gw__tick_closed(uv_handle_t *h)
{
    struct gateway *g = h->data;
    g->handles--;
    gw__maybe_done(g);
}

void gateway_close(struct gateway *g, void (*done)(void *data), void *data)
{
    g->closing = 1;
    g->done = done;
    g->done_data = data;
    for (unsigned i = 0; i < g->nregions; i++) {
        gw__stream_fail(&g->follow[i]);
    }
    for (struct gw_stream *s = g->replays, *nx; s; s = nx) {
        nx = s->next_replay;
        s->finished = 1;
        gw__stream_fail(s);
    }
    uv_close((uv_handle_t *)&g->tick, gw__tick_closed);
}
