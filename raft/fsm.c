/* raft/fsm.c — see fsm.h. */
#include "fsm.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../proto/proto.h"
#include "../shard/store.h"

#define FSM__GROW_TRIES 8

/* ---- collecting what an entry produced ------------------------------------------------------- */

static void fsm__result(void *data, uint32_t i, int status, const char *body, size_t len,
                        int replayed)
{
    struct fsm *f = data;
    if (i >= f->cap) {
        uint32_t ncap = f->cap ? f->cap * 2 : 64;
        while (ncap <= i) {
            ncap *= 2;
        }
        int *s = realloc(f->status, ncap * sizeof *s), *r = NULL;
        size_t *o = NULL, *l = NULL;
        if (s) {
            f->status = s;
            r = realloc(f->replayed, ncap * sizeof *r);
        }
        if (r) {
            f->replayed = r;
            o = realloc(f->off, ncap * sizeof *o);
        }
        if (o) {
            f->off = o;
            l = realloc(f->len, ncap * sizeof *l);
        }
        if (l == NULL) {
            f->oom = 1;
            return;
        }
        f->len = l;
        f->cap = ncap;
    }
    f->status[i] = status;
    f->replayed[i] = replayed;
    f->off[i] = f->results.size;
    f->len[i] = len;
    if (msgpack_sbuffer_write(&f->results, body, len) != 0) {
        f->oom = 1;
    }
    f->nresults = i + 1;
}

static void fsm__event(void *data, const char *body, size_t len)
{
    struct fsm *f = data;
    if (msgpack_sbuffer_write(&f->events, body, len) != 0) {
        f->oom = 1;
    }
    f->nevents++;
}

static void fsm__reset(struct fsm *f)
{
    msgpack_sbuffer_clear(&f->results);
    msgpack_sbuffer_clear(&f->events);
    f->nresults = f->nevents = 0;
    f->oom = 0;
}

static int fsm__fatal(struct fsm *f, int rv, const char *what)
{
    char msg[LR_ERRMSG_SIZE + 64];
    snprintf(msg, sizeof msg, "%s: %s", what, f->ops->errmsg(f));
    if (f->hooks.fatal) {
        f->hooks.fatal(f->hooks.data, rv, msg);
    }
    return RAFT_IOERR;
}

/* ---- apply ---------------------------------------------------------------------------------- */

/* Double the map. LMDB remaps the environment, which a snapshot copy on a worker is reading:
 * wait for the copy to finish (the loop stalls for the rest of it, once per growth). */
static int fsm__grow(struct fsm *f)
{
    pthread_mutex_lock(&f->snap_mu);
    int rv = f->ops->grow(f);
    pthread_mutex_unlock(&f->snap_mu);
    return rv;
}

static int fsm__apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct fsm *f = rf->data;
    uint64_t index = raft_last_applied(f->raft) + 1;
    int rv = 0;
    /* Results go to the node through the hooks: libraft would leak a result object on
     * followers, where no request waits for it. */
    *result = NULL;
    for (int attempt = 0; attempt < FSM__GROW_TRIES; attempt++) {
        fsm__reset(f);
        rv = f->ops->apply(f, index, buf->base, buf->len);
        if (rv == 0) {
            rv = f->ops->commit(f);
        }
        if (rv == 0 && f->oom) {
            rv = LR_ENOMEM;
        }
        if (rv == 0) {
            break;
        }
        if (f->ops->abort(f) != 0) {
            return fsm__fatal(f, rv, "apply: reload after abort");
        }
        if (rv != LR_EMAPFULL || fsm__grow(f) != 0) {
            return fsm__fatal(f, rv, "apply");
        }
    }
    if (rv != 0) {
        return fsm__fatal(f, rv, "apply: map still full after growing");
    }
    unsigned bucket = 0;
    while (bucket + 1 < FSM_BATCH_BUCKETS && (1u << bucket) < f->nresults) {
        bucket++;
    }
    f->batch_hist[bucket]++;
    f->applied_entries++;
    f->applied_commands += f->nresults;
    if (f->hooks.applied) {
        struct fsm_applied a = {index,  buf,    f->nresults, f->status,  f->replayed,
                                f->off, f->len, &f->results, f->nevents, &f->events};
        f->hooks.applied(f->hooks.data, &a);
    }
    return 0;
}

/* ---- snapshot and restore -----------------------------------------------------------------------
 */

