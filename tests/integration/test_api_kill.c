/* tests/integration/test_api_kill.c — a region loses its leader (kill -9) while writes flow
 * through the router of a real `laurel dev --regions na,eu,apac --replicas 3`.
 *
 * Two client threads send ~300 `incr` +1 score writes for players of region eu, each with its
 * own idempotency key, retrying a write with the SAME key on 503, a timeout or a connection
 * error until it is acknowledged (API.md: "retrying it with the same idempotency_key is always
 * safe"). Meanwhile the test kills eu's leader with SIGKILL. `laurel dev` does not restart
 * replicas (cli/cli_dev.c), so eu goes on with two of three: a majority. Afterwards each
 * player's score must equal its number of distinct keys (nothing lost, nothing applied twice),
 * re-sent keys replay without moving a score, and the region has a new leader. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "tests/lib/httpc.h"
#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"

#define NWRITERS 2
#define WRITES_PER_WRITER 150
#define PLAYERS_PER_WRITER 5
#define KILL_AFTER 60 /* acknowledged writes before the kill */
#define WRITE_DEADLINE_MS 30000

struct writer {
    pthread_t th;
    int id;
    int keys[PLAYERS_PER_WRITER]; /* distinct keys acknowledged per player */
    int retries, replayed_acks;
    char error[512]; /* the first unexpected answer, or "" */
};

struct fixture {
    struct tdev dev;
    struct writer w[NWRITERS];
    atomic_int acked;
    atomic_int after_kill; /* set once the leader is dead */
    atomic_int acked_after_kill;
    atomic_int failed; /* a writer gave up */
    int64_t kill_ms, first_ack_after_kill_ms;
};

static struct fixture *fx;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void player_id(char *out, size_t cap, int writer, int k)
{
    snprintf(out, cap, "kill-eu-%d-%d", writer, k);
}

static int retryable(int status)
{
    return status < 0 || status == 503 || status == 502 || status == 504;
}

/* One writer: WRITES_PER_WRITER writes, each retried with its key until acknowledged. */
static void *writer_main(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < WRITES_PER_WRITER && w->error[0] == '\0'; i++) {
        char pid[32], body[160];
        int k = i % PLAYERS_PER_WRITER;
        player_id(pid, sizeof pid, w->id, k);
        snprintf(body, sizeof body,
                 "{\"player_id\":\"%s\",\"score\":1,\"idempotency_key\":\"kill-%d-%05d\"}", pid,
                 w->id, i);
        int64_t start = now_ms();
        for (int attempt = 0;; attempt++) {
            struct httpc_resp r;
            int s =
                httpc_do(fx->dev.http, "POST", "/v1/boards/kill-b/scores", TDEV_API, body, &r) == 0
                    ? r.status
                    : -1;
            if (s >= 200 && s < 300) {
                w->keys[k]++;
                w->replayed_acks += strcasestr(r.headers, "Idempotent-Replayed: true") != NULL;
                atomic_fetch_add(&fx->acked, 1);
                if (atomic_load(&fx->after_kill) &&
                    atomic_fetch_add(&fx->acked_after_kill, 1) == 0) {
                    fx->first_ack_after_kill_ms = now_ms();
                }
                httpc_free(&r);
                break;
            }
            if (!retryable(s) || now_ms() - start > WRITE_DEADLINE_MS) {
                snprintf(w->error, sizeof w->error, "write %d (%s) attempt %d: status %d: %.300s",
                         i, body, attempt, s, s >= 0 && r.body ? r.body : "(no answer)");
                atomic_store(&fx->failed, 1);
                if (s >= 0) {
                    httpc_free(&r);
                }
                break;
            }
            if (s >= 0) {
                httpc_free(&r);
            }
            w->retries++;
            tdev_sleep_ms(20);
        }
    }
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    if (fx == NULL || tdev_start(&fx->dev, "na,eu,apac", 3, 30000) != 0) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tdev_stop(&fx->dev);
    free(fx);
    return 0;
}

/* eu's leader per GET /v1/cluster (admin key) when the router has it, else per the replicas'
 * own status; an index into fx->dev.node. */
