/* meta/meta.c — opening, group commit, keys and records of the metadata state machine.
 *
 * Unlike the shard, meta keeps nothing in memory but the applied index and the highest stamp:
 * every rule reads LMDB, so an aborted group needs no rebuild, only the committed values of
 * those two numbers back. The applied index is written in the same transaction as the
 * effects it covers (meta_commit), so a restart skips exactly what is in LMDB
 * (docs/durability.md). */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/addr.h"
#include "../shard/timefmt.h"
#include "meta_int.h"

#define META__GROUP "meta"

static const char *const meta__db_names[META__NDBS] = {
#define META__DBNAME(NAME, str) str,
    META_DBS(META__DBNAME)
#undef META__DBNAME
};

/* ---- keys ------------------------------------------------------------------------------ */

void meta__key_init(struct meta__key *k)
{
    k->len = 0;
}

void meta__key_str(struct meta__key *k, struct lr_str s)
{
    assert(k->len + s.len <= META__KEY_MAX); /* callers pass validated ids */
    memcpy(k->b + k->len, s.p, s.len);
    k->len += s.len;
}

void meta__key_strz(struct meta__key *k, struct lr_str s)
{
    meta__key_str(k, s);
    meta__key_str(k, (struct lr_str){"", 1});
}

void meta__key_u64(struct meta__key *k, uint64_t v)
{
    assert(k->len + 8 <= META__KEY_MAX);
    for (int i = 7; i >= 0; i--) {
        k->b[k->len++] = (unsigned char)(v >> (i * 8));
    }
}

uint64_t meta__get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

void meta__key_id(struct meta__key *k, struct lr_str player)
{
    meta__key_init(k);
    meta__key_str(k, player);
}

void meta__key_catalog(struct meta__key *k, int64_t kind, struct lr_str id)
{
    unsigned char kb = (unsigned char)kind;
    meta__key_init(k);
    meta__key_str(k, (struct lr_str){(const char *)&kb, 1});
    meta__key_str(k, id);
}

void meta__key_catlog(struct meta__key *k, uint64_t version, uint32_t seq)
{
    meta__key_init(k);
    meta__key_u64(k, version);
    meta__key_u64(k, seq);
}

void meta__key_admit(struct meta__key *k, struct lr_str tournament, struct lr_str player)
{
    meta__key_init(k);
    meta__key_strz(k, tournament);
    meta__key_str(k, player);
}

void meta__key_close(struct meta__key *k, struct lr_str board, int64_t cycle)
{
    meta__key_init(k);
    meta__key_strz(k, board);
    meta__key_u64(k, (uint64_t)cycle); /* decoded: cycle >= 0 */
}

/* ---- records ----------------------------------------------------------------------------- */

/* Get @k from @db and open the record's array of @nfields fields after the version. */
static int meta__rec_get(struct meta *m, enum store_db db, const struct meta__key *k,
                         uint32_t nfields, struct mp *r)
{
    MDB_val v;
    int rv = store_get(m->st, db, k->b, k->len, &v);
    if (rv != 0) {
        return rv;
    }
    mp_init(r, v.mv_data, v.mv_size);
    uint32_t n = mp_array(r);
    int64_t ver = mp_i64(r);
    return n == nfields + 1 && ver == META__REC_VERSION && !r->err ? 0 : LR_ECORRUPT;
}

int meta__claim_get(struct meta *m, struct lr_str player, struct meta__claim *c)
{
    struct meta__key k;
    struct mp r;
    meta__key_id(&k, player);
    int rv = meta__rec_get(m, META__DB(DIRECTORY), &k, 2, &r);
    if (rv != 0) {
        return rv;
    }
    c->region = mp_str(&r);
    c->claimed_ms = mp_i64(&r);
    return mp_done(&r) && valid_id(c->region.p, c->region.len, VALID_ID_MAX) ? 0 : LR_ECORRUPT;
}

int meta__tourn_get(struct meta *m, struct lr_str tournament, struct meta__tourn *t)
{
    struct meta__key k;
    struct mp r;
    meta__key_id(&k, tournament);
    int rv = meta__rec_get(m, META__DB(TOURNS), &k, 4, &r);
    if (rv != 0) {
        return rv;
    }
    t->cap = mp_i64(&r);
    t->start_ms = mp_i64(&r);
    t->end_ms = mp_i64(&r);
    t->participants = mp_i64(&r);
    return mp_done(&r) && t->participants >= 0 ? 0 : LR_ECORRUPT;
}

int meta__admit_get(struct meta *m, struct lr_str tournament, struct lr_str player,
                    struct meta__admit *a)
{
    struct meta__key k;
    struct mp r;
    meta__key_admit(&k, tournament, player);
    int rv = meta__rec_get(m, META__DB(ADMITS), &k, 2, &r);
    if (rv != 0) {
        return rv;
    }
    a->admitted_ms = mp_i64(&r);
    a->number = mp_i64(&r);
    return mp_done(&r) ? 0 : LR_ECORRUPT;
}

