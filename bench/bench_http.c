/* router/bench_http.c — `laurel bench http`: the public HTTP API of a real cluster.
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
 * each with _p50_ms and _p99_ms (per request). Rates count 2xx answers only; any other answer
 * or transport error is printed on an `errors` line and the run goes on. The cluster is then
 * stopped and the peers run alone (bench_peer.c); the ratios come last.
 *
 * Requests are made from templates built once per workload: jansson writes the body with
 * placeholders of fixed width for player numbers ('~'), idempotency-key numbers ('^') and
 * scores (a 12-'|' string, replaced with a space-padded number, which is still valid JSON),
 * and each request is a copy of the template with those digits written in. No JSON is built
 * by hand and nothing is allocated per request.
 *
 * The cluster, the load generator and (later) each peer share the machine's cores: figures are
 * those of everything on one machine, not of a server alone. Nothing here asserts a time. */
#include "bench_http.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../proto/client.h"
#include "../lib/err.h"
#include "bench_http_int.h"
#include "../lib/hclient.h"
#include "httpload.h"
#include "../router/router.h"

#define BH__PLAYER_DIGITS 7
#define BH__KEY_DIGITS 16
#define BH__SCORE_WIDTH 14 /* a 12-char string placeholder with its quotes */
#define BH__SCORE_MAX 1000000000ULL
#define BH__BATCH 100
#define BH__AROUND 5

/* ---- figures and child processes (shared with bench_peer.c) ------------------------------ */

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

/* ---- request templates ------------------------------------------------------------------- */

enum { BH__P_PLAYER, BH__P_KEY, BH__P_SCORE };

struct bh__patch {
    uint32_t off;  /* where the placeholder starts in the request */
    uint16_t item; /* which item of a batch it belongs to */
    uint8_t kind;  /* BH__P_* */
};

struct bh__tmpl {
    char *buf; /* the whole request with placeholders */
    size_t len;
    struct bh__patch *p;
    unsigned np;
};

struct bench_http;

/* One workload: its templates and what its answers said. */
struct bh__load {
    struct bench_http *b;
    const char *name;
    struct bh__tmpl t[ROUTER_MAX_REGIONS]; /* request n uses t[n % nt] */
    unsigned nt;
    unsigned items;    /* items a request (events: BH__BATCH) */
    int seq_players;   /* player of item i of request n: n * items + i; else random */
    uint64_t salt;     /* keeps scores and keys of workloads apart */
    uint64_t limit;    /* requests to send; 0: as many as the time allows */
    int count_items;   /* answers carry {"results":[{"status":..}]}: count the items */
    uint64_t items_ok; /* items answered 2xx inside 2xx answers */
    uint64_t items_bad;
    uint64_t item_status[600];
};

struct bench_http {
    /* options */
    int quick, peers;
    char addr[64], admin_key[96], api_key[96];
    char regions[ROUTER_MAX_REGIONS][65];
    unsigned nregions, replicas, conns, players;
    double seconds;
    char only[256]; /* ",name,name," of the workloads to run; "" for all */
    /* the cluster we started, if any */
    char dir[64];
    pid_t dev;
    /* names of this run: a board, players and keys that no earlier run used */
    char run[8], board[32], pprefix[16];
    struct bench_http__figs figs;
    char bad[512]; /* workloads with errors */
};

