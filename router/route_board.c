/* router/route_board.c — boards: PUT and GET /v1/boards/{id}, the top page, and the helpers
 * of every board read (top here, rank and friends in route_rank.c).
 *
 * A board is catalog: a put goes to every region (route_catalog__put) and a get reads region
 * 0. A board read first learns the board's order (desc or asc: which way the total order of
 * docs/ordering.md runs), cached by the router after the first time, then asks its scope:
 * region scope is that one region's answer as it is; global and guild scopes ask every region
 * and merge exactly, because every region orders the same way.
 *
 * A board read's parameters (struct route_board_read, router_int.h) are parsed once into
 * route_data, which every board read starts with: the helpers here see only @q and find them
 * there. */
#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/mpjson.h"
#include "../proto/proto.h"
#include "../shard/cursor.h"
#include "../lib/err.h"
#include "router_int.h"

/* ---- PUT and GET /v1/boards/{id} ----------------------------------------------------------- */

/* Index of @s in @names (@n of them), or -1 (also for NULL). */
static int route_board__pick(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

int route_board__order_op(struct rreq *q, int64_t *order, int64_t *op)
{
    /* In the codes' order (CMD_ORDER_*, CMD_OP_*). */
    static const char *const orders[] = {"desc", "asc"};
    static const char *const ops[] = {"best", "set", "incr", "decr"};
    int o = route_board__pick(json_string_value(json_object_get(q->body, "order")), orders, 2);
    int p = route_board__pick(json_string_value(json_object_get(q->body, "operator")), ops, 4);
    if (o < 0 || p < 0) {
        return rreq__errf(q, LR_EINVAL,
                          "order must be desc or asc; operator best, set, incr or decr");
    }
    *order = o;
    *op = p;
    return 0;
}

/* PUT /v1/boards/{id}: every field checked here, the shard checks them again on apply. */
int route_board_put(struct rreq *q)
{
    static const char *const wins[] = {"alltime", "daily", "weekly", "monthly"};
    struct cmd c;
    json_t *v;
    size_t i;
    int rv;
    memset(&c, 0, sizeof c);
    c.type = CMD_BOARD_PUT;
    c.u.board_put.board_id = q->param[0];
    if ((rv = route_board__order_op(q, &c.u.board_put.order, &c.u.board_put.op)) != 0) {
        return rv;
    }
    c.u.board_put.windows = 1u << TIMEFMT_ALLTIME;
    if ((v = json_object_get(q->body, "windows")) != NULL) {
        json_t *w;
        c.u.board_put.windows = 0;
        if (!json_is_array(v) || json_array_size(v) == 0) {
            return rreq__errf(q, LR_EINVAL, "windows must be a non-empty list");
        }
        json_array_foreach(v, i, w)
        {
            int k = route_board__pick(json_string_value(w), wins, 4);
            if (k < 0) {
                return rreq__errf(q, LR_EINVAL, "windows are alltime, daily, weekly or monthly");
            }
            c.u.board_put.windows |= 1u << k;
        }
    }
    v = json_object_get(q->body, "reset_period_s");
    if (v && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 60)) {
        return rreq__errf(q, LR_EINVAL, "reset_period_s must be null or an integer >= 60");
    }
    c.u.board_put.reset_period_s = v && json_is_integer(v) ? json_integer_value(v) : 0;
    v = json_object_get(q->body, "snapshot_top");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000)) {
        return rreq__errf(q, LR_EINVAL, "snapshot_top must be an integer from 0 to 1000");
    }
    c.u.board_put.snapshot_top = v ? json_integer_value(v) : 10;
    v = json_object_get(q->body, "rewards");
    if (v && !json_is_null(v)) {
        json_t *band;
        if (!json_is_array(v) || json_array_size(v) > CMD_PRIZES_MAX) {
            return rreq__errf(q, LR_EINVAL, "rewards must be a list of at most %d bands",
                              CMD_PRIZES_MAX);
        }
        json_array_foreach(v, i, band)
        {
            json_int_t from, to;
            const char *reward;
            if (json_unpack(band, "{s:I,s:I,s:s}", "rank_from", &from, "rank_to", &to, "reward",
                            &reward) != 0) {
                return rreq__errf(q, LR_EINVAL, "rewards[%zu] needs rank_from, rank_to and reward",
                                  i);
            }
            c.u.board_put.rewards.items[i].rank_from = from;
            c.u.board_put.rewards.items[i].rank_to = to;
            c.u.board_put.rewards.items[i].reward = lr_str_of(reward);
        }
        c.u.board_put.rewards.n = (uint32_t)json_array_size(v);
    }
    v = json_object_get(q->body, "game_id");
    c.u.board_put.game_id = lr_str_of(v && json_is_string(v) ? json_string_value(v) : "");
    /* Omitted or null: 0, which the shard reads as CMD_KEEP_PERIODS_DEFAULT. */
    v = json_object_get(q->body, "keep_periods");
    if (v && !json_is_null(v) &&
        (!json_is_integer(v) || json_integer_value(v) < 1 ||
         json_integer_value(v) > CMD_KEEP_PERIODS_MAX)) {
        return rreq__errf(q, LR_EINVAL, "keep_periods must be an integer from 1 to %d",
                          CMD_KEEP_PERIODS_MAX);
    }
    c.u.board_put.keep_periods = v && json_is_integer(v) ? json_integer_value(v) : 0;
    strmap_put(&q->r->board_order, q->param[0].p, q->param[0].len,
               (void *)(uintptr_t)(c.u.board_put.order == CMD_ORDER_DESC ? 2 : 1));
    return route_catalog__put(q, &c);
}

