/* tests/integration/test_shard_model.c — the shard against a plain reference model.
 *
 * Thousands of random commands (every operator, asc and desc, ties on score, subscore and
 * time, daily windows, guild moves, idempotent replays and conflicts, out-of-range results,
 * reward grants repeated as a retrying closer repeats them, claims under fresh, reused and
 * expired keys) go to a real shard on real LMDB and to a model made of arrays and qsort.
 * Periodically every ranking is compared in full: pages walked by cursor, rank and around for
 * players, count before arbitrary probes (including ids the region does not know), friends
 * views; and every player's rewards, all and pending, page by page. Boards keep 1 to 8 past
 * days, so old days are evicted: the model tracks each board's floor and the records each
 * command's budget removes, and checks that reads of an evicted day (at the reader's clock,
 * or by the floor alone) are not found and that the rankings in memory hold exactly what it
 * expects. Halfway the shard is closed and reopened, which must change neither its digest nor
 * its answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/valid.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

#define M_PLAYERS 120
#define M_BOARDS 5
#define M_SLOTS 8  /* alltime + 7 days */
#define M_GUILDS 3 /* "", g1, g2 */
#define M_KEYS 4   /* idempotency keys per player */
#define M_DAY_MS 86400000LL
#define M_T0 1795305600000LL /* 2026-11-22T00:00:00Z */
#define M_IDEM_TTL (25LL * 3600 * 1000)
#define M_RBOARDS 3 /* boards rewards are granted on (they need not exist) */
#define M_CYCLES 4  /* cycles 0..3 of each */
#define M_CKEYS 3   /* claim keys per player, apart from the score keys */
#define M_BUDGET 32 /* records a command evicts at most (EVICT_PER_COMMAND) */

static const char *const m_guilds[M_GUILDS] = {"", "g1", "g2"};

struct m_board {
    const char *id;
    int order, op;
    int keep; /* keep_periods as put (0: the default) */
};

static const struct m_board m_boards[M_BOARDS] = {
    {"b.best.desc", CMD_ORDER_DESC, CMD_OP_BEST, 0}, {"b.best.asc", CMD_ORDER_ASC, CMD_OP_BEST, 2},
    {"b.set", CMD_ORDER_DESC, CMD_OP_SET, 1},        {"b.incr", CMD_ORDER_DESC, CMD_OP_INCR, 1},
    {"b.decr.asc", CMD_ORDER_ASC, CMD_OP_DECR, 3},
};

static int m_keep(int b)
{
    return m_boards[b].keep ? m_boards[b].keep : CMD_KEEP_PERIODS_DEFAULT;
}

struct m_entry {
    int present;
    int64_t score, sub, t;
};

struct m_idem {
    int used;
    int64_t first_ts;
    int board;
    int64_t score, sub;
    int64_t resp_score; /* stored response's score */
    int resp_improved;
};

/* A reward of the model: what the shard must list and answer. */
struct m_reward {
    int granted;
    int64_t rank;
    int text; /* reward "rw-<text>" */
    int64_t granted_ts;
    int64_t claimed_ts; /* -1 until claimed */
    int claim_key;      /* the key that claimed it */
    uint64_t seq;       /* entry index * 4096 + position: the list's order, newest first */
};

/* A claim key's first 2xx answer, for replays within the key's window. */
struct m_cidem {
    int used;
    int64_t first_ts;
    int rb, cycle;
    int64_t resp_claimed_ts;
};

struct fixture {
    char *dir;
    struct shard *s;
    uint64_t index;
    struct testrng rng;
    int64_t ts;
    char ids[M_PLAYERS][16];
    int guild[M_PLAYERS];
    int created[M_PLAYERS];
    struct m_entry e[M_BOARDS][M_SLOTS][M_PLAYERS];
    struct m_idem idem[M_PLAYERS][M_KEYS];
    char keys[M_KEYS][16];
    struct m_reward rw[M_PLAYERS][M_RBOARDS][M_CYCLES];
    struct m_cidem cidem[M_PLAYERS][M_CKEYS];
    char ckeys[M_CKEYS][16];
    char rtext[64][16];
    struct ts_apply out;
    int64_t jump_ms;             /* the rare jumps of time, sized so a run spans the days */
    int floor[M_BOARDS];         /* days (slots) below it are evicted */
    int gone[M_BOARDS][M_SLOTS]; /* records of a day already evicted from memory and LMDB */
    int64_t qnow;                /* the reader's clock of the ranking being checked */
};

