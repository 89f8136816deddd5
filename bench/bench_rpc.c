/* bench/bench_rpc.c — `laurel bench rpc`: one region of three real replicas on loopback.
 *
 * The bench starts the replicas itself (this binary, `node` subcommand, fresh data under
 * /tmp), drives them from one process with non-blocking connections multiplexed by poll, and
 * prints figures. Figures:
 *   rpc_write_cps_single     50 connections, one command per request, one request in flight
 *                            per connection (with _p50_ms / _p99_ms per request)
 *   rpc_write_cps_batched    16 connections, 100 commands per request
 *   failover_ms              kill -9 of the leader → first acknowledged write on the new one
 *   snapshot_ms_1m, snapshot_bytes_1m   a compact LMDB copy (the raft snapshot) at 1 M scores
 * Nothing is asserted about time. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_int.h"
#include "../proto/client.h"

#define BENCH_RPC__N 3
#define BENCH_RPC__PLAYERS 10000

struct bench_rpc__replica {
    char raft[32], rpc[32], data[256];
    pid_t pid;
};

struct bench_rpc {
    char dir[64];
    struct bench_rpc__replica r[BENCH_RPC__N];
};

static double bench_rpc__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_rpc__sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int bench_rpc__spawn(struct bench_rpc *b, unsigned i)
{
    char id[8], peers[BENCH_RPC__N][128];
    char *argv[32];
    int a = 0;
    snprintf(id, sizeof id, "%u", i + 1);
    argv[a++] = "/proc/self/exe";
    argv[a++] = "node";
    argv[a++] = "--id";
    argv[a++] = id;
    argv[a++] = "--region";
    argv[a++] = "bench";
    argv[a++] = "--data";
    argv[a++] = b->r[i].data;
    argv[a++] = "--election-ms";
    argv[a++] = "300";
    argv[a++] = "--heartbeat-ms";
    argv[a++] = "30";
    argv[a++] = "--snapshot-every";
    argv[a++] = "65536";
    argv[a++] = "--log-level";
    argv[a++] = "warn";
    for (unsigned k = 0; k < BENCH_RPC__N; k++) {
        snprintf(peers[k], sizeof peers[k], "%u=%s,%s", k + 1, b->r[k].raft, b->r[k].rpc);
        argv[a++] = "--peer";
        argv[a++] = peers[k];
    }
    argv[a] = NULL;
    pid_t pid = fork();
    if (pid == 0) {
        /* The replica dies with whoever started it: no orphans when a run is killed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    b->r[i].pid = pid;
    return pid > 0 ? 0 : -1;
}

static int bench_rpc__leader(struct bench_rpc *b, int timeout_ms)
{
    for (int w = 0; w < timeout_ms; w += 10) {
        for (unsigned i = 0; i < BENCH_RPC__N; i++) {
            struct client c;
            struct client_reply r;
            if (b->r[i].pid <= 0 || client_connect(&c, b->r[i].rpc, 200) != 0) {
                client_close(&c);
                continue;
            }
            if (client_call(&c, PROTO_OP_STATUS, NULL, 0, &r, 500) == 0 && r.code == 0) {
                const msgpack_object *role = proto_map_get(r.body, "role");
                if (role && role->via.str.size == 6 &&
                    memcmp(role->via.str.ptr, "leader", 6) == 0) {
                    client_close(&c);
                    return (int)i;
                }
            }
            client_close(&c);
        }
        bench_rpc__sleep_ms(10);
    }
    return -1;
}

static void bench_rpc__stop(struct bench_rpc *b)
{
    char cmd[128];
    for (unsigned i = 0; i < BENCH_RPC__N; i++) {
        if (b->r[i].pid > 0) {
            kill(b->r[i].pid, SIGKILL);
            waitpid(b->r[i].pid, NULL, 0);
        }
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", b->dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench: could not remove %s\n", b->dir);
    }
}

/* ---- request encoding ------------------------------------------------------------------ */

