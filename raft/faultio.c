/* raft/faultio.c — see faultio.h (TEST ONLY).
 *
 * Every method of the outer raft_io forwards to the inner one with the inner io, and an error
 * the inner one returns has its message copied to the outer io, where libraft reads it. The
 * callbacks libraft gave to start and close (tick, recv, close) take the io they are called
 * with to its raft through io->data, so the inner io gets the outer one's data at init, and
 * the inner io calls libraft's own callbacks with itself.
 *
 * Failures are queued and called back from a zero timer once no append passed on before them
 * is still in flight: libraft sees them after every earlier append, in order, as it would see a
 * write error from the uv backend. On close, queued failures are called back at once with
 * RAFT_CANCELED, as the uv backend does with its pending requests. */
#include "faultio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../lib/err.h"

struct faultio__req {
    enum faultio_method method; /* FAULTIO_APPEND or FAULTIO_SNAPSHOT_PUT */
    struct raft_io_append *append;
    raft_io_append_cb append_cb;
    struct raft_io_snapshot_put *put;
    raft_io_snapshot_put_cb put_cb;
    struct faultio__req *next;
};

/* An append passed on to the inner io: its callback is counted, then forwarded. */
struct faultio__append {
    struct raft_io_append req;
    struct raft_io_append *orig;
    raft_io_append_cb cb;
    struct faultio *f;
};

static const char *const faultio__names[FAULTIO__N] = {
#define FAULTIO__NAME(NAME, name) [FAULTIO_##NAME] = #name,
    FAULTIO_METHODS(FAULTIO__NAME)
#undef FAULTIO__NAME
};

static struct faultio *faultio__of(struct raft_io *io)
{
    return (struct faultio *)((char *)io - offsetof(struct faultio, io));
}

/* After the inner io returned @rv: its message, where libraft looks for it. */
static int faultio__rv(struct faultio *f, int rv)
{
    if (rv != 0) {
        memcpy(f->io.errmsg, f->inner->errmsg, sizeof f->io.errmsg);
    }
    return rv;
}

/* ---- the control file ------------------------------------------------------------------------ */

/* Parse @text into @p; a line it cannot read is logged and skipped. */
static void faultio__parse(struct faultio *f, char *text, double *p)
{
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char word[32], *hash = strchr(line, '#');
        double prob;
        int m;
        if (hash) {
            *hash = '\0';
        }
        if (sscanf(line, " %31s", word) != 1) {
            continue; /* blank */
        }
        for (m = 0; m < FAULTIO__N && strcmp(word, faultio__names[m]) != 0; m++) {
        }
        if (m == FAULTIO__N || sscanf(line, " %*s %lf", &prob) != 1 || !(prob >= 0 && prob <= 1)) {
            LOG(f->log, LOG_WARN, "faultio: %s: ignored \"%s\" (expected \"<method> <0..1>\")",
                f->path, line);
            continue;
        }
        p[m] = prob;
    }
}

/* Read the control file again if it changed; at most every FAULTIO_POLL_MS. */
static void faultio__poll(struct faultio *f)
{
    uint64_t now = uv_now(f->loop);
    struct stat st;
    double p[FAULTIO__N] = {0};
    if (f->polled_ms != 0 && now - f->polled_ms < FAULTIO_POLL_MS) {
        return;
    }
    f->polled_ms = now ? now : 1;
    if (stat(f->path, &st) != 0) {
        if (f->present) {
            f->present = 0;
            memset(f->p, 0, sizeof f->p);
            LOG(f->log, LOG_WARN, "faultio: %s gone: no raft I/O faults", f->path);
        }
        return;
    }
    if (f->present && st.st_mtim.tv_sec == f->mtime.tv_sec &&
        st.st_mtim.tv_nsec == f->mtime.tv_nsec && st.st_size == f->size && st.st_ino == f->ino) {
        return;
    }
    char text[4096];
    FILE *fp = fopen(f->path, "r");
    size_t len = fp ? fread(text, 1, sizeof text - 1, fp) : 0;
    if (fp) {
        fclose(fp);
    }
    text[len] = '\0';
    f->present = 1;
    f->mtime = st.st_mtim;
    f->size = st.st_size;
    f->ino = st.st_ino;
    faultio__parse(f, text, p);
    memcpy(f->p, p, sizeof p);
    LOG(f->log, LOG_WARN, "faultio: %s: append %g, truncate %g, snapshot_put %g", f->path,
        f->p[FAULTIO_APPEND], f->p[FAULTIO_TRUNCATE], f->p[FAULTIO_SNAPSHOT_PUT]);
}

