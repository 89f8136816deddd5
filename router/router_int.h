/* router/router_int.h — internals of the router module: the request in flight through the
 * pipeline (router.c), the helpers every route uses, and the routes (router_routes.c for
 * health, players, catalog and scores; router_boards.c for board pages). */
#ifndef LAUREL_ROUTER_INT_H
#define LAUREL_ROUTER_INT_H

#include <jansson.h>
#include <msgpack.h>

#include "../shard/cursor.h"
#include "../shard/shard.h"
#include "../lib/log.h"
#include "../lib/strmap.h"
#include "gateway.h"
#include "http.h"
#include "router.h"
#include "ws.h"

#define ROUTER__PARAMS 3

enum router__auth { AUTH_NONE, AUTH_API, AUTH_ADMIN };
enum router__body { BODY_NONE, BODY_OBJECT, BODY_ARRAY };

/* Per-route request counts by status class and latency histogram, for /metrics. */
#define ROUTER_LAT_BUCKETS 12 /* upper bounds in router_ops.c */
#define ROUTER_STAT_ROUTES 48 /* routes of the table + 1 for requests that matched none */
struct router__stat {
    uint64_t by_class[6]; /* 1xx..5xx at [1..5] */
    uint64_t lat[ROUTER_LAT_BUCKETS + 1]; /* the last one: above every bound */
    uint64_t lat_sum_us;
};

struct router {
    uv_loop_t *loop;
    struct logger *log; /* borrowed from router_config */
    struct http *http;
    struct gateway *gw; /* the committed-event streams and the WebSocket topics */
    struct ws *ws;
    struct upstream *up[ROUTER_MAX_REGIONS];
    char region[ROUTER_MAX_REGIONS][65];
    unsigned nregions;
    char admin_key[256], api_key[256];
    unsigned timeout_ms;
    struct strmap player_region; /* player id -> (uintptr_t)region index + 1 (a cache) */
    size_t player_cache_max;     /* entries player_region may hold */
    uint64_t player_cache_evictions;
    struct strmap board_order;   /* board id -> (uintptr_t)order + 1 */
    void (*done)(void *data);
    void *done_data;
    unsigned closing;
    struct router__stat stat[ROUTER_STAT_ROUTES];
    int64_t catalog_version; /* the last version stamped on a catalog put */
    struct router_repair *repairs; /* catalog puts to re-send (router_repair.c) */
    size_t nrepairs;
    uv_timer_t repair_timer;
};

/* router_repair.c: catalog puts re-sent to regions that missed them. */
void router__repair_add(struct router *r, unsigned region, const char *args, size_t len);
size_t router__repair_pending(const struct router *r);
void router__repair_start(struct router *r);
void router__repair_stop(struct router *r, uv_close_cb closed);
void router__repair_free(struct router *r);

/* One HTTP request in flight through the pipeline. */
struct rreq {
    struct router *r;
    struct http_req *h;
    /* A get over the WebSocket (router.c, router__ws_get): the answer goes to @reply instead
     * of http_reply, and frees @h (owned by the get). */
    ws_reply_fn reply;
    void *reply_data;
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
    int admin;  /* the request carries the admin key */
    int64_t now_ms; /* the clock of the request's first query, reused by later rounds */
    uint64_t t0;    /* uv_hrtime at arrival */
    /* Read parameters, parsed once: board reads (router_boards.c, router_rank.c) and player
     * reads (history, stats). */
    struct {
        char scope[80], window[16], cursor[CURSOR_MAX];
        enum timefmt_window w;
        int64_t period;
        int has_period, desc;
        uint32_t limit, around, days;
        enum shard_qtype qtype; /* a player read's query */
        char game[VALID_ID_MAX + 1];
        /* the key of the player whose rank is asked (router_rank.c) */
        int64_t score, subscore, updated_ms;
    } top;
    /* Friends view: the ids (owned, NUL-separated) and the entries found so far. */
    char *ids;
    uint32_t nids;
    json_t *acc;
    /* One command packed by a write route before the player's region is known. */
    msgpack_sbuffer cmd;
    /* POST /v1/events in flight (router_events.c; owned). */
    struct rev *ev;
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
    enum router__body body;
};

/* router.c: the route table, for /metrics */
size_t router__nroutes(void);
const struct router__route *router__route_at(size_t i);
/* Count @q's answer with @status in the metrics (every reply path calls it once). */
void rreq__observe(struct rreq *q, int status);
extern const uint64_t router__lat_bounds_us[ROUTER_LAT_BUCKETS];

