/* node/node.c — a replica: raft setup, the op table of the client RPC, write batching,
 * barrier reads and the committed-event stream (see node.h).
 *
 * Life of a write: conn.c cuts a frame → node__request → node__op_submit appends its commands, with
 * a time stamped in (node_clock.c: never below one applied), to the loop turn's open batch → the
 * check handle proposes the batch as one raft entry (a new leader first waits for an entry of
 * its term to apply) → the FSM applies and commits it → node__applied answers each
 * waiting request with its slice of the results. A leader change before apply fails the
 * batch's requests with `unavailable` ("may or may not have happened"), which is safe to
 * retry with the same idempotency key. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../lib/addr.h"
#include "../raft/xport.h"
#include "node_int.h"

#define NODE__RETRY_MS 500

void node_config_defaults(struct node_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->election_ms = 1000;
    cfg->heartbeat_ms = 100;
    cfg->snapshot_threshold = 8192;
    cfg->snapshot_trailing = 4096;
    cfg->state_max = NODE_STATE_MAX_DEFAULT;
    cfg->fast = 1;
    cfg->disk_reserve_mb = NODE_DISK_RESERVE_MB_DEFAULT;
    cfg->max_conns = NODE_MAX_CONNS_DEFAULT;
    cfg->idle_s = NODE_IDLE_S_DEFAULT;
    cfg->audit_days = CMD_AUDIT_DAYS_MIN;
}

int node_exit_status(const struct node *n)
{
    return n->exit_status;
}

static void node__fail_batch(struct node_batch *b, int code, const char *why);
static void node__batch_free(struct node_batch *b);
static void node__read_free(struct node_read *r);

/* A fatal error: the raft log or the state machine can no longer be trusted. uv_stop only
 * ends the loop after the current turn, whose check handle would still propose the open
 * batch and start a barrier, and whose later callbacks could still answer writes. So the
 * node also stops itself here: every waiting writer is answered `unavailable` now (its write
 * may or may not have happened; the same idempotency key settles it on the next leader),
 * n->fatal keeps node__check, node__flush_batch and node__op_submit from proposing, and
 * node__applied from answering. Batches already proposed stay owned by libraft until their
 * callbacks; they are only marked answered. May run inside libraft's callbacks. */
static void node__fatal(struct node *n, const char *what)
{
    LOG(n->log, LOG_ERROR, "fatal: %s; stopping this replica", what);
    n->exit_status = 70;
    uv_stop(n->loop);
    if (n->fatal) {
        return;
    }
    n->fatal = 1;
    static const char why[] =
        "replica stopped on a fatal error; the write may or may not have "
        "happened: retry with the same idempotency key";
    if (n->open) {
        node__fail_batch(n->open, LR_EUNAVAILABLE, why);
        node__batch_free(n->open);
        n->open = NULL;
    }
    for (struct node_batch *b = n->inflight; b; b = b->next) {
        if (!b->answered) {
            node__fail_batch(b, LR_EUNAVAILABLE, why);
            b->answered = 1;
        }
    }
    for (struct node_read *r = n->reads_next, *next; r; r = next) {
        next = r->next;
        if (!r->c->closing) {
            node__reply_error(r->c, r->req_id, LR_EUNAVAILABLE, "replica stopped on a fatal error");
        }
        node__read_free(r);
    }
    n->reads_next = NULL;
}

const struct node_peer *node__peer(const struct node *n, uint64_t id)
{
    for (unsigned i = 0; i < n->cfg.npeers; i++) {
        if (n->cfg.peers[i].id == id) {
            return &n->cfg.peers[i];
        }
    }
    return NULL;
}

/* ---- replies --------------------------------------------------------------------------------- */

msgpack_packer node__packer(struct node *n)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(&n->scratch);
    msgpack_packer_init(&pk, &n->scratch, msgpack_sbuffer_write);
    return pk;
}

void node__reply(struct node_conn *c, uint64_t id, int code, const char *payload, size_t len)
{
    struct node *n = c->n;
    msgpack_packer pk = node__packer(n);
    proto_msg_begin(&pk, id, code);
    if (payload) {
        msgpack_sbuffer_write(&n->scratch, payload, len);
    } else {
        msgpack_pack_nil(&pk);
    }
    conn__send(c, n->scratch.data, n->scratch.size);
}

void node__reply_error(struct node_conn *c, uint64_t id, int code, const char *msg)
{
    struct node *n = c->n;
    msgpack_packer pk = node__packer(n);
    proto_msg_begin(&pk, id, code);
    msgpack_pack_str_with_body(&pk, msg, strlen(msg));
    conn__send(c, n->scratch.data, n->scratch.size);
}

/* Not the leader: say who is, so the client can go there. */
void node__reply_not_leader(struct node_conn *c, uint64_t id)
{
    struct node *n = c->n;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&n->raft, &lid, &laddr);
    const struct node_peer *p = lid ? node__peer(n, lid) : NULL;
    msgpack_packer pk = node__packer(n);
    proto_msg_begin(&pk, id, lid ? LR_ENOTLEADER : LR_EUNAVAILABLE);
    msgpack_pack_map(&pk, 3);
    proto_pack_key(&pk, "leader_id");
    lid ? msgpack_pack_uint64(&pk, lid) : msgpack_pack_nil(&pk);
    proto_pack_key(&pk, "leader_rpc");
    p ? msgpack_pack_str_with_body(&pk, p->rpc, strlen(p->rpc)) : msgpack_pack_nil(&pk);
    proto_pack_key(&pk, "retry_ms");
    msgpack_pack_uint32(&pk, NODE__RETRY_MS);
    conn__send(c, n->scratch.data, n->scratch.size);
}

