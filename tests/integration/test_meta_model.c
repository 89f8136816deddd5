/* tests/integration/test_meta_model.c — meta against a plain in-memory model of its rules.
 *
 * Random entries of claims (few ids, several regions), tournament puts and joins (few
 * tournaments with small caps, some already ended), closes (few keys) and catalog puts go to
 * a real meta on real LMDB, committed in random groups, and to a model of arrays. Every
 * command's status must be the model's, and after every step every key is compared: the
 * directory (first claim wins), admissions (never above the cap, each player once), close
 * records (first close wins), and a catalog page after a random version (versions strictly
 * increasing, exactly the puts after v, whole entries). Region puts (more ids than the list
 * holds, "meta", a bad rpc list among the choices) are compared through the regions query:
 * never more than META_REGIONS_MAX, added_at of the first put, version of the last change.
 * After every step the running digest equals a scan. At random points meta is closed and
 * reopened. LAUREL_SEED replays a run; LAUREL_MODEL_STEPS sets its length. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lib/testlib.h"
#include "tests/lib/testmeta.h"

#define M_PLAYERS 6
#define M_REGIONS 3
#define M_TOURNS 3
#define M_BOARDS 2
#define M_CYCLES 3
#define M_CATIDS 3
#define M_RIDS (META_REGIONS_MAX + 2) /* region ids: more than the list holds */
#define M_RPCS 4
#define M_BATCH 4
#define M_PUTS_MAX 20000
#define M_T0 1795305600000LL
#define M_MIN 60000LL

static const char *const m_players[M_PLAYERS] = {"p0", "p1", "p2", "p3", "p4", "p5"};
static const char *const m_regions[M_REGIONS] = {"eu", "us", "ap"};
static const char *const m_tourns[M_TOURNS] = {"t0", "t1", "t2"};
static const char *const m_boards[M_BOARDS] = {"b0", "b1"};
static const char *const m_catids[M_CATIDS] = {"c0", "c1", "c2"};
/* The last is refused at apply (port 0). */
static const char *const m_rpcs[M_RPCS] = {"h1:7001", "h1:7001,h2:7001", "[::1]:7003", "a:0"};

struct m_region {
    int rpc; /* index in m_rpcs, or -1 while not in the list */
    int64_t added_ms;
    uint64_t version;
};

struct m_tourn {
    int defined;
    int64_t cap, end_ms, count;
    int admitted[M_PLAYERS];
};

struct m_put {
    uint64_t version;
    int64_t kind;
    int id;
    char body[32];
};

struct fixture {
    char *dir;
    struct meta *m;
    uint64_t index, committed;
    struct testrng rng;
    int64_t ts;
    int claim[M_PLAYERS]; /* region, or -1 */
    struct m_tourn t[M_TOURNS];
    int closed[M_BOARDS][M_CYCLES];  /* 1 + the record's number, or 0 */
    struct m_region regions[M_RIDS]; /* ids "r00".."r17": id order is index order */
    char rids[M_RIDS][8];
    int nregions;
    struct m_put *puts;
    size_t nputs, committed_puts;
    char bodies[M_BATCH][32];
    char records[M_BATCH][32];
    struct tmeta_apply out;
    char errmsg[LR_ERRMSG_SIZE];
};

static void fx_open(struct fixture *f)
{
    struct meta_config cfg = {f->dir, 32ULL << 20, 1};
    if (meta_open(&cfg, &f->m, f->errmsg) != 0) {
        fail_msg("open: %s", f->errmsg);
    }
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = testlib_tmpdir();
    f->rng.s = testlib_seed(0x3e7a0de1);
    f->ts = M_T0;
    f->puts = calloc(M_PUTS_MAX, sizeof *f->puts);
    for (int i = 0; i < M_PLAYERS; i++) {
        f->claim[i] = -1;
    }
    for (int i = 0; i < M_RIDS; i++) {
        f->regions[i].rpc = -1;
        snprintf(f->rids[i], sizeof f->rids[i], "r%02d", i);
    }
    fx_open(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tmeta_apply_free(&f->out);
    meta_close(f->m);
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f->puts);
    free(f);
    return 0;
}

