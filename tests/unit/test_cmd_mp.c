/* tests/unit/test_cmd_mp.c — part of test_cmd (test_cmd.c): the in-place msgpack reader
 * (mp.h) against msgpack-c's packer. */
#include <stdlib.h>
#include <string.h>

#include "shard/cmd.h"
#include "shard/mp.h"
#include "tests/lib/testlib.h"
#include "test_cmd_int.h"

/* ---- mp.h ------------------------------------------------------------------------------ */

/* Integers read back from every msgpack width, negative ones included. */
void mp_ints_at_every_width(void **state)
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
        case 1: msgpack_pack_int64(&f->pk, v); break;
        case 2: msgpack_pack_fix_uint8(&f->pk, (uint8_t)v); break;
        case 3: msgpack_pack_fix_int8(&f->pk, (int8_t)v); break;
        case 4: msgpack_pack_fix_uint16(&f->pk, (uint16_t)v); break;
        case 5: msgpack_pack_fix_int16(&f->pk, (int16_t)v); break;
        case 8: msgpack_pack_fix_uint32(&f->pk, (uint32_t)v); break;
        case 9: msgpack_pack_fix_int32(&f->pk, (int32_t)v); break;
        case 16: msgpack_pack_fix_uint64(&f->pk, (uint64_t)v); break;
        case 17: msgpack_pack_fix_int64(&f->pk, v); break;
        default: fail();
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
void mp_strings_and_bins(void **state)
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
void mp_bool_nil_and_containers(void **state)
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
void mp_errors_latch(void **state)
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
void mp_skip_nested(void **state)
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
void mp_truncated_input(void **state)
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
