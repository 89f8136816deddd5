/* router/rmodel.c — the router's read model (see rmodel.h; docs/consistency.md).
 *
 * Layout: the model interns every player it has seen as a router-local number (pid), which is
 * what the boards' rank indexes (shard/rankidx.c, the replicas' own index and comparator) store;
 * each held board keeps, per pid, the player's current key (the map a replica keeps in LMDB)
 * and the entry's metadata, and each player its id, region and name. */
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/err.h"
#include "../lib/strmap.h"
#include "../proto/proto.h"
#include "../shard/cursor.h"
#include "../shard/rankidx.h"
#include "../shard/rankkey.h"
#include "../shard/shard.h"
#include "../shard/timefmt.h"
#include "../shard/valid.h"
#include "rmodel.h"
#include "router.h"

#define RMODEL__TICK_MS 10                     /* deadlines, retries of failed rounds */
#define RMODEL__ROUND_RETRY_MS 20              /* after a round that found no leader */
#define RMODEL__SEED_RETRY_MS 1000             /* after a seed that failed */
#define RMODEL__LIVE_RETRY_MS 50               /* a seed waiting for the streams to start */
#define RMODEL__NO_ALLTIME_RETRY_MS 60000      /* after finding a board without an alltime window */
#define RMODEL__SEED_PAGE 1000                 /* entries a seed page asks (SHARD_PAGE_MAX) */
#define RMODEL__PAGES 4                        /* first pages kept encoded per board (by limit) */
#define RMODEL__REPLICAS UPSTREAM_MAX_REPLICAS /* replicas of a region a round asks */
#define RMODEL__ROUNDS 4                       /* rounds of a region in flight at once */

_Static_assert(ROUTER_MAX_REGIONS <= 32, "a wait's region bits are a uint32_t");

struct rmodel__player {
    char *id;   /* owned, NUL-terminated */
    char *name; /* owned; NULL while not known */
    uint16_t namelen;
    uint8_t idlen, region;
};

/* One player's entry on one board. */
struct rmodel__slot {
    int64_t a, b, t; /* the rank key (shard/rankkey.h), folded by the board's order */
    char *meta;      /* owned JSON text of the entry's metadata; NULL: none or not known */
    char *frag;      /* owned: the entry's answer fields but its rank, encoded (rmodel__frag);
                        NULL until a read needs it, and again after every change */
    uint16_t metalen, fraglen;
    uint8_t present, meta_known;
};

/* A score event held while its board seeds (raw, as the event says it). */
struct rmodel__held {
    uint32_t pid;
    int64_t score, subscore, t;
    char *meta; /* owned */
    uint16_t metalen;
    uint8_t meta_known;
};

struct rmodel__page {
    uint32_t limit; /* 0: unused */
    char *body;     /* owned */
    size_t len;
};

enum rmodel__bstate { RB_ORDER, RB_PAGES, RB_CATCHUP, RB_READY, RB_FAILED };

struct rmodel_board {
    struct rmodel *m;
    char id[VALID_ID_MAX + 1];
    size_t idlen;
    enum rmodel__bstate state;
    unsigned gen; /* tells an answer whether the seed it belongs to is still the current one */
    int desc;
    struct rankidx *idx;
    struct rmodel__slot *slot; /* [nslot], indexed by pid */
    uint32_t nslot;
    unsigned paging;   /* regions whose pages are still coming */
    uint64_t retry_at; /* RB_FAILED: when to seed again */
    struct rmodel__held *held;
    size_t nheld, capheld;
    struct rmodel_wait catchup; /* RB_CATCHUP: the streams reaching the regions' commit */
    int catchup_linked;         /* catchup is among the model's waits */
    struct rmodel__page page[RMODEL__PAGES];
    unsigned page_next;
};

/* An answer spliced from pieces jansson encoded (rmodel__out_*): what a rank or friends read
 * sends, built without a jansson tree per request. Reused; @failed after any allocation
 * failure. */
struct rmodel__out {
    char *p;
    size_t n, cap;
    int failed;
};

/* One ReadIndex round: the answers of a region's replicas to one `readindex` each. */
struct rmodel__round {
    uint64_t id; /* 0: never used */
    unsigned asked, answered;
    int decided;
    struct {
        int ok, leader;
        uint64_t term, leader_id, commit;
    } ans[RMODEL__REPLICAS];
};

/* One region's ReadIndex rounds and stream position. */
struct rmodel__region {
    uint64_t applied;    /* the stream's position: every entry up to it is in the model */
    uint64_t next_round; /* the round a wait arriving now joins */
    uint64_t joined;     /* waits that joined next_round */
    uint64_t retry_at;   /* no round starts before this (after one that failed) */
    int live; /* the stream delivered since it (re)started from the present: a seed's pages,
                 read after this, are past the stream's start, so no write falls between */
    struct rmodel__round round[RMODEL__ROUNDS]; /* round id % RMODEL__ROUNDS */
};

struct rmodel {
    uv_loop_t *loop;
    struct upstream *up[ROUTER_MAX_REGIONS];
    unsigned nregions;
    unsigned timeout_ms;
    int all;
    struct strmap hold;   /* ids of the boards to hold when !all */
    struct strmap boards; /* id -> struct rmodel_board */
    unsigned nboards;
    struct strmap ids; /* player id -> (uintptr_t)pid + 1 */
    struct rmodel__player *players;
    uint32_t nplayers, capplayers;
    size_t player_bytes; /* ids, names and metadata held */
    struct rankidx_pool *pool;
    struct rmodel__region reg[ROUTER_MAX_REGIONS];
    struct rmodel_wait *waits; /* every wait not yet fired (doubly linked through next[]) */
    uv_check_t check;
    uv_timer_t tick;
    unsigned handles;
    unsigned pending; /* upstream calls in flight */
    int closing;
    void (*done)(void *data);
    void *done_data;
    struct rmodel_stats st;
    msgpack_sbuffer args;
    struct rmodel__page later; /* the last page after a cursor (rmodel_top) */
    struct rmodel__out out;    /* the last rank or friends answer (rmodel__out_*) */
};

/* An upstream call in flight: what it was for. */
struct rmodel__call {
    struct rmodel *m;
    unsigned region, replica;
    uint64_t round;               /* a round's call */
    char board[VALID_ID_MAX + 1]; /* a seed's call: its board and generation */
    unsigned gen;
};

static void rmodel__seed(struct rmodel_board *b);
static void rmodel__progress(struct rmodel *m, unsigned region);

static uint64_t rmodel__now(const struct rmodel *m)
{
    return uv_now(m->loop);
}

/* ---- players --------------------------------------------------------------------------------- */

static const char *rmodel__id_of(void *ctx, uint32_t pid, size_t *len)
{
    const struct rmodel *m = ctx;
    *len = m->players[pid].idlen;
    return m->players[pid].id;
}

/* The pid of player @id (@len bytes) of @region, interned on first sight: 0 and *@pid, or
 * LR_ENOMEM. A player's region never changes (API.md); the first one seen is kept. */
