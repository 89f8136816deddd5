/* tests/integration/test_shard_audit.c — the region's audit trail (shard/audit.c) on real
 * LMDB, through shard_apply and shard_query only: what apply records, what it does not, the
 * order and paging of the read, retention by stamped time, and the digest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/cursor.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

#define T0 1795350660123LL
#define DAY 86400000LL
#define ALLTIME 1u

struct fixture {
    char *dir;
    struct shard *s;
    uint64_t index;
    struct ts_apply out;
    char errmsg[LR_ERRMSG_SIZE];
};

static struct shard *open_shard(const char *dir)
{
    char errmsg[LR_ERRMSG_SIZE];
    struct shard_config cfg = {dir, "eu", 32ULL << 20, 0};
    struct shard *s;
    if (shard_open(&cfg, &s, errmsg) != 0) {
        fail_msg("open: %s", errmsg);
    }
    return s;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = testlib_tmpdir();
    f->s = open_shard(f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ts_apply_free(&f->out);
    shard_close(f->s);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* @c as the router sends it: with an api key from 127.0.0.1. */
static struct cmd from_api(struct cmd c)
{
    c.origin.key = CMD_KEY_API;
    c.origin.source = ts_s("127.0.0.1");
    return c;
}

static int fx_do(struct fixture *f, struct cmd c)
{
    return ts_apply1(f->s, &f->index, c);
}

/* A board "b" (alltime, incr) and players ann and bob. */
static void fx_base(struct fixture *f)
{
    assert_int_equal(fx_do(f, ts_board(T0, "b", CMD_ORDER_DESC, CMD_OP_INCR, ALLTIME, 0)), 201);
    assert_int_equal(fx_do(f, from_api(ts_player(T0, "ann", "eu", ""))), 201);
    assert_int_equal(fx_do(f, from_api(ts_player(T0, "bob", "eu", ""))), 201);
}

/* One page of @player's trail: 0 and *@a, or the query's code. */
static int fx_page(struct fixture *f, const char *player, uint32_t limit, const char *cursor,
                   struct ts_answer *a)
{
    struct shard_query q;
    memset(&q, 0, sizeof q);
    q.type = SHARD_Q_AUDIT;
    q.player_id = ts_s(player);
    q.limit = limit;
    q.cursor = ts_s(cursor);
    return ts_query(f->s, &q, a, f->errmsg);
}

static const msgpack_object *items_of(const struct ts_answer *a)
{
    const msgpack_object *items = ts_get(&a->data, "items");
    assert_int_equal(items->type, MSGPACK_OBJECT_ARRAY);
    return items;
}

static const char *str_of(const msgpack_object *map, const char *key, char *buf, size_t cap)
{
    return ts_str(map, key, buf, cap);
}

static void digest_honest(struct fixture *f)
{
    uint64_t scan;
    assert_int_equal(shard_digest_scan(f->s, &scan), 0);
    assert_int_equal(scan, shard_digest(f->s));
}

/* An accepted score and a refused one (out of range: 400) are both listed, newest first, with
 * everything API.md names: time, region, index, action, request, status, key class, source. */
