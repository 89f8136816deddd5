/* tests/unit/test_timefmt.c — RFC 3339 times, the civil calendar and leaderboard periods.
 *
 * Expected instants and ISO weeks were computed independently (Python's datetime and
 * date.isocalendar) when the tests were written. The ISO-week model below is written from the
 * standard's definition (week 1 holds the year's first Thursday) and shares no code with
 * timefmt.c. $LAUREL_SEED replays the random round trips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "shard/timefmt.h"
#include "tests/lib/testlib.h"

#define MS_PER_DAY 86400000LL
#define MS_MAX 253402300799999LL /* 9999-12-31T23:59:59.999Z */

struct fixture {
    struct testrng rng;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->rng.s = testlib_seed(20261122);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static int64_t parse_ok(const char *s)
{
    int64_t ms = -12345;
    int rv = timefmt_parse_rfc3339(s, strlen(s), &ms);
    if (rv != 0) {
        fail_msg("parse of \"%s\" failed with %d", s, rv);
    }
    return ms;
}

static void parse_bad(const char *s)
{
    int64_t ms = -12345;
    int rv = timefmt_parse_rfc3339(s, strlen(s), &ms);
    if (rv != LR_EINVAL) {
        fail_msg("parse of \"%s\" returned %d (ms %lld), want LR_EINVAL", s, rv, (long long)ms);
    }
}

/* ---- RFC 3339 ------------------------------------------------------------------------- */

/* Known instants format to the strings an independent calendar gives. */
static void rfc3339_formats_known_instants(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *s;
    } known[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1, "1970-01-01T00:00:00.001Z"},
        {1795350660123LL, "2026-11-22T12:31:00.123Z"},
        {1795353060123LL, "2026-11-22T13:11:00.123Z"},
        {1709251199999LL, "2024-02-29T23:59:59.999Z"},
        {951868800000LL, "2000-03-01T00:00:00.000Z"},
        {MS_MAX, "9999-12-31T23:59:59.999Z"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        char out[TIMEFMT_RFC3339_LEN + 1];
        memset(out, 'x', sizeof out);
        assert_int_equal(timefmt_rfc3339(known[i].ms, out), 0);
        assert_string_equal(out, known[i].s);
        assert_int_equal(strlen(out), TIMEFMT_RFC3339_LEN);
    }
}

/* Instants before the epoch or after year 9999 are out of range. */
static void rfc3339_rejects_out_of_range(void **state)
{
    (void)state;
    char out[TIMEFMT_RFC3339_LEN + 1] = "untouched";
    assert_int_equal(timefmt_rfc3339(-1, out), LR_ERANGE);
    assert_int_equal(timefmt_rfc3339(MS_MAX + 1, out), LR_ERANGE);
    assert_int_equal(timefmt_rfc3339(INT64_MIN, out), LR_ERANGE);
    assert_int_equal(timefmt_rfc3339(INT64_MAX, out), LR_ERANGE);
}

/* Formatting then parsing gives back every instant of the supported range. */
static void rfc3339_round_trips_random_instants(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 200000; i++) {
        int64_t ms = (int64_t)testrng_below(&f->rng, (uint64_t)MS_MAX + 1);
        if (i < 3) {
            ms = i == 0 ? 0 : (i == 1 ? MS_MAX : 86400000LL - 1);
        }
        char out[TIMEFMT_RFC3339_LEN + 1];
        int64_t back = -1;
        assert_int_equal(timefmt_rfc3339(ms, out), 0);
        assert_int_equal(timefmt_parse_rfc3339(out, strlen(out), &back), 0);
        assert_int_equal(back, ms);
    }
}

/* Offsets are subtracted, so the same instant parses equally in any zone. */
static void parse_accepts_offsets(void **state)
{
    (void)state;
    const int64_t want = 1795350660123LL; /* 2026-11-22T12:31:00.123Z */
    assert_int_equal(parse_ok("2026-11-22T12:31:00.123Z"), want);
    assert_int_equal(parse_ok("2026-11-22T12:31:00.123z"), want);
    assert_int_equal(parse_ok("2026-11-22T13:31:00.123+01:00"), want);
    assert_int_equal(parse_ok("2026-11-22T07:01:00.123-05:30"), want);
    assert_int_equal(parse_ok("2026-11-22T12:31:00.123+00:00"), want);
    assert_int_equal(parse_ok("2026-11-22T12:31:00.123-00:00"), want);
    assert_int_equal(parse_ok("2026-11-23T00:31:00.123+12:00"), want);
    assert_int_equal(parse_ok("2026-11-22t12:31:00.123Z"), want);
    /* An offset can carry the instant across midnight and before the epoch. */
    assert_int_equal(parse_ok("1970-01-01T00:30:00+01:00"), -30 * 60000LL);
    assert_int_equal(parse_ok("1969-12-31T23:00:00-01:00"), 0);
}

