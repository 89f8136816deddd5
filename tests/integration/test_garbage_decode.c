/* tests/integration/test_garbage_decode.c — part of test_garbage (test_garbage.c): random
 * and mutated entries into the command decoders (what they accept must re-encode to itself),
 * random and mutated strings into the cursor and time parsers, random bytes into the msgpack
 * reader. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "shard/cmd.h"
#include "shard/cursor.h"
#include "shard/mp.h"
#include "shard/timefmt.h"
#include "tests/lib/testlib.h"
#include "test_garbage_int.h"

/* ---- checking decoders ------------------------------------------------------------------ */

/* An accepted command re-encodes to one that decodes to the same request. */
static void check_accepted(struct fixture *f, const struct cmd *c)
{
    assert_non_null(cmd_name(c->type));
    assert_true(c->ts >= 0 && c->ts <= TS_MAX);
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(cmd_entry_begin(&pk, 1), 0);
    assert_int_equal(cmd_encode(&pk, c), 0);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    struct cmd_entry e;
    struct cmd d;
    char msg[LR_ERRMSG_SIZE];
    assert_int_equal(cmd_entry_decode(sb.data, sb.size, &up, &e, msg), 0);
    assert_int_equal(e.n, 1);
    assert_int_equal(cmd_decode(&e.cmds[0], &d, msg), 0);
    assert_int_equal(d.type, c->type);
    assert_int_equal(d.ts, c->ts);
    assert_int_equal(cmd_request_hash(&d), cmd_request_hash(c));
    struct lr_str p1, k1, p2, k2;
    cmd_idem(c, &p1, &k1);
    cmd_idem(&d, &p2, &k2);
    assert_int_equal(k1.len, k2.len);
    assert_memory_equal(k1.p, k2.p, k1.len);
    assert_int_equal(p1.len, p2.len);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    (void)f;
}

/* Decode @buf (copied to an exact-size allocation) as an entry and each of its commands.
 * Returns the number of commands the envelope holds (0 if refused). */
uint32_t decode_check(struct fixture *f, const char *buf, size_t len)
{
    char *p = malloc(len ? len : 1);
    assert_non_null(p);
    memcpy(p, buf, len);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    struct cmd_entry e;
    char msg[LR_ERRMSG_SIZE];
    msg[0] = '\0';
    int rv = cmd_entry_decode(p, len, &up, &e, msg);
    uint32_t n = 0;
    if (rv != 0) {
        if (rv != LR_EMALFORMED && rv != LR_EVERSION && rv != LR_ETOOBIG) {
            fail_msg("cmd_entry_decode returned %d (%s)", rv, msg);
        }
        assert_true(strncmp(msg, "entry: ", 7) == 0);
        f->entries_bad++;
    } else {
        f->entries_ok++;
        n = e.n;
        for (uint32_t i = 0; i < e.n; i++) {
            struct cmd c;
            msg[0] = '\0';
            rv = cmd_decode(&e.cmds[i], &c, msg);
            if (rv == 0) {
                f->cmds_ok++;
                check_accepted(f, &c);
            } else {
                if (rv != LR_EMALFORMED && rv != LR_EINVAL && rv != LR_EVERSION) {
                    fail_msg("cmd_decode returned %d (%s)", rv, msg);
                }
                assert_true(strlen(msg) > 0);
                f->cmds_bad++;
            }
        }
    }
    msgpack_unpacked_destroy(&up);
    free(p);
    return n;
}

/* Random buffers into the entry and command decoders: an LR_E* code or success, never a crash. */
void random_buffers_into_decoders(void **state)
{
    struct fixture *f = *state;
    f->rng.s ^= 0xa;
    uint64_t n = scaled(f, N_RANDOM);
    for (uint64_t i = 0; i < n; i++) {
        random_entry(f);
        decode_check(f, f->sb.data, f->sb.size);
    }
    fprintf(stderr, "# random: entries %llu ok %llu refused; commands %llu ok %llu refused\n",
            (unsigned long long)f->entries_ok, (unsigned long long)f->entries_bad,
            (unsigned long long)f->cmds_ok, (unsigned long long)f->cmds_bad);
    /* The generator must reach past the envelope, or the test tests little. */
    assert_true(f->entries_ok > n / 10);
    assert_true(f->cmds_bad > n / 20);
}

/* Mutations of valid entries into the decoders: an LR_E* code or success, never a crash. */
void mutated_entries_into_decoders(void **state)
{
    struct fixture *f = *state;
    f->rng.s ^= 0xb;
    for (uint32_t i = 0; i < f->nseeds; i++) {
        assert_int_equal(decode_check(f, f->seeds[i].p, f->seeds[i].n) > 0, 1);
    }
    assert_int_equal(f->cmds_bad, 0);
    uint64_t n = scaled(f, N_MUTATED);
    for (uint64_t i = 0; i < n; i++) {
        mutate(f);
        decode_check(f, f->m.p, f->m.n);
    }
    fprintf(stderr, "# mutated: entries %llu ok %llu refused; commands %llu ok %llu refused\n",
            (unsigned long long)f->entries_ok, (unsigned long long)f->entries_bad,
            (unsigned long long)f->cmds_ok, (unsigned long long)f->cmds_bad);
    assert_true(f->cmds_ok > n / 10);
    assert_true(f->cmds_bad > n / 10);
    assert_true(f->entries_bad > n / 10);
}

