/* tests/integration/test_ipv6.c — a region whose every address is on [::1]: three real
 * `laurel node` processes elect a leader and replicate over the raft transport on IPv6, take a
 * write through the client RPC on IPv6, add a fourth replica named by an IPv6 address, start
 * from a cluster file of IPv6 addresses, and serve a `laurel router` listening on [::1] that
 * reaches them over IPv6. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/addr.h"
#include "tests/lib/cluster.h"
#include "tests/lib/httpc.h"
#include "tests/lib/testlib.h"
#include "tests/lib/testshard.h"

#define T_MS 60000

struct fixture {
    struct tcluster c;
};

static struct fixture *fx;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Submit @cmd to the leader of @c (found again until one acknowledges); @return its status. */
static int submit1(struct tcluster *c, struct cmd cmd)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 1);
    assert_int_equal(cmd_encode(&pk, &cmd), 0);
    for (int attempt = 0; attempt < 100; attempt++) {
        int l = tcluster_leader(c, 5000);
        struct client cl;
        struct client_reply r;
        if (l < 0) {
            continue;
        }
        int rv = client_connect(&cl, c->r[l].rpc, 1000);
        if (rv == 0) {
            rv = client_call(&cl, PROTO_OP_SUBMIT, sb.data, sb.size, &r, 5000);
        }
        if (rv == 0 && r.code == 0) {
            const msgpack_object *res = proto_map_get(r.body, "results");
            int status = (int)res->via.array.ptr[0].via.array.ptr[0].via.u64;
            client_close(&cl);
            msgpack_sbuffer_destroy(&sb);
            return status;
        }
        client_close(&cl);
        sleep_ms(50);
    }
    fail_msg("submit: no leader acknowledged the write");
    return -1;
}

/* The score of @player on board "arena" as replica @i of @c holds it (a stale read). */
static uint64_t score_on(struct tcluster *c, unsigned i, const char *player)
{
    struct shard_query q = {.type = SHARD_Q_RANK, .board_id = ts_s("arena")};
    struct client cl;
    struct client_reply r;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    q.player_id = ts_s(player);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_query_encode(&pk, &q, 1);
    assert_int_equal(client_connect(&cl, c->r[i].rpc, 1000), 0);
    assert_int_equal(client_call(&cl, PROTO_OP_QUERY, sb.data, sb.size, &r, 3000), 0);
    msgpack_sbuffer_destroy(&sb);
    assert_int_equal(r.code, 0);
    uint64_t score = proto_map_get(r.body, "score")->via.u64;
    client_close(&cl);
    return score;
}

/* 1 if something accepts TCP connections at @addr. */
static int listening(const char *addr)
{
    struct sockaddr_storage sa;
    socklen_t len;
    assert_int_equal(addr_resolve(addr, 0, &sa, &len), 0);
    int fd = socket(sa.ss_family, SOCK_STREAM, 0);
    int ok = connect(fd, (struct sockaddr *)&sa, len) == 0;
    close(fd);
    return ok;
}

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    assert_int_equal(tcluster_start_on(&fx->c, 3, "eu", "[::1]"), 0);
    assert_true(tcluster_leader(&fx->c, T_MS) >= 0);
    assert_int_equal(submit1(&fx->c, ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0)), 201);
    assert_int_equal(submit1(&fx->c, ts_player(0, "ada", "eu", "")), 201);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tcluster_stop(&fx->c);
    free(fx);
    return 0;
}

/* Every --peer address on [::1]: a leader is elected, a write through the RPC on [::1] is
 * applied on all three, and the raft port listens on ::1 only, as given. */
static void region_on_ipv6_replicates(void **state)
{
    (void)state;
    uint64_t applied, digest;
    assert_non_null(strstr(fx->c.r[0].raft, "[::1]:"));
    assert_int_equal(submit1(&fx->c, ts_score(0, "arena", "ada", 5, 0, "v6-write-1")), 200);
    assert_int_equal(tcluster_converged(&fx->c, T_MS, &applied, &digest), 0);
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(score_on(&fx->c, i, "ada"), 5);
    }
    char v4[64];
    snprintf(v4, sizeof v4, "127.0.0.1%s", strrchr(fx->c.r[0].raft, ':'));
    assert_int_equal(listening(fx->c.r[0].raft), 1);
    assert_int_equal(listening(v4), 0);
}

/* A replica is added by IPv6 addresses (and an unbracketed IPv6 address is refused), catches
 * up over IPv6, and is removed again. */
