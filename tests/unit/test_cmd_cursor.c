/* tests/unit/test_cmd_cursor.c — part of test_cmd (test_cmd.c): page cursors (cursor.h),
 * encoded here independently of cursor.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "shard/cursor.h"
#include "shard/valid.h"
#include "tests/lib/testlib.h"
#include "test_cmd_int.h"

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
static size_t key_bytes(unsigned char *b, int version, int kind, int64_t a, int64_t bb, int64_t t,
                        const char *id, size_t idlen)
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
    case 0: return (int64_t)testrng_next(r);
    case 1: return (int64_t)testrng_below(r, 1000) - 500;
    case 2: return INT64_MIN + (int64_t)testrng_below(r, 3);
    default: return INT64_MAX - (int64_t)testrng_below(r, 3);
    }
}

/* Board cursors decode to the key and id they were made from; the form is documented. */
void cursor_key_round_trips(void **state)
{
    struct fixture *f = *state;
    static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
    for (int i = 0; i < 20000; i++) {
        struct rankkey k = {
            random_i64(&f->rng), random_i64(&f->rng), random_i64(&f->rng), 7, 0, NULL};
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
void cursor_seq_round_trips(void **state)
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

/* Audit cursors carry (raft index, position) as cursor.h documents, and no other kind reads
 * them. */
void cursor_pos_round_trips(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 20000; i++) {
        uint64_t index = i == 0 ? 0 : (i == 1 ? UINT64_MAX : testrng_next(&f->rng));
        uint32_t pos = i == 0 ? 0 : (i == 1 ? UINT32_MAX : (uint32_t)testrng_next(&f->rng));
        char out[CURSOR_MAX];
        assert_int_equal(cursor_encode_pos(index, pos, out), 0);
        unsigned char raw[14] = {1, 3};
        char want[CURSOR_MAX];
        put_be64(raw + 2, index);
        for (int b = 0; b < 4; b++) {
            raw[10 + b] = (unsigned char)(pos >> (8 * (3 - b)));
        }
        b64url(raw, sizeof raw, want);
        assert_string_equal(out, want);
        uint64_t bi = ~index, seq;
        uint32_t bp = ~pos;
        assert_int_equal(cursor_decode_pos(out, strlen(out), &bi, &bp), 0);
        assert_int_equal(bi, index);
        assert_int_equal(bp, pos);
        assert_int_equal(cursor_decode_seq(out, strlen(out), &seq), LR_EINVAL);
        char s[CURSOR_MAX];
        cursor_encode_seq(index, s);
        assert_int_equal(cursor_decode_pos(s, strlen(s), &bi, &bp), LR_EINVAL);
        /* One byte short or long is not a cursor. */
        b64url(raw, sizeof raw - 1, want);
        assert_int_equal(cursor_decode_pos(want, strlen(want), &bi, &bp), LR_EINVAL);
    }
}

/* Cursors of another version, kind or inner shape are refused. */
void cursor_rejects_wrong_version_and_shape(void **state)
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
void cursor_rejects_truncated_and_noncanonical(void **state)
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
void cursor_random_strings(void **state)
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
