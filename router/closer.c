/* router/closer.c — see closer.h. One close at a time, as a chain of phases; each phase sends
 * its calls at once (to meta, or to every region) and the last answer runs the next phase. Any
 * failure ends the attempt and the board is tried again a moment later from phase 1, which is
 * safe because every phase is safe to repeat. */
#include "closer.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../lib/err.h"
#include "../lib/log.h"
#include "../meta/meta.h"
#include "../proto/mpjson.h"
#include "../proto/proto.h"
#include "../shard/cmd.h"
#include "../shard/shard.h"
#include "../shard/timefmt.h"
#include "router_int.h"

#define CLOSER__META ROUTER_MAX_REGIONS /* meta's slot in the answer arrays */
#define CLOSER__SLOTS (ROUTER_MAX_REGIONS + 1)
#define CLOSER__RETRY_MS 300
#define CLOSER__CATALOG_MS 1000

struct closer__band {
    int64_t from, to;
    char reward[VALID_NAME_MAX * 4 + 1];
};

/* A board with cycles, or a tournament (closed once, as cycle 0, at its end). */
struct closer__board {
    char id[VALID_ID_MAX + 1];
    int tournament;
    int64_t end_ms; /* a tournament's end_at */
    int64_t reset_s;
    int desc;
    uint32_t top;
    uint32_t nbands;
    struct closer__band band[CMD_PRIZES_MAX];
    int64_t done_through;  /* every cycle up to it is closed and granted here; -1: none yet */
    int64_t announce_from; /* cycles from this one on are announced to this router's clients */
    uint64_t retry_at;     /* loop time (ms) before which the board is not tried again */
};

/* X(NAME): the phases of one close, in order (closer.h numbers them 1 to 5). */
#define CLOSER_PHASES(X)                                                                           \
    X(CHECK)  /* meta: is there a record already? */                                               \
    X(CUT)    /* regions: a no-op write, stamped now */                                            \
    X(CLOCK)  /* regions: has every applied stamp passed the boundary? */                          \
    X(TOPS)   /* regions: the cycle's top */                                                       \
    X(RECORD) /* meta: close(b, n, record), first wins */                                          \
    X(GRANT)  /* regions: the rewards of the record */

enum closer__phase {
#define CLOSER__PENUM(NAME) CLOSER_P_##NAME,
    CLOSER_PHASES(CLOSER__PENUM)
#undef CLOSER__PENUM
};

struct closer {
    uv_loop_t *loop;
    struct upstream *meta;
    struct upstream *up[ROUTER_MAX_REGIONS];
    char region[ROUTER_MAX_REGIONS][65];
    unsigned n;     /* the regions the close under way covers (each step the same ones) */
    unsigned known; /* the regions known: n catches up when the next close starts */
    struct gateway *gw;
    unsigned timeout_ms;
    struct logger *log;
    uv_timer_t timer;
    struct closer__board *boards;
    unsigned nboards;
    uint64_t catalog_after; /* meta's catalog read up to this version */
    uint64_t catalog_at;    /* loop time of the last catalog read */
    int catalog_busy;
    /* the close under way */
    int busy;
    enum closer__phase phase;
    struct closer__board *b;
    int64_t cycle, boundary_ms;
    unsigned pending;
    int code[CLOSER__SLOTS];
    msgpack_sbuffer ans[CLOSER__SLOTS];
    msgpack_sbuffer args;
    json_t *record; /* the record being written or found */
    /* lifecycle */
    unsigned inflight;
    int closing, timer_closed;
    void (*done)(void *data);
    void *done_data;
    uint64_t closes, grants;
};

struct closer__call {
    struct closer *c;
    unsigned slot;
    int catalog; /* a catalog read, not a phase's call */
};

static void closer__step(struct closer *c);
static void closer__catalog_read(struct closer *c);

static int64_t closer__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void closer__maybe_done(struct closer *c)
{
    if (!c->closing || !c->timer_closed || c->inflight > 0) {
        return;
    }
    void (*done)(void *) = c->done;
    void *data = c->done_data;
    for (unsigned i = 0; i < CLOSER__SLOTS; i++) {
        msgpack_sbuffer_destroy(&c->ans[i]);
    }
    msgpack_sbuffer_destroy(&c->args);
    json_decref(c->record);
    free(c->boards);
    free(c);
    if (done) {
        done(data);
    }
}

