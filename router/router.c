/* router/router.c — routes of API.md over the regions (see router.h).
 *
 * One table of routes (ROUTER_ROUTES) and one pipeline: match the method and path pattern →
 * check the key the route needs → the route's handler validates its input and calls regions
 * through their upstreams → one reply. Answers from replicas are msgpack maps keyed by
 * API.md's field names and become JSON through mpjson, so handlers do not serialize fields by
 * hand. Every error goes out as {"error":{"code","message"}} with its status.
 *
 * Player → region: a write names only the player, so the router keeps a cache of where each
 * player lives, filled by PUT /v1/players and by asking the regions (in parallel) on a miss. */
#include "router.h"

#include <assert.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../node/mpjson.h"
#include "../node/proto.h"
#include "../shard/cursor.h"
#include "../shard/err.h"
#include "../shard/strmap.h"
#include "http.h"

#define ROUTER__PARAMS 3

enum router__auth { AUTH_NONE, AUTH_API, AUTH_ADMIN };

struct router {
    uv_loop_t *loop;
    struct http *http;
    struct upstream *up[ROUTER_MAX_REGIONS];
    char region[ROUTER_MAX_REGIONS][65];
    unsigned nregions;
    char admin_key[256], api_key[256];
    unsigned timeout_ms;
    struct strmap player_region; /* player id -> (uintptr_t)region index + 1 */
    struct strmap board_order;   /* board id -> (uintptr_t)order + 1 */
    void (*done)(void *data);
    void *done_data;
    unsigned closing;
};

/* One HTTP request in flight through the pipeline. */
struct rreq {
    struct router *r;
    struct http_req *h;
    const struct router__route *route;
    char path[512];
    struct lr_str param[ROUTER__PARAMS];
    json_t *body;
    /* fan-out to regions */
    unsigned pending;
    int code[ROUTER_MAX_REGIONS];
    msgpack_sbuffer ans[ROUTER_MAX_REGIONS];
    int have[ROUTER_MAX_REGIONS];
    int region; /* the region a player-scoped request goes to, or -1 */
    void (*next)(struct rreq *q); /* runs when every pending region call has answered */
    void (*then)(struct rreq *q); /* runs once the player's region is known */
    char player[VALID_ID_MAX + 1];
    msgpack_sbuffer args;
};

typedef void (*router__handler)(struct rreq *q);

struct router__route {
    enum http_method method;
    const char *pattern;
    router__handler handler;
    enum router__auth auth;
};

/* ---- replies ------------------------------------------------------------------------------------ */

static void rreq__free(struct rreq *q)
{
    for (unsigned i = 0; i < ROUTER_MAX_REGIONS; i++) {
        if (q->have[i]) {
            msgpack_sbuffer_destroy(&q->ans[i]);
        }
    }
    msgpack_sbuffer_destroy(&q->args);
    json_decref(q->body);
    free(q);
}

static void rreq__reply_json(struct rreq *q, int status, json_t *j, const char *headers)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL) {
        http_reply(q->h, 500, "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}",
                   57, NULL);
    } else {
        http_reply(q->h, status, s, strlen(s), headers);
    }
    free(s);
    json_decref(j);
    rreq__free(q);
}