static void m_open(struct fixture *f)
{
    char errmsg[LR_ERRMSG_SIZE];
    struct shard_config cfg = {f->dir, "eu", 64ULL << 20, 0};
    int rv = shard_open(&cfg, &f->s, errmsg);
    if (rv != 0) {
        fail_msg("open: %s", errmsg);
    }
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = testlib_tmpdir();
    f->rng.s = testlib_seed(20261122);
    f->ts = M_T0 + 3600000;
    for (int b = 0; b < M_BOARDS; b++) {
        f->floor[b] = -1000;
    }
    m_open(f);
    for (int i = 0; i < M_PLAYERS; i++) {
        /* Random ids, so id order and player-number order disagree. */
        int len = 1 + (int)testrng_below(&f->rng, 6);
        for (int j = 0; j < len; j++) {
            f->ids[i][j] = "abcz"[testrng_below(&f->rng, 4)];
        }
        snprintf(f->ids[i] + len, sizeof f->ids[i] - (size_t)len, "%d", i);
    }
    for (int k = 0; k < M_KEYS; k++) {
        snprintf(f->keys[k], sizeof f->keys[k], "idem-key-%d", k);
    }
    for (int k = 0; k < M_CKEYS; k++) {
        snprintf(f->ckeys[k], sizeof f->ckeys[k], "claim-key-%d", k);
    }
    for (int k = 0; k < 64; k++) {
        snprintf(f->rtext[k], sizeof f->rtext[k], "rw-%d", k);
    }
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

/* ---- the model ------------------------------------------------------------------------------ */

static int m_slot_of(int64_t ts)
{
    return 1 + (int)((ts - M_T0) / M_DAY_MS);
}

/* Compare players @x, @y on board @b slot @sl under API.md's order. */
static const struct fixture *m_cmp_f;
static int m_cmp_b, m_cmp_sl;

static int m_idcmp(const char *x, const char *y)
{
    size_t lx = strlen(x), ly = strlen(y), n = lx < ly ? lx : ly;
    int c = memcmp(x, y, n);
    return c ? c : (lx < ly ? -1 : lx > ly);
}

static int m_keycmp(int b, int64_t s1, int64_t b1, int64_t t1, const char *id1, int64_t s2,
                    int64_t b2, int64_t t2, const char *id2)
{
    int desc = m_boards[b].order == CMD_ORDER_DESC;
    if (s1 != s2) {
        return (s1 < s2) == desc ? 1 : -1;
    }
    if (b1 != b2) {
        return (b1 < b2) == desc ? 1 : -1;
    }
    if (t1 != t2) {
        return t1 < t2 ? -1 : 1;
    }
    return m_idcmp(id1, id2);
}

static int m_cmp(const void *x, const void *y)
{
    int i = *(const int *)x, j = *(const int *)y;
    const struct m_entry *a = &m_cmp_f->e[m_cmp_b][m_cmp_sl][i];
    const struct m_entry *c = &m_cmp_f->e[m_cmp_b][m_cmp_sl][j];
    return m_keycmp(m_cmp_b, a->score, a->sub, a->t, m_cmp_f->ids[i], c->score, c->sub, c->t,
                    m_cmp_f->ids[j]);
}

/* Sorted players of a ranking; guild -1 = the region. */
static int m_sorted(const struct fixture *f, int b, int sl, int guild, int *out)
{
    int n = 0;
    for (int p = 0; p < M_PLAYERS; p++) {
        if (f->e[b][sl][p].present && (guild < 0 || f->guild[p] == guild)) {
            out[n++] = p;
        }
    }
    m_cmp_f = f;
    m_cmp_b = b;
    m_cmp_sl = sl;
    qsort(out, (size_t)n, sizeof *out, m_cmp);
    return n;
}

/* Apply a score to the model; @return 1 if it changes the stored entry, -1 if out of range. */
static int m_score(struct fixture *f, int b, int sl, int p, int64_t v, int64_t sub, int64_t ts,
                   int dry)
{
    struct m_entry *e = &f->e[b][sl][p];
    struct m_entry n = *e;
    int changed = 0;
    switch (m_boards[b].op) {
    case CMD_OP_BEST: {
        int desc = m_boards[b].order == CMD_ORDER_DESC;
        int better = !e->present || (desc ? (v > e->score || (v == e->score && sub > e->sub))
                                          : (v < e->score || (v == e->score && sub < e->sub)));
        if (better) {
            n.score = v;
            n.sub = sub;
            changed = 1;
        }
        break;
    }
    case CMD_OP_SET:
        changed = !e->present || v != e->score || sub != e->sub;
        n.score = v;
        n.sub = sub;
        break;
    default: {
        int64_t base = e->present ? e->score : 0;
        n.score = m_boards[b].op == CMD_OP_INCR ? base + v : base - v;
        if (!valid_score(n.score)) {
            return -1;
        }
        changed = !e->present || n.score != e->score || sub != e->sub;
        n.sub = sub;
        break;
    }
    }
    if (changed) {
        n.present = 1;
        n.t = ts;
        if (!dry) {
            *e = n;
        }
    }
    return changed;
}

/* Entries of board @b on day slot @sl (the region index's count). */
static int m_present(const struct fixture *f, int b, int sl)
{
    int n = 0;
    for (int p = 0; p < M_PLAYERS; p++) {
        n += f->e[b][sl][p].present;
    }
    return n;
}

/* A score command wrote to board @b on day slot @sl: raise the floor, then evict up to the
 * budget, oldest day first (shard/evict.c). */
static void m_evict(struct fixture *f, int b, int sl)
{
    int budget = M_BUDGET;
    if (sl - m_keep(b) > f->floor[b]) {
        f->floor[b] = sl - m_keep(b);
    }
    for (int d = 1; d < M_SLOTS && d < f->floor[b] && budget > 0; d++) {
        int take = m_present(f, b, d) - f->gone[b][d];
        take = take < budget ? take : budget;
        f->gone[b][d] += take;
        budget -= take;
    }
}

/* ---- random commands -------------------------------------------------------------------- */

enum m_kind { M_K_SCORE, M_K_PLAYER, M_K_GRANT, M_K_CLAIM };

static const char *const m_rboards[M_RBOARDS] = {"cup", "b.best.desc", "weekly.x"};

struct m_pending {
    enum m_kind kind;
    int p, b, key, guild;
    int64_t v, sub;
    int rb, cycle; /* grants and claims */
    /* expectations computed before apply */
    int expect_status, expect_replay, expect_improved;
    int64_t expect_score;
    const struct m_reward *expect_reward; /* the item a 2xx grant or claim answers */
    int64_t expect_claimed_ts;
};

/* A grant of reward (rb, cycle) to player p, the i-th command of the next entry. */
static void m_grant(struct fixture *f, struct m_pending *pd, uint32_t i, struct cmd *c)
{
    struct m_reward *w = &f->rw[pd->p][pd->rb][pd->cycle];
    int64_t rank = 1 + (int64_t)testrng_below(&f->rng, 10);
    int text = (int)testrng_below(&f->rng, 64);
    pd->kind = M_K_GRANT;
    *c = ts_grant(f->ts, m_rboards[pd->rb], pd->cycle, f->ids[pd->p], rank, f->rtext[text]);
    pd->expect_status = w->granted ? 200 : 201; /* a repeat changes nothing */
    if (!w->granted) {
        *w = (struct m_reward){1, rank, text, f->ts, -1, -1, (f->index + 1) * 4096 + i};
    }
    pd->expect_reward = w;
    pd->expect_claimed_ts = w->claimed_ts;
}

/* A claim of reward (rb, cycle) by player p under claim key pd->key. */
static void m_claim(struct fixture *f, struct m_pending *pd, struct cmd *c)
{
    struct m_reward *w = &f->rw[pd->p][pd->rb][pd->cycle];
    struct m_cidem *id = &f->cidem[pd->p][pd->key];
    pd->kind = M_K_CLAIM;
    *c = ts_claim(f->ts, f->ids[pd->p], m_rboards[pd->rb], pd->cycle, f->ckeys[pd->key]);
    pd->expect_reward = w;
    if (id->used && f->ts <= id->first_ts + M_IDEM_TTL) {
        int same = id->rb == pd->rb && id->cycle == pd->cycle;
        pd->expect_status = same ? 200 : 409;
        pd->expect_replay = same;
        pd->expect_claimed_ts = id->resp_claimed_ts;
        return;
    }
    if (!w->granted) {
        pd->expect_status = 404;
        return;
    }
    if (w->claimed_ts >= 0 && w->claim_key != pd->key) {
        pd->expect_status = 409;
        return;
    }
    if (w->claimed_ts < 0) {
        w->claimed_ts = f->ts;
        w->claim_key = pd->key;
    }
    pd->expect_status = 200;
    pd->expect_claimed_ts = w->claimed_ts;
    *id = (struct m_cidem){1, f->ts, pd->rb, pd->cycle, w->claimed_ts};
}

/* A 2xx answer of a grant or claim is the model's item. */
static void m_check_reward_item(struct fixture *f, const struct m_pending *pd,
                                const msgpack_object *o)
{
    const struct m_reward *w = pd->expect_reward;
    char buf[80], t[TIMEFMT_RFC3339_LEN + 1];
    assert_string_equal(ts_str(o, "board_id", buf, sizeof buf), m_rboards[pd->rb]);
    assert_int_equal(ts_i64(o, "cycle"), pd->cycle);
    assert_int_equal(ts_i64(o, "rank"), w->rank);
    assert_string_equal(ts_str(o, "reward", buf, sizeof buf), f->rtext[w->text]);
    timefmt_rfc3339(w->granted_ts, t);
    assert_string_equal(ts_str(o, "granted_at", buf, sizeof buf), t);
    if (pd->expect_claimed_ts < 0) {
        assert_true(ts_is_nil(o, "claimed_at"));
    } else {
        timefmt_rfc3339(pd->expect_claimed_ts, t);
        assert_string_equal(ts_str(o, "claimed_at", buf, sizeof buf), t);
    }
}

static void m_step(struct fixture *f, uint32_t ncmds)
{
    struct cmd cmds[64];
    struct m_pending pend[64];
    f->ts +=
        (int64_t)testrng_below(&f->rng, 3) * (testrng_below(&f->rng, 50) == 0 ? f->jump_ms : 1);
    if (m_slot_of(f->ts) >= M_SLOTS) {
        f->ts = M_T0 + (int64_t)(M_SLOTS - 1) * M_DAY_MS - 1000; /* stay within the last day */
    }
    int slot = m_slot_of(f->ts);
    uint32_t grants = 0;
    for (uint32_t i = 0; i < ncmds; i++) {
        struct m_pending *pd = &pend[i];
        memset(pd, 0, sizeof *pd);
        pd->p = (int)testrng_below(&f->rng, M_PLAYERS);
        if (!f->created[pd->p] || testrng_below(&f->rng, 40) == 0) {
            /* Create the player, or move it to another guild. */
            pd->kind = M_K_PLAYER;
            pd->guild = (int)testrng_below(&f->rng, M_GUILDS);
            for (uint32_t j = 0; j < i; j++) {
                if (pend[j].p == pd->p) {
                    pd->guild = f->guild[pd->p]; /* keep the batch's expectations simple */
                }
            }
            cmds[i] = ts_player(f->ts, f->ids[pd->p], "eu", m_guilds[pd->guild]);
            pd->expect_status = f->created[pd->p] ? 200 : 201;
            f->created[pd->p] = 1;
            f->guild[pd->p] = pd->guild;
            continue;
        }
        uint64_t dice = testrng_below(&f->rng, 20);
        if (dice < 3) {
            pd->rb = (int)testrng_below(&f->rng, M_RBOARDS);
            pd->cycle = (int)testrng_below(&f->rng, M_CYCLES);
            if (dice < 2) {
                m_grant(f, pd, i, &cmds[i]);
                grants += pd->expect_status == 201;
            } else {
                /* Mostly rewards that exist, so claims meet claimed ones and their keys. */
                for (int tries = 0; tries < 3 && !f->rw[pd->p][pd->rb][pd->cycle].granted;
                     tries++) {
                    pd->rb = (int)testrng_below(&f->rng, M_RBOARDS);
                    pd->cycle = (int)testrng_below(&f->rng, M_CYCLES);
                }
                pd->key = (int)testrng_below(&f->rng, M_CKEYS);
                const struct m_cidem *used = &f->cidem[pd->p][pd->key];
                if (used->used && testrng_below(&f->rng, 2) == 0) {
                    pd->rb = used->rb; /* the key's own request again: a replay */
                    pd->cycle = used->cycle;
                }
                m_claim(f, pd, &cmds[i]);
            }
            continue;
        }
        pd->kind = M_K_SCORE;
        pd->b = (int)testrng_below(&f->rng, M_BOARDS);
        pd->v = (int64_t)testrng_below(&f->rng, 12) - (m_boards[pd->b].op >= CMD_OP_INCR ? 4 : 0);
        if (m_boards[pd->b].op >= CMD_OP_INCR && testrng_below(&f->rng, 100) == 0) {
            pd->v = VALID_SCORE_MAX; /* drives some entries out of range */
        }
        pd->sub = (int64_t)testrng_below(&f->rng, 3);
        pd->key = testrng_below(&f->rng, 4) == 0 ? (int)testrng_below(&f->rng, M_KEYS) : -1;
        cmds[i] = ts_score(f->ts, m_boards[pd->b].id, f->ids[pd->p], pd->v, pd->sub,
                           pd->key >= 0 ? f->keys[pd->key] : "");
        struct m_idem *id = pd->key >= 0 ? &f->idem[pd->p][pd->key] : NULL;
        if (id && id->used && f->ts <= id->first_ts + M_IDEM_TTL) {
            int same = id->board == pd->b && id->score == pd->v && id->sub == pd->sub;
            pd->expect_status = same ? 200 : 409;
            pd->expect_replay = same;
            pd->expect_score = id->resp_score;
            pd->expect_improved = id->resp_improved;
            continue;
        }
        /* Fresh request: compute the outcome on every window, all or nothing. */
        int ra = m_score(f, pd->b, 0, pd->p, pd->v, pd->sub, f->ts, 1);
        int rd = m_score(f, pd->b, slot, pd->p, pd->v, pd->sub, f->ts, 1);
        if (ra < 0 || rd < 0) {
            pd->expect_status = 400;
            continue;
        }
        m_score(f, pd->b, 0, pd->p, pd->v, pd->sub, f->ts, 0);
        m_score(f, pd->b, slot, pd->p, pd->v, pd->sub, f->ts, 0);
        m_evict(f, pd->b, slot);
        pd->expect_status = 200;
        pd->expect_score = f->e[pd->b][0][pd->p].score;
        pd->expect_improved = ra;
        if (id) {
            *id = (struct m_idem){1, f->ts, pd->b, pd->v, pd->sub, pd->expect_score, ra};
        }
    }
    ts_apply_free(&f->out);
    ts_apply(f->s, &f->index, cmds, ncmds, &f->out);
    for (uint32_t i = 0; i < ncmds; i++) {
        const struct m_pending *pd = &pend[i];
        const struct ts_result *r = &f->out.res[i];
        if (r->status != pd->expect_status) {
            fail_msg("cmd %u (kind %d player %s board %d v %lld): status %d, model %d", i, pd->kind,
                     f->ids[pd->p], pd->b, (long long)pd->v, r->status, pd->expect_status);
        }
        if (pd->kind == M_K_SCORE && r->status == 200) {
            assert_int_equal(r->replayed, pd->expect_replay);
            assert_int_equal(ts_i64(&r->body.data, "score"), pd->expect_score);
            assert_int_equal(ts_bool(&r->body.data, "improved"), pd->expect_improved);
        }
        if ((pd->kind == M_K_GRANT || pd->kind == M_K_CLAIM) && r->status / 100 == 2) {
            assert_int_equal(r->replayed, pd->expect_replay);
            m_check_reward_item(f, pd, &r->body.data);
        }
    }
    /* One reward.granted per first grant, none for repeats. */
    uint32_t granted = 0;
    for (uint32_t e = 0; e < f->out.nev; e++) {
        char type[32];
        granted +=
            strcmp(ts_str(&f->out.ev[e].data, "type", type, sizeof type), "reward.granted") == 0;
    }
    assert_int_equal(granted, grants);
}

/* ---- comparing every ranking --------------------------------------------------------------- */

static void m_query_base(struct fixture *f, struct shard_query *q, int b, int sl, int guild)
{
    memset(q, 0, sizeof *q);
    q->board_id = ts_s(m_boards[b].id);
    q->window = sl == 0 ? TIMEFMT_ALLTIME : TIMEFMT_DAILY;
    q->has_period = 1;
    q->period = sl == 0 ? 0 : timefmt_period_of(TIMEFMT_DAILY, M_T0, 0) + sl - 1;
    q->guild = ts_s(guild > 0 ? m_guilds[guild] : "");
    q->now_ms = f->qnow;
}

/* 1 if day slot @sl of board @b reads at the reader's clock @now: not below the floor, nor
 * more than keep days before @now's day. */
static int m_readable(const struct fixture *f, int b, int sl, int64_t now)
{
    int by_clock = m_slot_of(now) - m_keep(b);
    return sl == 0 || (sl >= f->floor[b] && sl >= by_clock);
}

/* Every read of an evicted day is not found, with a sentence that says so. */
static void m_check_evicted(struct fixture *f, int b, int sl, int guild)
{
    static const enum shard_qtype types[] = {SHARD_Q_TOP, SHARD_Q_RANK, SHARD_Q_COUNT_BEFORE,
                                             SHARD_Q_FRIENDS, SHARD_Q_NEAR};
    char errmsg[LR_ERRMSG_SIZE];
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        struct shard_query q;
        struct ts_answer u;
        m_query_base(f, &q, b, sl, guild);
        q.type = types[i];
        q.player_id = ts_s(f->ids[0]);
        q.ids[0] = ts_s(f->ids[0]);
        q.nids = 1;
        q.probes[0].player_id = ts_s(f->ids[0]);
        q.nprobes = 1;
        assert_int_equal(ts_query(f->s, &q, &u, errmsg), LR_ENOTFOUND);
        assert_non_null(strstr(errmsg, "evicted"));
    }
}

