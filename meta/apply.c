/* meta/apply.c — applying the metadata group's commands (mcmd.h) to LMDB.
 *
 * Each rule is a decision on one key, taken by the order of meta's log alone
 * (docs/global-state.md, "Why each operation happens once"):
 *   claim           the first claim of a player id wins; the same region again is a retry
 *   catalog_put     versioned by the entry's raft index; every put is kept in the log
 *   tournament_put  the cap and window that joins are decided by
 *   join            admitted once, never above the cap, never at or after the end stamp
 *   close           the first close of (board, cycle) is the record; later ones are no-ops
 *   region_put      a region joins the list (at most META_REGIONS_MAX, never removed); the
 *                   same rpc again is a retry, another rpc replaces it and bumps its version
 *
 * Every handler reads and checks first and writes last, so a refused command writes nothing
 * and answers an error; the only failures after a write are fatal (LMDB full or broken, no
 * memory), after which the caller aborts the whole group (meta_abort). Handlers read the
 * command's stamp, never a clock, and the state is LMDB alone, so replicas agree. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "meta_int.h"

struct meta__apply {
    struct meta *m;
    uint64_t index;
    uint32_t i; /* the command's position in its entry */
    int64_t ts;
    int status; /* 0 until the handler answered */
};

#define PK (&a->m->opk)
#define RPK (&a->m->rpk)

/* ---- answers and records ----------------------------------------------------------------- */

static void meta__answer_begin(struct meta__apply *a, int status, uint32_t npairs)
{
    msgpack_sbuffer_clear(&a->m->obuf);
    msgpack_pack_map(PK, npairs);
    a->status = status;
}

/* Refuse the command: {"error": {"code", "message"[, "reason"]}} and @nextra more pairs for
 * the caller to pack. Nothing is written. Returns 0 (the command was handled). */
