/* tests/lib/tdev.c — see tdev.h. The dev process is our child; its replicas are its children
 * (they die with it: PR_SET_PDEATHSIG), so a crashed test leaves nothing behind. */
#include "tests/lib/tdev.h"

#include <ctype.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/client.h"
#include "proto/proto.h"
#include "tests/lib/testlib.h"

void tdev_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int tdev__read_manifest(struct tdev *d)
{
    char path[600];
    size_t i;
    json_t *p;
    snprintf(path, sizeof path, "%s/dev.json", d->dir);
    json_t *j = json_load_file(path, 0, NULL);
    if (j == NULL) {
        return -1;
    }
    d->nnodes = 0;
    json_array_foreach(json_object_get(j, "processes"), i, p)
    {
        const char *role = json_string_value(json_object_get(p, "role"));
        if (role == NULL || (strcmp(role, "node") != 0 && strcmp(role, "meta") != 0) ||
            d->nnodes == TDEV_MAX_NODES) {
            continue;
        }
        struct tdev_node *n = &d->node[d->nnodes++];
        memset(n, 0, sizeof *n);
        snprintf(n->region, sizeof n->region, "%s", tdev_str(p, "region"));
        n->replica = (unsigned)tdev_int(p, "replica");
        n->pid = (pid_t)tdev_int(p, "pid");
        snprintf(n->rpc, sizeof n->rpc, "%s", tdev_str(p, "rpc") ? tdev_str(p, "rpc") : "");
        snprintf(n->raft, sizeof n->raft, "%s", tdev_str(p, "raft") ? tdev_str(p, "raft") : "");
    }
    json_decref(j);
    return d->nnodes > 0 ? 0 : -1;
}

/* DIR/keys.json with the test keys, 0600, in the form `laurel dev` writes: dev reads its keys
 * from there, so no key is on any command line (test_dev checks /proc/PID/cmdline). */
static int tdev__write_keys(const struct tdev *d)
{
    char path[600];
    snprintf(path, sizeof path, "%s/keys.json", d->dir);
    json_t *j = json_pack("{s:s,s:s}", "admin_key", TDEV_ADMIN, "api_key", TDEV_API);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rv = j && fd >= 0 ? json_dumpfd(j, fd, 0) : -1;
    if (fd >= 0) {
        close(fd);
    }
    json_decref(j);
    return rv;
}

