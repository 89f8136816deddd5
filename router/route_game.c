/* router/route_game.c — games and their achievements: PUT and GET /v1/games/{id}, PUT
 * /v1/games/{game}/achievements/{ach} and the achievements listing.
 *
 * Games and achievements are catalog: puts go to every region (route_catalog__put), and a
 * game reads from any region (region 0), since the catalog is the same everywhere. The
 * listing is the exception: every region counts its own unlocks and players, so it asks them
 * all and sums. Nothing here keeps state across steps, so these routes have no route_data. */
#include <math.h>
#include <string.h>

#include "../proto/mpjson.h"
#include "../proto/proto.h"
#include "../lib/err.h"
#include "router_int.h"

int route_game_put(struct rreq *q)
{
    const char *name;
    int rv = rreq__body_str(q, "name", 1, &name);
    if (rv != 0) {
        return rv;
    }
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_GAME_PUT;
    c.u.game_put.game_id = q->param[0];
    c.u.game_put.name = lr_str_of(name);
    return route_catalog__put(q, &c);
}

int route_game_get(struct rreq *q)
{
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_GAME_GET;
    sq.game_id = q->param[0];
    q->region = 0; /* the catalog is the same in every region */
    return rreq__query_region(q, &sq);
}

/* PUT /v1/games/{game}/achievements/{ach}: to every region. */
int route_game_ach_put(struct rreq *q)
{
    const char *name;
    int rv = rreq__body_str(q, "name", 1, &name);
    if (rv != 0) {
        return rv;
    }
    json_t *desc = json_object_get(q->body, "description");
    json_t *points = json_object_get(q->body, "points");
    json_t *hidden = json_object_get(q->body, "hidden"), *steps = json_object_get(q->body, "steps");
    if ((desc && !json_is_null(desc) && !json_is_string(desc)) ||
        (points && (!json_is_integer(points) || json_integer_value(points) < 0)) ||
        (hidden && !json_is_boolean(hidden)) ||
        (steps && (!json_is_integer(steps) || json_integer_value(steps) < 1))) {
        return rreq__errf(q, LR_EINVAL,
                          "description is a string, points an integer >= 0, "
                          "hidden a boolean and steps an integer >= 1");
    }
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_ACH_PUT;
    c.u.ach_put.game_id = q->param[0];
    c.u.ach_put.achievement_id = q->param[1];
    c.u.ach_put.name = lr_str_of(name);
    c.u.ach_put.description = lr_str_of(json_is_string(desc) ? json_string_value(desc) : "");
    c.u.ach_put.points = points ? json_integer_value(points) : 0;
    c.u.ach_put.hidden = hidden ? json_is_true(hidden) : 0;
    c.u.ach_put.steps = steps ? json_integer_value(steps) : 1;
    return route_catalog__put(q, &c);
}

/* The unlocks of achievement @id (@idlen bytes) counted by one region's listing @o. */
static int64_t route_game__unlocked(const msgpack_object *o, const char *id, size_t idlen)
{
    const msgpack_object *l = proto_map_get(o, "achievements");
    for (uint32_t j = 0; l && l->type == MSGPACK_OBJECT_ARRAY && j < l->via.array.size; j++) {
        const msgpack_object *aid = proto_map_get(&l->via.array.ptr[j], "achievement_id");
        int64_t c = 0;
        if (aid && aid->type == MSGPACK_OBJECT_STR && aid->via.str.size == idlen &&
            memcmp(aid->via.str.ptr, id, idlen) == 0) {
            proto_obj_i64(proto_map_get(&l->via.array.ptr[j], "unlocked_count"), &c);
            return c;
        }
    }
    return 0;
}

/* Every region counts its own unlocks and players: the listing sums them and recomputes the
 * percentages, so they are exact for the whole cluster. */
static int route_game__ach_merge(struct rreq *q)
{
    msgpack_unpacked up[ROUTER_MAX_REGIONS];
    const msgpack_object *o[ROUTER_MAX_REGIONS];
    unsigned nr = q->nregions;
    int64_t players = 0;
    int rv = rreq__answers(q, up, o);
    if (rv != 0) {
        return rv;
    }
    for (unsigned i = 0; i < nr; i++) {
        int64_t p = 0;
        proto_obj_i64(proto_map_get(o[i], "players"), &p);
        players += p;
    }
    json_t *out = mpjson_from(o[0]);
    json_t *list = json_object_get(out, "achievements"), *item;
    size_t k;
    json_array_foreach(list, k, item)
    {
        int64_t count = 0;
        const char *id = json_string_value(json_object_get(item, "achievement_id"));
        size_t idlen = id ? strlen(id) : 0;
        for (unsigned i = 0; i < nr; i++) {
            count += route_game__unlocked(o[i], id, idlen);
        }
        json_object_set_new(item, "unlocked_count", json_integer(count));
        json_object_set_new(
            item, "unlocked_pct",
            json_real(players ? round(10000.0 * (double)count / (double)players) / 100.0 : 0.0));
    }
    json_object_set_new(out, "players", json_integer(players));
    rreq__reply_json(q, 200, out, NULL);
    rreq__answers_free(nr, up);
    return 0;
}

int route_game_ach_list(struct rreq *q)
{
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_ACH_LIST;
    sq.game_id = q->param[0];
    sq.admin = q->admin;
    rreq__args_query(q, &sq, 0);
    q->next = route_game__ach_merge;
    return rreq__call_all(q, PROTO_OP_QUERY, 1);
}
