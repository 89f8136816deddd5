/* tests/integration/test_node.c — three real `laurel node` processes on loopback.
 *
 * The scenarios share one cluster and run in order: writes survive a kill -9 of the leader
 * and are applied exactly once (every acknowledged increment is in the final score, none
 * twice); a restarted follower catches up; a replica can be added and removed; the committed
 * event stream delivers every write's event once, in index order; garbage on the RPC port
 * closes that connection and nothing else; submits of one loop turn past an entry's cap are
 * split into entries, each applied once; readindex agrees across replicas; heartbeats on the
 * stream name raft's applied index (barriers included) promptly. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/cluster.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

#define N_PLAYERS 20
#define T_MS 60000

struct fixture {
    struct tcluster c;
    int leader;
    uint64_t writes[N_PLAYERS]; /* acknowledged increments per player */
    unsigned next_key;
    uint64_t last_index; /* the raft index of the last acknowledged submit */
};

static struct fixture *fx;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Submit @n commands to the region, following the leader and retrying (same commands, so the
 * same idempotency keys) until they are acknowledged. Statuses land in @status. */
static void submit(const struct cmd *cmds, uint32_t n, int *status)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(cmd_encode(&pk, &cmds[i]), 0);
    }
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
            assert_non_null(res);
            assert_int_equal(res->via.array.size, n);
            for (uint32_t i = 0; i < n; i++) {
                status[i] = (int)res->via.array.ptr[i].via.array.ptr[0].via.u64;
            }
            fx->last_index = proto_map_get(r.body, "index")->via.u64;
            client_close(&cl);
            msgpack_sbuffer_destroy(&sb);
            return;
        }
        /* Not the leader, no leader, timed out, or the leader died: find it again. */
        client_close(&cl);
        fx->leader = -1;
        sleep_ms(20);
    }
    fail_msg("submit: no leader acknowledged the write");
}

static void submit1(struct cmd c, int expect)
{
    int status;
    submit(&c, 1, &status);
    assert_int_equal(status, expect);
}

/* One increment for player @p with a fresh idempotency key. */
static void write_incr(unsigned p)
{
    char key[32], id[16];
    int status;
    snprintf(key, sizeof key, "write-%08u", fx->next_key++);
    snprintf(id, sizeof id, "p%02u", p);
    struct cmd c = ts_score(0, "arena", id, 1, 0, key);
    submit(&c, 1, &status);
    assert_int_equal(status, 200);
    fx->writes[p]++;
}

/* Every running replica holds exactly the acknowledged increments (stale reads, each one). */
static void check_scores(void)
{
    uint64_t applied, digest;
    assert_int_equal(tcluster_converged(&fx->c, T_MS, &applied, &digest), 0);
    for (unsigned i = 0; i < fx->c.n; i++) {
        if (fx->c.r[i].pid <= 0) {
            continue;
        }
        struct client cl;
        assert_int_equal(client_connect(&cl, fx->c.r[i].rpc, 1000), 0);
        for (unsigned p = 0; p < N_PLAYERS; p++) {
            char id[16];
            struct shard_query q = {.type = SHARD_Q_RANK, .board_id = ts_s("arena")};
            snprintf(id, sizeof id, "p%02u", p);
            q.player_id = ts_s(id);
            msgpack_sbuffer sb;
            msgpack_packer pk;
            struct client_reply r;
            msgpack_sbuffer_init(&sb);
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            proto_query_encode(&pk, &q, 1);
            assert_int_equal(client_call(&cl, PROTO_OP_QUERY, sb.data, sb.size, &r, 3000), 0);
            msgpack_sbuffer_destroy(&sb);
            assert_int_equal(r.code, 0);
            assert_int_equal(proto_map_get(r.body, "score")->via.u64, fx->writes[p]);
        }
        client_close(&cl);
    }
}

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    assert_int_equal(tcluster_start(&fx->c, 3, "eu"), 0);
    fx->leader = tcluster_leader(&fx->c, T_MS);
    assert_true(fx->leader >= 0);
    submit1(ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0), 201);
    for (unsigned p = 0; p < N_PLAYERS; p++) {
        char id[16];
        snprintf(id, sizeof id, "p%02u", p);
        submit1(ts_player(0, id, "eu", ""), 201);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tcluster_stop(&fx->c);
    free(fx);
    return 0;
}

