/* shard/apply.c — applying commands to LMDB and the rank indexes.
 *
 * Every handler works in two phases: a read phase that loads what it needs and validates
 * everything that can fail on input, then a write phase that cannot fail on input. So a
 * command that is refused writes nothing and answers an error result, and the only failures
 * of the write phase are fatal ones (LMDB full or broken, no memory), after which the caller
 * aborts the whole group and the shard reloads its memory from the committed state
 * (shard_abort). Nothing partial survives either way.
 *
 * This file holds the machinery (results, records, scores, stats, events, idempotency,
 * dispatch); the handlers live in apply_catalog.c and apply_player.c.
 *
 * Determinism: handlers read the command's stamped ts, never a clock; every record is
 * written in a fixed layout; iteration order comes from LMDB keys, never from a hash map. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../lib/hash.h"
#include "mp.h"
#include "apply_int.h"

#define APPLY__IDEM_TTL_MS (25LL * 3600 * 1000) /* API.md promises at least 24 h */
/* Expired idempotency keys an entry purges: at least APPLY__PURGE_MIN, and twice the entry's
 * commands, so the purge drops keys faster than one entry can insert them (CMD_ENTRY_MAX) and
 * a backlog left by a burst drains instead of growing (docs/data-layout.md). Expired audit
 * entries (audit.c) are purged by the same bound, for the same reason. */
#define APPLY__PURGE_MIN 16
#define APPLY__PURGE_PER_CMD 2

/* Look up player @id for the running command, once. */
int apply__player(struct apply *a, struct lr_str id, struct rec_player *p)
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

int apply__name_copy(struct apply__name *out, struct lr_str name)
{
    if (name.len > sizeof out->b) {
        return LR_ECORRUPT; /* valid_name bounds every stored name */
    }
    memcpy(out->b, name.p, name.len);
    out->len = name.len;
    return 0;
}

/* ---- results ------------------------------------------------------------------------- */

void apply__reset_out(struct apply *a)
{
    msgpack_sbuffer_clear(&a->s->obuf);
}

/* Answer the command with the body packed into obuf. */
void apply__answer(struct apply *a, int status)
{
    a->status = status;
}

/* Refuse the command: an error body, nothing written. */
int apply__fail(struct apply *a, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

int apply__fail(struct apply *a, int rv, const char *fmt, ...)
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
    rec__pack_cstr(PK, err_api_code(rv));
    PK_KEY("message");
    rec__pack_cstr(PK, msg);
    apply__answer(a, err_http_status(rv));
    return 0;
}

static int apply__is_fatal(int rv)
{
    return rv == LR_ENOMEM || rv == LR_EIO || rv == LR_EMAPFULL || rv == LR_ENOSPC ||
           rv == LR_ECORRUPT || rv == LR_EINTERNAL;
}

/* ---- record writers --------------------------------------------------------------------- */

void apply__rec_begin(struct apply *a, uint32_t nfields)
{
    msgpack_sbuffer_clear(&a->s->rbuf);
    msgpack_pack_array(RPK, nfields + 1);
    msgpack_pack_int64(RPK, REC_VERSION);
}

int apply__rec_put(struct apply *a, enum store_db db, const struct key *k)
{
    return store_put(a->s->st, db, k->b, k->len, a->s->rbuf.data, a->s->rbuf.size);
}

int apply__put_player(struct apply *a, const struct key *k, const struct rec_player *p)
{
    apply__rec_begin(a, 5);
    msgpack_pack_int64(RPK, p->pid);
    msgpack_pack_int64(RPK, p->created_ms);
    rec__pack_str(RPK, p->name);
    rec__pack_str(RPK, p->region);
    rec__pack_str(RPK, p->guild);
    return apply__rec_put(a, STORE_PLAYERS, k);
}

int apply__put_game(struct apply *a, const struct key *k, const struct rec_game *g)
{
    apply__rec_begin(a, 4);
    rec__pack_str(RPK, g->name);
    msgpack_pack_int64(RPK, g->achievements_total);
    msgpack_pack_int64(RPK, g->players);
    msgpack_pack_int64(RPK, g->version);
    return apply__rec_put(a, STORE_GAMES, k);
}

int apply__put_ach(struct apply *a, const struct key *k, const struct rec_ach *r)
{
    apply__rec_begin(a, 7);
    rec__pack_str(RPK, r->name);
    rec__pack_str(RPK, r->description);
    msgpack_pack_int64(RPK, r->points);
    r->hidden ? msgpack_pack_true(RPK) : msgpack_pack_false(RPK);
    msgpack_pack_int64(RPK, r->steps);
    msgpack_pack_int64(RPK, r->unlocked_count);
    msgpack_pack_int64(RPK, r->version);
    return apply__rec_put(a, STORE_ACHS, k);
}

int apply__put_score(struct apply *a, const struct key *k, const struct rec_score *r, int had_old,
                     uint64_t old_hash)
{
    apply__rec_begin(a, 4);
    msgpack_pack_int64(RPK, r->score);
    msgpack_pack_int64(RPK, r->subscore);
    msgpack_pack_int64(RPK, r->updated_ms);
    rec__pack_str(RPK, r->metadata);
    return store_put_known(a->s->st, STORE_SCORES, k->b, k->len, a->s->rbuf.data, a->s->rbuf.size,
                           had_old, old_hash);
}

