/* lib/hclient.c — blocking HTTP/1.1 client (see hclient.h).
 *
 * One request per connection, sent with "Connection: close", so the answer ends where its
 * Content-Length says or, without one, where the server closes. Every wait (connect, the TLS
 * handshake, send, recv) is a poll bounded by what is left of the one deadline, so a stalled
 * router can hold an operator's terminal for at most timeout_ms.
 *
 * TLS is OpenSSL over the same non-blocking socket: struct hclient__conn reads and writes
 * through SSL when there is one, and an SSL call that wants the socket readable or writable
 * waits for it like a plain one. The peer must present a certificate that the given CA (or
 * the system's store) vouches for and that names the host of @addr (its IP address when
 * @addr is numeric); anything else ends the call before a byte of the request is sent. */
#include "hclient.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "addr.h"
#include "err.h"

static int64_t hclient__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left before @deadline, at least 0, as poll wants them. */
static int hclient__left(int64_t deadline)
{
    int64_t left = deadline - hclient__now_ms();
    return left > 0 ? (int)(left < INT32_MAX ? left : INT32_MAX) : 0;
}

/* Wait until @fd is ready for @events. 0, or LR_EUNAVAILABLE when the deadline passes. */
static int hclient__wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int n = poll(&p, 1, hclient__left(deadline));
        if (n > 0) {
            return 0;
        }
        if (n == 0) {
            return LR_EUNAVAILABLE;
        }
        if (errno != EINTR) {
            return LR_EIO;
        }
    }
}

/* A connected socket to @addr in *@fd, trying each resolved address until the deadline. */
static int hclient__connect(const char *addr, int64_t deadline, int *fd, char *errmsg)
{
    char host[ADDR_HOST_MAX], port[8];
    uint16_t portnum;
    struct addrinfo hints, *ai = NULL;
    int rv, err = 0;
    if (addr_split(addr, host, sizeof host, &portnum) != 0 || host[0] == '\0') {
        return errmsg_set(errmsg, LR_EINVAL, "%s is not host:port", addr);
    }
    snprintf(port, sizeof port, "%u", (unsigned)portnum);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rv = getaddrinfo(host, port, &hints, &ai);
    if (rv != 0) {
        return errmsg_set(errmsg, LR_EUNAVAILABLE, "resolve %s: %s", host, gai_strerror(rv));
    }
    *fd = -1;
    for (struct addrinfo *a = ai; a != NULL && *fd < 0; a = a->ai_next) {
        int s = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        socklen_t elen = sizeof err;
        if (s < 0) {
            err = errno;
            continue;
        }
        if (connect(s, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            err = errno;
        } else if (hclient__wait(s, POLLOUT, deadline) != 0) {
            err = ETIMEDOUT;
        } else if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) {
            err = errno;
        }
        if (err == 0) {
            *fd = s;
        } else {
            close(s);
        }
    }
    freeaddrinfo(ai);
    if (*fd < 0) {
        return errmsg_set(errmsg, LR_EUNAVAILABLE, "connect %s: %s", addr,
                          strerror(err ? err : ECONNREFUSED));
    }
    return 0;
}

/* One connection: a socket, and its TLS session when the call asked for TLS. */
struct hclient__conn {
    int fd;
    SSL_CTX *ctx; /* NULL: plain HTTP */
    SSL *ssl;
};

/* The last OpenSSL error as text, for a message. */
static const char *hclient__ossl(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0) {
        snprintf(buf, cap, "%s", errno ? strerror(errno) : "the connection closed");
    } else {
        ERR_error_string_n(e, buf, cap);
    }
    ERR_clear_error();
    return buf;
}

/* What a failed SSL call @r wants: POLLIN or POLLOUT to retry, or 0 for a real failure. */
static short hclient__ssl_wants(SSL *ssl, int r)
{
    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ: return POLLIN;
    case SSL_ERROR_WANT_WRITE: return POLLOUT;
    default: return 0;
    }
}

/* The TLS handshake on connected c->fd, verifying the server as @tls says and as @host (of
 * @addr) names it. */
