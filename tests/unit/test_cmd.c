/* tests/unit/test_cmd.c — the command codec (cmd.h), the input rules it enforces (valid.h),
 * page cursors (cursor.h) and the in-place msgpack reader (mp.h).
 *
 * Most command tests are generated from cmd.h's own field lists: for every command and every
 * field the test encodes a valid value, each bound, a value just past each bound and a value of
 * the wrong type, and checks the decoder's code and that its message starts with the field's
 * name. The wire form is also packed here by hand from the format cmd.h documents, so an encoder
 * that drifted from it fails even if decode(encode(x)) still round-trips. $LAUREL_SEED replays
 * the random parts.
 *
 * One binary, several files (test_cmd_int.h): this one holds the fixture, the sample commands,
 * the codec helpers, names and round trips, and main; test_cmd_wire.c the hand-packed wire form
 * and the entry envelope; test_cmd_fields.c every field's bounds, the request hash and valid.h;
 * test_cmd_cursor.c and test_cmd_mp.c the cursor and msgpack readers. */
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "shard/cmd.h"
#include "shard/valid.h"
#include "tests/lib/testlib.h"
#include "test_cmd_int.h"

/* Group state: the seed, read once per run. */
struct group {
    uint64_t seed;
};

static int group_setup(void **state)
{
    struct group *g = calloc(1, sizeof *g);
    assert_non_null(g);
    g->seed = testlib_seed(7301);
    *state = g;
    return 0;
}

static int group_teardown(void **state)
{
    free(*state);
    return 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->g = *state; /* cmocka starts each test's state from the group's */
    msgpack_sbuffer_init(&f->sb);
    msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
    msgpack_unpacked_init(&f->up);
    f->rng.s = f->g->seed;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    struct group *g = f->g;
    msgpack_unpacked_destroy(&f->up);
    msgpack_sbuffer_destroy(&f->sb);
    free(f);
    *state = g;
    return 0;
}

struct lr_str S(const char *s) {
    struct lr_str r = {s, (uint32_t)strlen(s)};
    return r;
}

/* ---- valid sample commands ------------------------------------------------------------- */

/* A valid command of @type with a distinct, non-default value in every field. */
struct cmd
sample(enum cmd_type type)
{
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = type;
    c.ts = TS;
    switch (type) {
    case CMD_GAME_PUT:
        c.u.game_put.game_id = S("g1");
        c.u.game_put.name = S("Game One");
        break;
    case CMD_ACH_PUT:
        c.u.ach_put.game_id = S("g1");
        c.u.ach_put.achievement_id = S("a1");
        c.u.ach_put.name = S("First \xc3\xa9tape");
        c.u.ach_put.description = S("Do the thing\nthen\tthe other");
        c.u.ach_put.points = 10;
        c.u.ach_put.hidden = 1;
        c.u.ach_put.steps = 5;
        break;
    case CMD_BOARD_PUT:
        c.u.board_put.board_id = S("b1");
        c.u.board_put.order = CMD_ORDER_ASC;
        c.u.board_put.op = CMD_OP_INCR;
        c.u.board_put.windows = 15;
        c.u.board_put.reset_period_s = 3600;
        c.u.board_put.snapshot_top = 10;
        c.u.board_put.rewards.n = 2;
        c.u.board_put.rewards.items[0] = (struct cmd_prize){1, 1, S("gold")};
        c.u.board_put.rewards.items[1] = (struct cmd_prize){2, 10, S("silver")};
        c.u.board_put.game_id = S("g1");
        c.u.board_put.keep_periods = 5;
        break;
    case CMD_TOURNAMENT_PUT:
        c.u.tournament_put.tournament_id = S("t1");
        c.u.tournament_put.name = S("Cup");
        c.u.tournament_put.order = CMD_ORDER_ASC;
        c.u.tournament_put.op = CMD_OP_SET;
        c.u.tournament_put.start_ms = 1000;
        c.u.tournament_put.end_ms = 2000;
        c.u.tournament_put.max_participants = 100;
        c.u.tournament_put.max_attempts = 3;
        c.u.tournament_put.prizes.n = 1;
        c.u.tournament_put.prizes.items[0] = (struct cmd_prize){1, 3, S("trophy")};
        break;
    case CMD_CATALOG_MARK: c.u.catalog_mark.through = 12345; break;
    case CMD_TOURNAMENT_JOIN:
        c.u.tournament_join.tournament_id = S("t1");
        c.u.tournament_join.player_id = S("p1");
        c.u.tournament_join.idempotency_key = S("join-0001");
        break;
    case CMD_PLAYER_PUT:
        c.u.player_put.player_id = S("p1");
        c.u.player_put.name = S("Ann");
        c.u.player_put.region = S("eu");
        c.u.player_put.guild = S("g.x");
        break;
    case CMD_UNLOCK:
        c.u.unlock.player_id = S("p1");
        c.u.unlock.game_id = S("g1");
        c.u.unlock.achievement_id = S("a1");
        c.u.unlock.steps = 2;
        c.u.unlock.idempotency_key = S("unlock-0001");
        break;
    case CMD_SCORE:
        c.u.score.board_id = S("b1");
        c.u.score.player_id = S("p1");
        c.u.score.score = -42;
        c.u.score.subscore = 7;
        c.u.score.metadata = S("{\"k\":1}");
        c.u.score.idempotency_key = S("score-0001");
        break;
    case CMD_REWARD_GRANT:
        c.u.reward_grant.board_id = S("b1");
        c.u.reward_grant.cycle = 29412345;
        c.u.reward_grant.player_id = S("p1");
        c.u.reward_grant.rank = 3;
        c.u.reward_grant.reward = S("silver \xc3\xa9toile");
        break;
    case CMD_REWARD_CLAIM:
        c.u.reward_claim.player_id = S("p1");
        c.u.reward_claim.board_id = S("b1");
        c.u.reward_claim.cycle = 29412345;
        c.u.reward_claim.idempotency_key = S("claim-0001");
        break;
    case CMD_AUDIT_DAYS: c.u.audit_days.days = 45; break;
    case CMD__TYPE_END: fail_msg("no sample for CMD__TYPE_END");
    }
    return c;
}