static void m_check_entry(struct fixture *f, int b, int sl, const msgpack_object *e, int p,
                          int64_t rank)
{
    char buf[80];
    assert_string_equal(ts_str(e, "player_id", buf, sizeof buf), f->ids[p]);
    assert_int_equal(ts_i64(e, "rank"), rank);
    assert_int_equal(ts_i64(e, "score"), f->e[b][sl][p].score);
    assert_int_equal(ts_i64(e, "subscore"), f->e[b][sl][p].sub);
}

static void m_check_ranking(struct fixture *f, int b, int sl, int guild)
{
    int order[M_PLAYERS];
    int n = m_sorted(f, b, sl, guild > 0 ? guild : -1, order);
    struct shard_query q;
    struct ts_answer u;
    char errmsg[LR_ERRMSG_SIZE], cursor[128];
    int seen = 0;

    /* The reader's clock: mostly now, else any time since the start, so the floor alone
     * decides as often as the clock does. */
    f->qnow = testrng_below(&f->rng, 2)
                  ? f->ts
                  : M_T0 + (int64_t)testrng_below(&f->rng, (uint64_t)(f->ts - M_T0) + 1);
    if (!m_readable(f, b, sl, f->qnow)) {
        m_check_evicted(f, b, sl, guild);
        return;
    }

    /* Walk every page by cursor. */
    m_query_base(f, &q, b, sl, guild);
    q.type = SHARD_Q_TOP;
    q.limit = 1 + (uint32_t)testrng_below(&f->rng, 9);
    for (;;) {
        if (ts_query(f->s, &q, &u, errmsg) != 0) {
            fail_msg("top: %s", errmsg);
        }
        const msgpack_object *ents = ts_get(&u.data, "entries");
        assert_int_equal(ts_i64(&u.data, "total"), n);
        assert_int_equal(ts_i64(&u.data, "offset"), seen);
        for (uint32_t i = 0; i < ents->via.array.size; i++, seen++) {
            assert_true(seen < n);
            m_check_entry(f, b, sl, &ents->via.array.ptr[i], order[seen], seen + 1);
        }
        if (ts_is_nil(&u.data, "next_cursor")) {
            ts_answer_free(&u);
            break;
        }
        ts_str(&u.data, "next_cursor", cursor, sizeof cursor);
        q.cursor = ts_s(cursor);
        ts_answer_free(&u);
    }
    assert_int_equal(seen, n);

    /* Rank and around for a few players, present or not. */
    for (int k = 0; k < 4; k++) {
        int p = (int)testrng_below(&f->rng, M_PLAYERS);
        int pos = -1;
        for (int i = 0; i < n; i++) {
            pos = order[i] == p ? i : pos;
        }
        m_query_base(f, &q, b, sl, guild);
        q.type = SHARD_Q_RANK;
        q.player_id = ts_s(f->ids[p]);
        q.around = (uint32_t)testrng_below(&f->rng, 4);
        int rv = ts_query(f->s, &q, &u, errmsg);
        if (pos < 0) {
            assert_int_equal(rv, LR_ENOTFOUND);
            ts_answer_free(&u);
            continue;
        }
        assert_int_equal(rv, 0);
        assert_int_equal(ts_i64(&u.data, "rank"), pos + 1);
        assert_int_equal(ts_i64(&u.data, "total"), n);
        const msgpack_object *ar = ts_get(&u.data, "around");
        int from = pos - (int)q.around < 0 ? 0 : pos - (int)q.around;
        int to = pos + (int)q.around >= n ? n - 1 : pos + (int)q.around;
        assert_int_equal(ar->via.array.size, to - from + 1);
        for (int i = from; i <= to; i++) {
            m_check_entry(f, b, sl, &ar->via.array.ptr[i - from], order[i], i + 1);
        }
        ts_answer_free(&u);
    }

    /* Count before arbitrary probes, including ids this region does not know. */
    m_query_base(f, &q, b, sl, guild);
    q.type = SHARD_Q_COUNT_BEFORE;
    char pid[8][16];
    q.nprobes = 8;
    for (uint32_t k = 0; k < q.nprobes; k++) {
        int src = (int)testrng_below(&f->rng, M_PLAYERS);
        snprintf(pid[k], sizeof pid[k], "%s%s", f->ids[src], k % 2 ? "" : "x");
        q.probes[k].player_id = ts_s(pid[k]);
        q.probes[k].score = (int64_t)testrng_below(&f->rng, 16) - 4;
        q.probes[k].subscore = (int64_t)testrng_below(&f->rng, 3);
        q.probes[k].updated_ms = f->ts - (int64_t)testrng_below(&f->rng, 50);
    }
    assert_int_equal(ts_query(f->s, &q, &u, errmsg), 0);
    const msgpack_object *counts = ts_get(&u.data, "counts");
    for (uint32_t k = 0; k < q.nprobes; k++) {
        int64_t expect = 0;
        for (int i = 0; i < n; i++) {
            const struct m_entry *e = &f->e[b][sl][order[i]];
            expect += m_keycmp(b, e->score, e->sub, e->t, f->ids[order[i]], q.probes[k].score,
                               q.probes[k].subscore, q.probes[k].updated_ms, pid[k]) < 0;
        }
        assert_int_equal((int64_t)counts->via.array.ptr[k].via.u64, expect);
    }
    ts_answer_free(&u);

    /* Friends: a random set, answered in rank order with exact ranks. */
    m_query_base(f, &q, b, sl, guild);
    q.type = SHARD_Q_FRIENDS;
    q.nids = 6;
    int want[M_PLAYERS] = {0};
    for (uint32_t k = 0; k < q.nids; k++) {
        int p = (int)testrng_below(&f->rng, M_PLAYERS);
        q.ids[k] = ts_s(f->ids[p]);
        want[p] = 1;
    }
    assert_int_equal(ts_query(f->s, &q, &u, errmsg), 0);
    const msgpack_object *fe = ts_get(&u.data, "entries");
    uint32_t j = 0;
    for (int i = 0; i < n; i++) {
        if (want[order[i]]) {
            assert_true(j < fe->via.array.size);
            m_check_entry(f, b, sl, &fe->via.array.ptr[j++], order[i], i + 1);
        }
    }
    assert_int_equal(j, fe->via.array.size);
    ts_answer_free(&u);
}

