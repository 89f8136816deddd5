/* tests/integration/test_cluster_key.c — the cluster key, black-box: a region of three real
 * replicas started with --cluster-key-file; raw TCP connections to their raft and RPC ports
 * without the key or with a wrong one are closed and change nothing (digest, term, voters);
 * `laurel ctl status` fails without the key (naming --cluster-key-file) and works with it; a
 * router without the key or with a wrong one never gets ready and counts its failures; a
 * replica on a non-loopback address without a key refuses to start (docs/security.md). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/err.h"
#include "proto/client.h"
#include "proto/mpjson.h"
#include "proto/peerauth.h"
#include "raft/handshake.h"
#include "tests/lib/cluster.h"
#include "tests/lib/httpc.h"
#include "tests/lib/testlib.h"

extern char **environ;

#define KEY "4c6175726f6c2d746573742d6b65792d30303031"
#define WRONG_KEY "4c6175726f6c2d746573742d6b65792d39393939"

struct fixture {
    struct tcluster c;
    struct peerauth_key key, wrong;
    char key_file[600], wrong_file[600];
};

/* What must not move when strangers knock. */
struct snap {
    uint64_t digest, term, applied;
    char voters[512];
    uint64_t auth_failures;
};

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char errmsg[LR_ERRMSG_SIZE];
    unsetenv(PEERAUTH_ENV);
    assert_int_equal(tcluster_init_on(&f->c, 3, "eu", "127.0.0.1"), 0);
    snprintf(f->key_file, sizeof f->key_file, "%s/cluster.key", f->c.dir);
    snprintf(f->wrong_file, sizeof f->wrong_file, "%s/wrong.key", f->c.dir);
    write_file(f->key_file, KEY "\n");
    write_file(f->wrong_file, "{\"cluster_key\": \"" WRONG_KEY "\"}\n");
    assert_int_equal(peerauth_key_load(&f->key, f->key_file, errmsg), 0);
    assert_int_equal(peerauth_key_load(&f->wrong, f->wrong_file, errmsg), 0);
    f->c.args[f->c.nargs++] = "--cluster-key-file";
    f->c.args[f->c.nargs++] = f->key_file;
    f->c.key = &f->key;
    for (unsigned i = 0; i < 3; i++) {
        assert_int_equal(tcluster_spawn(&f->c, i), 0);
    }
    assert_true(tcluster_leader(&f->c, 20000) >= 0);
    uint64_t applied, digest;
    assert_int_equal(tcluster_converged(&f->c, 20000, &applied, &digest), 0);
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

static void take(struct fixture *f, unsigned i, struct snap *s)
{
    struct client cl;
    struct client_reply r;
    memset(s, 0, sizeof *s);
    assert_int_equal(tcluster_connect(&f->c, i, &cl, 1000), 0);
    assert_int_equal(client_call(&cl, PROTO_OP_STATUS, NULL, 0, &r, 2000), 0);
    assert_int_equal(r.code, 0);
    s->digest = proto_map_get(r.body, "digest")->via.u64;
    s->term = proto_map_get(r.body, "term")->via.u64;
    s->applied = proto_map_get(r.body, "applied_index")->via.u64;
    const msgpack_object *af = proto_map_get(r.body, "auth_failures");
    assert_non_null(af);
    s->auth_failures = af->via.u64;
    json_t *v = mpjson_from(proto_map_get(r.body, "voters"));
    char *txt = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    snprintf(s->voters, sizeof s->voters, "%s", txt ? txt : "?");
    free(txt);
    json_decref(v);
    client_close(&cl);
}

/* Send @p (@n bytes, may be 0) on a fresh connection to @addr, then expect the peer to close
 * it within 5 s without sending a byte. @key: run a wrong-key initiator first, whose M1 the
 * replica answers; its M3 is then forged (the wrong key's refusal of M2 is checked too). */
