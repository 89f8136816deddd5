/* router/route_reward.c — POST /v1/players/{id}/rewards/claim (API.md, "Cycles").
 *
 * A reward lives in its player's region (docs/global-state.md, "Claims"), so a claim is a
 * player write like a score: the body is checked as the shard will check it, then the claim
 * goes to the player's region as one REWARD_CLAIM command and its result is the answer (200
 * the item with claimed_at, 404 no such reward, 409 claimed under another key). Racing claims
 * through any routers serialize in that region's log, and the idempotency key makes a retry
 * answer the first result. The list of rewards is a player read (route_player.c). */
#include <string.h>

#include "../lib/err.h"
#include "router_int.h"

int route_reward_claim(struct rreq *q)
{
    const char *board, *key;
    int rv;
    if ((rv = rreq__body_str(q, "board_id", 1, &board)) != 0) {
        return rv;
    }
    if (!valid_id(board, strlen(board), VALID_ID_MAX)) {
        return rreq__errf(q, LR_EINVAL, "board_id must be 1 to 64 characters of [A-Za-z0-9_.-]");
    }
    json_t *cycle = json_object_get(q->body, "cycle");
    if (cycle == NULL || json_is_null(cycle)) {
        return rreq__errf(q, LR_EINVAL, "cycle is required");
    }
    if (!json_is_integer(cycle) || json_integer_value(cycle) < 0) {
        return rreq__errf(q, LR_EINVAL,
                          "cycle must be an integer >= 0 (the cycle's number; 0 for a "
                          "tournament)");
    }
    if ((rv = rreq__body_str(q, "idempotency_key", 1, &key)) != 0) {
        return rv;
    }
    if (!valid_idem(key, strlen(key))) {
        return rreq__errf(q, LR_EINVAL,
                          "idempotency_key must be 8 to 128 printable ASCII characters");
    }
    struct cmd c;
    memset(&c, 0, sizeof c);
    c.type = CMD_REWARD_CLAIM;
    c.u.reward_claim.player_id = q->param[0];
    c.u.reward_claim.board_id = lr_str_of(board);
    c.u.reward_claim.cycle = json_integer_value(cycle);
    c.u.reward_claim.idempotency_key = lr_str_of(key);
    return route_score__write(q, &c, q->param[0]);
}
