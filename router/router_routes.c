/* router/router_routes.c — routes for health, readiness, players, the catalog and scores.
 * Each validates its input, builds a command or a query and calls regions through the helpers
 * of router_int.h; replies go out through the same helpers. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../proto/mpjson.h"
#include "../proto/proto.h"
#include "../shard/cursor.h"
#include "../lib/err.h"
#include "router_int.h"

/* ---- handlers --------------------------------------------------------------------------------------- */

void route_healthz(struct rreq *q)
{
    rreq__reply_json(q, 200, json_pack("{s:s}", "status", "ok"), NULL);
}

static void rreq__ready(struct rreq *q)
{
    for (unsigned i = 0; i < q->r->nregions; i++) {
        msgpack_unpacked up;
        const msgpack_object *o, *lid = NULL;
        rreq__answer(q, i, &up, &o);
        if (q->code[i] == 0 && o) {
            lid = proto_map_get(o, "leader_id");
        }
        int ok = lid && lid->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
        msgpack_unpacked_destroy(&up);
        if (!ok) {
            rreq__error(q, LR_EUNAVAILABLE, "region %s has no reachable leader", q->r->region[i]);
            return;
        }
    }
    rreq__reply_json(q, 200, json_pack("{s:s}", "status", "ready"), NULL);
}

/* Ready when a replica of every region reports a leader. */
void route_readyz(struct rreq *q)
{
    msgpack_sbuffer_clear(&q->args);
    q->next = rreq__ready;
    rreq__call_all(q, PROTO_OP_STATUS, 1);
}

static void rreq__player_put_go(struct rreq *q)
{
    const char *region = json_string_value(json_object_get(q->body, "region"));
    int target = router__region_index(q->r, region);
    if (q->region >= 0 && q->region != target) {
        rreq__error(q, LR_ECONFLICT, "player %s lives in region %s; region cannot change",
                    q->player, q->r->region[q->region]);
        return;
    }
    const char *name = json_string_value(json_object_get(q->body, "name"));
    json_t *g = json_object_get(q->body, "guild");
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_PLAYER_PUT;
    c.u.player_put.player_id = lr_str_of(q->player);
    c.u.player_put.name = lr_str_of(name);
    c.u.player_put.region = lr_str_of(region);
    c.u.player_put.guild = lr_str_of(json_is_string(g) ? json_string_value(g) : "");
    rreq__args_cmd(q, &c);
    q->region = target;
    q->next = rreq__reply_result;
    router__remember_region(q->r, q->player, strlen(q->player), target);
    if (rreq__call(q, (unsigned)target, PROTO_OP_SUBMIT, 1) != 0) {
        rreq__error(q, LR_ENOMEM, "out of memory");
    }
}

void route_player_put(struct rreq *q)
{
    const char *region = rreq__body_str(q, "region", 1);
    if (region == NULL || rreq__body_str(q, "name", 1) == NULL) {
        return;
    }
    json_t *g = json_object_get(q->body, "guild");
    if (g && !json_is_null(g) && !json_is_string(g)) {
        rreq__error(q, LR_EINVAL, "guild must be a string or null");
        return;
    }
    if (router__region_index(q->r, region) < 0) {
        rreq__error(q, LR_EINVAL, "unknown region %s", region);
        return;
    }
    char id[VALID_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)q->param[0].len, q->param[0].p);
    rreq__locate(q, id, rreq__player_put_go);
}

void rreq__reply_query(struct rreq *q)
{
    unsigned reg = (unsigned)q->region;
    msgpack_unpacked up;
    const msgpack_object *o;
    rreq__answer(q, reg, &up, &o);
    if (q->code[reg] != 0) {
        rreq__upstream_error(q, q->code[reg], o);
    } else if (o == NULL) {
        rreq__error(q, LR_EINTERNAL, "empty answer");
    } else {
        rreq__reply_mp(q, 200, o, NULL);
    }
    msgpack_unpacked_destroy(&up);
}

