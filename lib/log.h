/* lib/log.h — the logger of every laurel process (replica, router, dev). One per process;
 * passed explicitly, never global. Every line carries the process (node, router), node=,
 * region= and term=, so lines of three replicas interleaved in one terminal or file still say
 * who wrote them (a router logs with node=0 and its own region label). Two formats
 * (`--log-format`): text, one line of key=value words then the message, and json, one object
 * per line (docs/operations.md, "Logs"). LOG checks the level before formatting. */
#ifndef LAUREL_LOG_H
#define LAUREL_LOG_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
enum log_format { LOG_FORMAT_TEXT = 0, LOG_FORMAT_JSON = 1 };

struct logger {
    enum log_level level;
    enum log_format format;
    char process[16]; /* "node", "router"; "laurel" until log_set_process */
    FILE *out;        /* borrowed */
    uint64_t node_id;
    char region[65];
    uint64_t term; /* updated by the node as raft's term moves */
};

/** Initialise @lg writing to @out. */
void log_init(struct logger *lg, FILE *out, enum log_level level, uint64_t node_id,
              const char *region);

/** Name the process on every line ("node", "router"; at most 15 bytes) and pick the format. */
void log_set_process(struct logger *lg, const char *process, enum log_format format);

void log_emit(struct logger *lg, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * A line with fields besides the message: @fields (a JSON object of strings and integers,
 * borrowed; NULL: none) become members of the line's object in the json format, and
 * `key=value` words before the message in text (strings with spaces, quotes or '=' quoted as
 * JSON strings so the words stay one per field).
 */
void log_emit_fields(struct logger *lg, enum log_level level, const json_t *fields,
                     const char *msg);

/** Parse "error", "warn", "info", "debug". @return 0 or -1. */
int log_level_parse(const char *s, enum log_level *out);

/** Parse "text", "json". @return 0 or -1. */
int log_format_parse(const char *s, enum log_format *out);

/* A rate limit for lines a remote peer can trigger at will (refused connections): at most one
 * line per LOG_LIMIT_MS, the rest counted and reported with the next line let through, so a
 * port scanner cannot flood the log. */
#define LOG_LIMIT_MS 1000
struct log_limit {
    uint64_t last_ms;    /* when the last line was let through; 0: never */
    uint64_t suppressed; /* lines held back since */
};

/** 1 when a line may be written at @now_ms (any monotonic clock), with *@suppressed the lines
 * held back before it (then reset); 0 when it is counted and held back. */
int log_limit_allow(struct log_limit *l, uint64_t now_ms, uint64_t *suppressed);

#define LOG(lg, lvl, ...)                                                                          \
    do {                                                                                           \
        if ((lvl) <= (lg)->level) {                                                                \
            log_emit((lg), (lvl), __VA_ARGS__);                                                    \
        }                                                                                          \
    } while (0)

#endif
