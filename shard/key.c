/* shard/key.c — LMDB keys of the shard (docs/data-layout.md): fields appended big-endian so
 * LMDB's bytewise order is numeric order, strings as bytes (a NUL ends one that is followed by
 * more fields). Overflowing KEY_MAX is a bug in a caller's layout, not input: asserted. */
#include <assert.h>
#include <string.h>

#include "shard_int.h"

void key__init(struct key *k)
{
    k->len = 0;
}

static void key__bytes(struct key *k, const void *p, size_t n)
{
    /* Callers build keys from validated ids (<= 64 bytes each, at most three parts), so a key
     * cannot outgrow KEY_MAX; overflowing would be a bug in the shard, not bad input. */
    assert(k->len + n <= KEY_MAX);
    if (n == 0) {
        return; /* an empty part may come with a NULL pointer */
    }
    memcpy(k->b + k->len, p, n);
    k->len += n;
}

void key__u32(struct key *k, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};
    key__bytes(k, b, 4);
}

void key__u64(struct key *k, uint64_t v)
{
    key__u32(k, (uint32_t)(v >> 32));
    key__u32(k, (uint32_t)v);
}

void key__i64(struct key *k, int64_t v)
{
    key__u64(k, (uint64_t)v ^ (1ULL << 63));
}

void key__str(struct key *k, struct lr_str s)
{
    key__bytes(k, s.p, s.len);
}

void key__strz(struct key *k, struct lr_str s)
{
    key__bytes(k, s.p, s.len);
    key__bytes(k, "", 1);
}

uint32_t key__get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t key__get_u64(const unsigned char *p)
{
    return (uint64_t)key__get_u32(p) << 32 | key__get_u32(p + 4);
}

void key__reward(struct key *k, uint32_t pid, struct lr_str board, int64_t cycle)
{
    key__init(k);
    key__u32(k, pid);
    key__strz(k, board);
    key__i64(k, cycle);
}
