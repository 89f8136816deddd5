/* tests/integration/test_garbage_shard.c — part of test_garbage (test_garbage.c): mutated
 * entries applied by the real shard on real LMDB, which must stay consistent with itself, across
 * a reopen and with a second replica; an aborted group and a full map. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "shard/mp.h"
#include "shard/shard.h"
#include "tests/lib/testlib.h"
#include "test_garbage_int.h"

/* ---- the real shard --------------------------------------------------------------------- */

/* What the sink saw for the entry being applied, and in total. */
struct sink_state {
    uint32_t next_i;                     /* results arrive for commands 0, 1, ... in order */
    uint64_t results, events, status[6]; /* status[k]: results with status k00..k99 */
    uint64_t replayed;
};

/* A body must be exactly one msgpack map. */
static void check_body(const char *body, size_t len)
{
    struct mp r;
    assert_true(len > 0);
    assert_true(((unsigned char)body[0] & 0xf0) == 0x80 || (unsigned char)body[0] == 0xde ||
                (unsigned char)body[0] == 0xdf);
    mp_init(&r, body, len);
    mp_skip(&r);
    assert_true(mp_done(&r));
}

static void sink_result(void *data, uint32_t i, int status, const char *body, size_t len,
                        int replayed)
{
    struct sink_state *st = data;
    assert_int_equal(i, st->next_i);
    st->next_i++;
    assert_true(status >= 200 && status <= 599);
    check_body(body, len);
    st->results++;
    st->status[status / 100]++;
    st->replayed += replayed != 0;
}

static void sink_event(void *data, const char *body, size_t len)
{
    struct sink_state *st = data;
    check_body(body, len);
    st->events++;
}

/* One replica under test and the entries of its open group (to retry after a full map). */
struct replica {
    char *dir;
    struct shard *s;
    uint64_t index;
    struct buf pending[GROUP];
    uint32_t npending;
    uint32_t grows;
};

static void replica_open_sized(struct replica *r, int fast, uint64_t map_size)
{
    struct shard_config cfg = {r->dir, "eu", map_size, fast};
    char errmsg[LR_ERRMSG_SIZE];
    int rv = shard_open(&cfg, &r->s, errmsg);
    if (rv != 0) {
        fail_msg("shard_open: %s: %s", err_name(rv), errmsg);
    }
}

static void replica_open(struct replica *r, int fast)
{
    replica_open_sized(r, fast, 64u << 20);
}

/* Re-apply the open group from the committed index after an abort. */
static void replica_replay(struct replica *r, uint32_t count)
{
    uint64_t at = shard_applied_index(r->s);
    assert_int_equal(at + r->npending, r->index);
    for (uint32_t i = 0; i < count; i++) {
        int rv = shard_apply(r->s, ++at, r->pending[i].p, r->pending[i].n, NULL);
        if (rv != 0) {
            fail_msg("replay at %llu: %s: %s", (unsigned long long)at, err_name(rv),
                     shard_errmsg(r->s));
        }
    }
}

/* Commit the group; a full map (the commit writes too) aborts it: grow, replay, retry. */
static void replica_commit(struct replica *r)
{
    int rv;
    while ((rv = shard_commit(r->s)) == LR_EMAPFULL) {
        assert_int_equal(shard_grow(r->s), 0);
        r->grows++;
        replica_replay(r, r->npending);
    }
    if (rv != 0) {
        fail_msg("shard_commit: %s: %s", err_name(rv), shard_errmsg(r->s));
    }
    r->npending = 0;
}

