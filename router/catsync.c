/* router/catsync.c — see catsync.h. One pass over a region is a chain of three calls:
 * status (the region's mark) → meta's catalog_since(mark) → submit(page + mark), repeated
 * while meta has more. */
#include "catsync.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/err.h"
#include "../lib/log.h"
#include "../meta/meta.h"
#include "../proto/proto.h"
#include "../shard/cmd.h"
#include "router.h"

struct catsync__region {
    struct catsync *cs;
    unsigned i;
    int busy;      /* a pass is under way */
    int again;     /* kicked during the pass: run another when it ends */
    uint64_t mark; /* the region's mark, as last read or set */
};

struct catsync {
    uv_loop_t *loop;
    struct upstream *meta;
    struct upstream *up[ROUTER_MAX_REGIONS];
    struct catsync__region reg[ROUTER_MAX_REGIONS];
    unsigned n;
    unsigned timeout_ms;
    struct logger *log;
    uv_timer_t timer;
    unsigned inflight; /* calls whose callback has not run */
    int closing, timer_closed;
    void (*done)(void *data);
    void *done_data;
    uint64_t passes, changes;
    msgpack_sbuffer args;
};

static void catsync__pass(struct catsync__region *g);

static void catsync__maybe_done(struct catsync *cs)
{
    if (!cs->closing || !cs->timer_closed || cs->inflight > 0) {
        return;
    }
    void (*done)(void *) = cs->done;
    void *data = cs->done_data;
    msgpack_sbuffer_destroy(&cs->args);
    free(cs);
    if (done) {
        done(data);
    }
}

/* The pass over @g is over (done or failed): run the next one if kicked meanwhile. */
static void catsync__end(struct catsync__region *g)
{
    struct catsync *cs = g->cs;
    g->busy = 0;
    cs->passes++;
    if (g->again && !cs->closing) {
        g->again = 0;
        catsync__pass(g);
    }
}

/* A call of the pass; its callback owns one inflight count. */
static int catsync__call(struct catsync__region *g, struct upstream *u, int op, upstream_cb cb)
{
    struct catsync *cs = g->cs;
    int rv = upstream_call(u, op, 1, cs->args.size ? cs->args.data : NULL, cs->args.size,
                           cs->timeout_ms, cb, g);
    if (rv == 0) {
        cs->inflight++;
    }
    return rv;
}

/* ---- step 3: the page and its mark, one submit --------------------------------------------- */

static void catsync__changes(struct catsync__region *g);

static void catsync__submitted(void *data, int code, const msgpack_object *payload)
{
    struct catsync__region *g = data;
    struct catsync *cs = g->cs;
    (void)payload;
    cs->inflight--;
    if (cs->closing) {
        catsync__maybe_done(cs);
        return;
    }
    if (code != 0) {
        LOG(cs->log, LOG_WARN, "catalog carrier: region %s: submit: %s; retrying next pass",
            upstream_region(cs->up[g->i]), err_message(code));
        catsync__end(g);
        return;
    }
    catsync__changes(g); /* meta may have more */
}

/* Append change @ch ({"kind","id","version","body"}) to the submit being built, its version
 * stamped into the shard command its body holds (with @pk NULL: only judge it). @return 1 if
 * appended, 0 if skipped (not a catalog put: logged when appending), -1 for a malformed
 * change. */