/* ---- generated comparison -------------------------------------------------------------- */

static void str_equal(struct lr_str x, struct lr_str y, const char *fname)
{
    if (x.len != y.len || (x.len != 0 && memcmp(x.p, y.p, x.len) != 0)) {
        fail_msg("%s differs: \"%.*s\" vs \"%.*s\"", fname, (int)x.len, x.p, (int)y.len, y.p);
    }
}

static void prizes_equal(const struct cmd_prizes *x, const struct cmd_prizes *y, const char *fname)
{
    if (x->n != y->n) {
        fail_msg("%s: %u bands vs %u", fname, x->n, y->n);
    }
    for (uint32_t i = 0; i < x->n; i++) {
        assert_int_equal(x->items[i].rank_from, y->items[i].rank_from);
        assert_int_equal(x->items[i].rank_to, y->items[i].rank_to);
        str_equal(x->items[i].reward, y->items[i].reward, fname);
    }
}

#define EQ_ID(x, y, n) str_equal(x, y, n)
#define EQ_OPTID(x, y, n) str_equal(x, y, n)
#define EQ_TEXT(x, y, n) str_equal(x, y, n)
#define EQ_IDEM(x, y, n) str_equal(x, y, n)
#define EQ_META(x, y, n) str_equal(x, y, n)
#define EQ_I64(x, y, n)                                                                            \
    if ((x) != (y)) {                                                                              \
        fail_msg("%s differs: %lld vs %lld", n, (long long)(x), (long long)(y));                   \
    }
#define EQ_BOOL(x, y, n)                                                                           \
    if ((x) != (y)) {                                                                              \
        fail_msg("%s differs: %d vs %d", n, (x), (y));                                             \
    }
#define EQ_PRIZES(x, y, n) prizes_equal(&(x), &(y), n)
#define EQ_FIELD(kind, fname, a, b) EQ_##kind(x->fname, y->fname, #fname);

#define EQ_FN(code, NAME, name, flags)                                                             \
    static void equal_##name(const struct cmd_##name *x, const struct cmd_##name *y)               \
    {                                                                                              \
        CMD_##NAME(EQ_FIELD)                                                                       \
    }
CMD_LIST(EQ_FN)
#undef EQ_FN

/* Fails the test unless @x and @y carry the same type, ts, origin and field values. */
void cmd_equal(const struct cmd *x, const struct cmd *y)
{
    assert_int_equal(x->type, y->type);
    assert_int_equal(x->ts, y->ts);
    assert_int_equal(x->origin.key, y->origin.key);
    str_equal(x->origin.source, y->origin.source, "origin.source");
    switch (x->type) {
#define EQ_CASE(code, NAME, name, flags)                                                           \
    case CMD_##NAME: equal_##name(&x->u.name, &y->u.name); break;
        CMD_LIST(EQ_CASE)
#undef EQ_CASE
    case CMD__TYPE_END: fail();
    }
}

/* ---- encode / decode helpers ----------------------------------------------------------- */

