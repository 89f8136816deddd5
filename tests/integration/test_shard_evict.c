/* tests/integration/test_shard_evict.c — eviction of past periods in the region state machine
 * on real LMDB (docs/data-layout.md, "Eviction of past periods"; shard/evict.c): scores
 * stamped across many days, weeks and cycles, then what memory (shard_periods), LMDB (read with
 * LMDB itself while the shard is closed), reads and digests say. */
#include <lmdb.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

#define T0 1795350660123LL /* 2026-11-22T12:31:00.123Z, a Sunday */
#define DAY 86400000LL
#define MAXP 64   /* periods a check holds */
#define NPLAY 100 /* players of the fixture */
#define BUDGET 32 /* EVICT_PER_COMMAND (shard_int.h) */

static const char *const guilds[3] = {"", "red", "blue"};

struct fixture {
    char *dir;
    struct shard *s;
    uint64_t index;
    struct ts_apply out;
    char ids[NPLAY][8];
    char errmsg[LR_ERRMSG_SIZE];
};

static void fx_open(struct fixture *f)
{
    struct shard_config cfg = {f->dir, "eu", 32ULL << 20, 0};
    if (shard_open(&cfg, &f->s, f->errmsg) != 0) {
        fail_msg("open: %s", f->errmsg);
    }
}

static void fx_reopen(struct fixture *f)
{
    shard_close(f->s);
    fx_open(f);
}

/* Apply @n commands as one entry; every one must answer @status. */
static void fx_entry(struct fixture *f, const struct cmd *c, uint32_t n, int status)
{
    ts_apply_free(&f->out);
    ts_apply(f->s, &f->index, c, n, &f->out);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(f->out.res[i].status, status);
    }
}

static void fx_do(struct fixture *f, struct cmd c, int status)
{
    fx_entry(f, &c, 1, status);
}

static struct cmd fx_board(int64_t ts, const char *id, unsigned windows, int64_t reset_s,
                           int64_t keep)
{
    struct cmd c = ts_board(ts, id, CMD_ORDER_DESC, CMD_OP_BEST, windows, reset_s);
    c.u.board_put.keep_periods = keep;
    return c;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = testlib_tmpdir();
    fx_open(f);
    struct cmd c[NPLAY];
    for (int i = 0; i < NPLAY; i++) {
        snprintf(f->ids[i], sizeof f->ids[i], "p%02d", i);
        c[i] = ts_player(T0, f->ids[i], "eu", guilds[i % 3]);
    }
    fx_entry(f, c, NPLAY, 201);
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

/* The scores of players [0, @n) on @board, one entry stamped @ts (plus a ms a player). */
static void fx_scores(struct fixture *f, const char *board, int64_t ts, int n)
{
    struct cmd c[NPLAY];
    for (int i = 0; i < n; i++) {
        c[i] = ts_score(ts + i, board, f->ids[i], (ts / DAY * 7 + i * 13) % 50, 0, "");
    }
    fx_entry(f, c, (uint32_t)n, 200);
}

/* What memory holds: the periods of @board's window @w and their entry counts. */
struct periods {
    size_t n;
    int64_t p[MAXP];
    uint64_t count[MAXP];
};

static void fx_memory(struct fixture *f, const char *board, enum timefmt_window w,
                      struct periods *out)
{
    out->n = shard_periods(f->s, ts_s(board), w, out->p, out->count, MAXP);
    assert_true(out->n <= MAXP);
}

/* What LMDB holds, read with LMDB itself: the shard is closed for it and opened again. */
static void fx_lmdb(struct fixture *f, const char *board, enum timefmt_window w,
                    struct periods *out)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *cur;
    MDB_val k, v;
    size_t blen = strlen(board);
    shard_close(f->s);
    out->n = 0;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, f->dir, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "scores", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const unsigned char *kb = k.mv_data; /* pid, board NUL, window, period (biased BE) */
        if (k.mv_size != 4 + blen + 2 + 8 || memcmp(kb + 4, board, blen) != 0 || kb[4 + blen] ||
            kb[4 + blen + 1] != (unsigned char)w) {
            continue;
        }
        uint64_t u = 0;
        for (size_t i = 0; i < 8; i++) {
            u = u << 8 | kb[4 + blen + 2 + i];
        }
        int64_t p = (int64_t)(u ^ (1ULL << 63));
        size_t i = 0;
        while (i < out->n && out->p[i] < p) {
            i++;
        }
        if (i == out->n || out->p[i] != p) {
            assert_true(out->n < MAXP);
            memmove(out->p + i + 1, out->p + i, (out->n - i) * sizeof *out->p);
            memmove(out->count + i + 1, out->count + i, (out->n - i) * sizeof *out->count);
            out->p[i] = p;
            out->count[i] = 0;
            out->n++;
        }
        out->count[i]++;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    fx_open(f);
}

