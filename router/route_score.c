/* router/route_score.c — the player writes: POST /v1/boards/{id}/scores and POST /v1/unlocks,
 * and the JSON → command builders they share with POST /v1/events (route_events.c).
 *
 * One builder per command checks an item exactly as the shard will (ids, idempotency key,
 * score range, metadata size) so a bad item is refused before the router asks anyone where
 * the player lives, and an events batch item fails with the same sentence as the single
 * endpoint. The built command is packed at once: its strings point into the request's JSON,
 * and the packed bytes (route_data) wait for the player's region. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../proto/proto.h"
#include "../lib/err.h"
#include "router_int.h"

/* ---- the builders ---------------------------------------------------------------------------- */

static int route_score__errf(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int route_score__errf(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return LR_EINVAL;
}

/* A string field that must be present; NULL with the sentence in @err otherwise. */
static const char *route_score__str_field(json_t *item, const char *key, char *err, size_t cap)
{
    json_t *v = json_object_get(item, key);
    if (v == NULL || json_is_null(v)) {
        route_score__errf(err, cap, "%s is required", key);
        return NULL;
    }
    if (!json_is_string(v)) {
        route_score__errf(err, cap, "%s must be a string", key);
        return NULL;
    }
    return json_string_value(v);
}

/* The player id and idempotency key every write item carries, checked before the router
 * asks anyone where the player lives. */
static int route_score__write_ids(json_t *item, struct lr_str *pid, struct lr_str *key, char *err,
                                  size_t cap)
{
    const char *p = route_score__str_field(item, "player_id", err, cap);
    const char *k = p ? route_score__str_field(item, "idempotency_key", err, cap) : NULL;
    if (k == NULL) {
        return LR_EINVAL;
    }
    *pid = lr_str_of(p);
    *key = lr_str_of(k);
    if (!valid_id(pid->p, pid->len, VALID_ID_MAX)) {
        return route_score__errf(err, cap,
                                 "player_id must be 1 to 64 characters of [A-Za-z0-9_.-]");
    }
    if (!valid_idem(key->p, key->len)) {
        return route_score__errf(err, cap,
                                 "idempotency_key must be 8 to 128 printable ASCII "
                                 "characters");
    }
    return 0;
}

static int route_score__score_field(json_t *item, const char *key, int required, int64_t *out,
                                    char *err, size_t cap)
{
    json_t *v = json_object_get(item, key);
    *out = 0;
    if (v == NULL || json_is_null(v)) {
        return required ? route_score__errf(err, cap, "%s is required", key) : 0;
    }
    if (!json_is_integer(v) || !valid_score(json_integer_value(v))) {
        return route_score__errf(err, cap, "%s must be an integer in [-(2^53-1), 2^53-1]", key);
    }
    *out = json_integer_value(v);
    return 0;
}

int route_score__score_cmd(json_t *item, struct lr_str board, struct cmd *c, char **mtext,
                           char *err, size_t cap)
{
    memset(c, 0, sizeof *c);
    *mtext = NULL;
    c->type = CMD_SCORE;
    c->u.score.board_id = board;
    if (!valid_id(board.p, board.len, VALID_ID_MAX)) {
        return route_score__errf(err, cap, "board_id must be 1 to 64 characters of [A-Za-z0-9_.-]");
    }
    if (route_score__write_ids(item, &c->u.score.player_id, &c->u.score.idempotency_key, err,
                               cap) != 0 ||
        route_score__score_field(item, "score", 1, &c->u.score.score, err, cap) != 0 ||
        route_score__score_field(item, "subscore", 0, &c->u.score.subscore, err, cap) != 0) {
        return LR_EINVAL;
    }
    json_t *meta = json_object_get(item, "metadata");
    if (meta && !json_is_null(meta)) {
        *mtext = json_is_object(meta) ? json_dumps(meta, JSON_COMPACT) : NULL;
        if (*mtext == NULL || strlen(*mtext) > VALID_METADATA_MAX) {
            return route_score__errf(err, cap, "metadata must be a JSON object of at most %d bytes",
                                     VALID_METADATA_MAX);
        }
        c->u.score.metadata = lr_str_of(*mtext);
    }
    return 0;
}

int route_score__unlock_cmd(json_t *item, struct cmd *c, char *err, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->type = CMD_UNLOCK;
    const char *game = route_score__str_field(item, "game_id", err, cap);
    const char *ach = game ? route_score__str_field(item, "achievement_id", err, cap) : NULL;
    if (ach == NULL || route_score__write_ids(item, &c->u.unlock.player_id,
                                              &c->u.unlock.idempotency_key, err, cap) != 0) {
        return LR_EINVAL;
    }
    c->u.unlock.game_id = lr_str_of(game);
    c->u.unlock.achievement_id = lr_str_of(ach);
    json_t *steps = json_object_get(item, "steps");
    if (steps && !json_is_null(steps)) {
        if (!json_is_integer(steps) || json_integer_value(steps) < 1 ||
            json_integer_value(steps) > 1000000000) {
            return route_score__errf(err, cap, "steps must be an integer from 1 to 1000000000");
        }
        c->u.unlock.steps = json_integer_value(steps);
    }
    return 0;
}

/* ---- the single endpoints ------------------------------------------------------------------ */

/* A write waiting for its player's region: the one-command submit, packed. */
struct route_score_write {
    size_t len;
    char args[];
};

/* Submit the packed command to the player's region, once it is known. */
static int route_score__write_go(struct rreq *q)
{
    const struct route_score_write *w = q->route_data;
    if (q->region < 0) {
        return rreq__errf(q, LR_ENOTFOUND, "player %s not found", q->player);
    }
    msgpack_sbuffer_clear(&q->args);
    msgpack_sbuffer_write(&q->args, w->args, w->len);
    q->next = rreq__reply_result;
    return rreq__submit(q, (unsigned)q->region); /* grouped with the turn's other writes */
}

/* Pack @c as a one-command submit into route_data and send it to @pid's region. The lookup
 * of an unknown player uses q->args, hence the copy of exactly the packed bytes. */
int route_score__write(struct rreq *q, const struct cmd *c, struct lr_str pid)
{
    char id[VALID_ID_MAX + 1];
    rreq__args_cmd(q, c);
    struct route_score_write *w = rreq__data(q, sizeof *w + q->args.size, free);
    if (w == NULL) {
        return LR_ENOMEM;
    }
    w->len = q->args.size;
    memcpy(w->args, q->args.data, q->args.size);
    snprintf(id, sizeof id, "%.*s", (int)pid.len, pid.p);
    return rreq__locate(q, id, route_score__write_go);
}

/* POST /v1/boards/{id}/scores: to the player's region. */
int route_score_submit(struct rreq *q)
{
    struct cmd c;
    char *mtext, err[256];
    if (route_score__score_cmd(q->body, q->param[0], &c, &mtext, err, sizeof err) != 0) {
        free(mtext);
        return rreq__errf(q, LR_EINVAL, "%s", err);
    }
    int rv = route_score__write(q, &c, c.u.score.player_id);
    free(mtext); /* packed by now: nothing points into it any more */
    return rv;
}

/* POST /v1/unlocks: to the player's region; the shard checks ids, steps and the key again. */
int route_score_unlock(struct rreq *q)
{
    struct cmd c;
    char err[256];
    if (route_score__unlock_cmd(q->body, &c, err, sizeof err) != 0) {
        return rreq__errf(q, LR_EINVAL, "%s", err);
    }
    return route_score__write(q, &c, c.u.unlock.player_id);
}
