/* tests/unit/test_cmd.c — the command codec (cmd.h), the input rules it enforces (valid.h),
 * page cursors (cursor.h) and the in-place msgpack reader (mp.h).
 *
 * Most command tests are generated from cmd.h's own field lists: for every command and every
 * field the test encodes a valid value, each bound, a value just past each bound and a value of
 * the wrong type, and checks the decoder's code and that its message starts with the field's
 * name. The wire form is also packed here by hand from the format cmd.h documents, so an encoder
 * that drifted from it fails even if decode(encode(x)) still round-trips. $LAUREL_SEED replays
 * the random parts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shard/cmd.h"
#include "shard/cursor.h"
#include "lib/err.h"
#include "shard/mp.h"
#include "shard/valid.h"
#include "tests/lib/testlib.h"

#define TS 1795350660123LL
#define TS_MAX 253402300799999LL

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

struct fixture {
    struct group *g;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
    char errmsg[LR_ERRMSG_SIZE];
    struct testrng rng;
};

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

static struct lr_str S(const char *s)
{
    struct lr_str r = {s, (uint32_t)strlen(s)};
    return r;
}

/* ---- valid sample commands ------------------------------------------------------------- */

/* A valid command of @type with a distinct, non-default value in every field. */
static struct cmd sample(enum cmd_type type)
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
    case CMD__TYPE_END:
        fail_msg("no sample for CMD__TYPE_END");
    }
    return c;
}

static const enum cmd_type all_types[] = {
#define TYPE(code, NAME, name, flags) CMD_##NAME,
    CMD_LIST(TYPE)
#undef TYPE
};
#define NTYPES (sizeof all_types / sizeof all_types[0])

/* ---- generated comparison -------------------------------------------------------------- */

static void str_equal(struct lr_str x, struct lr_str y, const char *fname)
{
    if (x.len != y.len || (x.len != 0 && memcmp(x.p, y.p, x.len) != 0)) {
        fail_msg("%s differs: \"%.*s\" vs \"%.*s\"", fname, (int)x.len, x.p, (int)y.len, y.p);
    }
}

static void prizes_equal(const struct cmd_prizes *x, const struct cmd_prizes *y,
                         const char *fname)
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
#define EQ_I64(x, y, n)                                                                        \
    if ((x) != (y)) {                                                                          \
        fail_msg("%s differs: %lld vs %lld", n, (long long)(x), (long long)(y));               \
    }
#define EQ_BOOL(x, y, n)                                                                       \
    if ((x) != (y)) {                                                                          \
        fail_msg("%s differs: %d vs %d", n, (x), (y));                                         \
    }
#define EQ_PRIZES(x, y, n) prizes_equal(&(x), &(y), n)
#define EQ_FIELD(kind, fname, a, b) EQ_##kind(x->fname, y->fname, #fname);

#define EQ_FN(code, NAME, name, flags)                                                         \
    static void equal_##name(const struct cmd_##name *x, const struct cmd_##name *y)           \
    {                                                                                          \
        CMD_##NAME(EQ_FIELD)                                                                   \
    }
CMD_LIST(EQ_FN)
#undef EQ_FN

/* Fails the test unless @x and @y carry the same type, ts and field values. */
static void cmd_equal(const struct cmd *x, const struct cmd *y)
{
    assert_int_equal(x->type, y->type);
    assert_int_equal(x->ts, y->ts);
    switch (x->type) {
#define EQ_CASE(code, NAME, name, flags)                                                       \
    case CMD_##NAME:                                                                           \
        equal_##name(&x->u.name, &y->u.name);                                                  \
        break;
        CMD_LIST(EQ_CASE)
#undef EQ_CASE
    case CMD__TYPE_END:
        fail();
    }
}

/* ---- encode / decode helpers ----------------------------------------------------------- */

/* Encode @n commands as one entry into the fixture's buffer. */
static void encode_entry(struct fixture *f, const struct cmd *cmds, uint32_t n)
{
    msgpack_sbuffer_clear(&f->sb);
    assert_int_equal(cmd_entry_begin(&f->pk, n), 0);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(cmd_encode(&f->pk, &cmds[i]), 0);
    }
}

/* Decode the envelope of the buffer; returns its code, the entry in *@e. */
static int decode_entry(struct fixture *f, struct cmd_entry *e)
{
    msgpack_unpacked_destroy(&f->up);
    msgpack_unpacked_init(&f->up);
    f->errmsg[0] = '\0';
    return cmd_entry_decode(f->sb.data, f->sb.size, &f->up, e, f->errmsg);
}

/* Decode a buffer holding an entry of one command; the envelope must be valid. */
static int decode_one(struct fixture *f, struct cmd *out)
{
    struct cmd_entry e;
    assert_int_equal(decode_entry(f, &e), 0);
    assert_int_equal(e.n, 1);
    memset(out, 0xa5, sizeof *out);
    return cmd_decode(&e.cmds[0], out, f->errmsg);
}

/* Encode @c alone in an entry and decode it back. */
static int round_trip(struct fixture *f, const struct cmd *c, struct cmd *out)
{
    encode_entry(f, c, 1);
    return decode_one(f, out);
}

static void expect_ok(struct fixture *f, const struct cmd *c)
{
    struct cmd out;
    int rv = round_trip(f, c, &out);
    if (rv != 0) {
        fail_msg("%s: decode failed with %s: %s", cmd_name(c->type), err_name(rv), f->errmsg);
    }
    cmd_equal(c, &out);
}

/* The message names the field first: "<field> must ..." or "<field>[i] must ...". */
static void expect_msg_names(const char *errmsg, const char *fname)
{
    size_t n = strlen(fname);
    if (strncmp(errmsg, fname, n) != 0 || (errmsg[n] != ' ' && errmsg[n] != '[')) {
        fail_msg("message \"%s\" does not name field %s", errmsg, fname);
    }
}

