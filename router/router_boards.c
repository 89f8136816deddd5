/* router/router_boards.c — board pages: one region's answer for region scope, or an exact
 * merge of every region's page for global and guild scopes (docs/ordering.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../node/mpjson.h"
#include "../node/proto.h"
#include "../shard/cursor.h"
#include "../shard/err.h"
#include "router_int.h"

/* ---- boards: one region's answer, or an exact merge of all ----------------------------------------- */

struct router__entry {
    const msgpack_object *o;
    struct rankkey key;
    char id[VALID_ID_MAX + 1];
};

static int router__entry_key(const msgpack_object *e, int desc, struct router__entry *out)
{
    int64_t score, sub, t;
    const msgpack_object *pid = proto_map_get(e, "player_id");
    const msgpack_object *ua = proto_map_get(e, "updated_at");
    if (pid == NULL || pid->type != MSGPACK_OBJECT_STR || pid->via.str.size > VALID_ID_MAX ||
        ua == NULL || ua->type != MSGPACK_OBJECT_STR ||
        proto_obj_i64(proto_map_get(e, "score"), &score) ||
        proto_obj_i64(proto_map_get(e, "subscore"), &sub) ||
        timefmt_parse_rfc3339(ua->via.str.ptr, ua->via.str.size, &t)) {
        return -1;
    }
    out->o = e;
    memcpy(out->id, pid->via.str.ptr, pid->via.str.size);
    out->id[pid->via.str.size] = '\0';
    out->key.a = desc ? -score : score;
    out->key.b = desc ? -sub : sub;
    out->key.t = t;
    out->key.pid = RANKKEY_FOREIGN;
    out->key.id = out->id;
    out->key.idlen = pid->via.str.size;
    return 0;
}

static int router__cmp_entry(const void *x, const void *y)
{
    const struct rankkey *a = &((const struct router__entry *)x)->key;
    const struct rankkey *b = &((const struct router__entry *)y)->key;
    if (a->a != b->a) {
        return a->a < b->a ? -1 : 1;
    }
    if (a->b != b->b) {
        return a->b < b->b ? -1 : 1;
    }
    if (a->t != b->t) {
        return a->t < b->t ? -1 : 1;
    }
    size_t n = a->idlen < b->idlen ? a->idlen : b->idlen;
    int c = memcmp(a->id, b->id, n);
    return c ? c : (a->idlen < b->idlen ? -1 : a->idlen > b->idlen);
}

/* Merge the regions' pages into the global page: ranks are 1 + the entries of every region
 * before the page + the position in the merge; exact because every region orders the same
 * way (docs/ordering.md). */
static void rreq__top_merge(struct rreq *q)
{
    msgpack_unpacked up[ROUTER_MAX_REGIONS];
    const msgpack_object *o[ROUTER_MAX_REGIONS];
    struct router__entry *all = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0, offset = 0;
    unsigned limit = q->top.limit;
    int desc = q->top.desc;
    unsigned nr = q->r->nregions;
    for (unsigned i = 0; i < nr; i++) {
        rreq__answer(q, i, &up[i], &o[i]);
    }
    for (unsigned i = 0; i < nr; i++) {
        if (q->code[i] != 0 || o[i] == NULL) {
            rreq__upstream_error(q, q->code[i] ? q->code[i] : LR_EINTERNAL, o[i]);
            goto out;
        }
        const msgpack_object *ents = proto_map_get(o[i], "entries");
        int64_t t = 0, off = 0;
        proto_obj_i64(proto_map_get(o[i], "total"), &t);
        proto_obj_i64(proto_map_get(o[i], "offset"), &off);
        total += (uint64_t)t;
        offset += (uint64_t)off;
        for (uint32_t k = 0; ents && k < ents->via.array.size; k++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                struct router__entry *na = realloc(all, cap * sizeof *na);
                if (na == NULL) {
                    rreq__error(q, LR_ENOMEM, "out of memory");
                    goto out;
                }
                all = na;
            }
            if (router__entry_key(&ents->via.array.ptr[k], desc, &all[n]) != 0) {
                rreq__error(q, LR_EINTERNAL, "malformed entry from region %s", q->r->region[i]);
                goto out;
            }
            n++;
        }
    }
    qsort(all, n, sizeof *all, router__cmp_entry);
    size_t take = n < limit ? n : limit;
    json_t *entries = json_array();
    for (size_t k = 0; k < take; k++) {
        json_t *e = mpjson_from(all[k].o);
        json_object_set_new(e, "rank", json_integer((json_int_t)(offset + k + 1)));
        json_array_append_new(entries, e);
    }
    json_t *next = json_null();
    if (offset + take < total && take > 0) {
        char cur[CURSOR_MAX];
        cursor_encode_key(&all[take - 1].key, all[take - 1].id, all[take - 1].key.idlen, cur);
        next = json_string(cur);
    }
    json_t *period = mpjson_from(proto_map_get(o[0], "period"));
    json_t *j = json_pack("{s:s#,s:s,s:s,s:o,s:o,s:o,s:I}", "board_id", q->param[0].p,
                          (int)q->param[0].len, "scope", q->top.scope, "window", q->top.window,
                          "period",
                          period ? period : json_null(), "entries", entries, "next_cursor", next,
                          "total", (json_int_t)total);
    rreq__reply_json(q, 200, j, NULL);
    q = NULL;