/* ---- writes -------------------------------------------------------------------------------------
 */

static void node__batch_free(struct node_batch *b)
{
    for (uint32_t i = 0; i < b->nw; i++) {
        conn__unref(b->w[i].c);
    }
    free(b->w);
    free(b->ts_off);
    msgpack_sbuffer_destroy(&b->sb);
    free(b);
}

static struct node_batch *node__open_batch(struct node *n)
{
    if (n->open == NULL) {
        struct node_batch *b = calloc(1, sizeof *b);
        if (b == NULL) {
            return NULL;
        }
        b->n = n;
        msgpack_sbuffer_init(&b->sb);
        msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
        n->open = b;
    }
    return n->open;
}

/* Room for one more waiter in @b. */
static int node__batch_reserve(struct node_batch *b)
{
    if (b->nw < b->capw) {
        return 0;
    }
    uint32_t ncap = b->capw ? b->capw * 2 : 16;
    struct node_waiter *w = realloc(b->w, ncap * sizeof *w);
    if (w == NULL) {
        return LR_ENOMEM;
    }
    b->w = w;
    b->capw = ncap;
    return 0;
}

static void node__flush_batch(struct node *n);

/* Whether this region's leader should propose its audit retention: the applied one differs
 * from its --audit-days and it has not proposed it in this term yet (once a term: if the
 * entry is lost with the term, the next leader asks again). */
static int node__audit_days_due(struct node *n)
{
    return !n->cfg.meta && fsm_audit_days(&n->fsm) != n->cfg.audit_days &&
           n->audit_days_term != n->raft.current_term;
}

/* Append CMD_AUDIT_DAYS to @b, stamped @ts, answered to nobody: the retention rides on the
 * next write, and it only matters when writes are applied (each entry purges the trail). The
 * caller reserved a stamp slot for it. 0, or LR_ENOMEM (nothing appended). */
static int node__append_audit_days(struct node *n, struct node_batch *b, int64_t ts)
{
    struct cmd c;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    int rv = LR_ENOMEM;
    memset(&c, 0, sizeof c);
    c.type = CMD_AUDIT_DAYS;
    c.u.audit_days.days = n->cfg.audit_days;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_unpacked_init(&up);
    if (cmd_encode(&pk, &c) == 0 && sb.data != NULL &&
        msgpack_unpack_next(&up, sb.data, sb.size, NULL) == MSGPACK_UNPACK_SUCCESS) {
        node__append_cmd(b, &up.data, ts); /* copies it */
        n->audit_days_term = n->raft.current_term;
        rv = 0;
    }
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    return rv;
}

static void node__op_submit(struct node_conn *c, struct node_req *r)
{
    struct node *n = c->n;
    const struct proto_msg *m = &r->m;
    const msgpack_object *cmds = m->body;
    if (cmds->type != MSGPACK_OBJECT_ARRAY || cmds->via.array.size == 0 ||
        cmds->via.array.size > CMD_ENTRY_MAX / 4) {
        node__reply_error(c, m->id, LR_EINVAL, "submit: args must be 1 to 1024 commands");
        return;
    }
    if (n->fatal) {
        node__reply_error(c, m->id, LR_EUNAVAILABLE, "submit: replica stopped on a fatal error");
        return;
    }
    uint32_t count = cmds->via.array.size;
    /* meta's entries hold fewer commands than a region's (meta/mcmd.h). */
    uint32_t entry_max = n->cfg.meta ? MCMD_ENTRY_MAX : CMD_ENTRY_MAX;
    if (count > entry_max) {
        node__reply_error(c, m->id, LR_EINVAL, "submit: too many commands for one entry");
        return;
    }
    if (n->state_bytes >= n->cfg.state_max) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "submit: the state is %llu bytes, past this replica's limit of %llu: writes are "
                 "refused so a snapshot stays small enough for libraft to load "
                 "(docs/durability.md, Snapshots)",
                 (unsigned long long)n->state_bytes, (unsigned long long)n->cfg.state_max);
        node__reply_error(c, m->id, LR_EUNAVAILABLE, msg);
        return;
    }
    /* + the retention command that may ride along (node__audit_days_due) */
    if (n->open && n->open->ncmds + count + (uint32_t)node__audit_days_due(n) > entry_max) {
        if (!node__may_propose(n)) { /* the open batch is held (node_clock.c) and full */
            node__reply_error(c, m->id, LR_EUNAVAILABLE, "submit: leader not ready; retry");
            return;
        }
        node__flush_batch(n); /* one entry holds entry_max commands at most */
        if (n->fatal) {       /* that proposal failed fatally: nothing joins a new batch */
            node__reply_error(c, m->id, LR_EUNAVAILABLE,
                              "submit: replica stopped on a fatal error");
            return;
        }
    }
    struct node_batch *b = node__open_batch(n);
    if (b == NULL || node__batch_reserve(b) != 0 || node__batch_reserve_stamps(b, count + 1) != 0) {
        node__reply_error(c, m->id, LR_ENOMEM, "submit: out of memory");
        return;
    }
    int64_t ts;
    if (node__may_propose(n)) {
        ts = node__stamp(n);
    } else { /* held: a provisional stamp, replaced when the batch is proposed (node_clock.c) */
        ts = fsm_clock_ms(&n->fsm);
        if (!b->held) {
            b->held = 1;
            b->held_since = uv_now(n->loop);
        }
    }
    if (node__audit_days_due(n) && node__append_audit_days(n, b, ts) != 0) {
        node__reply_error(c, m->id, LR_ENOMEM, "submit: out of memory");
        return;
    }
    struct node_waiter *w = &b->w[b->nw++];
    w->c = c;
    w->req_id = m->id;
    w->first = b->ncmds;
    w->count = cmds->via.array.size;
    c->refs++;
    for (uint32_t i = 0; i < cmds->via.array.size; i++) {
        node__append_cmd(b, &cmds->via.array.ptr[i], ts);
    }
}