static void expect_bad(struct fixture *f, const struct cmd *c, int want, const char *fname)
{
    struct cmd out;
    int rv = round_trip(f, c, &out);
    if (rv != want) {
        fail_msg("%s.%s: decode returned %s (%s), want %s", cmd_name(c->type), fname,
                 err_name(rv), rv ? f->errmsg : "", err_name(want));
    }
    expect_msg_names(f->errmsg, fname);
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

/* ---- the wire form, packed by hand ----------------------------------------------------- */

static void pack_str(msgpack_packer *pk, struct lr_str s)
{
    msgpack_pack_str(pk, s.len);
    msgpack_pack_str_body(pk, s.p, s.len);
}

static void pack_prizes(msgpack_packer *pk, const struct cmd_prizes *p)
{
    msgpack_pack_array(pk, p->n);
    for (uint32_t i = 0; i < p->n; i++) {
        msgpack_pack_array(pk, 3);
        msgpack_pack_int64(pk, p->items[i].rank_from);
        msgpack_pack_int64(pk, p->items[i].rank_to);
        pack_str(pk, p->items[i].reward);
    }
}

#define PACK_ID(pk, v) pack_str(pk, v)
#define PACK_OPTID(pk, v) pack_str(pk, v)
#define PACK_TEXT(pk, v) pack_str(pk, v)
#define PACK_IDEM(pk, v) pack_str(pk, v)
#define PACK_META(pk, v) pack_str(pk, v)
#define PACK_I64(pk, v) msgpack_pack_int64(pk, v)
#define PACK_BOOL(pk, v) ((v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk))
#define PACK_PRIZES(pk, v) pack_prizes(pk, &(v))

/* A value of the wrong type for a field kind; @variant picks one of two. */
static void pack_wrong_string(msgpack_packer *pk, int variant)
{
    variant ? msgpack_pack_int64(pk, 7) : msgpack_pack_nil(pk);
}
static void pack_wrong_int(msgpack_packer *pk, int variant)
{
    if (variant == 0) {
        pack_str(pk, S("7"));
    } else {
        msgpack_pack_double(pk, 7.0);
    }
}
static void pack_wrong_bool(msgpack_packer *pk, int variant)
{
    variant ? msgpack_pack_int64(pk, 1) : msgpack_pack_nil(pk);
}
static void pack_wrong_prizes(msgpack_packer *pk, int variant)
{
    if (variant == 0) {
        pack_str(pk, S("gold"));
    } else { /* a band whose rank is a string */
        msgpack_pack_array(pk, 1);
        msgpack_pack_array(pk, 3);
        pack_str(pk, S("1"));
        msgpack_pack_int64(pk, 2);
        pack_str(pk, S("gold"));
    }
}
#define WRONG_ID(pk, v) pack_wrong_string(pk, v)
#define WRONG_OPTID(pk, v) pack_wrong_string(pk, v)
#define WRONG_TEXT(pk, v) pack_wrong_string(pk, v)
#define WRONG_IDEM(pk, v) pack_wrong_string(pk, v)
#define WRONG_META(pk, v) pack_wrong_string(pk, v)
#define WRONG_I64(pk, v) pack_wrong_int(pk, v)
#define WRONG_BOOL(pk, v) pack_wrong_bool(pk, v)
#define WRONG_PRIZES(pk, v) pack_wrong_prizes(pk, v)

#define COUNT(kind, fname, a, b) +1
#define FNAME(kind, fname, a, b) #fname,
#define RAW_FIELD(kind, fname, a, b)                                                           \
    if (idx == k) {                                                                            \
        WRONG_##kind(pk, variant);                                                             \
    } else if (idx != drop) {                                                                  \
        PACK_##kind(pk, x->fname);                                                             \
    }                                                                                          \
    idx++;

/* raw_<name>: pack @c's command as cmd.h documents, [code, ts, fields...], replacing field
 * @k with a wrong-typed value, leaving out field @drop (-1: none) and adding @extra nils. */
#define RAW_FN(code, NAME, name, flags)                                                        \
    static const char *const fields_##name[] = {CMD_##NAME(FNAME)};                            \
    static void raw_##name(msgpack_packer *pk, const struct cmd *c, int k, int variant,        \
                           int drop, int extra)                                                \
    {                                                                                          \
        const struct cmd_##name *x = &c->u.name;                                               \
        int idx = 0;                                                                           \
        msgpack_pack_array(pk, (uint32_t)(2 + (0 CMD_##NAME(COUNT)) - (drop >= 0) + extra));   \
        msgpack_pack_int64(pk, code);                                                          \
        msgpack_pack_int64(pk, c->ts);                                                         \
        CMD_##NAME(RAW_FIELD) for (int e = 0; e < extra; e++)                                  \
        {                                                                                      \
            msgpack_pack_nil(pk);                                                              \
        }                                                                                      \
    }
CMD_LIST(RAW_FN)
#undef RAW_FN

static int nfields(enum cmd_type t)
{
    switch (t) {
#define NF_CASE(code, NAME, name, flags)                                                       \
    case CMD_##NAME:                                                                           \
        return 0 CMD_##NAME(COUNT);
        CMD_LIST(NF_CASE)
#undef NF_CASE
    case CMD__TYPE_END:
        break;
    }
    return -1;
}

static const char *field_name(enum cmd_type t, int k)
{
    switch (t) {
#define FN_CASE(code, NAME, name, flags)                                                       \
    case CMD_##NAME:                                                                           \
        return fields_##name[k];
        CMD_LIST(FN_CASE)
#undef FN_CASE
    case CMD__TYPE_END:
        break;
    }
    return NULL;
}

/* Pack an entry of one hand-packed command into the fixture's buffer. */
static void raw_entry(struct fixture *f, const struct cmd *c, int k, int variant, int drop,
                      int extra)
{
    msgpack_sbuffer_clear(&f->sb);
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_int64(&f->pk, CMD_ENTRY_VERSION);
    msgpack_pack_array(&f->pk, 1);
    switch (c->type) {
#define RAW_CASE(code, NAME, name, flags)                                                      \
    case CMD_##NAME:                                                                           \
        raw_##name(&f->pk, c, k, variant, drop, extra);                                        \
        break;
        CMD_LIST(RAW_CASE)
#undef RAW_CASE
    case CMD__TYPE_END:
        fail();
    }
}

/* The encoder writes exactly the documented wire form, byte for byte. */
static void encoder_matches_documented_wire_form(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < NTYPES; i++) {
        struct cmd c = sample(all_types[i]);
        raw_entry(f, &c, -1, 0, -1, 0);
        size_t n = f->sb.size;
        char *hand = malloc(n);
        assert_non_null(hand);
        memcpy(hand, f->sb.data, n);
        encode_entry(f, &c, 1);
        assert_int_equal(f->sb.size, n);
        assert_memory_equal(f->sb.data, hand, n);
        free(hand);
        struct cmd out;
        assert_int_equal(decode_one(f, &out), 0);
        cmd_equal(&c, &out);
    }
}

/* A field of the wrong type is refused with a message naming that field. */
static void wrong_field_type_is_refused(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < NTYPES; i++) {
        struct cmd c = sample(all_types[i]);
        for (int k = 0; k < nfields(c.type); k++) {
            for (int variant = 0; variant < 2; variant++) {
                struct cmd out;
                raw_entry(f, &c, k, variant, -1, 0);
                int rv = decode_one(f, &out);
                if (rv != LR_EINVAL) {
                    fail_msg("%s field %s variant %d: %s", cmd_name(c.type), field_name(c.type, k),
                             variant, err_name(rv));
                }
                expect_msg_names(f->errmsg, field_name(c.type, k));
            }
        }
    }
}

/* A command with one field too few or too many is malformed, whichever field is missing. */
static void wrong_field_count_is_malformed(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < NTYPES; i++) {
        struct cmd c = sample(all_types[i]);
        char want[64];
        struct cmd out;
        for (int drop = 0; drop < nfields(c.type); drop++) {
            raw_entry(f, &c, -1, 0, drop, 0);
            assert_int_equal(decode_one(f, &out), LR_EMALFORMED);
            snprintf(want, sizeof want, "%s: expected %d fields, got %d", cmd_name(c.type),
                     nfields(c.type), nfields(c.type) - 1);
            assert_string_equal(f->errmsg, want);
        }
        raw_entry(f, &c, -1, 0, -1, 1);
        assert_int_equal(decode_one(f, &out), LR_EMALFORMED);
        snprintf(want, sizeof want, "%s: expected %d fields, got %d", cmd_name(c.type),
                 nfields(c.type), nfields(c.type) + 1);
        assert_string_equal(f->errmsg, want);
    }
}

/* ---- generated bounds per field kind --------------------------------------------------- */

/* "a", "ab", ... of @n chars drawn from the id alphabet. */
static void fill_id(char *buf, size_t n)
{
    static const char alpha[] = "abcXYZ019_.-";
    for (size_t i = 0; i < n; i++) {
        buf[i] = alpha[i % (sizeof alpha - 1)];
    }
    buf[n] = '\0';
}

static void check_id_common(struct fixture *f, struct cmd *c, struct lr_str *v, int64_t a,
                            int allow_empty, const char *fname)
{
    struct lr_str saved = *v;
    char buf[256];
    fill_id(buf, (size_t)a); /* the longest id */
    *v = S(buf);
    expect_ok(f, c);
    fill_id(buf, (size_t)a + 1); /* one too long: 65 chars, or 57 for a game_id */
    *v = S(buf);
    expect_bad(f, c, LR_EINVAL, fname);
    *v = S("");
    if (allow_empty) {
        expect_ok(f, c);
    } else {
        expect_bad(f, c, LR_EINVAL, fname);
    }
    static const char *const bad[] = {"p 1", "p/1", "p:1", "p\xc3\xa9", "p\n", "p+1", "p@x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        *v = S(bad[i]);
        expect_bad(f, c, LR_EINVAL, fname);
    }
    *v = S("A-z_0.9");
    expect_ok(f, c);
    *v = saved;
}

static void check_ID(struct fixture *f, struct cmd *c, struct lr_str *v, int64_t a, int64_t b,
                     const char *fname)
{
    (void)b;
    check_id_common(f, c, v, a, 0, fname);
}

static void check_OPTID(struct fixture *f, struct cmd *c, struct lr_str *v, int64_t a,
                        int64_t b, const char *fname)
{
    (void)b;
    check_id_common(f, c, v, a, 1, fname);
}

/* @n code points cycling through 1-, 2-, 3- and 4-byte forms (or only 4-byte when @wide). */
static size_t fill_text(char *buf, size_t n, int wide)
{
    static const char *const cps[] = {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        const char *cp = cps[wide ? 3 : i % 4];
        memcpy(buf + len, cp, strlen(cp));
        len += strlen(cp);
    }
    buf[len] = '\0';
    return len;
}

static void check_TEXT(struct fixture *f, struct cmd *c, struct lr_str *v, int64_t a, int64_t b,
                       const char *fname)
{
    struct lr_str saved = *v;
    char buf[4 * 1024];
    for (int wide = 0; wide < 2; wide++) {
        /* The most code points allowed, multi-byte: more bytes than the bound, still fine. */
        fill_text(buf, (size_t)b, wide);
        *v = S(buf);
        expect_ok(f, c);
        fill_text(buf, (size_t)b + 1, wide);
        *v = S(buf);
        expect_bad(f, c, LR_EINVAL, fname);
    }
    fill_text(buf, (size_t)a, 0);
    *v = S(buf);
    expect_ok(f, c);
    if (a > 0) {
        *v = S("");
        expect_bad(f, c, LR_EINVAL, fname);
    }
    static const char *const bad[] = {
        "ab\xff",             /* never UTF-8 */
        "\x80x",              /* lone continuation */
        "x\xc3",              /* cut 2-byte form */
        "x\xe2\x82",          /* cut 3-byte form */
        "\xc3\x28",           /* bad continuation */
        "\xc0\x80",           /* overlong NUL */
        "\xc1\xbf",           /* overlong 0x7f */
        "\xe0\x80\xaf",       /* overlong '/' */
        "\xf0\x80\x80\xaf",   /* overlong '/' */
        "\xed\xa0\x80",       /* surrogate U+D800 */
        "\xf4\x90\x80\x80",   /* U+110000 */
        "\xf8\x88\x80\x80\x80", /* 5-byte form */
        "a\x01",              /* control characters */
        "\x1b[31m",
        "a\rb",
        "a\x7f",
        "a\xc2\x85", /* U+0085, a C1 control */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char t[32];
        snprintf(t, sizeof t, "N%s", bad[i]);
        *v = S(t);
        expect_bad(f, c, LR_EINVAL, fname);
    }
    /* An embedded NUL is a control character too. */
    v->p = "ab\0cd";
    v->len = 5;
    expect_bad(f, c, LR_EINVAL, fname);
    *v = S("tab\tand\nnewline \xe2\x82\xac \xf4\x8f\xbf\xbf");
    expect_ok(f, c);
    *v = saved;
}

