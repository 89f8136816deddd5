/* router/router_int.h — internals of the router module.
 *
 *   router.c       the route table, the pipeline (match → auth → ids → body → handler), the
 *                  /metrics counters, the router's caches and its lifecycle
 *   rreq.c         one request in flight: calls to regions, their answers, args packing,
 *                  locating a player, replies
 *   route_*.c      the handlers, one file per family, each named after the handlers it holds
 *
 * The contract every route follows (the pipeline's one error path): a handler and every step
 * that runs after it (q->next once a request's calls have answered, q->then once a lookup is
 * done) returns 0 when it has answered @q or has calls in flight that will run the next step,
 * and otherwise an LR_E* code with a sentence in q->errmsg and nothing in flight: then the
 * pipeline answers with that error and frees @q. Nothing but a reply function (rreq__reply_*)
 * answers or frees a request; getters and helpers report an error by returning it. */
#ifndef LAUREL_ROUTER_INT_H
#define LAUREL_ROUTER_INT_H

#include <jansson.h>
#include <msgpack.h>

#include "../meta/meta.h"
#include "../shard/cursor.h"
#include "../shard/shard.h"
#include "../lib/log.h"
#include "../lib/strmap.h"
#include "catsync.h"
#include "closer.h"
#include "cors.h"
#include "gateway.h"
#include "http.h"
#include "rlimit.h"
#include "rmodel.h"
#include "router.h"
#include "ws.h"

#define ROUTER__PARAMS 3

enum router__auth { AUTH_NONE, AUTH_API, AUTH_ADMIN };
enum router__body { BODY_NONE, BODY_OBJECT, BODY_ARRAY };
/* Which rate limits a route counts against (rlimit.h): none (the operations endpoints, so
 * monitoring keeps working under a flood), reads per address, or writes per address and per
 * key. */
enum router__lim { LIM_NONE, LIM_READ, LIM_WRITE };

/* Per-route request counts by status class and latency histogram, for /metrics. */
#define ROUTER_LAT_BUCKETS 12 /* upper bounds: router__lat_bounds_us */
#define ROUTER_STAT_ROUTES 48 /* routes of the table + 1 for requests that matched none */
struct router__stat {
    uint64_t by_class[6];                 /* 1xx..5xx at [1..5] */
    uint64_t lat[ROUTER_LAT_BUCKETS + 1]; /* the last one: above every bound */
    uint64_t lat_sum_us;
};

/* The metadata group's slot in the router's and a request's per-upstream arrays: one past the
 * regions, so every call and answer helper of rreq.c takes it like a region index, and no loop
 * over the regions (0..nregions-1) ever meets it. */
#define ROUTER_META ROUTER_MAX_REGIONS
#define ROUTER_SLOTS (ROUTER_MAX_REGIONS + 1)

struct router {
    uv_loop_t *loop;
    struct logger *log; /* borrowed from router_config */
    struct http *http;
    struct gateway *gw; /* the committed-event streams and the WebSocket topics */
    struct ws *ws;
    struct upstream *up[ROUTER_SLOTS]; /* up[ROUTER_META]: the metadata group, or NULL */
    char region[ROUTER_SLOTS][65];
    unsigned nregions;
    struct keyset keys;
    int have_cluster_key;
    struct peerauth_key cluster_key; /* lent to every upstream (upstream_set_key) */
    unsigned timeout_ms;
    struct strmap player_region; /* player id -> (uintptr_t)region index + 1 (a cache) */
    size_t player_cache_max;     /* entries player_region may hold */
    uint64_t player_cache_evictions;
    struct strmap board_order; /* board id -> (uintptr_t)desc + 1 (a cache) */
    void (*done)(void *data);
    void *done_data;
    unsigned closing;
    struct router__stat stat[ROUTER_STAT_ROUTES];
    /* The last version stamped on a catalog put, without a metadata group (route_catalog.c). */
    int64_t catalog_version;
    struct catsync *catsync; /* the catalog carrier, with a metadata group (catsync.h) */
    struct closer *closer;   /* the cycle closer, with a metadata group (closer.h) */
    struct rmodel *rm;       /* the read model (rmodel.h) */
    struct rlimit *rl;       /* the request rate limits (rlimit.h) */
    /* Request log lines (router_config.log_requests): one request in log_requests, counted
     * by log_seq; 5xx lines at most one a second (a region down answers every write 503). */
    unsigned log_requests;
    uint64_t log_seq;
    struct log_limit log_5xx;
    /* The follower of the metadata group's region list (route_region.c). */
    uv_timer_t regions_timer;
    int regions_started, regions_busy, regions_timer_closed;
    msgpack_sbuffer regions_args;
    struct log_limit regions_log;
};

