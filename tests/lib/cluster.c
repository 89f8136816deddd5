/* tests/lib/cluster.c — see cluster.h. */
#include "tests/lib/cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/testlib.h"

static void tcluster__sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

unsigned tcluster_add_replica(struct tcluster *c)
{
    unsigned i = c->n++;
    struct tcluster_replica *r = &c->r[i];
    memset(r, 0, sizeof *r);
    r->id = i + 1;
    snprintf(r->raft, sizeof r->raft, "%s:%d", c->host, client_free_port());
    snprintf(r->rpc, sizeof r->rpc, "%s:%d", c->host, client_free_port());
    char dir[sizeof c->dir];
    memcpy(dir, c->dir, sizeof dir);
    snprintf(r->data, sizeof r->data, "%s/r%llu", dir, (unsigned long long)r->id);
    snprintf(r->log, sizeof r->log, "%s/r%llu.log", dir, (unsigned long long)r->id);
    r->joined = i >= c->nvoters;
    return i;
}

int tcluster_spawn(struct tcluster *c, unsigned i)
{
    struct tcluster_replica *r = &c->r[i];
    char *argv[48], peers[TCLUSTER_MAX][128], id[16], election[16], heartbeat[16], every[16],
        trailing[16], state_max[24];
    int a = 0;
    snprintf(id, sizeof id, "%llu", (unsigned long long)r->id);
    snprintf(election, sizeof election, "%u", c->election_ms);
    snprintf(heartbeat, sizeof heartbeat, "%u", c->election_ms / 10);
    argv[a++] = (char *)c->bin;
    argv[a++] = "node";
    argv[a++] = "--id";
    argv[a++] = id;
    if (strcmp(c->region, "meta") == 0) { /* the metadata group (docs/global-state.md) */
        argv[a++] = "--role";
        argv[a++] = "meta";
    } else {
        argv[a++] = "--region";
        argv[a++] = c->region;
    }
    argv[a++] = "--data";
    argv[a++] = r->data;
    argv[a++] = "--election-ms";
    argv[a++] = election;
    argv[a++] = "--heartbeat-ms";
    argv[a++] = heartbeat;
    snprintf(every, sizeof every, "%u", c->snapshot_every ? c->snapshot_every : 256);
    argv[a++] = "--snapshot-every";
    argv[a++] = every;
    if (c->snapshot_trailing) {
        snprintf(trailing, sizeof trailing, "%u", c->snapshot_trailing);
        argv[a++] = "--snapshot-trailing";
        argv[a++] = trailing;
    }
    for (unsigned k = 0; k < c->n; k++) {
        if (k < c->nvoters || k == i) {
            snprintf(peers[k], sizeof peers[k], "%llu=%s,%s", (unsigned long long)c->r[k].id,
                     c->r[k].raft, c->r[k].rpc);
            argv[a++] = "--peer";
            argv[a++] = peers[k];
        }
    }
    if (c->state_max) {
        snprintf(state_max, sizeof state_max, "%llu", c->state_max);
        argv[a++] = "--state-max";
        argv[a++] = state_max;
    }
    if (r->joined) {
        argv[a++] = "--join";
    }
    for (unsigned k = 0; k < c->nargs && a < 44; k++) {
        argv[a++] = (char *)c->args[k];
    }
    if (getenv("LAUREL_NODE_LOG")) {
        argv[a++] = "--log-level";
        argv[a++] = getenv("LAUREL_NODE_LOG");
    }
    argv[a] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        /* The replica dies with whoever started it: no orphans when a run is killed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(r->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        if (r->env[0] != '\0') {
            putenv(r->env);
        }
        execv(c->bin, argv);
        _exit(127);
    }
    r->pid = pid;
    return 0;
}

int tcluster_start(struct tcluster *c, unsigned nvoters, const char *region)
{
    return tcluster_start_on(c, nvoters, region, "127.0.0.1");
}

int tcluster_start_on(struct tcluster *c, unsigned nvoters, const char *region, const char *host)
{
    if (tcluster_init_on(c, nvoters, region, host) != 0) {
        return -1;
    }
    for (unsigned i = 0; i < nvoters; i++) {
        if (tcluster_spawn(c, i) != 0) {
            return -1;
        }
    }
    return 0;
}

int tcluster_init_on(struct tcluster *c, unsigned nvoters, const char *region, const char *host)
{
    char *dir = testlib_tmpdir();
    memset(c, 0, sizeof *c);
    if (dir == NULL) {
        return -1;
    }
    snprintf(c->host, sizeof c->host, "%s", host);
    snprintf(c->dir, sizeof c->dir, "%s", dir);
    free(dir);
    snprintf(c->region, sizeof c->region, "%s", region);
    c->bin = getenv("LAUREL_BIN") ? getenv("LAUREL_BIN") : "build/laurel";
    c->nvoters = nvoters;
    c->election_ms = 300;
    for (unsigned i = 0; i < nvoters; i++) {
        tcluster_add_replica(c);
    }
    return 0;
}

int tcluster_start_snapshots(struct tcluster *c, unsigned nvoters, const char *region,
                             unsigned every, unsigned trailing)
{
    if (tcluster_init_on(c, nvoters, region, "127.0.0.1") != 0) {
        return -1;
    }
    c->snapshot_every = every;
    c->snapshot_trailing = trailing;
    for (unsigned i = 0; i < nvoters; i++) {
        if (tcluster_spawn(c, i) != 0) {
            return -1;
        }
    }
    return 0;
}

void tcluster_kill(struct tcluster *c, unsigned i, int sig)
{
    if (c->r[i].pid > 0) {
        kill(c->r[i].pid, sig);
        if (sig != SIGSTOP && sig != SIGCONT) {
            waitpid(c->r[i].pid, NULL, 0);
            c->r[i].pid = 0;
        }
    }
}

int tcluster_status(struct tcluster *c, unsigned i, uint64_t *applied, uint64_t *digest, char *role,
                    size_t rolelen)
{
    struct client cl;
    struct client_reply rep;
    int rv = tcluster_connect(c, i, &cl, 500);
    if (rv == 0) {
        rv = client_call(&cl, PROTO_OP_STATUS, NULL, 0, &rep, 1000);
    }
    if (rv == 0 && rep.code == 0) {
        const msgpack_object *o;
        if ((o = proto_map_get(rep.body, "applied_index")) != NULL && applied) {
            *applied = o->via.u64;
        }
        if ((o = proto_map_get(rep.body, "digest")) != NULL && digest) {
            *digest = o->via.u64;
        }
        if ((o = proto_map_get(rep.body, "role")) != NULL && role) {
            snprintf(role, rolelen, "%.*s", (int)o->via.str.size, o->via.str.ptr);
        }
    }
    client_close(&cl);
    return rv == 0 && rep.code == 0 ? 0 : -1;
}

int tcluster_connect(struct tcluster *c, unsigned i, struct client *cl, int timeout_ms)
{
    if (client_connect(cl, c->r[i].rpc, timeout_ms) != 0 ||
        (c->key != NULL && client_auth(cl, c->key, timeout_ms) != 0)) {
        return -1; /* the caller closes @cl either way, as after client_connect */
    }
    return 0;
}

