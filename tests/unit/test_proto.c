/* tests/unit/test_proto.c — the replica RPC's op table and its frame and envelope codec
 * (proto/proto.h).
 *
 * The op table is checked against a copy written here by hand from docs/rpc.md, so a code, a
 * name or a flag that drifts in PROTO_OPS fails even though everything generated from the
 * list still agrees with itself. The flags are what the node's dispatch enforces (its one
 * leader check); tests/integration/test_node.c sees that behaviour on real replicas. The codec
 * faces the network: lengths out of range, trailing bytes, counts the bytes cannot back and
 * envelopes of the wrong shape are refused with the code the header documents, and random or
 * mutated bytes (each in a buffer of exactly its size, for ASan) get a documented code or a
 * value, never a crash. test_garbage.c does the same for the command codec, and test_node.c
 * sends junk to a live replica; neither reaches these functions one by one.
 * $LAUREL_SEED replays the random parts. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "proto/proto.h"
#include "tests/lib/testlib.h"

#define N_RANDOM 50000

/* docs/rpc.md's op table: code, name and flags. */
struct row {
    int code;
    const char *name;
    unsigned flags;
};

static const struct row documented[] = {
    {1, "submit", PROTO_F_LEADER | PROTO_F_WRITE},
    {2, "query", PROTO_F_LEADER | PROTO_F_STALE},
    {3, "status", 0},
    {4, "subscribe", PROTO_F_ADMIN | PROTO_F_STREAM},
    {5, "add", PROTO_F_LEADER | PROTO_F_ADMIN | PROTO_F_WRITE},
    {6, "remove", PROTO_F_LEADER | PROTO_F_ADMIN | PROTO_F_WRITE},
    {7, "transfer", PROTO_F_LEADER | PROTO_F_ADMIN},
    {8, "readindex", 0},
};
#define NDOC (sizeof documented / sizeof documented[0])

/* The same table as PROTO_OPS generates it. */
static const struct row generated[] = {
#define ROW(code, NAME, name, flags) {code, #name, flags},
    PROTO_OPS(ROW)
#undef ROW
};
#define NGEN (sizeof generated / sizeof generated[0])

#define ALL_FLAGS (PROTO_F_LEADER | PROTO_F_STALE | PROTO_F_ADMIN | PROTO_F_STREAM | PROTO_F_WRITE)

struct fixture {
    struct testrng rng;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked up;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    msgpack_sbuffer_init(&f->sb);
    msgpack_packer_init(&f->pk, &f->sb, msgpack_sbuffer_write);
    msgpack_unpacked_init(&f->up);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    msgpack_unpacked_destroy(&f->up);
    msgpack_sbuffer_destroy(&f->sb);
    free(f);
    return 0;
}

/* Names of the ops whose flags include @flag, comma-separated, in code order. */
static void ops_with(unsigned flag, char *out, size_t size)
{
    out[0] = '\0';
    for (int op = 0; op < PROTO_OP__END; op++) {
        if (proto_op_name(op) != NULL && (proto_op_flags(op) & flag)) {
            size_t len = strlen(out);
            snprintf(out + len, size - len, "%s%s", len ? "," : "", proto_op_name(op));
        }
    }
}

/* ---- the op table ------------------------------------------------------------------------- */

/* Every op has the code, name and flags docs/rpc.md gives it, and there are no others. */
static void ops_match_the_documented_table(void **state)
{
    (void)state;
    assert_int_equal(NGEN, NDOC);
    assert_int_equal(PROTO_OP__END, NDOC + 1); /* dense from 1: the node indexes by code */
    for (size_t i = 0; i < NDOC; i++) {
        const struct row *d = &documented[i];
        assert_int_equal(generated[i].code, d->code);
        assert_string_equal(generated[i].name, d->name);
        assert_int_equal(generated[i].flags, d->flags);
        assert_non_null(proto_op_name(d->code));
        assert_string_equal(proto_op_name(d->code), d->name);
        assert_int_equal(proto_op_flags(d->code), d->flags);
    }
    assert_int_equal(PROTO_OP_SUBMIT, 1);
    assert_int_equal(PROTO_OP_QUERY, 2);
    assert_int_equal(PROTO_OP_STATUS, 3);
    assert_int_equal(PROTO_OP_SUBSCRIBE, 4);
    assert_int_equal(PROTO_OP_ADD, 5);
    assert_int_equal(PROTO_OP_REMOVE, 6);
    assert_int_equal(PROTO_OP_TRANSFER, 7);
    assert_int_equal(PROTO_OP_READINDEX, 8);
}