static void node__fail_batch(struct node_batch *b, int code, const char *why)
{
    for (uint32_t i = 0; i < b->nw; i++) {
        node__reply_error(b->w[i].c, b->w[i].req_id, code, why);
    }
}

/* The batch's writers, when leadership was lost before its entry committed: `unavailable`
 * with a map, {"message", "retry_ms"}, the form of "no leader yet" (docs/rpc.md), because a
 * client should do the same: ask again, with the same idempotency key, once a leader is
 * elected. A router does it within the request's deadline, so a leadership change (a
 * transfer, a leader removed: docs/operations.md, "Growing a cluster") is latency to its
 * clients rather than a 503. */
static void node__fail_batch_lost(struct node_batch *b)
{
    static const char why[] =
        "leadership lost before the write committed; it may or may not "
        "have happened: retry with the same idempotency key";
    for (uint32_t i = 0; i < b->nw; i++) {
        msgpack_packer pk = node__packer(b->n);
        proto_msg_begin(&pk, b->w[i].req_id, LR_EUNAVAILABLE);
        msgpack_pack_map(&pk, 2);
        proto_pack_key(&pk, "message");
        msgpack_pack_str_with_body(&pk, why, sizeof why - 1);
        proto_pack_key(&pk, "retry_ms");
        msgpack_pack_uint32(&pk, NODE__RETRY_MS);
        conn__send(b->w[i].c, b->n->scratch.data, b->n->scratch.size);
    }
}

static void node__applied_cb(struct raft_apply *req, int status, void *result)
{
    struct node_batch *b = req->data;
    struct node *n = b->n;
    (void)result;
    /* Requests complete in proposal order; drop this one from the in-flight list. */
    struct node_batch **pp = &n->inflight, *prev = NULL;
    while (*pp && *pp != b) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp) {
        *pp = b->next;
        if (n->inflight_tail == b) {
            n->inflight_tail = prev;
        }
    }
    if (!b->answered && status != 0) {
        node__fail_batch_lost(b);
    } else if (!b->answered) {
        node__fail_batch(b, LR_EUNAVAILABLE,
                         "entry applied without results; retry with the same idempotency key");
    }
    node__batch_free(b);
}

/* Propose the loop turn's batch as one entry. */
static void node__flush_batch(struct node *n)
{
    struct node_batch *b = n->open;
    struct raft_buffer buf;
    msgpack_sbuffer entry;
    msgpack_packer pk;
    if (b == NULL || n->fatal || !node__may_propose(n)) {
        return; /* held until an entry of this leader's term is applied (node_clock.c) */
    }
    n->open = NULL;
    node__restamp(n, b);
    msgpack_sbuffer_init(&entry);
    msgpack_packer_init(&pk, &entry, msgpack_sbuffer_write);
    cmd_entry_begin(&pk, b->ncmds);
    msgpack_sbuffer_write(&entry, b->sb.data, b->sb.size);
    buf.len = (entry.size + CMD_ENTRY_ALIGN - 1) / CMD_ENTRY_ALIGN * CMD_ENTRY_ALIGN;
    buf.base = raft_malloc(buf.len);
    if (buf.base == NULL) {
        msgpack_sbuffer_destroy(&entry);
        node__fail_batch(b, LR_ENOMEM, "out of memory");
        node__batch_free(b);
        return;
    }
    memcpy(buf.base, entry.data, entry.size);
    memset((char *)buf.base + entry.size, 0, buf.len - entry.size);
    msgpack_sbuffer_destroy(&entry);
    msgpack_sbuffer_clear(&b->sb); /* the commands now live in buf */
    b->req.data = b;
    int rv = raft_apply(&n->raft, &b->req, &buf, 1, node__applied_cb);
    if (rv != 0) {
        raft_free(buf.base);
        node__fail_batch(b, rv == RAFT_NOTLEADER ? LR_ENOTLEADER : LR_EUNAVAILABLE,
                         raft_strerror(rv));
        node__batch_free(b);
        return;
    }
    b->index = b->req.index;
    if (n->fatal) { /* the append failed inside raft_apply, which still took the entry */
        node__fail_batch(b, LR_EUNAVAILABLE,
                         "replica stopped on a fatal error; the write may or "
                         "may not have happened: retry with the same "
                         "idempotency key");
        b->answered = 1;
    }
    if (n->inflight_tail) {
        n->inflight_tail->next = b;
    } else {
        n->inflight = b;
    }
    n->inflight_tail = b;
}

/* ---- the FSM's report: answer writers, feed subscribers ----------------------------------------
 */

