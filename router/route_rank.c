/* router/router_rank.c — a player's rank with the window around it, and the friends view,
 * exact in every scope.
 *
 * Region scope is one region's answer. Global and guild scopes take two rounds: first the
 * player's own region gives the player's key (score, subscore, updated_at, id) with its own
 * rank, total and window, as for region scope; then every other region counts its entries
 * ordered before that key and returns its neighbours of it. The global rank is 1 + the sum of
 * the counts (the own region's is its rank - 1), and the merged neighbour lists are the
 * global window, because every region orders by the same total order (docs/ordering.md). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/mpjson.h"
#include "../proto/proto.h"
#include "../lib/err.h"
#include "router_int.h"

/* The board query every round of a rank or friends request starts from. */
static void rreq__board_query(struct rreq *q, struct shard_query *sq, enum shard_qtype type)
{
    memset(sq, 0, sizeof *sq);
    sq->type = type;
    sq->board_id = q->param[0];
    sq->window = q->top.w;
    sq->has_period = q->top.has_period;
    sq->period = q->top.period;
    if (strncmp(q->top.scope, "guild:", 6) == 0) {
        sq->guild = lr_str_of(q->top.scope + 6);
    }
}

static double router__percentile(uint64_t total, uint64_t rank)
{
    return total ? round(10000.0 * (double)(total - rank) / (double)total) / 100.0 : 0.0;
}

/* ---- rank and around ------------------------------------------------------------------------ */

/* Round two's answers: the global rank and the merged window. */
static void rreq__rank_merge(struct rreq *q)
{
    msgpack_unpacked up[ROUTER_MAX_REGIONS];
    const msgpack_object *o[ROUTER_MAX_REGIONS];
    struct router__entries before = {NULL, 0, 0}, after = {NULL, 0, 0};
    uint64_t count = 0, total = 0;
    unsigned nr = q->r->nregions, n = q->top.around;
    if (rreq__answers(q, up, o) != 0) {
        return;
    }
    for (unsigned i = 0; i < nr; i++) {
        int64_t c = 0, t = 0;
        const msgpack_object *b = proto_map_get(o[i], "before"), *a = proto_map_get(o[i], "after");
        msgpack_object own_b, own_a;
        proto_obj_i64(proto_map_get(o[i], "total"), &t);
        if (i == (unsigned)q->region) {
            /* Round one's RANK: the window holds min(rank - 1, around) entries before the
             * player, then the player and the entries after: NEAR's before and after. */
            const msgpack_object *w = proto_map_get(o[i], "around");
            if (proto_obj_i64(proto_map_get(o[i], "rank"), &c) != 0 || c < 1 || w == NULL ||
                w->type != MSGPACK_OBJECT_ARRAY) {
                rreq__error(q, LR_EINTERNAL, "malformed rank from region %s", q->r->region[i]);
                goto out;
            }
            c--;
            uint32_t nb = (uint64_t)c < n ? (uint32_t)c : n;
            if (nb > w->via.array.size) {
                nb = w->via.array.size;
            }
            own_b = own_a = *w;
            own_b.via.array.size = nb;
            own_a.via.array.ptr += nb;
            own_a.via.array.size -= nb;
            b = &own_b;
            a = &own_a;
        } else {
            proto_obj_i64(proto_map_get(o[i], "count"), &c);
        }
        count += (uint64_t)c;
        total += (uint64_t)t;
        if (rreq__collect(q, b, i, &before) != 0 || rreq__collect(q, a, i, &after) != 0) {
            goto out;
        }
    }
    router__entries_sort(&before);
    router__entries_sort(&after);
    /* The n closest before the player (the tail of the merge), then the player and n after. */
    size_t b0 = before.n > n ? before.n - n : 0;
    size_t na = after.n < (size_t)n + 1 ? after.n : (size_t)n + 1;
    json_t *around = json_array();
    for (size_t k = b0; k < before.n; k++) {
        json_t *e = mpjson_from(before.v[k].o);
        json_object_set_new(e, "rank", json_integer((json_int_t)(count + 1 - (before.n - k))));
        json_array_append_new(around, e);
    }
    for (size_t k = 0; k < na; k++) {
        json_t *e = mpjson_from(after.v[k].o);
        json_object_set_new(e, "rank", json_integer((json_int_t)(count + 1 + k)));
        json_array_append_new(around, e);
    }
    char ua[TIMEFMT_RFC3339_LEN + 1];
    timefmt_rfc3339(q->top.updated_ms, ua);
    json_t *j = rreq__board_head(q, o[0]);
    json_object_set_new(j, "player_id", json_string(q->player));
    json_object_set_new(j, "rank", json_integer((json_int_t)(count + 1)));
    json_object_set_new(j, "score", json_integer(q->top.score));
    json_object_set_new(j, "subscore", json_integer(q->top.subscore));
    json_object_set_new(j, "updated_at", json_string(ua));
    json_object_set_new(j, "total", json_integer((json_int_t)total));
    json_object_set_new(j, "percentile", json_real(router__percentile(total, count + 1)));
    json_object_set_new(j, "around", around);
    rreq__reply_json(q, 200, j, NULL);
out:
    rreq__answers_free(nr, up);
    free(before.v);
    free(after.v);
}