/* Order of the model's rewards in a list: newest grant first. */
static int m_reward_cmp(const void *x, const void *y)
{
    uint64_t a = (*(const struct m_reward *const *)x)->seq;
    uint64_t b = (*(const struct m_reward *const *)y)->seq;
    return a < b ? 1 : a > b ? -1 : 0;
}

/* Player @p's rewards (all, or pending only) walked page by page equal the model's. */
static void m_check_rewards(struct fixture *f, int p, int pending)
{
    const struct m_reward *want[M_RBOARDS * M_CYCLES];
    int rbof[M_RBOARDS * M_CYCLES], cyof[M_RBOARDS * M_CYCLES];
    size_t n = 0;
    for (int rb = 0; rb < M_RBOARDS; rb++) {
        for (int cy = 0; cy < M_CYCLES; cy++) {
            const struct m_reward *w = &f->rw[p][rb][cy];
            if (w->granted && !(pending && w->claimed_ts >= 0)) {
                want[n++] = w;
            }
        }
    }
    qsort(want, n, sizeof want[0], m_reward_cmp);
    for (size_t i = 0; i < n; i++) {
        size_t off = (size_t)(want[i] - &f->rw[p][0][0]);
        rbof[i] = (int)(off / M_CYCLES);
        cyof[i] = (int)(off % M_CYCLES);
    }
    struct shard_query q = {.type = SHARD_Q_REWARDS,
                            .player_id = ts_s(f->ids[p]),
                            .pending = pending,
                            .limit = 1 + (uint32_t)testrng_below(&f->rng, 5)};
    struct ts_answer u;
    char errmsg[LR_ERRMSG_SIZE], cursor[128];
    size_t seen = 0;
    for (;;) {
        if (ts_query(f->s, &q, &u, errmsg) != 0) {
            fail_msg("rewards: %s", errmsg);
        }
        const msgpack_object *items = ts_get(&u.data, "items");
        assert_true(items->via.array.size <= q.limit);
        for (uint32_t i = 0; i < items->via.array.size; i++, seen++) {
            assert_true(seen < n);
            struct m_pending pd = {.rb = rbof[seen],
                                   .cycle = cyof[seen],
                                   .expect_reward = want[seen],
                                   .expect_claimed_ts = want[seen]->claimed_ts};
            m_check_reward_item(f, &pd, &items->via.array.ptr[i]);
        }
        if (ts_is_nil(&u.data, "next_cursor")) {
            ts_answer_free(&u);
            break;
        }
        ts_str(&u.data, "next_cursor", cursor, sizeof cursor);
        q.cursor = ts_s(cursor);
        ts_answer_free(&u);
    }
    assert_int_equal(seen, n);
}

