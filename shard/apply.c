/* shard/apply.c — applying commands to LMDB and the rank indexes.
 *
 * Every handler works in two phases: a read phase that loads what it needs and validates
 * everything that can fail on input, then a write phase that cannot fail on input. So a
 * command that is refused writes nothing and answers an error result, and the only failures
 * of the write phase are fatal ones (LMDB full or broken, no memory), after which the caller
 * aborts the whole group and the shard reloads its memory from the committed state
 * (shard_abort). Nothing partial survives either way.
 *
 * Determinism: handlers read the command's stamped ts, never a clock; every record is
 * written in a fixed layout; iteration order comes from LMDB keys, never from a hash map. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hash.h"
#include "mp.h"
#include "shard_int.h"

#define APPLY__IDEM_TTL_MS (25LL * 3600 * 1000) /* API.md promises at least 24 h */
#define APPLY__PURGE_PER_ENTRY 16

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

/* Look up player @id for the running command, once. */
static int apply__player(struct apply *a, struct lr_str id, struct rec_player *p)
{
    if (!a->have_player) {
        int rv = shard__player(a->s, id, &a->player);
        if (rv != 0) {
            return rv;
        }
        a->have_player = 1;
    }
    *p = a->player;
    return 0;
}

#define PK (&a->s->opk)
#define PK_KEY(k) msgpack_pack_str_with_body(PK, k, sizeof(k) - 1)

/* ---- results ------------------------------------------------------------------------- */

static void apply__reset_out(struct apply *a) { msgpack_sbuffer_clear(&a->s->obuf); }

/* Answer the command with the body packed into obuf. */
static void apply__answer(struct apply *a, int status)
{
    a->status = status;
}