static void node__answer_batch(struct node *n, struct node_batch *b, const struct fsm_applied *a)
{
    for (uint32_t i = 0; i < b->nw; i++) {
        const struct node_waiter *w = &b->w[i];
        msgpack_packer pk = node__packer(n);
        proto_msg_begin(&pk, w->req_id, 0);
        msgpack_pack_map(&pk, 2);
        proto_pack_key(&pk, "index");
        msgpack_pack_uint64(&pk, a->index);
        proto_pack_key(&pk, "results");
        msgpack_pack_array(&pk, w->count);
        for (uint32_t k = w->first; k < w->first + w->count; k++) {
            msgpack_pack_array(&pk, 3);
            msgpack_pack_int64(&pk, k < a->nresults ? a->status[k] : 500);
            (k < a->nresults && a->replayed[k]) ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
            if (k < a->nresults) {
                msgpack_sbuffer_write(&n->scratch, a->results->data + a->off[k], a->len[k]);
            } else {
                msgpack_pack_nil(&pk);
            }
        }
        conn__send(w->c, n->scratch.data, n->scratch.size);
    }
    b->answered = 1;
}

static void node__applied(void *data, const struct fsm_applied *a)
{
    struct node *n = data;
    struct node_batch *b = n->inflight;
    if (b && b->index == a->index && !b->answered && !n->fatal) {
        node__answer_batch(n, b, a);
    }
    if (a->nevents == 0) {
        return;
    }
    for (struct node_sub *s = n->subs, *next; s; s = next) {
        next = s->next_sub;
        if (!s->live) {
            continue;
        }
        node__send_events(s, a->index, a->nevents, a->events->data, a->events->size);
        s->next = a->index + 1;
        if (conn__queued(s->c) > NODE_SUB_QUEUE_MAX) {
            node__drop_slow(s);
        }
    }
}

static void node__fsm_fatal(void *data, int rv, const char *msg)
{
    struct node *n = data;
    char what[LR_ERRMSG_SIZE + 64];
    snprintf(what, sizeof what, "state machine: %s (%s)", msg, err_name(rv));
    node__fatal(n, what);
}

/* ---- reads
 * ---------------------------------------------------------------------------------------- */

/* Run @q now and answer request @id on @c. */
static void node__answer_query(struct node *n, struct node_conn *c, uint64_t id, union fsm_query *q,
                               int64_t now_ms)
{
    char errmsg[LR_ERRMSG_SIZE];
    msgpack_sbuffer_clear(&n->qans);
    int rv = fsm_query(&n->fsm, q, now_ms, &n->qans, errmsg);
    if (rv == 0) {
        node__reply(c, id, 0, n->qans.data, n->qans.size);
    } else {
        node__reply_error(c, id, rv, errmsg);
    }
}

static void node__read_free(struct node_read *r)
{
    conn__unref(r->c);
    msgpack_unpacked_destroy(&r->up);
    free(r->frame);
    free(r);
}

static void node__barrier_cb(struct raft_barrier *req, int status)
{
    struct node *n = req->data;
    struct node_read *r = n->reads_now, *next;
    n->reads_now = NULL;
    n->barrier_busy = 0;
    if (status == 0) {
        n->read_term = n->raft.current_term; /* an entry of this term is applied here */
    }
    for (; r; r = next) {
        next = r->next;
        if (status == 0 && !r->c->closing) {
            node__answer_query(n, r->c, r->req_id, &r->q, r->now_ms);
        } else if (!r->c->closing) {
            node__reply_not_leader(r->c, r->req_id);
        }
        node__read_free(r);
    }
    /* The next barrier starts from the check handle (node__check), never from here: libraft
     * runs this callback from inside its own bookkeeping (applying the barrier entry, or
     * failing pending requests on a step-down), and a raft_barrier issued from inside it
     * crashed a replica within libraft (SIGSEGV; core: raft_barrier <- node__barrier_start <-
     * this callback <- libraft). The check handle runs in the same loop turn as the I/O that
     * completed the barrier, so reads that queued meanwhile wait no longer for it. */
}

/* One barrier answers every read queued before it: linearizable reads at one raft round per
 * loop turn, however many reads arrived. A new leader also runs one with no read waiting: its
 * writes wait for an entry of its term to apply (node_clock.c). */
static void node__barrier_start(struct node *n)
{
    if (n->barrier_busy || (n->reads_next == NULL && node__term_ready(n))) {
        return;
    }
    n->reads_now = n->reads_next;
    n->reads_next = NULL;
    n->barrier.data = n;
    int rv = raft_barrier(&n->raft, &n->barrier, node__barrier_cb);
    if (rv != 0) { /* e.g. a transfer under way: these reads fail, the next loop turn retries */
        n->barrier_busy = 1;
        node__barrier_cb(&n->barrier, rv);
        return;
    }
    n->barrier_busy = 1;
}

/* The dispatch has decoded the query (PROTO_F_STALE) and, unless it is stale, checked that
 * this replica leads. */
static void node__op_query(struct node_conn *c, struct node_req *req)
{
    struct node *n = c->n;
    const struct proto_msg *m = &req->m;
    char errmsg[LR_ERRMSG_SIZE];
    struct proto_msg copy;
    int stale;
    int64_t now_ms = node__now_ms();
    /* Stale reads are answered now, from the frame's own bytes. */
    if (req->stale) {
        node__answer_query(n, c, m->id, &req->q, now_ms);
        return;
    }
    /* Every other read waits for the next barrier (docs/durability.md, "Reads"). A leader that
     * answered from its state at once, trusting libraft to step it down within an election
     * timeout of losing its majority, answered stale reads after a pause (SIGSTOP, a long GC
     * of the host, a VM migration): resumed, it still believed it led while a newer leader had
     * acknowledged writes it had not seen (test_stale_leader). A barrier committed in this
     * term proves a majority still follows it, after the read arrived. The read needs its own
     * copy of the frame, since the query's strings point into it. */
    struct node_read *r = calloc(1, sizeof *r);
    if (r == NULL || (r->frame = malloc(req->len)) == NULL) {
        free(r);
        node__reply_error(c, m->id, LR_ENOMEM, "out of memory");
        return;
    }
    memcpy(r->frame, req->frame, req->len);
    msgpack_unpacked_init(&r->up);
    if (proto_unpack(r->frame, req->len, &r->up) != 0 ||
        proto_msg_decode(&r->up.data, &copy) != 0 ||
        fsm_query_decode(&n->fsm, copy.body, &r->q, &stale, errmsg) != 0) {
        /* The same bytes decoded a moment ago: only memory can make this fail. */
        node__reply_error(c, m->id, LR_ENOMEM, "out of memory");
        msgpack_unpacked_destroy(&r->up);
        free(r->frame);
        free(r);
        return;
    }
    r->now_ms = now_ms;
    r->c = c;
    r->req_id = m->id;
    c->refs++;
    r->next = n->reads_next;
    n->reads_next = r;
}

