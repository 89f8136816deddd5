/* tests/unit/test_rankidx.c — the order-statistic B+tree against a plain reference model.
 *
 * The model keeps each player's current key in a table and sorts a copy when it needs order,
 * with its own comparator written from the order's definition, so it shares no code with the
 * index. $LAUREL_SEED replays a run; $LAUREL_RANKIDX_OPS scales the model run (default
 * 200000) for slow sanitizer builds. The structural tests run twice: on nodes from malloc
 * (setup) and from a node pool (setup_pool), as a shard runs them.
 *
 * One binary, two files (test_rankidx_int.h): this one holds the fixture, the tests and main;
 * test_rankidx_model.c the reference model and the check of the index against it. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lib/err.h"
#include "shard/rankidx.h"
#include "tests/lib/testlib.h"
#include "test_rankidx_int.h"

static const char *names_id(void *ctx, uint32_t pid, size_t *len)
{
    struct fixture *f = ctx;
    if (pid >= NPLAYERS) {
        *len = 0;
        return "";
    }
    *len = f->lens[pid];
    return f->names[pid];
}

static int setup_with(void **state, int pooled)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->rng.s = testlib_seed(20240601);
    f->names = calloc(NPLAYERS, sizeof *f->names);
    f->lens = calloc(NPLAYERS, sizeof *f->lens);
    f->cur = calloc(NPLAYERS, sizeof *f->cur);
    f->has = calloc(NPLAYERS, 1);
    assert_true(f->names && f->lens && f->cur && f->has);
    for (uint32_t p = 0; p < NPLAYERS; p++) {
        int len = snprintf(f->names[p], sizeof f->names[p], "x%u", (unsigned)(NPLAYERS - p));
        f->lens[p] = (size_t)len;
    }
    if (pooled) {
        assert_int_equal(rankidx_pool_new(&f->pool), 0);
    }
    struct rankidx_names names = {f, names_id};
    assert_int_equal(rankidx_new(&names, f->pool, &f->idx), 0);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 0);
}

static int setup_pool(void **state)
{
    return setup_with(state, 1);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rankidx_free(f->idx);
    rankidx_pool_free(f->pool);
    free(f->names);
    free(f->lens);
    free(f->cur);
    free(f->has);
    free(f);
    return 0;
}

/* ---- tests ---- */

/* An empty index has no keys, ranks every probe first and cannot seek. */
static void test_empty(void **state)
{
    struct fixture *f = *state;
    struct rankkey k = {.a = 1, .b = 2, .t = 3, .pid = 4, .idlen = 0, .id = NULL};
    struct rankkey foreign = {
        .a = 1, .b = 2, .t = 3, .pid = RANKKEY_FOREIGN, .idlen = 2, .id = "zz"};
    struct rankidx_iter it;
    struct rankkey out;

    assert_int_equal(rankidx_count(f->idx), 0);
    assert_int_equal(rankidx_count_before(f->idx, &k), 0);
    assert_int_equal(rankidx_count_before(f->idx, &foreign), 0);
    assert_int_equal(rankidx_contains(f->idx, &k), 0);
    assert_int_equal(rankidx_seek(f->idx, 0, &it), LR_ENOTFOUND);
    assert_int_equal(rankidx_next(&it, &out), 0);
    assert_int_equal(rankidx_prev(&it, &out), 0);
    assert_int_equal(rankidx_check(f->idx), 0);
    assert_true(rankidx_memory(f->idx) > 0);
}

/* Inserting a key twice fails with LR_EEXIST and leaves one copy. */
static void test_insert_duplicate(void **state)
{
    struct fixture *f = *state;
    struct rankkey k = {.a = 5, .b = 0, .t = 1, .pid = 7, .idlen = 0, .id = NULL};

    assert_int_equal(rankidx_insert(f->idx, &k), 0);
    int rv = rankidx_insert(f->idx, &k);
    assert_int_equal(rv, LR_EEXIST);
    assert_string_equal(err_name(rv), "LR_EEXIST");
    assert_int_equal(rankidx_count(f->idx), 1);
    assert_int_equal(rankidx_check(f->idx), 0);
}

