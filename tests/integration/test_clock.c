/* tests/integration/test_clock.c — a leader never stamps below a stamp applied, with real
 * processes and a real clock set back.
 *
 * Three `laurel node` replicas on loopback. One write is stamped by a leader at real time; then
 * a replica restarted under libfaketime, its clock a day behind, becomes leader (transfer) and
 * writes again. The second write's stamp (the score's updated_at, read back from the leader)
 * must not be below the first's: without the guard it lands a day earlier, in a period already
 * over (docs/durability.md, "Time stamps"). And a replica whose clock runs 26 h fast becomes
 * leader: it must stamp with the majority's clock, or idempotency keys written minutes before
 * expire at its stamps and a retried increment counts twice. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/cluster.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

#define T_MS 60000
#define DAY_MS 86400000LL
#define FAKETIME_LIB "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"

struct fixture {
    struct tcluster c;
    unsigned next_key;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Call @op with @args on replica @i until it answers 0, retrying while it is not (yet) a ready
 * leader. The reply's body is copied into @keep and unpacked into @out, whose strings point into
 * @keep: the caller destroys both. */
static void call_until_ok(struct fixture *f, unsigned i, int op, const msgpack_sbuffer *args,
                          msgpack_sbuffer *keep, msgpack_unpacked *out)
{
    for (int attempt = 0; attempt < 300; attempt++) {
        struct client cl;
        struct client_reply r;
        int rv = client_connect(&cl, f->c.r[i].rpc, 500);
        if (rv == 0) {
            rv = client_call(&cl, op, args->data, args->size, &r, 3000);
        }
        if (rv == 0 && r.code == 0) {
            msgpack_packer pk;
            msgpack_packer_init(&pk, keep, msgpack_sbuffer_write);
            msgpack_pack_object(&pk, *r.body);
            client_close(&cl);
            assert_int_equal(msgpack_unpack_next(out, keep->data, keep->size, NULL),
                             MSGPACK_UNPACK_SUCCESS);
            return;
        }
        client_close(&cl);
        sleep_ms(20);
    }
    fail_msg("replica %u never answered op %d", i, op);
}

/* Submit one command to replica @i (which must be or become the leader); expect @status.
 * @return whether its idempotency key replayed a stored answer. */
static int submit1(struct fixture *f, unsigned i, struct cmd c, int status)
{
    msgpack_sbuffer sb, keep;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_sbuffer_init(&keep);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    assert_int_equal(cmd_encode(&pk, &c), 0);
    msgpack_unpacked_init(&up);
    call_until_ok(f, i, PROTO_OP_SUBMIT, &sb, &keep, &up);
    const msgpack_object *res = proto_map_get(&up.data, "results");
    assert_non_null(res);
    assert_int_equal(res->via.array.ptr[0].via.array.ptr[0].via.u64, status);
    const msgpack_object *replayed = &res->via.array.ptr[0].via.array.ptr[1];
    assert_int_equal(replayed->type, MSGPACK_OBJECT_BOOLEAN);
    int was = replayed->via.boolean;
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&keep);
    return was;
}

/* One increment of ann's score through replica @i, with a fresh idempotency key. */
static void write_incr(struct fixture *f, unsigned i)
{
    char key[32];
    snprintf(key, sizeof key, "clock-%08u", f->next_key++);
    submit1(f, i, ts_score(0, "arena", "ann", 1, 0, key), 200);
}

/* ann's score and updated_at, read from leader @i (a leader read: it sees every acknowledged
 * write). */
static void rank_of(struct fixture *f, unsigned i, int64_t *score, int64_t *updated)
{
    struct shard_query q = {.type = SHARD_Q_RANK, .board_id = ts_s("arena")};
    q.player_id = ts_s("ann");
    msgpack_sbuffer sb, keep;
    msgpack_packer pk;
    msgpack_unpacked up;
    msgpack_sbuffer_init(&keep);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_query_encode(&pk, &q, 0);
    msgpack_unpacked_init(&up);
    call_until_ok(f, i, PROTO_OP_QUERY, &sb, &keep, &up);
    const msgpack_object *t = proto_map_get(&up.data, "updated_at");
    assert_non_null(t);
    assert_int_equal(t->type, MSGPACK_OBJECT_STR);
    assert_int_equal(timefmt_parse_rfc3339(t->via.str.ptr, t->via.str.size, updated), 0);
    assert_int_equal(proto_obj_i64(proto_map_get(&up.data, "score"), score), 0);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&keep);
}