/* 1 when this call of @m fails (splitmix64: tests need no better randomness). */
static int faultio__roll(struct faultio *f, enum faultio_method m)
{
    faultio__poll(f);
    if (f->p[m] <= 0) {
        return 0;
    }
    if (f->p[m] >= 1) {
        return 1;
    }
    uint64_t z = (f->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53 < f->p[m];
}

/* ---- failures, called back later ------------------------------------------------------------ */

static void faultio__set_errmsg(struct faultio *f, enum faultio_method m)
{
    snprintf(f->io.errmsg, sizeof f->io.errmsg, "faultio: injected %s failure (%.120s)",
             faultio__names[m], f->path);
}

static void faultio__call_back(struct faultio *f, struct faultio__req *q, int status)
{
    f->injected[q->method]++;
    faultio__set_errmsg(f, q->method);
    if (q->method == FAULTIO_APPEND) {
        q->append_cb(q->append, status);
    } else {
        q->put_cb(q->put, status);
    }
    free(q);
}

static void faultio__deliver(uv_timer_t *t)
{
    struct faultio *f = t->data;
    /* Only those queued now: a callback may queue more, which the next run calls back. */
    struct faultio__req *q = f->failed;
    f->failed = f->failed_tail = NULL;
    while (q) {
        struct faultio__req *next = q->next;
        faultio__call_back(f, q, RAFT_IOERR);
        q = next;
    }
}

static void faultio__kick(struct faultio *f)
{
    if (f->failed && f->inflight == 0 && f->timer_init && !f->close_cb) {
        uv_timer_start(&f->timer, faultio__deliver, 0, 0);
    }
}

/* Queue @q to fail; @return 0, or RAFT_NOMEM (then nothing will be called back). */
static int faultio__fail_later(struct faultio *f, struct faultio__req *q)
{
    struct faultio__req *c = malloc(sizeof *c);
    if (c == NULL) {
        return RAFT_NOMEM;
    }
    *c = *q;
    c->next = NULL;
    if (f->failed_tail) {
        f->failed_tail->next = c;
    } else {
        f->failed = c;
    }
    f->failed_tail = c;
    faultio__kick(f);
    return 0;
}

/* ---- the methods that can fail ----------------------------------------------------------------
 */

static void faultio__appended(struct raft_io_append *req, int status)
{
    struct faultio__append *w = req->data;
    struct faultio *f = w->f;
    struct raft_io_append *orig = w->orig;
    raft_io_append_cb cb = w->cb;
    free(w);
    f->inflight--;
    faultio__rv(f, status);
    cb(orig, status);
    faultio__kick(f);
}

static int faultio__append(struct raft_io *io, struct raft_io_append *req,
                           const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    struct faultio *f = faultio__of(io);
    if (!f->append_failed && faultio__roll(f, FAULTIO_APPEND)) {
        f->append_failed = 1;
        LOG(f->log, LOG_WARN,
            "faultio: failing this append (%u entries) and every later one, as %s asks", n,
            f->path);
    }
    req->cb = cb;
    if (f->append_failed) {
        struct faultio__req q = {.method = FAULTIO_APPEND, .append = req, .append_cb = cb};
        return faultio__fail_later(f, &q);
    }
    struct faultio__append *w = malloc(sizeof *w);
    if (w == NULL) {
        return RAFT_NOMEM;
    }
    w->orig = req;
    w->cb = cb;
    w->f = f;
    w->req.data = w;
    int rv = f->inner->append(f->inner, &w->req, entries, n, faultio__appended);
    if (rv != 0) {
        free(w);
        return faultio__rv(f, rv);
    }
    f->inflight++;
    return 0;
}

static int faultio__truncate(struct raft_io *io, raft_index index)
{
    struct faultio *f = faultio__of(io);
    if (faultio__roll(f, FAULTIO_TRUNCATE)) {
        f->injected[FAULTIO_TRUNCATE]++;
        faultio__set_errmsg(f, FAULTIO_TRUNCATE);
        LOG(f->log, LOG_WARN, "faultio: failing a truncate at %llu, as %s asks",
            (unsigned long long)index, f->path);
        return RAFT_IOERR;
    }
    return faultio__rv(f, f->inner->truncate(f->inner, index));
}

static int faultio__snapshot_put(struct raft_io *io, unsigned trailing,
                                 struct raft_io_snapshot_put *req,
                                 const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    struct faultio *f = faultio__of(io);
    if (faultio__roll(f, FAULTIO_SNAPSHOT_PUT)) {
        LOG(f->log, LOG_WARN, "faultio: failing a snapshot put at %llu, as %s asks",
            (unsigned long long)snapshot->index, f->path);
        req->cb = cb;
        struct faultio__req q = {.method = FAULTIO_SNAPSHOT_PUT, .put = req, .put_cb = cb};
        return faultio__fail_later(f, &q);
    }
    return faultio__rv(f, f->inner->snapshot_put(f->inner, trailing, req, snapshot, cb));
}

/* ---- the methods forwarded as they are --------------------------------------------------------
 */

static int faultio__init(struct raft_io *io, raft_id id, const char *address)
{
    struct faultio *f = faultio__of(io);
    f->inner->data = io->data; /* raft_init set it: the inner io's callbacks need it */
    return faultio__rv(f, f->inner->init(f->inner, id, address));
}

/* The timer is closed: close the inner io, whose callback is raft's own. raft's close callback
 * finds its raft through the io's data, which the inner io shares (faultio__init), and it may
 * free @f: nothing of @f is left running by then. */
static void faultio__timer_closed(uv_handle_t *h)
{
    struct faultio *f = h->data;
    f->inner->close(f->inner, f->close_cb);
}

static void faultio__close(struct raft_io *io, raft_io_close_cb cb)
{
    struct faultio *f = faultio__of(io);
    struct faultio__req *q = f->failed;
    f->close_cb = cb;
    f->failed = f->failed_tail = NULL;
    while (q) {
        struct faultio__req *next = q->next;
        faultio__call_back(f, q, RAFT_CANCELED);
        q = next;
    }
    if (f->timer_init) {
        uv_timer_stop(&f->timer);
        uv_close((uv_handle_t *)&f->timer, faultio__timer_closed);
    } else {
        f->inner->close(f->inner, cb);
    }
}

static int faultio__load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                         struct raft_snapshot **snapshot, raft_index *start_index,
                         struct raft_entry *entries[], size_t *n_entries)
{
    struct faultio *f = faultio__of(io);
    return faultio__rv(
        f, f->inner->load(f->inner, term, voted_for, snapshot, start_index, entries, n_entries));
}

