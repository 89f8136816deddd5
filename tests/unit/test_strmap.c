/* tests/unit/test_strmap.c — the string map against a plain model: puts, replaces, deletes and
 * random evictions in any mix leave exactly the model's keys, each with its value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/strmap.h"

#define KEYS 512

struct model {
    int present[KEYS];
    uintptr_t val[KEYS];
    size_t count;
};

static size_t key_of(unsigned i, char *buf)
{
    return (size_t)snprintf(buf, 32, "player-%u", i);
}

/* Every key of the model is in @m with its value, no other key is, and the counts agree. */
static void check_against(const struct strmap *m, const struct model *md)
{
    char k[32];
    assert_int_equal(m->count, md->count);
    for (unsigned i = 0; i < KEYS; i++) {
        void *v = strmap_get(m, k, key_of(i, k));
        if (md->present[i]) {
            assert_ptr_equal(v, (void *)md->val[i]);
        } else {
            assert_null(v);
        }
    }
    size_t seen = 0, pos = 0;
    while (strmap_next(m, &pos) != NULL) {
        seen++;
    }
    assert_int_equal(seen, md->count);
}

/* The evicted entry is one that was present, and only it goes. */
static void evict_one(struct strmap *m, struct model *md, uint64_t seed)
{
    char k[32];
    size_t before = m->count;
    strmap_evict_one(m, seed);
    if (before == 0) {
        assert_int_equal(m->count, 0);
        return;
    }
    assert_int_equal(m->count, before - 1);
    unsigned gone = 0;
    for (unsigned i = 0; i < KEYS; i++) {
        if (md->present[i] && strmap_get(m, k, key_of(i, k)) == NULL) {
            md->present[i] = 0;
            md->count--;
            gone++;
        }
    }
    assert_int_equal(gone, 1);
}

static void model_mix(void **state)
{
    (void)state;
    struct strmap m;
    struct model md;
    char k[32];
    uint64_t rng = 0x5eed;
    memset(&md, 0, sizeof md);
    strmap_init(&m);
    evict_one(&m, &md, 7); /* empty: a no-op */
    for (int step = 0; step < 20000; step++) {
        rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
        unsigned i = (unsigned)(rng >> 33) % KEYS;
        unsigned op = (unsigned)(rng >> 20) % 8;
        if (op < 4) {
            uintptr_t v = (uintptr_t)step + 1;
            assert_int_equal(strmap_put(&m, k, key_of(i, k), (void *)v), 0);
            md.count += md.present[i] ? 0 : 1;
            md.present[i] = 1;
            md.val[i] = v;
        } else if (op < 6) {
            strmap_del(&m, k, key_of(i, k));
            md.count -= md.present[i] ? 1 : 0;
            md.present[i] = 0;
        } else {
            evict_one(&m, &md, rng);
        }
        if (step % 500 == 0) {
            check_against(&m, &md);
        }
    }
    check_against(&m, &md);
    /* Evicting until empty empties it. */
    while (m.count > 0) {
        evict_one(&m, &md, rng++);
    }
    check_against(&m, &md);
    strmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(model_mix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