int route_board_get(struct rreq *q)
{
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_BOARD_GET;
    sq.board_id = q->param[0];
    q->region = 0;
    return rreq__query_region(q, &sq);
}

/* ---- GET /v1/boards/{id}/cycles/{n}: the close record, from the metadata group ----------- */

static int route_board__cycle_got(struct rreq *q)
{
    msgpack_unpacked up;
    const msgpack_object *o, *rec, *at;
    int rv = rreq__answer_ok(q, ROUTER_META, &up, &o);
    if (rv != 0) {
        return rv;
    }
    rec = proto_map_get(o, "record");
    at = proto_map_get(o, "closed_at");
    json_t *j = rec && rec->type == MSGPACK_OBJECT_BIN
                    ? json_loadb(rec->via.bin.ptr, rec->via.bin.size, 0, NULL)
                    : NULL;
    if (!json_is_object(j) || at == NULL || at->type != MSGPACK_OBJECT_STR) {
        json_decref(j);
        msgpack_unpacked_destroy(&up);
        return rreq__errf(q, LR_EINTERNAL, "malformed close record");
    }
    json_object_set_new(j, "closed_at", json_stringn(at->via.str.ptr, at->via.str.size));
    msgpack_unpacked_destroy(&up);
    rreq__reply_json(q, 200, j, NULL);
    return 0;
}

int route_board_cycle(struct rreq *q)
{
    char num[24], *end;
    struct meta_query mq;
    if (q->r->up[ROUTER_META] == NULL) {
        return rreq__errf(q, LR_ENOTFOUND,
                          "this cluster has no metadata group, so no cycle "
                          "is ever closed");
    }
    snprintf(num, sizeof num, "%.*s", (int)q->param[1].len, q->param[1].p);
    long long n = strtoll(num, &end, 10);
    if (q->param[1].len == 0 || q->param[1].len >= sizeof num || *end != '\0' || n < 0) {
        return rreq__errf(q, LR_EINVAL, "the cycle must be a whole number >= 0");
    }
    memset(&mq, 0, sizeof mq);
    mq.type = META_Q_CLOSE_GET;
    mq.board_id = q->param[0];
    mq.cycle = n;
    rreq__args_mquery(q, &mq, 0);
    q->next = route_board__cycle_got;
    return rreq__call(q, ROUTER_META, PROTO_OP_QUERY, 1);
}

