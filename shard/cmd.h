/* shard/cmd.h — the region's commands, declared once as data.
 *
 * CMD_LIST names every command with its stable wire code; each command's CMD_<NAME> list names
 * its fields with a type and bounds. From these two lists the preprocessor generates the enum,
 * the structs, the msgpack encoder and the validating decoder (cmd.c), the request hash used by
 * idempotency keys, and the apply dispatch table (apply.c). Adding a command is adding a line
 * to CMD_LIST, a field list, and its apply handler.
 *
 * Wire form of one raft entry (docs/data-layout.md):
 *     [CMD_ENTRY_VERSION, [command, command, ...]]
 * and of one command:
 *     [code, ts_ms, field1, field2, ...]            or
 *     [code, ts_ms, field1, field2, ..., [key, source]]
 * ts_ms is stamped by the proposer (the leader's clock); apply never reads a clock. The
 * optional last element is the command's origin (struct cmd_origin), which the router stamps
 * for the audit trail; commands logged before it existed simply lack it. Decoded strings
 * borrow the entry's buffer.
 *
 * An entry is followed by zero bytes up to a multiple of CMD_ENTRY_ALIGN. libraft 0.15 lays
 * entry data out at 8-byte strides in some paths and not in others; an entry whose length is
 * not a multiple of 8 reached a catching-up follower with shifted bytes (found by
 * tests/integration/test_node.c). Padded entries make both layouts the same. */
#ifndef LAUREL_CMD_H
#define LAUREL_CMD_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "valid.h"

#define CMD_ENTRY_VERSION 1
#define CMD_ENTRY_ALIGN 8
#define CMD_ENTRY_MAX 4096 /* commands in one entry */
#define CMD_PRIZES_MAX 32  /* reward bands of one board or tournament */

/** A borrowed byte string (not NUL-terminated). */
struct lr_str {
    const char *p;
    uint32_t len;
};

/** @s (NUL-terminated, borrowed; NULL reads as "") as an lr_str. */
static inline struct lr_str lr_str_of(const char *s)
{
    struct lr_str r = {s ? s : "", s ? (uint32_t)strlen(s) : 0};
    return r;
}

struct cmd_prize {
    int64_t rank_from;
    int64_t rank_to;
    struct lr_str reward;
};

struct cmd_prizes {
    uint32_t n;
    struct cmd_prize items[CMD_PRIZES_MAX];
};

/* Board order and operator codes (stable on the wire and on disk). */
enum { CMD_ORDER_DESC = 0, CMD_ORDER_ASC = 1 };
enum { CMD_OP_BEST = 0, CMD_OP_SET = 1, CMD_OP_INCR = 2, CMD_OP_DECR = 3 };

/* Field kinds: F(kind, name, a, b)
 *   ID     id of 1..a chars of [A-Za-z0-9_.-]
 *   OPTID  empty, or an ID of 1..a chars
 *   TEXT   UTF-8 of a..b code points
 *   IDEM   empty (no key), or an idempotency key
 *   I64    integer in [a, b]
 *   BOOL   true/false
 *   META   empty, or a compact JSON object of at most VALID_METADATA_MAX bytes (the router
 *          parsed it; the shard only bounds it)
 *   PRIZES up to CMD_PRIZES_MAX [rank_from, rank_to, reward] bands */
#define CMD_I64_MAX INT64_MAX
#define CMD_I64_MIN INT64_MIN

/* Catalog commands carry a version the router stamps (its clock in ms, strictly increasing
 * per router): a region applies a catalog put only if its version is at least the stored
 * one, so re-sending a put to a region that missed it (router/route_catalog.c) can never
 * undo a newer one, whatever the order of arrival. 0 = unversioned (always applies). */
#define CMD_GAME_PUT(F)                                                                            \
    F(ID, game_id, VALID_GAME_ID_MAX, 0)                                                           \
    F(TEXT, name, 1, VALID_NAME_MAX)                                                               \
    F(I64, version, 0, CMD_I64_MAX)

#define CMD_ACH_PUT(F)                                                                             \
    F(ID, game_id, VALID_GAME_ID_MAX, 0)                                                           \
    F(ID, achievement_id, VALID_ID_MAX, 0)                                                         \
    F(TEXT, name, 1, VALID_NAME_MAX)                                                               \
    F(TEXT, description, 0, VALID_DESC_MAX)                                                        \
    F(I64, points, 0, VALID_SCORE_MAX)                                                             \
    F(BOOL, hidden, 0, 0)                                                                          \
    F(I64, steps, 1, 1000000000)                                                                   \
    F(I64, version, 0, CMD_I64_MAX)