/* Writes keep being acknowledged across a kill -9 of the leader, and each lands once. */
static void kill_leader_loses_nothing_applies_once(void **state)
{
    (void)state;
    for (unsigned k = 0; k < 300; k++) {
        if (k == 100) {
            int l = tcluster_leader(&fx->c, T_MS);
            assert_true(l >= 0);
            tcluster_kill(&fx->c, (unsigned)l, SIGKILL);
            fx->leader = -1;
        }
        write_incr(k % N_PLAYERS);
    }
    /* The old leader comes back from its data dir and converges with the others. */
    for (unsigned i = 0; i < fx->c.n; i++) {
        if (fx->c.r[i].pid == 0) {
            assert_int_equal(tcluster_spawn(&fx->c, i), 0);
        }
    }
    check_scores();
}

/* A follower killed and restarted from its data dir catches up with writes it missed. */
static void follower_restart_catches_up(void **state)
{
    (void)state;
    int l = tcluster_leader(&fx->c, T_MS);
    unsigned f = (unsigned)(l + 1) % fx->c.n;
    tcluster_kill(&fx->c, f, SIGKILL);
    for (unsigned k = 0; k < 600; k++) { /* past the snapshot threshold: catch-up may install one */
        write_incr(k % N_PLAYERS);
    }
    assert_int_equal(tcluster_spawn(&fx->c, f), 0);
    check_scores();
}

/* A fourth replica joins, catches up, and is removed again. */
static void add_and_remove_a_replica(void **state)
{
    (void)state;
    unsigned j = tcluster_add_replica(&fx->c);
    assert_int_equal(tcluster_spawn(&fx->c, j), 0);
    int l = tcluster_leader(&fx->c, T_MS);
    struct client cl;
    struct client_reply r;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    proto_pack_key(&pk, "id");
    msgpack_pack_uint64(&pk, fx->c.r[j].id);
    proto_pack_key(&pk, "raft");
    proto_pack_key(&pk, fx->c.r[j].raft);
    proto_pack_key(&pk, "rpc");
    proto_pack_key(&pk, fx->c.r[j].rpc);
    assert_int_equal(client_connect(&cl, fx->c.r[l].rpc, 1000), 0);
    assert_int_equal(client_call(&cl, PROTO_OP_ADD, sb.data, sb.size, &r, 30000), 0);
    assert_int_equal(r.code, 0);
    write_incr(0);
    check_scores(); /* includes the new replica */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    proto_pack_key(&pk, "id");
    msgpack_pack_uint64(&pk, fx->c.r[j].id);
    assert_int_equal(client_call(&cl, PROTO_OP_REMOVE, sb.data, sb.size, &r, 30000), 0);
    assert_int_equal(r.code, 0);
    client_close(&cl);
    msgpack_sbuffer_destroy(&sb);
    tcluster_kill(&fx->c, j, SIGTERM);
    write_incr(1);
    check_scores();
}

/* Leadership moves to the replica an operator names, and writes follow it. */
static void transfer_leadership(void **state)
{
    (void)state;
    int l = tcluster_leader(&fx->c, T_MS);
    unsigned to = (unsigned)(l + 1) % 3;
    struct client cl;
    struct client_reply r;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    proto_pack_key(&pk, "id");
    msgpack_pack_uint64(&pk, fx->c.r[to].id);
    assert_int_equal(client_connect(&cl, fx->c.r[l].rpc, 1000), 0);
    assert_int_equal(client_call(&cl, PROTO_OP_TRANSFER, sb.data, sb.size, &r, 10000), 0);
    assert_int_equal(r.code, 0);
    client_close(&cl);
    msgpack_sbuffer_destroy(&sb);
    int now = -1;
    for (int i = 0; i < 100 && now != (int)to; i++) {
        now = tcluster_leader(&fx->c, T_MS);
        sleep_ms(20);
    }
    assert_int_equal(now, (int)to);
    fx->leader = -1;
    write_incr(3);
    check_scores();
}

/* Open a subscription from @from on replica @i of @c, on @cl. */
static void subscribe_open(struct tcluster *c, unsigned i, uint64_t from, struct client *cl)
{
    uint64_t id;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    proto_pack_key(&pk, "from");
    msgpack_pack_uint64(&pk, from);
    assert_int_equal(client_connect(cl, c->r[i].rpc, 1000), 0);
    assert_int_equal(client_send(cl, PROTO_OP_SUBSCRIBE, sb.data, sb.size, &id), 0);
    msgpack_sbuffer_destroy(&sb);
}

