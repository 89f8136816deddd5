/* shard/query_player.c — reads about players and the catalog: a player, games and their
 * achievements with unlock counts, unlock history and rewards by cursor, the dashboard in one
 * call, daily statistics. Conventions of the answers: query.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cursor.h"
#include "mp.h"
#include "query_int.h"

/* ---- players, catalog --------------------------------------------------------------------- */

int query__page(struct query *x, struct rec_player *p, uint32_t *limit)
{
    int rv = query__player(x, x->q->player_id, p);
    if (rv != 0) {
        return rv;
    }
    *limit = x->q->limit ? x->q->limit : 50;
    if (*limit > SHARD_PAGE_MAX) {
        return errmsg_set(x->errmsg, LR_EINVAL, "limit must be 1 to %d", SHARD_PAGE_MAX);
    }
    return 0;
}

int query__player_get(struct query *x)
{
    struct rec_player p;
    int rv = query__player(x, x->q->player_id, &p);
    if (rv != 0) {
        return rv;
    }
    msgpack_pack_map(QPK, 5);
    QKEY("player_id");
    rec__pack_str(QPK, x->q->player_id);
    QKEY("name");
    rec__pack_str(QPK, p.name);
    QKEY("region");
    rec__pack_str(QPK, p.region);
    QKEY("guild");
    p.guild.len ? rec__pack_str(QPK, p.guild) : msgpack_pack_nil(QPK);
    QKEY("created_at");
    rec__pack_time(QPK, p.created_ms);
    return 0;
}

/* Which of the ids live in this region: how a router finds the regions of a batch's players
 * in one round. */
int query__locate(struct query *x)
{
    const struct shard_query *q = x->q;
    if (q->nids > SHARD_FRIENDS_MAX) {
        return errmsg_set(x->errmsg, LR_EINVAL, "at most %d ids", SHARD_FRIENDS_MAX);
    }
    msgpack_pack_map(QPK, 1);
    QKEY("found");
    msgpack_pack_array(QPK, q->nids);
    for (uint32_t i = 0; i < q->nids; i++) {
        struct rec_player p;
        int rv = shard__player(x->s, q->ids[i], &p);
        if (rv != 0 && rv != LR_ENOTFOUND) {
            return rv;
        }
        rv == 0 ? msgpack_pack_true(QPK) : msgpack_pack_false(QPK);
    }
    return 0;
}

/* ---- rewards ------------------------------------------------------------------------------ */

/* A walk over a player's reward log (newest grant first), the reward records it names, and
 * the pending filter. The first pass finds the page and whether more follows, the second packs
 * it (msgpack needs the array length before its items). */
struct query__rewards {
    uint32_t pid;
    int pending;
    uint32_t limit;
    uint32_t n; /* items matched so far */
    uint64_t last_seq;
    int more;
    int pack;
};

static int query__reward_item(struct query *x, const MDB_val *k, const MDB_val *v, void *ctx)
{
    struct query__rewards *c = ctx;
    struct rec_reward w;
    struct key rk;
    struct mp r;
    MDB_val rval;
    int rv;
    mp_init(&r, v->mv_data, v->mv_size);
    uint32_t n = mp_array(&r);
    int64_t ver = mp_i64(&r);
    struct lr_str board = mp_str(&r);
    int64_t cycle = mp_i64(&r);
    if (n != 3 || ver != REC_VERSION || !mp_done(&r) || k->mv_size != 12 || board.len == 0 ||
        board.len > VALID_ID_MAX) {
        return LR_ECORRUPT;
    }
    key__reward(&rk, c->pid, board, cycle);
    if ((rv = store_get(x->s->st, STORE_REWARDS, rk.b, rk.len, &rval)) != 0 ||
        (rv = rec__reward(&rval, &w)) != 0) {
        return rv == LR_ENOTFOUND ? LR_ECORRUPT : rv; /* the log names a missing reward */
    }
    if (c->pending && w.claimed_ms >= 0) {
        return 0;
    }
    if (c->n == c->limit) {
        c->more = 1;
        return 1;
    }
    c->n++;
    c->last_seq = ~key__get_u64((const unsigned char *)k->mv_data + 4);
    if (c->pack) {
        rec__pack_reward(QPK, board, cycle, &w);
    }
    return 0;
}

/* A player's rewards, newest grant first (grants of one entry in the closer's order), paged
 * by an opaque cursor; "pending" keeps the unclaimed ones only. */