static uint64_t bh__mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* @v in decimal into exactly @w chars, right-aligned, padded with @pad. */
static void bh__digits(char *dst, unsigned w, uint64_t v, char pad)
{
    unsigned i = w;
    do {
        dst[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    while (i > 0) {
        dst[--i] = pad;
    }
}

static int bh__run_of(const char *s, size_t len, size_t i, char ch, size_t n)
{
    if (i + n > len || (i > 0 && s[i - 1] == ch) || (i + n < len && s[i + n] == ch)) {
        return 0;
    }
    for (size_t k = 0; k < n; k++) {
        if (s[i + k] != ch) {
            return 0;
        }
    }
    return 1;
}

/* Build @t from a head (@method @path, @key) and @body (may be NULL; serialized compactly,
 * borrowed), then find its placeholders. 0 or LR_ENOMEM / LR_EINVAL. */
static int bh__tmpl_init(struct bh__tmpl *t, const struct bench_http *b, const char *method,
                         const char *path, const char *key, const json_t *body)
{
    char *js = NULL;
    size_t blen = 0, nmax = 0;
    int rv = LR_ENOMEM;
    memset(t, 0, sizeof *t);
    if (body) {
        js = json_dumps(body, JSON_COMPACT);
        if (js == NULL) {
            goto err;
        }
        blen = strlen(js);
    }
    t->buf = malloc(HTTPLOAD_WBUF);
    if (t->buf == NULL) {
        goto err_after_js;
    }
    t->len = httpload_head(t->buf, HTTPLOAD_WBUF, method, path, b->addr, key, body != NULL, blen);
    if (t->len == 0 || t->len + blen > HTTPLOAD_WBUF) {
        rv = LR_EINVAL;
        goto err_after_buf;
    }
    memcpy(t->buf + t->len, js ? js : "", blen);
    t->len += blen;
    for (size_t i = 0; i < t->len; i++) {
        nmax += t->buf[i] == '~' || t->buf[i] == '^' || t->buf[i] == '|';
    }
    t->p = calloc(nmax + 1, sizeof *t->p);
    if (t->p == NULL) {
        goto err_after_buf;
    }
    unsigned seen[3] = {0, 0, 0};
    for (size_t i = 0; i < t->len; i++) {
        int kind = -1;
        if (bh__run_of(t->buf, t->len, i, '~', BH__PLAYER_DIGITS)) {
            kind = BH__P_PLAYER;
        } else if (bh__run_of(t->buf, t->len, i, '^', BH__KEY_DIGITS)) {
            kind = BH__P_KEY;
        } else if (t->buf[i] == '"' && i + BH__SCORE_WIDTH <= t->len &&
                   bh__run_of(t->buf, t->len, i + 1, '|', BH__SCORE_WIDTH - 2) &&
                   t->buf[i + BH__SCORE_WIDTH - 1] == '"') {
            kind = BH__P_SCORE;
        }
        if (kind >= 0) {
            t->p[t->np].off = (uint32_t)i;
            t->p[t->np].item = (uint16_t)seen[kind]++;
            t->p[t->np].kind = (uint8_t)kind;
            t->np++;
        }
    }
    free(js);
    return 0;

err_after_buf:
    free(t->buf);
    t->buf = NULL;
err_after_js:
    free(js);
err:
    assert(rv != 0);
    return rv;
}

static void bh__tmpl_free(struct bh__tmpl *t)
{
    free(t->p);
    free(t->buf);
    memset(t, 0, sizeof *t);
}

static void bh__load_free(struct bh__load *l)
{
    for (unsigned i = 0; i < l->nt; i++) {
        bh__tmpl_free(&l->t[i]);
    }
    l->nt = 0;
}

static size_t bh__make(void *data, unsigned conn, uint64_t seq, char *buf, size_t cap)
{
    struct bh__load *l = data;
    const struct bh__tmpl *t = &l->t[seq % l->nt];
    (void)conn;
    if ((l->limit && seq >= l->limit) || t->len > cap) {
        return 0;
    }
    memcpy(buf, t->buf, t->len);
    for (unsigned i = 0; i < t->np; i++) {
        const struct bh__patch *p = &t->p[i];
        uint64_t idx = seq * l->items + p->item;
        char *at = buf + p->off;
        switch (p->kind) {
        case BH__P_PLAYER:
            bh__digits(at, BH__PLAYER_DIGITS,
                       l->seq_players ? idx : bh__mix(idx ^ (l->salt << 48)) % l->b->players, '0');
            break;
        case BH__P_KEY:
            bh__digits(at, BH__KEY_DIGITS, idx, '0');
            break;
        default:
            bh__digits(at, BH__SCORE_WIDTH, bh__mix(idx + (l->salt << 40)) % BH__SCORE_MAX, ' ');
            break;
        }
    }
    return t->len;
}

/* An answer of /v1/events: count its items by status. The answer is ours to trust as far as
 * its shape goes: an item's "status" is the first key of each result (API.md), and no body of
 * a score item carries a key of that name. */
static void bh__done(void *data, unsigned conn, uint64_t seq, int status, const char *body,
                     size_t len)
{
    struct bh__load *l = data;
    static const char key[] = "\"status\":";
    (void)conn;
    (void)seq;
    if (!l->count_items || status < 200 || status >= 300) {
        return;
    }
    if (body == NULL) {
        l->items_bad += l->items;
        return;
    }
    const char *p = body, *end = body + len;
    unsigned n = 0;
    while ((p = memmem(p, (size_t)(end - p), key, sizeof key - 1)) != NULL) {
        int s = 0;
        p += sizeof key - 1;
        while (p < end && *p >= '0' && *p <= '9' && s < 1000) {
            s = s * 10 + (*p++ - '0');
        }
        if (s >= 600) {
            s = 0;
        }
        l->item_status[s]++;
        if (s >= 200 && s < 300) {
            l->items_ok++;
        } else {
            l->items_bad++;
        }
        n++;
    }
    if (n < l->items) {
        l->items_bad += l->items - n;
    }
}

/* ---- workloads --------------------------------------------------------------------------- */

/* Print what went wrong in @res (and in @l's items) on one line; 1 if anything did. */
static int bh__report(struct bench_http *b, const char *name, const struct httpload_result *res,
                      const struct bh__load *l)
{
    uint64_t bad = res->answered - res->ok;
    if (bad == 0 && res->transport_errors == 0 && l->items_bad == 0) {
        return 0;
    }
    printf("errors %s:", name);
    if (bad) {
        printf(" %llu of %llu answers not 2xx (", (unsigned long long)bad,
               (unsigned long long)res->answered);
        const char *sep = "";
        for (unsigned s = 0; s < 600; s++) {
            if (res->status[s] && (s < 200 || s >= 300)) {
                printf("%s%u x%llu", sep, s, (unsigned long long)res->status[s]);
                sep = ", ";
            }
        }
        printf(");");
    }
    if (l->items_bad) {
        printf(" %llu items not 2xx (", (unsigned long long)l->items_bad);
        const char *sep = "";
        for (unsigned s = 0; s < 600; s++) {
            if (l->item_status[s] && (s < 200 || s >= 300)) {
                printf("%s%u x%llu", sep, s, (unsigned long long)l->item_status[s]);
                sep = ", ";
            }
        }
        printf("%sunreadable);", sep);
    }
    if (res->transport_errors) {
        printf(" %llu transport errors (first: %s);", (unsigned long long)res->transport_errors,
               res->errmsg);
    }
    printf("\n");
    fflush(stdout);
    size_t n = strlen(b->bad);
    snprintf(b->bad + n, sizeof b->bad - n, "%s%s", n ? ", " : "", name);
    return 1;
}

static double bh__cpu_s(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
           (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

/* Run @l on @conns connections for b->seconds and print its figures. */
static int bh__measure(struct bench_http *b, struct bh__load *l, const char *name,
                       const char *unit)
{
    struct httpload_spec spec = {b->addr, b->conns, b->seconds, bh__make, bh__done, l};
    struct httpload_result *res = malloc(sizeof *res);
    if (res == NULL) {
        return LR_ENOMEM;
    }
    struct rusage ru0, ru1;
    fprintf(stderr, "bench http: %s: %u connections for %.0f s\n", name, b->conns, b->seconds);
    getrusage(RUSAGE_SELF, &ru0);
    int rv = httpload_run(&spec, res);
    getrusage(RUSAGE_SELF, &ru1);
    if (rv == 0) {
        double secs = res->seconds > 0 ? res->seconds : 1;
        double done = l->count_items ? (double)l->items_ok : (double)res->ok;
        char pn[64];
        bench_http__fig(&b->figs, name, done / secs, 0, unit);
        snprintf(pn, sizeof pn, "%s_p50_ms", name);
        bench_http__fig(&b->figs, pn, httpload_hist_quantile_ms(&res->hist, 0.50), 2, "ms");
        snprintf(pn, sizeof pn, "%s_p99_ms", name);
        bench_http__fig(&b->figs, pn, httpload_hist_quantile_ms(&res->hist, 0.99), 2, "ms");
        bh__report(b, name, res, l);
        /* The load generator shares the cores with the cluster: say how much it took. */
        fprintf(stderr, "bench http: %s: the load generator used %.0f%% of one core\n", name,
                100.0 * (bh__cpu_s(&ru1) - bh__cpu_s(&ru0)) / secs);
    }
    free(res);
    return rv;
}

/* Send every request of @l (l->limit of them) and say how it went. */
static int bh__seed_run(struct bench_http *b, struct bh__load *l, const char *what,
                        struct httpload_result *res)
{
    struct httpload_spec spec = {b->addr, b->conns, 0, bh__make, bh__done, l};
    double t0 = bench_http__now();
    int rv = httpload_run(&spec, res);
    if (rv == 0) {
        fprintf(stderr, "bench http: seed: %llu %s in %.1f s\n",
                (unsigned long long)(l->count_items ? l->items_ok : res->ok), what,
                bench_http__now() - t0);
        bh__report(b, l->name, res, l);
    }
    return rv;
}

/* A score item (or request body) for board b: placeholders for player, score and key. */
static json_t *bh__score_item(const struct bench_http *b, char tag, int with_type)
{
    char player[32], key[48];
    snprintf(player, sizeof player, "%s~~~~~~~", b->pprefix);
    snprintf(key, sizeof key, "k%s%c^^^^^^^^^^^^^^^^", b->run, tag);
    json_t *j = json_pack("{s:s,s:s,s:s}", "player_id", player, "score", "||||||||||||",
                          "idempotency_key", key);
    if (j && with_type) {
        json_object_set_new(j, "type", json_string("score"));
        json_object_set_new(j, "board_id", json_string(b->board));
    }
    return j;
}

/* Score writes: single (POST /scores) or batched (POST /v1/events, BH__BATCH items). */
static int bh__load_scores(struct bench_http *b, struct bh__load *l, int batched, char tag)
{
    char path[128];
    json_t *body;
    int rv;
    l->b = b;
    l->items = batched ? BH__BATCH : 1;
    l->count_items = batched;
    l->salt = (uint64_t)tag;
    if (batched) {
        body = json_array();
        for (unsigned i = 0; body && i < BH__BATCH; i++) {
            if (json_array_append_new(body, bh__score_item(b, tag, 1)) != 0) {
                json_decref(body);
                body = NULL;
            }
        }
        snprintf(path, sizeof path, "/v1/events");
    } else {
        body = bh__score_item(b, tag, 0);
        snprintf(path, sizeof path, "/v1/boards/%s/scores", b->board);
    }
    if (body == NULL) {
        return LR_ENOMEM;
    }
    rv = bh__tmpl_init(&l->t[0], b, "POST", path, b->api_key, body);
    json_decref(body);
    l->nt = rv == 0;
    return rv;
}

/* Reads: rank of a random player (around = @around when > 0), or the top 100 when @top. */
static int bh__load_read(struct bench_http *b, struct bh__load *l, int top, int around)
{
    char path[256];
    l->b = b;
    l->items = 1;
    l->salt = top ? 'T' : around ? 'A' : 'R';
    if (top) {
        snprintf(path, sizeof path, "/v1/boards/%s/top?limit=100", b->board);
    } else if (around > 0) {
        snprintf(path, sizeof path, "/v1/boards/%s/players/%s~~~~~~~?around=%d", b->board,
                 b->pprefix, around);
    } else {
        snprintf(path, sizeof path, "/v1/boards/%s/players/%s~~~~~~~", b->board, b->pprefix);
    }
    int rv = bh__tmpl_init(&l->t[0], b, "GET", path, NULL, NULL);
    l->nt = rv == 0;
    return rv;
}

/* One request on a fresh connection (hclient.h): its status, or LR_E* with @errmsg. */
static int bh__call(const struct bench_http *b, const char *method, const char *path,
                    const char *key, const char *body, int *status, char *errmsg)
{
    struct hclient_req req = {method, path, key, body, body ? strlen(body) : 0};
    struct hclient_resp resp;
    int rv = hclient_do(b->addr, &req, 2000, &resp, errmsg);
    if (rv == 0) {
        *status = resp.status;
        hclient_resp_free(&resp);
    }
    return rv;
}

static int bh__seed(struct bench_http *b)
{
    struct httpload_result *res = malloc(sizeof *res);
    struct bh__load l;
    char path[128], player[32], errmsg[LR_ERRMSG_SIZE];
    int rv, status = 0;
    if (res == NULL) {
        return LR_ENOMEM;
    }
    /* The board. */
    json_t *j = json_pack("{s:s,s:s,s:[s]}", "order", "desc", "operator", "best", "windows",
                          "alltime");
    char *js = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    snprintf(path, sizeof path, "/v1/boards/%s", b->board);
    rv = js ? bh__call(b, "PUT", path, b->admin_key, js, &status, errmsg) : LR_ENOMEM;
    free(js);
    if (rv != 0 || (status != 200 && status != 201)) {
        fprintf(stderr, "bench http: PUT %s: %s (status %d)\n", path,
                rv ? errmsg : "refused", status);
        rv = rv ? rv : LR_EINVAL;
        goto out;
    }

    /* Players: player n in region n mod nregions, one template a region. */
    memset(&l, 0, sizeof l);
    l.b = b;
    l.name = "seed_players";
    l.items = 1;
    l.seq_players = 1;
    l.limit = b->players;
    snprintf(player, sizeof player, "%s~~~~~~~", b->pprefix);
    snprintf(path, sizeof path, "/v1/players/%s", player);
    for (unsigned g = 0; g < b->nregions; g++) {
        j = json_pack("{s:s,s:s}", "name", player, "region", b->regions[g]);
        rv = j ? bh__tmpl_init(&l.t[g], b, "PUT", path, b->api_key, j) : LR_ENOMEM;
        json_decref(j);
        if (rv != 0) {
            goto out_after_load;
        }
        l.nt++;
    }
    rv = bh__seed_run(b, &l, "players (PUT /v1/players)", res);
    bh__load_free(&l);
    if (rv != 0) {
        goto out;
    }
    if (res->ok < b->players) {
        fprintf(stderr, "bench http: only %llu of %u players were created\n",
                (unsigned long long)res->ok, b->players);
        rv = LR_EUNAVAILABLE;
        goto out;
    }

    /* A score for every player: in batches through /v1/events, else one by one. */
    memset(&l, 0, sizeof l);
    l.name = "seed_events";
    rv = bh__load_scores(b, &l, 1, 'S');
    if (rv != 0) {
        goto out_after_load;
    }
    l.seq_players = 1;
    l.limit = (b->players + BH__BATCH - 1) / BH__BATCH;
    rv = bh__seed_run(b, &l, "scores (POST /v1/events)", res);
    bh__load_free(&l);
    if (rv == 0 && res->ok == 0 && res->answered > 0) {
        fprintf(stderr,
                "bench http: seed: POST /v1/events refused every batch; scores go one by one "
                "through POST /v1/boards/{b}/scores\n");
        memset(&l, 0, sizeof l);
        l.name = "seed_scores";
        rv = bh__load_scores(b, &l, 0, 'S');
        if (rv != 0) {
            goto out_after_load;
        }
        l.seq_players = 1;
        l.limit = b->players;
        rv = bh__seed_run(b, &l, "scores (POST /v1/boards/{b}/scores)", res);
        bh__load_free(&l);
    }
    goto out;

out_after_load:
    bh__load_free(&l);
out:
    free(res);
    return rv;
}

/* ---- the cluster ------------------------------------------------------------------------- */

static int bh__wait_ready(struct bench_http *b, double timeout_s)
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
        if (bh__call(b, "GET", "/readyz", NULL, NULL, &status, errmsg) == 0 && status == 200) {
            return 0;
        }
        bench_http__sleep_ms(100);
    }
    fprintf(stderr, "bench http: %s not ready after %.0f s\n", b->addr, timeout_s);
    return LR_EUNAVAILABLE;
}

static int bh__cluster_start(struct bench_http *b)
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
    const char *argv[] = {"/proc/self/exe", "dev", "--regions", regions, "--replicas",
                          replicas, "--data", data, "--http", b->addr, "--admin-key",
                          b->admin_key, "--api-key", b->api_key, NULL};
    b->dev = bench_http__spawn(argv, log, NULL);
    if (b->dev < 0) {
        b->dev = 0;
        return LR_EIO;
    }
    fprintf(stderr, "bench http: laurel dev --regions %s --replicas %u at %s (data in %s)\n",
            regions, b->replicas, b->addr, b->dir);
    return bh__wait_ready(b, 60);
}

/* SIGTERM the `laurel dev` child *@dev (if any), wait, remove @dir; *@dev becomes 0. */
static void bh__cluster_stop(pid_t *dev, const char *dir)
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
static void bh__names(struct bench_http *b)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t r = bh__mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
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
    bh__names(b);
    rv = b->addr[0] ? bh__wait_ready(b, 10) : bh__cluster_start(b);
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
        rv = bh__seed(b);
    }
    free(b);
    return rv;
}

