/* router/gateway.c — the gateway's streams, topics, clients and fan-out (see gateway.h); the
 * board tops behind `leaderboard.changed` are gateway_board.c's.
 *
 * Streams. Each region has one follower (evstream.h) that starts from the present, so a
 * router does not replay the past to its clients. Its events go to their player topics and,
 * for `score.updated` and `player.updated` (a new name), to the board tops; a resync (the log no
 * longer held the follower's next index) re-seeds that region's boards, whose lists may have missed
 * updates. A client's resume is a bounded evstream of its own, a replay: from the client's index up
 * to where the follower stood when the client subscribed. Live events after that come through the
 * subscriptions, so each event reaches the client once.
 *
 * Fan-out. Topics live in one map, each with the array of its clients; a client holds the
 * positions of its memberships, so leaving a topic of 10 000 clients is O(1). An event's JSON
 * is encoded once, only when its topic has a client, into one refcounted message. */
#include "gateway.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/err.h"
#include "../proto/mpjson.h"
#include "../proto/proto.h"
#include "gateway_int.h"

#define GATEWAY__TICK_MS 100         /* replays' deadline and the board tops' flush */
#define GATEWAY__REPLAY_MAX_MS 30000 /* a replay that has not finished by then gives up */
#define GATEWAY__CLIENT_TOPICS 1024  /* topics one client may hold */

/* ---- messages ------------------------------------------------------------------------------ */

void gateway_msg_ref(struct gateway_msg *m)
{
    m->refs++;
}

void gateway_msg_unref(struct gateway_msg *m)
{
    assert(m->refs > 0);
    if (--m->refs == 0) {
        free(m);
    }
}