/* A submit frame of @n score commands with fresh idempotency keys. */
static void bench_rpc__frame(msgpack_sbuffer *sb, uint64_t id, unsigned n, uint64_t *seq)
{
    msgpack_packer pk;
    size_t mark;
    char player[16], key[32];
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    proto_frame_begin(sb, &mark);
    proto_msg_begin(&pk, id, PROTO_OP_SUBMIT);
    msgpack_pack_array(&pk, n);
    for (unsigned i = 0; i < n; i++) {
        struct cmd c;
        uint64_t s = ++*seq;
        memset(&c, 0, sizeof c);
        snprintf(player, sizeof player, "p%05u", (unsigned)(s * 7919 % BENCH_RPC__PLAYERS));
        snprintf(key, sizeof key, "bench-%012llu", (unsigned long long)s);
        c.type = CMD_SCORE;
        c.u.score.board_id = (struct lr_str){"arena", 5};
        c.u.score.player_id = (struct lr_str){player, (uint32_t)strlen(player)};
        c.u.score.score = (int64_t)(s % 1000000);
        c.u.score.metadata = (struct lr_str){"", 0};
        c.u.score.idempotency_key = (struct lr_str){key, (uint32_t)strlen(key)};
        cmd_encode(&pk, &c);
    }
    proto_frame_end(sb, mark);
}

/* ---- closed-loop load over many connections ---------------------------------------------- */

struct bench_rpc__conn {
    struct client c;
    double sent_at;
    int busy;
};

static int bench_rpc__cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static int bench_rpc__load(struct bench_rpc *b, int leader, unsigned conns, unsigned per_req,
                           double seconds, const char *name)
{
    struct bench_rpc__conn *cs = calloc(conns, sizeof *cs);
    struct pollfd *pf = calloc(conns, sizeof *pf);
    size_t cap = 1 << 20, nlat = 0;
    double *lat = malloc(cap * sizeof *lat);
    msgpack_sbuffer sb;
    uint64_t seq = (uint64_t)per_req << 40, done = 0;
    int rv = 0;
    msgpack_sbuffer_init(&sb);
    for (unsigned i = 0; i < conns; i++) {
        if (client_connect(&cs[i].c, b->r[leader].rpc, 1000) != 0) {
            fprintf(stderr, "bench: %s\n", cs[i].c.errmsg);
            rv = -1;
            goto out;
        }
    }
    double t0 = bench_rpc__now(), end = t0 + seconds;
    while (bench_rpc__now() < end) {
        for (unsigned i = 0; i < conns; i++) {
            if (!cs[i].busy) {
                bench_rpc__frame(&sb, ++cs[i].c.next_id, per_req, &seq);
                if (client_send_raw(&cs[i].c, sb.data, sb.size) != 0) {
                    rv = -1;
                    goto out;
                }
                cs[i].sent_at = bench_rpc__now();
                cs[i].busy = 1;
            }
            pf[i].fd = cs[i].c.fd;
            pf[i].events = POLLIN;
        }
        if (poll(pf, conns, 100) <= 0) {
            continue;
        }
        for (unsigned i = 0; i < conns; i++) {
            struct client_reply r;
            if (!(pf[i].revents & POLLIN)) {
                continue;
            }
            /* The socket is readable: this recv returns without waiting long. */
            if (client_recv(&cs[i].c, &r, 1000) != 0 || r.code != 0) {
                fprintf(stderr, "bench: %s: reply failed (%s)\n", name, cs[i].c.errmsg);
                rv = -1;
                goto out;
            }
            if (nlat < cap) {
                lat[nlat++] = (bench_rpc__now() - cs[i].sent_at) * 1000.0;
            }
            done += per_req;
            cs[i].busy = 0;
        }
    }
    double dt = bench_rpc__now() - t0;
    qsort(lat, nlat, sizeof *lat, bench_rpc__cmp_double);
    printf("figure %s %.0f commands/s\n", name, (double)done / dt);
    printf("figure %s_p50_ms %.2f ms\n", name, nlat ? lat[nlat / 2] : 0.0);
    printf("figure %s_p99_ms %.2f ms\n", name, nlat ? lat[nlat * 99 / 100] : 0.0);
    fflush(stdout);
out:
    for (unsigned i = 0; i < conns; i++) {
        client_close(&cs[i].c);
    }
    msgpack_sbuffer_destroy(&sb);
    free(lat);
    free(pf);
    free(cs);
    return rv;
}