static int rmodel__intern(struct rmodel *m, const char *id, size_t len, unsigned region,
                          uint32_t *pid)
{
    void *v = strmap_get(&m->ids, id, len);
    if (v != NULL) {
        *pid = (uint32_t)((uintptr_t)v - 1);
        return 0;
    }
    if (len == 0 || len > VALID_ID_MAX || m->nplayers >= RANKKEY_FOREIGN - 1) {
        return LR_EINVAL;
    }
    if (m->nplayers == m->capplayers) {
        uint32_t cap = m->capplayers ? m->capplayers * 2 : 1024;
        struct rmodel__player *np = realloc(m->players, cap * sizeof *np);
        if (np == NULL) {
            return LR_ENOMEM;
        }
        m->players = np;
        m->capplayers = cap;
    }
    struct rmodel__player *p = &m->players[m->nplayers];
    if ((p->id = malloc(len + 1)) == NULL) {
        return LR_ENOMEM;
    }
    memcpy(p->id, id, len);
    p->id[len] = '\0';
    if (strmap_put(&m->ids, id, len, (void *)(uintptr_t)(m->nplayers + 1)) != 0) {
        free(p->id);
        return LR_ENOMEM;
    }
    p->name = NULL;
    p->idlen = (uint8_t)len;
    p->namelen = 0;
    p->region = (uint8_t)region;
    m->player_bytes += len + 1;
    *pid = m->nplayers++;
    return 0;
}

static void rmodel__pages_drop_all(struct rmodel *m);
static void rmodel__frags_drop(struct rmodel *m, uint32_t pid);

/* Remember @pid's name (@o: a str, else the name stays as it was). @only_new: a seed page's
 * name, which may be ahead of the stream: it only fills a name not known yet, so names change
 * only in the stream's order. A change drops every kept page (a name is on each page that
 * shows its player). Out of memory, the name is forgotten: pages that need it then go to the
 * regions. */
static void rmodel__set_name(struct rmodel *m, uint32_t pid, const msgpack_object *o, int only_new)
{
    struct rmodel__player *p = &m->players[pid];
    if (o == NULL || o->type != MSGPACK_OBJECT_STR || o->via.str.size > 4 * VALID_NAME_MAX ||
        (only_new && p->name != NULL)) {
        return;
    }
    if (p->name && p->namelen == o->via.str.size &&
        memcmp(p->name, o->via.str.ptr, o->via.str.size) == 0) {
        return;
    }
    char *n = malloc(o->via.str.size + 1);
    if (n != NULL) {
        memcpy(n, o->via.str.ptr, o->via.str.size);
        n[o->via.str.size] = '\0';
        m->player_bytes += o->via.str.size + 1;
    }
    m->player_bytes -= p->name ? p->namelen + 1u : 0u;
    free(p->name);
    p->name = n;
    p->namelen = n ? (uint16_t)o->via.str.size : 0;
    rmodel__pages_drop_all(m);
    rmodel__frags_drop(m, pid);
}

/* ---- boards: entries ------------------------------------------------------------------------- */

static void rmodel__pages_drop(struct rmodel_board *b, uint64_t from_rank0)
{
    for (unsigned i = 0; i < RMODEL__PAGES; i++) {
        if (b->page[i].limit != 0 && b->page[i].limit > from_rank0) {
            free(b->page[i].body);
            b->page[i].body = NULL;
            b->page[i].limit = 0;
        }
    }
}

static void rmodel__wait_unlink(struct rmodel *m, struct rmodel_wait *w);

static void rmodel__frag_drop(struct rmodel *m, struct rmodel__slot *s)
{
    m->player_bytes -= s->frag ? s->fraglen : 0u;
    free(s->frag);
    s->frag = NULL;
    s->fraglen = 0;
}

/* @pid's name changed: every board's encoded entry of it is stale. */
static void rmodel__frags_drop(struct rmodel *m, uint32_t pid)
{
    size_t pos = 0;
    for (struct strmap_slot *sl; (sl = strmap_next(&m->boards, &pos)) != NULL;) {
        struct rmodel_board *b = sl->val;
        if (pid < b->nslot) {
            rmodel__frag_drop(m, &b->slot[pid]);
        }
    }
}

static void rmodel__pages_drop_all(struct rmodel *m)
{
    size_t pos = 0;
    for (struct strmap_slot *sl; (sl = strmap_next(&m->boards, &pos)) != NULL;) {
        rmodel__pages_drop(sl->val, 0);
    }
}

static void rmodel__board_clear(struct rmodel_board *b)
{
    struct rmodel *m = b->m;
    if (b->catchup_linked) {
        rmodel__wait_unlink(m, &b->catchup);
        b->catchup_linked = 0;
    }
    rankidx_free(b->idx);
    b->idx = NULL;
    for (uint32_t i = 0; i < b->nslot; i++) {
        free(b->slot[i].meta);
        free(b->slot[i].frag);
    }
    free(b->slot);
    b->slot = NULL;
    b->nslot = 0;
    for (size_t i = 0; i < b->nheld; i++) {
        free(b->held[i].meta);
    }
    b->nheld = 0;
    rmodel__pages_drop(b, 0);
}

/* Set @pid's entry on @b to (@score, @subscore, @t) with metadata @meta (@meta_known 0: not
 * known). Whatever the entry was, it is now this key: events and seed pages both name the whole
 * key, so setting one the model already holds changes nothing. @return 0 or LR_ENOMEM. */
static int rmodel__set(struct rmodel_board *b, uint32_t pid, int64_t score, int64_t subscore,
                       int64_t t, const char *meta, size_t metalen, int meta_known)
{
    if (pid >= b->nslot) {
        uint32_t n = b->nslot ? b->nslot : 1024;
        while (n <= pid) {
            n *= 2;
        }
        struct rmodel__slot *ns = realloc(b->slot, n * sizeof *ns);
        if (ns == NULL) {
            return LR_ENOMEM;
        }
        memset(ns + b->nslot, 0, (n - b->nslot) * sizeof *ns);
        b->slot = ns;
        b->nslot = n;
    }
    struct rmodel__slot *s = &b->slot[pid];
    struct rankkey now = {0, 0, 0, pid, 0, NULL};
    rankkey_fold(&now, b->desc, score, subscore, t);
    uint64_t first = UINT64_MAX; /* the first rank the change touches */
    int was = s->present;
    if (was && !meta_known && s->meta_known && s->a == now.a && s->b == now.b && s->t == now.t) {
        return 0; /* the same write again (an event the seed's pages held): nothing changes */
    }
    rmodel__frag_drop(b->m, s);
    if (was) {
        struct rankkey old = {s->a, s->b, s->t, pid, 0, NULL};
        if (b->state == RB_READY) {
            first = rankidx_count_before(b->idx, &old);
        }
        if (rankidx_delete(b->idx, &old) != 0) {
            return LR_ECORRUPT; /* the map and the index disagree: the caller seeds again */
        }
        s->present = 0;
    }
    if (rankidx_insert(b->idx, &now) != 0) {
        return LR_ENOMEM;
    }
    s->present = 1;
    s->a = now.a;
    s->b = now.b;
    s->t = now.t;
    char *nm = NULL;
    if (meta_known && metalen) {
        if ((nm = malloc(metalen)) == NULL) {
            meta_known = 0;
        } else {
            memcpy(nm, meta, metalen);
        }
    }
    b->m->player_bytes -= s->meta ? s->metalen : 0u;
    free(s->meta);
    s->meta = nm;
    s->metalen = nm ? (uint16_t)metalen : 0;
    s->meta_known = (uint8_t)meta_known;
    b->m->player_bytes += s->metalen;
    if (b->state == RB_READY) {
        uint64_t r = rankidx_count_before(b->idx, &now);
        if (!was) {
            r = 0; /* the total every page shows changed */
        }
        rmodel__pages_drop(b, r < first ? r : first);
    }
    return 0;
}