static void add_replica_by_ipv6_address(void **state)
{
    (void)state;
    unsigned j = tcluster_add_replica(&fx->c);
    assert_int_equal(tcluster_spawn(&fx->c, j), 0);
    int l = tcluster_leader(&fx->c, T_MS);
    assert_true(l >= 0);
    struct client cl;
    struct client_reply r;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    assert_int_equal(client_connect(&cl, fx->c.r[l].rpc, 1000), 0);
    const char *raft[] = {"::1:7999", fx->c.r[j].raft};
    for (int k = 0; k < 2; k++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_map(&pk, 3);
        proto_pack_key(&pk, "id");
        msgpack_pack_uint64(&pk, fx->c.r[j].id);
        proto_pack_key(&pk, "raft");
        proto_pack_key(&pk, raft[k]);
        proto_pack_key(&pk, "rpc");
        proto_pack_key(&pk, fx->c.r[j].rpc);
        assert_int_equal(client_call(&cl, PROTO_OP_ADD, sb.data, sb.size, &r, 30000), 0);
        assert_int_equal(r.code, k == 0 ? LR_EINVAL : 0);
    }
    assert_int_equal(submit1(&fx->c, ts_score(0, "arena", "ada", 1, 0, "v6-write-2")), 200);
    uint64_t applied, digest;
    assert_int_equal(tcluster_converged(&fx->c, T_MS, &applied, &digest), 0);
    assert_int_equal(score_on(&fx->c, j, "ada"), 6);
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    proto_pack_key(&pk, "id");
    msgpack_pack_uint64(&pk, fx->c.r[j].id);
    assert_int_equal(client_call(&cl, PROTO_OP_REMOVE, sb.data, sb.size, &r, 30000), 0);
    assert_int_equal(r.code, 0);
    client_close(&cl);
    msgpack_sbuffer_destroy(&sb);
    tcluster_kill(&fx->c, j, SIGTERM);
}

/* `laurel router --http [::1]:PORT` with its region's RPC addresses on [::1] answers health
 * over IPv6, is ready once it reaches the region's leader over IPv6, and does not answer on
 * IPv4. */
static void router_on_ipv6(void **state)
{
    (void)state;
    char http[64], region[256];
    snprintf(region, sizeof region, "eu=%s,%s,%s", fx->c.r[0].rpc, fx->c.r[1].rpc, fx->c.r[2].rpc);
    struct httpc_resp r;
    int status = 0;
    pid_t pid = -1;
    /* The free port is probed on IPv4 and released before the router binds it on [::1]:
     * another socket can take it meanwhile (seen once in CI, EADDRINUSE). A router that exits
     * at start is tried again on another port. */
    for (int attempt = 0; attempt < 5 && status != 200; attempt++) {
        snprintf(http, sizeof http, "[::1]:%d", client_free_port());
        pid = fork();
        if (pid == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            execl(fx->c.bin, fx->c.bin, "router", "--http", http, "--region", region, "--admin-key",
                  "ipv6-admin-key-0123", "--api-key", "ipv6-api-key-04567", (char *)NULL);
            _exit(127);
        }
        for (int i = 0; i < 100 && status != 200; i++) {
            if (httpc_do(http, "GET", "/healthz", "", NULL, &r) == 0) {
                status = r.status;
                httpc_free(&r);
            } else if (waitpid(pid, NULL, WNOHANG) == pid) {
                break; /* it could not listen: another port */
            } else {
                sleep_ms(100);
            }
        }
    }
    assert_int_equal(status, 200);
    status = 0;
    for (int i = 0; i < 100 && status != 200; i++) {
        if (httpc_do(http, "GET", "/readyz", "", NULL, &r) == 0) {
            status = r.status;
            httpc_free(&r);
        }
        if (status != 200) {
            sleep_ms(100);
        }
    }
    assert_int_equal(status, 200);
    char v4[64];
    snprintf(v4, sizeof v4, "127.0.0.1%s", strrchr(http, ':'));
    assert_int_equal(listening(v4), 0);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* A one-replica region started from a --cluster file whose addresses are on [::1] leads and
 * takes a write. */
static void cluster_file_with_ipv6_addresses(void **state)
{
    (void)state;
    struct tcluster c;
    char file[700];
    memset(&c, 0, sizeof c);
    assert_int_equal(tcluster_start_on(&c, 0, "na", "[::1]"), 0); /* a directory, no replica */
    unsigned i = tcluster_add_replica(&c);
    snprintf(file, sizeof file, "%s/cluster.json", c.dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fprintf(f, "{\"region\":\"na\",\"replicas\":[{\"id\":1,\"raft\":\"%s\",\"rpc\":\"%s\"}]}\n",
            c.r[i].raft, c.r[i].rpc);
    fclose(f);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(c.r[i].log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execl(c.bin, c.bin, "node", "--id", "1", "--data", c.r[i].data, "--cluster", file,
              "--election-ms", "300", "--heartbeat-ms", "30", (char *)NULL);
        _exit(127);
    }
    c.r[i].pid = pid;
    assert_int_equal(tcluster_leader(&c, T_MS), 0);
    assert_int_equal(submit1(&c, ts_board(0, "arena", CMD_ORDER_DESC, CMD_OP_INCR, 1, 0)), 201);
    tcluster_stop(&c);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(region_on_ipv6_replicates),
        cmocka_unit_test(add_replica_by_ipv6_address),
        cmocka_unit_test(router_on_ipv6),
        cmocka_unit_test(cluster_file_with_ipv6_addresses),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
