/* lib/log.c — line-oriented logging with the replica's identity on every line. */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *const log__names[] = {"error", "warn", "info", "debug"};

void log_init(struct logger *lg, FILE *out, enum log_level level, uint64_t node_id,
              const char *region)
{
    memset(lg, 0, sizeof *lg);
    lg->out = out;
    lg->level = level;
    lg->node_id = node_id;
    snprintf(lg->region, sizeof lg->region, "%s", region ? region : "-");
}

void log_emit(struct logger *lg, enum log_level level, const char *fmt, ...)
{
    char msg[1024], stamp[32];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(lg->out, "%s.%03ldZ %s node=%llu region=%s term=%llu %s\n", stamp,
            (long)(tv.tv_usec / 1000), log__names[level], (unsigned long long)lg->node_id,
            lg->region, (unsigned long long)lg->term, msg);
    fflush(lg->out);
}

int log_level_parse(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOG_DEBUG; i++) {
        if (strcmp(s, log__names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_limit_allow(struct log_limit *l, uint64_t now_ms, uint64_t *suppressed)
{
    if (l->last_ms != 0 && now_ms - l->last_ms < LOG_LIMIT_MS) {
        l->suppressed++;
        return 0;
    }
    l->last_ms = now_ms == 0 ? 1 : now_ms;
    *suppressed = l->suppressed;
    l->suppressed = 0;
    return 1;
}
