/* node/node_clock.c — the leader's time stamps (docs/durability.md, "Time stamps").
 *
 * Apply never reads a clock: it derives every period (daily, weekly, monthly, cycle) from the
 * stamp a leader wrote into each command. So a leader must never stamp below a stamp already
 * applied, or a new leader with a slower clock could put a write into a period that is over.
 * The invariant: every stamp a leader proposes is >= every stamp applied before it in the log.
 *
 * Three rules keep it and bound it. (1) A stamp is max(this clock, the highest stamp applied here
 * (fsm_clock_ms), the highest stamp this node issued). (2) A leader proposes nothing before an
 * entry of its own term is applied here (n->read_term, set by the barrier in node.c): until
 * then, entries of earlier terms, possibly stamped later by another leader, may still wait in
 * its log uncommitted. (3) A stamp is never more than NODE_CLOCK_TOLERANCE_MS ahead of the clock a
 * majority of the voters keeps (node_peerclock.c): one leader with a clock hours fast would
 * otherwise drag every later stamp ahead and expire idempotency keys early. A leader without a
 * quorum of fresh clock samples holds writes like (2). Commands that join a held batch carry a
 * provisional stamp (the applied clock, recorded nowhere); when the hold ends, the flush raises
 * every stamp of the batch to node__stamp of that moment. Each stamp is packed in msgpack's fixed
 * 9-byte int64 form (0xd3 and 8 bytes big-endian, which the decoder reads like any other integer)
 * at an offset the batch remembers, so raising it rewrites 8 bytes in place and the batch stays one
 * entry. */
#include <assert.h>
#include <stdlib.h>
#include <time.h>

#include "node_int.h"

int64_t node__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int node__term_ready(struct node *n)
{
    return raft_state(&n->raft) != RAFT_LEADER ||
           n->read_term == n->raft.current_term; /* raft_state takes no const */
}

int node__may_propose(struct node *n)
{
    int64_t offset;
    return node__term_ready(n) &&
           (raft_state(&n->raft) != RAFT_LEADER || node__peerclock_offset(n, &offset));
}

int64_t node__stamp(struct node *n)
{
    int64_t ts = node__now_ms(), applied = fsm_clock_ms(&n->fsm), offset;
    /* Rule (3): never ahead of the majority's clock by more than the tolerance. Only a
     * leader proposes, and it proposes only with a quorum of samples (node__may_propose). */
    if (raft_state(&n->raft) == RAFT_LEADER && node__peerclock_offset(n, &offset) &&
        offset < -NODE_CLOCK_TOLERANCE_MS) {
        ts += offset + NODE_CLOCK_TOLERANCE_MS;
    }
    ts = ts > applied ? ts : applied;
    ts = ts > n->stamp_issued ? ts : n->stamp_issued;
    n->stamp_issued = ts;
    return ts;
}

int node__batch_reserve_stamps(struct node_batch *b, uint32_t count)
{
    if (b->nts + count <= b->capts) {
        return 0;
    }
    uint32_t ncap = b->capts ? b->capts : 64;
    while (ncap < b->nts + count) {
        ncap *= 2;
    }
    size_t *off = realloc(b->ts_off, ncap * sizeof *off);
    if (off == NULL) {
        return LR_ENOMEM;
    }
    b->ts_off = off;
    b->capts = ncap;
    return 0;
}

/* Stamp @ts into command @o and append it to @b. Commands are otherwise copied as they came:
 * a malformed one still enters the log and applies as a no-op with an error result, which
 * keeps one path for every failure. The caller reserved a stamp slot per command. */
void node__append_cmd(struct node_batch *b, const msgpack_object *o, int64_t ts)
{
    if (o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size >= 2) {
        msgpack_pack_array(&b->pk, o->via.array.size);
        msgpack_pack_object(&b->pk, o->via.array.ptr[0]);
        if (b->nts == 0) {
            b->ts_min = ts; /* stamps of one batch never decrease (node__stamp) */
        }
        b->ts_off[b->nts++] = b->sb.size;
        msgpack_pack_fix_int64(&b->pk, ts);
        for (uint32_t i = 2; i < o->via.array.size; i++) {
            msgpack_pack_object(&b->pk, o->via.array.ptr[i]);
        }
    } else {
        msgpack_pack_object(&b->pk, *o);
    }
    b->ncmds++;
}

void node__restamp(struct node *n, struct node_batch *b)
{
    /* A held batch's stamps were provisional (the applied clock): the batch takes the stamp
     * of the moment it is proposed, when the majority's clock is known. */
    int64_t floor = b->held ? node__stamp(n) : fsm_clock_ms(&n->fsm);
    if (b->nts == 0 || floor <= b->ts_min) {
        return; /* the usual case: no stamp of the batch is below what was applied */
    }
    for (uint32_t i = 0; i < b->nts; i++) {
        unsigned char *p = (unsigned char *)b->sb.data + b->ts_off[i];
        int64_t ts = 0;
        assert(p[0] == 0xd3); /* msgpack_pack_fix_int64 wrote it */
        for (int k = 1; k <= 8; k++) {
            ts = (int64_t)((uint64_t)ts << 8 | p[k]);
        }
        if (ts >= floor) {
            break; /* stamps of one batch never decrease */
        }
        for (int k = 8; k >= 1; k--) {
            p[k] = (unsigned char)((uint64_t)floor >> (8 * (8 - k)));
        }
    }
    b->ts_min = floor;
    n->stamp_issued = n->stamp_issued > floor ? n->stamp_issued : floor;
}
