/* lib/addr.c — host:port parsing and resolution (see addr.h). The port is found after the
 * last colon, so an IPv6 literal must be bracketed: "::1:80" is ambiguous and refused. */
#include "addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>

#include "err.h"

int addr_split(const char *s, char *host, size_t hcap, uint16_t *port)
{
    if (s == NULL) {
        return LR_EINVAL;
    }
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon[1] == '\0') {
        return LR_EINVAL;
    }
    unsigned long p = 0;
    for (const char *c = colon + 1; *c; c++) {
        if (*c < '0' || *c > '9' || (p = p * 10 + (unsigned long)(*c - '0')) > 65535) {
            return LR_EINVAL;
        }
    }
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (hl > 0 && s[0] == '[') {
        if (hl < 3 || s[hl - 1] != ']') {
            return LR_EINVAL;
        }
        h++;
        hl -= 2;
        if (memchr(h, ':', hl) == NULL || memchr(h, ']', hl) != NULL) {
            /* brackets hold one IPv6 literal only */
            return LR_EINVAL;
        }
    } else if (memchr(s, ':', hl) != NULL || memchr(s, ']', hl) != NULL) {
        return LR_EINVAL; /* an unbracketed IPv6 literal, or a stray bracket */
    }
    if (hl >= hcap || memchr(h, '[', hl) != NULL) {
        return LR_EINVAL;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (uint16_t)p;
    return 0;
}

int addr_valid(const char *s)
{
    char host[ADDR_HOST_MAX];
    uint16_t port;
    return addr_split(s, host, sizeof host, &port) == 0 && host[0] != '\0';
}

int addr_resolve(const char *s, int passive, struct sockaddr_storage *out, socklen_t *len)
{
    char host[ADDR_HOST_MAX];
    uint16_t port;
    int rv = addr_split(s, host, sizeof host, &port);
    if (rv != 0) {
        return rv;
    }
    memset(out, 0, sizeof *out);
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (host[0] == '\0') {
        if (!passive) {
            return LR_EINVAL;
        }
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        in4->sin_addr.s_addr = htonl(INADDR_ANY);
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        *len = sizeof *in6;
        return 0;
    }
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0 || ai == NULL) {
        return LR_EUNAVAILABLE;
    }
    if (ai->ai_addrlen > sizeof *out || (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)) {
        freeaddrinfo(ai);
        return LR_EUNAVAILABLE;
    }
    memcpy(out, ai->ai_addr, ai->ai_addrlen);
    *len = (socklen_t)ai->ai_addrlen;
    freeaddrinfo(ai);
    if (out->ss_family == AF_INET) {
        in4->sin_port = htons(port);
    } else {
        in6->sin6_port = htons(port);
    }
    return 0;
}

int addr_is_loopback(const char *s)
{
    struct sockaddr_storage sa;
    socklen_t len;
    if (addr_resolve(s, 1, &sa, &len) != 0) {
        return 0;
    }
    if (sa.ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&sa;
        return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return 0;
}