/* Metadata of an entry (@o: bin of JSON text, or nil) into @meta/@len; 0 when not one. */
static int rmodel__meta_of(const msgpack_object *o, const char **meta, size_t *len)
{
    if (o == NULL) {
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NIL) {
        *meta = NULL;
        *len = 0;
        return 1;
    }
    if ((o->type == MSGPACK_OBJECT_BIN || o->type == MSGPACK_OBJECT_STR) &&
        o->via.bin.size <= VALID_METADATA_MAX) {
        *meta = o->via.bin.ptr;
        *len = o->via.bin.size;
        return 1;
    }
    return 0;
}

/* The raw fields of an entry or a score.updated event. @return 0, or -1 when malformed. */
static int rmodel__fields(const msgpack_object *e, const msgpack_object **pid, int64_t *score,
                          int64_t *sub, int64_t *t)
{
    const msgpack_object *ua = proto_map_get(e, "updated_at");
    *pid = proto_map_get(e, "player_id");
    if (*pid == NULL || (*pid)->type != MSGPACK_OBJECT_STR || (*pid)->via.str.size == 0 ||
        (*pid)->via.str.size > VALID_ID_MAX || ua == NULL || ua->type != MSGPACK_OBJECT_STR ||
        proto_obj_i64(proto_map_get(e, "score"), score) != 0 ||
        proto_obj_i64(proto_map_get(e, "subscore"), sub) != 0 ||
        timefmt_parse_rfc3339(ua->via.str.ptr, ua->via.str.size, t) != 0) {
        return -1;
    }
    return 0;
}

/* ---- boards: seeding ------------------------------------------------------------------------- */

/* Forget @b altogether (a board the regions do not have). Calls in flight for it find no
 * board of their id and are dropped. */
static void rmodel__board_drop(struct rmodel_board *b)
{
    struct rmodel *m = b->m;
    rmodel__board_clear(b);
    if (b->state == RB_READY) {
        m->st.boards--;
    }
    strmap_del(&m->boards, b->id, b->idlen);
    m->nboards--;
    free(b->held);
    free(b);
}

static void rmodel__board_fail(struct rmodel_board *b)
{
    rmodel__board_clear(b);
    b->gen++;
    b->state = RB_FAILED;
    b->retry_at = rmodel__now(b->m) + RMODEL__SEED_RETRY_MS;
}

static struct rmodel__call *rmodel__call_new(struct rmodel *m, unsigned region)
{
    struct rmodel__call *c = calloc(1, sizeof *c);
    if (c) {
        c->m = m;
        c->region = region;
    }
    return c;
}

/* The call's board, if its seed is still the current one. */
static struct rmodel_board *rmodel__call_board(const struct rmodel__call *c)
{
    struct rmodel_board *b = strmap_get(&c->m->boards, c->board, strlen(c->board));
    return b && b->gen == c->gen ? b : NULL;
}

static void rmodel__maybe_done(struct rmodel *m);

static void rmodel__catchup_done(void *data, int rv)
{
    struct rmodel_board *b = data;
    b->catchup_linked = 0;
    if (rv != 0 || b->state != RB_CATCHUP) {
        rmodel__board_fail(b);
        return;
    }
    /* The streams now hold everything up to the regions' commit points, which are past every
     * page: the held events, in order, bring each player they name to its latest key. */
    b->state = RB_PAGES; /* rmodel__set leaves the page cache alone until ready */
    for (size_t i = 0; i < b->nheld; i++) {
        const struct rmodel__held *h = &b->held[i];
        if (rmodel__set(b, h->pid, h->score, h->subscore, h->t, h->meta, h->metalen,
                        h->meta_known) != 0) {
            rmodel__board_fail(b);
            return;
        }
    }
    for (size_t i = 0; i < b->nheld; i++) {
        free(b->held[i].meta);
    }
    b->nheld = 0;
    b->state = RB_READY;
    b->m->st.boards++;
}

static void rmodel__page_call(struct rmodel_board *b, unsigned region, const char *cursor);

static void rmodel__page_got(void *data, int code, const msgpack_object *o)
{
    struct rmodel__call *c = data;
    struct rmodel *m = c->m;
    struct rmodel_board *b = m->closing ? NULL : rmodel__call_board(c);
    m->pending--;
    if (b == NULL || b->state != RB_PAGES) {
        goto out;
    }
    const msgpack_object *es = proto_map_get(o, "entries"), *nc = proto_map_get(o, "next_cursor");
    if (code != 0 || es == NULL || es->type != MSGPACK_OBJECT_ARRAY) {
        rmodel__board_fail(b);
        goto out;
    }
    for (uint32_t k = 0; k < es->via.array.size; k++) {
        const msgpack_object *e = &es->via.array.ptr[k], *pid;
        const char *meta = NULL;
        size_t metalen = 0;
        int64_t score, sub, t;
        uint32_t p;
        int known;
        if (rmodel__fields(e, &pid, &score, &sub, &t) != 0 ||
            rmodel__intern(m, pid->via.str.ptr, pid->via.str.size, c->region, &p) != 0) {
            rmodel__board_fail(b);
            goto out;
        }
        known = rmodel__meta_of(proto_map_get(e, "metadata"), &meta, &metalen);
        rmodel__set_name(m, p, proto_map_get(e, "name"), 1);
        if (rmodel__set(b, p, score, sub, t, meta, metalen, known) != 0) {
            rmodel__board_fail(b);
            goto out;
        }
    }
    if (nc && nc->type != MSGPACK_OBJECT_NIL &&
        (nc->type != MSGPACK_OBJECT_STR || nc->via.str.size >= CURSOR_MAX ||
         es->via.array.size == 0)) {
        rmodel__board_fail(b); /* a page that cannot be followed: the seed would be short */
        goto out;
    }
    if (nc && nc->type == MSGPACK_OBJECT_STR) {
        char cur[CURSOR_MAX];
        memcpy(cur, nc->via.str.ptr, nc->via.str.size);
        cur[nc->via.str.size] = '\0';
        rmodel__page_call(b, c->region, cur);
        goto out;
    }
    if (--b->paging == 0) {
        /* Every page is in. Wait for the streams to reach the regions' commit points (past
         * every page, each a leader read), then apply what was held. */
        b->state = RB_CATCHUP;
        if (rmodel_wait(m, &b->catchup, (1u << m->nregions) - 1, rmodel__catchup_done, b) != 0) {
            rmodel__board_fail(b);
        } else {
            b->catchup_linked = 1;
        }
    }
out:
    free(c);
    rmodel__maybe_done(m);
}

/* Send @sq (its board is @b's; a leader read) to @region for @b's current seed, answered in
 * @cb; on any failure the seed fails. */
static void rmodel__board_query(struct rmodel_board *b, unsigned region, struct shard_query *sq,
                                upstream_cb cb)
{
    struct rmodel *m = b->m;
    msgpack_packer pk;
    struct rmodel__call *c = rmodel__call_new(m, region);
    if (c == NULL) {
        rmodel__board_fail(b);
        return;
    }
    snprintf(c->board, sizeof c->board, "%s", b->id);
    c->gen = b->gen;
    sq->board_id = (struct lr_str){b->id, (uint32_t)b->idlen};
    sq->now_ms = 1; /* alltime has one period, and a board's order none: the clock is moot */
    msgpack_sbuffer_clear(&m->args);
    msgpack_packer_init(&pk, &m->args, msgpack_sbuffer_write);
    proto_query_encode(&pk, sq, 0);
    if (upstream_call(m->up[region], PROTO_OP_QUERY, 1, m->args.data, m->args.size, m->timeout_ms,
                      cb, c) != 0) {
        free(c);
        rmodel__board_fail(b);
        return;
    }
    m->pending++;
}