static int hclient__tls_open(struct hclient__conn *c, const char *host,
                             const struct hclient_tls *tls, int64_t deadline, char *errmsg)
{
    char ossl[256];
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL) {
        return errmsg_set(errmsg, LR_ENOMEM, "TLS: %s", hclient__ossl(ossl, sizeof ossl));
    }
    SSL_CTX_set_min_proto_version(c->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    /* A server that closes without close_notify after a whole answer is no error here: the
     * answer's end is its Content-Length, or the close itself. */
    SSL_CTX_set_options(c->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (tls->cafile != NULL ? SSL_CTX_load_verify_locations(c->ctx, tls->cafile, NULL) != 1
                            : SSL_CTX_set_default_verify_paths(c->ctx) != 1) {
        return errmsg_set(errmsg, LR_EINVAL, "cannot read the CA certificates %s: %s",
                          tls->cafile ? tls->cafile : "of the system",
                          hclient__ossl(ossl, sizeof ossl));
    }
    c->ssl = SSL_new(c->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        return errmsg_set(errmsg, LR_ENOMEM, "TLS: %s", hclient__ossl(ossl, sizeof ossl));
    }
    unsigned char ip[16];
    int numeric = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
    if (numeric ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), host) != 1
                : SSL_set1_host(c->ssl, host) != 1 ||
                      SSL_set_tlsext_host_name(c->ssl, (char *)host) != 1) {
        return errmsg_set(errmsg, LR_EINVAL, "TLS: cannot verify the name %s", host);
    }
    for (;;) {
        int r = SSL_connect(c->ssl);
        if (r == 1) {
            return 0;
        }
        short want = hclient__ssl_wants(c->ssl, r);
        if (want == 0) {
            long v = SSL_get_verify_result(c->ssl);
            if (v != X509_V_OK) {
                ERR_clear_error();
                return errmsg_set(errmsg, LR_EUNAVAILABLE,
                                  "TLS: certificate verify failed: %s (trust its CA with "
                                  "--cacert)",
                                  X509_verify_cert_error_string(v));
            }
            return errmsg_set(errmsg, LR_EUNAVAILABLE, "TLS handshake: %s",
                              hclient__ossl(ossl, sizeof ossl));
        }
        if (hclient__wait(c->fd, want, deadline) != 0) {
            return errmsg_set(errmsg, LR_EUNAVAILABLE, "TLS handshake: timed out");
        }
    }
}

static void hclient__conn_close(struct hclient__conn *c)
{
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl); /* one try, non-blocking: the answer is in already */
        SSL_free(c->ssl);
    }
    SSL_CTX_free(c->ctx);
    ERR_clear_error();
    if (c->fd >= 0) {
        close(c->fd);
    }
}

/* One send or recv of at most @n bytes: > 0 bytes moved, 0 the peer closed (recv), or -1 with
 * *@want POLLIN/POLLOUT to wait for and retry, or 0 and errno for a failure. */
static ssize_t hclient__io(struct hclient__conn *c, int out, void *p, size_t n, short *want)
{
    int cap = n > INT32_MAX ? INT32_MAX : (int)n;
    *want = 0;
    if (c->ssl != NULL) {
        int r = out ? SSL_write(c->ssl, p, cap) : SSL_read(c->ssl, p, cap);
        if (r > 0) {
            return r;
        }
        if (!out && SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN) {
            return 0;
        }
        *want = hclient__ssl_wants(c->ssl, r);
        errno = *want ? 0 : EPROTO;
        return -1;
    }
    ssize_t r = out ? send(c->fd, p, n, MSG_NOSIGNAL) : recv(c->fd, p, n, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        *want = out ? POLLOUT : POLLIN;
    }
    return r;
}

static int hclient__send_all(struct hclient__conn *c, const char *p, size_t n, int64_t deadline,
                             char *errmsg)
{
    char ossl[256];
    while (n > 0) {
        short want;
        ssize_t w = hclient__io(c, 1, (void *)p, n, &want);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (want != 0) {
            if (hclient__wait(c->fd, want, deadline) != 0) {
                return errmsg_set(errmsg, LR_EUNAVAILABLE, "send: timed out");
            }
        } else {
            return errmsg_set(errmsg, LR_EIO, "send: %s",
                              c->ssl ? hclient__ossl(ossl, sizeof ossl) : strerror(errno));
        }
    }
    return 0;
}

/* The value of header @name in the header block @head (NUL-terminated), or NULL; *@len its
 * length without surrounding blanks. */
