/* lib/log.c — line-oriented logging with the process's identity on every line, as text or
 * JSON (jansson builds every JSON line). */
#include "log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static const char *const log__names[] = {"error", "warn", "info", "debug"};

static const char *const log__formats[] = {"text", "json"};

void log_init(struct logger *lg, FILE *out, enum log_level level, uint64_t node_id,
              const char *region)
{
    memset(lg, 0, sizeof *lg);
    lg->out = out;
    lg->level = level;
    lg->node_id = node_id;
    snprintf(lg->process, sizeof lg->process, "laurel");
    snprintf(lg->region, sizeof lg->region, "%s", region ? region : "-");
}

void log_set_process(struct logger *lg, const char *process, enum log_format format)
{
    snprintf(lg->process, sizeof lg->process, "%s", process);
    lg->format = format;
}

/* A text field's value: as is when it reads as one word, else a JSON string. */
static void log__text_value(FILE *out, const json_t *v)
{
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (s[0] != '\0' && strpbrk(s, " \t\n\"=") == NULL) {
            fputs(s, out);
            return;
        }
    }
    char *enc = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    fputs(enc ? enc : "?", out);
    free(enc);
}

/* The json format: the fixed members, then @fields, then the message; a line jansson cannot
 * build (out of memory) falls back to text, so the message is not lost. */
static int log__json_line(struct logger *lg, const char *stamp, enum log_level level,
                          const json_t *fields, const char *msg)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:s,s:I}", "ts", stamp, "level", log__names[level],
                          "process", lg->process, "node", (json_int_t)lg->node_id, "region",
                          lg->region, "term", (json_int_t)lg->term);
    if (o == NULL) {
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)fields, k, v)
    {
        json_object_set(o, k, v);
    }
    json_object_set_new(o, "msg", json_string(msg));
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (line == NULL) {
        return -1;
    }
    fprintf(lg->out, "%s\n", line);
    free(line);
    return 0;
}

void log_emit_fields(struct logger *lg, enum log_level level, const json_t *fields, const char *msg)
{
    char stamp[64], day[32];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp, sizeof stamp, "%s.%03ldZ", day, (long)(tv.tv_usec / 1000));
    if (lg->format == LOG_FORMAT_JSON && log__json_line(lg, stamp, level, fields, msg) == 0) {
        fflush(lg->out);
        return;
    }
    fprintf(lg->out, "%s %s process=%s node=%llu region=%s term=%llu", stamp, log__names[level],
            lg->process, (unsigned long long)lg->node_id, lg->region, (unsigned long long)lg->term);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)fields, k, v)
    {
        fprintf(lg->out, " %s=", k);
        log__text_value(lg->out, v);
    }
    fprintf(lg->out, " %s\n", msg);
    fflush(lg->out);
}

void log_emit(struct logger *lg, enum log_level level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_emit_fields(lg, level, NULL, msg);
}

/* One parser for both name tables (the index is the enum's value). */
static int log__parse(const char *s, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(s, names[i]) == 0) {
            return i;
        }
    }
    return -1;
}

int log_level_parse(const char *s, enum log_level *out)
{
    int i = log__parse(s, log__names, LOG_DEBUG + 1);
    if (i < 0) {
        return -1;
    }
    *out = (enum log_level)i;
    return 0;
}

int log_format_parse(const char *s, enum log_format *out)
{
    int i = log__parse(s, log__formats, LOG_FORMAT_JSON + 1);
    if (i < 0) {
        return -1;
    }
    *out = (enum log_format)i;
    return 0;
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
