/* shard/rankidx.h — ordered index of one ranking (board × window × period × scope):
 * exact ranks in O(log n).
 *
 * An order-statistic B+tree: leaves hold keys in structure-of-arrays form (28 bytes a key),
 * inner nodes hold the subtree count of each child, so the number of keys ordered before any
 * probe is a sum taken on the way down. The index is keyed by the sort key itself; the store
 * (LMDB) is the map from a player to its current key, exactly as Redis pairs a dict with its
 * skiplist. Keys and their order are rankkey.h's: the one comparator of a board's order.
 *
 * Not thread-safe; owned by one shard. Every operation is deterministic. */
#ifndef LAUREL_RANKIDX_H
#define LAUREL_RANKIDX_H

#include <stddef.h>
#include <stdint.h>

#include "rankkey.h"

/** Resolves a region-local player number to its id string (for ties on a, b and t). */
struct rankidx_names {
    void *ctx;
    /* Returns the id of @pid and its length in *@len; the string is borrowed and must stay
     * valid while the index holds a key with that pid. */
    const char *(*id)(void *ctx, uint32_t pid, size_t *len);
};

struct rankidx; /* Opaque. */

/**
 * Node memory shared by many indexes (all the boards of one shard): 2 MiB chunks that the
 * kernel may back with transparent huge pages, so a search over a large cold index does not
 * also miss the TLB at every node. Nodes an index frees go back to the pool and are reused by
 * any index on it; chunks are returned only by rankidx_pool_free. Not thread-safe: the pool
 * and every index on it belong to one thread.
 */
struct rankidx_pool; /* Opaque. */

/** Create an empty pool (no chunk is mapped until a node is needed). @return 0, LR_ENOMEM. */
int rankidx_pool_new(struct rankidx_pool **out);

/** Unmap every chunk of @p. Every index on @p must have been freed. NULL is a no-op. */
void rankidx_pool_free(struct rankidx_pool *p);

/** Bytes the pool has mapped (used or free), for memory accounting. */
size_t rankidx_pool_memory(const struct rankidx_pool *p);

/** Position inside an index, for walking pages. Invalidated by any insert or delete. */
struct rankidx_iter {
    const void *leaf; /* private */
    uint32_t pos;     /* private */
    uint64_t rank0;   /* read-only: 0-based rank of the entry the iterator points at */
};

/**
 * Create an empty index. @names is copied; its ctx is borrowed for the index's lifetime.
 * @pool, if not NULL, is borrowed until rankidx_free(@out) and supplies every node; with
 * NULL, nodes come from malloc.
 * @return 0 and *@out, or LR_ENOMEM.
 */
int rankidx_new(const struct rankidx_names *names, struct rankidx_pool *pool, struct rankidx **out);

/** Free @idx and everything it holds. NULL is a no-op. */
void rankidx_free(struct rankidx *idx);

/**
 * Insert @key (pid < RANKKEY_FOREIGN).
 * @return 0; LR_EEXIST if an equal key is present (index unchanged); LR_ENOMEM (index
 * unchanged).
 */
int rankidx_insert(struct rankidx *idx, const struct rankkey *key);

/**
 * Delete @key. Never allocates, so an undo of an insert cannot fail.
 * @return 0, or LR_ENOTFOUND (index unchanged).
 */
int rankidx_delete(struct rankidx *idx, const struct rankkey *key);

/** Number of keys. */
uint64_t rankidx_count(const struct rankidx *idx);

/**
 * Number of keys ordered strictly before @key (which need not be present). The 0-based rank
 * of a present key; summed over regions it gives an exact global rank.
 */
uint64_t rankidx_count_before(const struct rankidx *idx, const struct rankkey *key);

/** 1 if @key is present, else 0. */
int rankidx_contains(const struct rankidx *idx, const struct rankkey *key);

/**
 * Point @it at the entry of 0-based rank @rank0.
 * @return 0, or LR_ENOTFOUND when @rank0 >= count (then @it is not valid).
 */
int rankidx_seek(const struct rankidx *idx, uint64_t rank0, struct rankidx_iter *it);

/**
 * Read the entry at @it into *@key (id NULL) and advance to the next one.
 * @return 1 if an entry was read, 0 at the end.
 */
int rankidx_next(struct rankidx_iter *it, struct rankkey *key);

/**
 * Step @it back one entry and read it into *@key: calling it right after rankidx_seek(r)
 * yields rank r-1, then r-2, ...
 * @return 1 if an entry was read, 0 at the beginning.
 */
int rankidx_prev(struct rankidx_iter *it, struct rankkey *key);

/**
 * Replace the contents of @idx with @n keys, which must be sorted ascending and distinct
 * (checked: LR_EINVAL otherwise, index unchanged). Leaves are packed full: this is the
 * start-up rebuild path. @keys is borrowed for the call.
 * @return 0, LR_EINVAL, or LR_ENOMEM (index unchanged).
 */
int rankidx_load(struct rankidx *idx, const struct rankkey *keys, size_t n);

/**
 * Bytes the index holds (its nodes, whether from the pool or malloc), for memory accounting.
 * Free nodes and unused chunk space of a pool count in rankidx_pool_memory only.
 */
size_t rankidx_memory(const struct rankidx *idx);

/** Compare two keys under the index's order (<0, 0, >0). */
int rankidx_compare(const struct rankidx *idx, const struct rankkey *x, const struct rankkey *y);

/**
 * Verify every structural invariant (sorted keys, subtree counts, fill bounds, leaf links).
 * For tests; O(n). @return 0, or LR_ECORRUPT.
 */
int rankidx_check(const struct rankidx *idx);

#endif
