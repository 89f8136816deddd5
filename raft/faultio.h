/* raft/faultio.h — TEST ONLY: a raft_io that forwards every method to another one (libraft's uv
 * backend) and makes some of them fail on demand, for fault-injection tests of real replicas.
 *
 * libfiu reaches LMDB's writes (pwrite, fsync), but libraft writes its log through io_submit
 * (Linux AIO), which libfiu cannot reach. This decorator fails the methods themselves, the way
 * libraft takes a disk error from its backend, so libraft and the node go down their real error
 * paths: append and snapshot_put fail through their callback with RAFT_IOERR (on a later loop
 * iteration, never from inside the call, and only once every append passed on before it has
 * called back, since the uv backend completes appends in order); truncate fails through its
 * return value. The node stops on a failed append (node__append, exit 70).
 *
 * The switch: `laurel node` wraps its raft_io in one only when LAUREL_TEST_RAFT_IO_FAULTS=<path>
 * is set when it starts (docs/durability.md, "Injecting raft I/O faults"). Never in production.
 *
 * The control file <path> holds lines "<method> <probability>": a method of FAULTIO_METHODS and
 * a number from 0 to 1, e.g. "append 1" or "append 0.5"; '#' starts a comment. A missing or
 * empty file injects nothing. It is read again when its mtime, size or inode change, looked at
 * (one stat) at most every FAULTIO_POLL_MS, when a method that can fail is called.
 *
 * An append failure is sticky: once one append failed, every later one fails too, until the
 * process restarts. The uv backend numbers the entries it writes by their place in the log, so
 * an append skipped while a later one is written would store the later entries under the
 * skipped indexes. A real write error is as final: the replica stops. */
#ifndef LAUREL_FAULTIO_H
#define LAUREL_FAULTIO_H

#include <raft.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include <uv.h>

#include "../lib/log.h"

#define FAULTIO_POLL_MS 50

/* X(NAME, name): the methods that can be made to fail; name is the control file's word. */
#define FAULTIO_METHODS(X)                                                                         \
    X(APPEND, append)                                                                              \
    X(TRUNCATE, truncate)                                                                          \
    X(SNAPSHOT_PUT, snapshot_put)

enum faultio_method {
#define FAULTIO__ENUM(NAME, name) FAULTIO_##NAME,
    FAULTIO_METHODS(FAULTIO__ENUM)
#undef FAULTIO__ENUM
        FAULTIO__N
};

struct faultio__req; /* a failure waiting to be called back (faultio.c) */

struct faultio {
    struct raft_io io; /* read-only: hand &io to raft_init in place of the inner one */
    /* Calls of each method failed so far (read-only). */
    uint64_t injected[FAULTIO__N];
    /* private */
    struct raft_io *inner;
    uv_loop_t *loop;
    struct logger *log;
    char path[1024];
    double p[FAULTIO__N]; /* each method's probability of failing, from the control file */
    uint64_t polled_ms;   /* uv_now of the last look at the file; 0: never */
    int present;          /* the file existed at the last look */
    struct timespec mtime;
    off_t size;
    ino_t ino;
    int append_failed; /* sticky: see above */
    unsigned inflight; /* appends passed on whose callback has not fired */
    struct faultio__req *failed, *failed_tail;
    uv_timer_t timer; /* calls the failures back */
    int timer_init;
    raft_io_close_cb close_cb; /* raft's, once it closes the io */
    uint64_t rng;
};

/**
 * Make @f a decorator of @inner (a raft_io set up by raft_uv_init, not yet handed to raft):
 * every method of f->io forwards to @inner's. @inner, @loop and @log are borrowed until raft's
 * close callback has fired (raft_close); @f may be freed from then on, and @inner released
 * (raft_uv_close) as usual. @path is copied. The file need not exist.
 * @return 0, or LR_EINVAL (path too long) with @errmsg.
 */
int faultio_init(struct faultio *f, struct raft_io *inner, uv_loop_t *loop, const char *path,
                 struct logger *log, char *errmsg);

#endif
