/* proto/proto.h — the client RPC of a replica: length-framed, versioned msgpack over TCP.
 *
 * Frame:    u32 big-endian payload length (1..PROTO_FRAME_MAX), then the payload.
 * Request:  [PROTO_VERSION, id, op, args]
 * Response: [PROTO_VERSION, id, code, payload]   code: 0 or an LR_E* code
 * A subscription answers its request with a stream of responses carrying the same id.
 *
 * Ops and their args / payloads (docs/rpc.md has the full table; PROTO_OPS their flags):
 *   submit     [command, ...]            {"index", "results": [[status, replayed, body], ...]}
 *   query      {query fields}            the shard's answer (a map), or an error sentence
 *   status     nil                       {"id", "region", "role", "term", "leader_id", ...}
 *   subscribe  {"from": index}           stream of {"index", "events": [...]} and
 *                                        {"applied": index} heartbeats
 *   add        {"id", "raft", "rpc"}     nil
 *   remove     {"id"}                    nil
 *   transfer   {"id"}                    nil        (0 = pick one)
 *   readindex  nil                       {"term", "leader", "leader_id", "commit_index",
 *                                        "applied_index"}: a ReadIndex probe (docs/rpc.md)
 * Errors: LR_ENOTLEADER with {"leader_id", "leader_rpc", "retry_ms"} (LR_EUNAVAILABLE with the
 * same map, ids null, while no leader is known), anything else with a sentence. */
#ifndef LAUREL_PROTO_H
#define LAUREL_PROTO_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "../shard/shard.h"

#define PROTO_VERSION 1
#define PROTO_FRAME_MAX (8u << 20)

/* What a replica requires of an op before it serves it: its flags in PROTO_OPS. The node's
 * dispatch is generated from that list and reads the flags from it (node/node.c), so an op's
 * rules are declared here once, next to its code and name. */
enum proto_flag {
    /* Only the leader serves it. Any other replica answers LR_ENOTLEADER with {"leader_id",
     * "leader_rpc", "retry_ms"}, or LR_EUNAVAILABLE with that map (ids null) while it knows of
     * no leader. It answers so before judging the args (PROTO_F_STALE aside), so a client is
     * sent to the leader rather than corrected by a replica that would not serve it anyway.
     * Writes and membership changes are raft requests only a leader can start; a
     * linearizable read needs the leader's applied state (docs/durability.md, "Reads"). */
    PROTO_F_LEADER = 1u << 0,
    /* The args are a query (proto_query_decode), and "stale": true in them lifts
     * PROTO_F_LEADER for that request: any replica answers from its applied state. The args
     * are therefore decoded, and bad ones refused with LR_EINVAL, before the replica looks at
     * its role (docs/durability.md, "Reads"). */
    PROTO_F_STALE = 1u << 1,
    /* An operator's op: it changes the membership, or streams every committed event of the
     * region. Declared only, for now: a replica serves it like any other op, and a cluster
     * key will be required for it later. */
    PROTO_F_ADMIN = 1u << 2,
    /* Answered by a stream of responses with the request's id until the connection closes
     * (or the replica refuses it with one error), not by one response. */
    PROTO_F_STREAM = 1u << 3,
    /* It appends to the raft log on a client's behalf (a write, a membership change). While
     * the leader's admission control finds its disk or LMDB map nearly full, it answers
     * LR_EUNAVAILABLE with a sentence saying so, and proposes nothing (node/node_admit.c,
     * docs/durability.md "Full disks"); reads, ReadIndex and raft's own traffic go on. */
    PROTO_F_WRITE = 1u << 4,
};