/* A ReadIndex probe (docs/rpc.md, "readindex"): what this replica knows of raft right now,
 * from memory alone, so a router can ask every replica at once and judge the answers itself.
 * "leader" is true only once an entry of this leader's term is applied here: before that its
 * commit index may still lag entries an earlier leader committed. Any replica answers, and
 * nothing here waits: a replica that is wrong about its role (paused, cut off) can only be
 * believed when a majority of the others confirm its term and leadership. */
static void node__op_readindex(struct node_conn *c, struct node_req *r)
{
    struct node *n = c->n;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&n->raft, &lid, &laddr);
    int leads = raft_state(&n->raft) == RAFT_LEADER && n->read_term == n->raft.current_term;
    msgpack_packer pk = node__packer(n);
    proto_msg_begin(&pk, r->m.id, 0);
    msgpack_pack_map(&pk, 5);
    proto_pack_key(&pk, "term");
    msgpack_pack_uint64(&pk, n->raft.current_term);
    proto_pack_key(&pk, "leader");
    leads ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk);
    proto_pack_key(&pk, "leader_id");
    msgpack_pack_uint64(&pk, lid);
    proto_pack_key(&pk, "commit_index");
    msgpack_pack_uint64(&pk, n->raft.commit_index);
    /* raft's count, barriers and configuration entries included: the FSM's own applied index
     * moves only on command entries. */
    proto_pack_key(&pk, "applied_index");
    msgpack_pack_uint64(&pk, raft_last_applied(&n->raft));
    conn__send(c, n->scratch.data, n->scratch.size);
}

/* ---- the loop turn
 * -------------------------------------------------------------------------------- */

static void node__check(uv_check_t *h)
{
    struct node *n = h->data;
    if (n->stopping || n->fatal) {
        return;
    }
    /* Every log line carries the term (lib/log.h): set it before anything of this turn logs,
     * and say when the role changes, so a log shows each election it saw. */
    n->log->term = n->raft.current_term;
    int role = raft_state(&n->raft);
    if (role != n->logged_role) {
        n->logged_role = role;
        LOG(n->log, LOG_INFO, "role: %s in term %llu", node__role(role),
            (unsigned long long)n->raft.current_term);
    }
    if (role == RAFT_LEADER && n->clock_term != n->raft.current_term) {
        n->clock_term = n->raft.current_term; /* elected: measure the peers' clocks at once */
        node__peerclock_sample(n);
    }
    node__flush_batch(n);
    node__barrier_start(n);
    for (struct node_sub *s = n->subs, *next; s; s = next) {
        next = s->next_sub;
        if (!s->live) {
            node__pump(n, s);
        }
    }
    node__sub_heartbeats(n, 0);
}

/* Measure what a snapshot would hold now; writes are refused past cfg.state_max. */
static void node__measure_state(struct node *n)
{
    uint64_t bytes;
    if (fsm_state_bytes(&n->fsm, &bytes) != 0) {
        return; /* keep the last figure: an unreadable state stops the replica elsewhere */
    }
    if (bytes >= n->cfg.state_max && n->state_bytes < n->cfg.state_max) {
        LOG(n->log, LOG_ERROR,
            "state is %llu bytes, past the limit of %llu: refusing writes (docs/durability.md, "
            "Snapshots)",
            (unsigned long long)bytes, (unsigned long long)n->cfg.state_max);
    } else if (bytes < n->cfg.state_max && n->state_bytes >= n->cfg.state_max) {
        LOG(n->log, LOG_WARN, "state is %llu bytes, below the limit of %llu: writes accepted",
            (unsigned long long)bytes, (unsigned long long)n->cfg.state_max);
    }
    n->state_bytes = bytes;
}

static void node__snapshotted(void *data, uint64_t index, uint64_t bytes, uint64_t copy_ns)
{
    struct node *n = data;
    LOG(n->log, LOG_INFO,
        "snapshot at index %llu: %llu bytes, copied in %.1f ms on a worker (the loop served "
        "on)",
        (unsigned long long)index, (unsigned long long)bytes, (double)copy_ns / 1e6);
}

