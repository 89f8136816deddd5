/* tests/integration/test_meta_node.c — three real `laurel node --role meta` processes on
 * loopback: the metadata group (docs/global-state.md) served by the node, raft/fsm.c and meta/.
 *
 * The scenarios share one cluster and run in order, and the fixture remembers every claim and
 * catalog put the group acknowledged, so each check reads the whole history: the first claim
 * of an id wins and every later claim (concurrent ones included) is told its region; every
 * acknowledged claim and put survives a kill -9 of the leader, each put in the catalog log
 * exactly once at its acknowledged version; a follower that missed more entries than the
 * leader keeps is sent a snapshot (meta_copy, then raft/fsm.c's restore), reaches the same
 * digest and answers what it missed; bad queries, subscribe and garbage commands are refused
 * with a sentence, and the replicas serve and converge on. A scenario starts by restarting any
 * replica a failed one left down, and every wait is bounded by T_MS. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/cluster.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testmeta.h"

#define T_MS 60000
#define N_CLAIMS 50  /* scenario 1's first claims */
#define N_STREAM 160 /* scenario 2's commands, the leader killed at N_KILL */
#define N_KILL 60
/* Scenario 3's commands, one entry each, while a follower is down. tcluster snapshots every 256
 * entries and libraft keeps the 4096 entries before a snapshot (node.c's snapshot_trailing):
 * only a follower more than 4096 + 256 entries behind is sent a snapshot rather than entries. */
#define N_BEHIND 4700
#define MAX_CLAIMS 8192
#define MAX_PUTS 1024

static const char *const regions[] = {"eu", "na", "ap"};

struct claim {
    char id[24];
    char region[8];
};

struct put {
    char id[24];
    char body[48]; /* unique per attempt: a retried put is told apart from its first try */
    uint64_t version;
};

struct fixture {
    struct tcluster c;
    int leader; /* -1: find it again */
    struct claim claims[MAX_CLAIMS];
    unsigned nclaims;
    struct put puts[MAX_PUTS];
    unsigned nputs;
    unsigned attempts; /* put attempts so far: each names its body */
};

static struct fixture *fx;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- submitting ------------------------------------------------------------------------- */

static void pack_cmds(msgpack_sbuffer *sb, const struct mcmd *cmds, uint32_t n)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(mcmd_encode(&pk, &cmds[i]), 0);
    }
}

static void result_free(struct ts_result *r)
{
    msgpack_unpacked_destroy(&r->body);
    free(r->raw);
    r->raw = NULL;
}

/* Copy the per-command results of a submit's answer @body into @out (@n of them).
 * @return the raft index of the entry that carried them. */