/* Refuse the command: an error body, nothing written. */
static int apply__fail(struct apply *a, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int apply__fail(struct apply *a, int rv, const char *fmt, ...)
{
    char msg[LR_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    apply__reset_out(a);
    msgpack_pack_map(PK, 1);
    PK_KEY("error");
    msgpack_pack_map(PK, 2);
    PK_KEY("code");
    shard__pack_cstr(PK, err_api_code(rv));
    PK_KEY("message");
    shard__pack_cstr(PK, msg);
    apply__answer(a, err_http_status(rv));
    return 0;
}

static int apply__is_fatal(int rv)
{
    return rv == LR_ENOMEM || rv == LR_EIO || rv == LR_EMAPFULL || rv == LR_ENOSPC ||
           rv == LR_ECORRUPT || rv == LR_EINTERNAL;
}

/* ---- record writers --------------------------------------------------------------------- */

#define RPK (&a->s->rpk)

static void apply__rec_begin(struct apply *a, uint32_t nfields)
{
    msgpack_sbuffer_clear(&a->s->rbuf);
    msgpack_pack_array(RPK, nfields + 1);
    msgpack_pack_int64(RPK, REC_VERSION);
}

static int apply__rec_put(struct apply *a, enum store_db db, const struct key *k)
{
    return store_put(a->s->st, db, k->b, k->len, a->s->rbuf.data, a->s->rbuf.size);
}

static int apply__put_player(struct apply *a, const struct key *k, const struct rec_player *p)
{
    apply__rec_begin(a, 5);
    msgpack_pack_int64(RPK, p->pid);
    msgpack_pack_int64(RPK, p->created_ms);
    shard__pack_str(RPK, p->name);
    shard__pack_str(RPK, p->region);
    shard__pack_str(RPK, p->guild);
    return apply__rec_put(a, STORE_PLAYERS, k);
}

static int apply__put_game(struct apply *a, const struct key *k, const struct rec_game *g)
{
    apply__rec_begin(a, 3);
    shard__pack_str(RPK, g->name);
    msgpack_pack_int64(RPK, g->achievements_total);
    msgpack_pack_int64(RPK, g->players);
    return apply__rec_put(a, STORE_GAMES, k);
}

static int apply__put_ach(struct apply *a, const struct key *k, const struct rec_ach *r)
{
    apply__rec_begin(a, 6);
    shard__pack_str(RPK, r->name);
    shard__pack_str(RPK, r->description);
    msgpack_pack_int64(RPK, r->points);
    r->hidden ? msgpack_pack_true(RPK) : msgpack_pack_false(RPK);
    msgpack_pack_int64(RPK, r->steps);
    msgpack_pack_int64(RPK, r->unlocked_count);
    return apply__rec_put(a, STORE_ACHS, k);
}

static int apply__put_score(struct apply *a, const struct key *k, const struct rec_score *r,
                            int had_old, uint64_t old_hash)
{
    apply__rec_begin(a, 4);
    msgpack_pack_int64(RPK, r->score);
    msgpack_pack_int64(RPK, r->subscore);
    msgpack_pack_int64(RPK, r->updated_ms);
    shard__pack_str(RPK, r->metadata);
    return store_put_known(a->s->st, STORE_SCORES, k->b, k->len, a->s->rbuf.data,
                           a->s->rbuf.size, had_old, old_hash);
}

static int apply__put_progress(struct apply *a, const struct key *k, const struct rec_progress *p)
{
    apply__rec_begin(a, 5);
    msgpack_pack_int64(RPK, p->progress);
    p->unlocked ? msgpack_pack_true(RPK) : msgpack_pack_false(RPK);
    msgpack_pack_int64(RPK, p->unlocked_ms);
    msgpack_pack_int64(RPK, p->updated_ms);
    msgpack_pack_int64(RPK, p->hseq);
    return apply__rec_put(a, STORE_PROGRESS, k);
}

static int apply__put_pgame(struct apply *a, const struct key *k, const struct rec_pgame *g)
{
    apply__rec_begin(a, 2);
    msgpack_pack_int64(RPK, g->unlocked);
    msgpack_pack_int64(RPK, g->last_unlock_ms);
    return apply__rec_put(a, STORE_PGAMES, k);
}

static void apply__pack_prizes(msgpack_packer *pk, const struct cmd_prizes *p)
{
    msgpack_pack_array(pk, p->n);
    for (uint32_t i = 0; i < p->n; i++) {
        msgpack_pack_array(pk, 3);
        msgpack_pack_int64(pk, p->items[i].rank_from);
        msgpack_pack_int64(pk, p->items[i].rank_to);
        shard__pack_str(pk, p->items[i].reward);
    }
}

/* Board record: [ver, order, op, windows, reset_s, snapshot_top, rewards, game_id, tournament] */
static int apply__put_board(struct apply *a, const struct board *bd, const struct cmd_prizes *rw)
{
    struct key k;
    struct lr_str id = {bd->id, (uint32_t)strlen(bd->id)};
    struct lr_str game = {bd->game_id, (uint32_t)strlen(bd->game_id)};
    key__init(&k);
    key__str(&k, id);
    apply__rec_begin(a, 8);
    msgpack_pack_int64(RPK, bd->order);
    msgpack_pack_int64(RPK, bd->op);
    msgpack_pack_int64(RPK, bd->windows);
    msgpack_pack_int64(RPK, bd->reset_s);
    msgpack_pack_int64(RPK, bd->snapshot_top);
    apply__pack_prizes(RPK, rw);
    shard__pack_str(RPK, game);
    bd->tournament ? msgpack_pack_true(RPK) : msgpack_pack_false(RPK);
    return apply__rec_put(a, STORE_BOARDS, &k);
}

/* ---- scores ------------------------------------------------------------------------------ */

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

/* What a score change will do, computed before anything is written. */
struct apply__plan {
    struct board *bd;
    uint32_t pid;
    const char *guild;
    uint32_t n;
    struct apply__win win[TIMEFMT_NWINDOWS];
};

static void apply__score_key(struct key *k, uint32_t pid, const char *board, enum timefmt_window w,
                             int64_t period)
{
    struct lr_str b = {board, (uint32_t)strlen(board)};
    key__init(k);
    key__u32(k, pid);
    key__strz(k, b);
    unsigned char wb = (unsigned char)w;
    key__str(k, (struct lr_str){(const char *)&wb, 1});
    key__i64(k, period);
}

/* 1 if (s1, b1) ranks strictly better than (s2, b2) under @order. */
static int apply__better(int order, int64_t s1, int64_t b1, int64_t s2, int64_t b2)
{
    if (order == CMD_ORDER_ASC) {
        return s1 < s2 || (s1 == s2 && b1 < b2);
    }
    return s1 > s2 || (s1 == s2 && b1 > b2);
}

/*
 * Read phase of a score change on every window of @bd. @op is the operator to apply (the
 * board's, or incr for unlock points). @return 0; LR_ERANGE if a result leaves the score
 * range (nothing planned); or a fatal code.
 */
static int apply__score_plan(struct apply *a, struct board *bd, uint32_t pid, int op,
                             int64_t value, int64_t sub, struct lr_str meta, int64_t ts,
                             struct apply__plan *plan)
{
    plan->bd = bd;
    plan->pid = pid;
    plan->guild = names__guild(&a->s->names, pid);
    plan->n = 0;
    for (int w = 0; w < TIMEFMT_NWINDOWS; w++) {
        if (!(bd->windows & (1u << w))) {
            continue;
        }
        struct apply__win *x = &plan->win[plan->n++];
        MDB_val v;
        x->w = (enum timefmt_window)w;
        x->period = timefmt_period_of(x->w, ts, bd->reset_s);
        apply__score_key(&x->k, pid, bd->id, x->w, x->period);
        int rv = store_get(a->s->st, STORE_SCORES, x->k.b, x->k.len, &v);
        if (rv != 0 && rv != LR_ENOTFOUND) {
            return rv;
        }
        x->had_old = rv == 0;
        if (x->had_old) {
            x->old_hash = store_record_hash(STORE_SCORES, x->k.b, x->k.len, v.mv_data, v.mv_size);
            if ((rv = rec__score(&v, &x->old)) != 0) {
                return rv;
            }
            if (x->old.metadata.len > VALID_METADATA_MAX) {
                return LR_ECORRUPT;
            }
            memcpy(x->meta, x->old.metadata.p, x->old.metadata.len);
            x->old.metadata.p = x->meta;
        }
        x->now = x->old;
        x->changed = 0;
        int64_t base = x->had_old ? x->old.score : 0;
        switch (op) {
        case CMD_OP_BEST:
            x->changed = !x->had_old ||
                         apply__better(bd->order, value, sub, x->old.score, x->old.subscore);
            if (x->changed) {
                x->now.score = value;
                x->now.subscore = sub;
                x->now.metadata = meta;
            }
            break;
        case CMD_OP_SET:
            x->changed = !x->had_old || value != x->old.score || sub != x->old.subscore ||
                         meta.len != x->old.metadata.len ||
                         memcmp(meta.p, x->old.metadata.p, meta.len) != 0;
            x->now.score = value;
            x->now.subscore = sub;
            x->now.metadata = meta;
            break;
        case CMD_OP_INCR:
        case CMD_OP_DECR:
            /* |base|, |value| <= 2^53-1, so the sum cannot overflow int64. */
            x->now.score = op == CMD_OP_INCR ? base + value : base - value;
            if (!valid_score(x->now.score)) {
                return LR_ERANGE;
            }
            x->now.subscore = sub;
            if (meta.len) {
                x->now.metadata = meta;
            } else if (!x->had_old) {
                x->now.metadata = meta;
            }
            x->changed = !x->had_old || x->now.score != x->old.score ||
                         sub != x->old.subscore || meta.len != 0;
            break;
        default:
            return LR_ECORRUPT;
        }
        if (x->changed) {
            x->now.updated_ms = ts;
        }
    }
    return 0;
}

/* Move @pid's entry in one index: delete the old key (must be there) and insert the new. */
static int apply__rank_move(struct rankidx *idx, const struct rankkey *old,
                            const struct rankkey *now)
{
    if (old && rankidx_delete(idx, old) != 0) {
        return LR_ECORRUPT; /* the index disagrees with LMDB: reload rather than diverge */
    }
    return rankidx_insert(idx, now) == 0 ? 0 : LR_ENOMEM;
}

/* Write phase of a planned score change. */
static int apply__score_write(struct apply *a, const struct apply__plan *plan)
{
    struct boards *bs = &a->s->boards;
    for (uint32_t i = 0; i < plan->n; i++) {
        const struct apply__win *x = &plan->win[i];
        if (!x->changed) {
            continue;
        }
        int rv = apply__put_score(a, &x->k, &x->now, x->had_old, x->old_hash);
        if (rv != 0) {
            return rv;
        }
        struct rankset *rs = boards__set(bs, plan->bd, x->w, x->period, 1);
        if (rs == NULL) {
            return LR_ENOMEM;
        }
        struct rankkey old = board__key(plan->bd, x->old.score, x->old.subscore,
                                        x->old.updated_ms, plan->pid);
        struct rankkey now = board__key(plan->bd, x->now.score, x->now.subscore,
                                        x->now.updated_ms, plan->pid);
        if ((rv = apply__rank_move(rs->all, x->had_old ? &old : NULL, &now)) != 0) {
            return rv;
        }
        if (plan->guild) {
            struct rankidx *g = boards__guild(bs, rs, plan->guild, 1);
            if (g == NULL) {
                return LR_ENOMEM;
            }
            if ((rv = apply__rank_move(g, x->had_old ? &old : NULL, &now)) != 0) {
                return rv;
            }
        }
    }
    return 0;
}

/* Region rank (1-based) of the planned entry in window @i. */
static uint64_t apply__plan_rank(struct apply *a, const struct apply__plan *plan, uint32_t i)
{
    const struct apply__win *x = &plan->win[i];
    struct rankset *rs = boards__set(&a->s->boards, plan->bd, x->w, x->period, 0);
    struct rankkey k = board__key(plan->bd, x->now.score, x->now.subscore, x->now.updated_ms,
                                  plan->pid);
    return rs ? rankidx_count_before(rs->all, &k) + 1 : 0;
}

/* ---- statistics rollups ------------------------------------------------------------------ */

static int apply__stats_add(struct apply *a, uint32_t pid, int64_t ts, struct lr_str game,
                            int64_t unlocks, int64_t points, int64_t submissions)
{
    struct key k;
    struct rec_stats r = {0, 0, 0};
    MDB_val v;
    int64_t day = timefmt_period_of(TIMEFMT_DAILY, ts, 0);
    key__init(&k);
    key__u32(&k, pid);
    key__u32(&k, (uint32_t)day);
    key__str(&k, game);
    uint64_t old_hash = 0;
    int rv = store_get(a->s->st, STORE_STATS, k.b, k.len, &v);
    int had_old = rv == 0;
    if (rv == 0) {
        old_hash = store_record_hash(STORE_STATS, k.b, k.len, v.mv_data, v.mv_size);
        rv = rec__stats(&v, &r);
    } else if (rv == LR_ENOTFOUND) {
        rv = 0;
    }
    if (rv != 0) {
        return rv;
    }
    r.unlocks += unlocks;
    r.points += points;
    r.submissions += submissions;
    apply__rec_begin(a, 3);
    msgpack_pack_int64(RPK, r.unlocks);
    msgpack_pack_int64(RPK, r.points);
    msgpack_pack_int64(RPK, r.submissions);
    return store_put_known(a->s->st, STORE_STATS, k.b, k.len, a->s->rbuf.data, a->s->rbuf.size,
                           had_old, old_hash);
}

/* ---- events -------------------------------------------------------------------------------- */

static void apply__emit(struct apply *a)
{
    struct shard *s = a->s;
    if (msgpack_sbuffer_write(&s->ebuf, s->obuf.data, s->obuf.size) != 0) {
        s->eoom = 1;
    }
    s->nevents++;
    if (a->sink && a->sink->event) {
        a->sink->event(a->sink->data, a->s->obuf.data, a->s->obuf.size);
    }
}

static void apply__event_score(struct apply *a, const struct board *bd, struct lr_str player,
                               const struct rec_score *r)
{
    apply__reset_out(a);
    msgpack_pack_map(PK, 8);
    PK_KEY("type");
    PK_KEY("score.updated");
    PK_KEY("board_id");
    shard__pack_cstr(PK, bd->id);
    PK_KEY("player_id");
    shard__pack_str(PK, player);
    PK_KEY("score");
    msgpack_pack_int64(PK, r->score);
    PK_KEY("subscore");
    msgpack_pack_int64(PK, r->subscore);
    PK_KEY("updated_at");
    shard__pack_time(PK, r->updated_ms);
    PK_KEY("region");
    shard__pack_cstr(PK, a->s->region);
    PK_KEY("index");
    msgpack_pack_uint64(PK, a->index);
    apply__emit(a);
}

/* ---- handlers ------------------------------------------------------------------------------ */

static int apply__player_put(struct apply *a, const struct cmd_player_put *c)
{
    struct shard *s = a->s;
    struct rec_player p;
    struct key k;
    int rv, created;
    if (c->region.len != strlen(s->region) || memcmp(c->region.p, s->region, c->region.len)) {
        return apply__fail(a, LR_EINVAL, "player %.*s belongs to region %.*s, not %s",
                           (int)c->player_id.len, c->player_id.p, (int)c->region.len,
                           c->region.p, s->region);
    }
    rv = shard__player(s, c->player_id, &p);
    if (rv != 0 && rv != LR_ENOTFOUND) {
        return rv;
    }
    created = rv == LR_ENOTFOUND;
    if (created) {
        if (s->next_pid >= RANKKEY_FOREIGN) {
            return apply__fail(a, LR_ERANGE, "region %s is full", s->region);
        }
        p.pid = s->next_pid;
        p.created_ms = a->c->ts;
    }
    /* Copy the old guild before the put: p's strings point into the LMDB page it replaces. */
    char oldguild[VALID_ID_MAX + 1] = "";
    if (!created) {
        snprintf(oldguild, sizeof oldguild, "%.*s", (int)p.guild.len, p.guild.p);
    }
    p.name = c->name;
    p.region = c->region;
    p.guild = c->guild;
    key__init(&k);
    key__str(&k, c->player_id);
    if ((rv = apply__put_player(a, &k, &p)) != 0) {
        return rv;
    }
    if (created) {
        if ((rv = names__add(&s->names, p.pid, c->player_id, c->guild)) != 0) {
            return rv;
        }
        s->next_pid++;
    } else if (strlen(oldguild) != c->guild.len || memcmp(oldguild, c->guild.p, c->guild.len)) {
        /* Guild change: move every entry of the player between guild indexes. */
        MDB_txn *txn;
        MDB_cursor *cur;
        MDB_val kv, vv;
        struct key pre;
        if ((rv = store_read(s->st, &txn)) != 0) {
            return rv;
        }
        if (mdb_cursor_open(txn, store_dbi(s->st, STORE_SCORES), &cur) != 0) {
            return LR_EIO;
        }
        key__init(&pre);
        key__u32(&pre, p.pid);
        kv.mv_data = pre.b;
        kv.mv_size = pre.len;
        int mrv = mdb_cursor_get(cur, &kv, &vv, MDB_SET_RANGE);
        for (; mrv == 0; mrv = mdb_cursor_get(cur, &kv, &vv, MDB_NEXT)) {
            const unsigned char *kb = kv.mv_data;
            if (kv.mv_size < 4 + 1 + 1 + 8 || key__get_u32(kb) != p.pid) {
                break;
            }
            size_t blen = kv.mv_size - 4 - 1 - 1 - 8;
            struct board *bd = boards__get(&s->boards, (const char *)kb + 4, blen);
            struct rec_score r;
            if (bd == NULL || rec__score(&vv, &r) != 0) {
                rv = LR_ECORRUPT;
                break;
            }
            enum timefmt_window w = (enum timefmt_window)kb[4 + blen + 1];
            int64_t period = (int64_t)(key__get_u64(kb + 4 + blen + 2) ^ (1ULL << 63));
            struct rankset *rs = boards__set(&s->boards, bd, w, period, 0);
            struct rankkey rk = board__key(bd, r.score, r.subscore, r.updated_ms, p.pid);
            if (rs == NULL) {
                rv = LR_ECORRUPT;
                break;
            }
            if (oldguild[0]) {
                struct rankidx *g = boards__guild(&s->boards, rs, oldguild, 0);
                if (g == NULL || rankidx_delete(g, &rk) != 0) {
                    rv = LR_ECORRUPT;
                    break;
                }
            }
            if (c->guild.len) {
                char gname[VALID_ID_MAX + 1];
                snprintf(gname, sizeof gname, "%.*s", (int)c->guild.len, c->guild.p);
                struct rankidx *g = boards__guild(&s->boards, rs, gname, 1);
                if (g == NULL || rankidx_insert(g, &rk) != 0) {
                    rv = LR_ENOMEM;
                    break;
                }
            }
        }
        mdb_cursor_close(cur);
        if (rv != 0) {
            return rv;
        }
        if (mrv != 0 && mrv != MDB_NOTFOUND) {
            return err_from_mdb(mrv);
        }
        if ((rv = names__set_guild(&s->names, p.pid, c->guild)) != 0) {
            return rv;
        }
    }
    apply__reset_out(a);
    msgpack_pack_map(PK, 5);
    PK_KEY("player_id");
    shard__pack_str(PK, c->player_id);
    PK_KEY("name");
    shard__pack_str(PK, c->name);
    PK_KEY("region");
    shard__pack_str(PK, c->region);
    PK_KEY("guild");
    c->guild.len ? shard__pack_str(PK, c->guild) : msgpack_pack_nil(PK);
    PK_KEY("created_at");
    shard__pack_time(PK, p.created_ms);
    apply__answer(a, created ? 201 : 200);
    return 0;
}

static int apply__game_put(struct apply *a, const struct cmd_game_put *c)
{
    struct shard *s = a->s;
    struct rec_game g = {c->name, 0, 0};
    struct key k;
    MDB_val v;
    key__init(&k);
    key__str(&k, c->game_id);
    int rv = store_get(s->st, STORE_GAMES, k.b, k.len, &v);
    int created = rv == LR_ENOTFOUND;
    if (rv == 0) {
        if ((rv = rec__game(&v, &g)) != 0) {
            return rv;
        }
        g.name = c->name;
    } else if (!created) {
        return rv;
    }
    if ((rv = apply__put_game(a, &k, &g)) != 0) {
        return rv;
    }
    /* Every game owns the board points.<game_id> (desc, incr). */
    char bid[VALID_ID_MAX + 1];
    int blen = snprintf(bid, sizeof bid, "points.%.*s", (int)c->game_id.len, c->game_id.p);
    if (boards__get(&s->boards, bid, (size_t)blen) == NULL) {
        struct board *bd;
        static const struct cmd_prizes none = {0};
        if ((rv = boards__put(&s->boards, bid, (size_t)blen, &bd)) != 0) {
            return rv;
        }
        bd->order = CMD_ORDER_DESC;
        bd->op = CMD_OP_INCR;
        bd->windows = 1u << TIMEFMT_ALLTIME;
        snprintf(bd->game_id, sizeof bd->game_id, "%.*s", (int)c->game_id.len, c->game_id.p);
        if ((rv = apply__put_board(a, bd, &none)) != 0) {
            return rv;
        }
    }
    apply__reset_out(a);
    msgpack_pack_map(PK, 3);
    PK_KEY("game_id");
    shard__pack_str(PK, c->game_id);
    PK_KEY("name");
    shard__pack_str(PK, c->name);
    PK_KEY("achievements_total");
    msgpack_pack_int64(PK, g.achievements_total);
    apply__answer(a, created ? 201 : 200);
    return 0;
}

static int apply__ach_put(struct apply *a, const struct cmd_ach_put *c)
{
    struct shard *s = a->s;
    struct rec_game g;
    struct rec_ach r = {0};
    struct key gk, k;
    MDB_val v;
    key__init(&gk);
    key__str(&gk, c->game_id);
    int rv = store_get(s->st, STORE_GAMES, gk.b, gk.len, &v);
    if (rv == LR_ENOTFOUND) {
        return apply__fail(a, LR_ENOTFOUND, "game %.*s not found", (int)c->game_id.len,
                           c->game_id.p);
    }
    if (rv != 0 || (rv = rec__game(&v, &g)) != 0) {
        return rv;
    }
    key__init(&k);
    key__strz(&k, c->game_id);
    key__str(&k, c->achievement_id);
    rv = store_get(s->st, STORE_ACHS, k.b, k.len, &v);
    int created = rv == LR_ENOTFOUND;
    if (rv == 0 && (rv = rec__ach(&v, &r)) != 0) {
        return rv;
    }
    if (rv != 0 && !created) {
        return rv;
    }
    r.name = c->name;
    r.description = c->description;
    r.points = c->points;
    r.hidden = c->hidden;
    r.steps = c->steps;
    if ((rv = apply__put_ach(a, &k, &r)) != 0) {
        return rv;
    }
    if (created) {
        char name[VALID_NAME_MAX * 4 + 1];
        snprintf(name, sizeof name, "%.*s", (int)g.name.len, g.name.p);
        g.name.p = name; /* the put below may move the page g.name points into */
        g.achievements_total++;
        if ((rv = apply__put_game(a, &gk, &g)) != 0) {
            return rv;
        }
    }
    apply__reset_out(a);
    msgpack_pack_map(PK, 7);
    PK_KEY("game_id");
    shard__pack_str(PK, c->game_id);
    PK_KEY("achievement_id");
    shard__pack_str(PK, c->achievement_id);
    PK_KEY("name");
    shard__pack_str(PK, c->name);
    PK_KEY("description");
    shard__pack_str(PK, c->description);
    PK_KEY("points");
    msgpack_pack_int64(PK, c->points);
    PK_KEY("hidden");
    c->hidden ? msgpack_pack_true(PK) : msgpack_pack_false(PK);
    PK_KEY("steps");
    msgpack_pack_int64(PK, c->steps);
    apply__answer(a, created ? 201 : 200);
    return 0;
}

static int apply__board_put(struct apply *a, const struct cmd_board_put *c)
{
    struct shard *s = a->s;
    struct board *bd = boards__get(&s->boards, c->board_id.p, c->board_id.len);
    int created = bd == NULL, rv;
    if (c->reset_period_s != 0 && c->reset_period_s < 60) {
        return apply__fail(a, LR_EINVAL, "reset_period_s must be null or at least 60");
    }
    if (bd && bd->tournament) {
        return apply__fail(a, LR_ECONFLICT, "board %s is a tournament's board", bd->id);
    }
    if (bd && (bd->order != c->order || bd->reset_s != c->reset_period_s)) {
        return apply__fail(a, LR_ECONFLICT,
                           "the order and reset_period_s of board %s cannot change", bd->id);
    }
    if ((rv = boards__put(&s->boards, c->board_id.p, c->board_id.len, &bd)) != 0) {
        return rv;
    }
    bd->order = (int)c->order;
    bd->op = (int)c->op;
    bd->windows = (unsigned)c->windows | (c->reset_period_s ? 1u << TIMEFMT_CYCLE : 0);
    bd->reset_s = c->reset_period_s;
    bd->snapshot_top = c->snapshot_top;
    snprintf(bd->game_id, sizeof bd->game_id, "%.*s", (int)c->game_id.len, c->game_id.p);
    if ((rv = apply__put_board(a, bd, &c->rewards)) != 0) {
        return rv;
    }
    apply__reset_out(a);
    shard__pack_board(PK, bd, &c->rewards);
    apply__answer(a, created ? 201 : 200);
    return 0;
}

/* Tournament record: [ver, name, start, end, max_participants, max_attempts, prizes,
 * participants]; join record: [ver, attempts, joined_ms]. */
struct apply__tourn {
    struct lr_str name;
    int64_t start_ms, end_ms, max_participants, max_attempts, participants;
};

static int apply__get_tourn(struct apply *a, struct lr_str id, struct apply__tourn *t)
{
    MDB_val v;
    struct mp r;
    int rv = store_get(a->s->st, STORE_TOURNS, id.p, id.len, &v);
    if (rv != 0) {
        return rv;
    }
    mp_init(&r, v.mv_data, v.mv_size);
    uint32_t n = mp_array(&r);
    int64_t ver = mp_i64(&r);
    t->name = mp_str(&r);
    t->start_ms = mp_i64(&r);
    t->end_ms = mp_i64(&r);
    t->max_participants = mp_i64(&r);
    t->max_attempts = mp_i64(&r);
    mp_skip(&r);
    t->participants = mp_i64(&r);
    return (n != 8 || ver != REC_VERSION || !mp_done(&r)) ? LR_ECORRUPT : 0;
}

static int apply__tournament_put(struct apply *a, const struct cmd_tournament_put *c)
{
    struct shard *s = a->s;
    struct apply__tourn t;
    struct board *bd = boards__get(&s->boards, c->tournament_id.p, c->tournament_id.len);
    int rv;
    if (c->end_ms <= c->start_ms) {
        return apply__fail(a, LR_EINVAL, "end_at must be after start_at");
    }
    if (bd && !bd->tournament) {
        return apply__fail(a, LR_ECONFLICT, "board %s exists and is not a tournament", bd->id);
    }
    if (bd && bd->order != c->order) {
        return apply__fail(a, LR_ECONFLICT, "the order of tournament %s cannot change", bd->id);
    }
    rv = apply__get_tourn(a, c->tournament_id, &t);
    int created = rv == LR_ENOTFOUND;
    if (rv != 0 && !created) {
        return rv;
    }
    int64_t participants = created ? 0 : t.participants;
    struct key k;
    key__init(&k);
    key__str(&k, c->tournament_id);
    apply__rec_begin(a, 7);
    shard__pack_str(RPK, c->name);
    msgpack_pack_int64(RPK, c->start_ms);
    msgpack_pack_int64(RPK, c->end_ms);
    msgpack_pack_int64(RPK, c->max_participants);
    msgpack_pack_int64(RPK, c->max_attempts);
    apply__pack_prizes(RPK, &c->prizes);
    msgpack_pack_int64(RPK, participants);
    if ((rv = apply__rec_put(a, STORE_TOURNS, &k)) != 0) {
        return rv;
    }
    if ((rv = boards__put(&s->boards, c->tournament_id.p, c->tournament_id.len, &bd)) != 0) {
        return rv;
    }
    static const struct cmd_prizes none = {0};
    bd->order = (int)c->order;
    bd->op = (int)c->op;
    bd->windows = 1u << TIMEFMT_ALLTIME;
    bd->tournament = 1;
    if ((rv = apply__put_board(a, bd, &none)) != 0) {
        return rv;
    }
    apply__reset_out(a);
    msgpack_pack_map(PK, 5);
    PK_KEY("tournament_id");
    shard__pack_str(PK, c->tournament_id);
    PK_KEY("name");
    shard__pack_str(PK, c->name);
    PK_KEY("start_at");
    shard__pack_time(PK, c->start_ms);
    PK_KEY("end_at");
    shard__pack_time(PK, c->end_ms);
    PK_KEY("participants");
    msgpack_pack_int64(PK, participants);
    apply__answer(a, created ? 201 : 200);
    return 0;
}

static void apply__join_key(struct key *k, struct lr_str tid, uint32_t pid)
{
    key__init(k);
    key__strz(k, tid);
    key__u32(k, pid);
}

static int apply__tournament_join(struct apply *a, const struct cmd_tournament_join *c)
{
    struct shard *s = a->s;
    struct apply__tourn t;
    struct rec_player p;
    struct key k, jk;
    MDB_val v;
    int rv = apply__get_tourn(a, c->tournament_id, &t);
    if (rv == LR_ENOTFOUND) {
        return apply__fail(a, rv, "tournament %.*s not found", (int)c->tournament_id.len,
                           c->tournament_id.p);
    }
    if (rv != 0) {
        return rv;
    }
    if ((rv = apply__player(a, c->player_id, &p)) != 0) {
        return rv == LR_ENOTFOUND ? apply__fail(a, rv, "player not found") : rv;
    }
    apply__join_key(&jk, c->tournament_id, p.pid);
    rv = store_get(s->st, STORE_TJOINS, jk.b, jk.len, &v);
    if (rv != 0 && rv != LR_ENOTFOUND) {
        return rv;
    }
    int joined = rv == 0;
    if (!joined) {
        if (a->c->ts >= t.end_ms) {
            return apply__fail(a, LR_ECONFLICT, "tournament has ended");
        }
        if (t.max_participants > 0 && t.participants >= t.max_participants) {
            return apply__fail(a, LR_ECONFLICT, "tournament is full");
        }
        apply__rec_begin(a, 2);
        msgpack_pack_int64(RPK, 0);
        msgpack_pack_int64(RPK, a->c->ts);
        if ((rv = apply__rec_put(a, STORE_TJOINS, &jk)) != 0) {
            return rv;
        }
        /* Rewrite the tournament record with one more participant, keeping its other fields
         * byte for byte. */
        MDB_val tv;
        if ((rv = store_get(s->st, STORE_TOURNS, c->tournament_id.p, c->tournament_id.len,
                            &tv)) != 0) {
            return rv;
        }
        struct mp r;
        mp_init(&r, tv.mv_data, tv.mv_size);
        (void)mp_array(&r);
        for (int f = 0; f < 7; f++) {
            mp_skip(&r);
        }
        if (r.err) {
            return LR_ECORRUPT;
        }
        size_t head = (size_t)((const char *)r.p - (const char *)tv.mv_data);
        msgpack_sbuffer_clear(&s->rbuf);
        msgpack_sbuffer_write(&s->rbuf, tv.mv_data, head);
        msgpack_pack_int64(RPK, t.participants + 1);
        key__init(&k);
        key__str(&k, c->tournament_id);
        if ((rv = apply__rec_put(a, STORE_TOURNS, &k)) != 0) {
            return rv;
        }
    }
    apply__reset_out(a);
    msgpack_pack_map(PK, 3);
    PK_KEY("tournament_id");
    shard__pack_str(PK, c->tournament_id);
    PK_KEY("player_id");
    shard__pack_str(PK, c->player_id);
    PK_KEY("joined");
    msgpack_pack_true(PK);
    apply__answer(a, 200);
    return 0;
}

/* Tournament rules on a score (API.md): joined, inside [start, end), within max_attempts.
 * Counts the attempt when allowed. @return 0 (allowed), LR_EFORBIDDEN with a message, fatal. */
static int apply__tournament_attempt(struct apply *a, struct lr_str tid, uint32_t pid,
                                     const char **why)
{
    struct apply__tourn t;
    struct key jk;
    MDB_val v;
    struct mp r;
    int rv = apply__get_tourn(a, tid, &t);
    if (rv != 0) {
        return rv == LR_ENOTFOUND ? LR_ECORRUPT : rv;
    }
    apply__join_key(&jk, tid, pid);
    rv = store_get(a->s->st, STORE_TJOINS, jk.b, jk.len, &v);
    if (rv == LR_ENOTFOUND) {
        *why = "player has not joined this tournament";
        return LR_EFORBIDDEN;
    }
    if (rv != 0) {
        return rv;
    }
    mp_init(&r, v.mv_data, v.mv_size);
    uint32_t n = mp_array(&r);
    (void)mp_i64(&r);
    int64_t attempts = mp_i64(&r);
    int64_t joined_ms = mp_i64(&r);
    if (n != 3 || !mp_done(&r)) {
        return LR_ECORRUPT;
    }
    if (a->c->ts < t.start_ms || a->c->ts >= t.end_ms) {
        *why = "tournament is not active";
        return LR_EFORBIDDEN;
    }
    if (t.max_attempts > 0 && attempts >= t.max_attempts) {
        *why = "no attempts left";
        return LR_EFORBIDDEN;
    }
    apply__rec_begin(a, 2);
    msgpack_pack_int64(RPK, attempts + 1);
    msgpack_pack_int64(RPK, joined_ms);
    return apply__rec_put(a, STORE_TJOINS, &jk);
}

static int apply__score(struct apply *a, const struct cmd_score *c)
{
    struct shard *s = a->s;
    struct rec_player p;
    struct apply__plan plan;
    struct board *bd = boards__get(&s->boards, c->board_id.p, c->board_id.len);
    int rv;
    if (bd == NULL) {
        return apply__fail(a, LR_ENOTFOUND, "board %.*s not found", (int)c->board_id.len,
                           c->board_id.p);
    }
    if ((rv = apply__player(a, c->player_id, &p)) != 0) {
        return rv == LR_ENOTFOUND ? apply__fail(a, rv, "player %.*s not found",
                                                (int)c->player_id.len, c->player_id.p)
                                  : rv;
    }
    rv = apply__score_plan(a, bd, p.pid, bd->op, c->score, c->subscore, c->metadata, a->c->ts,
                           &plan);
    if (rv == LR_ERANGE) {
        return apply__fail(a, rv, "the resulting score is outside [-(2^53-1), 2^53-1]");
    }
    if (rv != 0) {
        return rv;
    }
    if (bd->tournament) {
        const char *why = "";
        rv = apply__tournament_attempt(a, c->board_id, p.pid, &why);
        if (rv == LR_EFORBIDDEN) {
            return apply__fail(a, rv, "%s", why);
        }
        if (rv != 0) {
            return rv;
        }
    }
    if ((rv = apply__score_write(a, &plan)) != 0) {
        return rv;
    }
    struct lr_str game = {bd->game_id, (uint32_t)strlen(bd->game_id)};
    if ((rv = apply__stats_add(a, p.pid, a->c->ts, (struct lr_str){"", 0}, 0, 0, 1)) != 0 ||
        (game.len && (rv = apply__stats_add(a, p.pid, a->c->ts, game, 0, 0, 1)) != 0)) {
        return rv;
    }
    const struct apply__win *x = &plan.win[0]; /* alltime when the board has it */
    if (x->changed) {
        apply__event_score(a, bd, c->player_id, &x->now);
    }
    apply__reset_out(a);
    msgpack_pack_map(PK, 7);
    PK_KEY("board_id");
    shard__pack_str(PK, c->board_id);
    PK_KEY("player_id");
    shard__pack_str(PK, c->player_id);
    PK_KEY("score");
    msgpack_pack_int64(PK, x->now.score);
    PK_KEY("subscore");
    msgpack_pack_int64(PK, x->now.subscore);
    PK_KEY("improved");
    x->changed ? msgpack_pack_true(PK) : msgpack_pack_false(PK);
    PK_KEY("region_rank");
    msgpack_pack_uint64(PK, apply__plan_rank(a, &plan, 0));
    PK_KEY("updated_at");
    shard__pack_time(PK, x->now.updated_ms);
    apply__answer(a, 200);
    return 0;
}

static int apply__unlock(struct apply *a, const struct cmd_unlock *c)
{
    struct shard *s = a->s;
    struct rec_player p;
    struct rec_game g;
    struct rec_ach ach;
    struct rec_progress pr = {.progress = 0, .unlocked = 0, .unlocked_ms = -1, .updated_ms = -1, .hseq = -1};
    struct rec_pgame pg = {.unlocked = 0, .last_unlock_ms = -1};
    struct key gk, ak, prk, pgk;
    MDB_val v;
    int rv, had_progress, had_pgame;

    /* Read phase. */
    if ((rv = apply__player(a, c->player_id, &p)) != 0) {
        return rv == LR_ENOTFOUND ? apply__fail(a, rv, "player %.*s not found",
                                                (int)c->player_id.len, c->player_id.p)
                                  : rv;
    }
    key__init(&gk);
    key__str(&gk, c->game_id);
    if ((rv = store_get(s->st, STORE_GAMES, gk.b, gk.len, &v)) != 0) {
        return rv == LR_ENOTFOUND ? apply__fail(a, rv, "game %.*s not found",
                                                (int)c->game_id.len, c->game_id.p)
                                  : rv;
    }
    if ((rv = rec__game(&v, &g)) != 0) {
        return rv;
    }
    key__init(&ak);
    key__strz(&ak, c->game_id);
    key__str(&ak, c->achievement_id);
    if ((rv = store_get(s->st, STORE_ACHS, ak.b, ak.len, &v)) != 0) {
        return rv == LR_ENOTFOUND ? apply__fail(a, rv, "achievement %.*s not found in game %.*s",
                                                (int)c->achievement_id.len, c->achievement_id.p,
                                                (int)c->game_id.len, c->game_id.p)
                                  : rv;
    }
    if ((rv = rec__ach(&v, &ach)) != 0) {
        return rv;
    }
    key__init(&prk);
    key__u32(&prk, p.pid);
    key__strz(&prk, c->game_id);
    key__str(&prk, c->achievement_id);
    rv = store_get(s->st, STORE_PROGRESS, prk.b, prk.len, &v);
    had_progress = rv == 0;
    if ((had_progress && (rv = rec__progress(&v, &pr)) != 0) ||
        (!had_progress && rv != LR_ENOTFOUND)) {
        return rv;
    }
    key__init(&pgk);
    key__u32(&pgk, p.pid);
    key__str(&pgk, c->game_id);
    rv = store_get(s->st, STORE_PGAMES, pgk.b, pgk.len, &v);
    had_pgame = rv == 0;
    if ((had_pgame && (rv = rec__pgame(&v, &pg)) != 0) || (!had_pgame && rv != LR_ENOTFOUND)) {
        return rv;
    }
    char bid[VALID_ID_MAX + 1];
    int blen = snprintf(bid, sizeof bid, "points.%.*s", (int)c->game_id.len, c->game_id.p);
    struct board *pb = boards__get(&s->boards, bid, (size_t)blen);
    if (pb == NULL) {
        return LR_ECORRUPT; /* game_put creates it */
    }

    int64_t add = c->steps == 0 ? ach.steps - pr.progress : c->steps;
    int64_t progress = pr.unlocked ? pr.progress : pr.progress + add;
    if (progress > ach.steps) {
        progress = ach.steps;
    }
    int newly = !pr.unlocked && progress >= ach.steps;
    int changed = !pr.unlocked && progress != pr.progress;
    int64_t awarded = newly ? ach.points : 0;
    struct apply__plan plan;
    rv = apply__score_plan(a, pb, p.pid, CMD_OP_INCR, awarded, 0, (struct lr_str){"", 0},
                           a->c->ts, &plan);
    if (rv == LR_ERANGE) {
        return apply__fail(a, rv, "the player's points would leave the score range");
    }
    if (rv != 0) {
        return rv;
    }
    int64_t total_points = plan.win[0].had_old ? plan.win[0].old.score : 0;

    /* Write phase. */
    if (changed || !had_progress) {
        if (had_progress) {
            struct key hk;
            key__init(&hk);
            key__u32(&hk, p.pid);
            key__u64(&hk, ~(uint64_t)pr.hseq);
            if ((rv = store_del(s->st, STORE_HISTORY, hk.b, hk.len)) != 0) {
                return rv == LR_ENOTFOUND ? LR_ECORRUPT : rv;
            }
        }
        pr.progress = progress;
        pr.updated_ms = a->c->ts;
        pr.hseq = (int64_t)++s->hseq;
        if (newly) {
            pr.unlocked = 1;
            pr.unlocked_ms = a->c->ts;
        }
        if ((rv = apply__put_progress(a, &prk, &pr)) != 0) {
            return rv;
        }
        struct key hk;
        key__init(&hk);
        key__u32(&hk, p.pid);
        key__u64(&hk, ~(uint64_t)pr.hseq);
        apply__rec_begin(a, 2);
        shard__pack_str(RPK, c->game_id);
        shard__pack_str(RPK, c->achievement_id);
        if ((rv = apply__rec_put(a, STORE_HISTORY, &hk)) != 0) {
            return rv;
        }
    }
    if (!had_pgame || newly) {
        if (newly) {
            pg.unlocked++;
            pg.last_unlock_ms = a->c->ts;
        }
        if ((rv = apply__put_pgame(a, &pgk, &pg)) != 0) {
            return rv;
        }
    }
    if (!had_pgame) {
        char name[VALID_NAME_MAX * 4 + 1];
        snprintf(name, sizeof name, "%.*s", (int)g.name.len, g.name.p);
        g.name.p = name;
        g.players++;
        if ((rv = apply__put_game(a, &gk, &g)) != 0) {
            return rv;
        }
    }
    if (newly) {
        char name[VALID_NAME_MAX * 4 + 1], desc[VALID_DESC_MAX * 4 + 1];
        snprintf(name, sizeof name, "%.*s", (int)ach.name.len, ach.name.p);
        snprintf(desc, sizeof desc, "%.*s", (int)ach.description.len, ach.description.p);
        ach.name.p = name;
        ach.description.p = desc;
        ach.unlocked_count++;
        if ((rv = apply__put_ach(a, &ak, &ach)) != 0 ||
            (rv = apply__score_write(a, &plan)) != 0 ||
            (rv = apply__stats_add(a, p.pid, a->c->ts, (struct lr_str){"", 0}, 1, awarded, 0)) !=
                0 ||
            (rv = apply__stats_add(a, p.pid, a->c->ts, c->game_id, 1, awarded, 0)) != 0) {
            return rv;
        }
        total_points = plan.win[0].now.score;

        apply__reset_out(a);
        msgpack_pack_map(PK, 8);
        PK_KEY("type");
        PK_KEY("achievement.unlocked");
        PK_KEY("player_id");
        shard__pack_str(PK, c->player_id);
        PK_KEY("game_id");
        shard__pack_str(PK, c->game_id);
        PK_KEY("achievement_id");
        shard__pack_str(PK, c->achievement_id);
        PK_KEY("points");
        msgpack_pack_int64(PK, awarded);
        PK_KEY("at");
        shard__pack_time(PK, a->c->ts);
        PK_KEY("region");
        shard__pack_cstr(PK, s->region);
        PK_KEY("index");
        msgpack_pack_uint64(PK, a->index);
        apply__emit(a);
        if (plan.win[0].changed) {
            apply__event_score(a, pb, c->player_id, &plan.win[0].now);
        }
    }

    apply__reset_out(a);
    msgpack_pack_map(PK, 10);
    PK_KEY("player_id");
    shard__pack_str(PK, c->player_id);
    PK_KEY("game_id");
    shard__pack_str(PK, c->game_id);
    PK_KEY("achievement_id");
    shard__pack_str(PK, c->achievement_id);
    PK_KEY("progress");
    msgpack_pack_int64(PK, pr.progress);
    PK_KEY("steps");
    msgpack_pack_int64(PK, ach.steps);
    PK_KEY("newly_unlocked");
    newly ? msgpack_pack_true(PK) : msgpack_pack_false(PK);
    PK_KEY("unlocked");
    pr.unlocked ? msgpack_pack_true(PK) : msgpack_pack_false(PK);
    PK_KEY("unlocked_at");
    shard__pack_time(PK, pr.unlocked ? pr.unlocked_ms : -1);
    PK_KEY("points_awarded");
    msgpack_pack_int64(PK, awarded);
    PK_KEY("total_points");
    msgpack_pack_int64(PK, total_points);
    apply__answer(a, 200);
    return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

typedef int (*apply__fn)(struct apply *a, const struct cmd *c);

#define APPLY__THUNK(code, NAME, name, flags)                                                  \
    static int apply__thunk_##name(struct apply *a, const struct cmd *c)                       \
    {                                                                                          \
        return apply__##name(a, &c->u.name);                                                   \
    }
CMD_LIST(APPLY__THUNK)
#undef APPLY__THUNK

static const apply__fn apply__table[CMD__TYPE_END] = {
#define APPLY__ROW(code, NAME, name, flags) [code] = apply__thunk_##name,
    CMD_LIST(APPLY__ROW)
#undef APPLY__ROW
};

/* ---- idempotency --------------------------------------------------------------------------- */

/* Idempotency record: [ver, request_hash, expires_ms, status, body]. */
struct apply__idem {
    int present;
    uint64_t rec_hash; /* digest term of the stored record, when present */
    uint64_t hash;
    int64_t expires_ms;
    int status;
    struct lr_str body;
};

static void apply__idem_key(struct key *k, uint32_t pid, struct lr_str key)
{
    key__init(k);
    key__u32(k, pid);
    key__str(k, key);
}

static int apply__idem_get(struct apply *a, const struct key *k, struct apply__idem *r)
{
    MDB_val v;
    struct mp m;
    r->present = 0;
    int rv = store_get(a->s->st, STORE_IDEM, k->b, k->len, &v);
    if (rv == LR_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    r->rec_hash = store_record_hash(STORE_IDEM, k->b, k->len, v.mv_data, v.mv_size);
    mp_init(&m, v.mv_data, v.mv_size);
    uint32_t n = mp_array(&m);
    int64_t ver = mp_i64(&m);
    r->hash = (uint64_t)mp_i64(&m);
    r->expires_ms = mp_i64(&m);
    r->status = (int)mp_i64(&m);
    r->body = mp_str(&m);
    if (n != 5 || ver != REC_VERSION || !mp_done(&m)) {
        return LR_ECORRUPT;
    }
    r->present = 1;
    return 0;
}

/* Store the answer under @k; @prior is what apply__idem_get found there (an expired record
 * or nothing). */
static int apply__idem_put(struct apply *a, const struct key *k, uint64_t hash, int64_t expires,
                           const struct apply__idem *prior)
{
    struct shard *s = a->s;
    int rv;
    apply__rec_begin(a, 4);
    /* The hash is stored as int64 so every reader sees the same 64 bits. */
    msgpack_pack_int64(RPK, (int64_t)hash);
    msgpack_pack_int64(RPK, expires);
    msgpack_pack_int64(RPK, a->status);
    msgpack_pack_bin_with_body(RPK, s->obuf.data, s->obuf.size);
    if ((rv = store_put_known(s->st, STORE_IDEM, k->b, k->len, s->rbuf.data, s->rbuf.size,
                              prior->present, prior->rec_hash)) != 0) {
        return rv;
    }
    /* The expiry key is new: a live record with this key would have been replayed, and an
     * expired one expires strictly before @expires. */
    struct key ek;
    key__init(&ek);
    key__i64(&ek, expires);
    key__str(&ek, (struct lr_str){(const char *)k->b, (uint32_t)k->len});
    return store_put_known(s->st, STORE_IDEMEXP, ek.b, ek.len, "", 0, 0, 0);
}

/* Drop a few idempotency keys that expired before @now (stamped time, so every replica drops
 * the same ones at the same index). */
static int apply__idem_purge(struct shard *s, int64_t now)
{
    MDB_txn *txn;
    int rv = store_read(s->st, &txn);
    if (rv != 0) {
        return rv;
    }
    for (int n = 0; n < APPLY__PURGE_PER_ENTRY; n++) {
        MDB_cursor *cur;
        MDB_val k, v;
        if (mdb_cursor_open(txn, store_dbi(s->st, STORE_IDEMEXP), &cur) != 0) {
            return LR_EIO;
        }
        int mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        unsigned char kb[KEY_MAX];
        size_t klen = k.mv_size;
        if (mrv == 0 && klen <= KEY_MAX) {
            memcpy(kb, k.mv_data, klen);
        }
        mdb_cursor_close(cur);
        if (mrv == MDB_NOTFOUND) {
            return 0;
        }
        if (mrv != 0) {
            return err_from_mdb(mrv);
        }
        if (klen < 8 + 4 || klen > KEY_MAX) {
            return LR_ECORRUPT;
        }
        int64_t expires = (int64_t)(key__get_u64(kb) ^ (1ULL << 63));
        if (expires >= now) {
            return 0;
        }
        struct apply a = {.s = s};
        struct apply__idem r;
        struct key ik;
        key__init(&ik);
        key__str(&ik, (struct lr_str){(const char *)kb + 8, (uint32_t)(klen - 8)});
        if ((rv = apply__idem_get(&a, &ik, &r)) != 0) {
            return rv;
        }
        if (r.present && r.expires_ms == expires &&
            (rv = store_del(s->st, STORE_IDEM, ik.b, ik.len)) != 0) {
            return rv;
        }
        if ((rv = store_del(s->st, STORE_IDEMEXP, kb, klen)) != 0) {
            return rv;
        }
    }
    return 0;
}

/* ---- the committed-event log ----------------------------------------------------------------- */

/* Record: [ver, event, event, ...] under the index (u64 BE). */
static int apply__events_put(struct shard *s, uint64_t index)
{
    struct key k;
    if (s->nevents == 0) {
        return 0;
    }
    if (s->eoom) {
        return LR_ENOMEM;
    }
    msgpack_sbuffer_clear(&s->rbuf);
    msgpack_pack_array(&s->rpk, s->nevents + 1);
    msgpack_pack_int64(&s->rpk, REC_VERSION);
    if (msgpack_sbuffer_write(&s->rbuf, s->ebuf.data, s->ebuf.size) != 0) {
        return LR_ENOMEM;
    }
    key__init(&k);
    key__u64(&k, index);
    return store_put(s->st, STORE_EVENTS, k.b, k.len, s->rbuf.data, s->rbuf.size);
}

/* Drop events older than the retention window: at most a few records an entry, chosen by the
 * index alone, so every replica holds the same window. */
static int apply__events_trim(struct shard *s, uint64_t index)
{
    MDB_txn *txn;
    int rv;
    if (index <= SHARD_EVENTS_RETAIN) {
        return 0;
    }
    if ((rv = store_read(s->st, &txn)) != 0) {
        return rv;
    }
    for (int n = 0; n < 4; n++) {
        MDB_cursor *cur;
        MDB_val k, v;
        unsigned char kb[8];
        if (mdb_cursor_open(txn, store_dbi(s->st, STORE_EVENTS), &cur) != 0) {
            return LR_EIO;
        }
        int mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (mrv == 0 && k.mv_size == 8) {
            memcpy(kb, k.mv_data, 8);
        }
        mdb_cursor_close(cur);
        if (mrv == MDB_NOTFOUND) {
            return 0;
        }
        if (mrv != 0) {
            return err_from_mdb(mrv);
        }
        if (k.mv_size != 8) {
            return LR_ECORRUPT;
        }
        if (key__get_u64(kb) + SHARD_EVENTS_RETAIN >= index) {
            return 0;
        }
        if ((rv = store_del(s->st, STORE_EVENTS, kb, 8)) != 0) {
            return rv;
        }
    }
    return 0;
}

/* Apply command @c with API.md's idempotency rules around it. */
static int apply__command(struct apply *a, const struct cmd *c)
{
    struct lr_str player, ikey;
    struct apply__idem prior = {0};
    struct key k;
    uint64_t hash = 0;
    int rv;
    cmd_idem(c, &player, &ikey);
    if (ikey.len) {
        struct rec_player p;
        if ((rv = apply__player(a, player, &p)) != 0) {
            return rv == LR_ENOTFOUND ? apply__fail(a, rv, "player %.*s not found",
                                                    (int)player.len, player.p)
                                      : rv;
        }
        apply__idem_key(&k, p.pid, ikey);
        if ((rv = apply__idem_get(a, &k, &prior)) != 0) {
            return rv;
        }
        hash = cmd_request_hash(c);
        if (prior.present && prior.expires_ms >= c->ts) {
            if (prior.hash != hash) {
                return apply__fail(a, LR_ECONFLICT,
                                   "idempotency key was used with a different request");
            }
            apply__reset_out(a);
            msgpack_sbuffer_write(&a->s->obuf, prior.body.p, prior.body.len);
            apply__answer(a, prior.status);
            return 1; /* replayed */
        }
    }
    if ((rv = apply__table[c->type](a, c)) != 0) {
        return rv;
    }
    if (ikey.len && a->status >= 200 && a->status < 300) {
        if ((rv = apply__idem_put(a, &k, hash, c->ts + APPLY__IDEM_TTL_MS, &prior)) != 0) {
            return rv;
        }
    }
    return 0;
}

int shard_apply(struct shard *s, uint64_t index, const void *buf, size_t len,
                const struct shard_sink *sink)
{
    struct cmd_entry e;
    struct cmd c;
    char msg[LR_ERRMSG_SIZE];
    int rv;
    if (index <= s->applied) {
        return 0; /* replayed from the raft log: its effects are already in LMDB */
    }
    if (!store_in_write(s->st) && (rv = store_begin(s->st)) != 0) {
        return errmsg_set(s->errmsg, rv, "apply: %s", store_errmsg(s->st));
    }
    msgpack_unpacked_destroy(&s->up);
    msgpack_unpacked_init(&s->up);
    msgpack_sbuffer_clear(&s->ebuf);
    s->nevents = 0;
    s->eoom = 0;
    if ((rv = apply__events_trim(s, index)) != 0) {
        return errmsg_set(s->errmsg, rv, "apply: events: %s", store_errmsg(s->st));
    }
    if (cmd_entry_decode(buf, len, &s->up, &e, msg) != 0) {
        /* A no-op, but still an applied index: every replica skips it the same way. */
        s->applied = index;
        return 0;
    }
    for (uint32_t i = 0; i < e.n; i++) {
        struct apply a = {.s = s, .sink = sink, .index = index, .i = i, .c = &c};
        int replayed = 0;
        rv = cmd_decode(&e.cmds[i], &c, msg);
        if (rv != 0) {
            apply__fail(&a, rv, "%s", msg);
        } else {
            if (i == 0 && (rv = apply__idem_purge(s, c.ts)) != 0) {
                return errmsg_set(s->errmsg, rv, "apply: purge: %s", err_message(rv));
            }
            rv = apply__command(&a, &c);
            if (rv == 1) {
                replayed = 1;
            } else if (rv != 0) {
                assert(apply__is_fatal(rv)); /* handlers answer input errors through apply__fail */
                return errmsg_set(s->errmsg, rv, "apply %s at index %llu: %s (%s)",
                                  cmd_name(c.type), (unsigned long long)index, err_message(rv),
                                  store_errmsg(s->st));
            }
        }
        if (sink && sink->result) {
            sink->result(sink->data, i, a.status, s->obuf.data, s->obuf.size, replayed);
        }
    }
    if ((rv = apply__events_put(s, index)) != 0) {
        return errmsg_set(s->errmsg, rv, "apply: events: %s", store_errmsg(s->st));
    }
    s->applied = index;
    return 0;
}
