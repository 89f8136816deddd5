/* node/node_sub.c — the committed-event stream: subscriptions catch up from the event log in
 * LMDB a bounded slice per loop turn, then go live on the FSM's reports; a subscriber that
 * falls behind is dropped, never waited for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"

#define NODE__PUMP_ENTRIES 64 /* event-log entries sent per subscriber per loop turn */

void node__send_events(struct node_sub *s, uint64_t index, uint32_t nev, const char *buf,
                       size_t len)
{
    struct node *n = s->c->n;
    msgpack_packer pk = node__packer(n);
    proto_msg_begin(&pk, s->req_id, 0);
    msgpack_pack_map(&pk, 2);
    proto_pack_key(&pk, "index");
    msgpack_pack_uint64(&pk, index);
    proto_pack_key(&pk, "events");
    msgpack_pack_array(&pk, nev);
    msgpack_sbuffer_write(&n->scratch, buf, len);
    conn__send(s->c, n->scratch.data, n->scratch.size);
}

void node__drop_slow(struct node_sub *s)
{
    struct node_conn *c = s->c;
    node__reply_error(c, s->req_id, LR_EUNAVAILABLE,
                      "subscriber too slow: dropped; resubscribe from the last index seen");
    conn__close(c, "slow subscriber");
}

/* A live subscriber has been sent the events of every entry applied so far: node__applied
 * sends them from inside the apply, before libraft counts the entry applied. So raft's own
 * applied index, barriers and configuration entries included, is never ahead of an event
 * still owed to it, and telling it promptly lets a client (the router's ReadIndex) learn that
 * nothing is pending up to a leader's commit point without waiting for the next second. A
 * subscriber still catching up from the event log gets none: events it has not been sent lie
 * below that index. */
void node__sub_heartbeats(struct node *n, int every)
{
    uint64_t applied = raft_last_applied(&n->raft);
    for (struct node_sub *s = n->subs; s; s = s->next_sub) {
        if (!s->live || s->c->closing || (!every && s->told >= applied)) {
            continue;
        }
        msgpack_packer pk = node__packer(n);
        proto_msg_begin(&pk, s->req_id, 0);
        msgpack_pack_map(&pk, 1);
        proto_pack_key(&pk, "applied");
        msgpack_pack_uint64(&pk, applied > s->told ? applied : s->told);
        conn__send(s->c, n->scratch.data, n->scratch.size);
        s->told = applied > s->told ? applied : s->told;
    }
}

void node__sub_restored(void *data)
{
    struct node *n = data;
    /* Logged because an install replaces the whole state: an operator reading why a replica
     * jumped ahead (or a chaos run checking that a scenario really installed one) looks here. */
    LOG(n->log, LOG_INFO, "snapshot installed: the state is now at index %llu",
        (unsigned long long)fsm_applied_index(&n->fsm));
    for (struct node_sub *s = n->subs; s; s = s->next_sub) {
        s->live = 0; /* s->next is still the first index it has not been sent */
    }
}

/* ---- subscriptions ------------------------------------------------------------------------------
 */

void node__unsubscribe(struct node_conn *c)
{
    struct node_sub *s = c->sub;
    if (s == NULL) {
        return;
    }
    struct node *n = c->n;
    if (s->prev) {
        s->prev->next_sub = s->next_sub;
    } else {
        n->subs = s->next_sub;
    }
    if (s->next_sub) {
        s->next_sub->prev = s->prev;
    }
    c->sub = NULL;
    free(s);
    conn__unref(c);
}

