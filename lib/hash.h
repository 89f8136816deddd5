/* lib/hash.h — a fixed 64-bit hash for digests, idempotency bodies and hash maps.
 *
 * The state digest compares replicas, so the function must give the same value on every
 * machine that runs laurel: bytes are read little-endian explicitly, never through a
 * host-order cast. Not cryptographic. */
#ifndef LAUREL_HASH_H
#define LAUREL_HASH_H

#include <stddef.h>
#include <stdint.h>

/** Hash @len bytes of @p with @seed. */
uint64_t hash_bytes(const void *p, size_t len, uint64_t seed);

/** Mix one 64-bit value into @h (order matters). */
uint64_t hash_mix(uint64_t h, uint64_t v);

#endif
