/* tests/integration/test_cycles.c — cycle closes through the public API (API.md, "Cycles";
 * docs/global-state.md, "Cycle closes").
 *
 * One `laurel dev --regions na,eu,apac --replicas 3` cluster, with its metadata group, and a
 * second router process. A board with a 60-second cycle gets scores from 30 players spread
 * over the three regions (ties on purpose). At the cycle's end:
 * - first, the second router is killed with SIGKILL while both routers' closers race to close
 *   the cycle;
 * - next cycle, the metadata group's leader is killed at the boundary.
 * Each time: the close record appears once, its entries are the exact global top of the cycle
 * (the model's scores, in order, and the same page as GET top?window=cycle&period=n), its
 * rewards follow the board's bands, every rewarded player holds the reward once (through both
 * routers), and over the WebSocket cycle.closed and reward.granted arrive once each. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"

#define PERIOD_S 60
#define N_PLAYERS 30
#define TOP 10

static const char *const regions[] = {"na", "eu", "apac"};

struct fixture {
    struct tdev d;
    struct tdev_router r2;
    long long best[N_PLAYERS]; /* the model: each player's best score this cycle */
    unsigned keys;
    unsigned seed;
};

static struct fixture *fx;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_until_ms(int64_t t)
{
    int64_t d = t - now_ms();
    if (d > 0) {
        tdev_sleep_ms((int)d);
    }
}

static int setup(void **state)
{
    (void)state;
    char path[64], body[96];
    fx = calloc(1, sizeof *fx);
    if (fx == NULL || tdev_start(&fx->d, "na,eu,apac", 3, 120000) != 0 ||
        tdev_router_start(&fx->d, &fx->r2) != 0) {
        return -1;
    }
    fx->seed = (unsigned)testlib_seed(4242);
    if (tdev_status(&fx->d, "PUT", "/v1/boards/race", TDEV_ADMIN,
                    "{\"order\":\"desc\",\"operator\":\"best\",\"windows\":[\"alltime\"],"
                    "\"reset_period_s\":60,\"snapshot_top\":10,\"rewards\":["
                    "{\"rank_from\":1,\"rank_to\":1,\"reward\":\"gold\"},"
                    "{\"rank_from\":2,\"rank_to\":3,\"reward\":\"silver\"},"
                    "{\"rank_from\":4,\"rank_to\":10,\"reward\":\"bronze\"}]}") != 201) {
        return -1;
    }
    for (int i = 0; i < N_PLAYERS; i++) {
        snprintf(path, sizeof path, "/v1/players/cy%02d", i);
        snprintf(body, sizeof body, "{\"name\":\"Cy %d\",\"region\":\"%s\"}", i, regions[i % 3]);
        if (tdev_status(&fx->d, "PUT", path, TDEV_API, body) != 201) {
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

/* The next cycle with at least 25 s left: its number, after waiting for it if needed. */
static int64_t cycle_with_room(void)
{
    int64_t t = now_ms(), n = t / 1000 / PERIOD_S;
    if ((n + 1) * PERIOD_S * 1000 - t < 25000) {
        n++;
        sleep_until_ms(n * PERIOD_S * 1000 + 500);
    }
    return n;
}

/* Scores for every player, some twice, values drawn from a small range so ties happen. */
static void post_scores(void)
{
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N_PLAYERS; i++) {
            if (round == 1 && rand_r(&fx->seed) % 2) {
                continue;
            }
            long long s = rand_r(&fx->seed) % 40;
            char body[192];
            snprintf(body, sizeof body,
                     "{\"player_id\":\"cy%02d\",\"score\":%lld,\"idempotency_key\":\"cyk-%06u\"}",
                     i, s, fx->keys++);
            const char *http = i % 2 ? fx->d.http : fx->r2.http;
            struct httpc_resp r;
            assert_int_equal(httpc_do(http, "POST", "/v1/boards/race/scores", TDEV_API, body, &r),
                             0);
            assert_int_equal(r.status / 100, 2);
            httpc_free(&r);
            fx->best[i] = round == 0 || s > fx->best[i] ? s : fx->best[i];
        }
    }
}

static int cmp_desc(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* A WebSocket listener on router 1 for the board and every player, for @seconds. */
static FILE *listen_all(int seconds)
{
    char cmd[4096];
    int len =
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/python3 %s/tests/ws_client.py listen ws://%s/v1/ws %d 10000 board:race",
                 LAUREL_SRC, fx->d.http, seconds);
    for (int i = 0; i < N_PLAYERS; i++) {
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, " player:cy%02d", i);
    }
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char buf[256];
    assert_non_null(fgets(buf, sizeof buf, f)); /* {"ready": true} */
    assert_non_null(strstr(buf, "ready"));
    return f;
}

