/* shard/shard.c — opening, group commit, and the start-up rebuild of memory from LMDB.
 *
 * Memory (player names, board configs, rank indexes) is a pure function of the committed
 * LMDB state, rebuilt by shard__load at open and after any aborted group. That is what lets
 * apply skip undo logs: a fatal error mid-group drops the group and rebuilds, so memory and
 * LMDB can never disagree (docs/durability.md). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "mp.h"
#include "shard_int.h"

#define SHARD__SCHEMA 1

static int shard__meta_get_u64(struct shard *s, const char *name, uint64_t *v, int *found)
{
    MDB_val val;
    int rv = store_get(s->st, STORE_META, name, strlen(name), &val);
    *found = rv == 0;
    if (rv == LR_ENOTFOUND) {
        *v = 0; /* never committed: a reload after an abort must forget the group's value */
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    if (val.mv_size != 8) {
        return LR_ECORRUPT;
    }
    *v = key__get_u64(val.mv_data);
    return 0;
}

int shard__meta_put_u64(struct shard *s, const char *name, uint64_t v)
{
    struct key k;
    key__init(&k);
    key__u64(&k, v);
    return store_put(s->st, STORE_META, name, strlen(name), k.b, k.len);
}

int shard__player(struct shard *s, struct lr_str id, struct rec_player *r)
{
    MDB_val v;
    int rv = store_get(s->st, STORE_PLAYERS, id.p, id.len, &v);
    if (rv != 0) {
        return rv;
    }
    return rec__player(&v, r);
}

/* ---- rebuild ------------------------------------------------------------------------------ */

struct shard__pl {
    uint32_t pid;
    struct lr_str id, guild;
};

static int shard__cmp_pid(const void *x, const void *y)
{
    uint32_t a = ((const struct shard__pl *)x)->pid, b = ((const struct shard__pl *)y)->pid;
    return a < b ? -1 : a > b;
}

static int shard__load_players(struct shard *s, MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_val k, v;
    struct shard__pl *pl = NULL;
    size_t n = 0, cap = 0;
    int rv = 0, mrv;
    if ((mrv = mdb_cursor_open(txn, store_dbi(s->st, STORE_PLAYERS), &cur)) != 0) {
        return err_from_mdb(mrv);
    }
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct rec_player r;
        if (rec__player(&v, &r) != 0 || !valid_id(k.mv_data, k.mv_size, VALID_ID_MAX)) {
            rv = errmsg_set(s->errmsg, LR_ECORRUPT, "load: bad player record");
            goto out;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            struct shard__pl *np = realloc(pl, cap * sizeof *np);
            if (np == NULL) {
                rv = LR_ENOMEM;
                goto out;
            }
            pl = np;
        }
        pl[n].pid = r.pid;
        pl[n].id = (struct lr_str){k.mv_data, (uint32_t)k.mv_size};
        pl[n].guild = r.guild;
        n++;
    }
    if (mrv != MDB_NOTFOUND) {
        rv = err_from_mdb(mrv);
        goto out;
    }
    if (n) {
        qsort(pl, n, sizeof *pl, shard__cmp_pid);
    }
    if (n != s->next_pid) {
        rv =
            errmsg_set(s->errmsg, LR_ECORRUPT, "load: %zu players but next pid %u", n, s->next_pid);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if ((rv = names__add(&s->names, pl[i].pid, pl[i].id, pl[i].guild)) != 0) {
            errmsg_set(s->errmsg, rv, "load: player numbers are not dense");
            goto out;
        }
    }
out:
    mdb_cursor_close(cur);
    free(pl);
    return rv;
}

