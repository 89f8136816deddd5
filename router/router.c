/* router/router.c — the public API over the regions (router.h): the route table, the
 * pipeline, the /metrics counters, the router's caches and its lifecycle.
 *
 * One table of routes (ROUTER_ROUTES) and one pipeline: match the method and path pattern →
 * check the key the route needs → check the path ids → parse the body the route takes → the
 * route's handler (route_*.c) validates the rest and calls regions through the request in
 * flight (rreq.c) → one reply. Whatever fails along the way, in the pipeline or in any step of
 * a route, comes back here or to rreq__resume as an LR_E* code with a sentence, and goes out
 * as {"error":{"code","message"}} with its status (router_int.h states the contract).
 * A CORS preflight (OPTIONS) is answered from the same table before any limit or key
 * (router__preflight); http.c adds the CORS headers to every answer.
 *
 * Player → region: a write names only the player, so the router keeps a bounded cache of
 * where each player lives, filled by PUT /v1/players and by asking the regions (in parallel)
 * on a miss (rreq__locate). */
#include "router.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/proto.h"
#include "../lib/addr.h"
#include "../lib/err.h"
#include "../lib/strmap.h"
#include "router_int.h"

/* ---- the route table ----------------------------------------------------------------------- */

#define ROUTER_ROUTES(X)                                                                           \
    X(HTTP_GET, "/healthz", route_ops_healthz, AUTH_NONE, BODY_NONE, LIM_NONE)                     \
    X(HTTP_GET, "/readyz", route_ops_readyz, AUTH_NONE, BODY_NONE, LIM_NONE)                       \
    X(HTTP_GET, "/metrics", route_ops_metrics, AUTH_NONE, BODY_NONE, LIM_NONE)                     \
    X(HTTP_GET, "/console", route_console_page, AUTH_NONE, BODY_NONE, LIM_NONE)                    \
    X(HTTP_GET, "/console/{}", route_console_asset, AUTH_NONE, BODY_NONE, LIM_NONE)                \
    X(HTTP_GET, "/openapi.json", route_ops_openapi, AUTH_NONE, BODY_NONE, LIM_READ)                \
    X(HTTP_GET, "/v1/cluster", route_ops_cluster, AUTH_ADMIN, BODY_NONE, LIM_READ)                 \
    X(HTTP_PUT, "/v1/regions/{}", route_region_put, AUTH_ADMIN, BODY_OBJECT, LIM_WRITE)            \
    X(HTTP_PUT, "/v1/players/{}", route_player_put, AUTH_API, BODY_OBJECT, LIM_WRITE)              \
    X(HTTP_GET, "/v1/players/{}", route_player_get, AUTH_NONE, BODY_NONE, LIM_READ)                \
    X(HTTP_GET, "/v1/players/{}/achievements", route_player_history, AUTH_NONE, BODY_NONE,         \
      LIM_READ)                                                                                    \
    X(HTTP_GET, "/v1/players/{}/dashboard", route_player_dashboard, AUTH_NONE, BODY_NONE,          \
      LIM_READ)                                                                                    \
    X(HTTP_GET, "/v1/players/{}/stats", route_player_stats, AUTH_NONE, BODY_NONE, LIM_READ)        \
    X(HTTP_GET, "/v1/players/{}/rewards", route_player_rewards, AUTH_NONE, BODY_NONE, LIM_READ)    \
    X(HTTP_GET, "/v1/players/{}/audit", route_player_audit, AUTH_ADMIN, BODY_NONE, LIM_READ)       \
    X(HTTP_POST, "/v1/players/{}/rewards/claim", route_reward_claim, AUTH_API, BODY_OBJECT,        \
      LIM_WRITE)                                                                                   \
    X(HTTP_PUT, "/v1/games/{}", route_game_put, AUTH_ADMIN, BODY_OBJECT, LIM_WRITE)                \
    X(HTTP_GET, "/v1/games/{}", route_game_get, AUTH_NONE, BODY_NONE, LIM_READ)                    \
    X(HTTP_PUT, "/v1/boards/{}", route_board_put, AUTH_ADMIN, BODY_OBJECT, LIM_WRITE)              \
    X(HTTP_GET, "/v1/boards/{}", route_board_get, AUTH_NONE, BODY_NONE, LIM_READ)                  \
    X(HTTP_POST, "/v1/boards/{}/scores", route_score_submit, AUTH_API, BODY_OBJECT, LIM_WRITE)     \
    X(HTTP_POST, "/v1/unlocks", route_score_unlock, AUTH_API, BODY_OBJECT, LIM_WRITE)              \
    X(HTTP_POST, "/v1/events", route_events_post, AUTH_API, BODY_ARRAY, LIM_WRITE)                 \
    X(HTTP_PUT, "/v1/games/{}/achievements/{}", route_game_ach_put, AUTH_ADMIN, BODY_OBJECT,       \
      LIM_WRITE)                                                                                   \
    X(HTTP_GET, "/v1/games/{}/achievements", route_game_ach_list, AUTH_NONE, BODY_NONE, LIM_READ)  \
    X(HTTP_GET, "/v1/boards/{}/top", route_board_top, AUTH_NONE, BODY_NONE, LIM_READ)              \
    X(HTTP_GET, "/v1/boards/{}/cycles/{}", route_board_cycle, AUTH_NONE, BODY_NONE, LIM_READ)      \
    X(HTTP_GET, "/v1/boards/{}/players/{}", route_rank_player, AUTH_NONE, BODY_NONE, LIM_READ)     \
    X(HTTP_GET, "/v1/boards/{}/players", route_rank_friends, AUTH_NONE, BODY_NONE, LIM_READ)       \
    X(HTTP_PUT, "/v1/tournaments/{}", route_tournament_put, AUTH_ADMIN, BODY_OBJECT, LIM_WRITE)    \
    X(HTTP_GET, "/v1/tournaments/{}", route_tournament_get, AUTH_NONE, BODY_NONE, LIM_READ)        \
    X(HTTP_POST, "/v1/tournaments/{}/join", route_tournament_join, AUTH_API, BODY_OBJECT, LIM_WRITE)

