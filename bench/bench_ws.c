/* router/bench_ws.c — `laurel bench ws`: the router's WebSocket gateway under load.
 *
 * The cluster and its seed come from `laurel bench http` (bench_http__site_up: `laurel dev`
 * as a child, one board, players with scores). The clients are wsload.h connections on this
 * process's loop, opened from 127.0.0.2, .3, ... (BW__PER_SOURCE each) so that more of them
 * fit than one source address has ephemeral ports. Writes go over HTTP from a second thread
 * (httpload.h on its own loop), so that neither side waits for the other. Phases, in order:
 *
 *   subscribe   S subscribers (--subscribers, default 10 000), connection n subscribed to
 *               `player:<n mod S/10>`: every notified player has 10 subscribers.
 *   notify      for --seconds, 4 HTTP connections write scores (POST /v1/boards/{b}/scores),
 *               write k to player k mod S/10 with score 10^12 + k. Each receipt of its
 *               score.updated is one sample of receipt time - acknowledgement time (0 when
 *               the event beat the HTTP answer):  ws_notify_p50_ms, ws_notify_p99_ms.
 *               Every acknowledged write must reach all 10 of its subscribers: a shortfall
 *               prints an `errors` line.
 *   fanout      every subscriber also subscribes to one hot player; 5 POST /v1/events of 100
 *               scores of that player follow back to back: 500 events x S receipts. The rate
 *               is receipts / (last receipt - first write sent):  ws_fanout_msgs_per_s.
 *   query       --query-conns connections (default 50, as Redis' clients) each with one
 *               `get` of a random player's rank outstanding (reads over the socket,
 *               docs/api.md), for --seconds:  ws_query_rps, _p50_ms, _p99_ms.
 *   hold        the subscribers grow to --conns (default 100 000) and stay for 5 s:
 *               ws_connections_max (open after the hold), ws_bytes_per_connection (the
 *               router's RSS growth over the ramp / connections added). Capped by this
 *               process's descriptor limit: the cap and why are printed.
 *
 * Then, with the cluster stopped, Redis answers ZREVRANK from as many clients as the query
 * phase had connections (bench_peer.c), and the ratio and targets are printed. The cluster,
 * the clients and the peer share the machine's cores. Nothing here asserts a time. */
#include "bench_ws.h"

#include <assert.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "../cli/cli.h"
#include "../lib/err.h"
#include "../lib/sys.h"
#include "bench_http_int.h"
#include "httpload.h"
#include "wsload.h"

#define BW__FIRST_SOURCE 2
#define BW__PER_SOURCE 20000
#define BW__SUBS_PER_PLAYER 10
#define BW__NOTIFY_BASE 1000000000000LL
#define BW__FAN_BASE 2000000000000LL
#define BW__FAN_BATCHES 5
#define BW__BATCH 100
#define BW__WRITERS 4
#define BW__HOLD_S 5.0
#define BW__PLAYER_DIGITS 7

enum { BW__SUBSCRIBE, BW__NOTIFY, BW__FAN, BW__QUERY, BW__HOLD };

struct bw__rec {
    uint64_t seq, t;
};

struct bench_ws {
    /* options */
    int quick, peers;
    unsigned conns, subs, qconns;
    double seconds;
    struct bench_http__site site;
    struct bench_http__figs figs;
    /* the loop and the clients */
    uv_loop_t loop;
    uv_timer_t tick;
    uv_async_t wake;
    struct wsload *pool, *qpool;
    int phase, freed;
    unsigned notify_players;
    char hot[32];
    uint64_t subscribed, error_events, stray;
    uint64_t closes; /* connections closed after opening */
    char first_close[200];
    /* the writer thread: its spec, result and whether it ended */
    uv_thread_t thread;
    struct httpload_spec wspec;
    struct httpload_result *wres;
    int writer_rv, writer_done;
    char path[160];
    /* notify: acknowledgement times by write (written by the writer, read after it ends) */
    uint64_t *ack_ns;
    size_t ack_cap;
    uint64_t ack_bad;
    struct bw__rec *rec;
    size_t nrec, caprec;
    /* fanout */
    uint64_t fan_recv, fan_t0, fan_t_last;
    /* query */
    char *qtext;
    size_t qlen, qdigits;
    uint64_t *q_sent;
    uint64_t q_ok, q_bad, rng;
    char q_first_bad[256];
    int q_on;
    struct httpload_hist q_hist;
    char bad[256];
};

/* ---- small things -------------------------------------------------------------------------- */

