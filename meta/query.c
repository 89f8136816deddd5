/* meta/query.c — reads of the metadata state, one handler per row of META_QUERIES.
 *
 * Reads see the committed state, or the open group's while one is open (shard/store.h's
 * store_read), and write nothing. Catalog pages never split one entry's puts: a reader that
 * resumes "after version v" has then seen every put of v. */
#include <stdio.h>

#include "meta_int.h"

typedef int (*meta__qfn)(struct meta *m, const struct meta_query *q, msgpack_packer *pk,
                         char *errmsg);

static int meta__q_directory(struct meta *m, const struct meta_query *q, msgpack_packer *pk,
                             char *errmsg)
{
    struct meta__claim r;
    if (!valid_id(q->player_id.p, q->player_id.len, VALID_ID_MAX)) {
        return errmsg_set(errmsg, LR_EINVAL, "player_id must be an id");
    }
    int rv = meta__claim_get(m, q->player_id, &r);
    if (rv == LR_ENOTFOUND) {
        return errmsg_set(errmsg, rv, "player %.*s is not claimed", (int)q->player_id.len,
                          q->player_id.p);
    }
    if (rv != 0) {
        return errmsg_set(errmsg, rv, "directory: %s", err_message(rv));
    }
    msgpack_pack_map(pk, 3);
    meta__pack_claim_pairs(pk, q->player_id, &r);
    return 0;
}

static int meta__q_catalog_since(struct meta *m, const struct meta_query *q, msgpack_packer *pk,
                                 char *errmsg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    struct meta__key from;
    struct meta__change c;
    uint32_t limit = q->limit ? q->limit : META_PAGE_MAX, n = 0;
    int rv, mrv, more = 0;
    if (limit > META_PAGE_MAX) {
        return errmsg_set(errmsg, LR_EINVAL, "limit must be 1 to %d", META_PAGE_MAX);
    }
    if (q->after == UINT64_MAX) {
        return errmsg_set(errmsg, LR_EINVAL, "after must be below 2^64 - 1");
    }
    if ((rv = store_read(m->st, &txn)) != 0) {
        return errmsg_set(errmsg, rv, "catalog: %s", store_errmsg(m->st));
    }
    if ((mrv = mdb_cursor_open(txn, store_dbi(m->st, META__DB(CATLOG)), &cur)) != 0) {
        return errmsg_set(errmsg, err_from_mdb(mrv), "catalog: %s", mdb_strerror(mrv));
    }
    /* Two passes over the same keys: count what fits without splitting a version, then pack. */
    meta__key_catlog(&from, q->after + 1, 0);
    uint64_t last = 0;
    k = (MDB_val){from.len, from.b};
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (meta__change_read(&k, &v, &c) != 0) {
            mrv = MDB_CORRUPTED;
            break;
        }
        if (n >= limit && c.version != last) {
            more = 1;
            break;
        }
        last = c.version;
        n++;
    }
    if (mrv != 0 && mrv != MDB_NOTFOUND) {
        mdb_cursor_close(cur);
        return errmsg_set(errmsg, err_from_mdb(mrv), "catalog: %s", mdb_strerror(mrv));
    }
    msgpack_pack_map(pk, 2);
    META__PK_KEY(pk, "changes");
    msgpack_pack_array(pk, n);
    k = (MDB_val){from.len, from.b};
    mrv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    for (uint32_t i = 0; i < n; i++, mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        /* The first pass read these same records in this same transaction. */
        if (mrv != 0 || meta__change_read(&k, &v, &c) != 0) {
            mdb_cursor_close(cur);
            return errmsg_set(errmsg, LR_EINTERNAL, "catalog: the log changed under a read");
        }
        msgpack_pack_map(pk, 4);
        META__PK_KEY(pk, "kind");
        meta__pack_str(pk, lr_str_of(mcmd_kind_name(c.kind)));
        META__PK_KEY(pk, "id");
        meta__pack_str(pk, c.id);
        META__PK_KEY(pk, "version");
        msgpack_pack_uint64(pk, c.version);
        META__PK_KEY(pk, "body");
        msgpack_pack_bin_with_body(pk, c.body.p, c.body.len);
    }
    mdb_cursor_close(cur);
    META__PK_KEY(pk, "more");
    more ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    return 0;
}

