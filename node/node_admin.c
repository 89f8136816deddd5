/* node/node_admin.c — the status op and membership changes (add, remove, transfer), each an
 * asynchronous raft request answered from its callback. The dispatch (node.c) has already
 * refused membership changes on a replica that does not lead: PROTO_F_LEADER in proto.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/addr.h"
#include "../raft/xport.h"
#include "node_int.h"

/* ---- status and membership
 * ------------------------------------------------------------------------- */

const char *node__role(int state)
{
    /* Indexed by libraft's enum (RAFT_UNAVAILABLE .. RAFT_LEADER). */
    static const char *const names[] = {"unavailable", "follower", "candidate", "leader"};
    return state >= 0 && state < (int)(sizeof names / sizeof names[0]) ? names[state]
                                                                       : "unavailable";
}

void node__pack_peers(struct node *n, msgpack_packer *pk)
{
    unsigned np = 0;
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        np += s->role == RAFT_VOTER && node__peer(n, s->id) != NULL;
    }
    msgpack_pack_array(pk, np);
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        const struct node_peer *p = node__peer(n, s->id);
        if (s->role == RAFT_VOTER && p != NULL) {
            msgpack_pack_map(pk, 2);
            proto_pack_key(pk, "id");
            msgpack_pack_uint64(pk, s->id);
            proto_pack_key(pk, "rpc");
            proto_pack_key(pk, p->rpc);
        }
    }
}

/* Only ids of the raft configuration, with a well-formed address: the array comes over the
 * network (from a peer that proved the cluster key when one is set). */
void node__learn_peers(struct node *n, const msgpack_object *peers)
{
    for (uint32_t k = 0; peers && peers->type == MSGPACK_OBJECT_ARRAY && k < peers->via.array.size;
         k++) {
        const msgpack_object *p = &peers->via.array.ptr[k];
        const msgpack_object *rpc = proto_map_get(p, "rpc");
        char a[NODE_ADDR_MAX];
        int64_t id;
        if (proto_obj_i64(proto_map_get(p, "id"), &id) != 0 || id <= 0 ||
            node__peer(n, (uint64_t)id) != NULL || n->cfg.npeers >= NODE_MAX_PEERS || rpc == NULL ||
            rpc->type != MSGPACK_OBJECT_STR || rpc->via.str.size >= sizeof a) {
            continue;
        }
        const struct raft_server *s = NULL;
        for (unsigned i = 0; i < n->raft.configuration.n; i++) {
            if (n->raft.configuration.servers[i].id == (raft_id)id) {
                s = &n->raft.configuration.servers[i];
            }
        }
        memcpy(a, rpc->via.str.ptr, rpc->via.str.size);
        a[rpc->via.str.size] = '\0';
        if (s == NULL || !addr_valid(a)) {
            continue;
        }
        struct node_peer *np = &n->cfg.peers[n->cfg.npeers++];
        np->id = (uint64_t)id;
        snprintf(np->raft, sizeof np->raft, "%s", s->address);
        snprintf(np->rpc, sizeof np->rpc, "%s", a);
        LOG(n->log, LOG_INFO, "learnt the RPC address %s of voter %llu", a, (unsigned long long)id);
    }
}