/* ---- calls ----------------------------------------------------------------------------------- */

static void closer__answered(void *data, int code, const msgpack_object *payload)
{
    struct closer__call *k = data;
    struct closer *c = k->c;
    unsigned slot = k->slot;
    int catalog = k->catalog;
    free(k);
    c->inflight--;
    if (c->closing) {
        closer__maybe_done(c);
        return;
    }
    c->code[slot] = code;
    msgpack_sbuffer_clear(&c->ans[slot]);
    if (payload) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &c->ans[slot], msgpack_sbuffer_write);
        msgpack_pack_object(&pk, *payload);
    }
    if (catalog) {
        closer__catalog_read(c);
    } else if (--c->pending == 0) {
        closer__step(c);
    }
}

/* Call @op with c->args on @slot (a region, or CLOSER__META). @return 0 or LR_ENOMEM. */
static int closer__call(struct closer *c, unsigned slot, int op, int catalog)
{
    struct closer__call *k = malloc(sizeof *k);
    struct upstream *u = slot == CLOSER__META ? c->meta : c->up[slot];
    if (k == NULL) {
        return LR_ENOMEM;
    }
    *k = (struct closer__call){c, slot, catalog};
    c->code[slot] = LR_EUNAVAILABLE;
    int rv = upstream_call(u, op, 1, c->args.size ? c->args.data : NULL, c->args.size,
                           c->timeout_ms, closer__answered, k);
    if (rv != 0) {
        free(k);
        return rv;
    }
    c->inflight++;
    if (!catalog) {
        c->pending++;
    }
    return 0;
}

static msgpack_packer closer__args(struct closer *c)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&c->args);
    msgpack_packer_init(&pk, &c->args, msgpack_sbuffer_write);
    return pk;
}

/* The answer in @slot unpacked into @up (destroy it): its root, or NULL. */
static const msgpack_object *closer__answer(struct closer *c, unsigned slot, msgpack_unpacked *up)
{
    msgpack_unpacked_init(up);
    if (c->code[slot] != 0 || c->ans[slot].size == 0 ||
        proto_unpack(c->ans[slot].data, c->ans[slot].size, up) != 0) {
        return NULL;
    }
    return &up->data;
}

/* ---- the boards, from meta's catalog log ----------------------------------------------------- */

static struct closer__board *closer__board(struct closer *c, struct lr_str id, int create)
{
    for (unsigned i = 0; i < c->nboards; i++) {
        if (strlen(c->boards[i].id) == id.len && memcmp(c->boards[i].id, id.p, id.len) == 0) {
            return &c->boards[i];
        }
    }
    if (!create || c->nboards == CLOSER_MAX_BOARDS) {
        return NULL;
    }
    struct closer__board *b = &c->boards[c->nboards++];
    memset(b, 0, sizeof *b);
    snprintf(b->id, sizeof b->id, "%.*s", (int)id.len, id.p);
    b->done_through = -1;
    return b;
}

/* A tournament put read from meta's log: its end is closed once, as cycle 0, with its prizes
 * (API.md, "Tournaments"). The record keeps the final standings: at least the top 10, and as
 * deep as the last prize. */
static void closer__learn_tournament(struct closer *c, const struct cmd_tournament_put *tp)
{
    struct closer__board *b = closer__board(c, tp->tournament_id, 1);
    if (b == NULL) {
        LOG(c->log, LOG_WARN, "closer: more than %d boards with cycles: tournament %.*s not closed",
            CLOSER_MAX_BOARDS, (int)tp->tournament_id.len, tp->tournament_id.p);
        return;
    }
    b->tournament = 1;
    b->end_ms = tp->end_ms;
    b->desc = tp->order == CMD_ORDER_DESC;
    b->top = 10;
    b->nbands = tp->prizes.n;
    for (uint32_t i = 0; i < tp->prizes.n; i++) {
        b->band[i].from = tp->prizes.items[i].rank_from;
        b->band[i].to = tp->prizes.items[i].rank_to;
        snprintf(b->band[i].reward, sizeof b->band[i].reward, "%.*s",
                 (int)tp->prizes.items[i].reward.len, tp->prizes.items[i].reward.p);
        if (b->band[i].to > (int64_t)b->top) {
            b->top = b->band[i].to > 1000 ? 1000 : (uint32_t)b->band[i].to;
        }
    }
    /* Announced if it ends while this router runs. */
    b->announce_from = closer__now_ms() < tp->end_ms ? 0 : 1;
}

