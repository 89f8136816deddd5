/* tests/integration/test_snapshot.c — snapshots between real `laurel node` processes: a follower
 * that falls behind the log the leader keeps installs a snapshot, and the committed-event stream
 * it serves must not lose an event to that (node/node_sub.c, raft/fsm.c's restore).
 *
 * The replicas snapshot every SNAP_EVERY entries and keep SNAP_TRAILING behind each, so a
 * follower stopped (SIGSTOP) through N_BEHIND writes, one entry each, comes back to a log that
 * starts after what it holds: it is sent the leader's snapshot. Each scenario checks that one
 * was installed (the follower's LMDB file is replaced, raft/fsm.c), or fails saying so. */
#include <fcntl.h>
#include <signal.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/cluster.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

#define T_MS 60000
#define SNAP_EVERY 32
#define SNAP_TRAILING 8
#define N_BEHIND 400
#define MAX_WRITES 2048

struct fixture {
    struct tcluster c;
    int leader;
    unsigned next_key;
    uint64_t acked[MAX_WRITES]; /* the raft index of each acknowledged score, in order */
    unsigned nacked;
};

static struct fixture *fx;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Submit @c to the leader, retrying until acknowledged; @return its status, *@index its entry. */
static int submit1(struct cmd c, uint64_t *index)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    assert_int_equal(cmd_encode(&pk, &c), 0);
    for (int attempt = 0; attempt < 400; attempt++) {
        int l = fx->leader >= 0 ? fx->leader : tcluster_leader(&fx->c, 5000);
        struct client cl;
        struct client_reply r;
        if (l < 0) {
            continue;
        }
        int rv = client_connect(&cl, fx->c.r[l].rpc, 500);
        if (rv == 0) {
            rv = client_call(&cl, PROTO_OP_SUBMIT, sb.data, sb.size, &r, 3000);
        }
        if (rv == 0 && r.code == 0) {
            const msgpack_object *res = proto_map_get(r.body, "results");
            int status = (int)res->via.array.ptr[0].via.array.ptr[0].via.u64;
            *index = proto_map_get(r.body, "index")->via.u64;
            client_close(&cl);
            msgpack_sbuffer_destroy(&sb);
            return status;
        }
        client_close(&cl);
        fx->leader = -1;
        sleep_ms(20);
    }
    fail_msg("submit: no leader acknowledged the write");
    return -1;
}

/* One score with a fresh idempotency key; its index joins fx->acked. */
static void write_score(void)
{
    char key[32];
    uint64_t index;
    assert_true(fx->nacked < MAX_WRITES);
    snprintf(key, sizeof key, "snap-%07u", fx->next_key++);
    assert_int_equal(submit1(ts_score(0, "arena", "p1", 1, 0, key), &index), 200);
    fx->acked[fx->nacked++] = index;
}

static int setup(void **state)
{
    (void)state;
    uint64_t index;
    fx = calloc(1, sizeof *fx);
    assert_int_equal(tcluster_start_snapshots(&fx->c, 3, "eu", SNAP_EVERY, SNAP_TRAILING), 0);
    fx->leader = tcluster_leader(&fx->c, T_MS);
    assert_true(fx->leader >= 0);
    assert_int_equal(submit1(ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0), &index), 201);
    assert_int_equal(submit1(ts_player(0, "p1", "eu", ""), &index), 201);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tcluster_stop(&fx->c);
    free(fx);
    return 0;
}

/* Open a subscription from @from on replica @i, on @cl. */
static void subscribe_open(unsigned i, uint64_t from, struct client *cl)
{
    uint64_t id;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    proto_pack_key(&pk, "from");
    msgpack_pack_uint64(&pk, from);
    assert_int_equal(client_connect(cl, fx->c.r[i].rpc, 1000), 0);
    assert_int_equal(client_send(cl, PROTO_OP_SUBSCRIBE, sb.data, sb.size, &id), 0);
    msgpack_sbuffer_destroy(&sb);
}

