/* router/route_ops.c — operations endpoints: /healthz, /readyz (a leader in every region and
 * in the metadata group), /v1/cluster (every replica's raft state) and /metrics (Prometheus
 * text: the router's requests and latencies per route, its WebSocket connections and event
 * streams, its player cache, and each replica's raft indexes, apply counters and batch sizes).
 *
 * Every raft group counts here, the metadata group (ROUTER_META, when the router has one) as
 * much as a region: the groups are walked as positions 0..route_ops__ngroups()-1, the regions
 * in order and then the metadata group, and route_ops__slot maps a position to its upstream
 * slot. Only /v1/cluster tells the metadata group apart: it is "meta", not one of "regions".
 *
 * /v1/cluster and /metrics ask every replica of every group for its status directly (not
 * through the leader): a replica that does not answer within ROUTE_OPS_TIMEOUT_MS is reported
 * unreachable, so the page stays fast while a node is down. Their route_data is the statuses
 * gathered so far: a JSON array per group position of the replicas' status maps (null: no
 * answer). */
#include <inttypes.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/mpjson.h"
#include "../proto/proto.h"
#include "../lib/err.h"
#include "router_int.h"

#define ROUTE_OPS_TIMEOUT_MS 500

/* The raft groups of the router: its regions, then the metadata group when it has one. */
static unsigned route_ops__ngroups(const struct rreq *q)
{
    return q->nregions + (q->r->up[ROUTER_META] != NULL);
}

/* The upstream slot (index of r->up, q->code, r->region) of group position @g. */
static unsigned route_ops__slot(const struct rreq *q, unsigned g)
{
    return g < q->nregions ? g : ROUTER_META;
}

/* ---- /healthz and /readyz ---------------------------------------------------------------- */

int route_ops_healthz(struct rreq *q)
{
    rreq__reply_json(q, 200, json_pack("{s:s}", "status", "ok"), NULL);
    return 0;
}

/* The document is checked in as router/openapi.json and built into the binary, so the
 * answer is the document of this build's routes (tests/unit/test_openapi.c holds the two
 * together). */
int route_ops_openapi(struct rreq *q)
{
    rreq__reply_text(q, 200, HTTP_JSON, (const char *)router__openapi_json,
                     router__openapi_json_len);
    return 0;
}

static int route_ops__ready(struct rreq *q)
{
    for (unsigned g = 0; g < route_ops__ngroups(q); g++) {
        unsigned i = route_ops__slot(q, g);
        msgpack_unpacked up;
        const msgpack_object *o, *lid = NULL;
        rreq__answer(q, i, &up, &o);
        if (q->code[i] == 0 && o) {
            lid = proto_map_get(o, "leader_id");
        }
        int ok = lid && lid->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
        msgpack_unpacked_destroy(&up);
        if (!ok) {
            return i == ROUTER_META
                       ? rreq__errf(q, LR_EUNAVAILABLE,
                                    "the metadata group has no reachable leader")
                       : rreq__errf(q, LR_EUNAVAILABLE, "region %s has no reachable leader",
                                    q->r->region[i]);
        }
    }
    rreq__reply_json(q, 200, json_pack("{s:s}", "status", "ready"), NULL);
    return 0;
}

/* Ready when a replica of every region, and of the metadata group, reports a leader. */
int route_ops_readyz(struct rreq *q)
{
    msgpack_sbuffer_clear(&q->args);
    q->next = route_ops__ready;
    /* The metadata group's call first: rreq__call_all may run q->next before it returns, and
     * answers never arrive from inside a call, so this one is counted in q->pending by then.
     * A call that cannot start leaves the group without an answer: not ready. */
    if (q->r->up[ROUTER_META] && rreq__call(q, ROUTER_META, PROTO_OP_STATUS, 1) != 0) {
        q->code[ROUTER_META] = LR_ENOMEM;
    }
    return rreq__call_all(q, PROTO_OP_STATUS, 1);
}

