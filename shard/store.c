/* shard/store.c — LMDB environment with a running state digest (see store.h).
 *
 * Why MDB_NOTLS: a read-only view and the write transaction live on the same loop thread, and
 * read views are reset and renewed rather than reopened, which is only allowed when reader
 * slots are not tied to threads. */
#include "store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/hash.h"

#define STORE__DIGEST_KEY "digest"

struct store {
    MDB_env *env;
    MDB_dbi dbi[STORE_DBS_MAX];
    const char *const *names; /* borrowed (store_open_dbs) */
    int ndbs;
    MDB_txn *wtxn;
    MDB_txn *rtxn; /* reset between uses, renewed on the next read */
    int rtxn_active;
    uint64_t digest; /* running, includes the open write transaction */
    uint64_t committed_digest;
    uint64_t map_size;
    int fast;
    char dir[4096];
    char errmsg[LR_ERRMSG_SIZE];
};

_Static_assert(STORE_NDBS <= STORE_DBS_MAX, "the region has more databases than a store holds");

static const char *const store__region_names[STORE_NDBS] = {
#define STORE__NAME(NAME, str) str,
    STORE_DBS(STORE__NAME)
#undef STORE__NAME
};

static uint64_t store__record_hash(enum store_db db, const void *k, size_t kl, const void *v,
                                   size_t vl)
{
    uint64_t h = hash_bytes(k, kl, 0x51ed270b + (uint64_t)db);
    return hash_mix(h, hash_bytes(v, vl, 0x2545f491));
}

static int store__is_digest_key(enum store_db db, const void *k, size_t kl)
{
    return db == 0 && kl == sizeof STORE__DIGEST_KEY - 1 && memcmp(k, STORE__DIGEST_KEY, kl) == 0;
}

/* Reserve the map's blocks so a full disk surfaces as a clean MDB_MAP_FULL-like error at grow
 * time instead of SIGBUS on a page write through MDB_WRITEMAP. */
static int store__preallocate(struct store *st)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", st->dir);
    int fd = open(path, O_RDWR);
    if (fd < 0) {
        return errmsg_set(st->errmsg, LR_EIO, "store: open %s: %s", path, strerror(errno));
    }
    int err = posix_fallocate(fd, 0, (off_t)st->map_size);
    close(fd);
    if (err != 0) {
        return errmsg_set(st->errmsg, err == ENOSPC ? LR_ENOSPC : LR_EIO,
                          "store: reserve %llu bytes: %s", (unsigned long long)st->map_size,
                          strerror(err));
    }
    return 0;
}

int store_open(const struct store_config *cfg, struct store **out, char *errmsg)
{
    return store_open_dbs(cfg, store__region_names, STORE_NDBS, out, errmsg);
}

