/* router/router_boards.c — board pages: one region's answer for region scope, or an exact
 * merge of every region's page for global and guild scopes (docs/ordering.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/mpjson.h"
#include "../proto/proto.h"
#include "../shard/cursor.h"
#include "../lib/err.h"
#include "router_int.h"

/* ---- entries from regions, in the total order ------------------------------------------- */

int router__entry_key(const msgpack_object *e, int desc, struct router__entry *out)
{
    int64_t score, sub, t;
    const msgpack_object *pid = proto_map_get(e, "player_id");
    const msgpack_object *ua = proto_map_get(e, "updated_at");
    if (pid == NULL || pid->type != MSGPACK_OBJECT_STR || pid->via.str.size == 0 ||
        pid->via.str.size > VALID_ID_MAX || ua == NULL || ua->type != MSGPACK_OBJECT_STR ||
        proto_obj_i64(proto_map_get(e, "score"), &score) ||
        proto_obj_i64(proto_map_get(e, "subscore"), &sub) ||
        timefmt_parse_rfc3339(ua->via.str.ptr, ua->via.str.size, &t)) {
        return -1;
    }
    out->o = e;
    memcpy(out->id, pid->via.str.ptr, pid->via.str.size);
    out->id[pid->via.str.size] = '\0';
    rankkey_fold(&out->key, desc, score, sub, t);
    out->key.pid = RANKKEY_FOREIGN;
    out->key.id = out->id;
    out->key.idlen = pid->via.str.size;
    return 0;
}

/* Ids are compared through the entries' own buffers: key.id would be stale once the array
 * grows or qsort moves an entry (router__entries_sort points it back afterwards). */
static int router__cmp_entry(const void *x, const void *y)
{
    const struct router__entry *ex = x, *ey = y;
    return rankkey_cmp(&ex->key, ex->id, &ey->key, ey->id);
}

void router__entries_sort(struct router__entries *es)
{
    if (es->n > 1) {
        qsort(es->v, es->n, sizeof *es->v, router__cmp_entry);
    }
    for (size_t i = 0; i < es->n; i++) {
        es->v[i].key.id = es->v[i].id;
    }
}

int rreq__collect(struct rreq *q, const msgpack_object *list, unsigned region,
                  struct router__entries *es)
{
    if (list == NULL || list->type != MSGPACK_OBJECT_ARRAY) {
        rreq__error(q, LR_EINTERNAL, "malformed page from region %s", q->r->region[region]);
        return -1;
    }
    for (uint32_t k = 0; k < list->via.array.size; k++) {
        if (es->n == es->cap) {
            size_t cap = es->cap ? es->cap * 2 : 64;
            struct router__entry *nv = realloc(es->v, cap * sizeof *nv);
            if (nv == NULL) {
                rreq__error(q, LR_ENOMEM, "out of memory");
                return -1;
            }
            es->v = nv;
            es->cap = cap;
        }
        if (router__entry_key(&list->via.array.ptr[k], q->top.desc, &es->v[es->n]) != 0) {
            rreq__error(q, LR_EINTERNAL, "malformed entry from region %s", q->r->region[region]);
            return -1;
        }
        es->n++;
    }
    return 0;
}

int rreq__answers(struct rreq *q, msgpack_unpacked *up, const msgpack_object **o)
{
    unsigned nr = q->r->nregions;
    for (unsigned i = 0; i < nr; i++) {
        rreq__answer(q, i, &up[i], &o[i]);
    }
    for (unsigned i = 0; i < nr; i++) {
        if (q->code[i] != 0 || o[i] == NULL) {
            rreq__upstream_error(q, q->code[i] ? q->code[i] : LR_EINTERNAL, o[i]);
            rreq__answers_free(nr, up);
            return -1;
        }
    }
    return 0;
}

void rreq__answers_free(unsigned nregions, msgpack_unpacked *up)
{
    for (unsigned i = 0; i < nregions; i++) {
        msgpack_unpacked_destroy(&up[i]);
    }
}

json_t *rreq__board_head(struct rreq *q, const msgpack_object *any)
{
    json_t *period = mpjson_from(proto_map_get(any, "period"));
    return json_pack("{s:s#,s:s,s:s,s:o}", "board_id", q->param[0].p, (int)q->param[0].len,
                     "scope", q->top.scope, "window", q->top.window, "period",
                     period ? period : json_null());
}

/* ---- board pages: one region's answer, or an exact merge of all ----------------------------- */

/* Merge the regions' pages into the global page: ranks are 1 + the entries of every region
 * before the page + the position in the merge; exact because every region orders the same
 * way (docs/ordering.md). */
