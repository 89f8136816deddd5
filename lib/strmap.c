/* lib/strmap.c — linear probing at load <= 1/2. Deletion shifts the probe run back over the
 * hole (no tombstones), so lookups stay as short as if the key had never been there: the
 * shard never deletes, the router does (gateway topics come and go; its player cache evicts). */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "hash.h"

void strmap_init(struct strmap *m)
{
    memset(m, 0, sizeof *m);
}

void strmap_free(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++) {
        free(m->slots[i].key);
    }
    free(m->slots);
    strmap_init(m);
}

static struct strmap_slot *strmap__find(const struct strmap *m, uint64_t h, const void *key,
                                        size_t klen)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct strmap_slot *s = &m->slots[i];
        if (s->key == NULL || (s->hash == h && s->klen == klen && memcmp(s->key, key, klen) == 0)) {
            return s;
        }
    }
}

void *strmap_get(const struct strmap *m, const void *key, size_t klen)
{
    if (m->cap == 0) {
        return NULL;
    }
    struct strmap_slot *s = strmap__find(m, hash_bytes(key, klen, 7), key, klen);
    return s->key ? s->val : NULL;
}

static int strmap__grow(struct strmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 16;
    struct strmap old = *m;
    m->slots = calloc(ncap, sizeof *m->slots);
    if (m->slots == NULL) {
        *m = old;
        return LR_ENOMEM;
    }
    m->cap = ncap;
    for (size_t i = 0; i < old.cap; i++) {
        if (old.slots[i].key) {
            *strmap__find(m, old.slots[i].hash, old.slots[i].key, old.slots[i].klen) = old.slots[i];
        }
    }
    free(old.slots);
    return 0;
}

int strmap_put(struct strmap *m, const void *key, size_t klen, void *val)
{
    if ((m->count + 1) * 2 > m->cap && strmap__grow(m) != 0) {
        return LR_ENOMEM;
    }
    uint64_t h = hash_bytes(key, klen, 7);
    struct strmap_slot *s = strmap__find(m, h, key, klen);
    if (s->key == NULL) {
        char *k = malloc(klen + 1);
        if (k == NULL) {
            return LR_ENOMEM;
        }
        memcpy(k, key, klen);
        k[klen] = '\0';
        s->key = k;
        s->klen = (uint32_t)klen;
        s->hash = h;
        m->count++;
    }
    s->val = val;
    return 0;
}

/* Empty occupied slot @s and close the gap in its probe run. */
static void strmap__del_slot(struct strmap *m, struct strmap_slot *s)
{
    size_t mask = m->cap - 1;
    free(s->key);
    size_t hole = (size_t)(s - m->slots);
    for (size_t j = (hole + 1) & mask; m->slots[j].key != NULL; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        /* The entry at j may fill the hole unless its home lies cyclically in (hole, j]:
         * then a probe for it starts after the hole and never crosses it. */
        int stays = hole < j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].key = NULL;
    m->slots[hole].val = NULL;
    m->count--;
}

void strmap_del(struct strmap *m, const void *key, size_t klen)
{
    if (m->cap == 0) {
        return;
    }
    struct strmap_slot *s = strmap__find(m, hash_bytes(key, klen, 7), key, klen);
    if (s->key != NULL) {
        strmap__del_slot(m, s);
    }
}

void strmap_evict_one(struct strmap *m, uint64_t seed)
{
    if (m->count == 0) {
        return;
    }
    size_t mask = m->cap - 1;
    size_t i = (size_t)seed & mask;
    while (m->slots[i].key == NULL) {
        i = (i + 1) & mask;
    }
    strmap__del_slot(m, &m->slots[i]);
}

struct strmap_slot *strmap_next(const struct strmap *m, size_t *pos)
{
    for (; *pos < m->cap; (*pos)++) {
        if (m->slots[*pos].key) {
            return &m->slots[(*pos)++];
        }
    }
    return NULL;
}