/* Writes, linearizable reads and membership changes need the leader; status does not. */
static void leader_ops_are_writes_reads_and_membership(void **state)
{
    char names[128];
    (void)state;
    ops_with(PROTO_F_LEADER, names, sizeof names);
    assert_string_equal(names, "submit,query,add,remove,transfer");
}

/* Membership changes and the event stream are the operator's ops. */
static void admin_ops_are_membership_and_the_stream(void **state)
{
    char names[128];
    (void)state;
    ops_with(PROTO_F_ADMIN, names, sizeof names);
    assert_string_equal(names, "subscribe,add,remove,transfer");
}

/* Only a query can lift its leader requirement, and only subscribe answers with a stream. */
static void only_query_may_be_stale_and_only_subscribe_streams(void **state)
{
    char names[128];
    (void)state;
    ops_with(PROTO_F_STALE, names, sizeof names);
    assert_string_equal(names, "query");
    ops_with(PROTO_F_STREAM, names, sizeof names);
    assert_string_equal(names, "subscribe");
    /* A stale flag without the leader flag would lift nothing. */
    for (int op = 1; op < PROTO_OP__END; op++) {
        unsigned fl = proto_op_flags(op);
        assert_int_equal(fl & ~(unsigned)ALL_FLAGS, 0);
        if (fl & PROTO_F_STALE) {
            assert_true(fl & PROTO_F_LEADER);
        }
    }
}

/* What appends to the raft log for a client (paused by admission control): writes and the
 * membership changes that add a configuration entry; a transfer appends nothing. */
static void write_ops_are_submit_add_and_remove(void **state)
{
    char names[128];
    (void)state;
    ops_with(PROTO_F_WRITE, names, sizeof names);
    assert_string_equal(names, "submit,add,remove");
    for (int op = 1; op < PROTO_OP__END; op++) {
        if (proto_op_flags(op) & PROTO_F_WRITE) {
            assert_true(proto_op_flags(op) & PROTO_F_LEADER);
        }
    }
}

/* A code outside the table has no name and no flags. */
static void unknown_ops_have_no_name_and_no_flags(void **state)
{
    static const int unknown[] = {0, -1, PROTO_OP__END, 1000, INT_MAX, INT_MIN};
    (void)state;
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_null(proto_op_name(unknown[i]));
        assert_int_equal(proto_op_flags(unknown[i]), 0);
    }
}

/* ---- frames ------------------------------------------------------------------------------ */

/* Pack a request frame [PROTO_VERSION, @id, @op, nil] into f->sb. */
static void pack_request(struct fixture *f, uint64_t id, int op)
{
    size_t mark;
    proto_frame_begin(&f->sb, &mark);
    proto_msg_begin(&f->pk, id, op);
    msgpack_pack_nil(&f->pk);
    proto_frame_end(&f->sb, mark);
}

/* A frame's 4-byte big-endian header announcing @len bytes. */
static void header(unsigned char h[4], uint32_t len)
{
    h[0] = (unsigned char)(len >> 24);
    h[1] = (unsigned char)(len >> 16);
    h[2] = (unsigned char)(len >> 8);
    h[3] = (unsigned char)len;
}

/* Two frames fed a byte at a time come out whole, in order, each only once complete; a read of
 * nothing (libuv's EAGAIN) into a fresh reader changes nothing. */
