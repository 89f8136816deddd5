/* cli/cli_router.c — `laurel router`: flags → struct router_config → one uv loop.
 *
 * --region and --meta take their replicas' RPC addresses through one parser
 * (cli_router__rpcs), so both refuse what lib/addr would refuse when the router dials, before
 * the router starts, and neither drops replicas past UPSTREAM_MAX_REPLICAS silently.
 *
 * Keys (router/keyset.h, docs/security.md "API keys") come from --keys-file, LAUREL_ADMIN_KEY
 * and LAUREL_API_KEY, and the flags, all together: several of a role at once is how a key is
 * rotated. Any bad key stops the start, since a router that silently dropped one would answer
 * 401 to the clients that hold it. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <libwebsockets.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "../lib/addr.h"
#include "../lib/certs.h"
#include "../lib/err.h"
#include "../lib/log.h"
#include "../lib/sys.h"
#include "../router/keyset.h"
#include "../router/router.h"
#include "../router/ws.h"

static void cli_router__usage(FILE *f)
{
    fprintf(f,
            "usage: laurel router --http HOST:PORT --region ID=RPC[,RPC...] [--region ...]\n"
            "                     [--meta RPC[,RPC...]] [--keys-file PATH]\n"
            "                     [--timeout-ms MS] [--hold-boards IDS] [--cors-origins LIST]\n"
            "                     [--tls-cert FILE --tls-key FILE]\n"
            "       laurel router --config FILE --id ID [flags that override the file]\n"
            "\n"
            "Serves the public HTTP API (../shared/API.md) over the regions' replicas.\n"
            "  --http HOST:PORT    listen address (default 127.0.0.1:8080)\n"
            "  --config FILE       the cluster file (docs/operations.md, The cluster file):\n"
            "                      --http of the router --id ID, every region and the\n"
            "                      metadata group (unless --region/--meta are given), the key\n"
            "                      files, TLS files and router limits; flags given override it\n"
            "  --id ID             this router's id in the file's \"routers\"\n"
            "  --region ID=RPCS    a region and its replicas' RPC addresses (HOST:PORT),\n"
            "                      comma-separated; \"meta\" is not a region id\n"
            "  --meta RPCS         the metadata group's replicas' RPC addresses (`laurel node\n"
            "                      --role meta`; docs/global-state.md), comma-separated: shown\n"
            "                      in /v1/cluster as \"meta\", and /readyz waits for its leader\n"
            "                      too (default: no metadata group)\n"
            "  --keys-file PATH    the keys, JSON: {\"admin_keys\": [K...], \"api_keys\": [K...]}\n"
            "                      or {\"admin_key\": K, \"api_key\": K} (DATA/keys.json of\n"
            "                      `laurel dev`); keep it 0600. Admin keys may do everything,\n"
            "                      api keys are those of trusted game servers (players,\n"
            "                      unlocks, scores). Keys are 16 to 255 bytes of printable\n"
            "                      ASCII without spaces or commas; no key may be of both roles.\n"
            "                      Several keys of a role are all accepted: add the new key,\n"
            "                      move the clients, then drop the old one (docs/security.md)\n"
            "  --admin-key K       an admin key; repeatable\n"
            "  --api-key K         an api key; repeatable. Both flags show the key to every\n"
            "                      local user in ps and /proc/PID/cmdline: prefer --keys-file\n"
            "                      or LAUREL_ADMIN_KEY and LAUREL_API_KEY (comma-separated\n"
            "                      keys). Keys of the file, the environment and the flags are\n"
            "                      all accepted. With no key at all the router only binds to\n"
            "                      loopback, and endpoints that need a key answer 401\n"
            "  --tls-cert FILE     serve HTTPS and WSS (TLS 1.2 or later) instead of HTTP and\n"
            "                      WS on --http, with this PEM certificate (then any\n"
            "                      intermediates); plain HTTP is not served then. Needs\n"
            "                      --tls-key. To rotate it, replace the files and restart\n"
            "                      the router (docs/security.md, \"TLS\")\n"
            "  --tls-key FILE      the certificate's PEM private key, unencrypted; keep it 0600\n"
            "  --timeout-ms MS     deadline of one call to a region (default 5000)\n"
            "  --cluster-key-file PATH  the replicas' cluster key (docs/security.md; default\n"
            "                      $" PEERAUTH_ENV
            "); required unless every replica is\n"
            "                      on a loopback address\n"
            "  --ws-max-conns N    WebSocket connections at most (default 200000)\n"
            "  --ws-max-per-ip N   WebSocket connections per client address (default 200000)\n"
            "  --ws-ping-ms MS     WebSocket ping period; silent peers close after two\n"
            "                      (default 20000)\n"
            "  --ws-queue-msgs N   messages queued per WebSocket before a slow consumer is\n"
            "                      closed (default 1000; the queue also holds 1 MiB at most)\n"
            "  --http-max-conns N  plain HTTP connections at most (default 50000); one more\n"
            "                      is closed as soon as it is accepted (docs/security.md)\n"
            "  --http-max-per-ip N plain HTTP connections per client address (default 10000)\n"
            "  --ws-max-gets N     gets in flight per WebSocket (default 64); past it, an\n"
            "                      error event (rate_limited) answers the get\n"
            "  --ws-max-resumes N  resumes replaying per WebSocket (default 8), likewise\n"
            "  --player-cache N    players whose region is remembered (default 1000000);\n"
            "                      past that, one at random is forgotten and looked up again\n"
            "  --hold-boards IDS   boards the read model holds in memory (docs/consistency.md):\n"
            "                      * (default) every board read, up to 64; \"\" none; or ids,\n"
            "                      comma-separated. Other boards are read from the regions\n"
            "  --limit-key-writes R[/B]   writes a second per API key, bursts of B (default\n"
            "                      100000, B = R); 0 = unlimited. Past it: 429 rate_limited\n"
            "  --limit-addr-writes R[/B]  writes a second per client address (default 50000)\n"
            "  --limit-addr-reads R[/B]   reads a second per client address (default 100000)\n"
            "  --limit-table N     buckets each limit keeps (default 65536); past that the\n"
            "                      least recently used address starts again (docs/security.md)\n"
            "  --log-format F      text (default) or json: one object per line with ts, level,\n"
            "                      process, node, region, term, msg (docs/operations.md)\n"
            "  --log-requests N    log one request in N with method, route, status and\n"
            "                      latency (default 100; 0: none); 5xx answers are always\n"
            "                      logged\n"
            "  --cors-origins LIST web origins whose pages may read the answers in a browser\n"
            "                      (Access-Control-Allow-Origin; docs/api.md, \"CORS\"): * (the\n"
            "                      default) any, or comma-separated origins such as\n"
            "                      https://game.example,http://localhost:3000\n");
}

/* getopt values of --limit-* (one per enum rlimit_kind) and --limit-table. */
#define CLI_ROUTER__LIMIT 0x100
#define CLI_ROUTER__LIMIT_TABLE (CLI_ROUTER__LIMIT + RLIMIT_N)
/* getopt values of the logging flags. */
#define CLI_ROUTER__LOG_FORMAT 0x300
#define CLI_ROUTER__LOG_REQUESTS 0x301