/* ---- every replica's status ---------------------------------------------------------------- */

struct route_ops_call {
    struct rreq *q;
    unsigned group, replica; /* group: the position in route_data */
};

static void route_ops__decref(void *statuses)
{
    json_decref(statuses);
}

static void route_ops__answered(void *data, int code, const msgpack_object *payload)
{
    struct route_ops_call *c = data;
    struct rreq *q = c->q;
    if (code == 0 && payload && payload->type == MSGPACK_OBJECT_MAP) {
        json_array_set_new(json_array_get(q->route_data, c->group), c->replica,
                           mpjson_from(payload));
    }
    free(c);
    if (--q->pending == 0) {
        rreq__resume(q, q->next);
    }
}

/* Ask every replica for its status into route_data, then run @next. A replica whose call
 * cannot start stays null (unreachable), as one that does not answer. */
static int route_ops__status_all(struct rreq *q, rreq__step next)
{
    json_t *statuses = json_array();
    if (statuses == NULL) {
        return rreq__errf(q, LR_ENOMEM, "out of memory");
    }
    q->route_data = statuses;
    q->route_free = route_ops__decref;
    q->next = next;
    q->pending++; /* held while launching */
    for (unsigned g = 0; g < route_ops__ngroups(q); g++) {
        struct upstream *u = q->r->up[route_ops__slot(q, g)];
        json_t *reps = json_array();
        json_array_append_new(statuses, reps);
        for (unsigned i = 0; i < upstream_replicas(u); i++) {
            /* A replica that left the configuration is not asked (it may be gone for good). */
            struct route_ops_call *c = upstream_gone(u, i) ? NULL : malloc(sizeof *c);
            json_array_append_new(reps, json_null());
            if (c == NULL) {
                continue;
            }
            *c = (struct route_ops_call){q, g, i};
            q->pending++;
            if (upstream_call_replica(u, (int)i, PROTO_OP_STATUS, 0, NULL, 0, ROUTE_OPS_TIMEOUT_MS,
                                      route_ops__answered, c) != 0) {
                q->pending--;
                free(c);
            }
        }
    }
    if (--q->pending == 0) {
        return q->next(q);
    }
    return 0;
}

/* An integer of a replica's status; a boolean counts as 1 or 0 (a gauge of "writable"). */
static json_int_t route_ops__int(json_t *st, const char *key)
{
    json_t *v = json_object_get(st, key);
    return json_is_boolean(v) ? json_is_true(v) : json_integer_value(v);
}

/* A replica is healthy when it answered and takes part in a group that has a leader. */
static int route_ops__healthy(json_t *st)
{
    const char *role = json_string_value(json_object_get(st, "role"));
    return st && role && (strcmp(role, "leader") == 0 || strcmp(role, "follower") == 0) &&
           json_is_integer(json_object_get(st, "leader_id"));
}

/* Group position @g as /v1/cluster shows it: {"id","leader","replicas":[...]} (NULL when out
 * of memory). */
