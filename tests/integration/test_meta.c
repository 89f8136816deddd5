/* tests/integration/test_meta.c — scenarios of the metadata state machine on real LMDB: one
 * rule of docs/global-state.md per test, through meta_apply and meta_query only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/testlib.h"
#include "tests/lib/testmeta.h"

#define T0 1795350660123LL /* 2026-11-22T... */
#define HOUR 3600000LL

struct fixture {
    char *dir;
    struct meta *m;
    uint64_t index;
    struct tmeta_apply out;
    char errmsg[LR_ERRMSG_SIZE];
};

static void fx_open(struct fixture *f)
{
    struct meta_config cfg = {f->dir, 16ULL << 20, 0};
    if (meta_open(&cfg, &f->m, f->errmsg) != 0) {
        fail_msg("open: %s", f->errmsg);
    }
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = testlib_tmpdir();
    fx_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tmeta_apply_free(&f->out);
    meta_close(f->m);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* Apply one command as its own entry and return its result (valid until the next fx_do). */
static const struct ts_result *fx_do(struct fixture *f, struct mcmd c)
{
    tmeta_apply_free(&f->out);
    tmeta_apply(f->m, &f->index, &c, 1, &f->out);
    return &f->out.res[0];
}

static void fx_error(const struct ts_result *r, int status, const char *code, const char *needle)
{
    char buf[256];
    assert_int_equal(r->status, status);
    const msgpack_object *e = ts_get(&r->body.data, "error");
    assert_string_equal(ts_str(e, "code", buf, sizeof buf), code);
    assert_non_null(strstr(ts_str(e, "message", buf, sizeof buf), needle));
}

static const char *fx_reason(const struct ts_result *r, char *buf, size_t cap)
{
    return ts_str(ts_get(&r->body.data, "error"), "reason", buf, cap);
}

/* The first claim records the region (201), a retry answers it (200), another region is 409. */
static void claim_first_wins(void **state)
{
    struct fixture *f = *state;
    char buf[64];
    const struct ts_result *r = fx_do(f, tmeta_claim(T0, "ann", "eu"));
    assert_int_equal(r->status, 201);
    assert_string_equal(ts_str(&r->body.data, "region", buf, sizeof buf), "eu");
    assert_string_equal(ts_str(&r->body.data, "claimed_at", buf, sizeof buf),
                        "2026-11-22T12:31:00.123Z");
    r = fx_do(f, tmeta_claim(T0 + HOUR, "ann", "eu"));
    assert_int_equal(r->status, 200);
    assert_string_equal(ts_str(&r->body.data, "claimed_at", buf, sizeof buf),
                        "2026-11-22T12:31:00.123Z");
    r = fx_do(f, tmeta_claim(T0 + HOUR, "ann", "us"));
    fx_error(r, 409, "conflict", "belongs to region eu");
    assert_string_equal(ts_str(&r->body.data, "region", buf, sizeof buf), "eu");
    assert_string_equal(fx_reason(r, buf, sizeof buf), "region");
}

/* The directory answers a claimed player's region and 404 for an unclaimed one. */
static void directory_lookup(void **state)
{
    struct fixture *f = *state;
    struct ts_answer a;
    char buf[64];
    fx_do(f, tmeta_claim(T0, "bob", "ap"));
    struct meta_query q = {.type = META_Q_DIRECTORY, .player_id = ts_s("bob")};
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), 0);
    assert_string_equal(ts_str(&a.data, "region", buf, sizeof buf), "ap");
    ts_answer_free(&a);
    q.player_id = ts_s("nobody");
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), LR_ENOTFOUND);
    assert_non_null(strstr(f->errmsg, "not claimed"));
    ts_answer_free(&a);
    q.player_id = ts_s("bad id!");
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), LR_EINVAL);
    ts_answer_free(&a);
}

/* Two claims of one id in one entry: the first in the log wins, the second learns it. */
static void claim_race_in_one_entry(void **state)
{
    struct fixture *f = *state;
    struct mcmd cmds[2] = {tmeta_claim(T0, "cat", "us"), tmeta_claim(T0, "cat", "eu")};
    tmeta_apply(f->m, &f->index, cmds, 2, &f->out);
    assert_int_equal(f->out.res[0].status, 201);
    fx_error(&f->out.res[1], 409, "conflict", "region us");
}