/* The snapshot, in libraft 0.15's asynchronous shape (raft_fsm version 3; docs/durability.md,
 * "Snapshots"):
 *
 *   snapshot (loop)           takes the environment's handle and a memory file: microseconds.
 *   snapshot_async (worker)   copies the environment, compacted, into the memory file and maps
 *                             it: the buffer libraft writes is that mapping, not a heap copy.
 *   snapshot_finalize (loop)  unmaps and closes, whether the snapshot was written or not.
 *
 * The loop applies entries while the worker copies, so the copy holds the state at the index
 * libraft labels the snapshot with or at a later one: LMDB's copy opens its own read
 * transaction when it starts. That is safe because the applied index is stored with the state
 * (fsm.h): after a restore libraft replays the entries after the label, and the state skips
 * those at or below its own applied index. What the worker must never see is the environment
 * remapped or closed under it: growing the map (fsm__apply), a restore and fsm_close take
 * @snap_mu, which the worker holds for the copy. */
static int fsm__snapshot_async(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs);
static int fsm__snapshot_finalize(struct raft_fsm *rf, struct raft_buffer *bufs[],
                                  unsigned *n_bufs);

static int fsm__snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct fsm *f = rf->data;
    assert(f->snap_fd < 0); /* libraft takes one snapshot at a time */
    struct raft_buffer *b = raft_malloc(sizeof *b);
    if (b == NULL) {
        return RAFT_NOMEM;
    }
    int fd = memfd_create("laurel-snapshot", MFD_CLOEXEC);
    if (fd < 0) {
        raft_free(b);
        return RAFT_IOERR;
    }
    b->base = NULL;
    b->len = 0;
    f->snap_fd = fd;
    f->snap_index = f->ops->applied_index(f); /* the state's: the copy holds it or later */
    f->snap_env = f->ops->env(f);
    *bufs = b;
    *n_bufs = 1;
    if (rf->snapshot_async == NULL) {
        int rv = fsm__snapshot_async(rf, bufs, n_bufs); /* on the loop, as libraft expects */
        if (rv != 0) {
            fsm__snapshot_finalize(rf, bufs, n_bufs); /* libraft finalizes only a success */
        }
        return rv;
    }
    return 0;
}

static uint64_t fsm__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* On a libuv worker: nothing here touches the fsm but the snapshot's own fields and the
 * environment, which LMDB lets a reader use from any thread (MDB_NOTLS, store.c). Without a
 * worker (fsm_snapshot_on_worker not called) fsm__snapshot runs it on the loop. */
static int fsm__snapshot_async(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct fsm *f = rf->data;
    struct stat st;
    int rv = RAFT_IOERR;
    uint64_t t0 = fsm__now_ns();
    assert(*n_bufs == 1);
    pthread_mutex_lock(&f->snap_mu);
    if (mdb_env_copyfd2(f->snap_env, f->snap_fd, MDB_CP_COMPACT) != 0 ||
        fstat(f->snap_fd, &st) != 0 || st.st_size <= 0) {
        goto out;
    }
    f->snap_bytes = (uint64_t)st.st_size;
    if (f->snap_bytes > FSM_SNAPSHOT_MAX) {
        /* libraft would write it, then fail to read it back at the next start or when it
         * sends it to a follower: keep the last loadable snapshot and the log instead. The
         * node refuses writes long before this (node.h, NODE_STATE_MAX_DEFAULT). */
        rv = RAFT_TOOBIG;
        goto out;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, f->snap_fd, 0);
    if (p == MAP_FAILED) {
        goto out;
    }
    (*bufs)[0].base = p;
    (*bufs)[0].len = (size_t)st.st_size;
    rv = 0;
out:
    pthread_mutex_unlock(&f->snap_mu);
    f->snap_copy_ns = fsm__now_ns() - t0;
    return rv;
}

static int fsm__snapshot_finalize(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct fsm *f = rf->data;
    int done = 0;
    if (*bufs != NULL) {
        if ((*bufs)[0].base != NULL) {
            munmap((*bufs)[0].base, (*bufs)[0].len);
            done = 1;
        }
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    if (f->snap_fd >= 0) {
        close(f->snap_fd);
        f->snap_fd = -1;
    }
    f->snap_env = NULL;
    if (done) {
        f->snapshots++;
        f->snapshot_bytes = f->snap_bytes;
        if (f->hooks.snapshot) {
            f->hooks.snapshot(f->hooks.data, f->snap_index, f->snap_bytes, f->snap_copy_ns);
        }
    }
    return 0;
}

static int fsm__write_file(const char *path, const void *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -1;
    }
    const char *c = p;
    while (len > 0) {
        ssize_t n = write(fd, c, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            close(fd);
            return -1;
        }
        c += n;
        len -= (size_t)n;
    }
    int rv = fsync(fd);
    close(fd);
    return rv;
}

