/* tests/integration/test_api_int.h — what the files of the test_api binary share: the
 * cluster fixture (started once for the binary, reached through fx), the request and
 * assertion helpers (test_api.c), and each file's scenarios for main's list. */
#ifndef LAUREL_TEST_API_INT_H
#define LAUREL_TEST_API_INT_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "tests/lib/httpc.h"
#include "tests/lib/tdev.h"
#include "tests/lib/testlib.h"

#define ADMIN TDEV_ADMIN
#define API TDEV_API

struct fixture {
    struct tdev dev;
    unsigned keyseq; /* idempotency keys: unique for the run */
};

int reqf(struct httpc_resp *r, const char *method, const char *auth, const char *body,
         const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* test_api.c: the cluster of the run, request and assertion helpers (described where defined) */
extern struct fixture *fx;
int st(const char *method, const char *path, const char *auth, const char *body);
void expect(const struct httpc_resp *r, int status, const char *what);
void expect_err(const char *method, const char *path, const char *auth, const char *body,
                int status, const char *code);
void put_player(const char *id, const char *region, const char *guild);
void put_board(const char *id, const char *order, const char *op, const char *extra);
void put_game(const char *id);
void put_ach(const char *game, const char *ach, int points, int steps, int hidden);
int post_score(struct httpc_resp *r, const char *board, const char *player, int64_t score,
               int64_t sub, const char *key);
void score_ok(const char *board, const char *player, int64_t score, int64_t sub);
int post_unlock(struct httpc_resp *r, const char *player, const char *game, const char *ach,
                int steps, const char *key);
void unlock_ok(const char *player, const char *game, const char *ach);
int replayed(const struct httpc_resp *r);
double round2(double x);
void assert_num(double got, double want, const char *what);
void ids_of(const json_t *entries, char *out, size_t cap);
void assert_entries(const json_t *entries, int64_t first);
void utc_period(char *out, size_t cap, const char *fmt, int days_back);

/* test_api_catalog.c: players, the catalog, achievements and unlocks */
void players_put_get(void **state);
void catalog_put_get(void **state);
void achievement_listing_across_regions(void **state);
void unlocks_incremental_idempotent(void **state);

/* test_api_boards.c: score writes and board reads */
void scores_every_operator(void **state);
void events_batch(void **state);
void board_top_scopes_windows(void **state);
void board_cursor_paging(void **state);
void rank_and_around(void **state);
void ties_break_by_player_id(void **state);

/* test_api_views.c: the per-player views and the error conventions */
void friends_view(void **state);
void history_with_cursor(void **state);
void dashboard(void **state);
void stats(void **state);
void rewards_empty(void **state);
void error_conventions(void **state);

#endif
