/* tests/integration/test_api_model.c — model-based test of API.md's board order through the
 * public API, against a real `laurel dev --regions na,eu,apac --replicas 3`.
 *
 * ~300 players over the three regions and six guilds submit a few thousand random scores (in
 * POST /v1/events batches, plus single POSTs) to a desc `best` board and an asc `incr` board,
 * with small score ranges so ties are the rule. A plain C model keeps each player's stored
 * (score, subscore, updated_at), taking updated_at from the server's answers (the leader
 * stamps time), and orders by API.md: score by the board's order, then subscore, then the
 * earlier updated_at, then player_id ascending. Then every scope (global, each region, each
 * guild) is read back: whole top pages by cursor, every player's rank with total and
 * percentile, around-N windows and friends views; all must equal the model exactly. Global
 * tops are also read between batches: the router's read model answers those (checked in its
 * /metrics), seeded before the first score and kept from the event streams.
 *
 * One batch never holds two items for the same (player, board), so the model does not depend
 * on the order the server applies a batch's items in. */
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/lib/httpc.h"
#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"

#define NPLAYERS 300
#define NGUILDS 6
#define NBATCHES 30
#define BATCH 100
#define NSINGLES 150
#define NREPLAYS 40

static const char *const regions[] = {"na", "eu", "apac"};

struct mentry {
    int has;
    int64_t score, sub, t;
    char at[32];
};

struct mplayer {
    char id[16];
    int region;
    int guild; /* -1: none */
    struct mentry b[2];
};

/* A submission that was acknowledged: replayed later with the same key and body. */
struct msent {
    char key[24];
    int board, player;
    int64_t score, sub;
    char *answer; /* the body of the first answer (compact JSON), owned */
};

struct fixture {
    struct tdev dev;
    struct testrng rng;
    struct mplayer p[NPLAYERS];
    struct msent sent[NREPLAYS];
    unsigned nsent;
    unsigned keyseq;
};

static struct fixture *fx;

static const char *const boards[2] = {"mb-best", "mb-incr"};
static const int board_desc[2] = {1, 0};

/* ---- the model --------------------------------------------------------------------------- */