struct gateway_msg *gateway_msg_json(const json_t *j)
{
    size_t n = j ? json_dumpb(j, NULL, 0, JSON_COMPACT) : 0;
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

struct gateway__member {
    struct gateway__topic *t;
    size_t pos; /* index of the client in t->subs */
};

struct gateway_client {
    struct gateway *g;
    gateway_send_fn send;
    void *data;
    struct gateway__member *mem;
    size_t nmem, capmem;
    unsigned replays; /* its resumes not yet closed (gateway_client_replays) */
};

/* A client's resume in flight. */
struct gateway__replay {
    struct gateway *g;
    struct gateway_client *cl; /* NULL once it left */
    char **topics;             /* the player topics it delivers (owned) */
    size_t ntopics;
    uint64_t started;
    struct evstream *es;
    int closing;
    struct gateway__replay *prev, *next; /* g->replays */
};

static uint64_t gateway__now(const struct gateway *g)
{
    return uv_now(g->loop);
}

static int gateway__region_index(const struct gateway *g, const char *id)
{
    for (unsigned i = 0; i < g->nregions; i++) {
        if (strcmp(g->region[i], id) == 0) {
            return (int)i;
        }
    }
    return -1;
}

void gateway__maybe_done(struct gateway *g)
{
    if (!g->closing || g->handles > 0 || g->pending > 0 || g->st.clients > 0 || g->replays) {
        return;
    }
    size_t pos = 0;
    struct strmap_slot *sl;
    while ((sl = strmap_next(&g->topics, &pos)) != NULL) {
        struct gateway__topic *t = sl->val;
        free(t->subs);
        free(t);
    }
    gateway_board__free_all(g);
    strmap_free(&g->topics);
    strmap_free(&g->boards);
    void (*done)(void *) = g->done;
    void *dd = g->done_data;
    free(g);
    if (done) {
        done(dd);
    }
}

/* ---- fan-out ------------------------------------------------------------------------------- */

void gateway__publish(struct gateway *g, struct gateway__topic *t, struct gateway_msg *m)
{
    for (size_t i = 0; i < t->n; i++) {
        t->subs[i]->send(t->subs[i]->data, m);
    }
    g->st.delivered += t->n;
}

void gateway_announce(struct gateway *g, const char *board_id, const json_t *msg)
{
    char name[sizeof((struct gateway__topic *)0)->name];
    struct gateway_msg *m = gateway_msg_json(msg);
    if (m == NULL) {
        return;
    }
    for (int i = -1; i < (int)g->nregions; i++) {
        int len = i < 0 ? snprintf(name, sizeof name, "board:%s", board_id)
                        : snprintf(name, sizeof name, "board:%s:region:%s", board_id, g->region[i]);
        struct gateway__topic *t =
            len > 0 && (size_t)len < sizeof name ? strmap_get(&g->topics, name, (size_t)len) : NULL;
        if (t && t->n > 0) {
            gateway__publish(g, t, m);
        }
    }
    gateway_msg_unref(m);
}

void gateway__client_send(struct gateway_client *cl, struct gateway_msg *m)
{
    cl->send(cl->data, m);
    cl->g->st.delivered++;
}

/* The topic an event goes to ("player:<id>"), in @out; 0, or -1 for an event of no topic. */
static int gateway__player_topic(const msgpack_object *ev, char *out, size_t cap)
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

/* One event of a follower: to the player's topic, and into the board tops. */
static void gateway__dispatch(struct gateway *g, unsigned region, const msgpack_object *ev)
{
    char name[sizeof((struct gateway__topic *)0)->name];
    const msgpack_object *type = proto_map_get(ev, "type");
    g->st.events++;
    if (gateway__player_topic(ev, name, sizeof name) == 0) {
        struct gateway__topic *t = strmap_get(&g->topics, name, strlen(name));
        if (t && t->n > 0) {
            json_t *j = mpjson_from(ev);
            struct gateway_msg *m = gateway_msg_json(j);
            json_decref(j);
            if (m) {
                gateway__publish(g, t, m);
                gateway_msg_unref(m);
            }
        }
    }
    if (type && type->type == MSGPACK_OBJECT_STR && type->via.str.size == 13 &&
        memcmp(type->via.str.ptr, "score.updated", 13) == 0) {
        gateway_board__event(g, region, ev);
    } else if (type && type->type == MSGPACK_OBJECT_STR && type->via.str.size == 14 &&
               memcmp(type->via.str.ptr, "player.updated", 14) == 0) {
        gateway_board__player(g, region, ev);
    }
}

void gateway_listen(struct gateway *g, gateway_listen_fn fn, void *data)
{
    g->listen = fn;
    g->listen_data = data;
}

/* ---- streams ------------------------------------------------------------------------------- */

static void gateway__on_follow(void *data, const struct evstream_batch *b)
{
    struct gateway__follower *f = data;
    if (f->g->listen) {
        f->g->listen(f->g->listen_data, f->region, b);
    }
    if (b->what == EVSTREAM_RESYNC) {
        f->g->st.resyncs++;
        gateway_board__resync(f->g, f->region);
    } else if (b->what == EVSTREAM_EVENTS) {
        for (uint32_t i = 0; i < b->events->via.array.size; i++) {
            if (b->events->via.array.ptr[i].type == MSGPACK_OBJECT_MAP) {
                gateway__dispatch(f->g, f->region, &b->events->via.array.ptr[i]);
            }
        }
    } /* a live stream never ends */
}

static void gateway__follower_closed(void *data)
{
    struct gateway__follower *f = data;
    f->es = NULL;
    f->g->handles--;
    gateway__maybe_done(f->g);
}

static void gateway__send_error(struct gateway_client *cl, int code, const char *msg)
{
    json_t *j = json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "code", err_api_code(code),
                          "message", msg);
    struct gateway_msg *m = gateway_msg_json(j);
    json_decref(j);
    if (m) {
        cl->send(cl->data, m);
        gateway_msg_unref(m);
    }
}

static void gateway__replay_free(struct gateway__replay *rp)
{
    for (size_t i = 0; i < rp->ntopics; i++) {
        free(rp->topics[i]);
    }
    free(rp->topics);
    free(rp);
}

static void gateway__replay_closed(void *data)
{
    struct gateway__replay *rp = data;
    struct gateway *g = rp->g;
    if (rp->prev) {
        rp->prev->next = rp->next;
    } else {
        g->replays = rp->next;
    }
    if (rp->next) {
        rp->next->prev = rp->prev;
    }
    gateway__replay_free(rp);
    gateway__maybe_done(g);
}

static void gateway__replay_close(struct gateway__replay *rp)
{
    if (!rp->closing) {
        rp->closing = 1;
        /* Nothing is delivered once closing: the client's bound frees up now, not when the
         * stream's connection has closed. */
        if (rp->cl != NULL) {
            rp->cl->replays--;
            rp->cl = NULL;
        }
        evstream_close(rp->es, gateway__replay_closed, rp);
    }
}

/* One event of a replay: to its client, when its player topic is one the replay covers. */
static void gateway__replay_event(struct gateway__replay *rp, const msgpack_object *ev)
{
    char name[sizeof((struct gateway__topic *)0)->name];
    if (rp->cl == NULL || gateway__player_topic(ev, name, sizeof name) != 0) {
        return;
    }
    for (size_t i = 0; i < rp->ntopics; i++) {
        if (strcmp(rp->topics[i], name) == 0) {
            json_t *j = mpjson_from(ev);
            struct gateway_msg *m = gateway_msg_json(j);
            json_decref(j);
            if (m) {
                gateway__client_send(rp->cl, m);
                gateway_msg_unref(m);
            }
            return;
        }
    }
}

