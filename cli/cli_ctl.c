/* cli/cli_ctl.c — `laurel ctl`: operator commands. One table of subcommands: the replica
 * commands (status, add, remove, transfer) speak the node RPC here; the router commands
 * speak HTTP (player, unlock, score, top, rank, game, achievement, board, tournament,
 * cluster, get: cli/cli_ctl_api.c) or the WebSocket (watch: cli/cli_ctl_watch.c). Each has
 * its --help; replies print as JSON (cluster as a table). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_ctl_int.h"
#include "../proto/client.h"
#include "../proto/mpjson.h"

struct cli_ctl__args {
    const char *rpc;
    const char *config; /* --config: the cluster file, with --region and --replica */
    const char *region;
    uint64_t replica;
    const char *key_file; /* --cluster-key-file */
    const char *data;     /* --data: DATA/keys.json's "cluster_key" is the last resort */
    uint64_t id;
    const char *raft;
    const char *new_rpc;
    int timeout_ms;
};

struct cli_ctl__cmd {
    const char *name;
    const char *usage; /* NULL for router commands: their module's synopsis describes them */
    /* Runs the command; argv[0] is its name. Returns the exit code. */
    int (*run)(const struct cli_ctl__cmd *cmd, int argc, char **argv);
    /* Router commands: prints the synopsis of the commands whose first word is the name. */
    void (*synopsis)(FILE *f, const char *word);
    int op; /* replica commands: the RPC op */
    int needs_id, needs_addrs;
};

static int cli_ctl__rpc(const struct cli_ctl__cmd *cmd, int argc, char **argv);
static int cli_ctl__http(const struct cli_ctl__cmd *cmd, int argc, char **argv);
static int cli_ctl__ws(const struct cli_ctl__cmd *cmd, int argc, char **argv);

static const struct cli_ctl__cmd cli_ctl__cmds[] = {
    {"status", "status --rpc HOST:PORT          role, term, leader, indexes, digest", cli_ctl__rpc,
     NULL, PROTO_OP_STATUS, 0, 0},
    {"add",
     "add --rpc LEADER --id N --raft HOST:PORT --replica-rpc HOST:PORT\n"
     "                                     add a voter (start it with `laurel node --join`)",
     cli_ctl__rpc, NULL, PROTO_OP_ADD, 1, 1},
    {"remove", "remove --rpc LEADER --id N          remove a replica", cli_ctl__rpc, NULL,
     PROTO_OP_REMOVE, 1, 0},
    {"transfer", "transfer --rpc LEADER [--id N]    hand leadership over (0 = any)", cli_ctl__rpc,
     NULL, PROTO_OP_TRANSFER, 0, 0},
    {"player", NULL, cli_ctl__http, cli_ctl_api_usage, 0, 0, 0},
    {"unlock", NULL, cli_ctl__http, cli_ctl_api_usage, 0, 0, 0},
    {"score", NULL, cli_ctl__http, cli_ctl_api_usage, 0, 0, 0},
    {"top", NULL, cli_ctl__http, cli_ctl_api_usage, 0, 0, 0},
    {"rank", NULL, cli_ctl__http, cli_ctl_api_usage, 0, 0, 0},
    {"game", NULL, cli_ctl__http, cli_ctl_api_usage, 0, 0, 0},
    {"achievement", NULL, cli_ctl__http, cli_ctl_api_usage, 0, 0, 0},
    {"board", NULL, cli_ctl__http, cli_ctl_api_usage, 0, 0, 0},
    {"tournament", NULL, cli_ctl__http, cli_ctl_api_usage, 0, 0, 0},
    {"region", NULL, cli_ctl__http, cli_ctl_api_usage, 0, 0, 0},
    {"cluster", NULL, cli_ctl__http, cli_ctl_api_usage, 0, 0, 0},
    {"get", NULL, cli_ctl__http, cli_ctl_api_usage, 0, 0, 0},
    {"watch", NULL, cli_ctl__ws, cli_ctl_watch_usage, 0, 0, 0},
};

#define CLI_CTL__N (sizeof cli_ctl__cmds / sizeof cli_ctl__cmds[0])

static void cli_ctl__usage(FILE *f)
{
    fprintf(f, "usage: laurel ctl <command> [options]\n\nreplica commands (node RPC):\n");
    for (size_t i = 0; i < CLI_CTL__N; i++) {
        if (cli_ctl__cmds[i].usage) {
            fprintf(f, "  %s\n", cli_ctl__cmds[i].usage);
        }
    }
    fprintf(f,
            "options: --timeout-ms MS (default 5000); --cluster-key-file PATH (default: "
            "$" PEERAUTH_ENV
            ", else \"cluster_key\" of DATA/keys.json, DATA from --data,\n"
            "default ./laurel-data). Replies print as JSON.\n"
            "Instead of --rpc: --config FILE --region R [--replica N], the cluster file\n"
            "(deploy/README.md) and a group (\"meta\" too): replica N; else, for status, the\n"
            "first replica, and for add, remove and transfer the leader that the first replica\n"
            "to answer names. The file's cluster key file is the default key.\n\n"
            "router commands (HTTP, and watch over the WebSocket):\n");
    for (size_t i = 0; i < CLI_CTL__N; i++) {
        if (cli_ctl__cmds[i].usage == NULL) {
            cli_ctl__cmds[i].synopsis(f, cli_ctl__cmds[i].name);
        }
    }
    fprintf(f, "\n");
    cli_ctl_api_options(f);
    fprintf(f, "\n`laurel ctl <command> --help` describes each command.\n");
}

