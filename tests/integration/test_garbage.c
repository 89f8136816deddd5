/* tests/integration/test_garbage.c — random and mutated bytes into every decoder, and into the
 * real shard.
 *
 * Nothing read from the network or the disk may crash laurel or make replicas diverge
 * (STYLE.md 12). Every decoder gets random buffers, structured random msgpack, and mutations
 * (bit flips, truncation, insertions, deletions, splices) of valid input, each copied into a
 * buffer of exactly its size so that ASan sees any read past the end. Decoders must answer 0 or
 * one of the LR_E* codes their header documents, and whatever they accept must be the value it
 * claims to be (it re-encodes to the same thing). The shard applies the mutated entries at
 * increasing indexes and must stay consistent: its running digest equals a full scan, and a
 * reopen gives back the same digest and applied index; a second replica applying the same
 * entries with different group commits reaches the same digest.
 *
 * $LAUREL_SEED replays a run; $LAUREL_GARBAGE_PCT scales the iteration counts (default 100). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/cmd.h"
#include "shard/cursor.h"
#include "lib/err.h"
#include "shard/mp.h"
#include "shard/shard.h"
#include "shard/timefmt.h"
#include "tests/lib/testlib.h"

#define TS0 1795350660123LL
#define TS_MAX 253402300799999LL
#define N_RANDOM 200000
#define N_MUTATED 100000
#define N_STRINGS 200000
#define N_MP 200000
#define GROUP 1000 /* entries per group commit on the first replica */

/* Group state: the seed and the scale, read once per run. */
struct group {
    uint64_t seed;
    unsigned pct;
};

static int group_setup(void **state)
{
    struct group *g = calloc(1, sizeof *g);
    assert_non_null(g);
    g->seed = testlib_seed(0x6a7bae);
    const char *p = getenv("LAUREL_GARBAGE_PCT");
    g->pct = p ? (unsigned)strtoul(p, NULL, 10) : 100;
    if (g->pct == 0) {
        g->pct = 1;
    }
    *state = g;
    return 0;
}

static int group_teardown(void **state)
{
    free(*state);
    return 0;
}

/* A byte buffer owned by the test. */
struct buf {
    char *p;
    size_t n, cap;
};

#define NSEEDS 16

struct fixture {
    struct group *g;
    struct testrng rng;
    msgpack_sbuffer sb; /* scratch for encoding */
    msgpack_packer pk;
    struct buf seeds[NSEEDS]; /* valid encoded entries */
    uint32_t nseeds;
    struct buf m; /* the current mutation */
    int64_t clock; /* ts of the last random command */
    /* What the decoders answered, so the test can check it reached deep code. */
    uint64_t entries_ok, entries_bad, cmds_ok, cmds_bad;
};

static uint64_t scaled(const struct fixture *f, uint64_t n)
{
    uint64_t v = n * f->g->pct / 100;
    return v ? v : 1;
}

static void buf_set(struct buf *b, const void *p, size_t n)
{
    if (n + 16 > b->cap) {
        b->cap = 2 * (n + 16);
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p, p, n);
    b->n = n;
}

static struct lr_str S(const char *s)
{
    struct lr_str r = {s, (uint32_t)strlen(s)};
    return r;
}

/* ---- valid seed entries ----------------------------------------------------------------- */

static struct cmd c_player(const char *id, const char *name, const char *guild)
{
    struct cmd c = {.type = CMD_PLAYER_PUT};
    c.u.player_put = (struct cmd_player_put){S(id), S(name), S("eu"), S(guild)};
    return c;
}

static struct cmd c_game(const char *id, const char *name)
{
    struct cmd c = {.type = CMD_GAME_PUT};
    c.u.game_put = (struct cmd_game_put){S(id), S(name), 0};
    return c;
}

static struct cmd c_ach(const char *game, const char *ach, int64_t points, int hidden,
                        int64_t steps)
{
    struct cmd c = {.type = CMD_ACH_PUT};
    c.u.ach_put = (struct cmd_ach_put){S(game), S(ach), S("First"), S("Do it"),
                                       points, hidden, steps, 0};
    return c;
}

static struct cmd c_board(const char *id, int64_t order, int64_t op, int64_t windows,
                          int64_t reset_s, const char *game)
{
    struct cmd c = {.type = CMD_BOARD_PUT};
    c.u.board_put.board_id = S(id);
    c.u.board_put.order = order;
    c.u.board_put.op = op;
    c.u.board_put.windows = windows;
    c.u.board_put.reset_period_s = reset_s;
    c.u.board_put.snapshot_top = 10;
    c.u.board_put.rewards.n = 0;
    c.u.board_put.game_id = S(game);
    if (reset_s) {
        c.u.board_put.rewards.n = 2;
        c.u.board_put.rewards.items[0] = (struct cmd_prize){1, 1, S("gold")};
        c.u.board_put.rewards.items[1] = (struct cmd_prize){2, 10, S("silver")};
    }
    return c;
}

static struct cmd c_score(const char *board, const char *player, int64_t score,
                          int64_t subscore, const char *meta, const char *idem)
{
    struct cmd c = {.type = CMD_SCORE};
    c.u.score = (struct cmd_score){S(board), S(player), score, subscore, S(meta), S(idem)};
    return c;
}

static struct cmd c_unlock(const char *player, const char *game, const char *ach, int64_t steps,
                           const char *idem)
{
    struct cmd c = {.type = CMD_UNLOCK};
    c.u.unlock = (struct cmd_unlock){S(player), S(game), S(ach), steps, S(idem)};
    return c;
}

static struct cmd c_tournament(const char *id)
{
    struct cmd c = {.type = CMD_TOURNAMENT_PUT};
    c.u.tournament_put.tournament_id = S(id);
    c.u.tournament_put.name = S("Cup");
    c.u.tournament_put.order = CMD_ORDER_DESC;
    c.u.tournament_put.op = CMD_OP_BEST;
    c.u.tournament_put.start_ms = 0;
    c.u.tournament_put.end_ms = TS_MAX;
    c.u.tournament_put.max_participants = 10;
    c.u.tournament_put.max_attempts = 3;
    c.u.tournament_put.prizes.n = 1;
    c.u.tournament_put.prizes.items[0] = (struct cmd_prize){1, 3, S("trophy")};
    return c;
}

