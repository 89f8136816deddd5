/* router/route_catalog.c — the catalog write shared by games, achievements, boards and
 * tournaments.
 *
 * With a metadata group (docs/global-state.md, "Catalog changes"), a put is first one command
 * in meta's log, which versions it by its log index: versions are then totally ordered
 * without any router clock, and the change is durable before any region sees it. The router
 * then submits the put, stamped with that version, to every region at once, and answers with
 * the first result a region gave (every region applies the same catalog changes in the same
 * order, so their results agree). A region it could not reach is not repaired by this
 * router: the catalog carrier of every router (catsync.c) brings each region up to meta's
 * log from the region's own mark, so the answer is 2xx once meta committed the put and one
 * region applied it; 503 only when no region could be reached (the put is in meta and will
 * still arrive: retrying is safe).
 *
 * Without a metadata group (a router started without --meta), a put is stamped with this
 * router's clock (strictly increasing per router) and must reach every region: a region that
 * cannot be reached makes the put fail, and the client retries. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../proto/proto.h"
#include "../lib/err.h"
#include "router_int.h"

/* Meta's catalog kind of each catalog put (shard/cmd.h → meta/mcmd.h). */
static const int64_t route_catalog__kind[CMD__TYPE_END] = {
    [CMD_GAME_PUT] = META_KIND_GAME,
    [CMD_ACH_PUT] = META_KIND_ACHIEVEMENT,
    [CMD_BOARD_PUT] = META_KIND_BOARD,
    [CMD_TOURNAMENT_PUT] = META_KIND_TOURNAMENT,
};

/* The put being made: the command, kept until meta has versioned it. */
struct route_catalog_put {
    msgpack_sbuffer body; /* the command with version 0, as meta records it */
    int status;           /* meta's: 201 for the id's first put, else 200 */
    char id[2 * VALID_ID_MAX + 1];
};

static void route_catalog__put_free(void *data)
{
    struct route_catalog_put *p = data;
    msgpack_sbuffer_destroy(&p->body);
    free(p);
}

/* Every region has answered the stamped put: the first that applied it answers the request
 * (with meta, the others get it from the carrier); without meta, any failure is the answer. */
static int route_catalog__done(struct rreq *q)
{
    int failed = -1, applied = -1;
    for (unsigned i = 0; i < q->nregions; i++) {
        if (q->code[i] != 0 && failed < 0) {
            failed = (int)i;
        }
        if (q->code[i] == 0 && applied < 0) {
            applied = (int)i;
        }
    }
    if (q->r->catsync) {
        catsync_kick(q->r->catsync);
    }
    q->region = q->r->catsync && applied >= 0 ? applied : failed >= 0 ? failed : 0;
    const struct route_catalog_put *p = q->route_data;
    if (p == NULL || q->code[q->region] != 0) {
        return rreq__reply_result(q);
    }
    /* Created or updated is meta's word: a region may have had the put from a carrier
     * before this router's own submit reached it. */
    msgpack_unpacked up;
    const msgpack_object *body;
    int status, rv = rreq__submit_result(q, (unsigned)q->region, &up, &status, &body);
    if (rv != 0) {
        return rv;
    }
    rreq__reply_mp(q, status / 100 == 2 ? p->status : status, body, NULL);
    msgpack_unpacked_destroy(&up);
    return 0;
}

/* Submit @c, stamped with version @v, to every region. */
static int route_catalog__submit(struct rreq *q, const struct cmd *c, int64_t v)
{
    struct cmd stamped = *c;
    *cmd_catalog_version(&stamped) = v; /* the caller checked it is a catalog put */
    rreq__args_cmd(q, &stamped);
    q->region = -1;
    q->next = route_catalog__done;
    return rreq__call_all(q, PROTO_OP_SUBMIT, 1);
}

