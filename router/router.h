/* router/router.h — a router: the public HTTP API of ../shared/API.md over the regions'
 * replicas. Stateless apart from caches: any number may run side by side. */
#ifndef LAUREL_ROUTER_H
#define LAUREL_ROUTER_H

#include <stdint.h>
#include <uv.h>

#include "keyset.h"
#include "rlimit.h"
#include "upstream.h"

#define ROUTER_MAX_REGIONS 16
/* About 100 MB of router memory at typical id lengths. */
#define ROUTER_DEFAULT_PLAYER_CACHE 1000000

struct logger;

struct router_region {
    char id[65];
    const char *rpc[UPSTREAM_MAX_REPLICAS]; /* borrowed until router_start returns */
    unsigned n;
};

struct router_config {
    /* host:port; NULL: no listener, a headless router reached only through router__request
     * (router_int.h), as the fuzz harnesses drive it. */
    const char *http;
    /* HTTPS and WSS instead of HTTP and WS on @http (http.h's struct http_tls): both PEM
     * paths, or both NULL for plain HTTP. Borrowed until router_start returns. */
    const char *tls_cert, *tls_key;
    /* Where the router logs (lib/log.h; a router logs as node 0 with its own region label).
     * Required; borrowed until router_stop's @done fires, or router_start fails. */
    struct logger *log;
    struct router_region regions[ROUTER_MAX_REGIONS];
    unsigned nregions;
    /* The metadata group (docs/global-state.md): its id is "meta"; meta.n == 0 means the
     * cluster has none, and player placement falls back to asking every region. */
    struct router_region meta;
    /* The admin and api keys (keyset.h), copied; NULL or empty: every endpoint that needs a
     * key answers 401. */
    const struct keyset *keys;
    unsigned timeout_ms; /* per upstream call; default 5000 */
    /* The cluster key every replica connection proves (proto/peerauth.h), or NULL: none,
     * allowed only when every replica address is loopback. Copied. */
    const struct peerauth_key *cluster_key;
    /* Players whose region the router remembers; 0 = ROUTER_DEFAULT_PLAYER_CACHE. */
    unsigned player_cache;
    /* Boards the read model holds (rmodel.h, docs/consistency.md): "*" or NULL every board
     * read (up to RMODEL_BOARDS_MAX), "" none, else a comma-separated list of ids. */
    const char *hold_boards;
    /* GET /v1/ws (ws.h; 0 = its default) */
    unsigned ws_max_conns, ws_max_per_ip, ws_ping_ms, ws_queue_msgs;
    unsigned ws_max_gets, ws_max_resumes; /* per connection (ws.h; 0 = its default) */
    /* Plain HTTP connections at most, in all and per client address (http.h; 0 = its
     * default). */
    unsigned http_max_conns, http_max_per_ip;
    /* Request rate limits per API key and per client address (rlimit.h, docs/security.md). */
    struct rlimit_config limits;
    /* Log one request in @log_requests (method, route, status, latency), and every 5xx; 0:
     * only the 5xx. `laurel router` defaults to ROUTER_DEFAULT_LOG_REQUESTS. */
    unsigned log_requests;
    /* The web origins whose pages may read the answers (cors.h, docs/api.md "CORS"): NULL,
     * "" or "*" every origin, else a comma-separated list. Copied. */
    const char *cors_origins;
};

#define ROUTER_DEFAULT_LOG_REQUESTS 100

struct router; /* Opaque. */

/**
 * Start serving on @loop. @cfg is copied (its logger and region addresses are borrowed as it
 * says). @return 0 and *@out, or LR_E* with @errmsg: LR_EINVAL without a logger or with a
 * malformed cors_origins, or the error
 * of an upstream, the gateway, the WebSocket endpoint or the listener.
 */
int router_start(uv_loop_t *loop, const struct router_config *cfg, struct router **out,
                 char *errmsg);

/** Stop; @done fires once everything has closed (run the loop). */
void router_stop(struct router *r, void (*done)(void *data), void *data);

#endif