/* ---- the helpers of every board read ----------------------------------------------------- */

/* The parameters every board read keeps at the start of its route_data. */
static struct route_board_read *route_board__read(struct rreq *q)
{
    return q->route_data;
}

int route_board__params(struct rreq *q, struct route_board_read *b, int paged)
{
    char *scope = b->scope, *window = b->window, period[40];
    long lim = 100;
    snprintf(scope, sizeof b->scope, "global");
    snprintf(window, sizeof b->window, "alltime");
    if (rreq__query(q, "scope", scope, sizeof b->scope) < 0 ||
        rreq__query(q, "window", window, sizeof b->window) < 0 ||
        timefmt_window_parse(window, strlen(window), &b->w) != 0) {
        return rreq__errf(q, LR_EINVAL, "window must be alltime, daily, weekly, monthly or cycle");
    }
    int hp = rreq__query(q, "period", period, sizeof period);
    if (hp < 0 ||
        (hp == 0 && timefmt_period_parse(b->w, period, strlen(period), &b->period) != 0)) {
        return rreq__errf(q, LR_EINVAL, "period does not name a %s period", window);
    }
    b->has_period = hp == 0;
    if (paged) {
        if (rreq__query_int(q, "limit", 1, 1000, 100, &lim) != 0) {
            return rreq__errf(q, LR_EINVAL, "limit must be 1 to 1000");
        }
        b->limit = (uint32_t)lim;
        if (rreq__query(q, "cursor", b->cursor, sizeof b->cursor) < 0) {
            return rreq__errf(q, LR_EINVAL, "cursor is not valid");
        }
    }
    if (strcmp(scope, "global") != 0 && strncmp(scope, "region:", 7) != 0 &&
        strncmp(scope, "guild:", 6) != 0) {
        return rreq__errf(q, LR_EINVAL, "scope must be global, region:<id> or guild:<id>");
    }
    if (strncmp(scope, "region:", 7) == 0 && router__region_index(q->r, scope + 7) < 0) {
        return rreq__errf(q, LR_EINVAL, "unknown region in scope %s", scope);
    }
    if (strncmp(scope, "guild:", 6) == 0 && !valid_id(scope + 6, strlen(scope + 6), VALID_ID_MAX)) {
        return rreq__errf(q, LR_EINVAL, "guild in scope must be an id");
    }
    return 0;
}

/* Region 0's board answer: the board's order, into the cache and the read. */
static int route_board__order_known(struct rreq *q)
{
    msgpack_unpacked up;
    const msgpack_object *o;
    int rv = rreq__answer_ok(q, 0, &up, &o);
    if (rv != 0) {
        return rv;
    }
    const msgpack_object *ord = proto_map_get(o, "order");
    int desc = !(ord && ord->type == MSGPACK_OBJECT_STR && ord->via.str.size == 3);
    strmap_put(&q->r->board_order, q->param[0].p, q->param[0].len, (void *)(uintptr_t)(desc + 1));
    msgpack_unpacked_destroy(&up);
    route_board__read(q)->desc = desc;
    return q->then(q);
}

int route_board__with_order(struct rreq *q, rreq__step then)
{
    struct shard_query sq;
    void *ord = strmap_get(&q->r->board_order, q->param[0].p, q->param[0].len);
    if (ord) {
        route_board__read(q)->desc = (int)((uintptr_t)ord - 1);
        return then(q);
    }
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_BOARD_GET;
    sq.board_id = q->param[0];
    rreq__args_query(q, &sq, 0);
    q->then = then;
    q->next = route_board__order_known;
    return rreq__call(q, 0, PROTO_OP_QUERY, 1);
}

int route_board__ask_scope(struct rreq *q, rreq__step merge)
{
    const char *scope = route_board__read(q)->scope;
    if (strncmp(scope, "region:", 7) == 0) {
        q->region = router__region_index(q->r, scope + 7);
        q->next = rreq__reply_query;
        return rreq__call(q, (unsigned)q->region, PROTO_OP_QUERY, 1);
    }
    q->next = merge;
    return rreq__call_all(q, PROTO_OP_QUERY, 1);
}

