/* tests/lib/testshard.c — see testshard.h. */
#include "tests/lib/testshard.h"

#include <stdlib.h>
#include <string.h>

#include "tests/lib/testlib.h"

struct cmd ts_player(int64_t ts, const char *id, const char *region, const char *guild)
{
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_PLAYER_PUT;
    c.ts = ts;
    c.u.player_put.player_id = ts_s(id);
    c.u.player_put.name = ts_s(id);
    c.u.player_put.region = ts_s(region);
    c.u.player_put.guild = ts_s(guild);
    return c;
}

struct cmd ts_game(int64_t ts, const char *game)
{
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_GAME_PUT;
    c.ts = ts;
    c.u.game_put.game_id = ts_s(game);
    c.u.game_put.name = ts_s(game);
    return c;
}

struct cmd ts_ach(int64_t ts, const char *game, const char *ach, int64_t points, int64_t steps,
                  int hidden)
{
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_ACH_PUT;
    c.ts = ts;
    c.u.ach_put.game_id = ts_s(game);
    c.u.ach_put.achievement_id = ts_s(ach);
    c.u.ach_put.name = ts_s(ach);
    c.u.ach_put.description = ts_s("");
    c.u.ach_put.points = points;
    c.u.ach_put.steps = steps;
    c.u.ach_put.hidden = hidden;
    return c;
}

struct cmd ts_board(int64_t ts, const char *board, int order, int op, unsigned windows,
                    int64_t reset_s)
{
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_BOARD_PUT;
    c.ts = ts;
    c.u.board_put.board_id = ts_s(board);
    c.u.board_put.order = order;
    c.u.board_put.op = op;
    c.u.board_put.windows = windows;
    c.u.board_put.reset_period_s = reset_s;
    c.u.board_put.snapshot_top = 10;
    c.u.board_put.game_id = ts_s("");
    return c;
}

struct cmd ts_score(int64_t ts, const char *board, const char *player, int64_t score, int64_t sub,
                    const char *idem)
{
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_SCORE;
    c.ts = ts;
    c.u.score.board_id = ts_s(board);
    c.u.score.player_id = ts_s(player);
    c.u.score.score = score;
    c.u.score.subscore = sub;
    c.u.score.metadata = ts_s("");
    c.u.score.idempotency_key = ts_s(idem);
    return c;
}

struct cmd ts_unlock(int64_t ts, const char *player, const char *game, const char *ach,
                     int64_t steps, const char *idem)
{
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_UNLOCK;
    c.ts = ts;
    c.u.unlock.player_id = ts_s(player);
    c.u.unlock.game_id = ts_s(game);
    c.u.unlock.achievement_id = ts_s(ach);
    c.u.unlock.steps = steps;
    c.u.unlock.idempotency_key = ts_s(idem);
    return c;
}

struct cmd ts_grant(int64_t ts, const char *board, int64_t cycle, const char *player, int64_t rank,
                    const char *reward)
{
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_REWARD_GRANT;
    c.ts = ts;
    c.u.reward_grant.board_id = ts_s(board);
    c.u.reward_grant.cycle = cycle;
    c.u.reward_grant.player_id = ts_s(player);
    c.u.reward_grant.rank = rank;
    c.u.reward_grant.reward = ts_s(reward);
    return c;
}

struct cmd ts_claim(int64_t ts, const char *player, const char *board, int64_t cycle,
                    const char *idem)
{
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_REWARD_CLAIM;
    c.ts = ts;
    c.u.reward_claim.player_id = ts_s(player);
    c.u.reward_claim.board_id = ts_s(board);
    c.u.reward_claim.cycle = cycle;
    c.u.reward_claim.idempotency_key = ts_s(idem);
    return c;
}

char *ts_unpack(msgpack_unpacked *u, const char *buf, size_t len)
{
    size_t off = 0;
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    msgpack_unpacked_init(u);
    assert_int_equal(msgpack_unpack_next(u, copy, len, &off), MSGPACK_UNPACK_SUCCESS);
    return copy;
}

static void ts__result(void *data, uint32_t i, int status, const char *body, size_t len,
                       int replayed)
{
    struct ts_apply *a = data;
    assert_int_equal(i, a->nres);
    assert_true(a->nres < TS_MAX_RESULTS);
    a->res[a->nres].status = status;
    a->res[a->nres].replayed = replayed;
    a->res[a->nres].raw = ts_unpack(&a->res[a->nres].body, body, len);
    a->nres++;
}

