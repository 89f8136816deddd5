/* lib/hclient.h — a blocking HTTP/1.1 client for `laurel ctl`: one request on a fresh
 * connection, the whole answer read within one deadline.
 *
 * The body of the answer is read by its Content-Length (the router always sends one, see
 * http.c); an answer without one is read until the server closes, and a chunked answer is
 * refused (LR_EMALFORMED). Not for the router's loop: every call blocks. HTTPS through
 * hclient_do_tls (OpenSSL; TLS 1.2 or later, the server's certificate verified). */
#ifndef LAUREL_HCLIENT_H
#define LAUREL_HCLIENT_H

#include <stddef.h>

/* Answers larger than this are refused (LR_ETOOBIG): a top page of 1000 entries is ~300 KiB. */
#define HCLIENT_BODY_MAX (64u << 20)

/** One request. Every pointer is borrowed for the duration of hclient_do. */
struct hclient_req {
    const char *method; /* "GET", "PUT", "POST", ... */
    const char *target; /* path and query, already %-encoded: "/v1/boards/b/top?limit=5" */
    const char *auth;   /* a key sent as "Authorization: Bearer <auth>", or NULL/"" for none */
    const char *body;   /* sent as application/json, or NULL for none */
    size_t body_len;
};

/** One answer. Filled by hclient_do; the strings belong to it until hclient_resp_free. */
struct hclient_resp {
    int status; /* e.g. 200 */
    char *head; /* status line and header lines, NUL-terminated, CRLFs kept; owned */
    char *body; /* NUL-terminated (the body itself may hold NULs: see body_len); owned */
    size_t body_len;
};

/**
 * Connect to @addr ("host:port", "[v6]:port"; host names are resolved), send @req, read the
 * answer into *@resp. Connecting, sending and reading share one deadline of @timeout_ms.
 *
 * @return 0 with *@resp filled (whatever its status: an HTTP error is an answer), to be
 * released with hclient_resp_free; or, with *@resp empty and a sentence in @errmsg
 * (LR_ERRMSG_SIZE bytes): LR_EINVAL (@addr is not host:port), LR_EUNAVAILABLE (cannot resolve
 * or connect, or the deadline passed), LR_EIO (the connection failed midway), LR_EMALFORMED
 * (not an HTTP/1.x answer, or chunked), LR_ETOOBIG (over HCLIENT_BODY_MAX), LR_ENOMEM.
 */
int hclient_do(const char *addr, const struct hclient_req *req, int timeout_ms,
               struct hclient_resp *resp, char *errmsg);

/** How hclient_do_tls trusts the server. */
struct hclient_tls {
    const char *cafile; /* PEM CA certificates to trust (borrowed for the call); NULL: the
                           system's store */
};

/**
 * hclient_do over TLS when @tls is not NULL (NULL: plain HTTP, as hclient_do): the server's
 * certificate must chain to @tls's CA and name the host of @addr. A failed handshake or
 * verification is LR_EUNAVAILABLE with the reason ("certificate verify failed: ..."); a CA
 * file that cannot be read is LR_EINVAL. Nothing of @req is sent before the server is
 * verified.
 */
int hclient_do_tls(const char *addr, const struct hclient_tls *tls, const struct hclient_req *req,
                   int timeout_ms, struct hclient_resp *resp, char *errmsg);

/**
 * The value of header @name (case-insensitive) in @resp, without surrounding blanks, copied
 * NUL-terminated into @out (@cap bytes, truncated to fit). @return 1 if present, else 0.
 */
int hclient_header(const struct hclient_resp *resp, const char *name, char *out, size_t cap);

/** Release what @resp owns and empty it (idempotent). */
void hclient_resp_free(struct hclient_resp *resp);

#endif
