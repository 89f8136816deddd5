/* bench/bench_ws.c — `laurel bench ws`: the router's WebSocket gateway under load.
 *
 * The cluster and its seed come from `laurel bench http` (bench_http__site_up: `laurel dev`
 * as a child, one board, players with scores). The clients are wsload.h connections on this
 * process's loop, opened from 127.0.0.2, .3, ... (BENCH_WS__PER_SOURCE each) so that more of
 * them fit than one source address has ephemeral ports. Writes go over HTTP from a second
 * thread (httpload.h on its own loop), so that neither side waits for the other. Phases, in
 * order:

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
 * the clients and the peer share the machine's cores. Nothing here asserts a time.
 *
 * This file is the command: options, the descriptor limit, the cluster up and down, the peer
 * and the targets. The loop, the clients, the writer thread and the phases are in
 * bench_ws_phases.c. */
#include "bench_int.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../lib/err.h"
#include "../lib/sys.h"
#include "bench_http_int.h"
#include "bench_ws_int.h"

#define BENCH_WS__SUBS_PER_PLAYER 10

/* ---- the command ------------------------------------------------------------------------- */

static void bench_ws__usage(FILE *f)
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

static int bench_ws__parse(struct bench_ws *b, int argc, char **argv)
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
        case 'h': bench_ws__usage(stdout); return 0;
        default: bench_ws__usage(stderr); return 2;
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
    if (b->site.nregions == 0 || b->site.replicas < 1 || b->subs < BENCH_WS__SUBS_PER_PLAYER ||
        b->conns < b->subs || b->conns > 254u * BENCH_WS__PER_SOURCE || b->qconns < 1 ||
        b->qconns > 10000 || players < 100 || players > 9999900 ||
        (unsigned long)players <= b->subs / BENCH_WS__SUBS_PER_PLAYER) {
        fprintf(stderr,
                "laurel bench ws: bad --regions, --replicas, --conns (>= subscribers), "
                "--subscribers (>= 10), --query-conns or --players (> subscribers/10)\n");
        return 2;
    }
    b->site.players =
        (unsigned)((players + BENCH_WS__BATCH - 1) / BENCH_WS__BATCH * BENCH_WS__BATCH);
    b->site.quick = b->quick;
    b->notify_players = b->subs / BENCH_WS__SUBS_PER_PLAYER;
    return -1;
}

/* Room for every connection in this process; fewer connections when the limit is lower. */
static void bench_ws__fit_conns(struct bench_ws *b)
{
    unsigned long spare = 1024 + b->qconns;
    unsigned long have = sys_raise_nofile((unsigned long)b->conns + spare);
    if (have < (unsigned long)b->conns + spare) {
        unsigned fit = have > spare + b->subs ? (unsigned)(have - spare) : b->subs;
        printf(
            "bench ws: --conns %u does not fit this process's descriptor limit (%lu; a "
            "higher hard limit needs CAP_SYS_RESOURCE): holding %u\n",
            b->conns, have, fit);
        b->conns = fit;
    }
}

int bench_ws_main(int argc, char **argv)
{
    struct bench_ws *b = calloc(1, sizeof *b);
    int rv;
    if (b == NULL) {
        return 1;
    }
    rv = bench_ws__parse(b, argc, argv);
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
    bench_ws__fit_conns(b);
    rv = bench_http__site_up(&b->site);
    printf(
        "bench ws: laurel dev, %u region(s) x %u replica(s), at %s, %u players, board %s; "
        "%u subscribers, %u connections held, %u query connections, %.0f s phases\n",
        b->site.nregions, b->site.replicas, b->site.addr, b->site.players, b->site.board, b->subs,
        b->conns, b->qconns, b->seconds);
    fflush(stdout);
    if (rv == 0) {
        rv = bench_ws__run(b);
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