static json_t *route_ops__cluster_group(struct rreq *q, unsigned g)
{
    unsigned slot = route_ops__slot(q, g);
    json_t *reps = json_array(), *leader = json_null();
    json_t *sts = json_array_get(q->route_data, g);
    json_int_t leader_term = -1;
    for (unsigned i = 0; i < json_array_size(sts); i++) {
        if (upstream_gone(q->r->up[slot], i)) {
            continue; /* removed (docs/operations.md, "Growing a cluster"): not a replica */
        }
        json_t *st = json_array_get(sts, i);
        const char *role = json_string_value(json_object_get(st, "role"));
        json_t *id = json_object_get(st, "id");
        json_t *rep = json_pack(
            "{s:o,s:s,s:s}", "id", id ? json_incref(id) : json_integer((json_int_t)i + 1),
            "address", upstream_address(q->r->up[slot], i), "role", role ? role : "unreachable");
        json_object_set_new(rep, "term",
                            st ? json_integer(route_ops__int(st, "term")) : json_null());
        json_object_set_new(rep, "commit_index",
                            st ? json_integer(route_ops__int(st, "commit_index")) : json_null());
        json_object_set_new(rep, "applied_index",
                            st ? json_integer(route_ops__int(st, "applied_index")) : json_null());
        json_object_set_new(rep, "healthy", json_boolean(route_ops__healthy(st)));
        if (role && strcmp(role, "leader") == 0 && route_ops__int(st, "term") > leader_term) {
            leader_term = route_ops__int(st, "term");
            json_decref(leader);
            leader = json_integer(route_ops__int(st, "id"));
        }
        json_array_append_new(reps, rep);
    }
    return json_pack("{s:s,s:o,s:o}", "id", q->r->region[slot], "leader", leader, "replicas", reps);
}

static int route_ops__cluster_reply(struct rreq *q)
{
    json_t *regions = json_array();
    for (unsigned g = 0; g < q->nregions; g++) {
        json_array_append_new(regions, route_ops__cluster_group(q, g));
    }
    json_t *j = json_pack("{s:o}", "regions", regions);
    if (j && q->r->up[ROUTER_META]) {
        json_object_set_new(j, "meta", route_ops__cluster_group(q, q->nregions));
    }
    rreq__reply_json(q, 200, j, NULL);
    return 0;
}

/* GET /v1/cluster (admin key) */
int route_ops_cluster(struct rreq *q)
{
    return route_ops__status_all(q, route_ops__cluster_reply);
}

/* ---- /metrics ------------------------------------------------------------------------------- */

struct route_ops_text {
    char *p;
    size_t n, cap;
    int oom;
};

static void route_ops__printf(struct route_ops_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void route_ops__printf(struct route_ops_text *t, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !t->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p ? t->p + t->n : NULL, t->p ? t->cap - t->n : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = 1;
            return;
        }
        if (t->p && t->n + (size_t)n < t->cap) {
            t->n += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 16384;
        while (cap <= t->n + (size_t)n) {
            cap *= 2;
        }
        char *np = realloc(t->p, cap);
        if (np == NULL) {
            t->oom = 1;
            return;
        }
        t->p = np;
        t->cap = cap;
    }
}

static const char *route_ops__method(const struct router__route *rt)
{
    return rt ? http_method_name(rt->method) : "ANY";
}

static void route_ops__http_metrics(struct route_ops_text *t, const struct router *r)
{
    static const char *const classes[] = {"", "1xx", "2xx", "3xx", "4xx", "5xx"};
    size_t nr = router__nroutes();
    route_ops__printf(t,
                      "# HELP laurel_http_requests_total Requests answered by the router, by route "
                      "and status class.\n# TYPE laurel_http_requests_total counter\n");
    for (size_t i = 0; i <= nr; i++) {
        const struct router__route *rt = i < nr ? router__route_at(i) : NULL;
        for (unsigned c = 1; c < 6; c++) {
            if (r->stat[i].by_class[c]) {
                route_ops__printf(
                    t, "laurel_http_requests_total{route=\"%s %s\",code=\"%s\"} %" PRIu64 "\n",
                    route_ops__method(rt), rt ? rt->pattern : "unmatched", classes[c],
                    r->stat[i].by_class[c]);
            }
        }
    }
    route_ops__printf(t,
                      "# HELP laurel_http_request_duration_seconds Time from a request's arrival "
                      "to its answer.\n# TYPE laurel_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= nr; i++) {
        const struct router__route *rt = i < nr ? router__route_at(i) : NULL;
        const struct router__stat *st = &r->stat[i];
        uint64_t cum = 0;
        char label[160];
        snprintf(label, sizeof label, "route=\"%s %s\"", route_ops__method(rt),
                 rt ? rt->pattern : "unmatched");
        for (unsigned b = 0; b <= ROUTER_LAT_BUCKETS; b++) {
            cum += st->lat[b];
        }
        if (cum == 0) {
            continue;
        }
        uint64_t total = cum;
        cum = 0;
        for (unsigned b = 0; b < ROUTER_LAT_BUCKETS; b++) {
            cum += st->lat[b];
            route_ops__printf(
                t, "laurel_http_request_duration_seconds_bucket{%s,le=\"%g\"} %" PRIu64 "\n", label,
                (double)router__lat_bounds_us[b] / 1e6, cum);
        }
        route_ops__printf(
            t, "laurel_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", label,
            total);
        route_ops__printf(t, "laurel_http_request_duration_seconds_sum{%s} %.6f\n", label,
                          (double)st->lat_sum_us / 1e6);
        route_ops__printf(t, "laurel_http_request_duration_seconds_count{%s} %" PRIu64 "\n", label,
                          total);
    }
}

