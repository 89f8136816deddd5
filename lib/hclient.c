/* lib/hclient.c — blocking HTTP/1.1 client (see hclient.h).
 *
 * One request per connection, sent with "Connection: close", so the answer ends where its
 * Content-Length says or, without one, where the server closes. Every wait (connect, send,
 * recv) is a poll bounded by what is left of the one deadline, so a stalled router can hold
 * an operator's terminal for at most timeout_ms. */
#include "hclient.h"

#include <assert.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

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

static int hclient__send_all(int fd, const char *p, size_t n, int64_t deadline, char *errmsg)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (hclient__wait(fd, POLLOUT, deadline) != 0) {
                return errmsg_set(errmsg, LR_EUNAVAILABLE, "send: timed out");
            }
        } else {
            return errmsg_set(errmsg, LR_EIO, "send: %s", strerror(errno));
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
static int hclient__recv(int fd, int64_t deadline, struct hclient_resp *resp, char *errmsg)
{
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
        ssize_t got = recv(fd, buf + len, cap - len, 0);
        if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (hclient__wait(fd, POLLIN, deadline) != 0) {
                rv = errmsg_set(errmsg, LR_EUNAVAILABLE, "no complete answer in time");
                goto err_after_buf;
            }
            continue;
        }
        if (got < 0) {
            rv = errmsg_set(errmsg, LR_EIO, "recv: %s", strerror(errno));
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
    int64_t deadline = hclient__now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    const char *auth = req->auth && req->auth[0] ? req->auth : NULL;
    char *head;
    int fd, rv, n;
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
    rv = hclient__connect(addr, deadline, &fd, errmsg);
    if (rv != 0) {
        goto err_after_head;
    }
    rv = hclient__send_all(fd, head, (size_t)n, deadline, errmsg);
    if (rv == 0 && req->body && req->body_len) {
        rv = hclient__send_all(fd, req->body, req->body_len, deadline, errmsg);
    }
    if (rv == 0) {
        rv = hclient__recv(fd, deadline, resp, errmsg);
    }
    close(fd);
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