/* A board put read from meta's log: follow its cycles, or stop when it has none. */
static void closer__learn(struct closer *c, const struct cmd_board_put *bp)
{
    struct closer__board *b = closer__board(c, bp->board_id, bp->reset_period_s > 0);
    if (b == NULL) {
        if (bp->reset_period_s > 0) {
            LOG(c->log, LOG_WARN, "closer: more than %d boards with cycles: %.*s not closed",
                CLOSER_MAX_BOARDS, (int)bp->board_id.len, bp->board_id.p);
        }
        return;
    }
    /* Apply the regions' own rules (shard/apply_catalog.c): meta records every put, but the
     * regions refuse a board put on a tournament's id and a change of a board's order or
     * period, so the closer must not follow such a put either. */
    if (b->tournament || (b->reset_s > 0 && (b->reset_s != bp->reset_period_s ||
                                             b->desc != (bp->order == CMD_ORDER_DESC)))) {
        return;
    }
    if (b->reset_s != bp->reset_period_s) {
        int64_t now_cycle = closer__now_ms() / 1000 / (bp->reset_period_s ? bp->reset_period_s : 1);
        /* A new period restarts the count: cycles are numbers of the new period. */
        b->done_through = now_cycle - 1 - CLOSER_LOOKBACK;
        b->announce_from = now_cycle;
    }
    b->reset_s = bp->reset_period_s;
    b->desc = bp->order == CMD_ORDER_DESC;
    b->top = (uint32_t)bp->snapshot_top;
    b->nbands = bp->rewards.n;
    for (uint32_t i = 0; i < bp->rewards.n; i++) {
        b->band[i].from = bp->rewards.items[i].rank_from;
        b->band[i].to = bp->rewards.items[i].rank_to;
        snprintf(b->band[i].reward, sizeof b->band[i].reward, "%.*s",
                 (int)bp->rewards.items[i].reward.len, bp->rewards.items[i].reward.p);
    }
}

/* The answer of a catalog read. It uses meta's answer slot, which no close uses meanwhile
 * (closer__tick runs one or the other). When meta has more, the next tick reads on. */
static void closer__catalog_read(struct closer *c)
{
    msgpack_unpacked up, body;
    const msgpack_object *o = closer__answer(c, CLOSER__META, &up);
    const msgpack_object *chs = o ? proto_map_get(o, "changes") : NULL;
    const msgpack_object *more = o ? proto_map_get(o, "more") : NULL;
    char errmsg[LR_ERRMSG_SIZE];
    c->catalog_busy = 0;
    if (chs == NULL || chs->type != MSGPACK_OBJECT_ARRAY) {
        msgpack_unpacked_destroy(&up);
        return; /* meta unavailable: the next read tries again */
    }
    for (uint32_t i = 0; i < chs->via.array.size; i++) {
        const msgpack_object *ch = &chs->via.array.ptr[i];
        const msgpack_object *bo = proto_map_get(ch, "body");
        int64_t v = 0;
        struct cmd cmd;
        if (proto_obj_i64(proto_map_get(ch, "version"), &v) != 0 || bo == NULL ||
            bo->type != MSGPACK_OBJECT_BIN) {
            continue;
        }
        msgpack_unpacked_init(&body);
        if (proto_unpack(bo->via.bin.ptr, bo->via.bin.size, &body) == 0 &&
            cmd_decode(&body.data, &cmd, errmsg) == 0) {
            if (cmd.type == CMD_BOARD_PUT) {
                closer__learn(c, &cmd.u.board_put);
            } else if (cmd.type == CMD_TOURNAMENT_PUT) {
                closer__learn_tournament(c, &cmd.u.tournament_put);
            }
        }
        msgpack_unpacked_destroy(&body);
        c->catalog_after = v > 0 && (uint64_t)v > c->catalog_after ? (uint64_t)v : c->catalog_after;
    }
    int again = more && more->type == MSGPACK_OBJECT_BOOLEAN && more->via.boolean;
    msgpack_unpacked_destroy(&up);
    if (again) {
        c->catalog_at = 0;
    }
}

static void closer__catalog_start(struct closer *c)
{
    struct meta_query q;
    memset(&q, 0, sizeof q);
    q.type = META_Q_CATALOG_SINCE;
    q.after = c->catalog_after;
    msgpack_packer pk = closer__args(c);
    meta_query_encode(&pk, &q, 0);
    if (closer__call(c, CLOSER__META, PROTO_OP_QUERY, 1) == 0) {
        c->catalog_busy = 1;
    }
}

