/* raft/handshake.c — encode and check the connection preamble (see handshake.h). Words are
 * written byte by byte in little-endian order, so the format does not depend on the host's
 * byte order or on the buffer's alignment. */
#include "handshake.h"

#include <string.h>

#include "../lib/addr.h"
#include "../lib/err.h"

/* The longest address lib/addr.h accepts, bracketed, with a 5-digit port and its NUL. */
_Static_assert(HANDSHAKE_ADDRESS_MAX >= ((ADDR_HOST_MAX - 1 + 9 + 7) & ~7) &&
                   HANDSHAKE_ADDRESS_MAX % 8 == 0,
               "the address field holds every address lib/addr.h accepts");

static void handshake__put64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static uint64_t handshake__get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

int handshake_encode(uint64_t id, const char *address, uint8_t *buf, size_t cap, size_t *len)
{
    size_t n = strlen(address) + 1;
    size_t padded = (n + 7) & ~(size_t)7;
    if (id == 0 || !addr_valid(address) || padded > HANDSHAKE_ADDRESS_MAX ||
        cap < HANDSHAKE_PREAMBLE_SIZE + padded) {
        return LR_EINVAL;
    }
    handshake__put64(buf, HANDSHAKE_PROTOCOL);
    handshake__put64(buf + 8, id);
    handshake__put64(buf + 16, padded);
    memset(buf + HANDSHAKE_PREAMBLE_SIZE, 0, padded);
    memcpy(buf + HANDSHAKE_PREAMBLE_SIZE, address, n);
    *len = HANDSHAKE_PREAMBLE_SIZE + padded;
    return 0;
}

int handshake_preamble(const uint8_t *p, uint64_t *id, size_t *address_len)
{
    uint64_t protocol = handshake__get64(p);
    uint64_t sender = handshake__get64(p + 8);
    uint64_t n = handshake__get64(p + 16);
    if (protocol != HANDSHAKE_PROTOCOL) {
        return LR_EVERSION;
    }
    if (sender == 0 || n == 0 || n % 8 != 0) {
        return LR_EMALFORMED;
    }
    if (n > HANDSHAKE_ADDRESS_MAX) {
        return LR_ETOOBIG;
    }
    *id = sender;
    *address_len = (size_t)n;
    return 0;
}

int handshake_address(const uint8_t *p, size_t len, const char **address)
{
    const char *s = (const char *)p;
    if (memchr(s, '\0', len) == NULL || !addr_valid(s)) {
        return LR_EMALFORMED;
    }
    /* The address lands in logs and in raft's leader address: printable ASCII only, so a
     * peer cannot forge log lines with a newline. */
    for (const char *c = s; *c; c++) {
        if (*c < '!' || *c > '~') {
            return LR_EMALFORMED;
        }
    }
    *address = s;
    return 0;
}
