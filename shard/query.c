/* shard/query.c — every read one region can answer, as msgpack maps with API.md's fields.
 *
 * Conventions of the answers (docs/data-layout.md, "results"):
 * - times are RFC 3339 strings, absent times nil;
 * - "metadata" is packed as BIN holding the stored compact JSON text, so a router embeds it
 *   as JSON rather than as a string;
 * - board answers carry "total" (entries in the scope) and, for pages, "offset" (entries
 *   before the first one returned), which a router sums over regions for exact global ranks.
 *
 * Reads see the committed state, or the open group's state when called between applies of
 * one group (store_read), and never write. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "mp.h"
#include "shard_int.h"

struct query {
    struct shard *s;
    const struct shard_query *q;
    msgpack_packer pk;
    char *errmsg;
};

#define QPK (&x->pk)
#define QKEY(k) msgpack_pack_str_with_body(QPK, k, sizeof(k) - 1)

static double query__round2(double v) { return round(v * 100.0) / 100.0; }

static int query__player(struct query *x, struct lr_str id, struct rec_player *p)
{
    int rv = shard__player(x->s, id, p);
    if (rv == LR_ENOTFOUND) {
        return errmsg_set(x->errmsg, rv, "player %.*s not found", (int)id.len, id.p);
    }
    return rv;
}

/* ---- boards ------------------------------------------------------------------------------ */

/* The ranking a board query reads: board, rank set (may be NULL: nobody yet) and index. */
struct query__scope {
    struct board *bd;
    struct rankset *rs;
    struct rankidx *idx;
    enum timefmt_window window;
    int64_t period;
};

static int query__scope(struct query *x, struct query__scope *sc)
{
    const struct shard_query *q = x->q;
    sc->bd = boards__get(&x->s->boards, q->board_id.p, q->board_id.len);
    if (sc->bd == NULL) {
        return errmsg_set(x->errmsg, LR_ENOTFOUND, "board %.*s not found", (int)q->board_id.len,
                          q->board_id.p);
    }
    if (!(sc->bd->windows & (1u << q->window))) {
        return errmsg_set(x->errmsg, LR_EINVAL, "board %s has no %s window", sc->bd->id,
                          timefmt_window_name(q->window));
    }
    sc->window = q->window;
    sc->period = q->has_period ? q->period
                               : timefmt_period_of(q->window, q->now_ms, sc->bd->reset_s);
    sc->rs = boards__set(&x->s->boards, sc->bd, q->window, sc->period, 0);
    sc->idx = NULL;
    if (sc->rs) {
        if (q->guild.len) {
            char g[VALID_ID_MAX + 1];
            snprintf(g, sizeof g, "%.*s", (int)q->guild.len, q->guild.p);
            sc->idx = boards__guild(&x->s->boards, sc->rs, g, 0);
        } else {
            sc->idx = sc->rs->all;
        }
    }
    return 0;
}

static void query__pack_scope_fields(struct query *x, const struct query__scope *sc)
{
    char buf[VALID_ID_MAX + 8];
    char period[TIMEFMT_PERIOD_MAX];
    const struct shard_query *q = x->q;
    int n = q->guild.len ? snprintf(buf, sizeof buf, "guild:%.*s", (int)q->guild.len, q->guild.p)
                         : snprintf(buf, sizeof buf, "region:%s", x->s->region);
    QKEY("board_id");
    shard__pack_cstr(QPK, sc->bd->id);
    QKEY("scope");
    msgpack_pack_str_with_body(QPK, buf, (size_t)n);
    QKEY("window");
    shard__pack_cstr(QPK, timefmt_window_name(q->window));
    QKEY("period");
    if (timefmt_period_format(q->window, sc->period, period) == 0) {
        shard__pack_cstr(QPK, period);
    } else {
        msgpack_pack_nil(QPK);
    }
}

/* Stored score of @pid on the scope's board/window/period. */
static int query__score(struct query *x, const struct query__scope *sc, uint32_t pid,
                        struct rec_score *r)
{
    struct key k;
    MDB_val v;
    struct lr_str b = {sc->bd->id, (uint32_t)strlen(sc->bd->id)};
    unsigned char w = (unsigned char)sc->window;
    key__init(&k);
    key__u32(&k, pid);
    key__strz(&k, b);
    key__str(&k, (struct lr_str){(const char *)&w, 1});
    key__i64(&k, sc->period);
    int rv = store_get(x->s->st, STORE_SCORES, k.b, k.len, &v);
    if (rv != 0) {
        return rv;
    }
    return rec__score(&v, r);
}

