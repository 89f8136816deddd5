/* router/route_player.c — a player's own endpoints: PUT and GET /v1/players/{id}, and the
 * player reads (achievements history, dashboard, stats, rewards, the audit trail).
 *
 * Everything about a player lives in the player's region, so each of these is one round
 * trip to that region once the router knows which it is (rreq__locate: its cache, else the
 * metadata group's directory, else every region asked at once). A player's region never
 * changes: a put naming another region is a conflict.
 *
 * Creation (docs/global-state.md, "Player creation"): with a metadata group, a put first
 * claims the id there, and the first claim in meta's log wins; every put then writes the
 * player to the region the directory names, so concurrent creations through any routers put
 * one id in one region. A put the router already knows the region of (its cache holds only
 * regions the directory or a region confirmed) skips the claim. Player reads validate their whole
 * query before the lookup, so a bad request is refused as such even for a player that does not
 * exist; what they parsed waits in route_data (struct route_player_read) for the lookup's answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/proto.h"
#include "../lib/err.h"
#include "router_int.h"

/* ---- PUT and GET /v1/players/{id} -------------------------------------------------------- */

static int route_player__put_go(struct rreq *q)
{
    const char *region = json_string_value(json_object_get(q->body, "region"));
    int target = router__region_index(q->r, region);
    if (q->region >= 0 && q->region != target) {
        return rreq__errf(q, LR_ECONFLICT, "player %s lives in region %s; region cannot change",
                          q->player, q->r->region[q->region]);
    }
    const char *name = json_string_value(json_object_get(q->body, "name"));
    json_t *g = json_object_get(q->body, "guild");
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_PLAYER_PUT;
    c.u.player_put.player_id = lr_str_of(q->player);
    c.u.player_put.name = lr_str_of(name);
    c.u.player_put.region = lr_str_of(region);
    c.u.player_put.guild = lr_str_of(json_is_string(g) ? json_string_value(g) : "");
    rreq__args_cmd(q, &c);
    q->region = target;
    q->next = rreq__reply_result;
    router__remember_region(q->r, q->player, strlen(q->player), target);
    return rreq__call(q, (unsigned)target, PROTO_OP_SUBMIT, 1);
}

/* The directory's answer to the claim: the region on record, whoever claimed it first. */
static int route_player__claimed(struct rreq *q)
{
    msgpack_unpacked up;
    const msgpack_object *body, *reg;
    int status, rv = rreq__submit_result(q, ROUTER_META, &up, &status, &body);
    if (rv != 0) {
        return rv == LR_EUNAVAILABLE ? rreq__errf(q, rv,
                                                  "the metadata group is unavailable, so a "
                                                  "player cannot be created now; retry")
                                     : rv;
    }
    reg = proto_map_get(body, "region");
    if ((status != 200 && status != 201 && status != 409) || reg == NULL ||
        reg->type != MSGPACK_OBJECT_STR) {
        rv = rreq__errf(q, LR_EINTERNAL, "the directory answered %d without a region", status);
        msgpack_unpacked_destroy(&up);
        return rv;
    }
    char name[VALID_ID_MAX + 1];
    snprintf(name, sizeof name, "%.*s", (int)reg->via.str.size, reg->via.str.ptr);
    msgpack_unpacked_destroy(&up);
    q->region = router__region_index(q->r, name);
    if (q->region < 0) {
        return rreq__errf(q, LR_ECONFLICT,
                          "player %s lives in region %s, which this router does not serve",
                          q->player, name);
    }
    return route_player__put_go(q);
}

/* Claim the id in the directory (or go on at once when the router already knows where the
 * player lives). */
static int route_player__claim(struct rreq *q)
{
    if (q->region >= 0) {
        return route_player__put_go(q);
    }
    const char *region = json_string_value(json_object_get(q->body, "region"));
    struct mcmd c;
    memset(&c, 0, sizeof c);
    c.type = MCMD_CLAIM;
    c.u.claim.player_id = lr_str_of(q->player);
    c.u.claim.region = lr_str_of(region);
    rreq__args_mcmd(q, &c);
    q->next = route_player__claimed;
    return rreq__call(q, ROUTER_META, PROTO_OP_SUBMIT, 1);
}

int route_player_put(struct rreq *q)
{
    const char *region, *name;
    int rv;
    if ((rv = rreq__body_str(q, "region", 1, &region)) != 0 ||
        (rv = rreq__body_str(q, "name", 1, &name)) != 0) {
        return rv;
    }
    json_t *g = json_object_get(q->body, "guild");
    if (g && !json_is_null(g) && !json_is_string(g)) {
        return rreq__errf(q, LR_EINVAL, "guild must be a string or null");
    }
    if (router__region_index(q->r, region) < 0) {
        return rreq__errf(q, LR_EINVAL, "unknown region %s", region);
    }
    /* Everything the region would refuse is refused here, before the claim: a claim is for
     * good, and a put the region then refuses would leave an id claimed for no player. */
    if (!valid_text(name, strlen(name), 1, VALID_NAME_MAX)) {
        return rreq__errf(q, LR_EINVAL, "name must be 1 to %d characters", VALID_NAME_MAX);
    }
    if (json_is_string(g) && json_string_length(g) > 0 && /* "": no guild */
        !valid_id(json_string_value(g), json_string_length(g), VALID_ID_MAX)) {
        return rreq__errf(q, LR_EINVAL, "guild must be 1 to %d characters of [A-Za-z0-9_.-]",
                          VALID_ID_MAX);
    }
    char id[VALID_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)q->param[0].len, q->param[0].p);
    if (q->r->up[ROUTER_META]) {
        snprintf(q->player, sizeof q->player, "%s", id);
        q->region = router__cached_region(q->r, id, strlen(id));
        return route_player__claim(q);
    }
    return rreq__locate(q, id, route_player__put_go);
}