static uint64_t results_take(const msgpack_object *body, uint32_t n, struct ts_result *out)
{
    const msgpack_object *res = proto_map_get(body, "results");
    uint64_t index = (uint64_t)ts_i64(body, "index");
    assert_true(index > 0);
    assert_non_null(res);
    assert_int_equal(res->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(res->via.array.size, n);
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *r = &res->via.array.ptr[i];
        msgpack_sbuffer sb;
        msgpack_packer pk;
        assert_int_equal(r->type, MSGPACK_OBJECT_ARRAY);
        assert_int_equal(r->via.array.size, 3);
        out[i].status = (int)r->via.array.ptr[0].via.i64;
        out[i].replayed = r->via.array.ptr[1].via.boolean;
        assert_false(out[i].replayed); /* meta's commands carry no idempotency key */
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_object(&pk, r->via.array.ptr[2]);
        out[i].raw = ts_unpack(&out[i].body, sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
    }
    return index;
}

/* One attempt of submit @args (@n commands) on the leader as last known.
 * @return 0 with the results in @out and the entry's index in *@index; 1 when the commands may have
 * been applied but no answer came (the leader died or lost leadership); 2 when they were not
 * applied (not the leader, no leader, or no connection). */
static int submit_try(const msgpack_sbuffer *args, uint32_t n, struct ts_result *out,
                      uint64_t *index)
{
    struct client cl;
    struct client_reply r;
    int l = fx->leader >= 0 ? fx->leader : tcluster_leader(&fx->c, 5000);
    if (l < 0) {
        return 2;
    }
    if (client_connect(&cl, fx->c.r[l].rpc, 500) != 0) {
        client_close(&cl);
        fx->leader = -1;
        return 2;
    }
    int rv = client_call(&cl, PROTO_OP_SUBMIT, args->data, args->size, &r, 3000);
    if (rv == 0 && r.code == 0) {
        *index = results_take(r.body, n, out);
        client_close(&cl);
        fx->leader = l;
        return 0;
    }
    int applied_maybe = rv != 0 || (r.code != LR_ENOTLEADER && r.body->type == MSGPACK_OBJECT_STR);
    client_close(&cl);
    fx->leader = -1;
    return applied_maybe ? 1 : 2;
}

/* Submit @cmds until an answer comes, the same bytes each time, following the leader; *@maybe
 * is set when an earlier attempt may have been applied. */
static void submit(const struct mcmd *cmds, uint32_t n, struct ts_result *out, int *maybe)
{
    msgpack_sbuffer sb;
    uint64_t index;
    pack_cmds(&sb, cmds, n);
    *maybe = 0;
    for (int64_t until = now_ms() + T_MS; now_ms() < until;) {
        int rv = submit_try(&sb, n, out, &index);
        if (rv == 0) {
            msgpack_sbuffer_destroy(&sb);
            return;
        }
        *maybe |= rv == 1;
        sleep_ms(20);
    }
    fail_msg("submit: no leader acknowledged the commands");
}

/* The answer @r of a claim of @id names @region; @return its status. */
static int claim_answer(const struct ts_result *r, const char *id, const char *region)
{
    char buf[80];
    assert_string_equal(ts_str(&r->body.data, "player_id", buf, sizeof buf), id);
    assert_string_equal(ts_str(&r->body.data, "region", buf, sizeof buf), region);
    assert_non_null(proto_map_get(&r->body.data, "claimed_at"));
    return r->status;
}

static void remember_claim(const char *id, const char *region)
{
    assert_true(fx->nclaims < MAX_CLAIMS);
    struct claim *c = &fx->claims[fx->nclaims++];
    snprintf(c->id, sizeof c->id, "%s", id);
    snprintf(c->region, sizeof c->region, "%s", region);
}

/* Claim the new ids @ids[0..n) for @rgn[0..n) in one submit: each answers 201 (200 if a lost
 * earlier attempt already won it) naming its region. */
static void claim_new(const char *const *ids, const char *const *rgn, uint32_t n)
{
    struct mcmd cmds[16];
    struct ts_result res[16];
    int maybe;
    assert_true(n <= 16);
    for (uint32_t i = 0; i < n; i++) {
        cmds[i] = tmeta_claim(0, ids[i], rgn[i]);
    }
    submit(cmds, n, res, &maybe);
    for (uint32_t i = 0; i < n; i++) {
        int status = claim_answer(&res[i], ids[i], rgn[i]);
        if (!(status == 201 || (maybe && status == 200))) {
            fail_msg("claim %s: status %d", ids[i], status);
        }
        result_free(&res[i]);
        remember_claim(ids[i], rgn[i]);
    }
}

static void claim1(const char *id, const char *region)
{
    claim_new(&id, &region, 1);
}

/* Put catalog entry (@kind, @id) with a body naming the attempt; retried with a new body after
 * an answer that never came, so the catalog log tells every attempt apart. */
static void put1(int kind, const char *id)
{
    for (int64_t until = now_ms() + T_MS; now_ms() < until;) {
        struct put p;
        struct ts_result res;
        msgpack_sbuffer sb;
        uint64_t index;
        char buf[64];
        snprintf(p.id, sizeof p.id, "%s", id);
        snprintf(p.body, sizeof p.body, "{\"name\":\"%s\",\"attempt\":%u}", id, fx->attempts++);
        struct mcmd c = tmeta_catalog(0, kind, p.id, p.body);
        pack_cmds(&sb, &c, 1);
        int rv = submit_try(&sb, 1, &res, &index);
        msgpack_sbuffer_destroy(&sb);
        if (rv != 0) {
            sleep_ms(20);
            continue;
        }
        /* 201 for an id's first put, 200 after; a retried put may have been first. */
        assert_true(res.status == 201 || res.status == 200);
        assert_string_equal(ts_str(&res.body.data, "id", buf, sizeof buf), id);
        assert_string_equal(ts_str(&res.body.data, "kind", buf, sizeof buf), mcmd_kind_name(kind));
        p.version = (uint64_t)ts_i64(&res.body.data, "version");
        assert_int_equal(p.version, index); /* a put's version is its entry's raft index */
        result_free(&res);
        assert_true(fx->nputs < MAX_PUTS);
        fx->puts[fx->nputs++] = p;
        return;
    }
    fail_msg("put %s: no leader acknowledged it", id);
}

/* ---- reading ---------------------------------------------------------------------------- */

/* Send query @q (stale or not) on @cl; the reply in @r. */
static void query(struct client *cl, const struct meta_query *q, int stale, struct client_reply *r)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    meta_query_encode(&pk, q, stale);
    assert_int_equal(client_call(cl, PROTO_OP_QUERY, sb.data, sb.size, r, 5000), 0);
    msgpack_sbuffer_destroy(&sb);
}