static void accepted_and_refused_writes_are_listed(void **state)
{
    struct fixture *f = *state;
    char buf[128];
    fx_base(f);
    assert_int_equal(fx_do(f, from_api(ts_score(T0 + 1, "b", "ann", 5, 0, "idem-0001"))), 200);
    uint64_t accepted_at = f->index;
    struct cmd big = from_api(ts_score(T0 + 2, "b", "ann", 9007199254740991LL, 0, "idem-0002"));
    assert_int_equal(fx_do(f, big), 400);
    struct ts_answer a;
    assert_int_equal(fx_page(f, "ann", 0, "", &a), 0);
    const msgpack_object *items = items_of(&a);
    assert_int_equal(items->via.array.size, 3); /* the refused score, the score, the put */
    const msgpack_object *r = &items->via.array.ptr[0], *s = &items->via.array.ptr[1];
    assert_string_equal(str_of(r, "action", buf, sizeof buf), "score");
    assert_int_equal(ts_i64(r, "status"), 400);
    assert_int_equal(ts_i64(r, "index"), (int64_t)f->index);
    assert_string_equal(str_of(r, "at", buf, sizeof buf), "2026-11-22T12:31:00.125Z");
    assert_int_equal(ts_i64(ts_get(r, "request"), "score"), 9007199254740991LL);
    assert_int_equal(ts_i64(s, "status"), 200);
    assert_int_equal(ts_i64(s, "index"), (int64_t)accepted_at);
    assert_string_equal(str_of(s, "region", buf, sizeof buf), "eu");
    assert_string_equal(str_of(s, "key", buf, sizeof buf), "api");
    assert_string_equal(str_of(s, "source", buf, sizeof buf), "127.0.0.1");
    const msgpack_object *req = ts_get(s, "request");
    assert_string_equal(str_of(req, "board_id", buf, sizeof buf), "b");
    assert_string_equal(str_of(req, "player_id", buf, sizeof buf), "ann");
    assert_int_equal(ts_i64(req, "score"), 5);
    assert_int_equal(ts_i64(req, "subscore"), 0);
    assert_true(ts_is_nil(req, "metadata"));
    assert_string_equal(str_of(req, "idempotency_key", buf, sizeof buf), "idem-0001");
    const msgpack_object *put = &items->via.array.ptr[2];
    assert_string_equal(str_of(put, "action", buf, sizeof buf), "player");
    assert_int_equal(ts_i64(put, "status"), 201);
    assert_true(ts_is_nil(ts_get(put, "request"), "guild"));
    assert_true(ts_is_nil(&a.data, "next_cursor"));
    ts_answer_free(&a);
    /* bob's trail holds only bob's writes. */
    assert_int_equal(fx_page(f, "bob", 0, "", &a), 0);
    assert_int_equal(items_of(&a)->via.array.size, 1);
    ts_answer_free(&a);
    digest_honest(f);
}

/* Refusals by the rules are listed with their status: 404 (a claim of no reward), 409 (a key
 * used with another request), and an admin key's write says admin. */
static void refusals_keep_their_status(void **state)
{
    struct fixture *f = *state;
    char buf[64];
    fx_base(f);
    assert_int_equal(fx_do(f, from_api(ts_claim(T0 + 1, "ann", "b", 3, "claim-001"))), 404);
    assert_int_equal(fx_do(f, from_api(ts_score(T0 + 2, "b", "ann", 1, 0, "idem-0001"))), 200);
    struct cmd other = from_api(ts_score(T0 + 3, "b", "ann", 2, 0, "idem-0001"));
    other.origin.key = CMD_KEY_ADMIN;
    other.origin.source = ts_s("::1");
    assert_int_equal(fx_do(f, other), 409);
    struct ts_answer a;
    assert_int_equal(fx_page(f, "ann", 0, "", &a), 0);
    const msgpack_object *items = items_of(&a);
    assert_int_equal(items->via.array.size, 4);
    assert_int_equal(ts_i64(&items->via.array.ptr[0], "status"), 409);
    assert_string_equal(str_of(&items->via.array.ptr[0], "key", buf, sizeof buf), "admin");
    assert_string_equal(str_of(&items->via.array.ptr[0], "source", buf, sizeof buf), "::1");
    assert_int_equal(ts_i64(&items->via.array.ptr[1], "status"), 200);
    assert_int_equal(ts_i64(&items->via.array.ptr[2], "status"), 404);
    assert_string_equal(str_of(&items->via.array.ptr[2], "action", buf, sizeof buf), "claim");
    assert_int_equal(ts_i64(ts_get(&items->via.array.ptr[2], "request"), "cycle"), 3);
    ts_answer_free(&a);
}

