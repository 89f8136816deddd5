/* router/route_catalog.c — the catalog write shared by games, achievements and boards, and the
 * repair queue of the regions that missed one.
 *
 * The catalog (games, achievements, boards) is the same in every region, so a catalog put goes
 * to every region, stamped with this router's next version: its clock, and always above the
 * last version it stamped, so its own puts order as it made them. The answer is the first
 * region's result; a region that could not be reached makes the request fail with its error
 * (retrying is safe).
 *
 * That region, lacking what the others have, gets the put's submit again every
 * ROUTE_CATALOG_REPAIR_MS until it answers. Re-sending is safe in any order: a region refuses
 * a put older than the version it stores (shard/cmd.h). The queue lives in this router's
 * memory; a router that stops loses what it had not yet delivered (docs/architecture.md says
 * what repairs the rest). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../proto/proto.h"
#include "../lib/err.h"
#include "router_int.h"

#define ROUTE_CATALOG_REPAIR_MS 1000
#define ROUTE_CATALOG_REPAIR_MAX 10000

static void route_catalog__repair_add(struct router *r, unsigned region, const char *args,
                                      size_t len);

/* ---- the put --------------------------------------------------------------------------------- */

/* Queue a repair for each region that could not be reached; answer with the first failed
 * region's outcome, else region 0's result. */
static int route_catalog__done(struct rreq *q)
{
    for (unsigned i = 0; i < q->r->nregions; i++) {
        if (q->code[i] == 0) {
            continue;
        }
        if (q->region < 0) {
            q->region = (int)i;
        }
        if (q->code[i] == LR_EUNAVAILABLE || q->code[i] == LR_ENOMEM) {
            route_catalog__repair_add(q->r, i, q->args.data, q->args.size);
        }
    }
    if (q->region < 0) {
        q->region = 0;
    }
    return rreq__reply_result(q);
}

int route_catalog__put(struct rreq *q, const struct cmd *c)
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
    rreq__args_cmd(q, &stamped);
    q->region = -1;
    q->next = route_catalog__done;
    return rreq__call_all(q, PROTO_OP_SUBMIT, 1);
}

/* ---- the repair queue ------------------------------------------------------------------------ */

struct route_catalog_repair {
    struct route_catalog_repair *next;
    struct router *r;
    unsigned region;
    int inflight, done;
    size_t len;
    char args[];
};

static void route_catalog__repair_free_done(struct router *r)
{
    struct route_catalog_repair **pp = &r->repairs;
    while (*pp) {
        struct route_catalog_repair *e = *pp;
        if (e->done && !e->inflight) {
            *pp = e->next;
            r->nrepairs--;
            free(e);
        } else {
            pp = &e->next;
        }
    }
}

static void route_catalog__repair_answered(void *data, int code, const msgpack_object *payload)
{
    struct route_catalog_repair *e = data;
    (void)payload;
    e->inflight = 0;
    /* Any answer from the region settles it: applied, or refused for a reason every region
     * shares (a newer version, a conflict) that re-sending cannot change. */
    if (code == 0) {
        e->done = 1;
        LOG(e->r->log, LOG_INFO, "catalog write re-sent to region %s", e->r->region[e->region]);
    }
}

static void route_catalog__repair_tick(uv_timer_t *t)
{
    struct router *r = t->data;
    route_catalog__repair_free_done(r);
    for (struct route_catalog_repair *e = r->repairs; e; e = e->next) {
        if (e->inflight || e->done) {
            continue;
        }
        if (upstream_call(r->up[e->region], PROTO_OP_SUBMIT, 1, e->args, e->len, r->timeout_ms,
                          route_catalog__repair_answered, e) == 0) {
            e->inflight = 1;
        }
    }
}

/* Queue submit @args (@len bytes, copied) for @region. The put stays answered as it was: a
 * repair that cannot be queued is logged, and the region lacks the put until the next one. */
static void route_catalog__repair_add(struct router *r, unsigned region, const char *args,
                                      size_t len)
{
    struct route_catalog_repair *e;
    if (r->nrepairs >= ROUTE_CATALOG_REPAIR_MAX) {
        LOG(r->log, LOG_ERROR,
            "%d catalog writes wait for re-sending: dropping the new one for region %s",
            ROUTE_CATALOG_REPAIR_MAX, r->region[region]);
        return;
    }
    if ((e = malloc(sizeof *e + len)) == NULL) {
        LOG(r->log, LOG_ERROR, "out of memory: catalog write for region %s not queued",
            r->region[region]);
        return;
    }
    *e = (struct route_catalog_repair){r->repairs, r, region, 0, 0, len};
    memcpy(e->args, args, len);
    r->repairs = e;
    r->nrepairs++;
}

void route_catalog__repair_start(struct router *r)
{
    uv_timer_init(r->loop, &r->repair_timer);
    r->repair_timer.data = r;
    uv_timer_start(&r->repair_timer, route_catalog__repair_tick, ROUTE_CATALOG_REPAIR_MS,
                   ROUTE_CATALOG_REPAIR_MS);
}

void route_catalog__repair_stop(struct router *r, uv_close_cb closed)
{
    uv_timer_stop(&r->repair_timer);
    uv_close((uv_handle_t *)&r->repair_timer, closed);
}

void route_catalog__repair_free(struct router *r)
{
    while (r->repairs) {
        struct route_catalog_repair *e = r->repairs;
        r->repairs = e->next;
        free(e);
    }
    r->nrepairs = 0;
}