static void gateway__on_replay(void *data, const struct evstream_batch *b)
{
    struct gateway__replay *rp = data;
    if (b->what == EVSTREAM_EVENTS) {
        for (uint32_t i = 0; i < b->events->via.array.size && rp->cl; i++) {
            if (b->events->via.array.ptr[i].type == MSGPACK_OBJECT_MAP) {
                gateway__replay_event(rp, &b->events->via.array.ptr[i]);
            }
        }
    } else if (b->what == EVSTREAM_RESYNC) {
        if (rp->cl && b->index > 0) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "resume: the region's event log no longer holds that index (it starts at "
                     "%llu); read the current state instead",
                     (unsigned long long)b->index);
            gateway__send_error(rp->cl, LR_ENOTFOUND, msg);
        } else if (rp->cl) {
            gateway__send_error(rp->cl, LR_ENOTFOUND,
                                "resume: the region's event log no longer holds that index; "
                                "read the current state instead");
        }
    } else {
        gateway__replay_close(rp); /* EVSTREAM_END */
    }
}

static void gateway__tick(uv_timer_t *t)
{
    struct gateway *g = t->data;
    uint64_t now = gateway__now(g);
    for (struct gateway__replay *rp = g->replays; rp; rp = rp->next) {
        if (now - rp->started > GATEWAY__REPLAY_MAX_MS) {
            gateway__replay_close(rp);
        }
    }
    gateway_board__tick(g, now);
}

/* ---- topics -------------------------------------------------------------------------------- */

/* Parse @name into a new topic (its board watched); NULL with *@rv and a sentence in @err. */
static struct gateway__topic *gateway__topic_new(struct gateway *g, const char *name, char *err,
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
                (scope = gateway__region_index(g, colon + 8)) < 0) {
                snprintf(err, errcap, "topic %.200s: the scope must be :region:<a known region>",
                         name);
                return NULL;
            }
        }
    } else {
        snprintf(err, errcap,
                 "unknown topic %.200s: use player:<id>, board:<id> or "
                 "board:<id>:region:<r>",
                 name);
        return NULL;
    }
    if (len >= sizeof((struct gateway__topic *)0)->name || !valid_id(id, idlen, VALID_ID_MAX)) {
        snprintf(err, errcap, "topic %.200s: ids are 1 to 64 characters of [A-Za-z0-9_.-]", name);
        return NULL;
    }
    *rv = LR_ENOMEM;
    snprintf(err, errcap, "out of memory");
    struct gateway__topic *t = calloc(1, sizeof *t);
    if (t == NULL) {
        goto err;
    }
    memcpy(t->name, name, len + 1);
    t->scope = scope;
    if (board && (t->board = gateway_board__hold(g, id, idlen)) == NULL) {
        goto err_after_topic_alloc;
    }
    if (strmap_put(&g->topics, name, len, t) != 0) {
        goto err_after_board_hold;
    }
    g->st.topics++;
    return t;

err_after_board_hold:
    if (t->board) {
        gateway_board__release(t->board);
    }
err_after_topic_alloc:
    free(t);
err:
    assert(*rv != 0);
    return NULL;
}

static void gateway__topic_free(struct gateway *g, struct gateway__topic *t)
{
    strmap_del(&g->topics, t->name, strlen(t->name));
    g->st.topics--;
    if (t->board) {
        gateway_board__release(t->board);
    }
    free(t->subs);
    free(t);
}

/* Remove membership @k of @cl. */
static void gateway__leave(struct gateway_client *cl, size_t k)
{
    struct gateway__member mb = cl->mem[k];
    struct gateway__topic *t = mb.t;
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
        gateway__topic_free(cl->g, t);
    }
}

/* ---- clients ------------------------------------------------------------------------------- */

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

unsigned gateway_client_replays(const struct gateway_client *cl)
{
    return cl->replays;
}

void gateway_client_free(struct gateway_client *cl)
{
    if (cl == NULL) {
        return;
    }
    struct gateway *g = cl->g;
    while (cl->nmem > 0) {
        gateway__leave(cl, cl->nmem - 1);
    }
    for (struct gateway__replay *rp = g->replays; rp; rp = rp->next) {
        if (rp->cl == cl) {
            gateway__replay_close(rp);
        }
    }
    g->st.clients--;
    free(cl->mem);
    free(cl);
    gateway__maybe_done(g);
}