/* Read @f to its end: the count of cycle.closed for @cycle, and of reward.granted for @cycle
 * per player. */
static void count_events(FILE *f, int64_t cycle, int *closed, int granted[N_PLAYERS])
{
    static char buf[1 << 17];
    *closed = 0;
    memset(granted, 0, N_PLAYERS * sizeof *granted);
    while (fgets(buf, sizeof buf, f)) {
        json_t *m = json_loads(buf, 0, NULL);
        const char *type = tdev_str(m, "type");
        if (type && tdev_int(m, "cycle") == cycle) {
            if (strcmp(type, "cycle.closed") == 0) {
                (*closed)++;
            } else if (strcmp(type, "reward.granted") == 0) {
                const char *p = tdev_str(m, "player_id");
                int i = p && strncmp(p, "cy", 2) == 0 ? atoi(p + 2) : -1;
                if (i >= 0 && i < N_PLAYERS) {
                    granted[i]++;
                }
            }
        }
        json_decref(m);
    }
    pclose(f);
}

static const char *band_of(long long rank)
{
    return rank == 1 ? "gold" : rank <= 3 ? "silver" : "bronze";
}

/* Everything the close of @cycle must show, through both routers. */
static void check_close(int64_t cycle, int64_t boundary, FILE *events)
{
    char path[128];
    struct httpc_resp r, top;
    int64_t t0 = now_ms();
    int st = 0;
    snprintf(path, sizeof path, "/v1/boards/race/cycles/%lld", (long long)cycle);
    while ((st = tdev_req(&fx->d, "GET", path, "", NULL, &r)) == 404 && now_ms() - t0 < 30000) {
        httpc_free(&r);
        tdev_sleep_ms(25);
    }
    assert_int_equal(st, 200);
    printf("# cycle %lld closed and readable %lld ms after its end\n", (long long)cycle,
           (long long)(now_ms() - boundary));
    assert_int_equal(tdev_int(r.json, "cycle"), cycle);
    assert_true(tdev_is_time(tdev_str(r.json, "closed_at")));
    json_t *entries = json_object_get(r.json, "entries"),
           *rewards = json_object_get(r.json, "rewards");
    assert_int_equal(json_array_size(entries), TOP);
    assert_int_equal(json_array_size(rewards), TOP);
    /* The model's scores, in order. */
    long long want[N_PLAYERS];
    memcpy(want, fx->best, sizeof want);
    qsort(want, N_PLAYERS, sizeof want[0], cmp_desc);
    /* The same page as the frozen cycle's top, through the other router. */
    snprintf(path, sizeof path, "/v1/boards/race/top?window=cycle&period=%lld&limit=%d",
             (long long)cycle, TOP);
    assert_int_equal(httpc_do(fx->r2.http, "GET", path, "", NULL, &top), 0);
    assert_int_equal(top.status, 200);
    json_t *tops = json_object_get(top.json, "entries");
    assert_int_equal(json_array_size(tops), TOP);
    for (size_t k = 0; k < TOP; k++) {
        json_t *e = json_array_get(entries, k), *t = json_array_get(tops, k);
        json_t *w = json_array_get(rewards, k);
        assert_int_equal(tdev_int(e, "rank"), (int64_t)k + 1);
        if (tdev_int(e, "score") != want[k]) {
            fail_msg("entry %zu: score %lld, the model's %lld", k, (long long)tdev_int(e, "score"),
                     want[k]);
        }
        assert_string_equal(tdev_str(e, "player_id"), tdev_str(t, "player_id"));
        assert_int_equal(tdev_int(e, "score"), tdev_int(t, "score"));
        assert_string_equal(tdev_str(w, "player_id"), tdev_str(e, "player_id"));
        assert_int_equal(tdev_int(w, "rank"), (int64_t)k + 1);
        assert_string_equal(tdev_str(w, "reward"), band_of((long long)k + 1));
    }
    /* Each rewarded player holds the reward once, seen through either router. */
    int rewarded[N_PLAYERS] = {0};
    for (size_t k = 0; k < TOP; k++) {
        const char *pid = tdev_str(json_array_get(rewards, k), "player_id");
        rewarded[atoi(pid + 2)] = 1;
        const char *http[2] = {fx->d.http, fx->r2.http};
        for (int h = 0; h < 2; h++) {
            struct httpc_resp g;
            char rp[96];
            snprintf(rp, sizeof rp, "/v1/players/%s/rewards", pid);
            assert_int_equal(httpc_do(http[h], "GET", rp, "", NULL, &g), 0);
            assert_int_equal(g.status, 200);
            size_t i, n = 0;
            json_t *it;
            json_array_foreach(json_object_get(g.json, "items"), i, it)
            {
                if (tdev_int(it, "cycle") == cycle &&
                    strcmp(tdev_str(it, "board_id"), "race") == 0) {
                    n++;
                    assert_string_equal(tdev_str(it, "reward"), band_of((long long)k + 1));
                }
            }
            if (n != 1) {
                fail_msg("%s holds %zu rewards of cycle %lld", pid, n, (long long)cycle);
            }
            httpc_free(&g);
        }
    }
    /* Events: once each. */
    int closed, granted[N_PLAYERS];
    count_events(events, cycle, &closed, granted);
    assert_int_equal(closed, 1);
    for (int i = 0; i < N_PLAYERS; i++) {
        if (granted[i] != rewarded[i]) {
            fail_msg("cy%02d got %d reward.granted of cycle %lld, want %d", i, granted[i],
                     (long long)cycle, rewarded[i]);
        }
    }
    httpc_free(&top);
    httpc_free(&r);
}