/* A replay of an idempotent write answers the stored result and adds no entry. */
static void replay_adds_no_entry(void **state)
{
    struct fixture *f = *state;
    fx_base(f);
    struct cmd c = from_api(ts_score(T0 + 1, "b", "ann", 5, 0, "idem-0001"));
    assert_int_equal(fx_do(f, c), 200);
    uint64_t before;
    assert_int_equal(shard_audit_count(f->s, &before), 0);
    c.ts = T0 + 5;
    ts_apply_free(&f->out);
    ts_apply(f->s, &f->index, &c, 1, &f->out);
    assert_int_equal(f->out.res[0].replayed, 1);
    uint64_t after;
    assert_int_equal(shard_audit_count(f->s, &after), 0);
    assert_int_equal(after, before);
    struct ts_answer a;
    assert_int_equal(fx_page(f, "ann", 0, "", &a), 0);
    assert_int_equal(items_of(&a)->via.array.size, 2);
    ts_answer_free(&a);
}

/* A write for a player the region does not hold has no trail to join; commands that are not
 * player writes (catalog, grants) record nothing; an unknown player's trail is 404. */
static void only_player_writes_of_known_players(void **state)
{
    struct fixture *f = *state;
    fx_base(f);
    uint64_t n0, n1;
    assert_int_equal(shard_audit_count(f->s, &n0), 0);
    assert_int_equal(n0, 2); /* the two puts */
    assert_int_equal(fx_do(f, from_api(ts_score(T0, "b", "nobody", 1, 0, "idem-0001"))), 404);
    assert_int_equal(fx_do(f, ts_board(T0, "c", CMD_ORDER_DESC, CMD_OP_BEST, ALLTIME, 0)), 201);
    assert_int_equal(fx_do(f, ts_grant(T0, "b", 1, "ann", 1, "gold")), 201);
    assert_int_equal(shard_audit_count(f->s, &n1), 0);
    assert_int_equal(n1, n0);
    struct ts_answer a;
    assert_int_equal(fx_page(f, "nobody", 0, "", &a), LR_ENOTFOUND);
    assert_non_null(strstr(f->errmsg, "player nobody not found"));
    assert_int_equal(fx_page(f, "ann", 1001, "", &a), LR_EINVAL);
    assert_int_equal(fx_page(f, "ann", 0, "not-a-cursor", &a), LR_EINVAL);
    assert_non_null(strstr(f->errmsg, "cursor"));
}

/* A command logged before origins existed still applies and is listed, with null key and
 * source rather than a guess. */
static void commands_without_origin_list_null_key(void **state)
{
    struct fixture *f = *state;
    fx_base(f);
    assert_int_equal(fx_do(f, ts_score(T0 + 1, "b", "ann", 5, 0, "idem-0001")), 200);
    struct ts_answer a;
    assert_int_equal(fx_page(f, "ann", 1, "", &a), 0);
    const msgpack_object *it = &items_of(&a)->via.array.ptr[0];
    assert_int_equal(ts_i64(it, "status"), 200);
    assert_true(ts_is_nil(it, "key"));
    assert_true(ts_is_nil(it, "source"));
    ts_answer_free(&a);
}

/* Entries of one raft entry list newest first too (by position), and paging with every limit
 * walks the whole trail once, in order, whatever is written between pages. */
