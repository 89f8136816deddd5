/* router/route_events.c — POST /v1/events: up to 100 score and unlock items in one request.
 *
 * Each item is checked and built exactly as its single endpoint would (route_score__score_cmd,
 * route_score__unlock_cmd, route_score.c); an item that fails fails alone with its own status,
 * so the request itself answers 200 with one result per item. The items of one region go in
 * one submit, so they become one raft entry (one fsync for the lot) instead of one each: that
 * is the point of the batch. That submit is grouped with the other writes the router makes to
 * the region in the same loop turn (upstream_submit). Players the router has not seen are located
 * for the whole batch in one round (the LOCATE query, to every region at once). The batch (struct
 * route_events_batch) is the request's route_data. Each item is a command of its own, so the
 * player's audit trail lists each item as its own entry (action score or unlock), with the
 * item as its request (docs/api.md, "Audit"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/mpjson.h"
#include "../proto/proto.h"
#include "../lib/err.h"
#include "router_int.h"

#define ROUTE_EVENTS_MAX 100

struct route_events_item {
    int status; /* 0 while pending */
    int replayed;
    json_t *body;    /* the item's answer (owned) */
    int region;      /* -1 while unknown */
    size_t off, len; /* its packed command in the batch's cmds */
    uint32_t slot;   /* its position in its region's submit */
    char player[VALID_ID_MAX + 1];
};

struct route_events_batch {
    size_t n;
    msgpack_sbuffer cmds;
    uint32_t lookup[ROUTE_EVENTS_MAX]; /* items whose player is located, one per player */
    uint32_t nlookup;
    struct route_events_item item[];
};

static void route_events__free(void *data)
{
    struct route_events_batch *ev = data;
    for (size_t i = 0; i < ev->n; i++) {
        json_decref(ev->item[i].body);
    }
    msgpack_sbuffer_destroy(&ev->cmds);
    free(ev);
}

/* Settle item @it with an error answer shaped as its endpoint's. */
static void route_events__fail(struct route_events_item *it, int code, const char *msg)
{
    it->status = err_http_status(code);
    it->body = json_pack("{s:{s:s,s:s}}", "error", "code", err_api_code(code), "message", msg);
}

/* The answer: one result per item, in the order of the batch. */
static json_t *route_events__results(const struct route_events_batch *ev)
{
    json_t *results = json_array();
    for (size_t i = 0; i < ev->n; i++) {
        const struct route_events_item *it = &ev->item[i];
        json_t *r =
            json_pack("{s:i,s:O}", "status", it->status, "body", it->body ? it->body : json_null());
        if (it->replayed) {
            json_object_set_new(r, "replayed", json_true());
        }
        json_array_append_new(results, r);
    }
    return json_pack("{s:o}", "results", results);
}

/* Every region's results back onto their items. */
static int route_events__done(struct rreq *q)
{
    struct route_events_batch *ev = q->route_data;
    for (unsigned reg = 0; reg < q->nregions; reg++) {
        msgpack_unpacked up;
        const msgpack_object *o, *res = NULL;
        if (!q->have[reg] && q->code[reg] == 0) {
            continue; /* no items for this region */
        }
        rreq__answer(q, reg, &up, &o);
        if (q->code[reg] == 0 && o) {
            res = proto_map_get(o, "results");
        }
        for (size_t i = 0; i < ev->n; i++) {
            struct route_events_item *it = &ev->item[i];
            if (it->status != 0 || it->region != (int)reg) {
                continue;
            }
            const msgpack_object *r = NULL, *body;
            if (res && res->type == MSGPACK_OBJECT_ARRAY && it->slot < res->via.array.size) {
                r = &res->via.array.ptr[it->slot];
            }
            if (q->code[reg] != 0) {
                route_events__fail(it, q->code[reg],
                                   q->code[reg] == LR_EUNAVAILABLE
                                       ? "region unavailable; retry with the same key"
                                       : err_message(q->code[reg]));
            } else if (rreq__result(r, &it->status, &it->replayed, &body) != 0) {
                route_events__fail(it, LR_EINTERNAL, "malformed result from the region");
            } else {
                it->body = mpjson_from(body);
            }
        }
        msgpack_unpacked_destroy(&up);
    }
    rreq__reply_json(q, 200, route_events__results(ev), NULL);
    return 0;
}

/* Send each region its items as one submit. */
static int route_events__submit(struct rreq *q)
{
    struct route_events_batch *ev = q->route_data;
    q->next = route_events__done;
    q->pending++; /* held while launching */
    for (unsigned reg = 0; reg < q->nregions; reg++) {
        uint32_t count = 0;
        msgpack_packer pk;
        for (size_t i = 0; i < ev->n; i++) {
            count += ev->item[i].status == 0 && ev->item[i].region == (int)reg;
        }
        if (count == 0) {
            continue;
        }
        msgpack_sbuffer_clear(&q->args);
        msgpack_packer_init(&pk, &q->args, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, count);
        count = 0;
        for (size_t i = 0; i < ev->n; i++) {
            struct route_events_item *it = &ev->item[i];
            if (it->status == 0 && it->region == (int)reg) {
                it->slot = count++;
                msgpack_sbuffer_write(&q->args, ev->cmds.data + it->off, it->len);
            }
        }
        if (rreq__submit(q, reg) != 0) {
            q->code[reg] = LR_ENOMEM;
        }
    }
    if (--q->pending == 0) {
        return q->next(q);
    }
    return 0;
}