static void rreq__error(struct rreq *q, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void rreq__error(struct rreq *q, int rv, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int status = err_http_status(rv);
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", err_api_code(rv), "message", msg);
    rreq__reply_json(q, status, j, status == 503 || status == 429 ? "Retry-After: 1\r\n" : NULL);
}

/* Reply with a replica's msgpack answer as JSON. */
static void rreq__reply_mp(struct rreq *q, int status, const msgpack_object *o,
                           const char *headers)
{
    json_t *j = mpjson_from(o);
    if (j == NULL) {
        rreq__error(q, LR_EINTERNAL, "answer could not be converted to JSON");
        return;
    }
    rreq__reply_json(q, status, j, headers);
}

/* An upstream error (code != 0) with its payload sentence. */
static void rreq__upstream_error(struct rreq *q, int code, const msgpack_object *payload)
{
    if (payload && payload->type == MSGPACK_OBJECT_STR) {
        rreq__error(q, code, "%.*s", (int)payload->via.str.size, payload->via.str.ptr);
    } else {
        rreq__error(q, code, code == LR_EUNAVAILABLE ? "region unavailable; retry" : "%s",
                    err_message(code));
    }
}

/* ---- calls to regions ------------------------------------------------------------------------------ */

struct rcall {
    struct rreq *q;
    unsigned region;
};

static void rreq__answered(void *data, int code, const msgpack_object *payload)
{
    struct rcall *c = data;
    struct rreq *q = c->q;
    q->code[c->region] = code;
    msgpack_sbuffer_init(&q->ans[c->region]);
    q->have[c->region] = 1;
    if (payload) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &q->ans[c->region], msgpack_sbuffer_write);
        msgpack_pack_object(&pk, *payload);
    }
    free(c);
    if (--q->pending == 0) {
        q->next(q);
    }
}

/* Call @op with q->args on @region; q->next runs when every pending call has answered. */
static int rreq__call(struct rreq *q, unsigned region, int op, int need_leader)
{
    struct rcall *c = malloc(sizeof *c);
    if (c == NULL) {
        return LR_ENOMEM;
    }
    c->q = q;
    c->region = region;
    if (q->have[region]) {
        msgpack_sbuffer_destroy(&q->ans[region]);
        q->have[region] = 0;
    }
    q->pending++;
    int rv = upstream_call(q->r->up[region], op, need_leader, q->args.size ? q->args.data : NULL,
                           q->args.size, q->r->timeout_ms, rreq__answered, c);
    if (rv != 0) {
        q->pending--;
        free(c);
    }
    return rv;
}

/* The answer of @region as an object (valid while q lives). */
static int rreq__answer(struct rreq *q, unsigned region, msgpack_unpacked *up,
                        const msgpack_object **o)
{
    msgpack_unpacked_init(up);
    if (!q->have[region] || q->ans[region].size == 0 ||
        proto_unpack(q->ans[region].data, q->ans[region].size, up) != 0) {
        *o = NULL;
        return -1;
    }
    *o = &up->data;
    return 0;
}

/* ---- input ------------------------------------------------------------------------------------------ */

/* Value of query parameter @name into @out; 0 if present, 1 if absent, -1 if malformed. */
static int router__query(const struct rreq *q, const char *name, char *out, size_t cap)
{
    const char *p = q->h->query;
    size_t nl = strlen(name);
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len > nl && p[nl] == '=' && memcmp(p, name, nl) == 0) {
            /* lws has already %-decoded it (http.h) */
            if (len - nl - 1 >= cap) {
                return -1;
            }
            memcpy(out, p + nl + 1, len - nl - 1);
            out[len - nl - 1] = '\0';
            return 0;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 1;
}

static int router__region_index(const struct router *r, const char *id)
{
    for (unsigned i = 0; i < r->nregions; i++) {
        if (strcmp(r->region[i], id) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Body field helpers: a string of the given rule, or NULL with a reply sent. */
static const char *rreq__body_str(struct rreq *q, const char *key, int required)
{
    json_t *v = q->body ? json_object_get(q->body, key) : NULL;
    if (v == NULL || json_is_null(v)) {
        if (required) {
            rreq__error(q, LR_EINVAL, "%s is required", key);
        }
        return NULL;
    }
    if (!json_is_string(v)) {
        rreq__error(q, LR_EINVAL, "%s must be a string", key);
        return NULL;
    }
    return json_string_value(v);
}

static struct lr_str router__s(const char *s)
{
    struct lr_str r = {s ? s : "", s ? (uint32_t)strlen(s) : 0};
    return r;
}

/* Pack one command as a submit's args. */
static void rreq__args_cmd(struct rreq *q, const struct cmd *c)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&q->args);
    msgpack_packer_init(&pk, &q->args, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    cmd_encode(&pk, c);
}

static void rreq__args_query(struct rreq *q, const struct shard_query *sq, int stale)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&q->args);
    msgpack_packer_init(&pk, &q->args, msgpack_sbuffer_write);
    proto_query_encode(&pk, sq, stale);
}