static struct cmd c_join(const char *tournament, const char *player, const char *idem)
{
    struct cmd c = {.type = CMD_TOURNAMENT_JOIN};
    c.u.tournament_join = (struct cmd_tournament_join){S(tournament), S(player), S(idem)};
    return c;
}

static void add_seed(struct fixture *f, struct cmd *cmds, uint32_t n)
{
    assert_true(f->nseeds < NSEEDS);
    msgpack_sbuffer_clear(&f->sb);
    assert_int_equal(cmd_entry_begin(&f->pk, n), 0);
    for (uint32_t i = 0; i < n; i++) {
        cmds[i].ts = TS0 + 1000 * (int64_t)f->nseeds + i;
        assert_int_equal(cmd_encode(&f->pk, &cmds[i]), 0);
    }
    buf_set(&f->seeds[f->nseeds++], f->sb.data, f->sb.size);
}

/* The valid entries every mutation starts from: each command type, and a few together. */
static void make_seeds(struct fixture *f)
{
    struct cmd c[4];
    c[0] = c_player("p1", "Ann", "");
    add_seed(f, c, 1);
    c[0] = c_player("p2", "B\xc3\xb6" "b", "g1");
    add_seed(f, c, 1);
    c[0] = c_game("g1", "Game");
    add_seed(f, c, 1);
    c[0] = c_ach("g1", "a1", 10, 0, 1);
    add_seed(f, c, 1);
    c[0] = c_ach("g1", "a2", 5, 1, 3);
    add_seed(f, c, 1);
    c[0] = c_board("b1", CMD_ORDER_DESC, CMD_OP_BEST, 1, 0, "");
    add_seed(f, c, 1);
    c[0] = c_board("b2", CMD_ORDER_ASC, CMD_OP_INCR, 15, 3600, "g1");
    add_seed(f, c, 1);
    c[0] = c_score("b1", "p1", 10, 0, "", "key-0001");
    add_seed(f, c, 1);
    c[0] = c_score("b2", "p2", -5, 3, "{\"a\":1}", "key-0002");
    add_seed(f, c, 1);
    c[0] = c_unlock("p1", "g1", "a1", 0, "unl-0001");
    add_seed(f, c, 1);
    c[0] = c_unlock("p2", "g1", "a2", 1, "unl-0002");
    add_seed(f, c, 1);
    c[0] = c_tournament("t1");
    add_seed(f, c, 1);
    c[0] = c_join("t1", "p1", "join-0001");
    add_seed(f, c, 1);
    c[0] = c_player("p3", "Cy", "g1");
    c[1] = c_score("b1", "p3", 20, 1, "", "");
    c[2] = c_score("b2", "p3", 7, 0, "{}", "key-0003");
    c[3] = c_unlock("p3", "g1", "a2", 2, "");
    add_seed(f, c, 4);
    c[0] = c_score("b1", "p2", 9007199254740991LL, -9007199254740991LL, "", "key-0004");
    c[1] = c_score("b2", "p1", 3, 0, "", "key-0005");
    add_seed(f, c, 2);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->g = *state;
    f->rng.s = f->g->seed;
    f->clock = TS0;
    msgpack_sbuffer_init(&f->sb);
    msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
    make_seeds(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    struct group *g = f->g;
    for (uint32_t i = 0; i < f->nseeds; i++) {
        free(f->seeds[i].p);
    }
    free(f->m.p);
    msgpack_sbuffer_destroy(&f->sb);
    free(f);
    *state = g;
    return 0;
}

/* ---- generators ------------------------------------------------------------------------- */

static const unsigned char interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xc1, 0xc2,
                                            0xc3, 0xcc, 0xcf, 0xd0, 0xd3, 0xd9, 0xdb, 0xdc,
                                            0xdd, 0xde, 0xdf, 0x90, 0x9f, 0xa0, 0xbf, 0xe0};

/* Replace f->m with a mutation of a random seed: 1 to 4 edits. */
static void mutate(struct fixture *f)
{
    const struct buf *seed = &f->seeds[testrng_below(&f->rng, f->nseeds)];
    struct buf *m = &f->m;
    buf_set(m, seed->p, seed->n);
    int edits = 1 + (int)testrng_below(&f->rng, 4);
    for (int e = 0; e < edits; e++) {
        size_t at = m->n ? testrng_below(&f->rng, m->n) : 0;
        switch (testrng_below(&f->rng, 7)) {
        case 0: /* flip a bit */
        case 1:
            if (m->n) {
                m->p[at] ^= (char)(1u << testrng_below(&f->rng, 8));
            }
            break;
        case 2: /* overwrite a byte, often with one that changes msgpack's framing */
            if (m->n) {
                m->p[at] = (char)(testrng_below(&f->rng, 2)
                                      ? interesting[testrng_below(&f->rng, sizeof interesting)]
                                      : testrng_next(&f->rng));
            }
            break;
        case 3: /* truncate */
            m->n = at;
            break;
        case 4: { /* insert 1..8 bytes */
            size_t k = 1 + testrng_below(&f->rng, 8);
            if (m->n + k + 16 > m->cap) {
                m->cap = 2 * (m->n + k + 16);
                m->p = realloc(m->p, m->cap);
                assert_non_null(m->p);
            }
            memmove(m->p + at + k, m->p + at, m->n - at);
            for (size_t i = 0; i < k; i++) {
                m->p[at + i] = (char)testrng_next(&f->rng);
            }
            m->n += k;
            break;
        }
        case 5: { /* delete 1..4 bytes */
            size_t k = 1 + testrng_below(&f->rng, 4);
            if (at + k > m->n) {
                k = m->n - at;
            }
            memmove(m->p + at, m->p + at + k, m->n - at - k);
            m->n -= k;
            break;
        }
        default: { /* copy a slice of the entry over another place */
            if (m->n < 2) {
                break;
            }
            size_t from = testrng_below(&f->rng, m->n);
            size_t k = 1 + testrng_below(&f->rng, m->n - (from > at ? from : at));
            memmove(m->p + at, m->p + from, k);
            break;
        }
        }
    }
}