/* One metric family of one unlabelled sample. */
static void route_ops__one(struct route_ops_text *t, const char *name, const char *type,
                           const char *help, uint64_t v)
{
    route_ops__printf(t, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type,
                      name, v);
}

/* The HTTP connection caps (http.h). Names in docs/api.md. */
static void route_ops__conn_metrics(struct route_ops_text *t, const struct router *r)
{
    struct http_stats hs = {0};
    if (r->http) { /* NULL in a headless router (router.h) */
        http_stats_get(r->http, &hs);
    }
    route_ops__one(t, "laurel_http_connections", "gauge",
                   "Plain HTTP connections open (WebSockets are counted apart).", hs.open);
    route_ops__printf(t,
                      "# HELP laurel_http_connections_refused_total HTTP connections closed at "
                      "accept, by the cap reached.\n"
                      "# TYPE laurel_http_connections_refused_total counter\n"
                      "laurel_http_connections_refused_total{reason=\"max_conns\"} %" PRIu64
                      "\n"
                      "laurel_http_connections_refused_total{reason=\"per_ip\"} %" PRIu64 "\n",
                      hs.refused_max_conns, hs.refused_per_ip);
}

/* The rate limits (rlimit.h): one sample per kind of each family. Names in docs/api.md. */
static void route_ops__limit_metrics(struct route_ops_text *t, const struct router *r)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } families[] = {
        {"laurel_router_rate_limited_total", "counter",
         "Requests refused with 429 rate_limited, by limit.",
         offsetof(struct rlimit_stats, limited)},
        {"laurel_router_rate_limit_evictions_total", "counter",
         "Buckets given to another key because the limit's table was full.",
         offsetof(struct rlimit_stats, evictions)},
        {"laurel_router_rate_limit_buckets", "gauge", "Buckets in use, by limit.",
         offsetof(struct rlimit_stats, used)},
    };
    struct rlimit_stats st;
    rlimit_stats_get(r->rl, &st);
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        route_ops__printf(t, "# HELP %s %s\n# TYPE %s %s\n", families[f].name, families[f].help,
                          families[f].name, families[f].type);
        for (int k = 0; k < RLIMIT_N; k++) {
            uint64_t v;
            memcpy(&v, (const char *)&st + families[f].off + (size_t)k * sizeof v, sizeof v);
            route_ops__printf(t, "%s{limit=\"%s\"} %" PRIu64 "\n", families[f].name,
                              rlimit_label((enum rlimit_kind)k), v);
        }
    }
}