static int eu_leader(void)
{
    struct httpc_resp r;
    int idx = -1;
    if (tdev_req(&fx->dev, "GET", "/v1/cluster", TDEV_ADMIN, NULL, &r) == 200) {
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(r.json, "regions"), i, g)
        {
            if (tdev_str(g, "id") && strcmp(tdev_str(g, "id"), "eu") == 0 &&
                json_is_integer(json_object_get(g, "leader"))) {
                idx = tdev_node_index(&fx->dev, "eu", (unsigned)tdev_int(g, "leader"));
            }
        }
    } else {
        fprintf(stderr, "# GET /v1/cluster: %d; asking the replicas\n", r.status);
    }
    httpc_free(&r);
    return idx >= 0 ? idx : tdev_leader(&fx->dev, "eu", 5000);
}

/* Scores of the eu players on kill-b, from the region's top page. */
static void eu_scores(int scores[NWRITERS][PLAYERS_PER_WRITER])
{
    struct httpc_resp r;
    memset(scores, 0, sizeof(int) * NWRITERS * PLAYERS_PER_WRITER);
    assert_int_equal(
        tdev_req(&fx->dev, "GET", "/v1/boards/kill-b/top?scope=region:eu&limit=100", "", NULL, &r),
        200);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(r.json, "entries"), i, e)
    {
        int w, k;
        if (sscanf(tdev_str(e, "player_id"), "kill-eu-%d-%d", &w, &k) == 2 && w >= 0 &&
            w < NWRITERS && k >= 0 && k < PLAYERS_PER_WRITER) {
            scores[w][k] = (int)tdev_int(e, "score");
        }
    }
    httpc_free(&r);
}

/* On a failure, the end of each eu replica's log: who was elected when, what was refused. */
static void dump_eu_logs(void)
{
    for (int i = 1; i <= 3; i++) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "echo '# eu-%d.log:'; tail -n 25 '%s/eu-%d.log' 1>&2", i,
                 fx->dev.dir, i);
        if (system(cmd) != 0) {
            fprintf(stderr, "# (no log for eu-%d)\n", i);
        }
    }
}

/* Kill eu's leader under a stream of idempotent writes: every acknowledged write counts once,
 * and eu elects a new leader that the router follows. */
