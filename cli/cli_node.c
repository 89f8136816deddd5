/* cli/cli_node.c — `laurel node`: flags or a cluster file → struct node_config → one loop. */
#include <getopt.h>
#include <limits.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../lib/addr.h"
#include "../lib/err.h"
#include "cli.h"
#include "../node/node.h"
#include "../raft/fsm.h"

static void cli_node__usage(FILE *f)
{
    fprintf(f,
            "usage: laurel node --id N (--region R | --role meta) --data DIR\n"
            "                   (--peer ... | --cluster FILE)\n"
            "       laurel node --config FILE --region R --id N [flags that override the file]\n"
            "\n"
            "Runs one replica of a region, or of the cluster's metadata group: a raft member\n"
            "with its LMDB state machine, serving the client RPC (msgpack over TCP) and, for a\n"
            "region, the committed-event stream.\n"
            "\n"
            "  --id N              this replica's id (>= 1), one of the peers\n"
            "  --region R          the region it serves (must match its data dir)\n"
            "  --role ROLE         region (default) or meta: a replica of the metadata group\n"
            "                      (player directory, catalog, tournaments, closes; see\n"
            "                      docs/global-state.md); its region is \"meta\"\n"
            "  --data DIR          data directory (raft log in DIR/raft, LMDB in DIR/shard)\n"
            "  --peer ID=RAFT,RPC  an initial voter, e.g. 2=127.0.0.1:7002,127.0.0.1:8002\n"
            "                      (repeat for each; include this replica)\n"
            "  --cluster FILE      JSON instead of --peer/--region:\n"
            "                      {\"region\":\"eu\",\"replicas\":[{\"id\":1,\"raft\":\"h:p\",\n"
            "                       \"rpc\":\"h:p\"}, ...]}\n"
            "  --config FILE       the cluster file (docs/operations.md, The cluster file): this\n"
            "                      replica's peers, --data DATA_DIR/<region>-<id>, the cluster\n"
            "                      key file and the node limits; --region meta (or --role\n"
            "                      meta) for the metadata group. Flags given override it\n"
            "  --cluster-key-file PATH  the cluster key (>= 16 bytes): the key on one line, or\n"
            "                      JSON with \"cluster_key\" (laurel dev's keys.json); default\n"
            "                      $" PEERAUTH_ENV
            ". Every raft and RPC connection must prove\n"
            "                      it (docs/security.md); required unless every address is\n"
            "                      loopback\n"
            "  --join              start empty and wait to be added by the leader\n"
            "                      (laurel ctl add); no bootstrap\n"
            "  --election-ms MS    election timeout (default 1000)\n"
            "  --heartbeat-ms MS   heartbeat interval (default 100)\n"
            "  --snapshot-every N  entries between snapshots (default 8192)\n"
            "  --snapshot-trailing N  entries kept in the log behind a snapshot (default\n"
            "                      4096); a follower further behind is sent the snapshot\n"
            "  --state-max BYTES   refuse writes once a snapshot would hold this much\n"
            "                      (default 1610612736, 1.5 GiB; at most 2130702336:\n"
            "                      libraft 0.15 loads no larger snapshot)\n"
            "  --sync              fsync every LMDB commit (default: the raft log is the\n"
            "                      durable record; see docs/durability.md)\n"
            "  --disk-reserve-mb N refuse writes (unavailable, \"writes paused: ...\") while\n"
            "                      the filesystem of DIR/raft or of the state has less than\n"
            "                      N MiB free, or the LMDB map is nearly full and growing it\n"
            "                      would go below that; reads go on, writes resume by\n"
            "                      themselves (default 256; docs/durability.md, Full disks)\n"
            "  --rpc-max-conns N   client RPC connections at most (default 10000); one more\n"
            "                      is accepted and closed at once (docs/security.md, Limits)\n"
            "  --rpc-idle-s S      close a client connection that sent nothing for S seconds\n"
            "                      and waits for no answer; subscriptions are never idle\n"
            "                      (default 300; 0: never)\n"
            "  --audit-days N      days the region keeps each player's audit trail (default\n"
            "                      and minimum 30, at most 36500); the leader proposes it to\n"
            "                      the region, so the leader's value is the region's\n"
            "  --read-barrier      accepted for old scripts; every read now waits for a raft\n"
            "                      barrier (docs/durability.md, Reads)\n"
            "  --log-level L       error, warn, info (default), debug\n"
            "  --log-format F      text (default) or json: one object per line with ts, level,\n"
            "                      process, node, region, term, msg (docs/operations.md)\n");
}

static int cli_node__addr_ok(const char *s)
{
    return strlen(s) < NODE_ADDR_MAX && addr_valid(s);
}

