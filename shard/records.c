/* shard/records.c — stored records of the shard (docs/data-layout.md).
 *
 * A record is a msgpack array whose first element is REC_VERSION. Readers check the version,
 * the field count and every type, and answer LR_ECORRUPT for anything else: a damaged file
 * stops the replica with a message instead of feeding garbage into ranks. */
#include <string.h>

#include "mp.h"
#include "shard_int.h"

/* ---- record readers -------------------------------------------------------------------- */

static int rec__open(struct mp *r, const MDB_val *v, uint32_t nfields)
{
    mp_init(r, v->mv_data, v->mv_size);
    uint32_t n = mp_array(r);
    int64_t ver = mp_i64(r);
    return (r->err || n != nfields + 1 || ver != REC_VERSION) ? LR_ECORRUPT : 0;
}

#define REC__CLOSE(r) (mp_done(r) ? 0 : LR_ECORRUPT)

int rec__player(const MDB_val *v, struct rec_player *p)
{
    struct mp r;
    if (rec__open(&r, v, 5)) {
        return LR_ECORRUPT;
    }
    int64_t pid = mp_i64(&r);
    p->created_ms = mp_i64(&r);
    p->name = mp_str(&r);
    p->region = mp_str(&r);
    p->guild = mp_str(&r);
    if (pid < 0 || pid >= (int64_t)RANKKEY_FOREIGN) {
        return LR_ECORRUPT;
    }
    p->pid = (uint32_t)pid;
    return REC__CLOSE(&r);
}

int rec__game(const MDB_val *v, struct rec_game *g)
{
    struct mp r;
    if (rec__open(&r, v, 4)) {
        return LR_ECORRUPT;
    }
    g->name = mp_str(&r);
    g->achievements_total = mp_i64(&r);
    g->players = mp_i64(&r);
    g->version = mp_i64(&r);
    return REC__CLOSE(&r);
}

int rec__ach(const MDB_val *v, struct rec_ach *a)
{
    struct mp r;
    if (rec__open(&r, v, 7)) {
        return LR_ECORRUPT;
    }
    a->name = mp_str(&r);
    a->description = mp_str(&r);
    a->points = mp_i64(&r);
    a->hidden = mp_bool(&r);
    a->steps = mp_i64(&r);
    a->unlocked_count = mp_i64(&r);
    a->version = mp_i64(&r);
    if (a->steps < 1) {
        return LR_ECORRUPT;
    }
    return REC__CLOSE(&r);
}

int rec__score(const MDB_val *v, struct rec_score *s)
{
    struct mp r;
    if (rec__open(&r, v, 4)) {
        return LR_ECORRUPT;
    }
    s->score = mp_i64(&r);
    s->subscore = mp_i64(&r);
    s->updated_ms = mp_i64(&r);
    s->metadata = mp_str(&r);
    if (!valid_score(s->score) || !valid_score(s->subscore)) {
        return LR_ECORRUPT;
    }
    return REC__CLOSE(&r);
}

int rec__progress(const MDB_val *v, struct rec_progress *p)
{
    struct mp r;
    if (rec__open(&r, v, 5)) {
        return LR_ECORRUPT;
    }
    p->progress = mp_i64(&r);
    p->unlocked = mp_bool(&r);
    p->unlocked_ms = mp_i64(&r);
    p->updated_ms = mp_i64(&r);
    p->hseq = mp_i64(&r);
    return REC__CLOSE(&r);
}

int rec__pgame(const MDB_val *v, struct rec_pgame *g)
{
    struct mp r;
    if (rec__open(&r, v, 2)) {
        return LR_ECORRUPT;
    }
    g->unlocked = mp_i64(&r);
    g->last_unlock_ms = mp_i64(&r);
    return REC__CLOSE(&r);
}

int rec__stats(const MDB_val *v, struct rec_stats *s)
{
    struct mp r;
    if (rec__open(&r, v, 3)) {
        return LR_ECORRUPT;
    }
    s->unlocks = mp_i64(&r);
    s->points = mp_i64(&r);
    s->submissions = mp_i64(&r);
    return REC__CLOSE(&r);
}

int rec__tourn(const MDB_val *v, struct rec_tourn *t)
{
    struct mp r;
    if (rec__open(&r, v, 8)) {
        return LR_ECORRUPT;
    }
    t->name = mp_str(&r);
    t->start_ms = mp_i64(&r);
    t->end_ms = mp_i64(&r);
    t->max_participants = mp_i64(&r);
    t->max_attempts = mp_i64(&r);
    if (rec__prizes(&r, &t->prizes) != 0) {
        return LR_ECORRUPT;
    }
    t->participants = mp_i64(&r);
    t->version = mp_i64(&r);
    return REC__CLOSE(&r);
}

int rec__reward(const MDB_val *v, struct rec_reward *w)
{
    struct mp r;
    if (rec__open(&r, v, 5)) {
        return LR_ECORRUPT;
    }
    w->rank = mp_i64(&r);
    w->reward = mp_str(&r);
    w->granted_ms = mp_i64(&r);
    w->claimed_ms = mp_i64(&r);
    w->claim_key = mp_str(&r);
    if (w->rank < 1 || w->reward.len == 0 || w->reward.len > VALID_REWARD_MAX * 4 ||
        w->claimed_ms < -1 || w->claim_key.len > VALID_IDEM_MAX) {
        return LR_ECORRUPT;
    }
    return REC__CLOSE(&r);
}