static void rmodel__page_call(struct rmodel_board *b, unsigned region, const char *cursor)
{
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_TOP;
    sq.window = TIMEFMT_ALLTIME;
    sq.limit = RMODEL__SEED_PAGE;
    sq.cursor = lr_str_of(cursor);
    rmodel__board_query(b, region, &sq, rmodel__page_got);
}

/* Does a board's "windows" list hold "alltime"? */
static int rmodel__has_alltime(const msgpack_object *w)
{
    for (uint32_t i = 0; w && w->type == MSGPACK_OBJECT_ARRAY && i < w->via.array.size; i++) {
        const msgpack_object *e = &w->via.array.ptr[i];
        if (e->type == MSGPACK_OBJECT_STR && e->via.str.size == 7 &&
            memcmp(e->via.str.ptr, "alltime", 7) == 0) {
            return 1;
        }
    }
    return 0;
}

static void rmodel__order_got(void *data, int code, const msgpack_object *o)
{
    struct rmodel__call *c = data;
    struct rmodel *m = c->m;
    struct rmodel_board *b = m->closing ? NULL : rmodel__call_board(c);
    m->pending--;
    if (b == NULL || b->state != RB_ORDER) {
        goto out;
    }
    const msgpack_object *ord = proto_map_get(o, "order");
    if (code == LR_ENOTFOUND) {
        rmodel__board_drop(b); /* no such board: it must not hold a slot */
        goto out;
    }
    if (code != 0 || ord == NULL || ord->type != MSGPACK_OBJECT_STR) {
        rmodel__board_fail(b);
        goto out;
    }
    b->desc = !(ord->via.str.size == 3 && memcmp(ord->via.str.ptr, "asc", 3) == 0);
    if (!rmodel__has_alltime(proto_map_get(o, "windows"))) {
        /* Nothing to hold (its events name another window): ask again much later, in case the
         * id is put again as another board. */
        rmodel__board_fail(b);
        b->retry_at = rmodel__now(m) + RMODEL__NO_ALLTIME_RETRY_MS;
        goto out;
    }
    struct rankidx_names names = {m, rmodel__id_of};
    if (rankidx_new(&names, m->pool, &b->idx) != 0) {
        rmodel__board_fail(b);
        goto out;
    }
    b->state = RB_PAGES;
    b->paging = m->nregions;
    for (unsigned r = 0; r < m->nregions && b->state == RB_PAGES; r++) {
        rmodel__page_call(b, r, "");
    }
out:
    free(c);
    rmodel__maybe_done(m);
}

/* Seed @b from scratch: its order, then every region's pages; events are held from now on. */
static void rmodel__seed(struct rmodel_board *b)
{
    struct rmodel *m = b->m;
    struct shard_query sq;
    rmodel__board_clear(b);
    b->gen++;
    for (unsigned r = 0; r < m->nregions; r++) {
        if (!m->reg[r].live) { /* its stream has not started: wait for it (the tick retries) */
            b->state = RB_FAILED;
            b->retry_at = rmodel__now(m) + RMODEL__LIVE_RETRY_MS;
            return;
        }
    }
    b->state = RB_ORDER;
    m->st.seeds++;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_BOARD_GET;
    rmodel__board_query(b, 0, &sq, rmodel__order_got);
}

struct rmodel_board *rmodel_board(struct rmodel *m, const char *id, size_t len)
{
    struct rmodel_board *b = strmap_get(&m->boards, id, len);
    if (b != NULL) {
        return b->state == RB_READY ? b : NULL;
    }
    if (m->closing || len == 0 || len > VALID_ID_MAX || m->nboards >= RMODEL_BOARDS_MAX ||
        (!m->all && strmap_get(&m->hold, id, len) == NULL)) {
        return NULL;
    }
    if ((b = calloc(1, sizeof *b)) == NULL) {
        return NULL;
    }
    b->m = m;
    memcpy(b->id, id, len);
    b->idlen = len;
    if (strmap_put(&m->boards, id, len, b) != 0) {
        free(b);
        return NULL;
    }
    m->nboards++;
    rmodel__seed(b);
    return NULL;
}

/* ---- the streams ----------------------------------------------------------------------------- */

static void rmodel__event(struct rmodel *m, unsigned region, const msgpack_object *ev)
{
    const msgpack_object *type = proto_map_get(ev, "type"), *bid, *pid;
    int64_t score, sub, t;
    uint32_t p;
    if (type == NULL || type->type != MSGPACK_OBJECT_STR) {
        return;
    }
    if (type->via.str.size == 14 && memcmp(type->via.str.ptr, "player.updated", 14) == 0) {
        /* Interned even when no board holds the player yet: a seed page read before this
         * rename must not set the old name afterwards (pages only fill unknown names). */
        pid = proto_map_get(ev, "player_id");
        if (pid && pid->type == MSGPACK_OBJECT_STR &&
            rmodel__intern(m, pid->via.str.ptr, pid->via.str.size, region, &p) == 0) {
            rmodel__set_name(m, p, proto_map_get(ev, "name"), 0);
        }
        return;
    }
    if (type->via.str.size != 13 || memcmp(type->via.str.ptr, "score.updated", 13) != 0) {
        return;
    }
    bid = proto_map_get(ev, "board_id");
    if (bid == NULL || bid->type != MSGPACK_OBJECT_STR) {
        return;
    }
    struct rmodel_board *b = strmap_get(&m->boards, bid->via.str.ptr, bid->via.str.size);
    if (b == NULL || b->state == RB_FAILED) {
        return;
    }
    const char *meta = NULL;
    size_t metalen = 0;
    if (rmodel__fields(ev, &pid, &score, &sub, &t) != 0 ||
        rmodel__intern(m, pid->via.str.ptr, pid->via.str.size, region, &p) != 0) {
        rmodel__board_fail(b); /* an event it cannot apply: the board is no longer exact */
        return;
    }
    int known = rmodel__meta_of(proto_map_get(ev, "metadata"), &meta, &metalen);
    rmodel__set_name(m, p, proto_map_get(ev, "name"), 0);
    if (b->state == RB_READY) {
        if (rmodel__set(b, p, score, sub, t, meta, metalen, known) != 0) {
            rmodel__board_fail(b);
        }
        return;
    }
    if (b->nheld == b->capheld) {
        size_t cap = b->capheld ? b->capheld * 2 : 64;
        struct rmodel__held *nh = realloc(b->held, cap * sizeof *nh);
        if (nh == NULL) {
            rmodel__board_fail(b);
            return;
        }
        b->held = nh;
        b->capheld = cap;
    }
    struct rmodel__held *h = &b->held[b->nheld];
    h->meta = NULL;
    if (known && metalen && (h->meta = malloc(metalen)) == NULL) {
        rmodel__board_fail(b);
        return;
    }
    if (h->meta) {
        memcpy(h->meta, meta, metalen);
    }
    h->metalen = (uint16_t)metalen;
    h->meta_known = (uint8_t)known;
    h->pid = p;
    h->score = score;
    h->subscore = sub;
    h->t = t;
    b->nheld++;
}

