/* tests/integration/test_rewards.c — rewards end to end with real processes (API.md,
 * "Cycles"; docs/global-state.md, "Cycle closes" and "Claims").
 *
 * One `laurel dev --regions na,eu` cluster and a second `laurel router` process on the same
 * replicas. Rewards are granted as the closer grants them: REWARD_GRANT commands submitted
 * straight to a region's leader over the replica RPC, several in one submit. Then:
 * - a grant repeated is still one item, and a WebSocket client on player:<id> gets exactly
 *   one reward.granted;
 * - concurrent claims of one reward through both routers under different keys: exactly one
 *   200, the rest 409, and claimed_at never changes afterwards, as both routers read it;
 * - the winner's key again (through either router): 200 with the same body, replayed;
 * - pending=true hides claimed items; paging by cursor; bad parameters and bodies are 400;
 * - an unknown reward or player is 404. */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/client.h"
#include "proto/proto.h"
#include "shard/cmd.h"
#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"

#define N_CLAIMERS 8 /* racing claims of one reward, half through each router */
#define N_RACES 6

struct fixture {
    struct tdev d;
    struct tdev_router r2;
};

static struct fixture *fx;

static int req(const char *http, const char *method, const char *path, const char *auth,
               const char *body, struct httpc_resp *r)
{
    for (int i = 0; i < 50; i++) {
        if (httpc_do(http, method, path, auth, body, r) == 0) {
            return r->status;
        }
        tdev_sleep_ms(100);
    }
    fail_msg("%s %s: no answer", method, path);
    return -1;
}

static int req_status(const char *http, const char *method, const char *path, const char *auth,
                      const char *body)
{
    struct httpc_resp r;
    int s = req(http, method, path, auth, body, &r);
    httpc_free(&r);
    return s;
}

static void put_player(const char *id, const char *region)
{
    char path[128], body[128];
    snprintf(path, sizeof path, "/v1/players/%s", id);
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"region\":\"%s\"}", id, region);
    assert_int_equal(req_status(fx->d.http, "PUT", path, TDEV_API, body), 201);
}

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    if (fx == NULL || tdev_start(&fx->d, "na,eu", 1, 60000) != 0) {
        return -1;
    }
    if (tdev_router_start(&fx->d, &fx->r2) != 0) {
        return -1;
    }
    put_player("ann", "eu");
    put_player("bob", "na");
    put_player("cyd", "eu");
    put_player("dee", "na");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tdev_router_stop(&fx->r2);
    tdev_stop(&fx->d);
    free(fx);
    return 0;
}

/* ---- grants, as the closer makes them -------------------------------------------------- */

struct grant {
    const char *board;
    int64_t cycle;
    const char *player;
    int64_t rank;
    const char *reward;
};

/* Submit @n grants to @region's leader in one submit (the closer's shape); their statuses go
 * to @status. A submit the leader did not acknowledge is sent again, as the closer would. */
static void grant_all(const char *region, const struct grant *g, uint32_t n, int *status)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        struct cmd c;
        memset(&c, 0, sizeof c);
        c.type = CMD_REWARD_GRANT; /* ts 0: the leader stamps it */
        c.u.reward_grant.board_id = lr_str_of(g[i].board);
        c.u.reward_grant.cycle = g[i].cycle;
        c.u.reward_grant.player_id = lr_str_of(g[i].player);
        c.u.reward_grant.rank = g[i].rank;
        c.u.reward_grant.reward = lr_str_of(g[i].reward);
        assert_int_equal(cmd_encode(&pk, &c), 0);
    }
    for (int attempt = 0; attempt < 50; attempt++) {
        int l = tdev_leader(&fx->d, region, 5000);
        struct client cl;
        struct client_reply r;
        if (l < 0) {
            continue;
        }
        int rv = tdev_connect(&fx->d, (unsigned)l, &cl, 1000);
        if (rv == 0) {
            rv = client_call(&cl, PROTO_OP_SUBMIT, sb.data, sb.size, &r, 5000);
        }
        if (rv == 0 && r.code == 0) {
            const msgpack_object *res = proto_map_get(r.body, "results");
            assert_non_null(res);
            assert_int_equal(res->via.array.size, n);
            for (uint32_t i = 0; i < n; i++) {
                status[i] = (int)res->via.array.ptr[i].via.array.ptr[0].via.u64;
            }
            client_close(&cl);
            msgpack_sbuffer_destroy(&sb);
            return;
        }
        client_close(&cl);
        tdev_sleep_ms(100);
    }
    fail_msg("grant: no leader of %s acknowledged the submit", region);
}