/* A random msgpack value of any type, nested up to @depth. */
static void pack_random(struct fixture *f, int depth)
{
    msgpack_packer *pk = &f->pk;
    char s[80];
    switch (testrng_below(&f->rng, depth > 0 ? 12 : 9)) {
    case 0:
        msgpack_pack_int64(pk, (int64_t)testrng_below(&f->rng, 200) - 100);
        break;
    case 1:
        msgpack_pack_int64(pk, (int64_t)testrng_next(&f->rng));
        break;
    case 2:
        msgpack_pack_uint64(pk, testrng_next(&f->rng));
        break;
    case 3: { /* an id-like string */
        size_t n = testrng_below(&f->rng, 70);
        for (size_t i = 0; i < n; i++) {
            s[i] = "ab1_.-p"[testrng_below(&f->rng, 7)];
        }
        msgpack_pack_str_with_body(pk, s, n);
        break;
    }
    case 4: { /* random bytes as str or bin */
        size_t n = testrng_below(&f->rng, sizeof s);
        for (size_t i = 0; i < n; i++) {
            s[i] = (char)testrng_next(&f->rng);
        }
        if (testrng_below(&f->rng, 2)) {
            msgpack_pack_str_with_body(pk, s, n);
        } else {
            msgpack_pack_bin_with_body(pk, s, n);
        }
        break;
    }
    case 5:
        msgpack_pack_nil(pk);
        break;
    case 6:
        testrng_below(&f->rng, 2) ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case 7:
        msgpack_pack_double(pk, (double)(int64_t)testrng_next(&f->rng) / 3.0);
        break;
    case 8:
        msgpack_pack_ext_with_body(pk, "abcd", 4, 1);
        break;
    case 9:
    case 10: {
        uint32_t n = (uint32_t)testrng_below(&f->rng, 6);
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++) {
            pack_random(f, depth - 1);
        }
        break;
    }
    default: {
        uint32_t n = (uint32_t)testrng_below(&f->rng, 4);
        msgpack_pack_map(pk, n);
        for (uint32_t i = 0; i < 2 * n; i++) {
            pack_random(f, depth - 1);
        }
        break;
    }
    }
}

/* One of a few names, so random commands meet each other's state. */
static const char *pick(struct fixture *f, const char *const *names, uint64_t n)
{
    return names[testrng_below(&f->rng, n)];
}
#define PICK(f, arr) pick(f, arr, sizeof arr / sizeof arr[0])

static int64_t pick_i64(struct fixture *f, int64_t lo, int64_t hi)
{
    return lo + (int64_t)testrng_below(&f->rng, (uint64_t)(hi - lo) + 1);
}

/* A random command that decodes (mostly) but whose meaning is random: ids from small pools,
 * any operator and window, scores up to the limits, re-puts of boards that hold scores,
 * idempotency keys reused across requests, and a clock that sometimes jumps back. */
static struct cmd random_command(struct fixture *f, int64_t *clock)
{
    static const char *const players[] = {"p1", "p2", "p3", "p4", "p5", "p6"};
    static const char *const guilds[] = {"", "g1", "g2"};
    static const char *const regions[] = {"eu", "eu", "eu", "na"};
    static const char *const games[] = {"g1", "g2"};
    static const char *const optgames[] = {"", "g1", "g2"};
    static const char *const achs[] = {"a1", "a2", "a3"};
    static const char *const boards[] = {"b1", "b2", "b3", "b4"};
    static const char *const tours[] = {"t1", "t2"};
    static const char *const keys[] = {"", "key-0001", "key-0002", "key-0003", "key-0004"};
    static const char *const metas[] = {"", "{}", "{\"a\":1}"};
    static const char *const names[] = {"Ann", "B\xc3\xb6" "b", "\xf0\x9f\x98\x80", "x"};
    static const char *const rewards[] = {"gold", "silver", "r"};
    static const int64_t resets[] = {0, 0, 60, 86400, 604800};
    static const int64_t big[] = {0, 1, -1, 9007199254740991LL, -9007199254740991LL,
                                  4503599627370496LL};
    struct cmd c;
    memset(&c, 0, sizeof c);
    /* Mostly seconds apart; now and then a day or two later, or an hour back. Periods pile
     * up with simulated time (every past period keeps its ranking), so time moves slowly. */
    uint64_t jump = testrng_below(&f->rng, 2000);
    *clock += jump < 20  ? -(int64_t)testrng_below(&f->rng, 3600000)
              : jump < 21 ? (int64_t)testrng_below(&f->rng, 2 * 86400000ULL)
                          : (int64_t)testrng_below(&f->rng, 10000);
    if (*clock < 0) {
        *clock = 0;
    }
    c.ts = *clock;
    switch (testrng_below(&f->rng, 10)) {
    case 0:
        c.type = CMD_PLAYER_PUT;
        c.u.player_put = (struct cmd_player_put){S(PICK(f, players)), S(PICK(f, names)),
                                                 S(PICK(f, regions)), S(PICK(f, guilds))};
        break;
    case 1:
        c.type = CMD_GAME_PUT;
        c.u.game_put = (struct cmd_game_put){S(PICK(f, games)), S(PICK(f, names)), 0};
        break;
    case 2:
        c = c_ach(PICK(f, games), PICK(f, achs), pick_i64(f, 0, 100),
                  (int)testrng_below(&f->rng, 2), pick_i64(f, 1, 5));
        c.ts = *clock;
        break;
    case 3: {
        c = c_board(PICK(f, boards), pick_i64(f, 0, 1), pick_i64(f, 0, 3), pick_i64(f, 1, 15),
                    resets[testrng_below(&f->rng, 5)], PICK(f, optgames));
        c.ts = *clock;
        c.u.board_put.snapshot_top = pick_i64(f, 0, 20);
        c.u.board_put.rewards.n = (uint32_t)testrng_below(&f->rng, 4);
        for (uint32_t i = 0; i < c.u.board_put.rewards.n; i++) {
            int64_t from = pick_i64(f, 1, 5);
            c.u.board_put.rewards.items[i] =
                (struct cmd_prize){from, from + pick_i64(f, 0, 3), S(PICK(f, rewards))};
        }
        break;
    }
    case 4:
        c = c_tournament(PICK(f, tours));
        c.ts = *clock;
        c.u.tournament_put.order = pick_i64(f, 0, 1);
        c.u.tournament_put.op = pick_i64(f, 0, 3);
        c.u.tournament_put.start_ms = *clock - pick_i64(f, -3600000, 3600000);
        c.u.tournament_put.end_ms = c.u.tournament_put.start_ms + pick_i64(f, -1000, 86400000);
        if (c.u.tournament_put.start_ms < 0) {
            c.u.tournament_put.start_ms = 0;
        }
        if (c.u.tournament_put.end_ms < 0) {
            c.u.tournament_put.end_ms = 0;
        }
        c.u.tournament_put.max_participants = pick_i64(f, 0, 3);
        c.u.tournament_put.max_attempts = pick_i64(f, 0, 3);
        break;
    case 5:
        c.type = CMD_TOURNAMENT_JOIN;
        c.u.tournament_join = (struct cmd_tournament_join){S(PICK(f, tours)), S(PICK(f, players)),
                                                           S(PICK(f, keys))};
        break;
    case 6:
        c = c_unlock(PICK(f, players), PICK(f, games), PICK(f, achs), pick_i64(f, 0, 3),
                     PICK(f, keys));
        c.ts = *clock;
        break;
    default: {
        int64_t score = testrng_below(&f->rng, 4) ? pick_i64(f, -50, 50)
                                                  : big[testrng_below(&f->rng, 6)];
        c = c_score(PICK(f, boards), PICK(f, players), score, pick_i64(f, -2, 2),
                    PICK(f, metas), PICK(f, keys));
        c.ts = *clock;
        if (testrng_below(&f->rng, 2)) { /* tournament boards take scores too */
            c.u.score.board_id = S(PICK(f, tours));
        }
        break;
    }
    }
    return c;
}