/* Catalog puts are versioned by the raft index and the log returns every put after v. */
static void catalog_versions_and_log(void **state)
{
    struct fixture *f = *state;
    struct ts_answer a;
    char buf[64];
    const struct ts_result *r = fx_do(f, tmeta_catalog(T0, META_KIND_GAME, "g1", "body-1"));
    assert_int_equal(r->status, 201); /* the first put of g1 */
    assert_int_equal(ts_i64(&r->body.data, "version"), 1);
    assert_string_equal(ts_str(&r->body.data, "kind", buf, sizeof buf), "game");
    struct mcmd two[2] = {tmeta_catalog(T0, META_KIND_BOARD, "b1", "body-2"),
                          tmeta_catalog(T0, META_KIND_GAME, "g1", "body-3")};
    tmeta_apply(f->m, &f->index, two, 2, &f->out);
    assert_int_equal(f->out.res[0].status, 201); /* b1 is new */
    assert_int_equal(f->out.res[1].status, 200); /* g1 is not */
    assert_int_equal(ts_i64(&f->out.res[1].body.data, "version"), 2);
    struct meta_query q = {.type = META_Q_CATALOG_SINCE, .after = 0};
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), 0);
    const msgpack_object *ch = ts_get(&a.data, "changes");
    assert_int_equal(ch->via.array.size, 3);
    assert_string_equal(ts_str(&ch->via.array.ptr[2], "body", buf, sizeof buf), "body-3");
    assert_int_equal(ts_i64(&ch->via.array.ptr[2], "version"), 2);
    assert_false(ts_bool(&a.data, "more"));
    ts_answer_free(&a);
    q.after = 1; /* only the puts of version 2 */
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_get(&a.data, "changes")->via.array.size, 2);
    ts_answer_free(&a);
}

/* A page never splits one entry's puts: limit 1 still returns the whole of version 2. */
static void catalog_page_keeps_versions_whole(void **state)
{
    struct fixture *f = *state;
    struct ts_answer a;
    fx_do(f, tmeta_catalog(T0, META_KIND_GAME, "g1", "x"));
    struct mcmd two[2] = {tmeta_catalog(T0, META_KIND_ACHIEVEMENT, "a1", "y"),
                          tmeta_catalog(T0, META_KIND_ACHIEVEMENT, "a2", "z")};
    tmeta_apply(f->m, &f->index, two, 2, &f->out);
    struct meta_query q = {.type = META_Q_CATALOG_SINCE, .after = 0, .limit = 1};
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_get(&a.data, "changes")->via.array.size, 1);
    assert_true(ts_bool(&a.data, "more"));
    ts_answer_free(&a);
    q.after = 1;
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_get(&a.data, "changes")->via.array.size, 2);
    assert_false(ts_bool(&a.data, "more"));
    ts_answer_free(&a);
}

/* A game id longer than a game id may be is refused; other kinds take any id. */
static void catalog_refuses_long_game_id(void **state)
{
    struct fixture *f = *state;
    char id[61];
    memset(id, 'g', 60);
    id[60] = '\0';
    fx_error(fx_do(f, tmeta_catalog(T0, META_KIND_GAME, id, "")), 400, "invalid_argument",
             "game id");
    assert_int_equal(fx_do(f, tmeta_catalog(T0, META_KIND_BOARD, id, ""))->status, 201);
}

/* A tournament needs a cap and an end after its start. */
static void tournament_put_rules(void **state)
{
    struct fixture *f = *state;
    fx_error(fx_do(f, tmeta_tourn(T0, "t", 0, T0, T0 + HOUR)), 400, "invalid_argument",
             "max_participants");
    fx_error(fx_do(f, tmeta_tourn(T0, "t", 5, T0, T0)), 400, "invalid_argument", "end_at");
    assert_int_equal(fx_do(f, tmeta_tourn(T0, "t", 5, T0, T0 + HOUR))->status, 201);
    assert_int_equal(fx_do(f, tmeta_tourn(T0, "t", 6, T0, T0 + HOUR))->status, 200);
}

