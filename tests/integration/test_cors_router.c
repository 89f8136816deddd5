/* tests/integration/test_cors_router.c — CORS and /openapi.json on real processes over
 * loopback (docs/api.md, "CORS"): a `laurel dev` cluster of one region, whose router allows
 * every origin (the default), and `laurel router` processes started by the test over it,
 * one with a list of origins, one with tiny rate limits.
 *
 * - an OPTIONS preflight of a route's path answers 204 with the path's methods, the request
 *   headers the API reads and a max age, without a key; an unknown path is 404;
 * - every answer (2xx, 401, 404, 429) carries Access-Control-Allow-Origin: * by default;
 * - with --cors-origins, a listed origin is echoed with Vary: Origin, another gets none;
 * - preflights take no token of the rate limits, and the 429s carry the CORS headers;
 * - with a list, a WebSocket handshake from an unlisted origin gets 403; a listed origin, or
 *   none (not a browser), gets 101, as every origin does by default;
 * - GET /openapi.json answers the document without a key: JSON, openapi "3.1.x".
 *
 * Requests are written raw (httpc_raw) so they can carry Origin and read every header. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/httpc.h"
#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"

#define ALLOWED "https://game.example"
#define OTHER "https://elsewhere.example"

struct fixture {
    struct tdev d;
    struct tdev_router listed;  /* --cors-origins ALLOWED,http://localhost:3000 */
    struct tdev_router limited; /* the default origins, 1 read and 1 write a second */
};

static struct fixture *fx;

/* One answer read raw: its status, head (status line and headers) and body. */
struct answer {
    int status;
    char head[4096];
    const char *body;
    char raw[1 << 17];
};

/* @method @path on @addr with Origin @origin (NULL: none), @auth (NULL: none) and
 * @extra header lines; the whole answer into @a. @return the status, or -1. */
static int ask(const char *addr, const char *method, const char *path, const char *origin,
               const char *auth, const char *extra, struct answer *a)
{
    char req[2048], org[512] = "", key[512] = "";
    if (origin) {
        snprintf(org, sizeof org, "Origin: %s\r\n", origin);
    }
    if (auth) {
        snprintf(key, sizeof key, "Authorization: Bearer %s\r\n", auth);
    }
    int n =
        snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: %s\r\n%s%s%sConnection: close\r\n\r\n",
                 method, path, addr, org, key, extra ? extra : "");
    long got = httpc_raw(addr, req, (size_t)n, a->raw, sizeof a->raw - 1, 5000);
    a->status = -1;
    if (got <= 0) {
        return -1;
    }
    a->raw[got] = '\0';
    char *end = strstr(a->raw, "\r\n\r\n");
    if (end == NULL || sscanf(a->raw, "HTTP/1.%*d %d", &a->status) != 1) {
        return -1;
    }
    size_t hl = (size_t)(end - a->raw) + 2;
    snprintf(a->head, sizeof a->head, "%.*s", (int)(hl < sizeof a->head ? hl : sizeof a->head - 1),
             a->raw);
    a->body = end + 4;
    return a->status;
}

/* The value of header @name in @a ("" when absent), case-insensitively by name. */
static const char *header(const struct answer *a, const char *name, char *out, size_t cap)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\r\n%s:", name);
    const char *p = strcasestr(a->head, pat);
    out[0] = '\0';
    if (p != NULL) {
        p += strlen(pat);
        p += strspn(p, " ");
        size_t len = strcspn(p, "\r");
        snprintf(out, cap, "%.*s", (int)len, p);
    }
    return out;
}