static int cli_node__peer(struct node_config *cfg, const char *arg)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", arg);
    char *eq = strchr(buf, '='), *comma = eq ? strchr(eq, ',') : NULL, *end;
    if (eq == NULL || comma == NULL || cfg->npeers == NODE_MAX_PEERS) {
        return -1;
    }
    *eq = *comma = '\0';
    struct node_peer *p = &cfg->peers[cfg->npeers];
    p->id = strtoull(buf, &end, 10);
    if (*end || p->id == 0 || !cli_node__addr_ok(eq + 1) || !cli_node__addr_ok(comma + 1)) {
        return -1;
    }
    snprintf(p->raft, sizeof p->raft, "%s", eq + 1);
    snprintf(p->rpc, sizeof p->rpc, "%s", comma + 1);
    cfg->npeers++;
    return 0;
}

/* Read the cluster file: a region name and its replicas. Every field is checked. */
static int cli_node__cluster(struct node_config *cfg, const char *path)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr), *reps, *r;
    size_t i;
    const char *region = NULL;
    if (root == NULL) {
        fprintf(stderr, "laurel node: %s:%d: %s\n", path, jerr.line, jerr.text);
        return -1;
    }
    if (json_unpack_ex(root, &jerr, 0, "{s:s, s:o}", "region", &region, "replicas", &reps) != 0 ||
        !json_is_array(reps) || json_array_size(reps) == 0 ||
        json_array_size(reps) > NODE_MAX_PEERS || strlen(region) >= sizeof cfg->region) {
        fprintf(stderr, "laurel node: %s: needs \"region\" and 1 to %d \"replicas\"\n", path,
                NODE_MAX_PEERS);
        json_decref(root);
        return -1;
    }
    snprintf(cfg->region, sizeof cfg->region, "%s", region);
    json_array_foreach(reps, i, r)
    {
        json_int_t id;
        const char *raft, *rpc;
        struct node_peer *p = &cfg->peers[cfg->npeers];
        if (json_unpack(r, "{s:I, s:s, s:s}", "id", &id, "raft", &raft, "rpc", &rpc) != 0 ||
            id < 1 || !cli_node__addr_ok(raft) || !cli_node__addr_ok(rpc)) {
            fprintf(stderr, "laurel node: %s: replica %zu needs id >= 1, raft and rpc host:port\n",
                    path, i);
            json_decref(root);
            return -1;
        }
        p->id = (uint64_t)id;
        snprintf(p->raft, sizeof p->raft, "%s", raft);
        snprintf(p->rpc, sizeof p->rpc, "%s", rpc);
        cfg->npeers++;
    }
    json_decref(root);
    return 0;
}

struct cli_node__run {
    uv_loop_t *loop;
    struct node *node;
    uv_signal_t sigint, sigterm;
    int stopped;
};

static void cli_node__stopped(void *data)
{
    struct cli_node__run *r = data;
    r->stopped = 1;
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
}

static void cli_node__signal(uv_signal_t *h, int signum)
{
    struct cli_node__run *r = h->data;
    (void)signum;
    if (r->node) {
        node_stop(r->node, cli_node__stopped, r);
        r->node = NULL;
    }
}

static const struct option cli_node__opts[] = {{"id", required_argument, NULL, 'i'},
                                               {"region", required_argument, NULL, 'r'},
                                               {"role", required_argument, NULL, 'o'},
                                               {"data", required_argument, NULL, 'd'},
                                               {"peer", required_argument, NULL, 'p'},
                                               {"cluster", required_argument, NULL, 'c'},
                                               {"join", no_argument, NULL, 'j'},
                                               {"cluster-key-file", required_argument, NULL, 'K'},
                                               {"election-ms", required_argument, NULL, 'e'},
                                               {"heartbeat-ms", required_argument, NULL, 'b'},
                                               {"snapshot-every", required_argument, NULL, 's'},
                                               {"snapshot-trailing", required_argument, NULL, 't'},
                                               {"state-max", required_argument, NULL, 'm'},
                                               {"sync", no_argument, NULL, 'y'},
                                               {"disk-reserve-mb", required_argument, NULL, 'D'},
                                               {"log-level", required_argument, NULL, 'l'},
                                               {"log-format", required_argument, NULL, 'F'},
                                               {"read-barrier", no_argument, NULL, 'R'},
                                               {"rpc-max-conns", required_argument, NULL, 'X'},
                                               {"rpc-idle-s", required_argument, NULL, 'Z'},
                                               {"audit-days", required_argument, NULL, 'A'},
                                               {"config", required_argument, NULL, 'G'},
                                               {"help", no_argument, NULL, 'h'},
                                               {NULL, 0, NULL, 0}};

