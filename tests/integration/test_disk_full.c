/* tests/integration/test_disk_full.c — three real `laurel node` processes whose data dirs share
 * one small tmpfs, filled up by a balloon file (docs/durability.md, "Full disks").
 *
 * Below the reserve (--disk-reserve-mb) the leader refuses writes and membership changes with
 * LR_EUNAVAILABLE and a sentence saying the disk is nearly full, and changes nothing; reads,
 * readindex and status still answer, and no replica stops. Once the balloon is gone, writes are
 * accepted again without a restart. Without admission control the refused writes would be
 * accepted (this tmpfs still has room for them), and a real full disk would stop every replica
 * at the same index (node__append).
 *
 * The tmpfs is mounted and unmounted by the test, so it needs root (CI runs as root); as
 * another user it is skipped, and says so. Runs in --sync mode: fast mode preallocates a 256 MiB
 * LMDB map per replica, which a small tmpfs cannot hold next to three raft logs. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/cluster.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

/* Three raft logs take 3 x 3 x 64 MiB of segments that libraft preallocates. */
#define FS_SIZE "768m"
#define RESERVE_MB 64
#define STR_(x) #x
#define STR(x) STR_(x)
#define BALLOON_FREE_MB 24 /* what the balloon leaves: below the reserve */
#define N_PLAYERS 4
#define T_MS 30000

struct fixture {
    struct tcluster c;
    char fs[600];
    char balloon[700];
    int mounted;
    int leader;
    uint64_t score[N_PLAYERS]; /* acknowledged increments per player */
    unsigned next_key;
};

static struct fixture *fx;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One call to replica @i. @return 0 with *@r, or -1 when it did not answer. */
static int call(struct client *cl, unsigned i, int op, const msgpack_sbuffer *args,
                struct client_reply *r)
{
    if (client_connect(cl, fx->c.r[i].rpc, 1000) != 0) {
        return -1;
    }
    if (client_call(cl, op, args ? args->data : NULL, args ? args->size : 0, r, 3000) != 0) {
        client_close(cl);
        return -1;
    }
    return 0;
}

static void pack_cmds(msgpack_sbuffer *sb, const struct cmd *c, uint32_t n)
{
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, n);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(cmd_encode(&pk, &c[i]), 0);
    }
}

/* Submit @c to the leader until it is acknowledged; @return its HTTP status. */
static int submit_acked(struct cmd c)
{
    msgpack_sbuffer sb;
    pack_cmds(&sb, &c, 1);
    for (int attempt = 0; attempt < 200; attempt++) {
        int l = fx->leader >= 0 ? fx->leader : tcluster_leader(&fx->c, 5000);
        struct client cl;
        struct client_reply r;
        if (l >= 0 && call(&cl, (unsigned)l, PROTO_OP_SUBMIT, &sb, &r) == 0) {
            if (r.code == 0) {
                const msgpack_object *res = proto_map_get(r.body, "results");
                int status = (int)res->via.array.ptr[0].via.array.ptr[0].via.u64;
                client_close(&cl);
                msgpack_sbuffer_destroy(&sb);
                return status;
            }
            client_close(&cl);
        }
        fx->leader = -1;
        sleep_ms(50);
    }
    fail_msg("submit: no leader acknowledged the write");
    return -1;
}

static void write_incr(unsigned p)
{
    char key[32], id[16];
    snprintf(key, sizeof key, "disk-%06u", fx->next_key++);
    snprintf(id, sizeof id, "p%u", p);
    assert_int_equal(submit_acked(ts_score(0, "arena", id, 1, 0, key)), 200);
    fx->score[p]++;
}

/* The leader's status; @return its "writable" and copy its "reason" into @reason. */
static int leader_writable(char *reason, size_t cap)
{
    struct client cl;
    struct client_reply r;
    int writable = -1;
    reason[0] = '\0';
    if (call(&cl, (unsigned)fx->leader, PROTO_OP_STATUS, NULL, &r) != 0) {
        return -1;
    }
    const msgpack_object *w = proto_map_get(r.body, "writable");
    if (w && w->type == MSGPACK_OBJECT_BOOLEAN) {
        writable = w->via.boolean;
    }
    const msgpack_object *why = proto_map_get(r.body, "reason");
    if (why && why->type == MSGPACK_OBJECT_STR) {
        snprintf(reason, cap, "%.*s", (int)why->via.str.size, why->via.str.ptr);
    }
    client_close(&cl);
    return writable;
}

