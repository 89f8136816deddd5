/* shard/events.c — reading the committed-event log (see shard.h, SHARD_EVENTS_RETAIN). */
#include "mp.h"
#include "shard_int.h"

int shard_events_read(struct shard *s, uint64_t from, uint32_t max,
                      int (*fn)(void *data, uint64_t index, uint32_t n, const char *buf,
                                size_t len),
                      void *data, uint64_t *first)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    struct key start;
    uint32_t delivered = 0;
    int rv = store_read(s->st, &txn), mrv;
    *first = 0;
    if (rv != 0) {
        return rv;
    }
    if ((mrv = mdb_cursor_open(txn, store_dbi(s->st, STORE_EVENTS), &cur)) != 0) {
        rv = err_from_mdb(mrv);
        goto out;
    }
    mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    if (mrv == 0 && k.mv_size == 8) {
        *first = key__get_u64(k.mv_data);
    }
    key__init(&start);
    key__u64(&start, from);
    k.mv_data = start.b;
    k.mv_size = start.len;
    for (mrv = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); mrv == 0 && delivered < max;
         mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct mp r;
        if (k.mv_size != 8) {
            rv = LR_ECORRUPT;
            break;
        }
        mp_init(&r, v.mv_data, v.mv_size);
        uint32_t n = mp_array(&r);
        int64_t ver = mp_i64(&r);
        if (r.err || n < 2 || ver != REC_VERSION) {
            rv = LR_ECORRUPT;
            break;
        }
        const char *body = (const char *)r.p;
        size_t len = (size_t)((const char *)r.end - body);
        delivered++;
        if (fn(data, key__get_u64(k.mv_data), n - 1, body, len) != 0) {
            break;
        }
    }
    if (rv == 0 && mrv != 0 && mrv != MDB_NOTFOUND) {
        rv = err_from_mdb(mrv);
    }
    mdb_cursor_close(cur);
out:
    store_read_end(s->st);
    return rv;
}