/* router.c: replies (each frees @q) */
void rreq__free(struct rreq *q);
void rreq__reply_json(struct rreq *q, int status, json_t *j, const char *headers);
void rreq__error(struct rreq *q, int rv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void rreq__reply_mp(struct rreq *q, int status, const msgpack_object *o, const char *headers);
void rreq__upstream_error(struct rreq *q, int code, const msgpack_object *payload);
/* Answer with the single command's result of q->region's submit. */
void rreq__reply_result(struct rreq *q);

/* router.c: calls to regions; q->next runs when every pending call has answered */
int rreq__call(struct rreq *q, unsigned region, int op, int need_leader);
void rreq__call_all(struct rreq *q, int op, int need_leader);
void rreq__call_others(struct rreq *q, int op, int need_leader, unsigned skip);
int rreq__answer(struct rreq *q, unsigned region, msgpack_unpacked *up, const msgpack_object **o);
void rreq__args_cmd(struct rreq *q, const struct cmd *c);
void rreq__args_query(struct rreq *q, struct shard_query *sq, int stale);
/* Remember that player @id (@len bytes) lives in @region. Bounded: when the cache is full, an
 * entry chosen at random gives way (a player is looked up again on its next request). */
void router__remember_region(struct router *r, const char *id, size_t len, int region);

/* Find where player @id lives, then run @then with q->region (-1: none). */
void rreq__locate(struct rreq *q, const char *id, void (*then)(struct rreq *));

/* router.c: input */
int router__query(const struct rreq *q, const char *name, char *out, size_t cap);
int router__region_index(const struct router *r, const char *id);
/* Integer query parameter @name in [@min, @max] into *@out (@def when absent): 0, or -1 when
 * malformed or out of range. */
int router__query_int(const struct rreq *q, const char *name, long min, long max, long def,
                      long *out);
/* One command's result of a submit answer, [status, replayed, body], checked: 0 or -1. */
int router__result(const msgpack_object *r, int *status, int *replayed,
                   const msgpack_object **body);
const char *rreq__body_str(struct rreq *q, const char *key, int required);

/* router_routes.c */
void rreq__reply_query(struct rreq *q);
void rreq__query_region(struct rreq *q, struct shard_query *sq);
void rreq__catalog(struct rreq *q, const struct cmd *c);
/* Build a score or unlock command from a JSON item (single endpoint or events batch item):
 * 0, or LR_EINVAL with a sentence in @err. *@mtext (owned by the caller, free it) holds the
 * metadata text the command points into; strings point into @item. */
int router__score_cmd(json_t *item, struct lr_str board, struct cmd *c, char **mtext,
                      char *err, size_t errcap);
int router__unlock_cmd(json_t *item, struct cmd *c, char *err, size_t errcap);

/* router_boards.c: board read parameters and the board's order */
int rreq__board_params(struct rreq *q, int paged);
void rreq__with_board(struct rreq *q, void (*then)(struct rreq *));
/* Send q->args to the scope: region scope is that region's answer, replied as it is; global
 * and guild scopes ask every region and run @merge on their answers. */
void rreq__ask_scope(struct rreq *q, void (*merge)(struct rreq *));
struct router__entry {
    const msgpack_object *o;
    struct rankkey key;
    char id[VALID_ID_MAX + 1];
};
struct router__entries {
    struct router__entry *v;
    size_t n, cap;
};
/* Append the entries of array @list (region @region's answer) to @es: 0, or -1 with a reply
 * sent. */
int rreq__collect(struct rreq *q, const msgpack_object *list, unsigned region,
                  struct router__entries *es);
void router__entries_sort(struct router__entries *es);
int router__entry_key(const msgpack_object *e, int desc, struct router__entry *out);
/* Reply with an error if any region's answer failed; 0 when all are usable, with @up/@o
 * (free them with rreq__answers_free, which takes the count because @q may be gone). */
int rreq__answers(struct rreq *q, msgpack_unpacked *up, const msgpack_object **o);
void rreq__answers_free(unsigned nregions, msgpack_unpacked *up);
/* A JSON object of the scope fields every board answer carries. */
json_t *rreq__board_head(struct rreq *q, const msgpack_object *any);
/* The routes of ROUTER_ROUTES (router.c). */
void route_healthz(struct rreq *q);
void route_readyz(struct rreq *q);
void route_player_put(struct rreq *q);
void route_player_get(struct rreq *q);
void route_game_put(struct rreq *q);
void route_game_get(struct rreq *q);
void route_board_put(struct rreq *q);
void route_board_get(struct rreq *q);
void route_score(struct rreq *q);
void route_unlock(struct rreq *q);
void route_ach_put(struct rreq *q);
void route_ach_list(struct rreq *q);
void route_top(struct rreq *q);
void route_rank(struct rreq *q);
void route_friends(struct rreq *q);
void route_events(struct rreq *q);
void rev_free(struct rev *ev); /* router_events.c; NULL is a no-op */
void route_history(struct rreq *q);
void route_dashboard(struct rreq *q);
void route_stats(struct rreq *q);
void route_rewards(struct rreq *q);
void route_cluster(struct rreq *q);
void route_metrics(struct rreq *q);

#endif