static void paging_walks_everything_once_newest_first(void **state)
{
    struct fixture *f = *state;
    fx_base(f);
    char keys[40][16];
    struct cmd batch[4];
    for (int e = 0; e < 10; e++) {
        for (int i = 0; i < 4; i++) {
            int n = e * 4 + i;
            snprintf(keys[n], sizeof keys[n], "idem-%04d", n);
            /* score = n, so the trail's order is readable from the request */
            batch[i] = from_api(ts_score(T0 + e, "b", "ann", n, 0, keys[n]));
        }
        ts_apply_free(&f->out);
        ts_apply(f->s, &f->index, batch, 4, &f->out);
    }
    int extra = 0; /* late writes made between pages: newest of all */
    for (uint32_t limit = 1; limit <= 45; limit += (limit < 8 ? 1 : 9)) {
        char cursor[CURSOR_MAX] = "";
        int seen = 0, pages = 0, total = 41 + extra; /* 40 scores, the put, the late ones */
        for (;;) {
            struct ts_answer a;
            char buf[16];
            assert_int_equal(fx_page(f, "ann", limit, cursor, &a), 0);
            const msgpack_object *items = items_of(&a);
            assert_true(items->via.array.size <= limit);
            for (uint32_t i = 0; i < items->via.array.size; i++, seen++) {
                const msgpack_object *it = &items->via.array.ptr[i];
                if (seen < total - 41) {
                    assert_int_equal(ts_i64(ts_get(it, "request"), "score"), 99);
                } else if (seen < total - 1) {
                    assert_int_equal(ts_i64(ts_get(it, "request"), "score"),
                                     39 - (seen - (total - 41)));
                } else {
                    assert_string_equal(ts_str(it, "action", buf, sizeof buf), "player");
                }
            }
            pages++;
            if (ts_is_nil(&a.data, "next_cursor")) {
                ts_answer_free(&a);
                break;
            }
            ts_str(&a.data, "next_cursor", cursor, sizeof cursor);
            ts_answer_free(&a);
            if (pages == 1 && (limit == 3 || limit == 17)) {
                /* A write between pages is newer than the cursor: it never shows on a later
                 * page of this walk, which goes on where it was. */
                char k[32];
                snprintf(k, sizeof k, "idem-late%d", extra);
                assert_int_equal(fx_do(f, from_api(ts_score(T0 + 20, "b", "ann", 99, 0, k))), 200);
                extra++;
            }
        }
        assert_int_equal(seen, total);
        assert_int_equal(pages, (total + (int)limit - 1) / (int)limit);
    }
    assert_int_equal(extra, 2);
}

/* Entries older than the retention are purged by the stamp of a later command, not a clock:
 * an entry exactly 30 days old stays, one older goes; raising the retention keeps them. */
static void retention_purges_by_stamped_time(void **state)
{
    struct fixture *f = *state;
    fx_base(f); /* stamped T0 */
    assert_int_equal(shard_audit_days(f->s), 30);
    assert_int_equal(fx_do(f, from_api(ts_score(T0 + DAY, "b", "ann", 1, 0, "idem-0001"))), 200);
    uint64_t n;
    /* Exactly 30 days after the puts: kept. */
    assert_int_equal(fx_do(f, from_api(ts_score(T0 + 30 * DAY, "b", "bob", 1, 0, "idem-0002"))),
                     200);
    assert_int_equal(shard_audit_count(f->s, &n), 0);
    assert_int_equal(n, 4);
    /* One millisecond later: the puts go, the score of day 1 stays. */
    assert_int_equal(fx_do(f, from_api(ts_score(T0 + 30 * DAY + 1, "b", "bob", 1, 0, "idem-0003"))),
                     200);
    assert_int_equal(shard_audit_count(f->s, &n), 0);
    assert_int_equal(n, 3);
    struct ts_answer a;
    assert_int_equal(fx_page(f, "ann", 0, "", &a), 0);
    assert_int_equal(items_of(&a)->via.array.size, 1);
    ts_answer_free(&a);
    /* 45 days of retention (replicated: a command) keeps what 30 would drop. */
    struct cmd days;
    memset(&days, 0, sizeof days);
    days.type = CMD_AUDIT_DAYS;
    days.ts = T0 + 31 * DAY;
    days.u.audit_days.days = 45;
    assert_int_equal(fx_do(f, days), 200);
    assert_int_equal(shard_audit_days(f->s), 45);
    assert_int_equal(fx_do(f, from_api(ts_score(T0 + 40 * DAY, "b", "bob", 1, 0, "idem-0004"))),
                     200);
    assert_int_equal(shard_audit_count(f->s, &n), 0);
    assert_int_equal(n, 4);
    /* Below the minimum is refused, as a command, and changes nothing. */
    days.u.audit_days.days = 29;
    assert_int_equal(fx_do(f, days), 400);
    assert_int_equal(shard_audit_days(f->s), 45);
    digest_honest(f);
    /* The retention survives a reopen. */
    shard_close(f->s);
    f->s = open_shard(f->dir);
    assert_int_equal(shard_audit_days(f->s), 45);
}