/* An entry of 1..4 random commands into f->m. */
static void random_valid_entry(struct fixture *f, int64_t *clock)
{
    struct cmd cmds[4];
    uint32_t n = 1 + (uint32_t)testrng_below(&f->rng, 4);
    for (uint32_t i = 0; i < n; i++) {
        cmds[i] = random_command(f, clock);
    }
    msgpack_sbuffer_clear(&f->sb);
    assert_int_equal(cmd_entry_begin(&f->pk, n), 0);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(cmd_encode(&f->pk, &cmds[i]), 0);
    }
    buf_set(&f->m, f->sb.data, f->sb.size);
}

/* A random entry: either framed [1, [[code, ts, random fields...]...]] or anything at all. */
static void random_entry(struct fixture *f)
{
    msgpack_sbuffer_clear(&f->sb);
    uint64_t kind = testrng_below(&f->rng, 5);
    if (kind == 0) { /* raw bytes */
        size_t n = testrng_below(&f->rng, 128);
        for (size_t i = 0; i < n; i++) {
            char c = (char)testrng_next(&f->rng);
            msgpack_sbuffer_write(&f->sb, &c, 1);
        }
    } else if (kind == 1) { /* a good envelope prefix, then raw bytes */
        msgpack_pack_array(&f->pk, 2);
        msgpack_pack_int64(&f->pk, CMD_ENTRY_VERSION);
        size_t n = testrng_below(&f->rng, 96);
        for (size_t i = 0; i < n; i++) {
            char c = (char)(testrng_below(&f->rng, 3) ? testrng_next(&f->rng)
                                                      : interesting[testrng_below(
                                                            &f->rng, sizeof interesting)]);
            msgpack_sbuffer_write(&f->sb, &c, 1);
        }
    } else if (kind == 2) { /* any msgpack value */
        pack_random(f, 4);
    } else if (kind == 3) { /* well-formed commands of random meaning */
        random_valid_entry(f, &f->clock);
        msgpack_sbuffer_clear(&f->sb);
        msgpack_sbuffer_write(&f->sb, f->m.p, f->m.n);
    } else { /* well-framed commands of random fields */
        uint32_t n = (uint32_t)testrng_below(&f->rng, 4);
        msgpack_pack_array(&f->pk, 2);
        msgpack_pack_int64(&f->pk, testrng_below(&f->rng, 16) ? CMD_ENTRY_VERSION : 2);
        msgpack_pack_array(&f->pk, n);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t nf = (uint32_t)testrng_below(&f->rng, 11);
            msgpack_pack_array(&f->pk, nf);
            for (uint32_t j = 0; j < nf; j++) {
                if (j == 0 && testrng_below(&f->rng, 8)) {
                    msgpack_pack_int64(&f->pk, (int64_t)testrng_below(&f->rng, 10));
                } else if (j == 1 && testrng_below(&f->rng, 8)) {
                    msgpack_pack_int64(&f->pk, (int64_t)testrng_below(&f->rng, (uint64_t)TS_MAX));
                } else {
                    pack_random(f, 2);
                }
            }
        }
    }
}

/* ---- checking decoders ------------------------------------------------------------------ */

/* An accepted command re-encodes to one that decodes to the same request. */
static void check_accepted(struct fixture *f, const struct cmd *c)
{
    assert_non_null(cmd_name(c->type));
    assert_true(c->ts >= 0 && c->ts <= TS_MAX);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(cmd_entry_begin(&pk, 1), 0);
    assert_int_equal(cmd_encode(&pk, c), 0);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    struct cmd_entry e;
    struct cmd d;
    char msg[LR_ERRMSG_SIZE];
    assert_int_equal(cmd_entry_decode(sb.data, sb.size, &up, &e, msg), 0);
    assert_int_equal(e.n, 1);
    assert_int_equal(cmd_decode(&e.cmds[0], &d, msg), 0);
    assert_int_equal(d.type, c->type);
    assert_int_equal(d.ts, c->ts);
    assert_int_equal(cmd_request_hash(&d), cmd_request_hash(c));
    struct lr_str p1, k1, p2, k2;
    cmd_idem(c, &p1, &k1);
    cmd_idem(&d, &p2, &k2);
    assert_int_equal(k1.len, k2.len);
    assert_memory_equal(k1.p, k2.p, k1.len);
    assert_int_equal(p1.len, p2.len);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    (void)f;
}

/* Decode @buf (copied to an exact-size allocation) as an entry and each of its commands.
 * Returns the number of commands the envelope holds (0 if refused). */