/* Meta has recorded the put: its version is meta's log index. */
static int route_catalog__versioned(struct rreq *q)
{
    struct route_catalog_put *p = q->route_data;
    msgpack_unpacked up, cup;
    const msgpack_object *body, *ver;
    char errmsg[LR_ERRMSG_SIZE];
    int64_t v = 0;
    int status, rv = rreq__submit_result(q, ROUTER_META, &up, &status, &body);
    if (rv != 0) {
        return rv == LR_EUNAVAILABLE ? rreq__errf(q, rv,
                                                  "the metadata group is unavailable, so the "
                                                  "catalog cannot change now; retry")
                                     : rv;
    }
    if (status / 100 == 4) {
        /* meta refused it by its own rules (e.g. a game id too long): nothing was recorded,
         * and its answer is in API.md's error form. */
        rreq__reply_mp(q, status, body, NULL);
        msgpack_unpacked_destroy(&up);
        return 0;
    }
    p->status = status;
    ver = proto_map_get(body, "version");
    if (status / 100 != 2 || ver == NULL || proto_obj_i64(ver, &v) != 0 || v <= 0) {
        rv =
            rreq__errf(q, LR_EINTERNAL, "the metadata group answered %d without a version", status);
        msgpack_unpacked_destroy(&up);
        return rv;
    }
    msgpack_unpacked_destroy(&up);
    /* The command again, from the bytes meta recorded (its strings point into them). */
    struct cmd c;
    msgpack_unpacked_init(&cup);
    if (proto_unpack(p->body.data, p->body.size, &cup) != 0 ||
        cmd_decode(&cup.data, &c, errmsg) != 0) {
        msgpack_unpacked_destroy(&cup);
        return rreq__errf(q, LR_EINTERNAL, "catalog put: %s", errmsg);
    }
    rv = route_catalog__submit(q, &c, v);
    msgpack_unpacked_destroy(&cup);
    return rv;
}

int route_catalog__put(struct rreq *q, const struct cmd *c)
{
    struct cmd unversioned = *c;
    int64_t *uv = cmd_catalog_version(&unversioned);
    if (uv == NULL) {
        return rreq__errf(q, LR_EINTERNAL, "not a catalog put");
    }
    if (q->r->up[ROUTER_META] == NULL) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t v = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (v <= q->r->catalog_version) {
            v = q->r->catalog_version + 1;
        }
        q->r->catalog_version = v;
        return route_catalog__submit(q, c, v);
    }
    *uv = 0; /* meta's log index will be its version */
    struct route_catalog_put *p = rreq__data(q, sizeof *p, route_catalog__put_free);
    msgpack_packer pk;
    struct mcmd m;
    if (p == NULL) {
        return LR_ENOMEM;
    }
    msgpack_sbuffer_init(&p->body);
    msgpack_packer_init(&pk, &p->body, msgpack_sbuffer_write);
    if (cmd_encode(&pk, &unversioned) != 0) {
        return rreq__errf(q, LR_EINTERNAL, "catalog put could not be encoded");
    }
    memset(&m, 0, sizeof m);
    m.type = MCMD_CATALOG_PUT;
    m.u.catalog_put.kind = route_catalog__kind[c->type];
    m.u.catalog_put.id = *cmd_catalog_id(c);
    if (c->type == CMD_ACH_PUT) { /* unique across games (mcmd.h) */
        const struct lr_str *g = &c->u.ach_put.game_id, *a = &c->u.ach_put.achievement_id;
        int n = snprintf(p->id, sizeof p->id, "%u.%.*s.%.*s", (unsigned)g->len, (int)g->len, g->p,
                         (int)a->len, a->p);
        m.u.catalog_put.id = (struct lr_str){p->id, (uint32_t)n};
    }
    m.u.catalog_put.body = (struct lr_str){p->body.data, (uint32_t)p->body.size};
    rreq__args_mcmd(q, &m);
    q->next = route_catalog__versioned;
    return rreq__call(q, ROUTER_META, PROTO_OP_SUBMIT, 1);
}
