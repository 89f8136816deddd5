/* tests/unit/test_meta_cmd.c — the metadata commands' codec (meta/mcmd.h): every command
 * round-trips, and the decoder refuses garbage with a sentence and never crashes. */
#include <stdlib.h>
#include <string.h>

#include "meta/mcmd.h"
#include "tests/lib/testlib.h"

struct fixture {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    char errmsg[LR_ERRMSG_SIZE];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    msgpack_sbuffer_init(&f->sb);
    msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    msgpack_sbuffer_destroy(&f->sb);
    free(f);
    return 0;
}

static struct lr_str s_(const char *s)
{
    return lr_str_of(s);
}

/* One valid command of each type. */
static struct mcmd sample(enum mcmd_type t)
{
    struct mcmd c;
    memset(&c, 0, sizeof c);
    c.type = t;
    c.ts = 1795350660123LL;
    switch (t) {
    case MCMD_CLAIM: c.u.claim = (struct mcmd_claim){s_("ann"), s_("eu")}; break;
    case MCMD_CATALOG_PUT:
        c.u.catalog_put = (struct mcmd_catalog_put){META_KIND_BOARD, s_("b.1"), {"\0\1\2", 3}};
        break;
    case MCMD_TOURNAMENT_PUT:
        c.u.tournament_put = (struct mcmd_tournament_put){s_("t"), 10, 5, 99};
        break;
    case MCMD_JOIN: c.u.join = (struct mcmd_join){s_("t"), s_("ann")}; break;
    case MCMD_CLOSE: c.u.close = (struct mcmd_close){s_("b"), 42, {"rec\0", 4}}; break;
    case MCMD_REGION_PUT:
        c.u.region_put = (struct mcmd_region_put){s_("eu"), s_("10.0.0.1:7001,[::1]:7002")};
        break;
    case MCMD__TYPE_END: break;
    }
    return c;
}

static const enum mcmd_type types[] = {
#define T_(code, NAME, name, flags) MCMD_##NAME,
    META_CMDS(T_)
#undef T_
};
#define NTYPES (sizeof types / sizeof types[0])

static void encode_entry(struct fixture *f, const struct mcmd *cmds, uint32_t n)
{
    msgpack_sbuffer_clear(&f->sb);
    assert_int_equal(mcmd_entry_begin(&f->pk, n), 0);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(mcmd_encode(&f->pk, &cmds[i]), 0);
    }
    assert_int_equal(mcmd_entry_pad(&f->sb), 0);
    assert_int_equal(f->sb.size % CMD_ENTRY_ALIGN, 0);
}