static void ts__event(void *data, const char *body, size_t len)
{
    struct ts_apply *a = data;
    assert_true(a->nev < TS_MAX_EVENTS);
    a->evraw[a->nev] = ts_unpack(&a->ev[a->nev], body, len);
    a->nev++;
}

void ts_apply(struct shard *s, uint64_t *index, const struct cmd *cmds, uint32_t n,
              struct ts_apply *out)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct shard_sink sink = {out, ts__result, ts__event};
    out->nres = out->nev = 0;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(cmd_entry_begin(&pk, n), 0);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(cmd_encode(&pk, &cmds[i]), 0);
    }
    int rv = shard_apply(s, ++*index, sb.data, sb.size, &sink);
    if (rv != 0) {
        fail_msg("apply: %s", shard_errmsg(s));
    }
    rv = shard_commit(s);
    if (rv != 0) {
        fail_msg("commit: %s", shard_errmsg(s));
    }
    assert_int_equal(out->nres, n);
    msgpack_sbuffer_destroy(&sb);
}

void ts_apply_free(struct ts_apply *a)
{
    for (uint32_t i = 0; i < a->nres; i++) {
        msgpack_unpacked_destroy(&a->res[i].body);
        free(a->res[i].raw);
    }
    for (uint32_t i = 0; i < a->nev; i++) {
        msgpack_unpacked_destroy(&a->ev[i]);
        free(a->evraw[i]);
    }
    a->nres = a->nev = 0;
}

int ts_apply1(struct shard *s, uint64_t *index, struct cmd c)
{
    static struct ts_apply a;
    ts_apply(s, index, &c, 1, &a);
    int status = a.res[0].status;
    ts_apply_free(&a);
    return status;
}

int ts_query(struct shard *s, const struct shard_query *q, struct ts_answer *out, char *errmsg)
{
    ts_answer_init(out);
    return ts_answer_check(out, shard_query(s, q, &out->buf, errmsg));
}

void ts_answer_init(struct ts_answer *out)
{
    msgpack_sbuffer_init(&out->buf);
    msgpack_unpacked_init(&out->u);
}

int ts_answer_check(struct ts_answer *out, int rv)
{
    size_t off = 0;
    if (rv == 0) {
        assert_int_equal(msgpack_unpack_next(&out->u, out->buf.data, out->buf.size, &off),
                         MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(off, out->buf.size);
        out->data = out->u.data;
    } else {
        assert_int_equal(out->buf.size, 0); /* a failed query leaves nothing behind */
    }
    return rv;
}

void ts_answer_free(struct ts_answer *a)
{
    msgpack_unpacked_destroy(&a->u);
    msgpack_sbuffer_destroy(&a->buf);
}

const msgpack_object *ts_get(const msgpack_object *map, const char *key)
{
    size_t kl = strlen(key);
    if (map->type != MSGPACK_OBJECT_MAP) {
        fail_msg("not a map looking for %s", key);
    }
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == kl &&
            memcmp(kv->key.via.str.ptr, key, kl) == 0) {
            return &kv->val;
        }
    }
    fail_msg("key %s missing", key);
    return NULL;
}

int64_t ts_i64(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = ts_get(map, key);
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        return (int64_t)o->via.u64;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        return o->via.i64;
    }
    fail_msg("%s is not an integer", key);
    return 0;
}

int ts_bool(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = ts_get(map, key);
    assert_int_equal(o->type, MSGPACK_OBJECT_BOOLEAN);
    return o->via.boolean;
}

double ts_f64(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = ts_get(map, key);
    if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32) {
        return o->via.f64;
    }
    fail_msg("%s is not a float", key);
    return 0;
}

const char *ts_str(const msgpack_object *map, const char *key, char *buf, size_t cap)
{
    const msgpack_object *o = ts_get(map, key);
    if (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN) {
        fail_msg("%s is not a string", key);
    }
    /* str and bin share their layout in msgpack-c's union */
    size_t n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
    memcpy(buf, o->via.str.ptr, n);
    buf[n] = '\0';
    return buf;
}

int ts_is_nil(const msgpack_object *map, const char *key)
{
    return ts_get(map, key)->type == MSGPACK_OBJECT_NIL;
}
