/* router/gateway_board.c — the board tops the gateway keeps to send `leaderboard.changed`
 * (docs/api.md, "WebSocket"; see gateway_int.h).
 *
 * A board topic makes the gateway watch its board: per region it keeps that region's top
 * GATEWAY_BOARD__KEEP entries of the alltime window, seeded by one top query and then kept
 * from `score.updated` events (which carry score, subscore and updated_at: the whole key of
 * docs/ordering.md, compared by shard/rankkey.h like everywhere else). An entry that falls out
 * of the kept window is dropped; only when a list that is not the region's whole board shrinks
 * below GATEWAY_BOARD__TOP does the gateway query again.
 *
 * Events that arrive while a seed is in flight are held and applied after it, in order: the
 * seed (a leader read) already holds every event received before it was sent, and replaying
 * later ones on top is idempotent per player, so the list converges to the region's top.
 *
 * The global top is the merge of the regions' lists. Every GATEWAY_BOARD__FLUSH_MS the tops
 * of changed boards are compared with what was last sent and a `leaderboard.changed` goes out
 * only when they differ: coalesced to one per board and scope per tick. Each scope goes by its
 * own regions: a region's top is sent once that region is seeded and then when that region's
 * list changed, never because another region moved; the global top needs them all.
 *
 * Entries carry the name and metadata the seed's page or the event brought (API.md's board
 * entry), and a `player.updated` renames the player's kept entries; a difference in either
 * is a change of the top. A newcomer gets the top the scope's subscribers hold, unless an
 * event moved the lists since it was sent: then the scope's next flush is forced, and brings
 * the current top to every subscriber, the newcomer included, rather than greeting it with a
 * top that misses a write it may just have made. */
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/err.h"
#include "../proto/proto.h"
#include "../shard/rankkey.h"
#include "../shard/timefmt.h"
#include "gateway_int.h"
#include "router_int.h"

#define GATEWAY_BOARD__FLUSH_MS 100 /* at most one leaderboard.changed per board and scope */
#define GATEWAY_BOARD__TOP 10       /* entries of a leaderboard.changed */
#define GATEWAY_BOARD__KEEP 32 /* entries kept per region: the top plus slack before a re-seed */
#define GATEWAY_BOARD__SEED_RETRY_MS 1000

/* One entry as a board shows it (API.md): the key, and the name and metadata the seed's page
 * or the score.updated event carried, so a top is sent without asking the region. */
struct gateway_board__entry {
    int64_t a, b, t; /* the rank key (docs/ordering.md): order-adjusted score, subscore, time */
    int64_t score, subscore;
    uint8_t idlen;
    uint8_t region;
    uint8_t has_name; /* 0: an event of an older shard, without one */
    uint8_t rename;   /* a held player.updated: only the id and the name mean anything */
    uint16_t namelen;
    uint16_t metalen; /* 0: no metadata (null) */
    char id[VALID_ID_MAX + 1];
    char name[VALID_NAME_MAX * 4]; /* UTF-8 */
    char meta[VALID_METADATA_MAX]; /* compact JSON text, as stored */
};

enum gateway_board__lstate { GL_NONE, GL_SEEDING, GL_READY };

/* One region's top of one board. */
struct gateway_board__rlist {
    struct gateway_board__entry v[GATEWAY_BOARD__KEEP + 1];
    unsigned n;
    int complete; /* the list is the region's whole board */
    enum gateway_board__lstate state;
    struct gateway_board__entry *held; /* events received while seeding (owned) */
    size_t nheld, capheld;
};

struct gateway_board__top {
    struct gateway_board__entry v[GATEWAY_BOARD__TOP];
    unsigned n;
    int sent; /* sent once: what every subscriber of the scope holds */
};

/* One region's share of a board: its list, and the top last sent to the region's scope. Apart
 * from the board, so a region added while the router runs adds one. */
struct gateway_board__part {
    struct gateway_board__rlist l;
    struct gateway_board__top sent;
    uint8_t dirty; /* the region's list changed since its top was last sent */
};

