/* bench/bench_http.c — `laurel bench http`: the public HTTP API of a real cluster.
 *
 * By default the bench starts its own cluster as a child (`laurel dev`, three regions of
 * three replicas, fresh data in a temporary directory), waits for GET /readyz to answer 200,
 * and stops it with SIGTERM at the end; --router uses a running one instead. It seeds one
 * board (desc, best) and players spread round-robin over the regions, gives every player a
 * score (POST /v1/events in batches of 100, or one by one when /v1/events is not there), then
 * runs each workload for a fixed time on N keep-alive connections, one request outstanding on
 * each (httpload.h):
 *   http_score_rps          POST /v1/boards/{b}/scores, a random player, a fresh key each
 *   http_events_cps         POST /v1/events, 100 score items a request (commands per second:
 *                           items answered 2xx inside 2xx answers)
 *   http_rank_rps           GET /v1/boards/{b}/players/{p}, a random player
 *   http_around_rps         the same with around=5
 *   http_top100_global_rps  GET /v1/boards/{b}/top?limit=100 (scope global: regions merged)
 *   http_player_create_rps  PUT /v1/players/{id}, an id no one created (its claim in the
 *                           metadata group, then the write to its region), regions round-robin;
 *                           only 201 counts
 * each with _p50_ms and _p99_ms (per request). Rates count 2xx answers only (201 for
 * creations); any other answer or transport error is printed on an `errors` line and the run
 * goes on. Last, one figure that is not a load:
 *   cycle_close_ms          a second board with reset_period_s 60 and a score for every seeded
 *                           player in one cycle; the time from that cycle's end to the first
 *                           GET /v1/boards/{id}/cycles/{n} that answers 200 (polled every
 *                           10 ms). It waits for the cycle boundary (up to a minute), so
 *                           --quick leaves it out unless --only names it.
 * The cluster is then stopped and the peers run alone (bench_peer.c); the ratios come last.
 *
 * This file is the command and its cluster: options, the `laurel dev` child, the seeded
 * cluster `laurel bench ws` borrows (bench_http__site_up), the ratios, and the figures and
 * child-process helpers bench_peer.c and bench_ws.c share (bench_http_int.h). What is sent
 * and measured, the seed and the workloads, is in bench_http_workloads.c.
 *
 * The cluster, the load generator and (later) each peer share the machine's cores: figures are
 * those of everything on one machine, not of a server alone. Nothing here asserts a time. */
#include "bench_int.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../lib/err.h"
#include "../proto/client.h"
#include "bench_http_int.h"
#include "httpload.h"

/* ---- figures and child processes (shared with bench_peer.c and bench_ws.c) --------------- */

void bench_http__fig(struct bench_http__figs *fs, const char *name, double value, int decimals,
                     const char *unit)
{
    printf("figure %s %.*f %s\n", name, decimals, value, unit);
    fflush(stdout);
    if (fs->n < BENCH_HTTP__FIGS_MAX) {
        snprintf(fs->f[fs->n].name, sizeof fs->f[fs->n].name, "%s", name);
        fs->f[fs->n].value = value;
        fs->n++;
    }
}

int bench_http__fig_get(const struct bench_http__figs *fs, const char *name, double *value)
{
    for (unsigned i = 0; i < fs->n; i++) {
        if (strcmp(fs->f[i].name, name) == 0) {
            *value = fs->f[i].value;
            return 1;
        }
    }
    return 0;
}

int bench_http__which(const char *name, char *out, size_t cap)
{
    if (strchr(name, '/')) {
        snprintf(out, cap, "%s", name);
        return access(out, X_OK) == 0 ? 0 : -1;
    }
    const char *path = getenv("PATH");
    char dirs[4096], *save = NULL;
    snprintf(dirs, sizeof dirs, "%s", path ? path : "/usr/local/bin:/usr/bin:/bin");
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        int n = snprintf(out, cap, "%s/%s", d, name);
        if (n > 0 && (size_t)n < cap && access(out, X_OK) == 0) {
            return 0;
        }
    }
    return -1;
}

