/* tests/unit/test_peerauth.c — the peer handshake's state machine and the cluster key: two
 * sides with the same key agree, a wrong key, a reflected answer, a truncated or garbled
 * message are refused, and no byte sequence leads to "done" without the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/err.h"
#include "proto/peerauth.h"
#include "tests/lib/testlib.h"

struct fixture {
    struct peerauth_key k1, k2;
    char errmsg[LR_ERRMSG_SIZE];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_int_equal(peerauth_key_set(&f->k1, "0123456789abcdef0123", 20, f->errmsg), 0);
    assert_int_equal(peerauth_key_set(&f->k2, "0123456789abcdef0124", 20, f->errmsg), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* Hand all of @from's pending output to @to, in pieces of @step bytes. */
static int pump(struct peerauth *from, struct peerauth *to, size_t step)
{
    size_t n, want;
    const uint8_t *p = peerauth_out(from, &n);
    uint8_t copy[PEERAUTH_M2];
    memcpy(copy, p, n);
    for (size_t off = 0; off < n;) {
        uint8_t *dst = peerauth_want(to, &want);
        if (dst == NULL) {
            return LR_EUNAUTHORIZED;
        }
        size_t k = n - off < step ? n - off : step;
        k = k < want ? k : want;
        memcpy(dst, copy + off, k);
        int rv = peerauth_got(to, k);
        if (rv != 0) {
            return rv;
        }
        off += k;
    }
    return 0;
}

/* Both sides hold the same key: three messages, both done, whatever the read sizes. */
static void right_key_accepted(void **state)
{
    struct fixture *f = *state;
    for (size_t step = 1; step <= PEERAUTH_M2; step += 7) {
        struct peerauth i, r;
        assert_int_equal(peerauth_init(&i, &f->k1, 1), 0);
        assert_int_equal(peerauth_init(&r, &f->k1, 0), 0);
        assert_int_equal(pump(&i, &r, step), 0); /* M1 */
        assert_false(peerauth_done(&r));
        assert_int_equal(pump(&r, &i, step), 0); /* M2 */
        assert_true(peerauth_done(&i));
        assert_int_equal(pump(&i, &r, step), 0); /* M3 */
        assert_true(peerauth_done(&r));
        size_t n;
        assert_null(peerauth_want(&r, &n));
        assert_int_equal(n, 0);
    }
}

/* The responder has another key: the initiator refuses its M2 and sends nothing more. */
static void wrong_key_refused_by_initiator(void **state)
{
    struct fixture *f = *state;
    struct peerauth i, r;
    size_t n;
    assert_int_equal(peerauth_init(&i, &f->k1, 1), 0);
    assert_int_equal(peerauth_init(&r, &f->k2, 0), 0);
    assert_int_equal(pump(&i, &r, 100), 0);
    assert_int_equal(pump(&r, &i, 100), LR_EUNAUTHORIZED);
    assert_false(peerauth_done(&i));
    assert_non_null(strstr(peerauth_why(&i), "--cluster-key-file"));
    peerauth_out(&i, &n);
    assert_int_equal(n, 0);
}

/* The initiator has another key: the responder refuses its M3. (An honest initiator would
 * already have refused M2; the M3 here is what one with the other key computes.) */
static void wrong_key_refused_by_responder(void **state)
{
    struct fixture *f = *state;
    struct peerauth i, r, rk2;
    size_t n, want;
    assert_int_equal(peerauth_init(&i, &f->k2, 1), 0);
    assert_int_equal(peerauth_init(&r, &f->k1, 0), 0);
    /* A twin of r holding k2 (same nonce) answers i, so i computes its M3 with k2. */
    rk2 = r;
    rk2.key = &f->k2;
    struct peerauth i_copy = i;
    assert_int_equal(pump(&i, &r, 100), 0);
    assert_int_equal(pump(&i_copy, &rk2, 100), 0);
    assert_int_equal(pump(&rk2, &i, 100), 0);
    assert_true(peerauth_done(&i));
    assert_int_equal(pump(&i, &r, 100), LR_EUNAUTHORIZED);
    assert_false(peerauth_done(&r));
    assert_null(peerauth_want(&r, &want));
    (void)n;
}

/* An attacker answers a replica's challenge with the replica's own answer (the responder
 * MAC reflected as the initiator's M3, or M2 built from a responder's M2 sent back to that
 * same process as initiator on another connection): labels differ, so it fails. */
static void reflected_answer_refused(void **state)
{
    struct fixture *f = *state;
    struct peerauth r, i;
    size_t n, want;
    /* The attacker opens a connection to r with some nonce, gets M2 = nonce_r, MAC_R. */
    assert_int_equal(peerauth_init(&i, &f->k1, 1), 0);
    assert_int_equal(peerauth_init(&r, &f->k1, 0), 0);
    assert_int_equal(pump(&i, &r, 100), 0);
    const uint8_t *m2 = peerauth_out(&r, &n);
    uint8_t mac_r[PEERAUTH_MAC];
    memcpy(mac_r, m2 + PEERAUTH_MAGIC_LEN + PEERAUTH_NONCE, PEERAUTH_MAC);
    /* ... and sends r's own MAC back as M3. */
    memcpy(peerauth_want(&r, &want), mac_r, PEERAUTH_MAC);
    assert_int_equal(peerauth_got(&r, PEERAUTH_MAC), LR_EUNAUTHORIZED);
    assert_false(peerauth_done(&r));
}

/* M2 cut short and the peer gone: never done. Garbage instead of the magic: refused at once
 * as "not this handshake"; garbage after the magic: refused as a wrong answer. */
