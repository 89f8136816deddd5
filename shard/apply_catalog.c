/* shard/apply_catalog.c — handlers of the catalog commands: games, achievements, boards and
 * tournaments (their records, the points board of each game, joins and attempts). Two phases
 * as everywhere in apply (apply.c): validate, then write. */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "apply_int.h"
#include "mp.h"

/* A versioned put older than what is stored: refused, so a late re-send never undoes a newer
 * put (cmd.h). */
static int apply__superseded(int64_t incoming, int64_t stored)
{
    return incoming != 0 && incoming < stored;
}

int apply__game_put(struct apply *a, const struct cmd_game_put *c)
{
    struct shard *s = a->s;
    struct rec_game g = {c->name, 0, 0, 0};
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
        if (apply__superseded(c->version, g.version)) {
            return apply__fail(a, LR_ECONFLICT, "game %.*s has a newer version",
                               (int)c->game_id.len, c->game_id.p);
        }
        g.name = c->name;
    } else if (!created) {
        return rv;
    }
    g.version = c->version;
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
    rec__pack_str(PK, c->game_id);
    PK_KEY("name");
    rec__pack_str(PK, c->name);
    PK_KEY("achievements_total");
    msgpack_pack_int64(PK, g.achievements_total);
    apply__answer(a, created ? 201 : 200);
    return 0;
}

int apply__catalog_mark(struct apply *a, const struct cmd_catalog_mark *c)
{
    struct shard *s = a->s;
    /* A mark below the stored one comes from a carrier that read an older mark: the puts
     * before it in its entry were re-applications, and the mark stays where it is. */
    if ((uint64_t)c->through > s->catalog_through) {
        int rv = shard__meta_put_u64(s, "catalog", (uint64_t)c->through);
        if (rv != 0) {
            return rv;
        }
        s->catalog_through = (uint64_t)c->through;
    }
    apply__reset_out(a);
    msgpack_pack_map(PK, 1);
    PK_KEY("catalog_through");
    msgpack_pack_uint64(PK, s->catalog_through);
    apply__answer(a, 200);
    return 0;
}

int apply__ach_put(struct apply *a, const struct cmd_ach_put *c)
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
    if (!created && apply__superseded(c->version, r.version)) {
        return apply__fail(a, LR_ECONFLICT, "achievement %.*s has a newer version",
                           (int)c->achievement_id.len, c->achievement_id.p);
    }
    r.version = c->version;
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
    rec__pack_str(PK, c->game_id);
    PK_KEY("achievement_id");
    rec__pack_str(PK, c->achievement_id);
    PK_KEY("name");
    rec__pack_str(PK, c->name);
    PK_KEY("description");
    rec__pack_str(PK, c->description);
    PK_KEY("points");
    msgpack_pack_int64(PK, c->points);
    PK_KEY("hidden");
    c->hidden ? msgpack_pack_true(PK) : msgpack_pack_false(PK);
    PK_KEY("steps");
    msgpack_pack_int64(PK, c->steps);
    apply__answer(a, created ? 201 : 200);
    return 0;
}

int apply__board_put(struct apply *a, const struct cmd_board_put *c)
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
    if (bd && apply__superseded(c->version, bd->version)) {
        return apply__fail(a, LR_ECONFLICT, "board %s has a newer version", bd->id);
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
    bd->version = c->version;
    bd->keep = c->keep_periods ? c->keep_periods : CMD_KEEP_PERIODS_DEFAULT;
    snprintf(bd->game_id, sizeof bd->game_id, "%.*s", (int)c->game_id.len, c->game_id.p);
    if ((rv = apply__put_board(a, bd, &c->rewards)) != 0) {
        return rv;
    }
    apply__reset_out(a);
    rec__pack_board(PK, bd, &c->rewards);
    apply__answer(a, created ? 201 : 200);
    return 0;
}

/* Tournament record: [ver, name, start, end, max_participants, max_attempts, prizes,
 * participants, version] (rec__tourn reads it); join record: [ver, attempts, joined_ms]. */
static int apply__get_tourn(struct apply *a, struct lr_str id, struct rec_tourn *t)
{
    MDB_val v;
    int rv = store_get(a->s->st, STORE_TOURNS, id.p, id.len, &v);
    return rv != 0 ? rv : rec__tourn(&v, t);
}

int apply__tournament_put(struct apply *a, const struct cmd_tournament_put *c)
{
    struct shard *s = a->s;
    struct rec_tourn t;
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
    if (!created && apply__superseded(c->version, t.version)) {
        return apply__fail(a, LR_ECONFLICT, "tournament %.*s has a newer version",
                           (int)c->tournament_id.len, c->tournament_id.p);
    }
    int64_t participants = created ? 0 : t.participants;
    struct key k;
    key__init(&k);
    key__str(&k, c->tournament_id);
    apply__rec_begin(a, 8);
    rec__pack_str(RPK, c->name);
    msgpack_pack_int64(RPK, c->start_ms);
    msgpack_pack_int64(RPK, c->end_ms);
    msgpack_pack_int64(RPK, c->max_participants);
    msgpack_pack_int64(RPK, c->max_attempts);
    apply__pack_prizes(RPK, &c->prizes);
    msgpack_pack_int64(RPK, participants);
    msgpack_pack_int64(RPK, c->version);
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
    struct rec_tourn put = {c->name,         c->start_ms,  c->end_ms,  c->max_participants,
                            c->max_attempts, participants, c->version, c->prizes};
    apply__reset_out(a);
    rec__pack_tourn(PK, c->tournament_id, bd, &put);
    apply__answer(a, created ? 201 : 200);
    return 0;
}

static void apply__join_key(struct key *k, struct lr_str tid, uint32_t pid)
{
    key__init(k);
    key__strz(k, tid);
    key__u32(k, pid);
}

int apply__tournament_join(struct apply *a, const struct cmd_tournament_join *c)
{
    struct shard *s = a->s;
    struct rec_tourn t;
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
         * (the version too) as they are. */
        MDB_val tv;
        if ((rv = store_get(s->st, STORE_TOURNS, c->tournament_id.p, c->tournament_id.len, &tv)) !=
            0) {
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
        msgpack_pack_int64(RPK, t.version);
        key__init(&k);
        key__str(&k, c->tournament_id);
        if ((rv = apply__rec_put(a, STORE_TOURNS, &k)) != 0) {
            return rv;
        }
    }
    apply__reset_out(a);
    msgpack_pack_map(PK, 3);
    PK_KEY("tournament_id");
    rec__pack_str(PK, c->tournament_id);
    PK_KEY("player_id");
    rec__pack_str(PK, c->player_id);
    PK_KEY("joined");
    msgpack_pack_true(PK);
    apply__answer(a, 200);
    return 0;
}

/* Tournament rules on a score (API.md): joined, inside [start, end), within max_attempts.
 * Counts the attempt when allowed. @return 0 (allowed), LR_EFORBIDDEN with a message, fatal. */
int apply__tournament_attempt(struct apply *a, struct lr_str tid, uint32_t pid, const char **why)
{
    struct rec_tourn t;
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
