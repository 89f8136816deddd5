/* shard/query.c — every read one region can answer, as msgpack maps with API.md's fields:
 * board reads and the dispatch here, player, catalog and statistics reads in query_player.c.
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
#include "query_int.h"
double query__round2(double v)
{
    return round(v * 100.0) / 100.0;
}

int query__player(struct query *x, struct lr_str id, struct rec_player *p)
{
    int rv = shard__player(x->s, id, p);
    if (rv == LR_ENOTFOUND) {
        return errmsg_set(x->errmsg, rv, "player %.*s not found", (int)id.len, id.p);
    }
    return rv;
}

/* ---- boards ------------------------------------------------------------------------------ */

/* A period older than the board keeps (evict.c): not found, with a sentence that says so,
 * rather than an empty page that would read as "nobody played". */
static int query__evicted(struct query *x, const struct query__scope *sc)
{
    char period[TIMEFMT_PERIOD_MAX];
    if (timefmt_period_format(sc->window, sc->period, period) != 0) {
        snprintf(period, sizeof period, "%lld", (long long)sc->period);
    }
    if (sc->window == TIMEFMT_CYCLE) {
        return errmsg_set(x->errmsg, LR_ENOTFOUND,
                          "cycle %s of board %s was evicted: the board keeps %lld past cycles; "
                          "a closed cycle's top stays at /v1/boards/%s/cycles/%s",
                          period, sc->bd->id, (long long)sc->bd->keep, sc->bd->id, period);
    }
    return errmsg_set(x->errmsg, LR_ENOTFOUND,
                      "%s period %s of board %s was evicted: the board keeps %lld past periods",
                      timefmt_window_name(sc->window), period, sc->bd->id, (long long)sc->bd->keep);
}

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
    sc->period =
        q->has_period ? q->period : timefmt_period_of(q->window, q->now_ms, sc->bd->reset_s);
    if (sc->period < evict__first_readable(sc->bd, q->window, q->now_ms)) {
        return query__evicted(x, sc);
    }
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
    rec__pack_cstr(QPK, sc->bd->id);
    QKEY("scope");
    msgpack_pack_str_with_body(QPK, buf, (size_t)n);
    QKEY("window");
    rec__pack_cstr(QPK, timefmt_window_name(q->window));
    QKEY("period");
    if (timefmt_period_format(q->window, sc->period, period) == 0) {
        rec__pack_cstr(QPK, period);
    } else {
        msgpack_pack_nil(QPK);
    }
}

/* Stored score of @pid on the scope's board/window/period. */
int query__score(struct query *x, const struct query__scope *sc, uint32_t pid, struct rec_score *r)
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
    rec__pack_str(QPK, p.name);
    QKEY("region");
    rec__pack_str(QPK, p.region);
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
    rec__pack_time(QPK, r.updated_ms);
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

int query__top(struct query *x)
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
        rec__pack_cstr(QPK, cur);
    } else {
        msgpack_pack_nil(QPK);
    }
    QKEY("total");
    msgpack_pack_uint64(QPK, total);
    QKEY("offset");
    msgpack_pack_uint64(QPK, from);
    return 0;
}

int query__rank(struct query *x)
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
    struct rankkey rk = boards__key(sc.bd, r.score, r.subscore, r.updated_ms, p.pid);
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
    rec__pack_str(QPK, q->player_id);
    QKEY("rank");
    msgpack_pack_uint64(QPK, rank0 + 1);
    QKEY("score");
    msgpack_pack_int64(QPK, r.score);
    QKEY("subscore");
    msgpack_pack_int64(QPK, r.subscore);
    QKEY("updated_at");
    rec__pack_time(QPK, r.updated_ms);
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

int query__friends(struct query *x)
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
        struct rankkey rk = boards__key(sc.bd, r.score, r.subscore, r.updated_ms, p.pid);
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

int query__count_before(struct query *x)
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
    msgpack_pack_map(QPK, 6);
    query__pack_scope_fields(x, &sc);
    QKEY("counts");
    msgpack_pack_array(QPK, q->nprobes);
    for (uint32_t i = 0; i < q->nprobes; i++) {
        struct rankkey k = boards__key(sc.bd, q->probes[i].score, q->probes[i].subscore,
                                       q->probes[i].updated_ms, RANKKEY_FOREIGN);
        k.id = q->probes[i].player_id.p;
        k.idlen = q->probes[i].player_id.len;
        msgpack_pack_uint64(QPK, sc.idx ? rankidx_count_before(sc.idx, &k) : 0);
    }
    QKEY("total");
    msgpack_pack_uint64(QPK, sc.idx ? rankidx_count(sc.idx) : 0);
    return 0;
}

/* The entries of this region next to a probe key: "count" ordered before it, up to @around
 * just before it ("before") and up to @around + 1 from it on ("after"), each with its region
 * rank. Every region answers for the same key, so a router merges the lists into the exact
 * global window around a player who lives in one of them. */
int query__near(struct query *x)
{
    const struct shard_query *q = x->q;
    struct query__scope sc;
    int rv;
    if (q->nprobes != 1 || q->around > 50) {
        return errmsg_set(x->errmsg, LR_EINVAL, "near needs one probe and around 0 to 50");
    }
    if ((rv = query__scope(x, &sc)) != 0) {
        return rv;
    }
    struct rankkey k = boards__key(sc.bd, q->probes[0].score, q->probes[0].subscore,
                                   q->probes[0].updated_ms, RANKKEY_FOREIGN);
    k.id = q->probes[0].player_id.p;
    k.idlen = q->probes[0].player_id.len;
    uint64_t count = sc.idx ? rankidx_count_before(sc.idx, &k) : 0;
    uint64_t from = count > q->around ? count - q->around : 0;
    msgpack_pack_map(QPK, 8);
    query__pack_scope_fields(x, &sc);
    QKEY("count");
    msgpack_pack_uint64(QPK, count);
    QKEY("total");
    msgpack_pack_uint64(QPK, sc.idx ? rankidx_count(sc.idx) : 0);
    QKEY("before");
    if ((rv = query__pack_range(x, &sc, from, count - from)) != 0) {
        return rv;
    }
    QKEY("after");
    return query__pack_range(x, &sc, count, (uint64_t)q->around + 1);
}

int query__board_get(struct query *x)
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
    rec__pack_board(QPK, bd, &rw);
    return 0;
}

/* A tournament as this region stores it (rec__pack_tourn). An id that names a board that is
 * not a tournament is a conflict, not an absence: a put of that tournament would be refused,
 * which is what a router needs to know before it writes anywhere. */
int query__tournament_get(struct query *x)
{
    const struct shard_query *q = x->q;
    struct board *bd = boards__get(&x->s->boards, q->board_id.p, q->board_id.len);
    struct rec_tourn t;
    MDB_val v;
    if (bd && !bd->tournament) {
        return errmsg_set(x->errmsg, LR_ECONFLICT, "board %s exists and is not a tournament",
                          bd->id);
    }
    int rv =
        bd ? store_get(x->s->st, STORE_TOURNS, q->board_id.p, q->board_id.len, &v) : LR_ENOTFOUND;
    if (rv == LR_ENOTFOUND) {
        return errmsg_set(x->errmsg, rv, "tournament %.*s not found", (int)q->board_id.len,
                          q->board_id.p);
    }
    if (rv != 0 || (rv = rec__tourn(&v, &t)) != 0) {
        return rv;
    }
    rec__pack_tourn(QPK, q->board_id, bd, &t);
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