/* ---- one close ------------------------------------------------------------------------------- */

static void closer__end(struct closer *c, int ok, const char *why)
{
    struct closer__board *b = c->b;
    if (ok) {
        b->done_through = c->cycle;
        c->closes++;
    } else {
        b->retry_at = uv_now(c->loop) + CLOSER__RETRY_MS;
        LOG(c->log, LOG_DEBUG, "closer: board %s cycle %lld: %s; retrying", b->id,
            (long long)c->cycle, why);
    }
    json_decref(c->record);
    c->record = NULL;
    c->busy = 0;
}

/* Send the phase's calls: @op with c->args to meta (@regions 0) or to every region. */
static void closer__send(struct closer *c, enum closer__phase phase, int op, int regions)
{
    c->phase = phase;
    c->pending = 1; /* held while sending: no answer runs the next phase early */
    int failed = 0;
    if (!regions) {
        failed = closer__call(c, CLOSER__META, op, 0) != 0;
    }
    for (unsigned i = 0; regions && i < c->n; i++) {
        failed |= closer__call(c, i, op, 0) != 0;
    }
    if (failed) {
        c->code[CLOSER__META] = LR_ENOMEM;
    }
    if (--c->pending == 0) {
        closer__step(c);
    }
}

static int closer__all_ok(const struct closer *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        if (c->code[i] != 0) {
            return 0;
        }
    }
    return c->code[CLOSER__META] != LR_ENOMEM;
}

/* Phase 2: a no-op write to every region, stamped now by its leader. */
static void closer__cut(struct closer *c)
{
    struct cmd noop;
    memset(&noop, 0, sizeof noop);
    noop.type = CMD_CATALOG_MARK; /* through 0: never moves a mark; only its stamp matters */
    msgpack_packer pk = closer__args(c);
    msgpack_pack_array(&pk, 1);
    cmd_encode(&pk, &noop);
    c->code[CLOSER__META] = 0;
    closer__send(c, CLOSER_P_CUT, PROTO_OP_SUBMIT, 1);
}

static void closer__tops(struct closer *c)
{
    struct shard_query q;
    memset(&q, 0, sizeof q);
    q.type = SHARD_Q_TOP;
    q.board_id = lr_str_of(c->b->id);
    /* A tournament's board takes scores only inside its window: its alltime is the final
     * standing. */
    q.window = c->b->tournament ? TIMEFMT_ALLTIME : TIMEFMT_CYCLE;
    q.has_period = !c->b->tournament;
    q.period = c->cycle;
    q.limit = c->b->top ? c->b->top : 1;
    q.now_ms = closer__now_ms();
    msgpack_packer pk = closer__args(c);
    proto_query_encode(&pk, &q, 0);
    closer__send(c, CLOSER_P_TOPS, PROTO_OP_QUERY, 1);
}

/* The record of the cycle from the regions' tops: the exact global top (the same merge as
 * GET /v1/boards/{id}/top, under shard/rankkey.h) and the rewards of its rank bands. Every
 * closer that builds it from the frozen cycle computes the same record. */
