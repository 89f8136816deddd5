/* shard/apply_int.h — internals shared by the apply files: the per-command context, result
 * and record helpers, and the score machinery the handlers build on (apply.c), the catalog
 * handlers (apply_catalog.c) and the player handlers (apply_player.c). */
#ifndef LAUREL_APPLY_INT_H
#define LAUREL_APPLY_INT_H

#include "shard_int.h"

struct apply {
    struct shard *s;
    const struct shard_sink *sink;
    uint64_t index;
    uint32_t i;
    const struct cmd *c;
    int status; /* 0 until the handler answered */
    /* The command's player, once looked up (the idempotency check needs it first). Its
     * strings point into LMDB and are valid only until the command's first write. */
    int have_player;
    struct rec_player player;
};

#define PK (&a->s->opk)
#define PK_KEY(k) msgpack_pack_str_with_body(PK, k, sizeof(k) - 1)

#define RPK (&a->s->rpk)

struct apply__win {
    enum timefmt_window w;
    int64_t period;
    struct key k;
    int had_old, changed;
    uint64_t old_hash; /* digest term of the old record (store_put_known) */
    struct rec_score old, now;
    /* LMDB values die at the next put of the transaction: the plan keeps its own copy. */
    char meta[VALID_METADATA_MAX];
};

/* A player's name copied out of its record, whose LMDB page dies at the command's first
 * write: what a handler keeps for the events it emits after writing. */
struct apply__name {
    char b[VALID_NAME_MAX * 4]; /* UTF-8: at most 4 bytes a code point */
    uint32_t len;
};

/* What a score change will do, computed before anything is written. */
struct apply__plan {
    struct board *bd;
    uint32_t pid;
    const char *guild;
    uint32_t n;
    struct apply__win win[TIMEFMT_NWINDOWS];
};

/* apply.c: results */
int apply__player(struct apply *a, struct lr_str id, struct rec_player *p);
void apply__reset_out(struct apply *a);
void apply__answer(struct apply *a, int status);
/* Refuse the command: an error body, nothing written. Returns 0 (the command was handled). */
int apply__fail(struct apply *a, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copy @name into @out: 0, or LR_ECORRUPT for a stored name longer than any valid one. */
int apply__name_copy(struct apply__name *out, struct lr_str name);
static inline struct lr_str apply__name_str(const struct apply__name *n)
{
    return (struct lr_str){n->b, n->len};
}

/* apply.c: records */
void apply__rec_begin(struct apply *a, uint32_t nfields);
int apply__rec_put(struct apply *a, enum store_db db, const struct key *k);
int apply__put_player(struct apply *a, const struct key *k, const struct rec_player *p);
int apply__put_game(struct apply *a, const struct key *k, const struct rec_game *g);
int apply__put_ach(struct apply *a, const struct key *k, const struct rec_ach *r);
int apply__put_score(struct apply *a, const struct key *k, const struct rec_score *r, int had_old,
                     uint64_t old_hash);
int apply__put_progress(struct apply *a, const struct key *k, const struct rec_progress *p);
int apply__put_pgame(struct apply *a, const struct key *k, const struct rec_pgame *g);
void apply__pack_prizes(msgpack_packer *pk, const struct cmd_prizes *p);
int apply__put_board(struct apply *a, const struct board *bd, const struct cmd_prizes *rw);

/* apply.c: scores, stats, events */
void apply__score_key(struct key *k, uint32_t pid, const char *board, enum timefmt_window w,
                      int64_t period);
int apply__score_plan(struct apply *a, struct board *bd, uint32_t pid, int op, int64_t value,
                      int64_t sub, struct lr_str meta, int64_t ts, struct apply__plan *plan);
int apply__score_write(struct apply *a, const struct apply__plan *plan);
uint64_t apply__plan_rank(struct apply *a, const struct apply__plan *plan, uint32_t i);
int apply__stats_add(struct apply *a, uint32_t pid, int64_t ts, struct lr_str game, int64_t unlocks,
                     int64_t points, int64_t submissions);
void apply__emit(struct apply *a);
/* score.updated for @player (@name: its name, copied into the event) and its entry @r. */
void apply__event_score(struct apply *a, const struct board *bd, struct lr_str player,
                        struct lr_str name, const struct rec_score *r);

/* apply_catalog.c: tournament rules on a score (0 allowed and counted, LR_EFORBIDDEN with
 * *@why, or fatal). */
int apply__tournament_attempt(struct apply *a, struct lr_str tid, uint32_t pid, const char **why);

/* apply.c: expiry indexes (idempotency keys, the audit trail). An index's keys start with a
 * biased i64 stamp; the rest names the record it expires. Drop up to @max of its records
 * stamped before @before, oldest first (a stamped time, so every replica drops the same ones
 * at the same index): @drop deletes what one names (@k, @klen: the key after the stamp),
 * then the index record goes. One cursor serves the whole purge: it is moved back to the
 * first record after each delete (the deletes go through store_del, which keeps the digest,
 * and LMDB repositions a write transaction's open cursors around them). 0 or a fatal LR_E*. */
typedef int (*apply__expire_fn)(struct shard *s, int64_t stamp, const unsigned char *k,
                                size_t klen);
int apply__expire(struct shard *s, enum store_db index, int64_t before, uint32_t max,
                  apply__expire_fn drop);

/* audit.c: the audit trail. Record command @c (answered: a->status is set) in its player's
 * trail when its type is audited and its player exists: 0 or a fatal LR_E*. */
int audit__record(struct apply *a, const struct cmd *c);
/* Drop up to @max audit entries stamped more than the retention before @now (a command's
 * stamp): 0 or a fatal LR_E*. */
int audit__purge(struct shard *s, int64_t now, uint32_t max);

/* The handlers, one per command of CMD_LIST (dispatched by apply.c). */
#define APPLY__DECL(code, NAME, name, flags)                                                       \
    int apply__##name(struct apply *a, const struct cmd_##name *c);
CMD_LIST(APPLY__DECL)
#undef APPLY__DECL

#endif