int meta__close_get(struct meta *m, struct lr_str board, int64_t cycle, struct meta__close *c)
{
    struct meta__key k;
    struct mp r;
    meta__key_close(&k, board, cycle);
    int rv = meta__rec_get(m, META__DB(CLOSES), &k, 2, &r);
    if (rv != 0) {
        return rv;
    }
    c->closed_ms = mp_i64(&r);
    c->record = mp_str(&r);
    return mp_done(&r) ? 0 : LR_ECORRUPT;
}

int meta__region_get(struct meta *m, struct lr_str region, struct meta__region *r)
{
    struct meta__key k;
    struct mp rd;
    meta__key_id(&k, region);
    int rv = meta__rec_get(m, META__DB(REGIONS), &k, 3, &rd);
    if (rv != 0) {
        return rv;
    }
    r->rpc = mp_str(&rd);
    r->added_ms = mp_i64(&rd);
    int64_t version = mp_i64(&rd);
    r->version = (uint64_t)version;
    return mp_done(&rd) && version > 0 && r->rpc.len <= META_REGION_RPC_BYTES ? 0 : LR_ECORRUPT;
}

int meta__region_read(const MDB_val *k, const MDB_val *v, struct lr_str *id, struct meta__region *r)
{
    struct mp rd;
    if (k->mv_size > VALID_ID_MAX) {
        return LR_ECORRUPT;
    }
    *id = (struct lr_str){k->mv_data, (uint32_t)k->mv_size};
    mp_init(&rd, v->mv_data, v->mv_size);
    uint32_t n = mp_array(&rd);
    int64_t ver = mp_i64(&rd);
    r->rpc = mp_str(&rd);
    r->added_ms = mp_i64(&rd);
    int64_t version = mp_i64(&rd);
    r->version = (uint64_t)version;
    return n == 4 && ver == META__REC_VERSION && mp_done(&rd) && version > 0 &&
                   r->rpc.len <= META_REGION_RPC_BYTES && valid_id(id->p, id->len, VALID_ID_MAX)
               ? 0
               : LR_ECORRUPT;
}

/* The address of @rpc that starts at *@pos, up to the next comma or the end; *@pos moves
 * past the comma. The one splitter of the list, so the check and the answer agree. */
static struct lr_str meta__rpc_next(struct lr_str rpc, size_t *pos)
{
    const char *p = rpc.p + *pos;
    size_t left = rpc.len - *pos;
    const char *comma = memchr(p, ',', left);
    size_t n = comma ? (size_t)(comma - p) : left;
    *pos += n + (comma != NULL);
    return (struct lr_str){p, (uint32_t)n}; /* n <= rpc.len */
}

/* Addresses in @rpc: one more than its commas (an empty string is one empty address). */
static uint32_t meta__rpc_count(struct lr_str rpc)
{
    uint32_t n = 1;
    for (size_t i = 0; i < rpc.len; i++) {
        n += rpc.p[i] == ',';
    }
    return n;
}

int meta__rpc_check(struct lr_str rpc, char *why)
{
    char addr[ADDR_HOST_MAX + 8], host[ADDR_HOST_MAX];
    uint16_t port;
    uint32_t n = meta__rpc_count(rpc);
    if (n > META_REGION_REPLICAS_MAX) {
        errmsg_set(why, LR_EINVAL, "rpc holds %u addresses (at most %d)", n,
                   META_REGION_REPLICAS_MAX);
        return 0;
    }
    size_t pos = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct lr_str a = meta__rpc_next(rpc, &pos);
        /* Printable and no space: the list is split on commas alone, and a router dials
         * these strings as they are. */
        int printable = 1;
        for (size_t j = 0; j < a.len; j++) {
            printable &= a.p[j] > ' ' && a.p[j] < 0x7f;
        }
        if (a.len == 0 || a.len >= sizeof addr || !printable) {
            errmsg_set(why, LR_EINVAL,
                       "rpc address %u must be a host:port without spaces (rpc is "
                       "\"host:port,host:port,...\")",
                       i + 1);
            return 0;
        }
        memcpy(addr, a.p, a.len);
        addr[a.len] = '\0';
        if (addr_split(addr, host, sizeof host, &port) != 0 || host[0] == '\0' || port == 0) {
            errmsg_set(why, LR_EINVAL,
                       "rpc address %u (%.64s) must be host:port with a port of 1 to 65535", i + 1,
                       addr);
            return 0;
        }
    }
    return 1;
}