/* Deleting a key that is not there, or a foreign probe, fails with LR_ENOTFOUND. */
static void test_delete_missing(void **state)
{
    struct fixture *f = *state;
    struct rankkey k = {.a = 5, .b = 0, .t = 1, .pid = 7, .idlen = 0, .id = NULL};
    struct rankkey other = k;
    other.pid = 8;
    struct rankkey foreign = k;
    foreign.pid = RANKKEY_FOREIGN;
    foreign.id = f->names[7];
    foreign.idlen = (uint32_t)f->lens[7];

    assert_int_equal(rankidx_delete(f->idx, &k), LR_ENOTFOUND);
    assert_int_equal(rankidx_insert(f->idx, &k), 0);
    int rv = rankidx_delete(f->idx, &other);
    assert_int_equal(rv, LR_ENOTFOUND);
    assert_string_equal(err_message(rv), "not found");
    assert_int_equal(rankidx_delete(f->idx, &foreign), LR_ENOTFOUND);
    assert_int_equal(rankidx_insert(f->idx, &foreign), LR_EINVAL);
    assert_int_equal(rankidx_count(f->idx), 1);
    assert_int_equal(rankidx_delete(f->idx, &k), 0);
    assert_int_equal(rankidx_count(f->idx), 0);
    assert_int_equal(rankidx_check(f->idx), 0);
}

/* Keys tied on a, b and t order by id string, not by pid, and foreign probes rank among
 * them by their own id. */
static void test_ties_fall_to_id(void **state)
{
    struct fixture *f = *state;
    /* Ids: pid 29999 -> "x1", 29990 -> "x10", 29900 -> "x100", 29998 -> "x2": id order is
     * the reverse of pid order here, and "x1" is a prefix of "x10". */
    const uint32_t pids[] = {29998, 29900, 29999, 29990};
    const uint32_t order[] = {29999, 29990, 29900, 29998};
    for (size_t i = 0; i < 4; i++) {
        struct rankkey k = {.a = 3, .b = 0, .t = 9, .pid = pids[i], .idlen = 0, .id = NULL};
        assert_int_equal(rankidx_insert(f->idx, &k), 0);
    }
    struct rankkey lower = {.a = 2, .b = 5, .t = 100, .pid = 0, .idlen = 0, .id = NULL};
    assert_int_equal(rankidx_insert(f->idx, &lower), 0);

    struct rankidx_iter it;
    struct rankkey k;
    assert_int_equal(rankidx_seek(f->idx, 1, &it), 0);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(rankidx_next(&it, &k), 1);
        assert_int_equal(k.pid, order[i]);
        assert_null(k.id);
    }

    struct rankkey probe = {
        .a = 3, .b = 0, .t = 9, .pid = RANKKEY_FOREIGN, .idlen = 3, .id = "x1!"};
    assert_int_equal(rankidx_count_before(f->idx, &probe), 2); /* after "x1", before "x10" */
    probe.id = "x10";
    assert_int_equal(rankidx_count_before(f->idx, &probe), 2); /* equal to "x10": strictly */
    assert_int_equal(rankidx_contains(f->idx, &probe), 1);
    probe.id = "x15";
    assert_int_equal(rankidx_count_before(f->idx, &probe), 4); /* between "x100" and "x2" */
    probe.id = "x";
    probe.idlen = 1;
    assert_int_equal(rankidx_count_before(f->idx, &probe), 1); /* a prefix sorts first */
    probe.id = NULL;
    probe.idlen = 0;
    assert_int_equal(rankidx_count_before(f->idx, &probe), 1);
    probe.t = 10;
    assert_int_equal(rankidx_count_before(f->idx, &probe), 5); /* t decides before the id */

    struct rankkey x = {.a = 3, .b = 0, .t = 9, .pid = 29999, .idlen = 0, .id = NULL};
    struct rankkey y = x;
    y.pid = 29998;
    assert_true(rankidx_compare(f->idx, &x, &y) < 0);
    assert_true(rankidx_compare(f->idx, &y, &x) > 0);
    assert_int_equal(rankidx_compare(f->idx, &x, &x), 0);
    assert_int_equal(rankidx_check(f->idx), 0);
}

