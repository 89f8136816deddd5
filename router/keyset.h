/* router/keyset.h — the router's API keys (docs/security.md, "API keys"): the admin keys and
 * the api keys it accepts, gathered from flags, the environment and a keys file, and the
 * constant-time check of a presented key against all of them.
 *
 * Each role holds several keys at once so a key can be rotated without downtime: add the new
 * one, move the clients, drop the old one. A keyset only ever holds valid keys: every add
 * refuses a key of the wrong length or alphabet, and a key given to both roles, so callers
 * refuse to start on the first error instead of cutting or ignoring a key. Messages name where
 * a key came from, never the key. */
#ifndef LAUREL_KEYSET_H
#define LAUREL_KEYSET_H

#include <stddef.h>

/* A key's length in bytes: long enough that guessing over the network is hopeless, short
 * enough to fit a header line. */
#define KEYSET_KEY_MIN 16
#define KEYSET_KEY_MAX 255
/* Keys of both roles together: room for two generations of a few keys each. */
#define KEYSET_MAX 16

enum keyset_role {
    KEYSET_NONE = 0,
    KEYSET_API = 1,   /* trusted game servers: players, unlocks, scores, events, joins */
    KEYSET_ADMIN = 2, /* may do everything */
};

/* X(role, name, env, file member of one key, file member of several) */
#define KEYSET_ROLES(X)                                                                            \
    X(KEYSET_ADMIN, "admin", "LAUREL_ADMIN_KEY", "admin_key", "admin_keys")                        \
    X(KEYSET_API, "api", "LAUREL_API_KEY", "api_key", "api_keys")

struct keyset {
    /* Private. Each key is zero-padded to the full buffer so every comparison reads the same
     * number of bytes, whatever the lengths. */
    struct {
        unsigned char b[KEYSET_KEY_MAX + 1];
        size_t len;
        enum keyset_role role;
    } key[KEYSET_MAX];
    unsigned n;
};

/** An empty set: it matches nothing. */
void keyset_init(struct keyset *ks);

/**
 * Add @key (@len bytes, copied) to @role. @from names its source in messages ("--admin-key",
 * "LAUREL_API_KEY", "keys.json admin_keys[1]"). The same key twice in one role is kept once.
 * @return 0; LR_EINVAL with @errmsg when @key is shorter than KEYSET_KEY_MIN or longer than
 * KEYSET_KEY_MAX bytes, holds a byte outside printable ASCII or a space or comma, or is
 * already a key of the other role; LR_ERANGE past KEYSET_MAX keys. On error @ks is unchanged.
 */
int keyset_add(struct keyset *ks, enum keyset_role role, const char *key, size_t len,
               const char *from, char *errmsg);

/**
 * Add every key of the comma-separated @list (borrowed for the call; empty items skipped) to
 * @role, as keyset_add. @return 0, or keyset_add's error (keys before the bad one stay added).
 */
int keyset_add_list(struct keyset *ks, enum keyset_role role, const char *list, const char *from,
                    char *errmsg);

/** Add the keys of LAUREL_ADMIN_KEY and LAUREL_API_KEY (comma-separated lists; unset or empty
 * adds none). @return 0, or keyset_add's error. */
int keyset_load_env(struct keyset *ks, char *errmsg);

/**
 * Add the keys of the JSON file @path: an object with "admin_keys" and "api_keys" (arrays of
 * strings) and/or "admin_key" and "api_key" (one string each, the form `laurel dev` writes).
 * Other members are ignored (they belong to other readers of the file).
 * @return 0; LR_EIO when it cannot be read; LR_EMALFORMED when it is not such an object; or
 * keyset_add's error.
 */
int keyset_load_file(struct keyset *ks, const char *path, char *errmsg);

/** Keys of @role in @ks. */
unsigned keyset_count(const struct keyset *ks, enum keyset_role role);

/** The first key of @role added (NUL-terminated, owned by @ks), or NULL when it has none. */
const char *keyset_first(const struct keyset *ks, enum keyset_role role);

/**
 * The role of the presented key @key (@len bytes, borrowed), or KEYSET_NONE. Constant time in
 * the key's bytes: every configured key is compared in full, with no early exit on the first
 * differing byte, a length mismatch or a match, so timing tells nothing of which prefix or
 * which key was right.
 */
enum keyset_role keyset_match(const struct keyset *ks, const char *key, size_t len);

#endif
