/* tests/unit/test_openapi.c — router/openapi.json, as built into the binary, against the
 * router's route table (ROUTER_ROUTES in router/router.c, through router__route_at): every
 * route is documented, every documented operation is a route, and each operation says what
 * its route needs (no key, the api key or the admin key; a body or none). The document is
 * valid OpenAPI 3.1 by a real validator too (CTest: openapi_lint). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/router_int.h"

struct fixture {
    json_t *doc;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    json_error_t e;
    f->doc = json_loadb((const char *)router__openapi_json, router__openapi_json_len, 0, &e);
    if (f->doc == NULL) {
        fprintf(stderr, "# router/openapi.json: line %d: %s\n", e.line, e.text);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    json_decref(f->doc);
    free(f);
    return 0;
}

/* @path with every "{name}" as "{}", the table's form, into @out. */
static void normalize(const char *path, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = path; *p && n + 1 < cap; p++) {
        out[n++] = *p;
        if (*p == '{') {
            p = strchr(p, '}');
            assert_non_null(p);
            out[n++] = '}';
        }
    }
    out[n] = '\0';
}

/* The table's pattern @pat with its parameters named as the document names them, or NULL. */
static json_t *doc_path(const json_t *doc, const char *pat)
{
    const char *key;
    json_t *item;
    char norm[256];
    json_object_foreach(json_object_get(doc, "paths"), key, item)
    {
        normalize(key, norm, sizeof norm);
        if (strcmp(norm, pat) == 0) {
            return item;
        }
    }
    return NULL;
}

static void lower(const char *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++) {
        out[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
    }
    out[i] = '\0';
}

/* The document's operation of route @rt, or NULL; its method, lower-case, into @m (16). */
static json_t *route_op(const json_t *doc, const struct router__route *rt, char *m)
{
    lower(http_method_name(rt->method), m, 16);
    return json_object_get(doc_path(doc, rt->pattern), m);
}

static const struct router__route *table_route(const char *method, const char *pat)
{
    char m[16];
    for (size_t i = 0; i < router__nroutes(); i++) {
        const struct router__route *rt = router__route_at(i);
        lower(http_method_name(rt->method), m, sizeof m);
        if (strcmp(m, method) == 0 && strcmp(rt->pattern, pat) == 0) {
            return rt;
        }
    }
    return NULL;
}

/* The document is OpenAPI 3.1 with both keys as bearer schemes. */
static void the_document_is_openapi_3_1(void **state)
{
    struct fixture *f = *state;
    const char *v = json_string_value(json_object_get(f->doc, "openapi"));
    assert_non_null(v);
    assert_int_equal(strncmp(v, "3.1.", 4), 0);
    json_t *schemes = json_object_get(json_object_get(f->doc, "components"), "securitySchemes");
    static const char *const names[] = {"apiKey", "adminKey"};
    for (size_t i = 0; i < 2; i++) {
        json_t *s = json_object_get(schemes, names[i]);
        assert_string_equal(json_string_value(json_object_get(s, "type")), "http");
        assert_string_equal(json_string_value(json_object_get(s, "scheme")), "bearer");
    }
    assert_int_equal(router__openapi_json[router__openapi_json_len], '\0');
}

/* Every route of the table is an operation of the document. */
static void every_route_is_documented(void **state)
{
    struct fixture *f = *state;
    char m[16];
    for (size_t i = 0; i < router__nroutes(); i++) {
        const struct router__route *rt = router__route_at(i);
        if (route_op(f->doc, rt, m) == NULL) {
            fail_msg("%s %s is in the route table but not in router/openapi.json",
                     http_method_name(rt->method), rt->pattern);
        }
    }
}

/* Every operation of the document is a route of the table. */
static void every_documented_operation_is_a_route(void **state)
{
    struct fixture *f = *state;
    const char *path, *method;
    json_t *item, *op;
    char pat[256];
    json_object_foreach(json_object_get(f->doc, "paths"), path, item)
    {
        normalize(path, pat, sizeof pat);
        json_object_foreach(item, method, op)
        {
            if (strcmp(method, "parameters") == 0 || strcmp(method, "summary") == 0 ||
                strcmp(method, "description") == 0) {
                continue;
            }
            if (table_route(method, pat) == NULL) {
                fail_msg("%s %s is in router/openapi.json but not in the route table", method,
                         path);
            }
        }
    }
}

/* Each operation's security is its route's key (none: []; api: api or admin key; admin: the
 * admin key alone), and it takes a body exactly when its route parses one. */
static void operations_say_what_their_route_needs(void **state)
{
    struct fixture *f = *state;
    char m[16];
    for (size_t i = 0; i < router__nroutes(); i++) {
        const struct router__route *rt = router__route_at(i);
        json_t *op = route_op(f->doc, rt, m);
        json_t *sec = json_object_get(op, "security");
        char got[128] = "";
        size_t k;
        json_t *req;
        assert_true(json_is_array(sec));
        json_array_foreach(sec, k, req)
        {
            const char *name;
            json_t *v;
            json_object_foreach(req, name, v)
            {
                size_t n = strlen(got);
                snprintf(got + n, sizeof got - n, "%s%s", n ? "," : "", name);
            }
        }
        static const char *const want[] = {
            [AUTH_NONE] = "", [AUTH_API] = "apiKey,adminKey", [AUTH_ADMIN] = "adminKey"};
        if (strcmp(got, want[rt->auth]) != 0) {
            fail_msg("%s %s: security is [%s], the route needs [%s]", m, rt->pattern, got,
                     want[rt->auth]);
        }
        json_t *schema = json_object_get(
            json_object_get(json_object_get(json_object_get(op, "requestBody"), "content"),
                            "application/json"),
            "schema");
        if ((schema != NULL) != (rt->body != BODY_NONE)) {
            fail_msg("%s %s: requestBody %s, the route %s", m, rt->pattern,
                     schema ? "documented" : "missing",
                     rt->body != BODY_NONE ? "parses one" : "takes none");
        }
        if (rt->body == BODY_ARRAY) {
            assert_string_equal(json_string_value(json_object_get(schema, "type")), "array");
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_document_is_openapi_3_1),
        cmocka_unit_test(every_route_is_documented),
        cmocka_unit_test(every_documented_operation_is_a_route),
        cmocka_unit_test(operations_say_what_their_route_needs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