static void check_IDEM(struct fixture *f, struct cmd *c, struct lr_str *v, int64_t a, int64_t b,
                       const char *fname)
{
    (void)a;
    (void)b;
    struct lr_str saved = *v;
    char buf[VALID_IDEM_MAX + 2];
    *v = S("");
    expect_ok(f, c);
    *v = S("1234567"); /* 7 chars */
    expect_bad(f, c, LR_EINVAL, fname);
    *v = S("12345678");
    expect_ok(f, c);
    memset(buf, '~', VALID_IDEM_MAX);
    buf[VALID_IDEM_MAX] = '\0';
    *v = S(buf);
    expect_ok(f, c);
    buf[VALID_IDEM_MAX] = ' ';
    buf[VALID_IDEM_MAX + 1] = '\0';
    *v = S(buf);
    expect_bad(f, c, LR_EINVAL, fname);
    static const char *const bad[] = {"1234567\x01", "abcdefg\x7f", "abc\xc3\xa9"
                                                                     "defg",
                                      "abcd\tefgh", "abcd\nefgh"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        *v = S(bad[i]);
        expect_bad(f, c, LR_EINVAL, fname);
    }
    *v = S(" !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~");
    expect_ok(f, c);
    *v = saved;
}

static void check_META(struct fixture *f, struct cmd *c, struct lr_str *v, int64_t a, int64_t b,
                       const char *fname)
{
    (void)a;
    (void)b;
    struct lr_str saved = *v;
    char buf[VALID_METADATA_MAX + 2];
    *v = S("");
    expect_ok(f, c);
    *v = S("{}");
    expect_ok(f, c);
    /* {"k":"xxx...x"}: exactly 256 bytes, then 257. */
    memset(buf, 'x', sizeof buf);
    memcpy(buf, "{\"k\":\"", 6);
    memcpy(buf + VALID_METADATA_MAX - 2, "\"}", 3);
    *v = S(buf);
    assert_int_equal(v->len, VALID_METADATA_MAX);
    expect_ok(f, c);
    memset(buf + VALID_METADATA_MAX - 2, 'x', 1);
    memcpy(buf + VALID_METADATA_MAX - 1, "\"}", 3);
    *v = S(buf);
    assert_int_equal(v->len, VALID_METADATA_MAX + 1);
    expect_bad(f, c, LR_EINVAL, fname);
    static const char *const bad[] = {"[1]", "{", "}", "x}", "{x", "\"{}\"", " {}", "1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        *v = S(bad[i]);
        expect_bad(f, c, LR_EINVAL, fname);
    }
    *v = saved;
}

static void check_I64(struct fixture *f, struct cmd *c, int64_t *v, int64_t a, int64_t b,
                      const char *fname)
{
    int64_t saved = *v;
    *v = a;
    expect_ok(f, c);
    *v = b;
    expect_ok(f, c);
    *v = a + (b - a) / 2;
    expect_ok(f, c);
    if (a > INT64_MIN) {
        *v = a - 1;
        expect_bad(f, c, LR_EINVAL, fname);
        *v = INT64_MIN;
        expect_bad(f, c, LR_EINVAL, fname);
    }
    if (b < INT64_MAX) {
        *v = b + 1;
        expect_bad(f, c, LR_EINVAL, fname);
        *v = INT64_MAX;
        expect_bad(f, c, LR_EINVAL, fname);
    }
    *v = saved;
}

static void check_BOOL(struct fixture *f, struct cmd *c, int *v, int64_t a, int64_t b,
                       const char *fname)
{
    (void)a;
    (void)b;
    (void)fname;
    int saved = *v;
    *v = 0;
    expect_ok(f, c);
    *v = 1;
    expect_ok(f, c);
    *v = saved;
}

static void check_PRIZES(struct fixture *f, struct cmd *c, struct cmd_prizes *v, int64_t a,
                         int64_t b, const char *fname)
{
    (void)a;
    (void)b;
    struct cmd_prizes saved = *v;
    char reward[4 * VALID_REWARD_MAX + 8];
    v->n = 1;
    v->items[0] = (struct cmd_prize){5, 5, S("x")};
    expect_ok(f, c);
    v->items[0] = (struct cmd_prize){5, 4, S("x")}; /* rank_to < rank_from */
    expect_bad(f, c, LR_EINVAL, fname);
    v->items[0] = (struct cmd_prize){0, 4, S("x")};
    expect_bad(f, c, LR_EINVAL, fname);
    v->items[0] = (struct cmd_prize){1, 1000001, S("x")};
    expect_bad(f, c, LR_EINVAL, fname);
    v->items[0] = (struct cmd_prize){1, 2, S("")};
    expect_bad(f, c, LR_EINVAL, fname);
    fill_text(reward, VALID_REWARD_MAX, 1);
    v->items[0] = (struct cmd_prize){1, 2, S(reward)};
    expect_ok(f, c);
    fill_text(reward, VALID_REWARD_MAX + 1, 0);
    v->items[0] = (struct cmd_prize){1, 2, S(reward)};
    expect_bad(f, c, LR_EINVAL, fname);
    v->items[0] = (struct cmd_prize){1, 2, S("a\xff")};
    expect_bad(f, c, LR_EINVAL, fname);
    /* A bad band after good ones is found too. */
    v->n = 3;
    v->items[0] = (struct cmd_prize){1, 1, S("a")};
    v->items[1] = (struct cmd_prize){2, 2, S("b")};
    v->items[2] = (struct cmd_prize){3, 2, S("c")};
    expect_bad(f, c, LR_EINVAL, fname);
    assert_non_null(strstr(f->errmsg, "[2]"));
    *v = saved;
}

#define CHECK_FIELD(kind, fname, a, b) check_##kind(f, &c, &x->fname, a, b, #fname);
#define CHECK_FN(code, NAME, name, flags)                                                      \
    static void check_fields_##name(struct fixture *f)                                         \
    {                                                                                          \
        struct cmd c = sample(CMD_##NAME);                                                     \
        struct cmd_##name *x = &c.u.name;                                                      \
        CMD_##NAME(CHECK_FIELD)                                                                \
    }
CMD_LIST(CHECK_FN)
#undef CHECK_FN

/* Every field of every command accepts its bounds and refuses what lies just past them. */
static void every_field_enforces_its_bounds(void **state)
{
    struct fixture *f = *state;
#define CHECK_CALL(code, NAME, name, flags) check_fields_##name(f);
    CMD_LIST(CHECK_CALL)
#undef CHECK_CALL
}

/* The named cases of API.md's conventions, spelled out. */
static void api_conventions_spelled_out(void **state)
{
    struct fixture *f = *state;
    char buf[512];
    struct cmd c = sample(CMD_SCORE);
    fill_id(buf, 65);
    c.u.score.player_id = S(buf);
    expect_bad(f, &c, LR_EINVAL, "player_id");
    assert_non_null(strstr(f->errmsg, "64"));
    c = sample(CMD_GAME_PUT);
    fill_id(buf, 57);
    c.u.game_put.game_id = S(buf);
    expect_bad(f, &c, LR_EINVAL, "game_id");
    assert_non_null(strstr(f->errmsg, "56"));
    fill_id(buf, 56);
    c.u.game_put.game_id = S(buf);
    expect_ok(f, &c);
    c = sample(CMD_PLAYER_PUT);
    fill_text(buf, 64, 1); /* 64 four-byte code points: 256 bytes */
    c.u.player_put.name = S(buf);
    expect_ok(f, &c);
    fill_text(buf, 65, 0);
    c.u.player_put.name = S(buf);
    expect_bad(f, &c, LR_EINVAL, "name");
    c = sample(CMD_SCORE);
    c.u.score.score = VALID_SCORE_MAX + 1;
    expect_bad(f, &c, LR_EINVAL, "score");
    c.u.score.score = -VALID_SCORE_MAX - 1;
    expect_bad(f, &c, LR_EINVAL, "score");
    c.u.score.score = -VALID_SCORE_MAX;
    expect_ok(f, &c);
    c.u.score.idempotency_key = S("abcdefg");
    expect_bad(f, &c, LR_EINVAL, "idempotency_key");
    /* struct cmd_prizes holds at most 32 bands, so 33 are packed by hand. */
    msgpack_sbuffer_clear(&f->sb);
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_int64(&f->pk, CMD_ENTRY_VERSION);
    msgpack_pack_array(&f->pk, 1);
    msgpack_pack_array(&f->pk, 2 + 9);
    msgpack_pack_int64(&f->pk, CMD_BOARD_PUT);
    msgpack_pack_int64(&f->pk, TS);
    pack_str(&f->pk, S("b1"));
    for (int i = 0; i < 5; i++) {
        msgpack_pack_int64(&f->pk, i == 2 ? 1 : 0);
    }
    msgpack_pack_array(&f->pk, CMD_PRIZES_MAX + 1);
    for (int i = 0; i < CMD_PRIZES_MAX + 1; i++) {
        msgpack_pack_array(&f->pk, 3);
        msgpack_pack_int64(&f->pk, i + 1);
        msgpack_pack_int64(&f->pk, i + 1);
        pack_str(&f->pk, S("r"));
    }
    pack_str(&f->pk, S(""));
    msgpack_pack_int64(&f->pk, 0); /* version */
    struct cmd out;
    assert_int_equal(decode_one(f, &out), LR_EINVAL);
    expect_msg_names(f->errmsg, "rewards");
    assert_non_null(strstr(f->errmsg, "32"));
}

/* ---- command header and envelope ------------------------------------------------------- */

/* Unknown command codes are a version error: a newer proposer's command, not garbage. */
static void unknown_command_code_is_version_error(void **state)
{
    struct fixture *f = *state;
    const int64_t codes[] = {0, CMD__TYPE_END, 99, -1, (1LL << 32) + CMD_SCORE, INT64_MIN};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        msgpack_sbuffer_clear(&f->sb);
        cmd_entry_begin(&f->pk, 1);
        msgpack_pack_array(&f->pk, 3);
        msgpack_pack_int64(&f->pk, codes[i]);
        msgpack_pack_int64(&f->pk, TS);
        pack_str(&f->pk, S("x"));
        struct cmd out;
        assert_int_equal(decode_one(f, &out), LR_EVERSION);
        assert_string_equal(f->errmsg, "command: unknown command code");
    }
    /* A code too big for int64 and a code of the wrong type. */
    msgpack_sbuffer_clear(&f->sb);
    cmd_entry_begin(&f->pk, 1);
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_uint64(&f->pk, UINT64_MAX);
    msgpack_pack_int64(&f->pk, TS);
    struct cmd out;
    assert_int_equal(decode_one(f, &out), LR_EVERSION);
    msgpack_sbuffer_clear(&f->sb);
    cmd_entry_begin(&f->pk, 1);
    msgpack_pack_array(&f->pk, 2);
    pack_str(&f->pk, S("score"));
    msgpack_pack_int64(&f->pk, TS);
    assert_int_equal(decode_one(f, &out), LR_EVERSION);
    /* Encoding an unknown type is refused before anything reaches the wire. */
    struct cmd bad = sample(CMD_SCORE);
    bad.type = CMD__TYPE_END;
    assert_int_equal(cmd_encode(&f->pk, &bad), LR_EINVAL);
}

