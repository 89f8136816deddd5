/* tests/unit/test_handshake.c — the raft connection preamble: what we encode is what
 * libraft's raft_uv_tcp sends (byte for byte), it decodes back, and each malformed field is
 * refused with its own code; random bytes never pass and never crash the checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/addr.h"
#include "lib/err.h"
#include "raft/handshake.h"
#include "tests/lib/testlib.h"

static void put64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Server 3 at [::1]:7003: version 1, id 3, a 16-byte field (11 bytes and NUL, padded). */
static void encodes_raft_uv_tcp_format(void **state)
{
    (void)state;
    uint8_t buf[HANDSHAKE_SIZE_MAX], want[40] = {0};
    size_t len;
    assert_int_equal(handshake_encode(3, "[::1]:7003", buf, sizeof buf, &len), 0);
    put64(want, 1);
    put64(want + 8, 3);
    put64(want + 16, 16);
    memcpy(want + 24, "[::1]:7003", 11);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(buf, want, sizeof want);

    uint64_t id;
    size_t alen;
    const char *address;
    assert_int_equal(handshake_preamble(buf, &id, &alen), 0);
    assert_int_equal(id, 3);
    assert_int_equal(alen, 16);
    assert_int_equal(handshake_address(buf + HANDSHAKE_PREAMBLE_SIZE, alen, &address), 0);
    assert_string_equal(address, "[::1]:7003");
}

/* An address of exactly 8 bytes with its NUL takes one word; padding may hold anything. */
static void padding_is_ignored(void **state)
{
    (void)state;
    uint8_t buf[HANDSHAKE_SIZE_MAX];
    size_t len;
    const char *address;
    assert_int_equal(handshake_encode(1, "h:700", buf, sizeof buf, &len), 0);
    assert_int_equal(len, HANDSHAKE_PREAMBLE_SIZE + 8);
    buf[HANDSHAKE_PREAMBLE_SIZE + 6] = 0xff; /* raft_uv_tcp leaves padding uninitialised */
    buf[HANDSHAKE_PREAMBLE_SIZE + 7] = 'x';
    assert_int_equal(handshake_address(buf + HANDSHAKE_PREAMBLE_SIZE, 8, &address), 0);
    assert_string_equal(address, "h:700");
}

/* What we would send wrong is refused before it goes out. */
static void encode_refusals(void **state)
{
    (void)state;
    uint8_t buf[HANDSHAKE_SIZE_MAX], small[32];
    size_t len;
    char longest[ADDR_HOST_MAX + 16];
    assert_int_equal(handshake_encode(0, "[::1]:1", buf, sizeof buf, &len), LR_EINVAL);
    assert_int_equal(handshake_encode(1, "::1:1", buf, sizeof buf, &len), LR_EINVAL);
    assert_int_equal(handshake_encode(1, "[::1]:7001", small, sizeof small, &len), LR_EINVAL);
    /* The longest valid address (a 255-byte host in brackets) fits the field. */
    longest[0] = '[';
    memset(longest + 1, 'a', ADDR_HOST_MAX - 1);
    snprintf(longest + ADDR_HOST_MAX, 16, "]:65535");
    /* Brackets hold IPv6 only, so that one is refused; its length as a name is accepted. */
    assert_int_equal(handshake_encode(1, longest, buf, sizeof buf, &len), LR_EINVAL);
    snprintf(longest + ADDR_HOST_MAX, 16, ":65535");
    assert_int_equal(handshake_encode(1, longest + 1, buf, sizeof buf, &len), 0);
    assert_true(len <= HANDSHAKE_SIZE_MAX);
}

struct bad_preamble {
    uint64_t protocol, id, len;
    int rv;
    const char *why;
};

