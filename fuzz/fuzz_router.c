/* fuzz/fuzz_router.c — the headless router of fuzz_router.h. */
#include "fuzz/fuzz_router.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lib/err.h"
#include "lib/log.h"
#include "router/router.h"
#include "router/router_int.h"

/* What the process's one router needs for its lifetime. Held in main's place by the harness's
 * first input: libFuzzer owns main, so this is the one piece of static state. */
struct fuzz_router__proc {
    uv_loop_t loop;
    struct logger log;
    struct keyset keys;
    struct router *r;
};

struct router *fuzz_router(void)
{
    static struct fuzz_router__proc *p;
    if (p != NULL) {
        return p->r;
    }
    char errmsg[LR_ERRMSG_SIZE];
    static const char *const rpc[] = {"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"};
    struct router_config cfg = {.http = NULL, .nregions = 2, .hold_boards = ""};
    if ((p = calloc(1, sizeof *p)) == NULL || uv_loop_init(&p->loop) != 0) {
        abort();
    }
    log_init(&p->log, stderr, LOG_ERROR, 0, "fuzz");
    p->log.level = LOG_ERROR;
    keyset_init(&p->keys);
    if (keyset_add(&p->keys, KEYSET_ADMIN, FUZZ_ADMIN_KEY, strlen(FUZZ_ADMIN_KEY), "fuzz",
                   errmsg) != 0 ||
        keyset_add(&p->keys, KEYSET_API, FUZZ_API_KEY, strlen(FUZZ_API_KEY), "fuzz", errmsg) != 0) {
        fprintf(stderr, "fuzz_router: %s\n", errmsg);
        abort();
    }
    cfg.log = &p->log;
    cfg.keys = &p->keys;
    for (unsigned i = 0; i < cfg.nregions; i++) {
        snprintf(cfg.regions[i].id, sizeof cfg.regions[i].id, "r%u", i + 1);
        memcpy(cfg.regions[i].rpc, rpc, sizeof rpc);
        cfg.regions[i].n = 3;
    }
    snprintf(cfg.meta.id, sizeof cfg.meta.id, "meta");
    memcpy(cfg.meta.rpc, rpc, sizeof rpc);
    cfg.meta.n = 3;
    for (unsigned k = 0; k < RLIMIT_N; k++) {
        cfg.limits.rate[k] = RLIMIT_UNLIMITED;
    }
    if (router_start(&p->loop, &cfg, &p->r, errmsg) != 0) {
        fprintf(stderr, "fuzz_router: %s\n", errmsg);
        abort();
    }
    return p->r;
}

static void fuzz_router__stop_timer(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (h->type == UV_TIMER && !uv_is_closing(h)) {
        uv_timer_stop((uv_timer_t *)h);
    }
}

unsigned fuzz_router_settle(struct router *r, int code, const msgpack_object *payload,
                            unsigned rounds)
{
    unsigned total = 0;
    for (unsigned round = 0; round < rounds; round++) {
        unsigned n = fuzz_upstream_answer_all(code, payload);
        if (n == 0) {
            break;
        }
        total += n;
    }
    uv_walk(r->loop, fuzz_router__stop_timer, NULL);
    uv_run(r->loop, UV_RUN_NOWAIT);
    return total;
}