int meta__change_read(const MDB_val *k, const MDB_val *v, struct meta__change *c)
{
    struct mp r;
    if (k->mv_size != 16) {
        return LR_ECORRUPT;
    }
    c->version = meta__get_u64(k->mv_data);
    uint64_t seq = meta__get_u64((const unsigned char *)k->mv_data + 8);
    c->seq = (uint32_t)seq;
    mp_init(&r, v->mv_data, v->mv_size);
    uint32_t n = mp_array(&r);
    int64_t ver = mp_i64(&r);
    c->kind = mp_i64(&r);
    c->id = mp_str(&r);
    c->body = mp_str(&r);
    return n == 4 && ver == META__REC_VERSION && mp_done(&r) && seq < MCMD_ENTRY_MAX &&
                   mcmd_kind_name(c->kind) != NULL
               ? 0
               : LR_ECORRUPT;
}

/* ---- answers ----------------------------------------------------------------------------- */

int meta__pack_str(msgpack_packer *pk, struct lr_str s)
{
    return msgpack_pack_str_with_body(pk, s.p, s.len);
}

int meta__pack_time(msgpack_packer *pk, int64_t ms)
{
    char buf[TIMEFMT_RFC3339_LEN + 1];
    if (timefmt_rfc3339(ms, buf) != 0) {
        return msgpack_pack_nil(pk);
    }
    return msgpack_pack_str_with_body(pk, buf, TIMEFMT_RFC3339_LEN);
}

void meta__pack_claim_pairs(msgpack_packer *pk, struct lr_str player, const struct meta__claim *r)
{
    META__PK_KEY(pk, "player_id");
    meta__pack_str(pk, player);
    META__PK_KEY(pk, "region");
    meta__pack_str(pk, r->region);
    META__PK_KEY(pk, "claimed_at");
    meta__pack_time(pk, r->claimed_ms);
}

void meta__pack_region(msgpack_packer *pk, struct lr_str id, const struct meta__region *r)
{
    uint32_t n = meta__rpc_count(r->rpc);
    size_t pos = 0;
    msgpack_pack_map(pk, 4);
    META__PK_KEY(pk, "region");
    meta__pack_str(pk, id);
    META__PK_KEY(pk, "rpc");
    msgpack_pack_array(pk, n);
    for (uint32_t i = 0; i < n; i++) {
        meta__pack_str(pk, meta__rpc_next(r->rpc, &pos));
    }
    META__PK_KEY(pk, "added_at");
    msgpack_pack_int64(pk, r->added_ms);
    META__PK_KEY(pk, "version");
    msgpack_pack_uint64(pk, r->version);
}

void meta__pack_close(msgpack_packer *pk, struct lr_str board, int64_t cycle,
                      const struct meta__close *r)
{
    msgpack_pack_map(pk, 4);
    META__PK_KEY(pk, "board_id");
    meta__pack_str(pk, board);
    META__PK_KEY(pk, "cycle");
    msgpack_pack_int64(pk, cycle);
    META__PK_KEY(pk, "closed_at");
    meta__pack_time(pk, r->closed_ms);
    META__PK_KEY(pk, "record");
    msgpack_pack_bin_with_body(pk, r->record.p, r->record.len);
}

/* ---- the applied index and the stamp ----------------------------------------------------- */

