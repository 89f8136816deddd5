/* tests/unit/test_rankidx_model.c — part of test_rankidx (test_rankidx.c): the reference
 * model, written from the order's definition and sharing no code with the index, the random
 * keys the tests draw, and check_against_model, which compares the index with the model's
 * sorted copy: contents, ranks, pages both ways and the index's own invariants. */
#include <stdio.h>
#include <stdlib.h>

#include "lib/err.h"
#include "shard/rankidx.h"
#include "tests/lib/testlib.h"
#include "test_rankidx_int.h"

/* ---- the reference order, written independently of the index ---- */

static void model_id(const struct fixture *f, const struct rankkey *k, const char **id, size_t *len)
{
    if (k->pid == RANKKEY_FOREIGN) {
        *id = k->id != NULL ? k->id : "";
        *len = k->idlen;
    } else {
        *id = f->names[k->pid];
        *len = f->lens[k->pid];
    }
}

static int model_cmp(const struct fixture *f, const struct rankkey *x, const struct rankkey *y)
{
    if (x->a != y->a) {
        return x->a < y->a ? -1 : 1;
    }
    if (x->b != y->b) {
        return x->b < y->b ? -1 : 1;
    }
    if (x->t != y->t) {
        return x->t < y->t ? -1 : 1;
    }
    const char *xi;
    const char *yi;
    size_t xl;
    size_t yl;
    model_id(f, x, &xi, &xl);
    model_id(f, y, &yi, &yl);
    for (size_t i = 0; i < xl && i < yl; i++) {
        if (xi[i] != yi[i]) {
            return (unsigned char)xi[i] < (unsigned char)yi[i] ? -1 : 1;
        }
    }
    return xl < yl ? -1 : (xl > yl ? 1 : 0);
}

static int model_qsort_cmp(const void *x, const void *y, void *f)
{
    return model_cmp(f, x, y);
}

/* The model's keys in order; the caller frees. */
struct rankkey *model_sorted(struct fixture *f, uint64_t *n)
{
    struct rankkey *v = malloc((f->n + 1) * sizeof *v);
    assert_non_null(v);
    uint64_t m = 0;
    for (uint32_t p = 0; p < NPLAYERS; p++) {
        if (f->has[p]) {
            v[m++] = f->cur[p];
        }
    }
    assert_int_equal(m, f->n);
    qsort_r(v, m, sizeof *v, model_qsort_cmp, f);
    *n = m;
    return v;
}