void node__op_subscribe(struct node_conn *c, struct node_req *r)
{
    struct node *n = c->n;
    const struct proto_msg *m = &r->m;
    int64_t from = 1;
    const msgpack_object *o = proto_map_get(m->body, "from");
    if (n->fsm.shard == NULL) {
        /* Regions learn meta's changes by reading them (meta's catalog_since query), not from
         * an event stream (docs/global-state.md). */
        node__reply_error(c, m->id, LR_EINVAL, "subscribe: the metadata group has no event stream");
        return;
    }
    if (c->sub || (o && (proto_obj_i64(o, &from) || from < 1))) {
        node__reply_error(c, m->id, LR_EINVAL,
                          c->sub ? "subscribe: already subscribed on this connection"
                                 : "subscribe: from must be an index >= 1");
        return;
    }
    struct node_sub *s = calloc(1, sizeof *s);
    if (s == NULL) {
        node__reply_error(c, m->id, LR_ENOMEM, "out of memory");
        return;
    }
    s->c = c;
    s->req_id = m->id;
    s->next = (uint64_t)from;
    s->next_sub = n->subs;
    if (n->subs) {
        n->subs->prev = s;
    }
    n->subs = s;
    c->sub = s;
    c->refs++;
}

/* End @s's stream: the log no longer holds the events after s->next. The log is trimmed from
 * its oldest entry only, so it holds every event from @first on: the answer names it, so the
 * subscriber knows exactly which indexes it missed and where a new stream can start. */
static void node__sub_gone(struct node_sub *s, uint64_t first)
{
    struct node *n = s->c->n;
    char msg[200];
    snprintf(msg, sizeof msg,
             "subscribe: the events of indexes %llu to %llu are gone (the log keeps the last %d "
             "indexes); the first index served is %llu: resync",
             (unsigned long long)s->next, (unsigned long long)(first - 1), SHARD_EVENTS_RETAIN,
             (unsigned long long)first);
    msgpack_packer pk = node__packer(n);
    proto_msg_begin(&pk, s->req_id, LR_ENOTFOUND);
    msgpack_pack_map(&pk, 2);
    proto_pack_key(&pk, "message");
    msgpack_pack_str_with_body(&pk, msg, strlen(msg));
    proto_pack_key(&pk, "first_index");
    msgpack_pack_uint64(&pk, first);
    conn__send(s->c, n->scratch.data, n->scratch.size);
    conn__close(s->c, "subscription too old");
}

struct node__pump {
    struct node_sub *s;
    uint32_t sent;
};

static int node__pump_one(void *data, uint64_t index, uint32_t nev, const char *buf, size_t len)
{
    struct node__pump *p = data;
    node__send_events(p->s, index, nev, buf, len);
    p->s->next = index + 1;
    p->sent++;
    return conn__queued(p->s->c) > NODE_SUB_QUEUE_MAX / 2; /* let the socket drain */
}

/* Catch a subscriber up from the stored event log, a bounded slice per loop turn. */
void node__pump(struct node *n, struct node_sub *s)
{
    struct node__pump p = {s, 0};
    uint64_t first;
    uint64_t applied = fsm_applied_index(&n->fsm);
    int rv;
    if (conn__queued(s->c) > NODE_SUB_QUEUE_MAX / 2) {
        return;
    }
    /* Events older than the retention window may have been trimmed (shard.h): unless the log
     * still holds an entry at or before the next index, some events after it may be gone, and
     * reading on would skip them silently. The subscriber must resync instead. Entries without
     * events are not stored, so this may also refuse a window that only lacked events: a
     * resync is the safe side. This is also where a subscriber lands after a snapshot install
     * that jumped past the window (node__sub_restored puts it back here). */
    if (s->next + SHARD_EVENTS_RETAIN < applied) {
        rv = shard_events_read(n->fsm.shard, s->next, 0, node__pump_one, &p, &first);
        if (rv == 0 && (first == 0 || first > s->next)) {
            node__sub_gone(s, first ? first : applied + 1);
            return;
        }
    }
    rv = shard_events_read(n->fsm.shard, s->next, NODE__PUMP_ENTRIES, node__pump_one, &p, &first);
    if (rv != 0) {
        node__reply_error(s->c, s->req_id, rv, "subscribe: event log unreadable");
        conn__close(s->c, "event log unreadable");
        return;
    }
    if (p.sent < NODE__PUMP_ENTRIES && conn__queued(s->c) <= NODE_SUB_QUEUE_MAX / 2) {
        s->live = 1; /* everything up to the applied index was read */
        s->next = applied + 1;
    }
}