/* Without a name resolver every stored id reads as empty, so ties on a, b and t fall back to
 * the player number: still one total order. */
static void test_no_resolver_orders_ties_by_pid(void **state)
{
    (void)state;
    struct rankidx *idx;
    struct rankkey k5 = {.a = 1, .b = 1, .t = 1, .pid = 5, .idlen = 0, .id = NULL};
    struct rankkey k3 = k5;
    k3.pid = 3;
    assert_int_equal(rankidx_new(NULL, NULL, &idx), 0);
    assert_int_equal(rankidx_insert(idx, &k5), 0);
    assert_int_equal(rankidx_insert(idx, &k3), 0);
    assert_int_equal(rankidx_count_before(idx, &k3), 0);
    assert_int_equal(rankidx_count_before(idx, &k5), 1);
    assert_true(rankidx_compare(idx, &k3, &k5) < 0);
    assert_int_equal(rankidx_check(idx), 0);
    rankidx_free(idx);
}

/* Random inserts, deletes and moves with many ties agree with the model at every step:
 * grow past two inner levels, churn, shrink to a handful, and grow again. */
static void test_model_random_ops(void **state)
{
    struct fixture *f = *state;
    const char *env = getenv("LAUREL_RANKIDX_OPS");
    uint64_t ops = env != NULL ? strtoull(env, NULL, 0) : 200000;

    for (uint64_t op = 0; op < ops; op++) {
        /* Insert probability in 1/16ths by phase. */
        uint64_t phase = op * 5 / ops;
        static const uint64_t insert16[] = {14, 8, 3, 1, 13};
        uint32_t p = (uint32_t)testrng_below(&f->rng, NPLAYERS);
        uint64_t dice = testrng_below(&f->rng, 16);
        if (!f->has[p]) {
            if (dice < insert16[phase] || f->n == 0) {
                model_insert(f, p, draw_key(f, p));
            }
        } else if (dice < insert16[phase]) {
            /* A move: the player's score changed. */
            struct rankkey k = draw_key(f, p);
            int rv = rankidx_insert(f->idx, &f->cur[p]);
            assert_int_equal(rv, LR_EEXIST);
            model_delete(f, p);
            model_insert(f, p, k);
        } else {
            model_delete(f, p);
        }
        assert_int_equal(rankidx_count(f->idx), f->n);
        if (f->has[p]) {
            assert_int_equal(rankidx_contains(f->idx, &f->cur[p]), 1);
        }
        if (op % 4096 == 0 || (phase == 3 && f->n < 300 && op % 64 == 0)) {
            check_against_model(f, 64);
        }
    }
    check_against_model(f, 256);
}

/* Sequential and reverse-sequential inserts (time-ordered boards) keep the invariants, and
 * deleting everything in random order frees every node. */
static void test_sequential_then_drain(void **state)
{
    struct fixture *f = *state;
    size_t empty = rankidx_memory(f->idx);
    for (uint32_t p = 0; p < NPLAYERS / 2; p++) {
        model_insert(f, p, (struct rankkey){.a = p, .b = 0, .t = 0, .pid = p});
    }
    for (uint32_t p = NPLAYERS; p-- > NPLAYERS / 2;) {
        model_insert(f, p, (struct rankkey){.a = -(int64_t)p, .b = 0, .t = 0, .pid = p});
    }
    check_against_model(f, 256);
    uint32_t *perm = malloc(NPLAYERS * sizeof *perm);
    assert_non_null(perm);
    for (uint32_t i = 0; i < NPLAYERS; i++) {
        perm[i] = i;
    }
    for (uint32_t i = 0; i < NPLAYERS; i++) {
        uint32_t j = i + (uint32_t)testrng_below(&f->rng, NPLAYERS - i);
        uint32_t p = perm[j];
        perm[j] = perm[i];
        perm[i] = p;
        model_delete(f, p);
        if (i % 1000 == 0) {
            assert_int_equal(rankidx_check(f->idx), 0);
        }
    }
    free(perm);
    assert_int_equal(rankidx_count(f->idx), 0);
    assert_int_equal(rankidx_check(f->idx), 0);
    assert_int_equal(rankidx_memory(f->idx), empty);
}