/* The ts must be a time in [0, year 9999]. */
static void ts_out_of_range_is_malformed(void **state)
{
    struct fixture *f = *state;
    const int64_t bad[] = {-1, INT64_MIN, TS_MAX + 1, INT64_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cmd c = sample(CMD_PLAYER_PUT);
        c.ts = bad[i];
        struct cmd out;
        assert_int_equal(round_trip(f, &c, &out), LR_EMALFORMED);
        assert_string_equal(f->errmsg, "command: ts must be a time in ms");
    }
    msgpack_sbuffer_clear(&f->sb);
    cmd_entry_begin(&f->pk, 1);
    msgpack_pack_array(&f->pk, 2 + 1);
    msgpack_pack_int64(&f->pk, CMD_GAME_PUT);
    pack_str(&f->pk, S("0"));
    pack_str(&f->pk, S("g"));
    struct cmd out;
    assert_int_equal(decode_one(f, &out), LR_EMALFORMED);
    assert_non_null(strstr(f->errmsg, "ts"));
}

/* A command that is not an array of at least [code, ts] is malformed. */
static void command_not_an_array_is_malformed(void **state)
{
    struct fixture *f = *state;
    for (int shape = 0; shape < 4; shape++) {
        msgpack_sbuffer_clear(&f->sb);
        cmd_entry_begin(&f->pk, 1);
        switch (shape) {
        case 0:
            msgpack_pack_int64(&f->pk, CMD_SCORE);
            break;
        case 1:
            msgpack_pack_array(&f->pk, 1);
            msgpack_pack_int64(&f->pk, CMD_SCORE);
            break;
        case 2:
            msgpack_pack_array(&f->pk, 0);
            break;
        default:
            msgpack_pack_map(&f->pk, 1);
            msgpack_pack_int64(&f->pk, CMD_SCORE);
            msgpack_pack_int64(&f->pk, TS);
            break;
        }
        struct cmd out;
        assert_int_equal(decode_one(f, &out), LR_EMALFORMED);
        assert_string_equal(f->errmsg, "command: not an array [code, ts, ...]");
    }
}

/* Entries of another version are a version error whatever they hold. */
static void entry_version_is_checked(void **state)
{
    struct fixture *f = *state;
    const int64_t versions[] = {0, 2, -1, 255};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        msgpack_sbuffer_clear(&f->sb);
        msgpack_pack_array(&f->pk, 2);
        msgpack_pack_int64(&f->pk, versions[i]);
        msgpack_pack_array(&f->pk, 0);
        struct cmd_entry e;
        char want[64];
        assert_int_equal(decode_entry(f, &e), LR_EVERSION);
        snprintf(want, sizeof want, "entry: unsupported version %lld", (long long)versions[i]);
        assert_string_equal(f->errmsg, want);
    }
}

/* An entry that is not [version, [commands]] is malformed. */
static void entry_shape_is_checked(void **state)
{
    struct fixture *f = *state;
    for (int shape = 0; shape < 6; shape++) {
        msgpack_sbuffer_clear(&f->sb);
        switch (shape) {
        case 0: /* a bare command array */
            msgpack_pack_array(&f->pk, 0);
            break;
        case 1: /* three elements */
            msgpack_pack_array(&f->pk, 3);
            msgpack_pack_int64(&f->pk, 1);
            msgpack_pack_array(&f->pk, 0);
            msgpack_pack_nil(&f->pk);
            break;
        case 2: /* version as a string */
            msgpack_pack_array(&f->pk, 2);
            pack_str(&f->pk, S("1"));
            msgpack_pack_array(&f->pk, 0);
            break;
        case 3: /* a map */
            msgpack_pack_map(&f->pk, 1);
            msgpack_pack_int64(&f->pk, 1);
            msgpack_pack_array(&f->pk, 0);
            break;
        case 4: /* commands as a map */
            msgpack_pack_array(&f->pk, 2);
            msgpack_pack_int64(&f->pk, 1);
            msgpack_pack_map(&f->pk, 0);
            break;
        default: /* an integer */
            msgpack_pack_int64(&f->pk, 1);
            break;
        }
        struct cmd_entry e;
        assert_int_equal(decode_entry(f, &e), LR_EMALFORMED);
        assert_true(strncmp(f->errmsg, "entry: ", 7) == 0);
        if (shape == 4) {
            assert_string_equal(f->errmsg, "entry: commands must be an array");
        } else {
            assert_string_equal(f->errmsg, "entry: not [version, [commands]]");
        }
    }
}

/* Every proper prefix of a valid entry is truncated; bytes after one are refused. */
static void truncated_and_trailing_entries(void **state)
{
    struct fixture *f = *state;
    struct cmd cmds[NTYPES];
    for (size_t i = 0; i < NTYPES; i++) {
        cmds[i] = sample(all_types[i]);
    }
    encode_entry(f, cmds, NTYPES);
    size_t n = f->sb.size;
    char *full = calloc(1, n + CMD_ENTRY_ALIGN);
    assert_non_null(full);
    memcpy(full, f->sb.data, n);
    for (size_t len = 1; len < n; len++) {
        /* An exact-size copy, so a read past the prefix is caught by ASan. */
        char *cut = malloc(len);
        assert_non_null(cut);
        memcpy(cut, full, len);
        struct cmd_entry e;
        msgpack_unpacked_destroy(&f->up);
        msgpack_unpacked_init(&f->up);
        assert_int_equal(cmd_entry_decode(cut, len, &f->up, &e, f->errmsg), LR_EMALFORMED);
        assert_string_equal(f->errmsg, "entry: truncated or not msgpack");
        free(cut);
    }
    struct cmd_entry e;
    msgpack_unpacked_destroy(&f->up);
    msgpack_unpacked_init(&f->up);
    assert_int_equal(cmd_entry_decode(full, 0, &f->up, &e, f->errmsg), LR_EMALFORMED);
    /* Up to 7 zero bytes are raft padding; 8, or a non-zero one, are not. */
    for (size_t pad = 1; pad < CMD_ENTRY_ALIGN; pad++) {
        msgpack_unpacked_destroy(&f->up);
        msgpack_unpacked_init(&f->up);
        assert_int_equal(cmd_entry_decode(full, n + pad, &f->up, &e, f->errmsg), 0);
        assert_int_equal(e.n, NTYPES);
    }
    msgpack_unpacked_destroy(&f->up);
    msgpack_unpacked_init(&f->up);
    assert_int_equal(cmd_entry_decode(full, n + CMD_ENTRY_ALIGN, &f->up, &e, f->errmsg),
                     LR_EMALFORMED);
    assert_string_equal(f->errmsg, "entry: 8 trailing bytes");
    full[n] = (char)0xc0;
    msgpack_unpacked_destroy(&f->up);
    msgpack_unpacked_init(&f->up);
    assert_int_equal(cmd_entry_decode(full, n + 1, &f->up, &e, f->errmsg), LR_EMALFORMED);
    assert_string_equal(f->errmsg, "entry: non-zero padding");
    full[n] = 0;
    msgpack_unpacked_destroy(&f->up);
    msgpack_unpacked_init(&f->up);
    assert_int_equal(cmd_entry_decode(full, n, &f->up, &e, f->errmsg), 0);
    assert_int_equal(e.n, NTYPES);
    free(full);
    /* Bytes that are not msgpack at all. */
    msgpack_unpacked_destroy(&f->up);
    msgpack_unpacked_init(&f->up);
    assert_int_equal(cmd_entry_decode("\xc1", 1, &f->up, &e, f->errmsg), LR_EMALFORMED);
    assert_string_equal(f->errmsg, "entry: truncated or not msgpack");
}

