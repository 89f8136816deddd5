/* shard/shard_int.h — internals shared by the files of the shard module (not for other
 * modules; tests reach the shard through shard.h). */
#ifndef LAUREL_SHARD_INT_H
#define LAUREL_SHARD_INT_H

#include <msgpack.h>
#include <stdint.h>

#include "cmd.h"
#include "rankidx.h"
#include "shard.h"
#include "store.h"
#include "../lib/strmap.h"
#include "timefmt.h"

/* ---- names.c: region-local player numbers ------------------------------------------- */

/* Every player of the region has a number (pid) assigned at creation in log order, so every
 * replica assigns the same ones. The rank indexes key on pids; this table turns them back
 * into ids (for ties and answers) and knows each player's guild (for guild scopes). Ids live
 * packed in one arena: about len+1+8 bytes a player, shared by every board. */
#define NAMES_NO_GUILD UINT32_MAX

struct names {
    char *arena;
    size_t arena_len, arena_cap;
    uint32_t *id_off; /* pid -> offset of its NUL-terminated id in arena */
    uint32_t *guild;  /* pid -> guild number, or NAMES_NO_GUILD */
    uint32_t count, cap;
    struct strmap guild_by_name; /* guild id -> (uintptr_t)gid + 1 */
    char **guild_name;           /* gid -> id (owned) */
    uint32_t nguilds, guild_cap;
};

void names__init(struct names *n);
void names__free(struct names *n);
/** Record player @pid (must be n->count: pids are dense). */
int names__add(struct names *n, uint32_t pid, struct lr_str id, struct lr_str guild);
/** Set the guild of @pid (empty = none). */
int names__set_guild(struct names *n, uint32_t pid, struct lr_str guild);
const char *names__id(const struct names *n, uint32_t pid, size_t *len);
/** Guild id of @pid or NULL. */
const char *names__guild(const struct names *n, uint32_t pid);
/** The rankidx resolver over @n. */
struct rankidx_names names__resolver(struct names *n);
size_t names__memory(const struct names *n);

/* ---- boards.c: board configs and their rank sets -------------------------------------- */

/* One ranking domain: a board in one window and period. The region index holds every entry;
 * each guild with members on it has its own index. */
struct rankset {
    enum timefmt_window window;
    int64_t period;
    struct rankidx *all;
    struct strmap guilds; /* guild id -> struct rankidx * */
    /* start-up rebuild only: keys gathered before sorting and bulk loading */
    struct rankkey *pending;
    size_t npending, cappending;
};

/* The periods of one window that have a rank set, ascending: eviction takes the oldest. */
struct board_periods {
    int64_t *v;
    uint32_t n, cap;
};

struct board {
    char id[VALID_ID_MAX + 1];
    int order;        /* CMD_ORDER_* */
    int op;           /* CMD_OP_* */
    unsigned windows; /* bit per timefmt window; cycle bit set iff reset_s > 0 */
    int64_t reset_s;
    int64_t snapshot_top;
    int tournament;
    int64_t version; /* of the last put (cmd.h) */
    int64_t keep;    /* past periods kept per dated window, 1..CMD_KEEP_PERIODS_MAX */
    char game_id[VALID_GAME_ID_MAX + 1];
    struct strmap sets; /* (window, period) -> struct rankset * */
    struct board_periods periods[TIMEFMT_NWINDOWS];
    /* Per window, every period below it is evicted (INT64_MIN: none yet): persisted in
     * STORE_FLOORS by evict.c, so reads refuse exactly what apply has begun to delete. */
    int64_t floor[TIMEFMT_NWINDOWS];
};

struct boards {
    struct strmap by_id; /* board id -> struct board * */
    struct rankidx_names resolver;
    struct rankidx_pool *pool; /* every index's nodes; owned by the shard, outlives reloads */
};

void boards__init(struct boards *b, struct rankidx_names resolver);
void boards__free(struct boards *b);
struct board *boards__get(const struct boards *b, const char *id, size_t len);
/** Create or update @id's config (kept rank sets stay). */
int boards__put(struct boards *b, const char *id, size_t len, struct board **out);
/** Rank set of @bd for (@w, @period), created empty if @create. NULL if absent (or ENOMEM). */
struct rankset *boards__set(struct boards *b, struct board *bd, enum timefmt_window w,
                            int64_t period, int create);