/* What a subscription delivered until a heartbeat reached @until (or it ended). */
struct stream {
    uint64_t idx[MAX_WRITES + 64]; /* the entries delivered, in arrival order */
    unsigned n;
    uint64_t last; /* the last entry delivered */
    int code;      /* 0, or the error that ended the stream */
    char msg[256]; /* ... and its sentence */
};

/* Read @cl until a heartbeat says everything up to @until was sent, or an error ends it. Every
 * entry must come after the one before it and after every heartbeat (a heartbeat says nothing
 * before it is pending), and each of its events names its entry. */
static void stream_read(struct client *cl, uint64_t until, struct stream *st)
{
    uint64_t told = 0;
    for (;;) {
        struct client_reply r;
        assert_int_equal(client_recv(cl, &r, 20000), 0);
        if (r.code != 0) {
            st->code = r.code;
            assert_int_equal(r.body->type, MSGPACK_OBJECT_STR);
            snprintf(st->msg, sizeof st->msg, "%.*s", (int)r.body->via.str.size,
                     r.body->via.str.ptr);
            return;
        }
        const msgpack_object *ix = proto_map_get(r.body, "index");
        if (ix == NULL) {
            const msgpack_object *ap = proto_map_get(r.body, "applied");
            assert_non_null(ap);
            assert_true(ap->via.u64 >= told);
            told = ap->via.u64;
            if (told >= until) {
                return;
            }
            continue;
        }
        if (ix->via.u64 <= st->last || ix->via.u64 <= told) {
            fail_msg("entry %llu delivered after entry %llu and heartbeat %llu",
                     (unsigned long long)ix->via.u64, (unsigned long long)st->last,
                     (unsigned long long)told);
        }
        st->last = ix->via.u64;
        const msgpack_object *evs = proto_map_get(r.body, "events");
        for (uint32_t i = 0; i < evs->via.array.size; i++) {
            assert_int_equal(proto_map_get(&evs->via.array.ptr[i], "index")->via.u64, st->last);
        }
        assert_true(st->n < sizeof st->idx / sizeof st->idx[0]);
        st->idx[st->n++] = st->last;
    }
}

/* Every acknowledged score from @from on is in @st exactly once (stream_read checked the order),
 * unless the stream ended with not_found naming the first index it could serve: then every
 * one from that index on. */
static void stream_check(const struct stream *st, uint64_t from)
{
    uint64_t first = from;
    if (st->code != 0) {
        unsigned long long named = 0;
        assert_int_equal(st->code, LR_ENOTFOUND);
        const char *p = strstr(st->msg, "first index served is ");
        if (p == NULL || sscanf(p, "first index served is %llu", &named) != 1) {
            fail_msg("a stream ended without naming where it can resume: \"%s\"", st->msg);
        }
        assert_true(named > from);
        first = named;
    }
    unsigned k = 0;
    for (unsigned w = 0; w < fx->nacked; w++) {
        if (fx->acked[w] < first) {
            continue;
        }
        while (k < st->n && st->idx[k] < fx->acked[w]) {
            k++;
        }
        if (k >= st->n || st->idx[k] != fx->acked[w]) {
            fail_msg(
                "the event of entry %llu was never delivered (stream from %llu: %u entries, "
                "last %llu, ended %d \"%s\")",
                (unsigned long long)fx->acked[w], (unsigned long long)from, st->n,
                (unsigned long long)st->last, st->code, st->msg);
        }
    }
}

/* The inode of replica @i's LMDB file: a snapshot install replaces the file (fsm__restore). */
static ino_t shard_inode(unsigned i)
{
    char path[700];
    struct stat sb;
    snprintf(path, sizeof path, "%s/shard/data.mdb", fx->c.r[i].data);
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_ino;
}

/* Stop follower @f, write N_BEHIND scores, replace the leader, write N_BEHIND more, then let
 * @f go: it must install a snapshot. Why the new leader: the one @f was following streams
 * entries to it without waiting (libraft's pipeline), and queues what the stopped socket does
 * not take, so it would feed @f every entry it missed; a leader elected while @f is stopped
 * probes it first, finds its log behind the compacted start and sends the snapshot. */
