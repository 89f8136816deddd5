/* router/router_int.h — internals of the router module: the request in flight through the
 * pipeline (router.c), the helpers every route uses, and the routes (router_routes.c for
 * health, players, catalog and scores; router_boards.c for board pages). */
#ifndef LAUREL_ROUTER_INT_H
#define LAUREL_ROUTER_INT_H

#include <jansson.h>
#include <msgpack.h>

#include "../shard/cursor.h"
#include "../shard/shard.h"
#include "../shard/strmap.h"
#include "http.h"
#include "router.h"

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
    int admin;  /* the request carries the admin key */
    /* A board page request, parsed once (router_boards.c). */
    struct {
        char scope[80], window[16], cursor[CURSOR_MAX];
        enum timefmt_window w;
        int64_t period;
        int has_period, desc;
        uint32_t limit;
    } top;
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
int rreq__answer(struct rreq *q, unsigned region, msgpack_unpacked *up, const msgpack_object **o);
void rreq__args_cmd(struct rreq *q, const struct cmd *c);
void rreq__args_query(struct rreq *q, const struct shard_query *sq, int stale);
/* Find where player @id lives, then run @then with q->region (-1: none). */
void rreq__locate(struct rreq *q, const char *id, void (*then)(struct rreq *));

/* router.c: input */
int router__query(const struct rreq *q, const char *name, char *out, size_t cap);
int router__region_index(const struct router *r, const char *id);
const char *rreq__body_str(struct rreq *q, const char *key, int required);

/* router_routes.c */
void rreq__reply_query(struct rreq *q);
void rreq__query_region(struct rreq *q, const struct shard_query *sq);
void rreq__catalog(struct rreq *q, const struct cmd *c);

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

#endif
