/* router/rreq.c — one request in flight: its calls to regions, their answers, the args it
 * packs, locating its player, and its one reply.
 *
 * A request is a chain of steps (router_int.h): the route's handler, then q->next each time
 * the calls it launched have all answered, or q->then once a lookup is done. A step either
 * ends the request with a reply, or launches calls and returns 0, or returns an error with
 * nothing in flight. When the step ran inside the function that launched it (a cache hit, no
 * call left to make), its result goes back up the stack to the pipeline; when it runs from an
 * answer on the loop, rreq__resume is the pipeline and answers its error. So exactly one
 * place answers a failed request, and nothing but the reply functions frees one.
 *
 * Answers are kept as msgpack bytes per region (q->ans) until the request ends, because a
 * later round may need an earlier one's (rank's second round reads the first's window).
 * Replicas answer msgpack maps keyed by API.md's field names; they become JSON through
 * mpjson, so no route serializes fields by hand. */
#include <assert.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../proto/mpjson.h"
#include "../proto/proto.h"
#include "../lib/err.h"
#include "router_int.h"

void rreq__free(struct rreq *q)
{
    for (unsigned i = 0; i < ROUTER_SLOTS; i++) {
        if (q->have[i]) {
            msgpack_sbuffer_destroy(&q->ans[i]);
        }
    }
    msgpack_sbuffer_destroy(&q->args);
    json_decref(q->body);
    if (q->route_free) {
        q->route_free(q->route_data);
    }
    free(q);
}

void *rreq__data(struct rreq *q, size_t size, void (*route_free)(void *))
{
    void *d = calloc(1, size);
    if (d == NULL) {
        rreq__errf(q, LR_ENOMEM, "out of memory");
        return NULL;
    }
    q->route_data = d;
    q->route_free = route_free;
    return d;
}

/* ---- errors ------------------------------------------------------------------------------ */

int rreq__errf(struct rreq *q, int rv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->errmsg, sizeof q->errmsg, fmt, ap);
    va_end(ap);
    return rv;
}

int rreq__upstream_err(struct rreq *q, int code, const msgpack_object *payload)
{
    if (payload && payload->type == MSGPACK_OBJECT_STR) {
        return rreq__errf(q, code, "%.*s", (int)payload->via.str.size, payload->via.str.ptr);
    }
    return rreq__errf(q, code, "%s",
                      code == LR_EUNAVAILABLE ? "region unavailable; retry" : err_message(code));
}

/* ---- replies ----------------------------------------------------------------------------- */

/* Count the answer (/metrics) and log it when sampled, or when it is a 5xx (rate-limited):
 * docs/operations.md, "Logs". */
static void rreq__observe(struct rreq *q, int status)
{
    struct router *r = q->r;
    router__observe(r, q->route, q->t0, status);
    int sampled = r->log_requests != 0 && ++r->log_seq % r->log_requests == 0;
    enum log_level lvl = status >= 500 ? LOG_WARN : LOG_INFO;
    uint64_t held = 0;
    if ((!sampled && status < 500) || lvl > r->log->level ||
        (status >= 500 && !log_limit_allow(&r->log_5xx, uv_now(r->loop), &held))) {
        return;
    }
    const struct http_req *h = q->h;
    json_t *f = json_pack(
        "{s:s,s:s,s:i,s:I,s:s,s:s}", "method",
        q->route ? http_method_name(q->route->method) : (h ? http_method_name(h->method) : "GET"),
        "route", q->route ? q->route->pattern : (h && h->path ? h->path : "?"), "status", status,
        "latency_us", (json_int_t)((uv_hrtime() - q->t0) / 1000), "source",
        h && h->peer ? h->peer : "", "via", q->reply ? "ws" : "http");
    if (f != NULL && held > 0) {
        json_object_set_new(f, "unlogged_5xx", json_integer((json_int_t)held));
    }
    log_emit_fields(r->log, lvl, f, status >= 500 && q->errmsg[0] ? q->errmsg : "request");
    json_decref(f);
}