/* keep_periods: how many past periods of each dated window (daily, weekly, monthly, cycle)
 * stay readable besides the current one; older ones are evicted (docs/data-layout.md,
 * "Eviction of past periods"). A put that leaves it 0 gets the default, so a command built by
 * zeroing its struct means what the API's omitted field means. */
#define CMD_KEEP_PERIODS_DEFAULT 8
#define CMD_KEEP_PERIODS_MAX 1000

#define CMD_BOARD_PUT(F)                                                                           \
    F(ID, board_id, VALID_ID_MAX, 0)                                                               \
    F(I64, order, CMD_ORDER_DESC, CMD_ORDER_ASC)                                                   \
    F(I64, op, CMD_OP_BEST, CMD_OP_DECR)                                                           \
    F(I64, windows, 1, 15)               /* bit per TIMEFMT_ALLTIME..TIMEFMT_MONTHLY */            \
    F(I64, reset_period_s, 0, 315360000) /* 0 = no cycles, else >= 60 */                           \
    F(I64, snapshot_top, 0, 1000)                                                                  \
    F(PRIZES, rewards, 0, 0)                                                                       \
    F(OPTID, game_id, VALID_GAME_ID_MAX, 0)                                                        \
    F(I64, keep_periods, 0, CMD_KEEP_PERIODS_MAX) /* 0 = CMD_KEEP_PERIODS_DEFAULT */               \
    F(I64, version, 0, CMD_I64_MAX)

#define CMD_TOURNAMENT_PUT(F)                                                                      \
    F(ID, tournament_id, VALID_ID_MAX, 0)                                                          \
    F(TEXT, name, 1, VALID_NAME_MAX)                                                               \
    F(I64, order, CMD_ORDER_DESC, CMD_ORDER_ASC)                                                   \
    F(I64, op, CMD_OP_BEST, CMD_OP_DECR)                                                           \
    F(I64, start_ms, 0, 253402300799999)                                                           \
    F(I64, end_ms, 0, 253402300799999)                                                             \
    F(I64, max_participants, 0, 100000000) /* 0 = unlimited */                                     \
    F(I64, max_attempts, 0, 100000000)     /* 0 = unlimited */                                     \
    F(PRIZES, prizes, 0, 0)                                                                        \
    F(I64, version, 0, CMD_I64_MAX)

#define CMD_TOURNAMENT_JOIN(F)                                                                     \
    F(ID, tournament_id, VALID_ID_MAX, 0)                                                          \
    F(ID, player_id, VALID_ID_MAX, 0)                                                              \
    F(IDEM, idempotency_key, 0, 0)

/* The catalog of the metadata group reaches a region as its puts (versioned by meta's log
 * index) followed, in the same entry, by this mark: every catalog change of meta up to
 * @through has now been applied here (docs/global-state.md, "Catalog changes"). The stored
 * mark only grows; a carrier reads it to know where to resume. */
#define CMD_CATALOG_MARK(F) F(I64, through, 0, CMD_I64_MAX)

#define CMD_PLAYER_PUT(F)                                                                          \
    F(ID, player_id, VALID_ID_MAX, 0)                                                              \
    F(TEXT, name, 1, VALID_NAME_MAX)                                                               \
    F(ID, region, VALID_ID_MAX, 0)                                                                 \
    F(OPTID, guild, VALID_ID_MAX, 0)

#define CMD_UNLOCK(F)                                                                              \
    F(ID, player_id, VALID_ID_MAX, 0)                                                              \
    F(ID, game_id, VALID_GAME_ID_MAX, 0)                                                           \
    F(ID, achievement_id, VALID_ID_MAX, 0)                                                         \
    F(I64, steps, 0, 1000000000) /* 0 = all remaining */                                           \
    F(IDEM, idempotency_key, 0, 0)

#define CMD_SCORE(F)                                                                               \
    F(ID, board_id, VALID_ID_MAX, 0)                                                               \
    F(ID, player_id, VALID_ID_MAX, 0)                                                              \
    F(I64, score, -VALID_SCORE_MAX, VALID_SCORE_MAX)                                               \
    F(I64, subscore, -VALID_SCORE_MAX, VALID_SCORE_MAX)                                            \
    F(META, metadata, 0, 0)                                                                        \
    F(IDEM, idempotency_key, 0, 0)

/* Rewards of a closed cycle, or of an ended tournament (cycle 0), live in the rewarded
 * player's region (docs/global-state.md, "Cycle closes" and "Claims"). The closer submits one
 * grant per rewarded player of the region; a grant is keyed by (player, board, cycle), so a
 * closer that repeats itself after a crash grants once and sends `reward.granted` once. */