/* Headers that claim more elements than the bytes hold are refused before anything is
 * allocated for them (msgpack-c would reserve 24 bytes per claimed element). */
static void huge_claims_are_refused_cheaply(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *p;
        size_t n;
    } bufs[] = {
        {"\xdd\xff\xff\xff\xff", 5},                      /* array of 2^32-1 */
        {"\xdf\xff\xff\xff\xff", 5},                      /* map of 2^32-1 */
        {"\x92\x01\xdd\x0f\xff\xff\xff", 7},            /* [1, array of 2^28-1] */
        {"\x92\x01\x91\xdd\xff\xff\xff\xf0\x08", 9},  /* [1, [array of ~2^32]] */
        {"\x92\x01\x91\xdb\xff\xff\xff\xff", 8},       /* [1, [str of 4 GiB]] */
    };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        struct cmd_entry e;
        msgpack_unpacked_destroy(&f->up);
        msgpack_unpacked_init(&f->up);
        assert_int_equal(cmd_entry_decode(bufs[i].p, bufs[i].n, &f->up, &e, f->errmsg),
                         LR_EMALFORMED);
        assert_string_equal(f->errmsg, "entry: truncated or not msgpack");
    }
}

/* An entry may carry CMD_ENTRY_MAX commands, not one more. */
static void entry_command_limit(void **state)
{
    struct fixture *f = *state;
    struct cmd c = sample(CMD_GAME_PUT);
    struct cmd_entry e;
    for (uint32_t n = CMD_ENTRY_MAX; n <= CMD_ENTRY_MAX + 1; n++) {
        msgpack_sbuffer_clear(&f->sb);
        assert_int_equal(cmd_entry_begin(&f->pk, n), 0);
        for (uint32_t i = 0; i < n; i++) {
            assert_int_equal(cmd_encode(&f->pk, &c), 0);
        }
        int rv = decode_entry(f, &e);
        if (n == CMD_ENTRY_MAX) {
            assert_int_equal(rv, 0);
            assert_int_equal(e.n, CMD_ENTRY_MAX);
        } else {
            assert_int_equal(rv, LR_ETOOBIG);
            assert_string_equal(f->errmsg, "entry: 4097 commands (at most 4096)");
        }
    }
    /* An empty entry is valid and holds nothing. */
    encode_entry(f, NULL, 0);
    assert_int_equal(decode_entry(f, &e), 0);
    assert_int_equal(e.n, 0);
}

/* ---- request hash ---------------------------------------------------------------------- */

static void hash_differs(const struct cmd *c, uint64_t h0, const char *fname)
{
    if (cmd_request_hash(c) == h0) {
        fail_msg("%s: changing %s left the request hash unchanged", cmd_name(c->type), fname);
    }
}

static void hash_str_field(struct cmd *c, struct lr_str *v, const char *fname)
{
    uint64_t h0 = cmd_request_hash(c);
    struct lr_str saved = *v;
    /* Same bytes at another address: same request. */
    char copy[4096];
    memcpy(copy, v->p, v->len);
    v->p = copy;
    assert_int_equal(cmd_request_hash(c), h0);
    /* One byte changed, one byte more, one byte less. */
    char alt[4096];
    memcpy(alt, saved.p, saved.len);
    alt[saved.len] = 'q';
    v->p = alt;
    v->len = saved.len + 1;
    hash_differs(c, h0, fname);
    if (saved.len > 0) {
        alt[0] ^= 1;
        v->len = saved.len;
        hash_differs(c, h0, fname);
        alt[0] ^= 1;
        v->len = saved.len - 1;
        hash_differs(c, h0, fname);
    }
    *v = saved;
    assert_int_equal(cmd_request_hash(c), h0);
}
#define HASH_ID(c, v, n) hash_str_field(c, v, n)
#define HASH_OPTID(c, v, n) hash_str_field(c, v, n)
#define HASH_TEXT(c, v, n) hash_str_field(c, v, n)
#define HASH_META(c, v, n) hash_str_field(c, v, n)

static void hash_idem_field(struct cmd *c, struct lr_str *v, const char *fname)
{
    (void)fname;
    uint64_t h0 = cmd_request_hash(c);
    struct lr_str saved = *v;
    *v = S("another-key-0002");
    assert_int_equal(cmd_request_hash(c), h0);
    *v = S("");
    assert_int_equal(cmd_request_hash(c), h0);
    *v = saved;
}
#define HASH_IDEM(c, v, n) hash_idem_field(c, v, n)

static void hash_i64_field(struct cmd *c, int64_t *v, const char *fname)
{
    uint64_t h0 = cmd_request_hash(c);
    int64_t saved = *v;
    *v = saved + 1;
    hash_differs(c, h0, fname);
    *v = -saved - 1;
    hash_differs(c, h0, fname);
    *v = saved;
}
#define HASH_I64(c, v, n) hash_i64_field(c, v, n)

static void hash_bool_field(struct cmd *c, int *v, const char *fname)
{
    uint64_t h0 = cmd_request_hash(c);
    *v = !*v;
    hash_differs(c, h0, fname);
    *v = !*v;
}
#define HASH_BOOL(c, v, n) hash_bool_field(c, v, n)

static void hash_prizes_field(struct cmd *c, struct cmd_prizes *v, const char *fname)
{
    uint64_t h0 = cmd_request_hash(c);
    struct cmd_prizes saved = *v;
    assert_true(v->n > 0);
    v->items[0].rank_to++;
    hash_differs(c, h0, fname);
    *v = saved;
    v->items[0].rank_from++;
    hash_differs(c, h0, fname);
    *v = saved;
    v->items[0].reward = S("bronze");
    hash_differs(c, h0, fname);
    *v = saved;
    v->n--;
    hash_differs(c, h0, fname);
    *v = saved;
}
#define HASH_PRIZES(c, v, n) hash_prizes_field(c, v, n)

