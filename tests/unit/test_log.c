/* tests/unit/test_log.c — lib/log: both formats carry the process, node, region and term on
 * every line; the json format is one parseable object per line whatever the message holds;
 * text fields with spaces stay one word; the parsers refuse unknown names; the line limiter
 * lets one line a second through and counts the rest. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/log.h"

/* A logger writing into a memory buffer; log_close_buf returns the text (owned). */
struct buf {
    char *p;
    size_t n;
    FILE *f;
};

static void buf_open(struct buf *b, struct logger *lg, enum log_format fmt)
{
    b->p = NULL;
    b->n = 0;
    b->f = open_memstream(&b->p, &b->n);
    assert_non_null(b->f);
    log_init(lg, b->f, LOG_INFO, 3, "eu");
    log_set_process(lg, "node", fmt);
    lg->term = 7;
}

static char *buf_close(struct buf *b)
{
    fclose(b->f);
    return b->p;
}

static void json_lines_parse_and_carry_identity(void **state)
{
    (void)state;
    struct logger lg;
    struct buf b;
    buf_open(&b, &lg, LOG_FORMAT_JSON);
    LOG(&lg, LOG_WARN, "a \"quoted\"\nmessage with\ttabs %d", 42);
    LOG(&lg, LOG_DEBUG, "not written: below the level");
    json_t *f = json_pack("{s:s,s:i}", "route", "/v1/boards/{}/top", "status", 200);
    log_emit_fields(&lg, LOG_INFO, f, "request");
    json_decref(f);
    char *text = buf_close(&b);
    char *save = NULL, *line;
    int n = 0;
    for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), n++) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "process")), "node");
        assert_string_equal(json_string_value(json_object_get(o, "region")), "eu");
        assert_int_equal(json_integer_value(json_object_get(o, "term")), 7);
        assert_int_equal(json_integer_value(json_object_get(o, "node")), 3);
        assert_non_null(json_string_value(json_object_get(o, "ts")));
        if (n == 0) {
            assert_string_equal(json_string_value(json_object_get(o, "level")), "warn");
            assert_string_equal(json_string_value(json_object_get(o, "msg")),
                                "a \"quoted\"\nmessage with\ttabs 42");
        } else {
            assert_string_equal(json_string_value(json_object_get(o, "msg")), "request");
            assert_string_equal(json_string_value(json_object_get(o, "route")),
                                "/v1/boards/{}/top");
            assert_int_equal(json_integer_value(json_object_get(o, "status")), 200);
        }
        json_decref(o);
    }
    assert_int_equal(n, 2);
    free(text);
}

static void text_lines_keep_fields_one_word_each(void **state)
{
    (void)state;
    struct logger lg;
    struct buf b;
    buf_open(&b, &lg, LOG_FORMAT_TEXT);
    json_t *f = json_pack("{s:s,s:s,s:i}", "route", "/v1/x", "path", "a b=c", "status", 503);
    log_emit_fields(&lg, LOG_WARN, f, "region eu has no leader");
    json_decref(f);
    char *text = buf_close(&b);
    assert_non_null(strstr(text,
                           " warn process=node node=3 region=eu term=7 route=/v1/x "
                           "path=\"a b=c\" status=503 region eu has no leader\n"));
    free(text);
}

static void parsers_refuse_unknown_names(void **state)
{
    (void)state;
    enum log_format f = LOG_FORMAT_TEXT;
    enum log_level l = LOG_INFO;
    assert_int_equal(log_format_parse("json", &f), 0);
    assert_int_equal(f, LOG_FORMAT_JSON);
    assert_int_equal(log_format_parse("text", &f), 0);
    assert_int_equal(f, LOG_FORMAT_TEXT);
    assert_int_equal(log_format_parse("JSON", &f), -1);
    assert_int_equal(log_format_parse("", &f), -1);
    assert_int_equal(log_level_parse("debug", &l), 0);
    assert_int_equal(l, LOG_DEBUG);
    assert_int_equal(log_level_parse("verbose", &l), -1);
}

static void the_limiter_lets_one_line_a_second_through(void **state)
{
    (void)state;
    struct log_limit lim = {0};
    uint64_t held = 99;
    assert_int_equal(log_limit_allow(&lim, 5000, &held), 1);
    assert_int_equal(held, 0);
    assert_int_equal(log_limit_allow(&lim, 5100, &held), 0);
    assert_int_equal(log_limit_allow(&lim, 5999, &held), 0);
    assert_int_equal(log_limit_allow(&lim, 6000, &held), 1);
    assert_int_equal(held, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(json_lines_parse_and_carry_identity),
        cmocka_unit_test(text_lines_keep_fields_one_word_each),
        cmocka_unit_test(parsers_refuse_unknown_names),
        cmocka_unit_test(the_limiter_lets_one_line_a_second_through),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
