/* router/route_region.c — regions added while the cluster runs (docs/global-state.md, "Adding
 * a region"): PUT /v1/regions/{id}, the router's follower of the metadata group's region
 * list, and router__region_add, which gives a running router one more region.
 *
 * The list of regions is the metadata group's state (meta's region_put). A router starts
 * from its --region flags and follows the list from there: every ROUTER_REGIONS_POLL_MS it
 * reads it and adds each region it does not have. A put is checked before it enters the list:
 * the addresses must answer as the leader of a region of that name, so a typo or a region
 * whose replicas were never started is refused rather than recorded. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/addr.h"
#include "../lib/err.h"
#include "../proto/proto.h"
#include "router_int.h"

/* ---- adding a region ------------------------------------------------------------------------ */

int router__region_add(struct router *r, const char *id, const char *const *rpc, unsigned n,
                       struct upstream *u, char *errmsg)
{
    int rv;
    if (r->closing) {
        rv = errmsg_set(errmsg, LR_EUNAVAILABLE, "the router is stopping");
        goto err;
    }
    if (router__region_index(r, id) >= 0) {
        if (u) {
            upstream_close(u, NULL, NULL); /* the region's own link is already here */
        }
        return 0;
    }
    if (r->nregions == ROUTER_MAX_REGIONS) {
        rv = errmsg_set(errmsg, LR_ECONFLICT, "a router serves %d regions at most",
                        ROUTER_MAX_REGIONS);
        goto err;
    }
    const char *remote = router__unkeyed_remote(r->have_cluster_key, rpc, n);
    if (remote != NULL) {
        rv = errmsg_set(errmsg, LR_EINVAL,
                        "replica %s is not a loopback address and this router has no cluster "
                        "key (--cluster-key-file)",
                        remote);
        goto err;
    }
    if (u == NULL) {
        if ((rv = upstream_new(r->loop, id, rpc, n, &u)) != 0) {
            errmsg_set(errmsg, rv, "region %s: %s", id, err_message(rv));
            return rv;
        }
        if (r->have_cluster_key) {
            upstream_set_key(u, &r->cluster_key, r->log);
        }
    }
    unsigned i = r->nregions;
    /* The gateway first: the only step that can fail for memory, and it leaves nothing
     * behind. The others only fail when closing or full, both ruled out above. */
    if ((rv = gateway_add_region(r->gw, id, u)) != 0) {
        errmsg_set(errmsg, rv, "region %s: event stream: %s", id, err_message(rv));
        goto err;
    }
    rmodel_add_region(r->rm, u);
    if (r->catsync) {
        catsync_add_region(r->catsync, u);
    }
    if (r->closer) {
        closer_add_region(r->closer, u, id);
    }
    snprintf(r->region[i], sizeof r->region[i], "%s", id);
    r->up[i] = u;
    r->nregions = i + 1;
    LOG(r->log, LOG_INFO, "region %s added (%u replicas, first %s); this router now serves %u", id,
        n, n ? rpc[0] : "-", r->nregions);
    return 0;

err:
    if (u) {
        upstream_close(u, NULL, NULL);
    }
    return rv;
}

/* A region's replica addresses, each NUL-terminated in @buf. */
struct route_region__addrs {
    char buf[META_REGION_RPC_BYTES + 1];
    const char *rpc[UPSTREAM_MAX_REPLICAS];
    unsigned n;
};

/* Append address @s (@len bytes) to @a, @used bytes of a->buf taken so far: 0, or -1 when it
 * is not a host:port or there is no room. */
static int route_region__addrs_add(struct route_region__addrs *a, const char *s, size_t len,
                                   size_t *used)
{
    if (a->n == UPSTREAM_MAX_REPLICAS || len == 0 || *used + len + 1 > sizeof a->buf) {
        return -1;
    }
    char *p = a->buf + *used;
    memcpy(p, s, len);
    p[len] = '\0';
    *used += len + 1;
    if (!addr_valid(p)) {
        return -1;
    }
    a->rpc[a->n++] = p;
    return 0;
}

/* ---- following the list --------------------------------------------------------------------- */

/* One region of meta's list: add it unless the router has it. */
static void router__regions_one(struct router *r, const msgpack_object *e)
{
    const msgpack_object *id = proto_map_get(e, "region"), *rpc = proto_map_get(e, "rpc");
    struct route_region__addrs a = {.n = 0};
    char name[VALID_ID_MAX + 1], errmsg[LR_ERRMSG_SIZE];
    size_t used = 0;
    if (id == NULL || id->type != MSGPACK_OBJECT_STR || id->via.str.size > VALID_ID_MAX ||
        rpc == NULL || rpc->type != MSGPACK_OBJECT_ARRAY) {
        return; /* meta wrote it: nothing to do with a record that is not one */
    }
    snprintf(name, sizeof name, "%.*s", (int)id->via.str.size, id->via.str.ptr);
    if (router__region_index(r, name) >= 0 || !valid_id(name, strlen(name), VALID_ID_MAX)) {
        return;
    }
    for (uint32_t i = 0; i < rpc->via.array.size; i++) {
        const msgpack_object *s = &rpc->via.array.ptr[i];
        if (s->type != MSGPACK_OBJECT_STR ||
            route_region__addrs_add(&a, s->via.str.ptr, s->via.str.size, &used) != 0) {
            return;
        }
    }
    if (a.n == 0) {
        return;
    }
    uint64_t held;
    if (router__region_add(r, name, a.rpc, a.n, NULL, errmsg) != 0 &&
        log_limit_allow(&r->regions_log, uv_now(r->loop), &held)) {
        LOG(r->log, LOG_WARN,
            "region %s is in the cluster's list but cannot be added: %s (%" PRIu64
            " such lines held back)",
            name, errmsg, held);
    }
}