static int str_eq(struct lr_str a, struct lr_str b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

/* Every command of the table decodes to what was encoded, field by field. */
static void every_command_round_trips(void **state)
{
    struct fixture *f = *state;
    struct mcmd in[NTYPES], out;
    struct mcmd_entry e;
    for (size_t i = 0; i < NTYPES; i++) {
        in[i] = sample(types[i]);
    }
    encode_entry(f, in, NTYPES);
    assert_int_equal(mcmd_entry_decode(f->sb.data, f->sb.size, &e, f->errmsg), 0);
    assert_int_equal(e.n, NTYPES);
    for (size_t i = 0; i < NTYPES; i++) {
        assert_int_equal(mcmd_next(&e, &out, f->errmsg), 0);
        assert_int_equal(out.type, in[i].type);
        assert_int_equal(out.ts, in[i].ts);
        assert_non_null(mcmd_name(out.type));
#define CMP_ID(a, b) assert_true(str_eq(a, b))
#define CMP_BIN(a, b) assert_true(str_eq(a, b))
#define CMP_I64(a, b) assert_int_equal(a, b)
        switch (out.type) {
        case MCMD_CLAIM:
            CMP_ID(out.u.claim.player_id, in[i].u.claim.player_id);
            CMP_ID(out.u.claim.region, in[i].u.claim.region);
            break;
        case MCMD_CATALOG_PUT:
            CMP_I64(out.u.catalog_put.kind, in[i].u.catalog_put.kind);
            CMP_ID(out.u.catalog_put.id, in[i].u.catalog_put.id);
            CMP_BIN(out.u.catalog_put.body, in[i].u.catalog_put.body);
            break;
        case MCMD_TOURNAMENT_PUT:
            assert_memory_equal(&out.u.tournament_put.max_participants,
                                &in[i].u.tournament_put.max_participants, 3 * sizeof(int64_t));
            CMP_ID(out.u.tournament_put.tournament_id, in[i].u.tournament_put.tournament_id);
            break;
        case MCMD_JOIN:
            CMP_ID(out.u.join.tournament_id, in[i].u.join.tournament_id);
            CMP_ID(out.u.join.player_id, in[i].u.join.player_id);
            break;
        case MCMD_CLOSE:
            CMP_ID(out.u.close.board_id, in[i].u.close.board_id);
            CMP_I64(out.u.close.cycle, in[i].u.close.cycle);
            CMP_BIN(out.u.close.record, in[i].u.close.record);
            break;
        case MCMD_REGION_PUT:
            CMP_ID(out.u.region_put.region, in[i].u.region_put.region);
            CMP_BIN(out.u.region_put.rpc, in[i].u.region_put.rpc);
            break;
        case MCMD__TYPE_END: fail();
        }
    }
}

/* Decode the single command in f->sb and expect @rv with @needle in the message. */
static void expect_refused(struct fixture *f, int rv, const char *needle)
{
    struct mcmd c;
    assert_int_equal(mcmd_decode(f->sb.data, f->sb.size, &c, f->errmsg), rv);
    if (strstr(f->errmsg, needle) == NULL) {
        fail_msg("message '%s' lacks '%s'", f->errmsg, needle);
    }
}

/* Wrong types, out-of-range values, wrong arity, unknown codes: each refused with a sentence. */
static void refuses_bad_fields(void **state)
{
    struct fixture *f = *state;
    msgpack_packer *pk = &f->pk;
    struct mcmd c = sample(MCMD_CLAIM);

    msgpack_sbuffer_clear(&f->sb); /* not an array */
    msgpack_pack_int64(pk, 1);
    expect_refused(f, LR_EMALFORMED, "not an array");

    msgpack_sbuffer_clear(&f->sb); /* unknown code */
    msgpack_pack_array(pk, 2);
    msgpack_pack_int64(pk, 99);
    msgpack_pack_int64(pk, 0);
    expect_refused(f, LR_EVERSION, "unknown command");

    msgpack_sbuffer_clear(&f->sb); /* ts of the wrong type */
    msgpack_pack_array(pk, 4);
    msgpack_pack_int64(pk, MCMD_CLAIM);
    msgpack_pack_str_with_body(pk, "now", 3);
    expect_refused(f, LR_EMALFORMED, "ts");

    msgpack_sbuffer_clear(&f->sb); /* missing a field */
    msgpack_pack_array(pk, 3);
    msgpack_pack_int64(pk, MCMD_CLAIM);
    msgpack_pack_int64(pk, 1);
    msgpack_pack_str_with_body(pk, "ann", 3);
    expect_refused(f, LR_EMALFORMED, "expected 2 fields");

    c.u.claim.region = s_("eu west"); /* an id out of its alphabet */
    msgpack_sbuffer_clear(&f->sb);
    mcmd_encode(pk, &c);
    expect_refused(f, LR_EINVAL, "region must be 1 to 64");

    c = sample(MCMD_CATALOG_PUT); /* a kind out of the table */
    c.u.catalog_put.kind = 4;
    msgpack_sbuffer_clear(&f->sb);
    mcmd_encode(pk, &c);
    expect_refused(f, LR_EINVAL, "kind must be an integer in [0, 3]");

    c = sample(MCMD_CLOSE); /* a record over 64 KiB */
    char *big = calloc(1, MCMD_BODY_MAX + 1);
    c.u.close.record = (struct lr_str){big, MCMD_BODY_MAX + 1};
    msgpack_sbuffer_clear(&f->sb);
    mcmd_encode(pk, &c);
    expect_refused(f, LR_EINVAL, "record must be bytes of at most 262144");
    c.u.close.record.len = MCMD_BODY_MAX; /* exactly the bound is fine */
    msgpack_sbuffer_clear(&f->sb);
    mcmd_encode(pk, &c);
    struct mcmd out;
    assert_int_equal(mcmd_decode(f->sb.data, f->sb.size, &out, f->errmsg), 0);
    free(big);

    c = sample(MCMD_CLOSE); /* a negative cycle */
    c.u.close.cycle = -1;
    msgpack_sbuffer_clear(&f->sb);
    mcmd_encode(pk, &c);
    expect_refused(f, LR_EINVAL, "cycle");

    msgpack_sbuffer_clear(&f->sb); /* a uint64 past INT64_MAX */
    msgpack_pack_array(pk, 6);
    msgpack_pack_int64(pk, MCMD_TOURNAMENT_PUT);
    msgpack_pack_int64(pk, 1);
    msgpack_pack_str_with_body(pk, "t", 1);
    msgpack_pack_uint64(pk, UINT64_MAX);
    msgpack_pack_int64(pk, 1);
    msgpack_pack_int64(pk, 2);
    expect_refused(f, LR_EINVAL, "max_participants");

    c = sample(MCMD_REGION_PUT); /* an rpc list past its bound (its content is apply's) */
    char *rpc = calloc(1, META_REGION_RPC_BYTES + 1);
    memset(rpc, 'a', META_REGION_RPC_BYTES + 1);
    c.u.region_put.rpc = (struct lr_str){rpc, META_REGION_RPC_BYTES + 1};
    msgpack_sbuffer_clear(&f->sb);
    mcmd_encode(pk, &c);
    expect_refused(f, LR_EINVAL, "rpc must be bytes of at most 2048");
    free(rpc);
}

/* Envelopes: wrong version, not an array, too many commands, bad padding. */
static void refuses_bad_entries(void **state)
{
    struct fixture *f = *state;
    struct mcmd_entry e;
    struct mcmd c = sample(MCMD_JOIN);
    msgpack_sbuffer_clear(&f->sb);
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_int64(&f->pk, 2);
    msgpack_pack_array(&f->pk, 0);
    assert_int_equal(mcmd_entry_decode(f->sb.data, f->sb.size, &e, f->errmsg), LR_EVERSION);
    msgpack_sbuffer_clear(&f->sb);
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_int64(&f->pk, MCMD_ENTRY_VERSION);
    msgpack_pack_array(&f->pk, MCMD_ENTRY_MAX + 1);
    for (int i = 0; i <= MCMD_ENTRY_MAX; i++) {
        mcmd_encode(&f->pk, &c);
    }
    assert_int_equal(mcmd_entry_decode(f->sb.data, f->sb.size, &e, f->errmsg), LR_ETOOBIG);
    encode_entry(f, &c, 1);
    msgpack_sbuffer_write(&f->sb, "\0\0\0\0\0\0\0\0", 8); /* a whole extra word of padding */
    assert_int_equal(mcmd_entry_decode(f->sb.data, f->sb.size, &e, f->errmsg), LR_EMALFORMED);
    assert_non_null(strstr(f->errmsg, "trailing"));
    encode_entry(f, &c, 1);
    f->sb.data[f->sb.size - 1] = 1; /* non-zero padding, if there is padding */
    int rv = mcmd_entry_decode(f->sb.data, f->sb.size, &e, f->errmsg);
    assert_int_equal(rv, LR_EMALFORMED);
}

/* Every truncation of a valid entry is refused by the envelope check. */
static void refuses_every_truncation(void **state)
{
    struct fixture *f = *state;
    struct mcmd in[NTYPES];
    struct mcmd_entry e;
    for (size_t i = 0; i < NTYPES; i++) {
        in[i] = sample(types[i]);
    }
    encode_entry(f, in, NTYPES);
    size_t unpadded = f->sb.size;
    while (unpadded > 0 && f->sb.data[unpadded - 1] == 0) {
        unpadded--; /* the record of the close ends in \0: only cut what is padding for sure */
    }
    for (size_t len = 0; len + CMD_ENTRY_ALIGN < unpadded; len++) {
        char *copy = malloc(len ? len : 1); /* exact size, so ASan sees any overread */
        memcpy(copy, f->sb.data, len);
        assert_int_not_equal(mcmd_entry_decode(copy, len, &e, f->errmsg), 0);
        free(copy);
    }
}

/* 10 000 random mutations of a valid entry: decoded or refused, never a crash or overread. */
static void random_mutations_never_crash(void **state)
{
    struct fixture *f = *state;
    struct testrng rng = {testlib_seed(0x3e7a)};
    struct mcmd in[NTYPES], c;
    struct mcmd_entry e;
    for (size_t i = 0; i < NTYPES; i++) {
        in[i] = sample(types[i]);
    }
    encode_entry(f, in, NTYPES);
    int decoded = 0, refused = 0;
    for (int round = 0; round < 10000; round++) {
        size_t len = f->sb.size;
        char *copy = malloc(len);
        memcpy(copy, f->sb.data, len);
        uint64_t flips = 1 + testrng_below(&rng, 4);
        for (uint64_t k = 0; k < flips; k++) {
            copy[testrng_below(&rng, len)] = (char)testrng_next(&rng);
        }
        if (testrng_below(&rng, 4) == 0) {
            len = testrng_below(&rng, len + 1);
        }
        if (mcmd_entry_decode(copy, len, &e, f->errmsg) == 0) {
            while (e.next < e.n) {
                int rv = mcmd_next(&e, &c, f->errmsg);
                rv == 0 ? decoded++ : refused++;
                if (rv != 0) {
                    assert_true(f->errmsg[0] != '\0');
                }
            }
        } else {
            refused++;
            assert_true(f->errmsg[0] != '\0');
        }
        free(copy);
    }
    assert_true(decoded > 0 && refused > 0);
}

/* Names and flags come from the table; an unknown code has neither. */
static void names_and_flags(void **state)
{
    (void)state;
    assert_string_equal(mcmd_name(MCMD_CLAIM), "claim");
    assert_string_equal(mcmd_name(MCMD_CLOSE), "close");
    assert_null(mcmd_name(0));
    assert_int_equal(mcmd_flags(MCMD_CLAIM), 0);
    assert_int_equal(mcmd_flags(MCMD_JOIN), META_F_STREAMED);
    assert_string_equal(mcmd_name(MCMD_REGION_PUT), "region_put");
    assert_int_equal(mcmd_flags(MCMD_REGION_PUT), 0); /* not in the regions' stream */
    assert_string_equal(mcmd_kind_name(META_KIND_TOURNAMENT), "tournament");
    assert_null(mcmd_kind_name(4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(every_command_round_trips, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_bad_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_bad_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_every_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(random_mutations_never_crash, setup, teardown),
        cmocka_unit_test(names_and_flags),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
