/* router/router.c — the pipeline of the public API over the regions (see router.h); the
 * routes live in router_routes.c and router_boards.c.
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
#include <limits.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../proto/mpjson.h"
#include "../proto/proto.h"
#include "../shard/cursor.h"
#include "../lib/err.h"
#include "../lib/strmap.h"
#include "router_int.h"

/* ---- replies ------------------------------------------------------------------------------------ */

void rreq__free(struct rreq *q)
{
    for (unsigned i = 0; i < ROUTER_MAX_REGIONS; i++) {
        if (q->have[i]) {
            msgpack_sbuffer_destroy(&q->ans[i]);
        }
    }
    msgpack_sbuffer_destroy(&q->args);
    msgpack_sbuffer_destroy(&q->cmd);
    json_decref(q->body);
    json_decref(q->acc);
    free(q->ids);
    rev_free(q->ev);
    free(q);
}

const uint64_t router__lat_bounds_us[ROUTER_LAT_BUCKETS] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000};

void rreq__observe(struct rreq *q, int status)
{
    size_t i = q->route ? (size_t)(q->route - router__route_at(0)) : router__nroutes();
    struct router__stat *st = &q->r->stat[i < ROUTER_STAT_ROUTES ? i : ROUTER_STAT_ROUTES - 1];
    uint64_t us = (uv_hrtime() - q->t0) / 1000;
    unsigned b = 0;
    while (b < ROUTER_LAT_BUCKETS && us > router__lat_bounds_us[b]) {
        b++;
    }
    st->lat[b]++;
    st->lat_sum_us += us;
    st->by_class[status >= 100 && status < 600 ? status / 100 : 5]++;
}

void rreq__reply_json(struct rreq *q, int status, json_t *j, const char *headers)
{
    rreq__observe(q, status);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
    if (q->reply) {
        q->reply(q->reply_data, s ? status : 500, s ? s : oom, s ? strlen(s) : sizeof oom - 1);
        free(q->h); /* the get's request (router__ws_get) */
    } else if (s == NULL) {
        http_reply(q->h, 500, oom, sizeof oom - 1, NULL);
    } else {
        http_reply(q->h, status, s, strlen(s), headers);
    }
    free(s);
    json_decref(j);
    rreq__free(q);
}