/* ---- strings into the cursor and time parsers ------------------------------------------- */

static void random_string(struct fixture *f, char *s, size_t *len, size_t max, const char *alpha)
{
    size_t n = testrng_below(&f->rng, max + 1);
    int raw = testrng_below(&f->rng, 4) == 0;
    size_t na = strlen(alpha);
    for (size_t i = 0; i < n; i++) {
        s[i] = raw ? (char)testrng_next(&f->rng) : alpha[testrng_below(&f->rng, na)];
    }
    *len = n;
}

/* Mutate a valid string @from in place into @s: a few random characters changed, cut or added. */
static void mutate_string(struct fixture *f, const char *from, char *s, size_t *len,
                          const char *alpha)
{
    size_t n = strlen(from);
    memcpy(s, from, n);
    int edits = 1 + (int)testrng_below(&f->rng, 3);
    for (int e = 0; e < edits; e++) {
        size_t at = n ? testrng_below(&f->rng, n) : 0;
        switch (testrng_below(&f->rng, 3)) {
        case 0:
            if (n) {
                s[at] = alpha[testrng_below(&f->rng, strlen(alpha))];
            }
            break;
        case 1: n = at; break;
        default:
            if (n < 60) {
                memmove(s + at + 1, s + at, n - at);
                s[at] = alpha[testrng_below(&f->rng, strlen(alpha))];
                n++;
            }
            break;
        }
    }
    *len = n;
}

/* Random and mutated strings into the cursor decoders: refused, or canonical and re-encodable. */
void random_strings_into_cursors(void **state)
{
    struct fixture *f = *state;
    f->rng.s ^= 0xd;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    struct rankkey key = {-3, 99, TS0, 0, 0, NULL};
    char valid_key[CURSOR_MAX], valid_seq[CURSOR_MAX];
    assert_int_equal(cursor_encode_key(&key, "player.1", 8, valid_key), 0);
    assert_int_equal(cursor_encode_seq(123456789, valid_seq), 0);
    uint64_t n = scaled(f, N_STRINGS), accepted = 0;
    for (uint64_t i = 0; i < n; i++) {
        char s[CURSOR_MAX + 64];
        size_t len;
        switch (i % 3) {
        case 0: random_string(f, s, &len, sizeof s, b64); break;
        case 1: mutate_string(f, valid_key, s, &len, b64); break;
        default: mutate_string(f, valid_seq, s, &len, b64); break;
        }
        char *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, s, len);
        struct rankkey k;
        char idbuf[VALID_ID_MAX + 1];
        char again[CURSOR_MAX];
        uint64_t seq;
        int rv = cursor_decode_key(p, len, &k, idbuf);
        assert_true(rv == 0 || rv == LR_EINVAL);
        if (rv == 0) {
            assert_int_equal(k.pid, RANKKEY_FOREIGN);
            assert_true(valid_id(k.id, k.idlen, VALID_ID_MAX));
            assert_int_equal(cursor_encode_key(&k, k.id, k.idlen, again), 0);
            assert_int_equal(strlen(again), len);
            assert_memory_equal(again, p, len);
            accepted++;
        }
        rv = cursor_decode_seq(p, len, &seq);
        assert_true(rv == 0 || rv == LR_EINVAL);
        if (rv == 0) {
            assert_int_equal(cursor_encode_seq(seq, again), 0);
            assert_int_equal(strlen(again), len);
            assert_memory_equal(again, p, len);
            accepted++;
        }
        free(p);
    }
    fprintf(stderr, "# cursors: %llu of %llu accepted\n", (unsigned long long)accepted,
            (unsigned long long)n);
    assert_true(accepted > 0);
}

