/* lib/err.h — laurel's one error space.
 *
 * Every function in laurel returns int: 0, or one of the LR_E* codes below. Dependencies
 * disagree on conventions (libuv negative errno, libraft positive RAFT_*, LMDB MDB_* plus
 * errno), so each module converts once at its boundary (err_from_mdb, ...). Codes carry the
 * public API error they surface as, so the router maps a code to HTTP without a table of its
 * own. */
#ifndef LAUREL_ERR_H
#define LAUREL_ERR_H

#include <stddef.h>

/* X(name, value, api_code, http_status, message) */
#define LR_ERRORS(X)                                                                               \
    X(LR_OK, 0, "ok", 200, "success")                                                              \
    X(LR_ENOMEM, 1, "internal", 500, "out of memory")                                              \
    X(LR_EINVAL, 2, "invalid_argument", 400, "invalid argument")                                   \
    X(LR_EMALFORMED, 3, "invalid_argument", 400, "malformed input")                                \
    X(LR_ENOTFOUND, 4, "not_found", 404, "not found")                                              \
    X(LR_ECONFLICT, 5, "conflict", 409, "conflict")                                                \
    X(LR_EFORBIDDEN, 6, "forbidden", 403, "forbidden")                                             \
    X(LR_ECORRUPT, 7, "internal", 500, "stored data is corrupt")                                   \
    X(LR_EIO, 8, "internal", 500, "I/O error")                                                     \
    X(LR_EMAPFULL, 9, "unavailable", 503, "storage map is full")                                   \
    X(LR_ENOSPC, 10, "unavailable", 503, "no space left on device")                                \
    X(LR_EVERSION, 11, "invalid_argument", 400, "unsupported version")                             \
    X(LR_ETOOBIG, 12, "payload_too_large", 413, "too large")                                       \
    X(LR_ERANGE, 13, "invalid_argument", 400, "value out of range")                                \
    X(LR_EEXIST, 14, "conflict", 409, "already exists")                                            \
    X(LR_EUNAVAILABLE, 15, "unavailable", 503, "unavailable")                                      \
    X(LR_EINTERNAL, 16, "internal", 500, "internal error")                                         \
    X(LR_EUNAUTHORIZED, 17, "unauthorized", 401, "unauthorized")                                   \
    X(LR_ENOTLEADER, 18, "unavailable", 503, "not the leader")                                     \
    X(LR_EMETHOD, 19, "method_not_allowed", 405, "method not allowed")                             \
    X(LR_ERATELIMIT, 20, "rate_limited", 429, "rate limited")

enum {
#define LR__ENUM(name, value, api, http, msg) name = value,
    LR_ERRORS(LR__ENUM)
#undef LR__ENUM
        LR__ECOUNT
};

/** Human sentence for @rv; never NULL ("unknown error" for codes outside the table). */
const char *err_message(int rv);

/** API.md error code ("not_found", ...) for @rv. */
const char *err_api_code(int rv);

/** HTTP status that @rv surfaces as. */
int err_http_status(int rv);

/** Symbolic name ("LR_ENOTFOUND") for logs and tests. */
const char *err_name(int rv);

/** Convert an LMDB return code (MDB_* or errno) to an LR_E* code (unlisted: LR_EIO). */
int err_from_mdb(int mdb_rv);

/** Convert a libuv return code (0 or negative UV_E*) to an LR_E* code (unlisted: LR_EIO). */
int err_from_uv(int uv_rv);

/** Convert a libraft return code (0 or RAFT_*) to an LR_E* code (unlisted: LR_EINTERNAL). */
int err_from_raft(int raft_rv);

/* Size of the errmsg buffers carried by long-lived objects. */
#define LR_ERRMSG_SIZE 256

/** printf-style fill of an errmsg buffer; returns @rv so callers can `return errmsg_set(...)`. */
int errmsg_set(char *errmsg, int rv, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