static json_t *closer__build(struct closer *c)
{
    msgpack_unpacked up[ROUTER_MAX_REGIONS];
    struct router__entries all = {NULL, 0, 0};
    json_t *rec = NULL;
    unsigned r;
    for (r = 0; r < c->n; r++) {
        const msgpack_object *o = closer__answer(c, r, &up[r]);
        const msgpack_object *es = o ? proto_map_get(o, "entries") : NULL;
        if (es == NULL || es->type != MSGPACK_OBJECT_ARRAY) {
            r++;
            goto out;
        }
        for (uint32_t k = 0; k < es->via.array.size; k++) {
            if (all.n == all.cap) {
                size_t cap = all.cap ? all.cap * 2 : 64;
                struct router__entry *nv = realloc(all.v, cap * sizeof *nv);
                if (nv == NULL) {
                    r++;
                    goto out;
                }
                all.v = nv;
                all.cap = cap;
            }
            if (router__entry_key(&es->via.array.ptr[k], c->b->desc, &all.v[all.n]) != 0) {
                r++;
                goto out;
            }
            all.n++;
        }
    }
    router__entries_sort(&all);
    rec = json_object();
    json_t *entries = json_array(), *rewards = json_array();
    size_t take = all.n < c->b->top ? all.n : c->b->top;
    for (size_t i = 0; i < take; i++) {
        /* Lean entries (not the region's whole entry: no name, no metadata) keep a record of
         * 1000 entries within meta's MCMD_BODY_MAX. */
        json_t *full = mpjson_from(all.v[i].o), *e = json_object();
        json_int_t rank = (json_int_t)(i + 1);
        static const char *const keep[] = {"player_id", "region", "score", "subscore",
                                           "updated_at"};
        json_object_set_new(e, "rank", json_integer(rank));
        for (size_t f = 0; f < sizeof keep / sizeof keep[0]; f++) {
            json_t *v = json_object_get(full, keep[f]);
            if (v) {
                json_object_set(e, keep[f], v);
            }
        }
        json_decref(full);
        json_array_append_new(entries, e);
        for (uint32_t k = 0; k < c->b->nbands; k++) {
            if (rank >= c->b->band[k].from && rank <= c->b->band[k].to) {
                json_array_append_new(
                    rewards,
                    json_pack("{s:s,s:I,s:s,s:O}", "player_id", all.v[i].id, "rank", rank, "reward",
                              c->b->band[k].reward, "region", json_object_get(e, "region")));
                break;
            }
        }
    }
    json_object_set_new(rec, "cycle", json_integer((json_int_t)c->cycle));
    json_object_set_new(rec, "entries", entries);
    json_object_set_new(rec, "rewards", rewards);
out:
    for (unsigned i = 0; i < r; i++) {
        msgpack_unpacked_destroy(&up[i]);
    }
    free(all.v);
    return rec;
}

static void closer__record(struct closer *c)
{
    char *text = json_dumps(c->record, JSON_COMPACT);
    struct mcmd m;
    if (text == NULL) {
        closer__end(c, 0, "out of memory");
        return;
    }
    if (strlen(text) > MCMD_BODY_MAX) { /* meta would refuse it on every retry */
        LOG(c->log, LOG_ERROR, "closer: board %s cycle %lld: the record is %zu bytes, above %d",
            c->b->id, (long long)c->cycle, strlen(text), MCMD_BODY_MAX);
        free(text);
        closer__end(c, 0, "record too large");
        return;
    }
    memset(&m, 0, sizeof m);
    m.type = MCMD_CLOSE;
    m.u.close.board_id = lr_str_of(c->b->id);
    m.u.close.cycle = c->cycle;
    m.u.close.record = (struct lr_str){text, (uint32_t)strlen(text)};
    msgpack_packer pk = closer__args(c);
    msgpack_pack_array(&pk, 1);
    mcmd_encode(&pk, &m);
    free(text);
    closer__send(c, CLOSER_P_RECORD, PROTO_OP_SUBMIT, 0);
}

/* Adopt the record in meta's close answer @o ({"record": bin, "closed_at"}): the one that
 * won, which may be another closer's. @return 0, or -1 when it is not a record. */
static int closer__adopt(struct closer *c, const msgpack_object *o)
{
    const msgpack_object *rec = o ? proto_map_get(o, "record") : NULL;
    const msgpack_object *at = o ? proto_map_get(o, "closed_at") : NULL;
    if (rec == NULL || rec->type != MSGPACK_OBJECT_BIN) {
        return -1;
    }
    json_decref(c->record);
    c->record = json_loadb(rec->via.bin.ptr, rec->via.bin.size, 0, NULL);
    if (!json_is_object(c->record)) {
        return -1;
    }
    if (at && at->type == MSGPACK_OBJECT_STR) {
        json_object_set_new(c->record, "closed_at",
                            json_stringn(at->via.str.ptr, at->via.str.size));
    }
    return 0;
}