/* Loading sorted keys builds the same index the inserts would, and it stays usable. */
static void test_load_sorted(void **state)
{
    struct fixture *f = *state;
    for (uint32_t p = 0; p < NPLAYERS; p += 2) {
        model_insert(f, p, draw_key(f, p));
    }
    uint64_t n;
    struct rankkey *v = model_sorted(f, &n);
    struct rankidx *fresh;
    struct rankidx_names names = {f, names_id};
    assert_int_equal(rankidx_new(&names, f->pool, &fresh), 0);
    assert_int_equal(rankidx_load(fresh, v, n), 0);
    rankidx_free(f->idx);
    f->idx = fresh;
    check_against_model(f, 256);
    /* Loading over a non-empty index replaces it. */
    assert_int_equal(rankidx_load(f->idx, v, n), 0);
    check_against_model(f, 16);
    /* Every leaf is full after a load, so these inserts split and share. */
    for (uint32_t p = 1; p < NPLAYERS; p += 2) {
        model_insert(f, p, draw_key(f, p));
    }
    check_against_model(f, 256);
    for (uint32_t p = 0; p < NPLAYERS; p += 3) {
        if (f->has[p]) {
            model_delete(f, p);
        }
    }
    check_against_model(f, 256);
    /* Small loads: one key, one leaf, a leaf and a bit. */
    for (uint64_t m = 0; m <= 200 && m <= n; m += 67) {
        assert_int_equal(rankidx_load(f->idx, v, m), 0);
        assert_int_equal(rankidx_check(f->idx), 0);
        assert_int_equal(rankidx_count(f->idx), m);
        assert_int_equal(rankidx_count_before(f->idx, &v[m < n ? m : n - 1]), m < n ? m : n - 1);
    }
    assert_int_equal(rankidx_load(f->idx, v, 1), 0);
    assert_int_equal(rankidx_check(f->idx), 0);
    assert_int_equal(rankidx_load(f->idx, NULL, 0), 0);
    assert_int_equal(rankidx_count(f->idx), 0);
    assert_int_equal(rankidx_check(f->idx), 0);
    free(v);
}

/* Deleting long runs of neighbouring keys from a packed index empties whole subtrees, so
 * leaves and inner nodes merge and borrow, and deleting the minimum again and again rewrites
 * the separators up to the root. */
static void test_range_delete_rebalances(void **state)
{
    struct fixture *f = *state;
    for (uint32_t p = 0; p < NPLAYERS; p++) {
        f->cur[p] = draw_key(f, p);
        f->has[p] = 1;
    }
    f->n = NPLAYERS;
    uint64_t n;
    struct rankkey *v = model_sorted(f, &n);
    assert_int_equal(rankidx_load(f->idx, v, n), 0);
    free(v);
    check_against_model(f, 16);

    struct rankidx_iter it;
    struct rankkey k;
    for (int run = 0; run < 4; run++) {
        for (int i = 0; i < 6000; i++) {
            /* The minimum, the maximum, then two runs from inside. */
            uint64_t count = rankidx_count(f->idx);
            uint64_t from = run == 0 ? 0 : run == 1 ? count - 1 : count / (uint64_t)run;
            assert_int_equal(rankidx_seek(f->idx, from, &it), 0);
            assert_int_equal(rankidx_next(&it, &k), 1);
            model_delete(f, k.pid);
            if (i % 500 == 0) {
                assert_int_equal(rankidx_check(f->idx), 0);
            }
        }
        check_against_model(f, 64);
    }
}

/* Unsorted, duplicate or foreign input is rejected with LR_EINVAL and the index is
 * unchanged. */