/* Joins: 404 unknown, admitted up to the cap, a repeat is not counted, then 409 full. */
static void join_under_the_cap(void **state)
{
    struct fixture *f = *state;
    char buf[32];
    struct ts_answer a;
    fx_error(fx_do(f, tmeta_join(T0, "t", "ann")), 404, "not_found", "tournament t");
    fx_do(f, tmeta_tourn(T0, "t", 2, T0, T0 + HOUR));
    assert_int_equal(ts_i64(&fx_do(f, tmeta_join(T0, "t", "ann"))->body.data, "participants"), 1);
    const struct ts_result *r = fx_do(f, tmeta_join(T0 + 1, "t", "ann"));
    assert_int_equal(r->status, 200);
    assert_int_equal(ts_i64(&r->body.data, "participants"), 1);
    assert_int_equal(ts_i64(&fx_do(f, tmeta_join(T0, "t", "bob"))->body.data, "participants"), 2);
    r = fx_do(f, tmeta_join(T0, "t", "cat"));
    fx_error(r, 409, "conflict", "full");
    assert_string_equal(fx_reason(r, buf, sizeof buf), "full");
    struct meta_query q = {
        .type = META_Q_ADMISSION, .tournament_id = ts_s("t"), .player_id = ts_s("cat")};
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_i64(&a.data, "participants"), 2);
    assert_false(ts_bool(&a.data, "admitted"));
    ts_answer_free(&a);
    q.player_id = ts_s("ann");
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), 0);
    assert_true(ts_bool(&a.data, "admitted"));
    ts_answer_free(&a);
    /* Without a player: the count alone (what GET /v1/tournaments/{id} asks). */
    q.player_id = ts_s("");
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_i64(&a.data, "participants"), 2);
    assert_false(ts_bool(&a.data, "admitted"));
    ts_answer_free(&a);
}

/* A join stamped at or after the end is 409 ended, even for a player already admitted. */
static void join_after_the_end(void **state)
{
    struct fixture *f = *state;
    char buf[32];
    fx_do(f, tmeta_tourn(T0, "t", 9, T0, T0 + HOUR));
    assert_int_equal(fx_do(f, tmeta_join(T0 + HOUR - 1, "t", "ann"))->status, 200);
    const struct ts_result *r = fx_do(f, tmeta_join(T0 + HOUR, "t", "bob"));
    fx_error(r, 409, "conflict", "ended");
    assert_string_equal(fx_reason(r, buf, sizeof buf), "ended");
    fx_error(fx_do(f, tmeta_join(T0 + HOUR, "t", "ann")), 409, "conflict", "ended");
}

/* The first close of (board, cycle) is the record; a later close returns it unchanged. */
static void close_first_wins(void **state)
{
    struct fixture *f = *state;
    char buf[64];
    struct ts_answer a;
    const struct ts_result *r = fx_do(f, tmeta_close(T0, "b", 7, "first"));
    assert_int_equal(r->status, 201);
    r = fx_do(f, tmeta_close(T0 + HOUR, "b", 7, "second"));
    assert_int_equal(r->status, 200);
    assert_string_equal(ts_str(&r->body.data, "record", buf, sizeof buf), "first");
    assert_string_equal(ts_str(&r->body.data, "closed_at", buf, sizeof buf),
                        "2026-11-22T12:31:00.123Z");
    assert_int_equal(fx_do(f, tmeta_close(T0, "b", 8, "next"))->status, 201);
    assert_int_equal(fx_do(f, tmeta_close(T0, "tour", 0, "t"))->status, 201);
    struct meta_query q = {.type = META_Q_CLOSE_GET, .board_id = ts_s("b"), .cycle = 7};
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), 0);
    assert_string_equal(ts_str(&a.data, "record", buf, sizeof buf), "first");
    ts_answer_free(&a);
    q.cycle = 9;
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), LR_ENOTFOUND);
    ts_answer_free(&a);
}

/* Garbage in an entry is answered per command, and the rest of the entry still applies. */
static void garbage_command_costs_only_itself(void **state)
{
    struct fixture *f = *state;
    struct mcmd cmds[3] = {tmeta_claim(T0, "ann", "eu"), tmeta_claim(T0, "bad id!", "eu"),
                           tmeta_claim(T0, "bob", "eu")};
    tmeta_apply(f->m, &f->index, cmds, 3, &f->out);
    assert_int_equal(f->out.res[0].status, 201);
    fx_error(&f->out.res[1], 400, "invalid_argument", "player_id");
    assert_int_equal(f->out.res[2].status, 201);
    /* A whole entry of garbage is a no-op that still advances the applied index. */
    assert_int_equal(meta_apply(f->m, ++f->index, "\xc1garbage", 8, NULL), 0);
    assert_int_equal(meta_commit(f->m), 0);
    assert_int_equal(meta_applied_index(f->m), f->index);
}