/** Remove @rs (a set of @bd) from @bd and free it and its indexes. */
void boards__drop(struct board *bd, struct rankset *rs);
/** The rank set of @bd's window @w with the lowest period, or NULL if it has none. */
struct rankset *boards__oldest(struct boards *b, struct board *bd, enum timefmt_window w);
/** Guild index inside @rs, created if @create. */
struct rankidx *boards__guild(struct boards *b, struct rankset *rs, const char *guild, int create);
size_t boards__memory(const struct boards *b);

/** Rank key of a stored score on @bd. */
struct rankkey boards__key(const struct board *bd, int64_t score, int64_t sub, int64_t t,
                           uint32_t pid);

/* ---- evict.c: past periods beyond a board's keep_periods -------------------------------- */

/* Score records an apply evicts at most per command (evict.c says why this bounds the work). */
#define EVICT_PER_COMMAND 32

/**
 * A command stamped @ts wrote to @bd: raise each dated window's floor to the stamp's period
 * minus @bd's keep (persisting it), then delete up to *@budget score records of periods below
 * a floor, oldest period first, from LMDB and the rank indexes; *@budget is decreased by what
 * was deleted. Inside the open group. @return 0 or a fatal LR_E* (LMDB, LR_ENOMEM, and
 * LR_ECORRUPT when the index names a record LMDB lacks).
 */
int evict__after_write(struct shard *s, struct board *bd, int64_t ts, uint32_t *budget);

/** The lowest period of @bd's window @w a read at @now_ms may see (INT64_MIN for alltime):
 * below the persisted floor or more than keep periods before @now_ms's period. */
int64_t evict__first_readable(const struct board *bd, enum timefmt_window w, int64_t now_ms);

/** Read the persisted floors into the loaded boards (start-up rebuild). @return 0 or LR_E*. */
int evict__load(struct shard *s, MDB_txn *txn);

/* ---- records (apply.c writes them, query.c reads them) --------------------------------- */

#define REC_VERSION 1

struct rec_player {
    uint32_t pid;
    int64_t created_ms;
    struct lr_str name, region, guild;
};
struct rec_game {
    struct lr_str name;
    int64_t achievements_total;
    int64_t players; /* with at least one unlock or progress */
    int64_t version; /* of the last put (cmd.h) */
};
struct rec_ach {
    struct lr_str name, description;
    int64_t points, steps, unlocked_count;
    int hidden;
    int64_t version;
};
struct rec_score {
    int64_t score, subscore, updated_ms;
    struct lr_str metadata;
};
struct rec_progress {
    int64_t progress, unlocked_ms, updated_ms, hseq;
    int unlocked;
};
struct rec_pgame {
    int64_t unlocked, last_unlock_ms;
};
struct rec_stats {
    int64_t unlocks, points, submissions;
};
/* A tournament as its region stores it; the order and operator are its board's. With a
 * metadata group the router writes max_participants 0 (unlimited): meta alone admits, and
 * participants counts this region's members only (docs/global-state.md, "Tournament joins"). */
struct rec_tourn {
    struct lr_str name;
    int64_t start_ms, end_ms, max_participants, max_attempts, participants, version;
    struct cmd_prizes prizes;
};
/* A granted reward (docs/data-layout.md, "rewards"). */
struct rec_reward {
    int64_t rank;
    struct lr_str reward;
    int64_t granted_ms;
    int64_t claimed_ms;      /* -1 until claimed; never changes once set */
    struct lr_str claim_key; /* the idempotency key of the claim (empty: none, or no key) */
};

int rec__player(const MDB_val *v, struct rec_player *r);
int rec__game(const MDB_val *v, struct rec_game *r);
int rec__ach(const MDB_val *v, struct rec_ach *r);
int rec__score(const MDB_val *v, struct rec_score *r);
int rec__progress(const MDB_val *v, struct rec_progress *r);
int rec__pgame(const MDB_val *v, struct rec_pgame *r);
int rec__stats(const MDB_val *v, struct rec_stats *r);
int rec__tourn(const MDB_val *v, struct rec_tourn *r);
int rec__reward(const MDB_val *v, struct rec_reward *r);