static void rreq__top_merge(struct rreq *q)
{
    msgpack_unpacked up[ROUTER_MAX_REGIONS];
    const msgpack_object *o[ROUTER_MAX_REGIONS];
    struct router__entries all = {NULL, 0, 0};
    uint64_t total = 0, offset = 0;
    unsigned limit = q->top.limit;
    unsigned nr = q->r->nregions;
    if (rreq__answers(q, up, o) != 0) {
        return;
    }
    for (unsigned i = 0; i < nr; i++) {
        int64_t t = 0, off = 0;
        proto_obj_i64(proto_map_get(o[i], "total"), &t);
        proto_obj_i64(proto_map_get(o[i], "offset"), &off);
        total += (uint64_t)t;
        offset += (uint64_t)off;
        if (rreq__collect(q, proto_map_get(o[i], "entries"), i, &all) != 0) {
            goto out;
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
        cursor_encode_key(&all.v[take - 1].key, all.v[take - 1].id, all.v[take - 1].key.idlen,
                          cur);
        next = json_string(cur);
    }
    json_t *j = rreq__board_head(q, o[0]);
    json_object_set_new(j, "entries", entries);
    json_object_set_new(j, "next_cursor", next);
    json_object_set_new(j, "total", json_integer((json_int_t)total));
    rreq__reply_json(q, 200, j, NULL);
out:
    rreq__answers_free(nr, up);
    free(all.v);
}

static void rreq__board_known(struct rreq *q)
{
    msgpack_unpacked up;
    const msgpack_object *o;
    rreq__answer(q, 0, &up, &o);
    if (q->code[0] != 0 || o == NULL) {
        rreq__upstream_error(q, q->code[0] ? q->code[0] : LR_EINTERNAL, o);
        msgpack_unpacked_destroy(&up);
        return;
    }
    const msgpack_object *ord = proto_map_get(o, "order");
    int desc = !(ord && ord->type == MSGPACK_OBJECT_STR && ord->via.str.size == 3);
    strmap_put(&q->r->board_order, q->param[0].p, q->param[0].len, (void *)(uintptr_t)(desc + 1));
    msgpack_unpacked_destroy(&up);
    q->top.desc = desc;
    q->then(q);
}

/* Learn the board's order (cached after the first time), then run @then. */
void rreq__with_board(struct rreq *q, void (*then)(struct rreq *))
{
    struct shard_query sq;
    void *ord = strmap_get(&q->r->board_order, q->param[0].p, q->param[0].len);
    if (ord) {
        q->top.desc = (int)((uintptr_t)ord - 1);
        then(q);
        return;
    }
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_BOARD_GET;
    sq.board_id = q->param[0];
    rreq__args_query(q, &sq, 0);
    q->then = then;
    q->next = rreq__board_known;
    if (rreq__call(q, 0, PROTO_OP_QUERY, 1) != 0) {
        rreq__error(q, LR_ENOMEM, "out of memory");
    }
}

/* Parse scope, window, period (and limit, cursor when @paged) into q->top: 0, or -1 with a
 * reply sent. */
int rreq__board_params(struct rreq *q, int paged)
{
    char *scope = q->top.scope, *window = q->top.window, period[40];
    long lim = 100;
    snprintf(scope, sizeof q->top.scope, "global");
    snprintf(window, sizeof q->top.window, "alltime");
    if (router__query(q, "scope", scope, sizeof q->top.scope) < 0 ||
        router__query(q, "window", window, sizeof q->top.window) < 0 ||
        timefmt_window_parse(window, strlen(window), &q->top.w) != 0) {
        rreq__error(q, LR_EINVAL, "window must be alltime, daily, weekly, monthly or cycle");
        return -1;
    }
    int hp = router__query(q, "period", period, sizeof period);
    if (hp < 0 || (hp == 0 && timefmt_period_parse(q->top.w, period, strlen(period),
                                                    &q->top.period) != 0)) {
        rreq__error(q, LR_EINVAL, "period does not name a %s period", window);
        return -1;
    }
    q->top.has_period = hp == 0;
    if (paged) {
        if (router__query_int(q, "limit", 1, 1000, 100, &lim) != 0) {
            rreq__error(q, LR_EINVAL, "limit must be 1 to 1000");
            return -1;
        }
        q->top.limit = (uint32_t)lim;
        if (router__query(q, "cursor", q->top.cursor, sizeof q->top.cursor) < 0) {
            rreq__error(q, LR_EINVAL, "cursor is not valid");
            return -1;
        }
    }
    if (strcmp(scope, "global") != 0 && strncmp(scope, "region:", 7) != 0 &&
        strncmp(scope, "guild:", 6) != 0) {
        rreq__error(q, LR_EINVAL, "scope must be global, region:<id> or guild:<id>");
        return -1;
    }
    if (strncmp(scope, "region:", 7) == 0 && router__region_index(q->r, scope + 7) < 0) {
        rreq__error(q, LR_EINVAL, "unknown region in scope %s", scope);
        return -1;
    }
    if (strncmp(scope, "guild:", 6) == 0 && !valid_id(scope + 6, strlen(scope + 6), VALID_ID_MAX)) {
        rreq__error(q, LR_EINVAL, "guild in scope must be an id");
        return -1;
    }
    return 0;
}

static void rreq__top_go(struct rreq *q)
{
    const char *scope = q->top.scope;
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_TOP;
    sq.board_id = q->param[0];
    sq.window = q->top.w;
    sq.has_period = q->top.has_period;
    sq.period = q->top.period;
    sq.limit = q->top.limit;
    sq.cursor = lr_str_of(q->top.cursor);
    if (strncmp(scope, "guild:", 6) == 0) {
        sq.guild = lr_str_of(scope + 6);
    }
    rreq__args_query(q, &sq, 0);
    rreq__ask_scope(q, rreq__top_merge);
}

void rreq__ask_scope(struct rreq *q, void (*merge)(struct rreq *))
{
    if (strncmp(q->top.scope, "region:", 7) == 0) {
        q->region = router__region_index(q->r, q->top.scope + 7);
        q->next = rreq__reply_query;
        if (rreq__call(q, (unsigned)q->region, PROTO_OP_QUERY, 1) != 0) {
            rreq__error(q, LR_ENOMEM, "out of memory");
        }
        return;
    }
    q->next = merge;
    rreq__call_all(q, PROTO_OP_QUERY, 1);
}

/* GET /v1/boards/{id}/top: parse, learn the board's order once, then ask the scope. */
void route_top(struct rreq *q)
{
    if (rreq__board_params(q, 1) == 0) {
        rreq__with_board(q, rreq__top_go);
    }
}
