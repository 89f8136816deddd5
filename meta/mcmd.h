/* meta/mcmd.h — the metadata group's commands, declared once as data (docs/global-state.md).
 *
 * META_CMDS names every command with its stable wire code and flags; each command's
 * META_<NAME> list names its fields with a kind and bounds. From these the preprocessor
 * generates the enum, the structs, the msgpack encoder and the validating decoder (mcmd.c) and
 * the apply dispatch (apply.c): the pattern of shard/cmd.h. Adding a command is a line in
 * META_CMDS, a field list and a handler.
 *
 * Wire form of one raft entry, as the shard's:
 *     [MCMD_ENTRY_VERSION, [command, command, ...]]  then zero padding (CMD_ENTRY_ALIGN)
 * and of one command:
 *     [code, ts_ms, field1, field2, ...]
 * ts_ms is stamped by the proposer; apply never reads a clock. The decoder reads entries in
 * place with shard/mp.h (no allocation: a header cannot ask for memory its bytes do not
 * back), and decoded strings borrow the entry's buffer. */
#ifndef LAUREL_MCMD_H
#define LAUREL_MCMD_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "../lib/err.h"
#include "../shard/cmd.h"
#include "../shard/mp.h"

#define MCMD_ENTRY_VERSION 1
#define MCMD_ENTRY_MAX 1024 /* commands in one entry */
/* Bytes of a catalog body or a close record: a record of 1000 entries and 1000 rewards in
 * the closer's lean form (router/closer.c) is about 170 KiB. */
#define MCMD_BODY_MAX (256 * 1024)
#define MCMD_TS_MAX 253402300799999 /* 9999-12-31T23:59:59.999Z */

/* Catalog kinds: X(code, NAME, name). Codes are stable on the wire and on disk. */
#define META_KINDS(X)                                                                              \
    X(0, GAME, game)                                                                               \
    X(1, ACHIEVEMENT, achievement)                                                                 \
    X(2, BOARD, board)                                                                             \
    X(3, TOURNAMENT, tournament)

enum meta_kind {
#define MCMD__KENUM(code, NAME, name) META_KIND_##NAME = code,
    META_KINDS(MCMD__KENUM)
#undef MCMD__KENUM
        META_KIND__END
};

/** API name of catalog kind @kind ("game", ...), or NULL. */
const char *mcmd_kind_name(int64_t kind);

/* Field kinds: F(kind, name, a, b)
 *   ID   id of 1..a chars of [A-Za-z0-9_.-] (shard/valid.h)
 *   I64  integer in [a, b]
 *   BIN  opaque bytes, at most b (str or bin on the wire; packed as bin) */
#define META_CLAIM(F)                                                                              \
    F(ID, player_id, VALID_ID_MAX, 0)                                                              \
    F(ID, region, VALID_ID_MAX, 0)

/* body: the shard command's bytes that the regions will apply; opaque to meta. id: the
 * entity's id; an achievement's is "<length of the game id>.<game id>.<achievement id>"
 * (unambiguous, and only of id characters), hence the longer bound. */
#define META_CATALOG_PUT(F)                                                                        \
    F(I64, kind, 0, META_KIND__END - 1)                                                            \
    F(ID, id, 2 * VALID_ID_MAX, 0)                                                                 \
    F(BIN, body, 0, MCMD_BODY_MAX)

/* What meta needs to decide joins; the tournament's full body goes through catalog_put. */
#define META_TOURNAMENT_PUT(F)                                                                     \
    F(ID, tournament_id, VALID_ID_MAX, 0)                                                          \
    F(I64, max_participants, 0, 100000000) /* 0 is refused at apply, with a sentence */            \
    F(I64, start_at_ms, 0, MCMD_TS_MAX)                                                            \
    F(I64, end_at_ms, 0, MCMD_TS_MAX)

#define META_JOIN(F)                                                                               \
    F(ID, tournament_id, VALID_ID_MAX, 0)                                                          \
    F(ID, player_id, VALID_ID_MAX, 0)

/* cycle: the board's cycle number (shard/timefmt.h), 0 for a tournament. */
#define META_CLOSE(F)                                                                              \
    F(ID, board_id, VALID_ID_MAX, 0)                                                               \
    F(I64, cycle, 0, CMD_I64_MAX)                                                                  \
    F(BIN, record, 0, MCMD_BODY_MAX)

/* A region of the cluster (docs/global-state.md, "Adding a region"). rpc: its replicas' RPC
 * addresses as one string "host:port,host:port,..." of 1 to META_REGION_REPLICAS_MAX
 * addresses in the order the router tries them. The codec bounds only its length; apply
 * checks its content (meta__rpc_check), so a bad list is a 400 with a sentence. */