static int64_t updated_ms(struct fixture *f, unsigned i)
{
    int64_t score, ms;
    rank_of(f, i, &score, &ms);
    return ms;
}

/* Replica @i's clock as its log shows it: the time stamp that opens the log's last line. The
 * logger reads gettimeofday; libfaketime moves it and clock_gettime(CLOCK_REALTIME) alike. */
static int64_t log_clock_ms(const struct fixture *f, unsigned i)
{
    char line[1024], last[1024] = "";
    FILE *fp = fopen(f->c.r[i].log, "r");
    assert_non_null(fp);
    while (fgets(line, sizeof line, fp)) {
        if (line[0] >= '0' && line[0] <= '9') {
            memcpy(last, line, sizeof last);
        }
    }
    fclose(fp);
    char stamp[32];
    assert_true(strlen(last) > 19);
    snprintf(stamp, sizeof stamp, "%.19sZ", last);
    int64_t ms;
    assert_int_equal(timefmt_parse_rfc3339(stamp, strlen(stamp), &ms), 0);
    return ms;
}

/* Restart replica @i with its clock moved by @faketime ("-1d", "+26h": libfaketime; monotonic
 * time left alone, so raft's timers run as usual). */
static void restart_skewed(struct fixture *f, unsigned i, const char *faketime)
{
    char asan[600], *was = getenv("ASAN_OPTIONS");
    char saved[512];
    snprintf(saved, sizeof saved, "%s", was ? was : "");
    tcluster_kill(&f->c, i, SIGTERM);
    setenv("LD_PRELOAD", FAKETIME_LIB, 1);
    setenv("FAKETIME", faketime, 1);
    setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
    /* In a sanitizer build, ASan refuses to start when another library is loaded before its
     * runtime; libfaketime must be, so that check is turned off for this one process. */
    snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", saved, saved[0] ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
    assert_int_equal(tcluster_spawn(&f->c, i), 0);
    unsetenv("LD_PRELOAD");
    unsetenv("FAKETIME");
    unsetenv("FAKETIME_DONT_FAKE_MONOTONIC");
    if (was != NULL) {
        setenv("ASAN_OPTIONS", saved, 1);
    } else {
        unsetenv("ASAN_OPTIONS");
    }
}

static void transfer_to(struct fixture *f, unsigned to)
{
    int l = tcluster_leader(&f->c, T_MS);
    assert_true(l >= 0);
    if ((unsigned)l != to) {
        msgpack_sbuffer sb, keep;
        msgpack_packer pk;
        msgpack_unpacked up;
        msgpack_sbuffer_init(&keep);
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 1);
        proto_pack_key(&pk, "id");
        msgpack_pack_uint64(&pk, f->c.r[to].id);
        msgpack_unpacked_init(&up);
        call_until_ok(f, (unsigned)l, PROTO_OP_TRANSFER, &sb, &keep, &up);
        msgpack_unpacked_destroy(&up);
        msgpack_sbuffer_destroy(&sb);
        msgpack_sbuffer_destroy(&keep);
    }
    int now = -1;
    for (int k = 0; k < 250 && now != (int)to; k++) {
        now = tcluster_leader(&f->c, T_MS);
        sleep_ms(20);
    }
    assert_int_equal(now, (int)to);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_int_equal(tcluster_start(&f->c, 3, "eu"), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tcluster_stop(&f->c);
    free(f);
    return 0;
}

