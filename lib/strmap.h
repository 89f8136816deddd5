/* lib/strmap.h — open-addressing hash map from byte-string keys to pointers.
 * Keys are copied into the map; values are borrowed (the owner frees them, e.g. while walking
 * with strmap_next before strmap_free). Iteration order is unspecified: callers that need a
 * deterministic order (digests, listings) sort or read LMDB instead. */
#ifndef LAUREL_STRMAP_H
#define LAUREL_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_slot {
    uint64_t hash;
    char *key; /* NULL = empty */
    uint32_t klen;
    void *val;
};

struct strmap {
    struct strmap_slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t count;
};

void strmap_init(struct strmap *m);
/** Free the slots and keys (not the values). */
void strmap_free(struct strmap *m);
/** Value of @key, or NULL. */
void *strmap_get(const struct strmap *m, const void *key, size_t klen);
/** Insert or replace. @return 0 or LR_ENOMEM (map unchanged). */
int strmap_put(struct strmap *m, const void *key, size_t klen, void *val);
/** Remove @key (a missing key is a no-op). Invalidates walks in progress. */
void strmap_del(struct strmap *m, const void *key, size_t klen);
/**
 * Remove one entry, the first at or after slot @seed mod capacity, for a cache that replaces
 * at random: pass a hash or a counter. A no-op on an empty map. Invalidates walks.
 */
void strmap_evict_one(struct strmap *m, uint64_t seed);
/** Walk: start with *@pos = 0; returns the next occupied slot or NULL. */
struct strmap_slot *strmap_next(const struct strmap *m, size_t *pos);

#endif
