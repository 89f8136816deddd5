/* tests/unit/test_ratelim.c — the token-bucket table (lib/ratelim.h) on a clock the test
 * drives: refill, burst, the wait it reports, eviction in a full table, unlimited tables and
 * a clock that goes backwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/err.h"
#include "lib/ratelim.h"

#define SEC 1000000ULL

struct fixture {
    struct ratelim *rl;
};

static struct ratelim *table(struct fixture *f, uint32_t rate, uint32_t burst, size_t slots)
{
    struct ratelim_config cfg = {.rate = rate, .burst = burst, .slots = slots};
    assert_int_equal(ratelim_new(&cfg, &f->rl), 0);
    return f->rl;
}

static int setup(void **state)
{
    static struct fixture f;
    memset(&f, 0, sizeof f);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    ratelim_free(f->rl);
    return 0;
}

static uint64_t take(struct ratelim *rl, const char *key, uint64_t now)
{
    return ratelim_take(rl, key, strlen(key), now);
}

/* A new key starts with a full bucket: exactly @burst takes pass at one instant, the next is
 * refused with the wait until one token has refilled. */
static void burst_then_refused(void **state)
{
    struct ratelim *rl = table(*state, 10, 5, 64);
    uint64_t t = 1000 * SEC;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(take(rl, "k", t), 0);
    }
    assert_int_equal(take(rl, "k", t), SEC / 10);
    struct ratelim_stats st;
    ratelim_stats_get(rl, &st);
    assert_int_equal(st.limited, 1);
    assert_int_equal(st.used, 1);
}

/* Tokens come back at the rate: after a tenth of a second at 10/s one take passes, and a
 * partly refilled bucket reports only the rest of the wait. */
static void refill_at_the_rate(void **state)
{
    struct ratelim *rl = table(*state, 10, 1, 64);
    uint64_t t = 5 * SEC;
    assert_int_equal(take(rl, "k", t), 0);
    assert_int_equal(take(rl, "k", t + SEC / 40), SEC / 10 - SEC / 40);
    assert_int_equal(take(rl, "k", t + SEC / 10), 0);
    assert_int_equal(take(rl, "k", t + SEC / 10), SEC / 10);
}

/* However long a key is idle, its bucket holds @burst at most. */
static void refill_capped_at_burst(void **state)
{
    struct ratelim *rl = table(*state, 1000, 3, 64);
    assert_int_equal(take(rl, "k", 0), 0);
    uint64_t t = 3600 * SEC * 24 * 365;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(take(rl, "k", t), 0);
    }
    assert_int_not_equal(take(rl, "k", t), 0);
}

/* Burst 0 means one second's worth of the rate. */
static void burst_defaults_to_rate(void **state)
{
    struct ratelim *rl = table(*state, 4, 0, 64);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(take(rl, "k", SEC), 0);
    }
    assert_int_equal(take(rl, "k", SEC), SEC / 4);
}

/* Keys have their own buckets. */
static void keys_are_apart(void **state)
{
    struct ratelim *rl = table(*state, 1, 1, 64);
    assert_int_equal(take(rl, "a", SEC), 0);
    assert_int_not_equal(take(rl, "a", SEC), 0);
    assert_int_equal(take(rl, "b", SEC), 0);
}

/* Rate 0 is unlimited: everything passes and nothing is stored. */
static void rate_zero_is_unlimited(void **state)
{
    struct ratelim *rl = table(*state, 0, 0, 64);
    for (int i = 0; i < 10000; i++) {
        assert_int_equal(take(rl, "k", 0), 0);
    }
    struct ratelim_stats st;
    ratelim_stats_get(rl, &st);
    assert_int_equal(st.used, 0);
}

/* A flood of distinct keys never uses more than the table's slots; it evicts the least
 * recently used, so a key touched throughout keeps its (drained) bucket while the flood
 * passes through the rest of its set. */
static void flood_is_bounded_and_evicts_lru(void **state)
{
    struct ratelim *rl = table(*state, 1, 1, RATELIM_WAYS); /* one set */
    char key[32];
    uint64_t t = SEC;
    assert_int_equal(take(rl, "busy", t), 0);
    for (unsigned i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "addr-%u", i);
        t++;
        assert_int_equal(take(rl, key, t), 0); /* each new key: a full bucket */
        /* The busy key is touched every time, so it is never the oldest: still drained. */
        assert_int_not_equal(take(rl, "busy", t), 0);
    }
    struct ratelim_stats st;
    ratelim_stats_get(rl, &st);
    assert_int_equal(st.slots, RATELIM_WAYS);
    assert_int_equal(st.used, RATELIM_WAYS);
    assert_int_equal(st.evictions, 1000 - (RATELIM_WAYS - 1));
    /* The oldest flood key was evicted: it starts again with a full bucket. */
    assert_int_equal(take(rl, "addr-0", t), 0);
}

/* A clock that steps back adds no tokens, neither at the step nor when it moves forward
 * again over the interval already counted. */
static void time_going_backwards(void **state)
{
    struct ratelim *rl = table(*state, 1, 1, 64);
    uint64_t t = 100 * SEC;
    assert_int_equal(take(rl, "k", t), 0);
    assert_int_equal(take(rl, "k", t - 50 * SEC), SEC); /* back 50 s: still empty */
    /* Forward to where it was: 50 s of the new clock have passed, so the bucket is full
     * (1 token) once, not 50 times. */
    assert_int_equal(take(rl, "k", t), 0);
    assert_int_equal(take(rl, "k", t), SEC);
}

/* A zero-sized table is refused. */
static void zero_slots_refused(void **state)
{
    struct fixture *f = *state;
    struct ratelim_config cfg = {.rate = 1, .slots = 0};
    assert_int_equal(ratelim_new(&cfg, &f->rl), LR_EINVAL);
    f->rl = NULL;
}

/* A high rate over a long idle time neither overflows nor loses precision. */
static void high_rate_no_overflow(void **state)
{
    struct ratelim *rl = table(*state, UINT32_MAX, UINT32_MAX, 64);
    assert_int_equal(take(rl, "k", 0), 0);
    assert_int_equal(take(rl, "k", UINT64_MAX / 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(burst_then_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(refill_at_the_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(refill_capped_at_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(burst_defaults_to_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(keys_are_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(rate_zero_is_unlimited, setup, teardown),
        cmocka_unit_test_setup_teardown(flood_is_bounded_and_evicts_lru, setup, teardown),
        cmocka_unit_test_setup_teardown(time_going_backwards, setup, teardown),
        cmocka_unit_test_setup_teardown(zero_slots_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(high_rate_no_overflow, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