static void node__tick(uv_timer_t *t)
{
    struct node *n = t->data;
    n->log->term = n->raft.current_term;
    node__measure_state(n);
    node__sub_heartbeats(n, 1); /* also when nothing moved: the stream is alive */
    node__admit_check(n);       /* so writes resume, and status tells, without a write */
    conn__expire(n);
    conn__close_idle(n);
    if (n->stopping || n->fatal || raft_state(&n->raft) != RAFT_LEADER) {
        return;
    }
    /* Counted every tick, logged when it starts and when it ends (not once a second). */
    int64_t offset;
    int have = node__peerclock_offset(n, &offset);
    if (have && (offset > NODE_CLOCK_TOLERANCE_MS || offset < -NODE_CLOCK_TOLERANCE_MS)) {
        n->clock_skewed++;
        if (!n->clock_warned) {
            n->clock_warned = 1;
            LOG(n->log, LOG_WARN,
                "clock: this host's clock is %lld ms %s the majority's; stamping with the "
                "majority's",
                (long long)(offset < 0 ? -offset : offset), offset < 0 ? "ahead of" : "behind");
        }
    } else if (have && n->clock_warned) {
        n->clock_warned = 0;
        LOG(n->log, LOG_INFO, "clock: back within %d ms of the majority's",
            NODE_CLOCK_TOLERANCE_MS);
    }
    node__peerclock_sample(n);
    /* A batch held past NODE_HOLD_MS (no barrier of this term yet, or no quorum of clock
     * samples) answers unavailable: nothing was proposed, so a retry is safe. */
    struct node_batch *b = n->open;
    if (b && b->held && !node__may_propose(n) && uv_now(n->loop) - b->held_since > NODE_HOLD_MS) {
        n->open = NULL;
        node__fail_batch(b, LR_EUNAVAILABLE,
                         "leader not ready (no barrier of its term or no quorum of clock samples); "
                         "retry");
        node__batch_free(b);
    }
}

/* ---- the op table ------------------------------------------------------------------------------
 */

/* Generated from PROTO_OPS and indexed by op code: each op's flags and its node__op_<name>, so
 * an op added to proto.h without its handler here does not build. */
static const struct node__op {
    unsigned flags;
    void (*serve)(struct node_conn *c, struct node_req *r);
} node__ops[PROTO_OP__END] = {
#define NODE__OP(code, NAME, name, fl) [code] = {fl, node__op_##name},
    PROTO_OPS(NODE__OP)
#undef NODE__OP
};

void node__request(struct node_conn *c, const char *frame, size_t len)
{
    struct node *n = c->n;
    const struct node__op *op;
    char errmsg[LR_ERRMSG_SIZE];
    msgpack_unpacked up;
    struct node_req r; /* not zeroed: its query is large, and only PROTO_F_STALE ops read it */
    r.frame = frame;
    r.len = len;
    r.stale = 0;
    msgpack_unpacked_init(&up);
    int rv = proto_unpack(frame, len, &up);
    if (rv == 0) {
        rv = proto_msg_decode(&up.data, &r.m);
    }
    if (rv != 0) {
        node__reply_error(c, 0, rv,
                          rv == LR_EVERSION ? "unsupported protocol version" : "malformed request");
        conn__close(c, "malformed request");
        goto out;
    }
    op = r.m.op_or_code > 0 && r.m.op_or_code < PROTO_OP__END ? &node__ops[r.m.op_or_code] : NULL;
    if (op == NULL || op->serve == NULL) {
        node__reply_error(c, r.m.id, LR_EINVAL, "unknown op");
        goto out;
    }
    /* A query's args say whether any replica may answer it, so they are judged first. */
    if ((op->flags & PROTO_F_STALE) &&
        fsm_query_decode(&n->fsm, r.m.body, &r.q, &r.stale, errmsg) != 0) {
        node__reply_error(c, r.m.id, LR_EINVAL, errmsg);
        goto out;
    }
    /* The one leader check of the RPC (proto.h, PROTO_F_LEADER). */
    if ((op->flags & PROTO_F_LEADER) && !r.stale && raft_state(&n->raft) != RAFT_LEADER) {
        node__reply_not_leader(c, r.m.id);
        goto out;
    }
    /* The one admission check (proto.h, PROTO_F_WRITE): nothing reaches the raft log on a
     * client's behalf while the disk or the LMDB map is nearly full (node_admit.c). */
    if ((op->flags & PROTO_F_WRITE) && !node__admit_write(n)) {
        node__reply_error(c, r.m.id, LR_EUNAVAILABLE, n->admit.reason);
        goto out;
    }
    op->serve(c, &r);
out:
    msgpack_unpacked_destroy(&up);
}

/* ---- raft I/O errors are fatal ------------------------------------------------------------- */

struct node__append {
    struct raft_io_append req;
    struct raft_io_append *orig;
    raft_io_append_cb cb;
    struct node *n;
};

static void node__append_done(struct raft_io_append *req, int status)
{
    struct node__append *w = req->data;
    struct node *n = w->n;
    struct raft_io_append *orig = w->orig;
    raft_io_append_cb cb = w->cb;
    free(w);
    if (status != 0) {
        /* libraft 0.15 keeps leading after a failed disk write (upstream #320). */
        node__fatal(n, "raft log write failed");
    }
    cb(orig, status);
}

static int node__append(struct raft_io *io, struct raft_io_append *req,
                        const struct raft_entry entries[], unsigned nentries, raft_io_append_cb cb)
{
    /* @io is the one raft was given (n->io, or the test decorator wrapping it), so the node
     * is found through raft, which raft_init stored in io->data. */
    struct node *n = (struct node *)((char *)io->data - offsetof(struct node, raft));
    struct node__append *w = malloc(sizeof *w);
    if (w == NULL) {
        node__fatal(n, "out of memory appending to the raft log");
        return RAFT_NOMEM;
    }
    w->orig = req;
    w->cb = cb;
    w->n = n;
    w->req.data = w;
    int rv = n->io_append(io, &w->req, entries, nentries, node__append_done);
    if (rv != 0) {
        free(w);
        node__fatal(n, "raft log append refused");
    }
    return rv;
}