static void router__regions_maybe_closed(struct router *r);

static void router__regions_got(void *data, int code, const msgpack_object *o)
{
    struct router *r = data;
    const msgpack_object *list = code == 0 ? proto_map_get(o, "regions") : NULL;
    r->regions_busy = 0;
    if (r->closing) {
        router__regions_maybe_closed(r);
        return;
    }
    for (uint32_t i = 0; list && list->type == MSGPACK_OBJECT_ARRAY && i < list->via.array.size;
         i++) {
        router__regions_one(r, &list->via.array.ptr[i]);
    }
}

/* Read meta's list now, unless a read is already under way. */
void router__regions_poll(struct router *r)
{
    struct meta_query mq;
    msgpack_packer pk;
    if (r->regions_busy || r->closing || r->up[ROUTER_META] == NULL) {
        return;
    }
    memset(&mq, 0, sizeof mq);
    mq.type = META_Q_REGIONS;
    msgpack_sbuffer_clear(&r->regions_args);
    msgpack_packer_init(&pk, &r->regions_args, msgpack_sbuffer_write);
    meta_query_encode(&pk, &mq, 0);
    if (upstream_call(r->up[ROUTER_META], PROTO_OP_QUERY, 1, r->regions_args.data,
                      r->regions_args.size, r->timeout_ms, router__regions_got, r) == 0) {
        r->regions_busy = 1;
    }
}

static void router__regions_tick(uv_timer_t *t)
{
    router__regions_poll(t->data);
}

void router__regions_start(struct router *r)
{
    msgpack_sbuffer_init(&r->regions_args);
    uv_timer_init(r->loop, &r->regions_timer);
    r->regions_timer.data = r;
    r->regions_started = 1;
    if (r->up[ROUTER_META]) {
        uv_timer_start(&r->regions_timer, router__regions_tick, 0, ROUTER_REGIONS_POLL_MS);
    }
}

/* The follower has stopped once its timer has closed and its read has answered. */
static void router__regions_maybe_closed(struct router *r)
{
    if (!r->regions_timer_closed || r->regions_busy) {
        return;
    }
    msgpack_sbuffer_destroy(&r->regions_args);
    r->regions_started = 0;
    router__part_closed(r);
}

static void router__regions_timer_closed(uv_handle_t *h)
{
    struct router *r = h->data;
    r->regions_timer_closed = 1;
    router__regions_maybe_closed(r);
}

void router__regions_stop(struct router *r)
{
    uv_timer_stop(&r->regions_timer);
    uv_close((uv_handle_t *)&r->regions_timer, router__regions_timer_closed);
}

/* ---- PUT /v1/regions/{id} ------------------------------------------------------------------- */

struct route_region_put {
    char id[VALID_ID_MAX + 1];
    struct route_region__addrs a;
    struct upstream *probe; /* the link to the new region, until the router adopts it */
    char joined[META_REGION_RPC_BYTES + 1];
};

static void route_region__free(void *data)
{
    struct route_region_put *p = data;
    if (p->probe) {
        upstream_close(p->probe, NULL, NULL);
    }
    free(p);
}

/* meta's answer: the record, whoever put it first; then the router serves the region. */
static int route_region__recorded(struct rreq *q)
{
    struct route_region_put *p = q->route_data;
    msgpack_unpacked up;
    const msgpack_object *body;
    int status, rv = rreq__submit_result(q, ROUTER_META, &up, &status, &body);
    if (rv != 0) {
        return rv == LR_EUNAVAILABLE ? rreq__errf(q, rv,
                                                  "the metadata group is unavailable, so the "
                                                  "region cannot be added now; retry")
                                     : rv;
    }
    if (status / 100 == 2) {
        struct upstream *u = p->probe;
        p->probe = NULL; /* adopted by the router, or closed by router__region_add */
        rv = router__region_add(q->r, p->id, p->a.rpc, p->a.n, u, q->errmsg);
        if (rv != 0) {
            msgpack_unpacked_destroy(&up);
            return rv;
        }
    }
    /* 2xx: the record; 4xx: meta's refusal (a full list, a bad address), in API.md's form. */
    rreq__reply_mp(q, status, body, NULL);
    msgpack_unpacked_destroy(&up);
    return 0;
}