int store_open_dbs(const struct store_config *cfg, const char *const *names, int n,
                   struct store **out, char *errmsg)
{
    struct store *st;
    MDB_txn *txn = NULL;
    int rv, mrv;
    if (n < 1 || n > STORE_DBS_MAX) {
        return errmsg_set(errmsg, LR_EINVAL, "store: %d databases (1 to %d)", n, STORE_DBS_MAX);
    }
    if ((st = calloc(1, sizeof *st)) == NULL) {
        return errmsg_set(errmsg, LR_ENOMEM, "store: out of memory");
    }
    st->names = names;
    st->ndbs = n;
    snprintf(st->dir, sizeof st->dir, "%s", cfg->dir);
    st->map_size = cfg->map_size ? cfg->map_size : (64ULL << 20);
    st->fast = cfg->fast;
    if (mkdir(cfg->dir, 0700) != 0 && errno != EEXIST) {
        rv = errmsg_set(errmsg, LR_EIO, "store: mkdir %s: %s", cfg->dir, strerror(errno));
        goto err_after_alloc;
    }
    if ((mrv = mdb_env_create(&st->env)) != 0) {
        rv = errmsg_set(errmsg, err_from_mdb(mrv), "store: %s", mdb_strerror(mrv));
        goto err_after_alloc;
    }
    mdb_env_set_maxdbs(st->env, (MDB_dbi)st->ndbs + 2);
    mdb_env_set_maxreaders(st->env, 126);
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
    if (st->fast) {
        flags |= MDB_NOSYNC | MDB_WRITEMAP | MDB_MAPASYNC;
    }
    /* A map smaller than the file is raised to the file size by LMDB itself. */
    if ((mrv = mdb_env_set_mapsize(st->env, st->map_size)) != 0 ||
        (mrv = mdb_env_open(st->env, cfg->dir, flags, 0600)) != 0) {
        rv = errmsg_set(errmsg, err_from_mdb(mrv), "store: open %s: %s", cfg->dir,
                        mdb_strerror(mrv));
        goto err_after_env;
    }
    MDB_envinfo info;
    mdb_env_info(st->env, &info);
    st->map_size = info.me_mapsize;
    int dead = 0;
    mdb_reader_check(st->env, &dead); /* slots left by a killed process */
    if (st->fast && (rv = store__preallocate(st)) != 0) {
        snprintf(errmsg, LR_ERRMSG_SIZE, "%s", st->errmsg);
        goto err_after_env;
    }
    if ((mrv = mdb_txn_begin(st->env, NULL, 0, &txn)) != 0) {
        rv = errmsg_set(errmsg, err_from_mdb(mrv), "store: begin: %s", mdb_strerror(mrv));
        goto err_after_env;
    }
    for (int i = 0; i < st->ndbs; i++) {
        if ((mrv = mdb_dbi_open(txn, st->names[i], MDB_CREATE, &st->dbi[i])) != 0) {
            rv = errmsg_set(errmsg, err_from_mdb(mrv), "store: open db %s: %s", st->names[i],
                            mdb_strerror(mrv));
            goto err_after_txn;
        }
    }
    MDB_val k = {sizeof STORE__DIGEST_KEY - 1, (void *)STORE__DIGEST_KEY}, v;
    mrv = mdb_get(txn, st->dbi[STORE_META], &k, &v);
    if (mrv == 0) {
        if (v.mv_size != 8) {
            rv = errmsg_set(errmsg, LR_ECORRUPT, "store: digest record of %zu bytes", v.mv_size);
            goto err_after_txn;
        }
        memcpy(&st->digest, v.mv_data, 8);
    } else if (mrv != MDB_NOTFOUND) {
        rv = errmsg_set(errmsg, err_from_mdb(mrv), "store: read digest: %s", mdb_strerror(mrv));
        goto err_after_txn;
    }
    if ((mrv = mdb_txn_commit(txn)) != 0) {
        rv = errmsg_set(errmsg, err_from_mdb(mrv), "store: commit: %s", mdb_strerror(mrv));
        goto err_after_env;
    }
    st->committed_digest = st->digest;
    *out = st;
    return 0;

err_after_txn:
    mdb_txn_abort(txn);
err_after_env:
    mdb_env_close(st->env);
err_after_alloc:
    free(st);
    assert(rv != 0);
    return rv;
}

void store_close(struct store *st)
{
    if (st == NULL) {
        return;
    }
    if (st->wtxn) {
        store_abort(st);
    }
    if (st->rtxn) {
        mdb_txn_abort(st->rtxn);
    }
    if (st->fast) {
        mdb_env_sync(st->env, 1);
    }
    mdb_env_close(st->env);
    free(st);
}

int store_begin(struct store *st)
{
    assert(st->wtxn == NULL);
    int mrv = mdb_txn_begin(st->env, NULL, 0, &st->wtxn);
    if (mrv != 0) {
        st->wtxn = NULL;
        return errmsg_set(st->errmsg, err_from_mdb(mrv), "store: begin: %s", mdb_strerror(mrv));
    }
    return 0;
}

int store_in_write(const struct store *st)
{
    return st->wtxn != NULL;
}

int store_commit(struct store *st)
{
    assert(st->wtxn != NULL);
    MDB_val k = {sizeof STORE__DIGEST_KEY - 1, (void *)STORE__DIGEST_KEY};
    MDB_val v = {8, &st->digest};
    int mrv = mdb_put(st->wtxn, st->dbi[STORE_META], &k, &v, 0);
    if (mrv == 0) {
        mrv = mdb_txn_commit(st->wtxn);
        st->wtxn = NULL;
    }
    if (mrv != 0) {
        if (st->wtxn) {
            mdb_txn_abort(st->wtxn);
            st->wtxn = NULL;
        }
        st->digest = st->committed_digest;
        return errmsg_set(st->errmsg, err_from_mdb(mrv), "store: commit: %s", mdb_strerror(mrv));
    }
    st->committed_digest = st->digest;
    return 0;
}

