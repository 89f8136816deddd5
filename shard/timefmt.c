/* shard/timefmt.c — calendar arithmetic on day numbers (the civil-from-days method: shift the
 * year to start in March so leap days fall at the end of a 400-year era). Pure functions, no
 * libc time calls, so apply stays deterministic whatever TZ says. */
#include "timefmt.h"

#include <stdio.h>
#include <string.h>

#include "../lib/err.h"

#define TIMEFMT__MS_PER_DAY 86400000LL

static int64_t timefmt__floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int64_t timefmt_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = timefmt__floordiv(y, 400);
    int64_t yoe = y - era * 400;
    int64_t mp = (m + 9) % 12;
    int64_t doy = (153 * mp + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void timefmt_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    days += 719468;
    int64_t era = timefmt__floordiv(days, 146097);
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
    *m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int timefmt_rfc3339(int64_t ms, char *out)
{
    if (ms < 0 || ms >= 253402300800000LL) { /* year 10000 */
        return LR_ERANGE;
    }
    int64_t days = ms / TIMEFMT__MS_PER_DAY;
    int64_t rem = ms % TIMEFMT__MS_PER_DAY;
    int64_t y;
    unsigned m, d;
    timefmt_civil_from_days(days, &y, &m, &d);
    snprintf(out, TIMEFMT_RFC3339_LEN + 1, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", (int)y, m, d,
             (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
             (int)(rem % 1000));
    return 0;
}

/* Read exactly @n digits at *@p. */
static int timefmt__digits(const char **p, const char *end, int n, int64_t *v)
{
    int64_t x = 0;
    for (int i = 0; i < n; i++) {
        if (*p >= end || **p < '0' || **p > '9') {
            return LR_EINVAL;
        }
        x = x * 10 + (**p - '0');
        (*p)++;
    }
    *v = x;
    return 0;
}

static int timefmt__expect(const char **p, const char *end, char c)
{
    if (*p >= end || **p != c) {
        return LR_EINVAL;
    }
    (*p)++;
    return 0;
}

static int timefmt__days_in_month(int64_t y, unsigned m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return dim[m - 1] + (m == 2 && leap);
}

static int timefmt__date(const char **p, const char *end, int64_t *days)
{
    int64_t y, m, d;
    if (timefmt__digits(p, end, 4, &y) || timefmt__expect(p, end, '-') ||
        timefmt__digits(p, end, 2, &m) || timefmt__expect(p, end, '-') ||
        timefmt__digits(p, end, 2, &d)) {
        return LR_EINVAL;
    }
    if (m < 1 || m > 12 || d < 1 || d > timefmt__days_in_month(y, (unsigned)m)) {
        return LR_EINVAL;
    }
    *days = timefmt_days_from_civil(y, (unsigned)m, (unsigned)d);
    return 0;
}

int timefmt_parse_rfc3339(const char *s, size_t len, int64_t *ms)
{
    const char *p = s, *end = s + len;
    int64_t days, hh, mi, ss, frac = 0;
    if (timefmt__date(&p, end, &days)) {
        return LR_EINVAL;
    }
    if (p >= end || (*p != 'T' && *p != 't' && *p != ' ')) {
        return LR_EINVAL;
    }
    p++;
    if (timefmt__digits(&p, end, 2, &hh) || timefmt__expect(&p, end, ':') ||
        timefmt__digits(&p, end, 2, &mi) || timefmt__expect(&p, end, ':') ||
        timefmt__digits(&p, end, 2, &ss) || hh > 23 || mi > 59 || ss > 60) {
        return LR_EINVAL;
    }
    if (p < end && *p == '.') {
        p++;
        int n = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (n < 3) {
                frac = frac * 10 + (*p - '0');
            }
            n++;
            p++;
        }
        if (n == 0) {
            return LR_EINVAL;
        }
        for (; n < 3; n++) {
            frac *= 10;
        }
    }
    int64_t off = 0;
    if (p < end && (*p == 'Z' || *p == 'z')) {
        p++;
    } else if (p < end && (*p == '+' || *p == '-')) {
        int neg = *p == '-';
        int64_t oh, om;
        p++;
        if (timefmt__digits(&p, end, 2, &oh) || timefmt__expect(&p, end, ':') ||
            timefmt__digits(&p, end, 2, &om) || oh > 23 || om > 59) {
            return LR_EINVAL;
        }
        off = (oh * 60 + om) * 60000 * (neg ? -1 : 1);
    } else {
        return LR_EINVAL;
    }
    if (p != end) {
        return LR_EINVAL;
    }
    *ms = days * TIMEFMT__MS_PER_DAY + ((hh * 60 + mi) * 60 + ss) * 1000 + frac - off;
    return 0;
}

/* Weekday of a day number, Monday = 0 (1970-01-01 was a Thursday). */
static int64_t timefmt__weekday(int64_t days)
{
    return days - timefmt__floordiv(days + 3, 7) * 7 + 3;
}

int64_t timefmt_period_of(enum timefmt_window window, int64_t ms, int64_t reset_s)
{
    int64_t days = timefmt__floordiv(ms, TIMEFMT__MS_PER_DAY);
    switch (window) {
    case TIMEFMT_DAILY: return days;
    case TIMEFMT_WEEKLY: return timefmt__floordiv(days + 3, 7);
    case TIMEFMT_MONTHLY: {
        int64_t y;
        unsigned m, d;
        timefmt_civil_from_days(days, &y, &m, &d);
        return y * 12 + (m - 1);
    }
    case TIMEFMT_CYCLE:
        return reset_s > 0 ? timefmt__floordiv(timefmt__floordiv(ms, 1000), reset_s) : 0;
    case TIMEFMT_ALLTIME:
    case TIMEFMT_NWINDOWS: break;
    }
    return 0;
}

int timefmt_period_format(enum timefmt_window window, int64_t p, char *out)
{
    int64_t y;
    unsigned m, d;
    switch (window) {
    case TIMEFMT_ALLTIME: snprintf(out, TIMEFMT_PERIOD_MAX, "alltime"); return 0;
    case TIMEFMT_DAILY:
        timefmt_civil_from_days(p, &y, &m, &d);
        if (y < 0 || y > 9999) {
            return LR_ERANGE;
        }
        snprintf(out, TIMEFMT_PERIOD_MAX, "%04d-%02u-%02u", (int)y, m, d);
        return 0;
    case TIMEFMT_WEEKLY: {
        int64_t thursday = p * 7 - 3 + 3; /* Monday of week p is p*7-3 */
        timefmt_civil_from_days(thursday, &y, &m, &d);
        if (y < 0 || y > 9999) {
            return LR_ERANGE;
        }
        int64_t doy = thursday - timefmt_days_from_civil(y, 1, 1);
        snprintf(out, TIMEFMT_PERIOD_MAX, "%04d-W%02d", (int)y, (int)(doy / 7 + 1));
        return 0;
    }
    case TIMEFMT_MONTHLY:
        if (p < 0 || p >= 10000 * 12) {
            return LR_ERANGE;
        }
        snprintf(out, TIMEFMT_PERIOD_MAX, "%04d-%02d", (int)(p / 12), (int)(p % 12 + 1));
        return 0;
    case TIMEFMT_CYCLE: snprintf(out, TIMEFMT_PERIOD_MAX, "%lld", (long long)p); return 0;
    case TIMEFMT_NWINDOWS: break;
    }
    return LR_ERANGE;
}

int timefmt_period_parse(enum timefmt_window window, const char *s, size_t len, int64_t *p)
{
    const char *q = s, *end = s + len;
    int64_t y, m, w;
    switch (window) {
    case TIMEFMT_ALLTIME: *p = 0; return (len == 7 && memcmp(s, "alltime", 7) == 0) ? 0 : LR_EINVAL;
    case TIMEFMT_DAILY:
        if (timefmt__date(&q, end, p) || q != end) {
            return LR_EINVAL;
        }
        return 0;
    case TIMEFMT_WEEKLY: {
        if (timefmt__digits(&q, end, 4, &y) || timefmt__expect(&q, end, '-') ||
            timefmt__expect(&q, end, 'W') || timefmt__digits(&q, end, 2, &w) || q != end) {
            return LR_EINVAL;
        }
        int64_t jan4 = timefmt_days_from_civil(y, 1, 4);
        int64_t monday1 = jan4 - timefmt__weekday(jan4);
        int64_t dec28 = timefmt_days_from_civil(y, 12, 28); /* always in the last week */
        int64_t weeks = (dec28 - timefmt__weekday(dec28) - monday1) / 7 + 1;
        if (w < 1 || w > weeks) {
            return LR_EINVAL;
        }
        *p = timefmt__floordiv(monday1 + 7 * (w - 1) + 3, 7);
        return 0;
    }
    case TIMEFMT_MONTHLY:
        if (timefmt__digits(&q, end, 4, &y) || timefmt__expect(&q, end, '-') ||
            timefmt__digits(&q, end, 2, &m) || q != end || m < 1 || m > 12) {
            return LR_EINVAL;
        }
        *p = y * 12 + m - 1;
        return 0;
    case TIMEFMT_CYCLE: {
        int64_t v = 0;
        if (len == 0 || len > 15) {
            return LR_EINVAL;
        }
        for (; q < end; q++) {
            if (*q < '0' || *q > '9') {
                return LR_EINVAL;
            }
            v = v * 10 + (*q - '0');
        }
        *p = v;
        return 0;
    }
    case TIMEFMT_NWINDOWS: break;
    }
    return LR_EINVAL;
}

static const char *const timefmt__names[TIMEFMT_NWINDOWS] = {"alltime", "daily", "weekly",
                                                             "monthly", "cycle"};

int timefmt_window_parse(const char *s, size_t len, enum timefmt_window *w)
{
    for (int i = 0; i < TIMEFMT_NWINDOWS; i++) {
        if (strlen(timefmt__names[i]) == len && memcmp(timefmt__names[i], s, len) == 0) {
            *w = (enum timefmt_window)i;
            return 0;
        }
    }
    return LR_EINVAL;
}

const char *timefmt_window_name(enum timefmt_window w)
{
    return (unsigned)w < TIMEFMT_NWINDOWS ? timefmt__names[w] : "?";
}