int apply__put_progress(struct apply *a, const struct key *k, const struct rec_progress *p)
{
    apply__rec_begin(a, 5);
    msgpack_pack_int64(RPK, p->progress);
    p->unlocked ? msgpack_pack_true(RPK) : msgpack_pack_false(RPK);
    msgpack_pack_int64(RPK, p->unlocked_ms);
    msgpack_pack_int64(RPK, p->updated_ms);
    msgpack_pack_int64(RPK, p->hseq);
    return apply__rec_put(a, STORE_PROGRESS, k);
}

int apply__put_pgame(struct apply *a, const struct key *k, const struct rec_pgame *g)
{
    apply__rec_begin(a, 2);
    msgpack_pack_int64(RPK, g->unlocked);
    msgpack_pack_int64(RPK, g->last_unlock_ms);
    return apply__rec_put(a, STORE_PGAMES, k);
}

void apply__pack_prizes(msgpack_packer *pk, const struct cmd_prizes *p)
{
    msgpack_pack_array(pk, p->n);
    for (uint32_t i = 0; i < p->n; i++) {
        msgpack_pack_array(pk, 3);
        msgpack_pack_int64(pk, p->items[i].rank_from);
        msgpack_pack_int64(pk, p->items[i].rank_to);
        rec__pack_str(pk, p->items[i].reward);
    }
}

/* Board record: [ver, order, op, windows, reset_s, snapshot_top, rewards, game_id, tournament,
 * version, keep] */
int apply__put_board(struct apply *a, const struct board *bd, const struct cmd_prizes *rw)
{
    struct key k;
    struct lr_str id = {bd->id, (uint32_t)strlen(bd->id)};
    struct lr_str game = {bd->game_id, (uint32_t)strlen(bd->game_id)};
    key__init(&k);
    key__str(&k, id);
    apply__rec_begin(a, 10);
    msgpack_pack_int64(RPK, bd->order);
    msgpack_pack_int64(RPK, bd->op);
    msgpack_pack_int64(RPK, bd->windows);
    msgpack_pack_int64(RPK, bd->reset_s);
    msgpack_pack_int64(RPK, bd->snapshot_top);
    apply__pack_prizes(RPK, rw);
    rec__pack_str(RPK, game);
    bd->tournament ? msgpack_pack_true(RPK) : msgpack_pack_false(RPK);
    msgpack_pack_int64(RPK, bd->version);
    msgpack_pack_int64(RPK, bd->keep);
    return apply__rec_put(a, STORE_BOARDS, &k);
}

/* ---- scores ------------------------------------------------------------------------------ */