/* The read model (rmodel.h), from the router's own counters. Names in docs/api.md. */
static void route_ops__rmodel_metrics(struct route_ops_text *t, const struct router *r)
{
    struct rmodel_stats st;
    if (r->rm == NULL) {
        return;
    }
    rmodel_stats_get(r->rm, &st);
    route_ops__one(t, "laurel_readmodel_boards", "gauge", "Boards the read model holds, seeded.",
                   st.boards);
    route_ops__one(t, "laurel_readmodel_entries", "gauge", "Entries of the boards it holds.",
                   st.entries);
    route_ops__one(t, "laurel_readmodel_index_bytes", "gauge",
                   "Bytes of the read model's ordered indexes.", st.index_bytes);
    route_ops__one(t, "laurel_readmodel_bytes", "gauge",
                   "Bytes the read model holds: indexes, keys, players, names, metadata.",
                   st.total_bytes);
    route_ops__one(t, "laurel_readmodel_rounds_total", "counter",
                   "ReadIndex rounds sent to a region (one per region per loop turn at most).",
                   st.rounds);
    route_ops__one(t, "laurel_readmodel_waits_total", "counter",
                   "Reads that waited for the read model to reach the regions' commit points.",
                   st.waits);
    route_ops__one(t, "laurel_readmodel_page_hits_total", "counter",
                   "Top pages served already encoded.", st.page_hits);
    route_ops__one(t, "laurel_readmodel_seeds_total", "counter", "Board seeds started.", st.seeds);
}

/* The WebSocket side (ws.h) and the gateway's streams (gateway.h), from the router's own
 * counters: no replica is asked. Names in docs/api.md, "/metrics". */
