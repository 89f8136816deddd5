/* bench/bench_ws_phases.c — the run of `laurel bench ws` (bench_ws.c describes the phases):
 * one libuv loop carries the subscribers and the query connections (wsload.h), a second
 * thread writes over HTTP (httpload.h on its own loop) and wakes the loop when it ends, and
 * each phase runs the loop until its condition holds or its time is up, then prints its
 * figures from what the callbacks counted.
 *
 * A message names its phase and write by the score it carries: a write of the notify phase
 * scores BENCH_WS__NOTIFY_BASE + its number, one of the fan-out BENCH_WS__FAN_BASE + its
 * number. The fan-out only counts its receipts; the notify phase keeps each receipt's write
 * number and time, and matches them to the writer's acknowledgement times once it has ended. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../lib/err.h"
#include "bench_http_int.h"
#include "bench_ws_int.h"
#include "httpload.h"
#include "../lib/wsload.h"

#define BENCH_WS__FIRST_SOURCE 2
#define BENCH_WS__NOTIFY_BASE 1000000000000LL
#define BENCH_WS__FAN_BASE 2000000000000LL
#define BENCH_WS__FAN_BATCHES 5
#define BENCH_WS__WRITERS 4
#define BENCH_WS__HOLD_S 5.0
#define BENCH_WS__PLAYER_DIGITS 7

enum { BENCH_WS__SUBSCRIBE, BENCH_WS__NOTIFY, BENCH_WS__FAN, BENCH_WS__QUERY, BENCH_WS__HOLD };

/* ---- small things -------------------------------------------------------------------------- */