static const struct router__route router__routes[] = {
#define ROUTER__ROW(m, pat, fn, auth, body, lim) {m, pat, fn, auth, body, lim},
    ROUTER_ROUTES(ROUTER__ROW)
#undef ROUTER__ROW
};

#define ROUTER__NROUTES (sizeof router__routes / sizeof router__routes[0])
_Static_assert(ROUTER__NROUTES < ROUTER_STAT_ROUTES, "raise ROUTER_STAT_ROUTES");

size_t router__nroutes(void)
{
    return ROUTER__NROUTES;
}

const struct router__route *router__route_at(size_t i)
{
    return &router__routes[i];
}

/* ---- /metrics counters ------------------------------------------------------------------- */

const uint64_t router__lat_bounds_us[ROUTER_LAT_BUCKETS] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 5000000};

void router__observe(struct router *r, const struct router__route *route, uint64_t t0, int status)
{
    size_t i = route ? (size_t)(route - router__routes) : ROUTER__NROUTES;
    struct router__stat *st = &r->stat[i < ROUTER_STAT_ROUTES ? i : ROUTER_STAT_ROUTES - 1];
    uint64_t us = (uv_hrtime() - t0) / 1000;
    unsigned b = 0;
    while (b < ROUTER_LAT_BUCKETS && us > router__lat_bounds_us[b]) {
        b++;
    }
    st->lat[b]++;
    st->lat_sum_us += us;
    st->by_class[status >= 100 && status < 600 ? status / 100 : 5]++;
}

/* ---- the router's caches ----------------------------------------------------------------- */