/* Keys. Multi-part keys join strings with NUL (ids never contain one) and write integers
 * big-endian so LMDB's bytewise order is numeric order. */
#define KEY_MAX 256
struct key {
    unsigned char b[KEY_MAX];
    size_t len;
};
void key__init(struct key *k);
void key__u32(struct key *k, uint32_t v);
void key__u64(struct key *k, uint64_t v);
void key__i64(struct key *k, int64_t v);        /* biased so negative sorts first */
void key__str(struct key *k, struct lr_str s);  /* bytes only */
void key__strz(struct key *k, struct lr_str s); /* bytes and a NUL */
uint32_t key__get_u32(const unsigned char *p);
uint64_t key__get_u64(const unsigned char *p);

/* ---- the shard ------------------------------------------------------------------------- */

/* Store a u64 under @name in the shard's own records (inside the open group). */
int shard__meta_put_u64(struct shard *s, const char *name, uint64_t v);

struct shard {
    struct store *st;
    char region[VALID_ID_MAX + 1];
    uint64_t applied; /* last applied index, including the open group */
    uint64_t applied_committed;
    uint32_t next_pid;
    uint64_t hseq;            /* unlock-history sequence */
    int64_t clock_ms;         /* highest command stamp applied, including the open group */
    uint64_t catalog_through; /* meta's catalog applied through this version (CATALOG_MARK) */
    uint32_t audit_days;      /* audit retention (CMD_AUDIT_DAYS), including the open group */
    struct names names;
    struct boards boards;
    msgpack_sbuffer rbuf; /* record being written */
    msgpack_packer rpk;
    msgpack_sbuffer obuf; /* result or event being built */
    msgpack_packer opk;
    msgpack_unpacked up;  /* entry being applied */
    msgpack_sbuffer ebuf; /* events of the entry being applied, back to back */
    uint32_t nevents;
    int eoom;
    char errmsg[LR_ERRMSG_SIZE];
};

/** Rebuild names and rank indexes from the committed LMDB state. */
int shard__load(struct shard *s);

/** Look up player @id: 0 and *@r, LR_ENOTFOUND, or LR_E*. */
int shard__player(struct shard *s, struct lr_str id, struct rec_player *r);

/** Pack an RFC 3339 string of @ms (nil for ms < 0). */
int rec__pack_time(msgpack_packer *pk, int64_t ms);
/** Pack a key string / C string. */
int rec__pack_cstr(msgpack_packer *pk, const char *s);
int rec__pack_str(msgpack_packer *pk, struct lr_str s);
/** Pack a reward as API.md's item {"board_id","cycle","rank","reward","granted_at",
 * "claimed_at"}. */
void rec__pack_reward(msgpack_packer *pk, struct lr_str board, int64_t cycle,
                      const struct rec_reward *r);
/** Key of the reward of (@pid, @board, @cycle) in STORE_REWARDS. */
void key__reward(struct key *k, uint32_t pid, struct lr_str board, int64_t cycle);
/** Pack a board's config as API.md's board object. */
void rec__pack_board(msgpack_packer *pk, const struct board *bd, const struct cmd_prizes *rw);
/** Pack tournament @id (@t, its board @bd) as API.md's tournament object, without what only
 * the metadata group knows (max_participants, participants) and the state the router derives:
 * {"tournament_id", "name", "order", "operator", "start_at", "end_at", "max_attempts" (nil:
 * unlimited), "prizes"}. The answer of a put and of SHARD_Q_TOURNAMENT_GET. */
void rec__pack_tourn(msgpack_packer *pk, struct lr_str id, const struct board *bd,
                     const struct rec_tourn *t);
struct mp;
/** Read a stored [[rank_from, rank_to, reward], ...] list. */
int rec__prizes(struct mp *r, struct cmd_prizes *p);

#endif