/* Wait until the leader's status says @writable; @return 0 or -1. */
static int wait_writable(int writable, char *reason, size_t cap)
{
    for (int waited = 0; waited < 5000; waited += 50) {
        if (leader_writable(reason, cap) == writable) {
            return 0;
        }
        sleep_ms(50);
    }
    return -1;
}

/* Each running replica answers a linearizable (leader) or stale read of every score. */
static void check_scores(unsigned i, int stale)
{
    struct client cl;
    assert_int_equal(client_connect(&cl, fx->c.r[i].rpc, 1000), 0);
    for (unsigned p = 0; p < N_PLAYERS; p++) {
        char id[16];
        struct shard_query q = {.type = SHARD_Q_RANK, .board_id = ts_s("arena")};
        msgpack_sbuffer sb;
        msgpack_packer pk;
        struct client_reply r;
        snprintf(id, sizeof id, "p%u", p);
        q.player_id = ts_s(id);
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        proto_query_encode(&pk, &q, stale);
        assert_int_equal(client_call(&cl, PROTO_OP_QUERY, sb.data, sb.size, &r, 3000), 0);
        msgpack_sbuffer_destroy(&sb);
        assert_int_equal(r.code, 0);
        assert_int_equal(proto_map_get(r.body, "score")->via.u64, fx->score[p]);
    }
    client_close(&cl);
}

static void assert_all_running(void)
{
    for (unsigned i = 0; i < fx->c.n; i++) {
        int st;
        pid_t got = waitpid(fx->c.r[i].pid, &st, WNOHANG);
        if (got != 0) {
            fail_msg("replica %u stopped (status %d); see %s", i, st, fx->c.r[i].log);
        }
    }
}

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    if (fx == NULL) {
        return -1;
    }
    if (geteuid() != 0) {
        return 0; /* the test skips itself */
    }
    assert_int_equal(tcluster_init_on(&fx->c, 3, "eu", "127.0.0.1"), 0);
    snprintf(fx->fs, sizeof fx->fs, "%s/fs", fx->c.dir);
    snprintf(fx->balloon, sizeof fx->balloon, "%s/balloon", fx->fs);
    assert_int_equal(mkdir(fx->fs, 0755), 0);
    if (mount("tmpfs", fx->fs, "tmpfs", 0, "size=" FS_SIZE ",mode=0755") != 0) {
        fail_msg("mount -t tmpfs %s: %s", fx->fs, strerror(errno));
    }
    fx->mounted = 1;
    for (unsigned i = 0; i < fx->c.n; i++) {
        snprintf(fx->c.r[i].data, sizeof fx->c.r[i].data, "%.500s/r%u", fx->fs, i + 1);
    }
    fx->c.args[fx->c.nargs++] = "--sync";
    fx->c.args[fx->c.nargs++] = "--disk-reserve-mb";
    fx->c.args[fx->c.nargs++] = STR(RESERVE_MB);
    for (unsigned i = 0; i < fx->c.n; i++) {
        assert_int_equal(tcluster_spawn(&fx->c, i), 0);
    }
    fx->leader = tcluster_leader(&fx->c, T_MS);
    assert_true(fx->leader >= 0);
    assert_int_equal(submit_acked(ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0)), 201);
    for (unsigned p = 0; p < N_PLAYERS; p++) {
        char id[16];
        snprintf(id, sizeof id, "p%u", p);
        assert_int_equal(submit_acked(ts_player(0, id, "eu", "")), 201);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (fx->c.n > 0) {
        tcluster_stop(&fx->c); /* also empties the tmpfs */
    }
    if (fx->mounted) {
        if (umount2(fx->fs, MNT_DETACH) != 0) {
            fprintf(stderr, "# umount %s: %s\n", fx->fs, strerror(errno));
        }
        rmdir(fx->fs);
        rmdir(fx->c.dir);
    }
    free(fx);
    return 0;
}

/* A disk filled below the reserve pauses writes, keeps reads and every replica, and writes
 * resume once the space is back. */