static void expect_closed(const char *addr, const struct peerauth_key *key, const void *p, size_t n)
{
    struct client cl;
    assert_int_equal(client_connect(&cl, addr, 1000), 0);
    if (key != NULL) {
        struct peerauth pa;
        size_t k, want;
        const uint8_t *m1;
        assert_int_equal(peerauth_init(&pa, key, 1), 0);
        m1 = peerauth_out(&pa, &k);
        assert_int_equal(client_send_raw(&cl, m1, k), 0);
        for (size_t got = 0; got < PEERAUTH_M2;) {
            struct pollfd pf = {cl.fd, POLLIN, 0};
            assert_int_equal(poll(&pf, 1, 5000), 1);
            uint8_t *dst = peerauth_want(&pa, &want);
            ssize_t r = recv(cl.fd, dst, want, 0);
            assert_true(r > 0);
            got += (size_t)r;
            int rv = peerauth_got(&pa, (size_t)r);
            if (got == PEERAUTH_M2) {
                assert_int_equal(rv, LR_EUNAUTHORIZED); /* the replica's proof is not ours */
            }
        }
        uint8_t forged[PEERAUTH_M3];
        memset(forged, 0x5a, sizeof forged);
        assert_int_equal(client_send_raw(&cl, forged, sizeof forged), 0);
    }
    if (n > 0) {
        client_send_raw(&cl, p, n); /* may already fail: the replica closed on the first byte */
    }
    struct pollfd pf = {cl.fd, POLLIN, 0};
    assert_int_equal(poll(&pf, 1, 5000), 1);
    char buf[256];
    ssize_t r = recv(cl.fd, buf, sizeof buf, 0);
    assert_true(r == 0 || (r < 0 && errno == ECONNRESET));
    client_close(&cl);
}

/* Strangers on every raft and RPC port, without a key and with a wrong one: each connection
 * is closed, and no replica's digest, term, applied index or voters move; each counts them. */
static void strangers_are_refused(void **state)
{
    struct fixture *f = *state;
    struct snap before[3], after[3];
    /* A forged raft opening: the raft_uv_tcp preamble of server 2, then an AppendEntries-ish
     * body of junk. */
    uint8_t hello[HANDSHAKE_SIZE_MAX + 64];
    size_t hlen;
    assert_int_equal(handshake_encode(2, f->c.r[1].raft, hello, sizeof hello, &hlen), 0);
    memset(hello + hlen, 0x11, 64);
    /* An RPC STATUS request, framed. */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t mark;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_frame_begin(&sb, &mark);
    proto_msg_begin(&pk, 1, PROTO_OP_TRANSFER);
    msgpack_pack_nil(&pk);
    proto_frame_end(&sb, mark);

    for (unsigned i = 0; i < 3; i++) {
        take(f, i, &before[i]);
    }
    for (unsigned i = 0; i < 3; i++) {
        expect_closed(f->c.r[i].raft, NULL, hello, hlen + 64);
        expect_closed(f->c.r[i].raft, &f->wrong, hello, hlen + 64);
        expect_closed(f->c.r[i].rpc, NULL, sb.data, sb.size);
        expect_closed(f->c.r[i].rpc, &f->wrong, sb.data, sb.size);
        expect_closed(f->c.r[i].rpc, NULL, "", 0); /* silent: the deadline closes it */
    }
    msgpack_sbuffer_destroy(&sb);

    /* A client with the wrong key refuses the replica (its M2) on both ports. */
    struct client cl;
    assert_int_equal(client_connect(&cl, f->c.r[0].rpc, 1000), 0);
    assert_int_equal(client_auth(&cl, &f->wrong, 2000), LR_EUNAUTHORIZED);
    assert_non_null(strstr(cl.errmsg, "--cluster-key-file"));
    client_close(&cl);

    for (unsigned i = 0; i < 3; i++) {
        take(f, i, &after[i]);
        assert_int_equal(after[i].digest, before[i].digest);
        assert_int_equal(after[i].term, before[i].term);
        assert_int_equal(after[i].applied, before[i].applied);
        assert_string_equal(after[i].voters, before[i].voters);
        /* 2 raft + 3 RPC refusals at least (the silent one by the deadline). */
        assert_true(after[i].auth_failures >= before[i].auth_failures + 5);
    }
}