static int meta__q_admission(struct meta *m, const struct meta_query *q, msgpack_packer *pk,
                             char *errmsg)
{
    struct meta__tourn t;
    struct meta__admit ad;
    if (!valid_id(q->tournament_id.p, q->tournament_id.len, VALID_ID_MAX) ||
        (q->player_id.len && !valid_id(q->player_id.p, q->player_id.len, VALID_ID_MAX))) {
        return errmsg_set(errmsg, LR_EINVAL, "tournament_id and player_id must be ids");
    }
    int rv = meta__tourn_get(m, q->tournament_id, &t);
    if (rv == LR_ENOTFOUND) {
        return errmsg_set(errmsg, rv, "tournament %.*s not found", (int)q->tournament_id.len,
                          q->tournament_id.p);
    }
    ad.admitted_ms = -1; /* no player asked about (the count alone), or not admitted */
    if (rv == 0 && q->player_id.len &&
        (rv = meta__admit_get(m, q->tournament_id, q->player_id, &ad)) == LR_ENOTFOUND) {
        rv = 0;
        ad.admitted_ms = -1;
    }
    if (rv != 0) {
        return errmsg_set(errmsg, rv, "admission: %s", err_message(rv));
    }
    msgpack_pack_map(pk, 6);
    META__PK_KEY(pk, "tournament_id");
    meta__pack_str(pk, q->tournament_id);
    META__PK_KEY(pk, "max_participants");
    msgpack_pack_int64(pk, t.cap);
    META__PK_KEY(pk, "participants");
    msgpack_pack_int64(pk, t.participants);
    META__PK_KEY(pk, "start_at");
    meta__pack_time(pk, t.start_ms);
    META__PK_KEY(pk, "end_at");
    meta__pack_time(pk, t.end_ms);
    META__PK_KEY(pk, "admitted");
    ad.admitted_ms >= 0 ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    return 0;
}

static int meta__q_close_get(struct meta *m, const struct meta_query *q, msgpack_packer *pk,
                             char *errmsg)
{
    struct meta__close r;
    if (!valid_id(q->board_id.p, q->board_id.len, VALID_ID_MAX) || q->cycle < 0) {
        return errmsg_set(errmsg, LR_EINVAL, "board_id must be an id and cycle at least 0");
    }
    int rv = meta__close_get(m, q->board_id, q->cycle, &r);
    if (rv == LR_ENOTFOUND) {
        return errmsg_set(errmsg, rv, "cycle %lld of %.*s is not closed", (long long)q->cycle,
                          (int)q->board_id.len, q->board_id.p);
    }
    if (rv != 0) {
        return errmsg_set(errmsg, rv, "close: %s", err_message(rv));
    }
    meta__pack_close(pk, q->board_id, q->cycle, &r);
    return 0;
}

static int meta__q_regions(struct meta *m, const struct meta_query *q, msgpack_packer *pk,
                           char *errmsg)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_stat st;
    MDB_val k, v;
    struct lr_str id;
    struct meta__region r;
    int rv, mrv;
    (void)q;
    if ((rv = store_read(m->st, &txn)) != 0) {
        return errmsg_set(errmsg, rv, "regions: %s", store_errmsg(m->st));
    }
    if ((mrv = mdb_stat(txn, store_dbi(m->st, META__DB(REGIONS)), &st)) != 0 ||
        (mrv = mdb_cursor_open(txn, store_dbi(m->st, META__DB(REGIONS)), &cur)) != 0) {
        return errmsg_set(errmsg, err_from_mdb(mrv), "regions: %s", mdb_strerror(mrv));
    }
    if (st.ms_entries > META_REGIONS_MAX) { /* apply never stores more: the disk is wrong */
        mdb_cursor_close(cur);
        return errmsg_set(errmsg, LR_ECORRUPT, "regions: %zu records", st.ms_entries);
    }
    /* LMDB's bytewise key order is region id order: the answer is the same on every replica. */
    msgpack_pack_map(pk, 1);
    META__PK_KEY(pk, "regions");
    msgpack_pack_array(pk, (uint32_t)st.ms_entries);
    size_t n = 0;
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (n == st.ms_entries || meta__region_read(&k, &v, &id, &r) != 0) {
            mrv = MDB_CORRUPTED;
            break;
        }
        meta__pack_region(pk, id, &r);
        n++;
    }
    mdb_cursor_close(cur);
    if (mrv != MDB_NOTFOUND || n != st.ms_entries) {
        return errmsg_set(errmsg, LR_ECORRUPT, "regions: a record does not read");
    }
    return 0;
}

static const meta__qfn meta__qtable[META_Q__END] = {
#define META__QROW(NAME, name) [META_Q_##NAME] = meta__q_##name,
    META_QUERIES(META__QROW)
#undef META__QROW
};

static int meta__sbuf_append(void *data, const char *buf, size_t len)
{
    return msgpack_sbuffer_write(data, buf, len);
}

int meta_query(struct meta *m, const struct meta_query *q, msgpack_sbuffer *out, char *errmsg)
{
    msgpack_packer pk;
    if ((unsigned)q->type >= META_Q__END) {
        return errmsg_set(errmsg, LR_EINVAL, "query: unknown type %d", (int)q->type);
    }
    size_t mark = out->size;
    msgpack_packer_init(&pk, out, meta__sbuf_append);
    int rv = meta__qtable[q->type](m, q, &pk, errmsg);
    store_read_end(m->st);
    if (rv != 0) {
        out->size = mark; /* nothing half-packed stays in the caller's buffer */
    }
    return rv;
}
