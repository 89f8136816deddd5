/* tests/unit/test_err.c — the LR_E* table and the conversions into it.
 *
 * The table is walked through the same X-macro that generates it, so a code added to
 * LR_ERRORS without a message, name, API code or HTTP status fails here. */
#include <errno.h>
#include <lmdb.h>
#include <raft.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "lib/err.h"
#include "tests/lib/testlib.h"

/* One row of LR_ERRORS as the test sees it, generated from the same list. */
struct row {
    int value;
    const char *name;
    const char *api;
    int http;
    const char *msg;
};

static const struct row rows[] = {
#define ROW(name, value, api, http, msg) {value, #name, api, http, msg},
    LR_ERRORS(ROW)
#undef ROW
};
#define NROWS (sizeof rows / sizeof rows[0])

/* API codes API.md lists; every row must surface as one of them. */
static int api_code_known(const char *code)
{
    static const char *const codes[] = {"ok",        "invalid_argument",  "unauthorized",
                                        "forbidden", "not_found",         "method_not_allowed",
                                        "conflict",  "payload_too_large", "rate_limited",
                                        "internal",  "unavailable"};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (strcmp(code, codes[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Every code in the table has its own message, name, API code and HTTP status. */
static void every_code_is_described(void **state)
{
    (void)state;
    assert_int_equal(NROWS, LR__ECOUNT);
    for (size_t i = 0; i < NROWS; i++) {
        int rv = rows[i].value;
        assert_int_equal(rv, (int)i); /* dense: the table is indexed by value */
        assert_string_equal(err_message(rv), rows[i].msg);
        assert_string_not_equal(err_message(rv), "unknown error");
        assert_true(strlen(err_message(rv)) > 0);
        assert_string_equal(err_name(rv), rows[i].name);
        assert_true(strncmp(err_name(rv), "LR_", 3) == 0);
        assert_string_equal(err_api_code(rv), rows[i].api);
        assert_true(api_code_known(err_api_code(rv)));
        assert_int_equal(err_http_status(rv), rows[i].http);
        assert_true(err_http_status(rv) >= 200 && err_http_status(rv) <= 599);
        /* Only success is a 2xx; every error is a 4xx or 5xx. */
        assert_true((rv == LR_OK) == (err_http_status(rv) < 300));
    }
}

/* Messages are distinct, so a log line names the failure unambiguously. */
static void messages_are_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        for (size_t j = i + 1; j < NROWS; j++) {
            assert_string_not_equal(err_message(rows[i].value), err_message(rows[j].value));
            assert_string_not_equal(err_name(rows[i].value), err_name(rows[j].value));
        }
    }
}

/* A few codes surface exactly as API.md says. */
static void known_codes_map_to_api(void **state)
{
    (void)state;
    assert_string_equal(err_api_code(LR_ENOTFOUND), "not_found");
    assert_int_equal(err_http_status(LR_ENOTFOUND), 404);
    assert_string_equal(err_api_code(LR_EINVAL), "invalid_argument");
    assert_int_equal(err_http_status(LR_EINVAL), 400);
    assert_string_equal(err_api_code(LR_ETOOBIG), "payload_too_large");
    assert_int_equal(err_http_status(LR_ETOOBIG), 413);
    assert_string_equal(err_api_code(LR_ENOTLEADER), "unavailable");
    assert_int_equal(err_http_status(LR_ENOTLEADER), 503);
    assert_string_equal(err_name(LR_ECORRUPT), "LR_ECORRUPT");
}

/* Codes outside the table read as "unknown error" and an internal 500, never NULL. */
static void unknown_codes_are_unknown(void **state)
{
    (void)state;
    const int bad[] = {-1, LR__ECOUNT, LR__ECOUNT + 1, 1000, -1000, 0x7fffffff, -0x7fffffff - 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_string_equal(err_message(bad[i]), "unknown error");
        assert_non_null(err_name(bad[i]));
        assert_string_equal(err_api_code(bad[i]), "internal");
        assert_int_equal(err_http_status(bad[i]), 500);
    }
}

/* LMDB codes and errnos convert to the matching LR_E* code. */
static void mdb_codes_convert(void **state)
{
    (void)state;
    assert_int_equal(err_from_mdb(MDB_SUCCESS), LR_OK);
    assert_int_equal(err_from_mdb(MDB_NOTFOUND), LR_ENOTFOUND);
    assert_int_equal(err_from_mdb(MDB_KEYEXIST), LR_EEXIST);
    assert_int_equal(err_from_mdb(MDB_MAP_FULL), LR_EMAPFULL);
    assert_int_equal(err_from_mdb(MDB_CORRUPTED), LR_ECORRUPT);
    assert_int_equal(err_from_mdb(MDB_PAGE_NOTFOUND), LR_ECORRUPT);
    assert_int_equal(err_from_mdb(MDB_INVALID), LR_ECORRUPT);
    assert_int_equal(err_from_mdb(MDB_VERSION_MISMATCH), LR_ECORRUPT);
    assert_int_equal(err_from_mdb(ENOSPC), LR_ENOSPC);
    assert_int_equal(err_from_mdb(ENOMEM), LR_ENOMEM);
    assert_int_equal(err_from_mdb(EINVAL), LR_EINVAL);
    /* Anything else is an I/O error, never success. */
    assert_int_equal(err_from_mdb(EIO), LR_EIO);
    assert_int_equal(err_from_mdb(EACCES), LR_EIO);
    assert_int_equal(err_from_mdb(MDB_TXN_FULL), LR_EIO);
}

/* libuv's negative codes convert at the same boundary; an unlisted one is an I/O error. */
static void uv_codes_convert(void **state)
{
    (void)state;
    assert_int_equal(err_from_uv(0), LR_OK);
    assert_int_equal(err_from_uv(UV_ENOMEM), LR_ENOMEM);
    assert_int_equal(err_from_uv(UV_EINVAL), LR_EINVAL);
    assert_int_equal(err_from_uv(UV_EADDRINUSE), LR_EUNAVAILABLE);
    assert_int_equal(err_from_uv(UV_ECONNREFUSED), LR_EUNAVAILABLE);
    assert_int_equal(err_from_uv(UV_ENOSPC), LR_ENOSPC);
    assert_int_equal(err_from_uv(UV_EIO), LR_EIO);
    assert_int_equal(err_from_uv(UV_EPIPE), LR_EIO);
}

/* libraft's positive codes convert too; an unlisted one is internal, never success. */
static void raft_codes_convert(void **state)
{
    (void)state;
    assert_int_equal(err_from_raft(0), LR_OK);
    assert_int_equal(err_from_raft(RAFT_NOMEM), LR_ENOMEM);
    assert_int_equal(err_from_raft(RAFT_NOTLEADER), LR_ENOTLEADER);
    assert_int_equal(err_from_raft(RAFT_LEADERSHIPLOST), LR_ENOTLEADER);
    assert_int_equal(err_from_raft(RAFT_IOERR), LR_EIO);
    assert_int_equal(err_from_raft(RAFT_NOSPACE), LR_ENOSPC);
    assert_int_equal(err_from_raft(RAFT_CORRUPT), LR_ECORRUPT);
    assert_int_equal(err_from_raft(12345), LR_EINTERNAL);
}

/* errmsg_set formats into the buffer and returns the code it was given. */
static void errmsg_set_formats_and_returns_rv(void **state)
{
    (void)state;
    char errmsg[LR_ERRMSG_SIZE];
    memset(errmsg, 'x', sizeof errmsg);
    assert_int_equal(errmsg_set(errmsg, LR_EMAPFULL, "store: put %s: %d", "players", 42),
                     LR_EMAPFULL);
    assert_string_equal(errmsg, "store: put players: 42");
    assert_int_equal(errmsg_set(errmsg, 0, "%s", "fine"), 0);
    assert_string_equal(errmsg, "fine");
}

/* errmsg_set truncates a long sentence to the buffer and keeps it terminated. */
static void errmsg_set_truncates(void **state)
{
    (void)state;
    char errmsg[LR_ERRMSG_SIZE + 16];
    char longer[2 * LR_ERRMSG_SIZE];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    memset(errmsg, 'z', sizeof errmsg);
    assert_int_equal(errmsg_set(errmsg, LR_EINVAL, "%s", longer), LR_EINVAL);
    assert_int_equal(strlen(errmsg), LR_ERRMSG_SIZE - 1);
    /* Nothing written past the documented size. */
    for (size_t i = LR_ERRMSG_SIZE; i < sizeof errmsg; i++) {
        assert_int_equal(errmsg[i], 'z');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_code_is_described),
        cmocka_unit_test(messages_are_distinct),
        cmocka_unit_test(known_codes_map_to_api),
        cmocka_unit_test(unknown_codes_are_unknown),
        cmocka_unit_test(mdb_codes_convert),
        cmocka_unit_test(uv_codes_convert),
        cmocka_unit_test(raft_codes_convert),
        cmocka_unit_test(errmsg_set_formats_and_returns_rv),
        cmocka_unit_test(errmsg_set_truncates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