/* ---- writes: answer with the single command's result ---------------------------------------------------- */

static void rreq__reply_result(struct rreq *q)
{
    unsigned reg = (unsigned)q->region;
    msgpack_unpacked up;
    const msgpack_object *o;
    if (q->code[reg] != 0) {
        rreq__answer(q, reg, &up, &o);
        rreq__upstream_error(q, q->code[reg], o);
        msgpack_unpacked_destroy(&up);
        return;
    }
    if (rreq__answer(q, reg, &up, &o) != 0) {
        msgpack_unpacked_destroy(&up);
        rreq__error(q, LR_EINTERNAL, "malformed answer from region %s", q->r->region[reg]);
        return;
    }
    const msgpack_object *res = proto_map_get(o, "results");
    if (res == NULL || res->type != MSGPACK_OBJECT_ARRAY || res->via.array.size != 1 ||
        res->via.array.ptr[0].type != MSGPACK_OBJECT_ARRAY ||
        res->via.array.ptr[0].via.array.size != 3) {
        msgpack_unpacked_destroy(&up);
        rreq__error(q, LR_EINTERNAL, "malformed result from region %s", q->r->region[reg]);
        return;
    }
    const msgpack_object *r0 = res->via.array.ptr[0].via.array.ptr;
    int status = (int)r0[0].via.i64;
    int replayed = r0[1].type == MSGPACK_OBJECT_BOOLEAN && r0[1].via.boolean;
    rreq__reply_mp(q, status, &r0[2], replayed ? "Idempotent-Replayed: true\r\n" : NULL);
    msgpack_unpacked_destroy(&up);
}

/* ---- finding a player's region -------------------------------------------------------------------- */

static void rreq__located(struct rreq *q);

/* Find where player @id lives (cache, else ask every region's leader) and run @then with
 * q->region set (-1: no such player). */
static void rreq__locate(struct rreq *q, const char *id, void (*then)(struct rreq *))
{
    void *hit = strmap_get(&q->r->player_region, id, strlen(id));
    snprintf(q->player, sizeof q->player, "%s", id);
    q->then = then;
    if (hit) {
        q->region = (int)((uintptr_t)hit - 1);
        then(q);
        return;
    }
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_PLAYER_GET;
    sq.player_id = router__s(q->player);
    rreq__args_query(q, &sq, 0);
    q->next = rreq__located;
    q->region = -1;
    for (unsigned i = 0; i < q->r->nregions; i++) {
        if (rreq__call(q, i, PROTO_OP_QUERY, 1) != 0) {
            rreq__error(q, LR_ENOMEM, "out of memory");
            return;
        }
    }
}

static void rreq__located(struct rreq *q)
{
    int unavailable = 0;
    for (unsigned i = 0; i < q->r->nregions; i++) {
        if (q->code[i] == 0) {
            q->region = (int)i;
        } else if (q->code[i] != LR_ENOTFOUND) {
            unavailable = 1;
        }
    }
    if (q->region >= 0) {
        strmap_put(&q->r->player_region, q->player, strlen(q->player),
                   (void *)(uintptr_t)(q->region + 1));
    } else if (unavailable) {
        rreq__error(q, LR_EUNAVAILABLE, "a region is unavailable; retry");
        return;
    }
    q->then(q);
}

/* ---- handlers --------------------------------------------------------------------------------------- */

