/* fuzz/fuzz_handshake.c — the first bytes of a raft connection (raft/handshake.c): the
 * preamble, then as many address bytes as it announced, as raft/xport.c reads them. */
#include "fuzz/fuzz.h"
#include "raft/handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HANDSHAKE_PREAMBLE_SIZE) {
        return 0;
    }
    uint64_t id;
    size_t alen;
    if (handshake_preamble(data, &id, &alen) != 0) {
        return 0;
    }
    if (alen > size - HANDSHAKE_PREAMBLE_SIZE) {
        return 0; /* xport would wait for more, then time out */
    }
    uint8_t *a = (uint8_t *)fuzz_copy(data + HANDSHAKE_PREAMBLE_SIZE, alen);
    const char *address;
    if (handshake_address(a, alen, &address) == 0) {
        /* What was accepted must encode again: xport hands it to libraft as an address. */
        uint8_t buf[HANDSHAKE_SIZE_MAX];
        size_t len;
        if (handshake_encode(id, address, buf, sizeof buf, &len) != 0) {
            abort();
        }
    }
    free(a);
    return 0;
}