/* --limit-*: RATE[/BURST], whole numbers; a rate of 0 turns the limit off. 0, or -1 with a
 * line on stderr. */
static int cli_router__limit(const char *flag, const char *s, struct rlimit_config *lc,
                             enum rlimit_kind k)
{
    char *end = NULL;
    errno = 0;
    unsigned long long rate = strtoull(s, &end, 10), burst = 0;
    if (s[0] >= '0' && s[0] <= '9' && *end == '/' && end[1] >= '0' && end[1] <= '9') {
        burst = strtoull(end + 1, &end, 10);
    }
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || rate >= RLIMIT_UNLIMITED ||
        burst >= RLIMIT_UNLIMITED) {
        fprintf(stderr, "laurel router: --%s %s: expected RATE or RATE/BURST (0: unlimited)\n",
                flag, s);
        return -1;
    }
    lc->rate[k] = rate == 0 ? RLIMIT_UNLIMITED : (uint32_t)rate;
    lc->burst[k] = (uint32_t)burst;
    return 0;
}

/* Read the comma-separated replica addresses @list (modified in place: @rg->rpc points into
 * it) into @rg. @flag and @arg name the flag in the message. 0, or -1 with a line on stderr:
 * no address, more than UPSTREAM_MAX_REPLICAS, or one that is not HOST:PORT (lib/addr.h). */