/* The last act of every reply (counted already): send it, free @q. */
static void rreq__send(struct rreq *q, int status, const char *ctype, const char *body, size_t len,
                       const char *headers)
{
    if (q->reply) {
        q->reply(q->reply_data, status, body, len);
        free(q->h); /* the get's request (router__ws_get) */
    } else {
        http_reply_type(q->h, status, ctype, body, len, headers);
    }
    rreq__free(q);
}

void rreq__reply_json(struct rreq *q, int status, json_t *j, const char *headers)
{
    static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
    rreq__observe(q, status);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    json_decref(j);
    if (s == NULL) {
        rreq__send(q, 500, HTTP_JSON, oom, sizeof oom - 1, NULL);
        return;
    }
    rreq__send(q, status, HTTP_JSON, s, strlen(s), headers);
    free(s);
}

/* Over the WebSocket the body goes as it is (ws.c only lets /v1/ reads through, which all
 * answer JSON). */
void rreq__reply_text(struct rreq *q, int status, const char *ctype, const char *body, size_t len)
{
    rreq__observe(q, status);
    rreq__send(q, status, ctype, body, len, NULL);
}

void rreq__reply_empty(struct rreq *q, int status, const char *headers)
{
    router__observe(q->r, q->route, q->t0, status);
    rreq__send(q, status, HTTP_JSON, "", 0, headers);
}

void rreq__reply_error(struct rreq *q, int rv)
{
    int status = err_http_status(rv);
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "code", err_api_code(rv), "message",
                          q->errmsg[0] ? q->errmsg : err_message(rv));
    char retry[40];
    snprintf(retry, sizeof retry, "Retry-After: %u\r\n", q->retry_after_s ? q->retry_after_s : 1);
    rreq__reply_json(q, status, j, status == 503 || status == 429 ? retry : NULL);
}

/* Reply with a replica's msgpack answer as JSON. */
void rreq__reply_mp(struct rreq *q, int status, const msgpack_object *o, const char *headers)
{
    json_t *j = mpjson_from(o);
    if (j == NULL) {
        rreq__reply_error(q, rreq__errf(q, LR_EINTERNAL, "answer could not be converted to JSON"));
        return;
    }
    rreq__reply_json(q, status, j, headers);
}

void rreq__resume(struct rreq *q, rreq__step step)
{
    int rv = step(q);
    if (rv != 0) {
        rreq__reply_error(q, rv);
    }
}

/* The one command's result of @slot's submit answer (rreq__submit_result), with its replayed
 * flag. */
static int rreq__one_result(struct rreq *q, unsigned slot, msgpack_unpacked *up, int *status,
                            int *replayed, const msgpack_object **body)
{
    const msgpack_object *o, *res;
    int rv = rreq__answer_ok(q, slot, up, &o);
    if (rv != 0) {
        return rv;
    }
    res = proto_map_get(o, "results");
    if (res == NULL || res->type != MSGPACK_OBJECT_ARRAY || res->via.array.size != 1 ||
        rreq__result(&res->via.array.ptr[0], status, replayed, body) != 0) {
        msgpack_unpacked_destroy(up);
        return rreq__errf(q, LR_EINTERNAL, "malformed result from %s", q->r->region[slot]);
    }
    return 0;
}

int rreq__submit_result(struct rreq *q, unsigned slot, msgpack_unpacked *up, int *status,
                        const msgpack_object **body)
{
    int replayed;
    return rreq__one_result(q, slot, up, status, &replayed, body);
}

int rreq__reply_result(struct rreq *q)
{
    msgpack_unpacked up;
    const msgpack_object *body;
    int status, replayed;
    int rv = rreq__one_result(q, (unsigned)q->region, &up, &status, &replayed, &body);
    if (rv != 0) {
        return rv;
    }
    rreq__reply_mp(q, status, body, replayed ? "Idempotent-Replayed: true\r\n" : NULL);
    msgpack_unpacked_destroy(&up);
    return 0;
}