#define META_REGION_RPC_BYTES 2048
#define META_REGION_REPLICAS_MAX 9
#define META_REGIONS_MAX 16 /* regions the list may hold; a region is never removed */

#define META_REGION_PUT(F)                                                                         \
    F(ID, region, VALID_ID_MAX, 0)                                                                 \
    F(BIN, rpc, 0, META_REGION_RPC_BYTES)

/* X(code, NAME, name, flags). Codes are stable: never reuse one. */
#define META_F_STREAMED 1u /* the regions follow it from meta's committed stream (step 4) */

#define META_CMDS(X)                                                                               \
    X(1, CLAIM, claim, 0)                                                                          \
    X(2, CATALOG_PUT, catalog_put, META_F_STREAMED)                                                \
    X(3, TOURNAMENT_PUT, tournament_put, META_F_STREAMED)                                          \
    X(4, JOIN, join, META_F_STREAMED)                                                              \
    X(5, CLOSE, close, META_F_STREAMED)                                                            \
    X(6, REGION_PUT, region_put, 0)

enum mcmd_type {
#define MCMD__ENUM(code, NAME, name, flags) MCMD_##NAME = code,
    META_CMDS(MCMD__ENUM)
#undef MCMD__ENUM
        MCMD__TYPE_END
};

#define MCMD__CTYPE_ID struct lr_str
#define MCMD__CTYPE_BIN struct lr_str
#define MCMD__CTYPE_I64 int64_t
#define MCMD__FIELD_DECL(kind, fname, a, b) MCMD__CTYPE_##kind fname;

#define MCMD__STRUCT(code, NAME, name, flags)                                                      \
    struct mcmd_##name {                                                                           \
        META_##NAME(MCMD__FIELD_DECL)                                                              \
    };
META_CMDS(MCMD__STRUCT)
#undef MCMD__STRUCT

/** One decoded command. Strings borrow the buffer it was decoded from. */
struct mcmd {
    enum mcmd_type type;
    int64_t ts; /* stamped by the proposer, ms since the epoch */
    union {
#define MCMD__UNION(code, NAME, name, flags) struct mcmd_##name name;
        META_CMDS(MCMD__UNION)
#undef MCMD__UNION
    } u;
};

/** Wire name of @type ("claim", ...), or NULL for an unknown type. */
const char *mcmd_name(int64_t type);

/** META_F_* flags of @type (0 for an unknown type). */
unsigned mcmd_flags(int64_t type);

/** Start an entry of @n commands (follow with @n mcmd_encode calls). @return 0 or LR_ENOMEM. */
int mcmd_entry_begin(msgpack_packer *pk, uint32_t n);

/**
 * Encode @c as one command. @return 0, LR_EINVAL if @c's type is unknown, or LR_ENOMEM.
 * Encoding never validates: a proposer that packs garbage gets it refused at apply.
 */
int mcmd_encode(msgpack_packer *pk, const struct mcmd *c);

/**
 * Pad @sb with zero bytes to a multiple of CMD_ENTRY_ALIGN (shard/cmd.h says why).
 * @return 0 or LR_ENOMEM.
 */
int mcmd_entry_pad(msgpack_sbuffer *sb);

/**
 * Decode and validate the one command in @buf (exactly @len bytes).
 * @return 0, or LR_EMALFORMED / LR_EINVAL / LR_EVERSION with a sentence in @errmsg
 * (LR_ERRMSG_SIZE bytes). On error *@c is unspecified. Strings of *@c borrow @buf.
 */
int mcmd_decode(const char *buf, size_t len, struct mcmd *c, char *errmsg);

/** An entry being read: the reader sits before the next command. */
struct mcmd_entry {
    struct mp r;
    uint32_t n;    /* commands in the entry */
    uint32_t next; /* commands read so far */
};

/**
 * Check the envelope of the entry in @buf (borrowed until the last mcmd_next): it must be
 * well-formed msgpack throughout, [version, [commands]], with at most CMD_ENTRY_ALIGN - 1 zero
 * bytes after it. @return 0, or LR_EMALFORMED / LR_EVERSION / LR_ETOOBIG with @errmsg.
 */
int mcmd_entry_decode(const char *buf, size_t len, struct mcmd_entry *e, char *errmsg);

/**
 * Decode the next command of @e (precondition: e->next < e->n). The entry was checked whole,
 * so a refused command still moves @e past it and the next one can be read.
 * @return as mcmd_decode.
 */
int mcmd_next(struct mcmd_entry *e, struct mcmd *c, char *errmsg);

#endif
