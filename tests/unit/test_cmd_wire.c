/* tests/unit/test_cmd_wire.c — part of test_cmd (test_cmd.c): every command packed by hand
 * from the wire form cmd.h documents, against the encoder and the decoder, and the entry
 * envelope around commands (version, shape, truncation, limits). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "shard/cmd.h"
#include "tests/lib/testlib.h"
#include "test_cmd_int.h"

/* ---- the wire form, packed by hand ----------------------------------------------------- */

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
#define RAW_FIELD(kind, fname, a, b)                                                               \
    if (idx == k) {                                                                                \
        WRONG_##kind(pk, variant);                                                                 \
    } else if (idx != drop) {                                                                      \
        PACK_##kind(pk, x->fname);                                                                 \
    }                                                                                              \
    idx++;

/* raw_<name>: pack @c's command as cmd.h documents, [code, ts, fields...], replacing field
 * @k with a wrong-typed value, leaving out field @drop (-1: none) and adding @extra nils. */
#define RAW_FN(code, NAME, name, flags)                                                            \
    static const char *const fields_##name[] = {CMD_##NAME(FNAME)};                                \
    static void raw_##name(msgpack_packer *pk, const struct cmd *c, int k, int variant, int drop,  \
                           int extra)                                                              \
    {                                                                                              \
        const struct cmd_##name *x = &c->u.name;                                                   \
        int idx = 0;                                                                               \
        msgpack_pack_array(pk, (uint32_t)(2 + (0 CMD_##NAME(COUNT)) - (drop >= 0) + extra));       \
        msgpack_pack_int64(pk, code);                                                              \
        msgpack_pack_int64(pk, c->ts);                                                             \
        CMD_##NAME(RAW_FIELD) for (int e = 0; e < extra; e++)                                      \
        {                                                                                          \
            msgpack_pack_nil(pk);                                                                  \
        }                                                                                          \
    }
CMD_LIST(RAW_FN)
#undef RAW_FN

static int nfields(enum cmd_type t)
{
    switch (t) {
#define NF_CASE(code, NAME, name, flags)                                                           \
    case CMD_##NAME: return 0 CMD_##NAME(COUNT);
        CMD_LIST(NF_CASE)
#undef NF_CASE
    case CMD__TYPE_END: break;
    }
    return -1;
}

static const char *field_name(enum cmd_type t, int k)
{
    switch (t) {
#define FN_CASE(code, NAME, name, flags)                                                           \
    case CMD_##NAME: return fields_##name[k];
        CMD_LIST(FN_CASE)
#undef FN_CASE
    case CMD__TYPE_END: break;
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
#define RAW_CASE(code, NAME, name, flags)                                                          \
    case CMD_##NAME: raw_##name(&f->pk, c, k, variant, drop, extra); break;
        CMD_LIST(RAW_CASE)
#undef RAW_CASE
    case CMD__TYPE_END: fail();
    }
}

/* The encoder writes exactly the documented wire form, byte for byte. */
void encoder_matches_documented_wire_form(void **state)
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
void wrong_field_type_is_refused(void **state)
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
void wrong_field_count_is_malformed(void **state)
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
        /* One element more is read as the origin (cmd.h); a nil is not one. */
        raw_entry(f, &c, -1, 0, -1, 1);
        assert_int_equal(decode_one(f, &out), LR_EMALFORMED);
        snprintf(want, sizeof want, "%s: origin must be", cmd_name(c.type));
        assert_memory_equal(f->errmsg, want, strlen(want));
        raw_entry(f, &c, -1, 0, -1, 2);
        assert_int_equal(decode_one(f, &out), LR_EMALFORMED);
        snprintf(want, sizeof want, "%s: expected %d fields, got %d", cmd_name(c.type),
                 nfields(c.type), nfields(c.type) + 2);
        assert_string_equal(f->errmsg, want);
    }
}

/* ---- the origin -------------------------------------------------------------------------- */

/* Every command carries an origin as [key, source] after its fields, byte for byte as cmd.h
 * documents, and decodes back to it; the same command without one (as logged before origins
 * existed) still decodes, with no key class. */
void origin_round_trips_and_is_optional(void **state)
{
    struct fixture *f = *state;
    static const char *const sources[] = {"127.0.0.1", "::1", "fe80::1%eth0", "", "2001:db8::ffff"};
    for (size_t i = 0; i < NTYPES; i++) {
        struct cmd c = sample(all_types[i]);
        struct cmd out;
        raw_entry(f, &c, -1, 0, -1, 0);
        assert_int_equal(decode_one(f, &out), 0);
        assert_int_equal(out.origin.key, CMD_KEY_NONE);
        assert_int_equal(out.origin.source.len, 0);
        for (size_t s = 0; s < sizeof sources / sizeof sources[0]; s++) {
            c.origin.key = s % 2 ? CMD_KEY_ADMIN : CMD_KEY_API;
            c.origin.source = S(sources[s]);
            expect_ok(f, &c);
            /* The encoder writes the hand-packed form: the documented fields, then
             * [key, source]. */
            encode_entry(f, &c, 1);
            size_t n = f->sb.size;
            char *enc = malloc(n);
            assert_non_null(enc);
            memcpy(enc, f->sb.data, n);
            struct cmd bare = c;
            bare.origin.key = CMD_KEY_NONE;
            raw_entry(f, &bare, -1, 0, -1, 0);
            /* raw_entry wrote [code, ts, fields...] as one array: grow it by one and append. */
            unsigned char *cmdp = (unsigned char *)f->sb.data + 3; /* [2, 1, [..]] headers */
            assert_true((cmdp[0] & 0xf0) == 0x90);
            cmdp[0]++;
            msgpack_pack_array(&f->pk, 2);
            msgpack_pack_int64(&f->pk, c.origin.key);
            pack_str(&f->pk, c.origin.source);
            assert_int_equal(f->sb.size, n);
            assert_memory_equal(f->sb.data, enc, n);
            free(enc);
        }
    }
}

/* An origin that is not [1 or 2, an address of at most CMD_SOURCE_MAX address characters] is
 * refused as malformed: the command, not just the origin. */
void bad_origins_are_refused(void **state)
{
    struct fixture *f = *state;
    char long_src[CMD_SOURCE_MAX + 2];
    memset(long_src, '1', sizeof long_src - 1);
    long_src[sizeof long_src - 1] = '\0';
    const struct {
        int64_t key;
        const char *source;
    } bad[] = {{0, "127.0.0.1"}, {3, "127.0.0.1"}, {-1, "::1"}, {1, "10.0.0.1 "},
               {1, "a\"b"},      {2, long_src},    {1, "x/y"}};
    struct cmd c = sample(CMD_SCORE);
    struct cmd out;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c.origin.key = bad[i].key == 0 ? CMD_KEY_API : bad[i].key;
        c.origin.source = S(bad[i].source);
        encode_entry(f, &c, 1);
        if (bad[i].key == 0) {
            /* The encoder leaves a NONE origin out, so pack a 0 by hand. */
            struct cmd bare = c;
            bare.origin.key = CMD_KEY_NONE;
            raw_entry(f, &bare, -1, 0, -1, 0);
            ((unsigned char *)f->sb.data)[3]++;
            msgpack_pack_array(&f->pk, 2);
            msgpack_pack_int64(&f->pk, 0);
            pack_str(&f->pk, c.origin.source);
        }
        assert_int_equal(decode_one(f, &out), LR_EMALFORMED);
        assert_non_null(strstr(f->errmsg, "score: origin must be"));
    }
    /* Exactly CMD_SOURCE_MAX characters is fine. */
    long_src[CMD_SOURCE_MAX] = '\0';
    c.origin.key = CMD_KEY_API;
    c.origin.source = S(long_src);
    expect_ok(f, &c);
}