static int catsync__append(struct catsync *cs, msgpack_packer *pk, const msgpack_object *ch,
                           int64_t *version)
{
    const msgpack_object *v = proto_map_get(ch, "version"), *body = proto_map_get(ch, "body");
    char errmsg[LR_ERRMSG_SIZE];
    msgpack_unpacked up;
    struct cmd c;
    if (v == NULL || proto_obj_i64(v, version) != 0 || *version <= 0 || body == NULL ||
        (body->type != MSGPACK_OBJECT_BIN && body->type != MSGPACK_OBJECT_STR)) {
        return -1;
    }
    const char *p = body->type == MSGPACK_OBJECT_BIN ? body->via.bin.ptr : body->via.str.ptr;
    size_t len = body->type == MSGPACK_OBJECT_BIN ? body->via.bin.size : body->via.str.size;
    msgpack_unpacked_init(&up);
    int64_t *cv = NULL;
    int ok = proto_unpack(p, len, &up) == 0 && cmd_decode(&up.data, &c, errmsg) == 0 &&
             (cv = cmd_catalog_version(&c)) != NULL; /* only catalog puts are carried */
    if (ok && pk) {
        *cv = *version;
        ok = cmd_encode(pk, &c) == 0;
    }
    msgpack_unpacked_destroy(&up);
    if (!ok && pk) {
        /* A router wrote something that is not a catalog put: every region would refuse it
         * alike, so it is passed over, and the mark goes past it. */
        LOG(cs->log, LOG_WARN, "catalog carrier: version %lld is not a catalog put; skipped",
            (long long)*version);
    }
    return ok;
}

/* ---- step 2: meta's changes after the mark ----------------------------------------------------
 */

static void catsync__got_changes(void *data, int code, const msgpack_object *payload)
{
    struct catsync__region *g = data;
    struct catsync *cs = g->cs;
    const msgpack_object *chs = payload ? proto_map_get(payload, "changes") : NULL;
    msgpack_packer pk;
    int64_t last = 0, version;
    uint32_t n = 0;
    cs->inflight--;
    if (cs->closing) {
        catsync__maybe_done(cs);
        return;
    }
    if (code != 0 || chs == NULL || chs->type != MSGPACK_OBJECT_ARRAY) {
        LOG(cs->log, code == LR_EUNAVAILABLE ? LOG_DEBUG : LOG_WARN,
            "catalog carrier: meta: %s; retrying next pass",
            code ? err_message(code) : "malformed answer");
        catsync__end(g);
        return;
    }
    if (chs->via.array.size == 0) {
        catsync__end(g); /* the region has every change meta has */
        return;
    }
    /* The whole page and the mark of its last version, as one submit. */
    msgpack_sbuffer_clear(&cs->args);
    msgpack_packer_init(&pk, &cs->args, msgpack_sbuffer_write);
    uint32_t count = 1;
    for (uint32_t i = 0; i < chs->via.array.size; i++) {
        count += catsync__append(cs, NULL, &chs->via.array.ptr[i], &version) == 1;
    }
    msgpack_pack_array(&pk, count);
    for (uint32_t i = 0; i < chs->via.array.size; i++) {
        int rv = catsync__append(cs, &pk, &chs->via.array.ptr[i], &version);
        if (rv < 0) {
            LOG(cs->log, LOG_WARN, "catalog carrier: meta sent a malformed change");
            msgpack_sbuffer_clear(&cs->args);
            catsync__end(g);
            return;
        }
        n += (uint32_t)rv;
        last = version > last ? version : last;
    }
    struct cmd mark;
    memset(&mark, 0, sizeof mark);
    mark.type = CMD_CATALOG_MARK;
    mark.u.catalog_mark.through = last;
    cmd_encode(&pk, &mark);
    if (catsync__call(g, cs->up[g->i], PROTO_OP_SUBMIT, catsync__submitted) != 0) {
        catsync__end(g);
        return;
    }
    g->mark = (uint64_t)last;
    cs->changes += n;
}

static void catsync__changes(struct catsync__region *g)
{
    struct catsync *cs = g->cs;
    struct meta_query q;
    msgpack_packer pk;
    memset(&q, 0, sizeof q);
    q.type = META_Q_CATALOG_SINCE;
    q.after = g->mark;
    q.limit = CATSYNC_PAGE;
    msgpack_sbuffer_clear(&cs->args);
    msgpack_packer_init(&pk, &cs->args, msgpack_sbuffer_write);
    meta_query_encode(&pk, &q, 0);
    if (catsync__call(g, cs->meta, PROTO_OP_QUERY, catsync__got_changes) != 0) {
        catsync__end(g);
    }
}