#define HASH_FIELD(kind, fname, a, b) HASH_##kind(&c, &x->fname, #fname);
#define HASH_FN(code, NAME, name, flags)                                                       \
    static void hash_fields_##name(void)                                                       \
    {                                                                                          \
        struct cmd c = sample(CMD_##NAME);                                                     \
        struct cmd_##name *x = &c.u.name;                                                      \
        CMD_##NAME(HASH_FIELD)                                                                 \
    }
CMD_LIST(HASH_FN)
#undef HASH_FN

/* The request hash changes with every field but the idempotency key, and not with ts. */
static void request_hash_covers_every_field(void **state)
{
    (void)state;
#define HASH_CALL(code, NAME, name, flags) hash_fields_##name();
    CMD_LIST(HASH_CALL)
#undef HASH_CALL
    for (size_t i = 0; i < NTYPES; i++) {
        struct cmd c = sample(all_types[i]);
        uint64_t h0 = cmd_request_hash(&c);
        c.ts = 0;
        assert_int_equal(cmd_request_hash(&c), h0);
        /* Different commands are different requests. */
        for (size_t j = 0; j < i; j++) {
            struct cmd d = sample(all_types[j]);
            assert_int_not_equal(cmd_request_hash(&d), h0);
        }
    }
}

/* Bytes moved from one string field to the next make a different request. */
static void request_hash_keeps_field_boundaries(void **state)
{
    (void)state;
    struct cmd x = sample(CMD_UNLOCK);
    struct cmd y = sample(CMD_UNLOCK);
    x.u.unlock.game_id = S("ab");
    x.u.unlock.achievement_id = S("c");
    y.u.unlock.game_id = S("a");
    y.u.unlock.achievement_id = S("bc");
    assert_int_not_equal(cmd_request_hash(&x), cmd_request_hash(&y));
    x.u.unlock.idempotency_key = S("zzzzzzzz");
    y.u.unlock.idempotency_key = S("yyyyyyyy");
    y.u.unlock.game_id = S("ab");
    y.u.unlock.achievement_id = S("c");
    y.ts = 1;
    assert_int_equal(cmd_request_hash(&x), cmd_request_hash(&y));
}

/* ---- valid.h --------------------------------------------------------------------------- */

/* valid_id takes exactly [A-Za-z0-9_.-] and 1..max characters. */
static void valid_id_alphabet_and_length(void **state)
{
    (void)state;
    for (int ch = 0; ch < 256; ch++) {
        char s[2] = {(char)ch, 0};
        int want = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
        assert_int_equal(valid_id(s, 1, VALID_ID_MAX), want);
    }
    char buf[VALID_ID_MAX + 2];
    memset(buf, 'a', sizeof buf);
    assert_true(valid_id(buf, VALID_ID_MAX, VALID_ID_MAX));
    assert_false(valid_id(buf, VALID_ID_MAX + 1, VALID_ID_MAX));
    assert_true(valid_id(buf, VALID_GAME_ID_MAX, VALID_GAME_ID_MAX));
    assert_false(valid_id(buf, VALID_GAME_ID_MAX + 1, VALID_GAME_ID_MAX));
    assert_false(valid_id(buf, 0, VALID_ID_MAX));
    assert_false(valid_id("ab\0", 3, VALID_ID_MAX));
    /* Only @len bytes are read. */
    assert_true(valid_id("ab/", 2, VALID_ID_MAX));
}

/* valid_text counts code points, not bytes, and refuses bad UTF-8 and controls. */
static void valid_text_counts_code_points(void **state)
{
    (void)state;
    char buf[1024];
    size_t n = fill_text(buf, 64, 1);
    assert_int_equal(n, 256);
    assert_true(valid_text(buf, n, 1, 64));
    assert_false(valid_text(buf, n, 1, 63));
    assert_false(valid_text(buf, n, 65, 100));
    assert_true(valid_text("", 0, 0, 10));
    assert_false(valid_text("", 0, 1, 10));
    /* A multi-byte form cut by @len is refused. */
    assert_false(valid_text("\xe2\x82\xac", 2, 0, 10));
    assert_true(valid_text("\xe2\x82\xac", 3, 1, 1));
    /* The boundaries of each form. */
    assert_true(valid_text("\xc2\x80", 2, 1, 1) == 0); /* U+0080 is a C1 control */
    assert_true(valid_text("\xc2\xa0", 2, 1, 1));
    assert_true(valid_text("\xdf\xbf", 2, 1, 1));
    assert_true(valid_text("\xe0\xa0\x80", 3, 1, 1));
    assert_true(valid_text("\xed\x9f\xbf", 3, 1, 1));  /* U+D7FF */
    assert_false(valid_text("\xed\xbf\xbf", 3, 1, 1)); /* U+DFFF */
    assert_true(valid_text("\xee\x80\x80", 3, 1, 1));  /* U+E000 */
    assert_true(valid_text("\xef\xbf\xbf", 3, 1, 1));
    assert_true(valid_text("\xf0\x90\x80\x80", 4, 1, 1));
    assert_true(valid_text("\xf4\x8f\xbf\xbf", 4, 1, 1));
    assert_false(valid_text("\xf4\x90\x80\x80", 4, 1, 1));
    assert_false(valid_text("\xf5\x80\x80\x80", 4, 1, 1));
    /* Every C0 control but tab and newline, DEL and the C1 controls are refused. */
    for (int ch = 0; ch < 0x20; ch++) {
        char s[1] = {(char)ch};
        assert_int_equal(valid_text(s, 1, 1, 1), ch == '\t' || ch == '\n');
    }
    assert_false(valid_text("\x7f", 1, 1, 1));
    assert_false(valid_text("\xc2\x9f", 2, 1, 1));
    assert_true(valid_text("~", 1, 1, 1));
}

/* valid_idem takes 8..128 printable ASCII characters. */
static void valid_idem_printable_ascii(void **state)
{
    (void)state;
    char buf[VALID_IDEM_MAX + 1];
    memset(buf, 'k', sizeof buf);
    assert_false(valid_idem(buf, VALID_IDEM_MIN - 1));
    assert_true(valid_idem(buf, VALID_IDEM_MIN));
    assert_true(valid_idem(buf, VALID_IDEM_MAX));
    assert_false(valid_idem(buf, VALID_IDEM_MAX + 1));
    for (int ch = 0; ch < 256; ch++) {
        buf[3] = (char)ch;
        assert_int_equal(valid_idem(buf, VALID_IDEM_MIN), ch >= 0x20 && ch <= 0x7e);
    }
}

/* valid_score is exactly ±(2^53-1). */
static void valid_score_bounds(void **state)
{
    (void)state;
    assert_true(valid_score(0));
    assert_true(valid_score(9007199254740991LL));
    assert_true(valid_score(-9007199254740991LL));
    assert_false(valid_score(9007199254740992LL));
    assert_false(valid_score(-9007199254740992LL));
    assert_false(valid_score(INT64_MIN));
    assert_false(valid_score(INT64_MAX));
}

/* ---- cursor.h -------------------------------------------------------------------------- */

/* base64url without padding, written here independently of cursor.c. */
static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = a[(acc >> bits) & 63];
        }
    }
    if (bits > 0) {
        out[o++] = a[(acc << (6 - bits)) & 63];
    }
    out[o] = '\0';
}

static void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

/* The raw bytes of a key cursor as cursor.h documents them. */
static size_t key_bytes(unsigned char *b, int version, int kind, int64_t a, int64_t bb,
                        int64_t t, const char *id, size_t idlen)
{
    b[0] = (unsigned char)version;
    b[1] = (unsigned char)kind;
    put_be64(b + 2, (uint64_t)a);
    put_be64(b + 10, (uint64_t)bb);
    put_be64(b + 18, (uint64_t)t);
    b[26] = (unsigned char)idlen;
    memcpy(b + 27, id, idlen);
    return 27 + idlen;
}

static int64_t random_i64(struct testrng *r)
{
    switch (testrng_below(r, 4)) {
    case 0:
        return (int64_t)testrng_next(r);
    case 1:
        return (int64_t)testrng_below(r, 1000) - 500;
    case 2:
        return INT64_MIN + (int64_t)testrng_below(r, 3);
    default:
        return INT64_MAX - (int64_t)testrng_below(r, 3);
    }
}

/* Board cursors decode to the key and id they were made from; the form is documented. */
static void cursor_key_round_trips(void **state)
{
    struct fixture *f = *state;
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
    for (int i = 0; i < 20000; i++) {
        struct rankkey k = {random_i64(&f->rng), random_i64(&f->rng), random_i64(&f->rng), 7, 0,
                            NULL};
        char id[VALID_ID_MAX + 1];
        size_t idlen = 1 + testrng_below(&f->rng, VALID_ID_MAX);
        for (size_t j = 0; j < idlen; j++) {
            id[j] = alpha[testrng_below(&f->rng, sizeof alpha - 1)];
        }
        char out[CURSOR_MAX];
        assert_int_equal(cursor_encode_key(&k, id, idlen, out), 0);
        assert_true(strlen(out) < CURSOR_MAX);
        /* The bytes documented in cursor.h, encoded here independently. */
        unsigned char raw[128];
        char want[CURSOR_MAX];
        b64url(raw, key_bytes(raw, 1, 1, k.a, k.b, k.t, id, idlen), want);
        assert_string_equal(out, want);
        struct rankkey back;
        char idbuf[VALID_ID_MAX + 1];
        assert_int_equal(cursor_decode_key(out, strlen(out), &back, idbuf), 0);
        assert_int_equal(back.a, k.a);
        assert_int_equal(back.b, k.b);
        assert_int_equal(back.t, k.t);
        assert_int_equal(back.pid, RANKKEY_FOREIGN);
        assert_int_equal(back.idlen, idlen);
        assert_ptr_equal(back.id, idbuf);
        assert_memory_equal(back.id, id, idlen);
        assert_int_equal(idbuf[idlen], '\0');
        uint64_t seq;
        assert_int_equal(cursor_decode_seq(out, strlen(out), &seq), LR_EINVAL);
    }
    struct rankkey k = {0, 0, 0, 0, 0, NULL};
    char out[CURSOR_MAX];
    char id[VALID_ID_MAX + 2];
    memset(id, 'a', sizeof id);
    assert_int_equal(cursor_encode_key(&k, id, 0, out), LR_EINVAL);
    assert_int_equal(cursor_encode_key(&k, id, VALID_ID_MAX + 1, out), LR_EINVAL);
}

/* History cursors decode to their sequence number. */
static void cursor_seq_round_trips(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 20000; i++) {
        uint64_t seq = i == 0 ? 0 : (i == 1 ? UINT64_MAX : testrng_next(&f->rng));
        char out[CURSOR_MAX];
        assert_int_equal(cursor_encode_seq(seq, out), 0);
        unsigned char raw[10] = {1, 2};
        char want[CURSOR_MAX];
        put_be64(raw + 2, seq);
        b64url(raw, sizeof raw, want);
        assert_string_equal(out, want);
        uint64_t back = ~seq;
        assert_int_equal(cursor_decode_seq(out, strlen(out), &back), 0);
        assert_int_equal(back, seq);
        struct rankkey k;
        char idbuf[VALID_ID_MAX + 1];
        assert_int_equal(cursor_decode_key(out, strlen(out), &k, idbuf), LR_EINVAL);
    }
}