static void fx_same(const struct periods *x, const struct periods *y)
{
    assert_int_equal(x->n, y->n);
    for (size_t i = 0; i < x->n; i++) {
        assert_int_equal(x->p[i], y->p[i]);
        assert_int_equal(x->count[i], y->count[i]);
    }
}

/* Memory and LMDB agree on @board's window @w, and so does a reopened shard's memory. */
static void fx_agree(struct fixture *f, const char *board, enum timefmt_window w,
                     struct periods *mem)
{
    struct periods disk, again;
    fx_memory(f, board, w, mem);
    fx_lmdb(f, board, w, &disk); /* reopens */
    fx_same(mem, &disk);
    fx_memory(f, board, w, &again);
    fx_same(mem, &again);
}

static void fx_digest_honest(struct fixture *f)
{
    uint64_t scanned;
    assert_int_equal(shard_digest_scan(f->s, &scanned), 0);
    assert_true(shard_digest(f->s) == scanned);
}

/* TOP of @board's window @w at @period, read at @now_ms: its total, or -1 when not found
 * (the sentence must then say the period was evicted). */
static int64_t fx_top(struct fixture *f, const char *board, enum timefmt_window w, int64_t period,
                      int64_t now_ms, const char *guild)
{
    struct shard_query q = {.type = SHARD_Q_TOP,
                            .board_id = ts_s(board),
                            .window = w,
                            .has_period = 1,
                            .period = period,
                            .guild = ts_s(guild),
                            .limit = 1000,
                            .now_ms = now_ms};
    struct ts_answer a;
    int rv = ts_query(f->s, &q, &a, f->errmsg);
    if (rv == LR_ENOTFOUND) {
        assert_non_null(strstr(f->errmsg, "evicted"));
        return -1;
    }
    assert_int_equal(rv, 0);
    int64_t total = ts_i64(&a.data, "total");
    assert_int_equal(ts_get(&a.data, "entries")->via.array.size, total);
    ts_answer_free(&a);
    return total;
}

/* Thirty days of scores on a board keeping 2 past periods: memory and LMDB keep exactly the
 * current period and the 2 before it in every dated window, all of alltime, and a reopened
 * shard holds and answers the same. */
static void old_periods_leave_memory_and_lmdb(void **state)
{
    struct fixture *f = *state;
    const int64_t keep = 2, days = 30, n = 40;
    fx_do(f, fx_board(T0, "d", 15, 0, keep), 201);
    for (int64_t d = 0; d < days; d++) {
        fx_scores(f, "d", T0 + d * DAY, (int)n);
    }
    int64_t last = T0 + (days - 1) * DAY;
    for (int w = TIMEFMT_ALLTIME; w <= TIMEFMT_MONTHLY; w++) {
        struct periods mem;
        fx_agree(f, "d", (enum timefmt_window)w, &mem);
        /* Every period a stamp fell in, from the last one's minus keep on. */
        int64_t first = timefmt_period_of((enum timefmt_window)w, T0, 0);
        int64_t cur = timefmt_period_of((enum timefmt_window)w, last, 0);
        int64_t lo = w == TIMEFMT_ALLTIME ? 0 : (cur - keep > first ? cur - keep : first);
        assert_int_equal(mem.n, cur - lo + 1);
        for (size_t i = 0; i < mem.n; i++) {
            assert_int_equal(mem.p[i], lo + (int64_t)i);
            assert_int_equal(mem.count[i], n);
        }
    }
    /* Reads: the kept periods answer in full, region and guild; older ones are not found by
     * the floor alone (a reader's clock at 0) and by the reader's clock. */
    int64_t today = timefmt_period_of(TIMEFMT_DAILY, last, 0);
    for (int64_t p = today - 5; p <= today; p++) {
        int kept = p >= today - keep;
        assert_int_equal(fx_top(f, "d", TIMEFMT_DAILY, p, 0, ""), kept ? n : -1);
        assert_int_equal(fx_top(f, "d", TIMEFMT_DAILY, p, last, ""), kept ? n : -1);
        assert_int_equal(fx_top(f, "d", TIMEFMT_DAILY, p, last, "red"), kept ? n / 3 : -1);
    }
    assert_int_equal(fx_top(f, "d", TIMEFMT_DAILY, today - 3, last, ""), -1);
    assert_non_null(strstr(f->errmsg, "keeps 2 past periods"));
    assert_int_equal(fx_top(f, "d", TIMEFMT_ALLTIME, 0, last, ""), n);
    fx_digest_honest(f);
}

/* Two shards fed the same entries hold the same digest at every step, though one of them is
 * closed and reopened between entries: eviction resumes from LMDB exactly where it was. */