static int cli_ctl__http(const struct cli_ctl__cmd *cmd, int argc, char **argv)
{
    (void)cmd;
    return cli_ctl_api(argc, argv);
}

static int cli_ctl__ws(const struct cli_ctl__cmd *cmd, int argc, char **argv)
{
    (void)cmd;
    return cli_ctl_watch(argc, argv);
}

static int cli_ctl__print(const struct client_reply *r)
{
    json_t *j = mpjson_from(r->body);
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
    if (r->code != 0) {
        fprintf(stderr, "error %s: %s\n", err_name(r->code), s ? s : "?");
    } else {
        printf("%s\n", s ? s : "null");
    }
    free(s);
    json_decref(j);
    return r->code == 0 ? 0 : 1;
}

/* The cluster key: --cluster-key-file, else $LAUREL_CLUSTER_KEY, else "cluster_key" of
 * DATA/keys.json when that file has one (as cli_ctl_api__key finds the API keys). @return 0
 * with *@have, or 1 after printing why the key given is unusable. */
static int cli_ctl__cluster_key(const struct cli_ctl__args *a, struct peerauth_key *k, int *have)
{
    char errmsg[LR_ERRMSG_SIZE], path[4096];
    if (peerauth_key_config(k, have, a->key_file, getenv(PEERAUTH_ENV), errmsg) != 0) {
        fprintf(stderr, "laurel ctl: %s\n", errmsg);
        return 1;
    }
    snprintf(path, sizeof path, "%s/keys.json", a->data);
    if (!*have && peerauth_key_load(k, path, errmsg) == 0) {
        *have = 1;
    }
    return 0;
}

/* The leader that replica @rpc names in its status, into @out (@cap bytes). 0, or -1 when it
 * does not answer or knows no leader. */
static int cli_ctl__leader_of(const char *rpc, const struct peerauth_key *key, int have_key,
                              int timeout_ms, char *out, size_t cap)
{
    struct client cl;
    struct client_reply r;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int rv = -1;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_nil(&pk);
    if (client_connect(&cl, rpc, timeout_ms) == 0 &&
        (!have_key || client_auth(&cl, key, timeout_ms) == 0) &&
        client_call(&cl, PROTO_OP_STATUS, sb.data, sb.size, &r, timeout_ms) == 0 && r.code == 0) {
        json_t *j = mpjson_from(r.body);
        const char *leader = json_string_value(json_object_get(j, "leader_rpc"));
        if (leader != NULL && leader[0] != '\0' && strlen(leader) < cap) {
            snprintf(out, cap, "%s", leader);
            rv = 0;
        }
        json_decref(j);
    }
    client_close(&cl);
    msgpack_sbuffer_destroy(&sb);
    return rv;
}

/* --config FILE --region R [--replica N]: a->rpc (into @rpc) and, unless given, the file's
 * cluster key (its path into @key_file, the key into @key). Replica N when given; else, for
 * status, the group's first replica, and for the other commands the leader the first replica
 * that answers names. 0, or the exit code after a line on stderr: 2 for a file, group or
 * replica that is not there, 1 when no replica names a leader. */
static int cli_ctl__from_config(const struct cli_ctl__cmd *cmd, struct cli_ctl__args *a,
                                char rpc[CONF_ADDR_MAX], char key_file[CONF_PATH_MAX],
                                struct peerauth_key *key, int *have_key)
{
    struct conf_cluster *cc;
    char errmsg[LR_ERRMSG_SIZE];
    int rv = 2;
    if (a->region == NULL) {
        fprintf(stderr, "laurel ctl %s: --config needs --region R (or meta)\n", cmd->name);
        return 2;
    }
    if (conf_cluster_load(a->config, &cc, errmsg) != 0) {
        fprintf(stderr, "laurel ctl: %s\n", errmsg);
        return 2;
    }
    const struct conf_group *g = conf_cluster_group(cc, a->region);
    const struct conf_replica *one = g && a->replica ? conf_group_replica(g, a->replica) : NULL;
    if (g == NULL || (a->replica && one == NULL)) {
        fprintf(stderr, "laurel ctl %s: %s: no %s %s%s\n", cmd->name, a->config,
                g ? "such replica in" : "group", a->region, g ? "" : " in the file");
        goto out;
    }
    if (a->key_file == NULL && cc->cluster_key_file[0] != '\0') {
        snprintf(key_file, CONF_PATH_MAX, "%s", cc->cluster_key_file);
        a->key_file = key_file;
    }
    if (cli_ctl__cluster_key(a, key, have_key) != 0) {
        goto out;
    }
    if (one != NULL || cmd->op == PROTO_OP_STATUS) {
        snprintf(rpc, CONF_ADDR_MAX, "%s", one ? one->rpc : g->r[0].rpc);
        a->rpc = rpc;
        rv = 0;
        goto out;
    }
    rv = 1;
    for (unsigned i = 0; i < g->n && a->rpc == NULL; i++) {
        if (cli_ctl__leader_of(g->r[i].rpc, key, *have_key, a->timeout_ms, rpc, CONF_ADDR_MAX) ==
            0) {
            a->rpc = rpc;
        }
    }
    if (a->rpc == NULL) {
        fprintf(stderr, "laurel ctl %s: no replica of %s names a leader\n", cmd->name, a->region);
        goto out;
    }
    rv = 0;
out:
    conf_cluster_free(cc);
    return rv;
}