/* One entry of a board answer, read from the key the index holds. */
static int query__pack_entry(struct query *x, const struct query__scope *sc,
                             const struct rankkey *rk, uint64_t rank)
{
    size_t idlen;
    const char *id = names__id(&x->s->names, rk->pid, &idlen);
    struct rec_player p;
    struct rec_score r;
    int rv;
    if ((rv = shard__player(x->s, (struct lr_str){id, (uint32_t)idlen}, &p)) != 0 ||
        (rv = query__score(x, sc, rk->pid, &r)) != 0) {
        return rv == LR_ENOTFOUND ? LR_ECORRUPT : rv; /* the index named a missing record */
    }
    msgpack_pack_map(QPK, 8);
    QKEY("rank");
    msgpack_pack_uint64(QPK, rank);
    QKEY("player_id");
    msgpack_pack_str_with_body(QPK, id, idlen);
    QKEY("name");
    shard__pack_str(QPK, p.name);
    QKEY("region");
    shard__pack_str(QPK, p.region);
    QKEY("score");
    msgpack_pack_int64(QPK, r.score);
    QKEY("subscore");
    msgpack_pack_int64(QPK, r.subscore);
    QKEY("metadata");
    if (r.metadata.len) {
        msgpack_pack_bin_with_body(QPK, r.metadata.p, r.metadata.len);
    } else {
        msgpack_pack_nil(QPK);
    }
    QKEY("updated_at");
    shard__pack_time(QPK, r.updated_ms);
    return 0;
}

/* Pack up to @n entries from 0-based rank @from as an array. */
static int query__pack_range(struct query *x, const struct query__scope *sc, uint64_t from,
                             uint64_t n)
{
    struct rankidx_iter it;
    struct rankkey rk;
    uint64_t total = sc->idx ? rankidx_count(sc->idx) : 0;
    if (from >= total) {
        n = 0;
    } else if (n > total - from) {
        n = total - from;
    }
    msgpack_pack_array(QPK, (uint32_t)n);
    if (n == 0) {
        return 0;
    }
    if (rankidx_seek(sc->idx, from, &it) != 0) {
        return LR_ECORRUPT;
    }
    for (uint64_t i = 0; i < n; i++) {
        int rv;
        if (!rankidx_next(&it, &rk)) {
            return LR_ECORRUPT;
        }
        if ((rv = query__pack_entry(x, sc, &rk, from + i + 1)) != 0) {
            return rv;
        }
    }
    return 0;
}

static int query__top(struct query *x)
{
    const struct shard_query *q = x->q;
    struct query__scope sc;
    struct rankkey ck;
    char idbuf[VALID_ID_MAX + 1];
    int rv = query__scope(x, &sc);
    if (rv != 0) {
        return rv;
    }
    uint32_t limit = q->limit ? q->limit : 100;
    if (limit > SHARD_PAGE_MAX) {
        return errmsg_set(x->errmsg, LR_EINVAL, "limit must be 1 to %d", SHARD_PAGE_MAX);
    }
    uint64_t total = sc.idx ? rankidx_count(sc.idx) : 0, from = 0;
    if (q->cursor.len) {
        if (cursor_decode_key(q->cursor.p, q->cursor.len, &ck, idbuf) != 0) {
            return errmsg_set(x->errmsg, LR_EINVAL, "cursor is not valid");
        }
        /* Start strictly after the cursor's key, whether or not it is still on the board. */
        from = sc.idx ? rankidx_count_before(sc.idx, &ck) + (uint64_t)rankidx_contains(sc.idx, &ck)
                      : 0;
    }
    uint64_t n = from >= total ? 0 : (total - from < limit ? total - from : limit);
    msgpack_pack_map(QPK, 8);
    query__pack_scope_fields(x, &sc);
    QKEY("entries");
    if ((rv = query__pack_range(x, &sc, from, n)) != 0) {
        return rv;
    }
    QKEY("next_cursor");
    if (from + n < total) {
        struct rankidx_iter it;
        struct rankkey last;
        size_t idlen;
        char cur[CURSOR_MAX];
        if (rankidx_seek(sc.idx, from + n - 1, &it) != 0 || !rankidx_next(&it, &last)) {
            return LR_ECORRUPT;
        }
        const char *id = names__id(&x->s->names, last.pid, &idlen);
        cursor_encode_key(&last, id, idlen, cur);
        shard__pack_cstr(QPK, cur);
    } else {
        msgpack_pack_nil(QPK);
    }
    QKEY("total");
    msgpack_pack_uint64(QPK, total);
    QKEY("offset");
    msgpack_pack_uint64(QPK, from);
    return 0;
}