/* Encode @n commands as one entry into the fixture's buffer. */
void encode_entry(struct fixture *f, const struct cmd *cmds, uint32_t n)
{
    msgpack_sbuffer_clear(&f->sb);
    assert_int_equal(cmd_entry_begin(&f->pk, n), 0);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(cmd_encode(&f->pk, &cmds[i]), 0);
    }
}

/* Decode the envelope of the buffer; returns its code, the entry in *@e. */
int decode_entry(struct fixture *f, struct cmd_entry *e)
{
    msgpack_unpacked_destroy(&f->up);
    msgpack_unpacked_init(&f->up);
    f->errmsg[0] = '\0';
    return cmd_entry_decode(f->sb.data, f->sb.size, &f->up, e, f->errmsg);
}

/* Decode a buffer holding an entry of one command; the envelope must be valid. */
int decode_one(struct fixture *f, struct cmd *out)
{
    struct cmd_entry e;
    assert_int_equal(decode_entry(f, &e), 0);
    assert_int_equal(e.n, 1);
    memset(out, 0xa5, sizeof *out);
    return cmd_decode(&e.cmds[0], out, f->errmsg);
}

/* Encode @c alone in an entry and decode it back. */
int round_trip(struct fixture *f, const struct cmd *c, struct cmd *out)
{
    encode_entry(f, c, 1);
    return decode_one(f, out);
}

void expect_ok(struct fixture *f, const struct cmd *c)
{
    struct cmd out;
    int rv = round_trip(f, c, &out);
    if (rv != 0) {
        fail_msg("%s: decode failed with %s: %s", cmd_name(c->type), err_name(rv), f->errmsg);
    }
    cmd_equal(c, &out);
}

/* The message names the field first: "<field> must ..." or "<field>[i] must ...". */
void expect_msg_names(const char *errmsg, const char *fname)
{
    size_t n = strlen(fname);
    if (strncmp(errmsg, fname, n) != 0 || (errmsg[n] != ' ' && errmsg[n] != '[')) {
        fail_msg("message \"%s\" does not name field %s", errmsg, fname);
    }
}

void expect_bad(struct fixture *f, const struct cmd *c, int want, const char *fname)
{
    struct cmd out;
    int rv = round_trip(f, c, &out);
    if (rv != want) {
        fail_msg("%s.%s: decode returned %s (%s), want %s", cmd_name(c->type), fname, err_name(rv),
                 rv ? f->errmsg : "", err_name(want));
    }
    expect_msg_names(f->errmsg, fname);
}

void pack_str(msgpack_packer *pk, struct lr_str s)
{
    msgpack_pack_str(pk, s.len);
    msgpack_pack_str_body(pk, s.p, s.len);
}

/* ---- names, flags, idempotency --------------------------------------------------------- */

/* Every command has a distinct wire name; codes outside the list have none. */
static void names_and_flags(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        assert_non_null(cmd_name((int)all_types[i]));
        for (size_t j = 0; j < i; j++) {
            assert_string_not_equal(cmd_name((int)all_types[i]), cmd_name((int)all_types[j]));
        }
    }
    assert_string_equal(cmd_name(CMD_SCORE), "score");
    assert_string_equal(cmd_name(CMD_PLAYER_PUT), "player_put");
    assert_null(cmd_name(0));
    assert_null(cmd_name(CMD__TYPE_END));
    assert_null(cmd_name(-1));
    assert_int_equal(cmd_flags(0), 0);
    assert_int_equal(cmd_flags(CMD__TYPE_END), 0);
    assert_int_equal(cmd_flags(CMD_GAME_PUT), 0);
}

/* Exactly the idempotent commands expose a player and key, and they are the command's own. */
static void idempotent_commands_expose_key(void **state)
{
    (void)state;
    for (size_t i = 0; i < NTYPES; i++) {
        struct cmd c = sample(all_types[i]);
        struct lr_str player, key;
        cmd_idem(&c, &player, &key);
        if (cmd_flags(c.type) & CMD_F_IDEMPOTENT) {
            str_equal(player, S("p1"), "player");
            assert_true(key.len >= VALID_IDEM_MIN);
            assert_true(valid_idem(key.p, key.len));
        } else {
            assert_int_equal(player.len, 0);
            assert_int_equal(key.len, 0);
        }
    }
    struct cmd c = sample(CMD_SCORE);
    struct lr_str player, key;
    cmd_idem(&c, &player, &key);
    assert_ptr_equal(key.p, c.u.score.idempotency_key.p);
    assert_ptr_equal(player.p, c.u.score.player_id.p);
    assert_true(cmd_flags(CMD_UNLOCK) & CMD_F_IDEMPOTENT);
    assert_true(cmd_flags(CMD_TOURNAMENT_JOIN) & CMD_F_IDEMPOTENT);
    assert_true(cmd_flags(CMD_REWARD_CLAIM) & CMD_F_IDEMPOTENT);
    assert_false(cmd_flags(CMD_REWARD_GRANT) & CMD_F_IDEMPOTENT);
}