static void same_entries_same_digest_across_reopens(void **state)
{
    struct fixture *f = *state;
    struct fixture *g = calloc(1, sizeof *g);
    g->dir = testlib_tmpdir();
    fx_open(g);
    memcpy(g->ids, f->ids, sizeof f->ids);
    struct cmd c[NPLAY];
    for (int i = 0; i < NPLAY; i++) {
        c[i] = ts_player(T0, f->ids[i], "eu", guilds[i % 3]);
    }
    fx_entry(g, c, NPLAY, 201);
    struct cmd b = fx_board(T0, "d", 15, 0, 1);
    fx_do(f, b, 201);
    fx_do(g, b, 201);
    for (int64_t d = 0; d < 12; d++) {
        /* Few players a day after a full day: eviction spans several entries. */
        int n = d % 4 == 0 ? NPLAY : 3;
        fx_scores(f, "d", T0 + d * DAY, n);
        fx_scores(g, "d", T0 + d * DAY, n);
        assert_true(shard_digest(f->s) == shard_digest(g->s));
        if (d % 3 == 1) {
            fx_reopen(g);
            assert_true(shard_digest(f->s) == shard_digest(g->s));
        }
    }
    struct periods x, y;
    fx_memory(f, "d", TIMEFMT_DAILY, &x);
    fx_memory(g, "d", TIMEFMT_DAILY, &y);
    fx_same(&x, &y);
    fx_digest_honest(f);
    fx_digest_honest(g);
    ts_apply_free(&g->out);
    shard_close(g->s);
    testlib_rmrf(g->dir);
    free(g->dir);
    free(g);
}

/* A command deletes at most its budget of records; the period half gone already reads as
 * evicted, before and after a reopen, and a keep raised later does not bring it back. */
static void each_command_evicts_a_bounded_number(void **state)
{
    struct fixture *f = *state;
    struct periods mem;
    fx_do(f, fx_board(T0, "b", 1u << TIMEFMT_ALLTIME | 1u << TIMEFMT_DAILY, 0, 1), 201);
    int64_t d0 = timefmt_period_of(TIMEFMT_DAILY, T0, 0);
    fx_scores(f, "b", T0, NPLAY);
    fx_scores(f, "b", T0 + DAY, 1);
    assert_int_equal(fx_top(f, "b", TIMEFMT_DAILY, d0, 0, ""), NPLAY); /* still kept */
    fx_do(f, ts_score(T0 + 2 * DAY, "b", "p00", 1, 0, ""), 200);
    fx_agree(f, "b", TIMEFMT_DAILY, &mem);
    assert_int_equal(mem.n, 3);
    assert_int_equal(mem.p[0], d0);
    assert_int_equal(mem.count[0], NPLAY - BUDGET);
    assert_int_equal(fx_top(f, "b", TIMEFMT_DAILY, d0, 0, ""), -1);
    assert_int_equal(fx_top(f, "b", TIMEFMT_DAILY, d0 + 1, 0, ""), 1);

    /* Keep raised to 10: the floor stays, so day 0 stays evicted and keeps going. */
    fx_do(f, fx_board(T0 + 2 * DAY, "b", 1u << TIMEFMT_ALLTIME | 1u << TIMEFMT_DAILY, 0, 10), 200);
    assert_int_equal(fx_top(f, "b", TIMEFMT_DAILY, d0, T0 + 2 * DAY, ""), -1);
    struct cmd c[2] = {ts_score(T0 + 2 * DAY + 1, "b", "p01", 1, 0, ""),
                       ts_score(T0 + 2 * DAY + 2, "b", "p02", 1, 0, "")};
    fx_entry(f, c, 2, 200);
    fx_memory(f, "b", TIMEFMT_DAILY, &mem);
    assert_int_equal(mem.count[0], NPLAY - 3 * BUDGET);
    fx_do(f, ts_score(T0 + 2 * DAY + 3, "b", "p03", 1, 0, ""), 200);
    fx_agree(f, "b", TIMEFMT_DAILY, &mem);
    assert_int_equal(mem.n, 2); /* day 0 is gone: the rest fitted the budget */
    assert_int_equal(mem.p[0], d0 + 1);
    assert_int_equal(fx_top(f, "b", TIMEFMT_DAILY, d0 + 1, 0, ""), 1);
    fx_digest_honest(f);
}

/* A keep lowered by a put evicts the backlog on the next writes; the put's answer and the
 * board's GET carry keep_periods, 8 when the put leaves it out. */