static int faultio__start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                          raft_io_recv_cb recv)
{
    struct faultio *f = faultio__of(io);
    f->inner->data = io->data;
    if (!f->timer_init) {
        uv_timer_init(f->loop, &f->timer);
        f->timer.data = f;
        f->timer_init = 1;
    }
    return faultio__rv(f, f->inner->start(f->inner, msecs, tick, recv));
}

static int faultio__bootstrap(struct raft_io *io, const struct raft_configuration *conf)
{
    struct faultio *f = faultio__of(io);
    return faultio__rv(f, f->inner->bootstrap(f->inner, conf));
}

static int faultio__recover(struct raft_io *io, const struct raft_configuration *conf)
{
    struct faultio *f = faultio__of(io);
    return faultio__rv(f, f->inner->recover(f->inner, conf));
}

static int faultio__set_term(struct raft_io *io, raft_term term)
{
    struct faultio *f = faultio__of(io);
    return faultio__rv(f, f->inner->set_term(f->inner, term));
}

static int faultio__set_vote(struct raft_io *io, raft_id server_id)
{
    struct faultio *f = faultio__of(io);
    return faultio__rv(f, f->inner->set_vote(f->inner, server_id));
}

static int faultio__send(struct raft_io *io, struct raft_io_send *req,
                         const struct raft_message *message, raft_io_send_cb cb)
{
    struct faultio *f = faultio__of(io);
    return faultio__rv(f, f->inner->send(f->inner, req, message, cb));
}

static int faultio__snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                                 raft_io_snapshot_get_cb cb)
{
    struct faultio *f = faultio__of(io);
    return faultio__rv(f, f->inner->snapshot_get(f->inner, req, cb));
}

static raft_time faultio__time(struct raft_io *io)
{
    struct faultio *f = faultio__of(io);
    return f->inner->time(f->inner);
}

static int faultio__random(struct raft_io *io, int min, int max)
{
    struct faultio *f = faultio__of(io);
    return f->inner->random(f->inner, min, max);
}

static int faultio__async_work(struct raft_io *io, struct raft_io_async_work *req,
                               raft_io_async_work_cb cb)
{
    struct faultio *f = faultio__of(io);
    return faultio__rv(f, f->inner->async_work(f->inner, req, cb));
}

int faultio_init(struct faultio *f, struct raft_io *inner, uv_loop_t *loop, const char *path,
                 struct logger *log, char *errmsg)
{
    memset(f, 0, sizeof *f);
    if (strlen(path) >= sizeof f->path) {
        return errmsg_set(errmsg, LR_EINVAL, "faultio: control file path too long");
    }
    snprintf(f->path, sizeof f->path, "%s", path);
    f->inner = inner;
    f->loop = loop;
    f->log = log;
    f->rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    f->io.version = inner->version;
    f->io.init = faultio__init;
    f->io.close = faultio__close;
    f->io.load = faultio__load;
    f->io.start = faultio__start;
    f->io.bootstrap = faultio__bootstrap;
    f->io.recover = faultio__recover;
    f->io.set_term = faultio__set_term;
    f->io.set_vote = faultio__set_vote;
    f->io.send = faultio__send;
    f->io.append = faultio__append;
    f->io.truncate = faultio__truncate;
    f->io.snapshot_put = faultio__snapshot_put;
    f->io.snapshot_get = faultio__snapshot_get;
    f->io.time = faultio__time;
    f->io.random = faultio__random;
    f->io.async_work = inner->async_work ? faultio__async_work : NULL;
    return 0;
}
