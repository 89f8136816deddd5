/* raft/fsm.c — see fsm.h. */
#include "fsm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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
    snprintf(msg, sizeof msg, "%s: %s", what, shard_errmsg(f->shard));
    if (f->hooks.fatal) {
        f->hooks.fatal(f->hooks.data, rv, msg);
    }
    return RAFT_IOERR;
}

/* ---- apply ---------------------------------------------------------------------------------- */

static int fsm__apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct fsm *f = rf->data;
    struct shard_sink sink = {f, fsm__result, fsm__event};
    uint64_t index = raft_last_applied(f->raft) + 1;
    int rv = 0;
    /* Results go to the node through the hooks: libraft would leak a result object on
     * followers, where no request waits for it. */
    *result = NULL;
    for (int attempt = 0; attempt < FSM__GROW_TRIES; attempt++) {
        fsm__reset(f);
        rv = shard_apply(f->shard, index, buf->base, buf->len, &sink);
        if (rv == 0) {
            rv = shard_commit(f->shard);
        }
        if (rv == 0 && f->oom) {
            rv = LR_ENOMEM;
        }
        if (rv == 0) {
            break;
        }
        if (shard_abort(f->shard) != 0) {
            return fsm__fatal(f, rv, "apply: reload after abort");
        }
        if (rv != LR_EMAPFULL || shard_grow(f->shard) != 0) {
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

/* The snapshot is one buffer: the bytes of a compact copy of the environment. libraft keeps
 * it in memory while it writes and sends it, so its size is bounded by the data, not by the
 * log (docs/durability.md). */
static int fsm__snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct fsm *f = rf->data;
    struct stat st;
    int fd = memfd_create("laurel-snapshot", MFD_CLOEXEC), rv = RAFT_IOERR;
    if (fd < 0) {
        return RAFT_IOERR;
    }
    if (shard_copy(f->shard, fd) != 0 || fstat(fd, &st) != 0) {
        goto out;
    }
    *bufs = raft_malloc(sizeof **bufs);
    if (*bufs == NULL) {
        rv = RAFT_NOMEM;
        goto out;
    }
    (*bufs)[0].len = (size_t)st.st_size;
    (*bufs)[0].base = raft_malloc((size_t)st.st_size ? (size_t)st.st_size : 1);
    if ((*bufs)[0].base == NULL) {
        raft_free(*bufs);
        rv = RAFT_NOMEM;
        goto out;
    }
    if (pread(fd, (*bufs)[0].base, (size_t)st.st_size, 0) != st.st_size) {
        raft_free((*bufs)[0].base);
        raft_free(*bufs);
        goto out;
    }
    *n_bufs = 1;
    rv = 0;
out:
    close(fd);
    return rv;
}

static int fsm__write_file(const char *path, const void *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
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
    if (mkdir(next, 0755) != 0 || fsm__write_file(path, buf->base, buf->len) != 0) {
        return RAFT_IOERR;
    }
    shard_close(f->shard);
    f->shard = NULL;
    if (rename(f->dir, old) != 0 || rename(next, f->dir) != 0) {
        return fsm__fatal(f, LR_EIO, "restore: swap directories");
    }
    fsm__rmrf(old);
    f->cfg.dir = f->dir;
    if (shard_open(&f->cfg, &f->shard, errmsg) != 0) {
        if (f->hooks.fatal) {
            f->hooks.fatal(f->hooks.data, LR_ECORRUPT, errmsg);
        }
        return RAFT_IOERR;
    }
    raft_free(buf->base);
    return 0;
}

int fsm_init(struct fsm *f, const char *dir, const char *region, int fast,
             const struct fsm_hooks *hooks, char *errmsg)
{
    memset(f, 0, sizeof *f);
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
    int rv = shard_open(&f->cfg, &f->shard, errmsg);
    if (rv != 0) {
        msgpack_sbuffer_destroy(&f->results);
        msgpack_sbuffer_destroy(&f->events);
        return rv;
    }
    f->raft_fsm.version = 1;
    f->raft_fsm.data = f;
    f->raft_fsm.apply = fsm__apply;
    f->raft_fsm.snapshot = fsm__snapshot;
    f->raft_fsm.restore = fsm__restore;
    return 0;
}

void fsm_close(struct fsm *f)
{
    shard_close(f->shard);
    f->shard = NULL;
    msgpack_sbuffer_destroy(&f->results);
    msgpack_sbuffer_destroy(&f->events);
    free(f->status);
    free(f->replayed);
    free(f->off);
    free(f->len);
}
