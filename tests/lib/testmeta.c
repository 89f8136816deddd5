/* tests/lib/testmeta.c — see testmeta.h. */
#include "tests/lib/testmeta.h"

#include <stdlib.h>
#include <string.h>

#include "tests/lib/testlib.h"

static struct mcmd tmeta__cmd(enum mcmd_type type, int64_t ts)
{
    struct mcmd c;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.ts = ts;
    return c;
}

struct mcmd tmeta_claim(int64_t ts, const char *player, const char *region)
{
    struct mcmd c = tmeta__cmd(MCMD_CLAIM, ts);
    c.u.claim.player_id = ts_s(player);
    c.u.claim.region = ts_s(region);
    return c;
}

struct mcmd tmeta_catalog(int64_t ts, int kind, const char *id, const char *body)
{
    struct mcmd c = tmeta__cmd(MCMD_CATALOG_PUT, ts);
    c.u.catalog_put.kind = kind;
    c.u.catalog_put.id = ts_s(id);
    c.u.catalog_put.body = ts_s(body);
    return c;
}

struct mcmd tmeta_tourn(int64_t ts, const char *id, int64_t cap, int64_t start_ms, int64_t end_ms)
{
    struct mcmd c = tmeta__cmd(MCMD_TOURNAMENT_PUT, ts);
    c.u.tournament_put.tournament_id = ts_s(id);
    c.u.tournament_put.max_participants = cap;
    c.u.tournament_put.start_at_ms = start_ms;
    c.u.tournament_put.end_at_ms = end_ms;
    return c;
}

struct mcmd tmeta_join(int64_t ts, const char *tournament, const char *player)
{
    struct mcmd c = tmeta__cmd(MCMD_JOIN, ts);
    c.u.join.tournament_id = ts_s(tournament);
    c.u.join.player_id = ts_s(player);
    return c;
}

struct mcmd tmeta_close(int64_t ts, const char *board, int64_t cycle, const char *record)
{
    struct mcmd c = tmeta__cmd(MCMD_CLOSE, ts);
    c.u.close.board_id = ts_s(board);
    c.u.close.cycle = cycle;
    c.u.close.record = ts_s(record);
    return c;
}

struct mcmd tmeta_region_put(int64_t ts, const char *region, const char *rpc)
{
    struct mcmd c = tmeta__cmd(MCMD_REGION_PUT, ts);
    c.u.region_put.region = ts_s(region);
    c.u.region_put.rpc = ts_s(rpc);
    return c;
}

void tmeta_entry(const struct mcmd *cmds, uint32_t n, msgpack_sbuffer *sb)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    assert_int_equal(mcmd_entry_begin(&pk, n), 0);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(mcmd_encode(&pk, &cmds[i]), 0);
    }
    assert_int_equal(mcmd_entry_pad(sb), 0);
}

static void tmeta__result(void *data, uint32_t i, int status, const char *body, size_t len)
{
    struct tmeta_apply *a = data;
    assert_int_equal(i, a->nres);
    assert_true(a->nres < TMETA_MAX_RESULTS);
    a->res[a->nres].status = status;
    a->res[a->nres].replayed = 0;
    a->res[a->nres].raw = ts_unpack(&a->res[a->nres].body, body, len);
    a->nres++;
}

void tmeta_apply_at(struct meta *m, uint64_t index, const struct mcmd *cmds, uint32_t n,
                    struct tmeta_apply *out)
{
    msgpack_sbuffer sb;
    struct meta_sink sink = {out, tmeta__result};
    tmeta_apply_free(out); /* the results of the previous apply into @out */
    tmeta_entry(cmds, n, &sb);
    if (meta_apply(m, index, sb.data, sb.size, &sink) != 0) {
        fail_msg("apply: %s", meta_errmsg(m));
    }
    msgpack_sbuffer_destroy(&sb);
}

void tmeta_apply(struct meta *m, uint64_t *index, const struct mcmd *cmds, uint32_t n,
                 struct tmeta_apply *out)
{
    tmeta_apply_at(m, ++*index, cmds, n, out);
    if (meta_commit(m) != 0) {
        fail_msg("commit: %s", meta_errmsg(m));
    }
    assert_int_equal(out->nres, n);
}

void tmeta_apply_free(struct tmeta_apply *a)
{
    for (uint32_t i = 0; i < a->nres; i++) {
        msgpack_unpacked_destroy(&a->res[i].body);
        free(a->res[i].raw);
    }
    a->nres = 0;
}

int tmeta_query(struct meta *m, const struct meta_query *q, struct ts_answer *out, char *errmsg)
{
    ts_answer_init(out);
    return ts_answer_check(out, meta_query(m, q, &out->buf, errmsg));
}