/* A backlog of expired entries drains a bounded number per entry, and goes entirely. */
static void purge_is_bounded_and_drains(void **state)
{
    struct fixture *f = *state;
    fx_base(f);
    char keys[200][16];
    for (int i = 0; i < 200; i++) {
        snprintf(keys[i], sizeof keys[i], "idem-%04d", i);
        assert_int_equal(fx_do(f, from_api(ts_score(T0 + i, "b", "ann", 1, 0, keys[i]))), 200);
    }
    uint64_t n, prev = 202;
    for (int i = 0; i < 40; i++) {
        char k[16];
        snprintf(k, sizeof k, "late-%04d", i);
        assert_int_equal(fx_do(f, from_api(ts_score(T0 + 60 * DAY, "b", "bob", 1, 0, k))), 200);
        assert_int_equal(shard_audit_count(f->s, &n), 0);
        /* the new entry, minus what the purge dropped: at most 16 a single-command entry */
        assert_true(n + 16 >= prev + 1);
        prev = n;
    }
    assert_int_equal(n, 40); /* only the late ones are left */
    digest_honest(f);
}

/* Two replicas applying the same entries hold the same trail and the same digest. */
static void replicas_agree(void **state)
{
    struct fixture *f = *state;
    char *dir2 = testlib_tmpdir();
    struct shard *s2 = open_shard(dir2);
    uint64_t idx2 = 0;
    char keys[30][16];
    struct cmd seq[34];
    int n = 0;
    seq[n++] = ts_board(T0, "b", CMD_ORDER_DESC, CMD_OP_INCR, ALLTIME, 0);
    seq[n++] = from_api(ts_player(T0, "ann", "eu", ""));
    for (int i = 0; i < 30; i++) {
        snprintf(keys[i], sizeof keys[i], "idem-%04d", i % 20); /* replays among them */
        seq[n++] = from_api(ts_score(T0 + (int64_t)i * 3 * DAY, "b", "ann", i % 7, 0, keys[i]));
    }
    for (int i = 0; i < n; i++) {
        ts_apply1(f->s, &f->index, seq[i]);
        ts_apply1(s2, &idx2, seq[i]);
    }
    assert_int_equal(shard_digest(f->s), shard_digest(s2));
    digest_honest(f);
    shard_close(s2);
    testlib_rmrf(dir2);
    free(dir2);
}

/* ---- model ------------------------------------------------------------------------------ */

#define M_PLAYERS 5
#define M_ENTRIES 400
#define M_MAX 2000

/* One entry the model expects a player's trail to hold. */
struct m_entry {
    int64_t ts;
    uint32_t player; /* pid: players are created first, in order, so pid == their number */
    uint64_t index;
    uint32_t pos;
    int status;
    int alive;
};

/* Expiry order, as audit_expiry's keys sort: stamp, pid, then newest first. */
static int m_before(const struct m_entry *x, const struct m_entry *y)
{
    if (x->ts != y->ts) {
        return x->ts < y->ts;
    }
    if (x->player != y->player) {
        return x->player < y->player;
    }
    return x->index != y->index ? x->index > y->index : x->pos > y->pos;
}

/* What apply's purge drops before an entry stamped @now of @n commands. */
static void m_purge(struct m_entry *m, size_t nm, int64_t now, uint32_t n)
{
    uint32_t max = 2 * n > 16 ? 2 * n : 16;
    for (uint32_t k = 0; k < max; k++) {
        struct m_entry *oldest = NULL;
        for (size_t i = 0; i < nm; i++) {
            if (m[i].alive && (oldest == NULL || m_before(&m[i], oldest))) {
                oldest = &m[i];
            }
        }
        if (oldest == NULL || oldest->ts >= now - 30 * DAY) {
            return;
        }
        oldest->alive = 0;
    }
}

/* Random writes of a few players (scores from a small pool of keys, so replays and key
 * conflicts happen; an incr board, so some go out of range; now and then a player the region
 * does not hold), in entries of 1 to 4 commands, with time jumping up to 3 days an entry:
 * every player's trail, read in pages, is exactly the model's (what was applied and not
 * replayed, newest first, with its status, minus what the bounded purge dropped), and the
 * digest is honest. */