/* Fractions of one to nine digits are read as ms, extra digits truncated. */
static void parse_accepts_fractions(void **state)
{
    (void)state;
    const int64_t base = 1795350660000LL; /* 2026-11-22T12:31:00Z */
    assert_int_equal(parse_ok("2026-11-22T12:31:00Z"), base);
    assert_int_equal(parse_ok("2026-11-22T12:31:00.1Z"), base + 100);
    assert_int_equal(parse_ok("2026-11-22T12:31:00.12Z"), base + 120);
    assert_int_equal(parse_ok("2026-11-22T12:31:00.123Z"), base + 123);
    assert_int_equal(parse_ok("2026-11-22T12:31:00.1234Z"), base + 123);
    assert_int_equal(parse_ok("2026-11-22T12:31:00.12399Z"), base + 123);
    assert_int_equal(parse_ok("2026-11-22T12:31:00.999999Z"), base + 999);
    assert_int_equal(parse_ok("2026-11-22T12:31:00.00000001Z"), base);
    assert_int_equal(parse_ok("2026-11-22T12:31:00.987654321Z"), base + 987);
    assert_int_equal(parse_ok("2026-11-22T12:31:00.5+01:00"), base + 500 - 3600000);
}

/* Leap days exist exactly in leap years of the Gregorian rule. */
static void parse_follows_leap_years(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("2024-02-29T00:00:00Z"), 1709164800000LL);
    assert_int_equal(parse_ok("2000-02-29T00:00:00Z"), 951782400000LL);
    parse_bad("2023-02-29T00:00:00Z");
    parse_bad("1900-02-29T00:00:00Z");
    parse_bad("2100-02-29T00:00:00Z");
    parse_bad("2026-02-30T00:00:00Z");
    parse_bad("2024-02-30T00:00:00Z");
    parse_bad("2026-04-31T00:00:00Z");
    assert_int_equal(parse_ok("2026-12-31T00:00:00Z"), 20818 * MS_PER_DAY);
}

/* Anything that is not an RFC 3339 time is LR_EINVAL. */
static void parse_rejects_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "2026",
        "2026-11-22",
        "2026-11-22T",
        "2026-11-22T12:31:00",     /* no zone */
        "2026-11-22T12:31:00.123", /* no zone */
        "2026-11-22T12:31:00.Z",   /* empty fraction */
        "2026-11-22T12:31:00.123ZZ",
        "2026-11-22T12:31:00.123Z ",
        "2026-11-22T12:31:00.123Zjunk",
        " 2026-11-22T12:31:00.123Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-11-00T00:00:00Z",
        "2026-11-32T00:00:00Z",
        "2026-11-22T24:00:00Z",
        "2026-11-22T12:60:00Z",
        "2026-11-22T12:31:61Z",
        "2026-11-22T1:31:00Z",
        "2026-1-22T12:31:00Z",
        "26-11-22T12:31:00Z",
        "2026/11/22T12:31:00Z",
        "2026-11-22X12:31:00Z",
        "2026-11-22T12-31-00Z",
        "2026-11-22T12:31:00+0100",
        "2026-11-22T12:31:00+01",
        "2026-11-22T12:31:00+24:00",
        "2026-11-22T12:31:00+01:60",
        "2026-11-22T12:31:00+01:00Z",
        "2026-11-22T12:31:00 Z",
        "+2026-11-22T12:31:00Z",
        "-2026-11-22T12:31:00Z",
        "2026-11-22T12:31:00.-1Z",
        "x026-11-22T12:31:00Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        parse_bad(bad[i]);
    }
}