void node__op_status(struct node_conn *c, struct node_req *r)
{
    struct node *n = c->n;
    const struct proto_msg *m = &r->m;
    /* A leader's clock sample carries its peers (node_int.h, node__learn_peers). */
    node__learn_peers(n, proto_map_get(m->body, "peers"));
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&n->raft, &lid, &laddr);
    const struct node_peer *lp = lid ? node__peer(n, lid) : NULL;
    const struct node_peer *me = node__peer(n, n->cfg.id);
    node__admit_check(n); /* fresh, so a tool that frees space sees writes resume at once */
    const struct node_admit *a = &n->admit;
    msgpack_packer pk = node__packer(n);
    proto_msg_begin(&pk, m->id, 0);
    msgpack_pack_map(&pk, 34);
    proto_pack_key(&pk, "id");
    msgpack_pack_uint64(&pk, n->cfg.id);
    proto_pack_key(&pk, "region");
    proto_pack_key(&pk, n->cfg.region);
    proto_pack_key(&pk, "role");
    proto_pack_key(&pk, node__role(raft_state(&n->raft)));
    proto_pack_key(&pk, "term");
    msgpack_pack_uint64(&pk, n->raft.current_term);
    proto_pack_key(&pk, "leader_id");
    lid ? msgpack_pack_uint64(&pk, lid) : msgpack_pack_nil(&pk);
    proto_pack_key(&pk, "leader_rpc");
    lp ? proto_pack_key(&pk, lp->rpc) : msgpack_pack_nil(&pk);
    proto_pack_key(&pk, "rpc");
    me ? proto_pack_key(&pk, me->rpc) : msgpack_pack_nil(&pk);
    proto_pack_key(&pk, "commit_index");
    msgpack_pack_uint64(&pk, n->raft.commit_index);
    proto_pack_key(&pk, "applied_index");
    msgpack_pack_uint64(&pk, fsm_applied_index(&n->fsm));
    proto_pack_key(&pk, "last_index");
    msgpack_pack_uint64(&pk, raft_last_index(&n->raft));
    proto_pack_key(&pk, "digest");
    msgpack_pack_uint64(&pk, fsm_digest(&n->fsm));
    /* The highest stamp applied: a cycle's closer waits for every region's to pass the
     * cycle's end (docs/global-state.md, "Cycle closes"). */
    proto_pack_key(&pk, "clock_ms");
    msgpack_pack_int64(&pk, fsm_clock_ms(&n->fsm));
    /* Where a catalog carrier resumes (docs/global-state.md); 0 on a meta replica. */
    /* This host's wall clock: a leader samples its voters' (node_peerclock.c). */
    proto_pack_key(&pk, "now_ms");
    msgpack_pack_int64(&pk, node__now_ms());
    /* While leading with a quorum of samples: the majority's clock minus this one. */
    int64_t offset;
    proto_pack_key(&pk, "clock_offset_ms");
    raft_state(&n->raft) == RAFT_LEADER &&node__peerclock_offset(n, &offset)
        ? msgpack_pack_int64(&pk, offset)
        : msgpack_pack_nil(&pk);
    proto_pack_key(&pk, "clock_skewed");
    msgpack_pack_uint64(&pk, n->clock_skewed);
    /* Raft and RPC connections refused in the cluster-key handshake (docs/security.md). */
    proto_pack_key(&pk, "auth_failures");
    msgpack_pack_uint64(&pk, n->auth_failures + xport_auth_failures(&n->xport));
    proto_pack_key(&pk, "catalog_through");
    msgpack_pack_uint64(&pk, n->fsm.shard ? shard_catalog_through(n->fsm.shard) : 0);
    /* The audit retention the region applied (CMD_AUDIT_DAYS); 0 on a meta replica. */
    proto_pack_key(&pk, "audit_days");
    msgpack_pack_uint32(&pk, fsm_audit_days(&n->fsm));
    proto_pack_key(&pk, "applied_entries");
    msgpack_pack_uint64(&pk, n->fsm.applied_entries);
    proto_pack_key(&pk, "applied_commands");
    msgpack_pack_uint64(&pk, n->fsm.applied_commands);
    proto_pack_key(&pk, "batch_hist");
    msgpack_pack_array(&pk, FSM_BATCH_BUCKETS);
    for (unsigned i = 0; i < FSM_BATCH_BUCKETS; i++) {
        msgpack_pack_uint64(&pk, n->fsm.batch_hist[i]);
    }
    /* Snapshots: what one would hold now (writes are refused past state_max), and the last
     * one's size (docs/durability.md, "Snapshots"). */
    proto_pack_key(&pk, "state_bytes");
    msgpack_pack_uint64(&pk, n->state_bytes);
    proto_pack_key(&pk, "state_max");
    msgpack_pack_uint64(&pk, n->cfg.state_max);
    proto_pack_key(&pk, "snapshot_bytes");
    msgpack_pack_uint64(&pk, n->fsm.snapshot_bytes);
    proto_pack_key(&pk, "voters");
    unsigned nv = 0;
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        nv += n->raft.configuration.servers[i].role == RAFT_VOTER;
    }
    msgpack_pack_array(&pk, nv);
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        if (n->raft.configuration.servers[i].role == RAFT_VOTER) {
            msgpack_pack_uint64(&pk, n->raft.configuration.servers[i].id);
        }
    }
    /* The RPC address of each voter this replica knows (its --peer list and the replicas it
     * added as leader): how a router learns of a replica added after it started, and forgets
     * one removed (router/upstream.c, "Membership"). Raft's configuration holds only raft
     * addresses, so a voter whose RPC address this replica never learnt is left out. */
    proto_pack_key(&pk, "peers");
    node__pack_peers(n, &pk);
    /* Admission control (node_admit.c): whether this replica would take writes as leader. */
    proto_pack_key(&pk, "writable");
    a->writable ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    proto_pack_key(&pk, "reason");
    if (a->writable) {
        msgpack_pack_nil(&pk);
    } else {
        proto_pack_key(&pk, a->reason); /* a string, packed as keys are */
    }
    proto_pack_key(&pk, "disk_free_bytes");
    msgpack_pack_uint64(&pk, a->disk_free);
    proto_pack_key(&pk, "map_used_bytes");
    msgpack_pack_uint64(&pk, a->map.used_bytes);
    proto_pack_key(&pk, "map_size_bytes");
    msgpack_pack_uint64(&pk, a->map.map_bytes);
    /* Client connections and their limits (conn.c; docs/security.md, "Limits"). */
    proto_pack_key(&pk, "rpc_conns");
    msgpack_pack_uint64(&pk, n->nconns);
    proto_pack_key(&pk, "rpc_conns_refused");
    msgpack_pack_uint64(&pk, n->conns_refused);
    proto_pack_key(&pk, "rpc_idle_closes");
    msgpack_pack_uint64(&pk, n->idle_closes);
    conn__send(c, n->scratch.data, n->scratch.size);
}