static int shard__load_boards(struct shard *s, MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rv = 0, mrv;
    if ((mrv = mdb_cursor_open(txn, store_dbi(s->st, STORE_BOARDS), &cur)) != 0) {
        return err_from_mdb(mrv);
    }
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct mp r;
        struct board *bd;
        mp_init(&r, v.mv_data, v.mv_size);
        uint32_t n = mp_array(&r);
        int64_t ver = mp_i64(&r), order = mp_i64(&r), op = mp_i64(&r), windows = mp_i64(&r);
        int64_t reset = mp_i64(&r), top = mp_i64(&r);
        mp_skip(&r);
        struct lr_str game = mp_str(&r);
        int tournament = mp_bool(&r);
        int64_t version = mp_i64(&r);
        /* Records written before keep_periods existed have 10 fields: the default applies. */
        int64_t keep = n == 11 ? mp_i64(&r) : CMD_KEEP_PERIODS_DEFAULT;
        if ((n != 10 && n != 11) || ver != REC_VERSION || !mp_done(&r) || order < 0 || order > 1 ||
            op < 0 || op > 3 || windows < 1 || windows > 31 || reset < 0 ||
            game.len > VALID_GAME_ID_MAX || keep < 1 || keep > CMD_KEEP_PERIODS_MAX ||
            !valid_id(k.mv_data, k.mv_size, VALID_ID_MAX)) {
            rv = errmsg_set(s->errmsg, LR_ECORRUPT, "load: bad board record");
            break;
        }
        if ((rv = boards__put(&s->boards, k.mv_data, k.mv_size, &bd)) != 0) {
            break;
        }
        bd->order = (int)order;
        bd->op = (int)op;
        bd->windows = (unsigned)windows;
        bd->reset_s = reset;
        bd->snapshot_top = top;
        bd->tournament = tournament;
        bd->version = version;
        bd->keep = keep;
        memcpy(bd->game_id, game.p, game.len);
        bd->game_id[game.len] = '\0';
    }
    mdb_cursor_close(cur);
    if (rv == 0 && mrv != MDB_NOTFOUND) {
        rv = err_from_mdb(mrv);
    }
    return rv;
}

static int shard__cmp_key(const void *x, const void *y, void *idx)
{
    return rankidx_compare(idx, x, y);
}

static int shard__load_scores(struct shard *s, MDB_txn *txn)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rv = 0, mrv;
    if ((mrv = mdb_cursor_open(txn, store_dbi(s->st, STORE_SCORES), &cur)) != 0) {
        return err_from_mdb(mrv);
    }
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kb = k.mv_data;
        struct rec_score r;
        if (k.mv_size < 4 + 1 + 1 + 8 || rec__score(&v, &r) != 0) {
            rv = errmsg_set(s->errmsg, LR_ECORRUPT, "load: bad score record");
            break;
        }
        size_t blen = k.mv_size - 14;
        uint32_t pid = key__get_u32(kb);
        unsigned w = kb[4 + blen + 1];
        int64_t period = (int64_t)(key__get_u64(kb + 4 + blen + 2) ^ (1ULL << 63));
        struct board *bd = boards__get(&s->boards, (const char *)kb + 4, blen);
        if (bd == NULL || kb[4 + blen] != 0 || w >= TIMEFMT_NWINDOWS || pid >= s->next_pid) {
            rv = errmsg_set(s->errmsg, LR_ECORRUPT, "load: score record of unknown board/player");
            break;
        }
        struct rankset *rs = boards__set(&s->boards, bd, (enum timefmt_window)w, period, 1);
        if (rs == NULL) {
            rv = LR_ENOMEM;
            break;
        }
        struct rankkey rk = boards__key(bd, r.score, r.subscore, r.updated_ms, pid);
        if (rs->npending == rs->cappending) {
            size_t ncap = rs->cappending ? rs->cappending * 2 : 64;
            struct rankkey *np = realloc(rs->pending, ncap * sizeof *np);
            if (np == NULL) {
                rv = LR_ENOMEM;
                break;
            }
            rs->pending = np;
            rs->cappending = ncap;
        }
        rs->pending[rs->npending++] = rk;
        const char *guild = names__guild(&s->names, pid);
        if (guild) {
            struct rankidx *g = boards__guild(&s->boards, rs, guild, 1);
            if (g == NULL || rankidx_insert(g, &rk) != 0) {
                rv = errmsg_set(s->errmsg, LR_ECORRUPT, "load: guild index insert failed");
                break;
            }
        }
    }
    mdb_cursor_close(cur);
    if (rv == 0 && mrv != MDB_NOTFOUND) {
        rv = err_from_mdb(mrv);
    }
    /* Sort each ranking once and bulk-load it: packed leaves, n log n instead of n inserts. */
    size_t pos = 0, pos2;
    struct strmap_slot *sl, *sl2;
    while ((sl = strmap_next(&s->boards.by_id, &pos)) != NULL) {
        struct board *bd = sl->val;
        pos2 = 0;
        while ((sl2 = strmap_next(&bd->sets, &pos2)) != NULL) {
            struct rankset *rs = sl2->val;
            if (rv == 0 && rs->npending) {
                qsort_r(rs->pending, rs->npending, sizeof *rs->pending, shard__cmp_key, rs->all);
                if (rankidx_load(rs->all, rs->pending, rs->npending) != 0) {
                    rv = errmsg_set(s->errmsg, LR_ECORRUPT, "load: duplicate rank keys");
                }
            }
            free(rs->pending);
            rs->pending = NULL;
            rs->npending = rs->cappending = 0;
        }
    }
    return rv;
}

