/* tests/unit/test_rankidx_int.h — what the two files of the test_rankidx binary share: the
 * fixture (the index and the model's table of current keys) and the reference model's
 * functions (test_rankidx_model.c) the tests call. */
#ifndef LAUREL_TEST_RANKIDX_INT_H
#define LAUREL_TEST_RANKIDX_INT_H

#include "shard/rankidx.h"
#include "tests/lib/testlib.h"

#define NPLAYERS 30000

struct fixture {
    struct rankidx_pool *pool; /* NULL: the index allocates with malloc */
    struct rankidx *idx;
    struct testrng rng;
    char (*names)[16]; /* id of each pid: "x" + decimal(NPLAYERS - pid), so mostly reversed */
    size_t *lens;
    struct rankkey *cur; /* model: current key of each player */
    unsigned char *has;
    uint64_t n;
};

/* test_rankidx_model.c: the reference order, random keys and the check against the index
 * (described where defined) */
struct rankkey *model_sorted(struct fixture *f, uint64_t *n);
uint64_t sorted_count_before(struct fixture *f, const struct rankkey *v, uint64_t n,
                             const struct rankkey *k);
struct rankkey draw_key(struct fixture *f, uint32_t pid);
void check_against_model(struct fixture *f, int probes);
void model_insert(struct fixture *f, uint32_t p, struct rankkey k);
void model_delete(struct fixture *f, uint32_t p);

#endif