static int cli_router__rpcs(const char *flag, const char *arg, char *list, struct router_region *rg)
{
    char *save = NULL;
    rg->n = 0;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (rg->n == UPSTREAM_MAX_REPLICAS) {
            fprintf(stderr, "laurel router: --%s %s: at most %d replicas\n", flag, arg,
                    UPSTREAM_MAX_REPLICAS);
            return -1;
        }
        if (!addr_valid(t)) {
            fprintf(stderr, "laurel router: --%s %s: %s is not HOST:PORT\n", flag, arg, t);
            return -1;
        }
        rg->rpc[rg->n++] = t;
    }
    if (rg->n == 0) {
        fprintf(stderr, "laurel router: --%s %s: no replicas\n", flag, arg);
        return -1;
    }
    return 0;
}

/* The field a numeric flag (getopt value @c) sets, or NULL for any other value. */
static unsigned *cli_router__field(struct router_config *cfg, int c)
{
    switch (c) {
    case 't': return &cfg->timeout_ms;
    case 'W': return &cfg->ws_max_conns;
    case 'I': return &cfg->ws_max_per_ip;
    case 'P': return &cfg->ws_ping_ms;
    case 'Q': return &cfg->ws_queue_msgs;
    case 'C': return &cfg->player_cache;
    case 'G': return &cfg->ws_max_gets;
    case 'M': return &cfg->http_max_conns;
    case 'N': return &cfg->http_max_per_ip;
    case 'S': return &cfg->ws_max_resumes;
    default: return NULL;
    }
}

/* The long name of the option whose getopt value is @c. */
static const char *cli_router__flag(const struct option *opts, int c)
{
    for (; opts->name != NULL; opts++) {
        if (opts->val == c) {
            return opts->name;
        }
    }
    return "?";
}