/* The region's leader answered its status (or nothing did): it must name the same region. */
static void route_region__probed(void *data, int code, const msgpack_object *o)
{
    struct rreq *q = data;
    struct route_region_put *p = q->route_data;
    const char *id = p->id;
    const msgpack_object *reg = code == 0 ? proto_map_get(o, "region") : NULL;
    int rv;
    q->pending--;
    if (code != 0 || reg == NULL || reg->type != MSGPACK_OBJECT_STR) {
        q->retry_after_s = 1;
        rreq__reply_error(q, rreq__errf(q, LR_EUNAVAILABLE,
                                        "no leader of region %s answered at %s within %u ms: "
                                        "start its replicas first (laurel node --region %s ...), "
                                        "then retry",
                                        id, p->joined, q->r->timeout_ms, id));
        return;
    }
    if (reg->via.str.size != strlen(id) || memcmp(reg->via.str.ptr, id, reg->via.str.size) != 0) {
        rreq__reply_error(
            q, rreq__errf(q, LR_ECONFLICT, "the replicas at %s serve region %.*s, not %s",
                          p->joined, (int)reg->via.str.size, reg->via.str.ptr, id));
        return;
    }
    struct mcmd c;
    memset(&c, 0, sizeof c);
    c.type = MCMD_REGION_PUT;
    c.u.region_put.region = lr_str_of(id);
    c.u.region_put.rpc = lr_str_of(p->joined);
    rreq__args_mcmd(q, &c);
    q->next = route_region__recorded;
    if ((rv = rreq__call(q, ROUTER_META, PROTO_OP_SUBMIT, 1)) != 0) {
        rreq__reply_error(q, rv);
    }
}

int route_region_put(struct rreq *q)
{
    char id[VALID_ID_MAX + 1];
    json_t *rpc = json_object_get(q->body, "rpc");
    struct route_region_put *p;
    size_t used = 0, at = 0;
    const char *k;
    json_t *v;
    int rv;
    snprintf(id, sizeof id, "%.*s", (int)q->param[0].len, q->param[0].p);
    if (q->r->up[ROUTER_META] == NULL) {
        return rreq__errf(q, LR_ECONFLICT,
                          "this cluster has no metadata group (laurel router --meta), so its "
                          "regions are its routers' --region flags: add one there and restart "
                          "the routers");
    }
    if (strcmp(id, "meta") == 0) {
        return rreq__errf(q, LR_EINVAL, "meta is the metadata group's name, not a region's");
    }
    json_object_foreach(q->body, k, v)
    {
        if (strcmp(k, "rpc") != 0) {
            return rreq__errf(q, LR_EINVAL, "unknown field %s: a region put takes only rpc", k);
        }
    }
    if (!json_is_array(rpc) || json_array_size(rpc) == 0 ||
        json_array_size(rpc) > UPSTREAM_MAX_REPLICAS) {
        return rreq__errf(q, LR_EINVAL,
                          "rpc must be an array of 1 to %d replica RPC addresses (host:port)",
                          UPSTREAM_MAX_REPLICAS);
    }
    if ((p = rreq__data(q, sizeof *p, route_region__free)) == NULL) {
        return LR_ENOMEM;
    }
    memcpy(p->id, id, sizeof id);
    for (size_t i = 0; i < json_array_size(rpc); i++) {
        const char *s = json_string_value(json_array_get(rpc, i));
        if (s == NULL || route_region__addrs_add(&p->a, s, strlen(s), &used) != 0) {
            return rreq__errf(q, LR_EINVAL, "rpc[%zu] is not a host:port address", i);
        }
        int n = snprintf(p->joined + at, sizeof p->joined - at, "%s%s", i ? "," : "", s);
        if (n < 0 || (size_t)n >= sizeof p->joined - at) {
            return rreq__errf(q, LR_EINVAL, "rpc: the addresses are too long");
        }
        at += (size_t)n;
    }
    const char *remote = router__unkeyed_remote(q->r->have_cluster_key, p->a.rpc, p->a.n);
    if (remote != NULL) {
        return rreq__errf(q, LR_EINVAL,
                          "replica %s is not a loopback address and this router has no cluster "
                          "key (--cluster-key-file)",
                          remote);
    }
    if ((rv = upstream_new(q->r->loop, id, p->a.rpc, p->a.n, &p->probe)) != 0) {
        return rreq__errf(q, rv, "region %s: %s", id, err_message(rv));
    }
    if (q->r->have_cluster_key) {
        upstream_set_key(p->probe, &q->r->cluster_key, q->r->log);
    }
    q->pending++;
    if ((rv = upstream_call(p->probe, PROTO_OP_STATUS, 1, NULL, 0, q->r->timeout_ms,
                            route_region__probed, q)) != 0) {
        q->pending--;
        return rreq__errf(q, rv, "out of memory");
    }
    return 0;
}