static void lag_past_snapshot(unsigned f)
{
    ino_t before = shard_inode(f);
    pid_t stopped = fx->c.r[f].pid;
    tcluster_kill(&fx->c, f, SIGSTOP);
    fx->c.r[f].pid = 0; /* the cluster helpers skip it rather than wait for its answers */
    for (unsigned k = 0; k < N_BEHIND; k++) {
        write_score();
    }
    int l = tcluster_leader(&fx->c, T_MS);
    assert_true(l >= 0);
    tcluster_kill(&fx->c, (unsigned)l, SIGKILL);
    assert_int_equal(tcluster_spawn(&fx->c, (unsigned)l), 0);
    fx->leader = -1;
    for (unsigned k = 0; k < N_BEHIND; k++) {
        write_score();
    }
    /* libraft may still hold messages for the stopped peer carrying entries (test_meta_node):
     * after two failed connection attempts only heartbeats are queued. */
    sleep_ms(2500);
    fx->c.r[f].pid = stopped;
    tcluster_kill(&fx->c, f, SIGCONT);
    uint64_t applied, digest;
    assert_int_equal(tcluster_converged(&fx->c, T_MS, &applied, &digest), 0);
    if (shard_inode(f) == before) {
        fail_msg("follower %u caught up from the log: no snapshot was installed", f);
    }
}

/* A subscriber live on a follower when it is stopped, and one that subscribes after the
 * follower installed a snapshot from an index the snapshot covers, are each sent every
 * committed event exactly once, in order, or told where the stream can resume. Every file
 * the replicas wrote is private to the user. */
static void follower_snapshot_install_keeps_every_event(void **state)
{
    (void)state;
    struct client live, late;
    static struct stream a, b;
    uint64_t applied, digest;
    for (unsigned k = 0; k < 20; k++) {
        write_score();
    }
    int l = tcluster_leader(&fx->c, T_MS);
    unsigned f = (unsigned)(l + 1) % 3;
    uint64_t from = fx->acked[0];
    assert_int_equal(tcluster_converged(&fx->c, T_MS, &applied, &digest), 0);
    subscribe_open(f, from, &live);
    stream_read(&live, applied, &a); /* live now: caught up to the applied index */
    assert_int_equal(a.code, 0);
    lag_past_snapshot(f);
    for (unsigned k = 0; k < 20; k++) { /* and a few after the install */
        write_score();
    }
    assert_int_equal(tcluster_converged(&fx->c, T_MS, &applied, &digest), 0);
    stream_read(&live, applied, &a);
    stream_check(&a, from);
    subscribe_open(f, from, &late);
    stream_read(&late, applied, &b);
    stream_check(&b, from);
    client_close(&live);
    client_close(&late);
    /* What every replica wrote (LMDB files, raft segments, the snapshots just taken and
     * installed) grants group and other nothing: `laurel node` runs under umask 077. */
    for (unsigned i = 0; i < 3; i++) {
        char bad[4200], pat[700];
        glob_t g;
        if (testlib_private_tree(fx->c.r[i].data, NULL, bad, sizeof bad) != 0) {
            fail_msg("not private: %s", bad);
        }
        snprintf(pat, sizeof pat, "%s/raft/snapshot-*", fx->c.r[i].data);
        assert_int_equal(glob(pat, 0, NULL, &g), 0); /* the walk did see snapshot files */
        globfree(&g);
    }
}

/* Replica @i's status field @key (an unsigned integer). */
static uint64_t status_u64(struct tcluster *c, unsigned i, const char *key)
{
    struct client cl;
    struct client_reply r;
    assert_int_equal(client_connect(&cl, c->r[i].rpc, 1000), 0);
    assert_int_equal(client_call(&cl, PROTO_OP_STATUS, NULL, 0, &r, 3000), 0);
    assert_int_equal(r.code, 0);
    const msgpack_object *o = proto_map_get(r.body, key);
    assert_non_null(o);
    uint64_t v = o->via.u64;
    client_close(&cl);
    return v;
}