int rreq__reply_query(struct rreq *q)
{
    unsigned reg = (unsigned)q->region;
    msgpack_unpacked up;
    const msgpack_object *o;
    int rv = 0;
    rreq__answer(q, reg, &up, &o);
    if (q->code[reg] != 0) {
        rv = rreq__upstream_err(q, q->code[reg], o);
    } else if (o == NULL) {
        rv = rreq__errf(q, LR_EINTERNAL, "empty answer");
    } else {
        rreq__reply_mp(q, 200, o, NULL);
    }
    msgpack_unpacked_destroy(&up);
    return rv;
}

/* ---- calls to regions -------------------------------------------------------------------- */

struct rreq__call {
    struct rreq *q;
    unsigned region;
};

static void rreq__answered(void *data, int code, const msgpack_object *payload)
{
    struct rreq__call *c = data;
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
        rreq__resume(q, q->next);
    }
}

/* Start a call to @region that answers into rreq__answered: @grouped through upstream_submit
 * (a submit of q->args), else upstream_call of @op. */
static int rreq__start(struct rreq *q, unsigned region, int op, int need_leader, int grouped)
{
    struct rreq__call *c = malloc(sizeof *c);
    int rv;
    if (c == NULL) {
        return rreq__errf(q, LR_ENOMEM, "out of memory");
    }
    c->q = q;
    c->region = region;
    if (q->have[region]) {
        msgpack_sbuffer_destroy(&q->ans[region]);
        q->have[region] = 0;
    }
    q->pending++;
    if (grouped) {
        rv = upstream_submit(q->r->up[region], q->args.data, q->args.size, q->r->timeout_ms,
                             rreq__answered, c);
    } else {
        rv = upstream_call(q->r->up[region], op, need_leader, q->args.size ? q->args.data : NULL,
                           q->args.size, q->r->timeout_ms, rreq__answered, c);
    }
    if (rv != 0) {
        q->pending--;
        free(c);
        /* Only memory fails a call (a grouped one also a malformed q->args, a bug of ours);
         * the sentence is the one every route gave. */
        return rreq__errf(q, rv, "%s", rv == LR_ENOMEM ? "out of memory" : err_message(rv));
    }
    return 0;
}

int rreq__call(struct rreq *q, unsigned region, int op, int need_leader)
{
    return rreq__start(q, region, op, need_leader, 0);
}

int rreq__submit(struct rreq *q, unsigned region)
{
    return rreq__start(q, region, PROTO_OP_SUBMIT, 1, 1);
}

int rreq__call_others(struct rreq *q, int op, int need_leader, unsigned skip)
{
    q->pending++; /* held while launching: answers never arrive from inside upstream_call */
    for (unsigned i = 0; i < q->nregions; i++) {
        if (i != skip && rreq__call(q, i, op, need_leader) != 0) {
            q->code[i] = LR_ENOMEM;
        }
    }
    if (--q->pending == 0) {
        return q->next(q);
    }
    return 0;
}

int rreq__call_all(struct rreq *q, int op, int need_leader)
{
    return rreq__call_others(q, op, need_leader, UINT_MAX);
}

int rreq__query_region(struct rreq *q, struct shard_query *sq)
{
    rreq__args_query(q, sq, 0);
    q->next = rreq__reply_query;
    return rreq__call(q, (unsigned)q->region, PROTO_OP_QUERY, 1);
}

/* ---- answers ----------------------------------------------------------------------------- */

int rreq__answer(struct rreq *q, unsigned region, msgpack_unpacked *up, const msgpack_object **o)
{
    msgpack_unpacked_init(up);
    if (!q->have[region] || q->ans[region].size == 0 ||
        proto_unpack(q->ans[region].data, q->ans[region].size, up) != 0) {
        *o = NULL;
        return LR_EINTERNAL;
    }
    *o = &up->data;
    return 0;
}