int tcluster_leader(struct tcluster *c, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        for (unsigned i = 0; i < c->n; i++) {
            char role[16] = "";
            if (c->r[i].pid > 0 && tcluster_status(c, i, NULL, NULL, role, sizeof role) == 0 &&
                strcmp(role, "leader") == 0) {
                return (int)i;
            }
        }
        tcluster__sleep_ms(50);
    }
    return -1;
}

int tcluster_converged(struct tcluster *c, int timeout_ms, uint64_t *applied, uint64_t *digest)
{
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        uint64_t a0 = 0, d0 = 0;
        int ok = 1, first = 1;
        for (unsigned i = 0; i < c->n && ok; i++) {
            uint64_t a = 0, d = 0;
            if (c->r[i].pid <= 0) {
                continue;
            }
            if (tcluster_status(c, i, &a, &d, NULL, 0) != 0) {
                ok = 0;
            } else if (first) {
                a0 = a;
                d0 = d;
                first = 0;
            } else if (a != a0 || d != d0) {
                ok = 0;
            }
        }
        if (ok && !first) {
            *applied = a0;
            *digest = d0;
            return 0;
        }
        tcluster__sleep_ms(100);
    }
    for (unsigned i = 0; i < c->n; i++) {
        uint64_t a = 0, d = 0;
        char role[16] = "?";
        int rv = c->r[i].pid > 0 ? tcluster_status(c, i, &a, &d, role, sizeof role) : -2;
        fprintf(stderr, "# replica %u: pid %d status %d role %s applied %llu digest %llx\n", i,
                (int)c->r[i].pid, rv, role, (unsigned long long)a, (unsigned long long)d);
    }
    return -1;
}

void tcluster_stop(struct tcluster *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        if (c->r[i].pid > 0) {
            kill(c->r[i].pid, SIGCONT);
            kill(c->r[i].pid, SIGTERM);
        }
    }
    for (unsigned i = 0; i < c->n; i++) {
        if (c->r[i].pid > 0) {
            for (int w = 0; w < 50 && waitpid(c->r[i].pid, NULL, WNOHANG) == 0; w++) {
                tcluster__sleep_ms(100);
            }
            kill(c->r[i].pid, SIGKILL);
            waitpid(c->r[i].pid, NULL, 0);
            c->r[i].pid = 0;
        }
    }
    if (getenv("LAUREL_KEEP") == NULL) {
        testlib_rmrf(c->dir);
    } else {
        fprintf(stderr, "# kept %s\n", c->dir);
    }
}