static void truncated_and_garbage_refused(void **state)
{
    struct fixture *f = *state;
    struct peerauth i, r;
    size_t n, want;
    assert_int_equal(peerauth_init(&i, &f->k1, 1), 0);
    assert_int_equal(peerauth_init(&r, &f->k1, 0), 0);
    assert_int_equal(pump(&i, &r, 100), 0);
    const uint8_t *m2 = peerauth_out(&r, &n);
    memcpy(peerauth_want(&i, &want), m2, PEERAUTH_M2 - 1);
    assert_int_equal(peerauth_got(&i, PEERAUTH_M2 - 1), 0);
    assert_false(peerauth_done(&i));

    /* The raft preamble of an unkeyed replica (protocol 1, little-endian). */
    uint8_t old[24] = {1, 0, 0, 0, 0, 0, 0, 0, 3};
    assert_int_equal(peerauth_init(&r, &f->k1, 0), 0);
    memcpy(peerauth_want(&r, &want), old, 1);
    assert_int_equal(peerauth_got(&r, 1), LR_EVERSION);
    assert_non_null(strstr(peerauth_why(&r), "without a cluster key"));
    assert_null(peerauth_want(&r, &want));

    /* The magic, then a nonce, then a garbage proof. */
    assert_int_equal(peerauth_init(&i, &f->k1, 1), 0);
    uint8_t bad[PEERAUTH_M2];
    memset(bad, 0xA5, sizeof bad);
    memcpy(bad, PEERAUTH_MAGIC, PEERAUTH_MAGIC_LEN);
    memcpy(peerauth_want(&i, &want), bad, sizeof bad);
    assert_int_equal(peerauth_got(&i, sizeof bad), LR_EUNAUTHORIZED);

    /* Feeding more than was asked for is a refusal, not an overflow. */
    assert_int_equal(peerauth_init(&r, &f->k1, 0), 0);
    assert_int_equal(peerauth_got(&r, PEERAUTH_M1 + 1), LR_EUNAUTHORIZED);
}

/* Random bytes as M1, M2 or M3 never finish a handshake. */
static void random_bytes_never_pass(void **state)
{
    struct fixture *f = *state;
    uint64_t seed = testlib_seed(7);
    srand((unsigned)seed);
    for (int round = 0; round < 2000; round++) {
        struct peerauth i, r;
        size_t want;
        uint8_t b[PEERAUTH_M2];
        for (size_t k = 0; k < sizeof b; k++) {
            b[k] = (uint8_t)rand();
        }
        if (round % 2 == 0) {
            memcpy(b, PEERAUTH_MAGIC, PEERAUTH_MAGIC_LEN);
        }
        assert_int_equal(peerauth_init(&i, &f->k1, 1), 0);
        uint8_t *dst = peerauth_want(&i, &want);
        memcpy(dst, b, want);
        peerauth_got(&i, want);
        assert_false(peerauth_done(&i));
        assert_int_equal(peerauth_init(&r, &f->k1, 0), 0);
        dst = peerauth_want(&r, &want);
        memcpy(dst, b, want);
        if (peerauth_got(&r, want) == 0) {
            dst = peerauth_want(&r, &want);
            memcpy(dst, b + 8, want);
            assert_int_not_equal(peerauth_got(&r, want), 0);
        }
        assert_false(peerauth_done(&r));
    }
}

/* Keys: too short refused; a raw line or a JSON keys.json loads; env used without a file. */
static void key_sources(void **state)
{
    struct fixture *f = *state;
    struct peerauth_key k;
    int have;
    assert_int_equal(peerauth_key_set(&k, "short\n", 6, f->errmsg), LR_EINVAL);
    assert_non_null(strstr(f->errmsg, "16"));
    char *dir = testlib_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/key", dir);
    FILE *fp = fopen(path, "w");
    fputs("00112233445566778899aabbccddeeff\n", fp);
    fclose(fp);
    assert_int_equal(peerauth_key_load(&k, path, f->errmsg), 0);
    assert_int_equal(k.len, 32);
    snprintf(path, sizeof path, "%s/keys.json", dir);
    fp = fopen(path, "w");
    fputs("{\"admin_key\": \"x\", \"cluster_key\": \"00112233445566778899aabbccddeeff\"}\n", fp);
    fclose(fp);
    struct peerauth_key k2;
    assert_int_equal(peerauth_key_config(&k2, &have, path, "ignored-env-value-xxxx", f->errmsg), 0);
    assert_int_equal(have, 1);
    assert_int_equal(k2.len, 32);
    assert_memory_equal(k.bytes, k2.bytes, 32);
    fp = fopen(path, "w");
    fputs("{\"admin_key\": \"x\"}\n", fp);
    fclose(fp);
    assert_int_equal(peerauth_key_load(&k, path, f->errmsg), LR_EMALFORMED);
    assert_non_null(strstr(f->errmsg, "cluster_key"));
    assert_int_equal(peerauth_key_load(&k, "/nonexistent/key", f->errmsg), LR_EIO);
    assert_int_equal(peerauth_key_config(&k, &have, NULL, "0123456789abcdefXYZ", f->errmsg), 0);
    assert_int_equal(have, 1);
    assert_int_equal(peerauth_key_config(&k, &have, NULL, NULL, f->errmsg), 0);
    assert_int_equal(have, 0);
    testlib_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(right_key_accepted),
        cmocka_unit_test(wrong_key_refused_by_initiator),
        cmocka_unit_test(wrong_key_refused_by_responder),
        cmocka_unit_test(reflected_answer_refused),
        cmocka_unit_test(truncated_and_garbage_refused),
        cmocka_unit_test(random_bytes_never_pass),
        cmocka_unit_test(key_sources),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