static int query__rank(struct query *x)
{
    const struct shard_query *q = x->q;
    struct query__scope sc;
    struct rec_player p;
    struct rec_score r;
    int rv;
    if (q->around > 50) {
        return errmsg_set(x->errmsg, LR_EINVAL, "around must be 0 to 50");
    }
    if ((rv = query__scope(x, &sc)) != 0 || (rv = query__player(x, q->player_id, &p)) != 0) {
        return rv;
    }
    rv = query__score(x, &sc, p.pid, &r);
    struct rankkey rk = board__key(sc.bd, r.score, r.subscore, r.updated_ms, p.pid);
    if (rv == LR_ENOTFOUND || (rv == 0 && (sc.idx == NULL || !rankidx_contains(sc.idx, &rk)))) {
        return errmsg_set(x->errmsg, LR_ENOTFOUND, "player %.*s has no score in this scope",
                          (int)q->player_id.len, q->player_id.p);
    }
    if (rv != 0) {
        return rv;
    }
    uint64_t rank0 = rankidx_count_before(sc.idx, &rk), total = rankidx_count(sc.idx);
    uint64_t from = rank0 > q->around ? rank0 - q->around : 0;
    msgpack_pack_map(QPK, 12);
    query__pack_scope_fields(x, &sc);
    QKEY("player_id");
    shard__pack_str(QPK, q->player_id);
    QKEY("rank");
    msgpack_pack_uint64(QPK, rank0 + 1);
    QKEY("score");
    msgpack_pack_int64(QPK, r.score);
    QKEY("subscore");
    msgpack_pack_int64(QPK, r.subscore);
    QKEY("updated_at");
    shard__pack_time(QPK, r.updated_ms);
    QKEY("total");
    msgpack_pack_uint64(QPK, total);
    QKEY("percentile");
    msgpack_pack_double(QPK, query__round2(100.0 * (double)(total - rank0 - 1) / (double)total));
    QKEY("around");
    return query__pack_range(x, &sc, from, rank0 - from + 1 + q->around);
}

struct query__friend {
    uint64_t rank0;
    struct rankkey key;
};

static int query__cmp_friend(const void *a, const void *b)
{
    uint64_t x = ((const struct query__friend *)a)->rank0;
    uint64_t y = ((const struct query__friend *)b)->rank0;
    return x < y ? -1 : x > y;
}

static int query__friends(struct query *x)
{
    const struct shard_query *q = x->q;
    struct query__scope sc;
    struct query__friend f[SHARD_FRIENDS_MAX];
    uint32_t n = 0;
    int rv;
    if (q->nids > SHARD_FRIENDS_MAX) {
        return errmsg_set(x->errmsg, LR_EINVAL, "at most %d ids", SHARD_FRIENDS_MAX);
    }
    if ((rv = query__scope(x, &sc)) != 0) {
        return rv;
    }
    for (uint32_t i = 0; i < q->nids && sc.idx; i++) {
        struct rec_player p;
        struct rec_score r;
        rv = shard__player(x->s, q->ids[i], &p);
        if (rv == 0) {
            rv = query__score(x, &sc, p.pid, &r);
        }
        if (rv == LR_ENOTFOUND) {
            continue; /* ids with no score are left out */
        }
        if (rv != 0) {
            return rv;
        }
        struct rankkey rk = board__key(sc.bd, r.score, r.subscore, r.updated_ms, p.pid);
        if (!rankidx_contains(sc.idx, &rk)) {
            continue; /* not in this guild */
        }
        int dup = 0;
        for (uint32_t j = 0; j < n; j++) {
            dup |= f[j].key.pid == p.pid;
        }
        if (!dup) {
            f[n].key = rk;
            f[n].rank0 = rankidx_count_before(sc.idx, &rk);
            n++;
        }
    }
    qsort(f, n, sizeof *f, query__cmp_friend);
    msgpack_pack_map(QPK, 6);
    query__pack_scope_fields(x, &sc);
    QKEY("entries");
    msgpack_pack_array(QPK, n);
    for (uint32_t i = 0; i < n; i++) {
        if ((rv = query__pack_entry(x, &sc, &f[i].key, f[i].rank0 + 1)) != 0) {
            return rv;
        }
    }
    QKEY("total");
    msgpack_pack_uint64(QPK, sc.idx ? rankidx_count(sc.idx) : 0);
    return 0;
}