/* ---- start and stop
 * ------------------------------------------------------------------------------ */

/* libraft's trace, at LOG_DEBUG, with the replica's identity like every other line. */
static void node__trace(struct raft_tracer *t, const char *file, int line, const char *message)
{
    struct logger *lg = t->impl;
    LOG(lg, LOG_DEBUG, "raft: %s:%d %s", file, line, message);
}

/* The data directories are the user's alone (keys of the state, players' data): 0700, and an
 * existing one from an older release is tightened too, which also closes the files in it to
 * other users whatever their own modes. */
static int node__mkdir(const char *path, char *errmsg)
{
    if (mkdir(path, 0700) != 0 && (errno != EEXIST || chmod(path, 0700) != 0)) {
        return errmsg_set(errmsg, LR_EIO, "mkdir %s: %s", path, strerror(errno));
    }
    return 0;
}

int node_start(uv_loop_t *loop, const struct node_config *cfg, struct logger *log,
               struct node **out, char *errmsg)
{
    char path[4100];
    struct raft_configuration conf;
    const struct node_peer *me;
    int rv;
    struct node *n = calloc(1, sizeof *n);
    if (n == NULL) {
        return errmsg_set(errmsg, LR_ENOMEM, "node: out of memory");
    }
    n->loop = loop;
    n->log = log;
    n->cfg = *cfg;
    msgpack_sbuffer_init(&n->scratch);
    msgpack_sbuffer_init(&n->qans);
    if (cfg->state_max == 0 || cfg->state_max > FSM_SNAPSHOT_MAX) {
        rv = errmsg_set(errmsg, LR_EINVAL, "node: state_max %llu: 1 to %llu bytes",
                        (unsigned long long)cfg->state_max, (unsigned long long)FSM_SNAPSHOT_MAX);
        goto err_after_alloc;
    }
    if (cfg->audit_days < CMD_AUDIT_DAYS_MIN || cfg->audit_days > CMD_AUDIT_DAYS_MAX) {
        rv = errmsg_set(errmsg, LR_EINVAL, "node: audit_days %u: %d to %d", cfg->audit_days,
                        CMD_AUDIT_DAYS_MIN, CMD_AUDIT_DAYS_MAX);
        goto err_after_alloc;
    }
    if ((me = node__peer(n, cfg->id)) == NULL) {
        rv = errmsg_set(errmsg, LR_EINVAL, "node: id %llu is not among the peers",
                        (unsigned long long)cfg->id);
        goto err_after_alloc;
    }
    /* Without a key anyone who reaches a port can forge raft messages or run admin ops:
     * tolerated only where nobody else can reach it (docs/security.md). */
    if (!cfg->have_cluster_key && (!addr_is_loopback(me->raft) || !addr_is_loopback(me->rpc))) {
        rv = errmsg_set(errmsg, LR_EINVAL,
                        "node: raft %s / rpc %s is not a loopback address and no cluster key is "
                        "configured: pass --cluster-key-file PATH (or set " PEERAUTH_ENV ")",
                        me->raft, me->rpc);
        goto err_after_alloc;
    }
    snprintf(path, sizeof path, "%s/raft", cfg->data_dir);
    if ((rv = node__mkdir(cfg->data_dir, errmsg)) != 0 || (rv = node__mkdir(path, errmsg)) != 0) {
        goto err_after_alloc;
    }
    struct fsm_hooks hooks = {n, node__applied, node__fsm_fatal, node__sub_restored,
                              node__snapshotted};
    /* Each kind keeps its own directory, so a data dir never holds the other's state. */
    enum fsm_kind kind = cfg->meta ? FSM_META : FSM_REGION;
    snprintf(path, sizeof path, "%s/%s", cfg->data_dir, cfg->meta ? "meta" : "shard");
    if ((rv = fsm_init(&n->fsm, kind, path, cfg->region, cfg->fast, &hooks, errmsg)) != 0) {
        goto err_after_alloc;
    }
    node__admit_check(n);
    if ((rv = xport_init(&n->xport, loop, log)) != 0) {
        errmsg_set(errmsg, rv, "node: transport init failed");
        goto err_after_fsm;
    }
    if (n->cfg.have_cluster_key) {
        xport_set_key(&n->xport, &n->cfg.cluster_key);
    }
    snprintf(path, sizeof path, "%s/raft", cfg->data_dir);
    if ((rv = raft_uv_init(&n->io, loop, path, &n->xport)) != 0) {
        rv = errmsg_set(errmsg, LR_EIO, "node: raft io: %s", n->io.errmsg);
        goto err_after_xport;
    }
    /* libraft 0.15's uv backend implements async_work (the worker a snapshot copies on,
     * raft/fsm.c) but calls itself version 1, and raft_init refuses an asynchronous snapshot
     * over a version 1 io. Upstream says 2 from 0.17 on (canonical/raft 269e541). */
    n->io.version = 2;
    raft_uv_set_segment_size(&n->io, 64u << 20);
    raft_uv_set_auto_recovery(&n->io, false);
    n->tracer.impl = log;
    n->tracer.enabled = log->level >= LOG_DEBUG;
    n->tracer.emit = node__trace;
    raft_uv_set_tracer(&n->io, &n->tracer);
    struct raft_io *io = &n->io;
    if (cfg->raft_io_faults[0] != '\0') { /* TEST ONLY: raft/faultio.h */
        if ((rv = faultio_init(&n->faults, &n->io, loop, cfg->raft_io_faults, log, errmsg)) != 0) {
            goto err_after_io;
        }
        io = &n->faults.io;
        LOG(log, LOG_WARN, "TEST ONLY: raft I/O faults from %s (LAUREL_TEST_RAFT_IO_FAULTS)",
            cfg->raft_io_faults);
    }
    /* The fatal check sits above the decorator: an injected failure takes the real path. */
    n->io_append = io->append;
    io->append = node__append;
    fsm_snapshot_on_worker(&n->fsm);
    if ((rv = raft_init(&n->raft, io, &n->fsm.raft_fsm, cfg->id, me->raft)) != 0) {
        rv = errmsg_set(errmsg, LR_EIO, "node: raft init: %s", raft_errmsg(&n->raft));
        goto err_after_io;
    }
    n->fsm.raft = &n->raft;
    raft_set_election_timeout(&n->raft, cfg->election_ms);
    raft_set_heartbeat_timeout(&n->raft, cfg->heartbeat_ms);
    /* libraft drops a snapshot that reaches a follower busy taking its own, and the leader
     * sends it again only after this timeout (30 s by default): a few elections instead, so a
     * returning follower is not left behind for half a minute (seen by test_meta_node). */
    raft_set_install_snapshot_timeout(&n->raft, 5 * cfg->election_ms);
    raft_set_snapshot_threshold(&n->raft, cfg->snapshot_threshold);
    raft_set_snapshot_trailing(&n->raft, cfg->snapshot_trailing);
    raft_set_pre_vote(&n->raft, true);
    if (!cfg->join) {
        raft_configuration_init(&conf);
        for (unsigned i = 0; i < cfg->npeers; i++) {
            if ((rv = raft_configuration_add(&conf, cfg->peers[i].id, cfg->peers[i].raft,
                                             RAFT_VOTER)) != 0) {
                raft_configuration_close(&conf);
                rv = errmsg_set(errmsg, LR_EINVAL, "node: peers: %s", raft_strerror(rv));
                goto err_after_raft;
            }
        }
        rv = raft_bootstrap(&n->raft, &conf);
        raft_configuration_close(&conf);
        if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) { /* CANTBOOTSTRAP: a restart, not an error */
            rv = errmsg_set(errmsg, LR_EIO, "node: bootstrap: %s", raft_errmsg(&n->raft));
            goto err_after_raft;
        }
    }
    if ((rv = raft_start(&n->raft)) != 0) {
        rv = errmsg_set(errmsg, LR_EIO, "node: raft start: %s", raft_errmsg(&n->raft));
        goto err_after_raft;
    }
    if ((rv = conn__listen(n, me->rpc, errmsg)) != 0) {
        goto err_after_raft; /* raft_close below also closes the started raft */
    }
    uv_check_init(loop, &n->check);
    n->check.data = n;
    uv_check_start(&n->check, node__check);
    uv_timer_init(loop, &n->tick);
    n->tick.data = n;
    uv_timer_start(&n->tick, node__tick, 1000, 1000);
    LOG(log, LOG_INFO, "replica started: raft %s, rpc %s, data %s, applied %llu", me->raft, me->rpc,
        cfg->data_dir, (unsigned long long)fsm_applied_index(&n->fsm));
    *out = n;
    return 0;

