/* shard/evict.c — eviction of past periods (docs/data-layout.md, "Eviction of past periods").
 *
 * A board keeps, in each dated window (daily, weekly, monthly, cycle), the current period and
 * the `keep` periods before it; older rankings leave memory and LMDB. The alltime window has
 * one period and is never evicted.
 *
 * Determinism. Nothing here reads a clock: the period that decides is the one of the writing
 * command's stamp, and a stamp never goes backwards within a region (docs/durability.md,
 * "Time stamps"). Which records go, and in which order, follows from the rank index alone
 * (the worst-ranked entry of the oldest period first), which is the same on every replica
 * and after a reload, since the index is rebuilt from LMDB. Every deletion is a store_del, so
 * the digest follows; all of it happens in the transaction of the command that triggered it.
 *
 * Floors. Deleting a period of a million players at once would stall the replica, so a
 * command deletes at most EVICT_PER_COMMAND records and the rest waits for the next writes to
 * the board. Reads must not see a period half gone, so each window has a floor, raised before
 * any deletion and persisted (STORE_FLOORS): every period below it reads as evicted, whether
 * or not its records are gone yet. A floor only rises, so a keep raised later never brings a
 * half-deleted period back.
 *
 * Why the budget suffices: a command adds at most one record per window, and deletes up to
 * EVICT_PER_COMMAND, so a backlog (a board that was quiet for a long time, or a keep that was
 * lowered) always drains while the board is written to; a board nobody writes to keeps its
 * old periods, which costs memory but no correctness, since reads go by the floor and by the
 * reader's clock (evict__first_readable). */
#include <string.h>

#include "mp.h"
#include "shard_int.h"

/* Floor record: key board_id NUL window (u8), value [v, floor]. */
static void evict__floor_key(struct key *k, const struct board *bd, enum timefmt_window w)
{
    unsigned char wb = (unsigned char)w;
    key__init(k);
    key__strz(k, lr_str_of(bd->id));
    key__str(k, (struct lr_str){(const char *)&wb, 1});
}

static int evict__floor_put(struct shard *s, const struct board *bd, enum timefmt_window w)
{
    struct key k;
    evict__floor_key(&k, bd, w);
    msgpack_sbuffer_clear(&s->rbuf);
    msgpack_pack_array(&s->rpk, 2);
    msgpack_pack_int64(&s->rpk, REC_VERSION);
    msgpack_pack_int64(&s->rpk, bd->floor[w]);
    return store_put(s->st, STORE_FLOORS, k.b, k.len, s->rbuf.data, s->rbuf.size);
}

/* Delete the worst-ranked entry of @rs: its score record and its keys in the region index
 * and in its player's guild index. */
static int evict__one(struct shard *s, struct board *bd, struct rankset *rs)
{
    struct rankidx_iter it;
    struct rankkey rk;
    struct key k;
    uint64_t n = rankidx_count(rs->all);
    if (n == 0 || rankidx_seek(rs->all, n - 1, &it) != 0 || !rankidx_next(&it, &rk)) {
        return LR_ECORRUPT;
    }
    /* The same key as apply__score_key writes. */
    unsigned char wb = (unsigned char)rs->window;
    key__init(&k);
    key__u32(&k, rk.pid);
    key__strz(&k, lr_str_of(bd->id));
    key__str(&k, (struct lr_str){(const char *)&wb, 1});
    key__i64(&k, rs->period);
    int rv = store_del(s->st, STORE_SCORES, k.b, k.len);
    if (rv != 0) {
        return rv == LR_ENOTFOUND ? LR_ECORRUPT : rv; /* the index named a missing record */
    }
    const char *guild = names__guild(&s->names, rk.pid);
    if (guild) {
        struct rankidx *g = boards__guild(&s->boards, rs, guild, 0);
        if (g == NULL || rankidx_delete(g, &rk) != 0) {
            return LR_ECORRUPT;
        }
    }
    return rankidx_delete(rs->all, &rk) == 0 ? 0 : LR_ECORRUPT;
}

int evict__after_write(struct shard *s, struct board *bd, int64_t ts, uint32_t *budget)
{
    int rv;
    for (int w = TIMEFMT_ALLTIME + 1; w < TIMEFMT_NWINDOWS; w++) {
        /* Windows the board no longer has keep their floor moving too, so their rankings go
         * as well; a window that never had a set has nothing to do. */
        if (bd->periods[w].n == 0 || (w == TIMEFMT_CYCLE && bd->reset_s <= 0)) {
            continue;
        }
        int64_t period = timefmt_period_of((enum timefmt_window)w, ts, bd->reset_s);
        if (period < bd->floor[w]) {
            /* A stamp older than the floor (a proposer that broke the stamp order; apply
             * accepts it as it is): leave what it wrote to the next command. */
            continue;
        }
        int64_t floor = period - bd->keep;
        if (floor > bd->floor[w]) {
            bd->floor[w] = floor;
            if ((rv = evict__floor_put(s, bd, (enum timefmt_window)w)) != 0) {
                return rv;
            }
        }
        while (*budget > 0) {
            struct rankset *rs = boards__oldest(&s->boards, bd, (enum timefmt_window)w);
            if (rs == NULL || rs->period >= bd->floor[w]) {
                break;
            }
            while (*budget > 0 && rankidx_count(rs->all) > 0) {
                if ((rv = evict__one(s, bd, rs)) != 0) {
                    return rv;
                }
                (*budget)--;
            }
            if (rankidx_count(rs->all) > 0) {
                break;
            }
            boards__drop(bd, rs);
        }
    }
    return 0;
}

int64_t evict__first_readable(const struct board *bd, enum timefmt_window w, int64_t now_ms)
{
    if (w == TIMEFMT_ALLTIME || (w == TIMEFMT_CYCLE && bd->reset_s <= 0)) {
        return INT64_MIN;
    }
    /* The reader's clock makes every region refuse the same periods, even a region whose
     * board has not been written to since (its floor lags); the floor covers a reader whose
     * clock is behind the stamps that already evicted. */
    int64_t by_clock = timefmt_period_of(w, now_ms, bd->reset_s) - bd->keep;
    return by_clock > bd->floor[w] ? by_clock : bd->floor[w];
}

int evict__load(struct shard *s, MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rv = 0, mrv;
    if ((mrv = mdb_cursor_open(txn, store_dbi(s->st, STORE_FLOORS), &cur)) != 0) {
        return err_from_mdb(mrv);
    }
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kb = k.mv_data;
        struct mp r;
        mp_init(&r, v.mv_data, v.mv_size);
        uint32_t n = mp_array(&r);
        int64_t ver = mp_i64(&r), floor = mp_i64(&r);
        struct board *bd =
            k.mv_size >= 3 ? boards__get(&s->boards, k.mv_data, k.mv_size - 2) : NULL;
        if (n != 2 || ver != REC_VERSION || !mp_done(&r) || bd == NULL || kb[k.mv_size - 2] != 0 ||
            kb[k.mv_size - 1] == TIMEFMT_ALLTIME || kb[k.mv_size - 1] >= TIMEFMT_NWINDOWS) {
            rv = errmsg_set(s->errmsg, LR_ECORRUPT, "load: bad period floor record");
            break;
        }
        bd->floor[kb[k.mv_size - 1]] = floor;
    }
    mdb_cursor_close(cur);
    if (rv == 0 && mrv != MDB_NOTFOUND) {
        rv = err_from_mdb(mrv);
    }
    return rv;
}
