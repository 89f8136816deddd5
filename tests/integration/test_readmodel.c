/* tests/integration/test_readmodel.c — the router's read model (router/rmodel.c,
 * docs/consistency.md) through the public API, with real processes.
 *
 * One `laurel dev --regions na,eu --replicas 3` cluster and a second `laurel router` started
 * by the test. Writes go through one router and reads through the other, each request on a
 * connection of its own:
 * - a read sent after a write's 2xx always shows the write (rank and top), and the second
 *   router's /metrics show the reads were answered by its read model after a ReadIndex wait;
 * - paged tops with cursors, read from the model, equal a reference model of the writes;
 * - with the replica a stream follows SIGKILLed, the stream moves and reads still see every
 *   write; a restarted router seeds again and answers the same;
 * - reads of boards that do not exist take none of the router's 64 held-board slots;
 * - consistency=stale answers, as a parameter or the Laurel-Consistency header; an unknown
 *   consistency is 400. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"

#define NPLAYERS 24
#define BOARD "rm"

struct fixture {
    struct tdev d;
    struct tdev_router r2;
    int64_t score[NPLAYERS]; /* the reference: each player's last score (operator set) */
    int64_t seq;
};

static struct fixture *fx;

static const char *region_of(int i)
{
    return i % 2 ? "eu" : "na";
}

static json_t *get_json(const char *http, const char *path, int want)
{
    struct httpc_resp r;
    assert_int_equal(httpc_do(http, "GET", path, "", NULL, &r), 0);
    if (r.status != want) {
        fprintf(stderr, "GET %s: %d %s\n", path, r.status, r.body ? r.body : "");
    }
    assert_int_equal(r.status, want);
    json_t *j = json_loads(r.body, 0, NULL);
    httpc_free(&r);
    assert_non_null(j);
    return j;
}