/* Apply one entry at the next index; on a full map, abort, grow and re-apply the group. */
static void replica_apply(struct replica *r, const char *buf, size_t len,
                          const struct shard_sink *sink, uint32_t group)
{
    assert_true(r->npending < GROUP);
    buf_set(&r->pending[r->npending++], buf, len);
    r->index++;
    for (;;) {
        /* An exact-size copy, so ASan sees reads past the end. */
        char *p = malloc(len ? len : 1);
        assert_non_null(p);
        memcpy(p, buf, len);
        int rv = shard_apply(r->s, r->index, p, len, sink);
        free(p);
        if (rv == 0) {
            break;
        }
        if (rv != LR_EMAPFULL) {
            fail_msg("shard_apply at %llu: %s: %s", (unsigned long long)r->index, err_name(rv),
                     shard_errmsg(r->s));
        }
        /* Drop the group, grow, and apply it again from the committed index. */
        assert_int_equal(shard_abort(r->s), 0);
        assert_int_equal(shard_grow(r->s), 0);
        r->grows++;
        if (sink != NULL) { /* this entry's results start over */
            ((struct sink_state *)sink->data)->next_i = 0;
        }
        replica_replay(r, r->npending - 1);
    }
    assert_int_equal(shard_applied_index(r->s), r->index);
    if (r->npending == group) {
        replica_commit(r);
    }
}

static void replica_close(struct replica *r)
{
    shard_close(r->s);
    r->s = NULL;
    for (uint32_t i = 0; i < GROUP; i++) {
        free(r->pending[i].p);
    }
    testlib_rmrf(r->dir);
    free(r->dir);
}

/* Mutated entries applied to a real shard leave it consistent, durable and deterministic. */
void mutated_entries_into_shard(void **state)
{
    struct fixture *f = *state;
    f->rng.s ^= 0xc;
    struct replica a = {0}, b = {0};
    a.dir = testlib_tmpdir();
    b.dir = testlib_tmpdir();
    assert_non_null(a.dir);
    assert_non_null(b.dir);
    replica_open(&a, 0);
    replica_open(&b, 1);
    struct sink_state st = {0};
    struct shard_sink sink = {&st, sink_result, sink_event};

    /* The seeds themselves apply, so mutations start from boards, players and games. */
    for (uint32_t i = 0; i < f->nseeds; i++) {
        st.next_i = 0;
        replica_apply(&a, f->seeds[i].p, f->seeds[i].n, &sink, GROUP);
        replica_apply(&b, f->seeds[i].p, f->seeds[i].n, NULL, 333);
    }
    assert_int_equal(st.results, 22);
    assert_int_equal(st.status[2], st.results); /* every seed command succeeded */

    uint64_t n = scaled(f, N_MUTATED);
    uint64_t with_cmds = 0;
    int64_t clock = TS0 + 3600000;
    for (uint64_t i = 0; i < n; i++) {
        /* Mutations of the seeds, now and then a seed itself, and random commands whose
         * meaning (not form) is random, so mutations meet more state. */
        uint64_t what = testrng_below(&f->rng, 100);
        if (what == 0) {
            const struct buf *seed = &f->seeds[testrng_below(&f->rng, f->nseeds)];
            buf_set(&f->m, seed->p, seed->n);
        } else if (what < 35) {
            random_valid_entry(f, &clock);
        } else {
            mutate(f);
        }
        uint32_t ncmds = decode_check(f, f->m.p, f->m.n);
        with_cmds += ncmds > 0;
        st.next_i = 0;
        replica_apply(&a, f->m.p, f->m.n, &sink, GROUP);
        /* Each command the envelope holds gets exactly one result. */
        assert_int_equal(st.next_i, ncmds);
        replica_apply(&b, f->m.p, f->m.n, NULL, 333);
    }
    replica_commit(&a);
    replica_commit(&b);
    fprintf(stderr,
            "# shard: %llu entries (%llu with commands), %llu results: 2xx %llu 4xx %llu "
            "5xx %llu, %llu replayed, %llu events, %u map grows\n",
            (unsigned long long)n, (unsigned long long)with_cmds, (unsigned long long)st.results,
            (unsigned long long)st.status[2], (unsigned long long)st.status[4],
            (unsigned long long)st.status[5], (unsigned long long)st.replayed,
            (unsigned long long)st.events, a.grows);
    assert_true(st.status[2] > n / 100);
    assert_true(st.status[4] > n / 100);

    /* The running digest is the digest of what is stored. */
    uint64_t digest = shard_digest(a.s), scan = 0;
    assert_int_equal(shard_digest_scan(a.s, &scan), 0);
    assert_int_equal(digest, scan);
    assert_int_equal(shard_applied_index(a.s), a.index);
    /* Another replica, grouping commits differently, holds the same state. */
    assert_int_equal(shard_digest(b.s), digest);
    assert_int_equal(shard_applied_index(b.s), a.index);

    /* A reopen rebuilds the same state from disk. */
    shard_close(a.s);
    replica_open(&a, 0);
    assert_int_equal(shard_digest(a.s), digest);
    assert_int_equal(shard_applied_index(a.s), a.index);
    assert_int_equal(shard_digest_scan(a.s, &scan), 0);
    assert_int_equal(scan, digest);
    /* Entries at or below the applied index are skipped as replays. */
    assert_int_equal(shard_apply(a.s, a.index, f->seeds[0].p, f->seeds[0].n, NULL), 0);
    assert_int_equal(shard_digest(a.s), digest);
    replica_commit(&a);
    assert_int_equal(shard_digest(a.s), digest);
    replica_close(&a);
    replica_close(&b);
}