/* Ask the directory of @cl's replica for @id (stale or not); the region it answers lands in
 * @region. @return the reply's code. */
static int directory(struct client *cl, const char *id, int stale, char *region, size_t cap)
{
    struct client_reply r;
    struct meta_query q = {.type = META_Q_DIRECTORY, .player_id = ts_s(id)};
    char buf[80];
    query(cl, &q, stale, &r);
    if (r.code == 0) {
        assert_string_equal(ts_str(r.body, "player_id", buf, sizeof buf), id);
        ts_str(r.body, "region", region, cap);
        assert_int_equal(proto_map_get(r.body, "claimed_at")->type, MSGPACK_OBJECT_STR);
    }
    return r.code;
}

/* Replica @i answers every remembered claim from its directory, and no unclaimed id. */
static void check_directory(unsigned i, int stale)
{
    struct client cl;
    struct client_reply r;
    char region[16];
    assert_int_equal(client_connect(&cl, fx->c.r[i].rpc, 1000), 0);
    for (unsigned k = 0; k < fx->nclaims; k++) {
        int code = directory(&cl, fx->claims[k].id, stale, region, sizeof region);
        if (code != 0) {
            fail_msg("replica %u: directory %s: code %d", i, fx->claims[k].id, code);
        }
        assert_string_equal(region, fx->claims[k].region);
    }
    struct meta_query q = {.type = META_Q_DIRECTORY, .player_id = ts_s("nobody")};
    query(&cl, &q, stale, &r);
    assert_int_equal(r.code, LR_ENOTFOUND);
    assert_int_equal(r.body->type, MSGPACK_OBJECT_STR);
    assert_int_equal(r.body->via.str.size, strlen("player nobody is not claimed"));
    assert_memory_equal(r.body->via.str.ptr, "player nobody is not claimed", r.body->via.str.size);
    client_close(&cl);
}

/* Replica @i's catalog log, read from version 0 in pages of 7: versions never decrease, and
 * strictly increase from one acknowledged put to the next (each was the only command of its
 * entry; puts sent together in flight may share one); no body appears twice (each attempt has
 * its own, so a twice-proposed or twice-applied entry shows); every acknowledged put is there
 * once, at the version it was acknowledged with. */