static int fsm__rmrf(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", dir);
    unlink(path);
    return rmdir(dir) == 0 || errno == ENOENT ? 0 : -1;
}

/* Replace the environment with @buf: write it beside the live one, swap directories, reopen.
 * libraft frees @buf's memory on success (it owns it). */
static int fsm__restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct fsm *f = rf->data;
    char next[4200], old[4200], path[4300], errmsg[LR_ERRMSG_SIZE];
    snprintf(next, sizeof next, "%s.restore", f->dir);
    snprintf(old, sizeof old, "%s.old", f->dir);
    fsm__rmrf(next);
    fsm__rmrf(old);
    snprintf(path, sizeof path, "%s/data.mdb", next);
    if (mkdir(next, 0700) != 0 || fsm__write_file(path, buf->base, buf->len) != 0) {
        return RAFT_IOERR;
    }
    /* libraft installs no snapshot while it takes one; the lock keeps that true for us. */
    pthread_mutex_lock(&f->snap_mu);
    f->ops->close(f);
    if (rename(f->dir, old) != 0 || rename(next, f->dir) != 0) {
        pthread_mutex_unlock(&f->snap_mu);
        if (f->hooks.fatal) {
            f->hooks.fatal(f->hooks.data, LR_EIO, "restore: swap directories");
        }
        return RAFT_IOERR;
    }
    fsm__rmrf(old);
    int orv = f->ops->open(f, errmsg);
    pthread_mutex_unlock(&f->snap_mu);
    if (orv != 0) {
        if (f->hooks.fatal) {
            f->hooks.fatal(f->hooks.data, LR_ECORRUPT, errmsg);
        }
        return RAFT_IOERR;
    }
    raft_free(buf->base);
    if (f->hooks.restored) {
        f->hooks.restored(f->hooks.data);
    }
    return 0;
}

/* ---- the kinds ---------------------------------------------------------------------------- */

static int fsm__shard_open(struct fsm *f, char *errmsg)
{
    f->cfg.dir = f->dir;
    return shard_open(&f->cfg, &f->shard, errmsg);
}

static void fsm__shard_close(struct fsm *f)
{
    shard_close(f->shard);
    f->shard = NULL;
}

static void fsm__shard_result(void *data, uint32_t i, int status, const char *body, size_t len,
                              int replayed)
{
    fsm__result(data, i, status, body, len, replayed);
}

static int fsm__shard_apply(struct fsm *f, uint64_t index, const void *buf, size_t len)
{
    struct shard_sink sink = {f, fsm__shard_result, fsm__event};
    return shard_apply(f->shard, index, buf, len, &sink);
}

static int fsm__shard_commit(struct fsm *f)
{
    return shard_commit(f->shard);
}

static int fsm__shard_abort(struct fsm *f)
{
    return shard_abort(f->shard);
}

static int fsm__shard_grow(struct fsm *f)
{
    return shard_grow(f->shard);
}

static int fsm__shard_copy(struct fsm *f, int fd)
{
    return shard_copy(f->shard, fd);
}

static int fsm__shard_bytes(struct fsm *f, uint64_t *out)
{
    return shard_state_bytes(f->shard, out);
}

static MDB_env *fsm__shard_env(struct fsm *f)
{
    return shard_env(f->shard);
}

static const char *fsm__shard_errmsg(const struct fsm *f)
{
    return f->shard ? shard_errmsg(f->shard) : "shard closed";
}

static void fsm__shard_usage(struct fsm *f, struct store_usage *out)
{
    shard_usage(f->shard, out);
}

static uint64_t fsm__shard_applied(const struct fsm *f)
{
    return shard_applied_index(f->shard);
}

static int64_t fsm__shard_clock(const struct fsm *f)
{
    return shard_clock_ms(f->shard);
}

static uint32_t fsm__shard_audit_days(const struct fsm *f)
{
    return shard_audit_days(f->shard);
}