int gateway_client_subscribe(struct gateway_client *cl, const char *topic, char *err, size_t errcap)
{
    struct gateway *g = cl->g;
    int rv;
    struct gateway__topic *t = strmap_get(&g->topics, topic, strlen(topic));
    if (t) {
        for (size_t i = 0; i < cl->nmem; i++) {
            if (cl->mem[i].t == t) {
                return 0;
            }
        }
    }
    if (cl->nmem == GATEWAY__CLIENT_TOPICS) {
        snprintf(err, errcap, "at most %d topics per connection", GATEWAY__CLIENT_TOPICS);
        return LR_ETOOBIG;
    }
    if (cl->nmem == cl->capmem) {
        size_t cap = cl->capmem ? cl->capmem * 2 : 4;
        struct gateway__member *nv = realloc(cl->mem, cap * sizeof *nv);
        if (nv == NULL) {
            snprintf(err, errcap, "out of memory");
            return LR_ENOMEM;
        }
        cl->mem = nv;
        cl->capmem = cap;
    }
    if (t == NULL && (t = gateway__topic_new(g, topic, err, errcap, &rv)) == NULL) {
        return rv;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4;
        struct gateway_client **nv = realloc(t->subs, cap * sizeof *nv);
        if (nv == NULL) {
            if (t->n == 0) {
                gateway__topic_free(g, t);
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
    if (t->board) {
        gateway_board__greet(t->board, t->scope, cl);
    }
    return 0;
}

void gateway_client_unsubscribe(struct gateway_client *cl, const char *topic)
{
    for (size_t i = 0; i < cl->nmem; i++) {
        if (strcmp(cl->mem[i].t->name, topic) == 0) {
            gateway__leave(cl, i);
            return;
        }
    }
}

int gateway_client_resume(struct gateway_client *cl, const char *region, uint64_t after,
                          const char *const *topics, size_t n, char *err, size_t errcap)
{
    struct gateway *g = cl->g;
    struct evstream_stats fs;
    int rv, r = gateway__region_index(g, region);
    if (r < 0) {
        snprintf(err, errcap, "resume: unknown region %.64s", region);
        return LR_EINVAL;
    }
    if (g->closing) {
        snprintf(err, errcap, "resume: the router is stopping");
        return LR_EUNAVAILABLE; /* the upstreams may be gone */
    }
    evstream_stats_get(g->follow[r].es, &fs);
    size_t np = 0;
    for (size_t i = 0; i < n; i++) {
        np += strncmp(topics[i], "player:", 7) == 0;
    }
    /* The replay ends where the live stream stands, not at the last event it delivered: a
     * router that has just started has delivered nothing yet, and the entries between the
     * client's index and its starting point come through neither. Before it knows where it
     * starts there is no end to give: the client resumes again shortly (the subscription
     * stands, and no live event has reached it yet from before that point). */
    if (np > 0 && fs.position == 0) {
        snprintf(err, errcap,
                 "resume: the router's stream of region %.64s is starting; resume again shortly",
                 region);
        return LR_EUNAVAILABLE;
    }
    if (after >= fs.position || np == 0) {
        return 0; /* nothing the live stream will not bring */
    }
    rv = LR_ENOMEM;
    snprintf(err, errcap, "out of memory");
    struct gateway__replay *rp = calloc(1, sizeof *rp);
    if (rp == NULL || (rp->topics = calloc(np, sizeof *rp->topics)) == NULL) {
        free(rp);
        goto err;
    }
    for (size_t i = 0; i < n; i++) {
        if (strncmp(topics[i], "player:", 7) == 0 &&
            (rp->topics[rp->ntopics++] = strdup(topics[i])) == NULL) {
            goto err_after_replay_alloc;
        }
    }
    /* From the replica the follower is on: it holds at least up to the stop. */
    struct evstream_config cfg = {
        .from = after + 1, .stop = fs.position, .replica = fs.replica, .timeout_ms = g->timeout_ms};
    if ((rv = evstream_new(g->loop, g->up[r], &cfg, gateway__on_replay, rp, &rp->es)) != 0) {
        goto err_after_replay_alloc;
    }
    rp->g = g;
    rp->cl = cl;
    cl->replays++;
    rp->started = gateway__now(g);
    rp->next = g->replays;
    if (g->replays) {
        g->replays->prev = rp;
    }
    g->replays = rp;
    g->st.replays++;
    return 0;

err_after_replay_alloc:
    gateway__replay_free(rp);
err:
    assert(rv != 0);
    return rv;
}

json_t *gateway_client_positions(const struct gateway_client *cl)
{
    const struct gateway *g = cl->g;
    json_t *o = json_object();
    for (unsigned i = 0; o && i < g->nregions; i++) {
        const struct gateway__follower *f = &g->follow[i];
        struct evstream_stats es = f->final;
        if (f->es) {
            evstream_stats_get(f->es, &es);
        }
        if (json_object_set_new(o, g->region[i], json_integer((json_int_t)es.position)) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

/* ---- the gateway --------------------------------------------------------------------------- */

void gateway_stats_get(const struct gateway *g, struct gateway_stats *st)
{
    *st = g->st;
    st->boards = (unsigned)g->boards.count;
    st->reconnects = 0;
    for (unsigned i = 0; i < g->nregions; i++) {
        struct gateway_stream_stats ss;
        gateway_stream_stats_get(g, i, &ss);
        st->reconnects += ss.connects;
    }
}

void gateway_stream_stats_get(const struct gateway *g, unsigned i, struct gateway_stream_stats *st)
{
    assert(i < g->nregions);
    const struct gateway__follower *f = &g->follow[i];
    struct evstream_stats es = f->final;
    if (f->es) {
        evstream_stats_get(f->es, &es);
    }
    st->index = es.index;
    st->connects = es.connects;
    st->replica = es.subscribed;
}

uint64_t gateway_region_index(const struct gateway *g, unsigned i)
{
    struct gateway_stream_stats st = {0, 0, -1};
    if (i < g->nregions) {
        gateway_stream_stats_get(g, i, &st);
    }
    return st.index;
}

static void gateway__tick_closed(uv_handle_t *h)
{
    struct gateway *g = h->data;
    g->handles--;
    gateway__maybe_done(g);
}

/* Close the followers that were made; @g goes with the last close callback. */
static void gateway__close_followers(struct gateway *g)
{
    for (unsigned i = 0; i < g->nregions; i++) {
        struct gateway__follower *f = &g->follow[i];
        if (f->es) {
            evstream_stats_get(f->es, &f->final);
            f->final.subscribed = -1;
            evstream_close(f->es, gateway__follower_closed, f);
        }
    }
}

/* Start following region @i (@id, served by @u) from the present: its live stream. */
static int gateway__follow(struct gateway *g, unsigned i, const char *id, struct upstream *u)
{
    struct gateway__follower *f = &g->follow[i];
    struct evstream_config cfg = {
        .from = 0, .stop = 0, .replica = 0, .timeout_ms = g->timeout_ms, .applied = 1, .leader = 1};
    snprintf(g->region[i], sizeof g->region[i], "%s", id);
    g->up[i] = u;
    f->g = g;
    f->region = i;
    f->final.subscribed = -1;
    int rv = evstream_new(g->loop, u, &cfg, gateway__on_follow, f, &f->es);
    if (rv == 0) {
        g->handles++;
    }
    return rv;
}

int gateway_new(uv_loop_t *loop, const struct gateway_region *regions, unsigned n,
                unsigned timeout_ms, struct gateway **out)
{
    int rv;
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
        if ((rv = gateway__follow(g, i, regions[i].id, regions[i].u)) != 0) {
            goto err_after_followers;
        }
    }
    uv_timer_init(loop, &g->tick);
    g->tick.data = g;
    g->handles++;
    uv_timer_start(&g->tick, gateway__tick, 0, GATEWAY__TICK_MS);
    *out = g;
    return 0;

err_after_followers:
    g->closing = 1;
    gateway__close_followers(g);
    gateway__maybe_done(g); /* frees @g now when no follower was made */
    assert(rv != 0);
    return rv;
}

int gateway_add_region(struct gateway *g, const char *id, struct upstream *u)
{
    unsigned i = g->nregions;
    int rv;
    if (g->closing || i == ROUTER_MAX_REGIONS) {
        return LR_EINVAL;
    }
    /* Boards first: a board's region lists must exist before anything counts the region. */
    if ((rv = gateway_board__add_region(g)) != 0) {
        return rv;
    }
    if ((rv = gateway__follow(g, i, id, u)) != 0) {
        return rv;
    }
    g->nregions = i + 1;
    return 0;
}

void gateway_close(struct gateway *g, void (*done)(void *data), void *data)
{
    g->closing = 1;
    g->done = done;
    g->done_data = data;
    gateway__close_followers(g);
    for (struct gateway__replay *rp = g->replays; rp; rp = rp->next) {
        gateway__replay_close(rp);
    }
    uv_close((uv_handle_t *)&g->tick, gateway__tick_closed);
}
