/* shard/mp.h — a zero-allocation reader for the flat msgpack records laurel stores.
 *
 * msgpack-c's unpacker builds an object tree in a zone; stored records are small positional
 * arrays read on every apply, so they are read here in place instead. Every read is bounds-
 * checked; the first failure latches, so a decoder reads all its fields and checks once:
 *
 *     struct mp r; mp_init(&r, v.mv_data, v.mv_size);
 *     uint32_t n = mp_array(&r); int64_t ver = mp_i64(&r); ...
 *     if (r.err) return LR_ECORRUPT;
 */
#ifndef LAUREL_MP_H
#define LAUREL_MP_H

#include <stddef.h>
#include <stdint.h>

#include "cmd.h"

struct mp {
    const unsigned char *p;
    const unsigned char *end;
    int err; /* latched: 1 after the first malformed or out-of-bounds read */
};

void mp_init(struct mp *r, const void *buf, size_t len);
/** Array header; returns its size (0 and err on mismatch). */
uint32_t mp_array(struct mp *r);
/** Map header; returns its size. */
uint32_t mp_map(struct mp *r);
/** Signed integer (positive or negative encodings). */
int64_t mp_i64(struct mp *r);
/** Boolean. */
int mp_bool(struct mp *r);
/** String or binary, borrowed from the buffer. */
struct lr_str mp_str(struct mp *r);
/** 1 if the next value is nil (consumed), 0 otherwise (not consumed). */
int mp_nil(struct mp *r);
/** Skip one value of any type (bounded nesting). */
void mp_skip(struct mp *r);
/** 1 if every byte was consumed and nothing failed. */
int mp_done(const struct mp *r);

#endif
