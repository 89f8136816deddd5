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
 * $LAUREL_SEED replays a run; $LAUREL_GARBAGE_PCT scales the iteration counts (default 100).
 *
 * One binary, three files (test_garbage_int.h): this one holds the fixture, the valid seed
 * entries, the generators and main; test_garbage_decode.c feeds the decoders, the cursor and
 * time parsers and the msgpack reader; test_garbage_shard.c feeds the real shard. */
#include <stdlib.h>
#include <string.h>

#include "shard/cmd.h"
#include "tests/lib/testlib.h"
#include "test_garbage_int.h"

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

uint64_t scaled(const struct fixture *f, uint64_t n)
{
    uint64_t v = n * f->g->pct / 100;
    return v ? v : 1;
}

void buf_set(struct buf *b, const void *p, size_t n)
{
    if (n + 16 > b->cap) {
        b->cap = 2 * (n + 16);
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p, p, n);
    b->n = n;
}

static struct lr_str S(const char *s) {
    struct lr_str r = {s, (uint32_t)strlen(s)};
    return r;
}

/* ---- valid seed entries ----------------------------------------------------------------- */

static struct cmd
c_player(const char *id, const char *name, const char *guild)
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
    c.u.ach_put =
        (struct cmd_ach_put){S(game), S(ach), S("First"), S("Do it"), points, hidden, steps, 0};
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

static struct cmd c_score(const char *board, const char *player, int64_t score, int64_t subscore,
                          const char *meta, const char *idem)
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
    c[0] = c_player("p2",
                    "B\xc3\xb6"
                    "b",
                    "g1");
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
    /* As a router sends them (an origin after the fields), and the audit retention. */
    c[0] = c_score("b1", "p1", 11, 0, "", "key-0006");
    c[0].origin = (struct cmd_origin){CMD_KEY_API, S("127.0.0.1")};
    c[1] = c_join("t1", "p2", "join-0002");
    c[1].origin = (struct cmd_origin){CMD_KEY_ADMIN, S("2001:db8::1")};
    c[2] = (struct cmd){.type = CMD_AUDIT_DAYS};
    c[2].u.audit_days.days = 31;
    add_seed(f, c, 3);
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

/* Replace f->m with a mutation of a random seed: 1 to 4 edits. */
void mutate(struct fixture *f)
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
        case 3: /* truncate */ m->n = at; break;
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
void pack_random(struct fixture *f, int depth)
{
    msgpack_packer *pk = &f->pk;
    char s[80];
    switch (testrng_below(&f->rng, depth > 0 ? 12 : 9)) {
    case 0: msgpack_pack_int64(pk, (int64_t)testrng_below(&f->rng, 200) - 100); break;
    case 1: msgpack_pack_int64(pk, (int64_t)testrng_next(&f->rng)); break;
    case 2: msgpack_pack_uint64(pk, testrng_next(&f->rng)); break;
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
    case 5: msgpack_pack_nil(pk); break;
    case 6: testrng_below(&f->rng, 2) ? msgpack_pack_true(pk) : msgpack_pack_false(pk); break;
    case 7: msgpack_pack_double(pk, (double)(int64_t)testrng_next(&f->rng) / 3.0); break;
    case 8: msgpack_pack_ext_with_body(pk, "abcd", 4, 1); break;
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
    static const char *const names[] = {"Ann",
                                        "B\xc3\xb6"
                                        "b",
                                        "\xf0\x9f\x98\x80", "x"};
    static const char *const rewards[] = {"gold", "silver", "r"};
    static const int64_t resets[] = {0, 0, 60, 86400, 604800};
    static const int64_t big[] = {
        0, 1, -1, 9007199254740991LL, -9007199254740991LL, 4503599627370496LL};
    struct cmd c;
    memset(&c, 0, sizeof c);
    /* Mostly seconds apart; now and then a day or two later, or an hour back. Periods pile
     * up with simulated time (every past period keeps its ranking), so time moves slowly. */
    uint64_t jump = testrng_below(&f->rng, 2000);
    *clock += jump < 20   ? -(int64_t)testrng_below(&f->rng, 3600000)
              : jump < 21 ? (int64_t)testrng_below(&f->rng, 2 * 86400000ULL)
                          : (int64_t)testrng_below(&f->rng, 10000);
    if (*clock < 0) {
        *clock = 0;
    }
    c.ts = *clock;
    if (testrng_below(&f->rng, 64) == 0) { /* the retention, now and then; 29 is refused */
        c.type = CMD_AUDIT_DAYS;
        c.u.audit_days.days = pick_i64(f, 29, 31);
        return c;
    }
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
        c.u.tournament_join =
            (struct cmd_tournament_join){S(PICK(f, tours)), S(PICK(f, players)), S(PICK(f, keys))};
        break;
    case 6:
        c = c_unlock(PICK(f, players), PICK(f, games), PICK(f, achs), pick_i64(f, 0, 3),
                     PICK(f, keys));
        c.ts = *clock;
        break;
    default: {
        int64_t score =
            testrng_below(&f->rng, 4) ? pick_i64(f, -50, 50) : big[testrng_below(&f->rng, 6)];
        c = c_score(PICK(f, boards), PICK(f, players), score, pick_i64(f, -2, 2), PICK(f, metas),
                    PICK(f, keys));
        c.ts = *clock;
        if (testrng_below(&f->rng, 2)) { /* tournament boards take scores too */
            c.u.score.board_id = S(PICK(f, tours));
        }
        break;
    }
    }
    /* Half of them as a router sends them, with an origin (the audit trail records it). */
    static const char *const sources[] = {"127.0.0.1", "::1", "fe80::1%eth0", ""};
    if (testrng_below(&f->rng, 2)) {
        c.origin.key = testrng_below(&f->rng, 2) ? CMD_KEY_API : CMD_KEY_ADMIN;
        c.origin.source = S(PICK(f, sources));
    }
    return c;
}

/* An entry of 1..4 random commands into f->m. */
void random_valid_entry(struct fixture *f, int64_t *clock)
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
void random_entry(struct fixture *f)
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
            char c = (char)(testrng_below(&f->rng, 3)
                                ? testrng_next(&f->rng)
                                : interesting[testrng_below(&f->rng, sizeof interesting)]);
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

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(random_buffers_into_decoders),     T(mutated_entries_into_decoders),
        T(mutated_entries_into_shard),       T(abort_before_first_commit_forgets_the_group),
        T(full_map_grows_and_retries),       T(random_strings_into_cursors),
        T(random_strings_into_time_parsers), T(random_bytes_into_mp_reader),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