static uint64_t rnd(struct fixture *f, uint64_t n)
{
    return testrng_below(&f->rng, n);
}

/* Build one random command, and the status the model expects of it (the model moves on). */
static struct mcmd m_next(struct fixture *f, uint32_t slot, int *want)
{
    f->ts += (int64_t)rnd(f, 5) * M_MIN;
    int p = (int)rnd(f, M_PLAYERS), t = (int)rnd(f, M_TOURNS);
    switch (rnd(f, 6)) {
    case 0: {
        int r = (int)rnd(f, M_REGIONS);
        *want = f->claim[p] < 0 ? 201 : f->claim[p] == r ? 200 : 409;
        if (f->claim[p] < 0) {
            f->claim[p] = r;
        }
        return tmeta_claim(f->ts, m_players[p], m_regions[r]);
    }
    case 1: {
        int64_t cap = (int64_t)rnd(f, 4); /* 0 is refused */
        int64_t end = f->ts + ((int64_t)rnd(f, 90) - 30) * M_MIN;
        int64_t start = end - 120 * M_MIN;
        *want = cap == 0 ? 400 : f->t[t].defined ? 200 : 201;
        if (cap > 0) {
            f->t[t].defined = 1;
            f->t[t].cap = cap;
            f->t[t].end_ms = end;
        }
        return tmeta_tourn(f->ts, m_tourns[t], cap, start, end);
    }
    case 2: {
        struct m_tourn *mt = &f->t[t];
        if (!mt->defined) {
            *want = 404;
        } else if (f->ts >= mt->end_ms) {
            *want = 409;
        } else if (mt->admitted[p]) {
            *want = 200;
        } else if (mt->count >= mt->cap) {
            *want = 409;
        } else {
            *want = 200;
            mt->admitted[p] = 1;
            mt->count++;
        }
        return tmeta_join(f->ts, m_tourns[t], m_players[p]);
    }
    case 3: {
        int b = (int)rnd(f, M_BOARDS), cy = (int)rnd(f, M_CYCLES);
        int n = (int)rnd(f, 1000);
        snprintf(f->records[slot], sizeof f->records[slot], "rec-%d", n);
        *want = f->closed[b][cy] ? 200 : 201;
        if (!f->closed[b][cy]) {
            f->closed[b][cy] = 1 + n;
        }
        return tmeta_close(f->ts, m_boards[b], cy, f->records[slot]);
    }
    case 4: {
        int r = (int)rnd(f, M_RIDS + 1), rpc = (int)rnd(f, M_RPCS); /* r == M_RIDS: "meta" */
        const char *id = r == M_RIDS ? "meta" : f->rids[r];
        struct m_region *mr = r == M_RIDS ? NULL : &f->regions[r];
        if (mr == NULL || rpc == M_RPCS - 1) {
            *want = 400;
        } else if (mr->rpc == rpc) {
            *want = 200;
        } else if (mr->rpc >= 0) {
            *want = 200;
            mr->rpc = rpc;
            mr->version = f->index + 1;
        } else if (f->nregions >= META_REGIONS_MAX) {
            *want = 409;
        } else {
            *want = 201;
            *mr = (struct m_region){rpc, f->ts, f->index + 1};
            f->nregions++;
        }
        return tmeta_region_put(f->ts, id, m_rpcs[rpc]);
    }
    default: {
        struct m_put *put = &f->puts[f->nputs++];
        assert_true(f->nputs < M_PUTS_MAX);
        put->version = f->index + 1; /* this entry's index */
        put->kind = (int64_t)rnd(f, META_KIND__END);
        put->id = (int)rnd(f, M_CATIDS);
        snprintf(put->body, sizeof put->body, "body-%llu-%u", (unsigned long long)put->version,
                 slot);
        memcpy(f->bodies[slot], put->body, sizeof put->body);
        /* 201 for the first put of (kind, id), including one earlier in this entry. */
        *want = 201;
        for (size_t i = 0; i + 1 < f->nputs; i++) {
            if (f->puts[i].kind == put->kind && f->puts[i].id == put->id) {
                *want = 200;
                break;
            }
        }
        return tmeta_catalog(f->ts, (int)put->kind, m_catids[put->id], f->bodies[slot]);
    }
    }
}