static int grant1(const char *region, const char *board, int64_t cycle, const char *player,
                  int64_t rank, const char *reward)
{
    struct grant g = {board, cycle, player, rank, reward};
    int status;
    grant_all(region, &g, 1, &status);
    return status;
}

/* ---- reads ---------------------------------------------------------------------------------- */

/* GET @player's rewards with @query through @http: 200 and the answer (json_decref it). */
static json_t *rewards(const char *http, const char *player, const char *query)
{
    char path[256];
    struct httpc_resp r;
    snprintf(path, sizeof path, "/v1/players/%s/rewards%s", player, query);
    assert_int_equal(req(http, "GET", path, "", NULL, &r), 200);
    json_t *j = json_incref(r.json);
    httpc_free(&r);
    assert_non_null(j);
    return j;
}

/* The item of (@board, @cycle) in @list's items, or NULL. */
static json_t *find_item(json_t *list, const char *board, int64_t cycle)
{
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(list, "items"), i, it)
    {
        if (strcmp(tdev_str(it, "board_id"), board) == 0 && tdev_int(it, "cycle") == cycle) {
            return it;
        }
    }
    return NULL;
}

/* claimed_at of (@board, @cycle) of @player through @http ("" when null). */
static void claimed_at(const char *http, const char *player, const char *board, int64_t cycle,
                       char *out, size_t cap)
{
    json_t *list = rewards(http, player, "");
    json_t *it = find_item(list, board, cycle);
    assert_non_null(it);
    const char *c = tdev_str(it, "claimed_at");
    snprintf(out, cap, "%s", c ? c : "");
    json_decref(list);
}

/* ---- the WebSocket listener (tests/ws_client.py) ------------------------------------------- */

static FILE *ws_listen(int seconds, int count, const char *topic)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "/usr/bin/python3 %s/tests/ws_client.py listen ws://%s/v1/ws %d %d %s", LAUREL_SRC,
             fx->d.http, seconds, count, topic);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char buf[4096];
    assert_non_null(fgets(buf, sizeof buf, f));
    json_t *j = json_loads(buf, 0, NULL);
    assert_true(json_is_true(json_object_get(j, "ready")));
    json_decref(j);
    return f;
}

/* ---- scenarios ------------------------------------------------------------------------------ */

/* A grant repeated (the closer after a crash) is one item, and one reward.granted reaches the
 * player's topic. */
static void grant_repeated_is_one_item_and_one_event(void **state)
{
    (void)state;
    char buf[4096];
    FILE *f = ws_listen(4, 5, "player:cyd");
    assert_int_equal(grant1("eu", "season", 5, "cyd", 1, "gold"), 201);
    assert_int_equal(grant1("eu", "season", 5, "cyd", 2, "silver"), 200);
    assert_int_equal(grant1("eu", "season", 5, "cyd", 1, "gold"), 200);
    int granted = 0, done = -1;
    while (fgets(buf, sizeof buf, f)) {
        json_t *m = json_loads(buf, 0, NULL);
        assert_non_null(m);
        if (json_object_get(m, "done")) {
            done = (int)tdev_int(m, "done");
        } else if (strcmp(tdev_str(m, "type"), "reward.granted") == 0) {
            granted++;
            assert_string_equal(tdev_str(m, "player_id"), "cyd");
            assert_string_equal(tdev_str(m, "board_id"), "season");
            assert_int_equal(tdev_int(m, "cycle"), 5);
            assert_int_equal(tdev_int(m, "rank"), 1);
            assert_string_equal(tdev_str(m, "reward"), "gold");
            assert_string_equal(tdev_str(m, "region"), "eu");
            assert_true(tdev_int(m, "index") > 0);
        }
        json_decref(m);
    }
    pclose(f);
    assert_int_equal(granted, 1);
    assert_int_equal(done, 1); /* nothing else arrived either */
    const char *http[2] = {fx->d.http, fx->r2.http};
    for (int k = 0; k < 2; k++) {
        json_t *list = rewards(http[k], "cyd", "");
        assert_int_equal(json_array_size(json_object_get(list, "items")), 1);
        json_t *it = find_item(list, "season", 5);
        assert_non_null(it);
        assert_int_equal(tdev_int(it, "rank"), 1);
        assert_string_equal(tdev_str(it, "reward"), "gold");
        assert_true(tdev_is_time(tdev_str(it, "granted_at")));
        assert_true(json_is_null(json_object_get(it, "claimed_at")));
        assert_true(json_is_null(json_object_get(list, "next_cursor")));
        json_decref(list);
    }
}

