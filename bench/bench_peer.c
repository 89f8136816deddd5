/* bench/bench_peer.c — the peers of `laurel bench http`: the same leaderboard operations on
 * Redis and on PostgreSQL, each a private server in a temporary directory on a free port,
 * loaded with 1 M members, driven by its own load tool with as many clients as our
 * workloads have connections, and stopped afterwards.
 *
 * Both are made durable on every acknowledged write, as laurel is (a majority of replicas
 * commit before a 2xx): Redis with an append-only file fsynced on every write
 * (--appendfsync always, no RDB snapshots), PostgreSQL with its defaults (fsync on,
 * synchronous_commit on).
 *
 * Redis (redis-benchmark, members "m:%012d" as its __rand_int__ makes them):
 *   redis_zadd_aof_always_rps       ZADD lb <random score> <random member>
 *   redis_zadd_p16_aof_always_rps   the same, 16 commands pipelined a client
 *   redis_zrevrank_rps              ZREVRANK lb <random member>
 *   redis_zrevrange100_rps          ZREVRANGE lb 0 99 WITHSCORES
 * redis-benchmark counts requests, not time, so each runs once briefly to learn its rate and
 * then for about the target duration. PostgreSQL (pgbench, prepared statements):
 *   pg_upsert_tps   INSERT .. ON CONFLICT (player_id) DO UPDATE (keeping the better score)
 *   pg_top100_tps   ORDER BY score DESC, player_id LIMIT 100 on an index of that order
 *   pg_rank_tps     count(*) of the scores above a random player's, plus one
 * A peer that is not installed is skipped with a "peer skipped: ..." line. */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../proto/client.h"
#include "bench_http_int.h"

#define BENCH_PEER__MEMBERS 1000000
#define BENCH_PEER__PG_BIN "/usr/lib/postgresql/15/bin"

static int bench_peer__write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int bench_peer__write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        return -1;
    }
    int rv = fputs(text, f) < 0 ? -1 : 0;
    return fclose(f) != 0 ? -1 : rv;
}

/* ---- Redis ---------------------------------------------------------------------------------- */

struct bench_peer__redis {
    char server[256], cli[256], bench[256];
    char dir[64], port[16], conns[16];
    pid_t pid;
};

static int bench_peer__redis_ping(struct bench_peer__redis *r)
{
    char out[128], buf[64];
    snprintf(out, sizeof out, "%s/ping.out", r->dir);
    for (int i = 0; i < 100; i++) {
        const char *argv[] = {r->cli, "-h", "127.0.0.1", "-p", r->port, "ping", NULL};
        remove(out);
        if (bench_http__run(argv, out) == 0 && bench_http__slurp(out, buf, sizeof buf) > 0 &&
            strstr(buf, "PONG")) {
            return 0;
        }
        bench_http__sleep_ms(100);
    }
    return -1;
}

/* ZADD lb in commands of 1000 members through redis-cli --pipe. */
static int bench_peer__redis_load(struct bench_peer__redis *r)
{
    char log[128], buf[256];
    const size_t per = 1000;
    int fd = -1;
    snprintf(log, sizeof log, "%s/load.out", r->dir);
    const char *argv[] = {r->cli, "-h", "127.0.0.1", "-p", r->port, "--pipe", NULL};
    pid_t pid = bench_http__spawn(argv, log, &fd);
    if (pid < 0) {
        return -1;
    }
    char *cmd = malloc(per * 64 + 64);
    int rv = cmd ? 0 : -1;
    for (size_t base = 0; rv == 0 && base < BENCH_PEER__MEMBERS; base += per) {
        size_t n = (size_t)sprintf(cmd, "*%zu\r\n$4\r\nZADD\r\n$2\r\nlb\r\n", 2 + 2 * per);
        for (size_t i = base; i < base + per; i++) {
            char score[24];
            int sl = snprintf(score, sizeof score, "%zu", (i * 2654435761u) % 1000000);
            n += (size_t)sprintf(cmd + n, "$%d\r\n%s\r\n$14\r\nm:%012zu\r\n", sl, score, i);
        }
        rv = bench_peer__write_all(fd, cmd, n);
    }
    free(cmd);
    close(fd);
    int st = bench_http__wait(pid, 0);
    if (rv != 0 || st != 0 || bench_http__slurp(log, buf, sizeof buf) < 0 ||
        strstr(buf, "errors: 0") == NULL) {
        fprintf(stderr, "bench http: redis: loading failed (see %s)\n", log);
        return -1;
    }
    return 0;
}

