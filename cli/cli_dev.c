/* cli/cli_dev.c — `laurel dev`: a whole cluster on this machine (API.md, "Running it").
 *
 * One real `laurel node` process per replica, the router in this process's foreground loop.
 * Its raft groups: every region, then the metadata group (docs/global-state.md), `laurel node
 * --role meta` processes with data in <data>/meta-<n>. The metadata group has as many
 * replicas as each region (--replicas): one in the default single-replica cluster, whose
 * regions survive no loss either and which starts fastest that way; three with --replicas 3,
 * so that killing any one replica leaves a majority in every group, as the chaos tests need.
 *
 * <data>/cluster.json is the cluster file (conf/cluster.h) of this cluster, and every replica
 * starts from it (`laurel node --config`), as on real hosts. Ports are picked once and kept
 * there, because a replica's raft address is
 * part of the raft configuration and must survive restarts: the regions' as a whole (all kept
 * or all new), the metadata group's apart, so a cluster.json written before dev started one
 * keeps its regions' ports and gains the group's. Keys are generated once (unless given) and
 * kept in <data>/keys.json (0600), which the router reads as `laurel router --keys-file` does
 * (docs/security.md, "API keys"): no key is ever on a command line dev builds, and an operator
 * may rotate keys by listing several in the file. <data>/dev.json lists every process for tools
 * and chaos tests. Everything dev and its replicas create is private to the user (umask 077).
 * SIGINT/SIGTERM stop the router and every replica. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "../proto/client.h"
#include "../lib/addr.h"
#include "../lib/certs.h"
#include "../lib/err.h"
#include "../lib/log.h"
#include "../lib/sys.h"
#include "../router/keyset.h"
#include "../router/router.h"
#include "../router/ws.h"

#define DEV__MAX_REPLICAS 5
#define DEV__META(d) ((d)->nregions)

struct cli_dev__replica {
    char raft[32], rpc[32];
    pid_t pid;
};

/* The raft groups dev runs, each of `replicas` processes: the regions at 0..nregions-1, then
 * the metadata group at index nregions (DEV__META), whose id is "meta". */
struct dev {
    char data[3000];
    char http[64];
    char group[ROUTER_MAX_REGIONS + 1][65];
    unsigned nregions, ngroups, replicas;
    struct cli_dev__replica r[ROUTER_MAX_REGIONS + 1][DEV__MAX_REPLICAS];
    struct keyset keys;  /* read back from keys.json */
    char key_file[3100]; /* DATA/keys.json: replicas get its path, never the key itself */
    struct router *router;
    uv_signal_t sigint, sigterm;
    enum log_format log_format; /* of every process (--log-format) */
    int tls;                    /* --tls: https and wss with the files of certs */
    struct certs_dev certs;     /* DATA/tls/ (lib/certs.h), with --tls */
};

static void cli_dev__usage(FILE *f)
{
    fprintf(f,
            "usage: laurel dev [--http HOST:PORT] [--data DIR] [--regions a,b,c] [--replicas N]\n"
            "                  [--admin-key K] [--api-key K] [--log-format text|json]\n"
            "                  [--cors-origins LIST] [--tls]\n"
            "\n"
            "Starts a whole cluster here: one `laurel node` process per replica of each region\n"
            "and of the metadata group (`laurel node --role meta`, as many replicas as a region)\n"
            "and a router in the foreground. Defaults: --http 127.0.0.1:8080, --data\n"
            "./laurel-data, --regions local, --replicas 1. Keys not given are generated once,\n"
            "printed and kept in DATA/keys.json (0600; the forms of `laurel router --keys-file`,\n"
            "so several keys of a role may be listed there to rotate one). --admin-key and\n"
            "--api-key replace the file's key of their role, and show in ps: prefer the file.\n"
            "DATA/dev.json lists every process; replica logs are DATA/<region>-<n>.log and\n"
            "DATA/meta-<n>.log. --log-format applies to the router and every replica\n"
            "(docs/operations.md, Logs). --cors-origins goes to the router as `laurel router`\n"
            "takes it (default *). Ctrl-C stops everything.\n"
            "  --tls   serve https and wss (TLS 1.2 or later) on --http instead of http and ws,\n"
            "          with a private CA and a server certificate for localhost, 127.0.0.1, ::1\n"
            "          and the --http host, made under DATA/tls/ (ca.pem, ca-key.pem,\n"
            "          server.pem, server-key.pem; keys 0600) and reused while they hold.\n"
            "          Clients trust DATA/tls/ca.pem: curl --cacert, laurel ctl --cacert.\n");
}

