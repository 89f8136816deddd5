/* router/cors.c — CORS header lines (cors.h). The origin sent back is always the configured
 * copy, never the request's bytes, so nothing a client sends reaches a header line. */
#include "cors.h"

#include <stdio.h>
#include <string.h>

#include "../lib/err.h"

/* One origin of a list: printable ASCII without spaces (it is written into a header line). */
static int cors__valid(const char *s, size_t len)
{
    if (len == 0 || len >= CORS_ORIGIN_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] <= ' ' || s[i] > '~') {
            return 0;
        }
    }
    return 1;
}

int cors_init(struct cors *c, const char *list, char *err, size_t errcap)
{
    memset(c, 0, sizeof *c);
    if (list == NULL || list[0] == '\0' || strcmp(list, "*") == 0) {
        c->any = 1;
        return 0;
    }
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!cors__valid(p, len)) {
            snprintf(err, errcap,
                     "origins are comma-separated, each 1 to %d bytes of printable ASCII "
                     "without spaces",
                     CORS_ORIGIN_MAX - 1);
            return LR_EINVAL;
        }
        if (c->n == CORS_ORIGINS_MAX) {
            snprintf(err, errcap, "at most %d origins", CORS_ORIGINS_MAX);
            return LR_EINVAL;
        }
        memcpy(c->origin[c->n], p, len);
        c->origin[c->n][len] = '\0';
        c->n++;
        if (end == NULL) {
            return 0;
        }
        p = end + 1;
    }
}

/* The listed origin equal to @origin, or NULL. */
static const char *cors__find(const struct cors *c, const char *origin)
{
    for (unsigned i = 0; i < c->n; i++) {
        if (strcmp(c->origin[i], origin) == 0) {
            return c->origin[i];
        }
    }
    return NULL;
}

int cors_allows(const struct cors *c, const char *origin)
{
    return c->any || origin[0] == '\0' || cors__find(c, origin) != NULL;
}

size_t cors_headers(const struct cors *c, const char *origin, char *out, size_t cap)
{
    const char *allow = c->any ? "*" : cors__find(c, origin);
    int n = snprintf(out, cap, "%s%s%s%sAccess-Control-Expose-Headers: " CORS_EXPOSE_HEADERS "\r\n",
                     allow ? "Access-Control-Allow-Origin: " : "", allow ? allow : "",
                     allow ? "\r\n" : "", c->any ? "" : "Vary: Origin\r\n");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t cors_preflight(const char *methods, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "Access-Control-Allow-Methods: %s\r\n"
                     "Access-Control-Allow-Headers: " CORS_ALLOW_HEADERS
                     "\r\n"
                     "Access-Control-Max-Age: %d\r\n",
                     methods, CORS_MAX_AGE_S);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}