struct claim_job {
    const char *http;
    char path[128];
    char body[256];
    pthread_barrier_t *go;
    int status;
    char *resp; /* the body answered (owned) */
    char code[32];
};

static void *claim_thread(void *arg)
{
    struct claim_job *j = arg;
    struct httpc_resp r;
    pthread_barrier_wait(j->go);
    j->status = httpc_do(j->http, "POST", j->path, TDEV_API, j->body, &r) == 0 ? r.status : -1;
    if (j->status >= 0) {
        j->resp = strdup(r.body ? r.body : "");
        json_t *e = json_object_get(r.json, "error");
        snprintf(j->code, sizeof j->code, "%s", e ? tdev_str(e, "code") : "");
        httpc_free(&r);
    }
    return NULL;
}

/* Racing claims of one reward through both routers, each under its own key: one 200, the
 * rest 409; claimed_at is the winner's in both routers and stays so; the winner's key again
 * answers the same body, replayed, through either router. */
static void racing_claims_one_wins(void **state)
{
    (void)state;
    for (int race = 0; race < N_RACES; race++) {
        const char *player = race % 2 ? "bob" : "ann", *region = race % 2 ? "na" : "eu";
        int64_t cycle = 100 + race;
        char reward[32];
        snprintf(reward, sizeof reward, "prize-%d", race);
        assert_int_equal(grant1(region, "race", cycle, player, race + 1, reward), 201);

        pthread_barrier_t go;
        pthread_t t[N_CLAIMERS];
        struct claim_job j[N_CLAIMERS];
        memset(j, 0, sizeof j);
        pthread_barrier_init(&go, NULL, N_CLAIMERS);
        for (int k = 0; k < N_CLAIMERS; k++) {
            j[k].http = k % 2 ? fx->r2.http : fx->d.http;
            j[k].go = &go;
            snprintf(j[k].path, sizeof j[k].path, "/v1/players/%s/rewards/claim", player);
            snprintf(j[k].body, sizeof j[k].body,
                     "{\"board_id\":\"race\",\"cycle\":%lld,\"idempotency_key\":\"race-%d-%d\"}",
                     (long long)cycle, race, k);
            assert_int_equal(pthread_create(&t[k], NULL, claim_thread, &j[k]), 0);
        }
        for (int k = 0; k < N_CLAIMERS; k++) {
            pthread_join(t[k], NULL);
        }
        pthread_barrier_destroy(&go);
        int winner = -1, conflicts = 0;
        for (int k = 0; k < N_CLAIMERS; k++) {
            if (j[k].status == 200) {
                if (winner >= 0) {
                    fail_msg("race %d: claims %d and %d both answered 200", race, winner, k);
                }
                winner = k;
            } else if (j[k].status == 409 && strcmp(j[k].code, "conflict") == 0) {
                conflicts++;
            } else {
                fail_msg("race %d: claim %d answered %d %s", race, k, j[k].status,
                         j[k].resp ? j[k].resp : "");
            }
        }
        assert_true(winner >= 0);
        assert_int_equal(conflicts, N_CLAIMERS - 1);
        json_t *won = json_loads(j[winner].resp, 0, NULL);
        assert_non_null(won);
        assert_string_equal(tdev_str(won, "board_id"), "race");
        assert_int_equal(tdev_int(won, "cycle"), cycle);
        assert_int_equal(tdev_int(won, "rank"), race + 1);
        assert_string_equal(tdev_str(won, "reward"), reward);
        const char *at = tdev_str(won, "claimed_at");
        assert_true(tdev_is_time(at));

        /* Both routers read the winner's claimed_at. */
        const char *http[2] = {fx->d.http, fx->r2.http};
        for (int k = 0; k < 2; k++) {
            char seen[64];
            claimed_at(http[k], player, "race", cycle, seen, sizeof seen);
            assert_string_equal(seen, at);
        }
        /* The winner's key again, through the other router: the first answer, replayed. */
        struct httpc_resp r;
        const char *other = j[winner].http == fx->d.http ? fx->r2.http : fx->d.http;
        assert_int_equal(req(other, "POST", j[winner].path, TDEV_API, j[winner].body, &r), 200);
        assert_string_equal(r.body, j[winner].resp);
        assert_non_null(strstr(r.headers, "Idempotent-Replayed: true"));
        httpc_free(&r);
        /* A loser retried is still a conflict, and claimed_at has not moved. */
        int loser = (winner + 1) % N_CLAIMERS;
        assert_int_equal(req(j[loser].http, "POST", j[loser].path, TDEV_API, j[loser].body, &r),
                         409);
        tdev_assert_error(&r, 409, "conflict", "a losing claim retried");
        httpc_free(&r);
        tdev_sleep_ms(100);
        for (int k = 0; k < 2; k++) {
            char seen[64];
            claimed_at(http[k], player, "race", cycle, seen, sizeof seen);
            assert_string_equal(seen, at);
        }
        json_decref(won);
        for (int k = 0; k < N_CLAIMERS; k++) {
            free(j[k].resp);
        }
    }
}