pid_t bench_http__spawn(const char *const *argv, const char *log, int *in_fd)
{
    int p[2] = {-1, -1};
    if (in_fd && pipe2(p, O_CLOEXEC) != 0) {
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child dies with us: no servers left behind when a run is killed. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int out = open(log ? log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        int in = in_fd ? p[0] : open("/dev/null", O_RDONLY);
        if (out < 0 || in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) {
            _exit(126);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (in_fd) {
        close(p[0]);
        if (pid < 0) {
            close(p[1]);
        } else {
            *in_fd = p[1];
        }
    }
    return pid;
}

int bench_http__wait(pid_t pid, unsigned timeout_ms)
{
    int status;
    pid_t w;
    for (unsigned waited = 0;; waited += 20) {
        w = waitpid(pid, &status, timeout_ms ? WNOHANG : 0);
        if (w == pid || w < 0 || (timeout_ms && waited >= timeout_ms)) {
            break;
        }
        bench_http__sleep_ms(20);
    }
    if (w == 0) {
        kill(pid, SIGKILL);
        w = waitpid(pid, &status, 0);
    }
    if (w != pid) {
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int bench_http__run(const char *const *argv, const char *log)
{
    pid_t pid = bench_http__spawn(argv, log, NULL);
    return pid < 0 ? -1 : bench_http__wait(pid, 0);
}

long bench_http__slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t n = 0;
    if (fd < 0 || cap == 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0) {
            break;
        }
        n += (size_t)r;
    }
    buf[n] = '\0';
    close(fd);
    return (long)n;
}

static int bench_http__unlink(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    remove(path);
    return 0;
}

void bench_http__rmrf(const char *dir)
{
    nftw(dir, bench_http__unlink, 16, FTW_DEPTH | FTW_PHYS);
}

void bench_http__sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

double bench_http__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the cluster ------------------------------------------------------------------------- */

static int bench_http__wait_ready(struct bench_http *b, double timeout_s)
{
    char errmsg[LR_ERRMSG_SIZE];
    double end = bench_http__now() + timeout_s;
    while (bench_http__now() < end) {
        int status = 0;
        if (b->dev > 0 && waitpid(b->dev, NULL, WNOHANG) == b->dev) {
            b->dev = 0;
            fprintf(stderr, "bench http: laurel dev exited early; see %s/dev.log\n", b->dir);
            return LR_EUNAVAILABLE;
        }
        if (bench_http__call(b, "GET", "/readyz", NULL, NULL, &status, errmsg) == 0 &&
            status == 200) {
            return 0;
        }
        bench_http__sleep_ms(100);
    }
    fprintf(stderr, "bench http: %s not ready after %.0f s\n", b->addr, timeout_s);
    return LR_EUNAVAILABLE;
}

static int bench_http__cluster_start(struct bench_http *b)
{
    char regions[ROUTER_MAX_REGIONS * 66] = "", replicas[16], data[96], log[96];
    snprintf(b->dir, sizeof b->dir, "/tmp/laurel-bench-http-XXXXXX");
    if (mkdtemp(b->dir) == NULL) {
        fprintf(stderr, "bench http: mkdtemp: %s\n", strerror(errno));
        return LR_EIO;
    }
    for (unsigned g = 0; g < b->nregions; g++) {
        size_t n = strlen(regions);
        snprintf(regions + n, sizeof regions - n, "%s%s", g ? "," : "", b->regions[g]);
    }
    snprintf(replicas, sizeof replicas, "%u", b->replicas);
    snprintf(data, sizeof data, "%s/data", b->dir);
    snprintf(log, sizeof log, "%s/dev.log", b->dir);
    snprintf(b->addr, sizeof b->addr, "127.0.0.1:%d", client_free_port());
    snprintf(b->admin_key, sizeof b->admin_key, "bench-admin-%s", b->run);
    snprintf(b->api_key, sizeof b->api_key, "bench-api-%s", b->run);
    const char *argv[] = {"/proc/self/exe", "dev",        "--regions", regions,    "--replicas",
                          replicas,         "--data",     data,        "--http",   b->addr,
                          "--admin-key",    b->admin_key, "--api-key", b->api_key, NULL};
    b->dev = bench_http__spawn(argv, log, NULL);
    if (b->dev < 0) {
        b->dev = 0;
        return LR_EIO;
    }
    fprintf(stderr, "bench http: laurel dev --regions %s --replicas %u at %s (data in %s)\n",
            regions, b->replicas, b->addr, b->dir);
    return bench_http__wait_ready(b, 60);
}

/* SIGTERM the `laurel dev` child *@dev (if any), wait, remove @dir; *@dev becomes 0. */
static void bench_http__cluster_stop(pid_t *dev, const char *dir)
{
    if (*dev > 0) {
        kill(*dev, SIGTERM);
        int st = bench_http__wait(*dev, 20000);
        if (st != 0) {
            fprintf(stderr, "bench http: laurel dev exited with %d; see %s/dev.log\n", st, dir);
        }
        *dev = 0;
        bench_http__rmrf(dir);
    }
}

/* Names no earlier run used, so that a running cluster can be benchmarked again. */
static void bench_http__names(struct bench_http *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t r = bench_http__mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                                 ((uint64_t)getpid() << 8));
    snprintf(b->run, sizeof b->run, "%06llx", (unsigned long long)(r & 0xffffff));
    snprintf(b->board, sizeof b->board, "bench-%s", b->run);
    snprintf(b->pprefix, sizeof b->pprefix, "b%sp", b->run);
}

int bench_http__site_up(struct bench_http__site *s)
{
    struct bench_http *b = calloc(1, sizeof *b);
    int rv;
    if (b == NULL) {
        return LR_ENOMEM;
    }
    b->quick = s->quick;
    memcpy(b->regions, s->regions, sizeof b->regions);
    b->nregions = s->nregions;
    b->replicas = s->replicas;
    b->players = s->players;
    b->conns = 50;
    snprintf(b->addr, sizeof b->addr, "%s", s->addr);
    snprintf(b->admin_key, sizeof b->admin_key, "%s", s->admin_key);
    snprintf(b->api_key, sizeof b->api_key, "%s", s->api_key);
    bench_http__names(b);
    rv = b->addr[0] ? bench_http__wait_ready(b, 10) : bench_http__cluster_start(b);
    /* Whatever happened, the caller learns what to stop. */
    snprintf(s->addr, sizeof s->addr, "%s", b->addr);
    snprintf(s->admin_key, sizeof s->admin_key, "%s", b->admin_key);
    snprintf(s->api_key, sizeof s->api_key, "%s", b->api_key);
    snprintf(s->run, sizeof s->run, "%s", b->run);
    snprintf(s->board, sizeof s->board, "%s", b->board);
    snprintf(s->pprefix, sizeof s->pprefix, "%s", b->pprefix);
    snprintf(s->dir, sizeof s->dir, "%s", b->dir);
    s->dev = b->dev;
    if (rv == 0) {
        rv = bench_http__seed(b);
    }
    free(b);
    return rv;
}

void bench_http__site_down(struct bench_http__site *s)
{
    bench_http__cluster_stop(&s->dev, s->dir);
}

int bench_http__regions(const char *csv, char (*regions)[65], unsigned *n)
{
    char list[1024], *save = NULL;
    *n = 0;
    if (strlen(csv) >= sizeof list) {
        return -1;
    }
    snprintf(list, sizeof list, "%s", csv);
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (*n == ROUTER_MAX_REGIONS || strlen(t) >= 65) {
            return -1;
        }
        snprintf(regions[(*n)++], 65, "%s", t);
    }
    return *n > 0 ? 0 : -1;
}

/* ---- ratios and targets ------------------------------------------------------------------ */

static const struct {
    const char *name, *ours, *peer;
    double target; /* 0: none */
} bench_http__ratios[] = {
    /* The targets of issue 14 (docs/benchmarks.md). */
    {"ratio_score_vs_redis_aof_always", "http_score_rps", "redis_zadd_aof_always_rps", 0.6},
    {"ratio_events_vs_redis_aof_always_p16", "http_events_cps", "redis_zadd_p16_aof_always_rps",
     0.5},
    {"ratio_rank_vs_redis_zrevrank", "http_rank_rps", "redis_zrevrank_rps", 0.5},
    {"ratio_around_vs_redis_zrevrank", "http_around_rps", "redis_zrevrank_rps", 0.4},
    {"ratio_top100_vs_redis_zrevrange", "http_top100_global_rps", "redis_zrevrange100_rps", 1.0},
    {"ratio_score_vs_pg_upsert", "http_score_rps", "pg_upsert_tps", 0},
    {"ratio_rank_vs_pg_rank", "http_rank_rps", "pg_rank_tps", 0},
    {"ratio_top100_vs_pg_top100", "http_top100_global_rps", "pg_top100_tps", 1.0},
};

static void bench_http__print_ratios(struct bench_http *b)
{
    for (size_t i = 0; i < sizeof bench_http__ratios / sizeof bench_http__ratios[0]; i++) {
        double ours, peer;
        if (!bench_http__fig_get(&b->figs, bench_http__ratios[i].ours, &ours) ||
            !bench_http__fig_get(&b->figs, bench_http__ratios[i].peer, &peer) || peer <= 0) {
            continue;
        }
        double r = ours / peer;
        bench_http__fig(&b->figs, bench_http__ratios[i].name, r, 2, "x");
        if (bench_http__ratios[i].target > 0) {
            printf("target %s >= %.1f: %s\n", bench_http__ratios[i].name,
                   bench_http__ratios[i].target,
                   r >= bench_http__ratios[i].target ? "met" : "NOT met");
        }
    }
}

/* ---- the command ------------------------------------------------------------------------- */

static void bench_http__usage(FILE *f)
{
    fprintf(f,
            "usage: laurel bench http [--quick] [--no-peers] [--router HOST:PORT --api-key K\n"
            "                         --admin-key K] [--regions a,b,c] [--replicas N]\n"
            "                         [--conns N] [--players N] [--seconds S] [--only a,b]\n"
            "\n"
            "The public HTTP API of a real cluster under closed-loop load: score writes (single\n"
            "and through /v1/events), ranks, around-me, the global top 100 and player creations\n"
            "(http_player_create_rps); then cycle_close_ms, the delay from a cycle's end to its\n"
            "close record (a board with reset_period_s 60: it waits for the next cycle boundary,\n"
            "up to 60 s); then the same operations on Redis and PostgreSQL when they are\n"
            "installed, and the ratios. Without --router it starts `laurel dev` (default\n"
            "--regions na,eu,apac --replicas 3, with its metadata group) in a temporary\n"
            "directory and stops it at the end.\n"
            "  --quick      %.0f s a workload, %u players, shorter peer runs (default %.0f s, %u)\n"
            "               and no cycle_close_ms unless --only names it\n"
            "  --no-peers   skip Redis and PostgreSQL\n"
            "  --conns N    connections (and peer clients), default 50\n"
            "  --only a,b   run only these workloads (figure names, e.g. http_rank_rps,\n"
            "               cycle_close_ms)\n"
            "Each figure prints as `figure <name> <value> <unit>`, errors as\n"
            "`errors <name>: ...`, skipped peers as `peer skipped: ...`.\n",
            3.0, 10000u, 15.0, 30000u);
}

static int bench_http__parse(struct bench_http *b, int argc, char **argv)
{
    static const struct option opts[] = {{"quick", no_argument, NULL, 'q'},
                                         {"no-peers", no_argument, NULL, 'P'},
                                         {"router", required_argument, NULL, 'R'},
                                         {"api-key", required_argument, NULL, 'k'},
                                         {"admin-key", required_argument, NULL, 'a'},
                                         {"regions", required_argument, NULL, 'r'},
                                         {"replicas", required_argument, NULL, 'n'},
                                         {"conns", required_argument, NULL, 'c'},
                                         {"players", required_argument, NULL, 'p'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {"only", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *regions = "na,eu,apac";
    long players = 0;
    int c;
    b->peers = 1;
    b->replicas = 3;
    b->conns = 50;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'q': b->quick = 1; break;
        case 'P': b->peers = 0; break;
        case 'R': snprintf(b->addr, sizeof b->addr, "%s", optarg); break;
        case 'k': snprintf(b->api_key, sizeof b->api_key, "%s", optarg); break;
        case 'a': snprintf(b->admin_key, sizeof b->admin_key, "%s", optarg); break;
        case 'r': regions = optarg; break;
        case 'n': b->replicas = (unsigned)atoi(optarg); break;
        case 'c': b->conns = (unsigned)atoi(optarg); break;
        case 'p': players = atol(optarg); break;
        case 's': b->seconds = atof(optarg); break;
        case 'o': snprintf(b->only, sizeof b->only, ",%s,", optarg); break;
        case 'h': bench_http__usage(stdout); return 0;
        default: bench_http__usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "laurel bench http: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (bench_http__regions(regions, b->regions, &b->nregions) != 0) {
        fprintf(stderr, "laurel bench http: --regions: 1 to %d ids\n", ROUTER_MAX_REGIONS);
        return 2;
    }
    if (b->nregions == 0 || b->replicas < 1 || b->conns < 1 || b->conns > HTTPLOAD_MAX_CONNS ||
        players < 0 || players > 9999900 || b->seconds < 0) {
        fprintf(stderr,
                "laurel bench http: bad --regions, --replicas, --conns, --players or "
                "--seconds\n");
        return 2;
    }
    if (b->addr[0] && (!b->api_key[0] || !b->admin_key[0])) {
        fprintf(stderr, "laurel bench http: --router needs --api-key and --admin-key\n");
        return 2;
    }
    if (players == 0) {
        players = b->quick ? 10000 : 30000;
    }
    /* Whole batches of /v1/events: every seeded item names an existing player. */
    b->players =
        (unsigned)((players + BENCH_HTTP__BATCH - 1) / BENCH_HTTP__BATCH * BENCH_HTTP__BATCH);
    if (b->seconds == 0) {
        b->seconds = b->quick ? 3 : 15;
    }
    return -1;
}

int bench_http_main(int argc, char **argv)
{
    struct bench_http *b = calloc(1, sizeof *b);
    int rv;
    if (b == NULL) {
        return 1;
    }
    rv = bench_http__parse(b, argc, argv);
    if (rv >= 0) {
        free(b);
        return rv;
    }
    signal(SIGPIPE, SIG_IGN);
    bench_http__names(b);
    if (b->addr[0]) {
        rv = bench_http__wait_ready(b, 10);
    } else {
        rv = bench_http__cluster_start(b);
    }
    if (b->dev > 0) {
        printf("bench http: laurel dev, %u region(s) x %u replica(s), at %s", b->nregions,
               b->replicas, b->addr);
    } else {
        printf("bench http: the router at %s", b->addr);
    }
    printf(", %u players, %u connections, %.0f s a workload, board %s\n", b->players, b->conns,
           b->seconds, b->board);
    fflush(stdout);
    if (rv == 0) {
        rv = bench_http__seed(b);
    }
    if (rv == 0) {
        rv = bench_http__workloads(b);
    }
    /* The cluster stops before the peers start: each of them gets the machine alone. */
    bench_http__cluster_stop(&b->dev, b->dir);
    if (rv == 0 && b->peers) {
        struct bench_peer__opts po = {b->quick, b->conns, NULL};
        if (bench_peer__redis(&b->figs, &po) != 0) {
            printf("errors redis: the Redis peer failed (see above)\n");
        }
        if (bench_peer__pg(&b->figs, &po) != 0) {
            printf("errors pg: the PostgreSQL peer failed (see above)\n");
        }
        bench_http__print_ratios(b);
    }
    if (rv == 0 && b->bad[0]) {
        printf("bench http: workloads with errors: %s\n", b->bad);
    }
    fflush(stdout);
    free(b);
    return rv == 0 ? 0 : 1;
}