/* One finished `laurel ctl` run: exit code and stderr. */
static int ctl(const struct fixture *f, char *err, size_t cap, ...)
{
    const char *bin = f->c.bin;
    char *argv[24], errpath[700], outpath[700];
    int n = 0, status;
    va_list ap;
    argv[n++] = (char *)bin;
    argv[n++] = "ctl";
    va_start(ap, cap);
    for (char *a; (a = va_arg(ap, char *)) != NULL && n < 23;) {
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    snprintf(errpath, sizeof errpath, "%s/ctl.err", f->c.dir);
    snprintf(outpath, sizeof outpath, "%s/ctl.out", f->c.dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, outpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, errpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    FILE *fp = fopen(errpath, "r");
    size_t k = fp ? fread(err, 1, cap - 1, fp) : 0;
    err[k] = '\0';
    if (fp) {
        fclose(fp);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* `laurel ctl status` without the key or with the wrong one fails, saying to pass
 * --cluster-key-file; with it, it prints the status. */
static void ctl_needs_the_key(void **state)
{
    struct fixture *f = *state;
    char err[4096], nodata[700];
    snprintf(nodata, sizeof nodata, "%s/no-such-data", f->c.dir);
    int code = ctl(f, err, sizeof err, "status", "--rpc", f->c.r[0].rpc, "--data", nodata,
                   "--timeout-ms", "3000", (char *)NULL);
    assert_int_not_equal(code, 0);
    assert_non_null(strstr(err, "--cluster-key-file"));
    code = ctl(f, err, sizeof err, "status", "--rpc", f->c.r[0].rpc, "--cluster-key-file",
               f->wrong_file, "--timeout-ms", "3000", (char *)NULL);
    assert_int_not_equal(code, 0);
    assert_non_null(strstr(err, "--cluster-key-file"));
    code = ctl(f, err, sizeof err, "status", "--rpc", f->c.r[0].rpc, "--cluster-key-file",
               f->key_file, "--timeout-ms", "3000", (char *)NULL);
    assert_int_equal(code, 0);
    setenv(PEERAUTH_ENV, KEY, 1);
    code =
        ctl(f, err, sizeof err, "status", "--rpc", f->c.r[1].rpc, "--data", nodata, (char *)NULL);
    unsetenv(PEERAUTH_ENV);
    assert_int_equal(code, 0);
}

/* A replica on a non-loopback address without a key refuses to start and says why. */
static void unkeyed_replica_off_loopback_refuses(void **state)
{
    struct fixture *f = *state;
    char data[700], logpath[700], buf[4096] = "";
    snprintf(data, sizeof data, "%s/offloop", f->c.dir);
    snprintf(logpath, sizeof logpath, "%s/offloop.log", f->c.dir);
    char *argv[] = {(char *)f->c.bin,
                    "node",
                    "--id",
                    "1",
                    "--region",
                    "eu",
                    "--data",
                    data,
                    "--peer",
                    "1=192.0.2.1:7001,192.0.2.1:8001",
                    NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    int status;
    assert_int_equal(posix_spawn(&pid, f->c.bin, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    FILE *fp = fopen(logpath, "r");
    assert_non_null(fp);
    size_t k = fread(buf, 1, sizeof buf - 1, fp);
    buf[k] = '\0';
    fclose(fp);
    assert_non_null(strstr(buf, "--cluster-key-file"));
}

/* A `laurel router` over the keyed region, with @key_file (NULL: no key), serving /readyz on
 * @http. It dies with the test. @return its pid. */
static pid_t router_spawn(const struct fixture *f, const char *key_file, char *http, size_t cap)
{
    char region[128], logpath[700];
    snprintf(http, cap, "127.0.0.1:%d", client_free_port());
    snprintf(region, sizeof region, "eu=%s,%s,%s", f->c.r[0].rpc, f->c.r[1].rpc, f->c.r[2].rpc);
    snprintf(logpath, sizeof logpath, "%s/router-%s.log", f->c.dir, key_file ? "k" : "nokey");
    const char *argv[16];
    int a = 0;
    argv[a++] = f->c.bin;
    argv[a++] = "router";
    argv[a++] = "--http";
    argv[a++] = http;
    argv[a++] = "--region";
    argv[a++] = region;
    argv[a++] = "--admin-key";
    argv[a++] = "cluster-key-test-admin";
    argv[a++] = "--timeout-ms"; /* a /readyz that reaches no leader says so after this */
    argv[a++] = "1000";
    if (key_file) {
        argv[a++] = "--cluster-key-file";
        argv[a++] = key_file;
    }
    argv[a] = NULL;
    pid_t pid = testlib_spawn(argv, logpath);
    assert_true(pid > 0);
    return pid;
}

/* The router at @http's count of failed peer handshakes (-1: no answer). */
static long long router_failures(const char *http)
{
    struct httpc_resp r;
    long long failures = -1;
    if (httpc_do(http, "GET", "/metrics", "", NULL, &r) == 0) {
        const char *m = "laurel_router_peer_auth_failures_total{";
        failures = 0;
        for (const char *p = r.body; p && (p = strstr(p, m)) != NULL; p++) {
            const char *sp = strchr(p, ' ');
            failures += sp ? atoll(sp + 1) : 0;
        }
        httpc_free(&r);
    }
    return failures;
}

/* The router at @http's /readyz status (0: no answer). A router that reaches no leader takes
 * its upstream timeout (--timeout-ms) to say so. */
static int router_ready(const char *http)
{
    struct httpc_resp r;
    int status = 0;
    if (httpc_do(http, "GET", "/readyz", "", NULL, &r) == 0) {
        status = r.status;
        httpc_free(&r);
    }
    return status;
}

/* Keyed replicas and a router without the key, or with the wrong one, cannot talk: the
 * router never becomes ready (and, holding a key, counts its failed handshakes; without one
 * it does no handshake, and the replicas count it); with the key it is ready. The replicas'
 * state does not move. */
static void routers_need_the_key(void **state)
{
    struct fixture *f = *state;
    struct snap before, after;
    const char *files[] = {NULL, f->wrong_file, f->key_file};
    take(f, 0, &before);
    for (unsigned k = 0; k < 3; k++) {
        char http[32];
        long long failures = -1;
        int status = 0;
        pid_t pid = router_spawn(f, files[k], http, sizeof http);
        /* Long enough for several reconnects of its pool and streams. */
        for (int tries = 0; tries < 100 && (failures <= 0 || tries < 20); tries++) {
            usleep(100 * 1000);
            failures = router_failures(http);
            if (k != 1 && failures >= 0 && tries >= 20) {
                break;
            }
        }
        for (int tries = 0; tries < 10 && status != 200; tries++) {
            status = router_ready(http);
            if (k != 2 || status == 200) {
                break;
            }
            usleep(500 * 1000);
        }
        failures = router_failures(http);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (k == 2) {
            assert_int_equal(status, 200);
        } else {
            assert_int_equal(status, 503);
        }
        if (k == 1) {
            assert_true(failures > 0);
        } else {
            assert_int_equal(failures, 0);
        }
    }
    take(f, 0, &after);
    assert_int_equal(after.digest, before.digest);
    assert_int_equal(after.term, before.term);
    assert_string_equal(after.voters, before.voters);
    assert_true(after.auth_failures > before.auth_failures);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strangers_are_refused),
        cmocka_unit_test(ctl_needs_the_key),
        cmocka_unit_test(routers_need_the_key),
        cmocka_unit_test(unkeyed_replica_off_loopback_refuses),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