void store_abort(struct store *st)
{
    if (st->wtxn) {
        mdb_txn_abort(st->wtxn);
        st->wtxn = NULL;
    }
    st->digest = st->committed_digest;
}

int store_read(struct store *st, MDB_txn **txn)
{
    int mrv;
    if (st->wtxn) {
        *txn = st->wtxn;
        return 0;
    }
    if (!st->rtxn_active) {
        mrv = st->rtxn ? mdb_txn_renew(st->rtxn)
                       : mdb_txn_begin(st->env, NULL, MDB_RDONLY, &st->rtxn);
        if (mrv != 0) {
            if (st->rtxn) {
                mdb_txn_abort(st->rtxn);
                st->rtxn = NULL;
            }
            return errmsg_set(st->errmsg, err_from_mdb(mrv), "store: read: %s", mdb_strerror(mrv));
        }
        st->rtxn_active = 1;
    }
    *txn = st->rtxn;
    return 0;
}

void store_read_end(struct store *st)
{
    if (st->rtxn_active) {
        mdb_txn_reset(st->rtxn);
        st->rtxn_active = 0;
    }
}

MDB_dbi store_dbi(const struct store *st, enum store_db db)
{
    return st->dbi[db];
}

int store_get(struct store *st, enum store_db db, const void *key, size_t klen, MDB_val *val)
{
    MDB_txn *txn;
    int rv = store_read(st, &txn);
    if (rv != 0) {
        return rv;
    }
    MDB_val k = {klen, (void *)key};
    int mrv = mdb_get(txn, st->dbi[db], &k, val);
    if (mrv == MDB_NOTFOUND) {
        return LR_ENOTFOUND;
    }
    if (mrv != 0) {
        return errmsg_set(st->errmsg, err_from_mdb(mrv), "store: get %s: %s", st->names[db],
                          mdb_strerror(mrv));
    }
    return 0;
}

int store_put(struct store *st, enum store_db db, const void *key, size_t klen, const void *val,
              size_t vlen)
{
    assert(st->wtxn != NULL);
    assert(!store__is_digest_key(db, key, klen));
    MDB_val k = {klen, (void *)key}, old;
    int mrv = mdb_get(st->wtxn, st->dbi[db], &k, &old);
    uint64_t sub = 0;
    if (mrv == 0) {
        sub = store__record_hash(db, key, klen, old.mv_data, old.mv_size);
    } else if (mrv != MDB_NOTFOUND) {
        goto err;
    }
    MDB_val v = {vlen, (void *)val};
    if ((mrv = mdb_put(st->wtxn, st->dbi[db], &k, &v, 0)) != 0) {
        goto err;
    }
    st->digest += store__record_hash(db, key, klen, val, vlen) - sub;
    return 0;
err:
    return errmsg_set(st->errmsg, err_from_mdb(mrv), "store: put %s: %s", st->names[db],
                      mdb_strerror(mrv));
}

uint64_t store_record_hash(enum store_db db, const void *key, size_t klen, const void *val,
                           size_t vlen)
{
    return store__record_hash(db, key, klen, val, vlen);
}

int store_put_known(struct store *st, enum store_db db, const void *key, size_t klen,
                    const void *val, size_t vlen, int had_old, uint64_t old_hash)
{
    assert(st->wtxn != NULL);
    assert(!store__is_digest_key(db, key, klen));
    MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
    int mrv = mdb_put(st->wtxn, st->dbi[db], &k, &v, 0);
    if (mrv != 0) {
        return errmsg_set(st->errmsg, err_from_mdb(mrv), "store: put %s: %s", st->names[db],
                          mdb_strerror(mrv));
    }
    st->digest += store__record_hash(db, key, klen, val, vlen) - (had_old ? old_hash : 0);
    return 0;
}