struct node_admin {
    union {
        struct raft_change change;
        struct raft_transfer transfer;
    } req;
    struct node_conn *c;
    uint64_t req_id;
    uint64_t id;
};

static void node__admin_done(struct node_admin *ad, int status)
{
    if (!ad->c->closing) {
        if (status == 0) {
            node__reply(ad->c, ad->req_id, 0, NULL, 0);
        } else {
            node__reply_error(ad->c, ad->req_id, LR_EUNAVAILABLE, raft_strerror(status));
        }
    }
    conn__unref(ad->c);
    free(ad);
}

static void node__assigned(struct raft_change *req, int status)
{
    node__admin_done(req->data, status);
}

static void node__added(struct raft_change *req, int status)
{
    struct node_admin *ad = req->data;
    struct node *n = ad->c->n;
    if (status == 0) {
        ad->req.change.data = ad;
        status = raft_assign(&n->raft, &ad->req.change, ad->id, RAFT_VOTER, node__assigned);
        if (status == 0) {
            return;
        }
    }
    node__admin_done(ad, status);
}

static void node__removed(struct raft_change *req, int status)
{
    node__admin_done(req->data, status);
}

static void node__transferred(struct raft_transfer *req)
{
    struct node *n = req->data;
    struct node_admin *ad = n->transfer_ad;
    if (ad == NULL) {
        return; /* a second call for one transfer (the same libraft bug): already answered */
    }
    n->transfer_ad = NULL;
    node__admin_done(ad, raft_state(&n->raft) == RAFT_LEADER ? RAFT_NOTLEADER : 0);
}

static int node__admin_args(const struct proto_msg *m, uint64_t *id, const char **raft_addr,
                            size_t *raft_len, const char **rpc, size_t *rpc_len)
{
    int64_t v;
    const msgpack_object *o = proto_map_get(m->body, "id");
    if (o == NULL || proto_obj_i64(o, &v) || v < 0) {
        return LR_EINVAL;
    }
    *id = (uint64_t)v;
    if (raft_addr) {
        const msgpack_object *a = proto_map_get(m->body, "raft");
        const msgpack_object *r = proto_map_get(m->body, "rpc");
        char check[NODE_ADDR_MAX];
        if (a == NULL || r == NULL || a->type != MSGPACK_OBJECT_STR ||
            r->type != MSGPACK_OBJECT_STR || a->via.str.size >= NODE_ADDR_MAX ||
            r->via.str.size >= NODE_ADDR_MAX) {
            return LR_EINVAL;
        }
        /* The raft address enters the replicated configuration and every replica dials it:
         * both must be host:port as `laurel node --peer` takes them ([::1]:7004 included). */
        snprintf(check, sizeof check, "%.*s", (int)a->via.str.size, a->via.str.ptr);
        if (!addr_valid(check)) {
            return LR_EINVAL;
        }
        snprintf(check, sizeof check, "%.*s", (int)r->via.str.size, r->via.str.ptr);
        if (!addr_valid(check)) {
            return LR_EINVAL;
        }
        *raft_addr = a->via.str.ptr;
        *raft_len = a->via.str.size;
        *rpc = r->via.str.ptr;
        *rpc_len = r->via.str.size;
    }
    return 0;
}

/* A membership change for @c's request @req_id about to be handed to raft, or NULL. */
static struct node_admin *node__admin_new(struct node_conn *c, uint64_t req_id, uint64_t id)
{
    struct node_admin *ad = calloc(1, sizeof *ad);
    if (ad != NULL) {
        ad->c = c;
        ad->req_id = req_id;
        ad->id = id;
    }
    return ad;
}