static void check_catalog(unsigned i, int stale)
{
    struct client cl;
    struct client_reply r;
    uint64_t after = 0, last = 0, last_acked = 0;
    unsigned n = 0, *seen = calloc(MAX_PUTS, sizeof *seen);
    char(*bodies)[64] = calloc(MAX_PUTS * 4, sizeof *bodies);
    int more = 1;
    assert_non_null(seen);
    assert_non_null(bodies);
    assert_int_equal(client_connect(&cl, fx->c.r[i].rpc, 1000), 0);
    while (more) {
        struct meta_query q = {.type = META_Q_CATALOG_SINCE, .after = after, .limit = 7};
        query(&cl, &q, stale, &r);
        assert_int_equal(r.code, 0);
        const msgpack_object *ch = proto_map_get(r.body, "changes");
        assert_non_null(ch);
        assert_true(ch->via.array.size <= 7);
        more = ts_bool(r.body, "more");
        assert_true(ch->via.array.size > 0 || !more);
        for (uint32_t k = 0; k < ch->via.array.size; k++) {
            const msgpack_object *c = &ch->via.array.ptr[k];
            char id[32], body[64];
            uint64_t v = (uint64_t)ts_i64(c, "version");
            assert_true(v >= last);
            last = after = v;
            ts_str(c, "id", id, sizeof id);
            ts_str(c, "body", body, sizeof body);
            assert_true(n < MAX_PUTS * 4);
            for (unsigned b = 0; b < n; b++) {
                if (strcmp(bodies[b], body) == 0) {
                    fail_msg("replica %u: put %s is in the catalog log twice", i, body);
                }
            }
            snprintf(bodies[n++], sizeof bodies[0], "%s", body);
            for (unsigned p = 0; p < fx->nputs; p++) {
                if (strcmp(fx->puts[p].body, body) == 0) {
                    assert_string_equal(fx->puts[p].id, id);
                    assert_int_equal(fx->puts[p].version, v);
                    assert_true(v > last_acked);
                    last_acked = v;
                    seen[p]++;
                }
            }
        }
    }
    client_close(&cl);
    for (unsigned p = 0; p < fx->nputs; p++) {
        if (seen[p] != 1) {
            fail_msg("replica %u: acknowledged put %s seen %u times", i, fx->puts[p].body, seen[p]);
        }
    }
    free(seen);
    free(bodies);
}

static void converged(void)
{
    uint64_t applied, digest;
    assert_int_equal(tcluster_converged(&fx->c, T_MS, &applied, &digest), 0);
    assert_true(applied > 0);
}

/* Start every replica a failed scenario left stopped, so the next one starts from three. */
static void revive(void)
{
    for (unsigned i = 0; i < fx->c.n; i++) {
        if (fx->c.r[i].pid == 0) {
            assert_int_equal(tcluster_spawn(&fx->c, i), 0);
        }
    }
}

static int leader(void)
{
    int l = tcluster_leader(&fx->c, T_MS);
    assert_true(l >= 0);
    return l;
}

/* ---- fixture ---------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(tcluster_start(&fx->c, 3, "meta"), 0);
    fx->leader = tcluster_leader(&fx->c, T_MS);
    assert_true(fx->leader >= 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tcluster_stop(&fx->c);
    free(fx);
    return 0;
}

/* ---- scenarios -------------------------------------------------------------------------- */

/* The first claim of an id wins: a later claim elsewhere, or a concurrent one, is told the
 * winner's region, and every replica's directory answers it. */
