/* raft/handshake.h — the bytes a raft connection opens with, and their checks.
 *
 * The connecting replica sends, before any raft message, who it is: the wire format of
 * libraft's raft_uv_tcp (protocol 1), so a replica running either transport talks to the
 * other. Three little-endian 64-bit words — the protocol version, the sender's server id, the
 * length of the address field — then the sender's raft address, NUL-terminated and padded
 * with anything to a multiple of 8 bytes (raft_uv_tcp leaves the padding uninitialised).
 *
 * Everything here is pure: the transport (xport.c) does the reading and writing. Every field
 * comes from the network, so a check failing is an error code, never an assert. A later
 * issue adds a challenge-response step after these bytes; this format stays its first step. */
#ifndef LAUREL_HANDSHAKE_H
#define LAUREL_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#define HANDSHAKE_PROTOCOL 1
#define HANDSHAKE_PREAMBLE_SIZE 24
/* Longest address field accepted: "[" host "]:" port NUL, with the longest host lib/addr.h
 * takes (ADDR_HOST_MAX - 1 bytes) and a 5-digit port, is 264 bytes, a multiple of 8. A peer
 * announcing more is refused before we read it. */
#define HANDSHAKE_ADDRESS_MAX 264
#define HANDSHAKE_SIZE_MAX (HANDSHAKE_PREAMBLE_SIZE + HANDSHAKE_ADDRESS_MAX)

/**
 * Encode the handshake of server @id at @address into @buf (@cap bytes, HANDSHAKE_SIZE_MAX is
 * always enough); the padding is zeroed. @address is borrowed for the call.
 * @return 0 with *@len; LR_EINVAL when @id is 0, @address is not host:port or is longer than
 * the address field allows, or @cap is too small.
 */
int handshake_encode(uint64_t id, const char *address, uint8_t *buf, size_t cap, size_t *len);

/**
 * Check the HANDSHAKE_PREAMBLE_SIZE bytes at @p and say how many address bytes follow.
 * @return 0 with *@id and *@address_len (a multiple of 8 in 8..HANDSHAKE_ADDRESS_MAX);
 * LR_EVERSION (not protocol 1); LR_EMALFORMED (id 0, or a length of 0 or not a multiple of
 * 8); LR_ETOOBIG (a length past HANDSHAKE_ADDRESS_MAX).
 */
int handshake_preamble(const uint8_t *p, uint64_t *id, size_t *address_len);

/**
 * Check the @len address bytes at @p (as announced by handshake_preamble).
 * @return 0 with *@address pointing into @p (valid while @p is); LR_EMALFORMED when there is
 * no NUL in the field, or the text before it is not host:port or not printable ASCII.
 */
int handshake_address(const uint8_t *p, size_t len, const char **address);

#endif