static void bw__digits(char *dst, uint64_t v)
{
    for (int i = BW__PLAYER_DIGITS - 1; i >= 0; i--) {
        dst[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static void bw__player(const struct bench_ws *b, uint64_t n, char *out, size_t cap)
{
    char d[BW__PLAYER_DIGITS + 1];
    bw__digits(d, n);
    d[BW__PLAYER_DIGITS] = '\0';
    snprintf(out, cap, "%s%s", b->site.pprefix, d);
}

/* A number after @key in @p (@n bytes): the first one; -1 when absent. */
static long long bw__field(const char *p, size_t n, const char *key)
{
    size_t kl = strlen(key);
    const char *at = memmem(p, n, key, kl);
    long long v = 0;
    if (at == NULL) {
        return -1;
    }
    for (at += kl; at < p + n && *at >= '0' && *at <= '9'; at++) {
        v = v * 10 + (*at - '0');
    }
    return v;
}

static int bw__is(const char *p, size_t n, const char *type)
{
    char key[64];
    int kl = snprintf(key, sizeof key, "\"type\":\"%s\"", type);
    return memmem(p, n, key, (size_t)kl) != NULL;
}

/* The router's resident memory, from /proc; 0 when unknown. */
static double bw__rss_bytes(pid_t pid)
{
    char path[64], buf[4096];
    if (pid <= 0) {
        return 0;
    }
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (bench_http__slurp(path, buf, sizeof buf) <= 0) {
        return 0;
    }
    const char *p = strstr(buf, "VmRSS:");
    return p ? atof(p + 6) * 1024.0 : 0;
}

/* Send @j (stolen) as one message on @conn of @l. */
static int bw__send_json(struct wsload *l, unsigned conn, json_t *j)
{
    char buf[1024];
    size_t n = j ? json_dumpb(j, buf, sizeof buf, JSON_COMPACT) : 0;
    json_decref(j);
    if (n == 0 || n > sizeof buf) {
        return LR_ENOMEM;
    }
    return wsload_send(l, conn, buf, n);
}

/* ---- the loop -------------------------------------------------------------------------- */

static void bw__tick(uv_timer_t *t) { (void)t; }

static void bw__woken(uv_async_t *a)
{
    struct bench_ws *b = a->data;
    b->writer_done = 1;
}

/* Run the loop until @done(b) or @timeout_s; print @what's progress every 5 s. */
static int bw__run_until(struct bench_ws *b, int (*done)(struct bench_ws *), double timeout_s,
                         const char *what)
{
    double end = bench_http__now() + timeout_s, next = bench_http__now() + 5;
    while (!done(b)) {
        if (bench_http__now() > end) {
            return 0;
        }
        if (bench_http__now() > next) {
            struct wsload_stats st;
            wsload_stats_get(b->pool, &st);
            fprintf(stderr, "bench ws: %s: %u open, %u opening, %llu failed, %llu subscribed\n",
                    what, st.open, st.opening, (unsigned long long)st.failed,
                    (unsigned long long)b->subscribed);
            next += 5;
        }
        uv_run(&b->loop, UV_RUN_ONCE);
    }
    return 1;
}

/* ---- subscribers ------------------------------------------------------------------------ */

static void bw__sub_opened(void *data, unsigned conn)
{
    struct bench_ws *b = data;
    char topic[64], player[32];
    bw__player(b, conn % b->notify_players, player, sizeof player);
    snprintf(topic, sizeof topic, "player:%s", player);
    if (bw__send_json(b->pool, conn, json_pack("{s:s,s:[s]}", "op", "subscribe", "topics",
                                               topic)) != 0) {
        wsload_close(b->pool, conn);
    }
}

static void bw__sub_message(void *data, unsigned conn, const char *p, size_t n)
{
    struct bench_ws *b = data;
    (void)conn;
    if (bw__is(p, n, "score.updated")) {
        uint64_t now = uv_hrtime();
        long long score = bw__field(p, n, "\"score\":");
        if (score >= BW__FAN_BASE) {
            b->fan_recv++;
            b->fan_t_last = now;
        } else if (score >= BW__NOTIFY_BASE && (size_t)(score - BW__NOTIFY_BASE) < b->ack_cap) {
            if (b->nrec == b->caprec) {
                size_t cap = b->caprec ? b->caprec * 2 : 65536;
                struct bw__rec *r = realloc(b->rec, cap * sizeof *r);
                if (r == NULL) {
                    b->stray++;
                    return;
                }
                b->rec = r;
                b->caprec = cap;
            }
            b->rec[b->nrec++] = (struct bw__rec){(uint64_t)(score - BW__NOTIFY_BASE), now};
        } else {
            b->stray++;
        }
    } else if (bw__is(p, n, "subscribed")) {
        b->subscribed++;
    } else if (bw__is(p, n, "error")) {
        if (b->error_events++ == 0) {
            fprintf(stderr, "bench ws: first error event: %.*s\n", (int)(n > 200 ? 200 : n), p);
        }
    }
}

static void bw__closed(void *data, unsigned conn, int opened, int code, const char *why)
{
    struct bench_ws *b = data;
    (void)conn;
    if (opened) {
        if (b->closes++ == 0) {
            snprintf(b->first_close, sizeof b->first_close, "code %d, %s", code, why);
        }
    }
}

/* ---- the writer thread -------------------------------------------------------------------- */

static void bw__writer(void *arg)
{
    struct bench_ws *b = arg;
    b->writer_rv = httpload_run(&b->wspec, b->wres);
    uv_async_send(&b->wake);
}

/* Write the request for body @j (stolen) into @buf. */
static size_t bw__request(struct bench_ws *b, json_t *j, char *buf, size_t cap)
{
    size_t n = j ? json_dumpb(j, NULL, 0, JSON_COMPACT) : 0;
    size_t h = n ? httpload_head(buf, cap, "POST", b->path, b->site.addr, b->site.api_key, 1, n)
                 : 0;
    if (h == 0 || h + n > cap || json_dumpb(j, buf + h, cap - h, JSON_COMPACT) != n) {
        json_decref(j);
        return 0;
    }
    json_decref(j);
    return h + n;
}

static size_t bw__make_notify(void *data, unsigned conn, uint64_t seq, char *buf, size_t cap)
{
    struct bench_ws *b = data;
    char player[32], key[64];
    (void)conn;
    if (seq >= b->ack_cap) {
        return 0;
    }
    bw__player(b, seq % b->notify_players, player, sizeof player);
    snprintf(key, sizeof key, "kw%sN%llu", b->site.run, (unsigned long long)seq);
    return bw__request(b,
                       json_pack("{s:s,s:I,s:s}", "player_id", player, "score",
                                 (json_int_t)(BW__NOTIFY_BASE + (long long)seq),
                                 "idempotency_key", key),
                       buf, cap);
}

static void bw__done_notify(void *data, unsigned conn, uint64_t seq, int status,
                            const char *body, size_t len)
{
    struct bench_ws *b = data;
    (void)conn, (void)body, (void)len;
    if (seq < b->ack_cap && status >= 200 && status < 300) {
        b->ack_ns[seq] = uv_hrtime();
    } else {
        b->ack_bad++;
    }
}

static size_t bw__make_fan(void *data, unsigned conn, uint64_t seq, char *buf, size_t cap)
{
    struct bench_ws *b = data;
    char key[64];
    (void)conn;
    if (seq >= BW__FAN_BATCHES) {
        return 0;
    }
    json_t *a = json_array();
    for (unsigned i = 0; a && i < BW__BATCH; i++) {
        long long k = (long long)seq * BW__BATCH + i;
        snprintf(key, sizeof key, "kw%sF%lld", b->site.run, k);
        if (json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:I,s:s}", "type", "score",
                                               "board_id", b->site.board, "player_id", b->hot,
                                               "score", (json_int_t)(BW__FAN_BASE + k),
                                               "idempotency_key", key)) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return bw__request(b, a, buf, cap);
}

static int bw__writer_start(struct bench_ws *b, unsigned conns, double seconds,
                            httpload_make_cb make, httpload_done_cb done)
{
    memset(b->wres, 0, sizeof *b->wres);
    b->wspec = (struct httpload_spec){b->site.addr, conns, seconds, make, done, b};
    b->writer_done = 0;
    return uv_thread_create(&b->thread, bw__writer, b) == 0 ? 0 : LR_ENOMEM;
}

static int bw__writer_ended(struct bench_ws *b) { return b->writer_done; }

/* ---- phases -------------------------------------------------------------------------------- */

static int bw__all_subscribed(struct bench_ws *b)
{
    struct wsload_stats st;
    wsload_stats_get(b->pool, &st);
    return st.opening == 0 && st.started == b->subs && b->subscribed >= st.open;
}

static int bw__phase_subscribe(struct bench_ws *b)
{
    struct wsload_stats st;
    double t0 = bench_http__now();
    b->phase = BW__SUBSCRIBE;
    wsload_grow(b->pool, b->subs);
    bw__run_until(b, bw__all_subscribed, 120, "subscribe");
    wsload_stats_get(b->pool, &st);
    fprintf(stderr, "bench ws: %u subscribers open and subscribed in %.1f s (%llu failed%s%s)\n",
            st.open, bench_http__now() - t0, (unsigned long long)st.failed,
            st.first_error[0] ? ": " : "", st.first_error);
    if (st.open < b->subs) {
        printf("errors ws_subscribe: %u of %u subscribers open (%s)\n", st.open, b->subs,
               st.first_error[0] ? st.first_error : b->first_close);
        strcat(b->bad, " subscribe");
    }
    return st.open > 0 ? 0 : LR_EUNAVAILABLE;
}

static int bw__phase_notify(struct bench_ws *b)
{
    struct wsload_stats st;
    int rv;
    b->phase = BW__NOTIFY;
    b->ack_cap = (size_t)(b->seconds * 20000) + 1000;
    b->ack_ns = calloc(b->ack_cap, sizeof *b->ack_ns);
    if (b->ack_ns == NULL) {
        return LR_ENOMEM;
    }
    snprintf(b->path, sizeof b->path, "/v1/boards/%s/scores", b->site.board);
    fprintf(stderr, "bench ws: notify: %u writers for %.0f s, %u subscribers of %u players\n",
            BW__WRITERS, b->seconds, b->subs, b->notify_players);
    rv = bw__writer_start(b, BW__WRITERS, b->seconds, bw__make_notify, bw__done_notify);
    if (rv != 0) {
        return rv;
    }
    bw__run_until(b, bw__writer_ended, b->seconds + 60, "notify");
    uv_thread_join(&b->thread);
    /* Late notifications: the loop runs on for a second. */
    double end = bench_http__now() + 1;
    while (bench_http__now() < end) {
        uv_run(&b->loop, UV_RUN_ONCE);
    }
    if (b->writer_rv != 0) {
        return b->writer_rv;
    }
    /* Each acknowledged write owes one receipt per subscriber of its player. */
    wsload_stats_get(b->pool, &st);
    uint64_t acked = 0, expected = 0, got = 0;
    struct httpload_hist *h = calloc(1, sizeof *h);
    if (h == NULL) {
        return LR_ENOMEM;
    }
    for (size_t k = 0; k < b->ack_cap; k++) {
        if (b->ack_ns[k]) {
            acked++;
            uint64_t p = k % b->notify_players;
            expected += b->subs / b->notify_players + (p < b->subs % b->notify_players);
        }
    }
    for (size_t i = 0; i < b->nrec; i++) {
        uint64_t ack = b->ack_ns[b->rec[i].seq];
        if (ack) {
            httpload_hist_add(h, b->rec[i].t > ack ? b->rec[i].t - ack : 0);
            got++;
        }
    }
    fprintf(stderr, "bench ws: notify: %llu writes acknowledged (%.0f/s), %llu receipts of %llu "
                    "owed, %llu writes refused or lost\n",
            (unsigned long long)acked, (double)acked / b->wres->seconds, (unsigned long long)got,
            (unsigned long long)expected, (unsigned long long)b->ack_bad);
    bench_http__fig(&b->figs, "ws_notify_p50_ms", httpload_hist_quantile_ms(h, 0.50), 2, "ms");
    bench_http__fig(&b->figs, "ws_notify_p99_ms", httpload_hist_quantile_ms(h, 0.99), 2, "ms");
    bench_http__fig(&b->figs, "ws_notify_writes_per_s", (double)acked / b->wres->seconds, 0,
                    "writes/s");
    if (got < expected || b->ack_bad > 0) {
        printf("errors ws_notify: %llu of %llu notifications received, %llu writes not "
               "acknowledged\n",
               (unsigned long long)got, (unsigned long long)expected,
               (unsigned long long)b->ack_bad);
        strcat(b->bad, " notify");
    }
    free(h);
    return 0;
}

static int bw__hot_subscribed(struct bench_ws *b)
{
    struct wsload_stats st;
    wsload_stats_get(b->pool, &st);
    return b->subscribed >= 2 * (uint64_t)st.open;
}

static int bw__fan_done(struct bench_ws *b)
{
    struct wsload_stats st;
    wsload_stats_get(b->pool, &st);
    return b->writer_done &&
           b->fan_recv >= (uint64_t)BW__FAN_BATCHES * BW__BATCH * st.open;
}

static int bw__phase_fan(struct bench_ws *b)
{
    struct wsload_stats st;
    int rv;
    b->phase = BW__FAN;
    bw__player(b, b->notify_players, b->hot, sizeof b->hot);
    char topic[64];
    snprintf(topic, sizeof topic, "player:%s", b->hot);
    wsload_stats_get(b->pool, &st);
    /* One "subscribed" a connection came in the first phase; one more for the hot topic. */
    b->subscribed = st.open;
    for (unsigned i = 0; i < st.started; i++) {
        bw__send_json(b->pool, i, json_pack("{s:s,s:[s]}", "op", "subscribe", "topics", topic));
    }
    bw__run_until(b, bw__hot_subscribed, 60, "fanout subscribe");
    snprintf(b->path, sizeof b->path, "/v1/events");
    b->fan_t0 = uv_hrtime();
    rv = bw__writer_start(b, 1, 0, bw__make_fan, NULL);
    if (rv != 0) {
        return rv;
    }
    bw__run_until(b, bw__fan_done, 60, "fanout");
    uv_thread_join(&b->thread);
    wsload_stats_get(b->pool, &st);
    uint64_t owed = (uint64_t)BW__FAN_BATCHES * BW__BATCH * st.open;
    double secs = b->fan_t_last > b->fan_t0 ? (double)(b->fan_t_last - b->fan_t0) / 1e9 : 0;
    fprintf(stderr, "bench ws: fanout: %llu of %llu messages in %.2f s (%llu items refused)\n",
            (unsigned long long)b->fan_recv, (unsigned long long)owed, secs,
            (unsigned long long)(b->wres->answered - b->wres->ok));
    bench_http__fig(&b->figs, "ws_fanout_msgs_per_s", secs > 0 ? (double)b->fan_recv / secs : 0,
                    0, "messages/s");
    if (b->fan_recv < owed || b->wres->ok < BW__FAN_BATCHES) {
        printf("errors ws_fanout: %llu of %llu messages received, %llu of %d batches "
               "acknowledged\n",
               (unsigned long long)b->fan_recv, (unsigned long long)owed,
               (unsigned long long)b->wres->ok, BW__FAN_BATCHES);
        strcat(b->bad, " fanout");
    }
    return b->writer_rv;
}

/* One get of a random player's rank on @conn. */
static void bw__query_send(struct bench_ws *b, unsigned conn)
{
    char buf[512];
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    memcpy(buf, b->qtext, b->qlen);
    bw__digits(buf + b->qdigits, b->rng % b->site.players);
    b->q_sent[conn] = uv_hrtime();
    if (wsload_send(b->qpool, conn, buf, b->qlen) != 0) {
        b->q_bad++;
    }
}

static void bw__q_opened(void *data, unsigned conn)
{
    struct bench_ws *b = data;
    if (b->q_on) {
        bw__query_send(b, conn);
    }
}

static void bw__q_message(void *data, unsigned conn, const char *p, size_t n)
{
    struct bench_ws *b = data;
    if (!bw__is(p, n, "response")) {
        return;
    }
    if (b->q_on) {
        httpload_hist_add(&b->q_hist, uv_hrtime() - b->q_sent[conn]);
        if (bw__field(p, n, "\"status\":") == 200) {
            b->q_ok++;
        } else if (b->q_bad++ == 0) {
            snprintf(b->q_first_bad, sizeof b->q_first_bad, "%.*s", (int)(n > 200 ? 200 : n),
                     p);
        }
        bw__query_send(b, conn);
    }
}

static int bw__q_open(struct bench_ws *b)
{
    struct wsload_stats st;
    wsload_stats_get(b->qpool, &st);
    return st.opening == 0 && st.started == b->qconns;
}

static int bw__never(struct bench_ws *b)
{
    (void)b;
    return 0;
}

static int bw__phase_query(struct bench_ws *b)
{
    char path[160];
    struct wsload_stats st;
    b->phase = BW__QUERY;
    snprintf(path, sizeof path, "/v1/boards/%s/players/%s0000000", b->site.board,
             b->site.pprefix);
    json_t *j = json_pack("{s:s,s:i,s:s}", "op", "get", "id", 1, "path", path);
    b->qtext = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    b->q_sent = calloc(b->qconns, sizeof *b->q_sent);
    if (b->qtext == NULL || b->q_sent == NULL) {
        return LR_ENOMEM;
    }
    b->qlen = strlen(b->qtext);
    b->qdigits = (size_t)(strstr(b->qtext, path) - b->qtext) + strlen(path) - BW__PLAYER_DIGITS;
    wsload_grow(b->qpool, b->qconns);
    bw__run_until(b, bw__q_open, 30, "query connections");
    wsload_stats_get(b->qpool, &st);
    if (st.open == 0) {
        printf("errors ws_query: no connection opened (%s)\n", st.first_error);
        return LR_EUNAVAILABLE;
    }
    fprintf(stderr, "bench ws: query: %u connections for %.0f s\n", st.open, b->seconds);
    b->q_on = 1;
    double t0 = bench_http__now();
    for (unsigned i = 0; i < b->qconns; i++) {
        bw__query_send(b, i);
    }
    bw__run_until(b, bw__never, b->seconds, "query");
    double secs = bench_http__now() - t0;
    b->q_on = 0;
    bench_http__fig(&b->figs, "ws_query_rps", (double)b->q_ok / secs, 0, "requests/s");
    bench_http__fig(&b->figs, "ws_query_p50_ms", httpload_hist_quantile_ms(&b->q_hist, 0.5), 2,
                    "ms");
    bench_http__fig(&b->figs, "ws_query_p99_ms", httpload_hist_quantile_ms(&b->q_hist, 0.99), 2,
                    "ms");
    if (b->q_bad) {
        printf("errors ws_query: %llu gets not answered 200; the first: %s\n",
               (unsigned long long)b->q_bad, b->q_first_bad);
        strcat(b->bad, " query");
    }
    return 0;
}

static int bw__ramped(struct bench_ws *b)
{
    struct wsload_stats st;
    wsload_stats_get(b->pool, &st);
    return st.opening == 0 && st.started == b->conns && b->subscribed >= st.opened;
}

static int bw__phase_hold(struct bench_ws *b)
{
    struct wsload_stats before, st;
    b->phase = BW__HOLD;
    wsload_stats_get(b->pool, &before);
    double rss0 = bw__rss_bytes(b->site.dev);
    double t0 = bench_http__now();
    /* Each new subscriber's "subscribed" counts once; the first ones are all in. */
    b->subscribed = before.opened;
    fprintf(stderr, "bench ws: hold: growing to %u connections\n", b->conns);
    wsload_grow(b->pool, b->conns);
    bw__run_until(b, bw__ramped, 600, "hold");
    double ramp_s = bench_http__now() - t0;
    bw__run_until(b, bw__never, BW__HOLD_S, "hold");
    wsload_stats_get(b->pool, &st);
    double rss1 = bw__rss_bytes(b->site.dev);
    fprintf(stderr, "bench ws: hold: %u open after %.1f s of ramp and %.0f s held (%llu failed, "
                    "%llu closed%s%s)\n",
            st.open, ramp_s, BW__HOLD_S, (unsigned long long)st.failed,
            (unsigned long long)st.closed, st.first_error[0] ? ": " : "", st.first_error);
    bench_http__fig(&b->figs, "ws_connections_max", st.open, 0, "connections");
    if (rss0 > 0 && rss1 > 0 && st.open > before.open) {
        bench_http__fig(&b->figs, "ws_bytes_per_connection",
                        (rss1 - rss0) / (double)(st.open - before.open), 0, "bytes");
    }
    if (st.open < b->conns) {
        printf("errors ws_connections: %u of %u held (%s)\n", st.open, b->conns,
               st.first_error[0] ? st.first_error : b->first_close);
        strcat(b->bad, " hold");
    }
    return 0;
}

/* ---- the command ------------------------------------------------------------------------- */

static void bw__usage(FILE *f)
{
    fprintf(f,
            "usage: laurel bench ws [--quick] [--no-peers] [--regions a,b,c] [--replicas N]\n"
            "                       [--conns N] [--subscribers N] [--query-conns N]\n"
            "                       [--players N] [--seconds S]\n"
            "\n"
            "The router's WebSocket gateway of a real cluster (`laurel dev`, started in a\n"
            "temporary directory and stopped at the end): notification latency from a write's\n"
            "acknowledgement to its subscribers, fan-out rate, reads over the socket, and\n"
            "connections held with the router's memory per connection; then Redis ZREVRANK\n"
            "from as many clients as reads had connections, and the ratio.\n"
            "  --conns N         connections to hold (default 100000; capped by the descriptor\n"
            "                    limit, which needs CAP_SYS_RESOURCE to go past its hard value)\n"
            "  --subscribers N   subscribers during notify and fanout (default 10000)\n"
            "  --query-conns N   connections of the read phase (default 50)\n"
            "  --quick           2 s phases, 1000 subscribers, 2000 connections, 2000 players\n"
            "  --no-peers        skip Redis\n"
            "Each figure prints as `figure <name> <value> <unit>`, shortfalls as\n"
            "`errors <phase>: ...`.\n");
}

static int bw__parse(struct bench_ws *b, int argc, char **argv)
{
    static const struct option opts[] = {{"quick", no_argument, NULL, 'q'},
                                         {"no-peers", no_argument, NULL, 'P'},
                                         {"regions", required_argument, NULL, 'r'},
                                         {"replicas", required_argument, NULL, 'n'},
                                         {"conns", required_argument, NULL, 'c'},
                                         {"subscribers", required_argument, NULL, 's'},
                                         {"query-conns", required_argument, NULL, 'Q'},
                                         {"players", required_argument, NULL, 'p'},
                                         {"seconds", required_argument, NULL, 'S'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *regions = "na,eu,apac";
    long conns = -1, subs = -1, players = 0;
    int c;
    b->peers = 1;
    b->qconns = 50;
    b->site.replicas = 3;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'q': b->quick = 1; break;
        case 'P': b->peers = 0; break;
        case 'r': regions = optarg; break;
        case 'n': b->site.replicas = (unsigned)atoi(optarg); break;
        case 'c': conns = atol(optarg); break;
        case 's': subs = atol(optarg); break;
        case 'Q': b->qconns = (unsigned)atoi(optarg); break;
        case 'p': players = atol(optarg); break;
        case 'S': b->seconds = atof(optarg); break;
        case 'h': bw__usage(stdout); return 0;
        default: bw__usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "laurel bench ws: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (bench_http__regions(regions, b->site.regions, &b->site.nregions) != 0) {
        fprintf(stderr, "laurel bench ws: --regions: 1 to %d ids\n", ROUTER_MAX_REGIONS);
        return 2;
    }
    b->subs = (unsigned)(subs >= 0 ? subs : b->quick ? 1000 : 10000);
    b->conns = (unsigned)(conns >= 0 ? conns : b->quick ? 2000 : 100000);
    players = players ? players : b->quick ? 2000 : 30000;
    b->seconds = b->seconds > 0 ? b->seconds : b->quick ? 2 : 10;
    if (b->site.nregions == 0 || b->site.replicas < 1 || b->subs < BW__SUBS_PER_PLAYER ||
        b->conns < b->subs || b->conns > 254u * BW__PER_SOURCE || b->qconns < 1 ||
        b->qconns > 10000 || players < 100 || players > 9999900 ||
        (unsigned long)players <= b->subs / BW__SUBS_PER_PLAYER) {
        fprintf(stderr, "laurel bench ws: bad --regions, --replicas, --conns (>= subscribers), "
                        "--subscribers (>= 10), --query-conns or --players (> subscribers/10)\n");
        return 2;
    }
    b->site.players = (unsigned)((players + BW__BATCH - 1) / BW__BATCH * BW__BATCH);
    b->site.quick = b->quick;
    b->notify_players = b->subs / BW__SUBS_PER_PLAYER;
    return -1;
}

/* Room for every connection in this process; fewer connections when the limit is lower. */
static void bw__fit_conns(struct bench_ws *b)
{
    unsigned long spare = 1024 + b->qconns;
    unsigned long have = sys_raise_nofile((unsigned long)b->conns + spare);
    if (have < (unsigned long)b->conns + spare) {
        unsigned fit = have > spare + b->subs ? (unsigned)(have - spare) : b->subs;
        printf("bench ws: --conns %u does not fit this process's descriptor limit (%lu; a "
               "higher hard limit needs CAP_SYS_RESOURCE): holding %u\n",
               b->conns, have, fit);
        b->conns = fit;
    }
}

static void bw__pool_freed(void *data)
{
    struct bench_ws *b = data;
    b->freed++;
}

static int bw__loop_up(struct bench_ws *b)
{
    struct wsload_spec spec = {
        .addr = b->site.addr,
        .target = "/v1/ws",
        .cap = b->conns,
        .first_source = BW__FIRST_SOURCE,
        .per_source = BW__PER_SOURCE,
        .cbs = {bw__sub_opened, bw__sub_message, bw__closed},
        .data = b,
    };
    int rv = uv_loop_init(&b->loop);
    if (rv != 0) {
        return LR_ENOMEM;
    }
    uv_timer_init(&b->loop, &b->tick);
    uv_timer_start(&b->tick, bw__tick, 50, 50);
    uv_async_init(&b->loop, &b->wake, bw__woken);
    b->wake.data = b;
    rv = wsload_new(&b->loop, &spec, &b->pool);
    if (rv == 0) {
        spec.cap = b->qconns;
        spec.first_source = 0;
        spec.cbs = (struct wsload_cbs){bw__q_opened, bw__q_message, bw__closed};
        rv = wsload_new(&b->loop, &spec, &b->qpool);
    }
    return rv;
}

static void bw__loop_down(struct bench_ws *b)
{
    unsigned want = 0;
    if (b->pool) {
        wsload_free(b->pool, bw__pool_freed, b);
        want++;
    }
    if (b->qpool) {
        wsload_free(b->qpool, bw__pool_freed, b);
        want++;
    }
    uv_close((uv_handle_t *)&b->tick, NULL);
    uv_close((uv_handle_t *)&b->wake, NULL);
    while (b->freed < (int)want || uv_loop_alive(&b->loop)) {
        uv_run(&b->loop, UV_RUN_ONCE);
    }
    uv_loop_close(&b->loop);
}

int bench_ws_main(int argc, char **argv)
{
    struct bench_ws *b = calloc(1, sizeof *b);
    int rv;
    if (b == NULL) {
        return 1;
    }
    rv = bw__parse(b, argc, argv);
    if (rv >= 0) {
        free(b);
        return rv;
    }
    signal(SIGPIPE, SIG_IGN);
    b->rng = 0x2545f4914f6cdd1dULL ^ (uint64_t)time(NULL);
    b->wres = calloc(1, sizeof *b->wres);
    if (b->wres == NULL) {
        free(b);
        return 1;
    }
    bw__fit_conns(b);
    rv = bench_http__site_up(&b->site);
    printf("bench ws: laurel dev, %u region(s) x %u replica(s), at %s, %u players, board %s; "
           "%u subscribers, %u connections held, %u query connections, %.0f s phases\n",
           b->site.nregions, b->site.replicas, b->site.addr, b->site.players, b->site.board,
           b->subs, b->conns, b->qconns, b->seconds);
    fflush(stdout);
    if (rv == 0) {
        static int (*const phases[])(struct bench_ws *) = {
            bw__phase_subscribe, bw__phase_notify, bw__phase_fan, bw__phase_query,
            bw__phase_hold};
        rv = bw__loop_up(b);
        for (size_t i = 0; rv == 0 && i < sizeof phases / sizeof phases[0]; i++) {
            rv = phases[i](b);
        }
        if (b->closes) {
            printf("errors ws: %llu connections closed by the router (first: %s)\n",
                   (unsigned long long)b->closes, b->first_close);
        }
        if (b->error_events) {
            printf("errors ws: %llu error events\n", (unsigned long long)b->error_events);
        }
        bw__loop_down(b);
    }
    bench_http__site_down(&b->site);
    if (rv == 0 && b->peers) {
        struct bench_peer__opts po = {b->quick, b->qconns, ",redis_zrevrank_rps,"};
        double ours, peer;
        if (bench_peer__redis(&b->figs, &po) != 0) {
            printf("errors redis: the Redis peer failed (see above)\n");
        } else if (bench_http__fig_get(&b->figs, "ws_query_rps", &ours) &&
                   bench_http__fig_get(&b->figs, "redis_zrevrank_rps", &peer) && peer > 0) {
            bench_http__fig(&b->figs, "ratio_ws_query_vs_redis_zrevrank", ours / peer, 2, "x");
            printf("target ratio_ws_query_vs_redis_zrevrank >= 1.0: %s\n",
                   ours >= peer ? "met" : "NOT met");
        }
    }
    double v;
    if (rv == 0 && bench_http__fig_get(&b->figs, "ws_connections_max", &v)) {
        printf("target ws_connections_max >= 100000: %s\n", v >= 100000 ? "met" : "NOT met");
    }
    if (rv == 0 && bench_http__fig_get(&b->figs, "ws_notify_p99_ms", &v)) {
        printf("target ws_notify_p99_ms <= 50 at %u subscribers: %s\n", b->subs,
               v <= 50 ? "met" : "NOT met");
    }
    if (rv != 0) {
        fprintf(stderr, "bench ws: %s\n", err_message(rv));
    } else if (b->bad[0]) {
        printf("bench ws: phases with errors:%s\n", b->bad);
    }
    fflush(stdout);
    free(b->ack_ns);
    free(b->rec);
    free(b->qtext);
    free(b->q_sent);
    free(b->wres);
    free(b);
    return rv == 0 ? 0 : 1;
}