void bench_http__site_down(struct bench_http__site *s)
{
    bh__cluster_stop(&s->dev, s->dir);
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
} bh__ratios[] = {
    {"ratio_score_vs_redis_aof_always", "http_score_rps", "redis_zadd_aof_always_rps", 2.0},
    {"ratio_events_vs_redis_aof_always_p16", "http_events_cps", "redis_zadd_p16_aof_always_rps",
     1.0},
    {"ratio_rank_vs_redis_zrevrank", "http_rank_rps", "redis_zrevrank_rps", 0.5},
    {"ratio_around_vs_redis_zrevrank", "http_around_rps", "redis_zrevrank_rps", 0.5},
    {"ratio_top100_vs_redis_zrevrange", "http_top100_global_rps", "redis_zrevrange100_rps", 1.0},
    {"ratio_score_vs_pg_upsert", "http_score_rps", "pg_upsert_tps", 0},
    {"ratio_rank_vs_pg_rank", "http_rank_rps", "pg_rank_tps", 0},
    {"ratio_top100_vs_pg_top100", "http_top100_global_rps", "pg_top100_tps", 0},
};

static void bh__print_ratios(struct bench_http *b)
{
    for (size_t i = 0; i < sizeof bh__ratios / sizeof bh__ratios[0]; i++) {
        double ours, peer;
        if (!bench_http__fig_get(&b->figs, bh__ratios[i].ours, &ours) ||
            !bench_http__fig_get(&b->figs, bh__ratios[i].peer, &peer) || peer <= 0) {
            continue;
        }
        double r = ours / peer;
        bench_http__fig(&b->figs, bh__ratios[i].name, r, 2, "x");
        if (bh__ratios[i].target > 0) {
            printf("target %s >= %.1f: %s\n", bh__ratios[i].name, bh__ratios[i].target,
                   r >= bh__ratios[i].target ? "met" : "NOT met");
        }
    }
}

