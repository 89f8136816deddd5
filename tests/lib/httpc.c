/* tests/lib/httpc.c — see httpc.h. Reads a Content-Length body; no chunked encoding. */
#include "lib/addr.h"
#include "tests/lib/httpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int httpc__connect(const char *addr)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    if (addr_resolve(addr, 0, &sa, &salen) != 0) {
        return -1;
    }
    int fd = socket(sa.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, salen) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

static int httpc__send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int httpc_do(const char *addr, const char *method, const char *path, const char *auth,
             const char *body, struct httpc_resp *r)
{
    char head[2048];
    size_t blen = body ? strlen(body) : 0;
    memset(r, 0, sizeof *r);
    int fd = httpc__connect(addr);
    if (fd < 0) {
        return -1;
    }
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: %s\r\n%s%s%sContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     method, path, addr, auth[0] ? "Authorization: Bearer " : "", auth,
                     auth[0] ? "\r\n" : "", blen);
    if (httpc__send_all(fd, head, (size_t)n) != 0 || (blen && httpc__send_all(fd, body, blen))) {
        close(fd);
        return -1;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 15000) != 1) {
            break;
        }
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        ssize_t got = recv(fd, buf + len, cap - len, 0);
        if (got <= 0) {
            break;
        }
        len += (size_t)got;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            char *cl = strcasestr(buf, "content-length:");
            size_t want = cl && cl < end ? strtoul(cl + 15, NULL, 10) : 0;
            if (len >= (size_t)(end - buf) + 4 + want) {
                break;
            }
        }
    }
    close(fd);
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (len < 12 || end == NULL) {
        free(buf);
        return -1;
    }
    r->status = atoi(buf + 9);
    size_t hl = (size_t)(end - buf);
    snprintf(r->headers, sizeof r->headers, "%.*s", (int)hl, buf);
    r->body_len = len - hl - 4;
    r->body = malloc(r->body_len + 1);
    memcpy(r->body, end + 4, r->body_len);
    r->body[r->body_len] = '\0';
    r->json = json_loadb(r->body, r->body_len, 0, NULL);
    free(buf);
    return 0;
}

long httpc_raw(const char *addr, const void *p, size_t n, char *out, size_t cap, int timeout_ms)
{
    int fd = httpc__connect(addr);
    long total = 0;
    if (fd < 0) {
        return -1;
    }
    httpc__send_all(fd, p, n);
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, timeout_ms) != 1) {
            break;
        }
        ssize_t got = recv(fd, out + total, cap - (size_t)total - 1, 0);
        if (got <= 0) {
            break;
        }
        total += got;
        if ((size_t)total + 1 >= cap) {
            break;
        }
    }
    out[total] = '\0';
    close(fd);
    return total;
}

void httpc_free(struct httpc_resp *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

long long httpc_metric(const char *addr, const char *key)
{
    struct httpc_resp r;
    long long v = -1;
    if (httpc_do(addr, "GET", "/metrics", "", NULL, &r) != 0) {
        return -1;
    }
    size_t kl = strlen(key);
    for (const char *p = r.status == 200 ? r.body : NULL; p && *p; p = strchr(p, '\n')) {
        p += *p == '\n';
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
            v = strtoll(p + kl + 1, NULL, 10);
            break;
        }
    }
    httpc_free(&r);
    return v;
}