uint64_t sorted_count_before(struct fixture *f, const struct rankkey *v, uint64_t n,
                             const struct rankkey *k)
{
    uint64_t lo = 0;
    uint64_t hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (model_cmp(f, &v[mid], k) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* ---- random keys ---- */

static int64_t draw_a(struct fixture *f)
{
    switch (testrng_below(&f->rng, 8)) {
    case 0: return (int64_t)testrng_next(&f->rng); /* anywhere, negative too */
    case 1: return testrng_below(&f->rng, 2) ? INT64_MAX : INT64_MIN;
    default: return (int64_t)testrng_below(&f->rng, 40) - 20; /* small range: ties are common */
    }
}

struct rankkey draw_key(struct fixture *f, uint32_t pid)
{
    struct rankkey k = {
        .a = draw_a(f),
        .b = (int64_t)testrng_below(&f->rng, 2),
        .t = (int64_t)testrng_below(&f->rng, 6),
        .pid = pid,
        .idlen = 0,
        .id = NULL,
    };
    return k;
}

/* A probe: a stored key, or a foreign player whose id may equal, prefix or fall between
 * stored ids. */
static struct rankkey draw_probe(struct fixture *f, char *buf, size_t bufsize)
{
    struct rankkey k = draw_key(f, (uint32_t)testrng_below(&f->rng, NPLAYERS));
    if (f->n > 0 && testrng_below(&f->rng, 3) == 0) {
        uint32_t p;
        do {
            p = (uint32_t)testrng_below(&f->rng, NPLAYERS);
        } while (!f->has[p]);
        return f->cur[p];
    }
    if (testrng_below(&f->rng, 2) == 0) {
        static const char *const suffix[] = {"", "0", "!", "~"};
        int len = snprintf(buf, bufsize, "x%u%s", (unsigned)testrng_below(&f->rng, NPLAYERS + 2),
                           suffix[testrng_below(&f->rng, 4)]);
        if (testrng_below(&f->rng, 16) == 0) {
            len = (int)testrng_below(&f->rng, 2); /* "" or "x" */
        }
        k.pid = RANKKEY_FOREIGN;
        k.id = buf;
        k.idlen = (uint32_t)len;
    }
    return k;
}

static void assert_key_equal(const struct rankkey *x, const struct rankkey *y)
{
    assert_int_equal(x->a, y->a);
    assert_int_equal(x->b, y->b);
    assert_int_equal(x->t, y->t);
    assert_int_equal(x->pid, y->pid);
}

/* Full comparison of the index with the model: contents, ranks, pages and invariants. */
void check_against_model(struct fixture *f, int probes)
{
    uint64_t n;
    struct rankkey *v = model_sorted(f, &n);
    struct rankidx_iter it;
    struct rankkey k;

    assert_int_equal(rankidx_check(f->idx), 0);
    assert_int_equal(rankidx_count(f->idx), n);

    /* Whole walk forward. */
    if (n > 0) {
        assert_int_equal(rankidx_seek(f->idx, 0, &it), 0);
        for (uint64_t i = 0; i < n; i++) {
            assert_int_equal(it.rank0, i);
            assert_int_equal(rankidx_next(&it, &k), 1);
            assert_key_equal(&k, &v[i]);
        }
        assert_int_equal(rankidx_next(&it, &k), 0);
    }
    assert_int_equal(rankidx_seek(f->idx, n, &it), LR_ENOTFOUND);

    for (int i = 0; i < probes; i++) {
        char buf[32];
        struct rankkey p = draw_probe(f, buf, sizeof buf);
        uint64_t want = sorted_count_before(f, v, n, &p);
        assert_int_equal(rankidx_count_before(f->idx, &p), want);
        int present = want < n && model_cmp(f, &v[want], &p) == 0;
        assert_int_equal(rankidx_contains(f->idx, &p), present);
        if (n == 0) {
            continue;
        }
        /* A page forward and a walk backward from a random rank. */
        uint64_t r = testrng_below(&f->rng, n);
        assert_int_equal(rankidx_seek(f->idx, r, &it), 0);
        for (uint64_t j = r; j < n && j < r + 20; j++) {
            assert_int_equal(rankidx_next(&it, &k), 1);
            assert_key_equal(&k, &v[j]);
            assert_int_equal(it.rank0, j + 1);
        }
        assert_int_equal(rankidx_seek(f->idx, r, &it), 0);
        for (uint64_t j = r; j-- > 0 && j + 20 > r;) {
            assert_int_equal(rankidx_prev(&it, &k), 1);
            assert_key_equal(&k, &v[j]);
            assert_int_equal(it.rank0, j);
        }
        if (r < 20) {
            assert_int_equal(rankidx_prev(&it, &k), 0);
        }
    }
    free(v);
}

void model_insert(struct fixture *f, uint32_t p, struct rankkey k)
{
    /* A fresh key may collide with another player's only if the pids match, which they do
     * not, so every insert of a player without a key succeeds. */
    assert_int_equal(rankidx_insert(f->idx, &k), 0);
    f->cur[p] = k;
    f->has[p] = 1;
    f->n++;
}

void model_delete(struct fixture *f, uint32_t p)
{
    assert_int_equal(rankidx_delete(f->idx, &f->cur[p]), 0);
    assert_int_equal(rankidx_contains(f->idx, &f->cur[p]), 0);
    f->has[p] = 0;
    f->n--;
}