/* Round one's answer: the player's key in its own region; ask every region around it. */
static void rreq__rank_probe(struct rreq *q)
{
    unsigned reg = (unsigned)q->region;
    msgpack_unpacked up;
    const msgpack_object *o;
    struct shard_query sq;
    struct router__entry me;
    rreq__answer(q, reg, &up, &o);
    if (q->code[reg] != 0 || o == NULL) {
        rreq__upstream_error(q, q->code[reg] ? q->code[reg] : LR_EINTERNAL, o);
        msgpack_unpacked_destroy(&up);
        return;
    }
    int bad = router__entry_key(o, 0, &me) != 0;
    msgpack_unpacked_destroy(&up); /* its bytes stay in q->ans[reg] for the merge */
    if (bad) {
        rreq__error(q, LR_EINTERNAL, "malformed rank from region %s", q->r->region[reg]);
        return;
    }
    q->top.score = me.key.a;
    q->top.subscore = me.key.b;
    q->top.updated_ms = me.key.t;
    rreq__board_query(q, &sq, SHARD_Q_NEAR);
    sq.around = q->top.around;
    sq.nprobes = 1;
    sq.probes[0].score = q->top.score;
    sq.probes[0].subscore = q->top.subscore;
    sq.probes[0].updated_ms = q->top.updated_ms;
    sq.probes[0].player_id = lr_str_of(q->player);
    rreq__args_query(q, &sq, 0);
    q->next = rreq__rank_merge;
    rreq__call_others(q, PROTO_OP_QUERY, 1, reg);
}

static void rreq__rank_located(struct rreq *q)
{
    struct shard_query sq;
    if (q->region < 0) {
        rreq__error(q, LR_ENOTFOUND, "player %s not found", q->player);
        return;
    }
    int region_scope = strncmp(q->top.scope, "region:", 7) == 0;
    if (region_scope && router__region_index(q->r, q->top.scope + 7) != q->region) {
        rreq__error(q, LR_ENOTFOUND, "player %s has no score in scope %s", q->player,
                    q->top.scope);
        return;
    }
    rreq__board_query(q, &sq, SHARD_Q_RANK);
    sq.player_id = lr_str_of(q->player);
    sq.around = q->top.around;
    if (region_scope) {
        rreq__query_region(q, &sq); /* the region alone answers */
        return;
    }
    rreq__args_query(q, &sq, 0);
    q->next = rreq__rank_probe;
    if (rreq__call(q, (unsigned)q->region, PROTO_OP_QUERY, 1) != 0) {
        rreq__error(q, LR_ENOMEM, "out of memory");
    }
}

static void rreq__rank_board(struct rreq *q)
{
    char id[VALID_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)q->param[1].len, q->param[1].p);
    rreq__locate(q, id, rreq__rank_located);
}

/* GET /v1/boards/{board}/players/{player}?scope=&window=&period=&around=N */
void route_rank(struct rreq *q)
{
    long n;
    if (rreq__board_params(q, 0) != 0) {
        return;
    }
    if (router__query_int(q, "around", 0, 50, 0, &n) != 0) {
        rreq__error(q, LR_EINVAL, "around must be 0 to 50");
        return;
    }
    q->top.around = (uint32_t)n;
    rreq__with_board(q, rreq__rank_board);
}

/* ---- friends -------------------------------------------------------------------------------- */

/* Round two: every region's counts before each friend's key; rank = 1 + their sum. */
static void rreq__friends_merge(struct rreq *q)
{
    msgpack_unpacked up[ROUTER_MAX_REGIONS];
    const msgpack_object *o[ROUTER_MAX_REGIONS];
    size_t n = json_array_size(q->acc);
    uint64_t total = 0;
    unsigned nr = q->r->nregions;
    if (rreq__answers(q, up, o) != 0) {
        return;
    }
    for (unsigned i = 0; i < q->r->nregions; i++) {
        int64_t t = 0;
        const msgpack_object *counts = proto_map_get(o[i], "counts");
        proto_obj_i64(proto_map_get(o[i], "total"), &t);
        total += (uint64_t)t;
        if (counts == NULL || counts->type != MSGPACK_OBJECT_ARRAY || counts->via.array.size != n) {
            rreq__error(q, LR_EINTERNAL, "malformed counts from region %s", q->r->region[i]);
            goto out;
        }
        for (size_t k = 0; k < n; k++) {
            int64_t c = 0;
            json_t *e = json_array_get(q->acc, k);
            proto_obj_i64(&counts->via.array.ptr[k], &c);
            json_object_set_new(e, "rank",
                                json_integer(json_integer_value(json_object_get(e, "rank")) + c));
        }
    }
    /* The entries were gathered in key order and ranks grow with the key: already in rank
     * order. */
    json_t *j = rreq__board_head(q, o[0]);
    json_object_set(j, "entries", q->acc);
    json_object_set_new(j, "total", json_integer((json_int_t)total));
    rreq__reply_json(q, 200, j, NULL);
out:
    rreq__answers_free(nr, up);
}