out:
    for (unsigned i = 0; i < nr; i++) {
        msgpack_unpacked_destroy(&up[i]);
    }
    free(all);
    (void)q;
}

static void rreq__top_go(struct rreq *q);

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
    rreq__top_go(q);
}

/* GET /v1/boards/{id}/top: parse, learn the board's order once, then ask the scope. */
void route_top(struct rreq *q)
{
    struct shard_query sq;
    char *scope = q->top.scope, *window = q->top.window, period[40], limit[16];
    long lim = 100;
    snprintf(scope, sizeof q->top.scope, "global");
    snprintf(window, sizeof q->top.window, "alltime");
    if (router__query(q, "scope", scope, sizeof q->top.scope) < 0 ||
        router__query(q, "window", window, sizeof q->top.window) < 0 ||
        timefmt_window_parse(window, strlen(window), &q->top.w) != 0) {
        rreq__error(q, LR_EINVAL, "window must be alltime, daily, weekly, monthly or cycle");
        return;
    }
    int hp = router__query(q, "period", period, sizeof period);
    if (hp < 0 || (hp == 0 && timefmt_period_parse(q->top.w, period, strlen(period),
                                                    &q->top.period) != 0)) {
        rreq__error(q, LR_EINVAL, "period does not name a %s period", window);
        return;
    }
    q->top.has_period = hp == 0;
    int hl = router__query(q, "limit", limit, sizeof limit);
    if (hl < 0 || (hl == 0 && ((lim = strtol(limit, NULL, 10)) < 1 || lim > 1000))) {
        rreq__error(q, LR_EINVAL, "limit must be 1 to 1000");
        return;
    }
    q->top.limit = (uint32_t)lim;
    if (router__query(q, "cursor", q->top.cursor, sizeof q->top.cursor) < 0) {
        rreq__error(q, LR_EINVAL, "cursor is not valid");
        return;
    }
    if (strcmp(scope, "global") != 0 && strncmp(scope, "region:", 7) != 0 &&
        strncmp(scope, "guild:", 6) != 0) {
        rreq__error(q, LR_EINVAL, "scope must be global, region:<id> or guild:<id>");
        return;
    }
    if (strncmp(scope, "region:", 7) == 0 && router__region_index(q->r, scope + 7) < 0) {
        rreq__error(q, LR_EINVAL, "unknown region in scope %s", scope);
        return;
    }
    if (strncmp(scope, "guild:", 6) == 0 && !valid_id(scope + 6, strlen(scope + 6), VALID_ID_MAX)) {
        rreq__error(q, LR_EINVAL, "guild in scope must be an id");
        return;
    }
    void *ord = strmap_get(&q->r->board_order, q->param[0].p, q->param[0].len);
    if (ord) {
        q->top.desc = (int)((uintptr_t)ord - 1);
        rreq__top_go(q);
        return;
    }
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_BOARD_GET;
    sq.board_id = q->param[0];
    rreq__args_query(q, &sq, 0);
    q->next = rreq__board_known;
    if (rreq__call(q, 0, PROTO_OP_QUERY, 1) != 0) {
        rreq__error(q, LR_ENOMEM, "out of memory");
    }
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
    if (strncmp(scope, "region:", 7) == 0) {
        q->region = router__region_index(q->r, scope + 7);
        q->next = rreq__reply_query;
        if (rreq__call(q, (unsigned)q->region, PROTO_OP_QUERY, 1) != 0) {
            rreq__error(q, LR_ENOMEM, "out of memory");
        }
        return;
    }
    q->next = rreq__top_merge;
    for (unsigned i = 0; i < q->r->nregions; i++) {
        if (rreq__call(q, i, PROTO_OP_QUERY, 1) != 0) {
            rreq__error(q, LR_ENOMEM, "out of memory");
            return;
        }
    }
}