/* One redis-benchmark run of @cmd (NULL-terminated words) with @pipeline, @n requests.
 * @return 0 and its rps, p50 and p99 (ms) from the CSV line. */
static int bench_peer__redis_bench(struct bench_peer__redis *r, const char *const *cmd,
                                   const char *pipeline, long n, double *rps, double *p50,
                                   double *p99)
{
    char out[128], buf[4096], nreq[24];
    const char *argv[32];
    int a = 0;
    snprintf(out, sizeof out, "%s/bench.out", r->dir);
    snprintf(nreq, sizeof nreq, "%ld", n);
    argv[a++] = r->bench;
    argv[a++] = "-h";
    argv[a++] = "127.0.0.1";
    argv[a++] = "-p";
    argv[a++] = r->port;
    argv[a++] = "-c";
    argv[a++] = r->conns;
    argv[a++] = "-n";
    argv[a++] = nreq;
    argv[a++] = "-r";
    argv[a++] = "1000000";
    argv[a++] = "-P";
    argv[a++] = pipeline;
    argv[a++] = "--csv";
    for (int i = 0; cmd[i] && a < 31; i++) {
        argv[a++] = cmd[i];
    }
    argv[a] = NULL;
    remove(out);
    if (bench_http__run(argv, out) != 0 || bench_http__slurp(out, buf, sizeof buf) <= 0) {
        return -1;
    }
    /* "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
     * "p99_latency_ms","max_latency_ms" then one line of values. */
    const char *line = strstr(buf, "\n\"");
    double v[8];
    int k = 0;
    if (line == NULL) {
        return -1;
    }
    for (const char *p = strchr(line + 2, '"'); p && k < 8; p = strchr(p + 1, '"')) {
        if (p[1] == ',' && p[2] == '"') {
            v[k++] = atof(p + 3);
            p += 2;
        }
    }
    if (k < 7 || v[0] <= 0) {
        return -1;
    }
    *rps = v[0];
    *p50 = v[3];
    *p99 = v[5];
    return 0;
}