static int meta__fail(struct meta__apply *a, int rv, const char *reason, uint32_t nextra,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int meta__fail(struct meta__apply *a, int rv, const char *reason, uint32_t nextra,
                      const char *fmt, ...)
{
    char msg[LR_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    meta__answer_begin(a, err_http_status(rv), 1 + nextra);
    META__PK_KEY(PK, "error");
    msgpack_pack_map(PK, reason ? 3 : 2);
    META__PK_KEY(PK, "code");
    meta__pack_str(PK, lr_str_of(err_api_code(rv)));
    META__PK_KEY(PK, "message");
    meta__pack_str(PK, lr_str_of(msg));
    if (reason) {
        META__PK_KEY(PK, "reason");
        meta__pack_str(PK, lr_str_of(reason));
    }
    return 0;
}

static void meta__rec_begin(struct meta__apply *a, uint32_t nfields)
{
    msgpack_sbuffer_clear(&a->m->rbuf);
    msgpack_pack_array(RPK, nfields + 1);
    msgpack_pack_int64(RPK, META__REC_VERSION);
}

static int meta__rec_put(struct meta__apply *a, enum store_db db, const struct meta__key *k)
{
    return store_put(a->m->st, db, k->b, k->len, a->m->rbuf.data, a->m->rbuf.size);
}

static int meta__is_fatal(int rv)
{
    return rv == LR_ENOMEM || rv == LR_EIO || rv == LR_EMAPFULL || rv == LR_ENOSPC ||
           rv == LR_ECORRUPT || rv == LR_EINTERNAL;
}

/* ---- handlers ---------------------------------------------------------------------------- */

static int meta__apply_claim(struct meta__apply *a, const struct mcmd_claim *c)
{
    struct meta__claim r;
    struct meta__key k;
    int rv = meta__claim_get(a->m, c->player_id, &r);
    if (rv == 0 &&
        (r.region.len != c->region.len || memcmp(r.region.p, c->region.p, r.region.len) != 0)) {
        meta__fail(a, LR_ECONFLICT, "region", 3, "player %.*s belongs to region %.*s",
                   (int)c->player_id.len, c->player_id.p, (int)r.region.len, r.region.p);
        meta__pack_claim_pairs(PK, c->player_id, &r);
        return 0;
    }
    if (rv == 0) { /* a retry of the winning claim */
        meta__answer_begin(a, 200, 3);
        meta__pack_claim_pairs(PK, c->player_id, &r);
        return 0;
    }
    if (rv != LR_ENOTFOUND) {
        return rv;
    }
    r.region = c->region;
    r.claimed_ms = a->ts;
    meta__key_id(&k, c->player_id);
    meta__rec_begin(a, 2);
    meta__pack_str(RPK, r.region);
    msgpack_pack_int64(RPK, r.claimed_ms);
    if ((rv = meta__rec_put(a, META__DB(DIRECTORY), &k)) != 0) {
        return rv;
    }
    meta__answer_begin(a, 201, 3);
    meta__pack_claim_pairs(PK, c->player_id, &r);
    return 0;
}

static int meta__apply_catalog_put(struct meta__apply *a, const struct mcmd_catalog_put *c)
{
    struct meta__key k;
    int rv;
    if (c->kind == META_KIND_GAME && c->id.len > VALID_GAME_ID_MAX) {
        return meta__fail(a, LR_EINVAL, NULL, 0, "a game id has at most %d characters",
                          VALID_GAME_ID_MAX);
    }
    /* The log keeps every put (regions read "after version v"); the catalog names the newest. */
    meta__key_catlog(&k, a->index, a->i);
    meta__rec_begin(a, 3);
    msgpack_pack_int64(RPK, c->kind);
    meta__pack_str(RPK, c->id);
    msgpack_pack_bin_with_body(RPK, c->body.p, c->body.len);
    if ((rv = meta__rec_put(a, META__DB(CATLOG), &k)) != 0) {
        return rv;
    }
    meta__key_catalog(&k, c->kind, c->id);
    /* 201 for the first put of an id (API.md: PUT answers 201 when it created the resource). */
    MDB_val old;
    rv = store_get(a->m->st, META__DB(CATALOG), k.b, k.len, &old);
    if (rv != 0 && rv != LR_ENOTFOUND) {
        return rv;
    }
    int created = rv == LR_ENOTFOUND;
    meta__rec_begin(a, 1);
    msgpack_pack_uint64(RPK, a->index);
    if ((rv = meta__rec_put(a, META__DB(CATALOG), &k)) != 0) {
        return rv;
    }
    meta__answer_begin(a, created ? 201 : 200, 3);
    META__PK_KEY(PK, "kind");
    meta__pack_str(PK, lr_str_of(mcmd_kind_name(c->kind)));
    META__PK_KEY(PK, "id");
    meta__pack_str(PK, c->id);
    META__PK_KEY(PK, "version");
    msgpack_pack_uint64(PK, a->index);
    return 0;
}

static void meta__pack_tourn(struct meta__apply *a, struct lr_str id, const struct meta__tourn *t)
{
    META__PK_KEY(PK, "tournament_id");
    meta__pack_str(PK, id);
    META__PK_KEY(PK, "max_participants");
    msgpack_pack_int64(PK, t->cap);
    META__PK_KEY(PK, "start_at");
    meta__pack_time(PK, t->start_ms);
    META__PK_KEY(PK, "end_at");
    meta__pack_time(PK, t->end_ms);
    META__PK_KEY(PK, "participants");
    msgpack_pack_int64(PK, t->participants);
}

static int meta__tourn_put(struct meta__apply *a, struct lr_str id, const struct meta__tourn *t)
{
    struct meta__key k;
    meta__key_id(&k, id);
    meta__rec_begin(a, 4);
    msgpack_pack_int64(RPK, t->cap);
    msgpack_pack_int64(RPK, t->start_ms);
    msgpack_pack_int64(RPK, t->end_ms);
    msgpack_pack_int64(RPK, t->participants);
    return meta__rec_put(a, META__DB(TOURNS), &k);
}

static int meta__apply_tournament_put(struct meta__apply *a, const struct mcmd_tournament_put *c)
{
    struct meta__tourn t = {c->max_participants, c->start_at_ms, c->end_at_ms, 0};
    if (c->max_participants == 0) {
        return meta__fail(a, LR_EINVAL, NULL, 0, "max_participants must be at least 1");
    }
    if (c->end_at_ms <= c->start_at_ms) {
        return meta__fail(a, LR_EINVAL, NULL, 0, "end_at must be after start_at");
    }
    struct meta__tourn old;
    int rv = meta__tourn_get(a->m, c->tournament_id, &old);
    if (rv != 0 && rv != LR_ENOTFOUND) {
        return rv;
    }
    /* Admissions stay: a lower cap stops further joins, it never removes a participant. */
    t.participants = rv == 0 ? old.participants : 0;
    int status = rv == 0 ? 200 : 201;
    if ((rv = meta__tourn_put(a, c->tournament_id, &t)) != 0) {
        return rv;
    }
    meta__answer_begin(a, status, 5);
    meta__pack_tourn(a, c->tournament_id, &t);
    return 0;
}

static void meta__pack_join(struct meta__apply *a, const struct mcmd_join *c, int64_t n)
{
    META__PK_KEY(PK, "tournament_id");
    meta__pack_str(PK, c->tournament_id);
    META__PK_KEY(PK, "player_id");
    meta__pack_str(PK, c->player_id);
    META__PK_KEY(PK, "participants");
    msgpack_pack_int64(PK, n);
}

static int meta__apply_join(struct meta__apply *a, const struct mcmd_join *c)
{
    struct meta__tourn t;
    struct meta__admit ad;
    struct meta__key k;
    int rv = meta__tourn_get(a->m, c->tournament_id, &t);
    if (rv == LR_ENOTFOUND) {
        return meta__fail(a, rv, NULL, 0, "tournament %.*s not found", (int)c->tournament_id.len,
                          c->tournament_id.p);
    }
    if (rv != 0) {
        return rv;
    }
    if (a->ts >= t.end_ms) {
        return meta__fail(a, LR_ECONFLICT, "ended", 0, "tournament %.*s has ended",
                          (int)c->tournament_id.len, c->tournament_id.p);
    }
    rv = meta__admit_get(a->m, c->tournament_id, c->player_id, &ad);
    if (rv == 0) { /* joined before: the first admission stands, counted once */
        meta__answer_begin(a, 200, 3);
        meta__pack_join(a, c, t.participants);
        return 0;
    }
    if (rv != LR_ENOTFOUND) {
        return rv;
    }
    if (t.participants >= t.cap) {
        return meta__fail(a, LR_ECONFLICT, "full", 0, "tournament %.*s is full (%lld)",
                          (int)c->tournament_id.len, c->tournament_id.p, (long long)t.cap);
    }
    t.participants++;
    meta__key_admit(&k, c->tournament_id, c->player_id);
    meta__rec_begin(a, 2);
    msgpack_pack_int64(RPK, a->ts);
    msgpack_pack_int64(RPK, t.participants);
    if ((rv = meta__rec_put(a, META__DB(ADMITS), &k)) != 0) {
        return rv;
    }
    if ((rv = meta__tourn_put(a, c->tournament_id, &t)) != 0) {
        return rv;
    }
    meta__answer_begin(a, 200, 3);
    meta__pack_join(a, c, t.participants);
    return 0;
}

static int meta__apply_close(struct meta__apply *a, const struct mcmd_close *c)
{
    struct meta__close r;
    struct meta__key k;
    int rv = meta__close_get(a->m, c->board_id, c->cycle, &r);
    if (rv == 0) { /* closed before: the first record stands */
        a->status = 200;
        msgpack_sbuffer_clear(&a->m->obuf);
        meta__pack_close(PK, c->board_id, c->cycle, &r);
        return 0;
    }
    if (rv != LR_ENOTFOUND) {
        return rv;
    }
    r.closed_ms = a->ts;
    r.record = c->record;
    meta__key_close(&k, c->board_id, c->cycle);
    meta__rec_begin(a, 2);
    msgpack_pack_int64(RPK, r.closed_ms);
    msgpack_pack_bin_with_body(RPK, r.record.p, r.record.len);
    if ((rv = meta__rec_put(a, META__DB(CLOSES), &k)) != 0) {
        return rv;
    }
    a->status = 201;
    msgpack_sbuffer_clear(&a->m->obuf);
    meta__pack_close(PK, c->board_id, c->cycle, &r);
    return 0;
}

static int meta__region_put(struct meta__apply *a, struct lr_str id, const struct meta__region *r)
{
    struct meta__key k;
    meta__key_id(&k, id);
    meta__rec_begin(a, 3);
    meta__pack_str(RPK, r->rpc);
    msgpack_pack_int64(RPK, r->added_ms);
    msgpack_pack_uint64(RPK, r->version);
    return meta__rec_put(a, META__DB(REGIONS), &k);
}

/* Regions in the list now: the database's entry count in the group's own transaction. */
static int meta__region_count(struct meta__apply *a, uint64_t *out)
{
    MDB_txn *txn;
    MDB_stat st;
    int rv = store_read(a->m->st, &txn);
    if (rv != 0) {
        return rv;
    }
    int mrv = mdb_stat(txn, store_dbi(a->m->st, META__DB(REGIONS)), &st);
    if (mrv != 0) {
        return err_from_mdb(mrv);
    }
    *out = st.ms_entries;
    return 0;
}

static int meta__apply_region_put(struct meta__apply *a, const struct mcmd_region_put *c)
{
    struct meta__region r;
    char why[LR_ERRMSG_SIZE];
    uint64_t n = 0;
    /* "meta" names the metadata group itself (the data marker, the router's group table). */
    if (c->region.len == 4 && memcmp(c->region.p, "meta", 4) == 0) {
        return meta__fail(a, LR_EINVAL, NULL, 0, "region meta is the metadata group's name");
    }
    if (!meta__rpc_check(c->rpc, why)) {
        return meta__fail(a, LR_EINVAL, NULL, 0, "%s", why);
    }
    int rv = meta__region_get(a->m, c->region, &r);
    if (rv == 0 && r.rpc.len == c->rpc.len && memcmp(r.rpc.p, c->rpc.p, r.rpc.len) == 0) {
        a->status = 200; /* a retry: the record as it stands, nothing written */
        msgpack_sbuffer_clear(&a->m->obuf);
        meta__pack_region(PK, c->region, &r);
        return 0;
    }
    int created = rv == LR_ENOTFOUND;
    if (rv != 0 && !created) {
        return rv;
    }
    if (created) {
        if ((rv = meta__region_count(a, &n)) != 0) {
            return rv;
        }
        if (n >= META_REGIONS_MAX) {
            return meta__fail(a, LR_ECONFLICT, "full", 0, "the region list is full (%d)",
                              META_REGIONS_MAX);
        }
        r.added_ms = a->ts;
    }
    r.rpc = c->rpc; /* added_ms stays that of the first put */
    r.version = a->index;
    if ((rv = meta__region_put(a, c->region, &r)) != 0) {
        return rv;
    }
    a->status = created ? 201 : 200;
    msgpack_sbuffer_clear(&a->m->obuf);
    meta__pack_region(PK, c->region, &r);
    return 0;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

typedef int (*meta__fn)(struct meta__apply *a, const struct mcmd *c);

#define META__THUNK(code, NAME, name, flags)                                                       \
    static int meta__thunk_##name(struct meta__apply *a, const struct mcmd *c)                     \
    {                                                                                              \
        return meta__apply_##name(a, &c->u.name);                                                  \
    }
META_CMDS(META__THUNK)
#undef META__THUNK

static const meta__fn meta__table[MCMD__TYPE_END] = {
#define META__ROW(code, NAME, name, flags) [code] = meta__thunk_##name,
    META_CMDS(META__ROW)
#undef META__ROW
};

int meta_apply(struct meta *m, uint64_t index, const void *buf, size_t len,
               const struct meta_sink *sink)
{
    struct mcmd_entry e;
    struct mcmd c;
    char msg[LR_ERRMSG_SIZE];
    int rv;
    if (index <= m->applied) {
        return 0; /* replayed from the raft log: its effects are already in LMDB */
    }
    if (!store_in_write(m->st) && (rv = store_begin(m->st)) != 0) {
        return errmsg_set(m->errmsg, rv, "apply: %s", store_errmsg(m->st));
    }
    if (mcmd_entry_decode(buf, len, &e, msg) != 0) {
        /* A no-op, but still an applied index: every replica skips it the same way. */
        m->applied = index;
        return 0;
    }
    for (uint32_t i = 0; i < e.n; i++) {
        struct meta__apply a = {.m = m, .index = index, .i = i};
        rv = mcmd_next(&e, &c, msg);
        if (rv != 0) {
            meta__fail(&a, rv, NULL, 0, "%s", msg);
        } else {
            m->clock_ms = c.ts > m->clock_ms ? c.ts : m->clock_ms; /* decoded: 0 <= ts */
            a.ts = c.ts;
            rv = meta__table[c.type](&a, &c);
            if (rv != 0) {
                assert(meta__is_fatal(rv)); /* handlers answer input errors through meta__fail */
                return errmsg_set(m->errmsg, rv, "apply %s at index %llu: %s (%s)",
                                  mcmd_name(c.type), (unsigned long long)index, err_message(rv),
                                  store_errmsg(m->st));
            }
            assert(a.status != 0);
        }
        if (sink && sink->result) {
            sink->result(sink->data, i, a.status, m->obuf.data, m->obuf.size);
        }
    }
    m->applied = index;
    return 0;
}