static int query__count_before(struct query *x)
{
    const struct shard_query *q = x->q;
    struct query__scope sc;
    int rv;
    if (q->nprobes > SHARD_FRIENDS_MAX) {
        return errmsg_set(x->errmsg, LR_EINVAL, "at most %d probes", SHARD_FRIENDS_MAX);
    }
    if ((rv = query__scope(x, &sc)) != 0) {
        return rv;
    }
    msgpack_pack_map(QPK, 2);
    QKEY("counts");
    msgpack_pack_array(QPK, q->nprobes);
    for (uint32_t i = 0; i < q->nprobes; i++) {
        struct rankkey k = board__key(sc.bd, q->probes[i].score, q->probes[i].subscore,
                                      q->probes[i].updated_ms, RANKKEY_FOREIGN);
        k.id = q->probes[i].player_id.p;
        k.idlen = q->probes[i].player_id.len;
        msgpack_pack_uint64(QPK, sc.idx ? rankidx_count_before(sc.idx, &k) : 0);
    }
    QKEY("total");
    msgpack_pack_uint64(QPK, sc.idx ? rankidx_count(sc.idx) : 0);
    return 0;
}

static int query__board_get(struct query *x)
{
    const struct shard_query *q = x->q;
    struct board *bd = boards__get(&x->s->boards, q->board_id.p, q->board_id.len);
    struct cmd_prizes rw;
    MDB_val v;
    struct mp r;
    if (bd == NULL) {
        return errmsg_set(x->errmsg, LR_ENOTFOUND, "board %.*s not found", (int)q->board_id.len,
                          q->board_id.p);
    }
    int rv = store_get(x->s->st, STORE_BOARDS, bd->id, strlen(bd->id), &v);
    if (rv != 0) {
        return rv == LR_ENOTFOUND ? LR_ECORRUPT : rv;
    }
    mp_init(&r, v.mv_data, v.mv_size);
    (void)mp_array(&r);
    for (int i = 0; i < 6; i++) {
        mp_skip(&r);
    }
    if (rec__prizes(&r, &rw) != 0) {
        return LR_ECORRUPT;
    }
    shard__pack_board(QPK, bd, &rw);
    return 0;
}

/* ---- players, catalog --------------------------------------------------------------------- */

static int query__player_get(struct query *x)
{
    struct rec_player p;
    int rv = query__player(x, x->q->player_id, &p);
    if (rv != 0) {
        return rv;
    }
    msgpack_pack_map(QPK, 5);
    QKEY("player_id");
    shard__pack_str(QPK, x->q->player_id);
    QKEY("name");
    shard__pack_str(QPK, p.name);
    QKEY("region");
    shard__pack_str(QPK, p.region);
    QKEY("guild");
    p.guild.len ? shard__pack_str(QPK, p.guild) : msgpack_pack_nil(QPK);
    QKEY("created_at");
    shard__pack_time(QPK, p.created_ms);
    return 0;
}

static int query__game(struct query *x, struct lr_str id, struct rec_game *g)
{
    MDB_val v;
    int rv = store_get(x->s->st, STORE_GAMES, id.p, id.len, &v);
    if (rv == LR_ENOTFOUND) {
        return errmsg_set(x->errmsg, rv, "game %.*s not found", (int)id.len, id.p);
    }
    return rv ? rv : rec__game(&v, g);
}

static int query__game_get(struct query *x)
{
    struct rec_game g;
    int rv = query__game(x, x->q->game_id, &g);
    if (rv != 0) {
        return rv;
    }
    msgpack_pack_map(QPK, 4);
    QKEY("game_id");
    shard__pack_str(QPK, x->q->game_id);
    QKEY("name");
    shard__pack_str(QPK, g.name);
    QKEY("achievements_total");
    msgpack_pack_int64(QPK, g.achievements_total);
    QKEY("players");
    msgpack_pack_int64(QPK, g.players);
    return 0;
}

/* Walk the records of @db whose keys start with @prefix, calling @fn until it returns nonzero
 * (1 = stop, else an error). */
typedef int (*query__walk_fn)(struct query *x, const MDB_val *k, const MDB_val *v, void *ctx);

static int query__walk(struct query *x, enum store_db db, const struct key *prefix,
                       const struct key *start, query__walk_fn fn, void *ctx)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    int rv = store_read(x->s->st, &txn), mrv;
    if (rv != 0) {
        return rv;
    }
    if ((mrv = mdb_cursor_open(txn, store_dbi(x->s->st, db), &cur)) != 0) {
        return err_from_mdb(mrv);
    }
    const struct key *from = start ? start : prefix;
    k.mv_data = (void *)from->b;
    k.mv_size = from->len;
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < prefix->len || memcmp(k.mv_data, prefix->b, prefix->len) != 0) {
            break;
        }
        if ((rv = fn(x, &k, &v, ctx)) != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    if (rv == 1) {
        rv = 0;
    } else if (rv == 0 && mrv != 0 && mrv != MDB_NOTFOUND) {
        rv = err_from_mdb(mrv);
    }
    return rv;
}

struct query__achs {
    struct rec_game g;
    size_t prefix;
    uint32_t n;
    int pack;
};