static void bench_ws__digits(char *dst, uint64_t v)
{
    for (int i = BENCH_WS__PLAYER_DIGITS - 1; i >= 0; i--) {
        dst[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

static void bench_ws__player(const struct bench_ws *b, uint64_t n, char *out, size_t cap)
{
    char d[BENCH_WS__PLAYER_DIGITS + 1];
    bench_ws__digits(d, n);
    d[BENCH_WS__PLAYER_DIGITS] = '\0';
    snprintf(out, cap, "%s%s", b->site.pprefix, d);
}

/* A number after @key in @p (@n bytes): the first one; -1 when absent. */
static long long bench_ws__field(const char *p, size_t n, const char *key)
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

static int bench_ws__is(const char *p, size_t n, const char *type)
{
    char key[64];
    int kl = snprintf(key, sizeof key, "\"type\":\"%s\"", type);
    return memmem(p, n, key, (size_t)kl) != NULL;
}

/* The router's resident memory, from /proc; 0 when unknown. */
static double bench_ws__rss_bytes(pid_t pid)
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
static int bench_ws__send_json(struct wsload *l, unsigned conn, json_t *j)
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

static void bench_ws__tick(uv_timer_t *t)
{
    (void)t;
}

static void bench_ws__woken(uv_async_t *a)
{
    struct bench_ws *b = a->data;
    b->writer_done = 1;
}

/* Run the loop until @done(b) or @timeout_s; print @what's progress every 5 s. */
static int bench_ws__run_until(struct bench_ws *b, int (*done)(struct bench_ws *), double timeout_s,
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

static void bench_ws__sub_opened(void *data, unsigned conn)
{
    struct bench_ws *b = data;
    char topic[64], player[32];
    bench_ws__player(b, conn % b->notify_players, player, sizeof player);
    snprintf(topic, sizeof topic, "player:%s", player);
    if (bench_ws__send_json(b->pool, conn,
                            json_pack("{s:s,s:[s]}", "op", "subscribe", "topics", topic)) != 0) {
        wsload_close(b->pool, conn);
    }
}

static void bench_ws__sub_message(void *data, unsigned conn, const char *p, size_t n)
{
    struct bench_ws *b = data;
    (void)conn;
    if (bench_ws__is(p, n, "score.updated")) {
        uint64_t now = uv_hrtime();
        long long score = bench_ws__field(p, n, "\"score\":");
        if (score >= BENCH_WS__FAN_BASE) {
            b->fan_recv++;
            b->fan_t_last = now;
        } else if (score >= BENCH_WS__NOTIFY_BASE &&
                   (size_t)(score - BENCH_WS__NOTIFY_BASE) < b->ack_cap) {
            if (b->nrec == b->caprec) {
                size_t cap = b->caprec ? b->caprec * 2 : 65536;
                struct bench_ws__rec *r = realloc(b->rec, cap * sizeof *r);
                if (r == NULL) {
                    b->stray++;
                    return;
                }
                b->rec = r;
                b->caprec = cap;
            }
            b->rec[b->nrec++] =
                (struct bench_ws__rec){(uint64_t)(score - BENCH_WS__NOTIFY_BASE), now};
        } else {
            b->stray++;
        }
    } else if (bench_ws__is(p, n, "subscribed")) {
        b->subscribed++;
    } else if (bench_ws__is(p, n, "error")) {
        if (b->error_events++ == 0) {
            fprintf(stderr, "bench ws: first error event: %.*s\n", (int)(n > 200 ? 200 : n), p);
        }
    }
}

static void bench_ws__closed(void *data, unsigned conn, int opened, int code, const char *why)
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

static void bench_ws__writer(void *arg)
{
    struct bench_ws *b = arg;
    b->writer_rv = httpload_run(&b->wspec, b->wres);
    uv_async_send(&b->wake);
}

/* Write the request for body @j (stolen) into @buf. */
static size_t bench_ws__request(struct bench_ws *b, json_t *j, char *buf, size_t cap)
{
    size_t n = j ? json_dumpb(j, NULL, 0, JSON_COMPACT) : 0;
    size_t h =
        n ? httpload_head(buf, cap, "POST", b->path, b->site.addr, b->site.api_key, 1, n) : 0;
    if (h == 0 || h + n > cap || json_dumpb(j, buf + h, cap - h, JSON_COMPACT) != n) {
        json_decref(j);
        return 0;
    }
    json_decref(j);
    return h + n;
}

static size_t bench_ws__make_notify(void *data, unsigned conn, uint64_t seq, char *buf, size_t cap)
{
    struct bench_ws *b = data;
    char player[32], key[64];
    (void)conn;
    if (seq >= b->ack_cap) {
        return 0;
    }
    bench_ws__player(b, seq % b->notify_players, player, sizeof player);
    snprintf(key, sizeof key, "kw%sN%llu", b->site.run, (unsigned long long)seq);
    return bench_ws__request(
        b,
        json_pack("{s:s,s:I,s:s}", "player_id", player, "score",
                  (json_int_t)(BENCH_WS__NOTIFY_BASE + (long long)seq), "idempotency_key", key),
        buf, cap);
}

static void bench_ws__done_notify(void *data, unsigned conn, uint64_t seq, int status,
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

static size_t bench_ws__make_fan(void *data, unsigned conn, uint64_t seq, char *buf, size_t cap)
{
    struct bench_ws *b = data;
    char key[64];
    (void)conn;
    if (seq >= BENCH_WS__FAN_BATCHES) {
        return 0;
    }
    json_t *a = json_array();
    for (unsigned i = 0; a && i < BENCH_WS__BATCH; i++) {
        long long k = (long long)seq * BENCH_WS__BATCH + i;
        snprintf(key, sizeof key, "kw%sF%lld", b->site.run, k);
        if (json_array_append_new(
                a, json_pack("{s:s,s:s,s:s,s:I,s:s}", "type", "score", "board_id", b->site.board,
                             "player_id", b->hot, "score", (json_int_t)(BENCH_WS__FAN_BASE + k),
                             "idempotency_key", key)) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return bench_ws__request(b, a, buf, cap);
}

static int bench_ws__writer_start(struct bench_ws *b, unsigned conns, double seconds,
                                  httpload_make_cb make, httpload_done_cb done)
{
    memset(b->wres, 0, sizeof *b->wres);
    b->wspec = (struct httpload_spec){b->site.addr, conns, seconds, make, done, b};
    b->writer_done = 0;
    return uv_thread_create(&b->thread, bench_ws__writer, b) == 0 ? 0 : LR_ENOMEM;
}

static int bench_ws__writer_ended(struct bench_ws *b)
{
    return b->writer_done;
}

/* ---- phases -------------------------------------------------------------------------------- */

static int bench_ws__all_subscribed(struct bench_ws *b)
{
    struct wsload_stats st;
    wsload_stats_get(b->pool, &st);
    return st.opening == 0 && st.started == b->subs && b->subscribed >= st.open;
}

static int bench_ws__phase_subscribe(struct bench_ws *b)
{
    struct wsload_stats st;
    double t0 = bench_http__now();
    b->phase = BENCH_WS__SUBSCRIBE;
    wsload_grow(b->pool, b->subs);
    bench_ws__run_until(b, bench_ws__all_subscribed, 120, "subscribe");
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

static int bench_ws__phase_notify(struct bench_ws *b)
{
    struct wsload_stats st;
    int rv;
    b->phase = BENCH_WS__NOTIFY;
    b->ack_cap = (size_t)(b->seconds * 20000) + 1000;
    b->ack_ns = calloc(b->ack_cap, sizeof *b->ack_ns);
    if (b->ack_ns == NULL) {
        return LR_ENOMEM;
    }
    snprintf(b->path, sizeof b->path, "/v1/boards/%s/scores", b->site.board);
    fprintf(stderr, "bench ws: notify: %u writers for %.0f s, %u subscribers of %u players\n",
            BENCH_WS__WRITERS, b->seconds, b->subs, b->notify_players);
    rv = bench_ws__writer_start(b, BENCH_WS__WRITERS, b->seconds, bench_ws__make_notify,
                                bench_ws__done_notify);
    if (rv != 0) {
        return rv;
    }
    bench_ws__run_until(b, bench_ws__writer_ended, b->seconds + 60, "notify");
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
    fprintf(stderr,
            "bench ws: notify: %llu writes acknowledged (%.0f/s), %llu receipts of %llu "
            "owed, %llu writes refused or lost\n",
            (unsigned long long)acked, (double)acked / b->wres->seconds, (unsigned long long)got,
            (unsigned long long)expected, (unsigned long long)b->ack_bad);
    bench_http__fig(&b->figs, "ws_notify_p50_ms", httpload_hist_quantile_ms(h, 0.50), 2, "ms");
    bench_http__fig(&b->figs, "ws_notify_p99_ms", httpload_hist_quantile_ms(h, 0.99), 2, "ms");
    bench_http__fig(&b->figs, "ws_notify_writes_per_s", (double)acked / b->wres->seconds, 0,
                    "writes/s");
    if (got < expected || b->ack_bad > 0) {
        printf(
            "errors ws_notify: %llu of %llu notifications received, %llu writes not "
            "acknowledged\n",
            (unsigned long long)got, (unsigned long long)expected, (unsigned long long)b->ack_bad);
        strcat(b->bad, " notify");
    }
    free(h);
    return 0;
}

static int bench_ws__hot_subscribed(struct bench_ws *b)
{
    struct wsload_stats st;
    wsload_stats_get(b->pool, &st);
    return b->subscribed >= 2 * (uint64_t)st.open;
}

static int bench_ws__fan_done(struct bench_ws *b)
{
    struct wsload_stats st;
    wsload_stats_get(b->pool, &st);
    return b->writer_done &&
           b->fan_recv >= (uint64_t)BENCH_WS__FAN_BATCHES * BENCH_WS__BATCH * st.open;
}

static int bench_ws__phase_fan(struct bench_ws *b)
{
    struct wsload_stats st;
    int rv;
    b->phase = BENCH_WS__FAN;
    bench_ws__player(b, b->notify_players, b->hot, sizeof b->hot);
    char topic[64];
    snprintf(topic, sizeof topic, "player:%s", b->hot);
    wsload_stats_get(b->pool, &st);
    /* One "subscribed" a connection came in the first phase; one more for the hot topic. */
    b->subscribed = st.open;
    for (unsigned i = 0; i < st.started; i++) {
        bench_ws__send_json(b->pool, i,
                            json_pack("{s:s,s:[s]}", "op", "subscribe", "topics", topic));
    }
    bench_ws__run_until(b, bench_ws__hot_subscribed, 60, "fanout subscribe");
    snprintf(b->path, sizeof b->path, "/v1/events");
    b->fan_t0 = uv_hrtime();
    rv = bench_ws__writer_start(b, 1, 0, bench_ws__make_fan, NULL);
    if (rv != 0) {
        return rv;
    }
    bench_ws__run_until(b, bench_ws__fan_done, 60, "fanout");
    uv_thread_join(&b->thread);
    wsload_stats_get(b->pool, &st);
    uint64_t owed = (uint64_t)BENCH_WS__FAN_BATCHES * BENCH_WS__BATCH * st.open;
    double secs = b->fan_t_last > b->fan_t0 ? (double)(b->fan_t_last - b->fan_t0) / 1e9 : 0;
    fprintf(stderr, "bench ws: fanout: %llu of %llu messages in %.2f s (%llu items refused)\n",
            (unsigned long long)b->fan_recv, (unsigned long long)owed, secs,
            (unsigned long long)(b->wres->answered - b->wres->ok));
    bench_http__fig(&b->figs, "ws_fanout_msgs_per_s", secs > 0 ? (double)b->fan_recv / secs : 0, 0,
                    "messages/s");
    if (b->fan_recv < owed || b->wres->ok < BENCH_WS__FAN_BATCHES) {
        printf(
            "errors ws_fanout: %llu of %llu messages received, %llu of %d batches "
            "acknowledged\n",
            (unsigned long long)b->fan_recv, (unsigned long long)owed,
            (unsigned long long)b->wres->ok, BENCH_WS__FAN_BATCHES);
        strcat(b->bad, " fanout");
    }
    return b->writer_rv;
}

/* One get of a random player's rank on @conn. */
static void bench_ws__query_send(struct bench_ws *b, unsigned conn)
{
    char buf[512];
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    memcpy(buf, b->qtext, b->qlen);
    bench_ws__digits(buf + b->qdigits, b->rng % b->site.players);
    b->q_sent[conn] = uv_hrtime();
    if (wsload_send(b->qpool, conn, buf, b->qlen) != 0) {
        b->q_bad++;
    }
}

static void bench_ws__q_opened(void *data, unsigned conn)
{
    struct bench_ws *b = data;
    if (b->q_on) {
        bench_ws__query_send(b, conn);
    }
}

static void bench_ws__q_message(void *data, unsigned conn, const char *p, size_t n)
{
    struct bench_ws *b = data;
    if (!bench_ws__is(p, n, "response")) {
        return;
    }
    if (b->q_on) {
        httpload_hist_add(&b->q_hist, uv_hrtime() - b->q_sent[conn]);
        if (bench_ws__field(p, n, "\"status\":") == 200) {
            b->q_ok++;
        } else if (b->q_bad++ == 0) {
            snprintf(b->q_first_bad, sizeof b->q_first_bad, "%.*s", (int)(n > 200 ? 200 : n), p);
        }
        bench_ws__query_send(b, conn);
    }
}

static int bench_ws__q_open(struct bench_ws *b)
{
    struct wsload_stats st;
    wsload_stats_get(b->qpool, &st);
    return st.opening == 0 && st.started == b->qconns;
}

static int bench_ws__never(struct bench_ws *b)
{
    (void)b;
    return 0;
}

static int bench_ws__phase_query(struct bench_ws *b)
{
    char path[160];
    struct wsload_stats st;
    b->phase = BENCH_WS__QUERY;
    snprintf(path, sizeof path, "/v1/boards/%s/players/%s0000000", b->site.board, b->site.pprefix);
    json_t *j = json_pack("{s:s,s:i,s:s}", "op", "get", "id", 1, "path", path);
    b->qtext = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    b->q_sent = calloc(b->qconns, sizeof *b->q_sent);
    if (b->qtext == NULL || b->q_sent == NULL) {
        return LR_ENOMEM;
    }
    b->qlen = strlen(b->qtext);
    b->qdigits =
        (size_t)(strstr(b->qtext, path) - b->qtext) + strlen(path) - BENCH_WS__PLAYER_DIGITS;
    wsload_grow(b->qpool, b->qconns);
    bench_ws__run_until(b, bench_ws__q_open, 30, "query connections");
    wsload_stats_get(b->qpool, &st);
    if (st.open == 0) {
        printf("errors ws_query: no connection opened (%s)\n", st.first_error);
        return LR_EUNAVAILABLE;
    }
    fprintf(stderr, "bench ws: query: %u connections for %.0f s\n", st.open, b->seconds);
    b->q_on = 1;
    double t0 = bench_http__now();
    for (unsigned i = 0; i < b->qconns; i++) {
        bench_ws__query_send(b, i);
    }
    bench_ws__run_until(b, bench_ws__never, b->seconds, "query");
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

static int bench_ws__ramped(struct bench_ws *b)
{
    struct wsload_stats st;
    wsload_stats_get(b->pool, &st);
    return st.opening == 0 && st.started == b->conns && b->subscribed >= st.opened;
}

static int bench_ws__phase_hold(struct bench_ws *b)
{
    struct wsload_stats before, st;
    b->phase = BENCH_WS__HOLD;
    wsload_stats_get(b->pool, &before);
    double rss0 = bench_ws__rss_bytes(b->site.dev);
    double t0 = bench_http__now();
    /* Each new subscriber's "subscribed" counts once; the first ones are all in. */
    b->subscribed = before.opened;
    fprintf(stderr, "bench ws: hold: growing to %u connections\n", b->conns);
    wsload_grow(b->pool, b->conns);
    bench_ws__run_until(b, bench_ws__ramped, 600, "hold");
    double ramp_s = bench_http__now() - t0;
    bench_ws__run_until(b, bench_ws__never, BENCH_WS__HOLD_S, "hold");
    wsload_stats_get(b->pool, &st);
    double rss1 = bench_ws__rss_bytes(b->site.dev);
    fprintf(stderr,
            "bench ws: hold: %u open after %.1f s of ramp and %.0f s held (%llu failed, "
            "%llu closed%s%s)\n",
            st.open, ramp_s, BENCH_WS__HOLD_S, (unsigned long long)st.failed,
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

static void bench_ws__pool_freed(void *data)
{
    struct bench_ws *b = data;
    b->freed++;
}

static int bench_ws__loop_up(struct bench_ws *b)
{
    struct wsload_spec spec = {
        .addr = b->site.addr,
        .target = "/v1/ws",
        .cap = b->conns,
        .first_source = BENCH_WS__FIRST_SOURCE,
        .per_source = BENCH_WS__PER_SOURCE,
        .cbs = {bench_ws__sub_opened, bench_ws__sub_message, bench_ws__closed},
        .data = b,
    };
    int rv = uv_loop_init(&b->loop);
    if (rv != 0) {
        return LR_ENOMEM;
    }
    uv_timer_init(&b->loop, &b->tick);
    uv_timer_start(&b->tick, bench_ws__tick, 50, 50);
    uv_async_init(&b->loop, &b->wake, bench_ws__woken);
    b->wake.data = b;
    rv = wsload_new(&b->loop, &spec, &b->pool);
    if (rv == 0) {
        spec.cap = b->qconns;
        spec.first_source = 0;
        spec.cbs = (struct wsload_cbs){bench_ws__q_opened, bench_ws__q_message, bench_ws__closed};
        rv = wsload_new(&b->loop, &spec, &b->qpool);
    }
    return rv;
}

static void bench_ws__loop_down(struct bench_ws *b)
{
    unsigned want = 0;
    if (b->pool) {
        wsload_free(b->pool, bench_ws__pool_freed, b);
        want++;
    }
    if (b->qpool) {
        wsload_free(b->qpool, bench_ws__pool_freed, b);
        want++;
    }
    uv_close((uv_handle_t *)&b->tick, NULL);
    uv_close((uv_handle_t *)&b->wake, NULL);
    while (b->freed < (int)want || uv_loop_alive(&b->loop)) {
        uv_run(&b->loop, UV_RUN_ONCE);
    }
    uv_loop_close(&b->loop);
}

/* ---- the run ----------------------------------------------------------------------------- */

int bench_ws__run(struct bench_ws *b)
{
    static int (*const phases[])(struct bench_ws *) = {bench_ws__phase_subscribe,
                                                       bench_ws__phase_notify, bench_ws__phase_fan,
                                                       bench_ws__phase_query, bench_ws__phase_hold};
    int rv = bench_ws__loop_up(b);
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
    bench_ws__loop_down(b);
    return rv;
}