static const char *hclient__find(const char *head, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    const char *line = strstr(head, "\r\n");
    while (line != NULL && line[2] != '\0') {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        const char *end = eol ? eol : line + strlen(line);
        if ((size_t)(end - line) > nl && line[nl] == ':' && strncasecmp(line, name, nl) == 0) {
            const char *v = line + nl + 1;
            while (v < end && (*v == ' ' || *v == '\t')) {
                v++;
            }
            while (end > v && (end[-1] == ' ' || end[-1] == '\t')) {
                end--;
            }
            *len = (size_t)(end - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

/* From the header block: the status into @resp, the body's length into *@want (SIZE_MAX when
 * the answer runs until the server closes). */
static int hclient__parse_head(const char *head, struct hclient_resp *resp, size_t *want,
                               char *errmsg)
{
    size_t len;
    const char *v;
    if (strncmp(head, "HTTP/1.", 7) != 0 || head[7] == '\0' || head[8] != ' ' ||
        strspn(head + 9, "0123456789") != 3) {
        return errmsg_set(errmsg, LR_EMALFORMED, "not an HTTP/1.x answer");
    }
    resp->status = (head[9] - '0') * 100 + (head[10] - '0') * 10 + (head[11] - '0');
    if ((v = hclient__find(head, "Transfer-Encoding", &len)) != NULL &&
        !(len == 8 && strncasecmp(v, "identity", 8) == 0)) {
        return errmsg_set(errmsg, LR_EMALFORMED, "chunked answers are not supported");
    }
    *want = SIZE_MAX;
    if (resp->status == 204 || resp->status == 304 || resp->status < 200) {
        *want = 0;
    } else if ((v = hclient__find(head, "Content-Length", &len)) != NULL) {
        size_t n = 0;
        if (len == 0 || len > 10) {
            return errmsg_set(errmsg, LR_EMALFORMED, "bad Content-Length");
        }
        for (size_t i = 0; i < len; i++) {
            if (v[i] < '0' || v[i] > '9') {
                return errmsg_set(errmsg, LR_EMALFORMED, "bad Content-Length");
            }
            n = n * 10 + (size_t)(v[i] - '0');
        }
        if (n > HCLIENT_BODY_MAX) {
            return errmsg_set(errmsg, LR_ETOOBIG, "answer of %zu bytes is over %u", n,
                              HCLIENT_BODY_MAX);
        }
        *want = n;
    }
    return 0;
}

/* Read the answer into @resp: the header block, then the body. */
static int hclient__recv(struct hclient__conn *c, int64_t deadline, struct hclient_resp *resp,
                         char *errmsg)
{
    char ossl[256];
    short wait_for;
    size_t cap = 16384, len = 0, hlen = 0, want = SIZE_MAX;
    char *buf = malloc(cap + 1);
    int rv;
    if (buf == NULL) {
        return errmsg_set(errmsg, LR_ENOMEM, "out of memory");
    }
    for (;;) {
        if (hlen > 0 && want != SIZE_MAX && len - hlen >= want) {
            break;
        }
        if (len == cap) {
            char *nb;
            if (cap >= HCLIENT_BODY_MAX + 16384) {
                rv = errmsg_set(errmsg, LR_ETOOBIG, "answer is over %u bytes", HCLIENT_BODY_MAX);
                goto err_after_buf;
            }
            nb = realloc(buf, 2 * cap + 1);
            if (nb == NULL) {
                rv = errmsg_set(errmsg, LR_ENOMEM, "out of memory");
                goto err_after_buf;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t got = hclient__io(c, 0, buf + len, cap - len, &wait_for);
        if (got < 0 && wait_for != 0) {
            if (hclient__wait(c->fd, wait_for, deadline) != 0) {
                rv = errmsg_set(errmsg, LR_EUNAVAILABLE, "no complete answer in time");
                goto err_after_buf;
            }
            continue;
        }
        if (got < 0) {
            rv = errmsg_set(errmsg, LR_EIO, "recv: %s",
                            c->ssl ? hclient__ossl(ossl, sizeof ossl) : strerror(errno));
            goto err_after_buf;
        }
        if (got == 0) {
            if (hlen > 0 && want == SIZE_MAX) {
                break; /* no Content-Length: the close ends the body */
            }
            rv = errmsg_set(errmsg, LR_EIO, "the server closed the connection %s",
                            hlen ? "in the middle of the body" : "without an answer");
            goto err_after_buf;
        }
        len += (size_t)got;
        buf[len] = '\0';
        if (hlen == 0) {
            char *end = strstr(buf, "\r\n\r\n");
            if (end != NULL) {
                hlen = (size_t)(end - buf) + 4;
                end[2] = '\0'; /* the block keeps its last CRLF, the blank line goes */
                rv = hclient__parse_head(buf, resp, &want, errmsg);
                end[2] = '\r';
                if (rv != 0) {
                    goto err_after_buf;
                }
            } else if (len > 65536) {
                rv = errmsg_set(errmsg, LR_EMALFORMED, "header block over 64 KiB");
                goto err_after_buf;
            }
        }
    }
    size_t blen = want == SIZE_MAX ? len - hlen : want;
    resp->head = malloc(hlen - 1);
    resp->body = malloc(blen + 1);
    if (resp->head == NULL || resp->body == NULL) {
        rv = errmsg_set(errmsg, LR_ENOMEM, "out of memory");
        goto err_after_resp;
    }
    memcpy(resp->head, buf, hlen - 2);
    resp->head[hlen - 2] = '\0';
    memcpy(resp->body, buf + hlen, blen);
    resp->body[blen] = '\0';
    resp->body_len = blen;
    free(buf);
    return 0;

err_after_resp:
    hclient_resp_free(resp);
err_after_buf:
    free(buf);
    assert(rv != 0);
    return rv;
}

/* No CR or LF in what goes into the request line and headers: no header injection. */
static int hclient__clean(const char *s)
{
    return s == NULL || strpbrk(s, "\r\n") == NULL;
}

int hclient_do(const char *addr, const struct hclient_req *req, int timeout_ms,
               struct hclient_resp *resp, char *errmsg)
{
    return hclient_do_tls(addr, NULL, req, timeout_ms, resp, errmsg);
}

int hclient_do_tls(const char *addr, const struct hclient_tls *tls, const struct hclient_req *req,
                   int timeout_ms, struct hclient_resp *resp, char *errmsg)
{
    struct hclient__conn c = {-1, NULL, NULL};
    char host[ADDR_HOST_MAX];
    uint16_t port;
    int64_t deadline = hclient__now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    const char *auth = req->auth && req->auth[0] ? req->auth : NULL;
    char *head;
    int rv, n;
    memset(resp, 0, sizeof *resp);
    if (!hclient__clean(req->method) || !hclient__clean(req->target) || !hclient__clean(auth) ||
        !hclient__clean(addr)) {
        return errmsg_set(errmsg, LR_EINVAL, "line breaks in the request line or a header");
    }
    n = asprintf(
        &head,
        "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: laurel-ctl\r\n"
        "Accept: application/json\r\n%s%s%s%s%zu\r\nConnection: close\r\n\r\n",
        req->method, req->target, addr, auth ? "Authorization: Bearer " : "", auth ? auth : "",
        auth ? "\r\n" : "",
        req->body ? "Content-Type: application/json\r\nContent-Length: " : "Content-Length: ",
        req->body ? req->body_len : (size_t)0);
    if (n < 0) {
        return errmsg_set(errmsg, LR_ENOMEM, "out of memory");
    }
    rv = hclient__connect(addr, deadline, &c.fd, errmsg);
    if (rv != 0) {
        goto err_after_head;
    }
    if (tls != NULL) {
        rv = addr_split(addr, host, sizeof host, &port) == 0
                 ? hclient__tls_open(&c, host, tls, deadline, errmsg)
                 : errmsg_set(errmsg, LR_EINVAL, "%s is not host:port", addr);
    }
    if (rv == 0) {
        rv = hclient__send_all(&c, head, (size_t)n, deadline, errmsg);
    }
    if (rv == 0 && req->body && req->body_len) {
        rv = hclient__send_all(&c, req->body, req->body_len, deadline, errmsg);
    }
    if (rv == 0) {
        rv = hclient__recv(&c, deadline, resp, errmsg);
    }
    hclient__conn_close(&c);
    if (rv != 0) {
        char inner[LR_ERRMSG_SIZE];
        snprintf(inner, sizeof inner, "%s", errmsg);
        errmsg_set(errmsg, rv, "%s: %s", addr, inner);
        goto err_after_head;
    }
    free(head);
    return 0;

err_after_head:
    free(head);
    hclient_resp_free(resp);
    assert(rv != 0);
    return rv;
}

int hclient_header(const struct hclient_resp *resp, const char *name, char *out, size_t cap)
{
    size_t len;
    const char *v = resp->head ? hclient__find(resp->head, name, &len) : NULL;
    if (v == NULL) {
        return 0;
    }
    if (cap > 0) {
        snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), v);
    }
    return 1;
}

void hclient_resp_free(struct hclient_resp *resp)
{
    free(resp->head);
    free(resp->body);
    memset(resp, 0, sizeof *resp);
}