/* Round one: each region's own friends with their keys; count before them everywhere. */
static void rreq__friends_probe(struct rreq *q)
{
    msgpack_unpacked up[ROUTER_MAX_REGIONS];
    const msgpack_object *o[ROUTER_MAX_REGIONS];
    struct router__entries all = {NULL, 0, 0};
    struct shard_query sq;
    unsigned nr = q->r->nregions;
    if (rreq__answers(q, up, o) != 0) {
        return;
    }
    for (unsigned i = 0; i < q->r->nregions; i++) {
        if (rreq__collect(q, proto_map_get(o[i], "entries"), i, &all) != 0) {
            goto out;
        }
    }
    router__entries_sort(&all);
    if (all.n > SHARD_FRIENDS_MAX) {
        rreq__error(q, LR_EINTERNAL, "regions returned more friends than asked for");
        goto out;
    }
    q->acc = json_array();
    rreq__board_query(q, &sq, SHARD_Q_COUNT_BEFORE);
    for (size_t k = 0; k < all.n; k++) {
        const struct router__entry *e = &all.v[k];
        json_t *j = mpjson_from(e->o);
        json_object_set_new(j, "rank", json_integer(1));
        json_array_append_new(q->acc, j);
        sq.probes[k].score = rankkey_score(&e->key, q->top.desc);
        sq.probes[k].subscore = rankkey_subscore(&e->key, q->top.desc);
        sq.probes[k].updated_ms = e->key.t;
        /* the id must outlive this function: point into the JSON entry */
        sq.probes[k].player_id = lr_str_of(json_string_value(json_object_get(j, "player_id")));
    }
    sq.nprobes = (uint32_t)all.n;
    if (all.n == 0) {
        json_t *j = rreq__board_head(q, o[0]);
        json_object_set_new(j, "entries", json_array());
        uint64_t total = 0;
        for (unsigned i = 0; i < q->r->nregions; i++) {
            int64_t t = 0;
            proto_obj_i64(proto_map_get(o[i], "total"), &t);
            total += (uint64_t)t;
        }
        json_object_set_new(j, "total", json_integer((json_int_t)total));
        rreq__reply_json(q, 200, j, NULL);
        goto out;
    }
    rreq__args_query(q, &sq, 0);
    rreq__answers_free(nr, up);
    free(all.v);
    q->next = rreq__friends_merge;
    rreq__call_all(q, PROTO_OP_QUERY, 1);
    return;
out:
    rreq__answers_free(nr, up);
    free(all.v);
}

static void rreq__friends_go(struct rreq *q)
{
    struct shard_query sq;
    rreq__board_query(q, &sq, SHARD_Q_FRIENDS);
    const char *p = q->ids;
    for (uint32_t i = 0; i < q->nids; i++) {
        sq.ids[i] = lr_str_of(p);
        p += sq.ids[i].len + 1;
    }
    sq.nids = q->nids;
    rreq__args_query(q, &sq, 0);
    rreq__ask_scope(q, rreq__friends_probe);
}

/* GET /v1/boards/{board}/players?ids=a,b,c&scope=&window=&period= */
void route_friends(struct rreq *q)
{
    static const size_t cap = SHARD_FRIENDS_MAX * (VALID_ID_MAX + 1) + 1;
    if (rreq__board_params(q, 0) != 0) {
        return;
    }
    q->ids = malloc(cap);
    if (q->ids == NULL) {
        rreq__error(q, LR_ENOMEM, "out of memory");
        return;
    }
    int hi = router__query(q, "ids", q->ids, cap);
    if (hi != 0) {
        rreq__error(q, LR_EINVAL, hi > 0 ? "ids is required" : "at most %d ids",
                    SHARD_FRIENDS_MAX);
        return;
    }
    /* split in place at the commas */
    for (char *p = q->ids;;) {
        char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!valid_id(p, len, VALID_ID_MAX)) {
            rreq__error(q, LR_EINVAL, "ids must be a comma-separated list of player ids");
            return;
        }
        if (q->nids == SHARD_FRIENDS_MAX) {
            rreq__error(q, LR_EINVAL, "at most %d ids", SHARD_FRIENDS_MAX);
            return;
        }
        q->nids++;
        if (end == NULL) {
            break;
        }
        *end = '\0';
        p = end + 1;
    }
    rreq__with_board(q, rreq__friends_go);
}
