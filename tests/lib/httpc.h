/* tests/lib/httpc.h — a blocking HTTP/1.1 client for tests: one request per call on a fresh
 * or kept-alive connection, the answer's status, headers and JSON body. */
#ifndef LAUREL_HTTPC_H
#define LAUREL_HTTPC_H

#include <jansson.h>
#include <stddef.h>

struct httpc_resp {
    int status;
    char headers[4096];
    char *body; /* NUL-terminated; owned */
    size_t body_len;
    json_t *json; /* parsed body or NULL; owned */
};

/**
 * @method @path (with query) on @addr, with @auth ("" for none: else the key, sent as
 * Bearer) and @body (NULL for none). @return 0 and *@r (free with httpc_free), or -1.
 */
int httpc_do(const char *addr, const char *method, const char *path, const char *auth,
             const char *body, struct httpc_resp *r);

/** Send @n raw bytes and read until the server closes or @timeout_ms; returns bytes read. */
long httpc_raw(const char *addr, const void *p, size_t n, char *out, size_t cap, int timeout_ms);

void httpc_free(struct httpc_resp *r);

/** The value of the sample @key (a name with its labels, as printed) in @addr's /metrics, or
 * -1 when it is not there or the request fails. */
long long httpc_metric(const char *addr, const char *key);

#endif