/* Run @sq on q->region (linearizable) and reply with its answer. */
void rreq__query_region(struct rreq *q, struct shard_query *sq)
{
    rreq__args_query(q, sq, 0);
    q->next = rreq__reply_query;
    if (rreq__call(q, (unsigned)q->region, PROTO_OP_QUERY, 1) != 0) {
        rreq__error(q, LR_ENOMEM, "out of memory");
    }
}

static void rreq__player_get_go(struct rreq *q)
{
    if (q->region < 0) {
        rreq__error(q, LR_ENOTFOUND, "player %s not found", q->player);
        return;
    }
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_PLAYER_GET;
    sq.player_id = lr_str_of(q->player);
    rreq__query_region(q, &sq);
}

void route_player_get(struct rreq *q)
{
    char id[VALID_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)q->param[0].len, q->param[0].p);
    rreq__locate(q, id, rreq__player_get_go);
}

/* Catalog writes go to every region; the answer is the first region's. A region that could
 * not be reached makes the request fail with its error (retrying is safe) and gets the write
 * again from the repair queue once it is back (router_repair.c). */
static void rreq__catalog_done(struct rreq *q)
{
    for (unsigned i = 0; i < q->r->nregions; i++) {
        if (q->code[i] == 0) {
            continue;
        }
        if (q->region < 0) {
            q->region = (int)i;
        }
        if (q->code[i] == LR_EUNAVAILABLE || q->code[i] == LR_ENOMEM) {
            router__repair_add(q->r, i, q->args.data, q->args.size);
        }
    }
    if (q->region < 0) {
        q->region = 0;
    }
    rreq__reply_result(q);
}

/* Send catalog put @c to every region, stamped with this router's next version: its clock,
 * and always above the last one it stamped, so its own puts order as it made them. */
void rreq__catalog(struct rreq *q, const struct cmd *c)
{
    struct cmd stamped = *c;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t v = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (v <= q->r->catalog_version) {
        v = q->r->catalog_version + 1;
    }
    q->r->catalog_version = v;
    switch (stamped.type) {
    case CMD_GAME_PUT: stamped.u.game_put.version = v; break;
    case CMD_ACH_PUT: stamped.u.ach_put.version = v; break;
    case CMD_BOARD_PUT: stamped.u.board_put.version = v; break;
    case CMD_TOURNAMENT_PUT: stamped.u.tournament_put.version = v; break;
    default: break;
    }
    c = &stamped;
    rreq__args_cmd(q, c);
    q->region = -1;
    q->next = rreq__catalog_done;
    rreq__call_all(q, PROTO_OP_SUBMIT, 1);
}

void route_game_put(struct rreq *q)
{
    const char *name = rreq__body_str(q, "name", 1);
    if (name == NULL) {
        return;
    }
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_GAME_PUT;
    c.u.game_put.game_id = q->param[0];
    c.u.game_put.name = lr_str_of(name);
    rreq__catalog(q, &c);
}