void rmodel_stream(struct rmodel *m, unsigned region, const struct evstream_batch *bt)
{
    if (m->closing || region >= m->nregions) {
        return;
    }
    if (bt->what == EVSTREAM_RESYNC) {
        /* Events were missed: no board is exact any more. Seed them all again, once the
         * stream has started again from the present (rmodel__seed waits for that). */
        m->reg[region].live = 0;
        size_t pos = 0;
        for (struct strmap_slot *sl; (sl = strmap_next(&m->boards, &pos)) != NULL;) {
            struct rmodel_board *b = sl->val;
            if (b->state == RB_READY) {
                m->st.boards--;
            }
            rmodel__seed(b);
        }
        return;
    }
    if (bt->what == EVSTREAM_EVENTS || bt->what == EVSTREAM_APPLIED) {
        m->reg[region].live = 1;
    }
    if (bt->what == EVSTREAM_EVENTS) {
        for (uint32_t i = 0; i < bt->events->via.array.size; i++) {
            if (bt->events->via.array.ptr[i].type == MSGPACK_OBJECT_MAP) {
                rmodel__event(m, region, &bt->events->via.array.ptr[i]);
            }
        }
    }
    if ((bt->what == EVSTREAM_EVENTS || bt->what == EVSTREAM_APPLIED) &&
        bt->index > m->reg[region].applied) {
        m->reg[region].applied = bt->index;
        rmodel__progress(m, region);
    }
}

/* ---- waits and ReadIndex rounds -------------------------------------------------------------- */

static void rmodel__wait_unlink(struct rmodel *m, struct rmodel_wait *w)
{
    if (w->next[1]) {
        w->next[1]->next[0] = w->next[0];
    } else {
        m->waits = w->next[0];
    }
    if (w->next[0]) {
        w->next[0]->next[1] = w->next[1];
    }
    w->next[0] = w->next[1] = NULL;
}

/* Fire every wait that is done (@region made progress, or UINT32_MAX: any). A callback may
 * add waits (at the head) or free a board: the walk restarts after each one. */
static void rmodel__fire(struct rmodel *m, uint64_t now)
{
    for (int again = 1; again;) {
        again = 0;
        for (struct rmodel_wait *w = m->waits; w; w = w->next[0]) {
            int rv = 0;
            for (unsigned r = 0; r < m->nregions; r++) {
                if ((w->todo & (1u << r)) && w->target[r] != 0 &&
                    m->reg[r].applied >= w->target[r]) {
                    w->todo &= ~(1u << r);
                }
            }
            if (w->todo != 0 && now < w->deadline && !m->closing) {
                continue;
            }
            if (w->todo != 0) {
                rv = LR_EUNAVAILABLE;
            }
            rmodel__wait_unlink(m, w);
            w->cb(w->data, rv);
            again = 1;
            break;
        }
    }
}

static void rmodel__progress(struct rmodel *m, unsigned region)
{
    (void)region;
    rmodel__fire(m, rmodel__now(m));
}

int rmodel_wait(struct rmodel *m, struct rmodel_wait *w, uint32_t regions, rmodel_wait_cb cb,
                void *data)
{
    if (regions == 0 || (regions >> m->nregions) != 0 || m->closing) {
        return LR_EINVAL;
    }
    memset(w, 0, sizeof *w);
    w->cb = cb;
    w->data = data;
    w->todo = regions;
    w->deadline = rmodel__now(m) + m->timeout_ms;
    for (unsigned r = 0; r < m->nregions; r++) {
        if (regions & (1u << r)) {
            /* The next round starts after this call (at the end of the loop turn), so its
             * leader's commit index covers every write acknowledged before the read came. */
            w->round[r] = m->reg[r].next_round;
            m->reg[r].joined++;
        }
    }
    w->next[0] = m->waits;
    if (m->waits) {
        m->waits->next[1] = w;
    }
    m->waits = w;
    m->st.waits++;
    return 0;
}

/* Round @round of @region ended: with the index @commit to reach, or failed (@ok 0), when its
 * waits that no later round has answered join the next round. A later round serves the waits
 * of an earlier one too: it started after them. */
static void rmodel__round_end(struct rmodel *m, unsigned region, uint64_t round, int ok,
                              uint64_t commit)
{
    struct rmodel__region *g = &m->reg[region];
    g->round[round % RMODEL__ROUNDS].decided = 1;
    for (struct rmodel_wait *w = m->waits; w; w = w->next[0]) {
        if (!(w->todo & (1u << region)) || w->target[region] != 0 || w->round[region] > round) {
            continue;
        }
        if (ok) {
            w->target[region] = commit ? commit : 1;
        } else if (w->round[region] != g->next_round) {
            w->round[region] = g->next_round;
            g->joined++;
        }
    }
    if (!ok) {
        g->retry_at = rmodel__now(m) + RMODEL__ROUND_RETRY_MS;
    }
    rmodel__fire(m, rmodel__now(m));
}

/* Decide round @rd of @region from the answers so far: the leader in term T says so (and has
 * applied an entry of T), and a majority of the replicas, the leader included, are in T under
 * that leader. No other leader can then have acknowledged a write that the leader's commit
 * index does not cover. */
static void rmodel__round_decide(struct rmodel *m, unsigned region, struct rmodel__round *rd)
{
    for (unsigned i = 0; i < rd->asked; i++) {
        if (!rd->ans[i].ok || !rd->ans[i].leader) {
            continue;
        }
        unsigned votes = 0;
        for (unsigned k = 0; k < rd->asked; k++) {
            votes += rd->ans[k].ok && rd->ans[k].term == rd->ans[i].term &&
                     (k == i || rd->ans[k].leader_id == rd->ans[i].leader_id);
        }
        if (votes * 2 > rd->asked) {
            rmodel__round_end(m, region, rd->id, 1, rd->ans[i].commit);
            return;
        }
    }
    if (rd->answered == rd->asked) {
        rmodel__round_end(m, region, rd->id, 0, 0);
    }
}

static void rmodel__round_got(void *data, int code, const msgpack_object *o)
{
    struct rmodel__call *c = data;
    struct rmodel *m = c->m;
    struct rmodel__round *rd = &m->reg[c->region].round[c->round % RMODEL__ROUNDS];
    m->pending--;
    if (!m->closing && rd->id == c->round && !rd->decided) {
        int64_t term, lid, commit;
        const msgpack_object *ld = proto_map_get(o, "leader");
        rd->answered++;
        if (code == 0 && proto_obj_i64(proto_map_get(o, "term"), &term) == 0 &&
            proto_obj_i64(proto_map_get(o, "leader_id"), &lid) == 0 &&
            proto_obj_i64(proto_map_get(o, "commit_index"), &commit) == 0 && ld &&
            ld->type == MSGPACK_OBJECT_BOOLEAN) {
            rd->ans[c->replica].ok = 1;
            rd->ans[c->replica].leader = ld->via.boolean;
            rd->ans[c->replica].term = (uint64_t)term;
            rd->ans[c->replica].leader_id = (uint64_t)lid;
            rd->ans[c->replica].commit = (uint64_t)commit;
        }
        rmodel__round_decide(m, c->region, rd);
    }
    free(c);
    rmodel__maybe_done(m);
}