/* The audited commands are the player writes, each with its API action and player. */
void audited_commands_name_action_and_player(void **state)
{
    (void)state;
    static const struct {
        enum cmd_type type;
        const char *action;
    } want[] = {{CMD_SCORE, "score"},
                {CMD_UNLOCK, "unlock"},
                {CMD_TOURNAMENT_JOIN, "join"},
                {CMD_REWARD_CLAIM, "claim"},
                {CMD_PLAYER_PUT, "player"}};
    size_t audited = 0;
    for (size_t i = 0; i < NTYPES; i++) {
        struct cmd c = sample(all_types[i]);
        const char *action = cmd_audit_action(c.type);
        const struct lr_str *player = cmd_audit_player(&c);
        assert_true((action == NULL) == (player == NULL));
        if (action == NULL) {
            continue;
        }
        audited++;
        assert_string_equal(player->p, "p1");
        int found = 0;
        for (size_t j = 0; j < sizeof want / sizeof want[0]; j++) {
            if (want[j].type == c.type) {
                assert_string_equal(action, want[j].action);
                found = 1;
            }
        }
        assert_true(found);
    }
    assert_int_equal(audited, sizeof want / sizeof want[0]);
    assert_null(cmd_audit_action(CMD_REWARD_GRANT));
    assert_string_equal(cmd_key_name(CMD_KEY_API), "api");
    assert_string_equal(cmd_key_name(CMD_KEY_ADMIN), "admin");
    assert_null(cmd_key_name(CMD_KEY_NONE));
    assert_null(cmd_key_name(3));
}

/* ---- command header and envelope ------------------------------------------------------- */

/* Unknown command codes are a version error: a newer proposer's command, not garbage. */
void unknown_command_code_is_version_error(void **state)
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
void ts_out_of_range_is_malformed(void **state)
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
void command_not_an_array_is_malformed(void **state)
{
    struct fixture *f = *state;
    for (int shape = 0; shape < 4; shape++) {
        msgpack_sbuffer_clear(&f->sb);
        cmd_entry_begin(&f->pk, 1);
        switch (shape) {
        case 0: msgpack_pack_int64(&f->pk, CMD_SCORE); break;
        case 1:
            msgpack_pack_array(&f->pk, 1);
            msgpack_pack_int64(&f->pk, CMD_SCORE);
            break;
        case 2: msgpack_pack_array(&f->pk, 0); break;
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
void entry_version_is_checked(void **state)
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
void entry_shape_is_checked(void **state)
{
    struct fixture *f = *state;
    for (int shape = 0; shape < 6; shape++) {
        msgpack_sbuffer_clear(&f->sb);
        switch (shape) {
        case 0: /* a bare command array */ msgpack_pack_array(&f->pk, 0); break;
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
        default: /* an integer */ msgpack_pack_int64(&f->pk, 1); break;
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
void truncated_and_trailing_entries(void **state)
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
void huge_claims_are_refused_cheaply(void **state)
{
    struct fixture *f = *state;
    static const struct {
        const char *p;
        size_t n;
    } bufs[] = {
        {"\xdd\xff\xff\xff\xff", 5},                 /* array of 2^32-1 */
        {"\xdf\xff\xff\xff\xff", 5},                 /* map of 2^32-1 */
        {"\x92\x01\xdd\x0f\xff\xff\xff", 7},         /* [1, array of 2^28-1] */
        {"\x92\x01\x91\xdd\xff\xff\xff\xf0\x08", 9}, /* [1, [array of ~2^32]] */
        {"\x92\x01\x91\xdb\xff\xff\xff\xff", 8},     /* [1, [str of 4 GiB]] */
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
void entry_command_limit(void **state)
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
