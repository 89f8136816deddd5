/* fuzz/fuzz_upstream.c — a stand-in for router/upstream.c in the harnesses that drive the
 * router (fuzz_http, fuzz_ws): every function of upstream.h, with no socket.
 *
 * A call is queued on its upstream and answered only when the harness says so
 * (fuzz_upstream_answer): that keeps upstream.h's contract (the callback fires exactly once,
 * never from inside the call) and stops each request where it would reach a replica. Nothing
 * here connects, so evstream's and rmodel's timers must not run: the harnesses never run the
 * loop. */
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_router.h"
#include "lib/err.h"
#include "router/upstream.h"

struct upstream_req {
    upstream_cb cb;
    void *data;
    struct upstream_req *next;
};

struct upstream {
    struct upstream *prev, *next; /* fuzz_upstream__live */
    char region[65];
    unsigned n;
    char rpc[UPSTREAM_MAX_REPLICAS][64];
    const struct peerauth_key *key;
    struct upstream_stats st;
    struct upstream_req *head, **tail; /* calls waiting for fuzz_upstream_answer, in order */
};

/* Every stand-in not yet closed: the router's, and the links a route opens on its own (a
 * region put's probe), which fuzz_upstream_answer_all answers as well. Process-wide, as the
 * harness's router is (fuzz_router). */
static struct upstream *fuzz_upstream__live;

int upstream_new(uv_loop_t *loop, const char *region, const char *const *rpc, unsigned n,
                 struct upstream **out)
{
    (void)loop;
    struct upstream *u = calloc(1, sizeof *u);
    if (u == NULL) {
        return LR_ENOMEM;
    }
    snprintf(u->region, sizeof u->region, "%s", region);
    for (unsigned i = 0; i < n && i < UPSTREAM_MAX_REPLICAS; i++) {
        snprintf(u->rpc[u->n++], sizeof u->rpc[0], "%s", rpc[i]);
    }
    u->tail = &u->head;
    u->next = fuzz_upstream__live;
    if (u->next) {
        u->next->prev = u;
    }
    fuzz_upstream__live = u;
    *out = u;
    return 0;
}

static int fuzz_upstream__queue(struct upstream *u, upstream_cb cb, void *data)
{
    struct upstream_req *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return LR_ENOMEM;
    }
    c->cb = cb;
    c->data = data;
    *u->tail = c;
    u->tail = &c->next;
    return 0;
}

int upstream_call(struct upstream *u, int op, int need_leader, const char *args, size_t len,
                  unsigned timeout_ms, upstream_cb cb, void *data)
{
    return upstream_call_replica(u, -1, op, need_leader, args, len, timeout_ms, cb, data);
}

int upstream_call_replica(struct upstream *u, int replica, int op, int need_leader,
                          const char *args, size_t len, unsigned timeout_ms, upstream_cb cb,
                          void *data)
{
    (void)op, (void)need_leader, (void)args, (void)len, (void)timeout_ms;
    if (replica < -1 || replica >= (int)u->n) {
        return LR_EINVAL;
    }
    return fuzz_upstream__queue(u, cb, data);
}

int upstream_submit(struct upstream *u, const char *args, size_t len, unsigned timeout_ms,
                    upstream_cb cb, void *data)
{
    (void)timeout_ms;
    if (args == NULL || len == 0) {
        return LR_EINVAL;
    }
    u->st.submits++;
    return fuzz_upstream__queue(u, cb, data);
}

void upstream_set_key(struct upstream *u, const struct peerauth_key *key, struct logger *log)
{
    (void)log;
    u->key = key;
}

const struct peerauth_key *upstream_key(const struct upstream *u)
{
    return u->key;
}

void upstream_auth_failed(struct upstream *u, unsigned i, const char *why)
{
    (void)i, (void)why;
    u->st.auth_failures++;
}

void upstream_stats_get(const struct upstream *u, struct upstream_stats *out)
{
    *out = u->st;
}

unsigned upstream_replicas(const struct upstream *u)
{
    return u->n;
}

const char *upstream_address(const struct upstream *u, unsigned i)
{
    return i < u->n ? u->rpc[i] : NULL;
}

int upstream_gone(const struct upstream *u, unsigned i)
{
    (void)u, (void)i;
    return 0; /* membership is learnt from status polls, which never run here */
}

const struct sockaddr *upstream_sockaddr(const struct upstream *u, unsigned i)
{
    (void)u, (void)i;
    return NULL; /* evstream connects only from its timer, which never runs here */
}

int upstream_leader(const struct upstream *u)
{
    (void)u;
    return -1;
}

const char *upstream_region(const struct upstream *u)
{
    return u->region;
}

/* Run the calls of the list @c (taken off their upstreams) with @code and @payload. */
static unsigned fuzz_upstream__run(struct upstream_req *c, int code, const msgpack_object *payload)
{
    unsigned n = 0;
    while (c) {
        struct upstream_req *next = c->next;
        c->cb(c->data, code, payload);
        free(c);
        c = next;
        n++;
    }
    return n;
}

void upstream_close(struct upstream *u, void (*done)(void *data), void *data)
{
    struct upstream_req *c = u->head;
    if (u->prev) {
        u->prev->next = u->next;
    } else {
        fuzz_upstream__live = u->next;
    }
    if (u->next) {
        u->next->prev = u->prev;
    }
    free(u);
    fuzz_upstream__run(c, LR_EUNAVAILABLE, NULL);
    if (done) {
        done(data);
    }
}

unsigned fuzz_upstream_answer_all(int code, const msgpack_object *payload)
{
    /* Every queue taken off first: a callback may queue the next step's calls (answered on a
     * later round) or close an upstream (its own, a probe's), which then holds nothing. */
    struct upstream_req *all = NULL, **tail = &all;
    for (struct upstream *u = fuzz_upstream__live; u; u = u->next) {
        if (u->head) {
            *tail = u->head;
            tail = u->tail;
            u->head = NULL;
            u->tail = &u->head;
        }
    }
    return fuzz_upstream__run(all, code, payload);
}
