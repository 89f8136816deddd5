/* shard/apply_reward.c — handlers of the reward commands: a grant from the closer of a cycle
 * or a tournament, and the player's claim (docs/global-state.md, "Cycle closes", "Claims").
 *
 * A reward is keyed by (player, board, cycle) in STORE_REWARDS, so the closer may repeat its
 * grants after a crash: only the first grant of a key writes anything and emits
 * `reward.granted`; a repeat answers 200 with the stored item and changes nothing, whatever
 * rank or reward it names (the close record in the metadata group is the one truth, and it
 * cannot change). Each grant also appends to the player's reward log (STORE_REWARDLOG), keyed
 * by the grant's position in the region's log, which is the "newest first" order of the list
 * (query_player.c). The log is never rewritten: a claim changes the reward record only.
 *
 * Claims: claimed_at is set by the first claim and never changes. A claim under the key that
 * claimed it answers the item again (beyond the idempotency window too, because the key is
 * kept in the record); under any other key, or none, it is a conflict. Replays within the
 * window are answered by apply.c's idempotency machinery before this handler runs.
 *
 * Grants do not check that the board exists here: the catalog reaches a region on its own
 * schedule (router/catsync.c), and the close record is authoritative. Two phases as
 * everywhere in apply (apply.c): validate, then write. */
#include <assert.h>
#include <string.h>

#include "apply_int.h"

/* The grant's place in the region's history: the raft index, then the command's place in its
 * entry, so grants of one entry keep their order too. */
static uint64_t apply__reward_seq(const struct apply *a)
{
    assert(a->index < (1ULL << 51)); /* index * CMD_ENTRY_MAX fits in 63 bits */
    return a->index * CMD_ENTRY_MAX + a->i;
}

/* Reward record: [ver, rank, reward, granted_ms, claimed_ms (-1: not yet), claim_key]. */
static int apply__put_reward(struct apply *a, const struct key *k, const struct rec_reward *w,
                             int had_old, uint64_t old_hash)
{
    apply__rec_begin(a, 5);
    msgpack_pack_int64(RPK, w->rank);
    rec__pack_str(RPK, w->reward);
    msgpack_pack_int64(RPK, w->granted_ms);
    msgpack_pack_int64(RPK, w->claimed_ms);
    rec__pack_str(RPK, w->claim_key);
    return store_put_known(a->s->st, STORE_REWARDS, k->b, k->len, a->s->rbuf.data, a->s->rbuf.size,
                           had_old, old_hash);
}

static void apply__event_reward(struct apply *a, const struct cmd_reward_grant *c)
{
    apply__reset_out(a);
    msgpack_pack_map(PK, 8);
    PK_KEY("type");
    PK_KEY("reward.granted");
    PK_KEY("player_id");
    rec__pack_str(PK, c->player_id);
    PK_KEY("board_id");
    rec__pack_str(PK, c->board_id);
    PK_KEY("cycle");
    msgpack_pack_int64(PK, c->cycle);
    PK_KEY("rank");
    msgpack_pack_int64(PK, c->rank);
    PK_KEY("reward");
    rec__pack_str(PK, c->reward);
    PK_KEY("region");
    rec__pack_cstr(PK, a->s->region);
    PK_KEY("index");
    msgpack_pack_uint64(PK, a->index);
    apply__emit(a);
}

int apply__reward_grant(struct apply *a, const struct cmd_reward_grant *c)
{
    struct shard *s = a->s;
    struct rec_player p;
    struct rec_reward w;
    struct key k, lk;
    MDB_val v;
    int rv = apply__player(a, c->player_id, &p);
    if (rv == LR_ENOTFOUND) {
        return apply__fail(a, rv, "player %.*s not found", (int)c->player_id.len, c->player_id.p);
    }
    if (rv != 0) {
        return rv;
    }
    key__reward(&k, p.pid, c->board_id, c->cycle);
    rv = store_get(s->st, STORE_REWARDS, k.b, k.len, &v);
    if (rv == 0) {
        /* Granted before: the closer repeated itself. */
        if ((rv = rec__reward(&v, &w)) != 0) {
            return rv;
        }
        apply__reset_out(a);
        rec__pack_reward(PK, c->board_id, c->cycle, &w);
        apply__answer(a, 200);
        return 0;
    }
    if (rv != LR_ENOTFOUND) {
        return rv;
    }
    w = (struct rec_reward){c->rank, c->reward, a->c->ts, -1, {"", 0}};
    if ((rv = apply__put_reward(a, &k, &w, 0, 0)) != 0) {
        return rv;
    }
    /* Log record: [ver, board_id, cycle] under (pid, ~seq): newest first by key order. */
    key__init(&lk);
    key__u32(&lk, p.pid);
    key__u64(&lk, ~apply__reward_seq(a));
    apply__rec_begin(a, 2);
    rec__pack_str(RPK, c->board_id);
    msgpack_pack_int64(RPK, c->cycle);
    if ((rv = store_put_known(s->st, STORE_REWARDLOG, lk.b, lk.len, s->rbuf.data, s->rbuf.size, 0,
                              0)) != 0) {
        return rv;
    }
    apply__event_reward(a, c);
    apply__reset_out(a);
    rec__pack_reward(PK, c->board_id, c->cycle, &w);
    apply__answer(a, 201);
    return 0;
}

int apply__reward_claim(struct apply *a, const struct cmd_reward_claim *c)
{
    struct shard *s = a->s;
    struct rec_player p;
    struct rec_reward w;
    struct key k;
    MDB_val v;
    int rv = apply__player(a, c->player_id, &p);
    if (rv == LR_ENOTFOUND) {
        return apply__fail(a, rv, "player %.*s not found", (int)c->player_id.len, c->player_id.p);
    }
    if (rv != 0) {
        return rv;
    }
    key__reward(&k, p.pid, c->board_id, c->cycle);
    rv = store_get(s->st, STORE_REWARDS, k.b, k.len, &v);
    if (rv == LR_ENOTFOUND) {
        return apply__fail(a, rv, "player %.*s has no reward for board %.*s cycle %lld",
                           (int)c->player_id.len, c->player_id.p, (int)c->board_id.len,
                           c->board_id.p, (long long)c->cycle);
    }
    if (rv != 0 || (rv = rec__reward(&v, &w)) != 0) {
        return rv;
    }
    if (w.claimed_ms >= 0) {
        int same_key = c->idempotency_key.len != 0 && c->idempotency_key.len == w.claim_key.len &&
                       memcmp(c->idempotency_key.p, w.claim_key.p, w.claim_key.len) == 0;
        if (!same_key) {
            return apply__fail(a, LR_ECONFLICT,
                               "the reward of board %.*s cycle %lld is already claimed",
                               (int)c->board_id.len, c->board_id.p, (long long)c->cycle);
        }
        apply__reset_out(a);
        rec__pack_reward(PK, c->board_id, c->cycle, &w);
        apply__answer(a, 200);
        return 0;
    }
    uint64_t old_hash = store_record_hash(STORE_REWARDS, k.b, k.len, v.mv_data, v.mv_size);
    w.claimed_ms = a->c->ts;
    w.claim_key = c->idempotency_key;
    /* The answer first: w.reward points into the page the put below may move. */
    apply__reset_out(a);
    rec__pack_reward(PK, c->board_id, c->cycle, &w);
    if ((rv = apply__put_reward(a, &k, &w, 1, old_hash)) != 0) {
        return rv;
    }
    apply__answer(a, 200);
    return 0;
}
