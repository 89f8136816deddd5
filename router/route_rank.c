/* router/route_rank.c — a player's rank with the window around it, and the friends view,
 * exact in every scope.
 *
 * Region scope is one region's answer. Global and guild scopes take two rounds: first the
 * player's own region gives the player's key (score, subscore, updated_at, id) with its own
 * rank, total and window, as for region scope; then every other region counts its entries
 * ordered before that key and returns its neighbours of it. The global rank is 1 + the sum of
 * the counts (the own region's is its rank - 1), and the merged neighbour lists are the
 * global window, because every region orders by the same total order (docs/ordering.md).
 *
 * Friends take two rounds too: every region returns its own friends with their keys, then
 * every region counts its entries before each of them.
 *
 * Both keep their state in route_data, starting with the board read's parameters (the board
 * helpers of route_board.c find them there). */
#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/mpjson.h"
#include "../proto/proto.h"
#include "../lib/err.h"
#include "router_int.h"

/* A rank request: what it asks, then the player's key learnt in round one. */
struct route_rank_player {
    struct route_board_read b; /* first: see the top of the file */
    uint32_t around;
    int64_t score, subscore, updated_ms;
    struct rmodel_wait w; /* the read model's wait (route_board__model) */
};

/* A friends request: the ids asked and the entries found so far. */
struct route_rank_friends {
    struct route_board_read b; /* first: see the top of the file */
    struct rmodel_wait w;      /* the read model's wait (route_board__model) */
    json_t *acc; /* round one's entries in key order, with their ranks so far (owned) */
    uint32_t nids;
    char ids[SHARD_FRIENDS_MAX * (VALID_ID_MAX + 1) + 1]; /* NUL-separated once parsed */
};

_Static_assert(offsetof(struct route_rank_player, b) == 0, "board read first");
_Static_assert(offsetof(struct route_rank_friends, b) == 0, "board read first");

/* The board query every round of a rank or friends request starts from. */
static void route_rank__query(struct rreq *q, const struct route_board_read *b,
                              struct shard_query *sq, enum shard_qtype type)
{
    memset(sq, 0, sizeof *sq);
    sq->type = type;
    sq->board_id = q->param[0];
    sq->window = b->w;
    sq->has_period = b->has_period;
    sq->period = b->period;
    if (strncmp(b->scope, "guild:", 6) == 0) {
        sq->guild = lr_str_of(b->scope + 6);
    }
}

static double route_rank__percentile(uint64_t total, uint64_t rank)
{
    return total ? round(10000.0 * (double)(total - rank) / (double)total) / 100.0 : 0.0;
}

/* ---- rank and around ------------------------------------------------------------------------ */

