/* fuzz/fuzz_http.c — the router's request pipeline without a socket (router__request on
 * fuzz_router.h's headless router): route match, limits, the key check, path ids, the body's
 * parse, and the route's handler until it calls a region, whose stand-in then answers with an
 * error (fuzz_upstream.c).
 *
 * Input: byte 0 picks the method (enum http_method); byte 1 the Authorization header (bits
 * 0-1: none, the api key, the admin key, a wrong key), the Laurel-Consistency header (bits
 * 2-3, as http_req.consistency) and the regions' error (bits 4-5); then "path[?query]", a
 * newline, and the body. A NUL in the body ends it (JSON has none): what follows is msgpack,
 * the answer every region call gets, for up to 8 rounds of calls, before the error.
 *
 * Checks: every request is answered exactly once, with a status of 200..599; an error answer
 * (400 and up) is {"error":{"code":"...","message":"..."}}, and any answer that starts like
 * JSON parses (when regions answered with errors only). FUZZ_VERBOSE=1 in the environment prints
 * each answer. */
#include <jansson.h>
#include <stdio.h>

#include "fuzz/fuzz.h"
#include "fuzz/fuzz_router.h"
#include "lib/err.h"
#include "proto/proto.h"
#include "router/router_int.h"

struct fuzz_http__answer {
    unsigned n;
    int status;
    /* Check that a 2xx answer that starts like JSON parses: not when regions answered with
     * the input's msgpack, whose map keys may hold a NUL (JSON allows "\u0000" in a key,
     * jansson does not read one). */
    int strict;
};

/* Abort when an answer breaks API.md's shape. */
static void fuzz_http__check(int status, const char *body, size_t len, int strict)
{
    if (status < 200 || status > 599) {
        fprintf(stderr, "fuzz_http: status %d\n", status);
        abort();
    }
    int json_like = len > 0 && (body[0] == '{' || body[0] == '[');
    if (status < 400 && (!json_like || !strict)) {
        return; /* /metrics and the like answer text */
    }
    /* \u0000 is JSON: a string a region stored may hold one, and jansson refuses it unless told. */
    json_t *j = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
    json_t *e = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    if (j == NULL || (status >= 400 && (code == NULL || code[0] == '\0' ||
                                        !json_is_string(json_object_get(e, "message"))))) {
        fprintf(stderr, "fuzz_http: status %d with body %.*s\n", status, (int)len, body);
        abort();
    }
    json_decref(j);
}

static void fuzz_http__reply(void *rdata, int status, const char *body, size_t len)
{
    struct fuzz_http__answer *a = rdata;
    a->n++;
    a->status = status;
    if (getenv("FUZZ_VERBOSE")) { /* to see what a reproduced input was answered */
        fprintf(stderr, "fuzz_http: %d %.*s\n", status, (int)len, body);
    }
    fuzz_http__check(status, body, len, a->strict);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const auth[] = {"", "Bearer " FUZZ_API_KEY, "Bearer " FUZZ_ADMIN_KEY,
                                       "Bearer fuzz-wrong-key-0123456789"};
    static const int consistency[] = {0, 1, 2, -1}; /* absent, linearizable, stale, other */
    static const int upstream_err[] = {LR_EUNAVAILABLE, LR_ENOTFOUND, LR_EINTERNAL, LR_ENOTLEADER};
    if (size < 2) {
        return 0;
    }
    struct router *r = fuzz_router();
    /* The text as NUL-terminated pieces: a NUL inside ends the path where lws would. */
    char *text = fuzz_str(data + 2, size - 2);
    char *nl = memchr(text, '\n', size - 2);
    const char *body = "";
    size_t body_len = 0;
    const char *answer = NULL;
    size_t answer_len = 0;
    if (nl) {
        *nl = '\0';
        body = nl + 1;
        body_len = size - 2 - (size_t)(nl + 1 - text);
        const char *nul = memchr(body, '\0', body_len);
        if (nul) {
            answer = nul + 1;
            answer_len = body_len - (size_t)(answer - body);
            body_len = (size_t)(nul - body);
        }
    }
    char *query = strchr(text, '?');
    if (query) {
        *query++ = '\0';
    }
    struct http_req in = {.method = (enum http_method)(data[0] % (HTTP_OTHER + 1)),
                          .path = text,
                          .query = query ? query : "",
                          .auth = auth[data[1] & 3],
                          .peer = "",
                          .consistency = consistency[(data[1] >> 2) & 3],
                          .body = body,
                          .body_len = body_len};
    struct fuzz_http__answer a = {0, 0, answer == NULL};
    if (router__request(r, &in, fuzz_http__reply, &a) != 0) {
        abort(); /* LR_ENOMEM: the harness has no memory limit that low */
    }
    if (answer != NULL) {
        /* An exact-size copy: a read past the answer's end shows. */
        char *mp = fuzz_copy((const uint8_t *)answer, answer_len);
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        /* As upstream.c unpacks a replica's payload: proto_unpack refuses counts the bytes
         * cannot back, which msgpack-c alone would try to allocate. */
        if (proto_unpack(mp, answer_len, &up) == 0) {
            fuzz_router_settle(r, 0, &up.data, 8);
        }
        msgpack_unpacked_destroy(&up);
        free(mp);
    }
    fuzz_router_settle(r, upstream_err[(data[1] >> 4) & 3], NULL, 16);
    if (a.n != 1) {
        fprintf(stderr, "fuzz_http: %u answers to %s?%s\n", a.n, text, in.query);
        abort();
    }
    free(text);
    return 0;
}