static void frames_come_out_whole_from_any_split(void **state)
{
    struct fixture *f = *state;
    struct proto_reader rd;
    struct proto_msg m;
    const char *p;
    size_t n;
    int seen = 0;
    pack_request(f, 41, PROTO_OP_STATUS);
    pack_request(f, 42, PROTO_OP_QUERY);
    proto_reader_init(&rd);
    assert_int_equal(proto_reader_feed(&rd, f->sb.data, 0), 0);
    assert_int_equal(proto_reader_next(&rd, &p, &n), 0);
    for (size_t i = 0; i < f->sb.size; i++) {
        assert_int_equal(proto_reader_feed(&rd, f->sb.data + i, 1), 0);
        int rv;
        while ((rv = proto_reader_next(&rd, &p, &n)) == 1) {
            assert_int_equal(proto_unpack(p, n, &f->up), 0);
            assert_int_equal(proto_msg_decode(&f->up.data, &m), 0);
            assert_int_equal(m.id, 41 + (uint64_t)seen);
            assert_int_equal(m.op_or_code, seen ? PROTO_OP_QUERY : PROTO_OP_STATUS);
            assert_int_equal(m.body->type, MSGPACK_OBJECT_NIL);
            seen++;
        }
        assert_int_equal(rv, 0);
    }
    assert_int_equal(seen, 2);
    proto_reader_free(&rd);
}

/* A length of 0 or above PROTO_FRAME_MAX is refused as soon as its header is in; the largest
 * legal length just waits for its bytes. */
static void frame_lengths_out_of_range_are_refused(void **state)
{
    static const uint32_t bad[] = {0, PROTO_FRAME_MAX + 1, 0xffffffffu};
    unsigned char h[4];
    struct proto_reader rd;
    const char *p;
    size_t n;
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        proto_reader_init(&rd);
        header(h, bad[i]);
        assert_int_equal(proto_reader_feed(&rd, (const char *)h, 3), 0);
        assert_int_equal(proto_reader_next(&rd, &p, &n), 0); /* header incomplete */
        assert_int_equal(proto_reader_feed(&rd, (const char *)h + 3, 1), 0);
        assert_int_equal(proto_reader_next(&rd, &p, &n), LR_ETOOBIG);
        proto_reader_free(&rd);
    }
    proto_reader_init(&rd);
    header(h, PROTO_FRAME_MAX);
    assert_int_equal(proto_reader_feed(&rd, (const char *)h, 4), 0);
    assert_int_equal(proto_reader_next(&rd, &p, &n), 0);
    proto_reader_free(&rd);
}

/* Unpack @n bytes of @bytes from an allocation of exactly that size. */
static int unpack_exact(struct fixture *f, const void *bytes, size_t n)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, bytes, n);
    int rv = proto_unpack(p, n, &f->up);
    free(p);
    return rv;
}

/* One whole value is accepted; nothing, a truncated value, trailing bytes, or a header whose
 * count the bytes cannot back are refused. */
