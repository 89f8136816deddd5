/* router/route_tournament.c — tournaments (API.md, "Tournaments"): PUT, GET and join.
 *
 * A tournament has two homes (docs/global-state.md, "Tournament joins"):
 * - the metadata group holds what admissions are decided by: the cap (max_participants), the
 *   window and the admitted set with its count. One log orders every join through every
 *   router, so the cap holds across the cluster;
 * - every region holds the tournament's record and its board (name, order, operator, window,
 *   max_attempts, prizes), the membership of its own players and their attempts: what a
 *   score is judged by (shard/apply_catalog.c, apply__tournament_attempt).
 * Regions are sent max_participants 0 (unlimited): a region never refuses a join for being
 * full, so meta alone admits, and a region's own participant count (of its members only) is
 * never shown. GET shows meta's cap and count.
 *
 * Each write goes to meta first, then to the regions, and each step is safe to repeat, so a
 * router that dies between the two leaves work that a retry (through any router) finishes:
 * - PUT: meta's tournament_put overwrites the cap and window (admissions stay); then the
 *   region put goes the catalog's way (route_catalog__put: recorded in meta's catalog, then
 *   applied by every region, and carried to any region that missed it), whose answer (the
 *   regions' record, created or updated in them) is the PUT's answer. Everything a region
 *   could refuse is checked first: the body by the shard's own decoder
 *   (route_tournament__check), and an id that names a plain board, or a change of order, by
 *   asking region 0 (SHARD_Q_TOURNAMENT_GET), so a refused PUT writes nothing in meta.
 *   Two admins racing puts of one id with different orders can still leave meta ahead of
 *   the regions; the next put settles it.
 * - join: meta admits the player (a second join answers the first admission and counts
 *   nothing); then the player's region records the membership with an idempotency key
 *   derived from the tournament (keys are scoped to the player), so the region's write
 *   happens once whatever the retries. A region that cannot record it yet (unreachable, or
 *   not holding the tournament or the player yet) answers 503: the admission is kept, and a
 *   retry finishes the membership without taking another place.
 * Without a metadata group (a router started without --meta) there is nowhere to decide
 * admissions: these routes answer 503. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/mpjson.h"
#include "../proto/proto.h"
#include "../lib/err.h"
#include "router_int.h"

/* The most a cap or an attempt limit may be (shard/cmd.h, meta/mcmd.h). */
#define ROUTE_TOURNAMENT_LIMIT_MAX 100000000
/* The membership write's idempotency key: this prefix and the tournament id. */
#define ROUTE_TOURNAMENT_KEY_PREFIX "tournament-join:"

static int route_tournament__no_meta(struct rreq *q)
{
    return rreq__errf(q, LR_EUNAVAILABLE,
                      "tournaments need the cluster's metadata group, which this router was "
                      "not given (laurel router --meta)");
}

/* An error of a call to meta, worded for the endpoint when meta could not answer. */
static int route_tournament__meta_err(struct rreq *q, int rv, const char *what)
{
    if (rv == LR_EUNAVAILABLE || rv == LR_ENOTLEADER) {
        return rreq__errf(q, LR_EUNAVAILABLE, "the metadata group is unavailable, so %s now; retry",
                          what);
    }
    return rv;
}

/* ---- PUT /v1/tournaments/{id} ------------------------------------------------------------ */

/* Body time @key into *@ms: 0, or LR_EINVAL. Any RFC 3339 time is taken (answers are UTC). */
static int route_tournament__time(struct rreq *q, const char *key, int64_t *ms)
{
    const char *s;
    int rv = rreq__body_str(q, key, 1, &s);
    if (rv != 0) {
        return rv;
    }
    if (timefmt_parse_rfc3339(s, strlen(s), ms) != 0 || *ms < 0 || *ms > MCMD_TS_MAX) {
        return rreq__errf(q, LR_EINVAL,
                          "%s must be an RFC 3339 time from 1970 to 9999, like "
                          "2026-11-22T13:11:00.123Z",
                          key);
    }
    return 0;
}

/* Body integer @key in [1, ROUTE_TOURNAMENT_LIMIT_MAX] into *@out; when absent or null, *@out
 * is @def, or the field is required when @def is negative. */