static void first_claim_wins_everywhere(void **state)
{
    (void)state;
    char ids[N_CLAIMS][24];
    const char *idp[10], *rgn[10];
    for (unsigned k = 0; k < N_CLAIMS; k += 10) { /* ten claims to a submit */
        for (unsigned j = 0; j < 10; j++) {
            snprintf(ids[k + j], sizeof ids[0], "p%03u", k + j);
            idp[j] = ids[k + j];
            rgn[j] = regions[(k + j) % 3];
        }
        claim_new(idp, rgn, 10);
    }
    /* The same id again: another region is a conflict naming the first; the same, a retry. */
    for (unsigned k = 0; k < N_CLAIMS; k += 7) {
        struct mcmd cmds[2] = {tmeta_claim(0, ids[k], regions[(k + 1) % 3]),
                               tmeta_claim(0, ids[k], regions[k % 3])};
        struct ts_result res[2];
        char buf[80];
        int maybe;
        submit(cmds, 2, res, &maybe);
        assert_int_equal(claim_answer(&res[0], ids[k], regions[k % 3]), 409);
        const msgpack_object *err = ts_get(&res[0].body.data, "error");
        assert_string_equal(ts_str(err, "code", buf, sizeof buf), "conflict");
        assert_string_equal(ts_str(err, "reason", buf, sizeof buf), "region");
        char want[200];
        snprintf(want, sizeof want, "player %.64s belongs to region %.16s", ids[k], regions[k % 3]);
        assert_string_equal(ts_str(err, "message", buf, sizeof buf), want);
        assert_int_equal(claim_answer(&res[1], ids[k], regions[k % 3]), 200);
        result_free(&res[0]);
        result_free(&res[1]);
    }
    /* Claims of one new id sent at once from two connections: both answers name the same
     * region, the winner's (whichever of them meta's log put first). */
    for (unsigned round = 0; round < 10; round++) {
        char id[24];
        struct client cl[2];
        struct ts_result res[2];
        int answered[2] = {0, 0};
        uint64_t reqid;
        snprintf(id, sizeof id, "race%02u", round);
        int l = leader();
        for (int j = 0; j < 2; j++) {
            struct mcmd c = tmeta_claim(0, id, regions[j]);
            msgpack_sbuffer sb;
            pack_cmds(&sb, &c, 1);
            assert_int_equal(client_connect(&cl[j], fx->c.r[l].rpc, 1000), 0);
            assert_int_equal(client_send(&cl[j], PROTO_OP_SUBMIT, sb.data, sb.size, &reqid), 0);
            msgpack_sbuffer_destroy(&sb);
        }
        for (int j = 0; j < 2; j++) {
            struct client_reply r;
            if (client_recv(&cl[j], &r, 5000) == 0 && r.code == 0) {
                results_take(r.body, 1, &res[j]);
                answered[j] = 1;
            }
            client_close(&cl[j]);
        }
        for (int j = 0; j < 2; j++) { /* leadership moved under the race: ask again */
            if (!answered[j]) {
                struct mcmd c = tmeta_claim(0, id, regions[j]);
                int maybe;
                submit(&c, 1, &res[j], &maybe);
            }
        }
        char r0[16], r1[16];
        ts_str(&res[0].body.data, "region", r0, sizeof r0);
        ts_str(&res[1].body.data, "region", r1, sizeof r1);
        assert_string_equal(r0, r1);
        for (int j = 0; j < 2; j++) {
            claim_answer(&res[j], id, r0);
            if (strcmp(r0, regions[j]) == 0) {
                assert_true(res[j].status == 201 || (!answered[j] && res[j].status == 200));
            } else {
                assert_int_equal(res[j].status, 409);
            }
            result_free(&res[j]);
        }
        remember_claim(id, r0);
    }
    /* The leader answers at once; a follower refuses a linearizable read (not the leader) and
     * answers a stale one once it caught up. */
    int l = leader();
    check_directory((unsigned)l, 0);
    converged();
    for (unsigned i = 0; i < fx->c.n; i++) {
        if ((int)i == l) {
            continue;
        }
        struct client cl;
        char region[16];
        assert_int_equal(client_connect(&cl, fx->c.r[i].rpc, 1000), 0);
        assert_int_equal(directory(&cl, "p000", 0, region, sizeof region), LR_ENOTLEADER);
        client_close(&cl);
        check_directory(i, 1);
    }
}

#define N_INFLIGHT 8

/* Send @N_INFLIGHT claims ("u00"...) and puts, unacknowledged, to the leader @l and kill -9 it
 * before they are answered: each may or may not have happened. */
static void kill_with_writes_in_flight(int l)
{
    struct client cl;
    assert_int_equal(client_connect(&cl, fx->c.r[l].rpc, 1000), 0);
    for (unsigned j = 0; j < N_INFLIGHT; j++) {
        char id[24], body[48];
        struct mcmd c;
        msgpack_sbuffer sb;
        uint64_t reqid;
        snprintf(id, sizeof id, "u%02u", j);
        snprintf(body, sizeof body, "{\"name\":\"%s\",\"attempt\":%u}", id, fx->attempts++);
        c = j % 2 ? tmeta_catalog(0, (int)(j % META_KIND__END), id, body)
                  : tmeta_claim(0, id, regions[j % 3]);
        pack_cmds(&sb, &c, 1);
        assert_int_equal(client_send(&cl, PROTO_OP_SUBMIT, sb.data, sb.size, &reqid), 0);
        msgpack_sbuffer_destroy(&sb);
    }
    tcluster_kill(&fx->c, (unsigned)l, SIGKILL);
    client_close(&cl);
    fx->leader = -1;
}

