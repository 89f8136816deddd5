/* meta/meta_int.h — internals shared by the files of the meta module (not for other modules;
 * tests reach meta through meta.h).
 *
 * Databases and records (msgpack arrays that start with META__REC_VERSION; multi-part keys
 * join ids with NUL, which ids never hold, and write integers big-endian so LMDB's bytewise
 * order is numeric order):
 *   meta         "applied", "clock" (u64 BE), "group" = "meta", and the store's digest
 *   directory    player_id                  -> [v, region, claimed_ms]
 *   catalog      kind (1 byte) id           -> [v, version]
 *   catalog_log  version (u64) seq (u32)    -> [v, kind, id, body]   (seq: position in entry)
 *   tournaments  tournament_id              -> [v, max_participants, start_ms, end_ms, count]
 *   admissions   tournament_id NUL player   -> [v, admitted_ms, number]
 *   closes       board_id NUL cycle (u64)   -> [v, closed_ms, record]
 *   regions      region                     -> [v, rpc, added_ms, version]
 * A catalog body is stored once, in the log; the catalog names the version that holds it. */
#ifndef LAUREL_META_INT_H
#define LAUREL_META_INT_H

#include <msgpack.h>
#include <stdint.h>

#include "../shard/store.h"
#include "meta.h"

#define META_DBS(X)                                                                                \
    X(STATE, "meta")                                                                               \
    X(DIRECTORY, "directory")                                                                      \
    X(CATALOG, "catalog")                                                                          \
    X(CATLOG, "catalog_log")                                                                       \
    X(TOURNS, "tournaments")                                                                       \
    X(ADMITS, "admissions")                                                                        \
    X(CLOSES, "closes")                                                                            \
    X(REGIONS, "regions")

enum meta__db {
#define META__DBENUM(NAME, str) META__DB_##NAME,
    META_DBS(META__DBENUM)
#undef META__DBENUM
        META__NDBS
};

/* The store speaks its own enum (shard/store.h, store_open_dbs): one conversion, here. */
#define META__DB(NAME) ((enum store_db)META__DB_##NAME)

#define META__REC_VERSION 1

struct meta {
    struct store *st;
    uint64_t applied; /* last applied index, including the open group */
    uint64_t applied_committed;
    int64_t clock_ms;     /* highest command stamp applied, including the open group */
    msgpack_sbuffer rbuf; /* record being written */
    msgpack_packer rpk;
    msgpack_sbuffer obuf; /* result being built */
    msgpack_packer opk;
    char errmsg[LR_ERRMSG_SIZE];
};

/* ---- keys (meta.c) ----------------------------------------------------------------------- */

#define META__KEY_MAX (2 * VALID_ID_MAX + 16)
struct meta__key {
    unsigned char b[META__KEY_MAX];
    size_t len;
};
void meta__key_init(struct meta__key *k);
void meta__key_str(struct meta__key *k, struct lr_str s);  /* bytes only */
void meta__key_strz(struct meta__key *k, struct lr_str s); /* bytes and a NUL */
void meta__key_u64(struct meta__key *k, uint64_t v);
uint64_t meta__get_u64(const unsigned char *p);

void meta__key_id(struct meta__key *k, struct lr_str player);
void meta__key_catalog(struct meta__key *k, int64_t kind, struct lr_str id);
void meta__key_catlog(struct meta__key *k, uint64_t version, uint32_t seq);
void meta__key_admit(struct meta__key *k, struct lr_str tournament, struct lr_str player);
void meta__key_close(struct meta__key *k, struct lr_str board, int64_t cycle);

/* ---- records (meta.c): each getter returns 0, LR_ENOTFOUND, LR_ECORRUPT or LR_E*. Strings
 * point into LMDB and are valid until the next write of the transaction. ----------------- */

struct meta__claim {
    struct lr_str region;
    int64_t claimed_ms;
};
struct meta__tourn {
    int64_t cap, start_ms, end_ms, participants;
};
struct meta__admit {
    int64_t admitted_ms, number;
};
struct meta__close {
    int64_t closed_ms;
    struct lr_str record;
};
/* rpc as the command gave it: "host:port,..." (checked by meta__rpc_check before it was
 * stored). version: the raft index of the last put that changed it. */
struct meta__region {
    struct lr_str rpc;
    int64_t added_ms;
    uint64_t version;
};
struct meta__change {
    uint64_t version;
    uint32_t seq;
    int64_t kind;
    struct lr_str id, body;
};

int meta__claim_get(struct meta *m, struct lr_str player, struct meta__claim *r);
int meta__tourn_get(struct meta *m, struct lr_str tournament, struct meta__tourn *r);
int meta__admit_get(struct meta *m, struct lr_str tournament, struct lr_str player,
                    struct meta__admit *r);
int meta__close_get(struct meta *m, struct lr_str board, int64_t cycle, struct meta__close *r);
int meta__region_get(struct meta *m, struct lr_str region, struct meta__region *r);
/** Read one regions record (key and value as LMDB gave them) into *@id and *@r.
 * 0 or LR_ECORRUPT. */
int meta__region_read(const MDB_val *k, const MDB_val *v, struct lr_str *id,
                      struct meta__region *r);
/**
 * Check @rpc is 1 to META_REGION_REPLICAS_MAX comma-separated addresses, each a host:port
 * of lib/addr.h with a non-empty host, a port in 1..65535 and only printable non-space
 * characters. Pure: apply decides with it. @return 1 if so; else 0 with a sentence (for a
 * 400) in @why (LR_ERRMSG_SIZE bytes).
 */
int meta__rpc_check(struct lr_str rpc, char *why);
/** Read one catalog_log record (key and value as LMDB gave them). 0 or LR_ECORRUPT. */
int meta__change_read(const MDB_val *k, const MDB_val *v, struct meta__change *c);

/* ---- answers shared by apply and query (meta.c) ------------------------------------------ */

#define META__PK_KEY(pk, k) msgpack_pack_str_with_body(pk, k, sizeof(k) - 1)
int meta__pack_str(msgpack_packer *pk, struct lr_str s);
/** RFC 3339 of @ms, or nil if it has none. */
int meta__pack_time(msgpack_packer *pk, int64_t ms);
/** The 3 pairs player_id, region, claimed_at (the caller packed the map header). */
void meta__pack_claim_pairs(msgpack_packer *pk, struct lr_str player, const struct meta__claim *r);
/** {"region", "rpc": ["host:port", ...], "added_at" (ms), "version"} */
void meta__pack_region(msgpack_packer *pk, struct lr_str id, const struct meta__region *r);
/** {"board_id", "cycle", "closed_at", "record"} */
void meta__pack_close(msgpack_packer *pk, struct lr_str board, int64_t cycle,
                      const struct meta__close *r);

#endif