static void route_ops__ws_metrics(struct route_ops_text *t, const struct router *r)
{
    struct ws_stats ws;
    struct gateway_stats gw;
    if (r->ws == NULL || r->gw == NULL) {
        return;
    }
    ws_stats_get(r->ws, &ws);
    gateway_stats_get(r->gw, &gw);
    route_ops__one(t, "laurel_ws_connections", "gauge", "WebSocket sessions open.", ws.open);
    route_ops__one(t, "laurel_ws_connections_accepted_total", "counter",
                   "WebSocket handshakes completed.", ws.accepted);
    route_ops__printf(t,
                      "# HELP laurel_ws_connections_refused_total WebSocket handshakes refused, "
                      "by the limit reached.\n"
                      "# TYPE laurel_ws_connections_refused_total counter\n"
                      "laurel_ws_connections_refused_total{reason=\"max_conns\"} %" PRIu64
                      "\n"
                      "laurel_ws_connections_refused_total{reason=\"per_ip\"} %" PRIu64
                      "\n"
                      "laurel_ws_connections_refused_total{reason=\"stopping\"} %" PRIu64 "\n",
                      ws.refused[WS_REFUSE_MAX_CONNS], ws.refused[WS_REFUSE_PER_IP],
                      ws.refused[WS_REFUSE_STOPPING]);
    route_ops__printf(t,
                      "# HELP laurel_ws_server_closes_total WebSocket sessions the server closed, "
                      "by reason.\n"
                      "# TYPE laurel_ws_server_closes_total counter\n"
                      "laurel_ws_server_closes_total{reason=\"slow_consumer\"} %" PRIu64
                      "\n"
                      "laurel_ws_server_closes_total{reason=\"ping_timeout\"} %" PRIu64 "\n",
                      ws.slow_consumers, ws.ping_timeouts);
    route_ops__printf(t,
                      "# HELP laurel_ws_ops_refused_total WebSocket gets and resumes refused with "
                      "an error event: the connection's bound was reached.\n"
                      "# TYPE laurel_ws_ops_refused_total counter\n"
                      "laurel_ws_ops_refused_total{op=\"get\"} %" PRIu64
                      "\n"
                      "laurel_ws_ops_refused_total{op=\"resume\"} %" PRIu64 "\n",
                      ws.gets_refused, ws.resumes_refused);
    route_ops__one(t, "laurel_ws_received_messages_total", "counter",
                   "Whole messages received from WebSocket clients.", ws.received);
    route_ops__one(t, "laurel_ws_sent_messages_total", "counter",
                   "Messages written to WebSocket clients.", ws.sent);
    route_ops__one(t, "laurel_ws_sent_bytes_total", "counter",
                   "Payload bytes of the messages written to WebSocket clients.", ws.sent_bytes);
    route_ops__one(t, "laurel_ws_dropped_messages_total", "counter",
                   "Queued messages never written: their session closed first.", ws.dropped);
    route_ops__one(t, "laurel_ws_queued_messages", "gauge",
                   "Messages waiting in the WebSocket send queues.", ws.queued);
    route_ops__one(t, "laurel_ws_queued_bytes", "gauge",
                   "Payload bytes waiting in the WebSocket send queues.", ws.queued_bytes);
    route_ops__one(t, "laurel_ws_events_total", "counter",
                   "Events received from the regions' committed-event streams.", gw.events);
    route_ops__one(t, "laurel_ws_delivered_total", "counter",
                   "Messages the gateway handed to WebSocket sessions (one per receiver).",
                   gw.delivered);
    route_ops__one(t, "laurel_ws_topics", "gauge", "Topics with at least one subscriber.",
                   gw.topics);
    route_ops__one(t, "laurel_ws_boards", "gauge", "Boards whose top the gateway keeps.",
                   gw.boards);
    route_ops__one(t, "laurel_ws_board_seeds_total", "counter",
                   "Top queries that seeded or re-seeded a kept board top.", gw.seeds);
    route_ops__one(t, "laurel_ws_resumes_total", "counter",
                   "Replays started for subscribes with a resume point.", gw.replays);
    route_ops__one(t, "laurel_ws_stream_resyncs_total", "counter",
                   "Region streams restarted from the present: the event log no longer held their "
                   "next index.",
                   gw.resyncs);
    route_ops__printf(t,
                      "# HELP laurel_ws_stream_connects_total Connections of a region's event "
                      "stream to one of its replicas (the first one too).\n"
                      "# TYPE laurel_ws_stream_connects_total counter\n");
    for (unsigned reg = 0; reg < r->nregions; reg++) {
        struct gateway_stream_stats ss;
        gateway_stream_stats_get(r->gw, reg, &ss);
        route_ops__printf(t, "laurel_ws_stream_connects_total{region=\"%s\"} %" PRIu64 "\n",
                          r->region[reg], ss.connects);
    }
    route_ops__printf(t,
                      "# HELP laurel_ws_stream_replica The replica a region's event stream "
                      "follows (its position in the router's list, from 1; 0: none now).\n"
                      "# TYPE laurel_ws_stream_replica gauge\n");
    for (unsigned reg = 0; reg < r->nregions; reg++) {
        struct gateway_stream_stats ss;
        gateway_stream_stats_get(r->gw, reg, &ss);
        route_ops__printf(t, "laurel_ws_stream_replica{region=\"%s\"} %d\n", r->region[reg],
                          ss.replica + 1);
    }
    route_ops__printf(t,
                      "# HELP laurel_ws_stream_index The last log index a region's event stream "
                      "delivered.\n# TYPE laurel_ws_stream_index gauge\n");
    for (unsigned reg = 0; reg < r->nregions; reg++) {
        struct gateway_stream_stats ss;
        gateway_stream_stats_get(r->gw, reg, &ss);
        route_ops__printf(t, "laurel_ws_stream_index{region=\"%s\"} %" PRIu64 "\n", r->region[reg],
                          ss.index);
    }
}

/* One gauge or counter family over every replica that answered (the metadata group's with
 * region="meta"). */