/* A kill -9 of the leader with writes in flight, in the middle of a stream of claims and puts,
 * loses no acknowledged one and applies none twice; the killed replica comes back and
 * converges. */
static void kill_leader_mid_stream(void **state)
{
    (void)state;
    revive();
    int killed = -1;
    for (unsigned k = 0; k < N_STREAM; k++) {
        char id[24];
        if (k == N_KILL) {
            killed = leader();
            kill_with_writes_in_flight(killed);
        }
        if (k % 2 == 0) {
            snprintf(id, sizeof id, "s%03u", k);
            claim1(id, regions[k % 3]);
        } else {
            snprintf(id, sizeof id, "c%02u", k % 25); /* ids repeat: the log keeps every put */
            put1((int)(k % META_KIND__END), id);
        }
    }
    int l = leader();
    assert_true(l != killed);
    check_directory((unsigned)l, 0);
    check_catalog((unsigned)l, 0); /* the puts in flight: there at most once */
    /* A claim in flight either happened, with its own region, or did not. */
    struct client cl;
    assert_int_equal(client_connect(&cl, fx->c.r[l].rpc, 1000), 0);
    for (unsigned j = 0; j < N_INFLIGHT; j += 2) {
        char id[24], region[16];
        snprintf(id, sizeof id, "u%02u", j);
        int code = directory(&cl, id, 0, region, sizeof region);
        if (code == 0) {
            assert_string_equal(region, regions[j % 3]);
            remember_claim(id, region);
        } else {
            assert_int_equal(code, LR_ENOTFOUND);
        }
    }
    client_close(&cl);
    assert_int_equal(tcluster_spawn(&fx->c, (unsigned)killed), 0);
    converged();
    check_directory((unsigned)killed, 1);
    check_catalog((unsigned)killed, 1);
}

/* Open replica @i's LMDB file. Held open, its inode cannot be reused: a snapshot install writes
 * a new file in its place (raft/fsm.c, fsm__restore), a catch-up from the log keeps it. */
static int meta_file_open(unsigned i, char *path, size_t cap)
{
    snprintf(path, cap, "%s/meta/data.mdb", fx->c.r[i].data);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    return fd;
}

/* A follower stopped while the others apply more entries than the leader keeps past its
 * snapshot is sent the snapshot, comes back to the same digest and answers, stale, what was
 * claimed and put while it was down. */
static void follower_catches_up_past_snapshots(void **state)
{
    (void)state;
    revive();
    unsigned f = (unsigned)(leader() + 1) % fx->c.n;
    char path[700];
    struct stat was, now;
    int old = meta_file_open(f, path, sizeof path);
    tcluster_kill(&fx->c, f, SIGTERM);
    for (unsigned k = 0; k < N_BEHIND; k++) { /* one command to a submit: one entry each */
        char id[24];
        if (k % 10 == 9) {
            snprintf(id, sizeof id, "b%02u", k % 30);
            put1((int)(k % META_KIND__END), id);
        } else {
            snprintf(id, sizeof id, "d%04u", k);
            claim1(id, regions[k % 3]);
        }
    }
    /* libraft keeps up to 3 messages for a peer it cannot reach, encoded with the entries they
     * carry, and drops the older ones only when a connection attempt fails (once a second).
     * One queued before the leader compacted its log would feed the follower those entries
     * and spare it the snapshot; after two failed attempts only heartbeats are queued. */
    sleep_ms(2500);
    assert_int_equal(tcluster_spawn(&fx->c, f), 0);
    converged();
    /* Every claim and put, those made while it was down included. */
    check_directory(f, 1);
    check_catalog(f, 1);
    assert_int_equal(fstat(old, &was), 0);
    assert_int_equal(stat(path, &now), 0);
    close(old);
    if (was.st_ino == now.st_ino) {
        fail_msg("follower %u caught up from the log: no snapshot was installed", f);
    }
}