static void route_healthz(struct rreq *q)
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
static void route_readyz(struct rreq *q)
{
    msgpack_sbuffer_clear(&q->args);
    q->next = rreq__ready;
    for (unsigned i = 0; i < q->r->nregions; i++) {
        if (rreq__call(q, i, PROTO_OP_STATUS, 1) != 0) {
            rreq__error(q, LR_ENOMEM, "out of memory");
            return;
        }
    }
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
    c.u.player_put.player_id = router__s(q->player);
    c.u.player_put.name = router__s(name);
    c.u.player_put.region = router__s(region);
    c.u.player_put.guild = router__s(json_is_string(g) ? json_string_value(g) : "");
    rreq__args_cmd(q, &c);
    q->region = target;
    q->next = rreq__reply_result;
    strmap_put(&q->r->player_region, q->player, strlen(q->player),
               (void *)(uintptr_t)(target + 1));
    if (rreq__call(q, (unsigned)target, PROTO_OP_SUBMIT, 1) != 0) {
        rreq__error(q, LR_ENOMEM, "out of memory");
    }
}

static void route_player_put(struct rreq *q)
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

static void rreq__reply_query(struct rreq *q)
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
static void rreq__query_region(struct rreq *q, const struct shard_query *sq)
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
    sq.player_id = router__s(q->player);
    rreq__query_region(q, &sq);
}

static void route_player_get(struct rreq *q)
{
    char id[VALID_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)q->param[0].len, q->param[0].p);
    rreq__locate(q, id, rreq__player_get_go);
}

/* Catalog writes go to every region; the answer is the first region's. A region that fails
 * makes the request fail (the write is idempotent: retry). */
static void rreq__catalog_done(struct rreq *q)
{
    for (unsigned i = 0; i < q->r->nregions; i++) {
        if (q->code[i] != 0) {
            q->region = (int)i;
            break;
        }
    }
    if (q->region < 0) {
        q->region = 0;
    }
    rreq__reply_result(q);
}

static void rreq__catalog(struct rreq *q, const struct cmd *c)
{
    rreq__args_cmd(q, c);
    q->region = -1;
    q->next = rreq__catalog_done;
    for (unsigned i = 0; i < q->r->nregions; i++) {
        if (rreq__call(q, i, PROTO_OP_SUBMIT, 1) != 0) {
            rreq__error(q, LR_ENOMEM, "out of memory");
            return;
        }
    }
}

static void route_game_put(struct rreq *q)
{
    const char *name = rreq__body_str(q, "name", 1);
    if (name == NULL) {
        return;
    }
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_GAME_PUT;
    c.u.game_put.game_id = q->param[0];
    c.u.game_put.name = router__s(name);
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
static void route_board_put(struct rreq *q)
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
            c.u.board_put.rewards.items[i].reward = router__s(reward);
        }
        c.u.board_put.rewards.n = (uint32_t)json_array_size(v);
    }
    v = json_object_get(q->body, "game_id");
    c.u.board_put.game_id = router__s(v && json_is_string(v) ? json_string_value(v) : "");
    strmap_put(&q->r->board_order, q->param[0].p, q->param[0].len,
               (void *)(uintptr_t)(order == CMD_ORDER_DESC ? 2 : 1));
    rreq__catalog(q, &c);
}

static void route_board_get(struct rreq *q)
{
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_BOARD_GET;
    sq.board_id = q->param[0];
    q->region = 0;
    rreq__query_region(q, &sq);
}

static void route_game_get(struct rreq *q)
{
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_GAME_GET;
    sq.game_id = q->param[0];
    q->region = 0; /* the catalog is the same in every region */
    rreq__query_region(q, &sq);
}

static void rreq__score_go(struct rreq *q)
{
    if (q->region < 0) {
        rreq__error(q, LR_ENOTFOUND, "player %s not found", q->player);
        return;
    }
    json_t *meta = json_object_get(q->body, "metadata");
    char *mtext = meta && !json_is_null(meta) ? json_dumps(meta, JSON_COMPACT) : NULL;
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_SCORE;
    c.u.score.board_id = q->param[0];
    c.u.score.player_id = router__s(q->player);
    c.u.score.score = json_integer_value(json_object_get(q->body, "score"));
    c.u.score.subscore = json_integer_value(json_object_get(q->body, "subscore"));
    c.u.score.metadata = router__s(mtext);
    c.u.score.idempotency_key = router__s(json_string_value(json_object_get(q->body,
                                                                             "idempotency_key")));
    rreq__args_cmd(q, &c);
    free(mtext);
    q->next = rreq__reply_result;
    if (rreq__call(q, (unsigned)q->region, PROTO_OP_SUBMIT, 1) != 0) {
        rreq__error(q, LR_ENOMEM, "out of memory");
    }
}