int shard__load(struct shard *s)
{
    MDB_txn *txn;
    MDB_val v;
    uint64_t u, clock, audit_days;
    int found, rv;
    struct rankidx_pool *pool = s->boards.pool;
    boards__free(&s->boards);
    names__free(&s->names);
    names__init(&s->names);
    boards__init(&s->boards, names__resolver(&s->names));
    s->boards.pool = pool;
    if ((rv = shard__meta_get_u64(s, "applied", &s->applied, &found)) != 0 ||
        (rv = shard__meta_get_u64(s, "hseq", &s->hseq, &found)) != 0 ||
        (rv = shard__meta_get_u64(s, "next_pid", &u, &found)) != 0 ||
        (rv = shard__meta_get_u64(s, "clock", &clock, &found)) != 0 ||
        (rv = shard__meta_get_u64(s, "catalog", &s->catalog_through, &found)) != 0 ||
        (rv = shard__meta_get_u64(s, "audit_days", &audit_days, &found)) != 0) {
        errmsg_set(s->errmsg, rv, "load: meta: %s", err_message(rv));
        goto out;
    }
    if (clock > (uint64_t)INT64_MAX) {
        rv = errmsg_set(s->errmsg, LR_ECORRUPT, "load: clock %llu", (unsigned long long)clock);
        goto out;
    }
    s->clock_ms = (int64_t)clock;
    if (audit_days > CMD_AUDIT_DAYS_MAX || (found && audit_days < CMD_AUDIT_DAYS_MIN)) {
        rv = errmsg_set(s->errmsg, LR_ECORRUPT, "load: audit days %llu",
                        (unsigned long long)audit_days);
        goto out;
    }
    s->audit_days = found ? (uint32_t)audit_days : CMD_AUDIT_DAYS_MIN;
    if (u >= RANKKEY_FOREIGN) {
        rv = errmsg_set(s->errmsg, LR_ECORRUPT, "load: next pid %llu", (unsigned long long)u);
        goto out;
    }
    s->next_pid = (uint32_t)u;
    s->applied_committed = s->applied;
    rv = store_get(s->st, STORE_META, "region", 6, &v);
    if (rv == 0 && (v.mv_size != strlen(s->region) || memcmp(v.mv_data, s->region, v.mv_size))) {
        rv = errmsg_set(s->errmsg, LR_EINVAL, "load: this data belongs to region %.*s, not %s",
                        (int)v.mv_size, (const char *)v.mv_data, s->region);
        goto out;
    }
    if (rv != 0 && rv != LR_ENOTFOUND) {
        goto out;
    }
    if ((rv = store_read(s->st, &txn)) != 0 || (rv = shard__load_players(s, txn)) != 0 ||
        (rv = shard__load_boards(s, txn)) != 0 || (rv = evict__load(s, txn)) != 0 ||
        (rv = shard__load_scores(s, txn)) != 0) {
        goto out;
    }
out:
    store_read_end(s->st);
    return rv;
}