void apply__score_key(struct key *k, uint32_t pid, const char *board, enum timefmt_window w,
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
int apply__score_plan(struct apply *a, struct board *bd, uint32_t pid, int op, int64_t value,
                      int64_t sub, struct lr_str meta, int64_t ts, struct apply__plan *plan)
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
            x->changed =
                !x->had_old || apply__better(bd->order, value, sub, x->old.score, x->old.subscore);
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
            x->changed = !x->had_old || x->now.score != x->old.score || sub != x->old.subscore ||
                         meta.len != 0;
            break;
        default: return LR_ECORRUPT;
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

/* Write phase of a planned score change, then the eviction it triggers (evict.c): past
 * periods beyond the board's keep, a bounded number of records a command. */
int apply__score_write(struct apply *a, const struct apply__plan *plan)
{
    struct boards *bs = &a->s->boards;
    uint32_t budget = EVICT_PER_COMMAND;
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
        struct rankkey old =
            boards__key(plan->bd, x->old.score, x->old.subscore, x->old.updated_ms, plan->pid);
        struct rankkey now =
            boards__key(plan->bd, x->now.score, x->now.subscore, x->now.updated_ms, plan->pid);
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
    return evict__after_write(a->s, plan->bd, a->c->ts, &budget);
}

/* Region rank (1-based) of the planned entry in window @i. */
uint64_t apply__plan_rank(struct apply *a, const struct apply__plan *plan, uint32_t i)
{
    const struct apply__win *x = &plan->win[i];
    struct rankset *rs = boards__set(&a->s->boards, plan->bd, x->w, x->period, 0);
    struct rankkey k =
        boards__key(plan->bd, x->now.score, x->now.subscore, x->now.updated_ms, plan->pid);
    return rs ? rankidx_count_before(rs->all, &k) + 1 : 0;
}

/* ---- statistics rollups ------------------------------------------------------------------ */

int apply__stats_add(struct apply *a, uint32_t pid, int64_t ts, struct lr_str game, int64_t unlocks,
                     int64_t points, int64_t submissions)
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

void apply__emit(struct apply *a)
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

/* The score.updated event of @r, @player's entry on @bd. It carries what a board entry shows
 * (API.md: name and metadata beside the key), so a consumer (the gateway's tops, a router's
 * read model) can show the entry without asking the region. Both come from what the command
 * already holds: @name is the player record the handler read (a copy: LMDB's pages die at the
 * first write), @r->metadata the plan's. No LMDB read here, only the bytes of the event. */
void apply__event_score(struct apply *a, const struct board *bd, struct lr_str player,
                        struct lr_str name, const struct rec_score *r)
{
    apply__reset_out(a);
    msgpack_pack_map(PK, 10);
    PK_KEY("type");
    PK_KEY("score.updated");
    PK_KEY("board_id");
    rec__pack_cstr(PK, bd->id);
    PK_KEY("player_id");
    rec__pack_str(PK, player);
    PK_KEY("name");
    rec__pack_str(PK, name);
    PK_KEY("score");
    msgpack_pack_int64(PK, r->score);
    PK_KEY("subscore");
    msgpack_pack_int64(PK, r->subscore);
    PK_KEY("metadata");
    /* As board entries carry it (shard/query.c): BIN of the stored JSON text, or nil. */
    if (r->metadata.len) {
        msgpack_pack_bin_with_body(PK, r->metadata.p, r->metadata.len);
    } else {
        msgpack_pack_nil(PK);
    }
    PK_KEY("updated_at");
    rec__pack_time(PK, r->updated_ms);
    PK_KEY("region");
    rec__pack_cstr(PK, a->s->region);
    PK_KEY("index");
    msgpack_pack_uint64(PK, a->index);
    apply__emit(a);
}

/* ---- dispatch ------------------------------------------------------------------------------ */

typedef int (*apply__fn)(struct apply *a, const struct cmd *c);

#define APPLY__THUNK(code, NAME, name, flags)                                                      \
    static int apply__thunk_##name(struct apply *a, const struct cmd *c)                           \
    {                                                                                              \
        return apply__##name(a, &c->u.name);                                                       \
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

int apply__expire(struct shard *s, enum store_db index, int64_t before, uint32_t max,
                  apply__expire_fn drop)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rv = store_read(s->st, &txn);
    if (rv != 0) {
        return rv;
    }
    int mrv = mdb_cursor_open(txn, store_dbi(s->st, index), &cur);
    if (mrv != 0) {
        return err_from_mdb(mrv);
    }
    for (uint32_t n = 0; n < max; n++) {
        MDB_val k, v;
        unsigned char kb[KEY_MAX];
        mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
        if (mrv == MDB_NOTFOUND) {
            break;
        }
        if (mrv != 0) {
            rv = err_from_mdb(mrv);
            goto err_after_cursor_open;
        }
        if (k.mv_size < 8 || k.mv_size > KEY_MAX) {
            rv = LR_ECORRUPT;
            goto err_after_cursor_open;
        }
        /* A copy: the key's memory belongs to the page the deletes below rewrite. */
        size_t klen = k.mv_size;
        memcpy(kb, k.mv_data, klen);
        int64_t stamp = (int64_t)(key__get_u64(kb) ^ (1ULL << 63));
        if (stamp >= before) {
            break;
        }
        if ((rv = drop(s, stamp, kb + 8, klen - 8)) != 0 ||
            (rv = store_del(s->st, index, kb, klen)) != 0) {
            goto err_after_cursor_open;
        }
    }
    mdb_cursor_close(cur);
    return 0;

err_after_cursor_open:
    mdb_cursor_close(cur);
    assert(rv != 0);
    return rv;
}

/* apply__expire's drop for idempotency keys: @k is the idem record's key, which a later use
 * of the key may have rewritten with a later expiry (then it stays). */
static int apply__idem_drop(struct shard *s, int64_t expires, const unsigned char *k, size_t klen)
{
    struct apply a = {.s = s};
    struct apply__idem r;
    struct key ik;
    int rv;
    if (klen < 4) {
        return LR_ECORRUPT;
    }
    key__init(&ik);
    key__str(&ik, (struct lr_str){(const char *)k, (uint32_t)klen});
    if ((rv = apply__idem_get(&a, &ik, &r)) != 0) {
        return rv;
    }
    if (r.present && r.expires_ms == expires) {
        return store_del(s->st, STORE_IDEM, ik.b, ik.len);
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
            return rv == LR_ENOTFOUND
                       ? apply__fail(a, rv, "player %.*s not found", (int)player.len, player.p)
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
            s->clock_ms = c.ts > s->clock_ms ? c.ts : s->clock_ms; /* decoded: 0 <= ts */
            uint32_t purge = e.n * APPLY__PURGE_PER_CMD;
            purge = purge > APPLY__PURGE_MIN ? purge : APPLY__PURGE_MIN;
            if (i == 0 &&
                ((rv = apply__expire(s, STORE_IDEMEXP, c.ts, purge, apply__idem_drop)) != 0 ||
                 (rv = audit__purge(s, c.ts, purge)) != 0)) {
                return errmsg_set(s->errmsg, rv, "apply: purge: %s", err_message(rv));
            }
            rv = apply__command(&a, &c);
            if (rv == 1) {
                replayed = 1; /* it changed nothing: no second audit entry */
            } else if (rv == 0) {
                rv = audit__record(&a, &c);
            }
            if (rv != 0 && rv != 1) {
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
