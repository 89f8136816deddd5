/* tests/lib/tdev.h — a whole `laurel dev` cluster for black-box tests of the public API: one
 * `laurel dev` process (the router in its foreground, one `laurel node` per replica) in a
 * temporary directory on a free port, with known keys, and its dev.json read back so chaos
 * tests can find and kill replicas. Requests go through httpc; helpers check API.md's error
 * convention. */
#ifndef LAUREL_TDEV_H
#define LAUREL_TDEV_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/client.h"
#include "tests/lib/httpc.h"

#define TDEV_ADMIN "tdev-admin-key-0001"
#define TDEV_API "tdev-api-key-0002"
#define TDEV_MAX_NODES 15

struct tdev_node {
    char region[65];  /* "meta" for a replica of the metadata group */
    unsigned replica; /* 1-based, as in dev.json and /v1/cluster */
    pid_t pid;        /* a child of the dev process, not of the test */
    char rpc[32], raft[32];
    int killed;
};

struct tdev {
    char dir[512];
    char http[32];
    const char *bin;
    pid_t pid; /* the `laurel dev` process */
    unsigned nnodes;
    struct tdev_node node[TDEV_MAX_NODES];
    struct peerauth_key key; /* "cluster_key" of dev's keys.json: replicas require it */
};

/** Open an RPC connection to replica @i (index in d->node) and prove the cluster key, as
 * `laurel ctl` does. @return 0, or -1; close @cl with
 * client_close either way. */
int tdev_connect(const struct tdev *d, unsigned i, struct client *cl, int timeout_ms);

/**
 * Start `laurel dev --regions @regions --replicas @replicas` with TDEV_ADMIN and TDEV_API as
 * keys (written to DIR/keys.json first, never on a command line), wait until /readyz answers 200
 * (at most @ready_ms) and read dev.json.
 * @return 0, or -1 (with a line on stderr; whatever started is stopped).
 */
int tdev_start(struct tdev *d, const char *regions, unsigned replicas, int ready_ms);

/** A second `laurel router` process, started by the test on the same replicas. */
struct tdev_router {
    pid_t pid;
    char http[32];
};

/**
 * Start a router on a free port over every region and the metadata group dev.json lists, with
 * the dev keys (--keys-file DIR/keys.json), and wait for its /readyz (10 s). @return 0, or -1
 * (nothing left running).
 */
int tdev_router_start(struct tdev *d, struct tdev_router *rt);

/** tdev_router_start with more `laurel router` flags: @extra, a NULL-terminated list (NULL:
 * none; at most 16), borrowed for the call. */
int tdev_router_start_with(struct tdev *d, struct tdev_router *rt, const char *const *extra);

/** Start @rt again, stopped by tdev_router_stop, on the address it had (its clients reconnect
 * there), with @extra as in tdev_router_start_with. @return 0, or -1 (nothing left running). */
int tdev_router_restart(struct tdev *d, struct tdev_router *rt, const char *const *extra);

/** SIGTERM the router and reap it. */
void tdev_router_stop(struct tdev_router *rt);

/** SIGTERM the dev process, wait for it (SIGKILL after 10 s), remove the directory (kept, and
 * named on stderr, when $LAUREL_KEEP is set). */
void tdev_stop(struct tdev *d);

/**
 * @method @path with @auth ("" for none) and @body (NULL for none); a refused connection is
 * retried for up to 5 s. @return the HTTP status with *@r filled (httpc_free it), or -1 (then
 * *@r is empty; also at once when the dev process has died, whose output then goes to
 * stderr).
 */
int tdev_req(struct tdev *d, const char *method, const char *path, const char *auth,
             const char *body, struct httpc_resp *r);

/** tdev_req with a JSON body (@body is consumed, may be NULL). */
int tdev_reqj(struct tdev *d, const char *method, const char *path, const char *auth, json_t *body,
              struct httpc_resp *r);

/** tdev_req that only keeps the status. */
int tdev_status(struct tdev *d, const char *method, const char *path, const char *auth,
                const char *body);

/**
 * Check that @r is an error answer in API.md's form: status @status and body
 * {"error":{"code":@code,"message":<non-empty string>}}. Fails the test (cmocka) otherwise,
 * naming @what.
 */
void tdev_assert_error(const struct httpc_resp *r, int status, const char *code, const char *what);

/** Index in d->node of replica @replica of @region, or -1. */
int tdev_node_index(const struct tdev *d, const char *region, unsigned replica);

/**
 * The replica that leads @region according to the replicas themselves (their status RPC),
 * skipping killed ones, within @timeout_ms. @return its index in d->node, or -1.
 */
int tdev_leader(struct tdev *d, const char *region, int timeout_ms);

/** SIGKILL node @i (kill -9; the dev process reaps it). */
void tdev_kill9(struct tdev *d, unsigned i);

/** Does @s look like API.md's time: "YYYY-MM-DDTHH:MM:SS.mmmZ"? */
int tdev_is_time(const char *s);

/** json_object_get chains: the integer, string or real at @key of @o (0, NULL, NaN if absent). */
int64_t tdev_int(const json_t *o, const char *key);
const char *tdev_str(const json_t *o, const char *key);
double tdev_num(const json_t *o, const char *key);

void tdev_sleep_ms(int ms);

#endif