/* ---- round trips ----------------------------------------------------------------------- */

/* Every command type decodes to exactly what was encoded, strings borrowed from the entry. */
static void every_type_round_trips(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < NTYPES; i++) {
        struct cmd c = sample(all_types[i]);
        struct cmd out;
        assert_int_equal(round_trip(f, &c, &out), 0);
        cmd_equal(&c, &out);
        assert_int_equal(cmd_request_hash(&c), cmd_request_hash(&out));
    }
    struct cmd c = sample(CMD_SCORE);
    struct cmd out;
    assert_int_equal(round_trip(f, &c, &out), 0);
    const char *lo = f->sb.data, *hi = f->sb.data + f->sb.size;
    assert_true(out.u.score.player_id.p >= lo && out.u.score.player_id.p < hi);
    assert_true(out.u.score.metadata.p >= lo && out.u.score.metadata.p < hi);
}

/* One entry carries every command type in order. */
static void entry_of_every_type_round_trips(void **state)
{
    struct fixture *f = *state;
    struct cmd cmds[NTYPES];
    for (size_t i = 0; i < NTYPES; i++) {
        cmds[i] = sample(all_types[i]);
        cmds[i].ts = TS + (int64_t)i;
    }
    encode_entry(f, cmds, NTYPES);
    struct cmd_entry e;
    assert_int_equal(decode_entry(f, &e), 0);
    assert_int_equal(e.n, NTYPES);
    for (uint32_t i = 0; i < e.n; i++) {
        struct cmd out;
        assert_int_equal(cmd_decode(&e.cmds[i], &out, f->errmsg), 0);
        cmd_equal(&cmds[i], &out);
    }
}

/* Extremes of every bound round-trip: ts 0 and the last ms of year 9999, all-max fields. */
static void extremes_round_trip(void **state)
{
    struct fixture *f = *state;
    struct cmd c = sample(CMD_SCORE);
    c.ts = 0;
    c.u.score.score = VALID_SCORE_MAX;
    c.u.score.subscore = -VALID_SCORE_MAX;
    c.u.score.metadata = S("");
    c.u.score.idempotency_key = S("");
    expect_ok(f, &c);
    c.ts = TS_MAX;
    expect_ok(f, &c);
    struct cmd b = sample(CMD_BOARD_PUT);
    b.u.board_put.rewards.n = CMD_PRIZES_MAX;
    for (uint32_t i = 0; i < CMD_PRIZES_MAX; i++) {
        b.u.board_put.rewards.items[i] = (struct cmd_prize){i + 1, 1000000, S("r")};
    }
    b.u.board_put.game_id = S("");
    expect_ok(f, &b);
    b.u.board_put.rewards.n = 0;
    expect_ok(f, &b);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(names_and_flags),
        T(idempotent_commands_expose_key),
        T(every_type_round_trips),
        T(entry_of_every_type_round_trips),
        T(extremes_round_trip),
        T(encoder_matches_documented_wire_form),
        T(wrong_field_type_is_refused),
        T(wrong_field_count_is_malformed),
        T(origin_round_trips_and_is_optional),
        T(bad_origins_are_refused),
        T(audited_commands_name_action_and_player),
        T(every_field_enforces_its_bounds),
        T(api_conventions_spelled_out),
        T(unknown_command_code_is_version_error),
        T(ts_out_of_range_is_malformed),
        T(command_not_an_array_is_malformed),
        T(entry_version_is_checked),
        T(entry_shape_is_checked),
        T(truncated_and_trailing_entries),
        T(huge_claims_are_refused_cheaply),
        T(entry_command_limit),
        T(request_hash_covers_every_field),
        T(request_hash_keeps_field_boundaries),
        T(valid_id_alphabet_and_length),
        T(valid_text_counts_code_points),
        T(valid_idem_printable_ascii),
        T(valid_score_bounds),
        T(cursor_key_round_trips),
        T(cursor_seq_round_trips),
        T(cursor_pos_round_trips),
        T(cursor_rejects_wrong_version_and_shape),
        T(cursor_rejects_truncated_and_noncanonical),
        T(cursor_random_strings),
        T(mp_ints_at_every_width),
        T(mp_strings_and_bins),
        T(mp_bool_nil_and_containers),
        T(mp_errors_latch),
        T(mp_skip_nested),
        T(mp_truncated_input),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