/* ---- step 1: the region's mark --------------------------------------------------------------- */

static void catsync__got_status(void *data, int code, const msgpack_object *payload)
{
    struct catsync__region *g = data;
    struct catsync *cs = g->cs;
    const msgpack_object *m = payload ? proto_map_get(payload, "catalog_through") : NULL;
    int64_t mark = 0;
    cs->inflight--;
    if (cs->closing) {
        catsync__maybe_done(cs);
        return;
    }
    if (code != 0 || m == NULL || proto_obj_i64(m, &mark) != 0 || mark < 0) {
        catsync__end(g); /* the region is down or has no leader: the next pass */
        return;
    }
    g->mark = (uint64_t)mark;
    catsync__changes(g);
}

static void catsync__pass(struct catsync__region *g)
{
    struct catsync *cs = g->cs;
    if (g->busy) {
        g->again = 1;
        return;
    }
    g->busy = 1;
    msgpack_sbuffer_clear(&cs->args);
    if (catsync__call(g, cs->up[g->i], PROTO_OP_STATUS, catsync__got_status) != 0) {
        catsync__end(g);
    }
}

/* ---- lifecycle ---------------------------------------------------------------------------------
 */

void catsync_kick(struct catsync *cs)
{
    for (unsigned i = 0; i < cs->n && !cs->closing; i++) {
        catsync__pass(&cs->reg[i]);
    }
}

static void catsync__tick(uv_timer_t *t)
{
    catsync_kick(t->data);
}

int catsync_new(uv_loop_t *loop, struct upstream *meta, struct upstream *const *up, unsigned n,
                unsigned timeout_ms, struct logger *log, struct catsync **out)
{
    struct catsync *cs = calloc(1, sizeof *cs);
    if (cs == NULL) {
        return LR_ENOMEM;
    }
    cs->loop = loop;
    cs->meta = meta;
    cs->n = n < ROUTER_MAX_REGIONS ? n : ROUTER_MAX_REGIONS;
    cs->timeout_ms = timeout_ms;
    cs->log = log;
    for (unsigned i = 0; i < cs->n; i++) {
        cs->up[i] = up[i];
        cs->reg[i] = (struct catsync__region){cs, i, 0, 0, 0};
    }
    msgpack_sbuffer_init(&cs->args);
    uv_timer_init(loop, &cs->timer);
    cs->timer.data = cs;
    uv_timer_start(&cs->timer, catsync__tick, 0, CATSYNC_PERIOD_MS);
    *out = cs;
    return 0;
}

int catsync_add_region(struct catsync *cs, struct upstream *u)
{
    unsigned i = cs->n;
    if (cs->closing || i == ROUTER_MAX_REGIONS) {
        return LR_EINVAL;
    }
    cs->up[i] = u;
    cs->reg[i] = (struct catsync__region){cs, i, 0, 0, 0};
    cs->n = i + 1;
    catsync__pass(&cs->reg[i]); /* its mark is 0 or behind: the whole catalog, now */
    return 0;
}

void catsync_counts(const struct catsync *cs, uint64_t *passes, uint64_t *changes)
{
    *passes = cs->passes;
    *changes = cs->changes;
}

static void catsync__timer_closed(uv_handle_t *h)
{
    struct catsync *cs = h->data;
    cs->timer_closed = 1;
    catsync__maybe_done(cs);
}

void catsync_close(struct catsync *cs, void (*done)(void *data), void *data)
{
    cs->closing = 1;
    cs->done = done;
    cs->done_data = data;
    uv_timer_stop(&cs->timer);
    uv_close((uv_handle_t *)&cs->timer, catsync__timer_closed);
}