/* The event stream from index 1 carries one score.updated per applied write, in order. */
static void event_stream_exactly_once_in_order(void **state)
{
    (void)state;
    uint64_t applied, digest, total = 0, last = 0, events = 0, told = 0;
    assert_int_equal(tcluster_converged(&fx->c, T_MS, &applied, &digest), 0);
    for (unsigned p = 0; p < N_PLAYERS; p++) {
        total += fx->writes[p];
    }
    unsigned f = (unsigned)(tcluster_leader(&fx->c, T_MS) + 1) % 3; /* a follower */
    struct client cl;
    struct client_reply r;
    subscribe_open(&fx->c, f, 1, &cl);
    while (last < applied) {
        assert_int_equal(client_recv(&cl, &r, 10000), 0);
        assert_int_equal(r.code, 0);
        const msgpack_object *ix = proto_map_get(r.body, "index");
        if (ix == NULL) {
            const msgpack_object *ap = proto_map_get(r.body, "applied");
            assert_non_null(ap);
            assert_true(ap->via.u64 >= told); /* heartbeats never go back */
            told = ap->via.u64;
            if (ap->via.u64 >= applied) {
                break; /* heartbeat: nothing left before the applied index */
            }
            continue;
        }
        assert_true(ix->via.u64 > last);
        assert_true(ix->via.u64 > told); /* never an event a heartbeat said was not pending */
        last = ix->via.u64;
        const msgpack_object *evs = proto_map_get(r.body, "events");
        for (uint32_t i = 0; i < evs->via.array.size; i++) {
            const msgpack_object *t = proto_map_get(&evs->via.array.ptr[i], "type");
            const msgpack_object *b = proto_map_get(&evs->via.array.ptr[i], "board_id");
            assert_int_equal(proto_map_get(&evs->via.array.ptr[i], "index")->via.u64, last);
            if (t->via.str.size == 13 && memcmp(t->via.str.ptr, "score.updated", 13) == 0 &&
                b->via.str.size == 5) {
                events++;
            }
        }
    }
    client_close(&cl);
    assert_int_equal(events, total);
}

#define CAP_SUBMITS 6
#define CAP_CMDS 1024

/* Six submits of 1 024 commands in one send(), so they arrive in one loop turn: together more
 * than one entry holds (CMD_ENTRY_MAX); the replica closes the entry at the cap and opens the
 * next, so every command is acknowledged, applied once, and the replicas converge. */
static void submits_of_one_turn_split_at_the_entry_cap(void **state)
{
    (void)state;
    uint64_t ids[CAP_SUBMITS];
    static uint64_t per[CAP_SUBMITS][N_PLAYERS];
    struct client cl;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t mark;
    int l = tcluster_leader(&fx->c, T_MS);
    assert_true(l >= 0);
    memset(per, 0, sizeof per);
    assert_int_equal(client_connect(&cl, fx->c.r[l].rpc, 1000), 0);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (unsigned k = 0; k < CAP_SUBMITS; k++) {
        proto_frame_begin(&sb, &mark);
        ids[k] = ++cl.next_id;
        proto_msg_begin(&pk, ids[k], PROTO_OP_SUBMIT);
        msgpack_pack_array(&pk, CAP_CMDS);
        for (unsigned i = 0; i < CAP_CMDS; i++) {
            char key[32], id[16];
            unsigned p = (k * CAP_CMDS + i) % N_PLAYERS;
            snprintf(key, sizeof key, "cap-%08u", fx->next_key++);
            snprintf(id, sizeof id, "p%02u", p);
            struct cmd c = ts_score(0, "arena", id, 1, 0, key);
            assert_int_equal(cmd_encode(&pk, &c), 0);
            per[k][p]++;
        }
        proto_frame_end(&sb, mark);
    }
    assert_int_equal(client_send_raw(&cl, sb.data, sb.size), 0);
    msgpack_sbuffer_destroy(&sb);
    for (unsigned n = 0; n < CAP_SUBMITS; n++) {
        struct client_reply r;
        assert_int_equal(client_recv(&cl, &r, T_MS), 0);
        assert_true(r.id >= ids[0] && r.id <= ids[CAP_SUBMITS - 1]);
        unsigned k = (unsigned)(r.id - ids[0]);
        assert_int_equal(r.code, 0);
        const msgpack_object *res = proto_map_get(r.body, "results");
        assert_non_null(res);
        assert_int_equal(res->via.array.size, CAP_CMDS);
        for (uint32_t i = 0; i < CAP_CMDS; i++) {
            const msgpack_object *one = res->via.array.ptr[i].via.array.ptr;
            assert_int_equal(one[0].via.u64, 200);
            assert_false(one[1].via.boolean); /* fresh keys: nothing replayed */
        }
        for (unsigned p = 0; p < N_PLAYERS; p++) {
            fx->writes[p] += per[k][p];
        }
    }
    client_close(&cl);
    check_scores(); /* once each, on every replica */
}