int tdev_start(struct tdev *d, const char *regions, unsigned replicas, int ready_ms)
{
    char *dir = testlib_tmpdir(), nrep[16];
    memset(d, 0, sizeof *d);
    if (dir == NULL) {
        return -1;
    }
    snprintf(d->dir, sizeof d->dir, "%s", dir);
    free(dir);
    d->bin = getenv("LAUREL_BIN") ? getenv("LAUREL_BIN") : "build/laurel";
    snprintf(d->http, sizeof d->http, "127.0.0.1:%d", client_free_port());
    snprintf(nrep, sizeof nrep, "%u", replicas);
    if (tdev__write_keys(d) != 0) {
        fprintf(stderr, "# tdev: cannot write %s/keys.json\n", d->dir);
        return -1;
    }
    d->pid = fork();
    if (d->pid < 0) {
        return -1;
    }
    if (d->pid == 0) {
        char log[600];
        /* Dies with the test, and its replicas with it (theirs is set by `laurel dev`). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        snprintf(log, sizeof log, "%s/dev.out", d->dir);
        if (freopen(log, "a", stdout) == NULL || freopen(log, "a", stderr) == NULL) {
            _exit(126);
        }
        execl(d->bin, d->bin, "dev", "--data", d->dir, "--http", d->http, "--regions", regions,
              "--replicas", nrep, (char *)NULL);
        _exit(127);
    }
    for (int waited = 0; waited < ready_ms; waited += 100) {
        struct httpc_resp r;
        if (httpc_do(d->http, "GET", "/readyz", "", NULL, &r) == 0) {
            int s = r.status;
            httpc_free(&r);
            char path[600], errmsg[LR_ERRMSG_SIZE];
            snprintf(path, sizeof path, "%s/keys.json", d->dir);
            if (s == 200 && tdev__read_manifest(d) == 0 &&
                peerauth_key_load(&d->key, path, errmsg) == 0) {
                return 0;
            }
        }
        if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
            fprintf(stderr, "# tdev: laurel dev exited early; see %s/dev.out\n", d->dir);
            d->pid = 0;
            return -1;
        }
        tdev_sleep_ms(100);
    }
    fprintf(stderr, "# tdev: not ready after %d ms; see %s/dev.out\n", ready_ms, d->dir);
    return -1;
}

int tdev_router_start(struct tdev *d, struct tdev_router *rt)
{
    return tdev_router_start_with(d, rt, NULL);
}

/* Start the router on rt->http (already chosen) and wait for its /readyz. */
static int tdev__router_run(struct tdev *d, struct tdev_router *rt, const char *const *extra)
{
    char path[600], keys[600], args[TDEV_MAX_NODES][300], *argv[2 * TDEV_MAX_NODES + 32];
    int a = 0, nargs = 0;
    argv[a++] = (char *)d->bin;
    argv[a++] = "router";
    argv[a++] = "--http";
    argv[a++] = rt->http;
    /* One --region per region (and --meta), each with its replicas in dev.json's order. */
    for (unsigned i = 0; i < d->nnodes; i++) {
        int first = 1;
        for (unsigned k = 0; k < i && first; k++) {
            first = strcmp(d->node[k].region, d->node[i].region) != 0;
        }
        if (!first) {
            continue;
        }
        int meta = strcmp(d->node[i].region, "meta") == 0;
        size_t len = meta ? (size_t)snprintf(args[nargs], sizeof args[0], "%s", "")
                          : (size_t)snprintf(args[nargs], sizeof args[0], "%s=", d->node[i].region);
        for (unsigned k = i; k < d->nnodes; k++) {
            if (strcmp(d->node[k].region, d->node[i].region) == 0 && len < sizeof args[0]) {
                len += (size_t)snprintf(args[nargs] + len, sizeof args[0] - len, "%s%s",
                                        k == i ? "" : ",", d->node[k].rpc);
            }
        }
        argv[a++] = meta ? "--meta" : "--region";
        argv[a++] = args[nargs++];
    }
    snprintf(keys, sizeof keys, "%s/keys.json", d->dir);
    argv[a++] = "--keys-file";
    argv[a++] = keys;
    argv[a++] = "--cluster-key-file";
    argv[a++] = keys;
    for (int i = 0; extra && extra[i] && i < 16; i++) {
        argv[a++] = (char *)extra[i];
    }
    argv[a] = NULL;
    rt->pid = fork();
    if (rt->pid < 0) {
        return -1;
    }
    if (rt->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* dies with the test, as the dev process does */
        snprintf(path, sizeof path, "%s/router-%d.log", d->dir, (int)getpid());
        if (freopen(path, "a", stdout) == NULL || freopen(path, "a", stderr) == NULL) {
            _exit(126);
        }
        execv(d->bin, argv);
        _exit(127);
    }
    for (int waited = 0; waited < 10000; waited += 100) {
        struct httpc_resp r;
        if (httpc_do(rt->http, "GET", "/readyz", "", NULL, &r) == 0) {
            int s = r.status;
            httpc_free(&r);
            if (s == 200) {
                return 0;
            }
        }
        tdev_sleep_ms(100);
    }
    fprintf(stderr, "# tdev: the extra router on %s is not ready; see %s\n", rt->http, d->dir);
    tdev_router_stop(rt);
    return -1;
}

int tdev_router_start_with(struct tdev *d, struct tdev_router *rt, const char *const *extra)
{
    memset(rt, 0, sizeof *rt);
    snprintf(rt->http, sizeof rt->http, "127.0.0.1:%d", client_free_port());
    return tdev__router_run(d, rt, extra);
}

int tdev_router_restart(struct tdev *d, struct tdev_router *rt, const char *const *extra)
{
    rt->pid = 0;
    return tdev__router_run(d, rt, extra);
}

void tdev_router_stop(struct tdev_router *rt)
{
    if (rt->pid > 0) {
        kill(rt->pid, SIGTERM);
        waitpid(rt->pid, NULL, 0);
        rt->pid = 0;
    }
}

void tdev_stop(struct tdev *d)
{
    if (d->pid > 0) {
        kill(d->pid, SIGTERM);
        int w = 0;
        while (waitpid(d->pid, NULL, WNOHANG) == 0 && w++ < 100) {
            tdev_sleep_ms(100);
        }
        if (w > 100) {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, NULL, 0);
        }
        d->pid = 0;
    }
    if (getenv("LAUREL_KEEP") == NULL) {
        testlib_rmrf(d->dir);
    } else {
        fprintf(stderr, "# kept %s\n", d->dir);
    }
}

/* Has the dev process died? Then say so once, with the end of its output (a sanitizer's
 * report, a crash), and stop waiting for it. */
static int tdev__dead(struct tdev *d)
{
    int status;
    if (d->pid <= 0) {
        return 1;
    }
    if (waitpid(d->pid, &status, WNOHANG) != d->pid) {
        return 0;
    }
    d->pid = 0;
    fprintf(stderr, "# tdev: laurel dev died (%s %d); the end of %s/dev.out:\n",
            WIFSIGNALED(status) ? "signal" : "exit",
            WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), d->dir);
    char path[600], buf[8192];
    snprintf(path, sizeof path, "%s/dev.out", d->dir);
    FILE *f = fopen(path, "r");
    if (f) {
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        fseek(f, size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0, SEEK_SET);
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fputs(buf, stderr);
        fclose(f);
    }
    return 1;
}