/* X(code, NAME, name, flags): the wire code, the enum name, the wire name and the flags. */
#define PROTO_OPS(X)                                                                               \
    X(1, SUBMIT, submit, PROTO_F_LEADER | PROTO_F_WRITE)                                           \
    X(2, QUERY, query, PROTO_F_LEADER | PROTO_F_STALE)                                             \
    X(3, STATUS, status, 0)                                                                        \
    X(4, SUBSCRIBE, subscribe, PROTO_F_ADMIN | PROTO_F_STREAM)                                     \
    X(5, ADD, add, PROTO_F_LEADER | PROTO_F_ADMIN | PROTO_F_WRITE)                                 \
    X(6, REMOVE, remove, PROTO_F_LEADER | PROTO_F_ADMIN | PROTO_F_WRITE)                           \
    X(7, TRANSFER, transfer, PROTO_F_LEADER | PROTO_F_ADMIN)                                       \
    X(8, READINDEX, readindex, 0)

enum proto_op {
#define PROTO__ENUM(code, NAME, name, flags) PROTO_OP_##NAME = code,
    PROTO_OPS(PROTO__ENUM)
#undef PROTO__ENUM
        PROTO_OP__END /* one past the highest code: the codes above are listed in order */
};

/** Name of @op ("submit", ...), or NULL when @op is not one of PROTO_OPS. */
const char *proto_op_name(int op);

/** Flags of @op (PROTO_F_*), or 0 when @op is not one of PROTO_OPS (see proto_op_name). */
unsigned proto_op_flags(int op);

/* ---- framing ---------------------------------------------------------------------------- */

/** Accumulates stream bytes and cuts frames into payloads. */
struct proto_reader {
    char *buf;
    size_t len, cap, off;
};

void proto_reader_init(struct proto_reader *r);
void proto_reader_free(struct proto_reader *r);
/** Append @n bytes. @return 0 or LR_ENOMEM. */
int proto_reader_feed(struct proto_reader *r, const char *p, size_t n);
/**
 * Next complete frame: 1 and *@p, *@n (valid until the next feed or next call); 0 when more
 * bytes are needed; LR_ETOOBIG for a length of 0 or above PROTO_FRAME_MAX (close the stream).
 */
int proto_reader_next(struct proto_reader *r, const char **p, size_t *n);

/** Start a frame in @sb: reserves the length prefix; finish with proto_frame_end. */
void proto_frame_begin(msgpack_sbuffer *sb, size_t *mark);
/** Write the length of the frame begun at @mark. */
void proto_frame_end(msgpack_sbuffer *sb, size_t mark);

/**
 * Unpack one whole msgpack value from @p/@n into @up (msgpack_unpacked_init'ed by the
 * caller), refusing trailing bytes and any header whose counts the bytes cannot back (so
 * hostile input cannot make msgpack-c allocate). @return 0 or LR_EMALFORMED.
 */
int proto_unpack(const char *p, size_t n, msgpack_unpacked *up);

/* ---- messages ------------------------------------------------------------------------------ */

struct proto_msg {
    uint64_t id;
    int op_or_code; /* request: op; response: code */
    const msgpack_object *body;
};

/** Read a request or response envelope from @o. @return 0, LR_EMALFORMED or LR_EVERSION. */
int proto_msg_decode(const msgpack_object *o, struct proto_msg *m);

/** Pack the envelope header [version, id, op_or_code, ...]; the caller packs one more value. */
void proto_msg_begin(msgpack_packer *pk, uint64_t id, int op_or_code);

/* ---- queries -------------------------------------------------------------------------------- */

/** Pack @q (and whether a stale read is fine) as a query's args. */
void proto_query_encode(msgpack_packer *pk, const struct shard_query *q, int stale);

/**
 * Decode query args @o into @q (strings borrow @o) and *@stale.
 * @return 0 or LR_EINVAL with @errmsg.
 */
int proto_query_decode(const msgpack_object *o, struct shard_query *q, int *stale, char *errmsg);

/* ---- small map helpers ------------------------------------------------------------------- */

/** Value of @key in map @o, or NULL. */
const msgpack_object *proto_map_get(const msgpack_object *o, const char *key);
/** Integer value (either msgpack integer type). @return 0, or LR_EINVAL (also for NULL, so
 * proto_map_get's answer can be passed as it is). */
int proto_obj_i64(const msgpack_object *o, int64_t *v);
/** Pack a NUL-terminated key. */
void proto_pack_key(msgpack_packer *pk, const char *k);

#endif
