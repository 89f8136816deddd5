/* router/upstream.h — the router's link to one region: asynchronous calls to its replicas on
 * the router's uv loop.
 *
 * A call names an op of the replica RPC (proto/proto.h) and whether it needs the leader. The
 * upstream keeps one pipelined connection per replica, remembers which replica leads, follows
 * `not leader` redirects, waits out `unavailable` answers (no leader yet) and dead connections
 * by trying again, until the call's deadline. So a caller sees one of: the replica's answer,
 * or LR_EUNAVAILABLE after the deadline ("may or may not have happened": writes carry
 * idempotency keys, so the router's retry is safe). */
#ifndef LAUREL_UPSTREAM_H
#define LAUREL_UPSTREAM_H

#include <msgpack.h>
#include <stdint.h>
#include <uv.h>

#include "../lib/log.h"
#include "../proto/peerauth.h"

#define UPSTREAM_MAX_REPLICAS 9

struct upstream;     /* Opaque. */
struct upstream_req; /* Opaque outside upstream.c. */

/**
 * The outcome of a call: @code is 0 or an LR_E* code; @payload is the replica's payload (the
 * answer, or an error sentence), NULL when the call timed out. Both are valid only during the
 * callback. The request is freed after the callback returns.
 */
typedef void (*upstream_cb)(void *data, int code, const msgpack_object *payload);

/**
 * Create the link to region @region served by the replicas at @rpc (host:port each, copied):
 * where it starts; it follows the region's membership from there (upstream.c, "Membership").
 * @return 0 and *@out, or LR_E*.
 */
int upstream_new(uv_loop_t *loop, const char *region, const char *const *rpc, unsigned n,
                 struct upstream **out);

/**
 * Call @op with @args (msgpack bytes, copied; NULL for nil) within @timeout_ms. @cb fires
 * exactly once, on the loop, never from inside this call. @return 0, or LR_ENOMEM (then @cb
 * never fires).
 */
int upstream_call(struct upstream *u, int op, int need_leader, const char *args, size_t len,
                  unsigned timeout_ms, upstream_cb cb, void *data);

/**
 * The same, to replica @replica (an index into the @rpc list of upstream_new) and no other,
 * or to the leader or any replica when @replica is -1: how a router reads each replica's
 * status. @return 0, LR_EINVAL (no such replica) or LR_ENOMEM.
 */
int upstream_call_replica(struct upstream *u, int replica, int op, int need_leader,
                          const char *args, size_t len, unsigned timeout_ms, upstream_cb cb,
                          void *data);

/* Commands in one grouped submit at most: the replica refuses a submit of more (docs/rpc.md),
 * and a quarter of an entry's CMD_ENTRY_MAX leaves the leader room to add other submits of the
 * same loop turn to the same entry. */
#define UPSTREAM_SUBMIT_MAX 1024

/**
 * Submit the commands of @args (a msgpack array of 1..UPSTREAM_SUBMIT_MAX commands, as a
 * submit's args; copied) to the region's leader, grouped with the other submits of this loop
 * turn: at the end of the turn every submit made since the last one goes out as one `submit`
 * call of their commands in order (a new group starts whenever the next submit would pass
 * UPSTREAM_SUBMIT_MAX). @cb fires exactly once, on the loop, never from inside this call, as
 * upstream_call's would: with the replica's answer narrowed to this submit's results (a map
 * whose "results" holds exactly this submit's results, in its order), or with the group's
 * error (every member of a group that fails sees the same code and payload: a timeout or a
 * leader change leaves each of their writes "may or may not have happened").
 * @return 0, LR_EINVAL (@args is not such an array: @cb never fires), LR_EUNAVAILABLE
 * (closing) or LR_ENOMEM.
 */
int upstream_submit(struct upstream *u, const char *args, size_t len, unsigned timeout_ms,
                    upstream_cb cb, void *data);

/* What upstream_submit did so far (for /metrics): @rpcs grouped submit calls made (a retry of
 * one is not counted again), carrying @submits upstream_submit calls of @cmds commands. */
struct upstream_stats {
    uint64_t rpcs, submits, cmds;
    uint64_t auth_failures; /* connections to a replica (this link's, evstream's) that failed
                               the cluster-key handshake */
};

/**
 * Open every connection of @u (and of the evstreams on it) with the cluster-key handshake
 * (proto/peerauth.h) as initiator, with @key; failures are counted (upstream_stats) and logged
 * to @log at most once a second. Both borrowed for @u's lifetime. Call right after
 * upstream_new; without it no handshake is done.
 */
void upstream_set_key(struct upstream *u, const struct peerauth_key *key, struct logger *log);

/** The key given to upstream_set_key, or NULL (for evstream, whose connections need it). */
const struct peerauth_key *upstream_key(const struct upstream *u);

/** Count (and log, rate-limited) a failed cluster-key handshake with replica @i: @why is a
 * sentence. */
void upstream_auth_failed(struct upstream *u, unsigned i, const char *why);

/** Fill @out with @u's counters. */
void upstream_stats_get(const struct upstream *u, struct upstream_stats *out);

/** Number of replica slots (those given to upstream_new, then those learnt as the region
 * grew: see upstream_gone), and the RPC address of replica @i (NULL past the end). */
unsigned upstream_replicas(const struct upstream *u);
const char *upstream_address(const struct upstream *u, unsigned i);

/** 1 when replica @i left the region's configuration (a leader's status no longer lists it:
 * upstream.c, "Membership"), else 0. Its index stays valid; calls no longer go to it unless
 * named, and the next replica learnt may take its place. */
int upstream_gone(const struct upstream *u, unsigned i);

/** Replica @i's socket address, resolved once by upstream_new (borrowed for @u's lifetime), or
 * NULL when @i is out of range. For other clients of the same replicas (evstream). */
const struct sockaddr *upstream_sockaddr(const struct upstream *u, unsigned i);

/** Index of the replica believed to lead, or -1. */
int upstream_leader(const struct upstream *u);

/** Region name. */
const char *upstream_region(const struct upstream *u);

/**
 * Close connections and fail pending calls with LR_EUNAVAILABLE; @u is freed once its handles
 * have closed (run the loop). @done (may be NULL) fires then. May be called from inside one of
 * @u's own callbacks: calls are refused from then on, and the rest waits for the next turn.
 */
void upstream_close(struct upstream *u, void (*done)(void *data), void *data);

#endif
