/* shard/err.c — the LR_E* table and the conversions from dependencies' codes. */
#include "err.h"

#include <errno.h>
#include <lmdb.h>
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

const char *err_message(int rv) { return err__row(rv)->msg; }
const char *err_api_code(int rv) { return err__row(rv)->api; }
int err_http_status(int rv) { return err__row(rv)->http; }
const char *err_name(int rv) { return err__row(rv)->name; }

int err_from_mdb(int mdb_rv)
{
    switch (mdb_rv) {
    case MDB_SUCCESS:
        return LR_OK;
    case MDB_NOTFOUND:
        return LR_ENOTFOUND;
    case MDB_KEYEXIST:
        return LR_EEXIST;
    case MDB_MAP_FULL:
        return LR_EMAPFULL;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return LR_ECORRUPT;
    case ENOMEM:
        return LR_ENOMEM;
    case ENOSPC:
        return LR_ENOSPC;
    case EINVAL:
        return LR_EINVAL;
    default:
        return LR_EIO;
    }
}

int errmsg_set(char *errmsg, int rv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, LR_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
    return rv;
}