/* Cursors of another version, kind or inner shape are refused. */
static void cursor_rejects_wrong_version_and_shape(void **state)
{
    (void)state;
    unsigned char raw[128];
    char s[CURSOR_MAX * 2];
    struct rankkey k;
    char idbuf[VALID_ID_MAX + 1];
    uint64_t seq;
    b64url(raw, key_bytes(raw, 1, 1, 1, 2, 3, "p1", 2), s);
    assert_int_equal(cursor_decode_key(s, strlen(s), &k, idbuf), 0);
    b64url(raw, key_bytes(raw, 2, 1, 1, 2, 3, "p1", 2), s);
    assert_int_equal(cursor_decode_key(s, strlen(s), &k, idbuf), LR_EINVAL);
    b64url(raw, key_bytes(raw, 0, 1, 1, 2, 3, "p1", 2), s);
    assert_int_equal(cursor_decode_key(s, strlen(s), &k, idbuf), LR_EINVAL);
    b64url(raw, key_bytes(raw, 1, 2, 1, 2, 3, "p1", 2), s);
    assert_int_equal(cursor_decode_key(s, strlen(s), &k, idbuf), LR_EINVAL);
    b64url(raw, key_bytes(raw, 1, 1, 1, 2, 3, "p/1", 3), s); /* not an id */
    assert_int_equal(cursor_decode_key(s, strlen(s), &k, idbuf), LR_EINVAL);
    size_t n = key_bytes(raw, 1, 1, 1, 2, 3, "p1", 2);
    raw[26] = 3; /* id length disagrees */
    b64url(raw, n, s);
    assert_int_equal(cursor_decode_key(s, strlen(s), &k, idbuf), LR_EINVAL);
    raw[26] = 0; /* empty id */
    b64url(raw, 27, s);
    assert_int_equal(cursor_decode_key(s, strlen(s), &k, idbuf), LR_EINVAL);
    char longid[VALID_ID_MAX + 1];
    memset(longid, 'a', sizeof longid);
    b64url(raw, key_bytes(raw, 1, 1, 1, 2, 3, longid, VALID_ID_MAX + 1), s);
    assert_int_equal(cursor_decode_key(s, strlen(s), &k, idbuf), LR_EINVAL);
    unsigned char sraw[11] = {1, 2, 0, 0, 0, 0, 0, 0, 0, 9, 0};
    b64url(sraw, 10, s);
    assert_int_equal(cursor_decode_seq(s, strlen(s), &seq), 0);
    assert_int_equal(seq, 9);
    b64url(sraw, 11, s); /* one byte too many */
    assert_int_equal(cursor_decode_seq(s, strlen(s), &seq), LR_EINVAL);
    b64url(sraw, 9, s); /* one too few */
    assert_int_equal(cursor_decode_seq(s, strlen(s), &seq), LR_EINVAL);
    sraw[0] = 2;
    b64url(sraw, 10, s);
    assert_int_equal(cursor_decode_seq(s, strlen(s), &seq), LR_EINVAL);
    sraw[0] = 1;
    sraw[1] = 1;
    b64url(sraw, 10, s);
    assert_int_equal(cursor_decode_seq(s, strlen(s), &seq), LR_EINVAL);
}

/* Every proper prefix of a cursor, and every non-canonical spelling, is refused. */
static void cursor_rejects_truncated_and_noncanonical(void **state)
{
    (void)state;
    struct rankkey key = {-5, 6, 1795350660123LL, 0, 0, NULL};
    char kc[CURSOR_MAX];
    char sc[CURSOR_MAX];
    struct rankkey k;
    char idbuf[VALID_ID_MAX + 1];
    uint64_t seq;
    assert_int_equal(cursor_encode_key(&key, "player-7", 8, kc), 0);
    assert_int_equal(cursor_encode_seq(0x0102030405060708ULL, sc), 0);
    for (size_t len = 0; len < strlen(kc); len++) {
        assert_int_equal(cursor_decode_key(kc, len, &k, idbuf), LR_EINVAL);
    }
    for (size_t len = 0; len < strlen(sc); len++) {
        assert_int_equal(cursor_decode_seq(sc, len, &seq), LR_EINVAL);
    }
    /* A seq cursor is 10 bytes = 80 bits in 14 chars: the last 4 bits must be zero. */
    assert_int_equal(strlen(sc), 14);
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(a, sc[13]) - a);
    for (int low = 1; low < 16; low++) {
        char t[CURSOR_MAX];
        strcpy(t, sc);
        t[13] = a[v ^ low];
        assert_int_equal(cursor_decode_seq(t, strlen(t), &seq), LR_EINVAL);
    }
    /* Padding, the standard alphabet, whitespace and NUL are not ours. */
    char t[CURSOR_MAX + 8];
    snprintf(t, sizeof t, "%s==", sc);
    assert_int_equal(cursor_decode_seq(t, strlen(t), &seq), LR_EINVAL);
    for (size_t i = 0; i < strlen(sc); i++) {
        const char repl[] = {'+', '/', '=', ' ', '\0', '.', '\xff'};
        for (size_t j = 0; j < sizeof repl; j++) {
            strcpy(t, sc);
            t[i] = repl[j];
            assert_int_equal(cursor_decode_seq(t, strlen(sc), &seq), LR_EINVAL);
        }
    }
    /* Too long to be a cursor at all. */
    char big[CURSOR_MAX + 4];
    memset(big, 'A', sizeof big);
    assert_int_equal(cursor_decode_key(big, CURSOR_MAX, &k, idbuf), LR_EINVAL);
    assert_int_equal(cursor_decode_seq(big, CURSOR_MAX, &seq), LR_EINVAL);
}

/* Random strings are refused, and anything accepted is the canonical spelling of its value. */
static void cursor_random_strings(void **state)
{
    struct fixture *f = *state;
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int accepted = 0;
    for (int i = 0; i < 100000; i++) {
        char s[CURSOR_MAX + 16];
        size_t len = testrng_below(&f->rng, sizeof s);
        int any_byte = (int)testrng_below(&f->rng, 2);
        for (size_t j = 0; j < len; j++) {
            s[j] = any_byte ? (char)testrng_next(&f->rng) : a[testrng_below(&f->rng, 64)];
        }
        /* Exact-size copy: reads past @len are ASan errors. */
        char *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, s, len);
        struct rankkey k;
        char idbuf[VALID_ID_MAX + 1];
        uint64_t seq;
        char again[CURSOR_MAX];
        if (cursor_decode_key(p, len, &k, idbuf) == 0) {
            assert_int_equal(cursor_encode_key(&k, k.id, k.idlen, again), 0);
            assert_int_equal(strlen(again), len);
            assert_memory_equal(again, p, len);
            accepted++;
        }
        if (cursor_decode_seq(p, len, &seq) == 0) {
            assert_int_equal(cursor_encode_seq(seq, again), 0);
            assert_int_equal(strlen(again), len);
            assert_memory_equal(again, p, len);
            accepted++;
        }
        free(p);
    }
    assert_true(accepted < 10);
}

/* ---- mp.h ------------------------------------------------------------------------------ */

/* Integers read back from every msgpack width, negative ones included. */
static void mp_ints_at_every_width(void **state)
{
    struct fixture *f = *state;
    static const struct {
        int64_t v;
        int width; /* 0: smallest encoding; else the fixed form of that many bytes */
        int sign;  /* 1: int form, 0: uint form */
        size_t size;
    } cases[] = {
        {0, 0, 0, 1},
        {127, 0, 0, 1},
        {-1, 0, 1, 1},
        {-32, 0, 1, 1},
        {-33, 0, 1, 2},
        {128, 1, 0, 2},
        {255, 1, 0, 2},
        {0, 1, 0, 2},
        {256, 2, 0, 3},
        {65535, 2, 0, 3},
        {65536, 4, 0, 5},
        {4294967295LL, 4, 0, 5},
        {4294967296LL, 8, 0, 9},
        {INT64_MAX, 8, 0, 9},
        {-128, 1, 1, 2},
        {127, 1, 1, 2},
        {-129, 2, 1, 3},
        {INT16_MIN, 2, 1, 3},
        {INT16_MAX, 2, 1, 3},
        {INT32_MIN, 4, 1, 5},
        {INT32_MAX, 4, 1, 5},
        {(int64_t)INT32_MIN - 1, 8, 1, 9},
        {INT64_MIN, 8, 1, 9},
        {5, 8, 1, 9},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        msgpack_sbuffer_clear(&f->sb);
        int64_t v = cases[i].v;
        switch (cases[i].width * 2 + cases[i].sign) {
        case 0:
        case 1:
            msgpack_pack_int64(&f->pk, v);
            break;
        case 2:
            msgpack_pack_fix_uint8(&f->pk, (uint8_t)v);
            break;
        case 3:
            msgpack_pack_fix_int8(&f->pk, (int8_t)v);
            break;
        case 4:
            msgpack_pack_fix_uint16(&f->pk, (uint16_t)v);
            break;
        case 5:
            msgpack_pack_fix_int16(&f->pk, (int16_t)v);
            break;
        case 8:
            msgpack_pack_fix_uint32(&f->pk, (uint32_t)v);
            break;
        case 9:
            msgpack_pack_fix_int32(&f->pk, (int32_t)v);
            break;
        case 16:
            msgpack_pack_fix_uint64(&f->pk, (uint64_t)v);
            break;
        case 17:
            msgpack_pack_fix_int64(&f->pk, v);
            break;
        default:
            fail();
        }
        assert_int_equal(f->sb.size, cases[i].size);
        struct mp r;
        mp_init(&r, f->sb.data, f->sb.size);
        assert_int_equal(mp_i64(&r), v);
        assert_int_equal(r.err, 0);
        assert_true(mp_done(&r));
        /* mp_skip steps over the same bytes. */
        mp_init(&r, f->sb.data, f->sb.size);
        mp_skip(&r);
        assert_true(mp_done(&r));
    }
    /* A uint64 beyond INT64_MAX is an error, not a negative number. */
    msgpack_sbuffer_clear(&f->sb);
    msgpack_pack_uint64(&f->pk, (uint64_t)INT64_MAX + 1);
    struct mp r;
    mp_init(&r, f->sb.data, f->sb.size);
    assert_int_equal(mp_i64(&r), 0);
    assert_int_equal(r.err, 1);
}