static void test_load_rejects_bad_input(void **state)
{
    struct fixture *f = *state;
    for (uint32_t p = 0; p < 1000; p++) {
        model_insert(f, p, draw_key(f, p));
    }
    uint64_t n;
    struct rankkey *v = model_sorted(f, &n);
    size_t mem = rankidx_memory(f->idx);

    struct rankkey saved = v[500];
    v[500] = v[400]; /* out of order and a duplicate */
    int rv = rankidx_load(f->idx, v, n);
    assert_int_equal(rv, LR_EINVAL);
    assert_string_equal(err_name(rv), "LR_EINVAL");
    v[500] = saved;
    saved = v[n - 1];
    v[n - 1] = v[n - 2]; /* a duplicate at the end */
    assert_int_equal(rankidx_load(f->idx, v, n), LR_EINVAL);
    v[n - 1] = saved;
    saved = v[0];
    v[0].pid = RANKKEY_FOREIGN;
    v[0].id = "x";
    v[0].idlen = 1;
    assert_int_equal(rankidx_load(f->idx, v, n), LR_EINVAL);
    v[0] = saved;

    assert_int_equal(rankidx_memory(f->idx), mem);
    check_against_model(f, 64);
    free(v);
}

static const char *big_id(void *ctx, uint32_t pid, size_t *len)
{
    (void)ctx;
    (void)pid;
    *len = 0;
    return ""; /* keys below are distinct on t, so ids never decide */
}

/* After a million random inserts the index costs under 48 bytes a key, and after a load
 * under 34. */
static void test_memory_per_entry(void **state)
{
    struct fixture *f = *state;
    const uint32_t n = 1000000;
    struct rankidx_names names = {NULL, big_id};
    struct rankidx *idx;
    assert_int_equal(rankidx_new(&names, NULL, &idx), 0);
    for (uint32_t p = 0; p < n; p++) {
        struct rankkey k = {
            .a = -(int64_t)testrng_below(&f->rng, 1000000000), .b = 0, .t = p, .pid = p};
        assert_int_equal(rankidx_insert(idx, &k), 0);
    }
    double inserted = (double)rankidx_memory(idx) / n;
    print_message("# rankidx: %.2f bytes/entry after random inserts\n", inserted);
    assert_true(inserted < 48.0);
    assert_int_equal(rankidx_check(idx), 0);

    struct rankkey *v = malloc(n * sizeof *v);
    assert_non_null(v);
    struct rankidx_iter it;
    assert_int_equal(rankidx_seek(idx, 0, &it), 0);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(rankidx_next(&it, &v[i]), 1);
    }
    rankidx_free(idx);
    assert_int_equal(rankidx_new(&names, NULL, &idx), 0);
    assert_int_equal(rankidx_load(idx, v, n), 0);
    double loaded = (double)rankidx_memory(idx) / n;
    print_message("# rankidx: %.2f bytes/entry after load\n", loaded);
    assert_true(loaded < 34.0);
    assert_int_equal(rankidx_check(idx), 0);
    assert_int_equal(rankidx_count_before(idx, &v[n / 3]), n / 3);
    free(v);
    rankidx_free(idx);
}

#if !defined(__SANITIZE_ADDRESS__)
static size_t vm_bytes(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    assert_non_null(fp);
    assert_int_equal(fscanf(fp, "%lu", &pages), 1);
    fclose(fp);
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}
#endif

/* When memory runs out (malloc or a pool's next chunk), insert and load fail with LR_ENOMEM
 * and leave the index exactly as it was. The address-space limit makes malloc fail for real; ASan's
 * shadow memory cannot live under such a limit, so the sanitizer build skips this. */