#define CMD_REWARD_GRANT(F)                                                                        \
    F(ID, board_id, VALID_ID_MAX, 0)                                                               \
    F(I64, cycle, 0, CMD_I64_MAX)                                                                  \
    F(ID, player_id, VALID_ID_MAX, 0)                                                              \
    F(I64, rank, 1, 1000000)                                                                       \
    F(TEXT, reward, 1, VALID_REWARD_MAX)

/* A player claims a granted reward once: claimed_at is set by the first claim and never
 * changes; a claim under another key is a conflict. */
#define CMD_REWARD_CLAIM(F)                                                                        \
    F(ID, player_id, VALID_ID_MAX, 0)                                                              \
    F(ID, board_id, VALID_ID_MAX, 0)                                                               \
    F(I64, cycle, 0, CMD_I64_MAX)                                                                  \
    F(IDEM, idempotency_key, 0, 0)

/* How many days the region keeps its audit trail (docs/api.md, "Audit"). The retention is
 * replicated state, not a replica's setting: a leader whose --audit-days differs from the
 * applied value proposes this command, and every replica purges by the applied value and the
 * commands' stamps, so every replica holds the same trail and the same digest. */
#define CMD_AUDIT_DAYS_MIN 30
#define CMD_AUDIT_DAYS_MAX 36500
#define CMD_AUDIT_DAYS(F) F(I64, days, CMD_AUDIT_DAYS_MIN, CMD_AUDIT_DAYS_MAX)

/* The audit trail (API.md "Audit"; docs/api.md): the player writes a region records, each as
 * X(NAME, name, action) with the action name the API shows. Every one has a player_id field,
 * the player whose trail it joins. */
#define CMD_AUDITED(X)                                                                             \
    X(SCORE, score, "score")                                                                       \
    X(UNLOCK, unlock, "unlock")                                                                    \
    X(TOURNAMENT_JOIN, tournament_join, "join")                                                    \
    X(REWARD_CLAIM, reward_claim, "claim")                                                         \
    X(PLAYER_PUT, player_put, "player")

/* X(code, NAME, name, flags). Codes are stable: never reuse one. */
#define CMD_F_IDEMPOTENT 1u /* carries an idempotency_key scoped to its player_id */

#define CMD_LIST(X)                                                                                \
    X(1, GAME_PUT, game_put, 0)                                                                    \
    X(2, ACH_PUT, ach_put, 0)                                                                      \
    X(3, BOARD_PUT, board_put, 0)                                                                  \
    X(4, TOURNAMENT_PUT, tournament_put, 0)                                                        \
    X(5, TOURNAMENT_JOIN, tournament_join, CMD_F_IDEMPOTENT)                                       \
    X(6, PLAYER_PUT, player_put, 0)                                                                \
    X(7, UNLOCK, unlock, CMD_F_IDEMPOTENT)                                                         \
    X(8, SCORE, score, CMD_F_IDEMPOTENT)                                                           \
    X(9, CATALOG_MARK, catalog_mark, 0)                                                            \
    X(10, REWARD_GRANT, reward_grant, 0)                                                           \
    X(11, REWARD_CLAIM, reward_claim, CMD_F_IDEMPOTENT)                                            \
    X(12, AUDIT_DAYS, audit_days, 0)

enum cmd_type {
#define CMD__ENUM(code, NAME, name, flags) CMD_##NAME = code,
    CMD_LIST(CMD__ENUM)
#undef CMD__ENUM
        CMD__TYPE_END
};

#define CMD__CTYPE_ID struct lr_str
#define CMD__CTYPE_OPTID struct lr_str
#define CMD__CTYPE_TEXT struct lr_str
#define CMD__CTYPE_IDEM struct lr_str
#define CMD__CTYPE_META struct lr_str
#define CMD__CTYPE_I64 int64_t
#define CMD__CTYPE_BOOL int
#define CMD__CTYPE_PRIZES struct cmd_prizes
#define CMD__FIELD_DECL(kind, fname, a, b) CMD__CTYPE_##kind fname;

#define CMD__STRUCT(code, NAME, name, flags)                                                       \
    struct cmd_##name {                                                                            \
        CMD_##NAME(CMD__FIELD_DECL)                                                                \
    };
CMD_LIST(CMD__STRUCT)
#undef CMD__STRUCT

/* Which key class sent a command (stable on the wire and on disk). NONE: not stamped (a
 * command of the closer or the catalog carrier, or logged before origins existed). */
#define CMD_KEYS(X)                                                                                \
    X(NONE, 0, NULL)                                                                               \
    X(API, 1, "api")                                                                               \
    X(ADMIN, 2, "admin")