static uint32_t decode_check(struct fixture *f, const char *buf, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, buf, len);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    struct cmd_entry e;
    char msg[LR_ERRMSG_SIZE];
    msg[0] = '\0';
    int rv = cmd_entry_decode(p, len, &up, &e, msg);
    uint32_t n = 0;
    if (rv != 0) {
        if (rv != LR_EMALFORMED && rv != LR_EVERSION && rv != LR_ETOOBIG) {
            fail_msg("cmd_entry_decode returned %d (%s)", rv, msg);
        }
        assert_true(strncmp(msg, "entry: ", 7) == 0);
        f->entries_bad++;
    } else {
        f->entries_ok++;
        n = e.n;
        for (uint32_t i = 0; i < e.n; i++) {
            struct cmd c;
            msg[0] = '\0';
            rv = cmd_decode(&e.cmds[i], &c, msg);
            if (rv == 0) {
                f->cmds_ok++;
                check_accepted(f, &c);
            } else {
                if (rv != LR_EMALFORMED && rv != LR_EINVAL && rv != LR_EVERSION) {
                    fail_msg("cmd_decode returned %d (%s)", rv, msg);
                }
                assert_true(strlen(msg) > 0);
                f->cmds_bad++;
            }
        }
    }
    msgpack_unpacked_destroy(&up);
    free(p);
    return n;
}

/* Random buffers into the entry and command decoders: an LR_E* code or success, never a crash. */
static void random_buffers_into_decoders(void **state)
{
    struct fixture *f = *state;
    f->rng.s ^= 0xa;
    uint64_t n = scaled(f, N_RANDOM);
    for (uint64_t i = 0; i < n; i++) {
        random_entry(f);
        decode_check(f, f->sb.data, f->sb.size);
    }
    fprintf(stderr, "# random: entries %llu ok %llu refused; commands %llu ok %llu refused\n",
            (unsigned long long)f->entries_ok, (unsigned long long)f->entries_bad,
            (unsigned long long)f->cmds_ok, (unsigned long long)f->cmds_bad);
    /* The generator must reach past the envelope, or the test tests little. */
    assert_true(f->entries_ok > n / 10);
    assert_true(f->cmds_bad > n / 20);
}

/* Mutations of valid entries into the decoders: an LR_E* code or success, never a crash. */
static void mutated_entries_into_decoders(void **state)
{
    struct fixture *f = *state;
    f->rng.s ^= 0xb;
    for (uint32_t i = 0; i < f->nseeds; i++) {
        assert_int_equal(decode_check(f, f->seeds[i].p, f->seeds[i].n) > 0, 1);
    }
    assert_int_equal(f->cmds_bad, 0);
    uint64_t n = scaled(f, N_MUTATED);
    for (uint64_t i = 0; i < n; i++) {
        mutate(f);
        decode_check(f, f->m.p, f->m.n);
    }
    fprintf(stderr, "# mutated: entries %llu ok %llu refused; commands %llu ok %llu refused\n",
            (unsigned long long)f->entries_ok, (unsigned long long)f->entries_bad,
            (unsigned long long)f->cmds_ok, (unsigned long long)f->cmds_bad);
    assert_true(f->cmds_ok > n / 10);
    assert_true(f->cmds_bad > n / 10);
    assert_true(f->entries_bad > n / 10);
}

/* ---- the real shard --------------------------------------------------------------------- */

/* What the sink saw for the entry being applied, and in total. */
struct sink_state {
    uint32_t next_i; /* results arrive for commands 0, 1, ... in order */
    uint64_t results, events, status[6]; /* status[k]: results with status k00..k99 */
    uint64_t replayed;
};

/* A body must be exactly one msgpack map. */
static void check_body(const char *body, size_t len)
{
    struct mp r;
    assert_true(len > 0);
    assert_true(((unsigned char)body[0] & 0xf0) == 0x80 || (unsigned char)body[0] == 0xde ||
                (unsigned char)body[0] == 0xdf);
    mp_init(&r, body, len);
    mp_skip(&r);
    assert_true(mp_done(&r));
}

static void sink_result(void *data, uint32_t i, int status, const char *body, size_t len,
                        int replayed)
{
    struct sink_state *st = data;
    assert_int_equal(i, st->next_i);
    st->next_i++;
    assert_true(status >= 200 && status <= 599);
    check_body(body, len);
    st->results++;
    st->status[status / 100]++;
    st->replayed += replayed != 0;
}

static void sink_event(void *data, const char *body, size_t len)
{
    struct sink_state *st = data;
    check_body(body, len);
    st->events++;
}

/* One replica under test and the entries of its open group (to retry after a full map). */
struct replica {
    char *dir;
    struct shard *s;
    uint64_t index;
    struct buf pending[GROUP];
    uint32_t npending;
    uint32_t grows;
};

static void replica_open_sized(struct replica *r, int fast, uint64_t map_size)
{
    struct shard_config cfg = {r->dir, "eu", map_size, fast};
    char errmsg[LR_ERRMSG_SIZE];
    int rv = shard_open(&cfg, &r->s, errmsg);
    if (rv != 0) {
        fail_msg("shard_open: %s: %s", err_name(rv), errmsg);
    }
}

static void replica_open(struct replica *r, int fast)
{
    replica_open_sized(r, fast, 64u << 20);
}

/* Re-apply the open group from the committed index after an abort. */
static void replica_replay(struct replica *r, uint32_t count)
{
    uint64_t at = shard_applied_index(r->s);
    assert_int_equal(at + r->npending, r->index);
    for (uint32_t i = 0; i < count; i++) {
        int rv = shard_apply(r->s, ++at, r->pending[i].p, r->pending[i].n, NULL);
        if (rv != 0) {
            fail_msg("replay at %llu: %s: %s", (unsigned long long)at, err_name(rv),
                     shard_errmsg(r->s));
        }
    }
}

/* Commit the group; a full map (the commit writes too) aborts it: grow, replay, retry. */
static void replica_commit(struct replica *r)
{
    int rv;
    while ((rv = shard_commit(r->s)) == LR_EMAPFULL) {
        assert_int_equal(shard_grow(r->s), 0);
        r->grows++;
        replica_replay(r, r->npending);
    }
    if (rv != 0) {
        fail_msg("shard_commit: %s: %s", err_name(rv), shard_errmsg(r->s));
    }
    r->npending = 0;
}