static void full_disk_pauses_writes_keeps_reads_and_replicas(void **state)
{
    (void)state;
    char reason[512];
    if (geteuid() != 0) {
        fprintf(stderr, "# test_disk_full mounts a tmpfs and needs root: SKIPPED (not root)\n");
        skip();
    }
    for (unsigned k = 0; k < 20; k++) {
        write_incr(k % N_PLAYERS);
    }
    fx->leader = tcluster_leader(&fx->c, T_MS);
    assert_true(fx->leader >= 0);
    assert_int_equal(leader_writable(reason, sizeof reason), 1);
    uint64_t applied0, digest0, applied, digest;
    assert_int_equal(tcluster_converged(&fx->c, T_MS, &applied0, &digest0), 0);

    /* The balloon leaves BALLOON_FREE_MB free: below the reserve, above what raft needs. */
    struct statvfs vfs;
    assert_int_equal(statvfs(fx->fs, &vfs), 0);
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    assert_true(avail > ((uint64_t)RESERVE_MB << 20));
    int fd = open(fx->balloon, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(posix_fallocate(fd, 0, (off_t)(avail - ((uint64_t)BALLOON_FREE_MB << 20))), 0);
    close(fd);
    if (wait_writable(0, reason, sizeof reason) != 0) {
        fail_msg("the leader still takes writes with %d MiB free and a %d MiB reserve",
                 BALLOON_FREE_MB, RESERVE_MB);
    }
    assert_non_null(strstr(reason, "writes paused: disk nearly full"));

    /* Writes and membership changes are refused, with the sentence, for as long as it lasts. */
    struct cmd w = ts_score(0, "arena", "p0", 1, 0, "disk-refused");
    msgpack_sbuffer sb;
    pack_cmds(&sb, &w, 1);
    for (int k = 0; k < 20; k++) {
        struct client cl;
        struct client_reply r;
        assert_int_equal(call(&cl, (unsigned)fx->leader, PROTO_OP_SUBMIT, &sb, &r), 0);
        assert_int_equal(r.code, LR_EUNAVAILABLE);
        assert_int_equal(r.body->type, MSGPACK_OBJECT_STR);
        char msg[512];
        snprintf(msg, sizeof msg, "%.*s", (int)r.body->via.str.size, r.body->via.str.ptr);
        assert_non_null(strstr(msg, "writes paused: disk nearly full"));
        assert_non_null(strstr(msg, "--disk-reserve-mb"));
        client_close(&cl);
        sleep_ms(50);
    }
    msgpack_sbuffer_destroy(&sb);
    {
        msgpack_sbuffer args;
        msgpack_packer pk;
        struct client cl;
        struct client_reply r;
        msgpack_sbuffer_init(&args);
        msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        proto_pack_key(&pk, "id");
        msgpack_pack_uint64(&pk, 9);
        proto_pack_key(&pk, "raft");
        proto_pack_key(&pk, "127.0.0.1:1");
        proto_pack_key(&pk, "rpc");
        proto_pack_key(&pk, "127.0.0.1:2");
        assert_int_equal(call(&cl, (unsigned)fx->leader, PROTO_OP_ADD, &args, &r), 0);
        assert_int_equal(r.code, LR_EUNAVAILABLE);
        client_close(&cl);
        msgpack_sbuffer_destroy(&args);
    }

    /* Reads go on: linearizable on the leader (each one a raft barrier), stale and readindex
     * on every replica; the state did not move and nobody stopped. */
    for (int k = 0; k < 5; k++) {
        check_scores((unsigned)fx->leader, 0);
    }
    for (unsigned i = 0; i < fx->c.n; i++) {
        struct client cl;
        struct client_reply r;
        check_scores(i, 1);
        assert_int_equal(call(&cl, i, PROTO_OP_READINDEX, NULL, &r), 0);
        assert_int_equal(r.code, 0);
        client_close(&cl);
    }
    assert_int_equal(tcluster_converged(&fx->c, T_MS, &applied, &digest), 0);
    assert_int_equal(applied, applied0);
    assert_int_equal(digest, digest0);
    sleep_ms(1500); /* a few ticks: nothing stops later either */
    assert_all_running();

    /* Space comes back: writes are accepted again, without a restart. */
    assert_int_equal(unlink(fx->balloon), 0);
    if (wait_writable(1, reason, sizeof reason) != 0) {
        fail_msg("writes did not resume after the balloon went: %s", reason);
    }
    for (unsigned k = 0; k < 8; k++) {
        write_incr(k % N_PLAYERS);
    }
    assert_int_equal(tcluster_converged(&fx->c, T_MS, &applied, &digest), 0);
    assert_true(applied > applied0);
    for (unsigned i = 0; i < fx->c.n; i++) {
        check_scores(i, 1);
    }
    assert_all_running();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(full_disk_pauses_writes_keeps_reads_and_replicas, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
