/* tests/unit/test_cmd_fields.c — part of test_cmd (test_cmd.c): the tests generated from
 * cmd.h's field lists (every bound of every field, the API conventions, the request hash over
 * every field) and the input rules of valid.h. */
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "shard/cmd.h"
#include "shard/valid.h"
#include "tests/lib/testlib.h"
#include "test_cmd_int.h"

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

static void check_OPTID(struct fixture *f, struct cmd *c, struct lr_str *v, int64_t a, int64_t b,
                        const char *fname)
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
        "ab\xff",               /* never UTF-8 */
        "\x80x",                /* lone continuation */
        "x\xc3",                /* cut 2-byte form */
        "x\xe2\x82",            /* cut 3-byte form */
        "\xc3\x28",             /* bad continuation */
        "\xc0\x80",             /* overlong NUL */
        "\xc1\xbf",             /* overlong 0x7f */
        "\xe0\x80\xaf",         /* overlong '/' */
        "\xf0\x80\x80\xaf",     /* overlong '/' */
        "\xed\xa0\x80",         /* surrogate U+D800 */
        "\xf4\x90\x80\x80",     /* U+110000 */
        "\xf8\x88\x80\x80\x80", /* 5-byte form */
        "a\x01",                /* control characters */
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
    static const char *const bad[] = {"1234567\x01", "abcdefg\x7f",
                                      "abc\xc3\xa9"
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
#define CHECK_FN(code, NAME, name, flags)                                                          \
    static void check_fields_##name(struct fixture *f)                                             \
    {                                                                                              \
        struct cmd c = sample(CMD_##NAME);                                                         \
        struct cmd_##name *x = &c.u.name;                                                          \
        CMD_##NAME(CHECK_FIELD)                                                                    \
    }
CMD_LIST(CHECK_FN)
#undef CHECK_FN

/* Every field of every command accepts its bounds and refuses what lies just past them. */
void every_field_enforces_its_bounds(void **state)
{
    struct fixture *f = *state;
#define CHECK_CALL(code, NAME, name, flags) check_fields_##name(f);
    CMD_LIST(CHECK_CALL)
#undef CHECK_CALL
}

/* The named cases of API.md's conventions, spelled out. */
void api_conventions_spelled_out(void **state)
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
    msgpack_pack_array(&f->pk, 2 + 10);
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
    msgpack_pack_int64(&f->pk, 0); /* keep_periods */
    msgpack_pack_int64(&f->pk, 0); /* version */
    struct cmd out;
    assert_int_equal(decode_one(f, &out), LR_EINVAL);
    expect_msg_names(f->errmsg, "rewards");
    assert_non_null(strstr(f->errmsg, "32"));
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
#define HASH_FN(code, NAME, name, flags)                                                           \
    static void hash_fields_##name(void)                                                           \
    {                                                                                              \
        struct cmd c = sample(CMD_##NAME);                                                         \
        struct cmd_##name *x = &c.u.name;                                                          \
        CMD_##NAME(HASH_FIELD)                                                                     \
    }
CMD_LIST(HASH_FN)
#undef HASH_FN

/* The request hash changes with every field but the idempotency key, and not with ts. */
void request_hash_covers_every_field(void **state)
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
        /* Nor who sent it: a retry from another address is the same request. */
        c.origin.key = CMD_KEY_ADMIN;
        c.origin.source = S("10.0.0.9");
        assert_int_equal(cmd_request_hash(&c), h0);
        /* Different commands are different requests. */
        for (size_t j = 0; j < i; j++) {
            struct cmd d = sample(all_types[j]);
            assert_int_not_equal(cmd_request_hash(&d), h0);
        }
    }
}

/* Bytes moved from one string field to the next make a different request. */
void request_hash_keeps_field_boundaries(void **state)
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
void valid_id_alphabet_and_length(void **state)
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
void valid_text_counts_code_points(void **state)
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
void valid_idem_printable_ascii(void **state)
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
void valid_score_bounds(void **state)
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