/* Apply one entry at the next index; on a full map, abort, grow and re-apply the group. */
static void replica_apply(struct replica *r, const char *buf, size_t len,
                          const struct shard_sink *sink, uint32_t group)
{
    assert_true(r->npending < GROUP);
    buf_set(&r->pending[r->npending++], buf, len);
    r->index++;
    for (;;) {
        /* An exact-size copy, so ASan sees reads past the end. */
        char *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, buf, len);
        int rv = shard_apply(r->s, r->index, p, len, sink);
        free(p);
        if (rv == 0) {
            break;
        }
        if (rv != LR_EMAPFULL) {
            fail_msg("shard_apply at %llu: %s: %s", (unsigned long long)r->index, err_name(rv),
                     shard_errmsg(r->s));
        }
        /* Drop the group, grow, and apply it again from the committed index. */
        assert_int_equal(shard_abort(r->s), 0);
        assert_int_equal(shard_grow(r->s), 0);
        r->grows++;
        if (sink != NULL) { /* this entry's results start over */
            ((struct sink_state *)sink->data)->next_i = 0;
        }
        replica_replay(r, r->npending - 1);
    }
    assert_int_equal(shard_applied_index(r->s), r->index);
    if (r->npending == group) {
        replica_commit(r);
    }
}

static void replica_close(struct replica *r)
{
    shard_close(r->s);
    r->s = NULL;
    for (uint32_t i = 0; i < GROUP; i++) {
        free(r->pending[i].p);
    }
    testlib_rmrf(r->dir);
    free(r->dir);
}

/* Mutated entries applied to a real shard leave it consistent, durable and deterministic. */
static void mutated_entries_into_shard(void **state)
{
    struct fixture *f = *state;
    f->rng.s ^= 0xc;
    struct replica a = {0}, b = {0};
    a.dir = testlib_tmpdir();
    b.dir = testlib_tmpdir();
    assert_non_null(a.dir);
    assert_non_null(b.dir);
    replica_open(&a, 0);
    replica_open(&b, 1);
    struct sink_state st = {0};
    struct shard_sink sink = {&st, sink_result, sink_event};

    /* The seeds themselves apply, so mutations start from boards, players and games. */
    for (uint32_t i = 0; i < f->nseeds; i++) {
        st.next_i = 0;
        replica_apply(&a, f->seeds[i].p, f->seeds[i].n, &sink, GROUP);
        replica_apply(&b, f->seeds[i].p, f->seeds[i].n, NULL, 333);
    }
    assert_int_equal(st.results, 19);
    assert_int_equal(st.status[2], st.results); /* every seed command succeeded */

    uint64_t n = scaled(f, N_MUTATED);
    uint64_t with_cmds = 0;
    int64_t clock = TS0 + 3600000;
    for (uint64_t i = 0; i < n; i++) {
        /* Mutations of the seeds, now and then a seed itself, and random commands whose
         * meaning (not form) is random, so mutations meet more state. */
        uint64_t what = testrng_below(&f->rng, 100);
        if (what == 0) {
            const struct buf *seed = &f->seeds[testrng_below(&f->rng, f->nseeds)];
            buf_set(&f->m, seed->p, seed->n);
        } else if (what < 35) {
            random_valid_entry(f, &clock);
        } else {
            mutate(f);
        }
        uint32_t ncmds = decode_check(f, f->m.p, f->m.n);
        with_cmds += ncmds > 0;
        st.next_i = 0;
        replica_apply(&a, f->m.p, f->m.n, &sink, GROUP);
        /* Each command the envelope holds gets exactly one result. */
        assert_int_equal(st.next_i, ncmds);
        replica_apply(&b, f->m.p, f->m.n, NULL, 333);
    }
    replica_commit(&a);
    replica_commit(&b);
    fprintf(stderr,
            "# shard: %llu entries (%llu with commands), %llu results: 2xx %llu 4xx %llu "
            "5xx %llu, %llu replayed, %llu events, %u map grows\n",
            (unsigned long long)n, (unsigned long long)with_cmds,
            (unsigned long long)st.results, (unsigned long long)st.status[2],
            (unsigned long long)st.status[4], (unsigned long long)st.status[5],
            (unsigned long long)st.replayed, (unsigned long long)st.events, a.grows);
    assert_true(st.status[2] > n / 100);
    assert_true(st.status[4] > n / 100);

    /* The running digest is the digest of what is stored. */
    uint64_t digest = shard_digest(a.s), scan = 0;
    assert_int_equal(shard_digest_scan(a.s, &scan), 0);
    assert_int_equal(digest, scan);
    assert_int_equal(shard_applied_index(a.s), a.index);
    /* Another replica, grouping commits differently, holds the same state. */
    assert_int_equal(shard_digest(b.s), digest);
    assert_int_equal(shard_applied_index(b.s), a.index);

    /* A reopen rebuilds the same state from disk. */
    shard_close(a.s);
    replica_open(&a, 0);
    assert_int_equal(shard_digest(a.s), digest);
    assert_int_equal(shard_applied_index(a.s), a.index);
    assert_int_equal(shard_digest_scan(a.s, &scan), 0);
    assert_int_equal(scan, digest);
    /* Entries at or below the applied index are skipped as replays. */
    assert_int_equal(shard_apply(a.s, a.index, f->seeds[0].p, f->seeds[0].n, NULL), 0);
    assert_int_equal(shard_digest(a.s), digest);
    replica_commit(&a);
    assert_int_equal(shard_digest(a.s), digest);
    replica_close(&a);
    replica_close(&b);
}

/* A group aborted before anything was ever committed (as after a full map on a fresh shard)
 * leaves the shard empty, so the same entries apply again. */