/* The regions query lists exactly the model's regions, in id order, field by field. */
static void m_check_regions(struct fixture *f)
{
    struct ts_answer a;
    char buf[64], want[64];
    struct meta_query q = {.type = META_Q_REGIONS};
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), 0);
    const msgpack_object *l = ts_get(&a.data, "regions");
    assert_int_equal(l->via.array.size, f->nregions);
    uint32_t n = 0;
    for (int r = 0; r < M_RIDS; r++) {
        const struct m_region *mr = &f->regions[r];
        if (mr->rpc < 0) {
            continue;
        }
        const msgpack_object *o = &l->via.array.ptr[n++];
        assert_string_equal(ts_str(o, "region", buf, sizeof buf), f->rids[r]);
        assert_int_equal(ts_i64(o, "added_at"), mr->added_ms);
        assert_int_equal((uint64_t)ts_i64(o, "version"), mr->version);
        const msgpack_object *rpc = ts_get(o, "rpc");
        want[0] = '\0';
        for (uint32_t i = 0; i < rpc->via.array.size; i++) {
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%.*s", i ? "," : "",
                     (int)rpc->via.array.ptr[i].via.str.size, rpc->via.array.ptr[i].via.str.ptr);
        }
        assert_string_equal(want, m_rpcs[mr->rpc]);
    }
    ts_answer_free(&a);
}

static void m_check_catalog(struct fixture *f)
{
    struct ts_answer a;
    char buf[64];
    uint64_t after = rnd(f, f->index + 1);
    uint32_t limit = 1 + (uint32_t)rnd(f, 6), n = 0;
    size_t i = 0;
    int more = 0;
    uint64_t last = 0;
    struct meta_query q = {.type = META_Q_CATALOG_SINCE, .after = after, .limit = limit};
    assert_int_equal(tmeta_query(f->m, &q, &a, f->errmsg), 0);
    const msgpack_object *ch = ts_get(&a.data, "changes");
    while (i < f->nputs && f->puts[i].version <= after) {
        i++;
    }
    for (; i < f->nputs; i++, n++) {
        const struct m_put *p = &f->puts[i];
        if (n >= limit && p->version != last) {
            more = 1;
            break;
        }
        assert_true(n < ch->via.array.size);
        const msgpack_object *c = &ch->via.array.ptr[n];
        assert_true(p->version >= last); /* versions never go back */
        last = p->version;
        assert_int_equal((uint64_t)ts_i64(c, "version"), p->version);
        assert_string_equal(ts_str(c, "kind", buf, sizeof buf), mcmd_kind_name(p->kind));
        assert_string_equal(ts_str(c, "id", buf, sizeof buf), m_catids[p->id]);
        assert_string_equal(ts_str(c, "body", buf, sizeof buf), p->body);
    }
    assert_int_equal(ch->via.array.size, n);
    assert_int_equal(ts_bool(&a.data, "more"), more);
    ts_answer_free(&a);
}

