/* shard/timefmt.h — RFC 3339 times and leaderboard periods, without the C library's time
 * zone machinery: apply must be deterministic and must not read TZ or a clock.
 *
 * Periods are numbered so that the number alone identifies them within a window:
 *   daily   days since 1970-01-01
 *   weekly  ISO weeks (Monday first) since the week of 1969-12-29, so 1970-01-01 is week 0
 *   monthly year * 12 + (month - 1)
 *   cycle   floor(unix_seconds / reset_period_s)
 *   alltime 0 */
#ifndef LAUREL_TIMEFMT_H
#define LAUREL_TIMEFMT_H

#include <stddef.h>
#include <stdint.h>

enum timefmt_window {
    TIMEFMT_ALLTIME = 0,
    TIMEFMT_DAILY = 1,
    TIMEFMT_WEEKLY = 2,
    TIMEFMT_MONTHLY = 3,
    TIMEFMT_CYCLE = 4,
    TIMEFMT_NWINDOWS = 5
};

#define TIMEFMT_RFC3339_LEN 24 /* "2026-11-22T13:11:00.123Z" */
#define TIMEFMT_PERIOD_MAX 32

/** Format @ms (ms since the epoch, >= 0 and before year 10000) as RFC 3339 UTC with ms into
 * @out (at least TIMEFMT_RFC3339_LEN + 1 bytes). @return 0 or LR_ERANGE. */
int timefmt_rfc3339(int64_t ms, char *out);

/** Parse an RFC 3339 time (Z or ±hh:mm offset, optional fraction, truncated to ms).
 * @return 0 and *@ms, or LR_EINVAL. */
int timefmt_parse_rfc3339(const char *s, size_t len, int64_t *ms);

/** Days since the epoch of a civil date (proleptic Gregorian). */
int64_t timefmt_days_from_civil(int64_t y, unsigned m, unsigned d);

/** Civil date of @days since the epoch. */
void timefmt_civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d);

/** Period number of @ms in @window (@reset_s used by TIMEFMT_CYCLE only, > 0). */
int64_t timefmt_period_of(enum timefmt_window window, int64_t ms, int64_t reset_s);

/** Format period @p of @window ("2026-11-21", "2026-W47", "2026-11", "12345", "alltime")
 * into @out (TIMEFMT_PERIOD_MAX bytes). @return 0 or LR_ERANGE. */
int timefmt_period_format(enum timefmt_window window, int64_t p, char *out);

/** Parse a period string of @window. @return 0 and *@p, or LR_EINVAL. */
int timefmt_period_parse(enum timefmt_window window, const char *s, size_t len, int64_t *p);

/** Window by API name ("alltime", ...). @return 0 and *@w, or LR_EINVAL. */
int timefmt_window_parse(const char *s, size_t len, enum timefmt_window *w);

/** API name of @w. */
const char *timefmt_window_name(enum timefmt_window w);

#endif
