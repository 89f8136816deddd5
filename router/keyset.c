/* router/keyset.c — the router's API keys: validation on the way in, a constant-time match on
 * every request (docs/security.md, "API keys").
 *
 * Why constant time: a strcmp returns at the first differing byte, so the time to answer 401
 * tells an attacker on the network how long a prefix of a guess is right, and a key falls
 * byte by byte. keyset_match instead pads the presented key to KEYSET_KEY_MAX + 1 bytes, XORs
 * it with every configured key over that whole width, folds the length difference into the
 * same accumulator, and selects the role with masks rather than branches. Only the number of
 * configured keys, which is no secret, shapes the work.
 *
 * Invariant: no key belongs to both roles (keyset_add refuses it), so at most one key matches
 * and the OR of the matched roles is a single role. */
#include "keyset.h"

#include <jansson.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/err.h"

struct keyset__role {
    enum keyset_role role;
    const char *name, *env, *one, *many;
};

static const struct keyset__role keyset__roles[] = {
#define X(role, name, env, one, many) {role, name, env, one, many},
    KEYSET_ROLES(X)
#undef X
};
#define KEYSET__NROLES (sizeof keyset__roles / sizeof keyset__roles[0])

static const char *keyset__name(enum keyset_role role)
{
    for (size_t i = 0; i < KEYSET__NROLES; i++) {
        if (keyset__roles[i].role == role) {
            return keyset__roles[i].name;
        }
    }
    return "?";
}

/* 1 when the @n bytes of @a and @b are equal, else 0, reading every byte whatever they hold. */
static unsigned keyset__equal(const unsigned char *a, const unsigned char *b, size_t n)
{
    unsigned d = 0;
    for (size_t i = 0; i < n; i++) {
        d |= (unsigned)(a[i] ^ b[i]);
    }
    /* d is 0..255: d - 1 borrows into the high bits only when d is 0. */
    return 1u & ((d - 1u) >> 8);
}

/* 1 when @x is 0, else 0, without a branch. */
static unsigned keyset__zero(size_t x)
{
    return (unsigned)(1u & (((x | (0 - x)) >> (sizeof x * CHAR_BIT - 1)) ^ 1u));
}

void keyset_init(struct keyset *ks)
{
    memset(ks, 0, sizeof *ks);
}

int keyset_add(struct keyset *ks, enum keyset_role role, const char *key, size_t len,
               const char *from, char *errmsg)
{
    if (len < KEYSET_KEY_MIN || len > KEYSET_KEY_MAX) {
        return errmsg_set(errmsg, LR_EINVAL,
                          "%s: an %s key is %d to %d bytes, this one is %zu; use a long random "
                          "key (for example `openssl rand -hex 24`)",
                          from, keyset__name(role), KEYSET_KEY_MIN, KEYSET_KEY_MAX, len);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)key[i];
        /* A key travels in an Authorization header and in comma-separated lists. */
        if (c <= ' ' || c > '~' || c == ',') {
            return errmsg_set(errmsg, LR_EINVAL,
                              "%s: an %s key holds printable ASCII without spaces or commas; "
                              "byte %zu is not",
                              from, keyset__name(role), i + 1);
        }
    }
    for (unsigned i = 0; i < ks->n; i++) {
        if (ks->key[i].len == len && memcmp(ks->key[i].b, key, len) == 0) {
            if (ks->key[i].role == role) {
                return 0;
            }
            return errmsg_set(errmsg, LR_EINVAL,
                              "%s: this %s key is also an %s key; give each role its own keys",
                              from, keyset__name(role), keyset__name(ks->key[i].role));
        }
    }
    if (ks->n == KEYSET_MAX) {
        return errmsg_set(errmsg, LR_ERANGE, "%s: at most %d keys in all", from, KEYSET_MAX);
    }
    memset(ks->key[ks->n].b, 0, sizeof ks->key[ks->n].b);
    memcpy(ks->key[ks->n].b, key, len);
    ks->key[ks->n].len = len;
    ks->key[ks->n].role = role;
    ks->n++;
    return 0;
}