/* How often a router reads the metadata group's list of regions (route_region.c). */
#define ROUTER_REGIONS_POLL_MS 1000

struct rreq;

/* A step of a request: a handler, q->next or q->then (the contract at the top). */
typedef int (*rreq__step)(struct rreq *q);

/* As long as the longest sentence a region sends with an error. */
#define RREQ_ERRMSG_SIZE 512

/* One request in flight through the pipeline. */
struct rreq {
    /* Set by the pipeline (router.c), read-only for routes. */
    struct router *r;
    struct http_req *h;
    /* A get over the WebSocket (router__ws_get): the answer goes to @reply instead of
     * http_reply, and the reply frees @h (owned by the get). */
    ws_reply_fn reply;
    void *reply_data;
    const struct router__route *route;
    char path[512];
    struct lr_str param[ROUTER__PARAMS]; /* the route pattern's ids, in order */
    json_t *body;                        /* the parsed body of routes that take one (owned) */
    int admin;                           /* the request carries the admin key */
    uint64_t t0;                         /* uv_hrtime at arrival */
    /* The router's regions when the request arrived: every step of it calls, waits for and
     * merges these, so a region added meanwhile (router__region_add) joins the next request
     * rather than half of this one. */
    unsigned nregions;
    /* Calls to regions (rreq.c). */
    unsigned pending;
    int code[ROUTER_SLOTS];
    msgpack_sbuffer ans[ROUTER_SLOTS];
    int have[ROUTER_SLOTS];
    msgpack_sbuffer args; /* what the next call sends */
    int64_t now_ms;       /* the clock of the request's first query, reused by later rounds */
    rreq__step next;      /* runs when every pending region call has answered */
    rreq__step then;      /* runs once a lookup (player's region, board's order) is done */
    /* The player a request is about and the region it lives in (-1: none, or not known). */
    int region;
    char player[VALID_ID_MAX + 1];
    /* The route's own state: one struct per family, defined in its route_*.c (owned; freed
     * with @route_free when the request ends). */
    void *route_data;
    void (*route_free)(void *route_data);
    char errmsg[RREQ_ERRMSG_SIZE]; /* the sentence of the error a step returns */
    unsigned retry_after_s;        /* Retry-After of a 429 or 503 answer; 0: 1 second */
};

struct router__route {
    enum http_method method;
    const char *pattern;
    rreq__step handler;
    enum router__auth auth;
    enum router__body body;
    enum router__lim lim;
};

/* ---- router.c ----------------------------------------------------------------------------- */

/* router/openapi.json, built into the binary (scripts/embed.cmake): @router__openapi_json_len
 * bytes, then a NUL. */
extern const unsigned char router__openapi_json[];
extern const size_t router__openapi_json_len;

/* The route table, for /metrics and for the test that holds it and router/openapi.json
 * together (tests/unit/test_openapi.c). */
size_t router__nroutes(void);
const struct router__route *router__route_at(size_t i);
extern const uint64_t router__lat_bounds_us[ROUTER_LAT_BUCKETS];
/* Count an answer with @status to a request of @route (NULL: none matched) that arrived at
 * @t0 (uv_hrtime). Every reply calls it once. */
void router__observe(struct router *r, const struct router__route *route, uint64_t t0, int status);

/* Run the pipeline on request @in (its strings are copied; @in->body holds @in->body_len
 * bytes) and answer through @reply, exactly once, now or later, instead of http_reply: how a
 * WebSocket get and the fuzz harnesses (fuzz/fuzz_http.c) reach the routes without a socket.
 * Reply headers (Retry-After) and the content type are not passed on. @return 0, or LR_ENOMEM
 * (then @reply never fires). */
int router__request(struct router *r, const struct http_req *in, ws_reply_fn reply, void *rdata);

/* One of the parts router_stop waits for has closed (the last frees @data, the router). */
void router__part_closed(void *data);

/* ---- route_region.c ----------------------------------------------------------------------- */