static void abort_before_first_commit_forgets_the_group(void **state)
{
    struct fixture *f = *state;
    struct replica a = {0};
    a.dir = testlib_tmpdir();
    assert_non_null(a.dir);
    replica_open(&a, 1);
    uint64_t empty = shard_digest(a.s);
    for (uint32_t i = 0; i < f->nseeds; i++) {
        assert_int_equal(shard_apply(a.s, i + 1, f->seeds[i].p, f->seeds[i].n, NULL), 0);
    }
    assert_int_equal(shard_applied_index(a.s), f->nseeds);
    uint64_t full = shard_digest(a.s);
    assert_int_not_equal(full, empty);
    assert_int_equal(shard_abort(a.s), 0);
    assert_int_equal(shard_applied_index(a.s), 0);
    assert_int_equal(shard_digest(a.s), empty);
    for (uint32_t i = 0; i < f->nseeds; i++) {
        assert_int_equal(shard_apply(a.s, i + 1, f->seeds[i].p, f->seeds[i].n, NULL), 0);
    }
    assert_int_equal(shard_applied_index(a.s), f->nseeds);
    assert_int_equal(shard_digest(a.s), full);
    replica_commit(&a);
    replica_close(&a);
}

/* A map too small for the run fills up again and again; aborting, growing and re-applying
 * the group reaches the same state as a replica that never filled. */
static void full_map_grows_and_retries(void **state)
{
    struct fixture *f = *state;
    f->rng.s ^= 0x10;
    struct replica a = {0}, b = {0};
    a.dir = testlib_tmpdir();
    b.dir = testlib_tmpdir();
    assert_non_null(a.dir);
    assert_non_null(b.dir);
    replica_open_sized(&a, 1, 64u << 10);
    replica_open(&b, 1);
    int64_t clock = TS0;
    uint64_t n = scaled(f, 20000);
    for (uint64_t i = 0; i < n; i++) {
        if (i < f->nseeds) {
            buf_set(&f->m, f->seeds[i].p, f->seeds[i].n);
        } else if (testrng_below(&f->rng, 2)) {
            random_valid_entry(f, &clock);
        } else {
            mutate(f);
        }
        replica_apply(&a, f->m.p, f->m.n, NULL, 250);
        replica_apply(&b, f->m.p, f->m.n, NULL, 999);
    }
    replica_commit(&a);
    replica_commit(&b);
    fprintf(stderr, "# full map: %u grows\n", a.grows);
    assert_true(a.grows > 0);
    uint64_t scan;
    assert_int_equal(shard_digest(a.s), shard_digest(b.s));
    assert_int_equal(shard_digest_scan(a.s, &scan), 0);
    assert_int_equal(scan, shard_digest(b.s));
    assert_int_equal(shard_applied_index(a.s), n);
    shard_close(a.s);
    replica_open_sized(&a, 1, 64u << 10);
    assert_int_equal(shard_digest(a.s), shard_digest(b.s));
    assert_int_equal(shard_applied_index(a.s), n);
    replica_close(&a);
    replica_close(&b);
}

/* ---- strings into the cursor and time parsers ------------------------------------------- */

static void random_string(struct fixture *f, char *s, size_t *len, size_t max,
                          const char *alpha)
{
    size_t n = testrng_below(&f->rng, max + 1);
    int raw = testrng_below(&f->rng, 4) == 0;
    size_t na = strlen(alpha);
    for (size_t i = 0; i < n; i++) {
        s[i] = raw ? (char)testrng_next(&f->rng) : alpha[testrng_below(&f->rng, na)];
    }
    *len = n;
}

/* Mutate a valid string @from in place into @s: a few random characters changed, cut or added. */
static void mutate_string(struct fixture *f, const char *from, char *s, size_t *len,
                          const char *alpha)
{
    size_t n = strlen(from);
    memcpy(s, from, n);
    int edits = 1 + (int)testrng_below(&f->rng, 3);
    for (int e = 0; e < edits; e++) {
        size_t at = n ? testrng_below(&f->rng, n) : 0;
        switch (testrng_below(&f->rng, 3)) {
        case 0:
            if (n) {
                s[at] = alpha[testrng_below(&f->rng, strlen(alpha))];
            }
            break;
        case 1:
            n = at;
            break;
        default:
            if (n < 60) {
                memmove(s + at + 1, s + at, n - at);
                s[at] = alpha[testrng_below(&f->rng, strlen(alpha))];
                n++;
            }
            break;
        }
    }
    *len = n;
}

/* Random and mutated strings into the cursor decoders: refused, or canonical and re-encodable. */
static void random_strings_into_cursors(void **state)
{
    struct fixture *f = *state;
    f->rng.s ^= 0xd;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    struct rankkey key = {-3, 99, TS0, 0, 0, NULL};
    char valid_key[CURSOR_MAX], valid_seq[CURSOR_MAX];
    assert_int_equal(cursor_encode_key(&key, "player.1", 8, valid_key), 0);
    assert_int_equal(cursor_encode_seq(123456789, valid_seq), 0);
    uint64_t n = scaled(f, N_STRINGS), accepted = 0;
    for (uint64_t i = 0; i < n; i++) {
        char s[CURSOR_MAX + 64];
        size_t len;
        switch (i % 3) {
        case 0:
            random_string(f, s, &len, sizeof s, b64);
            break;
        case 1:
            mutate_string(f, valid_key, s, &len, b64);
            break;
        default:
            mutate_string(f, valid_seq, s, &len, b64);
            break;
        }
        char *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, s, len);
        struct rankkey k;
        char idbuf[VALID_ID_MAX + 1];
        char again[CURSOR_MAX];
        uint64_t seq;
        int rv = cursor_decode_key(p, len, &k, idbuf);
        assert_true(rv == 0 || rv == LR_EINVAL);
        if (rv == 0) {
            assert_int_equal(k.pid, RANKKEY_FOREIGN);
            assert_true(valid_id(k.id, k.idlen, VALID_ID_MAX));
            assert_int_equal(cursor_encode_key(&k, k.id, k.idlen, again), 0);
            assert_int_equal(strlen(again), len);
            assert_memory_equal(again, p, len);
            accepted++;
        }
        rv = cursor_decode_seq(p, len, &seq);
        assert_true(rv == 0 || rv == LR_EINVAL);
        if (rv == 0) {
            assert_int_equal(cursor_encode_seq(seq, again), 0);
            assert_int_equal(strlen(again), len);
            assert_memory_equal(again, p, len);
            accepted++;
        }
        free(p);
    }
    fprintf(stderr, "# cursors: %llu of %llu accepted\n", (unsigned long long)accepted,
            (unsigned long long)n);
    assert_true(accepted > 0);
}

