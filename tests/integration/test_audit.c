/* tests/integration/test_audit.c — API.md's audit trail through real processes: `laurel dev`
 * with two regions and a metadata group, writes from this test (127.0.0.1) with the api and
 * admin keys, then GET /v1/players/{id}/audit with each key. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"
#include "tests/lib/cluster.h"
#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

struct fixture {
    struct tdev d;
};

static struct fixture *fx;

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    return fx == NULL || tdev_start(&fx->d, "na,eu", 1, 60000) != 0 ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    tdev_stop(&fx->d);
    free(fx);
    return 0;
}

/* @method @path with @auth and @body; fails the test unless the status is @want. The answer
 * stays in *@r (httpc_free it). */
static void call(const char *method, const char *path, const char *auth, const char *body, int want,
                 struct httpc_resp *r)
{
    int s = tdev_req(&fx->d, method, path, auth, body, r);
    if (s != want) {
        fail_msg("%s %s: status %d, expected %d; body %s", method, path, s, want,
                 r->body ? r->body : "(none)");
    }
}

static void call_free(const char *method, const char *path, const char *auth, const char *body,
                      int want)
{
    struct httpc_resp r;
    call(method, path, auth, body, want, &r);
    httpc_free(&r);
}

/* The whole trail of @player in one page (@limit 1000). */
static json_t *trail(const char *player)
{
    char path[128];
    struct httpc_resp r;
    snprintf(path, sizeof path, "/v1/players/%s/audit?limit=1000", player);
    call("GET", path, TDEV_ADMIN, NULL, 200, &r);
    json_t *items = json_incref(json_object_get(r.json, "items"));
    assert_true(json_is_array(items));
    assert_true(json_is_null(json_object_get(r.json, "next_cursor")));
    httpc_free(&r);
    return items;
}

/* Check the fields every item carries, and that this test wrote it. */
static void expect_item(const json_t *it, const char *action, int status, const char *key)
{
    char what[64];
    snprintf(what, sizeof what, "%s %d", action, status);
    if (strcmp(tdev_str(it, "action"), action) != 0 || tdev_int(it, "status") != status) {
        char *txt = json_dumps(it, JSON_COMPACT);
        fail_msg("expected %s, got %s", what, txt);
    }
    assert_string_equal(tdev_str(it, "key"), key);
    assert_string_equal(tdev_str(it, "source"), "127.0.0.1");
    assert_string_equal(tdev_str(it, "region"), "eu");
    assert_true(tdev_is_time(tdev_str(it, "at")));
    assert_true(tdev_int(it, "index") > 0);
    assert_true(json_is_object(json_object_get(it, "request")));
}

/* A refused write (403: a score to a tournament board by a player who has not joined) and
 * accepted ones are listed newest first with key "api", source 127.0.0.1 and the status the
 * client got; a replay adds nothing; each item of an events batch is its own entry; the admin
 * key's writes say "admin"; the api key cannot read the trail. */