static int query__ach_item(struct query *x, const MDB_val *k, const MDB_val *v, void *ctx)
{
    struct query__achs *c = ctx;
    struct rec_ach a;
    if (rec__ach(v, &a) != 0) {
        return LR_ECORRUPT;
    }
    c->n++;
    if (!c->pack) {
        return 0;
    }
    int show = !a.hidden || x->q->admin;
    msgpack_pack_map(QPK, show ? 9u : 7u);
    QKEY("game_id");
    shard__pack_str(QPK, x->q->game_id);
    QKEY("achievement_id");
    msgpack_pack_str_with_body(QPK, (const char *)k->mv_data + c->prefix, k->mv_size - c->prefix);
    if (show) {
        QKEY("name");
        shard__pack_str(QPK, a.name);
        QKEY("description");
        shard__pack_str(QPK, a.description);
    }
    QKEY("points");
    msgpack_pack_int64(QPK, a.points);
    QKEY("hidden");
    a.hidden ? msgpack_pack_true(QPK) : msgpack_pack_false(QPK);
    QKEY("steps");
    msgpack_pack_int64(QPK, a.steps);
    QKEY("unlocked_count");
    msgpack_pack_int64(QPK, a.unlocked_count);
    QKEY("unlocked_pct");
    msgpack_pack_double(
        QPK, c->g.players ? query__round2(100.0 * (double)a.unlocked_count / (double)c->g.players)
                          : 0.0);
    return 0;
}

static int query__ach_list(struct query *x)
{
    struct query__achs c = {.pack = 0};
    struct key pre;
    int rv = query__game(x, x->q->game_id, &c.g);
    if (rv != 0) {
        return rv;
    }
    key__init(&pre);
    key__strz(&pre, x->q->game_id);
    c.prefix = pre.len;
    /* Two passes: msgpack needs the array length before its items. */
    if ((rv = query__walk(x, STORE_ACHS, &pre, NULL, query__ach_item, &c)) != 0) {
        return rv;
    }
    msgpack_pack_map(QPK, 3);
    QKEY("game_id");
    shard__pack_str(QPK, x->q->game_id);
    QKEY("players");
    msgpack_pack_int64(QPK, c.g.players);
    QKEY("achievements");
    msgpack_pack_array(QPK, c.n);
    c.pack = 1;
    c.n = 0;
    return query__walk(x, STORE_ACHS, &pre, NULL, query__ach_item, &c);
}

/* ---- history, dashboard, stats ------------------------------------------------------------ */

struct query__hist {
    uint32_t pid;
    struct lr_str game;   /* filter, may be empty */
    int unlocked_only;
    uint32_t limit;
    uint32_t n;           /* items matched so far */
    uint64_t last_seq;
    int more;
    int pack;
};

/* Decode one history record into its progress item; 0 and *@skip=1 when filtered out. */
static int query__hist_item(struct query *x, const MDB_val *k, const MDB_val *v,
                            struct query__hist *h, int *skip, int64_t *seq)
{
    struct mp r;
    struct rec_progress pr;
    struct rec_ach a;
    struct key pk, ak;
    MDB_val pv, av;
    int rv;
    mp_init(&r, v->mv_data, v->mv_size);
    uint32_t n = mp_array(&r);
    int64_t ver = mp_i64(&r);
    struct lr_str game = mp_str(&r), ach = mp_str(&r);
    if (n != 3 || ver != REC_VERSION || !mp_done(&r) || k->mv_size != 12 || game.len > VALID_GAME_ID_MAX ||
        ach.len > VALID_ID_MAX) {
        return LR_ECORRUPT;
    }
    *seq = (int64_t)~key__get_u64((const unsigned char *)k->mv_data + 4);
    *skip = h->game.len && (game.len != h->game.len || memcmp(game.p, h->game.p, game.len));
    if (*skip) {
        return 0;
    }
    key__init(&pk);
    key__u32(&pk, h->pid);
    key__strz(&pk, game);
    key__str(&pk, ach);
    key__init(&ak);
    key__strz(&ak, game);
    key__str(&ak, ach);
    if ((rv = store_get(x->s->st, STORE_PROGRESS, pk.b, pk.len, &pv)) != 0 ||
        (rv = rec__progress(&pv, &pr)) != 0 ||
        (rv = store_get(x->s->st, STORE_ACHS, ak.b, ak.len, &av)) != 0 ||
        (rv = rec__ach(&av, &a)) != 0) {
        return rv == LR_ENOTFOUND ? LR_ECORRUPT : rv;
    }
    if (h->unlocked_only && !pr.unlocked) {
        *skip = 1;
        return 0;
    }
    if (h->pack) {
        msgpack_pack_map(QPK, 6);
        QKEY("game_id");
        shard__pack_str(QPK, game);
        QKEY("achievement_id");
        shard__pack_str(QPK, ach);
        QKEY("progress");
        msgpack_pack_int64(QPK, pr.progress);
        QKEY("steps");
        msgpack_pack_int64(QPK, a.steps);
        QKEY("unlocked");
        pr.unlocked ? msgpack_pack_true(QPK) : msgpack_pack_false(QPK);
        QKEY("unlocked_at");
        shard__pack_time(QPK, pr.unlocked ? pr.unlocked_ms : -1);
    }
    return 0;
}

