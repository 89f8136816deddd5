/* tests/unit/test_rankkey.c — the one comparator of a board's order (shard/rankkey.h) against
 * API.md's rule: score by the board's order, then subscore by the same order, then the
 * earlier updated_at, then player_id ascending. Every rule is checked on a desc and on an asc
 * board, and a model check sorts random entries by the rule written out here in plain terms
 * and by the comparator, which must agree. */
#include <stdlib.h>
#include <string.h>

#include "shard/rankkey.h"
#include "tests/lib/testlib.h"

enum { ASC = 0, DESC = 1 };

/* An entry as API.md speaks of it. */
struct entry {
    int64_t score, subscore, updated_ms;
    const char *id;
};

static struct rankkey key_of(int desc, const struct entry *e)
{
    struct rankkey k = {0};
    rankkey_fold(&k, desc, e->score, e->subscore, e->updated_ms);
    k.pid = RANKKEY_FOREIGN;
    k.id = e->id;
    k.idlen = (uint32_t)strlen(e->id);
    return k;
}

/* <0 when @x ranks before @y on a board of order @desc. */
static int order(int desc, const struct entry *x, const struct entry *y)
{
    struct rankkey kx = key_of(desc, x), ky = key_of(desc, y);
    int c = rankkey_cmp(&kx, x->id, &ky, y->id);
    /* The comparator is antisymmetric: swapping the operands flips the answer. */
    int r = rankkey_cmp(&ky, y->id, &kx, x->id);
    assert_int_equal(c, -r);
    return c;
}

/* A higher score ranks first on a desc board, a lower one on an asc board, whatever the
 * subscore, time and id say. */
static void score_decides_by_board_order(void **state)
{
    (void)state;
    struct entry hi = {100, 0, 9000, "zed"}, lo = {99, 50, 1000, "amy"};
    assert_true(order(DESC, &hi, &lo) < 0);
    assert_true(order(ASC, &lo, &hi) < 0);
    assert_true(order(ASC, &hi, &lo) > 0);
}

/* On equal scores the subscore decides, in the board's order too. */
static void subscore_follows_board_order(void **state)
{
    (void)state;
    struct entry a = {7, 3, 9000, "zed"}, b = {7, 2, 1000, "amy"};
    assert_true(order(DESC, &a, &b) < 0);
    assert_true(order(ASC, &b, &a) < 0);
}

/* On equal score and subscore the earlier updated_at ranks first, on both orders: time is
 * not folded by the board's order. */
static void earlier_update_first_in_both_orders(void **state)
{
    (void)state;
    struct entry early = {7, 2, 1000, "zed"}, late = {7, 2, 1001, "amy"};
    assert_true(order(DESC, &early, &late) < 0);
    assert_true(order(ASC, &early, &late) < 0);
}

/* On a full tie the player id decides, ascending bytewise, on both orders; a shorter id that
 * is a prefix of another comes first; equal ids are equal keys. */
static void player_id_ascending_in_both_orders(void **state)
{
    (void)state;
    struct entry a = {7, 2, 1000, "alice"}, b = {7, 2, 1000, "bob"};
    struct entry pre = {7, 2, 1000, "ali"}, up = {7, 2, 1000, "Zed"};
    for (int desc = 0; desc <= 1; desc++) {
        assert_true(order(desc, &a, &b) < 0);
        assert_true(order(desc, &pre, &a) < 0);
        assert_true(order(desc, &up, &a) < 0); /* bytewise: 'Z' < 'a' */
        assert_int_equal(order(desc, &a, &a), 0);
    }
}

/* Extreme scores (API.md bounds them by 2^53-1) fold without overflow. */
static void bounds_fold_exactly(void **state)
{
    (void)state;
    const int64_t max = (INT64_C(1) << 53) - 1;
    struct entry top = {max, max, 0, "a"}, bottom = {-max, -max, 0, "a"};
    assert_true(order(DESC, &top, &bottom) < 0);
    assert_true(order(ASC, &bottom, &top) < 0);
    struct rankkey k = key_of(DESC, &top);
    assert_int_equal(rankkey_score(&k, DESC), max);
    assert_int_equal(rankkey_subscore(&k, DESC), max);
}

/* The rule spelled out in the terms of API.md, independent of the folding. */
static int model_order(int desc, const struct entry *x, const struct entry *y)
{
    if (x->score != y->score) {
        return (desc ? x->score > y->score : x->score < y->score) ? -1 : 1;
    }
    if (x->subscore != y->subscore) {
        return (desc ? x->subscore > y->subscore : x->subscore < y->subscore) ? -1 : 1;
    }
    if (x->updated_ms != y->updated_ms) {
        return x->updated_ms < y->updated_ms ? -1 : 1;
    }
    int c = strcmp(x->id, y->id); /* ids hold no NUL: strcmp is bytewise with prefix first */
    return c < 0 ? -1 : c > 0;
}

/* Random entries with many ties on each field: the comparator agrees with the model on every
 * pair, on both orders. */
static void agrees_with_model_on_random_pairs(void **state)
{
    (void)state;
    static const char *ids[] = {"a", "ab", "abc", "b", "B", "a_1", "a.1", "zz", "z"};
    struct testrng rng = {testlib_seed(12)};
    struct entry v[64];
    for (size_t i = 0; i < 64; i++) {
        v[i].score = (int64_t)testrng_below(&rng, 5) - 2;
        v[i].subscore = (int64_t)testrng_below(&rng, 3);
        v[i].updated_ms = (int64_t)testrng_below(&rng, 3);
        v[i].id = ids[testrng_below(&rng, sizeof ids / sizeof ids[0])];
    }
    for (int desc = 0; desc <= 1; desc++) {
        for (size_t i = 0; i < 64; i++) {
            for (size_t j = 0; j < 64; j++) {
                int c = order(desc, &v[i], &v[j]);
                assert_int_equal(c < 0 ? -1 : c > 0, model_order(desc, &v[i], &v[j]));
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(score_decides_by_board_order),
        cmocka_unit_test(subscore_follows_board_order),
        cmocka_unit_test(earlier_update_first_in_both_orders),
        cmocka_unit_test(player_id_ascending_in_both_orders),
        cmocka_unit_test(bounds_fold_exactly),
        cmocka_unit_test(agrees_with_model_on_random_pairs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
