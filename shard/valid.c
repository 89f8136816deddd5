/* shard/valid.c — input rules of API.md; every decoder calls these before trusting a field. */
#include "valid.h"

int valid_id(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

int valid_text(const char *s, size_t len, size_t min, size_t max)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    size_t cps = 0;
    while (p < end) {
        unsigned c = *p;
        unsigned need, cp;
        if (c < 0x80) {
            if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
                return 0;
            }
            p++;
            cps++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            need = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if ((size_t)(end - p) <= need) {
            return 0;
        }
        for (unsigned i = 1; i <= need; i++) {
            if ((p[i] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* Reject overlong forms, C1 controls, surrogates and values past U+10FFFF. */
        if ((need == 1 && cp < 0xa0) || (need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        p += need + 1;
        cps++;
    }
    return cps >= min && cps <= max;
}

int valid_idem(const char *s, size_t len)
{
    if (len < VALID_IDEM_MIN || len > VALID_IDEM_MAX) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return 0;
        }
    }
    return 1;
}

int valid_score(int64_t v)
{
    return v >= -VALID_SCORE_MAX && v <= VALID_SCORE_MAX;
}