/* ---- the command ------------------------------------------------------------------------- */

static void bh__usage(FILE *f)
{
    fprintf(f,
            "usage: laurel bench http [--quick] [--no-peers] [--router HOST:PORT --api-key K\n"
            "                         --admin-key K] [--regions a,b,c] [--replicas N]\n"
            "                         [--conns N] [--players N] [--seconds S] [--only a,b]\n"
            "\n"
            "The public HTTP API of a real cluster under closed-loop load: score writes (single\n"
            "and through /v1/events), ranks, around-me and the global top 100, then the same\n"
            "operations on Redis and PostgreSQL when they are installed, and the ratios.\n"
            "Without --router it starts `laurel dev` (default --regions na,eu,apac --replicas 3)\n"
            "in a temporary directory and stops it at the end.\n"
            "  --quick      %.0f s a workload, %u players, shorter peer runs (default %.0f s, %u)\n"
            "  --no-peers   skip Redis and PostgreSQL\n"
            "  --conns N    connections (and peer clients), default 50\n"
            "  --only a,b   run only these workloads (figure names, e.g. http_rank_rps)\n"
            "Each figure prints as `figure <name> <value> <unit>`, errors as\n"
            "`errors <name>: ...`, skipped peers as `peer skipped: ...`.\n",
            3.0, 10000u, 15.0, 30000u);
}