int store_del(struct store *st, enum store_db db, const void *key, size_t klen)
{
    assert(st->wtxn != NULL);
    MDB_val k = {klen, (void *)key}, old;
    int mrv = mdb_get(st->wtxn, st->dbi[db], &k, &old);
    if (mrv == MDB_NOTFOUND) {
        return LR_ENOTFOUND;
    }
    if (mrv != 0) {
        goto err;
    }
    uint64_t sub = store__record_hash(db, key, klen, old.mv_data, old.mv_size);
    if ((mrv = mdb_del(st->wtxn, st->dbi[db], &k, NULL)) != 0) {
        goto err;
    }
    st->digest -= sub;
    return 0;
err:
    return errmsg_set(st->errmsg, err_from_mdb(mrv), "store: del %s: %s", st->names[db],
                      mdb_strerror(mrv));
}

uint64_t store_digest(const struct store *st)
{
    return st->digest;
}

int store_digest_scan(struct store *st, uint64_t *out)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t sum = 0;
    int rv = store_read(st, &txn), mrv;
    if (rv != 0) {
        return rv;
    }
    for (int db = 0; db < st->ndbs; db++) {
        if ((mrv = mdb_cursor_open(txn, st->dbi[db], &cur)) != 0) {
            rv = errmsg_set(st->errmsg, err_from_mdb(mrv), "store: scan: %s", mdb_strerror(mrv));
            goto out;
        }
        for (mrv = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrv == 0;
             mrv = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            if (!store__is_digest_key((enum store_db)db, k.mv_data, k.mv_size)) {
                sum += store__record_hash((enum store_db)db, k.mv_data, k.mv_size, v.mv_data,
                                          v.mv_size);
            }
        }
        mdb_cursor_close(cur);
        if (mrv != MDB_NOTFOUND) {
            rv = errmsg_set(st->errmsg, err_from_mdb(mrv), "store: scan: %s", mdb_strerror(mrv));
            goto out;
        }
    }
    *out = sum;
out:
    store_read_end(st);
    return rv;
}

int store_grow(struct store *st)
{
    assert(st->wtxn == NULL);
    store_read_end(st);
    if (st->rtxn) {
        mdb_txn_abort(st->rtxn);
        st->rtxn = NULL;
    }
    uint64_t size = st->map_size * 2;
    int mrv = mdb_env_set_mapsize(st->env, size);
    if (mrv != 0) {
        return errmsg_set(st->errmsg, err_from_mdb(mrv), "store: grow to %llu: %s",
                          (unsigned long long)size, mdb_strerror(mrv));
    }
    st->map_size = size;
    return st->fast ? store__preallocate(st) : 0;
}

void store_usage_get(struct store *st, struct store_usage *out)
{
    MDB_envinfo info;
    MDB_stat stat;
    mdb_env_info(st->env, &info);
    mdb_env_stat(st->env, &stat);
    out->map_bytes = info.me_mapsize;
    out->used_bytes = ((uint64_t)info.me_last_pgno + 1) * stat.ms_psize;
    out->preallocated = st->fast;
}

int store_used_bytes(struct store *st, uint64_t *out)
{
    MDB_txn *txn;
    MDB_dbi main_dbi;
    MDB_stat ms;
    uint64_t pages = 2; /* the meta pages */
    int rv = store_read(st, &txn), mrv;
    if (rv != 0) {
        return rv;
    }
    if ((mrv = mdb_dbi_open(txn, NULL, 0, &main_dbi)) != 0) {
        goto err;
    }
    for (int i = -1; i < st->ndbs; i++) {
        if ((mrv = mdb_stat(txn, i < 0 ? main_dbi : st->dbi[i], &ms)) != 0) {
            goto err;
        }
        pages += ms.ms_branch_pages + ms.ms_leaf_pages + ms.ms_overflow_pages;
    }
    store_read_end(st);
    *out = pages * ms.ms_psize;
    return 0;
err:
    store_read_end(st);
    return errmsg_set(st->errmsg, err_from_mdb(mrv), "store: stat: %s", mdb_strerror(mrv));
}

const char *store_errmsg(const struct store *st)
{
    return st->errmsg;
}

MDB_env *store_env(struct store *st)
{
    return st->env;
}