/* Send op @op with args @args (packed) on @cl and expect LR_EINVAL with @sentence. */
static void expect_refused(struct client *cl, int op, const msgpack_sbuffer *args,
                           const char *sentence)
{
    struct client_reply r;
    assert_int_equal(client_call(cl, op, args->data, args->size, &r, 5000), 0);
    assert_int_equal(r.code, LR_EINVAL);
    assert_int_equal(r.body->type, MSGPACK_OBJECT_STR);
    char got[LR_ERRMSG_SIZE];
    snprintf(got, sizeof got, "%.*s", (int)r.body->via.str.size, r.body->via.str.ptr);
    assert_string_equal(got, sentence);
}

/* Pack into @sb a map of one pair per letter of @kinds, from @kv (key, value, key, ...); the
 * letter says how to pack the value: 's' string, 'i' integer, 'n' negative integer, 'f' float. */
static void pack_map(msgpack_sbuffer *sb, const char *kinds, const char *const *kv)
{
    msgpack_packer pk;
    uint32_t n = (uint32_t)strlen(kinds);
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        const char *v = kv[2 * i + 1];
        proto_pack_key(&pk, kv[2 * i]);
        switch (kinds[i]) {
        case 's': proto_pack_key(&pk, v); break;
        case 'i': msgpack_pack_uint64(&pk, strtoull(v, NULL, 10)); break;
        case 'n': msgpack_pack_int64(&pk, strtoll(v, NULL, 10)); break;
        default: msgpack_pack_double(&pk, strtod(v, NULL)); break;
        }
    }
}

/* Bad queries, a subscribe and garbage commands are refused with a sentence; the replicas
 * keep serving on the same connections and still converge. */