static int query__hist_walk(struct query *x, const MDB_val *k, const MDB_val *v, void *ctx)
{
    struct query__hist *h = ctx;
    int skip;
    int64_t seq;
    if (h->n == h->limit) {
        /* One more matching item exists only if some later record passes the filter. */
        int prev = h->pack;
        h->pack = 0;
        int rv = query__hist_item(x, k, v, h, &skip, &seq);
        h->pack = prev;
        if (rv != 0) {
            return rv;
        }
        h->more = !skip;
        return h->more ? 1 : 0;
    }
    int rv = query__hist_item(x, k, v, h, &skip, &seq);
    if (rv != 0 || skip) {
        return rv;
    }
    h->n++;
    h->last_seq = (uint64_t)seq;
    return 0;
}

static int query__history(struct query *x)
{
    const struct shard_query *q = x->q;
    struct rec_player p;
    struct key pre, start;
    uint64_t after = 0;
    int rv;
    if ((rv = query__player(x, q->player_id, &p)) != 0) {
        return rv;
    }
    uint32_t limit = q->limit ? q->limit : 50;
    if (limit > SHARD_PAGE_MAX) {
        return errmsg_set(x->errmsg, LR_EINVAL, "limit must be 1 to %d", SHARD_PAGE_MAX);
    }
    if (q->cursor.len && cursor_decode_seq(q->cursor.p, q->cursor.len, &after) != 0) {
        return errmsg_set(x->errmsg, LR_EINVAL, "cursor is not valid");
    }
    key__init(&pre);
    key__u32(&pre, p.pid);
    start = pre;
    if (q->cursor.len) {
        key__u64(&start, ~after + 1); /* strictly older than the cursor's item */
    }
    /* Pass 1 counts the total and this page; pass 2 packs the page. */
    struct query__hist all = {p.pid, q->game_id, 0, UINT32_MAX, 0, 0, 0, 0};
    struct query__hist page = {p.pid, q->game_id, 0, limit, 0, 0, 0, 0};
    if ((rv = query__walk(x, STORE_HISTORY, &pre, NULL, query__hist_walk, &all)) != 0 ||
        (rv = query__walk(x, STORE_HISTORY, &pre, &start, query__hist_walk, &page)) != 0) {
        return rv;
    }
    msgpack_pack_map(QPK, 3);
    QKEY("items");
    msgpack_pack_array(QPK, page.n);
    struct query__hist packing = {p.pid, q->game_id, 0, page.n, 0, 0, 0, 1};
    if (page.n && (rv = query__walk(x, STORE_HISTORY, &pre, &start, query__hist_walk,
                                    &packing)) != 0) {
        return rv;
    }
    QKEY("next_cursor");
    if (page.more) {
        char cur[CURSOR_MAX];
        cursor_encode_seq(page.last_seq, cur);
        shard__pack_cstr(QPK, cur);
    } else {
        msgpack_pack_nil(QPK);
    }
    QKEY("total");
    msgpack_pack_uint32(QPK, all.n);
    return 0;
}

/* Player-day rollup of @game (empty = all games); zeros when absent. */
static int query__stats_day(struct query *x, uint32_t pid, int64_t day, struct lr_str game,
                            struct rec_stats *r)
{
    struct key k;
    MDB_val v;
    key__init(&k);
    key__u32(&k, pid);
    key__u32(&k, (uint32_t)day);
    key__str(&k, game);
    int rv = store_get(x->s->st, STORE_STATS, k.b, k.len, &v);
    if (rv == LR_ENOTFOUND) {
        memset(r, 0, sizeof *r);
        return 0;
    }
    return rv ? rv : rec__stats(&v, r);
}