static int route_tournament__limit(struct rreq *q, const char *key, int64_t def, int64_t *out)
{
    json_t *v = json_object_get(q->body, key);
    if ((v == NULL || json_is_null(v)) && def >= 0) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 ||
        json_integer_value(v) > ROUTE_TOURNAMENT_LIMIT_MAX) {
        return rreq__errf(q, LR_EINVAL, "%s must be an integer from 1 to %d%s", key,
                          ROUTE_TOURNAMENT_LIMIT_MAX, def >= 0 ? ", or null" : "");
    }
    *out = json_integer_value(v);
    return 0;
}

/* "prizes": absent, null or a list of {"rank_from","rank_to","reward"} (their ranges are the
 * decoder's to check, route_tournament__check). */
static int route_tournament__prizes(struct rreq *q, struct cmd_prizes *p)
{
    json_t *v = json_object_get(q->body, "prizes"), *band;
    size_t i;
    p->n = 0;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) > CMD_PRIZES_MAX) {
        return rreq__errf(q, LR_EINVAL, "prizes must be a list of at most %d bands",
                          CMD_PRIZES_MAX);
    }
    json_array_foreach(v, i, band)
    {
        json_int_t from, to;
        const char *reward;
        if (json_unpack(band, "{s:I,s:I,s:s}", "rank_from", &from, "rank_to", &to, "reward",
                        &reward) != 0) {
            return rreq__errf(q, LR_EINVAL,
                              "prizes[%zu] needs integers rank_from and rank_to and a string "
                              "reward",
                              i);
        }
        p->items[i] = (struct cmd_prize){from, to, lr_str_of(reward)};
    }
    p->n = (uint32_t)json_array_size(v);
    return 0;
}

/* Refuse what the regions' decoder would: the command through cmd_decode, the one validator of
 * its fields (name's length, the prizes' ranks and rewards), before anything is written. */
static int route_tournament__check(struct rreq *q, const struct cmd *c)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    struct cmd out;
    char msg[LR_ERRMSG_SIZE];
    int rv;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_unpacked_init(&up);
    if (cmd_encode(&pk, c) != 0 || sb.data == NULL ||
        msgpack_unpack_next(&up, sb.data, sb.size, NULL) != MSGPACK_UNPACK_SUCCESS) {
        rv = rreq__errf(q, LR_ENOMEM, "out of memory");
    } else if ((rv = cmd_decode(&up.data, &out, msg)) != 0) {
        rv = rreq__errf(q, LR_EINVAL, "%s", msg);
    }
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    return rv;
}

/* The body of PUT /v1/tournaments/{id} into the regions' command @c (its strings point into
 * q->body) and meta's cap *@cap: 0, or LR_EINVAL with a sentence. Every step of a put parses
 * the body again instead of keeping the command in route_data, which route_catalog__put takes
 * for its own; the body does not change, so only the handler's parse can fail. */
static int route_tournament__parse(struct rreq *q, struct cmd *c, int64_t *cap)
{
    struct cmd_tournament_put *t = &c->u.tournament_put;
    const char *name;
    int rv;
    memset(c, 0, sizeof *c);
    c->type = CMD_TOURNAMENT_PUT;
    t->tournament_id = q->param[0];
    if ((rv = rreq__body_str(q, "name", 1, &name)) != 0 ||
        (rv = route_board__order_op(q, &t->order, &t->op)) != 0 ||
        (rv = route_tournament__time(q, "start_at", &t->start_ms)) != 0 ||
        (rv = route_tournament__time(q, "end_at", &t->end_ms)) != 0) {
        return rv;
    }
    if (t->end_ms <= t->start_ms) {
        return rreq__errf(q, LR_EINVAL, "end_at must be after start_at");
    }
    if ((rv = route_tournament__limit(q, "max_participants", -1, cap)) != 0 ||
        (rv = route_tournament__limit(q, "max_attempts", 0, &t->max_attempts)) != 0 ||
        (rv = route_tournament__prizes(q, &t->prizes)) != 0) {
        return rv;
    }
    t->name = lr_str_of(name);
    t->max_participants = 0; /* unlimited in the regions: meta alone admits (top of file) */
    return 0;
}

/* Meta holds the cap and window: the put goes on to every region (through meta's catalog),
 * whose answer is the PUT's. */