/* A metric of router @http's /metrics. */
static int64_t metric(const char *http, const char *name)
{
    struct httpc_resp r;
    char pat[128];
    assert_int_equal(httpc_do(http, "GET", "/metrics", "", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *p = strstr(r.body, pat);
    int64_t v = p ? strtoll(p + strlen(pat), NULL, 10) : -1;
    httpc_free(&r);
    return v;
}

static void put_score(const char *http, int i, int64_t score)
{
    char path[64], body[256];
    struct httpc_resp r;
    snprintf(path, sizeof path, "/v1/boards/%s/scores", BOARD);
    snprintf(body, sizeof body,
             "{\"player_id\":\"p%02d\",\"score\":%lld,\"idempotency_key\":\"rm-key-%08lld\"}", i,
             (long long)score, (long long)++fx->seq);
    assert_int_equal(httpc_do(http, "POST", path, TDEV_API, body, &r), 0);
    if (r.status != 200) {
        fprintf(stderr, "score: %d %s\n", r.status, r.body ? r.body : "");
    }
    assert_int_equal(r.status, 200);
    httpc_free(&r);
    fx->score[i] = score;
}

static int setup(void **state)
{
    (void)state;
    char path[64], body[128];
    fx = calloc(1, sizeof *fx);
    if (fx == NULL || tdev_start(&fx->d, "na,eu", 3, 60000) != 0 ||
        tdev_router_start(&fx->d, &fx->r2) != 0) {
        return -1;
    }
    if (tdev_status(&fx->d, "PUT", "/v1/boards/" BOARD, TDEV_ADMIN,
                    "{\"order\":\"desc\",\"operator\":\"set\"}") /
            100 !=
        2) {
        return -1;
    }
    for (int i = 0; i < NPLAYERS; i++) {
        snprintf(path, sizeof path, "/v1/players/p%02d", i);
        snprintf(body, sizeof body, "{\"name\":\"Player %d\",\"region\":\"%s\"}", i, region_of(i));
        if (tdev_status(&fx->d, "PUT", path, TDEV_API, body) / 100 != 2) {
            return -1;
        }
    }
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

/* Every write, then at once a read through the other router: it shows the write. */
static void writes_then_reads(int rounds, int first)
{
    const char *http[2] = {fx->d.http, fx->r2.http};
    for (int k = 0; k < rounds; k++) {
        int i = (k * 7 + first) % NPLAYERS, w = k % 2;
        int64_t score = 1000000 - (++fx->seq) * 10 - i; /* distinct, so the order is known */
        char path[96];
        put_score(http[w], i, score);
        snprintf(path, sizeof path, "/v1/boards/%s/players/p%02d?around=2", BOARD, i);
        json_t *j = get_json(http[!w], path, 200);
        assert_int_equal(tdev_int(j, "score"), score);
        json_decref(j);
        if (k % 4 == 0) {
            /* The new score is the lowest yet: last on the page. */
            j = get_json(http[!w], "/v1/boards/" BOARD "/top?limit=100", 200);
            json_t *es = json_object_get(j, "entries");
            json_t *found = NULL, *e;
            size_t n;
            json_array_foreach(es, n, e)
            {
                char id[8];
                snprintf(id, sizeof id, "p%02d", i);
                if (strcmp(tdev_str(e, "player_id"), id) == 0) {
                    found = e;
                }
            }
            assert_non_null(found);
            assert_int_equal(tdev_int(found, "score"), score);
            json_decref(j);
        }
    }
}

/* The reference order: scores descending (all distinct). */
static int by_score(const void *a, const void *b)
{
    int64_t x = fx->score[*(const int *)a], y = fx->score[*(const int *)b];
    return x > y ? -1 : x < y;
}

/* Page through the top of @http with @limit and compare with the reference. */
static void top_equals_reference(const char *http, int limit)
{
    int order[NPLAYERS], n = 0, got = 0;
    char cursor[256] = "", path[512];
    for (int i = 0; i < NPLAYERS; i++) {
        if (fx->score[i] != 0) {
            order[n++] = i;
        }
    }
    qsort(order, (size_t)n, sizeof order[0], by_score);
    for (;;) {
        snprintf(path, sizeof path, "/v1/boards/%s/top?limit=%d%s%s", BOARD, limit,
                 cursor[0] ? "&cursor=" : "", cursor);
        json_t *j = get_json(http, path, 200);
        json_t *es = json_object_get(j, "entries"), *e;
        size_t k;
        assert_int_equal(tdev_int(j, "total"), n);
        json_array_foreach(es, k, e)
        {
            char id[8];
            snprintf(id, sizeof id, "p%02d", order[got]);
            assert_true(got < n);
            assert_string_equal(tdev_str(e, "player_id"), id);
            assert_int_equal(tdev_int(e, "score"), fx->score[order[got]]);
            assert_int_equal(tdev_int(e, "rank"), got + 1);
            snprintf(id, sizeof id, "%d", order[got]);
            assert_non_null(strstr(tdev_str(e, "name"), id));
            assert_string_equal(tdev_str(e, "region"), region_of(order[got]));
            got++;
        }
        const char *next = tdev_str(j, "next_cursor");
        if (next == NULL) {
            json_decref(j);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", next);
        json_decref(j);
    }
    assert_int_equal(got, n);
}

static void read_after_write_through_the_model(void **state)
{
    (void)state;
    /* The first read starts the seed; reads fall back to the regions until it is done. */
    writes_then_reads(4, 0);
    for (int t = 0; t < 100 && metric(fx->r2.http, "laurel_readmodel_boards") < 1; t++) {
        tdev_sleep_ms(50);
    }
    assert_int_equal(metric(fx->r2.http, "laurel_readmodel_boards"), 1);
    int64_t waits = metric(fx->r2.http, "laurel_readmodel_waits_total");
    writes_then_reads(60, 1);
    /* At least every read through the second router waited for a ReadIndex round. */
    assert_true(metric(fx->r2.http, "laurel_readmodel_waits_total") >= waits + 30);
    top_equals_reference(fx->r2.http, 7);
    top_equals_reference(fx->d.http, 100);
}

static void stale_and_bad_consistency(void **state)
{
    (void)state;
    json_t *j = get_json(fx->r2.http, "/v1/boards/" BOARD "/top?consistency=stale", 200);
    assert_non_null(json_object_get(j, "entries"));
    json_decref(j);
    j = get_json(fx->r2.http, "/v1/boards/" BOARD "/top?consistency=sometimes", 400);
    json_decref(j);
    /* The header says the same. */
    char req[256], buf[4096];
    snprintf(req, sizeof req,
             "GET /v1/boards/" BOARD
             "/top?limit=1 HTTP/1.1\r\nHost: x\r\n"
             "Laurel-Consistency: stale\r\nConnection: close\r\n\r\n");
    long n = httpc_raw(fx->r2.http, req, strlen(req), buf, sizeof buf - 1, 3000);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    snprintf(req, sizeof req,
             "GET /v1/boards/" BOARD
             "/top?limit=1 HTTP/1.1\r\nHost: x\r\n"
             "Laurel-Consistency: eventually\r\nConnection: close\r\n\r\n");
    n = httpc_raw(fx->r2.http, req, strlen(req), buf, sizeof buf - 1, 3000);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 400"));
}

static void stream_moves_and_router_restarts(void **state)
{
    (void)state;
    /* Both routers' streams start on each region's first replica. */
    for (unsigned k = 0; k < 2; k++) {
        int i = tdev_node_index(&fx->d, k ? "eu" : "na", 1);
        assert_true(i >= 0);
        tdev_kill9(&fx->d, (unsigned)i);
    }
    assert_true(tdev_leader(&fx->d, "na", 20000) >= 0);
    assert_true(tdev_leader(&fx->d, "eu", 20000) >= 0);
    writes_then_reads(20, 3);
    top_equals_reference(fx->r2.http, 5);
    tdev_router_stop(&fx->r2);
    assert_int_equal(tdev_router_start(&fx->d, &fx->r2), 0);
    writes_then_reads(8, 5);
    for (int t = 0; t < 100 && metric(fx->r2.http, "laurel_readmodel_boards") < 1; t++) {
        tdev_sleep_ms(50);
    }
    assert_int_equal(metric(fx->r2.http, "laurel_readmodel_boards"), 1);
    top_equals_reference(fx->r2.http, 9);
}

/* Reads of boards that do not exist answer 404 and leave no slot taken: a real board read
 * after 70 of them (more than the 64 a router holds) is still held. */
static void unknown_boards_take_no_slot(void **state)
{
    (void)state;
    char path[96];
    for (int i = 0; i < 70; i++) {
        snprintf(path, sizeof path, "/v1/boards/nope-%d/top", i);
        json_decref(get_json(fx->r2.http, path, 404));
    }
    tdev_sleep_ms(500);
    assert_int_equal(tdev_status(&fx->d, "PUT", "/v1/boards/rm2", TDEV_ADMIN,
                                 "{\"order\":\"asc\",\"operator\":\"set\"}") /
                         100,
                     2);
    int64_t boards = metric(fx->r2.http, "laurel_readmodel_boards");
    for (int t = 0; t < 100 && metric(fx->r2.http, "laurel_readmodel_boards") == boards; t++) {
        json_decref(get_json(fx->r2.http, "/v1/boards/rm2/top", 200));
        tdev_sleep_ms(50);
    }
    assert_int_equal(metric(fx->r2.http, "laurel_readmodel_boards"), boards + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(read_after_write_through_the_model),
        cmocka_unit_test(stale_and_bad_consistency),
        cmocka_unit_test(stream_moves_and_router_restarts),
        cmocka_unit_test(unknown_boards_take_no_slot),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