/* A replica command: its options, one RPC call, the reply as JSON. */
static int cli_ctl__rpc(const struct cli_ctl__cmd *cmd, int argc, char **argv)
{
    static const struct option opts[] = {{"rpc", required_argument, NULL, 'r'},
                                         {"id", required_argument, NULL, 'i'},
                                         {"raft", required_argument, NULL, 'a'},
                                         {"replica-rpc", required_argument, NULL, 'p'},
                                         {"timeout-ms", required_argument, NULL, 't'},
                                         {"cluster-key-file", required_argument, NULL, 'k'},
                                         {"data", required_argument, NULL, 'd'},
                                         {"config", required_argument, NULL, 'C'},
                                         {"region", required_argument, NULL, 'g'},
                                         {"replica", required_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct cli_ctl__args a = {.timeout_ms = 5000, .data = "./laurel-data"};
    char rpc[CONF_ADDR_MAX], key_file[CONF_PATH_MAX];
    struct peerauth_key key;
    int have_key;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r': a.rpc = optarg; break;
        case 'i': a.id = strtoull(optarg, NULL, 10); break;
        case 'a': a.raft = optarg; break;
        case 'p': a.new_rpc = optarg; break;
        case 't': a.timeout_ms = atoi(optarg); break;
        case 'k': a.key_file = optarg; break;
        case 'd': a.data = optarg; break;
        case 'C': a.config = optarg; break;
        case 'g': a.region = optarg; break;
        case 'n': a.replica = strtoull(optarg, NULL, 10); break;
        case 'h': printf("usage: laurel ctl %s\n", cmd->usage); return 0;
        default: fprintf(stderr, "usage: laurel ctl %s\n", cmd->usage); return 2;
        }
    }
    if (a.rpc == NULL && a.config != NULL) {
        int rv = cli_ctl__from_config(cmd, &a, rpc, key_file, &key, &have_key);
        if (rv != 0) {
            return rv;
        }
    }
    if (a.rpc == NULL || (cmd->needs_id && a.id == 0) ||
        (cmd->needs_addrs && (a.raft == NULL || a.new_rpc == NULL))) {
        fprintf(stderr, "usage: laurel ctl %s\n", cmd->usage);
        return 2;
    }
    if (cli_ctl__cluster_key(&a, &key, &have_key) != 0) {
        return 2;
    }
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (cmd->op == PROTO_OP_STATUS) {
        msgpack_pack_nil(&pk);
    } else {
        msgpack_pack_map(&pk, cmd->needs_addrs ? 3 : 1);
        proto_pack_key(&pk, "id");
        msgpack_pack_uint64(&pk, a.id);
        if (cmd->needs_addrs) {
            proto_pack_key(&pk, "raft");
            proto_pack_key(&pk, a.raft);
            proto_pack_key(&pk, "rpc");
            proto_pack_key(&pk, a.new_rpc);
        }
    }
    struct client cl;
    struct client_reply r;
    int rv = client_connect(&cl, a.rpc, a.timeout_ms);
    if (rv == 0 && have_key) {
        rv = client_auth(&cl, &key, a.timeout_ms);
    }
    if (rv == 0) {
        rv = client_call(&cl, cmd->op, sb.data, sb.size, &r, a.timeout_ms);
    }
    msgpack_sbuffer_destroy(&sb);
    if (rv != 0) {
        fprintf(stderr, "laurel ctl: %s\n", cl.errmsg);
        if (!have_key && rv == LR_EIO) {
            /* A replica with a cluster key closes a connection that does not open with the
             * handshake: the likeliest reason for a closed connection here. */
            fprintf(stderr,
                    "laurel ctl: no cluster key was given; if the replica has one, pass "
                    "--cluster-key-file PATH (or set " PEERAUTH_ENV ")\n");
        }
        client_close(&cl);
        return 1;
    }
    rv = cli_ctl__print(&r);
    client_close(&cl);
    return rv;
}

int cli_ctl(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cli_ctl__usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < CLI_CTL__N; i++) {
        if (strcmp(argv[1], cli_ctl__cmds[i].name) == 0) {
            return cli_ctl__cmds[i].run(&cli_ctl__cmds[i], argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "laurel ctl: unknown command '%s'\n", argv[1]);
    cli_ctl__usage(stderr);
    return 2;
}