static int setup(void **state)
{
    (void)state;
    static const char *const listed[] = {"--cors-origins", ALLOWED ",http://localhost:3000", NULL};
    static const char *const limited[] = {"--limit-addr-reads", "1/1", "--limit-addr-writes", "1/1",
                                          NULL};
    fx = calloc(1, sizeof *fx);
    if (fx == NULL || tdev_start(&fx->d, "na", 1, 30000) != 0) {
        return -1;
    }
    if (tdev_router_start_with(&fx->d, &fx->listed, listed) != 0 ||
        tdev_router_start_with(&fx->d, &fx->limited, limited) != 0) {
        tdev_router_stop(&fx->listed);
        tdev_stop(&fx->d);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tdev_router_stop(&fx->listed);
    tdev_router_stop(&fx->limited);
    tdev_stop(&fx->d);
    free(fx);
    return 0;
}

/* A preflight of a route's path answers 204 with the path's methods in table order, the
 * request headers the API reads and a max age, with no body and no key; an unknown path is
 * 404 as any other request of it. */
static void preflight_answers_204_with_the_paths_methods(void **state)
{
    (void)state;
    struct answer *a = malloc(sizeof *a);
    char v[512];
    const char *acrm =
        "Access-Control-Request-Method: PUT\r\n"
        "Access-Control-Request-Headers: authorization, content-type\r\n";
    assert_int_equal(ask(fx->d.http, "OPTIONS", "/v1/players/ann", OTHER, NULL, acrm, a), 204);
    assert_string_equal(header(a, "Access-Control-Allow-Methods", v, sizeof v), "PUT, GET");
    assert_string_equal(header(a, "Access-Control-Allow-Headers", v, sizeof v),
                        "Authorization, Content-Type, Laurel-Consistency");
    assert_string_equal(header(a, "Access-Control-Max-Age", v, sizeof v), "86400");
    assert_string_equal(header(a, "Access-Control-Allow-Origin", v, sizeof v), "*");
    assert_string_equal(header(a, "Content-Length", v, sizeof v), "");
    assert_string_equal(a->body, "");
    /* Paths with one method, and an admin route: no key needed to ask. */
    assert_int_equal(ask(fx->d.http, "OPTIONS", "/v1/events", OTHER, NULL, acrm, a), 204);
    assert_string_equal(header(a, "Access-Control-Allow-Methods", v, sizeof v), "POST");
    assert_int_equal(ask(fx->d.http, "OPTIONS", "/v1/cluster", OTHER, NULL, acrm, a), 204);
    assert_string_equal(header(a, "Access-Control-Allow-Methods", v, sizeof v), "GET");
    assert_int_equal(ask(fx->d.http, "OPTIONS", "/v1/boards/b1/top?limit=3", OTHER, NULL, acrm, a),
                     204);
    assert_string_equal(header(a, "Access-Control-Allow-Methods", v, sizeof v), "GET");
    /* Unknown paths: 404 not_found, with the CORS headers so a page can read why. */
    assert_int_equal(ask(fx->d.http, "OPTIONS", "/v1/nothing", OTHER, NULL, acrm, a), 404);
    assert_string_equal(header(a, "Access-Control-Allow-Methods", v, sizeof v), "");
    assert_string_equal(header(a, "Access-Control-Allow-Origin", v, sizeof v), "*");
    assert_non_null(strstr(a->body, "\"not_found\""));
    free(a);
}

/* By default every answer carries Allow-Origin: * and the exposed headers, errors included,
 * with and without an Origin. */
static void every_answer_allows_any_origin_by_default(void **state)
{
    (void)state;
    struct answer *a = malloc(sizeof *a);
    char v[512];
    struct {
        const char *method, *path;
        int status;
    } cases[] = {
        {"GET", "/healthz", 200},     {"GET", "/v1/players/nobody", 404},
        {"PUT", "/v1/games/g1", 401}, /* no key */
        {"GET", "/v1/nothing", 404},  {"DELETE", "/v1/players/ann", 405},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int with_origin = 0; with_origin < 2; with_origin++) {
            assert_int_equal(ask(fx->d.http, cases[i].method, cases[i].path,
                                 with_origin ? OTHER : NULL, NULL, NULL, a),
                             cases[i].status);
            assert_string_equal(header(a, "Access-Control-Allow-Origin", v, sizeof v), "*");
            assert_string_equal(header(a, "Access-Control-Expose-Headers", v, sizeof v),
                                "Retry-After, Idempotent-Replayed");
            assert_string_equal(header(a, "Vary", v, sizeof v), "");
        }
    }
    free(a);
}

/* With --cors-origins, a listed origin is echoed with Vary: Origin; an unlisted one, or none,
 * gets no Allow-Origin (the browser then keeps the answer from the page) but Vary still. */
static void a_list_echoes_only_listed_origins(void **state)
{
    (void)state;
    struct answer *a = malloc(sizeof *a);
    char v[512];
    assert_int_equal(ask(fx->listed.http, "GET", "/healthz", ALLOWED, NULL, NULL, a), 200);
    assert_string_equal(header(a, "Access-Control-Allow-Origin", v, sizeof v), ALLOWED);
    assert_string_equal(header(a, "Vary", v, sizeof v), "Origin");
    assert_int_equal(
        ask(fx->listed.http, "GET", "/healthz", "http://localhost:3000", NULL, NULL, a), 200);
    assert_string_equal(header(a, "Access-Control-Allow-Origin", v, sizeof v),
                        "http://localhost:3000");
    assert_int_equal(ask(fx->listed.http, "OPTIONS", "/v1/boards/b1/scores", ALLOWED, NULL,
                         "Access-Control-Request-Method: POST\r\n", a),
                     204);
    assert_string_equal(header(a, "Access-Control-Allow-Origin", v, sizeof v), ALLOWED);
    assert_string_equal(header(a, "Access-Control-Allow-Methods", v, sizeof v), "POST");
    static const char *const refused[] = {OTHER, "https://game.example.evil", NULL};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(ask(fx->listed.http, "GET", "/healthz", refused[i], NULL, NULL, a), 200);
        assert_string_equal(header(a, "Access-Control-Allow-Origin", v, sizeof v), "");
        assert_string_equal(header(a, "Vary", v, sizeof v), "Origin");
    }
    free(a);
}