/* The rankings in memory are the model's: every day not wholly evicted, with its entries
 * less those evicted. */
static void m_check_memory(struct fixture *f)
{
    for (int b = 0; b < M_BOARDS; b++) {
        int64_t periods[M_SLOTS];
        uint64_t counts[M_SLOTS];
        size_t n =
            shard_periods(f->s, ts_s(m_boards[b].id), TIMEFMT_DAILY, periods, counts, M_SLOTS);
        size_t j = 0;
        for (int sl = 1; sl < M_SLOTS; sl++) {
            int left = m_present(f, b, sl) - f->gone[b][sl];
            if (left == 0) {
                continue;
            }
            assert_true(j < n);
            assert_int_equal(periods[j], timefmt_period_of(TIMEFMT_DAILY, M_T0, 0) + sl - 1);
            assert_int_equal(counts[j], left);
            j++;
        }
        assert_int_equal(j, n);
        n = shard_periods(f->s, ts_s(m_boards[b].id), TIMEFMT_ALLTIME, periods, counts, M_SLOTS);
        assert_int_equal(n, m_present(f, b, 0) > 0);
        if (n) {
            assert_int_equal(counts[0], m_present(f, b, 0));
        }
    }
}

static void m_check_all(struct fixture *f)
{
    for (int p = 0; p < M_PLAYERS; p++) {
        if (f->created[p]) {
            m_check_rewards(f, p, 0);
            m_check_rewards(f, p, 1);
        }
    }
    for (int b = 0; b < M_BOARDS; b++) {
        for (int sl = 0; sl < M_SLOTS; sl++) {
            for (int g = 0; g < M_GUILDS; g++) {
                m_check_ranking(f, b, sl, g);
            }
        }
    }
}