/* Region of @player found by this batch's LOCATE, or -1. Items waiting on a lookup share the
 * player of one looked-up item; the answer is read from there, not from the cache, which may
 * already have let it go. */
static int route_events__found_region(const struct route_events_batch *ev, const char *player)
{
    for (uint32_t k = 0; k < ev->nlookup; k++) {
        const struct route_events_item *li = &ev->item[ev->lookup[k]];
        if (li->region >= 0 && strcmp(li->player, player) == 0) {
            return li->region;
        }
    }
    return -1;
}

/* The LOCATE answers: each looked-up player's region, into the cache and onto the items. */
static int route_events__located(struct rreq *q)
{
    struct route_events_batch *ev = q->route_data;
    int unavailable = 0;
    for (unsigned reg = 0; reg < q->nregions; reg++) {
        msgpack_unpacked up;
        const msgpack_object *o, *found = NULL;
        rreq__answer(q, reg, &up, &o);
        if (q->code[reg] == 0 && o) {
            found = proto_map_get(o, "found");
        }
        if (found == NULL || found->type != MSGPACK_OBJECT_ARRAY ||
            found->via.array.size != ev->nlookup) {
            unavailable = 1;
            msgpack_unpacked_destroy(&up);
            continue;
        }
        for (uint32_t k = 0; k < ev->nlookup; k++) {
            const msgpack_object *f = &found->via.array.ptr[k];
            struct route_events_item *li = &ev->item[ev->lookup[k]];
            if (f->type == MSGPACK_OBJECT_BOOLEAN && f->via.boolean) {
                li->region = (int)reg;
                router__remember_region(q->r, li->player, strlen(li->player), (int)reg);
            }
        }
        msgpack_unpacked_destroy(&up);
    }
    for (size_t i = 0; i < ev->n; i++) {
        struct route_events_item *it = &ev->item[i];
        if (it->status != 0 || it->region >= 0) {
            continue;
        }
        int reg = route_events__found_region(ev, it->player);
        if (reg >= 0) {
            it->region = reg;
        } else if (unavailable) {
            route_events__fail(it, LR_EUNAVAILABLE,
                               "a region is unavailable; retry with the same key");
        } else {
            char msg[128];
            snprintf(msg, sizeof msg, "player %s not found", it->player);
            route_events__fail(it, LR_ENOTFOUND, msg);
        }
    }
    return route_events__submit(q);
}

/* Check and pack item @i; on a bad item settle it with its error. */
static void route_events__item(struct rreq *q, size_t i, json_t *item)
{
    struct route_events_batch *ev = q->route_data;
    struct route_events_item *it = &ev->item[i];
    struct cmd c;
    char *mtext = NULL, err[256];
    struct lr_str pid;
    int rv;
    it->region = -1;
    const char *type = json_string_value(json_object_get(item, "type"));
    if (!json_is_object(item) || type == NULL ||
        (strcmp(type, "score") != 0 && strcmp(type, "unlock") != 0)) {
        route_events__fail(it, LR_EINVAL, "each item is an object with type score or unlock");
        return;
    }
    if (type[0] == 's') {
        const char *board = json_string_value(json_object_get(item, "board_id"));
        rv = route_score__score_cmd(item, lr_str_of(board ? board : ""), &c, &mtext, err,
                                    sizeof err);
        pid = c.u.score.player_id;
    } else {
        rv = route_score__unlock_cmd(item, &c, err, sizeof err);
        pid = c.u.unlock.player_id;
    }
    if (rv != 0) {
        free(mtext);
        route_events__fail(it, rv, err);
        return;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &ev->cmds, msgpack_sbuffer_write);
    it->off = ev->cmds.size;
    rreq__origin(q, &c); /* each item is its own command, so its own audit entry */
    cmd_encode(&pk, &c);
    it->len = ev->cmds.size - it->off;
    free(mtext);
    snprintf(it->player, sizeof it->player, "%.*s", (int)pid.len, pid.p);
    if ((it->region = router__cached_region(q->r, pid.p, pid.len)) >= 0) {
        return;
    }
    for (uint32_t k = 0; k < ev->nlookup; k++) {
        if (strcmp(ev->item[ev->lookup[k]].player, it->player) == 0) {
            return; /* already being looked up */
        }
    }
    ev->lookup[ev->nlookup++] = (uint32_t)i;
}

int route_events_post(struct rreq *q)
{
    size_t n = json_array_size(q->body), i;
    struct route_events_batch *ev;
    json_t *item;
    if (n == 0 || n > ROUTE_EVENTS_MAX) {
        return rreq__errf(q, LR_EINVAL, "a batch holds 1 to %d items", ROUTE_EVENTS_MAX);
    }
    if ((ev = rreq__data(q, sizeof *ev + n * sizeof ev->item[0], route_events__free)) == NULL) {
        return LR_ENOMEM;
    }
    ev->n = n;
    json_array_foreach(q->body, i, item)
    {
        route_events__item(q, i, item);
    }
    if (ev->nlookup == 0) {
        return route_events__submit(q);
    }
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_LOCATE;
    for (uint32_t k = 0; k < ev->nlookup; k++) {
        sq.ids[k] = lr_str_of(ev->item[ev->lookup[k]].player);
    }
    sq.nids = ev->nlookup;
    rreq__args_query(q, &sq, 0);
    q->next = route_events__located;
    return rreq__call_all(q, PROTO_OP_QUERY, 1);
}