/* Compare every key of meta with the model. */
static void m_check(struct fixture *f)
{
    struct ts_answer a;
    char buf[64];
    for (int p = 0; p < M_PLAYERS; p++) {
        struct meta_query q = {.type = META_Q_DIRECTORY, .player_id = ts_s(m_players[p])};
        int rv = tmeta_query(f->m, &q, &a, f->errmsg);
        if (f->claim[p] < 0) {
            assert_int_equal(rv, LR_ENOTFOUND);
        } else {
            assert_int_equal(rv, 0);
            assert_string_equal(ts_str(&a.data, "region", buf, sizeof buf), m_regions[f->claim[p]]);
        }
        ts_answer_free(&a);
    }
    for (int t = 0; t < M_TOURNS; t++) {
        for (int p = 0; p < M_PLAYERS; p++) {
            struct meta_query q = {.type = META_Q_ADMISSION,
                                   .tournament_id = ts_s(m_tourns[t]),
                                   .player_id = ts_s(m_players[p])};
            int rv = tmeta_query(f->m, &q, &a, f->errmsg);
            if (!f->t[t].defined) {
                assert_int_equal(rv, LR_ENOTFOUND);
            } else {
                assert_int_equal(rv, 0);
                assert_int_equal(ts_i64(&a.data, "participants"), f->t[t].count);
                assert_int_equal(ts_bool(&a.data, "admitted"), f->t[t].admitted[p]);
            }
            ts_answer_free(&a);
        }
    }
    for (int b = 0; b < M_BOARDS; b++) {
        for (int cy = 0; cy < M_CYCLES; cy++) {
            struct meta_query q = {
                .type = META_Q_CLOSE_GET, .board_id = ts_s(m_boards[b]), .cycle = cy};
            int rv = tmeta_query(f->m, &q, &a, f->errmsg);
            if (!f->closed[b][cy]) {
                assert_int_equal(rv, LR_ENOTFOUND);
            } else {
                char want[32];
                snprintf(want, sizeof want, "rec-%d", f->closed[b][cy] - 1);
                assert_int_equal(rv, 0);
                assert_string_equal(ts_str(&a.data, "record", buf, sizeof buf), want);
            }
            ts_answer_free(&a);
        }
    }
    m_check_catalog(f);
    m_check_regions(f);
    uint64_t scan;
    assert_int_equal(meta_digest_scan(f->m, &scan), 0);
    assert_int_equal(scan, meta_digest(f->m));
}

/* The model's rules hold step after step, across group commits and reopens. */
static void meta_follows_the_model(void **state)
{
    struct fixture *f = *state;
    const char *env = getenv("LAUREL_MODEL_STEPS");
    int steps = env ? atoi(env) : 1500, reopens = 0;
    for (int step = 0; step < steps; step++) {
        struct mcmd cmds[M_BATCH];
        int want[M_BATCH];
        uint32_t n = 1 + (uint32_t)rnd(f, M_BATCH);
        for (uint32_t i = 0; i < n; i++) {
            cmds[i] = m_next(f, i, &want[i]);
        }
        tmeta_apply_free(&f->out);
        tmeta_apply_at(f->m, ++f->index, cmds, n, &f->out);
        assert_int_equal(f->out.nres, n);
        for (uint32_t i = 0; i < n; i++) {
            if (f->out.res[i].status != want[i]) {
                fail_msg("step %d command %u (%s): status %d, model %d", step, i,
                         mcmd_name(cmds[i].type), f->out.res[i].status, want[i]);
            }
        }
        if (rnd(f, 3) == 0) { /* group commit: several entries, one transaction */
            assert_int_equal(meta_commit(f->m), 0);
            f->committed = f->index;
        }
        m_check(f);
        if (f->committed == f->index && rnd(f, 40) == 0) {
            uint64_t digest = meta_digest(f->m), scan;
            meta_close(f->m);
            fx_open(f);
            reopens++;
            assert_int_equal(meta_applied_index(f->m), f->index);
            assert_int_equal(meta_digest(f->m), digest);
            assert_int_equal(meta_digest_scan(f->m, &scan), 0);
            assert_int_equal(scan, digest);
        }
    }
    assert_int_equal(meta_commit(f->m), 0);
    printf("# %d steps, %zu catalog puts, %d regions, %d reopens\n", steps, f->nputs, f->nregions,
           reopens);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(meta_follows_the_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