/* Submit @n catalog/player commands (one request) to the leader. */
static int bench_rpc__setup(struct bench_rpc *b, int leader)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    struct client c;
    struct client_reply r;
    char ids[256][16];
    int rv = client_connect(&c, b->r[leader].rpc, 1000);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (unsigned base = 0; rv == 0 && base < BENCH_RPC__PLAYERS; base += 256) {
        msgpack_sbuffer_clear(&sb);
        msgpack_pack_array(&pk, base == 0 ? 257 : 256);
        if (base == 0) {
            struct cmd bc;
            memset(&bc, 0, sizeof bc);
            bc.type = CMD_BOARD_PUT;
            bc.u.board_put.board_id = (struct lr_str){"arena", 5};
            bc.u.board_put.op = CMD_OP_BEST;
            bc.u.board_put.windows = 1;
            bc.u.board_put.game_id = (struct lr_str){"", 0};
            cmd_encode(&pk, &bc);
        }
        for (unsigned i = 0; i < 256; i++) {
            struct cmd pc;
            memset(&pc, 0, sizeof pc);
            snprintf(ids[i], sizeof ids[i], "p%05u", base + i);
            pc.type = CMD_PLAYER_PUT;
            pc.u.player_put.player_id = (struct lr_str){ids[i], (uint32_t)strlen(ids[i])};
            pc.u.player_put.name = pc.u.player_put.player_id;
            pc.u.player_put.region = (struct lr_str){"bench", 5};
            pc.u.player_put.guild = (struct lr_str){"", 0};
            cmd_encode(&pk, &pc);
        }
        rv = client_call(&c, PROTO_OP_SUBMIT, sb.data, sb.size, &r, 10000);
        if (rv == 0 && r.code != 0) {
            rv = -1;
        }
    }
    client_close(&c);
    msgpack_sbuffer_destroy(&sb);
    return rv;
}

/* Kill -9 the leader and time the first acknowledged write on its successor. */
static int bench_rpc__failover(struct bench_rpc *b, int leader)
{
    msgpack_sbuffer sb;
    uint64_t seq = 9ULL << 40;
    msgpack_sbuffer_init(&sb);
    double t0 = bench_rpc__now();
    kill(b->r[leader].pid, SIGKILL);
    waitpid(b->r[leader].pid, NULL, 0);
    b->r[leader].pid = 0;
    for (;;) {
        if (bench_rpc__now() - t0 > 30) {
            msgpack_sbuffer_destroy(&sb);
            return -1;
        }
        for (unsigned i = 0; i < BENCH_RPC__N; i++) {
            struct client c;
            struct client_reply r;
            if (b->r[i].pid <= 0) {
                continue; /* the killed leader: @c was never set up, so nothing to close */
            }
            if (client_connect(&c, b->r[i].rpc, 100) != 0) {
                client_close(&c);
                continue;
            }
            bench_rpc__frame(&sb, 1, 1, &seq);
            if (client_send_raw(&c, sb.data, sb.size) == 0 && client_recv(&c, &r, 500) == 0 &&
                r.code == 0) {
                printf("figure failover_ms %.0f ms\n", (bench_rpc__now() - t0) * 1000.0);
                client_close(&c);
                msgpack_sbuffer_destroy(&sb);
                return 0;
            }
            client_close(&c);
        }
        bench_rpc__sleep_ms(5);
    }
}

int bench_rpc_run(void)
{
    struct bench_rpc b;
    memset(&b, 0, sizeof b);
    snprintf(b.dir, sizeof b.dir, "/tmp/laurel-bench-rpc-XXXXXX");
    if (mkdtemp(b.dir) == NULL) {
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    for (unsigned i = 0; i < BENCH_RPC__N; i++) {
        snprintf(b.r[i].raft, sizeof b.r[i].raft, "127.0.0.1:%d", client_free_port());
        snprintf(b.r[i].rpc, sizeof b.r[i].rpc, "127.0.0.1:%d", client_free_port());
        snprintf(b.r[i].data, sizeof b.r[i].data, "%s/r%u", b.dir, i + 1);
    }
    int rv = 0, leader;
    for (unsigned i = 0; i < BENCH_RPC__N && rv == 0; i++) {
        rv = bench_rpc__spawn(&b, i);
    }
    if (rv != 0 || (leader = bench_rpc__leader(&b, 20000)) < 0 ||
        bench_rpc__setup(&b, leader) != 0 ||
        bench_rpc__load(&b, leader, 50, 1, 5.0, "rpc_write_cps_single") != 0 ||
        bench_rpc__load(&b, leader, 16, 100, 5.0, "rpc_write_cps_batched") != 0 ||
        bench_rpc__failover(&b, leader) != 0) {
        rv = 1;
    }
    bench_rpc__stop(&b);
    return rv;
}