/* Start the next round of @region: `readindex` to every replica. */
static void rmodel__round_start(struct rmodel *m, unsigned region)
{
    struct rmodel__region *g = &m->reg[region];
    unsigned n = upstream_replicas(m->up[region]);
    uint64_t round = g->next_round++;
    struct rmodel__round *rd = &g->round[round % RMODEL__ROUNDS];
    memset(rd, 0, sizeof *rd);
    rd->id = round;
    rd->asked = n < RMODEL__REPLICAS ? n : RMODEL__REPLICAS;
    g->joined = 0;
    m->st.rounds++;
    for (unsigned i = 0; i < rd->asked; i++) {
        struct rmodel__call *c = rmodel__call_new(m, region);
        if (c != NULL) {
            c->replica = i;
            c->round = round;
        }
        if (c == NULL || upstream_call_replica(m->up[region], (int)i, PROTO_OP_READINDEX, 0, NULL,
                                               0, m->timeout_ms, rmodel__round_got, c) != 0) {
            free(c);
            rd->answered++; /* counts as an answer that confirms nothing */
            continue;
        }
        m->pending++;
    }
    if (rd->answered == rd->asked) {
        rmodel__round_decide(m, region, rd);
    }
}

/* The end of every loop turn: one round per region for the reads that arrived during it, even
 * while earlier rounds are in flight (up to RMODEL__ROUNDS), so a read waits for one round,
 * not for the rest of another one first. */
static void rmodel__on_check(uv_check_t *h)
{
    struct rmodel *m = h->data;
    uint64_t now = rmodel__now(m);
    if (m->closing) {
        return;
    }
    for (unsigned r = 0; r < m->nregions; r++) {
        struct rmodel__region *g = &m->reg[r];
        const struct rmodel__round *slot = &g->round[g->next_round % RMODEL__ROUNDS];
        if (g->joined > 0 && (slot->id == 0 || slot->decided) && now >= g->retry_at) {
            rmodel__round_start(m, r);
        }
    }
}

static void rmodel__on_tick(uv_timer_t *t)
{
    struct rmodel *m = t->data;
    uint64_t now = rmodel__now(m);
    if (m->closing) {
        return;
    }
    rmodel__fire(m, now); /* deadlines */
    rmodel__on_check(&m->check);
    size_t pos = 0;
    for (struct strmap_slot *sl; (sl = strmap_next(&m->boards, &pos)) != NULL;) {
        struct rmodel_board *b = sl->val;
        if (b->state == RB_FAILED && now >= b->retry_at) {
            rmodel__seed(b); /* may not touch the map: the walk goes on */
        }
    }
}

/* ---- answers --------------------------------------------------------------------------------- */

/* One entry of a board answer, as a region's page has it (query.c), with its global rank. */
static json_t *rmodel__entry_json(const struct rmodel *m, const struct rmodel_board *b,
                                  const struct rankkey *k, uint64_t rank)
{
    const struct rmodel__player *p = &m->players[k->pid];
    const struct rmodel__slot *s = &b->slot[k->pid];
    char ua[TIMEFMT_RFC3339_LEN + 1];
    if (p->name == NULL || !s->meta_known) {
        return NULL;
    }
    json_t *meta = s->meta ? json_loadb(s->meta, s->metalen, JSON_DECODE_ANY, NULL) : json_null();
    if (meta == NULL) {
        return NULL; /* metadata that does not parse: the regions answer (and say so) */
    }
    timefmt_rfc3339(k->t, ua);
    return json_pack("{s:I,s:s#,s:s#,s:s,s:I,s:I,s:o,s:s}", "rank", (json_int_t)rank, "player_id",
                     p->id, (int)p->idlen, "name", p->name, (int)p->namelen, "region",
                     upstream_region(m->up[p->region]), "score",
                     (json_int_t)rankkey_score(k, b->desc), "subscore",
                     (json_int_t)rankkey_subscore(k, b->desc), "metadata",
                     meta ? meta : json_null(), "updated_at", ua);
}

/* Entries of ranks [@from, @from + @n) (0-based) into a new array; NULL when one is not held
 * in full (or out of memory). */
static json_t *rmodel__range_json(const struct rmodel *m, const struct rmodel_board *b,
                                  uint64_t from, uint64_t n, struct rankkey *last)
{
    struct rankidx_iter it;
    struct rankkey k;
    json_t *arr = json_array();
    if (arr == NULL) {
        return NULL;
    }
    if (n == 0) {
        return arr;
    }
    if (rankidx_seek(b->idx, from, &it) != 0) {
        json_decref(arr);
        return NULL;
    }
    for (uint64_t i = 0; i < n && rankidx_next(&it, &k); i++) {
        json_t *e = rmodel__entry_json(m, b, &k, from + i + 1);
        if (e == NULL || json_array_append_new(arr, e) != 0) {
            json_decref(arr);
            return NULL;
        }
        if (last) {
            *last = k;
        }
    }
    return arr;
}

static json_t *rmodel__head(const struct rmodel_board *b)
{
    return json_pack("{s:s#,s:s,s:s,s:s}", "board_id", b->id, (int)b->idlen, "scope", "global",
                     "window", "alltime", "period", "alltime");
}

int rmodel_top(struct rmodel *m, struct rmodel_board *b, uint32_t limit, const char *cursor,
               const char **body, size_t *len, char *err, size_t errcap)
{
    struct rankkey ck, last;
    char idbuf[VALID_ID_MAX + 1];
    uint64_t total = rankidx_count(b->idx), from = 0;
    if (cursor[0] == '\0') {
        for (unsigned i = 0; i < RMODEL__PAGES; i++) {
            if (b->page[i].limit == limit) {
                m->st.page_hits++;
                *body = b->page[i].body;
                *len = b->page[i].len;
                return 0;
            }
        }
    } else {
        if (cursor_decode_key(cursor, strlen(cursor), &ck, idbuf) != 0) {
            snprintf(err, errcap, "cursor is not valid");
            return LR_EINVAL;
        }
        from = rankidx_count_before(b->idx, &ck) + (uint64_t)rankidx_contains(b->idx, &ck);
    }
    uint64_t n = from >= total ? 0 : (total - from < limit ? total - from : limit);
    json_t *entries = rmodel__range_json(m, b, from, n, &last);
    if (entries == NULL) {
        return LR_ENOTFOUND;
    }
    json_t *j = rmodel__head(b), *next = json_null();
    if (from + n < total && n > 0) {
        char cur[CURSOR_MAX];
        const struct rmodel__player *p = &m->players[last.pid];
        cursor_encode_key(&last, p->id, p->idlen, cur);
        next = json_string(cur);
    }
    json_object_set_new(j, "entries", entries);
    json_object_set_new(j, "next_cursor", next);
    json_object_set_new(j, "total", json_integer((json_int_t)total));
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (text == NULL) {
        return LR_ENOMEM;
    }
    /* Keep it: a first page stays valid until a change enters it (rmodel__set); a later page
     * is handed out once, from the model's scratch page, which the next such call frees. */
    struct rmodel__page *pg = &m->later;
    if (cursor[0] == '\0') {
        pg = &b->page[b->page_next];
        b->page_next = (b->page_next + 1) % RMODEL__PAGES;
    }
    free(pg->body);
    pg->body = text;
    pg->len = strlen(text);
    pg->limit = cursor[0] == '\0' ? limit : 0;
    *body = pg->body;
    *len = pg->len;
    return 0;
}