/* A group aborted before anything was ever committed (as after a full map on a fresh shard)
 * leaves the shard empty, so the same entries apply again. */
void abort_before_first_commit_forgets_the_group(void **state)
{
    struct fixture *f = *state;
    struct replica a = {0};
    a.dir = testlib_tmpdir();
    assert_non_null(a.dir);
    replica_open(&a, 1);
    uint64_t empty = shard_digest(a.s);
    for (uint32_t i = 0; i < f->nseeds; i++) {
        assert_int_equal(shard_apply(a.s, i + 1, f->seeds[i].p, f->seeds[i].n, NULL), 0);
    }
    assert_int_equal(shard_applied_index(a.s), f->nseeds);
    uint64_t full = shard_digest(a.s);
    assert_int_not_equal(full, empty);
    assert_int_equal(shard_abort(a.s), 0);
    assert_int_equal(shard_applied_index(a.s), 0);
    assert_int_equal(shard_digest(a.s), empty);
    for (uint32_t i = 0; i < f->nseeds; i++) {
        assert_int_equal(shard_apply(a.s, i + 1, f->seeds[i].p, f->seeds[i].n, NULL), 0);
    }
    assert_int_equal(shard_applied_index(a.s), f->nseeds);
    assert_int_equal(shard_digest(a.s), full);
    replica_commit(&a);
    replica_close(&a);
}

/* A map too small for the run fills up again and again; aborting, growing and re-applying
 * the group reaches the same state as a replica that never filled. */
void full_map_grows_and_retries(void **state)
{
    struct fixture *f = *state;
    f->rng.s ^= 0x10;
    struct replica a = {0}, b = {0};
    a.dir = testlib_tmpdir();
    b.dir = testlib_tmpdir();
    assert_non_null(a.dir);
    assert_non_null(b.dir);
    replica_open_sized(&a, 1, 64u << 10);
    replica_open(&b, 1);
    int64_t clock = TS0;
    uint64_t n = scaled(f, 20000);
    for (uint64_t i = 0; i < n; i++) {
        if (i < f->nseeds) {
            buf_set(&f->m, f->seeds[i].p, f->seeds[i].n);
        } else if (testrng_below(&f->rng, 2)) {
            random_valid_entry(f, &clock);
        } else {
            mutate(f);
        }
        replica_apply(&a, f->m.p, f->m.n, NULL, 250);
        replica_apply(&b, f->m.p, f->m.n, NULL, 999);
    }
    replica_commit(&a);
    replica_commit(&b);
    fprintf(stderr, "# full map: %u grows\n", a.grows);
    assert_true(a.grows > 0);
    uint64_t scan;
    assert_int_equal(shard_digest(a.s), shard_digest(b.s));
    assert_int_equal(shard_digest_scan(a.s, &scan), 0);
    assert_int_equal(scan, shard_digest(b.s));
    assert_int_equal(shard_applied_index(a.s), n);
    shard_close(a.s);
    replica_open_sized(&a, 1, 64u << 10);
    assert_int_equal(shard_digest(a.s), shard_digest(b.s));
    assert_int_equal(shard_applied_index(a.s), n);
    replica_close(&a);
    replica_close(&b);
}