static int route_tournament__put_metad(struct rreq *q)
{
    msgpack_unpacked up;
    const msgpack_object *body;
    struct cmd c;
    int64_t cap;
    int status, rv = rreq__submit_result(q, ROUTER_META, &up, &status, &body);
    if (rv != 0) {
        return route_tournament__meta_err(q, rv, "a tournament cannot be put");
    }
    if (status != 200 && status != 201) {
        rreq__reply_mp(q, status, body, NULL); /* meta's refusal, in API.md's error form */
        msgpack_unpacked_destroy(&up);
        return 0;
    }
    msgpack_unpacked_destroy(&up);
    if ((rv = route_tournament__parse(q, &c, &cap)) != 0) {
        return rv;
    }
    q->errmsg[0] = '\0';
    return route_catalog__put(q, &c);
}

/* Region 0's record of the id, if any: a plain board of that id (the region's conflict) or a
 * tournament of the other order would be refused by every region, so nothing is written. */
static int route_tournament__put_checked(struct rreq *q)
{
    msgpack_unpacked up;
    const msgpack_object *o, *ord;
    struct cmd c;
    const struct cmd_tournament_put *t = &c.u.tournament_put;
    int64_t cap;
    int rv = route_tournament__parse(q, &c, &cap);
    if (rv != 0) {
        return rv;
    }
    if (q->code[0] != LR_ENOTFOUND) {
        if ((rv = rreq__answer_ok(q, 0, &up, &o)) != 0) {
            return rv;
        }
        ord = proto_map_get(o, "order");
        int asc = ord && ord->type == MSGPACK_OBJECT_STR && ord->via.str.size == 3 &&
                  memcmp(ord->via.str.ptr, "asc", 3) == 0;
        msgpack_unpacked_destroy(&up);
        if (asc != (t->order == CMD_ORDER_ASC)) {
            return rreq__errf(q, LR_ECONFLICT, "the order of tournament %.*s cannot change",
                              (int)t->tournament_id.len, t->tournament_id.p);
        }
    }
    /* The board of a tournament never changes order: board reads may cache it from now on. */
    strmap_put(&q->r->board_order, t->tournament_id.p, t->tournament_id.len,
               (void *)(uintptr_t)(t->order == CMD_ORDER_DESC ? 2 : 1));
    struct mcmd m;
    memset(&m, 0, sizeof m);
    m.type = MCMD_TOURNAMENT_PUT;
    m.u.tournament_put.tournament_id = t->tournament_id;
    m.u.tournament_put.max_participants = cap;
    m.u.tournament_put.start_at_ms = t->start_ms;
    m.u.tournament_put.end_at_ms = t->end_ms;
    rreq__args_mcmd(q, &m);
    q->next = route_tournament__put_metad;
    return rreq__call(q, ROUTER_META, PROTO_OP_SUBMIT, 1);
}

/* PUT /v1/tournaments/{id}: check every field, then region 0's record, then meta, then every
 * region. */
int route_tournament_put(struct rreq *q)
{
    struct cmd c;
    int64_t cap;
    int rv;
    if (q->r->up[ROUTER_META] == NULL) {
        return route_tournament__no_meta(q);
    }
    if ((rv = route_tournament__parse(q, &c, &cap)) != 0 ||
        (rv = route_tournament__check(q, &c)) != 0) {
        return rv;
    }
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_TOURNAMENT_GET;
    sq.board_id = q->param[0];
    rreq__args_query(q, &sq, 0);
    q->next = route_tournament__put_checked;
    return rreq__call(q, 0, PROTO_OP_QUERY, 1);
}

/* ---- GET /v1/tournaments/{id} ------------------------------------------------------------ */

/* "upcoming", "active" or "ended" at @now_ms, for the window [start_at, end_at) of @o; NULL
 * when @o's times are malformed. */
static const char *route_tournament__state(const msgpack_object *o, int64_t now_ms)
{
    const msgpack_object *s = proto_map_get(o, "start_at"), *e = proto_map_get(o, "end_at");
    int64_t start, end;
    if (s == NULL || e == NULL || s->type != MSGPACK_OBJECT_STR || e->type != MSGPACK_OBJECT_STR ||
        timefmt_parse_rfc3339(s->via.str.ptr, s->via.str.size, &start) != 0 ||
        timefmt_parse_rfc3339(e->via.str.ptr, e->via.str.size, &end) != 0) {
        return NULL;
    }
    return now_ms < start ? "upcoming" : now_ms < end ? "active" : "ended";
}