err_after_raft:
    /* Unwinding a started raft needs the loop; the process is about to exit on this path. */
    n->exit_status = 1;
    *out = n;
    return rv;
err_after_io:
    raft_uv_close(&n->io);
err_after_xport:
    xport_close(&n->xport);
err_after_fsm:
    fsm_close(&n->fsm);
err_after_alloc:
    msgpack_sbuffer_destroy(&n->scratch);
    msgpack_sbuffer_destroy(&n->qans);
    free(n);
    *out = NULL;
    assert(rv != 0);
    return rv;
}

static void node__handle_closed(uv_handle_t *h);

void node__closed(struct node *n)
{
    if (--n->closing_handles > 0) {
        return;
    }
    raft_uv_close(&n->io);
    xport_close(&n->xport);
    fsm_close(&n->fsm);
    msgpack_sbuffer_destroy(&n->scratch);
    msgpack_sbuffer_destroy(&n->qans);
    void (*cb)(void *) = n->stop_cb;
    void *data = n->stop_data;
    free(n);
    if (cb) {
        cb(data);
    }
}

static void node__handle_closed(uv_handle_t *h)
{
    node__closed(h->data);
}

static void node__raft_closed(struct raft *r)
{
    struct node *n = (struct node *)((char *)r - offsetof(struct node, raft));
    node__closed(n);
}

void node_stop(struct node *n, void (*cb)(void *data), void *data)
{
    if (n->stopping) {
        return;
    }
    n->stopping = 1;
    n->stop_cb = cb;
    n->stop_data = data;
    if (n->open) {
        node__fail_batch(n->open, LR_EUNAVAILABLE, "replica stopping");
        node__batch_free(n->open);
        n->open = NULL;
    }
    for (struct node_read *r = n->reads_next, *next; r; r = next) {
        next = r->next;
        node__read_free(r);
    }
    n->reads_next = NULL;
    conn__close_all(n);
    n->closing_handles = 4;
    n->closing_handles += node__peerclock_close_all(n);
    n->listener.data = n;
    uv_close((uv_handle_t *)&n->listener, node__handle_closed);
    uv_check_stop(&n->check);
    uv_close((uv_handle_t *)&n->check, node__handle_closed);
    uv_timer_stop(&n->tick);
    uv_close((uv_handle_t *)&n->tick, node__handle_closed);
    raft_close(&n->raft, node__raft_closed);
}