/* What the readindex op reports. */
struct ridx {
    uint64_t term, leader_id, commit, applied;
    int leader;
};

static void readindex(unsigned i, struct ridx *out)
{
    struct client cl;
    struct client_reply r;
    assert_int_equal(client_connect(&cl, fx->c.r[i].rpc, 1000), 0);
    assert_int_equal(client_call(&cl, PROTO_OP_READINDEX, NULL, 0, &r, 3000), 0);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.body->via.map.size, 5);
    out->term = proto_map_get(r.body, "term")->via.u64;
    out->leader = proto_map_get(r.body, "leader")->via.boolean;
    out->leader_id = proto_map_get(r.body, "leader_id")->via.u64;
    out->commit = proto_map_get(r.body, "commit_index")->via.u64;
    out->applied = proto_map_get(r.body, "applied_index")->via.u64;
    client_close(&cl);
}

/* After a write is acknowledged, readindex on every replica agrees: the leader says it leads
 * in term T with a commit index at or past the write, and a majority (the leader included)
 * report term T and that leader, which is what a router's ReadIndex checks. */
static void readindex_names_the_leader_and_its_commit_point(void **state)
{
    (void)state;
    for (unsigned round = 0; round < 3; round++) {
        struct ridx a[3];
        write_incr(4 + round);
        uint64_t idx = fx->last_index;
        int l = tcluster_leader(&fx->c, T_MS);
        assert_true(l >= 0);
        for (unsigned i = 0; i < 3; i++) { /* followers first: the leader's commit is later */
            if (i != (unsigned)l) {
                readindex(i, &a[i]);
            }
        }
        readindex((unsigned)l, &a[l]);
        const struct ridx *ld = &a[l];
        assert_true(ld->leader);
        assert_int_equal(ld->leader_id, fx->c.r[l].id);
        assert_true(ld->commit >= idx);
        assert_true(ld->applied >= idx && ld->applied <= ld->commit);
        unsigned agree = 1;
        for (unsigned i = 0; i < 3; i++) {
            if (i == (unsigned)l) {
                continue;
            }
            assert_false(a[i].leader);
            assert_true(a[i].term <= ld->term);
            assert_true(a[i].commit <= ld->commit);
            assert_true(a[i].applied <= a[i].commit);
            if (a[i].term == ld->term) {
                assert_true(a[i].leader_id == 0 || a[i].leader_id == ld->leader_id);
                agree += a[i].leader_id == ld->leader_id;
            }
        }
        assert_true(agree >= 2);
    }
}

/* Wait on subscription @cl for an {"applied": n} with n >= @want; no events are due, so an
 * events frame fails. Returns n. */
static uint64_t await_applied(struct client *cl, uint64_t want)
{
    for (int frames = 0; frames < 50; frames++) {
        struct client_reply r;
        assert_int_equal(client_recv(cl, &r, 5000), 0);
        assert_int_equal(r.code, 0);
        assert_null(proto_map_get(r.body, "index"));
        const msgpack_object *ap = proto_map_get(r.body, "applied");
        assert_non_null(ap);
        if (ap->via.u64 >= want) {
            return ap->via.u64;
        }
    }
    fail_msg("no heartbeat reached index %llu", (unsigned long long)want);
    return 0;
}

/* A live subscriber is told raft's applied index as it moves, entries without events
 * included: after a read's barrier, on the leader and on a follower, a heartbeat names an
 * index at or past the leader's applied point. The once-a-second heartbeat of old counted
 * command entries only, so it never named a barrier's index. */