static uint64_t fsm__shard_digest(const struct fsm *f)
{
    return shard_digest(f->shard);
}

static int fsm__shard_qdecode(const msgpack_object *o, union fsm_query *q, int *stale, char *errmsg)
{
    return proto_query_decode(o, &q->shard, stale, errmsg);
}

static int fsm__shard_query(struct fsm *f, union fsm_query *q, int64_t now_ms, msgpack_sbuffer *out,
                            char *errmsg)
{
    if (q->shard.now_ms == 0) {
        q->shard.now_ms = now_ms;
    }
    return shard_query(f->shard, &q->shard, out, errmsg);
}

static int fsm__meta_open(struct fsm *f, char *errmsg)
{
    struct meta_config mc = {f->dir, 0, f->cfg.fast};
    return meta_open(&mc, &f->meta, errmsg);
}

static void fsm__meta_close(struct fsm *f)
{
    meta_close(f->meta);
    f->meta = NULL;
}

/* meta's results are never replays: its commands carry no idempotency key (mcmd.h). */
static void fsm__meta_result(void *data, uint32_t i, int status, const char *body, size_t len)
{
    fsm__result(data, i, status, body, len, 0);
}

static int fsm__meta_apply(struct fsm *f, uint64_t index, const void *buf, size_t len)
{
    struct meta_sink sink = {f, fsm__meta_result};
    return meta_apply(f->meta, index, buf, len, &sink);
}

static int fsm__meta_commit(struct fsm *f)
{
    return meta_commit(f->meta);
}

static int fsm__meta_abort(struct fsm *f)
{
    return meta_abort(f->meta);
}

static int fsm__meta_grow(struct fsm *f)
{
    return meta_grow(f->meta);
}

static int fsm__meta_copy(struct fsm *f, int fd)
{
    return meta_copy(f->meta, fd);
}

static int fsm__meta_bytes(struct fsm *f, uint64_t *out)
{
    return meta_state_bytes(f->meta, out);
}

static MDB_env *fsm__meta_env(struct fsm *f)
{
    return meta_env(f->meta);
}

static const char *fsm__meta_errmsg(const struct fsm *f)
{
    return f->meta ? meta_errmsg(f->meta) : "meta closed";
}

static void fsm__meta_usage(struct fsm *f, struct store_usage *out)
{
    meta_usage(f->meta, out);
}

static uint64_t fsm__meta_applied(const struct fsm *f)
{
    return meta_applied_index(f->meta);
}

static int64_t fsm__meta_clock(const struct fsm *f)
{
    return meta_clock_ms(f->meta);
}

static uint32_t fsm__meta_audit_days(const struct fsm *f)
{
    (void)f;
    return 0;
}

static uint64_t fsm__meta_digest(const struct fsm *f)
{
    return meta_digest(f->meta);
}

static int fsm__meta_qdecode(const msgpack_object *o, union fsm_query *q, int *stale, char *errmsg)
{
    return meta_query_decode(o, &q->meta, stale, errmsg);
}

static int fsm__meta_query(struct fsm *f, union fsm_query *q, int64_t now_ms, msgpack_sbuffer *out,
                           char *errmsg)
{
    (void)now_ms; /* meta's answers do not depend on the reader's clock */
    return meta_query(f->meta, &q->meta, out, errmsg);
}

static const struct fsm_ops fsm__ops[FSM__KIND_END] = {
#define FSM__OPS(NAME, name, sm)                                                                   \
    [FSM_##NAME] = {                                                                               \
        .open = fsm__##sm##_open,                                                                  \
        .close = fsm__##sm##_close,                                                                \
        .apply = fsm__##sm##_apply,                                                                \
        .commit = fsm__##sm##_commit,                                                              \
        .abort = fsm__##sm##_abort,                                                                \
        .grow = fsm__##sm##_grow,                                                                  \
        .copy = fsm__##sm##_copy,                                                                  \
        .env = fsm__##sm##_env,                                                                    \
        .bytes = fsm__##sm##_bytes,                                                                \
        .usage = fsm__##sm##_usage,                                                                \
        .errmsg = fsm__##sm##_errmsg,                                                              \
        .applied_index = fsm__##sm##_applied,                                                      \
        .clock_ms = fsm__##sm##_clock,                                                             \
        .audit_days = fsm__##sm##_audit_days,                                                      \
        .digest = fsm__##sm##_digest,                                                              \
        .query_decode = fsm__##sm##_qdecode,                                                       \
        .query = fsm__##sm##_query,                                                                \
    },
    FSM_KINDS(FSM__OPS)
#undef FSM__OPS
};