int query__rewards(struct query *x)
{
    const struct shard_query *q = x->q;
    struct rec_player p;
    struct key pre, start;
    uint64_t after = 0;
    int rv;
    uint32_t limit;
    if ((rv = query__page(x, &p, &limit)) != 0) {
        return rv;
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
    struct query__rewards page = {p.pid, q->pending, limit, 0, 0, 0, 0};
    if ((rv = query__walk(x, STORE_REWARDLOG, &pre, &start, query__reward_item, &page)) != 0) {
        return rv;
    }
    msgpack_pack_map(QPK, 2);
    QKEY("items");
    msgpack_pack_array(QPK, page.n);
    struct query__rewards packing = {p.pid, q->pending, page.n, 0, 0, 0, 1};
    if (page.n &&
        (rv = query__walk(x, STORE_REWARDLOG, &pre, &start, query__reward_item, &packing)) != 0) {
        return rv;
    }
    QKEY("next_cursor");
    if (page.more) {
        char cur[CURSOR_MAX];
        cursor_encode_seq(page.last_seq, cur);
        rec__pack_cstr(QPK, cur);
    } else {
        msgpack_pack_nil(QPK);
    }
    return 0;
}

int query__game(struct query *x, struct lr_str id, struct rec_game *g)
{
    MDB_val v;
    int rv = store_get(x->s->st, STORE_GAMES, id.p, id.len, &v);
    if (rv == LR_ENOTFOUND) {
        return errmsg_set(x->errmsg, rv, "game %.*s not found", (int)id.len, id.p);
    }
    return rv ? rv : rec__game(&v, g);
}

int query__game_get(struct query *x)
{
    struct rec_game g;
    int rv = query__game(x, x->q->game_id, &g);
    if (rv != 0) {
        return rv;
    }
    msgpack_pack_map(QPK, 4);
    QKEY("game_id");
    rec__pack_str(QPK, x->q->game_id);
    QKEY("name");
    rec__pack_str(QPK, g.name);
    QKEY("achievements_total");
    msgpack_pack_int64(QPK, g.achievements_total);
    QKEY("players");
    msgpack_pack_int64(QPK, g.players);
    return 0;
}

int query__walk(struct query *x, enum store_db db, const struct key *prefix,
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
    rec__pack_str(QPK, x->q->game_id);
    QKEY("achievement_id");
    msgpack_pack_str_with_body(QPK, (const char *)k->mv_data + c->prefix, k->mv_size - c->prefix);
    if (show) {
        QKEY("name");
        rec__pack_str(QPK, a.name);
        QKEY("description");
        rec__pack_str(QPK, a.description);
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

int query__ach_list(struct query *x)
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
    rec__pack_str(QPK, x->q->game_id);
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
    struct lr_str game; /* filter, may be empty */
    int unlocked_only;
    uint32_t limit;
    uint32_t n; /* items matched so far */
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
    if (n != 3 || ver != REC_VERSION || !mp_done(&r) || k->mv_size != 12 ||
        game.len > VALID_GAME_ID_MAX || ach.len > VALID_ID_MAX) {
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
        rec__pack_str(QPK, game);
        QKEY("achievement_id");
        rec__pack_str(QPK, ach);
        QKEY("progress");
        msgpack_pack_int64(QPK, pr.progress);
        QKEY("steps");
        msgpack_pack_int64(QPK, a.steps);
        QKEY("unlocked");
        pr.unlocked ? msgpack_pack_true(QPK) : msgpack_pack_false(QPK);
        QKEY("unlocked_at");
        rec__pack_time(QPK, pr.unlocked ? pr.unlocked_ms : -1);
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

int query__history(struct query *x)
{
    const struct shard_query *q = x->q;
    struct rec_player p;
    struct key pre, start;
    uint64_t after = 0;
    int rv;
    uint32_t limit;
    if ((rv = query__page(x, &p, &limit)) != 0) {
        return rv;
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
    if (page.n &&
        (rv = query__walk(x, STORE_HISTORY, &pre, &start, query__hist_walk, &packing)) != 0) {
        return rv;
    }
    QKEY("next_cursor");
    if (page.more) {
        char cur[CURSOR_MAX];
        cursor_encode_seq(page.last_seq, cur);
        rec__pack_cstr(QPK, cur);
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

int query__stats(struct query *x)
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
    rec__pack_str(QPK, q->player_id);
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
        rec__pack_cstr(QPK, buf);
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
        rec__pack_str(QPK, game);
        QKEY("achievements_unlocked");
        msgpack_pack_int64(QPK, pg.unlocked);
        QKEY("achievements_total");
        msgpack_pack_int64(QPK, g.achievements_total);
        QKEY("completion_pct");
        msgpack_pack_double(QPK, pct);
        QKEY("points");
        msgpack_pack_int64(QPK, points);
        QKEY("last_unlock_at");
        rec__pack_time(QPK, pg.last_unlock_ms);
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
        struct rankkey rk = boards__key(bd, r.score, r.subscore, r.updated_ms, c->pid);
        msgpack_pack_map(QPK, 3);
        QKEY("board_id");
        rec__pack_cstr(QPK, bd->id);
        QKEY("score");
        msgpack_pack_int64(QPK, r.score);
        QKEY("region_rank");
        msgpack_pack_uint64(QPK, rankidx_count_before(rs->all, &rk) + 1);
    }
    return 0;
}

int query__dashboard(struct query *x)
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
    rec__pack_str(QPK, q->player_id);
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