/* A numeric flag: digits only, 1 to UINT_MAX. 0 is refused too, since 0 means "default". */
static int cli_router__number(const char *flag, const char *s, unsigned *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v == 0 || v > UINT_MAX) {
        fprintf(stderr, "laurel router: --%s %s: expected a whole number from 1 to %u\n", flag, s,
                UINT_MAX);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* Add the keys of @file (when given) and of the environment to @ks, which holds the flags'.
 * 0, or -1 with a line on stderr: a bad key or file, or no key at all on an @http address
 * other people can reach (no key on loopback: a warning through @log). */
static int cli_router__keys(struct keyset *ks, const char *file, const char *http,
                            struct logger *log)
{
    char errmsg[LR_ERRMSG_SIZE];
    if ((file != NULL && keyset_load_file(ks, file, errmsg) != 0) ||
        keyset_load_env(ks, errmsg) != 0) {
        fprintf(stderr, "laurel router: %s\n", errmsg);
        return -1;
    }
    if (keyset_count(ks, KEYSET_ADMIN) + keyset_count(ks, KEYSET_API) > 0) {
        return 0;
    }
    if (!addr_is_loopback(http)) {
        fprintf(stderr,
                "laurel router: --http %s is reachable from other hosts and no key is given: "
                "pass --keys-file PATH or set LAUREL_ADMIN_KEY and LAUREL_API_KEY "
                "(docs/security.md), or bind to 127.0.0.1\n",
                http);
        return -1;
    }
    LOG(log, LOG_WARN, "laurel router: no keys: endpoints that need a key answer 401");
    return 0;
}

/* --tls-cert and --tls-key: both or neither, and files a TLS server can use, checked here so
 * the message names the flag at fault. 0, or -1 with a line on stderr. */
static int cli_router__tls(const char *cert, const char *key)
{
    char errmsg[LR_ERRMSG_SIZE];
    enum certs_file bad;
    if (cert == NULL && key == NULL) {
        return 0;
    }
    if (cert == NULL || key == NULL) {
        fprintf(stderr, "laurel router: --%s is given without --%s: TLS needs both\n",
                cert ? "tls-cert" : "tls-key", cert ? "tls-key" : "tls-cert");
        return -1;
    }
    if (certs_check_pair(cert, key, &bad, errmsg) != 0) {
        fprintf(stderr, "laurel router: --%s: %s\n", bad == CERTS_CERT ? "tls-cert" : "tls-key",
                errmsg);
        return -1;
    }
    return 0;
}

struct cli_router__run {
    struct router *router;
    uv_signal_t sigint, sigterm;
};

static void cli_router__stopped(void *data)
{
    struct cli_router__run *run = data;
    uv_close((uv_handle_t *)&run->sigint, NULL);
    uv_close((uv_handle_t *)&run->sigterm, NULL);
}

static void cli_router__signal(uv_signal_t *h, int signum)
{
    struct cli_router__run *run = h->data;
    (void)signum;
    if (run->router) {
        router_stop(run->router, cli_router__stopped, run);
        run->router = NULL;
    }
}

static const struct option cli_router__opts[] = {
    {"http", required_argument, NULL, 'H'},
    {"region", required_argument, NULL, 'r'},
    {"meta", required_argument, NULL, 'm'},
    {"admin-key", required_argument, NULL, 'a'},
    {"api-key", required_argument, NULL, 'k'},
    {"keys-file", required_argument, NULL, 'K'},
    {"cluster-key-file", required_argument, NULL, 'c'},
    {"timeout-ms", required_argument, NULL, 't'},
    {"ws-max-conns", required_argument, NULL, 'W'},
    {"ws-max-per-ip", required_argument, NULL, 'I'},
    {"ws-ping-ms", required_argument, NULL, 'P'},
    {"ws-queue-msgs", required_argument, NULL, 'Q'},
    {"player-cache", required_argument, NULL, 'C'},
    {"hold-boards", required_argument, NULL, 'B'},
    {"ws-max-gets", required_argument, NULL, 'G'},
    {"http-max-conns", required_argument, NULL, 'M'},
    {"http-max-per-ip", required_argument, NULL, 'N'},
    {"ws-max-resumes", required_argument, NULL, 'S'},
    {"limit-key-writes", required_argument, NULL, CLI_ROUTER__LIMIT + RLIMIT_KEY_WRITES},
    {"limit-addr-writes", required_argument, NULL, CLI_ROUTER__LIMIT + RLIMIT_ADDR_WRITES},
    {"limit-addr-reads", required_argument, NULL, CLI_ROUTER__LIMIT + RLIMIT_ADDR_READS},
    {"limit-table", required_argument, NULL, CLI_ROUTER__LIMIT_TABLE},
    {"log-format", required_argument, NULL, CLI_ROUTER__LOG_FORMAT},
    {"log-requests", required_argument, NULL, CLI_ROUTER__LOG_REQUESTS},
    {"cors-origins", required_argument, NULL, 'O'},
    {"tls-cert", required_argument, NULL, 'T'},
    {"tls-key", required_argument, NULL, 'Y'},
    {"config", required_argument, NULL, 'X'},
    {"id", required_argument, NULL, 'i'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};

/* The command line once --config is expanded (cli/cli_conf.c). */
static int cli_router__main(int argc, char **argv)
{
    struct router_config cfg;
    /* What --region and --meta point into (rpc[] of cfg's regions), until router_start. */
    static char specs[ROUTER_MAX_REGIONS][1024], meta_spec[1024];
    /* The router's logger (node 0, region "router"); it outlives the router, which stops
     * inside uv_run below. */
    struct logger log;
    struct keyset keys;
    const char *keys_file = NULL;
    char errmsg[LR_ERRMSG_SIZE];
    const char *cluster_key_file = NULL;
    struct peerauth_key cluster_key;
    int have_cluster_key;
    int c;
    keyset_init(&keys);
    log_init(&log, stderr, LOG_INFO, 0, "router");
    memset(&cfg, 0, sizeof cfg);
    log_set_process(&log, "router", LOG_FORMAT_TEXT);
    cfg.log = &log;
    cfg.http = "127.0.0.1:8080";
    cfg.log_requests = ROUTER_DEFAULT_LOG_REQUESTS;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", cli_router__opts, NULL)) != -1) {
        switch (c) {
        case 'H': cfg.http = optarg; break;
        case 'B': cfg.hold_boards = optarg; break;
        case 'O': cfg.cors_origins = optarg; break;
        case 'r': {
            if (cfg.nregions == ROUTER_MAX_REGIONS) {
                fprintf(stderr, "laurel router: at most %d regions\n", ROUTER_MAX_REGIONS);
                return 2;
            }
            struct router_region *rg = &cfg.regions[cfg.nregions];
            char *spec = specs[cfg.nregions];
            snprintf(spec, sizeof specs[0], "%s", optarg);
            char *eq = strchr(spec, '=');
            if (eq == NULL || eq == spec || (size_t)(eq - spec) >= sizeof rg->id) {
                fprintf(stderr, "laurel router: --region %s: expected ID=RPC[,RPC...]\n", optarg);
                return 2;
            }
            *eq = '\0';
            snprintf(rg->id, sizeof rg->id, "%.64s", spec);
            if (strcmp(rg->id, "meta") == 0) {
                fprintf(stderr,
                        "laurel router: --region meta: \"meta\" is the metadata group; "
                        "use --meta RPC[,RPC...]\n");
                return 2;
            }
            if (cli_router__rpcs("region", optarg, eq + 1, rg) != 0) {
                return 2;
            }
            cfg.nregions++;
            break;
        }
        case 'm':
            if (cfg.meta.n > 0) {
                fprintf(stderr, "laurel router: --meta given twice\n");
                return 2;
            }
            snprintf(cfg.meta.id, sizeof cfg.meta.id, "meta");
            snprintf(meta_spec, sizeof meta_spec, "%s", optarg);
            if (cli_router__rpcs("meta", optarg, meta_spec, &cfg.meta) != 0) {
                return 2;
            }
            break;
        case 'a':
        case 'k':
            if (keyset_add(&keys, c == 'a' ? KEYSET_ADMIN : KEYSET_API, optarg, strlen(optarg),
                           c == 'a' ? "--admin-key" : "--api-key", errmsg) != 0) {
                fprintf(stderr, "laurel router: %s\n", errmsg);
                return 2;
            }
            break;
        case 'K': keys_file = optarg; break;
        case 'T': cfg.tls_cert = optarg; break;
        case 'Y': cfg.tls_key = optarg; break;
        case 'X':
        case 'i': break; /* read by cli_router */
        case 'c': cluster_key_file = optarg; break;
        case 'h': cli_router__usage(stdout); return 0;
        case CLI_ROUTER__LOG_FORMAT:
            if (log_format_parse(optarg, &log.format) != 0) {
                fprintf(stderr, "laurel router: --log-format: text or json\n");
                return 2;
            }
            break;
        case CLI_ROUTER__LOG_REQUESTS: {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || errno != 0 || v > UINT_MAX) {
                fprintf(stderr,
                        "laurel router: --log-requests %s: expected a whole number (one request "
                        "in N is logged; 0: none)\n",
                        optarg);
                return 2;
            }
            cfg.log_requests = (unsigned)v;
            break;
        }
        case CLI_ROUTER__LIMIT_TABLE:
            if (cli_router__number("limit-table", optarg, &cfg.limits.slots) != 0) {
                return 2;
            }
            break;
        default: {
            if (c >= CLI_ROUTER__LIMIT && c < CLI_ROUTER__LIMIT_TABLE) {
                enum rlimit_kind k = (enum rlimit_kind)(c - CLI_ROUTER__LIMIT);
                if (cli_router__limit(cli_router__flag(cli_router__opts, c), optarg, &cfg.limits,
                                      k) != 0) {
                    return 2;
                }
                break;
            }
            unsigned *field = cli_router__field(&cfg, c);
            if (field == NULL) {
                cli_router__usage(stderr);
                return 2;
            }
            if (cli_router__number(cli_router__flag(cli_router__opts, c), optarg, field) != 0) {
                return 2;
            }
            break;
        }
        }
    }
    if (cfg.nregions == 0) {
        fprintf(stderr, "laurel router: --region is required\n\n");
        cli_router__usage(stderr);
        return 2;
    }
    if (cli_router__tls(cfg.tls_cert, cfg.tls_key) != 0) {
        return 2;
    }
    if (cli_router__keys(&keys, keys_file, cfg.http, &log) != 0) {
        return 2;
    }
    cfg.keys = &keys;
    if (peerauth_key_config(&cluster_key, &have_cluster_key, cluster_key_file, getenv(PEERAUTH_ENV),
                            errmsg) != 0) {
        fprintf(stderr, "laurel router: %s\n", errmsg);
        return 2;
    }
    cfg.cluster_key = have_cluster_key ? &cluster_key : NULL;
    signal(SIGPIPE, SIG_IGN);
    /* One descriptor per WebSocket, before lws sizes its tables from the limit. */
    sys_raise_nofile((cfg.ws_max_conns ? cfg.ws_max_conns : WS_DEFAULT_MAX_CONNS) + 4096UL);
    lws_set_log_level(LLL_ERR | LLL_WARN, NULL); /* lws's log level is process-wide */
    uv_loop_t *loop = uv_default_loop();
    struct cli_router__run run = {0};
    if (router_start(loop, &cfg, &run.router, errmsg) != 0) {
        LOG(&log, LOG_ERROR, "laurel router: %s", errmsg);
        return 1;
    }
    LOG(&log, LOG_INFO, "laurel router: serving %s://%s with %u region(s)%s",
        cfg.tls_cert ? "https" : "http", cfg.http, cfg.nregions,
        cfg.meta.n > 0 ? " and the metadata group" : "");
    uv_signal_init(loop, &run.sigint);
    uv_signal_init(loop, &run.sigterm);
    run.sigint.data = run.sigterm.data = &run;
    uv_signal_start(&run.sigint, cli_router__signal, SIGINT);
    uv_signal_start(&run.sigterm, cli_router__signal, SIGTERM);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}

