/* bench/bench_http_workloads.c — what `laurel bench http` sends and measures: the seed of its
 * cluster and the five workloads (bench_http.c lists them), each a closed-loop httpload.h run
 * whose figures are its rate of 2xx answers (of 2xx items for /v1/events) and its p50 and p99
 * latencies; anything else is counted by status on one `errors` line.
 *
 * Requests are made from templates built once per workload: jansson writes the body with
 * placeholders of fixed width for player numbers ('~'), idempotency-key numbers ('^') and
 * scores (a 12-'|' string, replaced with a space-padded number, which is still valid JSON),
 * and each request is a copy of the template with those digits written in. No JSON is built
 * by hand and nothing is allocated per request. Random players and scores come from
 * bench_http__mix of the item's number and a salt per workload: the same sequence in every
 * run, a different one in each workload. */
#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../lib/err.h"
#include "../lib/hclient.h"
#include "bench_http_int.h"
#include "httpload.h"

#define BENCH_HTTP__PLAYER_DIGITS 7
#define BENCH_HTTP__KEY_DIGITS 16
#define BENCH_HTTP__SCORE_WIDTH 14 /* a 12-char string placeholder with its quotes */
#define BENCH_HTTP__SCORE_MAX 1000000000ULL
#define BENCH_HTTP__AROUND 5

/* ---- request templates ------------------------------------------------------------------- */

enum { BENCH_HTTP__P_PLAYER, BENCH_HTTP__P_KEY, BENCH_HTTP__P_SCORE };

struct bench_http__patch {
    uint32_t off;  /* where the placeholder starts in the request */
    uint16_t item; /* which item of a batch it belongs to */
    uint8_t kind;  /* BENCH_HTTP__P_* */
};

struct bench_http__tmpl {
    char *buf; /* the whole request with placeholders */
    size_t len;
    struct bench_http__patch *p;
    unsigned np;
};

/* One workload: its templates and what its answers said. */
struct bench_http__load {
    struct bench_http *b;
    const char *name;
    struct bench_http__tmpl t[ROUTER_MAX_REGIONS]; /* request n uses t[n % nt] */
    unsigned nt;
    unsigned items;    /* items a request (events: BENCH_HTTP__BATCH) */
    int seq_players;   /* player of item i of request n: n * items + i; else random */
    uint64_t salt;     /* keeps scores and keys of workloads apart */
    uint64_t limit;    /* requests to send; 0: as many as the time allows */
    int count_items;   /* answers carry {"results":[{"status":..}]}: count the items */
    int want;          /* the one status that counts as success; 0: any 2xx */
    uint64_t items_ok; /* items answered 2xx inside 2xx answers */
    uint64_t items_bad;
    uint64_t item_status[600];
};

uint64_t bench_http__mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* @v in decimal into exactly @w chars, right-aligned, padded with @pad. */
static void bench_http__digits(char *dst, unsigned w, uint64_t v, char pad)
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