/* Submit @n new players (names from *@k on) to replica 0 of @c; @return the answer's code and,
 * for an error, its sentence in @msg. */
static int submit_players(struct tcluster *c, unsigned n, unsigned *k, char *msg, size_t cap)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct client cl;
    struct client_reply r;
    char ids[64][24];
    assert_true(n <= 64);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (unsigned j = 0; j < n; j++) {
        snprintf(ids[j], sizeof ids[j], "grow-%07u", (*k)++);
        struct cmd cmd = ts_player(0, ids[j], "na", "a-guild-name-to-take-some-room");
        assert_int_equal(cmd_encode(&pk, &cmd), 0);
    }
    assert_int_equal(client_connect(&cl, c->r[0].rpc, 1000), 0);
    assert_int_equal(client_call(&cl, PROTO_OP_SUBMIT, sb.data, sb.size, &r, T_MS), 0);
    int code = r.code;
    if (code != 0 && r.body->type == MSGPACK_OBJECT_STR) {
        snprintf(msg, cap, "%.*s", (int)r.body->via.str.size, r.body->via.str.ptr);
    }
    client_close(&cl);
    msgpack_sbuffer_destroy(&sb);
    return code;
}

/* A replica whose state has grown past --state-max (what a snapshot would hold, measured each
 * second) refuses writes with unavailable and a sentence saying why, and still answers reads:
 * the limit keeps every snapshot loadable by libraft 0.15 (FSM_SNAPSHOT_MAX). */
static void writes_refused_past_the_state_limit(void **state)
{
    (void)state;
    struct tcluster *c = calloc(1, sizeof *c);
    char msg[LR_ERRMSG_SIZE] = "";
    unsigned k = 0;
    int code = 0;
    assert_non_null(c);
    assert_int_equal(tcluster_start(c, 1, "na"), 0);
    assert_int_equal(tcluster_leader(c, T_MS), 0);
    assert_int_equal(submit_players(c, 1, &k, msg, sizeof msg), 0);
    sleep_ms(1500); /* a tick measures the state */
    uint64_t small = status_u64(c, 0, "state_bytes");
    assert_true(small > 0);
    c->state_max = small + (256u << 10);
    tcluster_kill(c, 0, SIGTERM);
    assert_int_equal(tcluster_spawn(c, 0), 0);
    assert_int_equal(tcluster_leader(c, T_MS), 0);
    assert_int_equal(status_u64(c, 0, "state_max"), c->state_max);
    for (unsigned batch = 0; batch < 2000 && code == 0; batch++) {
        code = submit_players(c, 64, &k, msg, sizeof msg);
        if (code == LR_EUNAVAILABLE && strstr(msg, "not ready") != NULL) {
            code = 0; /* a new leader waits for its term's barrier (node_clock.c) */
            sleep_ms(50);
            continue;
        }
        if (code != 0) {
            break;
        }
        assert_int_equal(code, 0);
        if (batch % 16 == 15) {
            sleep_ms(1100); /* let a tick see the growth */
        }
    }
    assert_int_equal(code, LR_EUNAVAILABLE);
    assert_non_null(strstr(msg, "past this replica's limit"));
    assert_true(status_u64(c, 0, "state_bytes") >= c->state_max);
    /* Reads go on. */
    struct client cl;
    struct client_reply r;
    struct shard_query q = {.type = SHARD_Q_PLAYER_GET, .player_id = ts_s("grow-0000000")};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_query_encode(&pk, &q, 1);
    assert_int_equal(client_connect(&cl, c->r[0].rpc, 1000), 0);
    assert_int_equal(client_call(&cl, PROTO_OP_QUERY, sb.data, sb.size, &r, 3000), 0);
    assert_int_equal(r.code, 0);
    client_close(&cl);
    msgpack_sbuffer_destroy(&sb);
    tcluster_stop(c);
    free(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(follower_snapshot_install_keeps_every_event),
        cmocka_unit_test(writes_refused_past_the_state_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