static int rreq__int_field(struct rreq *q, const char *key, int required)
{
    json_t *v = json_object_get(q->body, key);
    if (v == NULL || json_is_null(v)) {
        if (required) {
            rreq__error(q, LR_EINVAL, "%s is required", key);
            return -1;
        }
        return 0;
    }
    if (!json_is_integer(v) || !valid_score(json_integer_value(v))) {
        rreq__error(q, LR_EINVAL, "%s must be an integer in [-(2^53-1), 2^53-1]", key);
        return -1;
    }
    return 0;
}

static void route_score(struct rreq *q)
{
    const char *pid = rreq__body_str(q, "player_id", 1);
    if (pid == NULL || rreq__int_field(q, "score", 1) != 0 ||
        rreq__int_field(q, "subscore", 0) != 0 ||
        rreq__body_str(q, "idempotency_key", 1) == NULL) {
        return;
    }
    json_t *meta = json_object_get(q->body, "metadata");
    if (meta && !json_is_null(meta)) {
        char *m = json_is_object(meta) ? json_dumps(meta, JSON_COMPACT) : NULL;
        size_t ml = m ? strlen(m) : 0;
        free(m);
        if (!json_is_object(meta) || ml > VALID_METADATA_MAX) {
            rreq__error(q, LR_EINVAL, "metadata must be a JSON object of at most %d bytes",
                        VALID_METADATA_MAX);
            return;
        }
    }
    rreq__locate(q, pid, rreq__score_go);
}

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
    unsigned limit = (unsigned)json_integer_value(json_object_get(q->body, "limit"));
    int desc = (int)json_integer_value(json_object_get(q->body, "desc"));
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
    json_t *j = json_pack("{s:s#,s:O,s:O,s:o,s:o,s:o,s:I}", "board_id", q->param[0].p,
                          (int)q->param[0].len, "scope", json_object_get(q->body, "scope"),
                          "window", json_object_get(q->body, "window"), "period",
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
    json_object_set_new(q->body, "desc", json_integer(desc));
    rreq__top_go(q);
}

