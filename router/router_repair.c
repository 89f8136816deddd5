/* router/router_repair.c — catalog writes re-sent to regions that missed them.
 *
 * A catalog put goes to every region. When a region cannot be reached (no leader, timeout),
 * the others have the put and that one does not; the router keeps the put's submit and sends
 * it again every ROUTER_REPAIR_MS until the region answers. Re-sending is safe in any order:
 * catalog puts carry the router's version stamp and a region refuses one older than what it
 * stores (shard/cmd.h). The queue lives in this router's memory; a router that stops loses
 * what it had not yet delivered (docs/architecture.md says what repairs the rest). */
#include <stdlib.h>
#include <string.h>

#include "../proto/proto.h"
#include "../lib/err.h"
#include "router_int.h"

#define ROUTER_REPAIR_MS 1000
#define ROUTER_REPAIR_MAX 10000

struct router_repair {
    struct router_repair *next;
    struct router *r;
    unsigned region;
    int inflight, done;
    size_t len;
    char args[];
};

static void router__repair_free_done(struct router *r)
{
    struct router_repair **pp = &r->repairs;
    while (*pp) {
        struct router_repair *e = *pp;
        if (e->done && !e->inflight) {
            *pp = e->next;
            r->nrepairs--;
            free(e);
        } else {
            pp = &e->next;
        }
    }
}

static void router__repair_answered(void *data, int code, const msgpack_object *payload)
{
    struct router_repair *e = data;
    (void)payload;
    e->inflight = 0;
    /* Any answer from the region settles it: applied, or refused for a reason every region
     * shares (a newer version, a conflict) that re-sending cannot change. */
    if (code == 0) {
        e->done = 1;
        LOG(e->r->log, LOG_INFO, "catalog write re-sent to region %s", e->r->region[e->region]);
    }
}

static void router__repair_tick(uv_timer_t *t)
{
    struct router *r = t->data;
    router__repair_free_done(r);
    for (struct router_repair *e = r->repairs; e; e = e->next) {
        if (e->inflight || e->done) {
            continue;
        }
        if (upstream_call(r->up[e->region], PROTO_OP_SUBMIT, 1, e->args, e->len, r->timeout_ms,
                          router__repair_answered, e) == 0) {
            e->inflight = 1;
        }
    }
}

void router__repair_add(struct router *r, unsigned region, const char *args, size_t len)
{
    struct router_repair *e;
    if (r->nrepairs >= ROUTER_REPAIR_MAX) {
        LOG(r->log, LOG_ERROR,
            "%d catalog writes wait for re-sending: dropping the new one for region %s",
            ROUTER_REPAIR_MAX, r->region[region]);
        return;
    }
    if ((e = malloc(sizeof *e + len)) == NULL) {
        LOG(r->log, LOG_ERROR, "out of memory: catalog write for region %s not queued",
            r->region[region]);
        return;
    }
    *e = (struct router_repair){r->repairs, r, region, 0, 0, len};
    memcpy(e->args, args, len);
    r->repairs = e;
    r->nrepairs++;
}

size_t router__repair_pending(const struct router *r)
{
    size_t n = 0;
    for (const struct router_repair *e = r->repairs; e; e = e->next) {
        n += !e->done;
    }
    return n;
}

void router__repair_start(struct router *r)
{
    uv_timer_init(r->loop, &r->repair_timer);
    r->repair_timer.data = r;
    uv_timer_start(&r->repair_timer, router__repair_tick, ROUTER_REPAIR_MS, ROUTER_REPAIR_MS);
}

void router__repair_stop(struct router *r, uv_close_cb closed)
{
    uv_timer_stop(&r->repair_timer);
    uv_close((uv_handle_t *)&r->repair_timer, closed);
}

void router__repair_free(struct router *r)
{
    while (r->repairs) {
        struct router_repair *e = r->repairs;
        r->repairs = e->next;
        free(e);
    }
    r->nrepairs = 0;
}