int cli_router(int argc, char **argv)
{
    const char *config = NULL, *id = NULL;
    int own_groups = 0, has_tls = 0, c, rv;
    /* A first pass for the file and this router's id; cli_router__main reads every flag. */
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", cli_router__opts, NULL)) != -1) {
        config = c == 'X' ? optarg : config;
        id = c == 'i' ? optarg : id;
        own_groups = own_groups || c == 'r' || c == 'm';
    }
    opterr = 1;
    if (config == NULL) {
        return cli_router__main(argc, argv);
    }
    /* TLS is passed on only to a router that takes it (a build with --tls-cert). */
    for (const struct option *o = cli_router__opts; o->name; o++) {
        has_tls = has_tls || strcmp(o->name, "tls-cert") == 0;
    }
    struct conf_cluster *cc;
    char errmsg[LR_ERRMSG_SIZE];
    if (conf_cluster_load(config, &cc, errmsg) != 0) {
        fprintf(stderr, "laurel router: %s\n", errmsg);
        return 2;
    }
    struct cli_argv xa = {0};
    rv = cli_conf_router_argv(config, cc, id, own_groups, has_tls, argc, argv, &xa);
    conf_cluster_free(cc);
    if (rv != 0) {
        return rv;
    }
    rv = cli_router__main(xa.argc, xa.argv);
    cli_argv_free(&xa);
    return rv;
}