static int query__stats(struct query *x)
{
    const struct shard_query *q = x->q;
    struct rec_player p;
    int rv;
    uint32_t days = q->days ? q->days : 30;
    if (days > 90) {
        return errmsg_set(x->errmsg, LR_EINVAL, "days must be 1 to 90");
    }
    if ((rv = query__player(x, q->player_id, &p)) != 0) {
        return rv;
    }
    int64_t today = timefmt_period_of(TIMEFMT_DAILY, q->now_ms, 0);
    msgpack_pack_map(QPK, 2);
    QKEY("player_id");
    shard__pack_str(QPK, q->player_id);
    QKEY("days");
    msgpack_pack_array(QPK, days);
    for (int64_t d = today - days + 1; d <= today; d++) {
        struct rec_stats r;
        char buf[TIMEFMT_PERIOD_MAX];
        if ((rv = query__stats_day(x, p.pid, d, q->game_id, &r)) != 0) {
            return rv;
        }
        timefmt_period_format(TIMEFMT_DAILY, d, buf);
        msgpack_pack_map(QPK, 4);
        QKEY("day");
        shard__pack_cstr(QPK, buf);
        QKEY("unlocks");
        msgpack_pack_int64(QPK, r.unlocks);
        QKEY("points");
        msgpack_pack_int64(QPK, r.points);
        QKEY("score_submissions");
        msgpack_pack_int64(QPK, r.submissions);
    }
    return 0;
}

struct query__games {
    uint32_t pid;
    uint32_t n;
    int64_t points, unlocked;
    double completion_sum;
    int pack;
};

static int query__dash_game(struct query *x, const MDB_val *k, const MDB_val *v, void *ctx)
{
    struct query__games *c = ctx;
    struct rec_pgame pg;
    struct rec_game g;
    struct rec_score sc;
    struct lr_str game = {(const char *)k->mv_data + 4, (uint32_t)(k->mv_size - 4)};
    int rv;
    if (rec__pgame(v, &pg) != 0 || game.len == 0 || game.len > VALID_GAME_ID_MAX) {
        return LR_ECORRUPT;
    }
    if ((rv = query__game(x, game, &g)) != 0) {
        return rv == LR_ENOTFOUND ? LR_ECORRUPT : rv;
    }
    /* The game's points: the player's alltime entry on points.<game_id>. */
    char bid[VALID_ID_MAX + 1];
    int blen = snprintf(bid, sizeof bid, "points.%.*s", (int)game.len, game.p);
    struct query__scope s = {.bd = boards__get(&x->s->boards, bid, (size_t)blen),
                             .window = TIMEFMT_ALLTIME};
    int64_t points = 0;
    if (s.bd) {
        rv = query__score(x, &s, c->pid, &sc);
        if (rv == 0) {
            points = sc.score;
        } else if (rv != LR_ENOTFOUND) {
            return rv;
        }
    }
    double pct = g.achievements_total
                     ? query__round2(100.0 * (double)pg.unlocked / (double)g.achievements_total)
                     : 0.0;
    c->n++;
    c->points += points;
    c->unlocked += pg.unlocked;
    c->completion_sum += pct;
    if (c->pack) {
        msgpack_pack_map(QPK, 6);
        QKEY("game_id");
        shard__pack_str(QPK, game);
        QKEY("achievements_unlocked");
        msgpack_pack_int64(QPK, pg.unlocked);
        QKEY("achievements_total");
        msgpack_pack_int64(QPK, g.achievements_total);
        QKEY("completion_pct");
        msgpack_pack_double(QPK, pct);
        QKEY("points");
        msgpack_pack_int64(QPK, points);
        QKEY("last_unlock_at");
        shard__pack_time(QPK, pg.last_unlock_ms);
    }
    return 0;
}

struct query__boards {
    uint32_t pid;
    uint32_t n;
    int pack;
};

#define QUERY__DASH_BOARDS 50

static int query__dash_board(struct query *x, const MDB_val *k, const MDB_val *v, void *ctx)
{
    struct query__boards *c = ctx;
    const unsigned char *kb = k->mv_data;
    struct rec_score r;
    if (k->mv_size < 14 || rec__score(v, &r) != 0) {
        return LR_ECORRUPT;
    }
    size_t blen = k->mv_size - 14;
    if (kb[4 + blen + 1] != TIMEFMT_ALLTIME) {
        return 0;
    }
    if (c->n == QUERY__DASH_BOARDS) {
        return 1;
    }
    c->n++;
    if (c->pack) {
        struct board *bd = boards__get(&x->s->boards, (const char *)kb + 4, blen);
        struct rankset *rs = bd ? boards__set(&x->s->boards, bd, TIMEFMT_ALLTIME, 0, 0) : NULL;
        if (rs == NULL) {
            return LR_ECORRUPT;
        }
        struct rankkey rk = board__key(bd, r.score, r.subscore, r.updated_ms, c->pid);
        msgpack_pack_map(QPK, 3);
        QKEY("board_id");
        shard__pack_cstr(QPK, bd->id);
        QKEY("score");
        msgpack_pack_int64(QPK, r.score);
        QKEY("region_rank");
        msgpack_pack_uint64(QPK, rankidx_count_before(rs->all, &rk) + 1);
    }
    return 0;
}