static void route_ops__replica_family(struct route_ops_text *t, struct rreq *q, const char *name,
                                      const char *type, const char *help, const char *key)
{
    route_ops__printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (unsigned g = 0; g < route_ops__ngroups(q); g++) {
        const char *group = q->r->region[route_ops__slot(q, g)];
        json_t *sts = json_array_get(q->route_data, g);
        for (unsigned i = 0; i < json_array_size(sts); i++) {
            json_t *st = json_array_get(sts, i);
            if (key == NULL) { /* up */
                route_ops__printf(t, "%s{region=\"%s\",replica=\"%u\"} %d\n", name, group, i + 1,
                                  st != NULL && !json_is_null(st));
            } else if (st && !json_is_null(st)) {
                route_ops__printf(t, "%s{region=\"%s\",replica=\"%u\"} %" JSON_INTEGER_FORMAT "\n",
                                  name, group, i + 1, route_ops__int(st, key));
            }
        }
    }
}

/* Group commit (upstream_submit): per region, the writes the router submitted and the submit
 * calls that carried them; fewer calls than writes is the grouping at work. */
static void route_ops__submit_metrics(struct route_ops_text *t, const struct router *r)
{
    static const struct {
        const char *name, *help;
        size_t off;
    } families[] = {
        {"laurel_router_submits_total", "Writes (single or /v1/events) submitted to a region.",
         offsetof(struct upstream_stats, submits)},
        {"laurel_router_submit_commands_total", "Commands in those writes.",
         offsetof(struct upstream_stats, cmds)},
        {"laurel_router_submit_rpcs_total",
         "Submit calls that carried them: a loop turn's writes to a region go as one.",
         offsetof(struct upstream_stats, rpcs)},
        {"laurel_router_peer_auth_failures_total",
         "Connections to a region's replicas that failed the cluster-key handshake.",
         offsetof(struct upstream_stats, auth_failures)},
    };
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        route_ops__printf(t, "# HELP %s %s\n# TYPE %s counter\n", families[f].name,
                          families[f].help, families[f].name);
        for (unsigned i = 0; i < r->nregions; i++) {
            struct upstream_stats st;
            uint64_t v;
            upstream_stats_get(r->up[i], &st);
            memcpy(&v, (const char *)&st + families[f].off, sizeof v);
            route_ops__printf(t, "%s{region=\"%s\"} %" PRIu64 "\n", families[f].name, r->region[i],
                              v);
        }
    }
}

