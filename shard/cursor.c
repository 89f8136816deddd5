/* shard/cursor.c — base64url cursors with strict decoding: wrong alphabet, wrong length,
 * unknown version or kind, or an invalid id are all LR_EINVAL, never a partial read. */
#include "cursor.h"

#include <string.h>

#include "../lib/err.h"
#include "valid.h"

#define CURSOR__VERSION 1
#define CURSOR__KIND_KEY 1
#define CURSOR__KIND_SEQ 2
#define CURSOR__KIND_POS 3

static const char cursor__alpha[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void cursor__b64(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) {
            v |= (uint32_t)in[i + 1] << 8;
        }
        if (i + 2 < n) {
            v |= in[i + 2];
        }
        out[o++] = cursor__alpha[(v >> 18) & 63];
        out[o++] = cursor__alpha[(v >> 12) & 63];
        if (i + 1 < n) {
            out[o++] = cursor__alpha[(v >> 6) & 63];
        }
        if (i + 2 < n) {
            out[o++] = cursor__alpha[v & 63];
        }
    }
    out[o] = '\0';
}

static int cursor__unb64(const char *s, size_t len, unsigned char *out, size_t cap, size_t *n)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    if (len % 4 == 1) {
        return LR_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        const char *p = s[i] ? strchr(cursor__alpha, s[i]) : NULL;
        if (p == NULL) {
            return LR_EINVAL;
        }
        acc = (acc << 6) | (uint32_t)(p - cursor__alpha);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap) {
                return LR_EINVAL;
            }
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1)) {
        return LR_EINVAL; /* non-canonical trailing bits */
    }
    *n = o;
    return 0;
}

static void cursor__put64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)v;
        v >>= 8;
    }
}

static uint64_t cursor__get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

int cursor_encode_key(const struct rankkey *k, const char *id, size_t idlen, char *out)
{
    unsigned char b[2 + 24 + 1 + VALID_ID_MAX];
    if (idlen == 0 || idlen > VALID_ID_MAX) {
        return LR_EINVAL;
    }
    b[0] = CURSOR__VERSION;
    b[1] = CURSOR__KIND_KEY;
    cursor__put64(b + 2, (uint64_t)k->a);
    cursor__put64(b + 10, (uint64_t)k->b);
    cursor__put64(b + 18, (uint64_t)k->t);
    b[26] = (unsigned char)idlen;
    memcpy(b + 27, id, idlen);
    cursor__b64(b, 27 + idlen, out);
    return 0;
}

int cursor_decode_key(const char *s, size_t len, struct rankkey *k, char *idbuf)
{
    unsigned char b[2 + 24 + 1 + VALID_ID_MAX];
    size_t n;
    if (len >= CURSOR_MAX || cursor__unb64(s, len, b, sizeof b, &n) != 0 || n < 28 ||
        b[0] != CURSOR__VERSION || b[1] != CURSOR__KIND_KEY || b[26] != n - 27 ||
        !valid_id((const char *)b + 27, n - 27, VALID_ID_MAX)) {
        return LR_EINVAL;
    }
    k->a = (int64_t)cursor__get64(b + 2);
    k->b = (int64_t)cursor__get64(b + 10);
    k->t = (int64_t)cursor__get64(b + 18);
    k->pid = RANKKEY_FOREIGN;
    k->idlen = (uint32_t)(n - 27);
    memcpy(idbuf, b + 27, k->idlen);
    idbuf[k->idlen] = '\0';
    k->id = idbuf;
    return 0;
}

int cursor_encode_seq(uint64_t seq, char *out)
{
    unsigned char b[10];
    b[0] = CURSOR__VERSION;
    b[1] = CURSOR__KIND_SEQ;
    cursor__put64(b + 2, seq);
    cursor__b64(b, sizeof b, out);
    return 0;
}

/* Decode a cursor of @kind whose bytes are exactly @want (at most 16) into @b. */
static int cursor__decode_fixed(const char *s, size_t len, int kind, unsigned char *b, size_t want)
{
    size_t n;
    if (len >= CURSOR_MAX || cursor__unb64(s, len, b, 16, &n) != 0 || n != want ||
        b[0] != CURSOR__VERSION || b[1] != kind) {
        return LR_EINVAL;
    }
    return 0;
}

int cursor_decode_seq(const char *s, size_t len, uint64_t *seq)
{
    unsigned char b[16];
    if (cursor__decode_fixed(s, len, CURSOR__KIND_SEQ, b, 10) != 0) {
        return LR_EINVAL;
    }
    *seq = cursor__get64(b + 2);
    return 0;
}

int cursor_encode_pos(uint64_t index, uint32_t pos, char *out)
{
    unsigned char b[14];
    b[0] = CURSOR__VERSION;
    b[1] = CURSOR__KIND_POS;
    cursor__put64(b + 2, index);
    for (int i = 0; i < 4; i++) {
        b[10 + i] = (unsigned char)(pos >> (8 * (3 - i)));
    }
    cursor__b64(b, sizeof b, out);
    return 0;
}

int cursor_decode_pos(const char *s, size_t len, uint64_t *index, uint32_t *pos)
{
    unsigned char b[16];
    if (cursor__decode_fixed(s, len, CURSOR__KIND_POS, b, 14) != 0) {
        return LR_EINVAL;
    }
    *index = cursor__get64(b + 2);
    *pos = (uint32_t)b[10] << 24 | (uint32_t)b[11] << 16 | (uint32_t)b[12] << 8 | b[13];
    return 0;
}
