/* tests/unit/test_cors.c — the router's CORS header lines (router/cors.h): the wildcard by
 * default, a listed origin echoed with Vary, an unlisted one given no Allow-Origin, the
 * preflight's lines, and the lists cors_init refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/err.h"
#include "router/cors.h"

#define EXPOSE "Access-Control-Expose-Headers: " CORS_EXPOSE_HEADERS "\r\n"

/* No list, "" and "*" all allow every origin, whatever the request's Origin. */
static void wildcard_by_default(void **state)
{
    (void)state;
    static const char *const lists[] = {NULL, "", "*"};
    struct cors c;
    char err[128], out[CORS_HEADERS_MAX];
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        assert_int_equal(cors_init(&c, lists[i], err, sizeof err), 0);
        size_t n = cors_headers(&c, "https://anywhere.example", out, sizeof out);
        assert_string_equal(out, "Access-Control-Allow-Origin: *\r\n" EXPOSE);
        assert_int_equal(n, strlen(out));
        cors_headers(&c, "", out, sizeof out);
        assert_string_equal(out, "Access-Control-Allow-Origin: *\r\n" EXPOSE);
        assert_true(cors_allows(&c, "https://anywhere.example"));
    }
}

/* With a list, a listed origin is echoed with Vary: Origin; an unlisted one, a prefix of a
 * listed one or none at all gets Vary alone. */
static void a_list_echoes_listed_origins_only(void **state)
{
    (void)state;
    struct cors c;
    char err[128], out[CORS_HEADERS_MAX];
    assert_int_equal(cors_init(&c, "https://a.example,http://localhost:3000", err, sizeof err), 0);
    assert_int_equal(c.n, 2);
    cors_headers(&c, "http://localhost:3000", out, sizeof out);
    assert_string_equal(out,
                        "Access-Control-Allow-Origin: http://localhost:3000\r\n"
                        "Vary: Origin\r\n" EXPOSE);
    cors_headers(&c, "https://a.example", out, sizeof out);
    assert_string_equal(out,
                        "Access-Control-Allow-Origin: https://a.example\r\n"
                        "Vary: Origin\r\n" EXPOSE);
    assert_true(cors_allows(&c, "https://a.example"));
    assert_true(cors_allows(&c, "")); /* no Origin: not a browser */
    static const char *const others[] = {"https://b.example", "https://a.exampl",
                                         "https://a.example.evil", "HTTPS://A.EXAMPLE", ""};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        cors_headers(&c, others[i], out, sizeof out);
        assert_string_equal(out, "Vary: Origin\r\n" EXPOSE);
        assert_true(cors_allows(&c, others[i]) == (others[i][0] == '\0'));
    }
}

/* Empty items, spaces, control bytes (a header line could be forged with CRLF), too long an
 * origin or too many are refused with a sentence. */
static void malformed_lists_are_refused(void **state)
{
    (void)state;
    struct cors c;
    char err[128], big[CORS_ORIGIN_MAX + 8], many[CORS_ORIGINS_MAX * 16] = "";
    static const char *const bad[] = {",",
                                      "https://a.example,",
                                      ",https://a.example",
                                      "https://a.example,,http://b",
                                      "https://a.example, http://b",
                                      "https://a.example\r\nSet-Cookie: x=1",
                                      "http://\x7f"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(cors_init(&c, bad[i], err, sizeof err), LR_EINVAL);
        assert_non_null(strstr(err, "comma-separated"));
    }
    memset(big, 'a', CORS_ORIGIN_MAX);
    big[CORS_ORIGIN_MAX] = '\0';
    assert_int_equal(cors_init(&c, big, err, sizeof err), LR_EINVAL);
    big[CORS_ORIGIN_MAX - 1] = '\0';
    assert_int_equal(cors_init(&c, big, err, sizeof err), 0);
    for (int i = 0; i <= CORS_ORIGINS_MAX; i++) {
        size_t n = strlen(many);
        snprintf(many + n, sizeof many - n, "%shttp://%d", i ? "," : "", i);
    }
    assert_int_equal(cors_init(&c, many, err, sizeof err), LR_EINVAL);
    assert_non_null(strstr(err, "at most"));
    *strrchr(many, ',') = '\0';
    assert_int_equal(cors_init(&c, many, err, sizeof err), 0);
    assert_int_equal(c.n, CORS_ORIGINS_MAX);
}

/* A preflight's lines: the methods given, the request headers the API reads, the max age. */
static void preflight_lines(void **state)
{
    (void)state;
    char out[CORS_HEADERS_MAX], methods[CORS_HEADERS_MAX];
    size_t n = cors_preflight("PUT, GET", out, sizeof out);
    assert_int_equal(n, strlen(out));
    assert_string_equal(out,
                        "Access-Control-Allow-Methods: PUT, GET\r\n"
                        "Access-Control-Allow-Headers: Authorization, Content-Type, "
                        "Laurel-Consistency\r\n"
                        "Access-Control-Max-Age: 86400\r\n");
    memset(methods, 'X', sizeof methods - 1);
    methods[sizeof methods - 1] = '\0';
    assert_int_equal(cors_preflight(methods, out, sizeof out), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wildcard_by_default),
        cmocka_unit_test(a_list_echoes_listed_origins_only),
        cmocka_unit_test(malformed_lists_are_refused),
        cmocka_unit_test(preflight_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