static void keep_lowered_evicts_the_backlog(void **state)
{
    struct fixture *f = *state;
    struct periods mem;
    struct ts_answer a;
    unsigned wins = 1u << TIMEFMT_ALLTIME | 1u << TIMEFMT_DAILY;
    fx_do(f, fx_board(T0, "k", wins, 0, 0), 201);
    assert_int_equal(ts_i64(&f->out.res[0].body.data, "keep_periods"), CMD_KEEP_PERIODS_DEFAULT);
    for (int64_t d = 0; d < 6; d++) {
        fx_scores(f, "k", T0 + d * DAY, 3);
    }
    fx_memory(f, "k", TIMEFMT_DAILY, &mem);
    assert_int_equal(mem.n, 6);
    fx_do(f, fx_board(T0 + 5 * DAY, "k", wins, 0, 1), 200);
    assert_int_equal(ts_i64(&f->out.res[0].body.data, "keep_periods"), 1);
    struct shard_query q = {.type = SHARD_Q_BOARD_GET, .board_id = ts_s("k")};
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_i64(&a.data, "keep_periods"), 1);
    ts_answer_free(&a);
    fx_do(f, ts_score(T0 + 5 * DAY + 9, "k", "p00", 1, 0, ""), 200);
    fx_agree(f, "k", TIMEFMT_DAILY, &mem);
    assert_int_equal(mem.n, 2);
    assert_int_equal(mem.p[0], timefmt_period_of(TIMEFMT_DAILY, T0 + 4 * DAY, 0));
    /* The stored keep survives a reopen. */
    assert_int_equal(ts_query(f->s, &q, &a, f->errmsg), 0);
    assert_int_equal(ts_i64(&a.data, "keep_periods"), 1);
    ts_answer_free(&a);
    fx_digest_honest(f);
}

/* Cycles: a reader's clock past keep cycles refuses a cycle even where no write has evicted
 * it yet, pointing at its close record; the next write in a later cycle evicts it. */
static void old_cycles_read_as_evicted_by_the_clock(void **state)
{
    struct fixture *f = *state;
    struct periods mem;
    const int64_t reset = 60, cyc = reset * 1000;
    fx_do(f, fx_board(T0, "c", 1u << TIMEFMT_ALLTIME, reset, 1), 201);
    int64_t n = T0 / cyc;
    fx_scores(f, "c", n * cyc, 5);
    assert_int_equal(fx_top(f, "c", TIMEFMT_CYCLE, n, (n + 1) * cyc, ""), 5);
    assert_int_equal(fx_top(f, "c", TIMEFMT_CYCLE, n, (n + 2) * cyc, ""), -1);
    char want[96];
    snprintf(want, sizeof want, "/v1/boards/c/cycles/%lld", (long long)n);
    assert_non_null(strstr(f->errmsg, want));
    fx_memory(f, "c", TIMEFMT_CYCLE, &mem);
    assert_int_equal(mem.n, 1); /* nothing wrote since: still held */
    fx_scores(f, "c", (n + 2) * cyc, 1);
    fx_agree(f, "c", TIMEFMT_CYCLE, &mem);
    assert_int_equal(mem.n, 1);
    assert_int_equal(mem.p[0], n + 2);
    fx_agree(f, "c", TIMEFMT_ALLTIME, &mem);
    assert_int_equal(mem.count[0], 5);
    fx_digest_honest(f);
}

/* A command stamped below the floor (a proposer that broke the stamp order) applies as it is
 * and evicts nothing that command; the next ordered write evicts what it wrote. */
static void a_stale_stamp_applies_and_is_evicted_later(void **state)
{
    struct fixture *f = *state;
    struct periods mem;
    fx_do(f, fx_board(T0, "s", 1u << TIMEFMT_ALLTIME | 1u << TIMEFMT_DAILY, 0, 1), 201);
    fx_scores(f, "s", T0 + 10 * DAY, 2);
    fx_do(f, ts_score(T0, "s", "p05", 1000, 0, ""), 200);
    assert_int_equal(ts_i64(&f->out.res[0].body.data, "region_rank"), 1); /* alltime */
    fx_memory(f, "s", TIMEFMT_DAILY, &mem);
    assert_int_equal(mem.n, 2);
    assert_int_equal(fx_top(f, "s", TIMEFMT_DAILY, mem.p[0], 0, ""), -1);
    fx_do(f, ts_score(T0 + 10 * DAY + 5, "s", "p06", 1, 0, ""), 200);
    fx_agree(f, "s", TIMEFMT_DAILY, &mem);
    assert_int_equal(mem.n, 1);
    fx_digest_honest(f);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(old_periods_leave_memory_and_lmdb),       T(same_entries_same_digest_across_reopens),
        T(each_command_evicts_a_bounded_number),    T(keep_lowered_evicts_the_backlog),
        T(old_cycles_read_as_evicted_by_the_clock), T(a_stale_stamp_applies_and_is_evicted_later),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