json_t *route_board__head(struct rreq *q, const msgpack_object *any)
{
    const struct route_board_read *b = route_board__read(q);
    json_t *period = mpjson_from(proto_map_get(any, "period"));
    return json_pack("{s:s#,s:s,s:s,s:o}", "board_id", q->param[0].p, (int)q->param[0].len, "scope",
                     b->scope, "window", b->window, "period", period ? period : json_null());
}

int route_board__collect(struct rreq *q, const msgpack_object *list, unsigned region,
                         struct router__entries *es)
{
    int desc = route_board__read(q)->desc;
    if (list == NULL || list->type != MSGPACK_OBJECT_ARRAY) {
        return rreq__errf(q, LR_EINTERNAL, "malformed page from region %s", q->r->region[region]);
    }
    for (uint32_t k = 0; k < list->via.array.size; k++) {
        if (es->n == es->cap) {
            size_t cap = es->cap ? es->cap * 2 : 64;
            struct router__entry *nv = realloc(es->v, cap * sizeof *nv);
            if (nv == NULL) {
                return rreq__errf(q, LR_ENOMEM, "out of memory");
            }
            es->v = nv;
            es->cap = cap;
        }
        if (router__entry_key(&list->via.array.ptr[k], desc, &es->v[es->n]) != 0) {
            return rreq__errf(q, LR_EINTERNAL, "malformed entry from region %s",
                              q->r->region[region]);
        }
        es->n++;
    }
    return 0;
}

/* ---- GET /v1/boards/{id}/top --------------------------------------------------------------- */

/* Merge the regions' pages into the global page: ranks are 1 + the entries of every region
 * before the page + the position in the merge; exact because every region orders the same
 * way (docs/ordering.md). */
static int route_board__top_merge(struct rreq *q)
{
    msgpack_unpacked up[ROUTER_MAX_REGIONS];
    const msgpack_object *o[ROUTER_MAX_REGIONS];
    struct router__entries all = {NULL, 0, 0};
    uint64_t total = 0, offset = 0;
    unsigned limit = route_board__read(q)->limit;
    unsigned nr = q->nregions;
    int rv = rreq__answers(q, up, o);
    if (rv != 0) {
        return rv;
    }
    for (unsigned i = 0; i < nr; i++) {
        int64_t t = 0, off = 0;
        proto_obj_i64(proto_map_get(o[i], "total"), &t);
        proto_obj_i64(proto_map_get(o[i], "offset"), &off);
        total += (uint64_t)t;
        offset += (uint64_t)off;
        if ((rv = route_board__collect(q, proto_map_get(o[i], "entries"), i, &all)) != 0) {
            goto err_after_answers;
        }
    }
    router__entries_sort(&all);
    size_t take = all.n < limit ? all.n : limit;
    json_t *entries = json_array();
    for (size_t k = 0; k < take; k++) {
        json_t *e = mpjson_from(all.v[k].o);
        json_object_set_new(e, "rank", json_integer((json_int_t)(offset + k + 1)));
        json_array_append_new(entries, e);
    }
    json_t *next = json_null();
    if (offset + take < total && take > 0) {
        char cur[CURSOR_MAX];
        cursor_encode_key(&all.v[take - 1].key, all.v[take - 1].id, all.v[take - 1].key.idlen, cur);
        next = json_string(cur);
    }
    json_t *j = route_board__head(q, o[0]);
    json_object_set_new(j, "entries", entries);
    json_object_set_new(j, "next_cursor", next);
    json_object_set_new(j, "total", json_integer((json_int_t)total));
    rreq__reply_json(q, 200, j, NULL);
    rreq__answers_free(nr, up);
    free(all.v);
    return 0;

err_after_answers:
    rreq__answers_free(nr, up);
    free(all.v);
    assert(rv != 0);
    return rv;
}