/* Each preamble field out of range has its own code. */
static void preamble_refusals(void **state)
{
    (void)state;
    static const struct bad_preamble cases[] = {
        {0, 1, 16, LR_EVERSION, "protocol 0"},
        {2, 1, 16, LR_EVERSION, "protocol 2"},
        {UINT64_MAX, 1, 16, LR_EVERSION, "protocol 2^64-1"},
        {1, 0, 16, LR_EMALFORMED, "server id 0"},
        {1, 1, 0, LR_EMALFORMED, "empty address"},
        {1, 1, 13, LR_EMALFORMED, "address length not a multiple of 8"},
        {1, 1, HANDSHAKE_ADDRESS_MAX + 8, LR_ETOOBIG, "address just past the limit"},
        {1, 1, UINT64_MAX - 7, LR_ETOOBIG, "address of 2^64 bytes"},
        {1, 1, (uint64_t)1 << 40, LR_ETOOBIG, "address of a terabyte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t p[HANDSHAKE_PREAMBLE_SIZE];
        uint64_t id = 77;
        size_t alen = 77;
        put64(p, cases[i].protocol);
        put64(p + 8, cases[i].id);
        put64(p + 16, cases[i].len);
        int rv = handshake_preamble(p, &id, &alen);
        if (rv != cases[i].rv) {
            fail_msg("%s: %s, want %s", cases[i].why, err_name(rv), err_name(cases[i].rv));
        }
        assert_int_equal(id, 77); /* outputs untouched on refusal */
        assert_int_equal(alen, 77);
    }
    uint8_t p[HANDSHAKE_PREAMBLE_SIZE];
    uint64_t id;
    size_t alen;
    put64(p, 1);
    put64(p + 8, 9);
    put64(p + 16, HANDSHAKE_ADDRESS_MAX);
    assert_int_equal(handshake_preamble(p, &id, &alen), 0);
    assert_int_equal(alen, HANDSHAKE_ADDRESS_MAX);
}

/* The address field must hold printable host:port text ended by a NUL inside the field. */
static void address_refusals(void **state)
{
    (void)state;
    static const char *bad[] = {
        "no-port", "::1:80", "1.2.3.4:99999", "[::1]:80\n2026 fake log line", "h\tx:1", ":80",
    };
    const char *address;
    uint8_t f[16];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t field[64] = {0};
        memcpy(field, bad[i], strlen(bad[i]));
        if (handshake_address(field, 64, &address) != LR_EMALFORMED) {
            fail_msg("address \"%s\" accepted", bad[i]);
        }
    }
    memcpy(f, "1.2.3.4:80xxxxxx", 16); /* no NUL inside the field */
    assert_int_equal(handshake_address(f, 16, &address), LR_EMALFORMED);
    memcpy(f, "1.2.3.4:80\0xxxxx", 16);
    assert_int_equal(handshake_address(f, 16, &address), 0);
    assert_string_equal(address, "1.2.3.4:80");
}

/* Random preambles and fields: no crash, and whatever passes meets the documented bounds. */
static void random_bytes_checked(void **state)
{
    (void)state;
    struct testrng rng = {testlib_seed(11)};
    for (int round = 0; round < 100000; round++) {
        uint8_t b[HANDSHAKE_SIZE_MAX];
        for (size_t k = 0; k < sizeof b; k++) {
            b[k] = (uint8_t)testrng_next(&rng);
        }
        if (round % 2 == 0) {
            put64(b, 1); /* get past the version check half the time */
            put64(b + 16, 8 * (1 + testrng_below(&rng, 40)));
        }
        uint64_t id;
        size_t alen;
        const char *address;
        if (handshake_preamble(b, &id, &alen) != 0) {
            continue;
        }
        assert_true(id != 0 && alen >= 8 && alen % 8 == 0 && alen <= HANDSHAKE_ADDRESS_MAX);
        if (round % 4 == 0) {
            memcpy(b + HANDSHAKE_PREAMBLE_SIZE, "10.0.0.1:7001", 14);
        }
        if (handshake_address(b + HANDSHAKE_PREAMBLE_SIZE, alen, &address) == 0) {
            assert_true(strlen(address) < alen);
            assert_int_equal(addr_valid(address), 1);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encodes_raft_uv_tcp_format),
        cmocka_unit_test(padding_is_ignored),
        cmocka_unit_test(encode_refusals),
        cmocka_unit_test(preamble_refusals),
        cmocka_unit_test(address_refusals),
        cmocka_unit_test(random_bytes_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