static int cli_dev__random_key(char *out, size_t n)
{
    unsigned char b[24];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, sizeof b) != (ssize_t)sizeof b) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    close(fd);
    for (size_t i = 0; i < sizeof b && 2 * i + 2 < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    }
    return 0;
}

static int cli_dev__write_json(const char *path, json_t *j, int mode)
{
    char tmp[3100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        return -1;
    }
    /* A leftover tmp keeps its old mode through O_TRUNC. (fchmod ignores the umask: every
     * file here is the user's alone, 0600.) */
    if (fchmod(fd, (mode_t)mode) != 0) {
        close(fd);
        return -1;
    }
    int rv = json_dumpfd(j, fd, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (rv == 0) {
        rv = write(fd, "\n", 1) == 1 ? 0 : -1;
    }
    close(fd);
    return rv == 0 ? rename(tmp, path) : -1;
}

/* Keys: a flag replaces keys.json's keys of its role; a role without any there (in either
 * form) gets a new random key. keys.json is rewritten only when that changed it, keeping the
 * members it does not know (other readers' keys), and is 0600 either way. Then the router's
 * own parser reads it into d->keys, so dev refuses exactly what `laurel router --keys-file`
 * would. 0, or -1 with a line on stderr. */
static int cli_dev__keys(struct dev *d, const char *admin, const char *api)
{
    const struct {
        const char *flag, *one, *many;
    } role[] = {{admin, "admin_key", "admin_keys"}, {api, "api_key", "api_keys"}};
    char path[3100], key[65], errmsg[LR_ERRMSG_SIZE];
    json_error_t jerr;
    int changed = 0, rv = 0;
    snprintf(path, sizeof path, "%s/keys.json", d->data);
    json_t *j = access(path, F_OK) == 0 ? json_load_file(path, 0, &jerr) : json_object();
    if (!json_is_object(j)) {
        fprintf(stderr, "laurel dev: %s: %s; fix or remove it\n", path,
                j ? "not a JSON object" : jerr.text);
        json_decref(j);
        return -1;
    }
    for (size_t i = 0; rv == 0 && i < sizeof role / sizeof role[0]; i++) {
        const char *v = role[i].flag;
        if (v == NULL && (json_object_get(j, role[i].one) || json_object_get(j, role[i].many))) {
            continue;
        }
        if (v == NULL) {
            rv = cli_dev__random_key(key, sizeof key);
            v = key;
        }
        json_object_del(j, role[i].many); /* -1 when absent: nothing to do */
        rv = rv ? rv : json_object_set_new(j, role[i].one, json_string(v));
        changed = 1;
    }
    /* The cluster key (proto/peerauth.h): kept when there is one, else a new one. */
    const char *ck = json_string_value(json_object_get(j, "cluster_key"));
    if (rv == 0 && (ck == NULL || ck[0] == '\0')) {
        rv = cli_dev__random_key(key, sizeof key);
        rv = rv ? rv : json_object_set_new(j, "cluster_key", json_string(key));
        changed = 1;
    }
    snprintf(d->key_file, sizeof d->key_file, "%s", path);
    if (rv == 0 && changed) {
        rv = cli_dev__write_json(path, j, 0600);
    }
    json_decref(j);
    if (rv != 0 || chmod(path, 0600) != 0) {
        fprintf(stderr, "laurel dev: cannot write %s (a key must be UTF-8)\n", path);
        return -1;
    }
    keyset_init(&d->keys);
    if (keyset_load_file(&d->keys, path, errmsg) != 0) {
        fprintf(stderr, "laurel dev: %s\n", errmsg);
        return -1;
    }
    return 0;
}

/* --tls: the CA and server certificate under DATA/tls/, kept from an earlier run while they
 * hold (lib/certs.h), so clients that trust ca.pem keep trusting it across restarts. 0, or -1
 * with a line on stderr. */
static int cli_dev__certs(struct dev *d)
{
    char dir[3100], host[ADDR_HOST_MAX], errmsg[LR_ERRMSG_SIZE];
    uint16_t port;
    snprintf(dir, sizeof dir, "%s/tls", d->data);
    if (addr_split(d->http, host, sizeof host, &port) != 0) {
        fprintf(stderr, "laurel dev: --http %s is not HOST:PORT\n", d->http);
        return -1;
    }
    if (certs_dev_ensure(dir, host, &d->certs, errmsg) != 0) {
        fprintf(stderr, "laurel dev: %s\n", errmsg);
        return -1;
    }
    fprintf(stderr, "laurel dev: %s CA and %s server certificate in %s\n",
            d->certs.made_ca ? "made a" : "kept the", d->certs.made_cert ? "made a" : "kept the",
            dir);
    return 0;
}

/* Group @g's addresses from @saved, a group of an earlier cluster.json ({"id","replicas":
 * [{"id","raft","rpc"}]}), when it has the same id and number of replicas: 1 if taken, else
 * 0 (and whatever was copied is replaced by the caller). */
static int cli_dev__layout_take(struct dev *d, unsigned g, json_t *saved)
{
    json_t *reps = json_object_get(saved, "replicas");
    const char *id = json_string_value(json_object_get(saved, "id"));
    if (id == NULL || strcmp(id, d->group[g]) != 0 || !json_is_array(reps) ||
        json_array_size(reps) != d->replicas) {
        return 0;
    }
    for (unsigned i = 0; i < d->replicas; i++) {
        struct cli_dev__replica *r = &d->r[g][i];
        const char *raft = json_string_value(json_object_get(json_array_get(reps, i), "raft"));
        const char *rpc = json_string_value(json_object_get(json_array_get(reps, i), "rpc"));
        if (raft == NULL || rpc == NULL || strlen(raft) >= sizeof r->raft ||
            strlen(rpc) >= sizeof r->rpc) {
            return 0;
        }
        snprintf(r->raft, sizeof r->raft, "%s", raft);
        snprintf(r->rpc, sizeof r->rpc, "%s", rpc);
    }
    return 1;
}

/* Is @addr already some replica's raft or RPC address? */
static int cli_dev__layout_has(const struct dev *d, const char *addr)
{
    for (unsigned g = 0; g < d->ngroups; g++) {
        for (unsigned i = 0; i < d->replicas; i++) {
            if (strcmp(d->r[g][i].raft, addr) == 0 || strcmp(d->r[g][i].rpc, addr) == 0) {
                return 1;
            }
        }
    }
    return 0;
}

/* A free loopback address into @out (@cap bytes) that no replica of the layout has: none of
 * the kept replicas runs yet, so the kernel may well offer one of their ports. 0, or -1. */
static int cli_dev__layout_pick(const struct dev *d, char *out, size_t cap)
{
    char addr[32];
    for (int tries = 0; tries < 100; tries++) {
        int port = client_free_port();
        snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
        if (port > 0 && !cli_dev__layout_has(d, addr)) {
            snprintf(out, cap, "%s", addr);
            return 0;
        }
    }
    return -1;
}

static json_t *cli_dev__layout_group(const struct dev *d, unsigned g)
{
    json_t *reps = json_array();
    for (unsigned i = 0; i < d->replicas; i++) {
        json_array_append_new(reps, json_pack("{s:i,s:s,s:s}", "id", i + 1, "raft", d->r[g][i].raft,
                                              "rpc", d->r[g][i].rpc));
    }
    return json_pack("{s:s,s:o}", "id", d->group[g], "replicas", reps);
}

/* Ports: kept from an earlier run when the layout is the same (the regions as a whole, the
 * metadata group apart), else picked anew and the file rewritten. */
static int cli_dev__layout(struct dev *d)
{
    char path[3100];
    int keep[ROUTER_MAX_REGIONS + 1] = {0};
    snprintf(path, sizeof path, "%s/cluster.json", d->data);
    json_t *j = json_load_file(path, 0, NULL);
    if (j) {
        json_t *regs = json_object_get(j, "regions");
        int regions = json_is_array(regs) && json_array_size(regs) == d->nregions;
        for (unsigned g = 0; regions && g < d->nregions; g++) {
            regions = cli_dev__layout_take(d, g, json_array_get(regs, g));
        }
        for (unsigned g = 0; g < d->nregions; g++) {
            keep[g] = regions;
        }
        /* Absent from a cluster.json written before dev ran the metadata group. */
        keep[DEV__META(d)] = cli_dev__layout_take(d, DEV__META(d), json_object_get(j, "meta"));
        json_decref(j);
    }
    int all = 1;
    for (unsigned g = 0; g < d->ngroups; g++) {
        all = all && keep[g];
        if (!keep[g]) {
            memset(d->r[g], 0, sizeof d->r[g]);
        }
    }
    for (unsigned g = 0; !all && g < d->ngroups; g++) {
        for (unsigned i = 0; !keep[g] && i < d->replicas; i++) {
            struct cli_dev__replica *r = &d->r[g][i];
            if (cli_dev__layout_pick(d, r->raft, sizeof r->raft) != 0 ||
                cli_dev__layout_pick(d, r->rpc, sizeof r->rpc) != 0) {
                return -1;
            }
        }
    }
    json_t *regs = json_array();
    for (unsigned g = 0; g < d->nregions; g++) {
        json_array_append_new(regs, cli_dev__layout_group(d, g));
    }
    /* The whole cluster file (conf/cluster.h), rewritten each run so that it names this run's
     * router: paths relative to DATA, where the file is. */
    json_t *routers = json_pack("[{s:s,s:s}]", "id", "dev", "http", d->http);
    json_t *keys =
        json_pack("{s:s,s:s}", "keys_file", "keys.json", "cluster_key_file", "keys.json");
    j = json_pack("{s:i,s:s,s:o,s:o,s:o,s:o}", "version", 1, "data_dir", ".", "regions", regs,
                  "meta", cli_dev__layout_group(d, DEV__META(d)), "routers", routers, "keys", keys);
    int rv = j ? cli_dev__write_json(path, j, 0600) : -1;
    json_decref(j);
    if (rv != 0) {
        return rv;
    }
    /* What dev wrote, every replica reads (--config): refuse to start a cluster from a file
     * the decoder would refuse. */
    struct conf_cluster *cc;
    char errmsg[LR_ERRMSG_SIZE];
    if (conf_cluster_load(path, &cc, errmsg) != 0) {
        fprintf(stderr, "laurel dev: %s\n", errmsg);
        return -1;
    }
    conf_cluster_free(cc);
    return 0;
}

static int cli_dev__spawn(struct dev *d, unsigned g, unsigned i)
{
    char id[8], conf[3100], log[3100];
    char *argv[16];
    int a = 0;
    snprintf(id, sizeof id, "%u", i + 1);
    snprintf(conf, sizeof conf, "%s/cluster.json", d->data);
    snprintf(log, sizeof log, "%s/%s-%u.log", d->data, d->group[g], i + 1);
    argv[a++] = "laurel";
    argv[a++] = "node";
    argv[a++] = "--id";
    argv[a++] = id;
    if (g == DEV__META(d)) {
        argv[a++] = "--role";
        argv[a++] = "meta";
    } else {
        argv[a++] = "--region";
        argv[a++] = d->group[g];
    }
    /* Peers, data dir (DATA/<group>-<n>) and the cluster key file come from the cluster
     * file, as on a real host (deploy/README.md). */
    argv[a++] = "--config";
    argv[a++] = conf;
    argv[a++] = "--log-format";
    argv[a++] = d->log_format == LOG_FORMAT_JSON ? "json" : "text";
    argv[a] = NULL;
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        /* The replica dies with whoever started it: no orphans when a run is killed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    d->r[g][i].pid = pid;
    return 0;
}

static int cli_dev__write_manifest(struct dev *d)
{
    char path[3100];
    json_t *procs = json_array();
    /* The regions' replicas first, then the metadata group's ("role":"meta"), then the
     * router: the positions the earlier manifest gave region replicas do not move. */
    for (unsigned g = 0; g < d->ngroups; g++) {
        for (unsigned i = 0; i < d->replicas; i++) {
            json_array_append_new(
                procs,
                json_pack("{s:s,s:s,s:i,s:i,s:s,s:s}", "role", g == DEV__META(d) ? "meta" : "node",
                          "region", d->group[g], "replica", i + 1, "pid", (int)d->r[g][i].pid,
                          "raft", d->r[g][i].raft, "rpc", d->r[g][i].rpc));
        }
    }
    json_array_append_new(procs, json_pack("{s:s,s:n,s:n,s:i,s:s}", "role", "router", "region",
                                           "replica", "pid", (int)getpid(), "http", d->http));
    /* "url" says the scheme; "cacert" is what a client of a --tls cluster trusts (null
     * without --tls). */
    char url[96];
    snprintf(url, sizeof url, "%s://%s", d->tls ? "https" : "http", d->http);
    json_t *j = json_pack("{s:o,s:s,s:s,s:o}", "processes", procs, "http", d->http, "url", url,
                          "cacert", d->tls ? json_string(d->certs.ca) : json_null());
    snprintf(path, sizeof path, "%s/dev.json", d->data);
    int rv = cli_dev__write_json(path, j, 0600);
    json_decref(j);
    return rv;
}

static void cli_dev__stop_nodes(struct dev *d)
{
    for (unsigned g = 0; g < d->ngroups; g++) {
        for (unsigned i = 0; i < d->replicas; i++) {
            if (d->r[g][i].pid > 0) {
                kill(d->r[g][i].pid, SIGTERM);
            }
        }
    }
    for (unsigned g = 0; g < d->ngroups; g++) {
        for (unsigned i = 0; i < d->replicas; i++) {
            if (d->r[g][i].pid > 0) {
                int status, waited = 0;
                while (waitpid(d->r[g][i].pid, &status, WNOHANG) == 0 && waited++ < 100) {
                    usleep(50000);
                }
                if (waited > 100) {
                    kill(d->r[g][i].pid, SIGKILL);
                    waitpid(d->r[g][i].pid, &status, 0);
                }
                d->r[g][i].pid = 0;
            }
        }
    }
}

static void cli_dev__router_stopped(void *data)
{
    struct dev *d = data;
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
}

static void cli_dev__signal(uv_signal_t *h, int signum)
{
    struct dev *d = h->data;
    (void)signum;
    if (d->router) {
        fprintf(stderr, "laurel dev: stopping\n");
        router_stop(d->router, cli_dev__router_stopped, d);
        d->router = NULL;
    }
}

int cli_dev(int argc, char **argv)
{
    static const struct option opts[] = {{"http", required_argument, NULL, 'H'},
                                         {"data", required_argument, NULL, 'd'},
                                         {"regions", required_argument, NULL, 'r'},
                                         {"replicas", required_argument, NULL, 'n'},
                                         {"admin-key", required_argument, NULL, 'a'},
                                         {"api-key", required_argument, NULL, 'k'},
                                         {"log-format", required_argument, NULL, 'F'},
                                         {"cors-origins", required_argument, NULL, 'O'},
                                         {"tls", no_argument, NULL, 'T'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static struct dev d; /* owned by this command for the process's life */
    const char *regions = "local", *admin = NULL, *api = NULL, *cors = NULL;
    int c;
    memset(&d, 0, sizeof d);
    snprintf(d.http, sizeof d.http, "127.0.0.1:8080");
    snprintf(d.data, sizeof d.data, "./laurel-data");
    d.replicas = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'H': snprintf(d.http, sizeof d.http, "%s", optarg); break;
        case 'd': snprintf(d.data, sizeof d.data, "%s", optarg); break;
        case 'r': regions = optarg; break;
        case 'n': d.replicas = (unsigned)atoi(optarg); break;
        case 'a': admin = optarg; break;
        case 'k': api = optarg; break;
        case 'F':
            if (log_format_parse(optarg, &d.log_format) != 0) {
                fprintf(stderr, "laurel dev: --log-format: text or json\n");
                return 2;
            }
            break;
        case 'O': cors = optarg; break;
        case 'T': d.tls = 1; break;
        case 'h': cli_dev__usage(stdout); return 0;
        default: cli_dev__usage(stderr); return 2;
        }
    }
    if (d.replicas < 1 || d.replicas > DEV__MAX_REPLICAS) {
        fprintf(stderr, "laurel dev: --replicas must be 1 to %d\n", DEV__MAX_REPLICAS);
        return 2;
    }
    char list[1024], *save = NULL;
    snprintf(list, sizeof list, "%s", regions);
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (d.nregions == ROUTER_MAX_REGIONS || !valid_id(t, strlen(t), VALID_ID_MAX)) {
            fprintf(stderr, "laurel dev: --regions: 1 to %d ids of [A-Za-z0-9_.-]\n",
                    ROUTER_MAX_REGIONS);
            return 2;
        }
        if (strcmp(t, "meta") == 0) {
            fprintf(stderr, "laurel dev: --regions: \"meta\" is the metadata group's id\n");
            return 2;
        }
        snprintf(d.group[d.nregions++], sizeof d.group[0], "%s", t);
    }
    if (d.nregions == 0) {
        fprintf(stderr, "laurel dev: --regions is empty\n");
        return 2;
    }
    snprintf(d.group[DEV__META(&d)], sizeof d.group[0], "meta");
    d.ngroups = d.nregions + 1;
    /* Keys, logs, LMDB files, raft segments and snapshots: this user's alone. The replicas
     * inherit the mask, and it is the only lever on the files libraft creates itself. */
    umask(077);
    if (mkdir(d.data, 0700) != 0 && (errno != EEXIST || chmod(d.data, 0700) != 0)) {
        fprintf(stderr, "laurel dev: mkdir %s: %s\n", d.data, strerror(errno));
        return 1;
    }
    if (cli_dev__keys(&d, admin, api) != 0) {
        return 1;
    }
    if (cli_dev__layout(&d) != 0) {
        fprintf(stderr, "laurel dev: cannot write the layout under %s\n", d.data);
        return 1;
    }
    if (d.tls && cli_dev__certs(&d) != 0) {
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* The router runs in this process: room for its WebSockets, as `laurel router` makes. */
    sys_raise_nofile(WS_DEFAULT_MAX_CONNS + 4096UL);
    for (unsigned g = 0; g < d.ngroups; g++) {
        for (unsigned i = 0; i < d.replicas; i++) {
            if (cli_dev__spawn(&d, g, i) != 0) {
                fprintf(stderr, "laurel dev: cannot start a replica\n");
                cli_dev__stop_nodes(&d);
                return 1;
            }
        }
    }
    /* The router's logger (node 0, region "router"); it outlives the router, which stops
     * inside uv_run below. */
    struct logger log;
    log_init(&log, stderr, LOG_INFO, 0, "router");
    log_set_process(&log, "router", d.log_format);
    struct router_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.log = &log;
    cfg.log_requests = ROUTER_DEFAULT_LOG_REQUESTS;
    cfg.http = d.http;
    cfg.keys = &d.keys;
    cfg.cors_origins = cors;
    if (d.tls) {
        cfg.tls_cert = d.certs.cert;
        cfg.tls_key = d.certs.key;
    }
    struct peerauth_key cluster_key;
    char keymsg[LR_ERRMSG_SIZE];
    /* Read as the replicas read it (--cluster-key-file), so the router cannot hold another
     * key than theirs (a copy could be cut short). */
    if (peerauth_key_load(&cluster_key, d.key_file, keymsg) != 0) {
        fprintf(stderr, "laurel dev: %s\n", keymsg);
        cli_dev__stop_nodes(&d);
        return 1;
    }
    cfg.cluster_key = &cluster_key;
    for (unsigned g = 0; g < d.nregions; g++) {
        snprintf(cfg.regions[g].id, sizeof cfg.regions[g].id, "%s", d.group[g]);
        for (unsigned i = 0; i < d.replicas; i++) {
            cfg.regions[g].rpc[i] = d.r[g][i].rpc;
        }
        cfg.regions[g].n = d.replicas;
    }
    cfg.nregions = d.nregions;
    snprintf(cfg.meta.id, sizeof cfg.meta.id, "meta");
    for (unsigned i = 0; i < d.replicas; i++) {
        cfg.meta.rpc[i] = d.r[DEV__META(&d)][i].rpc;
    }
    cfg.meta.n = d.replicas;
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    uv_loop_t *loop = uv_default_loop();
    char errmsg[LR_ERRMSG_SIZE];
    if (router_start(loop, &cfg, &d.router, errmsg) != 0) {
        fprintf(stderr, "laurel dev: %s\n", errmsg);
        cli_dev__stop_nodes(&d);
        return 1;
    }
    if (cli_dev__write_manifest(&d) != 0) {
        fprintf(stderr, "laurel dev: cannot write %s/dev.json\n", d.data);
    }
    printf("laurel dev: %u region(s) and the metadata group, %u replica(s) each, data in %s\n",
           d.nregions, d.replicas, d.data);
    const char *scheme = d.tls ? "https" : "http";
    printf(
        "  %-10s %s://%s   (GET /readyz answers 200 once every region and the "
        "metadata group have a leader)\n",
        scheme, scheme, d.http);
    if (d.tls) {
        printf("  ca         %s   (trust it: curl --cacert, laurel ctl --cacert)\n", d.certs.ca);
        printf("  try        curl --cacert %s https://%s/readyz\n", d.certs.ca, d.http);
    }
    const char *ka = keyset_first(&d.keys, KEYSET_ADMIN), *kp = keyset_first(&d.keys, KEYSET_API);
    printf("  admin key  %s\n  api key    %s\n", ka ? ka : "(none)", kp ? kp : "(none)");
    printf("  processes  %s/dev.json; replica logs in %s/<region>-<n>.log and meta-<n>.log\n",
           d.data, d.data);
    fflush(stdout);
    uv_signal_init(loop, &d.sigint);
    uv_signal_init(loop, &d.sigterm);
    d.sigint.data = d.sigterm.data = &d;
    uv_signal_start(&d.sigint, cli_dev__signal, SIGINT);
    uv_signal_start(&d.sigterm, cli_dev__signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    cli_dev__stop_nodes(&d);
    return 0;
}