static void stream_heartbeat_names_barriers_promptly(void **state)
{
    (void)state;
    uint64_t applied, digest;
    assert_int_equal(tcluster_converged(&fx->c, T_MS, &applied, &digest), 0);
    int l = tcluster_leader(&fx->c, T_MS);
    assert_true(l >= 0);
    unsigned f = (unsigned)(l + 1) % 3;
    struct client sl, sf, cl;
    struct client_reply r;
    subscribe_open(&fx->c, (unsigned)l, applied + 1, &sl); /* nothing to catch up: live */
    subscribe_open(&fx->c, f, applied + 1, &sf);
    for (unsigned round = 0; round < 3; round++) {
        struct ridx a;
        struct shard_query q = {.type = SHARD_Q_RANK, .board_id = ts_s("arena")};
        q.player_id = ts_s("p00");
        msgpack_sbuffer sb;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        proto_query_encode(&pk, &q, 0);
        assert_int_equal(client_connect(&cl, fx->c.r[l].rpc, 1000), 0);
        assert_int_equal(client_call(&cl, PROTO_OP_QUERY, sb.data, sb.size, &r, 3000), 0);
        assert_int_equal(r.code, 0); /* answered after a barrier of its own */
        client_close(&cl);
        msgpack_sbuffer_destroy(&sb);
        readindex((unsigned)l, &a);
        assert_true(a.applied > applied); /* the barrier entry */
        assert_true(await_applied(&sl, a.applied) >= a.applied);
        assert_true(await_applied(&sf, a.applied) >= a.applied);
        applied = a.applied;
    }
    client_close(&sl);
    client_close(&sf);
}

/* Garbage, oversized frames and unknown versions close that connection; the node serves on. */
static void garbage_on_the_rpc_port(void **state)
{
    (void)state;
    struct testrng rng = {testlib_seed(7)};
    unsigned i = 0;
    for (int round = 0; round < 30; round++) {
        struct client cl;
        struct client_reply r;
        unsigned char junk[512];
        assert_int_equal(client_connect(&cl, fx->c.r[i].rpc, 1000), 0);
        size_t n = 4 + testrng_below(&rng, sizeof junk - 4);
        for (size_t k = 0; k < n; k++) {
            junk[k] = (unsigned char)testrng_next(&rng);
        }
        if (round % 3 == 0) {
            memcpy(junk, "\xff\xff\xff\xff", 4); /* 4 GiB frame */
        } else if (round % 3 == 1) {
            junk[0] = junk[1] = 0; /* a plausible length, garbage payload */
            junk[2] = 0;
            junk[3] = (unsigned char)(n - 4);
        }
        client_send_raw(&cl, junk, n);
        int rv = client_recv(&cl, &r, 2000);
        /* Either an error reply and a close, or (partial frame) nothing until we give up. */
        assert_true(rv != 0 || r.code != 0);
        client_close(&cl);
    }
    /* A well-formed request with an unknown protocol version. */
    struct client cl;
    struct client_reply r;
    static const unsigned char v9[] = {0, 0, 0, 5, 0x94, 0x09, 0x01, 0x03, 0xc0};
    assert_int_equal(client_connect(&cl, fx->c.r[i].rpc, 1000), 0);
    client_send_raw(&cl, v9, sizeof v9);
    assert_int_equal(client_recv(&cl, &r, 2000), 0);
    assert_int_equal(r.code, LR_EVERSION);
    client_close(&cl);
    uint64_t applied;
    assert_int_equal(tcluster_status(&fx->c, i, &applied, NULL, NULL, 0), 0);
    write_incr(2);
    check_scores();
}

/* Subscribe from @from on replica @i of @c; @return the code of the first reply. */
static int subscribe_code(struct tcluster *c, unsigned i, uint64_t from)
{
    struct client cl;
    struct client_reply r;
    subscribe_open(c, i, from, &cl);
    assert_int_equal(client_recv(&cl, &r, 10000), 0);
    int code = r.code;
    client_close(&cl);
    return code;
}

/* Send @cmd to @cl without waiting for its answer. */
static void send_cmd(struct client *cl, struct cmd cmd)
{
    uint64_t id;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    assert_int_equal(cmd_encode(&pk, &cmd), 0);
    assert_int_equal(client_send(cl, PROTO_OP_SUBMIT, sb.data, sb.size, &id), 0);
    msgpack_sbuffer_destroy(&sb);
}