/* Parse reads exactly @len bytes: what follows is ignored, and every proper prefix is refused. */
static void parse_respects_length(void **state)
{
    (void)state;
    const char *s = "2026-11-22T12:31:00.123Zjunk";
    int64_t ms = 0;
    assert_int_equal(timefmt_parse_rfc3339(s, 24, &ms), 0);
    assert_int_equal(ms, 1795350660123LL);
    for (size_t len = 0; len < 24; len++) {
        int rv = timefmt_parse_rfc3339(s, len, &ms);
        assert_int_equal(rv, LR_EINVAL);
    }
}

/* ---- the civil calendar --------------------------------------------------------------- */

/* Day numbers of known dates match an independent calendar. */
static void civil_known_dates(void **state)
{
    (void)state;
    assert_int_equal(timefmt_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(timefmt_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(timefmt_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(timefmt_days_from_civil(2026, 1, 1), 20454);
    assert_int_equal(timefmt_days_from_civil(2026, 11, 22), 20779);
    assert_int_equal(timefmt_days_from_civil(1, 1, 1), -719162);
    assert_int_equal(timefmt_days_from_civil(9999, 12, 31), 2932896);
    int64_t y;
    unsigned m, d;
    timefmt_civil_from_days(-719162, &y, &m, &d);
    assert_int_equal(y, 1);
    assert_int_equal(m, 1);
    assert_int_equal(d, 1);
    timefmt_civil_from_days(-1, &y, &m, &d);
    assert_int_equal(y, 1969);
    assert_int_equal(m, 12);
    assert_int_equal(d, 31);
}

static int model_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned model_dim(int64_t y, unsigned m)
{
    static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return dim[m - 1] + (m == 2 && model_leap(y));
}

/* Walking day by day from year -2000 to 3000, each day number is the previous one plus one. */
static void civil_walks_consecutive_days(void **state)
{
    (void)state;
    int64_t y = -2000;
    unsigned m = 1, d = 1;
    int64_t days = timefmt_days_from_civil(y, m, d);
    while (y <= 3000) {
        int64_t yy;
        unsigned mm, dd;
        assert_int_equal(timefmt_days_from_civil(y, m, d), days);
        timefmt_civil_from_days(days, &yy, &mm, &dd);
        assert_int_equal(yy, y);
        assert_int_equal(mm, m);
        assert_int_equal(dd, d);
        /* Advance the model's date by one day. */
        if (++d > model_dim(y, m)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
        days++;
    }
}

/* Random day numbers far from the epoch, negative included, round-trip through dates. */
static void civil_round_trips_wide_range(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i < 200000; i++) {
        int64_t days = (int64_t)testrng_below(&f->rng, 2000000001ULL) - 1000000000;
        int64_t y;
        unsigned m, d;
        timefmt_civil_from_days(days, &y, &m, &d);
        assert_true(m >= 1 && m <= 12);
        assert_true(d >= 1 && d <= model_dim(y, m));
        assert_int_equal(timefmt_days_from_civil(y, m, d), days);
    }
}

/* ---- periods -------------------------------------------------------------------------- */

static void period_format_ok(enum timefmt_window w, int64_t p, const char *want)
{
    char out[TIMEFMT_PERIOD_MAX];
    assert_int_equal(timefmt_period_format(w, p, out), 0);
    assert_string_equal(out, want);
}

static int64_t period_parse_ok(enum timefmt_window w, const char *s)
{
    int64_t p = -777;
    int rv = timefmt_period_parse(w, s, strlen(s), &p);
    if (rv != 0) {
        fail_msg("period parse of \"%s\" in %s failed with %d", s, timefmt_window_name(w), rv);
    }
    return p;
}

static void period_parse_bad(enum timefmt_window w, const char *s)
{
    int64_t p;
    int rv = timefmt_period_parse(w, s, strlen(s), &p);
    if (rv != LR_EINVAL) {
        fail_msg("period parse of \"%s\" in %s returned %d, want LR_EINVAL", s,
                 timefmt_window_name(w), rv);
    }
}

/* Daily periods are days since the epoch, formatted as the UTC date. */
static void daily_periods(void **state)
{
    (void)state;
    assert_int_equal(timefmt_period_of(TIMEFMT_DAILY, 0, 0), 0);
    assert_int_equal(timefmt_period_of(TIMEFMT_DAILY, MS_PER_DAY - 1, 0), 0);
    assert_int_equal(timefmt_period_of(TIMEFMT_DAILY, MS_PER_DAY, 0), 1);
    assert_int_equal(timefmt_period_of(TIMEFMT_DAILY, -1, 0), -1);
    assert_int_equal(timefmt_period_of(TIMEFMT_DAILY, 1795350660123LL, 0), 20779);
    period_format_ok(TIMEFMT_DAILY, 20779, "2026-11-22");
    period_format_ok(TIMEFMT_DAILY, 0, "1970-01-01");
    period_format_ok(TIMEFMT_DAILY, -1, "1969-12-31");
    assert_int_equal(period_parse_ok(TIMEFMT_DAILY, "2026-11-22"), 20779);
    assert_int_equal(period_parse_ok(TIMEFMT_DAILY, "1969-12-31"), -1);
    period_parse_bad(TIMEFMT_DAILY, "2026-11-31");
    period_parse_bad(TIMEFMT_DAILY, "2026-11-22T");
    period_parse_bad(TIMEFMT_DAILY, "2026-11");
    period_parse_bad(TIMEFMT_DAILY, "");
    char out[TIMEFMT_PERIOD_MAX];
    assert_int_equal(timefmt_period_format(TIMEFMT_DAILY, 2932897, out), LR_ERANGE);
}

/* Monthly periods are year * 12 + month - 1. */
static void monthly_periods(void **state)
{
    (void)state;
    assert_int_equal(timefmt_period_of(TIMEFMT_MONTHLY, 1795350660123LL, 0), 2026 * 12 + 10);
    assert_int_equal(timefmt_period_of(TIMEFMT_MONTHLY, 0, 0), 1970 * 12);
    assert_int_equal(timefmt_period_of(TIMEFMT_MONTHLY, -1, 0), 1969 * 12 + 11);
    /* The last ms of January and the first of February. */
    assert_int_equal(timefmt_period_of(TIMEFMT_MONTHLY, 31 * MS_PER_DAY - 1, 0), 1970 * 12);
    assert_int_equal(timefmt_period_of(TIMEFMT_MONTHLY, 31 * MS_PER_DAY, 0), 1970 * 12 + 1);
    period_format_ok(TIMEFMT_MONTHLY, 2026 * 12 + 10, "2026-11");
    period_format_ok(TIMEFMT_MONTHLY, 0, "0000-01");
    assert_int_equal(period_parse_ok(TIMEFMT_MONTHLY, "2026-11"), 2026 * 12 + 10);
    assert_int_equal(period_parse_ok(TIMEFMT_MONTHLY, "9999-12"), 9999 * 12 + 11);
    period_parse_bad(TIMEFMT_MONTHLY, "2026-13");
    period_parse_bad(TIMEFMT_MONTHLY, "2026-00");
    period_parse_bad(TIMEFMT_MONTHLY, "2026-1");
    period_parse_bad(TIMEFMT_MONTHLY, "2026-11-01");
    period_parse_bad(TIMEFMT_MONTHLY, "");
    char out[TIMEFMT_PERIOD_MAX];
    assert_int_equal(timefmt_period_format(TIMEFMT_MONTHLY, -1, out), LR_ERANGE);
    assert_int_equal(timefmt_period_format(TIMEFMT_MONTHLY, 10000 * 12, out), LR_ERANGE);
}

static int64_t day_ms(int64_t y, unsigned m, unsigned d)
{
    return timefmt_days_from_civil(y, m, d) * MS_PER_DAY;
}

static void week_of(int64_t ms, char *out)
{
    int64_t p = timefmt_period_of(TIMEFMT_WEEKLY, ms, 0);
    assert_int_equal(timefmt_period_format(TIMEFMT_WEEKLY, p, out), 0);
}

/* ISO week facts computed with Python's isocalendar land in the right week. */
static void weekly_iso_facts(void **state)
{
    (void)state;
    char out[TIMEFMT_PERIOD_MAX];
    week_of(day_ms(2026, 1, 1), out); /* Thursday */
    assert_string_equal(out, "2026-W01");
    week_of(day_ms(2025, 12, 29), out); /* Monday of the same week */
    assert_string_equal(out, "2026-W01");
    week_of(day_ms(2027, 1, 1), out); /* Friday */
    assert_string_equal(out, "2026-W53");
    week_of(day_ms(2021, 1, 3), out); /* Sunday */
    assert_string_equal(out, "2020-W53");
    week_of(day_ms(2024, 12, 30), out); /* Monday */
    assert_string_equal(out, "2025-W01");
    week_of(day_ms(2026, 11, 22) + 45000000, out); /* Sunday 12:30 */
    assert_string_equal(out, "2026-W47");
    week_of(0, out);
    assert_string_equal(out, "1970-W01");
    /* The epoch's week is period 0, starting Monday 1969-12-29. */
    assert_int_equal(timefmt_period_of(TIMEFMT_WEEKLY, 0, 0), 0);
    assert_int_equal(timefmt_period_of(TIMEFMT_WEEKLY, day_ms(1969, 12, 29), 0), 0);
    assert_int_equal(timefmt_period_of(TIMEFMT_WEEKLY, day_ms(1969, 12, 29) - 1, 0), -1);
    assert_int_equal(period_parse_ok(TIMEFMT_WEEKLY, "2026-W01"),
                     timefmt_period_of(TIMEFMT_WEEKLY, day_ms(2026, 1, 1), 0));
    assert_int_equal(period_parse_ok(TIMEFMT_WEEKLY, "2026-W53"),
                     timefmt_period_of(TIMEFMT_WEEKLY, day_ms(2027, 1, 3), 0));
    assert_int_equal(period_parse_ok(TIMEFMT_WEEKLY, "2020-W53"),
                     timefmt_period_of(TIMEFMT_WEEKLY, day_ms(2020, 12, 28), 0));
    assert_int_equal(period_parse_ok(TIMEFMT_WEEKLY, "2026-W47"),
                     timefmt_period_of(TIMEFMT_WEEKLY, day_ms(2026, 11, 16), 0));
}

/* Weeks start on Monday at 00:00 UTC: the ms before belongs to the previous week. */
static void weekly_starts_monday_utc(void **state)
{
    (void)state;
    int64_t monday = day_ms(2026, 11, 16);
    int64_t p = timefmt_period_of(TIMEFMT_WEEKLY, monday, 0);
    assert_int_equal(timefmt_period_of(TIMEFMT_WEEKLY, monday - 1, 0), p - 1);
    assert_int_equal(timefmt_period_of(TIMEFMT_WEEKLY, monday + 7 * MS_PER_DAY - 1, 0), p);
    assert_int_equal(timefmt_period_of(TIMEFMT_WEEKLY, monday + 7 * MS_PER_DAY, 0), p + 1);
}

/* Week numbers outside the ISO year, and malformed weeks, are refused. */
static void weekly_rejects_bad_weeks(void **state)
{
    (void)state;
    period_parse_bad(TIMEFMT_WEEKLY, "2025-W53"); /* 2025 has 52 weeks */
    period_parse_bad(TIMEFMT_WEEKLY, "2026-W00");
    period_parse_bad(TIMEFMT_WEEKLY, "2026-W54");
    period_parse_bad(TIMEFMT_WEEKLY, "2026-w01");
    period_parse_bad(TIMEFMT_WEEKLY, "2026-W1");
    period_parse_bad(TIMEFMT_WEEKLY, "2026W01");
    period_parse_bad(TIMEFMT_WEEKLY, "2026-W011");
    period_parse_bad(TIMEFMT_WEEKLY, "");
    assert_int_equal(period_parse_ok(TIMEFMT_WEEKLY, "2015-W53"),
                     period_parse_ok(TIMEFMT_WEEKLY, "2016-W01") - 1);
    assert_int_equal(period_parse_ok(TIMEFMT_WEEKLY, "2004-W53"),
                     period_parse_ok(TIMEFMT_WEEKLY, "2005-W01") - 1);
}

/* The ISO week of a day, written from the standard's definition. */
static void model_iso_week(int64_t days, int64_t *iso_year, int *week)
{
    int64_t y;
    unsigned m, d;
    timefmt_civil_from_days(days, &y, &m, &d);
    /* ISO weekday 1..7, Monday = 1; 1970-01-01 was a Thursday (4). */
    int wd = (int)(((days + 3) % 7 + 7) % 7) + 1;
    int64_t ordinal = days - timefmt_days_from_civil(y, 1, 1) + 1;
    int w = (int)((ordinal - wd + 10) / 7);
    if (w < 1) {
        y--;
        int64_t dec31 = timefmt_days_from_civil(y, 12, 31);
        int wd31 = (int)(((dec31 + 3) % 7 + 7) % 7) + 1;
        int64_t ord31 = model_leap(y) ? 366 : 365;
        w = (int)((ord31 - wd31 + 10) / 7);
    } else {
        /* A year has 53 weeks iff Jan 1 is a Thursday, or a Wednesday in a leap year. */
        int64_t jan1 = timefmt_days_from_civil(y, 1, 1);
        int wdj = (int)(((jan1 + 3) % 7 + 7) % 7) + 1;
        int weeks = (wdj == 4 || (wdj == 3 && model_leap(y))) ? 53 : 52;
        if (w > weeks) {
            w = 1;
            y++;
        }
    }
    *iso_year = y;
    *week = w;
}

/* Every day from 1970 to 2200 falls in the ISO week the model computes. */
static void weekly_matches_iso_model(void **state)
{
    (void)state;
    int64_t last = timefmt_days_from_civil(2200, 12, 31);
    for (int64_t days = 0; days <= last; days++) {
        int64_t iy;
        int w;
        char want[TIMEFMT_PERIOD_MAX];
        char got[TIMEFMT_PERIOD_MAX];
        model_iso_week(days, &iy, &w);
        snprintf(want, sizeof want, "%04d-W%02d", (int)iy, w);
        week_of(days * MS_PER_DAY + (days % 86400) * 1000, got);
        assert_string_equal(got, want);
    }
}

/* Cycle periods are whole reset periods since the epoch. */
static void cycle_periods(void **state)
{
    (void)state;
    assert_int_equal(timefmt_period_of(TIMEFMT_CYCLE, 0, 3600), 0);
    assert_int_equal(timefmt_period_of(TIMEFMT_CYCLE, 3600000 - 1, 3600), 0);
    assert_int_equal(timefmt_period_of(TIMEFMT_CYCLE, 3600000, 3600), 1);
    assert_int_equal(timefmt_period_of(TIMEFMT_CYCLE, 7199999, 3600), 1);
    assert_int_equal(timefmt_period_of(TIMEFMT_CYCLE, 7200000, 3600), 2);
    assert_int_equal(timefmt_period_of(TIMEFMT_CYCLE, 1795350660123LL, 60), 29922511);
    period_format_ok(TIMEFMT_CYCLE, 29922511, "29922511");
    period_format_ok(TIMEFMT_CYCLE, 0, "0");
    assert_int_equal(period_parse_ok(TIMEFMT_CYCLE, "29922511"), 29922511);
    assert_int_equal(period_parse_ok(TIMEFMT_CYCLE, "0"), 0);
    assert_int_equal(period_parse_ok(TIMEFMT_CYCLE, "999999999999999"), 999999999999999LL);
    period_parse_bad(TIMEFMT_CYCLE, "");
    period_parse_bad(TIMEFMT_CYCLE, "-1");
    period_parse_bad(TIMEFMT_CYCLE, "+1");
    period_parse_bad(TIMEFMT_CYCLE, "12a");
    period_parse_bad(TIMEFMT_CYCLE, " 12");
    period_parse_bad(TIMEFMT_CYCLE, "1000000000000000"); /* 16 digits */
}

/* The alltime window has one period, 0, named "alltime". */
static void alltime_period(void **state)
{
    (void)state;
    assert_int_equal(timefmt_period_of(TIMEFMT_ALLTIME, 1795350660123LL, 0), 0);
    period_format_ok(TIMEFMT_ALLTIME, 0, "alltime");
    assert_int_equal(period_parse_ok(TIMEFMT_ALLTIME, "alltime"), 0);
    period_parse_bad(TIMEFMT_ALLTIME, "all");
    period_parse_bad(TIMEFMT_ALLTIME, "alltimes");
    period_parse_bad(TIMEFMT_ALLTIME, "");
}

/* For random instants, every window's period formats and parses back to itself. */
static void periods_round_trip_random_instants(void **state)
{
    struct fixture *f = *state;
    static const int64_t resets[] = {60, 3600, 86400, 604800, 315360000};
    for (int i = 0; i < 100000; i++) {
        int64_t ms = (int64_t)testrng_below(&f->rng, (uint64_t)MS_MAX + 1);
        int64_t reset = resets[testrng_below(&f->rng, 5)];
        for (int w = 0; w < TIMEFMT_NWINDOWS; w++) {
            int64_t p = timefmt_period_of((enum timefmt_window)w, ms, reset);
            char out[TIMEFMT_PERIOD_MAX];
            int64_t back = -1;
            assert_int_equal(timefmt_period_format((enum timefmt_window)w, p, out), 0);
            assert_int_equal(timefmt_period_parse((enum timefmt_window)w, out, strlen(out), &back),
                             0);
            assert_int_equal(back, p);
        }
        /* The date part of the RFC 3339 form is the daily period. */
        char ts[TIMEFMT_RFC3339_LEN + 1];
        char day[TIMEFMT_PERIOD_MAX];
        assert_int_equal(timefmt_rfc3339(ms, ts), 0);
        assert_int_equal(
            timefmt_period_format(TIMEFMT_DAILY, timefmt_period_of(TIMEFMT_DAILY, ms, 0), day), 0);
        assert_memory_equal(ts, day, 10);
    }
}

/* ---- windows -------------------------------------------------------------------------- */

/* Every window parses from its API name and names itself back. */
static void window_names_round_trip(void **state)
{
    (void)state;
    static const char *const names[TIMEFMT_NWINDOWS] = {"alltime", "daily", "weekly", "monthly",
                                                        "cycle"};
    static const enum timefmt_window want[TIMEFMT_NWINDOWS] = {
        TIMEFMT_ALLTIME, TIMEFMT_DAILY, TIMEFMT_WEEKLY, TIMEFMT_MONTHLY, TIMEFMT_CYCLE};
    for (int i = 0; i < TIMEFMT_NWINDOWS; i++) {
        enum timefmt_window w = TIMEFMT_NWINDOWS;
        assert_int_equal(timefmt_window_parse(names[i], strlen(names[i]), &w), 0);
        assert_int_equal(w, want[i]);
        assert_string_equal(timefmt_window_name(w), names[i]);
    }
    assert_string_equal(timefmt_window_name(TIMEFMT_NWINDOWS), "?");
    assert_string_equal(timefmt_window_name((enum timefmt_window)99), "?");
}

/* Unknown names, prefixes and other cases are refused. */
static void window_rejects_unknown(void **state)
{
    (void)state;
    static const char *const bad[] = {"",     "Daily", "DAILY",  "day", "dail",     "dailyx",
                                      "week", "month", "yearly", "all", "alltime ", "cycles"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum timefmt_window w = TIMEFMT_NWINDOWS;
        assert_int_equal(timefmt_window_parse(bad[i], strlen(bad[i]), &w), LR_EINVAL);
        assert_int_equal(w, TIMEFMT_NWINDOWS);
    }
    /* Only @len bytes count. */
    enum timefmt_window w = TIMEFMT_NWINDOWS;
    assert_int_equal(timefmt_window_parse("weeklyjunk", 6, &w), 0);
    assert_int_equal(w, TIMEFMT_WEEKLY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc3339_formats_known_instants),
        cmocka_unit_test(rfc3339_rejects_out_of_range),
        cmocka_unit_test_setup_teardown(rfc3339_round_trips_random_instants, setup, teardown),
        cmocka_unit_test(parse_accepts_offsets),
        cmocka_unit_test(parse_accepts_fractions),
        cmocka_unit_test(parse_follows_leap_years),
        cmocka_unit_test(parse_rejects_garbage),
        cmocka_unit_test(parse_respects_length),
        cmocka_unit_test(civil_known_dates),
        cmocka_unit_test(civil_walks_consecutive_days),
        cmocka_unit_test_setup_teardown(civil_round_trips_wide_range, setup, teardown),
        cmocka_unit_test(daily_periods),
        cmocka_unit_test(monthly_periods),
        cmocka_unit_test(weekly_iso_facts),
        cmocka_unit_test(weekly_starts_monday_utc),
        cmocka_unit_test(weekly_rejects_bad_weeks),
        cmocka_unit_test(weekly_matches_iso_model),
        cmocka_unit_test(cycle_periods),
        cmocka_unit_test(alltime_period),
        cmocka_unit_test_setup_teardown(periods_round_trip_random_instants, setup, teardown),
        cmocka_unit_test(window_names_round_trip),
        cmocka_unit_test(window_rejects_unknown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