/* pending=true hides claimed rewards; lists page by cursor, newest grant first. */
static void pending_hides_claimed_and_pages(void **state)
{
    (void)state;
    struct grant g[3] = {{"weekly", 1, "dee", 3, "w1"},
                         {"weekly", 2, "dee", 1, "w2"},
                         {"cup", 0, "dee", 2, "cup-silver"}};
    int st[3];
    grant_all("na", g, 3, st);
    assert_int_equal(st[0], 201);
    assert_int_equal(st[1], 201);
    assert_int_equal(st[2], 201);
    assert_int_equal(req_status(fx->r2.http, "POST", "/v1/players/dee/rewards/claim", TDEV_API,
                                "{\"board_id\":\"weekly\",\"cycle\":2,"
                                "\"idempotency_key\":\"dee-claim-1\"}"),
                     200);
    json_t *all = rewards(fx->d.http, "dee", "");
    json_t *items = json_object_get(all, "items");
    assert_int_equal(json_array_size(items), 3);
    /* One submit: its grants in order, newest (the last) first. */
    assert_string_equal(tdev_str(json_array_get(items, 0), "reward"), "cup-silver");
    assert_string_equal(tdev_str(json_array_get(items, 1), "reward"), "w2");
    assert_string_equal(tdev_str(json_array_get(items, 2), "reward"), "w1");
    assert_true(tdev_is_time(tdev_str(json_array_get(items, 1), "claimed_at")));
    json_decref(all);
    json_t *falsy = rewards(fx->r2.http, "dee", "?pending=false");
    assert_int_equal(json_array_size(json_object_get(falsy, "items")), 3);
    json_decref(falsy);
    json_t *pend = rewards(fx->r2.http, "dee", "?pending=true");
    items = json_object_get(pend, "items");
    assert_int_equal(json_array_size(items), 2);
    assert_null(find_item(pend, "weekly", 2));
    assert_non_null(find_item(pend, "weekly", 1));
    assert_non_null(find_item(pend, "cup", 0));
    json_decref(pend);

    /* Pending, one at a time. */
    char query[256] = "?pending=true&limit=1";
    const char *want[2] = {"cup-silver", "w1"};
    for (int i = 0; i < 2; i++) {
        json_t *page = rewards(fx->d.http, "dee", query);
        assert_int_equal(json_array_size(json_object_get(page, "items")), 1);
        assert_string_equal(tdev_str(json_array_get(json_object_get(page, "items"), 0), "reward"),
                            want[i]);
        const char *cur = tdev_str(page, "next_cursor");
        if (i == 0) {
            assert_non_null(cur);
            snprintf(query, sizeof query, "?pending=true&limit=1&cursor=%s", cur);
        } else {
            assert_null(cur);
        }
        json_decref(page);
    }

    struct httpc_resp r;
    assert_int_equal(req(fx->d.http, "GET", "/v1/players/dee/rewards?pending=yes", "", NULL, &r),
                     400);
    tdev_assert_error(&r, 400, "invalid_argument", "pending=yes");
    assert_non_null(strstr(tdev_str(json_object_get(r.json, "error"), "message"), "pending"));
    httpc_free(&r);
    assert_int_equal(req(fx->d.http, "GET", "/v1/players/dee/rewards?limit=0", "", NULL, &r), 400);
    tdev_assert_error(&r, 400, "invalid_argument", "limit=0");
    httpc_free(&r);
    assert_int_equal(req(fx->d.http, "GET", "/v1/players/dee/rewards?cursor=zz", "", NULL, &r),
                     400);
    tdev_assert_error(&r, 400, "invalid_argument", "a bad cursor");
    httpc_free(&r);
    assert_int_equal(req(fx->d.http, "GET", "/v1/players/nobody/rewards", "", NULL, &r), 404);
    tdev_assert_error(&r, 404, "not_found", "an unknown player's rewards");
    httpc_free(&r);
}