static int64_t parse_ms(const char *s)
{
    struct tm tm;
    int ms;
    memset(&tm, 0, sizeof tm);
    if (!tdev_is_time(s) || sscanf(s, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
        fail_msg("not an API.md time: %s", s ? s : "(null)");
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Is (a) before (b) on board @bd? API.md's total order. */
static int model_before(int bd, const struct mplayer *a, const struct mplayer *b)
{
    const struct mentry *x = &a->b[bd], *y = &b->b[bd];
    int desc = board_desc[bd];
    if (x->score != y->score) {
        return desc ? x->score > y->score : x->score < y->score;
    }
    if (x->sub != y->sub) {
        return desc ? x->sub > y->sub : x->sub < y->sub;
    }
    if (x->t != y->t) {
        return x->t < y->t;
    }
    return strcmp(a->id, b->id) < 0;
}

static int sort_board;

static int model_cmp(const void *x, const void *y)
{
    const struct mplayer *a = *(const struct mplayer *const *)x;
    const struct mplayer *b = *(const struct mplayer *const *)y;
    return model_before(sort_board, a, b) ? -1 : model_before(sort_board, b, a) ? 1 : 0;
}

/* Scope: -1 global, 0..2 region, 3..8 guild (scope - 3). */
static int in_scope(const struct mplayer *p, int scope)
{
    return scope < 0 || (scope < 3 ? p->region == scope : p->guild == scope - 3);
}

static void scope_name(int scope, char *out, size_t cap)
{
    if (scope < 0) {
        snprintf(out, cap, "global");
    } else if (scope < 3) {
        snprintf(out, cap, "region:%s", regions[scope]);
    } else {
        snprintf(out, cap, "guild:mg-%d", scope - 3);
    }
}

/* The model's ranking of @scope on @bd into @out (at most NPLAYERS); returns its length. */
static size_t model_rank(int bd, int scope, const struct mplayer **out)
{
    size_t n = 0;
    for (int i = 0; i < NPLAYERS; i++) {
        if (fx->p[i].b[bd].has && in_scope(&fx->p[i], scope)) {
            out[n++] = &fx->p[i];
        }
    }
    sort_board = bd;
    qsort(out, n, sizeof *out, model_cmp);
    return n;
}

/* Apply one acknowledged answer @body of a submission (@score, @sub) by @pl to @bd, checking
 * the answer against the model first. */
static void model_apply(int bd, int pl, int64_t score, int64_t sub, const json_t *body)
{
    struct mentry *e = &fx->p[pl].b[bd], now = *e;
    int changed;
    if (bd == 0) { /* best, desc: a strictly better (score, subscore) replaces */
        changed = !e->has || score > e->score || (score == e->score && sub > e->sub);
        if (changed) {
            now.score = score;
            now.sub = sub;
        }
    } else { /* incr: add from 0; the subscore is the one given */
        now.score = (e->has ? e->score : 0) + score;
        now.sub = sub;
        changed = !e->has || now.score != e->score || now.sub != e->sub;
    }
    const char *at = tdev_str(body, "updated_at");
    if (tdev_int(body, "score") != now.score || tdev_int(body, "subscore") != now.sub ||
        json_is_true(json_object_get(body, "improved")) != changed ||
        strcmp(tdev_str(body, "player_id") ? tdev_str(body, "player_id") : "", fx->p[pl].id) != 0) {
        char *s = json_dumps(body, JSON_COMPACT);
        fail_msg("%s %s (%lld, %lld): answer %s; model: score %lld subscore %lld improved %d",
                 boards[bd], fx->p[pl].id, (long long)score, (long long)sub, s,
                 (long long)now.score, (long long)now.sub, changed);
    }
    if (changed) {
        now.has = 1;
        now.t = parse_ms(at);
        snprintf(now.at, sizeof now.at, "%s", at);
        if (e->has && now.t < e->t) {
            fail_msg("%s %s: updated_at went back from %s to %s", boards[bd], fx->p[pl].id, e->at,
                     at);
        }
    } else if (at == NULL || strcmp(at, e->at) != 0) {
        fail_msg("%s %s: unchanged entry answered updated_at %s, stored %s", boards[bd],
                 fx->p[pl].id, at ? at : "(null)", e->at);
    }
    *e = now;
}

/* ---- fixture ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    fx = calloc(1, sizeof *fx);
    if (fx == NULL) {
        return -1;
    }
    fx->rng.s = testlib_seed(0x1a5e1);
    if (tdev_start(&fx->dev, "na,eu,apac", 3, 30000) != 0) {
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tdev_stop(&fx->dev);
    for (unsigned i = 0; i < fx->nsent; i++) {
        free(fx->sent[i].answer);
    }
    free(fx);
    return 0;
}

static void expect(const struct httpc_resp *r, int status, const char *what)
{
    if (r->status != status) {
        fail_msg("%s: status %d, expected %d; body %s", what, r->status, status,
                 r->body ? r->body : "(none)");
    }
}

/* A score submission's body (the board goes in the path, or in the event item). */
static json_t *score_item(int pl, int64_t score, int64_t sub, char *key, size_t cap)
{
    snprintf(key, cap, "mk-%07u", ++fx->keyseq);
    return json_pack("{s:s,s:I,s:I,s:s}", "player_id", fx->p[pl].id, "score", (json_int_t)score,
                     "subscore", (json_int_t)sub, "idempotency_key", key);
}

static void random_submission(int bd, int64_t *score, int64_t *sub)
{
    if (bd == 0) {
        *score = (int64_t)testrng_below(&fx->rng, 12);
        *sub = (int64_t)testrng_below(&fx->rng, 3);
    } else {
        *score = (int64_t)testrng_below(&fx->rng, 6) - 2; /* -2..3, 0 included */
        *sub = (int64_t)testrng_below(&fx->rng, 2);
    }
}

static void remember(int bd, int pl, int64_t score, int64_t sub, const char *key,
                     const json_t *answer)
{
    if (fx->nsent < NREPLAYS && testrng_below(&fx->rng, 40) == 0) {
        struct msent *s = &fx->sent[fx->nsent++];
        snprintf(s->key, sizeof s->key, "%s", key);
        s->board = bd;
        s->player = pl;
        s->score = score;
        s->sub = sub;
        s->answer = json_dumps(answer, JSON_COMPACT | JSON_SORT_KEYS);
    }
}

/* ---- scenarios ---------------------------------------------------------------------------- */

static void top_equals_model(int bd, int scope);

/* Players over the regions and guilds, the two boards, then the submissions: batches of
 * events and single POSTs interleaved; every answer is checked against the model. */
static void submissions_follow_the_model(void **state)
{
    (void)state;
    struct httpc_resp r;
    char path[128];
    assert_int_equal(tdev_status(&fx->dev, "PUT", "/v1/boards/mb-best", TDEV_ADMIN,
                                 "{\"order\":\"desc\",\"operator\":\"best\"}"),
                     201);
    assert_int_equal(tdev_status(&fx->dev, "PUT", "/v1/boards/mb-incr", TDEV_ADMIN,
                                 "{\"order\":\"asc\",\"operator\":\"incr\"}"),
                     201);
    for (int i = 0; i < NPLAYERS; i++) {
        struct mplayer *p = &fx->p[i];
        snprintf(p->id, sizeof p->id, "m-%03d", i);
        p->region = (int)testrng_below(&fx->rng, 3);
        p->guild = (int)testrng_below(&fx->rng, NGUILDS + 1) - 1;
        json_t *b = json_pack("{s:s,s:s}", "name", p->id, "region", regions[p->region]);
        if (p->guild >= 0) {
            char g[16];
            snprintf(g, sizeof g, "mg-%d", p->guild);
            json_object_set_new(b, "guild", json_string(g));
        }
        snprintf(path, sizeof path, "/v1/players/%s", p->id);
        tdev_reqj(&fx->dev, "PUT", path, TDEV_API, b, &r);
        expect(&r, 201, path);
        httpc_free(&r);
    }

    /* Read both boards before any score: the router's read model (docs/consistency.md) seeds
     * them empty, and from then on holds them from the regions' event streams alone. Global
     * tops read between batches check it against the model as the writes go on. */
    top_equals_model(0, -1);
    top_equals_model(1, -1);
    int singles_per_batch = NSINGLES / NBATCHES;
    for (int batch = 0; batch < NBATCHES; batch++) {
        if (batch % 3 == 1) {
            top_equals_model(batch % 2, -1);
        }
        static unsigned char used[2][NPLAYERS];
        int bd_of[BATCH], pl_of[BATCH];
        int64_t sc[BATCH], sb[BATCH];
        char keys[BATCH][24];
        memset(used, 0, sizeof used);
        json_t *items = json_array();
        for (int k = 0; k < BATCH; k++) {
            int bd, pl;
            do {
                bd = (int)testrng_below(&fx->rng, 2);
                pl = (int)testrng_below(&fx->rng, NPLAYERS);
            } while (used[bd][pl]);
            used[bd][pl] = 1;
            bd_of[k] = bd;
            pl_of[k] = pl;
            random_submission(bd, &sc[k], &sb[k]);
            json_t *it = score_item(pl, sc[k], sb[k], keys[k], sizeof keys[k]);
            json_object_set_new(it, "type", json_string("score"));
            json_object_set_new(it, "board_id", json_string(boards[bd]));
            json_array_append_new(items, it);
        }
        tdev_reqj(&fx->dev, "POST", "/v1/events", TDEV_API, items, &r);
        expect(&r, 200, "POST /v1/events");
        json_t *res = json_object_get(r.json, "results");
        assert_int_equal(json_array_size(res), BATCH);
        for (int k = 0; k < BATCH; k++) {
            json_t *it = json_array_get(res, (size_t)k);
            json_t *body = json_object_get(it, "body");
            if (tdev_int(it, "status") != 200) {
                char *s = json_dumps(it, JSON_COMPACT);
                fail_msg("batch %d item %d: %s", batch, k, s);
            }
            model_apply(bd_of[k], pl_of[k], sc[k], sb[k], body);
            remember(bd_of[k], pl_of[k], sc[k], sb[k], keys[k], body);
        }
        httpc_free(&r);

        for (int k = 0; k < singles_per_batch; k++) {
            int bd = (int)testrng_below(&fx->rng, 2), pl = (int)testrng_below(&fx->rng, NPLAYERS);
            int64_t score, sub;
            char key[24];
            random_submission(bd, &score, &sub);
            snprintf(path, sizeof path, "/v1/boards/%s/scores", boards[bd]);
            tdev_reqj(&fx->dev, "POST", path, TDEV_API, score_item(pl, score, sub, key, sizeof key),
                      &r);
            expect(&r, 200, path);
            model_apply(bd, pl, score, sub, r.json);
            remember(bd, pl, score, sub, key, r.json);
            httpc_free(&r);
        }
    }
}

/* Replays of acknowledged submissions (same key, same body) answer the first answer with
 * Idempotent-Replayed and change nothing; the model is left as it is. */
static void replays_change_nothing(void **state)
{
    (void)state;
    assert_true(fx->nsent > 0);
    for (unsigned i = 0; i < fx->nsent; i++) {
        struct msent *s = &fx->sent[i];
        struct httpc_resp r;
        char path[128];
        snprintf(path, sizeof path, "/v1/boards/%s/scores", boards[s->board]);
        json_t *b = json_pack("{s:s,s:I,s:I,s:s}", "player_id", fx->p[s->player].id, "score",
                              (json_int_t)s->score, "subscore", (json_int_t)s->sub,
                              "idempotency_key", s->key);
        tdev_reqj(&fx->dev, "POST", path, TDEV_API, b, &r);
        expect(&r, 200, "replay");
        assert_non_null(strstr(r.headers, "Idempotent-Replayed: true"));
        char *got = json_dumps(r.json, JSON_COMPACT | JSON_SORT_KEYS);
        if (got == NULL || strcmp(got, s->answer) != 0) {
            fail_msg("replay of %s: %s, first answer %s", s->key, got ? got : r.body, s->answer);
        }
        free(got);
        httpc_free(&r);
    }
}

static void entry_matches(const json_t *e, const struct mplayer *p, int bd, int64_t rank,
                          const char *what)
{
    const struct mentry *m = &p->b[bd];
    const char *id = tdev_str(e, "player_id"), *at = tdev_str(e, "updated_at");
    if (tdev_int(e, "rank") != rank || id == NULL || strcmp(id, p->id) != 0 ||
        tdev_int(e, "score") != m->score || tdev_int(e, "subscore") != m->sub || at == NULL ||
        strcmp(at, m->at) != 0 || tdev_str(e, "region") == NULL ||
        strcmp(tdev_str(e, "region"), regions[p->region]) != 0 || tdev_str(e, "name") == NULL ||
        strcmp(tdev_str(e, "name"), p->id) != 0) {
        char *s = json_dumps(e, JSON_COMPACT);
        fail_msg("%s: entry %s; model: rank %lld %s score %lld subscore %lld at %s region %s", what,
                 s, (long long)rank, p->id, (long long)m->score, (long long)m->sub, m->at,
                 regions[p->region]);
    }
}

/* Whole rankings of every scope, page by page with the cursor, equal the model's. */
/* The whole top of board @bd in @scope (-1 global), page by page with a random limit,
 * equals the model. */
static void top_equals_model(int bd, int scope)
{
    static const struct mplayer *want[NPLAYERS];
    char sname[32], cursor[512] = "", what[128];
    size_t n = model_rank(bd, scope, want), got = 0;
    int limit = 1 + (int)testrng_below(&fx->rng, 60);
    scope_name(scope, sname, sizeof sname);
    snprintf(what, sizeof what, "%s %s limit %d", boards[bd], sname, limit);
    for (int pages = 0;; pages++) {
        struct httpc_resp r;
        char path[700];
        assert_true(pages <= (int)n / limit + 1);
        snprintf(path, sizeof path, "/v1/boards/%s/top?scope=%s&limit=%d%s%s", boards[bd], sname,
                 limit, cursor[0] ? "&cursor=" : "", cursor);
        tdev_req(&fx->dev, "GET", path, "", NULL, &r);
        expect(&r, 200, path);
        json_t *ents = json_object_get(r.json, "entries"), *e;
        size_t i;
        json_array_foreach(ents, i, e)
        {
            if (got >= n) {
                fail_msg("%s: more than the model's %zu entries", what, n);
            }
            entry_matches(e, want[got], bd, (int64_t)got + 1, what);
            got++;
        }
        json_t *next = json_object_get(r.json, "next_cursor");
        int end = json_is_null(next);
        if (!end) {
            assert_true(json_is_string(next));
            snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        }
        httpc_free(&r);
        if (end) {
            break;
        }
    }
    if (got != n) {
        fail_msg("%s: %zu entries, model has %zu", what, got, n);
    }
}

static void top_pages_equal_model(void **state)
{
    (void)state;
    for (int bd = 0; bd < 2; bd++) {
        for (int scope = -1; scope < 3 + NGUILDS; scope++) {
            top_equals_model(bd, scope);
        }
    }
}

/* Every player's rank, total and percentile in every scope it belongs to equal the model's;
 * a player without a score is 404. */
static void every_rank_equals_model(void **state)
{
    (void)state;
    static const struct mplayer *want[NPLAYERS];
    for (int bd = 0; bd < 2; bd++) {
        for (int scope = -1; scope < 3 + NGUILDS; scope++) {
            char sname[32], path[256], what[160];
            size_t n = model_rank(bd, scope, want);
            scope_name(scope, sname, sizeof sname);
            for (size_t k = 0; k < n; k++) {
                struct httpc_resp r;
                snprintf(path, sizeof path, "/v1/boards/%s/players/%s?scope=%s", boards[bd],
                         want[k]->id, sname);
                tdev_req(&fx->dev, "GET", path, "", NULL, &r);
                expect(&r, 200, path);
                double pct = round(100.0 * (double)(n - (k + 1)) / (double)n * 100.0) / 100.0;
                if (tdev_int(r.json, "rank") != (int64_t)k + 1 ||
                    tdev_int(r.json, "total") != (int64_t)n ||
                    tdev_int(r.json, "score") != want[k]->b[bd].score ||
                    tdev_int(r.json, "subscore") != want[k]->b[bd].sub ||
                    fabs(tdev_num(r.json, "percentile") - pct) > 1e-6) {
                    fail_msg("%s: %s; model rank %zu total %zu score %lld subscore %lld pct %.2f",
                             path, r.body, k + 1, n, (long long)want[k]->b[bd].score,
                             (long long)want[k]->b[bd].sub, pct);
                }
                httpc_free(&r);
            }
            if (scope == -1) { /* the unscored are 404 in the global scope */
                for (int i = 0; i < NPLAYERS; i++) {
                    if (!fx->p[i].b[bd].has) {
                        snprintf(what, sizeof what, "/v1/boards/%s/players/%s", boards[bd],
                                 fx->p[i].id);
                        struct httpc_resp r;
                        tdev_req(&fx->dev, "GET", what, "", NULL, &r);
                        tdev_assert_error(&r, 404, "not_found", what);
                        httpc_free(&r);
                    }
                }
            }
        }
    }
}

/* around=N for a sample of players in every scope: the model's slice, in rank order. */
static void around_equals_model(void **state)
{
    (void)state;
    static const struct mplayer *want[NPLAYERS];
    for (int bd = 0; bd < 2; bd++) {
        for (int scope = -1; scope < 3 + NGUILDS; scope++) {
            char sname[32], path[256];
            size_t n = model_rank(bd, scope, want);
            scope_name(scope, sname, sizeof sname);
            for (int s = 0; s < 8 && n > 0; s++) {
                size_t k = s == 0 ? 0 : s == 1 ? n - 1 : (size_t)testrng_below(&fx->rng, n);
                int around = s == 2 ? 50 : (int)testrng_below(&fx->rng, 6);
                struct httpc_resp r;
                snprintf(path, sizeof path, "/v1/boards/%s/players/%s?scope=%s&around=%d",
                         boards[bd], want[k]->id, sname, around);
                tdev_req(&fx->dev, "GET", path, "", NULL, &r);
                expect(&r, 200, path);
                size_t lo = k >= (size_t)around ? k - (size_t)around : 0;
                size_t hi = k + (size_t)around + 1 < n ? k + (size_t)around + 1 : n;
                json_t *a = json_object_get(r.json, "around");
                if (json_array_size(a) != hi - lo) {
                    fail_msg("%s: %zu entries, model %zu: %s", path, json_array_size(a), hi - lo,
                             r.body);
                }
                for (size_t j = lo; j < hi; j++) {
                    entry_matches(json_array_get(a, j - lo), want[j], bd, (int64_t)j + 1, path);
                }
                httpc_free(&r);
            }
        }
    }
}

/* Friends views of random id sets (some unscored, some unknown, some outside the scope): the
 * scored members of the scope with their exact ranks, in rank order. */
static void friends_equal_model(void **state)
{
    (void)state;
    static const struct mplayer *want[NPLAYERS];
    for (int bd = 0; bd < 2; bd++) {
        for (int scope = -1; scope < 3 + NGUILDS; scope++) {
            char sname[32];
            size_t n = model_rank(bd, scope, want);
            scope_name(scope, sname, sizeof sname);
            for (int s = 0; s < 6; s++) {
                char path[2048];
                unsigned char pick[NPLAYERS] = {0};
                int count = 1 + (int)testrng_below(&fx->rng, s == 0 ? 100 : 30);
                size_t len = (size_t)snprintf(
                    path, sizeof path, "/v1/boards/%s/players?scope=%s&ids=", boards[bd], sname);
                for (int c = 0; c < count; c++) {
                    if (c > 0 && testrng_below(&fx->rng, 10) == 0) {
                        len += (size_t)snprintf(path + len, sizeof path - len, ",m-ghost-%d", c);
                        continue;
                    }
                    int pl = (int)testrng_below(&fx->rng, NPLAYERS);
                    if (pick[pl]) {
                        continue;
                    }
                    pick[pl] = 1;
                    len += (size_t)snprintf(path + len, sizeof path - len, "%s%s", c ? "," : "",
                                            fx->p[pl].id);
                }
                assert_true(len < sizeof path - 1);
                struct httpc_resp r;
                tdev_req(&fx->dev, "GET", path, "", NULL, &r);
                expect(&r, 200, path);
                json_t *ents = json_object_get(r.json, "entries");
                size_t j = 0;
                for (size_t k = 0; k < n; k++) {
                    if (!pick[atoi(want[k]->id + 2)]) {
                        continue;
                    }
                    if (j >= json_array_size(ents)) {
                        fail_msg("%s: missing %s (rank %zu): %s", path, want[k]->id, k + 1, r.body);
                    }
                    entry_matches(json_array_get(ents, j), want[k], bd, (int64_t)k + 1, path);
                    j++;
                }
                if (j != json_array_size(ents)) {
                    fail_msg("%s: %zu entries, model %zu: %s", path, json_array_size(ents), j,
                             r.body);
                }
                httpc_free(&r);
            }
        }
    }
}

/* The global reads above went through the router's read model: it holds both boards, and
 * reads waited for its ReadIndex rounds. */
static void reads_went_through_the_read_model(void **state)
{
    (void)state;
    struct httpc_resp r;
    tdev_req(&fx->dev, "GET", "/metrics", "", NULL, &r);
    expect(&r, 200, "/metrics");
    const char *b = strstr(r.body, "\nlaurel_readmodel_boards ");
    const char *w = strstr(r.body, "\nlaurel_readmodel_waits_total ");
    assert_non_null(b);
    assert_non_null(w);
    assert_int_equal(strtoll(b + strlen("\nlaurel_readmodel_boards "), NULL, 10), 2);
    assert_true(strtoll(w + strlen("\nlaurel_readmodel_waits_total "), NULL, 10) > NPLAYERS);
    httpc_free(&r);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(submissions_follow_the_model),
        cmocka_unit_test(replays_change_nothing),
        cmocka_unit_test(top_pages_equal_model),
        cmocka_unit_test(every_rank_equals_model),
        cmocka_unit_test(around_equals_model),
        cmocka_unit_test(friends_equal_model),
        cmocka_unit_test(reads_went_through_the_read_model),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
