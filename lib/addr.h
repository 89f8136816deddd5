/* lib/addr.h — the one parser of the `host:port` addresses that every flag and peer list takes.
 *
 * Accepted forms: "127.0.0.1:8080", "[::1]:8080" (an IPv6 literal in brackets, as in URLs),
 * "name:8080" (a host name, resolved with getaddrinfo when addr_resolve is called). The port
 * is a decimal number in 0..65535 with nothing after it. Resolving a name blocks: callers
 * resolve when a process starts or when an operator-given address is first dialled, never on
 * input from a client. */
#ifndef LAUREL_ADDR_H
#define LAUREL_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Longest host accepted (a DNS name is at most 253 bytes). */
#define ADDR_HOST_MAX 256

/**
 * Split @s into its host (brackets removed, NUL-terminated, into @host of @hcap bytes) and
 * *@port. @s is borrowed for the call.
 * @return 0, or LR_EINVAL when @s is not one of the forms above (the outputs are then
 * unspecified).
 */
int addr_split(const char *s, char *host, size_t hcap, uint16_t *port);

/**
 * Parse @s into a socket address: an IPv4 or IPv6 literal directly, a name through
 * getaddrinfo (the first address it returns, IPv4 or IPv6). With @passive, an empty host
 * (":8080") means every local address (IPv4 0.0.0.0).
 * @return 0 with *@out and *@len; LR_EINVAL (not host:port); LR_EUNAVAILABLE (the name does
 * not resolve).
 */
int addr_resolve(const char *s, int passive, struct sockaddr_storage *out, socklen_t *len);

/** 1 if @s is well-formed host:port (no resolution), else 0. */
int addr_valid(const char *s);

/**
 * 1 if @s is host:port whose host is a loopback address (127.0.0.0/8, ::1, an IPv4-mapped
 * 127.x, or a name that resolves to one, which blocks as addr_resolve does); 0 otherwise,
 * including an empty host (every address) and one that does not parse or resolve. Decides
 * whether a process may run without keys (docs/security.md).
 */
int addr_is_loopback(const char *s);

#endif