/* An unknown reward or player is 404; a body the shard would refuse is 400 with a sentence
 * naming the field; a claim needs the api key. */
static void claim_errors(void **state)
{
    (void)state;
    static const struct {
        const char *player, *body;
        int status;
        const char *code, *needle;
    } cases[] = {
        {"ann", "{\"board_id\":\"none\",\"cycle\":1,\"idempotency_key\":\"err-key-01\"}", 404,
         "not_found", "no reward"},
        {"ann", "{\"board_id\":\"race\",\"cycle\":999,\"idempotency_key\":\"err-key-02\"}", 404,
         "not_found", "cycle 999"},
        {"nobody", "{\"board_id\":\"race\",\"cycle\":100,\"idempotency_key\":\"err-key-03\"}", 404,
         "not_found", "nobody"},
        {"ann", "{\"cycle\":1,\"idempotency_key\":\"err-key-04\"}", 400, "invalid_argument",
         "board_id is required"},
        {"ann", "{\"board_id\":\"bad id\",\"cycle\":1,\"idempotency_key\":\"err-key-05\"}", 400,
         "invalid_argument", "board_id"},
        {"ann", "{\"board_id\":\"race\",\"idempotency_key\":\"err-key-06\"}", 400,
         "invalid_argument", "cycle is required"},
        {"ann", "{\"board_id\":\"race\",\"cycle\":-1,\"idempotency_key\":\"err-key-07\"}", 400,
         "invalid_argument", "cycle must be"},
        {"ann", "{\"board_id\":\"race\",\"cycle\":\"1\",\"idempotency_key\":\"err-key-08\"}", 400,
         "invalid_argument", "cycle must be"},
        {"ann", "{\"board_id\":\"race\",\"cycle\":1}", 400, "invalid_argument",
         "idempotency_key is required"},
        {"ann", "{\"board_id\":\"race\",\"cycle\":1,\"idempotency_key\":\"short\"}", 400,
         "invalid_argument", "idempotency_key must be"},
        {"ann", "[1]", 400, "invalid_argument", "JSON object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[128];
        struct httpc_resp r;
        snprintf(path, sizeof path, "/v1/players/%s/rewards/claim", cases[i].player);
        assert_int_equal(req(fx->d.http, "POST", path, TDEV_API, cases[i].body, &r),
                         cases[i].status);
        tdev_assert_error(&r, cases[i].status, cases[i].code, cases[i].body);
        const char *msg = tdev_str(json_object_get(r.json, "error"), "message");
        if (strstr(msg, cases[i].needle) == NULL) {
            fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].body, msg, cases[i].needle);
        }
        httpc_free(&r);
    }
    assert_int_equal(req_status(fx->d.http, "POST", "/v1/players/ann/rewards/claim", "",
                                "{\"board_id\":\"race\",\"cycle\":100,"
                                "\"idempotency_key\":\"err-key-09\"}"),
                     401);
    assert_int_equal(req_status(fx->d.http, "GET", "/v1/players/ann/rewards/claim", "", NULL), 405);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(grant_repeated_is_one_item_and_one_event),
        cmocka_unit_test(racing_claims_one_wins),
        cmocka_unit_test(pending_hides_claimed_and_pages),
        cmocka_unit_test(claim_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