/* ---- packing helpers ------------------------------------------------------------------- */

int rec__pack_time(msgpack_packer *pk, int64_t ms)
{
    char buf[TIMEFMT_RFC3339_LEN + 1];
    if (ms < 0 || timefmt_rfc3339(ms, buf) != 0) {
        return msgpack_pack_nil(pk);
    }
    return msgpack_pack_str_with_body(pk, buf, TIMEFMT_RFC3339_LEN);
}

int rec__pack_cstr(msgpack_packer *pk, const char *s)
{
    return msgpack_pack_str_with_body(pk, s, strlen(s));
}

int rec__pack_str(msgpack_packer *pk, struct lr_str s)
{
    return msgpack_pack_str_with_body(pk, s.p, s.len);
}

#define PKB(k) msgpack_pack_str_with_body(pk, k, sizeof(k) - 1)

/* A board's order and operator by API name (the codes of shard/cmd.h). */
static void rec__pack_order_op(msgpack_packer *pk, const struct board *bd)
{
    static const char *const ops[] = {"best", "set", "incr", "decr"};
    PKB("order");
    rec__pack_cstr(pk, bd->order == CMD_ORDER_ASC ? "asc" : "desc");
    PKB("operator");
    rec__pack_cstr(pk, ops[bd->op & 3]);
}

/* The bands of a board's rewards or a tournament's prizes: [{"rank_from","rank_to","reward"}]. */
static void rec__pack_bands(msgpack_packer *pk, const struct cmd_prizes *rw)
{
    msgpack_pack_array(pk, rw->n);
    for (uint32_t i = 0; i < rw->n; i++) {
        msgpack_pack_map(pk, 3);
        PKB("rank_from");
        msgpack_pack_int64(pk, rw->items[i].rank_from);
        PKB("rank_to");
        msgpack_pack_int64(pk, rw->items[i].rank_to);
        PKB("reward");
        rec__pack_str(pk, rw->items[i].reward);
    }
}

void rec__pack_board(msgpack_packer *pk, const struct board *bd, const struct cmd_prizes *rw)
{
    uint32_t nw = 0;
    msgpack_pack_map(pk, 9);
    PKB("board_id");
    rec__pack_cstr(pk, bd->id);
    rec__pack_order_op(pk, bd);
    PKB("windows");
    for (int w = 0; w < TIMEFMT_CYCLE; w++) {
        nw += (bd->windows >> w) & 1;
    }
    msgpack_pack_array(pk, nw);
    for (int w = 0; w < TIMEFMT_CYCLE; w++) {
        if (bd->windows & (1u << w)) {
            rec__pack_cstr(pk, timefmt_window_name((enum timefmt_window)w));
        }
    }
    PKB("reset_period_s");
    bd->reset_s ? msgpack_pack_int64(pk, bd->reset_s) : msgpack_pack_nil(pk);
    PKB("snapshot_top");
    msgpack_pack_int64(pk, bd->snapshot_top);
    PKB("rewards");
    rec__pack_bands(pk, rw);
    PKB("game_id");
    bd->game_id[0] ? rec__pack_cstr(pk, bd->game_id) : msgpack_pack_nil(pk);
    PKB("keep_periods");
    msgpack_pack_int64(pk, bd->keep);
}

void rec__pack_tourn(msgpack_packer *pk, struct lr_str id, const struct board *bd,
                     const struct rec_tourn *t)
{
    msgpack_pack_map(pk, 8);
    PKB("tournament_id");
    rec__pack_str(pk, id);
    PKB("name");
    rec__pack_str(pk, t->name);
    rec__pack_order_op(pk, bd);
    PKB("start_at");
    rec__pack_time(pk, t->start_ms);
    PKB("end_at");
    rec__pack_time(pk, t->end_ms);
    PKB("max_attempts");
    t->max_attempts ? msgpack_pack_int64(pk, t->max_attempts) : msgpack_pack_nil(pk);
    PKB("prizes");
    rec__pack_bands(pk, &t->prizes);
}

void rec__pack_reward(msgpack_packer *pk, struct lr_str board, int64_t cycle,
                      const struct rec_reward *r)
{
    msgpack_pack_map(pk, 6);
    PKB("board_id");
    rec__pack_str(pk, board);
    PKB("cycle");
    msgpack_pack_int64(pk, cycle);
    PKB("rank");
    msgpack_pack_int64(pk, r->rank);
    PKB("reward");
    rec__pack_str(pk, r->reward);
    PKB("granted_at");
    rec__pack_time(pk, r->granted_ms);
    PKB("claimed_at");
    rec__pack_time(pk, r->claimed_ms); /* nil while -1 */
}

int rec__prizes(struct mp *r, struct cmd_prizes *p)
{
    uint32_t n = mp_array(r);
    if (n > CMD_PRIZES_MAX) {
        return LR_ECORRUPT;
    }
    p->n = n;
    for (uint32_t i = 0; i < n; i++) {
        if (mp_array(r) != 3) {
            return LR_ECORRUPT;
        }
        p->items[i].rank_from = mp_i64(r);
        p->items[i].rank_to = mp_i64(r);
        p->items[i].reward = mp_str(r);
    }
    return r->err ? LR_ECORRUPT : 0;
}