enum cmd_key {
#define CMD__KEY_ENUM(NAME, code, text) CMD_KEY_##NAME = code,
    CMD_KEYS(CMD__KEY_ENUM)
#undef CMD__KEY_ENUM
};

/* The longest source address: an IPv6 address with a zone (INET6_ADDRSTRLEN is 46). */
#define CMD_SOURCE_MAX 64

/* Who sent a command: the router stamps it from the request (the key class that passed its
 * check and the peer address it saw, as text) so the audit trail can say. It is not part of the
 * request hash: a retry from another address, or with another key, is still the same request. */
struct cmd_origin {
    int64_t key;          /* enum cmd_key; CMD_KEY_NONE: no origin (encoded without one) */
    struct lr_str source; /* 0 to CMD_SOURCE_MAX chars of [0-9A-Za-z.:%_-]; "" when unknown */
};

/** One decoded command. Strings borrow the buffer it was decoded from. */
struct cmd {
    enum cmd_type type;
    int64_t ts; /* stamped by the proposer, ms since the epoch */
    struct cmd_origin origin;
    union {
#define CMD__UNION(code, NAME, name, flags) struct cmd_##name name;
        CMD_LIST(CMD__UNION)
#undef CMD__UNION
    } u;
};

/** Wire name of @type ("score", ...), or NULL for an unknown type. */
const char *cmd_name(int type);

/** CMD_F_* flags of @type (0 for an unknown type). */
unsigned cmd_flags(int type);

/** The audit action of @type ("score", "join", ...; CMD_AUDITED), or NULL when commands of
 * @type are not audited. */
const char *cmd_audit_action(int type);

/** The player whose audit trail @c joins (its player_id field), or NULL when @c's type is not
 * audited. Borrowed from @c. */
const struct lr_str *cmd_audit_player(const struct cmd *c);

/** 1 if @s may be an origin's source (CMD_SOURCE_MAX chars of [0-9A-Za-z.:%_-]). */
int cmd_source_valid(struct lr_str s);

/** The text of key class @key ("api", "admin"), or NULL for CMD_KEY_NONE or an unknown one. */
const char *cmd_key_name(int64_t key);

/* Catalog puts (games, achievements, boards, tournaments) carry a version and name an id: the
 * metadata group records them and the regions apply them by version (docs/global-state.md). */
/** The version field of @c, or NULL when @c is not a catalog put. */
int64_t *cmd_catalog_version(struct cmd *c);
/** The id @c puts (the achievement's own id for an achievement), or NULL when @c is not a
 * catalog put. */
const struct lr_str *cmd_catalog_id(const struct cmd *c);

/**
 * Encode @c as one command, with its origin unless c->origin.key is CMD_KEY_NONE.
 * @return 0, or LR_EINVAL if @c's type is unknown.
 * Encoding never validates: a proposer that packs garbage gets it rejected at apply.
 */
int cmd_encode(msgpack_packer *pk, const struct cmd *c);

/** Start an entry of @n commands (follow with @n cmd_encode calls). */
int cmd_entry_begin(msgpack_packer *pk, uint32_t n);

/**
 * Decode and validate one command from @obj (an element of an entry's command array); one
 * without an origin decodes with c->origin.key CMD_KEY_NONE and an empty source.
 * @return 0, or LR_EMALFORMED / LR_EINVAL / LR_EVERSION with a sentence in @errmsg
 * (LR_ERRMSG_SIZE bytes). On error *@c is unspecified.
 */
int cmd_decode(const msgpack_object *obj, struct cmd *c, char *errmsg);

/** A decoded entry: its command array. Borrowed from the msgpack_unpacked it came from. */
struct cmd_entry {
    const msgpack_object *cmds;
    uint32_t n;
};

/**
 * Decode the envelope of an entry in @buf. @up must be initialised (msgpack_unpacked_init) by
 * the caller, who destroys it after the last use of @e and of the commands decoded from it.
 * @return 0, or LR_EMALFORMED / LR_EVERSION / LR_ETOOBIG with @errmsg.
 */
int cmd_entry_decode(const char *buf, size_t len, msgpack_unpacked *up, struct cmd_entry *e,
                     char *errmsg);

/**
 * Hash of the request a command carries, excluding ts and its idempotency key: two requests
 * are "the same body" for API.md's idempotency rule iff their hashes are equal.
 */
uint64_t cmd_request_hash(const struct cmd *c);

/** The idempotency key and player of @c, if its type carries them (else len 0). */
void cmd_idem(const struct cmd *c, struct lr_str *player, struct lr_str *key);

#endif
