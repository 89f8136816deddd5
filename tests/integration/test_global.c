/* tests/integration/test_global.c — global state through two routers (docs/global-state.md).
 *
 * One `laurel dev --regions na,eu,apac` cluster (its router, the regions and the metadata
 * group) and a second `laurel router` process started by the test on the same replicas, so
 * that concurrent requests really go through two routers:
 * - concurrent creations of one new id naming different regions: exactly one 201, the other
 *   409, and both routers then show the winner's region; naming the same region: one 201 and
 *   one 200;
 * - with every meta replica killed, a creation answers 503 with Retry-After while scores of
 *   existing players, and reads, keep working through a router that has never seen them. */
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"

#define N_RACES 24

static const char *const regions[] = {"na", "eu", "apac"};

struct fixture {
    struct tdev d;
    struct tdev_router r2;
};

static struct fixture *fx;

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    if (fx == NULL || tdev_start(&fx->d, "na,eu,apac", 1, 60000) != 0) {
        return -1;
    }
    return tdev_router_start(&fx->d, &fx->r2);
}

static int teardown(void **state)
{
    (void)state;
    tdev_router_stop(&fx->r2);
    tdev_stop(&fx->d);
    free(fx);
    return 0;
}

struct put_job {
    const char *http;
    char path[128];
    char body[128];
    pthread_barrier_t *go;
    int status;
};

static void *put_thread(void *arg)
{
    struct put_job *j = arg;
    struct httpc_resp r;
    pthread_barrier_wait(j->go);
    j->status = httpc_do(j->http, "PUT", j->path, TDEV_API, j->body, &r) == 0 ? r.status : -1;
    if (j->status >= 0) {
        httpc_free(&r);
    }
    return NULL;
}

/* Two creations of @id at once, one through each router, naming @ra and @rb. */
static void race(const char *id, const char *ra, const char *rb, int *sa, int *sb)
{
    pthread_barrier_t go;
    pthread_t t[2];
    struct put_job j[2];
    const char *http[2] = {fx->d.http, fx->r2.http}, *reg[2] = {ra, rb};
    pthread_barrier_init(&go, NULL, 2);
    for (int k = 0; k < 2; k++) {
        j[k].http = http[k];
        j[k].go = &go;
        snprintf(j[k].path, sizeof j[k].path, "/v1/players/%s", id);
        snprintf(j[k].body, sizeof j[k].body, "{\"name\":\"Racer %d\",\"region\":\"%s\"}", k,
                 reg[k]);
        assert_int_equal(pthread_create(&t[k], NULL, put_thread, &j[k]), 0);
    }
    for (int k = 0; k < 2; k++) {
        pthread_join(t[k], NULL);
    }
    pthread_barrier_destroy(&go);
    *sa = j[0].status;
    *sb = j[1].status;
}

/* The region both routers report for @id. */
static void assert_region_everywhere(const char *id, const char *want)
{
    const char *http[2] = {fx->d.http, fx->r2.http};
    char path[128];
    snprintf(path, sizeof path, "/v1/players/%s", id);
    for (int k = 0; k < 2; k++) {
        struct httpc_resp r;
        assert_int_equal(httpc_do(http[k], "GET", path, "", NULL, &r), 0);
        assert_int_equal(r.status, 200);
        const char *got = tdev_str(r.json, "region");
        if (got == NULL || strcmp(got, want) != 0) {
            fail_msg("%s: router %d says region %s, the creation won in %s", id, k,
                     got ? got : "(none)", want);
        }
        httpc_free(&r);
    }
}

static void creations_race_different_regions(void **state)
{
    (void)state;
    for (int i = 0; i < N_RACES; i++) {
        char id[64];
        const char *ra = regions[i % 3], *rb = regions[(i + 1) % 3];
        int sa, sb;
        snprintf(id, sizeof id, "racer-%d-%d", (int)getpid(), i);
        race(id, ra, rb, &sa, &sb);
        if (!((sa == 201 && sb == 409) || (sa == 409 && sb == 201))) {
            fail_msg(
                "%s: statuses %d (%s via router 1) and %d (%s via router 2): want one 201 "
                "and one 409",
                id, sa, ra, sb, rb);
        }
        assert_region_everywhere(id, sa == 201 ? ra : rb);
    }
}

static void creations_race_same_region(void **state)
{
    (void)state;
    for (int i = 0; i < N_RACES / 2; i++) {
        char id[64];
        int sa, sb;
        snprintf(id, sizeof id, "twin-%d-%d", (int)getpid(), i);
        race(id, regions[i % 3], regions[i % 3], &sa, &sb);
        if (!((sa == 201 && sb == 200) || (sa == 200 && sb == 201))) {
            fail_msg("%s: statuses %d and %d: want one 201 and one 200", id, sa, sb);
        }
        assert_region_everywhere(id, regions[i % 3]);
    }
}

/* The metadata group down: what needs it is 503 with Retry-After, the rest works. */
static void meta_down_scores_still_work(void **state)
{
    (void)state;
    struct httpc_resp r;
    /* A board and a player made while meta is up. */
    assert_int_equal(tdev_status(&fx->d, "PUT", "/v1/boards/meta-down", TDEV_ADMIN,
                                 "{\"order\":\"desc\",\"operator\":\"best\"}") /
                         100,
                     2);
    assert_int_equal(tdev_status(&fx->d, "PUT", "/v1/players/survivor", TDEV_API,
                                 "{\"name\":\"S\",\"region\":\"eu\"}"),
                     201);
    unsigned nmeta = 0;
    for (unsigned i = 0; i < fx->d.nnodes; i++) {
        if (strcmp(fx->d.node[i].region, "meta") == 0) {
            tdev_kill9(&fx->d, i);
            nmeta++;
        }
    }
    assert_true(nmeta > 0);
    tdev_sleep_ms(300);
    assert_int_equal(httpc_do(fx->r2.http, "PUT", "/v1/players/newcomer", TDEV_API,
                              "{\"name\":\"N\",\"region\":\"na\"}", &r),
                     0);
    tdev_assert_error(&r, 503, "unavailable", "creation without meta");
    assert_non_null(strstr(r.headers, "\r\nRetry-After:"));
    httpc_free(&r);
    /* Router 2 has never seen "survivor": it finds it by asking the regions. */
    assert_int_equal(httpc_do(fx->r2.http, "POST", "/v1/boards/meta-down/scores", TDEV_API,
                              "{\"player_id\":\"survivor\",\"score\":42,"
                              "\"idempotency_key\":\"survivor-0001\"}",
                              &r),
                     0);
    assert_int_equal(r.status / 100, 2);
    httpc_free(&r);
    assert_int_equal(httpc_do(fx->r2.http, "GET", "/v1/players/survivor", "", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    httpc_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(creations_race_different_regions),
        cmocka_unit_test(creations_race_same_region),
        cmocka_unit_test(meta_down_scores_still_work),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