/* Serve one more region, @id, whose replicas are at the @n addresses @rpc (copied), through
 * @u when given (adopted: the router closes it, also on failure) or a new link: the gateway,
 * the read model, the catalog carrier and the cycle closer take it, then the routes (requests
 * that arrive from now on). A region the router already has is a no-op (@u is closed).
 * @return 0, or LR_E* with a sentence in @errmsg (LR_ERRMSG_SIZE bytes). */
int router__region_add(struct router *r, const char *id, const char *const *rpc, unsigned n,
                       struct upstream *u, char *errmsg);
/* Start following the metadata group's region list (a no-op poller without a group); stop it:
 * router__part_closed fires once it has. */
void router__regions_start(struct router *r);
void router__regions_stop(struct router *r);
/* Read the list now (unless a read is under way). */
void router__regions_poll(struct router *r);

/* Without a cluster key (@have_key 0), the first of the @n replica addresses @rpc that is not
 * loopback, which the router must refuse to talk to; else NULL. */
const char *router__unkeyed_remote(int have_key, const char *const *rpc, unsigned n);

/* Index of region @id, or -1. */
int router__region_index(const struct router *r, const char *id);
/* Remember that player @id (@len bytes) lives in @region. Bounded: when the cache is full, an
 * entry chosen at random gives way (a player is looked up again on its next request). */
void router__remember_region(struct router *r, const char *id, size_t len, int region);
/* The region player @id (@len bytes) is remembered in, or -1. */
int router__cached_region(const struct router *r, const char *id, size_t len);

/* Entries of board answers (a region's page, a stream event) in the total order of
 * docs/ordering.md: the board routes' merges and the gateway's kept tops. */
struct router__entry {
    const msgpack_object *o; /* borrowed: the answer it was read from */
    struct rankkey key;
    char id[VALID_ID_MAX + 1];
};
struct router__entries {
    struct router__entry *v; /* owned: free(v) */
    size_t n, cap;
};
/* Read entry @e of a board ordered @desc into @out: 0, or -1 when it is malformed. */
int router__entry_key(const msgpack_object *e, int desc, struct router__entry *out);
void router__entries_sort(struct router__entries *es);

/* ---- rreq.c ------------------------------------------------------------------------------- */

/* Free @q and everything it owns (its route_data through route_free). */
void rreq__free(struct rreq *q);

