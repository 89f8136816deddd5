/* lib/err.c — the LR_E* table and the one boundary where the dependencies' codes become ours.
 * Each conversion is a table of pairs with a default: a code nobody listed is an I/O error
 * (or internal), never success. Only the dependencies' headers are read here (their codes are
 * macros and enums); lib links none of them. */
#include "err.h"

#include <errno.h>
#include <lmdb.h>
#include <raft.h>
#include <uv.h>
#include <stdarg.h>
#include <stdio.h>

struct err__row {
    const char *name;
    const char *api;
    int http;
    const char *msg;
};

static const struct err__row err__table[] = {
#define LR__ROW(name, value, api, http, msg) [value] = {#name, api, http, msg},
    LR_ERRORS(LR__ROW)
#undef LR__ROW
};

static const struct err__row *err__row(int rv)
{
    static const struct err__row unknown = {"LR_E?", "internal", 500, "unknown error"};
    if (rv < 0 || rv >= LR__ECOUNT) {
        return &unknown;
    }
    return &err__table[rv];
}

const char *err_message(int rv)
{
    return err__row(rv)->msg;
}
const char *err_api_code(int rv)
{
    return err__row(rv)->api;
}
int err_http_status(int rv)
{
    return err__row(rv)->http;
}
const char *err_name(int rv)
{
    return err__row(rv)->name;
}

struct err__map {
    int from;
    int to;
};

static int err__convert(const struct err__map *m, size_t n, int rv, int dflt)
{
    for (size_t i = 0; i < n; i++) {
        if (m[i].from == rv) {
            return m[i].to;
        }
    }
    return dflt;
}

#define ERR__CONVERT(map, rv, dflt) err__convert(map, sizeof map / sizeof map[0], rv, dflt)

/* LMDB returns MDB_* codes or an errno. */
static const struct err__map err__mdb[] = {
    {MDB_SUCCESS, LR_OK},         {MDB_NOTFOUND, LR_ENOTFOUND},
    {MDB_KEYEXIST, LR_EEXIST},    {MDB_MAP_FULL, LR_EMAPFULL},
    {MDB_CORRUPTED, LR_ECORRUPT}, {MDB_PAGE_NOTFOUND, LR_ECORRUPT},
    {MDB_INVALID, LR_ECORRUPT},   {MDB_VERSION_MISMATCH, LR_ECORRUPT},
    {ENOMEM, LR_ENOMEM},          {ENOSPC, LR_ENOSPC},
    {EINVAL, LR_EINVAL},
};

/* libuv returns 0 or a negative UV_E* code. */
static const struct err__map err__uv[] = {
    {0, LR_OK},
    {UV_ENOMEM, LR_ENOMEM},
    {UV_EINVAL, LR_EINVAL},
    {UV_ENOSPC, LR_ENOSPC},
    {UV_EADDRINUSE, LR_EUNAVAILABLE},
    {UV_EADDRNOTAVAIL, LR_EINVAL},
    {UV_ECONNREFUSED, LR_EUNAVAILABLE},
    {UV_ECONNRESET, LR_EUNAVAILABLE},
    {UV_ETIMEDOUT, LR_EUNAVAILABLE},
    {UV_EHOSTUNREACH, LR_EUNAVAILABLE},
    {UV_ENETUNREACH, LR_EUNAVAILABLE},
    {UV_EOF, LR_EUNAVAILABLE},
    {UV_EACCES, LR_EFORBIDDEN},
    {UV_EPERM, LR_EFORBIDDEN},
    {UV_ENOENT, LR_ENOTFOUND},
    {UV_EEXIST, LR_EEXIST},
};

/* libraft returns 0 or a positive RAFT_* code. */
static const struct err__map err__raft[] = {
    {0, LR_OK},
    {RAFT_NOMEM, LR_ENOMEM},
    {RAFT_BADID, LR_EINVAL},
    {RAFT_DUPLICATEID, LR_EEXIST},
    {RAFT_DUPLICATEADDRESS, LR_EEXIST},
    {RAFT_BADROLE, LR_EINVAL},
    {RAFT_MALFORMED, LR_EMALFORMED},
    {RAFT_NOTLEADER, LR_ENOTLEADER},
    {RAFT_LEADERSHIPLOST, LR_ENOTLEADER},
    {RAFT_SHUTDOWN, LR_EUNAVAILABLE},
    {RAFT_CANTBOOTSTRAP, LR_EEXIST},
    {RAFT_CANTCHANGE, LR_EUNAVAILABLE},
    {RAFT_CORRUPT, LR_ECORRUPT},
    {RAFT_CANCELED, LR_EUNAVAILABLE},
    {RAFT_NAMETOOLONG, LR_EINVAL},
    {RAFT_TOOBIG, LR_ETOOBIG},
    {RAFT_NOCONNECTION, LR_EUNAVAILABLE},
    {RAFT_BUSY, LR_EUNAVAILABLE},
    {RAFT_IOERR, LR_EIO},
    {RAFT_NOTFOUND, LR_ENOTFOUND},
    {RAFT_INVALID, LR_EINVAL},
    {RAFT_UNAUTHORIZED, LR_EFORBIDDEN},
    {RAFT_NOSPACE, LR_ENOSPC},
    {RAFT_TOOMANY, LR_EUNAVAILABLE},
};

int err_from_mdb(int mdb_rv)
{
    return ERR__CONVERT(err__mdb, mdb_rv, LR_EIO);
}
int err_from_uv(int uv_rv)
{
    return ERR__CONVERT(err__uv, uv_rv, LR_EIO);
}
int err_from_raft(int raft_rv)
{
    return ERR__CONVERT(err__raft, raft_rv, LR_EINTERNAL);
}

int errmsg_set(char *errmsg, int rv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, LR_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
    return rv;
}