int keyset_add_list(struct keyset *ks, enum keyset_role role, const char *list, const char *from,
                    char *errmsg)
{
    const char *p = list;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        int rv = len > 0 ? keyset_add(ks, role, p, len, from, errmsg) : 0;
        if (rv != 0) {
            return rv;
        }
        p += len + (end ? 1 : 0);
    }
    return 0;
}

int keyset_load_env(struct keyset *ks, char *errmsg)
{
    for (size_t i = 0; i < KEYSET__NROLES; i++) {
        const char *v = getenv(keyset__roles[i].env);
        int rv =
            v ? keyset_add_list(ks, keyset__roles[i].role, v, keyset__roles[i].env, errmsg) : 0;
        if (rv != 0) {
            return rv;
        }
    }
    return 0;
}

/* The keys of one role in @root: "<one>" a string, "<many>" an array of strings. */
static int keyset__load_role(struct keyset *ks, const struct keyset__role *r, json_t *root,
                             const char *path, char *errmsg)
{
    char from[512];
    json_t *one = json_object_get(root, r->one), *many = json_object_get(root, r->many), *v;
    size_t i;
    int rv;
    if (one != NULL) {
        snprintf(from, sizeof from, "%s: %s", path, r->one);
        if (!json_is_string(one)) {
            return errmsg_set(errmsg, LR_EMALFORMED, "%s is not a string", from);
        }
        if ((rv = keyset_add(ks, r->role, json_string_value(one), json_string_length(one), from,
                             errmsg)) != 0) {
            return rv;
        }
    }
    if (many != NULL && !json_is_array(many)) {
        return errmsg_set(errmsg, LR_EMALFORMED, "%s: %s is not an array of strings", path,
                          r->many);
    }
    json_array_foreach(many, i, v)
    {
        snprintf(from, sizeof from, "%s: %s[%zu]", path, r->many, i);
        if (!json_is_string(v)) {
            return errmsg_set(errmsg, LR_EMALFORMED, "%s is not a string", from);
        }
        if ((rv = keyset_add(ks, r->role, json_string_value(v), json_string_length(v), from,
                             errmsg)) != 0) {
            return rv;
        }
    }
    return 0;
}

int keyset_load_file(struct keyset *ks, const char *path, char *errmsg)
{
    json_error_t jerr;
    int rv = 0;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        /* jansson reports a missing or unreadable file as a source error, a bad one with a
         * line. */
        return errmsg_set(errmsg, jerr.line > 0 ? LR_EMALFORMED : LR_EIO, "%s: %s", path,
                          jerr.text);
    }
    if (!json_is_object(root)) {
        rv = errmsg_set(errmsg, LR_EMALFORMED,
                        "%s: expected {\"admin_keys\": [...], \"api_keys\": [...]}", path);
    }
    for (size_t i = 0; rv == 0 && i < KEYSET__NROLES; i++) {
        rv = keyset__load_role(ks, &keyset__roles[i], root, path, errmsg);
    }
    json_decref(root);
    return rv;
}

unsigned keyset_count(const struct keyset *ks, enum keyset_role role)
{
    unsigned n = 0;
    for (unsigned i = 0; i < ks->n; i++) {
        n += ks->key[i].role == role;
    }
    return n;
}

const char *keyset_first(const struct keyset *ks, enum keyset_role role)
{
    for (unsigned i = 0; i < ks->n; i++) {
        if (ks->key[i].role == role) {
            return (const char *)ks->key[i].b;
        }
    }
    return NULL;
}

enum keyset_role keyset_match(const struct keyset *ks, const char *key, size_t len)
{
    unsigned char pad[KEYSET_KEY_MAX + 1];
    size_t take = len <= KEYSET_KEY_MAX ? len : KEYSET_KEY_MAX;
    unsigned role = 0;
    memset(pad, 0, sizeof pad);
    memcpy(pad, key, take);
    for (unsigned i = 0; i < ks->n; i++) {
        /* A longer presented key never matches: its length differs from every key's. */
        unsigned eq =
            keyset__equal(pad, ks->key[i].b, sizeof pad) & keyset__zero(len ^ ks->key[i].len);
        role |= (0u - eq) & (unsigned)ks->key[i].role;
    }
    return (enum keyset_role)role;
}