/* Both routers close; the second is killed right after the cycle's end. */
static void close_once_with_a_router_killed(void **state)
{
    (void)state;
    int64_t n = cycle_with_room(), boundary = (n + 1) * PERIOD_S * 1000;
    post_scores();
    FILE *events = listen_all((int)((boundary - now_ms()) / 1000) + 25);
    sleep_until_ms(boundary + 40);
    kill(fx->r2.pid, SIGKILL);
    tdev_router_stop(&fx->r2); /* reaps it */
    assert_int_equal(tdev_router_start(&fx->d, &fx->r2), 0);
    check_close(n, boundary, events);
}

/* The metadata group's leader is killed right at the cycle's end. */
static void close_once_with_meta_leader_killed(void **state)
{
    (void)state;
    int64_t n = cycle_with_room(), boundary = (n + 1) * PERIOD_S * 1000;
    post_scores();
    FILE *events = listen_all((int)((boundary - now_ms()) / 1000) + 25);
    int leader = tdev_leader(&fx->d, "meta", 10000);
    assert_true(leader >= 0);
    sleep_until_ms(boundary + 20);
    tdev_kill9(&fx->d, (unsigned)leader);
    check_close(n, boundary, events);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(close_once_with_a_router_killed),
        cmocka_unit_test(close_once_with_meta_leader_killed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