/* Region 0's record with meta's cap and count, and the state by this router's clock. */
static int route_tournament__get_counted(struct rreq *q)
{
    msgpack_unpacked um, ur;
    const msgpack_object *mo, *ro;
    int64_t cap, count;
    int rv = rreq__answer_ok(q, ROUTER_META, &um, &mo);
    if (rv != 0) {
        return route_tournament__meta_err(q, rv, "a tournament's participants cannot be counted");
    }
    /* Region 0's answer was checked by route_tournament__get_found. */
    const char *state =
        rreq__answer(q, 0, &ur, &ro) == 0 ? route_tournament__state(ro, q->now_ms) : NULL;
    json_t *j = state ? mpjson_from(ro) : NULL;
    if (j == NULL || !json_is_object(j) ||
        proto_obj_i64(proto_map_get(mo, "max_participants"), &cap) != 0 ||
        proto_obj_i64(proto_map_get(mo, "participants"), &count) != 0) {
        rv = rreq__errf(q, LR_EINTERNAL, "malformed tournament from region %s or meta",
                        q->r->region[0]);
        json_decref(j);
        goto err_after_answers;
    }
    json_object_set_new(j, "max_participants", json_integer((json_int_t)cap));
    json_object_set_new(j, "participants", json_integer((json_int_t)count));
    json_object_set_new(j, "state", json_string(state));
    rreq__reply_json(q, 200, j, NULL);
    msgpack_unpacked_destroy(&ur);
    msgpack_unpacked_destroy(&um);
    return 0;

err_after_answers:
    msgpack_unpacked_destroy(&ur);
    msgpack_unpacked_destroy(&um);
    assert(rv != 0);
    return rv;
}

/* Region 0 holds the tournament (its answer stays in q->ans[0]): ask meta for the count. */
static int route_tournament__get_found(struct rreq *q)
{
    msgpack_unpacked up;
    const msgpack_object *o;
    if (q->code[0] == LR_ECONFLICT) {
        return rreq__errf(q, LR_ENOTFOUND, "tournament %.*s not found: it is a board",
                          (int)q->param[0].len, q->param[0].p);
    }
    int rv = rreq__answer_ok(q, 0, &up, &o);
    if (rv != 0) {
        return rv;
    }
    msgpack_unpacked_destroy(&up);
    struct meta_query mq;
    memset(&mq, 0, sizeof mq);
    mq.type = META_Q_ADMISSION;
    mq.tournament_id = q->param[0];
    rreq__args_mquery(q, &mq, 0);
    q->next = route_tournament__get_counted;
    return rreq__call(q, ROUTER_META, PROTO_OP_QUERY, 1);
}

/* GET /v1/tournaments/{id}: region 0's record, then meta's count (a linearizable read of each,
 * so a join answered before the GET is counted). */
int route_tournament_get(struct rreq *q)
{
    if (q->r->up[ROUTER_META] == NULL) {
        return route_tournament__no_meta(q);
    }
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_TOURNAMENT_GET;
    sq.board_id = q->param[0];
    rreq__args_query(q, &sq, 0);
    q->next = route_tournament__get_found;
    return rreq__call(q, 0, PROTO_OP_QUERY, 1);
}

/* ---- POST /v1/tournaments/{id}/join ------------------------------------------------------ */

/* A join on its way: the membership's key and meta's count after the admission. */
struct route_tournament_join {
    char key[sizeof ROUTE_TOURNAMENT_KEY_PREFIX + VALID_ID_MAX];
    int64_t participants;
};

/* The region's membership write answered: the join's answer, with meta's count. */
static int route_tournament__joined(struct rreq *q)
{
    const struct route_tournament_join *jn = q->route_data;
    const char *region = q->r->region[q->region];
    msgpack_unpacked up;
    const msgpack_object *body;
    int status, rv = rreq__submit_result(q, (unsigned)q->region, &up, &status, &body);
    if (rv == LR_EUNAVAILABLE || rv == LR_ENOTLEADER) {
        return rreq__errf(q, LR_EUNAVAILABLE,
                          "%s is admitted to tournament %.*s, but region %s is unavailable to "
                          "record it; retry to finish the join",
                          q->player, (int)q->param[0].len, q->param[0].p, region);
    }
    if (rv != 0) {
        return rv;
    }
    if (status == 404) {
        /* The tournament's put or the player's creation has not reached the region yet. */
        rv = rreq__errf(q, LR_EUNAVAILABLE,
                        "%s is admitted to tournament %.*s, but region %s cannot record it yet; "
                        "retry to finish the join",
                        q->player, (int)q->param[0].len, q->param[0].p, region);
        msgpack_unpacked_destroy(&up);
        return rv;
    }
    if (status != 200) {
        rreq__reply_mp(q, status, body, NULL); /* the region's refusal, as it worded it */
        msgpack_unpacked_destroy(&up);
        return 0;
    }
    json_t *j = mpjson_from(body);
    msgpack_unpacked_destroy(&up);
    if (j == NULL || !json_is_object(j)) {
        json_decref(j);
        return rreq__errf(q, LR_EINTERNAL, "malformed join answer from region %s", region);
    }
    json_object_set_new(j, "participants", json_integer((json_int_t)jn->participants));
    rreq__reply_json(q, 200, j, NULL);
    return 0;
}

