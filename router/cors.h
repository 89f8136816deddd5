/* router/cors.h — Cross-Origin Resource Sharing (docs/api.md, "CORS"): which web origins may
 * read the router's answers in a browser, and the header lines that tell the browser so.
 *
 * The router's API carries no cookies and no ambient credentials: a browser page reaches a
 * guarded endpoint only with a key it was given, so allowing every origin (the default, "*")
 * exposes nothing a plain HTTP client could not read. An operator who wants only their own
 * pages to read from the browser lists those origins. Plain data, no allocation: a router
 * copies its struct cors into its HTTP server. */
#ifndef LAUREL_CORS_H
#define LAUREL_CORS_H

#include <stddef.h>

#define CORS_ORIGINS_MAX 32
#define CORS_ORIGIN_MAX 256 /* bytes of one origin, with its NUL */
/* Bytes of the header lines cors_headers and cors_preflight write at most. */
#define CORS_HEADERS_MAX 512

/* The request headers a browser may send (the preflight's Access-Control-Allow-Headers):
 * the key (router.c reads Authorization: Bearer), the body's type, and the read-consistency
 * extension (docs/consistency.md). Idempotency keys travel in the body, not in a header. */
#define CORS_ALLOW_HEADERS "Authorization, Content-Type, Laurel-Consistency"
/* The answer headers a page may read besides the CORS-safelisted ones: when to retry a 429
 * or 503, and whether a write's answer is a replay (API.md, "Idempotency"). */
#define CORS_EXPOSE_HEADERS "Retry-After, Idempotent-Replayed"
/* How long a browser may cache a preflight's answer, in seconds (browsers cap it: Chromium
 * at 2 hours, Firefox at 24). */
#define CORS_MAX_AGE_S 86400

struct cors {
    int any;    /* every origin: "Access-Control-Allow-Origin: *" */
    unsigned n; /* else the origins allowed */
    char origin[CORS_ORIGINS_MAX][CORS_ORIGIN_MAX];
};

/**
 * Parse @list into @c: NULL, "" or "*" allow every origin; else comma-separated origins
 * ("https://game.example", "http://localhost:3000"), compared with a request's Origin byte
 * for byte.
 *
 * @return 0, or LR_EINVAL (with a sentence in @err of @errcap bytes) for an empty item,
 * more than CORS_ORIGINS_MAX, one longer than CORS_ORIGIN_MAX - 1 bytes, or one with a byte
 * that is not printable ASCII or is a space (it would go into a header line as it is).
 */
int cors_init(struct cors *c, const char *list, char *err, size_t errcap);

/**
 * Whether @c lets a page of @origin (a request's Origin; "" when it had none) read the
 * answers: every origin with "*"; else a listed one, or none at all (not a browser's request:
 * browsers send Origin with every cross-origin request and every WebSocket handshake).
 */
int cors_allows(const struct cors *c, const char *origin);

/**
 * The CORS header lines of an answer to a request whose Origin header is @origin ("" when it
 * had none), each ending in CRLF, into @out (@cap >= CORS_HEADERS_MAX): with "*", the
 * wildcard; with a list, the origin echoed when it is listed, and "Vary: Origin" in any case
 * (the answer depends on it, so caches must key on it). @return the length written.
 */
size_t cors_headers(const struct cors *c, const char *origin, char *out, size_t cap);

/**
 * The header lines of a preflight's answer (beside cors_headers'), into @out (@cap >=
 * CORS_HEADERS_MAX): @methods (e.g. "GET, PUT", borrowed for the call) as
 * Access-Control-Allow-Methods, CORS_ALLOW_HEADERS and CORS_MAX_AGE_S. @return the length
 * written, or 0 when @methods does not fit.
 */
size_t cors_preflight(const char *methods, char *out, size_t cap);

#endif