static int route_board__top_go(struct rreq *q)
{
    const struct route_board_read *b = route_board__read(q);
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_TOP;
    sq.board_id = q->param[0];
    sq.window = b->w;
    sq.has_period = b->has_period;
    sq.period = b->period;
    sq.limit = b->limit;
    sq.cursor = lr_str_of(b->cursor);
    if (strncmp(b->scope, "guild:", 6) == 0) {
        sq.guild = lr_str_of(b->scope + 6);
    }
    rreq__args_query(q, &sq, 0);
    return route_board__ask_scope(q, route_board__top_merge);
}

/* ---- reads from the read model (rmodel.h; docs/consistency.md) ------------------------------ */

/* A read's wait for the read model is over: its step (q->then), or 503 after the timeout. */
static void route_board__model_waited(void *data, int rv)
{
    struct rreq *q = data;
    if (rv != 0) {
        rreq__errf(q, rv,
                   "no region leader could be confirmed in time; retry, or read with "
                   "consistency=stale");
        rreq__reply_error(q, rv);
        return;
    }
    rreq__resume(q, q->then);
}

int route_board__model(struct rreq *q, const struct route_board_read *b, struct rmodel_wait *w,
                       rreq__step step, int *use)
{
    char c[16];
    int has = rreq__query(q, "consistency", c, sizeof c);
    int hdr = q->h->consistency; /* the Laurel-Consistency header; the parameter wins */
    int stale = has == 0 ? strcmp(c, "stale") == 0 : hdr == 2;
    *use = 0;
    if (has < 0 || (has == 0 && !stale && strcmp(c, "linearizable") != 0) ||
        (has != 0 && hdr < 0)) {
        return rreq__errf(q, LR_EINVAL,
                          "consistency (the parameter or the Laurel-Consistency header) must be "
                          "linearizable, the default, or stale");
    }
    /* The model holds the global scope of the alltime window; other reads go to the regions. */
    if (strcmp(b->scope, "global") != 0 || b->w != TIMEFMT_ALLTIME || b->has_period ||
        rmodel_board(q->r->rm, q->param[0].p, q->param[0].len) == NULL) {
        return 0;
    }
    if (stale) {
        *use = 1;
        return step(q);
    }
    /* Every region: a global answer must hold every write any region acknowledged. */
    q->then = step;
    *use = rmodel_wait(q->r->rm, w, (uint32_t)((1ull << q->nregions) - 1),
                       route_board__model_waited, q) == 0;
    return 0;
}

/* A top page read with its wait for the read model. */
struct route_board_top {
    struct route_board_read b; /* first: see the top of the file */
    struct rmodel_wait w;
};
_Static_assert(offsetof(struct route_board_top, b) == 0, "board read first");

static int route_board__top_model(struct rreq *q)
{
    const struct route_board_read *b = route_board__read(q);
    struct rmodel_board *mb = rmodel_board(q->r->rm, q->param[0].p, q->param[0].len);
    const char *body;
    size_t len;
    char err[128];
    int rv = mb ? rmodel_top(q->r->rm, mb, b->limit, b->cursor, &body, &len, err, sizeof err)
                : LR_ENOTFOUND;
    if (rv == LR_ENOTFOUND) { /* reset meanwhile, or a detail it does not hold */
        return route_board__with_order(q, route_board__top_go);
    }
    if (rv != 0) {
        return rreq__errf(q, rv, "%s", rv == LR_EINVAL ? err : err_message(rv));
    }
    rreq__reply_text(q, 200, HTTP_JSON, body, len);
    return 0;
}

/* GET /v1/boards/{id}/top: parse; the read model when it holds the board, else learn the
 * board's order once and ask the scope. */
int route_board_top(struct rreq *q)
{
    struct route_board_top *t = rreq__data(q, sizeof *t, free);
    int rv, use;
    if (t == NULL) {
        return LR_ENOMEM;
    }
    if ((rv = route_board__params(q, &t->b, 1)) != 0 ||
        (rv = route_board__model(q, &t->b, &t->w, route_board__top_model, &use)) != 0) {
        return rv;
    }
    return use ? 0 : route_board__with_order(q, route_board__top_go);
}
