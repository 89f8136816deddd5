/* bench/bench_ws_int.h — what the two files of `laurel bench ws` share: bench_ws.c (the
 * command) fills a struct bench_ws from its options and starts the cluster, bench_ws_phases.c
 * runs the phases on it. */
#ifndef LAUREL_BENCH_WS_INT_H
#define LAUREL_BENCH_WS_INT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "bench_http_int.h"
#include "httpload.h"
#include "../lib/wsload.h"

/* Connections a loopback source address opens (127.0.0.2, .3, ...): fewer than its ephemeral
 * ports. */
#define BENCH_WS__PER_SOURCE 20000
/* Score items a fan-out POST /v1/events carries, and the multiple the player count is
 * rounded up to. */
#define BENCH_WS__BATCH 100

/* A score.updated of the notify phase: the write it answers and when it came (uv_hrtime). */
struct bench_ws__rec {
    uint64_t seq, t;
};

/* One run of `laurel bench ws`: its options (bench_ws.c), then the loop's state and what the
 * phases counted (bench_ws_phases.c). */
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
    struct bench_ws__rec *rec;
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

/**
 * Run the phases (subscribe, notify, fanout, query, hold) on @b, whose options are set and
 * whose site is up, printing their figures and `errors` lines, then close every client and
 * the loop. The buffers the phases allocated in @b (ack_ns, rec, qtext, q_sent) stay for the
 * caller to free, as does @b->wres (allocated by the caller).
 * @return 0 when every phase ran, else the LR_E* code of the phase that could not.
 */
int bench_ws__run(struct bench_ws *b);

#endif