/* GET /v1/boards/{id}/top: parse, learn the board's order once, then ask the scope. */
static void route_top(struct rreq *q)
{
    char scope[80] = "global", window[16] = "alltime", period[40], limit[16], cursor[CURSOR_MAX];
    enum timefmt_window w;
    int64_t per = 0;
    long lim = 100;
    int hp;
    if (router__query(q, "scope", scope, sizeof scope) < 0 ||
        router__query(q, "window", window, sizeof window) < 0 ||
        timefmt_window_parse(window, strlen(window), &w) != 0) {
        rreq__error(q, LR_EINVAL, "window must be alltime, daily, weekly, monthly or cycle");
        return;
    }
    if ((hp = router__query(q, "period", period, sizeof period)) < 0 ||
        (hp == 0 && timefmt_period_parse(w, period, strlen(period), &per) != 0)) {
        rreq__error(q, LR_EINVAL, "period does not name a %s period", window);
        return;
    }
    int hl = router__query(q, "limit", limit, sizeof limit);
    if (hl < 0 || (hl == 0 && ((lim = strtol(limit, NULL, 10)) < 1 || lim > 1000))) {
        rreq__error(q, LR_EINVAL, "limit must be 1 to 1000");
        return;
    }
    int hc = router__query(q, "cursor", cursor, sizeof cursor);
    if (hc < 0) {
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
    q->body = json_pack("{s:s,s:s,s:i,s:I,s:i,s:s}", "scope", scope, "window", window, "w",
                        (int)w, "period", (json_int_t)per, "has_period", hp == 0, "cursor",
                        hc == 0 ? cursor : "");
    json_object_set_new(q->body, "limit", json_integer(lim));
    void *ord = strmap_get(&q->r->board_order, q->param[0].p, q->param[0].len);
    if (ord) {
        json_object_set_new(q->body, "desc", json_integer((int)((uintptr_t)ord - 1)));
        rreq__top_go(q);
        return;
    }
    struct shard_query sq;
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
    const char *scope = json_string_value(json_object_get(q->body, "scope"));
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_TOP;
    sq.board_id = q->param[0];
    sq.window = (enum timefmt_window)json_integer_value(json_object_get(q->body, "w"));
    sq.has_period = (int)json_integer_value(json_object_get(q->body, "has_period"));
    sq.period = json_integer_value(json_object_get(q->body, "period"));
    sq.limit = (uint32_t)json_integer_value(json_object_get(q->body, "limit"));
    sq.cursor = router__s(json_string_value(json_object_get(q->body, "cursor")));
    if (strncmp(scope, "guild:", 6) == 0) {
        sq.guild = router__s(scope + 6);
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

/* ---- the route table and the pipeline ---------------------------------------------------------- */

#define ROUTER_ROUTES(X)                                                                       \
    X(HTTP_GET, "/healthz", route_healthz, AUTH_NONE)                                          \
    X(HTTP_GET, "/readyz", route_readyz, AUTH_NONE)                                            \
    X(HTTP_PUT, "/v1/players/{}", route_player_put, AUTH_API)                                  \
    X(HTTP_GET, "/v1/players/{}", route_player_get, AUTH_NONE)                                 \
    X(HTTP_PUT, "/v1/games/{}", route_game_put, AUTH_ADMIN)                                    \
    X(HTTP_GET, "/v1/games/{}", route_game_get, AUTH_NONE)                                     \
    X(HTTP_PUT, "/v1/boards/{}", route_board_put, AUTH_ADMIN)                                  \
    X(HTTP_GET, "/v1/boards/{}", route_board_get, AUTH_NONE)                                   \
    X(HTTP_POST, "/v1/boards/{}/scores", route_score, AUTH_API)                                \
    X(HTTP_GET, "/v1/boards/{}/top", route_top, AUTH_NONE)

static const struct router__route router__routes[] = {
#define ROUTER__ROW(m, pat, fn, auth) {m, pat, fn, auth},
    ROUTER_ROUTES(ROUTER__ROW)
#undef ROUTER__ROW
};

#define ROUTER__NROUTES (sizeof router__routes / sizeof router__routes[0])

/* Match @path against @pat ("{}" = one id-like segment). 1 on a match, with the params. */
static int router__match(const char *pat, const char *path, struct lr_str *param)
{
    unsigned np = 0;
    while (*pat && *path) {
        if (pat[0] == '{' && pat[1] == '}') {
            const char *end = strchr(path, '/');
            size_t len = end ? (size_t)(end - path) : strlen(path);
            if (len == 0 || np == ROUTER__PARAMS) {
                return 0;
            }
            param[np].p = path;
            param[np].len = (uint32_t)len;
            np++;
            path += len;
            pat += 2;
        } else if (*pat++ != *path++) {
            return 0;
        }
    }
    return *pat == '\0' && *path == '\0';
}

static int router__key_is(const char *auth, const char *key)
{
    return key[0] && strncmp(auth, "Bearer ", 7) == 0 && strcmp(auth + 7, key) == 0;
}

static void router__handle(void *data, struct http_req *h)
{
    struct router *r = data;
    struct rreq *q = calloc(1, sizeof *q);
    const struct router__route *route = NULL;
    int path_matched = 0;
    if (q == NULL) {
        http_reply(h, 500, "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}", 57,
                   NULL);
        return;
    }
    q->r = r;
    q->h = h;
    q->region = -1;
    msgpack_sbuffer_init(&q->args);
    snprintf(q->path, sizeof q->path, "%s", h->path);
    for (size_t i = 0; i < ROUTER__NROUTES; i++) {
        struct lr_str param[ROUTER__PARAMS] = {{NULL, 0}};
        if (router__match(router__routes[i].pattern, q->path, param)) {
            path_matched = 1;
            if (router__routes[i].method == h->method) {
                route = &router__routes[i];
                memcpy(q->param, param, sizeof param);
                break;
            }
        }
    }
    if (route == NULL) {
        rreq__error(q, path_matched ? LR_EMETHOD : LR_ENOTFOUND,
                    path_matched ? "method not allowed" : "no such endpoint");
        return;
    }
    q->route = route;
    if (route->auth != AUTH_NONE) {
        int admin = router__key_is(h->auth, r->admin_key);
        int api = router__key_is(h->auth, r->api_key);
        if (!admin && !api) {
            rreq__error(q, LR_EUNAUTHORIZED, "a valid Authorization: Bearer key is required");
            return;
        }
        if (route->auth == AUTH_ADMIN && !admin) {
            rreq__error(q, LR_EFORBIDDEN, "this endpoint needs the admin key");
            return;
        }
    }
    for (unsigned i = 0; i < ROUTER__PARAMS; i++) {
        if (q->param[i].len && !valid_id(q->param[i].p, q->param[i].len, VALID_ID_MAX)) {
            rreq__error(q, LR_EINVAL, "path ids are 1 to 64 characters of [A-Za-z0-9_.-]");
            return;
        }
    }
    if (h->method == HTTP_POST || h->method == HTTP_PUT) {
        json_error_t jerr;
        q->body = json_loadb(h->body, h->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (q->body == NULL || !json_is_object(q->body)) {
            rreq__error(q, LR_EINVAL, "body must be a JSON object: %s",
                        q->body ? "not an object" : jerr.text);
            return;
        }
    }
    route->handler(q);
}

int router_start(uv_loop_t *loop, const struct router_config *cfg, struct router **out,
                 char *errmsg)
{
    struct router *r = calloc(1, sizeof *r);
    int rv;
    if (r == NULL) {
        return errmsg_set(errmsg, LR_ENOMEM, "router: out of memory");
    }
    r->loop = loop;
    r->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
    snprintf(r->admin_key, sizeof r->admin_key, "%s", cfg->admin_key ? cfg->admin_key : "");
    snprintf(r->api_key, sizeof r->api_key, "%s", cfg->api_key ? cfg->api_key : "");
    strmap_init(&r->player_region);
    strmap_init(&r->board_order);
    for (unsigned i = 0; i < cfg->nregions; i++) {
        snprintf(r->region[i], sizeof r->region[i], "%s", cfg->regions[i].id);
        if ((rv = upstream_new(loop, cfg->regions[i].id, cfg->regions[i].rpc, cfg->regions[i].n,
                               &r->up[i])) != 0) {
            errmsg_set(errmsg, rv, "router: region %s: %s", cfg->regions[i].id, err_message(rv));
            goto err_after_upstreams;
        }
        r->nregions++;
    }
    if ((rv = http_start(loop, cfg->http, router__handle, r, &r->http, errmsg)) != 0) {
        goto err_after_upstreams;
    }
    *out = r;
    return 0;

err_after_upstreams:
    for (unsigned i = 0; i < r->nregions; i++) {
        upstream_close(r->up[i], NULL, NULL);
    }
    strmap_free(&r->player_region);
    strmap_free(&r->board_order);
    free(r);
    assert(rv != 0);
    return rv;
}

static void router__part_closed(void *data)
{
    struct router *r = data;
    if (--r->closing > 0) {
        return;
    }
    strmap_free(&r->player_region);
    strmap_free(&r->board_order);
    void (*done)(void *) = r->done;
    void *dd = r->done_data;
    free(r);
    if (done) {
        done(dd);
    }
}

void router_stop(struct router *r, void (*done)(void *data), void *data)
{
    r->done = done;
    r->done_data = data;
    r->closing = r->nregions + 1;
    http_stop(r->http, router__part_closed, r);
    for (unsigned i = 0; i < r->nregions; i++) {
        upstream_close(r->up[i], router__part_closed, r);
    }
}