/* Random and mutated strings into the time parsers: refused, or a time that round-trips. */
static void random_strings_into_time_parsers(void **state)
{
    struct fixture *f = *state;
    f->rng.s ^= 0xe;
    static const char alpha[] = "0123456789-:T.Z+0123456789W";
    static const char *const valid[] = {"2026-11-22T12:31:00.123Z", "2024-02-29T23:59:59+05:30",
                                        "1970-01-01T00:00:00.5-01:00", "9999-12-31T23:59:59.999Z"};
    static const char *const periods[TIMEFMT_NWINDOWS] = {"alltime", "2026-11-22", "2026-W47",
                                                          "2026-11", "29922511"};
    uint64_t n = scaled(f, N_STRINGS), accepted = 0;
    for (uint64_t i = 0; i < n; i++) {
        char s[80];
        size_t len;
        if (i % 2) {
            random_string(f, s, &len, 40, alpha);
        } else {
            mutate_string(f, valid[testrng_below(&f->rng, 4)], s, &len, alpha);
        }
        char *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, s, len);
        int64_t ms = 0;
        int rv = timefmt_parse_rfc3339(p, len, &ms);
        assert_true(rv == 0 || rv == LR_EINVAL);
        if (rv == 0) {
            accepted++;
            /* Whatever parsed is an instant; in range, it formats and parses back. */
            char out[TIMEFMT_RFC3339_LEN + 1];
            if (ms >= 0 && ms <= TS_MAX) {
                int64_t back;
                assert_int_equal(timefmt_rfc3339(ms, out), 0);
                assert_int_equal(timefmt_parse_rfc3339(out, strlen(out), &back), 0);
                assert_int_equal(back, ms);
            } else { /* years 0000-9999 shifted by at most a day's offset */
                assert_true(ms >= (timefmt_days_from_civil(0, 1, 1) - 1) * 86400000LL &&
                            ms < TS_MAX + 86400000LL);
            }
        }
        free(p);
        /* The same treatment for every window's period strings. */
        for (int w = 0; w < TIMEFMT_NWINDOWS; w++) {
            if (testrng_below(&f->rng, 2)) {
                mutate_string(f, periods[w], s, &len, alpha);
            } else {
                random_string(f, s, &len, 20, alpha);
            }
            p = malloc(len ? len : 1);
            assert_non_null(p);
            memcpy(p, s, len);
            int64_t per;
            rv = timefmt_period_parse((enum timefmt_window)w, p, len, &per);
            assert_true(rv == 0 || rv == LR_EINVAL);
            if (rv == 0) {
                char out[TIMEFMT_PERIOD_MAX];
                int64_t back;
                if (timefmt_period_format((enum timefmt_window)w, per, out) == 0) {
                    assert_int_equal(
                        timefmt_period_parse((enum timefmt_window)w, out, strlen(out), &back), 0);
                    assert_int_equal(back, per);
                }
            }
            enum timefmt_window win;
            rv = timefmt_window_parse(p, len, &win);
            assert_true(rv == 0 || rv == LR_EINVAL);
            free(p);
        }
    }
    fprintf(stderr, "# times: %llu of %llu accepted\n", (unsigned long long)accepted,
            (unsigned long long)n);
    assert_true(accepted > n / 100);
}

/* ---- bytes into the msgpack reader ------------------------------------------------------ */

/* Random bytes into mp_skip and the typed readers: reads stay inside the buffer. */
static void random_bytes_into_mp_reader(void **state)
{
    struct fixture *f = *state;
    f->rng.s ^= 0xf;
    uint64_t n = scaled(f, N_MP), done = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        if (i % 2) {
            len = testrng_below(&f->rng, 64);
            msgpack_sbuffer_clear(&f->sb);
            for (size_t j = 0; j < len; j++) {
                char c = (char)(testrng_below(&f->rng, 3)
                                    ? testrng_next(&f->rng)
                                    : interesting[testrng_below(&f->rng, sizeof interesting)]);
                msgpack_sbuffer_write(&f->sb, &c, 1);
            }
        } else { /* valid msgpack, then maybe cut or flipped */
            msgpack_sbuffer_clear(&f->sb);
            pack_random(f, 4);
            if (testrng_below(&f->rng, 2) && f->sb.size) {
                f->sb.data[testrng_below(&f->rng, f->sb.size)] ^=
                    (char)(1u << testrng_below(&f->rng, 8));
            }
            if (testrng_below(&f->rng, 2)) {
                f->sb.size = testrng_below(&f->rng, f->sb.size + 1);
            }
        }
        len = f->sb.size;
        unsigned char *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, f->sb.data, len);
        /* Skip value after value: each success moves forward, failure latches. */
        struct mp r;
        mp_init(&r, p, len);
        while (!r.err && r.p < r.end) {
            const unsigned char *before = r.p;
            mp_skip(&r);
            assert_true(r.p >= p && r.p <= p + len);
            if (!r.err) {
                assert_true(r.p > before);
            }
        }
        done += mp_done(&r);
        /* Typed reads in a random order. */
        mp_init(&r, p, len);
        for (int k = 0; k < 16 && !r.err; k++) {
            switch (testrng_below(&f->rng, 6)) {
            case 0:
                (void)mp_i64(&r);
                break;
            case 1: {
                struct lr_str s = mp_str(&r);
                if (!r.err) {
                    assert_true((const unsigned char *)s.p >= p);
                    assert_true((const unsigned char *)s.p + s.len <= p + len);
                }
                break;
            }
            case 2:
                (void)mp_array(&r);
                break;
            case 3:
                (void)mp_map(&r);
                break;
            case 4:
                (void)mp_bool(&r);
                break;
            default:
                (void)mp_nil(&r);
                break;
            }
            assert_true(r.p >= p && r.p <= p + len);
        }
        free(p);
    }
    fprintf(stderr, "# mp: %llu of %llu buffers skipped cleanly to the end\n",
            (unsigned long long)done, (unsigned long long)n);
    assert_true(done > n / 10);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(random_buffers_into_decoders),
        T(mutated_entries_into_decoders),
        T(mutated_entries_into_shard),
        T(abort_before_first_commit_forgets_the_group),
        T(full_map_grows_and_retries),
        T(random_strings_into_cursors),
        T(random_strings_into_time_parsers),
        T(random_bytes_into_mp_reader),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