static const char *const fsm__kind_names[FSM__KIND_END] = {
#define FSM__KNAME(NAME, name, sm) [FSM_##NAME] = #name,
    FSM_KINDS(FSM__KNAME)
#undef FSM__KNAME
};

const char *fsm_kind_name(int kind)
{
    return kind >= 0 && kind < FSM__KIND_END ? fsm__kind_names[kind] : NULL;
}

int fsm_kind_parse(const char *name, enum fsm_kind *kind)
{
    for (int k = 0; k < FSM__KIND_END; k++) {
        if (strcmp(name, fsm__kind_names[k]) == 0) {
            *kind = (enum fsm_kind)k;
            return 0;
        }
    }
    return -1;
}

uint64_t fsm_applied_index(const struct fsm *f)
{
    return f->ops->applied_index(f);
}

int64_t fsm_clock_ms(const struct fsm *f)
{
    return f->ops->clock_ms(f);
}

uint32_t fsm_audit_days(const struct fsm *f)
{
    return f->ops->audit_days(f);
}

void fsm_snapshot_on_worker(struct fsm *f)
{
    f->raft_fsm.snapshot_async = fsm__snapshot_async;
}

int fsm_state_bytes(struct fsm *f, uint64_t *out)
{
    return f->ops->bytes(f, out);
}

uint64_t fsm_digest(const struct fsm *f)
{
    return f->ops->digest(f);
}

void fsm_usage(struct fsm *f, struct store_usage *out)
{
    f->ops->usage(f, out);
}

int fsm_query_decode(const struct fsm *f, const msgpack_object *o, union fsm_query *q, int *stale,
                     char *errmsg)
{
    return f->ops->query_decode(o, q, stale, errmsg);
}

int fsm_query(struct fsm *f, union fsm_query *q, int64_t now_ms, msgpack_sbuffer *out, char *errmsg)
{
    return f->ops->query(f, q, now_ms, out, errmsg);
}

int fsm_init(struct fsm *f, enum fsm_kind kind, const char *dir, const char *region, int fast,
             const struct fsm_hooks *hooks, char *errmsg)
{
    memset(f, 0, sizeof *f);
    if ((int)kind < 0 || kind >= FSM__KIND_END) {
        return errmsg_set(errmsg, LR_EINVAL, "fsm: unknown kind %d", (int)kind);
    }
    f->kind = kind;
    f->ops = &fsm__ops[kind];
    snprintf(f->dir, sizeof f->dir, "%s", dir);
    snprintf(f->region, sizeof f->region, "%s", region);
    f->cfg.dir = f->dir;
    f->cfg.region = f->region;
    f->cfg.map_size = 256ULL << 20;
    f->cfg.fast = fast;
    if (hooks) {
        f->hooks = *hooks;
    }
    msgpack_sbuffer_init(&f->results);
    msgpack_sbuffer_init(&f->events);
    int rv = f->ops->open(f, errmsg);
    if (rv != 0) {
        msgpack_sbuffer_destroy(&f->results);
        msgpack_sbuffer_destroy(&f->events);
        return rv;
    }
    pthread_mutex_init(&f->snap_mu, NULL);
    f->snap_fd = -1;
    f->raft_fsm.version = 3;
    f->raft_fsm.data = f;
    f->raft_fsm.apply = fsm__apply;
    f->raft_fsm.snapshot = fsm__snapshot;
    f->raft_fsm.restore = fsm__restore;
    f->raft_fsm.snapshot_finalize = fsm__snapshot_finalize;
    f->raft_fsm.snapshot_async = NULL; /* fsm_snapshot_on_worker */
    return 0;
}

void fsm_close(struct fsm *f)
{
    if (f->ops) {
        /* libraft's close waits for its async work; the lock makes sure of it. */
        pthread_mutex_lock(&f->snap_mu);
        f->ops->close(f);
        pthread_mutex_unlock(&f->snap_mu);
        pthread_mutex_destroy(&f->snap_mu);
        if (f->snap_fd >= 0) {
            close(f->snap_fd);
        }
    }
    msgpack_sbuffer_destroy(&f->results);
    msgpack_sbuffer_destroy(&f->events);
    free(f->status);
    free(f->replayed);
    free(f->off);
    free(f->len);
}
