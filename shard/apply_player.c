/* shard/apply_player.c — handlers of the player commands: player upsert (with guild moves),
 * score submissions and achievement unlocks. Two phases as everywhere in apply (apply.c). */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "apply_int.h"
#include "mp.h"

/* player.updated (docs/api.md, an internal event): a known player's name or guild changed, so
 * a consumer that shows names (the gateway's tops, a router's read model) or groups by guild
 * can follow without asking the region. A creation sends none: a new player is in no entry
 * yet, and its first score.updated carries its name. */
static void apply__event_player(struct apply *a, const struct cmd_player_put *c)
{
    apply__reset_out(a);
    msgpack_pack_map(PK, 6);
    PK_KEY("type");
    PK_KEY("player.updated");
    PK_KEY("player_id");
    rec__pack_str(PK, c->player_id);
    PK_KEY("name");
    rec__pack_str(PK, c->name);
    PK_KEY("guild");
    c->guild.len ? rec__pack_str(PK, c->guild) : msgpack_pack_nil(PK);
    PK_KEY("region");
    rec__pack_cstr(PK, a->s->region);
    PK_KEY("index");
    msgpack_pack_uint64(PK, a->index);
    apply__emit(a);
}

int apply__player_put(struct apply *a, const struct cmd_player_put *c)
{
    struct shard *s = a->s;
    struct rec_player p;
    struct key k;
    int rv, created;
    if (c->region.len != strlen(s->region) || memcmp(c->region.p, s->region, c->region.len)) {
        return apply__fail(a, LR_EINVAL, "player %.*s belongs to region %.*s, not %s",
                           (int)c->player_id.len, c->player_id.p, (int)c->region.len, c->region.p,
                           s->region);
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
    int renamed = 0;
    if (!created) {
        snprintf(oldguild, sizeof oldguild, "%.*s", (int)p.guild.len, p.guild.p);
        renamed = p.name.len != c->name.len || memcmp(p.name.p, c->name.p, c->name.len) != 0;
    }
    int moved = !created && (strlen(oldguild) != c->guild.len ||
                             memcmp(oldguild, c->guild.p, c->guild.len) != 0);
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
    } else if (moved) {
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
            struct rankkey rk = boards__key(bd, r.score, r.subscore, r.updated_ms, p.pid);
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
    if (renamed || moved) {
        apply__event_player(a, c);
    }
    apply__reset_out(a);
    msgpack_pack_map(PK, 5);
    PK_KEY("player_id");
    rec__pack_str(PK, c->player_id);
    PK_KEY("name");
    rec__pack_str(PK, c->name);
    PK_KEY("region");
    rec__pack_str(PK, c->region);
    PK_KEY("guild");
    c->guild.len ? rec__pack_str(PK, c->guild) : msgpack_pack_nil(PK);
    PK_KEY("created_at");
    rec__pack_time(PK, p.created_ms);
    apply__answer(a, created ? 201 : 200);
    return 0;
}

int apply__score(struct apply *a, const struct cmd_score *c)
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
    struct apply__name name;
    if ((rv = apply__name_copy(&name, p.name)) != 0) {
        return rv;
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
        apply__event_score(a, bd, c->player_id, apply__name_str(&name), &x->now);
    }
    apply__reset_out(a);
    msgpack_pack_map(PK, 7);
    PK_KEY("board_id");
    rec__pack_str(PK, c->board_id);
    PK_KEY("player_id");
    rec__pack_str(PK, c->player_id);
    PK_KEY("score");
    msgpack_pack_int64(PK, x->now.score);
    PK_KEY("subscore");
    msgpack_pack_int64(PK, x->now.subscore);
    PK_KEY("improved");
    x->changed ? msgpack_pack_true(PK) : msgpack_pack_false(PK);
    PK_KEY("region_rank");
    msgpack_pack_uint64(PK, apply__plan_rank(a, &plan, 0));
    PK_KEY("updated_at");
    rec__pack_time(PK, x->now.updated_ms);
    apply__answer(a, 200);
    return 0;
}

int apply__unlock(struct apply *a, const struct cmd_unlock *c)
{
    struct shard *s = a->s;
    struct rec_player p;
    struct rec_game g;
    struct rec_ach ach;
    struct rec_progress pr = {
        .progress = 0, .unlocked = 0, .unlocked_ms = -1, .updated_ms = -1, .hseq = -1};
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
    struct apply__name pname;
    if ((rv = apply__name_copy(&pname, p.name)) != 0) {
        return rv;
    }
    key__init(&gk);
    key__str(&gk, c->game_id);
    if ((rv = store_get(s->st, STORE_GAMES, gk.b, gk.len, &v)) != 0) {
        return rv == LR_ENOTFOUND
                   ? apply__fail(a, rv, "game %.*s not found", (int)c->game_id.len, c->game_id.p)
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
    rv = apply__score_plan(a, pb, p.pid, CMD_OP_INCR, awarded, 0, (struct lr_str){"", 0}, a->c->ts,
                           &plan);
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
        rec__pack_str(RPK, c->game_id);
        rec__pack_str(RPK, c->achievement_id);
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
        if ((rv = apply__put_ach(a, &ak, &ach)) != 0 || (rv = apply__score_write(a, &plan)) != 0 ||
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
        rec__pack_str(PK, c->player_id);
        PK_KEY("game_id");
        rec__pack_str(PK, c->game_id);
        PK_KEY("achievement_id");
        rec__pack_str(PK, c->achievement_id);
        PK_KEY("points");
        msgpack_pack_int64(PK, awarded);
        PK_KEY("at");
        rec__pack_time(PK, a->c->ts);
        PK_KEY("region");
        rec__pack_cstr(PK, s->region);
        PK_KEY("index");
        msgpack_pack_uint64(PK, a->index);
        apply__emit(a);
        if (plan.win[0].changed) {
            apply__event_score(a, pb, c->player_id, apply__name_str(&pname), &plan.win[0].now);
        }
    }

    apply__reset_out(a);
    msgpack_pack_map(PK, 10);
    PK_KEY("player_id");
    rec__pack_str(PK, c->player_id);
    PK_KEY("game_id");
    rec__pack_str(PK, c->game_id);
    PK_KEY("achievement_id");
    rec__pack_str(PK, c->achievement_id);
    PK_KEY("progress");
    msgpack_pack_int64(PK, pr.progress);
    PK_KEY("steps");
    msgpack_pack_int64(PK, ach.steps);
    PK_KEY("newly_unlocked");
    newly ? msgpack_pack_true(PK) : msgpack_pack_false(PK);
    PK_KEY("unlocked");
    pr.unlocked ? msgpack_pack_true(PK) : msgpack_pack_false(PK);
    PK_KEY("unlocked_at");
    rec__pack_time(PK, pr.unlocked ? pr.unlocked_ms : -1);
    PK_KEY("points_awarded");
    msgpack_pack_int64(PK, awarded);
    PK_KEY("total_points");
    msgpack_pack_int64(PK, total_points);
    apply__answer(a, 200);
    return 0;
}