/* Strings and binaries of every width are borrowed in place. */
static void mp_strings_and_bins(void **state)
{
    struct fixture *f = *state;
    static const size_t lens[] = {0, 1, 31, 32, 255, 256, 65535, 65536, 100000};
    char *body = malloc(100000);
    assert_non_null(body);
    for (size_t i = 0; i < 100000; i++) {
        body[i] = (char)('a' + i % 26);
    }
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        for (int bin = 0; bin < 2; bin++) {
            msgpack_sbuffer_clear(&f->sb);
            if (bin) {
                msgpack_pack_bin_with_body(&f->pk, body, lens[i]);
            } else {
                msgpack_pack_str_with_body(&f->pk, body, lens[i]);
            }
            struct mp r;
            mp_init(&r, f->sb.data, f->sb.size);
            struct lr_str s = mp_str(&r);
            assert_int_equal(r.err, 0);
            assert_int_equal(s.len, lens[i]);
            assert_ptr_equal(s.p, f->sb.data + f->sb.size - lens[i]);
            assert_memory_equal(s.p, body, lens[i]);
            assert_true(mp_done(&r));
        }
    }
    free(body);
    /* str32 and bin32 headers, written by hand. */
    const unsigned char str32[] = {0xdb, 0, 0, 0, 3, 'a', 'b', 'c'};
    const unsigned char bin32[] = {0xc6, 0, 0, 0, 2, 'x', 'y'};
    struct mp r;
    mp_init(&r, str32, sizeof str32);
    assert_int_equal(mp_str(&r).len, 3);
    assert_true(mp_done(&r));
    mp_init(&r, bin32, sizeof bin32);
    assert_int_equal(mp_str(&r).len, 2);
    assert_true(mp_done(&r));
    /* A length past the end of the buffer. */
    const unsigned char longer[] = {0xa5, 'a', 'b'};
    mp_init(&r, longer, sizeof longer);
    struct lr_str s = mp_str(&r);
    assert_int_equal(r.err, 1);
    assert_int_equal(s.len, 0);
}

/* Booleans, nil, arrays and maps of every header width. */
static void mp_bool_nil_and_containers(void **state)
{
    (void)state;
    const unsigned char buf[] = {
        0xc3, 0xc2,                   /* true, false */
        0xc0,                         /* nil */
        0x93,                         /* fixarray 3 */
        0xdc, 0x01, 0x00,             /* array16 256 */
        0xdd, 0x00, 0x01, 0x00, 0x00, /* array32 65536 */
        0x8f,                         /* fixmap 15 */
        0xde, 0xff, 0xff,             /* map16 65535 */
        0xdf, 0xff, 0xff, 0xff, 0xff, /* map32 */
    };
    struct mp r;
    mp_init(&r, buf, sizeof buf);
    assert_int_equal(mp_bool(&r), 1);
    assert_int_equal(mp_bool(&r), 0);
    assert_int_equal(mp_nil(&r), 1);
    assert_int_equal(mp_nil(&r), 0); /* not nil: not consumed */
    assert_int_equal(mp_array(&r), 3);
    assert_int_equal(mp_array(&r), 256);
    assert_int_equal(mp_array(&r), 65536);
    assert_int_equal(mp_map(&r), 15);
    assert_int_equal(mp_map(&r), 65535);
    assert_int_equal(mp_map(&r), UINT32_MAX);
    assert_true(mp_done(&r));
    assert_int_equal(mp_nil(&r), 0); /* at the end: not nil, no error */
    assert_int_equal(r.err, 0);
}

/* A read of the wrong type fails and latches: later reads return nothing and move nothing. */
static void mp_errors_latch(void **state)
{
    (void)state;
    const unsigned char buf[] = {0xa1, 'x', 0x05, 0x93};
    struct mp r;
    mp_init(&r, buf, sizeof buf);
    assert_int_equal(mp_i64(&r), 0); /* a string, not an int */
    assert_int_equal(r.err, 1);
    const unsigned char *at = r.p;
    assert_int_equal(mp_i64(&r), 0);
    assert_int_equal(mp_str(&r).len, 0);
    assert_int_equal(mp_array(&r), 0);
    assert_int_equal(mp_bool(&r), 0);
    assert_int_equal(mp_nil(&r), 0);
    mp_skip(&r);
    assert_ptr_equal(r.p, at);
    assert_int_equal(r.err, 1);
    assert_false(mp_done(&r));
    /* Each reader refuses the others' types. */
    mp_init(&r, buf + 2, 1);
    assert_int_equal(mp_bool(&r), 0);
    assert_int_equal(r.err, 1);
    mp_init(&r, buf + 3, 1);
    assert_int_equal(mp_map(&r), 0);
    assert_int_equal(r.err, 1);
    mp_init(&r, buf, 2);
    assert_int_equal(mp_array(&r), 0);
    assert_int_equal(r.err, 1);
    /* A value left unread means not done. */
    mp_init(&r, buf + 2, 2);
    assert_int_equal(mp_i64(&r), 5);
    assert_false(mp_done(&r));
}

/* Pack a nested value of every type: what mp_skip must step over. */
static void pack_nested(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pack_str(pk, S("a"));
    msgpack_pack_array(pk, 7);
    msgpack_pack_int64(pk, -1000000);
    msgpack_pack_uint64(pk, UINT64_MAX); /* skippable though mp_i64 refuses it */
    msgpack_pack_double(pk, 1.5);
    msgpack_pack_float(pk, 2.5f);
    msgpack_pack_nil(pk);
    msgpack_pack_true(pk);
    msgpack_pack_bin_with_body(pk, "\0\1\2", 3);
    msgpack_pack_int64(pk, 7);
    msgpack_pack_map(pk, 1);
    msgpack_pack_array(pk, 0);
    msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 0);
    msgpack_pack_str_with_body(pk, "deep", 4);
    pack_str(pk, S("z"));
    msgpack_pack_array(pk, 20);
    for (int i = 0; i < 20; i++) {
        msgpack_pack_int64(pk, (int64_t)1 << (i * 3));
    }
    msgpack_pack_int64(pk, 424242); /* the sentinel after the value */
}

/* mp_skip steps over any nested value and leaves the reader on the next one. */
static void mp_skip_nested(void **state)
{
    struct fixture *f = *state;
    msgpack_sbuffer_clear(&f->sb);
    pack_nested(&f->pk);
    struct mp r;
    mp_init(&r, f->sb.data, f->sb.size);
    mp_skip(&r);
    assert_int_equal(r.err, 0);
    assert_int_equal(mp_i64(&r), 424242);
    assert_true(mp_done(&r));
    /* Nesting is bounded: 30 levels are skipped, 100 refused. */
    unsigned char deep[101];
    memset(deep, 0x91, sizeof deep);
    deep[30] = 0x01;
    mp_init(&r, deep, 31);
    mp_skip(&r);
    assert_true(mp_done(&r));
    deep[30] = 0x91;
    deep[100] = 0x01;
    mp_init(&r, deep, sizeof deep);
    mp_skip(&r);
    assert_int_equal(r.err, 1);
    /* Ext types and the never-used byte are not laurel's. */
    const unsigned char ext[] = {0xd4, 0x01, 0x00};
    mp_init(&r, ext, sizeof ext);
    mp_skip(&r);
    assert_int_equal(r.err, 1);
    const unsigned char never[] = {0xc1};
    mp_init(&r, never, sizeof never);
    mp_skip(&r);
    assert_int_equal(r.err, 1);
}

/* Reading any prefix of valid input fails cleanly, inside the buffer (ASan checks). */
static void mp_truncated_input(void **state)
{
    struct fixture *f = *state;
    msgpack_sbuffer_clear(&f->sb);
    msgpack_pack_array(&f->pk, 4);
    msgpack_pack_int64(&f->pk, -70000);
    msgpack_pack_str_with_body(&f->pk, "hello world, a str8 string......", 32);
    msgpack_pack_true(&f->pk);
    pack_nested(&f->pk);
    size_t n = f->sb.size;
    for (size_t len = 0; len <= n; len++) {
        unsigned char *cut = malloc(len ? len : 1);
        assert_non_null(cut);
        memcpy(cut, f->sb.data, len);
        struct mp r;
        mp_init(&r, cut, len);
        uint32_t na = mp_array(&r);
        int64_t v = mp_i64(&r);
        struct lr_str s = mp_str(&r);
        int b = mp_bool(&r);
        mp_skip(&r);
        int64_t sentinel = mp_i64(&r);
        if (len == n) {
            assert_true(mp_done(&r));
            assert_int_equal(na, 4);
            assert_int_equal(v, -70000);
            assert_int_equal(s.len, 32);
            assert_int_equal(b, 1);
            assert_int_equal(sentinel, 424242);
        } else {
            assert_int_equal(r.err, 1);
            assert_false(mp_done(&r));
            assert_true(r.p >= cut && r.p <= cut + len);
        }
        /* Skipping the whole thing from the start fails the same way. */
        mp_init(&r, cut, len);
        mp_skip(&r);
        mp_skip(&r);
        assert_int_equal(mp_done(&r), len == n);
        free(cut);
    }
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