static int router__pick(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

/* PUT /v1/boards/{id}: every field checked here, the shard checks them again on apply. */
void route_board_put(struct rreq *q)
{
    static const char *const orders[] = {"desc", "asc"};
    static const char *const ops[] = {"best", "set", "incr", "decr"};
    static const char *const wins[] = {"alltime", "daily", "weekly", "monthly"};
    struct cmd c;
    json_t *v;
    size_t i;
    memset(&c, 0, sizeof c);
    c.type = CMD_BOARD_PUT;
    c.u.board_put.board_id = q->param[0];
    int order = router__pick(json_string_value(json_object_get(q->body, "order")), orders, 2);
    int op = router__pick(json_string_value(json_object_get(q->body, "operator")), ops, 4);
    if (order < 0 || op < 0) {
        rreq__error(q, LR_EINVAL, "order must be desc or asc; operator best, set, incr or decr");
        return;
    }
    c.u.board_put.order = order;
    c.u.board_put.op = op;
    c.u.board_put.windows = 1u << TIMEFMT_ALLTIME;
    if ((v = json_object_get(q->body, "windows")) != NULL) {
        json_t *w;
        c.u.board_put.windows = 0;
        if (!json_is_array(v) || json_array_size(v) == 0) {
            rreq__error(q, LR_EINVAL, "windows must be a non-empty list");
            return;
        }
        json_array_foreach(v, i, w)
        {
            int k = router__pick(json_string_value(w), wins, 4);
            if (k < 0) {
                rreq__error(q, LR_EINVAL, "windows are alltime, daily, weekly or monthly");
                return;
            }
            c.u.board_put.windows |= 1u << k;
        }
    }
    v = json_object_get(q->body, "reset_period_s");
    if (v && !json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < 60)) {
        rreq__error(q, LR_EINVAL, "reset_period_s must be null or an integer >= 60");
        return;
    }
    c.u.board_put.reset_period_s = v && json_is_integer(v) ? json_integer_value(v) : 0;
    v = json_object_get(q->body, "snapshot_top");
    if (v && (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000)) {
        rreq__error(q, LR_EINVAL, "snapshot_top must be an integer from 0 to 1000");
        return;
    }
    c.u.board_put.snapshot_top = v ? json_integer_value(v) : 10;
    v = json_object_get(q->body, "rewards");
    if (v && !json_is_null(v)) {
        json_t *band;
        if (!json_is_array(v) || json_array_size(v) > CMD_PRIZES_MAX) {
            rreq__error(q, LR_EINVAL, "rewards must be a list of at most %d bands",
                        CMD_PRIZES_MAX);
            return;
        }
        json_array_foreach(v, i, band)
        {
            json_int_t from, to;
            const char *reward;
            if (json_unpack(band, "{s:I,s:I,s:s}", "rank_from", &from, "rank_to", &to, "reward",
                            &reward) != 0) {
                rreq__error(q, LR_EINVAL, "rewards[%zu] needs rank_from, rank_to and reward", i);
                return;
            }
            c.u.board_put.rewards.items[i].rank_from = from;
            c.u.board_put.rewards.items[i].rank_to = to;
            c.u.board_put.rewards.items[i].reward = lr_str_of(reward);
        }
        c.u.board_put.rewards.n = (uint32_t)json_array_size(v);
    }
    v = json_object_get(q->body, "game_id");
    c.u.board_put.game_id = lr_str_of(v && json_is_string(v) ? json_string_value(v) : "");
    strmap_put(&q->r->board_order, q->param[0].p, q->param[0].len,
               (void *)(uintptr_t)(order == CMD_ORDER_DESC ? 2 : 1));
    rreq__catalog(q, &c);
}

void route_board_get(struct rreq *q)
{
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_BOARD_GET;
    sq.board_id = q->param[0];
    q->region = 0;
    rreq__query_region(q, &sq);
}

void route_game_get(struct rreq *q)
{
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_GAME_GET;
    sq.game_id = q->param[0];
    q->region = 0; /* the catalog is the same in every region */
    rreq__query_region(q, &sq);
}

/* ---- scores and unlocks: one builder for the single endpoints and for events items ---------- */