int bench_peer__redis(struct bench_http__figs *fs, const struct bench_peer__opts *o)
{
    static const struct {
        const char *name, *unit, *pipeline;
        const char *cmd[8];
    } runs[] = {
        {"redis_zadd_aof_always_rps",
         "requests/s",
         "1",
         {"ZADD", "lb", "__rand_int__", "m:__rand_int__", NULL}},
        {"redis_zadd_p16_aof_always_rps",
         "commands/s",
         "16",
         {"ZADD", "lb", "__rand_int__", "m:__rand_int__", NULL}},
        {"redis_zrevrank_rps", "requests/s", "1", {"ZREVRANK", "lb", "m:__rand_int__", NULL}},
        {"redis_zrevrange100_rps",
         "requests/s",
         "1",
         {"ZREVRANGE", "lb", "0", "99", "WITHSCORES", NULL}},
    };
    struct bench_peer__redis r;
    char log[96];
    int rv = 0;
    memset(&r, 0, sizeof r);
    if (bench_http__which("redis-server", r.server, sizeof r.server) != 0 ||
        bench_http__which("redis-cli", r.cli, sizeof r.cli) != 0 ||
        bench_http__which("redis-benchmark", r.bench, sizeof r.bench) != 0) {
        printf(
            "peer skipped: redis: redis-server, redis-cli or redis-benchmark not in PATH "
            "(apt-get install redis-server redis-tools)\n");
        return 0;
    }
    snprintf(r.dir, sizeof r.dir, "/tmp/laurel-bench-redis-XXXXXX");
    if (mkdtemp(r.dir) == NULL) {
        return -1;
    }
    snprintf(r.port, sizeof r.port, "%d", client_free_port());
    snprintf(r.conns, sizeof r.conns, "%u", o->conns);
    snprintf(log, sizeof log, "%s/redis.log", r.dir);
    const char *argv[] = {
        r.server, "--port",       r.port, "--bind",           "127.0.0.1", "--dir",
        r.dir,    "--appendonly", "yes",  "--appendfsync",    "always",    "--save",
        "",       "--daemonize",  "no",   "--protected-mode", "no",        NULL};
    fprintf(stderr, "bench http: redis: %s on port %s (AOF, fsync always), loading %d members\n",
            r.server, r.port, BENCH_PEER__MEMBERS);
    r.pid = bench_http__spawn(argv, log, NULL);
    if (r.pid < 0 || bench_peer__redis_ping(&r) != 0 || bench_peer__redis_load(&r) != 0) {
        fprintf(stderr, "bench http: redis: could not start or load (see %s)\n", log);
        rv = -1;
        goto out;
    }
    double target_s = o->quick ? 2.0 : 8.0;
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        double rps, p50, p99;
        char name[64];
        snprintf(name, sizeof name, ",%s,", runs[i].name);
        if (o->only && strstr(o->only, name) == NULL) {
            continue;
        }
        long probe = runs[i].pipeline[0] == '1' && runs[i].pipeline[1] == '\0' ? 2000 : 20000;
        if (bench_peer__redis_bench(&r, runs[i].cmd, runs[i].pipeline, probe, &rps, &p50, &p99) !=
            0) {
            fprintf(stderr, "bench http: redis: %s failed (see %s/bench.out)\n", runs[i].name,
                    r.dir);
            rv = -1;
            goto out;
        }
        long n = (long)(rps * target_s);
        n = n < 10000 ? 10000 : n > 50000000 ? 50000000 : n;
        fprintf(stderr, "bench http: redis: %s: %ld requests, %u clients, pipeline %s\n",
                runs[i].name, n, o->conns, runs[i].pipeline);
        if (bench_peer__redis_bench(&r, runs[i].cmd, runs[i].pipeline, n, &rps, &p50, &p99) != 0) {
            fprintf(stderr, "bench http: redis: %s failed (see %s/bench.out)\n", runs[i].name,
                    r.dir);
            rv = -1;
            goto out;
        }
        bench_http__fig(fs, runs[i].name, rps, 0, runs[i].unit);
        snprintf(name, sizeof name, "%s_p50_ms", runs[i].name);
        bench_http__fig(fs, name, p50, 2, "ms");
        snprintf(name, sizeof name, "%s_p99_ms", runs[i].name);
        bench_http__fig(fs, name, p99, 2, "ms");
    }
out:
    if (r.pid > 0) {
        kill(r.pid, SIGTERM);
        bench_http__wait(r.pid, 10000);
    }
    if (rv == 0) {
        bench_http__rmrf(r.dir);
    }
    return rv;
}

/* ---- PostgreSQL ----------------------------------------------------------------------------- */

struct bench_peer__pg {
    char initdb[256], pg_ctl[256], pgbench[256], psql[256], runuser[256];
    char dir[64], data[96], port[16], conns[16];
    int as_postgres; /* we are root: server commands run as user postgres */
    int started;
};

/* Run a server command (initdb, pg_ctl) as user postgres when we are root. */
static int bench_peer__pg_run(struct bench_peer__pg *p, const char *const *cmd, const char *log)
{
    const char *argv[32];
    int a = 0;
    if (p->as_postgres) {
        argv[a++] = p->runuser;
        argv[a++] = "-u";
        argv[a++] = "postgres";
        argv[a++] = "--";
    }
    for (int i = 0; cmd[i] && a < 31; i++) {
        argv[a++] = cmd[i];
    }
    argv[a] = NULL;
    return bench_http__run(argv, log);
}

static int bench_peer__psql(struct bench_peer__pg *p, const char *sqlfile)
{
    char log[128];
    snprintf(log, sizeof log, "%s/psql.log", p->dir);
    const char *argv[] = {p->psql,           "-X", "-q",       "-h", p->dir,     "-p",
                          p->port,           "-U", "postgres", "-d", "postgres", "-v",
                          "ON_ERROR_STOP=1", "-f", sqlfile,    NULL};
    return bench_http__run(argv, log);
}