/* Phase 5: each region gets, in one submit, the grants of its rewarded players. */
static void closer__grant(struct closer *c)
{
    json_t *rewards = json_object_get(c->record, "rewards");
    c->phase = CLOSER_P_GRANT;
    c->pending = 1;
    int failed = 0;
    for (unsigned r = 0; r < c->n; r++) {
        size_t i, count = 0;
        json_t *w;
        c->code[r] = 0;
        json_array_foreach(rewards, i, w)
        {
            const char *reg = json_string_value(json_object_get(w, "region"));
            count += reg && strcmp(reg, c->region[r]) == 0;
        }
        if (count == 0) {
            continue;
        }
        msgpack_packer pk = closer__args(c);
        msgpack_pack_array(&pk, (uint32_t)count);
        json_array_foreach(rewards, i, w)
        {
            const char *reg = json_string_value(json_object_get(w, "region"));
            if (reg == NULL || strcmp(reg, c->region[r]) != 0) {
                continue;
            }
            struct cmd g;
            memset(&g, 0, sizeof g);
            g.type = CMD_REWARD_GRANT;
            g.u.reward_grant.board_id = lr_str_of(c->b->id);
            g.u.reward_grant.cycle = c->cycle;
            g.u.reward_grant.player_id =
                lr_str_of(json_string_value(json_object_get(w, "player_id")));
            g.u.reward_grant.rank = json_integer_value(json_object_get(w, "rank"));
            g.u.reward_grant.reward = lr_str_of(json_string_value(json_object_get(w, "reward")));
            cmd_encode(&pk, &g);
        }
        c->grants += count;
        failed |= closer__call(c, r, PROTO_OP_SUBMIT, 0) != 0;
    }
    c->code[CLOSER__META] = failed ? LR_ENOMEM : 0;
    if (--c->pending == 0) {
        closer__step(c);
    }
}

/* cycle.closed to this router's clients of the board (API.md, WebSocket). */
static void closer__announce(struct closer *c)
{
    if (c->gw == NULL || c->cycle < c->b->announce_from) {
        return; /* a cycle that ended before this router ran: its clients were elsewhere */
    }
    json_t *ev =
        json_pack("{s:s,s:s,s:I,s:O,s:O}", "type", "cycle.closed", "board_id", c->b->id, "cycle",
                  (json_int_t)c->cycle, "entries", json_object_get(c->record, "entries"), "rewards",
                  json_object_get(c->record, "rewards"));
    if (ev) {
        gateway_announce(c->gw, c->b->id, ev);
        json_decref(ev);
    }
}

/* The phase's calls have all answered: judge them and send the next phase's. */
static void closer__step(struct closer *c)
{
    msgpack_unpacked up;
    const msgpack_object *o;
    switch (c->phase) {
    case CLOSER_P_CHECK:
        o = closer__answer(c, CLOSER__META, &up);
        if (o && closer__adopt(c, o) == 0) {
            msgpack_unpacked_destroy(&up);
            closer__grant(c);
            return;
        }
        msgpack_unpacked_destroy(&up);
        if (c->code[CLOSER__META] != LR_ENOTFOUND) {
            closer__end(c, 0, "meta unavailable");
            return;
        }
        closer__cut(c);
        return;
    case CLOSER_P_CUT:
        if (!closer__all_ok(c)) {
            closer__end(c, 0, "a region is unavailable for the cut");
            return;
        }
        msgpack_sbuffer_clear(&c->args);
        closer__send(c, CLOSER_P_CLOCK, PROTO_OP_STATUS, 1);
        return;
    case CLOSER_P_CLOCK:
        for (unsigned r = 0; r < c->n; r++) {
            int64_t clock = 0;
            o = closer__answer(c, r, &up);
            int behind = o == NULL || proto_obj_i64(proto_map_get(o, "clock_ms"), &clock) != 0 ||
                         clock < c->boundary_ms;
            msgpack_unpacked_destroy(&up);
            if (behind) {
                closer__end(c, 0, "a region has not passed the cycle's end yet");
                return;
            }
        }
        closer__tops(c);
        return;
    case CLOSER_P_TOPS:
        if (!closer__all_ok(c) || (c->record = closer__build(c)) == NULL) {
            closer__end(c, 0, "a region's top is unavailable");
            return;
        }
        closer__record(c);
        return;
    case CLOSER_P_RECORD: {
        int status = 0, replayed;
        const msgpack_object *res, *body;
        o = closer__answer(c, CLOSER__META, &up);
        res = o ? proto_map_get(o, "results") : NULL;
        int ok = res && res->type == MSGPACK_OBJECT_ARRAY && res->via.array.size == 1 &&
                 rreq__result(&res->via.array.ptr[0], &status, &replayed, &body) == 0 &&
                 (status == 200 || status == 201) && closer__adopt(c, body) == 0;
        msgpack_unpacked_destroy(&up);
        if (!ok) {
            closer__end(c, 0, "meta did not record the close");
            return;
        }
        closer__grant(c);
        return;
    }
    case CLOSER_P_GRANT:
        if (!closer__all_ok(c)) {
            closer__end(c, 0, "a region did not take its grants");
            return;
        }
        closer__announce(c);
        closer__end(c, 1, NULL);
        return;
    }
}