static void model_random_writes(void **state)
{
    struct fixture *f = *state;
    struct testrng rng = {testlib_seed(0xa0d17)};
    static struct m_entry m[M_MAX];
    size_t nm = 0;
    char keys[M_PLAYERS][8][16];
    static const char *const players[M_PLAYERS + 1] = {"p0", "p1", "p2", "p3", "p4", "ghost"};
    assert_int_equal(fx_do(f, ts_board(T0, "b", CMD_ORDER_DESC, CMD_OP_INCR, ALLTIME, 0)), 201);
    for (uint32_t p = 0; p < M_PLAYERS; p++) {
        assert_int_equal(fx_do(f, from_api(ts_player(T0, players[p], "eu", ""))), 201);
        m[nm++] = (struct m_entry){T0, p, f->index, 0, 201, 1};
        for (int k = 0; k < 8; k++) {
            snprintf(keys[p][k], sizeof keys[p][k], "key-%u-%04d", p, k);
        }
    }
    int64_t now = T0;
    for (int e = 0; e < M_ENTRIES && nm + 4 <= M_MAX; e++) {
        struct cmd c[4];
        uint32_t who[4];
        uint32_t n = 1 + (uint32_t)testrng_below(&rng, 4);
        now += (int64_t)testrng_below(&rng, 3 * DAY);
        for (uint32_t i = 0; i < n; i++) {
            who[i] = (uint32_t)testrng_below(&rng, M_PLAYERS + 1);
            uint32_t k = (uint32_t)testrng_below(&rng, 8);
            /* the key's own score, usually: a retry; now and then another (409) or a huge one */
            int64_t score = testrng_below(&rng, 8) ? k : (testrng_below(&rng, 2) ? 100 : 1LL << 52);
            c[i] = from_api(ts_score(now, "b", players[who[i]], score, 0,
                                     who[i] < M_PLAYERS ? keys[who[i]][k] : "key-ghost"));
        }
        m_purge(m, nm, now, n);
        ts_apply_free(&f->out);
        ts_apply(f->s, &f->index, c, n, &f->out);
        for (uint32_t i = 0; i < n; i++) {
            if (who[i] < M_PLAYERS && !f->out.res[i].replayed) {
                m[nm++] = (struct m_entry){now, who[i], f->index, i, f->out.res[i].status, 1};
            }
        }
    }
    uint64_t held, alive = 0;
    for (size_t i = 0; i < nm; i++) {
        alive += (uint64_t)m[i].alive;
    }
    assert_int_equal(shard_audit_count(f->s, &held), 0);
    assert_int_equal(held, alive);
    assert_true(alive < nm / 2); /* the purge did most of the work */
    for (uint32_t p = 0; p < M_PLAYERS; p++) {
        /* The model's entries of p, newest first: walk m backwards (appended in log order). */
        size_t want[M_MAX], nw = 0;
        for (size_t i = nm; i-- > 0;) {
            if (m[i].player == p && m[i].alive) {
                want[nw++] = i;
            }
        }
        char cursor[CURSOR_MAX] = "";
        size_t seen = 0;
        for (;;) {
            struct ts_answer a;
            assert_int_equal(fx_page(f, players[p], 7, cursor, &a), 0);
            const msgpack_object *items = items_of(&a);
            for (uint32_t i = 0; i < items->via.array.size; i++, seen++) {
                assert_true(seen < nw);
                const struct m_entry *x = &m[want[seen]];
                assert_int_equal(ts_i64(&items->via.array.ptr[i], "index"), (int64_t)x->index);
                assert_int_equal(ts_i64(&items->via.array.ptr[i], "status"), x->status);
            }
            int end = ts_is_nil(&a.data, "next_cursor");
            if (!end) {
                ts_str(&a.data, "next_cursor", cursor, sizeof cursor);
            }
            ts_answer_free(&a);
            if (end) {
                break;
            }
        }
        assert_int_equal(seen, nw);
    }
    digest_honest(f);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(accepted_and_refused_writes_are_listed),
        T(refusals_keep_their_status),
        T(replay_adds_no_entry),
        T(only_player_writes_of_known_players),
        T(commands_without_origin_list_null_key),
        T(paging_walks_everything_once_newest_first),
        T(retention_purges_by_stamped_time),
        T(purge_is_bounded_and_drains),
        T(replicas_agree),
        T(model_random_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
