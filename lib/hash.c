/* lib/hash.c — 64-bit multiply-xorshift hash over 8-byte little-endian lanes.
 * Fast enough for every hot path (hash maps, per-write digest updates) and fixed across
 * hosts, which is what the digest needs. */
#include "hash.h"

#include <string.h>

#define HASH__K1 0x9e3779b97f4a7c15ULL
#define HASH__K2 0xbf58476d1ce4e5b9ULL
#define HASH__K3 0x94d049bb133111ebULL

static uint64_t hash__fmix(uint64_t z)
{
    z = (z ^ (z >> 30)) * HASH__K2;
    z = (z ^ (z >> 27)) * HASH__K3;
    return z ^ (z >> 31);
}

static uint64_t hash__load_le(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

uint64_t hash_mix(uint64_t h, uint64_t v)
{
    return hash__fmix(h ^ (v + HASH__K1 + (h << 6) + (h >> 2)));
}

uint64_t hash_bytes(const void *p, size_t len, uint64_t seed)
{
    const unsigned char *b = p;
    uint64_t h = seed ^ (len * HASH__K1);
    while (len >= 8) {
        uint64_t v;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(&v, b, 8);
#else
        v = hash__load_le(b, 8);
#endif
        h = hash__fmix(h ^ (v * HASH__K1)) + HASH__K2;
        b += 8;
        len -= 8;
    }
    if (len > 0) {
        h = hash__fmix(h ^ (hash__load_le(b, len) * HASH__K1)) + HASH__K3;
    }
    return hash__fmix(h);
}