static int meta__state_get_u64(struct meta *m, const char *name, uint64_t *out)
{
    MDB_val v;
    int rv = store_get(m->st, META__DB(STATE), name, strlen(name), &v);
    *out = 0;
    if (rv == LR_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    if (v.mv_size != 8) {
        return LR_ECORRUPT;
    }
    *out = meta__get_u64(v.mv_data);
    return 0;
}

static int meta__state_put_u64(struct meta *m, const char *name, uint64_t v)
{
    struct meta__key k;
    meta__key_init(&k);
    meta__key_u64(&k, v);
    return store_put(m->st, META__DB(STATE), name, strlen(name), k.b, k.len);
}

/* Read the committed applied index and stamp; refuse a directory of other state. */
static int meta__load(struct meta *m)
{
    MDB_val v;
    uint64_t clock;
    int rv = store_get(m->st, META__DB(STATE), "region", 6, &v);
    if (rv == 0) {
        rv = errmsg_set(m->errmsg, LR_EINVAL, "load: this data belongs to region %.*s",
                        (int)v.mv_size, (const char *)v.mv_data);
        goto out;
    }
    if ((rv = meta__state_get_u64(m, "applied", &m->applied)) != 0 ||
        (rv = meta__state_get_u64(m, "clock", &clock)) != 0) {
        errmsg_set(m->errmsg, rv, "load: %s", err_message(rv));
        goto out;
    }
    if (clock > (uint64_t)MCMD_TS_MAX) {
        rv = errmsg_set(m->errmsg, LR_ECORRUPT, "load: clock %llu", (unsigned long long)clock);
        goto out;
    }
    m->clock_ms = (int64_t)clock;
    m->applied_committed = m->applied;
out:
    store_read_end(m->st);
    return rv;
}

/* Mark a new directory as meta's once, so the marker is there before the first entry. */
static int meta__init_state(struct meta *m)
{
    MDB_val v;
    int rv = store_get(m->st, META__DB(STATE), "group", 5, &v);
    store_read_end(m->st);
    if (rv != LR_ENOTFOUND) {
        return rv;
    }
    if ((rv = store_begin(m->st)) != 0) {
        return rv;
    }
    if ((rv = store_put(m->st, META__DB(STATE), "group", 5, META__GROUP, sizeof META__GROUP - 1)) !=
        0) {
        store_abort(m->st);
        return rv;
    }
    return store_commit(m->st);
}

static int meta__sbuf_write(void *data, const char *buf, size_t len)
{
    return msgpack_sbuffer_write(data, buf, len);
}

int meta_open(const struct meta_config *cfg, struct meta **out, char *errmsg)
{
    struct store_config sc = {cfg->dir, cfg->map_size, cfg->fast};
    struct meta *m;
    int rv;
    if ((m = calloc(1, sizeof *m)) == NULL) {
        return errmsg_set(errmsg, LR_ENOMEM, "meta: out of memory");
    }
    msgpack_sbuffer_init(&m->rbuf);
    msgpack_packer_init(&m->rpk, &m->rbuf, meta__sbuf_write);
    msgpack_sbuffer_init(&m->obuf);
    msgpack_packer_init(&m->opk, &m->obuf, meta__sbuf_write);
    if ((rv = store_open_dbs(&sc, meta__db_names, META__NDBS, &m->st, errmsg)) != 0) {
        goto err_after_alloc;
    }
    if ((rv = meta__load(m)) != 0) {
        snprintf(errmsg, LR_ERRMSG_SIZE, "meta: %.200s", m->errmsg);
        goto err_after_store;
    }
    if ((rv = meta__init_state(m)) != 0) {
        errmsg_set(errmsg, rv, "meta: init: %s", store_errmsg(m->st));
        goto err_after_store;
    }
    *out = m;
    return 0;

err_after_store:
    store_close(m->st);
err_after_alloc:
    msgpack_sbuffer_destroy(&m->rbuf);
    msgpack_sbuffer_destroy(&m->obuf);
    free(m);
    assert(rv != 0);
    return rv;
}

void meta_close(struct meta *m)
{
    if (m == NULL) {
        return;
    }
    store_close(m->st);
    msgpack_sbuffer_destroy(&m->rbuf);
    msgpack_sbuffer_destroy(&m->obuf);
    free(m);
}

int meta_commit(struct meta *m)
{
    int rv;
    if (!store_in_write(m->st)) {
        return 0;
    }
    if ((rv = meta__state_put_u64(m, "applied", m->applied)) != 0 ||
        (rv = meta__state_put_u64(m, "clock", (uint64_t)m->clock_ms)) != 0 ||
        (rv = store_commit(m->st)) != 0) {
        errmsg_set(m->errmsg, rv, "commit: %s", store_errmsg(m->st));
        meta_abort(m);
        return rv;
    }
    m->applied_committed = m->applied;
    return 0;
}

int meta_abort(struct meta *m)
{
    store_abort(m->st);
    return meta__load(m);
}

int meta_grow(struct meta *m)
{
    return store_grow(m->st);
}

int meta_copy(struct meta *m, int fd)
{
    if (store_in_write(m->st)) {
        return errmsg_set(m->errmsg, LR_EINVAL, "copy: a group is open");
    }
    int mrv = mdb_env_copyfd2(store_env(m->st), fd, MDB_CP_COMPACT);
    if (mrv != 0) {
        return errmsg_set(m->errmsg, err_from_mdb(mrv), "copy: %s", mdb_strerror(mrv));
    }
    return 0;
}

int meta_state_bytes(struct meta *m, uint64_t *out)
{
    return store_used_bytes(m->st, out);
}

MDB_env *meta_env(struct meta *m)
{
    return store_env(m->st);
}

uint64_t meta_applied_index(const struct meta *m)
{
    return m->applied;
}

int64_t meta_clock_ms(const struct meta *m)
{
    return m->clock_ms;
}

uint64_t meta_digest(const struct meta *m)
{
    return store_digest(m->st);
}

int meta_digest_scan(struct meta *m, uint64_t *out)
{
    return store_digest_scan(m->st, out);
}

const char *meta_errmsg(const struct meta *m)
{
    return m->errmsg;
}

void meta_usage(struct meta *m, struct store_usage *out)
{
    store_usage_get(m->st, out);
}