/* Write the region name and schema once, so a data dir cannot be opened as another region. */
static int shard__init_meta(struct shard *s)
{
    MDB_val v;
    int rv = store_get(s->st, STORE_META, "region", 6, &v);
    store_read_end(s->st);
    if (rv != LR_ENOTFOUND) {
        return rv;
    }
    if ((rv = store_begin(s->st)) != 0) {
        return rv;
    }
    unsigned char schema = SHARD__SCHEMA;
    if ((rv = store_put(s->st, STORE_META, "region", 6, s->region, strlen(s->region))) != 0 ||
        (rv = store_put(s->st, STORE_META, "schema", 6, &schema, 1)) != 0) {
        store_abort(s->st);
        return rv;
    }
    return store_commit(s->st);
}

static int shard__obuf_write(void *data, const char *buf, size_t len)
{
    return msgpack_sbuffer_write(data, buf, len);
}

int shard_open(const struct shard_config *cfg, struct shard **out, char *errmsg)
{
    struct store_config sc = {cfg->dir, cfg->map_size, cfg->fast};
    struct shard *s;
    struct rankidx_pool *pool;
    int rv;
    if (cfg->region == NULL || !valid_id(cfg->region, strlen(cfg->region), VALID_ID_MAX)) {
        return errmsg_set(errmsg, LR_EINVAL, "shard: region must be an id");
    }
    if ((s = calloc(1, sizeof *s)) == NULL) {
        return errmsg_set(errmsg, LR_ENOMEM, "shard: out of memory");
    }
    if (rankidx_pool_new(&pool) != 0) {
        free(s);
        return errmsg_set(errmsg, LR_ENOMEM, "shard: out of memory");
    }
    snprintf(s->region, sizeof s->region, "%s", cfg->region);
    msgpack_sbuffer_init(&s->rbuf);
    msgpack_packer_init(&s->rpk, &s->rbuf, shard__obuf_write);
    msgpack_sbuffer_init(&s->obuf);
    msgpack_packer_init(&s->opk, &s->obuf, shard__obuf_write);
    msgpack_unpacked_init(&s->up);
    msgpack_sbuffer_init(&s->ebuf);
    names__init(&s->names);
    boards__init(&s->boards, names__resolver(&s->names));
    s->boards.pool = pool;
    if ((rv = store_open(&sc, &s->st, errmsg)) != 0) {
        goto err_after_alloc;
    }
    if ((rv = shard__init_meta(s)) != 0) {
        errmsg_set(errmsg, rv, "shard: init: %s", store_errmsg(s->st));
        goto err_after_store;
    }
    if ((rv = shard__load(s)) != 0) {
        snprintf(errmsg, LR_ERRMSG_SIZE, "shard: %.200s", s->errmsg);
        goto err_after_store;
    }
    *out = s;
    return 0;

err_after_store:
    store_close(s->st);
err_after_alloc:
    boards__free(&s->boards);
    rankidx_pool_free(s->boards.pool);
    names__free(&s->names);
    msgpack_unpacked_destroy(&s->up);
    msgpack_sbuffer_destroy(&s->rbuf);
    msgpack_sbuffer_destroy(&s->obuf);
    msgpack_sbuffer_destroy(&s->ebuf);
    free(s);
    assert(rv != 0);
    return rv;
}

void shard_close(struct shard *s)
{
    if (s == NULL) {
        return;
    }
    store_close(s->st);
    boards__free(&s->boards);
    rankidx_pool_free(s->boards.pool);
    names__free(&s->names);
    msgpack_unpacked_destroy(&s->up);
    msgpack_sbuffer_destroy(&s->rbuf);
    msgpack_sbuffer_destroy(&s->obuf);
    msgpack_sbuffer_destroy(&s->ebuf);
    free(s);
}