static void unpack_takes_exactly_one_whole_value(void **state)
{
    struct fixture *f = *state;
    static const unsigned char ok[] = {0x94, 0x01, 0x07, 0x03, 0xc0};
    static const unsigned char trailing[] = {0x94, 0x01, 0x07, 0x03, 0xc0, 0xc0};
    static const unsigned char truncated[] = {0x94, 0x01, 0x07, 0x03};
    static const unsigned char huge_array[] = {0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0};
    static const unsigned char huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0};
    static const unsigned char huge_str[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'};
    static const unsigned char huge_bin[] = {0xc6, 0x7f, 0xff, 0xff, 0xff, 'a'};
    static const unsigned char reserved[] = {0xc1};
    assert_int_equal(unpack_exact(f, ok, sizeof ok), 0);
    assert_int_equal(f->up.data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(f->up.data.via.array.size, 4);
    assert_int_equal(unpack_exact(f, ok, 0), LR_EMALFORMED);
    assert_int_equal(unpack_exact(f, trailing, sizeof trailing), LR_EMALFORMED);
    assert_int_equal(unpack_exact(f, truncated, sizeof truncated), LR_EMALFORMED);
    assert_int_equal(unpack_exact(f, huge_array, sizeof huge_array), LR_EMALFORMED);
    assert_int_equal(unpack_exact(f, huge_map, sizeof huge_map), LR_EMALFORMED);
    assert_int_equal(unpack_exact(f, huge_str, sizeof huge_str), LR_EMALFORMED);
    assert_int_equal(unpack_exact(f, huge_bin, sizeof huge_bin), LR_EMALFORMED);
    assert_int_equal(unpack_exact(f, reserved, sizeof reserved), LR_EMALFORMED);
}

/* Decode the envelope packed in f->sb. */
static int decode_packed(struct fixture *f, struct proto_msg *m)
{
    assert_int_equal(proto_unpack(f->sb.data, f->sb.size, &f->up), 0);
    return proto_msg_decode(&f->up.data, m);
}

/* An envelope that is not [version, id, op, args] with integers is malformed; a well-formed
 * one of another version is LR_EVERSION; an op the table lacks is still an envelope (the
 * dispatch answers "unknown op"), but one out of range is not. */
static void envelopes_of_the_wrong_shape_are_refused(void **state)
{
    struct fixture *f = *state;
    struct proto_msg m;

    msgpack_sbuffer_clear(&f->sb);
    proto_msg_begin(&f->pk, 9, PROTO_OP_SUBMIT);
    msgpack_pack_array(&f->pk, 0);
    assert_int_equal(decode_packed(f, &m), 0);
    assert_int_equal(m.id, 9);
    assert_int_equal(m.op_or_code, PROTO_OP_SUBMIT);
    assert_int_equal(m.body->type, MSGPACK_OBJECT_ARRAY);

    msgpack_sbuffer_clear(&f->sb);
    msgpack_pack_map(&f->pk, 0); /* not an array */
    assert_int_equal(decode_packed(f, &m), LR_EMALFORMED);

    for (uint32_t size = 0; size <= 5; size++) { /* arrays of the wrong length */
        if (size == 4) {
            continue;
        }
        msgpack_sbuffer_clear(&f->sb);
        msgpack_pack_array(&f->pk, size);
        for (uint32_t i = 0; i < size; i++) {
            msgpack_pack_int64(&f->pk, i == 0 ? PROTO_VERSION : 1);
        }
        assert_int_equal(decode_packed(f, &m), LR_EMALFORMED);
    }

    for (int field = 0; field < 3; field++) { /* version, id or op not an integer */
        msgpack_sbuffer_clear(&f->sb);
        msgpack_pack_array(&f->pk, 4);
        for (int i = 0; i < 3; i++) {
            if (i == field) {
                msgpack_pack_str_with_body(&f->pk, "1", 1);
            } else {
                msgpack_pack_int64(&f->pk, i == 0 ? PROTO_VERSION : 1);
            }
        }
        msgpack_pack_nil(&f->pk);
        assert_int_equal(decode_packed(f, &m), LR_EMALFORMED);
    }

    msgpack_sbuffer_clear(&f->sb);
    msgpack_pack_array(&f->pk, 4);
    msgpack_pack_int64(&f->pk, PROTO_VERSION + 1);
    msgpack_pack_int64(&f->pk, 1);
    msgpack_pack_int64(&f->pk, PROTO_OP_STATUS);
    msgpack_pack_nil(&f->pk);
    assert_int_equal(decode_packed(f, &m), LR_EVERSION);

    static const int64_t ops[][2] = {
        {-1, LR_EMALFORMED}, {0, 0}, {PROTO_OP__END, 0}, {1000, 0}, {1001, LR_EMALFORMED}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        msgpack_sbuffer_clear(&f->sb);
        proto_msg_begin(&f->pk, 1, (int)ops[i][0]);
        msgpack_pack_nil(&f->pk);
        assert_int_equal(decode_packed(f, &m), ops[i][1]);
    }
}

/* Random bytes, and mutations of a valid request frame, through the reader, the unpacker and
 * the envelope decoder: a documented code or a value, never a crash or an overread. */
static void random_bytes_get_a_code_or_a_value(void **state)
{
    struct fixture *f = *state;
    unsigned long long frames = 0, unpacked = 0, envelopes = 0;
    f->rng.s = testlib_seed(0x9207);
    msgpack_sbuffer_clear(&f->sb);
    pack_request(f, 77, PROTO_OP_QUERY);
    const size_t vlen = f->sb.size;
    char valid[64];
    assert_true(vlen <= sizeof valid);
    memcpy(valid, f->sb.data, vlen);
    for (unsigned it = 0; it < N_RANDOM; it++) {
        size_t n;
        char buf[64];
        if (it % 2 == 0) {
            n = (size_t)testrng_below(&f->rng, sizeof buf);
            for (size_t i = 0; i < n; i++) {
                buf[i] = (char)testrng_next(&f->rng);
            }
            if (n >= 4 && testrng_below(&f->rng, 2)) { /* a header that fits what follows */
                header((unsigned char *)buf, (uint32_t)(n - 4));
            }
        } else {
            n = vlen;
            memcpy(buf, valid, n);
            for (uint64_t k = 1 + testrng_below(&f->rng, 3); k > 0; k--) {
                buf[testrng_below(&f->rng, n)] = (char)testrng_next(&f->rng);
            }
            if (testrng_below(&f->rng, 4) == 0) {
                n = (size_t)testrng_below(&f->rng, n + 1);
            }
        }
        char *p = malloc(n ? n : 1);
        assert_non_null(p);
        memcpy(p, buf, n);
        struct proto_reader rd;
        const char *fp;
        size_t fn;
        int cut;
        proto_reader_init(&rd);
        assert_int_equal(proto_reader_feed(&rd, p, n), 0);
        while ((cut = proto_reader_next(&rd, &fp, &fn)) == 1) {
            frames++;
            assert_true(fn >= 1 && fn <= n - 4);
            char *q = malloc(fn);
            assert_non_null(q);
            memcpy(q, fp, fn);
            int rv = proto_unpack(q, fn, &f->up);
            if (rv == 0) {
                struct proto_msg m;
                unpacked++;
                rv = proto_msg_decode(&f->up.data, &m);
                if (rv == 0) {
                    envelopes++;
                    assert_true(m.op_or_code >= 0 && m.op_or_code <= 1000);
                    assert_non_null(m.body);
                } else if (rv != LR_EMALFORMED && rv != LR_EVERSION) {
                    fail_msg("proto_msg_decode returned %d", rv);
                }
            } else if (rv != LR_EMALFORMED) {
                fail_msg("proto_unpack returned %d", rv);
            }
            free(q);
        }
        if (cut != 0 && cut != LR_ETOOBIG) {
            fail_msg("proto_reader_next returned %d", cut);
        }
        proto_reader_free(&rd);
        free(p);
    }
    fprintf(stderr, "# random: %llu frames, %llu unpacked, %llu envelopes\n", frames, unpacked,
            envelopes);
    /* The generator must reach past the framing and the unpacker, or it tests little. */
    assert_true(unpacked > N_RANDOM / 25);
    assert_true(envelopes > N_RANDOM / 50);
}

/* ---- queries ------------------------------------------------------------------------------ */

/* "stale": true survives the codec (it is what lifts PROTO_F_LEADER), is left out when false,
 * and anything but a boolean there is refused with a sentence naming the key. */
static void the_stale_flag_round_trips_and_must_be_a_boolean(void **state)
{
    struct fixture *f = *state;
    struct shard_query q, d;
    char errmsg[LR_ERRMSG_SIZE];
    int stale = -1;
    memset(&q, 0, sizeof q);
    q.type = SHARD_Q_PLAYER_GET;
    q.player_id = (struct lr_str){"p1", 2};
    for (int want = 0; want <= 1; want++) {
        msgpack_sbuffer_clear(&f->sb);
        proto_query_encode(&f->pk, &q, want);
        assert_int_equal(proto_unpack(f->sb.data, f->sb.size, &f->up), 0);
        assert_int_equal((proto_map_get(&f->up.data, "stale") != NULL), want);
        assert_int_equal(proto_query_decode(&f->up.data, &d, &stale, errmsg), 0);
        assert_int_equal(stale, want);
        assert_int_equal(d.type, SHARD_Q_PLAYER_GET);
        assert_int_equal(d.player_id.len, 2);
        assert_memory_equal(d.player_id.p, "p1", 2);
    }
    msgpack_sbuffer_clear(&f->sb);
    msgpack_pack_map(&f->pk, 2);
    proto_pack_key(&f->pk, "type");
    msgpack_pack_int64(&f->pk, SHARD_Q_PLAYER_GET);
    proto_pack_key(&f->pk, "stale");
    msgpack_pack_int64(&f->pk, 1);
    assert_int_equal(proto_unpack(f->sb.data, f->sb.size, &f->up), 0);
    assert_int_equal(proto_query_decode(&f->up.data, &d, &stale, errmsg), LR_EINVAL);
    assert_string_equal(errmsg, "query: bad value for stale");
    assert_int_equal(stale, 0);
}

/* The rewards query's "pending" flag survives the codec, is left out when false, and must be a
 * boolean. */
static void the_pending_flag_round_trips_and_must_be_a_boolean(void **state)
{
    struct fixture *f = *state;
    struct shard_query q, d;
    char errmsg[LR_ERRMSG_SIZE];
    int stale;
    memset(&q, 0, sizeof q);
    q.type = SHARD_Q_REWARDS;
    q.player_id = (struct lr_str){"p1", 2};
    for (int want = 0; want <= 1; want++) {
        q.pending = want;
        msgpack_sbuffer_clear(&f->sb);
        proto_query_encode(&f->pk, &q, 0);
        assert_int_equal(proto_unpack(f->sb.data, f->sb.size, &f->up), 0);
        assert_int_equal((proto_map_get(&f->up.data, "pending") != NULL), want);
        assert_int_equal(f->up.data.via.map.size, want ? 4 : 3); /* type, window, player_id */
        assert_int_equal(proto_query_decode(&f->up.data, &d, &stale, errmsg), 0);
        assert_int_equal(d.pending, want);
        assert_int_equal(d.type, SHARD_Q_REWARDS);
    }
    msgpack_sbuffer_clear(&f->sb);
    msgpack_pack_map(&f->pk, 2);
    proto_pack_key(&f->pk, "type");
    msgpack_pack_int64(&f->pk, SHARD_Q_REWARDS);
    proto_pack_key(&f->pk, "pending");
    msgpack_pack_str_with_body(&f->pk, "true", 4);
    assert_int_equal(proto_unpack(f->sb.data, f->sb.size, &f->up), 0);
    assert_int_equal(proto_query_decode(&f->up.data, &d, &stale, errmsg), LR_EINVAL);
    assert_string_equal(errmsg, "query: bad value for pending");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ops_match_the_documented_table),
        cmocka_unit_test(leader_ops_are_writes_reads_and_membership),
        cmocka_unit_test(admin_ops_are_membership_and_the_stream),
        cmocka_unit_test(only_query_may_be_stale_and_only_subscribe_streams),
        cmocka_unit_test(write_ops_are_submit_add_and_remove),
        cmocka_unit_test(unknown_ops_have_no_name_and_no_flags),
        cmocka_unit_test_setup_teardown(frames_come_out_whole_from_any_split, setup, teardown),
        cmocka_unit_test(frame_lengths_out_of_range_are_refused),
        cmocka_unit_test_setup_teardown(unpack_takes_exactly_one_whole_value, setup, teardown),
        cmocka_unit_test_setup_teardown(envelopes_of_the_wrong_shape_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(random_bytes_get_a_code_or_a_value, setup, teardown),
        cmocka_unit_test_setup_teardown(the_stale_flag_round_trips_and_must_be_a_boolean, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_pending_flag_round_trips_and_must_be_a_boolean, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