static int route_ops__metrics_reply(struct rreq *q)
{
    struct route_ops_text t = {NULL, 0, 0, 0};
    route_ops__http_metrics(&t, q->r);
    route_ops__ws_metrics(&t, q->r);
    route_ops__limit_metrics(&t, q->r);
    route_ops__conn_metrics(&t, q->r);
    route_ops__rmodel_metrics(&t, q->r);
    route_ops__submit_metrics(&t, q->r);
    route_ops__one(&t, "laurel_router_player_cache_entries", "gauge",
                   "Players whose region this router remembers.", q->r->player_region.count);
    route_ops__one(&t, "laurel_router_player_cache_evictions_total", "counter",
                   "Players forgotten to keep that cache within --player-cache.",
                   q->r->player_cache_evictions);
    route_ops__replica_family(&t, q, "laurel_replica_up", "gauge",
                              "1 when the replica answered its status within 500 ms.", NULL);
    route_ops__printf(&t,
                      "# HELP laurel_raft_role The replica's raft role (1 for the role it has).\n"
                      "# TYPE laurel_raft_role gauge\n");
    for (unsigned g = 0; g < route_ops__ngroups(q); g++) {
        const char *group = q->r->region[route_ops__slot(q, g)];
        json_t *sts = json_array_get(q->route_data, g);
        for (unsigned i = 0; i < json_array_size(sts); i++) {
            const char *role = json_string_value(json_object_get(json_array_get(sts, i), "role"));
            if (role) {
                route_ops__printf(&t,
                                  "laurel_raft_role{region=\"%s\",replica=\"%u\",role=\"%s\"} 1\n",
                                  group, i + 1, role);
            }
        }
    }
    route_ops__replica_family(&t, q, "laurel_raft_term", "gauge", "The replica's current term.",
                              "term");
    route_ops__replica_family(&t, q, "laurel_raft_commit_index", "gauge",
                              "The highest log index the replica knows committed.", "commit_index");
    route_ops__replica_family(&t, q, "laurel_raft_applied_index", "gauge",
                              "The highest log index the replica has applied to LMDB.",
                              "applied_index");
    route_ops__replica_family(&t, q, "laurel_replica_writable", "gauge",
                              "0 while admission control pauses the replica's writes: its disk or "
                              "LMDB map is nearly full (docs/durability.md).",
                              "writable");
    route_ops__replica_family(&t, q, "laurel_replica_disk_free_bytes", "gauge",
                              "Free bytes of the fuller of the filesystems of the replica's raft "
                              "log and state; writes pause below --disk-reserve-mb.",
                              "disk_free_bytes");
    route_ops__replica_family(&t, q, "laurel_rpc_connections", "gauge",
                              "Client RPC connections open on the replica.", "rpc_conns");
    route_ops__replica_family(&t, q, "laurel_rpc_connections_refused_total", "counter",
                              "Client RPC connections closed at accept: --rpc-max-conns were "
                              "open.",
                              "rpc_conns_refused");
    route_ops__replica_family(&t, q, "laurel_rpc_idle_closes_total", "counter",
                              "Client RPC connections closed after --rpc-idle-s without a "
                              "request.",
                              "rpc_idle_closes");
    route_ops__replica_family(&t, q, "laurel_apply_entries_total", "counter",
                              "Raft entries applied since the replica started.", "applied_entries");
    route_ops__replica_family(&t, q, "laurel_apply_commands_total", "counter",
                              "Commands applied since the replica started (rate: the apply rate).",
                              "applied_commands");
    route_ops__printf(&t,
                      "# HELP laurel_apply_batch_commands Commands per applied raft entry.\n"
                      "# TYPE laurel_apply_batch_commands histogram\n");
    for (unsigned g = 0; g < route_ops__ngroups(q); g++) {
        const char *group = q->r->region[route_ops__slot(q, g)];
        json_t *sts = json_array_get(q->route_data, g);
        for (unsigned i = 0; i < json_array_size(sts); i++) {
            json_t *st = json_array_get(sts, i);
            json_t *hist = json_object_get(st, "batch_hist");
            json_int_t cum = 0;
            for (unsigned b = 0; b < json_array_size(hist); b++) {
                cum += json_integer_value(json_array_get(hist, b));
                route_ops__printf(&t,
                                  "laurel_apply_batch_commands_bucket{region=\"%s\",replica=\"%u\","
                                  "le=\"%u\"} %" JSON_INTEGER_FORMAT "\n",
                                  group, i + 1, 1u << b, cum);
            }
            if (hist) {
                route_ops__printf(&t,
                                  "laurel_apply_batch_commands_bucket{region=\"%s\",replica=\"%u\","
                                  "le=\"+Inf\"} %" JSON_INTEGER_FORMAT
                                  "\n"
                                  "laurel_apply_batch_commands_sum{region=\"%s\",replica=\"%u\"} "
                                  "%" JSON_INTEGER_FORMAT
                                  "\n"
                                  "laurel_apply_batch_commands_count{region=\"%s\",replica=\"%u\"} "
                                  "%" JSON_INTEGER_FORMAT "\n",
                                  group, i + 1, cum, group, i + 1,
                                  route_ops__int(st, "applied_commands"), group, i + 1,
                                  route_ops__int(st, "applied_entries"));
            }
        }
    }
    if (t.oom) {
        free(t.p);
        return rreq__errf(q, LR_ENOMEM, "out of memory");
    }
    rreq__reply_text(q, 200, "text/plain; version=0.0.4", t.p, t.n);
    free(t.p);
    return 0;
}

/* GET /metrics */
int route_ops_metrics(struct rreq *q)
{
    return route_ops__status_all(q, route_ops__metrics_reply);
}