/* State, applied index, stamp and digest survive a close and reopen. */
static void persists_across_reopen(void **state)
{
    struct fixture *f = *state;
    uint64_t scan;
    fx_do(f, tmeta_claim(T0, "ann", "eu"));
    fx_do(f, tmeta_tourn(T0, "t", 1, T0, T0 + HOUR));
    fx_do(f, tmeta_join(T0 + 5, "t", "ann"));
    fx_do(f, tmeta_close(T0, "b", 1, "r"));
    uint64_t digest = meta_digest(f->m);
    meta_close(f->m);
    fx_open(f);
    assert_int_equal(meta_applied_index(f->m), 4);
    assert_int_equal(meta_clock_ms(f->m), T0 + 5);
    assert_int_equal(meta_digest(f->m), digest);
    assert_int_equal(meta_digest_scan(f->m, &scan), 0);
    assert_int_equal(scan, digest);
    fx_error(fx_do(f, tmeta_claim(T0, "ann", "us")), 409, "conflict", "eu");
    fx_error(fx_do(f, tmeta_join(T0, "t", "bob")), 409, "conflict", "full");
    assert_int_equal(fx_do(f, tmeta_close(T0, "b", 1, "again"))->status, 200);
}

/* Entries at or below the applied index are skipped: a replayed claim changes nothing. */
static void replayed_indexes_are_skipped(void **state)
{
    struct fixture *f = *state;
    fx_do(f, tmeta_claim(T0, "ann", "eu"));
    uint64_t digest = meta_digest(f->m);
    struct mcmd c = tmeta_claim(T0, "zed", "us");
    tmeta_apply_free(&f->out);
    tmeta_apply_at(f->m, 1, &c, 1, &f->out);
    assert_int_equal(f->out.nres, 0); /* skipped: no result at all */
    assert_int_equal(meta_commit(f->m), 0);
    assert_int_equal(meta_applied_index(f->m), 1);
    assert_int_equal(meta_digest(f->m), digest);
    struct ts_answer a;
    struct meta_query q = {.type = META_Q_DIRECTORY, .player_id = ts_s("zed")};
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), LR_ENOTFOUND);
    ts_answer_free(&a);
}

/* An aborted group leaves nothing: the applied index and the records are the committed ones. */
static void abort_drops_the_group(void **state)
{
    struct fixture *f = *state;
    fx_do(f, tmeta_claim(T0, "ann", "eu"));
    uint64_t digest = meta_digest(f->m);
    struct mcmd c = tmeta_claim(T0, "bob", "us");
    tmeta_apply_free(&f->out);
    tmeta_apply_at(f->m, 2, &c, 1, &f->out);
    assert_int_equal(meta_applied_index(f->m), 2);
    assert_int_equal(meta_abort(f->m), 0);
    assert_int_equal(meta_applied_index(f->m), 1);
    assert_int_equal(meta_digest(f->m), digest);
    f->index = 1;
    assert_int_equal(fx_do(f, tmeta_claim(T0, "bob", "eu"))->status, 201);
}

/* A region's data directory is refused rather than read as meta's. */
static void refuses_a_region_directory(void **state)
{
    struct fixture *f = *state;
    struct shard *s;
    struct meta *m;
    char *dir = testlib_tmpdir();
    struct shard_config sc = {dir, "eu", 16ULL << 20, 0};
    assert_int_equal(shard_open(&sc, &s, f->errmsg), 0);
    shard_close(s);
    struct meta_config mc = {dir, 16ULL << 20, 0};
    assert_int_equal(meta_open(&mc, &m, f->errmsg), LR_EINVAL);
    assert_non_null(strstr(f->errmsg, "region eu"));
    testlib_rmrf(dir);
    free(dir);
}

/* The running digest equals a scan of every record (the regions database included). */
static void fx_digest_honest(struct fixture *f)
{
    uint64_t scan;
    assert_int_equal(meta_digest_scan(f->m, &scan), 0);
    assert_int_equal(scan, meta_digest(f->m));
}

/* The digest less the two bookkeeping records every commit rewrites (the applied index and
 * the stamp, meta.c): what a command that changed nothing must leave as it was. Only after a
 * commit, when both records exist. */
static uint64_t fx_digest_of_state(struct fixture *f)
{
    unsigned char applied[8], clock[8];
    uint64_t a = meta_applied_index(f->m), c = (uint64_t)meta_clock_ms(f->m);
    for (int i = 0; i < 8; i++) {
        applied[i] = (unsigned char)(a >> (56 - 8 * i));
        clock[i] = (unsigned char)(c >> (56 - 8 * i));
    }
    return meta_digest(f->m) - store_record_hash((enum store_db)0, "applied", 7, applied, 8) -
           store_record_hash((enum store_db)0, "clock", 5, clock, 8);
}