static int bench_http__run_of(const char *s, size_t len, size_t i, char ch, size_t n)
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
static int bench_http__tmpl_init(struct bench_http__tmpl *t, const struct bench_http *b,
                                 const char *method, const char *path, const char *key,
                                 const json_t *body)
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
        if (bench_http__run_of(t->buf, t->len, i, '~', BENCH_HTTP__PLAYER_DIGITS)) {
            kind = BENCH_HTTP__P_PLAYER;
        } else if (bench_http__run_of(t->buf, t->len, i, '^', BENCH_HTTP__KEY_DIGITS)) {
            kind = BENCH_HTTP__P_KEY;
        } else if (t->buf[i] == '"' && i + BENCH_HTTP__SCORE_WIDTH <= t->len &&
                   bench_http__run_of(t->buf, t->len, i + 1, '|', BENCH_HTTP__SCORE_WIDTH - 2) &&
                   t->buf[i + BENCH_HTTP__SCORE_WIDTH - 1] == '"') {
            kind = BENCH_HTTP__P_SCORE;
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

static void bench_http__tmpl_free(struct bench_http__tmpl *t)
{
    free(t->p);
    free(t->buf);
    memset(t, 0, sizeof *t);
}

static void bench_http__load_free(struct bench_http__load *l)
{
    for (unsigned i = 0; i < l->nt; i++) {
        bench_http__tmpl_free(&l->t[i]);
    }
    l->nt = 0;
}

static size_t bench_http__make(void *data, unsigned conn, uint64_t seq, char *buf, size_t cap)
{
    struct bench_http__load *l = data;
    const struct bench_http__tmpl *t = &l->t[seq % l->nt];
    (void)conn;
    if ((l->limit && seq >= l->limit) || t->len > cap) {
        return 0;
    }
    memcpy(buf, t->buf, t->len);
    for (unsigned i = 0; i < t->np; i++) {
        const struct bench_http__patch *p = &t->p[i];
        uint64_t idx = seq * l->items + p->item;
        char *at = buf + p->off;
        switch (p->kind) {
        case BENCH_HTTP__P_PLAYER:
            bench_http__digits(
                at, BENCH_HTTP__PLAYER_DIGITS,
                l->seq_players ? idx : bench_http__mix(idx ^ (l->salt << 48)) % l->b->players, '0');
            break;
        case BENCH_HTTP__P_KEY: bench_http__digits(at, BENCH_HTTP__KEY_DIGITS, idx, '0'); break;
        default:
            bench_http__digits(at, BENCH_HTTP__SCORE_WIDTH,
                               bench_http__mix(idx + (l->salt << 40)) % BENCH_HTTP__SCORE_MAX, ' ');
            break;
        }
    }
    return t->len;
}

/* An answer of /v1/events: count its items by status. The answer is ours to trust as far as
 * its shape goes: an item's "status" is the first key of each result (API.md), and no body of
 * a score item carries a key of that name. */
static void bench_http__done(void *data, unsigned conn, uint64_t seq, int status, const char *body,
                             size_t len)
{
    struct bench_http__load *l = data;
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

/* Answers of @res that count as success for @l: its one wanted status, else any 2xx. */
static uint64_t bench_http__ok(const struct httpload_result *res, const struct bench_http__load *l)
{
    return l->want > 0 && l->want < 600 ? res->status[l->want] : res->ok;
}

/* Print what went wrong in @res (and in @l's items) on one line; 1 if anything did. */
static int bench_http__report(struct bench_http *b, const char *name,
                              const struct httpload_result *res, const struct bench_http__load *l)
{
    uint64_t bad = res->answered - bench_http__ok(res, l);
    if (bad == 0 && res->transport_errors == 0 && l->items_bad == 0) {
        return 0;
    }
    printf("errors %s:", name);
    if (bad) {
        if (l->want) {
            printf(" %llu of %llu answers not %d (", (unsigned long long)bad,
                   (unsigned long long)res->answered, l->want);
        } else {
            printf(" %llu of %llu answers not 2xx (", (unsigned long long)bad,
                   (unsigned long long)res->answered);
        }
        const char *sep = "";
        for (unsigned s = 0; s < 600; s++) {
            int good = l->want ? (int)s == l->want : s >= 200 && s < 300;
            if (res->status[s] && !good) {
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

static double bench_http__cpu_s(const struct rusage *ru)
{
    return (double)ru->ru_utime.tv_sec + (double)ru->ru_utime.tv_usec / 1e6 +
           (double)ru->ru_stime.tv_sec + (double)ru->ru_stime.tv_usec / 1e6;
}

/* Run @l on @conns connections for b->seconds and print its figures. */
static int bench_http__measure(struct bench_http *b, struct bench_http__load *l, const char *name,
                               const char *unit)
{
    struct httpload_spec spec = {b->addr,          b->conns,         b->seconds,
                                 bench_http__make, bench_http__done, l};
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
        double done = l->count_items ? (double)l->items_ok : (double)bench_http__ok(res, l);
        char pn[64];
        bench_http__fig(&b->figs, name, done / secs, 0, unit);
        snprintf(pn, sizeof pn, "%s_p50_ms", name);
        bench_http__fig(&b->figs, pn, httpload_hist_quantile_ms(&res->hist, 0.50), 2, "ms");
        snprintf(pn, sizeof pn, "%s_p99_ms", name);
        bench_http__fig(&b->figs, pn, httpload_hist_quantile_ms(&res->hist, 0.99), 2, "ms");
        bench_http__report(b, name, res, l);
        /* The load generator shares the cores with the cluster: say how much it took. */
        fprintf(stderr, "bench http: %s: the load generator used %.0f%% of one core\n", name,
                100.0 * (bench_http__cpu_s(&ru1) - bench_http__cpu_s(&ru0)) / secs);
    }
    free(res);
    return rv;
}

/* Send every request of @l (l->limit of them) and say how it went. */
static int bench_http__seed_run(struct bench_http *b, struct bench_http__load *l, const char *what,
                                struct httpload_result *res)
{
    struct httpload_spec spec = {b->addr, b->conns, 0, bench_http__make, bench_http__done, l};
    double t0 = bench_http__now();
    int rv = httpload_run(&spec, res);
    if (rv == 0) {
        fprintf(stderr, "bench http: seed: %llu %s in %.1f s\n",
                (unsigned long long)(l->count_items ? l->items_ok : res->ok), what,
                bench_http__now() - t0);
        bench_http__report(b, l->name, res, l);
    }
    return rv;
}

/* A score item (or request body) for @board: placeholders for player, score and key. */
static json_t *bench_http__score_item(const struct bench_http *b, const char *board, char tag,
                                      int with_type)
{
    char player[32], key[48];
    snprintf(player, sizeof player, "%s~~~~~~~", b->pprefix);
    snprintf(key, sizeof key, "k%s%c^^^^^^^^^^^^^^^^", b->run, tag);
    json_t *j = json_pack("{s:s,s:s,s:s}", "player_id", player, "score", "||||||||||||",
                          "idempotency_key", key);
    if (j && with_type) {
        json_object_set_new(j, "type", json_string("score"));
        json_object_set_new(j, "board_id", json_string(board));
    }
    return j;
}

/* Score writes to @board (borrowed for the call): single (POST /scores) or batched (POST
 * /v1/events, BENCH_HTTP__BATCH items). */
static int bench_http__load_scores(struct bench_http *b, struct bench_http__load *l,
                                   const char *board, int batched, char tag)
{
    char path[128];
    json_t *body;
    int rv;
    l->b = b;
    l->items = batched ? BENCH_HTTP__BATCH : 1;
    l->count_items = batched;
    l->salt = (uint64_t)tag;
    if (batched) {
        body = json_array();
        for (unsigned i = 0; body && i < BENCH_HTTP__BATCH; i++) {
            if (json_array_append_new(body, bench_http__score_item(b, board, tag, 1)) != 0) {
                json_decref(body);
                body = NULL;
            }
        }
        snprintf(path, sizeof path, "/v1/events");
    } else {
        body = bench_http__score_item(b, board, tag, 0);
        snprintf(path, sizeof path, "/v1/boards/%s/scores", board);
    }
    if (body == NULL) {
        return LR_ENOMEM;
    }
    rv = bench_http__tmpl_init(&l->t[0], b, "POST", path, b->api_key, body);
    json_decref(body);
    l->nt = rv == 0;
    return rv;
}

/* Reads: rank of a random player (around = @around when > 0), or the top 100 when @top (2:
 * with consistency=stale, docs/consistency.md). */
static int bench_http__load_read(struct bench_http *b, struct bench_http__load *l, int top,
                                 int around)
{
    char path[256];
    l->b = b;
    l->items = 1;
    l->salt = top ? 'T' : around ? 'A' : 'R';
    if (top) {
        snprintf(path, sizeof path, "/v1/boards/%s/top?limit=100%s", b->board,
                 top == 2 ? "&consistency=stale" : "");
    } else if (around > 0) {
        snprintf(path, sizeof path, "/v1/boards/%s/players/%s~~~~~~~?around=%d", b->board,
                 b->pprefix, around);
    } else {
        snprintf(path, sizeof path, "/v1/boards/%s/players/%s~~~~~~~", b->board, b->pprefix);
    }
    int rv = bench_http__tmpl_init(&l->t[0], b, "GET", path, NULL, NULL);
    l->nt = rv == 0;
    return rv;
}

/* http_mixed_rps: request n is template n % 10: one score write (POST /scores) in ten, then
 * three each of top 100, rank and rank with around, all on the bench's board. */
static int bench_http__load_mixed(struct bench_http *b, struct bench_http__load *l)
{
    struct bench_http__load part;
    int rv;
    memset(&part, 0, sizeof part);
    if ((rv = bench_http__load_scores(b, &part, b->board, 0, 'M')) != 0) {
        bench_http__load_free(&part);
        return rv;
    }
    l->t[l->nt++] = part.t[0];
    for (int k = 0; k < 9; k++) {
        memset(&part, 0, sizeof part);
        rv = bench_http__load_read(b, &part, k % 3 == 0, k % 3 == 2 ? BENCH_HTTP__AROUND : 0);
        if (rv != 0) {
            return rv;
        }
        l->t[l->nt++] = part.t[0];
    }
    l->b = b;
    l->items = 1;
    l->salt = 'M';
    return 0;
}

/* router_bytes_per_entry: the router's read model (docs/consistency.md), from its /metrics:
 * the ordered indexes' bytes per held entry, and everything it holds per entry. */
static int bench_http__model_bytes(struct bench_http *b)
{
    struct hclient_req req = {"GET", "/metrics", NULL, NULL, 0};
    struct hclient_resp resp;
    char errmsg[LR_ERRMSG_SIZE];
    int rv = hclient_do(b->addr, &req, 2000, &resp, errmsg);
    if (rv != 0) {
        fprintf(stderr, "bench http: GET /metrics: %s\n", errmsg);
        return rv;
    }
    const char *e = strstr(resp.body, "\nlaurel_readmodel_entries ");
    const char *x = strstr(resp.body, "\nlaurel_readmodel_index_bytes ");
    const char *t = strstr(resp.body, "\nlaurel_readmodel_bytes ");
    double n = e ? strtod(strchr(e + 1, ' ') + 1, NULL) : 0;
    if (n > 0 && x && t) {
        bench_http__fig(&b->figs, "router_bytes_per_entry",
                        strtod(strchr(x + 1, ' ') + 1, NULL) / n, 2, "B");
        bench_http__fig(&b->figs, "router_model_bytes_per_entry",
                        strtod(strchr(t + 1, ' ') + 1, NULL) / n, 2, "B");
    } else {
        fprintf(stderr, "errors router_bytes_per_entry: the router's read model holds nothing\n");
    }
    hclient_resp_free(&resp);
    return 0;
}

/* One request on a fresh connection (hclient.h): its status, or LR_E* with @errmsg. */
int bench_http__call(const struct bench_http *b, const char *method, const char *path,
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

/* PUT /v1/boards/@board with @body (owned: released here, may be NULL when it could not be
 * built). @return 0 when the router answered 200 or 201, else an LR_E* code (printed). */
static int bench_http__board_put(const struct bench_http *b, const char *board, json_t *body)
{
    char path[128], errmsg[LR_ERRMSG_SIZE];
    int status = 0, rv;
    char *js = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    snprintf(path, sizeof path, "/v1/boards/%s", board);
    rv = js ? bench_http__call(b, "PUT", path, b->admin_key, js, &status, errmsg) : LR_ENOMEM;
    free(js);
    if (rv != 0 || (status != 200 && status != 201)) {
        fprintf(stderr, "bench http: PUT %s: %s (status %d)\n", path, rv ? errmsg : "refused",
                status);
        return rv ? rv : LR_EINVAL;
    }
    return 0;
}

/* Player creations: PUT /v1/players/@prefix + 7 digits (request n creates player n, in region
 * n mod nregions: one template a region). @prefix is borrowed for the call. */
static int bench_http__load_players(struct bench_http *b, struct bench_http__load *l,
                                    const char *prefix)
{
    char path[128], player[32];
    l->b = b;
    l->items = 1;
    l->seq_players = 1;
    snprintf(player, sizeof player, "%s~~~~~~~", prefix);
    snprintf(path, sizeof path, "/v1/players/%s", player);
    for (unsigned g = 0; g < b->nregions; g++) {
        json_t *j = json_pack("{s:s,s:s}", "name", "bench player", "region", b->regions[g]);
        int rv = j ? bench_http__tmpl_init(&l->t[g], b, "PUT", path, b->api_key, j) : LR_ENOMEM;
        json_decref(j);
        if (rv != 0) {
            return rv;
        }
        l->nt++;
    }
    return 0;
}

int bench_http__seed(struct bench_http *b)
{
    struct httpload_result *res = malloc(sizeof *res);
    struct bench_http__load l;
    int rv;
    if (res == NULL) {
        return LR_ENOMEM;
    }
    /* The board. */
    rv = bench_http__board_put(
        b, b->board,
        json_pack("{s:s,s:s,s:[s]}", "order", "desc", "operator", "best", "windows", "alltime"));
    if (rv != 0) {
        goto out;
    }

    /* Players: player n in region n mod nregions. */
    memset(&l, 0, sizeof l);
    l.name = "seed_players";
    rv = bench_http__load_players(b, &l, b->pprefix);
    if (rv != 0) {
        goto out_after_load;
    }
    l.limit = b->players;
    rv = bench_http__seed_run(b, &l, "players (PUT /v1/players)", res);
    bench_http__load_free(&l);
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
    rv = bench_http__load_scores(b, &l, b->board, 1, 'S');
    if (rv != 0) {
        goto out_after_load;
    }
    l.seq_players = 1;
    l.limit = (b->players + BENCH_HTTP__BATCH - 1) / BENCH_HTTP__BATCH;
    rv = bench_http__seed_run(b, &l, "scores (POST /v1/events)", res);
    bench_http__load_free(&l);
    if (rv == 0 && res->ok == 0 && res->answered > 0) {
        fprintf(stderr,
                "bench http: seed: POST /v1/events refused every batch; scores go one by one "
                "through POST /v1/boards/{b}/scores\n");
        memset(&l, 0, sizeof l);
        l.name = "seed_scores";
        rv = bench_http__load_scores(b, &l, b->board, 0, 'S');
        if (rv != 0) {
            goto out_after_load;
        }
        l.seq_players = 1;
        l.limit = b->players;
        rv = bench_http__seed_run(b, &l, "scores (POST /v1/boards/{b}/scores)", res);
        bench_http__load_free(&l);
    }
    goto out;

out_after_load:
    bench_http__load_free(&l);
out:
    free(res);
    return rv;
}

/* ---- cycle_close_ms: from a cycle's end to its close record ----------------------------- */

#define BENCH_HTTP__CYCLE_S 60            /* the board's reset_period_s: the least allowed */
#define BENCH_HTTP__CYCLE_TOP 100         /* its snapshot_top */
#define BENCH_HTTP__CYCLE_MARGIN_MS 5000  /* least time left in a cycle to seed it */
#define BENCH_HTTP__CYCLE_POLL_MS 10      /* one GET of the record this often from the end */
#define BENCH_HTTP__CYCLE_GIVEUP_MS 30000 /* no record this long after the end: an error */
#define BENCH_HTTP__CYCLE_TRIES 3         /* cycles tried when a seed runs past the end */

/* Wall-clock milliseconds: cycles are numbered from the Unix epoch (docs/ordering.md), so the
 * bench reads the clock the leaders stamp with (one machine: the same clock). */
static double bench_http__wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void bench_http__sleep_until(double wall_ms)
{
    double d = wall_ms - bench_http__wall_ms();
    if (d > 0) {
        time_t sec = (time_t)(d / 1000);
        struct timespec ts = {sec, (long)((d - (double)sec * 1000) * 1e6)};
        nanosleep(&ts, NULL);
    }
}

/* The close record in @resp, checked: 0 when it is a record of @cycle with @want entries,
 * else -1 with a sentence in @why (@cap bytes). */
static int bench_http__cycle_check(const struct hclient_resp *resp, int64_t cycle, size_t want,
                                   char *why, size_t cap)
{
    json_t *j = json_loadb(resp->body, resp->body_len, 0, NULL);
    json_t *c = json_object_get(j, "cycle"), *e = json_object_get(j, "entries");
    int rv = 0;
    if (!json_is_integer(c) || json_integer_value(c) != cycle || !json_is_array(e)) {
        snprintf(why, cap, "the record of cycle %lld is not one (%.80s)", (long long)cycle,
                 resp->body);
        rv = -1;
    } else if (json_array_size(e) != want) {
        snprintf(why, cap, "the record of cycle %lld holds %zu entries, not %zu", (long long)cycle,
                 json_array_size(e), want);
        rv = -1;
    }
    json_decref(j);
    return rv;
}

/* Print `errors cycle_close_ms: @why` and name the workload in b->bad. */
static void bench_http__cycle_error(struct bench_http *b, const char *name, const char *why)
{
    printf("errors %s: %s\n", name, why);
    fflush(stdout);
    size_t n = strlen(b->bad);
    snprintf(b->bad + n, sizeof b->bad - n, "%s%s", n ? ", " : "", name);
}

/* Seed a score of every player on @board in the current cycle, starting it over in the next
 * one when too little of this one is left or the seed runs past its end. @return 0 and the
 * cycle's number in *@cycle, or an LR_E* code (printed). */
static int bench_http__cycle_seed(struct bench_http *b, const char *board, int64_t *cycle)
{
    const int64_t period_ms = BENCH_HTTP__CYCLE_S * 1000;
    struct httpload_result *res = malloc(sizeof *res);
    int rv = LR_EUNAVAILABLE;
    if (res == NULL) {
        return LR_ENOMEM;
    }
    for (int attempt = 0; attempt < BENCH_HTTP__CYCLE_TRIES; attempt++) {
        struct bench_http__load l;
        double t0 = bench_http__wall_ms();
        int64_t n = (int64_t)t0 / period_ms;
        double end = (double)((n + 1) * period_ms);
        if (end - t0 < BENCH_HTTP__CYCLE_MARGIN_MS) {
            fprintf(stderr,
                    "bench http: cycle_close_ms: %.1f s left in cycle %lld; seeding the next\n",
                    (end - t0) / 1000, (long long)n);
            bench_http__sleep_until(end + 100);
            continue;
        }
        memset(&l, 0, sizeof l);
        l.name = "seed_cycle_events";
        rv = bench_http__load_scores(b, &l, board, 1, (char)('C' + attempt));
        if (rv == 0) {
            l.seq_players = 1;
            l.limit = (b->players + BENCH_HTTP__BATCH - 1) / BENCH_HTTP__BATCH;
            rv = bench_http__seed_run(b, &l, "scores of the cycle board (POST /v1/events)", res);
        }
        bench_http__load_free(&l);
        if (rv != 0) {
            break;
        }
        if (l.items_ok < b->players) {
            fprintf(stderr, "bench http: cycle_close_ms: only %llu of %u scores were taken\n",
                    (unsigned long long)l.items_ok, b->players);
            rv = LR_EUNAVAILABLE;
            break;
        }
        if (bench_http__wall_ms() < end - 200) {
            *cycle = n;
            break;
        }
        fprintf(stderr,
                "bench http: cycle_close_ms: the seed ran past the end of cycle %lld; "
                "seeding the next\n",
                (long long)n);
        rv = LR_EUNAVAILABLE;
    }
    free(res);
    return rv;
}

/* cycle_close_ms: a board with cycles of BENCH_HTTP__CYCLE_S seconds, a score for each of the
 * seeded players in one cycle, then the time from that cycle's end (wall clock) to the first
 * GET /v1/boards/{id}/cycles/{n} that answers 200, polled every BENCH_HTTP__CYCLE_POLL_MS. The
 * record must hold the board's top; the delay includes one poll's round trip (~1 ms). */
static int bench_http__cycle_close(struct bench_http *b, const char *name)
{
    char board[48], path[96], errmsg[LR_ERRMSG_SIZE], why[256];
    int64_t cycle = 0;
    snprintf(board, sizeof board, "%s-cy", b->board);
    int rv = bench_http__board_put(
        b, board,
        json_pack("{s:s,s:s,s:[s],s:i,s:i,s:[{s:i,s:i,s:s},{s:i,s:i,s:s},{s:i,s:i,s:s}]}", "order",
                  "desc", "operator", "best", "windows", "alltime", "reset_period_s",
                  BENCH_HTTP__CYCLE_S, "snapshot_top", BENCH_HTTP__CYCLE_TOP, "rewards",
                  "rank_from", 1, "rank_to", 1, "reward", "gold", "rank_from", 2, "rank_to", 10,
                  "reward", "silver", "rank_from", 11, "rank_to", BENCH_HTTP__CYCLE_TOP, "reward",
                  "bronze"));
    if (rv != 0 || (rv = bench_http__cycle_seed(b, board, &cycle)) != 0) {
        return rv;
    }
    double end = (double)((cycle + 1) * BENCH_HTTP__CYCLE_S * 1000);
    fprintf(stderr,
            "bench http: %s: %u scores in cycle %lld of board %s; waiting %.1f s for its end\n",
            name, b->players, (long long)cycle, board, (end - bench_http__wall_ms()) / 1000);
    snprintf(path, sizeof path, "/v1/boards/%s/cycles/%lld", board, (long long)cycle);
    struct hclient_req req = {"GET", path, NULL, NULL, 0};
    unsigned polls = 0, fails = 0;
    int last = 0;
    for (double at = end;; at += BENCH_HTTP__CYCLE_POLL_MS) {
        struct hclient_resp resp;
        bench_http__sleep_until(at);
        if (bench_http__wall_ms() > end + BENCH_HTTP__CYCLE_GIVEUP_MS) {
            snprintf(why, sizeof why,
                     "no close record %d s after the end of cycle %lld (%u polls, "
                     "last status %d)",
                     BENCH_HTTP__CYCLE_GIVEUP_MS / 1000, (long long)cycle, polls, last);
            bench_http__cycle_error(b, name, why);
            return 0;
        }
        polls++;
        if (hclient_do(b->addr, &req, 2000, &resp, errmsg) != 0) {
            fails++;
            continue;
        }
        double got = bench_http__wall_ms();
        last = resp.status;
        if (resp.status == 200) {
            size_t want = b->players < BENCH_HTTP__CYCLE_TOP ? b->players : BENCH_HTTP__CYCLE_TOP;
            int bad = bench_http__cycle_check(&resp, cycle, want, why, sizeof why);
            hclient_resp_free(&resp);
            bench_http__fig(&b->figs, name, got - end, 0, "ms");
            fprintf(stderr, "bench http: %s: %u polls (%u failed) until the record\n", name, polls,
                    fails);
            if (bad) {
                bench_http__cycle_error(b, name, why);
            }
            printf("target %s <= 1000 ms: %s\n", name, got - end <= 1000 ? "met" : "NOT met");
            fflush(stdout);
            return 0;
        }
        hclient_resp_free(&resp);
        fails += last != 404;
    }
}

/* ---- the workloads, one after the other -------------------------------------------------- */

int bench_http__workloads(struct bench_http *b)
{
    enum { SCORE, EVENTS, RANK, AROUND, TOP, STALE, MIXED, MEMORY, CREATE, CYCLE };
    static const struct {
        const char *name, *unit;
        int kind;
        int waits; /* waits for a cycle boundary: left out of --quick unless --only names it */
    } w[] = {
        {"http_score_rps", "requests/s", SCORE, 0},
        {"http_events_cps", "commands/s", EVENTS, 0},
        {"http_rank_rps", "requests/s", RANK, 0},
        {"http_around_rps", "requests/s", AROUND, 0},
        {"http_top100_global_rps", "requests/s", TOP, 0},
        {"http_top100_stale_rps", "requests/s", STALE, 0},
        {"http_mixed_rps", "requests/s", MIXED, 0},
        {"router_bytes_per_entry", "B", MEMORY, 0},
        {"http_player_create_rps", "requests/s", CREATE, 0},
        {"cycle_close_ms", "ms", CYCLE, 1},
    };
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        struct bench_http__load l;
        char key[80], prefix[16];
        int rv;
        snprintf(key, sizeof key, ",%s,", w[i].name);
        if (b->only[0] && strstr(b->only, key) == NULL) {
            continue;
        }
        if (w[i].waits && b->quick && !b->only[0]) {
            fprintf(stderr,
                    "bench http: %s left out of --quick (it waits for a cycle boundary); "
                    "--only %s runs it\n",
                    w[i].name, w[i].name);
            continue;
        }
        memset(&l, 0, sizeof l);
        l.name = w[i].name;
        switch (w[i].kind) {
        case SCORE: rv = bench_http__load_scores(b, &l, b->board, 0, 'W'); break;
        case EVENTS: rv = bench_http__load_scores(b, &l, b->board, 1, 'E'); break;
        case RANK: rv = bench_http__load_read(b, &l, 0, 0); break;
        case AROUND: rv = bench_http__load_read(b, &l, 0, BENCH_HTTP__AROUND); break;
        case TOP: rv = bench_http__load_read(b, &l, 1, 0); break;
        case STALE: rv = bench_http__load_read(b, &l, 2, 0); break;
        case MIXED: rv = bench_http__load_mixed(b, &l); break;
        case MEMORY: rv = bench_http__model_bytes(b); break;
        case CREATE:
            /* Ids no one created: the seed's players are pprefix + n, these b<run>c + n. */
            snprintf(prefix, sizeof prefix, "b%sc", b->run);
            rv = bench_http__load_players(b, &l, prefix);
            l.want = 201;
            break;
        default: rv = bench_http__cycle_close(b, w[i].name); break;
        }
        if (rv == 0 && w[i].kind != CYCLE && w[i].kind != MEMORY) {
            rv = bench_http__measure(b, &l, w[i].name, w[i].unit);
        }
        bench_http__load_free(&l);
        if (rv != 0) {
            fprintf(stderr, "bench http: %s: %s\n", w[i].name, err_message(rv));
            return rv;
        }
    }
    return 0;
}