static int router__errf(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int router__errf(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return LR_EINVAL;
}

/* A string field that must be present; NULL with the sentence in @err otherwise. */
static const char *router__str_field(json_t *item, const char *key, char *err, size_t cap)
{
    json_t *v = json_object_get(item, key);
    if (v == NULL || json_is_null(v)) {
        router__errf(err, cap, "%s is required", key);
        return NULL;
    }
    if (!json_is_string(v)) {
        router__errf(err, cap, "%s must be a string", key);
        return NULL;
    }
    return json_string_value(v);
}

/* The player id and idempotency key every write item carries, checked before the router
 * asks anyone where the player lives. */
static int router__write_ids(json_t *item, struct lr_str *pid, struct lr_str *key, char *err,
                             size_t cap)
{
    const char *p = router__str_field(item, "player_id", err, cap);
    const char *k = p ? router__str_field(item, "idempotency_key", err, cap) : NULL;
    if (k == NULL) {
        return LR_EINVAL;
    }
    *pid = lr_str_of(p);
    *key = lr_str_of(k);
    if (!valid_id(pid->p, pid->len, VALID_ID_MAX)) {
        return router__errf(err, cap, "player_id must be 1 to 64 characters of [A-Za-z0-9_.-]");
    }
    if (!valid_idem(key->p, key->len)) {
        return router__errf(err, cap, "idempotency_key must be 8 to 128 printable ASCII "
                                      "characters");
    }
    return 0;
}

static int router__score_field(json_t *item, const char *key, int required, int64_t *out,
                               char *err, size_t cap)
{
    json_t *v = json_object_get(item, key);
    *out = 0;
    if (v == NULL || json_is_null(v)) {
        return required ? router__errf(err, cap, "%s is required", key) : 0;
    }
    if (!json_is_integer(v) || !valid_score(json_integer_value(v))) {
        return router__errf(err, cap, "%s must be an integer in [-(2^53-1), 2^53-1]", key);
    }
    *out = json_integer_value(v);
    return 0;
}

int router__score_cmd(json_t *item, struct lr_str board, struct cmd *c, char **mtext,
                      char *err, size_t cap)
{
    memset(c, 0, sizeof *c);
    *mtext = NULL;
    c->type = CMD_SCORE;
    c->u.score.board_id = board;
    if (!valid_id(board.p, board.len, VALID_ID_MAX)) {
        return router__errf(err, cap, "board_id must be 1 to 64 characters of [A-Za-z0-9_.-]");
    }
    if (router__write_ids(item, &c->u.score.player_id, &c->u.score.idempotency_key, err,
                          cap) != 0 ||
        router__score_field(item, "score", 1, &c->u.score.score, err, cap) != 0 ||
        router__score_field(item, "subscore", 0, &c->u.score.subscore, err, cap) != 0) {
        return LR_EINVAL;
    }
    json_t *meta = json_object_get(item, "metadata");
    if (meta && !json_is_null(meta)) {
        *mtext = json_is_object(meta) ? json_dumps(meta, JSON_COMPACT) : NULL;
        if (*mtext == NULL || strlen(*mtext) > VALID_METADATA_MAX) {
            return router__errf(err, cap, "metadata must be a JSON object of at most %d bytes",
                                VALID_METADATA_MAX);
        }
        c->u.score.metadata = lr_str_of(*mtext);
    }
    return 0;
}

int router__unlock_cmd(json_t *item, struct cmd *c, char *err, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->type = CMD_UNLOCK;
    const char *game = router__str_field(item, "game_id", err, cap);
    const char *ach = game ? router__str_field(item, "achievement_id", err, cap) : NULL;
    if (ach == NULL ||
        router__write_ids(item, &c->u.unlock.player_id, &c->u.unlock.idempotency_key, err,
                          cap) != 0) {
        return LR_EINVAL;
    }
    c->u.unlock.game_id = lr_str_of(game);
    c->u.unlock.achievement_id = lr_str_of(ach);
    json_t *steps = json_object_get(item, "steps");
    if (steps && !json_is_null(steps)) {
        if (!json_is_integer(steps) || json_integer_value(steps) < 1 ||
            json_integer_value(steps) > 1000000000) {
            return router__errf(err, cap, "steps must be an integer from 1 to 1000000000");
        }
        c->u.unlock.steps = json_integer_value(steps);
    }
    return 0;
}

/* Submit the command packed in q->cmd to the player's region, once it is known. */
static void rreq__write_go(struct rreq *q)
{
    if (q->region < 0) {
        rreq__error(q, LR_ENOTFOUND, "player %s not found", q->player);
        return;
    }
    msgpack_sbuffer_clear(&q->args);
    msgpack_sbuffer_write(&q->args, q->cmd.data, q->cmd.size);
    q->next = rreq__reply_result;
    if (rreq__call(q, (unsigned)q->region, PROTO_OP_SUBMIT, 1) != 0) {
        rreq__error(q, LR_ENOMEM, "out of memory");
    }
}

/* Pack @c as a one-command submit into q->cmd and send it to @pid's region. */
static void rreq__write(struct rreq *q, const struct cmd *c, struct lr_str pid)
{
    msgpack_packer pk;
    char id[VALID_ID_MAX + 1];
    msgpack_packer_init(&pk, &q->cmd, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    cmd_encode(&pk, c);
    snprintf(id, sizeof id, "%.*s", (int)pid.len, pid.p);
    rreq__locate(q, id, rreq__write_go);
}

void route_score(struct rreq *q)
{
    struct cmd c;
    char *mtext, err[256];
    if (router__score_cmd(q->body, q->param[0], &c, &mtext, err, sizeof err) != 0) {
        free(mtext);
        rreq__error(q, LR_EINVAL, "%s", err);
        return;
    }
    rreq__write(q, &c, c.u.score.player_id);
    free(mtext);
}

/* POST /v1/unlocks: to the player's region; the shard checks ids, steps and the key again. */
void route_unlock(struct rreq *q)
{
    struct cmd c;
    char err[256];
    if (router__unlock_cmd(q->body, &c, err, sizeof err) != 0) {
        rreq__error(q, LR_EINVAL, "%s", err);
        return;
    }
    rreq__write(q, &c, c.u.unlock.player_id);
}

/* PUT /v1/games/{game}/achievements/{ach}: to every region. */
void route_ach_put(struct rreq *q)
{
    const char *name = rreq__body_str(q, "name", 1);
    if (name == NULL) {
        return;
    }
    json_t *desc = json_object_get(q->body, "description"), *points = json_object_get(q->body, "points");
    json_t *hidden = json_object_get(q->body, "hidden"), *steps = json_object_get(q->body, "steps");
    if ((desc && !json_is_null(desc) && !json_is_string(desc)) ||
        (points && (!json_is_integer(points) || json_integer_value(points) < 0)) ||
        (hidden && !json_is_boolean(hidden)) ||
        (steps && (!json_is_integer(steps) || json_integer_value(steps) < 1))) {
        rreq__error(q, LR_EINVAL, "description is a string, points an integer >= 0, hidden a "
                                  "boolean and steps an integer >= 1");
        return;
    }
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_ACH_PUT;
    c.u.ach_put.game_id = q->param[0];
    c.u.ach_put.achievement_id = q->param[1];
    c.u.ach_put.name = lr_str_of(name);
    c.u.ach_put.description = lr_str_of(json_is_string(desc) ? json_string_value(desc) : "");
    c.u.ach_put.points = points ? json_integer_value(points) : 0;
    c.u.ach_put.hidden = hidden ? json_is_true(hidden) : 0;
    c.u.ach_put.steps = steps ? json_integer_value(steps) : 1;
    rreq__catalog(q, &c);
}

/* Every region counts its own unlocks and players: the listing sums them and recomputes the
 * percentages, so they are exact for the whole cluster. */
static void rreq__ach_merge(struct rreq *q)
{
    msgpack_unpacked up[ROUTER_MAX_REGIONS];
    const msgpack_object *o[ROUTER_MAX_REGIONS];
    unsigned nr = q->r->nregions;
    int64_t players = 0;
    json_t *out = NULL;
    for (unsigned i = 0; i < nr; i++) {
        rreq__answer(q, i, &up[i], &o[i]);
    }
    for (unsigned i = 0; i < nr; i++) {
        int64_t p = 0;
        if (q->code[i] != 0 || o[i] == NULL) {
            rreq__upstream_error(q, q->code[i] ? q->code[i] : LR_EINTERNAL, o[i]);
            goto out;
        }
        proto_obj_i64(proto_map_get(o[i], "players"), &p);
        players += p;
    }
    out = mpjson_from(o[0]);
    json_t *list = json_object_get(out, "achievements"), *item;
    size_t k;
    json_array_foreach(list, k, item)
    {
        int64_t count = 0;
        const char *id = json_string_value(json_object_get(item, "achievement_id"));
        size_t idlen = id ? strlen(id) : 0;
        for (unsigned i = 0; i < nr; i++) {
            const msgpack_object *l = proto_map_get(o[i], "achievements");
            for (uint32_t j = 0; l && l->type == MSGPACK_OBJECT_ARRAY && j < l->via.array.size;
                 j++) {
                const msgpack_object *aid = proto_map_get(&l->via.array.ptr[j], "achievement_id");
                int64_t c = 0;
                if (aid && aid->type == MSGPACK_OBJECT_STR && aid->via.str.size == idlen &&
                    memcmp(aid->via.str.ptr, id, idlen) == 0) {
                    proto_obj_i64(proto_map_get(&l->via.array.ptr[j], "unlocked_count"), &c);
                    count += c;
                    break;
                }
            }
        }
        json_object_set_new(item, "unlocked_count", json_integer(count));
        json_object_set_new(item, "unlocked_pct",
                            json_real(players ? round(10000.0 * (double)count / (double)players) /
                                                    100.0
                                              : 0.0));
    }
    json_object_set_new(out, "players", json_integer(players));
    rreq__reply_json(q, 200, out, NULL);
out:
    for (unsigned i = 0; i < nr; i++) {
        msgpack_unpacked_destroy(&up[i]);
    }
}

void route_ach_list(struct rreq *q)
{
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_ACH_LIST;
    sq.game_id = q->param[0];
    sq.admin = q->admin;
    rreq__args_query(q, &sq, 0);
    q->next = rreq__ach_merge;
    rreq__call_all(q, PROTO_OP_QUERY, 1);
}

/* ---- player reads: one round trip to the player's region --------------------------------------- */

static void rreq__player_read_go(struct rreq *q)
{
    struct shard_query sq;
    if (q->region < 0) {
        rreq__error(q, LR_ENOTFOUND, "player %s not found", q->player);
        return;
    }
    memset(&sq, 0, sizeof sq);
    sq.type = q->top.qtype;
    sq.player_id = lr_str_of(q->player);
    sq.game_id = lr_str_of(q->top.game);
    sq.limit = q->top.limit;
    sq.cursor = lr_str_of(q->top.cursor);
    sq.days = q->top.days;
    rreq__query_region(q, &sq);
}

/* Parse the optional game_id, limit (1..@max_limit, 0: not accepted), cursor and days
 * (1..90 when @days) and run @type on the player's region. */
static void rreq__player_read(struct rreq *q, enum shard_qtype type, uint32_t max_limit,
                              int days)
{
    char id[VALID_ID_MAX + 1];
    if (router__query(q, "game_id", q->top.game, sizeof q->top.game) < 0 ||
        (q->top.game[0] && !valid_id(q->top.game, strlen(q->top.game), VALID_GAME_ID_MAX))) {
        rreq__error(q, LR_EINVAL, "game_id must be 1 to 56 characters of [A-Za-z0-9_.-]");
        return;
    }
    long v;
    if (max_limit) {
        if (router__query_int(q, "limit", 1, max_limit, 50, &v) != 0) {
            rreq__error(q, LR_EINVAL, "limit must be 1 to %u", max_limit);
            return;
        }
        q->top.limit = (uint32_t)v;
        if (router__query(q, "cursor", q->top.cursor, sizeof q->top.cursor) < 0) {
            rreq__error(q, LR_EINVAL, "cursor is not valid");
            return;
        }
    }
    if (days) {
        if (router__query_int(q, "days", 1, 90, 30, &v) != 0) {
            rreq__error(q, LR_EINVAL, "days must be 1 to 90");
            return;
        }
        q->top.days = (uint32_t)v;
    }
    q->top.qtype = type;
    snprintf(id, sizeof id, "%.*s", (int)q->param[0].len, q->param[0].p);
    rreq__locate(q, id, rreq__player_read_go);
}

void route_history(struct rreq *q) { rreq__player_read(q, SHARD_Q_HISTORY, 1000, 0); }
void route_dashboard(struct rreq *q) { rreq__player_read(q, SHARD_Q_DASHBOARD, 0, 0); }
void route_stats(struct rreq *q) { rreq__player_read(q, SHARD_Q_STATS, 0, 1); }
void route_rewards(struct rreq *q) { rreq__player_read(q, SHARD_Q_REWARDS, 0, 0); }