/* Random and mutated strings into the time parsers: refused, or a time that round-trips. */
void random_strings_into_time_parsers(void **state)
{
    struct fixture *f = *state;
    f->rng.s ^= 0xe;
    static const char alpha[] = "0123456789-:T.Z+0123456789W";
    static const char *const valid[] = {"2026-11-22T12:31:00.123Z", "2024-02-29T23:59:59+05:30",
                                        "1970-01-01T00:00:00.5-01:00", "9999-12-31T23:59:59.999Z"};
    static const char *const periods[TIMEFMT_NWINDOWS] = {"alltime", "2026-11-22", "2026-W47",
                                                          "2026-11", "29922511"};
    uint64_t n = scaled(f, N_STRINGS), accepted = 0;
    for (uint64_t i = 0; i < n; i++) {
        char s[80];
        size_t len;
        if (i % 2) {
            random_string(f, s, &len, 40, alpha);
        } else {
            mutate_string(f, valid[testrng_below(&f->rng, 4)], s, &len, alpha);
        }
        char *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, s, len);
        int64_t ms = 0;
        int rv = timefmt_parse_rfc3339(p, len, &ms);
        assert_true(rv == 0 || rv == LR_EINVAL);
        if (rv == 0) {
            accepted++;
            /* Whatever parsed is an instant; in range, it formats and parses back. */
            char out[TIMEFMT_RFC3339_LEN + 1];
            if (ms >= 0 && ms <= TS_MAX) {
                int64_t back;
                assert_int_equal(timefmt_rfc3339(ms, out), 0);
                assert_int_equal(timefmt_parse_rfc3339(out, strlen(out), &back), 0);
                assert_int_equal(back, ms);
            } else { /* years 0000-9999 shifted by at most a day's offset */
                assert_true(ms >= (timefmt_days_from_civil(0, 1, 1) - 1) * 86400000LL &&
                            ms < TS_MAX + 86400000LL);
            }
        }
        free(p);
        /* The same treatment for every window's period strings. */
        for (int w = 0; w < TIMEFMT_NWINDOWS; w++) {
            if (testrng_below(&f->rng, 2)) {
                mutate_string(f, periods[w], s, &len, alpha);
            } else {
                random_string(f, s, &len, 20, alpha);
            }
            p = malloc(len ? len : 1);
            assert_non_null(p);
            memcpy(p, s, len);
            int64_t per;
            rv = timefmt_period_parse((enum timefmt_window)w, p, len, &per);
            assert_true(rv == 0 || rv == LR_EINVAL);
            if (rv == 0) {
                char out[TIMEFMT_PERIOD_MAX];
                int64_t back;
                if (timefmt_period_format((enum timefmt_window)w, per, out) == 0) {
                    assert_int_equal(
                        timefmt_period_parse((enum timefmt_window)w, out, strlen(out), &back), 0);
                    assert_int_equal(back, per);
                }
            }
            enum timefmt_window win;
            rv = timefmt_window_parse(p, len, &win);
            assert_true(rv == 0 || rv == LR_EINVAL);
            free(p);
        }
    }
    fprintf(stderr, "# times: %llu of %llu accepted\n", (unsigned long long)accepted,
            (unsigned long long)n);
    assert_true(accepted > n / 100);
}

/* ---- bytes into the msgpack reader ------------------------------------------------------ */

/* Random bytes into mp_skip and the typed readers: reads stay inside the buffer. */
void random_bytes_into_mp_reader(void **state)
{
    struct fixture *f = *state;
    f->rng.s ^= 0xf;
    uint64_t n = scaled(f, N_MP), done = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t len;
        if (i % 2) {
            len = testrng_below(&f->rng, 64);
            msgpack_sbuffer_clear(&f->sb);
            for (size_t j = 0; j < len; j++) {
                char c = (char)(testrng_below(&f->rng, 3)
                                    ? testrng_next(&f->rng)
                                    : interesting[testrng_below(&f->rng, sizeof interesting)]);
                msgpack_sbuffer_write(&f->sb, &c, 1);
            }
        } else { /* valid msgpack, then maybe cut or flipped */
            msgpack_sbuffer_clear(&f->sb);
            pack_random(f, 4);
            if (testrng_below(&f->rng, 2) && f->sb.size) {
                f->sb.data[testrng_below(&f->rng, f->sb.size)] ^=
                    (char)(1u << testrng_below(&f->rng, 8));
            }
            if (testrng_below(&f->rng, 2)) {
                f->sb.size = testrng_below(&f->rng, f->sb.size + 1);
            }
        }
        len = f->sb.size;
        unsigned char *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, f->sb.data, len);
        /* Skip value after value: each success moves forward, failure latches. */
        struct mp r;
        mp_init(&r, p, len);
        while (!r.err && r.p < r.end) {
            const unsigned char *before = r.p;
            mp_skip(&r);
            assert_true(r.p >= p && r.p <= p + len);
            if (!r.err) {
                assert_true(r.p > before);
            }
        }
        done += mp_done(&r);
        /* Typed reads in a random order. */
        mp_init(&r, p, len);
        for (int k = 0; k < 16 && !r.err; k++) {
            switch (testrng_below(&f->rng, 6)) {
            case 0: (void)mp_i64(&r); break;
            case 1: {
                struct lr_str s = mp_str(&r);
                if (!r.err) {
                    assert_true((const unsigned char *)s.p >= p);
                    assert_true((const unsigned char *)s.p + s.len <= p + len);
                }
                break;
            }
            case 2: (void)mp_array(&r); break;
            case 3: (void)mp_map(&r); break;
            case 4: (void)mp_bool(&r); break;
            default: (void)mp_nil(&r); break;
            }
            assert_true(r.p >= p && r.p <= p + len);
        }
        free(p);
    }
    fprintf(stderr, "# mp: %llu of %llu buffers skipped cleanly to the end\n",
            (unsigned long long)done, (unsigned long long)n);
    assert_true(done > n / 10);
}