/* Assert @region's record: its rpc list as one comma-joined string, added_at and version. */
static void fx_region_is(const msgpack_object *o, const char *region, const char *rpc,
                         int64_t added_ms, int64_t version)
{
    char buf[META_REGION_RPC_BYTES + 1], joined[META_REGION_RPC_BYTES + 1] = "";
    assert_string_equal(ts_str(o, "region", buf, sizeof buf), region);
    const msgpack_object *a = ts_get(o, "rpc");
    assert_int_equal(a->type, MSGPACK_OBJECT_ARRAY);
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        const msgpack_object *e = &a->via.array.ptr[i];
        assert_int_equal(e->type, MSGPACK_OBJECT_STR);
        if (i > 0) {
            strcat(joined, ",");
        }
        strncat(joined, e->via.str.ptr, e->via.str.size);
    }
    assert_string_equal(joined, rpc);
    assert_int_equal(ts_i64(o, "added_at"), added_ms);
    assert_int_equal(ts_i64(o, "version"), version);
}

/* The "regions" query's answer: its array of records. */
static const msgpack_object *fx_regions(struct fixture *f, struct ts_answer *a)
{
    struct meta_query q = {.type = META_Q_REGIONS};
    assert_int_equal(tmeta_query(f->m, &q, a, f->errmsg), 0);
    const msgpack_object *l = ts_get(&a->data, "regions");
    assert_int_equal(l->type, MSGPACK_OBJECT_ARRAY);
    return l;
}

/* A new region is 201, the same put again 200 with nothing changed, another rpc 200 with the
 * new version and the first added_at. */
static void region_put_rules(void **state)
{
    struct fixture *f = *state;
    const struct ts_result *r = fx_do(f, tmeta_region_put(T0, "eu", "10.0.0.1:7001,eu-2:7001"));
    assert_int_equal(r->status, 201);
    fx_region_is(&r->body.data, "eu", "10.0.0.1:7001,eu-2:7001", T0, 1);
    fx_digest_honest(f);
    uint64_t digest = fx_digest_of_state(f);
    r = fx_do(f, tmeta_region_put(T0 + HOUR, "eu", "10.0.0.1:7001,eu-2:7001"));
    assert_int_equal(r->status, 200); /* a retry is harmless */
    fx_region_is(&r->body.data, "eu", "10.0.0.1:7001,eu-2:7001", T0, 1);
    assert_int_equal(fx_digest_of_state(f), digest);
    fx_digest_honest(f);
    r = fx_do(f, tmeta_region_put(T0 + HOUR, "eu", "eu-2:7001,[::1]:7003"));
    assert_int_equal(r->status, 200);
    fx_region_is(&r->body.data, "eu", "eu-2:7001,[::1]:7003", T0, 3);
    assert_int_not_equal(fx_digest_of_state(f), digest);
    fx_digest_honest(f);
}

/* "meta" and malformed rpc lists are 400 with a sentence, and nothing is stored. */
static void region_put_refusals(void **state)
{
    struct fixture *f = *state;
    struct ts_answer a;
    static const char *const bad[] = {
        "",        "a",        "a:0",
        "a:70000", "a:1,,b:2", "a:1, b:2",
        "a :1",    ":1",       "a:1,",
        "a:-1",    "a:1x",     "1:1,2:1,3:1,4:1,5:1,6:1,7:1,8:1,9:1,10:1", /* 10 addresses */
    };
    fx_error(fx_do(f, tmeta_region_put(T0, "meta", "a:1")), 400, "invalid_argument",
             "metadata group");
    uint64_t digest = fx_digest_of_state(f);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const struct ts_result *r = fx_do(f, tmeta_region_put(T0, "eu", bad[i]));
        if (r->status != 400) {
            fail_msg("rpc \"%s\" answered %d", bad[i], r->status);
        }
        fx_error(r, 400, "invalid_argument", "rpc");
    }
    assert_int_equal(fx_digest_of_state(f), digest);
    fx_digest_honest(f);
    assert_int_equal(fx_regions(f, &a)->via.array.size, 0);
    ts_answer_free(&a);
    /* The bounds themselves: 9 addresses and port 65535 are fine. */
    assert_int_equal(
        fx_do(f, tmeta_region_put(T0, "eu", "1:1,2:1,3:1,4:1,5:1,6:1,7:1,8:1,9:65535"))->status,
        201);
    fx_digest_honest(f);
}