int rreq__answer_ok(struct rreq *q, unsigned region, msgpack_unpacked *up, const msgpack_object **o)
{
    rreq__answer(q, region, up, o);
    if (q->code[region] != 0 || *o == NULL) {
        /* The sentence is copied out of the answer before the answer goes. */
        int rv = rreq__upstream_err(q, q->code[region] ? q->code[region] : LR_EINTERNAL, *o);
        msgpack_unpacked_destroy(up);
        *o = NULL;
        return rv;
    }
    return 0;
}

int rreq__answers(struct rreq *q, msgpack_unpacked *up, const msgpack_object **o)
{
    unsigned nr = q->nregions;
    for (unsigned i = 0; i < nr; i++) {
        rreq__answer(q, i, &up[i], &o[i]);
    }
    for (unsigned i = 0; i < nr; i++) {
        if (q->code[i] != 0 || o[i] == NULL) {
            int rv = rreq__upstream_err(q, q->code[i] ? q->code[i] : LR_EINTERNAL, o[i]);
            rreq__answers_free(nr, up);
            return rv;
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

/* 1 when @o is a string. */
static int rreq__is_str(const msgpack_object *o)
{
    return o != NULL && o->type == MSGPACK_OBJECT_STR;
}

int rreq__result(const msgpack_object *r, int *status, int *replayed, const msgpack_object **body)
{
    int64_t st;
    /* The status and body go to the client as they are: a status that is not a final answer
     * (1xx would read as an interim response, or a protocol switch) or a refusal that is not
     * in API.md's error form would break the API, so a region that sends one is malformed. */
    if (r == NULL || r->type != MSGPACK_OBJECT_ARRAY || r->via.array.size != 3 ||
        proto_obj_i64(&r->via.array.ptr[0], &st) != 0 || st < 200 || st > 599) {
        return LR_EINTERNAL;
    }
    const msgpack_object *err = proto_map_get(&r->via.array.ptr[2], "error");
    if (st >= 400 && (err == NULL || !rreq__is_str(proto_map_get(err, "code")) ||
                      !rreq__is_str(proto_map_get(err, "message")))) {
        return LR_EINTERNAL;
    }
    *status = (int)st;
    *replayed =
        r->via.array.ptr[1].type == MSGPACK_OBJECT_BOOLEAN && r->via.array.ptr[1].via.boolean;
    *body = &r->via.array.ptr[2];
    return 0;
}

/* ---- args -------------------------------------------------------------------------------- */

void rreq__origin(const struct rreq *q, struct cmd *c)
{
    struct lr_str peer = lr_str_of(q->h ? q->h->peer : NULL);
    c->origin.key = q->admin ? CMD_KEY_ADMIN : CMD_KEY_API;
    /* The peer is lws's numeric text; one the shard's decoder would refuse (it never should)
     * is left out rather than make the whole command malformed. */
    c->origin.source = cmd_source_valid(peer) ? peer : lr_str_of("");
}

/* Pack one command as a submit's args. */
void rreq__args_cmd(struct rreq *q, const struct cmd *c)
{
    msgpack_packer pk;
    struct cmd stamped = *c;
    rreq__origin(q, &stamped);
    msgpack_sbuffer_clear(&q->args);
    msgpack_packer_init(&pk, &q->args, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    cmd_encode(&pk, &stamped);
}

void rreq__args_mcmd(struct rreq *q, const struct mcmd *c)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&q->args);
    msgpack_packer_init(&pk, &q->args, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    mcmd_encode(&pk, c);
}

void rreq__args_mquery(struct rreq *q, const struct meta_query *mq, int stale)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&q->args);
    msgpack_packer_init(&pk, &q->args, msgpack_sbuffer_write);
    meta_query_encode(&pk, mq, stale);
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

/* ---- input ------------------------------------------------------------------------------- */

int rreq__query(const struct rreq *q, const char *name, char *out, size_t cap)
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

int rreq__query_int(const struct rreq *q, const char *name, long min, long max, long def, long *out)
{
    char num[24], *end;
    int has = rreq__query(q, name, num, sizeof num);
    *out = def;
    if (has > 0) {
        return 0;
    }
    long v = has == 0 ? strtol(num, &end, 10) : 0;
    if (has < 0 || *end != '\0' || end == num || v < min || v > max) {
        return LR_EINVAL;
    }
    *out = v;
    return 0;
}

int rreq__body_str(struct rreq *q, const char *key, int required, const char **out)
{
    json_t *v = q->body ? json_object_get(q->body, key) : NULL;
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        return required ? rreq__errf(q, LR_EINVAL, "%s is required", key) : 0;
    }
    if (!json_is_string(v)) {
        return rreq__errf(q, LR_EINVAL, "%s must be a string", key);
    }
    *out = json_string_value(v);
    return 0;
}

/* ---- finding a player's region ----------------------------------------------------------- */

static int rreq__located(struct rreq *q)
{
    int unavailable = 0;
    for (unsigned i = 0; i < q->nregions; i++) {
        if (q->code[i] == 0) {
            q->region = (int)i;
        } else if (q->code[i] != LR_ENOTFOUND) {
            unavailable = 1;
        }
    }
    if (q->region >= 0) {
        router__remember_region(q->r, q->player, strlen(q->player), q->region);
    } else if (unavailable) {
        return rreq__errf(q, LR_EUNAVAILABLE, "a region is unavailable; retry");
    }
    return q->then(q);
}

/* Ask every region's leader whether it holds the player (rreq__located decides). */
static int rreq__locate_regions(struct rreq *q)
{
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_PLAYER_GET;
    sq.player_id = lr_str_of(q->player);
    rreq__args_query(q, &sq, 0);
    q->next = rreq__located;
    return rreq__call_all(q, PROTO_OP_QUERY, 1);
}

/* The directory's answer. A claim names the player's one region for good, so a found one is
 * final. Not found (or no answer) falls back to the regions: a stale replica may not have the
 * claim yet, and players created before the cluster had a metadata group have none. */
static int rreq__located_meta(struct rreq *q)
{
    msgpack_unpacked up;
    const msgpack_object *o, *reg;
    if (rreq__answer_ok(q, ROUTER_META, &up, &o) == 0) {
        reg = proto_map_get(o, "region");
        if (reg && reg->type == MSGPACK_OBJECT_STR) {
            char name[VALID_ID_MAX + 1];
            snprintf(name, sizeof name, "%.*s", (int)reg->via.str.size, reg->via.str.ptr);
            q->region = router__region_index(q->r, name);
        }
        msgpack_unpacked_destroy(&up);
        if (q->region >= 0) {
            router__remember_region(q->r, q->player, strlen(q->player), q->region);
            return q->then(q);
        }
    }
    q->errmsg[0] = '\0';
    return rreq__locate_regions(q);
}

int rreq__locate(struct rreq *q, const char *id, rreq__step then)
{
    snprintf(q->player, sizeof q->player, "%s", id);
    q->then = then;
    q->region = router__cached_region(q->r, q->player, strlen(q->player));
    if (q->region >= 0) {
        return then(q);
    }
    if (q->r->up[ROUTER_META] == NULL) {
        return rreq__locate_regions(q);
    }
    struct meta_query mq;
    memset(&mq, 0, sizeof mq);
    mq.type = META_Q_DIRECTORY;
    mq.player_id = lr_str_of(q->player);
    rreq__args_mquery(q, &mq, 1);
    q->next = rreq__located_meta;
    return rreq__call(q, ROUTER_META, PROTO_OP_QUERY, 0);
}