/* Round two's answers: the global rank and the merged window. */
static int route_rank__player_merge(struct rreq *q)
{
    const struct route_rank_player *s = q->route_data;
    msgpack_unpacked up[ROUTER_MAX_REGIONS];
    const msgpack_object *o[ROUTER_MAX_REGIONS];
    struct router__entries before = {NULL, 0, 0}, after = {NULL, 0, 0};
    uint64_t count = 0, total = 0;
    unsigned nr = q->nregions, n = s->around;
    int rv = rreq__answers(q, up, o);
    if (rv != 0) {
        return rv;
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
                rv = rreq__errf(q, LR_EINTERNAL, "malformed rank from region %s", q->r->region[i]);
                goto err_after_answers;
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
        if ((rv = route_board__collect(q, b, i, &before)) != 0 ||
            (rv = route_board__collect(q, a, i, &after)) != 0) {
            goto err_after_answers;
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
    timefmt_rfc3339(s->updated_ms, ua);
    json_t *j = route_board__head(q, o[0]);
    json_object_set_new(j, "player_id", json_string(q->player));
    json_object_set_new(j, "rank", json_integer((json_int_t)(count + 1)));
    json_object_set_new(j, "score", json_integer(s->score));
    json_object_set_new(j, "subscore", json_integer(s->subscore));
    json_object_set_new(j, "updated_at", json_string(ua));
    json_object_set_new(j, "total", json_integer((json_int_t)total));
    json_object_set_new(j, "percentile", json_real(route_rank__percentile(total, count + 1)));
    json_object_set_new(j, "around", around);
    rreq__reply_json(q, 200, j, NULL);
    rreq__answers_free(nr, up);
    free(before.v);
    free(after.v);
    return 0;

err_after_answers:
    rreq__answers_free(nr, up);
    free(before.v);
    free(after.v);
    assert(rv != 0);
    return rv;
}

/* Round one's answer: the player's key in its own region; ask every region around it. */
static int route_rank__player_probe(struct rreq *q)
{
    struct route_rank_player *s = q->route_data;
    unsigned reg = (unsigned)q->region;
    msgpack_unpacked up;
    const msgpack_object *o;
    struct shard_query sq;
    struct router__entry me;
    int rv = rreq__answer_ok(q, reg, &up, &o);
    if (rv != 0) {
        return rv;
    }
    int bad = router__entry_key(o, 0, &me) != 0;
    msgpack_unpacked_destroy(&up); /* its bytes stay in q->ans[reg] for the merge */
    if (bad) {
        return rreq__errf(q, LR_EINTERNAL, "malformed rank from region %s", q->r->region[reg]);
    }
    s->score = me.key.a;
    s->subscore = me.key.b;
    s->updated_ms = me.key.t;
    route_rank__query(q, &s->b, &sq, SHARD_Q_NEAR);
    sq.around = s->around;
    sq.nprobes = 1;
    sq.probes[0].score = s->score;
    sq.probes[0].subscore = s->subscore;
    sq.probes[0].updated_ms = s->updated_ms;
    sq.probes[0].player_id = lr_str_of(q->player);
    rreq__args_query(q, &sq, 0);
    q->next = route_rank__player_merge;
    return rreq__call_others(q, PROTO_OP_QUERY, 1, reg);
}

static int route_rank__player_located(struct rreq *q)
{
    const struct route_rank_player *s = q->route_data;
    struct shard_query sq;
    if (q->region < 0) {
        return rreq__errf(q, LR_ENOTFOUND, "player %s not found", q->player);
    }
    int region_scope = strncmp(s->b.scope, "region:", 7) == 0;
    if (region_scope && router__region_index(q->r, s->b.scope + 7) != q->region) {
        return rreq__errf(q, LR_ENOTFOUND, "player %s has no score in scope %s", q->player,
                          s->b.scope);
    }
    route_rank__query(q, &s->b, &sq, SHARD_Q_RANK);
    sq.player_id = lr_str_of(q->player);
    sq.around = s->around;
    if (region_scope) {
        return rreq__query_region(q, &sq); /* the region alone answers */
    }
    rreq__args_query(q, &sq, 0);
    q->next = route_rank__player_probe;
    return rreq__call(q, (unsigned)q->region, PROTO_OP_QUERY, 1);
}

static int route_rank__player_board(struct rreq *q)
{
    char id[VALID_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)q->param[1].len, q->param[1].p);
    return rreq__locate(q, id, route_rank__player_located);
}

/* The read model's answer, once it holds every write acknowledged before the read came. */
static int route_rank__player_model(struct rreq *q)
{
    const struct route_rank_player *s = q->route_data;
    struct rmodel_board *mb = rmodel_board(q->r->rm, q->param[0].p, q->param[0].len);
    char id[VALID_ID_MAX + 1];
    const char *body;
    size_t len;
    snprintf(id, sizeof id, "%.*s", (int)q->param[1].len, q->param[1].p);
    int rv = mb ? rmodel_rank(q->r->rm, mb, id, s->around, &body, &len, q->errmsg, sizeof q->errmsg)
                : LR_EUNAVAILABLE;
    if (rv == LR_EUNAVAILABLE) { /* reset meanwhile, or a detail it does not hold */
        q->errmsg[0] = '\0';
        return route_board__with_order(q, route_rank__player_board);
    }
    if (rv != 0) {
        return rv;
    }
    rreq__reply_text(q, 200, HTTP_JSON, body, len);
    return 0;
}

/* GET /v1/boards/{board}/players/{player}?scope=&window=&period=&around=N */
int route_rank_player(struct rreq *q)
{
    struct route_rank_player *s = rreq__data(q, sizeof *s, free);
    long n;
    int rv;
    if (s == NULL) {
        return LR_ENOMEM;
    }
    if ((rv = route_board__params(q, &s->b, 0)) != 0) {
        return rv;
    }
    if (rreq__query_int(q, "around", 0, 50, 0, &n) != 0) {
        return rreq__errf(q, LR_EINVAL, "around must be 0 to 50");
    }
    s->around = (uint32_t)n;
    int use;
    if ((rv = route_board__model(q, &s->b, &s->w, route_rank__player_model, &use)) != 0) {
        return rv;
    }
    return use ? 0 : route_board__with_order(q, route_rank__player_board);
}

/* ---- friends -------------------------------------------------------------------------------- */

static void route_rank__friends_free(void *data)
{
    struct route_rank_friends *s = data;
    json_decref(s->acc);
    free(s);
}

/* Round two: every region's counts before each friend's key; rank = 1 + their sum. */
static int route_rank__friends_merge(struct rreq *q)
{
    const struct route_rank_friends *s = q->route_data;
    msgpack_unpacked up[ROUTER_MAX_REGIONS];
    const msgpack_object *o[ROUTER_MAX_REGIONS];
    size_t n = json_array_size(s->acc);
    uint64_t total = 0;
    unsigned nr = q->nregions;
    int rv = rreq__answers(q, up, o);
    if (rv != 0) {
        return rv;
    }
    for (unsigned i = 0; i < nr; i++) {
        int64_t t = 0;
        const msgpack_object *counts = proto_map_get(o[i], "counts");
        proto_obj_i64(proto_map_get(o[i], "total"), &t);
        total += (uint64_t)t;
        if (counts == NULL || counts->type != MSGPACK_OBJECT_ARRAY || counts->via.array.size != n) {
            rreq__answers_free(nr, up);
            return rreq__errf(q, LR_EINTERNAL, "malformed counts from region %s", q->r->region[i]);
        }
        for (size_t k = 0; k < n; k++) {
            int64_t c = 0;
            json_t *e = json_array_get(s->acc, k);
            proto_obj_i64(&counts->via.array.ptr[k], &c);
            json_object_set_new(e, "rank",
                                json_integer(json_integer_value(json_object_get(e, "rank")) + c));
        }
    }
    /* The entries were gathered in key order and ranks grow with the key: already in rank
     * order. */
    json_t *j = route_board__head(q, o[0]);
    json_object_set(j, "entries", s->acc);
    json_object_set_new(j, "total", json_integer((json_int_t)total));
    rreq__reply_json(q, 200, j, NULL);
    rreq__answers_free(nr, up);
    return 0;
}

/* The answer when no friend has a score: the empty page with every region's total. */
static json_t *route_rank__friends_none(struct rreq *q, const msgpack_object *const *o)
{
    uint64_t total = 0;
    json_t *j = route_board__head(q, o[0]);
    json_object_set_new(j, "entries", json_array());
    for (unsigned i = 0; i < q->nregions; i++) {
        int64_t t = 0;
        proto_obj_i64(proto_map_get(o[i], "total"), &t);
        total += (uint64_t)t;
    }
    json_object_set_new(j, "total", json_integer((json_int_t)total));
    return j;
}

/* Round one: each region's own friends with their keys; count before them everywhere. */
static int route_rank__friends_probe(struct rreq *q)
{
    struct route_rank_friends *s = q->route_data;
    msgpack_unpacked up[ROUTER_MAX_REGIONS];
    const msgpack_object *o[ROUTER_MAX_REGIONS];
    struct router__entries all = {NULL, 0, 0};
    struct shard_query sq;
    unsigned nr = q->nregions;
    int rv = rreq__answers(q, up, o);
    if (rv != 0) {
        return rv;
    }
    for (unsigned i = 0; i < nr; i++) {
        if ((rv = route_board__collect(q, proto_map_get(o[i], "entries"), i, &all)) != 0) {
            goto err_after_answers;
        }
    }
    router__entries_sort(&all);
    if (all.n > SHARD_FRIENDS_MAX) {
        rv = rreq__errf(q, LR_EINTERNAL, "regions returned more friends than asked for");
        goto err_after_answers;
    }
    if (all.n == 0) {
        rreq__reply_json(q, 200, route_rank__friends_none(q, o), NULL);
        rreq__answers_free(nr, up);
        free(all.v);
        return 0;
    }
    s->acc = json_array();
    route_rank__query(q, &s->b, &sq, SHARD_Q_COUNT_BEFORE);
    for (size_t k = 0; k < all.n; k++) {
        const struct router__entry *e = &all.v[k];
        json_t *j = mpjson_from(e->o);
        json_object_set_new(j, "rank", json_integer(1));
        json_array_append_new(s->acc, j);
        sq.probes[k].score = rankkey_score(&e->key, s->b.desc);
        sq.probes[k].subscore = rankkey_subscore(&e->key, s->b.desc);
        sq.probes[k].updated_ms = e->key.t;
        /* the id must outlive this function: point into the JSON entry */
        sq.probes[k].player_id = lr_str_of(json_string_value(json_object_get(j, "player_id")));
    }
    sq.nprobes = (uint32_t)all.n;
    rreq__args_query(q, &sq, 0);
    rreq__answers_free(nr, up);
    free(all.v);
    q->next = route_rank__friends_merge;
    return rreq__call_all(q, PROTO_OP_QUERY, 1);

err_after_answers:
    rreq__answers_free(nr, up);
    free(all.v);
    assert(rv != 0);
    return rv;
}

static int route_rank__friends_go(struct rreq *q)
{
    const struct route_rank_friends *s = q->route_data;
    struct shard_query sq;
    route_rank__query(q, &s->b, &sq, SHARD_Q_FRIENDS);
    const char *p = s->ids;
    for (uint32_t i = 0; i < s->nids; i++) {
        sq.ids[i] = lr_str_of(p);
        p += sq.ids[i].len + 1;
    }
    sq.nids = s->nids;
    rreq__args_query(q, &sq, 0);
    return route_board__ask_scope(q, route_rank__friends_probe);
}

static int route_rank__friends_model(struct rreq *q)
{
    const struct route_rank_friends *s = q->route_data;
    struct rmodel_board *mb = rmodel_board(q->r->rm, q->param[0].p, q->param[0].len);
    const char *body;
    size_t len;
    int rv = mb ? rmodel_friends(q->r->rm, mb, s->ids, s->nids, &body, &len) : LR_EUNAVAILABLE;
    if (rv == LR_EUNAVAILABLE) { /* reset meanwhile, or a detail it does not hold */
        return route_board__with_order(q, route_rank__friends_go);
    }
    if (rv != 0) {
        return rreq__errf(q, rv, "out of memory");
    }
    rreq__reply_text(q, 200, HTTP_JSON, body, len);
    return 0;
}

/* GET /v1/boards/{board}/players?ids=a,b,c&scope=&window=&period= */
int route_rank_friends(struct rreq *q)
{
    struct route_rank_friends *s = rreq__data(q, sizeof *s, route_rank__friends_free);
    int rv;
    if (s == NULL) {
        return LR_ENOMEM;
    }
    if ((rv = route_board__params(q, &s->b, 0)) != 0) {
        return rv;
    }
    int hi = rreq__query(q, "ids", s->ids, sizeof s->ids);
    if (hi != 0) {
        return rreq__errf(q, LR_EINVAL, hi > 0 ? "ids is required" : "at most %d ids",
                          SHARD_FRIENDS_MAX);
    }
    /* split in place at the commas */
    for (char *p = s->ids;;) {
        char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!valid_id(p, len, VALID_ID_MAX)) {
            return rreq__errf(q, LR_EINVAL, "ids must be a comma-separated list of player ids");
        }
        if (s->nids == SHARD_FRIENDS_MAX) {
            return rreq__errf(q, LR_EINVAL, "at most %d ids", SHARD_FRIENDS_MAX);
        }
        s->nids++;
        if (end == NULL) {
            break;
        }
        *end = '\0';
        p = end + 1;
    }
    int use;
    if ((rv = route_board__model(q, &s->b, &s->w, route_rank__friends_model, &use)) != 0) {
        return rv;
    }
    return use ? 0 : route_board__with_order(q, route_rank__friends_go);
}