/* A subscription from an index more than SHARD_EVENTS_RETAIN behind, whose events the log
 * has trimmed, is refused with not_found (so the subscriber resyncs) rather than served from
 * the oldest index still held as if nothing were missing; one inside the window is served.
 * Its own replica, in /dev/shm when there is one: 20 000 raft entries cost 20 000 fsyncs. */
static void trimmed_subscription_told_to_resync(void **state)
{
    (void)state;
    uint64_t applied = 0, digest;
    unsigned k = 0;
    struct tcluster *c = calloc(1, sizeof *c);
    char *tmpdir = getenv("TMPDIR") ? strdup(getenv("TMPDIR")) : NULL;
    assert_non_null(c);
    if (access("/dev/shm", W_OK) == 0) {
        setenv("TMPDIR", "/dev/shm", 1);
    }
    assert_int_equal(tcluster_start(c, 1, "na"), 0);
    if (tmpdir) {
        setenv("TMPDIR", tmpdir, 1);
    } else {
        unsetenv("TMPDIR");
    }
    free(tmpdir);
    assert_int_equal(tcluster_leader(c, T_MS), 0);
    struct client cl;
    assert_int_equal(client_connect(&cl, c->r[0].rpc, 1000), 0);
    send_cmd(&cl, ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0));
    send_cmd(&cl, ts_player(0, "trimmer", "na", ""));
    for (unsigned i = 0; i < 2; i++) {
        struct client_reply r;
        assert_int_equal(client_recv(&cl, &r, T_MS), 0);
        assert_int_equal(r.code, 0);
    }
    /* One submit in flight: the replica proposes each loop turn's submits as one entry, and
     * the window counts entries. Each entry is one score, with its events. */
    while (applied <= SHARD_EVENTS_RETAIN + 500) {
        struct client_reply r;
        char key[32];
        snprintf(key, sizeof key, "trim-%07u", k++);
        send_cmd(&cl, ts_score(0, "arena", "trimmer", 1, 0, key));
        assert_int_equal(client_recv(&cl, &r, T_MS), 0);
        assert_int_equal(r.code, 0);
        applied = k + 2; /* a lower bound: the catalog entries came first */
    }
    assert_int_equal(tcluster_status(c, 0, &applied, &digest, NULL, 0), 0);
    client_close(&cl);
    assert_int_equal(subscribe_code(c, 0, 1), LR_ENOTFOUND);
    assert_int_equal(subscribe_code(c, 0, applied - SHARD_EVENTS_RETAIN - 10), LR_ENOTFOUND);
    /* The refusal names the first index the log serves: inside the window, past the ask. */
    struct client_reply r;
    subscribe_open(c, 0, 1, &cl);
    assert_int_equal(client_recv(&cl, &r, 10000), 0);
    assert_int_equal(r.code, LR_ENOTFOUND);
    const msgpack_object *first = proto_map_get(r.body, "first_index");
    const msgpack_object *msg = proto_map_get(r.body, "message");
    assert_non_null(first);
    assert_non_null(msg);
    assert_true(first->via.u64 > 1 && first->via.u64 + SHARD_EVENTS_RETAIN >= applied);
    char want[64];
    snprintf(want, sizeof want, "the first index served is %llu",
             (unsigned long long)first->via.u64);
    assert_non_null(memmem(msg->via.str.ptr, msg->via.str.size, want, strlen(want)));
    uint64_t served = first->via.u64; /* the reply lives until the client closes */
    client_close(&cl);
    assert_int_equal(subscribe_code(c, 0, served), 0);
    assert_int_equal(subscribe_code(c, 0, applied - 100), 0);
    tcluster_stop(c);
    free(c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kill_leader_loses_nothing_applies_once),
        cmocka_unit_test(follower_restart_catches_up),
        cmocka_unit_test(add_and_remove_a_replica),
        cmocka_unit_test(transfer_leadership),
        cmocka_unit_test(event_stream_exactly_once_in_order),
        cmocka_unit_test(submits_of_one_turn_split_at_the_entry_cap),
        cmocka_unit_test(readindex_names_the_leader_and_its_commit_point),
        cmocka_unit_test(stream_heartbeat_names_barriers_promptly),
        cmocka_unit_test(garbage_on_the_rpc_port),
        cmocka_unit_test(trimmed_subscription_told_to_resync),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