static void leader_killed_under_writes(void **state)
{
    (void)state;
    char pid[32], path[64];
    assert_int_equal(tdev_status(&fx->dev, "PUT", "/v1/boards/kill-b", TDEV_ADMIN,
                                 "{\"order\":\"desc\",\"operator\":\"incr\"}"),
                     201);
    for (int w = 0; w < NWRITERS; w++) {
        for (int k = 0; k < PLAYERS_PER_WRITER; k++) {
            player_id(pid, sizeof pid, w, k);
            snprintf(path, sizeof path, "/v1/players/%s", pid);
            assert_int_equal(
                tdev_status(&fx->dev, "PUT", path, TDEV_API, "{\"name\":\"K\",\"region\":\"eu\"}"),
                201);
        }
    }
    assert_int_equal(tdev_status(&fx->dev, "PUT", "/v1/players/kill-na", TDEV_API,
                                 "{\"name\":\"K\",\"region\":\"na\"}"),
                     201);
    int old = eu_leader();
    assert_true(old >= 0);

    for (int w = 0; w < NWRITERS; w++) {
        fx->w[w].id = w;
        assert_int_equal(pthread_create(&fx->w[w].th, NULL, writer_main, &fx->w[w]), 0);
    }
    while (atomic_load(&fx->acked) < KILL_AFTER && !atomic_load(&fx->failed)) {
        tdev_sleep_ms(5);
    }
    fprintf(stderr, "# killing eu replica %u (pid %d) after %d acknowledged writes\n",
            fx->dev.node[old].replica, (int)fx->dev.node[old].pid, atomic_load(&fx->acked));
    tdev_kill9(&fx->dev, (unsigned)old);
    fx->kill_ms = now_ms();
    atomic_store(&fx->after_kill, 1);
    int retries = 0, replayed = 0;
    for (int w = 0; w < NWRITERS; w++) {
        pthread_join(fx->w[w].th, NULL);
        if (fx->w[w].error[0]) {
            dump_eu_logs();
            fail_msg("writer %d: %s", w, fx->w[w].error);
        }
        retries += fx->w[w].retries;
        replayed += fx->w[w].replayed_acks;
    }
    fprintf(stderr,
            "# %d writes acknowledged (%d after the kill, first %lld ms after it), %d retries, "
            "%d acknowledged as replays\n",
            atomic_load(&fx->acked), atomic_load(&fx->acked_after_kill),
            (long long)(fx->first_ack_after_kill_ms - fx->kill_ms), retries, replayed);
    assert_int_equal(atomic_load(&fx->acked), NWRITERS * WRITES_PER_WRITER);
    assert_true(atomic_load(&fx->acked_after_kill) > 0);

    /* Nothing lost, nothing twice. */
    int scores[NWRITERS][PLAYERS_PER_WRITER];
    eu_scores(scores);
    for (int w = 0; w < NWRITERS; w++) {
        for (int k = 0; k < PLAYERS_PER_WRITER; k++) {
            if (scores[w][k] != fx->w[w].keys[k]) {
                fail_msg("kill-eu-%d-%d: score %d, %d distinct keys acknowledged", w, k,
                         scores[w][k], fx->w[w].keys[k]);
            }
        }
    }

    /* A new leader, not the dead one, in the replicas' view and the router's. */
    int now = tdev_leader(&fx->dev, "eu", 10000);
    assert_true(now >= 0);
    assert_int_not_equal(now, old);
    assert_int_equal(eu_leader(), now);
    struct httpc_resp r;
    if (tdev_req(&fx->dev, "GET", "/v1/cluster", TDEV_ADMIN, NULL, &r) == 200) {
        size_t i, j;
        json_t *g, *rep;
        json_array_foreach(json_object_get(r.json, "regions"), i, g)
        {
            if (strcmp(tdev_str(g, "id"), "eu") != 0) {
                continue;
            }
            json_array_foreach(json_object_get(g, "replicas"), j, rep)
            {
                if ((unsigned)tdev_int(rep, "id") == fx->dev.node[old].replica) {
                    assert_false(json_is_true(json_object_get(rep, "healthy")));
                }
            }
        }
        httpc_free(&r);
    } else {
        fprintf(stderr, "# GET /v1/cluster: %d (not checked)\n", r.status);
        httpc_free(&r);
    }
    assert_int_equal(tdev_status(&fx->dev, "GET", "/readyz", "", NULL), 200);

    /* Re-sent keys replay their first answers and move nothing. */
    struct testrng rng = {testlib_seed(7)};
    for (int n = 0; n < 30; n++) {
        int w = (int)testrng_below(&rng, NWRITERS), i = (int)testrng_below(&rng, WRITES_PER_WRITER);
        char body[160];
        player_id(pid, sizeof pid, w, i % PLAYERS_PER_WRITER);
        snprintf(body, sizeof body,
                 "{\"player_id\":\"%s\",\"score\":1,\"idempotency_key\":\"kill-%d-%05d\"}", pid, w,
                 i);
        assert_int_equal(tdev_req(&fx->dev, "POST", "/v1/boards/kill-b/scores", TDEV_API, body, &r),
                         200);
        if (strcasestr(r.headers, "Idempotent-Replayed: true") == NULL) {
            fail_msg("re-sent %s: no Idempotent-Replayed header: %s", body, r.body);
        }
        httpc_free(&r);
    }
    int again[NWRITERS][PLAYERS_PER_WRITER];
    eu_scores(again);
    assert_memory_equal(again, scores, sizeof scores);

    /* The region takes new writes from its new leader; other regions were never affected. */
    assert_int_equal(tdev_status(&fx->dev, "POST", "/v1/boards/kill-b/scores", TDEV_API,
                                 "{\"player_id\":\"kill-eu-0-0\",\"score\":1,"
                                 "\"idempotency_key\":\"kill-after-0001\"}"),
                     200);
    assert_int_equal(tdev_status(&fx->dev, "POST", "/v1/boards/kill-b/scores", TDEV_API,
                                 "{\"player_id\":\"kill-na\",\"score\":5,"
                                 "\"idempotency_key\":\"kill-after-0002\"}"),
                     200);
    eu_scores(again);
    assert_int_equal(again[0][0], scores[0][0] + 1);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(leader_killed_under_writes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