const char *router__unkeyed_remote(int have_key, const char *const *rpc, unsigned n)
{
    /* Without a key a replica must be reachable by nobody else (docs/security.md); a replica
     * elsewhere has, or needs, a key. */
    for (unsigned i = 0; !have_key && i < n; i++) {
        if (!addr_is_loopback(rpc[i])) {
            return rpc[i];
        }
    }
    return NULL;
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

void router__remember_region(struct router *r, const char *id, size_t len, int region)
{
    struct strmap *m = &r->player_region;
    if (m->count >= r->player_cache_max && strmap_get(m, id, len) == NULL) {
        strmap_evict_one(m, ++r->player_cache_evictions * 0x9e3779b97f4a7c15ULL);
    }
    /* A cache: on LR_ENOMEM the player is simply looked up again next time. */
    (void)strmap_put(m, id, len, (void *)(uintptr_t)(region + 1));
}

int router__cached_region(const struct router *r, const char *id, size_t len)
{
    void *hit = strmap_get(&r->player_region, id, len);
    return hit ? (int)((uintptr_t)hit - 1) : -1;
}

/* ---- entries of board answers, in the total order ------------------------------------------ */

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
static int router__entry_cmp(const void *x, const void *y)
{
    const struct router__entry *ex = x, *ey = y;
    return rankkey_cmp(&ex->key, ex->id, &ey->key, ey->id);
}

void router__entries_sort(struct router__entries *es)
{
    if (es->n > 1) {
        qsort(es->v, es->n, sizeof *es->v, router__entry_cmp);
    }
    for (size_t i = 0; i < es->n; i++) {
        es->v[i].key.id = es->v[i].id;
    }
}

/* ---- the pipeline ------------------------------------------------------------------------ */

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

/* The role of @auth's Bearer key (keyset.h: compared in constant time), or KEYSET_NONE. */
static enum keyset_role router__key_role(const struct router *r, const char *auth)
{
    if (strncmp(auth, "Bearer ", 7) != 0) {
        return KEYSET_NONE;
    }
    return keyset_match(&r->keys, auth + 7, strlen(auth + 7));
}

/* A token of limit @kind for @key, with @who naming it in the sentence: 0, or LR_ERATELIMIT
 * with q->retry_after_s set. */
static int router__limit(struct router *r, struct rreq *q, enum rlimit_kind kind, const char *key,
                         const char *who)
{
    unsigned wait_s = rlimit_take(r->rl, kind, key, strlen(key), uv_hrtime() / 1000);
    if (wait_s == 0) {
        return 0;
    }
    q->retry_after_s = wait_s;
    return rreq__errf(q, LR_ERATELIMIT, "too many %s from this %s: retry after %u s",
                      kind == RLIMIT_ADDR_READS ? "reads" : "writes", who, wait_s);
}

/* A CORS preflight (OPTIONS) of q->path: 204 with the methods the table has for the path, or
 * 404 as any unknown path. It needs no key and takes no token of any limit: a browser sends
 * one before a request it will count anyway, and it carries no key (Fetch: preflights are
 * sent without credentials). */
static int router__preflight(struct rreq *q)
{
    char methods[64] = "", lines[CORS_HEADERS_MAX];
    size_t n = 0;
    unsigned seen = 0;
    for (size_t i = 0; i < ROUTER__NROUTES; i++) {
        struct lr_str param[ROUTER__PARAMS];
        const struct router__route *rt = &router__routes[i];
        if ((seen & 1u << rt->method) == 0 && router__match(rt->pattern, q->path, param)) {
            seen |= 1u << rt->method;
            int k = snprintf(methods + n, sizeof methods - n, "%s%s", n ? ", " : "",
                             http_method_name(rt->method));
            n += k > 0 ? (size_t)k : 0;
        }
    }
    if (seen == 0) {
        return rreq__errf(q, LR_ENOTFOUND, "no such endpoint");
    }
    if (cors_preflight(methods, lines, sizeof lines) == 0) {
        return rreq__errf(q, LR_EINTERNAL, "preflight headers do not fit");
    }
    rreq__reply_empty(q, 204, lines);
    return 0;
}

/* Match, limits, auth, path ids and body, then the route's handler: 0, or the error to answer.
 *
 * The address's bucket is taken before the key is checked, so a flood of made-up keys is paid
 * for by its address; the key's bucket only once the key is valid, so made-up keys never take
 * a place in that table. */
static int router__pipeline(struct router *r, struct rreq *q)
{
    const struct router__route *route = NULL;
    int path_matched = 0, rv;
    if (q->h->method == HTTP_OPTIONS) {
        return router__preflight(q);
    }
    for (size_t i = 0; i < ROUTER__NROUTES; i++) {
        struct lr_str param[ROUTER__PARAMS] = {{NULL, 0}};
        if (router__match(router__routes[i].pattern, q->path, param)) {
            path_matched = 1;
            if (router__routes[i].method == q->h->method) {
                route = &router__routes[i];
                memcpy(q->param, param, sizeof param);
                break;
            }
        }
    }
    if (route == NULL) {
        return rreq__errf(q, path_matched ? LR_EMETHOD : LR_ENOTFOUND, "%s",
                          path_matched ? "method not allowed" : "no such endpoint");
    }
    q->route = route;
    if (route->lim != LIM_NONE && q->h->peer[0] != '\0' &&
        (rv = router__limit(r, q, route->lim == LIM_WRITE ? RLIMIT_ADDR_WRITES : RLIMIT_ADDR_READS,
                            q->h->peer, "address")) != 0) {
        return rv;
    }
    enum keyset_role role = router__key_role(r, q->h->auth);
    q->admin = role == KEYSET_ADMIN;
    if (route->auth != AUTH_NONE) {
        if (role == KEYSET_NONE) {
            return rreq__errf(q, LR_EUNAUTHORIZED, "a valid Authorization: Bearer key is required");
        }
        if (route->auth == AUTH_ADMIN && !q->admin) {
            return rreq__errf(q, LR_EFORBIDDEN, "this endpoint needs the admin key");
        }
        if (route->lim == LIM_WRITE &&
            (rv = router__limit(r, q, RLIMIT_KEY_WRITES, q->h->auth + 7, "key")) != 0) {
            return rv;
        }
    }
    for (unsigned i = 0; i < ROUTER__PARAMS; i++) {
        if (q->param[i].len && !valid_id(q->param[i].p, q->param[i].len, VALID_ID_MAX)) {
            return rreq__errf(q, LR_EINVAL, "path ids are 1 to 64 characters of [A-Za-z0-9_.-]");
        }
    }
    if (route->body != BODY_NONE) {
        json_error_t jerr;
        const char *want = route->body == BODY_ARRAY ? "array" : "object";
        q->body = json_loadb(q->h->body, q->h->body_len, JSON_REJECT_DUPLICATES, &jerr);
        if (q->body == NULL || (route->body == BODY_OBJECT && !json_is_object(q->body)) ||
            (route->body == BODY_ARRAY && !json_is_array(q->body))) {
            return rreq__errf(q, LR_EINVAL, "body must be a JSON %s: %s", want,
                              q->body ? "it is not" : jerr.text);
        }
    }
    return route->handler(q);
}

/* The pipeline for @h; answers through @reply when given (a get over the WebSocket), else
 * http_reply. @q is zeroed and owned by the pipeline from here. */
static void router__dispatch(struct router *r, struct rreq *q, struct http_req *h,
                             ws_reply_fn reply, void *reply_data)
{
    q->r = r;
    q->h = h;
    q->reply = reply;
    q->reply_data = reply_data;
    q->t0 = uv_hrtime();
    q->nregions = r->nregions;
    q->region = -1;
    msgpack_sbuffer_init(&q->args);
    snprintf(q->path, sizeof q->path, "%s", h->path);
    int rv = router__pipeline(r, q);
    if (rv != 0) {
        rreq__reply_error(q, rv);
    }
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

int router__request(struct router *r, const struct http_req *in, ws_reply_fn reply, void *rdata)
{
    size_t lp = strlen(in->path) + 1, lq = strlen(in->query) + 1, la = strlen(in->auth) + 1;
    size_t lpeer = strlen(in->peer) + 1;
    struct http_req *h = calloc(1, sizeof *h + lp + lq + la + lpeer + in->body_len + 1);
    struct rreq *q = calloc(1, sizeof *q);
    if (h == NULL || q == NULL) {
        free(h);
        free(q);
        return LR_ENOMEM;
    }
    /* One allocation for the request and its strings: the reply frees it (rreq.c). */
    char *s = (char *)(h + 1);
    h->method = in->method;
    h->consistency = in->consistency;
    h->path = memcpy(s, in->path, lp);
    h->query = memcpy(s += lp, in->query, lq);
    h->auth = memcpy(s += lq, in->auth, la);
    h->peer = memcpy(s += la, in->peer, lpeer);
    h->body = s += lpeer;
    memcpy(s, in->body, in->body_len);
    s[in->body_len] = '\0';
    h->body_len = in->body_len;
    router__dispatch(r, q, h, reply, rdata);
    return 0;
}

/* A read over the WebSocket: the same route table and pipeline as HTTP, with no key (reads
 * need none) and the answer handed to @reply. Only GET routes that answer JSON are reachable:
 * ws.c lets only /v1/ paths through, and the method is GET. */
static int router__ws_get(void *data, const char *path, const char *query, ws_reply_fn reply,
                          void *rdata)
{
    /* No address: a get over a WebSocket is bounded per connection (ws.h), not by rate. */
    struct http_req in = {.method = HTTP_GET,
                          .path = path,
                          .query = query,
                          .auth = "",
                          .peer = "",
                          .body = "",
                          .body_len = 0};
    return router__request(data, &in, reply, rdata);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static void router__rmodel_listen(void *data, unsigned region, const struct evstream_batch *b)
{
    rmodel_stream(data, region, b);
}

/* The read model over the regions, fed by the gateway's streams. */
static int router__rmodel_new(struct router *r, const struct router_config *cfg)
{
    const char *spec = cfg->hold_boards ? cfg->hold_boards : "*";
    char buf[4096], *save = NULL;
    const char *ids[RMODEL_BOARDS_MAX];
    struct rmodel_config rc = {
        .all = strcmp(spec, "*") == 0, .boards = ids, .n = 0, .timeout_ms = r->timeout_ms};
    if (!rc.all) {
        if (strlen(spec) >= sizeof buf) {
            return LR_EINVAL;
        }
        snprintf(buf, sizeof buf, "%s", spec);
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (rc.n == RMODEL_BOARDS_MAX) {
                return LR_EINVAL;
            }
            ids[rc.n++] = t;
        }
    }
    int rv = rmodel_new(r->loop, r->up, r->nregions, &rc, &r->rm);
    if (rv == 0) {
        gateway_listen(r->gw, router__rmodel_listen, r->rm);
    }
    return rv;
}

int router_start(uv_loop_t *loop, const struct router_config *cfg, struct router **out,
                 char *errmsg)
{
    struct router *r;
    struct cors cors;
    char cerr[128];
    int rv;
    if (cfg->log == NULL) {
        return errmsg_set(errmsg, LR_EINVAL, "router: a logger is required");
    }
    if (cors_init(&cors, cfg->cors_origins, cerr, sizeof cerr) != 0) {
        return errmsg_set(errmsg, LR_EINVAL, "router: --cors-origins: %s", cerr);
    }
    if ((cfg->tls_cert == NULL) != (cfg->tls_key == NULL)) {
        return errmsg_set(errmsg, LR_EINVAL, "router: TLS needs both a certificate and a key");
    }
    for (unsigned i = 0; i <= cfg->nregions; i++) {
        const struct router_region *g = i < cfg->nregions ? &cfg->regions[i] : &cfg->meta;
        const char *remote = router__unkeyed_remote(cfg->cluster_key != NULL, g->rpc, g->n);
        if (remote != NULL) {
            return errmsg_set(
                errmsg, LR_EINVAL,
                "router: replica %s is not a loopback address and no cluster "
                "key is configured: pass --cluster-key-file PATH (or set " PEERAUTH_ENV ")",
                remote);
        }
    }
    if ((r = calloc(1, sizeof *r)) == NULL) {
        return errmsg_set(errmsg, LR_ENOMEM, "router: out of memory");
    }
    r->loop = loop;
    r->log = cfg->log;
    r->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 5000;
    r->log_requests = cfg->log_requests;
    if (cfg->keys != NULL) {
        r->keys = *cfg->keys;
    } else {
        keyset_init(&r->keys);
    }
    if (cfg->cluster_key != NULL) {
        r->have_cluster_key = 1;
        r->cluster_key = *cfg->cluster_key;
    }
    strmap_init(&r->player_region);
    r->player_cache_max = cfg->player_cache ? cfg->player_cache : ROUTER_DEFAULT_PLAYER_CACHE;
    strmap_init(&r->board_order);
    if ((rv = rlimit_new(&cfg->limits, &r->rl)) != 0) {
        errmsg_set(errmsg, rv, "router: rate limits: %s", err_message(rv));
        goto err_after_alloc;
    }
    for (unsigned i = 0; i < cfg->nregions; i++) {
        snprintf(r->region[i], sizeof r->region[i], "%s", cfg->regions[i].id);
        if ((rv = upstream_new(loop, cfg->regions[i].id, cfg->regions[i].rpc, cfg->regions[i].n,
                               &r->up[i])) != 0) {
            errmsg_set(errmsg, rv, "router: region %s: %s", cfg->regions[i].id, err_message(rv));
            goto err_after_upstreams;
        }
        r->nregions++;
        if (r->have_cluster_key) {
            upstream_set_key(r->up[i], &r->cluster_key, r->log);
        }
    }
    if (cfg->meta.n > 0) {
        snprintf(r->region[ROUTER_META], sizeof r->region[ROUTER_META], "meta");
        if ((rv = upstream_new(loop, "meta", cfg->meta.rpc, cfg->meta.n, &r->up[ROUTER_META])) !=
            0) {
            errmsg_set(errmsg, rv, "router: meta: %s", err_message(rv));
            goto err_after_upstreams;
        }
        if (r->have_cluster_key) {
            upstream_set_key(r->up[ROUTER_META], &r->cluster_key, r->log);
        }
        if ((rv = catsync_new(loop, r->up[ROUTER_META], r->up, r->nregions, r->timeout_ms, r->log,
                              &r->catsync)) != 0) {
            errmsg_set(errmsg, rv, "router: catalog carrier: %s", err_message(rv));
            goto err_after_upstreams;
        }
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
    if ((rv = router__rmodel_new(r, cfg)) != 0) {
        errmsg_set(errmsg, rv, "router: read model: %s (--hold-boards takes *, nothing or ids)",
                   err_message(rv));
        goto err_after_gateway;
    }
    if (r->up[ROUTER_META] &&
        (rv = closer_new(loop, r->up[ROUTER_META], r->up, (const char(*)[65])r->region, r->nregions,
                         r->gw, r->timeout_ms, r->log, &r->closer)) != 0) {
        errmsg_set(errmsg, rv, "router: cycle closer: %s", err_message(rv));
        goto err_after_gateway;
    }
    struct ws_config wc = {.max_conns = cfg->ws_max_conns,
                           .max_per_ip = cfg->ws_max_per_ip,
                           .ping_ms = cfg->ws_ping_ms,
                           .queue_msgs = cfg->ws_queue_msgs,
                           .max_gets = cfg->ws_max_gets,
                           .max_resumes = cfg->ws_max_resumes};
    if ((rv = ws_new(loop, r->gw, &wc, router__ws_get, r, &r->ws)) != 0) {
        errmsg_set(errmsg, rv, "router: websocket: %s", err_message(rv));
        goto err_after_gateway;
    }
    if (cfg->http == NULL) { /* headless: driven through router__request only */
        router__regions_start(r);
        *out = r;
        return 0;
    }
    struct http_tls tls = {cfg->tls_cert, cfg->tls_key};
    if ((rv = http_start_ws(loop, cfg->http, cfg->tls_cert ? &tls : NULL, router__handle, r, r->ws,
                            &r->http, errmsg)) != 0) {
        goto err_after_ws;
    }
    http_set_conn_limits(r->http, cfg->http_max_conns, cfg->http_max_per_ip);
    http_set_cors(r->http, &cors);
    router__regions_start(r);
    *out = r;
    return 0;

err_after_ws:
    /* lws may still hold the context for a few loop turns (http_start): the ws and the
     * gateway it points at must outlive it, so they close only once the loop has run. */
    ws_close(r->ws, NULL, NULL);
err_after_gateway:
    if (r->rm) {
        rmodel_close(r->rm, NULL, NULL); /* freed once its handles have closed */
    }
    if (r->closer) {
        closer_close(r->closer, NULL, NULL); /* freed once its timer has closed */
    }
    gateway_close(r->gw, NULL, NULL);
err_after_upstreams:
    if (r->catsync) {
        catsync_close(r->catsync, NULL, NULL); /* freed once its timer has closed */
    }
    for (unsigned i = 0; i < r->nregions; i++) {
        upstream_close(r->up[i], NULL, NULL);
    }
    if (r->up[ROUTER_META]) {
        upstream_close(r->up[ROUTER_META], NULL, NULL);
    }
    rlimit_free(r->rl);
err_after_alloc:
    strmap_free(&r->player_region);
    strmap_free(&r->board_order);
    free(r);
    assert(rv != 0);
    return rv;
}

void router__part_closed(void *data)
{
    struct router *r = data;
    if (--r->closing > 0) {
        return;
    }
    strmap_free(&r->player_region);
    strmap_free(&r->board_order);
    rlimit_free(r->rl);
    void (*done)(void *) = r->done;
    void *dd = r->done_data;
    free(r);
    if (done) {
        done(dd);
    }
}

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
    r->closing = r->nregions + 4 + (r->up[ROUTER_META] != NULL) + (r->catsync != NULL) +
                 (r->closer != NULL) + (r->regions_started != 0);
    if (r->regions_started) {
        router__regions_stop(r);
    }
    gateway_listen(r->gw, NULL, NULL);
    rmodel_close(r->rm, router__part_closed, r); /* first: it calls the upstreams */
    if (r->closer) { /* first: it calls the gateway and the upstreams closed below */
        closer_close(r->closer, router__part_closed, r);
    }
    if (r->catsync) {
        catsync_close(r->catsync, router__part_closed, r);
    }
    /* The gateway first: it calls the upstreams, which close below. */
    gateway_close(r->gw, router__part_closed, r);
    if (r->http) {
        http_stop(r->http, router__http_closed, r);
    } else {
        router__http_closed(r);
    }
    for (unsigned i = 0; i < r->nregions; i++) {
        upstream_close(r->up[i], router__part_closed, r);
    }
    if (r->up[ROUTER_META]) {
        upstream_close(r->up[ROUTER_META], router__part_closed, r);
    }
}