/* The command line once --config is expanded (cli/cli_conf.c). */
static int cli_node__main(int argc, char **argv)
{
    struct node_config cfg;
    enum log_level level = LOG_INFO;
    enum log_format format = LOG_FORMAT_TEXT;
    const char *cluster = NULL, *config = NULL;
    const char *key_file = NULL;
    int c;
    /* The data directory, LMDB files, raft segments and snapshots are this user's alone: libraft's
     * uv backend creates its files itself, so the mask is the one lever that reaches them all. */
    umask(077);
    node_config_defaults(&cfg);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", cli_node__opts, NULL)) != -1) {
        switch (c) {
        case 'i': cfg.id = strtoull(optarg, NULL, 10); break;
        case 'r': snprintf(cfg.region, sizeof cfg.region, "%s", optarg); break;
        case 'o':
            if (strcmp(optarg, "meta") != 0 && strcmp(optarg, "region") != 0) {
                fprintf(stderr, "laurel node: --role: region or meta\n");
                return 2;
            }
            cfg.meta = strcmp(optarg, "meta") == 0;
            break;
        case 'd': snprintf(cfg.data_dir, sizeof cfg.data_dir, "%s", optarg); break;
        case 'p':
            if (cli_node__peer(&cfg, optarg) != 0) {
                fprintf(stderr,
                        "laurel node: --peer %s: expected ID=RAFT_HOST:PORT,RPC_HOST:PORT\n",
                        optarg);
                return 2;
            }
            break;
        case 'c': cluster = optarg; break;
        case 'G': config = optarg; break; /* read by cli_node */
        case 'j': cfg.join = 1; break;
        case 'K': key_file = optarg; break;
        case 'e': cfg.election_ms = (unsigned)atoi(optarg); break;
        case 'b': cfg.heartbeat_ms = (unsigned)atoi(optarg); break;
        case 's': cfg.snapshot_threshold = (unsigned)atoi(optarg); break;
        case 't': cfg.snapshot_trailing = (unsigned)atoi(optarg); break;
        case 'm':
            cfg.state_max = strtoull(optarg, NULL, 10);
            if (cfg.state_max == 0 || cfg.state_max > FSM_SNAPSHOT_MAX) {
                fprintf(stderr, "laurel node: --state-max: 1 to %llu bytes\n",
                        (unsigned long long)FSM_SNAPSHOT_MAX);
                return 2;
            }
            break;
        case 'y': cfg.fast = 0; break;
        case 'D': {
            char *end;
            unsigned long mb = strtoul(optarg, &end, 10);
            if (*optarg == '\0' || *end != '\0' || mb > (1ul << 30)) {
                fprintf(stderr, "laurel node: --disk-reserve-mb: a number of MiB\n");
                return 2;
            }
            cfg.disk_reserve_mb = (unsigned)mb;
            break;
        }
        case 'R': cfg.read_barrier = 1; break;
        case 'X':
        case 'Z': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*optarg < '0' || *optarg > '9' || *end != '\0' || v > UINT_MAX ||
                (c == 'X' && v == 0)) {
                fprintf(stderr, "laurel node: --%s: %s\n",
                        c == 'X' ? "rpc-max-conns" : "rpc-idle-s",
                        c == 'X' ? "a number of connections, at least 1"
                                 : "a number of seconds (0: never)");
                return 2;
            }
            *(c == 'X' ? &cfg.max_conns : &cfg.idle_s) = (unsigned)v;
            break;
        }
        case 'F':
            if (log_format_parse(optarg, &format) != 0) {
                fprintf(stderr, "laurel node: --log-format: text or json\n");
                return 2;
            }
            break;
        case 'A': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*optarg < '0' || *optarg > '9' || *end != '\0' || v < CMD_AUDIT_DAYS_MIN ||
                v > CMD_AUDIT_DAYS_MAX) {
                fprintf(stderr, "laurel node: --audit-days: %d to %d days\n", CMD_AUDIT_DAYS_MIN,
                        CMD_AUDIT_DAYS_MAX);
                return 2;
            }
            cfg.audit_days = (unsigned)v;
            break;
        }
        case 'l':
            if (log_level_parse(optarg, &level) != 0) {
                fprintf(stderr, "laurel node: --log-level: error, warn, info or debug\n");
                return 2;
            }
            break;
        case 'h': cli_node__usage(stdout); return 0;
        default: cli_node__usage(stderr); return 2;
        }
    }
    if (cluster && cli_node__cluster(&cfg, cluster) != 0) {
        return 2;
    }
    if (cfg.meta) {
        if (cfg.region[0] != '\0' && strcmp(cfg.region, "meta") != 0) {
            fprintf(stderr, "laurel node: --role meta serves the region \"meta\", not %s\n",
                    cfg.region);
            return 2;
        }
        snprintf(cfg.region, sizeof cfg.region, "meta");
    } else if (strcmp(cfg.region, "meta") == 0) {
        if (cluster == NULL && config == NULL) {
            fprintf(stderr, "laurel node: \"meta\" is the metadata group: use --role meta\n");
            return 2;
        }
        cfg.meta = 1; /* a cluster file whose group is "meta" */
    }
    if (cfg.id == 0 || cfg.region[0] == '\0' || cfg.data_dir[0] == '\0' || cfg.npeers == 0 ||
        cfg.election_ms < 50 || cfg.heartbeat_ms == 0 || cfg.heartbeat_ms >= cfg.election_ms) {
        fprintf(stderr,
                "laurel node: --id, --region, --data and peers are required "
                "(heartbeat < election)\n\n");
        cli_node__usage(stderr);
        return 2;
    }
    /* TEST ONLY (raft/faultio.h, docs/durability.md): raft I/O faults from a control file. */
    const char *faults = getenv("LAUREL_TEST_RAFT_IO_FAULTS");
    if (faults && faults[0] != '\0') {
        if (strlen(faults) >= sizeof cfg.raft_io_faults) {
            fprintf(stderr, "laurel node: LAUREL_TEST_RAFT_IO_FAULTS: path too long\n");
            return 2;
        }
        snprintf(cfg.raft_io_faults, sizeof cfg.raft_io_faults, "%s", faults);
    }
    char keymsg[LR_ERRMSG_SIZE];
    if (peerauth_key_config(&cfg.cluster_key, &cfg.have_cluster_key, key_file, getenv(PEERAUTH_ENV),
                            keymsg) != 0) {
        fprintf(stderr, "laurel node: %s\n", keymsg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a dead peer must not kill the survivors (NOTES-deps.md) */
    struct logger log;
    log_init(&log, stderr, level, cfg.id, cfg.region);
    log_set_process(&log, "node", format);
    struct cli_node__run run = {0};
    char errmsg[LR_ERRMSG_SIZE];
    run.loop = uv_default_loop();
    if (node_start(run.loop, &cfg, &log, &run.node, errmsg) != 0) {
        LOG(&log, LOG_ERROR, "%s", errmsg);
        return 1;
    }
    uv_signal_init(run.loop, &run.sigint);
    uv_signal_init(run.loop, &run.sigterm);
    run.sigint.data = run.sigterm.data = &run;
    uv_signal_start(&run.sigint, cli_node__signal, SIGINT);
    uv_signal_start(&run.sigterm, cli_node__signal, SIGTERM);
    uv_run(run.loop, UV_RUN_DEFAULT);
    if (!run.stopped && run.node && node_exit_status(run.node) != 0) {
        /* A fatal error stopped the loop mid-flight: exit like a crash, without unwinding a
         * replica that must not serve; LMDB and the raft log are consistent on disk. */
        _exit(node_exit_status(run.node));
    }
    LOG(&log, LOG_INFO, "replica stopped");
    return 0;
}

int cli_node(int argc, char **argv)
{
    const char *config = NULL, *region = NULL;
    uint64_t id = 0;
    int meta = 0, own_peers = 0, c, rv;
    /* A first pass for what picks this replica out of the cluster file; the second, in
     * cli_node__main, reads every flag (the file's first) and reports the errors. */
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", cli_node__opts, NULL)) != -1) {
        switch (c) {
        case 'G': config = optarg; break;
        case 'i': id = strtoull(optarg, NULL, 10); break;
        case 'r': region = optarg; break;
        case 'o': meta = strcmp(optarg, "meta") == 0; break;
        case 'p': own_peers = 1; break;
        default: break;
        }
    }
    opterr = 1;
    if (config == NULL) {
        return cli_node__main(argc, argv);
    }
    if (id == 0 || (region == NULL && !meta)) {
        fprintf(stderr, "laurel node: --config needs --id N and --region R (or --role meta)\n");
        return 2;
    }
    struct conf_cluster *cc;
    char errmsg[LR_ERRMSG_SIZE];
    if (conf_cluster_load(config, &cc, errmsg) != 0) {
        fprintf(stderr, "laurel node: %s\n", errmsg);
        return 2;
    }
    struct cli_argv xa = {0};
    meta = meta || (region != NULL && strcmp(region, "meta") == 0);
    rv = cli_conf_node_argv(config, cc, meta ? "meta" : region, id, own_peers, argc, argv, &xa);
    conf_cluster_free(cc);
    if (rv != 0) {
        return rv;
    }
    rv = cli_node__main(xa.argc, xa.argv);
    cli_argv_free(&xa);
    return rv;
}