/* ---- answers spliced from encoded pieces ------------------------------------------------------
 * A rank or friends answer is the same few fields around entries that change rarely: each
 * entry's fields but its rank are encoded once by jansson and kept (rmodel__frag) until the
 * entry or its player's name changes; an answer is then those pieces, jansson's encoding of
 * the request's own strings and numbers, and the punctuation between them. Every string goes
 * through jansson; only integers are printed here. */

/* Room for @n more bytes (and a NUL): 0, or -1 with @o failed. */
static int rmodel__out_room(struct rmodel__out *o, size_t n)
{
    if (o->failed) {
        return -1;
    }
    if (o->n + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 4096;
        while (o->n + n + 1 > cap) {
            cap *= 2;
        }
        char *np = realloc(o->p, cap);
        if (np == NULL) {
            o->failed = 1;
            return -1;
        }
        o->p = np;
        o->cap = cap;
    }
    return 0;
}

static void rmodel__out_raw(struct rmodel__out *o, const char *s, size_t n)
{
    if (rmodel__out_room(o, n) == 0) {
        memcpy(o->p + o->n, s, n);
        o->n += n;
    }
}

static void rmodel__out_lit(struct rmodel__out *o, const char *s)
{
    rmodel__out_raw(o, s, strlen(s));
}

static void rmodel__out_int(struct rmodel__out *o, int64_t v)
{
    char d[24];
    int n = snprintf(d, sizeof d, "%" PRId64, v);
    rmodel__out_raw(o, d, (size_t)n);
}

/* Append jansson's compact encoding of @v (owned; NULL marks the answer failed). */
static void rmodel__out_json(struct rmodel__out *o, json_t *v)
{
    size_t n = v ? json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) : 0;
    if (v == NULL || n == 0) {
        o->failed = 1;
    } else if (rmodel__out_room(o, n) == 0) {
        o->n += json_dumpb(v, o->p + o->n, n, JSON_COMPACT | JSON_ENCODE_ANY);
    }
    json_decref(v);
}

/* The entry of @k with its fields but its rank, encoded and kept in its slot; NULL when its
 * name or metadata is not held (or out of memory). */
static const char *rmodel__frag(struct rmodel *m, struct rmodel_board *b, const struct rankkey *k,
                                size_t *len)
{
    struct rmodel__slot *s = &b->slot[k->pid];
    if (s->frag == NULL) {
        json_t *e = rmodel__entry_json(m, b, k, 1);
        char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
        json_decref(e);
        /* {"rank":1,<the rest>}: keep <the rest>. */
        const char *rest = text ? strchr(text, ',') : NULL;
        size_t n = rest ? strlen(rest + 1) : 0;
        if (rest == NULL || n < 2 || n > UINT16_MAX) {
            free(text);
            return NULL;
        }
        memmove(text, rest + 1, n - 1); /* without the closing brace */
        s->frag = text;
        s->fraglen = (uint16_t)(n - 1);
        m->player_bytes += s->fraglen;
    }
    *len = s->fraglen;
    return s->frag;
}

/* {"rank":@rank,<frag>}: 0, or -1 when the entry is not held in full. */
static int rmodel__out_entry(struct rmodel *m, struct rmodel_board *b, const struct rankkey *k,
                             uint64_t rank)
{
    size_t n;
    const char *f = rmodel__frag(m, b, k, &n);
    if (f == NULL) {
        return -1;
    }
    rmodel__out_lit(&m->out, "{\"rank\":");
    rmodel__out_int(&m->out, (int64_t)rank);
    rmodel__out_lit(&m->out, ",");
    rmodel__out_raw(&m->out, f, n);
    rmodel__out_lit(&m->out, "}");
    return 0;
}

/* {"board_id":..,"scope":"global","window":"alltime","period":"alltime" (open: the caller
 * adds its fields and the closing brace). */
static void rmodel__out_head(struct rmodel *m, const struct rmodel_board *b)
{
    m->out.n = 0;
    m->out.failed = 0;
    rmodel__out_lit(&m->out, "{\"board_id\":");
    rmodel__out_json(&m->out, json_stringn(b->id, b->idlen));
    rmodel__out_lit(&m->out, ",\"scope\":\"global\",\"window\":\"alltime\",\"period\":\"alltime\"");
}

/* The answer built: 0 and the bytes, or the error that stopped it. */
static int rmodel__out_done(struct rmodel *m, int held, const char **body, size_t *len)
{
    if (!held) {
        return LR_EUNAVAILABLE;
    }
    if (m->out.failed) {
        return LR_ENOMEM;
    }
    *body = m->out.p;
    *len = m->out.n;
    return 0;
}

int rmodel_rank(struct rmodel *m, struct rmodel_board *b, const char *player, uint32_t around,
                const char **body, size_t *len, char *err, size_t errcap)
{
    void *v = strmap_get(&m->ids, player, strlen(player));
    uint32_t pid = v ? (uint32_t)((uintptr_t)v - 1) : 0;
    if (v == NULL || pid >= b->nslot || !b->slot[pid].present) {
        snprintf(err, errcap, "player %s has no score on board %s", player, b->id);
        return LR_ENOTFOUND;
    }
    const struct rmodel__slot *s = &b->slot[pid];
    struct rankkey k = {s->a, s->b, s->t, pid, 0, NULL}, e;
    struct rankidx_iter it;
    uint64_t r0 = rankidx_count_before(b->idx, &k), total = rankidx_count(b->idx);
    uint64_t from = r0 > around ? r0 - around : 0;
    uint64_t to = r0 + around + 1 < total ? r0 + around + 1 : total;
    char ua[TIMEFMT_RFC3339_LEN + 1];
    double pct = total ? round(10000.0 * (double)(total - (r0 + 1)) / (double)total) / 100.0 : 0.0;
    int held = rankidx_seek(b->idx, from, &it) == 0;
    timefmt_rfc3339(k.t, ua);
    rmodel__out_head(m, b);
    rmodel__out_lit(&m->out, ",\"player_id\":");
    rmodel__out_json(&m->out, json_string(player));
    rmodel__out_lit(&m->out, ",\"rank\":");
    rmodel__out_int(&m->out, (int64_t)(r0 + 1));
    rmodel__out_lit(&m->out, ",\"score\":");
    rmodel__out_int(&m->out, rankkey_score(&k, b->desc));
    rmodel__out_lit(&m->out, ",\"subscore\":");
    rmodel__out_int(&m->out, rankkey_subscore(&k, b->desc));
    rmodel__out_lit(&m->out, ",\"updated_at\":");
    rmodel__out_json(&m->out, json_string(ua));
    rmodel__out_lit(&m->out, ",\"total\":");
    rmodel__out_int(&m->out, (int64_t)total);
    rmodel__out_lit(&m->out, ",\"percentile\":");
    rmodel__out_json(&m->out, json_real(pct));
    rmodel__out_lit(&m->out, ",\"around\":[");
    for (uint64_t r = from; held && r < to; r++) {
        if (r > from) {
            rmodel__out_lit(&m->out, ",");
        }
        held = rankidx_next(&it, &e) && rmodel__out_entry(m, b, &e, r + 1) == 0;
    }
    rmodel__out_lit(&m->out, "]}");
    return rmodel__out_done(m, held, body, len);
}