/* 16 regions fit; a 17th is 409 while the 16 can still change their rpc. The query answers
 * them in region id order whatever order they were put in. */
static void region_list_full_and_ordered(void **state)
{
    struct fixture *f = *state;
    struct ts_answer a;
    char id[16], buf[16];
    for (int i = META_REGIONS_MAX - 1; i >= 0; i--) {
        snprintf(id, sizeof id, "r%02d", i);
        assert_int_equal(fx_do(f, tmeta_region_put(T0 + i, id, "h:1"))->status, 201);
    }
    fx_digest_honest(f);
    const struct ts_result *r = fx_do(f, tmeta_region_put(T0, "zz", "h:1"));
    fx_error(r, 409, "conflict", "the region list is full (16)");
    assert_string_equal(fx_reason(r, buf, sizeof buf), "full");
    assert_int_equal(fx_do(f, tmeta_region_put(T0, "r05", "h:2"))->status, 200);
    fx_digest_honest(f);
    const msgpack_object *l = fx_regions(f, &a);
    assert_int_equal(l->via.array.size, META_REGIONS_MAX);
    for (int i = 0; i < META_REGIONS_MAX; i++) {
        snprintf(id, sizeof id, "r%02d", i);
        /* r15 was put first (index 1), r00 last (index 16); r05 changed at index 18. */
        fx_region_is(&l->via.array.ptr[i], id, i == 5 ? "h:2" : "h:1", T0 + i,
                     i == 5 ? 18 : META_REGIONS_MAX - i);
    }
    ts_answer_free(&a);
}

/* The list, its versions and the digest survive a close and reopen. */
static void regions_persist_across_reopen(void **state)
{
    struct fixture *f = *state;
    struct ts_answer a;
    fx_do(f, tmeta_region_put(T0, "us", "u1:7001"));
    fx_do(f, tmeta_region_put(T0 + 1, "ap", "a1:7001,a2:7001"));
    uint64_t digest = meta_digest(f->m);
    meta_close(f->m);
    fx_open(f);
    assert_int_equal(meta_digest(f->m), digest);
    fx_digest_honest(f);
    const msgpack_object *l = fx_regions(f, &a);
    assert_int_equal(l->via.array.size, 2);
    fx_region_is(&l->via.array.ptr[0], "ap", "a1:7001,a2:7001", T0 + 1, 2);
    fx_region_is(&l->via.array.ptr[1], "us", "u1:7001", T0, 1);
    ts_answer_free(&a);
    digest = fx_digest_of_state(f);
    assert_int_equal(fx_do(f, tmeta_region_put(T0 + 2, "us", "u1:7001"))->status, 200);
    assert_int_equal(fx_digest_of_state(f), digest);
}

/* The "regions" query travels by its wire name and decodes back to its type. */
static void regions_query_codec(void **state)
{
    struct fixture *f = *state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked u;
    struct meta_query q = {.type = META_Q_REGIONS}, back;
    int stale;
    assert_string_equal(meta_query_name(META_Q_REGIONS), "regions");
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    meta_query_encode(&pk, &q, 1);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(meta_query_decode(&u.data, &back, &stale, f->errmsg), 0);
    assert_int_equal(back.type, META_Q_REGIONS);
    assert_int_equal(stale, 1);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(claim_first_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(directory_lookup, setup, teardown),
        cmocka_unit_test_setup_teardown(claim_race_in_one_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(catalog_versions_and_log, setup, teardown),
        cmocka_unit_test_setup_teardown(catalog_page_keeps_versions_whole, setup, teardown),
        cmocka_unit_test_setup_teardown(catalog_refuses_long_game_id, setup, teardown),
        cmocka_unit_test_setup_teardown(tournament_put_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(join_under_the_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(join_after_the_end, setup, teardown),
        cmocka_unit_test_setup_teardown(close_first_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(garbage_command_costs_only_itself, setup, teardown),
        cmocka_unit_test_setup_teardown(persists_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(replayed_indexes_are_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(abort_drops_the_group, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_a_region_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(region_put_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(region_put_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(region_list_full_and_ordered, setup, teardown),
        cmocka_unit_test_setup_teardown(regions_persist_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(regions_query_codec, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