struct gateway_board {
    struct gateway *g;
    char id[VALID_ID_MAX + 1];
    unsigned refs; /* topics that watch it */
    unsigned gen;  /* tells a seed's answer whether it is still wanted */
    int desc;
    int order_known, order_asking;
    uint64_t retry_at;
    int dirty; /* some scope has something to send (or wait for) */
    uint64_t flushed_at;
    struct gateway_board__top sent_global;
    /* [0, g->nregions) allocated, and any region being added (gateway_board__add_region) */
    struct gateway_board__part *part[ROUTER_MAX_REGIONS];
};

/* A seed or order query in flight: names its board by id and generation, which may be gone
 * by the answer. */
struct gateway_board__query {
    struct gateway *g;
    char id[VALID_ID_MAX + 1];
    unsigned gen;
    int region; /* -1: the board's order */
};

static void gateway_board__seed(struct gateway_board *b);
static void gateway_board__seed_region(struct gateway_board *b, unsigned region);

static uint64_t gateway_board__now(const struct gateway *g)
{
    return uv_now(g->loop);
}

static void gateway_board__free(struct gateway_board *b)
{
    for (unsigned i = 0; i < ROUTER_MAX_REGIONS; i++) {
        if (b->part[i]) {
            free(b->part[i]->l.held);
            free(b->part[i]);
        }
    }
    free(b);
}

static int gateway_board__key_cmp(const struct gateway_board__entry *x,
                                  const struct gateway_board__entry *y)
{
    struct rankkey kx = {x->a, x->b, x->t, RANKKEY_FOREIGN, x->idlen, NULL};
    struct rankkey ky = {y->a, y->b, y->t, RANKKEY_FOREIGN, y->idlen, NULL};
    return rankkey_cmp(&kx, x->id, &ky, y->id);
}

/* 1 when @x and @y show the same: key, name and metadata. */
static int gateway_board__entry_same(const struct gateway_board__entry *x,
                                     const struct gateway_board__entry *y)
{
    return gateway_board__key_cmp(x, y) == 0 && x->has_name == y->has_name &&
           x->namelen == y->namelen && memcmp(x->name, y->name, x->namelen) == 0 &&
           x->metalen == y->metalen && memcmp(x->meta, y->meta, x->metalen) == 0;
}

/* The bytes of string or bin @o into @buf (@cap bytes): the length, or -1 for another type or
 * a longer value. */
static int gateway_board__bytes(const msgpack_object *o, char *buf, size_t cap)
{
    const char *p;
    size_t n;
    if (o == NULL) {
        return -1;
    }
    if (o->type == MSGPACK_OBJECT_STR) {
        p = o->via.str.ptr;
        n = o->via.str.size;
    } else if (o->type == MSGPACK_OBJECT_BIN) {
        p = o->via.bin.ptr;
        n = o->via.bin.size;
    } else {
        return -1;
    }
    if (n > cap) {
        return -1;
    }
    memcpy(buf, p, n);
    return (int)n;
}

/* An entry from a top page's entry or a score.updated event (same field names). A name or
 * metadata that is missing or malformed leaves the entry without it rather than dropping the
 * key: the order is what the tops must not lose. */