static int bh__parse(struct bench_http *b, int argc, char **argv)
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
        case 'h': bh__usage(stdout); return 0;
        default: bh__usage(stderr); return 2;
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
    if (b->nregions == 0 || b->replicas < 1 || b->conns < 1 ||
        b->conns > HTTPLOAD_MAX_CONNS || players < 0 || players > 9999900 || b->seconds < 0) {
        fprintf(stderr, "laurel bench http: bad --regions, --replicas, --conns, --players or "
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
    b->players = (unsigned)((players + BH__BATCH - 1) / BH__BATCH * BH__BATCH);
    if (b->seconds == 0) {
        b->seconds = b->quick ? 3 : 15;
    }
    return -1;
}

static int bh__workloads(struct bench_http *b)
{
    static const struct {
        const char *name, *unit;
        int kind; /* 0 score, 1 events, 2 rank, 3 around, 4 top */
    } w[] = {
        {"http_score_rps", "requests/s", 0},  {"http_events_cps", "commands/s", 1},
        {"http_rank_rps", "requests/s", 2},   {"http_around_rps", "requests/s", 3},
        {"http_top100_global_rps", "requests/s", 4},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        struct bh__load l;
        char key[80];
        int rv;
        snprintf(key, sizeof key, ",%s,", w[i].name);
        if (b->only[0] && strstr(b->only, key) == NULL) {
            continue;
        }
        memset(&l, 0, sizeof l);
        l.name = w[i].name;
        switch (w[i].kind) {
        case 0: rv = bh__load_scores(b, &l, 0, 'W'); break;
        case 1: rv = bh__load_scores(b, &l, 1, 'E'); break;
        case 2: rv = bh__load_read(b, &l, 0, 0); break;
        case 3: rv = bh__load_read(b, &l, 0, BH__AROUND); break;
        default: rv = bh__load_read(b, &l, 1, 0); break;
        }
        if (rv == 0) {
            rv = bh__measure(b, &l, w[i].name, w[i].unit);
        }
        bh__load_free(&l);
        if (rv != 0) {
            fprintf(stderr, "bench http: %s: %s\n", w[i].name, err_message(rv));
            return rv;
        }
    }
    return 0;
}

int bench_http_main(int argc, char **argv)
{
    struct bench_http *b = calloc(1, sizeof *b);
    int rv;
    if (b == NULL) {
        return 1;
    }
    rv = bh__parse(b, argc, argv);
    if (rv >= 0) {
        free(b);
        return rv;
    }
    signal(SIGPIPE, SIG_IGN);
    bh__names(b);
    if (b->addr[0]) {
        rv = bh__wait_ready(b, 10);
    } else {
        rv = bh__cluster_start(b);
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
        rv = bh__seed(b);
    }
    if (rv == 0) {
        rv = bh__workloads(b);
    }
    /* The cluster stops before the peers start: each of them gets the machine alone. */
    bh__cluster_stop(&b->dev, b->dir);
    if (rv == 0 && b->peers) {
        struct bench_peer__opts po = {b->quick, b->conns, NULL};
        if (bench_peer__redis(&b->figs, &po) != 0) {
            printf("errors redis: the Redis peer failed (see above)\n");
        }
        if (bench_peer__pg(&b->figs, &po) != 0) {
            printf("errors pg: the PostgreSQL peer failed (see above)\n");
        }
        bh__print_ratios(b);
    }
    if (rv == 0 && b->bad[0]) {
        printf("bench http: workloads with errors: %s\n", b->bad);
    }
    fflush(stdout);
    free(b);
    return rv == 0 ? 0 : 1;
}