/* Random traffic agrees with the model in every ranking, across a close and reopen. */
static void model_random_traffic_matches_reference(void **state)
{
    struct fixture *f = *state;
    for (int b = 0; b < M_BOARDS; b++) {
        struct cmd c = ts_board(f->ts, m_boards[b].id, m_boards[b].order, m_boards[b].op,
                                1u << TIMEFMT_ALLTIME | 1u << TIMEFMT_DAILY, 0);
        c.u.board_put.keep_periods = m_boards[b].keep;
        assert_int_equal(ts_apply1(f->s, &f->index, c), 201);
    }
    const int steps = getenv("LAUREL_MODEL_STEPS") ? atoi(getenv("LAUREL_MODEL_STEPS")) : 1500;
    /* One step in 50 jumps by 0, 1 or 2 jumps: about six days over the run. */
    f->jump_ms = 6 * M_DAY_MS * 50 / (steps > 0 ? steps : 1);
    for (int step = 1; step <= steps; step++) {
        m_step(f, 1 + (uint32_t)testrng_below(&f->rng, 16));
        m_check_memory(f); /* cheap: every step, so days caught half evicted are checked too */
        if (step % 100 == 0) {
            m_check_all(f);
        }
        if (step == steps / 2) {
            uint64_t before = shard_digest(f->s), scanned;
            assert_int_equal(shard_digest_scan(f->s, &scanned), 0);
            assert_true(before == scanned);
            shard_close(f->s);
            m_open(f);
            assert_true(shard_digest(f->s) == before);
            assert_int_equal(shard_applied_index(f->s), f->index);
            m_check_all(f);
        }
    }
    uint64_t scanned;
    assert_int_equal(shard_digest_scan(f->s, &scanned), 0);
    assert_true(shard_digest(f->s) == scanned);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(model_random_traffic_matches_reference, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