/* Preflights take no token of the address's buckets, and an answer refused by a bucket (429)
 * carries the CORS headers and exposes Retry-After. */
static void preflights_are_not_rate_limited(void **state)
{
    (void)state;
    struct answer *a = malloc(sizeof *a);
    char v[512];
    for (int i = 0; i < 20; i++) {
        assert_int_equal(ask(fx->limited.http, "OPTIONS", "/v1/boards/b1/top", OTHER, NULL,
                             "Access-Control-Request-Method: GET\r\n", a),
                         204);
        assert_int_equal(ask(fx->limited.http, "OPTIONS", "/v1/unlocks", OTHER, NULL,
                             "Access-Control-Request-Method: POST\r\n", a),
                         204);
    }
    int limited = 0;
    for (int i = 0; i < 5 && !limited; i++) {
        int s = ask(fx->limited.http, "GET", "/v1/boards/b1/top", OTHER, NULL, NULL, a);
        limited = s == 429;
    }
    assert_true(limited);
    assert_string_equal(header(a, "Access-Control-Allow-Origin", v, sizeof v), "*");
    assert_string_equal(header(a, "Access-Control-Expose-Headers", v, sizeof v),
                        "Retry-After, Idempotent-Replayed");
    assert_true(atoi(header(a, "Retry-After", v, sizeof v)) >= 1);
    assert_int_equal(ask(fx->limited.http, "OPTIONS", "/v1/boards/b1/top", OTHER, NULL,
                         "Access-Control-Request-Method: GET\r\n", a),
                     204);
    free(a);
}

/* The status of a WebSocket handshake to @addr with Origin @origin (NULL: none). */
static int ws_handshake(const char *addr, const char *origin, struct answer *a)
{
    static const char ws[] =
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n";
    char req[1024], org[512] = "";
    if (origin) {
        snprintf(org, sizeof org, "Origin: %s\r\n", origin);
    }
    int n = snprintf(req, sizeof req, "GET /v1/ws HTTP/1.1\r\nHost: %s\r\n%s%s\r\n", addr, org, ws);
    /* A 101 leaves the connection open: read what came within a second. */
    long got = httpc_raw(addr, req, (size_t)n, a->raw, sizeof a->raw - 1, 1000);
    a->status = -1;
    if (got > 0) {
        a->raw[got] = '\0';
        sscanf(a->raw, "HTTP/1.%*d %d", &a->status);
    }
    return a->status;
}

/* With a list, a handshake from an unlisted origin gets 403 forbidden; a listed origin, or
 * none, is upgraded; by default every origin is. */
static void ws_handshakes_follow_the_list(void **state)
{
    (void)state;
    struct answer *a = malloc(sizeof *a);
    assert_int_equal(ws_handshake(fx->listed.http, OTHER, a), 403);
    assert_non_null(strstr(a->raw, "\"forbidden\""));
    assert_int_equal(ws_handshake(fx->listed.http, ALLOWED, a), 101);
    assert_int_equal(ws_handshake(fx->listed.http, NULL, a), 101);
    assert_int_equal(ws_handshake(fx->d.http, OTHER, a), 101);
    free(a);
}

/* GET /openapi.json answers the built-in document without a key: JSON, OpenAPI 3.1, with a
 * path the table has; it allows any origin like every answer. */
static void openapi_json_is_served(void **state)
{
    (void)state;
    struct answer *a = malloc(sizeof *a);
    char v[512];
    json_error_t e;
    assert_int_equal(ask(fx->d.http, "GET", "/openapi.json", OTHER, NULL, NULL, a), 200);
    assert_string_equal(header(a, "Content-Type", v, sizeof v), "application/json");
    assert_string_equal(header(a, "Access-Control-Allow-Origin", v, sizeof v), "*");
    json_t *doc = json_loads(a->body, 0, &e);
    assert_non_null(doc);
    const char *ver = json_string_value(json_object_get(doc, "openapi"));
    assert_non_null(ver);
    assert_int_equal(strncmp(ver, "3.1.", 4), 0);
    assert_non_null(json_object_get(json_object_get(doc, "paths"), "/v1/boards/{board_id}/top"));
    json_decref(doc);
    free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(preflight_answers_204_with_the_paths_methods),
        cmocka_unit_test(every_answer_allows_any_origin_by_default),
        cmocka_unit_test(a_list_echoes_only_listed_origins),
        cmocka_unit_test(preflights_are_not_rate_limited),
        cmocka_unit_test(ws_handshakes_follow_the_list),
        cmocka_unit_test(openapi_json_is_served),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