static int route_player__get_go(struct rreq *q)
{
    if (q->region < 0) {
        return rreq__errf(q, LR_ENOTFOUND, "player %s not found", q->player);
    }
    struct shard_query sq;
    memset(&sq, 0, sizeof sq);
    sq.type = SHARD_Q_PLAYER_GET;
    sq.player_id = lr_str_of(q->player);
    return rreq__query_region(q, &sq);
}

int route_player_get(struct rreq *q)
{
    char id[VALID_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)q->param[0].len, q->param[0].p);
    return rreq__locate(q, id, route_player__get_go);
}

/* ---- player reads: one round trip to the player's region --------------------------------- */

/* A player read's query, parsed before the player is located. */
struct route_player_read {
    enum shard_qtype qtype;
    uint32_t limit, days;
    int pending;
    char game[VALID_ID_MAX + 1];
    char cursor[CURSOR_MAX];
};

static int route_player__read_go(struct rreq *q)
{
    const struct route_player_read *rd = q->route_data;
    struct shard_query sq;
    if (q->region < 0) {
        return rreq__errf(q, LR_ENOTFOUND, "player %s not found", q->player);
    }
    memset(&sq, 0, sizeof sq);
    sq.type = rd->qtype;
    sq.player_id = lr_str_of(q->player);
    sq.game_id = lr_str_of(rd->game);
    sq.limit = rd->limit;
    sq.cursor = lr_str_of(rd->cursor);
    sq.days = rd->days;
    sq.pending = rd->pending;
    return rreq__query_region(q, &sq);
}

/* Parse the optional game_id, limit (1..@max_limit, 0: not accepted), cursor, days (1..90
 * when @days) and pending (true|false when @pending) and run @type on the player's region. */
static int route_player__read(struct rreq *q, enum shard_qtype type, uint32_t max_limit, int days,
                              int pending)
{
    struct route_player_read *rd = rreq__data(q, sizeof *rd, free);
    char id[VALID_ID_MAX + 1];
    long v;
    if (rd == NULL) {
        return LR_ENOMEM;
    }
    if (rreq__query(q, "game_id", rd->game, sizeof rd->game) < 0 ||
        (rd->game[0] && !valid_id(rd->game, strlen(rd->game), VALID_GAME_ID_MAX))) {
        return rreq__errf(q, LR_EINVAL, "game_id must be 1 to 56 characters of [A-Za-z0-9_.-]");
    }
    if (max_limit) {
        if (rreq__query_int(q, "limit", 1, max_limit, 50, &v) != 0) {
            return rreq__errf(q, LR_EINVAL, "limit must be 1 to %u", max_limit);
        }
        rd->limit = (uint32_t)v;
        if (rreq__query(q, "cursor", rd->cursor, sizeof rd->cursor) < 0) {
            return rreq__errf(q, LR_EINVAL, "cursor is not valid");
        }
    }
    if (days) {
        if (rreq__query_int(q, "days", 1, 90, 30, &v) != 0) {
            return rreq__errf(q, LR_EINVAL, "days must be 1 to 90");
        }
        rd->days = (uint32_t)v;
    }
    if (pending) {
        char b[8];
        int has = rreq__query(q, "pending", b, sizeof b);
        if (has < 0 || (has == 0 && strcmp(b, "true") != 0 && strcmp(b, "false") != 0)) {
            return rreq__errf(q, LR_EINVAL, "pending must be true or false");
        }
        rd->pending = has == 0 && strcmp(b, "true") == 0;
    }
    rd->qtype = type;
    snprintf(id, sizeof id, "%.*s", (int)q->param[0].len, q->param[0].p);
    return rreq__locate(q, id, route_player__read_go);
}

int route_player_history(struct rreq *q)
{
    return route_player__read(q, SHARD_Q_HISTORY, 1000, 0, 0);
}

int route_player_dashboard(struct rreq *q)
{
    return route_player__read(q, SHARD_Q_DASHBOARD, 0, 0, 0);
}

int route_player_stats(struct rreq *q)
{
    return route_player__read(q, SHARD_Q_STATS, 0, 1, 0);
}

/* GET /v1/players/{id}/audit (admin key, checked by the pipeline): newest first, by cursor. */
int route_player_audit(struct rreq *q)
{
    return route_player__read(q, SHARD_Q_AUDIT, 1000, 0, 0);
}

/* Newest grant first, paged like the history; pending=true: unclaimed ones only. */
int route_player_rewards(struct rreq *q)
{
    return route_player__read(q, SHARD_Q_REWARDS, 1000, 0, 1);
}