/* Errors: fill q->errmsg and return @rv, so a step can `return rreq__errf(q, ...)`. */
int rreq__errf(struct rreq *q, int rv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A region's error @code with its @payload sentence (may be NULL): returns @code. */
int rreq__upstream_err(struct rreq *q, int code, const msgpack_object *payload);

/* Replies: each answers @q and frees it; @q is gone when they return. */
void rreq__reply_json(struct rreq *q, int status, json_t *j, const char *headers); /* j: owned */
void rreq__reply_mp(struct rreq *q, int status, const msgpack_object *o, const char *headers);
void rreq__reply_text(struct rreq *q, int status, const char *ctype, const char *body, size_t len);
/* Answer with @status, no body, and the header lines @headers (a preflight's 204). */
void rreq__reply_empty(struct rreq *q, int status, const char *headers);
/* Answer with error @rv and q->errmsg (err_message(@rv) when empty). */
void rreq__reply_error(struct rreq *q, int rv);
/* Run step @step; when it fails, answer with its error. */
void rreq__resume(struct rreq *q, rreq__step step);
/* Steps that answer with q->region's answer: a submit's single command's result, or a query's
 * answer as it is. */
int rreq__reply_result(struct rreq *q);
int rreq__reply_query(struct rreq *q);

/* Calls to regions with q->args. Each returns what the step it runs returns when that step
 * runs inside the call (no call left to wait for), else 0 with calls in flight. */
/* Call @op on @region: 0, or LR_ENOMEM with q->errmsg (the call never answers). */
int rreq__call(struct rreq *q, unsigned region, int op, int need_leader);
/* Submit the commands in q->args to @region's leader, grouped with the loop turn's other
 * submits to it (upstream_submit); the answer arrives as a submit of q->args alone would. 0, or
 * LR_ENOMEM / LR_EINVAL with q->errmsg (the call never answers). */
int rreq__submit(struct rreq *q, unsigned region);
/* Call @op on every region but @skip (its last answer stays), then run q->next. A call that
 * cannot start counts as that region answering LR_ENOMEM, so calls already in flight are
 * never orphaned by an early reply. */
int rreq__call_others(struct rreq *q, int op, int need_leader, unsigned skip);
int rreq__call_all(struct rreq *q, int op, int need_leader);
/* Run @sq on q->region (linearizable) and answer with its answer. */
int rreq__query_region(struct rreq *q, struct shard_query *sq);
/* Find where player @id lives, then run @then with q->player and q->region set (-1: no such
 * player): the cache; else the metadata group's directory, when there is one (one call, any
 * replica: a claim never changes); else, or when the directory has no answer, every region's
 * leader. LR_EUNAVAILABLE when a region could not tell. */
int rreq__locate(struct rreq *q, const char *id, rreq__step then);

/* Answers. */
/* The answer of @region into @up/@o (*@o NULL: none): 0, or LR_EINTERNAL. Destroy @up. */
int rreq__answer(struct rreq *q, unsigned region, msgpack_unpacked *up, const msgpack_object **o);
/* The answer of @region when its call succeeded, as rreq__answer; else its error (the region's
 * code, or LR_EINTERNAL without an answer) with its sentence, and @up already destroyed. */
int rreq__answer_ok(struct rreq *q, unsigned region, msgpack_unpacked *up,
                    const msgpack_object **o);
/* Every region's answer, as rreq__answer_ok: on an error none is left to destroy. Destroy them
 * with rreq__answers_free, which takes the count because @q may be gone by then. */
int rreq__answers(struct rreq *q, msgpack_unpacked *up, const msgpack_object **o);
void rreq__answers_free(unsigned nregions, msgpack_unpacked *up);
/* One command's result of a submit answer, [status, replayed, body], checked (a status of
 * 200..599; a refusal, 400 and up, in API.md's error form): 0 or LR_EINTERNAL. */
int rreq__result(const msgpack_object *r, int *status, int *replayed, const msgpack_object **body);

/* Args of the next call. */
/* Stamp @c with @q's origin (shard/cmd.h, struct cmd_origin): the class of the key that passed
 * the pipeline's check and the client's address, which the region's audit trail records.
 * c->origin.source borrows q->h->peer. */
void rreq__origin(const struct rreq *q, struct cmd *c);
/* One command, stamped with rreq__origin, as a submit's args. */
void rreq__args_cmd(struct rreq *q, const struct cmd *c);
void rreq__args_query(struct rreq *q, struct shard_query *sq, int stale);
/* The same for the metadata group (ROUTER_META): one meta command, or a meta query. */
void rreq__args_mcmd(struct rreq *q, const struct mcmd *c);
void rreq__args_mquery(struct rreq *q, const struct meta_query *mq, int stale);
/* The result of a submit of one command to @slot: its status and body, read from @up (destroy
 * it). @return 0; else the call's error (the region's code with its sentence, or
 * LR_EINTERNAL for a malformed answer) and @up already destroyed. */
int rreq__submit_result(struct rreq *q, unsigned slot, msgpack_unpacked *up, int *status,
                        const msgpack_object **body);

/* Input. */
/* Query parameter @name into @out: 0 if present, 1 if absent, -1 if longer than @cap - 1. */
int rreq__query(const struct rreq *q, const char *name, char *out, size_t cap);
/* Integer query parameter @name in [@min, @max] into *@out (@def when absent): 0, or LR_EINVAL
 * when malformed or out of range (the caller words the sentence). */
int rreq__query_int(const struct rreq *q, const char *name, long min, long max, long def,
                    long *out);
/* Body string @key into *@out (NULL when absent and not @required): 0, or LR_EINVAL. */
int rreq__body_str(struct rreq *q, const char *key, int required, const char **out);
/* A zeroed route_data of @size freed by @route_free: NULL, with LR_ENOMEM in q->errmsg, when
 * out of memory. */
void *rreq__data(struct rreq *q, size_t size, void (*route_free)(void *));

/* ---- the routes of ROUTER_ROUTES (router.c) ----------------------------------------------- */

/* route_ops.c */
int route_ops_healthz(struct rreq *q);
int route_ops_openapi(struct rreq *q);
int route_ops_readyz(struct rreq *q);
int route_ops_cluster(struct rreq *q);
int route_ops_metrics(struct rreq *q);

/* route_console.c: the operator console's page and assets, built into the binary */
int route_console_page(struct rreq *q);
int route_console_asset(struct rreq *q);

/* route_region.c */
int route_region_put(struct rreq *q);

/* route_player.c */
int route_player_put(struct rreq *q);
int route_player_get(struct rreq *q);
int route_player_history(struct rreq *q);
int route_player_dashboard(struct rreq *q);
int route_player_stats(struct rreq *q);
int route_player_rewards(struct rreq *q);
int route_player_audit(struct rreq *q);

/* route_game.c */
int route_game_put(struct rreq *q);
int route_game_get(struct rreq *q);
int route_game_ach_put(struct rreq *q);
int route_game_ach_list(struct rreq *q);

/* route_board.c */
int route_board_put(struct rreq *q);
int route_board_get(struct rreq *q);
int route_board_top(struct rreq *q);
int route_board_cycle(struct rreq *q);

/* route_rank.c */
int route_rank_player(struct rreq *q);
int route_rank_friends(struct rreq *q);

/* route_score.c */
int route_score_submit(struct rreq *q);
int route_score_unlock(struct rreq *q);

/* route_events.c */
int route_events_post(struct rreq *q);

/* route_tournament.c */
int route_tournament_put(struct rreq *q);
int route_tournament_get(struct rreq *q);
int route_tournament_join(struct rreq *q);

/* route_reward.c */
int route_reward_claim(struct rreq *q);

/* ---- shared between route files ----------------------------------------------------------- */

/* route_catalog.c: a catalog put (@c, any version: it is stamped here) recorded in the
 * metadata group, then applied by every region; answered with a region's result. */
int route_catalog__put(struct rreq *q, const struct cmd *c);

/* route_score.c: a score or unlock command from a JSON item (single endpoint or events batch
 * item): 0, or LR_EINVAL with a sentence in @err. *@mtext (owned by the caller, free it) holds
 * the metadata text the command points into; strings point into @item. */
int route_score__score_cmd(json_t *item, struct lr_str board, struct cmd *c, char **mtext,
                           char *err, size_t errcap);
int route_score__unlock_cmd(json_t *item, struct cmd *c, char *err, size_t errcap);
/* route_score.c: a player write: @c (its strings borrowed for the call) packed into route_data
 * as a one-command submit, sent to the region of player @pid once located, and answered with
 * the region's result (404 when no region holds @pid). */
int route_score__write(struct rreq *q, const struct cmd *c, struct lr_str pid);

/* route_board.c: a board's or tournament's "order" and "operator" from the body, as the codes
 * of shard/cmd.h: 0, or LR_EINVAL with a sentence. */
int route_board__order_op(struct rreq *q, int64_t *order, int64_t *op);

/* route_board.c: what a board read (top, rank, friends) asks, parsed once. A route that reads
 * a board puts one at the start of its route_data: the helpers below find it there. */
struct route_board_read {
    char scope[80], window[16], cursor[CURSOR_MAX];
    enum timefmt_window w;
    int64_t period;
    int has_period;
    int desc; /* the board's order, once route_board__with_order has run */
    uint32_t limit;
};
/* Parse scope, window, period (and limit, cursor when @paged) into @b: 0, or LR_EINVAL. */
int route_board__params(struct rreq *q, struct route_board_read *b, int paged);
/* Learn the order of board q->param[0] (cached after the first time), then run @then. */
int route_board__with_order(struct rreq *q, rreq__step then);
/* The read model for this read (rmodel.h): when it holds what @b asks (global scope, alltime,
 * the current period) *@use is 1 and @step runs once the model holds every write acknowledged
 * before now (a 503 answers instead when no leader is confirmed in time); with
 * consistency=stale it runs at once, inside this call, which then returns what it returns.
 * Else *@use is 0 and the caller reads the regions. @w lives in route_data. @return 0, the
 * step's return, or LR_EINVAL (a bad consistency). */
int route_board__model(struct rreq *q, const struct route_board_read *b, struct rmodel_wait *w,
                       rreq__step step, int *use);
/* Send q->args to the scope: region scope answers with that region's answer as it is; global
 * and guild scopes ask every region and run @merge on their answers. */
int route_board__ask_scope(struct rreq *q, rreq__step merge);
/* A JSON object of the scope fields every board answer carries (NULL when out of memory). */
json_t *route_board__head(struct rreq *q, const msgpack_object *any);
/* Append the entries of array @list (region @region's answer) to @es: 0, or LR_EINTERNAL /
 * LR_ENOMEM with q->errmsg. */
int route_board__collect(struct rreq *q, const msgpack_object *list, unsigned region,
                         struct router__entries *es);

#endif