int tdev_req(struct tdev *d, const char *method, const char *path, const char *auth,
             const char *body, struct httpc_resp *r)
{
    for (int i = 0; i < 50 && !tdev__dead(d); i++) {
        if (httpc_do(d->http, method, path, auth, body, r) == 0) {
            return r->status;
        }
        tdev_sleep_ms(100);
    }
    memset(r, 0, sizeof *r);
    return -1;
}

int tdev_reqj(struct tdev *d, const char *method, const char *path, const char *auth, json_t *body,
              struct httpc_resp *r)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    int rv = tdev_req(d, method, path, auth, s, r);
    free(s);
    return rv;
}

int tdev_status(struct tdev *d, const char *method, const char *path, const char *auth,
                const char *body)
{
    struct httpc_resp r;
    int s = tdev_req(d, method, path, auth, body, &r);
    httpc_free(&r);
    return s;
}

void tdev_assert_error(const struct httpc_resp *r, int status, const char *code, const char *what)
{
    if (r->status != status) {
        fail_msg("%s: status %d, expected %d; body %s", what, r->status, status,
                 r->body ? r->body : "(none)");
    }
    json_t *e = json_object_get(r->json, "error");
    const char *c = json_string_value(json_object_get(e, "code"));
    const char *m = json_string_value(json_object_get(e, "message"));
    if (!json_is_object(r->json) || json_object_size(r->json) != 1 || c == NULL || m == NULL ||
        m[0] == '\0') {
        fail_msg("%s: error body is not {\"error\":{\"code\",\"message\"}}: %s", what,
                 r->body ? r->body : "(none)");
    }
    if (strcmp(c, code) != 0) {
        fail_msg("%s: error code %s, expected %s (%s)", what, c, code, m);
    }
}

int tdev_node_index(const struct tdev *d, const char *region, unsigned replica)
{
    for (unsigned i = 0; i < d->nnodes; i++) {
        if (strcmp(d->node[i].region, region) == 0 && d->node[i].replica == replica) {
            return (int)i;
        }
    }
    return -1;
}

/* A replica's own view: its role and term. */
int tdev_connect(const struct tdev *d, unsigned i, struct client *cl, int timeout_ms)
{
    if (client_connect(cl, d->node[i].rpc, timeout_ms) != 0 ||
        client_auth(cl, &d->key, timeout_ms) != 0) {
        return -1; /* the caller closes @cl either way, as after client_connect */
    }
    return 0;
}

static int tdev__status(const struct tdev *d, unsigned i, char *role, size_t rolelen,
                        uint64_t *term)
{
    struct client cl;
    struct client_reply rep;
    int rv = tdev_connect(d, i, &cl, 500);
    if (rv == 0) {
        rv = client_call(&cl, PROTO_OP_STATUS, NULL, 0, &rep, 1000);
    }
    if (rv == 0 && rep.code == 0) {
        const msgpack_object *o;
        if ((o = proto_map_get(rep.body, "role")) != NULL && o->type == MSGPACK_OBJECT_STR) {
            snprintf(role, rolelen, "%.*s", (int)o->via.str.size, o->via.str.ptr);
        }
        if ((o = proto_map_get(rep.body, "term")) != NULL &&
            o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            *term = o->via.u64;
        }
    }
    client_close(&cl);
    return rv == 0 && rep.code == 0 ? 0 : -1;
}

int tdev_leader(struct tdev *d, const char *region, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        int best = -1;
        uint64_t best_term = 0;
        for (unsigned i = 0; i < d->nnodes; i++) {
            char role[16] = "";
            uint64_t term = 0;
            if (d->node[i].killed || strcmp(d->node[i].region, region) != 0 ||
                tdev__status(d, i, role, sizeof role, &term) != 0) {
                continue;
            }
            if (strcmp(role, "leader") == 0 && (best < 0 || term > best_term)) {
                best = (int)i;
                best_term = term;
            }
        }
        if (best >= 0) {
            return best;
        }
        tdev_sleep_ms(50);
    }
    return -1;
}

void tdev_kill9(struct tdev *d, unsigned i)
{
    kill(d->node[i].pid, SIGKILL);
    d->node[i].killed = 1;
}

int tdev_is_time(const char *s)
{
    static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (s == NULL || strlen(s) != sizeof pat - 1) {
        return 0;
    }
    for (size_t i = 0; pat[i]; i++) {
        if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i]) {
            return 0;
        }
    }
    return 1;
}

int64_t tdev_int(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

const char *tdev_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

double tdev_num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}