static void trail_lists_refused_and_accepted_writes(void **state)
{
    (void)state;
    call_free("PUT", "/v1/players/aud-p", TDEV_API, "{\"name\":\"Aud\",\"region\":\"eu\"}", 201);
    call_free("PUT", "/v1/boards/aud-b", TDEV_ADMIN,
              "{\"order\":\"desc\",\"operator\":\"best\",\"windows\":[\"alltime\"]}", 201);
    call_free("PUT", "/v1/tournaments/aud-t", TDEV_ADMIN,
              "{\"name\":\"Aud cup\",\"order\":\"desc\",\"operator\":\"best\","
              "\"start_at\":\"2000-01-01T00:00:00.000Z\",\"end_at\":\"2999-01-01T00:00:00.000Z\","
              "\"max_participants\":10,\"prizes\":[]}",
              201);
    call_free("POST", "/v1/boards/aud-t/scores", TDEV_API,
              "{\"player_id\":\"aud-p\",\"score\":7,\"idempotency_key\":\"aud-0001\"}", 403);
    const char *ok =
        "{\"player_id\":\"aud-p\",\"score\":5,\"metadata\":{\"lvl\":2},"
        "\"idempotency_key\":\"aud-0002\"}";
    call_free("POST", "/v1/boards/aud-b/scores", TDEV_API, ok, 200);
    call_free("POST", "/v1/boards/aud-b/scores", TDEV_API, ok, 200); /* a replay */
    struct httpc_resp r;
    call("POST", "/v1/events", TDEV_API,
         "[{\"type\":\"score\",\"board_id\":\"aud-b\",\"player_id\":\"aud-p\",\"score\":9,"
         "\"idempotency_key\":\"aud-0003\"},"
         "{\"type\":\"score\",\"board_id\":\"aud-t\",\"player_id\":\"aud-p\",\"score\":9,"
         "\"idempotency_key\":\"aud-0004\"}]",
         200, &r);
    assert_int_equal(tdev_int(json_array_get(json_object_get(r.json, "results"), 1), "status"),
                     403);
    httpc_free(&r);
    call_free("POST", "/v1/tournaments/aud-t/join", TDEV_ADMIN, "{\"player_id\":\"aud-p\"}", 200);

    json_t *items = trail("aud-p");
    assert_int_equal(json_array_size(items), 6);
    expect_item(json_array_get(items, 0), "join", 200, "admin");
    expect_item(json_array_get(items, 1), "score", 403, "api"); /* the batch's second item */
    expect_item(json_array_get(items, 2), "score", 200, "api");
    expect_item(json_array_get(items, 3), "score", 200, "api");
    expect_item(json_array_get(items, 4), "score", 403, "api");
    expect_item(json_array_get(items, 5), "player", 201, "api");
    const json_t *req = json_object_get(json_array_get(items, 3), "request");
    assert_string_equal(tdev_str(req, "board_id"), "aud-b");
    assert_string_equal(tdev_str(req, "player_id"), "aud-p");
    assert_int_equal(tdev_int(req, "score"), 5);
    assert_int_equal(tdev_int(json_object_get(req, "metadata"), "lvl"), 2);
    assert_string_equal(tdev_str(req, "idempotency_key"), "aud-0002");
    assert_string_equal(tdev_str(json_object_get(json_array_get(items, 4), "request"), "board_id"),
                        "aud-t");
    /* newest first: indexes decrease (the batch's items share one, its first listed last) */
    for (size_t i = 1; i < json_array_size(items); i++) {
        assert_true(tdev_int(json_array_get(items, i), "index") <=
                    tdev_int(json_array_get(items, i - 1), "index"));
    }
    assert_int_equal(tdev_int(json_array_get(items, 1), "index"),
                     tdev_int(json_array_get(items, 2), "index"));

    /* Paging one at a time walks the same items, each once. */
    char cursor[256] = "";
    size_t seen = 0;
    for (;;) {
        char path[512];
        snprintf(path, sizeof path, "/v1/players/aud-p/audit?limit=1%s%s",
                 cursor[0] ? "&cursor=" : "", cursor);
        call("GET", path, TDEV_ADMIN, NULL, 200, &r);
        const json_t *page = json_object_get(r.json, "items");
        assert_int_equal(json_array_size(page), 1);
        assert_true(seen < json_array_size(items));
        assert_true(json_equal(json_array_get(page, 0), json_array_get(items, seen)));
        seen++;
        const char *next = tdev_str(r.json, "next_cursor");
        if (next == NULL) {
            httpc_free(&r);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", next);
        httpc_free(&r);
    }
    assert_int_equal(seen, json_array_size(items));
    json_decref(items);

    /* The api key is refused, no key is unauthorized, an unknown player is 404. */
    call("GET", "/v1/players/aud-p/audit", TDEV_API, NULL, 403, &r);
    tdev_assert_error(&r, 403, "forbidden", "api key on the audit");
    httpc_free(&r);
    call("GET", "/v1/players/aud-p/audit", "", NULL, 401, &r);
    tdev_assert_error(&r, 401, "unauthorized", "no key on the audit");
    httpc_free(&r);
    call("GET", "/v1/players/aud-nobody/audit", TDEV_ADMIN, NULL, 404, &r);
    tdev_assert_error(&r, 404, "not_found", "audit of an unknown player");
    httpc_free(&r);
    call("GET", "/v1/players/aud-p/audit?cursor=nope", TDEV_ADMIN, NULL, 400, &r);
    tdev_assert_error(&r, 400, "invalid_argument", "a bad cursor");
    httpc_free(&r);
}

/* The audit_days a replica's status reports (0 when it cannot tell). */
static uint64_t audit_days_of(struct tcluster *c, unsigned i)
{
    struct client cl;
    struct client_reply r;
    uint64_t days = 0;
    if (tcluster_connect(c, i, &cl, 1000) == 0 &&
        client_call(&cl, PROTO_OP_STATUS, NULL, 0, &r, 2000) == 0 && r.code == 0) {
        const msgpack_object *o = proto_map_get(r.body, "audit_days");
        days = o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
    }
    client_close(&cl);
    return days;
}

/* A region's retention is what its leader's --audit-days asks, applied by every replica
 * alike: 30 until the first write, 45 on all three after it, with one digest. */
static void leader_proposes_its_retention(void **state)
{
    (void)state;
    struct tcluster *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_int_equal(tcluster_init_on(c, 3, "eu", "127.0.0.1"), 0);
    c->args[c->nargs++] = "--audit-days";
    c->args[c->nargs++] = "45";
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(tcluster_spawn(c, i), 0);
    }
    int l = tcluster_leader(c, 30000);
    assert_true(l >= 0);
    assert_int_equal(audit_days_of(c, (unsigned)l), 30);
    struct cmd cmds[2] = {ts_board(0, "b", CMD_ORDER_DESC, CMD_OP_BEST, 1, 0),
                          ts_player(0, "ann", "eu", "")};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 2);
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(cmd_encode(&pk, &cmds[i]), 0);
    }
    struct client cl;
    struct client_reply r;
    assert_int_equal(tcluster_connect(c, (unsigned)l, &cl, 1000), 0);
    assert_int_equal(client_call(&cl, PROTO_OP_SUBMIT, sb.data, sb.size, &r, 5000), 0);
    assert_int_equal(r.code, 0);
    /* The retention rode along, answered to nobody: the writer sees its own two results. */
    assert_int_equal(proto_map_get(r.body, "results")->via.array.size, 2);
    client_close(&cl);
    msgpack_sbuffer_destroy(&sb);
    uint64_t applied, digest;
    assert_int_equal(tcluster_converged(c, 30000, &applied, &digest), 0);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(audit_days_of(c, i), 45);
    }
    tcluster_stop(c);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trail_lists_refused_and_accepted_writes),
        cmocka_unit_test(leader_proposes_its_retention),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