static int gateway_board__entry_of(const msgpack_object *o, int desc, unsigned region,
                                   struct gateway_board__entry *e)
{
    struct router__entry re;
    if (router__entry_key(o, desc, &re) != 0) {
        return -1;
    }
    int n = gateway_board__bytes(proto_map_get(o, "name"), e->name, sizeof e->name);
    e->has_name = n >= 0;
    e->namelen = (uint16_t)(n >= 0 ? n : 0);
    const msgpack_object *meta = proto_map_get(o, "metadata");
    /* BIN holds the stored JSON text (shard/query.c); nil is none. */
    n = meta && meta->type == MSGPACK_OBJECT_BIN
            ? gateway_board__bytes(meta, e->meta, sizeof e->meta)
            : -1;
    e->metalen = (uint16_t)(n >= 0 ? n : 0);
    e->rename = 0;
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

/* ---- one region's list -------------------------------------------------------------------- */

/* Apply one stored entry to a region's list: 1 when the list changed. */
static int gateway_board__rlist_apply(struct gateway_board *b, unsigned region,
                                      const struct gateway_board__entry *in)
{
    struct gateway_board__rlist *l = &b->part[region]->l;
    struct gateway_board__entry ne;
    const struct gateway_board__entry *e = in;
    int found = -1, changed = 0;
    for (unsigned i = 0; i < l->n; i++) {
        if (l->v[i].idlen == e->idlen && memcmp(l->v[i].id, e->id, e->idlen) == 0) {
            found = (int)i;
            break;
        }
    }
    if (found >= 0 && !in->has_name && l->v[found].has_name) {
        /* An event without a name (an older shard's): the player's name is the one we hold. */
        ne = *in;
        ne.has_name = 1;
        ne.namelen = l->v[found].namelen;
        memcpy(ne.name, l->v[found].name, ne.namelen);
        e = &ne;
    }
    if (found >= 0) {
        memmove(&l->v[found], &l->v[found + 1], (l->n - (unsigned)found - 1) * sizeof l->v[0]);
        l->n--;
        changed = 1;
    }
    /* An entry below the last kept one may still have others between it and the window: it
     * only belongs when the list is the region's whole board. */
    if (l->complete || (l->n > 0 && gateway_board__key_cmp(e, &l->v[l->n - 1]) < 0)) {
        unsigned at = l->n;
        while (at > 0 && gateway_board__key_cmp(e, &l->v[at - 1]) < 0) {
            at--;
        }
        memmove(&l->v[at + 1], &l->v[at], (l->n - at) * sizeof l->v[0]);
        l->v[at] = *e;
        l->n++;
        if (l->n > GATEWAY_BOARD__KEEP) {
            l->n = GATEWAY_BOARD__KEEP;
            l->complete = 0;
        }
        changed = 1;
    } else if (found >= 0 && l->n < GATEWAY_BOARD__TOP) {
        gateway_board__seed_region(b, region); /* the window lost an entry it cannot replace */
    }
    return changed;
}

static void gateway_board__dirty(struct gateway_board *b, unsigned region)
{
    b->dirty = 1;
    b->part[region]->dirty = 1;
}

/* Hold @e (an entry or a rename) for after the region's seed: 0, or -1 when out of memory
 * (then the region is seeded again later rather than losing an event). */
static int gateway_board__hold_event(struct gateway_board__rlist *l,
                                     const struct gateway_board__entry *e)
{
    if (l->nheld == l->capheld) {
        size_t cap = l->capheld ? l->capheld * 2 : 16;
        struct gateway_board__entry *nv = realloc(l->held, cap * sizeof *nv);
        if (nv == NULL) {
            l->state = GL_NONE;
            return -1;
        }
        l->held = nv;
        l->capheld = cap;
    }
    l->held[l->nheld++] = *e;
    return 0;
}

/* Rename @e's player (@e->name) in region @region's list of @b: 1 when the list changed. */
static int gateway_board__rename(struct gateway_board *b, unsigned region,
                                 const struct gateway_board__entry *e)
{
    struct gateway_board__rlist *l = &b->part[region]->l;
    for (unsigned i = 0; i < l->n; i++) {
        struct gateway_board__entry *x = &l->v[i];
        if (x->idlen != e->idlen || memcmp(x->id, e->id, x->idlen) != 0) {
            continue;
        }
        if (x->has_name && x->namelen == e->namelen && memcmp(x->name, e->name, x->namelen) == 0) {
            return 0;
        }
        x->has_name = 1;
        x->namelen = e->namelen;
        memcpy(x->name, e->name, x->namelen);
        return 1;
    }
    return 0;
}

void gateway_board__event(struct gateway *g, unsigned region, const msgpack_object *ev)
{
    const msgpack_object *bid = proto_map_get(ev, "board_id");
    if (bid == NULL || bid->type != MSGPACK_OBJECT_STR) {
        return;
    }
    struct gateway_board *b = strmap_get(&g->boards, bid->via.str.ptr, bid->via.str.size);
    if (b == NULL) {
        return;
    }
    struct gateway_board__rlist *l = &b->part[region]->l;
    struct gateway_board__entry e;
    if (!b->order_known) {
        return; /* not seeded yet: the seed will hold it */
    }
    if (gateway_board__entry_of(ev, b->desc, region, &e) != 0) {
        return;
    }
    if (l->state == GL_SEEDING) {
        (void)gateway_board__hold_event(l, &e);
        return;
    }
    if (l->state == GL_READY && gateway_board__rlist_apply(b, region, &e)) {
        gateway_board__dirty(b, region);
    }
}

void gateway_board__player(struct gateway *g, unsigned region, const msgpack_object *ev)
{
    const msgpack_object *pid = proto_map_get(ev, "player_id");
    struct gateway_board__entry e;
    int n = gateway_board__bytes(proto_map_get(ev, "name"), e.name, sizeof e.name);
    if (pid == NULL || pid->type != MSGPACK_OBJECT_STR || pid->via.str.size == 0 ||
        pid->via.str.size > VALID_ID_MAX || n < 0) {
        return;
    }
    memset(&e, 0, offsetof(struct gateway_board__entry, name)); /* the key: unused */
    e.rename = 1;
    e.has_name = 1;
    e.namelen = (uint16_t)n;
    e.idlen = (uint8_t)pid->via.str.size;
    memcpy(e.id, pid->via.str.ptr, e.idlen);
    e.id[e.idlen] = '\0';
    /* The player's entries are in its region's lists only. O(boards x kept entries) a rename,
     * which is rare next to scores. A list being seeded holds it like a score, so the events
     * replayed on the seed's page keep the log's order (a late score event of the old name
     * cannot undo the rename); a list not seeded gets the name from its seed. */
    size_t pos = 0;
    struct strmap_slot *sl;
    while ((sl = strmap_next(&g->boards, &pos)) != NULL) {
        struct gateway_board *b = sl->val;
        struct gateway_board__rlist *l = &b->part[region]->l;
        if (l->state == GL_SEEDING) {
            (void)gateway_board__hold_event(l, &e);
        } else if (l->state == GL_READY && gateway_board__rename(b, region, &e)) {
            gateway_board__dirty(b, region);
        }
    }
}

void gateway_board__resync(struct gateway *g, unsigned region)
{
    size_t pos = 0;
    struct strmap_slot *sl;
    while ((sl = strmap_next(&g->boards, &pos)) != NULL) {
        gateway_board__seed_region(sl->val, region);
    }
}

/* ---- seeds -------------------------------------------------------------------------------- */

static struct gateway_board *gateway_board__of_query(struct gateway_board__query *sd)
{
    struct gateway_board *b = strmap_get(&sd->g->boards, sd->id, strlen(sd->id));
    return b && b->gen == sd->gen ? b : NULL;
}

static void gateway_board__seeded(void *data, int code, const msgpack_object *payload)
{
    struct gateway_board__query *sd = data;
    struct gateway *g = sd->g;
    struct gateway_board *b = g->closing ? NULL : gateway_board__of_query(sd);
    g->pending--;
    if (b == NULL) {
        free(sd);
        gateway__maybe_done(g);
        return;
    }
    if (sd->region < 0) {
        b->order_asking = 0;
        const msgpack_object *ord = code == 0 ? proto_map_get(payload, "order") : NULL;
        if (ord == NULL || ord->type != MSGPACK_OBJECT_STR) {
            /* no such board yet, or no leader */
            b->retry_at = gateway_board__now(g) + GATEWAY_BOARD__SEED_RETRY_MS;
        } else {
            b->desc = !(ord->via.str.size == 3 && memcmp(ord->via.str.ptr, "asc", 3) == 0);
            b->order_known = 1;
            gateway_board__seed(b);
        }
        free(sd);
        return;
    }
    unsigned r = (unsigned)sd->region;
    struct gateway_board__rlist *l = &b->part[r]->l;
    const msgpack_object *es = code == 0 ? proto_map_get(payload, "entries") : NULL;
    int64_t total = 0;
    free(sd);
    if (es == NULL || es->type != MSGPACK_OBJECT_ARRAY ||
        proto_obj_i64(proto_map_get(payload, "total"), &total) != 0) {
        l->state = GL_NONE; /* the tick seeds it again */
        l->nheld = 0;
        b->retry_at = gateway_board__now(g) + GATEWAY_BOARD__SEED_RETRY_MS;
        return;
    }
    l->n = 0;
    for (uint32_t i = 0; i < es->via.array.size && l->n < GATEWAY_BOARD__KEEP; i++) {
        if (gateway_board__entry_of(&es->via.array.ptr[i], b->desc, r, &l->v[l->n]) == 0) {
            l->n++;
        }
    }
    l->complete = (uint64_t)total <= l->n;
    l->state = GL_READY;
    for (size_t i = 0; i < l->nheld; i++) {
        if (l->held[i].rename) {
            gateway_board__rename(b, r, &l->held[i]);
        } else {
            gateway_board__rlist_apply(b, r, &l->held[i]);
        }
    }
    l->nheld = 0;
    gateway_board__dirty(b, r);
}

/* Send query @sq for @b to region @region (@sd->region names what it seeds): 0, or -1 when the
 * call could not be made (then @sd is freed). */
static int gateway_board__ask(struct gateway_board *b, unsigned region,
                              const struct shard_query *sq, struct gateway_board__query *sd)
{
    struct gateway *g = b->g;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int rv = 0;
    sd->g = g;
    memcpy(sd->id, b->id, sizeof sd->id);
    sd->gen = b->gen;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_query_encode(&pk, sq, 0);
    g->pending++;
    if (upstream_call(g->up[region], PROTO_OP_QUERY, 1, sb.data, sb.size, g->timeout_ms,
                      gateway_board__seeded, sd) != 0) {
        g->pending--;
        free(sd);
        rv = -1;
    }
    msgpack_sbuffer_destroy(&sb);
    return rv;
}

/* Ask for region @region's top of @b (the order must be known). */
static void gateway_board__seed_region(struct gateway_board *b, unsigned region)
{
    struct gateway *g = b->g;
    struct gateway_board__rlist *l = &b->part[region]->l;
    struct shard_query sq;
    struct timespec ts;
    if (!b->order_known || l->state == GL_SEEDING || g->closing) {
        return; /* closing: the upstreams may be gone */
    }
    struct gateway_board__query *sd = malloc(sizeof *sd);
    if (sd == NULL) {
        l->state = GL_NONE;
        return;
    }
    sd->region = (int)region;
    clock_gettime(CLOCK_REALTIME, &ts);
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_TOP;
    sq.board_id = lr_str_of(b->id);
    sq.window = TIMEFMT_ALLTIME;
    sq.limit = GATEWAY_BOARD__KEEP;
    sq.now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    l->state = GL_SEEDING;
    l->nheld = 0;
    g->st.seeds++;
    if (gateway_board__ask(b, region, &sq, sd) != 0) {
        l->state = GL_NONE;
    }
}

/* Learn the board's order, then seed every region that is not. */
static void gateway_board__seed(struct gateway_board *b)
{
    struct gateway *g = b->g;
    if (g->closing) {
        return; /* the upstreams may be gone */
    }
    if (!b->order_known) {
        struct shard_query sq;
        struct gateway_board__query *sd;
        if (b->order_asking || (sd = malloc(sizeof *sd)) == NULL) {
            return;
        }
        sd->region = -1;
        memset(&sq, 0, sizeof sq);
        sq.type = SHARD_Q_BOARD_GET;
        sq.board_id = lr_str_of(b->id);
        sq.now_ms = 1;
        b->order_asking = 1;
        if (gateway_board__ask(b, 0, &sq, sd) != 0) {
            b->order_asking = 0;
        }
        return;
    }
    for (unsigned i = 0; i < g->nregions; i++) {
        if (b->part[i]->l.state == GL_NONE) {
            gateway_board__seed_region(b, i);
        }
    }
}

/* ---- tops --------------------------------------------------------------------------------- */

/* The first GATEWAY_BOARD__TOP of the merge of the regions' lists (only @only's when
 * @only >= 0). */
static void gateway_board__merge(const struct gateway_board *b, int only,
                                 struct gateway_board__top *out)
{
    unsigned at[ROUTER_MAX_REGIONS] = {0};
    out->n = 0;
    out->sent = 0;
    while (out->n < GATEWAY_BOARD__TOP) {
        int best = -1;
        for (unsigned i = 0; i < b->g->nregions; i++) {
            if ((only >= 0 && (int)i != only) || at[i] >= b->part[i]->l.n) {
                continue;
            }
            if (best < 0 || gateway_board__key_cmp(&b->part[i]->l.v[at[i]],
                                                   &b->part[best]->l.v[at[best]]) < 0) {
                best = (int)i;
            }
        }
        if (best < 0) {
            break;
        }
        out->v[out->n++] = b->part[best]->l.v[at[best]++];
    }
}

static int gateway_board__top_same(const struct gateway_board__top *x,
                                   const struct gateway_board__top *y)
{
    if (x->n != y->n) {
        return 0;
    }
    for (unsigned i = 0; i < x->n; i++) {
        if (!gateway_board__entry_same(&x->v[i], &y->v[i])) {
            return 0;
        }
    }
    return 1;
}

/* Send @top of @b's @scope to the topic's clients, or to @only. */
static void gateway_board__send_top(struct gateway_board *b, int scope,
                                    const struct gateway_board__top *top,
                                    struct gateway_client *only)
{
    struct gateway *g = b->g;
    char name[sizeof((struct gateway__topic *)0)->name], sc[80];
    if (scope < 0) {
        snprintf(name, sizeof name, "board:%s", b->id);
        snprintf(sc, sizeof sc, "global");
    } else {
        snprintf(name, sizeof name, "board:%s:region:%s", b->id, g->region[scope]);
        snprintf(sc, sizeof sc, "region:%s", g->region[scope]);
    }
    struct gateway__topic *t = strmap_get(&g->topics, name, strlen(name));
    if (only == NULL && (t == NULL || t->n == 0)) {
        return;
    }
    json_t *arr = json_array();
    for (unsigned i = 0; arr && i < top->n; i++) {
        char at[40];
        const struct gateway_board__entry *e = &top->v[i];
        timefmt_rfc3339(e->t, at);
        /* API.md's board entry, field for field; the metadata is the stored JSON text. */
        json_t *jname = e->has_name ? json_stringn(e->name, e->namelen) : json_null();
        json_t *meta = e->metalen ? json_loadb(e->meta, e->metalen, JSON_DECODE_ANY, NULL) : NULL;
        json_array_append_new(
            arr, json_pack("{s:I,s:s#,s:o,s:s,s:I,s:I,s:o,s:s}", "rank", (json_int_t)(i + 1),
                           "player_id", e->id, (int)e->idlen, "name", jname ? jname : json_null(),
                           "region", g->region[e->region], "score", (json_int_t)e->score,
                           "subscore", (json_int_t)e->subscore, "metadata",
                           meta ? meta : json_null(), "updated_at", at));
    }
    json_t *j = arr ? json_pack("{s:s,s:s,s:s,s:o}", "type", "leaderboard.changed", "board_id",
                                b->id, "scope", sc, "top", arr)
                    : NULL;
    struct gateway_msg *m = gateway_msg_json(j);
    json_decref(j);
    if (m && only) {
        gateway__client_send(only, m);
    } else if (m) {
        gateway__publish(g, t, m);
    }
    if (m) {
        gateway_msg_unref(m);
    }
}

/* Send @top to @b's @scope when it is the scope's first or differs from what was sent. */
static void gateway_board__offer(struct gateway_board *b, int scope, struct gateway_board__top *top)
{
    struct gateway_board__top *sent = scope < 0 ? &b->sent_global : &b->part[scope]->sent;
    if (!sent->sent || !gateway_board__top_same(top, sent)) {
        *sent = *top;
        sent->sent = 1;
        gateway_board__send_top(b, scope, sent, NULL);
    }
}

/* Send what changed in @b's tops since the last flush. Each scope goes by what it needs: a
 * region's top by that region's list alone, so it is sent once that region is seeded (its
 * first, which even an empty list makes) and then only when it changed, whatever the other
 * regions do; the global top needs every region seeded. */
static void gateway_board__flush(struct gateway_board *b)
{
    struct gateway *g = b->g;
    struct gateway_board__top top;
    int all = 1, waiting = 0;
    for (unsigned i = 0; i < g->nregions; i++) {
        if (b->part[i]->l.state != GL_READY) {
            all = 0;
            waiting |= b->part[i]->dirty || !b->part[i]->sent.sent;
            continue;
        }
        if (b->part[i]->sent.sent && !b->part[i]->dirty) {
            continue;
        }
        b->part[i]->dirty = 0;
        gateway_board__merge(b, (int)i, &top);
        gateway_board__offer(b, (int)i, &top);
    }
    if (all) {
        gateway_board__merge(b, -1, &top);
        gateway_board__offer(b, -1, &top);
    }
    b->dirty = waiting || !all;
}

/* 1 when @b's @scope can be computed: its region seeded (every region for the global top). */
static int gateway_board__scope_ready(const struct gateway_board *b, int scope)
{
    for (unsigned i = 0; i < b->g->nregions; i++) {
        if ((scope < 0 || (int)i == scope) && b->part[i]->l.state != GL_READY) {
            return 0;
        }
    }
    return 1;
}

void gateway_board__greet(struct gateway_board *b, int scope, struct gateway_client *cl)
{
    struct gateway_board__top *sent = scope < 0 ? &b->sent_global : &b->part[scope]->sent;
    struct gateway_board__top now;
    if (!sent->sent) {
        return; /* the scope's first top is on its way to every subscriber, this one included */
    }
    if (gateway_board__scope_ready(b, scope)) {
        gateway_board__merge(b, scope, &now);
        if (!gateway_board__top_same(&now, sent)) {
            /* The lists moved since the last flush (an event came in since): the top the others
             * hold is stale, and the newcomer would get it right after a write it may have
             * waited for. The next flush sends the new top to the whole scope, the newcomer
             * included; forcing it (as a scope's first) means it goes even if the lists
             * come back to the old top by then, so the newcomer is greeted once either way. */
            sent->sent = 0;
            b->dirty = 1;
            if (scope >= 0) {
                b->part[scope]->dirty = 1;
            }
            return;
        }
    }
    /* The others hold the top already sent: the newcomer gets the same, alone. */
    gateway_board__send_top(b, scope, sent, cl);
}

void gateway_board__tick(struct gateway *g, uint64_t now)
{
    size_t pos = 0;
    struct strmap_slot *sl;
    while ((sl = strmap_next(&g->boards, &pos)) != NULL) {
        struct gateway_board *b = sl->val;
        if (now >= b->retry_at) {
            /* regions whose seed failed, or a board that did not exist yet */
            gateway_board__seed(b);
        }
        if (b->dirty && now - b->flushed_at >= GATEWAY_BOARD__FLUSH_MS) {
            b->flushed_at = now;
            gateway_board__flush(b);
        }
    }
}

int gateway_board__add_region(struct gateway *g)
{
    unsigned i = g->nregions;
    size_t pos = 0;
    struct strmap_slot *sl;
    while ((sl = strmap_next(&g->boards, &pos)) != NULL) {
        struct gateway_board *b = sl->val;
        if (b->part[i] == NULL && (b->part[i] = calloc(1, sizeof *b->part[i])) == NULL) {
            return LR_ENOMEM; /* the parts made stay, unused until the region is added */
        }
        b->dirty = 1; /* the global top waits for the new list; the tick seeds it (a flush
                         that finds nothing to send, should the add fail, is harmless) */
    }
    return 0;
}

/* ---- lifetime ----------------------------------------------------------------------------- */

struct gateway_board *gateway_board__hold(struct gateway *g, const char *id, size_t len)
{
    struct gateway_board *b = strmap_get(&g->boards, id, len);
    if (b) {
        b->refs++;
        return b;
    }
    b = calloc(1, sizeof *b);
    if (b == NULL) {
        return NULL;
    }
    b->g = g;
    int failed = 0;
    for (unsigned i = 0; i < g->nregions; i++) {
        failed |= (b->part[i] = calloc(1, sizeof *b->part[i])) == NULL;
    }
    if (failed || strmap_put(&g->boards, id, len, b) != 0) {
        gateway_board__free(b);
        return NULL;
    }
    memcpy(b->id, id, len);
    b->gen = ++g->board_gen;
    b->refs = 1;
    gateway_board__seed(b);
    return b;
}

void gateway_board__release(struct gateway_board *b)
{
    if (--b->refs == 0) {
        strmap_del(&b->g->boards, b->id, strlen(b->id));
        gateway_board__free(b);
    }
}

void gateway_board__free_all(struct gateway *g)
{
    size_t pos = 0;
    struct strmap_slot *sl;
    while ((sl = strmap_next(&g->boards, &pos)) != NULL) {
        gateway_board__free(sl->val);
    }
}