static void test_enomem_leaves_index_unchanged(void **state)
{
#if defined(__SANITIZE_ADDRESS__)
    (void)state;
    skip();
#else
    struct fixture *f = *state;
    const uint32_t nload = 2000000;
    struct rankidx_names names = {NULL, big_id};
    struct rankidx *idx;
    struct rankkey *v = malloc(nload * sizeof *v);
    assert_non_null(v);
    for (uint32_t i = 0; i < nload; i++) {
        v[i] = (struct rankkey){.a = i, .b = 0, .t = 0, .pid = i};
    }
    assert_int_equal(rankidx_new(&names, f->pool, &idx), 0);
    for (uint32_t p = 0; p < 20000; p++) {
        struct rankkey k = {.a = (int64_t)testrng_next(&f->rng), .b = 0, .t = p, .pid = p};
        assert_int_equal(rankidx_insert(idx, &k), 0);
    }

    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_AS, &old), 0);
    struct rlimit lim = old;
    lim.rlim_cur = vm_bytes() + 8 * 1024 * 1024;
    assert_int_equal(setrlimit(RLIMIT_AS, &lim), 0);
    int insert_rv = 0;
    uint32_t p;
    struct rankkey k;
    for (p = 20000; p < 10000000; p++) {
        k = (struct rankkey){.a = (int64_t)testrng_next(&f->rng), .b = 0, .t = p, .pid = p};
        insert_rv = rankidx_insert(idx, &k);
        if (insert_rv != 0) {
            break;
        }
    }
    uint64_t count = rankidx_count(idx);
    size_t mem = rankidx_memory(idx);
    int check_rv = rankidx_check(idx);
    /* Room for load's scratch array of node pointers but not for the nodes. */
    lim.rlim_cur += 1024 * 1024;
    assert_int_equal(setrlimit(RLIMIT_AS, &lim), 0);
    int load_rv = rankidx_load(idx, v, nload);
    assert_int_equal(setrlimit(RLIMIT_AS, &old), 0);

    assert_int_equal(insert_rv, LR_ENOMEM);
    assert_int_equal(check_rv, 0);
    assert_int_equal(count, p);
    assert_int_equal(rankidx_contains(idx, &k), 0);
    assert_int_equal(load_rv, LR_ENOMEM);
    assert_int_equal(rankidx_count(idx), count);
    assert_int_equal(rankidx_memory(idx), mem);
    assert_int_equal(rankidx_check(idx), 0);
    /* With memory back, the same insert and the load succeed. */
    assert_int_equal(rankidx_insert(idx, &k), 0);
    assert_int_equal(rankidx_check(idx), 0);
    assert_int_equal(rankidx_load(idx, v, nload), 0);
    assert_int_equal(rankidx_check(idx), 0);
    free(v);
    rankidx_free(idx);
#endif
}

/* Nodes freed by deletes, merges and rankidx_free go back to the pool and are reused, by the
 * same index or another, so churn does not grow the pool; and many small indexes share one
 * chunk. */
static void test_pool_reuses_freed_nodes(void **state)
{
    struct fixture *f = *state;
    const uint32_t n = 20000;
    size_t empty = rankidx_memory(f->idx);
    for (uint32_t p = 0; p < n; p++) {
        model_insert(f, p, draw_key(f, p));
    }
    size_t grown = rankidx_pool_memory(f->pool);
    size_t held = rankidx_memory(f->idx);
    assert_true(grown >= held - empty);
    uint64_t nk;
    struct rankkey *v = model_sorted(f, &nk);
    assert_int_equal(nk, n);

    /* Drain and refill the same index with the same keys in the same order. */
    for (uint32_t p = 0; p < n; p++) {
        model_delete(f, p);
    }
    assert_int_equal(rankidx_memory(f->idx), empty);
    assert_int_equal(rankidx_pool_memory(f->pool), grown);
    for (uint32_t p = 0; p < n; p++) {
        model_insert(f, p, f->cur[p]);
    }
    assert_int_equal(rankidx_memory(f->idx), held);
    assert_int_equal(rankidx_pool_memory(f->pool), grown);
    check_against_model(f, 64);

    /* A second index on the pool takes the first one's nodes once it is freed. */
    rankidx_free(f->idx);
    struct rankidx_names names = {f, names_id};
    assert_int_equal(rankidx_new(&names, f->pool, &f->idx), 0);
    assert_int_equal(rankidx_load(f->idx, v, n), 0);
    assert_int_equal(rankidx_pool_memory(f->pool), grown);
    check_against_model(f, 64);
    free(v);

    /* Fifty small indexes fit in one chunk of a fresh pool. */
    struct rankidx_pool *pool;
    struct rankidx *small[50];
    assert_int_equal(rankidx_pool_new(&pool), 0);
    size_t none = rankidx_pool_memory(pool);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(rankidx_new(&names, pool, &small[i]), 0);
        for (uint32_t p = 0; p < 10; p++) {
            struct rankkey k = draw_key(f, p);
            assert_int_equal(rankidx_insert(small[i], &k), 0);
        }
        assert_int_equal(rankidx_check(small[i]), 0);
    }
    /* One 2 MiB chunk and a little bookkeeping. */
    assert_true(rankidx_pool_memory(pool) - none <= ((size_t)2 << 20) + 4096);
    for (int i = 0; i < 50; i++) {
        rankidx_free(small[i]);
    }
    rankidx_pool_free(pool);
}