/* Start the close of @b's cycle @cycle. */
static void closer__start(struct closer *c, struct closer__board *b, int64_t cycle)
{
    struct meta_query q;
    c->busy = 1;
    c->n = c->known;
    c->b = b;
    c->cycle = cycle;
    c->boundary_ms = b->tournament ? b->end_ms : (cycle + 1) * b->reset_s * 1000;
    memset(&q, 0, sizeof q);
    q.type = META_Q_CLOSE_GET;
    q.board_id = lr_str_of(b->id);
    q.cycle = cycle;
    msgpack_packer pk = closer__args(c);
    meta_query_encode(&pk, &q, 0);
    closer__send(c, CLOSER_P_CHECK, PROTO_OP_QUERY, 0);
}

static void closer__tick(uv_timer_t *t)
{
    struct closer *c = t->data;
    uint64_t now = uv_now(c->loop);
    if (!c->catalog_busy && !c->busy && now >= c->catalog_at + CLOSER__CATALOG_MS) {
        c->catalog_at = now;
        closer__catalog_start(c);
        return; /* the catalog read and a close share meta's answer slot */
    }
    if (c->busy || c->catalog_busy) {
        return;
    }
    int64_t ms = closer__now_ms();
    for (unsigned i = 0; i < c->nboards; i++) {
        struct closer__board *b = &c->boards[i];
        if (now < b->retry_at) {
            continue;
        }
        if (b->tournament) {
            if (b->done_through < 0 && ms >= b->end_ms) {
                closer__start(c, b, 0);
                return;
            }
            continue;
        }
        if (b->reset_s <= 0) {
            continue;
        }
        int64_t ended = ms / 1000 / b->reset_s - 1; /* the last cycle that has ended */
        if (b->done_through < ended) {
            int64_t first = ended - CLOSER_LOOKBACK + 1;
            closer__start(c, b, b->done_through + 1 > first ? b->done_through + 1 : first);
            return;
        }
    }
}

/* ---- lifecycle ---------------------------------------------------------------------------------
 */

int closer_new(uv_loop_t *loop, struct upstream *meta, struct upstream *const *up,
               const char (*region)[65], unsigned n, struct gateway *gw, unsigned timeout_ms,
               struct logger *log, struct closer **out)
{
    struct closer *c = calloc(1, sizeof *c);
    if (c == NULL || (c->boards = calloc(CLOSER_MAX_BOARDS, sizeof *c->boards)) == NULL) {
        free(c);
        return LR_ENOMEM;
    }
    c->loop = loop;
    c->meta = meta;
    c->n = c->known = n < ROUTER_MAX_REGIONS ? n : ROUTER_MAX_REGIONS;
    for (unsigned i = 0; i < c->n; i++) {
        c->up[i] = up[i];
        snprintf(c->region[i], sizeof c->region[i], "%s", region[i]);
    }
    c->gw = gw;
    c->timeout_ms = timeout_ms;
    c->log = log;
    for (unsigned i = 0; i < CLOSER__SLOTS; i++) {
        msgpack_sbuffer_init(&c->ans[i]);
    }
    msgpack_sbuffer_init(&c->args);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, closer__tick, 0, CLOSER_TICK_MS);
    *out = c;
    return 0;
}

int closer_add_region(struct closer *c, struct upstream *u, const char *region)
{
    unsigned i = c->known;
    if (c->closing || i == ROUTER_MAX_REGIONS) {
        return LR_EINVAL;
    }
    c->up[i] = u;
    snprintf(c->region[i], sizeof c->region[i], "%s", region);
    c->known = i + 1;
    return 0;
}

void closer_counts(const struct closer *c, uint64_t *closes, uint64_t *grants)
{
    *closes = c->closes;
    *grants = c->grants;
}

static void closer__timer_closed(uv_handle_t *h)
{
    struct closer *c = h->data;
    c->timer_closed = 1;
    closer__maybe_done(c);
}

void closer_close(struct closer *c, void (*done)(void *data), void *data)
{
    c->closing = 1;
    c->done = done;
    c->done_data = data;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, closer__timer_closed);
}