void rreq__error(struct rreq *q, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void rreq__error(struct rreq *q, int rv, const char *fmt, ...)
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
void rreq__reply_mp(struct rreq *q, int status, const msgpack_object *o,
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
void rreq__upstream_error(struct rreq *q, int code, const msgpack_object *payload)
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
int rreq__call(struct rreq *q, unsigned region, int op, int need_leader)
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

/* Call @op with q->args on every region but @skip (its last answer stays); q->next runs once
 * all have answered, at once when there is none to call. A call that cannot start counts as
 * that region answering LR_ENOMEM, so calls already in flight are never orphaned by an early
 * reply. */
void rreq__call_others(struct rreq *q, int op, int need_leader, unsigned skip)
{
    q->pending++; /* held while launching: answers never arrive from inside upstream_call */
    for (unsigned i = 0; i < q->r->nregions; i++) {
        if (i != skip && rreq__call(q, i, op, need_leader) != 0) {
            q->code[i] = LR_ENOMEM;
        }
    }
    if (--q->pending == 0) {
        q->next(q);
    }
}

/* Call @op with q->args on every region (rreq__call_others skipping none). */
void rreq__call_all(struct rreq *q, int op, int need_leader)
{
    rreq__call_others(q, op, need_leader, UINT_MAX);
}

/* The answer of @region as an object (valid while q lives). */
int rreq__answer(struct rreq *q, unsigned region, msgpack_unpacked *up,
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
int router__query(const struct rreq *q, const char *name, char *out, size_t cap)
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

int router__query_int(const struct rreq *q, const char *name, long min, long max, long def,
                      long *out)
{
    char num[24], *end;
    int has = router__query(q, name, num, sizeof num);
    *out = def;
    if (has > 0) {
        return 0;
    }
    long v = has == 0 ? strtol(num, &end, 10) : 0;
    if (has < 0 || *end != '\0' || end == num || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}

int router__result(const msgpack_object *r, int *status, int *replayed,
                   const msgpack_object **body)
{
    int64_t st;
    if (r == NULL || r->type != MSGPACK_OBJECT_ARRAY || r->via.array.size != 3 ||
        proto_obj_i64(&r->via.array.ptr[0], &st) != 0 || st < 100 || st > 599) {
        return -1;
    }
    *status = (int)st;
    *replayed = r->via.array.ptr[1].type == MSGPACK_OBJECT_BOOLEAN &&
                r->via.array.ptr[1].via.boolean;
    *body = &r->via.array.ptr[2];
    return 0;
}

int router__region_index(const struct router *r, const char *id)
{
    for (unsigned i = 0; i < r->nregions; i++) {
        if (strcmp(r->region[i], id) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Body field helpers: a string of the given rule, or NULL with a reply sent. */
const char *rreq__body_str(struct rreq *q, const char *key, int required)
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

/* Pack one command as a submit's args. */
void rreq__args_cmd(struct rreq *q, const struct cmd *c)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&q->args);
    msgpack_packer_init(&pk, &q->args, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    cmd_encode(&pk, c);
}

/* Pack @sq as a query's args. One clock for every region a request asks: each names the
 * same current period even when the request straddles a period's end. */
void rreq__args_query(struct rreq *q, struct shard_query *sq, int stale)
{
    msgpack_packer pk;
    if (q->now_ms == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        q->now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    if (sq->now_ms == 0) {
        sq->now_ms = q->now_ms;
    }
    msgpack_sbuffer_clear(&q->args);
    msgpack_packer_init(&pk, &q->args, msgpack_sbuffer_write);
    proto_query_encode(&pk, sq, stale);
}

/* ---- writes: answer with the single command's result ---------------------------------------------------- */

void rreq__reply_result(struct rreq *q)
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
    const msgpack_object *res = proto_map_get(o, "results"), *body;
    int status, replayed;
    if (res == NULL || res->type != MSGPACK_OBJECT_ARRAY || res->via.array.size != 1 ||
        router__result(&res->via.array.ptr[0], &status, &replayed, &body) != 0) {
        msgpack_unpacked_destroy(&up);
        rreq__error(q, LR_EINTERNAL, "malformed result from region %s", q->r->region[reg]);
        return;
    }
    rreq__reply_mp(q, status, body, replayed ? "Idempotent-Replayed: true\r\n" : NULL);
    msgpack_unpacked_destroy(&up);
}

/* ---- finding a player's region -------------------------------------------------------------------- */

static void rreq__located(struct rreq *q);

void router__remember_region(struct router *r, const char *id, size_t len, int region)
{
    struct strmap *m = &r->player_region;
    if (m->count >= r->player_cache_max && strmap_get(m, id, len) == NULL) {
        strmap_evict_one(m, ++r->player_cache_evictions * 0x9e3779b97f4a7c15ULL);
    }
    /* A cache: on LR_ENOMEM the player is simply looked up again next time. */
    (void)strmap_put(m, id, len, (void *)(uintptr_t)(region + 1));
}

/* Find where player @id lives (cache, else ask every region's leader) and run @then with
 * q->region set (-1: no such player). */
void rreq__locate(struct rreq *q, const char *id, void (*then)(struct rreq *))
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
    sq.player_id = lr_str_of(q->player);
    rreq__args_query(q, &sq, 0);
    q->next = rreq__located;
    q->region = -1;
    rreq__call_all(q, PROTO_OP_QUERY, 1);
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
        router__remember_region(q->r, q->player, strlen(q->player), q->region);
    } else if (unavailable) {
        rreq__error(q, LR_EUNAVAILABLE, "a region is unavailable; retry");
        return;
    }
    q->then(q);
}

/* ---- the route table and the pipeline ---------------------------------------------------------- */

#define ROUTER_ROUTES(X)                                                                       \
    X(HTTP_GET, "/healthz", route_healthz, AUTH_NONE, BODY_NONE)                               \
    X(HTTP_GET, "/readyz", route_readyz, AUTH_NONE, BODY_NONE)                                 \
    X(HTTP_GET, "/metrics", route_metrics, AUTH_NONE, BODY_NONE)                               \
    X(HTTP_GET, "/v1/cluster", route_cluster, AUTH_ADMIN, BODY_NONE)                           \
    X(HTTP_PUT, "/v1/players/{}", route_player_put, AUTH_API, BODY_OBJECT)                     \
    X(HTTP_GET, "/v1/players/{}", route_player_get, AUTH_NONE, BODY_NONE)                      \
    X(HTTP_GET, "/v1/players/{}/achievements", route_history, AUTH_NONE, BODY_NONE)            \
    X(HTTP_GET, "/v1/players/{}/dashboard", route_dashboard, AUTH_NONE, BODY_NONE)             \
    X(HTTP_GET, "/v1/players/{}/stats", route_stats, AUTH_NONE, BODY_NONE)                     \
    X(HTTP_GET, "/v1/players/{}/rewards", route_rewards, AUTH_NONE, BODY_NONE)                 \
    X(HTTP_PUT, "/v1/games/{}", route_game_put, AUTH_ADMIN, BODY_OBJECT)                       \
    X(HTTP_GET, "/v1/games/{}", route_game_get, AUTH_NONE, BODY_NONE)                          \
    X(HTTP_PUT, "/v1/boards/{}", route_board_put, AUTH_ADMIN, BODY_OBJECT)                     \
    X(HTTP_GET, "/v1/boards/{}", route_board_get, AUTH_NONE, BODY_NONE)                        \
    X(HTTP_POST, "/v1/boards/{}/scores", route_score, AUTH_API, BODY_OBJECT)                   \
    X(HTTP_POST, "/v1/unlocks", route_unlock, AUTH_API, BODY_OBJECT)                           \
    X(HTTP_POST, "/v1/events", route_events, AUTH_API, BODY_ARRAY)                             \
    X(HTTP_PUT, "/v1/games/{}/achievements/{}", route_ach_put, AUTH_ADMIN, BODY_OBJECT)        \
    X(HTTP_GET, "/v1/games/{}/achievements", route_ach_list, AUTH_NONE, BODY_NONE)             \
    X(HTTP_GET, "/v1/boards/{}/top", route_top, AUTH_NONE, BODY_NONE)                          \
    X(HTTP_GET, "/v1/boards/{}/players/{}", route_rank, AUTH_NONE, BODY_NONE)                  \
    X(HTTP_GET, "/v1/boards/{}/players", route_friends, AUTH_NONE, BODY_NONE)

static const struct router__route router__routes[] = {
#define ROUTER__ROW(m, pat, fn, auth, body) {m, pat, fn, auth, body},
    ROUTER_ROUTES(ROUTER__ROW)
#undef ROUTER__ROW
};

#define ROUTER__NROUTES (sizeof router__routes / sizeof router__routes[0])
_Static_assert(ROUTER__NROUTES < ROUTER_STAT_ROUTES, "raise ROUTER_STAT_ROUTES");

size_t router__nroutes(void) { return ROUTER__NROUTES; }

const struct router__route *router__route_at(size_t i) { return &router__routes[i]; }

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

/* The pipeline for @h; answers through @reply when given (a get over the WebSocket), else
 * http_reply. @q is zeroed and owned by the pipeline from here. */
static void router__dispatch(struct router *r, struct rreq *q, struct http_req *h,
                             ws_reply_fn reply, void *reply_data)
{
    const struct router__route *route = NULL;
    int path_matched = 0;
    q->r = r;
    q->h = h;
    q->reply = reply;
    q->reply_data = reply_data;
    q->t0 = uv_hrtime();
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
    q->admin = router__key_is(h->auth, r->admin_key);
    if (route->auth != AUTH_NONE) {
        int admin = q->admin;
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
    if (route->body != BODY_NONE) {
        json_error_t jerr;
        const char *want = route->body == BODY_ARRAY ? "array" : "object";
        q->body = json_loadb(h->body, h->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (q->body == NULL || (route->body == BODY_OBJECT && !json_is_object(q->body)) ||
            (route->body == BODY_ARRAY && !json_is_array(q->body))) {
            rreq__error(q, LR_EINVAL, "body must be a JSON %s: %s", want,
                        q->body ? "it is not" : jerr.text);
            return;
        }
    }
    route->handler(q);
}

static void router__handle(void *data, struct http_req *h)
{
    struct rreq *q = calloc(1, sizeof *q);
    if (q == NULL) {
        http_reply(h, 500, "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}", 57,
                   NULL);
        return;
    }
    router__dispatch(data, q, h, NULL, NULL);
}

/* A read over the WebSocket: the same route table and pipeline as HTTP, with no key (reads
 * need none) and the answer handed to @reply. Only GET routes that answer JSON are reachable:
 * ws.c lets only /v1/ paths through, and the method is GET. */
static int router__ws_get(void *data, const char *path, const char *query, ws_reply_fn reply,
                          void *rdata)
{
    size_t lp = strlen(path) + 1, lq = strlen(query) + 1;
    struct http_req *h = calloc(1, sizeof *h + lp + lq);
    struct rreq *q = calloc(1, sizeof *q);
    if (h == NULL || q == NULL) {
        free(h);
        free(q);
        return LR_ENOMEM;
    }
    char *s = (char *)(h + 1);
    memcpy(s, path, lp);
    memcpy(s + lp, query, lq);
    h->method = HTTP_GET;
    h->path = s;
    h->query = s + lp;
    h->auth = "";
    h->body = "";
    router__dispatch(data, q, h, reply, rdata);
    return 0;
}

int router_start(uv_loop_t *loop, const struct router_config *cfg, struct router **out,
                 char *errmsg)
{
    struct router *r;
    int rv;
    if (cfg->log == NULL) {
        return errmsg_set(errmsg, LR_EINVAL, "router: a logger is required");
    }
    if ((r = calloc(1, sizeof *r)) == NULL) {
        return errmsg_set(errmsg, LR_ENOMEM, "router: out of memory");
    }
    r->loop = loop;
    r->log = cfg->log;
    r->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
    snprintf(r->admin_key, sizeof r->admin_key, "%s", cfg->admin_key ? cfg->admin_key : "");
    snprintf(r->api_key, sizeof r->api_key, "%s", cfg->api_key ? cfg->api_key : "");
    strmap_init(&r->player_region);
    r->player_cache_max = cfg->player_cache ? cfg->player_cache : ROUTER_DEFAULT_PLAYER_CACHE;
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
    struct gateway_region gr[ROUTER_MAX_REGIONS];
    for (unsigned i = 0; i < r->nregions; i++) {
        gr[i].id = r->region[i];
        gr[i].u = r->up[i];
    }
    if ((rv = gateway_new(loop, gr, r->nregions, r->timeout_ms, &r->gw)) != 0) {
        errmsg_set(errmsg, rv, "router: gateway: %s", err_message(rv));
        goto err_after_upstreams;
    }
    struct ws_config wc = {.max_conns = cfg->ws_max_conns,
                           .max_per_ip = cfg->ws_max_per_ip,
                           .ping_ms = cfg->ws_ping_ms,
                           .queue_msgs = cfg->ws_queue_msgs};
    if ((rv = ws_new(loop, r->gw, &wc, router__ws_get, r, &r->ws)) != 0) {
        errmsg_set(errmsg, rv, "router: websocket: %s", err_message(rv));
        goto err_after_gateway;
    }
    if ((rv = http_start_ws(loop, cfg->http, router__handle, r, r->ws, &r->http, errmsg)) != 0) {
        goto err_after_ws;
    }
    router__repair_start(r);
    *out = r;
    return 0;

err_after_ws:
    /* lws may still hold the context for a few loop turns (http_start): the ws and the
     * gateway it points at must outlive it, so they close only once the loop has run. */
    ws_close(r->ws, NULL, NULL);
err_after_gateway:
    gateway_close(r->gw, NULL, NULL);
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
    router__repair_free(r);
    void (*done)(void *) = r->done;
    void *dd = r->done_data;
    free(r);
    if (done) {
        done(dd);
    }
}

static void router__timer_closed(uv_handle_t *h) { router__part_closed(h->data); }

/* Every WebSocket session has closed with the lws context: the endpoint closes once its gets
 * have answered. */
static void router__http_closed(void *data)
{
    struct router *r = data;
    ws_close(r->ws, router__part_closed, r);
    router__part_closed(r);
}

void router_stop(struct router *r, void (*done)(void *data), void *data)
{
    r->done = done;
    r->done_data = data;
    r->closing = r->nregions + 4;
    router__repair_stop(r, router__timer_closed);
    /* The gateway first: it calls the upstreams, which close below. */
    gateway_close(r->gw, router__part_closed, r);
    http_stop(r->http, router__http_closed, r);
    for (unsigned i = 0; i < r->nregions; i++) {
        upstream_close(r->up[i], router__part_closed, r);
    }
}