static int rmodel__cmp_key(const void *x, const void *y)
{
    const struct rankkey *a = x, *b = y;
    int c = rankkey_cmp3(a->a, a->b, a->t, b->a, b->b, b->t);
    return c ? c : rankkey_cmp_id(a->id, a->idlen, b->id, b->idlen);
}

int rmodel_friends(struct rmodel *m, struct rmodel_board *b, const char *ids, uint32_t n,
                   const char **body, size_t *len)
{
    struct rankkey k[RMODEL_FRIENDS_MAX];
    uint32_t nk = 0;
    const char *p = ids;
    for (uint32_t i = 0; i < n && i < RMODEL_FRIENDS_MAX; i++, p += strlen(p) + 1) {
        void *v = strmap_get(&m->ids, p, strlen(p));
        uint32_t pid = v ? (uint32_t)((uintptr_t)v - 1) : 0;
        if (v == NULL || pid >= b->nslot || !b->slot[pid].present) {
            continue; /* no score: left out (API.md) */
        }
        int dup = 0;
        for (uint32_t j = 0; j < nk; j++) {
            dup |= k[j].pid == pid;
        }
        if (!dup) {
            const struct rmodel__slot *s = &b->slot[pid];
            k[nk++] =
                (struct rankkey){s->a, s->b, s->t, pid, m->players[pid].idlen, m->players[pid].id};
        }
    }
    qsort(k, nk, sizeof k[0], rmodel__cmp_key);
    int held = 1;
    rmodel__out_head(m, b);
    rmodel__out_lit(&m->out, ",\"entries\":[");
    for (uint32_t j = 0; held && j < nk; j++) {
        if (j > 0) {
            rmodel__out_lit(&m->out, ",");
        }
        held = rmodel__out_entry(m, b, &k[j], rankidx_count_before(b->idx, &k[j]) + 1) == 0;
    }
    rmodel__out_lit(&m->out, "],\"total\":");
    rmodel__out_int(&m->out, (int64_t)rankidx_count(b->idx));
    rmodel__out_lit(&m->out, "}");
    return rmodel__out_done(m, held, body, len);
}

/* ---- life ------------------------------------------------------------------------------------ */

void rmodel_stats_get(const struct rmodel *m, struct rmodel_stats *st)
{
    *st = m->st;
    st->entries = 0;
    st->index_bytes = 0;
    st->total_bytes = m->player_bytes + m->capplayers * sizeof *m->players;
    size_t pos = 0;
    for (struct strmap_slot *sl; (sl = strmap_next(&m->boards, &pos)) != NULL;) {
        const struct rmodel_board *b = sl->val;
        if (b->idx) {
            st->entries += rankidx_count(b->idx);
            st->index_bytes += rankidx_memory(b->idx);
        }
        st->total_bytes += b->nslot * sizeof *b->slot + sizeof *b;
    }
    st->total_bytes += st->index_bytes;
}

static void rmodel__free(struct rmodel *m)
{
    size_t pos = 0;
    for (struct strmap_slot *sl; (sl = strmap_next(&m->boards, &pos)) != NULL;) {
        struct rmodel_board *b = sl->val;
        rmodel__board_clear(b);
        free(b->held);
        free(b);
    }
    strmap_free(&m->boards);
    strmap_free(&m->hold);
    strmap_free(&m->ids);
    for (uint32_t i = 0; i < m->nplayers; i++) {
        free(m->players[i].id);
        free(m->players[i].name);
    }
    free(m->players);
    rankidx_pool_free(m->pool);
    msgpack_sbuffer_destroy(&m->args);
    free(m->later.body);
    free(m->out.p);
    void (*done)(void *) = m->done;
    void *data = m->done_data;
    free(m);
    if (done) {
        done(data);
    }
}

static void rmodel__maybe_done(struct rmodel *m)
{
    if (m->closing && m->pending == 0 && m->handles == 0) {
        rmodel__free(m);
    }
}

static void rmodel__handle_closed(uv_handle_t *h)
{
    struct rmodel *m = h->data;
    m->handles--;
    rmodel__maybe_done(m);
}

void rmodel_close(struct rmodel *m, void (*done)(void *data), void *data)
{
    m->closing = 1;
    m->done = done;
    m->done_data = data;
    rmodel__fire(m, UINT64_MAX); /* every wait fails now */
    uv_close((uv_handle_t *)&m->check, rmodel__handle_closed);
    uv_close((uv_handle_t *)&m->tick, rmodel__handle_closed);
}

int rmodel_add_region(struct rmodel *m, struct upstream *u)
{
    unsigned r = m->nregions;
    if (m->closing || r == ROUTER_MAX_REGIONS) {
        return LR_EINVAL;
    }
    m->up[r] = u;
    memset(&m->reg[r], 0, sizeof m->reg[r]);
    m->reg[r].next_round = 1;
    m->nregions = r + 1;
    /* Every held board lacks the region's entries: each is seeded again, over every region,
     * once the new region's stream is live. Until then its reads go to the regions, as any
     * board's do while it seeds; a page or catchup of the old seed finds its generation gone. */
    size_t pos = 0;
    for (struct strmap_slot *sl; (sl = strmap_next(&m->boards, &pos)) != NULL;) {
        struct rmodel_board *b = sl->val;
        rmodel__board_clear(b);
        b->gen++;
        b->state = RB_FAILED;
        b->retry_at = 0;
    }
    return 0;
}

int rmodel_new(uv_loop_t *loop, struct upstream *const *up, unsigned n,
               const struct rmodel_config *cfg, struct rmodel **out)
{
    int rv = LR_ENOMEM;
    if (n == 0 || n > ROUTER_MAX_REGIONS) {
        return LR_EINVAL;
    }
    struct rmodel *m = calloc(1, sizeof *m);
    if (m == NULL) {
        return LR_ENOMEM;
    }
    m->loop = loop;
    memcpy(m->up, up, n * sizeof *up);
    m->nregions = n;
    m->timeout_ms = cfg->timeout_ms;
    m->all = cfg->all;
    strmap_init(&m->hold);
    strmap_init(&m->boards);
    strmap_init(&m->ids);
    msgpack_sbuffer_init(&m->args);
    for (unsigned r = 0; r < n; r++) {
        m->reg[r].next_round = 1;
    }
    for (unsigned i = 0; i < cfg->n; i++) {
        size_t len = strlen(cfg->boards[i]);
        if (!valid_id(cfg->boards[i], len, VALID_ID_MAX)) {
            rv = LR_EINVAL;
            goto err_after_alloc;
        }
        if (strmap_put(&m->hold, cfg->boards[i], len, m) != 0) {
            goto err_after_alloc;
        }
    }
    if (rankidx_pool_new(&m->pool) != 0) {
        goto err_after_alloc;
    }
    uv_check_init(loop, &m->check);
    uv_timer_init(loop, &m->tick);
    m->check.data = m;
    m->tick.data = m;
    m->handles = 2;
    uv_check_start(&m->check, rmodel__on_check);
    uv_timer_start(&m->tick, rmodel__on_tick, RMODEL__TICK_MS, RMODEL__TICK_MS);
    *out = m;
    return 0;

err_after_alloc:
    strmap_free(&m->hold);
    strmap_free(&m->boards);
    strmap_free(&m->ids);
    msgpack_sbuffer_destroy(&m->args);
    free(m);
    return rv;
}
