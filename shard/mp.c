/* shard/mp.c — bounds-checked in-place msgpack reading (see mp.h). */
#include "mp.h"

#include <string.h>

void mp_init(struct mp *r, const void *buf, size_t len)
{
    r->p = buf;
    r->end = r->p + len;
    r->err = 0;
}

static uint64_t mp__be(struct mp *r, size_t n)
{
    uint64_t v = 0;
    if (r->err || (size_t)(r->end - r->p) < n) {
        r->err = 1;
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        v = (v << 8) | r->p[i];
    }
    r->p += n;
    return v;
}

static int mp__byte(struct mp *r)
{
    if (r->err || r->p >= r->end) {
        r->err = 1;
        return -1;
    }
    return *r->p++;
}

uint32_t mp_array(struct mp *r)
{
    int c = mp__byte(r);
    if (c >= 0x90 && c <= 0x9f) {
        return (uint32_t)(c & 0x0f);
    }
    if (c == 0xdc) {
        return (uint32_t)mp__be(r, 2);
    }
    if (c == 0xdd) {
        return (uint32_t)mp__be(r, 4);
    }
    r->err = 1;
    return 0;
}

uint32_t mp_map(struct mp *r)
{
    int c = mp__byte(r);
    if (c >= 0x80 && c <= 0x8f) {
        return (uint32_t)(c & 0x0f);
    }
    if (c == 0xde) {
        return (uint32_t)mp__be(r, 2);
    }
    if (c == 0xdf) {
        return (uint32_t)mp__be(r, 4);
    }
    r->err = 1;
    return 0;
}

int64_t mp_i64(struct mp *r)
{
    int c = mp__byte(r);
    uint64_t u;
    if (c < 0) {
        return 0;
    }
    if (c <= 0x7f) {
        return c;
    }
    if (c >= 0xe0) {
        return (int8_t)c;
    }
    switch (c) {
    case 0xcc: return (int64_t)mp__be(r, 1);
    case 0xcd: return (int64_t)mp__be(r, 2);
    case 0xce: return (int64_t)mp__be(r, 4);
    case 0xcf:
        u = mp__be(r, 8);
        if (u > (uint64_t)INT64_MAX) {
            r->err = 1;
            return 0;
        }
        return (int64_t)u;
    case 0xd0: return (int8_t)mp__be(r, 1);
    case 0xd1: return (int16_t)mp__be(r, 2);
    case 0xd2: return (int32_t)mp__be(r, 4);
    case 0xd3: return (int64_t)mp__be(r, 8);
    default: r->err = 1; return 0;
    }
}

int mp_bool(struct mp *r)
{
    int c = mp__byte(r);
    if (c == 0xc2 || c == 0xc3) {
        return c == 0xc3;
    }
    r->err = 1;
    return 0;
}

struct lr_str mp_str(struct mp *r)
{
    struct lr_str s = {"", 0};
    int c = mp__byte(r);
    uint64_t n;
    if (c >= 0xa0 && c <= 0xbf) {
        n = (uint64_t)(c & 0x1f);
    } else if (c == 0xd9 || c == 0xc4) {
        n = mp__be(r, 1);
    } else if (c == 0xda || c == 0xc5) {
        n = mp__be(r, 2);
    } else if (c == 0xdb || c == 0xc6) {
        n = mp__be(r, 4);
    } else {
        r->err = 1;
        return s;
    }
    if (r->err || (uint64_t)(r->end - r->p) < n) {
        r->err = 1;
        return s;
    }
    s.p = (const char *)r->p;
    s.len = (uint32_t)n;
    r->p += n;
    return s;
}

int mp_nil(struct mp *r)
{
    if (!r->err && r->p < r->end && *r->p == 0xc0) {
        r->p++;
        return 1;
    }
    return 0;
}

static void mp__skip(struct mp *r, int depth)
{
    if (r->err || r->p >= r->end || depth > 32) {
        r->err = 1;
        return;
    }
    unsigned c = *r->p;
    uint32_t n;
    if (c == 0xcf) {
        (void)mp__be(r, 9); /* a uint64 past INT64_MAX is still a value to step over */
    } else if (c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3)) {
        (void)mp_i64(r);
    } else if ((c >= 0xa0 && c <= 0xbf) || c == 0xd9 || c == 0xda || c == 0xdb ||
               (c >= 0xc4 && c <= 0xc6)) {
        (void)mp_str(r);
    } else if (c == 0xc0 || c == 0xc2 || c == 0xc3) {
        r->p++;
    } else if (c == 0xca) {
        (void)mp__be(r, 5);
    } else if (c == 0xcb) {
        (void)mp__be(r, 9);
    } else if ((c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd) {
        n = mp_array(r);
        for (uint32_t i = 0; i < n && !r->err; i++) {
            mp__skip(r, depth + 1);
        }
    } else if ((c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf) {
        n = mp_map(r);
        for (uint32_t i = 0; i < n && !r->err; i++) {
            mp__skip(r, depth + 1);
            mp__skip(r, depth + 1);
        }
    } else {
        r->err = 1;
    }
}

void mp_skip(struct mp *r)
{
    mp__skip(r, 0);
}

int mp_done(const struct mp *r)
{
    return !r->err && r->p == r->end;
}