/* Answer request @req_id when raft refused to start its change with @rv. */
static void node__admin_refused(struct node_conn *c, uint64_t req_id, int rv)
{
    node__reply_error(c, req_id, rv == RAFT_NOTLEADER ? LR_ENOTLEADER : LR_EINVAL,
                      raft_strerror(rv));
}

#define NODE__ADMIN_USAGE "admin: args need id (and raft, rpc as host:port to add)"

/* The dispatch has checked that this replica leads (PROTO_F_LEADER), here and in the next two
 * ops. Each op owns its node_admin until raft accepts it; from then on the callback answers
 * and frees it, and the connection is held until then. The new peer's addresses are recorded
 * before raft runs the change, so that this replica can name its RPC address (status, "not the
 * leader") once it is in the configuration. */
void node__op_add(struct node_conn *c, struct node_req *r)
{
    struct node *n = c->n;
    const char *ra = NULL, *rp = NULL;
    size_t ral = 0, rpl = 0;
    uint64_t id;
    char addr[NODE_ADDR_MAX];
    if (node__admin_args(&r->m, &id, &ra, &ral, &rp, &rpl) != 0 || id == 0) {
        node__reply_error(c, r->m.id, LR_EINVAL, NODE__ADMIN_USAGE);
        return;
    }
    struct node_admin *ad = node__admin_new(c, r->m.id, id);
    if (ad == NULL) {
        node__reply_error(c, r->m.id, LR_ENOMEM, "out of memory");
        return;
    }
    memcpy(addr, ra, ral);
    addr[ral] = '\0';
    if (node__peer(n, id) == NULL && n->cfg.npeers < NODE_MAX_PEERS) {
        struct node_peer *p = &n->cfg.peers[n->cfg.npeers++];
        p->id = id;
        snprintf(p->raft, sizeof p->raft, "%s", addr);
        snprintf(p->rpc, sizeof p->rpc, "%.*s", (int)rpl, rp);
    }
    ad->req.change.data = ad;
    int rv = raft_add(&n->raft, &ad->req.change, id, addr, node__added);
    if (rv != 0) {
        node__admin_refused(c, r->m.id, rv);
        free(ad);
        return;
    }
    c->refs++;
}

void node__op_remove(struct node_conn *c, struct node_req *r)
{
    struct node *n = c->n;
    uint64_t id;
    if (node__admin_args(&r->m, &id, NULL, NULL, NULL, NULL) != 0 || id == 0) {
        node__reply_error(c, r->m.id, LR_EINVAL, NODE__ADMIN_USAGE);
        return;
    }
    struct node_admin *ad = node__admin_new(c, r->m.id, id);
    if (ad == NULL) {
        node__reply_error(c, r->m.id, LR_ENOMEM, "out of memory");
        return;
    }
    ad->req.change.data = ad;
    int rv = raft_remove(&n->raft, &ad->req.change, id, node__removed);
    if (rv != 0) {
        node__admin_refused(c, r->m.id, rv);
        free(ad);
        return;
    }
    c->refs++;
}

/* Id 0 lets raft pick a voting follower (raft.h, raft_transfer). */
void node__op_transfer(struct node_conn *c, struct node_req *r)
{
    struct node *n = c->n;
    uint64_t id;
    if (node__admin_args(&r->m, &id, NULL, NULL, NULL, NULL) != 0) {
        node__reply_error(c, r->m.id, LR_EINVAL, NODE__ADMIN_USAGE);
        return;
    }
    struct node_admin *ad = node__admin_new(c, r->m.id, id);
    if (ad == NULL) {
        node__reply_error(c, r->m.id, LR_ENOMEM, "out of memory");
        return;
    }
    /* The request is the node's, not @ad's: libraft can still hold its TimeoutNow send, queued
     * while the target was unreachable, after the transfer timed out and called back
     * (canonical/raft#396, fixed upstream by raft#398). Freed with @ad, that send's later
     * completion jumped through freed memory: test_clock's leader died with SIGSEGV (rip 0x2,
     * called from libuv) right after "server is not the leader". libraft runs one transfer at
     * a time (raft_transfer refuses a second), so one request per node is enough. */
    n->transfer.data = n;
    int rv = raft_transfer(&n->raft, &n->transfer, id, node__transferred);
    if (rv != 0) {
        node__admin_refused(c, r->m.id, rv);
        free(ad);
        return;
    }
    n->transfer_ad = ad;
    c->refs++;
}