/* A leaf's parent keeps its hints as byte-sized distances from the leaf's minimum, scaled
 * to the leaf's span: keys spread far apart must rank exactly, probes on either side of every
 * key included, as keys come and go. */
static void test_rank_across_hint_range(void **state)
{
    struct fixture *f = *state;
    const int64_t step = (int64_t)(UINT32_MAX / 40); /* ~40 keys a leaf within range */
    for (uint32_t p = 0; p < NPLAYERS; p++) {
        struct rankkey k = {.a = (int64_t)p * step - 1000 * step, .b = 0, .t = 0, .pid = p};
        model_insert(f, p, k);
    }
    check_against_model(f, 256);
    for (uint32_t p = 0; p < NPLAYERS; p += 3) {
        model_delete(f, p);
    }
    check_against_model(f, 256);
    uint64_t n;
    struct rankkey *v = model_sorted(f, &n);
    for (uint64_t r = 0; r < n; r++) {
        struct rankkey below = v[r];
        below.a--;
        below.pid = RANKKEY_FOREIGN;
        struct rankkey above = v[r];
        above.a++;
        above.pid = RANKKEY_FOREIGN;
        assert_int_equal(rankidx_count_before(f->idx, &v[r]), r);
        assert_int_equal(rankidx_count_before(f->idx, &below), r);
        assert_int_equal(rankidx_count_before(f->idx, &above), r + 1);
    }
    free(v);
}

/* Clustered keys with a few outliers at both ends of the int64 range make a leaf's scaled
 * hints all fall in one bucket, so a rank reads several of the leaf's lines: it must still be
 * exact. */
static void test_rank_with_clustered_hints(void **state)
{
    struct fixture *f = *state;
    for (uint32_t p = 0; p < NPLAYERS; p++) {
        int64_t a = (int64_t)(p % 97) - 48;
        if (p % 101 == 0) {
            a = p % 2 ? INT64_MAX - (int64_t)p : INT64_MIN + 1 + (int64_t)p;
        }
        struct rankkey k = {.a = a, .b = (int64_t)(p % 7), .t = (int64_t)p, .pid = p};
        model_insert(f, p, k);
    }
    check_against_model(f, 256);
    for (uint32_t p = 0; p < NPLAYERS; p += 5) {
        model_delete(f, p);
    }
    check_against_model(f, 256);
    uint64_t n;
    struct rankkey *v = model_sorted(f, &n);
    for (uint64_t r = 0; r < n; r++) {
        struct rankkey above = v[r];
        above.t++;
        above.pid = RANKKEY_FOREIGN;
        struct rankkey below = v[r];
        below.a--;
        below.pid = RANKKEY_FOREIGN;
        assert_int_equal(rankidx_count_before(f->idx, &v[r]), r);
        assert_int_equal(rankidx_count_before(f->idx, &above),
                         sorted_count_before(f, v, n, &above));
        assert_int_equal(rankidx_count_before(f->idx, &below),
                         sorted_count_before(f, v, n, &below));
    }
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insert_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ties_fall_to_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_resolver_orders_ties_by_pid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_random_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_then_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_sorted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_delete_rebalances, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_rejects_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_per_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enomem_leaves_index_unchanged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_random_ops, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_then_drain, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_load_sorted, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_range_delete_rebalances, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_enomem_leaves_index_unchanged, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_pool_reuses_freed_nodes, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_rank_across_hint_range, setup_pool, teardown),
        cmocka_unit_test_setup_teardown(test_rank_with_clustered_hints, setup_pool, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