/* pgbench @script for @secs seconds: tps and the average latency (ms). */
static int bench_peer__pgbench(struct bench_peer__pg *p, const char *script, double secs,
                               double *tps, double *avg_ms)
{
    char out[128], buf[8192], t[16];
    snprintf(out, sizeof out, "%s/pgbench.out", p->dir);
    snprintf(t, sizeof t, "%.0f", secs);
    const char *argv[] = {p->pgbench, "-h",       p->dir,   "-p",   p->port,    "-U", "postgres",
                          "-n",       "-c",       p->conns, "-j",   "2",        "-T", t,
                          "-M",       "prepared", "-f",     script, "postgres", NULL};
    remove(out);
    if (bench_http__run(argv, out) != 0 || bench_http__slurp(out, buf, sizeof buf) <= 0) {
        return -1;
    }
    const char *tp = strstr(buf, "tps = "), *lat = strstr(buf, "latency average = ");
    if (tp == NULL) {
        return -1;
    }
    *tps = atof(tp + 6);
    *avg_ms = lat ? atof(lat + 18) : 0;
    return *tps > 0 ? 0 : -1;
}

int bench_peer__pg(struct bench_http__figs *fs, const struct bench_peer__opts *o)
{
    static const struct {
        const char *name, *file, *sql;
    } runs[] = {
        {"pg_upsert_tps", "upsert.sql",
         "\\set p random(0, 999999)\n"
         "\\set s random(0, 999999999)\n"
         "INSERT INTO scores (player_id, score) VALUES ('p' || lpad(:p::text, 7, '0'), :s)\n"
         "  ON CONFLICT (player_id) DO UPDATE SET score = EXCLUDED.score, updated_at = now()\n"
         "  WHERE EXCLUDED.score > scores.score;\n"},
        {"pg_top100_tps", "top100.sql",
         "SELECT player_id, score FROM scores ORDER BY score DESC, player_id LIMIT 100;\n"},
        {"pg_rank_tps", "rank.sql",
         "\\set p random(0, 999999)\n"
         "SELECT count(*) + 1 AS rank FROM scores WHERE score > (SELECT score FROM scores\n"
         "  WHERE player_id = 'p' || lpad(:p::text, 7, '0'));\n"},
    };
    static const char setup[] =
        "CREATE TABLE scores (player_id text PRIMARY KEY, score bigint NOT NULL,\n"
        "  updated_at timestamptz NOT NULL DEFAULT now());\n"
        "INSERT INTO scores (player_id, score) SELECT 'p' || lpad(i::text, 7, '0'),\n"
        "  (random() * 1e9)::bigint FROM generate_series(0, 999999) AS i;\n"
        "CREATE INDEX scores_rank ON scores (score DESC, player_id);\n"
        "VACUUM ANALYZE scores;\n";
    struct bench_peer__pg p;
    struct passwd *pw = NULL;
    char path[128], log[128], opts[256];
    int rv = 0;
    memset(&p, 0, sizeof p);
    p.as_postgres = geteuid() == 0;
    if (bench_http__which(BENCH_PEER__PG_BIN "/initdb", p.initdb, sizeof p.initdb) != 0 ||
        bench_http__which(BENCH_PEER__PG_BIN "/pg_ctl", p.pg_ctl, sizeof p.pg_ctl) != 0 ||
        bench_http__which(BENCH_PEER__PG_BIN "/postgres", path, sizeof path) != 0 ||
        (bench_http__which(BENCH_PEER__PG_BIN "/pgbench", p.pgbench, sizeof p.pgbench) != 0 &&
         bench_http__which("pgbench", p.pgbench, sizeof p.pgbench) != 0) ||
        (bench_http__which(BENCH_PEER__PG_BIN "/psql", p.psql, sizeof p.psql) != 0 &&
         bench_http__which("psql", p.psql, sizeof p.psql) != 0)) {
        printf(
            "peer skipped: pg: PostgreSQL 15 server or pgbench/psql not found under "
            "%s\n",
            BENCH_PEER__PG_BIN);
        return 0;
    }
    if (p.as_postgres && ((pw = getpwnam("postgres")) == NULL ||
                          bench_http__which("runuser", p.runuser, sizeof p.runuser) != 0)) {
        printf("peer skipped: pg: running as root needs user postgres and runuser\n");
        return 0;
    }
    snprintf(p.dir, sizeof p.dir, "/tmp/laurel-bench-pg-XXXXXX");
    if (mkdtemp(p.dir) == NULL || (pw && chown(p.dir, pw->pw_uid, pw->pw_gid) != 0)) {
        return -1;
    }
    snprintf(p.data, sizeof p.data, "%s/data", p.dir);
    snprintf(p.port, sizeof p.port, "%d", client_free_port());
    snprintf(p.conns, sizeof p.conns, "%u", o->conns);
    snprintf(log, sizeof log, "%s/server.log", p.dir);
    fprintf(stderr,
            "bench http: pg: %s on port %s (fsync on, synchronous_commit on), loading "
            "1000000 rows\n",
            p.pg_ctl, p.port);
    {
        const char *init[] = {p.initdb, "-D", p.data, "-U",         "postgres",  "-A",
                              "trust",  "-E", "UTF8", "--locale=C", "--no-sync", NULL};
        char ilog[128];
        snprintf(ilog, sizeof ilog, "%s/initdb.log", p.dir);
        if (bench_peer__pg_run(&p, init, ilog) != 0) {
            fprintf(stderr, "bench http: pg: initdb failed (see %s)\n", ilog);
            rv = -1;
            goto out;
        }
    }
    snprintf(opts, sizeof opts,
             "-p %s -k %s -c listen_addresses='' -c max_connections=%u -c shared_buffers=512MB",
             p.port, p.dir, o->conns + 20);
    {
        const char *start[] = {p.pg_ctl, "-D", p.data, "-l", log,     "-w",
                               "-t",     "60", "-o",   opts, "start", NULL};
        char clog[128];
        snprintf(clog, sizeof clog, "%s/pg_ctl.log", p.dir);
        if (bench_peer__pg_run(&p, start, clog) != 0) {
            fprintf(stderr, "bench http: pg: pg_ctl start failed (see %s)\n", log);
            rv = -1;
            goto out;
        }
        p.started = 1;
    }
    snprintf(path, sizeof path, "%s/setup.sql", p.dir);
    if (bench_peer__write_file(path, setup) != 0 || bench_peer__psql(&p, path) != 0) {
        fprintf(stderr, "bench http: pg: loading failed (see %s/psql.log)\n", p.dir);
        rv = -1;
        goto out;
    }
    double secs = o->quick ? 3 : 10;
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        double tps, avg;
        char name[64];
        snprintf(path, sizeof path, "%s/%s", p.dir, runs[i].file);
        fprintf(stderr, "bench http: pg: %s: %s clients for %.0f s\n", runs[i].name, p.conns, secs);
        if (bench_peer__write_file(path, runs[i].sql) != 0 ||
            bench_peer__pgbench(&p, path, secs, &tps, &avg) != 0) {
            fprintf(stderr, "bench http: pg: %s failed (see %s/pgbench.out)\n", runs[i].name,
                    p.dir);
            rv = -1;
            goto out;
        }
        bench_http__fig(fs, runs[i].name, tps, 0, "transactions/s");
        snprintf(name, sizeof name, "%s_avg_ms", runs[i].name);
        bench_http__fig(fs, name, avg, 2, "ms");
        if (i == 0) {
            /* The upserts left dead tuples and an unset visibility map behind: clean up so
             * that the rank query is an index-only scan, as it was before. */
            snprintf(path, sizeof path, "%s/vacuum.sql", p.dir);
            if (bench_peer__write_file(path, "VACUUM ANALYZE scores;\n") != 0 ||
                bench_peer__psql(&p, path) != 0) {
                rv = -1;
                goto out;
            }
        }
    }
out:
    if (p.started) {
        const char *stop[] = {p.pg_ctl, "-D", p.data, "-m", "fast", "-w", "stop", NULL};
        char slog[128];
        snprintf(slog, sizeof slog, "%s/pg_ctl.log", p.dir);
        bench_peer__pg_run(&p, stop, slog);
    }
    if (rv == 0) {
        bench_http__rmrf(p.dir);
    }
    return rv;
}