/* A leader whose clock is a day behind stamps its write no lower than the write before it. */
static void slow_leader_stamps_no_lower(void **state)
{
    struct fixture *f = *state;
    int l = tcluster_leader(&f->c, T_MS);
    assert_true(l >= 0);
    submit1(f, (unsigned)l, ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0), 201);
    submit1(f, (unsigned)l, ts_player(0, "ann", "eu", ""), 201);
    write_incr(f, (unsigned)l);
    int64_t first = updated_ms(f, (unsigned)l), real = now_ms();
    assert_true(first <= real && first > real - 60000); /* stamped at real time */

    unsigned slow = (unsigned)(l + 1) % 3;
    restart_skewed(f, slow, "-1d");
    uint64_t applied, digest;
    assert_int_equal(tcluster_converged(&f->c, T_MS, &applied, &digest), 0);
    /* The measurement that libfaketime reaches the node: its log runs a day behind. */
    int64_t skew = now_ms() - log_clock_ms(f, slow);
    assert_true(skew > DAY_MS - 120000 && skew < DAY_MS + 120000);

    transfer_to(f, slow);
    write_incr(f, slow);
    int64_t second = updated_ms(f, slow);
    assert_true(second >= first);
    assert_true(second < first + 60000); /* raised to the applied clock, not beyond */
}

/* Replica @i's STATUS field @key (an integer). */
static int64_t status_i64(struct fixture *f, unsigned i, const char *key)
{
    msgpack_sbuffer nil, keep;
    msgpack_unpacked up;
    int64_t v;
    msgpack_sbuffer_init(&nil);
    msgpack_sbuffer_init(&keep);
    msgpack_sbuffer_write(&nil, "\xc0", 1);
    msgpack_unpacked_init(&up);
    call_until_ok(f, i, PROTO_OP_STATUS, &nil, &keep, &up);
    assert_int_equal(proto_obj_i64(proto_map_get(&up.data, key), &v), 0);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&nil);
    msgpack_sbuffer_destroy(&keep);
    return v;
}

/* A leader whose clock runs 26 h fast (past the 25 h idempotency window) stamps with the
 * majority's clock: a key written minutes before is still live at its stamps, so retrying it
 * replays the stored answer instead of counting the increment twice. */
static void fast_leader_keeps_keys_alive(void **state)
{
    struct fixture *f = *state;
    int l = tcluster_leader(&f->c, T_MS);
    assert_true(l >= 0);
    submit1(f, (unsigned)l, ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0), 201);
    submit1(f, (unsigned)l, ts_player(0, "ann", "eu", ""), 201);
    struct cmd k = ts_score(0, "arena", "ann", 1, 0, "retry-key-0001");
    assert_false(submit1(f, (unsigned)l, k, 200));

    unsigned fast = (unsigned)(l + 1) % 3;
    restart_skewed(f, fast, "+26h");
    uint64_t applied, digest;
    assert_int_equal(tcluster_converged(&f->c, T_MS, &applied, &digest), 0);
    int64_t skew = log_clock_ms(f, fast) - now_ms();
    assert_true(skew > 26 * 3600000LL - 120000 && skew < 26 * 3600000LL + 120000);

    transfer_to(f, fast);
    for (int w = 0; w < 3; w++) {
        write_incr(f, fast); /* each entry purges expired keys at the new leader's stamp */
    }
    int64_t score, updated;
    rank_of(f, fast, &score, &updated);
    assert_int_equal(score, 4);
    assert_true(updated < now_ms() + 5000); /* the majority's time, not the leader's */

    assert_true(submit1(f, fast, k, 200)); /* replayed */
    rank_of(f, fast, &score, &updated);
    assert_int_equal(score, 4);

    /* The leader said so: a warning each tick, counted in its status. */
    int64_t skewed = 0;
    for (int t = 0; t < 50 && skewed == 0; t++) {
        skewed = status_i64(f, fast, "clock_skewed");
        sleep_ms(100);
    }
    assert_true(skewed > 0);
    int64_t offset = status_i64(f, fast, "clock_offset_ms");
    assert_true(offset < -26 * 3600000LL + 120000 && offset > -26 * 3600000LL - 120000);
}

int main(void)
{
    if (access(FAKETIME_LIB, R_OK) != 0) {
        fprintf(stderr, "test_clock needs libfaketime (%s): apt-get install faketime\n",
                FAKETIME_LIB);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(slow_leader_stamps_no_lower, setup, teardown),
        cmocka_unit_test_setup_teardown(fast_leader_keeps_keys_alive, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