static void bad_input_refused_replica_serves_on(void **state)
{
    (void)state;
    revive();
    static const struct {
        const char *kinds;
        const char *kv[6];
        const char *sentence;
    } bad[] = {
        {"s", {"type", "leaderboard"}, "meta query: unknown type"},
        {"i", {"type", "1"}, "meta query: unknown type"}, /* a shard's query: type by number */
        {"", {NULL}, "meta query: type is required"},
        {"ss", {"type", "directory", "window", "x"}, "meta query: unknown key"},
        {"si",
         {"type", "directory", "player_id", "5"},
         "meta query: player_id has the wrong type or range"},
        {"sn",
         {"type", "catalog_since", "after", "-1"},
         "meta query: after has the wrong type or range"},
        {"si",
         {"type", "catalog_since", "limit", "4294967296"},
         "meta query: limit has the wrong type or range"},
        {"sf",
         {"type", "close_get", "cycle", "1.5"},
         "meta query: cycle has the wrong type or range"},
        {"ssi",
         {"type", "directory", "player_id", "p000", "stale", "1"},
         "meta query: stale must be a boolean"},
    };
    int l = leader();
    unsigned f = (unsigned)(l + 1) % fx->c.n;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    char region[16];
    msgpack_sbuffer_init(&sb);
    for (unsigned r = 0; r < 2; r++) { /* the leader, then a follower: args judged first */
        unsigned i = r == 0 ? (unsigned)l : f;
        struct client cl;
        assert_int_equal(client_connect(&cl, fx->c.r[i].rpc, 1000), 0);
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            pack_map(&sb, bad[k].kinds, bad[k].kv);
            expect_refused(&cl, PROTO_OP_QUERY, &sb, bad[k].sentence);
        }
        /* Args that are not a map at all, and a shard's query as the shard encodes it. */
        msgpack_sbuffer_clear(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_array(&pk, 0);
        expect_refused(&cl, PROTO_OP_QUERY, &sb, "meta query: args must be a map");
        struct shard_query sq = {
            .type = SHARD_Q_RANK, .board_id = ts_s("arena"), .player_id = ts_s("p000")};
        msgpack_sbuffer_clear(&sb);
        proto_query_encode(&pk, &sq, 1);
        expect_refused(&cl, PROTO_OP_QUERY, &sb, "meta query: unknown type");
        /* A meta replica has no event stream. */
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_map(&pk, 1);
        proto_pack_key(&pk, "from");
        msgpack_pack_uint64(&pk, 1);
        expect_refused(&cl, PROTO_OP_SUBSCRIBE, &sb,
                       "subscribe: the metadata group has no event stream");
        /* Values meta_query judges: refused by whichever replica answers. */
        struct client_reply rep;
        struct meta_query q = {.type = META_Q_DIRECTORY, .player_id = ts_s("not an id")};
        query(&cl, &q, 1, &rep);
        assert_int_equal(rep.code, LR_EINVAL);
        assert_int_equal(rep.body->type, MSGPACK_OBJECT_STR);
        q = (struct meta_query){.type = META_Q_CATALOG_SINCE, .limit = META_PAGE_MAX + 1};
        query(&cl, &q, 1, &rep);
        assert_int_equal(rep.code, LR_EINVAL);
        /* The same connection still serves. */
        assert_int_equal(directory(&cl, "p001", 1, region, sizeof region), 0);
        assert_string_equal(region, regions[1]);
        client_close(&cl);
    }
    msgpack_sbuffer_destroy(&sb);

    /* Garbage commands among good ones: each gets its error, the good one applies. */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_array(&pk, 2); /* [99, 0]: no such command */
    msgpack_pack_int64(&pk, 99);
    msgpack_pack_int64(&pk, 0);
    msgpack_pack_int64(&pk, 5); /* not an array */
    msgpack_pack_array(&pk, 3); /* a claim short of a field */
    msgpack_pack_int64(&pk, MCMD_CLAIM);
    msgpack_pack_int64(&pk, 0);
    proto_pack_key(&pk, "g1");
    struct mcmd bad_id = tmeta_claim(0, "not an id", "eu");
    assert_int_equal(mcmd_encode(&pk, &bad_id), 0);
    struct mcmd good = tmeta_claim(0, "g2", "ap");
    assert_int_equal(mcmd_encode(&pk, &good), 0);
    msgpack_pack_array(&pk, 0); /* an empty command */
    static const char *const sentences[6] = {
        "command: unknown command code",
        "command: not an array [code, ts, ...]",
        "claim: expected 2 fields, got 1",
        "player_id must be 1 to 64 characters of [A-Za-z0-9_.-]",
        NULL,
        "command: not an array [code, ts, ...]",
    };
    struct ts_result res[6];
    uint64_t index;
    int rv = 2;
    for (int64_t until = now_ms() + T_MS; rv != 0 && now_ms() < until;) {
        if ((rv = submit_try(&sb, 6, res, &index)) != 0) {
            sleep_ms(20);
        }
    }
    assert_int_equal(rv, 0);
    msgpack_sbuffer_destroy(&sb);
    for (int k = 0; k < 6; k++) {
        char buf[LR_ERRMSG_SIZE];
        if (sentences[k] == NULL) {
            assert_int_equal(claim_answer(&res[k], "g2", "ap"), 201);
            remember_claim("g2", "ap");
        } else {
            if (res[k].status < 400) {
                fail_msg("garbage command %d answered %d", k, res[k].status);
            }
            const msgpack_object *err = ts_get(&res[k].body.data, "error");
            assert_string_equal(ts_str(err, "message", buf, sizeof buf), sentences[k]);
        }
        result_free(&res[k]);
    }
    assert_int_equal(res[0].status, 400);
    /* The claim short of a field wrote nothing: "g1" is still unclaimed. */
    struct client cl;
    assert_int_equal(client_connect(&cl, fx->c.r[leader()].rpc, 1000), 0);
    assert_int_equal(directory(&cl, "g1", 0, region, sizeof region), LR_ENOTFOUND);
    client_close(&cl);
    claim1("after-garbage", "eu");
    converged();
    for (unsigned i = 0; i < fx->c.n; i++) {
        check_directory(i, 1);
    }
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_claim_wins_everywhere),
        cmocka_unit_test(kill_leader_mid_stream),
        cmocka_unit_test(follower_catches_up_past_snapshots),
        cmocka_unit_test(bad_input_refused_replica_serves_on),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