int shard_commit(struct shard *s)
{
    int rv;
    if (!store_in_write(s->st)) {
        return 0;
    }
    if ((rv = shard__meta_put_u64(s, "applied", s->applied)) != 0 ||
        (rv = shard__meta_put_u64(s, "next_pid", s->next_pid)) != 0 ||
        (rv = shard__meta_put_u64(s, "hseq", s->hseq)) != 0 ||
        (rv = shard__meta_put_u64(s, "clock", (uint64_t)s->clock_ms)) != 0 ||
        (rv = store_commit(s->st)) != 0) {
        errmsg_set(s->errmsg, rv, "commit: %s", store_errmsg(s->st));
        shard_abort(s);
        return rv;
    }
    s->applied_committed = s->applied;
    return 0;
}

int shard_abort(struct shard *s)
{
    store_abort(s->st);
    return shard__load(s);
}

int shard_grow(struct shard *s)
{
    return store_grow(s->st);
}

uint64_t shard_applied_index(const struct shard *s)
{
    return s->applied;
}

uint64_t shard_catalog_through(const struct shard *s)
{
    return s->catalog_through;
}

int64_t shard_clock_ms(const struct shard *s)
{
    return s->clock_ms;
}

/* Records of @db in the current view; @what names it in the error sentence. */
static int shard__count(struct shard *s, enum store_db db, const char *what, uint64_t *out)
{
    MDB_txn *txn;
    MDB_stat st;
    int rv = store_read(s->st, &txn);
    if (rv != 0) {
        return rv;
    }
    int mrv = mdb_stat(txn, store_dbi(s->st, db), &st);
    store_read_end(s->st);
    if (mrv != 0) {
        return errmsg_set(s->errmsg, err_from_mdb(mrv), "%s count: %s", what, mdb_strerror(mrv));
    }
    *out = st.ms_entries;
    return 0;
}

int shard_idem_count(struct shard *s, uint64_t *out)
{
    return shard__count(s, STORE_IDEMEXP, "idem", out);
}

int shard_audit_count(struct shard *s, uint64_t *out)
{
    return shard__count(s, STORE_AUDIT, "audit", out);
}

uint32_t shard_audit_days(const struct shard *s)
{
    return s->audit_days;
}

uint64_t shard_digest(const struct shard *s)
{
    return store_digest(s->st);
}

int shard_digest_scan(struct shard *s, uint64_t *out)
{
    return store_digest_scan(s->st, out);
}

int shard_copy(struct shard *s, int fd)
{
    if (store_in_write(s->st)) {
        return errmsg_set(s->errmsg, LR_EINVAL, "copy: a group is open");
    }
    int mrv = mdb_env_copyfd2(store_env(s->st), fd, MDB_CP_COMPACT);
    if (mrv != 0) {
        return errmsg_set(s->errmsg, err_from_mdb(mrv), "copy: %s", mdb_strerror(mrv));
    }
    return 0;
}

int shard_state_bytes(struct shard *s, uint64_t *out)
{
    return store_used_bytes(s->st, out);
}

MDB_env *shard_env(struct shard *s)
{
    return store_env(s->st);
}

const char *shard_region(const struct shard *s)
{
    return s->region;
}

const char *shard_errmsg(const struct shard *s)
{
    return s->errmsg;
}

void shard_usage(struct shard *s, struct store_usage *out)
{
    store_usage_get(s->st, out);
}

size_t shard_periods(struct shard *s, struct lr_str board, enum timefmt_window w, int64_t *periods,
                     uint64_t *entries, size_t cap)
{
    struct board *bd = boards__get(&s->boards, board.p, board.len);
    if (bd == NULL || (unsigned)w >= TIMEFMT_NWINDOWS) {
        return 0;
    }
    const struct board_periods *p = &bd->periods[w];
    for (size_t i = 0; i < p->n && i < cap; i++) {
        struct rankset *rs = boards__set(&s->boards, bd, w, p->v[i], 0);
        periods[i] = p->v[i];
        entries[i] = rs ? rankidx_count(rs->all) : 0;
    }
    return p->n;
}

size_t shard_memory(const struct shard *s)
{
    return boards__memory(&s->boards) + names__memory(&s->names);
}