/* Meta admitted the player (now or before): record the membership in the player's region. */
static int route_tournament__admitted(struct rreq *q)
{
    struct route_tournament_join *jn = q->route_data;
    msgpack_unpacked up;
    const msgpack_object *body;
    int status, rv = rreq__submit_result(q, ROUTER_META, &up, &status, &body);
    if (rv != 0) {
        return route_tournament__meta_err(q, rv, "no one can join a tournament");
    }
    if (status != 200) {                       /* 404 no such tournament, 409 full or ended */
        rreq__reply_mp(q, status, body, NULL); /* meta's refusal, in API.md's error form */
        msgpack_unpacked_destroy(&up);
        return 0;
    }
    rv = proto_obj_i64(proto_map_get(body, "participants"), &jn->participants);
    msgpack_unpacked_destroy(&up);
    if (rv != 0) {
        return rreq__errf(q, LR_EINTERNAL, "malformed join answer from meta");
    }
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_TOURNAMENT_JOIN;
    c.u.tournament_join.tournament_id = q->param[0];
    c.u.tournament_join.player_id = lr_str_of(q->player);
    c.u.tournament_join.idempotency_key = lr_str_of(jn->key);
    rreq__args_cmd(q, &c);
    q->next = route_tournament__joined;
    return rreq__call(q, (unsigned)q->region, PROTO_OP_SUBMIT, 1);
}

static int route_tournament__join_located(struct rreq *q)
{
    if (q->region < 0) {
        return rreq__errf(q, LR_ENOTFOUND, "player %s not found", q->player);
    }
    /* The lookup asked meta's directory and got no answer: the admission would wait for the
     * same group again, and two call deadlines outlast the HTTP one (router/http.c). */
    if (q->have[ROUTER_META] &&
        (q->code[ROUTER_META] == LR_EUNAVAILABLE || q->code[ROUTER_META] == LR_ENOTLEADER)) {
        return route_tournament__meta_err(q, LR_EUNAVAILABLE, "no one can join a tournament");
    }
    struct mcmd m;
    memset(&m, 0, sizeof m);
    m.type = MCMD_JOIN;
    m.u.join.tournament_id = q->param[0];
    m.u.join.player_id = lr_str_of(q->player);
    rreq__args_mcmd(q, &m);
    q->next = route_tournament__admitted;
    return rreq__call(q, ROUTER_META, PROTO_OP_SUBMIT, 1);
}

/* POST /v1/tournaments/{id}/join: locate the player, meta admits, the region records. */
int route_tournament_join(struct rreq *q)
{
    struct route_tournament_join *jn;
    const char *pid;
    int rv;
    if (q->r->up[ROUTER_META] == NULL) {
        return route_tournament__no_meta(q);
    }
    if ((rv = rreq__body_str(q, "player_id", 1, &pid)) != 0) {
        return rv;
    }
    if (!valid_id(pid, strlen(pid), VALID_ID_MAX)) {
        return rreq__errf(q, LR_EINVAL, "player_id must be 1 to 64 characters of [A-Za-z0-9_.-]");
    }
    if ((jn = rreq__data(q, sizeof *jn, free)) == NULL) {
        return LR_ENOMEM;
    }
    /* Keys are scoped to the player, so the tournament alone makes the key unique, and every
     * retry of this join carries the same one. */
    snprintf(jn->key, sizeof jn->key, "%s%.*s", ROUTE_TOURNAMENT_KEY_PREFIX, (int)q->param[0].len,
             q->param[0].p);
    return rreq__locate(q, pid, route_tournament__join_located);
}