static int query__dashboard(struct query *x)
{
    const struct shard_query *q = x->q;
    struct rec_player p;
    struct key pre;
    int rv;
    if ((rv = query__player(x, q->player_id, &p)) != 0) {
        return rv;
    }
    key__init(&pre);
    key__u32(&pre, p.pid);
    struct query__games games = {.pid = p.pid};
    struct query__hist recent = {p.pid, {"", 0}, 1, 10, 0, 0, 0, 0};
    struct query__boards boards = {.pid = p.pid};
    if ((rv = query__walk(x, STORE_PGAMES, &pre, NULL, query__dash_game, &games)) != 0 ||
        (rv = query__walk(x, STORE_HISTORY, &pre, NULL, query__hist_walk, &recent)) != 0 ||
        (rv = query__walk(x, STORE_SCORES, &pre, NULL, query__dash_board, &boards)) != 0) {
        return rv;
    }
    /* Streak: consecutive days with activity, ending today or yesterday. */
    int64_t day = timefmt_period_of(TIMEFMT_DAILY, q->now_ms, 0), streak = 0;
    struct rec_stats st;
    if ((rv = query__stats_day(x, p.pid, day, (struct lr_str){"", 0}, &st)) != 0) {
        return rv;
    }
    if (st.unlocks + st.submissions == 0) {
        day--;
    }
    for (; streak < 3660; day--, streak++) {
        if ((rv = query__stats_day(x, p.pid, day, (struct lr_str){"", 0}, &st)) != 0) {
            return rv;
        }
        if (st.unlocks + st.submissions == 0) {
            break;
        }
    }
    msgpack_pack_map(QPK, 8);
    QKEY("player_id");
    shard__pack_str(QPK, q->player_id);
    QKEY("total_points");
    msgpack_pack_int64(QPK, games.points);
    QKEY("total_achievements");
    msgpack_pack_int64(QPK, games.unlocked);
    QKEY("average_completion");
    msgpack_pack_double(QPK, games.n ? query__round2(games.completion_sum / games.n) : 0.0);
    QKEY("games");
    msgpack_pack_array(QPK, games.n);
    games = (struct query__games){.pid = p.pid, .pack = 1};
    if ((rv = query__walk(x, STORE_PGAMES, &pre, NULL, query__dash_game, &games)) != 0) {
        return rv;
    }
    QKEY("recent_unlocks");
    msgpack_pack_array(QPK, recent.n);
    recent = (struct query__hist){p.pid, {"", 0}, 1, recent.n, 0, 0, 0, 1};
    if (recent.limit &&
        (rv = query__walk(x, STORE_HISTORY, &pre, NULL, query__hist_walk, &recent)) != 0) {
        return rv;
    }
    QKEY("boards");
    msgpack_pack_array(QPK, boards.n);
    boards = (struct query__boards){.pid = p.pid, .pack = 1};
    if ((rv = query__walk(x, STORE_SCORES, &pre, NULL, query__dash_board, &boards)) != 0) {
        return rv;
    }
    QKEY("streak_days");
    msgpack_pack_int64(QPK, streak);
    return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------ */

typedef int (*query__fn)(struct query *x);

static const query__fn query__table[SHARD_Q__END] = {
#define QUERY__ROW(NAME, name) [SHARD_Q_##NAME] = query__##name,
    SHARD_QUERIES(QUERY__ROW)
#undef QUERY__ROW
};

static int query__write(void *data, const char *buf, size_t len)
{
    return msgpack_sbuffer_write(data, buf, len);
}

int shard_query(struct shard *s, const struct shard_query *q, msgpack_sbuffer *out, char *errmsg)
{
    struct query x = {.s = s, .q = q, .errmsg = errmsg};
    errmsg[0] = '\0';
    if ((unsigned)q->type >= SHARD_Q__END || (unsigned)q->window >= TIMEFMT_NWINDOWS) {
        return errmsg_set(errmsg, LR_EINVAL, "unknown query");
    }
    size_t mark = out->size;
    msgpack_packer_init(&x.pk, out, query__write);
    int rv = query__table[q->type](&x);
    store_read_end(s->st);
    if (rv != 0) {
        out->size = mark; /* drop a half-packed answer */
        if (rv == LR_ECORRUPT) {
            errmsg_set(errmsg, rv, "stored data is inconsistent");
        } else if (errmsg[0] == '\0') {
            errmsg_set(errmsg, rv, "%s", err_message(rv));
        }
    }
    return rv;
}
